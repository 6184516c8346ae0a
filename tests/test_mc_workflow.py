"""`workflow=monte_carlo` from the configuration: companion files, engines and the ladder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_mc_chain import tiny_bundle
from training_support import run_app

from dpp.app.monte_carlo import replica_ladder, resolve_engine
from dpp.errors import InputError
from dpp.io import load_bundle
from dpp.mc.constraints import active_slots
from dpp.physics import build_hamiltonian

MC = ["workflow=monte_carlo", "model.name=ZeroFunction", "mc.progress=false", "seed=3"]


def test_workflow_two_temperatures_with_step_files(tmp_path: Path) -> None:
    folder = tiny_bundle(tmp_path / "bundle")
    (folder / "mcOpts1.par").write_text(
        "betas = 100 1\nstepsAtTemp = 2 1\ntempStepSizeMod = 1.0 0.5\ntotalIter = 5\n"
        "optGaps = True\n"
    )
    for symbol in ("Cd", "Se"):
        (folder / f"{symbol}ParamSteps.par").write_text("0.1\n0.01\n0\n0.01\n0\n")
    run = tmp_path / "run"
    best = run_app(run, [f"data.bundle={folder}", *MC, "mc.options_file=mcOpts1.par"])
    rows = (run / "iterations.dat").read_text().splitlines()
    assert len(rows) == 7  # header, start row, 5 trials
    assert best <= float(rows[1].split()[0])
    frozen = [float(r.split("\t")[4 + 2]) for r in rows[1:]]  # Cd a2 has step 0
    assert len(set(frozen)) == 1
    checkpoint = torch.load(run / "mc_checkpoint.pth", weights_only=True)
    assert checkpoint["trial"] == 5 and checkpoint["seed"] == 3
    assert (run / "tensorboard").is_dir()


def test_workflow_rejects_unsupported_terms(tmp_path: Path) -> None:
    folder = tiny_bundle(tmp_path / "bundle")
    (folder / "mcOpts2.par").write_text("fitCoupling = True\n")
    overrides = [f"data.bundle={folder}", *MC, "mc.options_file=mcOpts2.par", "mc.iterations=2"]
    with pytest.raises(InputError, match="fitCoupling"):
        run_app(tmp_path / "r", overrides)


def test_engine_and_ladder() -> None:
    assert resolve_engine("auto", "ZeroFunction") == "analytic"
    assert resolve_engine("auto", "Net_relu") == "nn"
    betas, mods = replica_ladder(3, None, None, 100.0)
    assert betas == pytest.approx((100.0, 10.0, 1.0)) and mods == (1.0, 1.0, 1.0)
    assert replica_ladder(1, None, None, 5.0) == ((), ())


def test_replica_views_share_caches_and_active_slots(tmp_path: Path) -> None:
    bundle = load_bundle(tiny_bundle(tmp_path / "bundle"))
    base = build_hamiltonian(bundle, spin_orbit=True)
    view = base.replica(None)
    assert view._kernels is base._kernels and view.geometries is base.geometries
    assert view.pp_fixed.data_ptr() != base.pp_fixed.data_ptr()
    assert torch.equal(view.bands(0), base.bands(0))
    options = base.options
    assert active_slots(options, bundle.systems, uses_network=False) == (0, 1, 2, 3, 4, 5, 6, 7)
    assert active_slots(options, bundle.systems, uses_network=True) == (4, 5, 6, 7)

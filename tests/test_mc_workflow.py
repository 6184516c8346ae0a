"""`workflow=monte_carlo` from the configuration: companion files, engines and the ladder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_mc_chain import tiny_bundle
from test_training_observables import add_couplings
from training_support import run_app

from dpp.fitting import CouplingTerm, LossSettings
from dpp.fitting.build import analytic_objective
from dpp.io import load_bundle
from dpp.mc.constraints import active_slots, atom_species, enforce_constraints
from dpp.mc.settings import replica_ladder, resolve_engine
from dpp.physics import build_hamiltonian
from dpp.physics.observables import deformation_potentials

MC = ["workflow=monte_carlo", "model.name=ZeroFunction", "mc.progress=false", "seed=3"]


@pytest.mark.slow
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


def test_workflow_fits_couplings_and_deformation_potentials(tmp_path: Path) -> None:
    """fitCoupling and fitDefPot of mcOpts add the mean coupling term and the legacy
    deformation-potential rows (weighted by defPotWeight) to the normalised cost."""
    folder = tiny_bundle(tmp_path / "bundle")
    add_couplings(folder, fit=False)
    (folder / "expDefPot_0.par").write_text("-1.5\n-2.5\n")
    (folder / "mcOpts2.par").write_text(
        "fitCoupling = True\nfitDefPot = True\ndefPotWeight = 0.5\ntotalIter = 2\n"
    )
    run = tmp_path / "run"
    run_app(run, [f"data.bundle={folder}", *MC, "mc.options_file=mcOpts2.par"])
    start = float((run / "iterations.dat").read_text().splitlines()[1].split()[0])
    plain = load_bundle(folder)
    assert plain.systems[0].couplings is None and not plain.systems[0].defpot_targets
    bundle = load_bundle(
        folder, deformation_potentials=True, legacy_defpot_weight=0.5, electron_phonon=True
    )
    hamiltonian = build_hamiltonian(bundle)
    enforce_constraints(hamiltonian.pp_fixed, atom_species(bundle))
    full = analytic_objective(bundle, LossSettings()).evaluate(hamiltonian)
    bands = analytic_objective(plain, LossSettings()).evaluate(hamiltonian).total
    with torch.no_grad():
        couplings = CouplingTerm(bundle.systems).couplings(hamiltonian, 0)
        d = deformation_potentials(hamiltonian, 0, bundle.systems[0].defpot_targets)
    mean_coupling = sum(2.0 * (float(g.abs()) - 0.1) ** 2 for g in couplings.values()) / len(
        couplings
    )
    defpot = 0.5 * ((float(d[0]) + 1.5) ** 2 + (float(d[1]) + 2.5) ** 2)
    assert full.terms == pytest.approx({"coupling_sys0": mean_coupling, "defpot_sys0": defpot})
    assert full.total == pytest.approx(bands + mean_coupling + defpot, rel=1e-12)
    assert start == pytest.approx(full.total, rel=1e-5)


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
    assert view.geometries is base.geometries
    assert all(v is b for v, b in zip(view._projectors, base._projectors, strict=True))
    assert view.pp_fixed.data_ptr() != base.pp_fixed.data_ptr()
    assert torch.equal(view.bands(0), base.bands(0))
    options = base.options
    assert active_slots(options, bundle.systems, uses_network=False) == (0, 1, 2, 3, 4, 5, 6, 7)
    assert active_slots(options, bundle.systems, uses_network=True) == (4, 5, 6, 7)

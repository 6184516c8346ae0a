"""couplingBands_X.dat (start) and bestCoupling_X.dat (best state) of the systems whose
electron–phonon couplings are fitted, in gradient training and in Monte Carlo."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_mc_chain import tiny_bundle
from test_training_observables import add_couplings
from training_support import run_app, small_bundle

from dpp.fitting import CouplingTerm
from dpp.io import load_bundle
from dpp.io.observables import read_coupling_targets
from dpp.mc.constraints import atom_species, enforce_constraints
from dpp.physics import build_hamiltonian

KEYS = 2 * 3 * 2  # atoms × directions × band edges, one q-point


def _written(path: Path) -> dict[tuple[int, int, int, str], float]:
    values = read_coupling_targets(path, n_qpoints=1).values
    assert len(values) == KEYS
    return values


def _assert_start_couplings(run: Path, bundle_dir: Path, constrained: bool = False) -> None:
    """couplingBands_0.dat holds |g| of the initial analytic state (eV/Bohr, 7 digits)."""
    bundle = load_bundle(bundle_dir, electron_phonon=True)
    hamiltonian = build_hamiltonian(bundle)
    if constrained:
        enforce_constraints(hamiltonian.pp_fixed, atom_species(bundle))
    with torch.no_grad():
        expected = CouplingTerm(bundle.systems).couplings(hamiltonian, 0)
    written = _written(run / "couplingBands_0.dat")
    assert set(written) == set(expected)
    for key, value in expected.items():
        assert written[key] == pytest.approx(float(value.abs()), rel=1e-6), key


def test_gradient_training_writes_start_and_best_couplings(tmp_path: Path) -> None:
    folder = small_bundle(tmp_path, n_k=3, max_ke=1.5, init_Zunger_num_epochs=0)
    add_couplings(folder)
    run = tmp_path / "run"
    overrides = ["model.name=ZeroFunction", "model.train_slots=[0,1,2,3]", "logger=none"]
    run_app(run, [f"data.bundle={folder}", "trainer.max_epochs=2", *overrides])
    _assert_start_couplings(run, folder)
    best = _written(run / "bestCoupling_0.dat")
    assert best != _written(run / "couplingBands_0.dat")  # the fit moved a0..a3


def test_monte_carlo_writes_start_and_best_couplings(tmp_path: Path) -> None:
    folder = tiny_bundle(tmp_path / "bundle")
    add_couplings(folder, fit=False)
    (folder / "mcOpts2.par").write_text("fitCoupling = True\ntotalIter = 2\n")
    run = tmp_path / "run"
    mc = ["workflow=monte_carlo", "model.name=ZeroFunction", "mc.progress=false", "seed=3"]
    run_app(run, [f"data.bundle={folder}", *mc, "mc.options_file=mcOpts2.par"])
    _assert_start_couplings(run, folder, constrained=True)
    _written(run / "bestCoupling_0.dat")

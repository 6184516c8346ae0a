"""Deformation potentials (fit_defPot) and electron–phonon couplings (fit_eph) as global
terms of the training loss."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from training_support import cost_rows, run_app, small_bundle

from dpp.fitting import CouplingTerm, DefPotTerm
from dpp.io import load_bundle
from dpp.physics import build_hamiltonian


def add_defpot(folder: Path) -> None:
    (folder / "expDefPot_0.par").write_text("# kVB bVB kCB bCB s D w\n0 7 0 8 1.01 -2.5 3.0\n")
    with (folder / "input_0.par").open("a") as handle:
        handle.write("fit_defPot = 1\n")


def first_losses(tmp_path: Path, add_targets: Callable[[Path], None]) -> tuple[float, float, Path]:
    """The epoch-1 training losses (eV²) of a tiny analytic bundle without and with the
    targets that `add_targets` writes, and the folder of the bundle with them."""
    settings = {"max_num_epochs": 1, "init_Zunger_num_epochs": 0}
    losses = []
    for name in ("plain", "fitted"):
        folder = small_bundle(tmp_path / name, n_k=3, max_ke=1.5, **settings)
        if name == "fitted":
            add_targets(folder)
        run_app(tmp_path / f"run_{name}", [f"data.bundle={folder}", "model.name=ZeroFunction"])
        losses.append(cost_rows(tmp_path / f"run_{name}" / "final_training_cost.dat")[0][1])
    return losses[0], losses[1], folder


def test_deformation_term_enters_the_training_loss(tmp_path: Path) -> None:
    band_only, with_defpot, fitted = first_losses(tmp_path, add_defpot)
    bundle = load_bundle(fitted)
    with torch.no_grad():
        expected = float(
            DefPotTerm(bundle.systems).values(build_hamiltonian(bundle))["defpot_sys0"]
        )
    assert expected > 0
    assert with_defpot == pytest.approx(band_only + expected, rel=1e-10)


def coupling_block(atom: int, symbol: str) -> str:
    values = "0.1\npolarization of derivative = y\n0.1\npolarization of derivative = z\n0.1\n"
    return (
        f"Atom idx = {atom}   atom = {symbol}   position = x\n"
        f"vb-vb coupling elements. polarization of derivative = x\n{values}\n"
        f"cb-cb coupling elements. polarization of derivative = x\n{values}\n\n"
    )


def add_couplings(folder: Path, fit: bool = True) -> None:
    """Coupling targets at Γ (q = 0, so k' = k0 = the first k-point) for both atoms; the
    band edges are whole levels of the tiny CdSe bundles (3 states below the VBM, 2 above)."""
    (folder / "qpoints_0.par").write_text("0.0 0.0 0.0 2.0\n")
    (folder / "expCoupling_0.par").write_text(coupling_block(0, "Cd") + coupling_block(1, "Se"))
    with (folder / "input_0.par").open("a") as handle:
        handle.write(("fit_eph = 1\n" if fit else "") + "idxVB = 3\nidxCB = 4\nidxGap = 0\n")


def test_coupling_term_enters_the_training_loss(tmp_path: Path) -> None:
    band_only, with_couplings, fitted = first_losses(tmp_path, add_couplings)
    bundle = load_bundle(fitted)
    term = CouplingTerm(bundle.systems)
    values = term.couplings(build_hamiltonian(bundle), 0)
    assert set(values) == set(bundle.systems[0].couplings.values)
    expected = sum(2.0 * (float(g.abs()) - 0.1) ** 2 for g in values.values())
    assert expected > 0
    assert with_couplings == pytest.approx(band_only + expected, rel=1e-9)


def test_coupling_term_is_differentiable(tmp_path: Path) -> None:
    folder = small_bundle(tmp_path, n_k=3, max_ke=1.5)
    add_couplings(folder)
    bundle = load_bundle(folder)
    hamiltonian = build_hamiltonian(bundle, train_slots=(0, 1, 2, 3))
    loss = CouplingTerm(bundle.systems).values(hamiltonian)["coupling_sys0"]
    loss.backward()
    assert float(hamiltonian.pp_free.grad.abs().sum()) > 0

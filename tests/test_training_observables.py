"""Deformation-potential targets (fit_defPot) as global terms of the training loss."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from training_support import cost_rows, run_app, small_bundle

from dpp.errors import InputError
from dpp.fitting import DefPotTerm, LossSettings
from dpp.fitting.build import training_objective
from dpp.io import load_bundle
from dpp.physics import build_hamiltonian


def add_defpot(folder: Path) -> None:
    (folder / "expDefPot_0.par").write_text("# kVB bVB kCB bCB s D w\n0 7 0 8 1.01 -2.5 3.0\n")
    with (folder / "input_0.par").open("a") as handle:
        handle.write("fit_defPot = 1\n")


def test_deformation_term_enters_the_training_loss(tmp_path: Path) -> None:
    settings = {"max_num_epochs": 1, "init_Zunger_num_epochs": 0}
    plain = small_bundle(tmp_path / "plain", n_k=3, max_ke=1.5, **settings)
    fitted = small_bundle(tmp_path / "fitted", n_k=3, max_ke=1.5, **settings)
    add_defpot(fitted)
    run_app(tmp_path / "run_plain", [f"data.bundle={plain}", "model.name=ZeroFunction"])
    run_app(tmp_path / "run_fitted", [f"data.bundle={fitted}", "model.name=ZeroFunction"])
    band_only = cost_rows(tmp_path / "run_plain" / "final_training_cost.dat")[0][1]
    with_defpot = cost_rows(tmp_path / "run_fitted" / "final_training_cost.dat")[0][1]
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


def test_coupling_targets_are_rejected_clearly(tmp_path: Path) -> None:
    folder = small_bundle(tmp_path, n_k=3, max_ke=1.5)
    (folder / "qpoints_0.par").write_text("0.0 0.0 0.0 1.0\n")
    (folder / "expCoupling_0.par").write_text(coupling_block(0, "Cd") + coupling_block(1, "Se"))
    with (folder / "input_0.par").open("a") as handle:
        handle.write("fit_eph = 1\nidxVB = 7\nidxCB = 8\nidxGap = 0\n")
    bundle = load_bundle(folder)
    with pytest.raises(InputError, match="input_0.par.*fit_eph"):
        training_objective(bundle, LossSettings())

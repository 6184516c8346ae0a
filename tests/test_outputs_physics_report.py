"""The physics report of a fit (`<run>/physics_report.md`, log, TensorBoard) and evaluation
of a fit on bundles it was not trained on (strained cell, species subset)."""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from bundle_support import shrink_bundle
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from training_support import CDSE, _set_key, run_app, small_bundle

from dpp.errors import InputError
from dpp.io import load_bundle
from dpp.io.observables import DefPotTarget
from dpp.models.subset import SpeciesColumns
from dpp.outputs.physics_report import physics_reports, report_markdown, report_scalars
from dpp.outputs.reporter import evaluate_bands
from dpp.physics import build_hamiltonian
from dpp.physics.observables import deformation_potentials

IDX_VB, IDX_CB = 7, 8  # CdSe: 4 valence bands, each twice without spin-orbit
N_K = 25  # L → Γ (row 20) → 4 points towards X


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture(scope="module")
def fit(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    """A 2-epoch fit of a small CdSe bundle with idxVB/idxCB, and its log lines."""
    tmp = tmp_path_factory.mktemp("fit")
    bundle = small_bundle(tmp, n_k=N_K)
    _set_key(bundle / "input_0.par", "idxVB", str(IDX_VB))
    _set_key(bundle / "input_0.par", "idxCB", str(IDX_CB))
    run_dir = tmp / "run"
    handler, logger = Lines(), logging.getLogger("dpp")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        run_app(run_dir, [f"data.bundle={bundle}", "trainer.max_epochs=2"])
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return bundle, run_dir, handler.lines


def _value(text: str, section: str, quantity: str, column: int) -> str:
    """A cell of the table row starting with `quantity` in `## section`."""
    part = text.split(f"## {section}")[1].split("\n## ")[0]
    row = next(line for line in part.splitlines() if line.startswith(f"| {quantity}"))
    return row.split("|")[column + 1].strip()


def test_fit_writes_the_report_in_file_log_and_tensorboard(fit) -> None:
    bundle, run_dir, log = fit
    text = (run_dir / "physics_report.md").read_text()
    reference = load_bundle(bundle).systems[0].ref_bands
    gap = reference[:, IDX_CB].min() - reference[:, IDX_VB].max()
    for section in ("final state", "best state"):
        assert _value(text, section, "band gap (eV)", 1).startswith(f"{gap:.4f}")
        assert _value(text, section, "VBM k", 1) == "Γ (row 20)"
        assert re.fullmatch(r"[-0-9.]+", _value(text, section, "band RMS, VBM-aligned", 2))
    rows = [line for line in text.splitlines() if line.startswith("| m*_VB at Γ along")]
    assert len(rows) == 4 * 2  # 2 directions (L–Γ, Γ–X) × 2 methods × 2 states
    assert "| valence-band width (eV, bands 0–7) |" in text
    lines = [line for line in text.splitlines() if line]
    start = log.index(lines[0])
    assert log[start : start + len(lines)] == lines
    events = EventAccumulator(str(next(run_dir.rglob("events.out.tfevents.*")).parent))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"report/sys0/gap_error_meV", "report/sys0/rms_vbm_aligned_meV"} <= set(tags)
    logged = events.Scalars("report/sys0/gap_error_meV")[-1].value
    error = float(_value(text, "final state", "band gap (eV)", 3).split()[0])
    assert logged == pytest.approx(error, abs=0.06)


def test_evaluate_on_a_strained_bundle_writes_the_report(fit, tmp_path: Path) -> None:
    bundle, run_dir, _ = fit
    strained = tmp_path / "strained"
    shutil.copytree(bundle, strained)
    system = strained / "system_0.par"
    scale = float(re.search(r"scale\s*=\s*(\S+)", system.read_text())[1])
    system.write_text(
        re.sub(r"scale\s*=\s*\S+", f"scale = {scale * 1.02:.10f}", system.read_text())
    )
    out = tmp_path / "eval"
    run_app(out, [f"run={run_dir}", "state=final", f"data.bundle={strained}"], "evaluate")
    text = (out / "physics_report.md").read_text()
    trained = (run_dir / "physics_report.md").read_text()
    model_gap = float(_value(text, "evaluation", "band gap (eV)", 2).split()[0])
    assert model_gap != float(_value(trained, "final state", "band gap (eV)", 2).split()[0])
    assert str(strained) in text.splitlines()[0]


def test_evaluate_a_joint_fit_on_one_crystal(fit, tmp_path: Path) -> None:
    """A fit of two systems evaluated on a one-system bundle reads that bundle's systems, not
    the fit's count (its saved data.n_system)."""
    bundle, run_dir, _ = fit
    joint = tmp_path / "joint_run"
    shutil.copytree(run_dir, joint)
    saved = joint / "config_resolved.yaml"
    text = saved.read_text()
    assert "n_system: 1" in text
    saved.write_text(text.replace("n_system: 1", "n_system: 2", 1))
    out = tmp_path / "eval_one"
    run_app(out, [f"run={joint}", "state=final", f"data.bundle={bundle}"], "evaluate")
    assert "### system 0" in (out / "physics_report.md").read_text()


def test_evaluate_on_a_subset_of_the_species(fit, tmp_path: Path) -> None:
    bundle, run_dir, _ = fit
    only_se = tmp_path / "Se"
    shutil.copytree(bundle, only_se)
    (only_se / "init_CdParams.par").unlink()
    system = only_se / "system_0.par"
    system.write_text(system.read_text().replace("Cd 0.125", "Se 0.125"))
    out = tmp_path / "eval"
    run_app(out, [f"run={run_dir}", f"data.bundle={only_se}"], "evaluate")
    assert "### system 0: Se" in (out / "physics_report.md").read_text()
    unknown = tmp_path / "Te"
    shutil.copytree(only_se, unknown)
    (unknown / "system_0.par").write_text(system.read_text().replace("Se", "Te"))
    shutil.copy(only_se / "init_SeParams.par", unknown / "init_TeParams.par")
    with pytest.raises(InputError, match="species the fit has no potential for"):
        run_app(tmp_path / "eval_te", [f"run={run_dir}", f"data.bundle={unknown}"], "evaluate")


def test_species_columns_pick_the_fitted_outputs() -> None:
    model = torch.nn.Linear(1, 3, dtype=torch.float64)
    q = torch.linspace(0.1, 2.0, 5, dtype=torch.float64)[:, None]
    picked = SpeciesColumns(model, [2, 0])(q)
    np.testing.assert_array_equal(picked.detach(), model(q).detach()[:, [2, 0]])


def test_report_rows_of_deformation_potentials_and_missing_edges() -> None:
    bundle = shrink_bundle(load_bundle(CDSE), 2.0)
    system = bundle.systems[0]
    target = DefPotTarget(((20, IDX_VB), (20, IDX_CB)), 1.01, -2.5, 1.0, 1)
    edges = replace(system.settings, idx_vb=IDX_VB, idx_cb=IDX_CB)
    bundle.systems = [replace(system, settings=edges, defpot_targets=(target,)), system]
    hamiltonian = build_hamiltonian(bundle)
    with_edges, without = physics_reports(hamiltonian, evaluate_bands(hamiltonian))
    expected = float(deformation_potentials(hamiltonian, 0, [target])[0])
    ((name, d_ref, d_model),) = with_edges.defpots
    assert (d_ref, d_model) == (-2.5, pytest.approx(expected, abs=1e-12))
    text = report_markdown({"check": [with_edges, without]}, "report")
    assert f"| {name} | -2.5000 | {expected:.4f} |" in text
    assert "no idxVB in input_X.par" in text
    assert report_scalars([with_edges, without]).keys() >= {
        "report/sys0/gap_error_meV",
        "report/sys0/defpot0_error_meV",
    }

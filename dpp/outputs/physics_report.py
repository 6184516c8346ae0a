"""The physics report of a fit: per system, model against reference — band gap and its k-points,
valence-band width, effective masses at the band edges, VBM-aligned band RMS and deformation
potentials — as `<run>/physics_report.md`, log lines and TensorBoard scalars.

Edges are the maximum of column idxVB and the minimum of column idxCB (idxVB + 1 when unset)
of input_X.par over the path; the width runs down to the lowest valence column of non-zero
band weight. Masses (`dpp.physics.band_edges`) are taken at the reference's edge k-points for
both columns, by the same parabola fit on the path, plus the model's own from H(k ± δ).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dpp.io.records import SystemData
from dpp.io.writers import write_text_atomic
from dpp.outputs.band_plot import point_names
from dpp.physics.band_edges import (
    FD_STEP,
    MASS_POINTS,
    BandSummary,
    MassRequest,
    band_summary,
    edge_runs,
    hamiltonian_masses,
)
from dpp.physics.hamiltonian import PseudopotentialHamiltonian
from dpp.physics.observables import deformation_potentials

log = logging.getLogger("dpp")

REPORT_FILE = "physics_report.md"

LEGEND = (
    "Edges: maximum of band idxVB and minimum of band idxCB over the path (rows of"
    " kpoints_X.par). Masses m* = ħ²/(d²E/dk²) in m_e, signed, at the reference's edge k for"
    " both columns (the model's own edges without a reference), along each straight piece of"
    " the path through it: by the same parabola fit to the path points in both columns, and"
    " from the model's H(k ± δ). Band RMS: bands of non-zero weight after aligning each VBM."
)


@dataclass(frozen=True)
class EdgeMasses:
    """Masses (m_e) of one edge at path row `k_index`, one per run (first row, last row)
    through it: reference and model by the path parabola, model from H(k ± δ)."""

    k_index: int
    runs: tuple[tuple[int, int], ...]
    reference: tuple[float, ...] | None
    model: tuple[float, ...]
    hamiltonian: tuple[float, ...]


@dataclass(frozen=True)
class SystemReport:
    """The report of one system; `note` says why it holds no edges (then only the name)."""

    index: int
    name: str
    model: BandSummary | None = None
    reference: BandSummary | None = None
    vb: EdgeMasses | None = None
    cb: EdgeMasses | None = None
    names: Mapping[int, str] | None = None
    rms_mev: float | None = None
    defpots: tuple[tuple[str, float, float], ...] = ()
    note: str = ""


def _edge_columns(system: SystemData, n_columns: int) -> tuple[int, int] | str:
    settings = system.settings
    if settings.idx_vb is None:
        return "no idxVB in input_X.par: band edges unknown"
    idx_cb = settings.idx_cb if settings.idx_cb is not None else settings.idx_vb + 1
    if max(settings.idx_vb, idx_cb) >= n_columns:
        return f"idxVB/idxCB ({settings.idx_vb}/{idx_cb}) outside the {n_columns} bands"
    return settings.idx_vb, idx_cb


def _lowest_valence(system: SystemData, idx_vb: int) -> int:
    fitted = np.flatnonzero(np.asarray(system.band_weights)[: idx_vb + 1] > 0)
    return int(fitted[0]) if fitted.size else 0


def _rms_mev(system: SystemData, model: np.ndarray, idx_vb: int) -> float:
    """RMS over bands of non-zero weight and k of non-zero weight after aligning both VBMs."""
    reference = np.asarray(system.ref_bands)
    error = (model - model[:, idx_vb].max()) - (reference - reference[:, idx_vb].max())
    rows = np.asarray(system.kweights) > 0
    columns = np.asarray(system.band_weights) > 0
    return float(np.sqrt(np.mean(error[np.ix_(rows, columns)] ** 2)) * 1000.0)


def system_report(
    hamiltonian: PseudopotentialHamiltonian, index: int, bands: np.ndarray
) -> SystemReport:
    """The report of system `index` for its model bands (nK, nB) eV."""
    system = hamiltonian.systems[index]
    columns = _edge_columns(system, bands.shape[1])
    if isinstance(columns, str):
        return SystemReport(index, system.name, note=columns)
    idx_vb, idx_cb = columns
    lowest = _lowest_valence(system, idx_vb)
    kpoints = system.kpoints @ hamiltonian.geometries[index].lattice.reciprocal
    reference, at = None, None
    if system.ref_bands is not None:
        reference = band_summary(np.asarray(system.ref_bands), kpoints, idx_vb, idx_cb, lowest)
        at = (reference.vbm.k_index, reference.cbm.k_index)
    model = band_summary(bands, kpoints, idx_vb, idx_cb, lowest, at)
    v_row, c_row = at or (model.vbm.k_index, model.cbm.k_index)
    ref_vb, ref_cb = (
        (None, None) if reference is None else (reference.vb_masses, reference.cb_masses)
    )
    v_runs = [run for _, run in edge_runs(kpoints, v_row)]
    c_runs = [run for _, run in edge_runs(kpoints, c_row)]
    fd_vb, fd_cb = hamiltonian_masses(
        hamiltonian,
        index,
        [
            MassRequest(v_row, idx_vb, tuple(r.direction for r in v_runs)),
            MassRequest(c_row, idx_cb, tuple(r.direction for r in c_runs)),
        ],
    )
    vb = EdgeMasses(v_row, tuple((r.first, r.last) for r in v_runs), ref_vb, model.vb_masses, fd_vb)
    cb = EdgeMasses(c_row, tuple((r.first, r.last) for r in c_runs), ref_cb, model.cb_masses, fd_cb)
    ends = {row for r in v_runs + c_runs for row in (r.first, r.last)}
    rows = {model.vbm.k_index, model.cbm.k_index, *ends}
    if reference is not None:
        rows |= {reference.vbm.k_index, reference.cbm.k_index}
    names = point_names(rows, system.kpoints, system.crystal.lattice, system.kpoint_labels)
    defpots: tuple[tuple[str, float, float], ...] = ()
    if system.defpot_targets:
        with torch.no_grad():
            values = deformation_potentials(hamiltonian, index, system.defpot_targets)
        defpots = tuple(
            (_defpot_name(t.states, t.ratio), t.d_ref, float(v))
            for t, v in zip(system.defpot_targets, values.detach().cpu().tolist(), strict=True)
        )
    return SystemReport(
        index,
        system.name,
        model=model,
        reference=reference,
        vb=vb,
        cb=cb,
        names={row: names.get(row, _coordinates(system.kpoints[row])) for row in rows},
        rms_mev=None if reference is None else _rms_mev(system, bands, idx_vb),
        defpots=defpots,
    )


def physics_reports(
    hamiltonian: PseudopotentialHamiltonian, bands: Sequence[np.ndarray]
) -> list[SystemReport]:
    """The report of every system for its model bands (nK, nB) eV."""
    return [system_report(hamiltonian, i, np.asarray(b)) for i, b in enumerate(bands)]


def _defpot_name(states: tuple[tuple[int, int], ...], ratio: float) -> str:
    what = " → ".join(f"band {b} at k {k}" for k, b in states)
    return f"D ({what}, s = {ratio:g}, eV)"


def _coordinates(point: np.ndarray) -> str:
    return "(" + ", ".join(f"{x:.3f}" for x in point) + ")"


def _mass(value: float) -> str:
    return f"{value:.3f}" if math.isfinite(value) else "∞"


def _relative(model: float, reference: float) -> str:
    if not (math.isfinite(model) and math.isfinite(reference)) or reference == 0:
        return ""
    return f"{100.0 * (model - reference) / abs(reference):+.1f} %"


def _direction(report: SystemReport, run: tuple[int, int]) -> str:
    return f"{report.names[run[0]]}–{report.names[run[1]]}"


def _edge_k(report: SystemReport, summary: BandSummary, which: str) -> str:
    edge = summary.vbm if which == "VBM" else summary.cbm
    return f"{report.names[edge.k_index]} (row {edge.k_index})"


def system_lines(report: SystemReport) -> list[str]:
    """The markdown table of one system (a heading and rows)."""
    lines = [f"### system {report.index}: {report.name}", ""]
    if report.model is None:
        return [*lines, report.note, ""]
    ref, model = report.reference, report.model
    lines += ["| quantity | reference | model | model − reference |", "|---|---|---|---|"]

    def row(what: str, r: str, m: str, d: str = "") -> None:
        lines.append(f"| {what} | {r} | {m} | {d} |")

    def kind(s: BandSummary) -> str:
        return "direct" if s.direct else "indirect"

    dash = "—"
    row(
        "band gap (eV)",
        f"{ref.gap:.4f} ({kind(ref)})" if ref else dash,
        f"{model.gap:.4f} ({kind(model)})",
        f"{1000 * (model.gap - ref.gap):+.1f} meV" if ref else "",
    )
    for which in ("VBM", "CBM"):
        row(
            f"{which} k",
            _edge_k(report, ref, which) if ref else dash,
            _edge_k(report, model, which),
        )
    row(
        f"valence-band width (eV, bands {model.lowest}–{model.vbm.band})",
        f"{ref.width:.4f}" if ref else dash,
        f"{model.width:.4f}",
        f"{1000 * (model.width - ref.width):+.1f} meV" if ref else "",
    )
    for label, masses in (("VB", report.vb), ("CB", report.cb)):
        at = report.names[masses.k_index]
        for i, run in enumerate(masses.runs):
            direction = _direction(report, run)
            r = masses.reference[i] if masses.reference is not None else math.nan
            m = masses.model[i]
            row(
                f"m*_{label} at {at} along {direction} (m_e, path parabola ±{MASS_POINTS} points)",
                _mass(r) if masses.reference is not None else dash,
                _mass(m),
                _relative(m, r),
            )
            row(
                f"m*_{label} at {at} along {direction} (m_e, H(k ± {FD_STEP:g}/Bohr))",
                dash,
                _mass(masses.hamiltonian[i]),
            )
    if report.rms_mev is not None:
        row("band RMS, VBM-aligned, fitted bands (meV)", dash, f"{report.rms_mev:.1f}")
    for name, d_ref, d_model in report.defpots:
        row(name, f"{d_ref:.4f}", f"{d_model:.4f}", f"{1000 * (d_model - d_ref):+.1f} meV")
    return [*lines, ""]


def report_markdown(sections: Mapping[str, Sequence[SystemReport]], title: str) -> str:
    """The markdown of `sections` (heading → reports of every system)."""
    lines = [f"# {title}", "", LEGEND, ""]
    for heading, reports in sections.items():
        lines += [f"## {heading}", ""]
        for report in reports:
            lines += system_lines(report)
    return "\n".join(lines)


def report_scalars(reports: Sequence[SystemReport], prefix: str = "report") -> dict[str, float]:
    """TensorBoard scalars `<prefix>/sys<X>/...`: gap, width and RMS errors (meV), mass errors
    (% of the reference, path parabola) and deformation-potential errors (meV)."""
    scalars: dict[str, float] = {}
    for report in reports:
        ref, model = report.reference, report.model
        if ref is None or model is None:
            continue
        key = f"{prefix}/sys{report.index}"
        scalars[f"{key}/gap_error_meV"] = 1000.0 * (model.gap - ref.gap)
        scalars[f"{key}/width_error_meV"] = 1000.0 * (model.width - ref.width)
        if report.rms_mev is not None:
            scalars[f"{key}/rms_vbm_aligned_meV"] = report.rms_mev
        for label, masses in (("vb", report.vb), ("cb", report.cb)):
            for i, (m, r) in enumerate(zip(masses.model, masses.reference or (), strict=False)):
                if math.isfinite(m) and math.isfinite(r) and r != 0:
                    scalars[f"{key}/mass_{label}{i}_error_pct"] = 100.0 * (m - r) / abs(r)
        for i, (_, d_ref, d_model) in enumerate(report.defpots):
            scalars[f"{key}/defpot{i}_error_meV"] = 1000.0 * (d_model - d_ref)
    return scalars


def write_physics_report(
    path: Path, sections: Mapping[str, Sequence[SystemReport]], title: str
) -> None:
    """`path` (markdown, atomically) and the same lines in the log."""
    text = report_markdown(sections, title)
    write_text_atomic(path, text)
    for line in text.splitlines():
        if line:
            log.info("%s", line)

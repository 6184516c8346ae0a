"""Band edges, gap, valence-band width and effective masses of bands on a k-path (eV, 1/Bohr,
free-electron masses m_e), and the model's masses from H(k ± δ) off the path.

Masses are band curvatures m* = ħ²/(d²E/dk²), signed (negative at a maximum), along each
straight piece of the path ("run") through the edge:

- on the path, a least-squares parabola through the edge and `points` path points on each side
  within the run, E = a + b·s + c·s² (s: signed distance along the run, 1/Bohr); when the edge
  ends its run only the points on the one side, E = a + c·s² (the run ends at a
  time-reversal-invariant point, where dE/dk = 0);
- from the Hamiltonian, the central difference (E(k + δu) + E(k − δu) − 2E(k)) / δ² of the
  same band (ascending eigenvalues) along the run's unit vector u.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from dpp.io.records import SystemData
from dpp.physics.constants import AUTOEV
from dpp.physics.hamiltonian import PseudopotentialHamiltonian

MASS_POINTS = 2
"""Path points on each side of an edge in the parabola fit."""

FD_STEP = 0.005
"""δ of the Hamiltonian's central differences, 1/Bohr."""

_PARALLEL = 1e-6
"""Two path steps are one run when 1 − cos(angle) is below this."""


@dataclass(frozen=True)
class Edge:
    """A band extremum on the path: row `k_index` of band column `band`, energy in eV."""

    k_index: int
    band: int
    energy: float


@dataclass(frozen=True)
class Run:
    """A straight piece of the path, rows `first`..`last` (at least 3 points), with its unit
    direction (Cartesian)."""

    first: int
    last: int
    direction: np.ndarray


@dataclass(frozen=True)
class BandSummary:
    """Gap (CBM − VBM, eV; direct when both edges sit at the same k), valence-band width
    (VBM − lowest energy of band `lowest`, eV) and the path masses of both edges (m_e), one per
    run through the k-point they were taken at (`edge_runs`)."""

    vbm: Edge
    cbm: Edge
    gap: float
    direct: bool
    lowest: int
    width: float
    vb_masses: tuple[float, ...]
    cb_masses: tuple[float, ...]


def straight_runs(kpoints: np.ndarray) -> list[Run]:
    """The straight pieces of a path of Cartesian k-points (nK, 3): consecutive non-zero,
    parallel steps. A repeated point or a change of direction starts a new run; runs of fewer
    than 3 points (jumps such as U|K) are dropped."""
    steps = np.diff(np.asarray(kpoints, dtype=np.float64), axis=0)
    lengths = np.linalg.norm(steps, axis=1)
    scale = float(lengths.max()) if lengths.size else 0.0
    runs: list[Run] = []
    start = 0
    for i in range(len(steps) + 1):
        ends = i == len(steps) or lengths[i] <= 1e-9 * scale
        if not ends and i > start:
            cosine = float(steps[i - 1] @ steps[i]) / float(lengths[i - 1] * lengths[i])
            ends = cosine < 1.0 - _PARALLEL
        if ends:
            if i - start >= 2:
                runs.append(Run(start, i, steps[start] / lengths[start]))
            start = i if i == len(steps) or lengths[i] > 1e-9 * scale else i + 1
    return runs


def runs_through(runs: list[Run], index: int) -> list[Run]:
    """The runs that contain path row `index`."""
    return [run for run in runs if run.first <= index <= run.last]


def edge_runs(kpoints: np.ndarray, row: int) -> list[tuple[int, Run]]:
    """(row, run) for every run through a path row at the k-point of `row` (a path may pass a
    point such as Γ more than once), in path order."""
    kpoints = np.asarray(kpoints, dtype=np.float64)
    same = np.flatnonzero(np.all(np.abs(kpoints - kpoints[row]) < 1e-8, axis=1))
    runs = straight_runs(kpoints)
    return [(int(r), run) for r in same for run in runs_through(runs, int(r))]


def parabola_mass(distance: np.ndarray, energies: np.ndarray, linear: bool) -> float:
    """m* (m_e) of a least-squares parabola through energies (eV) at signed distances (1/Bohr);
    without `linear` the vertex is at distance 0. Infinite for a flat band, NaN for
    non-finite energies."""
    s = np.asarray(distance, dtype=np.float64)
    if not np.all(np.isfinite(energies)):
        return float("nan")
    columns = [np.ones_like(s), s, s**2] if linear else [np.ones_like(s), s**2]
    coefficients, *_ = np.linalg.lstsq(np.stack(columns, axis=1), energies / AUTOEV, rcond=None)
    curvature = 2.0 * coefficients[-1]
    return float(1.0 / curvature) if curvature != 0.0 else float("inf")


def path_mass(
    column: np.ndarray, kpoints: np.ndarray, index: int, run: Run, points: int = MASS_POINTS
) -> float:
    """m* (m_e) of one band (nK,) eV at path row `index` along `run` (Cartesian k, 1/Bohr)."""
    rows = np.arange(run.first, run.last + 1)
    at = index - run.first
    if 0 < at < len(rows) - 1:
        chosen, linear = rows[max(0, at - points) : at + points + 1], True
    elif at == 0:
        chosen, linear = rows[: points + 1], False
    else:
        chosen, linear = rows[-points - 1 :], False
    distance = (kpoints[chosen] - kpoints[index]) @ run.direction
    return parabola_mass(distance, column[chosen] - column[index], linear)


def band_summary(
    bands: np.ndarray,
    kpoints: np.ndarray,
    idx_vb: int,
    idx_cb: int,
    lowest: int,
    at: tuple[int, int] | None = None,
    points: int = MASS_POINTS,
) -> BandSummary:
    """Edges, gap, width and path masses of `bands` (nK, nB) eV on Cartesian `kpoints` (nK, 3)
    1/Bohr; VBM in column `idx_vb`, CBM in `idx_cb`, width down to column `lowest`. Masses are
    taken at the rows `at` (VBM row, CBM row) when given (e.g. the reference's edges, to compare
    like with like), else at this band structure's own edges."""
    kpoints = np.asarray(kpoints, dtype=np.float64)
    v_row, c_row = int(np.argmax(bands[:, idx_vb])), int(np.argmin(bands[:, idx_cb]))
    vbm = Edge(v_row, idx_vb, float(bands[v_row, idx_vb]))
    cbm = Edge(c_row, idx_cb, float(bands[c_row, idx_cb]))
    v_at, c_at = at if at is not None else (v_row, c_row)
    return BandSummary(
        vbm=vbm,
        cbm=cbm,
        gap=cbm.energy - vbm.energy,
        direct=bool(np.allclose(kpoints[v_row], kpoints[c_row], atol=1e-8)),
        lowest=lowest,
        width=vbm.energy - float(np.min(bands[:, lowest])),
        vb_masses=tuple(
            path_mass(bands[:, idx_vb], kpoints, row, run, points)
            for row, run in edge_runs(kpoints, v_at)
        ),
        cb_masses=tuple(
            path_mass(bands[:, idx_cb], kpoints, row, run, points)
            for row, run in edge_runs(kpoints, c_at)
        ),
    )


@dataclass(frozen=True)
class MassRequest:
    """Masses of band column `band` at path row `k_index` along unit directions (Cartesian)."""

    k_index: int
    band: int
    directions: tuple[np.ndarray, ...]


@torch.no_grad()
def hamiltonian_masses(
    hamiltonian: PseudopotentialHamiltonian,
    system: int,
    requests: Sequence[MassRequest],
    step: float = FD_STEP,
) -> list[tuple[float, ...]]:
    """m* (m_e) of every request (one per direction) on `system`, from central differences of
    the eigenvalues of H(k ± step·u) (eval mode; ascending eigenvalues, no order matrix), all
    in one Hamiltonian of the system's basis at those k-points."""
    data: SystemData = hamiltonian.systems[system]
    lattice = hamiltonian.geometries[system].lattice
    points = []
    for request in requests:
        centre = lattice.cartesian_kpoints(data.kpoints[request.k_index])
        points += [
            centre,
            *(centre + sign * step * u for u in request.directions for sign in (1, -1)),
        ]
    if not points:
        return [() for _ in requests]
    fractional = np.array(points) @ np.linalg.inv(lattice.reciprocal)
    probe = replace(
        data,
        kpoints=fractional,
        kweights=np.ones(len(fractional)),
        order_matrix=None,
        ref_path=None,
        ref_bands=None,
        kpoint_labels={},
        defpot_targets=(),
        qpoints=None,
        qweights=None,
        couplings=None,
    )
    view = PseudopotentialHamiltonian(
        [probe],
        hamiltonian.species,
        hamiltonian.pp_table().detach().cpu().numpy(),
        hamiltonian.model,
        hamiltonian.options,
        device=hamiltonian.pp_fixed.device,
    )
    model = hamiltonian.model
    was_training = model.training if model is not None else False
    if model is not None:
        model.eval()
    try:
        energies = view.bands(0).cpu().numpy() / AUTOEV
    finally:
        if model is not None:
            model.train(was_training)
    masses, row = [], 0
    for request in requests:
        column = energies[row : row + 1 + 2 * len(request.directions), request.band]
        curvature = (column[1::2] + column[2::2] - 2.0 * column[0]) / step**2
        masses.append(tuple(float(1.0 / c) if c != 0.0 else float("inf") for c in curvature))
        row += 1 + 2 * len(request.directions)
    return masses

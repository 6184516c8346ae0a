"""Cutoff continuation of the box solves: the band-edge states of a box solved first at
coarser cutoffs, each solve's whole final block (wanted and buffer vectors) prolonged onto
the next, finer basis as that solve's start.

The basis {G : |G|²/2 < E_c} of a coarse cutoff is a subset of the fine one of the same
box, so a coarse vector becomes a fine one by placing its coefficients on the same plane
waves, zero on the new ones (an isometry). The hard part of a folded solve, separating the
clustered smallest eigenvalues of (H − E)², is nearly the same at a low cutoff, where an
H application is many times cheaper; the fine solve then mostly corrects short-wavelength
components, which its preconditioner damps well.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from dpp.physics import AUTOEV, PseudopotentialHamiltonian
from dpp.states.edges import (
    BulkEdges,
    EdgeStates,
    LigandPotential,
    band_edge_states,
    box_hamiltonian,
)
from dpp.states.hamiltonian import GridHamiltonian, label_index
from dpp.states.settings import SolverSettings
from dpp.states.structures import Structure

log = logging.getLogger("dpp")


@dataclass(frozen=True)
class Level:
    """One cutoff of a continuation: maxKE (Hartree), the fit's potential and the bulk band
    edges of the fit at that cutoff (the folding references of its solves)."""

    max_ke: float
    potential: PseudopotentialHamiltonian
    edges: BulkEdges


@dataclass(frozen=True)
class BoxSolve:
    """A box solved through its levels: the Hamiltonian and states of the last (finest)
    level, and per level (coarse first) its plane waves, H applications and seconds."""

    hamiltonian: GridHamiltonian
    states: EdgeStates
    plane_waves: tuple[int, ...]
    applications: tuple[int, ...]
    seconds: tuple[float, ...]


def prolong(coarse: GridHamiltonian, fine: GridHamiltonian, vectors: torch.Tensor) -> torch.Tensor:
    """Plane-wave coefficients (coarse.dim, m) of the coarse box as coefficients (fine.dim,
    m) of the fine box: each on its plane wave, zero on the fine basis's others (spinors:
    each spin alike)."""
    index = torch.as_tensor(label_index(coarse.labels, fine.labels), device=vectors.device)
    spins = coarse.dim // coarse.n_basis
    out = torch.zeros(
        (spins, fine.n_basis, vectors.shape[1]), dtype=vectors.dtype, device=vectors.device
    )
    out[:, index] = vectors.reshape(spins, coarse.n_basis, -1)
    return out.reshape(spins * fine.n_basis, -1)


def _prolonged(coarse: GridHamiltonian, fine: GridHamiltonian, states: EdgeStates) -> EdgeStates:
    """`states` of the coarse box, vectors and buffers on the fine box's basis."""
    sides = (
        replace(
            side,
            vectors=prolong(coarse, fine, side.vectors),
            buffer=prolong(coarse, fine, side.buffer),
        )
        for side in (states.valence, states.conduction)
    )
    return EdgeStates(*sides)


def _moved_edges(states: EdgeStates, coarse: BulkEdges, fine: BulkEdges) -> BulkEdges:
    """The box's own band edges at the finer cutoff, predicted: those of its coarse `states`
    moved as the bulk band edges move from `coarse` to `fine` (Hartree)."""
    return BulkEdges(
        vbm=float(states.valence.energies.max()) + fine.vbm - coarse.vbm,
        cbm=float(states.conduction.energies.min()) + fine.cbm - coarse.cbm,
    )


def solve_box(
    structure: Structure,
    levels: list[Level],
    ligands: dict[str, LigandPotential],
    solver: SolverSettings,
    name: str = "box",
) -> BoxSolve:
    """The band-edge states of `structure` at the last level's cutoff: one box and solve per
    level, the first from random vectors folded about the bulk band edges, each later one
    from the states of the level before, prolonged, folded about the box's own edges
    predicted from them (`_moved_edges`: closer to the wanted states than the bulk's, which
    speeds the folded solve; the offset is then a fraction of the box's gap)."""
    coarse: GridHamiltonian | None = None
    states: EdgeStates | None = None
    edges = levels[0].edges
    plane_waves, applications, seconds = [], [], []
    for previous, level in zip([None, *levels], levels, strict=False):
        began = time.perf_counter()
        if previous is not None:
            edges = _moved_edges(states, previous.edges, level.edges)
            log.info(
                "%s: maxKE %g Ha folds about the predicted VBM %.4f eV, CBM %.4f eV",
                name,
                level.max_ke,
                edges.vbm * AUTOEV,
                edges.cbm * AUTOEV,
            )
        hamiltonian = box_hamiltonian(
            structure, level.potential, level.max_ke, ligands, device=solver.device
        )
        log.info(
            "%s: %d atoms (%d host), box %.2f Bohr, maxKE %g Ha, %d plane waves, FFT grid %s",
            name,
            len(structure.kinds),
            structure.n_host_atoms,
            float(np.linalg.norm(structure.cell, axis=1).max()),
            level.max_ke,
            hamiltonian.n_basis,
            "x".join(map(str, hamiltonian.shape)),
        )
        start = None if coarse is None else _prolonged(coarse, hamiltonian, states)
        states = band_edge_states(
            hamiltonian,
            edges,
            solver.n_valence,
            solver.n_conduction,
            offset=solver.offset,
            buffer=solver.buffer,
            tol=solver.tol,
            max_iter=solver.max_iter,
            start=start,
        )
        plane_waves.append(hamiltonian.n_basis)
        applications.append(states.valence.applications + states.conduction.applications)
        seconds.append(time.perf_counter() - began)
        log.info(
            "%s: maxKE %g Ha, gap %.4f eV, %d H applications (%.1f s)",
            name,
            level.max_ke,
            states.gap * AUTOEV,
            applications[-1],
            seconds[-1],
        )
        coarse = hamiltonian
    return BoxSolve(hamiltonian, states, tuple(plane_waves), tuple(applications), tuple(seconds))

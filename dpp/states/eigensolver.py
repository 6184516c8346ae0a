"""Interior eigenpairs of a matrix-free Hermitian H: block LOBPCG on the folded spectrum.

The states nearest a reference energy E are the lowest of (H − E)² (Wang and Zunger's
folded spectrum). LOBPCG iterates a block X with the preconditioned residuals W and the
previous directions P, Rayleigh–Ritz on span[X, P, W] of the folded operator; every
iteration ends with Rayleigh–Ritz of H itself on span X, which separates states that the
folding makes degenerate (E ± δ) and resolves degenerate levels and Kramers pairs, and
whose residuals ‖H x − ε x‖ (Hartree) decide convergence.

P and W are orthonormalised against X and each other, their images under H and the
folded operator carried along by the same linear combinations (no extra H application),
so that the Rayleigh–Ritz basis stays well conditioned (the usual breakdown of LOBPCG
when P and X become nearly parallel). Wanted columns whose residual met the tolerance
are soft-locked: they stay in X but get no new W or P directions.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

log = logging.getLogger("dpp")

Operator = Callable[[torch.Tensor], torch.Tensor]

DEPENDENT = 1e-10
"""A direction is dropped as linearly dependent below this fraction of its norm after
projection, or this Gram eigenvalue (of unit columns, per column)."""


@dataclass(frozen=True)
class InteriorStates:
    """energies (n,) Hartree ascending, vectors (N, n), residuals ‖Hx − εx‖ (n,) Hartree,
    the iterations used, the vectors H was applied to (in all) and whether every residual
    met the tolerance; buffer (N, m − n): the final block's other Ritz vectors (a start for
    a further solve with the vectors)."""

    energies: torch.Tensor
    vectors: torch.Tensor
    buffer: torch.Tensor
    residuals: torch.Tensor
    iterations: int
    applications: int
    converged: bool


def _orthonormal(
    blocks: list[torch.Tensor], others: list[torch.Tensor] | None = None
) -> list[torch.Tensor]:
    """blocks[0] made orthonormal and orthogonal to the orthonormal others[0], by two passes
    of projection and Gram eigen-orthonormalisation of unit-normalised columns (columns
    that lie in span others[0] to DEPENDENT or repeat earlier ones are dropped); blocks[1:], the
    images of blocks[0] under linear operators whose images of others[0] are others[1:],
    transformed alike."""
    for _ in range(2):
        before = torch.linalg.vector_norm(blocks[0], dim=0)
        if others is not None:
            overlap = others[0].mH @ blocks[0]
            blocks = [b - o @ overlap for b, o in zip(blocks, others, strict=True)]
        norms = torch.linalg.vector_norm(blocks[0], dim=0)
        kept = norms > DEPENDENT * before
        blocks = [b[:, kept] / norms[kept] for b in blocks]
        values, vectors = torch.linalg.eigh(blocks[0].mH @ blocks[0])
        keep = values > DEPENDENT * max(blocks[0].shape[1], 1)
        transform = vectors[:, keep] / values[keep].sqrt()
        blocks = [b @ transform for b in blocks]
    return blocks


def _ritz_h(
    block: torch.Tensor, h_block: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rayleigh–Ritz of H on span `block` (orthonormal): energies, rotation, residual norms."""
    small = block.mH @ h_block
    energies, rotation = torch.linalg.eigh(0.5 * (small + small.mH))
    residual = h_block @ rotation - (block @ rotation) * energies
    return energies, rotation, torch.linalg.vector_norm(residual, dim=0)


def _nearest(
    energies: torch.Tensor, reference: float, window: tuple[float, float], count: int
) -> torch.Tensor:
    """Indices of the `count` energies nearest `reference`, those inside `window` first."""
    outside = (energies < window[0]) | (energies > window[1])
    distance = (energies - reference).abs() + outside * (energies.abs().max() + abs(reference))
    return torch.argsort(distance)[:count]


def _active(
    energies: torch.Tensor,
    residuals: torch.Tensor,
    reference: float,
    window: tuple[float, float],
    count: int,
    tol: float,
) -> torch.Tensor:
    """Columns still iterated: all but the wanted ones (as `_nearest`) whose residual met
    `tol` (soft locking)."""
    nearest = _nearest(energies, reference, window, count)
    active = torch.ones(len(energies), dtype=torch.bool, device=energies.device)
    active[nearest] = residuals[nearest] > tol
    return active


def folded_lobpcg(
    hamiltonian: Operator,
    start: torch.Tensor,
    reference: float,
    preconditioner: torch.Tensor,
    *,
    n_wanted: int,
    tol: float = 1e-4,
    max_iter: int = 500,
    window: tuple[float, float] = (-math.inf, math.inf),
    label: str = "states",
    log_every: int = 10,
) -> InteriorStates:
    """The `n_wanted` eigenpairs of H nearest `reference` (Hartree) within `window` (Hartree;
    Ritz values outside it are taken only when too few lie inside).

    start: (N, m) initial block, m ≥ n_wanted (the extra columns speed convergence); real
    for an H that maps real vectors to real ones (dpp.states.realgamma), else complex.
    preconditioner: (N,) positive diagonal approximating ((H − E)²)⁻¹. Converged when the
    n_wanted nearest Ritz pairs of H have ‖Hx − εx‖ ≤ tol (Hartree).
    """
    began = time.perf_counter()
    applications = 0

    def apply(vectors: torch.Tensor) -> torch.Tensor:
        nonlocal applications
        applications += vectors.shape[1]
        return hamiltonian(vectors)

    def images(vectors: torch.Tensor) -> list[torch.Tensor]:
        """[ψ, Hψ, (H − E)²ψ]."""
        h_vectors = apply(vectors)
        shifted = h_vectors - reference * vectors
        return [vectors, h_vectors, apply(shifted) - reference * shifted]

    x, hx, ax = images(_orthonormal([start])[0])
    energies, rotation, residuals = _ritz_h(x, hx)
    x, hx, ax = x @ rotation, hx @ rotation, ax @ rotation
    columns = x.shape[1]
    active = _active(energies, residuals, reference, window, n_wanted, tol)
    p: list[torch.Tensor] | None = None
    iteration = 0
    for iteration in range(1, max_iter + 1):
        theta = (x.conj() * ax).sum(0).real
        residual = (ax - x * theta)[:, active]
        basis = [x, hx, ax]
        if p is not None:
            p = _orthonormal(p, basis)
            basis = [torch.cat(pair, dim=1) for pair in zip(basis, p, strict=True)]
        (w,) = _orthonormal([preconditioner[:, None] * residual], basis[:1])
        basis = [torch.cat(pair, dim=1) for pair in zip(basis, images(w), strict=True)]
        small = basis[0].mH @ basis[2]
        _, vectors = torch.linalg.eigh(0.5 * (small + small.mH))
        coefficients = vectors[:, :columns]
        tail = coefficients.clone()
        tail[:columns] = 0
        x, hx, ax = (b @ coefficients for b in basis)
        energies, rotation, residuals = _ritz_h(x, hx)
        x, hx, ax = x @ rotation, hx @ rotation, ax @ rotation
        active = _active(energies, residuals, reference, window, n_wanted, tol)
        p = [b @ (tail @ rotation[:, active]) for b in basis]
        worst = float(residuals[_nearest(energies, reference, window, n_wanted)].max())
        if iteration % log_every == 0 or worst <= tol:
            log.info(
                "%s: iteration %d, largest residual %.3g Ha of %d wanted, %d H applications "
                "(%.1f s)",
                label,
                iteration,
                worst,
                n_wanted,
                applications,
                time.perf_counter() - began,
            )
        if worst <= tol:
            break
    nearest = torch.sort(_nearest(energies, reference, window, n_wanted)).values
    others = torch.ones(columns, dtype=torch.bool, device=x.device)
    others[nearest] = False
    return InteriorStates(
        energies=energies[nearest],
        vectors=x[:, nearest],
        buffer=x[:, others],
        residuals=residuals[nearest],
        iterations=iteration,
        applications=applications,
        converged=bool(residuals[nearest].max() <= tol),
    )

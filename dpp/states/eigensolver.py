"""Interior eigenpairs of a matrix-free Hermitian H: block LOBPCG on the folded spectrum.

The states nearest a reference energy E are the lowest of (H − E)² (Wang and Zunger's
folded spectrum). LOBPCG iterates a block X with the preconditioned residuals W and the
previous directions P, Rayleigh–Ritz on span[X, W, P] of the folded operator; every
iteration ends with Rayleigh–Ritz of H itself on span X, which separates states that the
folding makes degenerate (E ± δ) and resolves degenerate levels and Kramers pairs, and
whose residuals ‖H x − ε x‖ (Hartree) decide convergence.
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


@dataclass(frozen=True)
class InteriorStates:
    """energies (n,) Hartree ascending, vectors (N, n), residuals ‖Hx − εx‖ (n,) Hartree,
    the iterations used and whether every residual met the tolerance."""

    energies: torch.Tensor
    vectors: torch.Tensor
    residuals: torch.Tensor
    iterations: int
    converged: bool


def _orthonormal(block: torch.Tensor, others: torch.Tensor | None = None) -> torch.Tensor:
    """An orthonormal basis of `block` orthogonal to the orthonormal `others` (columns whose
    norm vanishes are dropped)."""
    if others is not None:
        block = block - others @ (others.mH @ block)
    gram = block.mH @ block
    values, vectors = torch.linalg.eigh(gram)
    keep = values > values.max() * 1e-14
    basis = block @ (vectors[:, keep] / values[keep].sqrt())
    if others is not None:
        basis = basis - others @ (others.mH @ basis)
    values, vectors = torch.linalg.eigh(basis.mH @ basis)
    return basis @ (vectors / values.sqrt())


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

    start: (N, m) initial block, m ≥ n_wanted (the extra columns speed convergence).
    preconditioner: (N,) positive diagonal approximating ((H − E)²)⁻¹. Converged when the
    n_wanted nearest Ritz pairs of H have ‖Hx − εx‖ ≤ tol (Hartree).
    """
    began = time.perf_counter()

    def folded(h_vectors: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
        shifted = h_vectors - reference * vectors
        return hamiltonian(shifted) - reference * shifted

    x = _orthonormal(start)
    hx = hamiltonian(x)
    ax = folded(hx, x)
    p = hp = ap = None
    energies = residuals = torch.zeros(0)
    iteration = 0
    for iteration in range(1, max_iter + 1):
        theta = (x.conj() * ax).sum(0).real
        residual = ax - x * theta
        blocks = [x] if p is None else [x, p]
        h_blocks = [hx] if hp is None else [hx, hp]
        a_blocks = [ax] if ap is None else [ax, ap]
        w = _orthonormal(preconditioner[:, None] * residual, torch.cat(blocks, dim=1))
        hw = hamiltonian(w)
        basis = torch.cat([*blocks, w], dim=1)
        h_basis = torch.cat([*h_blocks, hw], dim=1)
        a_basis = torch.cat([*a_blocks, folded(hw, w)], dim=1)
        gram = basis.mH @ basis
        small = basis.mH @ a_basis
        values, vectors = torch.linalg.eigh(gram)
        keep = values > values.max() * 1e-12
        whiten = vectors[:, keep] / values[keep].sqrt()
        folded_small = whiten.mH @ (0.5 * (small + small.mH)) @ whiten
        _, rotation = torch.linalg.eigh(folded_small)
        coefficients = whiten @ rotation[:, : x.shape[1]]
        tail = coefficients.clone()
        tail[: x.shape[1]] = 0
        p, hp, ap = basis @ tail, h_basis @ tail, a_basis @ tail
        x, hx, ax = basis @ coefficients, h_basis @ coefficients, a_basis @ coefficients
        energies, rotation, residuals = _ritz_h(x, hx)
        x, hx, ax = x @ rotation, hx @ rotation, ax @ rotation
        nearest = _nearest(energies, reference, window, n_wanted)
        worst = float(residuals[nearest].max())
        if iteration % log_every == 0 or worst <= tol:
            log.info(
                "%s: iteration %d, largest residual %.3g Ha of %d wanted (%.1f s)",
                label,
                iteration,
                worst,
                n_wanted,
                time.perf_counter() - began,
            )
        if worst <= tol:
            break
    nearest = torch.sort(_nearest(energies, reference, window, n_wanted)).values
    return InteriorStates(
        energies=energies[nearest],
        vectors=x[:, nearest],
        residuals=residuals[nearest],
        iterations=iteration,
        converged=bool(residuals[nearest].max() <= tol),
    )

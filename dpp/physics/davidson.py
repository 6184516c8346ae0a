"""Block Davidson for the lowest eigenpairs of batched Hermitian matrices, warm-started.

Between optimiser steps H(k) moves a little, so the previous step's eigenvectors are an
excellent starting block. Each iteration expands the search space with preconditioned
residuals (diag(H) − θ)⁻¹ r, then Rayleigh–Ritz extracts the new approximations. When the
space is full it restarts thickly from the current Ritz block plus the previous
iteration's Ritz block ("GD+k", close to LOBPCG's three-term recurrence). All matrices of
a batch share the block size, so the same code serves one k-point on CPU and a whole chunk
of k-points on GPU. Energies and residuals are in Hartree.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

PRECONDITIONER_FLOOR = 0.3
"""Smallest denominator of the diagonal preconditioner (Hartree): diag(H) − θ is clamped
from below, which keeps low-lying components from being amplified without bound."""

SUBSPACE_FACTOR = 4
"""The search space holds at most this many blocks before a thick restart."""


@dataclass(frozen=True)
class DavidsonResult:
    """Ritz pairs of the block (ascending), their residual norms and convergence flags."""

    values: torch.Tensor  # (B, m) Ritz values, Hartree
    vectors: torch.Tensor  # (B, n, m) orthonormal Ritz vectors
    residuals: torch.Tensor  # (B, m) ‖H x − θ x‖₂, Hartree
    converged: torch.Tensor  # (B,) bool: admissible and every wanted column below tol
    admissible: torch.Tensor  # (B,) bool: the seed block passed the sin Θ test
    iterations: int


def orthonormal_complement(
    basis: torch.Tensor, block: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Orthonormal columns spanning `block` with `basis` projected out (two passes).

    Columns that (nearly) vanish after the projection, relative to their length before it,
    are replaced by projected random vectors, so the result always has the shape of `block`
    (needed for batches of uniform size) and stays orthogonal to `basis`.
    """
    lengths = torch.linalg.vector_norm(block, dim=-2)
    for _ in range(2):
        block = block - basis @ (basis.mH @ block)
    block, triangle = torch.linalg.qr(block)
    weak = triangle.diagonal(dim1=-2, dim2=-1).abs() <= 1e-10 * lengths
    if bool(weak.any()):
        noise = torch.randn(
            block.shape, dtype=block.dtype, device=block.device, generator=generator
        )
        block = torch.where(weak[:, None, :], noise, block)
        for _ in range(2):
            block = block - basis @ (basis.mH @ block)
        block, _ = torch.linalg.qr(block)
    return block


def block_davidson(
    matrices: torch.Tensor,
    guess: torch.Tensor,
    n_want: int,
    *,
    tol: float,
    max_iter: int,
    complement_floor: torch.Tensor | None = None,
    max_sine: float = 1.0,
) -> DavidsonResult:
    """Lowest m = guess.shape[-1] Ritz pairs of Hermitian `matrices` (B, n, n).

    `guess` (B, n, m) seeds the block (e.g. the previous step's eigenvectors); the first
    `n_want` columns must reach ‖H x − θ x‖₂ ≤ `tol` (Hartree) within `max_iter`
    iterations, the others are a buffer that speeds up convergence and is not judged.

    With `complement_floor` (B,), a lower bound (Hartree) of the spectrum of H restricted to
    the orthogonal complement of the seed block, the seed is first tested: every wanted
    eigenvector e of H has sin∠(e, seed block) ≤ ‖R₀‖₂/(floor − θ₀) with R₀ = (1 − XXᴴ)HX
    and θ₀ the first Ritz value bound of the highest wanted one (Davis–Kahan). Matrices whose
    bound exceeds `max_sine` (or whose floor lies below θ₀) are returned at once as not
    `admissible`: the seed might miss a wanted state altogether.
    """
    batch, n, block = guess.shape
    if not 1 <= n_want <= block < n:
        raise ValueError(f"need 1 <= n_want ({n_want}) <= block ({block}) < n ({n})")
    generator = torch.Generator(device=matrices.device).manual_seed(0)
    diagonal = matrices.diagonal(dim1=-2, dim2=-1).real
    basis, _ = torch.linalg.qr(guess)
    image = matrices @ basis
    projected = _hermitian(basis.mH @ image)
    limit = SUBSPACE_FACTOR * block
    previous: torch.Tensor | None = None
    admissible = torch.ones(batch, dtype=torch.bool, device=matrices.device)
    for iteration in range(max_iter + 1):
        theta, coefficients = torch.linalg.eigh(projected)
        ritz = coefficients[..., :block]
        values = theta[..., :block]
        vectors = basis @ ritz
        residual = image @ ritz - vectors * values[:, None, :]
        norms = torch.linalg.vector_norm(residual, dim=-2)
        if iteration == 0 and complement_floor is not None:
            coupling = torch.linalg.eigvalsh(residual.mH @ residual)[:, -1].clamp_min(0).sqrt()
            spread = complement_floor - values[:, n_want - 1]
            admissible = (spread > 0) & (coupling <= max_sine * spread)
        converged = admissible & (norms[:, :n_want] <= tol).all(dim=-1)
        if bool((converged | ~admissible).all()) or iteration == max_iter:
            return DavidsonResult(values, vectors, norms, converged, admissible, iteration)
        width = int((norms > tol).sum(dim=-1).max())
        chosen = torch.topk(norms, width, dim=-1).indices
        shift = torch.gather(values, 1, chosen)
        directions = torch.gather(residual, 2, chosen[:, None, :].expand(-1, n, -1))
        directions = directions / (diagonal[:, :, None] - shift[:, None, :]).clamp_min(
            PRECONDITIONER_FLOOR
        )
        if basis.shape[-1] + width > limit:
            keep = ritz if previous is None else torch.cat([ritz, previous], dim=-1)
            keep, _ = torch.linalg.qr(keep)
            basis, image = basis @ keep, image @ keep
            projected = _hermitian(keep.mH @ projected @ keep)
            ritz = keep.mH @ ritz
        directions = orthonormal_complement(basis, directions, generator)
        new_image = matrices @ directions
        coupling = image.mH @ directions
        projected = torch.cat(
            [
                torch.cat([projected, coupling], dim=-1),
                torch.cat([coupling.mH, _hermitian(directions.mH @ new_image)], dim=-1),
            ],
            dim=-2,
        )
        previous = torch.cat([ritz, ritz.new_zeros(batch, width, block)], dim=-2)
        basis = torch.cat([basis, directions], dim=-1)
        image = torch.cat([image, new_image], dim=-1)
    raise AssertionError("unreachable")


def _hermitian(matrix: torch.Tensor) -> torch.Tensor:
    """(A + Aᴴ)/2: the projected matrices are Hermitian up to round-off."""
    return 0.5 * (matrix + matrix.mH)

"""Lowest eigenpairs of batched Hermitian matrices, differentiable in the eigenvalues.

Only the wanted eigenpairs are computed (LAPACK's subset driver through SciPy on CPU,
batched `torch.linalg.eigh` on GPU, or the warm-started block Davidson of
`dpp.physics.warmstart`), and the backward pass uses only their eigenvectors:
dE_n/dH = v_n v_nᴴ. A loss that is symmetric in a degenerate group of bands has a
well-defined gradient this way, because it depends on the group's projector alone.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.linalg
import torch

SOLVERS = ("auto", "lapack", "torch", "davidson")

Solve = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""Detached matrices (B, n, n) → lowest eigenvalues (B, k) and eigenvectors (B, n, k)."""


def resolve_solver(solver: str, device: torch.device) -> str:
    """The dense method behind `solver`: the LAPACK subset driver on CPU and batched torch
    eigh elsewhere for `auto` and `davidson` (whose cold starts and fallbacks are dense)."""
    if solver not in SOLVERS:
        raise ValueError(f"eigensolver must be one of {SOLVERS}, got {solver!r}")
    if solver in ("auto", "davidson"):
        return "lapack" if device.type == "cpu" else "torch"
    return solver


def uses_iterative(solver: str, device: torch.device, dim: int, min_dim: int) -> bool:
    """Whether H(k) of dimension `dim` is solved by the warm-started Davidson.

    `davidson` always; `auto` on CPU from `min_dim` on (below it LAPACK's evr is faster),
    never on GPU (batched eigh until a crossover is measured there).
    """
    if solver == "davidson":
        return True
    return solver == "auto" and device.type == "cpu" and dim >= min_dim


def lowest_eigh_raw(
    matrices: torch.Tensor, n_eig: int, solver: str = "auto"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lowest `n_eig` eigenvalues (B, n_eig) and eigenvectors (B, n, n_eig); no autograd.

    On CPU each matrix is solved by LAPACK's subset driver, which uses the BLAS threads
    (`num_threads` sets them); SciPy holds the GIL there, so k-points are solved in turn.
    """
    method = resolve_solver(solver, matrices.device)
    if method == "torch":
        values, vectors = torch.linalg.eigh(matrices)
        return values[..., :n_eig], vectors[..., :n_eig]
    host = matrices.detach().cpu().numpy()
    values = np.empty(host.shape[:-2] + (n_eig,), dtype=np.float64)
    vectors = np.empty(host.shape[:-1] + (n_eig,), dtype=host.dtype)

    for index in np.ndindex(host.shape[:-2]):
        values[index], vectors[index] = scipy.linalg.eigh(
            host[index], subset_by_index=(0, n_eig - 1), driver="evr", check_finite=False
        )
    return (
        torch.from_numpy(values).to(matrices.device),
        torch.from_numpy(vectors).to(matrices.device),
    )


class _LowestEigh(torch.autograd.Function):
    @staticmethod
    def forward(ctx, matrices: torch.Tensor, solve: Solve):  # noqa: ANN205
        values, vectors = solve(matrices.detach())
        ctx.save_for_backward(vectors)
        ctx.mark_non_differentiable(vectors)
        return values, vectors

    @staticmethod
    def backward(ctx, grad_values: torch.Tensor, _grad_vectors: torch.Tensor):
        (vectors,) = ctx.saved_tensors
        weighted = vectors * grad_values.to(vectors.dtype).unsqueeze(-2)
        return weighted @ vectors.mH, None


def differentiable_eigenpairs(
    matrices: torch.Tensor, solve: Solve
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenpairs from any `solve`, differentiable in the eigenvalues (dE_n/dH = v_n v_nᴴ)."""
    return _LowestEigh.apply(matrices, solve)


def lowest_eigh(
    matrices: torch.Tensor, n_eig: int, solver: str = "auto"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lowest `n_eig` eigenpairs of Hermitian (…, n, n) matrices (lower triangle is read).

    Returns eigenvalues (…, n_eig) in ascending order, differentiable with
    dE_n/dH = v_n v_nᴴ, and eigenvectors (…, n, n_eig) as constants.
    """
    if n_eig < 1 or n_eig > matrices.shape[-1]:
        raise ValueError(f"n_eig must be in [1, {matrices.shape[-1]}], got {n_eig}")
    return _LowestEigh.apply(matrices, lambda m: lowest_eigh_raw(m, n_eig, solver))

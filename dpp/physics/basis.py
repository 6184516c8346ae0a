"""Plane-wave basis {G : |G|²/2 < maxKE}, the same at every k (physics.md §3)."""

from __future__ import annotations

import math

import numpy as np

from dpp.physics.lattice import reciprocal_vectors

BASIS_SEARCH_MODES = ("complete", "legacy")


def largest_transfer(max_ke: float) -> float:
    """The largest |G − G'| (1/Bohr) between two basis vectors of cutoff maxKE (Hartree)."""
    return 2.0 * math.sqrt(2.0 * max_ke)


def integer_box(reciprocal: np.ndarray, max_ke: float, mode: str) -> np.ndarray:
    """Largest |n_r| searched per direction.

    `complete` covers the whole sphere (n_r ≤ ceil(G_max·|a_r|/2π)); `legacy` is the
    original's cube n_max = int(sqrt(2·maxKE)/min|b_r|), incomplete for non-orthogonal cells.
    """
    g_max = math.sqrt(2.0 * max_ke)
    if mode == "legacy":
        n_max = int(g_max / float(np.min(np.linalg.norm(reciprocal, axis=1))))
        return np.full(3, n_max, dtype=np.int64)
    if mode == "complete":
        vectors = reciprocal_vectors(reciprocal)
        return np.ceil(g_max * np.linalg.norm(vectors, axis=1) / (2.0 * np.pi)).astype(np.int64)
    raise ValueError(f"basis_search must be one of {BASIS_SEARCH_MODES}, got {mode!r}")


def plane_wave_basis(
    reciprocal: np.ndarray, max_ke: float, mode: str = "complete"
) -> tuple[np.ndarray, np.ndarray]:
    """Return (integer labels (N, 3), Cartesian G (N, 3) in 1/Bohr) in the original's order.

    Order: ascending |G|, ties by G_x, then G_y, then G_z (stable sorts as the original).
    """
    box = integer_box(reciprocal, max_ke, mode)
    axes = [np.arange(-n, n + 1) for n in box]
    labels = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    vectors = labels.astype(np.float64) @ reciprocal
    norms_sq = np.einsum("ij,ij->i", vectors, vectors)
    keep = norms_sq / 2.0 < max_ke
    labels, vectors = labels[keep], vectors[keep]
    norms = np.linalg.norm(vectors, axis=1)
    order = np.lexsort((vectors[:, 2], vectors[:, 1], vectors[:, 0], norms))
    return labels[order], vectors[order]

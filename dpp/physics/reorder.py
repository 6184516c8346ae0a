"""Band reordering along a k-path (physics.md §11).

Both methods return, per k-point, a permutation `perm` of the band columns such that the
reordered bands are `bands[k, perm[k]]`; the permutation is constant, so gradients flow
through the gathered eigenvalues.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

FAR = 999999.0
"""Cost of matching a slot to a raw band more than WINDOW positions away."""
WINDOW = 5
DEGENERATE_HARTREE = 1e-5
"""States closer than this (Hartree) form one degenerate group in the overlap reordering."""
HISTORY = 4


def extrapolate(history: np.ndarray) -> np.ndarray:
    """Next value of each band from its last four ordered values (rows oldest → newest)."""
    y1, y2, y3, y4 = history
    d1 = y4 - y3
    d2 = y4 - 2.0 * y3 + y2
    d3 = d2 - (y3 - 2.0 * y2 + y1)
    return y4 + 1.3 * d1 + 0.5 * d2 + d3 / 6.0


def pair_permutation(history: np.ndarray, raw: np.ndarray, legacy: bool = False) -> np.ndarray:
    """Slot → raw permutation of one k-point from the pairwise assignment of §11.1.

    `history` (4, nBands) holds the ordered bands of the four previous k-points, `raw`
    (nBands,) the current ascending bands. With `legacy`, the original's per-k orientation
    (the inverse permutation) is returned.
    """
    n_bands = raw.shape[0]
    predicted = extrapolate(history)
    cost = np.abs(predicted[:, None] - raw[None, :])
    slots = np.arange(n_bands)
    cost[np.abs(slots[:, None] - slots[None, :]) > WINDOW] = FAR
    n_pairs = n_bands // 2
    even, odd = 2 * np.arange(n_pairs), 2 * np.arange(n_pairs) + 1
    straight = cost[np.ix_(even, even)] + cost[np.ix_(odd, odd)]
    crossed = cost[np.ix_(even, odd)] + cost[np.ix_(odd, even)]
    _, raw_pair = linear_sum_assignment(np.maximum(straight, crossed))
    if legacy:
        raw_pair = np.argsort(raw_pair)
    permutation = np.empty(n_bands, dtype=np.int64)
    permutation[even] = 2 * raw_pair
    permutation[odd] = 2 * raw_pair + 1
    return permutation


def extrapolation_order(bands: torch.Tensor) -> torch.Tensor:
    """Permutations (nK, nBands) that reorder a whole path, each k using the reordered past."""
    values = bands.detach().cpu().numpy()
    n_k, n_bands = values.shape
    permutations = np.tile(np.arange(n_bands), (n_k, 1))
    ordered = values.copy()
    for k in range(HISTORY, n_k):
        permutations[k] = pair_permutation(ordered[k - HISTORY : k], values[k])
        ordered[k] = values[k, permutations[k]]
    return torch.as_tensor(permutations, device=bands.device)


def extrapolation_order_from_previous(
    previous: torch.Tensor, bands: torch.Tensor, k_indices: torch.Tensor, legacy: bool = False
) -> torch.Tensor:
    """Permutations for k-points served in batches: history from last epoch's ordered bands.

    `previous` (nK, nBands) is the previous epoch's reordered band structure of the system.
    """
    history = previous.detach().cpu().numpy()
    values = bands.detach().cpu().numpy()
    n_bands = values.shape[1]
    permutations = np.tile(np.arange(n_bands), (len(k_indices), 1))
    for row, k in enumerate(k_indices.tolist()):
        if k >= HISTORY:
            permutations[row] = pair_permutation(history[k - HISTORY : k], values[row], legacy)
    return torch.as_tensor(permutations, device=bands.device)


def _group_sums(matrix: np.ndarray, energies: np.ndarray, axis: int) -> np.ndarray:
    """Replace each entry by the sum over the degenerate group of its index along `axis`."""
    order = np.argsort(energies, kind="stable")
    labels = np.empty(len(energies), dtype=np.int64)
    labels[order] = np.concatenate([[0], np.cumsum(np.diff(energies[order]) >= DEGENERATE_HARTREE)])
    summed = np.zeros_like(matrix)
    for label in np.unique(labels):
        members = labels == label
        group = matrix.compress(members, axis=axis).sum(axis=axis, keepdims=True)
        if axis == 0:
            summed[members] = group
        else:
            summed[:, members] = group
    return summed


def overlap_reorder(energies: torch.Tensor, vectors: torch.Tensor, n_columns: int) -> torch.Tensor:
    """Slot → raw permutations (nK, n_columns) by maximum eigenvector overlap (§11.2).

    `energies` (nK, n) ascending in Hartree and `vectors` (nK, dim, n) hold the lowest n
    states (n ≥ n_columns; a few extra states let bands enter from above). k-point 0 keeps
    ascending order; each later k is matched to the already ordered previous k, with
    overlaps summed over degenerate groups on both sides.
    """
    values = energies.detach().cpu().numpy()
    states = vectors.detach().cpu().numpy()
    n_k, n = values.shape
    permutations = np.tile(np.arange(n), (n_k, 1))
    tie_break = 1e-12 * np.abs(np.arange(n)[:, None] - np.arange(n)[None, :])
    for k in range(1, n_k):
        previous = states[k - 1][:, permutations[k - 1]]
        overlap = np.abs(previous.conj().T @ states[k]) ** 2
        overlap = _group_sums(overlap, values[k - 1, permutations[k - 1]], axis=0)
        overlap = _group_sums(overlap, values[k], axis=1)
        _, permutations[k] = linear_sum_assignment(-(overlap - tie_break))
    return torch.as_tensor(permutations[:, :n_columns], device=energies.device)

"""Band reordering (physics.md §11) on synthetic crossings and on a real path."""

from __future__ import annotations

import numpy as np
import torch
from bundle_support import EXAMPLES, shrink_bundle

from dpp.io import load_bundle
from dpp.physics import build_hamiltonian
from dpp.physics.reorder import (
    extrapolate,
    extrapolation_order,
    extrapolation_order_from_previous,
    overlap_reorder,
)


def three_cycle_path() -> tuple[np.ndarray, np.ndarray]:
    """Three doubled bands; band 2 falls through bands 0 and 1 between k = 3 and k = 4."""
    k = np.arange(8, dtype=np.float64)
    true = np.stack([0.05 * k, 1.0 + 0.05 * k, 6.0 - 1.5 * k], axis=1)
    doubled = np.repeat(true, 2, axis=1)
    return doubled, np.sort(doubled, axis=1)


def test_extrapolation_rule() -> None:
    history = np.array([[1.0], [2.0], [4.0], [7.0]])  # d1 = 3, d2 = 1, d3 = 0
    assert extrapolate(history)[0] == 7.0 + 1.3 * 3.0 + 0.5 * 1.0


def test_full_path_resolves_three_cycle() -> None:
    true, raw = three_cycle_path()
    permutations = extrapolation_order(torch.as_tensor(raw))
    ordered = np.take_along_axis(raw, permutations.numpy(), axis=1)
    np.testing.assert_allclose(ordered, true)


def test_per_k_path_uses_previous_epoch_and_legacy_inverts_cycles() -> None:
    true, raw = three_cycle_path()
    k_indices = torch.arange(4, 8)
    rows = torch.as_tensor(raw[4:])
    fixed = extrapolation_order_from_previous(torch.as_tensor(true), rows, k_indices)
    np.testing.assert_allclose(np.take_along_axis(raw[4:], fixed.numpy(), axis=1), true[4:])
    legacy = extrapolation_order_from_previous(torch.as_tensor(true), rows, k_indices, legacy=True)
    assert not np.allclose(np.take_along_axis(raw[4:], legacy.numpy(), axis=1), true[4:])


def test_overlap_reorder_follows_crossing_states() -> None:
    n_k = 6
    basis = np.eye(3)
    energies = np.stack([np.array([0.0, 1.0, 2.0 - 0.45 * k]) for k in range(n_k)])
    order = np.argsort(energies, axis=1)
    values = np.take_along_axis(energies, order, axis=1)
    vectors = np.stack([basis[:, order[k]] for k in range(n_k)]).astype(np.complex128)
    permutations = overlap_reorder(torch.as_tensor(values), torch.as_tensor(vectors), 3)
    ordered = np.take_along_axis(values, permutations.numpy(), axis=1)
    np.testing.assert_allclose(ordered, energies)


def test_overlap_reorder_keeps_degenerate_bands_of_real_path() -> None:
    bundle = shrink_bundle(load_bundle(EXAMPLES / "zb_CdSe"), 3.0, n_kpoints=8)
    hamiltonian = build_hamiltonian(bundle)
    with torch.no_grad():
        values, vectors = hamiltonian.eigenpairs(0, torch.arange(8), 12)
    permutations = overlap_reorder(values, vectors, 8)
    assert permutations.shape == (8, 8)
    assert torch.equal(permutations[0], torch.arange(8))
    for row in permutations:
        assert len(set(row.tolist())) == 8

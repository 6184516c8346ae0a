"""Basis, lattice and form-factor check values of physics.md §3, §5, §12, §15."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dpp.io.records import Crystal
from dpp.physics.basis import plane_wave_basis
from dpp.physics.lattice import Lattice
from dpp.physics.potentials import long_range, strain_factor, wang_zunger
from dpp.physics.radial import projector_rules, radial_integral, spherical_j1
from dpp.physics.realspace import q_grid, r_grid, to_real_space

FCC = np.array([[0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]])
CD = torch.tensor([[-31.4518, 1.3890, -0.0502, 1.6603]], dtype=torch.float64)
SE = torch.tensor([[8.4921, 4.3513, 1.3600, 0.3227]], dtype=torch.float64)


def lattice(scale: float, cell: np.ndarray) -> Lattice:
    return Lattice.from_crystal(Crystal(scale, cell, ("X",), np.zeros((1, 3))))


@pytest.mark.parametrize(
    ("scale", "cell", "max_ke", "volume", "legacy", "complete"),
    [
        (11.4485278, FCC, 6, 375.136168036, 217, 259),
        (11.4485278, FCC, 10, 375.136168036, 453, 537),
        (11.884, np.eye(3), 6, 1678.370855104, 1189, 1189),
        (11.884, np.eye(3), 10, 1678.370855104, 2517, 2517),
        (10.683, FCC, 6, 304.803320, 175, 181),
        (11.0902357, FCC, 6, 341.006249, 217, 259),
    ],
)
def test_basis_sizes(scale, cell, max_ke, volume, legacy, complete) -> None:
    lat = lattice(scale, cell)
    assert lat.volume == pytest.approx(volume, abs=5e-7)
    assert len(plane_wave_basis(lat.reciprocal, max_ke, "legacy")[0]) == legacy
    assert len(plane_wave_basis(lat.reciprocal, max_ke, "complete")[0]) == complete


def test_basis_order_and_reciprocal_vectors() -> None:
    lat = lattice(11.4485278, FCC)
    b = 0.5488203738457609
    np.testing.assert_allclose(lat.reciprocal[0], [-b, b, b], rtol=1e-12)
    np.testing.assert_allclose(lat.vectors @ lat.reciprocal.T, 2 * np.pi * np.eye(3), atol=1e-12)
    _, basis = plane_wave_basis(lat.reciprocal, 10, "legacy")
    np.testing.assert_array_equal(basis[0], 0.0)
    signs = np.sign(basis[1:9])
    expected = np.array([[a, b, c] for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)])
    np.testing.assert_array_equal(signs, expected)
    norms = np.linalg.norm(basis, axis=1)
    assert np.all(np.diff(norms) > -1e-12)


def test_complete_basis_is_inversion_symmetric() -> None:
    lat = lattice(11.4485278, FCC)
    labels, _ = plane_wave_basis(lat.reciprocal, 10, "complete")
    assert {tuple(v) for v in labels} == {tuple(-v) for v in labels}


def test_wang_zunger_and_long_range_values() -> None:
    q = torch.tensor([0.0, 0.5, 1.0, 2.0], dtype=torch.float64)
    np.testing.assert_allclose(
        wang_zunger(q, CD).ravel(),
        [-41.59831479718149, -33.292469833815666, -9.678651134701264, 2.0814337669121414],
        rtol=1e-13,
    )
    np.testing.assert_allclose(
        wang_zunger(q[[0, 2]], SE).ravel(), [-102.64354091666667, -32.41566681017254], rtol=1e-13
    )
    amplitude = torch.tensor([1.0], dtype=torch.float64)
    tail = long_range(torch.tensor([0.5, 1e-5], dtype=torch.float64), amplitude)
    np.testing.assert_allclose(tail.ravel(), [-10.53621750372248, 0.0], rtol=1e-13)
    assert strain_factor(torch.tensor([0.5]), 1.0).item() == 1.0
    assert strain_factor(torch.tensor([0.5]), 1.03).item() == pytest.approx(1.015)


@pytest.mark.parametrize(
    ("k1", "k2", "soc", "nl1", "nl2"),
    [
        (1.0, 1.0, 0.009773640665574, 0.04592353640359, 0.7708256980522),
        (0.5, 1.2, 0.006067831433119, 0.02930415242941, 0.5193520632228),
        (2.0, 3.5, 0.015748035431827, 0.02580539341167, -0.0334860956927),
    ],
)
def test_radial_integrals(k1, k2, soc, nl1, nl2) -> None:
    rules = projector_rules(64)
    k, kp = torch.tensor([k1], dtype=torch.float64), torch.tensor([k2], dtype=torch.float64)
    for channel, expected in (("soc", soc), ("nl1", nl1), ("nl2", nl2)):
        assert radial_integral(k, kp, rules[channel]).item() == pytest.approx(expected, abs=1e-12)


def test_j1_series_joins_closed_form() -> None:
    x = torch.tensor([0.0999999, 0.1, 0.1000001, 1e-8, 0.0], dtype=torch.float64)
    values = spherical_j1(x)
    closed = torch.sin(x[:3]) / x[:3] ** 2 - torch.cos(x[:3]) / x[:3]
    np.testing.assert_allclose(values[:3], closed, rtol=1e-12)
    assert values[3].item() == pytest.approx(1e-8 / 3, rel=1e-12)
    assert values[4].item() == 0.0


def test_real_space_transform_values() -> None:
    q, r = q_grid(20.0, 2048), r_grid(25.0, 2048)
    v = to_real_space(q, wang_zunger(q, CD), r).ravel()
    assert r[82].item() == pytest.approx(1.00146556, abs=1e-8)
    np.testing.assert_allclose(
        [v[0].item(), v[82].item(), v[164].item()],
        [0.26113258924905697, 0.01664430344170868, -0.30810739130587433],
        rtol=1e-12,
    )

"""Band edges, gap, width and effective masses (dpp.physics.band_edges) on bands with known
values."""

from __future__ import annotations

import numpy as np
import pytest
from bundle_support import DATA, EXAMPLES, shrink_bundle

from dpp.io import load_bundle
from dpp.physics import build_hamiltonian
from dpp.physics.band_edges import (
    MassRequest,
    band_summary,
    hamiltonian_masses,
    parabola_mass,
    runs_through,
    straight_runs,
)
from dpp.physics.constants import AUTOEV
from dpp.tools.convert_bands import read_espresso_xml

STEP = 0.03  # 1/Bohr between path points
M_VB_X, M_VB_T = 0.3, 0.6  # hole masses along x and across (m_e)
M_CB_X, M_CB_T = 0.9, 0.2  # electron masses along x and across
GAP = 1.1  # eV
K0_ROW = 22  # CBM row: 12 steps along Γ–X


def _path() -> np.ndarray:
    """(0.3, 0.3, 0.3) → Γ in 10 steps (rows 0..10), then Γ → (0.6, 0, 0) in 20 (rows 10..30)."""
    diagonal = [np.full(3, 0.3) * (1 - i / 10) for i in range(11)]
    along_x = [np.array([STEP * i, 0.0, 0.0]) for i in range(1, 21)]
    return np.array(diagonal + along_x)


def _bands(k: np.ndarray) -> np.ndarray:
    """Columns: a flat-shifted copy of the VB 8 eV down, the VB, the CB (eV)."""
    across = k[:, 1] ** 2 + k[:, 2] ** 2
    vb = -(k[:, 0] ** 2 / (2 * M_VB_X) + across / (2 * M_VB_T)) * AUTOEV
    kx0 = STEP * (K0_ROW - 10)
    cb = GAP + ((k[:, 0] - kx0) ** 2 / (2 * M_CB_X) + across / (2 * M_CB_T)) * AUTOEV
    return np.stack([vb - 8.0, vb, cb], axis=1)


def test_runs_split_at_corners_jumps_and_repeated_points() -> None:
    k = np.array(
        [[0, 0, 0], [1, 0, 0], [2, 0, 0], [2, 1, 0], [2, 2, 0], [5, 5, 5], [5, 5, 5],
         [5, 5, 6], [5, 5, 7], [4, 4, 4], [3, 3, 3], [2, 2, 2]],
        dtype=float,
    )  # fmt: skip
    runs = straight_runs(k)
    assert [(r.first, r.last) for r in runs] == [(0, 2), (2, 4), (6, 8), (9, 11)]
    np.testing.assert_allclose(runs[3].direction, -np.ones(3) / np.sqrt(3))
    assert [(r.first, r.last) for r in runs_through(runs, 2)] == [(0, 2), (2, 4)]
    assert runs_through(runs, 5) == []


def test_gap_width_and_masses_of_parabolic_bands_are_exact() -> None:
    k = _path()
    summary = band_summary(_bands(k), k, idx_vb=1, idx_cb=2, lowest=0)
    assert (summary.vbm.k_index, summary.cbm.k_index) == (10, K0_ROW)
    assert summary.vbm.energy == pytest.approx(0.0, abs=1e-12)
    assert summary.gap == pytest.approx(GAP, abs=1e-12)
    assert not summary.direct
    assert summary.width == pytest.approx(8.0 + 0.6**2 / (2 * M_VB_X) * AUTOEV, abs=1e-10)
    diagonal = 1.0 / ((1 / M_VB_X + 2 / M_VB_T) / 3)  # 0.45 along (1, 1, 1)
    np.testing.assert_allclose(summary.vb_masses, [-diagonal, -M_VB_X], rtol=1e-9)
    np.testing.assert_allclose(summary.cb_masses, [M_CB_X], rtol=1e-9)
    flat = parabola_mass(np.array([-1.0, 0.0, 1.0]), np.zeros(3), linear=True)
    assert flat == float("inf")
    assert np.isnan(parabola_mass(np.array([0.0, 1.0]), np.array([0.0, np.nan]), linear=False))


def test_masses_at_given_rows_and_direct_gap() -> None:
    k = _path()
    bands = _bands(k)
    bands[10, 2] = GAP - 0.05  # the CBM moves to Γ: direct gap
    summary = band_summary(bands, k, idx_vb=1, idx_cb=2, lowest=1, at=(10, K0_ROW))
    assert summary.direct and summary.cbm.k_index == 10
    assert summary.gap == pytest.approx(GAP - 0.05, abs=1e-12)
    assert summary.width == pytest.approx(0.6**2 / (2 * M_VB_X) * AUTOEV, abs=1e-10)
    np.testing.assert_allclose(summary.cb_masses, [M_CB_X], rtol=1e-9)  # at the given row


def test_hamiltonian_masses_of_free_electrons_are_one() -> None:
    bundle = shrink_bundle(load_bundle(EXAMPLES / "zb_CdSe"), 2.0)
    bundle.pp_params[:] = 0.0  # no potential: E = |k + G|²/2
    hamiltonian = build_hamiltonian(bundle)
    gamma = 20
    directions = (np.array([1.0, 0.0, 0.0]), np.ones(3) / np.sqrt(3))
    requests = [MassRequest(gamma, 0, directions), MassRequest(gamma + 1, 0, ())]
    masses = hamiltonian_masses(hamiltonian, 0, requests)
    np.testing.assert_allclose(masses[0], [1.0, 1.0], rtol=1e-6)
    assert masses[1] == ()


def test_pw_x_silicon_edges_gap_and_electron_mass() -> None:
    """Real pw.x bands (tests/data/qe/si): indirect gap Γ → 0.87 Γ–X of 0.526 eV, the VBM at Γ
    reached three times on L–Γ–X–U|K–Γ, the LDA longitudinal electron mass m_l ≈ 0.93."""
    source = read_espresso_xml(DATA / "qe" / "si" / "data-file-schema.xml")
    summary = band_summary(source.energies, source.kpoints, idx_vb=3, idx_cb=4, lowest=0)
    assert summary.gap == pytest.approx(0.5264, abs=1e-4)
    assert not summary.direct
    assert np.allclose(source.kpoints[summary.vbm.k_index], 0.0)
    assert summary.cbm.k_index == 26  # 13/15 of Γ–X
    assert summary.width == pytest.approx(11.94, abs=0.01)
    assert len(summary.vb_masses) == 3  # along Γ–L, Γ–X and Γ–K
    assert all(m < 0 for m in summary.vb_masses)
    assert summary.cb_masses == pytest.approx((0.935,), abs=0.005)

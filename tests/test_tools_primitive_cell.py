"""dpp-primitive-cell: spglib reduction of conventional cells; bands at the same Cartesian k."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch

from dpp.io import load_bundle
from dpp.io.kpoints import read_points
from dpp.io.labels import read_point_labels
from dpp.io.system import read_system
from dpp.physics import AUTOEV, build_hamiltonian
from dpp.physics.lattice import reciprocal_vectors
from dpp.tools.primitive_cell import main

TESTS = Path(__file__).parent
CDSE = TESTS.parent / "dpp" / "data" / "examples" / "zb_CdSe"
CONVENTIONAL = TESTS / "data" / "tools" / "zb_CdSe_conventional"
A_ZB = 11.4485278  # Bohr, zb_CdSe
A_WZ, C_WZ, U_WZ = 8.11, 13.23, 0.375  # Bohr, ideal wurtzite CdSe

FCC = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
ORTHOHEXAGONAL = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 1 / 6, 0.5], [0, 2 / 3, 0.5]])
# k-points (fractional on the conventional b_j), a weight, and labels on two of them
KPOINTS = "0.0 0.0 0.0 1.0   # G\n0.13 0.27 0.41 1.0\n0.5 0.0 0.0 2.0   # X\n"


def _write_bundle(folder: Path, scale: float, cell: np.ndarray, atoms: list[tuple]) -> None:
    folder.mkdir()
    rows = "\n".join(" ".join(f"{v:.15f}" for v in row) for row in cell)
    lines = "\n".join(f"{s} {x:.15f} {y:.15f} {z:.15f}" for s, (x, y, z) in atoms)
    (folder / "system_0.par").write_text(f"scale = {scale}\n\ncell\n{rows}\n\natoms\n{lines}\n")
    (folder / "kpoints_0.par").write_text(KPOINTS)
    (folder / "input_0.par").write_text("maxKE = 2.0\nnBands = 8\n")
    (folder / "bandWeights_0.par").write_text("1\n" * 8)
    for symbol in ("Cd", "Se"):
        shutil.copy(CDSE / f"init_{symbol}Params.par", folder)


def zinc_blende(folder: Path) -> None:
    atoms = [("Cd", p) for p in FCC] + [("Se", p + 0.25) for p in FCC]
    _write_bundle(folder, A_ZB, np.eye(3), atoms)


def wurtzite(folder: Path) -> None:
    cell = np.diag([1.0, np.sqrt(3.0), C_WZ / A_WZ])
    atoms = [("Cd", p) for p in ORTHOHEXAGONAL]
    atoms += [("Se", (p + [0, 0, U_WZ]) % 1.0) for p in ORTHOHEXAGONAL]
    _write_bundle(folder, A_WZ, cell, atoms)


def _reduce(
    tmp_path: Path, build: Callable[[Path], None], capsys: pytest.CaptureFixture[str]
) -> tuple[Path, Path, str]:
    conventional, primitive = tmp_path / "conventional", tmp_path / "primitive"
    build(conventional)
    argv = [str(conventional / "system_0.par"), "--kpoints", str(conventional / "kpoints_0.par")]
    assert main([*argv, "-o", str(primitive)]) == 0
    for name in ("input_0.par", "bandWeights_0.par", "init_CdParams.par", "init_SeParams.par"):
        shutil.copy(conventional / name, primitive)
    return conventional, primitive, capsys.readouterr().out


def _spectra(folder: Path) -> tuple[np.ndarray, list[np.ndarray]]:
    """Cartesian k (1/Bohr) and the full spectrum (eV) of H(k) at each k-point."""
    bundle = load_bundle(folder, require_reference=False)
    hamiltonian = build_hamiltonian(bundle)  # complete basis (the default)
    system = bundle.systems[0]
    with torch.no_grad():
        matrices = hamiltonian.hamiltonians(0, torch.arange(system.n_kpoints)).numpy()
    kpoints = system.kpoints @ reciprocal_vectors(system.crystal.lattice)
    return kpoints, [scipy.linalg.eigvalsh(m) * AUTOEV for m in matrices]


def _assert_folded_bands_agree(conventional: Path, primitive: Path, n_low: int = 8) -> None:
    k_conventional, conventional_spectra = _spectra(conventional)
    k_primitive, primitive_spectra = _spectra(primitive)
    np.testing.assert_allclose(k_primitive, k_conventional, atol=1e-12)  # same Cartesian k
    for primitive_bands, supercell_bands in zip(
        primitive_spectra, conventional_spectra, strict=True
    ):
        distance = np.abs(primitive_bands[:n_low, None] - supercell_bands[None, :]).min(axis=1)
        assert distance.max() < 1e-8


def test_zinc_blende_conventional_cell_reduces_to_two_atoms(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conventional, primitive, out = _reduce(tmp_path, zinc_blende, capsys)
    assert "F-43m (No. 216)" in out and "8 atoms -> 2 atoms" in out
    crystal = read_system(primitive / "system_0.par")
    assert sorted(crystal.symbols) == ["Cd", "Se"]
    assert crystal.scale == A_ZB
    assert abs(np.linalg.det(crystal.cell)) == pytest.approx(0.25)
    assert np.linalg.det(crystal.cell) > 0
    assert read_point_labels(primitive / "kpoints_0.par") == {0: "G", 2: "X"}
    np.testing.assert_array_equal(read_points(primitive / "kpoints_0.par")[1], [1.0, 1.0, 2.0])
    _assert_folded_bands_agree(conventional, primitive)


def test_wurtzite_orthohexagonal_cell_reduces_to_four_atoms(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conventional, primitive, out = _reduce(tmp_path, wurtzite, capsys)
    assert "P6_3mc (No. 186)" in out and "8 atoms -> 4 atoms" in out
    crystal = read_system(primitive / "system_0.par")
    assert sorted(crystal.symbols) == ["Cd", "Cd", "Se", "Se"]
    _assert_folded_bands_agree(conventional, primitive)


def test_fixture_cell_in_place_needs_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(CONVENTIONAL, tmp_path / "zb")
    system, kpoints = tmp_path / "zb" / "system_0.par", tmp_path / "zb" / "kpoints_0.par"
    assert main([str(system), "--kpoints", str(kpoints)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main([str(system), "--kpoints", str(kpoints), "--force"]) == 0
    assert len(read_system(system).symbols) == 2
    mapped, _ = read_points(kpoints)  # X = (1, 0, 0)·2π/a on the fcc basis
    np.testing.assert_allclose(mapped[2], [0.0, 0.5, 0.5], atol=1e-12)
    assert read_point_labels(kpoints) == {0: "G", 2: "X"}

"""dpp-charge-density: normalisation, translational symmetry, spinors, cube files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from ase.io.cube import read_cube_data
from ase.units import Bohr

from dpp.io.system import read_system
from dpp.physics import build_hamiltonian
from dpp.tools.charge_density import density_at, density_on_grid, grid_shape, main, states
from dpp.tools.common import load_system_bundle

TESTS = Path(__file__).parent
CDSE = TESTS.parent / "dpp" / "data" / "examples" / "zb_CdSe"
CSPBI3 = TESTS / "data" / "CsPbI3_soc"
CHECKPOINT = TESTS / "data" / "extras" / "nn_zbCdSe" / "epoch_199_PPmodel.pth"


CUBE_DIGITS = 1e-6  # cube files hold 6 significant digits


def _integral(cube: Path) -> tuple[float, np.ndarray]:
    data, atoms = read_cube_data(str(cube))
    volume = abs(np.linalg.det(atoms.cell.array / Bohr))
    return float(data.sum()) * volume / data.size, data


def test_band_and_valence_densities_hold_their_electrons(tmp_path: Path) -> None:
    argv = [str(CDSE), "--max-ke", "3", "--bands", "0", "3", "--occupied", "4"]
    assert main([*argv, "--kpoints", "0", "20", "-o", str(tmp_path)]) == 0
    for k in (0, 20):
        for band in (0, 3):
            electrons, _ = _integral(tmp_path / f"density_sys0_k{k}_b{band}.cube")
            assert electrons == pytest.approx(2.0, rel=CUBE_DIGITS)  # 2 per band
    electrons, data = _integral(tmp_path / "density_sys0_valence.cube")
    assert electrons == pytest.approx(8.0, rel=CUBE_DIGITS)
    assert data.min() >= 0.0
    assert (tmp_path / "density_sys0_valence.png").stat().st_size > 0
    _, atoms = read_cube_data(str(tmp_path / "density_sys0_valence.cube"))
    crystal = read_system(CDSE / "system_0.par")
    np.testing.assert_allclose(atoms.cell.array / Bohr, crystal.lattice, atol=1e-5)
    assert atoms.get_chemical_symbols() == ["Cd", "Se"]


def test_density_is_lattice_periodic_and_grid_matches_direct_sum() -> None:
    bundle = load_system_bundle(CDSE, 0, max_ke=3.0)
    hamiltonian = build_hamiltonian(bundle)
    labels = np.asarray(hamiltonian.geometries[0].labels)
    chosen = states(hamiltonian, 7, [0, 1, 2, 3])
    volume = abs(np.linalg.det(bundle.systems[0].crystal.lattice))
    shape = grid_shape(labels)
    grid = density_on_grid(chosen, labels, shape, volume)
    assert grid.sum() * volume / grid.size == pytest.approx(8.0, abs=1e-12)
    rng = np.random.default_rng(1)
    points = rng.random((20, 3))
    values = density_at(chosen, labels, points, volume)
    for shift in np.eye(3) + [[0, 0, 0], [0, -2, 0], [1, 1, -3]]:
        np.testing.assert_allclose(density_at(chosen, labels, points + shift, volume), values)
    j = np.array([[1, 2, 3], [0, 5, 7], [4, 0, 1]])
    np.testing.assert_allclose(
        density_at(chosen, labels, j / np.array(shape), volume), grid[tuple(j.T)], rtol=1e-12
    )


def test_conventional_cell_density_has_the_fcc_translations(tmp_path: Path) -> None:
    folder = tmp_path / "conventional"
    folder.mkdir()
    fcc = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    atoms = [("Cd", p) for p in fcc] + [("Se", p + 0.25) for p in fcc]
    lines = "\n".join(f"{s} {x} {y} {z}" for s, (x, y, z) in atoms)
    (folder / "system_0.par").write_text(
        f"scale = 11.4485278\ncell\n1 0 0\n0 1 0\n0 0 1\natoms\n{lines}\n"
    )
    (folder / "kpoints_0.par").write_text("0 0 0 1\n")
    (folder / "input_0.par").write_text("maxKE = 2.0\nnBands = 32\n")
    (folder / "bandWeights_0.par").write_text("1\n" * 32)
    for symbol in ("Cd", "Se"):
        shutil.copy(CDSE / f"init_{symbol}Params.par", folder)
    argv = [str(folder), "--occupied", "16", "--grid", "12", "12", "12", "-o", str(tmp_path)]
    assert main(argv) == 0
    electrons, data = _integral(tmp_path / "density_sys0_valence.cube")
    assert electrons == pytest.approx(32.0, rel=CUBE_DIGITS)  # 4 primitive cells, 8 electrons each
    for axes in ((1, 2), (0, 2), (0, 1)):  # t = (0, 1/2, 1/2) a and its permutations
        np.testing.assert_allclose(np.roll(data, (6, 6), axis=axes), data, rtol=CUBE_DIGITS)


def test_spinor_bands_hold_one_electron(tmp_path: Path) -> None:
    argv = [str(CSPBI3), "--spin-orbit", "--max-ke", "1.0", "--bands", "0", "--occupied", "3"]
    assert main([*argv, "-o", str(tmp_path)]) == 0
    assert _integral(tmp_path / "density_sys0_k0_b0.cube")[0] == pytest.approx(1.0, rel=CUBE_DIGITS)
    assert _integral(tmp_path / "density_sys0_valence.cube")[0] == pytest.approx(
        3.0, rel=CUBE_DIGITS
    )


def test_valence_charge_sits_on_the_anion_for_analytic_and_network_models(tmp_path: Path) -> None:
    bundle = load_system_bundle(CDSE, 0, max_ke=5.0)
    crystal = bundle.systems[0].crystal
    volume = abs(np.linalg.det(crystal.lattice))
    hamiltonian = build_hamiltonian(bundle)
    labels = np.asarray(hamiltonian.geometries[0].labels)
    valence = [state for k in (0, 20, 40) for state in states(hamiltonian, k, [0, 1, 2, 3])]
    cd, se = density_at(valence, labels, crystal.fractional, volume)
    assert se > 5 * cd  # Se (anion) holds the valence charge
    argv = [str(CDSE), "--max-ke", "3", "--occupied", "4", "-o", str(tmp_path)]
    network = ["--checkpoint", str(CHECKPOINT), "--model", "Net_relu_xavier_decay2"]
    assert main([*argv, *network]) == 0
    assert _integral(tmp_path / "density_sys0_valence.cube")[0] == pytest.approx(
        8.0, rel=CUBE_DIGITS
    )


def test_input_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(CDSE), "--max-ke", "3", "-o", str(tmp_path)]) == 2
    assert "--bands or --occupied" in capsys.readouterr().err
    assert main([str(CDSE), "--max-ke", "3", "--bands", "999", "-o", str(tmp_path)]) == 2
    assert "band index out of range" in capsys.readouterr().err
    assert main([str(CDSE), "--bands", "0", "--checkpoint", str(CHECKPOINT)]) == 2
    error = capsys.readouterr().err
    assert "--model" in error and error.count("\n") == 1
    assert main([str(CDSE), "--max-ke", "3", "--bands", "0", "--grid", "2", "2", "2"]) == 2
    assert "FFT grid too coarse" in capsys.readouterr().err
    decay = ["--checkpoint", str(CHECKPOINT), "--model", "Net_relu_xavier_decay"]
    assert main([str(CDSE), "--bands", "0", *decay]) == 2  # gate values missing
    assert "--decay-" in capsys.readouterr().err
    assert main([str(CDSE), "--occupied", "0"]) == 2
    assert "--occupied" in capsys.readouterr().err

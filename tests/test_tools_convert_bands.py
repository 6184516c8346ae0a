"""dpp-convert-bands: pw.x text/XML and BerkeleyGW fixtures to a dpp bundle (numbers checked)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from dpp.io import load_bundle
from dpp.io.kpoints import read_points
from dpp.io.params import read_species_params
from dpp.io.reference import read_band_weights, read_reference_bands
from dpp.io.settings import read_settings
from dpp.io.system import read_system
from dpp.tools.convert_bands import main, suggested_max_ke

TESTS = Path(__file__).parent
FIXTURES = TESTS / "data" / "tools"
PWO = FIXTURES / "si_bands.pwo"
XML = FIXTURES / "si_data-file-schema.xml"
BGW = FIXTURES / "si_bandstructure.dat"
CDSE = TESTS.parent / "dpp" / "data" / "examples" / "zb_CdSe"

ALAT = 10.26  # Bohr
SI_EV = np.array(
    [
        [-5.8099, 6.2549, 6.2549, 6.2549, 8.8221, 8.8221, 8.8221, 9.7232],
        [-1.6124, -1.6124, 3.3932, 3.3932, 10.8034, 10.8034, 11.1510, 11.1510],
        [-3.4062, -0.8276, 5.0030, 5.0030, 8.5954, 9.8077, 9.8077, 13.6886],
    ]
)
FRACTIONAL_K = np.array([[0.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.0, 0.5, 0.0]])  # Γ, X, L
B = 2 * math.pi / ALAT
DISTANCE = np.array([0.0, B, B + B * math.sqrt(0.75)])  # |ΓX| = 2π/a, |XL| = (√3/2)·2π/a


def _bands(folder: Path, n_bands: int) -> tuple[np.ndarray, np.ndarray]:
    return read_reference_bands(folder / "expBandStruct_0.par", n_bands)


def test_pw_output_gives_cell_kpoints_and_spin_doubled_aligned_bands(tmp_path: Path) -> None:
    assert main([str(PWO), "--align", "vbm", "-o", str(tmp_path)]) == 0
    crystal = read_system(tmp_path / "system_0.par")
    assert crystal.scale == pytest.approx(ALAT)
    np.testing.assert_allclose(
        crystal.scale * crystal.cell,
        [[-5.13, 0.0, 5.13], [0.0, 5.13, 5.13], [-5.13, 5.13, 0.0]],
        atol=1e-10,
    )
    assert crystal.symbols == ("Si", "Si")
    np.testing.assert_allclose(crystal.fractional, [[0, 0, 0], [-0.25, 0.75, -0.25]], atol=1e-12)
    kpoints, weights = read_points(tmp_path / "kpoints_0.par")
    np.testing.assert_allclose(kpoints, FRACTIONAL_K, atol=1e-12)
    np.testing.assert_array_equal(weights, 1.0)
    settings = read_settings(tmp_path / "input_0.par")
    assert settings.n_bands == 16
    assert settings.max_ke == suggested_max_ke(ALAT**3 / 4, 2, 8)
    distance, bands = _bands(tmp_path, 16)
    np.testing.assert_allclose(distance, DISTANCE, atol=1e-8)
    expected = np.repeat(SI_EV - 6.2549, 2, axis=1)  # VBM: band 4 (8 electrons) at Γ
    np.testing.assert_allclose(bands, expected, atol=1e-8)
    np.testing.assert_array_equal(read_band_weights(tmp_path / "bandWeights_0.par", 16), 1.0)
    assert not (tmp_path / "init_SiParams.par").exists()  # no shipped starting values for Si
    (tmp_path / "init_SiParams.par").write_text("1.0\n2.0\n3.0\n0.5\n")
    bundle = load_bundle(tmp_path)
    assert bundle.species == ("Si",) and bundle.systems[0].n_bands == 16


def test_data_file_xml_matches_the_text_output(tmp_path: Path) -> None:
    assert main([str(PWO), "--align", "vbm", "-o", str(tmp_path / "text")]) == 0
    assert main([str(XML), "--align", "vbm", "-o", str(tmp_path / "xml")]) == 0
    for name in ("system_0.par", "kpoints_0.par"):
        text = (tmp_path / "text" / name).read_text().splitlines()
        xml = (tmp_path / "xml" / name).read_text().splitlines()
        assert [line for line in text if not line.startswith("#")] == [
            line for line in xml if not line.startswith("#")
        ]
    np.testing.assert_allclose(
        _bands(tmp_path / "xml", 16)[1], _bands(tmp_path / "text", 16)[1], atol=1e-8
    )


def test_band_window_and_given_reference_energy(tmp_path: Path) -> None:
    argv = [
        str(PWO),
        "--first-band",
        "2",
        "--num-bands",
        "3",
        "--align",
        "1.5",
        "-o",
        str(tmp_path),
    ]
    assert main(argv) == 0
    _, bands = _bands(tmp_path, 6)
    np.testing.assert_allclose(bands, np.repeat(SI_EV[:, 1:4] - 1.5, 2, axis=1), atol=1e-8)
    assert read_settings(tmp_path / "input_0.par").n_bands == 6


def test_spin_orbit_output_is_not_doubled(tmp_path: Path) -> None:
    text = PWO.read_text().replace(
        "     Reading input", "     Noncollinear calculation with spin-orbit\n\n     Reading input"
    )
    source = tmp_path / "soc.pwo"
    source.write_text(text)
    assert main([str(source), "--align", "vbm", "-o", str(tmp_path / "out")]) == 0
    _, bands = _bands(tmp_path / "out", 8)
    np.testing.assert_allclose(bands, SI_EV - SI_EV[:, 7].max(), atol=1e-8)  # 8 electrons


def test_berkeleygw_quasiparticle_bands(tmp_path: Path) -> None:
    argv = [str(BGW), "--structure", str(PWO), "--valence-bands", "4", "--align", "vbm"]
    assert main([*argv, "-o", str(tmp_path)]) == 0
    kpoints, _ = read_points(tmp_path / "kpoints_0.par")
    np.testing.assert_allclose(kpoints, FRACTIONAL_K, atol=1e-4)  # k printed with 5 decimals
    distance, bands = _bands(tmp_path, 8)
    np.testing.assert_allclose(distance, DISTANCE, atol=2e-5)
    qp = SI_EV[:, 2:6] + np.array([-0.3, -0.3, 0.5, 0.5])  # bands 3..6 with their QP shifts
    np.testing.assert_allclose(bands, np.repeat(qp - qp[:, 1].max(), 2, axis=1), atol=1e-8)
    assert (
        main(
            [
                str(BGW),
                "--structure",
                str(PWO),
                "--energy",
                "mf",
                "--spin-orbit",
                "-o",
                str(tmp_path / "mf"),
            ]
        )
        == 0
    )
    np.testing.assert_allclose(_bands(tmp_path / "mf", 4)[1], SI_EV[:, 2:6], atol=1e-8)


def test_starting_parameters_written_for_known_species(tmp_path: Path) -> None:
    argv = [str(BGW), "--structure", str(CDSE / "system_0.par"), "-o", str(tmp_path)]
    assert main(argv) == 0
    for symbol in ("Cd", "Se"):
        np.testing.assert_array_equal(
            read_species_params(tmp_path / f"init_{symbol}Params.par"),
            read_species_params(CDSE / f"init_{symbol}Params.par"),
        )
    assert load_bundle(tmp_path).species == ("Cd", "Se")


def test_refuses_to_overwrite_and_reports_input_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(PWO), "-o", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main([str(PWO), "-o", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--force" in error and "Traceback" not in error
    assert main([str(PWO), "-o", str(tmp_path), "--force"]) == 0
    assert main([str(BGW), "-o", str(tmp_path / "x")]) == 2
    assert "--structure" in capsys.readouterr().err
    assert main([str(PWO), "--first-band", "9", "-o", str(tmp_path / "y")]) == 2
    assert "--first-band" in capsys.readouterr().err


def test_suggested_cutoff_reproduces_the_zinc_blende_bundles() -> None:
    volume = 11.4485278**3 / 4  # zb_CdSe, InGaAsP: 2 atoms, run at 6 Hartree
    assert suggested_max_ke(volume, 2, 8) == 6.0
    assert suggested_max_ke(1.0e5, 1, 4) == 5.0  # never below 5 Hartree

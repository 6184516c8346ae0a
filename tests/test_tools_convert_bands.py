"""dpp-convert-bands: pw.x text/XML and BerkeleyGW fixtures to a dpp bundle (numbers checked)."""

from __future__ import annotations

import logging
import math
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from training_support import cost_rows, run_app

from dpp.io import load_bundle, read_nn_config
from dpp.io.kpoints import read_points
from dpp.io.params import read_species_params
from dpp.io.records import Crystal
from dpp.io.reference import read_band_weights, read_reference_bands
from dpp.io.settings import read_settings
from dpp.io.system import read_system
from dpp.physics import band_structure
from dpp.tools.band_selection import sp_electrons
from dpp.tools.common import system_text
from dpp.tools.convert_bands import SourceBands, convert, main, suggested_max_ke
from dpp.tools.form_factors import (
    BOHR_ANGSTROM,
    COHEN_BERGSTRESSER,
    tabulated_params,
    wang_zunger_values,
)
from dpp.tools.starting_params import covalent_radius, starting_params

TESTS = Path(__file__).parent
FIXTURES = TESTS / "data" / "tools"
PWO = FIXTURES / "si_bands.pwo"
XML = FIXTURES / "si_data-file-schema.xml"
BGW = FIXTURES / "si_bandstructure.dat"
SOC = FIXTURES / "si_soc_scf.pwo"  # pw.x 6.7 scf, Si.rel-pbe-rrkj.UPF, 16 Ry, 4x4x4 grid
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
    assert (settings.idx_vb, settings.idx_cb) == (7, 8)  # band 4 spin-doubled: columns 6, 7
    config = read_nn_config(tmp_path / "NN_config.par")
    assert config.get("nSystem") == 1 and config.get("SObool") is False
    assert config.get("hiddenLayers") == (32, 32)
    # the p-channel nonlocal strengths a6, a7 are trained beside the network
    assert config.get("nonlocal_without_soc") is True and config.get("nonlocal_s") is True
    assert config.get("train_slots") == (6, 7, 9)
    assert config.get("smoothness_reference") == "prior" and config.get("departure") == 7e-3
    assert "Cohen & Bergstresser" in (tmp_path / "init_SiParams.par").read_text()
    bundle = load_bundle(tmp_path)
    assert bundle.species == ("Si",) and bundle.systems[0].n_bands == 16


def test_data_file_xml_matches_the_text_output(tmp_path: Path) -> None:
    assert main([str(PWO), "--align", "vbm", "-o", str(tmp_path / "text")]) == 0
    assert main([str(XML), "--align", "vbm", "-o", str(tmp_path / "xml")]) == 0
    for name in ("system_0.par", "kpoints_0.par", "input_0.par", "bandWeights_0.par"):
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


@pytest.mark.parametrize(
    "summary",
    ["Non magnetic calculation with spin-orbit", "Noncollinear calculation with spin-orbit"],
)
def test_spin_orbit_output_is_not_doubled(tmp_path: Path, summary: str) -> None:
    text = PWO.read_text().replace("     Reading input", f"     {summary}\n\n     Reading input")
    source = tmp_path / "soc.pwo"
    source.write_text(text)
    assert main([str(source), "--align", "vbm", "-o", str(tmp_path / "out")]) == 0
    _, bands = _bands(tmp_path / "out", 8)
    np.testing.assert_allclose(bands, SI_EV - SI_EV[:, 7].max(), atol=1e-8)  # 8 electrons


def test_pw_67_spin_orbit_scf_gives_kramers_pairs_at_the_highest_occupied_level(
    tmp_path: Path,
) -> None:
    """A real pw.x 6.7 run (Si, fully relativistic, 16 bands): each level twice, not 4 times."""
    assert main([str(SOC), "-o", str(tmp_path)]) == 0
    settings = read_settings(tmp_path / "input_0.par")
    assert settings.n_bands == 16 and (settings.idx_vb, settings.idx_cb) == (7, 8)
    _, bands = _bands(tmp_path, 16)
    assert bands[:, 7].max() == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(bands[:, 0::2], bands[:, 1::2], atol=1e-3)  # Kramers pairs
    assert np.min(bands[:, 8]) == pytest.approx(6.9942 - 6.3176, abs=1e-4)  # pw.x's levels
    config = read_nn_config(tmp_path / "NN_config.par")
    assert config.get("SObool") is True and config.get("nonlocal_s") is True
    assert config.get("train_slots") == (5, 6, 7, 9)
    assert config.get("nonlocal_without_soc") is None  # the spinor Hamiltonian has them


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


def test_wrong_valence_band_count_is_refused_naming_both_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(PWO), "--valence-bands", "8", "-o", str(tmp_path / "a")]) == 2
    error = capsys.readouterr().err
    assert "--valence-bands" in error and "expected 4 (8 electrons" in error and "found 8" in error
    assert main([str(SOC), "--valence-bands", "6", "-o", str(tmp_path / "b")]) == 2
    error = capsys.readouterr().err
    assert "highest occupied level 6.3176 eV" in error and "expected 8" in error
    assert "found 6" in error
    assert main([str(SOC), "--valence-bands", "8", "-o", str(tmp_path / "c")]) == 0


def test_two_crystals_into_one_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(PWO), "-o", str(tmp_path)]) == 0
    cdse = [str(BGW), "--structure", str(CDSE / "system_0.par"), "--valence-bands", "4"]
    assert main([*cdse, "--index", "1", "-o", str(tmp_path)]) == 0
    assert read_nn_config(tmp_path / "NN_config.par").get("nSystem") == 2
    bundle = load_bundle(tmp_path)
    assert bundle.species == ("Cd", "Se", "Si") and len(bundle.systems) == 2
    capsys.readouterr()
    assert main([str(SOC), "--index", "2", "-o", str(tmp_path)]) == 2  # spinor into scalar
    assert "spin-orbit" in capsys.readouterr().err
    assert not (tmp_path / "system_2.par").exists()  # refused before writing
    assert main([str(PWO), "--index", "4", "-o", str(tmp_path)]) == 2
    assert "expected 0..2 (the folder holds systems 0..1)" in capsys.readouterr().err
    assert read_nn_config(tmp_path / "NN_config.par").get("nSystem") == 2


def _gaas_like(s_band_bottom: float) -> SourceBands:
    """Bands of a GaAs-like run with Ga 3d in valence (18 electrons, 9 valence bands): five
    flat d bands near −15 eV, the As 4s band, three p bands up to the VBM at 0, conduction."""
    ramp = np.array([0.0, 0.5, 1.0])[:, None]
    d = -15.2 + 0.4 * ramp + np.zeros((3, 5))
    s = s_band_bottom + (s_band_bottom + 10.0) * -ramp
    p = -7.0 + 7.0 * ramp + np.array([-0.4, -0.2, 0.0])
    conduction = 1.5 + ramp + np.arange(4.0)
    return SourceBands(
        energies=np.hstack([d, s, p, conduction]) + 3.0,  # an arbitrary absolute zero
        kpoints=np.zeros((3, 3)),
        first_band=1,
        crystal=None,
        spinor=False,
        n_electrons=18.0,
    )


GAAS = Crystal(
    scale=10.68,
    cell=np.array([[0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]]),
    symbols=("Ga", "As"),
    fractional=np.array([[0.0, 0.0, 0.0], [0.25, 0.25, 0.25]]),
)


def test_semicore_d_bands_are_left_out_above_a_gap() -> None:
    conversion = convert(_gaas_like(-12.5), GAAS)
    assert conversion.bands.shape[1] == 16  # bands 6..13 spin-doubled
    assert (conversion.idx_vb, conversion.idx_cb) == (7, 8)
    assert conversion.reference_energy == pytest.approx(3.0)
    assert conversion.bands[:, 7].max() == pytest.approx(0.0)
    assert conversion.bands[:, 0].min() == pytest.approx(-12.5)  # the As 4s band is kept
    np.testing.assert_array_equal(conversion.weights, 1.0)
    assert conversion.notes[0].startswith("kept bands 6..13: 4 valence")
    assert conversion.notes[1].startswith("left out bands 1..5: semicore")
    assert "gap of 2.30 eV" in conversion.notes[2]
    kept = convert(_gaas_like(-12.5), GAAS, keep_semicore=True, conduction_bands=2)
    assert kept.bands.shape[1] == 22 and kept.idx_vb == 17


def test_entangled_semicore_bands_give_weight_zero_to_the_band_they_overlap() -> None:
    conversion = convert(_gaas_like(-16.0), GAAS)
    assert conversion.bands.shape[1] == 16
    np.testing.assert_array_equal(conversion.weights, [0.0, 0.0] + [1.0] * 14)
    assert any("entangled: band 6" in note for note in conversion.notes)


def test_s_and_p_valence_electrons() -> None:
    found = {s: sp_electrons(s) for s in ("Si", "Ga", "As", "N", "Zn", "Cd", "Cs", "Pb", "I")}
    assert found == {"Si": 4, "Ga": 3, "As": 5, "N": 5, "Zn": 2, "Cd": 2, "Cs": 1, "Pb": 4, "I": 7}
    assert sp_electrons("Fe") is None and sp_electrons("Ni") is None


def _cohen_bergstresser_silicon(crystal: Crystal, kpoints: np.ndarray) -> np.ndarray:
    """The table's own Si bands (eV): the local form factors at |G|² = 3, 8, 11 (2π/a)² on
    the basis |G|² ≤ 21 (2π/a)², in Rydberg, atoms at ±a/8 (1, 1, 1) about the origin."""
    _, _, _, (s3, s8, s11, *_) = COHEN_BERGSTRESSER["Si"]
    reciprocal = 2.0 * np.pi * np.linalg.inv(crystal.lattice).T
    steps = np.arange(-4, 5)
    grid = np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), -1).reshape(-1, 3)
    unit = (2.0 * np.pi / crystal.scale) ** 2
    g = grid @ reciprocal
    g = g[(g**2).sum(1) / unit <= 21.0 + 1e-9]
    delta = g[:, None, :] - g[None, :, :]
    shell = np.round((delta**2).sum(-1) / unit)
    form = np.select([shell == 3, shell == 8, shell == 11], [s3, s8, s11], 0.0)
    tau = crystal.scale / 8.0 * np.ones(3)
    potential = form * np.cos(delta @ tau)
    bands = [
        np.linalg.eigvalsh(potential + np.diag(((k @ reciprocal + g) ** 2).sum(1)))[:8]
        for k in kpoints
    ]
    return np.array(bands) * 13.6057


def test_table_silicon_potential_gives_the_tables_silicon_bands(tmp_path: Path) -> None:
    """dpp's bands from the Wang–Zunger fit of the Si starting curve against Cohen &
    Bergstresser's own at Γ, X, L (VBM-aligned): 0.24 eV RMS, the X gap 0.92 vs 0.95 eV."""
    assert main([str(PWO), "-o", str(tmp_path)]) == 0
    bundle = load_bundle(tmp_path)
    system = bundle.systems[0]
    ours = band_structure(bundle)[0].numpy()[:, ::2]
    table = _cohen_bergstresser_silicon(system.crystal, system.kpoints)
    ours, table = ours - ours[:, 3].max(), table - table[:, 3].max()
    assert np.sqrt(np.mean((ours - table) ** 2)) < 0.3
    assert table[1, 4] == pytest.approx(0.95, abs=0.05)  # X1c above Γ25'
    assert ours[1, 4] == pytest.approx(table[1, 4], abs=0.1)
    assert ours[0, 0] == pytest.approx(table[0, 0], abs=0.6)  # valence width at Γ: 12.6 eV


def test_wang_zunger_fit_follows_the_tabulated_form_factors() -> None:
    params = tabulated_params("Si")
    unit = 2.0 * np.pi / (5.43 / BOHR_ANGSTROM)
    q = unit * np.sqrt([3.0, 8.0, 11.0])
    volume = (5.43 / BOHR_ANGSTROM) ** 3 / 8.0
    table = 0.5 * volume * np.array([-0.21, 0.04, 0.08])  # Rydberg per atom -> Hartree·Bohr³
    np.testing.assert_allclose(wang_zunger_values(q, params), table, atol=1.5)
    assert tabulated_params("N") is None
    shipped, provenance = starting_params("Ga")
    assert shipped[0] == pytest.approx(50.77526879) and "shipped" in provenance


@pytest.mark.slow
def test_converted_silicon_bundle_trains_without_a_hand_written_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`python train.py data.bundle=<converted>` in-process: pre-fit and two epochs of the
    default recipe on the bundle as dpp-convert-bands wrote it (a lower cutoff for speed:
    about 15 s of CPU, 45 s on a busy machine)."""
    bundle = tmp_path / "si"
    assert main([str(PWO), "--max-ke", "3", "-o", str(bundle)]) == 0
    run_dir = tmp_path / "run"
    with caplog.at_level(logging.INFO, logger="dpp"):
        loss = run_app(
            run_dir, [f"data.bundle={bundle}", "trainer.max_epochs=2", "init.num_epochs=100"]
        )
    assert np.isfinite(loss) and loss > 0.0
    rows = cost_rows(run_dir / "final_training_cost.dat")
    assert [epoch for epoch, _ in rows] == [1, 2] and rows[-1][1] <= rows[0][1]
    trained = np.loadtxt(run_dir / "final_SiParams.dat")  # a6, a7 start at 0 and are trained
    assert trained[6] != 0.0 and trained[7] != 0.0
    epochs = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch 2/2")]
    assert epochs and "smoothness" in epochs[0] and "departure" in epochs[0]  # both penalties


def test_elements_without_values_get_their_analogue_scaled_to_their_size(
    tmp_path: Path,
) -> None:
    """C from Si: diamond scaled by s = r_C / r_Si in the scaled potential has Si's bands
    times 1/s² (cutoff scaled alike), so a nitride or carbide starts from its analogue's shape."""
    params, provenance = starting_params("C")
    assert (
        provenance.startswith("the local potential of Si") and "Cohen & Bergstresser" in provenance
    )
    scale = covalent_radius("C") / covalent_radius("Si")
    q = np.linspace(0.0, 6.0, 13)
    np.testing.assert_allclose(
        wang_zunger_values(q, params), scale * wang_zunger_values(scale * q, tabulated_params("Si"))
    )
    assert main([str(PWO), "--max-ke", "4", "-o", str(tmp_path / "si")]) == 0
    carbon = tmp_path / "c"
    shutil.copytree(tmp_path / "si", carbon)
    (carbon / "init_SiParams.par").unlink()
    silicon = read_system(carbon / "system_0.par")
    diamond = replace(silicon, scale=silicon.scale * scale, symbols=("C", "C"))
    (carbon / "system_0.par").write_text(system_text(diamond))
    (carbon / "input_0.par").write_text(f"maxKE = {4 / scale**2!r}\nnBands = 16\n")
    (carbon / "init_CParams.par").write_text("".join(f"{v!r}\n" for v in params.tolist()))
    si_bands = band_structure(load_bundle(tmp_path / "si"))[0].numpy()
    c_bands = band_structure(load_bundle(carbon))[0].numpy()
    np.testing.assert_allclose(c_bands * scale**2, si_bands, atol=1e-8)
    assert starting_params("N")[1].startswith("the local potential of P (shipped")
    assert starting_params("Fe") is None and starting_params("H") is None


QE = TESTS / "data" / "qe"  # real pw.x 6.7 runs (tests/data/qe/README.md)


@pytest.mark.skipif(not QE.is_dir(), reason="no tests/data/qe")
@pytest.mark.parametrize("name", ["bands.pwo", "data-file-schema.xml"])
@pytest.mark.parametrize(
    ("case", "first", "n_bands", "zero_weight"),
    [("si", 1, 16, 0), ("si_hex", 1, 24, 0), ("gaas", 6, 16, 0), ("gan_wz", 11, 24, 4)],
)
def test_real_pw_runs_convert_with_the_semicore_states_left_out(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    name: str,
    first: int,
    n_bands: int,
    zero_weight: int,
) -> None:
    """GaAs: Ga 3d (bands 1–5) below a 2.6 eV gap; wurtzite GaN: Ga 3d entangled with N 2s,
    the two N 2s bands above them kept at weight 0; the VBM at 0 in every case."""
    assert main([str(QE / case / name), "-o", str(tmp_path)]) == 0
    assert f"kept bands {first}.." in capsys.readouterr().out
    settings = read_settings(tmp_path / "input_0.par")
    assert settings.n_bands == n_bands and settings.idx_vb == n_bands - 9  # 4 conduction
    _, bands = _bands(tmp_path, n_bands)
    assert bands[:, settings.idx_vb].max() == pytest.approx(0.0, abs=1e-9)
    assert bands[:, settings.idx_cb].min() > 0.0
    weights = read_band_weights(tmp_path / "bandWeights_0.par", n_bands)
    assert np.count_nonzero(weights == 0.0) == zero_weight
    assert np.all(weights[zero_weight:] == 1.0)
    bundle = load_bundle(tmp_path)
    assert len(bundle.species) == len(set(bundle.systems[0].crystal.symbols))


@pytest.mark.skipif(not QE.is_dir(), reason="no tests/data/qe")
def test_real_run_refuses_a_valence_count_beyond_the_highest_occupied_level(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    xml = QE / "gaas" / "data-file-schema.xml"  # 18 electrons: band 9 tops at 7.5536 eV
    assert main([str(xml), "--valence-bands", "13", "-o", str(tmp_path / "a")]) == 2
    error = capsys.readouterr().err
    assert "expected 9 (the bands up to the highest occupied level 7.5536 eV)" in error
    assert "found 13" in error
    assert main([str(QE / "gaas" / "scf.pwo"), "--valence-bands", "9", "-o", str(tmp_path)]) == 0

"""Loading the shipped bundles, and one malformed bundle per kind of input error."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

import dpp
from dpp.errors import InputError
from dpp.io import load_bundle
from dpp.io.params import read_species_params
from dpp.io.writers import write_species_params
from dpp.slots import N_SLOTS, Slot

DATA = Path(__file__).parent / "data"
ZB_CDSE = Path(dpp.__file__).parent / "data" / "examples" / "zb_CdSe"
BUNDLES = {
    "InGaAsP": (DATA / "InGaAsP", ("As", "Ga", "In", "P"), 4, 61, 16, True),
    "CsPbI3_soc": (DATA / "CsPbI3_soc", ("Cs", "I", "Pb"), 1, 21, 32, True),
    "CsPbI3_soc_golden": (DATA / "CsPbI3_soc_golden", ("Cs", "I", "Pb"), 1, 8, 32, False),
    "zb_CdSe": (ZB_CDSE, ("Cd", "Se"), 1, 61, 16, False),
}


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """A writable copy of the zb_CdSe example bundle."""
    return Path(shutil.copytree(ZB_CDSE, tmp_path / "zb_CdSe"))


def edit_line(path: Path, line: int, text: str) -> None:
    """Replace 1-based line `line` of a file."""
    lines = path.read_text().splitlines()
    lines[line - 1] = text
    path.write_text("\n".join(lines) + "\n")


def expect_error(folder: Path, *fragments: str, **overrides: object) -> InputError:
    with pytest.raises(InputError) as info:
        load_bundle(folder, **overrides)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)
    return info.value


@pytest.mark.parametrize("name", BUNDLES)
def test_shipped_bundles_load(name: str) -> None:
    path, species, n_systems, n_k, n_bands, has_model = BUNDLES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bundle = load_bundle(path)
    assert bundle.species == species
    assert bundle.pp_params.shape == (len(species), N_SLOTS)
    assert len(bundle.systems) == n_systems
    for index, system in enumerate(bundle.systems):
        assert system.index == index
        assert system.kpoints.shape == (n_k, 3)
        assert system.kweights.shape == (n_k,)
        assert system.ref_bands.shape == (n_k, n_bands)
        assert system.ref_path.shape == (n_k,)
        assert system.band_weights.shape == (n_bands,)
        assert system.order_matrix is None
        assert system.files["system"].name == f"system_{index}.par"
    assert (bundle.init_model_path is not None) == has_model
    assert bundle.init_optimizer_path is None
    assert bundle.qspace_prior is None


def test_crystal_and_params_content() -> None:
    bundle = load_bundle(DATA / "CsPbI3_soc")
    crystal = bundle.systems[0].crystal
    assert crystal.scale == pytest.approx(11.884)
    assert crystal.symbols == ("Pb", "I", "I", "I", "Cs")
    np.testing.assert_allclose(crystal.cell, np.eye(3))
    assert bundle.pp_params[2, 5] == pytest.approx(7.78990812)  # Pb spin-orbit slot
    assert bundle.systems[0].settings.system_name == "CsPbI3"


def test_five_number_params_go_to_strain_slot(bundle: Path) -> None:
    shutil.copy(DATA / "extras" / "defpot" / "init_CdParams.par", bundle / "init_CdParams.par")
    with pytest.warns(UserWarning, match=r"init_CdParams.par.*strain slot a8"):
        loaded = load_bundle(bundle)
    np.testing.assert_allclose(
        loaded.pp_params[0], [-31.4518, 1.389, -0.0502, 1.6603] + [0] * 4 + [0.0586, 0]
    )
    long_range = load_bundle(bundle, fifth_param="long_range")
    assert long_range.pp_params[0, 4] == pytest.approx(0.0586)
    assert long_range.pp_params[0, 8] == 0


def test_four_number_params_pad_with_zeros(bundle: Path) -> None:
    (bundle / "init_SeParams.par").write_text("# a0..a3\n1 2\n3 4  # inline comment\n")
    loaded = load_bundle(bundle)
    np.testing.assert_allclose(loaded.pp_params[1], [1, 2, 3, 4, 0, 0, 0, 0, 0, 0])


def test_ten_number_params_carry_the_s_channel(bundle: Path, tmp_path: Path) -> None:
    """a9 is the 10th number; written files keep nine numbers while a9 = 0."""
    (bundle / "init_SeParams.par").write_text(" ".join(map(str, range(1, 11))) + "\n")
    loaded = load_bundle(bundle)
    assert loaded.pp_params[1, Slot.NONLOCAL_0] == 10
    write_species_params(tmp_path / "with.dat", loaded.pp_params[1])
    write_species_params(tmp_path / "without.dat", loaded.pp_params[0])
    assert len((tmp_path / "with.dat").read_text().split()) == 10
    assert len((tmp_path / "without.dat").read_text().split()) == 9
    np.testing.assert_array_equal(read_species_params(tmp_path / "with.dat"), loaded.pp_params[1])


def test_reference_optional_only_on_request(bundle: Path) -> None:
    (bundle / "expBandStruct_0.par").unlink()
    expect_error(bundle, "expBandStruct_0.par", "file not found")
    system = load_bundle(bundle, require_reference=False).systems[0]
    assert system.ref_bands is None and system.ref_path is None


def test_missing_band_weights_default_to_one(bundle: Path) -> None:
    (bundle / "bandWeights_0.par").unlink()
    with pytest.warns(UserWarning, match="bandWeights_0.par"):
        loaded = load_bundle(bundle)
    np.testing.assert_array_equal(loaded.systems[0].band_weights, np.ones(16))


def test_order_matrix_is_read(bundle: Path) -> None:
    matrix = np.tile(np.arange(16), (61, 1))
    np.savetxt(bundle / "kpoints_0_orderMatrix.par", matrix, fmt="%d")
    system = load_bundle(bundle).systems[0]
    np.testing.assert_array_equal(system.order_matrix, matrix)
    assert system.files["order_matrix"].name == "kpoints_0_orderMatrix.par"


def test_qspace_prior_is_mapped_by_header(bundle: Path) -> None:
    (bundle / "init_qSpace_pot.par").write_text("# q  v(q)_Se  v(q)_Cd\n0.0 1.0 2.0\n0.5 3.0 4.0\n")
    prior = load_bundle(bundle).qspace_prior
    np.testing.assert_allclose(prior.q, [0.0, 0.5])
    np.testing.assert_allclose(prior.values, [[2.0, 1.0], [4.0, 3.0]])


def test_checkpoint_paths(bundle: Path) -> None:
    (bundle / "init_AdamState.pth").write_bytes(b"")
    assert load_bundle(bundle).init_optimizer_path == bundle / "init_AdamState.pth"


# --- malformed bundles: each message names the file and the line or key ---------------------


def test_missing_file(bundle: Path) -> None:
    (bundle / "kpoints_0.par").unlink()
    expect_error(bundle, "kpoints_0.par", "file not found")


def test_missing_folder(tmp_path: Path) -> None:
    expect_error(tmp_path / "nowhere", "nowhere", "bundle folder not found")


def test_wrong_column_count_kpoints(bundle: Path) -> None:
    edit_line(bundle / "kpoints_0.par", 1, "0.5 0.5 0.5")
    expect_error(bundle, "kpoints_0.par", "line 1", "too few columns", "at least 4")
    edit_line(bundle / "kpoints_0.par", 1, "0.5 0.5 0.5 1")
    edit_line(bundle / "kpoints_0.par", 4, "0.5 0.5 0.5")
    expect_error(bundle, "kpoints_0.par", "line 4", "ragged table", "as on line 1")


def test_too_few_columns(bundle: Path) -> None:
    path = bundle / "kpoints_0.par"
    rows = [" ".join(line.split()[:3]) for line in path.read_text().splitlines()]
    path.write_text("\n".join(rows) + "\n")
    expect_error(bundle, "kpoints_0.par", "line 1", "at least 4")


def test_nbands_mismatch(bundle: Path) -> None:
    edit_line(bundle / "input_0.par", 2, "nBands = 14")
    expect_error(bundle, "expBandStruct_0.par", "line 1", "nBands = 14")


def test_band_weights_count_mismatch(bundle: Path) -> None:
    (bundle / "bandWeights_0.par").write_text("1.0\n" * 15)
    expect_error(bundle, "bandWeights_0.par", "line 15", "nBands = 16")


def test_kpoint_count_mismatch(bundle: Path) -> None:
    path = bundle / "kpoints_0.par"
    path.write_text("\n".join(path.read_text().splitlines()[:-1]) + "\n")
    expect_error(bundle, "expBandStruct_0.par", "line 61", "60 (one row per k-point)")


def test_non_numeric_token(bundle: Path) -> None:
    path = bundle / "expBandStruct_0.par"
    edit_line(path, 5, path.read_text().splitlines()[4].replace("-", "abc", 1))
    expect_error(bundle, "expBandStruct_0.par", "line 5", "non-numeric")


def test_nan(bundle: Path) -> None:
    edit_line(bundle / "kpoints_0.par", 3, "0.45 0.45 0.45 nan")
    expect_error(bundle, "kpoints_0.par", "line 3", "'nan'")


def test_negative_band_weight(bundle: Path) -> None:
    edit_line(bundle / "bandWeights_0.par", 4, "-1.0")
    expect_error(bundle, "bandWeights_0.par", "line 4", "negative weight")


def test_negative_kpoint_weight(bundle: Path) -> None:
    edit_line(bundle / "kpoints_0.par", 2, "0.475 0.475 0.475 -1")
    expect_error(bundle, "kpoints_0.par", "line 2", "negative weight")


def test_species_without_parameters(bundle: Path) -> None:
    (bundle / "init_SeParams.par").unlink()
    expect_error(bundle, "init_SeParams.par", "key 'Se'")


def test_wrong_parameter_count(bundle: Path) -> None:
    (bundle / "init_SeParams.par").write_text("1\n2\n3\n4\n5\n6\n")
    expect_error(bundle, "init_SeParams.par", "line 6", "found 6")


def test_left_handed_cell(bundle: Path) -> None:
    path = bundle / "system_0.par"
    lines = path.read_text().splitlines()
    lines[3], lines[4] = lines[4], lines[3]
    path.write_text("\n".join(lines) + "\n")
    expect_error(bundle, "system_0.par", "line 3", "key 'cell'", "left-handed")
    assert load_bundle(bundle, allow_left_handed=True).systems[0].crystal.cell[0, 0] == 0.5


def test_order_matrix_shape(bundle: Path) -> None:
    np.savetxt(bundle / "kpoints_0_orderMatrix.par", np.zeros((61, 15)), fmt="%d")
    expect_error(bundle, "kpoints_0_orderMatrix.par", "line 1", "nBands = 16")
    np.savetxt(bundle / "kpoints_0_orderMatrix.par", np.zeros((60, 16)), fmt="%d")
    expect_error(bundle, "kpoints_0_orderMatrix.par", "line 60", "found 60")


def test_order_matrix_negative_entry(bundle: Path) -> None:
    matrix = np.zeros((61, 16), dtype=int)
    matrix[6, 2] = -1
    np.savetxt(bundle / "kpoints_0_orderMatrix.par", matrix, fmt="%d")
    expect_error(bundle, "kpoints_0_orderMatrix.par", "line 7", "negative band index")


def test_missing_required_setting(bundle: Path) -> None:
    (bundle / "input_0.par").write_text("nBands = 16\n")
    expect_error(bundle, "input_0.par", "key 'maxKE'", "required")


def test_qspace_prior_missing_species(bundle: Path) -> None:
    (bundle / "init_qSpace_pot.par").write_text("# q Cd\n0.0 1.0\n")
    expect_error(bundle, "init_qSpace_pot.par", "line 1", "Cd Se")


def test_fit_eph_needs_files(bundle: Path) -> None:
    with (bundle / "input_0.par").open("a") as stream:
        stream.write("fit_eph = 1\nidxVB = 7\nidxCB = 8\nidxGap = 0\n")
    expect_error(bundle, "qpoints_0.par", "file not found")


def test_fit_defpot_reads_targets(bundle: Path) -> None:
    with (bundle / "input_0.par").open("a") as stream:
        stream.write("fit_defPot = 1\nidxVB = 7\nidxCB = 8\nidxGap = 0\n")
    expect_error(bundle, "expDefPot_0.par", "file not found")
    (bundle / "expDefPot_0.par").write_text("-1.0\n-2.0\n")
    assert load_bundle(bundle).systems[0].files["defpot"].name == "expDefPot_0.par"
    edit_line(bundle / "input_0.par", 6, "idxGap = 61")
    expect_error(bundle, "input_0.par", "key 'idxGap'", "< 61")


def test_number_of_systems_from_the_files(bundle: Path) -> None:
    assert len(load_bundle(bundle).systems) == 1
    for name in ("system", "input", "kpoints", "expBandStruct", "bandWeights"):
        shutil.copy(bundle / f"{name}_0.par", bundle / f"{name}_1.par")
    assert len(load_bundle(bundle).systems) == 2
    assert len(load_bundle(bundle, n_systems=1).systems) == 1


def test_kpoint_file_is_read_once_with_its_labels(bundle: Path, monkeypatch) -> None:
    """One pass over kpoints_X.par gives the rows and their `# label` comments, numbered as
    `read_point_labels` numbers them."""
    from dpp.io import text
    from dpp.io.labels import read_point_labels

    kpoints = bundle / "kpoints_0.par"
    rows = kpoints.read_text().splitlines()
    rows[0] += "   # G"
    rows[3] += " #  X "
    kpoints.write_text("# header\n" + "\n".join(rows[:3]) + "\n\n" + "\n".join(rows[3:]) + "\n")
    opened: list[Path] = []
    iter_lines = text.iter_lines
    monkeypatch.setattr(text, "iter_lines", lambda p: opened.append(Path(p)) or iter_lines(p))
    system = load_bundle(bundle).systems[0]
    assert opened.count(kpoints) == 1
    assert system.kpoint_labels == {0: "G", 3: "X"} == read_point_labels(kpoints)
    assert system.crystal.lattice == pytest.approx(system.crystal.scale * system.crystal.cell)

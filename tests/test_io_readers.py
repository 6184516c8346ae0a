"""The single-file readers: key-value, tables, system, settings and the companion files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dpp.errors import InputError
from dpp.io.keyvalue import read_key_values
from dpp.io.kpoints import order_matrix_path
from dpp.io.montecarlo import McOptions, read_beta_schedule, read_mc_options, read_param_steps
from dpp.io.observables import read_coupling_targets, read_defpot_targets, read_qpoints
from dpp.io.qspace import read_qspace_table
from dpp.io.settings import read_settings
from dpp.io.system import read_system
from dpp.io.tables import read_table
from dpp.io.text import BOM

EXTRAS = Path(__file__).parent / "data" / "extras"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_key_values_follow_dpp_rules(tmp_path: Path) -> None:
    path = write(tmp_path, "x.par", "a = 1 # note = 2\n# b = 3\n\nno equals\nc = x=y\n d=4 \n")
    assert read_key_values(path) == {"a": ("1", 1), "c": ("x=y", 5), "d": ("4", 6)}
    with pytest.warns(UserWarning, match="repeats line 1"):
        assert read_key_values(write(tmp_path, "y.par", "a = 1\na = 2\n"))["a"] == ("2", 2)


def test_tables(tmp_path: Path) -> None:
    table = read_table(write(tmp_path, "one.par", "# header\n1 2 3  # c\n"))
    assert table.values.shape == (1, 3) and table.lines == (2,)
    with pytest.raises(InputError, match=r"two.par, line 3: ragged table"):
        read_table(write(tmp_path, "two.par", "1 2\n\n1 2 3\n"))
    with pytest.raises(InputError, match=r"inf.par, line 1: non-finite.*'-inf'"):
        read_table(write(tmp_path, "inf.par", "1 -inf\n"))
    with pytest.raises(InputError, match="empty.par: no data rows"):
        read_table(write(tmp_path, "empty.par", "# nothing\n"))
    with pytest.raises(InputError, match="file not found"):
        read_table(tmp_path / "absent.par")
    (tmp_path / "latin.par").write_bytes(b"1 2\n\xe9\n")
    with pytest.raises(InputError, match="latin.par, line 2: not valid UTF-8"):
        read_table(tmp_path / "latin.par")


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_line_endings_and_bom(tmp_path: Path, newline: bytes) -> None:
    (tmp_path / "t.par").write_bytes(BOM + newline.join([b"# c", b"1 2", b"", b"3 4", b""]))
    table = read_table(tmp_path / "t.par")
    assert table.values.tolist() == [[1, 2], [3, 4]] and table.lines == (2, 4)
    (tmp_path / "k.par").write_bytes(BOM + b"a = 1" + newline + b"b = 2")
    assert read_key_values(tmp_path / "k.par") == {"a": ("1", 1), "b": ("2", 2)}


def test_table_sizes_stop_at_the_first_bad_row(tmp_path: Path) -> None:
    path = write(tmp_path, "big.par", "0 1 2\n0 1\n" + "x\n" * 1000)
    with pytest.raises(InputError, match=r"line 2: wrong number of columns; expected 3 \(d E\)"):
        read_table(path, columns=(3, "d E"))
    path = write(tmp_path, "rows.par", "1 2\n" * 3 + "x\n")
    with pytest.raises(InputError, match=r"line 3: too many rows; expected 2 \(k\), found 3 or"):
        read_table(path, rows=(2, "k"))
    with pytest.raises(InputError, match=r"line 3: too few rows; expected 5 \(k\), found 3"):
        read_table(write(tmp_path, "few.par", "1 2\n" * 3), rows=(5, "k"))


@pytest.mark.parametrize("scale_line", ["scale = 2.5", "scale=2.5", "scale 2.5"])
def test_system_scale_forms_and_comments(tmp_path: Path, scale_line: str) -> None:
    text = (
        f"# comment\n{scale_line}\ncell\n\n# rows follow\n1 0 0\n0 1 0  # a2\n0 0 1\n"
        "atoms\nGa 0 0 0 extra\n# skipped\nAs 0.25 0.25 0.25\n"
    )
    crystal = read_system(write(tmp_path, "system_0.par", text))
    assert crystal.scale == 2.5 and crystal.symbols == ("Ga", "As")
    np.testing.assert_allclose(crystal.fractional[1], [0.25] * 3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cell\n1 0 0\n0 1 0\n0 0 1\natoms\nGa 0 0 0\n", "key 'scale'"),
        ("scale = 1\natoms\nGa 0 0 0\n", "key 'cell'"),
        ("scale = 1\ncell\n1 0 0\n0 1 0\n0 0 1\n", "key 'atoms'"),
        ("scale = 1\ncell\n1 0 0\n0 1\n0 0 1\natoms\nGa 0 0 0\n", "line 4: bad a cell row"),
        ("scale = 1\ncell\n1 0 0\n0 1 0\n0 0 1\natoms\nGa 0 0\n", "line 7: bad an atom"),
        ("scale = 1\ncell\n1 0 0\n2 0 0\n0 0 1\natoms\nGa 0 0 0\n", "singular or nearly flat"),
        ("scale = 5\ncell\n1 0 0\n0 1 0\n1 1 1e-8\natoms\nGa 0 0 0\n", "nearly flat cell"),
        ("scale = 0.1\ncell\n1 0 0\n0 1 0\n0 0 1\natoms\nGa 0 0 0\n", "periodic images"),
        ("scale = 5\ncell\n1 0 0\n0 1 0\n0 0 1\natoms\nGa 0 0 0\nAs 0 0 0\n", "line 8: overl"),
        ("scale = 5\ncell\n1 0 0\n0 1 0\n0 0 1\natoms\nGa 0 0 0\nGa 1 0 0\n", "overlapping"),
        ("scale = 5\ncell\n1 0 0\n0 1 0\n0 0 1\natoms\nQ/../x 0 0 0\n", "chemical symbol"),
        ("scale = 5\ncell\n1 0 0\n0 1 0\n0 0 1\natoms\nXx 0 0 0\n", "line 7: not a chem"),
        ("scale = -1\ncell\n1 0 0\n0 1 0\n0 0 1\natoms\nGa 0 0 0\n", "bad scale"),
    ],
)
def test_system_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        read_system(write(tmp_path, "system_0.par", text))


def test_settings(tmp_path: Path) -> None:
    path = write(tmp_path, "input_0.par", "maxKE = 6\nnBands = 32.0\nidxVB = 25\nfit_defPot = 1\n")
    settings = read_settings(path)
    assert settings.max_ke == 6.0 and settings.n_bands == 32 and settings.idx_vb == 25
    assert settings.fit_defpot is True and settings.system_name == "No_Name"
    with pytest.warns(UserWarning, match="line 3: unknown key 'nband'.*'nBands'"):
        read_settings(write(tmp_path, "input_1.par", "maxKE = 6\nnBands = 8\nnband = 8\n"))
    with pytest.raises(InputError, match="input_2.par, line 1, key 'nBands'"):
        read_settings(write(tmp_path, "input_2.par", "nBands = 8.5\nmaxKE = 1\n"))


def test_order_matrix_path_uses_folder() -> None:
    assert order_matrix_path(Path("./inputs/kpoints_3.par")) == Path(
        "inputs/kpoints_3_orderMatrix.par"
    )


def test_qspace_without_header_warns(tmp_path: Path) -> None:
    path = write(tmp_path, "init_qSpace_pot.par", "0.0 1 2\n0.1 3 4\n")
    with pytest.warns(UserWarning, match="species order Cd Se"):
        table = read_qspace_table(path, ("Cd", "Se"))
    np.testing.assert_allclose(table.values, [[1, 2], [3, 4]])
    with pytest.raises(InputError, match="line 3: bad q value"):
        read_qspace_table(write(tmp_path, "q.par", "# q Cd Se\n0.1 1 2\n0.1 3 4\n"), ("Cd", "Se"))
    with pytest.raises(InputError, match="line 1: columns do not match"):
        read_qspace_table(write(tmp_path, "e.par", "# q Cd Se S\n0 1 2 3\n"), ("Cd", "Se"))


def test_mc_options() -> None:
    first = read_mc_options(EXTRAS / "montecarlo" / "mcOpts1.par")
    second = read_mc_options(EXTRAS / "montecarlo" / "mcOpts2.par")
    assert first == McOptions(
        betas=(100.0, 1.0), steps_at_temp=(5, 5), total_iter=20, opt_gaps=True
    )
    assert second.fit_coupling and not first.fit_coupling


def test_mc_options_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="line 2, key 'totalIters'.*'totalIter'"):
        read_mc_options(write(tmp_path, "mcOpts.par", "betas = 1 2\ntotalIters = 5\n"))
    with pytest.raises(InputError, match="key 'fitEffMass'"):
        read_mc_options(write(tmp_path, "mcOpts.par", "fitEffMass = True\n"))
    with pytest.raises(InputError, match="line 1, key 'betas'"):
        read_mc_options(write(tmp_path, "mcOpts.par", "betas = 1\n"))
    with pytest.warns(UserWarning, match="paramSteps"):
        assert read_mc_options(write(tmp_path, "mcOpts.par", "paramSteps = 1\n")) == McOptions()


def test_param_steps(tmp_path: Path) -> None:
    params = np.array([[100.0] * 9, [-200.0] * 9])
    np.testing.assert_allclose(read_param_steps(tmp_path, ("Cd", "Se"), params)[1], [2.0] * 9)
    write(tmp_path, "CdParamSteps.par", "0.1\n0.2\n0.3\n0.4\n0.5\n")
    with pytest.raises(InputError, match="SeParamSteps.par: file not found"):
        read_param_steps(tmp_path, ("Cd", "Se"), params)
    write(tmp_path, "SeParamSteps.par", "0\n" * 9)
    steps = read_param_steps(tmp_path, ("Cd", "Se"), params)
    np.testing.assert_allclose(steps[0], [0.1, 0.2, 0.3, 0.4, 0.5, 0, 0, 0, 0, 0])
    write(tmp_path, "SeParamSteps.par", "0\n-1\n0\n0\n0\n")
    with pytest.raises(InputError, match="SeParamSteps.par, line 2: negative step"):
        read_param_steps(tmp_path, ("Cd", "Se"), params)


def test_beta_schedule(tmp_path: Path) -> None:
    schedule = read_beta_schedule(write(tmp_path, "b.par", "# trial beta\n1 5\n200 20\n500 100\n"))
    assert schedule.beta_at(1, 2.0) == 5.0 and schedule.beta_at(499, 2.0) == 20.0
    assert schedule.beta_at(10**6, 2.0) == 100.0
    assert read_beta_schedule(write(tmp_path, "c.par", "3 5\n")).beta_at(2, 7.0) == 7.0
    with pytest.raises(InputError, match="line 2: bad trial index"):
        read_beta_schedule(write(tmp_path, "d.par", "5 1\n5 2\n"))
    with pytest.raises(InputError, match="line 1: bad beta"):
        read_beta_schedule(write(tmp_path, "e.par", "1 0\n"))


def test_defpot_targets(tmp_path: Path) -> None:
    rows = (
        "# kVB bVB kCB bCB s D w\n12 15 12 16 1.01 -2.70 1.5  # Gamma\n12 15 12 16 0.99 -2.7 1.5\n"
    )
    targets = read_defpot_targets(write(tmp_path, "expDefPot_0.par", rows))
    assert targets[0].states == ((12, 15), (12, 16)) and targets[1].ratio == 0.99
    with pytest.warns(UserWarning, match="G = 0 reference"):
        single = read_defpot_targets(write(tmp_path, "s.par", "3 7 1.01 -1.0 2.0\n"))
    assert single[0].states == ((3, 7),) and single[0].weight == 2.0
    legacy_file = write(tmp_path, "l.par", "-1.5\n-3.0\n")
    legacy = read_defpot_targets(legacy_file, legacy_indices=(0, 7, 8), legacy_weight=4.0)
    assert [(t.states, t.ratio, t.d_ref, t.weight) for t in legacy] == [
        (((0, 7),), 1.01, -1.5, 4.0),
        (((0, 8),), 1.01, -3.0, 4.0),
    ]
    with pytest.raises(InputError, match="line 1: legacy two-line file needs"):
        read_defpot_targets(legacy_file)
    with pytest.raises(InputError, match="line 1: wrong number of columns"):
        read_defpot_targets(write(tmp_path, "b.par", "1 2 3 4 1.01 0\n"))
    with pytest.raises(InputError, match="line 1: bad lattice ratio"):
        read_defpot_targets(write(tmp_path, "r.par", "1 2 3 4 1.0 0 1\n"))


def test_qpoints_and_couplings() -> None:
    q, weights = read_qpoints(EXTRAS / "montecarlo" / "qpoints_0.par")
    assert q.shape == (2, 3) and weights.tolist() == [1.0, 1.0]
    targets = read_coupling_targets(EXTRAS / "montecarlo" / "expCoupling_0.par", n_qpoints=2)
    assert targets.symbols == {0: "Pb", 1: "I", 2: "I", 3: "I", 4: "Cs"}
    assert len(targets.values) == 5 * 3 * 2 * 2
    assert targets.values[(0, 0, 1, "cb")] == 1.25 and targets.values[(0, 1, 0, "vb")] == 0.12


def test_coupling_layout_errors(tmp_path: Path) -> None:
    source = (EXTRAS / "montecarlo" / "expCoupling_0.par").read_text().splitlines()
    broken = source.copy()
    broken[3] = "polarization of derivative = q"
    with pytest.raises(InputError, match="line 4: bad coupling block layout"):
        read_coupling_targets(write(tmp_path, "c.par", "\n".join(broken)))
    with pytest.raises(InputError, match="line 3: wrong number of coupling values"):
        read_coupling_targets(write(tmp_path, "d.par", "\n".join(source)), n_qpoints=3)
    not_fit = source.copy()
    not_fit[2] = "Not-fit   0.69"
    values = read_coupling_targets(write(tmp_path, "e.par", "\n".join(not_fit))).values
    assert (0, 0, 0, "vb") not in values and values[(0, 0, 1, "vb")] == 0.69

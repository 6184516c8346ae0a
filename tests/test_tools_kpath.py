"""dpp-kpath and dpp.io.labels: standard paths with labelled high-symmetry rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dpp.io.kpoints import read_points
from dpp.io.labels import read_point_labels
from dpp.io.system import read_system
from dpp.physics.lattice import reciprocal_vectors
from dpp.tools.kpath import main

CDSE_SYSTEM = (
    Path(__file__).parent.parent / "dpp" / "data" / "examples" / "zb_CdSe" / "system_0.par"
)
A = 11.4485278


def _labelled(path: Path) -> dict[str, list[np.ndarray]]:
    kpoints, _ = read_points(path)
    points: dict[str, list[np.ndarray]] = {}
    for row, label in read_point_labels(path).items():
        points.setdefault(label, []).append(kpoints[row])
    return points


def test_fcc_path_has_gamma_x_and_l_at_their_fractional_coordinates(tmp_path: Path) -> None:
    output = tmp_path / "kpoints_0.par"
    assert main([str(CDSE_SYSTEM), "-o", str(output), "--npoints", "60"]) == 0
    kpoints, weights = read_points(output)
    assert kpoints.shape == (60, 3)
    np.testing.assert_array_equal(weights, 1.0)
    points = _labelled(output)
    assert {"G", "X", "L", "K", "W", "U"} <= set(points)
    for label, expected in (("G", [0, 0, 0]), ("X", [0.5, 0, 0.5]), ("L", [0.5, 0.5, 0.5])):
        for point in points[label]:
            np.testing.assert_allclose(point, expected, atol=1e-12)
    labels = read_point_labels(output)
    assert labels[0] == "G" and labels[59] == "X"
    jumps = [row for row in labels if row + 1 in labels]
    assert len(jumps) == 1 and (labels[jumps[0]], labels[jumps[0] + 1]) == ("K", "U")


@pytest.mark.parametrize("convention", ["setyawan-curtarolo", "hpkot"])
def test_other_fcc_basis_keeps_cartesian_special_points(tmp_path: Path, convention: str) -> None:
    system = tmp_path / "system_0.par"
    system.write_text(
        f"scale = {A}\ncell\n-0.5 0.0 0.5\n0.0 0.5 0.5\n-0.5 0.5 0.0\n"
        "atoms\nCd 0.0 0.0 0.0\nSe -0.25 0.75 -0.25\n"
    )
    output = tmp_path / "path.par"
    assert main([str(system), "-o", str(output), "--convention", convention]) == 0
    reciprocal = reciprocal_vectors(read_system(system).lattice)
    unit = 2 * np.pi / A
    for label, norm, axis in (("G", 0.0, None), ("X", 1.0, "cube"), ("L", np.sqrt(0.75), "body")):
        for point in _labelled(output)[label]:
            cartesian = point @ reciprocal / unit
            assert np.linalg.norm(cartesian) == pytest.approx(norm, abs=1e-9)
            if axis == "cube":
                assert np.sort(np.abs(cartesian)) == pytest.approx([0, 0, 1], abs=1e-9)
            if axis == "body":
                assert np.abs(cartesian) == pytest.approx([0.5, 0.5, 0.5], abs=1e-9)


def test_read_point_labels_ignores_comment_lines_and_unlabelled_rows(tmp_path: Path) -> None:
    path = tmp_path / "kpoints_0.par"
    path.write_text(
        "# header\n0 0 0 1   # G\n\n0.1 0 0 1\n# note\n0.5 0 0.5 1 #  X \n0.2 0 0 1 #\n"
    )
    assert read_point_labels(path) == {0: "G", 2: "X"}
    assert read_points(path)[0].shape == (4, 3)


def test_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "kpoints_0.par"
    output.write_text("0 0 0 1\n")
    assert main([str(CDSE_SYSTEM), "-o", str(output)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main([str(CDSE_SYSTEM), "-o", str(output), "--force", "--path", "LGX"]) == 0
    assert set(read_point_labels(output).values()) == {"L", "G", "X"}

"""dpp-cluster-potentials: PCA and K-means over synthetic v(q) tables of a sweep."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from dpp.io.writers import write_qspace_table
from dpp.tools.cluster_potentials import main

SPECIES = ("Cd", "Se")
SWEEP = Path(__file__).parent / "data" / "tools" / "qspace_sweep"  # runs a_0..a_2, b_0..b_2


def _curves(q: np.ndarray, family: int, rng: np.random.Generator) -> np.ndarray:
    """Two clearly different families of (Cd, Se) form factors, with small run-to-run noise."""
    depth = (-40.0, -10.0)[family] * (1 + 0.03 * rng.standard_normal())
    width = (1.0, 2.5)[family] * (1 + 0.03 * rng.standard_normal())
    cd = depth * np.exp(-((q / width) ** 2))
    se = 0.5 * depth * np.exp(-((q / (1.3 * width)) ** 2))
    return np.column_stack([cd, se])


def _sweep(folder: Path, runs: int = 8) -> dict[str, int]:
    """runs/run_<i>/final_qSpace_pot.dat, half of each family; returns run name → family."""
    rng = np.random.default_rng(7)
    q = np.linspace(0.0, 8.0, 161)
    families = {}
    for run in range(runs):
        family = run % 2
        path = folder / f"run_{run}" / "final_qSpace_pot.dat"
        path.parent.mkdir(parents=True)
        write_qspace_table(path, q, _curves(q, family, rng), SPECIES)
        (folder / f"run_{run}" / "epoch_5_qSpace_pot.dat").write_text("ignored by the pattern\n")
        families[f"run_{run}/final_qSpace_pot.dat"] = family
    return families


def _read(path: Path) -> dict[str, dict[str, str]]:
    with path.open() as stream:
        return {row["run"]: row for row in csv.DictReader(stream)}


def _assert_two_families_found(rows: dict[str, dict[str, str]], families: dict[str, int]) -> None:
    labels = {name: int(row["cluster"]) for name, row in rows.items()}
    assert set(labels) == set(families)
    first = {labels[name] for name, family in families.items() if family == 0}
    second = {labels[name] for name, family in families.items() if family == 1}
    assert len(first) == 1 and len(second) == 1 and first != second


def test_each_species_separates_the_two_families_of_the_fixture_sweep(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    families = {
        f"{run.name}/final_qSpace_pot.dat": int(run.name.startswith("b")) for run in SWEEP.iterdir()
    }
    assert main([str(SWEEP), "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    for symbol in SPECIES:
        rows = _read(tmp_path / "out" / f"clusters_{symbol}.csv")
        assert list(next(iter(rows.values()))) == ["run", "PC1", "PC2", "cluster"]
        _assert_two_families_found(rows, families)
        assert (tmp_path / "out" / f"clusters_{symbol}.png").stat().st_size > 0
        assert f"{symbol}: 6 runs, explained variance PC1" in out
    ratio = float(out.split("PC1 ")[1].split("%")[0])
    assert ratio > 90.0  # two well-separated families: one dominant direction
    assert "silhouette" in out


def test_concatenated_curves_from_a_file_list_on_different_grids(tmp_path: Path) -> None:
    families = _sweep(tmp_path / "sweep")
    files = sorted((tmp_path / "sweep").rglob("final_qSpace_pot.dat"))
    fine = np.linspace(0.0, 10.0, 501)  # another grid: interpolated onto the first one
    write_qspace_table(files[-1], fine, _curves(fine, 1, np.random.default_rng(3)), SPECIES)
    argv = [*map(str, files), "--species", "concatenated", "--components", "3"]
    assert main([*argv, "-o", str(tmp_path / "out"), "--standardize"]) == 0
    rows = _read(tmp_path / "out" / "clusters_concatenated.csv")
    renamed = {str(path): families[f"{path.parent.name}/{path.name}"] for path in files}
    _assert_two_families_found(rows, renamed)
    assert "PC3" in next(iter(rows.values()))


def test_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 2
    assert "no potential tables found" in capsys.readouterr().err
    _sweep(tmp_path / "sweep", runs=2)
    assert main([str(tmp_path / "sweep"), "--species", "Pb", "-o", str(tmp_path / "o")]) == 2
    assert "species missing" in capsys.readouterr().err
    assert main([str(tmp_path / "sweep"), "--clusters", "3", "-o", str(tmp_path / "o")]) == 2
    assert "--clusters" in capsys.readouterr().err

"""kpoints_X.par / qpoints_X.par and kpoints_X_orderMatrix.par (bundle-format §6, §12.1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dpp.errors import InputError
from dpp.io.labels import row_labels
from dpp.io.tables import read_table, to_int


def read_labelled_points(path: str | Path) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """Read `k1 k2 k3 w [# label]` rows (extra columns ignored) in one pass: fractional points
    (n, 3), weights (n,) and row → label of the rows with a trailing `# label`
    (`dpp.io.labels`).

    Weights must be >= 0; one row is fine.
    """
    table = read_table(path, min_columns=4)
    weights = table.values[:, 3]
    for weight, line in zip(weights, table.lines, strict=True):
        if weight < 0:
            raise InputError(
                path, "negative weight", line=line, expected="weight >= 0", found=f"{weight:g}"
            )
    return table.values[:, :3].copy(), weights.copy(), row_labels(table.comments)


def read_points(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """`read_labelled_points` without the labels: fractional points (n, 3), weights (n,)."""
    points, weights, _ = read_labelled_points(path)
    return points, weights


def order_matrix_path(kpoints_path: str | Path) -> Path:
    """The order-matrix file of a k-point file: same folder, `_orderMatrix` before the suffix."""
    kpoints_path = Path(kpoints_path)
    return kpoints_path.with_name(f"{kpoints_path.stem}_orderMatrix{kpoints_path.suffix}")


def read_order_matrix(path: str | Path, n_kpoints: int, n_bands: int) -> np.ndarray:
    """Read an integer band-order matrix of shape exactly (n_kpoints, n_bands), entries >= 0.

    The upper bound (< Hamiltonian dimension) depends on the basis and is checked later.
    """
    table = read_table(
        path,
        columns=(n_bands, f"nBands = {n_bands}"),
        rows=(n_kpoints, "one row per k-point"),
    )
    matrix = np.empty(table.values.shape, dtype=np.int64)
    for row, (values, line) in enumerate(zip(table.values, table.lines, strict=True)):
        matrix[row] = [to_int(value, path, line) for value in values]
        if matrix[row].min() < 0:
            raise InputError(
                path,
                "negative band index",
                line=line,
                expected="indices >= 0",
                found=f"{matrix[row].min()}",
            )
    return matrix

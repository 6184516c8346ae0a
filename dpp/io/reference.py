"""expBandStruct_X.par (reference bands, eV) and bandWeights_X.par (bundle-format §7, §8)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from dpp.errors import InputError
from dpp.io.tables import read_flat, read_table

MAX_ENERGY_EV = 1.0e4
"""Largest |E| (eV) accepted as a reference energy; band energies are within tens of eV."""


def read_reference_bands(
    path: str | Path, n_bands: int, n_kpoints: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Read `d E_0 ... E_{nBands-1}` rows: path coordinate (nK,) and energies (nK, nBands) in eV.

    Exactly nBands energy columns are required, `n_kpoints` rows when given, and every
    energy within ±MAX_ENERGY_EV; the file is streamed and reading stops at the first bad row.
    """

    def check(line: int, row: list[float]) -> None:
        energies = np.abs(row[1:])
        if energies.size and energies.max() > MAX_ENERGY_EV:
            column = int(energies.argmax()) + 2
            raise InputError(
                path,
                "reference energy outside the physical range",
                line=line,
                expected=f"|E| <= {MAX_ENERGY_EV:g} eV",
                found=f"{row[column - 1]:g} in column {column}",
            )

    table = read_table(
        path,
        columns=(n_bands + 1, f"path coordinate + nBands = {n_bands} energies"),
        rows=None if n_kpoints is None else (n_kpoints, "one row per k-point"),
        check=check,
    )
    return table.values[:, 0].copy(), table.values[:, 1:].copy()


def read_band_weights(path: str | Path, n_bands: int) -> np.ndarray:
    """Read nBands weights >= 0 in any layout; a missing file gives all ones with a warning."""
    path = Path(path)
    if not path.exists():
        warnings.warn(f"{path}: file not found; all band weights set to 1", stacklevel=2)
        return np.ones(n_bands)
    values, lines = read_flat(path)
    if values.size != n_bands:
        line = lines[n_bands] if values.size > n_bands else (lines[-1] if lines else None)
        raise InputError(
            path,
            "wrong number of band weights",
            line=line,
            expected=f"nBands = {n_bands}",
            found=f"{values.size}",
        )
    for value, line in zip(values, lines, strict=True):
        if value < 0:
            raise InputError(
                path, "negative weight", line=line, expected="weight >= 0", found=f"{value:g}"
            )
    return values

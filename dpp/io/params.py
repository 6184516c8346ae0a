"""init_<S>Params.par: analytic parameters a0..a9 of one species (bundle-format §9)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from dpp.errors import InputError
from dpp.io.tables import read_flat
from dpp.slots import LEGACY_SLOTS, N_SLOTS, Slot


def params_path(folder: str | Path, symbol: str) -> Path:
    """Path of the parameter file of species `symbol` in a bundle folder."""
    return Path(folder) / f"init_{symbol}Params.par"


def read_species_params(path: str | Path, *, fifth_param: str = "strain") -> np.ndarray:
    """Read a0..a9 (Hartree·Bohr³ for a0, see physics.md §4) as a (10,) vector.

    Numbers in any layout with `#` comments. 10 values: as is; 9: a0..a8 and a9 = 0 (the
    original's files); 4: a0..a3, rest 0; 5: a0..a3 and
    the 5th value in slot 8 (`fifth_param="strain"`, with a warning) or slot 4
    (`"long_range"`). Any other count is an InputError.
    """
    values, lines = read_flat(path)
    params = np.zeros(N_SLOTS)
    if values.size in (LEGACY_SLOTS, N_SLOTS):
        params[: values.size] = values
    elif values.size in (4, 5):
        params[:4] = values[:4]
        if values.size == 5:
            slot = Slot.STRAIN if fifth_param == "strain" else Slot.LONG_RANGE
            params[slot] = values[4]
            if fifth_param == "strain":
                warnings.warn(
                    f"{path}, line {lines[4]}: 5-number parameter file; the 5th value "
                    f"{values[4]:g} goes to the strain slot a8 (legacy_fifth_param = strain)",
                    stacklevel=2,
                )
    else:
        raise InputError(
            path,
            "wrong number of parameters",
            line=lines[-1] if lines else None,
            expected="9 (a0..a8), 10 (a0..a9), 4 or 5 numbers",
            found=f"{values.size}",
        )
    return params

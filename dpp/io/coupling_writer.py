"""couplingBands_0.dat / bestCoupling_0.dat: coupling blocks per atom (bundle-format §12.2).

The layout is the one `read_coupling_targets` reads back: per atom a header line, then the
vb and cb sub-blocks (x, y, z lines of one value per q-point) and two blank lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import SupportsFloat

import numpy as np

from dpp.io.records import Crystal

NOT_FIT = "Not-fit"
"""Written where a (atom, direction, q, band) key has no value."""

_DIRECTIONS = "xyz"


def format_couplings(
    values: Mapping[tuple[int, int, int, str], SupportsFloat],
    crystal: Crystal,
    n_qpoints: int,
) -> str:
    """Text of a coupling file: |g| in eV/Bohr as `%.6e`, `Not-fit` for missing keys.

    Keys are (atom, direction 0|1|2, q index, 'vb'|'cb'); scalar tensors are accepted.
    The header gives each atom's symbol and Cartesian position in Bohr.
    """
    positions = np.asarray(crystal.fractional, dtype=np.float64) @ crystal.lattice
    lines: list[str] = []
    for atom, symbol in enumerate(crystal.symbols):
        position = " ".join(f"{x:.6f}" for x in positions[atom])
        lines.append(f"Atom idx = {atom}   atom = {symbol}   position = {position}")
        for band in ("vb", "cb"):
            prefix = f"{band}-{band} coupling elements. "
            for direction, name in enumerate(_DIRECTIONS):
                lines.append(f"{prefix}polarization of derivative = {name}")
                prefix = ""
                cells = []
                for q in range(n_qpoints):
                    key = (atom, direction, q, band)
                    cells.append(f"{float(values[key]):.6e}" if key in values else NOT_FIT)
                lines.append("".join(f"{cell}   " for cell in cells))
            lines.append("")
        lines.append("")
    return "\n".join(lines) + "\n"

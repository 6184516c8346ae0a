"""system_X.par: lattice scale (Bohr), cell rows and atoms (bundle-format §4)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from ase.data import chemical_symbols
from ase.geometry import get_distances, minkowski_reduce

from dpp.errors import InputError
from dpp.io.records import Crystal
from dpp.io.tables import parse_number
from dpp.io.text import content_lines

_SCALE = re.compile(r"^scale(?:\s*=\s*|\s+)(\S+)$")
_SYMBOL = re.compile(r"^([A-Z][a-z]?)(?:[_0-9][A-Za-z0-9_]*)?$")
ELEMENTS = frozenset(chemical_symbols[1:])
"""Chemical symbols H ... Og; a species symbol is one of them, optionally with a suffix of
`_` or a digit and then letters, digits or `_` (`Cd`, `Cd2`, `Se_b`). Symbols name files
(init_<S>Params.par, final_pot_<S>.dat), so nothing else may reach a path."""

MIN_DISTANCE = 1.0
"""Closest approach (Bohr) of two atoms, periodic images included (shortest bonds ~1.4 Bohr)."""
MIN_CELL_RATIO = 1e-3
"""Smallest accepted |det| / (|a1| |a2| |a3|) (1 for a cube, 0.71 for fcc): below it the cell
is nearly flat, a typo rather than a crystal."""


def read_system(path: str | Path, *, allow_left_handed: bool = False) -> Crystal:
    """Read a system file: `scale = v` (also `scale=v`, `scale v`), `cell` + 3 rows, `atoms`.

    Comments and blank lines are allowed everywhere. A singular or nearly flat cell, a
    left-handed one (negative triple product) unless `allow_left_handed`, a symbol that is not
    a chemical symbol and atoms closer than MIN_DISTANCE (periodic images included) are
    InputErrors.
    """
    path = Path(path)
    lines = list(content_lines(path))
    scale: float | None = None
    cell_rows: list[list[float]] = []
    cell_line: int | None = None
    symbols: list[str] = []
    atom_lines: list[int] = []
    fractional: list[list[float]] = []
    position = 0
    while position < len(lines):
        number, text = lines[position]
        position += 1
        if text.startswith("scale"):
            match = _SCALE.match(text)
            if match is None:
                raise InputError(
                    path,
                    "bad scale line",
                    line=number,
                    key="scale",
                    expected="'scale = <Bohr>'",
                    found=repr(text),
                )
            scale = parse_number(match.group(1), path, number)
        elif text == "cell":
            cell_line = number
            for row_number, row_text in lines[position : position + 3]:
                cell_rows.append(_numbers(row_text, 3, path, row_number, "a cell row"))
            position += 3
            if len(cell_rows) != 3:
                raise InputError(
                    path,
                    "incomplete cell",
                    line=number,
                    key="cell",
                    expected="3 rows after 'cell'",
                    found=f"{len(cell_rows)}",
                )
        elif text == "atoms":
            for atom_number, atom_text in lines[position:]:
                symbol, *rest = atom_text.split()
                if _is_number(symbol):
                    raise InputError(
                        path,
                        "bad atom line",
                        line=atom_number,
                        expected="'<symbol> f1 f2 f3'",
                        found=repr(atom_text),
                    )
                _check_symbol(symbol, path, atom_number)
                symbols.append(symbol)
                atom_lines.append(atom_number)
                fractional.append(_numbers(" ".join(rest[:3]), 3, path, atom_number, "an atom"))
            break
    if scale is None:
        raise InputError(
            path, "missing scale", key="scale", expected="'scale = <Bohr>'", found="no scale line"
        )
    if scale <= 0:
        raise InputError(path, "bad scale", key="scale", expected="> 0", found=f"{scale:g}")
    if cell_line is None:
        raise InputError(
            path,
            "missing cell block",
            key="cell",
            expected="'cell' + 3 rows",
            found="no 'cell' line",
        )
    if not symbols:
        raise InputError(
            path,
            "missing atoms",
            key="atoms",
            expected="'atoms' followed by atom lines",
            found="no atoms",
        )
    cell = np.array(cell_rows)
    volume = float(np.linalg.det(cell))
    ratio = abs(volume) / max(float(np.prod(np.linalg.norm(cell, axis=1))), 1e-300)
    if ratio < MIN_CELL_RATIO:
        raise InputError(
            path,
            "singular or nearly flat cell",
            line=cell_line,
            key="cell",
            expected=f"|a1 . (a2 x a3)| / (|a1| |a2| |a3|) >= {MIN_CELL_RATIO:g} "
            "(linearly independent rows)",
            found=f"{ratio:.3g} (det = {volume:.3g})",
        )
    if volume < 0 and not allow_left_handed:
        raise InputError(
            path,
            "left-handed cell",
            line=cell_line,
            key="cell",
            expected="a1 . (a2 x a3) > 0",
            found=f"{volume:g}",
            hint="swap two rows or set allow_left_handed = 1",
        )
    positions = np.array(fractional)
    _check_distances(path, scale * cell, positions, symbols, atom_lines, cell_line)
    return Crystal(scale=scale, cell=cell, symbols=tuple(symbols), fractional=positions)


def _check_symbol(symbol: str, path: Path, line: int) -> None:
    match = _SYMBOL.match(symbol)
    if match is None or match.group(1) not in ELEMENTS:
        raise InputError(
            path,
            "not a chemical symbol",
            line=line,
            expected="a chemical symbol such as Cd, optionally with a suffix such as Cd_2",
            found=repr(symbol),
        )


def _check_distances(
    path: Path,
    lattice: np.ndarray,
    fractional: np.ndarray,
    symbols: list[str],
    lines: list[int],
    cell_line: int,
) -> None:
    """Every atom at least MIN_DISTANCE from every other atom and from its own periodic
    images (minimum image over the Minkowski-reduced cell)."""
    reduced, _ = minkowski_reduce(lattice)
    shortest = float(np.linalg.norm(np.asarray(reduced), axis=1).min())
    if shortest < MIN_DISTANCE:
        raise InputError(
            path,
            "the cell is smaller than an atom: every atom overlaps its periodic images",
            line=cell_line,
            key="cell",
            expected=f"lattice vectors (times scale) of at least {MIN_DISTANCE:g} Bohr",
            found=f"a lattice vector of {shortest:.3f} Bohr",
        )
    if len(symbols) < 2:
        return
    _, distances = get_distances(fractional @ lattice, cell=lattice, pbc=True)
    np.fill_diagonal(distances, np.inf)
    first, second = np.unravel_index(int(np.argmin(distances)), distances.shape)
    first, second = sorted((int(first), int(second)))
    closest = float(distances[first, second])
    if closest < MIN_DISTANCE:
        raise InputError(
            path,
            "overlapping atoms",
            line=lines[second],
            expected=f"atoms at least {MIN_DISTANCE:g} Bohr apart (periodic images included)",
            found=f"{symbols[second]} {closest:.3f} Bohr from {symbols[first]} on line "
            f"{lines[first]}",
        )


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _numbers(text: str, count: int, path: Path, line: int, what: str) -> list[float]:
    tokens = text.split()
    if len(tokens) != count:
        raise InputError(
            path,
            f"bad {what}",
            line=line,
            expected=f"{count} numbers",
            found=f"{len(tokens)} ({text!r})",
        )
    return [parse_number(token, path, line) for token in tokens]

"""system_X.par: lattice scale (Bohr), cell rows and atoms (bundle-format §4)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from dpp.errors import InputError
from dpp.io.records import Crystal
from dpp.io.tables import parse_number
from dpp.io.text import content_lines

_SCALE = re.compile(r"^scale(?:\s*=\s*|\s+)(\S+)$")


def read_system(path: str | Path, *, allow_left_handed: bool = False) -> Crystal:
    """Read a system file: `scale = v` (also `scale=v`, `scale v`), `cell` + 3 rows, `atoms`.

    Comments and blank lines are allowed everywhere. A singular cell, or a left-handed one
    (negative triple product) unless `allow_left_handed`, is an InputError.
    """
    path = Path(path)
    lines = list(content_lines(path))
    scale: float | None = None
    cell_rows: list[list[float]] = []
    cell_line: int | None = None
    symbols: list[str] = []
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
                symbols.append(symbol)
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
    if abs(volume) < 1e-12:
        raise InputError(
            path,
            "singular cell",
            line=cell_line,
            key="cell",
            expected="linearly independent rows",
            found=f"det = {volume:g}",
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
    return Crystal(scale=scale, cell=cell, symbols=tuple(symbols), fractional=np.array(fractional))


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

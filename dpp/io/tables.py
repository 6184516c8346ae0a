"""Whitespace-separated numeric tables with `#` comments (bundle-format §2)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dpp.errors import InputError
from dpp.io.text import content_lines


@dataclass(frozen=True)
class Table:
    """A numeric table read from `path`: one row per non-comment line."""

    path: Path
    values: np.ndarray  # (n_rows, n_columns) float64
    lines: tuple[int, ...]  # 1-based file line of each row

    @property
    def n_rows(self) -> int:
        return int(self.values.shape[0])

    @property
    def n_columns(self) -> int:
        return int(self.values.shape[1])


def parse_number(token: str, path: str | Path, line: int) -> float:
    """Parse one finite float token; anything else is an InputError naming file, line, token."""
    try:
        value = float(token)
    except ValueError:
        raise InputError(
            path, "non-numeric token", line=line, expected="a number", found=repr(token)
        ) from None
    if not math.isfinite(value):
        raise InputError(
            path, "non-finite number", line=line, expected="a finite number", found=repr(token)
        )
    return value


def read_rows(path: str | Path) -> list[tuple[int, list[float]]]:
    """Read every non-comment line as a list of finite floats, keeping its line number."""
    return [
        (number, [parse_number(token, path, number) for token in text.split()])
        for number, text in content_lines(path)
    ]


def read_table(path: str | Path, *, min_columns: int = 1) -> Table:
    """Read a rectangular table; a single row is still a (1, n) table.

    Raises InputError for an empty file, ragged rows or fewer than `min_columns` columns.
    """
    path = Path(path)
    rows = read_rows(path)
    if not rows:
        raise InputError(path, "no data rows", expected="at least one row of numbers")
    first_line, first = rows[0]
    for number, row in rows[1:]:
        if len(row) != len(first):
            raise InputError(
                path,
                "ragged table",
                line=number,
                expected=f"{len(first)} columns (as on line {first_line})",
                found=f"{len(row)}",
            )
    if len(first) < min_columns:
        raise InputError(
            path,
            "too few columns",
            line=first_line,
            expected=f"at least {min_columns}",
            found=f"{len(first)}",
        )
    return Table(path, np.array([row for _, row in rows], dtype=float), tuple(n for n, _ in rows))


def read_flat(path: str | Path) -> tuple[np.ndarray, tuple[int, ...]]:
    """Read all numbers of a file in any whitespace layout: (values (n,), line of each value)."""
    values: list[float] = []
    lines: list[int] = []
    for number, row in read_rows(path):
        values.extend(row)
        lines.extend([number] * len(row))
    return np.array(values, dtype=float), tuple(lines)


def to_int(value: float, path: str | Path, line: int) -> int:
    """Return an integer-valued float as int; a fractional value is an InputError."""
    if value != int(value):
        raise InputError(path, "not an integer", line=line, expected="an integer", found=f"{value}")
    return int(value)

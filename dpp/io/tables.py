"""Whitespace-separated numeric tables with `#` comments (bundle-format §2)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dpp.errors import InputError
from dpp.io.text import commented_lines


@dataclass(frozen=True)
class Table:
    """A numeric table read from `path`: one row per non-comment line."""

    path: Path
    values: np.ndarray  # (n_rows, n_columns) float64
    lines: tuple[int, ...]  # 1-based file line of each row
    comments: tuple[str, ...] = ()  # trailing `# comment` of each row ("" if none)

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


def _iter_commented_rows(path: str | Path) -> Iterator[tuple[int, list[float], str]]:
    """Yield (line, finite floats, trailing comment) of every non-comment line, streaming."""
    for number, text, comment in commented_lines(path):
        yield number, [parse_number(token, path, number) for token in text.split()], comment


def iter_rows(path: str | Path) -> Iterator[tuple[int, list[float]]]:
    """Yield (line, finite floats) of every non-comment line, streaming."""
    for number, row, _ in _iter_commented_rows(path):
        yield number, row


def read_rows(path: str | Path) -> list[tuple[int, list[float]]]:
    """Read every non-comment line as a list of finite floats, keeping its line number."""
    return list(iter_rows(path))


def read_table(
    path: str | Path,
    *,
    min_columns: int = 1,
    columns: tuple[int, str] | None = None,
    rows: tuple[int, str] | None = None,
    check: Callable[[int, list[float]], None] | None = None,
) -> Table:
    """Read a rectangular table; a single row is still a (1, n) table.

    `columns` and `rows` are exact sizes with what they mean (e.g. `(5, "one row per
    k-point")`); `check(line, row)` validates each row. The file is streamed and reading
    stops at the first bad row, so a wrong file fails fast however large it is. The trailing
    `# comment` of every row is kept (`Table.comments`). Raises InputError for an empty file,
    ragged rows, a wrong size or fewer than `min_columns`.
    """
    path = Path(path)
    values: list[list[float]] = []
    lines: list[int] = []
    comments: list[str] = []
    for number, row, comment in _iter_commented_rows(path):
        if columns is not None and len(row) != columns[0]:
            raise InputError(
                path,
                "wrong number of columns",
                line=number,
                expected=f"{columns[0]} ({columns[1]})",
                found=f"{len(row)}",
            )
        if values and len(row) != len(values[0]):
            raise InputError(
                path,
                "ragged table",
                line=number,
                expected=f"{len(values[0])} columns (as on line {lines[0]})",
                found=f"{len(row)}",
            )
        if not values and len(row) < min_columns:
            raise InputError(
                path,
                "too few columns",
                line=number,
                expected=f"at least {min_columns}",
                found=f"{len(row)}",
            )
        if rows is not None and len(values) == rows[0]:
            raise InputError(
                path,
                "too many rows",
                line=number,
                expected=f"{rows[0]} ({rows[1]})",
                found=f"{rows[0] + 1} or more",
            )
        if check is not None:
            check(number, row)
        values.append(row)
        lines.append(number)
        comments.append(comment)
    if not values:
        raise InputError(path, "no data rows", expected="at least one row of numbers", found="none")
    if rows is not None and len(values) != rows[0]:
        raise InputError(
            path,
            "too few rows",
            line=lines[-1],
            expected=f"{rows[0]} ({rows[1]})",
            found=f"{len(values)}",
        )
    return Table(path, np.array(values, dtype=float), tuple(lines), tuple(comments))


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

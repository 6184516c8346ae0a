"""init_qSpace_pot.par: tabulated prior v_s(q) (bundle-format §10)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

from dpp.errors import InputError
from dpp.io.records import QSpaceTable
from dpp.io.tables import read_table
from dpp.io.text import read_text

_PREFIX = "v(q)_"


def _header(path: Path) -> tuple[int, list[str]] | None:
    """The header `# q <S1> <S2> ...` before the first data row: (line, names), or None."""
    header = None
    for number, raw in enumerate(read_text(path).splitlines(), start=1):
        text = raw.strip()
        if not text:
            continue
        if not text.startswith("#"):
            break
        tokens = text[1:].split()
        if tokens and tokens[0].lower() == "q":
            header = (number, [t.removeprefix(_PREFIX) for t in tokens[1:]])
    return header


def read_qspace_table(path: str | Path, species: Sequence[str]) -> QSpaceTable:
    """Read q (1/Bohr) and v_s(q) (Hartree·Bohr³) with columns reordered to `species`.

    Columns are mapped by header names (`v(q)_` prefix stripped); without a header they are
    taken in species order with a warning. Every species must appear, extra columns are an
    error, and q must be >= 0 and strictly increasing.
    """
    return _read(Path(path), species)[1]


def read_qspace_columns(path: str | Path) -> tuple[tuple[str, ...], QSpaceTable]:
    """The species names of the header and the table with its columns in that order (q in
    1/Bohr, v_s(q) in Hartree·Bohr³); the header is required, the checks are those of
    `read_qspace_table`."""
    return _read(Path(path), None)


def _read(path: Path, species: Sequence[str] | None) -> tuple[tuple[str, ...], QSpaceTable]:
    """(column species, table) with the columns in `species` order, or in header order if None."""
    table = read_table(path, min_columns=2)
    header = _header(path)
    if header is None:
        if species is None:
            raise InputError(path, "no header", expected="'# q  v(q)_<S1> ...' before the data")
        warnings.warn(
            f"{path}: no '# q <species> ...' header; columns taken in species order "
            f"{' '.join(species)}",
            stacklevel=3,
        )
        header_line, names = table.lines[0], list(species)
    else:
        header_line, names = header
    if species is None:
        species = names
    if len(names) != table.n_columns - 1:
        raise InputError(
            path,
            "header and data disagree",
            line=header_line,
            expected=f"{len(names)} value columns ({' '.join(names)})",
            found=f"{table.n_columns - 1}",
        )
    duplicates = {name for name in names if names.count(name) > 1}
    missing = [s for s in species if s not in names]
    extra = [name for name in names if name not in species]
    if duplicates or missing or extra:
        raise InputError(
            path,
            "columns do not match the species",
            line=header_line,
            expected=f"one column per species {' '.join(species)}",
            found=f"{' '.join(names)}",
        )
    q = table.values[:, 0]
    for index, line in enumerate(table.lines):
        if q[index] < 0 or (index and q[index] <= q[index - 1]):
            raise InputError(
                path,
                "bad q value",
                line=line,
                expected="q >= 0, strictly increasing",
                found=f"{q[index]:g}",
            )
    columns = [1 + names.index(s) for s in species]
    return tuple(species), QSpaceTable(q=q.copy(), values=table.values[:, columns].copy())

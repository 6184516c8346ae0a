"""Targets of the auxiliary observables: expDefPot_X.par (§13), qpoints_X.par and
expCoupling_X.par (§12)."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dpp.errors import InputError
from dpp.io.kpoints import read_points
from dpp.io.tables import parse_number, read_rows, to_int
from dpp.io.text import read_text

LEGACY_DEFPOT_RATIO = 1.01


@dataclass(frozen=True)
class DefPotTarget:
    """One deformation-potential target: a gap (2 states) or a level (1 state).

    `states` are (k index, band index) pairs in the processed band list, lower state first.
    """

    states: tuple[tuple[int, int], ...]
    ratio: float  # lattice-constant ratio s of the deformed cell
    d_ref: float  # target dE/dlnV in eV
    weight: float  # loss weight >= 0
    line: int  # line in the file


def read_defpot_targets(
    path: str | Path,
    *,
    legacy_indices: tuple[int, int, int] | None = None,
    legacy_weight: float = 1.0,
) -> list[DefPotTarget]:
    """Read expDefPot_X.par: 7-column gap rows `kVB bVB kCB bCB s D w`, 5-column level rows
    `k b s D w`, or the legacy two-line file `D_VBM` / `D_CBM`.

    A legacy file becomes two level rows at k = idxGap, s = 1.01 with weight `legacy_weight`;
    it needs `legacy_indices = (idxGap, idxVB, idxCB)`.
    """
    path = Path(path)
    rows = read_rows(path)
    if not rows:
        raise InputError(path, "no data rows", expected="deformation-potential targets")
    if len(rows) == 2 and all(len(row) == 1 for _, row in rows):
        if legacy_indices is None:
            raise InputError(
                path,
                "legacy two-line file needs band indices",
                line=rows[0][0],
                expected="idxGap, idxVB and idxCB in input_X.par",
                found="unset",
            )
        k_gap, idx_vb, idx_cb = legacy_indices
        return [
            DefPotTarget(((k_gap, band),), LEGACY_DEFPOT_RATIO, row[0], legacy_weight, line)
            for band, (line, row) in zip((idx_vb, idx_cb), rows, strict=True)
        ]
    targets = []
    for line, row in rows:
        if len(row) not in (5, 7):
            raise InputError(
                path,
                "wrong number of columns",
                line=line,
                expected="7 (kVB bVB kCB bCB s D w) or 5 (k b s D w)",
                found=f"{len(row)}",
            )
        indices = [to_int(value, path, line) for value in row[:-3]]
        ratio, d_ref, weight = row[-3:]
        if min(indices) < 0:
            raise InputError(
                path, "negative index", line=line, expected="indices >= 0", found=f"{min(indices)}"
            )
        if ratio <= 0 or ratio == 1:
            raise InputError(
                path, "bad lattice ratio", line=line, expected="s > 0, s != 1", found=f"{ratio:g}"
            )
        if weight < 0:
            raise InputError(
                path, "negative weight", line=line, expected="weight >= 0", found=f"{weight:g}"
            )
        states = tuple(zip(indices[::2], indices[1::2], strict=True))
        targets.append(DefPotTarget(states, ratio, d_ref, weight, line))
    if any(len(t.states) == 1 for t in targets):
        warnings.warn(
            f"{path}: single-level deformation potentials depend on the arbitrary G = 0 "
            "reference of the potential",
            stacklevel=2,
        )
    return targets


def read_qpoints(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read qpoints_X.par: fractional phonon q (n_q, 3) and weights (n_q,); one row is fine."""
    return read_points(path)


@dataclass(frozen=True)
class CouplingTargets:
    """Reference |g| in eV/Bohr keyed by (atom, direction 0|1|2, q index, 'vb'|'cb').

    `Not-fit` entries are absent (no target).
    """

    values: dict[tuple[int, int, int, str], float]
    symbols: dict[int, str]  # atom index -> symbol from the block headers


_ATOM = re.compile(r"^Atom idx\s*=\s*(\d+)\s+atom\s*=\s*(\S+)")
# (offset from the 'Atom idx' line, text it must contain, band, direction)
_LAYOUT = (
    (1, "vb-vb coupling elements. polarization of derivative = x", "vb", 0),
    (3, "polarization of derivative = y", "vb", 1),
    (5, "polarization of derivative = z", "vb", 2),
    (8, "cb-cb coupling elements. polarization of derivative = x", "cb", 0),
    (10, "polarization of derivative = y", "cb", 1),
    (12, "polarization of derivative = z", "cb", 2),
)


def read_coupling_targets(path: str | Path, n_qpoints: int | None = None) -> CouplingTargets:
    """Read expCoupling_X.par blocks (layout of bundle-format §12.2, checked by line offsets).

    Each data line holds one value per q-point (`n_qpoints` if given) or `Not-fit`.
    """
    path = Path(path)
    lines = read_text(path).splitlines()
    values: dict[tuple[int, int, int, str], float] = {}
    symbols: dict[int, str] = {}
    starts = [i for i, text in enumerate(lines) if text.strip().startswith("Atom idx")]
    if not starts:
        raise InputError(
            path, "no coupling blocks", expected="'Atom idx = <n> atom = <S> ...'", found="none"
        )
    for start in starts:
        match = _ATOM.match(lines[start].strip())
        if match is None:
            raise InputError(
                path,
                "bad block header",
                line=start + 1,
                expected="'Atom idx = <n>   atom = <S>   position = ...'",
                found=repr(lines[start]),
            )
        atom = int(match.group(1))
        symbols[atom] = match.group(2)
        for offset, label, band, direction in _LAYOUT:
            index = start + offset
            if index >= len(lines) or label not in lines[index]:
                raise InputError(
                    path,
                    "bad coupling block layout",
                    line=index + 1,
                    expected=repr(label),
                    found="end of file" if index >= len(lines) else repr(lines[index]),
                )
            tokens = lines[index + 1].split() if index + 1 < len(lines) else []
            if n_qpoints is not None and len(tokens) != n_qpoints:
                raise InputError(
                    path,
                    "wrong number of coupling values",
                    line=index + 2,
                    expected=f"one per q-point ({n_qpoints})",
                    found=f"{len(tokens)}",
                )
            for q_index, token in enumerate(tokens):
                if token != "Not-fit":
                    value = parse_number(token, path, index + 2)
                    values[(atom, direction, q_index, band)] = value
    return CouplingTargets(values=values, symbols=symbols)

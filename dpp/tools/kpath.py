"""`dpp-kpath`: write kpoints_X.par along the standard high-symmetry path of a system_X.par.

Conventions: `setyawan-curtarolo` (ASE's `bandpath`, in the given cell) or `hpkot` (seekpath,
mapped back to the given cell). Each high-symmetry row ends with its label as a comment, e.g.
`0.5 0.5 0.5 1   # L` (Γ is written `G`); read them back with `dpp.io.labels.read_point_labels`.
Two labelled rows next to each other mark a jump in the path (e.g. `K,U`).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dpp.errors import InputError
from dpp.io.records import Crystal
from dpp.io.system import read_system
from dpp.memory import check_fits
from dpp.tools.common import (
    description,
    points_text,
    quiet_spglib,
    refuse_overwrite,
    require,
    run_tool,
    spglib_cell,
    write_text,
)

PROG = "dpp-kpath"
KPOINT_BYTES = 1000
"""Memory per k-point of building and writing a path (coordinates, labels and text)."""
CONVENTIONS = ("setyawan-curtarolo", "hpkot")
_MATCH_TOLERANCE = 1e-9


@dataclass(frozen=True)
class KPath:
    """Fractional k-points (on the given cell's b_j), row → label, and the path string."""

    kpoints: np.ndarray
    labels: dict[int, str]
    path: str


def _ascii_label(name: str) -> str:
    return "G" if name.upper() in {"G", "GAMMA", "Γ"} else name


def setyawan_curtarolo_path(crystal: Crystal, npoints: int, path: str | None = None) -> KPath:
    """ASE's band path of the cell (Setyawan–Curtarolo points), `npoints` k-points in total."""
    from ase.cell import Cell
    from ase.dft.kpoints import parse_path_string

    try:
        bandpath = Cell(crystal.lattice).bandpath(path=path, npoints=npoints)
    except (ValueError, KeyError) as error:
        raise InputError(
            None, "cannot build the band path", key="--path", found=str(error)
        ) from None
    kpoints = np.asarray(bandpath.kpts, dtype=np.float64)
    names = {name for segment in parse_path_string(bandpath.path) for name in segment}
    labels: dict[int, str] = {}
    for name in sorted(names):
        point = np.asarray(bandpath.special_points[name], dtype=np.float64)
        for row in np.flatnonzero(np.all(np.abs(kpoints - point) < _MATCH_TOLERANCE, axis=1)):
            labels[int(row)] = _ascii_label(name)
    return KPath(kpoints, dict(sorted(labels.items())), bandpath.path)


def hpkot_path(crystal: Crystal, npoints: int, symprec: float = 1e-5) -> KPath:
    """seekpath's HPKOT path, expressed on the reciprocal basis of the given cell."""
    import seekpath

    structure = spglib_cell(crystal)
    try:
        with quiet_spglib():
            first = seekpath.get_explicit_k_path_orig_cell(structure, symprec=symprec)
            length = float(first["explicit_kpoints_linearcoord"][-1])
            result = seekpath.get_explicit_k_path_orig_cell(
                structure, reference_distance=length / max(npoints - 1, 1), symprec=symprec
            )
    except seekpath.SymmetryDetectionError as error:
        raise InputError(None, "seekpath found no symmetry", found=str(error)) from None
    labels = {
        row: _ascii_label(name)
        for row, name in enumerate(result["explicit_kpoints_labels"])
        if name
    }
    path = " ".join(f"{_ascii_label(a)}-{_ascii_label(b)}" for a, b in result["path"])
    return KPath(np.asarray(result["explicit_kpoints_rel"], dtype=np.float64), labels, path)


def _write_path(args: argparse.Namespace) -> None:
    require(args.symprec > 0, "--symprec", "bad tolerance", "a distance > 0 (Bohr)", args.symprec)
    require(args.weight >= 0, "--weight", "negative k-point weight", "a weight >= 0", args.weight)
    check_fits(
        args.npoints * KPOINT_BYTES,
        f"a path of {args.npoints} k-points",
        file=None,
        key="--npoints",
        found=str(args.npoints),
        hint="ask for fewer k-points",
    )
    if args.npoints < 2:
        raise InputError(
            None, "too few k-points", key="--npoints", expected=">= 2", found=str(args.npoints)
        )
    crystal = read_system(args.system)
    if args.convention == "hpkot":
        if args.path is not None:
            raise InputError(None, "--path needs the setyawan-curtarolo convention", key="--path")
        kpath = hpkot_path(crystal, args.npoints, args.symprec)
    else:
        kpath = setyawan_curtarolo_path(crystal, args.npoints, args.path)
    output = args.output or args.system.with_name(args.system.name.replace("system", "kpoints"))
    refuse_overwrite([output], args.force)
    weights = np.full(len(kpath.kpoints), args.weight)
    comment = f"dpp-kpath ({args.convention}) path {kpath.path}: fractional k on b_j, weight"
    write_text(output, points_text(kpath.kpoints, weights, kpath.labels, comment=comment))
    print(f"wrote {output}: {len(kpath.kpoints)} k-points along {kpath.path}")
    reference = output.with_name(output.name.replace("kpoints", "expBandStruct"))
    if reference != output and reference.is_file():
        print(f"note: {reference.name} no longer matches these k-points; evaluate without it")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=description(__doc__))
    parser.add_argument("system", type=Path, help="system_X.par")
    parser.add_argument(
        "-o", "--output", type=Path, help="k-point file (default: kpoints_X.par next to it)"
    )
    parser.add_argument(
        "--npoints",
        type=int,
        default=100,
        help="number of k-points (default 100; about, for hpkot)",
    )
    parser.add_argument(
        "--convention", choices=CONVENTIONS, default=CONVENTIONS[0], help="path convention"
    )
    parser.add_argument("--path", help="ASE path string instead of the standard one, e.g. LGXUKG")
    parser.add_argument("--weight", type=float, default=1.0, help="loss weight of every k-point")
    parser.add_argument("--symprec", type=float, default=1e-5, help="seekpath tolerance (Bohr)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `dpp-kpath`."""
    return run_tool(build_parser(), argv, _write_path)


if __name__ == "__main__":
    sys.exit(main())

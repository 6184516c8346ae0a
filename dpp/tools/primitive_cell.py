"""`dpp-primitive-cell`: reduce system_X.par to its primitive cell with spglib.

The primitive cell keeps the orientation and the scale of the input (spglib without
idealisation), so k-points keep their Cartesian coordinates: a kpoints_X.par given with
`--kpoints` is rewritten on the new reciprocal basis (labels in trailing comments are kept).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from dpp.errors import InputError
from dpp.io.kpoints import read_labelled_points
from dpp.io.records import Crystal
from dpp.io.system import read_system
from dpp.physics.lattice import reciprocal_vectors
from dpp.tools.common import (
    description,
    points_text,
    quiet_spglib,
    refuse_overwrite,
    require,
    right_handed,
    run_tool,
    spglib_cell,
    system_text,
    write_text,
)

PROG = "dpp-primitive-cell"
_INTEGER_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Reduction:
    """A primitive cell and the symmetry found for it (international symbol and number)."""

    crystal: Crystal
    space_group: str
    number: int


def primitive_cell(crystal: Crystal, symprec: float = 1e-5) -> Reduction:
    """The primitive cell of `crystal` in the same orientation and scale (spglib, symprec in
    Bohr), atoms wrapped into [0, 1). A left-handed result is made right-handed by negating
    its vectors; an InputError if spglib finds no symmetry or would rotate the cell."""
    import spglib

    cell = spglib_cell(crystal)
    with quiet_spglib():
        dataset = spglib.get_symmetry_dataset(cell, symprec=symprec)
        reduced = spglib.standardize_cell(
            cell, to_primitive=True, no_idealize=True, symprec=symprec
        )
    if dataset is None or reduced is None:
        raise InputError(
            None,
            "spglib found no symmetry",
            key="--symprec",
            expected="a crystal within the tolerance",
            found=f"symprec = {symprec:g} Bohr",
        )
    new_vectors, fractional, new_numbers = (np.asarray(part) for part in reduced)
    species = sorted(set(crystal.symbols))
    primitive = right_handed(
        Crystal(
            scale=crystal.scale,
            cell=new_vectors / crystal.scale,
            symbols=tuple(species[number - 1] for number in new_numbers),
            fractional=fractional,
        )
    )
    multiples = cell[0] @ np.linalg.inv(primitive.lattice)
    if np.max(np.abs(multiples - np.round(multiples))) > _INTEGER_TOLERANCE:
        raise InputError(
            None,
            "spglib changed the orientation of the cell",
            expected="input vectors that are integer combinations of the primitive ones",
            found=np.array2string(multiples, precision=4),
        )
    primitive = replace(primitive, fractional=np.mod(primitive.fractional, 1.0))
    return Reduction(primitive, str(dataset.international), int(dataset.number))


def map_kpoints(kpoints: np.ndarray, old: Crystal, new: Crystal) -> np.ndarray:
    """Fractional k on the reciprocal basis of `old` → on that of `new` (same Cartesian k)."""
    cartesian = np.asarray(kpoints, dtype=np.float64) @ reciprocal_vectors(old.lattice)
    return cartesian @ new.lattice.T / (2.0 * np.pi)


def _reduce(args: argparse.Namespace) -> None:
    require(args.symprec > 0, "--symprec", "bad tolerance", "a distance > 0 (Bohr)", args.symprec)
    crystal = read_system(args.system)
    reduction = primitive_cell(crystal, args.symprec)
    folder = args.output or args.system.parent
    outputs = {folder / args.system.name: system_text(reduction.crystal)}
    if args.kpoints is not None:
        kpoints, weights, labels = read_labelled_points(args.kpoints)
        mapped = map_kpoints(kpoints, crystal, reduction.crystal)
        outputs[folder / args.kpoints.name] = points_text(mapped, weights, labels)
    refuse_overwrite(outputs, args.force)
    for path, text in outputs.items():
        write_text(path, text)
    ratio = len(crystal.symbols) // len(reduction.crystal.symbols)
    print(
        f"space group {reduction.space_group} (No. {reduction.number}): "
        f"{len(crystal.symbols)} atoms -> {len(reduction.crystal.symbols)} atoms"
    )
    print(f"wrote {', '.join(str(path) for path in outputs)}")
    if ratio > 1:
        print(
            f"note: the input cell was {ratio}x the primitive one; reference bands of the larger "
            "cell contain folded bands, so expBandStruct/nBands must describe the primitive cell"
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=description(__doc__))
    parser.add_argument("system", type=Path, help="system_X.par to reduce")
    parser.add_argument("--kpoints", type=Path, help="kpoints_X.par to map to the new basis")
    parser.add_argument(
        "-o", "--output", type=Path, help="output folder (default: that of the system file)"
    )
    parser.add_argument(
        "--symprec", type=float, default=1e-5, help="spglib distance tolerance in Bohr"
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `dpp-primitive-cell`."""
    return run_tool(build_parser(), argv, _reduce)


if __name__ == "__main__":
    sys.exit(main())

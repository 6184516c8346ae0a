"""Structures for `dpp-states` (ASE atoms in Å; every argument here in Bohr): a bulk
supercell of a bundle's cell, a spherical nanocrystal cut from the bulk crystal with
passivating ligand pseudo-atoms on its dangling bonds, or any ASE-readable file."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import ase
import ase.io
import numpy as np
from ase.units import Bohr
from scipy.spatial import cKDTree

from dpp.errors import InputError
from dpp.io.records import SystemData
from dpp.physics.lattice import Lattice

BOND_TOLERANCE = 1.1
"""Atoms closer than this times the nearest-neighbour distance are bonded."""

LIGAND_SYMBOL = "H"
"""Chemical symbol of ligand pseudo-atoms in written structures (their kind is `lig_<host>`)."""


@dataclass(frozen=True)
class Structure:
    """A box: `atoms` (ASE, Å) and the potential kind of every atom (a species of the fit,
    or `lig_<host>` for a ligand passivating a dangling bond of species `host`)."""

    atoms: ase.Atoms
    kinds: tuple[str, ...]

    @property
    def cell(self) -> np.ndarray:
        """Box vectors as rows, Bohr."""
        return np.asarray(self.atoms.cell[:], dtype=np.float64) / Bohr

    @property
    def positions(self) -> np.ndarray:
        """Atom positions (n, 3), Bohr."""
        return np.asarray(self.atoms.positions, dtype=np.float64) / Bohr

    @property
    def n_host_atoms(self) -> int:
        return sum(not k.startswith("lig_") for k in self.kinds)


def ligand_kind(host: str) -> str:
    """The kind of the ligand pseudo-atoms on dangling bonds of species `host`."""
    return f"lig_{host}"


def bulk_atoms(system: SystemData) -> ase.Atoms:
    """The bundle system's primitive cell as periodic ASE atoms."""
    lattice = Lattice.from_crystal(system.crystal)
    positions = lattice.cartesian_positions(system.crystal.fractional)
    return ase.Atoms(
        symbols=list(system.crystal.symbols),
        positions=positions * Bohr,
        cell=lattice.vectors * Bohr,
        pbc=True,
    )


def supercell(bulk: ase.Atoms, repeats: tuple[int, int, int]) -> Structure:
    """n₁×n₂×n₃ copies of the bulk cell (periodic)."""
    if len(repeats) != 3 or any(int(n) < 1 for n in repeats):
        raise InputError(
            None,
            "invalid supercell",
            key="supercell",
            expected="three integers >= 1",
            found=list(repeats),
        )
    atoms = bulk.repeat(tuple(int(n) for n in repeats))
    return Structure(atoms, tuple(atoms.get_chemical_symbols()))


def _crystal_ball(bulk: ase.Atoms, centre: np.ndarray, radius: float) -> tuple[np.ndarray, list]:
    """Positions (Bohr) and symbols of the bulk crystal's atoms within `radius` of `centre`."""
    cell = np.asarray(bulk.cell[:]) / Bohr
    spacing = abs(np.linalg.det(cell)) / np.linalg.norm(
        np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1
    )
    reach = np.ceil(radius / spacing).astype(int) + 1
    axes = [np.arange(-n, n + 1) for n in reach]
    shifts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3) @ cell
    basis = np.asarray(bulk.positions) / Bohr
    positions = (shifts[:, None, :] + basis[None]).reshape(-1, 3)
    symbols = np.tile(bulk.get_chemical_symbols(), len(shifts))
    inside = np.linalg.norm(positions - centre, axis=1) <= radius
    return positions[inside], list(symbols[inside])


def nanocrystal(
    bulk: ase.Atoms,
    radius: float,
    margin: float,
    *,
    ligand_fraction: dict[str, float] | None = None,
    centre: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> Structure:
    """A sphere of radius `radius` (Bohr) of the bulk crystal about `centre` (fractional
    coordinates of the bulk cell), centred in a cubic vacuum box with `margin` (Bohr)
    between the outermost atom and each face.

    Atoms with fewer than two bonds inside are removed (repeatedly). With
    `ligand_fraction` {host species: f}, every remaining dangling bond of a host atom gets a
    ligand pseudo-atom at host + f·(missing neighbour − host)."""
    cell = np.asarray(bulk.cell[:]) / Bohr
    origin = np.asarray(centre, dtype=np.float64) @ cell
    reach = radius + 3.0 * _bond_length(bulk)
    positions, symbols = _crystal_ball(bulk, origin, reach)
    bond = BOND_TOLERANCE * _bond_length(bulk)
    tree = cKDTree(positions)
    neighbours = tree.query_ball_point(positions, bond)
    inside = np.linalg.norm(positions - origin, axis=1) <= radius
    while True:
        counts = np.array([sum(inside[j] for j in nb if j != i) for i, nb in enumerate(neighbours)])
        lonely = inside & (counts < 2)
        if not lonely.any():
            break
        inside &= ~lonely
    if not inside.any():
        raise InputError(
            None,
            "empty nanocrystal",
            key="radius",
            expected="a radius holding atoms",
            found=f"{radius:.3f} Bohr",
        )
    kept = np.flatnonzero(inside)
    out_positions = [positions[i] for i in kept]
    out_kinds = [symbols[i] for i in kept]
    for i in kept if ligand_fraction else ():
        fraction = ligand_fraction.get(symbols[i])
        if fraction is None:
            continue
        for j in neighbours[i]:
            if j != i and not inside[j]:
                out_positions.append(positions[i] + fraction * (positions[j] - positions[i]))
                out_kinds.append(ligand_kind(symbols[i]))
    return _in_vacuum(np.array(out_positions), tuple(out_kinds), margin)


def _bond_length(bulk: ase.Atoms) -> float:
    """Nearest-neighbour distance of the bulk crystal, Bohr."""
    cell = np.asarray(bulk.cell[:]) / Bohr
    shifts = np.stack(np.meshgrid(*[np.arange(-1, 2)] * 3, indexing="ij"), -1).reshape(-1, 3)
    basis = np.asarray(bulk.positions) / Bohr
    images = (shifts @ cell)[:, None, :] + basis[None]
    distances = np.linalg.norm(images[:, None, :, :] - basis[None, :, None, :], axis=-1)
    return float(distances[distances > 1e-8].min())


def _in_vacuum(positions: np.ndarray, kinds: tuple[str, ...], margin: float) -> Structure:
    """The atoms centred in a cubic box of side (largest extent + 2·margin), Bohr."""
    low, high = positions.min(axis=0), positions.max(axis=0)
    side = float((high - low).max()) + 2.0 * margin
    shifted = positions - 0.5 * (low + high) + 0.5 * side
    symbols = [LIGAND_SYMBOL if k.startswith("lig_") else k for k in kinds]
    atoms = ase.Atoms(
        symbols=symbols, positions=shifted * Bohr, cell=np.eye(3) * side * Bohr, pbc=True
    )
    return Structure(atoms, kinds)


def read_structure(path: str | Path, margin: float) -> Structure:
    """Any ASE-readable file; a file without a cell is centred in a vacuum box with `margin`
    (Bohr). The kinds are the chemical symbols."""
    path = Path(path).expanduser()
    try:
        atoms = ase.io.read(path)
    except FileNotFoundError:
        raise InputError(
            path, "structure file not found", expected="an ASE-readable file", found="no such file"
        ) from None
    except Exception as error:  # ASE raises many types for unreadable files
        raise InputError(
            path,
            "cannot read the structure",
            expected="an ASE-readable file",
            found=f"{type(error).__name__}: {error}",
        ) from None
    kinds = tuple(atoms.get_chemical_symbols())
    if atoms.cell.rank < 3:
        return _in_vacuum(np.asarray(atoms.positions) / Bohr, kinds, margin)
    return Structure(atoms, kinds)


def radius_for(diameter_nm: float) -> float:
    """Radius in Bohr of a diameter in nm."""
    return 0.5 * diameter_nm * 10.0 / Bohr


def sphere_diameter(n_atoms: int, atom_volume: float) -> float:
    """Diameter (Bohr) of the sphere holding n atoms of volume `atom_volume` (Bohr³) each."""
    return 2.0 * (3.0 * n_atoms * atom_volume / (4.0 * math.pi)) ** (1.0 / 3.0)

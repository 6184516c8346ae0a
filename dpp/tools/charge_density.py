"""`dpp-charge-density`: real-space densities |ψ_nk(r)|² from dpp's plane-wave eigenvectors.

dpp's structure factor e^{+iΔG·τ} (physics.md §5.2) makes the eigenvector c_G that of the
crystal inverted through the origin, so the state of the crystal as written (atoms at +τ) is
ψ(r) = Ω^{-1/2} Σ_G c_G e^{−i(k+G)·r}, at −k; its density is that at k by time reversal (with
spin–orbit: summed over a Kramers pair). Σ|c_G|² = 1 (spinors: both components summed), so a
band holds 2 electrons without spin–orbit and 1 with it. Densities are in electrons/Bohr³
on an FFT grid of the cell, written as Gaussian cube files (ASE's cube writer: atoms and voxels
in Bohr, values as given) together with a figure of a lattice plane and of a line along the
bond from the first atom to its nearest neighbour.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.fft
import torch
from matplotlib.figure import Figure

from dpp.errors import InputError
from dpp.io.records import Crystal
from dpp.memory import COMPLEX_BYTES, check_fits
from dpp.physics import PseudopotentialHamiltonian
from dpp.tools.common import (
    add_model_arguments,
    add_physics_arguments,
    ase_atoms,
    description,
    hamiltonian_from_arguments,
    refuse_overwrite,
    run_tool,
)

PROG = "dpp-charge-density"
GRID_COPIES = 4
"""Complex FFT grids held at once (the state's coefficients, its FFT, |u|² and the sum)."""


@dataclass(frozen=True)
class State:
    """One occupied state: occupation (electrons), plane-wave coefficients (N, n_spinor)."""

    occupation: float
    coefficients: np.ndarray


def states(hamiltonian: PseudopotentialHamiltonian, k_index: int, bands: list[int]) -> list[State]:
    """The eigenstates `bands` (0-based indices of the ascending eigenvalues of H(k); spinor
    indices with spin–orbit) at k-point row `k_index` of the Hamiltonian's system 0."""
    n_kpoints, dimension = hamiltonian.geometries[0].n_kpoints, hamiltonian.dimension(0)
    if not 0 <= k_index < n_kpoints:
        raise InputError(
            None,
            "k-point index out of range",
            key="--kpoints",
            expected=f"0..{n_kpoints - 1}",
            found=str(k_index),
        )
    if min(bands) < 0 or max(bands) >= dimension:
        raise InputError(
            None,
            "band index out of range",
            key="--bands",
            expected=f"0..{dimension - 1} (the basis at this cutoff)",
            found=str(max(bands)),
        )
    with torch.no_grad():
        _, vectors = hamiltonian.eigenpairs(0, torch.tensor([k_index]), max(bands) + 1)
    vectors = vectors[0].numpy()
    occupation = 1.0 if hamiltonian.options.spin_orbit else 2.0
    n_basis = hamiltonian.geometries[0].n_basis
    return [State(occupation, vectors[:, band].reshape(-1, n_basis).T.copy()) for band in bands]


def grid_shape(labels: np.ndarray, requested: list[int] | None = None) -> tuple[int, ...]:
    """FFT grid (n1, n2, n3): at least 2·max|m_j| + 1 per direction (no aliasing of the density),
    an FFT-friendly even size by default; a requested grid below the minimum is an InputError."""
    minimum = 2 * np.max(np.abs(labels), axis=0) + 1
    if requested is None:
        return tuple(int(scipy.fft.next_fast_len(int(n) + int(n) % 2)) for n in minimum)
    if len(requested) != 3 or any(n < m for n, m in zip(requested, minimum, strict=True)):
        raise InputError(
            None,
            "FFT grid too coarse",
            key="--grid",
            expected=f"three sizes >= {' '.join(str(int(m)) for m in minimum)}",
            found=" ".join(str(n) for n in requested),
        )
    return tuple(requested)


def density_on_grid(
    state_list: list[State], labels: np.ndarray, shape: tuple[int, ...], volume: float
) -> np.ndarray:
    """Σ_states occ·|u(r)|²/Ω, u(r) = Σ_G c_G e^{−iG·r}, on the grid r = (j1/n1, j2/n2, j3/n3)
    (electrons/Bohr³)."""
    density = np.zeros(shape)
    index = tuple((labels % np.array(shape)).T)
    for state in state_list:
        for component in state.coefficients.T:
            grid = np.zeros(shape, dtype=np.complex128)
            grid[index] = component
            density += state.occupation * np.abs(scipy.fft.fftn(grid)) ** 2
    return density / volume


def density_at(
    state_list: list[State], labels: np.ndarray, fractional: np.ndarray, volume: float
) -> np.ndarray:
    """Σ_states occ·|u(r)|²/Ω at arbitrary points (fractional coordinates, (P, 3))."""
    phases = np.exp(-2j * np.pi * (np.asarray(fractional, dtype=np.float64) @ labels.T))
    density = np.zeros(phases.shape[0])
    for state in state_list:
        density += state.occupation * np.sum(np.abs(phases @ state.coefficients) ** 2, axis=1)
    return density / volume


def write_cube(path: Path, crystal: Crystal, density: np.ndarray, comment: str) -> None:
    """Gaussian cube of `density` (electrons/Bohr³) with the crystal's atoms (ASE's writer)."""
    import ase.io

    ase.io.write(path, ase_atoms(crystal), format="cube", data=density, comment=comment)


def nearest_neighbour_line(crystal: Crystal) -> tuple[np.ndarray, np.ndarray]:
    """Fractional end points of the bond line: from half a bond before the first atom to half a
    bond past its nearest neighbour (periodic images included)."""
    from ase.units import Bohr

    atoms = ase_atoms(crystal)
    vectors = crystal.lattice
    start = np.asarray(crystal.fractional[0], dtype=np.float64)
    if len(atoms) == 1:
        bond = vectors[0]
    else:
        others = list(range(1, len(atoms)))
        displacements = atoms.get_distances(0, others, mic=True, vector=True)
        bond = displacements[np.argmin(np.linalg.norm(displacements, axis=1))] / Bohr
    step = bond @ np.linalg.inv(vectors)
    return start - 0.5 * step, start + 1.5 * step


def density_figure(
    crystal: Crystal,
    state_list: list[State],
    labels: np.ndarray,
    volume: float,
    title: str,
    axis: int = 2,
    resolution: int = 64,
) -> Figure:
    """Two panels: the density in the lattice plane through the first atom spanned by the two
    lattice vectors other than `axis`, and along the nearest-neighbour bond (Bohr); `volume`
    is that of the cell (Bohr³).

    Both are evaluated exactly from the plane waves, not interpolated from the FFT grid.
    """
    vectors = crystal.lattice
    figure = Figure(figsize=(10.0, 4.2), layout="constrained")
    plane_ax, line_ax = figure.subplots(1, 2)
    in_plane = [j for j in range(3) if j != axis]
    offset = float(crystal.fractional[0][axis])
    u, v = np.meshgrid(np.linspace(0.0, 1.0, resolution + 1), np.linspace(0.0, 1.0, resolution + 1))
    fractional = np.zeros(u.shape + (3,))
    fractional[..., in_plane[0]], fractional[..., in_plane[1]] = u, v
    fractional[..., axis] = offset
    values = density_at(state_list, labels, fractional.reshape(-1, 3), volume).reshape(u.shape)
    first, second = vectors[in_plane[0]], vectors[in_plane[1]]
    e1 = first / np.linalg.norm(first)
    e2 = second - (second @ e1) * e1
    e2 /= np.linalg.norm(e2)
    points = u[..., None] * first + v[..., None] * second
    mesh = plane_ax.pcolormesh(points @ e1, points @ e2, values, shading="gouraud", cmap="viridis")
    figure.colorbar(mesh, ax=plane_ax, label="ρ (electrons/Bohr³)")
    plane_ax.set_aspect("equal")
    plane_ax.set_xlabel("x in plane (Bohr)")
    plane_ax.set_ylabel("y in plane (Bohr)")
    names = "abc"
    plane_ax.set_title(
        f"plane ({names[in_plane[0]]}, {names[in_plane[1]]}) at {names[axis]} = {offset:.4f}"
    )
    start, end = nearest_neighbour_line(crystal)
    t = np.linspace(0.0, 1.0, 401)
    profile = density_at(state_list, labels, start + t[:, None] * (end - start), volume)
    length = float(np.linalg.norm((end - start) @ vectors))
    line_ax.plot(t * length, profile, color="C0")
    for position in (0.25 * length, 0.75 * length):
        line_ax.axvline(position, color="0.6", lw=0.8, ls="--")
    line_ax.set_xlabel("distance along the bond line (Bohr); dashed: atoms")
    line_ax.set_ylabel("ρ (electrons/Bohr³)")
    line_ax.set_title("nearest-neighbour bond")
    figure.suptitle(title, parse_math=False)
    return figure


def _run(args: argparse.Namespace) -> None:
    if not args.bands and args.occupied is None:
        raise InputError(
            None, "nothing to compute", key="--bands", expected="--bands or --occupied"
        )
    bundle, hamiltonian = hamiltonian_from_arguments(args)
    system = bundle.systems[0]
    crystal = system.crystal
    geometry = hamiltonian.geometries[0]
    labels = np.asarray(geometry.labels)
    shape = grid_shape(labels, args.grid)
    check_fits(
        GRID_COPIES * COMPLEX_BYTES * float(np.prod(shape, dtype=np.float64)),
        f"an FFT grid of {' x '.join(map(str, shape))} points",
        file=None,
        key="--grid",
        found=" ".join(map(str, shape)),
        hint="ask for a coarser --grid",
    )
    volume = abs(geometry.lattice.volume)
    k_indices = args.kpoints or [0]
    if args.occupied is not None and args.occupied < 1:
        raise InputError(None, "no occupied states", key="--occupied", expected=">= 1")
    name = system.name
    wanted = sorted(set(args.bands or []) | set(range(args.occupied or 0)))
    jobs: list[tuple[str, list[State], str]] = []
    valence: list[State] = []
    for k in k_indices:
        found = dict(zip(wanted, states(hamiltonian, k, wanted), strict=True))
        for band in args.bands or []:
            jobs.append(
                (
                    f"density_sys{args.system}_k{k}_b{band}",
                    [found[band]],
                    f"{name}: |psi|^2 of band {band} at k-point {k} (electrons/Bohr^3)",
                )
            )
        valence += [
            State(found[band].occupation / len(k_indices), found[band].coefficients)
            for band in range(args.occupied or 0)
        ]
    if valence:
        jobs.append(
            (
                f"density_sys{args.system}_valence",
                valence,
                f"{name}: density of {args.occupied} occupied bands averaged over k-points "
                f"{' '.join(map(str, k_indices))} (electrons/Bohr^3)",
            )
        )
    folder: Path = args.output
    outputs = [folder / f"{stem}{suffix}" for stem, _, _ in jobs for suffix in (".cube", ".png")]
    refuse_overwrite(outputs, args.force)
    folder.mkdir(parents=True, exist_ok=True)
    for stem, state_list, comment in jobs:
        grid = density_on_grid(state_list, labels, shape, volume)
        electrons = float(grid.sum()) * volume / grid.size
        write_cube(folder / f"{stem}.cube", crystal, grid, comment)
        figure = density_figure(crystal, state_list, labels, volume, comment, args.plane_axis)
        figure.savefig(folder / f"{stem}.png", dpi=150)
        print(f"wrote {stem}.cube/.png: {electrons:.6f} electrons in the cell, grid {shape}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=description(__doc__))
    add_physics_arguments(parser)
    parser.add_argument(
        "--kpoints", type=int, nargs="+", help="rows of kpoints_X.par (0-based; default 0)"
    )
    parser.add_argument(
        "--bands",
        type=int,
        nargs="+",
        help="eigenstate indices (0-based, ascending energy; spinor states with --spin-orbit)",
    )
    parser.add_argument(
        "--occupied",
        type=int,
        help="also the valence density of this many lowest states, averaged over the k-points",
    )
    parser.add_argument("--grid", type=int, nargs=3, help="FFT grid (default: smallest exact)")
    parser.add_argument(
        "--plane-axis",
        type=int,
        choices=(0, 1, 2),
        default=2,
        help="lattice vector a/b/c (0/1/2) not in the plotted plane, which is spanned by the "
        "other two and passes through the first atom (default 2)",
    )
    parser.add_argument("-o", "--output", type=Path, default=Path("."), help="output folder")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    add_model_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `dpp-charge-density`."""
    return run_tool(build_parser(), argv, _run)


if __name__ == "__main__":
    sys.exit(main())

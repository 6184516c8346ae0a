"""The memory that grows with a system's k-points, estimated before the Hamiltonian is built
(bytes): what every k-point keeps between evaluations, the kinetic table while it is built and
one batch of dense eigensolves, so that a k-point grid too large for the machine is refused
with the estimate instead of being killed for memory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from dpp.memory import COMPLEX_BYTES, check_fits, format_bytes
from dpp.physics.bands import needed_eigenvalues
from dpp.physics.eigensolver import uses_iterative
from dpp.physics.geometry import default_k_chunk, memory_per_kpoint
from dpp.physics.options import PhysicsOptions
from dpp.physics.projectors import radial_nodes_for
from dpp.physics.radial import projector_rules
from dpp.physics.warmstart import block_size

REAL_BYTES = 8
"""Bytes of one float64 number."""
BAND_ROWS = 8
"""float64 rows of nBands a run keeps per k-point (reference, weights, the bands of the
present, best and final states, loss terms): a lower bound."""
KINETIC_BUILD = 7
"""float64 numbers per plane wave and k-point while the kinetic diagonal is built (k + G,
its square, |k + G|²/2)."""


@dataclass(frozen=True)
class KpointFootprint:
    """One system's k-point memory (bytes): `kept` per k-point, `build` per k-point while the
    Hamiltonian is built, and one `batch` of `chunk` dense eigensolves."""

    n_kpoints: int
    kept: float
    build: float
    chunk: int
    batch: float

    @property
    def total(self) -> float:
        return self.n_kpoints * max(self.kept, self.build) + self.batch


def footprint(
    n_kpoints: int,
    n_basis: int,
    n_bands: int,
    options: PhysicsOptions,
    device: torch.device | str = "cpu",
) -> KpointFootprint:
    """The k-point memory of a system of `n_kpoints` k-points, `n_basis` plane waves and
    `n_bands` bands: per k-point its band rows, its kinetic diagonal, the block of the
    warm-started eigensolver (dim × (n_eig + buffer) complex) when Davidson solves it, and
    the cached projector factors (N × radial nodes × channels, a lower bound) when spin–orbit
    or nonlocal terms are cached."""
    spinor = options.spin_orbit
    dim = n_basis * (2 if spinor else 1)
    kept = float(REAL_BYTES * (n_bands * BAND_ROWS + dim))
    if uses_iterative(options.eigensolver, torch.device(device), dim, options.davidson_min_dim):
        block = block_size(needed_eigenvalues(n_bands, spinor, None), dim, options)
        if block is not None:
            kept += (COMPLEX_BYTES * dim + REAL_BYTES) * block
    if options.nonlocal_active and options.cache_projectors:
        nodes = radial_nodes_for(0.0)  # the fewest the factors ever have
        kept += REAL_BYTES * n_basis * nodes * len(projector_rules(nodes))
    chunk = min(options.k_chunk or default_k_chunk(n_basis, spinor), n_kpoints)
    return KpointFootprint(
        n_kpoints=n_kpoints,
        kept=kept,
        build=float(REAL_BYTES * KINETIC_BUILD * n_basis),
        chunk=chunk,
        batch=float(chunk * memory_per_kpoint(n_basis, spinor)),
    )


def check_kpoints(
    n_kpoints: int,
    n_basis: int,
    n_bands: int,
    options: PhysicsOptions,
    *,
    system: int,
    file: Path | None,
) -> None:
    """Refuse a system whose k-points (`footprint`) would not fit in the memory available,
    naming its k-point file (`file`)."""
    size = footprint(n_kpoints, n_basis, n_bands, options)
    name = "kpoints_X.par" if file is None else file.name
    check_fits(
        size.total,
        f"system {system}'s {n_kpoints} k-points × {n_basis} plane waves × {n_bands} bands "
        f"({format_bytes(max(size.kept, size.build))} per k-point, batches of {size.chunk})",
        file=file,
        key=None,
        found=f"{n_kpoints} k-points",
        hint=f"use fewer k-points in {name}, lower hamiltonian.k_chunk, set "
        "hamiltonian.eigensolver=lapack, which keeps no eigenvectors per k-point, or "
        "hamiltonian.cache_projectors=false with spin-orbit, or run on a machine with more "
        "memory",
    )

"""The memory that grows with a system's k-points, estimated from a built Hamiltonian before any
band is solved (bytes): what every k-point keeps between evaluations and one batch of dense
eigensolves, so that a k-point grid too large for the machine is refused with the estimate."""

from __future__ import annotations

from dpp.memory import COMPLEX_BYTES, check_fits, format_bytes
from dpp.physics.bands import needed_eigenvalues
from dpp.physics.eigensolver import uses_iterative
from dpp.physics.geometry import memory_per_kpoint
from dpp.physics.hamiltonian import PseudopotentialHamiltonian
from dpp.physics.projectors import radial_nodes_for
from dpp.physics.radial import projector_rules
from dpp.physics.warmstart import block_size

REAL_BYTES = 8
"""Bytes of one float64 number."""
BAND_ROWS = 8
"""float64 rows of nBands a run keeps per k-point (reference, weights, the bands of the
present, best and final states, loss terms): a lower bound."""


def kept_per_kpoint(hamiltonian: PseudopotentialHamiltonian, system: int) -> float:
    """Bytes one k-point of `system` keeps between evaluations: its band rows, the block of
    the warm-started eigensolver (dim × (n_eig + buffer) complex) when Davidson solves it, and
    the cached projector factors (N × radial nodes × channels) when spin–orbit or nonlocal
    terms are cached."""
    options = hamiltonian.options
    geometry = hamiltonian.geometries[system]
    n_bands = hamiltonian.systems[system].n_bands
    dim = hamiltonian.dimension(system)
    kept = float(REAL_BYTES * n_bands * BAND_ROWS)
    device = geometry.kpoints.device
    if uses_iterative(options.eigensolver, device, dim, options.davidson_min_dim):
        n_eig = needed_eigenvalues(n_bands, options.spin_orbit, None)
        block = block_size(n_eig, dim, options)
        if block is not None:
            kept += (COMPLEX_BYTES * dim + REAL_BYTES) * block
    if options.nonlocal_active and options.cache_projectors:
        k_max = float(geometry.basis.norm(dim=1).max()) if geometry.n_basis else 0.0
        channels = len(projector_rules(1))
        kept += REAL_BYTES * geometry.n_basis * radial_nodes_for(k_max) * channels
    return kept


def kpoint_bytes(hamiltonian: PseudopotentialHamiltonian, system: int) -> float:
    """Estimated bytes of `system`'s k-points: nK × `kept_per_kpoint` plus one batch of
    min(k_chunk, nK) dense eigensolves (`memory_per_kpoint`)."""
    geometry = hamiltonian.geometries[system]
    batch = min(hamiltonian.k_chunk(system), geometry.n_kpoints)
    solve = memory_per_kpoint(geometry.n_basis, hamiltonian.options.spin_orbit)
    return geometry.n_kpoints * kept_per_kpoint(hamiltonian, system) + batch * solve


def check_kpoints(hamiltonian: PseudopotentialHamiltonian) -> None:
    """Refuse a system whose k-points (`kpoint_bytes`) would not fit in the memory
    available, naming its k-point file."""
    for system, data in enumerate(hamiltonian.systems):
        geometry = hamiltonian.geometries[system]
        name = data.files.get("kpoints")
        kept = kept_per_kpoint(hamiltonian, system)
        check_fits(
            kpoint_bytes(hamiltonian, system),
            f"system {data.index}'s {geometry.n_kpoints} k-points × "
            f"{hamiltonian.dimension(system)} basis × {data.n_bands} bands "
            f"({format_bytes(kept)} kept per k-point, batches of "
            f"{min(hamiltonian.k_chunk(system), geometry.n_kpoints)})",
            file=name,
            key=None,
            found=f"{geometry.n_kpoints} k-points",
            hint=f"use fewer k-points in {'kpoints_X.par' if name is None else name.name}, "
            "lower hamiltonian.k_chunk, eigensolver=lapack (no eigenvectors kept per k-point) "
            "or hamiltonian.cache_projectors=false, or run on a machine with more memory",
        )

"""Per-system geometry, precomputed once: basis, unique |ΔG|, species structure factors, k-points.

Nothing here depends on the trainable parameters, so it is built once per system and
shared by every optimiser step (docs/internals.md, "How the core is fast").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np
import torch

from dpp.io.records import SystemData
from dpp.physics.basis import plane_wave_basis
from dpp.physics.lattice import Lattice

Q_GROUPING = 1e-11
"""|ΔG| values closer than this (1/Bohr) share one form-factor evaluation."""


@dataclass
class SystemGeometry:
    """Fixed tensors of one system (lengths in Bohr, wave vectors in 1/Bohr).

    `structure_factors[s]` is S_s(G_m − G_n) = Σ_{α∈s} exp(i ΔG·τ_α)/Ω, and the local
    potential matrix is Σ_s v_s(unique_q)[q_index] ∘ S_s.
    """

    lattice: Lattice
    labels: np.ndarray  # (N, 3) integer reciprocal-lattice coordinates of the basis
    basis: torch.Tensor  # (N, 3) Cartesian G
    unique_q: torch.Tensor  # (U,) distinct |G_m − G_n|
    q_index: torch.Tensor  # (N, N) index into unique_q
    structure_factors: torch.Tensor  # (n_species, N, N) complex
    species_present: torch.Tensor  # (n_species,) bool, species with atoms in this system
    kpoints: torch.Tensor  # (nK, 3) Cartesian k
    volume_ratio: float  # Ω / Ω0 for the strain factor

    @property
    def n_basis(self) -> int:
        return int(self.basis.shape[0])

    @property
    def n_kpoints(self) -> int:
        return int(self.kpoints.shape[0])

    def map_tensors(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> SystemGeometry:
        """The same geometry with `fn` applied to every tensor (device moves)."""
        moved = {
            f.name: fn(value) if isinstance(value, torch.Tensor) else value
            for f in fields(self)
            for value in [getattr(self, f.name)]
        }
        return SystemGeometry(**moved)

    def full_q(self) -> torch.Tensor:
        """|G_m − G_n| for every matrix element, with repeats (N², batch-norm training mode)."""
        return self.unique_q[self.q_index.reshape(-1)]

    @classmethod
    def build(
        cls,
        system: SystemData,
        species: tuple[str, ...],
        *,
        basis_search: str = "complete",
        strain: float = 1.0,
        labels: np.ndarray | None = None,
        device: torch.device | str = "cpu",
    ) -> SystemGeometry:
        """Precompute the geometry, optionally deformed by lattice-constant ratio `strain`.

        With `labels`, the basis keeps those integer labels (deformation keeps G labels).
        """
        crystal = system.crystal
        lattice = Lattice.from_crystal(crystal, strain)
        if labels is None:
            labels, basis = plane_wave_basis(
                lattice.reciprocal, system.settings.max_ke, basis_search
            )
        else:
            basis = labels.astype(np.float64) @ lattice.reciprocal
        delta_labels = labels[:, None, :] - labels[None, :, :]
        delta = delta_labels.astype(np.float64) @ lattice.reciprocal
        unique_q, q_index = _group_norms(np.linalg.norm(delta, axis=-1))

        positions = lattice.cartesian_positions(crystal.fractional)
        phase_per_atom = np.exp(1j * (basis @ positions.T))  # (N, n_atoms): e^{iG·τ}
        n = basis.shape[0]
        structure = np.zeros((len(species), n, n), dtype=np.complex128)
        present = np.zeros(len(species), dtype=bool)
        for atom, symbol in enumerate(crystal.symbols):
            s = species.index(symbol)
            present[s] = True
            column = phase_per_atom[:, atom]
            structure[s] += np.outer(column, column.conj())
        structure /= abs(lattice.volume)

        reference_scale = system.settings.strain_ref_scale or crystal.scale
        volume_ratio = (strain * crystal.scale / reference_scale) ** 3
        kpoints = lattice.cartesian_kpoints(system.kpoints)
        return cls(
            lattice=lattice,
            labels=labels,
            basis=torch.as_tensor(basis, device=device),
            unique_q=torch.as_tensor(unique_q, device=device),
            q_index=torch.as_tensor(q_index, device=device),
            structure_factors=torch.as_tensor(structure, device=device),
            species_present=torch.as_tensor(present, device=device),
            kpoints=torch.as_tensor(kpoints, device=device),
            volume_ratio=volume_ratio,
        )


def _group_norms(norms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of `norms` (grouped within Q_GROUPING) and the index of each entry."""
    keys = np.rint(norms / Q_GROUPING).astype(np.int64)
    unique_keys, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return norms.reshape(-1)[first], inverse.reshape(norms.shape)


def memory_per_kpoint(n_basis: int, spinor: bool) -> int:
    """Rough bytes held per k-point while assembling and diagonalising H(k)."""
    dim = 2 * n_basis if spinor else n_basis
    return 16 * dim * dim * (6 if spinor else 3)


def default_k_chunk(n_basis: int, spinor: bool, budget_bytes: float = 2.0e9) -> int:
    """How many k-points to assemble at once within a memory budget."""
    return max(1, math.floor(budget_bytes / memory_per_kpoint(n_basis, spinor)))

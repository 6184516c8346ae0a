"""The differentiable plane-wave Hamiltonian of a set of systems (physics.md §5, §6).

H(k) = V_loc + diag(|k+G|²/2) [+ spin-orbit + nonlocal], in Hartree. V_loc is built once
per call from the form factors on the unique |ΔG| values and shared by all k-points;
the k-dependent parts are assembled as one batched tensor per chunk of k-points.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from dpp.errors import InputError
from dpp.io.records import SystemData
from dpp.models import has_batchnorm, is_zero_function
from dpp.physics.bands import needed_eigenvalues, process_bands
from dpp.physics.eigensolver import lowest_eigh
from dpp.physics.geometry import SystemGeometry, default_k_chunk
from dpp.physics.options import PhysicsOptions
from dpp.physics.potentials import long_range, strain_factor, wang_zunger
from dpp.physics.projectors import ProjectorKernels
from dpp.slots import N_SLOTS, Slot


class PseudopotentialHamiltonian(nn.Module):
    """Form factors (network or Wang–Zunger) plus the channels a4…a8, for several systems.

    `train_slots` lists the parameter slots (0–8) of every species that are trainable
    tensors; all other slots are fixed buffers. Network weights are trainable through
    `model` as usual.
    """

    def __init__(
        self,
        systems: Sequence[SystemData],
        species: tuple[str, ...],
        pp_params: np.ndarray,
        model: nn.Module | None = None,
        options: PhysicsOptions | None = None,
        *,
        train_slots: Sequence[int] = (),
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__()
        self.options = options or PhysicsOptions()
        self.species = tuple(species)
        self.systems = list(systems)
        self.model = None if model is None else model.to(device)
        table = torch.as_tensor(np.asarray(pp_params, dtype=np.float64), device=device)
        if table.shape != (len(species), N_SLOTS):
            raise ValueError(f"pp_params must be ({len(species)}, {N_SLOTS}), got {table.shape}")
        mask = torch.zeros_like(table, dtype=torch.bool)
        mask[:, list(train_slots)] = True
        self.register_buffer("pp_fixed", table.clone())
        self.register_buffer("pp_mask", mask)
        self.pp_free = nn.Parameter(table[mask].clone(), requires_grad=bool(mask.any()))
        self.geometries = [
            SystemGeometry.build(
                system, self.species, basis_search=self.options.basis_search, device=device
            )
            for system in self.systems
        ]
        self._order_rows = [
            self._checked_order_rows(system, geometry, device)
            for system, geometry in zip(self.systems, self.geometries, strict=True)
        ]
        self._kernels: list[ProjectorKernels | None] = [None] * len(self.systems)

    def _checked_order_rows(
        self, system: SystemData, geometry: SystemGeometry, device: torch.device | str
    ) -> torch.Tensor | None:
        """The order matrix as a tensor, after checking its indices fit the matrix dimension."""
        if system.order_matrix is None:
            return None
        dimension = geometry.n_basis * (2 if self.options.spin_orbit else 1)
        largest = int(np.max(system.order_matrix))
        if largest >= dimension:
            raise InputError(
                system.files.get("order_matrix"),
                "order-matrix index outside the Hamiltonian",
                expected=f"indices below {dimension} (the basis at maxKE {system.settings.max_ke})",
                found=str(largest),
            )
        return torch.as_tensor(system.order_matrix, dtype=torch.long, device=device)

    def replica(self, model: nn.Module | None) -> PseudopotentialHamiltonian:
        """A Hamiltonian with its own `model` and parameter table that shares this one's
        geometry and spin-orbit/nonlocal kernel caches (the same objects, not copies)."""
        view = copy.copy(self)
        view._parameters, view._buffers, view._modules = {}, {}, {}
        view.model = model
        view.register_buffer("pp_fixed", self.pp_fixed.detach().clone())
        view.register_buffer("pp_mask", self.pp_mask.clone())
        view.pp_free = nn.Parameter(self.pp_free.detach().clone(), requires_grad=False)
        return view

    def deformed(self, system: int, strain: float) -> PseudopotentialHamiltonian:
        """A view of this Hamiltonian with `system` uniformly deformed by lattice-constant
        ratio `strain` (same G labels, fractional k and atoms; physics.md §13.1).

        Model and parameters are shared, so observables of the view stay differentiable.
        """
        view = copy.copy(self)
        view.geometries = list(self.geometries)
        view.geometries[system] = SystemGeometry.build(
            self.systems[system],
            self.species,
            strain=strain,
            labels=self.geometries[system].labels,
            device=self.pp_fixed.device,
        )
        view._kernels = list(self._kernels)
        view._kernels[system] = None
        return view

    # -- parameters ---------------------------------------------------------------------
    def pp_table(self) -> torch.Tensor:
        """Current (n_species, 9) parameter table, trainable slots included."""
        if not bool(self.pp_mask.any()):
            return self.pp_fixed
        table = self.pp_fixed.clone()
        table[self.pp_mask] = self.pp_free
        return table

    @property
    def uses_network(self) -> bool:
        return self.model is not None and not is_zero_function(self.model)

    def form_factors(
        self, q: torch.Tensor, table: torch.Tensor | None = None, volume_ratio: float = 1.0
    ) -> torch.Tensor:
        """v_s(q) in Hartree·Bohr³ for q (M,) in 1/Bohr → (M, n_species)."""
        table = self.pp_table() if table is None else table
        if self.uses_network:
            values = self.model(q[:, None])
            if self.options.long_range_with_nn:
                values = values + long_range(q, table[:, Slot.LONG_RANGE])
        else:
            values = wang_zunger(q, table) + long_range(q, table[:, Slot.LONG_RANGE])
        return values * strain_factor(table[:, Slot.STRAIN], volume_ratio)

    # -- assembly -------------------------------------------------------------------------
    def local_potential(self, system: int, table: torch.Tensor) -> torch.Tensor:
        """V_loc[m, n] = Σ_s v_s(|G_m − G_n|) S_s(G_m − G_n), complex (N, N), Hartree."""
        geometry = self.geometries[system]
        n = geometry.n_basis
        if self.uses_network and self.model.training and has_batchnorm(self.model):
            values = self.form_factors(geometry.full_q(), table, geometry.volume_ratio)
            per_element = values.reshape(n, n, -1)
        else:
            values = self.form_factors(geometry.unique_q, table, geometry.volume_ratio)
            per_element = values[geometry.q_index]
        potential = torch.zeros(
            (n, n), dtype=geometry.structure_factors.dtype, device=values.device
        )
        for s in torch.nonzero(geometry.species_present).flatten().tolist():
            potential = potential + per_element[..., s] * geometry.structure_factors[s]
        return potential

    def _strength_matrix(self, system: int, strengths: torch.Tensor) -> torch.Tensor:
        """Σ_s a_s S_s for one slot's strengths a_s (n_species,): complex (N, N)."""
        factors = self.geometries[system].structure_factors
        return torch.einsum("s,smn->mn", strengths.to(factors.dtype), factors)

    def projector_kernels(self, system: int) -> ProjectorKernels:
        if self._kernels[system] is None:
            geometry = self.geometries[system]
            self._kernels[system] = ProjectorKernels(
                geometry.basis, geometry.kpoints, cache=self.options.cache_projectors
            )
        return self._kernels[system]

    def hamiltonians(
        self, system: int, k_indices: torch.Tensor, table: torch.Tensor | None = None
    ) -> torch.Tensor:
        """H(k) for the given k-points, complex (B, dim, dim) in Hartree."""
        table = self.pp_table() if table is None else table
        geometry = self.geometries[system]
        local = self.local_potential(system, table)
        waves = geometry.kpoints[k_indices][:, None, :] + geometry.basis[None]
        kinetic = torch.diag_embed(0.5 * (waves * waves).sum(-1)).to(local.dtype)
        diagonal_block = local + kinetic
        if not self.options.nonlocal_active:
            return diagonal_block
        kernels = self.projector_kernels(system).kernels(k_indices)
        nonlocal_ = self._strength_matrix(system, table[:, Slot.NONLOCAL_1]) * kernels[:, 3]
        nonlocal_ = (
            nonlocal_ + self._strength_matrix(system, table[:, Slot.NONLOCAL_2]) * kernels[:, 4]
        )
        diagonal_block = diagonal_block + nonlocal_
        if not self.options.spin_orbit:
            return diagonal_block
        soc = self._strength_matrix(system, table[:, Slot.SPIN_ORBIT])
        cx, cy, cz = kernels[:, 0], kernels[:, 1], kernels[:, 2]
        up_up = diagonal_block - 0.5j * soc * cz
        down_down = diagonal_block + 0.5j * soc * cz
        up_down = soc * (-0.5j * cx - 0.5 * cy)
        down_up = soc * (-0.5j * cx + 0.5 * cy)
        return torch.cat(
            [torch.cat([up_up, up_down], dim=-1), torch.cat([down_up, down_down], dim=-1)],
            dim=-2,
        )

    # -- bands ------------------------------------------------------------------------------
    def k_chunk(self, system: int) -> int:
        if self.options.k_chunk > 0:
            return self.options.k_chunk
        return default_k_chunk(self.geometries[system].n_basis, self.options.spin_orbit)

    def order_matrix(self, system: int) -> torch.Tensor | None:
        """The system's order matrix (nK, nBands) as a tensor, or None."""
        return self._order_rows[system]

    def eigenpairs(
        self, system: int, k_indices: torch.Tensor, n_eig: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Lowest `n_eig` eigenvalues (Hartree, differentiable) and eigenvectors of H(k)."""
        table = self.pp_table()
        values, vectors = [], []
        for chunk in torch.split(k_indices, self.k_chunk(system)):
            chunk_values, chunk_vectors = lowest_eigh(
                self.hamiltonians(system, chunk, table), n_eig, self.options.eigensolver
            )
            values.append(chunk_values)
            vectors.append(chunk_vectors)
        return torch.cat(values), torch.cat(vectors)

    def bands(
        self,
        system: int,
        k_indices: torch.Tensor | None = None,
        order_rows: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Band energies in eV, (len(k_indices), nBands), as compared with expBandStruct.

        `order_rows` (len(k_indices), columns) replaces the system's order matrix for these
        k-points (indices into the ascending eigenvalues of each H(k)).
        """
        geometry = self.geometries[system]
        if k_indices is None:
            k_indices = torch.arange(geometry.n_kpoints, device=geometry.kpoints.device)
        k_indices = torch.as_tensor(k_indices, dtype=torch.long, device=geometry.kpoints.device)
        n_bands = self.systems[system].n_bands
        rows = self._order_rows[system]
        rows = None if rows is None else rows[k_indices]
        if order_rows is not None:
            rows = order_rows
        n_eig = needed_eigenvalues(n_bands, self.options.spin_orbit, rows)
        n_eig = min(n_eig, geometry.n_basis * (2 if self.options.spin_orbit else 1))
        values, _ = self.eigenpairs(system, k_indices, n_eig)
        return process_bands(values, n_bands, self.options.spin_orbit, rows)

    def _apply(self, fn, recurse: bool = True):  # noqa: ANN001 - nn.Module signature
        super()._apply(fn, recurse)
        self.geometries = [geometry.map_tensors(fn) for geometry in self.geometries]
        self._order_rows = [None if rows is None else fn(rows) for rows in self._order_rows]
        self._kernels = [None] * len(self.systems)
        return self

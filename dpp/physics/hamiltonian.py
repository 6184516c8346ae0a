"""The differentiable plane-wave Hamiltonian of a set of systems (physics.md §5, §6).

H(k) is the sum of the active operator terms of `dpp.physics.terms` (kinetic, local,
nonlocal, spin–orbit), in Hartree. Their k-independent coefficients (V_loc from the form
factors on the unique |ΔG|, Σ_s a_s S_s of the projector strengths) are built once per
call and shared by all k-points; the k-dependent parts are written into one batched tensor
per chunk of k-points. The lowest eigenpairs come from LAPACK/eigh or, warm-started from
the previous evaluation, from a block Davidson (`dpp.physics.warmstart`).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from functools import partial

import numpy as np
import torch
from torch import nn

from dpp.errors import InputError
from dpp.io.records import SystemData
from dpp.physics.bands import needed_eigenvalues, process_bands
from dpp.physics.eigensolver import differentiable_eigenpairs, lowest_eigh_raw, uses_iterative
from dpp.physics.geometry import SystemGeometry, default_k_chunk
from dpp.physics.options import PhysicsOptions
from dpp.physics.projectors import ProjectorFactors
from dpp.physics.terms import (
    Coefficients,
    FormFactorChain,
    OperatorTerm,
    Parameters,
    SystemContext,
    assemble,
    operator_terms,
)
from dpp.physics.terms.local import LocalPotential
from dpp.physics.warmstart import WarmStart
from dpp.slots import N_SLOTS


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
        self._build_terms()
        self._warm = WarmStart()

    def _build_terms(self) -> None:
        """The form-factor chain and, per system, projector factors and operator terms."""
        self._chain = FormFactorChain(self.options)
        self._projectors = [
            ProjectorFactors(g.basis, g.kpoints, cache=self.options.cache_projectors)
            for g in self.geometries
        ]
        self._terms = [self._system_terms(i) for i in range(len(self.geometries))]

    def terms(self, system: int) -> list[OperatorTerm]:
        """The active operator terms of `system`, in the order they are added into H(k)."""
        return list(self._terms[system])

    def _system_terms(self, system: int) -> list[OperatorTerm]:
        context = SystemContext(
            self.geometries[system], self.options, self._projectors[system], self._chain
        )
        return operator_terms(context)

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
        """A Hamiltonian with its own `model`, parameter table and warm-start eigenvectors
        that shares this one's geometry and projector factors (the same objects)."""
        view = copy.copy(self)
        view._parameters, view._buffers, view._modules = {}, {}, {}
        view.model = model
        view.register_buffer("pp_fixed", self.pp_fixed.detach().clone())
        view.register_buffer("pp_mask", self.pp_mask.clone())
        view.pp_free = nn.Parameter(self.pp_free.detach().clone(), requires_grad=False)
        view._warm = WarmStart()
        return view

    def deformed(self, system: int, strain: float) -> PseudopotentialHamiltonian:
        """A view of this Hamiltonian with `system` uniformly deformed by lattice-constant
        ratio `strain` (same G labels, fractional k and atoms; physics.md §13.1).

        Model and parameters are shared, so observables of the view stay differentiable.
        The view has its own warm-start eigenvectors (this one's are left untouched).
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
        geometry = view.geometries[system]
        view._projectors = list(self._projectors)
        view._projectors[system] = ProjectorFactors(
            geometry.basis, geometry.kpoints, cache=self.options.cache_projectors
        )
        view._terms = list(self._terms)
        view._terms[system] = view._system_terms(system)
        view._warm = WarmStart()
        return view

    # -- parameters ---------------------------------------------------------------------
    def pp_table(self) -> torch.Tensor:
        """Current (n_species, 10) parameter table, trainable slots included."""
        if not bool(self.pp_mask.any()):
            return self.pp_fixed
        table = self.pp_fixed.clone()
        table[self.pp_mask] = self.pp_free
        return table

    @property
    def uses_network(self) -> bool:
        return Parameters(self.pp_fixed, self.model).uses_network

    def _parameters_for(self, table: torch.Tensor | None) -> Parameters:
        return Parameters(self.pp_table() if table is None else table, self.model)

    @property
    def form_factor_chain(self) -> FormFactorChain:
        """The form-factor terms behind every v_s(q) of this Hamiltonian and its views."""
        return self._chain

    def form_factors(
        self, q: torch.Tensor, table: torch.Tensor | None = None, volume_ratio: float = 1.0
    ) -> torch.Tensor:
        """v_s(q) in Hartree·Bohr³ for q (M,) in 1/Bohr → (M, n_species)."""
        return self._chain(q, self._parameters_for(table), volume_ratio)

    # -- assembly -------------------------------------------------------------------------
    def projector_kernels(self, system: int) -> ProjectorFactors:
        """The low-rank spin–orbit/nonlocal factors of `system` (kernels on demand)."""
        return self._projectors[system]

    def _coefficients(self, system: int, parameters: Parameters) -> list[Coefficients]:
        return [term.coefficients(parameters) for term in self._terms[system]]

    def dimension(self, system: int) -> int:
        """The matrix dimension of H(k): n_basis, doubled for spinors."""
        return self.geometries[system].n_basis * (2 if self.options.spin_orbit else 1)

    def _k_tensor(self, system: int, k_indices: torch.Tensor | Sequence[int]) -> torch.Tensor:
        device = self.geometries[system].kpoints.device
        return torch.as_tensor(k_indices, dtype=torch.long, device=device).reshape(-1)

    def hamiltonians(
        self, system: int, k_indices: torch.Tensor, table: torch.Tensor | None = None
    ) -> torch.Tensor:
        """H(k) for the given k-points, complex (B, dim, dim) in Hartree."""
        k_indices = self._k_tensor(system, k_indices)
        coefficients = self._coefficients(system, self._parameters_for(table))
        return assemble(self._terms[system], k_indices, self.dimension(system), coefficients)

    def term_operators(
        self, system: int, k_indices: torch.Tensor | Sequence[int]
    ) -> dict[str, torch.Tensor]:
        """Each active term's matrix (B, dim, dim) in Hartree, by name (`kinetic`, `local`,
        `nonlocal`, `spin_orbit`); their sum is H(k). For diagnostics (no gradients)."""
        k_indices = self._k_tensor(system, k_indices)
        parameters = self._parameters_for(None)
        operators = {}
        with torch.no_grad():
            for term in self._terms[system]:
                coefficients = term.coefficients(parameters)
                operators[term.name] = assemble(
                    [term], k_indices, self.dimension(system), [coefficients]
                )
        return operators

    def local_expectation_gradient(self, system: int, vectors: torch.Tensor) -> torch.Tensor:
        """d⟨ψ_j|H(k)|ψ_j⟩/dv_s(q_u) of eigenvectors (B, dim, m) of `system`: the eigenvalues'
        Hellmann–Feynman derivatives by the form factors at the system's unique |G − G'|
        (`geometry.unique_q`), (B, m, n_unique, n_species), Hartree per Hartree·Bohr³."""
        local = next(term for term in self._terms[system] if isinstance(term, LocalPotential))
        return local.expectation_gradient(vectors)

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
        """Lowest `n_eig` eigenvalues (Hartree, differentiable) and eigenvectors of H(k).

        A chunk whose H(k) holds NaN or infinite entries (parameters that overflowed) is not
        handed to a solver: its eigenpairs are NaN, so the loss is NaN and the callers'
        non-finite guards stop or reject the state (the same on every DDP rank)."""
        parameters = self._parameters_for(None)
        coefficients = self._coefficients(system, parameters)
        k_indices = self._k_tensor(system, k_indices)
        device = self.geometries[system].kpoints.device
        dim = self.dimension(system)
        iterative = uses_iterative(
            self.options.eigensolver, device, dim, self.options.davidson_min_dim
        )
        noted = False
        values, vectors = [], []
        for chunk in torch.split(k_indices, self.k_chunk(system)):
            matrices = assemble(self._terms[system], chunk, dim, coefficients)
            if not bool(torch.isfinite(matrices).all()):
                chunk_values, chunk_vectors = _non_finite_eigenpairs(matrices, n_eig)
                values.append(chunk_values)
                vectors.append(chunk_vectors)
                continue
            if iterative:
                if not noted:
                    self._warm.note_parameters(
                        system, self._terms[system], parameters, coefficients
                    )
                    noted = True
                solve = partial(
                    self._warm.solve, system, chunk.tolist(), n_eig=n_eig, options=self.options
                )
            else:
                solve = partial(lowest_eigh_raw, n_eig=n_eig, solver=self.options.eigensolver)
            chunk_values, chunk_vectors = differentiable_eigenpairs(matrices, solve)
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
        if k_indices is None:
            k_indices = range(self.geometries[system].n_kpoints)
        k_indices = self._k_tensor(system, k_indices)
        n_bands = self.systems[system].n_bands
        rows = self._order_rows[system]
        rows = None if rows is None else rows[k_indices]
        if order_rows is not None:
            rows = order_rows
        n_eig = needed_eigenvalues(n_bands, self.options.spin_orbit, rows)
        n_eig = min(n_eig, self.dimension(system))
        values, _ = self.eigenpairs(system, k_indices, n_eig)
        return process_bands(values, n_bands, self.options.spin_orbit, rows)

    # -- warm-start state ---------------------------------------------------------------------
    def snapshot(self) -> WarmStart:
        """The warm-start eigenvectors of every (system, k) and their drift bookkeeping."""
        return self._warm.snapshot()

    def restore(self, snapshot: WarmStart) -> None:
        """Bring back a `snapshot()` (e.g. the accepted state after a rejected Monte Carlo
        move), so the next solves start from that state's eigenvectors."""
        self._warm.restore(snapshot)

    def warm_state(self) -> dict[str, object]:
        """The warm-start state as plain containers, for a checkpoint (`load_warm_state`)."""
        return self._warm.state_dict()

    def load_warm_state(self, state: dict[str, object]) -> None:
        """Bring back a `warm_state()` (a resumed fit), on this Hamiltonian's device."""
        self._warm.load_state_dict(state, self.geometries[0].kpoints.device)

    def invalidate(self) -> None:
        """Forget all warm-start eigenvectors: the next solve of every k-point is dense
        (after a resume, a perturbation kick, or any change made behind this object's back
        that the drift bounds cannot see, such as a new geometry)."""
        self._warm.invalidate()

    @property
    def solver_stats(self) -> dict[str, int]:
        """Solves since construction: `iterative` (warm-started) and the dense ones by reason
        (`cold`, `refresh`, `moved`, `unconverged`)."""
        return dict(self._warm.stats)

    def _apply(self, fn, recurse: bool = True):  # noqa: ANN001 - nn.Module signature
        super()._apply(fn, recurse)
        self.geometries = [geometry.map_tensors(fn) for geometry in self.geometries]
        self._order_rows = [None if rows is None else fn(rows) for rows in self._order_rows]
        self._build_terms()
        self._warm.invalidate()
        return self


def _non_finite_eigenpairs(matrices: torch.Tensor, n_eig: int) -> tuple[torch.Tensor, torch.Tensor]:
    """NaN eigenvalues (B, n_eig), still connected to `matrices` for autograd, and NaN
    eigenvectors (B, n, n_eig) of a batch that cannot be diagonalised."""
    diagonal = matrices.diagonal(dim1=-2, dim2=-1).real[..., :n_eig]
    values = diagonal * float("nan")
    vectors = torch.full(
        (*matrices.shape[:-1], n_eig), float("nan"), dtype=matrices.dtype, device=matrices.device
    )
    return values, vectors

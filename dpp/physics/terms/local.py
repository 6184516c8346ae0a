"""Local pseudopotential: the form factor v_s(q) and V_loc = Σ_s v_s(|ΔG|) ∘ S_s (§5.2–5.5)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft
import torch

from dpp.models import has_batchnorm
from dpp.physics.geometry import SystemGeometry
from dpp.physics.potentials import wang_zunger
from dpp.physics.terms.base import (
    Coefficients,
    FormFactorTerm,
    OperatorTerm,
    Parameters,
    SystemContext,
)
from dpp.slots import WANG_ZUNGER

NORM_ITERATIONS = 10
"""Block power iterations of the ‖ΔV_loc‖₂ estimate."""

NORM_BLOCK = 4
"""Random start vectors of the ‖ΔV_loc‖₂ estimate."""

FFT_BATCH = 256
"""States per batch of the autocorrelation FFTs (memory: FFT_BATCH × grid cells × 16 B)."""


class LocalFormFactor(FormFactorTerm):
    """The screened form factor of each species: the network output, or Wang–Zunger
    a0 (q² − a1)/(a2 exp(a3 q²) − 1) of slots a0..a3 without one (Hartree·Bohr³)."""

    name = "local_form"
    slots = WANG_ZUNGER

    def apply(
        self,
        q: torch.Tensor,
        values: torch.Tensor | None,
        parameters: Parameters,
        volume_ratio: float,
    ) -> torch.Tensor:
        if parameters.uses_network:
            return parameters.model(q[:, None])
        return wang_zunger(q, parameters.table)


@dataclass(frozen=True)
class AutocorrelationTable:
    """Where the basis and its differences sit on an FFT grid of integer labels: `shape` (no
    wrap-around of any difference), the flat cell of every basis label (N,), of every
    distinct difference Δ = L_n − L_m (D,), the unique-|G − G'| index of each Δ (D,) and
    S_s(G_m − G_n) there (n_species, D)."""

    shape: tuple[int, int, int]
    basis_cells: torch.Tensor
    delta_cells: torch.Tensor
    delta_bins: torch.Tensor
    delta_factors: torch.Tensor

    @classmethod
    def build(cls, geometry: SystemGeometry) -> AutocorrelationTable:
        labels = np.asarray(geometry.labels, dtype=np.int64)
        span = labels.max(axis=0) - labels.min(axis=0)
        shape = tuple(int(scipy.fft.next_fast_len(int(2 * extent + 1))) for extent in span)
        sizes = np.asarray(shape)

        def cell(points: np.ndarray) -> np.ndarray:
            wrapped = np.mod(points, sizes)
            return (wrapped[..., 0] * sizes[1] + wrapped[..., 1]) * sizes[2] + wrapped[..., 2]

        pair_cells = cell(labels[None, :, :] - labels[:, None, :]).reshape(-1)
        delta_cells, first = np.unique(pair_cells, return_index=True)
        device = geometry.q_index.device
        first_pairs = torch.as_tensor(first, device=device)
        return cls(
            shape=shape,
            basis_cells=torch.as_tensor(cell(labels), device=device),
            delta_cells=torch.as_tensor(delta_cells, device=device),
            delta_bins=geometry.q_index.reshape(-1)[first_pairs],
            delta_factors=geometry.structure_factors.reshape(len(geometry.species_present), -1)[
                :, first_pairs
            ],
        )


class LocalPotential(OperatorTerm):
    """V_loc (Hartree), k-independent and the same in both spin blocks.

    The form-factor chain runs on the unique |G_m − G_n| only, except for batch-norm
    networks in training mode, whose batch statistics need every matrix element (§5.5).
    """

    name = "local"

    def __init__(self, context: SystemContext) -> None:
        super().__init__(context)
        self._table: AutocorrelationTable | None = None

    def coefficients(self, parameters: Parameters) -> Coefficients:
        geometry = self.context.geometry
        chain = self.context.form_factors
        n = geometry.n_basis
        model = parameters.model
        if parameters.uses_network and model.training and has_batchnorm(model):
            values = chain(geometry.full_q(), parameters, geometry.volume_ratio)
            per_element = values.reshape(n, n, -1)
        else:
            values = chain(geometry.unique_q, parameters, geometry.volume_ratio)
            per_element = values[geometry.q_index]
        potential = torch.zeros(
            (n, n), dtype=geometry.structure_factors.dtype, device=values.device
        )
        for s in torch.nonzero(geometry.species_present).flatten().tolist():
            potential = potential + per_element[..., s] * geometry.structure_factors[s]
        return (potential,)

    def add_to(
        self, out: torch.Tensor, k_indices: torch.Tensor, coefficients: Coefficients
    ) -> None:
        (potential,) = coefficients
        n = self.context.n_basis
        out[:, :n, :n] += potential
        if self.context.spinor:
            out[:, n:, n:] += potential

    def adjoint(self, grad: torch.Tensor, k_indices: torch.Tensor) -> Coefficients:
        n = self.context.n_basis
        total = grad[:, :n, :n].sum(0)
        if self.context.spinor:
            total = total + grad[:, n:, n:].sum(0)
        return (total,)

    def expectation_gradient(self, vectors: torch.Tensor) -> torch.Tensor:
        """d⟨ψ_j|V_loc|ψ_j⟩/dv_s(q_u) of eigenvectors `vectors` (B, dim, m) of H(k): the
        Hellmann–Feynman derivative of each eigenvalue by the form factor of species s at
        each unique |G − G'| q_u of the system, (B, m, n_unique, n_species) in Hartree per
        Hartree·Bohr³ (zero for absent species).

        Σ_{G,G'} ψ*(G) S_s(G − G') ψ(G') over the pairs of one |G − G'| is Σ_Δ S_s ρ(Δ) with
        the autocorrelation ρ(Δ) = Σ_G ψ*(G) ψ(G + Δ), computed by FFT on the basis's label
        grid: O(N log N) per state instead of O(N²)."""
        table = self._autocorrelation_table()
        n = self.context.n_basis
        n_batch, _, n_states = vectors.shape
        cells = math.prod(table.shape)
        flat = vectors.transpose(1, 2).reshape(n_batch * n_states, -1)
        geometry = self.context.geometry
        shape = (flat.shape[0], len(geometry.unique_q), len(geometry.species_present))
        out = torch.zeros(shape, dtype=vectors.real.dtype, device=vectors.device)
        for rows in torch.split(torch.arange(flat.shape[0], device=flat.device), FFT_BATCH):
            correlation = torch.zeros(
                (len(rows), len(table.delta_cells)), dtype=flat.dtype, device=flat.device
            )
            components = (flat[rows, :n], flat[rows, n:]) if self.context.spinor else (flat[rows],)
            for psi in components:
                grid = torch.zeros((len(rows), cells), dtype=flat.dtype, device=flat.device)
                grid[:, table.basis_cells] = psi
                spectrum = torch.fft.fftn(grid.reshape(-1, *table.shape), dim=(1, 2, 3))
                density = torch.fft.ifftn(spectrum.abs() ** 2, dim=(1, 2, 3)).reshape(-1, cells)
                correlation += density[:, table.delta_cells]
            weighted = (correlation[:, :, None] * table.delta_factors.T).real  # (rows, D, S)
            out[rows] = torch.zeros_like(out[rows]).index_add_(1, table.delta_bins, weighted)
        return out.reshape(n_batch, n_states, *shape[1:])

    def _autocorrelation_table(self) -> AutocorrelationTable:
        if self._table is None:
            self._table = AutocorrelationTable.build(self.context.geometry)
        return self._table

    def drift(self, before: object, after: object) -> float:
        """‖ΔV_loc‖₂ (Hartree), estimated by block power iteration: one O(N²) product per
        iteration and system, independent of k."""
        (old,), (new,) = before, after
        if torch.equal(old, new):
            return 0.0
        change = new - old
        generator = torch.Generator(device=change.device).manual_seed(0)
        block = torch.randn(
            (change.shape[0], NORM_BLOCK),
            dtype=change.dtype,
            device=change.device,
            generator=generator,
        )
        for _ in range(NORM_ITERATIONS):
            block, _ = torch.linalg.qr(change @ block)
        projected = block.mH @ change @ block
        return float(torch.linalg.eigvalsh(0.5 * (projected + projected.mH)).abs().max())

"""Local pseudopotential: the form factor v_s(q) and V_loc = Σ_s v_s(|ΔG|) ∘ S_s (§5.2–5.5)."""

from __future__ import annotations

import torch

from dpp.models import has_batchnorm
from dpp.physics.potentials import wang_zunger
from dpp.physics.terms.base import (
    Coefficients,
    FormFactorTerm,
    OperatorTerm,
    Parameters,
)
from dpp.slots import WANG_ZUNGER

NORM_ITERATIONS = 10
"""Block power iterations of the ‖ΔV_loc‖₂ estimate."""

NORM_BLOCK = 4
"""Random start vectors of the ‖ΔV_loc‖₂ estimate."""


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


class LocalPotential(OperatorTerm):
    """V_loc (Hartree), k-independent and the same in both spin blocks.

    The form-factor chain runs on the unique |G_m − G_n| only, except for batch-norm
    networks in training mode, whose batch statistics need every matrix element (§5.5).
    """

    name = "local"

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

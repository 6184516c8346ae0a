"""Nonlocal l = 1 channels a6 (Gaussian) and a7 (shifted Gaussian) (physics.md §5.8).

V_NL = Σ_s S_s ∘ P·(K_m·K_n)·[a6(s) I_1.0 + a7(s) J], identical in both spin blocks.
"""

from __future__ import annotations

import torch

from dpp.physics.options import PhysicsOptions
from dpp.physics.terms.base import (
    Coefficients,
    OperatorTerm,
    Parameters,
    spin_blocks,
    strength_drift,
    strength_matrix,
)
from dpp.slots import NONLOCAL, Slot


class NonlocalTerm(OperatorTerm):
    """Linear in A6 = Σ_s a6(s) S_s and A7 = Σ_s a7(s) S_s; kernels formed per k-point.

    `channels` maps each slot to its radial channel of `Projectors.dot_kernel`; a subclass
    with other channels (the s-channel) is the same operator."""

    name = "nonlocal"
    slots = NONLOCAL
    channels: dict[Slot, str] = {Slot.NONLOCAL_1: "nl1", Slot.NONLOCAL_2: "nl2"}

    @classmethod
    def enabled(cls, options: PhysicsOptions) -> bool:
        return options.nonlocal_active

    def coefficients(self, parameters: Parameters) -> Coefficients:
        geometry = self.context.geometry
        return tuple(strength_matrix(geometry, parameters.table[:, s]) for s in self.channels)

    def add_to(
        self, out: torch.Tensor, k_indices: torch.Tensor, coefficients: Coefficients
    ) -> None:
        projectors = self.context.projectors
        for b, k in enumerate(k_indices.tolist()):
            term = None
            for strength, channel in zip(coefficients, self.channels.values(), strict=True):
                part = strength * projectors.dot_kernel(k, channel)
                term = part if term is None else term.add_(part)
            for block in spin_blocks(out, b, self.context):
                block += term

    def adjoint(self, grad: torch.Tensor, k_indices: torch.Tensor) -> Coefficients:
        projectors = self.context.projectors
        totals = [None] * len(self.channels)
        for b, k in enumerate(k_indices.tolist()):
            diagonal = sum(spin_blocks(grad, b, self.context))
            for i, channel in enumerate(self.channels.values()):
                part = diagonal * projectors.dot_kernel(k, channel)
                totals[i] = part if totals[i] is None else totals[i].add_(part)
        return tuple(totals)

    def drift_state(self, parameters: Parameters, coefficients: Coefficients) -> object:
        return parameters.table[:, list(self.channels)].detach().clone()

    def drift(self, before: object, after: object) -> float:
        """Σ_channels Σ_s |Δa(s)| n_atoms(s)/|Ω| · max_k ‖kernel‖_F (Hartree)."""
        geometry = self.context.geometry
        projectors = self.context.projectors
        total = 0.0
        for i, channel in enumerate(self.channels.values()):
            moved = strength_drift(geometry, before[:, i], after[:, i])
            if moved:
                total += moved * projectors.dot_kernel_norm(channel)
        return total

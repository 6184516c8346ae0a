"""Nonlocal s-channel (l = 0) a9: a Gaussian projector of width NL0_WIDTH (physics.md §5.8).

V_NL0 = Σ_s a9(s) S_s ∘ 4π Σ_q c_q j0(|K_m| r_q) j0(|K_n| r_q), identical in both spin blocks.
"""

from __future__ import annotations

import torch

from dpp.physics.options import PhysicsOptions
from dpp.physics.projectors import S_CHANNEL
from dpp.physics.terms.base import (
    Coefficients,
    OperatorTerm,
    Parameters,
    spin_blocks,
    strength_drift,
    strength_matrix,
)
from dpp.slots import Slot


class SChannelTerm(OperatorTerm):
    """Linear in A9 = Σ_s a9(s) S_s; the kernel formed per k-point."""

    name = "nonlocal_s"
    slots = (Slot.NONLOCAL_0,)

    @classmethod
    def enabled(cls, options: PhysicsOptions) -> bool:
        return options.nonlocal_s

    def coefficients(self, parameters: Parameters) -> Coefficients:
        return (strength_matrix(self.context.geometry, parameters.table[:, Slot.NONLOCAL_0]),)

    def add_to(
        self, out: torch.Tensor, k_indices: torch.Tensor, coefficients: Coefficients
    ) -> None:
        (strength,) = coefficients
        for b, k in enumerate(k_indices.tolist()):
            term = strength * self.context.projectors.dot_kernel(k, S_CHANNEL)
            for block in spin_blocks(out, b, self.context):
                block += term

    def adjoint(self, grad: torch.Tensor, k_indices: torch.Tensor) -> Coefficients:
        total = None
        for b, k in enumerate(k_indices.tolist()):
            part = sum(spin_blocks(grad, b, self.context)) * self.context.projectors.dot_kernel(
                k, S_CHANNEL
            )
            total = part if total is None else total.add_(part)
        return (total,)

    def drift_state(self, parameters: Parameters, coefficients: Coefficients) -> object:
        return parameters.table[:, Slot.NONLOCAL_0].detach().clone()

    def drift(self, before: object, after: object) -> float:
        """Σ_s |Δa9(s)| n_atoms(s)/|Ω| · max_k ‖kernel‖_F (Hartree)."""
        moved = strength_drift(self.context.geometry, before, after)
        return moved * self.context.projectors.dot_kernel_norm(S_CHANNEL) if moved else 0.0

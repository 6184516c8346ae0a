"""Spin–orbit term a5 on the 2N×2N spinor matrix (physics.md §5.6).

With c = K_m × K_n, A = Σ_s a5(s) S_s and the kernels X_a = P·I_0.7 ∘ c_a, the blocks are

    (↑,↑) = −(i/2) A ∘ X_z        (↓,↓) = +(i/2) A ∘ X_z
    (↑,↓) = −(i/2) A ∘ (X_x − i X_y)     (↓,↑) = (↑,↓)ᴴ = −(i/2) A ∘ (X_x + i X_y)
"""

from __future__ import annotations

import torch

from dpp.physics.options import PhysicsOptions
from dpp.physics.terms.base import (
    Coefficients,
    OperatorTerm,
    Parameters,
    strength_drift,
    strength_matrix,
)
from dpp.slots import Slot


class SpinOrbitTerm(OperatorTerm):
    """Linear in −(i/2)·Σ_s a5(s) S_s; writes all four spin blocks of each k-point."""

    name = "spin_orbit"
    slots = (Slot.SPIN_ORBIT,)

    @classmethod
    def enabled(cls, options: PhysicsOptions) -> bool:
        return options.spin_orbit

    def coefficients(self, parameters: Parameters) -> Coefficients:
        strength = strength_matrix(self.context.geometry, parameters.table[:, Slot.SPIN_ORBIT])
        return (-0.5j * strength,)

    def _kernels(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """X_z (real) and X_x − i X_y (complex) of k-point k, each (N, N)."""
        x, y, z = self.context.projectors.cross_kernels(k)
        return z, torch.complex(x, -y)

    def add_to(
        self, out: torch.Tensor, k_indices: torch.Tensor, coefficients: Coefficients
    ) -> None:
        (strength,) = coefficients
        n = self.context.n_basis
        for b, k in enumerate(k_indices.tolist()):
            z, transverse = self._kernels(k)
            diagonal = strength * z
            out[b, :n, :n] += diagonal
            out[b, n:, n:] -= diagonal
            off_diagonal = strength * transverse
            out[b, :n, n:] += off_diagonal
            out[b, n:, :n] += off_diagonal.mH

    def adjoint(self, grad: torch.Tensor, k_indices: torch.Tensor) -> Coefficients:
        n = self.context.n_basis
        total = None
        for b, k in enumerate(k_indices.tolist()):
            z, transverse = self._kernels(k)
            part = (grad[b, :n, :n] - grad[b, n:, n:]) * z
            part += (grad[b, :n, n:] + grad[b, n:, :n].mH) * transverse.conj()
            total = part if total is None else total.add_(part)
        return (total,)

    def drift_state(self, parameters: Parameters, coefficients: Coefficients) -> object:
        return parameters.table[:, Slot.SPIN_ORBIT].detach().clone()

    def drift(self, before: object, after: object) -> float:
        """Σ_s |Δa5(s)| n_atoms(s)/|Ω| · max_k ‖spin kernel‖_F (Hartree), where
        ‖spin kernel‖_F² = (‖X_x‖² + ‖X_y‖² + ‖X_z‖²)/2."""
        moved = strength_drift(self.context.geometry, before, after)
        if not moved:
            return 0.0
        return moved * self.context.projectors.cross_kernel_norm() / 2**0.5

"""Kinetic energy |k + G_m|²/2 on the diagonal, in both spin blocks (physics.md §5.1)."""

from __future__ import annotations

import torch

from dpp.physics.terms.base import Coefficients, OperatorTerm, SystemContext


class KineticTerm(OperatorTerm):
    """diag(|k + G|²/2) in Hartree; fixed, so it has no coefficients and never drifts."""

    name = "kinetic"

    def __init__(self, context: SystemContext) -> None:
        super().__init__(context)
        geometry = context.geometry
        waves = geometry.kpoints[:, None, :] + geometry.basis[None]
        energies = 0.5 * (waves * waves).sum(-1)
        self.energies = energies.repeat(1, 2) if context.spinor else energies  # (nK, dim)

    def add_to(
        self, out: torch.Tensor, k_indices: torch.Tensor, coefficients: Coefficients
    ) -> None:
        out.diagonal(dim1=-2, dim2=-1).add_(self.energies[k_indices])

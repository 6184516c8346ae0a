"""Strain factor f_s = 1 + a8(s)·(Ω/Ω0 − 1) on the whole form factor (physics.md §5.9)."""

from __future__ import annotations

import torch

from dpp.physics.potentials import strain_factor
from dpp.physics.terms.base import FormFactorTerm, Parameters
from dpp.slots import Slot


class StrainFactor(FormFactorTerm):
    """Multiplies v_s(q) by f_s; f_s = 1 at the reference volume Ω0."""

    name = "strain"
    slots = (Slot.STRAIN,)

    def apply(
        self,
        q: torch.Tensor,
        values: torch.Tensor | None,
        parameters: Parameters,
        volume_ratio: float,
    ) -> torch.Tensor:
        return values * strain_factor(parameters.table[:, Slot.STRAIN], volume_ratio)

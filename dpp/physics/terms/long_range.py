"""Long-range tail −a4·4π/q²·exp(−q²/4γ²) added to v_s(q) (physics.md §5.4)."""

from __future__ import annotations

import torch

from dpp.physics.potentials import long_range
from dpp.physics.terms.base import FormFactorTerm, Parameters
from dpp.slots import Slot


class LongRangeTail(FormFactorTerm):
    """The a4 tail (Hartree·Bohr³); on a network only with `long_range_with_nn`."""

    name = "long_range"
    slots = (Slot.LONG_RANGE,)

    def apply(
        self,
        q: torch.Tensor,
        values: torch.Tensor | None,
        parameters: Parameters,
        volume_ratio: float,
    ) -> torch.Tensor:
        if parameters.uses_network and not self.options.long_range_with_nn:
            return values
        return values + long_range(q, parameters.table[:, Slot.LONG_RANGE])

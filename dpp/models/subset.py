"""A fitted network restricted to some of its species (evaluation on other crystals)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class SpeciesColumns(nn.Module):
    """The form factors of `model` (q (M, 1) 1/Bohr → (M, n_fitted) Hartree·Bohr³) at the
    output columns `columns`, in that order: a fit's network on a bundle whose species are a
    subset of the fit's."""

    def __init__(self, model: nn.Module, columns: Sequence[int]) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("columns", torch.as_tensor(list(columns), dtype=torch.long))

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        return self.model(q)[..., self.columns]

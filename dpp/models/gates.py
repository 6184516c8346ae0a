"""Gated wrappers ``output = base(q) · gate(q)`` and the parameter-free ZeroFunction.

Gate parameters come from NN_config.par and are never part of the state_dict
(bundle-format.md §11.1). q in 1/Bohr, shape (M, 1); outputs in Hartree·Bohr³.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class DecayGate(nn.Module):
    """Logistic decay ``1/(1 + exp(rate·(q − center)))``; rate in Bohr, center in 1/Bohr."""

    def __init__(self, rate: float, center: float) -> None:
        super().__init__()
        self.rate = float(rate)
        self.center = float(center)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(-self.rate * (q - self.center))

    def extra_repr(self) -> str:
        return f"rate={self.rate}, center={self.center}"


class GaussianGate(nn.Module):
    """``exp(−q²/(2σ²))`` (σ in 1/Bohr), optionally × scale[s] per species column."""

    def __init__(self, sigma: float, scale: Sequence[float] | torch.Tensor | None = None) -> None:
        super().__init__()
        self.sigma = float(sigma)
        if scale is None:
            self.scale = None
        else:
            values = torch.as_tensor(scale, dtype=torch.float64).reshape(-1)
            self.register_buffer("scale", values, persistent=False)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        gate = torch.exp(-(q**2) / (2.0 * self.sigma**2))
        return gate if self.scale is None else gate * self.scale.to(q.dtype)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}"


class CutoffGate(nn.Module):
    """Step ``[q ≤ q_max]`` (Net_relu_xavier_BN_dropout_decay, q_max = 10 1/Bohr).

    [proposal] Unlike the original, which moves the q > q_max rows to the end, the row
    order is kept: ``output = network(q) · [q ≤ q_max]``.
    """

    def __init__(self, q_max: float = 10.0) -> None:
        super().__init__()
        self.q_max = float(q_max)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        return (q <= self.q_max).to(q.dtype)

    def extra_repr(self) -> str:
        return f"q_max={self.q_max}"


class GatedNet(nn.Module):
    """``neural_network(q) · gate(q)``, gate broadcast over the species columns.

    The body sits under ``neural_network.`` so original wrapper checkpoints load strictly.
    """

    def __init__(self, neural_network: nn.Module, gate: nn.Module) -> None:
        super().__init__()
        self.neural_network = neural_network
        self.gate = gate

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        """(M, 1) q in 1/Bohr → (M, n_species) in Hartree·Bohr³."""
        return self.neural_network(q) * self.gate(q)


class ZeroFunction(nn.Module):
    """No network: (M, n_species) zeros of q's dtype; no parameters.

    [proposal] The original always returns 2 columns; dpp returns n_species columns and
    uses this class for analytic-only (Zunger form) fits.
    """

    def __init__(self, n_species: int) -> None:
        super().__init__()
        self.n_species = int(n_species)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        return torch.zeros(q.shape[0], self.n_species, dtype=q.dtype, device=q.device)

    def extra_repr(self) -> str:
        return f"n_species={self.n_species}"

"""Analytic local form factors in Hartree·Bohr³ (physics.md §5.3, §5.4, §5.9)."""

from __future__ import annotations

import math

import torch

from dpp.physics.constants import LONG_RANGE_GAMMA, LONG_RANGE_Q_MIN
from dpp.slots import WANG_ZUNGER


def wang_zunger(q: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """v(q) = a0 (q² − a1) / (a2 exp(a3 q²) − 1) for q (M,) and params (S, ≥4) → (M, S)."""
    q2 = (q * q)[:, None]
    a0, a1, a2, a3 = (params[:, slot] for slot in WANG_ZUNGER)
    return a0 * (q2 - a1) / (a2 * torch.exp(a3 * q2) - 1.0)


def long_range(q: torch.Tensor, amplitude: torch.Tensor) -> torch.Tensor:
    """−a4 · 4π/q² · exp(−q²/(4γ²)) for q > 1e-4, else 0; q (M,), amplitude (S,) → (M, S)."""
    far = q > LONG_RANGE_Q_MIN
    safe = torch.where(far, q, torch.ones_like(q))
    shape = 4.0 * math.pi / safe**2 * torch.exp(-(safe**2) / (4.0 * LONG_RANGE_GAMMA**2))
    shape = torch.where(far, shape, torch.zeros_like(q))
    return -shape[:, None] * amplitude


def strain_factor(strain: torch.Tensor, volume_ratio: float) -> torch.Tensor:
    """f_s = 1 + a8(s)·(Ω/Ω0 − 1) for strain coefficients (S,)."""
    return 1.0 + strain * (volume_ratio - 1.0)

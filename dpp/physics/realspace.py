"""Real-space transform of radial form factors (physics.md §12).

v(r) = (1/2π² r) ∫ q sin(qr) v(q) dq, discretised as a plain rectangle sum on a uniform
q grid with both ends included.
"""

from __future__ import annotations

import math

import torch


def q_grid(q_max: float, n_q: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Uniform grid q_j = j·q_max/(n_q − 1), endpoints included (1/Bohr)."""
    return torch.linspace(0.0, q_max, n_q, dtype=dtype)


def r_grid(r_max: float, n_r: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Uniform grid of n_r radii from 0 to r_max (Bohr)."""
    return torch.linspace(0.0, r_max, n_r, dtype=dtype)


def to_real_space(q: torch.Tensor, values: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """v(r) in Hartree for form factors `values` (n_q, S) in Hartree·Bohr³ on grid `q`.

    Returns (n_r, S). At r = 0 the limit sin(qr)/r → q is used.
    """
    dq = q[1] - q[0]
    prefactor = 4.0 * math.pi * dq / (2.0 * math.pi) ** 3
    safe_r = torch.where(r > 0, r, torch.ones_like(r))
    kernel = torch.where(
        r[:, None] > 0,
        q[None, :] * torch.sin(r[:, None] * q[None, :]) / safe_r[:, None],
        (q * q)[None, :].expand(len(r), -1),
    )
    return prefactor * kernel @ values

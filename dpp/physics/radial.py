"""Radial integrals of the spin-orbit and nonlocal projectors as quadrature rules (physics.md §5.7).

Each integral ∫ r² j_l(Kr) j_l(K'r) w(r) dr becomes Σ_q c_q j_l(K r_q) j_l(K' r_q): a low-rank
matrix product over Gauss–Legendre nodes r_q (Bohr) with weights c_q = ω_q r_q² w(r_q).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from dpp.physics.constants import NL0_WIDTH, NL1_WIDTH, NL2_CENTER, SOC_WIDTH

GAUSSIAN_CUTOFF = 4.0 * math.sqrt(math.log(10.0))
"""Truncation radius in units of the width: exp(-(r/w)²) = 1e-16 there."""

SHIFTED_CUTOFF = NL2_CENTER + GAUSSIAN_CUTOFF
"""Upper limit R of the shifted-Gaussian integral J (Bohr)."""


def spherical_j1(x: torch.Tensor) -> torch.Tensor:
    """Spherical Bessel function j1(x) = sin x/x² − cos x/x, with a series below x = 0.1."""
    small = x.abs() < 0.1
    safe = torch.where(small, torch.ones_like(x), x)
    direct = torch.sin(safe) / safe**2 - torch.cos(safe) / safe
    x2 = x * x
    series = x * (1.0 / 3.0 - x2 * (1.0 / 30.0 - x2 * (1.0 / 840.0 - x2 / 45360.0)))
    return torch.where(small, series, direct)


def spherical_j0(x: torch.Tensor) -> torch.Tensor:
    """Spherical Bessel function j0(x) = sin x / x, with a series below x = 0.1."""
    small = x.abs() < 0.1
    safe = torch.where(small, torch.ones_like(x), x)
    x2 = x * x
    series = 1.0 - x2 * (1.0 / 6.0 - x2 * (1.0 / 120.0 - x2 / 5040.0))
    return torch.where(small, series, torch.sin(safe) / safe)


def _gauss_legendre(upper: float, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    nodes, weights = np.polynomial.legendre.leggauss(n_nodes)
    return 0.5 * upper * (nodes + 1.0), 0.5 * upper * weights


def gaussian_rule(width: float, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes (Bohr) and weights for ∫_0^∞ r² f(r) exp(-r²/w²) dr."""
    r, w = _gauss_legendre(GAUSSIAN_CUTOFF * width, n_nodes)
    return r, w * r**2 * np.exp(-((r / width) ** 2))


def shifted_rule(n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes (Bohr) and weights for ∫_0^R r² f(r) exp(-(r-1.5)²) dr."""
    r, w = _gauss_legendre(SHIFTED_CUTOFF, n_nodes)
    return r, w * r**2 * np.exp(-((r - NL2_CENTER) ** 2))


def projector_rules(n_nodes: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Quadrature rules of the four channels: spin-orbit, nonlocal 1 and 2 (l = 1) and the
    nonlocal s-channel nl0 (l = 0)."""
    return {
        "soc": gaussian_rule(SOC_WIDTH, n_nodes),
        "nl1": gaussian_rule(NL1_WIDTH, n_nodes),
        "nl2": shifted_rule(n_nodes),
        "nl0": gaussian_rule(NL0_WIDTH, n_nodes),
    }


def radial_integral(
    k1: torch.Tensor, k2: torch.Tensor, rule: tuple[np.ndarray, np.ndarray]
) -> torch.Tensor:
    """Σ_q c_q j1(k1 r_q) j1(k2 r_q) for broadcastable |K| arrays (1/Bohr)."""
    r = torch.as_tensor(rule[0], dtype=k1.dtype, device=k1.device)
    c = torch.as_tensor(rule[1], dtype=k1.dtype, device=k1.device)
    return (spherical_j1(k1[..., None] * r) * spherical_j1(k2[..., None] * r) * c).sum(-1)

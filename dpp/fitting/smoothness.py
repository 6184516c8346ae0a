"""Smoothness of the network form factors v_s(q): a curvature regulariser and a count of
turning points.

The bands fix v_s only at the few |G − G'| of each crystal's basis; between those shells a
network is free, and an optimiser that uses that freedom to the full gives a v(q) that swings
between the shells and does not transfer (a strained crystal samples other |G − G'|). The
regulariser R = λ · N_k · Σ_s mean_q (d²v_s/dq²)² over (Q_LOW, largest |G − G'|] keeps v(q)
as straight as the bands allow. Straight is not small: a smooth departure from the starting
curve of many Hartree·Bohr³ costs little curvature, and such a curve is as far from a
screened atomic potential as a zigzag one. The departure penalty D = μ · N_k · Σ_s mean_q
(v_s − p_s)² bounds its size. Both diagonalise nothing, so Gauss–Newton evaluates them
exactly inside its model.
"""

from __future__ import annotations

import numpy as np
import torch

from dpp.fitting.terms import GlobalTerm
from dpp.physics.basis import largest_transfer
from dpp.physics.hamiltonian import PseudopotentialHamiltonian

Q_LOW = 0.05
"""1/Bohr: the start of the smoothness range (the q → 0 limit is set by the long-range tail)."""
CURVATURE_POINTS = 200
"""Grid points of the curvature integral."""
SWING = 0.03
"""A turning point counts when v swings back by more than this fraction of max |v|."""


def curvature_penalty(values: torch.Tensor, spacing: float) -> torch.Tensor:
    """Σ_s mean_q (d²v_s/dq²)² of `values` (M, S) on a uniform grid of `spacing` 1/Bohr,
    by central second differences ((Hartree·Bohr³)²·Bohr⁴)."""
    second = (values[2:] - 2.0 * values[1:-1] + values[:-2]) / (spacing * spacing)
    return second.pow(2).mean(dim=0).sum()


def departure_penalty(values: torch.Tensor) -> torch.Tensor:
    """Σ_s mean_q v_s(q)² of `values` (M, S) on a uniform grid ((Hartree·Bohr³)²)."""
    return values.pow(2).mean(dim=0).sum()


def turning_points(values: np.ndarray, swing: float = SWING) -> int:
    """Extrema of a sampled curve (M,) at which it turns back by more than `swing`·max|v|: a
    zigzag count that ignores wiggles smaller than that (any units)."""
    threshold = swing * float(np.max(np.abs(values)))
    low = high = float(values[0])
    count, direction, extreme = 0, 0, low
    for value in map(float, values[1:]):
        if direction == 0:
            low, high = min(low, value), max(high, value)
            if value - low > threshold:
                direction, extreme = 1, value
            elif high - value > threshold:
                direction, extreme = -1, value
        elif direction * (value - extreme) > 0:
            extreme = value
        elif abs(value - extreme) > threshold:
            count, direction, extreme = count + 1, -direction, value
    return count


def smoothness_grid(q_max: float, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The q grid (1/Bohr) of the regulariser and the turning-point count: (Q_LOW, q_max]."""
    return torch.linspace(Q_LOW, q_max, CURVATURE_POINTS, dtype=dtype)


class SmoothnessTerm(GlobalTerm):
    """λ · N_k · Σ_s mean_q ((v_s − p_s)''(q))² over (Q_LOW, `q_max`] (label `smoothness`)
    and μ · N_k · Σ_s mean_q (v_s − p_s)² (label `departure`, μ = `departure`), the active
    ones, none without a network form factor; N_k (all systems' k-points) scales them like
    the band loss. The reference curve p is 0, or `prior` ((M, S) on the grid,
    Hartree·Bohr³): then only the departure from it costs."""

    name = "smoothness"
    solves = False

    def __init__(
        self,
        strength: float,
        q_max: float,
        n_kpoints: int,
        prior: torch.Tensor | None = None,
        *,
        departure: float = 0.0,
    ) -> None:
        self.strength = strength
        self.factor = strength * n_kpoints
        self.departure = departure
        self.departure_factor = departure * n_kpoints
        self.q = smoothness_grid(q_max)
        self.spacing = float(self.q[1] - self.q[0])
        self.prior = prior
        self._on_device: dict[torch.device, tuple[torch.Tensor, torch.Tensor | None]] = {}

    @property
    def active(self) -> bool:
        return self.strength > 0.0 or self.departure > 0.0

    def values(self, hamiltonian: PseudopotentialHamiltonian) -> dict[str, torch.Tensor]:
        if not hamiltonian.uses_network:
            return {}
        device = hamiltonian.pp_fixed.device
        if device not in self._on_device:
            prior = None if self.prior is None else self.prior.to(device)
            self._on_device[device] = (self.q.to(device), prior)
        q, prior = self._on_device[device]
        values = hamiltonian.model(q[:, None])
        if prior is not None:
            values = values - prior
        out = {}
        if self.strength > 0.0:
            out["smoothness"] = self.factor * curvature_penalty(values, self.spacing)
        if self.departure > 0.0:
            out["departure"] = self.departure_factor * departure_penalty(values)
        return out


def form_factor_turning_points(hamiltonian: PseudopotentialHamiltonian) -> dict[str, int]:
    """Turning points of every species' v_s(q) over (Q_LOW, largest |G − G'| of the bases]
    (none without a network form factor)."""
    if not hamiltonian.uses_network:
        return {}
    q_max = max(largest_transfer(system.settings.max_ke) for system in hamiltonian.systems)
    q = smoothness_grid(q_max).to(hamiltonian.pp_fixed.device)
    with torch.no_grad():
        values = hamiltonian.form_factors(q).cpu().numpy()
    return {s: turning_points(values[:, i]) for i, s in enumerate(hamiltonian.species)}

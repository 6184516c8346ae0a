"""Acceptance rules: square-root Metropolis (physics.md §10.1), the two-temperature switch
(§10.2) and the replica-exchange rule of parallel tempering."""

from __future__ import annotations

import math
from dataclasses import dataclass


def metropolis_accept(new: float, current: float, best: float, beta: float, u: float) -> bool:
    """Accept if new < best, else if exp(−β (√new − √current)) > u (u ~ U[0, 1)); a NaN or
    infinite cost is never accepted."""
    if not math.isfinite(new):
        return False
    if new < best:
        return True
    exponent = -beta * (math.sqrt(new) - math.sqrt(current))
    return exponent > 0 or math.exp(exponent) > u


def exchange_probability(beta_i: float, beta_j: float, energy_i: float, energy_j: float) -> float:
    """Swap probability min(1, exp((β_i − β_j)(E_i − E_j))) of two replicas (E = √cost)."""
    exponent = (beta_i - beta_j) * (energy_i - energy_j)
    return 1.0 if exponent >= 0 else math.exp(exponent)


@dataclass
class TemperatureSwitch:
    """Temperature index t ∈ {0, 1} and step counter c of the analytic engine (§10.2)."""

    steps_at_temp: tuple[int, int]
    index: int = 0
    counter: int = 0

    def advance(self) -> None:
        """c += 1, then switch 0 → 1 when c ≥ n0 and, in the same call, 1 → 0 when c ≥ n1."""
        self.counter += 1
        if self.index == 0 and self.counter >= self.steps_at_temp[0]:
            self.index, self.counter = 1, 0
        if self.index == 1 and self.counter >= self.steps_at_temp[1]:
            self.index, self.counter = 0, 0

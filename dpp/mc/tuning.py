"""Self-tuning step sizes for a Monte Carlo burn-in, then frozen (a valid Metropolis chain).

During the burn-in the chain moves one parameter group at a time, in blocks of `block`
trials per group (round-robin). After each block the group's step scale is multiplied by
exp(acceptance − target), bounded to [1/4, 4] per block (Robbins–Monro in log scale). After
the burn-in every group moves together with its tuned scale divided by √(number of groups),
so that a joint move changes the cost about as much as one tuned single-group move did; from
then on the scales never change, and the chain is an ordinary Metropolis chain.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dpp.slots import NONLOCAL, WANG_ZUNGER, Slot

log = logging.getLogger(__name__)
MAX_FACTOR = 4.0
"""Largest change of a group's scale after one block."""


@dataclass
class StepTuner:
    """Per-group step scales of one chain (replica) and their burn-in bookkeeping."""

    groups: tuple[str, ...]
    burn_in: int  # trials of the burn-in (0: no tuning, scales 1)
    target: float = 0.3  # acceptance the burn-in steers to
    block: int = 10  # trials of one group before its scale adapts
    scales: np.ndarray = field(default=None)  # type: ignore[assignment]
    accepted: int = 0  # in the current block
    tried: int = 0

    def __post_init__(self) -> None:
        if self.scales is None:
            self.scales = np.ones(len(self.groups))

    def tuning(self, trial: int) -> bool:
        """Whether 1-based `trial` is a burn-in trial."""
        return trial <= self.burn_in and bool(self.groups)

    def group(self, trial: int) -> int:
        """The group moved at burn-in `trial` (blocks of `block` trials, round-robin)."""
        return ((trial - 1) // self.block) % len(self.groups)

    def scale_vector(self, trial: int) -> np.ndarray:
        """The scale of every group for `trial`: one group at its scale during the burn-in
        (the others 0: not moved), afterwards all at scale/√groups."""
        if self.tuning(trial):
            scales = np.zeros(len(self.groups))
            index = self.group(trial)
            scales[index] = self.scales[index]
            return scales
        if not self.burn_in or not self.groups:
            return np.ones(len(self.groups))
        return self.scales / math.sqrt(len(self.groups))

    def record(self, trial: int, accepted: bool) -> None:
        """Count a burn-in trial; at the end of a block adapt that block's group."""
        if not self.tuning(trial):
            return
        self.tried += 1
        self.accepted += int(accepted)
        if self.tried < self.block and trial < self.burn_in:
            return
        index = self.group(trial)
        rate = self.accepted / self.tried
        factor = min(MAX_FACTOR, max(1.0 / MAX_FACTOR, math.exp(rate - self.target)))
        if rate == 0.0:
            factor = 1.0 / MAX_FACTOR
        self.scales[index] *= factor
        log.info(
            "burn-in trial %d: group %s acceptance %.2f, step scale x%.3g -> %.4g",
            trial,
            self.groups[index],
            rate,
            factor,
            self.scales[index],
        )
        self.accepted = self.tried = 0
        if trial >= self.burn_in:
            scales = ", ".join(
                f"{g} {s:.4g}" for g, s in zip(self.groups, self.scales, strict=True)
            )
            log.info("burn-in done after %d trials; step scales frozen: %s", trial, scales)

    def state_dict(self) -> dict[str, Any]:
        return {"scales": self.scales.tolist(), "accepted": self.accepted, "tried": self.tried}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scales = np.asarray(state["scales"], dtype=float)
        self.accepted, self.tried = int(state["accepted"]), int(state["tried"])


def analytic_groups(active: Sequence[int], steps: np.ndarray) -> dict[str, tuple[int, ...]]:
    """Slot groups of the analytic engine that move (active slots with a non-zero step)."""
    candidates = {
        "local a0-a3": tuple(int(s) for s in WANG_ZUNGER),
        "long range a4": (int(Slot.LONG_RANGE),),
        "spin-orbit a5": (int(Slot.SPIN_ORBIT),),
        "nonlocal a6-a7": tuple(int(s) for s in NONLOCAL),
        "strain a8": (int(Slot.STRAIN),),
        "nonlocal s a9": (int(Slot.NONLOCAL_0),),
    }
    moving = [s for s in active if np.any(steps[:, s] != 0)]
    return {
        name: tuple(s for s in slots if s in moving)
        for name, slots in candidates.items()
        if any(s in moving for s in slots)
    }

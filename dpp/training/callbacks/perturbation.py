"""The perturbEvery kick of gradient training (physics.md §8)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytorch_lightning as pl

from dpp.fitting.perturb import kick
from dpp.training.callbacks.after_step import AfterStep
from dpp.training.module import PseudopotentialModule

log = logging.getLogger(__name__)


class Perturbation(AfterStep):
    """Monte Carlo mode-1 kick after the step of epochs e > 0 (0-based) with e % every == 0:
    network x ← x·(1 + U(−ε, ε)), a5..a7 ← a·(1 + U(−ε/100, ε/100)); `every` ≤ 0 = never,
    and never after a step that stopped the fit on a NaN/inf. The generator state is part of
    the resume checkpoint."""

    def __init__(self, every: int = -1, epsilon: float = 0.1, seed: int = 0) -> None:
        self.every = every
        self.epsilon = epsilon
        self.rng = np.random.default_rng(seed)

    @property
    def moves_parameters(self) -> bool:
        """Whether kicks happen: a converged Gauss–Newton fit then waits for the next one."""
        return self.every > 0

    def after_step(self, trainer: pl.Trainer, pl_module: PseudopotentialModule, epoch: int) -> None:
        if pl_module.nonfinite is not None:
            return  # the fit stopped on the last finite state: leave it as it is
        e = epoch - 1  # 0-based, as perturbEvery counts
        if self.every <= 0 or e == 0 or e % self.every:
            return
        kick(pl_module.hamiltonian, self.epsilon, self.rng)
        log.info("epoch %d: random perturbation (epsilon %g)", epoch, self.epsilon)

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state_dict["rng"]

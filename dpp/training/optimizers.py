"""What the optimiser configs (conf/optimizer/*.yaml, built by `_target_`) do not cover: the
original's learning-rate schedule and loading init_AdamState.pth."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from dpp.errors import InputError
from dpp.models.checkpoint import safe_torch_load

log = logging.getLogger(__name__)
OPTIMIZER_FILE = "a torch checkpoint saved by dpp or DeepPseudopot (an optimiser state_dict)"


def step_after_first_epoch(
    optimizer: torch.optim.Optimizer, step_size: int, gamma: float
) -> torch.optim.lr_scheduler.LRScheduler:
    """The original's schedule (physics.md §8), stepped after every epoch: lr ← γ·lr after
    epochs e > 0 with e % step_size == 0 (0-based), so the lr of epoch e is
    lr0·γ^⌊(e − 1)/step_size⌋ for e ≥ 1 (lr0 for e = 0). That is StepLR started one epoch late."""
    return torch.optim.lr_scheduler.SequentialLR(
        optimizer,
        [
            torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=1),
            torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma),
        ],
        milestones=[1],
    )


def read_optimizer_state(path: Path) -> dict[str, Any]:
    """Read an optimiser state_dict file (init_AdamState.pth) safely: an unreadable file, or
    one that is not a torch.optim state_dict, is an InputError (checked before any work)."""
    state = safe_torch_load(path, what=OPTIMIZER_FILE)
    if not (
        isinstance(state, Mapping)
        and isinstance(state.get("state"), Mapping)
        and isinstance(state.get("param_groups"), list)
    ):
        found = sorted(map(str, state)) if isinstance(state, Mapping) else type(state).__name__
        raise InputError(
            path,
            "not an optimiser state_dict",
            expected="a mapping with 'state' and 'param_groups' (torch.optim state_dict)",
            found=str(found),
        )
    return dict(state)


def load_optimizer_state(optimizer: torch.optim.Optimizer, path: Path) -> bool:
    """Load init_AdamState.pth into an Adam optimiser, keeping every group's configured lr.

    Other optimisers ignore the file (as the original); an unreadable file is an InputError,
    a state whose shapes do not match the parameters is skipped with a warning.
    """
    if type(optimizer) is not torch.optim.Adam:
        log.info("%s: not loaded (the optimiser is %s, not Adam)", path, type(optimizer).__name__)
        return False
    lrs = [group["lr"] for group in optimizer.param_groups]
    state = read_optimizer_state(path)
    try:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        for index, entry in state["state"].items():
            if entry["exp_avg"].shape != params[int(index)].shape:
                raise ValueError(f"parameter {index} has another shape")
        optimizer.load_state_dict(state)
    except (ValueError, KeyError, IndexError, RuntimeError, TypeError) as exc:
        warnings.warn(f"{path}: optimiser state skipped ({exc})", stacklevel=2)
        return False
    for group, lr in zip(optimizer.param_groups, lrs, strict=True):
        group["lr"] = lr
    log.info("optimizer state loaded from %s (lr kept at %g)", path, lrs[0])
    return True


class WarmupPlateau(torch.optim.lr_scheduler.ReduceLROnPlateau):
    """A linear warm-up over `warmup` epochs to the configured lr, then ReduceLROnPlateau on
    the training loss: lr ← `gamma`·lr when the loss has not improved (relative `threshold`)
    for `patience` epochs, at most once every `step_size` epochs (its cooldown), never below
    `min_lr`. `gamma` and `step_size` are NN_config's scheduler_gamma and schedulerStep."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        gamma: float = 0.5,
        step_size: int = 1,
        patience: int = 2,
        warmup: int = 5,
        threshold: float = 1e-3,
        min_lr: float = 0.0,
    ) -> None:
        super().__init__(
            optimizer,
            mode="min",
            factor=gamma,
            patience=patience,
            threshold=threshold,
            cooldown=max(0, step_size - 1),
            min_lr=min_lr,
        )
        self.warmup = warmup
        self.warmed = 0
        self.targets = [group["lr"] for group in optimizer.param_groups]
        self._ramp()

    def _ramp(self) -> None:
        fraction = min(1.0, (self.warmed + 1) / max(self.warmup, 1))
        for group, target in zip(self.optimizer.param_groups, self.targets, strict=True):
            group["lr"] = target * fraction

    def step(self, metrics: float) -> None:  # type: ignore[override]
        if self.warmed < self.warmup:
            self.warmed += 1
            self._ramp()
            return
        super().step(metrics)

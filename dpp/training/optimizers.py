"""What the optimiser configs (conf/optimizer/*.yaml, built by `_target_`) do not cover: the
original's learning-rate schedule and loading init_AdamState.pth."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch

log = logging.getLogger(__name__)


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


def load_optimizer_state(optimizer: torch.optim.Optimizer, path: Path) -> bool:
    """Load init_AdamState.pth into an Adam optimiser, keeping every group's configured lr.

    Other optimisers ignore the file (as the original); a state whose shapes do not match the
    parameters is skipped with a warning.
    """
    if type(optimizer) is not torch.optim.Adam:
        log.info("%s: not loaded (the optimiser is %s, not Adam)", path, type(optimizer).__name__)
        return False
    lrs = [group["lr"] for group in optimizer.param_groups]
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        params = [p for group in optimizer.param_groups for p in group["params"]]
        for index, entry in state.get("state", {}).items():
            if entry["exp_avg"].shape != params[int(index)].shape:
                raise ValueError(f"parameter {index} has another shape")
        optimizer.load_state_dict(state)
    except (ValueError, KeyError, IndexError, RuntimeError) as exc:
        warnings.warn(f"{path}: optimiser state skipped ({exc})", stacklevel=2)
        return False
    for group, lr in zip(optimizer.param_groups, lrs, strict=True):
        group["lr"] = lr
    log.info("optimizer state loaded from %s (lr kept at %g)", path, lrs[0])
    return True

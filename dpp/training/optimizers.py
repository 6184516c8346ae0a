"""Optimisers of the band training and the learning-rate schedule (physics.md §8)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from pathlib import Path

import torch

from dpp.errors import InputError
from dpp.io.config import OPTIMIZERS

log = logging.getLogger(__name__)

_BETAS = ("adam", "adamw", "adamax", "nadam", "radam")


def build_optimizer(
    name: str,
    params: Iterable[torch.nn.Parameter],
    lr: float,
    *,
    sgd_momentum: float = 0.0,
    adam_beta1: float = 0.9,
    adam_beta2: float = 0.999,
    lbfgs_max_iter: int = 20,
) -> torch.optim.Optimizer:
    """The torch optimiser `name` (seeds' list) with lr, momentum and betas passed for real.

    sparseadam is rejected: it only accepts sparse gradients, and the network's are dense.
    """
    params = list(params)
    if name == "sparseadam":
        raise InputError(
            None,
            "sparseadam cannot train this model",
            key="optimizer.name",
            expected="an optimiser for dense gradients (e.g. adam); SparseAdam accepts only "
            "sparse gradients (nn.Embedding(sparse=True)), and every pseudopotential "
            "parameter has a dense gradient",
            found="sparseadam",
        )
    betas = (adam_beta1, adam_beta2)
    factories = {
        "adam": lambda: torch.optim.Adam(params, lr=lr, betas=betas),
        "adamw": lambda: torch.optim.AdamW(params, lr=lr, betas=betas),
        "adamax": lambda: torch.optim.Adamax(params, lr=lr, betas=betas),
        "nadam": lambda: torch.optim.NAdam(params, lr=lr, betas=betas),
        "radam": lambda: torch.optim.RAdam(params, lr=lr, betas=betas),
        "sgd": lambda: torch.optim.SGD(params, lr=lr, momentum=sgd_momentum),
        "asgd": lambda: torch.optim.ASGD(params, lr=lr),
        "lbfgs": lambda: torch.optim.LBFGS(params, lr=lr, max_iter=lbfgs_max_iter),
        "adadelta": lambda: torch.optim.Adadelta(params, lr=lr),
        "adagrad": lambda: torch.optim.Adagrad(params, lr=lr),
        "rmsprop": lambda: torch.optim.RMSprop(params, lr=lr),
    }
    if name not in factories:
        raise InputError(
            None,
            "unknown optimiser",
            key="optimizer.name",
            expected="one of " + ", ".join(OPTIMIZERS),
            found=repr(name),
        )
    if name not in _BETAS and (adam_beta1, adam_beta2) != (0.9, 0.999):
        log.info("optimizer %s ignores adam_beta1/adam_beta2", name)
    if name != "sgd" and sgd_momentum:
        log.info("optimizer %s ignores sgd_momentum", name)
    return factories[name]()


def load_optimizer_state(optimizer: torch.optim.Optimizer, path: Path, lr: float) -> bool:
    """Load init_AdamState.pth into an Adam optimiser and reset every group's lr to `lr`.

    A state whose shapes do not match the parameters is skipped with a warning.
    """
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
    for group in optimizer.param_groups:
        group["lr"] = lr
    return True


def decays_after(epoch: int, step: int) -> bool:
    """True when the lr decays after 0-based epoch `epoch` (e > 0 and e % step == 0)."""
    return epoch > 0 and step > 0 and epoch % step == 0


def lr_at_epoch(lr0: float, gamma: float, step: int, epoch: int) -> float:
    """Learning rate used during 0-based epoch e: lr0·γ^k, k(0) = 0, k(e) = ⌊(e−1)/step⌋."""
    return lr0 * gamma ** (0 if epoch == 0 else (epoch - 1) // step)

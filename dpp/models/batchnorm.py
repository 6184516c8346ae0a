"""Running statistics of batch-norm networks, independent of how k-points are batched.

In training mode a batch-norm layer normalises with the statistics of its input (for dpp's
networks: every |G_m − G_n| of one system, the same at every k-point) and updates its running
statistics, which evaluation mode then uses. Left to the loss evaluations, the number of
updates per step would follow the k-point batching, the DDP sharding and the L-BFGS line
search. Instead the training loop freezes the running statistics during loss evaluations and
updates them explicitly once per step, from every system's input in system order, the same on
every rank.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


def batchnorm_layers(model: nn.Module | None) -> list[nn.modules.batchnorm._BatchNorm]:
    """The batch-norm layers of `model` (empty for None or a network without them)."""
    if model is None:
        return []
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def repeatable(model: nn.Module | None) -> bool:
    """Whether `model`'s output depends on its parameters alone: no batch norm (statistics
    updated every step) and no active dropout (a new mask every evaluation)."""
    if model is None:
        return True
    dropout = any(isinstance(m, nn.Dropout) and m.p > 0 for m in model.modules())
    return not dropout and not batchnorm_layers(model)


@contextmanager
def frozen_statistics(model: nn.Module | None) -> Iterator[None]:
    """Within the block, training-mode calls normalise with their batch statistics as usual
    but leave the running statistics (and their counter) unchanged."""
    layers = [m for m in batchnorm_layers(model) if m.track_running_stats]
    for layer in layers:
        layer.track_running_stats = False
    try:
        yield
    finally:
        for layer in layers:
            layer.track_running_stats = True


def update_statistics(model: nn.Module, inputs: torch.Tensor, times: int = 1) -> None:
    """`times` training-mode calls of `model` on `inputs` (M, 1): each one update of every
    batch-norm layer's running statistics. The mode of `model` is restored."""
    training = model.training
    model.train()
    with torch.no_grad():
        for _ in range(times):
            model(inputs)
    model.train(training)

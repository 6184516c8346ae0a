"""Sums and broadcasts over the ranks of a torch.distributed process group (DDP training),
each a no-op in a single process; used by the training loop and by Gauss–Newton alike."""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.distributed as dist


def distributed() -> bool:
    """True inside an initialised process group of more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def sum_over_ranks(tensors: Iterable[torch.Tensor]) -> None:
    """All-reduce (sum) every tensor in place; a no-op in a single process. With nccl the
    tensors must be on the rank's GPU."""
    if not distributed():
        return
    for tensor in tensors:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)


def broadcast_from_zero(tensors: Iterable[torch.Tensor]) -> None:
    """Overwrite every tensor in place with global rank 0's; a no-op in a single process."""
    if not distributed():
        return
    with torch.no_grad():
        for tensor in tensors:
            dist.broadcast(tensor.detach(), src=0)


def sum_gradients(parameters: Iterable[torch.nn.Parameter]) -> None:
    """Sum the accumulated gradients of all ranks (missing gradients count as zero)."""
    if not distributed():
        return
    for parameter in parameters:
        if parameter.grad is None:
            parameter.grad = torch.zeros_like(parameter)
        dist.all_reduce(parameter.grad, op=dist.ReduceOp.SUM)

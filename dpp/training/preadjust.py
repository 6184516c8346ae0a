"""Pre-adjust moves before epoch 0 (physics.md §8): single-parameter steps on the largest
gradient, keeping the state of the move whose largest |gradient| was smallest."""

from __future__ import annotations

import copy
import logging

import torch

from dpp.io.writers import save_torch_atomic
from dpp.training.module import PseudopotentialModule
from dpp.training.outputs import Reporter, evaluate_bands

log = logging.getLogger(__name__)


def pre_adjust(
    module: PseudopotentialModule,
    moves: int,
    step: float,
    generator: torch.Generator,
    reporter: Reporter,
) -> None:
    """P moves: full gradient, move the element with the largest |g| by −step·U(0,1)·sign(g),
    log the loss at x = p − P − 1, save and evaluate; finally reload the best-conditioned
    state (smallest largest-|g| measured before its move; ties: the later move)."""
    named = module.trainable()
    best: tuple[float, dict] | None = None
    for p in range(moves):
        for _, tensor in named:
            tensor.grad = None
        total, _, _ = module.full_pass(backward=True)
        flat = [(t.grad.abs().max(), i) for i, (_, t) in enumerate(named) if t.grad is not None]
        largest, which = max(flat, key=lambda item: float(item[0]))
        tensor = named[which][1]
        position = int(tensor.grad.abs().argmax())
        with torch.no_grad():
            gradient = tensor.grad.reshape(-1)[position]
            move = step * float(torch.rand(1, generator=generator, dtype=torch.float64))
            tensor.view(-1)[position] -= move * torch.sign(gradient)
        module.train_history.append((p - moves - 1, total))
        log.info(
            "pre-adjust move %d: loss %.6g, |g|max %.4g on %s[%d]",
            p + 1,
            total,
            float(largest),
            named[which][0],
            position,
        )
        prefix = f"preEpoch_{p + 1}"
        if module.network is not None:
            path = reporter.run_dir / f"{prefix}_PPmodel.pth"
            save_torch_atomic(module.network.state_dict(), path)
        reporter.bands(prefix, evaluate_bands(module.hamiltonian))
        if best is None or float(largest) <= best[0]:
            best = (float(largest), copy.deepcopy(module.hamiltonian.state_dict()))
    for _, tensor in named:
        tensor.grad = None
    if best is not None:
        module.hamiltonian.load_state_dict(best[1])
        log.info("pre-adjust: kept the state with largest |g| = %.4g", best[0])

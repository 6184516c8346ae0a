"""Pre-adjust moves before epoch 0 (physics.md §8): single-parameter steps on the largest
gradient, keeping the state of the move whose largest |gradient| was smallest."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence

import torch

from dpp.fitting.objective import Objective, accumulate, trainable
from dpp.physics.hamiltonian import PseudopotentialHamiltonian

log = logging.getLogger(__name__)


def pre_adjust(
    objective: Objective,
    hamiltonian: PseudopotentialHamiltonian,
    batches: Sequence[torch.Tensor],
    moves: int,
    step: float,
    generator: torch.Generator,
    on_move: Callable[[int], None] | None = None,
) -> list[tuple[int, float]]:
    """P moves: full gradient, move the element with the largest |g| by −step·U(0,1)·sign(g),
    call `on_move(p)` (p = 1 … P) to save and evaluate; finally reload the best-conditioned
    state (smallest largest-|g| measured before its move; ties: the later move). Returns the
    losses before each move at x = p − P − 1 (eV²)."""
    named = trainable(hamiltonian)
    best: tuple[float, dict] | None = None
    history = []
    for p in range(moves):
        for _, tensor in named:
            tensor.grad = None
        per_system, terms = accumulate(objective, hamiltonian, batches)
        total = float(per_system.sum()) + sum(terms.values())
        flat = [(t.grad.abs().max(), i) for i, (_, t) in enumerate(named) if t.grad is not None]
        largest, which = max(flat, key=lambda item: float(item[0]))
        tensor = named[which][1]
        position = int(tensor.grad.abs().argmax())
        with torch.no_grad():
            gradient = tensor.grad.reshape(-1)[position]
            move = step * float(torch.rand(1, generator=generator, dtype=torch.float64))
            tensor.view(-1)[position] -= move * torch.sign(gradient)
        history.append((p - moves - 1, total))
        log.info(
            "pre-adjust move %d: loss %.6g eV^2, |g|max %.4g on %s[%d]",
            p + 1,
            total,
            float(largest),
            named[which][0],
            position,
        )
        if on_move is not None:
            on_move(p + 1)
        if best is None or float(largest) <= best[0]:
            best = (float(largest), copy.deepcopy(hamiltonian.state_dict()))
    for _, tensor in named:
        tensor.grad = None
    if best is not None:
        hamiltonian.load_state_dict(best[1])
        log.info("pre-adjust: kept the state with largest |g| = %.4g", best[0])
    return history

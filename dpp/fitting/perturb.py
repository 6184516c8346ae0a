"""Parameter moves: Monte Carlo modes 1–7 (physics.md §10.1), analytic steps (§10.2) and
the training kick of perturbEvery (§8).

All randomness comes from a numpy Generator, so a chain is reproducible from its seed and the
generator state can be checkpointed. Every function changes the given tensors in place.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

from dpp.physics.hamiltonian import PseudopotentialHamiltonian
from dpp.slots import LEGACY_SLOTS, NONLOCAL, SPIN_ORBIT_NONLOCAL, Slot

MODES = (1, 2, 3, 4, 5, 6, 7)
NETWORK_MODES = (1, 2, 3, 4, 5)
"""The modes that move the network weights (6 and 7 move only a5–a7)."""
KICK_PROBABILITY = 0.6


def _signs(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0)


def _to(values: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(values, dtype=like.dtype, device=like.device).reshape(like.shape)


def _mode2_factor(x: np.ndarray, eps: float, rng: np.random.Generator, legacy: bool) -> np.ndarray:
    u = rng.random(x.shape)
    s = _signs(rng, x.shape)
    factor = 1.0 + s * u * eps
    factor = np.where(np.abs(x) < 0.01, 1.0 + s * u * 10.0 * eps, factor)
    if legacy:  # the original: ±30, and values below −30 pushed away from zero
        factor = np.where(x > 30.0, 1.0 - u * eps, factor)
        return np.where(x < -30.0, 1.0 + u * eps, factor)
    return np.where(np.abs(x) > 20.0, 1.0 - u * eps, factor)


def _mode3(x: np.ndarray, eps: float, rng: np.random.Generator) -> np.ndarray:
    flat = x.ravel().copy()
    if flat.size < 2:  # [proposal] std of one element is NaN: skip
        return x
    mean, std = flat.mean(), flat.std(ddof=1)
    z = (flat - mean) / (std + 1e-8)
    chosen = rng.choice(flat.size, size=flat.size // 2, replace=False)
    z[chosen] += eps * rng.standard_normal(chosen.size)
    return (z * std + mean).reshape(x.shape)


@torch.no_grad()
def perturb_network(
    tensors: Iterable[torch.Tensor],
    mode: int,
    eps: float,
    rng: np.random.Generator,
    *,
    legacy: bool = False,
) -> None:
    """Move every trainable network tensor by mode `mode` with magnitude ε = `eps` (nothing
    for a mode outside NETWORK_MODES)."""
    if not moves_network(mode):
        return
    for tensor in tensors:
        x = tensor.detach().cpu().numpy().astype(np.float64)
        if mode == 1:
            new = x * (1.0 + rng.uniform(-eps, eps, x.shape))
        elif mode == 2:
            new = x * _mode2_factor(x, eps, rng, legacy)
        elif mode == 3:
            new = _mode3(x, eps, rng)
        else:  # modes 4 and 5
            if rng.random() >= KICK_PROBABILITY:
                continue
            new = x + _signs(rng, x.shape) * (eps if mode == 4 else eps / 10.0)
        tensor.copy_(_to(new, tensor))


def moves_network(mode: int) -> bool:
    """Whether perturbation mode `mode` moves the network weights."""
    return mode in NETWORK_MODES


def moved_soc_slots(mode: int, active: Sequence[int]) -> list[int]:
    """The a5–a7 slots among `active` that perturbation mode `mode` moves: a5 (mode 6),
    a6/a7 (mode 7), none (mode 3), else all three."""
    if mode == 3:
        return []
    wanted = {6: (Slot.SPIN_ORBIT,), 7: NONLOCAL}.get(mode, SPIN_ORBIT_NONLOCAL)
    return [slot for slot in wanted if slot in active]


@torch.no_grad()
def perturb_soc(
    table: torch.Tensor,
    mode: int,
    eps: float,
    rng: np.random.Generator,
    *,
    active: Sequence[int],
    legacy: bool = False,
) -> None:
    """Move a5–a7 of the (n_species, 10) table by mode `mode`; only slots in `active` move."""
    slots = moved_soc_slots(mode, active)
    if not slots:
        return
    a = table[:, slots].cpu().numpy().copy()
    if mode == 1:
        a = a * (1.0 + rng.uniform(-eps / 100.0, eps / 100.0, a.shape))
    elif mode == 2:
        scale = eps / (100.0 if legacy else 1000.0)
        a = a * (1.0 + rng.uniform(-scale, scale, a.shape))
    else:
        size = {4: eps / (100.0 if legacy else 1000.0)}.get(mode, eps)
        kick = rng.random(a.shape) < KICK_PROBABILITY
        a = a + np.where(kick, _signs(rng, a.shape) * size, 0.0)
    table[:, slots] = torch.as_tensor(a, dtype=table.dtype, device=table.device)


@torch.no_grad()
def analytic_step(
    table: torch.Tensor, steps: torch.Tensor, modifier: float, rng: np.random.Generator
) -> None:
    """a_j ← a_j + U(−1, 1)·step_j·modifier for every species and slot (step 0 freezes).

    The numbers for a0..a8 are drawn first, as for a table of the original's nine slots;
    those for the s-channel a9 follow only when one of its steps is non-zero, so a seeded
    chain without it keeps its trajectory."""
    columns = [slice(0, LEGACY_SLOTS)]
    if bool(torch.any(steps[:, LEGACY_SLOTS:] != 0)):
        columns.append(slice(LEGACY_SLOTS, table.shape[1]))
    for part in columns:
        shape = tuple(table[:, part].shape)
        u = torch.as_tensor(rng.uniform(-1.0, 1.0, shape), dtype=table.dtype)
        table[:, part] += u.to(table.device) * steps[:, part] * modifier


@torch.no_grad()
def kick(hamiltonian: PseudopotentialHamiltonian, epsilon: float, rng: np.random.Generator) -> None:
    """The perturbEvery kick (physics.md §8): mode 1 with ε on the network and on a5..a7 of
    every species (fixed and trainable slots alike). The eigensolver's warm-start vectors are
    dropped: the next solves are dense."""
    if hamiltonian.uses_network:
        perturb_network(hamiltonian.model.parameters(), 1, epsilon, rng)
    table = hamiltonian.pp_table().detach().clone()
    perturb_soc(table, 1, epsilon, rng, active=SPIN_ORBIT_NONLOCAL)
    hamiltonian.pp_fixed.copy_(table)
    hamiltonian.pp_free.data.copy_(table[hamiltonian.pp_mask])
    hamiltonian.invalidate()

"""The sign of the nonlocal s-channel as a penalty (physics.md §7.8).

A valence s electron is orthogonal to the core s states and feels their repulsion, a p
electron less so: the s-channel correction a9 of a separable l = 0 projector is repulsive
(a9 ≥ 0). An attractive one binds spurious (ghost) states, which a fit to a few bands does
not see and which move into the gap under strain. The bound μ_b·N_k·Σ_s min(a9_s, 0)² keeps
a9 on the physical side; Gauss–Newton evaluates it exactly (it solves nothing).
"""

from __future__ import annotations

import torch

from dpp.fitting.terms import GlobalTerm
from dpp.physics.hamiltonian import PseudopotentialHamiltonian
from dpp.slots import Slot


class SChannelBound(GlobalTerm):
    """μ_b·N_k·Σ_s min(a9_s, 0)² (eV², as the band loss), label `s_channel_bound`."""

    name = "s_channel_bound"
    solves = False

    def __init__(self, strength: float, n_kpoints: int) -> None:
        self.strength = strength
        self.n_kpoints = n_kpoints

    @property
    def active(self) -> bool:
        return self.strength > 0

    def values(self, hamiltonian: PseudopotentialHamiltonian) -> dict[str, torch.Tensor]:
        attractive = torch.clamp(hamiltonian.pp_table()[:, Slot.NONLOCAL_0], max=0.0)
        return {self.name: self.strength * self.n_kpoints * (attractive**2).sum()}

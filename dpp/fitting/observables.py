"""Per-system global loss terms from auxiliary observables (physics.md §7.5, §13).

Deformation potentials of `expDefPot_X.par` enter once per system and step, outside the
k-batches, whatever the batching; the same term serves the analytic Monte Carlo engine's
legacy `fitDefPot` (its two-line file becomes two level rows weighted by defPotWeight).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from dpp.fitting.terms import GlobalTerm
from dpp.io.observables import DefPotTarget
from dpp.io.records import SystemData
from dpp.physics.hamiltonian import PseudopotentialHamiltonian
from dpp.physics.observables import deformation_loss


class DefPotTerm(GlobalTerm):
    """Σ_rows ω (D − D_ref)² (eV²) of every system with deformation-potential rows."""

    name = "defpot"

    def __init__(self, systems: Sequence[SystemData], weight: float = 1.0) -> None:
        self.rows: dict[int, tuple[DefPotTarget, ...]] = {
            system.index: system.defpot_targets for system in systems if system.defpot_targets
        }
        self.weight = weight

    @property
    def active(self) -> bool:
        return bool(self.rows)

    def values(self, hamiltonian: PseudopotentialHamiltonian) -> dict[str, torch.Tensor]:
        return {
            f"defpot_sys{index}": deformation_loss(hamiltonian, index, rows)
            for index, rows in self.rows.items()
        }

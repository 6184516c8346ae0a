"""Per-system global loss terms from auxiliary observables (physics.md §7.5, §13).

Deformation potentials (`expDefPot_X.par`) and electron–phonon couplings (`qpoints_X.par`,
`expCoupling_X.par`) enter once per system and step, outside the k-batches, whatever the
batching. The same terms serve the analytic Monte Carlo engine's fitDefPot (its two-line
file becomes two level rows weighted by defPotWeight) and fitCoupling (a mean over keys).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from dpp.fitting.terms import GlobalTerm
from dpp.io.observables import DefPotTarget
from dpp.io.records import SystemData
from dpp.physics.couplings import coupling_loss, electron_phonon_couplings
from dpp.physics.hamiltonian import PseudopotentialHamiltonian
from dpp.physics.observables import deformation_loss, deformation_potentials

COUPLING_REDUCTIONS = ("sum", "mean")


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

    def residuals(self, hamiltonian: PseudopotentialHamiltonian) -> dict[str, torch.Tensor]:
        """√ω (D − D_ref) of every row (eV), by label."""
        out = {}
        for index, rows in self.rows.items():
            values = deformation_potentials(hamiltonian, index, rows)
            reference, weights = (
                torch.tensor(column, dtype=values.dtype, device=values.device)
                for column in zip(*((row.d_ref, row.weight) for row in rows), strict=True)
            )
            out[f"defpot_sys{index}"] = weights.sqrt() * (values - reference)
        return out


class CouplingTerm(GlobalTerm):
    """Σ_keys w_q (|g| − |g_ref|)² (eV²/Bohr², `reduction="sum"`, gradient training) or its
    mean over the keys present in both sets (`"mean"`, the analytic Monte Carlo cost) for
    every system with coupling targets; g at the band edges of idxGap (physics.md §13.2)."""

    name = "coupling"

    def __init__(
        self, systems: Sequence[SystemData], weight: float = 1.0, reduction: str = "sum"
    ) -> None:
        if reduction not in COUPLING_REDUCTIONS:
            raise ValueError(f"reduction must be one of {COUPLING_REDUCTIONS}, got {reduction!r}")
        self.systems = {system.index: system for system in systems if system.couplings}
        self.weight = weight
        self.reduction = reduction

    @property
    def active(self) -> bool:
        return bool(self.systems)

    def couplings(
        self, hamiltonian: PseudopotentialHamiltonian, index: int
    ) -> dict[tuple[int, int, int, str], torch.Tensor]:
        """g of system `index` (eV/Bohr) by (atom, direction, q index, 'vb'|'cb')."""
        system = self.systems[index]
        return electron_phonon_couplings(
            hamiltonian, index, system.qpoints, qpoints_file=system.files.get("qpoints")
        )

    def values(self, hamiltonian: PseudopotentialHamiltonian) -> dict[str, torch.Tensor]:
        out = {}
        for index, system in self.systems.items():
            values = self.couplings(hamiltonian, index)
            loss = coupling_loss(values, system.couplings, system.qweights)
            if self.reduction == "mean":
                shared = sum(key in system.couplings.values for key in values)
                loss = loss / max(shared, 1)
            out[f"coupling_sys{index}"] = loss
        return out

    def residuals(self, hamiltonian: PseudopotentialHamiltonian) -> dict[str, torch.Tensor]:
        """√w_q (|g| − |g_ref|) of every key in both sets (eV/Bohr), divided by √(keys)
        with the mean, by label."""
        out = {}
        for index, system in self.systems.items():
            values = self.couplings(hamiltonian, index)
            reference = system.couplings.values
            keys = [key for key in values if key in reference]
            weights = torch.tensor(
                [float(system.qweights[key[2]]) for key in keys], dtype=torch.float64
            )
            if self.reduction == "mean":
                weights = weights / max(len(keys), 1)
            residuals = [values[key].abs() - abs(reference[key]) for key in keys]
            device = hamiltonian.pp_fixed.device
            stacked = (
                torch.stack(residuals)
                if residuals
                else torch.zeros(0, dtype=torch.float64, device=device)
            )
            out[f"coupling_sys{index}"] = weights.to(stacked.device).sqrt() * stacked
        return out

"""The normalised cost of the analytic Monte Carlo engine (physics.md §10.2) as loss terms:
Σ_X normalised band cost, plus [spin-orbit] Σ_s 10·(a5 − 8) for a5 > 8."""

from __future__ import annotations

import torch

from dpp.fitting.bands import BandTerm
from dpp.fitting.terms import GlobalTerm
from dpp.physics.hamiltonian import PseudopotentialHamiltonian
from dpp.slots import Slot

MISSING = 1e-15  # |E_ref| at or below this is a missing reference entry
SOC_LIMIT, SOC_PENALTY = 8.0, 10.0


class NormalisedBandTerm(BandTerm):
    """Σ_k w_k Σ_b u_b (E − E_ref)² / n_valid per system over entries with |E_ref| > 1e-15
    (eV²); n_valid counts the whole system, so the term is additive over k-points.

    With `opt_gaps`, neighbour gaps E_{b+1} − E_b are compared instead, weight
    (u_b + u_{b+1})/2, over pairs whose two references are both present.
    """

    name = "normalised_bands"

    def __init__(self, *args: object, opt_gaps: bool = False, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.opt_gaps = opt_gaps
        self.present = [self._present(t.require_reference()) for t in self.targets]
        self.counts = [int(present.sum()) for present in self.present]

    def _present(self, reference: torch.Tensor) -> torch.Tensor:
        """Which entries (or neighbour pairs, with opt_gaps) of `reference` count (nK, ·)."""
        present = reference.abs() > MISSING
        return present[:, 1:] & present[:, :-1] if self.opt_gaps else present

    def value(
        self,
        hamiltonian: PseudopotentialHamiltonian,
        system: int,
        k_indices: torch.Tensor,
        bands: torch.Tensor | None = None,
    ) -> torch.Tensor:
        batch = self._compared(hamiltonian, system, k_indices, bands)
        weights = batch.weights
        error = batch.bands - batch.reference
        if self.opt_gaps:
            error = error[:, 1:] - error[:, :-1]
            weights = 0.5 * (weights[:, 1:] + weights[:, :-1])
        terms = batch.kweights[:, None] * weights * error * error
        present = self.present[system]
        if present.device != terms.device:  # the targets moved (nn.Module._apply)
            present = self.present[system] = present.to(terms.device)
        kept = torch.where(present[k_indices], terms, torch.zeros_like(terms))
        return kept.sum() / max(self.counts[system], 1)


class SpinOrbitLimitTerm(GlobalTerm):
    """Σ_s 10·(a5 − 8) for every species with a5 > 8 (analytic engine, spin-orbit only)."""

    name = "soc_limit"
    solves = False

    def values(self, hamiltonian: PseudopotentialHamiltonian) -> dict[str, torch.Tensor]:
        if not hamiltonian.options.spin_orbit:
            return {}
        soc = hamiltonian.pp_table()[:, Slot.SPIN_ORBIT]
        return {"soc_limit": (SOC_PENALTY * (soc - SOC_LIMIT)).clamp(min=0.0).sum()}

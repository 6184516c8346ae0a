"""Monte Carlo costs: the shared band loss (network engine, physics.md §7.1) and the
normalised cost of the analytic engine (§10.2). Both evaluate without gradients."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dpp.io.records import Bundle
from dpp.physics.hamiltonian import PseudopotentialHamiltonian
from dpp.slots import Slot
from dpp.training.objective import RelativeEnergy, SystemTensors, bundle_targets, system_loss

MISSING = 1e-15  # |E_ref| at or below this is a missing reference entry
SOC_LIMIT, SOC_PENALTY = 8.0, 10.0


@dataclass(frozen=True)
class Evaluation:
    """A cost and the bands it came from (eV, one (nK, nBands) tensor per system)."""

    cost: float
    bands: list[torch.Tensor]


class NetworkCost:
    """L = Σ_X L_X of physics.md §7.1 (with relE), eV², the loss of gradient training."""

    def __init__(self, bundle: Bundle) -> None:
        self.targets = bundle_targets(bundle)
        self.relative = RelativeEnergy.from_config(bundle.config, bundle.systems)

    @torch.no_grad()
    def __call__(self, hamiltonian: PseudopotentialHamiltonian) -> Evaluation:
        bands, total = [], 0.0
        for index, target in enumerate(self.targets):
            k_all = torch.arange(target.reference.shape[0])
            system_bands = hamiltonian.bands(index, k_all)
            loss = system_loss(hamiltonian, index, target, k_all, self.relative, system_bands)
            bands.append(system_bands)
            total += float(loss)
        return Evaluation(total, bands)


def normalised_band_cost(
    bands: torch.Tensor, target: SystemTensors, *, opt_gaps: bool = False
) -> torch.Tensor:
    """Σ_k w_k Σ_b u_b (E − E_ref)² / n_valid over entries with |E_ref| > 1e-15 (eV²).

    With `opt_gaps`, the neighbour gaps E_{b+1} − E_b are compared instead, weight
    (u_b + u_{b+1})/2, over pairs whose two references are both present.
    """
    reference, weights = target.reference, target.band_weights
    present = reference.abs() > MISSING
    error = bands - reference
    if opt_gaps:
        error = error[:, 1:] - error[:, :-1]
        present = present[:, 1:] & present[:, :-1]
        weights = 0.5 * (weights[1:] + weights[:-1])
    terms = target.kweights[:, None] * weights[None, :] * error * error
    count = int(present.sum())
    return torch.where(present, terms, torch.zeros_like(terms)).sum() / max(count, 1)


class AnalyticCost:
    """C of physics.md §10.2: Σ_X normalised band cost + [SObool] Σ_s 10·(a5 − 8) for a5 > 8."""

    def __init__(self, bundle: Bundle, *, opt_gaps: bool = False) -> None:
        self.targets = bundle_targets(bundle)
        self.opt_gaps = opt_gaps

    @torch.no_grad()
    def __call__(self, hamiltonian: PseudopotentialHamiltonian) -> Evaluation:
        bands = [
            target.reordering.bands(hamiltonian, index, torch.arange(target.reference.shape[0]))
            for index, target in enumerate(self.targets)
        ]
        total = sum(
            float(normalised_band_cost(b, t, opt_gaps=self.opt_gaps))
            for b, t in zip(bands, self.targets, strict=True)
        )
        if hamiltonian.options.spin_orbit:
            soc = hamiltonian.pp_table()[:, Slot.SPIN_ORBIT]
            total += float((SOC_PENALTY * (soc - SOC_LIMIT)).clamp(min=0.0).sum())
        return Evaluation(total, bands)

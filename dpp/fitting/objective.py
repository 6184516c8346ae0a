"""The objective: a list of named, weighted loss terms shared by gradient training and Monte
Carlo, and its evaluation over every system and k-point."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from dpp.fitting.terms import GlobalTerm, KPointTerm
from dpp.physics.hamiltonian import PseudopotentialHamiltonian


@dataclass
class Evaluation:
    """A loss evaluation: total (eV² for the band loss), the k-point terms per system, the
    global terms by label, and the bands (eV, (nK, nBands) per system) they came from."""

    total: float
    per_system: list[float]
    terms: dict[str, float] = field(default_factory=dict)
    bands: list[torch.Tensor] = field(default_factory=list)


class Objective:
    """Σ_terms weight · value. `kpoint_terms[0]` provides the bands of evaluations and plots."""

    def __init__(self, kpoint_terms: Sequence[KPointTerm], global_terms: Sequence[GlobalTerm] = ()):
        if not kpoint_terms:
            raise ValueError("an objective needs at least one k-point term")
        self.kpoint_terms = list(kpoint_terms)
        self.global_terms = list(global_terms)

    @property
    def primary(self) -> KPointTerm:
        """The term whose bands are reported (the band-structure term)."""
        return self.kpoint_terms[0]

    def batch(
        self,
        hamiltonian: PseudopotentialHamiltonian,
        system: int,
        k_indices: torch.Tensor,
        bands: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Weighted k-point terms of `system` over `k_indices` (differentiable); `bands` are
        the primary term's bands there when the caller has them already."""
        total = self.primary.weight * self.primary.value(hamiltonian, system, k_indices, bands)
        for term in self.kpoint_terms[1:]:
            total = total + term.weight * term.value(hamiltonian, system, k_indices)
        return total

    def align(self, hamiltonian: PseudopotentialHamiltonian, bands: Sequence[torch.Tensor]) -> None:
        """Give the primary term the bands of every system at every k-point before their
        losses, when its energy zero is common to all systems (`BandTerm.align`)."""
        self.primary.align(hamiltonian, bands)

    @property
    def couples_systems(self) -> bool:
        """Whether a system's loss depends on the other systems' bands (a common zero)."""
        return self.primary.couples_systems

    def global_values(self, hamiltonian: PseudopotentialHamiltonian) -> dict[str, torch.Tensor]:
        """Weighted global terms by label (differentiable)."""
        out: dict[str, torch.Tensor] = {}
        for term in self.global_terms:
            for label, value in term.values(hamiltonian).items():
                out[label] = term.weight * value
        return out

    def global_loss(
        self,
        hamiltonian: PseudopotentialHamiltonian,
        backward: Callable[[torch.Tensor], None] | None = None,
    ) -> dict[str, float]:
        """The weighted global terms by label as numbers, their sum back-propagated once
        with `backward` (None: no gradient)."""
        values = self.global_values(hamiltonian)
        if values and backward is not None:
            backward(torch.stack(list(values.values())).sum())
        return {label: float(value.detach()) for label, value in values.items()}

    @torch.no_grad()
    def evaluate(
        self,
        hamiltonian: PseudopotentialHamiltonian,
        bands: Sequence[torch.Tensor] | None = None,
    ) -> Evaluation:
        """Every term over every system and k-point, without gradients; `bands` are the
        primary term's bands of every system ((nK, nBands) eV) when already computed."""
        k_all = [torch.arange(g.n_kpoints, device=g.kpoints.device) for g in hamiltonian.geometries]
        if bands is None:
            bands = [self.primary.bands(hamiltonian, s, k) for s, k in enumerate(k_all)]
        all_bands = list(bands)
        self.align(hamiltonian, all_bands)
        per_system = [
            float(self.batch(hamiltonian, s, k, b))
            for s, (k, b) in enumerate(zip(k_all, all_bands, strict=True))
        ]
        terms = self.global_loss(hamiltonian)
        return Evaluation(sum(per_system) + sum(terms.values()), per_system, terms, all_bands)


def trainable(hamiltonian: PseudopotentialHamiltonian) -> list[tuple[str, nn.Parameter]]:
    """Trainable tensors: network parameters (original names), then the analytic `pp_free`."""
    named = [] if hamiltonian.model is None else list(hamiltonian.model.named_parameters())
    if hamiltonian.pp_free.requires_grad:
        named.append(("pp_free", hamiltonian.pp_free))
    return named


def same_tensors(saved: Sequence[torch.Tensor], current: Sequence[torch.Tensor]) -> bool:
    """Whether `current` parameters are exactly the `saved` ones (an evaluation taken there
    still holds)."""
    return all(torch.equal(a, b) for a, b in zip(saved, current, strict=True))


def split_batch(batch: torch.Tensor) -> list[tuple[int, torch.Tensor]]:
    """(system, k-indices) groups of a (B, 2) batch of (system, k) items, in system order."""
    return [(int(s), batch[batch[:, 0] == s, 1]) for s in torch.unique(batch[:, 0]).tolist()]


def accumulate(
    objective: Objective,
    hamiltonian: PseudopotentialHamiltonian,
    batches: Sequence[torch.Tensor],
    *,
    global_terms: bool = True,
    backward: Callable[[torch.Tensor], None] | None = torch.Tensor.backward,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of every batch (back-propagated one system-batch at a time with `backward`, None:
    no gradient) and, with `global_terms`, of the global terms once: returns the k-point terms
    per system (n_systems,) and the global terms by label."""
    if objective.couples_systems:
        per_system = _coupled(objective, hamiltonian, batches, backward)
        terms = objective.global_loss(hamiltonian, backward) if global_terms else {}
        return per_system, terms
    per_system = torch.zeros(len(hamiltonian.systems), dtype=torch.float64)
    for batch in batches:
        for system, k in split_batch(batch):
            loss = objective.batch(hamiltonian, system, k.to(hamiltonian.pp_fixed.device))
            if backward is not None:
                backward(loss)
            per_system[system] += float(loss.detach())
    terms = objective.global_loss(hamiltonian, backward) if global_terms else {}
    return per_system, terms


def _coupled(
    objective: Objective,
    hamiltonian: PseudopotentialHamiltonian,
    batches: Sequence[torch.Tensor],
    backward: Callable[[torch.Tensor], None] | None,
) -> torch.Tensor:
    """`accumulate` when the systems' losses are coupled (a common energy zero): the bands of
    every system first, then the common offset, then the losses, back-propagated at once."""
    device = hamiltonian.pp_fixed.device
    items = torch.cat([torch.empty((0, 2), dtype=torch.long), *(b.cpu() for b in batches)])
    groups = dict(split_batch(items))
    k_indices = [
        groups.get(s, torch.empty(0, dtype=torch.long)).sort().values.to(device)
        for s in range(len(hamiltonian.systems))
    ]
    bands = [objective.primary.bands(hamiltonian, s, k) for s, k in enumerate(k_indices)]
    objective.align(hamiltonian, bands)
    losses = [
        objective.batch(hamiltonian, s, k, b)
        for s, (k, b) in enumerate(zip(k_indices, bands, strict=True))
    ]
    if backward is not None:
        backward(torch.stack(losses).sum())
    return torch.tensor([float(loss.detach()) for loss in losses], dtype=torch.float64)

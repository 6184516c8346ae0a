"""Deformation potentials of levels and gaps under uniform strain (physics.md §13.1), eV."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from dpp.io.observables import DefPotTarget
from dpp.physics.hamiltonian import PseudopotentialHamiltonian


def _energy(bands: dict[int, torch.Tensor], states: tuple[tuple[int, int], ...]) -> torch.Tensor:
    """A gap E_upper − E_lower (two states) or a level (one state) from per-k band rows."""
    if len(states) == 1:
        ((k, b),) = states
        return bands[k][b]
    (k_low, b_low), (k_high, b_high) = states
    return bands[k_high][b_high] - bands[k_low][b_low]


def _bands_at(
    hamiltonian: PseudopotentialHamiltonian, system: int, kpoints: list[int]
) -> dict[int, torch.Tensor]:
    device = hamiltonian.pp_fixed.device
    rows = hamiltonian.bands(system, torch.tensor(kpoints, dtype=torch.long, device=device))
    return dict(zip(kpoints, rows, strict=True))


def deformation_potentials(
    hamiltonian: PseudopotentialHamiltonian, system: int, targets: Sequence[DefPotTarget]
) -> torch.Tensor:
    """D of every target row (eV), differentiable in the model and the parameters.

    D = (X(V) − X(V')) / (1 − s³) · (1 + s³)/2 for the level or gap X of the row, with the
    deformed cell V' = s³V re-evaluated in full (kinetic term, form factors at |ΔG|/s, 1/Ω,
    spin-orbit and nonlocal integrals, strain factor a8).
    """
    kpoints = sorted({k for target in targets for k, _ in target.states})
    reference = _bands_at(hamiltonian, system, kpoints)
    results = []
    for ratio in sorted({target.ratio for target in targets}):
        deformed = _bands_at(hamiltonian.deformed(system, ratio), system, kpoints)
        cube = ratio**3
        for target in (t for t in targets if t.ratio == ratio):
            change = _energy(reference, target.states) - _energy(deformed, target.states)
            results.append((target, change / (1.0 - cube) * (1.0 + cube) / 2.0))
    order = {id(target): i for i, target in enumerate(targets)}
    results.sort(key=lambda item: order[id(item[0])])
    return torch.stack([value for _, value in results])


def deformation_loss(
    hamiltonian: PseudopotentialHamiltonian, system: int, targets: Sequence[DefPotTarget]
) -> torch.Tensor:
    """Σ_rows ω (D − D_ref)² in eV² (physics.md §7.5); k-weights do not apply."""
    values = deformation_potentials(hamiltonian, system, targets)
    device = values.device
    reference = torch.tensor([t.d_ref for t in targets], dtype=values.dtype, device=device)
    weights = torch.tensor([t.weight for t in targets], dtype=values.dtype, device=device)
    return (weights * (values - reference) ** 2).sum()

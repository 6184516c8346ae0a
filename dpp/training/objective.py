"""The band-structure objective over whole systems (physics.md §7.1–7.2)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dpp.io.records import Bundle, SystemData
from dpp.physics.hamiltonian import PseudopotentialHamiltonian
from dpp.training.loss import band_loss, relative_shifts
from dpp.training.reordering import BandReordering, reorder_mode


@dataclass(frozen=True)
class RelativeEnergy:
    """relE settings: band index r per system (None = absolute) and the reference mode."""

    band_index: tuple[int | None, ...]
    mode: str = "first_kpoint"
    detach_first: bool = False  # legacy_relE_detached

    @classmethod
    def from_config(cls, config: object, systems: list[SystemData]) -> RelativeEnergy:
        """Per-system relE_bIdx (input_X.par) wins over the global NN_config key."""
        default = getattr(config, "relE_bIdx", None)
        indices = tuple(
            s.settings.relE_bIdx if s.settings.relE_bIdx is not None else default for s in systems
        )
        return cls(
            band_index=indices,
            mode=getattr(config, "relE_reference", "first_kpoint"),
            detach_first=bool(getattr(config, "legacy_relE_detached", False)),
        )


class SystemTensors:
    """Reference bands and weights of one system as tensors on a device, and the band
    reordering (physics.md §11) applied to its computed bands."""

    def __init__(
        self,
        system: SystemData,
        device: torch.device | str = "cpu",
        reordering: BandReordering | None = None,
    ) -> None:
        if system.ref_bands is None:
            raise ValueError(f"system {system.index} has no reference bands")
        self.reference = torch.as_tensor(system.ref_bands, device=device)
        self.kweights = torch.as_tensor(system.kweights, device=device)
        self.band_weights = torch.as_tensor(system.band_weights, device=device)
        self.reordering = reordering or BandReordering("none", system.n_kpoints)


def bundle_targets(bundle: Bundle, device: torch.device | str = "cpu") -> list[SystemTensors]:
    """Targets of every system, with the reordering selected in the bundle's config."""
    mode = reorder_mode(bundle.config)
    legacy = bool(getattr(bundle.config, "legacy_reorder", False))
    return [
        SystemTensors(system, device, BandReordering(mode, system.n_kpoints, legacy))
        for system in bundle.systems
    ]


def system_loss(
    hamiltonian: PseudopotentialHamiltonian,
    system: int,
    targets: SystemTensors,
    k_indices: torch.Tensor,
    relative: RelativeEnergy | None = None,
    bands: torch.Tensor | None = None,
) -> torch.Tensor:
    """Weighted squared band error of `system` over `k_indices` (eV²), differentiable.

    Summing this over any partition of the k-points gives the exact full loss and gradient:
    with relE referenced to k-index 0, every part re-evaluates (and differentiates) band r
    at k-index 0 unless `detach_first` reproduces the original's constant reference.
    """
    if bands is None:
        bands = targets.reordering.bands(hamiltonian, system, k_indices)
    reference = targets.reference[k_indices]
    band_index = None if relative is None else relative.band_index[system]
    shift: torch.Tensor | float = 0.0
    reference_shift: torch.Tensor | float = 0.0
    if band_index is not None:
        first = first_ref = None
        if relative.mode == "first_kpoint" and int(k_indices[0]) != 0:
            zero = torch.zeros(1, dtype=torch.long, device=k_indices.device)
            if relative.detach_first:
                with torch.no_grad():
                    first = hamiltonian.bands(system, zero)[0]
            else:
                first = hamiltonian.bands(system, zero)[0]
            first_ref = targets.reference[0]
        shift, reference_shift = relative_shifts(
            bands, reference, band_index, relative.mode, first, first_ref
        )
        if relative.detach_first and isinstance(shift, torch.Tensor):
            shift = shift.detach()
    return band_loss(
        bands,
        reference,
        targets.kweights[k_indices],
        targets.band_weights,
        shift=shift,
        reference_shift=reference_shift,
    )


def total_loss(
    hamiltonian: PseudopotentialHamiltonian,
    targets: list[SystemTensors],
    relative: RelativeEnergy | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Σ_X L_X over all systems and k-points, and the per-system terms (eV²)."""
    per_system = []
    for index, target in enumerate(targets):
        k_all = torch.arange(target.reference.shape[0], device=target.reference.device)
        per_system.append(system_loss(hamiltonian, index, target, k_all, relative))
    return torch.stack(per_system).sum(), per_system

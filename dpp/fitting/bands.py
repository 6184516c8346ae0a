"""The band-structure term (physics.md §7.1–7.3, §11): reference bands of every system,
relative energies and band reordering, evaluated on any batch of k-points."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from dpp.errors import InputError
from dpp.fitting.band_loss import band_loss, relative_shifts
from dpp.fitting.reordering import BandReordering
from dpp.fitting.settings import LossSettings
from dpp.fitting.terms import KPointTerm
from dpp.io.records import SystemData
from dpp.physics.hamiltonian import PseudopotentialHamiltonian


class SystemTargets:
    """Reference bands and weights of one system as tensors, its relative-energy band and
    the band reordering (physics.md §11) applied to its computed bands. A system without
    reference bands (evaluation of new k-paths) has bands but no loss."""

    def __init__(
        self,
        system: SystemData,
        settings: LossSettings,
        device: torch.device | str = "cpu",
    ) -> None:
        self.system = system
        self.reference = (
            None if system.ref_bands is None else torch.as_tensor(system.ref_bands, device=device)
        )
        self.kweights = torch.as_tensor(system.kweights, device=device)
        self.band_weights = torch.as_tensor(system.band_weights, device=device)
        own = system.settings.relE_bIdx
        self.relative_band = own if own is not None else settings.relE_bIdx
        self.reordering = BandReordering(
            settings.reorder, system.n_kpoints, settings.legacy_reorder
        )

    def require_reference(self) -> torch.Tensor:
        """The reference bands (eV); an InputError when the system has none."""
        if self.reference is None:
            raise InputError(
                self.system.files.get("reference"),
                "reference bands needed for a loss",
                expected=f"expBandStruct_{self.system.index}.par",
                found="no such file",
            )
        return self.reference

    def to(self, fn) -> None:  # noqa: ANN001 - a tensor map as in nn.Module._apply
        """Apply `fn` (a device move or cast) to every tensor."""
        if self.reference is not None:
            self.reference = fn(self.reference)
        self.kweights = fn(self.kweights)
        self.band_weights = fn(self.band_weights)


class BandTerm(KPointTerm):
    """L = Σ_X Σ_k Σ_b w_k u_b (E_kb − E^ref_kb)² (eV²), optionally relative to band r."""

    name = "bands"

    def __init__(
        self,
        systems: Sequence[SystemData],
        settings: LossSettings,
        device: torch.device | str = "cpu",
        weight: float = 1.0,
    ) -> None:
        self.targets = [SystemTargets(system, settings, device) for system in systems]
        self.mode = settings.relE_reference
        self.detach_first = settings.legacy_relE_detached
        self.weight = weight

    def bands(
        self, hamiltonian: PseudopotentialHamiltonian, system: int, k_indices: torch.Tensor
    ) -> torch.Tensor:
        """Reordered bands (eV) of `system` at `k_indices`, differentiable."""
        return self.targets[system].reordering.bands(hamiltonian, system, k_indices)

    def value(
        self,
        hamiltonian: PseudopotentialHamiltonian,
        system: int,
        k_indices: torch.Tensor,
        bands: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Weighted squared band error of `system` over `k_indices` (eV²), differentiable.

        Summing this over any partition of the k-points gives the exact full loss and
        gradient: with relE referenced to k-index 0, every part re-evaluates (and
        differentiates) band r at k-index 0 unless `legacy_relE_detached` reproduces the
        original's constant reference. `bands` (already computed) skips the evaluation.
        """
        targets = self.targets[system]
        full_reference = targets.require_reference()
        if bands is None:
            bands = self.bands(hamiltonian, system, k_indices)
        reference = full_reference[k_indices]
        shift: torch.Tensor | float = 0.0
        reference_shift: torch.Tensor | float = 0.0
        band_index = targets.relative_band
        if band_index is not None:
            first = first_ref = None
            if self.mode == "first_kpoint" and int(k_indices[0]) != 0:
                zero = torch.zeros(1, dtype=torch.long, device=k_indices.device)
                with torch.set_grad_enabled(torch.is_grad_enabled() and not self.detach_first):
                    first = hamiltonian.bands(system, zero)[0]
                first_ref = full_reference[0]
            shift, reference_shift = relative_shifts(
                bands, reference, band_index, self.mode, first, first_ref
            )
            if self.detach_first and isinstance(shift, torch.Tensor):
                shift = shift.detach()
        return band_loss(
            bands,
            reference,
            targets.kweights[k_indices],
            targets.band_weights,
            shift=shift,
            reference_shift=reference_shift,
        )

    def shifts(self, bands: Sequence[torch.Tensor]) -> list[tuple[float, float]]:
        """Plot shifts (calculated, reference) per system: band r at the first k-point (or 0)."""
        out = []
        for calc, targets in zip(bands, self.targets, strict=True):
            r = targets.relative_band
            if r is None or self.mode != "first_kpoint" or targets.reference is None:
                out.append((0.0, 0.0))
            else:
                out.append((float(calc[0, r]), float(targets.reference[0, r])))
        return out

"""The band-structure term (physics.md §7.1–7.3, §11): reference bands of every system,
relative energies and band reordering, evaluated on any batch of k-points."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch

from dpp.errors import InputError, SettingError
from dpp.fitting.band_loss import band_loss, relative_shifts, rigid_offset
from dpp.fitting.reordering import BandReordering
from dpp.fitting.settings import LossSettings
from dpp.fitting.terms import KPointTerm
from dpp.fitting.windows import missing_edge_index, system_window, window_factors
from dpp.io.records import SystemData
from dpp.physics.hamiltonian import PseudopotentialHamiltonian

REFERENCE_QUANTUM = 1e-9
"""eV: the resolution of a reference held relative to its mean (far below any source's)."""


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
        self.window = None
        try:
            window = system_window(settings.window, system)
        except SettingError as error:
            if getattr(system.settings, error.setting, None) is None:
                raise  # not this system's own value
            raise _window_error(system, error) from None
        if window.active and system.ref_bands is not None:
            idx = (system.settings.idx_vb, system.settings.idx_cb)
            missing = missing_edge_index(window, *idx)
            if missing is not None:
                raise _window_error(system, missing)
            factors = window_factors(system.ref_bands, window, *idx)
            self.window = torch.as_tensor(factors, device=device)
        self._weights = self._window_weights()
        self.reference_mean = 0.0
        if settings.energy_zero == "per_system" and self.reference is not None:
            self.centre_reference(float(rigid_offset(self.reference, self.all_weights())))
        own = system.settings.relE_bIdx
        self.relative_band = own if own is not None else settings.relE_bIdx
        self.reordering = BandReordering(
            settings.reorder, system.n_kpoints, settings.legacy_reorder
        )

    def centre_reference(self, mean: float) -> None:
        """Hold the reference relative to `mean` (eV, its weighted mean or that of all
        systems), rounded to REFERENCE_QUANTUM: a fit with a free energy zero then sees the
        same numbers, bit for bit, whatever constant the reference was given with
        (`reference_mean` keeps the mean)."""
        assert self.reference is not None
        centred = self.reference - mean
        self.reference = torch.round(centred / REFERENCE_QUANTUM) * REFERENCE_QUANTUM
        self.reference_mean = mean

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
        if self.window is not None:
            self.window = fn(self.window)
        self.kweights = fn(self.kweights)
        self.band_weights = fn(self.band_weights)
        self._weights = self._window_weights()

    def _window_weights(self) -> torch.Tensor | None:
        """u_b times the window (nK, nBands), or None without a window."""
        return None if self.window is None else self.band_weights[None, :] * self.window

    def all_weights(self) -> torch.Tensor:
        """w_k · u_b × window of every k-point and band (nK, nBands)."""
        k_all = torch.arange(len(self.kweights), device=self.kweights.device)
        return self.kweights[:, None] * self.weights(k_all)

    def weights(self, k_indices: torch.Tensor) -> torch.Tensor:
        """Band weights (len(k_indices), nBands) of these k-points: u_b times the window."""
        if self._weights is None:
            return self.band_weights[None, :].expand(len(k_indices), -1)
        return self._weights[k_indices]

    def total_weight(self) -> float:
        """Σ_k Σ_b w_k u_b (× window): what the band loss of this system divides by to be a
        weighted mean square."""
        return float(self.all_weights().sum())


def _window_error(system: SystemData, error: SettingError) -> InputError:
    """`error` of the band window of `system` as an error on its input_X.par (naming the
    key when the system set that value itself)."""
    own = getattr(system.settings, error.setting, None) is not None
    return InputError(
        system.files.get("input"),
        f"band window of system {system.index}: {error.problem}",
        key=f"fit_{error.setting}" if own else None,
        expected=error.expected,
        found=str(error.found),
    )


class BandBatch(NamedTuple):
    """What a band loss compares at a batch of k-points of one system (eV): the computed
    bands, the reference, the k-point weights w_k and the band weights (u_b × window)."""

    targets: SystemTargets
    bands: torch.Tensor
    reference: torch.Tensor
    kweights: torch.Tensor
    weights: torch.Tensor


class BandTerm(KPointTerm):
    """L = Σ_X Σ_k Σ_b w_k u_b (E_kb − E^ref_kb − c_X)² (eV²), optionally relative to band r;
    c_X = 0 (`energy_zero` absolute), each system's optimal rigid offset (`per_system`), or
    the one offset c that is optimal for all systems together (`common`): `common_offset`,
    set by `align` from every system's bands at the present parameters. Held constant, c is
    exact for the value and, being optimal (∂L/∂c = 0), for the gradient."""

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
        self.free_offset = settings.energy_zero == "per_system"
        self.couples_systems = settings.energy_zero == "common"
        self.common_offset = 0.0
        if self.couples_systems:
            self._centre_together()
        self.weight = weight

    def bands(
        self, hamiltonian: PseudopotentialHamiltonian, system: int, k_indices: torch.Tensor
    ) -> torch.Tensor:
        """Reordered bands (eV) of `system` at `k_indices`, differentiable."""
        return self.targets[system].reordering.bands(hamiltonian, system, k_indices)

    def _compared(
        self,
        hamiltonian: PseudopotentialHamiltonian,
        system: int,
        k_indices: torch.Tensor,
        bands: torch.Tensor | None = None,
    ) -> BandBatch:
        """The bands of `system` at `k_indices` (evaluated unless given), its reference
        there (an InputError without reference bands) and the weights."""
        targets = self.targets[system]
        reference = targets.require_reference()[k_indices]
        if bands is None:
            bands = self.bands(hamiltonian, system, k_indices)
        return BandBatch(
            targets, bands, reference, targets.kweights[k_indices], targets.weights(k_indices)
        )

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
        original's constant reference. `bands` (already computed) skips the evaluation. A free
        per-system offset couples all of a system's k-points: the batch must hold them all.
        """
        batch = self._compared(hamiltonian, system, k_indices, bands)
        if self.free_offset and len(k_indices) != len(batch.targets.kweights):
            raise SettingError(
                "loss.energy_zero",
                "a per-system energy offset needs every k-point of a system in one batch",
                expected="data.separate_kpt_grad=false on one process, or energy_zero=absolute",
                found=f"{len(k_indices)} of {len(batch.targets.kweights)} k-points of system "
                f"{system} in a batch",
            )
        shift, reference_shift = self._shifts(hamiltonian, system, k_indices, batch)
        return band_loss(
            batch.bands,
            batch.reference,
            batch.kweights,
            batch.weights,
            shift=shift,
            reference_shift=reference_shift,
            offset=self.common_offset,
            free_offset=self.free_offset,
        )

    def _centre_together(self) -> None:
        """Hold every reference relative to the weighted mean over all systems (one constant:
        the alignments stay), as `SystemTargets.centre_reference`."""
        compared = [t for t in self.targets if t.reference is not None]
        weights = [t.all_weights() for t in compared]
        total = float(sum(w.sum() for w in weights))
        if total <= 0.0:
            return
        mean = float(sum((w * t.reference).sum() for t, w in zip(compared, weights, strict=True)))
        for targets in compared:
            targets.centre_reference(mean / total)

    def offset_sum(
        self, hamiltonian: PseudopotentialHamiltonian, system: int, bands: torch.Tensor
    ) -> torch.Tensor:
        """S_X = Σ_k Σ_b w_k u_b e_kb of `system` from its `bands` at every k-point (eV),
        differentiable in `bands`: the common offset is Σ_X S_X / Σ_X W_X."""
        k_all = torch.arange(bands.shape[0], device=bands.device)
        batch = self._compared(hamiltonian, system, k_all, bands)
        shift, reference_shift = self._shifts(hamiltonian, system, k_all, batch)
        error = (batch.bands - shift) - (batch.reference - reference_shift)
        return (batch.kweights[:, None] * batch.weights * error).sum()

    def compared_weight(self) -> float:
        """W = Σ_X Σ_k Σ_b w_k u_b over the systems with reference bands."""
        return sum(t.total_weight() for t in self.targets if t.reference is not None)

    def align(self, hamiltonian: PseudopotentialHamiltonian, bands: Sequence[torch.Tensor]) -> None:
        """Set `common_offset` (eV) from the bands (nK, nBands) at every k-point of every
        system, when the energy zero is common (else nothing)."""
        if not self.couples_systems:
            return
        for system, system_bands in enumerate(bands):
            expected = len(self.targets[system].kweights)
            if system_bands.shape[0] != expected:
                raise SettingError(
                    "loss.energy_zero",
                    "a common energy offset needs every k-point of every system in one batch",
                    expected="data.separate_kpt_grad=false on one process, or "
                    "energy_zero=per_system",
                    found=f"{system_bands.shape[0]} of {expected} k-points of system {system}",
                )
        with torch.no_grad():
            total = sum(
                float(self.offset_sum(hamiltonian, s, b.detach()))
                for s, b in enumerate(bands)
                if self.targets[s].reference is not None
            )
        weight = self.compared_weight()
        self.common_offset = total / weight if weight > 0.0 else 0.0

    def _shifts(
        self,
        hamiltonian: PseudopotentialHamiltonian,
        system: int,
        k_indices: torch.Tensor,
        batch: BandBatch,
    ) -> tuple[torch.Tensor | float, torch.Tensor | float]:
        """The relative-energy shifts (calculated, reference) of a batch (0 without relE)."""
        shift: torch.Tensor | float = 0.0
        reference_shift: torch.Tensor | float = 0.0
        band_index = batch.targets.relative_band
        if band_index is not None:
            first = first_ref = None
            if self.mode == "first_kpoint" and int(k_indices[0]) != 0:
                zero = torch.zeros(1, dtype=torch.long, device=k_indices.device)
                with torch.set_grad_enabled(torch.is_grad_enabled() and not self.detach_first):
                    first = hamiltonian.bands(system, zero)[0]
                first_ref = batch.targets.reference[0]
            shift, reference_shift = relative_shifts(
                batch.bands, batch.reference, band_index, self.mode, first, first_ref
            )
            if self.detach_first and isinstance(shift, torch.Tensor):
                shift = shift.detach()
        return shift, reference_shift

    def model_offset(self, system: int, bands: np.ndarray) -> float:
        """The rigid offset (eV) between computed `bands` (nK, nBands) of `system` and its
        reference as read, when the energy zero is free (else 0): what a plot subtracts from
        the model to lay it on the reference; with a common zero, the `common_offset` of the
        last `align`."""
        targets = self.targets[system]
        if self.couples_systems:
            return self.common_offset - targets.reference_mean
        if not self.free_offset or targets.reference is None:
            return 0.0
        weights = targets.all_weights().cpu()
        error = torch.as_tensor(bands, dtype=weights.dtype) - targets.reference.cpu()
        return float(rigid_offset(error, weights)) - targets.reference_mean

    def rms_mev(self, per_system: Sequence[float] | torch.Tensor) -> float:
        """The weighted RMS band error (meV) behind band losses `per_system` (eV², this
        term's value per system): sqrt(Σ_X L_X / (weight · Σ_X Σ_k Σ_b w_k u_b)) · 1000.
        NaN when every weight is zero."""
        total = self.compared_weight()
        loss = float(sum(float(v) for v in per_system))
        if total <= 0.0 or self.weight <= 0.0:
            return math.nan
        return 1000.0 * math.sqrt(max(loss, 0.0) / (self.weight * total))

    def shifts(self, bands: Sequence[torch.Tensor]) -> list[tuple[float, float]]:
        """Shifts (calculated, reference) per system that bring the bands onto the loss's
        common footing (eV): band r at the first k-point (or 0), plus the optimal offset of
        the calculated bands with a free energy zero, or the `common_offset` of the last
        `align`."""
        out = []
        for calc, targets in zip(bands, self.targets, strict=True):
            r = targets.relative_band
            if r is None or self.mode != "first_kpoint" or targets.reference is None:
                shift = (0.0, 0.0)
            else:
                shift = (float(calc[0, r]), float(targets.reference[0, r]))
            if self.free_offset and targets.reference is not None:
                error = (calc.detach() - shift[0]) - (targets.reference - shift[1])
                weights = targets.all_weights()
                shift = (shift[0] + float(rigid_offset(error, weights)), shift[1])
            elif self.couples_systems:
                shift = (shift[0] + self.common_offset, shift[1])
            out.append(shift)
        return out


@dataclass
class BandErrors:
    """Where a fit is poor (eV): the RMS error of every band over the k-points (relative
    energies when relE is on), the overall RMS, and the largest error of the band edges
    idxVB / idxCB (when input_X.par names them)."""

    rms: list[float]
    overall: float
    edges: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """One line in meV: overall RMS, worst band, edge errors."""
        worst = max(range(len(self.rms)), key=self.rms.__getitem__)
        parts = [
            f"RMS {1000 * self.overall:.4g} meV",
            f"worst band {worst} ({1000 * self.rms[worst]:.4g} meV)",
        ]
        parts += [f"{edge} max error {1000 * value:.4g} meV" for edge, value in self.edges.items()]
        return ", ".join(parts)


def band_errors(
    bands: torch.Tensor, targets: SystemTargets, shift: tuple[float, float] = (0.0, 0.0)
) -> BandErrors:
    """Errors of computed `bands` (nK, nBands, eV) against the system's reference, both
    shifted by `shift` (calculated, reference) as the loss compares them."""
    error = (bands.detach().cpu() - shift[0]) - (targets.require_reference().cpu() - shift[1])
    rms = error.pow(2).mean(dim=0).sqrt()
    settings = targets.system.settings
    edges = {
        name: float(error[:, index].abs().max())
        for name, index in (("VBM", settings.idx_vb), ("CBM", settings.idx_cb))
        if index is not None and index < error.shape[1]
    }
    return BandErrors(rms.tolist(), float(error.pow(2).mean().sqrt()), edges)

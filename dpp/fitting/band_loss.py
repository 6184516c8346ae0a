"""Band-structure loss (physics.md §7.1–7.2), shared by gradient training and Monte Carlo."""

from __future__ import annotations

import torch


def band_loss(
    bands: torch.Tensor,
    reference: torch.Tensor,
    kweights: torch.Tensor,
    band_weights: torch.Tensor,
    *,
    shift: torch.Tensor | float = 0.0,
    reference_shift: torch.Tensor | float = 0.0,
) -> torch.Tensor:
    """L = Σ_k Σ_b w_k u_b ((E_kb − shift) − (E^ref_kb − reference_shift))², in eV².

    A sum, not a mean. `bands`/`reference` are (nK, nBands) in eV, `kweights` (nK,),
    `band_weights` (nBands,) or per k-point (nK, nBands) (band windows). The shifts
    implement relative energies (relE_bIdx): scalars or (nK, 1) columns.
    """
    error = (bands - shift) - (reference - reference_shift)
    return (kweights[:, None] * band_weights * error * error).sum()


def relative_shifts(
    bands: torch.Tensor,
    reference: torch.Tensor,
    band_index: int,
    mode: str,
    first_kpoint_bands: torch.Tensor | None = None,
    first_kpoint_reference: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shifts (calculated, reference) for relE_bIdx = `band_index`.

    `first_kpoint`: band r at k-index 0 of the same system (its bands must be passed when
    the batch does not start at k-index 0); `same_kpoint`: band r at each k.
    """
    if mode == "same_kpoint":
        return bands[:, band_index : band_index + 1], reference[:, band_index : band_index + 1]
    if mode != "first_kpoint":
        raise ValueError(f"relE_reference must be first_kpoint or same_kpoint, got {mode!r}")
    first = bands[0] if first_kpoint_bands is None else first_kpoint_bands
    first_ref = reference[0] if first_kpoint_reference is None else first_kpoint_reference
    return first[band_index], first_ref[band_index]

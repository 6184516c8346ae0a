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
    offset: float = 0.0,
    free_offset: bool = False,
) -> torch.Tensor:
    """L = Σ_k Σ_b w_k u_b ((E_kb − shift) − (E^ref_kb − reference_shift) − c)², in eV².

    A sum, not a mean. `bands`/`reference` are (nK, nBands) in eV, `kweights` (nK,),
    `band_weights` (nBands,) or per k-point (nK, nBands) (band windows). The shifts
    implement relative energies (relE_bIdx): scalars or (nK, 1) columns. c = `offset` (a
    constant, eV), or with `free_offset` the rigid offset that minimises L (`rigid_offset`,
    differentiable: the loss is then the same for any constant added to either side).
    """
    error = (bands - shift) - (reference - reference_shift) - offset
    weights = kweights[:, None] * band_weights
    if free_offset:
        error = error - rigid_offset(error, weights)
    return (weights * error * error).sum()


def rigid_offset(error: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """c = Σ w·error / Σ w (eV): the constant whose removal minimises Σ w (error − c)²
    (0 when every weight is 0)."""
    total = weights.sum()
    return (weights * error).sum() / total.clamp(min=torch.finfo(total.dtype).tiny)


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

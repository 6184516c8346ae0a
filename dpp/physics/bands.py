"""From eigenvalues to a band structure (physics.md §6): order matrix, spin doubling, eV."""

from __future__ import annotations

import math

import torch

from dpp.physics.constants import AUTOEV


def spatial_columns(n_bands: int, spin_orbit: bool) -> int:
    """Distinct eigenvalue columns behind nBands output bands (each doubled without SOC)."""
    return n_bands if spin_orbit else math.ceil(n_bands / 2)


def needed_eigenvalues(n_bands: int, spin_orbit: bool, order_rows: torch.Tensor | None) -> int:
    """How many of the lowest eigenvalues of H(k) the band structure needs."""
    columns = spatial_columns(n_bands, spin_orbit)
    if order_rows is None:
        return columns
    return int(order_rows[:, :columns].max().item()) + 1


def process_bands(
    eigenvalues: torch.Tensor,
    n_bands: int,
    spin_orbit: bool,
    order_rows: torch.Tensor | None = None,
) -> torch.Tensor:
    """Ascending eigenvalues (B, n_eig) in Hartree → bands (B, nBands) in eV.

    The order matrix rows (B, ≥ columns) pick eigenvalue indices; without spin-orbit each
    spatial value is repeated twice and the first nBands are kept.
    """
    columns = spatial_columns(n_bands, spin_orbit)
    energies = eigenvalues * AUTOEV
    if order_rows is None:
        energies = energies[:, :columns]
    else:
        energies = torch.gather(energies, 1, order_rows[:, :columns])
    if not spin_orbit:
        energies = energies.repeat_interleave(2, dim=1)[:, :n_bands]
    return energies

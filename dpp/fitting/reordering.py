"""Band reordering inside the loss (physics.md §11): per-system state across k-batches.

smooth_reorder: a batch holding every k-point of the system is reordered along the path;
smaller batches use the previous epoch's reordered bands as history (none in the first
epoch). eigvec_reorder: eigenvector-overlap permutations of the whole path, recomputed
without gradients at the start of every pass over this process's k-points (a batch whose first
k-index does not follow the previous batch), act as the order matrix. Every process computes
them for the whole path, so they agree under data parallelism.
"""

from __future__ import annotations

import torch

from dpp.fitting.settings import REORDER_MODES
from dpp.physics.bands import spatial_columns
from dpp.physics.hamiltonian import PseudopotentialHamiltonian
from dpp.physics.reorder import (
    extrapolation_order,
    extrapolation_order_from_previous,
    overlap_reorder,
)

EXTRA_STATES = 8
"""States above the wanted bands that the overlap reordering may bring down."""


class BandReordering:
    """Reordering state of one system with `n_kpoints` k-points."""

    def __init__(self, mode: str, n_kpoints: int, legacy: bool = False) -> None:
        if mode not in REORDER_MODES:
            raise ValueError(f"reorder mode must be one of {REORDER_MODES}, got {mode!r}")
        self.mode = mode
        self.n_kpoints = n_kpoints
        self.legacy = legacy
        self.previous: torch.Tensor | None = None
        self._pending: torch.Tensor | None = None
        self._filled = torch.zeros(n_kpoints, dtype=torch.bool)
        self._rows: torch.Tensor | None = None
        self._last_k = -1

    def bands(
        self, hamiltonian: PseudopotentialHamiltonian, system: int, k_indices: torch.Tensor
    ) -> torch.Tensor:
        """Reordered bands (eV) of `k_indices`, differentiable like `hamiltonian.bands`."""
        if self.mode == "eigvec":
            rows = self._eigvec_rows(hamiltonian, system, k_indices)
            return hamiltonian.bands(system, k_indices, order_rows=rows[k_indices])
        bands = hamiltonian.bands(system, k_indices)
        if self.mode == "none":
            return bands
        if len(k_indices) == self.n_kpoints:
            permutation = extrapolation_order(bands)
        elif self.previous is None:
            permutation = torch.arange(bands.shape[1], device=bands.device).expand_as(bands)
        else:
            permutation = extrapolation_order_from_previous(
                self.previous, bands, k_indices, legacy=self.legacy
            )
        ordered = torch.gather(bands, 1, permutation)
        self._record(ordered.detach(), k_indices)
        return ordered

    def order_rows(
        self, hamiltonian: PseudopotentialHamiltonian, system: int
    ) -> torch.Tensor | None:
        """The eigenvalue indices (nK, columns) `bands` picks at every k-point of `system`
        (None: the ascending eigenvalues). The smooth mode permutes bands after the solve,
        which no rows describe: a ValueError."""
        if self.mode == "smooth":
            raise ValueError("smooth reordering permutes the bands, not eigenvalue rows")
        if self.mode == "eigvec":
            device = hamiltonian.geometries[system].kpoints.device
            all_k = torch.arange(self.n_kpoints, device=device)
            return self._eigvec_rows(hamiltonian, system, all_k)
        return hamiltonian.order_matrix(system)

    def _record(self, ordered: torch.Tensor, k_indices: torch.Tensor) -> None:
        if self._pending is None:
            self._pending = torch.zeros(self.n_kpoints, ordered.shape[1], dtype=ordered.dtype)
        self._pending[k_indices.cpu()] = ordered.cpu()
        self._filled[k_indices.cpu()] = True
        if bool(self._filled.all()):
            self.previous = self._pending.clone()
            self._filled.zero_()

    def _eigvec_rows(
        self, hamiltonian: PseudopotentialHamiltonian, system: int, k_indices: torch.Tensor
    ) -> torch.Tensor:
        new_pass = int(k_indices[0]) <= self._last_k
        self._last_k = int(k_indices[-1])
        if self._rows is not None and not new_pass:
            return self._rows
        device = k_indices.device
        all_k = torch.arange(self.n_kpoints, device=device)
        spinor = hamiltonian.options.spin_orbit
        columns = spatial_columns(hamiltonian.systems[system].n_bands, spinor)
        dimension = hamiltonian.dimension(system)
        matrix = hamiltonian.order_matrix(system)
        wanted = columns if matrix is None else int(matrix[:, :columns].max()) + 1
        with torch.no_grad():
            values, vectors = hamiltonian.eigenpairs(
                system, all_k, min(wanted + EXTRA_STATES, dimension)
            )
        if matrix is None:
            self._rows = overlap_reorder(values, vectors, columns)
        else:
            selected = matrix[:, :columns]
            picked_vectors = torch.gather(
                vectors, 2, selected[:, None, :].expand(-1, vectors.shape[1], -1)
            )
            permutation = overlap_reorder(
                torch.gather(values, 1, selected), picked_vectors, columns
            )
            self._rows = torch.gather(selected, 1, permutation)
        return self._rows

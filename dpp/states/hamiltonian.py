"""A matrix-free plane-wave Hamiltonian of a large periodic box (Hartree atomic units).

H = |k + G|²/2 on the basis {G : |G|²/2 < maxKE} of the box, plus V_loc applied on an FFT
grid: V(G) = Σ_s v_s(|G|) Σ_{α∈s} exp(−i G·τ_α)/Ω (physics.md §5.2; v_s in Hartree·Bohr³,
Ω the box volume in Bohr³), so that V(r) = Σ_G V(G) e^{iG·r} is the superposition of the
atoms' potentials v_s(r − τ_α) with no real-space truncation. The grid holds every
difference G − G' of the basis without wrap-around (N_r ≥ 4 n_r + 1 points along b_r for
labels |n_r| ≤ n_r), so the product V ψ restricted to the basis is the exact matrix product
Σ_{G'} V(G − G') ψ(G'). Vectors live on the basis (memory O(N_basis × n_states)); FFTs run
in batches of `batch` vectors (memory O(batch × N_grid)). The spin–orbit and nonlocal terms
are separable projectors (dpp.states.projectors); with spin–orbit, vectors are spinors (2N, m),
spin up first, and the kinetic and local terms act on each spin alone.

dpp's bulk Hamiltonian uses exp(+i G·τ) (the crystal inverted through the origin): the
same eigenvalues (its H(k) is the complex conjugate of this one's), atoms in place here.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import scipy.fft
import torch

from dpp.errors import InputError
from dpp.physics.basis import plane_wave_basis
from dpp.physics.geometry import Q_GROUPING
from dpp.physics.lattice import reciprocal_vectors
from dpp.states.projectors import SeparableProjectors

Operator = Callable[[torch.Tensor], torch.Tensor]

FormFactors = Callable[[torch.Tensor], torch.Tensor]
"""v_s(q): q (M,) in 1/Bohr → (M, n_kinds) in Hartree·Bohr³."""

FFT_BATCH = 2
"""Vectors transformed at once (memory: FFT_BATCH × grid points × 16 B)."""


def grid_shape(labels: np.ndarray) -> tuple[int, int, int]:
    """The smallest fast FFT grid holding every label difference without wrap-around."""
    extent = np.abs(labels).max(axis=0)
    return tuple(int(scipy.fft.next_fast_len(int(4 * n + 1))) for n in extent)


def _frequencies(shape: tuple[int, int, int]) -> list[np.ndarray]:
    return [np.fft.fftfreq(n, 1.0 / n).round().astype(np.int64) for n in shape]


class GridHamiltonian:
    """H of a box with atoms at `positions` (n_atoms, 3, Bohr) of kinds `kinds` (n_atoms,)
    indexing the columns of `form_factors`; `cell` rows are the box vectors (Bohr).

    kpoint: Cartesian k (1/Bohr), Γ by default. labels: the basis as integer reciprocal
    coordinates in place of the sphere |G|²/2 < max_ke (e.g. the folded primitive spheres).
    strengths: per-atom projector strengths {`soc`: a5, `nl1`: a6, `nl2`: a7} (n_atoms,) of
    physics.md §5.6–5.8; spinor: vectors are (2N, m) spinors (required with `soc`).
    """

    dtype = torch.complex128

    def __init__(
        self,
        cell: np.ndarray,
        positions: np.ndarray,
        kinds: np.ndarray,
        form_factors: FormFactors,
        max_ke: float,
        *,
        kpoint: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        batch: int = FFT_BATCH,
        device: torch.device | str = "cpu",
        strengths: dict[str, np.ndarray] | None = None,
        spinor: bool = False,
    ) -> None:
        cell = np.asarray(cell, dtype=np.float64)
        self.volume = float(abs(np.linalg.det(cell)))
        if not self.volume > 0:
            raise InputError(
                None,
                "degenerate box",
                key="cell",
                expected="volume > 0",
                found=f"{self.volume:g} Bohr³",
            )
        self.cell = cell
        self.reciprocal = reciprocal_vectors(cell)
        if labels is None:
            labels, _ = plane_wave_basis(self.reciprocal, max_ke)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.shape = grid_shape(self.labels)
        self.batch = batch
        self.device = torch.device(device)
        k = np.zeros(3) if kpoint is None else np.asarray(kpoint, dtype=np.float64)
        waves = self.labels @ self.reciprocal + k
        self.gamma = not np.any(k)
        self.spinor = spinor
        self.kinetic = torch.as_tensor(0.5 * (waves * waves).sum(1), device=self.device)
        self.projectors = SeparableProjectors(
            torch.as_tensor(waves, device=self.device),
            np.asarray(positions, dtype=np.float64),
            strengths or {},
            self.volume,
            spinor=spinor,
        )
        wrapped = np.mod(self.labels, self.shape)
        cells = (wrapped[:, 0] * self.shape[1] + wrapped[:, 1]) * self.shape[2] + wrapped[:, 2]
        self.cells = torch.as_tensor(cells, device=self.device)
        potential = self._potential_g(positions, np.asarray(kinds), form_factors)
        points = math.prod(self.shape)
        # V(r) is real: V(−G) = V(G)* on every grid frequency a basis pair uses
        self.potential_r = (torch.fft.ifftn(potential) * points).real

    @property
    def n_basis(self) -> int:
        return int(self.labels.shape[0])

    @property
    def dim(self) -> int:
        """Length of a vector: N_basis, doubled for spinors."""
        return self.n_basis * (2 if self.spinor else 1)

    @property
    def diagonal(self) -> torch.Tensor:
        """The kinetic energy of every vector component (dim,), Hartree."""
        return self.kinetic.repeat(2) if self.spinor else self.kinetic

    @property
    def mean_potential(self) -> float:
        """V(G = 0), the local potential averaged over the box, Hartree."""
        return float(self.potential_r.mean())

    @property
    def n_grid(self) -> int:
        return math.prod(self.shape)

    def _potential_g(
        self, positions: np.ndarray, kinds: np.ndarray, form_factors: FormFactors
    ) -> torch.Tensor:
        """V(G) on the FFT grid (Hartree), every grid frequency."""
        freqs = _frequencies(self.shape)
        grid = np.stack(np.meshgrid(*freqs, indexing="ij"), axis=-1).reshape(-1, 3)
        norms = np.linalg.norm(grid.astype(np.float64) @ self.reciprocal, axis=1)
        keys = np.rint(norms / Q_GROUPING).astype(np.int64)
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        q = torch.as_tensor(norms[first], device=self.device)
        with torch.no_grad():
            values = form_factors(q).to(torch.float64)
        fractional = np.asarray(positions, dtype=np.float64) @ np.linalg.inv(self.cell)
        potential = torch.zeros(self.shape, dtype=torch.complex128, device=self.device)
        for kind in np.unique(kinds):
            phases = [
                torch.as_tensor(
                    np.exp(-2j * np.pi * np.outer(fractional[kinds == kind, r], freqs[r])),
                    device=self.device,
                )
                for r in range(3)
            ]
            plane = (phases[0][:, :, None] * phases[1][:, None, :]).reshape(len(phases[0]), -1)
            structure = (plane.T @ phases[2]).reshape(self.shape)
            form = values[:, int(kind)][torch.as_tensor(inverse, device=self.device)]
            potential += form.reshape(self.shape) * structure
        return potential / self.volume

    def apply_local(self, vectors: torch.Tensor) -> torch.Tensor:
        """V_loc ψ for vectors (dim, m), each spin alone, by FFT batches."""
        if self.spinor:
            n, m = self.n_basis, vectors.shape[1]
            paired = vectors.reshape(2, n, m).permute(1, 0, 2).reshape(n, 2 * m)
            return self._local(paired).reshape(n, 2, m).permute(1, 0, 2).reshape(2 * n, m)
        return self._local(vectors)

    def _local(self, vectors: torch.Tensor) -> torch.Tensor:
        """V_loc ψ for basis vectors (N_basis, m)."""
        out = torch.empty_like(vectors)
        for start in range(0, vectors.shape[1], self.batch):
            block = vectors[:, start : start + self.batch]
            grid = torch.zeros(
                (block.shape[1], self.n_grid), dtype=torch.complex128, device=self.device
            )
            grid[:, self.cells] = block.T
            real = torch.fft.ifftn(grid.reshape(-1, *self.shape), dim=(1, 2, 3))
            real *= self.potential_r
            spectrum = torch.fft.fftn(real, dim=(1, 2, 3)).reshape(block.shape[1], -1)
            out[:, start : start + self.batch] = spectrum[:, self.cells].T
        return out

    def terms(self) -> dict[str, Operator]:
        """Each active term as an operator on vectors (dim, m), by name (`kinetic`,
        `local`, `nonlocal`, `spin_orbit` as dpp.physics.terms); their sum is H."""
        return {
            "kinetic": lambda vectors: self.diagonal[:, None] * vectors,
            "local": self.apply_local,
            **self.projectors.terms(),
        }

    def __call__(self, vectors: torch.Tensor) -> torch.Tensor:
        """H ψ in Hartree for vectors (dim, m) complex128."""
        out = self.diagonal[:, None] * vectors + self.apply_local(vectors)
        if self.projectors.active:
            out += self.projectors.apply(vectors)
        return out

    def dense(self) -> torch.Tensor:
        """The full matrix (dim, dim), for tests of small boxes only."""
        identity = torch.eye(self.dim, dtype=torch.complex128, device=self.device)
        return self(identity)

    def density(self, vector: torch.Tensor) -> np.ndarray:
        """|ψ(r)|² (summed over spin) on the FFT grid (shape), normalised to 1 over the box
        (1/Bohr³)."""
        grid = torch.zeros(
            (self.dim // self.n_basis, self.n_grid), dtype=torch.complex128, device=self.device
        )
        grid[:, self.cells] = vector.reshape(-1, self.n_basis)
        values = (torch.fft.ifftn(grid.reshape(-1, *self.shape), dim=(1, 2, 3)).abs() ** 2).sum(0)
        values = values / values.sum() * (self.n_grid / self.volume)
        return values.cpu().numpy()


def label_index(labels: np.ndarray, within: np.ndarray) -> np.ndarray:
    """The row of `within` (M, 3) holding each label of `labels` (N, 3), integer reciprocal
    coordinates; ValueError when one is missing."""
    extent = np.maximum(np.abs(labels).max(axis=0), np.abs(within).max(axis=0))
    span = tuple(int(n) for n in 2 * extent + 1)
    keys = np.ravel_multi_index(tuple((within + extent).T), span)
    wanted = np.ravel_multi_index(tuple((labels + extent).T), span)
    order = np.argsort(keys)
    found = order[np.clip(np.searchsorted(keys, wanted, sorter=order), 0, len(keys) - 1)]
    if not np.array_equal(keys[found], wanted):
        raise ValueError("the coarse basis is not a subset of the fine one")
    return found


def folded_basis(
    reciprocal: np.ndarray, max_ke: float, repeats: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """The basis of an n₁×n₂×n₃ supercell at Γ that is the union of the primitive cell's
    spheres {G : |G|²/2 < maxKE} at the folded k-points κ = (i/n₁, j/n₂, l/n₃): labels on
    the supercell's reciprocal lattice (M, 3) and the folded κ (n₁n₂n₃, 3), fractional
    coordinates of the primitive reciprocal vectors `reciprocal` (rows, 1/Bohr)."""
    sizes = np.asarray(repeats, dtype=np.int64)
    primitive, _ = plane_wave_basis(reciprocal, max_ke)
    steps = np.stack(np.meshgrid(*[np.arange(n) for n in sizes], indexing="ij"), axis=-1).reshape(
        -1, 3
    )
    labels = np.concatenate([step + sizes * primitive for step in steps])
    return labels, steps / sizes

"""Spin–orbit, nonlocal l = 1 and s-channel terms of a box as separable projectors
(physics.md §5.6–5.8).

The plane-wave matrix elements of dpp's bulk terms, with the box's structure factor
exp(−i (G_m − G_n)·τ_α)/Ω (atoms in place, as the local potential of the box), are

    V_SO[(m,σ),(n,σ')] = Σ_α a5(α) e^{−iΔG·τ_α}/Ω · P·I_0.7 · [−i (K_m × K_n)·⟨σ|s|σ'⟩]
    V_NL[(m,σ),(n,σ')] = δ_σσ' Σ_α e^{−iΔG·τ_α}/Ω · P·(K_m·K_n) · [a6(α) I_1.0 + a7(α) J]

with P·I(|K_m|, |K_n|) = 12π Σ_q c_q F_mq F_nq, F_mq = j1(|K_m| r_q)/|K_m| (the quadrature of
dpp.physics.radial). That radial kernel is compressed once to its dominant rank r (about
10: P·I ≈ R Rᵀ, R (N, r), dropping eigenvalues below RANK_TOLERANCE of the largest), so
that each atom carries the 3r projectors p_{αib}(m) = e^{−iK_m·τ_α} R_mi K_mb/√Ω and

    V_NL = Σ_α a(α) Σ_ib p_αib p_αibᴴ,
    V_SO = Σ_α a5(α) Σ_i Σ_bc p_αib [−i Σ_a ε_abc s^a] p_αicᴴ   (a 6×6 matrix in (b, σ)).

The s-channel kernel 4π Σ_q c_q j0(|K_m| r_q) j0(|K_n| r_q) ≈ R Rᵀ gives r projectors
p_αi(m) = e^{−iK_m·τ_α} R_mi/√Ω per atom, V_NL0 = Σ_α a9(α) Σ_i p_αi p_αiᴴ.

A block of m vectors costs O(n_atoms · N · 3r · m) per channel, by matrix products over
chunks of atoms (memory O(N · 3r · chunk)); nothing of size N × n_atoms is kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from dpp.physics.projectors import S_CHANNEL, angular_weight, channel_radial, radial_nodes_for
from dpp.physics.radial import projector_rules

RANK_TOLERANCE = 1e-14
"""Eigenvalues of the radial kernel P·I kept: above this fraction of the largest."""

CHUNK_ELEMENTS = 1 << 22
"""Projector elements (N × 3r × atoms) formed at once: 64 MB of complex128."""

CHANNELS = ("soc", "nl1", "nl2", S_CHANNEL)
"""Radial channels (dpp.physics.radial): spin–orbit, nonlocal Gaussian, shifted Gaussian
(l = 1) and the s-channel Gaussian (l = 0)."""

PAULI = torch.tensor(
    [[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]], dtype=torch.complex128
)
"""σ_x, σ_y, σ_z."""


def radial_factors(norms: torch.Tensor, channel: str) -> torch.Tensor:
    """R (N, r) with R Rᵀ = 12π Σ_q c_q F_mq F_nq (Bohr³, as P·I of dpp.physics.projectors;
    0 where K_m = 0), or 4π Σ_q c_q j0(|K_m| r_q) j0(|K_n| r_q) for the s-channel, to a
    relative RANK_TOLERANCE, for |K_m| (N,) in 1/Bohr."""
    nodes, weights = projector_rules(radial_nodes_for(float(norms.max())))[channel]
    scale = torch.as_tensor(
        angular_weight(channel) * weights, dtype=norms.dtype, device=norms.device
    )
    nodes = torch.as_tensor(nodes, dtype=norms.dtype, device=norms.device)
    factors = channel_radial(norms, nodes, channel)
    left, values, _ = torch.linalg.svd(factors * scale.sqrt(), full_matrices=False)
    keep = values**2 > RANK_TOLERANCE * values[0] ** 2
    return left[:, keep] * values[keep]


def spin_orbit_matrix() -> torch.Tensor:
    """M[(b,σ),(c,σ')] = −i Σ_a ε_abc ⟨σ|s^a|σ'⟩ with s = σ_Pauli/2: (6, 6), Hermitian."""
    matrix = torch.zeros((3, 2, 3, 2), dtype=torch.complex128)
    for a, b, c in ((0, 1, 2), (1, 2, 0), (2, 0, 1)):
        matrix[b, :, c, :] += -0.5j * PAULI[a]
        matrix[c, :, b, :] -= -0.5j * PAULI[a]
    return matrix.reshape(6, 6)


class SeparableProjectors:
    """The nonlocal (and, for spinors, spin–orbit) terms of a box.

    waves: K_m = k + G_m (N, 3) in 1/Bohr; positions (n_atoms, 3) in Bohr; strengths
    {channel: (n_atoms,)} with channels `soc` (a5), `nl1` (a6), `nl2` (a7) of each atom's
    species (physics.md §4) and `nl0` (a9, the s-channel); volume Ω in Bohr³. With `spinor`,
    vectors are (2N, m), spin up first; otherwise (N, m) and `soc` must be absent.
    """

    def __init__(
        self,
        waves: torch.Tensor,
        positions: np.ndarray,
        strengths: dict[str, np.ndarray],
        volume: float,
        *,
        spinor: bool,
    ) -> None:
        if not spinor and "soc" in strengths:
            raise ValueError("spin–orbit needs spinor vectors")
        self.waves = waves
        self.spinor = spinor
        self.volume = volume
        device = waves.device
        norms = waves.norm(dim=1)
        self.channels: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        for channel in CHANNELS:
            values = np.asarray(strengths.get(channel, ()), dtype=np.float64)
            active = np.flatnonzero(values) if values.size else np.zeros(0, dtype=np.int64)
            if active.size == 0:
                continue
            factors = radial_factors(norms, channel)
            if channel != S_CHANNEL:
                factors = (factors[:, :, None] * waves[:, None, :]).reshape(len(factors), -1)
            self.channels[channel] = (
                (factors / math.sqrt(volume)).to(torch.complex128),
                torch.as_tensor(positions[active], dtype=torch.float64, device=device),
                torch.as_tensor(values[active], dtype=torch.float64, device=device),
            )
        self._spin_orbit = spin_orbit_matrix().to(device)

    @property
    def active(self) -> bool:
        """Whether any channel has a non-zero strength."""
        return bool(self.channels)

    def rank(self, channel: str) -> int:
        """Radial rank r of `channel` (its projectors per atom are 3r, r for the s-channel)."""
        per_atom = self.channels[channel][0].shape[1]
        return per_atom if channel == S_CHANNEL else per_atom // 3

    def terms(self) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
        """`spin_orbit`, `nonlocal` and `nonlocal_s` operators (vectors (dim, m) → (dim, m))
        that are active (the names of dpp.physics.terms)."""
        operators = {}
        if "soc" in self.channels:
            operators["spin_orbit"] = lambda v: self.apply(v, ("soc",))
        if "nl1" in self.channels or "nl2" in self.channels:
            operators["nonlocal"] = lambda v: self.apply(v, ("nl1", "nl2"))
        if S_CHANNEL in self.channels:
            operators["nonlocal_s"] = lambda v: self.apply(v, (S_CHANNEL,))
        return operators

    def apply(self, vectors: torch.Tensor, channels: tuple[str, ...] = CHANNELS) -> torch.Tensor:
        """Σ of the `channels`' terms applied to `vectors` (dim, m), Hartree."""
        n = self.waves.shape[0]
        m = vectors.shape[1]
        spins = 2 if self.spinor else 1
        # (N, spins·m): the spin components side by side
        stacked = vectors.reshape(spins, n, m).permute(1, 0, 2).reshape(n, spins * m)
        out = torch.zeros_like(stacked)
        for channel in channels:
            if channel not in self.channels:
                continue
            factors, positions, strengths = self.channels[channel]
            per_atom = factors.shape[1]
            chunk = max(1, CHUNK_ELEMENTS // (n * per_atom))
            for start in range(0, positions.shape[0], chunk):
                phases = torch.exp(-1j * (self.waves @ positions[start : start + chunk].T))
                projectors = (phases[:, :, None] * factors[:, None, :]).reshape(n, -1)
                overlaps = projectors.mH @ stacked  # (atoms·3r, spins·m)
                overlaps = overlaps.reshape(-1, per_atom, spins * m)
                overlaps = overlaps * strengths[start : start + chunk, None, None]
                if channel == "soc":
                    overlaps = self._rotate_spin(overlaps, m)
                out += projectors @ overlaps.reshape(-1, spins * m)
        return out.reshape(n, spins, m).permute(1, 0, 2).reshape(spins * n, m)

    def _rotate_spin(self, overlaps: torch.Tensor, m: int) -> torch.Tensor:
        """Apply the 6×6 spin–orbit matrix over (component b, spin σ) to projections
        (atoms, r·3, 2·m)."""
        atoms, per_atom, _ = overlaps.shape
        split = overlaps.reshape(atoms, per_atom // 3, 3, 2, m).reshape(atoms, -1, 6, m)
        rotated = torch.einsum("ij,arjm->arim", self._spin_orbit, split)
        return rotated.reshape(atoms, per_atom // 3, 3, 2, m).reshape(atoms, per_atom, 2 * m)

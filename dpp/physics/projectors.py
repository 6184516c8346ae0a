"""Low-rank factors of the spin-orbit and nonlocal kernels (physics.md §5.6–5.8).

For K_m = k + G_m (1/Bohr) the radial part P_mn·I(|K_m|, |K_n|) = 12π Σ_q c_q F_mq F_nq with
F_mq = j1(|K_m| r_q)/|K_m| is a rank-n_q product, and the angular parts K_m·K_n and
K_m × K_n are rank-3 bilinear forms. With u_mqa = F_mq K_ma the kernels are

    dot   P·I ∘ (K_m·K_n)      = Σ_qa  c_q u_mqa u_nqa                    (nonlocal)
    cross P·I ∘ (K_m×K_n)_a    = Σ_q   c_q (u_mqb u_nqc − u_mqc u_nqb)     (spin-orbit, abc cyclic)

so each N×N kernel is one real matrix product of inner size 3n_q (dot) or 2n_q (cross).
The s-channel (l = 0) kernel 4π Σ_q c_q j0(|K_m| r_q) j0(|K_n| r_q) has no angular part.
Only the factors F (N, n_q per channel) and K (N, 3) are kept per k-point (0.6 MB per channel
at N = 1189, against 54 MB of kernels); the kernels are formed transiently where a term
needs them. The species enter elsewhere, through Σ_s a_s S_s.
"""

from __future__ import annotations

import math

import torch

from dpp.physics.radial import SHIFTED_CUTOFF, projector_rules, spherical_j0, spherical_j1

CYCLIC = ((1, 2), (2, 0), (0, 1))
"""(b, c) of each component a of a cross product: (K_m × K_n)_a = K_mb K_nc − K_mc K_nb."""

S_CHANNEL = "nl0"
"""The nonlocal l = 0 channel; every other channel is l = 1."""


def angular_weight(channel: str) -> float:
    """4π(2l + 1): the Legendre expansion factor of a channel's kernel (12π for l = 1)."""
    return 4.0 * math.pi if channel == S_CHANNEL else 12.0 * math.pi


def channel_radial(norms: torch.Tensor, nodes: torch.Tensor, channel: str) -> torch.Tensor:
    """The radial factor of `channel` at |K_m| (N,) in 1/Bohr and nodes r_q (n_q,) in Bohr:
    j0(|K_m| r_q) for the s-channel, F_mq = j1(|K_m| r_q)/|K_m| (Bohr) otherwise; (N, n_q)."""
    if channel == S_CHANNEL:
        return spherical_j0(norms[:, None] * nodes)
    return scaled_j1(norms, nodes)


def radial_nodes_for(k_max: float) -> int:
    """Gauss–Legendre nodes that resolve j1(K r) j1(K' r) up to |K| = k_max (1/Bohr)."""
    return max(64, int(3.0 * k_max * SHIFTED_CUTOFF / math.pi) + 32)


def scaled_j1(norms: torch.Tensor, nodes: torch.Tensor) -> torch.Tensor:
    """F_mq = j1(|K_m| r_q)/|K_m| (0 where K_m = 0): (N, n_q) in Bohr, for |K_m| (N,) in
    1/Bohr and radial nodes r_q (n_q,) in Bohr."""
    safe = torch.where(norms > 0, norms, torch.ones_like(norms))
    values = spherical_j1(norms[:, None] * nodes) / safe[:, None]
    return torch.where(norms[:, None] > 0, values, torch.zeros_like(values))


class ProjectorFactors:
    """The factors u_mqa = F_mq K_ma of every k-point of one system, built on demand.

    With `cache`, the factors of a k-point are kept after their first use (the `cacheSO`
    switch); they never depend on the trainable parameters.
    """

    def __init__(self, basis: torch.Tensor, kpoints: torch.Tensor, *, cache: bool) -> None:
        self.basis = basis
        self.kpoints = kpoints
        self.cache = cache
        self._cached: dict[tuple[int, str], torch.Tensor] = {}
        self._bounds: dict[str, float] = {}
        k_max = float((kpoints.norm(dim=1).max() + basis.norm(dim=1).max()).item())
        self._weights = {}
        self._nodes = {}
        for name, (nodes, weights) in projector_rules(radial_nodes_for(k_max)).items():
            self._nodes[name] = torch.as_tensor(nodes, dtype=basis.dtype, device=basis.device)
            self._weights[name] = angular_weight(name) * torch.as_tensor(
                weights, dtype=basis.dtype, device=basis.device
            )

    def factors(self, k: int, channel: str) -> torch.Tensor:
        """u_mqa = F_mq K_ma of k-point `k` for `channel`: (N, n_q, 3), dimensionless."""
        waves = self.kpoints[k] + self.basis
        return self._radial(k, channel, waves)[:, :, None] * waves[:, None, :]

    def _radial(self, k: int, channel: str, waves: torch.Tensor) -> torch.Tensor:
        """F_mq = j1(|K_m| r_q)/|K_m| (0 where K_m = 0), in Bohr, or j0(|K_m| r_q) for the
        s-channel: (N, n_q)."""
        key = (k, channel)
        if key in self._cached:
            return self._cached[key]
        radial = channel_radial(waves.norm(dim=1), self._nodes[channel], channel)
        if self.cache:
            self._cached[key] = radial
        return radial

    def _dot_factors(self, k: int, channel: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Factors U (N, r) and weights w (r,) with dot kernel = (U ∘ w) Uᵀ: u_mqa flattened
        (r = 3n_q), or j0(|K_m| r_q) for the s-channel (r = n_q)."""
        if channel == S_CHANNEL:
            return self._radial(k, channel, self.kpoints[k] + self.basis), self._weights[channel]
        factors = self.factors(k, channel)
        return factors.reshape(factors.shape[0], -1), self._weights[channel].repeat_interleave(3)

    def dot_kernel(self, k: int, channel: str) -> torch.Tensor:
        """P·I_c(|K_m|, |K_n|)·(K_m·K_n), real (N, N), Bohr³ (the nonlocal l = 1 kernels), or
        4π Σ_q c_q j0(|K_m| r_q) j0(|K_n| r_q) for the s-channel (l = 0)."""
        flat, weights = self._dot_factors(k, channel)
        return (flat * weights) @ flat.T

    def cross_kernels(self, k: int, channel: str = "soc") -> tuple[torch.Tensor, ...]:
        """P·I_c ∘ (K_m × K_n)_a for a = x, y, z: three real (N, N) kernels."""
        left, right = self._cross_factors(k, channel)
        return tuple(a @ b.T for a, b in zip(left, right, strict=True))

    def _cross_factors(self, k: int, channel: str) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per component a: (N, 2n_q) factors A, B with kernel_a = A Bᵀ."""
        factors = self.factors(k, channel)
        weights = self._weights[channel]
        left, right = [], []
        for b, c in CYCLIC:
            left.append(torch.cat([factors[:, :, b], factors[:, :, c]], dim=1))
            right.append(
                torch.cat([weights * factors[:, :, c], -weights * factors[:, :, b]], dim=1)
            )
        return left, right

    def dot_kernel_norm(self, channel: str) -> float:
        """max over k of ‖dot kernel‖_F: an upper bound of its spectral norm, Bohr³."""
        key = f"dot:{channel}"
        if key not in self._bounds:
            norms = []
            for k in range(self.kpoints.shape[0]):
                flat, weights = self._dot_factors(k, channel)
                gram = flat.T @ flat
                norms.append(float((weights[:, None] * weights[None, :] * gram * gram).sum()))
            self._bounds[key] = math.sqrt(max(norms))
        return self._bounds[key]

    def cross_kernel_norm(self, channel: str = "soc") -> float:
        """max over k of sqrt(Σ_a ‖cross kernel_a‖_F²), Bohr³ (bounds the spin-orbit term)."""
        key = f"cross:{channel}"
        if key not in self._bounds:
            norms = []
            for k in range(self.kpoints.shape[0]):
                left, right = self._cross_factors(k, channel)
                total = sum(
                    float(((a.T @ a) * (b.T @ b)).sum()) for a, b in zip(left, right, strict=True)
                )
                norms.append(total)
            self._bounds[key] = math.sqrt(max(norms))
        return self._bounds[key]

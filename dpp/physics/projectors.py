"""k-dependent kernels of the spin-orbit and nonlocal terms (physics.md §5.6–5.8).

For K_m = k + G_m the radial part P_mn·I(|K_m|, |K_n|) = 12π Σ_q c_q F_mq F_nq with
F_mq = j1(|K_m| r_q)/|K_m| is a rank-n_q matrix product. It does not depend on the species:
the species enter only through Σ_s a_s S_s, which is k-independent and built once per step.
The five real kernels returned per k are

    0..2  P·I_0.7 ∘ c_x, c_y, c_z        (c = K_m × K_n, spin-orbit)
    3     P·I_1.0 ∘ (K_m·K_n)            (nonlocal channel 1)
    4     P·J ∘ (K_m·K_n)                (nonlocal channel 2)
"""

from __future__ import annotations

import math

import torch

from dpp.physics.radial import SHIFTED_CUTOFF, projector_rules, spherical_j1

N_KERNELS = 5


def radial_nodes_for(k_max: float) -> int:
    """Gauss–Legendre nodes that resolve j1(K r) j1(K' r) up to |K| = k_max (1/Bohr)."""
    return max(64, int(3.0 * k_max * SHIFTED_CUTOFF / math.pi) + 32)


class ProjectorKernels:
    """Builds (and optionally caches) the five kernels of each k-point of one system."""

    def __init__(self, basis: torch.Tensor, kpoints: torch.Tensor, *, cache: bool) -> None:
        self.basis = basis
        self.kpoints = kpoints
        self.cache = cache
        self._cached: dict[int, torch.Tensor] = {}
        k_max = float((kpoints.norm(dim=1).max() + basis.norm(dim=1).max()).item())
        self._rules = {
            name: tuple(torch.as_tensor(a, dtype=basis.dtype, device=basis.device) for a in rule)
            for name, rule in projector_rules(radial_nodes_for(k_max)).items()
        }

    def kernels(self, k_indices: torch.Tensor) -> torch.Tensor:
        """Kernels of the given k-points, shape (B, 5, N, N), real."""
        return torch.stack([self._kernel(int(k)) for k in k_indices.tolist()])

    def _kernel(self, k: int) -> torch.Tensor:
        if k in self._cached:
            return self._cached[k]
        kernel = self._build(self.kpoints[k])
        if self.cache:
            self._cached[k] = kernel
        return kernel

    def _radial(self, wave: torch.Tensor, norms: torch.Tensor, channel: str) -> torch.Tensor:
        nodes, weights = self._rules[channel]
        safe = torch.where(norms > 0, norms, torch.ones_like(norms))
        factor = spherical_j1(norms[:, None] * nodes) / safe[:, None]
        factor = torch.where(norms[:, None] > 0, factor, torch.zeros_like(factor))
        return 12.0 * math.pi * (factor * weights) @ factor.T

    def _build(self, k: torch.Tensor) -> torch.Tensor:
        wave = k + self.basis
        norms = wave.norm(dim=1)
        soc = self._radial(wave, norms, "soc")
        x, y, z = wave.unbind(1)
        cross = (
            torch.outer(y, z) - torch.outer(z, y),
            torch.outer(z, x) - torch.outer(x, z),
            torch.outer(x, y) - torch.outer(y, x),
        )
        dot = wave @ wave.T
        return torch.stack(
            [
                soc * cross[0],
                soc * cross[1],
                soc * cross[2],
                self._radial(wave, norms, "nl1") * dot,
                self._radial(wave, norms, "nl2") * dot,
            ]
        )

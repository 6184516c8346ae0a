"""A box Hamiltonian at Γ without spinors on real coordinates (Hartree).

There H commutes with K: ψ(G) → ψ(−G)* (V_loc(r) is real and the projectors are real
operators in real space), so its eigenvectors can be taken real in real space. On the real
coordinates ψ(±G) = (c_G ± i s_G)/√2 of every pair {G, −G} of the basis and ψ(0) = c_0
(a unitary map), those vectors are real vectors of the same length N: the solver's
Rayleigh–Ritz runs in real arithmetic, and V_loc acts on two vectors per FFT, as
ψ_a + i ψ_b (both real in real space), separated after by ψ(G) = (C(G) ± C(−G)*)/2.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from dpp.states.hamiltonian import GridHamiltonian, label_index


def _mirror(labels: np.ndarray) -> np.ndarray | None:
    """The index of −G for every label G (M, 3), None when the basis lacks some −G."""
    try:
        return label_index(-labels, labels)
    except ValueError:
        return None


def real_gamma(hamiltonian: GridHamiltonian) -> RealGamma | None:
    """The real form of `hamiltonian`, None for spinors, k ≠ 0 or a basis not closed
    under G → −G."""
    if hamiltonian.spinor or not hamiltonian.gamma:
        return None
    mirror = _mirror(hamiltonian.labels)
    return None if mirror is None else RealGamma(hamiltonian, mirror)


class RealGamma:
    """H on real coordinates: (N, m) float64 vectors to (N, m); see the module docstring.
    Coordinates: c_0, then c_G and s_G of one G of every pair (first nonzero label > 0)."""

    def __init__(self, hamiltonian: GridHamiltonian, mirror: np.ndarray) -> None:
        self.hamiltonian = hamiltonian
        labels = hamiltonian.labels
        nonzero = labels != 0
        first = labels[np.arange(len(labels)), nonzero.argmax(axis=1)]
        device = hamiltonian.device
        self.zero = torch.as_tensor(np.flatnonzero(~nonzero.any(axis=1)), device=device)
        self.plus = torch.as_tensor(np.flatnonzero(first > 0), device=device)
        self.minus = torch.as_tensor(mirror[self.plus.cpu().numpy()], device=device)
        self.mirror = torch.as_tensor(mirror, device=device)
        kinetic = hamiltonian.kinetic
        self.diagonal = torch.cat([kinetic[self.zero], kinetic[self.plus], kinetic[self.plus]])
        self.mean_potential = hamiltonian.mean_potential
        self.device = device
        self.dim = hamiltonian.n_basis
        self.dtype = torch.float64

    def to_complex(self, vectors: torch.Tensor) -> torch.Tensor:
        """The plane-wave coefficients (N, m) complex128 of real coordinates (N, m)."""
        n_zero, n_pairs = len(self.zero), len(self.plus)
        cosine = vectors[n_zero : n_zero + n_pairs]
        sine = vectors[n_zero + n_pairs :]
        out = torch.empty(vectors.shape, dtype=torch.complex128, device=self.device)
        out[self.zero] = vectors[:n_zero].to(torch.complex128)
        out[self.plus] = torch.complex(cosine, sine) / math.sqrt(2.0)
        out[self.minus] = torch.complex(cosine, -sine) / math.sqrt(2.0)
        return out

    def to_real(self, vectors: torch.Tensor) -> torch.Tensor:
        """Real coordinates of plane-wave coefficients with ψ(−G) = ψ(G)*."""
        plus = vectors[self.plus] * math.sqrt(2.0)
        return torch.cat([vectors[self.zero].real, plus.real, plus.imag])

    def _local(self, vectors: torch.Tensor) -> torch.Tensor:
        """V_loc ψ for plane-wave coefficients (N, m) with ψ(−G) = ψ(G)*: two per FFT."""
        half = (vectors.shape[1] + 1) // 2
        second = vectors[:, half:]
        if second.shape[1] < half:
            second = torch.cat([second, torch.zeros_like(vectors[:, :1])], dim=1)
        packed = self.hamiltonian.apply_local(vectors[:, :half] + 1j * second)
        mirrored = packed[self.mirror].conj()
        first = 0.5 * (packed + mirrored)
        second = -0.5j * (packed - mirrored)
        return torch.cat([first, second], dim=1)[:, : vectors.shape[1]]

    def __call__(self, vectors: torch.Tensor) -> torch.Tensor:
        """H ψ in Hartree on real coordinates (N, m) float64."""
        waves = self.to_complex(vectors)
        out = self.hamiltonian.kinetic[:, None] * waves + self._local(waves)
        projectors = self.hamiltonian.projectors
        if projectors.active:
            out += projectors.apply(waves)
        return self.to_real(out)

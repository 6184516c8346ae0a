"""Real and reciprocal lattices of a crystal (Bohr, 1/Bohr)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dpp.io.records import Crystal


def reciprocal_vectors(vectors: np.ndarray) -> np.ndarray:
    """The dual basis as rows, 2π (A⁻¹)ᵀ (a_r · b_s = 2π δ_rs): reciprocal vectors in 1/Bohr
    for lattice vectors in Bohr, and lattice vectors for reciprocal ones."""
    return 2.0 * np.pi * np.linalg.inv(np.asarray(vectors, dtype=np.float64)).T


@dataclass(frozen=True)
class Lattice:
    """Lattice vectors a_r (rows, Bohr), reciprocal b_r (rows, 1/Bohr), volume Ω (Bohr³)."""

    vectors: np.ndarray
    reciprocal: np.ndarray
    volume: float

    @classmethod
    def from_crystal(cls, crystal: Crystal, strain: float = 1.0) -> Lattice:
        """Build the lattice, optionally uniformly deformed by lattice-constant ratio `strain`."""
        vectors = crystal.scale * strain * np.asarray(crystal.cell, dtype=np.float64)
        a1, a2, a3 = vectors
        volume = float(np.dot(a1, np.cross(a2, a3)))
        reciprocal = (
            2.0 * np.pi * np.stack([np.cross(a2, a3), np.cross(a3, a1), np.cross(a1, a2)]) / volume
        )
        return cls(vectors=vectors, reciprocal=reciprocal, volume=volume)

    def cartesian_positions(self, fractional: np.ndarray) -> np.ndarray:
        """Atom positions τ = f @ A in Bohr."""
        return np.asarray(fractional, dtype=np.float64) @ self.vectors

    def cartesian_kpoints(self, fractional: np.ndarray) -> np.ndarray:
        """k = κ @ B in 1/Bohr."""
        return np.asarray(fractional, dtype=np.float64) @ self.reciprocal

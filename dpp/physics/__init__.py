"""Plane-wave pseudopotential physics: no file I/O, no Lightning (usable from a notebook)."""

from dpp.physics.band_structure import band_structure, build_hamiltonian
from dpp.physics.constants import AUTOEV
from dpp.physics.eigensolver import lowest_eigh
from dpp.physics.hamiltonian import PseudopotentialHamiltonian
from dpp.physics.options import PhysicsOptions

__all__ = [
    "AUTOEV",
    "PhysicsOptions",
    "PseudopotentialHamiltonian",
    "band_structure",
    "build_hamiltonian",
    "lowest_eigh",
]

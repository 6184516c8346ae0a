"""The interface of a loss term (in the manner of SchNetPack's ModelOutput): a name, a weight
and a value computed from the Hamiltonian.

Two kinds exist. A `KPointTerm` is a sum over (system, k-point) items, so it can be evaluated
on any batch of k-points and the batch values add up to the full value (and gradient); a
`GlobalTerm` is evaluated once per step (penalties, deformation potentials, couplings). Both
gradient training and Monte Carlo evaluate the same list of terms (`Objective`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch

from dpp.physics.hamiltonian import PseudopotentialHamiltonian


class KPointTerm(ABC):
    """A loss term additive over the k-points of each system (eV² unless stated)."""

    name: str = "kpoint_term"
    weight: float = 1.0
    couples_systems: bool = False
    """Whether a system's value depends on the other systems' bands (`align` them first)."""

    @abstractmethod
    def value(
        self,
        hamiltonian: PseudopotentialHamiltonian,
        system: int,
        k_indices: torch.Tensor,
        bands: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The unweighted term of `system` over `k_indices`, differentiable; `bands` are
        the term's own `bands(...)` at these k-points when the caller has them already."""

    def bands(
        self, hamiltonian: PseudopotentialHamiltonian, system: int, k_indices: torch.Tensor
    ) -> torch.Tensor | None:
        """Bands (eV) the term compares with its reference at these k-points, if any."""
        return None

    def align(self, hamiltonian: PseudopotentialHamiltonian, bands: Sequence[torch.Tensor]) -> None:
        """Take the bands (nK, nBands, eV) of every system at every k-point before values are
        taken at the same parameters (terms that couple systems; nothing by default)."""
        return None


class GlobalTerm(ABC):
    """A loss term evaluated once per step over whole systems."""

    name: str = "global_term"
    weight: float = 1.0
    solves: bool = True
    """Whether `values` diagonalises Hamiltonians (False: cheap, from v(q) or parameters)."""

    @abstractmethod
    def values(self, hamiltonian: PseudopotentialHamiltonian) -> dict[str, torch.Tensor]:
        """Unweighted values by label (e.g. `defpot_sys0`), differentiable; none when the
        term does not apply to this Hamiltonian."""

    def residuals(self, hamiltonian: PseudopotentialHamiltonian) -> dict[str, torch.Tensor] | None:
        """The unweighted values as sums of squares by label: residuals r (n,) with
        Σ r² = values()[label], differentiable; None when the term is no such sum (then
        Gauss–Newton cannot model it when it `solves`)."""
        return None

"""The Term interface (in the manner of DFTK.jl's `src/terms/`).

A term keeps its parameters apart from its precomputed data:

- parameters (the species table of slots a0..a9 and the network) arrive at evaluation time
  as `Parameters`, shared by every system;
- precomputed data (plane-wave basis, |k+G|², structure factors, projector factors) is
  built once per system, when the term is constructed from a `SystemContext`.

There are two kinds. A `FormFactorTerm` contributes to the screened form factor v_s(q)
(Hartree·Bohr³) of every species; the chain of them, in registry order, is what the local
potential is made of. An `OperatorTerm` contributes to the matrix H(k) (Hartree) of one
system: a fixed part (e.g. the kinetic energy) plus a part linear in a few k-independent,
differentiable `coefficients` (e.g. V_loc or Σ_s a_s S_s). `add_to` adds it for a batch of k
in place; `adjoint` maps a gradient of H back to the coefficients. The Hamiltonian
assembles H(k) from the active operator terms inside one autograd function, so no per-k
intermediate is kept for the backward pass.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from dpp.models import is_zero_function
from dpp.physics.geometry import SystemGeometry
from dpp.physics.options import PhysicsOptions
from dpp.physics.projectors import ProjectorFactors
from dpp.slots import Slot

Coefficients = tuple[torch.Tensor, ...]


@dataclass(frozen=True)
class Parameters:
    """What terms read at evaluation time: the (n_species, N_SLOTS) table and the model."""

    table: torch.Tensor
    model: nn.Module | None = None

    @property
    def uses_network(self) -> bool:
        """True when the local form factor is a network (not None, not ZeroFunction)."""
        return self.model is not None and not is_zero_function(self.model)


FormFactorFunction = Callable[[torch.Tensor, Parameters, float], torch.Tensor]
"""v_s(q) for q (M,) in 1/Bohr, the parameters and Ω/Ω0 → (M, n_species), Hartree·Bohr³."""


@dataclass(frozen=True)
class SystemContext:
    """Everything an operator term of one system may precompute from."""

    geometry: SystemGeometry
    options: PhysicsOptions
    projectors: ProjectorFactors
    form_factors: FormFactorFunction

    @property
    def n_basis(self) -> int:
        return self.geometry.n_basis

    @property
    def spinor(self) -> bool:
        """Whether H(k) is the 2N×2N spinor matrix (spin-up block first)."""
        return self.options.spin_orbit

    @property
    def dim(self) -> int:
        return self.n_basis * (2 if self.spinor else 1)


class Term(ABC):
    """Common to both kinds: a name, the parameter slots read, and when it is active."""

    name: ClassVar[str]
    slots: ClassVar[tuple[Slot, ...]] = ()

    @classmethod
    def enabled(cls, options: PhysicsOptions) -> bool:
        """Whether the term is part of a Hamiltonian with these options."""
        return True


class FormFactorTerm(Term):
    """A contribution to v_s(q), shared by all systems (no per-system data)."""

    def __init__(self, options: PhysicsOptions) -> None:
        self.options = options

    @abstractmethod
    def apply(
        self,
        q: torch.Tensor,
        values: torch.Tensor | None,
        parameters: Parameters,
        volume_ratio: float,
    ) -> torch.Tensor:
        """The form factors (M, n_species) after this term, given those before it
        (None for the first term); q (M,) in 1/Bohr, `volume_ratio` = Ω/Ω0."""


class OperatorTerm(Term):
    """A contribution to H(k) of one system, affine in its `coefficients`."""

    def __init__(self, context: SystemContext) -> None:
        self.context = context

    def coefficients(self, parameters: Parameters) -> Coefficients:
        """The k-independent tensors this term's matrix is linear in (differentiable)."""
        return ()

    @abstractmethod
    def add_to(
        self, out: torch.Tensor, k_indices: torch.Tensor, coefficients: Coefficients
    ) -> None:
        """out[b] += this term's matrix at k-point k_indices[b]; out (B, dim, dim), k long (B,)."""

    def adjoint(self, grad: torch.Tensor, k_indices: torch.Tensor) -> Coefficients:
        """Gradients of the coefficients from the gradient (B, dim, dim) of the batch.

        This is the adjoint of the linear part of `add_to` (torch's convention for complex
        tensors: for out = c ∘ K the gradient of c is Σ_b grad_b ∘ conj(K_b)).
        """
        return ()

    def drift_state(self, parameters: Parameters, coefficients: Coefficients) -> object:
        """A small detached record of what the matrix depends on (for `drift`)."""
        return tuple(c.detach() for c in coefficients)

    def drift(self, before: object, after: object) -> float:
        """An upper bound (Hartree) on ‖ΔH(k)‖₂ over all k between two `drift_state`s.

        The default is exact but blunt: 0 when nothing changed, otherwise infinity (every
        warm-started eigensolve of the system then falls back to a dense one).
        """
        same = all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
        return 0.0 if same else math.inf


def spin_blocks(out: torch.Tensor, b: int, context: SystemContext) -> list[torch.Tensor]:
    """Views of the spin-diagonal blocks of out[b]: the whole matrix without spinors, the
    ↑↑ and ↓↓ blocks with them (a term identical in both spins adds to each)."""
    n = context.n_basis
    blocks = [out[b, :n, :n]]
    if context.spinor:
        blocks.append(out[b, n:, n:])
    return blocks


def strength_matrix(geometry: SystemGeometry, strengths: torch.Tensor) -> torch.Tensor:
    """Σ_s a_s S_s for one slot's strengths a_s (n_species,): complex (N, N), 1/Bohr³·[a]."""
    factors = geometry.structure_factors
    return torch.einsum("s,smn->mn", strengths.to(factors.dtype), factors)


def strength_drift(geometry: SystemGeometry, before: torch.Tensor, after: torch.Tensor) -> float:
    """Σ_s |Δa_s| max_m S_s[m, m] = Σ_s |Δa_s| n_atoms(s)/|Ω|, 1/Bohr³·[a].

    S_s = Σ_{α∈s} φ_α φ_αᴴ/|Ω| is positive semidefinite, so ‖S_s ∘ K‖₂ ≤ max_m S_s[m, m]·‖K‖₂
    (Schur); times a bound of ‖K‖₂ this bounds the change of a projector term.
    """
    diagonal = geometry.structure_factors.diagonal(dim1=-2, dim2=-1).real[:, 0]
    return float(((after - before).abs() * diagonal).sum())

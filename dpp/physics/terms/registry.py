"""The list of terms: which exist, in which order, and how to instantiate the active ones.

`FORM_FACTOR_TERMS` run in this order on every v_s(q) (the strain factor multiplies what
comes before it); `OPERATOR_TERMS` are added into H(k) in this order. A term is active when
its `enabled(options)` says so.
"""

from __future__ import annotations

import torch

from dpp.physics.options import PhysicsOptions
from dpp.physics.terms.base import FormFactorTerm, OperatorTerm, Parameters, SystemContext
from dpp.physics.terms.kinetic import KineticTerm
from dpp.physics.terms.local import LocalFormFactor, LocalPotential
from dpp.physics.terms.long_range import LongRangeTail
from dpp.physics.terms.nonlocal_l0 import SChannelTerm
from dpp.physics.terms.nonlocal_l1 import NonlocalTerm
from dpp.physics.terms.spin_orbit import SpinOrbitTerm
from dpp.physics.terms.strain import StrainFactor

FORM_FACTOR_TERMS: tuple[type[FormFactorTerm], ...] = (LocalFormFactor, LongRangeTail, StrainFactor)
OPERATOR_TERMS: tuple[type[OperatorTerm], ...] = (
    LocalPotential,
    KineticTerm,
    NonlocalTerm,
    SpinOrbitTerm,
    SChannelTerm,
)


class FormFactorChain:
    """The active form-factor terms applied in order: q (M,) → v_s(q) (M, n_species)."""

    def __init__(self, options: PhysicsOptions) -> None:
        self.terms = [term(options) for term in FORM_FACTOR_TERMS if term.enabled(options)]

    def __call__(
        self, q: torch.Tensor, parameters: Parameters, volume_ratio: float
    ) -> torch.Tensor:
        values = None
        for term in self.terms:
            values = term.apply(q, values, parameters, volume_ratio)
        return values


def operator_terms(context: SystemContext) -> list[OperatorTerm]:
    """The active operator terms of one system, each with its precomputed data (none of
    them depends on the model, so views with another model share them)."""
    return [term(context) for term in OPERATOR_TERMS if term.enabled(context.options)]

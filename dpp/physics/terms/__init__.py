"""The terms of the Hamiltonian, one small module each (interface in `base`, list in `registry`)."""

from dpp.physics.terms.assembly import assemble
from dpp.physics.terms.base import (
    Coefficients,
    FormFactorTerm,
    OperatorTerm,
    Parameters,
    SystemContext,
    Term,
)
from dpp.physics.terms.registry import (
    FORM_FACTOR_TERMS,
    OPERATOR_TERMS,
    FormFactorChain,
    operator_terms,
)

__all__ = [
    "FORM_FACTOR_TERMS",
    "OPERATOR_TERMS",
    "Coefficients",
    "FormFactorChain",
    "FormFactorTerm",
    "OperatorTerm",
    "Parameters",
    "SystemContext",
    "Term",
    "assemble",
    "operator_terms",
]

"""PPmodel catalogue: neural-network local pseudopotentials v_s(q).

Every model maps q = |ΔG| (M, 1) float64 in 1/Bohr to (M, n_species) in Hartree·Bohr³.
"""

from dpp.models.catalog import (
    PPMODELS,
    CatalogEntry,
    build_model,
    has_batchnorm,
    is_zero_function,
)
from dpp.models.checkpoint import (
    check_finite_state,
    load_checkpoint,
    load_network,
    model_state,
    safe_torch_load,
)
from dpp.models.gates import CutoffGate, DecayGate, GatedNet, GaussianGate, ZeroFunction
from dpp.models.mlp import INITIALISERS, MLP, BodySpec
from dpp.models.settings import ModelSettings

__all__ = [
    "INITIALISERS",
    "MLP",
    "ModelSettings",
    "PPMODELS",
    "BodySpec",
    "CatalogEntry",
    "CutoffGate",
    "DecayGate",
    "GatedNet",
    "GaussianGate",
    "ZeroFunction",
    "build_model",
    "has_batchnorm",
    "is_zero_function",
    "load_checkpoint",
    "load_network",
    "model_state",
    "safe_torch_load",
    "check_finite_state",
]

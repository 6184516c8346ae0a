"""The PPmodel catalogue (bundle-format.md §11.3): class name → network, and build_model."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from dpp.errors import SettingError
from dpp.models.batchnorm import batchnorm_layers
from dpp.models.gates import CutoffGate, DecayGate, GatedNet, GaussianGate, ZeroFunction
from dpp.models.mlp import MLP, BodySpec

# Gate kinds and the `build_model` arguments each one needs.
GATE_KEYS: dict[str | None, tuple[str, ...]] = {
    None: (),
    "cutoff": (),
    "decay": ("decay_rate", "decay_center"),
    "decay2": (),
    "gaussian": ("gaussian_std",),
    "gaussian_scale": ("gaussian_std", "scale"),
}


@dataclass(frozen=True)
class CatalogEntry:
    """One PPmodel class: its network body (None for ZeroFunction) and its gate kind."""

    name: str
    body: BodySpec | None
    gate: str | None = None

    @property
    def config_keys(self) -> tuple[str, ...]:
        """`build_model` arguments this class needs besides the hidden layers."""
        return GATE_KEYS[self.gate]


_SIG = BodySpec("sigmoid", "default", "hidden")
_TANH = BodySpec("tanh", "default", "hidden", uses_dropout=True)
_RELU = BodySpec("relu", "default", "hidden")
_RELU_XAVIER = BodySpec("relu", "xavier_normal", "hidden_l")
_SIG_XAVIER = BodySpec("sigmoid", "xavier_normal", "hidden_l")
_CELU_HE = BodySpec("celu", "he_normal", "hidden_l")
_CELU_RAND = BodySpec("celu", "rand", "hidden_l")
_SIG_UNIFORM = BodySpec("sigmoid", "uniform01", "hidden")
_TANH_XAVIER_DROP = BodySpec("tanh", "xavier_uniform", "hidden", uses_dropout=True)
_RELU_HE = BodySpec("relu", "he_uniform", "hidden")
_SIG_BN = BodySpec("sigmoid", "default", "hidden_l", batchnorm=True)
_TANH_BN = BodySpec("tanh", "default", "hidden_l", batchnorm=True)
_RELU_BN = BodySpec("relu", "default", "hidden_l", batchnorm=True)
_XAVIER_BN = BodySpec("tanh", "xavier_uniform", "hidden_l", batchnorm=True)
_HE_BN = BodySpec("relu", "he_uniform", "hidden_l", batchnorm=True)
_RELU_XAVIER_BN = BodySpec("relu", "xavier_normal", "hidden_l", batchnorm=True)
_RELU_XAVIER_BN_DROP = BodySpec(
    "relu", "xavier_normal", "hidden_l", batchnorm=True, uses_dropout=True
)
# Wrappers whose Net_relu_xavier_BN_dropout body always has p = 0 (i.e. no dropout).
_RELU_XAVIER_BN_P0 = _RELU_XAVIER_BN

PPMODELS: dict[str, CatalogEntry] = {
    e.name: e
    for e in (
        CatalogEntry("Net_sig", _SIG),
        CatalogEntry("Net_tanh", _TANH),
        CatalogEntry("Net_relu", _RELU),
        CatalogEntry("Net_relu_xavier", _RELU_XAVIER),
        CatalogEntry("Net_sigmoid_xavier", _SIG_XAVIER),
        CatalogEntry("Net_celu_HeInit", _CELU_HE),
        CatalogEntry("Net_celu_RandInit", _CELU_RAND),
        CatalogEntry("Net_sig_UniformInit", _SIG_UNIFORM),
        CatalogEntry("Net_tanh_XavierInit_dropout", _TANH_XAVIER_DROP),
        CatalogEntry("Net_relu_HeInit", _RELU_HE),
        CatalogEntry("Net_sig_bn", _SIG_BN),
        CatalogEntry("Net_tanh_bn", _TANH_BN),
        CatalogEntry("Net_relu_bn", _RELU_BN),
        CatalogEntry("Net_Xavier_BN", _XAVIER_BN),
        CatalogEntry("Net_He_BN", _HE_BN),
        CatalogEntry("Net_relu_xavier_BN", _RELU_XAVIER_BN),
        CatalogEntry("Net_relu_xavier_BN_dropout", _RELU_XAVIER_BN_DROP),
        CatalogEntry("ZeroFunction", None),
        CatalogEntry("Net_relu_xavier_BN_dropout_decay", _RELU_XAVIER_BN_P0, "cutoff"),
        CatalogEntry("Net_relu_xavier_decay", _RELU_XAVIER, "decay"),
        CatalogEntry("Net_relu_xavier_decay2", _RELU_XAVIER, "decay2"),
        CatalogEntry("Net_relu_xavier_decayGaussian", _RELU_XAVIER, "gaussian"),
        CatalogEntry("Net_sigmoid_xavier_decayGaussian", _SIG_XAVIER, "gaussian"),
        CatalogEntry("Net_celu_HeInit_decayGaussian", _CELU_HE, "gaussian"),
        CatalogEntry("Net_celu_HeInit_scale_decayGaussian", _CELU_HE, "gaussian_scale"),
        CatalogEntry("Net_celu_RandInit_decayGaussian", _CELU_RAND, "gaussian"),
        CatalogEntry("Net_relu_HeInit_decayGaussian", _RELU_HE, "gaussian"),
        CatalogEntry("Net_relu_xavier_BN_decayGaussian", _RELU_XAVIER_BN, "gaussian"),
        CatalogEntry("Net_relu_xavier_BN_dropout_decayGaussian", _RELU_XAVIER_BN_P0, "gaussian"),
    )
}
"""Registry of the PPmodel catalogue, keyed by the original class name."""


def _lookup(name: str) -> CatalogEntry:
    if name in PPMODELS:
        return PPMODELS[name]
    close = difflib.get_close_matches(name, PPMODELS, n=1)
    raise SettingError(
        "name",
        "unknown model class" + (f" (did you mean '{close[0]}'?)" if close else ""),
        expected="a class name of the model catalogue (bundle-format §11.3)",
        found=name,
    )


def _gate(entry: CatalogEntry, n_species: int, args: dict[str, object]) -> nn.Module:
    """The gate module of ``entry`` from the gate arguments in ``args``."""
    for key in entry.config_keys:
        if args[key] is None:
            raise SettingError(key, f"{entry.name} needs it", expected="a value", found=None)
    if entry.gate == "cutoff":
        return CutoffGate(10.0)
    if entry.gate == "decay":
        return DecayGate(float(args["decay_rate"]), float(args["decay_center"]))
    if entry.gate == "decay2":
        return DecayGate(1.5, 6.0)
    sigma = float(args["gaussian_std"])
    if not sigma > 0.0:
        raise SettingError("gaussian_std", "Gaussian width", expected="> 0", found=sigma)
    if entry.gate == "gaussian":
        return GaussianGate(sigma)
    scale = [float(s) for s in torch.as_tensor(args["scale"]).reshape(-1)]
    if len(scale) != n_species:
        raise SettingError(
            "scale", "one factor per species", expected=f"{n_species} values", found=scale
        )
    return GaussianGate(sigma, scale)


def build_model(
    name: str,
    hidden_layers: Sequence[int],
    n_species: int,
    *,
    decay_rate: float | None = None,
    decay_center: float | None = None,
    gaussian_std: float | None = None,
    scale: Sequence[float] | torch.Tensor | None = None,
    dropout: float = 0.0,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
) -> nn.Module:
    """Build catalogue class ``name`` with layers ``[1] + hidden_layers + [n_species]``.

    The model maps q (M, 1) in 1/Bohr to v_s(q) (M, n_species) in Hartree·Bohr³. Weights are
    drawn from ``generator`` (the global torch RNG when None). ``dropout`` is p for the
    classes that apply dropout. Raises SettingError (naming the argument) for an unknown name
    or a missing/invalid gate value.
    """
    entry = _lookup(name)
    layers = [1, *(int(h) for h in hidden_layers), int(n_species)]
    if min(layers) < 1:
        raise SettingError(
            "hidden_layers", "layer sizes", expected="positive widths", found=list(hidden_layers)
        )
    if not 0.0 <= dropout < 1.0:
        raise SettingError("dropout", "dropout probability", expected="0 <= p < 1", found=dropout)
    if entry.body is None:
        model: nn.Module = ZeroFunction(n_species)
        model.catalog_name = name
        return model
    if dropout and not entry.body.uses_dropout:
        raise SettingError("dropout", f"{name} applies no dropout", expected="0", found=dropout)
    args = {
        "decay_rate": decay_rate,
        "decay_center": decay_center,
        "gaussian_std": gaussian_std,
        "scale": scale,
    }
    gate = _gate(entry, n_species, args) if entry.gate else None
    body = MLP(layers, entry.body, dropout=dropout, generator=generator, dtype=dtype)
    model = body if gate is None else GatedNet(body, gate)
    model.catalog_name = name  # recorded in saved checkpoints (dpp.models.checkpoint)
    return model


def has_batchnorm(model: nn.Module) -> bool:
    """True if the model contains batch norm (train-mode output depends on the whole batch)."""
    return bool(batchnorm_layers(model))


def is_zero_function(model: nn.Module) -> bool:
    """True for ZeroFunction (no network: analytic local form only)."""
    return isinstance(model, ZeroFunction)

"""The PPmodel catalogue (bundle-format.md §11.3): class name → network, and build_model."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dpp.errors import InputError
from dpp.models.gates import CutoffGate, DecayGate, GatedNet, GaussianGate, ZeroFunction
from dpp.models.mlp import MLP, BodySpec

# Gate kinds and the NN_config.par keys each one needs.
GATE_KEYS: dict[str | None, tuple[str, ...]] = {
    None: (),
    "cutoff": (),
    "decay": ("PPmodel_decay_rate", "PPmodel_decay_center"),
    "decay2": (),
    "gaussian": ("PPmodel_gaussian_std",),
    "gaussian_scale": ("PPmodel_gaussian_std", "PPmodel_scale"),
}


@dataclass(frozen=True)
class CatalogEntry:
    """One PPmodel class: its network body (None for ZeroFunction) and its gate kind."""

    name: str
    body: BodySpec | None
    gate: str | None = None

    @property
    def config_keys(self) -> tuple[str, ...]:
        """NN_config.par keys this class needs besides hiddenLayers."""
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


def _lookup(name: str, source: str | Path | None) -> CatalogEntry:
    if name in PPMODELS:
        return PPMODELS[name]
    close = difflib.get_close_matches(name, PPMODELS, n=1)
    raise InputError(
        source,
        "unknown PPmodel",
        key="PPmodel",
        expected="a class name of the model catalogue",
        found=repr(name),
        hint=f"did you mean '{close[0]}'?" if close else "see bundle-format.md §11.3",
    )


def _require(value: object, key: str, name: str, source: str | Path | None) -> None:
    if value is None:
        raise InputError(source, f"PPmodel {name} needs {key}", key=key, found="nothing")


def _gate(
    entry: CatalogEntry,
    n_species: int,
    args: dict[str, object],
    source: str | Path | None,
) -> nn.Module:
    """The gate module of ``entry`` from the NN_config.par values in ``args``."""
    for key in entry.config_keys:
        _require(args[key], key, entry.name, source)
    if entry.gate == "cutoff":
        return CutoffGate(10.0)
    if entry.gate == "decay":
        return DecayGate(float(args["PPmodel_decay_rate"]), float(args["PPmodel_decay_center"]))
    if entry.gate == "decay2":
        return DecayGate(1.5, 6.0)
    sigma = float(args["PPmodel_gaussian_std"])
    if not sigma > 0.0:
        raise InputError(
            source, "Gaussian width must be positive", key="PPmodel_gaussian_std", found=str(sigma)
        )
    if entry.gate == "gaussian":
        return GaussianGate(sigma)
    scale = [float(s) for s in torch.as_tensor(args["PPmodel_scale"]).reshape(-1)]
    if len(scale) != n_species:
        raise InputError(
            source,
            "one scale factor per species is needed",
            key="PPmodel_scale",
            expected=f"{n_species} values",
            found=f"{len(scale)}",
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
    source: str | Path | None = None,
) -> nn.Module:
    """Build catalogue class ``name`` with layers ``[1] + hidden_layers + [n_species]``.

    The model maps q (M, 1) in 1/Bohr to v_s(q) (M, n_species) in Hartree·Bohr³. Weights are
    drawn from ``generator`` (the global torch RNG when None). ``dropout`` is p for the
    classes that apply dropout. ``source`` (e.g. the NN_config.par path) names the file in
    error messages. Raises InputError for an unknown name or a missing/invalid gate value.
    """
    entry = _lookup(name, source)
    layers = [1, *(int(h) for h in hidden_layers), int(n_species)]
    if min(layers) < 1:
        raise InputError(
            source, "layer sizes must be positive", key="hiddenLayers", found=str(layers[1:-1])
        )
    if not 0.0 <= dropout < 1.0:
        raise InputError(source, "dropout must be in [0, 1)", key="dropout", found=str(dropout))
    if entry.body is None:
        return ZeroFunction(n_species)
    if dropout and not entry.body.uses_dropout:
        raise InputError(
            source, f"PPmodel {name} applies no dropout", key="dropout", found=str(dropout)
        )
    args = {
        "PPmodel_decay_rate": decay_rate,
        "PPmodel_decay_center": decay_center,
        "PPmodel_gaussian_std": gaussian_std,
        "PPmodel_scale": scale,
    }
    gate = _gate(entry, n_species, args, source) if entry.gate else None
    body = MLP(layers, entry.body, dropout=dropout, generator=generator, dtype=dtype)
    return body if gate is None else GatedNet(body, gate)


def has_batchnorm(model: nn.Module) -> bool:
    """True if the model contains batch norm (train-mode output depends on the whole batch)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def is_zero_function(model: nn.Module) -> bool:
    """True for ZeroFunction (no network: analytic local form only)."""
    return isinstance(model, ZeroFunction)


def build_model_from_config(
    config: Any,
    n_species: int,
    *,
    generator: torch.Generator | None = None,
    dropout: float = 0.0,
) -> nn.Module:
    """The PPmodel an NNConfig names: `PPmodel`, `hiddenLayers` and the gate keys
    (PPmodel_decay_rate/_center, PPmodel_gaussian_std, PPmodel_scale) of bundle-format §11.3."""
    return build_model(
        config.PPmodel,
        config.hiddenLayers,
        n_species,
        decay_rate=config.PPmodel_decay_rate,
        decay_center=config.PPmodel_decay_center,
        gaussian_std=config.PPmodel_gaussian_std,
        scale=config.PPmodel_scale,
        dropout=dropout,
        generator=generator,
        source=config.source,
    )

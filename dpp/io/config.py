"""The NN_config.par schema (bundle-format §3) and the typed, validated `NNConfig`.

Every key has a type, a default, a group (the Hydra config group it maps to) and a one-line
doc. Units: wave vectors in 1/Bohr, lengths in Bohr, energies in eV unless a doc says otherwise.
"""

from __future__ import annotations

import difflib
import fnmatch
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dpp.errors import InputError
from dpp.io.keyvalue import read_key_values
from dpp.io.records import SystemData


@dataclass(frozen=True)
class KeySpec:
    """One NN_config.par key: type (`kind`), default, group, doc and constraints."""

    name: str
    kind: str
    default: Any
    group: str
    doc: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None  # smallest allowed value (list entries for lists)
    required: bool = False
    derived: str = ""  # how an unset default follows from other keys ("" if static)


PPMODEL_CLASSES = (
    "Net_sig",
    "Net_tanh",
    "Net_relu",
    "Net_relu_xavier",
    "Net_sigmoid_xavier",
    "Net_celu_HeInit",
    "Net_celu_RandInit",
    "Net_sig_UniformInit",
    "Net_tanh_XavierInit_dropout",
    "Net_relu_HeInit",
    "Net_sig_bn",
    "Net_tanh_bn",
    "Net_relu_bn",
    "Net_Xavier_BN",
    "Net_He_BN",
    "Net_relu_xavier_BN",
    "Net_relu_xavier_BN_dropout",
    "ZeroFunction",
    "Net_relu_xavier_BN_dropout_decay",
    "Net_relu_xavier_decay",
    "Net_relu_xavier_decay2",
    "Net_relu_xavier_decayGaussian",
    "Net_sigmoid_xavier_decayGaussian",
    "Net_celu_HeInit_decayGaussian",
    "Net_celu_HeInit_scale_decayGaussian",
    "Net_celu_RandInit_decayGaussian",
    "Net_relu_HeInit_decayGaussian",
    "Net_relu_xavier_BN_decayGaussian",
    "Net_relu_xavier_BN_dropout_decayGaussian",
)
"""The PPmodel catalogue (bundle-format §11.3)."""

OPTIMIZERS = (
    "adam",
    "sgd",
    "asgd",
    "lbfgs",
    "adadelta",
    "adagrad",
    "adamw",
    "sparseadam",
    "adamax",
    "nadam",
    "radam",
    "rmsprop",
)

UPSTREAM_KEYS = (
    "num_threads",
    "pool_initSO",
    "pool_initNL",
    "local_env_corr",
    "init_LSD_*",
    "LSD*",
    "descriptor_backend",
    "force_retrain",
    "tot_magnetization",
    "partial_eig*",
    "group_by_type",
    "low_mem",
    "mat_cache_dir",
    "longRange_lr",
)
"""Keys (glob patterns) of the later upstream revision: accepted with a warning, not used."""


def _spec(name: str, kind: str, default: Any, group: str, doc: str, **extra: Any) -> KeySpec:
    return KeySpec(name, kind, default, group, doc, **extra)


_SPECS = (
    # 3.1 required
    _spec(
        "PPmodel",
        "choice",
        None,
        "model",
        "network class (bundle-format §11.3)",
        choices=PPMODEL_CLASSES,
        required=True,
    ),
    _spec(
        "hiddenLayers",
        "int_list",
        None,
        "model",
        "hidden widths; the network is [1] + hiddenLayers + [n_species]",
        minimum=1,
        required=True,
    ),
    _spec(
        "nSystem",
        "int",
        None,
        "run",
        "number of systems (files *_0 ... *_{nSystem-1})",
        minimum=1,
        required=True,
    ),
    # 3.2 execution and diagnostics
    _spec("num_cores", "int", 0, "run", "worker processes over k-points; 0 = serial", minimum=0),
    _spec("SHOWPLOTS", "bool", False, "run", "open interactive plot windows"),
    _spec(
        "separateKptGrad", "bool", True, "run", "per-k back-propagation with gradient accumulation"
    ),
    _spec(
        "checkpoint",
        "bool",
        False,
        "run",
        "activation checkpointing around the network call (results unchanged)",
    ),
    _spec("memory_flag", "bool", False, "run", "log how to profile memory (mprof)"),
    _spec("runtime_flag", "bool", False, "run", "wall-clock timers in the log"),
    _spec("printGrad", "bool", False, "run", "print per-layer gradient norms each epoch"),
    _spec("seed", "int", 0, "run", "seed of every random generator of the run"),
    _spec(
        "eigensolver",
        "choice",
        "auto",
        "run",
        "dense eigensolver backend",
        choices=("auto", "lapack", "torch"),
    ),
    _spec("k_chunk", "int", 0, "run", "k-points per Hamiltonian batch; 0 = automatic", minimum=0),
    # 3.3 spin-orbit and physics switches
    _spec(
        "SObool",
        "bool",
        False,
        "physics",
        "spinor Hamiltonian with spin-orbit and both nonlocal channels",
    ),
    _spec(
        "cacheSO",
        "bool",
        True,
        "physics",
        "cache the spin-orbit/nonlocal matrices (only with SObool = 1)",
    ),
    _spec(
        "basis_search",
        "choice",
        "complete",
        "physics",
        "plane-wave basis: complete sphere 1/2|G|^2 < maxKE, or the original's legacy box",
        choices=("complete", "legacy"),
    ),
    _spec(
        "allow_left_handed",
        "bool",
        False,
        "physics",
        "accept a left-handed cell (uses |Omega|) instead of rejecting it",
    ),
    _spec(
        "long_range_with_nn",
        "bool",
        True,
        "physics",
        "add the long-range, SOC, nonlocal and strain channels to the network output too",
    ),
    _spec(
        "nonlocal_without_soc",
        "bool",
        False,
        "physics",
        "build the nonlocal term on the spatial (N x N) Hamiltonian when SObool = 0",
    ),
    # 3.4 model
    _spec(
        "PPmodel_decay_rate",
        "float",
        None,
        "model",
        "logistic gate steepness r (Net_relu_xavier_decay)",
    ),
    _spec(
        "PPmodel_decay_center",
        "float",
        None,
        "model",
        "logistic gate centre c in 1/Bohr (Net_relu_xavier_decay)",
    ),
    _spec(
        "PPmodel_gaussian_std",
        "float",
        None,
        "model",
        "sigma of the Gaussian gate exp(-q^2/(2 sigma^2)) in 1/Bohr (*_decayGaussian)",
        minimum=0.0,
    ),
    _spec(
        "PPmodel_scale",
        "float_list",
        None,
        "model",
        "one output factor per species in species order (scale class)",
    ),
    # 3.5 penalties
    _spec(
        "penalize_starting",
        "float",
        None,
        "penalty",
        "q0 in 1/Bohr where deviation from the prior curve starts to be penalised",
    ),
    _spec("penalize_lambda", "float", None, "penalty", "strength of the decay penalty"),
    _spec(
        "penalize_mag_threshold",
        "float",
        None,
        "penalty",
        "allowed |v_s(q)| on [0, 12] (Hartree Bohr^3)",
    ),
    _spec(
        "penalize_mag_lambda",
        "float",
        None,
        "penalty",
        "strength of the magnitude penalty; <= 0 disables",
    ),
    _spec(
        "penalty_reference",
        "choice",
        "prior",
        "penalty",
        "what the decay penalty measures deviation from",
        choices=("prior", "zero"),
    ),
    # 3.6 initialisation stage
    _spec(
        "init_Zunger_num_epochs", "int", 0, "init", "pre-fit epochs; 0 skips the pre-fit", minimum=0
    ),
    _spec(
        "init_Zunger_optimizer",
        "choice",
        "adam",
        "init",
        "pre-fit optimiser",
        choices=("adam", "sgd"),
    ),
    _spec("init_Zunger_optimizer_lr", "float", None, "init", "pre-fit learning rate", minimum=0.0),
    _spec(
        "init_Zunger_scheduler_gamma",
        "float",
        1.0,
        "init",
        "pre-fit exponential learning-rate decay factor",
    ),
    _spec(
        "init_Zunger_plotEvery",
        "int",
        None,
        "init",
        "pre-fit save interval (and default decay interval); -1 = never",
    ),
    _spec(
        "init_Zunger_schedulerStep",
        "int",
        None,
        "init",
        "pre-fit decay interval",
        minimum=1,
        derived="init_Zunger_plotEvery",
    ),
    _spec("init_Zunger_printGrad", "bool", False, "init", "gradient statistics during the pre-fit"),
    # 3.7 gradient training
    _spec("max_num_epochs", "int", 0, "train", "optimiser steps (one per epoch)", minimum=0),
    _spec(
        "optimizer", "choice", "adam", "train", "optimiser of the band training", choices=OPTIMIZERS
    ),
    _spec("optimizer_lr", "float", None, "train", "base learning rate", minimum=0.0),
    _spec("sgd_momentum", "float", 0.0, "train", "SGD momentum", minimum=0.0),
    _spec("adam_beta1", "float", 0.9, "train", "Adam beta1", minimum=0.0),
    _spec("adam_beta2", "float", 0.999, "train", "Adam beta2", minimum=0.0),
    _spec("scheduler_gamma", "float", None, "train", "ExponentialLR decay factor"),
    _spec(
        "schedulerStep",
        "int",
        None,
        "train",
        "decay after epochs e > 0 with e % schedulerStep == 0",
        minimum=1,
    ),
    _spec(
        "plotEvery",
        "int",
        None,
        "train",
        "validation, checkpoints and plots when (e+1) % plotEvery == 0",
        minimum=1,
    ),
    _spec(
        "patience",
        "int",
        None,
        "train",
        "early-stopping patience in epochs",
        minimum=1,
        derived="max_num_epochs + 1",
    ),
    _spec(
        "perturbEvery",
        "int",
        -1,
        "train",
        "> 0: Monte Carlo mode-1 kick every perturbEvery epochs; -1 = never",
    ),
    _spec(
        "pre_adjust_moves",
        "int",
        0,
        "train",
        "single-parameter pre-adjust moves before epoch 0",
        minimum=0,
    ),
    _spec(
        "pre_adjust_stepSize",
        "float",
        None,
        "train",
        "step of a pre-adjust move",
        derived="optimizer_lr",
    ),
    _spec(
        "relE_bIdx",
        "int",
        None,
        "train",
        "train on energies relative to this band (input_X.par value wins)",
        minimum=0,
    ),
    _spec(
        "relE_reference",
        "choice",
        "first_kpoint",
        "train",
        "k-point of the relative-energy reference band",
        choices=("first_kpoint", "same_kpoint"),
    ),
    # 3.8 Monte Carlo
    _spec("mc_bool", "bool", False, "mc", "run Monte Carlo instead of gradient training"),
    _spec("mc_iter", "int", None, "mc", "number of Monte Carlo trial moves", minimum=1),
    _spec("mc_percentage", "float", None, "mc", "perturbation magnitude epsilon", minimum=0.0),
    _spec("mc_beta", "float", None, "mc", "beta of the square-root Metropolis rule", minimum=0.0),
    _spec("mc_perturb_mode", "int", 1, "mc", "perturbation kernel 1-7", minimum=1),
    _spec(
        "mc_beta_schedule",
        "path",
        None,
        "mc",
        "beta schedule file (relative to the bundle); overrides mc_beta",
    ),
    _spec(
        "mc_engine",
        "choice",
        None,
        "mc",
        "Monte Carlo engine",
        choices=("nn", "analytic"),
        derived="analytic if PPmodel = ZeroFunction else nn",
    ),
    # 3.9 band order and output grids
    _spec("smooth_reorder", "bool", False, "reorder", "extrapolation/assignment band reordering"),
    _spec("eigvec_reorder", "bool", False, "reorder", "eigenvector-overlap band reordering"),
    _spec(
        "qmax",
        "float",
        40.0,
        "output",
        "q_max of the *_qSpace_pot.dat tables (1/Bohr)",
        minimum=0.0,
    ),
    _spec("nQGrid", "int", 4096, "output", "rows of the *_qSpace_pot.dat tables", minimum=2),
    _spec(
        "Rmax",
        "float",
        25.0,
        "output",
        "r_max of the real-space potential files (Bohr)",
        minimum=0.0,
    ),
    _spec("nRGrid", "int", 2048, "output", "rows of the real-space potential files", minimum=2),
    _spec(
        "ft_qmax",
        "float",
        20.0,
        "output",
        "q cutoff of the real-space transform (1/Bohr)",
        minimum=0.0,
    ),
    _spec("ft_nQGrid", "int", 2048, "output", "q points of the real-space transform", minimum=2),
    # legacy switches (reproduce the original where dpp differs)
    _spec(
        "legacy_batchnorm",
        "bool",
        False,
        "legacy",
        "batch-norm running statistics exactly as the original",
    ),
    _spec(
        "legacy_fifth_param",
        "choice",
        "strain",
        "legacy",
        "slot of the 5th number of 5-number init_<S>Params.par files",
        choices=("strain", "long_range"),
    ),
    _spec("legacy_reorder", "bool", False, "legacy", "smooth_reorder orientation as the original"),
    _spec(
        "legacy_relE_detached",
        "bool",
        False,
        "legacy",
        "detach the relative-energy reference from the gradient, as the original",
    ),
    _spec(
        "legacy_mc_modes",
        "bool",
        False,
        "legacy",
        "Monte Carlo modes 2 and 4 exactly as the original",
    ),
)

KEYS: dict[str, KeySpec] = {spec.name: spec for spec in _SPECS}
"""The schema: key name -> KeySpec, in documentation order."""


def is_upstream_key(name: str) -> bool:
    """True for a key of the later upstream revision that dpp recognises but does not use."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in UPSTREAM_KEYS)


def suggest(name: str, candidates: Iterable[str]) -> str | None:
    """Return the closest candidate to `name` (case-insensitive first), or None."""
    candidates = list(candidates)
    by_lower = {c.lower(): c for c in candidates}
    if name.lower() in by_lower:
        return by_lower[name.lower()]
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[close[0]] if close else None


def _hint(name: str, candidates: Iterable[str]) -> str | None:
    best = suggest(name, candidates)
    return None if best is None else f"did you mean '{best}'?"


def unknown_key_error(name: str, file: str | Path | None, line: int | None) -> InputError:
    """The error for a key outside the schema, suggesting the closest known key."""
    return InputError(
        file,
        "unknown NN_config key",
        line=line,
        key=name,
        expected="a key of bundle-format §3",
        found=repr(name),
        hint=_hint(name, KEYS),
    )


def _parse_scalar(kind: str, text: str) -> Any:
    """Parse one token of kind int/float/bool; raise ValueError when it does not fit."""
    if kind == "bool":
        lowered = text.lower()
        if lowered in ("0", "false"):
            return False
        if lowered in ("1", "true"):
            return True
        raise ValueError
    value = float(text)
    if not math.isfinite(value):
        raise ValueError
    if kind == "float":
        return value
    if value != int(value):
        raise ValueError
    return int(value)


_EXPECTED = {
    "int": "an integer",
    "float": "a finite number",
    "bool": "0 or 1 (or true/false)",
    "str": "a non-empty string",
    "path": "a file path",
    "int_list": "space-separated integers",
    "float_list": "space-separated numbers",
}


def parse_value(
    spec: KeySpec, raw: Any, file: str | Path | None = None, line: int | None = None
) -> Any:
    """Convert text (from a file) or a Python value (an override) to the key's type.

    Returns bool, int, float, str or a tuple for lists; checks choices and minimum.
    """

    def fail(expected: str) -> InputError:
        return InputError(
            file, "invalid value", line=line, key=spec.name, expected=expected, found=repr(raw)
        )

    if spec.kind == "choice":
        text = str(raw).strip()
        match = {c.lower(): c for c in spec.choices}.get(text.lower())
        if match is None:
            raise InputError(
                file,
                "invalid value",
                line=line,
                key=spec.name,
                expected="one of " + ", ".join(spec.choices),
                found=repr(raw),
                hint=_hint(text, spec.choices),
            )
        return match
    if spec.kind in ("str", "path"):
        text = str(raw).strip()
        if not text:
            raise fail(_EXPECTED[spec.kind])
        return text
    scalar_kind = spec.kind.removesuffix("_list")
    if spec.kind.endswith("_list"):
        if isinstance(raw, str):
            items = raw.split()
        else:
            items = list(raw) if isinstance(raw, Iterable) else [raw]
        if not items:
            raise fail(_EXPECTED[spec.kind])
    else:
        items = [raw]
    values = []
    for item in items:
        if isinstance(item, bool) and scalar_kind != "bool":
            raise fail(_EXPECTED[spec.kind])
        try:
            value = _parse_scalar(scalar_kind, str(item).strip())
        except ValueError:
            raise fail(_EXPECTED[spec.kind]) from None
        if spec.minimum is not None and value < spec.minimum:
            raise fail(f"a value >= {spec.minimum:g}")
        values.append(value)
    return tuple(values) if spec.kind.endswith("_list") else values[0]


class NNConfig:
    """Typed, validated NN_config.par: `cfg.SObool`, `cfg.hiddenLayers`, ... for every key of
    `KEYS`, with defaults (static or derived from other keys) for keys not given."""

    def __init__(
        self,
        given: Mapping[str, Any],
        *,
        source: str | Path | None = None,
        lines: Mapping[str, int] | None = None,
        unsupported: Mapping[str, str] | None = None,
    ) -> None:
        """Build from already typed values (use `from_file` / `from_mapping` for raw input)."""
        self._given = dict(given)
        self.source = None if source is None else Path(source)
        self._lines = dict(lines or {})
        self.unsupported = dict(unsupported or {})
        validate_config(self)

    @classmethod
    def from_file(cls, path: str | Path, overrides: Mapping[str, Any] | None = None) -> NNConfig:
        """Read an NN_config.par file, apply `overrides` (key -> text or Python value) on top,
        and validate the result once."""
        given: dict[str, Any] = {}
        lines: dict[str, int] = {}
        unsupported: dict[str, str] = {}
        for key, (text, line) in read_key_values(path).items():
            if key in KEYS:
                given[key] = parse_value(KEYS[key], text, path, line)
                lines[key] = line
            elif is_upstream_key(key):
                warnings.warn(
                    f"{path}, line {line}: key '{key}' is recognised, not supported; ignored",
                    stacklevel=2,
                )
                unsupported[key] = text
            else:
                raise unknown_key_error(key, path, line)
        for key in overrides or {}:
            lines.pop(key, None)
        given.update(_coerce_all(overrides or {}, "<override>"))
        return cls(given, source=path, lines=lines, unsupported=unsupported)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], source: str | Path | None = None) -> NNConfig:
        """Build from key -> value (text or Python values), validated like a file."""
        return cls(_coerce_all(values, source), source=source)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in KEYS:
            raise AttributeError(name)
        return self.get(name)

    def get(self, name: str) -> Any:
        """Value of a key: as given, else its (possibly derived) default."""
        if name in self._given:
            return self._given[name]
        if name == "patience":
            return self.get("max_num_epochs") + 1
        if name == "pre_adjust_stepSize":
            return self.get("optimizer_lr")
        if name == "init_Zunger_schedulerStep":
            return self.get("init_Zunger_plotEvery")
        if name == "mc_engine":
            return "analytic" if self.get("PPmodel") == "ZeroFunction" else "nn"
        return KEYS[name].default

    def is_set(self, name: str) -> bool:
        """True when the key was given explicitly (file or override)."""
        return name in self._given

    def line_of(self, name: str) -> int | None:
        """Line of the key in the source file, if it came from there."""
        return self._lines.get(name)

    @property
    def given(self) -> dict[str, Any]:
        """The explicitly given keys and their typed values."""
        return dict(self._given)

    @property
    def training(self) -> bool:
        """Gradient training is active (max_num_epochs > 0 and mc_bool = 0)."""
        return self.get("max_num_epochs") > 0 and not self.get("mc_bool")

    def to_dict(self) -> dict[str, Any]:
        """Every key of the schema with its resolved value (lists as lists)."""
        return {
            name: list(value) if isinstance(value, tuple) else value
            for name in KEYS
            for value in [self.get(name)]
        }

    def replace(self, **overrides: Any) -> NNConfig:
        """A copy with keys overridden (text or Python values), validated the same way."""
        given = dict(self._given)
        given.update(_coerce_all(overrides, "<override>"))
        lines = {k: v for k, v in self._lines.items() if k not in overrides}
        return NNConfig(given, source=self.source, lines=lines, unsupported=self.unsupported)

    def __repr__(self) -> str:
        return f"NNConfig(source={self.source!s}, given={self._given!r})"


def _coerce_all(values: Mapping[str, Any], source: str | Path | None) -> dict[str, Any]:
    out = {}
    for key, value in values.items():
        if key not in KEYS:
            raise unknown_key_error(key, source, None)
        out[key] = parse_value(KEYS[key], value, source)
    return out


def _error(cfg: NNConfig, key: str, problem: str, **kwargs: Any) -> InputError:
    return InputError(cfg.source, problem, line=cfg.line_of(key), key=key, **kwargs)


def _warn(cfg: NNConfig, key: str, message: str) -> None:
    line = cfg.line_of(key)
    where = f"{cfg.source or '<input>'}" + (f", line {line}" if line else "") + f", key '{key}'"
    warnings.warn(f"{where}: {message}", stacklevel=3)


def _require(cfg: NNConfig, needed: Sequence[str], because: str, trigger: str) -> None:
    for key in needed:
        if cfg.get(key) is None:
            raise _error(
                cfg,
                trigger,
                f"{because} needs '{key}'",
                expected=f"'{key}' to be set",
                found="not set",
            )


def validate_config(cfg: NNConfig) -> None:
    """Cross-key rules of bundle-format §3.10 that need no system data (rules 1-7, 8b, 9)."""
    for spec in KEYS.values():  # rule 1
        if spec.required and cfg.get(spec.name) is None:
            raise InputError(
                cfg.source,
                "required key missing",
                key=spec.name,
                expected=f"'{spec.name} = ...'",
                found="no such line",
            )
    if cfg.get("init_Zunger_num_epochs") > 0:  # rule 2
        _require(
            cfg,
            ("init_Zunger_plotEvery", "init_Zunger_optimizer_lr"),
            "init_Zunger_num_epochs > 0",
            "init_Zunger_num_epochs",
        )
    plot_every = cfg.get("init_Zunger_plotEvery")
    if plot_every is not None and plot_every != -1 and plot_every < 1:
        raise _error(
            cfg,
            "init_Zunger_plotEvery",
            "invalid value",
            expected=">= 1 or -1",
            found=str(plot_every),
        )
    if cfg.get("mc_bool"):  # rule 3
        _require(cfg, ("mc_iter", "mc_percentage", "mc_beta"), "mc_bool = 1", "mc_bool")
        if cfg.get("max_num_epochs") > 0:  # rule 4
            raise _error(
                cfg,
                "mc_bool",
                "mc_bool = 1 together with max_num_epochs > 0",
                expected="max_num_epochs = 0 (use perturbEvery for kicks during training)",
                found=f"max_num_epochs = {cfg.get('max_num_epochs')}",
            )
    if cfg.training:
        _require(
            cfg,
            ("plotEvery", "schedulerStep", "optimizer_lr", "scheduler_gamma"),
            "max_num_epochs > 0",
            "max_num_epochs",
        )
        if cfg.get("optimizer") == "sparseadam":
            raise _error(
                cfg,
                "optimizer",
                "sparseadam cannot train dense parameters",
                expected="another optimiser, e.g. adam",
                found="sparseadam",
            )
    model = cfg.get("PPmodel")  # rule 5
    if model == "Net_relu_xavier_decay":
        _require(cfg, ("PPmodel_decay_rate", "PPmodel_decay_center"), model, "PPmodel")
    if model.endswith("_decayGaussian"):
        _require(cfg, ("PPmodel_gaussian_std",), model, "PPmodel")
    if model == "Net_celu_HeInit_scale_decayGaussian":
        _require(cfg, ("PPmodel_scale",), model, "PPmodel")
    if cfg.get("cacheSO") and cfg.is_set("cacheSO") and not cfg.get("SObool"):  # rule 6
        _warn(cfg, "cacheSO", "cacheSO = 1 has no effect without SObool = 1")
    if cfg.get("checkpoint"):
        if cfg.get("separateKptGrad"):
            _warn(cfg, "checkpoint", "checkpoint together with separateKptGrad is slow")
        else:
            _warn(cfg, "checkpoint", "checkpoint without separateKptGrad is a last resort")
    starting, lam = cfg.get("penalize_starting"), cfg.get("penalize_lambda")  # rule 7
    if (starting is None) != (lam is None):
        key = "penalize_starting" if starting is not None else "penalize_lambda"
        other = "penalize_lambda" if starting is not None else "penalize_starting"
        raise _error(
            cfg, key, f"'{key}' needs '{other}'", expected="both or neither", found=f"only '{key}'"
        )
    threshold = cfg.get("penalize_mag_threshold")
    if threshold is not None and threshold > 100:
        _warn(cfg, "penalize_mag_threshold", f"threshold {threshold:g} > 100 is very loose")
    if cfg.get("smooth_reorder") and cfg.get("eigvec_reorder"):  # rule 8 (second half)
        raise _error(
            cfg,
            "eigvec_reorder",
            "smooth_reorder and eigvec_reorder are exclusive",
            expected="at most one of them = 1",
            found="both = 1",
        )
    mode = cfg.get("mc_perturb_mode")  # rule 9
    if mode > 7:
        raise _error(cfg, "mc_perturb_mode", "invalid value", expected="1 ... 7", found=str(mode))
    if mode in (6, 7) and not cfg.get("SObool"):
        raise _error(
            cfg,
            "mc_perturb_mode",
            f"mode {mode} moves only SOC/nonlocal parameters",
            expected="SObool = 1",
            found="SObool = 0",
        )


def validate_for_systems(
    cfg: NNConfig, systems: Sequence[SystemData], species: Sequence[str]
) -> None:
    """Rules of §3.10 that need the systems: len(PPmodel_scale) == n_species (rule 5),
    smooth_reorder with an even nBands in every system (rule 8), and a global relE_bIdx
    below nBands of every system that has no own relE_bIdx."""
    scale = cfg.get("PPmodel_scale")
    if cfg.get("PPmodel") == "Net_celu_HeInit_scale_decayGaussian" and len(scale) != len(species):
        raise _error(
            cfg,
            "PPmodel_scale",
            "one factor per species needed",
            expected=f"{len(species)} values ({' '.join(species)})",
            found=f"{len(scale)}",
        )
    relative_band = cfg.get("relE_bIdx")
    for system in systems:
        if cfg.get("smooth_reorder") and system.n_bands % 2:
            raise _error(
                cfg,
                "smooth_reorder",
                f"system {system.index} has an odd nBands",
                expected="even nBands in every system",
                found=str(system.n_bands),
            )
        own = system.settings.relE_bIdx
        if own is None and relative_band is not None and relative_band >= system.n_bands:
            raise _error(
                cfg,
                "relE_bIdx",
                f"band index out of range for system {system.index}",
                expected=f"< nBands = {system.n_bands}",
                found=str(relative_band),
            )

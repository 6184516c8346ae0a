"""From the composed Hydra config to typed settings objects (by `_target_`), with every type
and value error reported against the key and where its value came from."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import math
import re
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from dpp.app.origins import Origins
from dpp.errors import InputError, SettingError

log = logging.getLogger(__name__)

FIFTH_PARAM_SLOTS = ("strain", "long_range")
MESSAGE_WORDS = {"lr": "learning rate", "betas": "beta", "eps": "epsilon"}
"""How torch's error messages name some optimiser arguments."""
FROZEN_LEARNING_RATE = (
    ("lr", lambda v: v == 0, "a learning rate of 0 never changes the parameters", "lr > 0"),
    (
        "gamma",
        lambda v: v <= 0,
        "a decay factor <= 0 sets the learning rate to 0 or below at the first decay",
        "gamma > 0",
    ),
)
"""Optimiser and schedule arguments that freeze the training: name, test, problem, expected."""


@dataclass(frozen=True)
class DataSettings:
    """The input bundle and how its k-points are served.

    bundle: the bundle folder. n_system: systems to read (None: every system_X.par).
    separate_kpt_grad: serve k-points in batches of kpt_batch_size (per process) whose
    gradients accumulate (the step is the full-batch step either way); else one batch.
    legacy_fifth_param: slot of the 5th number of 5-number parameter files.
    allow_left_handed: accept a cell with a negative triple product (uses |Ω|).
    max_kpoints: fit only the first max_kpoints k-points of every system (None: all; quick
    checks such as debug=fast_dev_run).
    """

    bundle: str
    n_system: int | None = None
    separate_kpt_grad: bool = True
    kpt_batch_size: int = 8
    legacy_fifth_param: str = "strain"
    allow_left_handed: bool = False
    max_kpoints: int | None = None

    def __post_init__(self) -> None:
        if self.max_kpoints is not None and self.max_kpoints < 1:
            raise SettingError(
                "max_kpoints", "no k-points to fit", expected=">= 1 or null", found=self.max_kpoints
            )
        if self.kpt_batch_size < 1:
            raise SettingError(
                "kpt_batch_size",
                "empty k-point batches",
                expected=">= 1",
                found=self.kpt_batch_size,
            )
        if self.n_system is not None and self.n_system < 1:
            raise SettingError("n_system", "no systems", expected=">= 1", found=self.n_system)
        if self.legacy_fifth_param not in FIFTH_PARAM_SLOTS:
            raise SettingError(
                "legacy_fifth_param",
                "unknown slot",
                expected=" or ".join(FIFTH_PARAM_SLOTS),
                found=self.legacy_fifth_param,
            )


_EXPECTED = {int: "an integer", float: "a finite number", bool: "true or false", str: "a string"}


def _describe(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        parts = [_describe(a) for a in typing.get_args(annotation) if a is not type(None)]
        return " or ".join(parts) + " (or null)"
    if origin is tuple:
        item = re.sub(r"^an? ", "", _describe(typing.get_args(annotation)[0]))
        return f"a list of {item}s"
    return _EXPECTED.get(annotation, str(annotation))


def _fits(value: Any, annotation: Any) -> bool:
    """Whether a plain config value fits a type annotation of a settings field."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if origin is tuple:
        item = typing.get_args(annotation)[0]
        return isinstance(value, list | tuple) and all(_fits(v, item) for v in value)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return _is_number(value) and math.isfinite(value)
    if annotation is str:
        return isinstance(value, str)
    return True  # callables and other objects are checked by their own constructors


def check_types(node: DictConfig, group: str, origins: Origins) -> None:
    """Check every value of `node` against the fields of its `_target_` dataclass."""
    target = get_class(node._target_)
    if not dataclasses.is_dataclass(target):
        return
    hints = typing.get_type_hints(target)
    names = {f.name for f in dataclasses.fields(target)}
    container = None
    for key in node:
        if key.startswith("_"):
            continue
        if key not in names:
            raise origins.error(
                f"{group}.{key}",
                "unknown setting",
                expected="one of " + ", ".join(sorted(names)),
                found=key,
            )
        try:
            if container is None:
                container = OmegaConf.to_container(node, resolve=True)
            value = container[key]
        except MissingMandatoryValue:
            raise origins.error(
                f"{group}.{key}", "required setting missing", expected="a value", found="???"
            ) from None
        if isinstance(value, dict) and "_target_" in value:
            continue
        if not _fits(value, hints[key]):
            raise origins.error(
                f"{group}.{key}", "invalid value", expected=_describe(hints[key]), found=value
            )


def instantiate_checked(
    node: Any,
    path: str,
    origins: Origins,
    *,
    problem: str = "cannot build",
    nested: bool = False,
    **kwargs: Any,
) -> Any:
    """`instantiate(node, **kwargs)` for the config node at `path`, with Hydra's errors as one
    InputError: a SettingError of the built class names its key under `path` and its origin,
    an InputError passes as it is, anything else is `problem` with the first line of the
    cause. `nested`: the node builds other targets inside it (the Trainer's strategy), so a
    SettingError cannot be placed under `path` and is reported as `problem` too."""
    try:
        return instantiate(node, **kwargs)
    except (InstantiationException, MissingMandatoryValue) as error:
        cause = error.__cause__
        if isinstance(cause, SettingError) and not nested:
            raise origins.setting_error(path, cause) from None
        if isinstance(cause, InputError):
            raise cause from None
        message = str(cause or error).strip() or type(cause or error).__name__
        raise origins.error(path, problem, found=message.splitlines()[0]) from None


def build(cfg: DictConfig, group: str, origins: Origins, **kwargs: Any) -> Any:
    """Instantiate config section `group` (a `_target_` node) after checking its types;
    a SettingError of the settings class names the key and its origin."""
    node = OmegaConf.select(cfg, group)
    if node is None:
        raise InputError("configuration", "missing section", key=group, expected="a config group")
    check_types(node, group, origins)
    return instantiate_checked(node, group, origins, problem="cannot build the settings", **kwargs)


def partial_of(cfg: DictConfig, group: str, origins: Origins) -> Callable[..., Any]:
    """A `_partial_: true` node (optimiser, schedule) as a callable; its values are checked
    when it is called (`call_checked`), except a learning rate frozen at 0 when the run trains
    (trainer.max_epochs > 0): lr = 0, or a schedule's decay factor gamma <= 0."""
    node = OmegaConf.select(cfg, group)
    factory = instantiate_checked(node, group, origins)
    bad = bad_argument(factory)
    if bad is not None:
        name, value, expected = bad
        path = (None if "." in name else _source_of(node, name)) or f"{group}.{name}"
        raise origins.error(path, "invalid value", expected=expected, found=value)
    epochs = OmegaConf.select(cfg, "trainer.max_epochs", default=0)
    if _is_number(epochs) and epochs > 0:
        frozen = frozen_argument(factory)
        if frozen is not None:
            name, value, problem, expected = frozen
            path = _source_of(node, name) or f"{group}.{name}"
            raise origins.error(path, problem, expected=expected, found=value)
    return _without_foreign_keys(factory, group, origins)


INTEGER_ANNOTATIONS = ("int", "int | None", "Optional[int]", "typing.Optional[int]")
"""How the signatures of optimisers and schedules spell an integer argument."""


def _expected_number(func: Any, name: str) -> str | None:
    """ "an integer" or "a finite number" for an argument that the signature of `func` types
    (or defaults) as a number, else None."""
    try:
        parameter = inspect.signature(func).parameters.get(name)
    except (TypeError, ValueError):
        return None
    if parameter is None:
        return None
    annotation = parameter.annotation
    if annotation in (int, int | None) or (
        isinstance(annotation, str) and annotation in INTEGER_ANNOTATIONS
    ):
        return "an integer"
    if "float" in str(annotation) or _is_number(parameter.default):
        return "a finite number"
    return None


def bad_argument(factory: Any, prefix: str = "") -> tuple[str, Any, str] | None:
    """(name, value, expected) of the first argument of an optimiser or schedule partial
    (nested partials included, e.g. a fallback optimiser) that is NaN or infinite, or not a
    number (an integer) where the signature asks for one; None when all are fine."""
    func = getattr(factory, "func", None)
    for name, value in getattr(factory, "keywords", {}).items():
        if isinstance(value, functools.partial):
            nested = bad_argument(value, f"{prefix}{name}.")
            if nested is not None:
                return nested
            continue
        if isinstance(value, Sequence) and not isinstance(value, str):  # ListConfig too
            if any(_is_number(v) and not math.isfinite(v) for v in value):
                return f"{prefix}{name}", value, "finite numbers"
            continue
        if _is_number(value) and not math.isfinite(value):
            return f"{prefix}{name}", value, "a finite number"
        expected = None if func is None or value is None else _expected_number(func, name)
        if expected is None:
            continue
        if not _is_number(value) or (expected == "an integer" and not isinstance(value, int)):
            return f"{prefix}{name}", value, expected
    return None


def frozen_argument(factory: Any) -> tuple[str, Any, str, str] | None:
    """(name, value, problem, expected) of the first argument of an optimiser or schedule
    partial that freezes the training (FROZEN_LEARNING_RATE), else None."""
    keywords = getattr(factory, "keywords", {})
    for name, frozen, problem, expected in FROZEN_LEARNING_RATE:
        value = keywords.get(name)
        if _is_number(value) and frozen(value):
            return name, value, problem, expected
    return None


def _without_foreign_keys(factory: Any, group: str, origins: Origins) -> Any:
    """The partial without the arguments that NN_config.par gives for another optimiser or
    schedule (adam_beta1 when the recipe trains with L-BFGS): the original ignored such keys
    too. Arguments set anywhere else stay, so a mistake there is still an error."""
    func = getattr(factory, "func", None)
    if not isinstance(factory, functools.partial) or func is None:
        return factory
    accepted = set(inspect.signature(func).parameters)
    kept = {}
    for name, value in factory.keywords.items():
        key = origins.nn_config_key(f"{group}.{name}")
        if name not in accepted and key is not None:
            log.info("%s (%s = %s) is not used by %s", key, f"{group}.{name}", value, func.__name__)
            continue
        kept[name] = value
    return functools.partial(func, *factory.args, **kept)


def _source_of(node: DictConfig, name: str) -> str | None:
    """The config key that `node.name` interpolates (`${lr_decay.gamma}`), if it does."""
    raw = OmegaConf.to_container(node, resolve=False).get(name)
    match = re.fullmatch(r"\$\{([\w.]+)\}", raw) if isinstance(raw, str) else None
    return match.group(1) if match else None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def call_checked(factory: Callable[..., Any], group: str, origins: Origins, *args: Any) -> Any:
    """Call a partial from the config; its ValueError/TypeError (e.g. `Invalid learning rate:
    -1.0`) names the config section and where the value came from."""
    try:
        return factory(*args)
    except (ValueError, TypeError) as error:
        keywords = getattr(factory, "keywords", {})
        words = str(error)
        key = next((k for k in keywords if MESSAGE_WORDS.get(k, k) in words), None)
        path = f"{group}.{key}" if key else group
        found = keywords.get(key) if key else None
        raise origins.error(
            path, words.splitlines()[0], expected="a valid value", found=found
        ) from None

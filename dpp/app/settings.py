"""From the composed Hydra config to typed settings objects (by `_target_`), with every type
and value error reported against the key and where its value came from."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import re
import typing
from collections.abc import Callable
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from dpp.app.origins import Origins
from dpp.errors import InputError, SettingError
from dpp.workflows.arguments import (
    bad_argument,
    describe,
    fits,
    frozen_argument,
    is_number,
)

log = logging.getLogger(__name__)


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
        if not fits(value, hints[key]):
            raise origins.error(
                f"{group}.{key}", "invalid value", expected=describe(hints[key]), found=value
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
    when it is called (`dpp.workflows.arguments.call_checked`), except a learning rate
    frozen at 0 when the run trains (trainer.max_epochs > 0): lr = 0, or a schedule's decay
    factor gamma <= 0."""
    node = OmegaConf.select(cfg, group)
    factory = instantiate_checked(node, group, origins)
    bad = bad_argument(factory)
    if bad is not None:
        name, value, expected = bad
        path = (None if "." in name else _source_of(node, name)) or f"{group}.{name}"
        raise origins.error(path, "invalid value", expected=expected, found=value)
    epochs = OmegaConf.select(cfg, "trainer.max_epochs", default=0)
    if is_number(epochs) and epochs > 0:
        frozen = frozen_argument(factory)
        if frozen is not None:
            name, value, problem, expected = frozen
            path = _source_of(node, name) or f"{group}.{name}"
            raise origins.error(path, problem, expected=expected, found=value)
    return _without_foreign_keys(factory, group, origins)


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

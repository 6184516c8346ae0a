"""Checks of the values a configuration gives: a plain value against the type annotation
of a settings field (`fits`, `describe`), and an optimiser's or schedule's arguments (a
`functools.partial` built from the configuration, the pre-fit's included): numbers where the
signature asks for them, finite, no learning rate that freezes the training, and the
optimiser's own refusals (`call_checked`) as one error naming the key and its origin."""

from __future__ import annotations

import functools
import inspect
import math
import re
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

from dpp.io.origins import Origins

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
    if "float" in str(annotation) or is_number(parameter.default):
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
            if any(is_number(v) and not math.isfinite(v) for v in value):
                return f"{prefix}{name}", value, "finite numbers"
            continue
        if is_number(value) and not math.isfinite(value):
            return f"{prefix}{name}", value, "a finite number"
        expected = None if func is None or value is None else _expected_number(func, name)
        if expected is None:
            continue
        if not is_number(value) or (expected == "an integer" and not isinstance(value, int)):
            return f"{prefix}{name}", value, expected
    return None


def frozen_argument(factory: Any) -> tuple[str, Any, str, str] | None:
    """(name, value, problem, expected) of the first argument of an optimiser or schedule
    partial that freezes the training (FROZEN_LEARNING_RATE), else None."""
    keywords = getattr(factory, "keywords", {})
    for name, frozen, problem, expected in FROZEN_LEARNING_RATE:
        value = keywords.get(name)
        if is_number(value) and frozen(value):
            return name, value, problem, expected
    return None


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


MESSAGE_WORDS = {"lr": "learning rate", "betas": "beta", "eps": "epsilon"}
"""How torch's error messages name some optimiser arguments."""

_EXPECTED = {int: "an integer", float: "a finite number", bool: "true or false", str: "a string"}


def describe(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        parts = [describe(a) for a in typing.get_args(annotation) if a is not type(None)]
        return " or ".join(parts) + " (or null)"
    if origin is tuple:
        item = re.sub(r"^an? ", "", describe(typing.get_args(annotation)[0]))
        return f"a list of {item}s"
    return _EXPECTED.get(annotation, str(annotation))


def fits(value: Any, annotation: Any) -> bool:
    """Whether a plain config value fits a type annotation of a settings field."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(fits(value, a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if origin is tuple:
        item = typing.get_args(annotation)[0]
        return isinstance(value, list | tuple) and all(fits(v, item) for v in value)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return is_number(value) and math.isfinite(value)
    if annotation is str:
        return isinstance(value, str)
    return True  # callables and other objects are checked by their own constructors


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

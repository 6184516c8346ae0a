"""Checks of an optimiser's or schedule's arguments (a `functools.partial` built from the
configuration, the pre-fit's included): numbers where the signature asks for them, finite,
and no learning rate that freezes the training."""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Sequence
from typing import Any

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

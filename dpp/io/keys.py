"""Typed `key = value` entries: one key's type and constraints, parsing, and did-you-mean."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dpp.errors import InputError

EXPECTED = {
    "int": "an integer",
    "float": "a finite number",
    "bool": "0 or 1 (or true/false)",
    "str": "a non-empty string",
    "path": "a file path",
    "int_list": "space-separated integers",
    "float_list": "space-separated numbers",
}
"""What each kind of value looks like, for error messages."""


@dataclass(frozen=True)
class KeySpec:
    """One key of a `key = value` file: its type (`kind`), constraints and a one-line doc."""

    name: str
    kind: str  # int, float, bool, str, path, choice, int_list, float_list
    doc: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None  # smallest allowed value (each entry for lists)
    above: float | None = None  # values must exceed this (each entry for lists)
    required: bool = False


def suggest(name: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate to `name` (case-insensitive match first), or None."""
    candidates = list(candidates)
    by_lower = {c.lower(): c for c in candidates}
    if name.lower() in by_lower:
        return by_lower[name.lower()]
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[close[0]] if close else None


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """`did you mean 'x'?` for the closest candidate, or None."""
    best = suggest(name, candidates)
    return None if best is None else f"did you mean '{best}'?"


def dotted_keys(node: Any, prefix: str = "") -> list[str]:
    """Every key of a nested mapping, dotted (`a.b.c`), leaves and inner nodes alike."""
    if not isinstance(node, dict):
        return [prefix.rstrip(".")]
    return [k for key, value in node.items() for k in dotted_keys(value, f"{prefix}{key}.")] + (
        [prefix.rstrip(".")] if prefix else []
    )


def did_you_mean_key(key: str, known: list[str]) -> str | None:
    """`did you mean 'x'?` for a dotted `key`: the closest of the `known` keys, else the
    known key whose last part is closest to `key`'s last part; None when nothing is close."""
    whole = did_you_mean(key, known)
    if whole is not None:
        return whole
    leaf = key.rsplit(".", 1)[-1]
    matches = difflib.get_close_matches(leaf, [k.rsplit(".", 1)[-1] for k in known], n=1)
    if not matches:
        return None
    full = [k for k in known if k.endswith("." + matches[0]) or k == matches[0]]
    return f"did you mean '{full[0]}'?" if full else None


def _parse_scalar(kind: str, text: str) -> Any:
    """One token of kind int/float/bool; ValueError when it does not fit."""
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


def parse_value(
    spec: KeySpec, raw: Any, file: str | Path | None = None, line: int | None = None
) -> Any:
    """Text (from a file) or a Python value as the key's type: bool, int, float, str or a
    tuple for lists; choices and minimum are checked. Errors name file, line and key."""

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
                hint=did_you_mean(text, spec.choices),
            )
        return match
    if spec.kind in ("str", "path"):
        text = str(raw).strip()
        if not text:
            raise fail(EXPECTED[spec.kind])
        return text
    scalar_kind = spec.kind.removesuffix("_list")
    if spec.kind.endswith("_list"):
        items = raw.split() if isinstance(raw, str) else list(raw)
        if not items:
            raise fail(EXPECTED[spec.kind])
    else:
        items = [raw]
    values = []
    for item in items:
        if isinstance(item, bool) and scalar_kind != "bool":
            raise fail(EXPECTED[spec.kind])
        try:
            value = _parse_scalar(scalar_kind, str(item).strip())
        except ValueError:
            raise fail(EXPECTED[spec.kind]) from None
        if spec.minimum is not None and value < spec.minimum:
            raise fail(f"a value >= {spec.minimum:g}")
        if spec.above is not None and value <= spec.above:
            raise fail(f"a value > {spec.above:g}")
        values.append(value)
    return tuple(values) if spec.kind.endswith("_list") else values[0]

"""`key = value` files (NN_config.par, input_X.par) under the dpp rules (bundle-format §2)."""

from __future__ import annotations

import warnings
from pathlib import Path

from dpp.io.text import content_lines


def read_key_values(path: str | Path) -> dict[str, tuple[str, int]]:
    """Read a `key = value` file into key -> (value text, 1-based line number).

    Each line is cut at `#` and stripped; empty lines and lines without `=` are skipped; the
    rest is split at the first `=` and both sides stripped. A repeated key keeps its last value
    (as the original does) with a warning.
    """
    entries: dict[str, tuple[str, int]] = {}
    for number, text in content_lines(path):
        if "=" not in text:
            continue
        key, value = (part.strip() for part in text.split("=", 1))
        if key in entries:
            warnings.warn(
                f"{path}, line {number}: key '{key}' repeats line {entries[key][1]}; "
                "the last value is used",
                stacklevel=2,
            )
        entries[key] = (value, number)
    return entries

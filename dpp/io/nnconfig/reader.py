"""Read NN_config.par into typed values with the line of every key (bundle-format §3)."""

from __future__ import annotations

import fnmatch
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dpp.errors import InputError
from dpp.io.keys import did_you_mean, parse_value
from dpp.io.keyvalue import read_key_values
from dpp.io.nnconfig.schema import KEYS, UPSTREAM_KEYS


@dataclass(frozen=True)
class NNConfigFile:
    """The typed keys of one NN_config.par: key -> value, and key -> 1-based line."""

    path: Path
    values: dict[str, Any]
    lines: dict[str, int] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def error(self, key: str, problem: str, **details: Any) -> InputError:
        """An InputError naming this file, the key and its line."""
        return InputError(self.path, problem, line=self.lines.get(key), key=key, **details)


def is_upstream_key(name: str) -> bool:
    """True for a key of the later upstream revision that dpp recognises but does not use."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in UPSTREAM_KEYS)


CODE_MARKS = ("${", "_target_")
"""Text that OmegaConf or Hydra would evaluate (an interpolation or resolver, an object to
build): NN_config.par values are literals, so a value holding one is refused."""


def check_literal(path: Path, key: str, text: str, line: int | None) -> None:
    """Refuse a value that the Hydra configuration would evaluate instead of keeping."""
    for mark in CODE_MARKS:
        if mark in text:
            raise InputError(
                path,
                "a value that the configuration would evaluate",
                line=line,
                key=key,
                expected=f"a literal value (no '{mark}': NN_config.par values are data, "
                "never interpolations, resolvers or objects to build)",
                found=repr(text),
            )


def read_nn_config(path: str | Path) -> NNConfigFile:
    """Parse NN_config.par: every value a literal (`check_literal`), every key typed and
    checked against the schema, unknown keys an error suggesting the closest known key,
    upstream keys a warning; then the rules that concern the file alone (required keys,
    exclusive switches)."""
    path = Path(path)
    values: dict[str, Any] = {}
    lines: dict[str, int] = {}
    for key, (text, line) in read_key_values(path).items():
        check_literal(path, key, text, line)
        if key in KEYS:
            values[key] = parse_value(KEYS[key].spec, text, path, line)
            lines[key] = line
        elif is_upstream_key(key):
            warnings.warn(
                f"{path}, line {line}: key '{key}' is recognised, not supported; ignored",
                stacklevel=2,
            )
        else:
            raise InputError(
                path,
                "unknown NN_config key",
                line=line,
                key=key,
                expected="a key of bundle-format §3",
                found=repr(key),
                hint=did_you_mean(key, KEYS),
            )
    config = NNConfigFile(path, values, lines)
    _check(config)
    return config


def _check(config: NNConfigFile) -> None:
    for key in KEYS.values():
        if key.spec.required and key.name not in config.values:
            raise InputError(
                config.path,
                "required key missing",
                key=key.name,
                expected=f"'{key.name} = ...'",
                found="no such line",
            )
    if config.get("mc_bool") and config.get("max_num_epochs", 0) > 0:
        raise config.error(
            "mc_bool",
            "mc_bool = 1 (Monte Carlo) conflicts with max_num_epochs > 0 (gradient training)",
            expected="max_num_epochs = 0 with mc_bool = 1 (use perturbEvery for kicks "
            "during training)",
            found=f"max_num_epochs = {config.get('max_num_epochs')}",
        )
    if config.get("smooth_reorder") and config.get("eigvec_reorder"):
        raise config.error(
            "eigvec_reorder",
            "smooth_reorder and eigvec_reorder are exclusive",
            expected="at most one of them = 1",
            found="both = 1",
        )
    if config.get("optimizer") == "sparseadam":
        raise config.error(
            "optimizer",
            "sparseadam cannot train dense parameters",
            expected="an optimiser for dense gradients, e.g. adam (SparseAdam accepts only "
            "sparse gradients, and every pseudopotential parameter has a dense gradient)",
            found="sparseadam",
        )

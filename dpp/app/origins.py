"""The origins of a composed configuration (dpp.io.origins) from Hydra's view of the command
line and the selected experiment file."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override as HydraOverride
from hydra.errors import OverrideParseException
from omegaconf import OmegaConf

from dpp.errors import InputError
from dpp.io.nnconfig import NNConfigFile, Translation
from dpp.io.origins import Origins, Override


def _leaves(node: Any, prefix: str = "") -> Iterable[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key in ("defaults", "hydra"):
                continue
            yield from _leaves(value, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix


@functools.lru_cache(maxsize=1024)
def parse_override(text: str) -> HydraOverride:
    """One command-line override parsed by Hydra's grammar (`+a/b@c=1`: key_or_group `a/b`,
    package `c`, value 1); a malformed one is an InputError naming it."""
    try:
        (override,) = OverridesParser.create().parse_overrides([text])
    except OverrideParseException as error:
        raise InputError(
            "command line",
            "malformed override",
            key=text,
            expected="key=value (Hydra's override grammar; quote values with '=' or spaces)",
            found=str(error).strip().splitlines()[0],
        ) from None
    return override


def override_key(text: str) -> str:
    """The key or config group of a command-line override, without its +/++/~ prefix, its
    `@package` and its value (`+a/b@c=1` -> `a/b`)."""
    return parse_override(text).key_or_group


def origins_of(
    overrides: Iterable[str],
    experiment: Path | None = None,
    nn_config: NNConfigFile | None = None,
    translation: Translation | None = None,
) -> Origins:
    """The origins of a configuration composed from `overrides` (command-line texts; Hydra's
    own are left out), the `experiment` file and the bundle's NN_config.par."""
    keys: set[str] = set()
    if experiment is not None and experiment.is_file():
        text = experiment.read_text()
        node = OmegaConf.to_container(OmegaConf.create(text), resolve=False) or {}
        prefix = "" if "@package _global_" in text else "experiment"
        keys = set(_leaves(node, prefix))
    plain = []
    for text in overrides:
        key = override_key(text)
        if not key.startswith("hydra"):
            value = parse_override(text).value()
            plain.append(Override(text, key.replace("/", "."), isinstance(value, str)))
    return Origins(plain, experiment, keys, nn_config, translation)

"""Where a configuration value came from, so that an error names the user's own input: the
command-line override, the NN_config.par line, the experiment file, or conf/ (a value that
NN_config.par could set but does not is reported against that file's key)."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import OverrideParseException
from omegaconf import OmegaConf

from dpp.errors import InputError, SettingError
from dpp.io.nnconfig import KEYS, NNConfigFile, Translation, nn_key_of


def _leaves(node: Any, prefix: str = "") -> Iterable[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key in ("defaults", "hydra"):
                continue
            yield from _leaves(value, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix


def _covers(key: str, path: str) -> bool:
    return path == key or path.startswith(key + ".")


@functools.lru_cache(maxsize=1024)
def parse_override(text: str) -> Override:
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


def _override_key(text: str) -> str:
    """The dotted key of a command-line override (`+a/b@c=1` -> `a.b`)."""
    return override_key(text).replace("/", ".")


def _sets_value_at(text: str, path: str) -> bool:
    """Whether override `text` sets the value at config key `path`: its key is `path`, or a
    parent of it given a whole node (`optimizer={...}`); choosing a config group
    (`optimizer=sgd`) keeps the values that later sources (NN_config.par) give inside it."""
    key = _override_key(text)
    if key == path:
        return True
    return _covers(key, path) and not isinstance(parse_override(text).value(), str)


@dataclass
class Origins:
    """The sources of a composed configuration, most specific first."""

    overrides: list[str] = field(default_factory=list)  # command-line `key=value` texts
    experiment: Path | None = None  # the selected experiment file
    experiment_keys: set[str] = field(default_factory=set)
    nn_config: NNConfigFile | None = None
    translation: Translation | None = None

    @classmethod
    def build(
        cls,
        overrides: Iterable[str],
        experiment: Path | None = None,
        nn_config: NNConfigFile | None = None,
        translation: Translation | None = None,
    ) -> Origins:
        keys: set[str] = set()
        if experiment is not None and experiment.is_file():
            text = experiment.read_text()
            node = OmegaConf.to_container(OmegaConf.create(text), resolve=False) or {}
            prefix = "" if "@package _global_" in text else "experiment"
            keys = set(_leaves(node, prefix))
        plain = [o for o in overrides if not override_key(o).startswith("hydra")]
        return cls(plain, experiment, keys, nn_config, translation)

    def override_of(self, path: str) -> str | None:
        """The command-line override that set `path` (or a parent of it), if any."""
        for text in reversed(self.overrides):
            if _covers(_override_key(text), path):
                return text
        return None

    def _override_within(self, path: str, message: str) -> str | None:
        """For an error about a whole section (`trainer`): the one override inside it, or the
        one whose setting `message` names."""
        inside = [o for o in self.overrides if _covers(path, _override_key(o))]
        named = [o for o in inside if _override_key(o).rsplit(".", 1)[-1] in message]
        chosen = named or inside
        return chosen[-1] if len(chosen) == 1 else None

    def nn_config_key(self, path: str) -> str | None:
        """The NN_config.par key whose value `path` holds (None: set elsewhere or not set)."""
        if self.translation is None or any(_sets_value_at(o, path) for o in self.overrides):
            return None
        if self.experiment is not None and any(_covers(k, path) for k in self.experiment_keys):
            return None
        return nn_key_of(path, self.translation)

    def error(
        self,
        path: str,
        problem: str,
        *,
        expected: str | None = None,
        found: object = None,
        hint: str | None = None,
    ) -> InputError:
        """An InputError for config key `path`, naming where its value was set; `found` is
        its value (None: unset), `expected` defaults to "a valid value"."""
        expected = expected or "a valid value"
        if found is None:
            found_text = "unset (null)"
        else:
            found_text = repr(found) if isinstance(found, str) else str(found)
        override = self.override_of(path) or self._override_within(path, found_text)
        if override is not None:
            return InputError(
                "command-line override",
                problem,
                key=override,
                expected=expected,
                found=found_text,
                hint=hint,
            )
        if self.experiment is not None and any(_covers(k, path) for k in self.experiment_keys):
            return InputError(
                self.experiment, problem, key=path, expected=expected, found=found_text, hint=hint
            )
        if self.translation is not None and self.nn_config is not None:
            key = nn_key_of(path, self.translation)
            if key is not None:
                return InputError(
                    self.nn_config.path,
                    problem,
                    line=self.nn_config.lines.get(key),
                    key=key,
                    expected=expected,
                    found=found_text,
                    hint=hint or f"configuration key {path}",
                )
            unset = next((k.name for k in KEYS.values() if k.path and _covers(k.path, path)), None)
            if unset is not None:
                return InputError(
                    self.nn_config.path,
                    problem,
                    key=unset,
                    expected=expected,
                    found=found_text,
                    hint=hint or f"not in the file; set '{unset} = ...' there or {path}=...",
                )
        return InputError(
            "configuration", problem, key=path, expected=expected, found=found_text, hint=hint
        )

    def setting_error(self, group: str, error: SettingError) -> InputError:
        """The InputError for a SettingError raised by the settings built from `group`."""
        return self.error(
            f"{group}.{error.setting}" if group else error.setting,
            error.problem,
            expected=error.expected,
            found=error.found,
        )

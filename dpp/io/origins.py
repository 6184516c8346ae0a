"""Where a configuration value came from, so that an error names the user's own input: the
command-line override, the NN_config.par line, the experiment file, or conf/ (a value that
NN_config.par could set but does not is reported against that file's key). dpp.app parses
the command line and the experiment file into these records (`dpp.app.origins.origins_of`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dpp.errors import InputError, SettingError
from dpp.io.nnconfig import KEYS, NNConfigFile, Translation, nn_key_of


def _covers(key: str, path: str) -> bool:
    return path == key or path.startswith(key + ".")


@dataclass(frozen=True)
class Override:
    """One command-line override: its text, its dotted key (`+a/b@c=1` -> `a.b`), and whether
    its value is a config-group choice or other text (`optimizer=sgd`) rather than a node."""

    text: str
    key: str
    text_value: bool

    def sets_value_at(self, path: str) -> bool:
        """Whether this override sets the value at config key `path`: its key is `path`, or a
        parent of it given a whole node (`optimizer={...}`); choosing a config group
        (`optimizer=sgd`) keeps the values that later sources (NN_config.par) give inside it."""
        if self.key == path:
            return True
        return _covers(self.key, path) and not self.text_value


@dataclass
class Origins:
    """The sources of a composed configuration, most specific first."""

    overrides: list[Override] = field(default_factory=list)  # command line, in order
    experiment: Path | None = None  # the selected experiment file
    experiment_keys: set[str] = field(default_factory=set)
    nn_config: NNConfigFile | None = None
    translation: Translation | None = None

    def override_of(self, path: str) -> str | None:
        """The command-line override that set `path` (or a parent of it), if any."""
        for override in reversed(self.overrides):
            if _covers(override.key, path):
                return override.text
        return None

    def _override_within(self, path: str, message: str) -> str | None:
        """For an error about a whole section (`trainer`): the one override inside it, or the
        one whose setting `message` names."""
        inside = [o for o in self.overrides if _covers(path, o.key)]
        named = [o for o in inside if o.key.rsplit(".", 1)[-1] in message]
        chosen = named or inside
        return chosen[-1].text if len(chosen) == 1 else None

    def nn_config_key(self, path: str) -> str | None:
        """The NN_config.par key whose value `path` holds (None: set elsewhere or not set)."""
        if self.translation is None or any(o.sets_value_at(path) for o in self.overrides):
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

"""The one error type raised for bad input, with a message that names where and what."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Malformed or inconsistent input.

    The message always names the file (and line or key when known), what was expected
    and what was found, so a user can fix the input without reading a traceback.
    """

    def __init__(
        self,
        file: str | Path | None,
        problem: str,
        *,
        line: int | None = None,
        key: str | None = None,
        expected: str | None = None,
        found: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.file = None if file is None else str(file)
        self.line = line
        self.key = key
        self.expected = expected
        self.found = found
        self.hint = hint
        where = self.file or "<input>"
        if line is not None:
            where += f", line {line}"
        if key is not None:
            where += f", key '{key}'"
        message = f"{where}: {problem}"
        if expected is not None:
            message += f"; expected {expected}"
        if found is not None:
            message += f", found {found}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)


class SettingError(ValueError):
    """An invalid value of a typed setting (e.g. a field of `PhysicsOptions`).

    Raised by the settings objects themselves; the application layer turns it into an
    `InputError` that names the configuration key and where its value came from.
    """

    def __init__(self, setting: str, problem: str, *, expected: str, found: object) -> None:
        self.setting = setting
        self.problem = problem
        self.expected = expected
        self.found = found
        super().__init__(f"{setting}: {problem}; expected {expected}, found {found!r}")


class RunStopped(RuntimeError):
    """A run stopped on purpose after some work (e.g. a loss became NaN); the message says
    why and which results were kept."""

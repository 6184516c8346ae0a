"""Reading input text files: existence, encoding and `#` comments."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from dpp.errors import InputError


def read_text(path: str | Path) -> str:
    """Return the text of an input file; missing, non-file or non-UTF-8 input is an InputError."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found", expected="an existing file")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise InputError(
            path, "not valid UTF-8 text", line=line, expected="plain ASCII/UTF-8 text"
        ) from None


def strip_comment(line: str) -> str:
    """Cut a line at its first `#` and strip surrounding whitespace."""
    return line.split("#", 1)[0].strip()


def content_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, text) for every line that is not empty after cutting comments."""
    for number, raw in enumerate(read_text(path).splitlines(), start=1):
        text = strip_comment(raw)
        if text:
            yield number, text

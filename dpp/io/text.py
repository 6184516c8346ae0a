"""Reading input text files: existence, encoding, line endings and `#` comments.

Files are read line by line, so a reader can stop at the first bad line of a large file.
A UTF-8 byte-order mark is skipped, and LF, CRLF and CR-only line endings are all accepted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from dpp.errors import InputError
from dpp.memory import check_fits, format_bytes

BOM = b"\xef\xbb\xbf"
MAX_LINE = 1 << 24
"""Longest line read (bytes): a band row of thousands of energies is far shorter; a file
without line breaks (e.g. a sparse file of NUL bytes) is refused instead of read whole."""
TEXT_EXPANSION = 4
"""Memory per byte of a numeric text file once parsed into Python numbers (an estimate)."""


def _require_file(path: Path) -> None:
    try:
        found = path.is_file()
    except OSError as error:  # e.g. a folder on the way this user may not enter
        raise InputError(
            path, "cannot read the file", expected="a readable file", found=error.strerror
        ) from None
    if not found:
        found = "a folder" if path.is_dir() else "no such file"
        raise InputError(path, "file not found", expected="an existing file", found=found)


def iter_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, text) of every line, streaming; missing, non-file or
    non-UTF-8 input is an InputError naming the line."""
    path = Path(path)
    _require_file(path)
    size = path.stat().st_size
    check_fits(
        size * TEXT_EXPANSION,
        f"reading {path.name} ({format_bytes(size)})",
        file=path,
        key=None,
        found=f"a file of {format_bytes(size)}",
        hint="check the file: a text table this large cannot be read into memory",
    )
    number = 0
    try:
        stream = path.open("rb")
    except OSError as error:
        raise InputError(
            path, "cannot read the file", expected="a readable file", found=error.strerror
        ) from None
    with stream:
        for chunk in iter(lambda: stream.readline(MAX_LINE + 1), b""):
            if len(chunk) > MAX_LINE:
                raise InputError(
                    path,
                    "line too long",
                    line=number + 1,
                    expected=f"text lines shorter than {format_bytes(MAX_LINE)}",
                    found="a longer line (binary or sparse data?)",
                )
            if number == 0:
                chunk = chunk.removeprefix(BOM)
            for raw in chunk.splitlines():
                number += 1
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise InputError(
                        path,
                        "not valid UTF-8 text",
                        line=number,
                        expected="plain ASCII/UTF-8 text",
                        found=f"byte 0x{raw[err.start]:02x} at column {err.start + 1}",
                    ) from None
                yield number, text


def read_text(path: str | Path) -> str:
    """The text of an input file with `\\n` line endings (BOM skipped); errors as iter_lines."""
    return "".join(text + "\n" for _, text in iter_lines(path))


def split_comment(line: str) -> tuple[str, str]:
    """(text, comment): a line cut at its first `#`, both parts stripped of whitespace."""
    text, _, comment = line.partition("#")
    return text.strip(), comment.strip()


def commented_lines(path: str | Path) -> Iterator[tuple[int, str, str]]:
    """Yield (1-based line number, text, trailing comment) for every line that is not empty
    after cutting comments, streaming; the comment is "" when the line has none."""
    for number, raw in iter_lines(path):
        text, comment = split_comment(raw)
        if text:
            yield number, text, comment


def content_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, text) for every line that is not empty after cutting
    comments, streaming."""
    for number, text, _ in commented_lines(path):
        yield number, text

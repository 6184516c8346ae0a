"""Labels of high-symmetry points kept as trailing comments of k-point files.

`dpp-kpath` writes rows such as `0.5 0.5 0.5 1.0   # L`; every table reader strips `#`
comments, so the file stays a plain kpoints_X.par (bundle-format §6.1).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from dpp.io.text import commented_lines


def row_labels(comments: Iterable[str]) -> dict[int, str]:
    """Row index → label of every row whose trailing comment (one per data row, "" for none)
    is not empty."""
    return {row: comment for row, comment in enumerate(comments) if comment}


def read_point_labels(path: str | Path) -> dict[int, str]:
    """Row index (0-based over data rows) → label of every row with a trailing `# label`.

    Whole-line comments and blank lines are not rows, as in the table readers (the same
    `dpp.io.text.commented_lines`); rows without a comment (or with an empty one) have no
    entry. The numbers are not checked (`dpp.io.kpoints.read_labelled_points` reads both at
    once). A missing or non-UTF-8 file is an InputError.
    """
    return row_labels(comment for _, _, comment in commented_lines(path))

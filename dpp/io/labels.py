"""Labels of high-symmetry points kept as trailing comments of k-point files.

`dpp-kpath` writes rows such as `0.5 0.5 0.5 1.0   # L`; every table reader strips `#`
comments, so the file stays a plain kpoints_X.par (bundle-format §6.1).
"""

from __future__ import annotations

from pathlib import Path

from dpp.io.text import read_text


def read_point_labels(path: str | Path) -> dict[int, str]:
    """Row index (0-based over data rows) → label of every row with a trailing `# label`.

    Whole-line comments and blank lines are not rows, as in the table readers; rows without a
    comment (or with an empty one) have no entry. A missing or non-UTF-8 file is an InputError.
    """
    labels: dict[int, str] = {}
    row = 0
    for raw in read_text(path).splitlines():
        data, _, comment = raw.partition("#")
        if not data.strip():
            continue
        if comment.strip():
            labels[row] = comment.strip()
        row += 1
    return labels

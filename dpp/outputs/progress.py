"""Progress of long stages: a rich bar on a terminal, periodic log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.progress import track

log = logging.getLogger("dpp.progress")
Item = TypeVar("Item")
LINE_SECONDS = 30.0
"""Without a terminal, a line at most this often (and at every tenth of the stage)."""


def progress(
    items: Iterable[Item], description: str, total: int | None = None, enabled: bool = True
) -> Iterator[Item]:
    """Iterate `items`, showing progress: a rich bar when stderr is a terminal, else a log
    line every tenth of `total` items or every 30 s, and one at the end."""
    if not enabled:
        yield from items
        return
    total = total if total is not None else len(items)  # type: ignore[arg-type]
    if sys.stderr.isatty():
        yield from track(items, description=description, total=total, transient=True)
        return
    start = last = time.perf_counter()
    step = max(1, total // 10)
    for done, item in enumerate(items, start=1):
        yield item
        now = time.perf_counter()
        if done == total or done % step == 0 or now - last > LINE_SECONDS:
            log.info("%s: %d/%d (%.1f s)", description, done, total, now - start)
            last = now

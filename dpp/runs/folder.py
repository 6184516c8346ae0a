"""The run folder while a run works in it: held by its lock, cleared of the temporary files
a killed writer left, removed again when bad input stopped the run before any work."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from dpp.errors import InputError
from dpp.io.run_folder import RESOLVED_CONFIG
from dpp.io.writers import remove_stale_temporaries
from dpp.runs.lock import LOCK_NAME, OWNER_NAME, RunLock

log = logging.getLogger("dpp")
T = TypeVar("T")


def _only_hydra_files(run_dir: Path) -> bool:
    """A run folder holding nothing but what Hydra and the lock wrote (a run stopped by
    bad input before any work)."""
    names = {p.name for p in run_dir.iterdir()}
    written = {".hydra", LOCK_NAME, OWNER_NAME, RESOLVED_CONFIG}
    return names <= written | {p.name for p in run_dir.glob("*.log")}


def within_run_dir(run_dir: Path, work: Callable[[], T], lock: RunLock | None = None) -> T:
    """`work()` holding the lock of `run_dir` (`lock`, when the caller already holds it). A run
    refused by the lock removes nothing; work stopped by bad input (InputError) removes the
    run directory when this run created it, or when it holds only what Hydra and the lock
    wrote (no other run can be writing there: the lock is held). Temporary files that a
    killed writer left are removed first."""
    held = lock if lock is not None and lock.run_dir == run_dir.resolve() else RunLock(run_dir)
    with held:  # refused: raised here, before anything is written or removed
        _remove_stale_temporaries(run_dir)
        try:
            return work()
        except InputError:
            if held.created or _only_hydra_files(run_dir):
                shutil.rmtree(run_dir, ignore_errors=True)
            raise


def _remove_stale_temporaries(run_dir: Path) -> None:
    """The temporary files of atomic writes that a killed run left behind (this run holds
    the lock, so no writer of them is alive)."""
    stale = remove_stale_temporaries(run_dir)
    if stale:
        names = ", ".join(str(p.relative_to(run_dir)) for p in stale)
        log.info("removed %d temporary files of an interrupted write: %s", len(stale), names)

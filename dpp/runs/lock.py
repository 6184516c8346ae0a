"""One writer per run directory: a lock held for the whole run (filelock), with the holder
recorded so a refused run can name it (the operating system releases the lock when its
process dies, so a killed run never blocks a resume); and the check that a run directory can
be written, done before Hydra starts."""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from pathlib import Path
from types import TracebackType

from filelock import FileLock, Timeout

from dpp.errors import InputError
from dpp.io.writers import write_text_atomic

LOCK_NAME = ".dpp.lock"
OWNER_NAME = ".dpp.lock.owner"


def unwritable(folder: Path, found: str, key: str = "hydra.run.dir") -> InputError:
    """The InputError for a run directory (config key `key`) that cannot be created or
    written, `found` saying why."""
    return InputError(
        folder,
        "cannot write the run directory",
        key=key,
        expected="a folder this user can create and write",
        found=found,
    )


def check_writable(folder: Path, key: str = "hydra.run.dir") -> None:
    """`folder` (config key `key`) exists as a writable folder, or can be created: its nearest
    existing parent is a folder in which this process can create files (checked by creating a
    temporary one)."""
    existing = Path(folder)
    try:
        while not existing.exists() and existing.parent != existing:
            existing = existing.parent
        if not existing.is_dir():
            raise unwritable(folder, f"{existing} is a file, not a folder", key)
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise unwritable(folder, f"{error.strerror} in {existing}", key) from None


class RunLock:
    """Context manager: take `<run_dir>/.dpp.lock` or raise an InputError naming the holder.

    Re-entrant: the pre-pass takes it before Hydra writes into the folder and the run enters
    it again. `created` says whether the folder did not exist before the lock was taken (so a
    run stopped by bad input may remove it); a run refused by the lock removes nothing (the
    folder exists: the holder's lock file is in it)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.lock = FileLock(str(self.run_dir / LOCK_NAME), timeout=0)
        self.created = False
        self.depth = 0

    def __enter__(self) -> RunLock:
        if self.depth == 0:
            self._acquire()
        self.depth += 1
        return self

    def _acquire(self) -> None:
        missing = not self.run_dir.exists()
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.lock.acquire()
        except Timeout:  # before OSError: Timeout is a TimeoutError
            raise InputError(
                self.run_dir,
                "another dpp run is writing into this run directory",
                key="hydra.run.dir",
                expected="a run directory no other run holds",
                found=self._holder(),
                hint="wait for it to finish or choose another hydra.run.dir",
            ) from None
        except OSError as error:
            raise unwritable(self.run_dir, f"{error.strerror} ({error.filename})") from None
        self.created = missing
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.ctime()}
        write_text_atomic(self.run_dir / OWNER_NAME, json.dumps(owner) + "\n")

    def _holder(self) -> str:
        try:
            owner = json.loads((self.run_dir / OWNER_NAME).read_text())
        except (OSError, ValueError):
            return "a run whose details are unknown"
        return f"process {owner['pid']} on {owner['host']}, started {owner['started']}"

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.depth -= 1
        if self.depth == 0:
            (self.run_dir / OWNER_NAME).unlink(missing_ok=True)
            self.lock.release()

"""One writer per run directory: a lock held for the whole run (filelock), with the holder
recorded so a refused run can name it. The operating system releases the lock when its
process dies, so a killed run never blocks a resume."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from filelock import FileLock, Timeout

from dpp.errors import InputError

LOCK_NAME = ".dpp.lock"
OWNER_NAME = ".dpp.lock.owner"


class RunLock:
    """Context manager: take `<run_dir>/.dpp.lock` or raise an InputError naming the holder."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.lock = FileLock(str(self.run_dir / LOCK_NAME), timeout=0)

    def __enter__(self) -> RunLock:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.lock.acquire()
        except Timeout:
            raise InputError(
                self.run_dir,
                "another dpp run is writing into this run directory",
                key="hydra.run.dir",
                expected="a run directory no other run holds",
                found=self._holder(),
                hint="wait for it to finish or choose another hydra.run.dir",
            ) from None
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.ctime()}
        (self.run_dir / OWNER_NAME).write_text(json.dumps(owner) + "\n")
        return self

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
        (self.run_dir / OWNER_NAME).unlink(missing_ok=True)
        self.lock.release()

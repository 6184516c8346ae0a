"""How a run that stops tells its user: one line on stderr, also recorded in the run's log
files, for a disk found full or an interrupt (whether the run can resume); and the third-party
log lines and warnings that are not for our users."""

from __future__ import annotations

import logging
import shutil
import signal
import warnings
from pathlib import Path

from dpp.memory import format_bytes

log = logging.getLogger("dpp")

QUIET_LOGGERS = (
    "pytorch_lightning.utilities.rank_zero",
    "lightning.pytorch.utilities.rank_zero",
    "alembic",
    "optuna",
    "torch.distributed",
)
"""Third-party loggers whose info lines (tips, database migrations) are not for our users."""


def quiet_third_parties() -> None:
    """Filter the routine notes of Lightning, Optuna and torch from the log."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for module in ("pytorch_lightning", "lightning_fabric", "torch.utils._pytree"):
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=module)
        warnings.filterwarnings("ignore", category=FutureWarning, module=module)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")


def to_log_files(message: str) -> None:
    """Record `message` in the run's log files only (the terminal gets it on stderr)."""
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def disk_full(error: OSError, run_dir: Path) -> str:
    """One line for a write into `run_dir` that found the disk (or quota) full: the folder and
    its free space; what was written before is complete (every result is written
    atomically)."""
    folder = Path(error.filename).parent if error.filename else Path(run_dir)
    try:
        free = format_bytes(shutil.disk_usage(folder).free)
    except OSError:
        free = "unknown"
    return (
        f"no space left writing into {folder} ({free} free): the files written so far are "
        f"complete; free space, then rerun with hydra.run.dir={run_dir} resume=true"
    )


def resumable(run_dir: Path, checkpoints: tuple[Path, ...]) -> bool:
    """Whether `run_dir` holds one of the `checkpoints` (relative paths) to resume from."""
    return any((run_dir / checkpoint).is_file() for checkpoint in checkpoints)


def interrupted(signum: int, run_dir: Path | None, checkpoints: tuple[Path, ...]) -> str:
    """One line for a run in `run_dir` (None: not known) stopped by signal `signum` (Ctrl-C,
    SIGTERM or SIGHUP, in training or Monte Carlo): the checkpoints written so far (any of
    `checkpoints`) stay in the run directory, and without one the line says that nothing can
    be resumed."""
    name = signal.Signals(signum).name
    if run_dir is not None and resumable(run_dir, checkpoints):
        return (
            f"interrupted ({name}); the checkpoints in {run_dir} are kept: rerun with the same "
            f"overrides plus hydra.run.dir={run_dir} resume=true to continue"
        )
    return (
        f"interrupted ({name}) before the first checkpoint: nothing can be resumed; rerun "
        f"from the start"
    )

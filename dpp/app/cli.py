"""Command-line entry of train.py, evaluate.py (and `dpp-train`, `dpp-evaluate`).

Before Hydra starts, the pre-pass composes the command line once, reads the bundle's
NN_config.par into the composed configuration, checks the overrides and that the run
directory can be written (and is not held by another run), so bad input stops with one line
before any folder is written; then Hydra runs the job as usual (`--cfg job`, `--help`, `-m`,
launchers and sweepers all work on the full configuration). Every refusal is one line
`error: ...` on stderr with exit status 2; Ctrl-C, SIGTERM and SIGHUP (dpp.app.signals)
exit with 128 + the signal's number, keep the checkpoints and say whether the run can resume.
"""

from __future__ import annotations

import errno
import logging
import shutil
import signal
import sys
import warnings
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import hydra
from hydra._internal.utils import get_args_parser
from omegaconf import DictConfig

from dpp.app import compose
from dpp.app.lock import RunLock
from dpp.app.origins import parse_override
from dpp.app.signals import interrupt_of, signal_number
from dpp.errors import InputError, RunStopped
from dpp.io.run_folder import new_run_folder
from dpp.memory import format_bytes

log = logging.getLogger("dpp")
_PREPARED: dict[str, compose.Prepared] = {}
_LOCK: dict[str, RunLock] = {}

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


def _fail(error: Exception) -> None:
    sys.stderr.write(f"error: {error}\n")
    sys.exit(2)


def _to_log_files(message: str) -> None:
    """Record `message` in the run's log files only (the terminal gets it on stderr)."""
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def _explicit_run_dir(overrides: list[str]) -> Path | None:
    for text in overrides:
        override = parse_override(text)
        value = override.value()
        if override.key_or_group == "hydra.run.dir" and isinstance(value, str) and value:
            return None if "${" in value else Path(value).expanduser().resolve()
    return None


def fresh_run_dir(config: DictConfig) -> Path | None:
    """For a run directory named by the time (`${now:…}`, the default), a new folder of that
    name that no other run has (`_1`, `_2`, … for runs started in the same second); None for
    a named one (which a resume reuses)."""
    raw = config.hydra.run._get_node("dir")._value()
    if "${now:" not in str(raw):
        return None
    return new_run_folder(Path(str(config.hydra.run.dir)).expanduser().resolve())


def disk_full(error: OSError) -> str:
    """One line for a write that found the disk (or quota) full: the folder and its free
    space; what was written before is complete (every result is written atomically)."""
    from hydra.core.hydra_config import HydraConfig

    run_dir = HydraConfig.get().runtime.output_dir if HydraConfig.initialized() else Path.cwd()
    folder = Path(error.filename).parent if error.filename else Path(run_dir)
    try:
        free = format_bytes(shutil.disk_usage(folder).free)
    except OSError:
        free = "unknown"
    return (
        f"no space left writing into {folder} ({free} free): the files written so far are "
        f"complete; free space, then rerun with hydra.run.dir={run_dir} resume=true"
    )


def _resumable(run_dir: Path) -> bool:
    """Whether `run_dir` holds a checkpoint to resume from (training or Monte Carlo)."""
    from dpp.app.gradient import LAST_CHECKPOINT
    from dpp.mc.runner import CHECKPOINT_NAME

    return (run_dir / LAST_CHECKPOINT).is_file() or (run_dir / CHECKPOINT_NAME).is_file()


def _interrupted(interrupt: KeyboardInterrupt) -> None:
    """Ctrl-C, SIGTERM or SIGHUP, in training (Lightning's graceful shutdown) or Monte Carlo:
    one line, exit 128 + the signal's number; the checkpoints written so far stay in the run
    directory, and without one the line says that nothing can be resumed."""
    from hydra.core.hydra_config import HydraConfig

    signum = signal_number(interrupt)
    name = signal.Signals(signum).name
    if HydraConfig.initialized() and _resumable(Path(HydraConfig.get().runtime.output_dir)):
        run_dir = HydraConfig.get().runtime.output_dir
        message = (
            f"interrupted ({name}); the checkpoints in {run_dir} are kept: rerun with the same "
            f"overrides plus hydra.run.dir={run_dir} resume=true to continue"
        )
    else:
        message = (
            f"interrupted ({name}) before the first checkpoint: nothing can be resumed; rerun "
            f"from the start"
        )
    _to_log_files(message)
    sys.stderr.write(f"error: {message}\n")
    sys.exit(128 + signum)


def _task(cfg: DictConfig) -> Any:
    from dpp.app.run import run

    try:
        return run(cfg, prepared=_PREPARED.get("run"), lock=_LOCK.get("run"))
    except (InputError, RunStopped) as error:
        _to_log_files(str(error))
        _fail(error)
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        message = disk_full(error)
        _to_log_files(message)
        sys.stderr.write(f"error: {message}\n")
        sys.exit(1)
    except (KeyboardInterrupt, SystemExit) as stop:  # Lightning exits with 1 after Ctrl-C
        interrupt = interrupt_of(stop)
        if interrupt is None:
            raise
        _interrupted(interrupt)


def main(config_name: str = "train") -> None:
    """Run train.py (`config_name` train) or evaluate.py (evaluate) on sys.argv."""
    quiet_third_parties()
    args = get_args_parser().parse_args()
    name = args.config_name or config_name
    dirs = [Path(args.config_dir).resolve()] if args.config_dir else []
    with ExitStack() as held:
        try:
            _PREPARED["run"] = compose.prepare(
                name, list(args.overrides), dirs, multirun=bool(args.multirun)
            )
            run_dir = _explicit_run_dir(list(args.overrides))
            from dpp.training.strategy import is_global_zero

            runs = not (args.multirun or args.cfg or args.info or args.help or args.hydra_help)
            if run_dir is None and runs and is_global_zero():
                run_dir = fresh_run_dir(_PREPARED["run"].config)
                if run_dir is not None:  # Hydra writes into the folder claimed here
                    sys.argv.append(f'hydra.run.dir="{run_dir}"')
            if run_dir is not None and not args.multirun and is_global_zero():
                # held for the whole run, taken before Hydra writes into the folder
                _LOCK["run"] = held.enter_context(RunLock(run_dir))
        except InputError as error:
            _fail(error)
        hydra.main(version_base="1.3", config_path=str(compose.config_dir()), config_name=name)(
            _task
        )()


def train() -> None:
    """`dpp-train`: the same as `python train.py`."""
    main("train")


def evaluate() -> None:
    """`dpp-evaluate`: the same as `python evaluate.py`."""
    main("evaluate")


def _states_task(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from dpp.app.states import run_states_app

    try:
        run_states_app(cfg, Path(HydraConfig.get().runtime.output_dir))
    except InputError as error:
        _to_log_files(str(error))
        _fail(error)


def states() -> None:
    """`dpp-states`: band-edge states of a nanocrystal or supercell from a fitted run
    (conf/states.yaml)."""
    quiet_third_parties()
    path = str(compose.config_dir())
    hydra.main(version_base="1.3", config_path=path, config_name="states")(_states_task)()

"""Command-line entry of train.py, evaluate.py (and `dpp-train`, `dpp-evaluate`).

Before Hydra starts, the pre-pass composes the command line once, reads the bundle's
NN_config.par into the composed configuration, checks the overrides and that the run
directory can be written (and is not held by another run), so bad input stops with one line
before any folder is written; then Hydra runs the job as usual (`--cfg job`, `--help`, `-m`,
launchers and sweepers all work on the full configuration). Every refusal is one line
`error: ...` on stderr with exit status 2; Ctrl-C exits with 130 and keeps the checkpoints.
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import hydra
from hydra._internal.utils import get_args_parser
from omegaconf import DictConfig

from dpp.app import compose
from dpp.app.lock import RunLock
from dpp.app.origins import parse_override
from dpp.errors import InputError, RunStopped

log = logging.getLogger("dpp")
_PREPARED: dict[str, compose.Prepared] = {}

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
            return Path(value).expanduser().resolve()
    return None


def _interrupted() -> None:
    """Ctrl-C, in training (Lightning's graceful shutdown) or Monte Carlo: one line, exit 130;
    the checkpoints written so far stay in the run directory."""
    from hydra.core.hydra_config import HydraConfig

    run_dir = HydraConfig.get().runtime.output_dir if HydraConfig.initialized() else "<run dir>"
    message = (
        f"interrupted; the checkpoints in {run_dir} are kept: rerun with the same overrides "
        f"plus hydra.run.dir={run_dir} resume=true to continue"
    )
    _to_log_files(message)
    sys.stderr.write(f"error: {message}\n")
    sys.exit(130)


def _task(cfg: DictConfig) -> Any:
    from dpp.app.run import run

    try:
        return run(cfg, prepared=_PREPARED.get("run"))
    except (InputError, RunStopped) as error:
        _to_log_files(str(error))
        _fail(error)
    except KeyboardInterrupt:
        _interrupted()
    except SystemExit as stop:  # Lightning exits with 1 after its Ctrl-C shutdown
        if isinstance(stop.__context__, KeyboardInterrupt):
            _interrupted()
        raise


def main(config_name: str = "train") -> None:
    """Run train.py (`config_name` train) or evaluate.py (evaluate) on sys.argv."""
    quiet_third_parties()
    args = get_args_parser().parse_args()
    name = args.config_name or config_name
    dirs = [Path(args.config_dir).resolve()] if args.config_dir else []
    try:
        _PREPARED["run"] = compose.prepare(
            name, list(args.overrides), dirs, multirun=bool(args.multirun)
        )
        run_dir = _explicit_run_dir(list(args.overrides))
        from dpp.training.strategy import is_global_zero

        if run_dir is not None and not args.multirun and is_global_zero():
            with RunLock(run_dir):  # refuse a held run directory before Hydra writes into it
                pass
    except InputError as error:
        _fail(error)
    hydra.main(version_base="1.3", config_path=str(compose.config_dir()), config_name=name)(_task)()


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

"""Command-line entry of train.py, evaluate.py (and `dpp-train`, `dpp-evaluate`).

Before Hydra starts, the pre-pass composes the command line once, reads the bundle's
NN_config.par into the composed configuration, checks the overrides and that the run
directory can be written (and is not held by another run), so bad input stops with one line
before any folder is written; then Hydra runs the job as usual (`--cfg job`, `--help`, `-m`,
launchers and sweepers all work on the full configuration). Every refusal is one line
`error: ...` on stderr with exit status 2; Ctrl-C, SIGTERM and SIGHUP (dpp.runs.signals)
exit with 128 + the signal's number, keep the checkpoints and say whether the run can resume.
"""

from __future__ import annotations

import errno
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import hydra
from hydra._internal.utils import get_args_parser
from omegaconf import DictConfig

from dpp.app import compose
from dpp.app.origins import parse_override
from dpp.errors import InputError, RunStopped
from dpp.io.run_folder import new_run_folder
from dpp.runs.lock import RunLock
from dpp.runs.signals import interrupt_of, signal_number
from dpp.runs.stops import disk_full, interrupted, quiet_third_parties, to_log_files

_PREPARED: dict[str, compose.Prepared] = {}
_LOCK: dict[str, RunLock] = {}


def _fail(error: Exception) -> None:
    sys.stderr.write(f"error: {error}\n")
    sys.exit(2)


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


def _run_dir() -> Path | None:
    """The run directory of the Hydra job (None outside one)."""
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else None


def _exit(message: str, status: int) -> None:
    to_log_files(message)
    sys.stderr.write(f"error: {message}\n")
    sys.exit(status)


def _task(cfg: DictConfig) -> Any:
    from dpp.app.run import run

    try:
        return run(cfg, prepared=_PREPARED.get("run"), lock=_LOCK.get("run"))
    except (InputError, RunStopped) as error:
        _exit(str(error), 2)
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        _exit(disk_full(error, _run_dir() or Path.cwd()), 1)
    except (KeyboardInterrupt, SystemExit) as stop:  # Lightning exits with 1 after Ctrl-C
        interrupt = interrupt_of(stop)
        if interrupt is None:
            raise
        from dpp.mc.runner import CHECKPOINT_NAME
        from dpp.workflows.gradient import LAST_CHECKPOINT

        signum = signal_number(interrupt)
        checkpoints = (LAST_CHECKPOINT, Path(CHECKPOINT_NAME))
        _exit(interrupted(signum, _run_dir(), checkpoints), 128 + signum)


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
        _exit(str(error), 2)


def states() -> None:
    """`dpp-states`: band-edge states of a nanocrystal or supercell from a fitted run
    (conf/states.yaml)."""
    quiet_third_parties()
    path = str(compose.config_dir())
    hydra.main(version_base="1.3", config_path=path, config_name="states")(_states_task)()

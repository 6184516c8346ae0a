"""`dpp-states`: band-edge states of nanocrystals and supercells from a fitted run
(conf/states.yaml; the work is `dpp.states.workflow`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dpp.errors import InputError, SettingError
from dpp.run import load_run, settings_from_data
from dpp.states.settings import LigandSettings, SolverSettings, StructureSettings
from dpp.states.workflow import run_states
from dpp.threads import apply_threads, parse_threads, thread_budget

log = logging.getLogger("dpp")
CONFIG = "states.yaml"


def _section(cfg: DictConfig, name: str) -> dict[str, Any]:
    node = OmegaConf.select(cfg, name)
    value = OmegaConf.to_container(node, resolve=True) if node is not None else None
    if not isinstance(value, dict):
        raise InputError(CONFIG, "missing section", key=name, expected="a mapping", found=value)
    return value


def run_states_app(cfg: DictConfig, run_dir: Path) -> None:
    """Read the settings, load the run and compute every box into `run_dir`."""
    run = OmegaConf.select(cfg, "run", throw_on_missing=False)
    if run is None or OmegaConf.is_missing(cfg, "run"):
        raise InputError(
            CONFIG, "no fitted run", key="run", expected="run=<train.py run dir>", found="none"
        )
    try:
        apply_threads(thread_budget(parse_threads(cfg.get("num_threads", 0))))
    except SettingError as error:
        raise InputError(
            CONFIG,
            error.problem,
            key="num_threads",
            expected=error.expected,
            found=repr(error.found),
        ) from None
    structure = settings_from_data(
        StructureSettings, _section(cfg, "structure"), "structure", CONFIG
    )
    solver = settings_from_data(SolverSettings, _section(cfg, "solver"), "solver", CONFIG)
    ligands = {
        host: settings_from_data(LigandSettings, values, f"ligands.{host}", CONFIG)
        for host, values in (_section(cfg, "ligands") or {}).items()
    }
    outputs = _section(cfg, "outputs")
    fitted = load_run(
        Path(str(run)),
        state=str(cfg.state),
        bundle=cfg.get("bundle"),
        checkpoint=cfg.get("checkpoint"),
    )
    log.info("states of the %s state of run %s in %s", fitted.state, run, run_dir)
    run_states(
        fitted,
        structure,
        ligands,
        solver,
        run_dir,
        cubes=bool(outputs.get("cubes", True)),
        plots=bool(outputs.get("plots", True)),
    )

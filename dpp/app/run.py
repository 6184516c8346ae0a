"""Run a composed configuration: validate everything, take the run directory, dispatch to
the gradient, Monte Carlo or evaluation workflow. The only entry that reads the config."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from dpp.app import compose
from dpp.app.gradient import run_gradient
from dpp.app.origins import Origins, origins_of
from dpp.app.settings import build
from dpp.errors import SettingError
from dpp.io.run_folder import RESOLVED_CONFIG
from dpp.io.writers import write_text_atomic
from dpp.mc.settings import MAX_SEED
from dpp.runs.folder import within_run_dir
from dpp.runs.lock import RunLock
from dpp.runs.signals import stop_on_signals
from dpp.threads import apply_threads, parse_threads, thread_budget
from dpp.training.strategy import is_global_zero
from dpp.workflows.evaluate import EvaluationSettings, run_evaluate
from dpp.workflows.monte_carlo import run_monte_carlo
from dpp.workflows.settings import RunSettings

log = logging.getLogger("dpp")
WORKFLOWS = ("gradient", "monte_carlo", "evaluate")


def run_settings(cfg: DictConfig, origins: Origins) -> RunSettings:
    """Every typed section of `cfg`, checked; the first problem is one InputError."""
    seed = OmegaConf.select(cfg, "seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise origins.error(
            "seed", "invalid seed", expected=f"an integer from 0 to {MAX_SEED}", found=seed
        )
    try:
        threads = parse_threads(OmegaConf.select(cfg, "num_threads"))
    except SettingError as error:
        raise origins.setting_error("", error) from None
    return RunSettings(
        seed=seed,
        threads=threads,
        data=build(cfg, "data", origins),
        model=build(cfg, "model", origins),
        physics=build(cfg, "hamiltonian", origins),
        loss=build(cfg, "loss", origins),
        init=build(cfg, "init", origins),
        outputs=build(cfg, "outputs", origins),
    )


def _hydra_context() -> tuple[list[str], dict[str, Any], Path | None, list[Path]]:
    """Command-line overrides, group choices, run dir and extra config dirs of Hydra."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return [], {}, None, []
    hydra = HydraConfig.get()
    dirs = [
        Path(source.path.removeprefix("file://"))
        for source in hydra.runtime.config_sources
        if source.provider in ("command-line", "hydra.searchpath in command-line")
        and source.schema == "file"
    ]
    choices = {k: v for k, v in hydra.runtime.choices.items() if not k.startswith("hydra")}
    return list(hydra.overrides.task), choices, Path(hydra.runtime.output_dir), dirs


def _experiment_file(choices: Mapping[str, Any], dirs: Iterable[Path]) -> Path | None:
    option = choices.get("experiment")
    if not option:
        return None
    for folder in [compose.config_dir(), *dirs]:
        file = folder / "experiment" / f"{option}.yaml"
        if file.is_file():
            return file
    return None


def run(
    cfg: DictConfig,
    *,
    run_dir: str | Path | None = None,
    overrides: Iterable[str] | None = None,
    choices: Mapping[str, Any] | None = None,
    config_dirs: Iterable[str | Path] = (),
    prepared: compose.Prepared | None = None,
    lock: RunLock | None = None,
) -> float:
    """Run the workflow of the composed `cfg` in `run_dir`; returns its final loss (eV²).

    Inside a Hydra app the overrides, choices and run directory come from Hydra; `prepared`
    is what the pre-pass read and `lock` the run directory's lock it already holds
    (dpp.app.cli); the run holds it throughout (`within_run_dir`)."""
    hydra_overrides, hydra_choices, hydra_dir, hydra_dirs = _hydra_context()
    overrides = hydra_overrides if overrides is None else list(overrides)
    choices = hydra_choices if choices is None else dict(choices)
    dirs = [*hydra_dirs, *map(Path, config_dirs)]
    run_dir = Path(run_dir or hydra_dir or Path.cwd())
    prepared = prepared or compose.Prepared()
    origins = origins_of(
        overrides, _experiment_file(choices, dirs), prepared.nn_config, prepared.translation
    )
    with stop_on_signals():
        if not is_global_zero():
            return _dispatch(cfg, origins, run_dir)
        return within_run_dir(run_dir, lambda: _dispatch(cfg, origins, run_dir), lock)


def _dispatch(cfg: DictConfig, origins: Origins, run_dir: Path) -> float:
    name = OmegaConf.select(cfg, "workflow.name")
    if name not in WORKFLOWS:
        raise origins.error(
            "workflow.name", "unknown workflow", expected=", ".join(WORKFLOWS), found=name
        )
    OmegaConf.update(cfg, "paths.output_dir", str(run_dir), force_add=True)
    settings = run_settings(cfg, origins)
    pl.seed_everything(settings.seed, workers=True, verbose=False)
    if name != "monte_carlo":  # the Monte Carlo workflow shares them among its replica workers
        apply_threads(thread_budget(settings.threads))
    if is_global_zero():
        text = OmegaConf.to_yaml(compose.resolved_container(cfg))
        write_text_atomic(run_dir / RESOLVED_CONFIG, text)
    log.info("workflow %s on %s; run directory %s", name, settings.data.bundle, run_dir)
    if name == "evaluate":
        run = cfg.get("run")
        evaluation = EvaluationSettings(
            run=None if run is None else Path(str(run)),
            state=str(cfg.get("state", "best")),
            checkpoint=cfg.get("checkpoint"),
            k_chunk=int(cfg.workflow.k_chunk),
            write_plots=bool(cfg.workflow.write_plots),
            progress=bool(cfg.workflow.get("progress", True)),
        )
        return run_evaluate(evaluation, settings, origins, run_dir)
    if name == "monte_carlo":
        return run_monte_carlo(build(cfg, "mc", origins), settings, origins, run_dir)
    return run_gradient(cfg, settings, origins, run_dir)

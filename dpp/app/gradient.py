"""`workflow=gradient`: Lightning's objects (Trainer, optimiser and schedule factories,
loggers, callbacks) from the configuration, checked against the model that
`dpp.workflows.gradient.prepare_fit` built; the work is `dpp.workflows.gradient.run_fit`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ProgressBar

from dpp.app.compose import resolved_container
from dpp.app.origins import Origins
from dpp.app.settings import instantiate_checked, partial_of
from dpp.runs.signals import OwnSignalHandlers
from dpp.training.strategy import is_global_zero
from dpp.workflows.arguments import call_checked
from dpp.workflows.checks import check_devices, check_parallel
from dpp.workflows.gradient import Training, prepare_fit, run_fit, stage_device
from dpp.workflows.settings import RunSettings


def _instantiate_all(cfg: DictConfig, group: str, origins: Origins, **kwargs: Any) -> list[Any]:
    """Every `_target_` entry of config section `group` (callbacks, loggers), in order."""
    node = OmegaConf.select(cfg, group) or {}
    out = []
    for name in node:
        entry = node[name]
        if OmegaConf.is_dict(entry) and "_target_" in entry:
            out.append(instantiate_checked(entry, f"{group}.{name}", origins, **kwargs))
    return out


def _trainer(
    cfg: DictConfig, origins: Origins, callbacks: list[pl.Callback], loggers: list[Any]
) -> pl.Trainer:
    if not sys.stderr.isatty() and not origins.override_of("trainer.enable_progress_bar"):
        OmegaConf.update(cfg, "trainer.enable_progress_bar", False)  # the epoch log speaks
    if not cfg.trainer.get("enable_progress_bar", True):
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    return instantiate_checked(
        cfg.trainer,
        "trainer",
        origins,
        problem="invalid Trainer settings",
        nested=True,
        callbacks=callbacks,
        logger=loggers or False,
    )


def run_gradient(cfg: DictConfig, settings: RunSettings, origins: Origins, run_dir: Path) -> float:
    """The gradient workflow; returns the final validation loss (eV², eval mode)."""
    epochs = int(OmegaConf.select(cfg, "trainer.max_epochs", default=0) or 0)
    fit = prepare_fit(settings, origins, epochs)
    optimizer = partial_of(cfg, "optimizer", origins)
    probe = call_checked(
        optimizer, "optimizer", origins, fit.parameters or [fit.hamiltonian.pp_free]
    )
    schedule = cfg.get("scheduler")
    scheduled = schedule is not None and "_target_" in schedule
    scheduler = partial_of(cfg, "scheduler", origins) if scheduled else None
    if scheduler is not None:
        call_checked(scheduler, "scheduler", origins, probe)
    loggers = _instantiate_all(cfg, "logger", origins) if is_global_zero() else []
    callbacks = [*_instantiate_all(cfg, "callbacks", origins), OwnSignalHandlers()]
    check_devices(cfg.trainer.get("accelerator"), cfg.trainer.get("devices"), origins)
    trainer = _trainer(cfg, origins, callbacks, loggers) if epochs > 0 else None
    if trainer is not None:
        check_parallel(settings.loss, settings.data.separate_kpt_grad, trainer.world_size, origins)
    training = Training(
        trainer=trainer,
        optimizer=optimizer,
        scheduler=scheduler,
        probe=probe,
        loggers=loggers,
        callbacks=callbacks,
        hyperparameters=resolved_container(cfg),
        gradient_clip=cfg.workflow.get("gradient_clip"),
        load_optimizer_state=bool(cfg.workflow.get("load_optimizer_state")),
        ckpt_path=cfg.get("ckpt_path"),
        resume=bool(cfg.get("resume")),
        device=stage_device(str(OmegaConf.select(cfg, "trainer.accelerator", default="cpu"))),
        show_progress=bool(OmegaConf.select(cfg, "trainer.enable_progress_bar", default=True)),
    )
    return run_fit(fit, training, settings, run_dir)

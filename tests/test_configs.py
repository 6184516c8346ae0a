"""Every file of conf/ composes, and every `_target_` in it instantiates (the manner of the
lightning-hydra-template's tests/test_configs.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict

from dpp.app.compose import compose_config, config_dir, prepare
from dpp.app.origins import Origins
from dpp.app.run import run_settings
from dpp.fitting.gauss_newton import FunctionSpaceGaussNewton

CONF = config_dir()
OPTIONAL_PACKAGES = {"wandb": "wandb", "mlflow": "mlflow"}
"""Logger configs that need a package dpp does not depend on."""


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def _composed(overrides: list[str], tmp_path: Path):
    prepare("train", overrides)
    cfg = compose_config("train", overrides)
    with open_dict(cfg):
        del cfg["hydra"]
    cfg.paths.output_dir = str(tmp_path)
    return cfg


def _parameters() -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(torch.ones(3, dtype=torch.float64))]


def test_train_and_evaluate_compose_and_build_their_settings(tmp_path: Path) -> None:
    for name in ("train", "evaluate"):
        prepare(name, [])
        cfg = compose_config(name, [])
        with open_dict(cfg):
            del cfg["hydra"]
        cfg.paths.output_dir = str(tmp_path)
        settings = run_settings(cfg, Origins())
        assert settings.model.name == "Net_celu_HeInit_decayGaussian"
        assert settings.init.optimizer is not None


@pytest.mark.parametrize("option", _options("optimizer"))
def test_every_optimizer_steps(option: str, tmp_path: Path) -> None:
    """Each optimiser steps a quadratic; Gauss–Newton, which needs the band objective
    (tests/test_gauss_newton.py), through its fallback."""
    gauss_newton = option == "gauss_newton"
    cfg = _composed(
        [f"optimizer={option}", *([] if gauss_newton else ["optimizer.lr=0.1"])], tmp_path
    )
    (weight,) = params = _parameters()
    optimizer = instantiate(cfg.optimizer)(params)
    if gauss_newton:
        assert isinstance(optimizer, FunctionSpaceGaussNewton)
        optimizer = optimizer.fallback(params)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = ((weight - 2.0) ** 2).sum()
        loss.backward()
        return loss

    closure()
    optimizer.step(closure)
    assert float(((weight.detach() - 2.0) ** 2).sum()) < 3.0, option


@pytest.mark.parametrize("option", _options("scheduler"))
def test_every_scheduler_builds(option: str, tmp_path: Path) -> None:
    cfg = _composed([f"scheduler={option}"], tmp_path)
    optimizer = torch.optim.SGD(_parameters(), lr=0.1)
    if option == "none":
        assert "_target_" not in cfg.scheduler
        return
    scheduler = instantiate(cfg.scheduler)(optimizer)
    kinds = (torch.optim.lr_scheduler.LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    assert isinstance(scheduler, kinds), option


@pytest.mark.parametrize("option", _options("recipe"))
def test_every_recipe_builds_its_optimizer_and_schedule(option: str, tmp_path: Path) -> None:
    cfg = _composed([f"recipe={option}"], tmp_path)
    optimizer = instantiate(cfg.optimizer)(_parameters())
    if "_target_" in cfg.scheduler:
        instantiate(cfg.scheduler)(optimizer)
    expected = {"lbfgs": torch.optim.LBFGS, "gauss_newton": FunctionSpaceGaussNewton}
    assert isinstance(optimizer, expected.get(option, torch.optim.Adam)), option


@pytest.mark.parametrize("option", _options("trainer"))
def test_every_trainer_builds(option: str, tmp_path: Path) -> None:
    overrides = [f"trainer={option}"]
    if option != "cpu":
        overrides.append("trainer.accelerator=cpu")
    cfg = _composed(overrides, tmp_path)
    assert isinstance(instantiate(cfg.trainer, logger=False), pl.Trainer)


@pytest.mark.parametrize("option", _options("callbacks"))
def test_every_callbacks_file_builds(option: str, tmp_path: Path) -> None:
    cfg = _composed([f"callbacks={option}"], tmp_path)
    built = [
        instantiate(node)
        for node in (cfg.callbacks or {}).values()
        if "_target_" in node  # NN_config values of callbacks not chosen stay inert
    ]
    assert all(isinstance(callback, pl.Callback) for callback in built)
    assert len(built) >= (0 if option == "none" else 1), option


@pytest.mark.parametrize("option", _options("logger"))
def test_every_logger_builds(option: str, tmp_path: Path) -> None:
    package = OPTIONAL_PACKAGES.get(option)
    if package and importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} is not installed")
    cfg = _composed([f"logger={option}"], tmp_path)
    built = [instantiate(node) for node in (cfg.logger or {}).values()]
    assert all(isinstance(logger, pl.loggers.Logger) for logger in built)
    assert len(built) == {"none": 0, "many": 2}.get(option, 1), option


@pytest.mark.parametrize(
    ("group", "option"),
    [(group, option) for group in ("workflow", "debug", "experiment") for option in _options(group)]
    + [("hparams_search", "optuna")],
)
def test_every_other_option_composes_into_valid_settings(
    group: str, option: str, tmp_path: Path
) -> None:
    if group == "experiment":
        raw = OmegaConf.to_container(OmegaConf.load(CONF / "experiment" / f"{option}.yaml"))
        bundle = raw["data"]["bundle"]
        if not Path(bundle.replace("${paths.data_root}", ".")).is_dir():
            pytest.skip(f"{bundle}: a bundle of the source checkout")
    cfg = _composed([f"{group}={option}"], tmp_path)
    settings = run_settings(cfg, Origins())
    assert settings.data.bundle
    if group == "workflow" and option == "monte_carlo":
        assert instantiate(cfg.mc).engine == "auto"


def test_launchers_compose() -> None:
    for option in _options("hydra/launcher"):
        cfg = compose_config("train", [f"hydra/launcher={option}"])
        assert cfg.hydra.launcher._target_

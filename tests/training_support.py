"""Helpers of the training tests: tiny bundles and in-process runs of the Hydra app."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf, open_dict

from dpp.app.compose import Prepared, compose_config, prepare
from dpp.app.run import run

REPO = Path(__file__).resolve().parents[1]
CDSE = REPO / "dpp" / "data" / "examples" / "zb_CdSe"
INGAASP = REPO / "tests" / "data" / "InGaAsP"


def _set_key(path: Path, key: str, value: str) -> None:
    lines = [ln for ln in path.read_text().splitlines() if ln.split("=")[0].strip() != key]
    path.write_text("\n".join([*lines, f"{key} = {value}"]) + "\n")


def small_bundle(
    tmp: Path, source: Path = CDSE, n_k: int = 5, max_ke: float = 1.5, **config: object
) -> Path:
    """Copy of `source` with maxKE `max_ke`, the first `n_k` k-points and NN_config keys set
    (defaults: 3 epochs, plotEvery 2, 20 pre-fit epochs, no init checkpoint)."""
    folder = tmp / f"bundle_{source.name}"
    shutil.copytree(source, folder)
    (folder / "init_PPmodel.pth").unlink(missing_ok=True)
    settings = {
        "max_num_epochs": 3,
        "plotEvery": 2,
        "init_Zunger_num_epochs": 4,
        "init_Zunger_plotEvery": 2,
        "schedulerStep": 2,
        "patience": 100,
    }
    settings.update(config)
    for key, value in settings.items():
        _set_key(folder / "NN_config.par", key, str(value))
    for input_file in folder.glob("input_*.par"):
        _set_key(input_file, "maxKE", str(max_ke))
    for table in [*folder.glob("kpoints_*.par"), *folder.glob("expBandStruct_*.par")]:
        rows = [ln for ln in table.read_text().splitlines() if ln.strip()]
        table.write_text("\n".join(rows[:n_k]) + "\n")
    return folder


QUIET = [
    "trainer.enable_progress_bar=false",
    "outputs.converge_plots=false",
    "outputs.n_qgrid=64",
    "outputs.n_rgrid=64",
    "outputs.ft_n_qgrid=128",
]


def compose_cfg(
    overrides: list[str], config_name: str = "train", config_dirs: tuple = ()
) -> tuple[DictConfig, dict, Prepared]:
    """The job config of `python <config_name>.py overrides` (pre-pass included), Hydra's
    runtime choices and what the pre-pass read."""
    prepared = prepare(config_name, overrides, config_dirs)
    cfg = compose_config(config_name, overrides, config_dirs)
    choices = OmegaConf.to_container(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, choices, prepared


def run_app(
    run_dir: Path, overrides: list[str], config_name: str = "train", extra_dirs: tuple = ()
) -> float:
    """Run the app in-process like `python train.py overrides hydra.run.dir=run_dir`."""
    overrides = [*QUIET, *overrides]
    cfg, choices, prepared = compose_cfg(overrides, config_name, extra_dirs)
    return run(
        cfg,
        run_dir=run_dir,
        overrides=overrides,
        choices=choices,
        config_dirs=extra_dirs,
        prepared=prepared,
    )


def cost_rows(path: Path) -> list[tuple[int, float]]:
    return [(int(a), float(b)) for a, b in (ln.split() for ln in path.read_text().splitlines())]


class EpochMarker(pl.Callback):
    """A user's own callback: writes an empty file named after each finished epoch."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / str(trainer.current_epoch + 1)).touch()


class InterruptAt(pl.Callback):
    """Ctrl-C at the start of 1-based epoch `epoch` (after the checkpoint of the one before)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch + 1 == self.epoch:
            raise KeyboardInterrupt


class SignalAt(pl.Callback):
    """Sends signal `signum` to this process within the optimiser step of 1-based epoch
    `epoch` (after its evaluation), as `kill` would from outside."""

    def __init__(self, epoch: int, signum: int) -> None:
        self.epoch = epoch
        self.signum = signum

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: object
    ) -> None:
        if trainer.current_epoch + 1 == self.epoch:
            os.kill(os.getpid(), self.signum)

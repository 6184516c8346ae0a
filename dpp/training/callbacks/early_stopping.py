"""Early stopping with the original's patience in epochs (physics.md §8)."""

from __future__ import annotations

import math

import pytorch_lightning as pl
from pytorch_lightning.callbacks import EarlyStopping


class EpochPatienceEarlyStopping(EarlyStopping):
    """Lightning's EarlyStopping on `val/loss`, with `patience_epochs` counted in epochs:
    kept only because NN_config.par's `patience` counts epochs while Lightning counts
    validation checks (one every `check_val_every_n_epoch` epochs). None never stops."""

    def __init__(self, patience_epochs: int | None = None, min_delta: float = 1e-4) -> None:
        # a non-finite loss is the module's to report (it stops the run with a message)
        super().__init__(
            monitor="val/loss", mode="min", min_delta=min_delta, patience=1, check_finite=False
        )
        self.patience_epochs = patience_epochs

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        epochs = self.patience_epochs or (trainer.max_epochs or 0) + 1
        self.patience = max(1, math.ceil(epochs / trainer.check_val_every_n_epoch))

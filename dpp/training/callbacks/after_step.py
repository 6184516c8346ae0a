"""The base of callbacks that act once per optimiser step."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl


class AfterStep(pl.Callback):
    """Calls `after_step(trainer, pl_module, epoch)` (1-based epoch) after the last training
    batch of every epoch, where the module takes its one optimiser step (or stops the fit on
    a NaN/inf, with `pl_module.nonfinite` set)."""

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if batch_idx == trainer.num_training_batches - 1:
            self.after_step(trainer, pl_module, trainer.current_epoch + 1)

    def after_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, epoch: int) -> None:
        """What the callback does after the step of `epoch` (1-based)."""

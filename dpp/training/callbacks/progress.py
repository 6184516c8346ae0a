"""Lightning's rich progress bar with 1-based epochs, as the log lines and file names."""

from __future__ import annotations

from pytorch_lightning.callbacks import RichProgressBar


class EpochProgressBar(RichProgressBar):
    """RichProgressBar counting epochs from 1 (`Epoch 20/20`), kept so that the bar, the
    log (`epoch 20/20`) and the files (`epoch_20_*`) name the same epoch."""

    def _get_train_description(self, current_epoch: int) -> str:
        return f"Epoch {current_epoch + 1}/{self.trainer.max_epochs}"

"""(system, k-point) items served in batches (separateKptGrad, physics.md §7.3).

Every item is one k-point of one system; a batch is a LongTensor (B, 2) of (system, k).
Items are served in a fixed order and every item exactly once per epoch, so the sum of the
per-batch losses is the full loss whatever the batch size (DDP: shard the items, sum the
gradients).
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset


class KPointItems(Dataset):
    """All (system, k-index) pairs of a list of systems, in system-then-k order."""

    def __init__(self, n_kpoints: list[int]) -> None:
        self.items = torch.tensor(
            [(s, k) for s, n in enumerate(n_kpoints) for k in range(n)], dtype=torch.long
        ).reshape(-1, 2)

    def __len__(self) -> int:
        return int(self.items.shape[0])

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.items[index]


def collate(rows: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack(rows)


class KPointDataModule(pl.LightningDataModule):
    """Batches of `batch_size` items with separateKptGrad, else one batch of all items."""

    def __init__(self, n_kpoints: list[int], batch_size: int, separate: bool = True) -> None:
        super().__init__()
        self.dataset = KPointItems(n_kpoints)
        self.batch_size = batch_size if separate else len(self.dataset)

    def batches(self) -> list[torch.Tensor]:
        """The batches of one epoch, in serving order."""
        return list(torch.split(self.dataset.items, self.batch_size))

    def _loader(self) -> DataLoader:
        return DataLoader(
            self.dataset, batch_size=self.batch_size, shuffle=False, collate_fn=collate
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader()

    def val_dataloader(self) -> DataLoader:
        return self._loader()

"""(system, k-point) items served in batches (separateKptGrad, physics.md §7.3).

Every item is one k-point of one system; a batch is a LongTensor (B, 2) of (system, k).
Items are served in a fixed order and every item exactly once per epoch, so the sum of the
per-batch losses is the full loss whatever the batch size. Under DDP each rank serves its
own share of every batch (no padding), so the ranks' losses also sum to the full loss.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler


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


class ShardedBatchSampler(Sampler[list[int]]):
    """Distributed batch sampler without padding: the items are cut into global batches of
    `batch_size · world` and rank r takes the items r, r + world, … of each. Every rank gets
    the same number of batches (some possibly empty), so all ranks take part in every step
    and no item is served twice."""

    def __init__(self, n_items: int, batch_size: int, rank: int = 0, world: int = 1) -> None:
        self.n_items, self.rank, self.world = n_items, rank, world
        self.span = batch_size * world

    def __len__(self) -> int:
        return -(-self.n_items // self.span)

    def __iter__(self) -> Iterator[list[int]]:
        for start in range(0, self.n_items, self.span):
            stop = min(start + self.span, self.n_items)
            yield list(range(start + self.rank, stop, self.world))


def collate(rows: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack(rows) if rows else torch.empty((0, 2), dtype=torch.long)


class KPointDataModule(pl.LightningDataModule):
    """Batches of `batch_size` items per rank with separateKptGrad, else one batch of all
    items; the rank and world size come from the Trainer (1 process outside one)."""

    def __init__(self, n_kpoints: list[int], batch_size: int, separate: bool = True) -> None:
        super().__init__()
        self.dataset = KPointItems(n_kpoints)
        self.batch_size = batch_size if separate else len(self.dataset)
        self.rank, self.world = 0, 1

    def setup(self, stage: str) -> None:
        if self.trainer is not None:
            self.rank, self.world = self.trainer.global_rank, self.trainer.world_size

    def sampler(self) -> ShardedBatchSampler:
        return ShardedBatchSampler(len(self.dataset), self.batch_size, self.rank, self.world)

    def batches(self) -> list[torch.Tensor]:
        """This rank's batches of one epoch, in serving order."""
        items = self.dataset.items
        return [items[torch.as_tensor(rows, dtype=torch.long)] for rows in self.sampler()]

    def _loader(self) -> DataLoader:
        return DataLoader(self.dataset, batch_sampler=self.sampler(), collate_fn=collate)

    def train_dataloader(self) -> DataLoader:
        return self._loader()

    def val_dataloader(self) -> DataLoader:
        return self._loader()

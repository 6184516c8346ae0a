"""Callbacks of the gradient workflow: per-epoch files, kicks, early stopping, resume state
(physics.md §8, bundle-format §15.3). File writes happen on rank zero only."""

from __future__ import annotations

import logging
import os
import resource
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_only

from dpp.io.writers import save_torch_atomic, write_parameter_dump
from dpp.mc.perturb import perturb_network, perturb_soc
from dpp.slots import SPIN_ORBIT_NONLOCAL
from dpp.training import plots
from dpp.training.module import PseudopotentialModule
from dpp.training.outputs import Reporter

log = logging.getLogger(__name__)

LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"
DUMP_EPOCHS = 10  # gradients and parameters are dumped for epochs e <= 9 too


def _last_batch(trainer: pl.Trainer, batch_idx: int) -> bool:
    return batch_idx == trainer.num_training_batches - 1


class EpochOutputs(pl.Callback):
    """Dumps, band/potential files and plots, checkpoints and cost files with the original's
    names (epoch E = e + 1), TensorBoard figures, and the resume checkpoint."""

    def __init__(
        self,
        reporter: Reporter,
        plot_every: int,
        *,
        print_grad: bool = False,
        memory_flag: bool = False,
        checkpoint_every: int = 1,
    ) -> None:
        self.reporter = reporter
        self.plot_every = plot_every
        self.print_grad = print_grad
        self.memory_flag = memory_flag
        self.checkpoint_every = checkpoint_every
        self.run_dir = reporter.run_dir

    @rank_zero_only
    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: PseudopotentialModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if not _last_batch(trainer, batch_idx):
            return
        epoch = trainer.current_epoch
        named = pl_module.trainable()
        if self.print_grad:
            norms = {n: float(p.grad.norm()) for n, p in named if p.grad is not None}
            log.info("epoch %d gradient norms: %s", epoch + 1, norms)
        if self.memory_flag:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            log.info(
                "epoch %d: peak resident memory %.0f MiB (line profile: mprof run train.py)",
                epoch + 1,
                peak,
            )
        if epoch < DUMP_EPOCHS or (epoch + 1) % self.plot_every == 0:
            prefix = self.run_dir / f"epoch_{epoch + 1}"
            grads = [(n, None if p.grad is None else p.grad.cpu().numpy()) for n, p in named]
            values = [(n, p.detach().cpu().numpy()) for n, p in named]
            write_parameter_dump(Path(f"{prefix}_gradients.dat"), grads, gradients=True)
            write_parameter_dump(Path(f"{prefix}_params.dat"), values)

    @rank_zero_only
    def on_validation_end(self, trainer: pl.Trainer, pl_module: PseudopotentialModule) -> None:
        if trainer.sanity_checking or pl_module.val_bands is None:
            return
        epoch = trainer.current_epoch + 1
        prefix = f"epoch_{epoch}"
        bands = [b.detach().cpu().numpy() for b in pl_module.val_bands]
        self.reporter.bands(prefix, bands, tag="bands")
        self.reporter.potentials(prefix, pl_module.hamiltonian, tag="potentials")
        if pl_module.network is not None:
            save_torch_atomic(
                pl_module.network.state_dict(), self.run_dir / f"{prefix}_PPmodel.pth"
            )
        optimizer = trainer.optimizers[0]
        save_torch_atomic(optimizer.state_dict(), self.run_dir / f"{prefix}_AdamState.pth")
        plots.write_cost_file(self.run_dir / "final_validation_cost.dat", pl_module.val_history)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: PseudopotentialModule) -> None:
        if trainer.is_global_zero:
            plots.write_cost_file(self.run_dir / "final_training_cost.dat", pl_module.train_history)
        if (trainer.current_epoch + 1) % self.checkpoint_every == 0:
            save_resume_checkpoint(trainer, self.run_dir)


def save_resume_checkpoint(trainer: pl.Trainer, run_dir: Path) -> Path:
    """Full trainer state (model, optimiser, scheduler, loops, callbacks) to
    `checkpoints/last.ckpt`, written to a temporary name first and then moved into place."""
    path = run_dir / LAST_CHECKPOINT
    temporary = path.with_name(".last.ckpt.tmp")
    if trainer.is_global_zero:
        path.parent.mkdir(parents=True, exist_ok=True)
    trainer.save_checkpoint(temporary)
    if trainer.is_global_zero:
        os.replace(temporary, path)
    return path


class Perturbation(pl.Callback):
    """Monte Carlo mode-1 kick after the step of epochs e > 0 with e % every == 0:
    network x ← x·(1 + U(−ε, ε)), spin-orbit/nonlocal a5..a7 ← a·(1 + U(−ε/100, ε/100))."""

    def __init__(self, every: int, epsilon: float, seed: int) -> None:
        self.every = every
        self.epsilon = epsilon
        self.rng = np.random.default_rng(seed)

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: PseudopotentialModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        epoch = trainer.current_epoch
        if not (_last_batch(trainer, batch_idx) and epoch > 0 and epoch % self.every == 0):
            return
        kick(pl_module, self.epsilon, self.rng)
        log.info("epoch %d: random perturbation (epsilon %g)", epoch + 1, self.epsilon)

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state_dict["rng"]


@torch.no_grad()
def kick(module: PseudopotentialModule, epsilon: float, rng: np.random.Generator) -> None:
    """Apply the Monte Carlo mode-1 perturbation to the network and to a5..a7 of every species."""
    hamiltonian = module.hamiltonian
    if hamiltonian.uses_network:
        perturb_network(module.network.parameters(), 1, epsilon, rng)
    table = hamiltonian.pp_table().detach().clone()
    perturb_soc(table, 1, epsilon, rng, active=SPIN_ORBIT_NONLOCAL)
    hamiltonian.pp_fixed.copy_(table)
    hamiltonian.pp_free.data.copy_(table[hamiltonian.pp_mask])


class EarlyStopping(pl.Callback):
    """Stop when the validation cost has not improved by more than `min_delta` for
    `patience` epochs (checked at every validation)."""

    def __init__(self, patience: int, min_delta: float = 1e-4) -> None:
        self.patience = patience
        self.min_delta = min_delta
        self.best = float("inf")
        self.best_epoch = 0

    def on_validation_end(self, trainer: pl.Trainer, pl_module: PseudopotentialModule) -> None:
        if trainer.sanity_checking or not pl_module.val_history:
            return
        epoch, value = pl_module.val_history[-1]
        if value < self.best - self.min_delta:
            self.best, self.best_epoch = value, epoch
        elif epoch - self.best_epoch >= self.patience:
            log.info(
                "early stopping at epoch %d: no improvement since epoch %d (best %.6g)",
                epoch,
                self.best_epoch,
                self.best,
            )
            trainer.should_stop = True

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = state_dict["best"]
        self.best_epoch = state_dict["best_epoch"]

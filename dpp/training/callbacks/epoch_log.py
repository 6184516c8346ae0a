"""One line per epoch in the log (train.log): losses per system, learning rate and time."""

from __future__ import annotations

import logging
import resource
import time

import pytorch_lightning as pl
from pytorch_lightning.utilities import rank_zero_only

from dpp.training.callbacks.after_step import AfterStep
from dpp.training.module import PseudopotentialModule

log = logging.getLogger("dpp.training")


class EpochLog(AfterStep):
    """`epoch E/N: loss L eV^2 (band RMS r meV; sys0 …, terms …), best B (epoch e), lr η
    (Gauss–Newton: damping λ), P passes, t s` after each step (P: the full passes over the
    k-points in that epoch: its evaluation and the step's trials or line search), with the
    peak resident memory (`memory`) and the gradient norms (`gradients`, NN_config printGrad)
    when asked; at every validation its loss and band RMS and, per system, the RMS band
    error, the worst band and the band-edge errors (meV). The band RMS is
    sqrt(band loss / Σ w_k u_b): the weighted root-mean-square band error behind the loss,
    which is a weighted sum."""

    def __init__(self, memory: bool = False, gradients: bool = False) -> None:
        self.memory = memory
        self.gradients = gradients
        self._start = time.perf_counter()

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: PseudopotentialModule) -> None:
        self._start = time.perf_counter()

    @rank_zero_only
    def after_step(self, trainer: pl.Trainer, pl_module: PseudopotentialModule, epoch: int) -> None:
        if pl_module.nonfinite is not None:
            log.error("epoch %d: %s became NaN or infinite", epoch, pl_module.nonfinite)
            return
        m = pl_module.epoch_metrics
        parts = [f"sys{i} {m[f'train/loss_sys{i}']:.6g}" for i in range(pl_module.n_systems)]
        parts += [
            f"{k.removeprefix('train/')} {v:.6g}"
            for k, v in m.items()
            if k.startswith("train/") and "loss" not in k
        ]
        step = f"damping {m['damping']:.3g}" if "damping" in m else f"lr {m['lr']:.4g}"
        line = (
            f"epoch {epoch}/{trainer.max_epochs}: loss {m['train/loss']:.6g} eV^2 "
            f"(band RMS {m['train_rms_meV']:.4g} meV; {', '.join(parts)}), "
            f"best {pl_module.best_loss:.6g} (epoch {pl_module.best_epoch}), {step}, "
            f"{pl_module.epoch_passes} passes, {time.perf_counter() - self._start:.2f} s"
        )
        if self.memory:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            line += f", peak memory {peak:.0f} MiB"
        log.info(line)
        if self.gradients:
            norms = {k: round(v, 6) for k, v in m.items() if k.startswith("grad_norm/")}
            log.info("epoch %d gradient norms: %s", epoch, norms)

    @rank_zero_only
    def on_validation_end(self, trainer: pl.Trainer, pl_module: PseudopotentialModule) -> None:
        if trainer.sanity_checking or not pl_module.val_history:
            return
        epoch, value = pl_module.val_history[-1]
        log.info(
            "epoch %d: validation loss %.6g eV^2, band RMS %.4g meV (eval mode)",
            epoch,
            value,
            pl_module.val_rms_mev,
        )
        for system, errors in zip(pl_module.hamiltonian.systems, pl_module.val_errors, strict=True):
            log.info(
                "epoch %d: system %d (%s): %s", epoch, system.index, system.name, errors.summary()
            )
        if pl_module.val_turning_points:
            counts = ", ".join(f"{s} {n}" for s, n in pl_module.val_turning_points.items())
            log.info("epoch %d: turning points of v(q): %s", epoch, counts)

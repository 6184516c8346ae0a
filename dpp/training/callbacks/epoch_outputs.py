"""The original's per-epoch files (physics.md §8, outputs.md §3), rank zero only."""

from __future__ import annotations

import pytorch_lightning as pl
from pytorch_lightning.utilities import rank_zero_only

from dpp.fitting.bands import BandTerm
from dpp.fitting.terms import KPointTerm
from dpp.io.writers import save_torch_atomic, write_parameter_dump
from dpp.outputs import plots
from dpp.outputs.reporter import evaluate_bands
from dpp.training.callbacks.after_step import AfterStep
from dpp.training.callbacks.context import RunAware
from dpp.training.module import PseudopotentialModule


def reorders_smoothly(term: KPointTerm) -> bool:
    """Whether the band term reorders some system's bands with smooth_reorder."""
    return isinstance(term, BandTerm) and any(t.reordering.mode == "smooth" for t in term.targets)


class EpochOutputs(RunAware, AfterStep):
    """Parameter and gradient dumps for epochs E ≤ `dump_epochs` and at every validation;
    at every validation (every `trainer.check_val_every_n_epoch`, the original's plotEvery)
    bands, potentials, `epoch_E_PPmodel.pth` and `epoch_E_AdamState.pth`, and with
    smooth_reorder `epoch_E_newBand_b.png` (band b before and after reordering); the cost
    files after every epoch; the movies (outputs.movies) when the fit ends. E is the 1-based
    epoch."""

    def __init__(self, dump_epochs: int = 10) -> None:
        self.dump_epochs = dump_epochs

    @rank_zero_only
    def after_step(self, trainer: pl.Trainer, pl_module: PseudopotentialModule, epoch: int) -> None:
        if pl_module.nonfinite is not None:
            return
        if epoch > self.dump_epochs and epoch % trainer.check_val_every_n_epoch:
            return
        named = pl_module.trainable()
        prefix = self.context.run_dir / f"epoch_{epoch}"
        grads = [(n, None if p.grad is None else p.grad.cpu().numpy()) for n, p in named]
        write_parameter_dump(
            prefix.with_name(f"{prefix.name}_gradients.dat"), grads, gradients=True
        )
        values = [(n, p.detach().cpu().numpy()) for n, p in named]
        write_parameter_dump(prefix.with_name(f"{prefix.name}_params.dat"), values)

    @rank_zero_only
    def on_validation_end(self, trainer: pl.Trainer, pl_module: PseudopotentialModule) -> None:
        if trainer.sanity_checking or pl_module.val_bands is None:
            return
        prefix = f"epoch_{trainer.current_epoch + 1}"
        reporter, run_dir = self.context.reporter, self.context.run_dir
        bands = [b.detach().cpu().numpy() for b in pl_module.val_bands]
        term = pl_module.objective.primary
        reporter.bands(prefix, bands, tag="bands", term=term)
        if reorders_smoothly(term):
            reporter.band_by_band(prefix, bands, evaluate_bands(pl_module.hamiltonian), term)
        reporter.potentials(prefix, pl_module.hamiltonian, tag="potentials")
        if pl_module.network is not None:
            save_torch_atomic(pl_module.network.state_dict(), run_dir / f"{prefix}_PPmodel.pth")
        optimizer = trainer.optimizers[0]
        save_torch_atomic(optimizer.state_dict(), run_dir / f"{prefix}_AdamState.pth")
        plots.write_cost_file(run_dir / "final_validation_cost.dat", pl_module.val_history)

    @rank_zero_only
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: PseudopotentialModule) -> None:
        history = pl_module.train_history
        plots.write_cost_file(self.context.run_dir / "final_training_cost.dat", history)

    @rank_zero_only
    def on_fit_end(self, trainer: pl.Trainer, pl_module: PseudopotentialModule) -> None:
        self.context.reporter.movies()

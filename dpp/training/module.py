"""LightningModule: the pseudopotential Hamiltonian trained on the band-structure loss.

Manual optimisation: the k-point batches of an epoch each back-propagate their part of the
loss (gradients accumulate), and one optimiser step is taken at the last batch, so the step
equals the full-batch step to round-off (physics.md §7.3, §8). L-BFGS re-evaluates the whole
epoch in its closure.

Under DDP (`dpp.training.strategy`) every rank evaluates its share of the k-points; the
gradients and the per-system losses are summed over ranks before the step, and the global
terms (penalties, observables) enter the gradient on global rank 0 only, so the step is the
single-process one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from dpp.physics.hamiltonian import PseudopotentialHamiltonian
from dpp.training.objective import RelativeEnergy, SystemTensors, system_loss
from dpp.training.observables import ObservableTerms
from dpp.training.optimizers import build_optimizer, decays_after, load_optimizer_state
from dpp.training.penalties import Penalties
from dpp.training.strategy import sum_gradients, sum_over_ranks

log = logging.getLogger(__name__)
EPOCH_LOG = {
    "on_step": False,
    "on_epoch": True,
    "batch_size": 1,
    "sync_dist": True,
    "rank_zero_only": True,
}
"""self.log flags: one value per epoch, already summed over ranks (no further sync)."""


@dataclass(frozen=True)
class OptimizerSettings:
    """optimizer.* and scheduler.* of the config."""

    name: str = "adam"
    lr: float = 1e-3
    sgd_momentum: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    lbfgs_max_iter: int = 20
    gamma: float = 1.0
    scheduler_step: int = 1
    state_path: str | None = None  # init_AdamState.pth to load (adam only)


class PseudopotentialModule(pl.LightningModule):
    """Wraps a PseudopotentialHamiltonian (network + analytic parameters) and its loss."""

    def __init__(
        self,
        hamiltonian: PseudopotentialHamiltonian,
        targets: list[SystemTensors],
        relative: RelativeEnergy | None,
        penalties: Penalties | None,
        optimizer: OptimizerSettings,
        batches: list[torch.Tensor],
        *,
        observables: ObservableTerms | None = None,
        runtime_flag: bool = False,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.hamiltonian = hamiltonian
        self.targets = targets
        self.relative = relative
        self.penalties = penalties if penalties is not None and penalties.active else None
        self.observables = observables if observables is not None and observables.active else None
        self.settings = optimizer
        self.batches = batches
        self.runtime_flag = runtime_flag
        self.n_systems = len(targets)
        self.train_history: list[tuple[int, float]] = []
        self.val_history: list[tuple[int, float]] = []
        self.epoch_loss = float("nan")
        self.epoch_terms: dict[str, float] = {}
        self.val_bands: list[torch.Tensor] | None = None
        self._reset_epoch()

    def _apply(self, fn, recurse: bool = True):  # noqa: ANN001 - nn.Module signature
        """Device moves and casts also reach the reference tensors of the targets."""
        super()._apply(fn, recurse)
        for target in self.targets:
            for name, value in vars(target).items():
                if isinstance(value, torch.Tensor):
                    setattr(target, name, fn(value))
        return self

    # -- parameters ---------------------------------------------------------------------
    @property
    def network(self) -> nn.Module | None:
        return self.hamiltonian.model

    def trainable(self) -> list[tuple[str, nn.Parameter]]:
        """Trainable tensors: network parameters (original names), then `pp_free`."""
        named = [] if self.network is None else list(self.network.named_parameters())
        if self.hamiltonian.pp_free.requires_grad:
            named.append(("pp_free", self.hamiltonian.pp_free))
        return named

    def configure_optimizers(self) -> dict[str, Any]:
        s = self.settings
        optimizer = build_optimizer(
            s.name,
            [p for _, p in self.trainable()],
            s.lr,
            sgd_momentum=s.sgd_momentum,
            adam_beta1=s.adam_beta1,
            adam_beta2=s.adam_beta2,
            lbfgs_max_iter=s.lbfgs_max_iter,
        )
        loaded = s.state_path is not None and s.name == "adam"
        if loaded and load_optimizer_state(optimizer, s.state_path, s.lr):
            log.info("optimizer state loaded from %s (lr reset to %g)", s.state_path, s.lr)
        scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, s.gamma)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler}}

    # -- loss ---------------------------------------------------------------------------
    def _reset_epoch(self) -> None:
        self._band_sum = torch.zeros(self.n_systems, dtype=torch.float64)
        self._timers = {"bands": 0.0, "step": 0.0}

    def batch_loss(self, batch: torch.Tensor, backward: bool) -> torch.Tensor:
        """Per-system band loss of one batch (n_systems,), back-propagated if `backward`."""
        parts = torch.zeros(self.n_systems, dtype=torch.float64)
        for system in torch.unique(batch[:, 0]).tolist():
            k = batch[batch[:, 0] == system, 1].to(self.device)
            loss = system_loss(self.hamiltonian, system, self.targets[system], k, self.relative)
            if backward:
                self._backward(loss)
            parts[system] = loss.detach().cpu()
        return parts

    def _backward(self, loss: torch.Tensor) -> None:
        """`manual_backward` inside a Trainer, plain backward outside (pre-adjust moves)."""
        if self._trainer is None:
            loss.backward()
        else:
            self.manual_backward(loss)

    def penalty_terms(self, backward: bool) -> dict[str, torch.Tensor]:
        """Penalties and observable terms (added once per step, outside the k-loop),
        back-propagated if asked."""
        terms: dict[str, torch.Tensor] = {}
        if self.penalties is not None and self.hamiltonian.uses_network:
            terms.update(self.penalties.terms(self.network))
        if self.observables is not None:
            terms.update(self.observables.terms(self.hamiltonian))
        if backward and terms:
            self._backward(torch.stack(list(terms.values())).sum())
        return {name: value.detach().cpu() for name, value in terms.items()}

    @property
    def _global_rank_zero(self) -> bool:
        """Whether global terms (penalties, observables) enter the gradient here: once over
        all ranks."""
        return self._trainer is None or self.trainer.is_global_zero

    def _summed(self, per_system: torch.Tensor) -> torch.Tensor:
        """Per-system losses summed over ranks (on the rank's device for the collective)."""
        on_device = per_system.to(self.device)
        sum_over_ranks([on_device])
        return on_device.cpu()

    def full_pass(self, backward: bool = True) -> tuple[float, torch.Tensor, dict[str, float]]:
        """Loss (and gradient) over every batch of every rank: (total, per-system band terms,
        penalties); the gradients are summed over ranks."""
        per_system = torch.zeros(self.n_systems, dtype=torch.float64)
        for batch in self.batches:
            per_system += self.batch_loss(batch, backward)
        per_system = self._summed(per_system)
        terms = self.penalty_terms(backward and self._global_rank_zero)
        penalties = {k: float(v) for k, v in terms.items()}
        if backward:
            sum_gradients(p for _, p in self.trainable())
        return float(per_system.sum()) + sum(penalties.values()), per_system, penalties

    # -- training -----------------------------------------------------------------------
    def on_fit_start(self) -> None:
        """From now on full passes (L-BFGS closure, final loss) evaluate this rank's share."""
        self.batches = self.trainer.datamodule.batches()

    def on_train_epoch_start(self) -> None:
        self._reset_epoch()
        self.optimizers().zero_grad()

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        start = time.perf_counter()
        self._band_sum += self.batch_loss(batch, backward=True)
        self._timers["bands"] += time.perf_counter() - start
        if batch_idx == self.trainer.num_training_batches - 1:
            self._step()

    def _step(self) -> None:
        optimizer = self.optimizers()
        terms = self.penalty_terms(backward=self._global_rank_zero)
        penalties = {k: float(v) for k, v in terms.items()}
        sum_gradients(p for _, p in self.trainable())
        band_sum = self._summed(self._band_sum)
        total = float(band_sum.sum()) + sum(penalties.values())
        self.epoch_loss, self.epoch_terms = total, penalties
        self.train_history.append((self.current_epoch + 1, total))
        self._log_epoch(total, band_sum, penalties, optimizer)
        start = time.perf_counter()
        if self.settings.name == "lbfgs":
            first = [True]

            def closure() -> torch.Tensor:
                if first[0]:
                    first[0] = False
                    return torch.tensor(total)
                optimizer.zero_grad()
                return torch.tensor(self.full_pass(backward=True)[0])

            optimizer.step(closure=closure)
        else:
            optimizer.step()
        self._timers["step"] += time.perf_counter() - start
        if self.runtime_flag:
            log.info(
                "epoch %d: bands+backward %.2f s, optimiser step %.3f s",
                self.current_epoch + 1,
                self._timers["bands"],
                self._timers["step"],
            )

    def _log_epoch(
        self,
        total: float,
        per_system: torch.Tensor,
        penalties: dict[str, float],
        optimizer: Any,
    ) -> None:
        metrics = {"train/loss": total, "lr": optimizer.param_groups[0]["lr"]}
        for index, value in enumerate(per_system.tolist()):
            metrics[f"train/loss_sys{index}"] = value
        for name, value in penalties.items():
            metrics[f"train/penalty_{name}"] = value
        norms = {name: float(p.grad.norm()) for name, p in self.trainable() if p.grad is not None}
        if norms:
            metrics["grad_norm/total"] = float(torch.tensor(list(norms.values())).norm())
            metrics.update({f"grad_norm/{name}": value for name, value in norms.items()})
        self.log("loss", total, prog_bar=True, **EPOCH_LOG)
        self.log_dict(metrics, **EPOCH_LOG)

    def on_train_batch_end(self, outputs: Any, batch: torch.Tensor, batch_idx: int) -> None:
        last = batch_idx == self.trainer.num_training_batches - 1
        if last and decays_after(self.current_epoch, self.settings.scheduler_step):
            self.lr_schedulers().step()

    # -- validation ---------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._val_parts = [
            torch.zeros_like(target.reference, device=self.device) for target in self.targets
        ]

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        for system in torch.unique(batch[:, 0]).tolist():
            k = batch[batch[:, 0] == system, 1].to(self.device)
            self._val_parts[system][k] = self.hamiltonian.bands(system, k)

    def on_validation_epoch_end(self) -> None:
        sum_over_ranks(self._val_parts)  # every rank filled its own k-points, zeros elsewhere
        self.val_bands = self._val_parts
        per_system = []
        for system, bands in enumerate(self.val_bands):
            k_all = torch.arange(bands.shape[0], device=bands.device)
            per_system.append(
                float(
                    system_loss(
                        self.hamiltonian,
                        system,
                        self.targets[system],
                        k_all,
                        self.relative,
                        bands=bands,
                    )
                )
            )
        penalties = {k: float(v) for k, v in self.penalty_terms(backward=False).items()}
        total = sum(per_system) + sum(penalties.values())
        self.val_history.append((self.current_epoch + 1, total))
        metrics = {f"val/loss_sys{i}": v for i, v in enumerate(per_system)}
        metrics["val/loss"] = total
        self.log_dict(metrics, **EPOCH_LOG)

    # -- checkpoint state ---------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["dpp_history"] = {"train": self.train_history, "val": self.val_history}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        history = checkpoint.get("dpp_history", {})
        self.train_history = [tuple(x) for x in history.get("train", [])]
        self.val_history = [tuple(x) for x in history.get("val", [])]

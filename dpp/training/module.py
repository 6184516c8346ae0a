"""LightningModule: the pseudopotential Hamiltonian trained on the shared objective.

Manual optimisation: the k-point batches of an epoch each back-propagate their part of the
loss (gradients accumulate) and one optimiser step is taken at the last batch, so the step
equals the full-batch step to round-off (physics.md §7.3, §8). L-BFGS re-evaluates the whole
epoch in its closure; the epoch after an L-BFGS step starts where its line search last
evaluated, so it takes that evaluation's loss and gradient instead of computing them again
(networks without batch norm or active dropout, whose loss depends on the parameters
alone). Gauss–Newton (`dpp.fitting.gauss_newton`) evaluates and steps by itself: its epochs
skip the batches, and it falls back to its L-BFGS optimiser for the fits its model does not
cover. Under DDP (`dpp.training.strategy`) every rank evaluates its share of the k-points;
gradients and per-system losses are summed over ranks before the step, and the global terms
enter the gradient on global rank 0 only, so the step is the single-process one (Gauss–Newton
sums the bands and band Jacobians of the ranks' k-points instead, and every rank models the
whole loss).

Every logged value is per epoch, at TensorBoard step = epoch (1-based, as the file names).
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import grad_norm
from torch import nn

from dpp.fitting.bands import BandErrors, band_errors
from dpp.fitting.gauss_newton import FunctionSpaceGaussNewton
from dpp.fitting.objective import Objective, accumulate, same_tensors, split_batch, trainable
from dpp.fitting.smoothness import form_factor_turning_points
from dpp.models.batchnorm import (
    batchnorm_layers,
    frozen_statistics,
    repeatable,
    update_statistics,
)
from dpp.physics.hamiltonian import PseudopotentialHamiltonian
from dpp.ranks import sum_gradients, sum_over_ranks
from dpp.training.optimizers import load_optimizer_state

log = logging.getLogger(__name__)

OptimizerFactory = Callable[[list[nn.Parameter]], torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer], Any]


@dataclass
class ClosureEvaluation:
    """One full pass of the L-BFGS closure: the parameters it was taken at, the loss (eV²
    for the band terms) per system and by global term, and the gradient (summed over ranks)."""

    parameters: list[torch.Tensor]
    per_system: torch.Tensor
    terms: dict[str, float]
    gradients: list[torch.Tensor | None]

    def taken_at(self, parameters: list[torch.Tensor]) -> bool:
        """Whether `parameters` are exactly the ones of this evaluation."""
        return same_tensors(self.parameters, parameters)


class PseudopotentialModule(pl.LightningModule):
    """Wraps a PseudopotentialHamiltonian (network + analytic parameters) and its objective.

    `optimizer(params)` and `scheduler(optimizer)` build the optimiser and its learning-rate
    schedule (stepped once per epoch; ReduceLROnPlateau with the training loss).
    `gradient_clip` is a maximum gradient norm (None: no clipping). `optimizer_state` is an
    init_AdamState.pth to load (Adam only; lr reset to the configured one).
    """

    def __init__(
        self,
        hamiltonian: PseudopotentialHamiltonian,
        objective: Objective,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        *,
        batches: list[torch.Tensor],
        gradient_clip: float | None = None,
        optimizer_state: Path | None = None,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.hamiltonian = hamiltonian
        self.objective = objective
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.batches = batches
        self.gradient_clip = gradient_clip
        self.optimizer_state = optimizer_state
        self.n_systems = len(hamiltonian.systems)
        self.train_history: list[tuple[int, float]] = []
        self.val_history: list[tuple[int, float]] = []
        self.best_loss = math.inf
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.nonfinite: str | None = None
        self.nonfinite_epoch = 0
        self._restore_point: list[torch.Tensor] | None = None
        self.epoch_metrics: dict[str, float] = {}
        self.val_bands: list[torch.Tensor] | None = None
        self.val_errors: list[BandErrors] = []
        self.val_turning_points: dict[str, int] = {}
        self.val_rms_mev = math.nan  # weighted RMS band error of the last validation (meV)
        self._band_sum = torch.zeros(self.n_systems, dtype=torch.float64)
        self._closure_evaluations: list[ClosureEvaluation] = []
        self._reused: ClosureEvaluation | None = None
        self._keep_evaluations = False  # whether closure evaluations may stand for an epoch
        self.passes = 0  # loss-and-gradient passes over every k-point: epochs and closures
        self._passes_before_epoch = 0
        self.reached: dict[str, torch.Tensor] | None = None  # state after the last whole step
        self.reached_epoch = 0
        self._resumed: dict[str, Any] = {}  # solver and optimiser state of a resume checkpoint

    def _apply(self, fn, recurse: bool = True):  # noqa: ANN001 - nn.Module signature
        """Device moves and casts also reach the reference tensors of the objective."""
        super()._apply(fn, recurse)
        for term in self.objective.kpoint_terms:
            for targets in getattr(term, "targets", ()):
                targets.to(fn)
        return self

    # -- parameters -----------------------------------------------------------------------
    @property
    def network(self) -> nn.Module | None:
        return self.hamiltonian.model

    def trainable(self) -> list[tuple[str, nn.Parameter]]:
        """Trainable tensors: network parameters (original names), then `pp_free`."""
        return trainable(self.hamiltonian)

    def configure_optimizers(self) -> dict[str, Any]:
        parameters = [p for _, p in self.trainable()]
        optimizer = self.optimizer_factory(parameters)
        if isinstance(optimizer, FunctionSpaceGaussNewton):
            optimizer = optimizer.for_fit(self.hamiltonian, self.objective, parameters)
        if self.optimizer_state is not None:
            load_optimizer_state(optimizer, self.optimizer_state)
        out: dict[str, Any] = {"optimizer": optimizer}
        if self.scheduler_factory is not None:
            out["lr_scheduler"] = {"scheduler": self.scheduler_factory(optimizer)}
        return out

    @property
    def _gauss_newton(self) -> FunctionSpaceGaussNewton | None:
        """The Gauss–Newton optimiser of this fit, or None (any other optimiser)."""
        optimizer = self.optimizers().optimizer
        return optimizer if isinstance(optimizer, FunctionSpaceGaussNewton) else None

    # -- loss -------------------------------------------------------------------------------
    @property
    def _global_rank_zero(self) -> bool:
        """Whether global terms enter the gradient here: once over all ranks."""
        return self._trainer is None or self.trainer.is_global_zero

    def _backward(self, loss: torch.Tensor) -> None:
        if self._trainer is None:
            loss.backward()
        else:
            self.manual_backward(loss)

    def _summed(self, per_system: torch.Tensor) -> torch.Tensor:
        """Per-system losses summed over ranks (on the rank's device for the collective)."""
        on_device = per_system.to(self.device)
        sum_over_ranks([on_device])
        return on_device.cpu()

    def full_pass(self, backward: bool = True) -> tuple[float, torch.Tensor, dict[str, float]]:
        """Loss (and gradient) over every batch of every rank: (total, per-system k-point
        terms, global terms); gradients are summed over ranks."""
        per_system, _ = accumulate(
            self.objective,
            self.hamiltonian,
            self.batches,
            global_terms=False,
            backward=self._backward if backward else None,
        )
        per_system = self._summed(per_system)
        terms = self._global_terms(backward and self._global_rank_zero)
        if backward:
            sum_gradients(p for _, p in self.trainable())
        return float(per_system.sum()) + sum(terms.values()), per_system, terms

    def _global_terms(self, backward: bool) -> dict[str, float]:
        return self.objective.global_loss(self.hamiltonian, self._backward if backward else None)

    # -- training ---------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        """From now on full passes (L-BFGS closure, final loss) evaluate this rank's share;
        whether the loss is repeatable is fixed by the network, so it is decided once here."""
        self.batches = self.trainer.datamodule.batches()
        self._keep_evaluations = self._repeatable()
        gauss_newton = self._gauss_newton
        if gauss_newton is not None:
            gauss_newton.attach(self.hamiltonian, self.objective, self._own_kpoints())
        self._restore_solver_state()
        self._mark_reached(max([0, *(epoch for epoch, _ in self.train_history)]))

    def _own_kpoints(self) -> list[torch.Tensor]:
        """This rank's k-indices of every system (ascending, on the model's device)."""
        items = torch.cat([torch.empty((0, 2), dtype=torch.long), *self.batches])
        return [
            items[items[:, 0] == system, 1].sort().values.to(self.device)
            for system in range(self.n_systems)
        ]

    def _mark_reached(self, epoch: int) -> None:
        """The present state is the one reached after `epoch` whole steps (0: the start): what
        an interrupt writes as final, since it may stop the fit in the middle of a step."""
        self.reached = copy.deepcopy(self.hamiltonian.state_dict())
        self.reached_epoch = epoch

    @property
    def epoch_passes(self) -> int:
        """Full passes of the present epoch so far (its evaluation and the step's)."""
        return self.passes - self._passes_before_epoch

    def _restore_solver_state(self) -> None:
        """After a resume, once the Trainer moved the model to its device: the warm-start
        eigenvectors, the Gauss–Newton cache and the L-BFGS evaluation the next epoch reuses,
        as the interrupted fit left them (else the first solves are dense)."""
        resumed, self._resumed = self._resumed, {}
        if not resumed:
            return
        if resumed.get("warm") is None:
            self.hamiltonian.invalidate()
        else:
            self.hamiltonian.load_warm_state(resumed["warm"])
        gauss_newton = self._gauss_newton
        if gauss_newton is not None and resumed.get("gauss_newton") is not None:
            gauss_newton.load_checkpoint_state(resumed["gauss_newton"])
        reusable = resumed.get("evaluation")
        if reusable is not None:
            parameters, per_system, terms, gradients = reusable
            self._closure_evaluations = [
                ClosureEvaluation(
                    [p.to(self.device) for p in parameters],
                    per_system,
                    dict(terms),
                    [None if g is None else g.to(self.device) for g in gradients],
                )
            ]

    def on_train_epoch_start(self) -> None:
        self._band_sum = torch.zeros(self.n_systems, dtype=torch.float64)
        self._passes_before_epoch = self.passes
        self.optimizers().zero_grad()
        self.update_batchnorm_statistics()
        self._reused = self._evaluation_here()
        self._closure_evaluations = []
        if self._reused is None and self._gauss_newton is None:
            self.passes += 1

    def _repeatable(self) -> bool:
        """Whether the training loss depends on the parameters alone (`repeatable`)."""
        return repeatable(self.network)

    def _evaluation_here(self) -> ClosureEvaluation | None:
        """The newest closure evaluation of the last step taken at the present parameters,
        or None (not L-BFGS, another point, a kick or resume since, or no repeatable loss)."""
        if not self._closure_evaluations:
            return None
        here = [p.detach() for _, p in self.trainable()]
        for evaluation in reversed(self._closure_evaluations):
            if evaluation.taken_at(here):
                return evaluation
        return None

    def update_batchnorm_statistics(self) -> None:
        """One running-statistics update of a batch-norm network per system and step, from
        the parameters before the step (`dpp.models.batchnorm`); with legacy_batchnorm one per
        atom and k-point, as the original's one network call per atom and k-point."""
        if not batchnorm_layers(self.network):
            return
        legacy = self.hamiltonian.options.legacy_batchnorm
        for system, geometry in zip(
            self.hamiltonian.systems, self.hamiltonian.geometries, strict=True
        ):
            times = system.n_kpoints * len(system.crystal.symbols) if legacy else 1
            update_statistics(self.network, geometry.full_q()[:, None], times)

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        if self._reused is not None or self._gauss_newton is not None:
            if batch_idx == self.trainer.num_training_batches - 1:
                self._step()
            return
        # loss evaluations leave the batch-norm running statistics alone: they are updated
        # once per step in on_train_epoch_start, whatever the batching
        with frozen_statistics(self.network):
            per_system, _ = accumulate(
                self.objective,
                self.hamiltonian,
                [batch],
                global_terms=False,
                backward=self.manual_backward,
            )
            self._band_sum += per_system
            if batch_idx == self.trainer.num_training_batches - 1:
                self._step()

    def _nonfinite_part(self, per_system: torch.Tensor, terms: dict[str, float]) -> str | None:
        """Which part of the loss or gradient is NaN/inf, or None."""
        for index, value in enumerate(per_system.tolist()):
            if not math.isfinite(value):
                name = self.hamiltonian.systems[index].name
                return f"the band loss of system {index} ({name})"
        for label, value in terms.items():
            if not math.isfinite(value):
                return f"the loss term {label}"
        for name, parameter in self.trainable():
            if parameter.grad is not None and not bool(torch.isfinite(parameter.grad).all()):
                return f"the gradient of {name}"
        return None

    def _stop(self, epoch: int, part: str) -> None:
        """Stop the fit at `epoch` because `part` became NaN or infinite, with the parameters
        set back to the last state whose loss was finite (the last entry of train_history:
        the state before the last optimiser step)."""
        self.nonfinite, self.nonfinite_epoch = part, epoch
        self.trainer.should_stop = True
        if self._restore_point is None:
            return
        with torch.no_grad():
            for (_, p), value in zip(self.trainable(), self._restore_point, strict=True):
                p.copy_(value)
        self.hamiltonian.invalidate()

    def _step(self) -> None:
        optimizer = self.optimizers()
        epoch = self.current_epoch + 1
        gauss_newton = self._gauss_newton
        if gauss_newton is not None:
            linearisation, passes = gauss_newton.evaluate()
            self.passes += passes
            terms, per_system = linearisation.terms, linearisation.per_system
        elif self._reused is None:
            terms = self._global_terms(backward=self._global_rank_zero)
            sum_gradients(p for _, p in self.trainable())
            per_system = self._summed(self._band_sum)
        else:
            terms, per_system = self._reused.terms, self._reused.per_system
            for (_, p), gradient in zip(self.trainable(), self._reused.gradients, strict=True):
                p.grad = None if gradient is None else gradient.clone()
        total = float(per_system.sum()) + sum(terms.values())
        part = self._nonfinite_part(per_system, terms)
        if part is not None:
            self._stop(epoch, part)
            return
        self.train_history.append((epoch, total))
        if total < self.best_loss:  # the state before this step produced `total`
            self.best_loss, self.best_epoch = total, epoch
            self.best_state = copy.deepcopy(self.hamiltonian.state_dict())
        self._record_epoch(epoch, total, per_system, terms, optimizer)
        if self.gradient_clip is not None:
            self.clip_gradients(optimizer, self.gradient_clip, "norm")
        self._restore_point = [p.detach().clone() for _, p in self.trainable()]
        if isinstance(optimizer.optimizer, torch.optim.LBFGS):
            previous = self.train_history[-2][1] if len(self.train_history) > 1 else math.inf
            if total >= previous:
                # the last step made no progress (a failed line search on a kink of a ReLU
                # network repeats itself): restart from steepest descent, history dropped
                optimizer.optimizer.state.clear()
            first = [True]

            def closure() -> torch.Tensor:
                if first[0]:
                    first[0] = False
                    return torch.tensor(total)
                optimizer.zero_grad()
                self.passes += 1
                loss, per_system, terms = self.full_pass(backward=True)
                if not self._keep_evaluations:
                    return torch.tensor(loss)
                trained = [p for _, p in self.trainable()]
                self._closure_evaluations.append(
                    ClosureEvaluation(
                        [p.detach().clone() for p in trained],
                        per_system,
                        terms,
                        [None if p.grad is None else p.grad.clone() for p in trained],
                    )
                )
                return torch.tensor(loss)

            optimizer.step(closure=closure)
        elif gauss_newton is not None:
            taken = optimizer.step()  # through Lightning: its step count and hooks
            self.passes += taken
            if gauss_newton.converged and taken:
                self._converged(epoch, gauss_newton, total)
        else:
            optimizer.step()
        for name, parameter in self.trainable():
            if not bool(torch.isfinite(parameter).all()):
                self._stop(epoch, f"parameter {name} after the optimiser step")
                return
        self._mark_reached(epoch)
        scheduler = self.lr_schedulers()
        if scheduler is not None:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(total)
            else:
                scheduler.step()

    def _converged(self, epoch: int, gauss_newton: FunctionSpaceGaussNewton, total: float) -> None:
        """No Gauss–Newton trial lowered the loss: stop the fit, unless a callback moves the
        parameters later (perturbation kicks), after which the steps resume."""
        kicks = any(getattr(c, "moves_parameters", False) for c in self.trainer.callbacks)
        log.info(
            "epoch %d: %s at loss %.6g eV^2: %s",
            epoch,
            gauss_newton.convergence(),
            total,
            "steps resume after the next perturbation" if kicks else "the fit stops",
        )
        self.trainer.should_stop = not kicks

    def _record_epoch(
        self,
        epoch: int,
        total: float,
        per_system: torch.Tensor,
        terms: dict[str, float],
        optimizer: Any,
    ) -> None:
        # logged here rather than by LearningRateMonitor, which logs at batch steps: every
        # scalar and figure of a dpp run sits at step = epoch
        metrics = {"train/loss": total, "train/best_loss": self.best_loss}
        metrics["train_rms_meV"] = self.objective.primary.rms_mev(per_system)
        metrics["passes"] = self.passes
        group = optimizer.param_groups[0]
        for key in ("lr", "damping"):  # Gauss–Newton has a damping instead of a learning rate
            if key in group:
                metrics[key] = float(group[key])
        for index, value in enumerate(per_system.tolist()):
            metrics[f"train/loss_sys{index}"] = value
        for label, value in terms.items():
            metrics[f"train/{label}"] = value
        for name, value in grad_norm(self.hamiltonian, norm_type=2).items():
            label = name.replace("grad_2.0_norm", "grad_norm").replace("_total", "/total")
            metrics[label] = float(value)
        self.epoch_metrics = metrics
        self.log("loss", total, prog_bar=True, logger=False, on_epoch=True, batch_size=1)
        if self.logger is not None and self.trainer.is_global_zero:
            self.logger.log_metrics(metrics, step=epoch)

    # -- validation -------------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        references = [t.reference for t in self.objective.primary.targets]
        self._val_parts = [torch.zeros_like(r, device=self.device) for r in references]

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        for system, k in split_batch(batch):
            k = k.to(self.device)
            self._val_parts[system][k] = self.objective.primary.bands(self.hamiltonian, system, k)

    def on_validation_epoch_end(self) -> None:
        sum_over_ranks(self._val_parts)  # every rank filled its own k-points, zeros elsewhere
        self.val_bands = self._val_parts
        evaluation = self.objective.evaluate(self.hamiltonian, bands=self.val_bands)
        per_system, terms, total = evaluation.per_system, evaluation.terms, evaluation.total
        epoch = self.current_epoch + 1
        if not math.isfinite(total):
            part = self._nonfinite_part(torch.tensor(per_system), terms) or "the loss"
            self._stop(epoch, f"{part} (validation, eval mode)")
            return
        self.val_history.append((epoch, total))
        metrics = {f"val/loss_sys{i}": v for i, v in enumerate(per_system)}
        metrics["val/loss"] = total
        primary = self.objective.primary
        self.val_rms_mev = primary.rms_mev(per_system)
        metrics["val_rms_meV"] = self.val_rms_mev
        shifts = primary.shifts(self.val_bands)
        self.val_errors = [
            band_errors(bands, targets, shift)
            for bands, targets, shift in zip(self.val_bands, primary.targets, shifts, strict=True)
        ]
        self.val_turning_points = form_factor_turning_points(self.hamiltonian)
        metrics.update(
            {f"smoothness/turning_points_{s}": n for s, n in self.val_turning_points.items()}
        )
        for system, errors in enumerate(self.val_errors):
            prefix = f"diagnostics/sys{system}"
            metrics[f"{prefix}/rms"] = errors.overall
            metrics.update({f"{prefix}/{edge}_max_error": v for edge, v in errors.edges.items()})
            metrics.update({f"{prefix}/rms_band{b}": v for b, v in enumerate(errors.rms)})
        self.log("val/loss", total, logger=False, batch_size=1)
        if self.logger is not None and self.trainer.is_global_zero:
            self.logger.log_metrics(metrics, step=epoch)

    # -- checkpoint state -------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["dpp_history"] = {
            "train": self.train_history,
            "val": self.val_history,
            "best_loss": self.best_loss,
            "best_epoch": self.best_epoch,
            "best_state": self.best_state,
            "passes": self.passes,
        }
        # the warm-start vectors and the Gauss–Newton cache are of this process's k-points:
        # kept in one process only (a DDP resume starts them afresh, correct but not bit for
        # bit); the L-BFGS evaluation is summed over ranks
        gauss_newton = self._gauss_newton if self.trainer.world_size == 1 else None
        reusable = self._evaluation_here()
        checkpoint["dpp_solver"] = {
            "warm": self.hamiltonian.warm_state() if self.trainer.world_size == 1 else None,
            "gauss_newton": None if gauss_newton is None else gauss_newton.checkpoint_state(),
            "evaluation": None
            if reusable is None
            else (reusable.parameters, reusable.per_system, reusable.terms, reusable.gradients),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        history = checkpoint.get("dpp_history", {})
        self.train_history = [tuple(x) for x in history.get("train", [])]
        self.val_history = [tuple(x) for x in history.get("val", [])]
        self.best_loss = float(history.get("best_loss", math.inf))
        self.best_epoch = int(history.get("best_epoch", 0))
        self.best_state = history.get("best_state")
        self.passes = int(history.get("passes", 0))
        self._resumed = checkpoint.get("dpp_solver") or {"warm": None}

"""The pre-fit of the network to a prior curve (physics.md §9): the Wang–Zunger form of
init_<S>Params.par or the table init_qSpace_pot.par. Costs are in (Hartree·Bohr³)²."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from dpp.errors import SettingError
from dpp.io.records import Bundle
from dpp.physics.potentials import wang_zunger

log = logging.getLogger(__name__)

TRAIN_POINTS, ZERO_POINTS, BATCH = 4000, 10, 1000
Q_MAX = 10.0  # 1/Bohr: range of the analytic pre-fit data
VALIDATION_POINTS = 2048
COST_UNIT = "(Hartree Bohr^3)^2"


@dataclass(frozen=True)
class PrefitSettings:
    """The initialisation stage: pre-fit epochs; learning-rate decay by `decay_gamma` every
    `decay_every` epochs (default `plot_every`); saves every `plot_every` epochs (−1 = never);
    gradient norms in the log; then `pre_adjust_moves` single-parameter moves of
    `pre_adjust_step_size` (None = the training learning rate) before epoch 0. `model_path`
    replaces <bundle>/init_PPmodel.pth; `optimizer(params)` builds the pre-fit optimiser.
    `spread_knots`: before the pre-fit, move the first layer's transitions evenly over the
    |G − G'| range of the bases (dpp.models.knots)."""

    optimizer: Callable[..., torch.optim.Optimizer] | None = None
    num_epochs: int = 0
    decay_gamma: float = 1.0
    plot_every: int | None = None
    decay_every: int | None = None
    print_grad: bool = False
    model_path: str | None = None
    pre_adjust_moves: int = 0
    pre_adjust_step_size: float | None = None
    spread_knots: bool = False

    def __post_init__(self) -> None:
        if self.num_epochs < 0:
            raise SettingError("num_epochs", "negative", expected=">= 0", found=self.num_epochs)
        if self.plot_every is not None and self.plot_every != -1 and self.plot_every < 1:
            raise SettingError(
                "plot_every", "invalid interval", expected=">= 1 or -1", found=self.plot_every
            )
        if self.decay_every is not None and self.decay_every < 1:
            raise SettingError(
                "decay_every", "invalid interval", expected=">= 1", found=self.decay_every
            )
        if not self.decay_gamma > 0:
            raise SettingError(
                "decay_gamma",
                "non-positive decay factor",
                expected="> 0",
                found=self.decay_gamma,
            )
        if self.pre_adjust_moves < 0:
            raise SettingError(
                "pre_adjust_moves", "negative", expected=">= 0", found=self.pre_adjust_moves
            )

    @property
    def save_every(self) -> int:
        return self.plot_every or -1

    @property
    def decay_interval(self) -> int:
        return self.decay_every or self.save_every


@dataclass
class PrefitData:
    """Training and validation sets: q (M, 1) in 1/Bohr, targets (M, S) in Hartree·Bohr³,
    row weights (M, 1); `full_batch` for tabulated priors."""

    q: torch.Tensor
    target: torch.Tensor
    weight: torch.Tensor
    q_val: torch.Tensor
    target_val: torch.Tensor
    full_batch: bool
    source: str


def prefit_data(bundle: Bundle, generator: torch.Generator) -> PrefitData:
    """The tabulated prior (init_qSpace_pot.par) when present, else the Wang–Zunger curves."""
    table = bundle.qspace_prior
    if table is not None:
        q = torch.as_tensor(table.q, dtype=torch.float64)[:, None]
        target = torch.as_tensor(table.values, dtype=torch.float64)
        return PrefitData(q, target, torch.ones_like(q), q, target, True, "init_qSpace_pot.par")
    params = torch.as_tensor(bundle.pp_params, dtype=torch.float64)
    q = torch.rand(TRAIN_POINTS, generator=generator, dtype=torch.float64) * Q_MAX
    q[:ZERO_POINTS] = 0.0
    weight = torch.where(q <= 1.0, 10.0, 1.0)[:, None]
    q_val = torch.linspace(0.0, Q_MAX, VALIDATION_POINTS, dtype=torch.float64)
    return PrefitData(
        q[:, None],
        wang_zunger(q, params),
        weight,
        q_val[:, None],
        wang_zunger(q_val, params),
        False,
        "Wang-Zunger curves of init_<S>Params.par",
    )


def _cost(model: nn.Module, q: torch.Tensor, target: torch.Tensor, weight: torch.Tensor):
    return (weight * (model(q) - target) ** 2).mean()


def prefit(
    model: nn.Module,
    data: PrefitData,
    settings: PrefitSettings,
    generator: torch.Generator,
    *,
    on_save: Callable[[int], None] | None = None,
    epochs: Callable[[range], object] = iter,
) -> list[tuple[int, float, float]]:
    """Fit the network to the prior curve; returns (epoch, training, validation) costs.

    Mini-batches of 1000 reshuffled each epoch
    (full batch for a table); lr ← γ·lr after epochs e > 0 with e % decay_every == 0;
    `on_save(E)` at e % save_every == 0 (file epoch E = e + 1). `epochs` wraps the epoch
    range (a progress bar).
    """
    built = settings.optimizer(list(model.parameters()))
    scheduler = torch.optim.lr_scheduler.ExponentialLR(built, settings.decay_gamma)
    costs = []
    n = data.q.shape[0]
    for epoch in epochs(range(settings.num_epochs)):
        model.train()
        order = torch.arange(n) if data.full_batch else torch.randperm(n, generator=generator)
        batches = [order] if data.full_batch else torch.split(order, BATCH)
        total = 0.0
        for rows in batches:
            built.zero_grad()
            loss = _cost(model, data.q[rows], data.target[rows], data.weight[rows])
            loss.backward()
            built.step()
            total += float(loss.detach()) * len(rows) / n
        if settings.print_grad:
            norms = {name: float(p.grad.norm()) for name, p in model.named_parameters()}
            log.info("pre-fit epoch %d gradient norms %s", epoch + 1, norms)
        model.eval()
        with torch.no_grad():
            val = float(_cost(model, data.q_val, data.target_val, torch.ones(1)))
        costs.append((epoch + 1, total, val))
        if on_save is not None and settings.save_every > 0 and epoch % settings.save_every == 0:
            on_save(epoch + 1)
        if settings.decay_interval > 0 and epoch > 0 and epoch % settings.decay_interval == 0:
            scheduler.step()
    model.train()
    if costs:
        log.info("pre-fit: %d epochs, final cost %.6g (validation %.6g) %s", *costs[-1], COST_UNIT)
    return costs

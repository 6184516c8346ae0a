"""Initialisation chain (physics.md §9): checkpoint -> pre-fit to a prior curve -> the
catalogue's own initialiser; the Zunger / tabulated pre-fit itself."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.progress import track
from torch import nn

from dpp.io.records import Bundle
from dpp.io.writers import save_torch_atomic, write_parameter_dump
from dpp.models import has_batchnorm, is_zero_function, load_checkpoint
from dpp.physics.potentials import wang_zunger
from dpp.training import plots

log = logging.getLogger(__name__)

TRAIN_POINTS, ZERO_POINTS, BATCH = 4000, 10, 1000
Q_MAX = 10.0  # 1/Bohr: range of the analytic pre-fit data
VALIDATION_POINTS = 2048


@dataclass(frozen=True)
class PrefitSettings:
    """init_Zunger_* keys: epochs, optimiser adam|sgd, lr, gamma, save and decay intervals."""

    num_epochs: int = 0
    optimizer: str = "adam"
    lr: float | None = None
    scheduler_gamma: float = 1.0
    plot_every: int | None = None
    scheduler_step: int | None = None
    print_grad: bool = False


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


def prefit_data(bundle: Bundle, generator: torch.Generator) -> tuple[PrefitData, str]:
    """The tabulated prior (init_qSpace_pot.par) when present, else the Wang–Zunger curves."""
    table = bundle.qspace_prior
    if table is not None:
        q = torch.as_tensor(table.q, dtype=torch.float64)[:, None]
        target = torch.as_tensor(table.values, dtype=torch.float64)
        return PrefitData(q, target, torch.ones_like(q), q, target, True), "init_qSpace_pot.par"
    params = torch.as_tensor(bundle.pp_params, dtype=torch.float64)
    q = torch.rand(TRAIN_POINTS, generator=generator, dtype=torch.float64) * Q_MAX
    q[:ZERO_POINTS] = 0.0
    weight = torch.where(q <= 1.0, 10.0, 1.0)[:, None]
    q_val = torch.linspace(0.0, Q_MAX, VALIDATION_POINTS, dtype=torch.float64)
    data = PrefitData(
        q[:, None],
        wang_zunger(q, params),
        weight,
        q_val[:, None],
        wang_zunger(q_val, params),
        False,
    )
    return data, "Wang-Zunger curves of init_<S>Params.par"


def _cost(model: nn.Module, q: torch.Tensor, target: torch.Tensor, weight: torch.Tensor):
    return (weight * (model(q) - target) ** 2).mean()


def prefit(
    model: nn.Module,
    data: PrefitData,
    settings: PrefitSettings,
    run_dir: Path,
    generator: torch.Generator,
    *,
    progress: bool = True,
) -> list[tuple[int, float, float]]:
    """Fit the network to the prior curve; returns (epoch, training, validation) costs.

    Mini-batches of 1000 reshuffled each epoch (full batch for a table); lr decays after
    epochs e > 0 with e % scheduler_step == 0; dumps and checkpoints at e % plot_every == 0
    (file epoch E = e + 1); `initZunger_PPmodel.pth` at the end. −1 = never save or decay.
    """
    params = list(model.parameters())
    if settings.optimizer == "sgd":
        optimizer = torch.optim.SGD(params, lr=settings.lr)
    else:
        optimizer = torch.optim.Adam(params, lr=settings.lr)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, settings.scheduler_gamma)
    plot_every = settings.plot_every or -1
    decay_every = settings.scheduler_step or plot_every
    costs = []
    n = data.q.shape[0]
    for epoch in track(range(settings.num_epochs), description="pre-fit", disable=not progress):
        model.train()
        order = torch.arange(n) if data.full_batch else torch.randperm(n, generator=generator)
        batches = [order] if data.full_batch else torch.split(order, BATCH)
        total = 0.0
        for rows in batches:
            optimizer.zero_grad()
            loss = _cost(model, data.q[rows], data.target[rows], data.weight[rows])
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(rows) / n
        if settings.print_grad:
            norms = {name: float(p.grad.norm()) for name, p in model.named_parameters()}
            log.info("pre-fit epoch %d gradient norms %s", epoch + 1, norms)
        model.eval()
        with torch.no_grad():
            val = float(_cost(model, data.q_val, data.target_val, torch.ones(1)))
        costs.append((epoch + 1, total, val))
        if plot_every > 0 and epoch % plot_every == 0:
            name = f"initZunger_epoch_{epoch + 1}"
            write_parameter_dump(
                run_dir / f"{name}_params.dat",
                [(k, p.detach().numpy()) for k, p in model.named_parameters()],
            )
            save_torch_atomic(model.state_dict(), run_dir / f"{name}_PPmodel.pth")
        if decay_every > 0 and epoch > 0 and epoch % decay_every == 0:
            scheduler.step()
    model.train()
    save_torch_atomic(model.state_dict(), run_dir / "initZunger_PPmodel.pth")
    if costs:
        fig = plots.cost_figure(
            [(e, t) for e, t, _ in costs], [(e, v) for e, _, v in costs], "pre-fit cost"
        )
        plots.save_figure(fig, run_dir / "init_train_cost.png")
        plots.close(fig)
        log.info("pre-fit: %d epochs, final cost %.6g (validation %.6g)", *costs[-1])
    return costs


def initialise(
    model: nn.Module,
    bundle: Bundle,
    settings: PrefitSettings,
    run_dir: Path,
    generator: torch.Generator,
    *,
    model_path: Path | None = None,
    progress: bool = True,
) -> str:
    """Run the initialisation chain on `model` in place; returns (and logs) the path taken."""
    if is_zero_function(model):
        chosen = "analytic form (ZeroFunction): init_<S>Params.par"
    elif model_path is not None or bundle.init_model_path is not None:
        path = Path(model_path or bundle.init_model_path)
        load_checkpoint(model, path)
        chosen = f"checkpoint {path}"
    elif settings.num_epochs > 0 and (bundle.qspace_prior is not None or bundle.pp_params.size):
        data, source = prefit_data(bundle, generator)
        if has_batchnorm(model) and not data.full_batch:
            log.info("batch-norm network: pre-fit batch statistics per mini-batch")
        prefit(model, data, settings, run_dir, generator, progress=progress)
        chosen = f"pre-fit ({settings.num_epochs} epochs) to the {source}"
    else:
        chosen = "the catalogue's own initialiser of the PPmodel class"
    log.info("initialisation: %s", chosen)
    return chosen

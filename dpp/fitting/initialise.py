"""The initialisation chain (seeds, physics.md §9): init_PPmodel.pth → pre-fit to
init_qSpace_pot.par or the Wang–Zunger curves → the catalogue's own initialiser."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from dpp.fitting.prefit import PrefitSettings, prefit, prefit_data
from dpp.io.records import Bundle
from dpp.io.writers import save_torch_atomic, write_parameter_dump
from dpp.models import has_batchnorm, is_zero_function, load_checkpoint, model_state
from dpp.models.knots import spread_transitions
from dpp.physics.basis import largest_transfer

PrefitCosts = list[tuple[int, float, float]]
"""(epoch, training cost, validation cost) of the pre-fit, in `dpp.fitting.prefit.COST_UNIT`."""

log = logging.getLogger(__name__)


def initial_checkpoint(settings: PrefitSettings, bundle: Bundle) -> Path | None:
    """The checkpoint the chain starts from: `init.model_path`, else init_PPmodel.pth."""
    if settings.model_path is not None:
        return Path(settings.model_path).expanduser()
    return bundle.init_model_path


def load_initial(model: nn.Module, settings: PrefitSettings, bundle: Bundle) -> Path | None:
    """Load the initial checkpoint into `model` (checked before any work); returns its path."""
    path = initial_checkpoint(settings, bundle)
    if path is None or is_zero_function(model):
        return None
    load_checkpoint(model, path)
    return path


def initialise(
    model: nn.Module,
    bundle: Bundle,
    settings: PrefitSettings,
    run_dir: Path,
    generator: torch.Generator,
    *,
    loaded: Path | None,
    epochs: Callable[[range], object] = iter,
    on_costs: Callable[[PrefitCosts], None] | None = None,
) -> str:
    """Finish the chain on `model` in place (the checkpoint, if any, is already `loaded`);
    returns (and logs) the path taken. The pre-fit writes initZunger_*, iterates its epochs
    through `epochs` (a progress bar) and hands its costs to `on_costs` (the cost figure)."""
    if is_zero_function(model):
        chosen = "analytic form (ZeroFunction): init_<S>Params.par"
    elif loaded is not None:
        chosen = f"checkpoint {loaded}"
    elif settings.num_epochs > 0:
        data = prefit_data(bundle, generator)
        spread = _spread_knots(model, bundle) if settings.spread_knots else ""
        if has_batchnorm(model) and not data.full_batch:
            log.info("batch-norm network: pre-fit batch statistics per mini-batch")

        def save(epoch: int) -> None:
            name = f"initZunger_epoch_{epoch}"
            named = [(k, p.detach().numpy()) for k, p in model.named_parameters()]
            write_parameter_dump(run_dir / f"{name}_params.dat", named)
            save_torch_atomic(model_state(model), run_dir / f"{name}_PPmodel.pth")

        costs = prefit(
            model,
            data,
            settings,
            generator,
            on_save=save,
            epochs=epochs,
        )
        save_torch_atomic(model_state(model), run_dir / "initZunger_PPmodel.pth")
        if costs and on_costs is not None:
            on_costs(costs)
        how = f"{settings.num_epochs} epochs{_optimizer_words(settings)}{spread}"
        chosen = f"pre-fit ({how}) to the {data.source}"
    else:
        chosen = "the catalogue's own initialiser of the model class"
    log.info("initialisation: %s", chosen)
    return chosen


def _spread_knots(model: nn.Module, bundle: Bundle) -> str:
    """Spread the first layer's transitions over (0, largest |G − G'|); words for the log."""
    q_max = max(largest_transfer(system.settings.max_ke) for system in bundle.systems)
    if not spread_transitions(model, q_max):
        name = getattr(model, "catalog_name", type(model).__name__)
        log.info("spread_knots: %s left as it is (batch norm, or no hidden layer)", name)
        return ""
    return f", first-layer knots spread over (0, {q_max:.3g}) 1/Bohr"


def _optimizer_words(settings: PrefitSettings) -> str:
    """`, Adam at lr 0.01` for the pre-fit optimiser partial (empty when it is not one)."""
    func = getattr(settings.optimizer, "func", None)
    lr = getattr(settings.optimizer, "keywords", {}).get("lr")
    if func is None:
        return ""
    return f", {func.__name__}" + ("" if lr is None else f" at lr {lr:g}")

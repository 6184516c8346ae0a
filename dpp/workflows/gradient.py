"""The gradient workflow (seeds, "Overall Execution Flow"): build and check everything, then
initialise the model, write the baseline bands (oldFunc_*, initZunger_*), pre-adjust, train
with Lightning (one optimiser step per epoch) and write the final and best results.

`prepare_fit` builds the model and its Hamiltonian from the typed settings; dpp.app then
builds Lightning's objects from the configuration (`Training`) and `run_fit` does the work."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from dpp.errors import InputError, RunStopped, SettingError
from dpp.fitting.build import training_objective
from dpp.fitting.initialise import PrefitCosts, initialise, load_initial
from dpp.fitting.objective import Objective, trainable
from dpp.fitting.preadjust import pre_adjust
from dpp.fitting.prefit import COST_UNIT
from dpp.io.origins import Origins
from dpp.io.records import Bundle
from dpp.models import safe_torch_load
from dpp.outputs import plots
from dpp.outputs.progress import progress
from dpp.outputs.reporter import Reporter, evaluate_bands, run_facts, write_run_info
from dpp.physics import build_hamiltonian
from dpp.physics.hamiltonian import PseudopotentialHamiltonian
from dpp.runs import fingerprint
from dpp.runs.signals import deferred, interrupt_of
from dpp.training.callbacks.context import RunAware, RunContext
from dpp.training.datamodule import KPointDataModule
from dpp.training.module import OptimizerFactory, PseudopotentialModule, SchedulerFactory
from dpp.training.strategy import is_global_zero
from dpp.workflows.checks import check_basis, check_run
from dpp.workflows.results import finish, finish_interrupted, pre_adjust_files
from dpp.workflows.settings import RunSettings, dpp_version

log = logging.getLogger("dpp")
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"
HP_METRICS = {"hp/final_loss": float("nan"), "hp/best_loss": float("nan")}
"""Metrics of the hyperparameter view, logged at the end of the run."""


@dataclass(frozen=True)
class Fit:
    """The model of a fit, built and checked: bundle, network (None: analytic form), the
    checkpoint it was loaded from, the Hamiltonian, the objective and its parameters."""

    bundle: Bundle
    network: nn.Module | None
    loaded: Path | None
    generator: torch.Generator
    hamiltonian: PseudopotentialHamiltonian
    objective: Objective
    parameters: list[nn.Parameter]


@dataclass(frozen=True)
class Training:
    """What dpp.app built from the trainer, optimizer, scheduler, logger and callbacks
    sections: the Trainer (None: no training epochs), the optimiser and schedule factories
    with the optimiser built once (`probe`, its learning rate the pre-adjust step), and how
    the run starts (from scratch, `ckpt_path`, or resuming the run folder's last checkpoint)."""

    trainer: pl.Trainer | None
    optimizer: OptimizerFactory
    scheduler: SchedulerFactory | None
    probe: torch.optim.Optimizer
    loggers: list[Any]
    callbacks: list[pl.Callback]
    hyperparameters: dict[str, Any]
    gradient_clip: float | None
    load_optimizer_state: bool
    ckpt_path: str | None
    resume: bool
    device: torch.device
    show_progress: bool


def stage_device(accelerator: str) -> torch.device:
    """Device of the stages outside the Trainer (baselines, pre-adjust): this process's GPU
    when the trainer runs on GPUs (`accelerator`), else the CPU."""
    if accelerator in ("gpu", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def prepare_fit(settings: RunSettings, origins: Origins, epochs: int) -> Fit:
    """Read and check the bundle, build the model, its Hamiltonian and the objective; a fit
    of `epochs` > 0 needs something to train."""
    bundle = settings.data.load()
    check_run(settings, bundle, origins, fitting=True)
    generator = torch.Generator().manual_seed(settings.seed)
    try:
        network = settings.model.build(bundle.n_species, generator)
    except SettingError as error:
        raise origins.setting_error("model", error) from None
    loaded = load_initial(network, settings.init, bundle)
    slots = settings.model.slots(network, bundle.pp_params, settings.physics.spin_orbit)
    hamiltonian = build_hamiltonian(bundle, network, settings.physics, train_slots=slots)
    check_basis(hamiltonian)
    objective = training_objective(bundle, settings.loss)
    parameters = [p for _, p in trainable(hamiltonian)]
    if epochs > 0 and not parameters:
        raise origins.error(
            "model.train_slots",
            "nothing to train",
            expected="a network, or analytic slots to train (e.g. model.train_slots=[0,1,2,3])",
            found=settings.model.train_slots,
        )
    return Fit(bundle, network, loaded, generator, hamiltonian, objective, parameters)


def _log_hyperparameters(loggers: list[pl.loggers.Logger], params: dict[str, Any]) -> None:
    """The resolved configuration as every logger's hyperparameters (once the checks passed,
    so a refused run leaves no logger files behind)."""
    for logger in loggers:
        if isinstance(logger, pl.loggers.TensorBoardLogger):
            logger.log_hyperparams(params, metrics=HP_METRICS)
        else:
            logger.log_hyperparams(params)


def _figure_sink(loggers: list[Any], module: dict[str, Any]) -> Any:
    """Sends figures to TensorBoard at step = the current epoch (1-based, 0 before)."""
    boards = [lg for lg in loggers if isinstance(lg, pl.loggers.TensorBoardLogger)]

    def sink(tag: str, fig: Any) -> None:
        module_ = module.get("module")
        step = 0 if module_ is None or module_._trainer is None else module_.current_epoch + 1
        for board in boards:
            board.experiment.add_figure(tag, fig, global_step=step, close=False)

    return sink if boards else None


def _check_resume(path: Path, module: PseudopotentialModule) -> None:
    """The resume checkpoint exists, loads safely and fits the model built now."""
    if not path.is_file():
        raise InputError(
            path,
            "nothing to resume",
            key="resume",
            expected="a checkpoint from an earlier run",
            found="no such file",
        )
    saved = safe_torch_load(path, what="a Lightning checkpoint saved by dpp")
    state = saved.get("state_dict", {}) if isinstance(saved, dict) else {}
    target = module.state_dict()
    for key, tensor in target.items():
        if key not in state or state[key].shape != tensor.shape:
            found = "missing" if key not in state else str(tuple(state[key].shape))
            raise InputError(
                path,
                "the checkpoint does not fit the model of this run",
                key=key,
                expected=str(tuple(tensor.shape)),
                found=found,
                hint="resume with the model settings of the interrupted run",
            )


def _legacy(settings: RunSettings) -> dict[str, Any]:
    """The legacy_* switches of run_info.json (the basis mode is one of `run_facts`)."""
    return {
        "legacy_batchnorm": settings.physics.legacy_batchnorm,
        "legacy_fifth_param": settings.data.legacy_fifth_param,
        "legacy_reorder": settings.loss.legacy_reorder,
        "legacy_relE_detached": settings.loss.legacy_relE_detached,
    }


def _prefit_figure(run_dir: Path) -> Callable[[PrefitCosts], None]:
    """init_train_cost.png of the pre-fit's costs."""

    def write(costs: PrefitCosts) -> None:
        fig = plots.cost_figure(
            [(e, t) for e, t, _ in costs],
            [(e, v) for e, _, v in costs],
            "pre-fit cost",
            unit=COST_UNIT,
        )
        plots.save_figure(fig, run_dir / "init_train_cost.png")
        plots.close(fig)

    return write


def _baseline(
    fit: Fit, settings: RunSettings, training: Training, reporter: Reporter, run_dir: Path
) -> None:
    """Finish the initialisation chain and write the baseline files (oldFunc_*, initZunger_*,
    couplingBands, run_info.json)."""
    hamiltonian, bundle, objective = fit.hamiltonian, fit.bundle, fit.objective
    chosen = initialise(
        fit.network,
        bundle,
        settings.init,
        run_dir,
        fit.generator,
        loaded=fit.loaded,
        epochs=lambda r: progress(r, "pre-fit", enabled=training.show_progress),
        on_costs=_prefit_figure(run_dir),
    )
    hamiltonian.to(training.device)
    reporter.basis_states(hamiltonian)
    analytic = build_hamiltonian(bundle, None, settings.physics).to(training.device)
    reporter.bands("oldFunc", evaluate_bands(analytic), tag="bands_oldFunc", term=objective.primary)
    reporter.bands("initZunger", evaluate_bands(hamiltonian), tag="bands", term=objective.primary)
    reporter.potentials(
        "initZunger", hamiltonian, tag="potentials", converge=True, real_space_files=True
    )
    reporter.couplings("couplingBands", hamiltonian, objective)
    info = {
        "dpp_version": dpp_version(),
        **run_facts(hamiltonian, bundle),
        "seed": settings.seed,
        "initialisation": chosen,
        "legacy_switches": _legacy(settings),
    }
    write_run_info(run_dir / "run_info.json", info)


def run_fit(fit: Fit, training: Training, settings: RunSettings, run_dir: Path) -> float:
    """Initialise, pre-adjust, train and write the results into `run_dir`; returns the final
    validation loss (eV², eval mode)."""
    bundle, hamiltonian, objective = fit.bundle, fit.hamiltonian, fit.objective
    holder: dict[str, Any] = {}
    reporter = Reporter(
        run_dir, bundle, settings.outputs, figure_sink=_figure_sink(training.loggers, holder)
    )
    for callback in training.callbacks:
        if isinstance(callback, RunAware):
            callback.attach(RunContext(run_dir, reporter))
    data = KPointDataModule(
        [s.n_kpoints for s in bundle.systems],
        settings.data.kpt_batch_size,
        settings.data.separate_kpt_grad,
    )
    adam_state = bundle.init_optimizer_path if training.load_optimizer_state else None
    module = PseudopotentialModule(
        hamiltonian,
        objective,
        training.optimizer,
        training.scheduler,
        batches=data.batches(),
        gradient_clip=training.gradient_clip,
        optimizer_state=adam_state,
    )
    holder["module"] = module
    ckpt_path = training.ckpt_path
    identity = settings.identity(bundle, hamiltonian)
    if training.resume:
        ckpt_path = str(run_dir / LAST_CHECKPOINT)
        if Path(ckpt_path).is_file():
            fingerprint.check_resume(run_dir, identity)
    elif ckpt_path is not None and Path(ckpt_path).is_file():
        fingerprint.check_checkpoint(Path(ckpt_path), identity)
    if ckpt_path is not None:
        _check_resume(Path(ckpt_path), module)
    lead = is_global_zero()
    # -- checks done: work starts --------------------------------------------------------
    _log_hyperparameters(training.loggers, training.hyperparameters)
    if lead and not training.resume:
        fingerprint.record(run_dir, identity)
    if ckpt_path is None and lead:
        _baseline(fit, settings, training, reporter, run_dir)
    elif ckpt_path is None:
        log.info("DDP rank > 0: initial parameters come from rank 0 when training starts")
    else:
        log.info("resuming from %s", ckpt_path)
    module.to(training.device)
    trainer = training.trainer
    if trainer is not None:
        init = settings.init
        if ckpt_path is None and lead and init.pre_adjust_moves > 0:
            step = init.pre_adjust_step_size or training.probe.param_groups[0].get("lr", 1.0)
            history = pre_adjust(
                objective,
                hamiltonian,
                data.batches(),
                init.pre_adjust_moves,
                step,
                fit.generator,
                on_move=lambda p: pre_adjust_files(p, module, reporter),
            )
            module.train_history.extend(history)
        try:
            with warnings.catch_warnings():
                if ckpt_path is not None:  # resuming continues into the folder it checkpointed to
                    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* not empty")
                trainer.fit(module, datamodule=data, ckpt_path=ckpt_path)
        except BaseException as error:
            interrupt = interrupt_of(error)
            if interrupt is None:
                raise
            with deferred():
                finish_interrupted(module, reporter)
            raise interrupt from None
    final = finish(module, reporter, training.loggers)
    if module.nonfinite is not None:
        if module.train_history:
            epoch, loss = module.train_history[-1]
            kept = f"the last state with a finite loss (epoch {epoch}, {loss:.6g} eV^2)"
        else:
            kept = "the initial state"
        raise RunStopped(
            f"training stopped at epoch {module.nonfinite_epoch}: {module.nonfinite} became "
            f"NaN or infinite; the final_* files hold {kept}; lower the learning rate or "
            f"check the inputs"
        )
    return final

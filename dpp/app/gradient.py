"""The gradient workflow (seeds, "Overall Execution Flow"): build and check everything, then
initialise the model, write the baseline bands (oldFunc_*, initZunger_*), pre-adjust, train
with Lightning (one optimiser step per epoch) and write the final and best results."""

from __future__ import annotations

import copy
import logging
import math
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ProgressBar

from dpp.app import fingerprint
from dpp.app.compose import resolved_container
from dpp.app.initialise import initialise, load_initial
from dpp.app.origins import Origins
from dpp.app.run import RunSettings, dpp_version, read_bundle
from dpp.app.settings import call_checked, instantiate_checked, partial_of
from dpp.app.signals import OwnSignalHandlers, deferred, interrupt_of
from dpp.app.validate import check_basis, check_devices, check_run
from dpp.errors import InputError, RunStopped, SettingError
from dpp.fitting.build import training_objective
from dpp.fitting.objective import trainable
from dpp.fitting.preadjust import pre_adjust
from dpp.io.writers import save_torch_atomic, write_final_result
from dpp.mc.outputs import write_species_tables
from dpp.models import model_state, safe_torch_load
from dpp.outputs import plots
from dpp.outputs.physics_report import (
    REPORT_FILE,
    physics_reports,
    report_scalars,
    write_physics_report,
)
from dpp.outputs.reporter import Reporter, evaluate_bands, run_facts, write_run_info
from dpp.physics import build_hamiltonian
from dpp.physics.hamiltonian import PseudopotentialHamiltonian
from dpp.training.callbacks.context import RunAware, RunContext
from dpp.training.datamodule import KPointDataModule
from dpp.training.module import PseudopotentialModule
from dpp.training.strategy import is_global_zero

log = logging.getLogger("dpp")
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"


def _stage_device(cfg: DictConfig) -> torch.device:
    """Device of the stages outside the Trainer (baselines, pre-adjust): this process's GPU
    when the trainer runs on GPUs, else the CPU."""
    accelerator = str(OmegaConf.select(cfg, "trainer.accelerator", default="cpu"))
    if accelerator in ("gpu", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def _instantiate_all(cfg: DictConfig, group: str, origins: Origins, **kwargs: Any) -> list[Any]:
    """Every `_target_` entry of config section `group` (callbacks, loggers), in order."""
    node = OmegaConf.select(cfg, group) or {}
    out = []
    for name in node:
        entry = node[name]
        if OmegaConf.is_dict(entry) and "_target_" in entry:
            out.append(instantiate_checked(entry, f"{group}.{name}", origins, **kwargs))
    return out


HP_METRICS = {"hp/final_loss": float("nan"), "hp/best_loss": float("nan")}
"""Metrics of the hyperparameter view, logged at the end of the run."""


def _log_hyperparameters(loggers: list[pl.loggers.Logger], cfg: DictConfig) -> None:
    """The resolved configuration as every logger's hyperparameters (once the checks passed,
    so a refused run leaves no logger files behind)."""
    params = resolved_container(cfg)
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


def _trainer(
    cfg: DictConfig, origins: Origins, callbacks: list[pl.Callback], loggers: list[Any]
) -> pl.Trainer:
    if not sys.stderr.isatty() and not origins.override_of("trainer.enable_progress_bar"):
        OmegaConf.update(cfg, "trainer.enable_progress_bar", False)  # the epoch log speaks
    if not cfg.trainer.get("enable_progress_bar", True):
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    return instantiate_checked(
        cfg.trainer,
        "trainer",
        origins,
        problem="invalid Trainer settings",
        nested=True,
        callbacks=callbacks,
        logger=loggers or False,
    )


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


def _check_parallel(loss_reorder: str, trainer: pl.Trainer, origins: Origins) -> None:
    """smooth_reorder between k-batches needs the previous epoch's bands of the neighbouring
    k-points, which other processes hold: it runs in single-process training only."""
    if loss_reorder == "smooth" and trainer.world_size > 1:
        raise origins.error(
            "loss.reorder",
            "smooth reordering needs every k-point's bands in one process",
            expected="one process, or loss.reorder=eigvec",
            found=f"smooth with {trainer.world_size} processes",
        )


def run_gradient(cfg: DictConfig, settings: RunSettings, origins: Origins, run_dir: Path) -> float:
    """The gradient workflow; returns the final validation loss (eV², eval mode)."""
    bundle = read_bundle(settings)
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
    epochs = int(OmegaConf.select(cfg, "trainer.max_epochs", default=0) or 0)
    parameters = [p for _, p in trainable(hamiltonian)]
    if epochs > 0 and not parameters:
        raise origins.error(
            "model.train_slots",
            "nothing to train",
            expected="a network, or analytic slots to train (e.g. model.train_slots=[0,1,2,3])",
            found=settings.model.train_slots,
        )
    optimizer = partial_of(cfg, "optimizer", origins)
    probe = call_checked(optimizer, "optimizer", origins, parameters or [hamiltonian.pp_free])
    schedule = cfg.get("scheduler")
    scheduled = schedule is not None and "_target_" in schedule
    scheduler = partial_of(cfg, "scheduler", origins) if scheduled else None
    if scheduler is not None:
        call_checked(scheduler, "scheduler", origins, probe)
    workflow = cfg.workflow
    loggers = _instantiate_all(cfg, "logger", origins) if is_global_zero() else []
    holder: dict[str, Any] = {}
    reporter = Reporter(
        run_dir, bundle, settings.outputs, figure_sink=_figure_sink(loggers, holder)
    )
    callbacks = [*_instantiate_all(cfg, "callbacks", origins), OwnSignalHandlers()]
    for callback in callbacks:
        if isinstance(callback, RunAware):
            callback.attach(RunContext(run_dir, reporter))
    data = KPointDataModule(
        [s.n_kpoints for s in bundle.systems],
        settings.data.kpt_batch_size,
        settings.data.separate_kpt_grad,
    )
    adam_state = bundle.init_optimizer_path if workflow.get("load_optimizer_state") else None
    module = PseudopotentialModule(
        hamiltonian,
        objective,
        optimizer,
        scheduler,
        batches=data.batches(),
        gradient_clip=workflow.get("gradient_clip"),
        optimizer_state=adam_state,
    )
    holder["module"] = module
    check_devices(cfg.trainer.get("accelerator"), cfg.trainer.get("devices"), origins)
    trainer = _trainer(cfg, origins, callbacks, loggers) if epochs > 0 else None
    if trainer is not None:
        _check_parallel(settings.loss.reorder, trainer, origins)
    ckpt_path = cfg.get("ckpt_path")
    resuming = bool(cfg.get("resume"))
    identity = fingerprint.fingerprint(
        bundle, [g.n_basis for g in hamiltonian.geometries], settings
    )
    if resuming:
        ckpt_path = str(run_dir / LAST_CHECKPOINT)
        if Path(ckpt_path).is_file():
            fingerprint.check_resume(run_dir, identity)
    elif ckpt_path is not None and Path(ckpt_path).is_file():
        fingerprint.check_checkpoint(Path(ckpt_path), identity)
    if ckpt_path is not None:
        _check_resume(Path(ckpt_path), module)
    device = _stage_device(cfg)
    lead = is_global_zero()
    show = bool(OmegaConf.select(cfg, "trainer.enable_progress_bar", default=True))
    # -- checks done: work starts --------------------------------------------------------
    _log_hyperparameters(loggers, cfg)
    if lead and not resuming:
        fingerprint.record(run_dir, identity)
    if ckpt_path is None and lead:
        chosen = initialise(
            network, bundle, settings.init, run_dir, generator, loaded=loaded, show_progress=show
        )
        hamiltonian.to(device)
        reporter.basis_states(hamiltonian)
        analytic = build_hamiltonian(bundle, None, settings.physics).to(device)
        reporter.bands(
            "oldFunc", evaluate_bands(analytic), tag="bands_oldFunc", term=objective.primary
        )
        reporter.bands(
            "initZunger", evaluate_bands(hamiltonian), tag="bands", term=objective.primary
        )
        reporter.potentials(
            "initZunger", hamiltonian, tag="potentials", converge=True, real_space_files=True
        )
        reporter.couplings("couplingBands", hamiltonian, objective)
        facts = run_facts(hamiltonian, bundle)
        info = {
            "dpp_version": dpp_version(),
            **facts,
            "seed": settings.seed,
            "initialisation": chosen,
            "legacy_switches": _legacy(settings),
        }
        write_run_info(run_dir / "run_info.json", info)
    elif ckpt_path is None:
        log.info("DDP rank > 0: initial parameters come from rank 0 when training starts")
    else:
        log.info("resuming from %s", ckpt_path)
    module.to(device)
    if trainer is not None:
        init = settings.init
        if ckpt_path is None and lead and init.pre_adjust_moves > 0:
            step = init.pre_adjust_step_size or probe.param_groups[0].get("lr", 1.0)
            history = pre_adjust(
                objective,
                hamiltonian,
                data.batches(),
                init.pre_adjust_moves,
                step,
                generator,
                on_move=lambda p: _pre_adjust_files(p, module, reporter),
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
                _finish_interrupted(module, reporter)
            raise interrupt from None
    final = _finish(module, reporter, loggers, cfg)
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


def _legacy(settings: RunSettings) -> dict[str, Any]:
    """The legacy_* switches of run_info.json (the basis mode is one of `run_facts`)."""
    return {
        "legacy_batchnorm": settings.physics.legacy_batchnorm,
        "legacy_fifth_param": settings.data.legacy_fifth_param,
        "legacy_reorder": settings.loss.legacy_reorder,
        "legacy_relE_detached": settings.loss.legacy_relE_detached,
    }


def _pre_adjust_files(move: int, module: PseudopotentialModule, reporter: Reporter) -> None:
    prefix = f"preEpoch_{move}"
    if module.network is not None:
        save_torch_atomic(model_state(module.network), reporter.run_dir / f"{prefix}_PPmodel.pth")
    reporter.bands(prefix, evaluate_bands(module.hamiltonian), term=module.objective.primary)


def _state_files(prefix: str, hamiltonian: PseudopotentialHamiltonian, reporter: Reporter) -> None:
    """`<prefix>_PPmodel.pth` (network) and `<prefix>_<S>Params.dat` (a0..a8, the trained
    analytic slots included)."""
    run_dir, bundle = reporter.run_dir, reporter.bundle
    if hamiltonian.uses_network:
        save_torch_atomic(model_state(hamiltonian.model), run_dir / f"{prefix}_PPmodel.pth")
    table = hamiltonian.pp_table().detach().cpu().numpy()
    write_species_tables(run_dir, prefix, bundle.species, table, None)


def _state_outputs(prefix: str, module: PseudopotentialModule, reporter: Reporter) -> list:
    """Potentials, bands and state files of the Hamiltonian's present state as `prefix`;
    returns that state's physics reports (dpp.outputs.physics_report)."""
    ham = module.hamiltonian
    reporter.potentials(prefix, ham, converge=True, real_space_files=True)
    bands = evaluate_bands(ham)
    reporter.bands(prefix, bands, tag=f"bands_{prefix}", term=module.objective.primary)
    _state_files(prefix, ham, reporter)
    return physics_reports(ham, bands)


def _best_outputs(
    module: PseudopotentialModule, reporter: Reporter, final_is_best: bool
) -> list | None:
    """best_* and bestCoupling_X.dat: the lowest-loss state evaluated, the final one
    included (then the same files as final_*); returns its physics reports (None: no best
    state)."""
    ham = module.hamiltonian
    if final_is_best:
        reports = _state_outputs("best", module, reporter)
        reporter.couplings("bestCoupling", ham, module.objective)
    elif module.best_state is not None:
        final_state = copy.deepcopy(ham.state_dict())
        ham.load_state_dict(module.best_state)
        reports = _state_outputs("best", module, reporter)
        reporter.couplings("bestCoupling", ham, module.objective)
        ham.load_state_dict(final_state)
    else:
        return None
    log.info(
        "best loss %.6g eV^2 %s (best_* files)",
        module.best_loss,
        "of the final state" if final_is_best else f"at epoch {module.best_epoch}",
    )
    return reports


def _cost_outputs(module: PseudopotentialModule, reporter: Reporter) -> None:
    """final_train_cost.png: the training and validation losses so far."""
    if module.train_history:
        fig = plots.cost_figure(module.train_history, module.val_history, "training cost")
        plots.save_figure(fig, reporter.run_dir / "final_train_cost.png")
        plots.close(fig)


def _final_loss(module: PseudopotentialModule) -> tuple[float, torch.Tensor]:
    """The eval-mode loss of the present state (eV²) and its band part per system, by all
    DDP ranks together."""
    ham = module.hamiltonian
    was_training = ham.training
    ham.eval()
    with torch.no_grad():
        final, per_system, _ = module.full_pass(backward=False)
    ham.train(was_training)
    return final, per_system


def _last_epoch(module: PseudopotentialModule) -> int:
    return module.train_history[-1][0] if module.train_history else 0


def _finish(
    module: PseudopotentialModule, reporter: Reporter, loggers: list[Any], cfg: DictConfig
) -> float:
    """Final and best results (global rank 0), with their physics report; returns the final
    eval-mode loss, evaluated by all ranks together after a DDP fit. The final state is the
    best when its loss is at most the lowest training loss seen."""
    final, per_system = _final_loss(module)
    rms = module.objective.primary.rms_mev(per_system)
    final_is_best = math.isfinite(final) and final <= module.best_loss
    if final_is_best:
        module.best_loss, module.best_epoch = final, module.reached_epoch
    last = _last_epoch(module)
    if is_global_zero():
        reports = {"final state": _state_outputs("final", module, reporter)}
        _cost_outputs(module, reporter)
        best = _best_outputs(module, reporter, final_is_best)
        if best is not None:
            reports["best state"] = best
        write_physics_report(reporter.run_dir / REPORT_FILE, reports, "physics report of the fit")
        for logger in loggers:
            logger.log_metrics(report_scalars(reports["final state"]), step=last)
    for logger in loggers:
        logger.log_metrics({"hp/final_loss": final, "hp/best_loss": module.best_loss}, step=last)
        logger.finalize("success")
    if is_global_zero():
        write_final_result(reporter.run_dir, final, rms)
        log.info(
            "final validation loss %.10g eV^2, band RMS %.4g meV, %d full passes in all; "
            "results in %s",
            final,
            rms,
            module.passes,
            reporter.run_dir,
        )
    return final if math.isfinite(final) else float("nan")


def _finish_interrupted(module: PseudopotentialModule, reporter: Reporter) -> None:
    """After an interrupt (Ctrl-C, SIGTERM, SIGHUP) of the fit: final_* (the state after the
    last whole step, though the interrupt may have come within a step) and best_* files on
    global rank 0, no collective (the other ranks are stopping)."""
    if not is_global_zero():
        return
    if module.reached is None:
        log.info("interrupted before training started: no final_* files written")
        return
    ham = module.hamiltonian
    ham.load_state_dict(module.reached)
    ham.invalidate()
    _state_outputs("final", module, reporter)
    plots.write_cost_file(reporter.run_dir / "final_training_cost.dat", module.train_history)
    _cost_outputs(module, reporter)
    _best_outputs(module, reporter, final_is_best=False)
    log.info(
        "interrupted: final_* files hold the state after epoch %d, %d full passes in all",
        module.reached_epoch,
        module.passes,
    )

"""The results of a gradient fit: the files of the pre-adjust moves, the final and best
states (potentials, bands, network and tables, couplings, the physics report), the cost
figure and final_result.json, also after an interrupt."""

from __future__ import annotations

import copy
import logging
import math
from typing import Any

import torch

from dpp.io.writers import save_torch_atomic, write_final_result, write_species_tables
from dpp.models import model_state
from dpp.outputs import plots
from dpp.outputs.physics_report import (
    REPORT_FILE,
    physics_reports,
    report_scalars,
    write_physics_report,
)
from dpp.outputs.reporter import Reporter, evaluate_bands
from dpp.physics.hamiltonian import PseudopotentialHamiltonian
from dpp.training.module import PseudopotentialModule
from dpp.training.strategy import is_global_zero

log = logging.getLogger("dpp")


def pre_adjust_files(move: int, module: PseudopotentialModule, reporter: Reporter) -> None:
    prefix = f"preEpoch_{move}"
    if module.network is not None:
        save_torch_atomic(model_state(module.network), reporter.run_dir / f"{prefix}_PPmodel.pth")
    reporter.bands(prefix, evaluate_bands(module.hamiltonian), term=module.objective.primary)


def _state_files(prefix: str, hamiltonian: PseudopotentialHamiltonian, reporter: Reporter) -> None:
    """`<prefix>_PPmodel.pth` (network) and `<prefix>_<S>Params.dat` (a0..a9, the trained
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


def finish(module: PseudopotentialModule, reporter: Reporter, loggers: list[Any]) -> float:
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


def finish_interrupted(module: PseudopotentialModule, reporter: Reporter) -> None:
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

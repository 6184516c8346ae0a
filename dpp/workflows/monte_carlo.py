"""`workflow=monte_carlo`: the chain's settings from the `mc` section and the bundle's
companion files (mcOpts*.par, <S>ParamSteps.par, the β schedule), each read once, then the
chain."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from dpp.errors import SettingError
from dpp.fitting.build import analytic_objective, training_objective
from dpp.fitting.initialise import load_initial
from dpp.io.montecarlo import read_mc_options
from dpp.io.origins import Origins
from dpp.mc.runner import CHECKPOINT_NAME, MonteCarloRunner
from dpp.mc.settings import MonteCarloSettings, bundle_file, replica_workers, resolve_engine
from dpp.outputs.reporter import Reporter
from dpp.physics import build_hamiltonian
from dpp.runs import fingerprint
from dpp.threads import apply_threads, thread_budget
from dpp.workflows.checks import check_basis, check_run
from dpp.workflows.settings import RunSettings

log = logging.getLogger("dpp")


def run_monte_carlo(
    mc: MonteCarloSettings, settings: RunSettings, origins: Origins, run_dir: Path
) -> float:
    """Run the Monte Carlo chain of `mc` into `run_dir`; returns the best cost. The CPU
    threads are set here, shared by the replica workers (dpp.app.run leaves them to this
    workflow)."""
    workers = replica_workers(mc, settings.threads)
    apply_threads(thread_budget(settings.threads, workers=max(workers, 1)))
    engine = resolve_engine(mc.engine, settings.model.name)
    if mc.perturb_mode in (6, 7) and not settings.physics.spin_orbit:
        raise origins.error(
            "mc.perturb_mode",
            f"mode {mc.perturb_mode} moves only spin-orbit/nonlocal parameters",
            expected="hamiltonian.spin_orbit=true",
            found=mc.perturb_mode,
        )
    options_file = bundle_file(Path(settings.data.bundle), mc.options_file)
    options = None if options_file is None else read_mc_options(options_file)
    bundle = settings.data.load(
        deformation_potentials=bool(options and options.fit_def_pot),
        legacy_defpot_weight=options.def_pot_weight if options else 1.0,
        electron_phonon=bool(options and options.fit_coupling),
    )
    check_run(settings, bundle, origins, fitting=True)
    model = None
    if engine == "nn":
        try:
            model = settings.model.build(
                bundle.n_species, torch.Generator().manual_seed(settings.seed)
            )
        except SettingError as error:
            raise origins.setting_error("model", error) from None
        if load_initial(model, settings.init, bundle) is None:
            log.warning("no init_PPmodel.pth: the network Monte Carlo starts from a random model")
        model.eval()
    hamiltonian = build_hamiltonian(bundle, model, settings.physics)
    check_basis(hamiltonian)
    if engine == "analytic":
        objective = analytic_objective(
            bundle, settings.loss, opt_gaps=bool(options and options.opt_gaps)
        )
    else:
        objective = training_objective(bundle, settings.loss)
    try:
        chain = mc.for_chain(
            bundle, engine, options, threads=settings.threads, run_seed=settings.seed
        )
    except SettingError as error:
        raise origins.setting_error("mc", error) from None
    log.info(
        "Monte Carlo: engine %s, %d trials, seed %d, %d replica(s), %d worker thread(s)",
        engine,
        chain.iterations,
        chain.seed,
        chain.n_replicas,
        chain.workers,
    )
    identity = settings.identity(bundle, hamiltonian)
    if mc.resume and (run_dir / CHECKPOINT_NAME).is_file():
        fingerprint.check_resume(run_dir, identity)
    else:
        fingerprint.record(run_dir, identity)
    reporter = Reporter(run_dir, bundle, settings.outputs)
    runner = MonteCarloRunner(
        bundle, hamiltonian, objective, chain, reporter, plot_every=mc.plot_every
    )
    return runner.run()

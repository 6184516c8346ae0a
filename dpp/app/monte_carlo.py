"""`workflow=monte_carlo`: the chain's settings from the config and the bundle's companion
files (mcOpts*.par, <S>ParamSteps.par, the β schedule), each read once, then the chain."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from dpp.app import fingerprint
from dpp.app.initialise import load_initial
from dpp.app.origins import Origins
from dpp.app.run import MAX_SEED, RunSettings, read_bundle
from dpp.app.settings import build
from dpp.app.validate import check_basis, check_run
from dpp.errors import SettingError
from dpp.fitting.build import analytic_objective, training_objective
from dpp.fitting.perturb import MODES
from dpp.io.montecarlo import McOptions, read_beta_schedule, read_mc_options, read_param_steps
from dpp.io.records import Bundle
from dpp.mc.runner import CHECKPOINT_NAME, MonteCarloRunner
from dpp.mc.settings import MonteCarloSettings
from dpp.outputs.reporter import Reporter
from dpp.physics import build_hamiltonian
from dpp.threads import apply_threads, thread_budget

log = logging.getLogger("dpp")

ENGINE_CHOICES = ("auto", "nn", "analytic")
ANALYTIC_PATIENCE = 10000  # analytic engine: stop after this many trials without a new best


@dataclass(frozen=True)
class McConfig:
    """The `mc` section. engine: auto (analytic for ZeroFunction), nn or analytic;
    iterations: trial moves (mc_iter; the analytic engine falls back to totalIter of the
    options file); percentage: ε of the network modes; beta: β of the √L Metropolis rule;
    perturb_mode: 1–7; beta_schedule: file of `trial beta` rows (relative to the bundle);
    options_file: mcOpts*.par (two temperatures, step factors, extra terms); legacy_modes:
    modes 2 and 4 exactly as the original; replicas / replica_betas: parallel tempering
    (ladder from the options file's betas, else mc_beta … mc_beta/100); workers: threads
    running replica trials (None: as many as the thread budget allows); exchange_every:
    trials between replica exchanges; checkpoint_every: trials between checkpoints; patience:
    stop after so many trials without a new best (None: 10000 analytic, never nn); seed: chain
    seed (None: the run's); resume: continue from mc_checkpoint.pth; tensorboard, progress;
    plot_every: trials between band and potential plots of the best state (0: start only);
    burn_in: trials (at most half the chain) that tune the step scale of every parameter
    group toward `target_acceptance`, `tune_block` trials per group at a time, then freeze it
    (dpp.mc.tuning; 0 = the original's fixed steps)."""

    engine: str = "auto"
    iterations: int | None = None
    percentage: float | None = None
    beta: float | None = None
    perturb_mode: int = 1
    beta_schedule: str | None = None
    options_file: str | None = None
    legacy_modes: bool = False
    replicas: int = 1
    replica_betas: tuple[float, ...] | None = None
    workers: int | None = None
    exchange_every: int = 10
    checkpoint_every: int = 10
    patience: int | None = None
    seed: int | None = None
    resume: bool = True
    tensorboard: bool = True
    progress: bool = True
    burn_in: int = 100
    target_acceptance: float = 0.3
    tune_block: int = 10
    plot_every: int = 50

    def __post_init__(self) -> None:
        if self.engine not in ENGINE_CHOICES:
            raise SettingError(
                "engine", "unknown engine", expected=", ".join(ENGINE_CHOICES), found=self.engine
            )
        if self.perturb_mode not in MODES:
            raise SettingError(
                "perturb_mode",
                "unknown mode",
                expected=f"{MODES[0]} ... {MODES[-1]}",
                found=self.perturb_mode,
            )
        if not 0 < self.target_acceptance < 1:
            raise SettingError(
                "target_acceptance",
                "not a probability",
                expected="0 < p < 1",
                found=self.target_acceptance,
            )
        if self.seed is not None and not 0 <= self.seed <= MAX_SEED:
            raise SettingError(
                "seed", "invalid seed", expected=f"an integer from 0 to {MAX_SEED}", found=self.seed
            )
        if self.burn_in < 0:
            raise SettingError("burn_in", "negative", expected=">= 0", found=self.burn_in)
        for name in ("replicas", "exchange_every", "checkpoint_every", "iterations", "tune_block"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise SettingError(name, "must be positive", expected=">= 1", found=value)
        for name in ("percentage", "beta", "plot_every"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise SettingError(name, "negative", expected=">= 0", found=value)
        if self.replica_betas is not None and any(b <= 0 for b in self.replica_betas):
            raise SettingError(
                "replica_betas",
                "non-positive beta",
                expected="values > 0",
                found=list(self.replica_betas),
            )


def replica_ladder(
    count: int, explicit: tuple[float, ...] | None, options: McOptions | None, beta: float
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """β per replica (coldest first) and analytic step factors: the explicit list, else a
    geometric ladder from β0 to β1 of mcOpts (else from β to β/100)."""
    if count <= 1 and not explicit:
        return (), ()
    hot, cold = (options.betas[1], options.betas[0]) if options else (beta / 100.0, beta)
    betas = list(explicit) if explicit else np.geomspace(cold, hot, count).tolist()
    mods = (1.0, 1.0) if options is None else options.temp_step_size_mod
    fraction = np.linspace(0.0, 1.0, len(betas))
    step_mods = mods[0] * (mods[1] / mods[0]) ** fraction if mods[0] > 0 else fraction * 0 + 1
    return tuple(float(b) for b in betas), tuple(float(m) for m in step_mods)


def replica_workers(mc: McConfig, threads: int) -> int:
    """Threads running replica trials: `mc.workers`, else one per replica (as many replicas
    as replica_ladder makes) within the thread budget `threads` (0 = automatic)."""
    if mc.workers is not None:
        return mc.workers
    n_replicas = len(mc.replica_betas) if mc.replica_betas else max(mc.replicas, 1)
    return min(n_replicas, thread_budget(threads, workers=1))


def _file(bundle_path: Path, value: str | None) -> Path | None:
    if value is None:
        return None
    path = Path(value)
    return path if path.is_absolute() else bundle_path / path


def resolve_engine(engine: str, model_name: str) -> str:
    """auto → analytic for PPmodel = ZeroFunction, else nn."""
    if engine == "auto":
        return "analytic" if model_name == "ZeroFunction" else "nn"
    return engine


def chain_settings(
    mc: McConfig,
    settings: RunSettings,
    bundle: Bundle,
    engine: str,
    options: McOptions | None,
    origins: Origins,
) -> MonteCarloSettings:
    """MonteCarloSettings of the chain; the schedule and step files are read here."""
    iterations = mc.iterations or (options.total_iter if options else None)
    if iterations is None:
        raise origins.error(
            "mc.iterations", "number of trial moves unset", expected="an integer", found=None
        )
    schedule_file = _file(bundle.path, mc.beta_schedule)
    if schedule_file is not None and mc.replicas > 1:
        raise origins.error(
            "mc.replicas",
            "a beta schedule needs a single chain",
            expected="1 with mc.beta_schedule",
            found=mc.replicas,
        )
    beta = mc.beta if mc.beta is not None else 1.0
    betas, step_mods = replica_ladder(mc.replicas, mc.replica_betas, options, beta)
    workers = replica_workers(mc, settings.threads)
    patience = mc.patience
    if patience is None:
        patience = ANALYTIC_PATIENCE if engine == "analytic" else 0
    seed = mc.seed if mc.seed is not None else settings.seed
    return MonteCarloSettings(
        engine=engine,
        iterations=int(iterations),
        percentage=float(mc.percentage or 0.0),
        beta=beta,
        perturb_mode=mc.perturb_mode,
        legacy_modes=mc.legacy_modes,
        schedule=None if schedule_file is None else read_beta_schedule(schedule_file),
        options=options,
        steps=read_param_steps(bundle.path, bundle.species, bundle.pp_params),
        replica_betas=betas,
        replica_step_mods=step_mods,
        exchange_every=mc.exchange_every,
        workers=workers,
        checkpoint_every=mc.checkpoint_every,
        patience=int(patience),
        seed=seed,
        resume=mc.resume,
        tensorboard=mc.tensorboard,
        progress=mc.progress,
        burn_in=min(mc.burn_in, int(iterations) // 2),
        target_acceptance=mc.target_acceptance,
        tune_block=mc.tune_block,
        extra={"bundle": str(bundle.path), "seed": seed, "engine": engine},
    )


def run_monte_carlo(
    cfg: DictConfig, settings: RunSettings, origins: Origins, run_dir: Path
) -> float:
    """Run the Monte Carlo workflow into `run_dir`; returns the best cost. The CPU threads
    are set here, shared by the replica workers (dpp.app.run leaves them to this workflow)."""
    mc: McConfig = build(cfg, "mc", origins)
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
    options_file = _file(Path(settings.data.bundle), mc.options_file)
    options = None if options_file is None else read_mc_options(options_file)
    bundle = read_bundle(
        settings,
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
    chain = chain_settings(mc, settings, bundle, engine, options, origins)
    log.info(
        "Monte Carlo: engine %s, %d trials, seed %d, %d replica(s), %d worker thread(s)",
        engine,
        chain.iterations,
        chain.seed,
        chain.n_replicas,
        chain.workers,
    )
    identity = fingerprint.fingerprint(
        bundle, [g.n_basis for g in hamiltonian.geometries], settings
    )
    if mc.resume and (run_dir / CHECKPOINT_NAME).is_file():
        fingerprint.check_resume(run_dir, identity)
    else:
        fingerprint.record(run_dir, identity)
    reporter = Reporter(run_dir, bundle, settings.outputs)
    runner = MonteCarloRunner(
        bundle, hamiltonian, objective, chain, reporter, plot_every=mc.plot_every
    )
    return runner.run()

"""The settings of the Monte Carlo workflow: the `mc` section of the configuration, and the
same settings resolved for one chain (`MonteCarloSettings.for_chain`) against the run's
settings and the bundle's companion files (mcOpts*.par, <S>ParamSteps.par, the β schedule)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from dpp.errors import SettingError
from dpp.fitting.perturb import MODES
from dpp.io.montecarlo import BetaSchedule, McOptions, read_beta_schedule, read_param_steps
from dpp.io.records import Bundle
from dpp.threads import thread_budget

ENGINES = ("nn", "analytic")
ENGINE_CHOICES = ("auto", *ENGINES)
ANALYTIC_PATIENCE = 10000  # analytic engine: stop after this many trials without a new best
MAX_SEED = 2**32 - 1
"""The largest seed numpy's generators accept."""


@dataclass(frozen=True)
class MonteCarloSettings:
    """The `mc` section, and what a chain does once resolved (`for_chain`). Costs are eV²
    (network) or normalised eV² (analytic), β is 1/√cost.

    engine: auto (analytic for ZeroFunction), nn (modes 1–7 on the network and a5–a7) or
    analytic (a0..a9 steps); iterations: trial moves (mc_iter; the analytic engine falls back
    to totalIter of the options file); percentage: ε of the network modes; beta: β of the √L
    Metropolis rule; perturb_mode: 1–7; beta_schedule: file of `trial beta` rows (relative to
    the bundle); options_file: mcOpts*.par (two temperatures, step factors, extra terms);
    legacy_modes: modes 2 and 4 exactly as the original; replicas / replica_betas: parallel
    tempering (ladder from the options file's betas, else mc_beta … mc_beta/100); workers:
    threads running replica trials (None: as many as the thread budget allows);
    exchange_every: trials between replica exchanges; checkpoint_every: trials between
    checkpoints (and on acceptance); patience: stop after so many trials without a new best
    (None: 10000 analytic, never nn; 0 = never); seed: chain seed (None: the run's); resume:
    continue from mc_checkpoint.pth; tensorboard, progress; plot_every: trials between band
    and potential plots of the best state (0: start only); burn_in: trials (at most half the
    chain) that tune the step scale of every parameter group toward `target_acceptance`,
    `tune_block` trials per group at a time, then freeze it (dpp.mc.tuning; 0 = the
    original's fixed steps); write_potentials: best_/final_ pot and qSpace tables at the end.

    Resolved for a chain (`for_chain`), a single chain (`replica_betas` empty) uses β from
    `options` (two-temperature switch of the analytic engine), else from `schedule`, else
    `beta`; parallel tempering runs one replica per entry of `replica_betas`, with the
    matching step factor of `replica_step_mods` (analytic engine), and tries neighbour swaps
    every `exchange_every` iterations; `steps` are the analytic steps ((n_species, 10); None:
    |a_j|/100; 0 freezes) and `extra` is recorded in the checkpoint.
    """

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
    write_potentials: bool = True
    # resolved from the bundle's files by `for_chain`
    schedule: BetaSchedule | None = None
    options: McOptions | None = None
    steps: np.ndarray | None = None
    replica_step_mods: tuple[float, ...] = ()
    extra: dict[str, object] = field(default_factory=dict)

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

    @property
    def n_replicas(self) -> int:
        return max(len(self.replica_betas or ()), 1)

    def for_chain(
        self,
        bundle: Bundle,
        engine: str,
        options: McOptions | None,
        *,
        threads: int,
        run_seed: int,
    ) -> MonteCarloSettings:
        """These settings resolved for the chain of `engine` (nn or analytic) on `bundle`
        with the analytic `options` (mcOpts*.par), `threads` the run's thread budget
        (0 = automatic) and `run_seed` the run's seed; the schedule and step files are read
        here. An unset number of trials or a schedule with several replicas is a
        SettingError."""
        iterations = self.iterations or (options.total_iter if options else None)
        if iterations is None:
            raise SettingError(
                "iterations", "number of trial moves unset", expected="an integer", found=None
            )
        schedule_file = bundle_file(bundle.path, self.beta_schedule)
        if schedule_file is not None and self.replicas > 1:
            raise SettingError(
                "replicas",
                "a beta schedule needs a single chain",
                expected="1 with mc.beta_schedule",
                found=self.replicas,
            )
        beta = self.beta if self.beta is not None else 1.0
        betas, step_mods = replica_ladder(self.replicas, self.replica_betas, options, beta)
        patience = self.patience
        if patience is None:
            patience = ANALYTIC_PATIENCE if engine == "analytic" else 0
        seed = self.seed if self.seed is not None else run_seed
        return replace(
            self,
            engine=engine,
            iterations=int(iterations),
            percentage=float(self.percentage or 0.0),
            beta=beta,
            schedule=None if schedule_file is None else read_beta_schedule(schedule_file),
            options=options,
            steps=read_param_steps(bundle.path, bundle.species, bundle.pp_params),
            replica_betas=betas,
            replica_step_mods=step_mods,
            workers=replica_workers(self, threads),
            patience=int(patience),
            seed=seed,
            burn_in=min(self.burn_in, int(iterations) // 2),
            extra={"bundle": str(bundle.path), "seed": seed, "engine": engine},
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


def replica_workers(mc: MonteCarloSettings, threads: int) -> int:
    """Threads running replica trials: `mc.workers`, else one per replica (as many replicas
    as replica_ladder makes) within the thread budget `threads` (0 = automatic)."""
    if mc.workers is not None:
        return mc.workers
    n_replicas = len(mc.replica_betas) if mc.replica_betas else max(mc.replicas, 1)
    return min(n_replicas, thread_budget(threads, workers=1))


def bundle_file(bundle_path: Path, value: str | None) -> Path | None:
    """A file named in the `mc` section: absolute, or relative to the bundle folder."""
    if value is None:
        return None
    path = Path(value)
    return path if path.is_absolute() else bundle_path / path


def resolve_engine(engine: str, model_name: str) -> str:
    """auto → analytic for PPmodel = ZeroFunction, else nn."""
    if engine == "auto":
        return "analytic" if model_name == "ZeroFunction" else "nn"
    return engine

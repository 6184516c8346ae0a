"""Settings of one Monte Carlo run (config-free; `dpp.app.monte_carlo` builds them from the
Hydra configuration)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dpp.io.montecarlo import BetaSchedule, McOptions

ENGINES = ("nn", "analytic")


@dataclass(frozen=True)
class MonteCarloSettings:
    """What a chain does. Costs are eV² (network) or normalised eV² (analytic), β is 1/√cost.

    A single chain (`replica_betas` empty) uses β from `options` (two-temperature switch of
    the analytic engine), else from `schedule`, else `beta`. Parallel tempering runs one
    replica per entry of `replica_betas`, with the matching step factor of `replica_step_mods`
    (analytic engine), and tries neighbour swaps every `exchange_every` iterations.
    """

    engine: str  # "nn" (modes 1–7 on the network and a5–a7) or "analytic" (a0..a8 steps)
    iterations: int  # trial moves (mc_iter)
    percentage: float = 0.0  # ε of the network modes (mc_percentage)
    beta: float = 1.0  # mc_beta
    perturb_mode: int = 1  # mc_perturb_mode 1–7
    legacy_modes: bool = False  # legacy_mc_modes: modes 2 and 4 as the original
    schedule: BetaSchedule | None = None  # mc_beta_schedule (single chain only)
    options: McOptions | None = None  # mcOpts*.par (analytic engine)
    steps: np.ndarray | None = None  # (n_species, 9) analytic steps; None = |a_j|/100; 0 freezes
    replica_betas: tuple[float, ...] = ()  # parallel-tempering ladder, coldest first
    replica_step_mods: tuple[float, ...] = ()  # analytic step factor per replica (1 if empty)
    exchange_every: int = 10  # iterations between replica-exchange sweeps
    workers: int = 0  # threads evaluating replica trials in parallel (0/1 = serial)
    checkpoint_every: int = 10  # mc_checkpoint.pth every n iterations (and on acceptance)
    patience: int = 0  # stop after this many iterations without a new best (0 = never)
    burn_in: int = 0  # trials that tune the step scales per parameter group (dpp.mc.tuning)
    target_acceptance: float = 0.3  # acceptance the burn-in steers each group to
    tune_block: int = 10  # burn-in trials of one group before its scale adapts
    seed: int = 0  # seed of every generator of the chain
    resume: bool = True  # continue from <run_dir>/mc_checkpoint.pth when present
    tensorboard: bool = True
    progress: bool = True
    write_potentials: bool = True  # best_/final_ pot, qSpace tables at the end
    extra: dict[str, object] = field(default_factory=dict)  # recorded in the checkpoint

    @property
    def n_replicas(self) -> int:
        return max(len(self.replica_betas), 1)

"""The Monte Carlo chain: Metropolis moves, optional parallel tempering, outputs, restart."""

from __future__ import annotations

import copy
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.progress import Progress

from dpp.errors import InputError
from dpp.fitting.objective import Evaluation, Objective
from dpp.fitting.perturb import (
    analytic_step,
    moved_soc_slots,
    moves_network,
    perturb_network,
    perturb_soc,
)
from dpp.io.records import Bundle
from dpp.io.writers import save_torch_atomic, write_parameter_dump, write_species_tables
from dpp.mc.acceptance import TemperatureSwitch, exchange_probability, metropolis_accept
from dpp.mc.constraints import active_slots, atom_species, enforce_constraints
from dpp.mc.outputs import (
    COST_HEADER,
    AppendLog,
    cost_row,
    iterations_header,
    iterations_row,
    iterations_slots,
    path_length,
    read_cost_trace,
    write_path_bands,
)
from dpp.mc.settings import ENGINES, MonteCarloSettings
from dpp.mc.state import McState, capture, restore
from dpp.mc.tuning import StepTuner, analytic_groups
from dpp.models import safe_torch_load
from dpp.outputs import plots
from dpp.outputs.reporter import Reporter
from dpp.physics.hamiltonian import PseudopotentialHamiltonian

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "mc_checkpoint.pth"


@dataclass
class Replica:
    """One chain: its own Hamiltonian view (shared caches), objective (its band-reordering
    state is per chain: replicas may be evaluated concurrently), generator and current
    state."""

    hamiltonian: PseudopotentialHamiltonian
    objective: Objective
    rng: np.random.Generator
    current: McState
    cost: float = math.nan
    beta: float = 1.0
    step_mod: float = 1.0
    accepted: int = 0
    tuner: StepTuner | None = None


class MonteCarloRunner:
    """Runs `settings.iterations` trial moves on `hamiltonian`, minimising `objective`, and
    writes into `reporter.run_dir`.

    The network engine perturbs the model and a5–a7 (modes 1–7); the analytic engine steps
    a0..a9 with the constraints of physics.md §5.4. The objective is the training loss for the
    network engine and the normalised cost of §10.2 for the analytic one (the application
    builds it). `hamiltonian` ends in the final state of replica 0.

    Plots: the best state's bands and potentials at trial 0 and every `plot_every` trials
    (`mc_iter_t_plotBS.png`, `mc_iter_t_plotPP.png`; 0: trial 0 only), `best_plotBS.png`
    whenever they show a new best, and at the end `final_`/`best_plotBS.png`,
    `final_mc_cost.png` and the movies (outputs.movies).
    """

    def __init__(
        self,
        bundle: Bundle,
        hamiltonian: PseudopotentialHamiltonian,
        objective: Objective,
        settings: MonteCarloSettings,
        reporter: Reporter,
        plot_every: int = 0,
    ) -> None:
        if settings.engine not in ENGINES:
            raise InputError(
                None,
                "unknown engine",
                key="engine",
                expected=" or ".join(ENGINES),
                found=repr(settings.engine),
            )
        self.bundle, self.settings = bundle, settings
        if hamiltonian.model is not None:
            hamiltonian.model.eval()  # physics.md §10.1: losses in eval mode
        self.reporter = reporter
        self.run_dir = reporter.run_dir
        self.plot_every = plot_every
        self.band_term = objective.primary
        self.best_bands: list[np.ndarray] | None = None  # of the best state, eV
        self.best_plotted = False
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.analytic = settings.engine == "analytic"
        options = settings.options
        self.atoms = atom_species(bundle)
        self.active = active_slots(
            hamiltonian.options, hamiltonian.systems, uses_network=hamiltonian.uses_network
        )
        table = hamiltonian.pp_fixed.detach().cpu().numpy()
        steps = np.abs(table) / 100.0 if settings.steps is None else settings.steps  # §10.2
        mask = np.zeros(hamiltonian.pp_fixed.shape[1], dtype=bool)
        mask[list(self.active)] = True
        self.steps = torch.as_tensor(np.asarray(steps) * mask, dtype=hamiltonian.pp_fixed.dtype)
        self.groups = self._groups(hamiltonian)
        seeds = np.random.SeedSequence(settings.seed).spawn(settings.n_replicas + 1)
        self.exchange_rng = np.random.default_rng(seeds[-1])
        self.replicas = [
            Replica(
                hamiltonian=hamiltonian if r == 0 else hamiltonian.replica(_copy(hamiltonian)),
                objective=objective if r == 0 else _own_objective(objective, bundle),
                rng=np.random.default_rng(seeds[r]),
                current=capture(hamiltonian),
                tuner=StepTuner(
                    tuple(self.groups),
                    settings.burn_in,
                    settings.target_acceptance,
                    settings.tune_block,
                ),
            )
            for r in range(settings.n_replicas)
        ]
        for r, replica in enumerate(self.replicas):
            if settings.replica_betas:
                replica.beta = settings.replica_betas[r]
                mods = settings.replica_step_mods
                replica.step_mod = mods[r] if mods else 1.0
        self.switch = (
            None
            if options is None or settings.replica_betas
            else TemperatureSwitch(options.steps_at_temp)
        )
        self.best = capture(hamiltonian)
        self.best_cost = math.inf
        self.trial = 0
        self.since_best = 0
        self.exchanges = [0, 0]  # accepted, attempted
        self.trace = AppendLog(self.run_dir / "final_mc_cost.dat", COST_HEADER)
        self.table_slots = iterations_slots(self.active, table)
        self.iterations_log = AppendLog(
            self.run_dir / "iterations.dat", iterations_header(bundle.species, self.table_slots)
        )
        self.coordinates = [path_length(g.kpoints) for g in hamiltonian.geometries]

    def _groups(self, hamiltonian: PseudopotentialHamiltonian) -> dict[str, tuple[int, ...]]:
        """Parameter groups of the step tuning: slot groups (analytic engine), else the
        network and the spin-orbit/nonlocal strengths that the perturbation mode moves."""
        if self.analytic:
            return analytic_groups(self.active, self.steps.numpy())
        mode, groups = self.settings.perturb_mode, {}
        if hamiltonian.uses_network and moves_network(mode):
            groups["network"] = ()
        projectors = moved_soc_slots(mode, self.active)
        if projectors:
            groups["spin-orbit/nonlocal"] = tuple(int(s) for s in projectors)
        return groups

    # -- public -----------------------------------------------------------------------------
    @property
    def hamiltonian(self) -> PseudopotentialHamiltonian:
        return self.replicas[0].hamiltonian

    def run(self) -> float:
        """Run (or continue) the chain; returns the best cost."""
        checkpoint = self.run_dir / CHECKPOINT_NAME
        if self.settings.resume and checkpoint.is_file():
            self._load(checkpoint)
            log.info("resuming Monte Carlo at trial %d from %s", self.trial + 1, checkpoint)
        else:
            self._start()
        writer = self._writer()
        total = self.settings.iterations
        with Progress(disable=not self.settings.progress) as progress:
            task = progress.add_task("Monte Carlo", total=total, completed=self.trial)
            while self.trial < total and not self._patience_spent():
                self._iterate(self.trial + 1, writer)
                progress.update(task, completed=self.trial, description=self._status())
        if writer is not None:
            writer.close()
        self._finish()
        return self.best_cost

    # -- chain ------------------------------------------------------------------------------
    def _start(self) -> None:
        """Evaluate the initial state (after the constraints); every replica starts there."""
        first = self.replicas[0]
        if self.analytic:
            enforce_constraints(first.hamiltonian.pp_fixed, self.atoms)
        evaluation = first.objective.evaluate(first.hamiltonian)  # no gradients, eval mode
        start = capture(first.hamiltonian)
        for replica in self.replicas:
            restore(replica.hamiltonian, start)
            replica.current, replica.cost = capture(replica.hamiltonian), evaluation.total
        if self.switch is not None:
            first.beta = self.settings.options.betas[0]
        elif not self.settings.replica_betas:
            first.beta = self._scheduled_beta(1)
        self.best, self.best_cost = start, evaluation.total
        self.trace.start(None)
        if self.analytic:
            self.iterations_log.start(None)
            self.iterations_log.append(
                iterations_row(
                    first.cost, first.cost, first.cost, 1.0, start.table.numpy(), self.table_slots
                )
            )
            for index, bands in enumerate(evaluation.bands):
                write_path_bands(
                    self.run_dir / f"bandStruct_{index}.dat", self.coordinates[index], bands
                )
        self.reporter.couplings("couplingBands", first.hamiltonian, first.objective)
        self._on_new_best(evaluation, first)
        log.info("Monte Carlo start: cost %.8g", first.cost)

    def _iterate(self, trial: int, writer: object) -> None:
        self.trial = trial
        first = self.replicas[0]
        if self.switch is not None:
            first.step_mod = self.settings.options.temp_step_size_mod[self.switch.index]
        evaluations = self._trials()
        if self.switch is not None:
            self.switch.advance()
            first.beta = self.settings.options.betas[self.switch.index]
        elif not self.settings.replica_betas:
            first.beta = self._scheduled_beta(trial)
        new_best_evaluation, new_best_replica = None, first
        accepted = []
        for replica, evaluation in zip(self.replicas, evaluations, strict=True):
            u = float(replica.rng.random())
            ok = metropolis_accept(evaluation.total, replica.cost, self.best_cost, replica.beta, u)
            accepted.append(ok)
            replica.tuner.record(trial, ok)
            if not ok:
                restore(replica.hamiltonian, replica.current)
                continue
            replica.current, replica.cost = capture(replica.hamiltonian), evaluation.total
            replica.accepted += 1
            if evaluation.total < self.best_cost:
                self.best, self.best_cost = capture(replica.hamiltonian), evaluation.total
                new_best_evaluation, new_best_replica = evaluation, replica
        self.since_best = 0 if new_best_evaluation is not None else self.since_best + 1
        if new_best_evaluation is not None:
            self._on_new_best(new_best_evaluation, new_best_replica)
        if len(self.replicas) > 1 and trial % self.settings.exchange_every == 0:
            self._exchange(trial // self.settings.exchange_every)
        self._record(trial, evaluations[0].total, accepted[0], writer)
        if accepted[0] or trial % self.settings.checkpoint_every == 0:
            self._save()

    def _trials(self) -> list[Evaluation]:
        workers = min(self.settings.workers, len(self.replicas))
        if workers <= 1:
            return [self._trial(replica) for replica in self.replicas]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(self._trial, self.replicas))

    def _trial(self, replica: Replica) -> Evaluation:
        scales = dict(zip(self.groups, replica.tuner.scale_vector(self.trial), strict=True))
        with torch.no_grad():
            table = replica.hamiltonian.pp_fixed
            if self.analytic:
                steps = self.steps.clone()
                for name, slots in self.groups.items():
                    steps[:, list(slots)] *= scales[name]
                analytic_step(table, steps, replica.step_mod, replica.rng)
                enforce_constraints(table, self.atoms)
            else:
                s = self.settings
                model = replica.hamiltonian.model
                if model is not None and scales.get("network", 1.0) > 0:
                    trainable = [p for p in model.parameters() if p.requires_grad]
                    epsilon = s.percentage * scales.get("network", 1.0)
                    perturb_network(
                        trainable, s.perturb_mode, epsilon, replica.rng, legacy=s.legacy_modes
                    )
                projectors = scales.get("spin-orbit/nonlocal", 1.0)
                if projectors > 0:
                    perturb_soc(
                        table,
                        s.perturb_mode,
                        s.percentage * projectors,
                        replica.rng,
                        active=self.active,
                        legacy=s.legacy_modes,
                    )
            return replica.objective.evaluate(replica.hamiltonian)

    def _exchange(self, sweep: int) -> None:
        """Neighbour swaps (i, i+1) from offset sweep % 2, accepted with
        min(1, exp((β_i − β_j)(E_i − E_j))), E = √cost; states move, betas stay."""
        for i in range(sweep % 2, len(self.replicas) - 1, 2):
            a, b = self.replicas[i], self.replicas[i + 1]
            p = exchange_probability(a.beta, b.beta, math.sqrt(a.cost), math.sqrt(b.cost))
            self.exchanges[1] += 1
            if float(self.exchange_rng.random()) < p:
                self.exchanges[0] += 1
                a.current, b.current = b.current, a.current
                a.cost, b.cost = b.cost, a.cost
                restore(a.hamiltonian, a.current)
                restore(b.hamiltonian, b.current)

    def _scheduled_beta(self, trial: int) -> float:
        schedule = self.settings.schedule
        return (
            self.settings.beta if schedule is None else schedule.beta_at(trial, self.settings.beta)
        )

    def _patience_spent(self) -> bool:
        return 0 < self.settings.patience <= self.since_best

    def _status(self) -> str:
        return f"Monte Carlo best {self.best_cost:.6g} current {self.replicas[0].cost:.6g}"

    # -- outputs ----------------------------------------------------------------------------
    def _writer(self) -> object:
        if not self.settings.tensorboard:
            return None
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=self.trial + 1)
        if self.reporter.figure_sink is None:

            def sink(tag: str, figure: object) -> None:
                writer.add_figure(tag, figure, global_step=self.trial, close=False)

            self.reporter.figure_sink = sink
        return writer

    def _record(self, trial: int, new: float, accepted: bool, writer: object) -> None:
        first = self.replicas[0]
        fmt = "%.8g" if self.analytic else "%.4f"
        self.trace.append(cost_row(trial, new, accepted, self.best_cost, first.cost, fmt))
        ratio = first.accepted / trial
        every = self.settings.options.write_per_iter if self.settings.options else 1
        if self.analytic and trial % every == 0:
            self.iterations_log.append(
                iterations_row(
                    new,
                    first.cost,
                    self.best_cost,
                    ratio,
                    first.current.table.numpy(),
                    self.table_slots,
                )
            )
        if self.plot_every and trial % self.plot_every == 0:
            self._plot_best(trial)
        if writer is None:
            return
        writer.add_scalar("mc/trial_loss", new, trial)
        writer.add_scalar("mc/current_loss", first.cost, trial)
        writer.add_scalar("mc/best_loss", self.best_cost, trial)
        writer.add_scalar("mc/acceptance_rate", ratio, trial)
        for name, scale in zip(self.groups, first.tuner.scales, strict=True):
            writer.add_scalar(f"mc/step_scale/{name}", float(scale), trial)
        for r, replica in enumerate(self.replicas):
            writer.add_scalar(f"mc/beta/replica_{r}", replica.beta, trial)
            writer.add_scalar(f"mc/current_loss/replica_{r}", replica.cost, trial)
        if self.exchanges[1]:
            writer.add_scalar("mc/exchange_rate", self.exchanges[0] / self.exchanges[1], trial)

    def _on_new_best(self, evaluation: Evaluation, replica: Replica) -> None:
        """Files written at every new best (and for the start state), which `replica` holds."""
        table = self.best.table.numpy()
        species = self.bundle.species
        write_species_tables(
            self.run_dir, "best", species, table, "%.14f" if self.analytic else None
        )
        if self.analytic:
            for symbol, row in zip(species, self.best.table, strict=True):
                save_torch_atomic(row.clone(), self.run_dir / f"{symbol}bestParams.pt")
            for index, bands in enumerate(evaluation.bands):
                write_path_bands(
                    self.run_dir / f"bestBandStruct_{index}.dat", self.coordinates[index], bands
                )
        elif self.best.model:
            save_torch_atomic(self.best.model, self.run_dir / "best_PPmodel.pth")
        self.reporter.couplings("bestCoupling", replica.hamiltonian, replica.objective)
        self.best_bands = [bands.detach().cpu().numpy() for bands in evaluation.bands]
        self.best_plotted = False
        if self.trial == 0:
            self._plot_best(0)

    def _state_bands(self, state: McState) -> list[np.ndarray]:
        """Bands (eV) of `state` per system (those of the band term, without the other
        terms), evaluated in replica 0 (left in its state)."""
        first = self.replicas[0]
        restore(first.hamiltonian, state)
        term, bands = first.objective.primary, []
        with torch.no_grad():
            for system, geometry in enumerate(first.hamiltonian.geometries):
                k_all = torch.arange(geometry.n_kpoints, device=geometry.kpoints.device)
                bands.append(term.bands(first.hamiltonian, system, k_all).cpu().numpy())
        restore(first.hamiltonian, first.current)
        return bands

    def _best_state_bands(self) -> list[np.ndarray]:
        """Bands (eV) of the best state: those of its evaluation, else (after a resume) anew."""
        if self.best_bands is None:
            self.best_bands = self._state_bands(self.best)
        return self.best_bands

    def _plot_best(self, trial: int) -> None:
        """Frames `mc_iter_<trial>_plotBS.png` and `_plotPP.png` of the best state, and
        `best_plotBS.png` / `best_BS_sysX.dat` when the best changed since they were written."""
        loss = f"loss {self.best_cost:.6g}"
        self.reporter.bands(
            f"mc_iter_{trial}",
            self._best_state_bands(),
            tag="mc/best_bands",
            term=self.band_term,
            title=f"Monte Carlo trial {trial}: best state, {loss}",
            band_files=False,
        )
        if not self.best_plotted:
            self.reporter.bands(
                "best", self._best_state_bands(), term=self.band_term, title=f"best state, {loss}"
            )
            self.best_plotted = True
        first = self.replicas[0]
        restore(first.hamiltonian, self.best)
        self.reporter.potentials(
            f"mc_iter_{trial}", first.hamiltonian, tag="mc/best_potentials", table=False
        )
        restore(first.hamiltonian, first.current)

    def _final_plots(self) -> None:
        """`final_`/`best_plotBS.png` with their band files, `final_mc_cost.png`, movies."""
        first = self.replicas[0]
        final = self._state_bands(first.current)
        title = f"final state, loss {first.cost:.6g}"
        self.reporter.bands("final", final, term=self.band_term, title=title)
        if not self.best_plotted:  # else _plot_best wrote them for the current best
            title = f"best state, loss {self.best_cost:.6g}"
            self.reporter.bands("best", self._best_state_bands(), term=self.band_term, title=title)
            self.best_plotted = True
        trace = read_cost_trace(self.trace.path)
        if len(trace):
            unit = "normalised eV²" if self.analytic else "eV²"
            self.reporter.figure(plots.mc_cost_figure(trace, unit), "final_mc_cost.png")
        self.reporter.movies()

    def _finish(self) -> None:
        self._save()
        first = self.replicas[0]
        species = self.bundle.species
        fmt = "%.14f" if self.analytic else None
        write_species_tables(self.run_dir, "final", species, first.current.table.numpy(), fmt)
        if first.current.model:
            save_torch_atomic(first.current.model, self.run_dir / "final_PPmodel.pth")
            write_parameter_dump(self.run_dir / "final_params.dat", _dump(first.current.model))
            write_parameter_dump(self.run_dir / "best_params.dat", _dump(self.best.model))
        if self.settings.write_potentials:
            self.reporter.potentials("final", first.hamiltonian, real_space_files=True)
            restore(first.hamiltonian, self.best)
            self.reporter.potentials("best", first.hamiltonian, real_space_files=True)
            restore(first.hamiltonian, first.current)
        self._final_plots()
        log.info(
            "Monte Carlo done after %d trials: best %.8g, current %.8g, accepted %d",
            self.trial,
            self.best_cost,
            first.cost,
            first.accepted,
        )

    # -- checkpoint -------------------------------------------------------------------------
    def _save(self) -> None:
        first = self.replicas[0]
        species = self.bundle.species
        data = {
            "trial": self.trial,
            "engine": self.settings.engine,
            "seed": self.settings.seed,
            "model": first.current.model,
            "best_model": self.best.model,
            "pp_params": {
                s: row.tolist() for s, row in zip(species, first.current.table, strict=True)
            },
            "best_pp_params": {
                s: row.tolist() for s, row in zip(species, self.best.table, strict=True)
            },
            "best": self.best.to_dict(),
            "L_cur": first.cost,
            "L_best": self.best_cost,
            "beta": first.beta,
            "since_best": self.since_best,
            "exchanges": list(self.exchanges),
            "switch": None if self.switch is None else [self.switch.index, self.switch.counter],
            "replicas": [
                {
                    "state": r.current.to_dict(),
                    "cost": r.cost,
                    "beta": r.beta,
                    "step_mod": r.step_mod,
                    "tuner": r.tuner.state_dict(),
                    "accepted": r.accepted,
                    "rng": r.rng.bit_generator.state,
                }
                for r in self.replicas
            ],
            "rng": {
                "exchange": self.exchange_rng.bit_generator.state,
                "torch": torch.get_rng_state(),
            },
            "settings": dict(self.settings.extra),
        }
        save_torch_atomic(data, self.run_dir / CHECKPOINT_NAME)

    def _load(self, path: Path) -> None:
        data = safe_torch_load(path, what="a Monte Carlo checkpoint saved by dpp")
        stored = len(data["replicas"])
        if data["engine"] != self.settings.engine or stored != len(self.replicas):
            raise InputError(
                path,
                "checkpoint does not match this run",
                key="engine/replicas",
                expected=f"{self.settings.engine} with {len(self.replicas)} replica(s)",
                found=f"{data['engine']} with {stored} replica(s)",
            )
        self.trial, self.since_best = int(data["trial"]), int(data["since_best"])
        self.best, self.best_cost = McState.from_dict(data["best"]), float(data["L_best"])
        self.exchanges = list(data["exchanges"])
        if self.switch is not None and data["switch"] is not None:
            self.switch.index, self.switch.counter = data["switch"]
        for replica, stored_replica in zip(self.replicas, data["replicas"], strict=True):
            replica.current = McState.from_dict(stored_replica["state"])
            replica.cost, replica.beta = (
                float(stored_replica["cost"]),
                float(stored_replica["beta"]),
            )
            replica.step_mod = float(stored_replica["step_mod"])
            replica.tuner.load_state_dict(stored_replica["tuner"])
            replica.accepted = int(stored_replica["accepted"])
            replica.rng.bit_generator.state = stored_replica["rng"]
            restore(replica.hamiltonian, replica.current)
        self.exchange_rng.bit_generator.state = data["rng"]["exchange"]
        torch.set_rng_state(data["rng"]["torch"])
        self.trace.start(self.trial)
        if self.analytic:
            every = self.settings.options.write_per_iter if self.settings.options else 1
            self.iterations_log.start(1 + self.trial // every)


def _copy(hamiltonian: PseudopotentialHamiltonian) -> torch.nn.Module | None:
    return None if hamiltonian.model is None else copy.deepcopy(hamiltonian.model)


def _own_objective(objective: Objective, bundle: Bundle) -> Objective:
    """A copy of `objective` with its own mutable state (band reordering, cached tensors);
    the systems' read-only input data stay shared."""
    return copy.deepcopy(objective, {id(system): system for system in bundle.systems})


def _dump(state: dict[str, torch.Tensor]) -> list[tuple[str, np.ndarray]]:
    return [(name, tensor.detach().cpu().numpy()) for name, tensor in state.items()]

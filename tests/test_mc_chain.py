"""Monte Carlo chains on a tiny CdSe bundle: restore on rejection, output consistency, restart,
the hybrid hand-over; and (slow) the 200-move analytic chain on InGaAsP."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import dpp
from dpp.fitting import LossSettings
from dpp.fitting.build import analytic_objective, training_objective
from dpp.io import load_bundle
from dpp.io.params import read_species_params
from dpp.mc import MonteCarloRunner, MonteCarloSettings
from dpp.mc.hybrid import next_stage_bundle
from dpp.mc.state import capture
from dpp.models import build_model
from dpp.outputs.reporter import OutputSettings, Reporter
from dpp.physics import build_hamiltonian

EXAMPLE = Path(dpp.__file__).parent / "data" / "examples" / "zb_CdSe"
INGAASP = Path(__file__).parent / "data" / "InGaAsP"


def tiny_bundle(folder: Path, n_k: int = 4, n_bands: int = 8) -> Path:
    """zb_CdSe with maxKE = 2.5 Hartree, `n_k` k-points and `n_bands` bands."""
    shutil.copytree(EXAMPLE, folder)
    (folder / "input_0.par").write_text(f"maxKE = 2.5\nnBands = {n_bands}\n")
    for name, width in (("kpoints_0.par", None), ("expBandStruct_0.par", n_bands + 1)):
        rows = (folder / name).read_text().splitlines()[:n_k]
        (folder / name).write_text("\n".join(" ".join(r.split()[:width]) for r in rows) + "\n")
    (folder / "bandWeights_0.par").write_text("1\n" * n_bands)
    return folder


def network_hamiltonian(bundle, spin_orbit: bool = False):
    model = build_model(
        "Net_celu_HeInit_decayGaussian",
        [8, 8],
        bundle.n_species,
        gaussian_std=2.0,
        generator=torch.Generator().manual_seed(0),
    )
    hamiltonian = build_hamiltonian(bundle, model.eval(), spin_orbit=spin_orbit)
    if spin_orbit:
        hamiltonian.pp_fixed[:, 5:8] = torch.tensor([[0.5, 0.1, 0.02], [0.3, 0.05, 0.01]])
    return hamiltonian


def settings(**changes) -> MonteCarloSettings:
    base = MonteCarloSettings(
        engine="nn",
        iterations=8,
        percentage=0.05,
        beta=2.0,
        perturb_mode=1,
        seed=5,
        workers=0,
        patience=0,
        burn_in=0,
        tensorboard=False,
        progress=False,
        write_potentials=False,
    )
    return replace(base, **changes)


SMALL_GRIDS = OutputSettings(converge_plots=False, n_qgrid=64, n_rgrid=64, ft_n_qgrid=128)


def make_runner(bundle, hamiltonian, chain: MonteCarloSettings, run_dir: Path):
    """The chain with the objective of its engine, writing small grids into `run_dir`."""
    if chain.engine == "analytic":
        objective = analytic_objective(bundle, LossSettings())
    else:
        objective = training_objective(bundle, LossSettings())
    reporter = Reporter(run_dir, bundle, SMALL_GRIDS)
    return MonteCarloRunner(bundle, hamiltonian, objective, chain, reporter)


@pytest.fixture
def bundle(tmp_path: Path):
    return load_bundle(tiny_bundle(tmp_path / "bundle"))


def _state_equal(a, b) -> bool:
    same_model = a.model.keys() == b.model.keys() and all(
        torch.equal(a.model[k], b.model[k]) for k in a.model
    )
    return same_model and torch.equal(a.table, b.table)


@pytest.mark.parametrize("mode", [1, 3, 5, 7])
def test_rejection_restores_state_bit_for_bit(bundle, tmp_path: Path, mode: int) -> None:
    hamiltonian = network_hamiltonian(bundle, spin_orbit=True)
    runner = make_runner(
        bundle, hamiltonian, settings(perturb_mode=mode, beta=1e12), tmp_path / "run"
    )
    runner._start()
    replica = runner.replicas[0]
    rejected = 0
    for trial in range(1, 7):
        before = capture(hamiltonian)
        runner._iterate(trial, None)
        if runner.trace.path.read_text().splitlines()[-1].split()[2] != "1":
            rejected += 1
            assert _state_equal(capture(hamiltonian), before)
            assert _state_equal(replica.current, before)
    assert rejected > 0


@pytest.mark.parametrize("engine", ["nn", "analytic"])
def test_final_current_loss_matches_fresh_evaluation(bundle, tmp_path: Path, engine: str) -> None:
    run = tmp_path / "run"
    if engine == "nn":
        hamiltonian, change = network_hamiltonian(bundle), {}
    else:
        hamiltonian = build_hamiltonian(bundle)
        change = {"engine": "analytic", "steps": np.abs(bundle.pp_params) / 100, "beta": 50.0}
    make_runner(bundle, hamiltonian, settings(**change, write_potentials=True), run).run()
    last = run.joinpath("final_mc_cost.dat").read_text().splitlines()[-1].split()
    if engine == "nn":
        fresh = network_hamiltonian(bundle)
        fresh.model.load_state_dict(torch.load(run / "final_PPmodel.pth", weights_only=True))
        cost = training_objective(bundle, LossSettings()).evaluate
    else:
        final = np.array(
            [read_species_params(run / f"final_{s}Params.dat") for s in bundle.species]
        )
        fresh = build_hamiltonian(replace(bundle, pp_params=final))
        cost = analytic_objective(bundle, LossSettings()).evaluate
    value = cost(fresh).total
    fmt = "%.4f" if engine == "nn" else "%.8g"
    assert last[4] == fmt % value
    assert (run / f"best_pot_{bundle.species[0]}.dat").is_file()


@pytest.mark.parametrize(
    ("replicas", "burn_in"),
    [
        ((), 0),
        pytest.param((4.0, 1.0), 0, marks=pytest.mark.slow),
        pytest.param((), 4, marks=pytest.mark.slow),
    ],
)
def test_restart_reproduces_uninterrupted_run(bundle, tmp_path: Path, replicas, burn_in) -> None:
    change = {"replica_betas": replicas, "exchange_every": 2, "workers": 2 if replicas else 0}
    change.update(burn_in=burn_in, tune_block=2)
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    make_runner(bundle, network_hamiltonian(bundle), settings(**change), whole).run()
    make_runner(bundle, network_hamiltonian(bundle), settings(**change, iterations=3), parts).run()
    make_runner(bundle, network_hamiltonian(bundle), settings(**change), parts).run()
    trace = (whole / "final_mc_cost.dat").read_text()
    assert trace == (parts / "final_mc_cost.dat").read_text()
    assert len(trace.splitlines()) == 9
    a = torch.load(whole / "mc_checkpoint.pth", weights_only=True)
    b = torch.load(parts / "mc_checkpoint.pth", weights_only=True)
    assert a["L_best"] == b["L_best"] and a["L_cur"] == b["L_cur"]
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_analytic_tempering_and_hybrid_handover(bundle, tmp_path: Path) -> None:
    run = tmp_path / "run"
    change = {
        "engine": "analytic",
        "steps": np.abs(bundle.pp_params) / 50,
        "iterations": 6,
        "replica_betas": (50.0, 10.0, 2.0),
        "exchange_every": 1,
        "workers": 2,
    }
    best = make_runner(bundle, build_hamiltonian(bundle), settings(**change), run).run()
    start = float(run.joinpath("iterations.dat").read_text().splitlines()[1].split()[0])
    assert best <= start
    new = next_stage_bundle(run, bundle.path, tmp_path / "next")
    stage = load_bundle(new)
    cd = read_species_params(run / "best_CdParams.dat")
    assert np.array_equal(stage.pp_params[0], cd)
    objective = analytic_objective(stage, LossSettings())
    assert best == pytest.approx(objective.evaluate(build_hamiltonian(stage)).total, rel=1e-12)


@pytest.mark.parametrize("s_channel", [False, True])
def test_iterations_file_has_a9_columns_only_with_the_s_channel(bundle, tmp_path, s_channel):
    """Without the s-channel iterations.dat keeps the original's columns a0..a8 per species."""
    run = tmp_path / "run"
    hamiltonian = build_hamiltonian(bundle, nonlocal_s=s_channel)
    make_runner(bundle, hamiltonian, settings(engine="analytic", iterations=1), run).run()
    header, *rows = run.joinpath("iterations.dat").read_text().splitlines()
    slots = 10 if s_channel else 9
    names = [f"{s}_a{j}" for s in bundle.species for j in range(slots)]
    assert header.split() == ["newMSE", "curMSE", "bstMSE", "%Accpt", *names]
    assert len(rows) == 2 and all(len(row.split("\t")) == 4 + len(names) for row in rows)


@pytest.mark.slow
def test_ingaasp_analytic_chain_lowers_the_loss(tmp_path: Path) -> None:
    """The default steps |a|/100 accepted nothing at β = 100 before the burn-in tuned them."""
    bundle = load_bundle(INGAASP)
    change = {"engine": "analytic", "iterations": 200, "beta": 100.0, "seed": 0, "burn_in": 100}
    run = tmp_path / "run"
    best = make_runner(bundle, build_hamiltonian(bundle), settings(**change), run).run()
    start = float(run.joinpath("iterations.dat").read_text().splitlines()[1].split()[0])
    rows = run.joinpath("final_mc_cost.dat").read_text().splitlines()[1:]
    accepted = [int(row.split()[2]) for row in rows]
    assert best < start and sum(accepted[100:]) > 0


def test_burn_in_reaches_its_acceptance_band(bundle, tmp_path: Path) -> None:
    """Steps 20x too large: a 60-trial burn-in tunes each slot group, and the frozen chain
    after it accepts moves at a rate near the target."""
    change = {
        "engine": "analytic",
        "steps": np.abs(bundle.pp_params) / 5,
        "iterations": 140,
        "beta": 20.0,
        "burn_in": 60,
        "tune_block": 5,
    }
    runner = make_runner(bundle, build_hamiltonian(bundle), settings(**change), tmp_path / "run")
    runner.run()
    rows = (tmp_path / "run" / "final_mc_cost.dat").read_text().splitlines()[1:]
    accepted = [int(row.split()[2]) for row in rows]
    after = np.mean(accepted[60:])
    assert 0.1 <= after <= 0.6, after
    assert np.all(runner.replicas[0].tuner.scales < 1.0)  # every group's step shrank


@pytest.mark.parametrize("mode", [1, 5])
def test_rejection_restores_state_during_and_after_burn_in(bundle, tmp_path, mode) -> None:
    hamiltonian = network_hamiltonian(bundle, spin_orbit=True)
    chain = settings(perturb_mode=mode, beta=1e12, burn_in=4, tune_block=2)
    runner = make_runner(bundle, hamiltonian, chain, tmp_path / "run")
    runner._start()
    for trial in range(1, 9):
        before = capture(hamiltonian)
        runner._iterate(trial, None)
        if runner.trace.path.read_text().splitlines()[-1].split()[2] != "1":
            assert _state_equal(capture(hamiltonian), before)


def test_replicas_have_their_own_band_reordering(bundle, tmp_path: Path) -> None:
    """Replicas evaluated by worker threads each own their objective (eigvec reordering
    state is per chain; the systems' input data stay shared): the chain equals the serial one."""
    change = {"replica_betas": (4.0, 1.0), "exchange_every": 2}
    objective = training_objective(bundle, LossSettings(reorder="eigvec"))
    traces = []
    for workers in (1, 2):
        run = tmp_path / f"workers{workers}"
        reporter = Reporter(run, bundle, SMALL_GRIDS)
        chain = settings(**change, workers=workers)
        runner = MonteCarloRunner(bundle, network_hamiltonian(bundle), objective, chain, reporter)
        first, second = (replica.objective for replica in runner.replicas)
        assert first is objective and second is not objective
        a, b = first.primary.targets[0], second.primary.targets[0]
        assert a.reordering is not b.reordering and a.system is b.system
        runner.run()
        objective = training_objective(bundle, LossSettings(reorder="eigvec"))
        traces.append((run / "final_mc_cost.dat").read_text())
    assert traces[0] == traces[1]


def test_best_bands_are_written_once_per_best(bundle, tmp_path: Path) -> None:
    """With a plot every trial the best state's files are current when the chain ends: the
    final plots do not write them again; the bands of a state are those of its evaluation."""
    run = tmp_path / "run"
    reporter = Reporter(run, bundle, SMALL_GRIDS)
    objective = training_objective(bundle, LossSettings())
    runner = MonteCarloRunner(
        bundle, network_hamiltonian(bundle), objective, settings(), reporter, plot_every=1
    )
    written = []
    original = reporter.bands

    def bands(prefix, *args, **kwargs):
        written.append(prefix)
        return original(prefix, *args, **kwargs)

    reporter.bands = bands
    runner.run()
    assert "final" in written and "best" not in written[written.index("final") :]
    assert written.count("best") >= 1 and (run / "best_plotBS.png").is_file()
    for fresh, stored in zip(runner._state_bands(runner.best), runner.best_bands, strict=True):
        assert np.array_equal(fresh, stored)

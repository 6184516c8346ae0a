"""Monte Carlo plots: final_mc_cost.png against final_mc_cost.dat, best-state band plots every
plot interval, final/best band files, movies of a workflow run."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from test_mc_chain import SMALL_GRIDS, network_hamiltonian, settings, tiny_bundle
from training_support import run_app

from dpp.errors import InputError
from dpp.fitting import LossSettings
from dpp.fitting.build import training_objective
from dpp.io import load_bundle
from dpp.mc import MonteCarloRunner
from dpp.outputs import plots
from dpp.outputs.reporter import Reporter


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path, dict]:
    """(bundle, run folder, {file name: Figure}) of 5 network trials plotted every 2."""
    tmp = tmp_path_factory.mktemp("mc_outputs")
    bundle = load_bundle(tiny_bundle(tmp / "bundle"))
    figures: dict = {}
    original = plots.save_figure

    def capture(fig, path):
        figures[Path(path).name] = fig
        return original(fig, path)

    runner = MonteCarloRunner(
        bundle,
        network_hamiltonian(bundle),
        training_objective(bundle, LossSettings()),
        settings(iterations=5, beta=50.0, tensorboard=True),
        Reporter(tmp / "run", bundle, SMALL_GRIDS),
        plot_every=2,
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plots, "save_figure", capture)
        runner.run()
    return bundle, tmp / "run", figures


def test_cost_plot_draws_final_mc_cost_dat(chain) -> None:
    _, run, figures = chain
    trace = np.loadtxt(run / "final_mc_cost.dat")
    losses, rate = figures["final_mc_cost.png"].axes
    drawn = {line.get_label(): line for line in losses.get_lines()}
    for label, column in (("trial", 1), ("best", 3), ("current", 4)):
        assert np.array_equal(drawn[label].get_xdata(), trace[:, 0])
        assert np.array_equal(drawn[label].get_ydata(), trace[:, column])
    (acceptance,) = rate.get_lines()
    assert np.array_equal(acceptance.get_xdata(), trace[:, 0])
    assert np.allclose(acceptance.get_ydata(), np.cumsum(trace[:, 2]) / trace[:, 0])
    assert rate.get_xlabel() == "trial" and rate.get_ylabel() == "acceptance rate"
    assert losses.get_ylabel() == "loss (eV²)"
    assert [t.get_text() for t in losses.get_legend().get_texts()] == ["trial", "current", "best"]


def test_best_state_plots_every_interval(chain) -> None:
    bundle, run, figures = chain
    trace = np.loadtxt(run / "final_mc_cost.dat")
    frames = sorted(n for n in figures if n.startswith("mc_iter_"))
    assert frames == [f"mc_iter_{t}_plot{k}.png" for t in (0, 2, 4) for k in ("BS", "PP")]
    for trial in (2, 4):
        figure = figures[f"mc_iter_{trial}_plotBS.png"]
        title = figure.get_suptitle()
        assert title.startswith(f"Monte Carlo trial {trial}: best state, loss ")
        assert float(title.rsplit(" ", 1)[1]) == pytest.approx(trace[trial - 1, 3], rel=1e-5)
        assert figure.axes[0].get_ylabel() == "E, absolute (eV)"
        assert figure.axes[0].get_title() == "CdSe (system 0)"
    assert not list(run.glob("mc_iter_*_BS_sys0.dat"))
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    assert [e.step for e in events.Images("mc/best_bands")] == [2, 4]


def test_final_and_best_band_files_hold_those_states(chain) -> None:
    bundle, run, figures = chain
    cost = training_objective(bundle, LossSettings()).evaluate
    for which in ("final", "best"):
        hamiltonian = network_hamiltonian(bundle)
        state = torch.load(run / f"{which}_PPmodel.pth", weights_only=True)
        hamiltonian.model.load_state_dict(state)
        bands = cost(hamiltonian).bands[0].numpy()
        table = np.loadtxt(run / f"{which}_BS_sys0.dat")
        assert np.allclose(table[:, 1:], bands, atol=1e-5)
        (ax,) = figures[f"{which}_plotBS.png"].axes
        lines = [line.get_ydata() for line in ax.get_lines() if len(line.get_xdata()) > 2]
        assert np.allclose(np.column_stack(lines), bands)
        assert figures[f"{which}_plotBS.png"].get_suptitle().startswith(f"{which} state, loss")


@pytest.mark.slow
def test_workflow_plot_interval_and_movies(tmp_path: Path) -> None:
    folder = tiny_bundle(tmp_path / "bundle")
    run = tmp_path / "run"
    mc = ["workflow=monte_carlo", "model.name=ZeroFunction", "mc.progress=false", "seed=3"]
    base = [f"data.bundle={folder}", *mc, "mc.iterations=4", "mc.tensorboard=false"]
    with pytest.raises(InputError, match="mc.plot_every"):
        run_app(tmp_path / "bad", [*base, "mc.plot_every=-1"])
    run_app(run, [*base, "mc.plot_every=2", "outputs.movies=true"])
    for kind in ("BS", "PP"):
        reader = imageio.get_reader(run / f"movie_{kind}.mp4")
        frames = [frame for frame in reader]
        reader.close()
        assert len(frames) == 3  # trials 0, 2, 4
        assert len({frame.shape for frame in frames}) == 1
    trace = np.loadtxt(run / "final_mc_cost.dat")
    assert trace.shape == (4, 5)
    assert (run / "final_mc_cost.png").is_file() and (run / "best_plotBS.png").is_file()


def test_potential_plots_evaluate_every_grid_once(tmp_path: Path, monkeypatch) -> None:
    """The prior curve is computed once per run, each q grid of a potential plot goes through
    the network once (also with the 2 r grids of every converge-plot q grid)."""
    from dataclasses import replace

    from dpp.outputs import reporter as reporter_module

    bundle = load_bundle(tiny_bundle(tmp_path / "bundle"))
    hamiltonian = network_hamiltonian(bundle)
    (tmp_path / "run").mkdir()
    reporter = Reporter(tmp_path / "run", bundle, replace(SMALL_GRIDS, converge_plots=True))
    grids: list[tuple[float, int]] = []
    form_factors = hamiltonian.form_factors

    def counted(q: torch.Tensor) -> torch.Tensor:
        grids.append((float(q.max()), q.numel()))
        return form_factors(q)

    priors = []
    prior_curve = reporter_module.prior_curve
    monkeypatch.setattr(hamiltonian, "form_factors", counted)
    monkeypatch.setattr(
        reporter_module, "prior_curve", lambda *args: priors.append(1) or prior_curve(*args)
    )
    for prefix in ("first", "second"):
        grids.clear()
        reporter.potentials(prefix, hamiltonian, converge=True)
        converge = [(q_max, n_q) for q_max in (10.0, 20.0, 30.0) for n_q in (2048, 4096)]
        table = (SMALL_GRIDS.qmax, SMALL_GRIDS.n_qgrid)
        transform = (SMALL_GRIDS.ft_qmax, SMALL_GRIDS.ft_n_qgrid)
        assert grids == [table, transform, (10.0, 2048), *converge]
        assert (tmp_path / "run" / f"{prefix}_plotPPconverge.png").is_file()
    assert len(priors) == 1

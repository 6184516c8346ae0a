"""Data parallelism over k-points (2 gloo processes), Hydra multirun sweeps and their configs."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from training_support import QUIET, REPO, cost_rows, run_app, small_bundle

from dpp.app.compose import compose_config
from dpp.threads import thread_budget
from dpp.training.datamodule import ShardedBatchSampler

# 5 k-points (odd), batches of 2 per process: rank 1 serves an empty last batch
TINY = {"n_k": 5, "max_ke": 2.5, "init_Zunger_num_epochs": 0, "plotEvery": 1, "hiddenLayers": 4}
LOSS = [
    *QUIET,
    "logger=none",
    "data.kpt_batch_size=2",
    "loss.penalize_starting=2.0",
    "loss.penalize_lambda=1.0",
    "loss.relE_bIdx=3",
]
RUN = [*LOSS, "recipe=lbfgs"]
DDP = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]


def _train(args: list[str], cwd: Path) -> str:
    """Run `python train.py args` in `cwd`; its output (the log is on stdout)."""
    result = subprocess.run(
        [sys.executable, str(REPO / "train.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


def _assert_same_parameters(a: Path, b: Path, rtol: float = 1e-10, atol: float = 0.0) -> None:
    left, right = torch.load(a), torch.load(b)
    assert left.keys() == right.keys()
    for name, value in left.items():
        torch.testing.assert_close(right[name], value, rtol=rtol, atol=atol, msg=name)


@pytest.mark.parametrize(("n_items", "batch", "world"), [(5, 2, 2), (5, 1, 3), (1, 8, 2)])
def test_sharded_sampler_serves_every_item_once_in_equal_batch_counts(n_items, batch, world):
    samplers = [ShardedBatchSampler(n_items, batch, rank, world) for rank in range(world)]
    batches = [list(sampler) for sampler in samplers]
    assert len({len(b) for b in batches}) == 1 and all(len(s) == len(batches[0]) for s in samplers)
    served = sorted(i for rank in batches for b in rank for i in b)
    assert served == list(range(n_items))
    assert all(len(b) <= batch for rank in batches for b in rank)


def test_threads_are_shared_by_the_processes_of_a_node(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("dpp.threads.available_cores", lambda: 8)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    assert thread_budget(64, processes=64) == 1
    assert thread_budget(8, processes=2) == 4
    assert thread_budget(0) == 1  # automatic: one thread unless the environment grants cores
    monkeypatch.setenv("OMP_NUM_THREADS", "6")
    assert thread_budget(0, processes=2) == 3
    assert thread_budget(32) == 8  # clipped to the cores this process may use


@pytest.mark.slow
def test_two_gloo_processes_equal_one_and_resume_on_one(tmp_path: Path):
    bundle = small_bundle(tmp_path, max_num_epochs=2, **TINY)
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    run_app(single, [f"data.bundle={bundle}", *RUN])
    args = [f"data.bundle={bundle}", *RUN, *DDP, "trainer.max_epochs=1", f"hydra.run.dir={ddp}"]
    _train(args, tmp_path)
    _assert_same_parameters(single / "epoch_1_PPmodel.pth", ddp / "epoch_1_PPmodel.pth")
    expected = cost_rows(single / "final_training_cost.dat")
    assert _costs(ddp) == pytest.approx([v for _, v in expected[:1]], rel=1e-10)
    run_app(ddp, [f"data.bundle={bundle}", *RUN, "resume=true"])
    _assert_same_parameters(single / "final_PPmodel.pth", ddp / "final_PPmodel.pth")
    assert [x for x, _ in cost_rows(ddp / "final_training_cost.dat")] == [1, 2]
    assert _costs(ddp) == pytest.approx([v for _, v in expected], rel=1e-10)


@pytest.mark.slow
def test_two_gloo_processes_equal_one_with_gauss_newton(tmp_path: Path, caplog):
    """The default recipe under DDP: each rank solves its k-points, the bands and their
    Jacobians are summed, and both ranks take the one-process Gauss–Newton steps."""
    bundle = small_bundle(tmp_path, max_num_epochs=3, **TINY)
    args = [f"data.bundle={bundle}", *LOSS, "optimizer.inner_iterations=50"]
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    run_app(single, args)
    log = _train([*args, *DDP, f"hydra.run.dir={ddp}"], tmp_path)
    assert "does not apply" not in log + caplog.text
    assert "damping" in log  # the epoch log of a Gauss–Newton fit
    _assert_same_parameters(single / "final_PPmodel.pth", ddp / "final_PPmodel.pth")
    expected = [v for _, v in cost_rows(single / "final_training_cost.dat")]
    assert len(expected) == 3 and expected[-1] < expected[0]
    assert _costs(ddp) == pytest.approx(expected, rel=1e-10)


def _costs(run_dir: Path) -> list[float]:
    return [value for _, value in cost_rows(run_dir / "final_training_cost.dat")]


@pytest.mark.slow
def test_multirun_writes_the_sweep_summary(tmp_path: Path):
    bundle = small_bundle(tmp_path, max_num_epochs=1, **TINY)
    sweep = tmp_path / "sweep"
    _train(
        [
            "-m",
            f"data.bundle={bundle}",
            *RUN,
            "recipe=legacy",
            "learning_rate=1e-3,5e-3",
            f"hydra.sweep.dir={sweep}",
        ],
        tmp_path,
    )
    with (sweep / "sweep_summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(float(row["learning_rate"]) for row in rows) == [1e-3, 5e-3]
    assert all(row["status"] == "COMPLETED" and float(row["final_loss_eV2"]) > 0 for row in rows)
    assert all(float(row["band_rms_meV"]) > 0 for row in rows)
    assert float(rows[0]["final_loss_eV2"]) <= float(rows[1]["final_loss_eV2"])
    assert (sweep / "sweep_summary.md").read_text().startswith("| job | learning_rate |")


@pytest.mark.parametrize(
    "overrides",
    [
        ["hparams_search=optuna"],
        ["hydra/launcher=local"],
        ["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4"],
        ["hparams_search=optuna", "hydra/launcher=slurm"],
    ],
)
def test_sweeper_and_launcher_configs_compose(overrides: list[str]):
    cfg = compose_config("train", overrides)
    launcher, sweeper = cfg.hydra.launcher._target_, cfg.hydra.sweeper._target_
    if "hparams_search=optuna" in overrides:
        assert sweeper.endswith("OptunaSweeper") and "learning_rate" in cfg.hydra.sweeper.params
    if "hydra/launcher=local" in overrides:
        assert launcher.endswith("JoblibLauncher")
    if "hydra/launcher=slurm" in overrides:
        assert launcher.endswith("SlurmLauncher") and cfg.hydra.launcher.timeout_min > 0
    assert "SweepSummary" in cfg.hydra.callbacks.sweep_summary._target_


@pytest.mark.slow
def test_two_gloo_processes_equal_one_with_the_warm_started_eigensolver(tmp_path: Path):
    """Every k-point keeps its own warm-start vectors, so sharding the k-points over ranks
    gives the one-process steps (epoch 1 cold, epoch 2 warm-started). A batch of k-points
    iterates until its slowest member converges, so other batches stop at other iterations
    within `davidson_tol`: parameters agree to 1e-9, not to the dense solver's 1e-10."""
    bundle = small_bundle(tmp_path, max_num_epochs=2, **TINY)
    davidson = [f"data.bundle={bundle}", *RUN, "hamiltonian.eigensolver=davidson"]
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    run_app(single, davidson)
    _train([*davidson, *DDP, f"hydra.run.dir={ddp}"], tmp_path)
    _assert_same_parameters(single / "final_PPmodel.pth", ddp / "final_PPmodel.pth", 1e-9, 1e-9)
    expected = [v for _, v in cost_rows(single / "final_training_cost.dat")]
    assert _costs(ddp) == pytest.approx(expected, rel=1e-10)

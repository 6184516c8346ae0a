"""Resume after an interrupt continues the uninterrupted run bit for bit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from training_support import QUIET, REPO, run_app, small_bundle

EPOCHS = 7
# the warm-started Davidson solver at a cutoff where it runs (dimension 89) and a pre-fit long
# enough for steps small enough to warm-start the solves: the eigenvectors, and the cached
# Gauss–Newton linearisation taken with them, are part of the resumed state
RUN = ["trainer.max_epochs=7", "trainer.check_val_every_n_epoch=3", "logger=none"]
ITERATIVE = ["hamiltonian.eigensolver=davidson", "init.num_epochs=30"]


def _interrupted_then_resumed(run_dir: Path, overrides: list[str], epoch: int) -> None:
    stop = [
        "+callbacks.stop._target_=training_support.InterruptAt",
        f"+callbacks.stop.epoch={epoch}",
    ]
    with pytest.raises(KeyboardInterrupt):
        run_app(run_dir, [*overrides, *stop])
    run_app(run_dir, [*overrides, "resume=true"])


def _network(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "final_PPmodel.pth", weights_only=True)


@pytest.mark.slow
def test_default_recipe_resumes_bit_for_bit(tmp_path: Path) -> None:
    bundle = small_bundle(tmp_path, max_ke=3.0, n_k=4)
    overrides = [f"data.bundle={bundle}", *RUN, *ITERATIVE]
    run_app(tmp_path / "straight", overrides)
    _interrupted_then_resumed(tmp_path / "resumed", overrides, epoch=6)
    cost = "final_training_cost.dat"
    straight = (tmp_path / "straight" / cost).read_text()
    assert len(straight.splitlines()) == EPOCHS
    assert (tmp_path / "resumed" / cost).read_text() == straight
    resumed = _network(tmp_path / "resumed")
    for name, tensor in _network(tmp_path / "straight").items():
        assert torch.equal(resumed[name], tensor), name


def _train(run_dir: Path, overrides: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": f"{REPO}:{REPO / 'tests'}"}
    return subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *QUIET, *overrides, f"hydra.run.dir={run_dir}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _signal_when(job: subprocess.Popen, marker: Path, signum: int) -> str:
    """Send `signum` to `job` once `marker` exists; its stderr after it ended."""
    deadline = time.monotonic() + 300
    while not marker.is_file() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert job.poll() is None, job.communicate()[1][-3000:]
    job.send_signal(signum)
    _, err = job.communicate(timeout=300)
    return err


@pytest.mark.slow
def test_sigterm_keeps_checkpoints_and_writes_the_final_files(tmp_path: Path) -> None:
    bundle = small_bundle(tmp_path, max_num_epochs=1000, plotEvery=1000)
    run_dir = tmp_path / "run"
    job = _train(run_dir, [f"data.bundle={bundle}", "init.num_epochs=0", "logger=none"])
    err = _signal_when(job, run_dir / "checkpoints" / "last.ckpt", signal.SIGTERM)
    assert job.returncode == 128 + signal.SIGTERM
    lines = err.strip().splitlines()
    assert lines[-1].startswith(f"error: interrupted (SIGTERM); the checkpoints in {run_dir}")
    assert lines[-1].endswith("resume=true to continue")
    names = {p.name for p in run_dir.iterdir()}
    for prefix in ("final", "best"):
        for name in ("PPmodel.pth", "BS_sys0.dat", "plotBS.png", "qSpace_pot.dat", "pot_Cd.dat"):
            assert f"{prefix}_{name}" in names, (prefix, name, sorted(names))
    assert not list(run_dir.rglob("*.tmp"))
    log = (run_dir / "train.log").read_text()
    assert "interrupted: final_* files hold the state after epoch" in log


@pytest.mark.slow
def test_sigterm_before_the_first_checkpoint_says_nothing_can_be_resumed(tmp_path: Path) -> None:
    bundle = small_bundle(tmp_path, init_Zunger_num_epochs=10**6)
    run_dir = tmp_path / "run"
    job = _train(run_dir, [f"data.bundle={bundle}", "logger=none"])
    err = _signal_when(job, run_dir / "config_resolved.yaml", signal.SIGHUP)
    assert job.returncode == 128 + signal.SIGHUP
    assert err.strip().splitlines()[-1] == (
        "error: interrupted (SIGHUP) before the first checkpoint: nothing can be resumed; "
        "rerun from the start"
    )
    assert not list(run_dir.glob("final_*"))


def test_a_run_removes_the_temporary_files_of_a_killed_write(tmp_path: Path) -> None:
    bundle = small_bundle(tmp_path)
    run_dir = tmp_path / "run"
    stale = [run_dir / ".final_PPmodel.pth.k2j3.tmp", run_dir / "checkpoints" / ".last.ckpt.a1.tmp"]
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half")
    kept = run_dir / "notes.tmp"
    kept.write_text("a user's file")
    run_app(run_dir, [f"data.bundle={bundle}", "trainer.max_epochs=0", "init.num_epochs=0"])
    assert not any(path.exists() for path in stale) and kept.is_file()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Per recipe, the bundle and one uninterrupted run (made when first asked for)."""
    return {"root": tmp_path_factory.mktemp("matrix")}


def _straight(cache: dict[str, Path], recipe: str) -> tuple[Path, list[str]]:
    root = cache["root"]
    if "bundle" not in cache:
        cache["bundle"] = small_bundle(root, max_ke=3.0, n_k=4)
    overrides = [f"data.bundle={cache['bundle']}", *RUN, *ITERATIVE, f"recipe={recipe}"]
    if recipe not in cache:
        run_app(root / recipe, overrides)
        cache[recipe] = root / recipe
    return cache[recipe], overrides


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["gauss_newton", "lbfgs", "legacy"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("done", [1, 2, 5])
def test_a_signal_after_any_epoch_of_any_recipe_resumes_bit_for_bit(
    uninterrupted: dict[str, Path], tmp_path: Path, recipe: str, signum: int, done: int
) -> None:
    """A real signal within the step of epoch `done` + 1 (after `done` checkpointed epochs),
    then `resume=true`: the cost file and the network equal the uninterrupted run's."""
    straight, overrides = _straight(uninterrupted, recipe)
    run_dir = tmp_path / "run"
    job = _train(
        run_dir,
        [
            *overrides,
            "+callbacks.signal._target_=training_support.SignalAt",
            f"+callbacks.signal.epoch={done + 1}",
            f"+callbacks.signal.signum={int(signum)}",
        ],
    )
    _, err = job.communicate(timeout=600)
    assert job.returncode == 128 + signum, err[-3000:]
    assert len((run_dir / "final_training_cost.dat").read_text().splitlines()) == done + 1
    run_app(run_dir, [*overrides, "resume=true"])
    cost = "final_training_cost.dat"
    assert (run_dir / cost).read_text() == (straight / cost).read_text()
    resumed = _network(run_dir)
    for name, tensor in _network(straight).items():
        assert torch.equal(resumed[name], tensor), name

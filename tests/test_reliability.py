"""Reliability of a run: one writer per run directory (and a killed run does not block its
resume), the non-finite guard, no path outside the run directory, safe checkpoint loads,
and one line for every refusal or interrupt."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
from training_support import CDSE, QUIET, REPO, run_app, small_bundle

from dpp.app import cli
from dpp.errors import InputError, RunStopped
from dpp.io import load_bundle
from dpp.io.system import ELEMENTS, read_system
from dpp.mc.acceptance import metropolis_accept
from dpp.models import build_model
from dpp.physics import build_hamiltonian
from dpp.runs.lock import LOCK_NAME, RunLock
from dpp.runs.signals import Interrupted
from dpp.training.checkpoint_io import SafeCheckpointIO
from dpp.training.optimizers import load_optimizer_state

NO_WORK = ["trainer.max_epochs=0", "init.num_epochs=0", "logger=none"]
HOLDER = """
import sys, time
from pathlib import Path
from dpp.runs.lock import RunLock
with RunLock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(120)
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(REPO)}


def test_second_run_into_a_held_run_dir_is_refused_naming_the_holder(tmp_path: Path) -> None:
    bundle = small_bundle(tmp_path, n_k=5)
    run_dir = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(run_dir)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(InputError, match=f"process {holder.pid} on ") as info:
            run_app(run_dir, [f"data.bundle={bundle}", *NO_WORK])
        assert info.value.key == "hydra.run.dir"
        assert "another dpp run is writing into this run directory" in str(info.value)
        assert not list(run_dir.glob("initZunger_*"))
    finally:
        holder.kill()
        holder.wait()
    with RunLock(run_dir):  # the operating system released the lock of the dead holder
        pass


@pytest.mark.slow
def test_a_killed_run_does_not_block_its_resume(tmp_path: Path) -> None:
    bundle = small_bundle(tmp_path, n_k=5, max_num_epochs=500, plotEvery=1000)
    run_dir = tmp_path / "run"
    overrides = [f"data.bundle={bundle}", "init.num_epochs=0", "logger=none", *QUIET]
    last = run_dir / "checkpoints" / "last.ckpt"
    job = subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *overrides, f"hydra.run.dir={run_dir}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(),
    )
    try:
        deadline = time.monotonic() + 90
        while not last.is_file() and job.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert last.is_file(), "no checkpoint before the kill"
        time.sleep(0.5)
    finally:
        job.send_signal(signal.SIGKILL)
        job.wait()
    assert job.returncode == -signal.SIGKILL and (run_dir / LOCK_NAME).is_file()
    epoch = torch.load(last, map_location="cpu", weights_only=True)["epoch"]
    loss = run_app(run_dir, [*overrides, "resume=true", f"trainer.max_epochs={epoch + 2}"])
    assert math.isfinite(loss) and (run_dir / "final_PPmodel.pth").is_file()


def initial_network() -> dict[str, torch.Tensor]:
    """The state_dict of the embedded example's network as a run with seed 0 and no
    pre-fit starts it."""
    return build_model(
        "Net_celu_HeInit_decayGaussian",
        [20, 20, 20],
        2,
        gaussian_std=2.0,
        generator=torch.Generator().manual_seed(0),
    ).state_dict()


def test_non_finite_loss_stops_with_the_last_finite_state(tmp_path: Path) -> None:
    """A band weight of 1e306 overflows the loss of epoch 1: the run stops naming the system,
    and final_PPmodel.pth holds the finite state before that step (the initial network)."""
    bundle = small_bundle(tmp_path, n_k=5)
    (bundle / "bandWeights_0.par").write_text("1e306\n" + "1\n" * 15)
    run_dir = tmp_path / "run"
    with pytest.raises(RunStopped, match=r"epoch 1: the band loss of system 0 \(CdSe\)"):
        run_app(run_dir, [f"data.bundle={bundle}", "trainer.max_epochs=3", *NO_WORK[1:]])
    final = torch.load(run_dir / "final_PPmodel.pth", map_location="cpu", weights_only=True)
    initial = initial_network()
    for name, tensor in final.items():
        assert bool(torch.isfinite(tensor).all()), name
        torch.testing.assert_close(tensor, initial[name].to(tensor.dtype), msg=name)


def test_overflowing_parameters_stop_with_the_last_finite_state(tmp_path: Path) -> None:
    """A learning rate of 1e300 gives finite parameters whose H(k) overflows at epoch 2: no
    solver sees it, the band loss is named, and final_PPmodel.pth is the state whose loss was
    last finite (epoch 1: the initial network)."""
    bundle = small_bundle(tmp_path, n_k=5)
    run_dir = tmp_path / "run"
    overrides = ["recipe=legacy", "learning_rate=1e300", "trainer.max_epochs=3", *NO_WORK[1:]]
    with pytest.raises(RunStopped, match=r"epoch 2: the band loss of system 0.*epoch 1"):
        run_app(run_dir, [f"data.bundle={bundle}", *overrides])
    final = torch.load(run_dir / "final_PPmodel.pth", map_location="cpu", weights_only=True)
    initial = initial_network()
    for name, tensor in final.items():
        torch.testing.assert_close(tensor, initial[name].to(tensor.dtype), msg=name)


def test_non_finite_hamiltonian_gives_nan_bands_and_rejected_moves() -> None:
    hamiltonian = build_hamiltonian(load_bundle(CDSE))
    with torch.no_grad():
        hamiltonian.pp_fixed[0, 0] = math.inf
    bands = hamiltonian.bands(0, [0, 1])
    assert bands.shape == (2, 16) and bool(torch.isnan(bands).all())
    assert not metropolis_accept(math.nan, 1.0, 1.0, beta=1.0, u=0.0)


@pytest.mark.parametrize(
    "symbol", ["Q/../../../outside/x", "../Cd", "Cd/x", "Cd.par", "X", "cd", "Cd-1", "Cd:2"]
)
def test_species_symbols_cannot_leave_the_run_directory(tmp_path: Path, symbol: str) -> None:
    path = tmp_path / "system_0.par"
    path.write_text(f"scale = 10\ncell\n1 0 0\n0 1 0\n0 0 1\natoms\n{symbol} 0 0 0\n")
    with pytest.raises(InputError, match="line 7: not a chemical symbol"):
        read_system(path)


def test_the_path_check_runs_before_any_file_is_written(tmp_path: Path) -> None:
    bundle = small_bundle(tmp_path, n_k=5)
    escape = tmp_path / "escaped"
    lines = (bundle / "system_0.par").read_text().splitlines()
    lines[-1] = f"Se/../../../../../../{escape.relative_to('/')} -0.125 -0.125 -0.125"
    (bundle / "system_0.par").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match="chemical symbol"):
        run_app(tmp_path / "run", [f"data.bundle={bundle}", *NO_WORK])
    assert not list(tmp_path.glob("escaped*")) and not (tmp_path / "run").exists()


@pytest.mark.parametrize("symbol", ["Cd", "Se", "In", "Ga", "As", "P", "Cs", "Pb", "I", "Cd_2"])
def test_shipped_and_suffixed_symbols_are_accepted(tmp_path: Path, symbol: str) -> None:
    path = tmp_path / "system_0.par"
    path.write_text(f"scale = 10\ncell\n1 0 0\n0 1 0\n0 0 1\natoms\n{symbol} 0 0 0\n")
    assert read_system(path).symbols == (symbol,)
    assert {"H", "Og"} <= ELEMENTS and "X" not in ELEMENTS


class Marker:
    """Loading this pickle unsafely creates the file `path`."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple:
        return (open, (self.path, "w"))


def test_crafted_last_ckpt_runs_no_code_even_when_torch_is_told_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    marker = tmp_path / "MARKER"
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    torch.save({"state_dict": Marker(marker)}, last)
    with warnings.catch_warnings():  # control: a plain torch.load now executes the pickle
        warnings.simplefilter("ignore")
        torch.load(last)
    assert marker.is_file()
    marker.unlink()
    with pytest.raises(InputError, match="would import io.open") as info:
        SafeCheckpointIO().load_checkpoint(last)
    assert "weights_only=False" not in str(info.value) and not marker.exists()
    bundle = small_bundle(tmp_path, n_k=5)
    with pytest.raises(InputError, match="last.ckpt: cannot read checkpoint") as info:
        run_app(tmp_path / "run", [f"data.bundle={bundle}", "resume=true", *NO_WORK[1:]])
    assert "\n" not in str(info.value) and not marker.exists()


def test_an_optimiser_state_of_other_shapes_is_skipped_with_a_warning(tmp_path: Path) -> None:
    small = torch.nn.Linear(2, 3)
    saved = torch.optim.Adam(small.parameters())
    small(torch.ones(1, 2)).sum().backward()
    saved.step()
    torch.save(saved.state_dict(), tmp_path / "init_AdamState.pth")
    other = torch.optim.Adam(torch.nn.Linear(4, 3).parameters(), lr=0.5)
    with pytest.warns(UserWarning, match="optimiser state skipped"):
        assert not load_optimizer_state(other, tmp_path / "init_AdamState.pth")
    assert other.param_groups[0]["lr"] == 0.5


def _task_outcome(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, error: BaseException
) -> tuple[int, str]:
    def fail(cfg: object, prepared: object = None, lock: object = None) -> float:
        raise error

    monkeypatch.setattr("dpp.app.run.run", fail)
    with pytest.raises(SystemExit) as info:
        cli._task(None)
    return info.value.code, capsys.readouterr().err


NOTHING = "before the first checkpoint: nothing can be resumed"


def _lightning_exit() -> SystemExit:
    """What Lightning raises after its Ctrl-C shutdown: exit 1 inside the interrupt."""
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            sys.exit(1)
    except SystemExit as stop:
        return stop


@pytest.mark.parametrize(
    ("error", "code", "start"),
    [
        (RunStopped("training stopped at epoch 3"), 2, "error: training stopped at epoch 3"),
        (InputError("x.par", "bad", line=2, expected="1", found="2"), 2, "error: x.par, line 2"),
        (KeyboardInterrupt(), 130, f"error: interrupted (SIGINT) {NOTHING}"),
        (_lightning_exit(), 130, f"error: interrupted (SIGINT) {NOTHING}"),
        (Interrupted(signal.SIGTERM), 143, f"error: interrupted (SIGTERM) {NOTHING}"),
        (Interrupted(signal.SIGHUP), 129, f"error: interrupted (SIGHUP) {NOTHING}"),
    ],
    ids=["stopped", "input", "ctrl_c_monte_carlo", "ctrl_c_training", "sigterm", "sighup"],
)
def test_every_stop_is_one_line_on_stderr(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    error: BaseException,
    code: int,
    start: str,
) -> None:
    exit_code, err = _task_outcome(monkeypatch, capsys, error)
    assert exit_code == code and err.startswith(start) and err.count("\n") == 1


@pytest.mark.slow
def test_a_documented_resume_does_not_warn_about_its_checkpoint_folder(
    tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    bundle = small_bundle(tmp_path, n_k=3, max_ke=1.5, max_num_epochs=1, init_Zunger_num_epochs=0)
    run_dir = tmp_path / "run"
    overrides = [f"data.bundle={bundle}", "logger=none", *QUIET]
    run_app(run_dir, overrides)
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    recwarn.clear()
    run_app(run_dir, [*overrides, "resume=true", "trainer.max_epochs=2"])
    assert not [w for w in recwarn if "exists and is not empty" in str(w.message)]

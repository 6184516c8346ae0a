"""End-to-end runs of train.py / evaluate.py on tiny bundles."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from training_support import QUIET, REPO, cost_rows, run_app, small_bundle

from dpp.io.convert import convert
from dpp.training.callbacks import epoch_outputs

EPOCHS = 4
RUN = ["trainer.max_epochs=4", "trainer.check_val_every_n_epoch=2"]


def _python(script: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """`python train.py data.bundle=<existing bundle>` on a tiny CdSe copy."""
    tmp = tmp_path_factory.mktemp("trained")
    bundle = small_bundle(tmp)
    run_dir = tmp / "run"
    result = _python(
        "train.py", [f"data.bundle={bundle}", *QUIET, *RUN, f"hydra.run.dir={run_dir}"], tmp
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return bundle, run_dir


def test_existing_bundle_run_writes_the_original_files(trained):
    _, run_dir = trained
    names = {p.name for p in run_dir.iterdir()}
    for name in (
        "oldFunc_plotBS.png",
        "oldFunc_BS_sys0.dat",
        "initZunger_plotBS.png",
        "initZunger_BS_sys0.dat",
        "initZunger_pot_Cd.dat",
        "initZunger_PPmodel.pth",
        "initZunger_qSpace_pot.dat",
        "basisStates_0.dat",
        "epoch_2_PPmodel.pth",
        "epoch_2_AdamState.pth",
        "epoch_2_plotBS.png",
        "epoch_2_plotPP.png",
        "epoch_2_BS_sys0.dat",
        "epoch_1_gradients.dat",
        "epoch_4_params.dat",
        "final_training_cost.dat",
        "final_validation_cost.dat",
        "final_pot_Se.dat",
        "final_qSpace_pot.dat",
        "final_train_cost.png",
        "run_info.json",
        "config_resolved.yaml",
    ):
        assert name in names, name
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert [x for x, _ in cost_rows(run_dir / "final_training_cost.dat")] == [1, 2, 3, 4]
    assert [x for x, _ in cost_rows(run_dir / "final_validation_cost.dat")] == [2, 4]
    info = json.loads((run_dir / "run_info.json").read_text())
    assert info["basis_search"] == "complete" and info["species"] == ["Cd", "Se"]
    assert "pre-fit" in info["initialisation"]


def test_tensorboard_events_hold_scalars_and_images(trained):
    _, run_dir = trained
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    for tag in ("train/loss", "train/loss_sys0", "lr", "grad_norm/total", "val/loss"):
        assert tag in scalars, (tag, scalars)
    assert len(events.Scalars("train/loss")) == EPOCHS
    images = set(events.Tags()["images"])
    assert {"bands", "potentials"} <= images, images


def test_evaluate_trained_checkpoint(trained, tmp_path: Path):
    bundle, run_dir = trained
    out = tmp_path / "eval"
    result = _python(
        "evaluate.py",
        [
            f"data.bundle={bundle}",
            f"checkpoint={run_dir / 'final_PPmodel.pth'}",
            "workflow.k_chunk=2",
            f"hydra.run.dir={out}",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = (out / "bands_sys0.dat").read_text().splitlines()
    assert len(rows) == 5 and len(rows[0].split()) == 17
    assert (out / "bands_sys0.png").is_file()
    assert "weighted MSE" in (out / "evaluate.log").read_text()


def test_convert_and_rerun_is_the_same_run(trained, tmp_path: Path):
    bundle, run_dir = trained
    conf = tmp_path / "conf" / "experiment"
    conf.mkdir(parents=True)
    (conf / "converted.yaml").write_text(convert(bundle / "NN_config.par"))
    run_app(
        tmp_path / "run",
        [f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "experiment=converted", *RUN],
        extra_dirs=(tmp_path / "conf",),
    )
    assert cost_rows(tmp_path / "run" / "final_training_cost.dat") == cost_rows(
        run_dir / "final_training_cost.dat"
    )


def test_resume_after_interruption(trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    bundle, run_dir = trained
    original = epoch_outputs.EpochOutputs.on_train_epoch_end

    def interrupt(self, trainer, module):
        original(self, trainer, module)
        if trainer.current_epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(epoch_outputs.EpochOutputs, "on_train_epoch_end", interrupt)
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(SystemExit):
        run_app(tmp_path / "run", [f"data.bundle={bundle}", *RUN])
    signal.signal(signal.SIGINT, handler)
    assert [x for x, _ in cost_rows(tmp_path / "run" / "final_training_cost.dat")] == [1, 2]
    monkeypatch.setattr(epoch_outputs.EpochOutputs, "on_train_epoch_end", original)
    run_app(tmp_path / "run", [f"data.bundle={bundle}", *RUN, "resume=true"])
    resumed = cost_rows(tmp_path / "run" / "final_training_cost.dat")
    straight = cost_rows(run_dir / "final_training_cost.dat")
    assert [x for x, _ in resumed] == [1, 2, 3, 4]
    assert [v for _, v in resumed] == pytest.approx([v for _, v in straight], rel=1e-10)


def test_options_lbfgs_preadjust_perturbation_analytic(tmp_path: Path):
    bundle = small_bundle(
        tmp_path,
        PPmodel="ZeroFunction",
        init_Zunger_num_epochs=0,
        pre_adjust_moves=2,
        perturbEvery=1,
        optimizer="lbfgs",
        optimizer_lr=0.01,
    )
    final = run_app(
        tmp_path / "run",
        [
            f"data.bundle={bundle}",
            "trainer.max_epochs=2",
            "trainer.check_val_every_n_epoch=1",
            "optimizer.max_iter=2",
            "callbacks.epoch_log.gradients=true",
            "trainer.profiler=simple",
            "callbacks.epoch_log.memory=true",
            "logger=none",
        ],
    )
    rows = cost_rows(tmp_path / "run" / "final_training_cost.dat")
    assert [x for x, _ in rows] == [-3, -2, 1, 2]
    assert (tmp_path / "run" / "preEpoch_1_BS_sys0.dat").is_file()
    assert final == final  # finite, not NaN


@pytest.mark.slow
def test_embedded_default_run(tmp_path: Path):
    result = _python("train.py", [f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "run" / "epoch_20_plotBS.png").is_file()

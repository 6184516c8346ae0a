"""End-to-end runs of train.py / evaluate.py on tiny bundles."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
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
    assert "first-layer knots spread over (0, 3.46) 1/Bohr" in info["initialisation"]


def test_tensorboard_scalars_and_images_share_the_epoch_axis(trained):
    _, run_dir = trained
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    # the default recipe (Gauss–Newton) logs its damping where first-order optimisers log lr
    for tag in ("train/loss", "train/loss_sys0", "damping", "grad_norm/total", "val/loss"):
        assert tag in scalars, (tag, scalars)
    assert "lr" not in scalars
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3, 4]
    validation = [e.step for e in events.Scalars("val/loss")]
    assert validation == [2, 4]
    images = set(events.Tags()["images"])
    assert {"bands", "potentials"} <= images, images
    band_steps = [e.step for e in events.Images("bands")]
    assert band_steps == [0, *validation]  # initZunger, then every validation epoch
    assert (run_dir / "tensorboard" / "hparams.yaml").read_text().count("lr") >= 1


def test_convergence_diagnostics_in_log_and_tensorboard(trained):
    bundle, run_dir = trained
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    rms = events.Scalars("diagnostics/sys0/rms")
    assert [e.step for e in rms] == [2, 4]
    calc = np.loadtxt(run_dir / "epoch_4_BS_sys0.dat")[:, 1:]
    reference = np.loadtxt(bundle / "expBandStruct_0.par")[:, 1:]
    assert rms[-1].value == pytest.approx(np.sqrt(np.mean((calc - reference) ** 2)), abs=1e-4)
    band3 = events.Scalars("diagnostics/sys0/rms_band3")[-1].value
    assert band3 == pytest.approx(np.sqrt(np.mean((calc[:, 3] - reference[:, 3]) ** 2)), abs=1e-4)
    assert "system 0 (CdSe): RMS" in (run_dir / "train.log").read_text()


def test_log_has_one_line_per_epoch(trained):
    _, run_dir = trained
    log = (run_dir / "train.log").read_text()
    assert [f"epoch {e}/{EPOCHS}: loss" in log for e in range(1, EPOCHS + 1)] == [True] * EPOCHS
    assert log.count("/4: loss") == EPOCHS
    assert "Tip" not in log and "LeafSpec" not in log


def test_evaluate_a_run_reproduces_its_final_loss(trained, tmp_path: Path):
    _, run_dir = trained
    final = float(re.search(r"final validation loss (\S+)", (run_dir / "train.log").read_text())[1])
    loss = run_app(tmp_path / "eval", [f"run={run_dir}", "state=final"], config_name="evaluate")
    assert loss == pytest.approx(final, rel=1e-9)
    assert (tmp_path / "eval" / "bands_sys0.dat").is_file()


def test_fast_dev_run_and_debug_preset_run_one_batch(tmp_path: Path):
    bundle = small_bundle(tmp_path)
    for name, option in (("flag", "+trainer.fast_dev_run=true"), ("preset", "debug=fast_dev_run")):
        run_app(tmp_path / name, [f"data.bundle={bundle}", "data.kpt_batch_size=2", option])
        assert [x for x, _ in cost_rows(tmp_path / name / "final_training_cost.dat")] == [1]


@pytest.mark.slow
def test_custom_callback_and_csv_logger_from_the_command_line(tmp_path: Path):
    bundle = small_bundle(tmp_path)
    marks = tmp_path / "marks"
    run_app(
        tmp_path / "run",
        [
            f"data.bundle={bundle}",
            "trainer.max_epochs=3",
            "logger=csv",
            "+callbacks.marker._target_=training_support.EpochMarker",
            f"+callbacks.marker.folder={marks}",
        ],
    )
    assert sorted(p.name for p in marks.iterdir()) == ["1", "2", "3"]
    rows = (tmp_path / "run" / "csv" / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    steps = [int(r.split(",")[header.index("step")]) for r in rows[1:]]
    assert {1, 2, 3} <= set(steps) and "train/loss" in header


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


@pytest.mark.slow
def test_convert_and_rerun_is_the_same_run(trained, tmp_path: Path):
    """The converted experiment trains as the bundle does with the original's recipe."""
    bundle, _ = trained
    conf = tmp_path / "conf" / "experiment"
    conf.mkdir(parents=True)
    (conf / "converted.yaml").write_text(convert(bundle / "NN_config.par"))
    run_app(tmp_path / "direct", [f"data.bundle={bundle}", "recipe=legacy", *RUN])
    run_app(
        tmp_path / "run",
        [f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "experiment=converted", *RUN],
        extra_dirs=(tmp_path / "conf",),
    )
    assert cost_rows(tmp_path / "run" / "final_training_cost.dat") == cost_rows(
        tmp_path / "direct" / "final_training_cost.dat"
    )


def test_resume_after_interruption(trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    bundle, run_dir = trained
    original = epoch_outputs.EpochOutputs.on_train_epoch_end

    def interrupt(self, trainer, module):
        original(self, trainer, module)
        if trainer.current_epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(epoch_outputs.EpochOutputs, "on_train_epoch_end", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_app(tmp_path / "run", [f"data.bundle={bundle}", *RUN])
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
            "recipe=lbfgs",
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

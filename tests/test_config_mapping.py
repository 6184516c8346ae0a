"""NN_config.par <-> Hydra config: mapping, precedence and the converter."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf
from training_support import CDSE, compose_cfg, run_app, small_bundle

from dpp.errors import InputError
from dpp.io.config import KEYS
from dpp.io.convert import convert, main
from dpp.training.config import CONF_DIR, NN_TO_HYDRA, nnconfig_from_cfg, resolve_config


def resolved(overrides: list[str], config_dirs: tuple = ()):
    cfg, choices = compose_cfg(overrides)
    return resolve_config(cfg, overrides, choices, config_dirs)


def test_every_key_has_a_documented_place():
    cfg, _ = compose_cfg([])
    assert set(KEYS) - set(NN_TO_HYDRA) == {"mc_bool"}
    for key, path in NN_TO_HYDRA.items():
        if path.startswith("workflow."):
            continue
        assert OmegaConf.select(cfg, path, default="<missing>") != "<missing>", (key, path)
        group = path.split(".")[0]
        files = (CONF_DIR / group).glob("*.yaml") if group != "seed" else [CONF_DIR / "train.yaml"]
        assert any(key in f.read_text() for f in files), f"{key} undocumented in conf/{group}"


def test_bundle_values_fill_config_and_cli_wins(tmp_path: Path):
    bundle = small_bundle(tmp_path, optimizer_lr=0.02, basis_search="legacy")
    cfg = resolved([f"data.bundle={bundle}", "trainer.max_epochs=7"])
    assert cfg.optimizer.lr == 0.02  # NN_config.par beats the group default
    assert cfg.hamiltonian.basis_search == "legacy"  # physics switch as an NN_config key
    assert cfg.trainer.max_epochs == 7  # command line beats NN_config.par
    assert cfg.model.name == "Net_celu_HeInit_decayGaussian"
    config = nnconfig_from_cfg(cfg)
    assert config.max_num_epochs == 7 and config.optimizer_lr == 0.02


def test_group_choice_on_command_line_beats_bundle(tmp_path: Path):
    bundle = small_bundle(tmp_path, optimizer="adam")
    cfg = resolved([f"data.bundle={bundle}", "optimizer=sgd"])
    assert cfg.optimizer.name == "sgd"


def test_embedded_example_uses_quick_experiment():
    cfg = resolved([])
    assert Path(cfg.data.bundle) == CDSE
    assert cfg.trainer.max_epochs == 20 and cfg.init.num_epochs == 200
    assert cfg.model.hidden_layers == [20, 20, 20]


def test_monte_carlo_selected_by_mc_bool(tmp_path: Path):
    if not (CONF_DIR / "workflow" / "monte_carlo.yaml").is_file():
        pytest.skip("workflow/monte_carlo.yaml not written yet")
    bundle = small_bundle(
        tmp_path, max_num_epochs=0, mc_bool=1, mc_iter=5, mc_percentage=0.1, mc_beta=10
    )
    cfg = resolved([f"data.bundle={bundle}"])
    assert cfg.workflow.name == "monte_carlo"
    assert cfg.workflow.iterations == 5 and cfg.workflow.beta == 10


def test_missing_bundle_is_an_input_error(tmp_path: Path):
    with pytest.raises(InputError, match="data.bundle"):
        resolved([f"data.bundle={tmp_path}"])


def test_converter_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture):
    bundle = small_bundle(tmp_path, optimizer_lr=0.03)
    assert main([str(bundle / "NN_config.par")]) == 0
    text = capsys.readouterr().out
    assert text == convert(bundle / "NN_config.par")
    (tmp_path / "conf" / "experiment").mkdir(parents=True)
    (tmp_path / "conf" / "experiment" / "converted.yaml").write_text(text)
    direct = resolved([f"data.bundle={bundle}"])
    # the converted file alone (its data.bundle) gives the same config
    cfg, choices = compose_cfg_with_dir(tmp_path / "conf", ["experiment=converted"])
    via_file = resolve_config(cfg, ["experiment=converted"], choices, [tmp_path / "conf"])
    assert OmegaConf.to_container(via_file) == OmegaConf.to_container(direct)


def compose_cfg_with_dir(extra: Path, overrides: list[str]):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[*overrides, f"hydra.searchpath=[file://{extra}]"],
            return_hydra_config=True,
        )
    return cfg, OmegaConf.to_container(cfg.hydra.runtime.choices)


def test_converter_reports_bad_key(tmp_path: Path, capsys: pytest.CaptureFixture):
    bundle = small_bundle(tmp_path)
    with open(bundle / "NN_config.par", "a") as stream:
        stream.write("optimiser_lr = 0.1\n")
    assert main([str(bundle / "NN_config.par")]) == 2
    assert "optimizer_lr" in capsys.readouterr().err


def test_monte_carlo_workflow_on_a_gradient_bundle(tmp_path: Path):
    """workflow=monte_carlo on a bundle whose NN_config trains by gradient (max_num_epochs > 0)."""
    folder = small_bundle(tmp_path, n_k=3, max_ke=1.5)
    run_dir = tmp_path / "mc"
    best = run_app(
        run_dir,
        [
            f"data.bundle={folder}",
            "workflow=monte_carlo",
            "model.name=ZeroFunction",
            "workflow.iterations=3",
            "workflow.percentage=0.01",
            "workflow.beta=10",
            "workflow.progress=false",
        ],
    )
    assert best > 0
    assert (run_dir / "final_mc_cost.dat").is_file()

"""NN_config.par composed into the Hydra config: precedence, the converter, honest printing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from training_support import CDSE, REPO, compose_cfg, run_app, small_bundle

from dpp.app.compose import compose_config, config_dir
from dpp.app.origins import origins_of
from dpp.app.run import run_settings
from dpp.app.settings import build, partial_of
from dpp.errors import InputError
from dpp.io.convert import convert, main
from dpp.io.nnconfig import KEYS, read_nn_config
from dpp.mc.settings import resolve_engine
from dpp.workflows.arguments import call_checked


def settings_of(overrides: list[str]):
    cfg, _, prepared = compose_cfg(overrides)
    origins = origins_of(overrides, None, prepared.nn_config, prepared.translation)
    return cfg, run_settings(cfg, origins), origins


def test_every_key_has_a_documented_place():
    cfg = compose_config("train", [])
    for key in KEYS.values():
        if key.path is None:
            continue
        parent, _, name = key.path.rpartition(".")
        node = OmegaConf.select(cfg, parent) if parent else cfg
        assert node is not None and name in list(node.keys()), key.path
        group = key.path.split(".")[0]
        files = list((config_dir() / group).rglob("*.yaml")) or [config_dir() / "train.yaml"]
        assert any(key.name in f.read_text() for f in files), f"{key.name} undocumented in {group}"


def test_bundle_values_fill_config_and_command_line_wins(tmp_path: Path):
    bundle = small_bundle(tmp_path, optimizer_lr=0.02, basis_search="legacy")
    overrides = [f"data.bundle={bundle}", "trainer.max_epochs=7", "recipe=legacy"]
    cfg, settings, _ = settings_of(overrides)
    assert cfg.optimizer.lr == 0.02  # NN_config.par beats the group default
    assert settings.physics.basis_search == "legacy"  # physics switch as an NN_config key
    assert cfg.trainer.max_epochs == 7  # command line beats NN_config.par
    assert settings.model.name == "Net_celu_HeInit_decayGaussian"


@pytest.mark.parametrize(
    ("key", "file_value", "override", "field", "expected"),
    [
        ("legacy_fifth_param", "long_range", "data.legacy_fifth_param=strain", "data", "strain"),
        ("allow_left_handed", "1", "data.allow_left_handed=false", "data", False),
        ("SObool", "1", "hamiltonian.spin_orbit=false", "physics", False),
        ("separateKptGrad", "0", "data.separate_kpt_grad=true", "data", True),
        ("seed", "5", "seed=0", None, 0),
    ],
)
def test_command_line_beats_nn_config_even_at_the_default(
    tmp_path: Path, key: str, file_value: str, override: str, field: str | None, expected: object
):
    """Regression: a command-line value equal to the default used to lose to NN_config.par."""
    bundle = small_bundle(tmp_path, **{key: file_value})
    _, settings, _ = settings_of([f"data.bundle={bundle}", override])
    name = override.split("=")[0].rsplit(".", 1)[-1]
    holder = settings if field is None else getattr(settings, field)
    value = getattr(holder, {"spin_orbit": "spin_orbit"}.get(name, name))
    assert value == expected


def test_run_info_records_the_winning_fifth_slot(tmp_path: Path):
    bundle = small_bundle(tmp_path, legacy_fifth_param="long_range", max_num_epochs=0)
    run_app(tmp_path / "run", [f"data.bundle={bundle}", "data.legacy_fifth_param=strain"])
    info = json.loads((tmp_path / "run" / "run_info.json").read_text())
    assert info["legacy_switches"]["legacy_fifth_param"] == "strain"


def test_group_choice_on_command_line_beats_bundle(tmp_path: Path):
    bundle = small_bundle(tmp_path, optimizer="adam", optimizer_lr=0.03)
    cfg, _, _ = settings_of([f"data.bundle={bundle}", "optimizer=sgd"])
    assert cfg.optimizer._target_ == "torch.optim.SGD" and cfg.optimizer.lr == 0.03


@pytest.mark.slow
def test_cfg_job_prints_what_runs():
    """`python train.py --cfg job` on the embedded example shows its real lr and epochs: the
    default recipe's L-BFGS, or NN_config's Adam at optimizer_lr with recipe=legacy."""
    printed = {}
    for recipe in ("lbfgs", "legacy"):
        result = subprocess.run(
            [sys.executable, str(REPO / "train.py"), "--cfg", "job", f"recipe={recipe}"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        printed[recipe] = OmegaConf.create(result.stdout)
    lbfgs, legacy = printed["lbfgs"], printed["legacy"]
    assert lbfgs.optimizer._target_ == "torch.optim.LBFGS" and lbfgs.optimizer.lr == 1.0
    assert legacy.optimizer._target_ == "torch.optim.Adam"
    assert OmegaConf.select(legacy, "optimizer.lr") == 0.005 == legacy.learning_rate
    assert lbfgs.trainer.max_epochs == 20
    assert lbfgs.init.num_epochs == 200 and lbfgs.model.name == "Net_celu_HeInit_decayGaussian"


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("init_Zunger_plotEvery", "0", ">= 1 or -1"),  # PrefitSettings
        ("mc_perturb_mode", "0", "1 ... 7"),  # MonteCarloSettings
    ],
)
def test_settings_rules_name_the_nn_config_line(tmp_path: Path, key, value, expected):
    """Rules of the settings classes are checked there only, and still name NN_config.par,
    the line and the key of the value."""
    extra = {"max_num_epochs": 0, "mc_bool": 1} if key.startswith("mc_") else {}
    bundle = small_bundle(tmp_path, **extra, **{key: value})
    config = read_nn_config(bundle / "NN_config.par")  # the reader leaves the rule alone
    line = config.lines[key]
    with pytest.raises(InputError) as info:
        cfg, settings, origins = settings_of([f"data.bundle={bundle}"])
        build(cfg, "mc", origins)
    error = info.value
    assert Path(error.file).name == "NN_config.par" and error.line == line and error.key == key
    assert error.expected == expected and error.found == value


@pytest.mark.parametrize(
    ("nn_keys", "overrides", "optimizer", "kept"),
    [
        ({"optimizer": "sgd", "adam_beta1": 0.8}, ["recipe=legacy"], "SGD", {"momentum": 0.0}),
        ({"adam_beta1": 0.8}, ["recipe=legacy", "optimizer=sgd"], "SGD", {"momentum": 0.0}),
        ({"sgd_momentum": 0.5}, ["recipe=legacy", "optimizer=sgd"], "SGD", {"momentum": 0.5}),
        ({"sgd_momentum": 0.5}, ["recipe=legacy"], "Adam", {"betas": [0.9, 0.999]}),
        ({"sgd_momentum": 0.5, "adam_beta1": 0.8}, [], "FunctionSpaceGaussNewton", {}),
        ({"sgd_momentum": 0.5, "adam_beta1": 0.8}, ["recipe=lbfgs"], "LBFGS", {}),
    ],
)
def test_optimizer_takes_the_nn_config_keys_it_accepts(
    tmp_path: Path, nn_keys, overrides, optimizer, kept
):
    """NN_config's optimiser keys reach whichever optimiser the recipe, experiment or command
    line chooses; the ones it does not take are dropped when it is built."""
    bundle = small_bundle(tmp_path, **nn_keys)
    cfg, _, origins = settings_of([f"data.bundle={bundle}", *overrides])
    factory = partial_of(cfg, "optimizer", origins)
    assert factory.func.__name__ == optimizer
    for name in ("betas", "momentum"):
        assert factory.keywords.get(name) == kept.get(name)
    call_checked(factory, "optimizer", origins, [torch.zeros(2, requires_grad=True)])


@pytest.mark.parametrize(
    ("overrides", "optimizer", "lr", "spread"),
    [
        ([], "Adam", 0.01, True),
        (["recipe=legacy"], "SGD", 0.2, False),
        (["init.optimizer.lr=0.05", "init.spread_knots=false"], "Adam", 0.05, False),
    ],
)
def test_prefit_of_each_recipe(tmp_path: Path, overrides, optimizer, lr, spread):
    """The default recipe spreads the first layer's knots and pre-fits with Adam at lr 0.01
    whatever init_Zunger_optimizer(_lr) say; recipe=legacy keeps the original's pre-fit; the
    command line beats both."""
    bundle = small_bundle(tmp_path, init_Zunger_optimizer="sgd", init_Zunger_optimizer_lr=0.2)
    _, settings, _ = settings_of([f"data.bundle={bundle}", *overrides])
    factory = settings.init.optimizer
    assert factory.func.__name__ == optimizer and factory.keywords["lr"] == lr
    assert settings.init.spread_knots is spread


def test_monte_carlo_selected_by_mc_bool(tmp_path: Path):
    bundle = small_bundle(
        tmp_path, max_num_epochs=0, mc_bool=1, mc_iter=5, mc_percentage=0.1, mc_beta=10
    )
    cfg, _, _ = settings_of([f"data.bundle={bundle}"])
    assert cfg.workflow.name == "monte_carlo"
    assert cfg.mc.iterations == 5 and cfg.mc.beta == 10


def test_monte_carlo_replica_workers_follow_num_threads(tmp_path: Path, monkeypatch):
    """Regression: replica threads ignored num_cores (a top-level key that did not exist)."""
    monkeypatch.setattr("dpp.threads.available_cores", lambda: 8)
    bundle = small_bundle(
        tmp_path, max_num_epochs=0, mc_bool=1, mc_iter=5, mc_percentage=0.1, mc_beta=10,
        num_cores=2, PPmodel="ZeroFunction",
    )  # fmt: skip
    cfg, settings, origins = settings_of([f"data.bundle={bundle}", "mc.replicas=3"])
    assert settings.threads == 2
    mc = build(cfg, "mc", origins)
    bundle = settings.data.load()
    chain = mc.for_chain(bundle, "analytic", None, threads=settings.threads, run_seed=0)
    assert chain.workers == 2 and chain.n_replicas == 3
    assert resolve_engine("auto", "ZeroFunction") == "analytic"


def test_missing_bundle_is_an_input_error(tmp_path: Path):
    with pytest.raises(InputError, match="data.bundle.*NN_config.par"):
        compose_cfg([f"data.bundle={tmp_path}"])


def test_unknown_override_suggests_the_closest_key():
    with pytest.raises(InputError, match=r"optimizer.dampin=0.1.*did you mean 'optimizer.damping'"):
        compose_cfg(["optimizer.dampin=0.1"])
    with pytest.raises(InputError, match=r"optimizer=adamm.*did you mean 'adam'"):
        compose_cfg(["optimizer=adamm"])


def test_converter_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture):
    bundle = small_bundle(tmp_path, optimizer_lr=0.03, optimizer="sgd", sgd_momentum=0.5)
    assert main([str(bundle / "NN_config.par")]) == 0
    text = capsys.readouterr().out
    assert text == convert(bundle / "NN_config.par")
    assert "optimizer_lr" in text and "override /optimizer: sgd" in text
    (tmp_path / "conf" / "experiment").mkdir(parents=True)
    (tmp_path / "conf" / "experiment" / "converted.yaml").write_text(text)
    direct, _, _ = compose_cfg([f"data.bundle={bundle}", "recipe=legacy"])
    via_file, _, _ = compose_cfg(["experiment=converted"], config_dirs=(tmp_path / "conf",))
    for cfg in (direct, via_file):
        cfg.paths.output_dir = "run"
    assert OmegaConf.to_container(via_file, resolve=True) == OmegaConf.to_container(
        direct, resolve=True
    )


def test_converter_reports_bad_key(tmp_path: Path, capsys: pytest.CaptureFixture):
    bundle = small_bundle(tmp_path)
    with open(bundle / "NN_config.par", "a") as stream:
        stream.write("optimiser_lr = 0.1\n")
    assert main([str(bundle / "NN_config.par")]) == 2
    assert "optimizer_lr" in capsys.readouterr().err


def test_embedded_example_is_the_default():
    cfg, settings, _ = settings_of([])
    assert Path(settings.data.bundle) == CDSE
    assert cfg.trainer.max_epochs == 20 and settings.init.num_epochs == 200
    assert settings.model.hidden_layers == (20, 20, 20)


@pytest.mark.slow
def test_monte_carlo_workflow_on_a_gradient_bundle(tmp_path: Path):
    """workflow=monte_carlo on a bundle whose NN_config trains by gradient."""
    folder = small_bundle(tmp_path, n_k=3, max_ke=1.5)
    run_dir = tmp_path / "mc"
    best = run_app(
        run_dir,
        [
            f"data.bundle={folder}",
            "workflow=monte_carlo",
            "model.name=ZeroFunction",
            "mc.iterations=3",
            "mc.percentage=0.01",
            "mc.beta=10",
            "mc.progress=false",
        ],
    )
    assert best > 0
    assert (run_dir / "final_mc_cost.dat").is_file()

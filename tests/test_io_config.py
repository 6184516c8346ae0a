"""NN_config.par: the schema, the reader and its rules, and the translation into Hydra."""

from __future__ import annotations

from pathlib import Path

import pytest

from dpp.errors import InputError
from dpp.io.convert import convert
from dpp.io.keys import parse_value
from dpp.io.nnconfig import KEYS, read_nn_config, translate

BASE = "PPmodel = Net_relu_xavier_decay2\nhiddenLayers = 20 20 20\nnSystem = 1\n"
SECTION_3_KEYS = [
    "PPmodel", "hiddenLayers", "nSystem", "num_cores", "SHOWPLOTS", "separateKptGrad",
    "checkpoint", "memory_flag", "runtime_flag", "printGrad", "init_Zunger_printGrad", "SObool",
    "cacheSO", "PPmodel_decay_rate", "PPmodel_decay_center", "PPmodel_gaussian_std",
    "PPmodel_scale", "penalize_starting", "penalize_lambda", "penalize_mag_threshold",
    "penalize_mag_lambda", "penalty_reference", "init_Zunger_num_epochs", "init_Zunger_optimizer",
    "init_Zunger_optimizer_lr", "init_Zunger_scheduler_gamma", "init_Zunger_plotEvery",
    "init_Zunger_schedulerStep", "max_num_epochs", "optimizer", "optimizer_lr", "sgd_momentum",
    "adam_beta1", "adam_beta2", "scheduler_gamma", "schedulerStep", "plotEvery", "patience",
    "perturbEvery", "pre_adjust_moves", "pre_adjust_stepSize", "relE_bIdx", "relE_reference",
    "mc_bool", "mc_iter", "mc_percentage", "mc_beta", "mc_perturb_mode", "mc_beta_schedule",
    "mc_engine", "smooth_reorder", "eigvec_reorder", "qmax", "nQGrid", "Rmax", "nRGrid",
    "ft_qmax", "ft_nQGrid",
]  # fmt: skip
DPP_SWITCHES = [
    "basis_search", "allow_left_handed", "long_range_with_nn", "nonlocal_without_soc", "nonlocal_s",
    "legacy_batchnorm", "legacy_fifth_param", "legacy_reorder", "legacy_relE_detached",
    "legacy_mc_modes", "eigensolver", "k_chunk", "seed", "energy_zero", "smoothness",
    "smoothness_reference", "departure", "s_channel_bound", "train_slots",
]  # fmt: skip


def write(tmp_path: Path, extra: str = "", base: str = BASE) -> Path:
    path = tmp_path / "NN_config.par"
    path.write_text(base + extra)
    return path


def test_schema_covers_every_key() -> None:
    assert set(SECTION_3_KEYS + DPP_SWITCHES) == set(KEYS)
    for key in KEYS.values():
        assert key.spec.doc
        assert key.spec.kind in {"int", "float", "bool", "path", "int_list", "float_list", "choice"}


def test_bundle_format_documents_every_key() -> None:
    """A key the reader accepts is a key a user may write: bundle-format §3 names each one."""
    page = (Path(__file__).parents[1] / "docs" / "bundle-format.md").read_text(encoding="utf-8")
    assert [name for name in KEYS if f"`{name}`" not in page] == []


def test_file_reading_lines_and_types(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "SObool = TRUE  # comment = x\n# SObool = 0\nno equals sign here\nqmax = 30\n",
        base="PPmodel = Net_relu\nhiddenLayers = 8 8\nnSystem = 2\n",
    )
    config = read_nn_config(path)
    assert config.values == {
        "PPmodel": "Net_relu",
        "hiddenLayers": (8, 8),
        "nSystem": 2,
        "SObool": True,
        "qmax": 30.0,
    }
    assert config.lines["nSystem"] == 3 and config.lines["SObool"] == 4


def test_upstream_keys_warn(tmp_path: Path) -> None:
    path = write(tmp_path, "num_threads = 4\nLSD_cutoff = 3\nRmax = 30\n")
    with pytest.warns(UserWarning, match="recognised, not supported") as record:
        config = read_nn_config(path)
    assert len(record) == 2 and config.values["Rmax"] == 30.0


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        ("hiddenLayers = 8 x\n", ["line 4", "key 'hiddenLayers'", "space-separated integers"]),
        ("PPmodel = Net_relu_xavie\n", ["did you mean 'Net_relu_xavier'"]),
        ("nSystem = 0\n", [">= 1"]),
        ("nSystem = 1.5\n", ["an integer"]),
        ("SOBool = 1\n", ["line 4", "unknown NN_config key", "did you mean 'SObool'"]),
        ("smooth_reorder = 1\neigvec_reorder = 1\n", ["key 'eigvec_reorder'", "exclusive"]),
        ("optimizer = sparseadam\n", ["line 4", "sparseadam", "dense"]),
        ("qmax = 0\n", ["line 4", "key 'qmax'", "a value > 0"]),  # as OutputSettings
        ("ft_qmax = -1\n", ["key 'ft_qmax'", "a value > 0"]),
        ("nRGrid = 1\n", ["key 'nRGrid'", "a value >= 2"]),
        (
            "mc_bool = 1\nmax_num_epochs = 5\n",
            [
                "line 4",
                "key 'mc_bool'",
                "conflicts with max_num_epochs > 0",
                "found max_num_epochs = 5",
            ],
        ),
    ],
)
def test_file_errors(tmp_path: Path, extra: str, fragments: list[str]) -> None:
    # a key of BASE given again becomes its only value (a comment keeps the line numbers)
    key = extra.partition("=")[0].strip()
    lines = BASE.splitlines(keepends=True)
    base = "".join("#\n" if line.startswith(f"{key} =") else line for line in lines)
    with pytest.raises(InputError) as info:
        read_nn_config(write(tmp_path, extra, base))
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_required_keys(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="key 'nSystem'.*required key missing"):
        read_nn_config(write(tmp_path, base="PPmodel = Net_relu\nhiddenLayers = 8\n"))


def test_choice_values_are_case_insensitive() -> None:
    assert parse_value(KEYS["optimizer"].spec, "Adam") == "adam"


def test_translation_paths_groups_and_sources(tmp_path: Path) -> None:
    extra = (
        "optimizer = sgd\nsgd_momentum = 0.9\noptimizer_lr = 0.01\nmc_bool = 0\n"
        "init_Zunger_optimizer = sgd\nsmooth_reorder = 1\nnum_cores = 0\nruntime_flag = 1\n"
        "plotEvery = 5\nadam_beta1 = 0.8\ntrain_slots = 6 7\n"
    )
    translation = translate(read_nn_config(write(tmp_path, extra)))
    assert translation.groups == {
        "optimizer": "sgd",
        "optimizer@init.optimizer": "sgd",
        "workflow": "gradient",
    }
    values = translation.values
    assert values["learning_rate"] == 0.01 and values["optimizer.momentum"] == 0.9
    assert values["model.hidden_layers"] == (20, 20, 20) and values["loss.reorder"] == "smooth"
    assert values["model.train_slots"] == (6, 7)
    assert values["num_threads"] == "auto" and values["trainer.profiler"] == "simple"
    assert values["trainer.check_val_every_n_epoch"] == 5
    # optimiser keys are kept whatever the optimiser: it may be chosen later (recipe,
    # experiment, command line); building it drops what it does not take (test_config_mapping)
    assert values["optimizer.betas"] == [0.8, 0.999]
    assert translation.sources["optimizer.betas"] == "adam_beta1"
    assert translation.sources["optimizer.momentum"] == "sgd_momentum"
    tree = translation.tree()
    assert {"override /optimizer": "sgd"} in tree["defaults"]
    assert tree["model"]["hidden_layers"] == [20, 20, 20]


def test_adam_betas_fill_the_missing_one(tmp_path: Path) -> None:
    translation = translate(read_nn_config(write(tmp_path, "adam_beta2 = 0.99\n")))
    assert translation.values["optimizer.betas"] == [0.9, 0.99]


def test_converter_leaves_out_what_its_optimizer_does_not_take(tmp_path: Path) -> None:
    """The converted file pins the optimiser, and an experiment's values are not dropped:
    keys of another optimiser are a note, not a value."""
    text = convert(write(tmp_path, "optimizer = sgd\nsgd_momentum = 0.9\nadam_beta1 = 0.8\n"))
    assert "# Note: adam_beta1/adam_beta2 are not used by optimizer sgd" in text
    assert "betas" not in text.replace("# Note: adam_beta1/adam_beta2", "")
    assert "momentum: 0.9" in text
    text = convert(write(tmp_path, "sgd_momentum = 0.9\nadam_beta2 = 0.99\n"))  # adam
    assert "# Note: sgd_momentum is not used by optimizer adam" in text
    assert "betas: [0.9, 0.99]" in text and "momentum:" not in text

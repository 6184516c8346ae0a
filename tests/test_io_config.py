"""NN_config.par schema, typed access and the cross-key rules of bundle-format §3.10."""

from __future__ import annotations

import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest

from dpp.errors import InputError
from dpp.io import NNConfig
from dpp.io.config import KEYS, parse_value, validate_for_systems

BASE = {"PPmodel": "Net_relu_xavier_decay2", "hiddenLayers": "20 20 20", "nSystem": "1"}
SECTION_3_KEYS = [
    "PPmodel",
    "hiddenLayers",
    "nSystem",
    "num_cores",
    "SHOWPLOTS",
    "separateKptGrad",
    "checkpoint",
    "memory_flag",
    "runtime_flag",
    "printGrad",
    "init_Zunger_printGrad",
    "SObool",
    "cacheSO",
    "PPmodel_decay_rate",
    "PPmodel_decay_center",
    "PPmodel_gaussian_std",
    "PPmodel_scale",
    "penalize_starting",
    "penalize_lambda",
    "penalize_mag_threshold",
    "penalize_mag_lambda",
    "penalty_reference",
    "init_Zunger_num_epochs",
    "init_Zunger_optimizer",
    "init_Zunger_optimizer_lr",
    "init_Zunger_scheduler_gamma",
    "init_Zunger_plotEvery",
    "init_Zunger_schedulerStep",
    "max_num_epochs",
    "optimizer",
    "optimizer_lr",
    "sgd_momentum",
    "adam_beta1",
    "adam_beta2",
    "scheduler_gamma",
    "schedulerStep",
    "plotEvery",
    "patience",
    "perturbEvery",
    "pre_adjust_moves",
    "pre_adjust_stepSize",
    "relE_bIdx",
    "relE_reference",
    "mc_bool",
    "mc_iter",
    "mc_percentage",
    "mc_beta",
    "mc_perturb_mode",
    "mc_beta_schedule",
    "mc_engine",
    "smooth_reorder",
    "eigvec_reorder",
    "qmax",
    "nQGrid",
    "Rmax",
    "nRGrid",
    "ft_qmax",
    "ft_nQGrid",
]
DPP_SWITCHES = [
    "basis_search",
    "allow_left_handed",
    "long_range_with_nn",
    "nonlocal_without_soc",
    "legacy_batchnorm",
    "legacy_fifth_param",
    "legacy_reorder",
    "legacy_relE_detached",
    "legacy_mc_modes",
    "eigensolver",
    "k_chunk",
    "seed",
]


def system(index: int, n_bands: int, rel_band: int | None = None) -> SimpleNamespace:
    settings = SimpleNamespace(relE_bIdx=rel_band)
    return SimpleNamespace(index=index, n_bands=n_bands, settings=settings)


def make(**values: object) -> NNConfig:
    return NNConfig.from_mapping({**BASE, **values})


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "NN_config.par"
    path.write_text(text)
    return path


def test_schema_covers_every_key() -> None:
    assert set(SECTION_3_KEYS + DPP_SWITCHES) == set(KEYS)
    for spec in KEYS.values():
        assert spec.group and spec.doc
        assert spec.kind in {
            "int",
            "float",
            "bool",
            "str",
            "path",
            "int_list",
            "float_list",
            "choice",
        }


def test_defaults_and_typed_access() -> None:
    cfg = make(
        max_num_epochs="10", optimizer_lr="0.01", plotEvery=5, schedulerStep=2, scheduler_gamma=0.9
    )
    assert cfg.hiddenLayers == (20, 20, 20)
    assert cfg.SObool is False and cfg.separateKptGrad is True and cfg.cacheSO is True
    assert cfg.basis_search == "complete" and cfg.legacy_fifth_param == "strain"
    assert cfg.long_range_with_nn is True and cfg.eigensolver == "auto" and cfg.k_chunk == 0
    assert cfg.patience == 11 and cfg.pre_adjust_stepSize == 0.01
    assert cfg.mc_engine == "nn" and make(PPmodel="ZeroFunction").mc_engine == "analytic"
    assert cfg.training
    data = cfg.to_dict()
    assert list(data) == list(KEYS) and data["hiddenLayers"] == [20, 20, 20]
    with pytest.raises(AttributeError):
        _ = cfg.not_a_key


def test_replace_validates_and_rederives() -> None:
    cfg = make(
        max_num_epochs=4, optimizer_lr=0.1, plotEvery=1, schedulerStep=1, scheduler_gamma=1.0
    )
    longer = cfg.replace(max_num_epochs=20)
    assert longer.patience == 21 and cfg.patience == 5
    assert cfg.replace(SObool="true").SObool is True
    with pytest.raises(InputError, match="key 'SObool'.*0 or 1"):
        cfg.replace(SObool="maybe")
    with pytest.raises(InputError, match="did you mean 'hiddenLayers'"):
        cfg.replace(hiddenlayer="1")


def test_file_reading_and_source(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        "PPmodel = Net_relu  # comment = x\nhiddenLayers = 8 8\n"
        "nSystem = 2\nSObool = TRUE\n# SObool = 0\nno equals sign here\n",
    )
    cfg = NNConfig.from_file(path)
    assert cfg.source == path and cfg.line_of("nSystem") == 3
    assert cfg.SObool is True and cfg.nSystem == 2 and cfg.is_set("SObool")


def test_upstream_keys_warn(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        "PPmodel = Net_relu\nhiddenLayers = 8\nnSystem = 1\n"
        "num_threads = 4\nLSD_cutoff = 3\nRmax = 30\n",
    )
    with pytest.warns(UserWarning, match="recognised, not supported") as record:
        cfg = NNConfig.from_file(path)
    assert len(record) == 2 and set(cfg.unsupported) == {"num_threads", "LSD_cutoff"}
    assert cfg.Rmax == 30.0


def test_bad_values(tmp_path: Path) -> None:
    path = write_config(tmp_path, "PPmodel = Net_relu\nhiddenLayers = 8 x\nnSystem = 1\n")
    with pytest.raises(InputError, match=r"NN_config.par, line 2, key 'hiddenLayers'"):
        NNConfig.from_file(path)
    with pytest.raises(InputError, match="did you mean 'Net_relu_xavier'"):
        make(PPmodel="Net_relu_xavie")
    with pytest.raises(InputError, match=">= 1"):
        make(nSystem=0)
    with pytest.raises(InputError, match="an integer"):
        make(nSystem=1.5)
    assert parse_value(KEYS["optimizer"], "Adam") == "adam"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"PPmodel": None}, "key 'PPmodel'"),  # rule 1
        ({"init_Zunger_num_epochs": 5}, "init_Zunger_plotEvery"),  # rule 2
        ({"mc_bool": 1, "mc_iter": 5}, "mc_percentage"),  # rule 3
        ({"max_num_epochs": 5}, "plotEvery"),  # rule 4
        ({"PPmodel": "Net_relu_xavier_decay"}, "PPmodel_decay_rate"),  # rule 5
        ({"PPmodel": "Net_celu_HeInit_decayGaussian"}, "PPmodel_gaussian_std"),
        ({"penalize_starting": 3.0}, "penalize_lambda"),  # rule 7
        ({"smooth_reorder": 1, "eigvec_reorder": 1}, "exclusive"),  # rule 8
        ({"mc_perturb_mode": 6}, "SObool = 1"),  # rule 9
        ({"mc_perturb_mode": 8}, "1 ... 7"),
        ({"init_Zunger_plotEvery": 0}, ">= 1 or -1"),
        (
            {
                "max_num_epochs": 1,
                "optimizer": "sparseadam",
                "optimizer_lr": 1,
                "plotEvery": 1,
                "schedulerStep": 1,
                "scheduler_gamma": 1,
            },
            "sparseadam",
        ),
    ],
)
def test_cross_key_errors(values: dict, message: str) -> None:
    mapping = {**BASE, **values}
    mapping = {k: v for k, v in mapping.items() if v is not None}
    with pytest.raises(InputError, match=message):
        NNConfig.from_mapping(mapping)


def test_evaluation_only_needs_no_optimiser_keys() -> None:  # rule 10
    cfg = make(mc_bool=0, max_num_epochs=0)
    assert not cfg.training and cfg.optimizer_lr is None


def test_cross_key_warnings() -> None:  # rules 6 and 7
    with pytest.warns(UserWarning, match="without SObool"):
        make(cacheSO=1)
    with pytest.warns(UserWarning, match="slow"):
        make(checkpoint=1)
    with pytest.warns(UserWarning, match="last resort"):
        make(checkpoint=1, separateKptGrad=0)
    with pytest.warns(UserWarning, match="> 100"):
        make(penalize_mag_threshold=150)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make(cacheSO=0, SObool=0)


def test_rules_needing_systems() -> None:
    systems = [system(0, 16), system(1, 15)]
    with pytest.raises(InputError, match="system 1 has an odd nBands"):
        validate_for_systems(make(smooth_reorder=1), systems, ("Cd", "Se"))
    validate_for_systems(make(smooth_reorder=1), systems[:1], ("Cd", "Se"))
    scaled = make(
        PPmodel="Net_celu_HeInit_scale_decayGaussian", PPmodel_gaussian_std=2, PPmodel_scale="1 2 3"
    )
    with pytest.raises(InputError, match="key 'PPmodel_scale'.*2 values"):
        validate_for_systems(scaled, systems[:1], ("Cd", "Se"))
    validate_for_systems(scaled, systems[:1], ("Cd", "S", "Se"))


def test_global_relative_band_checked_per_system() -> None:
    cfg = make(relE_bIdx=20)
    with pytest.raises(InputError, match="key 'relE_bIdx'.*system 0"):
        validate_for_systems(cfg, [system(0, 16)], ("Cd", "Se"))
    validate_for_systems(cfg, [system(0, 16, rel_band=3), system(1, 32)], ("Cd", "Se"))


def test_list_overrides_accept_sequences() -> None:
    assert make(hiddenLayers=[4, 5]).hiddenLayers == (4, 5)
    assert make(hiddenLayers=7).hiddenLayers == (7,)

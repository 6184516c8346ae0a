"""Tests for the PPmodel catalogue dpp.models (bundle-format.md §11, physics.md §15 E)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from dpp.errors import InputError, SettingError
from dpp.models import (
    PPMODELS,
    build_model,
    has_batchnorm,
    is_zero_function,
    load_checkpoint,
    model_state,
)

DATA = Path(__file__).parent / "data"
CDSE = DATA / "extras" / "nn_zbCdSe" / "epoch_199_PPmodel.pth"

CATALOG = [
    "Net_sig", "Net_tanh", "Net_relu", "Net_relu_xavier", "Net_sigmoid_xavier",
    "Net_celu_HeInit", "Net_celu_RandInit", "Net_sig_UniformInit",
    "Net_tanh_XavierInit_dropout", "Net_relu_HeInit", "Net_sig_bn", "Net_tanh_bn",
    "Net_relu_bn", "Net_Xavier_BN", "Net_He_BN", "Net_relu_xavier_BN",
    "Net_relu_xavier_BN_dropout", "ZeroFunction", "Net_relu_xavier_BN_dropout_decay",
    "Net_relu_xavier_decay", "Net_relu_xavier_decay2", "Net_relu_xavier_decayGaussian",
    "Net_sigmoid_xavier_decayGaussian", "Net_celu_HeInit_decayGaussian",
    "Net_celu_HeInit_scale_decayGaussian", "Net_celu_RandInit_decayGaussian",
    "Net_relu_HeInit_decayGaussian", "Net_relu_xavier_BN_decayGaussian",
    "Net_relu_xavier_BN_dropout_decayGaussian",
]  # fmt: skip
GATE_ARGS = {"decay_rate": 2.0, "decay_center": 5.0, "gaussian_std": 3.0, "scale": [1, 2, 3]}
BN = {
    "Net_sig_bn", "Net_tanh_bn", "Net_relu_bn", "Net_Xavier_BN", "Net_He_BN",
    "Net_relu_xavier_BN", "Net_relu_xavier_BN_dropout", "Net_relu_xavier_BN_dropout_decay",
    "Net_relu_xavier_BN_decayGaussian", "Net_relu_xavier_BN_dropout_decayGaussian",
}  # fmt: skip
PREFIX_HIDDEN = {
    "Net_sig", "Net_tanh", "Net_relu", "Net_sig_UniformInit", "Net_tanh_XavierInit_dropout",
    "Net_relu_HeInit", "Net_relu_HeInit_decayGaussian",
}  # fmt: skip


def q_column(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64).reshape(-1, 1)


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_registry_is_the_catalogue() -> None:
    assert sorted(PPMODELS) == sorted(CATALOG)


@pytest.mark.parametrize("name", CATALOG)
def test_every_class_builds_and_runs(name: str) -> None:
    model = build_model(name, [8, 8], 3, generator=seeded(), **GATE_ARGS)
    q = torch.linspace(0.0, 12.0, 5, dtype=torch.float64).reshape(-1, 1)
    for mode in (model.train, model.eval):
        mode()
        out = model(q)
        assert out.shape == (5, 3) and out.dtype == torch.float64
    assert has_batchnorm(model) == (name in BN)
    assert is_zero_function(model) == (name == "ZeroFunction")
    keys = list(model.state_dict())
    if name == "ZeroFunction":
        assert keys == [] and list(model.parameters()) == []
        return
    wrapped = PPMODELS[name].gate is not None
    prefix = ("neural_network." if wrapped else "") + (
        "hidden" if name in PREFIX_HIDDEN else "hidden_l"
    )
    linear = [f"{prefix}.{i}.{p}" for i in range(3) for p in ("weight", "bias")]
    assert keys[:6] == linear
    bn_root = ("neural_network." if wrapped else "") + "hidden_bn"
    bn_keys = [k for k in keys if k.startswith(bn_root)]
    # BN for both hidden layers and the unused output layer, 5 entries each
    assert len(bn_keys) == (15 if name in BN else 0)
    assert len(keys) == 6 + len(bn_keys)


def test_state_dict_names_and_shapes_example() -> None:
    model = build_model("Net_celu_HeInit_decayGaussian", [32, 32, 32], 3, gaussian_std=3.0)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == {
        "neural_network.hidden_l.0.weight": (32, 1),
        "neural_network.hidden_l.0.bias": (32,),
        "neural_network.hidden_l.1.weight": (32, 32),
        "neural_network.hidden_l.1.bias": (32,),
        "neural_network.hidden_l.2.weight": (32, 32),
        "neural_network.hidden_l.2.bias": (32,),
        "neural_network.hidden_l.3.weight": (3, 32),
        "neural_network.hidden_l.3.bias": (3,),
    }
    bn = build_model("Net_relu_xavier_BN", [4], 2).state_dict()
    assert tuple(bn["hidden_bn.1.running_var"].shape) == (2,)  # unused output-layer BN
    assert "hidden_bn.0.num_batches_tracked" in bn


def test_cdse_checkpoint_numeric_check() -> None:
    """physics.md §15 E: the original's epoch_199 CdSe network (float32, saved on CUDA)."""
    model = load_checkpoint(build_model("Net_relu_xavier_decay2", [20, 20, 20], 2), CDSE)
    assert next(model.parameters()).dtype == torch.float64
    with torch.no_grad():
        out = model.eval()(q_column(0.0, 1.0))
    expected = torch.tensor(
        [[-41.26802354, -103.42444395], [-9.27798798, -32.32577164]], dtype=torch.float64
    )
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    ("path", "name", "n_species", "kwargs"),
    [
        (DATA / "InGaAsP" / "init_PPmodel.pth", "Net_relu_xavier_decay2", 4, {}),
        (
            DATA / "CsPbI3_soc" / "init_PPmodel.pth",
            "Net_relu_xavier_decayGaussian",
            3,
            {"gaussian_std": 3.0},
        ),
    ],
)
def test_bundle_checkpoints_load_strictly(
    path: Path, name: str, n_species: int, kwargs: dict[str, float]
) -> None:
    model = load_checkpoint(build_model(name, [20, 20, 20], n_species, **kwargs), path)
    raw = torch.load(path, map_location="cpu", weights_only=True)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, raw[key].to(torch.float64))
    assert model(q_column(0.0, 2.0)).shape == (2, n_species)


def test_decay_gates() -> None:
    q = q_column(0.0, 1.0, 6.0, 9.5, 30.0)
    decay2 = build_model("Net_relu_xavier_decay2", [8], 2, generator=seeded(3))
    decay = build_model(
        "Net_relu_xavier_decay", [8], 2, decay_rate=1.5, decay_center=6.0, generator=seeded(3)
    )
    torch.testing.assert_close(decay2(q), decay(q), rtol=0, atol=0)
    base = decay.neural_network(q)
    logistic = 1.0 - 1.0 / (1.0 + torch.exp(-1.5 * (q - 6.0)))
    torch.testing.assert_close(decay(q), base * logistic)
    assert decay.gate(q_column(6.0)).item() == pytest.approx(0.5)


def test_gaussian_and_scale_gates() -> None:
    q = q_column(0.0, 0.5, 2.0, 7.0)
    sigma = 2.5
    plain = build_model("Net_celu_HeInit_decayGaussian", [8], 3, gaussian_std=sigma)
    scaled = build_model(
        "Net_celu_HeInit_scale_decayGaussian", [8], 3, gaussian_std=sigma, scale=[0.5, 1, -2]
    )
    scaled.load_state_dict(plain.state_dict(), strict=True)
    gauss = torch.exp(-(q**2) / (2 * sigma**2))
    base = plain.neural_network(q)
    torch.testing.assert_close(plain(q), base * gauss)
    scale = torch.tensor([0.5, 1.0, -2.0], dtype=torch.float64)
    torch.testing.assert_close(scaled(q), base * gauss * scale)
    assert "neural_network.gate" not in str(list(scaled.state_dict()))


def test_cutoff_keeps_row_order() -> None:
    model = build_model("Net_relu_xavier_BN_dropout_decay", [8], 2, generator=seeded(1)).eval()
    q = q_column(12.0, 1.0, 10.0, 11.0, 3.0)
    out = model(q)
    torch.testing.assert_close(out[[0, 3]], torch.zeros(2, 2, dtype=torch.float64))
    torch.testing.assert_close(out[[1, 2, 4]], model.neural_network(q)[[1, 2, 4]])


def test_zero_function_has_species_columns() -> None:
    model = build_model("ZeroFunction", [8], 4)
    torch.testing.assert_close(model(q_column(0.0, 1.0, 2.0)), torch.zeros(3, 4).double())


@pytest.mark.parametrize(
    ("name", "std"),
    [
        ("Net_celu_HeInit", lambda fi, fo: math.sqrt(2 / fi)),
        ("Net_relu_HeInit", lambda fi, fo: math.sqrt(6 / fi) / math.sqrt(3)),
        ("Net_relu_xavier", lambda fi, fo: math.sqrt(2 / (fi + fo))),
        ("Net_tanh_XavierInit_dropout", lambda fi, fo: math.sqrt(6 / (fi + fo)) / math.sqrt(3)),
        ("Net_celu_RandInit", lambda fi, fo: math.sqrt(1 / fi)),
        ("Net_relu", lambda fi, fo: 1 / math.sqrt(3 * fi)),
    ],
)
def test_initialiser_statistics(name: str, std: Callable[[int, int], float]) -> None:
    model = build_model(name, [400, 300], 1, generator=seeded(7))
    weight = model.linears[1].weight.detach()  # (300, 400)
    assert abs(weight.mean().item()) < 0.05 * std(400, 300)
    assert weight.std().item() == pytest.approx(std(400, 300), rel=0.03)
    bias = model.linears[1].bias.detach()
    assert bias.abs().max().item() <= 1 / math.sqrt(400)


def test_uniform01_initialiser() -> None:
    weight = build_model("Net_sig_UniformInit", [200, 200], 1).linears[1].weight.detach()
    assert weight.min().item() >= 0.0 and weight.max().item() <= 1.0
    assert weight.mean().item() == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("name", ["Net_celu_RandInit_decayGaussian", "Net_relu_xavier_BN"])
def test_same_seed_same_weights(name: str) -> None:
    def weights(model: torch.nn.Module) -> list[torch.Tensor]:
        return list(model.state_dict().values())

    a = weights(build_model(name, [16, 16], 2, gaussian_std=1.0, generator=seeded(42)))
    b = weights(build_model(name, [16, 16], 2, gaussian_std=1.0, generator=seeded(42)))
    c = weights(build_model(name, [16, 16], 2, gaussian_std=1.0, generator=seeded(43)))
    torch.manual_seed(42)
    d = weights(build_model(name, [16, 16], 2, gaussian_std=1.0))
    for x, y, z in zip(a, b, d, strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
        torch.testing.assert_close(x, z, rtol=0, atol=0)
    assert not torch.equal(a[0], c[0])


def test_unknown_name_suggests_closest() -> None:
    with pytest.raises(SettingError, match="Net_celu_HeInit_decayGaussian") as info:
        build_model("Net_celu_Heinit_decayGausian", [8], 2)
    assert info.value.setting == "name"


@pytest.mark.parametrize(
    ("name", "kwargs", "key"),
    [
        ("Net_relu_xavier_decay", {"decay_center": 6.0}, "decay_rate"),
        ("Net_relu_xavier_decay", {"decay_rate": 1.5}, "decay_center"),
        ("Net_relu_HeInit_decayGaussian", {}, "gaussian_std"),
        ("Net_celu_HeInit_scale_decayGaussian", {"scale": [1, 1]}, "gaussian_std"),
        ("Net_celu_HeInit_scale_decayGaussian", {"gaussian_std": 2.0}, "scale"),
        ("Net_relu_xavier_decayGaussian", {"gaussian_std": 0.0}, "gaussian_std"),
        ("Net_relu_xavier", {"dropout": 0.2}, "dropout"),
    ],
)
def test_missing_or_bad_gate_argument(name: str, kwargs: dict, key: str) -> None:
    with pytest.raises(SettingError, match=key) as info:
        build_model(name, [8], 2, **kwargs)
    assert info.value.setting == key


def test_wrong_scale_length() -> None:
    with pytest.raises(SettingError, match="scale.*expected 3 values"):
        build_model("Net_celu_HeInit_scale_decayGaussian", [8], 3, gaussian_std=1.0, scale=[1, 2])


def test_checkpoint_records_its_class(tmp_path: Path) -> None:
    """A dpp checkpoint loads into its own class; into another class of the same shapes it is
    an error naming both (state_dicts of the original have no class and load by shape)."""
    celu = build_model("Net_celu_HeInit_decayGaussian", [8, 8], 2, gaussian_std=2.0)
    path = tmp_path / "model.pth"
    torch.save(model_state(celu), path)
    load_checkpoint(build_model("Net_celu_HeInit_decayGaussian", [8, 8], 2, gaussian_std=2.0), path)
    relu = build_model("Net_relu_xavier_decay", [8, 8], 2, decay_rate=1.0, decay_center=6.0)
    with pytest.raises(InputError, match="Net_relu_xavier_decay.*Net_celu_HeInit_decayGaussian"):
        load_checkpoint(relu, path)


def test_bad_checkpoints(tmp_path: Path) -> None:
    model = build_model("Net_relu_xavier_decayGaussian", [20, 20, 20], 2, gaussian_std=1)
    with pytest.raises(InputError, match="epoch_199_PPmodel.pth.*missing keys") as info:
        load_checkpoint(
            build_model("Net_relu_HeInit_decayGaussian", [20] * 3, 2, gaussian_std=1), CDSE
        )
    assert info.value.key == "neural_network.hidden.0.weight"
    load_checkpoint(model, CDSE)  # same names as decay2: loads
    with pytest.raises(
        InputError, match=r"hidden_l\.3\.weight'.*expected \(3, 20\), found \(2, 20\)"
    ):
        load_checkpoint(build_model("Net_relu_xavier_decay2", [20, 20, 20], 3), CDSE)
    with pytest.raises(InputError, match="unexpected keys"):
        load_checkpoint(build_model("ZeroFunction", [20], 2), CDSE)
    garbage = tmp_path / "garbage.pth"
    garbage.write_text("not a checkpoint")
    with pytest.raises(InputError, match="garbage.pth.*cannot read.*a network state_dict"):
        load_checkpoint(model, garbage)
    with pytest.raises(InputError, match="not found"):
        load_checkpoint(model, tmp_path / "absent.pth")

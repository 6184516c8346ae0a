"""The first layer's transitions of a network (dpp.models.knots)."""

from __future__ import annotations

import functools
import logging
import math

import pytest
import torch
from training_support import small_bundle

from dpp.fitting.initialise import initialise
from dpp.fitting.prefit import PrefitSettings
from dpp.io.bundle import load_bundle
from dpp.models import PPMODELS, build_model, has_batchnorm
from dpp.models.knots import first_layer, spread_transitions, transitions

GATE_ARGS = {"decay_rate": 1.5, "decay_center": 6.0, "gaussian_std": 2.0, "scale": [1, 2]}
NETWORKS = [name for name in sorted(PPMODELS) if PPMODELS[name].body is not None]


def network(name: str, widths: tuple[int, ...] = (6, 5)) -> torch.nn.Module:
    generator = torch.Generator().manual_seed(3)
    return build_model(name, list(widths), 2, generator=generator, **GATE_ARGS)


@pytest.mark.parametrize("name", NETWORKS)
def test_spread_places_transitions_on_an_even_grid(name: str) -> None:
    model = network(name)
    before = {key: value.clone() for key, value in model.state_dict().items()}
    if has_batchnorm(model):
        assert not spread_transitions(model, 7.0)  # normalisation would move them again
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
        return
    mean_slope = float(first_layer(model).weight.detach().abs().mean())
    assert spread_transitions(model, 7.0)
    torch.testing.assert_close(transitions(model), torch.tensor([1.0, 2, 3, 4, 5, 6]).double())
    slopes = first_layer(model).weight[:, 0]
    torch.testing.assert_close(slopes.abs(), torch.full((6,), mean_slope, dtype=torch.float64))
    assert torch.equal(torch.sign(slopes), torch.tensor([1.0, -1, 1, -1, 1, -1]).double())
    changed = {k for k, v in model.state_dict().items() if not torch.equal(before[k], v)}
    assert {k.rsplit(".", 1)[-1] for k in changed} <= {"weight", "bias"}
    assert all(".0." in k for k in changed)  # the first Linear only


def test_relu_network_bends_only_at_the_spread_knots() -> None:
    """The first layer's activation pattern of a ReLU network changes exactly at q_max·i/(n+1)."""
    model = network("Net_relu_xavier_decay2", (4, 5))
    spread_transitions(model, 5.0)
    q = torch.linspace(0.0, 5.0, 5001, dtype=torch.float64)[:, None]
    with torch.no_grad():
        active = first_layer(model)(q) > 0
    switches = q[1:, 0][(active[1:] != active[:-1]).any(dim=1)]
    torch.testing.assert_close(switches, torch.tensor([1.0, 2, 3, 4]).double(), atol=2e-3, rtol=0)


def test_models_without_a_first_hidden_layer_are_left_alone() -> None:
    assert not spread_transitions(build_model("ZeroFunction", [4], 2), 7.0)
    with pytest.raises(ValueError, match="no first hidden layer"):
        transitions(build_model("ZeroFunction", [4], 2))
    with pytest.raises(ValueError, match="q_max must be > 0"):
        spread_transitions(network("Net_relu_xavier_decay2"), 0.0)


@pytest.mark.parametrize(
    ("name", "spread"), [("Net_relu_xavier_decay2", True), ("Net_relu_bn", False)]
)
def test_initialise_spreads_before_the_prefit(tmp_path, caplog, name: str, spread: bool) -> None:
    """The pre-fit starts from the spread knots (over 2·sqrt(2·maxKE) = 3.46/Bohr at maxKE
    1.5) and says so; a batch-norm network is left as it is, and the log says why."""
    bundle = load_bundle(small_bundle(tmp_path))
    model = build_model(name, [6, 5], bundle.n_species, **GATE_ARGS)
    adam = functools.partial(torch.optim.Adam, lr=1e-12)
    settings = PrefitSettings(optimizer=adam, num_epochs=1, spread_knots=True)
    with caplog.at_level(logging.INFO, logger="dpp.fitting.initialise"):
        chosen = initialise(
            model, bundle, settings, tmp_path, torch.Generator().manual_seed(0), loaded=None
        )
    assert ("first-layer knots spread over (0, 3.46) 1/Bohr" in chosen) is spread
    if spread:
        grid = torch.linspace(0.0, 2 * math.sqrt(3.0), 8, dtype=torch.float64)[1:-1]
        torch.testing.assert_close(transitions(model), grid, atol=1e-6, rtol=0)
    else:
        assert "spread_knots: Net_relu_bn left as it is" in caplog.text

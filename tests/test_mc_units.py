"""Unit tests of the Monte Carlo building blocks (no band structures)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dpp.fitting.perturb import analytic_step, perturb_network, perturb_soc
from dpp.io.montecarlo import BetaSchedule
from dpp.mc.acceptance import TemperatureSwitch, exchange_probability, metropolis_accept
from dpp.mc.constraints import enforce_constraints

ALL = (5, 6, 7)


def _network() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return [
        torch.randn(6, 4, generator=g, dtype=torch.float64),
        torch.randn(4, generator=g).double(),
    ]


def _table() -> torch.Tensor:
    return torch.arange(1.0, 28.0, dtype=torch.float64).reshape(3, 9) / 7.0


@pytest.mark.parametrize("mode", [1, 2, 3, 4, 5, 6, 7])
def test_each_mode_moves_what_the_table_says(mode: int) -> None:
    rng = np.random.default_rng(3)
    tensors, before = _network(), [t.clone() for t in _network()]
    table = _table()
    moved_network = False
    for _ in range(5):  # modes 4/5 move a tensor with probability 0.6
        perturb_network(tensors, mode, 0.1, rng)
        perturb_soc(table, mode, 0.1, rng, active=ALL)
        moved_network = moved_network or any(
            not torch.equal(a, b) for a, b in zip(tensors, before, strict=True)
        )
    assert moved_network == (mode <= 5)
    changed = {j for j in range(9) if not torch.equal(table[:, j], _table()[:, j])}
    expected = {1: {5, 6, 7}, 2: {5, 6, 7}, 3: set(), 4: {5, 6, 7}, 5: {5, 6, 7}, 6: {5}, 7: {6, 7}}
    assert changed == expected[mode]


def test_mode_magnitudes() -> None:
    rng = np.random.default_rng(0)
    x = torch.full((1000,), 2.0, dtype=torch.float64)
    perturb_network([x], 1, 0.1, rng)
    assert float((x / 2.0 - 1.0).abs().max()) <= 0.1
    table = torch.ones(2, 9, dtype=torch.float64)
    perturb_soc(table, 5, 0.3, rng, active=ALL)
    steps = (table[:, [5, 6, 7]] - 1.0).abs()
    assert torch.all((steps < 1e-12) | ((steps - 0.3).abs() < 1e-12))
    table = torch.ones(2, 9, dtype=torch.float64)
    perturb_soc(table, 4, 0.3, rng, active=ALL, legacy=True)
    steps = (table[:, [5, 6, 7]] - 1.0).abs()
    assert torch.all((steps < 1e-12) | ((steps - 0.003).abs() < 1e-12))


def test_mode2_thresholds() -> None:
    x = torch.tensor([25.0, -25.0, -40.0, 0.001], dtype=torch.float64)
    perturb_network([x], 2, 0.1, np.random.default_rng(0))
    assert 0 < x[0] < 25.0 and -25.0 < x[1] < 0  # toward zero beyond ±20
    y = torch.tensor([-40.0], dtype=torch.float64)
    perturb_network([y], 2, 0.1, np.random.default_rng(0), legacy=True)
    assert y[0] <= -40.0  # the original pushes values below −30 away from zero


def test_analytic_step_respects_steps() -> None:
    table, steps = _table(), torch.zeros(3, 9, dtype=torch.float64)
    steps[:, :4] = 0.5
    analytic_step(table, steps, 2.0, np.random.default_rng(0))
    delta = (table - _table()).abs()
    assert torch.all(delta[:, 4:] == 0) and torch.all(delta[:, :4] <= 1.0) and delta.sum() > 0


def test_analytic_step_draws_for_the_s_channel_only_when_it_moves() -> None:
    """A chain whose a9 does not move draws the random numbers of the original's nine slots,
    so seeded chains of existing bundles keep their trajectories; a moving a9 draws its own."""
    nine, steps = _table(), torch.full((3, 9), 0.25, dtype=torch.float64)
    analytic_step(nine, steps, 2.0, np.random.default_rng(4))
    ten = torch.cat([_table(), torch.zeros(3, 1, dtype=torch.float64)], dim=1)
    ten_steps = torch.cat([steps, torch.zeros(3, 1, dtype=torch.float64)], dim=1)
    rng = np.random.default_rng(4)
    analytic_step(ten, ten_steps, 2.0, rng)
    assert torch.equal(ten[:, :9], nine) and torch.all(ten[:, 9] == 0)
    ten_steps[:, 9] = 0.5
    analytic_step(ten, ten_steps, 1.0, rng)
    assert torch.all(ten[:, 9] != 0) and torch.all(ten[:, 9].abs() <= 0.5)


def test_charge_neutrality_and_abs_soc() -> None:
    table = torch.zeros(3, 9, dtype=torch.float64)
    table[:, 4] = torch.tensor([0.3, -0.2, 0.0], dtype=torch.float64)
    table[:, 5] = torch.tensor([-1.0, 2.0, -3.0], dtype=torch.float64)
    atoms = [0, 1, 1, 2, 0]  # species 1 is the last one (first appearance) with a4 != 0
    enforce_constraints(table, atoms)
    assert sum(float(table[s, 4]) for s in atoms) == pytest.approx(0.0, abs=1e-14)
    assert float(table[0, 4]) == 0.3 and float(table[1, 4]) == pytest.approx(-0.3)
    assert torch.equal(table[:, 5], torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    untouched = torch.zeros(2, 9, dtype=torch.float64)
    enforce_constraints(untouched, [0, 1])
    assert torch.equal(untouched, torch.zeros(2, 9, dtype=torch.float64))


def test_beta_schedule_lookup() -> None:
    schedule = BetaSchedule(trials=np.array([1, 200, 500]), betas=np.array([5.0, 20.0, 100.0]))
    assert [schedule.beta_at(t, 7.0) for t in (1, 199, 200, 499, 500, 10**6)] == [
        5.0,
        5.0,
        20.0,
        20.0,
        100.0,
        100.0,
    ]
    later = BetaSchedule(trials=np.array([10]), betas=np.array([3.0]))
    assert later.beta_at(9, 7.0) == 7.0


def test_metropolis_rule() -> None:
    assert metropolis_accept(4.0, 1.0, 0.5, 1.0, 0.36)  # exp(-1) = 0.3679 > 0.36
    assert not metropolis_accept(4.0, 1.0, 0.5, 1.0, 0.37)
    assert metropolis_accept(0.4, 1.0, 0.5, 1e9, 0.99)  # new best always accepted


def test_temperature_switch() -> None:
    switch, seen = TemperatureSwitch((2, 3)), []
    for _ in range(10):
        switch.advance()
        seen.append(switch.index)
    assert seen == [0, 1, 1, 1, 0, 0, 1, 1, 1, 0]
    stay = TemperatureSwitch((2, 0))
    for _ in range(5):
        stay.advance()
        assert stay.index == 0


def test_exchange_detailed_balance() -> None:
    """Swap-move Metropolis on a toy two-level energy: the empirical swap rate matches the
    formula, and the sampled joint distribution satisfies detailed balance."""
    rng = np.random.default_rng(7)
    levels, betas = np.array([0.0, 1.0]), (2.0, 0.5)
    state = [0, 1]
    counts = np.zeros((2, 2))
    swaps = {(0, 1): [0, 0], (1, 0): [0, 0]}
    for _ in range(40000):
        for r in (0, 1):  # ordinary Metropolis moves inside each replica
            proposal = 1 - state[r]
            delta = levels[proposal] - levels[state[r]]
            if rng.random() < min(1.0, math.exp(-betas[r] * delta)):
                state[r] = proposal
        key = (state[0], state[1])
        p = exchange_probability(betas[0], betas[1], levels[state[0]], levels[state[1]])
        if key in swaps:
            swaps[key][1] += 1
            if rng.random() < p:
                swaps[key][0] += 1
                state.reverse()
        counts[state[0], state[1]] += 1
    rate = swaps[(0, 1)][0] / swaps[(0, 1)][1]  # cold replica low, hot high: uphill swap
    assert rate == pytest.approx(
        math.exp((betas[0] - betas[1]) * (levels[0] - levels[1])), abs=0.02
    )
    assert swaps[(1, 0)][0] == swaps[(1, 0)][1]  # downhill swap always accepted
    joint = counts / counts.sum()
    target = np.outer(np.exp(-betas[0] * levels), np.exp(-betas[1] * levels))
    assert joint == pytest.approx(target / target.sum(), abs=0.015)

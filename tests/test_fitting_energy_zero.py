"""A free energy zero per system (loss.energy_zero = per_system) and the smoothness of v(q):
the loss is blind to a constant added to a reference, Gauss–Newton models both exactly, and
the turning-point count reads what a physicist would count."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from training_support import INGAASP, cost_rows, run_app, small_bundle

from dpp.errors import SettingError
from dpp.fitting import LossSettings
from dpp.fitting.band_loss import band_loss
from dpp.fitting.build import training_objective
from dpp.fitting.gauss_newton import FunctionSpaceGaussNewton
from dpp.fitting.linearisation import _system_bands, linearise, model_loss, store_gradient
from dpp.fitting.objective import accumulate, trainable
from dpp.fitting.smoothness import (
    SmoothnessTerm,
    curvature_penalty,
    departure_penalty,
    turning_points,
)
from dpp.io import load_bundle
from dpp.models import build_model
from dpp.physics import build_hamiltonian


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory):
    return load_bundle(small_bundle(tmp_path_factory.mktemp("zero"), n_k=6))


WHOLE_SYSTEMS = "data.separate_kpt_grad=false"
"""A free or common zero needs every k-point of a system in one batch (the CdSe example's
NN_config batches k-points)."""


def network(bundle, seed: int = 3):
    return build_model(
        "Net_celu_HeInit_decayGaussian",
        [8, 8],
        bundle.n_species,
        gaussian_std=2.0,
        generator=torch.Generator().manual_seed(seed),
    )


def shifted(bundle, system: int, offset: float):
    """The bundle with `offset` eV added to one system's reference bands."""
    systems = list(bundle.systems)
    target = systems[system]
    systems[system] = type(target)(**{**vars(target), "ref_bands": target.ref_bands + offset})
    return type(bundle)(**{**vars(bundle), "systems": tuple(systems)})


def total_loss(bundle, settings: LossSettings, model) -> float:
    hamiltonian = build_hamiltonian(bundle, model)
    objective = training_objective(bundle, settings)
    return objective.evaluate(hamiltonian).total


def test_free_offset_is_the_weighted_least_squares_constant():
    bands = torch.tensor([[1.0, 2.0], [3.0, 5.0]])
    reference = torch.zeros(2, 2)
    kweights, band_weights = torch.tensor([1.0, 3.0]), torch.tensor([1.0, 0.5])
    free = band_loss(bands, reference, kweights, band_weights, free_offset=True)
    offsets = torch.linspace(0.0, 6.0, 6001)
    scan = [float(band_loss(bands - c, reference, kweights, band_weights)) for c in offsets]
    assert float(free) == pytest.approx(min(scan), abs=1e-6)
    assert float(band_loss(bands + 7.3, reference, kweights, band_weights, free_offset=True)) == (
        pytest.approx(float(free), rel=1e-12)
    )


def test_per_system_zero_ignores_a_shifted_reference(bundle):
    """+7.3 eV on one system's reference: the absolute loss changes, the per-system one not."""
    model = network(bundle)
    moved = shifted(bundle, 0, 7.3)
    free = LossSettings(energy_zero="per_system")
    assert total_loss(moved, free, model) == pytest.approx(
        total_loss(bundle, free, model), rel=1e-10
    )
    absolute = total_loss(bundle, LossSettings(), model)
    assert abs(total_loss(moved, LossSettings(), model) - absolute) > 0.1 * absolute


def test_per_system_zero_refuses_partial_batches(bundle):
    hamiltonian = build_hamiltonian(bundle, network(bundle))
    objective = training_objective(bundle, LossSettings(energy_zero="per_system"))
    with pytest.raises(SettingError, match="every k-point of a system in one batch"):
        objective.batch(hamiltonian, 0, torch.arange(3))


def test_gauss_newton_models_offset_and_smoothness_exactly(bundle):
    """With a free offset and the curvature regulariser, the model at its point is the loss
    and its slope the autograd gradient; the curvature stays positive semi-definite."""
    settings = LossSettings(energy_zero="per_system", smoothness=1e-3, departure=1e-3)
    hamiltonian = build_hamiltonian(bundle, network(bundle))
    objective = training_objective(bundle, settings)
    assert "smoothness" in {term.name for term in objective.global_terms}
    k_all = [torch.arange(s.n_kpoints) for s in bundle.systems]
    loss = sum(objective.batch(hamiltonian, s, k) for s, k in enumerate(k_all))
    loss = loss + sum(objective.global_values(hamiltonian).values())
    loss.backward()
    expected = [p.grad.clone() for _, p in trainable(hamiltonian)]
    linearisation = linearise(objective, hamiltonian)
    assert linearisation.total == pytest.approx(float(loss.detach()), rel=1e-12)
    assert linearisation.terms["smoothness"] > 0 and linearisation.terms["departure"] > 0
    store_gradient(linearisation, objective, hamiltonian)
    for (name, parameter), reference in zip(trainable(hamiltonian), expected, strict=True):
        torch.testing.assert_close(parameter.grad, reference, rtol=1e-9, atol=1e-12, msg=name)
    at_point = model_loss(linearisation, objective, hamiltonian, damping=1.0)
    assert float(at_point.detach()) == pytest.approx(float(loss.detach()), rel=1e-12)
    for model in linearisation.models:
        assert float(torch.linalg.eigvalsh(model.curvature).min()) > -1e-9


def test_curvature_penalty_of_known_curves():
    q = torch.linspace(0.0, 2.0, 201, dtype=torch.float64)
    spacing = float(q[1] - q[0])
    straight = torch.stack([3.0 * q - 1.0, -q], dim=1)
    assert float(curvature_penalty(straight, spacing)) == pytest.approx(0.0, abs=1e-16)
    parabola = (q * q)[:, None]  # v'' = 2 everywhere
    assert float(curvature_penalty(parabola, spacing)) == pytest.approx(4.0, rel=1e-10)


def test_departure_penalty_is_the_mean_square_size():
    q = torch.linspace(0.0, 2.0, 201, dtype=torch.float64)
    constant = torch.stack([torch.full_like(q, 3.0), torch.full_like(q, -1.0)], dim=1)
    assert float(departure_penalty(constant)) == pytest.approx(9.0 + 1.0, rel=1e-14)
    assert float(departure_penalty(torch.zeros(5, 2))) == 0.0


def test_departure_costs_the_size_not_the_shape_of_a_departure(bundle):
    """A network shifted by a constant from its prior: no curvature, a departure of that
    constant squared per species, λ·N_k and μ·N_k scaled."""
    model = network(bundle)
    hamiltonian = build_hamiltonian(bundle, model)
    probe = SmoothnessTerm(1.0, 5.0, 10)
    with torch.no_grad():
        own = model(probe.q[:, None])
    term = SmoothnessTerm(2.0, 5.0, 10, prior=own - 0.5, departure=3.0)
    values = {k: float(v.detach()) for k, v in term.values(hamiltonian).items()}
    assert values["smoothness"] == pytest.approx(0.0, abs=1e-12)
    assert values["departure"] == pytest.approx(3.0 * 10 * 0.25 * bundle.n_species, rel=1e-12)
    only = SmoothnessTerm(0.0, 5.0, 10, prior=own, departure=1.0)
    assert only.active and set(only.values(hamiltonian)) == {"departure"}


def test_smoothness_relative_to_the_prior_costs_nothing_on_the_prior(bundle):
    """With smoothness_reference = prior only the departure from the starting curve bends:
    a network equal to the prior on the grid costs 0."""
    model = network(bundle)
    hamiltonian = build_hamiltonian(bundle, model)
    term = SmoothnessTerm(1.0, 5.0, 10)
    with torch.no_grad():
        own = model(term.q[:, None])
    assert float(term.values(hamiltonian)["smoothness"].detach()) > 0
    relative = SmoothnessTerm(1.0, 5.0, 10, prior=own)
    assert float(relative.values(hamiltonian)["smoothness"].detach()) == pytest.approx(
        0.0, abs=1e-20
    )
    objective = training_objective(
        bundle, LossSettings(smoothness=1.0, smoothness_reference="prior")
    )
    (smooth,) = [t for t in objective.global_terms if t.name == "smoothness"]
    assert smooth.prior is not None and smooth.prior.shape == (len(smooth.q), bundle.n_species)


def test_smoothness_term_is_off_without_strength_or_network(bundle):
    assert not SmoothnessTerm(0.0, 5.0, 10).active
    analytic = build_hamiltonian(bundle, None)
    assert SmoothnessTerm(1.0, 5.0, 10).values(analytic) == {}


@pytest.mark.parametrize(
    ("curve", "expected"),
    [
        (lambda q: np.sin(q), 2),  # one maximum and one minimum on (0, 6)
        (lambda q: np.sin(3 * q), 6),
        (lambda q: (q - 3) ** 2, 1),
        (lambda q: np.exp(-q), 0),
        (lambda q: np.sin(q) + 0.01 * np.sin(40 * q), 2),  # 1 % wiggles do not count
        (lambda q: np.sin(q) + 0.2 * np.sin(40 * q), 76),  # 20 % ones do: 38 periods
    ],
)
def test_turning_points(curve, expected: int):
    q = np.linspace(0.0, 6.0, 2000)
    assert turning_points(curve(q)) == expected
    assert turning_points(np.zeros(10)) == 0


def test_gauss_newton_step_is_blind_to_the_reference_zero(bundle):
    """One default-recipe step from the same network: the same parameters, bit for bit, with
    +7.3 eV on the reference (the reference is held relative to its mean)."""
    results = []
    for data in (bundle, shifted(bundle, 0, 7.3)):
        model = network(data)
        hamiltonian = build_hamiltonian(data, model)
        objective = training_objective(data, LossSettings(energy_zero="per_system"))
        optimizer = FunctionSpaceGaussNewton(list(model.parameters()), inner_iterations=50)
        optimizer.attach(hamiltonian, objective)
        optimizer.evaluate()
        optimizer.step()
        offset = objective.primary.model_offset(0, objective.evaluate(hamiltonian).bands[0])
        results.append(([p.detach().clone() for p in model.parameters()], offset))
    (before, offset), (after, offset_moved) = results
    for a, b in zip(before, after, strict=True):
        assert torch.equal(a, b)
    assert offset - offset_moved == pytest.approx(7.3, abs=1e-9)


@pytest.mark.slow
def test_training_is_blind_to_the_reference_zero(tmp_path):
    """The acceptance check of a free energy zero: +7.3 eV on a reference changes neither the
    default recipe's trajectory nor the final RMS (< 1 meV; here equal to round-off)."""
    finals = []
    for offset in (0.0, 7.3):
        folder = small_bundle(tmp_path / str(offset), n_k=5, energy_zero="per_system")
        table = folder / "expBandStruct_0.par"
        rows = np.loadtxt(table)
        rows[:, 1:] += offset
        np.savetxt(table, rows)
        run_dir = tmp_path / f"run{offset}"
        run_app(run_dir, [f"data.bundle={folder}", "trainer.max_epochs=3", "seed=1", WHOLE_SYSTEMS])
        finals.append(cost_rows(run_dir / "final_training_cost.dat"))
        assert "per_system" in (run_dir / "config_resolved.yaml").read_text()
    (epochs, costs), (epochs_moved, costs_moved) = (
        list(zip(*rows, strict=True)) for rows in finals
    )
    assert epochs == epochs_moved and len(epochs) == 3
    assert costs_moved == costs


@pytest.fixture(scope="module")
def systems(tmp_path_factory: pytest.TempPathFactory):
    """Four crystals (InAs, InP, GaAs, GaP) with 4 k-points each."""
    return load_bundle(small_bundle(tmp_path_factory.mktemp("common"), INGAASP, n_k=4))


def coupled_loss(bundle, hamiltonian) -> torch.Tensor:
    """Σ_X Σ w (e − c)² with c = Σ w e / Σ w over all systems, differentiable in c too."""
    objective = training_objective(bundle, LossSettings())
    errors, weights = [], []
    for system, targets in enumerate(objective.primary.targets):
        k = torch.arange(bundle.systems[system].n_kpoints)
        bands = objective.primary.bands(hamiltonian, system, k)
        errors.append((bands - targets.reference).reshape(-1))
        weights.append(targets.all_weights().reshape(-1))
    error, weight = torch.cat(errors), torch.cat(weights)
    offset = (weight * error).sum() / weight.sum()
    return (weight * (error - offset) ** 2).sum()


def test_common_zero_ignores_one_shift_of_every_system_not_one_between_them(systems):
    model = network(systems)
    common = LossSettings(energy_zero="common")
    moved_all = systems
    for system in range(len(systems.systems)):
        moved_all = shifted(moved_all, system, 7.3)
    reference = total_loss(systems, common, model)
    assert total_loss(moved_all, common, model) == pytest.approx(reference, rel=1e-10)
    hamiltonian = build_hamiltonian(systems, model)
    with torch.no_grad():
        assert reference == pytest.approx(float(coupled_loss(systems, hamiltonian)), rel=1e-12)
    # one system moved against the others: an alignment the common zero keeps
    one_moved = total_loss(shifted(systems, 1, 0.5), common, model)
    assert one_moved > reference + 0.1
    per_system = total_loss(shifted(systems, 1, 0.5), LossSettings(energy_zero="per_system"), model)
    assert per_system < reference  # each offset free: never worse than one shared offset


def test_common_zero_gradient_is_the_coupled_gradient(systems):
    """accumulate (gradient training) and the Gauss–Newton slope both give the gradient of
    the loss with the offset differentiated through (held fixed at its optimum)."""
    hamiltonian = build_hamiltonian(systems, network(systems))
    coupled_loss(systems, hamiltonian).backward()
    expected = [p.grad.clone() for _, p in trainable(hamiltonian)]
    objective = training_objective(systems, LossSettings(energy_zero="common"))
    items = torch.cat(
        [
            torch.stack([torch.full((s.n_kpoints,), i), torch.arange(s.n_kpoints)], 1)
            for i, s in enumerate(systems.systems)
        ]
    )
    for _, parameter in trainable(hamiltonian):
        parameter.grad = None
    accumulate(objective, hamiltonian, [items])
    for (name, parameter), reference in zip(trainable(hamiltonian), expected, strict=True):
        torch.testing.assert_close(parameter.grad, reference, rtol=1e-9, atol=1e-12, msg=name)
    linearisation = linearise(objective, hamiltonian)
    store_gradient(linearisation, objective, hamiltonian)
    for (name, parameter), reference in zip(trainable(hamiltonian), expected, strict=True):
        torch.testing.assert_close(parameter.grad, reference, rtol=1e-9, atol=1e-12, msg=name)


def test_gauss_newton_models_a_common_zero_exactly(systems):
    """The systems' models plus the coupling equal Σ w (e₀ + J δv − c(δv))² with the offset
    optimal at every step δv: the Gauss–Newton model of the coupled loss."""
    hamiltonian = build_hamiltonian(systems, network(systems))
    objective = training_objective(systems, LossSettings(energy_zero="common"))
    linearisation = linearise(objective, hamiltonian)
    assert linearisation.coupling is not None
    generator = torch.Generator().manual_seed(5)
    steps = [
        0.01 * torch.randn(len(m.values), generator=generator, dtype=torch.float64)
        for m in linearisation.models
    ]
    errors, weights = [], []
    for system, (targets, step) in enumerate(zip(objective.primary.targets, steps, strict=True)):
        k = torch.arange(systems.systems[system].n_kpoints)
        bands, jacobian = _system_bands(objective, hamiltonian, system, k, None)
        moved = bands + jacobian @ step
        errors.append((moved - targets.reference).reshape(-1))
        weights.append(targets.all_weights().reshape(-1))
    error, weight = torch.cat(errors), torch.cat(weights)
    error = error - (weight * error).sum() / weight.sum()
    expected = float((weight * error * error).sum())
    modelled = sum(
        float(m(m.values + step)) for m, step in zip(linearisation.models, steps, strict=True)
    )
    modelled += float(linearisation.coupling(steps))
    assert modelled == pytest.approx(expected, rel=1e-10)
    assert float(linearisation.coupling(steps)) < 0.0  # the shared offset follows the step


def test_common_zero_refuses_partial_batches(systems):
    hamiltonian = build_hamiltonian(systems, network(systems))
    objective = training_objective(systems, LossSettings(energy_zero="common"))
    items = torch.stack([torch.zeros(2, dtype=torch.long), torch.arange(2)], 1)
    with pytest.raises(SettingError, match="every k-point of every system in one batch"):
        accumulate(objective, hamiltonian, [items])


@pytest.mark.slow
def test_train_with_a_common_zero_keeps_the_alignment(tmp_path):
    """train.py with `energy_zero = common` in NN_config on four crystals: every reference
    moved by +7.3 eV gives the same fit (to round-off); the run records the mode."""
    finals = []
    for offset in (0.0, 7.3):
        folder = small_bundle(tmp_path / str(offset), INGAASP, n_k=3, energy_zero="common")
        for table in folder.glob("expBandStruct_*.par"):
            rows = np.loadtxt(table)
            rows[:, 1:] += offset
            np.savetxt(table, rows)
        run_dir = tmp_path / f"run{offset}"
        run_app(run_dir, [f"data.bundle={folder}", "trainer.max_epochs=2", "seed=1", WHOLE_SYSTEMS])
        assert "energy_zero: common" in (run_dir / "config_resolved.yaml").read_text()
        finals.append(cost_rows(run_dir / "final_training_cost.dat"))
    (epochs, costs), (epochs_moved, costs_moved) = (
        list(zip(*rows, strict=True)) for rows in finals
    )
    assert epochs == epochs_moved and len(epochs) == 2
    assert costs_moved == costs  # bit for bit: the references are held relative to one mean

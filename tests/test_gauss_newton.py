"""Gauss–Newton in function space: the Hellmann–Feynman form-factor derivatives, the
linearised objective, the optimiser's steps and its fallback."""

from __future__ import annotations

import functools
import logging

import pytest
import torch
from test_training_observables import add_couplings, add_defpot
from test_training_units import make_module, train
from training_support import INGAASP, small_bundle

from dpp.fitting import LossSettings, gauss_newton
from dpp.fitting.build import training_objective
from dpp.fitting.gauss_newton import FunctionSpaceGaussNewton
from dpp.fitting.linearisation import (
    degenerate_mean,
    linearise,
    model_bytes,
    model_loss,
    model_size,
    store_gradient,
    unsupported,
)
from dpp.fitting.objective import accumulate, trainable
from dpp.fitting.terms import GlobalTerm
from dpp.io import load_bundle
from dpp.models import build_model
from dpp.physics import PhysicsOptions, build_hamiltonian
from dpp.slots import Slot
from dpp.training.callbacks.perturbation import Perturbation

REPO_DATA = INGAASP.parent


def all_kpoints(data) -> torch.Tensor:
    """One batch of every (system, k) item of `data`."""
    return torch.tensor([(s, k) for s, x in enumerate(data.systems) for k in range(x.n_kpoints)])


DEGENERATE_EDGES = pytest.mark.filterwarnings("ignore:idx[VC]B = [0-9]+ splits a degenerate level")
"""The coupling test data's band edges are degenerate: the warning is about that data."""


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory):
    return load_bundle(small_bundle(tmp_path_factory.mktemp("gn"), n_k=7))


def pairwise_derivatives(hamiltonian, system: int, vectors: torch.Tensor) -> torch.Tensor:
    """Σ_{G,G'} ψ*(G) S_s(G − G') ψ(G') binned by |G − G'|, pair by pair (O(N²) per state)."""
    geometry = hamiltonian.geometries[system]
    n = geometry.n_basis
    flat = geometry.q_index.reshape(-1)
    out = []
    for psi in vectors:
        density = psi[:n, None, :].conj() * psi[None, :n, :]
        if hamiltonian.options.spin_orbit:
            density = density + psi[n:, None, :].conj() * psi[None, n:, :]
        per_species = []
        for factors in geometry.structure_factors:
            weighted = (density * factors[..., None]).real.reshape(n * n, -1)
            binned = torch.zeros(len(geometry.unique_q), weighted.shape[1], dtype=torch.float64)
            per_species.append(binned.index_add_(0, flat, weighted).T)
        out.append(torch.stack(per_species, dim=-1))
    return torch.stack(out)


@pytest.mark.parametrize(("folder", "spin_orbit"), [("InGaAsP", False), ("CsPbI3_soc", True)])
def test_fft_derivatives_equal_the_pairwise_sum(tmp_path, folder: str, spin_orbit: bool):
    data = load_bundle(small_bundle(tmp_path, REPO_DATA / folder, n_k=2, max_ke=2.0))
    hamiltonian = build_hamiltonian(data, None, PhysicsOptions(spin_orbit=spin_orbit))
    for system in range(len(data.systems)):
        _, vectors = hamiltonian.eigenpairs(system, torch.arange(2), 6)
        fast = hamiltonian.local_expectation_gradient(system, vectors)
        torch.testing.assert_close(
            fast, pairwise_derivatives(hamiltonian, system, vectors), rtol=0, atol=1e-14
        )


@pytest.mark.parametrize("relative", [False, True])
def test_linearisation_is_exact_to_first_order(bundle, relative: bool):
    """At its point the model equals the loss, and its slope (Hellmann–Feynman band
    derivatives through the band loss, penalties exact) is the autograd gradient."""
    module = make_module(bundle, 7, relative=relative, penalties=True)
    total, _, terms = module.full_pass(backward=True)
    expected = [p.grad.clone() for _, p in module.trainable()]
    linearisation = linearise(module.objective, module.hamiltonian)
    assert linearisation.total == pytest.approx(total, rel=1e-12)
    assert set(linearisation.terms) == set(terms) == {"decay", "magnitude"}
    store_gradient(linearisation, module.objective, module.hamiltonian)
    for (name, parameter), reference in zip(module.trainable(), expected, strict=True):
        torch.testing.assert_close(parameter.grad, reference, rtol=1e-9, atol=1e-12, msg=name)
    at_point = model_loss(linearisation, module.objective, module.hamiltonian, damping=1.0)
    assert float(at_point.detach()) == pytest.approx(total, rel=1e-12)
    for model in linearisation.models:  # positive semi-definite Gauss–Newton curvature
        assert float(torch.linalg.eigvalsh(model.curvature).min()) > -1e-9


def test_degenerate_states_share_their_mean_derivative():
    eigenvalues = torch.tensor([[0.0, 1.0, 1.0 + 1e-9, 2.0], [0.0, 0.0, 0.5, 0.5]])
    derivatives = torch.arange(16.0).reshape(2, 4, 2)
    mean = degenerate_mean(eigenvalues, derivatives)
    expected = derivatives.clone()
    expected[0, 1:3] = derivatives[0, 1:3].mean(dim=0)
    expected[1, 0:2] = derivatives[1, 0:2].mean(dim=0)
    expected[1, 2:4] = derivatives[1, 2:4].mean(dim=0)
    torch.testing.assert_close(mean, expected)


@pytest.mark.parametrize("slots", [(), (4, 5, 6, 7, 8), (5, 6, 7, 9)])
def test_spin_orbit_linearisation_gradient(tmp_path, slots: tuple[int, ...]):
    """With spinors (CsPbI3, spin–orbit and nonlocal terms) the model's slope is the
    autograd gradient too, with the analytic slots `slots` trained beside the network as
    extra columns (spin–orbit a5, nonlocal a6/a7 and the s-channel a9 at fixed v; long
    range a4 and strain a8 also through v)."""
    data = load_bundle(small_bundle(tmp_path, REPO_DATA / "CsPbI3_soc", n_k=2, max_ke=2.0))
    s_channel = Slot.NONLOCAL_0 in slots
    if s_channel:
        data.pp_params[:, Slot.NONLOCAL_0] = [0.3, -0.2, 0.1]
    network = build_model(
        "Net_celu_HeInit_decayGaussian",
        [6, 6],
        data.n_species,
        gaussian_std=2.0,
        generator=torch.Generator().manual_seed(1),
    )
    options = PhysicsOptions(spin_orbit=True, nonlocal_s=s_channel)
    hamiltonian = build_hamiltonian(data, network, options, train_slots=slots)
    objective = training_objective(data, LossSettings())
    assert unsupported(objective, hamiltonian) is None
    loss = sum(objective.batch(hamiltonian, s, torch.arange(2)) for s in range(len(data.systems)))
    loss.backward()
    trained = [p for _, p in trainable(hamiltonian)]
    assert len(trained) == len(list(network.parameters())) + bool(slots)
    expected = [p.grad.clone() for p in trained]
    linearisation = linearise(objective, hamiltonian)
    assert linearisation.total == pytest.approx(float(loss.detach()), rel=1e-12)
    store_gradient(linearisation, objective, hamiltonian)
    for parameter, reference in zip(trained, expected, strict=True):
        # FFT and dense sums round differently: agreement to 1e-7 of the largest component
        scale = float(reference.abs().max())
        torch.testing.assert_close(parameter.grad, reference, rtol=0, atol=1e-7 * scale)
    if slots:
        assert float(hamiltonian.pp_free.grad.abs().max()) > 0


def test_the_s_channel_bound_is_exact_in_the_model(tmp_path):
    """The bound on an attractive s-channel is μ_b·N_k·Σ_s min(a9_s, 0)² (a repulsive a9
    costs nothing), and Gauss–Newton's model carries its value and its slope in a9."""
    data = load_bundle(small_bundle(tmp_path, REPO_DATA / "CsPbI3_soc", n_k=2, max_ke=2.0))
    data.pp_params[:, Slot.NONLOCAL_0] = [-0.3, 0.2, -0.1]
    options = PhysicsOptions(spin_orbit=True, nonlocal_s=True)
    hamiltonian = build_hamiltonian(data, None, options, train_slots=(9,))
    objective = training_objective(data, LossSettings(s_channel_bound=10.0))
    values = objective.global_values(hamiltonian)
    assert float(values["s_channel_bound"].detach()) == pytest.approx(10.0 * 2 * (0.3**2 + 0.1**2))
    per_system, terms = accumulate(objective, hamiltonian, [all_kpoints(data)])
    expected = hamiltonian.pp_free.grad.clone()
    hamiltonian.pp_free.grad = None
    linearisation = linearise(objective, hamiltonian)
    assert linearisation.total == pytest.approx(float(per_system.sum()) + sum(terms.values()))
    store_gradient(linearisation, objective, hamiltonian)
    torch.testing.assert_close(hamiltonian.pp_free.grad, expected, rtol=1e-7, atol=1e-9)
    bound_slope = 2 * 10.0 * 2 * torch.tensor([-0.3, 0.0, -0.1], dtype=torch.float64)
    band_only = build_hamiltonian(data, None, options, train_slots=(9,))
    accumulate(training_objective(data, LossSettings()), band_only, [all_kpoints(data)])
    torch.testing.assert_close(expected - band_only.pp_free.grad, bound_slope)


def test_analytic_parameters_train_with_gauss_newton(bundle):
    """Trained analytic slots (the nonlocal l = 1 and s-channel strengths without spinors)
    are extra columns of the model: the Gauss–Newton fit moves them and lowers the loss,
    without the fallback."""
    module = gauss_newton_module(bundle, inner_iterations=50)
    options = PhysicsOptions(nonlocal_without_soc=True, nonlocal_s=True)
    module.hamiltonian = build_hamiltonian(
        bundle, module.hamiltonian.model, options, train_slots=(6, 7, 9)
    )
    start = module.hamiltonian.pp_free.detach().clone()
    train(module, 3)
    assert isinstance(module.optimizers().optimizer, FunctionSpaceGaussNewton)
    losses = [value for _, value in module.train_history]
    assert losses[-1] < losses[0]
    moved = module.hamiltonian.pp_free.detach() != start
    assert bool(moved.reshape(-1, 3).all(dim=0).all()), "a6, a7 and a9 of every species move"


def gauss_newton_module(bundle, **options):
    module = make_module(bundle, 3, relative=True)
    module.optimizer_factory = functools.partial(FunctionSpaceGaussNewton, **options)
    return module


def test_gauss_newton_epochs_lower_the_loss(bundle):
    """Every accepted step lowers the loss; each epoch takes one pass per trial, and the
    accepted trial's evaluation is the next epoch's (no second pass at the same point)."""
    module = gauss_newton_module(bundle, inner_iterations=50)
    train(module, 4)
    losses = [value for _, value in module.train_history]
    assert len(losses) == 4
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False))
    assert losses[-1] < 0.5 * losses[0]
    optimizer = module.optimizers().optimizer
    assert isinstance(optimizer, FunctionSpaceGaussNewton)
    assert module.passes >= 4  # the first evaluation, then at least one trial per step
    assert optimizer.param_groups[0]["damping"] > 0
    assert module.epoch_metrics["damping"] > 0  # the damping the last step started from
    assert not optimizer.converged


def _worse_after(linearise, honest: int):
    """`linearise` whose evaluations after the first `honest` are ever higher (1e6 eV² more
    at each call), so that every trial is rejected."""
    calls = []

    def worse(objective, hamiltonian, *where):
        result = linearise(objective, hamiltonian, *where)
        calls.append(1)
        if len(calls) > honest:
            result.per_system = result.per_system + 1e6 * len(calls)
        return result

    return worse


def test_a_converged_fit_stops(bundle, monkeypatch, caplog):
    """A step that finds no decrease ends the fit (the Gauss–Newton stopping rule)."""
    module = gauss_newton_module(bundle, inner_iterations=20, trials=2)
    monkeypatch.setattr(gauss_newton, "linearise", _worse_after(gauss_newton.linearise, 1))
    with caplog.at_level(logging.INFO, logger="dpp.training.module"):
        trainer = train(module, 5)
    assert trainer.current_epoch == 1
    assert len(module.train_history) == 1
    assert "Gauss-Newton converged" in caplog.text and "the fit stops" in caplog.text


def test_a_converged_fit_waits_for_perturbation_kicks(bundle, monkeypatch, caplog):
    """With kicks configured a converged fit goes on: epochs at the stationary point cost no
    pass, a kick moves the parameters and the steps resume from the initial damping."""
    module = gauss_newton_module(bundle, inner_iterations=20, trials=2)
    monkeypatch.setattr(gauss_newton, "linearise", _worse_after(gauss_newton.linearise, 1))
    kicks = Perturbation(every=3, epsilon=0.01, seed=0)
    with caplog.at_level(logging.INFO, logger="dpp.training.module"):
        trainer = train(module, 5, callbacks=[kicks])
    assert trainer.current_epoch == 5
    assert caplog.text.count("Gauss-Newton converged") == 2  # epoch 1, and after the kick
    assert "steps resume after the next perturbation" in caplog.text
    # epoch 1 and epoch 5 (after the kick that follows epoch 4) evaluate and try 2 trials
    # each; epochs 2-4 sit still at no cost
    assert module.passes == (1 + 2) + (1 + 2)
    assert module.optimizers().optimizer.param_groups[0]["damping"] == pytest.approx(1e-2 * 8)


def test_a_step_without_decrease_restores_the_parameters(bundle, monkeypatch):
    """When no trial lowers the loss the parameters are exactly those before the step, the
    damping has grown by 2, 4, 8 and the optimiser reports convergence."""
    module = make_module(bundle, 7, relative=False)
    optimizer = FunctionSpaceGaussNewton([p for _, p in module.trainable()], trials=3)
    optimizer.attach(module.hamiltonian, module.objective)
    start, passes = optimizer.evaluate()
    assert passes == 1
    assert optimizer.evaluate()[1] == 0  # the same point: no new pass
    real = gauss_newton.linearise

    def worse(objective, hamiltonian, *where):
        result = real(objective, hamiltonian, *where)
        result.per_system = result.per_system + 1e6
        return result

    monkeypatch.setattr(gauss_newton, "linearise", worse)
    before = [p.detach().clone() for _, p in module.trainable()]
    assert optimizer.step() == 3
    for (_, parameter), value in zip(module.trainable(), before, strict=True):
        assert torch.equal(parameter.detach(), value)
    assert optimizer.param_groups[0]["damping"] == pytest.approx(1e-2 * 2 * 4 * 8)
    assert optimizer.linearisation is start
    assert optimizer.converged


def observable_fit(tmp_path, add_targets):
    """A module on a tiny CdSe bundle with the targets `add_targets` writes, and its loss
    and autograd gradient at the start."""
    folder = small_bundle(tmp_path, n_k=3, max_ke=1.5)
    add_targets(folder)
    module = make_module(load_bundle(folder), 3, relative=True)
    total, _, terms = module.full_pass(backward=True)
    return module, total, terms, [p.grad.clone() for _, p in module.trainable()]


@DEGENERATE_EDGES
@pytest.mark.parametrize("targets", ["defpot", "coupling"])
def test_solving_terms_are_residual_models(tmp_path, targets: str):
    """Deformation potentials and couplings (terms that solve strained or shifted
    Hamiltonians) are modelled by their residuals' Jacobians in the form factors they
    evaluate: the model equals the loss at its point and its slope is the autograd
    gradient (couplings: their degenerate edge sets' basis differs between solves, 1e-7)."""
    add = {"defpot": add_defpot, "coupling": add_couplings}[targets]
    module, total, terms, expected = observable_fit(tmp_path, add)
    assert unsupported(module.objective, module.hamiltonian) is None
    linearisation = linearise(module.objective, module.hamiltonian)
    assert f"{targets}_sys0" in linearisation.terms
    assert linearisation.terms == pytest.approx(terms, rel=1e-12)
    assert linearisation.total == pytest.approx(total, rel=1e-12)
    (solved,) = linearisation.solved
    assert solved.jacobian.shape[0] == len(solved.residuals) > 0
    assert float(solved.jacobian.abs().max()) > 0
    store_gradient(linearisation, module.objective, module.hamiltonian)
    for (name, parameter), reference in zip(module.trainable(), expected, strict=True):
        atol = (1e-12 if targets == "defpot" else 1e-7) * float(reference.abs().max())
        torch.testing.assert_close(parameter.grad, reference, rtol=0, atol=atol, msg=name)
    at_point = model_loss(linearisation, module.objective, module.hamiltonian, damping=1.0)
    assert float(at_point.detach()) == pytest.approx(total, rel=1e-12)


@DEGENERATE_EDGES
def test_a_coupling_fit_trains_with_gauss_newton(tmp_path, caplog):
    """With coupling targets the default optimiser steps (no fallback) and lowers the loss."""
    module, *_ = observable_fit(tmp_path, add_couplings)
    module.optimizer_factory = functools.partial(
        FunctionSpaceGaussNewton, inner_iterations=50, fallback=torch.optim.LBFGS
    )
    with caplog.at_level(logging.WARNING, logger="dpp.fitting.gauss_newton"):
        train(module, 3)
    assert "does not apply" not in caplog.text
    assert isinstance(module.optimizers().optimizer, FunctionSpaceGaussNewton)
    losses = [value for _, value in module.train_history]
    assert losses[-1] < losses[0]


class SolvingTerm(GlobalTerm):
    name = "strained"

    def values(self, hamiltonian):
        return {}


def test_unsupported_fits_are_named(bundle):
    module = make_module(bundle, 7, relative=False)
    assert unsupported(module.objective, module.hamiltonian) is None
    module.objective.global_terms.append(SolvingTerm())
    assert "strained" in unsupported(module.objective, module.hamiltonian)
    smooth = training_objective(bundle, LossSettings(reorder="smooth"))
    assert "smooth" in unsupported(smooth, module.hamiltonian)
    analytic = build_hamiltonian(bundle, None)
    assert "no network" in unsupported(module.objective, analytic)


def test_an_unsupported_fit_trains_with_the_fallback(bundle, caplog):
    module = gauss_newton_module(
        bundle,
        fallback=functools.partial(torch.optim.LBFGS, lr=1.0, max_iter=1, line_search_fn=None),
    )
    module.objective.global_terms.append(SolvingTerm())
    with caplog.at_level(logging.WARNING, logger="dpp.fitting.gauss_newton"):
        train(module, 2)
    assert isinstance(module.optimizers().optimizer, torch.optim.LBFGS)
    assert "loss terms strained solve and are no sums of squares" in caplog.text
    module = gauss_newton_module(bundle)
    module.objective.global_terms.append(SolvingTerm())
    with pytest.raises(ValueError, match="cannot train this fit"):
        module.configure_optimizers()


def test_ranks_models_sum_to_the_one_process_models(bundle):
    """Two ranks' linearisations of their own k-points, each summed with the other's
    zero-padded bands and Jacobians, are the one-process models, so both ranks step alike."""
    module = make_module(bundle, 7, relative=True, penalties=True)
    objective, hamiltonian = module.objective, module.hamiltonian
    whole = linearise(objective, hamiltonian)
    n_systems = len(bundle.systems)
    shares = [[torch.tensor([1, 2, 5])] * n_systems, [torch.tensor([0, 3, 4, 6])] * n_systems]
    sent: list[list[list[torch.Tensor]]] = [[], []]
    for rank, share in enumerate(shares):
        linearise(
            objective, hamiltonian, share, lambda t, r=rank: sent[r].append([x.clone() for x in t])
        )

    def receive(rank: int):
        parts = iter(sent[1 - rank])

        def add(tensors: list[torch.Tensor]) -> None:
            for tensor, other in zip(tensors, next(parts), strict=True):
                tensor += other

        return add

    for rank, share in enumerate(shares):
        assert all(float(parts[1].abs().sum()) > 0 for parts in sent[rank])
        ranked = linearise(objective, hamiltonian, share, receive(rank))
        assert ranked.total == pytest.approx(whole.total, rel=1e-13)
        for mine, expected in zip(ranked.models, whole.models, strict=True):
            assert mine.loss == pytest.approx(expected.loss, rel=1e-13)
            torch.testing.assert_close(mine.gradient, expected.gradient, rtol=1e-12, atol=0)
            torch.testing.assert_close(mine.curvature, expected.curvature, rtol=1e-12, atol=0)


def test_models_above_the_memory_limit_train_with_the_fallback(bundle, caplog):
    """The models' memory (curvature and band Jacobian per system) is bounded: above
    max_memory_gib the fallback trains and the log says how to lower it."""
    module = gauss_newton_module(bundle, fallback=torch.optim.LBFGS)
    n_values = [model_size(module.hamiltonian, s) for s in range(len(bundle.systems))]
    expected = sum(
        8 * n * (n + s.n_kpoints * s.n_bands) for n, s in zip(n_values, bundle.systems, strict=True)
    )
    assert model_bytes(module.hamiltonian) == expected
    module.optimizer_factory = functools.partial(
        FunctionSpaceGaussNewton, fallback=torch.optim.LBFGS, max_memory_gib=expected / 2**31
    )
    with caplog.at_level(logging.WARNING, logger="dpp.fitting.gauss_newton"):
        optimizer = module.configure_optimizers()["optimizer"]
    assert isinstance(optimizer, torch.optim.LBFGS)
    assert "above optimizer.max_memory_gib" in caplog.text and "lower maxKE" in caplog.text

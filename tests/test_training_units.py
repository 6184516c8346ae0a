"""Batch-size invariance of the optimiser step, optimisers, schedule and penalties."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from training_support import small_bundle

from dpp.fitting import LossSettings, PenaltyTerm
from dpp.fitting.build import training_objective
from dpp.fitting.penalties import decay_penalty, magnitude_penalty
from dpp.io import load_bundle
from dpp.models import build_model
from dpp.physics import build_hamiltonian
from dpp.training.datamodule import KPointDataModule
from dpp.training.module import PseudopotentialModule
from dpp.training.optimizers import step_after_first_epoch


def make_module(bundle, batch_size: int, relative: bool, penalties: bool = True):
    model = build_model(
        "Net_celu_HeInit_decayGaussian",
        [8, 8],
        bundle.n_species,
        gaussian_std=2.0,
        generator=torch.Generator().manual_seed(3),
    )
    ham = build_hamiltonian(bundle, model)
    n_k = [s.n_kpoints for s in bundle.systems]
    data = KPointDataModule(n_k, batch_size, separate=True)
    terms = {"penalize_starting": 1.0, "penalize_lambda": 0.01} if penalties else {}
    if penalties:
        terms.update(penalize_mag_threshold=10.0, penalize_mag_lambda=0.001)
    loss = LossSettings(relE_bIdx=3 if relative else None, **terms)
    objective = training_objective(bundle, loss)
    adam = functools.partial(torch.optim.Adam, lr=1e-3)
    return PseudopotentialModule(ham, objective, adam, batches=data.batches())


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory):
    return load_bundle(small_bundle(tmp_path_factory.mktemp("b"), n_k=7))


@pytest.mark.parametrize("relative", [False, True])
def test_step_is_independent_of_batch_size(bundle, relative: bool):
    results = []
    for batch_size in (1, 3, 7):
        module = make_module(bundle, batch_size, relative)
        total, _, _ = module.full_pass(backward=True)
        params = [p for _, p in module.trainable()]
        optimizer = torch.optim.Adam(params, lr=0.01)
        optimizer.step()
        results.append((total, [p.detach().clone() for p in params]))
    total0, params0 = results[0]
    for total, params in results[1:]:
        assert total == pytest.approx(total0, rel=1e-12)
        for a, b in zip(params, params0, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_original_schedule_semantics():
    """lr of epoch e is lr0·γ^⌊(e−1)/step⌋ (e ≥ 1), lr0 at e = 0 (physics.md §8)."""
    lr0, gamma, step = 0.1, 0.5, 3
    weight = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))
    optimizer = torch.optim.SGD([weight], lr=lr0)
    schedule = step_after_first_epoch(optimizer, step, gamma)
    seen = []
    for _ in range(10):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    expected = [lr0 * gamma ** (0 if e == 0 else (e - 1) // step) for e in range(10)]
    assert seen == pytest.approx(expected)


def test_penalty_formulas():
    q0, lam, threshold, mu, n_k = 2.0, 0.3, 5.0, 0.7, 11
    q = torch.linspace(q0, 12.0, 50, dtype=torch.float64)
    values = torch.stack([torch.cos(q) * 8, torch.sin(q) * 3], dim=1)
    prior = torch.stack([torch.cos(q) * 7, torch.zeros_like(q)], dim=1)
    ramp = 1 / (1 + np.exp(-10 * (q.numpy() - (q0 + 0.5))))
    expected = lam * n_k * np.mean(ramp[:, None] * np.abs(values.numpy() - prior.numpy()))
    assert float(decay_penalty(values, prior, q, q0, lam, n_k)) == pytest.approx(expected)
    x = np.abs(values.numpy())
    excess = x - threshold
    sig = 1 / (1 + np.exp(-10 * excess))
    expected_mag = mu * n_k * np.mean(sig * np.maximum(excess, 0))
    assert float(magnitude_penalty(values, threshold, mu, n_k)) == pytest.approx(expected_mag)
    huge = torch.full((4, 2), 1e6, dtype=torch.float64)
    assert math.isfinite(float(magnitude_penalty(huge, 150.0, 1.0, 1)))


def test_penalties_use_the_analytic_prior(bundle):
    model = torch.nn.Linear(1, 2).double()
    settings = LossSettings(penalize_starting=1.0, penalize_lambda=1.0)
    pen = PenaltyTerm(settings, bundle.pp_params, None, [5, 2])
    terms = pen.values(build_hamiltonian(bundle, model))
    assert set(terms) == {"decay"} and float(terms["decay"].detach()) > 0
    off = LossSettings(penalize_mag_threshold=5.0, penalize_mag_lambda=0.0)
    assert not PenaltyTerm(off, bundle.pp_params, None, [5]).active


def test_datamodule_serves_every_item_once(tmp_path: Path):
    data = KPointDataModule([3, 4], batch_size=2)
    items = torch.cat(list(data.train_dataloader()))
    assert items.tolist() == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2], [1, 3]]
    assert len(KPointDataModule([3, 4], 2, separate=False).batches()) == 1


def test_step_callbacks_after_a_nonfinite_step(monkeypatch, tmp_path: Path, caplog):
    """After the step that stopped the fit (NaN/inf; the module restored the last finite
    state) the kick must not move that state and no epoch files are written; the epoch log
    reports the non-finite part. Before it, the last batch of epoch 3 kicks (every 2)."""
    from types import SimpleNamespace

    from dpp.training.callbacks import epoch_log, epoch_outputs, perturbation

    kicks = []
    monkeypatch.setattr(perturbation, "kick", lambda *args: kicks.append(args))
    trainer = SimpleNamespace(num_training_batches=2, current_epoch=2, max_epochs=5)
    module = SimpleNamespace(nonfinite=None, hamiltonian=object())
    kicker = perturbation.Perturbation(every=2, epsilon=0.1)
    kicker.on_train_batch_end(trainer, module, None, None, 0)  # not the last batch
    assert kicks == []
    kicker.on_train_batch_end(trainer, module, None, None, 1)
    assert len(kicks) == 1
    module.nonfinite = "the loss term decay"
    kicker.on_train_batch_end(trainer, module, None, None, 1)
    assert len(kicks) == 1
    outputs = epoch_outputs.EpochOutputs(dump_epochs=10)
    outputs.attach(SimpleNamespace(run_dir=tmp_path, reporter=None))
    outputs.on_train_batch_end(trainer, module, None, None, 1)
    assert list(tmp_path.iterdir()) == []
    with caplog.at_level("ERROR", logger="dpp.training"):
        epoch_log.EpochLog().on_train_batch_end(trainer, module, None, None, 1)
    assert "epoch 3: the loss term decay became NaN or infinite" in caplog.text


def test_evaluate_with_given_bands_and_the_global_loss(bundle):
    """Objective.evaluate with the bands already computed (validation) gives the same
    numbers; global_loss back-propagates the global terms once and returns them."""
    module = make_module(bundle, 3, relative=True)
    objective, hamiltonian = module.objective, module.hamiltonian
    fresh = objective.evaluate(hamiltonian)
    again = objective.evaluate(hamiltonian, bands=fresh.bands)
    assert (again.total, again.per_system, again.terms) == (
        fresh.total,
        fresh.per_system,
        fresh.terms,
    )
    assert set(fresh.terms) == {"decay", "magnitude"}
    assert objective.global_loss(hamiltonian, torch.Tensor.backward) == fresh.terms
    assert all(p.grad is not None for _, p in module.trainable())


def test_penalties_need_a_network(bundle):
    settings = LossSettings(penalize_starting=1.0, penalize_lambda=1.0)
    penalty = PenaltyTerm(settings, bundle.pp_params, None, [5])
    assert penalty.values(build_hamiltonian(bundle)) == {}
    model = torch.nn.Linear(1, 2).double()
    assert set(penalty.values(build_hamiltonian(bundle, model))) == {"decay"}


def fit_with_lbfgs(bundle, epochs: int, reuse: bool) -> PseudopotentialModule:
    """The CELU module trained `epochs` L-BFGS steps (strong Wolfe, one step per epoch)."""
    module = make_module(bundle, 3, relative=True)
    module.optimizer_factory = functools.partial(
        torch.optim.LBFGS, lr=1.0, max_iter=1, max_eval=8, line_search_fn="strong_wolfe"
    )
    if not reuse:
        module._evaluation_here = lambda: None
    train(module, epochs)
    return module


def train(module: PseudopotentialModule, epochs: int, callbacks: list | None = None) -> pl.Trainer:
    """`epochs` epochs of `module` on one CPU process, batches of 3 k-points, no validation,
    logger or checkpoints."""
    trainer = pl.Trainer(
        max_epochs=epochs,
        callbacks=callbacks,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
    )
    n_k = [s.n_kpoints for s in module.hamiltonian.systems]
    trainer.fit(module, datamodule=KPointDataModule(n_k, 3, separate=True))
    return trainer


def test_lbfgs_epoch_takes_the_line_search_evaluation(bundle):
    """An epoch after an L-BFGS step starts at a point the line search evaluated: it takes
    that loss and gradient instead of a new pass, and the fit is the same number for number."""
    plain = fit_with_lbfgs(bundle, 4, reuse=False)
    reusing = fit_with_lbfgs(bundle, 4, reuse=True)
    assert [v for _, v in reusing.train_history] == pytest.approx(
        [v for _, v in plain.train_history], rel=1e-12, abs=0.0
    )
    for (_, a), (_, b) in zip(plain.trainable(), reusing.trainable(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=0.0)
    assert plain.passes - reusing.passes == 3  # epochs 2-4 reuse, epoch 1 has nothing to


@pytest.mark.parametrize(
    ("name", "dropout", "repeatable"),
    [
        ("Net_celu_HeInit_decayGaussian", 0.0, True),
        ("Net_tanh", 0.0, True),
        ("Net_relu_bn", 0.0, False),
        ("Net_tanh", 0.1, False),
    ],
)
def test_evaluations_are_reused_only_for_a_repeatable_loss(
    bundle, name: str, dropout: float, repeatable: bool
):
    """Batch norm (statistics updated every step) and active dropout (a new mask each pass)
    make two passes at the same parameters differ: their evaluations are never reused."""
    module = make_module(bundle, 3, relative=False)
    model = build_model(name, [8, 8], bundle.n_species, gaussian_std=2.0, dropout=dropout)
    module.hamiltonian = build_hamiltonian(bundle, model)
    module.train()
    assert module._repeatable() is repeatable

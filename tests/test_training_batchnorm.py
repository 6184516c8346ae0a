"""Batch-norm networks: running statistics updated once per step and system, whatever the
k-point batching; legacy_batchnorm = 1 updates them once per atom and k-point, as the
original's one network call per atom and k-point."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from training_support import run_app, small_bundle

from dpp.models import build_model
from dpp.models.batchnorm import batchnorm_layers, frozen_statistics, update_statistics

EPOCHS, N_K, N_ATOMS = 5, 6, 2
BN_BUNDLE = {
    "n_k": N_K,
    "PPmodel": "Net_relu_xavier_BN",
    "hiddenLayers": 4,
    "max_num_epochs": EPOCHS,
    "plotEvery": EPOCHS,
    "init_Zunger_num_epochs": 0,
}


def _train(tmp_path: Path, name: str, *overrides: str) -> tuple[float, dict[str, torch.Tensor]]:
    bundle = small_bundle(tmp_path / name, **BN_BUNDLE)
    run_dir = tmp_path / name / "run"
    loss = run_app(run_dir, [f"data.bundle={bundle}", "logger=none", *overrides])
    state = torch.load(run_dir / "final_PPmodel.pth", weights_only=True)
    return loss, state


def _counters(state: dict[str, torch.Tensor]) -> set[int]:
    """The update counts of the batch-norm layers in use (the original's MLP keeps an unused
    one after its output layer)."""
    return {int(v) for k, v in state.items() if k.endswith("num_batches_tracked") and v > 0}


def test_statistics_do_not_depend_on_the_k_point_batching(tmp_path: Path) -> None:
    one, state_one = _train(tmp_path, "k1", "data.kpt_batch_size=1")
    eight, state_eight = _train(tmp_path, "k8", "data.kpt_batch_size=8")
    assert _counters(state_one) == _counters(state_eight) == {EPOCHS}
    for key, value in state_one.items():
        torch.testing.assert_close(value, state_eight[key], rtol=1e-8, atol=1e-10)
    assert one == pytest.approx(eight, rel=1e-8)  # the eval-mode validation loss


def test_legacy_batchnorm_updates_once_per_atom_and_k_point(tmp_path: Path) -> None:
    _, state = _train(tmp_path, "legacy", "hamiltonian.legacy_batchnorm=true")
    assert _counters(state) == {EPOCHS * N_K * N_ATOMS}


def test_frozen_statistics_leave_running_statistics_alone() -> None:
    torch.manual_seed(0)
    model = build_model("Net_relu_xavier_BN", hidden_layers=[4], n_species=2).double().train()
    q = torch.linspace(0.1, 5.0, 50, dtype=torch.float64)[:, None]
    (layer,) = batchnorm_layers(model)[:1]
    before = layer.running_mean.clone()
    with frozen_statistics(model):
        frozen_output = model(q)
    assert torch.equal(layer.running_mean, before) and int(layer.num_batches_tracked) == 0
    torch.testing.assert_close(frozen_output, model(q))  # the same batch statistics
    update_statistics(model.eval(), q, times=3)
    assert int(layer.num_batches_tracked) == 4 and not model.training

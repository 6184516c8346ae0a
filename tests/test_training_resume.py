"""Resume after an interrupt continues the uninterrupted run bit for bit."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import torch
from training_support import run_app, small_bundle

EPOCHS = 7
# the warm-started Davidson solver at a cutoff where it runs (dimension 89) and a pre-fit long
# enough for steps small enough to warm-start the solves: the eigenvectors, and the cached
# Gauss–Newton linearisation taken with them, are part of the resumed state
RUN = ["trainer.max_epochs=7", "trainer.check_val_every_n_epoch=3", "logger=none"]
ITERATIVE = ["hamiltonian.eigensolver=davidson", "init.num_epochs=30"]


def _interrupted_then_resumed(run_dir: Path, overrides: list[str], epoch: int) -> None:
    stop = [f"+callbacks.stop._target_=training_support.InterruptAt", f"+callbacks.stop.epoch={epoch}"]
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises((SystemExit, KeyboardInterrupt)):
        run_app(run_dir, [*overrides, *stop])
    signal.signal(signal.SIGINT, handler)
    run_app(run_dir, [*overrides, "resume=true"])


def _network(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "final_PPmodel.pth", weights_only=True)


def test_default_recipe_resumes_bit_for_bit(tmp_path: Path) -> None:
    bundle = small_bundle(tmp_path, max_ke=3.0, n_k=4)
    overrides = [f"data.bundle={bundle}", *RUN, *ITERATIVE]
    run_app(tmp_path / "straight", overrides)
    _interrupted_then_resumed(tmp_path / "resumed", overrides, epoch=6)
    cost = "final_training_cost.dat"
    straight = (tmp_path / "straight" / cost).read_text()
    assert len(straight.splitlines()) == EPOCHS
    assert (tmp_path / "resumed" / cost).read_text() == straight
    resumed = _network(tmp_path / "resumed")
    for name, tensor in _network(tmp_path / "straight").items():
        assert torch.equal(resumed[name], tensor), name

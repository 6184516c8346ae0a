"""Band reordering inside the loss: state across k-batches and end-to-end switches."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from bundle_support import EXAMPLES, shrink_bundle
from training_support import run_app, small_bundle

from dpp.fitting.reordering import BandReordering
from dpp.io import load_bundle
from dpp.physics import build_hamiltonian
from dpp.physics.reorder import extrapolation_order


def cdse_hamiltonian(n_kpoints: int = 12):
    bundle = shrink_bundle(load_bundle(EXAMPLES / "zb_CdSe"), 3.0, n_kpoints=n_kpoints)
    return build_hamiltonian(bundle), n_kpoints


def test_smooth_full_path_then_batches_use_previous_epoch() -> None:
    hamiltonian, n_k = cdse_hamiltonian()
    k_all = torch.arange(n_k)
    state = BandReordering("smooth", n_k)
    with torch.no_grad():
        raw = hamiltonian.bands(0, k_all)
        full = state.bands(hamiltonian, 0, k_all)
        torch.testing.assert_close(full, torch.gather(raw, 1, extrapolation_order(raw)))
        assert state.previous is not None
        fresh = BandReordering("smooth", n_k)
        first_batch = fresh.bands(hamiltonian, 0, k_all[6:])
        torch.testing.assert_close(first_batch, raw[6:])  # no history in the first epoch
        assert fresh.previous is None
        fresh.bands(hamiltonian, 0, k_all[:6])
        assert fresh.previous is not None  # every k seen once: history for the next epoch


def test_eigvec_reorder_permutes_each_kpoint() -> None:
    hamiltonian, n_k = cdse_hamiltonian()
    k_all = torch.arange(n_k)
    state = BandReordering("eigvec", n_k)
    with torch.no_grad():
        raw = hamiltonian.bands(0, k_all)
        ordered = state.bands(hamiltonian, 0, k_all)
        later = state.bands(hamiltonian, 0, k_all[5:])
    torch.testing.assert_close(ordered[0], raw[0])
    torch.testing.assert_close(later, ordered[5:])
    assert torch.all((ordered.sort(dim=1).values - raw.sort(dim=1).values).abs() < 1e-9)


@pytest.mark.slow
def test_training_runs_with_each_reordering(tmp_path: Path) -> None:
    folder = small_bundle(tmp_path, n_k=6, max_ke=1.5, max_num_epochs=2, init_Zunger_num_epochs=0)
    for switch in ("smooth_reorder", "eigvec_reorder"):
        run_dir = tmp_path / switch
        mode = switch.removesuffix("_reorder")
        loss = run_app(run_dir, [f"data.bundle={folder}", f"loss.reorder={mode}"])
        assert math.isfinite(loss)
        assert (run_dir / "final_training_cost.dat").is_file()


def test_eigvec_permutations_recomputed_at_each_pass_of_a_shard() -> None:
    hamiltonian, n_k = cdse_hamiltonian()
    state = BandReordering("eigvec", n_k)
    calls = []
    original = hamiltonian.eigenpairs

    def counting(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    hamiltonian.eigenpairs = counting
    with torch.no_grad():
        for shard in ([1, 3, 5], [7, 9, 11], [1, 3, 5], [7, 9, 11]):  # two passes of rank 1
            state.bands(hamiltonian, 0, torch.tensor(shard))
    full_path_solves = [args for args in calls if len(args[1]) == n_k]
    assert len(full_path_solves) == 2

"""The warm-started block Davidson (dpp.physics.davidson, dpp.physics.warmstart) against dense.

`eigensolver="davidson"` forces the iterative path whatever the matrix size, so these small
systems exercise it; `auto` uses it on CPU from `davidson_min_dim` on.
"""

from __future__ import annotations

import copy

import pytest
import torch
from bundle_support import DATA, EXAMPLES, shrink_bundle

from dpp.errors import SettingError
from dpp.io import load_bundle
from dpp.models import build_model
from dpp.physics import PhysicsOptions, build_hamiltonian
from dpp.physics.constants import AUTOEV
from dpp.physics.davidson import block_davidson, orthonormal_complement
from dpp.physics.eigensolver import uses_iterative

GAMMA = 20


def cdse(max_ke: float = 4.0, n_kpoints: int | None = 25):
    return shrink_bundle(load_bundle(EXAMPLES / "zb_CdSe"), max_ke, n_kpoints=n_kpoints)


def cspbi3(max_ke: float = 1.5, n_kpoints: int = 3):
    return shrink_bundle(load_bundle(DATA / "CsPbI3_soc"), max_ke, n_kpoints=n_kpoints)


def network(n_species: int, seed: int = 0) -> torch.nn.Module:
    generator = torch.Generator().manual_seed(seed)
    return build_model(
        "Net_celu_HeInit_decayGaussian", [8, 8], n_species, gaussian_std=2.0, generator=generator
    )


def band_loss(hamiltonian, bundle) -> torch.Tensor:
    """Σ_X Σ_k w_k Σ_b u_b (E − E_ref)² in eV², built inline from `hamiltonian.bands`."""
    total = 0.0
    for index, system in enumerate(bundle.systems):
        bands = hamiltonian.bands(index)
        reference = torch.as_tensor(system.ref_bands)
        weights = torch.as_tensor(system.kweights)[:, None] * torch.as_tensor(system.band_weights)
        total = total + (weights * (bands - reference) ** 2).sum()
    return total


def nudge(model: torch.nn.Module, size: float = 1e-3, seed: int = 1) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(size * torch.randn(p.shape, dtype=p.dtype, generator=generator))


def pair(bundle, model, **switches):
    """The same physics twice: iterative (davidson) and dense (lapack), with equal models."""
    iterative = build_hamiltonian(bundle, model, eigensolver="davidson", **switches)
    dense = build_hamiltonian(bundle, copy.deepcopy(model), eigensolver="lapack", **switches)
    return iterative, dense


def random_hermitian(n: int, generator: torch.Generator, batch: int = 1) -> torch.Tensor:
    a = torch.randn(batch, n, n, dtype=torch.complex128, generator=generator)
    return 0.5 * (a + a.mH) + torch.diag_embed(torch.linspace(0, 20, n, dtype=torch.float64))


# -- the algorithm --------------------------------------------------------------------------


def test_batched_davidson_from_perturbed_seeds_matches_eigh() -> None:
    generator = torch.Generator().manual_seed(0)
    before = random_hermitian(120, generator, batch=3)
    after = before + 0.05 * random_hermitian(120, generator, batch=3)
    seeds = torch.linalg.eigh(before)[1][..., :12]
    result = block_davidson(after, seeds, 8, tol=1e-9, max_iter=100)
    assert bool(result.converged.all())
    exact = torch.linalg.eigvalsh(after)
    torch.testing.assert_close(result.values[:, :8], exact[:, :8], rtol=0, atol=1e-12)
    assert float(result.residuals[:, :8].max()) <= 1e-9
    gram = result.vectors.mH @ result.vectors
    torch.testing.assert_close(gram, torch.eye(12, dtype=gram.dtype).expand(3, -1, -1))


def test_seed_test_refuses_a_block_that_cannot_see_an_entering_state() -> None:
    """A state of another symmetry sector drops below the block: Davidson alone misses it
    (H and the preconditioner never couple the sectors), the sin Θ test refuses the seed."""
    generator = torch.Generator().manual_seed(6)
    n, sector = 60, torch.arange(60) % 2 == 0
    coupling = torch.randn(n, n, dtype=torch.complex128, generator=generator)
    coupling = 0.1 * (coupling + coupling.mH) * (sector[:, None] & sector[None, :])
    before = torch.diag(torch.arange(n, dtype=torch.float64)).to(coupling.dtype) + coupling
    before[1, 1] += 40.0  # the lowest state of the odd sector sits far above the block
    after = before.clone()
    after[1, 1] = -5.0
    values, vectors = torch.linalg.eigh(before)
    seeds = vectors[None, :, :8]
    blind = block_davidson(after[None], seeds, 4, tol=1e-10, max_iter=50)
    assert bool(blind.converged[0]) and float(blind.values[0, 0]) > -1.0  # missed
    change = float(torch.linalg.matrix_norm(after - before, ord=2))
    floor = torch.tensor([float(values[7]) - change], dtype=torch.float64)
    gated = block_davidson(after[None], seeds, 4, tol=1e-10, max_iter=50, complement_floor=floor)
    assert not bool(gated.admissible[0]) and not bool(gated.converged[0])
    assert gated.iterations == 0
    small = before + 1e-3 * coupling
    change = float(torch.linalg.matrix_norm(small - before, ord=2))
    floor = torch.tensor([float(values[7]) - change], dtype=torch.float64)
    fine = block_davidson(small[None], seeds, 4, tol=1e-10, max_iter=50, complement_floor=floor)
    assert bool(fine.admissible[0]) and bool(fine.converged[0])


def test_corrections_inside_the_search_space_are_replaced() -> None:
    generator = torch.Generator().manual_seed(5)
    basis, _ = torch.linalg.qr(torch.randn(2, 30, 6, dtype=torch.complex128, generator=generator))
    inside = basis[:, :, :2] @ torch.randn(2, 2, 3, dtype=torch.complex128, generator=generator)
    outside = torch.randn(2, 30, 1, dtype=torch.complex128, generator=generator)
    block = orthonormal_complement(basis, torch.cat([inside, outside], -1), generator)
    assert block.shape == (2, 30, 4)
    torch.testing.assert_close(block.mH @ block, torch.eye(4, dtype=block.dtype).expand(2, 4, 4))
    assert float((basis.mH @ block).abs().max()) < 1e-12


def test_davidson_follows_levels_that_cross_inside_and_into_the_block() -> None:
    """Two wanted levels swap, and a buffer level drops into the wanted set."""
    generator = torch.Generator().manual_seed(1)
    q, _ = torch.linalg.qr(torch.randn(80, 80, dtype=torch.complex128, generator=generator))
    levels = torch.linspace(0.0, 30.0, 80, dtype=torch.float64)
    moved = levels.clone()
    moved[1], moved[2] = levels[2] + 0.1, levels[1] - 0.1  # 1 and 2 cross
    moved[6] = levels[3] - 0.05  # the buffer level 6 becomes the 4th lowest
    start = (q * levels) @ q.mH
    end = (q * moved) @ q.mH
    seeds = torch.linalg.eigh(start)[1][None, :, :8]
    result = block_davidson(end[None], seeds, 5, tol=1e-10, max_iter=100)
    torch.testing.assert_close(
        result.values[0, :5], torch.sort(moved).values[:5], rtol=0, atol=1e-12
    )


# -- against the dense solver -------------------------------------------------------------


def test_warm_started_bands_and_gradients_match_dense() -> None:
    bundle = cdse()
    model = network(2)
    iterative, dense = pair(bundle, model)
    band_loss(iterative, bundle)  # cold: dense solves fill the block cache
    nudge(iterative.model)
    nudge(dense.model)
    losses, grads = [], []
    for hamiltonian in (iterative, dense):
        hamiltonian.model.zero_grad()
        loss = band_loss(hamiltonian, bundle)
        loss.backward()
        losses.append(float(loss.detach()))
        grads.append(torch.cat([p.grad.flatten() for p in hamiltonian.model.parameters()]))
    assert iterative.solver_stats == {"cold": 25, "iterative": 25}
    assert losses[0] == pytest.approx(losses[1], rel=1e-12)
    assert float((grads[0] - grads[1]).norm() / grads[1].norm()) < 1e-6
    with torch.no_grad():
        torch.testing.assert_close(iterative.bands(0), dense.bands(0), rtol=0, atol=1e-8)


def test_five_adam_steps_equal_dense() -> None:
    bundle = cdse(3.0, n_kpoints=12)
    model = network(2, seed=4)
    iterative, dense = pair(bundle, model)
    trajectories = []
    for hamiltonian in (iterative, dense):
        optimizer = torch.optim.Adam(hamiltonian.model.parameters(), lr=1e-3)
        losses = []
        for _ in range(5):
            optimizer.zero_grad()
            loss = band_loss(hamiltonian, bundle)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        weights = torch.cat([p.detach().flatten() for p in hamiltonian.model.parameters()])
        trajectories.append((torch.tensor(losses), weights))
    assert iterative.solver_stats.get("iterative", 0) >= 4 * 12
    (loss_it, w_it), (loss_dense, w_dense) = trajectories
    torch.testing.assert_close(loss_it, loss_dense, rtol=1e-8, atol=0)
    assert float((w_it - w_dense).norm() / w_dense.norm()) < 1e-8


def test_spin_orbit_kramers_pairs_and_strength_gradients_match_dense() -> None:
    bundle = cspbi3()
    slots = (5, 6, 7)
    iterative = build_hamiltonian(
        bundle, spin_orbit=True, eigensolver="davidson", train_slots=slots
    )
    dense = build_hamiltonian(bundle, spin_orbit=True, eigensolver="lapack", train_slots=slots)
    band_loss(iterative, bundle)
    grads = []
    for hamiltonian in (iterative, dense):
        with torch.no_grad():
            hamiltonian.pp_free.mul_(1.01)
        loss = band_loss(hamiltonian, bundle)
        grads.append(torch.autograd.grad(loss, hamiltonian.pp_free)[0])
    assert iterative.solver_stats["iterative"] == 3
    assert float((grads[0] - grads[1]).norm() / grads[1].norm()) < 1e-6
    with torch.no_grad():
        bands = iterative.bands(0)
        torch.testing.assert_close(bands, dense.bands(0), rtol=0, atol=1e-8)
    torch.testing.assert_close(bands[:, ::2], bands[:, 1::2], rtol=0, atol=1e-9)


def test_degenerate_gamma_triplet_with_complete_basis() -> None:
    bundle = cdse(4.0, n_kpoints=None)
    k = torch.tensor([0, GAMMA])
    slots = (0, 1, 2, 3)
    iterative = build_hamiltonian(bundle, eigensolver="davidson", train_slots=slots)
    dense = build_hamiltonian(bundle, eigensolver="lapack", train_slots=slots)
    with torch.no_grad():
        iterative.bands(0, k)
    values = []
    for hamiltonian in (iterative, dense):
        with torch.no_grad():
            hamiltonian.pp_free.mul_(1.002)
        bands = hamiltonian.bands(0, k)
        triplet = bands[1, 2:8].sum()  # symmetric in the degenerate valence triplet
        grad = torch.autograd.grad(triplet, hamiltonian.pp_free)[0]
        values.append((bands.detach(), grad))
    assert iterative.solver_stats["iterative"] == 2
    (bands_it, grad_it), (bands_dense, grad_dense) = values
    torch.testing.assert_close(bands_it, bands_dense, rtol=0, atol=1e-8)
    assert float(bands_it[1, 2:8].max() - bands_it[1, 2:8].min()) < 1e-9
    assert float((grad_it - grad_dense).norm() / grad_dense.norm()) < 1e-6


def test_band_crossings_along_the_path_match_dense() -> None:
    bundle = cdse(3.0, n_kpoints=None)
    iterative, dense = pair(bundle, None)
    with torch.no_grad():
        iterative.bands(0)
        for hamiltonian in (iterative, dense):
            hamiltonian.pp_fixed[:, 0] *= 1.02
        bands = iterative.bands(0)
        torch.testing.assert_close(bands, dense.bands(0), rtol=0, atol=1e-8)
    assert iterative.solver_stats["iterative"] == 61
    steps = torch.diff(torch.sort(bands, dim=1).values - bands, dim=0)
    assert float(steps.abs().max()) == 0.0  # ascending at every k, like the dense solver


# -- when the cached vectors must not be used ------------------------------------------------


def warm(bundle=None, **switches):
    """A Hamiltonian with a filled block cache for the first 3 k-points of CdSe."""
    bundle = bundle or cdse(3.0, n_kpoints=3)
    hamiltonian = build_hamiltonian(bundle, eigensolver="davidson", **switches)
    with torch.no_grad():
        hamiltonian.bands(0)
    return hamiltonian


def evaluate(hamiltonian) -> dict[str, int]:
    before = hamiltonian.solver_stats
    with torch.no_grad():
        hamiltonian.bands(0)
    after = hamiltonian.solver_stats
    return {
        key: after[key] - before.get(key, 0) for key in after if after[key] - before.get(key, 0)
    }


def test_device_moves_and_invalidate_forget_the_vectors() -> None:
    hamiltonian = warm()
    assert evaluate(hamiltonian) == {"iterative": 3}
    hamiltonian.to("cpu")
    assert evaluate(hamiltonian) == {"cold": 3}
    hamiltonian.invalidate()
    assert evaluate(hamiltonian) == {"cold": 3}
    assert evaluate(hamiltonian) == {"iterative": 3}


def test_deformed_and_replica_views_keep_their_own_vectors() -> None:
    hamiltonian = warm()
    blocks = dict(hamiltonian._warm.blocks)

    def untouched() -> bool:
        current = hamiltonian._warm.blocks
        return current.keys() == blocks.keys() and all(current[k] is blocks[k] for k in blocks)

    view = hamiltonian.deformed(0, 1.01)
    assert evaluate(view) == {"cold": 3}
    assert evaluate(view) == {"iterative": 3}
    assert untouched()
    replica = hamiltonian.replica(None)
    assert evaluate(replica) == {"cold": 3}
    assert evaluate(replica) == {"iterative": 3}
    assert untouched()
    assert evaluate(hamiltonian) == {"iterative": 3}


def test_snapshot_restore_after_a_rejected_move() -> None:
    hamiltonian = warm()
    dense = build_hamiltonian(cdse(3.0, n_kpoints=3), eigensolver="lapack")
    accepted = hamiltonian.snapshot()
    table = hamiltonian.pp_fixed.clone()
    with torch.no_grad():
        hamiltonian.pp_fixed[:, 0] *= 1.01  # trial move, then rejected
    assert evaluate(hamiltonian) == {"iterative": 3}
    assert all(hamiltonian._warm.blocks[key] is not b for key, b in accepted.blocks.items())
    hamiltonian.pp_fixed.copy_(table)
    hamiltonian.restore(accepted)
    assert all(hamiltonian._warm.blocks[key] is block for key, block in accepted.blocks.items())
    assert evaluate(hamiltonian) == {"iterative": 3}
    with torch.no_grad():
        torch.testing.assert_close(hamiltonian.bands(0), dense.bands(0), rtol=0, atol=1e-8)


def test_large_moves_refresh_and_non_convergence_fall_back_to_dense() -> None:
    hamiltonian = warm()
    with torch.no_grad():
        hamiltonian.pp_fixed[:, 0] *= 3.0  # far beyond the block's spectral gap
    assert evaluate(hamiltonian) == {"moved": 3}
    refreshing = warm(davidson_refresh=2)
    assert [evaluate(refreshing) for _ in range(3)] == [{"iterative": 3}] * 2 + [{"refresh": 3}]
    stubborn = warm(davidson_max_iter=1, davidson_tol=1e-14)
    dense = build_hamiltonian(cdse(3.0, n_kpoints=3), eigensolver="lapack")
    with torch.no_grad():
        stubborn.pp_fixed[:, 0] *= 1.01
        dense.pp_fixed[:, 0] *= 1.01
        assert evaluate(stubborn) == {"unconverged": 3}
        torch.testing.assert_close(stubborn.bands(0), dense.bands(0), rtol=0, atol=1e-10)


def test_auto_choice_and_option_checks() -> None:
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert uses_iterative("auto", cpu, 537, 400)
    assert not uses_iterative("auto", cpu, 259, 400)
    assert not uses_iterative("auto", gpu, 5000, 400)
    assert uses_iterative("davidson", gpu, 10, 400)
    assert not uses_iterative("lapack", cpu, 5000, 400)
    with pytest.raises(SettingError, match="davidson_tol"):
        PhysicsOptions(davidson_tol=0.0)
    with pytest.raises(SettingError, match="davidson_max_iter"):
        PhysicsOptions(davidson_max_iter=0)


def test_batched_warm_start_path_matches_dense(monkeypatch: pytest.MonkeyPatch) -> None:
    """The GPU code path (all warm k-points of a chunk in one batched Davidson), run on CPU."""
    import dpp.physics.warmstart as warmstart

    monkeypatch.setattr(warmstart, "_batches", lambda rows, device: [rows] if rows else [])
    bundle = cspbi3(1.5, n_kpoints=4)
    batched = build_hamiltonian(bundle, spin_orbit=True, eigensolver="davidson")
    dense = build_hamiltonian(bundle, spin_orbit=True, eigensolver="lapack")
    with torch.no_grad():
        batched.bands(0)
        for hamiltonian in (batched, dense):
            hamiltonian.pp_fixed[:, 5] *= 1.02
        torch.testing.assert_close(batched.bands(0), dense.bands(0), rtol=0, atol=1e-8)
    assert batched.solver_stats == {"cold": 4, "iterative": 4}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_batched_davidson_on_cuda_matches_dense() -> None:
    bundle = cspbi3(2.0, n_kpoints=4)
    gpu = build_hamiltonian(bundle, spin_orbit=True, eigensolver="davidson", device="cuda")
    cpu = build_hamiltonian(bundle, spin_orbit=True, eigensolver="lapack")
    with torch.no_grad():
        gpu.bands(0)
        for hamiltonian in (gpu, cpu):
            hamiltonian.pp_fixed[:, 5] *= 1.02
        torch.testing.assert_close(gpu.bands(0).cpu(), cpu.bands(0), rtol=0, atol=1e-8)
    assert gpu.solver_stats["iterative"] == 4


@pytest.mark.slow
def test_cspbi3_full_basis_warm_start_matches_dense() -> None:
    bundle = shrink_bundle(load_bundle(DATA / "CsPbI3_soc"), 6.0, n_kpoints=2)
    hamiltonian = build_hamiltonian(bundle, spin_orbit=True)  # auto: davidson at 2378
    with torch.no_grad():
        first = hamiltonian.bands(0)
        hamiltonian.pp_fixed[:, 5] *= 1.01
        warm_bands = hamiltonian.bands(0)
    dense = build_hamiltonian(bundle, spin_orbit=True, eigensolver="lapack")
    with torch.no_grad():
        dense.pp_fixed[:, 5] *= 1.01
        torch.testing.assert_close(warm_bands, dense.bands(0), rtol=0, atol=1e-8)
    assert hamiltonian.solver_stats == {"cold": 2, "iterative": 2}
    assert float((warm_bands - first).abs().max()) > 1e-3 / AUTOEV

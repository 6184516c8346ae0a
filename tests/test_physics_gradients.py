"""Autograd of the eigensolver and of the band-structure loss against finite differences."""

from __future__ import annotations

import pytest
import torch
from bundle_support import DATA, EXAMPLES, shrink_bundle

from dpp.fitting import LossSettings
from dpp.fitting.build import training_objective
from dpp.io import load_bundle
from dpp.models import build_model
from dpp.physics import build_hamiltonian
from dpp.physics.eigensolver import lowest_eigh, lowest_eigh_raw


def band_loss(objective, hamiltonian) -> torch.Tensor:
    """Σ_X L_X over every system and k-point (eV²)."""
    return sum(
        objective.batch(hamiltonian, s, torch.arange(g.n_kpoints))
        for s, g in enumerate(hamiltonian.geometries)
    )


def hermitian(a: torch.Tensor) -> torch.Tensor:
    return 0.5 * (a + a.mH)


@pytest.mark.parametrize("solver", ["lapack", "torch"])
def test_gradcheck_small_hermitian(solver: str) -> None:
    generator = torch.Generator().manual_seed(1)
    a = torch.randn(2, 6, 6, dtype=torch.complex128, generator=generator, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: lowest_eigh(hermitian(x), 3, solver)[0], (a,))


def test_gradcheck_degenerate_bands_with_symmetric_loss() -> None:
    generator = torch.Generator().manual_seed(2)
    q, _ = torch.linalg.qr(torch.randn(5, 5, dtype=torch.complex128, generator=generator))
    base = q @ torch.diag(torch.tensor([1.0, 1.0, 2.0, 3.0, 4.0], dtype=torch.complex128)) @ q.mH
    a = torch.zeros(5, 5, dtype=torch.complex128, requires_grad=True)

    def symmetric_in_degenerate_pair(x: torch.Tensor) -> torch.Tensor:
        values = lowest_eigh(base + hermitian(x), 3)[0]
        return torch.stack([values[0] + values[1], values[0] ** 2 + values[1] ** 2, values[2]])

    assert torch.autograd.gradcheck(symmetric_in_degenerate_pair, (a,))


def test_subset_solver_matches_full_eigh() -> None:
    generator = torch.Generator().manual_seed(3)
    a = hermitian(torch.randn(3, 40, 40, dtype=torch.complex128, generator=generator))
    values, vectors = lowest_eigh_raw(a, 7, "lapack")
    reference = torch.linalg.eigvalsh(a)[:, :7]
    torch.testing.assert_close(values, reference, rtol=0, atol=1e-12)
    residual = a @ vectors - vectors * values[:, None, :]
    assert residual.abs().max() < 1e-12


def central_difference(loss, tensors: list[torch.Tensor], step: float) -> tuple[float, float]:
    """Directional derivative along a random direction: (autograd, central difference)."""
    generator = torch.Generator().manual_seed(4)
    directions = [torch.randn(t.shape, dtype=t.dtype, generator=generator) for t in tensors]
    value = loss()
    grads = torch.autograd.grad(value, tensors)
    analytic = sum(float((g * d).sum()) for g, d in zip(grads, directions, strict=True))
    with torch.no_grad():
        for t, d in zip(tensors, directions, strict=True):
            t.add_(step * d)
        plus = float(loss())
        for t, d in zip(tensors, directions, strict=True):
            t.sub_(2 * step * d)
        minus = float(loss())
        for t, d in zip(tensors, directions, strict=True):
            t.add_(step * d)
    return analytic, (plus - minus) / (2 * step)


def test_network_gradient_matches_finite_differences() -> None:
    bundle = shrink_bundle(load_bundle(EXAMPLES / "zb_CdSe"), 2.5, n_kpoints=4)
    generator = torch.Generator().manual_seed(0)
    model = build_model(
        "Net_celu_HeInit_decayGaussian", [8, 8], 2, gaussian_std=2.0, generator=generator
    )
    hamiltonian = build_hamiltonian(bundle, model)
    objective = training_objective(bundle, LossSettings())
    analytic, numeric = central_difference(
        lambda: band_loss(objective, hamiltonian), list(model.parameters()), 1e-6
    )
    assert analytic == pytest.approx(numeric, rel=1e-6)


def test_spin_orbit_nonlocal_and_zunger_gradients_match_finite_differences() -> None:
    bundle = shrink_bundle(load_bundle(DATA / "CsPbI3_soc"), 1.5, n_kpoints=2)
    hamiltonian = build_hamiltonian(bundle, spin_orbit=True, train_slots=(0, 1, 2, 3, 5, 6, 7))
    objective = training_objective(bundle, LossSettings())
    assert hamiltonian.options.spin_orbit
    analytic, numeric = central_difference(
        lambda: band_loss(objective, hamiltonian), [hamiltonian.pp_free], 1e-6
    )
    assert analytic == pytest.approx(numeric, rel=1e-6)

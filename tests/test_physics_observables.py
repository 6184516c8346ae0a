"""Deformation potentials under uniform strain (physics.md §13.1)."""

from __future__ import annotations

import pytest
import torch
from bundle_support import EXAMPLES, shrink_bundle

from dpp.io import load_bundle
from dpp.io.observables import DefPotTarget
from dpp.models import build_model
from dpp.physics import build_hamiltonian
from dpp.physics.observables import deformation_loss, deformation_potentials

GAMMA = 20


def cdse(max_ke: float = 3.0):
    return shrink_bundle(load_bundle(EXAMPLES / "zb_CdSe"), max_ke)


@pytest.mark.parametrize("a8", [0.0, 0.3])
def test_deformed_hamiltonian_follows_scaling_rules(a8: float) -> None:
    bundle = cdse()
    bundle.pp_params[:, 8] = a8
    hamiltonian = build_hamiltonian(bundle)
    strain = 1.02
    k = torch.tensor([GAMMA - 3])
    with torch.no_grad():
        deformed = hamiltonian.deformed(0, strain).hamiltonians(0, k)[0]
        geometry = hamiltonian.geometries[0]
        values = hamiltonian.form_factors(geometry.unique_q / strain) * (1 + a8 * (strain**3 - 1))
        local = (
            sum(values[:, s][geometry.q_index] * geometry.structure_factors[s] for s in range(2))
            / strain**3
        )
        wave = (geometry.kpoints[k] + geometry.basis) / strain
        expected = local + torch.diag(0.5 * (wave * wave).sum(1)).to(local.dtype)
    torch.testing.assert_close(deformed, expected, rtol=1e-12, atol=1e-12)


def test_gap_deformation_potential_is_physical_and_differentiable() -> None:
    bundle = cdse(4.0)
    model = build_model(
        "Net_celu_HeInit_decayGaussian",
        [8],
        2,
        gaussian_std=2.0,
        generator=torch.Generator().manual_seed(0),
    )
    hamiltonian = build_hamiltonian(bundle)
    rows = [
        DefPotTarget(((GAMMA, 7), (GAMMA, 8)), 1.01, -2.5, 1.0, 1),
        DefPotTarget(((GAMMA, 7), (GAMMA, 8)), 0.99, -2.5, 1.0, 2),
        DefPotTarget(((GAMMA, 7), (GAMMA, 8)), 1.0001, -2.5, 1.0, 3),
        DefPotTarget(((GAMMA, 7),), 1.01, 0.0, 0.5, 4),
    ]
    values = deformation_potentials(hamiltonian, 0, rows)
    assert -5.0 < float(values[2]) < -0.5  # the direct gap of CdSe closes under compression
    centred = 0.5 * float(values[0] + values[1])
    assert centred == pytest.approx(float(values[2]), rel=5e-3)  # O(strain²) residual
    network = build_hamiltonian(bundle, model)
    loss = deformation_loss(network, 0, rows)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert any(float(p.grad.abs().sum()) > 0 for p in model.parameters())

"""The Hamiltonian terms (dpp.physics.terms): sums, adjoints, kernels and drift bounds.

Every operator term in the registry is checked by the generic tests here (sum of the term
matrices, adjoint identity, drift bound), so a new term is covered once it is registered.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from bundle_support import DATA, EXAMPLES, shrink_bundle

from dpp.io import load_bundle
from dpp.models import build_model
from dpp.physics import build_hamiltonian
from dpp.physics.constants import NL0_WIDTH
from dpp.physics.radial import projector_rules, radial_integral
from dpp.physics.terms import FORM_FACTOR_TERMS, OPERATOR_TERMS, Parameters
from dpp.physics.terms.checks import assert_adjoint, check_terms
from dpp.slots import LEGACY_SLOTS, Slot


def cdse(max_ke: float = 3.0):
    bundle = shrink_bundle(load_bundle(EXAMPLES / "zb_CdSe"), max_ke, n_kpoints=25)
    bundle.pp_params[:, Slot.LONG_RANGE] = [0.3, -0.3]
    return bundle


def cspbi3(max_ke: float = 1.5):
    return shrink_bundle(load_bundle(DATA / "CsPbI3_soc"), max_ke, n_kpoints=3)


def with_s_channel(bundle):
    """The bundle with non-zero nonlocal s-channel strengths a9."""
    bundle.pp_params[:, Slot.NONLOCAL_0] = np.linspace(0.4, -0.3, bundle.n_species)
    return bundle


HAMILTONIANS = {
    "plain": lambda: build_hamiltonian(cdse()),
    "s_channel": lambda: build_hamiltonian(with_s_channel(cdse()), nonlocal_s=True),
    "s_channel_spin_orbit": lambda: build_hamiltonian(
        with_s_channel(cspbi3()), spin_orbit=True, nonlocal_s=True
    ),
    "spin_orbit": lambda: build_hamiltonian(cspbi3(), spin_orbit=True),
    "nonlocal_without_soc": lambda: build_hamiltonian(cspbi3(), nonlocal_without_soc=True),
}


@pytest.mark.parametrize("case", HAMILTONIANS)
def test_term_operators_sum_to_hamiltonian(case: str) -> None:
    hamiltonian = HAMILTONIANS[case]()
    k = torch.tensor([0, 2])
    operators = hamiltonian.term_operators(0, k)
    expected = {"local", "kinetic"}
    if case not in ("plain", "s_channel"):
        expected.add("nonlocal")
    if "spin_orbit" in case:
        expected.add("spin_orbit")
    if case.startswith("s_channel"):
        expected.add("nonlocal_s")
    assert set(operators) == expected
    with torch.no_grad():
        total = hamiltonian.hamiltonians(0, k)
    torch.testing.assert_close(sum(operators.values()), total, rtol=0, atol=1e-14)
    kinetic = operators["kinetic"]
    geometry = hamiltonian.geometries[0]
    waves = geometry.kpoints[k][:, None, :] + geometry.basis[None]
    energies = 0.5 * (waves * waves).sum(-1)
    spinor = 2 if "spin_orbit" in case else 1
    torch.testing.assert_close(
        kinetic, torch.diag_embed(energies.repeat(1, spinor)).to(kinetic.dtype)
    )
    for name, matrix in operators.items():
        torch.testing.assert_close(matrix, matrix.mH, rtol=0, atol=1e-13, msg=name)


@pytest.mark.parametrize("case", HAMILTONIANS)
def test_every_operator_term_passes_the_shipped_checks(case: str) -> None:
    """Hermiticity, the adjoint identity and the drift bound (dpp.physics.terms.checks)."""
    hamiltonian = HAMILTONIANS[case]()
    check_terms(hamiltonian, k_indices=(1, 2))


def test_the_adjoint_check_catches_a_wrong_adjoint() -> None:
    hamiltonian = HAMILTONIANS["spin_orbit"]()
    term = next(t for t in hamiltonian.terms(0) if t.name == "spin_orbit")
    parameters = Parameters(hamiltonian.pp_table().detach(), None)
    k = torch.tensor([1])
    assert_adjoint(term, parameters, k)
    original = term.adjoint
    term.adjoint = lambda grad, k_indices: tuple(2 * c for c in original(grad, k_indices))
    with pytest.raises(AssertionError, match="spin_orbit"):
        assert_adjoint(term, parameters, k)


def test_registry_names_and_slots_are_unique() -> None:
    names = [term.name for term in (*FORM_FACTOR_TERMS, *OPERATOR_TERMS)]
    assert len(names) == len(set(names))
    slots = [slot for term in (*FORM_FACTOR_TERMS, *OPERATOR_TERMS) for slot in term.slots]
    assert len(slots) == len(set(slots))
    assert all(isinstance(slot, Slot) for slot in slots)


def test_long_range_tail_on_network_only_when_asked() -> None:
    bundle = cdse(2.0)
    model = build_model("Net_relu", [4], 2, generator=torch.Generator().manual_seed(0))
    q = torch.tensor([0.5, 1.0], dtype=torch.float64)
    with torch.no_grad():
        with_tail = build_hamiltonian(bundle, model).form_factors(q)
        without = build_hamiltonian(bundle, model, long_range_with_nn=False).form_factors(q)
        plain = model(q[:, None])
    torch.testing.assert_close(without, plain)
    tail = with_tail - plain
    assert float(tail[0, 0]) == pytest.approx(-0.3 * 10.53621750372248, rel=1e-12)
    assert float(tail[0, 1]) == pytest.approx(0.3 * 10.53621750372248, rel=1e-12)


def explicit_kernels(waves: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The kernels of physics.md §5.6–5.8 element by element (P·I ∘ c, P·I ∘ dot)."""
    norms = waves.norm(dim=1)
    rules = projector_rules(64)
    k1, k2 = norms[:, None].expand(-1, len(norms)), norms[None, :].expand(len(norms), -1)
    p = 12 * math.pi / (k1 * k2)
    p = torch.where((k1 * k2) > 0, p, torch.zeros_like(p))
    cross = torch.cross(waves[:, None, :].expand(-1, len(norms), -1), waves[None], dim=-1)
    dot = waves @ waves.T
    soc = p * radial_integral(k1, k2, rules["soc"])
    return (
        *(soc * cross[..., a] for a in range(3)),
        p * radial_integral(k1, k2, rules["nl1"]) * dot,
        p * radial_integral(k1, k2, rules["nl2"]) * dot,
    )


def test_low_rank_kernels_match_the_element_formula() -> None:
    hamiltonian = build_hamiltonian(cspbi3(1.0), spin_orbit=True)
    factors = hamiltonian.projector_kernels(0)
    geometry = hamiltonian.geometries[0]
    k = 1
    expected = explicit_kernels(geometry.kpoints[k] + geometry.basis)
    found = (*factors.cross_kernels(k), factors.dot_kernel(k, "nl1"), factors.dot_kernel(k, "nl2"))
    for a, b in zip(found, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    bound = factors.dot_kernel_norm("nl1")
    spectral = max(
        float(torch.linalg.matrix_norm(factors.dot_kernel(i, "nl1"), ord=2)) for i in range(3)
    )
    assert spectral <= bound <= 10 * spectral


def s_integral(k1: float, k2: float, width: float) -> float:
    """∫ r² j0(k1 r) j0(k2 r) exp(−r²/w²) dr in closed form: (√π w³/4) e^{−(k1² + k2²) w²/4}
    i0(k1 k2 w²/2), i0(z) = sinh(z)/z."""
    z = 0.5 * k1 * k2 * width**2
    i0 = math.sinh(z) / z if z > 0 else 1.0
    return math.sqrt(math.pi) * width**3 / 4 * math.exp(-((k1**2 + k2**2) * width**2) / 4) * i0


def test_s_channel_kernel_is_the_closed_form_integral() -> None:
    """4π ∫ r² j0 j0 exp(−r²/w²) dr at w = NL0_WIDTH, element by element (at Γ: K = 0
    included)."""
    hamiltonian = build_hamiltonian(cdse(1.0), nonlocal_s=True)
    geometry = hamiltonian.geometries[0]
    k = int(geometry.kpoints.norm(dim=1).argmin())
    waves = geometry.kpoints[k] + geometry.basis
    norms = waves.norm(dim=1).tolist()
    assert min(norms) == 0.0
    kernel = hamiltonian.projector_kernels(0).dot_kernel(k, "nl0")
    expected = torch.tensor(
        [[4 * math.pi * s_integral(a, b, NL0_WIDTH) for b in norms] for a in norms],
        dtype=torch.float64,
    )
    torch.testing.assert_close(kernel, expected, rtol=1e-11, atol=1e-13)
    bound = hamiltonian.projector_kernels(0).dot_kernel_norm("nl0")
    assert float(torch.linalg.matrix_norm(kernel, ord=2)) <= bound


def test_drift_bounds_cover_the_actual_change() -> None:
    bundle = cspbi3()
    hamiltonian = build_hamiltonian(
        bundle, spin_orbit=True, nonlocal_s=True, train_slots=tuple(Slot)
    )
    before = hamiltonian.pp_table().detach().clone()
    after = before.clone()
    generator = torch.Generator().manual_seed(3)
    # a0..a8 first, then a9: the same draws for a0..a8 as before the s-channel existed
    after[:, :LEGACY_SLOTS] += 0.05 * torch.randn(
        (after.shape[0], LEGACY_SLOTS), dtype=after.dtype, generator=generator
    )
    after[:, Slot.NONLOCAL_0] += 0.05 * torch.randn(
        after.shape[0], dtype=after.dtype, generator=generator
    )
    k = torch.arange(3)
    with torch.no_grad():
        operators = [hamiltonian.term_operators(0, k)]
        hamiltonian.pp_free.copy_(after[hamiltonian.pp_mask])
        operators.append(hamiltonian.term_operators(0, k))
    for term in hamiltonian.terms(0):
        states = []
        for table in (before, after):
            parameters = Parameters(table, None)
            with torch.no_grad():
                states.append(term.drift_state(parameters, term.coefficients(parameters)))
        bound = term.drift(*states)
        change = operators[1][term.name] - operators[0][term.name]
        actual = float(torch.linalg.matrix_norm(change, ord=2).max())
        assert actual <= bound * 1.0001 + 1e-14, term.name
        if term.name == "local":
            assert bound == pytest.approx(actual, rel=0.05)
        assert term.drift(states[0], states[0]) == 0.0


def test_projector_factors_are_cached_only_when_asked() -> None:
    bundle = cspbi3(1.0)
    cached = build_hamiltonian(bundle, spin_orbit=True).projector_kernels(0)
    uncached = build_hamiltonian(bundle, spin_orbit=True, cache_projectors=False)
    uncached = uncached.projector_kernels(0)
    np.testing.assert_array_equal(cached.factors(0, "soc"), uncached.factors(0, "soc"))
    assert (0, "soc") in cached._cached and not uncached._cached

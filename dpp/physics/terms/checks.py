"""Checks for operator terms, new ones included: run them on your own term before training.

    from dpp.physics.terms.checks import check_terms
    check_terms(build_hamiltonian(bundle, spin_orbit=True))   # raises AssertionError

Each check works through the public term interface only (`coefficients`, `add_to`,
`adjoint`, `drift_state`, `drift`), so it holds for any subclass of `OperatorTerm`:

- Hermiticity: the term's matrix at every k-point checked is Hermitian;
- adjoint: Re⟨G, L(C) − L(0)⟩ = Re⟨L*(G), C⟩ for random coefficients C and gradients G, i.e.
  `adjoint` is the adjoint of the linear part of `add_to` (what the backward pass relies on);
- drift: `drift` bounds (to a few per cent) the spectral norm of the change of the term's
  matrix between two parameter tables (what the warm-started eigensolver relies on).

`assert_self_adjoint` checks a matrix-free operator (e.g. each term of a dpp.states box):
⟨x, A y⟩ = ⟨A x, y⟩ for random blocks x, y.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from dpp.physics.hamiltonian import PseudopotentialHamiltonian
from dpp.physics.terms.base import Coefficients, OperatorTerm, Parameters


def _matrix(
    term: OperatorTerm, k_indices: torch.Tensor, coefficients: Coefficients, dim: int
) -> torch.Tensor:
    out = torch.zeros((len(k_indices), dim, dim), dtype=torch.complex128)
    term.add_to(out, k_indices, coefficients)
    return out


def assert_hermitian(
    term: OperatorTerm, parameters: Parameters, k_indices: torch.Tensor, atol: float = 1e-12
) -> None:
    """The term's matrix (Hartree) is Hermitian at every k-point of `k_indices`."""
    with torch.no_grad():
        matrix = _matrix(term, k_indices, term.coefficients(parameters), term.context.dim)
    error = float((matrix - matrix.mH).abs().max())
    assert error <= atol, f"{term.name}: not Hermitian (max |H − Hᴴ| = {error:.3g} Hartree)"


def assert_adjoint(
    term: OperatorTerm,
    parameters: Parameters,
    k_indices: torch.Tensor,
    seed: int = 0,
    rtol: float = 1e-10,
) -> None:
    """`term.adjoint` is the adjoint of the linear part of `term.add_to`."""
    generator = torch.Generator().manual_seed(seed)
    dim = term.context.dim
    with torch.no_grad():
        shapes = [c.shape for c in term.coefficients(parameters)]
        coefficients = tuple(
            torch.randn(shape, dtype=torch.complex128, generator=generator) for shape in shapes
        )
        zeros = tuple(torch.zeros_like(c) for c in coefficients)
        linear = _matrix(term, k_indices, coefficients, dim) - _matrix(term, k_indices, zeros, dim)
        grad = torch.randn((len(k_indices), dim, dim), dtype=torch.complex128, generator=generator)
        adjoint = term.adjoint(grad, k_indices)
    assert len(adjoint) == len(coefficients), (
        f"{term.name}: adjoint returns {len(adjoint)} tensors for {len(coefficients)} coefficients"
    )
    left = float(torch.vdot(grad.flatten(), linear.flatten()).real)
    right = sum(
        float(torch.vdot(a.flatten().to(c.dtype), c.flatten()).real)
        for a, c in zip(adjoint, coefficients, strict=True)
    )
    scale = max(abs(left), abs(right), 1e-300)
    assert abs(left - right) <= rtol * scale + 1e-9, (
        f"{term.name}: <G, L(C)> = {left:.12g} but <adjoint(G), C> = {right:.12g}"
    )


def assert_drift_bound(
    term: OperatorTerm,
    before: Parameters,
    after: Parameters,
    k_indices: torch.Tensor,
    rtol: float = 0.05,
) -> None:
    """`term.drift` bounds ‖ΔH_term(k)‖₂ (Hartree) between the two parameter tables, to
    `rtol` (a norm estimated by power iteration, as the local term's, may fall short of the
    exact one by a few per cent)."""
    dim = term.context.dim
    with torch.no_grad():
        states, matrices = [], []
        for parameters in (before, after):
            coefficients = term.coefficients(parameters)
            states.append(term.drift_state(parameters, coefficients))
            matrices.append(_matrix(term, k_indices, coefficients, dim))
    bound = term.drift(*states)
    actual = float(torch.linalg.matrix_norm(matrices[1] - matrices[0], ord=2).max())
    assert actual <= bound * (1 + rtol) + 1e-14, (
        f"{term.name}: drift bound {bound:.6g} Hartree below the actual change {actual:.6g}"
    )
    assert term.drift(states[0], states[0]) == 0.0, f"{term.name}: drift of no change is not 0"


def assert_self_adjoint(
    name: str,
    operator: Callable[[torch.Tensor], torch.Tensor],
    dim: int,
    columns: int = 3,
    seed: int = 0,
    rtol: float = 1e-12,
    device: torch.device | str = "cpu",
) -> None:
    """The matrix-free `operator` (vectors (dim, m) → (dim, m), complex128) is Hermitian:
    Xᴴ(A Y) = (A X)ᴴY for random blocks X, Y, to `rtol` of the largest entry."""
    generator = torch.Generator().manual_seed(seed)
    x, y = (
        torch.randn((dim, columns), dtype=torch.complex128, generator=generator) for _ in range(2)
    )
    x, y = x.to(device), y.to(device)
    with torch.no_grad():
        left = x.mH @ operator(y)
        right = operator(x).mH @ y
    error = float((left - right).abs().max())
    scale = max(float(left.abs().max()), 1e-300)
    assert error <= rtol * scale, f"{name}: not Hermitian (|<x,Ay> − <Ax,y>| = {error:.3g})"


def check_terms(
    hamiltonian: PseudopotentialHamiltonian,
    system: int = 0,
    k_indices: Sequence[int] = (0,),
    step: float = 0.05,
    seed: int = 0,
) -> None:
    """Every check above for every active operator term of `system`; the drift check moves
    every parameter slot by a random relative `step`."""
    k = torch.as_tensor(list(k_indices), dtype=torch.long)
    table = hamiltonian.pp_table().detach()
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(table.shape, dtype=table.dtype, generator=generator)
    moved = table + step * noise * table.abs().clamp_min(1e-3)
    before = Parameters(table, hamiltonian.model)
    after = Parameters(moved, hamiltonian.model)
    for term in hamiltonian.terms(system):
        assert_hermitian(term, before, k)
        assert_adjoint(term, before, k, seed=seed)
        assert_drift_bound(term, before, after, k)

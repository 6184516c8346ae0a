"""H(k) from the operator terms: one preallocated tensor, one autograd node."""

from __future__ import annotations

import torch

from dpp.physics.terms.base import Coefficients, OperatorTerm


class _Assemble(torch.autograd.Function):
    """H(k) = Σ_terms (their part), written into one preallocated (B, dim, dim) tensor.

    The backward pass asks each term for the adjoint of its (linear) part, so nothing per
    k-point is saved between forward and backward.
    """

    @staticmethod
    def forward(ctx, terms, k_indices, dim, counts, *coefficients):  # noqa: ANN001, ANN205
        out = torch.zeros(
            (len(k_indices), dim, dim), dtype=torch.complex128, device=k_indices.device
        )
        start = 0
        for term, count in zip(terms, counts, strict=True):
            term.add_to(out, k_indices, coefficients[start : start + count])
            start += count
        ctx.terms, ctx.k_indices, ctx.counts = terms, k_indices, counts
        return out

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        grads: list[torch.Tensor | None] = []
        start = 0
        for term, count in zip(ctx.terms, ctx.counts, strict=True):
            wanted = any(ctx.needs_input_grad[4 + start : 4 + start + count])
            grads.extend(term.adjoint(grad, ctx.k_indices) if wanted else [None] * count)
            start += count
        return (None, None, None, None, *grads)


def assemble(
    terms: list[OperatorTerm],
    k_indices: torch.Tensor,
    dim: int,
    coefficients: list[Coefficients],
) -> torch.Tensor:
    """H(k) (B, dim, dim) in Hartree from the terms and their coefficients, differentiable
    in the coefficients; `k_indices` (B,) long on the device of the result."""
    counts = tuple(len(c) for c in coefficients)
    flat = [tensor for group in coefficients for tensor in group]
    return _Assemble.apply(terms, k_indices, dim, counts, *flat)

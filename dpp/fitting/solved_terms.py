"""Global loss terms that solve other Hamiltonians (deformation potentials, electron–phonon
couplings) as Gauss–Newton models in function space, for `dpp.fitting.linearisation`.

Such a term is weight · Σ_i r_i² of residuals r (`GlobalTerm.residuals`). One evaluation
records every form-factor evaluation v_s(q_c) its solves make (strained cells at |ΔG|/s,
the couplings' |ΔG'|) as a leaf tensor; the residuals' derivatives by those leaves and by the
trained analytic parameters (`pp_free`, at fixed form factors) are their autograd
vector–Jacobian products, one backward pass per residual (Hellmann–Feynman for eigenvalues,
first-order perturbation theory for the coupling eigenvectors). The model is
weight · Σ_i (r_i + J_i · δx)², x the form factors at the recorded q then `pp_free`,
re-evaluated from the network in every model evaluation (no solves).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from dpp.fitting.terms import GlobalTerm
from dpp.physics.hamiltonian import PseudopotentialHamiltonian
from dpp.physics.terms.base import FormFactorTerm, Parameters


@dataclass(frozen=True)
class FormFactorCall:
    """One evaluation of the form factors: q (M,) in 1/Bohr and Ω/Ω0."""

    q: torch.Tensor
    volume_ratio: float


class _Recorder:
    """A form-factor chain's terms run as one, whose output is a recorded leaf tensor."""

    def __init__(self, terms: list[FormFactorTerm]) -> None:
        self.terms = terms
        self.calls: list[FormFactorCall] = []
        self.leaves: list[torch.Tensor] = []

    def apply(
        self,
        q: torch.Tensor,
        values: torch.Tensor | None,
        parameters: Parameters,
        volume_ratio: float,
    ) -> torch.Tensor:
        for term in self.terms:
            values = term.apply(q, values, parameters, volume_ratio)
        assert values is not None
        leaf = values.detach().requires_grad_(True)
        self.calls.append(FormFactorCall(q.detach(), float(volume_ratio)))
        self.leaves.append(leaf)
        return leaf


@contextmanager
def recorded_form_factors(hamiltonian: PseudopotentialHamiltonian) -> Iterator[_Recorder]:
    """Within the block every v_s(q) of `hamiltonian` (and its strained views) is a leaf
    tensor detached from the network and `pp_free`, recorded with its q."""
    chain = hamiltonian.form_factor_chain
    original = chain.terms
    recorder = _Recorder(original)
    chain.terms = [recorder]
    try:
        yield recorder
    finally:
        chain.terms = original


@dataclass
class ResidualModel:
    """A solving term's loss to second order in δx = x − `values` (eV² or the term's unit
    squared): `weight` · Σ_i (residuals_i + jacobian_i · δx)², x the form factors at
    `calls` (flattened (M, n_species) per call, Hartree·Bohr³), then `pp_free` when trained.
    `scale` is the curvature's diagonal (floored at 1e-12), the damping metric."""

    label: str
    weight: float
    calls: list[FormFactorCall]
    values: torch.Tensor
    residuals: torch.Tensor
    jacobian: torch.Tensor
    scale: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.scale = (self.weight * self.jacobian.pow(2).sum(dim=0)).clamp(min=1e-12)

    @property
    def loss(self) -> float:
        return self.weight * float(self.residuals.pow(2).sum())

    @property
    def gradient(self) -> torch.Tensor:
        """d loss/dx at `values`."""
        return 2.0 * self.weight * (self.jacobian.T @ self.residuals)

    def variables(self, hamiltonian: PseudopotentialHamiltonian) -> torch.Tensor:
        """x at the present parameters, differentiable in the trainable tensors."""
        parts = [
            hamiltonian.form_factors(call.q, volume_ratio=call.volume_ratio).reshape(-1)
            for call in self.calls
        ]
        if hamiltonian.pp_free.requires_grad:
            parts.append(hamiltonian.pp_free)
        return torch.cat(parts)

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        linear = self.residuals + self.jacobian @ (values - self.values)
        return self.weight * (linear * linear).sum()


def residual_models(
    term: GlobalTerm, hamiltonian: PseudopotentialHamiltonian
) -> list[ResidualModel]:
    """The models of every label of `term` at the present parameters (one evaluation of
    the term, one backward pass per residual)."""
    free = hamiltonian.pp_free
    with torch.enable_grad(), recorded_form_factors(hamiltonian) as recorder:
        residuals = term.residuals(hamiltonian)
    if residuals is None:
        raise ValueError(f"the loss term {term.name} is no sum of squared residuals")
    inputs = [*recorder.leaves, *([free] if free.requires_grad else [])]
    values = torch.cat([x.detach().reshape(-1) for x in inputs])
    models = []
    for label, residual in residuals.items():
        rows = []
        for entry in residual.reshape(-1):
            if not entry.requires_grad:
                rows.append(torch.zeros_like(values))
                continue
            grads = torch.autograd.grad(entry, inputs, retain_graph=True, allow_unused=True)
            rows.append(
                torch.cat(
                    [
                        torch.zeros(x.numel(), dtype=values.dtype, device=values.device)
                        if g is None
                        else g.reshape(-1)
                        for x, g in zip(inputs, grads, strict=True)
                    ]
                )
            )
        jacobian = torch.stack(rows) if rows else values.new_zeros(0, len(values))
        models.append(
            ResidualModel(
                label, term.weight, recorder.calls, values, residual.detach().reshape(-1), jacobian
            )
        )
    return models

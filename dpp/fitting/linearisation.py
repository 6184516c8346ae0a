"""The objective as a quadratic model in function space: per system, the loss as a function of
the form factors v_s(q_u) at the system's unique |G − G'| and of the analytic parameters
trained beside the network (`pp_free`: spin–orbit, nonlocal, … strengths), with Gauss–Newton
curvature from the Hellmann–Feynman band derivatives, for `dpp.fitting.gauss_newton`.

The derivatives by v_s(q_u) are FFT autocorrelations of the eigenvectors
(`local_expectation_gradient`); those by `pp_free` are ⟨ψ|∂H/∂p|ψ⟩ over the other operator
terms at fixed v, with ∂H/∂p assembled from the terms' coefficients' forward-mode autograd
Jacobian–vector products (one per free parameter). A parameter that also enters v(q) (long
range a4, strain a8) reaches the model through v as well, so the chain rule is complete.

Band losses are quadratic in the bands (the weights, windows included, are fixed), so the
model's only approximation is first-order perturbation theory for the bands; the states of a
degenerate group share the derivative of their mean, the only one they have. Global terms that
diagonalise nothing (the v(q) penalties) are not modelled: the model evaluates them exactly;
those that solve (deformation potentials, couplings) are Gauss–Newton models of their
residuals (`dpp.fitting.solved_terms`), evaluated in full on every DDP rank.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch
from torch.autograd import forward_ad

from dpp.fitting.bands import BandTerm
from dpp.fitting.objective import Objective, same_tensors, trainable
from dpp.fitting.solved_terms import ResidualModel, residual_models
from dpp.fitting.terms import GlobalTerm
from dpp.models.batchnorm import repeatable
from dpp.physics.bands import needed_eigenvalues, process_bands
from dpp.physics.hamiltonian import PseudopotentialHamiltonian
from dpp.physics.terms.assembly import assemble
from dpp.physics.terms.base import Parameters
from dpp.physics.terms.local import LocalPotential


@dataclass
class SystemModel:
    """The k-point loss of one system to second order in δv = v − `values` (eV²):
    loss + gradient·δv + δv·curvature·δv, over the system's `model_variables` (the present
    species' form factors at the unique q, then `pp_free` when trained); `scale` is the
    curvature's diagonal (floored at 1e-12), the metric of the Levenberg–Marquardt damping."""

    loss: float
    values: torch.Tensor
    gradient: torch.Tensor
    curvature: torch.Tensor
    scale: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.scale = self.curvature.diagonal().clamp(min=1e-12)

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        step = values - self.values
        return self.loss + self.gradient @ step + step @ (self.curvature @ step)


@dataclass
class OffsetCoupling:
    """What a common energy zero adds to the sum of the systems' models, each taken with
    the offset c₀ of the present bands held fixed: −(weight/W)·(Σ_X g_X·δv_X)² (eV²), g_X =
    ∂S_X/∂v_X the slope of the system's weighted error sum (`BandTerm.offset_sum`), W the
    total weight. The sum is then the model of the loss with the offset optimal at every δv
    (its minimum over c), exactly; it is 0 with slope 0 at δv = 0."""

    slopes: list[torch.Tensor]
    scale: float

    def __call__(self, steps: Sequence[torch.Tensor]) -> torch.Tensor:
        moved = sum(slope @ step for slope, step in zip(self.slopes, steps, strict=True))
        return -self.scale * moved * moved


@dataclass
class Linearisation:
    """A full evaluation at `parameters`: the k-point loss per system (eV²), the global terms
    by label, each system's quadratic model, those of the global terms that solve
    (`dpp.fitting.solved_terms`) and the coupling of the systems by a common energy zero."""

    parameters: list[torch.Tensor]
    per_system: torch.Tensor
    terms: dict[str, float]
    models: list[SystemModel]
    solved: list[ResidualModel] = field(default_factory=list)
    coupling: OffsetCoupling | None = None

    @property
    def total(self) -> float:
        return float(self.per_system.sum()) + sum(self.terms.values())

    def taken_at(self, parameters: list[torch.Tensor]) -> bool:
        """Whether `parameters` are exactly the ones of this linearisation."""
        return same_tensors(self.parameters, parameters)


def unsupported(objective: Objective, hamiltonian: PseudopotentialHamiltonian) -> str | None:
    """Why the function-space model cannot represent this fit, or None when it can."""
    network = hamiltonian.model
    if network is None or not hamiltonian.uses_network:
        return "there is no network form factor"
    if not repeatable(network):
        return "the network's output depends on more than its parameters (batch norm, dropout)"
    if len(objective.kpoint_terms) != 1 or not isinstance(objective.primary, BandTerm):
        return "the k-point loss is not the band loss alone"
    if any(t.reordering.mode == "smooth" for t in objective.primary.targets):
        return "smooth band reordering permutes bands after the solve"
    unmodelled = [
        term.name
        for term in objective.global_terms
        if term.solves and type(term).residuals is GlobalTerm.residuals
    ]
    if unmodelled:
        return f"the loss terms {', '.join(unmodelled)} solve and are no sums of squares"
    return None


def form_factors_at_unique_q(hamiltonian: PseudopotentialHamiltonian, system: int) -> torch.Tensor:
    """v_s(q_u) of the present species at the system's unique q, flattened (Hartree·Bohr³),
    differentiable in the network parameters."""
    geometry = hamiltonian.geometries[system]
    values = hamiltonian.form_factors(geometry.unique_q, volume_ratio=geometry.volume_ratio)
    return values[:, geometry.species_present].reshape(-1)


def model_variables(hamiltonian: PseudopotentialHamiltonian, system: int) -> torch.Tensor:
    """The variables of a system's model, differentiable in the trainable tensors: the
    `form_factors_at_unique_q`, then `pp_free` (its slots' units) when it is trained."""
    values = form_factors_at_unique_q(hamiltonian, system)
    if hamiltonian.pp_free.requires_grad:
        values = torch.cat([values, hamiltonian.pp_free])
    return values


def parameter_derivatives(
    hamiltonian: PseudopotentialHamiltonian, system: int, k: torch.Tensor, vectors: torch.Tensor
) -> torch.Tensor:
    """d⟨ψ_j|H(k)|ψ_j⟩/d`pp_free` at fixed form factors of eigenvectors (len(k), dim, m) of
    `system`: (len(k), m, n_free), Hartree per unit of each slot. The operator terms with
    coefficients other than the local potential are linear in their coefficients, so
    ∂H/∂p_i is those terms assembled from the coefficients' forward-mode derivative by p_i."""
    table = hamiltonian.pp_fixed
    terms = [
        term
        for term in hamiltonian.terms(system)
        if not isinstance(term, LocalPotential) and term.coefficients(Parameters(table))
    ]
    free = hamiltonian.pp_free.detach()
    basis = torch.eye(len(free), dtype=free.dtype, device=free.device)
    columns = []
    for direction in basis:
        with forward_ad.dual_level():
            table = hamiltonian.pp_fixed.clone()
            table[hamiltonian.pp_mask] = forward_ad.make_dual(free, direction)
            tangents = [
                tuple(_tangent(c) for c in term.coefficients(Parameters(table))) for term in terms
            ]
        derivative = [
            torch.einsum(
                "bim,bij,bjm->bm",
                chunk_vectors.conj(),
                assemble(terms, chunk, hamiltonian.dimension(system), tangents),
                chunk_vectors,
            ).real
            for chunk, chunk_vectors in zip(
                torch.split(k, hamiltonian.k_chunk(system)),
                torch.split(vectors, hamiltonian.k_chunk(system)),
                strict=True,
            )
        ]
        columns.append(torch.cat(derivative))
    return torch.stack(columns, dim=-1)


def _tangent(coefficient: torch.Tensor) -> torch.Tensor:
    """The forward-mode tangent of a coefficient (zeros where it does not depend on p)."""
    tangent = forward_ad.unpack_dual(coefficient).tangent
    return torch.zeros_like(coefficient) if tangent is None else tangent


DEGENERATE = 1e-7
"""Hartree: eigenvalues closer than this form one degenerate group (symmetry degeneracies are
exact to ~1e-12; states of one group have no individual derivative, their mean has one)."""


def degenerate_mean(eigenvalues: torch.Tensor, derivatives: torch.Tensor) -> torch.Tensor:
    """Each eigenvalue's derivatives (nK, n_eig, ·) replaced by the mean over its degenerate
    group (ascending eigenvalues within DEGENERATE Hartree of their neighbour)."""
    gaps = eigenvalues.diff(dim=1) > DEGENERATE
    groups = torch.cat([torch.zeros_like(gaps[:, :1]), gaps], dim=1).cumsum(dim=1)
    flat = derivatives.reshape(derivatives.shape[0], derivatives.shape[1], -1)
    sums = torch.zeros_like(flat).scatter_add_(1, groups[..., None].expand_as(flat), flat)
    counts = torch.zeros(groups.shape, dtype=flat.dtype, device=flat.device).scatter_add_(
        1, groups, torch.ones_like(groups, dtype=flat.dtype)
    )
    means = sums / counts.clamp(min=1)[..., None]
    return torch.gather(means, 1, groups[..., None].expand_as(flat)).reshape(derivatives.shape)


Combine = Callable[[list[torch.Tensor]], None]
"""Sums tensors over the processes of a distributed fit, in place (a no-op in one process)."""


def _band_jacobian(
    objective: Objective, hamiltonian: PseudopotentialHamiltonian, system: int, k: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The bands (len(k), nBands) of `system` at the k-indices `k` (eV) and their
    Hellmann–Feynman derivatives by the form factors (len(k), nBands, n_values), eV per
    Hartree·Bohr³, without gradients."""
    term = objective.primary
    assert isinstance(term, BandTerm)
    geometry = hamiltonian.geometries[system]
    n_bands = hamiltonian.systems[system].n_bands
    spin_orbit = hamiltonian.options.spin_orbit
    rows = term.targets[system].reordering.order_rows(hamiltonian, system)
    n_eig = min(needed_eigenvalues(n_bands, spin_orbit, rows), hamiltonian.dimension(system))
    rows = None if rows is None else rows[k]
    with torch.no_grad():
        eigenvalues, vectors = hamiltonian.eigenpairs(system, k, n_eig)
        derivatives = hamiltonian.local_expectation_gradient(system, vectors)
        derivatives = derivatives[..., geometry.species_present].reshape(len(k), n_eig, -1)
        if hamiltonian.pp_free.requires_grad:
            free = parameter_derivatives(hamiltonian, system, k, vectors)
            derivatives = torch.cat([derivatives, free], dim=-1)
        n_k, n_values = len(k), derivatives.shape[-1]
        derivatives = degenerate_mean(eigenvalues, derivatives)
        # (nK, n_eig, n_values) -> the bands' derivatives (nK, nBands, n_values), eV per v
        columns = derivatives.reshape(n_k, n_eig, n_values).transpose(1, 2).reshape(-1, n_eig)
        picked_rows = None if rows is None else rows.repeat_interleave(n_values, 0)
        jacobian = process_bands(columns, n_bands, spin_orbit, picked_rows)
        jacobian = jacobian.reshape(n_k, n_values, n_bands).transpose(1, 2)
        bands = process_bands(eigenvalues, n_bands, spin_orbit, rows)
    return bands, jacobian


def _system_bands(
    objective: Objective,
    hamiltonian: PseudopotentialHamiltonian,
    system: int,
    own: torch.Tensor,
    combine: Combine | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The bands (nK, nBands) of one system at every k-point and their Jacobian (nK, nBands,
    n_values): this process solves the k-indices `own`, `combine` sums the zero-padded parts
    of all processes (exact: every entry is one process's value plus zeros)."""
    geometry = hamiltonian.geometries[system]
    n_bands, n_values = hamiltonian.systems[system].n_bands, model_size(hamiltonian, system)
    device = geometry.kpoints.device
    bands = torch.zeros(geometry.n_kpoints, n_bands, dtype=torch.float64, device=device)
    jacobian = torch.zeros(*bands.shape, n_values, dtype=torch.float64, device=device)
    if len(own):
        bands[own], jacobian[own] = _band_jacobian(objective, hamiltonian, system, own)
    if combine is not None:
        combine([bands, jacobian])
    return bands, jacobian


def _system_model(
    objective: Objective,
    hamiltonian: PseudopotentialHamiltonian,
    system: int,
    bands: torch.Tensor,
    jacobian: torch.Tensor,
) -> SystemModel:
    """The model of one system's loss from its bands and band Jacobian at every k-point."""
    n_values = jacobian.shape[-1]
    k_all = torch.arange(bands.shape[0], device=bands.device)
    with torch.enable_grad():
        bands.requires_grad_(True)
        loss = objective.batch(hamiltonian, system, k_all, bands)
        (band_gradient,) = torch.autograd.grad(loss, bands, create_graph=True)
        (hessian_jacobian,) = torch.autograd.grad(
            band_gradient, bands, grad_outputs=jacobian.permute(2, 0, 1), is_grads_batched=True
        )
    # ½ Jᵀ H J, symmetrised: positive semi-definite, as the band loss is a weighted sum of
    # squares of quantities linear in the bands
    flat_jacobian = jacobian.reshape(-1, n_values)
    curvature = 0.25 * (
        flat_jacobian.T @ hessian_jacobian.reshape(n_values, -1).T
        + hessian_jacobian.reshape(n_values, -1) @ flat_jacobian
    )
    gradient = flat_jacobian.T @ band_gradient.detach().reshape(-1)
    values = model_variables(hamiltonian, system).detach()
    return SystemModel(float(loss.detach()), values, gradient, curvature)


def model_size(hamiltonian: PseudopotentialHamiltonian, system: int) -> int:
    """The variables of a system's model: n_unique_q · n_present_species form factors, plus
    the trained analytic parameters."""
    geometry = hamiltonian.geometries[system]
    free = hamiltonian.pp_free.numel() if hamiltonian.pp_free.requires_grad else 0
    return len(geometry.unique_q) * int(geometry.species_present.sum()) + free


def model_bytes(hamiltonian: PseudopotentialHamiltonian) -> int:
    """Bytes of the models' float64 tensors on every process: per system the curvature
    (n_values²) and the band Jacobian at every k-point (nK · nBands · n_values), n_values =
    n_unique_q · n_present_species + n_free (`model_size`)."""
    total = 0
    for system, data in enumerate(hamiltonian.systems):
        n_values = model_size(hamiltonian, system)
        total += 8 * n_values * (n_values + data.n_kpoints * data.n_bands)
    return total


def linearise(
    objective: Objective,
    hamiltonian: PseudopotentialHamiltonian,
    kpoints: Sequence[torch.Tensor] | None = None,
    combine: Combine | None = None,
) -> Linearisation:
    """Evaluate the objective at the present parameters with one solve per k-point (no
    backward pass through the solver) and model every system's band loss.

    In a distributed fit `kpoints` are this process's k-indices of every system (None: all)
    and `combine` sums over the processes: each process solves its k-points and every
    process builds the same models from the summed bands and Jacobians."""
    parameters = [p.detach().clone() for _, p in trainable(hamiltonian)]
    if kpoints is None:
        kpoints = [
            torch.arange(g.n_kpoints, device=g.kpoints.device) for g in hamiltonian.geometries
        ]
    # one system's Jacobian at a time, unless a common energy zero needs all bands first
    parts: Iterable[tuple[torch.Tensor, torch.Tensor]] = (
        _system_bands(objective, hamiltonian, system, own, combine)
        for system, own in enumerate(kpoints)
    )
    if objective.couples_systems:
        parts = list(parts)
        objective.align(hamiltonian, [bands for bands, _ in parts])
    models = [_system_model(objective, hamiltonian, s, *part) for s, part in enumerate(parts)]
    coupling = (
        _offset_coupling(objective, hamiltonian, parts) if objective.couples_systems else None
    )
    per_system = torch.tensor([model.loss for model in models], dtype=torch.float64)
    terms: dict[str, float] = {}
    solved: list[ResidualModel] = []
    for term in objective.global_terms:
        if term.solves:
            term_models = residual_models(term, hamiltonian)
            terms.update((model.label, model.loss) for model in term_models)
            solved.extend(term_models)
        else:
            with torch.no_grad():
                values = term.values(hamiltonian)
            terms.update((label, float(term.weight * value)) for label, value in values.items())
    return Linearisation(parameters, per_system, terms, models, solved, coupling)


def _offset_coupling(
    objective: Objective,
    hamiltonian: PseudopotentialHamiltonian,
    parts: Sequence[tuple[torch.Tensor, torch.Tensor]],
) -> OffsetCoupling:
    """The coupling of a common energy zero from every system's bands and band Jacobian."""
    term = objective.primary
    assert isinstance(term, BandTerm)
    slopes = []
    for system, (bands, jacobian) in enumerate(parts):
        with torch.enable_grad():
            bands = bands.detach().requires_grad_(True)
            (weights,) = torch.autograd.grad(term.offset_sum(hamiltonian, system, bands), bands)
        slopes.append(jacobian.reshape(-1, jacobian.shape[-1]).T @ weights.reshape(-1))
    total = term.compared_weight()
    return OffsetCoupling(slopes, term.weight / total if total > 0.0 else 0.0)


def _exact_terms(objective: Objective, hamiltonian: PseudopotentialHamiltonian) -> torch.Tensor:
    """The weighted sum of the global terms that solve nothing (differentiable)."""
    total = torch.zeros((), dtype=torch.float64, device=hamiltonian.pp_fixed.device)
    for term in objective.global_terms:
        if not term.solves:
            for value in term.values(hamiltonian).values():
                total = total + term.weight * value
    return total


def store_gradient(
    linearisation: Linearisation, objective: Objective, hamiltonian: PseudopotentialHamiltonian
) -> None:
    """Leave the exact loss gradient at the linearisation's parameters (the present ones) in
    the trainable tensors' `.grad`: the models' slopes and the global terms that solve
    nothing, no eigensolves."""
    for _, parameter in trainable(hamiltonian):
        parameter.grad = None
    with torch.enable_grad():
        slope = _exact_terms(objective, hamiltonian)
        for system, model in enumerate(linearisation.models):
            slope = slope + model.gradient @ model_variables(hamiltonian, system)
        for solved in linearisation.solved:
            slope = slope + solved.gradient @ solved.variables(hamiltonian)
        slope.backward()


def model_loss(
    linearisation: Linearisation,
    objective: Objective,
    hamiltonian: PseudopotentialHamiltonian,
    damping: float = 0.0,
) -> torch.Tensor:
    """The model of the objective at the present parameters (eV²), differentiable: each
    system's quadratic model, those of the global terms that solve, the other global terms
    exactly, plus `damping` times the Levenberg–Marquardt distance Σ diag(curvature)·δx²."""
    total = _exact_terms(objective, hamiltonian)
    pairs = [(m, model_variables(hamiltonian, s)) for s, m in enumerate(linearisation.models)]
    pairs += [(m, m.variables(hamiltonian)) for m in linearisation.solved]
    for model, values in pairs:
        total = total + model(values)
        if damping > 0.0:
            step = values - model.values
            total = total + damping * (model.scale * step * step).sum()
    if linearisation.coupling is not None:
        steps = [values - model.values for model, values in pairs[: len(linearisation.models)]]
        total = total + linearisation.coupling(steps)
    return total

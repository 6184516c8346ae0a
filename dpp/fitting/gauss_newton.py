"""Gauss–Newton in function space: the default optimiser (`optimizer=gauss_newton`).

Each step linearises the bands in the form factors v_s(q) at the |G − G'| the Hamiltonians
use (`dpp.fitting.linearisation`), fits the network to that quadratic model plus a
Levenberg–Marquardt damping by L-BFGS on the model alone (no eigensolves), and accepts the
new network when the true loss falls; otherwise the damping grows and the fit is redone.
A step in the network's parameters crosses the kinks of a ReLU network freely, because the
model is quadratic in the potential, not in the parameters.

Under DDP every rank solves its own k-points; the bands and their Jacobians are summed over
the ranks (zero-padded, so the sum is exact), every rank builds the same models from them
and takes the same step, and rank 0's parameters are broadcast after each model fit against
round-off. Memory of the models on every rank (`dpp.fitting.linearisation.model_bytes`): per
system the curvature, n² float64, and the band Jacobian, nK · nBands · n float64, with
n = n_unique_q · n_species (+ the trained analytic parameters); above `max_memory_gib` the
fallback trains.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from dpp.fitting.linearisation import (
    Linearisation,
    OffsetCoupling,
    SystemModel,
    linearise,
    model_bytes,
    model_loss,
    store_gradient,
    unsupported,
)
from dpp.fitting.objective import Objective
from dpp.physics.hamiltonian import PseudopotentialHamiltonian
from dpp.ranks import broadcast_from_zero, sum_over_ranks

log = logging.getLogger(__name__)
MIN_DAMPING, MAX_DAMPING = 1e-8, 1e10  # bounds of λ (relative to the curvature's diagonal)


class FunctionSpaceGaussNewton(torch.optim.Optimizer):
    """Levenberg–Marquardt on the function-space model of the loss.

    `damping` is the initial λ (relative to the curvature's diagonal), `inner_iterations` the
    L-BFGS iterations of each model fit, `trials` the most model fits (each followed by a full
    loss evaluation) one step may take. `fallback(params)` builds the optimiser used instead
    when the model cannot represent the fit (see `dpp.fitting.linearisation.unsupported`)
    or its models would need more than `max_memory_gib` GiB (`model_bytes`).
    """

    def __init__(
        self,
        params: list[nn.Parameter],
        damping: float = 1e-2,
        inner_iterations: int = 300,
        inner_history: int = 100,
        trials: int = 8,
        fallback: Callable[[list[nn.Parameter]], torch.optim.Optimizer] | None = None,
        max_memory_gib: float = 8.0,
    ) -> None:
        if not damping > 0:
            raise ValueError(f"damping must be > 0, got {damping}")
        if not max_memory_gib > 0:
            raise ValueError(f"max_memory_gib must be > 0, got {max_memory_gib}")
        for name, count in (
            ("inner_iterations", inner_iterations),
            ("inner_history", inner_history),
            ("trials", trials),
        ):
            if count < 1:
                raise ValueError(f"{name} must be >= 1, got {count}")
        super().__init__(params, {"damping": damping})
        self.initial_damping = damping
        self.inner_iterations = inner_iterations
        self.inner_history = inner_history
        self.trials = trials
        self.fallback = fallback
        self.max_memory_gib = max_memory_gib
        self.kpoints: list[torch.Tensor] | None = None
        self.hamiltonian: PseudopotentialHamiltonian | None = None
        self.objective: Objective | None = None
        self.linearisation: Linearisation | None = None
        self.converged = False

    def attach(
        self,
        hamiltonian: PseudopotentialHamiltonian,
        objective: Objective,
        kpoints: list[torch.Tensor] | None = None,
    ) -> None:
        """The Hamiltonian (whose network holds this optimiser's parameters), the objective
        and, under DDP, this rank's k-indices of every system (None: all)."""
        self.hamiltonian, self.objective, self.kpoints = hamiltonian, objective, kpoints

    def _linearise(self) -> Linearisation:
        """The linearisation at the present parameters, from every rank's k-points."""
        assert self.hamiltonian is not None and self.objective is not None
        return linearise(self.objective, self.hamiltonian, self.kpoints, sum_over_ranks)

    def for_fit(
        self,
        hamiltonian: PseudopotentialHamiltonian,
        objective: Objective,
        parameters: list[nn.Parameter],
    ) -> torch.optim.Optimizer:
        """This optimiser attached to the fit of `objective` on `hamiltonian`, or its fallback
        on `parameters` (logged) when its function-space model cannot represent the fit or
        would not fit in memory."""
        reason = unsupported(objective, hamiltonian)
        if reason is None:
            reason = self.memory_problem(hamiltonian)
        if reason is None:
            self.attach(hamiltonian, objective)
            return self
        if self.fallback is None:
            raise ValueError(f"optimizer=gauss_newton cannot train this fit: {reason}")
        fallback = self.fallback(parameters)
        log.warning(
            "Gauss-Newton in function space does not apply (%s): training with %s instead",
            reason,
            type(fallback).__name__,
        )
        return fallback

    def convergence(self) -> str:
        """Words for the log when no trial of a step lowered the loss."""
        damping = self.param_groups[0]["damping"]
        return (
            f"Gauss-Newton converged (no decrease in {self.trials} trials, damping up to "
            f"{damping:.3g})"
        )

    def memory_problem(self, hamiltonian: PseudopotentialHamiltonian) -> str | None:
        """Why the models of `hamiltonian`'s systems are too large, or None."""
        needed = model_bytes(hamiltonian) / 2**30
        if needed <= self.max_memory_gib:
            return None
        return (
            f"its models need {needed:.3g} GiB per process (per system the curvature"
            " n^2 and the band Jacobian nK * nBands * n, float64, n = n_unique_q * n_species"
            " + trained analytic parameters), above"
            f" optimizer.max_memory_gib={self.max_memory_gib:g}:"
            " lower maxKE (fewer unique |G - G'|) or the k-points, or raise"
            " optimizer.max_memory_gib"
        )

    @property
    def parameters(self) -> list[nn.Parameter]:
        return [p for group in self.param_groups for p in group["params"]]

    def _current(self) -> list[torch.Tensor]:
        return [p.detach() for p in self.parameters]

    def _put(self, values: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for parameter, value in zip(self.parameters, values, strict=True):
                parameter.copy_(value)

    def checkpoint_state(self) -> dict[str, Any]:
        """What a resumed fit needs beyond `state_dict()` (whose param_groups hold the
        damping) to step as the uninterrupted one: the convergence flag and the cached
        linearisation (recomputing it would solve from other eigenvectors), as plain
        containers of tensors and numbers. A linearisation with residual models of terms that
        solve other Hamiltonians (deformation potentials, couplings) is not kept: a resume
        recomputes it, correct but not bit for bit."""
        cached = self.linearisation
        if cached is None or cached.solved:  # residual models of solving terms are recomputed
            return {"converged": self.converged, "linearisation": None}
        models = [(m.loss, m.values, m.gradient, m.curvature) for m in cached.models]
        linearisation = (cached.parameters, cached.per_system, cached.terms, models)
        coupling = cached.coupling
        return {
            "converged": self.converged,
            "linearisation": linearisation,
            "coupling": None if coupling is None else (coupling.slopes, coupling.scale),
        }

    def load_checkpoint_state(self, state: dict[str, Any]) -> None:
        """Bring back a `checkpoint_state()`, its tensors on the parameters' device."""
        self.converged = bool(state["converged"])
        if state["linearisation"] is None:
            self.linearisation = None
            return
        device = self.parameters[0].device
        parameters, per_system, terms, models = state["linearisation"]
        coupling = state.get("coupling")
        self.linearisation = Linearisation(
            [p.to(device) for p in parameters],
            per_system,
            dict(terms),
            [
                SystemModel(loss, values.to(device), gradient.to(device), curvature.to(device))
                for loss, values, gradient, curvature in models
            ],
            coupling=None
            if coupling is None
            else OffsetCoupling([slope.to(device) for slope in coupling[0]], coupling[1]),
        )

    def evaluate(self) -> tuple[Linearisation, int]:
        """The linearisation at the present parameters, with the loss gradient in `.grad`,
        and the full passes it took (0 when the last step's accepted trial left it)."""
        if self.hamiltonian is None or self.objective is None:
            raise RuntimeError("FunctionSpaceGaussNewton.attach(hamiltonian, objective) first")
        passes = 0
        if self.linearisation is None or not self.linearisation.taken_at(self._current()):
            if self.converged:  # moved off the stationary point (a perturbation kick)
                self.converged = False
                self.param_groups[0]["damping"] = self.initial_damping
            self.linearisation = self._linearise()
            passes = 1
        store_gradient(self.linearisation, self.objective, self.hamiltonian)
        return self.linearisation, passes

    def _fit_model(self, start: Linearisation, damping: float) -> float:
        """Fit the network to the damped model from `start`'s parameters; the undamped
        model's value there (eV²)."""
        assert self.hamiltonian is not None and self.objective is not None
        self._put(start.parameters)
        inner = torch.optim.LBFGS(
            self.parameters,
            lr=1.0,
            max_iter=self.inner_iterations,
            history_size=self.inner_history,
            line_search_fn="strong_wolfe",
            tolerance_grad=1e-12,
            tolerance_change=1e-14,
        )

        def closure() -> torch.Tensor:
            inner.zero_grad()
            loss = model_loss(start, self.objective, self.hamiltonian, damping)
            loss.backward()
            return loss

        with torch.enable_grad():
            inner.step(closure)
        broadcast_from_zero(self.parameters)
        with torch.no_grad():
            return float(model_loss(start, self.objective, self.hamiltonian))

    def step(self, closure: Any = None) -> int:  # type: ignore[override]
        """One damped Gauss–Newton step from the linearisation `evaluate()` left; returns
        the full passes taken (one per trial). A rejected trial multiplies the damping by 2,
        4, 8, … (Madsen–Nielsen); without a decrease after `trials` fits the parameters stay
        where they were and `converged` is set: no step of any length lowers the loss, and
        later steps from the same parameters return at once (0 passes).
        `closure` (Lightning's hooks) is called once; the loss comes from the linearisation."""
        if closure is not None:
            closure()
        if self.linearisation is None or not self.linearisation.taken_at(self._current()):
            self.evaluate()
        if self.converged:
            return 0  # still at the stationary point: no trial can do better
        start = self.linearisation
        assert start is not None
        group = self.param_groups[0]
        damping, growth = group["damping"], 2.0
        assert self.hamiltonian is not None and self.objective is not None
        for trial in range(1, self.trials + 1):
            predicted = self._fit_model(start, damping)
            trial_point = self._linearise()
            actual = trial_point.total
            if math.isfinite(actual) and actual < start.total:
                # Madsen–Nielsen update from the ratio of actual to predicted decrease
                ratio = (start.total - actual) / max(start.total - predicted, 1e-300)
                damping *= max(1 / 3, 1 - (2 * min(ratio, 1.0) - 1) ** 3)
                group["damping"] = min(max(damping, MIN_DAMPING), MAX_DAMPING)
                self.linearisation = trial_point
                return trial
            damping, growth = min(damping * growth, MAX_DAMPING), 2 * growth
        group["damping"] = damping
        self._put(start.parameters)
        self.converged = True
        return self.trials

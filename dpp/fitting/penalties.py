"""Reciprocal-space penalties on the network form factors v_s(q) (physics.md §7.4)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from dpp.fitting.settings import LossSettings
from dpp.fitting.terms import GlobalTerm
from dpp.io.records import QSpaceTable
from dpp.physics.hamiltonian import PseudopotentialHamiltonian
from dpp.physics.potentials import wang_zunger

Q_END = 12.0  # 1/Bohr: end of both penalty ranges
DECAY_POINTS = 50
MAGNITUDE_POINTS = 240


def prior_curve(q: torch.Tensor, pp_params: np.ndarray, qspace: QSpaceTable | None) -> torch.Tensor:
    """v^prior_s(q) (M, S), Hartree·Bohr³: the tabulated prior linearly interpolated (0 beyond
    its last q) when given, else the Wang–Zunger form of a0..a3 (no long-range tail)."""
    if qspace is None:
        return wang_zunger(q, torch.as_tensor(pp_params, dtype=q.dtype))
    grid = qspace.q
    columns = [
        np.interp(q.cpu().numpy(), grid, qspace.values[:, s], right=0.0)
        for s in range(qspace.values.shape[1])
    ]
    return torch.as_tensor(np.stack(columns, axis=1), dtype=q.dtype, device=q.device)


def decay_penalty(
    values: torch.Tensor,
    prior: torch.Tensor,
    q: torch.Tensor,
    starting: float,
    strength: float,
    n_kpoints: int,
) -> torch.Tensor:
    """λ · N_k · mean_{q,s} ramp(q)·|v_s(q) − v_s^prior(q)|, ramp = 1/(1+exp(−10(q−q0−0.5)))."""
    ramp = torch.sigmoid(10.0 * (q - (starting + 0.5)))
    return strength * n_kpoints * (ramp[:, None] * (values - prior).abs()).mean()


def magnitude_penalty(
    values: torch.Tensor, threshold: float, strength: float, n_kpoints: int
) -> torch.Tensor:
    """μ · N_k · mean_{q,s} sigmoid(10(|v| − T))·max(|v| − T, 0) (overflow-free sigmoid)."""
    excess = values.abs() - threshold
    return strength * n_kpoints * (torch.sigmoid(10.0 * excess) * F.relu(excess)).mean()


class PenaltyTerm(GlobalTerm):
    """Both penalties on the network form factors, summed over systems (Σ_X P_X with the
    historical factor N_k(X)): labels `decay` and `magnitude` for the active ones, none
    without a network form factor."""

    name = "penalties"
    solves = False

    def __init__(
        self,
        settings: LossSettings,
        pp_params: np.ndarray,
        qspace: QSpaceTable | None,
        n_kpoints: list[int],
        dtype: torch.dtype = torch.float64,
    ) -> None:
        self.settings = settings
        self.total_k = sum(n_kpoints)
        self.q_mag = torch.linspace(0.0, Q_END, MAGNITUDE_POINTS, dtype=dtype)
        self.q_decay = torch.empty(0, dtype=dtype)
        self.prior = torch.empty(0, pp_params.shape[0], dtype=dtype)
        if settings.decay_penalty:
            self.q_decay = torch.linspace(
                settings.penalize_starting, Q_END, DECAY_POINTS, dtype=dtype
            )
            if settings.penalty_reference == "prior":
                self.prior = prior_curve(self.q_decay, pp_params, qspace)
            else:
                self.prior = torch.zeros(DECAY_POINTS, pp_params.shape[0], dtype=dtype)
        self._on_device: dict[torch.device, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    @property
    def active(self) -> bool:
        return self.settings.decay_penalty or self.settings.magnitude_penalty

    def _grids(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(q_decay, prior, q_mag) on `device`, moved there once."""
        if device not in self._on_device:
            self._on_device[device] = (
                self.q_decay.to(device),
                self.prior.to(device),
                self.q_mag.to(device),
            )
        return self._on_device[device]

    def values(self, hamiltonian: PseudopotentialHamiltonian) -> dict[str, torch.Tensor]:
        if not hamiltonian.uses_network:
            return {}
        model, s = hamiltonian.model, self.settings
        q_decay, prior, q_mag = self._grids(hamiltonian.pp_fixed.device)
        out: dict[str, torch.Tensor] = {}
        if s.decay_penalty:
            out["decay"] = decay_penalty(
                model(q_decay[:, None]),
                prior,
                q_decay,
                s.penalize_starting,
                s.penalize_lambda,
                self.total_k,
            )
        if s.magnitude_penalty:
            values = model(q_mag[:, None])
            out["magnitude"] = magnitude_penalty(
                values, s.penalize_mag_threshold, s.penalize_mag_lambda, self.total_k
            )
        return out

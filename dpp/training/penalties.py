"""Reciprocal-space penalties on the network form factors v_s(q) (physics.md §7.4)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from dpp.io.records import QSpaceTable
from dpp.physics.potentials import wang_zunger

Q_END = 12.0  # 1/Bohr: end of both penalty ranges
DECAY_POINTS = 50
MAGNITUDE_POINTS = 240


@dataclass(frozen=True)
class PenaltySettings:
    """penalize_starting/lambda (decay) and penalize_mag_threshold/lambda (magnitude)."""

    starting: float | None = None
    strength: float | None = None
    mag_threshold: float | None = None
    mag_strength: float | None = None
    reference: str = "prior"

    @property
    def decay_active(self) -> bool:
        return self.starting is not None and self.strength is not None

    @property
    def magnitude_active(self) -> bool:
        return (
            self.mag_strength is not None
            and self.mag_strength > 0
            and self.mag_threshold is not None
        )


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


class Penalties:
    """Both penalties for a network and a list of systems; `terms(model)` -> per-system sums."""

    def __init__(
        self,
        settings: PenaltySettings,
        pp_params: np.ndarray,
        qspace: QSpaceTable | None,
        n_kpoints: list[int],
        dtype: torch.dtype = torch.float64,
    ) -> None:
        self.settings = settings
        self.n_kpoints = list(n_kpoints)
        self.q_decay = torch.empty(0, dtype=dtype)
        self.q_mag = torch.linspace(0.0, Q_END, MAGNITUDE_POINTS, dtype=dtype)
        if settings.decay_active:
            self.q_decay = torch.linspace(settings.starting, Q_END, DECAY_POINTS, dtype=dtype)
            if settings.reference == "zero":
                self.prior = torch.zeros(DECAY_POINTS, pp_params.shape[0], dtype=dtype)
            else:
                self.prior = prior_curve(self.q_decay, pp_params, qspace)

    @property
    def active(self) -> bool:
        return self.settings.decay_active or self.settings.magnitude_active

    def terms(self, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """{'decay': Σ_X P_X, 'magnitude': Σ_X P_mag,X} for the active penalties."""
        out: dict[str, torch.Tensor] = {}
        total_k = sum(self.n_kpoints)
        s = self.settings
        if s.decay_active:
            device = next(model.parameters()).device
            q = self.q_decay.to(device)
            values = model(q[:, None])
            out["decay"] = decay_penalty(
                values, self.prior.to(device), q, s.starting, s.strength, total_k
            )
        if s.magnitude_active:
            device = next(model.parameters()).device
            values = model(self.q_mag.to(device)[:, None])
            out["magnitude"] = magnitude_penalty(values, s.mag_threshold, s.mag_strength, total_k)
        return out

"""Snapshots of a Monte Carlo state: network tensors and the (n_species, 9) parameter table."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dpp.physics.hamiltonian import PseudopotentialHamiltonian


@dataclass
class McState:
    """Exact copies of the model state_dict (empty without a network) and of a0..a8."""

    model: dict[str, torch.Tensor]
    table: torch.Tensor  # (n_species, 9)

    def to_dict(self) -> dict[str, object]:
        return {"model": self.model, "table": self.table}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> McState:
        return cls(model=dict(data["model"]), table=data["table"])


def capture(hamiltonian: PseudopotentialHamiltonian) -> McState:
    """Copy the state of `hamiltonian` (its model and its fixed parameter table)."""
    model = hamiltonian.model
    state = {} if model is None else {k: v.detach().clone() for k, v in model.state_dict().items()}
    return McState(model=state, table=hamiltonian.pp_fixed.detach().clone())


@torch.no_grad()
def restore(hamiltonian: PseudopotentialHamiltonian, state: McState) -> None:
    """Write `state` back into `hamiltonian` bit for bit (tensors are copied in place)."""
    if hamiltonian.model is not None:
        current = hamiltonian.model.state_dict()
        for key, value in state.model.items():
            current[key].copy_(value)
    hamiltonian.pp_fixed.copy_(state.table)

"""Snapshots of a Monte Carlo state: network tensors, the (n_species, 10) parameter table and,
in memory only, the eigensolver's warm-start vectors of that state."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from dpp.physics.hamiltonian import PseudopotentialHamiltonian
from dpp.physics.warmstart import WarmStart


@dataclass
class McState:
    """Exact copies of the model state_dict (empty without a network) and of a0..a9; with
    `vectors`, the warm-start eigenvectors of the state (not saved in checkpoints: a resumed
    chain starts its solves dense)."""

    model: dict[str, torch.Tensor]
    table: torch.Tensor  # (n_species, 10)
    vectors: WarmStart | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, object]:
        return {"model": self.model, "table": self.table}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> McState:
        return cls(model=dict(data["model"]), table=data["table"])


def capture(hamiltonian: PseudopotentialHamiltonian) -> McState:
    """Copy the state of `hamiltonian` (its model and its fixed parameter table)."""
    model = hamiltonian.model
    state = {} if model is None else {k: v.detach().clone() for k, v in model.state_dict().items()}
    table = hamiltonian.pp_fixed.detach().clone()
    return McState(model=state, table=table, vectors=hamiltonian.snapshot())


@torch.no_grad()
def restore(hamiltonian: PseudopotentialHamiltonian, state: McState) -> None:
    """Write `state` back into `hamiltonian` bit for bit (tensors are copied in place), with
    its warm-start vectors when it has them (a rejected move's solves start from the accepted
    state's eigenvectors)."""
    if hamiltonian.model is not None:
        current = hamiltonian.model.state_dict()
        for key, value in state.model.items():
            current[key].copy_(value)
    hamiltonian.pp_fixed.copy_(state.table)
    if state.vectors is not None:
        hamiltonian.restore(state.vectors)

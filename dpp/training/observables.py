"""Per-system global loss terms from auxiliary observables (physics.md §7.5).

Deformation potentials of `expDefPot_X.par` enter once per system and step (fit_defPot = 1 in
input_X.par), outside the k-batches, whatever the batching.
"""

from __future__ import annotations

import torch

from dpp.errors import InputError
from dpp.io.observables import DefPotTarget, read_defpot_targets
from dpp.io.records import Bundle
from dpp.physics.hamiltonian import PseudopotentialHamiltonian
from dpp.physics.observables import deformation_loss


class ObservableTerms:
    """The deformation-potential rows of every system that fits them."""

    def __init__(self, bundle: Bundle) -> None:
        self.rows: dict[int, list[DefPotTarget]] = {}
        for system in bundle.systems:
            settings = system.settings
            if settings.fit_eph:
                raise InputError(
                    system.files.get("input"),
                    "electron-phonon coupling targets are not supported by gradient training",
                    key="fit_eph",
                    expected="0",
                    found="1",
                )
            if not settings.fit_defpot:
                continue
            indices = (settings.idx_gap, settings.idx_vb, settings.idx_cb)
            self.rows[system.index] = read_defpot_targets(
                system.files["defpot"],
                legacy_indices=indices if None not in indices else None,
            )

    @property
    def active(self) -> bool:
        return bool(self.rows)

    def terms(self, hamiltonian: PseudopotentialHamiltonian) -> dict[str, torch.Tensor]:
        """Σ_rows ω (D − D_ref)² per fitted system (eV²), differentiable."""
        return {
            f"defpot_sys{index}": deformation_loss(hamiltonian, index, rows)
            for index, rows in self.rows.items()
        }

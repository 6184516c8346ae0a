"""The ten parameter slots a0..a9 of every species (physics.md §4), defined once.

Every table of species parameters is (n_species, N_SLOTS) in this order; code names a slot
by its member (`Slot.SPIN_ORBIT`), never by a bare number.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Slot(IntEnum):
    """Column of a parameter table: a0..a3 Wang–Zunger (a0 in Hartree·Bohr³, a1 in 1/Bohr²,
    a2 dimensionless, a3 in Bohr²), a4 long range, a5 spin–orbit, a6/a7 nonlocal
    l = 1, a8 strain, a9 nonlocal l = 0."""

    A0 = 0
    A1 = 1
    A2 = 2
    A3 = 3
    LONG_RANGE = 4
    SPIN_ORBIT = 5
    NONLOCAL_1 = 6
    NONLOCAL_2 = 7
    STRAIN = 8
    NONLOCAL_0 = 9


N_SLOTS = len(Slot)
"""Slots per species."""

WANG_ZUNGER = (Slot.A0, Slot.A1, Slot.A2, Slot.A3)
"""The analytic local form v(q) = a0 (q² − a1) / (a2 exp(a3 q²) − 1)."""

NONLOCAL = (Slot.NONLOCAL_1, Slot.NONLOCAL_2)
"""The two nonlocal l = 1 channels."""

LEGACY_SLOTS = 9
"""Slots a0..a8 of the original's parameter files; a9 (the l = 0 channel) is optional."""

SPIN_ORBIT_NONLOCAL = (Slot.SPIN_ORBIT, *NONLOCAL)
"""The projector strengths moved together by Monte Carlo modes and perturbation kicks."""


def slot_name(slot: int) -> str:
    """`a<j>` for slot j, the name used in output tables (e.g. `Cd_a5`)."""
    return f"a{int(slot)}"


def written_slots(values: np.ndarray) -> int:
    """Slots per species a parameter file or table writes for `values` (..., N_SLOTS): the
    original's nine, a0..a8, unless some a9 is non-zero."""
    return N_SLOTS if np.any(np.asarray(values)[..., LEGACY_SLOTS:]) else LEGACY_SLOTS

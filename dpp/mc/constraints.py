"""Constraints of the analytic Monte Carlo engine (physics.md §5.4): a5 ← |a5|, Σ_atoms a4 = 0."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from dpp.io.records import Bundle, SystemData
from dpp.physics.options import PhysicsOptions
from dpp.slots import NONLOCAL, WANG_ZUNGER, Slot

NONZERO = 1e-10


def atom_species(bundle: Bundle) -> list[int]:
    """Species index of every atom of every system, in system order then file order.

    [decision] With several systems the neutrality sum runs over the atoms of all of them.
    """
    index = {symbol: row for row, symbol in enumerate(bundle.species)}
    return [index[symbol] for system in bundle.systems for symbol in system.crystal.symbols]


@torch.no_grad()
def enforce_constraints(table: torch.Tensor, atoms: Sequence[int]) -> None:
    """In place on the (n_species, 10) table: a5 ← |a5| for every species present, then the
    long-range neutrality a4(c) = −Σ_{α: s(α) ≠ c} a4(s(α)) / n_c for the constrained species c
    (the last species, by first appearance, with |a4| > 1e-10); nothing if all a4 vanish."""
    order = list(dict.fromkeys(atoms))
    for species in order:
        table[species, Slot.SPIN_ORBIT] = table[species, Slot.SPIN_ORBIT].abs()
    charged = [s for s in order if abs(float(table[s, Slot.LONG_RANGE])) > NONZERO]
    if not charged:
        return
    constrained = charged[-1]
    others = sum(float(table[s, Slot.LONG_RANGE]) for s in atoms if s != constrained)
    table[constrained, Slot.LONG_RANGE] = -others / atoms.count(constrained)


def active_slots(
    options: PhysicsOptions, systems: Sequence[SystemData], *, uses_network: bool
) -> tuple[int, ...]:
    """Parameter slots that change the bands (the ones an analytic fit moves or trains): a0..a4
    with the analytic form (a4 also with a network when long_range_with_nn), a5 with
    spin-orbit, a6/a7 with the nonlocal term, a9 with the s-channel, a8 when a system has a
    strain reference."""
    slots = [] if uses_network else list(WANG_ZUNGER)
    if not uses_network or options.long_range_with_nn:
        slots.append(Slot.LONG_RANGE)
    if options.spin_orbit:
        slots.append(Slot.SPIN_ORBIT)
    if options.nonlocal_active:
        slots.extend(NONLOCAL)
    if options.nonlocal_s:
        slots.append(Slot.NONLOCAL_0)
    if any(s.settings.strain_ref_scale is not None for s in systems):
        slots.append(Slot.STRAIN)
    return tuple(slots)

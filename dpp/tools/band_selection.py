"""Which ab-initio bands a converted bundle keeps (dpp-convert-bands' default band window).

The window starts at the first valence band above the semicore states and ends
`CONDUCTION_BANDS` spatial bands above the valence-band maximum.

Semicore rule (a band count checked by energies): the s and p valence electrons of the atoms
(`sp_electrons`: Si 4, Ga 3, As 5, N 5, Zn and Cd 2, Cs 1, Pb 4, ...) fill the bands an
empirical pseudopotential describes; the run's valence bands beyond them are semicore (Ga 3d
in a pseudopotential with 13 Ga electrons, In 4d, Cs 5s 5p, ...): the lowest
`n_valence − sp/2` bands (spinor states: `− sp`). They are left out
- cleanly when a gap separates them from the band above (GaAs: Ga 3d below As 4s);
- by count when they are entangled (wurtzite GaN: Ga 3d overlapping N 2s): the kept bands
  that dip into the semicore range (min over k below the top of the semicore bands) get
  weight 0, so the loss sees only the clean bands above.
A rule on energy gaps alone cannot tell semicore states from the ionic gap of a polar crystal
(GaAs: 3 to 4 eV between the As 4s band and the p bands, more than between Ga 3d and As 4s),
hence the count. Species with an open d or f shell (transition metals, lanthanides) have no sp
count; the rule is off for their crystals and every valence band is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dpp.errors import InputError

CONDUCTION_BANDS = 4
"""Spatial conduction bands kept by default (spinor states: twice as many)."""

_NOBLE = (0, 2, 10, 18, 36, 54, 86, 118)


def sp_electrons(symbol: str) -> int | None:
    """Outer s and p electrons of an element (Si 4, Ga 3, Se 6, Zn 2, Cu 1, Cs 1, Pb 4); None
    for open d or f shells (Sc to Ni, Y to Pd, La to Pt, the actinides)."""
    from ase.data import atomic_numbers

    if symbol not in atomic_numbers:
        raise InputError(None, "unknown chemical symbol", found=repr(symbol))
    number = atomic_numbers[symbol]
    core = max(noble for noble in _NOBLE if noble < number)
    beyond = number - core
    inner = {0: 0, 2: 0, 10: 0, 18: 10, 36: 10, 54: 24, 86: 24}[core]
    if beyond <= 2:
        return beyond
    return None if beyond <= inner else beyond - inner  # None: d (and f) shell being filled


@dataclass(frozen=True)
class BandSelection:
    """The kept window of source bands (first: 1-based source number, count of source bands),
    a weight per kept source band and the log lines that say why."""

    first: int
    count: int
    weights: np.ndarray
    notes: tuple[str, ...]


def _range(energies: np.ndarray, column: int, vbm: float) -> str:
    low, high = energies[:, column].min() - vbm, energies[:, column].max() - vbm
    return f"{low:.2f} to {high:.2f} eV"


def semicore_cut(
    energies: np.ndarray, first_band: int, symbols: tuple[str, ...], n_valence: int, spinor: bool
) -> tuple[int, np.ndarray, list[str]]:
    """The first source band above the semicore states, the weights of the bands from there to
    `n_valence`, and the log lines (energies relative to the VBM). energies: (nK, n) eV of
    source bands first_band, first_band + 1, ..."""
    vbm = float(energies[:, n_valence - first_band].max())
    kept = np.ones(n_valence - first_band + 1)
    counts = [sp_electrons(symbol) for symbol in symbols]
    if None in counts:
        others = sorted({s for s, c in zip(symbols, counts, strict=True) if c is None})
        return first_band, kept, [f"semicore rule off: open d/f shell of {', '.join(others)}"]
    electrons = sum(c for c in counts if c is not None)
    per_band = 1 if spinor else 2
    n_semicore = n_valence - electrons // per_band
    if electrons % per_band or n_semicore < first_band:
        return first_band, kept, [f"no semicore bands in the source ({electrons} s+p electrons)"]
    low = n_semicore - first_band
    top = float(energies[:, low].max())
    gap = float(energies[:, low + 1].min()) - top
    bottom = float(energies[:, 0].min())
    notes = [
        f"left out bands {first_band}..{n_semicore}: semicore ({bottom - vbm:.2f} to "
        f"{top - vbm:.2f} eV), the {n_valence - n_semicore} bands above hold the "
        f"{electrons} s+p valence electrons"
    ]
    kept = np.ones(n_valence - n_semicore)
    if gap > 0.0:
        notes.append(f"  gap of {gap:.2f} eV above them")
        return n_semicore + 1, kept, notes
    for offset in range(len(kept)):
        column = low + 1 + offset
        if energies[:, column].min() <= top:
            kept[offset] = 0.0
            notes.append(
                f"  entangled: band {n_semicore + 1 + offset} ({_range(energies, column, vbm)}) "
                "overlaps them, kept with weight 0"
            )
    return n_semicore + 1, kept, notes


def default_selection(
    energies: np.ndarray,
    first_band: int,
    symbols: tuple[str, ...],
    n_valence: int,
    spinor: bool,
    conduction_bands: int = CONDUCTION_BANDS,
    keep_semicore: bool = False,
) -> BandSelection:
    """Valence bands above the semicore states (`semicore_cut`, or all with keep_semicore)
    and `conduction_bands` spatial conduction bands (as many as the source has)."""
    if keep_semicore:
        first, weights, notes = first_band, np.ones(n_valence - first_band + 1), []
    else:
        first, weights, notes = semicore_cut(energies, first_band, symbols, n_valence, spinor)
    wanted = conduction_bands * (2 if spinor else 1)
    available = first_band + energies.shape[1] - 1 - n_valence
    conduction = min(wanted, available)
    if conduction < wanted:
        notes.append(f"only {available} conduction bands in the source (wanted {wanted})")
    vbm = float(energies[:, n_valence - first_band].max())
    start = first - first_band
    last = n_valence + conduction
    notes.insert(
        0,
        f"kept bands {first}..{last}: {n_valence - first + 1} valence (VBM = 0 eV, the "
        f"lowest at {_range(energies, start, vbm)}) and {conduction} conduction (the highest "
        f"up to {energies[:, last - first_band].max() - vbm:.2f} eV)",
    )
    return BandSelection(
        first=first,
        count=last - first + 1,
        weights=np.concatenate([weights, np.ones(conduction)]),
        notes=tuple(notes),
    )

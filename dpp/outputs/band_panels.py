"""Band figures of a bundle's systems as a run writes them (`*_plotBS.png`, `*_newBand_b.png`,
`bands_sys<i>.png`).

x is the path length Σ|Δk| (1/Bohr) with high-symmetry ticks (the `# L` labels of
kpoints_X.par, else the path's corners); model bands are lines, the reference points whose area
grows with the band weight (weight 0: grey); energies are in eV relative to a zero the y label
states: the loss's own view when it compares energies relative to band r at the first k-point
(each data set minus its own E_r(k_0)), else the valence-band maximum max_k E[:, idxVB] of the
reference (both data sets shifted alike, so absolute errors stay visible) when input_X.par sets
idxVB, else absolute energies.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from matplotlib.figure import Figure

from dpp.fitting.bands import BandTerm
from dpp.fitting.costs import NormalisedBandTerm
from dpp.fitting.terms import KPointTerm
from dpp.io.records import SystemData
from dpp.outputs.band_plot import BandPanel, EnergyZero, band_figure, display_label

ABSOLUTE_LABEL = "E, absolute (eV)"


def system_title(system: SystemData) -> str:
    """`<systemName> (system X)`; without a systemName the formula of the atoms stands in."""
    return f"{system.name} (system {system.index})"


def relative_band(term: KPointTerm | None, index: int) -> int | None:
    """Band r when the loss `term` compares the energies of system `index` relative to band r
    at the first k-point (relE_bIdx, relE_reference = first_kpoint), else None. The normalised
    cost of the analytic Monte Carlo engine compares absolute energies."""
    if not isinstance(term, BandTerm) or isinstance(term, NormalisedBandTerm):
        return None
    return term.targets[index].relative_band if term.mode == "first_kpoint" else None


def energy_zero(
    system: SystemData, model: np.ndarray, relative: int | None, model_offset: float = 0.0
) -> EnergyZero:
    """The energy zero of `system` with model bands `model` (nK, nB, eV): band `relative` at
    the first k-point of each data set, else the reference's VBM (the model's without a
    reference) when idxVB is set, else none (absolute energies). `model_offset` (eV) is the
    model's rigid offset from the reference when the fit leaves the energy zero free."""
    reference = system.ref_bands
    if relative is not None and reference is not None:
        point = display_label(system.kpoint_labels.get(0, "")) or "k$_0$"
        return EnergyZero(
            model=float(model[0, relative]),
            reference=float(reference[0, relative]),
            label=f"E − E$_{{{relative}}}$({point}) of each data set (eV)",
            line=True,
        )
    top = system.settings.idx_vb
    if top is not None and top < model.shape[1]:
        source, whose = (model, "model") if reference is None else (reference, "reference")
        vbm = float(np.max(source[:, top]))
        label = f"E − E$_\\mathrm{{VBM}}$({whose}) (eV)"
        return EnergyZero(vbm + model_offset, vbm, label, line=True)
    if model_offset:
        return EnergyZero(model=model_offset, label="E, reference's zero; model shifted (eV)")
    return EnergyZero(label=ABSOLUTE_LABEL)


def system_panel(
    system: SystemData,
    model: np.ndarray,
    *,
    term: KPointTerm | None = None,
    unordered: np.ndarray | None = None,
    band: int | None = None,
) -> BandPanel:
    """The panel of `system` with its model bands (nK, nB, eV) and, dashed, the bands before
    reordering; `band` keeps that column only (the energy zero still from all bands)."""
    model = np.asarray(model, float)
    offset = term.model_offset(system.index, model) if isinstance(term, BandTerm) else 0.0
    zero = energy_zero(system, model, relative_band(term, system.index), offset)
    columns = slice(None) if band is None else [band]
    title = system_title(system)
    return BandPanel(
        model=model[:, columns],
        reference=None if system.ref_bands is None else system.ref_bands[:, columns],
        unordered=None if unordered is None else np.asarray(unordered, float)[:, columns],
        kpoints=system.kpoints,
        cell=system.crystal.lattice,
        labels=system.kpoint_labels or None,
        band_weights=np.asarray(system.band_weights, float)[columns],
        name=title if band is None else f"{title}, band {band}",
        energy_zero=zero,
    )


def bands_figure(
    systems: Sequence[SystemData],
    bands: Sequence[np.ndarray],
    title: str,
    term: KPointTerm | None = None,
) -> Figure:
    """One panel per system: model bands (nK, nB, eV) against the reference, under `title`;
    `term` is the loss whose relative-energy view the plot takes."""
    panels = [system_panel(s, b, term=term) for s, b in zip(systems, bands, strict=True)]
    return band_figure(panels, title=title)


def band_by_band_figures(
    systems: Sequence[SystemData],
    reordered: Sequence[np.ndarray],
    ascending: Sequence[np.ndarray],
    title: str,
    term: KPointTerm | None = None,
) -> Iterator[tuple[int, Figure]]:
    """(b, figure) for every band b: band b after reordering (line) and before it (dashed,
    ascending energies) against reference band b, one panel per system that has band b."""
    for band in range(max(b.shape[1] for b in reordered)):
        panels = [
            system_panel(system, after, term=term, unordered=before, band=band)
            for system, after, before in zip(systems, reordered, ascending, strict=True)
            if band < after.shape[1]
        ]
        figure = band_figure(
            panels,
            title=f"{title}: band {band}",
            model_label="model, reordered",
            unordered_label="model, before reordering",
        )
        yield band, figure

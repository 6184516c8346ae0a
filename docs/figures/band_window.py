"""Draw docs/band_window.png: which reference bands of the embedded zb-CdSe example a band
window fits, and with what weight.

    python docs/figures/band_window.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from dpp.app.compose import EXAMPLES_DIR
from dpp.fitting.windows import BandWindow, window_factors
from dpp.io import load_bundle
from dpp.outputs.band_plot import path_layout

WINDOW = BandWindow(low=-2.0, high=5.0, edge="vbm", smoothness=0.25)
IDX_VB = 7
"""The top valence band (0-based, spin-degenerate pairs) of the example, which names no idxVB."""
OUT = Path(__file__).resolve().parents[1] / "band_window.png"


def main() -> None:
    system = load_bundle(EXAMPLES_DIR / "zb_CdSe").systems[0]
    reference = system.ref_bands
    factors = window_factors(reference, WINDOW, idx_vb=IDX_VB)
    vbm = float(reference[:, IDX_VB].max())
    cell = system.crystal.scale * np.asarray(system.crystal.cell, float)
    layout = path_layout(len(reference), kpoints=system.kpoints, cell=cell)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    for band in range(reference.shape[1]):
        for piece in layout.segments:
            ax.plot(layout.x[piece], reference[piece, band] - vbm, color="0.8", lw=0.8, zorder=1)
    points = ax.scatter(
        np.repeat(layout.x, reference.shape[1]),
        (reference - vbm).ravel(),
        c=factors.ravel(),
        cmap="viridis",
        vmin=0.0,
        vmax=1.0,
        s=9,
        zorder=2,
    )
    for bound in (WINDOW.low, WINDOW.high):
        ax.axhline(bound, color="tab:red", ls="--", lw=0.8)
    ax.set_xlim(layout.x[0], layout.x[-1])
    ax.set_xticks([tick.position for tick in layout.ticks])
    ax.set_xticklabels([tick.label for tick in layout.ticks])
    ax.set_ylabel("E − VBM (eV)")
    ax.set_title(
        fontsize="medium",
        label="fit_window_low = −2, fit_window_high = 5, fit_window_smoothness = 0.25 (eV)",
    )
    fig.colorbar(points, ax=ax, label="weight factor")
    fig.savefig(OUT, dpi=120)


if __name__ == "__main__":
    main()

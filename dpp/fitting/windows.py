"""Band windows and exclusions: which reference bands a system fits, with a smooth roll-off.

A reference entry E_kb (eV) gets the factor

    f = σ((E − (edge + low)) / δ) · σ(((edge + high) − E) / δ)

(either bound may be open), where `edge` is the reference VBM (max over k of band idxVB), the
CBM (min over k of band idxCB) or 0 (absolute), δ the roll-off width, and σ the logistic
function. The factor depends on the reference only, so the loss stays smooth in the model
parameters, and a band that enters or leaves the window along the path fades in or out
instead of jumping. Degenerate reference levels at a k-point (closer than 1 meV) share one
factor, computed from their mean, so a multiplet is in or out as a whole. Excluded bands get 0.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from dpp.errors import SettingError
from dpp.io.records import SystemData

EDGES = ("vbm", "cbm", "absolute")
DEGENERATE_EV = 1e-3
"""Reference levels closer than this (eV) at one k-point form one group."""


@dataclass(frozen=True)
class BandWindow:
    """low / high: window bounds in eV relative to `edge` (None: open); edge: vbm, cbm or
    absolute; smoothness: roll-off width δ in eV; exclude: band indices never fitted."""

    low: float | None = None
    high: float | None = None
    edge: str = "vbm"
    smoothness: float = 0.1
    exclude: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.edge not in EDGES:
            raise SettingError(
                "window_edge", "unknown edge", expected=", ".join(EDGES), found=self.edge
            )
        if not self.smoothness > 0:
            raise SettingError(
                "window_smoothness", "roll-off width", expected="> 0 eV", found=self.smoothness
            )
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise SettingError(
                "window_low",
                "empty window",
                expected=f"< window_high = {self.high}",
                found=self.low,
            )
        object.__setattr__(self, "exclude", tuple(int(b) for b in self.exclude))

    @property
    def active(self) -> bool:
        return self.low is not None or self.high is not None or bool(self.exclude)


def system_window(default: BandWindow, system: SystemData) -> BandWindow:
    """`default` with the window keys input_X.par sets for this system."""
    own = system.settings
    changes = {
        field: value
        for field, value in (
            ("low", own.window_low),
            ("high", own.window_high),
            ("edge", own.window_edge),
            ("smoothness", own.window_smoothness),
            ("exclude", own.exclude_bands),
        )
        if value is not None
    }
    return replace(default, **changes) if changes else default


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _group_means(row: np.ndarray) -> np.ndarray:
    """Each level replaced by the mean of its degenerate group (levels within 1 meV)."""
    order = np.argsort(row, kind="stable")
    labels = np.concatenate([[0], np.cumsum(np.diff(row[order]) > DEGENERATE_EV)])
    means = np.array([row[order][labels == g].mean() for g in range(labels[-1] + 1)])
    out = np.empty_like(row)
    out[order] = means[labels]
    return out


def missing_edge_index(
    window: BandWindow, idx_vb: int | None = None, idx_cb: int | None = None
) -> SettingError | None:
    """The error of a bounded window relative to the VBM (CBM) when idxVB (idxCB) is not
    given, or None: the window has what it needs."""
    if window.low is None and window.high is None or window.edge == "absolute":
        return None
    index, key = (idx_vb, "idxVB") if window.edge == "vbm" else (idx_cb, "idxCB")
    if index is not None:
        return None
    return SettingError(
        "window_edge",
        f"a window relative to the {window.edge.upper()} needs {key} in input_X.par",
        expected=f"{key} = <band>",
        found=None,
    )


def window_factors(
    reference: np.ndarray,
    window: BandWindow,
    idx_vb: int | None = None,
    idx_cb: int | None = None,
) -> np.ndarray:
    """The factor (nK, nBands) in [0, 1] of every reference entry (eV); a SettingError
    when the window's edge needs a band index that is not given (`missing_edge_index`)."""
    factors = np.ones_like(reference, dtype=float)
    if window.low is not None or window.high is not None:
        if window.edge == "absolute":
            edge = 0.0
        else:
            error = missing_edge_index(window, idx_vb, idx_cb)
            if error is not None:
                raise error
            column = reference[:, idx_vb if window.edge == "vbm" else idx_cb]
            edge = float(column.max() if window.edge == "vbm" else column.min())
        grouped = np.stack([_group_means(row) for row in reference])
        if window.low is not None:
            factors *= _sigmoid((grouped - (edge + window.low)) / window.smoothness)
        if window.high is not None:
            factors *= _sigmoid(((edge + window.high) - grouped) / window.smoothness)
    for band in window.exclude:
        if band < factors.shape[1]:
            factors[:, band] = 0.0
    return factors

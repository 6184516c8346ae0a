"""Band-structure figures: model lines and reference points along a labelled k-path.

Energies are in eV, path distances in 1/Bohr, k-points fractional on the reciprocal basis
b_j and cells in Bohr (lattice vectors as rows). Figures are `matplotlib.figure.Figure`
objects (no pyplot state); save them with `figure.savefig(path)`.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from dpp.physics.lattice import reciprocal_vectors

GAMMA = "Γ"
_GAMMA_NAMES = frozenset({"G", "GAMMA", "Gamma", r"\Gamma", r"$\Gamma$", GAMMA})
JUMP_FACTOR = 2.5
"""A step this many times longer than both neighbouring steps is a jump in the path."""
LEGEND_WIDTH = 1.9
"""Inches a band figure adds for the legend right of its last panel."""
_DIRECTION_TOLERANCE = 1e-6
_POINT_TOLERANCE = 1e-6

MODEL_COLOR = "C0"
UNORDERED_COLOR = "C1"
REFERENCE_COLOR = "black"
UNWEIGHTED_COLOR = "0.65"


@dataclass(frozen=True)
class PathTick:
    """A high-symmetry point on the x axis: position (path distance) and label."""

    position: float
    label: str


@dataclass(frozen=True)
class PathLayout:
    """x coordinate of every k-point, the continuous pieces of the path, and its ticks."""

    x: np.ndarray
    segments: tuple[slice, ...]
    ticks: tuple[PathTick, ...]
    xlabel: str


@dataclass(frozen=True)
class EnergyZero:
    """Energies drawn as E − zero (eV), with one zero per data set, and the y label that states
    it; `line` marks E = 0 with a dashed line (an aligned band edge or band)."""

    model: float = 0.0
    reference: float = 0.0
    label: str = "E (eV)"
    line: bool = False


@dataclass(frozen=True)
class BandPanel:
    """The bands of one system along a k-path.

    model, reference: (nK, nB) energies in eV (either may be None). unordered: (nK, nB) model
    energies before band reordering, drawn dashed. distance: (nK,) x axis in the unit given to
    `band_figure`; without it the path length Σ|Δk| (1/Bohr) is computed from `kpoints` (nK, 3,
    fractional) and `cell` (3, 3, Bohr). labels: row → high-symmetry label; without labels the
    corners of the path are found from `kpoints` and named from ASE's special points of `cell`.
    band_weights: (nB,) loss weights (bands of weight 0 are greyed). n_valence: number of
    valence columns, needed to align to the VBM. energy_zero: this panel's energy zero, in place
    of the figure's `energy_reference`.
    """

    model: np.ndarray | None = None
    reference: np.ndarray | None = None
    distance: np.ndarray | None = None
    kpoints: np.ndarray | None = None
    cell: np.ndarray | None = None
    labels: Mapping[int, str] | None = None
    band_weights: np.ndarray | None = None
    n_valence: int | None = None
    name: str = ""
    unordered: np.ndarray | None = None
    energy_zero: EnergyZero | None = None


def display_label(name: str) -> str:
    """A tick label: every spelling of the zone centre (G, GAMMA, …) becomes Γ."""
    return GAMMA if name in _GAMMA_NAMES else name


def path_distance(kpoints: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Cumulative path length Σ|k_i − k_{i−1}| in 1/Bohr for fractional k and a cell in Bohr."""
    return np.concatenate([[0.0], np.cumsum(_steps(kpoints, cell))])


def special_points(cell: np.ndarray) -> dict[str, np.ndarray]:
    """ASE's special points of the Bravais lattice of `cell`, fractional in this cell's b_j.

    Empty when ASE cannot classify the lattice (then corners are left unnamed).
    """
    from ase.cell import Cell

    try:
        points = Cell(np.asarray(cell, float)).bandpath(npoints=0).special_points
    except Exception:  # any lattice ASE cannot classify only loses the names
        return {}
    return {name: np.asarray(point, float) for name, point in points.items()}


def lattice_rotations(cell: np.ndarray) -> np.ndarray:
    """The point-group rotations of the Bravais lattice of `cell` (spglib), as (n, 3, 3)
    integer matrices acting on fractional real-space coordinates; identity only on failure."""
    import spglib

    with warnings.catch_warnings():  # spglib >= 2.5 warns about its legacy error API
        warnings.simplefilter("ignore", DeprecationWarning)
        symmetry = spglib.get_symmetry((np.asarray(cell, float), [[0.0, 0.0, 0.0]], [1]))
    if symmetry is None:
        return np.eye(3, dtype=int)[None]
    return np.asarray(symmetry["rotations"])


def _same_point(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to a reciprocal-lattice vector (fractional coordinates)."""
    difference = np.asarray(a, float) - np.asarray(b, float)
    return bool(np.all(np.abs(difference - np.round(difference)) < _POINT_TOLERANCE))


def _steps(kpoints: np.ndarray, cell: np.ndarray | None) -> np.ndarray:
    """|k_{i+1} − k_i|: Cartesian (1/Bohr) with a cell, else fractional."""
    steps = np.diff(np.asarray(kpoints, float), axis=0)
    if cell is not None:
        steps = steps @ reciprocal_vectors(cell)
    return np.linalg.norm(steps, axis=1)


def _corners_and_breaks(kpoints: np.ndarray, cell: np.ndarray | None) -> tuple[set[int], set[int]]:
    """Corners (start, end, direction changes, jump ends) and breaks (i: no line i → i+1).

    A break is a repeated point or a jump: a step more than JUMP_FACTOR times longer than both
    neighbouring steps.
    """
    kpoints = np.asarray(kpoints, float)
    n = kpoints.shape[0]
    corners = {0, n - 1}
    breaks: set[int] = set()
    if n < 2:
        return corners, breaks
    directions = np.diff(kpoints, axis=0)  # collinearity is basis independent
    lengths = _steps(kpoints, cell)
    repeated = lengths <= 1e-9 * max(float(lengths.max()), 1e-300)
    for i in range(1, n - 1):
        if repeated[i - 1] or repeated[i]:
            continue
        cosine = float(directions[i - 1] @ directions[i]) / float(
            np.linalg.norm(directions[i - 1]) * np.linalg.norm(directions[i])
        )
        if cosine < 1.0 - _DIRECTION_TOLERANCE:
            corners.add(i)
    for i, length in enumerate(lengths):
        neighbours = [lengths[j] for j in (i - 1, i + 1) if 0 <= j < lengths.size]
        neighbours = [value for value in neighbours if value > 0]
        if repeated[i] or (neighbours and length > JUMP_FACTOR * max(neighbours)):
            breaks.add(i)
            corners.update({i, i + 1})
    return corners, breaks


ArrayKey = tuple[tuple[int, ...], bytes] | None
"""An array as a hashable value: (shape, float64 bytes), or None."""


def _array_key(values: np.ndarray | None) -> ArrayKey:
    if values is None:
        return None
    array = np.ascontiguousarray(values, dtype=float)
    return array.shape, array.tobytes()


def _array(key: ArrayKey) -> np.ndarray | None:
    return None if key is None else np.frombuffer(key[1], dtype=float).reshape(key[0])


def path_layout(
    n_kpoints: int,
    *,
    distance: np.ndarray | None = None,
    kpoints: np.ndarray | None = None,
    cell: np.ndarray | None = None,
    labels: Mapping[int, str] | None = None,
    distance_unit: str = "1/Bohr",
) -> PathLayout:
    """x positions, continuous segments and high-symmetry ticks of a k-path.

    Ticks sit at labelled rows, or (without labels) at the path's corners: its ends, points where
    its direction changes, repeated points and jumps. Discontinuities are repeated points, jumps
    (a step JUMP_FACTOR times longer than both neighbours) and two labelled rows next to each
    other whose step is longer than twice the median step (as dpp-kpath writes `K,U`): the line
    is broken there, the x axis does not advance and the tick reads `A|B`. Unlabelled corners
    are named Γ when k is a reciprocal-lattice vector, else from ASE's special points of `cell`
    up to the lattice's point group (or left blank).

    Layouts are cached by the content of the arguments (the same path is drawn in every panel
    of every figure of a run); the returned `x` is read-only.
    """
    return _cached_layout(
        n_kpoints,
        _array_key(distance),
        _array_key(kpoints),
        _array_key(cell),
        tuple(sorted((labels or {}).items())),
        distance_unit,
    )


@functools.lru_cache(maxsize=64)
def _cached_layout(
    n_kpoints: int,
    distance: ArrayKey,
    kpoints: ArrayKey,
    cell: ArrayKey,
    labels: tuple[tuple[int, str], ...],
    distance_unit: str,
) -> PathLayout:
    layout = _path_layout(
        n_kpoints, _array(distance), _array(kpoints), _array(cell), dict(labels), distance_unit
    )
    layout.x.setflags(write=False)
    return layout


def _path_layout(
    n_kpoints: int,
    distance: np.ndarray | None,
    kpoints: np.ndarray | None,
    cell: np.ndarray | None,
    labels: Mapping[int, str] | None,
    distance_unit: str,
) -> PathLayout:
    labels = {row: label for row, label in (labels or {}).items() if 0 <= row < n_kpoints}
    if distance is not None:
        x = np.asarray(distance, float).copy()
        xlabel = f"path distance ({distance_unit})"
    elif kpoints is not None and cell is not None:
        x = path_distance(kpoints, cell)
        xlabel = "path distance |Δk| (1/Bohr)"
    else:
        x = np.arange(n_kpoints, dtype=float)
        xlabel = "k-point index"
    corners: set[int] = {0, n_kpoints - 1}
    breaks: set[int] = set()
    if kpoints is not None:
        corners, breaks = _corners_and_breaks(kpoints, cell)
    if labels:
        corners = {0, n_kpoints - 1, *labels}
        if kpoints is not None and n_kpoints > 1:
            steps = _steps(kpoints, cell)
            long = 2.0 * float(np.median(steps))
            breaks |= {i for i in labels if i + 1 in labels and steps[i] > long}
        corners |= {index for i in breaks for index in (i, i + 1)}
    special_rows = not labels and kpoints is not None and cell is not None
    names = _corner_names(set(range(n_kpoints)) if special_rows else corners, kpoints, cell, labels)
    if special_rows:  # special points on straight stretches of the path (K on X–K–Γ)
        corners |= set(names)
    increments = np.diff(x)
    increments[sorted(breaks)] = 0.0
    x = np.concatenate([[x[0]], x[0] + np.cumsum(increments)])
    starts = [0, *(i + 1 for i in sorted(breaks))]
    ends = [*(i + 1 for i in sorted(breaks)), n_kpoints]
    segments = tuple(slice(start, end) for start, end in zip(starts, ends, strict=True))
    ticks: list[PathTick] = []
    for index in sorted(corners):
        if index - 1 in breaks:
            continue
        label = names.get(index, "")
        if index in breaks:
            right = names.get(index + 1, "")
            label = "|".join(dict.fromkeys(part for part in (label, right) if part))
        ticks.append(PathTick(float(x[index]), label))
    return PathLayout(x=x, segments=segments, ticks=tuple(ticks), xlabel=xlabel)


def _corner_names(
    corners: set[int],
    kpoints: np.ndarray | None,
    cell: np.ndarray | None,
    labels: Mapping[int, str],
) -> dict[int, str]:
    names = {index: display_label(label) for index, label in labels.items()}
    if kpoints is None:
        return names
    candidates = special_points(cell) if cell is not None else {}
    # k (fractional, row) → k·W⁻¹ under a lattice rotation W of fractional real coordinates
    inverses = [np.linalg.inv(w) for w in lattice_rotations(cell)] if candidates else []
    for index in corners:
        if index in names:
            continue
        point = np.asarray(kpoints, float)[index]
        if _same_point(point, np.zeros(3)):
            names[index] = GAMMA
            continue
        images = [point @ inverse for inverse in inverses]
        for name, special in candidates.items():
            if any(_same_point(image, special) for image in images):
                names[index] = display_label(name)
                break
    return names


def point_names(
    rows: set[int], kpoints: np.ndarray, cell: np.ndarray, labels: Mapping[int, str]
) -> dict[int, str]:
    """The names of path `rows` as the band plots tick them: their `# L` label, Γ, or ASE's
    special point of `cell` up to the lattice's point group; rows without a name are left out."""
    return {
        row: name for row, name in _corner_names(rows, kpoints, cell, labels).items() if row in rows
    }


def _energy_shift(
    bands: np.ndarray | None, reference: str | float, n_valence: int | None, name: str
) -> float:
    if bands is None or reference == "none":
        return 0.0
    if reference == "vbm":
        if n_valence is None or not 1 <= n_valence <= bands.shape[1]:
            raise ValueError(
                f"{name or 'panel'}: aligning to the VBM needs n_valence in "
                f"[1, {bands.shape[1]}], got {n_valence}"
            )
        return float(np.max(bands[:, n_valence - 1]))
    return float(reference)


def _energy_label(reference: str | float) -> str:
    if reference == "none":
        return "E (eV)"
    if reference == "vbm":
        return r"E − E$_\mathrm{VBM}$ (eV)"
    return f"E − E$_\\mathrm{{ref}}$ (eV), E$_\\mathrm{{ref}}$ = {float(reference):g} eV"


def band_figure(
    panels: BandPanel | Sequence[BandPanel],
    *,
    energy_reference: str | float = "none",
    energy_window: tuple[float, float] | None = None,
    model_label: str = "model",
    reference_label: str = "reference",
    unordered_label: str = "model, before reordering",
    distance_unit: str = "1/Bohr",
    panel_size: tuple[float, float] = (4.8, 4.2),
    title: str | None = None,
) -> Figure:
    """One band-structure panel per system, side by side, under `title`; returns the Figure.

    Model bands are lines (dashed: before reordering), reference bands points (marker area
    grows with the band weight); bands of weight 0 are grey. `energy_reference` is "none"
    (absolute), "vbm" (each data set relative to its own valence-band maximum,
    max_k E[:, n_valence − 1]) or an energy in eV; a panel's `energy_zero` replaces it. The y
    label states the zero. Without `energy_window` the y range covers the model and the
    weighted reference bands. Raises ValueError for inconsistent shapes or a VBM without
    n_valence.
    """
    panels = [panels] if isinstance(panels, BandPanel) else list(panels)
    if not panels:
        raise ValueError("band_figure needs at least one panel")
    width, height = panel_size
    figure = Figure(figsize=(width * len(panels) + LEGEND_WIDTH, height), layout="constrained")
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    labels = (model_label, reference_label, unordered_label)
    for ax, panel in zip(axes, panels, strict=True):
        handles = _draw_panel(ax, panel, energy_reference, energy_window, labels, distance_unit)
    # one legend, right of the last panel: never over the bands
    axes[-1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small")
    if title:
        figure.suptitle(title, parse_math=False)
    return figure


def _zero(
    panel: BandPanel,
    model: np.ndarray | None,
    reference: np.ndarray | None,
    energy_reference: str | float,
) -> EnergyZero:
    """The panel's own zero, else the one `energy_reference` gives for each data set."""
    if panel.energy_zero is not None:
        return panel.energy_zero
    return EnergyZero(
        model=_energy_shift(model, energy_reference, panel.n_valence, panel.name),
        reference=_energy_shift(reference, energy_reference, panel.n_valence, panel.name),
        label=_energy_label(energy_reference),
        line=energy_reference == "vbm",
    )


def _draw_panel(
    ax: Axes,
    panel: BandPanel,
    energy_reference: str | float,
    energy_window: tuple[float, float] | None,
    labels: tuple[str, str, str],
    distance_unit: str,
) -> list[Line2D]:
    """Draw one panel; returns its legend handles."""
    model_label, reference_label, unordered_label = labels
    model = None if panel.model is None else np.asarray(panel.model, float)
    reference = None if panel.reference is None else np.asarray(panel.reference, float)
    unordered = None if panel.unordered is None else np.asarray(panel.unordered, float)
    present = [bands for bands in (model, reference, unordered) if bands is not None]
    if not present:
        raise ValueError(f"{panel.name or 'panel'}: neither model nor reference bands")
    n_kpoints = present[0].shape[0]
    if any(bands.ndim != 2 or bands.shape[0] != n_kpoints for bands in present):
        raise ValueError(f"{panel.name or 'panel'}: band tables need one row per k-point")
    layout = path_layout(
        n_kpoints,
        distance=panel.distance,
        kpoints=panel.kpoints,
        cell=panel.cell,
        labels=panel.labels,
        distance_unit=distance_unit,
    )
    zero = _zero(panel, model, reference, energy_reference)
    visible: list[np.ndarray] = []
    handles: list[Line2D] = []
    for bands, style, label in ((model, "-", model_label), (unordered, "--", unordered_label)):
        if bands is None:
            continue
        bands = bands - zero.model
        weights = np.ones(bands.shape[1])
        if panel.band_weights is not None and len(panel.band_weights) == bands.shape[1]:
            weights = np.asarray(panel.band_weights, float)
        color = UNORDERED_COLOR if style == "--" else MODEL_COLOR
        for segment in layout.segments:
            x = layout.x[segment]
            if np.any(weights > 0):
                ax.plot(x, bands[segment][:, weights > 0], style, color=color, lw=1.3)
            if np.any(weights == 0):
                ax.plot(x, bands[segment][:, weights == 0], style, color=UNWEIGHTED_COLOR, lw=1.0)
        visible.append(bands)
        handles.append(Line2D([], [], ls=style, color=color, lw=1.3, label=label))
    if reference is not None:
        reference = reference - zero.reference
        handles += _draw_reference(ax, layout.x, reference, panel.band_weights, reference_label)
        weights = _weights(panel.band_weights, reference.shape[1])
        visible.append(reference[:, weights > 0])
    for tick in layout.ticks:
        ax.axvline(tick.position, color="0.75", lw=0.8, zorder=0)
    if zero.line:
        ax.axhline(0.0, color="0.5", lw=0.8, ls="--", zorder=0)
    ax.set_xticks([tick.position for tick in layout.ticks], [tick.label for tick in layout.ticks])
    ax.set_xlim(float(np.min(layout.x)), float(np.max(layout.x)))
    ax.set_ylim(*(energy_window or _auto_window(visible)))
    ax.set_xlabel(layout.xlabel)
    ax.set_ylabel(zero.label)
    if panel.name:
        ax.set_title(panel.name, parse_math=False)  # a systemName is text, never mathtext
    return handles


def _weights(band_weights: np.ndarray | None, n_bands: int) -> np.ndarray:
    if band_weights is None:
        return np.ones(n_bands)
    weights = np.asarray(band_weights, float)
    if weights.shape != (n_bands,):
        raise ValueError(f"{weights.size} band weights for {n_bands} reference bands")
    return weights


def _draw_reference(
    ax: Axes,
    x: np.ndarray,
    reference: np.ndarray,
    band_weights: np.ndarray | None,
    label: str,
) -> list[Line2D]:
    weights = _weights(band_weights, reference.shape[1])
    largest = float(np.max(weights)) if np.any(weights > 0) else 1.0
    varied = np.unique(weights[weights > 0]).size > 1
    handles = []
    for band in range(reference.shape[1]):
        weight = weights[band]
        if weight > 0:
            size = 9.0 * (0.5 + weight / largest)
            ax.scatter(x, reference[:, band], s=size, color=REFERENCE_COLOR, lw=0, zorder=3)
        else:
            ax.scatter(x, reference[:, band], s=6.0, color=UNWEIGHTED_COLOR, lw=0, zorder=2)
    if np.any(weights > 0):
        text = f"{label} (area ∝ weight)" if varied else label
        handles.append(Line2D([], [], ls="", marker="o", ms=4, color=REFERENCE_COLOR, label=text))
    if np.any(weights == 0):
        handles.append(
            Line2D(
                [], [], ls="", marker="o", ms=3, color=UNWEIGHTED_COLOR, label=f"{label} (weight 0)"
            )
        )
    return handles


def _auto_window(tables: list[np.ndarray]) -> tuple[float, float]:
    values = np.concatenate([table[np.isfinite(table)].ravel() for table in tables])
    if values.size == 0:
        return (-1.0, 1.0)
    low, high = float(values.min()), float(values.max())
    margin = 0.05 * (high - low) if high > low else 0.5
    return (low - margin, high + margin)

"""Matplotlib figures of potentials, costs and the Monte Carlo trace (Agg; windows only with
SHOWPLOTS); band figures are in `dpp.outputs.band_panels`."""

from __future__ import annotations

import io
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from dpp.io.writers import write_bytes_atomic, write_text_atomic  # noqa: E402

log = logging.getLogger(__name__)


def display_available() -> bool:
    """True where interactive windows can open (an X/Wayland display, macOS or Windows)."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or (
        sys.platform in ("darwin", "win32")
    )


def save_figure(fig: Figure, path: Path) -> Path:
    """Write `fig` (format from the suffix) atomically."""
    path = Path(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=path.suffix.lstrip("."), dpi=110)
    return write_bytes_atomic(path, buffer.getvalue())


def close(fig: Figure) -> None:
    plt.close(fig)


def potentials_figure(
    q: np.ndarray,
    values: np.ndarray,
    prior: np.ndarray | None,
    species: Sequence[str],
    r: np.ndarray,
    real: np.ndarray,
    title: str,
) -> Figure:
    """v(q) against the prior, their difference, and v(r) per species."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    for s, symbol in enumerate(species):
        line = axes[0].plot(q, values[:, s], label=f"{symbol}")[0]
        if prior is not None:
            axes[0].plot(q, prior[:, s], "--", color=line.get_color(), label=f"{symbol} prior")
            axes[1].plot(q, values[:, s] - prior[:, s], color=line.get_color(), label=symbol)
        axes[2].plot(r, real[:, s], color=line.get_color(), label=symbol)
    axes[0].set(xlabel="q (1/Bohr)", ylabel="v(q) (Hartree Bohr^3)", title="v(q)")
    axes[1].set(xlabel="q (1/Bohr)", ylabel="v(q) − prior (Hartree Bohr^3)", title="v(q) − prior")
    axes[2].set(xlabel="r (Bohr)", ylabel="v(r) (Hartree)", title="v(r)")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.suptitle(title, parse_math=False)
    fig.tight_layout()
    return fig


def converge_figure(curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str) -> Figure:
    """v(r) of every (q_max, n_q, n_r) combination: label -> (r, v (n_r, S))."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, (r, v) in curves.items():
        ax.plot(r, v, linewidth=0.8, label=label)
    ax.set(xlabel="r (Bohr)", ylabel="v(r) (Hartree)", title=title)
    ax.legend(fontsize=5, ncol=2)
    fig.tight_layout()
    return fig


def cost_figure(
    train: Sequence[tuple[float, float]],
    validation: Sequence[tuple[float, float]],
    title: str,
    unit: str = "eV^2",
) -> Figure:
    """Training and validation cost per epoch in `unit`, log scale."""
    fig, ax = plt.subplots(figsize=(6, 4.2))
    if train:
        ax.plot(*zip(*train, strict=True), label="training")
    if validation:
        ax.plot(*zip(*validation, strict=True), "o-", label="validation")
    ax.set(xlabel="epoch", ylabel=f"cost ({unit})", yscale="log", title=title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    ax.legend()
    fig.tight_layout()
    return fig


def mc_cost_figure(trace: np.ndarray, unit: str) -> Figure:
    """Monte Carlo trace against the trial: trial, current and best loss in `unit` (log scale
    when all are positive), and the running acceptance rate (accepted trials / trials).
    `trace` holds the rows of final_mc_cost.dat: trial, trial loss, accepted 0/1, best loss,
    current loss."""
    trial, new, accepted, best, current = np.asarray(trace, float).T
    fig = Figure(figsize=(7.0, 6.0), layout="constrained")
    losses, rate = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    losses.plot(trial, new, ".", color="0.6", ms=3, label="trial")
    losses.plot(trial, current, "-", color="C0", lw=1.2, label="current")
    losses.plot(trial, best, "-", color="C3", lw=1.6, label="best")
    finite = np.concatenate([new, best, current])
    finite = finite[np.isfinite(finite)]
    losses.set(ylabel=f"loss ({unit})", title="Monte Carlo")
    if finite.size and np.all(finite > 0):
        losses.set_yscale("log")
    losses.legend()
    rate.plot(trial, np.cumsum(accepted) / trial, "-", color="C2", label="acceptance rate")
    rate.set(xlabel="trial", ylabel="acceptance rate", ylim=(0.0, 1.05))
    return fig


def write_cost_file(path: Path, rows: Sequence[tuple[float, float]]) -> Path:
    """Lines `x  L` (x as integer, L as Python float repr), written atomically."""
    return write_text_atomic(path, "".join(f"{int(x)}  {float(v)!r}\n" for x, v in rows))


def enable_windows() -> bool:
    """Switch to an interactive backend for SHOWPLOTS = 1; False (with a warning) where no
    display exists or no GUI toolkit is installed. Files are written either way."""
    if not display_available():
        log.warning("outputs.show_plots: no display is available; plots are only saved")
        return False
    try:
        plt.switch_backend("TkAgg")
    except Exception as exc:  # any missing GUI toolkit must not stop a run
        log.warning("cannot open plot windows (%s); plots are only saved", exc)
        return False
    return True


def show(fig: Figure) -> None:
    """Show `fig` without blocking (after `enable_windows()` succeeded); a figure made without
    pyplot (the band figures) is shown as its rendered image."""
    try:
        if fig.canvas.manager is None:
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", dpi=110)
            buffer.seek(0)
            image = plt.imread(buffer)
            height, width = image.shape[:2]
            window = plt.figure(figsize=(width / 110, height / 110), dpi=110)
            window.figimage(image)
            fig = window
        fig.show()
        plt.pause(0.001)
    except Exception as exc:  # a closed or broken window must not stop a run
        log.warning("cannot show a plot window (%s)", exc)

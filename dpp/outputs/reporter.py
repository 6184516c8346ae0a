"""Result files of a run in the original's names and formats (outputs.md)."""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from dpp.errors import SettingError
from dpp.fitting.objective import Objective
from dpp.fitting.observables import CouplingTerm
from dpp.fitting.penalties import prior_curve
from dpp.fitting.terms import KPointTerm
from dpp.io.coupling_writer import format_couplings
from dpp.io.records import Bundle
from dpp.io.writers import (
    write_band_file,
    write_basis_states,
    write_qspace_table,
    write_real_space_potential,
    write_text_atomic,
)
from dpp.outputs import movies, plots
from dpp.outputs.band_panels import band_by_band_figures, bands_figure
from dpp.physics.hamiltonian import PseudopotentialHamiltonian
from dpp.physics.realspace import q_grid, r_grid, to_real_space

log = logging.getLogger(__name__)

PLOT_Q_MAX, PLOT_Q_POINTS = 10.0, 2048  # the "ZungerForm" validation grid (physics.md §9)
PLOT_R_MAX = 8.0  # Bohr: r range of the v(r) plots
CONVERGE_Q_MAX = (10.0, 20.0, 30.0)  # 1/Bohr: q cutoffs of `*_plotPPconverge.png`
CONVERGE_Q_POINTS = (2048, 4096)  # q points ...
CONVERGE_R_POINTS = (2048, 4096)  # ... and r points (up to rmax) of its transforms


@dataclass(frozen=True)
class OutputSettings:
    """What is written besides the training state.

    show_plots: open plot windows where a display exists (SHOWPLOTS).
    converge_plots: `*_plotPPconverge.png` (12 real-space transforms) at start and end.
    qmax, n_qgrid: q grid of the `*_qSpace_pot.dat` tables (1/Bohr).
    rmax, n_rgrid: r grid of the `*_pot_S.dat` files (Bohr).
    ft_qmax, ft_n_qgrid: q cutoff (1/Bohr) and points of the real-space transform.
    movies: movie_BS.mp4 and movie_PP.mp4 from the frames at the end of a run (genMovie).
    """

    show_plots: bool = False
    converge_plots: bool = True
    qmax: float = 40.0
    n_qgrid: int = 4096
    rmax: float = 25.0
    n_rgrid: int = 2048
    ft_qmax: float = 20.0
    ft_n_qgrid: int = 2048
    movies: bool = False

    def __post_init__(self) -> None:
        for name in ("qmax", "rmax", "ft_qmax"):
            if getattr(self, name) <= 0:
                raise SettingError(
                    name, "grid end must be positive", expected="> 0", found=getattr(self, name)
                )
        for name in ("n_qgrid", "n_rgrid", "ft_n_qgrid"):
            if getattr(self, name) < 2:
                raise SettingError(
                    name, "too few grid points", expected=">= 2", found=getattr(self, name)
                )


ConvergeGrid = tuple[float, int, torch.Tensor, list[tuple[int, torch.Tensor]]]
"""(q_max, n_q, q grid, [(n_r, r grid up to PLOT_R_MAX)]) of one converge-plot transform."""

FigureSink = Callable[[str, Figure], None]
"""Receives (tag, figure) before the figure is closed, e.g. a TensorBoard logger."""

_STAGES = {
    "oldFunc": "analytic form (init_<S>Params.par)",
    "initZunger": "initial model",
    "best": "best state",
    "final": "final state",
}
_NUMBERED = {"epoch": "epoch", "preEpoch": "pre-adjust move", "mc_iter": "Monte Carlo trial"}


def stage_title(prefix: str) -> str:
    """Figure title of the files `{prefix}_*`: `epoch_12` → "epoch 12", `oldFunc` → "analytic
    form (init_<S>Params.par)"; other prefixes as they are."""
    match = re.fullmatch(r"(\w+?)_(\d+)", prefix)
    if match and match.group(1) in _NUMBERED:
        return f"{_NUMBERED[match.group(1)]} {match.group(2)}"
    return _STAGES.get(prefix, prefix)


@torch.no_grad()
def evaluate_bands(hamiltonian: PseudopotentialHamiltonian, k_chunk: int = 32) -> list[np.ndarray]:
    """Bands (nK, nBands) in eV of every system in eval mode, k-points in chunks."""
    model = hamiltonian.model
    was_training = model.training if model is not None else False
    if model is not None:
        model.eval()
    try:
        out = []
        for index, geometry in enumerate(hamiltonian.geometries):
            k_all = torch.arange(geometry.n_kpoints, device=geometry.kpoints.device)
            parts = [hamiltonian.bands(index, chunk) for chunk in torch.split(k_all, k_chunk)]
            out.append(torch.cat(parts).cpu().numpy())
        return out
    finally:
        if model is not None:
            model.train(was_training)


class Reporter:
    """Writes band, potential and parameter files plus plots into `run_dir` (rank zero only)."""

    def __init__(
        self,
        run_dir: Path,
        bundle: Bundle,
        settings: OutputSettings,
        *,
        figure_sink: FigureSink | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.bundle = bundle
        self.settings = settings
        self.show_plots = settings.show_plots and plots.enable_windows()
        self.figure_sink = figure_sink

    @functools.cached_property
    def _plot_grid(self) -> tuple[torch.Tensor, np.ndarray]:
        """The q grid of the v(q) plots and the prior curve on it (fixed by the bundle)."""
        q_plot = q_grid(PLOT_Q_MAX, PLOT_Q_POINTS)
        prior = prior_curve(q_plot, self.bundle.pp_params, self.bundle.qspace_prior).numpy()
        return q_plot, prior

    @functools.cached_property
    def _converge_grids(self) -> list[ConvergeGrid]:
        """The grids of `*_plotPPconverge.png` (fixed by the settings)."""
        radii = []
        for n_r in CONVERGE_R_POINTS:
            r = r_grid(self.settings.rmax, n_r)
            radii.append((n_r, r[r <= PLOT_R_MAX]))
        return [
            (q_max, n_q, q_grid(q_max, n_q), radii)
            for q_max in CONVERGE_Q_MAX
            for n_q in CONVERGE_Q_POINTS
        ]

    def figure(self, fig: Figure, name: str, tag: str | None = None) -> None:
        """Save `fig` as `name` in the run folder, hand it to the sink as `tag`, close it."""
        plots.save_figure(fig, self.run_dir / name)
        if tag is not None and self.figure_sink is not None:
            self.figure_sink(tag, fig)
        if self.show_plots:
            plots.show(fig)
        else:
            plots.close(fig)

    def basis_states(self, hamiltonian: PseudopotentialHamiltonian) -> None:
        for index, geometry in enumerate(hamiltonian.geometries):
            write_basis_states(
                self.run_dir / f"basisStates_{index}.dat", geometry.basis.cpu().numpy()
            )

    def bands(
        self,
        prefix: str,
        bands: Sequence[np.ndarray],
        tag: str | None = None,
        term: KPointTerm | None = None,
        *,
        title: str | None = None,
        band_files: bool = True,
    ) -> None:
        """`{prefix}_plotBS.png` of `bands` ((nK, nB) eV per system; the view of the loss
        `term`, see `dpp.outputs.band_panels`) and, with `band_files`, `{prefix}_BS_sysX.dat`
        (absolute energies)."""
        if band_files:
            for system, calc in zip(self.bundle.systems, bands, strict=True):
                path = system.ref_path if system.ref_path is not None else np.arange(len(calc))
                write_band_file(self.run_dir / f"{prefix}_BS_sys{system.index}.dat", path, calc)
        fig = bands_figure(self.bundle.systems, bands, title or stage_title(prefix), term)
        self.figure(fig, f"{prefix}_plotBS.png", tag)

    def band_by_band(
        self,
        prefix: str,
        reordered: Sequence[np.ndarray],
        ascending: Sequence[np.ndarray],
        term: KPointTerm | None = None,
    ) -> None:
        """`{prefix}_newBand_b.png` for every band b (smooth_reorder): band b after and before
        reordering ((nK, nB) eV per system) against reference band b."""
        figures = band_by_band_figures(
            self.bundle.systems, reordered, ascending, stage_title(prefix), term
        )
        for band, fig in figures:
            self.figure(fig, f"{prefix}_newBand_{band}.png")

    def movies(self) -> list[Path]:
        """movie_BS.mp4 and movie_PP.mp4 from the frames in the run folder when `movies` is on;
        a warning, never an error, when they cannot be made."""
        if not self.settings.movies:
            return []
        try:
            return movies.write_run_movies(self.run_dir)
        except Exception as exc:  # the end of a run must not fail over a movie
            log.warning("movies skipped: %s", exc)
            return []

    @torch.no_grad()
    def couplings(
        self, name: str, hamiltonian: PseudopotentialHamiltonian, objective: Objective
    ) -> None:
        """`{name}_X.dat` for every system whose couplings are fitted (fit_eph): |g| in
        eV/Bohr at the present state, in the layout of expCoupling_X.par (bundle-format
        §12.2); `couplingBands` is the start, `bestCoupling` the best state."""
        terms = [t for t in objective.global_terms if isinstance(t, CouplingTerm)]
        if not terms:
            return
        warm = hamiltonian.snapshot()  # writing a file leaves the next solves as they were
        model = hamiltonian.model
        was_training = model.training if model is not None else False
        if model is not None:
            model.eval()  # a batch-norm network is called on the distinct |ΔG'| only
        try:
            for term in terms:
                for index, system in term.systems.items():
                    with torch.no_grad():
                        values = term.couplings(hamiltonian, index)
                    magnitudes = {key: value.abs() for key, value in values.items()}
                    text = format_couplings(magnitudes, system.crystal, len(system.qpoints))
                    write_text_atomic(self.run_dir / f"{name}_{index}.dat", text)
        finally:
            hamiltonian.restore(warm)
            if model is not None:
                model.train(was_training)

    def potentials(
        self,
        prefix: str,
        hamiltonian: PseudopotentialHamiltonian,
        *,
        tag: str | None = None,
        converge: bool = False,
        real_space_files: bool = False,
        table: bool = True,
    ) -> None:
        """`{prefix}_plotPP.png`, with `table` `{prefix}_qSpace_pot.dat`, with
        `real_space_files` `{prefix}_pot_S.dat`, with `converge` (and `converge_plots`)
        `{prefix}_plotPPconverge.png`."""
        model = hamiltonian.model
        was_training = model.training if model is not None else False
        if model is not None:
            model.eval()
        try:
            self._potentials(prefix, hamiltonian, tag, converge, real_space_files, table)
        finally:
            if model is not None:
                model.train(was_training)

    def _potentials(
        self,
        prefix: str,
        hamiltonian: PseudopotentialHamiltonian,
        tag: str | None,
        converge: bool,
        real_space_files: bool,
        table: bool,
    ) -> None:
        g, species = self.settings, self.bundle.species
        device = hamiltonian.pp_fixed.device

        def values_on(q: torch.Tensor) -> np.ndarray:
            return hamiltonian.form_factors(q.to(device)).detach().cpu().numpy()

        if table:
            q_table = q_grid(g.qmax, g.n_qgrid)
            write_qspace_table(
                self.run_dir / f"{prefix}_qSpace_pot.dat",
                q_table.numpy(),
                values_on(q_table),
                species,
            )
        q_ft, r = q_grid(g.ft_qmax, g.ft_n_qgrid), r_grid(g.rmax, g.n_rgrid)
        if not real_space_files:
            r = r[r <= PLOT_R_MAX]
        real = to_real_space(q_ft, torch.as_tensor(values_on(q_ft)), r).numpy()
        if real_space_files:
            for s, symbol in enumerate(species):
                write_real_space_potential(
                    self.run_dir / f"{prefix}_pot_{symbol}.dat", r.numpy(), real[:, s]
                )
        q_plot, prior = self._plot_grid
        fig = plots.potentials_figure(
            q_plot.numpy(), values_on(q_plot), prior, species, r.numpy(), real, prefix
        )
        self.figure(fig, f"{prefix}_plotPP.png", tag)
        if converge and g.converge_plots:
            curves = {}
            for q_max, n_q, q, radii in self._converge_grids:
                values = torch.as_tensor(values_on(q))
                for n_r, rr in radii:
                    v = to_real_space(q, values, rr).numpy()
                    curves[f"qmax {q_max:g}, nq {n_q}, nr {n_r}"] = (rr.numpy(), v)
            self.figure(plots.converge_figure(curves, prefix), f"{prefix}_plotPPconverge.png")


def write_run_info(path: Path, info: dict[str, Any]) -> None:
    """run_info.json (outputs.md §8): basis mode and sizes, species, version, seeds,
    legacy switches and the initialisation path, as given."""
    write_text_atomic(path, json.dumps(info, indent=2, default=str) + "\n")


def run_facts(hamiltonian: PseudopotentialHamiltonian, bundle: Bundle) -> dict[str, Any]:
    """The physics facts of a run for run_info.json: basis mode and sizes, species, switches
    (the legacy_* switches are the run's `legacy_switches`)."""
    options = hamiltonian.options
    return {
        "bundle": str(bundle.path),
        "basis_search": options.basis_search,
        "basis_sizes": [g.n_basis for g in hamiltonian.geometries],
        "species": list(bundle.species),
        "physics": {
            "spin_orbit": options.spin_orbit,
            "long_range_with_nn": options.long_range_with_nn,
            "nonlocal_without_soc": options.nonlocal_without_soc,
            "nonlocal_s": options.nonlocal_s,
            "eigensolver": options.eigensolver,
        },
    }

"""dpp.outputs.band_panels: titles, the energy zero (the loss's view), the evaluation plot."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from test_outputs_training import LABELS, N_BANDS, VBM_COLUMN, labelled_bundle
from training_support import run_app

from dpp.fitting import LossSettings
from dpp.fitting.bands import BandTerm
from dpp.fitting.costs import NormalisedBandTerm
from dpp.io import load_bundle
from dpp.io.records import SystemData, reduced_formula
from dpp.outputs import plots
from dpp.outputs.band_panels import bands_figure, energy_zero, system_title


@pytest.fixture
def system(tmp_path: Path) -> SystemData:
    return load_bundle(labelled_bundle(tmp_path)).systems[0]


def _drawn(figure) -> tuple[np.ndarray, np.ndarray]:
    """(model lines, reference points) of the only panel, one column per band."""
    (ax,) = figure.axes
    lines = [line.get_ydata() for line in ax.get_lines() if len(line.get_xdata()) > 2]
    points = [c.get_offsets()[:, 1] for c in ax.collections]
    return np.column_stack(lines), np.column_stack(points)


def test_titles_fall_back_to_the_formula(system: SystemData) -> None:
    assert reduced_formula(("Cd", "Se")) == "CdSe"
    assert reduced_formula(("In", "In", "Ga", "Ga", "As", "As", "As", "As")) == "InGaAs2"
    assert reduced_formula(("Cs", "Pb", "I", "I", "I")) == "CsPbI3"
    assert system_title(system) == "CdSe (system 0)"
    named = replace(system, settings=replace(system.settings, system_name="zb CdSe"))
    assert system_title(named) == "zb CdSe (system 0)"


def test_energy_zero_is_the_view_of_the_loss(system: SystemData) -> None:
    model = system.ref_bands + np.linspace(0.0, 0.7, N_BANDS)
    vbm = system.ref_bands[:, VBM_COLUMN].max()
    figure = bands_figure([system], [model], "t")
    lines, points = _drawn(figure)
    assert figure.axes[0].get_ylabel() == "E − E$_\\mathrm{VBM}$(reference) (eV)"
    assert np.allclose(lines, model - vbm) and np.allclose(points, system.ref_bands - vbm)
    relative = BandTerm([system], LossSettings(relE_bIdx=2))
    figure = bands_figure([system], [model], "t", term=relative)
    lines, points = _drawn(figure)
    assert figure.axes[0].get_ylabel() == f"E − E$_{{2}}$({LABELS[0]}) of each data set (eV)"
    assert np.allclose(lines, model - model[0, 2])
    assert np.allclose(points, system.ref_bands - system.ref_bands[0, 2])
    same_k = BandTerm([system], LossSettings(relE_bIdx=2, relE_reference="same_kpoint"))
    normalised = NormalisedBandTerm([system], LossSettings(relE_bIdx=2))
    for term in (same_k, normalised):  # their losses compare band r per k or absolute energies
        label = bands_figure([system], [model], "t", term).axes[0].get_ylabel()
        assert label == "E − E$_\\mathrm{VBM}$(reference) (eV)"
    without_reference = replace(system, ref_bands=None)
    zero = energy_zero(without_reference, model, None)
    assert zero.label == "E − E$_\\mathrm{VBM}$(model) (eV)"
    assert zero.model == pytest.approx(model[:, VBM_COLUMN].max())
    absolute = replace(system, settings=replace(system.settings, idx_vb=None))
    figure = bands_figure([absolute], [model], "t")
    lines, points = _drawn(figure)
    assert figure.axes[0].get_ylabel() == "E, absolute (eV)"
    assert np.allclose(lines, model) and np.allclose(points, system.ref_bands)


def test_evaluation_plot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = labelled_bundle(tmp_path)
    figures = {}
    original = plots.save_figure

    def capture(fig, path):
        figures[Path(path).name] = fig
        return original(fig, path)

    monkeypatch.setattr(plots, "save_figure", capture)
    run_app(tmp_path / "eval", [f"data.bundle={bundle}"], config_name="evaluate")
    figure = figures["bands_sys0.png"]
    (ax,) = figure.axes
    assert figure.get_suptitle() == "evaluation" and ax.get_title() == "CdSe (system 0)"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["L", "Λ"]
    assert ax.get_ylabel() == "E − E$_\\mathrm{VBM}$(reference) (eV)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "model",
        "reference (area ∝ weight)",
    ]
    bands = np.loadtxt(tmp_path / "eval" / "bands_sys0.dat")[:, 1:]
    lines, _ = _drawn(figure)
    system = load_bundle(bundle).systems[0]
    assert np.allclose(lines, bands - system.ref_bands[:, VBM_COLUMN].max(), atol=1e-4)


def test_path_layout_is_computed_once_per_path(system: SystemData, monkeypatch) -> None:
    """Every panel of every figure draws the same k-path: the layout (and the lattice
    symmetry it names corners with) is computed once per path content."""
    from dpp.outputs import band_plot

    calls = []
    rotations = band_plot.lattice_rotations
    band_plot._cached_layout.cache_clear()
    monkeypatch.setattr(band_plot, "lattice_rotations", lambda c: calls.append(1) or rotations(c))
    cell = system.crystal.lattice
    first = band_plot.path_layout(system.n_kpoints, kpoints=system.kpoints, cell=cell)
    again = band_plot.path_layout(
        system.n_kpoints, kpoints=system.kpoints.copy(), cell=np.array(cell)
    )
    assert again is first and len(calls) == 1
    assert not first.x.flags.writeable
    np.testing.assert_allclose(first.x, band_plot.path_distance(system.kpoints, cell))
    labelled = band_plot.path_layout(
        system.n_kpoints, kpoints=system.kpoints, cell=cell, labels={0: "G"}
    )
    assert labelled is not first

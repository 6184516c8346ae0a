"""dpp.outputs.band_plot, dpp-plot-bands and dpp-plot-terms (matplotlib objects and numbers)."""

from __future__ import annotations

import shutil
from pathlib import Path

import matplotlib
import matplotlib.pyplot
import numpy as np
import pytest
import torch

from dpp.io.kpoints import read_points
from dpp.io.reference import read_band_weights, read_reference_bands
from dpp.io.system import read_system
from dpp.outputs.band_plot import BandPanel, band_figure, path_layout
from dpp.physics import band_structure
from dpp.tools.common import load_system_bundle
from dpp.tools.plot_bands import main as plot_bands
from dpp.tools.plot_terms import main as plot_terms

TESTS = Path(__file__).parent
CDSE = TESTS.parent / "dpp" / "data" / "examples" / "zb_CdSe"
CSPBI3 = TESTS / "data" / "CsPbI3_soc"


def _cdse_panel(weights: np.ndarray | None = None) -> BandPanel:
    kpoints, _ = read_points(CDSE / "kpoints_0.par")
    _, reference = read_reference_bands(CDSE / "expBandStruct_0.par", 16)
    return BandPanel(
        model=reference + 0.05,
        reference=reference,
        kpoints=kpoints,
        cell=read_system(CDSE / "system_0.par").lattice,
        band_weights=read_band_weights(CDSE / "bandWeights_0.par", 16)
        if weights is None
        else weights,
        n_valence=8,
        name="zb CdSe",
    )


def _thinned(source: Path, folder: Path, step: int) -> Path:
    """A copy of bundle `source` keeping every `step`-th k-point (fast evaluations)."""
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("*.pth"))
    for name in ("kpoints_0.par", "expBandStruct_0.par"):
        rows = (source / name).read_text().splitlines()
        (folder / name).write_text("\n".join(rows[::step]) + "\n")
    return folder


def _legend(ax: matplotlib.axes.Axes) -> list[str]:
    return [text.get_text() for text in ax.get_legend().get_texts()]


def test_band_figure_labels_corners_and_legend() -> None:
    figure = band_figure(_cdse_panel(), energy_reference="vbm")
    (ax,) = figure.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["L", "Γ", "X", "K", "Γ"]
    assert ax.get_title() == "zb CdSe"
    assert "VBM" in ax.get_ylabel() and "(eV)" in ax.get_ylabel()
    assert ax.get_xlabel() == "path distance |Δk| (1/Bohr)"
    assert _legend(ax) == ["model", "reference (area ∝ weight)"]
    top = max(line.get_ydata().max() for line in ax.get_lines() if len(line.get_xdata()) > 2)
    assert top > 0 and ax.get_ylim()[0] < -13  # aligned: the VBM sits at 0, s band near −14
    model_valence = np.concatenate(
        [line.get_ydata() for line in ax.get_lines() if len(line.get_xdata()) > 2]
    )
    assert np.isclose(model_valence, 0.0, atol=1e-9).any()
    assert matplotlib.pyplot.get_fignums() == []  # no pyplot state


def test_zero_weight_reference_bands_are_grey_and_listed() -> None:
    weights = np.ones(16)
    weights[12:] = 0.0
    ax = band_figure(_cdse_panel(weights)).axes[0]
    assert _legend(ax) == ["model", "reference", "reference (weight 0)"]
    assert ax.get_ylabel() == "E (eV)"
    colours = [tuple(c.get_facecolor()[0][:3]) for c in ax.collections]
    assert colours.count(matplotlib.colors.to_rgb("0.65")) == 4


def test_labels_define_discontinuities_and_several_systems_make_panels() -> None:
    t = np.linspace(0.0, 1.0, 5)[:, None]
    x_point, k_point = np.array([0.5, 0, 0.5]), np.array([0.375, 0.375, 0.75])
    kpoints = np.vstack([t * x_point, (1 - t) * k_point])  # Γ → X | K → Γ
    cell = read_system(CDSE / "system_0.par").lattice
    labels = {0: "G", 4: "X", 5: "K", 9: "G"}
    layout = path_layout(10, kpoints=kpoints, cell=cell, labels=labels)
    assert [tick.label for tick in layout.ticks] == ["Γ", "X|K", "Γ"]
    assert layout.x[4] == layout.x[5]  # no distance across the jump
    assert layout.segments == (slice(0, 5), slice(5, 10))
    detected = path_layout(10, kpoints=kpoints, cell=cell)  # corners named from ASE's points
    assert [tick.label for tick in detected.ticks] == ["Γ", "X|K", "Γ"]
    bands = np.linspace(-1, 1, 10)[:, None] * np.ones((1, 4))
    figure = band_figure(
        [
            BandPanel(model=bands, kpoints=kpoints, cell=cell, labels=labels, name="A"),
            BandPanel(reference=bands, name="B"),
        ],
        energy_reference=0.5,
    )
    assert [ax.get_title() for ax in figure.axes] == ["A", "B"]
    assert "0.5 eV" in figure.axes[0].get_ylabel()
    assert figure.axes[1].get_xlabel() == "k-point index"
    with pytest.raises(ValueError, match="n_valence"):
        band_figure(BandPanel(model=bands), energy_reference="vbm")


def test_plot_bands_cli_with_and_without_bundle(tmp_path: Path) -> None:
    reference = CDSE / "expBandStruct_0.par"
    output = tmp_path / "bands.png"
    argv = [str(reference), "--bundle", str(CDSE), "--align", "vbm", "--valence-bands", "8"]
    assert plot_bands([*argv, "-o", str(output)]) == 0
    assert output.stat().st_size > 0
    assert plot_bands([str(reference), "--reference", str(reference), "-o", str(output)]) == 2
    assert plot_bands([*argv, "-o", str(output), "--force", "--window", "-3", "3"]) == 0
    assert plot_bands([str(reference), "--align", "vbm", "-o", str(tmp_path / "x.png")]) == 2
    references = ["--bundle", str(TESTS / "data" / "InGaAsP"), "--index", "0", "3"]
    assert (
        plot_bands(
            [
                *references,
                "--align",
                "vbm",
                "--valence-bands",
                "8",
                "-o",
                str(tmp_path / "ingaasp.png"),
            ]
        )
        == 0
    )
    bad = [*references, "--align", "vbm", "--valence-bands", "99", "-o", str(tmp_path / "y.png")]
    assert plot_bands(bad) == 2


def test_plot_terms_adds_up_to_the_bands(tmp_path: Path) -> None:
    bundle_folder = _thinned(CDSE, tmp_path / "bundle", 5)
    assert plot_terms([str(bundle_folder), "--max-ke", "3", "-o", str(tmp_path)]) == 0
    parts = {
        t: read_reference_bands(tmp_path / f"{t}_sys0.dat", 8)[1]
        for t in ("E", "T", "Vloc", "VSO", "VNL")
    }
    np.testing.assert_allclose(parts["T"] + parts["Vloc"], parts["E"], atol=2e-5)  # %.5f files
    assert np.abs(parts["VSO"]).max() == 0 and np.abs(parts["VNL"]).max() == 0  # no SOC
    assert (parts["T"] > 0).all()
    bundle = load_system_bundle(bundle_folder, 0, max_ke=3.0)
    with torch.no_grad():
        bands = band_structure(bundle)[0].numpy()
    np.testing.assert_allclose(parts["E"], bands[:, ::2], atol=1e-5)
    for name in ("terms_sys0.png", "vq.png", "vq_qSpace_pot.dat"):
        assert (tmp_path / name).stat().st_size > 0


def test_plot_terms_with_spin_orbit(tmp_path: Path) -> None:
    bundle_folder = _thinned(CSPBI3, tmp_path / "bundle", 5)
    argv = [str(bundle_folder), "--spin-orbit", "--max-ke", "1.0", "--states", "8"]
    assert plot_terms([*argv, "-o", str(tmp_path)]) == 0
    parts = {
        t: read_reference_bands(tmp_path / f"{t}_sys0.dat", 8)[1]
        for t in ("E", "T", "Vloc", "VSO", "VNL")
    }
    total = parts["T"] + parts["Vloc"] + parts["VSO"] + parts["VNL"]
    np.testing.assert_allclose(total, parts["E"], atol=4e-5)
    assert np.abs(parts["VSO"]).max() > 1e-3 and np.abs(parts["VNL"]).max() > 1e-3

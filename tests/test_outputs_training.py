"""Band figures, per-band reordering plots and movies of one tiny training run, checked on the
matplotlib objects handed to `save_figure` and on the numbers they draw."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import matplotlib.colors
import numpy as np
import pytest
from training_support import cost_rows, run_app, small_bundle

from dpp.io import load_bundle
from dpp.outputs import plots
from dpp.outputs.band_plot import path_distance

N_BANDS = 8
VBM_COLUMN = 7  # zb CdSe: 4 spatial valence bands, spin-doubled
LABELS = {0: "L", 4: "Λ"}
RUN = [
    "trainer.max_epochs=2",
    "trainer.check_val_every_n_epoch=2",
    "init.pre_adjust_moves=1",
    "loss.reorder=smooth",
    "outputs.movies=true",
]


def labelled_bundle(tmp: Path) -> Path:
    """small_bundle with 8 bands, idxVB and `# label` comments on the k-point rows."""
    folder = small_bundle(tmp, n_k=5, max_ke=1.5)
    (folder / "input_0.par").write_text(f"maxKE = 1.5\nnBands = {N_BANDS}\nidxVB = {VBM_COLUMN}\n")
    table = folder / "expBandStruct_0.par"
    rows = [" ".join(r.split()[: N_BANDS + 1]) for r in table.read_text().splitlines()]
    table.write_text("\n".join(rows) + "\n")
    weights = folder / "bandWeights_0.par"
    weights.write_text("\n".join(weights.read_text().split()[:N_BANDS]) + "\n")
    kpoints = folder / "kpoints_0.par"
    rows = kpoints.read_text().splitlines()
    for row, label in LABELS.items():
        rows[row] += f"   # {label}"
    kpoints.write_text("\n".join(rows) + "\n")
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """(bundle, run folder, {file name: Figure}) of a 2-epoch run (validation at epoch 2)
    with a pre-adjust move, smooth reordering and movies."""
    tmp = tmp_path_factory.mktemp("outputs")
    bundle = labelled_bundle(tmp)
    figures: dict = {}
    original = plots.save_figure

    def capture(fig, path):
        figures[Path(path).name] = fig
        return original(fig, path)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plots, "save_figure", capture)
        run_app(tmp / "run", [f"data.bundle={bundle}", *RUN])
    return bundle, tmp / "run", figures


def _legend(ax) -> list[str]:
    return [text.get_text() for text in ax.get_legend().get_texts()]


def _band_lines(ax) -> list:
    """Lines with one point per k-point (not the tick or zero lines)."""
    return [line for line in ax.get_lines() if len(line.get_xdata()) > 2]


def _columns(path: Path) -> np.ndarray:
    return np.loadtxt(path)[:, 1:]


def test_band_figure_of_a_training_run(trained) -> None:
    bundle_dir, run, figures = trained
    system = load_bundle(bundle_dir).systems[0]
    assert system.kpoint_labels == LABELS
    for prefix, title in (
        ("oldFunc", "analytic form (init_<S>Params.par)"),
        ("initZunger", "initial model"),
        ("preEpoch_1", "pre-adjust move 1"),
        ("epoch_2", "epoch 2"),
        ("best", "best state"),
        ("final", "final state"),
    ):
        figure = figures[f"{prefix}_plotBS.png"]
        (ax,) = figure.axes
        assert figure.get_suptitle() == title
        assert ax.get_title() == "CdSe (system 0)"
        assert ax.get_xlabel() == "path distance |Δk| (1/Bohr)"
        assert ax.get_ylabel() == "E − E$_\\mathrm{VBM}$(reference) (eV)"
        assert [t.get_text() for t in ax.get_xticklabels()] == ["L", "Λ"]
        assert _legend(ax) == ["model", "reference (area ∝ weight)"]
    ax = figures["epoch_2_plotBS.png"].axes[0]
    x = path_distance(system.kpoints, system.crystal.scale * system.crystal.cell)
    assert np.allclose(ax.get_xticks(), [x[0], x[4]])
    vbm = system.ref_bands[:, VBM_COLUMN].max()
    drawn = np.column_stack([line.get_ydata() for line in _band_lines(ax)])
    assert all(np.allclose(line.get_xdata(), x) for line in _band_lines(ax))
    model = _columns(run / "epoch_2_BS_sys0.dat")
    assert np.allclose(drawn, model - vbm, atol=1e-5)  # band files: 5 decimals
    points = np.column_stack([c.get_offsets()[:, 1] for c in ax.collections])
    assert np.allclose(points, system.ref_bands - vbm)
    sizes = [c.get_sizes()[0] for c in ax.collections]  # area grows with the weight
    assert sizes[0] < sizes[-1] and system.band_weights[0] < system.band_weights[-1]


def test_validation_writes_band_by_band_reordering_plots(trained) -> None:
    bundle_dir, run, figures = trained
    system = load_bundle(bundle_dir).systems[0]
    vbm = system.ref_bands[:, VBM_COLUMN].max()
    reordered = _columns(run / "epoch_2_BS_sys0.dat")
    ascending = np.empty_like(reordered)
    for band in range(N_BANDS):
        figure = figures[f"epoch_2_newBand_{band}.png"]
        (ax,) = figure.axes
        assert figure.get_suptitle() == f"epoch 2: band {band}"
        assert ax.get_title() == f"CdSe (system 0), band {band}"
        assert _legend(ax) == ["model, reordered", "model, before reordering", "reference"]
        after, before = _band_lines(ax)
        assert before.get_linestyle() == "--"
        assert np.allclose(after.get_ydata(), reordered[:, band] - vbm, atol=1e-4)
        ascending[:, band] = before.get_ydata() + vbm
        (points,) = ax.collections
        assert np.allclose(points.get_offsets()[:, 1], system.ref_bands[:, band] - vbm)
    assert np.all(np.diff(ascending, axis=1) >= -1e-9)  # before: ascending at every k
    assert np.allclose(np.sort(reordered, axis=1), ascending, atol=1e-4)  # a permutation
    assert not any(name.startswith("epoch_1_") for name in figures)  # no validation there


def test_movies_hold_every_frame_in_order(trained) -> None:
    _, run, figures = trained
    assert [x for x, _ in cost_rows(run / "final_validation_cost.dat")] == [2]
    frames = {
        "BS": ["initZunger", "preEpoch_1", "epoch_2"],
        "PP": ["initZunger", "epoch_2"],  # pre-adjust moves write no potentials
    }
    for kind, names in frames.items():
        sizes = {tuple(figures[f"{n}_plot{kind}.png"].get_size_inches()) for n in names}
        reader = imageio.get_reader(run / f"movie_{kind}.mp4")
        movie = [frame for frame in reader]
        reader.close()
        assert len(movie) == len(names)
        assert len({frame.shape for frame in movie}) == 1
        height, width, depth = movie[0].shape
        assert depth == 3 and height % 16 == 0 and width % 16 == 0
        (size,) = sizes
        assert width >= size[0] * 110 and height >= size[1] * 110


def test_zero_weight_bands_are_grey(tmp_path: Path) -> None:
    """Bands of weight 0: grey model lines and grey reference points."""
    from dpp.outputs.band_panels import bands_figure

    folder = labelled_bundle(tmp_path)
    (folder / "bandWeights_0.par").write_text("1\n" * 6 + "0\n0\n")
    system = load_bundle(folder).systems[0]
    ax = bands_figure([system], [system.ref_bands + 0.1], "t").axes[0]
    grey = matplotlib.colors.to_rgb("0.65")
    lines = _band_lines(ax)
    assert [matplotlib.colors.to_rgb(line.get_color()) == grey for line in lines].count(True) == 2
    colours = [tuple(c.get_facecolor()[0][:3]) for c in ax.collections]
    assert colours.count(grey) == 2
    assert _legend(ax) == ["model", "reference", "reference (weight 0)"]

"""Band windows and exclusions: smooth roll-off, degenerate groups, excluded bands."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from bundle_support import EXAMPLES, shrink_bundle
from training_support import cost_rows, run_app, small_bundle

from dpp.errors import InputError, SettingError
from dpp.fitting import BandTerm, LossSettings
from dpp.fitting.windows import BandWindow, system_window, window_factors
from dpp.io import load_bundle
from dpp.physics import build_hamiltonian

GAMMA = 20  # k-index of Γ on the zb_CdSe path


@pytest.fixture(scope="module")
def cdse():
    bundle = shrink_bundle(load_bundle(EXAMPLES / "zb_CdSe"), 3.0, n_kpoints=24)
    system = replace(bundle.systems[0], settings=replace(bundle.systems[0].settings, idx_vb=7))
    return replace(bundle, systems=[system])


def test_factors_follow_the_reference_with_a_smooth_edge() -> None:
    reference = np.array([[-1.0, 0.0, 0.5, 3.0], [-2.0, -0.2, 1.0, 4.0]])
    window = BandWindow(low=-1.5, high=2.0, edge="vbm", smoothness=0.05)
    factors = window_factors(reference, window, idx_vb=1)  # VBM = 0.0 (max over k)
    expected = np.array([[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, 1.0, 0.0]])
    np.testing.assert_allclose(factors, expected, atol=1e-4)
    absolute = replace(window, edge="absolute")
    np.testing.assert_allclose(window_factors(np.array([[-1.5, 2.0]]), absolute), [[0.5, 0.5]])


def test_a_band_crossing_the_edge_gives_a_continuous_loss(cdse) -> None:
    """Sweeping one reference band across the window edge changes the loss continuously;
    the same sweep with a (nearly) hard edge jumps."""
    hamiltonian = build_hamiltonian(cdse)
    k = torch.arange(cdse.systems[0].n_kpoints)
    with torch.no_grad():
        bands = hamiltonian.bands(0, k)
    vbm = float(np.max(cdse.systems[0].ref_bands[:, 7]))

    def loss(shift: float, smoothness: float) -> float:
        reference = cdse.systems[0].ref_bands.copy()
        reference[:, 9] = vbm + 3.0 + shift  # band 9 flat, swept across the upper edge
        system = replace(cdse.systems[0], ref_bands=reference)
        settings = LossSettings(window_low=-3.0, window_high=3.0, window_smoothness=smoothness)
        term = BandTerm([system], settings)
        return float(term.value(hamiltonian, 0, k, bands))

    shifts = np.linspace(-0.3, 0.3, 121)
    smooth = np.array([loss(s, 0.1) for s in shifts])
    hard = np.array([loss(s, 1e-6) for s in shifts])
    assert np.max(np.abs(np.diff(smooth))) < 0.05 * np.ptp(smooth)
    assert np.max(np.abs(np.diff(hard))) > 0.3 * np.ptp(hard)


def test_degenerate_groups_move_together(cdse) -> None:
    """A Γ triplet (six spin-doubled bands within 0.5 meV) sitting on a window edge: every
    member gets the same factor, so the multiplet is in or out as a whole."""
    reference = cdse.systems[0].ref_bands.copy()
    reference[GAMMA, 2:8] = -6.31 + np.array([0.0, 0.0, 2e-4, 2e-4, 5e-4, 5e-4])
    window = BandWindow(low=-6.31 - reference[:, 7].max(), smoothness=0.2)
    factors = window_factors(reference, window, idx_vb=7)
    assert 0.3 < factors[GAMMA, 2] < 0.7  # at the edge, half in
    assert np.ptp(factors[GAMMA, 2:8]) == 0.0


def test_excluded_bands_do_not_enter_the_loss(cdse) -> None:
    hamiltonian = build_hamiltonian(cdse, train_slots=(0, 1, 2, 3))
    k = torch.arange(cdse.systems[0].n_kpoints)
    settings = LossSettings(exclude_bands=(0, 1, 14, 15))
    moved = cdse.systems[0].ref_bands.copy()
    moved[:, [0, 1, 14, 15]] += 5.0
    values = []
    for reference in (cdse.systems[0].ref_bands, moved):
        system = replace(cdse.systems[0], ref_bands=reference)
        values.append(float(BandTerm([system], settings).value(hamiltonian, 0, k).detach()))
    assert values[0] == pytest.approx(values[1], rel=1e-12)
    full = BandTerm(cdse.systems, LossSettings()).value(hamiltonian, 0, k)
    assert float(full.detach()) > values[0]


def test_window_relative_to_the_vbm_needs_idxvb() -> None:
    with pytest.raises(SettingError, match="idxVB"):
        window_factors(np.zeros((2, 4)), BandWindow(low=-1.0))
    with pytest.raises(SettingError, match="window_smoothness"):
        BandWindow(low=-1.0, smoothness=0.0)


@pytest.mark.slow
def test_window_in_a_training_run(tmp_path: Path) -> None:
    bundle = small_bundle(tmp_path, max_num_epochs=2, init_Zunger_num_epochs=0)
    with (bundle / "input_0.par").open("a") as handle:
        handle.write("idxVB = 7\n")
    window = ["loss.window_low=-4", "loss.window_high=2", "loss.exclude_bands=[0,1]"]
    finals = [
        run_app(tmp_path / "full", [f"data.bundle={bundle}"]),
        run_app(tmp_path / "window", [f"data.bundle={bundle}", *window]),
    ]
    assert all(0 < final < math.inf for final in finals)
    # the same initial network: the window drops bands from the first epoch's loss
    full, windowed = (
        cost_rows(tmp_path / name / "final_training_cost.dat")[0][1] for name in ("full", "window")
    )
    assert 0 < windowed < full


def test_input_file_window_wins_and_errors_name_it(tmp_path: Path) -> None:
    bundle = small_bundle(tmp_path)
    with (bundle / "input_0.par").open("a") as handle:
        handle.write("idxVB = 7\nfit_window_high = 1.0\nexclude_bands = 0 1\n")
    system = load_bundle(bundle).systems[0]
    window = system_window(BandWindow(low=-3.0, high=5.0), system)
    assert (window.low, window.high, window.exclude) == (-3.0, 1.0, (0, 1))
    with (bundle / "input_0.par").open("a") as handle:
        handle.write("fit_window_low = 2.0\n")
    system = load_bundle(bundle).systems[0]
    with pytest.raises(InputError, match=r"input_0.par, key 'fit_window_low'.*empty window"):
        BandTerm([system], LossSettings())


def test_missing_edge_index_names_the_system_and_its_key(tmp_path: Path) -> None:
    """A window relative to the VBM/CBM without idxVB/idxCB: an InputError on input_X.par,
    naming fit_window_edge when input_X.par set the edge itself."""
    bundle = small_bundle(tmp_path)
    system = load_bundle(bundle).systems[0]
    with pytest.raises(InputError) as error:
        BandTerm([system], LossSettings(window_low=-3.0))
    assert str(error.value) == (
        f"{system.files['input']}: band window of system 0: a window relative to the VBM "
        "needs idxVB in input_X.par; expected idxVB = <band>, found None"
    )
    with (bundle / "input_0.par").open("a") as handle:
        handle.write("fit_window_edge = cbm\nfit_window_high = 2.0\n")
    system = load_bundle(bundle).systems[0]
    with pytest.raises(InputError) as error:
        BandTerm([system], LossSettings())
    assert str(error.value) == (
        f"{system.files['input']}, key 'fit_window_edge': band window of system 0: a window "
        "relative to the CBM needs idxCB in input_X.par; expected idxCB = <band>, found None"
    )
    unbounded = replace(system, settings=replace(system.settings, window_high=None))
    assert BandTerm([unbounded], LossSettings()).targets[0].window is None

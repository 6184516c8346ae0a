"""The numbers people read: the loss (eV², a weighted sum) comes with the weighted RMS band
error behind it (meV) in the band term, the final result file and the sweep summary."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch
from bundle_support import EXAMPLES

from dpp.fitting.bands import BandErrors, BandTerm
from dpp.fitting.settings import LossSettings
from dpp.io import load_bundle
from dpp.io.writers import write_final_result
from dpp.runs.sweep import write_summary


@pytest.fixture(scope="module")
def cdse():
    return load_bundle(EXAMPLES / "zb_CdSe")


def test_band_rms_of_a_uniform_error_is_that_error_in_mev(cdse):
    term = BandTerm(cdse.systems, LossSettings())
    reference = torch.as_tensor(cdse.systems[0].ref_bands)
    k = torch.arange(reference.shape[0])
    loss = term.value(None, 0, k, bands=reference + 0.012)  # 12 meV everywhere
    weights = term.targets[0].total_weight()
    assert float(loss) == pytest.approx(0.012**2 * weights, rel=1e-12)
    assert term.rms_mev([float(loss)]) == pytest.approx(12.0, rel=1e-9)


def test_band_rms_does_not_grow_with_the_number_of_weighted_points(cdse):
    """The loss doubles when every weight doubles; the RMS it reports does not."""
    term = BandTerm(cdse.systems, LossSettings())
    before = term.targets[0].total_weight()
    term.targets[0].kweights = 2 * term.targets[0].kweights
    assert term.targets[0].total_weight() == pytest.approx(2 * before)
    assert term.rms_mev([0.5 * 2 * before]) == pytest.approx(1000 * math.sqrt(0.5))


def test_band_errors_summary_is_in_mev():
    errors = BandErrors([0.001, 0.004], 0.003, {"VBM": 0.0025})
    assert errors.summary() == ("RMS 3 meV, worst band 1 (4 meV), VBM max error 2.5 meV")


def test_sweep_summary_lists_loss_and_band_rms_with_units(tmp_path: Path):
    for job, (lr, loss, rms) in enumerate([(1e-2, 0.5, 40.0), (1e-3, 0.02, 8.5)]):
        run = tmp_path / str(job)
        run.mkdir()
        write_final_result(run, loss, rms)
        result = {
            "job": job,
            "overrides": [f"learning_rate={lr}", "seed=0"],
            "status": "COMPLETED",
            "final_loss": loss,
            "band_rms_meV": json.loads((run / "final_result.json").read_text())["band_rms_meV"],
        }
        (run / "job_result.json").write_text(json.dumps(result))
    with write_summary(tmp_path).open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["job"] for row in rows] == ["1", "0"]  # best first
    assert rows[0]["final_loss_eV2"] == "0.02" and rows[0]["band_rms_meV"] == "8.5"
    table = (tmp_path / "sweep_summary.md").read_text()
    assert table.startswith("| job | learning_rate | final_loss_eV2 | band_rms_meV | status |")


def test_final_result_writes_nan_as_null(tmp_path: Path):
    write_final_result(tmp_path, 1.5, math.nan)
    assert json.loads((tmp_path / "final_result.json").read_text()) == {
        "final_loss_eV2": 1.5,
        "band_rms_meV": None,
    }

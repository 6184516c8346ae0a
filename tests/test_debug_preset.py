"""debug=fast_dev_run is a quick setup check: few k-points, a short pre-fit, its own folder."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from bundle_support import EXAMPLES
from omegaconf import OmegaConf

from dpp.app.compose import compose_config, prepare
from dpp.errors import InputError
from dpp.io import load_bundle
from dpp.io.bundle import first_kpoints


def test_first_kpoints_keeps_the_start_of_every_table():
    bundle = load_bundle(EXAMPLES / "zb_CdSe")
    system = bundle.systems[0]
    short = first_kpoints(bundle, 8).systems[0]
    assert short.n_kpoints == 8 and short.ref_bands.shape == (8, system.n_bands)
    np.testing.assert_array_equal(short.kpoints, system.kpoints[:8])
    np.testing.assert_array_equal(short.ref_bands, system.ref_bands[:8])
    np.testing.assert_array_equal(short.kweights, system.kweights[:8])
    assert first_kpoints(bundle, 10_000).systems[0] is system


def test_first_kpoints_refuses_observables_that_need_other_kpoints():
    bundle = load_bundle(EXAMPLES / "zb_CdSe")
    system = replace(bundle.systems[0], defpot_targets=(object(),))
    with pytest.raises(InputError, match="max_kpoints"):
        first_kpoints(replace(bundle, systems=[system]), 4)


def test_fast_dev_run_writes_apart_and_skips_the_long_parts():
    overrides = ["debug=fast_dev_run"]
    prepare("train", overrides)
    cfg = compose_config("train", overrides)
    folder = OmegaConf.select(cfg, "hydra.run.dir", throw_on_resolution_failure=False)
    assert folder.startswith("debug/") and "outputs" not in folder
    assert cfg.data.max_kpoints == 2 and cfg.trainer.fast_dev_run
    assert cfg.init.num_epochs == 20 and cfg.init.pre_adjust_moves == 0
    assert not cfg.outputs.converge_plots and cfg.outputs.n_qgrid < 4096

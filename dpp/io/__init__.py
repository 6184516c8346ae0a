"""Input layer: read and validate input bundles, translate NN_config.par, write output files."""

from dpp.io.bundle import load_bundle
from dpp.io.nnconfig import read_nn_config, translate

__all__ = ["load_bundle", "read_nn_config", "translate"]

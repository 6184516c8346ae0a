"""NN_config.par, an input format translated once into the Hydra configuration (conf/)."""

from dpp.io.nnconfig.reader import NNConfigFile, read_nn_config
from dpp.io.nnconfig.schema import KEYS, OPTIMIZER_NAMES, PPMODEL_CLASSES
from dpp.io.nnconfig.translate import Translation, nn_key_of, translate
from dpp.io.nnconfig.writer import (
    default_nn_config,
    defaults_summary,
    spin_orbit_of,
    with_n_system,
)

__all__ = [
    "KEYS",
    "OPTIMIZER_NAMES",
    "PPMODEL_CLASSES",
    "NNConfigFile",
    "Translation",
    "default_nn_config",
    "defaults_summary",
    "nn_key_of",
    "read_nn_config",
    "spin_orbit_of",
    "translate",
    "with_n_system",
]

"""NN_config.par, an input format translated once into the Hydra configuration (conf/)."""

from dpp.io.nnconfig.reader import NNConfigFile, read_nn_config
from dpp.io.nnconfig.schema import KEYS, OPTIMIZER_NAMES, PPMODEL_CLASSES
from dpp.io.nnconfig.translate import Translation, nn_key_of, translate

__all__ = [
    "KEYS",
    "OPTIMIZER_NAMES",
    "PPMODEL_CLASSES",
    "NNConfigFile",
    "Translation",
    "nn_key_of",
    "read_nn_config",
    "translate",
]

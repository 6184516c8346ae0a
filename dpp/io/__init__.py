"""Input layer: read and validate input bundles, write output files."""

from dpp.io.bundle import load_bundle
from dpp.io.config import NNConfig

__all__ = ["NNConfig", "load_bundle"]

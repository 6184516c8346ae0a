"""dpp: neural-network semi-empirical pseudopotentials fitted to reference band structures."""

__version__ = "0.1.0"

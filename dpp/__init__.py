"""dpp: neural-network semi-empirical pseudopotentials fitted to reference band structures."""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """`dpp.load_run`, imported on first use (`import dpp` stays light)."""
    if name == "load_run":
        from dpp.run import load_run

        return load_run
    raise AttributeError(f"module 'dpp' has no attribute {name!r}")

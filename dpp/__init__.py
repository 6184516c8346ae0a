"""dpp: neural-network semi-empirical pseudopotentials fitted to reference band structures."""

__version__ = "0.1.0"


def __getattr__(name: str):  # noqa: ANN202 - lazy export keeps `import dpp` light
    if name == "load_run":
        from dpp.run import load_run

        return load_run
    raise AttributeError(f"module 'dpp' has no attribute {name!r}")

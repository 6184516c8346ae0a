"""What a finished run folder holds: which state (best or final) to use, and its tables."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from dpp.errors import InputError
from dpp.io.params import read_species_params
from dpp.io.records import Bundle

STATES = ("best", "final")


def run_state(run: Path, preferred: str = "best") -> tuple[Path | None, str]:
    """The state of an earlier run to use: `preferred` (best or final), else the other
    (network file or None, and the prefix of its parameter tables)."""
    if preferred not in STATES:
        raise InputError(
            run, "unknown run state", key="state", expected=" or ".join(STATES), found=preferred
        )
    for which in (preferred, "final" if preferred == "best" else "best"):
        if any(run.glob(f"{which}_*Params.dat")) or (run / f"{which}_PPmodel.pth").is_file():
            network = run / f"{which}_PPmodel.pth"
            return (network if network.is_file() else None), which
    raise InputError(
        run,
        "no results to evaluate",
        key="run",
        expected="best_* or final_* files of a run",
        found="none",
    )


def with_run_tables(bundle: Bundle, run: Path, which: str) -> Bundle:
    """The bundle with a0..a8 of the run's `<which>_<S>Params.dat` when present."""
    files = [run / f"{which}_{s}Params.dat" for s in bundle.species]
    if not all(f.is_file() for f in files):
        return bundle
    return replace(bundle, pp_params=np.array([read_species_params(f) for f in files]))

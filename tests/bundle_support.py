"""Shared test data paths and bundle helpers (all data lives inside the repository)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from dpp.io.records import Bundle

DATA = Path(__file__).parent / "data"
EXAMPLES = Path(__file__).parent.parent / "dpp" / "data" / "examples"


def shrink_bundle(bundle: Bundle, max_ke: float, n_kpoints: int | None = None) -> Bundle:
    """A copy of `bundle` with a lower cutoff (Hartree) and only the first k-points."""
    keep = slice(None) if n_kpoints is None else slice(0, n_kpoints)
    systems = [
        replace(
            system,
            settings=replace(system.settings, max_ke=max_ke),
            kpoints=system.kpoints[keep],
            kweights=system.kweights[keep],
            ref_path=None if system.ref_path is None else system.ref_path[keep],
            ref_bands=None if system.ref_bands is None else system.ref_bands[keep],
            order_matrix=None if system.order_matrix is None else system.order_matrix[keep],
        )
        for system in bundle.systems
    ]
    return replace(bundle, systems=systems)

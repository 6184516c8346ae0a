"""The typed settings of a run, every section of the configuration that is not Lightning's."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from dpp.fitting.prefit import PrefitSettings
from dpp.fitting.settings import LossSettings
from dpp.io.data import DataSettings
from dpp.io.records import Bundle
from dpp.models import ModelSettings
from dpp.outputs.reporter import OutputSettings
from dpp.physics import PhysicsOptions
from dpp.physics.hamiltonian import PseudopotentialHamiltonian
from dpp.runs import fingerprint


@dataclass(frozen=True)
class RunSettings:
    """The typed settings of a run (every section of the config that is not Lightning's)."""

    seed: int
    threads: int  # 0 = automatic (dpp.threads)
    data: DataSettings
    model: ModelSettings
    physics: PhysicsOptions
    loss: LossSettings
    init: PrefitSettings
    outputs: OutputSettings

    def identity(self, bundle: Bundle, hamiltonian: PseudopotentialHamiltonian) -> dict[str, Any]:
        """The run's fingerprint (dpp.runs.fingerprint): bundle, bases and model settings."""
        bases = [geometry.n_basis for geometry in hamiltonian.geometries]
        return fingerprint.fingerprint(bundle, bases, self.model, self.physics, self.data)


def dpp_version() -> str:
    """The installed dpp's version ("unknown" outside an installation)."""
    try:
        return version("dpp")
    except PackageNotFoundError:
        return "unknown"

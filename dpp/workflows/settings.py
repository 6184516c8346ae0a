"""The typed settings of a run, every section of the configuration that is not Lightning's."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from dpp.fitting.prefit import PrefitSettings
from dpp.fitting.settings import LossSettings
from dpp.io.data import DataSettings
from dpp.models import ModelSettings
from dpp.outputs.reporter import OutputSettings
from dpp.physics import PhysicsOptions


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


def dpp_version() -> str:
    """The installed dpp's version ("unknown" outside an installation)."""
    try:
        return version("dpp")
    except PackageNotFoundError:
        return "unknown"

"""What the run's callbacks share: the output writer, chosen by the application."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dpp.outputs.reporter import Reporter


@dataclass
class RunContext:
    """The run folder and its writer; figures go to the logger at step = epoch."""

    run_dir: Path
    reporter: Reporter


class RunAware:
    """Mixin of callbacks that write run files: the application attaches the context after
    instantiating them from the config."""

    context: RunContext | None = None

    def attach(self, context: RunContext) -> None:
        self.context = context

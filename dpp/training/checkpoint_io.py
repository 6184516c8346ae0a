"""Lightning checkpoints written atomically and read safely."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning_fabric.plugins import TorchCheckpointIO

from dpp.io.writers import save_torch_atomic
from dpp.models.checkpoint import safe_torch_load


class SafeCheckpointIO(TorchCheckpointIO):
    """Resume checkpoints (`checkpoints/last.ckpt`) written to a temporary file and moved
    into place, and always loaded with `weights_only=True` whatever the environment
    (TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD cannot override an explicit argument), so a crafted
    file cannot run code; an unreadable file is one InputError."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None
    ) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        save_torch_atomic(checkpoint, path)

    def load_checkpoint(
        self, path: str | Path, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        return safe_torch_load(path, what="a Lightning checkpoint saved by dpp")

"""Loading original and dpp PPmodel checkpoints (bundle-format.md §11.1)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from dpp.errors import InputError


def _shape(t: torch.Tensor) -> str:
    return str(tuple(t.shape))


def load_checkpoint(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a state_dict file strictly into ``model`` and return the model.

    Loads on the CPU (some originals were saved on CUDA) with ``weights_only=True``;
    floating tensors (float32 in some originals) are cast to the model's dtype. Raises
    InputError naming the file and the missing, unexpected or mis-shaped keys.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "checkpoint file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unreadable file becomes one clear message
        raise InputError(path, f"cannot read checkpoint ({type(exc).__name__})") from exc
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise InputError(
            path,
            "not a model state_dict",
            expected="a mapping of parameter names to tensors",
            found=type(state).__name__,
        )
    target = model.state_dict()
    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    if missing or unexpected:
        lists = [
            f"{what} keys {keys}"
            for what, keys in (("missing", missing), ("unexpected", unexpected))
            if keys
        ]
        raise InputError(
            path,
            "checkpoint parameter names do not match the PPmodel: " + "; ".join(lists),
            key=(missing or unexpected)[0],
            hint="check PPmodel and hiddenLayers in NN_config.par",
        )
    for key, ref in target.items():
        if state[key].shape != ref.shape:
            raise InputError(
                path,
                "checkpoint tensor shape does not match the PPmodel",
                key=key,
                expected=_shape(ref),
                found=_shape(state[key]),
                hint="check hiddenLayers and the number of species",
            )
    cast = {k: v.to(target[k].dtype) if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(cast, strict=True)
    return model

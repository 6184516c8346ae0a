"""Loading original and dpp PPmodel checkpoints (bundle-format.md §11.1)."""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dpp.errors import InputError

_UNSAFE = re.compile(r"Unsupported global: GLOBAL (\S+)")
CLASS_KEY = "dpp_model_class"
"""Entry of a saved state_dict's root metadata naming the catalogue class (files stay plain
state_dicts that the original code loads too)."""


def _shape(t: torch.Tensor) -> str:
    return str(tuple(t.shape))


def safe_torch_load(path: str | Path, *, what: str) -> Any:
    """`torch.load` on the CPU with `weights_only=True` (never code from the file); an
    unreadable, truncated or non-torch file, or one holding objects other than tensors and
    plain containers, is one InputError saying what was expected and what was found."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found", expected=what, found="no such file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign bytes
        refused = _UNSAFE.search(str(exc)) if isinstance(exc, pickle.UnpicklingError) else None
        if refused is not None:
            found = f"a pickle that would import {refused.group(1)} (only tensors are loaded)"
        elif path.stat().st_size == 0:
            found = "an empty file"
        else:
            found = f"a truncated or non-torch file ({type(exc).__name__})"
        raise InputError(path, "cannot read checkpoint", expected=what, found=found) from None


def model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state_dict, with its catalogue class recorded in the root metadata."""
    state = model.state_dict()
    name = getattr(model, "catalog_name", None)
    if name is not None:
        state._metadata.setdefault("", {})[CLASS_KEY] = name  # type: ignore[attr-defined]
    return state


def check_finite_state(state: Mapping[str, torch.Tensor], path: str | Path) -> None:
    """Refuse a network state with NaN or infinite parameters (it evaluates to NaN bands)."""
    for key, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise InputError(
                path,
                "checkpoint holds NaN or infinite values",
                key=key,
                expected="finite network parameters",
                found=f"{int((~torch.isfinite(tensor)).sum())} non-finite of {tensor.numel()}",
            )


def load_checkpoint(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a state_dict file strictly into ``model`` and return the model.

    Loads on the CPU (some originals were saved on CUDA) with ``weights_only=True``;
    floating tensors (float32 in some originals) are cast to the model's dtype. Raises
    InputError naming the file and the missing, unexpected, mis-shaped or non-finite keys.
    """
    state = safe_torch_load(
        path, what="a torch checkpoint saved by dpp or DeepPseudopot (a network state_dict)"
    )
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise InputError(
            path,
            "not a model state_dict",
            expected="a mapping of parameter names to tensors",
            found=type(state).__name__,
        )
    saved_class = getattr(state, "_metadata", {}).get("", {}).get(CLASS_KEY)
    wanted_class = getattr(model, "catalog_name", None)
    if saved_class is not None and wanted_class is not None and saved_class != wanted_class:
        raise InputError(
            path,
            "checkpoint of another model class",
            key="model.name",
            expected=wanted_class,
            found=saved_class,
            hint="set model.name to the class the checkpoint was trained with",
        )
    target = model.state_dict()
    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    if missing or unexpected:
        lists = [
            f"{len(keys)} {what} keys ({', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''})"
            for what, keys in (("missing", missing), ("unexpected", unexpected))
            if keys
        ]
        raise InputError(
            path,
            "checkpoint parameter names do not match the model",
            key=(missing or unexpected)[0],
            expected=f"the {len(target)} tensors of {wanted_class or 'the model'}",
            found="; ".join(lists),
            hint="check model.name and model.hidden_layers",
        )
    for key, ref in target.items():
        if state[key].shape != ref.shape:
            raise InputError(
                path,
                "checkpoint tensor shape does not match the model",
                key=key,
                expected=_shape(ref),
                found=_shape(state[key]),
                hint="check model.hidden_layers and the number of species",
            )
    check_finite_state(state, path)
    cast = {k: v.to(target[k].dtype) if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(cast, strict=True)
    return model


LIGHTNING_PREFIX = "hamiltonian.model."
"""Prefix of the network's tensors in a Lightning checkpoint of dpp."""


def load_network(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a .pth state_dict (original or dpp), or the network part of a Lightning .ckpt of
    dpp, strictly into `model` (float64) and return it."""
    path = Path(path)
    if path.suffix != ".ckpt":
        return load_checkpoint(model, path)
    saved = safe_torch_load(path, what="a Lightning checkpoint saved by dpp")
    state = saved.get("state_dict", {}) if isinstance(saved, dict) else {}
    network = {
        k.removeprefix(LIGHTNING_PREFIX): v
        for k, v in state.items()
        if k.startswith(LIGHTNING_PREFIX)
    }
    if not network:
        raise InputError(
            path,
            "no network in the checkpoint",
            expected="a dpp training .ckpt",
            found=f"{len(state)} other tensors",
        )
    check_finite_state(network, path)
    model.load_state_dict(
        {k: v.to(torch.float64) if v.is_floating_point() else v for k, v in network.items()},
        strict=True,
    )
    return model

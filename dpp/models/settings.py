"""The model of a run: catalogue class, layers, gates, and which analytic slots train."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from dpp.errors import SettingError
from dpp.models.catalog import build_model, is_zero_function
from dpp.slots import N_SLOTS, SPIN_ORBIT_NONLOCAL, WANG_ZUNGER, Slot


@dataclass(frozen=True)
class ModelSettings:
    """name: catalogue class (PPmodel); hidden_layers: hidden widths; decay_rate (Bohr) and
    decay_center (1/Bohr) of the logistic gate; gaussian_std (1/Bohr) of the Gaussian gate;
    scale: one output factor per species; dropout: p of the classes that apply dropout;
    train_slots: analytic slots a0..a9 trained by gradient (None: a0..a3, a4 when non-zero and
    a5..a7 with spin-orbit for ZeroFunction, none for a network); gradient_checkpointing:
    recompute the network in the backward pass (memory for time)."""

    name: str
    hidden_layers: tuple[int, ...]
    decay_rate: float | None = None
    decay_center: float | None = None
    gaussian_std: float | None = None
    scale: tuple[float, ...] | None = None
    dropout: float = 0.0
    train_slots: tuple[int, ...] | None = None
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden_layers", tuple(int(h) for h in self.hidden_layers))
        if self.scale is not None:
            object.__setattr__(self, "scale", tuple(float(s) for s in self.scale))
        if self.train_slots is not None:
            slots = tuple(int(s) for s in self.train_slots)
            if any(not 0 <= s < N_SLOTS for s in slots):
                raise SettingError(
                    "train_slots",
                    "unknown slot",
                    expected=f"indices 0..{N_SLOTS - 1}",
                    found=list(slots),
                )
            object.__setattr__(self, "train_slots", slots)

    def build(self, n_species: int, generator: torch.Generator | None = None) -> nn.Module:
        """The network (weights drawn from `generator`), with activation checkpointing when
        asked."""
        model = build_model(
            self.name,
            self.hidden_layers,
            n_species,
            decay_rate=self.decay_rate,
            decay_center=self.decay_center,
            gaussian_std=self.gaussian_std,
            scale=self.scale,
            dropout=self.dropout,
            generator=generator,
        )
        if self.gradient_checkpointing and not is_zero_function(model):
            model.forward = functools.partial(checkpoint, model.forward, use_reentrant=False)
        return model

    def slots(self, model: nn.Module, pp_params: np.ndarray, spin_orbit: bool) -> Sequence[int]:
        """The analytic slots trained by gradient for `model` (see the class docstring)."""
        if self.train_slots is not None:
            return self.train_slots
        if not is_zero_function(model):
            return ()
        slots = list(WANG_ZUNGER)
        if bool((np.asarray(pp_params)[:, Slot.LONG_RANGE] != 0).any()):
            slots.append(Slot.LONG_RANGE)
        if spin_orbit:
            slots.extend(SPIN_ORBIT_NONLOCAL)
        return tuple(int(s) for s in slots)

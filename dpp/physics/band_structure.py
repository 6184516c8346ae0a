"""Notebook-level entry point: bands of every system of a bundle, with gradients."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from dpp.io.records import Bundle
from dpp.physics.hamiltonian import PseudopotentialHamiltonian
from dpp.physics.options import PhysicsOptions


def build_hamiltonian(
    bundle: Bundle,
    model: nn.Module | None = None,
    options: PhysicsOptions | None = None,
    *,
    train_slots: Sequence[int] = (),
    device: torch.device | str = "cpu",
    **switches: Any,
) -> PseudopotentialHamiltonian:
    """The Hamiltonian of all systems of `bundle`.

    `options` (default: `PhysicsOptions()`) with any field replaced by `switches`, e.g.
    `build_hamiltonian(bundle, spin_orbit=True)`. Without `model` (or with ZeroFunction) the
    local potential is the Wang–Zunger form of init_<S>Params.par.
    """
    options = replace(options or PhysicsOptions(), **switches)
    return PseudopotentialHamiltonian(
        bundle.systems,
        bundle.species,
        bundle.pp_params,
        model,
        options,
        train_slots=train_slots,
        device=device,
    )


def band_structure(
    bundle: Bundle,
    model: nn.Module | None = None,
    options: PhysicsOptions | None = None,
    *,
    systems: Sequence[int] | None = None,
    device: torch.device | str = "cpu",
    **switches: Any,
) -> list[torch.Tensor]:
    """Bands in eV, one (n_kpoints, nBands) tensor per system, differentiable in `model`."""
    hamiltonian = build_hamiltonian(bundle, model, options, device=device, **switches)
    indices = range(len(bundle.systems)) if systems is None else systems
    return [hamiltonian.bands(index) for index in indices]

"""Objects of a run built from its resolved config: bundle, network, trainable slots."""

from __future__ import annotations

import functools
import os

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.checkpoint import checkpoint

from dpp.io import load_bundle
from dpp.io.records import Bundle
from dpp.models import build_model, is_zero_function
from dpp.training.config import bundle_path, nnconfig_from_cfg

LOCAL_SLOTS, LR_SLOT, SOC_NL_SLOTS = (0, 1, 2, 3), 4, (5, 6, 7)


def load_run_bundle(cfg: DictConfig, *, require_reference: bool = True) -> Bundle:
    """The bundle of `data.bundle` with the run config in place of its NN_config.par."""
    folder = bundle_path(cfg)
    config = nnconfig_from_cfg(cfg, source=folder / "NN_config.par")
    bundle = load_bundle(folder, require_reference=require_reference, **config.given)
    bundle.config = config  # also drops file keys the run config unset (null)
    return bundle


def set_threads(count: int) -> None:
    """num_cores: torch CPU threads, clipped to the CPU count (0 keeps torch's default)."""
    if count > 0:
        torch.set_num_threads(min(count, os.cpu_count() or 1))


def build_network(cfg: DictConfig, bundle: Bundle, generator: torch.Generator) -> nn.Module:
    """The PPmodel of the config with weights drawn from `generator`; with
    `model.gradient_checkpointing` its forward is recomputed in the backward pass."""
    config = bundle.config
    model = build_model(
        config.PPmodel,
        config.hiddenLayers,
        bundle.n_species,
        decay_rate=config.PPmodel_decay_rate,
        decay_center=config.PPmodel_decay_center,
        gaussian_std=config.PPmodel_gaussian_std,
        scale=config.PPmodel_scale,
        dropout=float(cfg.model.dropout),
        generator=generator,
        source=config.source,
    )
    if config.checkpoint and not is_zero_function(model):
        plain = model.forward
        model.forward = functools.partial(checkpoint, plain, use_reentrant=False)
    return model


def train_slots(cfg: DictConfig, bundle: Bundle, model: nn.Module) -> tuple[int, ...]:
    """Analytic slots trained by gradient: `model.train_slots`, else a0..a3 (and a4 when
    non-zero, a5..a7 with spin-orbit) for ZeroFunction and none for a network."""
    if cfg.model.train_slots is not None:
        return tuple(int(s) for s in OmegaConf.to_container(cfg.model.train_slots))
    if not is_zero_function(model):
        return ()
    slots = list(LOCAL_SLOTS)
    if bool((bundle.pp_params[:, LR_SLOT] != 0).any()):
        slots.append(LR_SLOT)
    if bundle.config.SObool:
        slots.extend(SOC_NL_SLOTS)
    return tuple(slots)

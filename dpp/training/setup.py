"""Objects of a run built from its resolved config: bundle, network, trainable slots."""

from __future__ import annotations

import functools
import os

import torch
from omegaconf import DictConfig, OmegaConf
from threadpoolctl import threadpool_limits
from torch import nn
from torch.utils.checkpoint import checkpoint

from dpp.io import load_bundle
from dpp.io.records import Bundle
from dpp.models import build_model_from_config, is_zero_function
from dpp.physics import PhysicsOptions
from dpp.slots import SPIN_ORBIT_NONLOCAL, WANG_ZUNGER, Slot
from dpp.training.config import bundle_path, nnconfig_from_cfg


def load_run_bundle(cfg: DictConfig, *, require_reference: bool = True) -> Bundle:
    """The bundle of `data.bundle` with the run config in place of its NN_config.par."""
    folder = bundle_path(cfg)
    config = nnconfig_from_cfg(cfg, source=folder / "NN_config.par")
    bundle = load_bundle(folder, require_reference=require_reference, **config.given)
    bundle.config = config  # also drops file keys the run config unset (null)
    return bundle


def set_threads(count: int, processes: int = 1) -> None:
    """num_cores: torch and BLAS/LAPACK CPU threads, clipped to the CPU count and shared
    evenly by the `processes` DDP ranks of a node (at least one each). They run the k-point
    eigensolves and tensor work of training, evaluation and no-gradient passes (Monte Carlo
    replicas also run in that many threads). 0 keeps the defaults in one process and shares
    the CPU count among several."""
    cpus = os.cpu_count() or 1
    if processes > 1:
        threads = max(1, min(count or cpus, cpus) // processes)
    elif count > 0:
        threads = min(count, cpus)
    else:
        return
    torch.set_num_threads(threads)
    threadpool_limits(limits=threads, user_api="blas")


def build_network(cfg: DictConfig, bundle: Bundle, generator: torch.Generator) -> nn.Module:
    """The PPmodel of the config with weights drawn from `generator`; with
    `model.gradient_checkpointing` its forward is recomputed in the backward pass."""
    config = bundle.config
    model = build_model_from_config(
        config, bundle.n_species, generator=generator, dropout=float(cfg.model.dropout)
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
    slots = list(WANG_ZUNGER)
    if bool((bundle.pp_params[:, Slot.LONG_RANGE] != 0).any()):
        slots.append(Slot.LONG_RANGE)
    if bundle.config.SObool:
        slots.extend(SPIN_ORBIT_NONLOCAL)
    return tuple(slots)


def physics_options(config: object) -> PhysicsOptions:
    """The physics switches of a validated NNConfig."""
    return PhysicsOptions(
        spin_orbit=bool(config.SObool),
        basis_search=config.basis_search,
        long_range_with_nn=bool(config.long_range_with_nn),
        nonlocal_without_soc=bool(config.nonlocal_without_soc),
        eigensolver=config.eigensolver,
        k_chunk=int(config.k_chunk),
        cache_projectors=bool(config.cacheSO),
    )

"""Band-structure evaluation of a checkpoint or of the analytic form (eval_fullBand).

Writes `bands_sys<i>.dat` (path distance, then energies in eV) and `bands_sys<i>.png` per
system and logs each system's weighted MSE; k-points are evaluated in chunks, so dense
paths need bounded memory.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from dpp.io.records import Bundle, SystemData
from dpp.io.writers import write_band_file
from dpp.models import load_checkpoint
from dpp.physics import build_hamiltonian
from dpp.physics.reorder import smooth_reorder
from dpp.training import plots
from dpp.training.objective import RelativeEnergy, SystemTensors, system_loss
from dpp.training.reordering import BandReordering, reorder_mode
from dpp.training.setup import build_network, physics_options

log = logging.getLogger(__name__)


def path_distance(system: SystemData, k_cartesian: np.ndarray) -> np.ndarray:
    """Column 0 of expBandStruct when present, else the cumulative Cartesian path length
    Σ|k_i − k_{i−1}| (1/Bohr)."""
    if system.ref_path is not None:
        return system.ref_path
    steps = np.linalg.norm(np.diff(k_cartesian, axis=0), axis=1)
    return np.concatenate([[0.0], np.cumsum(steps)])


@torch.no_grad()
def run_evaluate(cfg: DictConfig, bundle: Bundle, run_dir: Path) -> float:
    """Evaluate every system; returns Σ_X L_X (eV²), NaN without reference bands."""
    network = None
    if cfg.get("checkpoint"):
        network = build_network(cfg, bundle, torch.Generator().manual_seed(int(cfg.seed)))
        load_checkpoint(network, Path(str(cfg.checkpoint)).expanduser())
        network.eval()
        log.info("evaluating checkpoint %s", cfg.checkpoint)
    else:
        log.info("evaluating the analytic form of init_<S>Params.par")
    hamiltonian = build_hamiltonian(bundle, network, physics_options(bundle.config))
    relative = RelativeEnergy.from_config(bundle.config, bundle.systems)
    mode, legacy = reorder_mode(bundle.config), bool(bundle.config.legacy_reorder)
    chunk = int(cfg.workflow.k_chunk)
    total = 0.0
    for index, system in enumerate(bundle.systems):
        k_all = torch.arange(system.n_kpoints)
        parts, loss = [], 0.0
        has_reference = system.ref_bands is not None
        targets = SystemTensors(system) if has_reference else None
        reordering = BandReordering(mode, system.n_kpoints, legacy)
        for k in torch.split(k_all, chunk):
            bands = reordering.bands(hamiltonian, index, k)
            parts.append(bands)
        bands = torch.cat(parts)
        if mode == "smooth" and chunk < system.n_kpoints:
            bands = torch.gather(bands, 1, smooth_reorder(bands))
        if has_reference:
            loss = float(system_loss(hamiltonian, index, targets, k_all, relative, bands=bands))
        bands = bands.cpu().numpy()
        k_cart = hamiltonian.geometries[index].kpoints.cpu().numpy()
        distance = path_distance(system, k_cart)
        write_band_file(run_dir / f"bands_sys{index}.dat", distance, bands)
        if cfg.workflow.write_plots:
            fig = plots.bands_figure([system], [bands], f"evaluate system {index}")
            plots.save_figure(fig, run_dir / f"bands_sys{index}.png")
            plots.close(fig)
        if has_reference:
            weight = float(np.outer(system.kweights, system.band_weights).sum())
            mse = loss / weight if weight > 0 else float("nan")
            log.info(
                "system %d (%s): weighted MSE %.6g eV^2 (loss %.6g eV^2)",
                index,
                system.settings.system_name,
                mse,
                loss,
            )
            total += loss
        else:
            log.info("system %d: no reference bands; bands written only", index)
    has_any = any(s.ref_bands is not None for s in bundle.systems)
    return total if has_any else float("nan")

"""Band-structure evaluation of a checkpoint, an earlier run or the analytic form
(the original's eval_fullBand).

Writes `bands_sys<i>.dat` (path distance, then energies in eV) and `bands_sys<i>.png` per
system and logs each system's weighted MSE; k-points are evaluated in chunks, so dense paths
need bounded memory. `run=<dir>` reuses that run's settings (composed by the pre-pass) and
its best (else final) state; `checkpoint=` takes a network state_dict (.pth, original or
dpp) or a Lightning checkpoint (.ckpt).
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from dpp.app.origins import Origins
from dpp.app.run import RunSettings, read_bundle
from dpp.app.validate import check_basis, check_run
from dpp.errors import InputError, SettingError
from dpp.fitting.bands import BandTerm
from dpp.io.params import read_species_params
from dpp.io.records import Bundle, SystemData
from dpp.io.writers import write_band_file
from dpp.models import check_finite_state, is_zero_function, load_checkpoint, safe_torch_load
from dpp.models.subset import SpeciesColumns
from dpp.outputs import plots
from dpp.outputs.band_panels import bands_figure
from dpp.outputs.band_plot import path_distance
from dpp.outputs.physics_report import REPORT_FILE, physics_reports, write_physics_report
from dpp.outputs.progress import progress
from dpp.physics import build_hamiltonian
from dpp.physics.reorder import extrapolation_order

log = logging.getLogger("dpp")
MODEL_PREFIX = "hamiltonian.model."
"""Prefix of the network's tensors in a Lightning checkpoint of dpp."""


def band_file_distance(system: SystemData) -> np.ndarray:
    """Column 0 of expBandStruct when present, else the cumulative Cartesian path length
    Σ|k_i − k_{i−1}| (1/Bohr, `dpp.outputs.band_plot.path_distance`)."""
    if system.ref_path is not None:
        return system.ref_path
    return path_distance(system.kpoints, system.crystal.lattice)


def run_state(run: Path, preferred: str = "best") -> tuple[Path | None, str]:
    """The state of an earlier run to evaluate: `preferred` (best or final), else the other
    (network file or None, and the prefix of its parameter tables)."""
    for which in (preferred, "final" if preferred == "best" else "best"):
        if any(run.glob(f"{which}_*Params.dat")) or (run / f"{which}_PPmodel.pth").is_file():
            network = run / f"{which}_PPmodel.pth"
            return (network if network.is_file() else None), which
    raise InputError(
        run,
        "no results to evaluate",
        key="run",
        expected="best_* or final_* files of a run",
        found="none",
    )


def _load_network(model: torch.nn.Module, path: Path) -> None:
    """A .pth state_dict, or the network part of a Lightning .ckpt of dpp."""
    if path.suffix != ".ckpt":
        load_checkpoint(model, path)
        return
    saved = safe_torch_load(path, what="a Lightning checkpoint saved by dpp")
    state = saved.get("state_dict", {}) if isinstance(saved, dict) else {}
    network = {
        k.removeprefix(MODEL_PREFIX): v for k, v in state.items() if k.startswith(MODEL_PREFIX)
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


def _with_run_tables(bundle: Bundle, run: Path, which: str) -> Bundle:
    """The bundle with a0..a8 of the run's `<which>_<S>Params.dat` when present."""
    files = [run / f"{which}_{s}Params.dat" for s in bundle.species]
    if not all(f.is_file() for f in files):
        return bundle
    return replace(bundle, pp_params=np.array([read_species_params(f) for f in files]))


def fitted_species(run: Path | None, bundle: Bundle) -> tuple[str, ...]:
    """The species of the fit `run` (its run_info.json; the bundle's without one), after
    checking the bundle's species are among them."""
    info = None if run is None else run / "run_info.json"
    if info is None or not info.is_file():
        return bundle.species
    species = tuple(json.loads(info.read_text()).get("species", bundle.species))
    missing = [s for s in bundle.species if s not in species]
    if missing:
        raise InputError(
            bundle.path,
            "species the fit has no potential for",
            key="data.bundle",
            expected=f"species among those of run {run}: {', '.join(species)}",
            found=", ".join(missing),
        )
    return species


@torch.no_grad()
def run_evaluate(cfg: DictConfig, settings: RunSettings, origins: Origins, run_dir: Path) -> float:
    """Evaluate every system; returns Σ_X L_X (eV²), NaN without reference bands."""
    bundle = read_bundle(settings, require_reference=False)
    check_run(settings, bundle, origins, fitting=False)
    checkpoint = cfg.get("checkpoint")
    run = cfg.get("run")
    if run is not None:
        network_file, which = run_state(Path(str(run)), str(cfg.get("state", "best")))
        bundle = _with_run_tables(bundle, Path(str(run)), which)
        checkpoint = checkpoint or network_file
        log.info("evaluating the %s state of run %s", which, run)
    species = fitted_species(None if run is None else Path(str(run)), bundle)
    network = None
    if checkpoint is not None or (run is not None and settings.model.name != "ZeroFunction"):
        try:
            network = settings.model.build(len(species))
        except SettingError as error:
            raise origins.setting_error("model", error) from None
        if is_zero_function(network):
            network = None
        elif checkpoint is not None:
            _load_network(network, Path(str(checkpoint)).expanduser())
            network.eval()
            log.info("evaluating checkpoint %s", checkpoint)
            if species != bundle.species:
                network = SpeciesColumns(network, [species.index(s) for s in bundle.species])
    if network is None:
        log.info("evaluating the analytic form (init_<S>Params.par or the run's tables)")
    hamiltonian = build_hamiltonian(bundle, network, settings.physics)
    check_basis(hamiltonian)
    term = BandTerm(bundle.systems, settings.loss)
    chunk = int(cfg.workflow.k_chunk)
    show = bool(cfg.workflow.get("progress", True))
    total, any_reference, all_bands = 0.0, False, []
    for index, system in enumerate(bundle.systems):
        k_all = torch.arange(system.n_kpoints)
        chunks = torch.split(k_all, chunk)
        parts = [
            term.bands(hamiltonian, index, k)
            for k in progress(chunks, f"evaluate system {index}", enabled=show)
        ]
        bands = torch.cat(parts)
        if settings.loss.reorder == "smooth" and chunk < system.n_kpoints:
            bands = torch.gather(bands, 1, extrapolation_order(bands))
        all_bands.append(bands.numpy())
        write_band_file(
            run_dir / f"bands_sys{index}.dat", band_file_distance(system), bands.numpy()
        )
        if cfg.workflow.write_plots:
            fig = bands_figure([system], [bands.numpy()], "evaluation", term)
            plots.save_figure(fig, run_dir / f"bands_sys{index}.png")
            plots.close(fig)
        if system.ref_bands is None:
            log.info("system %d: no reference bands; bands written only", index)
            continue
        any_reference = True
        loss = float(term.value(hamiltonian, index, k_all, bands))
        weight = float(np.outer(system.kweights, system.band_weights).sum())
        mse = loss / weight if weight > 0 else float("nan")
        log.info(
            "system %d (%s): weighted MSE %.6g eV^2 (loss %.6g eV^2)",
            index,
            system.name,
            mse,
            loss,
        )
        total += loss
    title = f"physics report: {'run ' + str(run) if run is not None else 'model'} on {bundle.path}"
    write_physics_report(
        run_dir / REPORT_FILE, {"evaluation": physics_reports(hamiltonian, all_bands)}, title
    )
    return total if any_reference else float("nan")

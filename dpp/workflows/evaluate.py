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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dpp.errors import InputError, SettingError
from dpp.fitting.bands import BandTerm
from dpp.io.origins import Origins
from dpp.io.records import Bundle, SystemData
from dpp.io.run_folder import run_state, with_run_tables
from dpp.io.writers import write_band_file
from dpp.models import is_zero_function, load_network
from dpp.models.subset import SpeciesColumns
from dpp.outputs import plots
from dpp.outputs.band_panels import bands_figure
from dpp.outputs.band_plot import path_distance
from dpp.outputs.physics_report import REPORT_FILE, physics_reports, write_physics_report
from dpp.outputs.progress import progress
from dpp.physics import build_hamiltonian
from dpp.physics.reorder import extrapolation_order
from dpp.workflows.checks import check_basis, check_run
from dpp.workflows.settings import RunSettings

log = logging.getLogger("dpp")


@dataclass(frozen=True)
class EvaluationSettings:
    """What to evaluate and how: `run` (a train.py run folder) and its `state` (best or
    final), or a network `checkpoint` (.pth or Lightning .ckpt), else the analytic form;
    `k_chunk` k-points at once; a plot per system; a progress bar."""

    run: Path | None = None
    state: str = "best"
    checkpoint: str | None = None
    k_chunk: int = 32
    write_plots: bool = True
    progress: bool = True


def band_file_distance(system: SystemData) -> np.ndarray:
    """Column 0 of expBandStruct when present, else the cumulative Cartesian path length
    Σ|k_i − k_{i−1}| (1/Bohr, `dpp.outputs.band_plot.path_distance`)."""
    if system.ref_path is not None:
        return system.ref_path
    return path_distance(system.kpoints, system.crystal.lattice)


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
def run_evaluate(
    evaluation: EvaluationSettings, settings: RunSettings, origins: Origins, run_dir: Path
) -> float:
    """Evaluate every system; returns Σ_X L_X (eV²), NaN without reference bands."""
    bundle = settings.data.load(require_reference=False)
    check_run(settings, bundle, origins, fitting=False)
    checkpoint = evaluation.checkpoint
    run = evaluation.run
    if run is not None:
        network_file, which = run_state(run, evaluation.state)
        bundle = with_run_tables(bundle, run, which)
        checkpoint = checkpoint or network_file
        log.info("evaluating the %s state of run %s", which, run)
    species = fitted_species(run, bundle)
    network = None
    if checkpoint is not None or (run is not None and settings.model.name != "ZeroFunction"):
        try:
            network = settings.model.build(len(species))
        except SettingError as error:
            raise origins.setting_error("model", error) from None
        if is_zero_function(network):
            network = None
        elif checkpoint is not None:
            load_network(network, Path(str(checkpoint)).expanduser())
            network.eval()
            log.info("evaluating checkpoint %s", checkpoint)
            if species != bundle.species:
                network = SpeciesColumns(network, [species.index(s) for s in bundle.species])
    if network is None:
        log.info("evaluating the analytic form (init_<S>Params.par or the run's tables)")
    hamiltonian = build_hamiltonian(bundle, network, settings.physics)
    check_basis(hamiltonian)
    term = BandTerm(bundle.systems, settings.loss)
    chunk = evaluation.k_chunk
    show = evaluation.progress
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
        if evaluation.write_plots:
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

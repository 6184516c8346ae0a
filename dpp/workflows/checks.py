"""Checks of a whole run that need both its settings and its bundle, done before any work."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

from dpp.errors import InputError
from dpp.fitting.settings import LossSettings
from dpp.io.origins import Origins
from dpp.io.records import Bundle
from dpp.memory import check_cutoff, plane_waves
from dpp.physics.bands import needed_eigenvalues
from dpp.physics.footprint import check_kpoints
from dpp.physics.hamiltonian import PseudopotentialHamiltonian
from dpp.threads import available_cores
from dpp.training.optimizers import read_optimizer_state
from dpp.workflows.arguments import bad_argument, frozen_argument
from dpp.workflows.settings import RunSettings

log = logging.getLogger(__name__)

LOOSE_MAGNITUDE = 100.0
"""Above this allowed |v(q)| (Hartree·Bohr³) the magnitude penalty is nearly inactive."""


def check_run(settings: RunSettings, bundle: Bundle, origins: Origins, *, fitting: bool) -> None:
    """Settings against the systems: even nBands for smooth reordering, the relative-energy
    band inside every system; for a fit, a readable init_AdamState.pth and a pre-fit learning
    rate > 0 (the rules of `FROZEN_LEARNING_RATE`); warnings for settings without effect."""
    loss = settings.loss
    if fitting and bundle.init_optimizer_path is not None:
        read_optimizer_state(bundle.init_optimizer_path)
    init = settings.init
    bad = None if init.optimizer is None else bad_argument(init.optimizer)
    if bad is not None:
        name, value, expected = bad
        raise origins.error(
            f"init.optimizer.{name}", "pre-fit: invalid value", expected=expected, found=value
        )
    frozen = frozen_argument(init.optimizer) if fitting and init.num_epochs > 0 else None
    if frozen is not None:
        name, value, problem, expected = frozen
        raise origins.error(
            f"init.optimizer.{name}",
            f"pre-fit: {problem}",
            expected=f"{expected} when the pre-fit runs (init.num_epochs > 0)",
            found=value,
        )
    for system in bundle.systems:
        if fitting and loss.reorder == "smooth" and system.n_bands % 2:
            raise origins.error(
                "loss.reorder",
                f"smooth reordering works on band pairs; system {system.index} has an odd nBands",
                expected="even nBands in every system (or loss.reorder=eigvec)",
                found=system.n_bands,
            )
        own = system.settings.relE_bIdx
        global_band = own is None and loss.relE_bIdx is not None
        if fitting and global_band and loss.relE_bIdx >= system.n_bands:
            raise origins.error(
                "loss.relE_bIdx",
                f"band index outside system {system.index}",
                expected=f"< nBands = {system.n_bands}",
                found=loss.relE_bIdx,
            )
    physics = settings.physics
    for system in bundle.systems:
        name = Path(system.files.get("input") or "input_X.par").name
        volume = abs(float(np.linalg.det(system.crystal.lattice)))
        check_cutoff(
            volume,
            system.settings.max_ke,
            physics.spin_orbit,
            n_species=bundle.n_species,
            file=system.files.get("input"),
            key="maxKE",
            hint=f"lower maxKE in {name}, or run on a machine with more memory",
        )
        n_basis = max(1, round(plane_waves(volume, system.settings.max_ke)))
        check_kpoints(
            system.n_kpoints,
            n_basis,
            system.n_bands,
            physics,
            system=system.index,
            file=system.files.get("kpoints"),
        )
    if not physics.spin_orbit and origins.override_of("hamiltonian.cache_projectors"):
        warnings.warn("hamiltonian.cache_projectors has no effect without spin-orbit", stacklevel=2)
    if settings.model.gradient_checkpointing:
        log.warning(
            "model.gradient_checkpointing recomputes the network in the backward pass: slower"
        )
    threshold = loss.penalize_mag_threshold
    if threshold is not None and threshold > LOOSE_MAGNITUDE:
        warnings.warn(
            f"loss.penalize_mag_threshold = {threshold:g} > {LOOSE_MAGNITUDE:g} is very loose",
            stacklevel=2,
        )


def check_devices(accelerator: object, devices: object, origins: Origins) -> None:
    """DDP on CPUs asks for no more processes than the cores this process may use (each rank
    is a process; more would oversubscribe the machine or exhaust it while spawning)."""
    if str(accelerator) != "cpu" or not isinstance(devices, int) or isinstance(devices, bool):
        return
    cores = available_cores()
    if devices > cores:
        raise origins.error(
            "trainer.devices",
            f"more processes than the {cores} CPU cores available",
            expected=f"trainer.devices <= {cores} with accelerator cpu",
            found=devices,
        )


def check_basis(hamiltonian: PseudopotentialHamiltonian) -> None:
    """Every system's Hamiltonian has at least the eigenvalues its bands need."""
    spinor = hamiltonian.options.spin_orbit
    for system, geometry in zip(hamiltonian.systems, hamiltonian.geometries, strict=True):
        dimension = hamiltonian.dimension(system.index)
        order = hamiltonian.order_matrix(system.index)
        needed = needed_eigenvalues(system.n_bands, spinor, order)
        if needed > dimension:
            raise InputError(
                system.files.get("input"),
                "more bands than the plane-wave basis holds",
                key="nBands",
                expected=f"nBands needing at most {dimension} eigenvalues (the basis at maxKE "
                f"{system.settings.max_ke:g} Hartree has {geometry.n_basis} plane waves)",
                found=f"nBands = {system.n_bands} ({needed} eigenvalues)",
                hint="raise maxKE or lower nBands",
            )


def check_parallel(
    loss: LossSettings, separate_kpt_grad: bool, world_size: int, origins: Origins
) -> None:
    """smooth_reorder between k-batches needs the previous epoch's bands of the neighbouring
    k-points, which other processes hold: it runs in single-process training only. A free
    energy zero couples every k-point of a system (`per_system`) or of all systems
    (`common`): they must be in one batch of one process."""
    if loss.reorder == "smooth" and world_size > 1:
        raise origins.error(
            "loss.reorder",
            "smooth reordering needs every k-point's bands in one process",
            expected="one process, or loss.reorder=eigvec",
            found=f"smooth with {world_size} processes",
        )
    if loss.energy_zero != "absolute" and (separate_kpt_grad or world_size > 1):
        scope = "a system" if loss.energy_zero == "per_system" else "every system"
        raise origins.error(
            "loss.energy_zero",
            f"a {loss.energy_zero} energy zero needs every k-point of {scope} in one batch",
            expected="data.separate_kpt_grad=false on one process, or loss.energy_zero=absolute",
            found=f"separate_kpt_grad={str(separate_kpt_grad).lower()} on {world_size} "
            f"process{'es' if world_size > 1 else ''}",
        )

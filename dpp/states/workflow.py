"""From a fitted run and the settings of `dpp-states` to written band-edge states: build
every box, solve, write levels, densities and figures per box and the size series."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

from ase.units import Bohr

from dpp.physics import AUTOEV
from dpp.physics.lattice import Lattice
from dpp.run import FittedRun
from dpp.states import report
from dpp.states.continuation import Level, solve_box
from dpp.states.edges import EdgeStates, LigandPotential, bulk_edges
from dpp.states.settings import LigandSettings, SolverSettings, StructureSettings
from dpp.states.structures import (
    Structure,
    bulk_atoms,
    nanocrystal,
    radius_for,
    read_structure,
    sphere_diameter,
    supercell,
)

log = logging.getLogger("dpp")
NM = 10.0 / Bohr
"""Bohr per nm."""


@dataclass(frozen=True)
class BoxResult:
    """One box: its name, structure, states, effective diameter (nm; None for periodic or
    read structures) and the wall time of its solve (s)."""

    name: str
    structure: Structure
    states: EdgeStates
    diameter_nm: float | None
    seconds: float


def structures(
    run: FittedRun, settings: StructureSettings, ligands: dict[str, LigandSettings]
) -> list[tuple[str, Structure, float | None]]:
    """(name, structure, effective diameter in nm) of every box the settings ask for."""
    if settings.kind == "file":
        return [("file", read_structure(settings.file, settings.margin_nm * NM), None)]
    system = run.bundle.systems[settings.system]
    bulk = bulk_atoms(system)
    if settings.kind == "supercell":
        return [("supercell", supercell(bulk, settings.supercell), None)]
    atom_volume = abs(Lattice.from_crystal(system.crystal).volume) / len(bulk)
    fractions = {host: ligand.bond_fraction for host, ligand in ligands.items()}
    boxes = []
    for diameter in settings.diameters_nm:
        structure = nanocrystal(
            bulk,
            radius_for(diameter),
            settings.margin_nm * NM,
            ligand_fraction=fractions,
            centre=settings.centre,
        )
        effective = sphere_diameter(structure.n_host_atoms, atom_volume) / NM
        boxes.append((f"nc_{diameter:g}nm", structure, effective))
    return boxes


def at_cutoff(run: FittedRun, max_ke: float | None) -> FittedRun:
    """The run with every system's maxKE replaced by `max_ke` (Hartree; None: the fit's), so
    that the bulk band edges and the boxes share one cutoff."""
    if max_ke is None:
        return run
    systems = [
        replace(system, settings=replace(system.settings, max_ke=max_ke))
        for system in run.bundle.systems
    ]
    return replace(run, bundle=replace(run.bundle, systems=systems))


def cutoff_levels(run: FittedRun, solver: SolverSettings, system: int = 0) -> list[Level]:
    """The continuation's levels: the fit's potential and the bulk band edges of the bundle
    `system` at each cutoff of `solver.coarse_ke` below the box cutoff (`solver.max_ke`,
    None: the system's maxKE), then at the box cutoff."""
    fine = at_cutoff(run, solver.max_ke)
    max_ke = fine.bundle.systems[system].settings.max_ke
    runs = [at_cutoff(run, e) for e in solver.coarse_ke if e < max_ke] + [fine]
    levels = []
    for level_run in runs:
        potential = level_run.hamiltonian(device=solver.device)
        edges = bulk_edges(potential, solver.valence_bands, system)
        cutoff = level_run.bundle.systems[system].settings.max_ke
        log.info(
            "bulk band edges of the fit at maxKE %g Ha: VBM %.4f eV, CBM %.4f eV, gap %.4f eV",
            cutoff,
            edges.vbm * AUTOEV,
            edges.cbm * AUTOEV,
            edges.gap * AUTOEV,
        )
        levels.append(Level(cutoff, potential, edges))
    return levels


def run_states(
    run: FittedRun,
    structure_settings: StructureSettings,
    ligands: dict[str, LigandSettings],
    solver: SolverSettings,
    out_dir: Path,
    *,
    cubes: bool = True,
    plots: bool = True,
) -> list[BoxResult]:
    """Solve every box and write `<box>/levels.dat`, `<box>/density_<state>.cube`,
    `<box>/levels.png` and, for several nanocrystals, `gap_vs_diameter.dat/.png`."""
    levels = cutoff_levels(run, solver, structure_settings.system)
    edges = levels[-1].edges
    gaussians = {h: LigandPotential(g.amplitude, g.width) for h, g in ligands.items()}
    results = []
    for name, structure, diameter in structures(run, structure_settings, ligands):
        began = time.perf_counter()
        solve = solve_box(structure, levels, gaussians, solver, name)
        hamiltonian, states = solve.hamiltonian, solve.states
        seconds = time.perf_counter() - began
        if not states.converged:
            log.warning(
                "%s: not converged to %.1e Ha in %d iterations", name, solver.tol, solver.max_iter
            )
        log.info("%s: gap %.4f eV (%.1f s)", name, states.gap * AUTOEV, seconds)
        folder = out_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        report.write_levels(folder / "levels.dat", states)
        report.write_structure(folder / "structure.xyz", structure)
        if cubes:
            report.write_densities(folder, structure, hamiltonian, states)
        if plots:
            report.save(report.levels_figure(states, edges, name), folder / "levels.png")
        results.append(BoxResult(name, structure, states, diameter, seconds))
    series = [r for r in results if r.diameter_nm is not None]
    if len(series) > 1:
        diameters = [r.diameter_nm for r in series]
        gaps = [r.states.gap * AUTOEV for r in series]
        report.write_series(out_dir / "gap_vs_diameter.dat", diameters, gaps)
        if plots:
            figure = report.series_figure(diameters, gaps, edges.gap * AUTOEV)
            report.save(figure, out_dir / "gap_vs_diameter.png")
    return results

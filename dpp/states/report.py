"""Outputs of `dpp-states`: levels table, densities as cube files, the levels plot and the
gap against diameter of a size series (energies in eV)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import ase.io
from matplotlib.figure import Figure

from dpp.io.writers import write_text_atomic
from dpp.outputs import plots
from dpp.physics import AUTOEV
from dpp.states.edges import BulkEdges, EdgeStates
from dpp.states.hamiltonian import GridHamiltonian
from dpp.states.structures import Structure


def state_names(states: EdgeStates) -> list[str]:
    """VBM, VBM-1, … and CBM, CBM+1, … in the order of `levels` (ascending energies)."""
    n_v, n_c = len(states.valence.energies), len(states.conduction.energies)
    return [f"VBM-{n_v - 1 - i}" if i < n_v - 1 else "VBM" for i in range(n_v)] + [
        f"CBM+{i}" if i else "CBM" for i in range(n_c)
    ]


def write_structure(path: Path, structure: Structure) -> Path:
    """The box as an extended XYZ file (ligand pseudo-atoms as H)."""
    buffer = io.StringIO()
    ase.io.write(buffer, structure.atoms, format="extxyz")
    return write_text_atomic(path, buffer.getvalue())


def write_levels(path: Path, states: EdgeStates) -> Path:
    """name, energy (eV), residual ‖Hψ − εψ‖ (Hartree), iterations of its solve."""
    rows = ["# state energy_eV residual_Ha iterations"]
    names = iter(state_names(states))
    for solve in (states.valence, states.conduction):
        for energy, residual in zip(solve.energies.tolist(), solve.residuals.tolist(), strict=True):
            rows.append(f"{next(names)} {energy * AUTOEV:.6f} {residual:.3e} {solve.iterations}")
    rows.append(f"# gap_eV {states.gap * AUTOEV:.6f}")
    return write_text_atomic(path, "\n".join(rows) + "\n")


def write_densities(
    folder: Path, structure: Structure, hamiltonian: GridHamiltonian, states: EdgeStates
) -> list[Path]:
    """|ψ|² of every state as `density_<name>.cube` (1/Bohr³ on the FFT grid)."""
    written = []
    vectors = [*states.valence.vectors.T, *states.conduction.vectors.T]
    for name, vector in zip(state_names(states), vectors, strict=True):
        path = folder / f"density_{name}.cube"
        partial = path.with_name(path.name + ".partial")
        ase.io.write(partial, structure.atoms, format="cube", data=hamiltonian.density(vector))
        written.append(partial.replace(path))
    return written


def levels_figure(states: EdgeStates, edges: BulkEdges, title: str) -> Figure:
    """The band-edge levels (eV) with the bulk VBM and CBM of the fit."""
    fig = Figure(figsize=(3.5, 4.5))
    axis = fig.add_subplot()
    for solve, colour in ((states.valence, "tab:blue"), (states.conduction, "tab:red")):
        for energy in solve.energies.tolist():
            axis.hlines(energy * AUTOEV, 0.2, 0.8, colors=colour)
    for energy, label in ((edges.vbm, "bulk VBM"), (edges.cbm, "bulk CBM")):
        axis.axhline(energy * AUTOEV, color="grey", linestyle="--", linewidth=0.8)
        axis.annotate(label, (0.82, energy * AUTOEV), fontsize=7, va="center")
    axis.set_xlim(0, 1.15)
    axis.set_xticks([])
    axis.set_ylabel("E (eV)")
    axis.set_title(f"{title}: gap {states.gap * AUTOEV:.3f} eV", fontsize=9)
    fig.tight_layout()
    return fig


def write_series(path: Path, diameters_nm: Sequence[float], gaps_ev: Sequence[float]) -> Path:
    rows = ["# diameter_nm gap_eV"]
    rows += [f"{d:.4f} {g:.6f}" for d, g in zip(diameters_nm, gaps_ev, strict=True)]
    return write_text_atomic(path, "\n".join(rows) + "\n")


def series_figure(
    diameters_nm: Sequence[float], gaps_ev: Sequence[float], bulk_gap_ev: float
) -> Figure:
    """Quasiparticle gap against diameter, with the bulk gap of the fit."""
    fig = Figure(figsize=(4.5, 3.5))
    axis = fig.add_subplot()
    axis.plot(diameters_nm, gaps_ev, "o-", label="nanocrystal")
    axis.axhline(bulk_gap_ev, color="grey", linestyle="--", label="bulk")
    axis.set_xlabel("diameter (nm)")
    axis.set_ylabel("gap (eV)")
    axis.legend()
    fig.tight_layout()
    return fig


def save(fig: Figure, path: Path) -> Path:
    return plots.save_figure(fig, path)

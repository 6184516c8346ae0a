"""`dpp-plot-terms`: the parts of H(k) seen by each band, and the form factors v(q).

For the eigenstates ψ_n(k) of H the expectation values (eV) of the kinetic energy T = |k+G|²/2,
the local potential V_loc, the spin–orbit term V_SO and the nonlocal term V_NL, with
E_n = ⟨T⟩ + ⟨V_loc⟩ + ⟨V_SO⟩ + ⟨V_NL⟩. The parts come from the public Hamiltonian only:
V_SO = H − H(a5 = 0), V_NL = H − H(a6 = a7 = 0), V_loc = H − T − V_SO − V_NL. Writes
`<term>_sysX.dat` band files (`d E_0 …`, d = Σ|Δk| in 1/Bohr), `terms_sysX.png`,
`vq.png` and `vq_qSpace_pot.dat` (v_s(q) in Hartree·Bohr³).
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from dpp.errors import InputError
from dpp.io.labels import read_point_labels
from dpp.io.records import SystemData
from dpp.io.writers import write_band_file, write_qspace_table
from dpp.outputs.band_plot import path_layout
from dpp.physics import AUTOEV, PseudopotentialHamiltonian, lowest_eigh
from dpp.slots import NONLOCAL, Slot
from dpp.tools.common import (
    add_model_arguments,
    add_physics_arguments,
    description,
    hamiltonian_from_arguments,
    lattice_vectors,
    reciprocal_vectors,
    refuse_overwrite,
    run_tool,
)

PROG = "dpp-plot-terms"
TERMS = ("E", "T", "Vloc", "VSO", "VNL")
TITLES = {
    "T": "kinetic ⟨T⟩",
    "Vloc": "local ⟨V_loc⟩",
    "VSO": "spin–orbit ⟨V_SO⟩",
    "VNL": "nonlocal ⟨V_NL⟩",
}


@dataclass(frozen=True)
class Decomposition:
    """Per k-point and band (nK, n) in eV: the eigenvalue and the expectation of each part."""

    terms: dict[str, np.ndarray]


def decompose(
    hamiltonian: PseudopotentialHamiltonian,
    data: SystemData,
    n_states: int,
    *,
    spin_orbit: bool,
    system: int = 0,
    chunk: int = 8,
) -> Decomposition:
    """⟨ψ_n|X|ψ_n⟩ for X = T, V_loc, V_SO, V_NL and the `n_states` lowest states at every k
    of system `system` of the Hamiltonian, whose data (cell, k-points) is `data`."""
    labels = np.asarray(hamiltonian.geometries[system].labels)
    reciprocal = reciprocal_vectors(lattice_vectors(data.crystal))
    basis = labels @ reciprocal
    kpoints = np.asarray(data.kpoints, dtype=np.float64) @ reciprocal
    dimension = labels.shape[0] * (2 if spin_orbit else 1)
    if not 1 <= n_states <= dimension:
        raise InputError(
            None,
            "bad number of states",
            key="--states",
            expected=f"1..{dimension}",
            found=str(n_states),
        )
    with torch.no_grad():
        table = hamiltonian.pp_table().detach().clone()
        without_so = table.clone()
        without_so[:, Slot.SPIN_ORBIT] = 0.0
        without_nl = table.clone()
        without_nl[:, list(NONLOCAL)] = 0.0
        parts: dict[str, list[np.ndarray]] = {term: [] for term in TERMS}
        for start in range(0, len(kpoints), chunk):
            k_indices = torch.arange(start, min(start + chunk, len(kpoints)))
            full = hamiltonian.hamiltonians(system, k_indices, table)
            spin_orbit_part = full - hamiltonian.hamiltonians(system, k_indices, without_so)
            nonlocal_part = full - hamiltonian.hamiltonians(system, k_indices, without_nl)
            waves = kpoints[k_indices.numpy()][:, None, :] + basis[None]
            kinetic = 0.5 * np.sum(waves * waves, axis=-1)
            if spin_orbit:
                kinetic = np.concatenate([kinetic, kinetic], axis=1)
            kinetic = torch.diag_embed(torch.as_tensor(kinetic)).to(full.dtype)
            local_part = full - kinetic - spin_orbit_part - nonlocal_part
            values, vectors = lowest_eigh(full, n_states)
            kinetic_value = _expectation(kinetic, vectors)
            spin_orbit_value = _expectation(spin_orbit_part, vectors)
            nonlocal_value = _expectation(nonlocal_part, vectors)
            local_value = _expectation(local_part, vectors)
            for term, value in zip(
                TERMS,
                (values, kinetic_value, local_value, spin_orbit_value, nonlocal_value),
                strict=True,
            ):
                parts[term].append(value.numpy() * AUTOEV)
    return Decomposition({term: np.concatenate(chunks) for term, chunks in parts.items()})


def _expectation(operator: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """Re ⟨v_n|A|v_n⟩ for a batch of matrices (B, d, d) and column vectors (B, d, n)."""
    return torch.einsum("bin,bij,bjn->bn", vectors.conj(), operator, vectors).real


def terms_figure(
    decomposition: Decomposition,
    x: np.ndarray,
    ticks: list[tuple[float, str]],
    segments: tuple[slice, ...],
    xlabel: str,
    title: str,
) -> Figure:
    """Four panels (⟨T⟩, ⟨V_loc⟩, ⟨V_SO⟩, ⟨V_NL⟩ in eV) along the path, one line per band."""
    figure = Figure(figsize=(10.0, 7.5), layout="constrained")
    axes = figure.subplots(2, 2, sharex=True).ravel()
    n_states = decomposition.terms["E"].shape[1]
    norm = Normalize(0, max(n_states - 1, 1))
    colors = [colormaps["viridis"](norm(band)) for band in range(n_states)]
    for ax, term in zip(axes, ("T", "Vloc", "VSO", "VNL"), strict=True):
        values = decomposition.terms[term]
        for band in range(n_states):
            for segment in segments:
                ax.plot(x[segment], values[segment, band], color=colors[band], lw=1.0)
        for position, _ in ticks:
            ax.axvline(position, color="0.75", lw=0.8, zorder=0)
        ax.set_xticks([p for p, _ in ticks], [label for _, label in ticks])
        ax.set_xlim(float(np.min(x)), float(np.max(x)))
        ax.set_title(TITLES[term])
        ax.set_ylabel("expectation value (eV)")
    for ax in axes[2:]:
        ax.set_xlabel(xlabel)
    figure.colorbar(
        ScalarMappable(norm=norm, cmap="viridis"), ax=axes, label="state index (ascending E)"
    )
    figure.suptitle(f"{title}: parts of H per band (E = ⟨T⟩ + ⟨V_loc⟩ + ⟨V_SO⟩ + ⟨V_NL⟩)")
    return figure


def form_factor_figure(
    q: np.ndarray, values: np.ndarray, species: tuple[str, ...], model: str
) -> Figure:
    """v_s(q) of every species (Hartree·Bohr³) against q (1/Bohr); `model` names the form."""
    figure = Figure(figsize=(5.5, 4.2), layout="constrained")
    ax = figure.subplots()
    for column, symbol in enumerate(species):
        ax.plot(q, values[:, column], label=symbol)
    ax.axhline(0.0, color="0.6", lw=0.8)
    ax.set_xlabel("q (1/Bohr)")
    ax.set_ylabel("v(q) (Hartree·Bohr³)")
    ax.set_title(f"local form factors ({model})")
    ax.legend()
    return figure


def _run(args: argparse.Namespace) -> None:
    bundle, hamiltonian = hamiltonian_from_arguments(args)
    system = bundle.systems[0]
    n_states = args.states or (system.n_bands if args.spin_orbit else math.ceil(system.n_bands / 2))
    folder: Path = args.output
    files = [folder / f"{term}_sys{args.system}.dat" for term in TERMS]
    figures = [folder / f"terms_sys{args.system}.png", folder / "vq.png"]
    table_file = folder / "vq_qSpace_pot.dat"
    refuse_overwrite([*files, *figures, table_file], args.force)
    decomposition = decompose(hamiltonian, system, n_states, spin_orbit=args.spin_orbit)
    kpoints_file = bundle.path / f"kpoints_{args.system}.par"
    layout = path_layout(
        system.n_kpoints,
        kpoints=system.kpoints,
        cell=lattice_vectors(system.crystal),
        labels=read_point_labels(kpoints_file) if kpoints_file.is_file() else None,
    )
    folder.mkdir(parents=True, exist_ok=True)
    for term, path in zip(TERMS, files, strict=True):
        write_band_file(path, layout.x, decomposition.terms[term])
    name = f"{system.name} (system {args.system})"
    ticks = [(tick.position, tick.label) for tick in layout.ticks]
    terms_figure(decomposition, layout.x, ticks, layout.segments, layout.xlabel, name).savefig(
        figures[0], dpi=150
    )
    q = np.linspace(0.0, args.q_max, 401)
    with torch.no_grad():
        values = hamiltonian.form_factors(torch.as_tensor(q)).numpy()
    model = "Wang-Zunger" if args.checkpoint is None else f"network {args.model}"
    form_factor_figure(q, values, bundle.species, model).savefig(figures[1], dpi=150)
    write_qspace_table(table_file, q, values, bundle.species)
    residual = np.max(
        np.abs(
            decomposition.terms["E"]
            - sum(decomposition.terms[term] for term in ("T", "Vloc", "VSO", "VNL"))
        )
    )
    print(
        f"wrote {', '.join(p.name for p in [*files, *figures, table_file])} in {folder} "
        f"({n_states} states, {system.n_kpoints} k-points; max |E - sum of parts| = "
        f"{residual:.1e} eV)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=description(__doc__))
    add_physics_arguments(parser)
    parser.add_argument(
        "--states",
        type=int,
        help="lowest eigenstates to analyse (default: nBands with spin-orbit, nBands/2 without)",
    )
    parser.add_argument("--q-max", type=float, default=8.0, help="q range of v(q) (1/Bohr)")
    parser.add_argument("-o", "--output", type=Path, default=Path("."), help="output folder")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    add_model_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `dpp-plot-terms`."""
    return run_tool(build_parser(), argv, _run)


if __name__ == "__main__":
    sys.exit(main())

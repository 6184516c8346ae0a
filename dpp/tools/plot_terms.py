"""`dpp-plot-terms`: the parts of H(k) seen by each band, and the form factors v(q).

For the eigenstates ψ_n(k) of H the expectation values (eV) of the kinetic energy T = |k+G|²/2,
the local potential V_loc, the spin–orbit term V_SO and the nonlocal term V_NL, with
E_n = ⟨T⟩ + ⟨V_loc⟩ + ⟨V_SO⟩ + ⟨V_NL⟩. The parts are the Hamiltonian's own terms
(`PseudopotentialHamiltonian.term_operators`), which add up to H. Writes
`<term>_sysX.dat` band files (`d E_0 …`, d = Σ|Δk| in 1/Bohr), `terms_sysX.png`,
`vq.png` and `vq_qSpace_pot.dat` (v_s(q) in Hartree·Bohr³).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from dpp.errors import InputError
from dpp.io.writers import write_band_file, write_qspace_table
from dpp.outputs.band_panels import system_title
from dpp.outputs.band_plot import path_layout
from dpp.physics import AUTOEV, PseudopotentialHamiltonian, lowest_eigh
from dpp.physics.bands import spatial_columns
from dpp.tools.common import (
    add_model_arguments,
    add_physics_arguments,
    description,
    hamiltonian_from_arguments,
    refuse_overwrite,
    require,
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


OPERATORS = {"T": "kinetic", "Vloc": "local", "VSO": "spin_orbit", "VNL": "nonlocal"}
"""Band-file term → name of the Hamiltonian term (PseudopotentialHamiltonian.term_operators)."""


def decompose(
    hamiltonian: PseudopotentialHamiltonian, n_states: int, *, chunk: int = 8
) -> dict[str, np.ndarray]:
    """Per term of TERMS, (nK, n_states) in eV for the `n_states` lowest states at every k of
    system 0 of the Hamiltonian: the eigenvalue E and the expectations ⟨T⟩, ⟨V_loc⟩, ⟨V_SO⟩,
    ⟨V_NL⟩ (zero for a term the Hamiltonian does not have)."""
    geometry, dimension = hamiltonian.geometries[0], hamiltonian.dimension(0)
    if not 1 <= n_states <= dimension:
        raise InputError(
            None,
            "bad number of states",
            key="--states",
            expected=f"1..{dimension}",
            found=str(n_states),
        )
    parts: dict[str, list[np.ndarray]] = {term: [] for term in TERMS}
    with torch.no_grad():
        for k_indices in torch.split(torch.arange(geometry.n_kpoints), chunk):
            operators = hamiltonian.term_operators(0, k_indices)
            values, vectors = lowest_eigh(sum(operators.values()), n_states)
            parts["E"].append(values.numpy() * AUTOEV)
            for term, name in OPERATORS.items():
                value = (
                    _expectation(operators[name], vectors)
                    if name in operators
                    else torch.zeros_like(values)
                )
                parts[term].append(value.numpy() * AUTOEV)
    return {term: np.concatenate(chunks) for term, chunks in parts.items()}


def _expectation(operator: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """Re ⟨v_n|A|v_n⟩ for a batch of matrices (B, d, d) and column vectors (B, d, n)."""
    return torch.einsum("bin,bij,bjn->bn", vectors.conj(), operator, vectors).real


def terms_figure(
    decomposition: dict[str, np.ndarray],
    x: np.ndarray,
    ticks: list[tuple[float, str]],
    segments: tuple[slice, ...],
    xlabel: str,
    title: str,
) -> Figure:
    """Four panels (⟨T⟩, ⟨V_loc⟩, ⟨V_SO⟩, ⟨V_NL⟩ in eV) along the path, one line per band."""
    figure = Figure(figsize=(10.0, 7.5), layout="constrained")
    axes = figure.subplots(2, 2, sharex=True).ravel()
    n_states = decomposition["E"].shape[1]
    norm = Normalize(0, max(n_states - 1, 1))
    colors = [colormaps["viridis"](norm(band)) for band in range(n_states)]
    for ax, term in zip(axes, ("T", "Vloc", "VSO", "VNL"), strict=True):
        values = decomposition[term]
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
    figure.suptitle(
        f"{title}: parts of H per band (E = ⟨T⟩ + ⟨V_loc⟩ + ⟨V_SO⟩ + ⟨V_NL⟩)", parse_math=False
    )
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
    require(args.q_max > 0, "--q-max", "empty q range", "q_max > 0 (1/Bohr)", args.q_max)
    bundle, hamiltonian = hamiltonian_from_arguments(args)
    system = bundle.systems[0]
    n_states = args.states or spatial_columns(system.n_bands, hamiltonian.options.spin_orbit)
    folder: Path = args.output
    files = [folder / f"{term}_sys{args.system}.dat" for term in TERMS]
    figures = [folder / f"terms_sys{args.system}.png", folder / "vq.png"]
    table_file = folder / "vq_qSpace_pot.dat"
    refuse_overwrite([*files, *figures, table_file], args.force)
    decomposition = decompose(hamiltonian, n_states)
    layout = path_layout(
        system.n_kpoints,
        kpoints=system.kpoints,
        cell=system.crystal.lattice,
        labels=system.kpoint_labels or None,
    )
    folder.mkdir(parents=True, exist_ok=True)
    for term, path in zip(TERMS, files, strict=True):
        write_band_file(path, layout.x, decomposition[term])
    name = system_title(system)
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
    residual = np.max(np.abs(decomposition["E"] - sum(decomposition[term] for term in OPERATORS)))
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

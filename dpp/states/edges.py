"""Band-edge states of a box: the bulk band edges of the fit, the potential of every atom
kind (species of the fit and ligand pseudo-atoms), and the folded-spectrum solves."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from dpp.errors import InputError
from dpp.physics import PseudopotentialHamiltonian
from dpp.physics.projectors import S_CHANNEL
from dpp.slots import Slot
from dpp.states.eigensolver import InteriorStates, folded_lobpcg
from dpp.states.hamiltonian import GridHamiltonian
from dpp.states.realgamma import RealGamma, real_gamma
from dpp.states.structures import Structure, ligand_kind

log = logging.getLogger("dpp")

PROJECTOR_SLOTS = {
    "soc": Slot.SPIN_ORBIT,
    "nl1": Slot.NONLOCAL_1,
    "nl2": Slot.NONLOCAL_2,
    S_CHANNEL: Slot.NONLOCAL_0,
}
"""Parameter slot of the strength of each projector channel (physics.md §4)."""

Box = GridHamiltonian | RealGamma
"""A box Hamiltonian on plane-wave coefficients or on real coordinates."""

RETRIES = 2
"""Block doublings when the other side of the gap crowds a folded solve."""

PRECONDITIONER_ENERGY = 0.4
"""Width E_p (Hartree) of the folded-spectrum preconditioner 1/((T + V̄ − E)² + E_p²)."""


@dataclass(frozen=True)
class LigandPotential:
    """A ligand pseudo-atom: V(r) = amplitude·exp(−r²/(2 width²)) (Hartree, Bohr)."""

    amplitude: float
    width: float

    def form_factor(self, q: torch.Tensor) -> torch.Tensor:
        """v(q) = amplitude (2π width²)^{3/2} exp(−q² width²/2), Hartree·Bohr³."""
        prefactor = self.amplitude * (2.0 * math.pi * self.width**2) ** 1.5
        return prefactor * torch.exp(-0.5 * (q * self.width) ** 2)


@dataclass(frozen=True)
class BulkEdges:
    """Valence-band maximum and conduction-band minimum of the fitted bulk (Hartree)."""

    vbm: float
    cbm: float

    @property
    def gap(self) -> float:
        return self.cbm - self.vbm


@dataclass(frozen=True)
class EdgeStates:
    """The highest valence and lowest conduction states of a box (energies in Hartree,
    ascending within each set; vectors on the box's basis)."""

    valence: InteriorStates
    conduction: InteriorStates

    @property
    def gap(self) -> float:
        """Quasiparticle gap ε_CBM − ε_VBM, Hartree."""
        return float(self.conduction.energies.min() - self.valence.energies.max())

    @property
    def converged(self) -> bool:
        return self.valence.converged and self.conduction.converged


def bulk_edges(
    potential: PseudopotentialHamiltonian, valence_bands: int, system: int = 0
) -> BulkEdges:
    """VBM = max_k ε_{n_v}(k) and CBM = min_k ε_{n_v+1}(k) over the k-points of the
    bundle's `system`; `valence_bands` counts spatial bands (spinor bands with spin–orbit)."""
    n_kpoints = potential.geometries[system].n_kpoints
    with torch.no_grad():
        values, _ = potential.eigenpairs(system, torch.arange(n_kpoints), valence_bands + 1)
    return BulkEdges(
        vbm=float(values[:, valence_bands - 1].max()), cbm=float(values[:, valence_bands].min())
    )


def box_hamiltonian(
    structure: Structure,
    potential: PseudopotentialHamiltonian,
    max_ke: float,
    ligands: dict[str, LigandPotential],
    *,
    labels: np.ndarray | None = None,
    device: torch.device | str = "cpu",
) -> GridHamiltonian:
    """The Hamiltonian of `structure` with the fit's form factors for its species and the
    Gaussians of `ligands` {host species: potential} for the `lig_<host>` kinds; with the
    fit's spin–orbit (spinors) and nonlocal channels for the species (none for ligands)."""
    kinds = [*potential.species, *(ligand_kind(host) for host in ligands)]
    unknown = sorted(set(structure.kinds) - set(kinds))
    if unknown:
        raise InputError(
            None,
            "atoms of unknown kind",
            key="structure",
            expected=f"species of the fit or configured ligands ({', '.join(kinds)})",
            found=", ".join(unknown),
        )
    gaussians = list(ligands.values())

    def form_factors(q: torch.Tensor) -> torch.Tensor:
        columns = [potential.form_factors(q)]
        columns += [g.form_factor(q)[:, None] for g in gaussians]
        return torch.cat(columns, dim=1)

    indices = np.array([kinds.index(k) for k in structure.kinds])
    return GridHamiltonian(
        structure.cell,
        structure.positions,
        indices,
        form_factors,
        max_ke,
        labels=labels,
        device=device,
        strengths=_projector_strengths(potential, indices),
        spinor=potential.options.spin_orbit,
    )


def _projector_strengths(
    potential: PseudopotentialHamiltonian, indices: np.ndarray
) -> dict[str, np.ndarray]:
    """Per-atom a5, a6, a7, a9 of the active channels for atoms of kind `indices` (kinds past
    the fit's species are ligands: zero)."""
    options = potential.options
    channels = [
        *(["soc"] if options.spin_orbit else []),
        *(["nl1", "nl2"] if options.nonlocal_active else []),
        *([S_CHANNEL] if options.nonlocal_s else []),
    ]
    table = potential.pp_table().detach().cpu().numpy()
    host = indices < len(table)
    strengths = {}
    for channel in channels:
        values = np.zeros(len(indices))
        values[host] = table[indices[host], PROJECTOR_SLOTS[channel]]
        strengths[channel] = values
    return strengths


def _start(hamiltonian: Box, weights: torch.Tensor, columns: int, seed: int) -> torch.Tensor:
    """Random vectors (dim, columns) of the operator's dtype, shaped by the preconditioner's
    `weights` (dim,)."""
    generator = torch.Generator().manual_seed(seed)
    start = torch.randn(hamiltonian.dim, columns, generator=generator, dtype=hamiltonian.dtype)
    return start.to(hamiltonian.device) * weights[:, None]


def preconditioner(hamiltonian: Box, reference: float) -> torch.Tensor:
    """Diagonal approximation of ((H − E)²)⁻¹ on the basis, E = `reference` (Hartree):
    1/((T + V̄ − E)² + E_p²) with T = |k+G|²/2 and V̄ the mean local potential of the box,
    largest on the plane waves resonant with E (the folded-spectrum preconditioner of
    Wang and Zunger)."""
    resonance = hamiltonian.diagonal + hamiltonian.mean_potential - reference
    return 1.0 / (resonance**2 + PRECONDITIONER_ENERGY**2)


def band_edge_states(
    hamiltonian: GridHamiltonian,
    edges: BulkEdges,
    n_valence: int,
    n_conduction: int,
    *,
    offset: float = 0.1,
    buffer: int = 8,
    tol: float = 1e-4,
    max_iter: int = 500,
    seed: int = 0,
    start: EdgeStates | None = None,
) -> EdgeStates:
    """The `n_valence` highest valence and `n_conduction` lowest conduction states: two
    folded-spectrum solves, about E_v = VBM + offset·gap and E_c = CBM − offset·gap of the
    bulk (offset a fraction of the bulk gap, into the gap), valence states below the bulk
    midgap and conduction states above it; `buffer` extra vectors per block (random start);
    residual tolerance `tol` (Hartree). start: states whose vectors and buffers (plane-wave
    coefficients on this basis, dpp.states.continuation) start the solves in place of
    random vectors. At Γ without spinors the solves run on real coordinates
    (dpp.states.realgamma); the vectors returned are plane-wave coefficients."""
    middle = 0.5 * (edges.vbm + edges.cbm)
    real = real_gamma(hamiltonian)
    operator = hamiltonian if real is None else real

    def block(side: InteriorStates | None) -> torch.Tensor | None:
        if side is None:
            return None
        vectors = torch.cat([side.vectors, side.buffer], dim=1)
        return vectors if real is None else real.to_real(vectors)

    valence = _solve_side(
        operator,
        edges.vbm + offset * edges.gap,
        n_valence,
        (-math.inf, middle),
        "valence",
        buffer,
        tol,
        max_iter,
        seed,
        block(None if start is None else start.valence),
    )
    conduction = _solve_side(
        operator,
        edges.cbm - offset * edges.gap,
        n_conduction,
        (middle, math.inf),
        "conduction",
        buffer,
        tol,
        max_iter,
        seed,
        block(None if start is None else start.conduction),
    )
    if real is not None:
        valence, conduction = (
            replace(s, vectors=real.to_complex(s.vectors), buffer=real.to_complex(s.buffer))
            for s in (valence, conduction)
        )
    return EdgeStates(valence, conduction)


def _solve_side(
    hamiltonian: Box,
    reference: float,
    wanted: int,
    window: tuple[float, float],
    label: str,
    buffer: int,
    tol: float,
    max_iter: int,
    seed: int,
    start: torch.Tensor | None = None,
) -> InteriorStates:
    """The folded solve of one side of the gap from the block `start` (None: `wanted` +
    `buffer` random vectors); when states of the other side crowd the block (fewer than
    `wanted` inside `window`), again with twice the vectors, at most RETRIES times (small
    boxes, whose levels are sparse)."""
    weights = preconditioner(hamiltonian, reference)
    if start is None:
        start = _start(hamiltonian, weights, wanted + buffer, seed)
    for attempt in range(RETRIES + 1):
        states = folded_lobpcg(
            hamiltonian,
            start,
            reference,
            weights,
            n_wanted=wanted,
            tol=tol,
            max_iter=max_iter,
            window=window,
            label=label,
        )
        inside = (states.energies > window[0]) & (states.energies < window[1])
        if bool(inside.all()) or attempt == RETRIES:
            return states
        log.info("%s: states of the other side in the block; %d vectors", label, 2 * start.shape[1])
        extra = _start(hamiltonian, weights, start.shape[1], seed + attempt + 1)
        start = torch.cat([states.vectors, extra[:, : 2 * start.shape[1] - wanted]], dim=1)
    return states

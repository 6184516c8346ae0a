"""Typed, validated records of an input bundle (what `dpp.io` hands to `dpp.physics`).

Units: lengths in Bohr, fractional coordinates dimensionless, energies in eV,
cutoffs in Hartree, form factors in Hartree·Bohr³.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import reduce
from math import gcd
from pathlib import Path

import numpy as np

from dpp.io.observables import CouplingTargets, DefPotTarget

UNNAMED = "No_Name"
"""systemName when input_X.par does not set it."""


def reduced_formula(symbols: Sequence[str]) -> str:
    """Reduced formula, species in order of first appearance: (Cd, Se) → CdSe,
    (In, In, Ga, Ga, As, As, As, As) → InGaAs2."""
    counts = Counter(symbols)
    if not counts:
        return ""
    divisor = reduce(gcd, counts.values())
    return "".join(f"{s}{n // divisor if n > divisor else ''}" for s, n in counts.items())


@dataclass(frozen=True)
class Crystal:
    """One crystal: lattice scale (Bohr), cell rows (units of scale), atoms in file order."""

    scale: float
    cell: np.ndarray  # (3, 3), one lattice vector per row, dimensionless
    symbols: tuple[str, ...]  # atom symbols in file order
    fractional: np.ndarray  # (n_atoms, 3) fractional coordinates

    @property
    def formula(self) -> str:
        """The reduced chemical formula of the atoms (`reduced_formula`)."""
        return reduced_formula(self.symbols)

    @property
    def lattice(self) -> np.ndarray:
        """The lattice vectors in Bohr, one per row: scale × cell, (3, 3) float64."""
        return self.scale * np.asarray(self.cell, dtype=np.float64)


@dataclass(frozen=True)
class SystemSettings:
    """The keys of input_X.par (cutoff in Hartree, plot windows in eV)."""

    max_ke: float
    n_bands: int
    idx_vb: int | None = None
    idx_cb: int | None = None
    idx_gap: int | None = None
    bs_plot_center: float = -5.0
    bs_plot_range: float = 10.0
    bs_plot_range_zoom: float = 5.0
    system_name: str = UNNAMED
    fit_defpot: bool = False
    fit_eph: bool = False
    relE_bIdx: int | None = None
    strain_ref_scale: float | None = None
    window_low: float | None = None  # band window of this system (eV; dpp.fitting.windows)
    window_high: float | None = None
    window_edge: str | None = None
    window_smoothness: float | None = None
    exclude_bands: tuple[int, ...] | None = None


@dataclass(frozen=True)
class SystemData:
    """Everything read for one system X of a bundle."""

    index: int
    crystal: Crystal
    settings: SystemSettings
    kpoints: np.ndarray  # (nK, 3) fractional on b_1, b_2, b_3
    kweights: np.ndarray  # (nK,) loss weights, used as given
    band_weights: np.ndarray  # (nBands,) loss weights u_b
    order_matrix: np.ndarray | None = None  # (nK, nBands) int, indices into ascending eigenvalues
    ref_path: np.ndarray | None = None  # (nK,) column 0 of expBandStruct (plot x-axis)
    ref_bands: np.ndarray | None = None  # (nK, nBands) reference energies in eV
    kpoint_labels: dict[int, str] = field(default_factory=dict)  # row -> `# L` label
    defpot_targets: tuple[DefPotTarget, ...] = ()  # expDefPot_X.par rows (fit_defPot = 1)
    qpoints: np.ndarray | None = None  # (n_q, 3) fractional phonon q (fit_eph = 1)
    qweights: np.ndarray | None = None  # (n_q,) coupling loss weights
    couplings: CouplingTargets | None = None  # expCoupling_X.par (fit_eph = 1)
    files: dict[str, Path] = field(default_factory=dict)  # role -> path actually read

    @property
    def n_kpoints(self) -> int:
        return int(self.kpoints.shape[0])

    @property
    def n_bands(self) -> int:
        return self.settings.n_bands

    @property
    def name(self) -> str:
        """systemName of input_X.par, else the crystal's reduced formula."""
        name = self.settings.system_name
        return self.crystal.formula if name == UNNAMED else name


@dataclass(frozen=True)
class QSpaceTable:
    """Tabulated prior v_s(q): q in 1/Bohr (strictly increasing), values in Hartree·Bohr³."""

    q: np.ndarray  # (n_q,)
    values: np.ndarray  # (n_q, n_species), columns in species order


@dataclass
class Bundle:
    """The data of an input bundle: systems, species and their parameters (no settings)."""

    path: Path
    systems: list[SystemData]
    species: tuple[str, ...]  # sorted unique symbols across all systems
    pp_params: np.ndarray  # (n_species, N_SLOTS) a0..a9 in species order (dpp.slots)
    qspace_prior: QSpaceTable | None = None
    init_model_path: Path | None = None
    init_optimizer_path: Path | None = None

    @property
    def n_species(self) -> int:
        return len(self.species)

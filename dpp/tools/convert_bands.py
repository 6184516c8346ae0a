"""`dpp-convert-bands`: a dpp input bundle for one system from ab-initio band energies.

Sources: Quantum ESPRESSO pw.x text output of a `bands`, `nscf` or `scf` run (read with ASE's
`espresso-out` reader), QE's data-file XML (`<prefix>.save/data-file-schema.xml`) and
BerkeleyGW's `bandstructure.dat` (inteqp/absorption: `spin band kx ky kz E_MF E_QP ΔE`, k in
Cartesian 1/Bohr, energies in eV; the cell comes from `--structure`). Writes a bundle that
`python train.py data.bundle=<folder>` trains as it is:
- system_X.par, kpoints_X.par, expBandStruct_X.par, bandWeights_X.par, input_X.par (maxKE
  suggested, idxVB/idxCB: 0-based columns of the highest valence and lowest conduction band);
- NN_config.par: the defaults of dpp.io.nnconfig.writer (a two-layer 32-32 CELU network,
  1000 pre-fit epochs, 100 epochs); converting another crystal into the same folder with
  `--index 1, 2, ...` sets its nSystem to the number of systems (refused when one is spinor and
  the other not);
- init_<S>Params.par for every species without one (dpp.tools.starting_params: shipped values,
  else Cohen & Bergstresser's form factors, else a scaled analogue; provenance in a comment).
Valence bands: electrons/2 (spinor states: electrons) of the run, or `--valence-bands`, which
is refused when it disagrees with pw.x's highest occupied level or electron count. The default
window (dpp.tools.band_selection) keeps the valence bands above the semicore states and
`--conduction-bands` spatial conduction bands; `--first-band` / `--num-bands` replace it.
Energies are VBM-aligned (VBM = 0) whenever the valence bands are known (`--align auto`).
Spin–orbit and noncollinear runs give spinor states, read once each, not spin-doubled.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import xml.etree.ElementTree as ElementTree
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dpp.errors import InputError
from dpp.io.nnconfig import default_nn_config, defaults_summary, spin_orbit_of, with_n_system
from dpp.io.records import Crystal
from dpp.io.system import read_system
from dpp.io.tables import read_table
from dpp.io.text import read_text
from dpp.io.writers import species_params_text
from dpp.memory import check_cutoff
from dpp.outputs.band_plot import path_distance
from dpp.physics.lattice import reciprocal_vectors
from dpp.tools.band_selection import CONDUCTION_BANDS, default_selection
from dpp.tools.common import (
    description,
    energy_reference,
    points_text,
    refuse_overwrite,
    require,
    right_handed,
    run_tool,
    system_text,
    write_text,
)
from dpp.tools.starting_params import starting_params

if TYPE_CHECKING:
    from ase import Atoms

PROG = "dpp-convert-bands"
FORMATS = ("auto", "espresso-out", "espresso-xml", "bgw")
PW_PER_ATOM = 130
"""Default plane waves per atom of the suggested cutoff (the zinc-blende bundles: 6 Hartree)."""
MIN_MAX_KE = 5.0
"""Lowest suggested cutoff in Hartree."""


@dataclass(frozen=True)
class SourceBands:
    """Band energies read from an ab-initio output.

    energies: (nK, n) in eV for the source bands numbered first_band, first_band + 1, … (1-based,
    as the source numbers them); kpoints: (nK, 3) Cartesian in 1/Bohr. crystal is None when the
    source has no structure (BerkeleyGW). spinor: the bands are spinor states (spin-orbit or
    noncollinear run), None when the source does not say. n_electrons: None when unknown.
    highest_occupied: the run's highest occupied level in eV (pw.x scf/nscf of an insulator),
    None when the source does not give it.
    """

    energies: np.ndarray
    kpoints: np.ndarray
    first_band: int
    crystal: Crystal | None
    spinor: bool | None
    n_electrons: float | None
    highest_occupied: float | None = None


# -- readers ---------------------------------------------------------------------------------
def detect_format(path: Path) -> str:
    """espresso-xml (*.xml), espresso-out (contains 'Program PWSCF') or bgw (8 numeric columns)."""
    if path.suffix.lower() == ".xml":
        return "espresso-xml"
    text = read_text(path)
    if "Program PWSCF" in text:
        return "espresso-out"
    for line in text.splitlines():
        tokens = line.split("#", 1)[0].split()
        if tokens:
            if len(tokens) == 8:
                return "bgw"
            break
    raise InputError(
        path,
        "unknown source format",
        expected="pw.x output, data-file-schema.xml or BerkeleyGW bandstructure.dat",
        hint="pass --format",
    )


def crystal_from_atoms(
    atoms: Atoms, scale: float | None = None, *, codata: str | None = None
) -> Crystal:
    """A Crystal (Bohr) from ASE atoms (Å); `scale` defaults to |a_1|.

    `codata` names the ASE unit set the atoms were read with (ASE's QE reader uses "2006").
    """
    from ase.units import Bohr, create_units

    bohr = Bohr if codata is None else create_units(codata)["Bohr"]
    vectors = np.asarray(atoms.cell.array, dtype=np.float64) / bohr
    if abs(np.linalg.det(vectors)) < 1e-12:
        raise InputError(None, "structure has no 3D cell", expected="a periodic crystal")
    scale = float(np.linalg.norm(vectors[0])) if scale is None else scale
    return right_handed(
        Crystal(
            scale=scale,
            cell=vectors / scale,
            symbols=tuple(atoms.get_chemical_symbols()),
            fractional=np.asarray(atoms.get_scaled_positions(wrap=False), dtype=np.float64),
        )
    )


QE_CODATA = "2006"
"""The constants of Quantum ESPRESSO (and of ASE's QE reader): Bohr and Hartree of CODATA 2006."""
_ALAT = re.compile(r"lattice parameter \(alat\)\s*=\s*([-+0-9.Ee]+)")
_ELECTRONS = re.compile(r"number of electrons\s*=\s*([-+0-9.Ee]+)")
_HIGHEST = re.compile(r"highest occupied(?:, lowest unoccupied)? level \(ev\):\s*([-+0-9.Ee]+)")
_SPINOR = re.compile(r"Noncollinear calculation|Non magnetic calculation with spin-orbit")
"""pw.x's summary of a noncollinear or spin-orbit run (6.7: "Non magnetic calculation with
spin-orbit", "Noncollinear calculation with[out] spin-orbit")."""


def read_espresso_output(path: Path) -> SourceBands:
    """pw.x text output: last structure, its k-points and band energies (eV)."""
    import ase.io

    text = read_text(path)
    try:
        atoms = ase.io.read(path, format="espresso-out", index=-1)
    except Exception as error:  # ASE raises many types on malformed output
        raise InputError(
            path, "cannot read as pw.x output", found=f"{type(error).__name__}: {error}"
        ) from None
    calc = atoms.calc
    if calc is None or not getattr(calc, "kpts", None):
        raise InputError(
            path,
            "no band energies in the output",
            expected="'bands (ev)' blocks after 'End of band structure calculation'",
            hint="with 100 or more k-points pw.x prints them only with verbosity = 'high'",
        )
    if calc.get_number_of_spins() != 1:
        raise InputError(
            path, "spin-polarised (LSDA) run", expected="nspin = 1, or a noncollinear run"
        )
    kfrac = np.asarray(calc.get_ibz_k_points(), dtype=np.float64)
    energies = np.array([calc.get_eigenvalues(kpt=k, spin=0) for k in range(len(kfrac))])
    alat = _ALAT.search(text)
    electrons = _ELECTRONS.search(text)
    highest = _HIGHEST.findall(text)
    crystal = crystal_from_atoms(atoms, float(alat.group(1)) if alat else None, codata=QE_CODATA)
    return SourceBands(
        energies=energies,
        kpoints=kfrac @ reciprocal_vectors(crystal.lattice),
        first_band=1,
        crystal=crystal,
        spinor=_SPINOR.search(text) is not None,
        n_electrons=float(electrons.group(1)) if electrons else None,
        highest_occupied=float(highest[-1]) if highest else None,
    )


def _xml_text(root: ElementTree.Element, path: Path, tag: str) -> str:
    node = root.find(tag)
    if node is None or node.text is None:
        raise InputError(path, "element missing", key=tag, expected="a QE data-file XML")
    return node.text


def _xml_numbers(text: str, path: Path, tag: str) -> np.ndarray:
    try:
        return np.array([float(token) for token in text.split()])
    except ValueError:
        raise InputError(path, "non-numeric element", key=tag, found=repr(text[:40])) from None


def read_espresso_xml(path: Path) -> SourceBands:
    """QE data-file-schema.xml: cell and atoms (Bohr), k (2π/alat), energies (Hartree → eV with
    QE's CODATA 2006 Hartree, as pw.x prints them)."""
    from ase.io.espresso import label_to_symbol
    from ase.units import create_units

    try:
        root = ElementTree.fromstring(read_text(path))
    except ElementTree.ParseError as error:
        raise InputError(path, "not well-formed XML", found=str(error)) from None
    output = root.find("output")
    if output is None:
        raise InputError(path, "no <output> element", expected="a QE data-file-schema.xml")
    structure = output.find("atomic_structure")
    if structure is None or "alat" not in structure.attrib:
        raise InputError(path, "element missing", key="output/atomic_structure")
    alat = float(structure.attrib["alat"])
    vectors = np.array(
        [_xml_numbers(_xml_text(structure, path, f"cell/{a}"), path, a) for a in ("a1", "a2", "a3")]
    )
    atoms = structure.findall("atomic_positions/atom")
    if not atoms:
        raise InputError(path, "element missing", key="output/atomic_structure/atomic_positions")
    positions = np.array([_xml_numbers(atom.text or "", path, "atom") for atom in atoms])
    bands = output.find("band_structure")
    if bands is None:
        raise InputError(path, "element missing", key="output/band_structure")
    if _xml_text(bands, path, "lsda").strip().lower() == "true":
        raise InputError(path, "spin-polarised (LSDA) run", key="lsda", expected="false")
    blocks = bands.findall("ks_energies")
    if not blocks:
        raise InputError(path, "element missing", key="output/band_structure/ks_energies")
    kpoints = np.array(
        [_xml_numbers(_xml_text(b, path, "k_point"), path, "k_point") for b in blocks]
    )
    energies = np.array(
        [_xml_numbers(_xml_text(b, path, "eigenvalues"), path, "eigenvalues") for b in blocks]
    )
    nelec = bands.find("nelec")
    highest = bands.find("highestOccupiedLevel")
    hartree = create_units(QE_CODATA)["Hartree"]
    crystal = Crystal(
        scale=alat,
        cell=vectors / alat,
        symbols=tuple(label_to_symbol(atom.attrib.get("name", "X")) for atom in atoms),
        fractional=positions @ np.linalg.inv(vectors),
    )
    return SourceBands(
        energies=energies * hartree,
        kpoints=kpoints * 2.0 * np.pi / alat,
        first_band=1,
        crystal=right_handed(crystal),
        spinor=_xml_text(bands, path, "noncolin").strip().lower() == "true",
        n_electrons=None if nelec is None or nelec.text is None else float(nelec.text),
        highest_occupied=(
            None
            if highest is None or highest.text is None
            else float(_xml_numbers(highest.text, path, "highestOccupiedLevel")[0]) * hartree
        ),
    )


def read_berkeleygw(path: Path, energy: str = "qp") -> SourceBands:
    """BerkeleyGW bandstructure.dat: rows `spin band kx ky kz E_MF E_QP ΔE` grouped by band.

    k is Cartesian in 1/Bohr (bvec·k·blat, 5 decimals), energies in eV; `energy` picks the
    quasiparticle (qp) or mean-field (mf) column.
    """
    table = read_table(path, min_columns=8)
    spins = table.values[:, 0]
    if np.any(spins != 1):
        raise InputError(path, "spin-polarised data", expected="spin column = 1 everywhere")
    numbers = table.values[:, 1].astype(int)
    column = {"qp": 6, "mf": 5}[energy]
    bands = sorted(set(numbers.tolist()))
    if bands != list(range(bands[0], bands[-1] + 1)):
        raise InputError(path, "band numbers are not contiguous", found=f"{bands}")
    first = numbers == bands[0]
    kpoints = table.values[first, 2:5]
    energies = np.empty((kpoints.shape[0], len(bands)))
    for column_index, band in enumerate(bands):
        rows = numbers == band
        if rows.sum() != kpoints.shape[0] or not np.allclose(
            table.values[rows, 2:5], kpoints, atol=2e-5
        ):
            line = table.lines[int(np.flatnonzero(rows)[0])]
            raise InputError(
                path,
                "bands do not share the same k-points",
                line=line,
                expected=f"{kpoints.shape[0]} k-points as for band {bands[0]}",
                found=f"band {band}",
            )
        energies[:, column_index] = table.values[rows, column]
    return SourceBands(
        energies=energies,
        kpoints=kpoints,
        first_band=bands[0],
        crystal=None,
        spinor=None,
        n_electrons=None,
    )


def read_structure(path: Path, fmt: str | None) -> Crystal:
    """A system_X.par (*.par) or any structure file ASE reads (cell and atoms)."""
    if path.suffix == ".par":
        return read_system(path)
    import ase.io

    try:
        atoms = ase.io.read(path, format=fmt, index=-1)
    except Exception as error:  # ASE raises many types on unreadable files
        raise InputError(
            path, "cannot read the structure", found=f"{type(error).__name__}: {error}"
        ) from None
    return crystal_from_atoms(atoms)


# -- the bundle ------------------------------------------------------------------------------
def suggested_max_ke(
    volume: float, n_atoms: int, n_spatial_bands: int, pw_per_atom: int = PW_PER_ATOM
) -> float:
    """A cutoff |G|²/2 < maxKE (Hartree) giving about `pw_per_atom` plane waves per atom.

    Free-electron count N(E) = Ω (2E)^{3/2} / (6π²) solved for N = max(pw_per_atom·atoms,
    4·bands); rounded up to 0.5 Hartree and at least 5 Hartree. The shipped zinc-blende bundles
    (Ω = 375 Bohr³, 2 atoms) run at 6 Hartree, which 130 per atom reproduces.
    """
    count = max(pw_per_atom * n_atoms, 4 * n_spatial_bands)
    energy = 0.5 * (6.0 * math.pi**2 * count / volume) ** (2.0 / 3.0)
    return max(MIN_MAX_KE, math.ceil(2.0 * energy) / 2.0)


@dataclass(frozen=True)
class Conversion:
    """What goes into the bundle files (energies in eV, k fractional, distances in 1/Bohr).

    weights: one per column of bands; idx_vb / idx_cb: 0-based columns of the highest valence
    and lowest conduction band (None when outside the kept bands or unknown); notes: what was
    kept and why.
    """

    crystal: Crystal
    kpoints: np.ndarray
    distance: np.ndarray
    bands: np.ndarray
    weights: np.ndarray
    spinor: bool
    reference_energy: float
    max_ke: float
    name: str
    idx_vb: int | None = None
    idx_cb: int | None = None
    notes: tuple[str, ...] = ()


def convert(
    source: SourceBands,
    crystal: Crystal,
    *,
    first_band: int | None = None,
    num_bands: int | None = None,
    conduction_bands: int = CONDUCTION_BANDS,
    keep_semicore: bool = False,
    align: str = "auto",
    valence_bands: int | None = None,
    spinor: bool | None = None,
    max_ke: float | None = None,
    pw_per_atom: int = PW_PER_ATOM,
    name: str | None = None,
) -> Conversion:
    """Select the band window, align, spin-double (without spin-orbit) and map k to fractional.

    The highest valence band (1-based source number) is `valence_bands`, checked against the
    run's highest occupied level or electron count, else electrons/2 (spinor: electrons).
    Without first_band and num_bands the window is `default_selection`'s (valence bands above
    the semicore states, `conduction_bands` spatial conduction bands); with either, first_band
    (default: the source's first band) and num_bands source bands (default: all from there).
    align: "auto" (the VBM when the valence bands are known, else none), "none", "vbm" (the
    maximum over k of the highest valence band) or an energy in eV. spinor overrides what the
    source says (default: not spinor).
    """
    spinor = bool(source.spinor) if spinor is None else spinor
    n_valence = valence_band_count(source, valence_bands, spinor)
    available = source.energies.shape[1]
    last_available = source.first_band + available - 1
    if first_band is None and num_bands is None and n_valence is not None:
        selection = default_selection(
            source.energies,
            source.first_band,
            crystal.symbols,
            n_valence,
            spinor,
            conduction_bands,
            keep_semicore,
        )
        first, count, weights, notes = astuple(selection)
    else:
        first = source.first_band if first_band is None else first_band
        count = last_available - first + 1 if num_bands is None else num_bands
        weights = np.ones(max(count, 0))
        why = (
            "as asked"
            if first_band is not None or num_bands is not None
            else "all: the valence bands are unknown; --valence-bands gives the default window"
        )
        notes = (f"kept bands {first}..{first + count - 1} ({why})",)
    if not source.first_band <= first <= last_available:
        raise InputError(
            None,
            "band window outside the source bands",
            key="--first-band",
            expected=f"{source.first_band}..{last_available}",
            found=str(first),
        )
    if count < 1 or first + count - 1 > last_available:
        raise InputError(
            None,
            "band window outside the source bands",
            key="--num-bands",
            expected=f"1..{last_available - first + 1} bands from band {first}",
            found=str(count),
        )
    reference = _reference_energy(source, align, n_valence)
    start = first - source.first_band
    window = source.energies[:, start : start + count] - reference
    copies = 1 if spinor else 2
    kept_valence = None if n_valence is None else n_valence - first + 1
    edges = kept_valence is not None and kept_valence >= 1
    vectors = crystal.lattice
    kfrac = source.kpoints @ vectors.T / (2.0 * np.pi)
    volume = abs(float(np.linalg.det(vectors)))
    cutoff = max_ke or suggested_max_ke(volume, len(crystal.symbols), count, pw_per_atom)
    require(cutoff > 0, "--max-ke", "bad cutoff", "> 0 Hartree", cutoff)
    check_cutoff(volume, cutoff, spinor, file=None, key="--max-ke", hint="lower --max-ke")
    return Conversion(
        crystal=crystal,
        kpoints=kfrac,
        distance=path_distance(kfrac, vectors),
        bands=np.repeat(window, copies, axis=1),
        weights=np.repeat(weights, copies),
        spinor=spinor,
        reference_energy=reference,
        max_ke=cutoff,
        name=name or crystal.formula,
        idx_vb=copies * kept_valence - 1 if edges and kept_valence <= count else None,
        idx_cb=copies * kept_valence if edges and kept_valence < count else None,
        notes=tuple(notes),
    )


HIGHEST_OCCUPIED_TOLERANCE = 0.01
"""eV: how far a band may stray across pw.x's printed highest occupied level (4 decimals)."""


def valence_band_count(source: SourceBands, valence_bands: int | None, spinor: bool) -> int | None:
    """The source number of the highest valence band: `valence_bands` when it agrees with the
    run (its highest occupied level, else its electron count), else electrons/2 (spinor:
    electrons), None when the source says neither and none is given."""
    derived = _from_electrons(source, spinor)
    if valence_bands is None:
        return derived
    last = source.first_band + source.energies.shape[1] - 1
    if not source.first_band <= valence_bands <= last:
        raise InputError(
            None,
            "valence band not in the source",
            key="--valence-bands",
            expected=f"{source.first_band}..{last}",
            found=str(valence_bands),
        )
    homo = source.highest_occupied
    if homo is not None:
        tops = source.energies.max(axis=0)
        bottoms = source.energies.min(axis=0)
        column = valence_bands - source.first_band
        below = tops[column] <= homo + HIGHEST_OCCUPIED_TOLERANCE
        above = column + 1 == len(tops) or bottoms[column + 1] >= homo - HIGHEST_OCCUPIED_TOLERANCE
        if not (below and above):
            occupied = (
                source.first_band
                - 1
                + int(np.count_nonzero(tops <= homo + HIGHEST_OCCUPIED_TOLERANCE))
            )
            raise InputError(
                None,
                "the highest valence band disagrees with pw.x's highest occupied level",
                key="--valence-bands",
                expected=f"{occupied} (the bands up to the highest occupied level {homo:.4f} eV)",
                found=f"{valence_bands} (band {valence_bands} spans "
                f"{bottoms[column]:.4f} to {tops[column]:.4f} eV)",
            )
    elif derived is not None and derived != valence_bands:
        raise InputError(
            None,
            "the highest valence band disagrees with the run's electron count",
            key="--valence-bands",
            expected=f"{derived} ({source.n_electrons:g} electrons, "
            f"{'1 per spinor band' if spinor else '2 per band'})",
            found=str(valence_bands),
        )
    return valence_bands


def _from_electrons(source: SourceBands, spinor: bool) -> int | None:
    """electrons/2 (spinor: electrons); None without an electron count or for an odd one."""
    if source.n_electrons is None:
        return None
    per_band = 1.0 if spinor else 2.0
    count = round(source.n_electrons / per_band)
    return count if abs(count * per_band - source.n_electrons) < 1e-6 else None


def _reference_energy(source: SourceBands, align: str, n_valence: int | None) -> float:
    if align == "auto":
        align = "none" if n_valence is None else "vbm"
    reference = energy_reference(align)
    if reference == "none":
        return 0.0
    if reference != "vbm":
        return float(reference)
    if n_valence is None:
        raise InputError(
            None,
            "the VBM needs the number of valence bands",
            key="--valence-bands",
            expected="the source band number of the highest valence band",
            found="no electron count in the source (or an odd one)",
        )
    return float(np.max(source.energies[:, n_valence - source.first_band]))


def bundle_files(conversion: Conversion, index: int, source_name: str) -> dict[str, str]:
    """File name → text of the per-system files."""
    n_bands = conversion.bands.shape[1]
    table = np.column_stack([conversion.distance, conversion.bands])
    rows = "".join(" ".join(f"{value:.8f}" for value in row) + "\n" for row in table)
    if conversion.reference_energy == 0.0:
        ref = "absolute energies"
    else:
        vbm = "the VBM, " if conversion.idx_vb is not None else ""
        ref = f"energies relative to {vbm}{conversion.reference_energy:.6f} eV"
    header = (
        f"# dpp-convert-bands from {source_name}: path distance (1/Bohr), {n_bands} bands in eV "
        f"({ref}, {'spinor' if conversion.spinor else 'spin-doubled'})\n"
    )
    settings = f"maxKE = {conversion.max_ke:g}\nnBands = {n_bands}\n"
    for key, value in (("idxVB", conversion.idx_vb), ("idxCB", conversion.idx_cb)):
        if value is not None:
            settings += f"{key} = {value}\n"
    return {
        f"system_{index}.par": system_text(conversion.crystal),
        f"kpoints_{index}.par": points_text(
            conversion.kpoints,
            np.ones(len(conversion.kpoints)),
            comment=f"dpp-convert-bands from {source_name}: fractional k on b_j, weight",
        ),
        f"expBandStruct_{index}.par": header + rows,
        f"bandWeights_{index}.par": "".join(f"{w:.1f}\n" for w in conversion.weights),
        f"input_{index}.par": settings + f"systemName = {conversion.name}\n",
    }


def _read_source(args: argparse.Namespace) -> tuple[SourceBands, Crystal]:
    fmt = detect_format(args.source) if args.format == "auto" else args.format
    if fmt == "espresso-out":
        source = read_espresso_output(args.source)
    elif fmt == "espresso-xml":
        source = read_espresso_xml(args.source)
    else:
        source = read_berkeleygw(args.source, args.energy)
    if args.structure is not None:
        return source, read_structure(args.structure, args.structure_format)
    if source.crystal is not None:
        return source, source.crystal
    raise InputError(
        args.source,
        "BerkeleyGW band files hold no structure",
        key="--structure",
        expected="a system_X.par or a structure file (e.g. the pw.x output)",
        found="none",
    )


def _n_systems(folder: Path) -> int:
    count = 0
    while (folder / f"system_{count}.par").exists():
        count += 1
    return count


def nn_config_text(folder: Path, n_system: int, spinor: bool, source_name: str) -> str:
    """The NN_config.par of `folder` for `n_system` systems: the existing one with nSystem
    updated (refused when its spin-orbit switch differs), else the defaults of
    dpp.io.nnconfig.writer."""
    path = folder / "NN_config.par"
    if not path.exists():
        return default_nn_config(
            n_system,
            spinor,
            f"{PROG} defaults (dpp.io.nnconfig.writer), first from {source_name}; edit freely",
        )
    if spin_orbit_of(path) != spinor:
        raise InputError(
            path,
            "spin-orbit switch differs from the converted bands",
            expected=f"{'spinor' if spinor else 'scalar'} bands like the bundle's other systems",
            found=f"{'spinor' if spinor else 'scalar'} bands from {source_name}",
            hint="convert into another folder",
        )
    return with_n_system(path, n_system)


def _convert(args: argparse.Namespace) -> None:
    if args.index < 0:
        raise InputError(
            None, "bad system index", key="--index", expected=">= 0", found=str(args.index)
        )
    if args.conduction_bands < 0:
        raise InputError(
            None,
            "negative band count",
            key="--conduction-bands",
            expected=">= 0",
            found=str(args.conduction_bands),
        )
    present = _n_systems(args.output)
    if args.index > present:
        raise InputError(
            args.output / f"system_{present}.par",
            "system index leaves a gap",
            key="--index",
            expected=f"0..{present} (the folder holds systems 0..{present - 1})"
            if present
            else "0 (the folder holds no system yet)",
            found=str(args.index),
        )
    source, crystal = _read_source(args)
    conversion = convert(
        source,
        crystal,
        first_band=args.first_band,
        num_bands=args.num_bands,
        conduction_bands=args.conduction_bands,
        keep_semicore=args.keep_semicore,
        align=args.align,
        valence_bands=args.valence_bands,
        spinor=True if args.spin_orbit else None,
        max_ke=args.max_ke,
        pw_per_atom=args.pw_per_atom,
        name=args.name,
    )
    folder: Path = args.output
    files = bundle_files(conversion, args.index, args.source.name)
    refuse_overwrite((folder / name for name in files), args.force)
    n_system = max(present, args.index + 1)
    config = nn_config_text(folder, n_system, conversion.spinor, args.source.name)
    for name, text in files.items():
        write_text(folder / name, text)
    write_text(folder / "NN_config.par", config)
    print(f"wrote {', '.join(files)}, NN_config.par in {folder}")
    for note in conversion.notes:
        print(f"  {note}")
    edges = (
        f", idxVB = {conversion.idx_vb}, idxCB = {conversion.idx_cb}"
        if conversion.idx_vb is not None
        else ""
    )
    print(
        f"  {len(conversion.kpoints)} k-points, nBands = {conversion.bands.shape[1]} "
        f"({'spinor' if conversion.spinor else 'spin-doubled'}){edges}, maxKE = "
        f"{conversion.max_ke:g} Hartree (suggested; check convergence), reference energy "
        f"{conversion.reference_energy:.6f} eV"
    )
    for symbol in dict.fromkeys(conversion.crystal.symbols):
        target = folder / f"init_{symbol}Params.par"
        entry = starting_params(symbol)
        if target.exists():
            print(f"  kept existing {target.name}")
        elif entry is None:
            print(f"  no starting parameters for {symbol}: write {target.name} yourself (a0..a8)")
        else:
            params, provenance = entry
            text = species_params_text(params)
            write_text(target, f"# a0..a8 of {symbol}: {provenance}\n{text}")
            print(f"  wrote {target.name} ({provenance})")
    if conversion.spinor:
        print("  spinor reference: evaluate and fit it with the spin-orbit Hamiltonian")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=description(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="The bundle trains as written: `python train.py data.bundle=<folder>`.\n"
        f"NN_config.par: dpp's defaults for converted bundles ({defaults_summary()};\n  "
        "edit freely); a later --index updates its number of systems.\n"
        "init_<S>Params.par (provenance in a comment): shipped values, else a Wang-Zunger fit "
        "to\n  Cohen & Bergstresser, Phys. Rev. 141, 789 (1966), else the nearest-sized "
        "element with the\n  same s+p valence scaled by the covalent radii (N from P, C from "
        "Si).\n"
        "Default window: the valence bands above the semicore states (the bands beyond the "
        "s+p\n  electrons, e.g. Ga 3d) and --conduction-bands, VBM = 0; the output says "
        "what was kept.\n"
        "maxKE rule: about --pw-per-atom plane waves per atom (free-electron count "
        "Ω(2E)^{3/2}/6π²),\n  at least 5 Hartree; always check convergence of your bands.",
    )
    parser.add_argument("source", type=Path, help="pw.x output, data-file-schema.xml or BGW file")
    parser.add_argument("--format", choices=FORMATS, default="auto", help="source format")
    parser.add_argument(
        "--structure", type=Path, help="cell and atoms: a system_X.par or any ASE-readable file"
    )
    parser.add_argument("--structure-format", help="ASE format name of --structure")
    parser.add_argument(
        "--energy", choices=("qp", "mf"), default="qp", help="BerkeleyGW column (default qp)"
    )
    parser.add_argument(
        "--first-band",
        type=int,
        help="first source band to keep (1-based source numbering); with --num-bands it "
        "replaces the default window",
    )
    parser.add_argument("--num-bands", type=int, help="number of source bands to keep")
    parser.add_argument(
        "--conduction-bands",
        type=int,
        default=CONDUCTION_BANDS,
        help=f"spatial conduction bands of the default window (default {CONDUCTION_BANDS}; "
        "spinor: twice as many states)",
    )
    parser.add_argument(
        "--keep-semicore",
        action="store_true",
        help="keep the semicore bands below the s+p valence bands in the default window",
    )
    parser.add_argument(
        "--align",
        default="auto",
        help="energy reference: auto (the VBM when the valence bands are known, else none), "
        "vbm, none (absolute), or an energy in eV subtracted from all",
    )
    parser.add_argument(
        "--valence-bands",
        type=int,
        help="number of valence bands = source number of the highest valence band (default: "
        "electrons/2 of QE runs, electrons with spinor states); refused when it disagrees "
        "with pw.x's highest occupied level or electron count",
    )
    parser.add_argument(
        "--spin-orbit",
        action="store_true",
        help="the source bands are spinor states (detected for QE; needed for BerkeleyGW)",
    )
    parser.add_argument(
        "--index",
        type=int,
        default=0,
        help="system index X of the files; convert crystal after crystal into one folder with "
        "--index 0, 1, ... (NN_config.par's number of systems follows)",
    )
    parser.add_argument("--name", help="systemName (default: formula)")
    parser.add_argument("--max-ke", type=float, help="cutoff in Hartree instead of the suggestion")
    parser.add_argument(
        "--pw-per-atom", type=int, default=PW_PER_ATOM, help="plane waves per atom of the rule"
    )
    parser.add_argument("-o", "--output", type=Path, default=Path("."), help="bundle folder")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `dpp-convert-bands`."""
    return run_tool(build_parser(), argv, _convert)


if __name__ == "__main__":
    sys.exit(main())

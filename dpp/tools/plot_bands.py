"""`dpp-plot-bands`: band-structure figure from band files (`d E_0 E_1 …`, energies in eV).

Each file (an expBandStruct_X.par or a dpp `*_BS_sysX.dat`/`bands_sysX.dat`) is one panel,
drawn as lines, with an optional reference drawn as points. With `--bundle`, system X of the
bundle supplies the k-path (high-symmetry ticks from labels or from the path's corners, x = Σ|Δk|
in 1/Bohr), the band weights, the system name and, unless `--reference` is given, the
reference bands of expBandStruct_X.par; without band files the references of the systems
`--index` are plotted alone.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from dpp.errors import InputError
from dpp.io.bundle import read_system_data
from dpp.io.tables import read_table
from dpp.memory import check_fits
from dpp.outputs.band_plot import BandPanel, band_figure
from dpp.tools.common import (
    description,
    energy_reference,
    refuse_overwrite,
    require,
    run_tool,
)

PROG = "dpp-plot-bands"
DEFAULT_IMAGE = "bands.png"
PIXEL_BYTES = 8
"""Bytes per pixel of the image being drawn and written (RGBA canvas and its copy)."""
_INDEX = re.compile(r"(?:sys|_)(\d+)(?:\.\w+)?$")


def read_band_table(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Column 0 (path coordinate) and the energies (nK, nB) in eV of a band file."""
    table = read_table(path, min_columns=2)
    return table.values[:, 0].copy(), table.values[:, 1:].copy()


def system_index(path: Path) -> int:
    """X from a name like `epoch_5_BS_sys2.dat`, `bands_sys0.dat` or `expBandStruct_1.par`."""
    match = _INDEX.search(path.name)
    if match is None:
        raise InputError(
            path, "cannot tell the system index", key="--index", expected="--index X per file"
        )
    return int(match.group(1))


def bundle_panel(
    folder: Path, index: int, bands: np.ndarray | None, reference: np.ndarray | None
) -> BandPanel:
    """A panel with the k-path, name and (if `reference` is None) the reference of system
    `index` of the bundle in `folder`, and the band weights when there is a reference."""
    system = read_system_data(folder, index, require_reference=False)
    if reference is None:
        reference = system.ref_bands
    if bands is not None and bands.shape[0] != system.n_kpoints:
        raise InputError(
            system.files["kpoints"],
            "the band file and the k-points differ in length",
            expected=f"{system.n_kpoints} rows",
            found=f"{bands.shape[0]}",
        )
    return BandPanel(
        model=bands,
        reference=reference,
        kpoints=system.kpoints,
        cell=system.crystal.lattice,
        labels=system.kpoint_labels or None,
        band_weights=None if reference is None else system.band_weights,
        name=system.name,
    )


def _plot(args: argparse.Namespace) -> None:
    files: list[Path | None] = list(args.bands)
    indices: list[int | None] = list(args.index or [])
    if not files:
        if args.bundle is None or args.reference:
            raise InputError(
                None, "nothing to plot", expected="band files, or --bundle alone (its references)"
            )
        indices = indices or [0]
        files = [None] * len(indices)
    references = args.reference or [None] * len(files)
    indices = indices or [None] * len(files)
    if len(references) != len(files) or len(indices) != len(files):
        raise InputError(
            None,
            "one --reference and --index per band file",
            expected=f"{len(files)} values",
            found=f"{len(references)} references, {len(indices)} indices",
        )
    align = energy_reference(args.align)
    if args.window is not None:
        low, high = args.window
        found = f"{low:g} {high:g}"
        require(low < high, "--window", "empty energy window", "LOW < HIGH (eV)", found)
    require(args.dpi >= 1, "--dpi", "bad resolution", "dots per inch >= 1", args.dpi)
    if args.output.is_dir():
        args.output = args.output / DEFAULT_IMAGE
    if align == "vbm" and args.valence_bands is None:
        raise InputError(None, "--align vbm needs --valence-bands", key="--valence-bands")
    refuse_overwrite([args.output], args.force)
    n_valence = args.valence_bands
    panels = []
    for path, reference_path, index in zip(files, references, indices, strict=True):
        if path is None:
            panels.append(
                replace(bundle_panel(args.bundle, index, None, None), n_valence=n_valence)
            )
            continue
        distance, bands = read_band_table(path)
        reference = None if reference_path is None else read_band_table(reference_path)[1]
        if reference is not None and reference.shape[0] != bands.shape[0]:
            raise InputError(
                reference_path,
                "reference and band file differ in length",
                expected=f"{bands.shape[0]} rows",
                found=f"{reference.shape[0]}",
            )
        if args.bundle is not None:
            panel = bundle_panel(
                args.bundle, system_index(path) if index is None else index, bands, reference
            )
        else:
            panel = BandPanel(model=bands, reference=reference, distance=distance, name=path.stem)
        panels.append(replace(panel, n_valence=n_valence))
    try:
        figure = band_figure(
            panels,
            energy_reference=align,
            energy_window=tuple(args.window) if args.window else None,
            model_label=args.label,
            reference_label=args.reference_label,
            distance_unit=args.distance_unit,
        )
    except ValueError as error:  # inconsistent tables, or a VBM column that does not exist
        raise InputError(None, str(error), key="--valence-bands") from None
    width, height = figure.get_size_inches() * args.dpi
    check_fits(
        width * height * PIXEL_BYTES,
        f"a {width:.0f} x {height:.0f} pixel image",
        file=None,
        key="--dpi",
        found=str(args.dpi),
        hint="lower --dpi",
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.output, dpi=args.dpi)
    print(f"wrote {args.output}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=description(__doc__))
    parser.add_argument(
        "bands",
        type=Path,
        nargs="*",
        help="band files, one panel each (none: the references of --bundle systems --index)",
    )
    parser.add_argument("--reference", type=Path, nargs="+", help="reference file per band file")
    parser.add_argument("--bundle", type=Path, help="bundle folder giving k-path, weights, name")
    parser.add_argument(
        "--index", type=int, nargs="+", help="system index per file (default: from the file name)"
    )
    parser.add_argument(
        "--align", default="none", help="energy reference: none, vbm or an energy in eV"
    )
    parser.add_argument(
        "--valence-bands",
        type=int,
        help="number of valence columns (spin-doubled count without spin-orbit), for vbm",
    )
    parser.add_argument("--window", type=float, nargs=2, help="energy range in eV")
    parser.add_argument("--label", default="model", help="legend label of the lines")
    parser.add_argument("--reference-label", default="reference", help="legend label of points")
    parser.add_argument(
        "--distance-unit", default="1/Bohr", help="unit of column 0 when there is no bundle"
    )
    parser.add_argument("--dpi", type=int, default=150, help="resolution of the image")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path(DEFAULT_IMAGE),
        help=f"image file (a folder: {DEFAULT_IMAGE} in it)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing image")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `dpp-plot-bands`."""
    return run_tool(build_parser(), argv, _plot)


if __name__ == "__main__":
    sys.exit(main())

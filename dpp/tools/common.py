"""Shared pieces of the toolkit commands: CLI wrapper, bundle/model loading, file writers.

Lengths are in Bohr, k-points fractional on the reciprocal basis b_j, energies in eV.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dpp.errors import InputError, SettingError
from dpp.io.records import Bundle, Crystal
from dpp.io.writers import write_text_atomic
from dpp.memory import check_cutoff

if TYPE_CHECKING:
    from ase import Atoms
    from torch import nn

    from dpp.physics import PseudopotentialHamiltonian


def run_tool(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    action: Callable[[argparse.Namespace], None],
) -> int:
    """Parse `argv` and run `action`; return the exit code.

    `--help` returns 0 and a usage error 2 (argparse's codes) instead of raising SystemExit;
    an InputError becomes one line `<prog>: <message>` on stderr and exit code 2.
    """
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        check_finite(parser, args)
        action(args)
    except InputError as error:
        sys.stderr.write(f"{parser.prog}: {error}\n")
        return 2
    return 0


def check_finite(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Every number of the command line is finite (argparse's float takes nan and inf)."""
    for action in parser._actions:
        value = getattr(args, action.dest, None)
        values = value if isinstance(value, list | tuple) else [value]
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            option = max(action.option_strings, key=len) if action.option_strings else action.dest
            raise InputError(
                None, "not a finite number", key=option, expected="a finite number", found=value
            )


def require(ok: bool, key: str, problem: str, expected: str, found: object) -> None:
    """InputError about option `key` unless `ok`."""
    if not ok:
        raise InputError(None, problem, key=key, expected=expected, found=str(found))


def description(doc: str) -> str:
    """The argparse description from a tool's module docstring: its first line after the colon."""
    text = doc.splitlines()[0].split(": ", 1)[1]
    return text[0].upper() + text[1:]


def refuse_overwrite(paths: Iterable[Path], force: bool) -> None:
    """InputError naming the first existing path unless `force`."""
    if force:
        return
    for path in paths:
        if path.exists():
            raise InputError(
                path,
                "output file exists",
                expected="a path that does not exist yet",
                found="an existing file",
                hint="pass --force to overwrite",
            )


# -- geometry and file formats -----------------------------------------------------------------
def right_handed(crystal: Crystal) -> Crystal:
    """The crystal with all lattice vectors and fractional coordinates negated if its cell is
    left-handed (the same atoms in space), else the crystal itself."""
    if np.linalg.det(crystal.cell) > 0:
        return crystal
    return Crystal(crystal.scale, -crystal.cell, crystal.symbols, -crystal.fractional)


def spglib_cell(crystal: Crystal) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """The crystal as spglib's (lattice vectors in Bohr, fractional positions, atom numbers);
    the numbers are 1-based indices into the sorted species."""
    species = sorted(set(crystal.symbols))
    return (
        crystal.lattice,
        np.asarray(crystal.fractional, dtype=np.float64),
        [species.index(symbol) + 1 for symbol in crystal.symbols],
    )


@contextmanager
def quiet_spglib() -> Iterator[None]:
    """Silence the DeprecationWarning of spglib >= 2.5 about its legacy (None-on-failure)
    error API."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def energy_reference(text: str) -> str | float:
    """The `--align` value: "none", "vbm" or an energy in eV; InputError otherwise."""
    if text in ("none", "vbm"):
        return text
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    require(math.isfinite(value), "--align", "bad energy reference", "none, vbm or eV", text)
    return value


def ase_atoms(crystal: Crystal) -> Atoms:
    """The crystal as periodic `ase.Atoms` (ASE units: Å); unknown symbols become dummies."""
    from ase import Atoms
    from ase.data import atomic_numbers
    from ase.units import Bohr

    numbers = [atomic_numbers.get(symbol, 0) for symbol in crystal.symbols]
    return Atoms(
        numbers=numbers,
        cell=crystal.lattice * Bohr,
        scaled_positions=np.asarray(crystal.fractional, dtype=np.float64),
        pbc=True,
    )


def _fixed(value: float) -> str:
    """12 decimals, never `-0.000000000000`."""
    return f"{round(float(value), 12) + 0.0:15.12f}"


def system_text(crystal: Crystal) -> str:
    """system_X.par text: `scale = <Bohr>`, the cell rows and the fractional atoms (no
    comments, which the original cannot read there)."""
    lines = [f"scale = {crystal.scale:.10f}", "", "cell"]
    lines += ["  ".join(_fixed(value) for value in row) for row in crystal.cell]
    lines += ["", "atoms"]
    lines += [
        f"{symbol:<3s} " + "  ".join(_fixed(value) for value in position)
        for symbol, position in zip(crystal.symbols, crystal.fractional, strict=True)
    ]
    return "\n".join(lines) + "\n"


def points_text(
    kpoints: np.ndarray,
    weights: np.ndarray,
    labels: Mapping[int, str] | None = None,
    comment: str = "",
) -> str:
    """kpoints_X.par text: `k1 k2 k3 w` rows, a label as a trailing `# label` comment."""
    labels = labels or {}
    lines = [f"# {comment}"] if comment else []
    for row, (point, weight) in enumerate(zip(kpoints, weights, strict=True)):
        line = " ".join(_fixed(value) for value in point) + f"  {weight:g}"
        if row in labels:
            line += f"   # {labels[row]}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def write_text(path: Path, text: str) -> Path:
    """Write `text` atomically, creating the folder; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(path, text)


# -- bundles and models ------------------------------------------------------------------------
def load_system_bundle(folder: Path, index: int, max_ke: float | None = None) -> Bundle:
    """The bundle in `folder` reduced to system `index`, with an optional cutoff (Hartree).

    Species and their parameter table are those of the whole bundle; reference bands are not
    required.
    """
    from dpp.io import load_bundle

    bundle = load_bundle(folder, require_reference=False)
    if not 0 <= index < len(bundle.systems):
        raise InputError(
            folder,
            "no such system",
            key="--system",
            expected=f"an index in 0..{len(bundle.systems) - 1}",
            found=str(index),
        )
    system = bundle.systems[index]
    if max_ke is not None:
        if max_ke <= 0:
            raise InputError(None, "bad cutoff", key="--max-ke", expected="> 0", found=f"{max_ke}")
        system = replace(system, settings=replace(system.settings, max_ke=max_ke))
    check_cutoff(
        abs(float(np.linalg.det(system.crystal.lattice))),
        system.settings.max_ke,
        False,
        n_species=bundle.n_species,
        file=None if max_ke is not None else system.files.get("input"),
        key="--max-ke" if max_ke is not None else "maxKE",
        hint="lower --max-ke",
    )
    return replace(bundle, systems=[system])


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Options selecting the local potential: analytic (default) or a network checkpoint."""
    group = parser.add_argument_group(
        "model", "default: the analytic Wang-Zunger form of the bundle's init_<S>Params.par"
    )
    group.add_argument("--checkpoint", type=Path, help="network state_dict (.pth) to evaluate")
    group.add_argument(
        "--model",
        help="model class of the checkpoint (catalogue name, e.g. Net_relu_xavier_decay2)",
    )
    group.add_argument(
        "--hidden", type=int, nargs="+", default=[20, 20, 20], help="hidden layer widths"
    )
    group.add_argument("--gaussian-std", type=float, help="Gaussian gate width σ (1/Bohr)")
    group.add_argument("--decay-rate", type=float, help="logistic gate steepness")
    group.add_argument("--decay-center", type=float, help="logistic gate centre (1/Bohr)")
    group.add_argument(
        "--scale", type=float, nargs="+", help="gate factors, one per species (scale classes)"
    )


def add_physics_arguments(parser: argparse.ArgumentParser) -> None:
    """System selection, cutoff and the physics switches passed to build_hamiltonian."""
    parser.add_argument("bundle", type=Path, help="input bundle folder")
    parser.add_argument("--system", type=int, default=0, help="system index X (default 0)")
    parser.add_argument("--max-ke", type=float, help="cutoff on |G|²/2 in Hartree (default: maxKE)")
    parser.add_argument(
        "--spin-orbit", action="store_true", help="spinor Hamiltonian with spin-orbit and nonlocal"
    )
    parser.add_argument(
        "--basis-search",
        choices=("complete", "legacy"),
        default="complete",
        help="plane-wave sphere (default) or the original's incomplete integer box",
    )


_MODEL_OPTIONS = {
    "hidden_layers": "--hidden",
    "decay_rate": "--decay-rate",
    "decay_center": "--decay-center",
    "gaussian_std": "--gaussian-std",
    "scale": "--scale",
}
"""build_model argument → the option that sets it (for error messages)."""


def model_from_arguments(args: argparse.Namespace, n_species: int) -> nn.Module | None:
    """None (analytic form) or the checkpoint network described by the model options."""
    if args.checkpoint is None:
        if args.model is not None:
            raise InputError(
                None, "--model given without --checkpoint", key="--checkpoint", expected="a .pth"
            )
        return None
    if args.model is None:
        raise InputError(
            args.checkpoint,
            "a checkpoint needs its model class",
            key="--model",
            expected="e.g. --model Net_celu_HeInit_decayGaussian",
            found="none",
        )
    from dpp.models import build_model, load_checkpoint

    try:
        model = build_model(
            args.model,
            args.hidden,
            n_species,
            decay_rate=args.decay_rate,
            decay_center=args.decay_center,
            gaussian_std=args.gaussian_std,
            scale=args.scale,
        )
    except SettingError as error:
        raise InputError(
            args.checkpoint,
            error.problem,
            key=_MODEL_OPTIONS.get(error.setting, "--model"),
            expected=error.expected,
            found=repr(error.found),
        ) from None
    load_checkpoint(model, args.checkpoint)
    return model.eval()


def hamiltonian_from_arguments(
    args: argparse.Namespace,
) -> tuple[Bundle, PseudopotentialHamiltonian]:
    """(bundle reduced to `--system`, PseudopotentialHamiltonian) from the shared options."""
    from dpp.physics import build_hamiltonian

    bundle = load_system_bundle(args.bundle, args.system, args.max_ke)
    model = model_from_arguments(args, len(bundle.species))
    hamiltonian = build_hamiltonian(
        bundle, model, spin_orbit=args.spin_orbit, basis_search=args.basis_search
    )
    return bundle, hamiltonian

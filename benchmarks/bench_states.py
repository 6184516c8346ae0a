"""Band-edge states of passivated nanocrystals: wall time and peak memory per size, and
the scaling exponent of time with the number of atoms.

Every size runs in its own process (its peak resident memory is its own; its solver
progress goes to stderr). A run folder of
train.py, or a checkpoint and bundle (a run folder is written for them):

    python benchmarks/bench_states.py --run <train.py run dir> --diameters 1.5 2 2.5 3
    python benchmarks/bench_states.py \
        --checkpoint tests/data/extras/nn_zbCdSe/epoch_199_PPmodel.pth \
        --model Net_relu_xavier_decay2 --bundle dpp/data/examples/zb_CdSe --diameters 1.5

`--coarse-ke` sets the cutoff continuation as dpp-states' `solver.coarse_ke` (default: its
default; `--coarse-ke` with no value: off, the direct solve).
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from dpp.physics import AUTOEV
from dpp.run import load_run
from dpp.states.continuation import solve_box
from dpp.states.edges import LigandPotential
from dpp.states.settings import LigandSettings, SolverSettings, StructureSettings
from dpp.states.workflow import cutoff_levels, structures

STATES_CONFIG = Path(__file__).resolve().parent.parent / "conf" / "states.yaml"
"""dpp-states' configuration: the ligands of its defaults passivate the dots here too."""


def default_ligands() -> dict[str, LigandSettings]:
    """The ligand pseudo-atoms of conf/states.yaml, by host species."""
    section = yaml.safe_load(STATES_CONFIG.read_text())["ligands"]
    return {host: LigandSettings(**values) for host, values in section.items()}


def one_size(args: argparse.Namespace) -> dict:
    """Solve one nanocrystal as dpp-states does (cutoff continuation through --coarse-ke);
    its numbers as a dict (time from the first box built, bulk band edges excluded)."""
    run = load_run(args.run)
    solver = SolverSettings(
        max_ke=args.max_ke,
        coarse_ke=tuple(args.coarse_ke),
        valence_bands=args.valence_bands,
        n_valence=args.states,
        n_conduction=args.states,
        tol=args.tol,
        max_iter=args.max_iter,
        device=args.device,
    )
    levels = cutoff_levels(run, solver)
    ligands = default_ligands()
    shape = StructureSettings(diameters_nm=(args.one,), margin_nm=args.margin_nm)
    ((_, structure, _),) = structures(run, shape, ligands)
    gaussians = {host: LigandPotential(g.amplitude, g.width) for host, g in ligands.items()}
    began = time.perf_counter()
    solve = solve_box(structure, levels, gaussians, solver)
    seconds = time.perf_counter() - began
    states = solve.states
    return {
        "diameter_nm": args.one,
        "atoms": len(structure.kinds),
        "host_atoms": structure.n_host_atoms,
        "plane_waves": solve.hamiltonian.n_basis,
        "grid": list(solve.hamiltonian.shape),
        "seconds": seconds,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "gap_ev": states.gap * AUTOEV,
        "iterations": [states.valence.iterations, states.conduction.iterations],
        "applications": states.valence.applications + states.conduction.applications,
        "levels": [
            {"max_ke": level.max_ke, "plane_waves": n, "applications": a, "seconds": t}
            for level, n, a, t in zip(
                levels, solve.plane_waves, solve.applications, solve.seconds, strict=True
            )
        ],
        "converged": states.converged,
    }


def run_folder(args: argparse.Namespace, folder: Path) -> Path:
    """A minimal train.py run folder holding the checkpoint as its best state."""
    config = {
        "data": {"bundle": str(Path(args.bundle).resolve())},
        "model": {"name": args.model, "hidden_layers": args.hidden_layers},
        "hamiltonian": {"basis_search": "complete"},
    }
    (folder / "config_resolved.yaml").write_text(yaml.safe_dump(config))
    shutil.copy(args.checkpoint, folder / "best_PPmodel.pth")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path)
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--bundle", type=Path, default=Path("dpp/data/examples/zb_CdSe"))
    parser.add_argument("--model", default="Net_relu_xavier_decay2")
    parser.add_argument("--hidden-layers", type=int, nargs="+", default=[20, 20, 20])
    parser.add_argument("--diameters", type=float, nargs="+", default=[1.5, 2.0, 2.5, 3.0])
    parser.add_argument("--states", type=int, default=4, help="valence and conduction states")
    parser.add_argument("--valence-bands", type=int, default=4)
    parser.add_argument("--margin-nm", type=float, default=0.6)
    parser.add_argument("--max-ke", type=float, default=None, help="Hartree (default: fit's)")
    parser.add_argument(
        "--coarse-ke",
        type=float,
        nargs="*",
        default=list(SolverSettings.coarse_ke),
        help="continuation cutoffs, Hartree, ascending (none: off; default: dpp-states')",
    )
    parser.add_argument("--tol", type=float, default=1e-4, help="residual, Hartree")
    parser.add_argument("--max-iter", type=int, default=500, help="LOBPCG iterations per solve")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--one", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
        print(json.dumps(one_size(args)))
        return
    with tempfile.TemporaryDirectory() as scratch:
        if args.run is None:
            args.run = run_folder(args, Path(scratch))
        rows = []
        for diameter in args.diameters:
            command = [sys.executable, __file__, *sys.argv[1:], "--run", str(args.run)]
            command += ["--one", str(diameter)]
            done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
            row = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(
                f"{row['diameter_nm']:4.1f} nm  {row['atoms']:5d} atoms "
                f"({row['host_atoms']} host)  {row['plane_waves']:8d} PW  "
                f"grid {'x'.join(map(str, row['grid']))}  {row['seconds']:8.1f} s "
                f"({1000 * row['seconds'] / row['atoms']:.1f} ms/atom)  "
                f"peak {row['peak_mb']:.0f} MB ({row['peak_mb'] / row['atoms']:.2f} MB/atom)  "
                f"gap {row['gap_ev']:.3f} eV  iterations {row['iterations']}  "
                f"H applications {row['applications']}  "
                f"levels {[(lv['max_ke'], lv['applications']) for lv in row['levels']]}  "
                f"{'converged' if row['converged'] else 'NOT converged'}",
                flush=True,
            )
    if len(rows) > 1:
        atoms = np.log([r["atoms"] for r in rows])
        seconds = np.log([r["seconds"] for r in rows])
        exponent = np.polyfit(atoms, seconds, 1)[0]
        print(f"time ~ atoms^{exponent:.2f}")


if __name__ == "__main__":
    main()

"""Real DFT bands end to end: convert → fit → report → evaluate off the training set.

Takes the Quantum ESPRESSO pw.x band structures shipped in tests/data/qe, converts each
training crystal with `dpp-convert-bands` at its default options, fits it with
`python train.py data.bundle=<converted> trainer.max_epochs=N` (no hand-written file), and
evaluates the fitted potential, not retrained and at the training crystal's cutoff, on the
±2 % hydrostatically strained copies and on another polytype with
`python evaluate.py run=<fit> data.bundle=<other>`. Prints, per crystal, what the physics
reports say: the VBM-aligned band RMS (meV), the gap error, the turning points of every
species' v(q) and the transfer RMS.

    python benchmarks/real_data.py                          # Si, AlAs, GaAs, wurtzite GaN
    python benchmarks/real_data.py --cases si --epochs 30   # one crystal, a short fit
    python benchmarks/real_data.py --joint si alas          # one fit of two crystals
    python benchmarks/real_data.py --cases si -- loss.smoothness=1e-5  # extra train.py overrides
    python benchmarks/real_data.py --work w --reuse         # evaluate the fits in w again

The strained copies are judged on the bands that were fitted: they take the training
crystal's band weights (the converter weighs a band entangled with the semicore bands 0,
and whether it is can change with the strain).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from dpp.outputs.physics_report import REPORT_FILE

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data" / "qe"
TRANSFER = {
    "si": ("si_a098", "si_a102", "si_hex"),
    "alas": ("alas_a098", "alas_a102"),
    "gaas": ("gaas_a098", "gaas_a102"),
    "gan_wz": ("gan_wz_a098", "gan_wz_a102", "gan_zb"),
}
"""Training crystal → the bundles its potential is evaluated on without retraining."""
QUIET = ["trainer.enable_progress_bar=false", "outputs.converge_plots=false"]


@dataclass
class Report:
    """What a fit's physics report says of each system: RMS (meV), gap error (meV)."""

    rms: list[float] = field(default_factory=list)
    gap_error: list[float] = field(default_factory=list)


def run(command: list[str], log: Path) -> None:
    """Run `command` from the repository, output to `log`; exit with its tail on failure."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    with log.open("w") as out:
        done = subprocess.run(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=env)
    if done.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}\n{tail}")


def convert(cases: list[str], folder: Path, work: Path, max_ke: float | None = None) -> Path:
    """One bundle of `cases` (system indices in order) by dpp-convert-bands' defaults, at the
    cutoff `max_ke` (Hartree) when given."""
    for index, case in enumerate(cases):
        source = DATA / case / "bands.pwo"
        command = ["dpp-convert-bands", str(source), "-o", str(folder), "--index", str(index)]
        command += ["--force"]
        if max_ke is not None:
            command += ["--max-ke", str(max_ke)]
        run(command, work / f"convert_{folder.name}_{index}.log")
    return folder


def cutoff(bundle: Path, index: int) -> float:
    """maxKE (Hartree) of system `index` of a bundle."""
    text = (bundle / f"input_{index}.par").read_text()
    return float(re.search(r"maxKE\s*=\s*([-+0-9.eE]+)", text).group(1))


def read_report(path: Path) -> Report:
    """The band RMS and gap error of every system in a physics report (the first state)."""
    text = path.read_text().split("\n## ")[1]
    report = Report()
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| band RMS"):
            report.rms.append(float(cells[2]))
        elif line.startswith("| band gap"):
            report.gap_error.append(float(cells[3].split()[0]))
    return report


def turning_points(log: Path) -> str:
    """The last 'turning points of v(q)' of a train.log."""
    found = re.findall(r"turning points of v\(q\): (.*)", log.read_text())
    return found[-1] if found else "n/a"


def same_bands(target: Path, bundle: Path, index: int) -> None:
    """Give a strained copy (the same crystal: as many bands, the same idxVB) the band
    weights of the training crystal, so that its errors are over the bands that were fitted:
    the converter weighs a band entangled with the semicore bands 0, and whether it is
    entangled can change with the strain (GaN's second N 2s band)."""
    pattern = r"(nBands|idxVB)\s*=\s*(\d+)"
    ours = re.findall(pattern, (target / "input_0.par").read_text())
    theirs = re.findall(pattern, (bundle / f"input_{index}.par").read_text())
    if sorted(ours) == sorted(theirs):
        shutil.copyfile(bundle / f"bandWeights_{index}.par", target / "bandWeights_0.par")


def fit_and_transfer(
    cases: list[str], epochs: int, work: Path, overrides: list[str], reuse: bool
) -> None:
    name = "+".join(cases)
    fit = work / f"fit_{name}"
    bundle = work / f"bundle_{name}"
    if not (reuse and (fit / REPORT_FILE).is_file()):
        convert(cases, bundle, work)
        run(
            [sys.executable, "train.py", f"data.bundle={bundle}", f"trainer.max_epochs={epochs}",
             f"hydra.run.dir={fit}", *QUIET, *overrides],
            work / f"train_{name}.log",
        )  # fmt: skip
    trained = read_report(fit / REPORT_FILE)
    print(f"\n{name}: {epochs} epochs, turning points of v(q): {turning_points(fit / 'train.log')}")
    for case, rms, gap in zip(cases, trained.rms, trained.gap_error, strict=True):
        print(f"  {case:12s} training   RMS {rms:7.1f} meV   gap error {gap:+7.1f} meV")
    for index, case in enumerate(cases):
        for other in TRANSFER.get(case, ()):
            if not (DATA / other).is_dir():
                continue
            # the same cutoff as the training crystal: the cutoff is part of the model
            target = convert([other], work / f"bundle_{other}_{name}", work, cutoff(bundle, index))
            same_bands(target, bundle, index)
            out = work / f"eval_{other}_{name}"
            run(
                [sys.executable, "evaluate.py", f"run={fit}", f"data.bundle={target}",
                 "state=final", f"hydra.run.dir={out}", *QUIET],
                work / f"evaluate_{other}_{name}.log",
            )  # fmt: skip
            moved = read_report(out / REPORT_FILE)
            print(
                f"  {other:12s} transfer   RMS {moved.rms[0]:7.1f} meV   "
                f"gap error {moved.gap_error[0]:+7.1f} meV"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=list(TRANSFER), help="training crystals")
    parser.add_argument("--joint", nargs="+", help="fit these crystals together instead")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary one)")
    parser.add_argument(
        "--reuse", action="store_true", help="keep the fits already in --work; evaluate again"
    )
    parser.add_argument("overrides", nargs="*", help="extra train.py overrides (after --)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="dpp_real_data_"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"working folder {work}")
    groups = [args.joint] if args.joint else [[case] for case in args.cases]
    for cases in groups:
        fit_and_transfer(cases, args.epochs, work, args.overrides, args.reuse)


if __name__ == "__main__":
    main()

"""Time to quality: wall seconds for dpp's default recipe (Gauss–Newton) to reach the loss the
original's recipe reaches in N epochs, against the original's time for those N epochs.

    python benchmarks/time_to_quality.py tests/data/InGaAsP --epochs 200 --fresh \
        --original-epoch-seconds S
    python benchmarks/time_to_quality.py dpp/data/examples/zb_CdSe --epochs 20 \
        --original-epoch-seconds S

Both recipes train the same bundle in one process, one CPU thread, from the same start: the
bundle's init_PPmodel.pth (with `--fresh` each recipe runs its own Wang–Zunger pre-fit, as the
original does with its recipe, and neither pre-fit is timed). `recipe=legacy` reproduces the
original's trajectory; its best training loss
(eV²) over the N epochs is the target (the original keeps its best state). The default
recipe then trains for at most `--max-epochs` epochs (default N); its time to the target
runs from the end of the initialisation to the log line of the first epoch whose loss (the
state that epoch starts from) is at or below the target, so it includes that epoch's step
(an upper bound). The original's per-epoch wall time S (s) is a measured input: the ratio
printed is N·S over the default's time to the target.

S on InGaAsP: 64.2 s per epoch, the process CPU time (utime + stime, sampled each second
from /proc) between the original's `Epoch [k/6]` lines for epochs 2–4 (66.3, 62.2, 64.1 s).
It was measured with the original research code (TommyLinkl/DeePseudopot at a317799, kept
outside this repository) on a copy of tests/data/InGaAsP with `max_num_epochs = 6`, one
thread, from the bundle's init_PPmodel.pth, with its separateKptGrad path and its
initialisation excluded:

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python main.py <copy>/ <results>/

scipy ≥ 1.15 lacks `scipy.integrate.quadrature`, which the original imports but never
calls, so a placeholder name was set before the import. The 2-core machine was loaded 3.5
to 8 times, which put the wall time per epoch at 199–307 s. CPU time is what an epoch costs
on a core of its own. This script's times are wall times on the same loaded machine, so the
ratio is a lower bound. Measured (December 2026):

- `tests/data/InGaAsP --epochs 200 --original-epoch-seconds 64.2`: legacy best 317.934 eV²
  (from 325.742; the original's own first epoch was 326.103) in 200 epochs (709.6 s); the
  default recipe reaches 287.842 eV² at epoch 2, 19.0 s: ratio 675.
- The same with `--fresh`: legacy best 460.465 eV² in 200 epochs (329.5 s); the default
  recipe reaches 225.903 eV² at epoch 3, 16.9 s: ratio 759.
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import tempfile
from pathlib import Path

from fit_quality import fit

from dpp.app.cli import quiet_third_parties

EPOCH_LINE = re.compile(r"epoch (\d+)/\d+: loss")


class EpochClock(logging.Handler):
    """Wall-clock times of the initialisation record and of every epoch's log line."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.start: float | None = None
        self.epochs: dict[int, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.name == "dpp.fitting.initialise" and message.startswith("initialisation"):
            self.start = record.created
        elif match := EPOCH_LINE.match(message):
            self.epochs[int(match.group(1))] = record.created

    def seconds_to(self, epoch: int) -> float:
        """Seconds from the end of the initialisation to `epoch`'s log line."""
        if self.start is None:
            raise RuntimeError("no initialisation record: is the dpp log at level INFO?")
        return self.epochs[epoch] - self.start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--epochs", type=int, required=True, help="N: the original's epochs")
    parser.add_argument(
        "--original-epoch-seconds", type=float, required=True, help="S: its wall s per epoch"
    )
    parser.add_argument("--max-epochs", type=int, default=None, help="default recipe's cap")
    parser.add_argument("--prefit", type=int, default=None, help="pre-fit epochs (init)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fresh", action="store_true", help="ignore init_PPmodel.pth")
    args = parser.parse_args()
    if args.epochs < 1 or not args.original_epoch_seconds > 0:
        parser.error("--epochs must be >= 1 and --original-epoch-seconds > 0")
    quiet_third_parties()
    clock = EpochClock()
    logger = logging.getLogger("dpp")
    logger.setLevel(logging.INFO)
    logger.addHandler(clock)
    common = [f"seed={args.seed}"]
    if args.prefit is not None:
        common.append(f"init.num_epochs={args.prefit}")
    with tempfile.TemporaryDirectory() as scratch:
        bundle = args.bundle.resolve()
        if args.fresh:
            bundle = Path(shutil.copytree(bundle, Path(scratch) / "bundle"))
            (bundle / "init_PPmodel.pth").unlink(missing_ok=True)
        epochs = [f"trainer.max_epochs={args.epochs}"]
        legacy, _, legacy_seconds = fit(
            bundle, [*common, *epochs, "recipe=legacy"], Path(scratch) / "legacy"
        )
        target = min(legacy)
        cap = args.max_epochs or args.epochs
        clock.epochs.clear()
        default, _, _ = fit(
            bundle, [*common, f"trainer.max_epochs={cap}"], Path(scratch) / "default"
        )
    original = args.epochs * args.original_epoch_seconds
    print(f"bundle {args.bundle}, seed {args.seed}, 1 thread")
    print(
        f"original's recipe (recipe=legacy): best {target:.6g} eV^2 in {args.epochs} epochs; "
        f"original {original:.1f} s ({args.original_epoch_seconds:g} s/epoch), "
        f"dpp's legacy recipe {legacy_seconds:.1f} s"
    )
    reached = next((e for e, cost in enumerate(default, start=1) if cost <= target), None)
    if reached is None:
        print(f"default recipe: best {min(default):.6g} eV^2, target not reached in {cap} epochs")
        return
    seconds = clock.seconds_to(reached)
    print(f"default recipe: {default[reached - 1]:.6g} eV^2 at epoch {reached}, {seconds:.1f} s")
    print(f"time to quality: original / default = {original / seconds:.3g}")


if __name__ == "__main__":
    main()

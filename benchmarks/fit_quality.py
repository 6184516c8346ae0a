"""Fit quality of training recipes: the original's (recipe=legacy) against dpp's default
(recipe=gauss_newton) and recipe=lbfgs.

    python benchmarks/fit_quality.py dpp/data/examples/zb_CdSe
    python benchmarks/fit_quality.py tests/data/InGaAsP --epochs 200 --prefit 1000 --fresh \
        --seed 0 1 2

For each seed, every recipe trains the same bundle from the same initial network for the same
number of epochs (one optimiser step per epoch; Gauss–Newton stops earlier when it has
converged) in one process, one CPU thread each, and the script prints the final and best
training losses (eV²), the worst jump after the first epochs (loss / running best), the
passes over all k-points the fit took (the machine-independent cost: one per epoch for Adam,
more for L-BFGS's line search and Gauss–Newton's rejected trials) and the
wall time; then, per recipe, the legacy recipe's best loss over its best loss for each seed
and their geometric mean, at the same epochs and within the legacy recipe's passes.
`--fresh` starts from the Wang–Zunger pre-fit instead of the bundle's init_PPmodel.pth;
extra `--recipe NAME=override,override` options compare other settings.
"""

from __future__ import annotations

import argparse
import copy
import csv
import math
import shutil
import tempfile
import time
from pathlib import Path

from omegaconf import open_dict

from dpp.app.cli import quiet_third_parties
from dpp.app.compose import prepare
from dpp.app.run import run

RECIPES = {"legacy": ["recipe=legacy"], "default": [], "lbfgs": ["recipe=lbfgs"]}
QUIET = [
    "logger=csv",
    "trainer.enable_progress_bar=false",
    "outputs.converge_plots=false",
    "outputs.n_qgrid=64",
    "outputs.n_rgrid=64",
    "outputs.ft_n_qgrid=128",
    "num_threads=1",
]


def _costs(path: Path) -> list[float]:
    rows = [line.split() for line in path.read_text().splitlines()]
    return [float(value) for epoch, value in rows if int(epoch) > 0]


def _worst_jump(costs: list[float], skip: int) -> float:
    """Largest loss / running best after the first `skip` epochs."""
    best, worst = math.inf, 1.0
    for epoch, value in enumerate(costs):
        if epoch >= skip and best < math.inf:
            worst = max(worst, value / best)
        best = min(best, value)
    return worst


def _passes(work: Path) -> list[int]:
    """Loss-and-gradient passes taken up to each epoch, from the run's csv log."""
    with open(work / "csv" / "metrics.csv", newline="") as stream:
        return [int(float(row["passes"])) for row in csv.DictReader(stream) if row.get("passes")]


def _best_within(costs: list[float], passes: list[int], budget: int) -> float:
    """The best training loss of the epochs whose passes fit in `budget`."""
    return min(cost for cost, taken in zip(costs, passes, strict=True) if taken <= budget)


def fit(bundle: Path, overrides: list[str], work: Path) -> tuple[list[float], list[int], float]:
    """Train in-process into `work`; returns the training losses, the passes taken up to
    each epoch and the wall time (s)."""
    arguments = [f"data.bundle={bundle}", *QUIET, *overrides]
    prepared = prepare("train", arguments)
    cfg = copy.deepcopy(prepared.config)
    with open_dict(cfg):
        del cfg["hydra"]
    start = time.perf_counter()
    run(cfg, run_dir=work, overrides=arguments, prepared=prepared)
    seconds = time.perf_counter() - start
    return _costs(work / "final_training_cost.dat"), _passes(work), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--prefit", type=int, default=None, help="pre-fit epochs (init)")
    parser.add_argument("--seed", type=int, nargs="+", default=[0], help="one fit per seed")
    parser.add_argument("--fresh", action="store_true", help="ignore init_PPmodel.pth")
    parser.add_argument("--skip", type=int, default=3, help="epochs before jumps count")
    parser.add_argument("--recipe", action="append", default=[], help="NAME=override,...")
    parser.add_argument("--only", action="append", default=[], help="run only these recipes")
    parser.add_argument("--trace", action="store_true", help="print every epoch's loss")
    args = parser.parse_args()
    quiet_third_parties()
    recipes = dict(RECIPES)
    for text in args.recipe:
        name, _, overrides = text.partition("=")
        recipes[name] = [o for o in overrides.split(",") if o]
    if args.only:
        if unknown := set(args.only) - set(recipes):
            parser.error(f"--only: no recipe {sorted(unknown)}; known: {sorted(recipes)}")
        recipes = {name: r for name, r in recipes.items() if name in args.only}  # legacy first
    common = [f"trainer.max_epochs={args.epochs}"]
    common.append(f"trainer.check_val_every_n_epoch={args.epochs}")
    if args.prefit is not None:
        common.append(f"init.num_epochs={args.prefit}")
    best: dict[str, list[float]] = {name: [] for name in recipes}
    at_legacy_cost: dict[str, list[float]] = {name: [] for name in recipes}
    with tempfile.TemporaryDirectory() as scratch:
        bundle = args.bundle.resolve()
        if args.fresh:
            bundle = Path(shutil.copytree(bundle, Path(scratch) / "bundle"))
            (bundle / "init_PPmodel.pth").unlink(missing_ok=True)
        print(
            f"{'recipe':<12} {'seed':>4} {'final':>12} {'best':>12} {'best epoch':>10} "
            f"{'worst jump':>10} {'passes':>6} {'time (s)':>9}"
        )
        for seed in args.seed:
            budget = None
            for name, overrides in recipes.items():
                work = Path(scratch) / f"{name}_seed{seed}"
                costs, passes, seconds = fit(bundle, [*common, f"seed={seed}", *overrides], work)
                best[name].append(min(costs))
                if name == "legacy":
                    budget = passes[-1]
                if budget is not None:
                    at_legacy_cost[name].append(_best_within(costs, passes, budget))
                print(
                    f"{name:<12} {seed:4d} {costs[-1]:12.6g} {best[name][-1]:12.6g} "
                    f"{costs.index(best[name][-1]) + 1:10d} "
                    f"{_worst_jump(costs, args.skip):10.3g} {passes[-1]:6d} {seconds:9.1f}",
                    flush=True,
                )
                if args.trace:
                    print("    " + " ".join(f"{c:.4g}" for c in costs), flush=True)
    if "legacy" in best:
        for name in [name for name in best if name != "legacy"]:
            for words, mine in (("", best), (" within legacy's passes", at_legacy_cost)):
                ratios = [old / new for old, new in zip(best["legacy"], mine[name], strict=True)]
                mean = math.exp(sum(map(math.log, ratios)) / len(ratios))
                listed = " ".join(f"{r:.3g}" for r in ratios)
                print(f"legacy best / {name} best{words}: {listed} (geometric mean {mean:.3g})")


if __name__ == "__main__":
    main()

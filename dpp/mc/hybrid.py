"""Hybrid chains: turn a Monte Carlo result into the input bundle of the next stage.

`python -m dpp.mc.hybrid <mc_run_dir> <bundle> <new_bundle> [--final]` copies `bundle` to
`new_bundle` and replaces every init_<S>Params.par by best_<S>Params.dat (or
final_<S>Params.dat) of the run, so the next stage's Zunger pre-fit fits the network to the
Monte Carlo curves. A stale init_PPmodel.pth is removed (it would bypass the pre-fit).
"""

from __future__ import annotations

import argparse
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

from dpp.errors import InputError
from dpp.io.params import params_path, read_species_params
from dpp.io.writers import write_species_params

log = logging.getLogger(__name__)


def next_stage_bundle(
    run_dir: str | Path, bundle: str | Path, new_bundle: str | Path, *, which: str = "best"
) -> Path:
    """Copy `bundle` to `new_bundle` with init_<S>Params.par from `<which>_<S>Params.dat`."""
    run_dir, bundle, new_bundle = Path(run_dir), Path(bundle), Path(new_bundle)
    if new_bundle.exists():
        raise InputError(new_bundle, "target bundle exists", expected="a new folder name")
    species = sorted(
        p.name[len("init_") : -len("Params.par")] for p in bundle.glob("init_*Params.par")
    )
    sources = {s: run_dir / f"{which}_{s}Params.dat" for s in species}
    for symbol, source in sources.items():
        if not source.is_file():
            raise InputError(
                source,
                "Monte Carlo parameter file not found",
                key=symbol,
                expected=f"{which}_{symbol}Params.dat in the run folder",
            )
    shutil.copytree(bundle, new_bundle)
    (new_bundle / "init_PPmodel.pth").unlink(missing_ok=True)
    for symbol, source in sources.items():
        write_species_params(params_path(new_bundle, symbol), read_species_params(source))
    log.info("wrote %s with %s parameters of %s", new_bundle, which, run_dir)
    return new_bundle


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dpp.mc.hybrid", description=__doc__)
    parser.add_argument("run_dir", help="Monte Carlo output folder")
    parser.add_argument("bundle", help="input bundle of the Monte Carlo run")
    parser.add_argument("new_bundle", help="folder to create for the next stage")
    parser.add_argument("--final", action="store_true", help="use final_ instead of best_")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        next_stage_bundle(
            args.run_dir, args.bundle, args.new_bundle, which="final" if args.final else "best"
        )
    except InputError as error:
        raise SystemExit(f"error: {error}") from None


if __name__ == "__main__":
    main()

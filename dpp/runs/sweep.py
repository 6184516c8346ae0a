"""Write the summary tables of a sweep of runs (a Hydra multirun), best first.

One table of overrides -> final validation loss (eV², a weighted sum of squared band errors)
and the weighted RMS band error behind it (meV), from the `job_result.json` every job leaves
in its folder.

For a sweep that was cut short:

    python -m dpp.app.sweep_summary multirun/2025-01-31/12-00-00
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
from pathlib import Path
from typing import Any

from dpp.io.writers import FINAL_RESULT, write_text_atomic

log = logging.getLogger(__name__)

JOB_RESULT = "job_result.json"
SUMMARY_CSV, SUMMARY_MD = "sweep_summary.csv", "sweep_summary.md"


def band_rms(run_dir: Path) -> float | None:
    """The job's weighted RMS band error (meV) from its final_result.json, if written."""
    path = run_dir / FINAL_RESULT
    return json.loads(path.read_text()).get("band_rms_meV") if path.is_file() else None


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.10g}"


def _rank(result: dict[str, Any]) -> tuple[bool, float, int]:
    loss = result["final_loss"]
    missing = loss is None or math.isnan(loss)
    return missing, 0.0 if missing else loss, result["job"]


def collect(sweep_dir: Path) -> list[dict[str, Any]]:
    """The job results under `sweep_dir`, best (lowest final loss) first."""
    results = [json.loads(p.read_text()) for p in sorted(sweep_dir.rglob(JOB_RESULT))]
    return sorted(results, key=_rank)


def write_summary(sweep_dir: Path) -> Path | None:
    """`sweep_summary.csv` and `.md` in `sweep_dir`; returns the CSV path (None: no jobs)."""
    results = collect(sweep_dir)
    if not results:
        log.warning("no %s under %s: no sweep summary", JOB_RESULT, sweep_dir)
        return None
    values = [dict(o.partition("=")[::2] for o in r["overrides"]) for r in results]
    keys = list(dict.fromkeys(key for job in values for key in job))
    if len(results) > 1:  # the swept overrides only, not those shared by every job
        keys = [key for key in keys if len({job.get(key) for job in values}) > 1]
    header = ["job", *keys, "final_loss_eV2", "band_rms_meV", "status"]
    rows = [
        [
            str(result["job"]),
            *(job.get(key, "") for key in keys),
            _number(result["final_loss"]),
            _number(result.get("band_rms_meV")),
            result["status"],
        ]
        for result, job in zip(results, values, strict=True)
    ]
    csv_path = sweep_dir / SUMMARY_CSV
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    write_text_atomic(sweep_dir / SUMMARY_MD, "\n".join(lines) + "\n")
    log.info("sweep summary of %d jobs: %s (best: job %s)", len(rows), csv_path, rows[0][0])
    return csv_path


def main(argv: list[str] | None = None) -> None:
    """Write the summary of the sweep folder given on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="the multirun directory of the sweep")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if write_summary(args.sweep_dir) is None:
        raise SystemExit(1)

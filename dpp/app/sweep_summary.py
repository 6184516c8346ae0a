"""Sweep summary of a Hydra multirun (the tables: dpp.runs.sweep).

`SweepSummary` is a Hydra callback (conf/train.yaml, `hydra.callbacks`): every job writes
`job_result.json` into its own directory, and at the end of the multirun the summary is
written into the sweep directory as `sweep_summary.csv` and `sweep_summary.md`, best first.
It works with every launcher (basic, joblib, submitit), because the jobs leave files behind.
For a sweep that was cut short:

    python -m dpp.app.sweep_summary multirun/2025-01-31/12-00-00
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from dpp.io.writers import write_text_atomic
from dpp.runs.sweep import JOB_RESULT, band_rms, main, write_summary
from dpp.training.strategy import is_global_zero


class SweepSummary(Callback):
    """Writes each multirun job's result and, at the end, the sweep summary."""

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        hydra = job_return.hydra_cfg.hydra
        if hydra.mode != RunMode.MULTIRUN or not is_global_zero():
            return
        completed = job_return.status == JobStatus.COMPLETED
        run_dir = Path(hydra.runtime.output_dir)
        result = {
            "job": int(hydra.job.num),
            "overrides": list(job_return.overrides or []),
            "status": job_return.status.name,
            "final_loss": float(job_return.return_value) if completed else None,
            "band_rms_meV": band_rms(run_dir) if completed else None,
        }
        if not completed:
            result["error"] = repr(job_return._return_value)
        path = run_dir / JOB_RESULT
        write_text_atomic(path, json.dumps(result, indent=2) + "\n")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        write_summary(Path(config.hydra.sweep.dir))


if __name__ == "__main__":
    main()

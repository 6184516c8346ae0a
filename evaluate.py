"""Evaluate band structures: `python evaluate.py run=<run dir>` (that run's settings and best
state), or `python evaluate.py data.bundle=/path checkpoint=/path/model.pth`.

Writes bands_sys<i>.dat and a plot per system into the run directory and logs per-system
weighted MSEs; without a checkpoint or run the analytic form is evaluated.
"""

from dpp.app.cli import main

if __name__ == "__main__":
    main("evaluate")

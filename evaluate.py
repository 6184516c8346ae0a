"""Evaluate band structures: `python evaluate.py data.bundle=/path checkpoint=/path/model.pth`.

Writes bands_sys<i>.dat and a plot per system into the run directory and logs per-system
weighted MSEs; without `checkpoint` the analytic form is evaluated.
"""

import hydra
from omegaconf import DictConfig

from dpp.training.app import entry


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> float:
    return entry(cfg)


if __name__ == "__main__":
    main()

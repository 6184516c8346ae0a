"""Train a pseudopotential: `python train.py [data.bundle=/path/to/inputs] [overrides...]`.

Without arguments the embedded zinc-blende CdSe example runs. See README.md and conf/.
"""

import hydra
from omegaconf import DictConfig

from dpp.training.app import entry


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    return entry(cfg)


if __name__ == "__main__":
    main()

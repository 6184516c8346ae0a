"""Entry point shared by train.py and evaluate.py: run, and turn bad input into one message."""

from __future__ import annotations

import logging
import sys

from omegaconf import DictConfig

from dpp.errors import InputError
from dpp.training.workflow import run

log = logging.getLogger("dpp")


def entry(cfg: DictConfig) -> float:
    """Run the workflow of `cfg`; an InputError is logged as one line and exits with code 2."""
    # Lightning logs this note at every checkpoint save; the resume checkpoint is our own file
    logging.getLogger("pytorch_lightning.trainer.connectors.checkpoint_connector").setLevel(
        logging.WARNING
    )
    try:
        return run(cfg)
    except InputError as error:
        log.error("%s", error)
        sys.exit(2)

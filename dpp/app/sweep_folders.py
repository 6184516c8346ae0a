"""The output folder of every job of a basic-sweeper multirun, checked before any job
starts: two jobs that would write into one folder (a `hydra.sweep.subdir` that does not
tell them apart) are refused, instead of the second overwriting the first."""

from __future__ import annotations

import copy

from hydra._internal.config_loader_impl import get_overrides_dirname
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from dpp.errors import InputError


def _task_overrides(overrides: list[str]) -> list[str]:
    return [o for o in overrides if not o.lstrip("+~").startswith(("hydra.", "hydra/"))]


def job_folders(cfg: DictConfig, overrides: list[str]) -> list[str]:
    """`hydra.sweep.subdir` of every job of the sweep over `overrides`, in job order, from the
    composed configuration without the sweeps (`cfg`, `hydra` included): each job's values
    are set on a copy (config-group choices are not re-composed)."""
    parser = OverridesParser.create()
    jobs = BasicSweeper.split_arguments(parser.parse_overrides(_task_overrides(overrides)), None)
    dirname = cfg.hydra.job.config.override_dirname
    groups = set(OmegaConf.select(cfg, "hydra.runtime.choices", default={}) or {})
    folders = []
    for number, job in enumerate(jobs[0]):
        parsed = parser.parse_overrides(job)
        job_cfg = copy.deepcopy(cfg)
        with open_dict(job_cfg):
            for override in parsed:
                key = override.key_or_group
                if not (key in groups or "/" in key or "@" in key):
                    OmegaConf.update(job_cfg, key, override.value(), force_add=True)
            job_cfg.hydra.job.num = number
            job_cfg.hydra.job.override_dirname = get_overrides_dirname(
                parsed,
                exclude_keys=list(dirname.exclude_keys),
                item_sep=dirname.item_sep,
                kv_sep=dirname.kv_sep,
            )
        folders.append(str(OmegaConf.select(job_cfg, "hydra.sweep.subdir")))
    return folders


def check_job_folders(cfg: DictConfig, overrides: list[str]) -> None:
    """Refuse a basic-sweeper multirun in which two jobs share an output folder."""
    sweeper = str(OmegaConf.select(cfg, "hydra.sweeper._target_", default=""))
    if not sweeper.endswith("BasicSweeper"):
        return
    try:
        folders = job_folders(cfg, overrides)
    except OmegaConfBaseException:
        return  # a subdir that needs the launcher's own values: Hydra resolves it per job
    first: dict[str, int] = {}
    for number, folder in enumerate(folders):
        if folder in first:
            raise InputError(
                "command line",
                "jobs of the sweep would share an output folder",
                key="hydra.sweep.subdir",
                expected="a subdir that differs between jobs (the default ${hydra.job.num})",
                found=f"jobs {first[folder]} and {number} both in "
                f"{OmegaConf.select(cfg, 'hydra.sweep.dir')}/{folder}",
            )
        first[folder] = number

"""What a finished run folder holds: which state (best or final) to use, and its tables."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from dpp.errors import InputError
from dpp.io.params import read_species_params
from dpp.io.records import Bundle

STATES = ("best", "final")
RESOLVED_CONFIG = "config_resolved.yaml"
"""The resolved configuration every run writes into its folder."""


MAX_SAME_NAME = 1000
"""Most runs that `new_run_folder` numbers under one name."""


def new_run_folder(folder: Path) -> Path:
    """Create and return a folder no other run has: `folder` itself, or `folder_1`,
    `folder_2`, … when it exists (runs started in the same second with a timestamped run
    directory). The creation is atomic, so two processes never get the same folder."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    for number in range(MAX_SAME_NAME):
        candidate = folder if number == 0 else folder.with_name(f"{folder.name}_{number}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise InputError(
        folder,
        "no new run directory",
        key="hydra.run.dir",
        expected=f"fewer than {MAX_SAME_NAME} run directories under this name",
        found=f"{folder.name} to {folder.name}_{MAX_SAME_NAME - 1} all exist",
        hint="choose another hydra.run.dir",
    )


def read_run_config(run: Path) -> tuple[Path, dict[str, Any]]:
    """The run folder's resolved configuration as plain data (YAML read safely, nothing
    interpolated or instantiated), with the file it came from."""
    file = run / RESOLVED_CONFIG
    if not file.is_file():
        raise InputError(
            file,
            "not a dpp run folder",
            key="run",
            expected=f"{RESOLVED_CONFIG} written by train.py",
            found="no such file",
        )
    try:
        config = yaml.safe_load(file.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else "unreadable"
        raise InputError(file, "unreadable run configuration", found=first) from None
    if not isinstance(config, dict):
        raise InputError(file, "not a configuration", expected="a mapping", found=type(config))
    return file, config


def run_state(run: Path, preferred: str = "best") -> tuple[Path | None, str]:
    """The state of an earlier run to use: `preferred` (best or final), else the other
    (network file or None, and the prefix of its parameter tables)."""
    if preferred not in STATES:
        raise InputError(
            run, "unknown run state", key="state", expected=" or ".join(STATES), found=preferred
        )
    for which in (preferred, "final" if preferred == "best" else "best"):
        if any(run.glob(f"{which}_*Params.dat")) or (run / f"{which}_PPmodel.pth").is_file():
            network = run / f"{which}_PPmodel.pth"
            return (network if network.is_file() else None), which
    raise InputError(
        run,
        "no results to evaluate",
        key="run",
        expected="best_* or final_* files of a run",
        found="none",
    )


def with_run_tables(bundle: Bundle, run: Path, which: str) -> Bundle:
    """The bundle with a0..a9 of the run's `<which>_<S>Params.dat` when present."""
    files = [run / f"{which}_{s}Params.dat" for s in bundle.species]
    if not all(f.is_file() for f in files):
        return bundle
    return replace(bundle, pp_params=np.array([read_species_params(f) for f in files]))


def _literal(file: Path, key: str, value: Any) -> Any:
    """A value of a saved run configuration as data: scalars and lists of scalars, no
    interpolation, resolver or object to build (the folder may come from someone else)."""
    if isinstance(value, list):
        return [_literal(file, f"{key}[{i}]", item) for i, item in enumerate(value)]
    if isinstance(value, dict) or (isinstance(value, str) and "${" in value):
        raise InputError(
            file,
            "a saved setting that the configuration would evaluate",
            key=key,
            expected="a literal value (numbers, text, lists)",
            found=repr(value),
        )
    return value


def saved_sections(run: Path, targets: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """The sections `targets` of an earlier run's resolved configuration, as literal values
    checked against the settings classes each may name (`targets[section]`, the first the
    one conf/ builds now): a section naming another `_target_` is refused, so the folder
    never chooses what is built."""
    file, saved = read_run_config(run)
    settings: dict[str, Any] = {}
    for section, known in targets.items():
        values = saved.get(section)
        if values is None:
            continue
        if not isinstance(values, dict):
            raise InputError(
                file, "not a settings section", key=section, expected="a mapping", found=values
            )
        values = dict(values)
        target, allowed = values.pop("_target_", None), known[0]
        if target not in (None, *known):
            raise InputError(
                file,
                "a saved setting names another class to build",
                key=f"{section}._target_",
                expected=allowed,
                found=repr(target),
            )
        for key in values:
            if str(key).startswith("_"):
                raise InputError(
                    file,
                    "a saved setting that the configuration would evaluate",
                    key=f"{section}.{key}",
                    expected="a setting of " + allowed,
                    found=repr(key),
                )
        settings[section] = {k: _literal(file, f"{section}.{k}", v) for k, v in values.items()}
    return settings

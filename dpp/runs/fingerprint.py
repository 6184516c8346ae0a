"""The identity of a run: its bundle (the files' SHA-256, species, k-point counts, basis
sizes) and the settings that shape its model. Recorded in `<run dir>/fingerprint.json` when
a run starts; a resume with another identity is refused, naming what differs."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from dpp.errors import InputError
from dpp.io.bundle import CONFIG_NAME
from dpp.io.data import DataSettings
from dpp.io.records import Bundle
from dpp.io.writers import write_text_atomic
from dpp.models import ModelSettings
from dpp.physics import PhysicsOptions

log = logging.getLogger("dpp")
FINGERPRINT_NAME = "fingerprint.json"
SHAPING_PHYSICS = (
    "spin_orbit",
    "basis_search",
    "long_range_with_nn",
    "nonlocal_without_soc",
    "nonlocal_s",
    "legacy_batchnorm",
)
"""The PhysicsOptions that change the model (not how fast it is computed)."""
UNSHAPING_MODEL = ("gradient_checkpointing",)
"""ModelSettings fields that change only memory and time."""
SHOWN = 3
"""Differences named in a refusal."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def bundle_hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every file of the bundle folder but NN_config.par (whose settings count
    through the run's settings: a resume may change the number of epochs)."""
    return {
        path.name: _sha256(path)
        for path in sorted(folder.iterdir())
        if path.is_file() and path.name != CONFIG_NAME
    }


def fingerprint(
    bundle: Bundle,
    basis_sizes: list[int],
    model_settings: ModelSettings,
    physics_options: PhysicsOptions,
    data: DataSettings,
) -> dict[str, Any]:
    """The identity of a run as JSON-ready values."""
    model = dataclasses.asdict(model_settings)
    physics = dataclasses.asdict(physics_options)
    identity = {
        "files": bundle_hashes(bundle.path),
        "species": list(bundle.species),
        "kpoints": [system.n_kpoints for system in bundle.systems],
        "basis_sizes": list(basis_sizes),
        "model": {k: v for k, v in model.items() if k not in UNSHAPING_MODEL},
        "physics": {k: physics[k] for k in SHAPING_PHYSICS},
        "n_system": data.n_system,
        "legacy_fifth_param": data.legacy_fifth_param,
    }
    return json.loads(json.dumps(identity, default=str))


def record(run_dir: Path, identity: dict[str, Any]) -> None:
    """Write `<run_dir>/fingerprint.json`."""
    write_text_atomic(run_dir / FINGERPRINT_NAME, json.dumps(identity, indent=2) + "\n")


def _differences(saved: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs, the bundle's facts and the settings first, then the changed files."""
    found = []
    for key, value in now.items():
        if key == "files":
            continue
        then = saved.get(key)
        if isinstance(value, dict) and isinstance(then, dict):
            found += [
                f"{key}.{k} {then.get(k)!r} -> {v!r}" for k, v in value.items() if then.get(k) != v
            ]
        elif then != value:
            found.append(f"{key} {then!r} -> {value!r}")
    files_then, files_now = saved.get("files", {}), now["files"]
    for name in sorted(set(files_then) | set(files_now)):
        if name not in files_now:
            found.append(f"bundle file {name} missing")
        elif name not in files_then:
            found.append(f"bundle file {name} added")
        elif files_then[name] != files_now[name]:
            found.append(f"bundle file {name} changed")
    return found


def check_resume(run_dir: Path, identity: dict[str, Any]) -> None:
    """Refuse to resume the run of `run_dir` with another bundle or model; a run directory
    without a fingerprint (an older dpp) resumes with a warning."""
    file = run_dir / FINGERPRINT_NAME
    if not file.is_file():
        log.warning("%s has no %s: the resume cannot check its bundle", run_dir, FINGERPRINT_NAME)
        return
    _compare(
        file,
        identity,
        run_dir,
        "resume",
        "resume with another bundle or model",
        "resume with the same bundle and settings, or start a new hydra.run.dir",
    )


def run_of_checkpoint(path: Path) -> Path | None:
    """The run directory that wrote the Lightning checkpoint `path` (`<run>/checkpoints/…`,
    or the checkpoint's own folder) when it holds a fingerprint, else None."""
    for folder in (path.parent, path.parent.parent):
        if (folder / FINGERPRINT_NAME).is_file():
            return folder
    return None


def check_checkpoint(path: Path, identity: dict[str, Any]) -> None:
    """Refuse `ckpt_path=<path>` from a run of another bundle or model, as `check_resume`;
    a checkpoint outside any run directory with a fingerprint resumes with a warning."""
    run = run_of_checkpoint(path)
    if run is None:
        log.warning(
            "%s is not in a run directory with a %s: the resume cannot check its bundle",
            path,
            FINGERPRINT_NAME,
        )
        return
    _compare(
        run / FINGERPRINT_NAME,
        identity,
        path,
        "ckpt_path",
        f"checkpoint of a run ({run}) with another bundle or model",
        "start from a checkpoint of a run with this bundle and settings, or without ckpt_path",
    )


def _compare(
    file: Path, identity: dict[str, Any], where: Path, key: str, problem: str, hint: str
) -> None:
    """Refuse (`where`, `key`, `problem`, `hint`) when the fingerprint in `file` is not
    `identity`, naming the first differences."""
    try:
        saved = json.loads(file.read_text())
    except (OSError, ValueError) as error:
        raise InputError(
            file, "unreadable run fingerprint", expected="JSON written by dpp", found=str(error)
        ) from None
    differences = _differences(saved if isinstance(saved, dict) else {}, identity)
    if differences:
        more = len(differences) - SHOWN
        found = "; ".join(differences[:SHOWN]) + (f"; and {more} more" if more > 0 else "")
        raise InputError(
            where,
            problem,
            key=key,
            expected="the bundle and model settings of the run being resumed",
            found=found,
            hint=hint,
        )

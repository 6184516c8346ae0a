"""A fitted run folder as objects: `load_run(dir)` → its bundle, settings and potential.

The run's `config_resolved.yaml` is read as data (its `_target_` entries name the settings
classes and are never instantiated from the file); the network is its best (else final)
state, read with `torch.load(weights_only=True)`; the analytic tables a0..a9 are the run's
`<state>_<S>Params.dat` when it wrote them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dpp.errors import InputError, SettingError
from dpp.io.bundle import load_bundle
from dpp.io.records import Bundle
from dpp.io.run_folder import read_run_config, run_state, with_run_tables
from dpp.models import ModelSettings, is_zero_function, load_network
from dpp.physics import PhysicsOptions, PseudopotentialHamiltonian, build_hamiltonian

RUN_INFO = "run_info.json"
BUNDLE_OPTIONS = {
    "n_system": "n_systems",
    "legacy_fifth_param": "fifth_param",
    "allow_left_handed": "allow_left_handed",
}
"""`data` keys of the run's configuration that change how its bundle is read."""


@dataclass(frozen=True)
class FittedRun:
    """A fitted potential: the bundle (systems, species, tables a0..a9), the network (None:
    the analytic form), the physics switches and model settings of the run, which state."""

    folder: Path
    bundle: Bundle
    model: nn.Module | None
    physics: PhysicsOptions
    model_settings: ModelSettings
    state: str

    def hamiltonian(self, device: torch.device | str = "cpu") -> PseudopotentialHamiltonian:
        """dpp's plane-wave Hamiltonian of the bundle's systems with this potential."""
        return build_hamiltonian(self.bundle, self.model, self.physics, device=device)


def _section(config: dict[str, Any], name: str, file: Path) -> dict[str, Any]:
    section = config.get(name)
    if not isinstance(section, dict):
        raise InputError(
            file, "missing section", key=name, expected="a mapping", found=repr(section)
        )
    return section


def _input_error(error: SettingError, file: Path | str, section: str) -> InputError:
    """A settings class's refusal as an error of the run's configuration file."""
    return InputError(
        file,
        error.problem,
        key=f"{section}.{error.setting}",
        expected=error.expected,
        found=repr(error.found),
    )


def settings_from_data(cls: type, section: dict[str, Any], name: str, file: Path | str) -> Any:
    """`cls(**section)` of a settings dataclass from plain data: `_target_` dropped, unknown
    keys and invalid values one InputError naming `file` and the key `name.<field>`."""
    fields = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in section.items() if k != "_target_"}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise InputError(
            file,
            "unknown setting",
            key=f"{name}.{unknown[0]}",
            expected=f"one of {', '.join(sorted(fields))}",
            found=unknown[0],
        )
    try:
        return cls(**values)
    except SettingError as error:
        raise _input_error(error, file, name) from None
    except TypeError as error:
        raise InputError(
            file, "invalid settings", key=name, expected=cls.__name__, found=str(error)
        ) from None


def _bundle_path(folder: Path, data: dict[str, Any], file: Path) -> Path:
    """The run's bundle: run_info.json's path, else `data.bundle` (absolute, relative to the
    working directory or to the run folder)."""
    info = folder / RUN_INFO
    candidates = []
    if info.is_file():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            candidates.append(Path(json.loads(info.read_text())["bundle"]))
    written = data.get("bundle")
    if isinstance(written, str):
        candidates += [Path(written).expanduser(), folder / written]
    for path in candidates:
        if path.is_dir():
            return path
    raise InputError(
        file,
        "the run's bundle is not found",
        key="data.bundle",
        expected="an existing bundle folder (give bundle=<folder>)",
        found=repr(written),
    )


def load_run(
    folder: str | Path,
    *,
    state: str = "best",
    bundle: str | Path | None = None,
    checkpoint: str | Path | None = None,
) -> FittedRun:
    """The fitted potential of a train.py run folder.

    state: best (lowest training loss) or final; the other when only it was written.
    bundle: the bundle folder, when it moved since the run. checkpoint: a network file
    (.pth or Lightning .ckpt) in place of the run's own state.
    """
    folder = Path(folder).expanduser()
    file, config = read_run_config(folder)
    data = _section(config, "data", file)
    model_settings = settings_from_data(
        ModelSettings, _section(config, "model", file), "model", file
    )
    physics = settings_from_data(
        PhysicsOptions, _section(config, "hamiltonian", file), "hamiltonian", file
    )
    path = Path(bundle).expanduser() if bundle is not None else _bundle_path(folder, data, file)
    options = {BUNDLE_OPTIONS[k]: v for k, v in data.items() if k in BUNDLE_OPTIONS}
    loaded = load_bundle(path, require_reference=False, **options)
    network_file, which = run_state(folder, state)
    loaded = with_run_tables(loaded, folder, which)
    network_file = Path(checkpoint).expanduser() if checkpoint is not None else network_file
    model = None
    if network_file is not None:
        try:
            model = model_settings.build(loaded.n_species)
        except SettingError as error:
            raise _input_error(error, file, "model") from None
        if is_zero_function(model):
            model = None
        else:
            load_network(model, network_file).eval()
    return FittedRun(folder, loaded, model, physics, model_settings, which)

"""Composing the run configuration before Hydra runs the job.

The pre-pass composes the command line once to learn which bundle (or earlier run) it names,
reads and translates that bundle's NN_config.par once, and activates it as the
`nn_config: bundle` config (dpp.app.sources); Hydra's own composition then includes it, so
`--cfg job` and `--help` print what runs. Errors in overrides become one InputError naming
the override, with a did-you-mean for unknown keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import (
    InterpolationToMissingValueError,
    MissingMandatoryValue,
    OmegaConfBaseException,
)

from dpp.app import sources
from dpp.app.origins import origins_of, override_key, parse_override
from dpp.app.sweep_folders import check_job_folders
from dpp.errors import InputError
from dpp.io.bundle import CONFIG_NAME
from dpp.io.data import bundle_folder
from dpp.io.keys import did_you_mean, did_you_mean_key, dotted_keys
from dpp.io.nnconfig import NNConfigFile, Translation, read_nn_config, translate
from dpp.io.run_folder import saved_sections
from dpp.runs.lock import check_writable

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "data" / "examples"
RUN_SECTIONS = ("data", "model", "hamiltonian", "loss", "outputs")
"""Sections of an earlier run's configuration that `evaluate.py run=<dir>` reuses."""
FORMER_TARGETS = {"data": ("dpp.app.settings.DataSettings",)}
"""Where a section's settings class lived before it moved (run folders of older versions)."""


def config_dir() -> Path:
    """conf/: the installed `dpp.conf` package data, else the source checkout's folder."""
    try:
        folder = Path(str(resources.files("dpp.conf")))
    except ModuleNotFoundError:
        folder = Path(__file__).resolve().parents[2] / "conf"
    if not (folder / "train.yaml").is_file():
        raise InputError(
            folder,
            "configuration folder not found",
            expected="conf/train.yaml (installed as the package data dpp.conf)",
            found="no such file",
            hint="reinstall dpp with `pip install .` from a source checkout",
        )
    return folder


def _register_resolvers() -> None:
    """`${dpp.example:NAME}`: a shipped example bundle folder."""
    if not OmegaConf.has_resolver("dpp.example"):
        OmegaConf.register_new_resolver("dpp.example", lambda name: str(EXAMPLES_DIR / name))


_register_resolvers()
sources.register()


@dataclass
class Prepared:
    """What the pre-pass found: the bundle folder, its NN_config.par and translation, or the
    earlier run whose settings are reused."""

    bundle: Path | None = None
    nn_config: NNConfigFile | None = None
    translation: Translation | None = None
    run: Path | None = None
    config: DictConfig | None = None  # the composed configuration, `hydra` included (no sweeps)


LOCATING_KEYS = ("data.bundle", "run", "paths.", "hydra.")
"""Value overrides that can change which bundle (or run) the command line names."""


def _locating(overrides: list[str]) -> list[str]:
    """The overrides that choose config groups or locate the bundle; the others may need the
    bundle's own group choices (e.g. `optimizer.max_iter` for NN_config's lbfgs)."""
    kept = []
    for text in overrides:
        key = override_key(text)
        if "." not in key or key.startswith(LOCATING_KEYS):
            kept.append(text)
    return kept


def _split_sweeps(overrides: list[str]) -> list[str]:
    """The overrides without sweeps (`a=1,2`, `range(…)`); sweeping the bundle is refused."""
    kept = []
    for text in overrides:
        override = parse_override(text)
        if override.is_sweep_override():
            if override.key_or_group in ("data.bundle", "run"):
                raise InputError(
                    "command line",
                    "a sweep over bundles",
                    key=text,
                    expected="one bundle per multirun (its NN_config.par is part of the "
                    "composed configuration)",
                    found=text,
                )
            continue
        kept.append(text)
    return kept


def _override_error(
    error: Exception, overrides: list[str], config_name: str, config_dirs: list[Path]
) -> InputError:
    """One message for a Hydra composition error, naming the override."""
    message = str(error)
    missing = re.search(r"Could not override '([^']+)'", message) or re.search(
        r"Key '[^']+' is not in struct\s+full_key: (\S+)", message
    )
    if missing:
        key = missing.group(1)
        text = next((o for o in overrides if override_key(o) == key), key)
        clean = [o for o in overrides if o != text]
        known = dotted_keys(OmegaConf.to_container(_compose(config_name, clean, config_dirs)))
        return InputError(
            "command line",
            "unknown configuration key",
            key=text,
            expected="a key of the configuration (`python train.py --cfg job` lists them; "
            "`+key=value` adds a new one)",
            found=key,
            hint=did_you_mean_key(key, known),
        )
    option = re.search(r"Could not find '([^']+)/([^']+)'", message)
    if option:
        group, name = option.groups()
        choices = re.findall(r"^\t(\S+)$", message, flags=re.MULTILINE)
        text = next((o for o in overrides if override_key(o) == group), group)
        return InputError(
            "command line",
            f"unknown option of config group '{group}'",
            key=text,
            expected="one of " + ", ".join(choices) if choices else "an existing option",
            found=name,
            hint=did_you_mean(name, choices),
        )
    first = message.strip().splitlines()[0] if message.strip() else type(error).__name__
    return InputError("command line", "cannot compose the configuration", found=first)


def _compose(config_name: str, overrides: list[str], config_dirs: list[Path]) -> DictConfig:
    extra = [f"hydra.searchpath=[{','.join(f'file://{d}' for d in config_dirs)}]"]
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        return compose(
            config_name,
            overrides=[*overrides, *(extra if config_dirs else [])],
            return_hydra_config=True,
        )


def compose_config(
    config_name: str, overrides: list[str], config_dirs: list[Path] | tuple = ()
) -> DictConfig:
    """The configuration `python <config_name>.py overrides` composes (with `hydra`)."""
    config_dirs = [Path(d) for d in config_dirs]
    try:
        return _compose(config_name, overrides, config_dirs)
    except (HydraException, OmegaConfBaseException) as error:
        raise _override_error(error, overrides, config_name, config_dirs) from None


def _literal_bundle(overrides: list[str]) -> str | None:
    """The bundle named by a plain `data.bundle=<path>` override, when no other override can
    name a bundle or a run (`run=`, `experiment=`): then the locating composition is not
    needed."""
    bundle = None
    for override in map(parse_override, overrides):
        if override.key_or_group in ("run", "experiment"):
            return None
        if override.key_or_group == "data.bundle":
            value = override.value()
            bundle = value if isinstance(value, str) and "$" not in value else None
    return bundle


def _section_target(section: str) -> str:
    """The `_target_` that conf/ gives config section `section` (dpp's own settings class)."""
    return str(OmegaConf.load(config_dir() / section / "default.yaml")["_target_"])


def _run_settings(run: Path) -> dict[str, Any]:
    """The sections of an earlier run's configuration that evaluation reuses, checked against
    the settings classes that conf/ builds them with (dpp.io.run_folder.saved_sections)."""
    targets = {
        section: (_section_target(section), *FORMER_TARGETS.get(section, ()))
        for section in RUN_SECTIONS
    }
    return saved_sections(run, targets)


def prepare(
    config_name: str,
    overrides: list[str],
    config_dirs: list[Path] | tuple = (),
    *,
    multirun: bool = False,
) -> Prepared:
    """Compose once without the bundle to locate it (not needed when the command line names
    it plainly), read its NN_config.par (or the run's settings) and serve it to every later
    composition of this process; then compose the whole configuration (errors now), check its
    number of training epochs and that its run directory (sweep directory with `multirun`)
    can be written."""
    sources.deactivate()
    plain = _split_sweeps(overrides)
    run = None
    bundle = None if config_dirs else _literal_bundle(plain)
    if bundle is None:
        cfg = compose_config(config_name, _locating(plain), config_dirs)
        run = OmegaConf.select(cfg, "run", default=None)
        bundle = OmegaConf.select(cfg, "data.bundle")
    if run is not None:
        folder = Path(str(run)).expanduser().resolve()
        saved = _run_settings(folder)
        if any(parse_override(text).key_or_group == "data.bundle" for text in plain):
            # another bundle than the fit's: its own systems, not the fit's count
            saved.get("data", {}).pop("n_system", None)
        sources.activate(str(folder), saved)
        prepared = Prepared(run=folder)
    else:
        folder = bundle_folder(bundle)
        nn_config = read_nn_config(folder / CONFIG_NAME)
        translation = translate(nn_config)
        sources.activate(str(folder), translation.tree())
        prepared = Prepared(bundle=folder, nn_config=nn_config, translation=translation)
    prepared.config = compose_config(config_name, plain, config_dirs)
    epochs = OmegaConf.select(prepared.config, "trainer.max_epochs", default=0)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        origins = origins_of(plain, None, prepared.nn_config, prepared.translation)
        raise origins.error(
            "trainer.max_epochs",
            "invalid number of training epochs",
            expected="an integer >= 0 (0: no training)",
            found=epochs,
        )
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    folder = OmegaConf.select(prepared.config, key)
    if folder is None or not str(folder).strip():
        raise InputError(
            "command line",
            "empty run directory (results, checkpoints and the lock would go into the "
            "current folder)",
            key=key,
            expected="a folder path",
            found=repr(folder),
        )
    check_writable(Path(str(folder)).expanduser().resolve(), key)
    if multirun:
        check_job_folders(prepared.config, overrides)
    return prepared


def resolved_container(node: Any) -> Any:
    """The config as plain containers with every interpolation resolved; values that stay
    unset (`???`, or interpolations to them, e.g. the schedule of an unused recipe) are kept
    as written."""
    if OmegaConf.is_list(node):
        return [resolved_container(node._get_node(i)) for i in range(len(node))]
    if OmegaConf.is_dict(node):
        return {key: resolved_container(node._get_node(key)) for key in node}
    try:
        value = node._dereference_node()._value()
    except (MissingMandatoryValue, InterpolationToMissingValueError):
        return node._value()
    return resolved_container(value) if OmegaConf.is_config(value) else value

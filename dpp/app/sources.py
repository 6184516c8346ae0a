"""Compose settings that live outside conf/ into the Hydra config: a Hydra ConfigSource that
serves the group `nn_config` (option `bundle`) from an already translated NN_config.par, or
from the saved configuration of an earlier run (`evaluate.py run=<dir>`).

train.yaml lists `optional nn_config: bundle` after the group defaults and before the
experiment, so what `--cfg job` prints is what runs: conf/ defaults < NN_config.par <
experiment < command line.
"""

from __future__ import annotations

import json
import os
from typing import Any

from hydra.core.object_type import ObjectType
from hydra.core.plugins import Plugins
from hydra.plugins.config_source import ConfigLoadError, ConfigResult, ConfigSource
from hydra.plugins.search_path_plugin import SearchPathPlugin
from omegaconf import OmegaConf

SCHEME = "dpp-settings"
GROUP, OPTION = "nn_config", "bundle"

ENVIRONMENT = "DPP_SETTINGS_SOURCE"
"""Environment variable carrying the active settings (JSON) to the processes a launcher
starts (joblib workers compose each job themselves)."""

_ACTIVE: dict[str, Any] = {"name": None, "tree": None}


def activate(name: str, tree: dict[str, Any]) -> None:
    """Serve `tree` (a `# @package _global_` config with an optional defaults list) as
    `nn_config: bundle` to every Hydra composition from now on, in this process and the
    processes it starts; `name` labels it."""
    _ACTIVE.update(name=name, tree=tree)
    os.environ[ENVIRONMENT] = json.dumps({"name": name, "tree": tree})


def deactivate() -> None:
    _ACTIVE.update(name=None, tree=None)
    os.environ.pop(ENVIRONMENT, None)


def _active_tree() -> dict[str, Any] | None:
    """The active tree, else the one a parent process activated (see ENVIRONMENT)."""
    if _ACTIVE["tree"] is None and ENVIRONMENT in os.environ:
        inherited = json.loads(os.environ[ENVIRONMENT])
        _ACTIVE.update(name=inherited["name"], tree=inherited["tree"])
    return _ACTIVE["tree"]


class SettingsSource(ConfigSource):
    """Serves the active tree as config `nn_config/bundle`."""

    @staticmethod
    def scheme() -> str:
        return SCHEME

    def load_config(self, config_path: str) -> ConfigResult:
        if not self.is_config(config_path):
            raise ConfigLoadError(f"Config not found: {config_path}")
        return ConfigResult(
            config=OmegaConf.create(_active_tree()),
            path=f"{SCHEME}://{_ACTIVE['name']}",
            provider=self.provider,
            header={"package": "_global_"},
        )

    def available(self) -> bool:
        return True  # an empty group while nothing is active: `optional` skips it

    def is_group(self, config_path: str) -> bool:
        return config_path in ("", GROUP)

    def is_config(self, config_path: str) -> bool:
        active = _active_tree() is not None
        return active and config_path.removesuffix(".yaml") == f"{GROUP}/{OPTION}"

    def list(self, config_path: str, results_filter: ObjectType | None) -> list[str]:
        if (
            config_path == GROUP
            and _active_tree() is not None
            and results_filter != ObjectType.GROUP
        ):
            return [OPTION]
        return []


class SettingsSearchPath(SearchPathPlugin):
    """Adds the settings source to Hydra's search path."""

    def manipulate_search_path(self, search_path: Any) -> None:
        search_path.append("dpp", f"{SCHEME}://active")


def register() -> None:
    """Make Hydra aware of the settings source (idempotent)."""
    plugins = Plugins.instance()
    plugins.register(SettingsSource)
    plugins.register(SettingsSearchPath)

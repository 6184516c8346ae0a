"""NN_config.par -> Hydra: the config that `conf/` composes in place of the file.

The result is a `# @package _global_` config: a `defaults` list that picks config groups
(optimizer, pre-fit optimizer, workflow) and nested values at the dotted paths of the schema.
It sits in the defaults list after the group defaults and before the experiment, so the
precedence is conf/ defaults < NN_config.par < experiment < command line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dpp.io.nnconfig.reader import NNConfigFile
from dpp.io.nnconfig.schema import ADAM_FAMILY, KEYS

ADAM_BETAS = (0.9, 0.999)
"""torch.optim.Adam's default betas, used for the one of adam_beta1/2 not given."""


@dataclass
class Translation:
    """The Hydra form of an NN_config.par: group choices, dotted values, and for every dotted
    path the key (and so the line) it came from."""

    groups: dict[str, str] = field(default_factory=dict)  # e.g. "optimizer" -> "sgd"
    values: dict[str, Any] = field(default_factory=dict)  # e.g. "optimizer.lr" -> 0.005
    sources: dict[str, str] = field(default_factory=dict)  # dotted path or group -> key

    def tree(self) -> dict[str, Any]:
        """The config as a nested mapping with its `defaults` list (YAML-ready)."""
        tree: dict[str, Any] = {}
        if self.groups:
            tree["defaults"] = [
                {f"override /{group}": option} for group, option in self.groups.items()
            ]
        for dotted, value in self.values.items():
            node = tree
            *parents, leaf = dotted.split(".")
            for name in parents:
                node = node.setdefault(name, {})
            node[leaf] = list(value) if isinstance(value, tuple) else value
        return tree


def _set(out: Translation, path: str, value: Any, key: str) -> None:
    out.values[path] = value
    out.sources[path] = key


def translate(config: NNConfigFile) -> Translation:
    """The Hydra form of `config` (physics.md / bundle-format §3 key by key)."""
    out = Translation()
    given = config.values
    for name, value in given.items():
        path = KEYS[name].path
        if path is not None:
            _set(out, path, value, name)
    if "num_cores" in given:  # 0 = the original's "serial": dpp chooses the threads
        _set(out, "num_threads", given["num_cores"] or "auto", "num_cores")
    if "runtime_flag" in given:
        _set(out, "trainer.profiler", "simple" if given["runtime_flag"] else None, "runtime_flag")
    optimizer = given.get("optimizer")
    if optimizer is not None:
        out.groups["optimizer"] = optimizer
        out.sources["optimizer"] = "optimizer"
    if "init_Zunger_optimizer" in given:
        out.groups["optimizer@init.optimizer"] = given["init_Zunger_optimizer"]
        out.sources["init.optimizer"] = "init_Zunger_optimizer"
    if "mc_bool" in given:
        out.groups["workflow"] = "monte_carlo" if given["mc_bool"] else "gradient"
        out.sources["workflow"] = "mc_bool"
    for switch, mode in (("smooth_reorder", "smooth"), ("eigvec_reorder", "eigvec")):
        if given.get(switch):
            _set(out, "loss.reorder", mode, switch)
    # Optimiser-specific keys go in whatever the optimiser: the recipe, the experiment or the
    # command line may choose another one, and the arguments it does not take are dropped
    # when it is built (dpp.app.settings.partial_of).
    betas = [given.get("adam_beta1"), given.get("adam_beta2")]
    if betas != [None, None]:
        value = [b if b is not None else d for b, d in zip(betas, ADAM_BETAS, strict=True)]
        _set(out, "optimizer.betas", value, "adam_beta1" if betas[0] is not None else "adam_beta2")
    if "sgd_momentum" in given:
        _set(out, "optimizer.momentum", given["sgd_momentum"], "sgd_momentum")
    return out


DEFAULT_OPTIMIZER = "adam"
"""The optimiser of conf/train.yaml's defaults, which recipe=legacy trains with when
NN_config.par has no `optimizer` key."""
OPTIMIZER_KEYS = {
    "optimizer.betas": (ADAM_FAMILY, "adam_beta1/adam_beta2 are"),
    "optimizer.momentum": (("sgd",), "sgd_momentum is"),
}
"""Optimiser arguments of the translation: the optimisers that take them, and their keys."""


def pin_optimizer(translation: Translation) -> list[str]:
    """Remove the optimiser arguments that the file's own optimiser (`optimizer`, else
    DEFAULT_OPTIMIZER) does not take, for a config that fixes that optimiser (the converter's
    experiment file); returns a note for each."""
    optimizer = translation.groups.get("optimizer", DEFAULT_OPTIMIZER)
    notes = []
    for path, (takers, keys) in OPTIMIZER_KEYS.items():
        if path in translation.values and optimizer not in takers:
            del translation.values[path]
            del translation.sources[path]
            notes.append(f"{keys} not used by optimizer {optimizer}")
    return notes


def nn_key_of(path: str, translation: Translation) -> str | None:
    """The NN_config key behind a dotted path (or a parent of it) of `translation`."""
    while path:
        if path in translation.sources:
            return translation.sources[path]
        path = path.rpartition(".")[0]
    return None

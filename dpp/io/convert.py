"""`dpp-convert-config NN_config.par`: print the equivalent Hydra experiment file.

Save the output as `<dir>/experiment/<name>.yaml` (the folder `experiment/` inside a config
directory of your own) and run it with `python train.py --config-dir <dir>
experiment=<name>`; the run is the same as `python train.py data.bundle=<folder of
NN_config.par> recipe=legacy`: the file selects the original's recipe, so the optimiser and
schedule it lists are the ones that train (delete that line and those entries for dpp's
default recipe). The bundle path is written relative to `paths.data_root` (the launch
folder by default), so the file stays valid when the project moves.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from dpp.errors import InputError
from dpp.io.nnconfig import KEYS, read_nn_config, translate
from dpp.io.nnconfig.translate import nn_key_of, pin_optimizer


def _yaml_value(value: Any) -> str:
    """A YAML scalar or flow list (JSON syntax is valid YAML)."""
    return json.dumps(list(value) if isinstance(value, tuple) else value)


def _bundle_entry(folder: Path) -> str:
    relative = os.path.relpath(folder, Path.cwd())
    if relative.startswith(".."):
        return _yaml_value(str(folder))
    return _yaml_value("${paths.data_root}/" + relative.replace(os.sep, "/"))


def convert(path: str | Path) -> str:
    """The experiment YAML (package _global_) equivalent to the NN_config.par at `path`."""
    path = Path(path).resolve()
    translation = translate(read_nn_config(path))
    # the file pins the optimiser, and a run keeps what an experiment file sets: leave out
    # the arguments of other optimisers
    notes = pin_optimizer(translation)
    lines = ["# @package _global_", f"# Converted from {path.name} by dpp-convert-config."]
    lines += [f"# Note: {note}" for note in notes]
    lines.append("defaults:")
    lines.append("  - override /recipe: legacy  # train with the optimiser and schedule below")
    if translation.groups:
        for group, option in translation.groups.items():
            key = translation.sources[group.partition("@")[2] or group]
            lines.append(f"  - override /{group}: {option}  # {key}: {KEYS[key].spec.doc}")

    def emit(node: dict[str, Any], indent: str, prefix: str) -> None:
        for name, value in node.items():
            dotted = f"{prefix}{name}"
            if isinstance(value, dict):
                lines.append(f"{indent}{name}:")
                emit(value, indent + "  ", dotted + ".")
                continue
            key = nn_key_of(dotted, translation)
            lines.append(f"{indent}{name}: {_yaml_value(value)}  # {key}: {KEYS[key].spec.doc}")

    tree = translation.tree()
    tree.pop("defaults", None)
    data = tree.setdefault("data", {})
    lines.append("data:")
    lines.append(f"  bundle: {_bundle_entry(path.parent)}")
    emit(data, "  ", "data.")
    emit({k: v for k, v in tree.items() if k != "data"}, "", "")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dpp-convert-config", description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path, help="path to an NN_config.par")
    args = parser.parse_args(argv)
    try:
        sys.stdout.write(convert(args.config))
    except InputError as error:
        sys.stderr.write(f"dpp-convert-config: {error}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

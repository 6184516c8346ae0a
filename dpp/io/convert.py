"""`dpp-convert-config NN_config.par`: print the equivalent Hydra experiment file.

Save the output as `<dir>/experiment/<name>.yaml` and run it with
`python train.py --config-dir <dir> experiment=<name>`; the run is the same as
`python train.py data.bundle=<folder of NN_config.par>`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from dpp.errors import InputError
from dpp.io.config import KEYS, NNConfig


def _yaml_value(value: Any) -> str:
    """A YAML scalar or flow list (JSON syntax is valid YAML)."""
    return json.dumps(list(value) if isinstance(value, tuple) else value)


def convert(path: str | Path) -> str:
    """The experiment YAML (package _global_) equivalent to the NN_config.par at `path`."""
    from dpp.training.config import NN_TO_HYDRA, nn_to_hydra

    path = Path(path).resolve()
    config = NNConfig.from_file(path)
    values, workflow = nn_to_hydra(config.given)
    documented = {NN_TO_HYDRA[k]: k for k in config.given if k in NN_TO_HYDRA}
    lines = ["# @package _global_", f"# Converted from {path} by dpp-convert-config."]
    if workflow is not None:
        lines += ["defaults:", f"  - override /workflow: {workflow}"]
    sections: dict[str, list[str]] = {"data": [f"  bundle: {_yaml_value(str(path.parent))}"]}
    for dotted, value in values.items():
        key = documented[dotted]
        comment = f"  # {key}: {KEYS[key].doc}"
        if "." not in dotted:
            lines.append(f"{dotted}: {_yaml_value(value)}{comment}")
            continue
        section, name = dotted.split(".", 1)
        sections.setdefault(section, []).append(f"  {name}: {_yaml_value(value)}{comment}")
    for section, entries in sections.items():
        lines += [f"{section}:", *entries]
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

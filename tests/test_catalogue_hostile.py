"""Hostile input (issue 23): nothing read from a bundle or a run folder runs code, a refused
run destroys nothing, resume checks the bundle, and every numeric setting is range-checked up
front. Each case ends in one InputError (one line, no traceback) before any work and, where
it applies, leaves no marker file and the other run's folder intact.

Cases run in process (`run_app`, or the pre-pass `prepare` where the refusal comes from it);
only the command-line tools and train.py itself are run as subprocesses.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest
import yaml
from training_support import REPO, run_app, small_bundle

from dpp.app.compose import RESOLVED_CONFIG, prepare
from dpp.errors import InputError

NO_WORK = ["trainer.max_epochs=0", "init.num_epochs=0", "logger=none"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean 5-k-point CdSe bundle (maxKE 1.5); cases copy it before changing it."""
    return small_bundle(tmp_path_factory.mktemp("hostile"), n_k=5, max_ke=1.5)


def _copy(bundle: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "bundle"
    shutil.copytree(bundle, folder)
    return folder


def _set_nn(folder: Path, line: str) -> int:
    """Append `line` to NN_config.par (replacing that key); returns its line number."""
    path = folder / "NN_config.par"
    key = line.split("=")[0].strip()
    lines = [ln for ln in path.read_text().splitlines() if ln.split("=")[0].strip() != key]
    path.write_text("\n".join([*lines, line]) + "\n")
    return len(lines) + 1


def _one_line(error: InputError) -> str:
    message = str(error)
    assert "\n" not in message and "Traceback" not in message, message
    assert "TypeError" not in message and "object is not" not in message, message
    return message


# -- 1. data files are data -----------------------------------------------------------------
MARKER = "MARKER"
CODE_VALUES = {
    "oc_create_open": "${oc.create:{_target_:builtins.open,file:%s,mode:w}}",
    "oc_env_home": "${oc.env:HOME}",
    "self_reference": "${mc.beta_schedule}",
    "target_text": "_target_",
    "nested_interpolation": "schedule_${seed}.par",
}


@pytest.mark.parametrize("name", CODE_VALUES)
def test_nn_config_values_are_literals(bundle: Path, tmp_path: Path, name: str) -> None:
    folder = _copy(bundle, tmp_path)
    marker = tmp_path / MARKER
    value = CODE_VALUES[name].replace("%s", str(marker))
    line = _set_nn(folder, f"mc_beta_schedule = {value}")
    with pytest.raises(InputError) as info:
        run_app(tmp_path / "run", [f"data.bundle={folder}", *NO_WORK])
    message = _one_line(info.value)
    assert info.value.file.endswith("NN_config.par") and info.value.line == line, message
    assert "literal" in message, message
    assert not marker.exists() and not (tmp_path / "run").exists()


def _saved_run(tmp_path: Path, bundle: Path, change: dict[str, dict]) -> Path:
    """A run folder whose config_resolved.yaml has the sections of a real one, `change`d."""
    folder = tmp_path / "received_run"
    folder.mkdir()
    sections = {
        "data": {"_target_": "dpp.app.settings.DataSettings", "bundle": str(bundle)},
        "model": {"_target_": "dpp.models.ModelSettings", "name": "ZeroFunction"},
    }
    for section, values in change.items():
        sections.setdefault(section, {}).update(values)
    (folder / RESOLVED_CONFIG).write_text(yaml.safe_dump(sections))
    return folder


def _open_marker(marker: Path) -> dict:
    return {"_target_": "builtins.open", "_args_": [str(marker), "w"]}


CRAFTED_RUNS = {
    "section_target": lambda m: {"model": _open_marker(m)},
    "nested_target": lambda m: {"model": {"scale": _open_marker(m)}},
    "nested_in_list": lambda m: {"model": {"hidden_layers": [_open_marker(m)]}},
    "private_key": lambda m: {"model": {"_args_": [str(m)]}},
    "interpolation": lambda m: {"data": {"bundle": "${oc.env:HOME}"}},
    "other_section_target": lambda m: {"hamiltonian": _open_marker(m)},
}


@pytest.mark.parametrize("name", CRAFTED_RUNS)
def test_a_received_run_folder_builds_only_dpp_classes(
    bundle: Path, tmp_path: Path, name: str
) -> None:
    marker = tmp_path / MARKER
    run = _saved_run(tmp_path, bundle, CRAFTED_RUNS[name](marker))
    with pytest.raises(InputError) as info:
        run_app(tmp_path / "eval", [f"run={run}"], config_name="evaluate")
    message = _one_line(info.value)
    assert info.value.file.endswith(RESOLVED_CONFIG), message
    assert not marker.exists()


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    """Calls of `<module>.<name>(...)` or `<name>(...)` in `tree`."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            function = node.func
            called = function.attr if isinstance(function, ast.Attribute) else None
            called = called or (function.id if isinstance(function, ast.Name) else None)
            if called == name:
                found.append(node)
    return found


def _keyword(call: ast.Call, name: str) -> object:
    for keyword in call.keywords:
        if keyword.arg == name and isinstance(keyword.value, ast.Constant):
            return keyword.value.value
    return None


def test_every_load_of_a_file_is_data_only() -> None:
    """torch.load always with weights_only=True; no pickle, np.load with pickles or yaml
    loader that builds objects anywhere in dpp/."""
    unsafe = []
    for path in sorted((REPO / "dpp").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        where = path.relative_to(REPO)
        for call in _calls(tree, "load"):
            function = call.func
            named = isinstance(function, ast.Attribute) and isinstance(function.value, ast.Name)
            module = function.value.id if named else ""
            if module == "torch" and _keyword(call, "weights_only") is not True:
                unsafe.append(f"{where}:{call.lineno} torch.load without weights_only=True")
            if module == "np" and _keyword(call, "allow_pickle") is True:
                unsafe.append(f"{where}:{call.lineno} np.load with allow_pickle=True")
            if module in ("pickle", "dill", "marshal"):
                unsafe.append(f"{where}:{call.lineno} {module}.load")
        for name in ("unsafe_load", "full_load"):
            unsafe += [f"{where}:{c.lineno} yaml.{name}" for c in _calls(tree, name)]
    assert unsafe == []

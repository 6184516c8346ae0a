"""The shape of the code (design.md): one direction of imports, NN_config names in one place,
parameter slots defined once, every package installed."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import tomllib

from dpp.io.nnconfig import KEYS

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "dpp"
FORBIDDEN = {
    # importer layer: layers it must not import (data flows io -> physics -> fitting -> ...)
    "io": ("physics", "fitting", "training", "mc", "app", "outputs", "models"),
    "physics": ("fitting", "training", "mc", "app", "outputs"),
    "models": ("physics", "fitting", "training", "mc", "app", "outputs"),
    "fitting": ("training", "mc", "app", "outputs"),
    "outputs": ("training", "mc", "app"),
    "training": ("mc", "app"),
    "mc": ("training", "app"),
    "states": ("fitting", "training", "mc", "app"),
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_imports_follow_the_data_flow(layer: str) -> None:
    bad = []
    for path in (PACKAGE / layer).rglob("*.py"):
        for module in _imports(path):
            parts = module.split(".")
            if parts[0] == "dpp" and len(parts) > 1 and parts[1] in FORBIDDEN[layer]:
                bad.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not bad, bad


def test_only_the_app_reads_the_hydra_config() -> None:
    readers = {
        str(path.relative_to(ROOT))
        for path in PACKAGE.rglob("*.py")
        if any(m.startswith(("omegaconf", "hydra")) for m in _imports(path))
    }
    assert readers and all(r.startswith("dpp/app/") for r in readers), readers


def _code_words(path: Path) -> list[tuple[int, str]]:
    """Identifiers and string constants of a module, with their lines, without the
    documentation (docstrings and other bare string statements)."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    words = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            words.append((node.lineno, node.id))
        elif isinstance(node, ast.Attribute):
            words.append((node.lineno, node.attr))
        elif isinstance(node, ast.arg | ast.keyword) and node.arg:
            words.append((getattr(node, "lineno", 0), node.arg))
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            words.append((node.lineno, node.name))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            words.append((node.lineno, node.value))
    return words


def test_nn_config_key_names_live_in_the_translator_only() -> None:
    """Keys whose configuration name differs (SObool -> hamiltonian.spin_orbit) appear in code
    (identifiers and strings; docstrings may document them) only in dpp/io/nnconfig."""
    # torch's and Lightning's words, and the original's output file prefix mc_iter_<t>_*
    ordinary_words = {"checkpoint", "optimizer", "patience", "mc_iter"}
    renamed = [
        k.name
        for k in KEYS.values()
        if (k.path is None or k.name != k.path.rsplit(".", 1)[-1]) and k.name not in ordinary_words
    ]
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, renamed)) + r")\b")
    found = [
        f"{path.relative_to(ROOT)}:{line}: {word}"
        for path in PACKAGE.rglob("*.py")
        if "nnconfig" not in path.parts
        for line, word in _code_words(path)
        if pattern.search(word)
    ]
    assert not found, found


def test_parameter_slots_are_defined_once() -> None:
    definition = re.compile(r"^\s*\w*SLOTS?\w*\s*[:=].*\b[0-9]\b", re.MULTILINE)
    for path in PACKAGE.rglob("*.py"):
        if path.name == "slots.py":
            continue
        text = path.read_text()
        assert not definition.search(text), f"{path}: a slot number defined outside dpp.slots"
        assert "range(9)" not in text, path


def test_every_package_is_installed() -> None:
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setup["packages"])
    found = {".".join(path.parent.relative_to(ROOT).parts) for path in PACKAGE.rglob("__init__.py")}
    assert found | {"dpp.conf"} == listed

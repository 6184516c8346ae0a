"""The shape of the code (docs/internals.md): one direction of imports, no import cycle
between modules or packages, NN_config names in one place, parameter slots defined once,
every package installed."""

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
    "io": ("physics", "fitting", "training", "mc", "app", "outputs", "models", "runs", "workflows"),
    "physics": ("fitting", "training", "mc", "app", "outputs", "runs", "workflows"),
    "models": ("physics", "fitting", "training", "mc", "app", "outputs", "runs", "workflows"),
    "fitting": ("training", "mc", "app", "outputs", "runs", "workflows"),
    "outputs": ("training", "mc", "app", "runs", "workflows"),
    "training": ("mc", "app", "workflows"),
    "mc": ("training", "app", "workflows"),
    "states": ("fitting", "training", "mc", "app", "workflows"),
    "runs": ("fitting", "training", "mc", "app", "outputs", "workflows"),
    "workflows": ("app",),
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


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """dpp module -> the dpp modules it imports (at the top or inside functions alike;
    `from dpp.a import b` is module dpp.a.b when that is a module, else dpp.a)."""
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = set()
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    child = f"{node.module}.{alias.name}"
                    targets.add(child if child in modules else node.module)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of `graph` with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _package(module: str) -> str:
    """The package of a dpp module (dpp.fitting.bands -> dpp.fitting; dpp.errors itself)."""
    return ".".join(module.split(".")[:2])


def test_no_import_cycle_between_modules() -> None:
    assert not _cycles(_import_graph())


def test_no_import_cycle_between_packages() -> None:
    packages: dict[str, set[str]] = {}
    for module, targets in _import_graph().items():
        edges = packages.setdefault(_package(module), set())
        edges.update(_package(t) for t in targets if _package(t) != _package(module))
    for targets in list(packages.values()):
        for target in targets:
            packages.setdefault(target, set())
    assert not _cycles(packages)


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


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

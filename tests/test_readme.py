"""The README's quick commands run as written: every line of the block marked
`readme-quick-commands` (tools on shipped data, writing into new folders), run in-process
from a scratch folder that sees the repository's `dpp/` and `tests/`, and every tool's
`--help`."""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
MARKER = "<!-- readme-quick-commands"


def _entry_points() -> dict[str, str]:
    """Console-script name -> `module:function` of every dpp tool."""
    scripts = importlib.metadata.entry_points(group="console_scripts")
    return {e.name: e.value for e in scripts if e.name.startswith("dpp-")}


def quick_commands(readme: str) -> list[str]:
    """The command lines of the fenced block after the marker: continuations joined,
    trailing `# comments` dropped."""
    start = readme.index(MARKER)
    block = re.search(r"```bash\n(.*?)```", readme[start:], re.DOTALL)[1]
    joined = block.replace("\\\n", " ")
    lines = [re.sub(r"\s+#.*$", "", line).strip() for line in joined.splitlines()]
    return [line for line in lines if line]


def _run(command: str) -> str:
    """Run one `dpp-<tool> args [> file]` line in-process; returns its stdout (an
    AssertionError when it fails)."""
    words = shlex.split(command)
    target = None
    if ">" in words:
        at = words.index(">")
        words, target = words[:at], words[at + 1]
    module, function = _entry_points()[words[0]].split(":")
    main = getattr(__import__(module, fromlist=[function]), function)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            code = main(words[1:])
        except SystemExit as stop:  # argparse's --help
            code = stop.code
    assert code in (0, None), f"{command!r} exited with {code}"
    if target is not None:
        Path(target).write_text(out.getvalue())
    return out.getvalue()


def test_the_quick_block_is_found():
    commands = quick_commands((ROOT / "README.md").read_text())
    assert len(commands) >= 5
    assert all(c.split()[0] in _entry_points() for c in commands)


def test_readme_quick_commands_run_on_shipped_data(tmp_path: Path, monkeypatch):
    for name in ("dpp", "tests"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    for command in quick_commands((ROOT / "README.md").read_text()):
        _run(command)
    assert (tmp_path / "si_bundle" / "expBandStruct_0.par").is_file()
    assert (tmp_path / "cdse_primitive" / "system_0.par").is_file()
    assert len((tmp_path / "cdse_path" / "kpoints_0.par").read_text().splitlines()) >= 100
    assert (tmp_path / "cdse_reference.png").stat().st_size > 0
    assert "# @package _global_" in (tmp_path / "cdse_experiment.yaml").read_text()


@pytest.mark.parametrize(
    "tool", sorted(set(_entry_points()) - {"dpp-train", "dpp-evaluate", "dpp-states"})
)
def test_every_tool_prints_its_help(tool: str):
    assert _run(f"{tool} --help").startswith(f"usage: {tool}")

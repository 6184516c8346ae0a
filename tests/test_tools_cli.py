"""The toolkit entry points: --help, usage errors and input errors, all in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

from dpp.tools import (
    charge_density,
    cluster_potentials,
    convert_bands,
    kpath,
    plot_bands,
    plot_terms,
    primitive_cell,
)

TOOLS = {
    "dpp-convert-bands": convert_bands.main,
    "dpp-primitive-cell": primitive_cell.main,
    "dpp-kpath": kpath.main,
    "dpp-charge-density": charge_density.main,
    "dpp-cluster-potentials": cluster_potentials.main,
    "dpp-plot-bands": plot_bands.main,
    "dpp-plot-terms": plot_terms.main,
}


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_help_exits_zero_and_names_the_command(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert TOOLS[name](["--help"]) == 0
    assert capsys.readouterr().out.startswith(f"usage: {name}")


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_usage_error_exits_two(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert TOOLS[name](["--no-such-option"]) == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_missing_input_is_one_line_on_stderr(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing" / "system_0.par"
    assert TOOLS[name]([str(missing), "-o", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"{name}: ") and error.count("\n") == 1
    assert "Traceback" not in error

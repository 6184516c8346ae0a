"""Writers: original formats, round trips through the readers, atomic replacement."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dpp.io import writers
from dpp.io.params import read_species_params
from dpp.io.qspace import read_qspace_table
from dpp.io.reference import read_reference_bands
from dpp.io.tables import read_table
from dpp.io.writers import (
    save_torch_atomic,
    write_band_file,
    write_basis_states,
    write_parameter_dump,
    write_qspace_table,
    write_real_space_potential,
    write_species_params,
    write_text_atomic,
)


def no_temporaries(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_band_file_round_trip(tmp_path: Path) -> None:
    d = np.linspace(0, 1, 4)
    bands = np.arange(12.0).reshape(4, 3) - 5.123456
    path = write_band_file(tmp_path / "epoch_1_BS_sys0.dat", d, bands)
    assert path.read_text().splitlines()[0] == "0.00000 -5.12346 -4.12346 -3.12346"
    path_coordinate, energies = read_reference_bands(path, 3, 4)
    np.testing.assert_allclose(path_coordinate, d, atol=5e-6)
    np.testing.assert_allclose(energies, bands, atol=5e-6)
    assert no_temporaries(tmp_path)


def test_qspace_table_round_trip(tmp_path: Path) -> None:
    q = np.linspace(0, 40, 5)
    values = np.column_stack([np.sin(q), np.cos(q)])
    path = write_qspace_table(tmp_path / "final_qSpace_pot.dat", q, values, ("Cs", "I"))
    assert path.read_text().startswith("# q  v(q)_Cs  v(q)_I\n0.00000000 0.00000000 1.00000000")
    table = read_qspace_table(path, ("Cs", "I"))
    np.testing.assert_allclose(table.values, values, atol=5e-9)


def test_species_params_round_trip(tmp_path: Path) -> None:
    params = np.array([1.5, -2.25, 3e-7, 4, 0, 0.1, 0.2, 0.3, 1 / 3, 0])
    path = write_species_params(tmp_path / "best_CdParams.dat", params)
    assert len(path.read_text().splitlines()) == 9  # a9 = 0: the original's nine numbers
    np.testing.assert_array_equal(read_species_params(path), params)
    fixed = write_species_params(tmp_path / "b.dat", params, fmt="%.14f")
    assert fixed.read_text().splitlines()[-1] == "0.33333333333333"


def test_real_space_and_basis_files(tmp_path: Path) -> None:
    pot = write_real_space_potential(tmp_path / "final_pot_Cd.dat", [0.0, 0.5], [-1.0, 2e-3])
    assert pot.read_text() == (
        "# r (Bohr)    v(r) (Hartree)\n"
        "0.000000e+00    -1.000000e+00\n5.000000e-01    2.000000e-03\n"
    )
    np.testing.assert_allclose(np.loadtxt(pot), [[0, -1], [0.5, 2e-3]])
    np.testing.assert_allclose(read_table(pot).values, [[0, -1], [0.5, 2e-3]])
    basis = write_basis_states(tmp_path / "basisStates_0.dat", [[0, 0, 0], [3, 4, 0]])
    assert basis.read_text().splitlines()[1] == "1\t3.000000\t4.000000\t0.000000\t5.000000"


def test_parameter_dump_format(tmp_path: Path) -> None:
    tensors = [("hidden.0.weight", np.array([[0.123456], [2.0]])), ("hidden.0.bias", None)]
    path = write_parameter_dump(tmp_path / "epoch_1_gradients.dat", tensors, gradients=True)
    assert path.read_text() == (
        "Parameter: hidden.0.weight, Gradient shape: torch.Size([2, 1])\n"
        "Gradient values:\n[[0.12346]\n [2.     ]]\n\n"
        "Parameter: hidden.0.bias, Gradient: None (no gradient computed)\n\n"
    )
    params = write_parameter_dump(tmp_path / "epoch_1_params.dat", tensors[:1])
    assert params.read_text().startswith(
        "Parameter: hidden.0.weight, Tensor shape: torch.Size([2, 1])\nParameter values:\n"
    )


def test_atomic_replace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.dat"
    write_text_atomic(target, "old\n")
    write_text_atomic(target, "new\n")
    assert target.read_text() == "new\n"

    def interrupted(source: str, destination: str) -> None:
        raise OSError("interrupted")

    monkeypatch.setattr(writers.os, "replace", interrupted)
    with pytest.raises(OSError, match="interrupted"):
        write_band_file(target, np.zeros(1), np.ones((1, 2)))
    assert target.read_text() == "new\n"
    assert no_temporaries(tmp_path)


def test_torch_save_atomic(tmp_path: Path) -> None:
    state = {"w": torch.arange(3.0)}
    path = save_torch_atomic(state, tmp_path / "final_PPmodel.pth")
    assert torch.equal(torch.load(path)["w"], state["w"])
    assert no_temporaries(tmp_path)

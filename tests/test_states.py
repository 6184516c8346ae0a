"""dpp.load_run and dpp.states: the matrix-free box Hamiltonian against dpp's plane-wave
bands, the folded-spectrum eigensolver, structures and nanocrystal band edges."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch
import yaml
from ase.io.cube import read_cube_data
from bundle_support import DATA, EXAMPLES, shrink_bundle

import dpp
from dpp.errors import InputError
from dpp.io.records import Bundle
from dpp.physics import AUTOEV, build_hamiltonian
from dpp.physics.lattice import Lattice
from dpp.states.edges import (
    LigandPotential,
    box_hamiltonian,
    bulk_edges,
    preconditioner,
)
from dpp.states.eigensolver import folded_lobpcg
from dpp.states.hamiltonian import folded_basis
from dpp.states.settings import LigandSettings, SolverSettings, StructureSettings
from dpp.states.structures import bulk_atoms, nanocrystal, radius_for, read_structure, supercell
from dpp.states.workflow import run_states

CHECKPOINT = DATA / "extras" / "nn_zbCdSe" / "epoch_199_PPmodel.pth"
RUN_CONFIG = {
    "data": {"_target_": "dpp.io.data.DataSettings", "bundle": str(EXAMPLES / "zb_CdSe")},
    "model": {
        "_target_": "dpp.models.ModelSettings",
        "name": "Net_relu_xavier_decay2",
        "hidden_layers": [20, 20, 20],
    },
    "hamiltonian": {"_target_": "dpp.physics.PhysicsOptions", "basis_search": "complete"},
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder as train.py leaves it: resolved settings and the best network."""
    folder = tmp_path_factory.mktemp("run")
    (folder / "config_resolved.yaml").write_text(yaml.safe_dump(RUN_CONFIG))
    shutil.copy(CHECKPOINT, folder / "best_PPmodel.pth")
    return folder


@pytest.fixture(scope="module")
def fitted(run_dir: Path) -> dpp.run.FittedRun:
    return dpp.load_run(run_dir)


def test_load_run_reads_settings_as_data_and_the_best_state(fitted, run_dir: Path) -> None:
    assert fitted.state == "best"
    assert fitted.bundle.species == ("Cd", "Se")
    assert fitted.model_settings.name == "Net_relu_xavier_decay2"
    assert fitted.physics.basis_search == "complete"
    q = torch.linspace(0.0, 4.0, 9, dtype=torch.float64)
    with torch.no_grad():
        values = fitted.hamiltonian().form_factors(q)
        direct = fitted.model(q[:, None])
    torch.testing.assert_close(values, direct)


def test_load_run_refuses_a_folder_without_settings(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="config_resolved.yaml"):
        dpp.load_run(tmp_path)


def test_load_run_names_an_unknown_setting(tmp_path: Path) -> None:
    config = {**RUN_CONFIG, "hamiltonian": {"spin_orbits": True}}
    (tmp_path / "config_resolved.yaml").write_text(yaml.safe_dump(config))
    shutil.copy(CHECKPOINT, tmp_path / "best_PPmodel.pth")
    with pytest.raises(InputError, match="hamiltonian.spin_orbits"):
        dpp.load_run(tmp_path)


def _low_cutoff(fitted, max_ke: float) -> Bundle:
    return shrink_bundle(fitted.bundle, max_ke)


@pytest.mark.parametrize("repeats", [(1, 1, 1), (2, 2, 2), (1, 2, 3)])
def test_supercell_at_gamma_is_the_bulk_at_the_folded_kpoints(fitted, repeats) -> None:
    """The exact identity: the box Hamiltonian of an n1×n2×n3 supercell at Γ has the
    eigenvalues of dpp's H(k) at the folded k-points, with the same basis spheres."""
    bundle = _low_cutoff(fitted, 3.0)
    system = bundle.systems[0]
    lattice = Lattice.from_crystal(system.crystal)
    labels, kpoints = folded_basis(lattice.reciprocal, 3.0, repeats)
    folded = replace(bundle, systems=[replace(system, kpoints=kpoints)])
    bulk = build_hamiltonian(folded, fitted.model, fitted.physics)
    with torch.no_grad():
        matrices = bulk.hamiltonians(0, torch.arange(len(kpoints)))
    expected = np.sort(torch.linalg.eigvalsh(matrices).numpy().ravel())
    box = box_hamiltonian(supercell(bulk_atoms(system), repeats), bulk, 3.0, {}, labels=labels)
    matrix = box.dense()
    assert float((matrix - matrix.mH).abs().max()) < 1e-12
    found = np.sort(torch.linalg.eigvalsh(matrix).numpy())
    assert found.shape == expected.shape
    assert np.abs(found - expected).max() * AUTOEV < 1e-6


def test_box_hamiltonian_is_hermitian_as_an_operator(fitted) -> None:
    bundle = _low_cutoff(fitted, 4.0)
    structure = nanocrystal(bulk_atoms(bundle.systems[0]), 9.0, 3.0, ligand_fraction={"Cd": 0.5})
    ligands = {"Cd": LigandPotential(-0.5, 1.0)}
    box = box_hamiltonian(structure, fitted.hamiltonian(), 2.0, ligands)
    generator = torch.Generator().manual_seed(1)
    x, y = (
        torch.randn(box.n_basis, 3, dtype=torch.complex128, generator=generator) for _ in range(2)
    )
    left = x.mH @ box(y)
    right = box(x).mH @ y
    torch.testing.assert_close(left, right, rtol=1e-12, atol=1e-12)


def test_folded_lobpcg_finds_the_eigenvalues_nearest_the_reference(fitted) -> None:
    bundle = _low_cutoff(fitted, 3.0)
    system = bundle.systems[0]
    box = box_hamiltonian(supercell(bulk_atoms(system), (1, 1, 2)), fitted.hamiltonian(), 3.0, {})
    dense = torch.linalg.eigvalsh(box.dense())
    reference = float(dense[7] + dense[8]) / 2
    wanted = 4
    generator = torch.Generator().manual_seed(0)
    start = torch.randn(box.n_basis, wanted + 4, dtype=torch.complex128, generator=generator)
    states = folded_lobpcg(
        box, start, reference, preconditioner(box), n_wanted=wanted, tol=1e-6, max_iter=400
    )
    nearest = dense[torch.argsort((dense - reference).abs())[:wanted]].sort().values
    assert states.converged
    torch.testing.assert_close(states.energies, nearest, rtol=0, atol=1e-9)
    residual = box(states.vectors) - states.vectors * states.energies
    assert float(residual.norm(dim=0).max()) < 1e-6


def test_nanocrystal_is_passivated_and_centred() -> None:
    bundle = dpp.io.bundle.load_bundle(EXAMPLES / "zb_CdSe", require_reference=False)
    bulk = bulk_atoms(bundle.systems[0])
    margin = 8.0
    structure = nanocrystal(bulk, radius_for(1.5), margin, ligand_fraction={"Cd": 0.5, "Se": 0.5})
    hosts = [k for k in structure.kinds if not k.startswith("lig_")]
    assert set(hosts) == {"Cd", "Se"}
    positions = structure.positions
    side = structure.cell[0, 0]
    assert np.allclose(structure.cell, np.eye(3) * side)
    assert np.isclose(positions.min(), margin) or positions.min() > margin - 1e-9
    assert np.allclose(positions.min(axis=0) + positions.max(axis=0), side)
    # every host atom of zinc blende has four bonds: to hosts or to ligands
    host = positions[: len(hosts)]
    bond = np.sqrt(3) / 4 * bundle.systems[0].crystal.scale
    distances = np.linalg.norm(host[:, None] - host[None], axis=-1)
    host_bonds = ((distances > 0) & (distances < 1.1 * bond)).sum(1)
    ligands = positions[len(hosts) :]
    ligand_bonds = (np.linalg.norm(host[:, None] - ligands[None], axis=-1) < 0.6 * bond).sum(1)
    assert np.all(host_bonds >= 2)
    assert np.all(host_bonds + ligand_bonds == 4)


def test_structure_files_are_read_with_ase(tmp_path: Path) -> None:
    bundle = dpp.io.bundle.load_bundle(EXAMPLES / "zb_CdSe", require_reference=False)
    atoms = bulk_atoms(bundle.systems[0])
    atoms.write(tmp_path / "cell.cif")
    read = read_structure(tmp_path / "cell.cif", margin=5.0)
    assert read.kinds == ("Cd", "Se")
    molecule = atoms.copy()
    molecule.set_cell(None)
    molecule.pbc = False
    ase.io.write(tmp_path / "pair.xyz", molecule)
    boxed = read_structure(tmp_path / "pair.xyz", margin=5.0)
    assert boxed.cell[0, 0] > 10.0
    with pytest.raises(InputError, match="missing.xyz"):
        read_structure(tmp_path / "missing.xyz", margin=5.0)


@pytest.mark.slow
def test_nanocrystal_gap_exceeds_the_bulk_gap(fitted, tmp_path: Path) -> None:
    """A passivated 1 nm dot (20 host atoms) at 2.5 Hartree: converged band edges whose gap
    is above the bulk gap at the same cutoff (confinement), written as a one-size series."""
    small = replace(fitted, bundle=shrink_bundle(fitted.bundle, 2.5, n_kpoints=21))
    edges = bulk_edges(small.hamiltonian(), valence_bands=4)
    structure = StructureSettings(diameters_nm=(1.0,), margin_nm=0.3)
    ligands = {s: LigandSettings(amplitude=-0.5) for s in ("Cd", "Se")}
    solver = SolverSettings(n_valence=1, n_conduction=1)
    (result,) = run_states(small, structure, ligands, solver, tmp_path, cubes=False)
    assert result.structure.n_host_atoms == 20
    assert result.states.converged
    assert result.states.gap > edges.gap + 0.1 / AUTOEV
    assert (tmp_path / "nc_1nm" / "levels.dat").is_file()


def test_workflow_writes_levels_densities_and_plots(fitted, tmp_path: Path) -> None:
    structure = StructureSettings(kind="supercell", supercell=(1, 1, 2))
    solver = SolverSettings(max_ke=3.0, n_valence=2, n_conduction=2)
    small = replace(fitted, bundle=shrink_bundle(fitted.bundle, 3.0, n_kpoints=21))
    (result,) = run_states(small, structure, {}, solver, tmp_path)
    assert result.states.converged
    assert result.states.gap > 0
    assert result.states.valence.energies.max() < result.states.conduction.energies.min()
    folder = tmp_path / "supercell"
    names = {"VBM", "VBM-1", "CBM", "CBM+1"}
    assert {p.name for p in folder.glob("density_*.cube")} == {f"density_{n}.cube" for n in names}
    assert (folder / "levels.png").stat().st_size > 0
    rows = [line.split() for line in (folder / "levels.dat").read_text().splitlines()]
    assert [r[0] for r in rows[1:5]] == ["VBM-1", "VBM", "CBM", "CBM+1"]
    density, _ = read_cube_data(folder / "density_VBM.cube")
    volume = abs(np.linalg.det(result.structure.cell))
    assert np.isclose(density.mean() * volume, 1.0)


@pytest.mark.slow
def test_cli_without_a_run_is_one_line(tmp_path: Path) -> None:
    command = [str(Path(sys.executable).parent / "dpp-states"), f"hydra.run.dir={tmp_path}/out"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: states.yaml, key 'run': no fitted run; expected run=<train.py run dir>, found none"
    ]

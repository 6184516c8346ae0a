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
from dpp.physics.terms.checks import assert_self_adjoint, check_terms
from dpp.slots import Slot
from dpp.states.edges import (
    BulkEdges,
    LigandPotential,
    band_edge_states,
    box_hamiltonian,
    bulk_edges,
    preconditioner,
)
from dpp.states.eigensolver import _orthonormal, folded_lobpcg
from dpp.states.hamiltonian import folded_basis
from dpp.states.realgamma import real_gamma
from dpp.states.settings import LigandSettings, SolverSettings, StructureSettings
from dpp.states.structures import bulk_atoms, nanocrystal, radius_for, read_structure, supercell
from dpp.states.workflow import at_cutoff, run_states

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


def test_at_cutoff_gives_the_bulk_edges_and_the_boxes_one_cutoff(fitted) -> None:
    """bench_states.py and dpp-states fold at the bulk band edges of the boxes' cutoff."""
    low = at_cutoff(fitted, 2.5)
    assert {system.settings.max_ke for system in low.bundle.systems} == {2.5}
    assert at_cutoff(fitted, None) is fitted
    expected = bulk_edges(replace(fitted, bundle=_low_cutoff(fitted, 2.5)).hamiltonian(), 4)
    assert bulk_edges(low.hamiltonian(), 4) == expected


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


def _projector_bundle(name: str, max_ke: float) -> Bundle:
    """CsPbI3 with its spin–orbit and nonlocal strengths, or zinc-blende CdSe (no inversion
    centre, a non-orthogonal cell) with invented ones."""
    if name == "CsPbI3":
        return shrink_bundle(dpp.io.bundle.load_bundle(DATA / "CsPbI3_soc"), max_ke, 1)
    bundle = shrink_bundle(dpp.io.bundle.load_bundle(EXAMPLES / "zb_CdSe"), max_ke, 1)
    bundle.pp_params[:, Slot.SPIN_ORBIT] = [0.5, 1.2]
    bundle.pp_params[:, Slot.NONLOCAL_1] = [0.3, -0.2]
    bundle.pp_params[:, Slot.NONLOCAL_2] = [0.01, 0.02]
    bundle.pp_params[:, Slot.NONLOCAL_0] = [0.4, -0.3]
    return bundle


PROJECTOR_CASES = [
    ("CsPbI3", 1.5, (1, 1, 2), {"spin_orbit": True}),
    ("CsPbI3", 1.5, (2, 1, 1), {"nonlocal_without_soc": True}),
    ("CdSe", 2.5, (1, 2, 2), {"spin_orbit": True}),
    ("CdSe", 2.5, (2, 1, 1), {"nonlocal_without_soc": True}),
    ("CdSe", 2.5, (1, 1, 2), {"nonlocal_s": True}),
    ("CdSe", 2.5, (2, 1, 1), {"spin_orbit": True, "nonlocal_s": True}),
]


@pytest.mark.parametrize(("name", "max_ke", "repeats", "switches"), PROJECTOR_CASES)
def test_supercell_identity_with_spin_orbit_and_nonlocal(name, max_ke, repeats, switches) -> None:
    """The identity with the separable spin–orbit and nonlocal projectors: each folded
    k-point's block of the box matrix has the eigenvalues of dpp's H(κ) (spinor with
    spin–orbit), the blocks do not couple, and the projectors change the levels."""
    bundle = _projector_bundle(name, max_ke)
    system = bundle.systems[0]
    labels, kpoints = folded_basis(Lattice.from_crystal(system.crystal).reciprocal, max_ke, repeats)
    folded = replace(bundle, systems=[replace(system, kpoints=kpoints)])
    bulk = build_hamiltonian(folded, **switches)
    plain = build_hamiltonian(folded)
    with torch.no_grad():
        expected = torch.linalg.eigvalsh(bulk.hamiltonians(0, torch.arange(len(kpoints))))
        without = torch.linalg.eigvalsh(plain.hamiltonians(0, torch.arange(len(kpoints))))
    box = box_hamiltonian(supercell(bulk_atoms(system), repeats), bulk, max_ke, {}, labels=labels)
    assert box.spinor == bulk.options.spin_orbit
    assert box.dim == expected.numel()
    matrix = box.dense()
    n, spins = len(labels) // len(kpoints), box.dim // box.n_basis
    blocks = matrix.reshape(spins, len(kpoints), n, spins, len(kpoints), n)
    for i in range(len(kpoints)):
        block = blocks[:, i, :, :, i, :].reshape(spins * n, spins * n)
        found = torch.linalg.eigvalsh(block)
        assert float((found - expected[i]).abs().max()) * AUTOEV < 1e-6
        if spins == 1:
            assert float((found - without[i]).abs().max()) * AUTOEV > 0.1
        blocks[:, i, :, :, i, :] = 0
    assert float(blocks.abs().max()) < 1e-12
    if spins == 2:
        spinless = np.sort(np.repeat(without.numpy().ravel(), 2))
        assert np.abs(np.sort(torch.linalg.eigvalsh(matrix).numpy()) - spinless).max() > 0.01


@pytest.mark.parametrize(
    "switches",
    [{"spin_orbit": True}, {"nonlocal_without_soc": True, "nonlocal_s": True}],
)
def test_every_box_term_is_hermitian(switches) -> None:
    """Each matrix-free term of a passivated CdSe dot with spin–orbit and nonlocal strengths
    passes the shipped adjoint check, as dpp's bulk terms (check_terms) do."""
    bundle = _projector_bundle("CdSe", 2.0)
    bulk = build_hamiltonian(bundle, **switches)
    check_terms(bulk)
    structure = nanocrystal(bulk_atoms(bundle.systems[0]), 9.0, 2.0, ligand_fraction={"Cd": 0.5})
    box = box_hamiltonian(structure, bulk, 1.5, {"Cd": LigandPotential(-0.5, 1.0)})
    terms = box.terms()
    wanted = {"kinetic", "local", "nonlocal"} | ({"spin_orbit"} if box.spinor else set())
    wanted |= {"nonlocal_s"} if bulk.options.nonlocal_s else set()
    assert set(terms) == wanted
    for name, operator in terms.items():
        assert_self_adjoint(name, operator, box.dim)
    assert_self_adjoint("H", box, box.dim)


def test_spinor_folded_solve_finds_kramers_pairs() -> None:
    """The folded solver on a spin–orbit box: the states nearest the reference, as the dense
    spectrum, in degenerate Kramers pairs."""
    bundle = _projector_bundle("CsPbI3", 1.5)
    bulk = build_hamiltonian(bundle, spin_orbit=True)
    box = box_hamiltonian(supercell(bulk_atoms(bundle.systems[0]), (1, 1, 1)), bulk, 1.5, {})
    dense = torch.linalg.eigvalsh(box.dense())
    reference = float(dense[26]) - 0.01  # the conduction edge (two Kramers pairs nearest)
    generator = torch.Generator().manual_seed(0)
    start = torch.randn(box.dim, 8, dtype=torch.complex128, generator=generator)
    states = folded_lobpcg(
        box, start, reference, preconditioner(box, reference), n_wanted=4, tol=1e-5, max_iter=400
    )
    nearest = dense[torch.argsort((dense - reference).abs())[:4]].sort().values
    assert states.converged
    torch.testing.assert_close(states.energies, nearest, rtol=0, atol=1e-8)
    assert float((states.energies[1] - states.energies[0]).abs()) < 1e-8


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


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("switches", [{}, {"spin_orbit": True, "nonlocal_s": True}])
def test_the_gpu_box_is_the_cpu_box(switches) -> None:
    """The box Hamiltonian and the folded solve on CUDA give the CPU's H ψ (1e-10 Ha) and
    band-edge energies (1e-8 Ha), with and without the spinor projector terms."""
    bundle = _projector_bundle("CdSe", 2.0)
    structure = nanocrystal(bulk_atoms(bundle.systems[0]), 9.0, 2.0, ligand_fraction={"Cd": 0.5})
    ligands = {"Cd": LigandPotential(-0.5, 1.0)}
    boxes = [
        box_hamiltonian(
            structure,
            build_hamiltonian(bundle, device=device, **switches),
            1.5,
            ligands,
            device=device,
        )
        for device in ("cpu", "cuda")
    ]
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(boxes[0].dim, 3, dtype=torch.complex128, generator=generator)
    torch.testing.assert_close(boxes[1](x.to("cuda")).cpu(), boxes[0](x), rtol=0, atol=1e-10)
    edges = BulkEdges(vbm=-0.25, cbm=-0.15)
    levels = [band_edge_states(box, edges, 2, 2, tol=1e-6) for box in boxes]
    for side in ("valence", "conduction"):
        cpu, gpu = (getattr(level, side).energies.cpu() for level in levels)
        torch.testing.assert_close(gpu, cpu, rtol=0, atol=1e-8)


def test_orthonormal_drops_dependent_columns_and_carries_the_images() -> None:
    """A block with a repeated column, a column inside span(others) and a tiny one: an
    orthonormal basis of the rest, orthogonal to the others, whose images under a matrix
    are the matrix applied to it (the LOBPCG blocks P and W)."""
    generator = torch.Generator().manual_seed(3)
    matrix = torch.randn(50, 50, dtype=torch.float64, generator=generator)
    others = torch.linalg.qr(torch.randn(50, 3, dtype=torch.float64, generator=generator))[0]
    fresh = torch.randn(50, 2, dtype=torch.float64, generator=generator)
    block = torch.cat([fresh, fresh[:, :1], others.sum(1, keepdim=True), 1e-30 * fresh[:, 1:]], 1)
    basis, image = _orthonormal([block, matrix @ block], [others, matrix @ others])
    assert basis.shape == (50, 2)
    torch.testing.assert_close(basis.T @ basis, torch.eye(2, dtype=torch.float64))
    assert float((others.T @ basis).abs().max()) < 1e-14
    torch.testing.assert_close(image, matrix @ basis)


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
        box,
        start,
        reference,
        preconditioner(box, reference),
        n_wanted=wanted,
        tol=1e-6,
        max_iter=400,
    )
    nearest = dense[torch.argsort((dense - reference).abs())[:wanted]].sort().values
    assert states.converged
    torch.testing.assert_close(states.energies, nearest, rtol=0, atol=1e-9)
    residual = box(states.vectors) - states.vectors * states.energies
    assert float(residual.norm(dim=0).max()) < 1e-6


@pytest.mark.parametrize("switches", [{}, {"nonlocal_without_soc": True}])
def test_real_gamma_is_the_box_hamiltonian_on_real_coordinates(switches) -> None:
    """At Γ without spinors: a unitary map to vectors with ψ(−G) = ψ(G)*, on which the
    real operator (two vectors per FFT) is H; none for spinors."""
    bundle = _projector_bundle("CdSe", 2.0)
    structure = nanocrystal(bulk_atoms(bundle.systems[0]), 9.0, 3.0, ligand_fraction={"Cd": 0.5})
    ligands = {"Cd": LigandPotential(-0.5, 1.0)}
    box = box_hamiltonian(structure, build_hamiltonian(bundle, **switches), 2.0, ligands)
    real = real_gamma(box)
    assert real is not None
    assert real.dim == box.n_basis
    generator = torch.Generator().manual_seed(2)
    vectors = torch.randn(real.dim, 5, dtype=torch.float64, generator=generator)
    waves = real.to_complex(vectors)
    torch.testing.assert_close(waves.mH @ waves, (vectors.T @ vectors).to(waves.dtype))
    torch.testing.assert_close(waves[real.mirror].conj(), waves, rtol=0, atol=0)
    expected = real.to_real(box(waves))
    torch.testing.assert_close(real(vectors), expected, rtol=0, atol=1e-12)
    spinor = build_hamiltonian(bundle, spin_orbit=True)
    assert real_gamma(box_hamiltonian(structure, spinor, 2.0, ligands)) is None


def test_band_edge_states_of_a_dot_are_the_dense_levels_in_few_h_applications(fitted) -> None:
    """A passivated 50-atom CdSe dot at 1.5 Hartree, edges bracketing its gap: the 4 + 4
    band-edge states of the folded solver (real coordinates, resonant preconditioner, soft
    locking) are the dense spectrum's levels nearest the gap, in fewer than 5,000 H
    applications (the complex solver with the kinetic preconditioner 1/(1 + (T/0.3)²) and
    no locking took 5,232)."""
    structure = nanocrystal(
        bulk_atoms(fitted.bundle.systems[0]), 9.0, 3.0, ligand_fraction={"Cd": 0.5, "Se": 0.5}
    )
    ligands = {"Cd": LigandPotential(-0.25, 1.0), "Se": LigandPotential(-0.5, 1.0)}
    box = box_hamiltonian(structure, fitted.hamiltonian(), 1.5, ligands)
    dense = torch.linalg.eigvalsh(box.dense())
    edges = BulkEdges(vbm=-4.75 / AUTOEV, cbm=-3.3 / AUTOEV)
    states = band_edge_states(box, edges, 4, 4, buffer=8, tol=1e-5)
    middle = 0.5 * (edges.vbm + edges.cbm)
    assert states.converged
    torch.testing.assert_close(
        states.valence.energies, dense[dense < middle][-4:], atol=1e-8, rtol=0
    )
    torch.testing.assert_close(
        states.conduction.energies, dense[dense > middle][:4], atol=1e-8, rtol=0
    )
    for side in (states.valence, states.conduction):
        residual = box(side.vectors) - side.vectors * side.energies
        assert float(residual.norm(dim=0).max()) < 1e-5
    assert states.valence.applications + states.conduction.applications < 5000


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


@pytest.mark.slow
def test_passivated_dots_have_no_gap_states_and_a_gap_falling_with_size(fitted, tmp_path) -> None:
    """The default ligands of conf/states.yaml on 1.0 and 1.3 nm CdSe dots at 2.5 Hartree:
    the dots' VBM below and CBM above the bulk edges (no surface state in the gap), and a gap
    above the bulk gap that decreases with the diameter (confinement)."""
    config = yaml.safe_load((Path(__file__).parent.parent / "conf" / "states.yaml").read_text())
    ligands = {host: LigandSettings(**values) for host, values in config["ligands"].items()}
    small = replace(fitted, bundle=shrink_bundle(fitted.bundle, 2.5))
    edges = bulk_edges(small.hamiltonian(), valence_bands=4)
    structure = StructureSettings(diameters_nm=(1.0, 1.3), margin_nm=0.4)
    solver = SolverSettings(n_valence=2, n_conduction=2)
    results = run_states(small, structure, ligands, solver, tmp_path, cubes=False, plots=False)
    gaps = [r.states.gap for r in results]
    for result in results:
        assert result.states.converged
        assert float(result.states.valence.energies.max()) < edges.vbm
        assert float(result.states.conduction.energies.min()) > edges.cbm
    assert gaps[0] > gaps[1] > edges.gap
    assert (tmp_path / "gap_vs_diameter.dat").is_file()


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

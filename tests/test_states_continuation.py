"""dpp.states.continuation: coarse-basis vectors prolonged onto a finer box, the continued
solve against the direct one, the levels of `solver.coarse_ke` and its validation."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import yaml
from bundle_support import DATA, EXAMPLES, shrink_bundle

import dpp
from dpp.errors import InputError, SettingError
from dpp.physics import build_hamiltonian
from dpp.run import settings_from_data
from dpp.states.continuation import prolong, solve_box
from dpp.states.edges import LigandPotential, box_hamiltonian, bulk_edges
from dpp.states.hamiltonian import label_index
from dpp.states.realgamma import real_gamma
from dpp.states.settings import SolverSettings
from dpp.states.structures import bulk_atoms, nanocrystal, supercell
from dpp.states.workflow import at_cutoff, cutoff_levels

CHECKPOINT = DATA / "extras" / "nn_zbCdSe" / "epoch_199_PPmodel.pth"
RUN_CONFIG = {
    "data": {"bundle": str(EXAMPLES / "zb_CdSe")},
    "model": {"name": "Net_relu_xavier_decay2", "hidden_layers": [20, 20, 20]},
    "hamiltonian": {"basis_search": "complete"},
}
LIGANDS = {"Cd": LigandPotential(-0.25, 1.0), "Se": LigandPotential(-0.5, 1.0)}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> dpp.run.FittedRun:
    folder = tmp_path_factory.mktemp("run")
    (folder / "config_resolved.yaml").write_text(yaml.safe_dump(RUN_CONFIG))
    shutil.copy(CHECKPOINT, folder / "best_PPmodel.pth")
    return dpp.load_run(folder)


@pytest.fixture(scope="module")
def dot(fitted):
    """A passivated 50-atom CdSe dot (20 host atoms)."""
    bulk = bulk_atoms(fitted.bundle.systems[0])
    return nanocrystal(bulk, 9.0, 3.0, ligand_fraction={"Cd": 0.5, "Se": 0.5})


def test_label_index_finds_every_label_and_refuses_a_missing_one() -> None:
    within = torch.tensor([[0, 0, 0], [1, -2, 3], [-1, 0, 0], [4, 4, -4]]).numpy()
    labels = within[[3, 0, 2]]
    assert label_index(labels, within).tolist() == [3, 0, 2]
    with pytest.raises(ValueError, match="subset"):
        label_index(torch.tensor([[5, 0, 0]]).numpy(), within)


def test_prolonged_vectors_see_the_coarse_hamiltonian(fitted, dot) -> None:
    """P the prolongation from the 1.0 to the 2.0 Hartree basis of one box: Pᴴ H_fine P =
    H_coarse (the coarse basis is a subset and V(G − G′) is the same), P is an isometry,
    the new plane waves get zeros, and the real-Γ coordinates of Px are Px's."""
    coarse = box_hamiltonian(dot, fitted.hamiltonian(), 1.0, LIGANDS)
    fine = box_hamiltonian(dot, fitted.hamiltonian(), 2.0, LIGANDS)
    assert fine.n_basis > 2 * coarse.n_basis
    generator = torch.Generator().manual_seed(4)
    x = torch.randn(coarse.dim, 6, dtype=torch.complex128, generator=generator)
    px = prolong(coarse, fine, x)
    torch.testing.assert_close(px.mH @ px, x.mH @ x)
    torch.testing.assert_close(px.mH @ fine(px), x.mH @ coarse(x), rtol=0, atol=1e-11)
    kinetic = fine.kinetic[px.abs().sum(1) > 0]
    assert float(kinetic.max()) < 1.0 < float(fine.kinetic.max())
    real = real_gamma(fine)
    waves = real_gamma(coarse).to_complex(x.real)
    prolonged = prolong(coarse, fine, waves)
    torch.testing.assert_close(real.to_complex(real.to_real(prolonged)), prolonged)


def test_prolongation_places_spinor_components_on_their_spin() -> None:
    """Spinors (2N, m), spin up first: Pᴴ H_fine P = H_coarse with CsPbI3's spin–orbit."""
    bundle = shrink_bundle(dpp.io.bundle.load_bundle(DATA / "CsPbI3_soc"), 1.5, 1)
    potential = build_hamiltonian(bundle, spin_orbit=True)
    box = supercell(bulk_atoms(bundle.systems[0]), (1, 1, 2))
    coarse = box_hamiltonian(box, potential, 0.8, {})
    fine = box_hamiltonian(box, potential, 1.5, {})
    assert coarse.spinor and coarse.projectors.active
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(coarse.dim, 3, dtype=torch.complex128, generator=generator)
    px = prolong(coarse, fine, x)
    torch.testing.assert_close(px.mH @ fine(px), x.mH @ coarse(x), rtol=0, atol=1e-11)


def test_continued_solve_gives_the_direct_levels_in_fewer_fine_applications(fitted, dot) -> None:
    """The dot at 2.5 Hartree, solved directly and from the 1.0 Hartree solve's block
    (folded about the dot's edges predicted from it): the same levels to 1e-7 Ha, in
    fewer H applications on the fine box (3,374 against 5,268)."""
    solver = SolverSettings(max_ke=2.5, coarse_ke=(1.0,), tol=1e-5)
    direct = solve_box(dot, cutoff_levels(fitted, replace(solver, coarse_ke=())), LIGANDS, solver)
    continued = solve_box(dot, cutoff_levels(fitted, solver), LIGANDS, solver)
    assert direct.states.converged and continued.states.converged
    assert continued.plane_waves == (619, direct.hamiltonian.n_basis)
    for side in ("valence", "conduction"):
        torch.testing.assert_close(
            getattr(continued.states, side).energies,
            getattr(direct.states, side).energies,
            rtol=0,
            atol=1e-7,
        )
    assert continued.applications[-1] < 0.8 * direct.applications[0]


def test_cutoff_levels_skip_cutoffs_at_or_above_the_box_cutoff(fitted) -> None:
    """Each level folds at the bulk band edges of its own cutoff; the box cutoff last."""
    solver = SolverSettings(max_ke=2.0, coarse_ke=(1.0, 1.5, 2.0, 3.0))
    levels = cutoff_levels(fitted, solver)
    assert [level.max_ke for level in levels] == [1.0, 1.5, 2.0]
    for level in levels:
        expected = bulk_edges(at_cutoff(fitted, level.max_ke).hamiltonian(), 4)
        assert level.edges == expected
    assert levels[0].edges != levels[-1].edges
    assert len(cutoff_levels(fitted, SolverSettings(max_ke=2.0, coarse_ke=()))) == 1


@pytest.mark.parametrize("value", [(2.5, 1.0), (2.5, 2.5), (0.0,), (-1.0, 2.0), "2.5", ["a"], 3.0])
def test_bad_continuation_cutoffs_are_refused(value) -> None:
    with pytest.raises(SettingError, match="coarse_ke"):
        SolverSettings(coarse_ke=value)
    with pytest.raises(InputError, match=r"solver\.coarse_ke"):
        settings_from_data(SolverSettings, {"coarse_ke": value}, "solver", "states.yaml")


def test_conf_states_continuation_default_is_the_settings_default() -> None:
    config = yaml.safe_load((Path(__file__).parent.parent / "conf" / "states.yaml").read_text())
    solver = SolverSettings(**config["solver"])
    assert solver.coarse_ke == SolverSettings().coarse_ke
    assert SolverSettings(coarse_ke=[1, 2.5]).coarse_ke == (1.0, 2.5)

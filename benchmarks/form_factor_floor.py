"""The band-loss floor of transferable local potentials, against a network's own loss.

    python benchmarks/form_factor_floor.py tests/data/InGaAsP
    python benchmarks/form_factor_floor.py tests/data/InGaAsP --checkpoint run/final_PPmodel.pth

Each species' form factor v_s(q) (Hartree·Bohr³) becomes a free piecewise-linear curve on
`--grid` points over the systems' |ΔG| range, shared by every system as the network's
curves are. Starting from the network's curves, Levenberg–Marquardt (Hellmann–Feynman
Jacobian, MINPACK column scaling) minimises the band loss Σ w_k u_b (E − E_ref)² (eV²) plus
`--alpha`·‖Δ²(v − v₀)‖², a curvature penalty on the change that keeps the curves smooth.

It prints the network's band loss, every iteration's band loss and penalty, and then how
well the network represents the final curves (its least-squares fit to them at every |ΔG|
of the systems, and the band loss of that fit). A floor far below the network's loss, with
a poor network fit to the floor's curves, says the network's parametrisation and not the
local-potential model limits the fit. The network options are those of bench_support; the
local potential is the only term (no spin–orbit, nonlocal or strain terms), and systems
with relative energies (relE_bIdx) or an order matrix are refused.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from dataclasses import dataclass

import torch
from bench_support import add_bundle_arguments, band_loss, model_for, trimmed

from dpp.io import load_bundle
from dpp.io.records import Bundle
from dpp.io.writers import write_qspace_table
from dpp.physics import PhysicsOptions, build_hamiltonian
from dpp.physics.bands import process_bands, spatial_columns
from dpp.physics.constants import AUTOEV
from dpp.physics.hamiltonian import PseudopotentialHamiltonian

LAMBDA_START = 1e-3
"""Initial Levenberg–Marquardt damping (relative to the scaled curvature)."""

MAX_TRIES = 10
"""Rejected steps (each with four times the damping) before an iteration gives up."""


def interpolation(q: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """(len(q), len(grid)) weights of linear interpolation on `grid` (1/Bohr)."""
    x = q.clamp(float(grid[0]), float(grid[-1]))
    upper = torch.searchsorted(grid, x, right=True).clamp(1, len(grid) - 1)
    fraction = (x - grid[upper - 1]) / (grid[upper] - grid[upper - 1])
    rows = torch.arange(len(x))
    weights = torch.zeros(len(x), len(grid), dtype=torch.float64)
    weights[rows, upper - 1] = 1.0 - fraction
    weights[rows, upper] += fraction
    return weights


@dataclass
class SystemFit:
    """What one system contributes: H(k) without the local term (Hartree), the interpolation
    weights on its |ΔG|, the present species, and the residual weights √(w_k u_b)."""

    index: int
    rest: torch.Tensor
    weights: torch.Tensor
    species: list[int]
    scale: torch.Tensor
    reference: torch.Tensor
    n_bands: int


def system_fits(
    hamiltonian: PseudopotentialHamiltonian, bundle: Bundle, grid: torch.Tensor
) -> list[SystemFit]:
    """Every system's fixed data on the q `grid` (1/Bohr); exits on unsupported systems."""
    fits = []
    for index, data in enumerate(bundle.systems):
        if data.order_matrix is not None or data.settings.relE_bIdx is not None:
            sys.exit(f"system {index}: relative energies and order matrices are not supported")
        geometry = hamiltonian.geometries[index]
        k = torch.arange(geometry.n_kpoints)
        operators = hamiltonian.term_operators(index, k)
        rest = sum(matrix for name, matrix in operators.items() if name != "local")
        weights = torch.as_tensor(data.kweights)[:, None] * torch.as_tensor(data.band_weights)
        fits.append(
            SystemFit(
                index,
                rest,
                interpolation(geometry.unique_q, grid),
                torch.nonzero(geometry.species_present).flatten().tolist(),
                weights.sqrt(),
                torch.as_tensor(data.ref_bands),
                data.n_bands,
            )
        )
    return fits


def solve(
    hamiltonian: PseudopotentialHamiltonian, fit: SystemFit, curves: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted band errors (eV, flattened over k and bands) of one system with the grid
    `curves` (points, species), and the eigenvectors (nK, N, columns) behind them."""
    geometry = hamiltonian.geometries[fit.index]
    values = fit.weights @ curves
    potential = sum(
        values[geometry.q_index, s] * geometry.structure_factors[s] for s in fit.species
    )
    energies, vectors = torch.linalg.eigh(fit.rest + potential)
    columns = spatial_columns(fit.n_bands, spin_orbit=False)
    bands = process_bands(energies[:, :columns], fit.n_bands, spin_orbit=False)
    return (fit.scale * (bands - fit.reference)).reshape(-1), vectors[..., :columns]


def jacobian(
    hamiltonian: PseudopotentialHamiltonian, fit: SystemFit, vectors: torch.Tensor, n_species: int
) -> torch.Tensor:
    """d(weighted band errors)/d(flattened curves) from the eigenvectors of `solve`
    (Hellmann–Feynman: dE/dV = ψ ψ†), (nK·nBands, points·species)."""
    geometry = hamiltonian.geometries[fit.index]
    n_kpoints, columns = vectors.shape[0], vectors.shape[-1]
    flat_index = geometry.q_index.reshape(-1)
    binned = torch.zeros(n_species, len(geometry.unique_q), n_kpoints, columns, dtype=torch.float64)
    for k in range(n_kpoints):
        psi = vectors[k]
        outer = psi.conj()[:, None, :] * psi[None, :, :]  # (N, N, columns)
        for s in fit.species:
            element = (outer * geometry.structure_factors[s][..., None]).real
            binned[s, :, k].index_add_(0, flat_index, element.reshape(-1, columns))
    # (points, species, nK, columns) in eV per Hartree·Bohr³, then each band's column
    derivative = torch.einsum("ug,sukc->gskc", fit.weights, binned) * AUTOEV
    per_band = derivative[..., torch.arange(fit.n_bands) // 2]  # (points, species, nK, nBands)
    rows = per_band.reshape(-1, n_kpoints * fit.n_bands).T
    return fit.scale.reshape(-1, 1) * rows


def curvature_operator(n_points: int, n_species: int, alpha: float) -> torch.Tensor:
    """√α Δ² acting on the flattened (points, species) curves."""
    second = torch.zeros(n_points - 2, n_points, dtype=torch.float64)
    rows = torch.arange(n_points - 2)
    second[rows, rows], second[rows, rows + 1], second[rows, rows + 2] = 1.0, -2.0, 1.0
    return alpha**0.5 * torch.kron(second, torch.eye(n_species, dtype=torch.float64))


@dataclass
class State:
    """The curves, their band loss and penalty (eV²), residual vector and eigenvectors."""

    curves: torch.Tensor
    bands: float
    smooth: float
    vector: torch.Tensor
    vectors: list[torch.Tensor]

    @property
    def total(self) -> float:
        return self.bands + self.smooth


def evaluate(
    hamiltonian: PseudopotentialHamiltonian,
    fits: list[SystemFit],
    curves: torch.Tensor,
    start: torch.Tensor,
    penalty: torch.Tensor,
) -> State:
    """Band loss, penalty and residuals of the grid `curves` (one eigensolve per system)."""
    parts = [solve(hamiltonian, fit, curves) for fit in fits]
    smooth = penalty @ (curves - start).reshape(-1)
    vector = torch.cat([error for error, _ in parts] + [smooth])
    bands = float(sum(error @ error for error, _ in parts))
    return State(curves, bands, float(smooth @ smooth), vector, [v for _, v in parts])


def levenberg_marquardt(
    hamiltonian: PseudopotentialHamiltonian,
    fits: list[SystemFit],
    start: torch.Tensor,
    penalty: torch.Tensor,
    iterations: int,
) -> torch.Tensor:
    """Minimise band loss + penalty from `start`; prints each iteration, returns the curves.
    The Jacobian comes from the eigenvectors of the accepted state: one eigensolve per trial."""
    damping, scale = LAMBDA_START, None
    began = time.perf_counter()
    state = evaluate(hamiltonian, fits, start, start, penalty)
    n_species = start.shape[1]
    print(f"{0:5d} {state.bands:14.6g}")
    for iteration in range(1, iterations + 1):
        rows = [
            jacobian(hamiltonian, f, v, n_species) for f, v in zip(fits, state.vectors, strict=True)
        ]
        matrix = torch.cat([*rows, penalty])
        normal, gradient = matrix.T @ matrix, matrix.T @ state.vector
        diagonal = normal.diagonal()
        scale = diagonal.clone() if scale is None else torch.maximum(scale, diagonal)
        tries = 0
        while tries < MAX_TRIES:
            tries += 1
            system = normal + damping * torch.diag(scale.clamp_min(1e-12))
            step = torch.linalg.solve(system, -gradient)
            trial = evaluate(
                hamiltonian, fits, state.curves + step.reshape(start.shape), start, penalty
            )
            drop = state.total - trial.total
            predicted = -float(gradient @ step) - 0.5 * float(step @ normal @ step)
            if drop > 0:
                state = trial
                ratio = drop / max(predicted, 1e-300)
                damping *= max(1.0 / 3.0, 1.0 - (2.0 * ratio - 1.0) ** 3)
                break
            damping *= 4.0
        print(
            f"{iteration:5d} {state.bands:14.6g} {state.smooth:12.4g} {damping:10.3g} {tries:5d} "
            f"{time.perf_counter() - began:9.1f}",
            flush=True,
        )
    return state.curves


def network_loss(hamiltonian: PseudopotentialHamiltonian, bundle: Bundle) -> float:
    """The band loss (eV²) of `hamiltonian` over every system and k-point."""
    with torch.no_grad():
        return sum(
            float(band_loss(hamiltonian, bundle, s, torch.arange(system.n_kpoints)))
            for s, system in enumerate(bundle.systems)
        )


def refit_network(model: torch.nn.Module, q: torch.Tensor, target: torch.Tensor) -> float:
    """Least-squares fit of `model` to `target` (Hartree·Bohr³) at `q`; returns the RMS misfit."""
    optimizer = torch.optim.LBFGS(
        model.parameters(), max_iter=5000, history_size=100, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        cost = (model(q[:, None]) - target).pow(2).mean()
        cost.backward()
        return cost

    optimizer.step(closure)
    with torch.no_grad():
        return float((model(q[:, None]) - target).pow(2).mean().sqrt())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    add_bundle_arguments(parser)
    parser.add_argument("--grid", type=int, default=60, help="q points of each curve")
    parser.add_argument("--alpha", type=float, default=1.0, help="curvature penalty (eV²)")
    parser.add_argument("--iterations", type=int, default=25)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--write-table", default=None, help="write the floor's curves as init_qSpace_pot.par"
    )
    args = parser.parse_args()
    if args.spin_orbit:
        sys.exit("spin-orbit systems are not supported: the floor is of the local term alone")
    torch.set_num_threads(args.threads)
    bundle = trimmed(load_bundle(args.bundle), args.kpoints, args.max_ke)
    model = model_for(args, bundle)
    options = PhysicsOptions(basis_search=args.basis_search)
    hamiltonian = build_hamiltonian(bundle, model, options)
    q_all = torch.cat([g.unique_q for g in hamiltonian.geometries]).unique()
    grid = torch.linspace(0.0, float(q_all.max()), args.grid, dtype=torch.float64)
    with torch.no_grad():
        start = hamiltonian.form_factors(grid)
    fits = system_fits(hamiltonian, bundle, grid)
    penalty = curvature_operator(args.grid, bundle.n_species, args.alpha)
    print(f"network band loss {network_loss(hamiltonian, bundle):.6g} eV^2")
    print(f"{'iter':>5} {'band loss':>14} {'penalty':>12} {'damping':>10} {'tries':>5} {'time':>9}")
    curves = levenberg_marquardt(hamiltonian, fits, start, penalty, args.iterations)
    if args.write_table is not None:
        write_qspace_table(args.write_table, grid.numpy(), curves.numpy(), bundle.species)
    target = interpolation(q_all, grid) @ curves
    refitted = copy.deepcopy(model)
    misfit = refit_network(refitted, q_all, target)
    spread = float(target.pow(2).mean().sqrt())
    fitted = build_hamiltonian(bundle, refitted, options)
    print(
        f"network fitted to the floor's curves: RMS misfit {misfit:.4g} of RMS {spread:.4g} "
        f"Hartree Bohr^3, band loss {network_loss(fitted, bundle):.6g} eV^2"
    )


if __name__ == "__main__":
    main()

"""Electron–phonon couplings at the gap k-point (physics.md §13.2), differentiable.

For a phonon q, atom α and Cartesian direction γ, the potential derivative between
|k₀+G_m⟩ and |k'+G_n⟩, with k₀ = k[idxGap] and k' = k₀ + q + g0 a listed k-point
(g0 any reciprocal-lattice vector, so the right basis is relabelled G_n → G_n + g0), is

    dV[m, n] = i ΔG'_γ e^{iΔG'·τ_α}/Ω · [ v_s(|ΔG'|) + spin–orbit + nonlocal kernels ]
    ΔG' = K_m − K'_n,   K_m = k₀ + G_m,   K'_n = k' + G_n                      (Hartree/Bohr)

The kernels of physics.md §5.6–5.8 are evaluated between the two wave-vector sets. The
coupling averages |⟨ψ_a(k₀)|dV|ψ_b(k')⟩| over the degenerate edge sets and is in eV/Bohr.

Because e^{iΔG'·τ}/Ω and ΔG'_γ = K_mγ − K'_nγ are rank-one and rank-two in (m, n), dV is
never formed: ⟨L|dV|R⟩ = (i/Ω)[(K_γ∘L̃)ᴴ M R̃ − L̃ᴴ M (K'_γ∘R̃)] with L̃ = e^{−iK·τ}∘L,
R̃ = e^{−iK'·τ}∘R and M the real per-species operator (local + nonlocal, spin–orbit blocks).

The clone's average of |M_ab| (`mean_abs`, the default) depends on the basis the eigensolver
picks inside a degenerate set (Kramers pairs, Γ quartets); `rms` = sqrt(mean |M_ab|²) is the
basis-independent alternative and equals it for single states.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from dpp.errors import InputError
from dpp.io.observables import CouplingTargets
from dpp.io.records import SystemData
from dpp.physics.constants import AUTOEV
from dpp.physics.eigensolver import lowest_eigh_raw
from dpp.physics.geometry import Q_GROUPING
from dpp.physics.hamiltonian import PseudopotentialHamiltonian
from dpp.physics.projectors import S_CHANNEL, angular_weight, channel_radial, radial_nodes_for
from dpp.physics.radial import projector_rules
from dpp.slots import Slot

CouplingKey = tuple[int, int, int, str]
"""(atom α, direction 0|1|2, q index, 'vb'|'cb'), as `CouplingTargets.values`."""

BANDS = ("vb", "cb")
REDUCTIONS = ("mean_abs", "rms")

DEGENERACY_TOL = 1e-5
"""Two states belong to one edge set when their energies differ by less than this (Hartree)."""

KPOINT_TOL = 1e-6
"""Fractional coordinates closer than this (modulo integers) name the same k-point."""

_EXTRA_STATES = 8
"""States computed above max(idxVB, idxCB) to close the conduction set (more if needed)."""


# -- k-point and degenerate-set bookkeeping ------------------------------------------------


def match_kpoint(
    kpoints: np.ndarray, target: np.ndarray, tol: float = KPOINT_TOL
) -> tuple[int, np.ndarray] | None:
    """Row j and integer g0 with kpoints[j] = target + g0 (fractional), or None.

    A direct match (g0 = 0) wins; otherwise the smallest umklapp |g0|₁.
    """
    shift = np.asarray(kpoints, dtype=np.float64) - np.asarray(target, dtype=np.float64)
    g0 = np.rint(shift)
    close = np.flatnonzero(np.all(np.abs(shift - g0) < tol, axis=1))
    if close.size == 0:
        return None
    best = int(close[np.argmin(np.abs(g0[close]).sum(axis=1))])
    return best, g0[best].astype(np.int64)


def edge_set(
    energies: np.ndarray | torch.Tensor, index: int, band: str, tol: float = DEGENERACY_TOL
) -> list[int]:
    """Raw indices of a band-edge degenerate set from ascending energies (Hartree).

    `vb`: `index` and the states directly below it, `cb`: `index` and the states directly
    above it, as long as |E − E[index]| < tol.
    """
    if band not in BANDS:
        raise ValueError(f"band must be one of {BANDS}, got {band!r}")
    values = np.asarray(torch.as_tensor(energies).detach().cpu(), dtype=np.float64)
    step = -1 if band == "vb" else 1
    members = [index]
    other = index + step
    while 0 <= other < values.size and abs(values[other] - values[index]) < tol:
        members.append(other)
        other += step
    return sorted(members)


# -- differentiable eigenvectors of a degenerate set ----------------------------------------


class _SetVectors(torch.autograd.Function):
    """Eigenvectors V (dim, n_D) of one isolated set D of a Hermitian H, differentiable in H.

    Backward: the parallel-transported first-order response over the whole complement,
    dv_a = Σ_{j∉D} v_j ⟨v_j|dH|v_a⟩ / (E_a − E_j), computed exactly as the solve
    (E_a − H + P_D) x_a = Q ∂L/∂v_a (P_D = V Vᴴ, Q = 1 − P_D); then ∂L/∂H = herm(Σ_a x_a v_aᴴ).
    The LU factors of those matrices are kept for later backward passes through the same
    graph (Gauss–Newton takes one per residual): O(dim²) per state after the first.
    """

    @staticmethod
    def forward(ctx, matrix: torch.Tensor, values: torch.Tensor, vectors: torch.Tensor):
        ctx.save_for_backward(matrix.detach(), values, vectors)
        ctx.factors = None
        return vectors.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        matrix, values, vectors = ctx.saved_tensors
        if ctx.factors is None:
            shifted = vectors @ vectors.mH - matrix
            diagonal = torch.arange(matrix.shape[-1], device=matrix.device)
            ctx.factors = []
            for value in values:
                system = shifted.clone()
                system[diagonal, diagonal] += value
                ctx.factors.append(torch.linalg.lu_factor(system))
        rhs = grad - vectors @ (vectors.mH @ grad)
        solutions = [
            torch.linalg.lu_solve(lu, pivots, rhs[:, a, None])[:, 0]
            for a, (lu, pivots) in enumerate(ctx.factors)
        ]
        gradient = torch.stack(solutions, dim=-1) @ vectors.mH
        return 0.5 * (gradient + gradient.mH), None, None


def edge_eigenpairs(
    matrix: torch.Tensor, idx_vb: int, idx_cb: int, solver: str = "auto"
) -> tuple[torch.Tensor, torch.Tensor, dict[str, list[int]]]:
    """Lowest eigenpairs of one H(k) that close both edge sets, and the sets (no autograd).

    Returns energies (n,) in Hartree, eigenvectors (dim, n) and {'vb': [...], 'cb': [...]}
    of raw indices (`edge_set`); n grows until the conduction set is closed.
    """
    dim = matrix.shape[-1]
    n_eig = min(dim, max(idx_vb, idx_cb) + 1 + _EXTRA_STATES)
    while True:
        values, vectors = lowest_eigh_raw(matrix.detach()[None], n_eig, solver)
        values, vectors = values[0], vectors[0]
        sets = {"vb": edge_set(values, idx_vb, "vb"), "cb": edge_set(values, idx_cb, "cb")}
        if sets["cb"][-1] < n_eig - 1 or n_eig == dim:
            return values, vectors, sets
        n_eig = min(dim, 2 * n_eig)


def _edge_states(
    matrix: torch.Tensor, idx_vb: int, idx_cb: int, solver: str, k_index: int
) -> dict[str, torch.Tensor]:
    """Differentiable eigenvectors (dim, n_D) of the vb and cb edge sets of one H(k).

    Warns when an edge index cuts through a degenerate level (state idxVB+1 or idxCB−1
    within DEGENERACY_TOL): the set is then part of a level and g depends on the eigensolver.
    """
    values, vectors, sets = edge_eigenpairs(matrix, idx_vb, idx_cb, solver)
    for key, index, neighbour in (("idxVB", idx_vb, idx_vb + 1), ("idxCB", idx_cb, idx_cb - 1)):
        if (
            0 <= neighbour < values.shape[0]
            and abs(float(values[neighbour] - values[index])) < DEGENERACY_TOL
        ):
            warnings.warn(
                f"{key} = {index} splits a degenerate level at k-point {k_index} (state "
                f"{neighbour} is within {DEGENERACY_TOL:g} Hartree): its coupling set is part "
                "of the level and depends on the eigensolver's basis",
                stacklevel=3,
            )
    return {
        band: _SetVectors.apply(matrix, values[members], vectors[:, members])
        for band, members in sets.items()
    }


# -- potential-derivative matrix elements ----------------------------------------------------


def pair_kernels(
    left_waves: torch.Tensor, right_waves: torch.Tensor, channels: Sequence[str]
) -> dict[str, torch.Tensor]:
    """Spin–orbit and nonlocal kernels between K_m (left, (N, 3)) and K'_n (right, (N', 3)),
    only those of `channels`.

    Wave vectors in 1/Bohr; real, by channel: "soc" (3, N, N') P·I_0.7 ∘ (K_m × K'_n)_{x,y,z},
    "nl1" P·I_1.0 ∘ (K_m·K'_n) and "nl2" P·J ∘ (K_m·K'_n) (N, N'), with P = 12π/(|K_m||K'_n|)
    and every entry zero where |K_m| or |K'_n| is zero, and the s-channel "nl0" (N, N')
    4π ∫ r² j0 j0 exp(−r²/w²) dr (physics.md §5.6–5.8).
    """
    left_norm, right_norm = left_waves.norm(dim=1), right_waves.norm(dim=1)
    k_max = float(torch.cat([left_norm, right_norm]).max())
    rules = projector_rules(radial_nodes_for(k_max))

    def radial(channel: str) -> torch.Tensor:
        nodes, weights = (torch.as_tensor(a, dtype=left_waves.dtype) for a in rules[channel])
        nodes, weights = nodes.to(left_waves.device), weights.to(left_waves.device)
        left = channel_radial(left_norm, nodes, channel) * weights
        return angular_weight(channel) * left @ channel_radial(right_norm, nodes, channel).T

    kernels = {}
    if "soc" in channels:
        lx, ly, lz = left_waves.unbind(1)
        rx, ry, rz = right_waves.unbind(1)
        soc = radial("soc")
        kernels["soc"] = torch.stack(
            [
                soc * (torch.outer(ly, rz) - torch.outer(lz, ry)),
                soc * (torch.outer(lz, rx) - torch.outer(lx, rz)),
                soc * (torch.outer(lx, ry) - torch.outer(ly, rx)),
            ]
        )
    if "nl1" in channels or "nl2" in channels:
        dot = left_waves @ right_waves.T
        kernels.update({c: radial(c) * dot for c in ("nl1", "nl2") if c in channels})
    if S_CHANNEL in channels:
        kernels[S_CHANNEL] = radial(S_CHANNEL)
    return kernels


def _group_norms(norms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Distinct values of `norms` (grouped within Q_GROUPING) and the index of each entry."""
    keys = torch.round(norms / Q_GROUPING).to(torch.int64)
    _, inverse = torch.unique(keys, return_inverse=True)
    chosen = torch.empty(int(inverse.max()) + 1, dtype=torch.long, device=norms.device)
    chosen.scatter_(0, inverse.reshape(-1), torch.arange(norms.numel(), device=norms.device))
    return norms.reshape(-1)[chosen], inverse


def _apply_operator(
    diagonal: torch.Tensor, soc: torch.Tensor | None, vectors: torch.Tensor
) -> torch.Tensor:
    """M @ vectors for the real spin-diagonal block `diagonal` (N, N) and, on spinors, the
    spin–orbit kernels `soc` (3, N, N) scaled by a5 (spin-up block first)."""
    dtype = vectors.dtype
    block = diagonal.to(dtype)
    if soc is None:
        return block @ vectors
    n = block.shape[0]
    up, down = vectors[:n], vectors[n:]
    cx, cy, cz = (component.to(dtype) for component in soc)
    top = block @ up - 0.5j * (cz @ up) - 0.5j * (cx @ down) - 0.5 * (cy @ down)
    bottom = block @ down + 0.5j * (cz @ down) - 0.5j * (cx @ up) + 0.5 * (cy @ up)
    return torch.cat([top, bottom])


def potential_derivative_elements(
    hamiltonian: PseudopotentialHamiltonian,
    system: int,
    left_k: torch.Tensor,
    right_k: torch.Tensor,
    left: torch.Tensor,
    right: torch.Tensor,
    table: torch.Tensor | None = None,
) -> torch.Tensor:
    """⟨L_a|dV/dτ_αγ|R_b⟩ for every atom α and direction γ: complex (n_atoms, 3, nL, nR).

    `left_k`, `right_k` (3,) are the Cartesian k of the two bases (1/Bohr): the left basis is
    K_m = left_k + G_m, the right one K'_n = right_k + G_n, so right_k = k₀ + q + g0 carries
    the umklapp relabelling. `left` (dim, nL) and `right` (dim, nR) are vectors in these
    bases (dim = N, or 2N spin-up first with spin–orbit). Result in Hartree/Bohr,
    differentiable in the form factors and in a5–a7 through `table` (default: current).
    """
    table = hamiltonian.pp_table() if table is None else table
    geometry = hamiltonian.geometries[system]
    crystal = hamiltonian.systems[system].crystal
    spinor = hamiltonian.options.spin_orbit
    device, real = geometry.basis.device, geometry.basis.dtype
    left_waves = left_k.to(device, real) + geometry.basis
    right_waves = right_k.to(device, real) + geometry.basis

    norms, inverse = _group_norms((left_waves[:, None, :] - right_waves[None, :, :]).norm(dim=-1))
    form_factors = hamiltonian.form_factors(norms, table, geometry.volume_ratio)
    options = hamiltonian.options
    channels = []
    if options.nonlocal_active:
        channels += ["nl1", "nl2", "soc"] if spinor else ["nl1", "nl2"]
    if options.nonlocal_s:
        channels.append(S_CHANNEL)
    kernels = pair_kernels(left_waves, right_waves, channels)

    positions = torch.as_tensor(
        geometry.lattice.cartesian_positions(crystal.fractional), dtype=real, device=device
    )
    copies = 2 if spinor else 1
    left_k_tiled = left_waves.repeat(copies, 1)  # (dim, 3)
    right_k_tiled = right_waves.repeat(copies, 1)
    left_phase = torch.exp(-1j * (positions @ left_waves.T)).repeat(1, copies)  # (atoms, dim)
    right_phase = torch.exp(-1j * (positions @ right_waves.T)).repeat(1, copies)

    per_atom: dict[int, torch.Tensor] = {}
    for s, symbol in enumerate(hamiltonian.species):
        atoms = [a for a, atom_symbol in enumerate(crystal.symbols) if atom_symbol == symbol]
        if not atoms:
            continue
        diagonal = form_factors[:, s][inverse]
        soc = None
        if options.nonlocal_active:
            diagonal = (
                diagonal
                + table[s, Slot.NONLOCAL_1] * kernels["nl1"]
                + table[s, Slot.NONLOCAL_2] * kernels["nl2"]
            )
            if spinor:
                soc = table[s, Slot.SPIN_ORBIT] * kernels["soc"]
        if options.nonlocal_s:
            diagonal = diagonal + table[s, Slot.NONLOCAL_0] * kernels[S_CHANNEL]
        shifted_right = right_phase[atoms][:, :, None] * right[None]  # (A, dim, nR)
        columns = torch.cat(
            [
                shifted_right[:, :, None, :],
                right_k_tiled[None, :, :, None] * shifted_right[:, :, None, :],
            ],
            dim=2,
        )  # (A, dim, 4, nR): R̃, K'_x R̃, K'_y R̃, K'_z R̃
        n_atoms, dim, _, n_right = columns.shape
        flat = columns.permute(1, 0, 2, 3).reshape(dim, -1)
        applied = _apply_operator(diagonal, soc, flat).reshape(dim, n_atoms, 4, n_right)
        shifted_left = (left_phase[atoms][:, :, None] * left[None]).conj()  # (A, dim, nL)
        outer = torch.einsum(
            "mg,aml,mar->aglr", left_k_tiled.to(applied.dtype), shifted_left, applied[:, :, 0]
        )
        inner = torch.einsum("aml,magr->aglr", shifted_left, applied[:, :, 1:])
        elements = (1j / abs(geometry.lattice.volume)) * (outer - inner)
        per_atom.update(zip(atoms, elements, strict=True))
    return torch.stack([per_atom[a] for a in range(len(crystal.symbols))])


def coupling_magnitude(elements: torch.Tensor, reduction: str = "mean_abs") -> torch.Tensor:
    """g from matrix elements (…, nL, nR) in Hartree/Bohr → (…) in eV/Bohr.

    `mean_abs` (physics.md §13.2): AUTOEV · mean |M_ab|; independent of eigenvector phases
    but not of the basis chosen inside a degenerate set. `rms`: AUTOEV · sqrt(mean |M_ab|²),
    invariant under any unitary change of basis inside the sets; equal for single states.
    """
    if reduction == "mean_abs":
        return AUTOEV * elements.abs().mean(dim=(-2, -1))
    if reduction == "rms":
        count = elements.shape[-2] * elements.shape[-1]
        return AUTOEV * torch.linalg.vector_norm(elements, dim=(-2, -1)) / math.sqrt(count)
    raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


# -- the observable --------------------------------------------------------------------------


def _edge_indices(data: SystemData) -> tuple[int, int, int]:
    settings = data.settings
    found = {"idxGap": settings.idx_gap, "idxVB": settings.idx_vb, "idxCB": settings.idx_cb}
    for key, value in found.items():
        if value is None:
            raise InputError(
                data.files.get("input"),
                f"couplings need '{key}'",
                key=key,
                expected="a 0-based index",
                found="unset",
            )
    if settings.idx_gap >= data.n_kpoints:
        raise InputError(
            data.files.get("input"),
            "k-point index out of range",
            key="idxGap",
            expected=f"< {data.n_kpoints} (rows of kpoints_X.par)",
            found=str(settings.idx_gap),
        )
    return settings.idx_gap, settings.idx_vb, settings.idx_cb


def _right_kpoints(
    data: SystemData, idx_gap: int, qpoints: np.ndarray, qpoints_file: str | Path | None
) -> list[int]:
    """The listed k-point k' = k₀ + q + g0 of every q row (InputError when missing)."""
    matches = []
    for row, q in enumerate(qpoints):
        target = data.kpoints[idx_gap] + q
        match = match_kpoint(data.kpoints, target)
        if match is None:
            raise InputError(
                qpoints_file or data.files.get("qpoints"),
                f"q-point row {row + 1} (q index {row}) has no partner k-point",
                expected="k[idxGap] + q in kpoints_X.par up to a reciprocal-lattice vector",
                found="k[idxGap] + q = (" + ", ".join(f"{x:.6g}" for x in target) + ")",
            )
        matches.append(match[0])
    return matches


def electron_phonon_couplings(
    hamiltonian: PseudopotentialHamiltonian,
    system: int,
    qpoints: np.ndarray,
    *,
    qpoints_file: str | Path | None = None,
    reduction: str = "mean_abs",
) -> dict[CouplingKey, torch.Tensor]:
    """g(α, γ, q, band) in eV/Bohr for every atom, direction, q row and band edge.

    `qpoints` (n_q, 3) are fractional phonon wave vectors (qpoints_X.par, named in errors as
    `qpoints_file`, default the system's). Edge sets are recomputed from H(k₀) and H(k') at
    every call (raw indices idxVB/idxCB, tolerance DEGENERACY_TOL).

    Gradient (network weights and trainable slots a0–a8): through dV, and through the
    eigenvectors by exact first-order perturbation theory over the whole basis (one linear
    solve per edge state in backward). The eigenvectors of a degenerate set are
    parallel-transported, so with `rms` (and whenever the sets are single states) it is the
    gradient of g; with `mean_abs` and a degenerate set, g depends on the basis the
    eigensolver picks inside the set, and the gradient is that of g in the transported basis.
    A batch-norm model is called on the distinct |ΔG'| only; use it in eval mode.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    data = hamiltonian.systems[system]
    idx_gap, idx_vb, idx_cb = _edge_indices(data)
    qpoints = np.atleast_2d(np.asarray(qpoints, dtype=np.float64))
    right_k = _right_kpoints(data, idx_gap, qpoints, qpoints_file)
    dimension = hamiltonian.dimension(system)
    for key, index in (("idxVB", idx_vb), ("idxCB", idx_cb)):
        if index >= dimension:
            raise InputError(
                data.files.get("input"),
                "band index outside the Hamiltonian",
                key=key,
                expected=f"< {dimension} (raw eigenvector index)",
                found=str(index),
            )

    table = hamiltonian.pp_table()
    geometry = hamiltonian.geometries[system]
    k_list = sorted({idx_gap, *right_k})
    k_indices = torch.tensor(k_list, dtype=torch.long, device=geometry.kpoints.device)
    matrices = hamiltonian.hamiltonians(system, k_indices, table)
    states = {}
    for k, matrix in zip(k_list, matrices, strict=True):
        states[k] = _edge_states(matrix, idx_vb, idx_cb, hamiltonian.options.eigensolver, k)

    couplings: dict[CouplingKey, torch.Tensor] = {}
    for q_index, k_right in enumerate(right_k):
        left = torch.cat([states[idx_gap][band] for band in BANDS], dim=1)
        right = torch.cat([states[k_right][band] for band in BANDS], dim=1)
        elements = potential_derivative_elements(
            hamiltonian,
            system,
            geometry.kpoints[idx_gap],
            geometry.kpoints[k_right],
            left,
            right,
            table,
        )
        n_left_vb = states[idx_gap]["vb"].shape[1]
        n_right_vb = states[k_right]["vb"].shape[1]
        blocks = {
            "vb": elements[..., :n_left_vb, :n_right_vb],
            "cb": elements[..., n_left_vb:, n_right_vb:],
        }
        for band, block in blocks.items():
            values = coupling_magnitude(block, reduction)
            for atom in range(values.shape[0]):
                for direction in range(3):
                    couplings[(atom, direction, q_index, band)] = values[atom, direction]
    return couplings


def coupling_loss(
    values: Mapping[CouplingKey, torch.Tensor],
    targets: CouplingTargets | Mapping[CouplingKey, float],
    qweights: Sequence[float] | np.ndarray,
) -> torch.Tensor:
    """Σ_keys w_q (|g| − |g_ref|)² over keys present in both sets (physics.md §7.5), eV²/Bohr².

    `qweights` are the weights of qpoints_X.par, indexed by the q index of each key.
    """
    reference = targets.values if isinstance(targets, CouplingTargets) else targets
    keys = [key for key in values if key in reference]
    if not keys:
        device = next(iter(values.values())).device if values else None
        return torch.zeros((), dtype=torch.float64, device=device)
    terms = [
        float(qweights[key[2]]) * (values[key].abs() - abs(reference[key])) ** 2 for key in keys
    ]
    return torch.stack(terms).sum()

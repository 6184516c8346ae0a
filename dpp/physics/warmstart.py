"""Warm-started eigensolves: the previous eigenvectors of every (system, k) and when to trust them.

Each Hamiltonian view owns one `WarmStart`. For every k-point it keeps the block X of
m = n_eig + buffer Ritz vectors of its last solve; the next solve of that k-point starts the
block Davidson from them. A k-point is solved densely instead (and its block refreshed) when

- nothing is cached for it, or its block is smaller than this request needs (`cold`; a
  larger block, e.g. left by a request for more eigenpairs, is used as it is);
- it was warm-started `davidson_refresh` times in a row (`refresh`);
- H may have moved so far that the block could miss a wanted state (`moved`). Every term
  bounds ‖ΔH‖₂ between two parameter states (`OperatorTerm.drift`, k-independent,
  evaluated once per system and evaluation) and the bounds δ accumulate per system. The
  spectrum of the new H on the complement of X then lies above floor = c − δ, with c the
  lower estimate θ_{m−1} − ‖r_{m−1}‖ of the states outside the block at the last solve.
  After the first Rayleigh–Ritz step, with R₀ = (1 − XXᴴ)HX and θ₀ the bound of the highest
  wanted eigenvalue, every wanted eigenvector has sin∠(e, X) ≤ ‖R₀‖₂/(floor − θ₀)
  (Davis–Kahan); the warm start is kept while that is at most `MAX_SINE`. The numerator is
  the actual change seen by the block, so only the floor depends on the (pessimistic)
  norm bound;
- the Davidson iteration did not converge within `davidson_max_iter` (`unconverged`).

`snapshot()`/`restore()` save and bring back the whole state (a rejected Monte Carlo move
restores the accepted state's vectors); `state_dict()`/`load_state_dict()` carry it through a
checkpoint (a resumed fit solves as the uninterrupted one); `invalidate()` forgets everything.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import torch

from dpp.physics.davidson import block_davidson
from dpp.physics.eigensolver import lowest_eigh_raw
from dpp.physics.options import PhysicsOptions
from dpp.physics.terms import Coefficients, OperatorTerm, Parameters

MAX_SINE = 0.8
"""Largest guaranteed sin∠ between a wanted eigenvector and the seed block (every wanted
state keeps a component of at least 0.6 in the block)."""


@dataclass(frozen=True)
class _Block:
    """The last solve of one k-point: m orthonormal vectors and their Ritz values."""

    vectors: torch.Tensor  # (dim, m), detached
    values: torch.Tensor  # (m,) ascending, Hartree
    ceiling: float  # lower estimate of the states outside the block: θ_{m−1} − ‖r_{m−1}‖
    stamp: float  # the system's accumulated drift when solved (Hartree)
    age: int  # warm-started solves since the last dense one


@dataclass
class WarmStart:
    """Per-view state of the warm-started eigensolver; `stats` counts solves by kind
    (`iterative`, and the dense ones by reason: `cold`, `refresh`, `moved`, `unconverged`)."""

    blocks: dict[tuple[int, int], _Block] = field(default_factory=dict)
    drift: dict[int, float] = field(default_factory=dict)
    states: dict[int, list[object]] = field(default_factory=dict)
    stats: Counter = field(default_factory=Counter)

    def snapshot(self) -> WarmStart:
        """A copy of the vectors and drift bookkeeping (blocks are immutable: shallow)."""
        return WarmStart(dict(self.blocks), dict(self.drift), dict(self.states))

    def restore(self, snapshot: WarmStart) -> None:
        self.blocks = dict(snapshot.blocks)
        self.drift = dict(snapshot.drift)
        self.states = dict(snapshot.states)

    def state_dict(self) -> dict[str, object]:
        """The vectors and drift bookkeeping as plain containers of tensors and numbers (what a
        `weights_only` torch.load reads back)."""
        blocks = [
            (system, k, b.vectors, b.values, b.ceiling, b.stamp, b.age)
            for (system, k), b in self.blocks.items()
        ]
        return {"blocks": blocks, "drift": dict(self.drift), "states": dict(self.states)}

    def load_state_dict(self, state: dict[str, object], device: torch.device) -> None:
        """Bring back a `state_dict()`, its tensors on `device`."""

        def moved(value: object) -> object:
            if isinstance(value, torch.Tensor):
                return value.to(device)
            if isinstance(value, (tuple, list)):
                return type(value)(moved(v) for v in value)
            return value

        self.blocks = {
            (system, k): _Block(vectors.to(device), values.to(device), ceiling, stamp, age)
            for system, k, vectors, values, ceiling, stamp, age in state["blocks"]
        }
        self.drift = dict(state["drift"])
        self.states = {system: moved(value) for system, value in state["states"].items()}

    def invalidate(self) -> None:
        self.blocks.clear()
        self.drift.clear()
        self.states.clear()

    def note_parameters(
        self,
        system: int,
        terms: list[OperatorTerm],
        parameters: Parameters,
        coefficients: list[Coefficients],
    ) -> None:
        """Accumulate the bound on how far H of `system` moved since its last evaluation."""
        states = [
            term.drift_state(parameters, group)
            for term, group in zip(terms, coefficients, strict=True)
        ]
        previous = self.states.get(system)
        if previous is not None:
            moved = sum(
                term.drift(before, after)
                for term, before, after in zip(terms, previous, states, strict=True)
            )
            self.drift[system] = self.drift.get(system, 0.0) + moved
        self.states[system] = states

    def solve(
        self,
        system: int,
        k_indices: list[int],
        matrices: torch.Tensor,
        n_eig: int,
        options: PhysicsOptions,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Lowest `n_eig` eigenpairs (B, n_eig), (B, dim, n_eig) of detached `matrices`."""
        dim = matrices.shape[-1]
        block = block_size(n_eig, dim, options)
        if block is None:
            self.stats["cold"] += len(k_indices)
            return lowest_eigh_raw(matrices, n_eig, options.eigensolver)
        stamp = self.drift.get(system, 0.0)
        dense, warm = [], []
        for row, k in enumerate(k_indices):
            reason = self._dense_reason(
                self.blocks.get((system, k)), n_eig, block, dim, stamp, options
            )
            if reason is None:
                warm.append(row)
            else:
                self.stats[reason] += 1
                dense.append(row)
        values = matrices.new_empty((len(k_indices), n_eig), dtype=torch.float64)
        vectors = matrices.new_empty((len(k_indices), dim, n_eig))
        widths: dict[int, list[int]] = {}
        for row in warm:
            width = self.blocks[(system, k_indices[row])].vectors.shape[1]
            widths.setdefault(width, []).append(row)
        for rows in (b for group in widths.values() for b in _batches(group, matrices.device)):
            cached = [self.blocks[(system, k_indices[row])] for row in rows]
            result = block_davidson(
                _rows_of(matrices, rows),
                torch.stack([block.vectors for block in cached]),
                n_eig,
                tol=options.davidson_tol,
                max_iter=options.davidson_max_iter,
                complement_floor=torch.tensor(
                    [block.ceiling - (stamp - block.stamp) for block in cached],
                    dtype=torch.float64,
                    device=matrices.device,
                ),
                max_sine=MAX_SINE,
            )
            converged, admissible = result.converged.tolist(), result.admissible.tolist()
            ceilings = (result.values[:, -1] - result.residuals[:, -1]).tolist()
            for i, row in enumerate(rows):
                if not converged[i]:
                    self.stats["unconverged" if admissible[i] else "moved"] += 1
                    dense.append(row)
                    continue
                self.stats["iterative"] += 1
                key = (system, k_indices[row])
                self.blocks[key] = _Block(
                    result.vectors[i],
                    result.values[i],
                    ceilings[i],
                    stamp,
                    self.blocks[key].age + 1,
                )
                values[row] = result.values[i, :n_eig]
                vectors[row] = result.vectors[i, :, :n_eig]
        for rows in _batches(sorted(dense), matrices.device):
            exact_values, exact_vectors = lowest_eigh_raw(
                _rows_of(matrices, rows), block, options.eigensolver
            )
            ceilings = exact_values[:, -1].tolist()
            for i, row in enumerate(rows):
                self.blocks[(system, k_indices[row])] = _Block(
                    exact_vectors[i], exact_values[i], ceilings[i], stamp, 0
                )
                values[row] = exact_values[i, :n_eig]
                vectors[row] = exact_vectors[i, :, :n_eig]
        return values, vectors

    @staticmethod
    def _dense_reason(
        cached: _Block | None,
        n_eig: int,
        block: int,
        dim: int,
        stamp: float,
        options: PhysicsOptions,
    ) -> str | None:
        """Why this k-point must be solved densely, or None to warm-start it."""
        if cached is None or cached.vectors.shape[0] != dim or cached.vectors.shape[1] < block:
            return "cold"
        if options.davidson_refresh and cached.age + 1 > options.davidson_refresh:
            return "refresh"
        gap = cached.ceiling - float(cached.values[n_eig - 1])
        if not stamp - cached.stamp < gap:
            return "moved"
        return None


def _batches(rows: list[int], device: torch.device) -> list[list[int]]:
    """One k-point at a time on CPU (BLAS threads work inside each solve), all at once on GPU."""
    if not rows:
        return []
    return [[row] for row in rows] if device.type == "cpu" else [rows]


def _rows_of(matrices: torch.Tensor, rows: list[int]) -> torch.Tensor:
    """matrices[rows] without a copy for a single row."""
    return matrices[rows[0] : rows[0] + 1] if len(rows) == 1 else matrices[rows]


def block_size(n_eig: int, dim: int, options: PhysicsOptions) -> int | None:
    """m = n_eig + buffer (even with spin–orbit, so no Kramers pair is split at the block
    edge), or None when the block would not be smaller than the matrix."""
    buffer = options.davidson_buffer or max(8, math.ceil(n_eig / 2))
    block = n_eig + buffer
    if options.spin_orbit:
        block += block % 2
    return block if block < dim else None

"""Core benchmark: one forward+backward over all k-points against the bare eigen-floor.

The forward+backward pass back-propagates each chunk of k-points as training does (memory
stays bounded by one chunk). The floor diagonalises the very same H(k) matrices for their
lowest eigenpairs only with the dense solver (no assembly, no autograd). Both are timed in
one process; the ratio is what to compare. With the warm-started Davidson (`--eigensolver
auto` on CPU from N = 400 on, or `davidson`) the repeated forward+backward passes start
from the previous pass's eigenvectors and can run below the dense floor.

    python benchmarks/bench_core.py dpp/data/examples/zb_CdSe tests/data/InGaAsP
    python benchmarks/bench_core.py tests/data/CsPbI3_soc --spin-orbit --repeats 1 \
        --model Net_relu_xavier_decayGaussian --gaussian-std 3
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable
from pathlib import Path

import torch
from bench_support import add_bundle_arguments, forward_backward, model_for, trimmed

from dpp.io import load_bundle
from dpp.physics import build_hamiltonian
from dpp.physics.bands import needed_eigenvalues
from dpp.physics.eigensolver import lowest_eigh_raw


def best_of(repeats: int, work: Callable[[], None]) -> float:
    """Shortest wall time of `repeats` calls, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def benchmark(path: Path, args: argparse.Namespace) -> None:
    bundle = trimmed(load_bundle(path), args.kpoints, args.max_ke)
    model = model_for(args, bundle)
    hamiltonian = build_hamiltonian(
        bundle,
        model,
        spin_orbit=args.spin_orbit,
        basis_search=args.basis_search,
        eigensolver=args.eigensolver,
    )
    k_all = [torch.arange(s.n_kpoints) for s in bundle.systems]

    def full_pass() -> None:
        model.zero_grad()
        forward_backward(hamiltonian, bundle)

    with torch.no_grad():
        matrices = [hamiltonian.hamiltonians(i, k) for i, k in enumerate(k_all)]
    n_eig = [
        needed_eigenvalues(s.n_bands, hamiltonian.options.spin_orbit, None) for s in bundle.systems
    ]

    def floor() -> None:
        for stack, count in zip(matrices, n_eig, strict=True):
            lowest_eigh_raw(stack, count, "auto")

    full_pass()  # warm-up: builds caches, as every later training step finds them
    floor_time = best_of(args.repeats, floor)
    full_time = best_of(args.repeats, full_pass)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sizes = ", ".join(str(g.n_basis) for g in hamiltonian.geometries)
    n_k = sum(s.n_kpoints for s in bundle.systems)
    print(
        f"{path.name}: N = [{sizes}], spin-orbit {hamiltonian.options.spin_orbit}, {n_k} k-points, "
        f"eigensolver {args.eigensolver}\n"
        f"  eigen-floor       {floor_time:8.3f} s\n"
        f"  forward+backward  {full_time:8.3f} s\n"
        f"  ratio             {full_time / floor_time:8.3f}\n"
        f"  solves            {hamiltonian.solver_stats}\n"
        f"  peak RSS          {peak_mib:8.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundles", nargs="+", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--eigensolver", default="auto")
    add_bundle_arguments(parser)
    args = parser.parse_args()
    for path in args.bundles:
        benchmark(path, args)


if __name__ == "__main__":
    main()

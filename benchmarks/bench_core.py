"""Core benchmark: one forward+backward over all k-points against the bare eigen-floor.

The forward+backward pass back-propagates each chunk of k-points as training does (memory
stays bounded by one chunk). The floor diagonalises the very same H(k) matrices for their
lowest eigenpairs only (no assembly, no autograd). Both are timed in one process; the ratio
is what to compare.

    python benchmarks/bench_core.py dpp/data/examples/zb_CdSe tests/data/InGaAsP
    python benchmarks/bench_core.py tests/data/CsPbI3_soc --repeats 1   (spin-orbit, maxKE 6)
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable
from pathlib import Path

import torch

from dpp.io import load_bundle
from dpp.models import build_model_from_config, load_checkpoint
from dpp.physics import build_hamiltonian
from dpp.physics.bands import needed_eigenvalues
from dpp.physics.eigensolver import lowest_eigh_raw
from dpp.training.objective import SystemTensors, system_loss


def best_of(repeats: int, work: Callable[[], None]) -> float:
    """Shortest wall time of `repeats` calls, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def network_for(bundle) -> torch.nn.Module:  # noqa: ANN001 - Bundle
    model = build_model_from_config(
        bundle.config, bundle.n_species, generator=torch.Generator().manual_seed(0)
    )
    if bundle.init_model_path is not None:
        load_checkpoint(model, bundle.init_model_path)
    return model


def benchmark(path: Path, repeats: int, overrides: dict) -> None:
    bundle = load_bundle(path, **overrides)
    model = network_for(bundle)
    hamiltonian = build_hamiltonian(bundle, model)
    targets = [SystemTensors(system) for system in bundle.systems]
    k_all = [torch.arange(s.n_kpoints) for s in bundle.systems]

    def forward_backward() -> None:
        model.zero_grad()
        for index, target in enumerate(targets):
            for chunk in torch.split(k_all[index], hamiltonian.k_chunk(index)):
                system_loss(hamiltonian, index, target, chunk).backward()

    with torch.no_grad():
        matrices = [hamiltonian.hamiltonians(i, k) for i, k in enumerate(k_all)]
    n_eig = [
        needed_eigenvalues(s.n_bands, hamiltonian.options.spin_orbit, None) for s in bundle.systems
    ]

    def floor() -> None:
        for stack, count in zip(matrices, n_eig, strict=True):
            lowest_eigh_raw(stack, count, hamiltonian.options.eigensolver)

    forward_backward()  # warm-up: builds caches, as every later training step finds them
    floor_time = best_of(repeats, floor)
    full_time = best_of(repeats, forward_backward)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sizes = ", ".join(str(g.n_basis) for g in hamiltonian.geometries)
    n_k = sum(s.n_kpoints for s in bundle.systems)
    print(
        f"{path.name}: N = [{sizes}], spin-orbit {hamiltonian.options.spin_orbit}, {n_k} k-points\n"
        f"  eigen-floor       {floor_time:8.3f} s\n"
        f"  forward+backward  {full_time:8.3f} s\n"
        f"  ratio             {full_time / floor_time:8.3f}\n"
        f"  peak RSS          {peak_mib:8.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundles", nargs="+", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--basis-search", default=None, choices=("complete", "legacy"))
    args = parser.parse_args()
    overrides = {} if args.basis_search is None else {"basis_search": args.basis_search}
    for path in args.bundles:
        benchmark(path, args.repeats, overrides)


if __name__ == "__main__":
    main()

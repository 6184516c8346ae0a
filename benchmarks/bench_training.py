"""Training-epoch benchmark: dense eigensolver against the warm-started iterative one.

Each epoch is a plain torch Adam step on the band loss Σ_X Σ_k w_k Σ_b u_b (E − E_ref)² over
all k-points of all systems, back-propagated chunk by chunk as in training. Both paths see
the same parameter sequence: at every epoch the dense and the iterative Hamiltonian (same
model object) evaluate loss and gradient in turn, interleaved, and the optimiser then
steps with the dense gradient. Printed: the time of each path over the timed epochs (wall
and CPU), their ratio, the largest loss and gradient differences, the iterative path's
solve counts (warm-started and dense by reason) and the peak resident memory.

    python benchmarks/bench_training.py dpp/data/examples/zb_CdSe --epochs 5 \
        --checkpoint tests/data/extras/nn_zbCdSe/epoch_199_PPmodel.pth
    python benchmarks/bench_training.py tests/data/CsPbI3_soc --spin-orbit --kpoints 8 \
        --epochs 4 --model Net_relu_xavier_decayGaussian --gaussian-std 3
    python benchmarks/bench_training.py tests/data/InGaAsP --epochs 5 --model Net_relu_xavier_decay2

Only `dpp.io.load_bundle`, `dpp.models`, `dpp.physics` and torch are used; the physics
switches and the model are options here (a bundle's NN_config.par is not read).
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import torch
from bench_support import add_bundle_arguments, forward_backward, model_for, trimmed
from threadpoolctl import threadpool_limits

from dpp.io import load_bundle
from dpp.io.records import Bundle
from dpp.physics import build_hamiltonian
from dpp.physics.hamiltonian import PseudopotentialHamiltonian


def epoch_gradient(
    hamiltonian: PseudopotentialHamiltonian, bundle: Bundle
) -> tuple[float, list[torch.Tensor], float, float]:
    """Loss (eV²), the gradient of every model parameter, wall and CPU seconds of one
    forward+backward epoch."""
    model = hamiltonian.model
    model.zero_grad()
    wall, cpu = time.perf_counter(), time.process_time()
    total = forward_backward(hamiltonian, bundle)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return total, [p.grad.clone() for p in model.parameters()], wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs")
    parser.add_argument("--warmup", type=int, default=1, help="untimed epochs first")
    parser.add_argument("--threads", type=int, default=1, help="torch and BLAS threads")
    add_bundle_arguments(parser)
    parser.add_argument("--solver", default="auto", help="the iterative side's eigensolver")
    parser.add_argument("--tol", type=float, default=None, help="davidson_tol (Hartree)")
    parser.add_argument("--buffer", type=int, default=None, help="davidson_buffer")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    parser.add_argument("--only", choices=("dense", "iterative"), default=None)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    with threadpool_limits(args.threads):
        bundle = trimmed(load_bundle(args.bundle), args.kpoints, args.max_ke)
        model = model_for(args, bundle)
        switches = {"spin_orbit": args.spin_orbit, "basis_search": args.basis_search}
        tolerance = {} if args.tol is None else {"davidson_tol": args.tol}
        if args.buffer is not None:
            tolerance["davidson_buffer"] = args.buffer
        paths = {
            "dense": build_hamiltonian(bundle, model, eigensolver="lapack", **switches),
            "iterative": build_hamiltonian(
                bundle, model, eigensolver=args.solver, **switches, **tolerance
            ),
        }
        if args.only is not None:
            paths = {args.only: paths[args.only]}
        optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
        timing = {name: [0.0, 0.0] for name in paths}
        loss_diff = grad_diff = 0.0
        for epoch in range(args.warmup + args.epochs):
            results = {name: epoch_gradient(h, bundle) for name, h in paths.items()}
            if epoch >= args.warmup:
                for name, (_, _, wall, cpu) in results.items():
                    timing[name][0] += wall
                    timing[name][1] += cpu
            if len(results) == 2:
                (loss_d, grads_d, *_), (loss_i, grads_i, *_) = results.values()
                loss_diff = max(loss_diff, abs(loss_i - loss_d) / abs(loss_d))
                grad_d, grad_i = (torch.cat([g.flatten() for g in gs]) for gs in (grads_d, grads_i))
                grad_diff = max(grad_diff, float((grad_i - grad_d).norm() / grad_d.norm()))
            first = next(iter(results.values()))
            model.zero_grad()
            for p, g in zip(model.parameters(), first[1], strict=True):
                p.grad = g
            optimizer.step()
            print(f"epoch {epoch}: loss {first[0]:.6g} eV²", flush=True)

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sizes = ", ".join(str(g.n_basis) for g in next(iter(paths.values())).geometries)
    n_k = sum(s.n_kpoints for s in bundle.systems)
    print(
        f"{args.bundle.name}: N = [{sizes}], spin-orbit {args.spin_orbit}, {n_k} k-points, "
        f"{args.epochs} timed epochs after {args.warmup}, {args.threads} thread(s), lr {args.lr}"
    )
    for name, (wall, cpu) in timing.items():
        print(f"  {name:10s} {wall:9.2f} s wall {cpu:9.2f} s CPU")
    if len(timing) == 2:
        (dense_wall, dense_cpu), (it_wall, it_cpu) = timing.values()
        print(f"  ratio      {dense_wall / it_wall:9.2f} wall {dense_cpu / it_cpu:9.2f} CPU")
        print(f"  max relative loss difference     {loss_diff:.2e}")
        print(f"  max relative gradient difference {grad_diff:.2e}")
    if "iterative" in paths:
        print(f"  iterative-path solves: {paths['iterative'].solver_stats}")
    print(f"  peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()

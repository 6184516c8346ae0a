"""DDP benchmark: training throughput in k-points per second, 1 process vs N gloo processes.

Each configuration runs as its own command (Lightning launches the DDP ranks), trains a few
epochs of full-batch steps (forward + backward over every k-point, gradients summed over
ranks, one Adam step at lr 1e-3) and reports the best epoch after a warm-up epoch. The CPU cores are
shared: one process uses all `--threads`, N processes use threads / N each.

    python benchmarks/bench_ddp.py tests/data/InGaAsP
    python benchmarks/bench_ddp.py tests/data/CsPbI3_soc --spin-orbit --accelerator gpu \
        --processes 1 2
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from bench_support import add_bundle_arguments, model_for, trimmed

from dpp.fitting import LossSettings
from dpp.fitting.build import training_objective
from dpp.io import load_bundle
from dpp.physics import PhysicsOptions, build_hamiltonian
from dpp.threads import apply_threads
from dpp.training.datamodule import KPointDataModule
from dpp.training.module import PseudopotentialModule
from dpp.training.strategy import KPointDDPStrategy

RESULT = "RESULT "


class EpochTimer(pl.Callback):
    """Wall time of every training epoch (the step ends with a collective: ranks agree)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.times.append(time.perf_counter() - self.start)


def worker(args: argparse.Namespace) -> None:
    """One configuration: train `args.epochs` epochs on `args.processes` processes."""
    bundle = trimmed(load_bundle(args.bundle), args.kpoints, args.max_ke)
    options = PhysicsOptions(spin_orbit=args.spin_orbit, basis_search=args.basis_search)
    hamiltonian = build_hamiltonian(bundle, model_for(args, bundle), options)
    n_kpoints = [s.n_kpoints for s in bundle.systems]
    data = KPointDataModule(n_kpoints, args.batch_size)
    module = PseudopotentialModule(
        hamiltonian,
        training_objective(bundle, LossSettings()),
        functools.partial(torch.optim.Adam, lr=1e-3),
        batches=data.batches(),
    )
    strategy: str | KPointDDPStrategy = "auto"
    if args.processes > 1:
        strategy = KPointDDPStrategy(num_threads=args.threads)
    else:
        apply_threads(args.threads)
    timer = EpochTimer()
    trainer = pl.Trainer(
        max_epochs=args.epochs,
        accelerator=args.accelerator,
        devices=args.processes,
        strategy=strategy,
        precision="64-true",
        use_distributed_sampler=False,
        limit_val_batches=0,
        logger=False,
        callbacks=[timer],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=data)
    if trainer.is_global_zero:
        epoch = min(timer.times[1:] or timer.times)
        result = {
            "processes": args.processes,
            "threads_per_process": torch.get_num_threads(),
            "kpoints": sum(n_kpoints),
            "epoch_s": epoch,
            "kpoints_per_s": sum(n_kpoints) / epoch,
        }
        print(RESULT + json.dumps(result), flush=True)


def driver(args: argparse.Namespace) -> None:
    """Every configuration in its own command (this command line plus `--worker N`; the
    worker ignores `--processes`), then the throughput table and ratio."""
    results = []
    for processes in args.processes_list:
        command = [sys.executable, __file__, *sys.argv[1:], "--worker", str(processes)]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        line = next(ln for ln in output.splitlines() if ln.startswith(RESULT))
        results.append(json.loads(line.removeprefix(RESULT)))
    base = results[0]["kpoints_per_s"]
    print(f"{args.bundle.name} ({results[0]['kpoints']} k-points, {args.accelerator})")
    for r in results:
        print(
            f"  {r['processes']} process(es) x {r['threads_per_process']} thread(s): "
            f"epoch {r['epoch_s']:.3f} s, {r['kpoints_per_s']:.1f} k-points/s, "
            f"ratio {r['kpoints_per_s'] / base:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--processes", dest="processes_list", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (first: warm-up)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch-size", type=int, default=8, help="k-points per batch and rank")
    parser.add_argument("--accelerator", default="cpu", choices=("cpu", "gpu"))
    parser.add_argument("--worker", dest="processes", type=int, help=argparse.SUPPRESS)
    add_bundle_arguments(parser)
    args = parser.parse_args()
    if args.processes is None:
        driver(args)
    else:
        worker(args)


if __name__ == "__main__":
    main()

"""A run beside other busy processes: wall time of the same command on an idle machine and
beside `--busy` CPU-bound processes, and their ratio (dpp's default threads must not
oversubscribe a shared node).

    python benchmarks/bench_shared_node.py --busy 2 -- python train.py hydra.run.dir=/tmp/bench_run

The command runs twice, idle first; between the runs its run directory (if given as
`hydra.run.dir=`) is removed. Only the ratio is meaningful on a noisy machine.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import subprocess
import time


def _spin() -> None:
    while True:
        pass


def _timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def _clear_run_dir(command: list[str]) -> None:
    for text in command:
        if text.startswith("hydra.run.dir="):
            shutil.rmtree(text.partition("=")[2], ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", type=int, default=2, help="CPU-bound processes beside it")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- command to time")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    _clear_run_dir(command)
    idle = _timed(command)
    print(f"idle: {idle:.1f} s", flush=True)
    _clear_run_dir(command)
    spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(args.busy)]
    for spinner in spinners:
        spinner.start()
    try:
        loaded = _timed(command)
    finally:
        for spinner in spinners:
            spinner.terminate()
    print(f"beside {args.busy} busy processes: {loaded:.1f} s ({loaded / idle:.2f}x idle)")


if __name__ == "__main__":
    main()

"""SIGTERM (what SLURM and `kill` send) and SIGHUP (a closed terminal) stop a run as Ctrl-C
does: each raises an `Interrupted` (a KeyboardInterrupt), so Lightning shuts down gracefully,
the workflow writes the final files of the state reached and the command line exits with
128 + the signal's number after one line (dpp.app.cli). Under DDP every rank that receives
one stops the same way (only global rank 0 writes files); Lightning's shutdown of rank 0
kills the others."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import pytorch_lightning as pl

HANDLED = (signal.SIGTERM, signal.SIGHUP)
"""Signals turned into an `Interrupted`; SIGINT raises KeyboardInterrupt by itself."""


class Interrupted(KeyboardInterrupt):
    """A run stopped by signal `signum`."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signum)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block SIGTERM and SIGHUP raise `Interrupted`; the handlers of before (SIGINT's
    included, which Lightning sets to ignore after its Ctrl-C shutdown) come back after it.
    Outside the main thread (where no handler can be set) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, *HANDLED)}
    for signum in HANDLED:
        signal.signal(signum, _raise)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class OwnSignalHandlers(pl.Callback):
    """When training starts, SIGTERM is ours again: Lightning installs its own handler at the
    start of a fit, which signals the other DDP ranks and then broadcasts to them (a
    collective inside a signal handler, which fails once they are gone). With ours, the rank
    that receives the signal stops as after Ctrl-C, and Lightning's shutdown of rank 0 kills
    the others; its teardown restores the handlers of before the fit."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if threading.current_thread() is threading.main_thread():
            for signum in HANDLED:
                signal.signal(signum, _raise)


@contextmanager
def deferred() -> Iterator[None]:
    """Ignore further SIGINT, SIGTERM and SIGHUP in the block (the final files after a first
    interrupt: a second Ctrl-C must not leave them half done); outside the main thread
    nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, *HANDLED)}
    for signum in previous:
        signal.signal(signum, signal.SIG_IGN)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def interrupt_of(error: BaseException | None) -> KeyboardInterrupt | None:
    """The interrupt behind `error`: itself, or the one Lightning's `exit(1)` after its
    graceful shutdown (a SystemExit) was raised in, or Lightning's own stop after a SIGTERM
    that reached no handler of ours; None for anything else."""
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    while error is not None:
        if isinstance(error, KeyboardInterrupt):
            return error
        if isinstance(error, SIGTERMException):
            return Interrupted(signal.SIGTERM)
        if not isinstance(error, SystemExit):
            return None
        error = error.__context__
    return None


def signal_number(interrupt: KeyboardInterrupt) -> int:
    """The signal behind `interrupt` (SIGINT for a plain KeyboardInterrupt)."""
    return interrupt.signum if isinstance(interrupt, Interrupted) else int(signal.SIGINT)

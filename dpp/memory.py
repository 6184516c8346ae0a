"""Memory of the machine and cheap estimates of what a calculation will need, so that a job
too large for the machine is refused with the estimate before it allocates anything.

The available memory is the kernel's MemAvailable (/proc/meminfo), capped by a cgroup v2
memory limit; sizes are in bytes.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from dpp.errors import InputError

COMPLEX_BYTES = 16
"""Bytes of one complex128 matrix element."""
INDEX_BYTES = 8
"""Bytes of one int64 index."""


def _meminfo_available(path: Path = Path("/proc/meminfo")) -> int | None:
    try:
        for line in path.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_room(folder: Path = Path("/sys/fs/cgroup")) -> int | None:
    """memory.max − memory.current of a cgroup v2 limit, or None without a limit."""
    try:
        limit = (folder / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int((folder / "memory.current").read_text()))
    except (OSError, ValueError):
        return None


def available_bytes() -> int | None:
    """Memory this process can still allocate, or None when the system does not say."""
    known = [b for b in (_meminfo_available(), _cgroup_room()) if b is not None]
    if not known:
        try:
            known = [os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")]
        except (ValueError, OSError):
            return None
    return min(known)


def format_bytes(size: float) -> str:
    """`size` bytes as a short human-readable text (KiB … PiB)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024:
            return f"{size:.3g} {unit}"
        size /= 1024
    return f"{size:.3g} PiB"


def plane_waves(volume: float, max_ke: float) -> float:
    """Estimated plane waves with ½|G|² < max_ke in a cell of `volume` Bohr³ (max_ke in
    Hartree): Ω k³/(6π²), k = √(2·max_ke)."""
    return abs(volume) * (2.0 * max_ke) ** 1.5 / (6.0 * math.pi**2)


DENSE_COPIES = 3
"""Dense D×D complex matrices one k-point's eigensolve holds: H(k), its eigenvectors and
LAPACK's workspace (a lower bound: batches of k-points and gradients add to it)."""


def hamiltonian_bytes(volume: float, max_ke: float, spinor: bool, n_species: int = 1) -> float:
    """Estimated memory (bytes) of one system at cutoff `max_ke` (Hartree) in a cell of
    `volume` Bohr³: one dense eigensolve (the dimension doubles with spinors) and the fixed
    N×N tables of the geometry (a structure factor per species and the |ΔG| index)."""
    n_basis = plane_waves(volume, max_ke)
    dimension = n_basis * (2 if spinor else 1)
    tables = (COMPLEX_BYTES * n_species + INDEX_BYTES) * n_basis**2
    return DENSE_COPIES * COMPLEX_BYTES * dimension**2 + tables


def check_cutoff(
    volume: float,
    max_ke: float,
    spinor: bool,
    *,
    n_species: int = 1,
    file: str | Path | None,
    key: str,
    hint: str,
) -> None:
    """Refuse a cutoff whose Hamiltonian would not fit in the available memory."""
    dimension = plane_waves(volume, max_ke) * (2 if spinor else 1)
    check_fits(
        hamiltonian_bytes(volume, max_ke, spinor, n_species),
        f"the Hamiltonian at maxKE {max_ke:g} Hartree ({dimension:.3g} plane waves)",
        file=file,
        key=key,
        found=f"{max_ke:g} Hartree",
        hint=hint,
    )


def check_fits(
    need: float,
    what: str,
    *,
    file: str | Path | None,
    key: str | None,
    found: str,
    hint: str,
    available: int | None = None,
) -> None:
    """Refuse a job whose estimated memory `need` (bytes) exceeds what the machine has
    available (`available`, default `available_bytes()`); the message gives both."""
    room = available_bytes() if available is None else available
    if room is None or need <= room:
        return
    raise InputError(
        file,
        f"{what} needs about {format_bytes(need)}, more than the {format_bytes(room)} "
        "of memory available",
        key=key,
        expected=f"a job within {format_bytes(room)}",
        found=found,
        hint=hint,
    )

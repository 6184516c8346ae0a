"""Monte Carlo output files (outputs.md §4, §5, §7)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from dpp.io.writers import write_text_atomic
from dpp.slots import N_SLOTS, Slot, slot_name, written_slots

COST_HEADER = "# iter      newLoss      accept?      bestLoss      currLoss\n"


class AppendLog:
    """A text table written one row at a time; on resume it keeps the header and `n` rows."""

    def __init__(self, path: Path, header: str) -> None:
        self.path, self.header = path, header

    def start(self, keep_rows: int | None) -> None:
        """Fresh file (`keep_rows` None) or the first `keep_rows` rows of the existing one."""
        rows: list[str] = []
        if keep_rows is not None and self.path.is_file():
            rows = self.path.read_text().splitlines(keepends=True)[1 : 1 + keep_rows]
        write_text_atomic(self.path, self.header + "".join(rows))

    def append(self, row: str) -> None:
        with self.path.open("a") as stream:
            stream.write(row + "\n")


def cost_row(trial: int, new: float, accepted: bool, best: float, current: float, fmt: str) -> str:
    """A final_mc_cost.dat row: `t    L_new    0/1    L_best    L_cur` (4 spaces)."""
    return "    ".join([str(trial), fmt % new, str(int(accepted)), fmt % best, fmt % current])


def read_cost_trace(path: Path) -> np.ndarray:
    """The rows of final_mc_cost.dat as an (n, 5) array: trial, trial loss, accepted 0/1,
    best loss, current loss."""
    rows = [
        line.split()
        for line in Path(path).read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    return np.array(rows, dtype=float).reshape(-1, 5)


def iterations_header(species: Sequence[str], n_slots: int) -> str:
    """iterations.dat header: `newMSE \\t curMSE \\t bstMSE \\t %Accpt \\t <S>_a<j> ...`
    for the first `n_slots` slots of every species."""
    names = [f"{s}_{slot_name(j)}" for s in species for j in range(n_slots)]
    return "newMSE \t curMSE \t bstMSE \t %Accpt \t " + " \t ".join(names) + "\n"


def iterations_row(
    new: float, current: float, best: float, ratio: float, table: np.ndarray, n_slots: int
) -> str:
    """One iterations.dat row: costs `%.6g`, acceptance ratio `%.5g`, the first `n_slots`
    parameters of every species `%.14f`."""
    fields = [f"{new:.6g}", f"{current:.6g}", f"{best:.6g}", f"{ratio:.5g}"]
    return "\t".join(fields + [f"{v:.14f}" for v in np.ravel(table[:, :n_slots])])


def iterations_slots(active: Sequence[int], table: np.ndarray) -> int:
    """Slots per species in iterations.dat: a0..a8 as the original writes them, and a9 when
    the s-channel moves or is non-zero."""
    return N_SLOTS if Slot.NONLOCAL_0 in active else written_slots(table)


def path_length(kpoints: torch.Tensor) -> np.ndarray:
    """Cumulative Cartesian path length Σ|k_i − k_{i−1}| (1/Bohr) of (nK, 3) k-points."""
    k = kpoints.detach().cpu().numpy()
    steps = np.linalg.norm(np.diff(k, axis=0), axis=1)
    return np.concatenate([[0.0], np.cumsum(steps)])


def write_path_bands(path: Path, coordinate: np.ndarray, bands: torch.Tensor) -> Path:
    """bandStruct_X.dat / bestBandStruct_X.dat: `p  E_0 … E_{n−1}` (`%.4f`, then `%.8f` eV)."""
    values = bands.detach().cpu().numpy()
    text = "".join(
        " ".join([f"{p:.4f}"] + [f"{e:.8f}" for e in row]) + "\n"
        for p, row in zip(coordinate, values, strict=True)
    )
    return write_text_atomic(path, text)

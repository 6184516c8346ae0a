"""Atomic writers for the output files in their original formats (outputs.md).

All functions are pure: they take arrays and a path and write one file atomically (temporary
file in the same folder, then `os.replace`), so a reader never sees a half-written file.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dpp.slots import written_slots


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write `data` to a temporary file next to `path`, then move it into place, so a reader
    never sees a half-written file (the one atomic writer of dpp)."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(temporary, 0o644)
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


TEMPORARY_PATTERN = ".*.tmp"
"""Names of `write_bytes_atomic`'s temporary files (`.<name>.<random>.tmp`)."""


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Remove the temporary files that a killed atomic write left in `folder` and below
    (only while no other process writes there: under the run's lock); returns them."""
    stale = sorted(p for p in Path(folder).rglob(TEMPORARY_PATTERN) if p.is_file())
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def save_torch_atomic(obj: Any, path: str | Path) -> Path:
    """`torch.save(obj)` to `path` atomically (e.g. a state_dict or a checkpoint dict)."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return write_bytes_atomic(path, buffer.getvalue())


def _rows(table: np.ndarray, formats: Sequence[str], separator: str) -> str:
    return "".join(
        separator.join(fmt % value for fmt, value in zip(formats, row, strict=True)) + "\n"
        for row in table
    )


def write_band_file(path: str | Path, path_coordinate: np.ndarray, bands: np.ndarray) -> Path:
    """`*_BS_sysX.dat`: rows `d E_0 ... E_{n-1}` (`%.5f`, space-separated; E in eV)."""
    table = np.column_stack([np.asarray(path_coordinate, float), np.asarray(bands, float)])
    return write_text_atomic(path, _rows(table, ["%.5f"] * table.shape[1], " "))


def write_basis_states(path: str | Path, gvectors: np.ndarray) -> Path:
    """`basisStates_X.dat`: `index Gx Gy Gz |G|` per plane wave, tab-separated (1/Bohr)."""
    gvectors = np.asarray(gvectors, float)
    norms = np.linalg.norm(gvectors, axis=1)
    lines = "".join(
        f"{index:d}\t{g[0]:f}\t{g[1]:f}\t{g[2]:f}\t{norm:f}\n"
        for index, (g, norm) in enumerate(zip(gvectors, norms, strict=True))
    )
    return write_text_atomic(path, lines)


def write_qspace_table(
    path: str | Path, q: np.ndarray, values: np.ndarray, species: Sequence[str]
) -> Path:
    """`*_qSpace_pot.dat`: header `# q  v(q)_<S1> ...`, rows `%.8f` (q in 1/Bohr, v in
    Hartree·Bohr³); a valid init_qSpace_pot.par."""
    table = np.column_stack([np.asarray(q, float), np.asarray(values, float)])
    header = "# q  " + "  ".join(f"v(q)_{symbol}" for symbol in species) + "\n"
    return write_text_atomic(path, header + _rows(table, ["%.8f"] * table.shape[1], " "))


REAL_SPACE_HEADER = "# r (Bohr)    v(r) (Hartree)\n"


def write_real_space_potential(path: str | Path, r: np.ndarray, v: np.ndarray) -> Path:
    """`*_pot_S.dat`: a `#` header naming the columns and units, then rows `r    v(r)`
    (`%e`, 4 spaces; r in Bohr, v in Hartree)."""
    table = np.column_stack([np.asarray(r, float), np.asarray(v, float)])
    return write_text_atomic(path, REAL_SPACE_HEADER + _rows(table, ["%e", "%e"], "    "))


def write_parameter_dump(
    path: str | Path,
    tensors: Iterable[tuple[str, np.ndarray | None]],
    *,
    gradients: bool = False,
) -> Path:
    """`*_params.dat` / `*_gradients.dat`: per named tensor a header line and its values with
    5 digits (format of outputs.md §2); a gradient of None is written as such."""
    word = "Gradient" if gradients else "Tensor"
    title = "Gradient" if gradients else "Parameter"
    blocks = []
    for name, array in tensors:
        if array is None:
            blocks.append(f"Parameter: {name}, Gradient: None (no gradient computed)\n\n")
            continue
        array = np.asarray(array)
        text = np.array2string(
            array, precision=5, suppress_small=True, max_line_width=999999, threshold=99 * 99
        )
        blocks.append(
            f"Parameter: {name}, {word} shape: torch.Size({list(array.shape)})\n"
            f"{title} values:\n{text}\n\n"
        )
    return write_text_atomic(path, "".join(blocks))


def species_params_text(params: np.ndarray, fmt: str | None = None) -> str:
    """One value per line, a0..a8 and a9 when it is non-zero (so that files without the
    s-channel keep the original's nine numbers); plain float text, or `fmt` such as
    `"%.14f"`."""
    values = np.asarray(params, float).ravel()
    values = values[: written_slots(values)]
    return "".join((repr(float(v)) if fmt is None else fmt % v) + "\n" for v in values)


def write_species_params(path: str | Path, params: np.ndarray, fmt: str | None = None) -> Path:
    """`best_<S>Params.dat` (species_params_text): plain float text, or `fmt` such as
    `"%.14f"` for the analytic Monte Carlo engine."""
    return write_text_atomic(path, species_params_text(params, fmt))


def write_species_tables(
    folder: Path, prefix: str, species: Sequence[str], table: np.ndarray, fmt: str | None
) -> None:
    """`<prefix>_<S>Params.dat` for every species: a0..a8 (a9), one per line."""
    for symbol, row in zip(species, table, strict=True):
        write_species_params(folder / f"{prefix}_{symbol}Params.dat", row, fmt)


FINAL_RESULT = "final_result.json"


def write_final_result(run_dir: str | Path, loss: float, band_rms_mev: float) -> Path:
    """`final_result.json`: the final validation loss (eV², a weighted sum) and the weighted
    RMS band error behind it (meV); NaN is written as null."""
    values = {"final_loss_eV2": loss, "band_rms_meV": band_rms_mev}
    clean = {key: (value if math.isfinite(value) else None) for key, value in values.items()}
    return write_text_atomic(Path(run_dir) / FINAL_RESULT, json.dumps(clean, indent=2) + "\n")

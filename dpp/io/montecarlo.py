"""Monte Carlo companion files: mcOpts*.par, <S>ParamSteps.par, the beta schedule (§14)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dpp.errors import InputError
from dpp.io.keys import did_you_mean
from dpp.io.keyvalue import read_key_values
from dpp.io.tables import parse_number, read_flat, read_table, to_int
from dpp.slots import LEGACY_SLOTS, N_SLOTS


@dataclass(frozen=True)
class McOptions:
    """Settings of the analytic Monte Carlo engine (mcOpts*.par, bundle-format §14.1)."""

    betas: tuple[float, float] = (100.0, 1.0)  # beta_0, beta_1 of the two temperatures
    steps_at_temp: tuple[int, int] = (5000, 500)  # steps at temperature 0 and 1
    temp_step_size_mod: tuple[float, float] = (1.0, 1.0)  # step-size factor per temperature
    total_iter: int = 100000
    fit_def_pot: bool = False
    fit_coupling: bool = False
    opt_gaps: bool = False
    def_pot_weight: float = 1.0
    write_per_iter: int = 1  # write iterations.dat every n iterations


_MC_FIELDS = {
    "betas": ("betas", float, 2),
    "stepsAtTemp": ("steps_at_temp", int, 2),
    "tempStepSizeMod": ("temp_step_size_mod", float, 2),
    "totalIter": ("total_iter", int, 1),
    "fitDefPot": ("fit_def_pot", bool, 1),
    "fitCoupling": ("fit_coupling", bool, 1),
    "fitEffMass": ("fit_eff_mass", bool, 1),
    "optGaps": ("opt_gaps", bool, 1),
    "defPotWeight": ("def_pot_weight", float, 1),
    "writePerIter": ("write_per_iter", int, 1),
}


def _mc_value(path: Path, key: str, text: str, line: int) -> object:
    _, kind, count = _MC_FIELDS[key]
    tokens = text.split()
    if len(tokens) != count:
        raise InputError(
            path,
            "wrong number of values",
            line=line,
            key=key,
            expected=f"{count}",
            found=f"{len(tokens)} ({text!r})",
        )
    if kind is bool:
        lowered = text.lower()
        if lowered not in ("true", "false", "1", "0"):
            raise InputError(
                path,
                "invalid value",
                line=line,
                key=key,
                expected="True or False",
                found=repr(text),
            )
        return lowered in ("true", "1")
    values = [parse_number(token, path, line) for token in tokens]
    if kind is int:
        values = [to_int(value, path, line) for value in values]
    return tuple(values) if count > 1 else values[0]


def read_mc_options(path: str | Path) -> McOptions:
    """Read mcOpts*.par (`key = value`, `#` comments and blank lines allowed).

    `paramSteps` is ignored with a warning; `fitEffMass = True` and unknown keys are errors.
    """
    path = Path(path)
    fields: dict[str, object] = {}
    for key, (text, line) in read_key_values(path).items():
        if key == "paramSteps":
            warnings.warn(f"{path}, line {line}: 'paramSteps' is ignored", stacklevel=2)
            continue
        if key not in _MC_FIELDS:
            raise InputError(
                path,
                "unknown key",
                line=line,
                key=key,
                expected="one of " + ", ".join(_MC_FIELDS),
                found=repr(key),
                hint=did_you_mean(key, _MC_FIELDS),
            )
        value = _mc_value(path, key, text, line)
        if key == "fitEffMass":
            if value:
                raise InputError(
                    path,
                    "effective-mass fitting is not supported",
                    line=line,
                    key=key,
                    expected="False",
                    found=text,
                )
            continue
        fields[_MC_FIELDS[key][0]] = value
    return McOptions(**fields)


def param_steps_path(folder: str | Path, symbol: str) -> Path:
    """Path of the Monte Carlo step file of species `symbol`."""
    return Path(folder) / f"{symbol}ParamSteps.par"


def read_param_steps(folder: str | Path, species: Sequence[str], params: np.ndarray) -> np.ndarray:
    """Step sizes (n_species, 10) in the units of a0..a9 from <S>ParamSteps.par files.

    Either every species has a file or none: none gives |a_j|/100. A file holds 10 steps, 9
    (the original's; then a9's step is 0) or 5 (then steps 5..9 are 0). Steps must be >= 0;
    0 freezes a parameter.
    """
    paths = [param_steps_path(folder, symbol) for symbol in species]
    present = [path.is_file() for path in paths]
    if not any(present):
        return np.abs(params) / 100.0
    if not all(present):
        missing = paths[present.index(False)]
        raise InputError(
            missing,
            "file not found",
            expected="a step file for every species or for none",
            found=f"{sum(present)} of {len(paths)} files",
        )
    steps = np.zeros((len(species), N_SLOTS))
    for row, path in enumerate(paths):
        values, lines = read_flat(path)
        if values.size not in (5, LEGACY_SLOTS, N_SLOTS):
            raise InputError(
                path,
                "wrong number of steps",
                line=lines[-1] if lines else None,
                expected="10, 9 or 5 numbers",
                found=f"{values.size}",
            )
        for value, line in zip(values, lines, strict=True):
            if value < 0:
                raise InputError(
                    path, "negative step", line=line, expected="steps >= 0", found=f"{value:g}"
                )
        steps[row, : values.size] = values
    return steps


@dataclass(frozen=True)
class BetaSchedule:
    """Piecewise-constant beta over 1-based Monte Carlo trials (bundle-format §14.3)."""

    trials: np.ndarray  # (n,) int, strictly increasing, >= 1
    betas: np.ndarray  # (n,) > 0

    def beta_at(self, trial: int, initial: float) -> float:
        """beta of the last row with index <= trial; `initial` (mc_beta) before the first."""
        row = int(np.searchsorted(self.trials, trial, side="right")) - 1
        return initial if row < 0 else float(self.betas[row])


def read_beta_schedule(path: str | Path) -> BetaSchedule:
    """Read `trial beta` rows: trials strictly increasing integers >= 1, beta > 0."""
    table = read_table(path)
    if table.n_columns != 2:
        raise InputError(
            path,
            "wrong number of columns",
            line=table.lines[0],
            expected="2 (trial beta)",
            found=f"{table.n_columns}",
        )
    trials = np.array(
        [to_int(t, path, line) for t, line in zip(table.values[:, 0], table.lines, strict=True)]
    )
    for index, line in enumerate(table.lines):
        if trials[index] < 1 or (index and trials[index] <= trials[index - 1]):
            raise InputError(
                path,
                "bad trial index",
                line=line,
                expected="integers >= 1, strictly increasing",
                found=f"{trials[index]}",
            )
        if table.values[index, 1] <= 0:
            raise InputError(
                path,
                "bad beta",
                line=line,
                expected="beta > 0",
                found=f"{table.values[index, 1]:g}",
            )
    return BetaSchedule(trials=trials, betas=table.values[:, 1].copy())

"""A default NN_config.par for a converted bundle, and its nSystem kept up to date.

The defaults (`DEFAULT_SETTINGS`) are those of the embedded zb_CdSe example (bundle-format §3)
with a smaller two-layer network, hiddenLayers = 32 32: a smooth CELU network with a Gaussian
gate of width 2 1/Bohr, pre-fitted for 1000 epochs to the Wang–Zunger curves of the
init_<S>Params.par files, then 100 epochs of the default recipe. The zero of a periodic DFT
run's energies is arbitrary, so each system's rigid energy offset is left free
(`energy_zero = per_system`); that needs every k-point of a system in one batch
(`separateKptGrad = 0`). The network's v(q) is kept smooth between the shells the bands
constrain by the curvature regulariser, on its departure from the starting Wang–Zunger
curve (`smoothness = 3e-5`, `smoothness_reference = prior`, physics.md §7.7), and the size
of that departure is bounded (`departure = 7e-3`): the strengths measured on the shipped Si,
AlAs, GaAs and GaN bands by the transfer to strained copies (docs/recipes.md). A DFT
pseudopotential acts differently on s and p electrons; a local v(q) alone can mimic that
only with a large, slowly decaying tail that is not converged in the basis and does not
transfer. So the nonlocal l = 1 channels are on (`nonlocal_without_soc = 1`, or with the
spin–orbit term), and the s-channel (`nonlocal_s = 1`, an l = 0 projector), and their
strengths a6, a7, a9 (and a5 with spin–orbit) are trained beside the network
(`train_slots`). Every key can be edited in the file or overridden on the command line
(`trainer.max_epochs=...`).
"""

from __future__ import annotations

import re
from pathlib import Path

from dpp.io.nnconfig.reader import read_nn_config

DEFAULT_SETTINGS: dict[str, str] = {
    "PPmodel": "Net_celu_HeInit_decayGaussian",
    "PPmodel_gaussian_std": "2.0",
    "hiddenLayers": "32 32",
    "separateKptGrad": "0",
    "checkpoint": "0",
    "num_cores": "0",
    "SHOWPLOTS": "0",
    "init_Zunger_num_epochs": "1000",
    "init_Zunger_optimizer_lr": "0.01",
    "init_Zunger_scheduler_gamma": "0.90",
    "init_Zunger_plotEvery": "500",
    "max_num_epochs": "100",
    "optimizer_lr": "0.005",
    "scheduler_gamma": "0.90",
    "schedulerStep": "20",
    "plotEvery": "20",
    "patience": "100",
    "energy_zero": "per_system",
    "smoothness": "3e-5",
    "smoothness_reference": "prior",
    "departure": "7e-3",
    "s_channel_bound": "10",
}
"""NN_config keys of a converted bundle besides nSystem, SObool and cacheSO (values as text)."""
NONLOCAL_WITHOUT_SOC = {"nonlocal_without_soc": "1", "nonlocal_s": "1", "train_slots": "6 7 9"}
"""The nonlocal channels of a scalar-relativistic bundle and their trained strengths a6, a7,
a9."""
NONLOCAL_WITH_SOC = {"nonlocal_s": "1", "train_slots": "5 6 7 9"}
"""A spin–orbit bundle has the l = 1 channels already; with the s-channel, a5, a6, a7, a9
are trained."""

SUMMARY_KEYS = ("PPmodel", "hiddenLayers", "init_Zunger_num_epochs", "max_num_epochs")


def defaults_summary() -> str:
    """The main defaults as `key = value, ...` for help texts."""
    return ", ".join(f"{key} = {DEFAULT_SETTINGS[key]}" for key in SUMMARY_KEYS)


_N_SYSTEM = re.compile(r"^(\s*nSystem\s*=\s*)\S+", re.MULTILINE)


def default_nn_config(n_system: int, spin_orbit: bool, comment: str) -> str:
    """The text of a default NN_config.par for `n_system` systems; spin_orbit sets SObool and
    cacheSO; `comment` heads the file as `#` lines."""
    flag = "1" if spin_orbit else "0"
    settings = {"nSystem": str(n_system), "SObool": flag, "cacheSO": flag, **DEFAULT_SETTINGS}
    settings.update(NONLOCAL_WITH_SOC if spin_orbit else NONLOCAL_WITHOUT_SOC)
    header = "".join(f"# {line}\n" for line in comment.splitlines())
    return header + "".join(f"{key} = {value}\n" for key, value in settings.items())


def spin_orbit_of(path: Path) -> bool:
    """The SObool of an existing NN_config.par (checked by the reader)."""
    return bool(read_nn_config(path).get("SObool", False))


def with_n_system(path: Path, n_system: int) -> str:
    """The text of the NN_config.par at `path` with nSystem set to `n_system`, the rest kept."""
    read_nn_config(path)
    return _N_SYSTEM.sub(lambda match: f"{match.group(1)}{n_system}", path.read_text())

"""Catalogue of bad input: every case stops with one InputError before any work, naming the
file (and the line or key where the problem has one), what was expected and what was found;
harmless variants of the files (line endings, BOM, comments, tabs, symlinks) give the clean
bundle's loss; and `python train.py` refuses bad input with one line on stderr.

Each case mutates a fresh copy of a 5-k-point CdSe bundle (maxKE 1.5) at one fixed path and
runs the app in process (`dpp.app.run.run`, as `run_app`). The composed configuration depends
only on NN_config.par, the overrides and that path, so cases that change none of them reuse
one composition; the run itself is never reused.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from training_support import QUIET, REPO, run_app, small_bundle

from dpp.app.compose import Prepared, prepare
from dpp.app.run import run
from dpp.errors import InputError
from dpp.models import build_model

WORK_FILES = ("initZunger_*", "epoch_*", "oldFunc_*", "final_*", "basisStates_*", "mc_*")
"""Files that only work writes: none may exist after a refused run."""
NO_WORK = ["trainer.max_epochs=0", "init.num_epochs=0", "logger=none"]
MC = [
    "workflow=monte_carlo",
    "model.name=ZeroFunction",
    "mc.iterations=2",
    "mc.percentage=0.01",
    "mc.beta=10",
    "mc.progress=false",
]
MC_OPTIONS = [*MC, "mc.options_file=mcOpts.par"]
MC_SCHEDULE = [*MC, "mc.beta_schedule=schedule.par"]
WHOLE_FILE = "whole file"
"""`where` of problems of a file as a whole (missing, empty, unreadable): no line or key."""


@dataclass
class Context:
    """What a mutation may change: the bundle folder and the (fresh) run directory."""

    bundle: Path
    run_dir: Path
    checkpoint: Path  # a real last.ckpt of a 1-epoch run of the clean bundle


Mutation = Callable[[Context], list[str]]


@dataclass(frozen=True)
class Case:
    """One bad input: the mutation, then what the InputError must name: `file` (a fragment of
    the file or 'command-line override'), `where` (a line number, a key fragment, or
    WHOLE_FILE), and fragments of what was expected and what was found."""

    name: str
    mutate: Mutation
    file: str
    where: int | str
    expected: str = ""
    found: str = ""
    config: str = "train"


# -- mutations ------------------------------------------------------------------------------
def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def edit(name: str, line: int, text: str) -> Mutation:
    """Replace 1-based line `line` of file `name`."""

    def mutate(ctx: Context) -> list[str]:
        lines = _lines(ctx.bundle / name)
        lines[line - 1] = text
        (ctx.bundle / name).write_text("\n".join(lines) + "\n")
        return []

    return mutate


def put(name: str, text: str | bytes) -> Mutation:
    """Write file `name` (text or bytes)."""

    def mutate(ctx: Context) -> list[str]:
        path = ctx.bundle / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return []

    return mutate


def append(name: str, text: str) -> Mutation:
    def mutate(ctx: Context) -> list[str]:
        with open(ctx.bundle / name, "a") as stream:
            stream.write(text)
        return []

    return mutate


def key(name: str, key_name: str, value: str | None) -> Mutation:
    """Set `key_name = value` in a key-value file (None: remove the key)."""

    def mutate(ctx: Context) -> list[str]:
        path = ctx.bundle / name
        lines = [ln for ln in _lines(path) if ln.split("=")[0].strip() != key_name]
        if value is not None:
            lines.append(f"{key_name} = {value}")
        path.write_text("\n".join(lines) + "\n")
        return []

    return mutate


def nn(key_name: str, value: str | None) -> Mutation:
    return key("NN_config.par", key_name, value)


def inp(key_name: str, value: str | None) -> Mutation:
    return key("input_0.par", key_name, value)


def delete(name: str) -> Mutation:
    def mutate(ctx: Context) -> list[str]:
        (ctx.bundle / name).unlink()
        return []

    return mutate


def over(*overrides: str) -> Mutation:
    """Command-line overrides."""
    return lambda ctx: list(overrides)


def both(*mutations: Mutation) -> Mutation:
    def mutate(ctx: Context) -> list[str]:
        return [o for m in mutations for o in m(ctx)]

    return mutate


LEGACY = over("recipe=legacy")
"""The original's recipe, which trains with NN_config's optimiser and schedule."""


def with_bundle_override(*overrides: str) -> Mutation:
    """Overrides with `{bundle}` and `{run}` filled in."""
    return lambda ctx: [o.format(bundle=ctx.bundle, run=ctx.run_dir) for o in overrides]


def reference_rows(n: int) -> Mutation:
    """expBandStruct_0.par with its first `n` rows (repeating the first row beyond 5)."""

    def mutate(ctx: Context) -> list[str]:
        rows = _lines(ctx.bundle / "expBandStruct_0.par")
        rows = (rows + [rows[0]] * n)[:n]
        (ctx.bundle / "expBandStruct_0.par").write_text("\n".join(rows) + "\n")
        return []

    return mutate


def energy(line: int, value: str) -> Mutation:
    """Set the first energy of row `line` of expBandStruct_0.par."""

    def mutate(ctx: Context) -> list[str]:
        lines = _lines(ctx.bundle / "expBandStruct_0.par")
        tokens = lines[line - 1].split()
        tokens[1] = value
        lines[line - 1] = " ".join(tokens)
        (ctx.bundle / "expBandStruct_0.par").write_text("\n".join(lines) + "\n")
        return []

    return mutate


def odd_bands(ctx: Context) -> list[str]:
    """nBands = 15 with matching reference and weights (for smooth reordering)."""
    inp("nBands", "15")(ctx)
    rows = [" ".join(r.split()[:16]) for r in _lines(ctx.bundle / "expBandStruct_0.par")]
    (ctx.bundle / "expBandStruct_0.par").write_text("\n".join(rows) + "\n")
    (ctx.bundle / "bandWeights_0.par").write_text("1\n" * 15)
    return []


def order_matrix(value: int = 0, row: int = 0, shape: tuple[int, int] = (5, 16)) -> Mutation:
    def mutate(ctx: Context) -> list[str]:
        matrix = np.tile(np.arange(shape[1]) // 2, (shape[0], 1))
        matrix[row % shape[0], 0] = value if value else matrix[row % shape[0], 0]
        np.savetxt(ctx.bundle / "kpoints_0_orderMatrix.par", matrix, fmt="%d")
        return []

    return mutate


def torch_file(name: str, obj: object) -> Mutation:
    def mutate(ctx: Context) -> list[str]:
        torch.save(obj, ctx.bundle / name)
        return []

    return mutate


class Marker:
    """A pickle whose loading would create the file `path` (code execution)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (open, (self.path, "w"))


def crafted(name: str) -> Mutation:
    """A torch file that would run code (create a marker file) if loaded unsafely."""

    def mutate(ctx: Context) -> list[str]:
        torch.save({"state": Marker(str(ctx.bundle / "MARKER"))}, ctx.bundle / name)
        return []

    return mutate


def state_dict(hidden: list[int]) -> Mutation:
    network = build_model("Net_celu_HeInit_decayGaussian", hidden, 2, gaussian_std=2.0)
    return torch_file("init_PPmodel.pth", network.state_dict())


def last_checkpoint(kind: str) -> Mutation:
    """checkpoints/last.ckpt in the run directory: the real one, truncated, or crafted."""

    def mutate(ctx: Context) -> list[str]:
        target = ctx.run_dir / "checkpoints" / "last.ckpt"
        target.parent.mkdir(parents=True)
        data = ctx.checkpoint.read_bytes()
        if kind == "truncated":
            data = data[: len(data) // 2]
        elif kind == "crafted":
            torch.save({"state_dict": Marker(str(ctx.bundle / "MARKER"))}, target)
            return ["resume=true"]
        target.write_bytes(data)
        return ["resume=true"]

    return mutate


def unwritable_run_dir(ctx: Context) -> list[str]:
    (ctx.bundle / "a_file").write_text("x")
    return [f"hydra.run.dir={ctx.bundle / 'a_file' / 'run'}"]


MC_OPTS_TEXT = "betas = 100 1\nstepsAtTemp = 5 5\ntotalIter = 2\n"
DEFPOT = "fit_defPot = 1\n"
EPH = "fit_eph = 1\nidxVB = 7\nidxCB = 8\nidxGap = 0\n"
COUPLING_BLOCK = (
    "Atom idx = {atom}   atom = {symbol}   position = 0 0 0\n"
    "vb-vb coupling elements. polarization of derivative = x\n{v}\n"
    "polarization of derivative = y\n{v}\npolarization of derivative = z\n{v}\n\n"
    "cb-cb coupling elements. polarization of derivative = x\n{v}\n"
    "polarization of derivative = y\n{v}\npolarization of derivative = z\n{v}\n\n\n"
)


def eph(qpoints: str, coupling: str | None = None, values: str = "0.1") -> Mutation:
    """fit_eph = 1 with qpoints_0.par and expCoupling_0.par (None: no coupling file)."""

    def mutate(ctx: Context) -> list[str]:
        append("input_0.par", EPH)(ctx)
        put("qpoints_0.par", qpoints)(ctx)
        if coupling is None:
            blocks = "".join(
                COUPLING_BLOCK.format(atom=a, symbol=s, v=values) for a, s in ((0, "Cd"), (1, "Se"))
            )
            put("expCoupling_0.par", blocks)(ctx)
        elif coupling:
            put("expCoupling_0.par", coupling)(ctx)
        return []

    return mutate


def symlinked(ctx: Context) -> list[str]:
    """kpoints_0.par and init_CdParams.par as symlinks to files outside the bundle."""
    outside = ctx.bundle.parent / "outside"
    outside.mkdir(exist_ok=True)
    for name in ("kpoints_0.par", "init_CdParams.par"):
        shutil.move(ctx.bundle / name, outside / name)
        (ctx.bundle / name).symlink_to(outside / name)
    return []


def every_file(change: Callable[[bytes], bytes]) -> Mutation:
    def mutate(ctx: Context) -> list[str]:
        for path in ctx.bundle.glob("*.par"):
            path.write_bytes(change(path.read_bytes()))
        return []

    return mutate


def commented(text: bytes) -> bytes:
    lines = text.split(b"\n")
    return b"# a comment line\n\n" + b"\n".join(ln + b"   # trailing" if ln else ln for ln in lines)


SLOW = pytest.mark.slow
"""Cases that spawn train.py beyond the two the default run keeps."""

KV = "NN_config.par"
# fmt: off
CASES = [
    # -- NN_config.par: keys, types, values, cross-key rules ------------------------------
    Case("nn_unknown_key", nn("optimiser_lr", "0.1"), KV, "optimiser_lr", found="optimiser_lr"),
    Case("nn_unknown_class", nn("PPmodel", "Net_foo"), KV, "PPmodel", "one of"),
    Case("nn_hidden_text", nn("hiddenLayers", "20 x 20"), KV, "hiddenLayers", "integers", "x"),
    Case("nn_hidden_zero", nn("hiddenLayers", "20 0"), KV, "hiddenLayers", ">= 1"),
    Case("nn_hidden_empty", nn("hiddenLayers", ""), KV, "hiddenLayers", "integers"),
    Case("nn_nsystem_zero", nn("nSystem", "0"), KV, "nSystem", ">= 1", "0"),
    Case("nn_nsystem_fraction", nn("nSystem", "1.5"), KV, "nSystem", "integer", "1.5"),
    Case("nn_nsystem_missing_files", nn("nSystem", "2"), "system_1.par", WHOLE_FILE, "system_1"),
    Case("nn_required_missing", nn("PPmodel", None), KV, "PPmodel", "PPmodel = ", "no such"),
    Case("nn_no_equals", put(KV, "PPmodel Net_relu\nhiddenLayers = 8\nnSystem = 1\n"), KV,
         "PPmodel", "PPmodel = "),
    Case("nn_bool", nn("SObool", "2"), KV, "SObool", "0 or 1", "2"),
    Case("nn_bool_word", nn("separateKptGrad", "yes"), KV, "separateKptGrad", "0 or 1"),
    Case("nn_negative_cores", nn("num_cores", "-1"), KV, "num_cores", ">= 0", "-1"),
    Case("nn_nan_lr", nn("optimizer_lr", "nan"), KV, "optimizer_lr", "finite", "nan"),
    Case("nn_negative_lr", nn("optimizer_lr", "-1"), KV, "optimizer_lr", ">= 0", "-1"),
    Case("nn_zero_lr", both(nn("optimizer_lr", "0"), LEGACY), KV, "optimizer_lr", "lr > 0", "0"),
    Case("nn_zero_gamma", both(nn("scheduler_gamma", "0"), LEGACY), KV, "scheduler_gamma",
         "gamma > 0", "0"),
    Case("nn_negative_gamma", both(nn("scheduler_gamma", "-0.5"), LEGACY), KV,
         "scheduler_gamma", "> 0"),
    Case("nn_zero_prefit_lr", both(nn("init_Zunger_optimizer_lr", "0"), LEGACY), KV,
         "init_Zunger_optimizer_lr", "lr > 0", "0"),
    Case("nn_scheduler_step", nn("schedulerStep", "0"), KV, "schedulerStep", ">= 1", "0"),
    Case("nn_negative_epochs", nn("max_num_epochs", "-1"), KV, "max_num_epochs", ">= 0"),
    Case("nn_plot_every", nn("plotEvery", "0"), KV, "plotEvery", ">= 1", "0"),
    Case("nn_prefit_plot_every", nn("init_Zunger_plotEvery", "0"), KV,
         "init_Zunger_plotEvery", ">= 1 or -1", "0"),
    Case("nn_patience", nn("patience", "0"), KV, "patience", ">= 1"),
    Case("nn_mc_and_training", both(nn("mc_bool", "1"), nn("max_num_epochs", "5")), KV,
         "mc_bool", "max_num_epochs = 0", "max_num_epochs = 5"),
    Case("nn_common_zero_kpoint_batches", nn("energy_zero", "common"), KV, "energy_zero",
         "separate_kpt_grad=false", "separate_kpt_grad=true"),
    Case("nn_system_zero_kpoint_batches", nn("energy_zero", "per_system"), KV, "energy_zero",
         "one process", "separate_kpt_grad=true"),
    Case("nn_two_reorders", both(nn("smooth_reorder", "1"), nn("eigvec_reorder", "1")), KV,
         "eigvec_reorder", "at most one", "both"),
    Case("nn_sparseadam", nn("optimizer", "sparseadam"), KV, "optimizer", "dense", "sparseadam"),
    Case("nn_optimizer_name", nn("optimizer", "adamm"), KV, "optimizer", "one of", "adamm"),
    Case("nn_prefit_optimizer", nn("init_Zunger_optimizer", "rmsprop"), KV,
         "init_Zunger_optimizer", "adam, sgd", "rmsprop"),
    Case("nn_eigensolver", nn("eigensolver", "magma"), KV, "eigensolver", "one of", "magma"),
    Case("nn_basis_search", nn("basis_search", "box"), KV, "basis_search", "complete"),
    Case("nn_fifth_param", nn("legacy_fifth_param", "a4"), KV, "legacy_fifth_param", "strain"),
    Case("nn_grid", nn("nQGrid", "1"), KV, "nQGrid", ">= 2", "1"),
    Case("nn_seed_text", nn("seed", "abc"), KV, "seed", "integer", "abc"),
    Case("nn_k_chunk", nn("k_chunk", "-2"), KV, "k_chunk", ">= 0"),
    Case("nn_gaussian_std_zero", nn("PPmodel_gaussian_std", "0"), KV, "PPmodel_gaussian_std",
         "> 0", "0"),
    Case("nn_gaussian_std_missing", nn("PPmodel_gaussian_std", None), KV,
         "PPmodel_gaussian_std", "a value", "unset"),
    Case("nn_scale_count", both(nn("PPmodel", "Net_celu_HeInit_scale_decayGaussian"),
         nn("PPmodel_scale", "1 2 3")), KV, "PPmodel_scale", "2 values"),
    Case("nn_penalty_half", nn("penalize_starting", "5"), KV, "penalize_starting", "both"),
    Case("nn_relE_band", nn("relE_bIdx", "16"), KV, "relE_bIdx", "< nBands = 16", "16"),
    Case("nn_smooth_odd_bands", both(odd_bands, nn("smooth_reorder", "1")), KV,
         "smooth_reorder", "even nBands"),
    Case("nn_mc_perturb_mode", both(nn("max_num_epochs", "0"), nn("mc_bool", "1"),
         nn("mc_iter", "2"), nn("mc_percentage", "0.1"), nn("mc_beta", "10"),
         nn("mc_perturb_mode", "9")), KV, "mc_perturb_mode", "1 ... 7", "9"),
    Case("nn_mc_iter_missing", both(nn("max_num_epochs", "0"), nn("mc_bool", "1"),
         nn("PPmodel", "ZeroFunction")), KV, "mc_iter", "integer", "unset"),
    Case("nn_mode_needs_soc", both(nn("max_num_epochs", "0"), nn("mc_bool", "1"),
         nn("mc_iter", "2"), nn("mc_percentage", "0.1"), nn("mc_beta", "10"),
         nn("mc_perturb_mode", "6")), KV, "mc_perturb_mode", "spin_orbit"),
    Case("nn_not_utf8", put(KV, b"PPmodel = Net_relu\nhiddenLayers = 8 \xff\n"), KV, 2, "UTF-8"),
    # -- input_0.par ------------------------------------------------------------------------
    Case("input_maxke_zero", inp("maxKE", "0"), "input_0.par", "maxKE", "> 0", "0"),
    Case("input_maxke_negative", inp("maxKE", "-1"), "input_0.par", "maxKE", "> 0", "-1"),
    Case("input_maxke_text", inp("maxKE", "ten"), "input_0.par", "maxKE", "number", "ten"),
    Case("input_maxke_missing", inp("maxKE", None), "input_0.par", "maxKE", "maxKE = "),
    Case("input_nbands_missing", inp("nBands", None), "input_0.par", "nBands", "nBands = "),
    Case("input_nbands_zero", inp("nBands", "0"), "input_0.par", "nBands", ">= 1", "0"),
    Case("input_nbands_fraction", inp("nBands", "15.5"), "input_0.par", "nBands", "integer"),
    Case("input_nbands_vs_reference", inp("nBands", "14"), "expBandStruct_0.par", 1,
         "nBands = 14", "17"),
    Case("input_basis_too_small", inp("maxKE", "0.05"), "input_0.par", "nBands",
         "eigenvalues", "nBands = 16"),
    Case("input_idxgap_range", inp("idxGap", "5"), "input_0.par", "idxGap", "< 5", "5"),
    Case("input_idxvb_negative", inp("idxVB", "-1"), "input_0.par", "idxVB", ">= 0", "-1"),
    Case("input_relE_band", inp("relE_bIdx", "16"), "input_0.par", "relE_bIdx", "< nBands"),
    Case("input_fit_defpot_bool", inp("fit_defPot", "2"), "input_0.par", "fit_defPot", "0 or 1"),
    Case("input_strain_scale", inp("strain_ref_scale", "0"), "input_0.par", "strain_ref_scale",
         "> 0", "0"),
    Case("input_system_name_empty", inp("systemName", ""), "input_0.par", "systemName",
         "non-empty"),
    Case("input_not_utf8", put("input_0.par", b"maxKE = 1.5\nnBands = 16\xe9\n"), "input_0.par",
         2, "UTF-8", "0xe9"),
    Case("input_missing", delete("input_0.par"), "input_0.par", WHOLE_FILE, "existing file"),
    # -- system_0.par -----------------------------------------------------------------------
    Case("system_scale_missing", edit("system_0.par", 1, ""), "system_0.par", "scale", "scale"),
    Case("system_scale_zero", edit("system_0.par", 1, "scale = 0"), "system_0.par", "scale",
         "> 0", "0"),
    Case("system_scale_text", edit("system_0.par", 1, "scale = big"), "system_0.par", 1,
         "number", "big"),
    Case("system_scale_line", edit("system_0.par", 1, "scale = 1 2"), "system_0.par", "scale",
         "scale = <Bohr>"),
    Case("system_no_cell", edit("system_0.par", 3, "kell"), "system_0.par", "cell", "3 rows"),
    Case("system_cell_row", edit("system_0.par", 5, "0.5 0.0"), "system_0.par", 5, "3 numbers"),
    Case("system_cell_text", edit("system_0.par", 5, "0.5 zero 0.5"), "system_0.par", 5,
         "number", "zero"),
    Case("system_cell_short", put("system_0.par", "scale = 11\ncell\n0 .5 .5\n.5 0 .5\n"),
         "system_0.par", 2, "3 rows", "2"),
    Case("system_singular", edit("system_0.par", 6, "0.5 0.0 0.5"), "system_0.par", 3,
         "linearly independent", "det = 0"),
    Case("system_nearly_flat", edit("system_0.par", 6, "0.5 0.5 1.00000001"), "system_0.par", 3,
         "(|a1| |a2| |a3|) >= 0.001", "det = "),
    Case("system_left_handed", both(edit("system_0.par", 4, "0.5 0.0 0.5"),
         edit("system_0.par", 5, "0.0 0.5 0.5")), "system_0.par", 3, "> 0"),
    Case("system_tiny_scale", edit("system_0.par", 1, "scale = 0.5"), "system_0.par", 3,
         "at least 1 Bohr", "lattice vector of 0.354 Bohr"),
    Case("system_no_atoms", edit("system_0.par", 8, ""), "system_0.par", "atoms", "atom lines"),
    Case("system_atom_coordinates", edit("system_0.par", 10, "Se -0.125 -0.125"),
         "system_0.par", 10, "3 numbers", "2"),
    Case("system_atom_nan", edit("system_0.par", 10, "Se -0.125 nan 0"), "system_0.par", 10,
         "finite", "nan"),
    Case("system_atom_numeric", edit("system_0.par", 10, "34 -0.125 -0.125 -0.125"),
         "system_0.par", 10, "<symbol>"),
    Case("system_same_site", edit("system_0.par", 10, "Se 0.125 0.125 0.125"), "system_0.par",
         10, "1 Bohr apart", "Se 0.000 Bohr from Cd on line 9"),
    Case("system_periodic_image", edit("system_0.par", 10, "Se 1.125 0.125 -0.875"),
         "system_0.par", 10, "periodic images", "from Cd"),
    Case("system_same_species_image", edit("system_0.par", 10, "Cd 1.125 0.125 0.125"),
         "system_0.par", 10, "periodic images", "Cd 0.000 Bohr from Cd"),
    Case("system_close_atoms", edit("system_0.par", 10, "Se 0.13 0.125 0.125"),
         "system_0.par", 10, "1 Bohr apart", "0.040 Bohr"),
    Case("system_path_symbol", edit("system_0.par", 10, "Q/../../../outside/x 0 0 0"),
         "system_0.par", 10, "chemical symbol", "Q/../../../outside/x"),
    Case("system_dotted_symbol", edit("system_0.par", 10, "Se.par -0.125 -0.125 -0.125"),
         "system_0.par", 10, "chemical symbol", "Se.par"),
    Case("system_unknown_element", edit("system_0.par", 10, "Qq -0.125 -0.125 -0.125"),
         "system_0.par", 10, "chemical symbol", "Qq"),
    Case("system_lowercase_symbol", edit("system_0.par", 10, "se -0.125 -0.125 -0.125"),
         "system_0.par", 10, "chemical symbol", "se"),
    Case("system_species_without_params", edit("system_0.par", 10, "S -0.125 -0.125 -0.125"),
         "init_SParams.par", "S", "parameters", "no such file"),
    Case("system_missing", delete("system_0.par"), "system_0.par", WHOLE_FILE, "one file per"),
    # -- kpoints_0.par ----------------------------------------------------------------------
    Case("kpoints_three_columns", edit("kpoints_0.par", 1, "0.5 0.5 0.5"), "kpoints_0.par", 1,
         "at least 4", "3"),
    Case("kpoints_ragged", edit("kpoints_0.par", 3, "0.45 0.45 0.45 1 2"), "kpoints_0.par", 3,
         "4 columns", "5"),
    Case("kpoints_text", edit("kpoints_0.par", 2, "0.475 O.475 0.475 1"), "kpoints_0.par", 2,
         "number", "O.475"),
    Case("kpoints_nan", edit("kpoints_0.par", 3, "0.45 0.45 0.45 nan"), "kpoints_0.par", 3,
         "finite", "nan"),
    Case("kpoints_inf", edit("kpoints_0.par", 4, "inf 0.425 0.425 1"), "kpoints_0.par", 4,
         "finite", "inf"),
    Case("kpoints_negative_weight", edit("kpoints_0.par", 2, "0.475 0.475 0.475 -1"),
         "kpoints_0.par", 2, ">= 0", "-1"),
    Case("kpoints_zero_weights", put("kpoints_0.par", "0.5 0.5 0.5 0\n" * 5), "kpoints_0.par",
         "weight", "weight > 0", "all 0"),
    Case("kpoints_empty", put("kpoints_0.par", "# nothing\n"), "kpoints_0.par", WHOLE_FILE,
         "at least one row", "none"),
    Case("kpoints_missing", delete("kpoints_0.par"), "kpoints_0.par", WHOLE_FILE, "existing"),
    Case("kpoints_extra_row", append("kpoints_0.par", "0 0 0 1\n"), "expBandStruct_0.par", 5,
         "6 (one row per k-point)", "5"),
    # -- kpoints_0_orderMatrix.par ----------------------------------------------------------
    Case("order_columns", order_matrix(shape=(5, 15)), "orderMatrix", 1, "nBands = 16", "15"),
    Case("order_rows", order_matrix(shape=(6, 16)), "orderMatrix", 6, "one row per k-point"),
    Case("order_few_rows", order_matrix(shape=(4, 16)), "orderMatrix", 4, "5 (one row", "4"),
    Case("order_negative", order_matrix(value=-1, row=2), "orderMatrix", 3, ">= 0", "-1"),
    Case("order_fraction", put("kpoints_0_orderMatrix.par", ("0.5 " * 16 + "\n") * 5),
         "orderMatrix", 1, "integer", "0.5"),
    Case("order_beyond_basis", order_matrix(value=5000, row=3), "orderMatrix", WHOLE_FILE,
         "indices below", "5000"),
    # -- expBandStruct_0.par ----------------------------------------------------------------
    Case("reference_huge", energy(3, "1e308"), "expBandStruct_0.par", 3, "|E| <= 10000 eV",
         "1e+308"),
    Case("reference_unphysical", energy(2, "-20000"), "expBandStruct_0.par", 2, "|E|",
         "-20000"),
    Case("reference_inf", energy(4, "inf"), "expBandStruct_0.par", 4, "finite", "inf"),
    Case("reference_nan", energy(1, "NaN"), "expBandStruct_0.par", 1, "finite", "NaN"),
    Case("reference_text", energy(5, "-1.2.3"), "expBandStruct_0.par", 5, "number", "-1.2.3"),
    Case("reference_ragged", edit("expBandStruct_0.par", 2, "0.45 1 2 3"),
         "expBandStruct_0.par", 2, "17 (path coordinate", "4"),
    Case("reference_few_rows", reference_rows(4), "expBandStruct_0.par", 4,
         "5 (one row per k-point)", "4"),
    Case("reference_many_rows", reference_rows(7), "expBandStruct_0.par", 6,
         "5 (one row per k-point)", "6 or more"),
    Case("reference_empty", put("expBandStruct_0.par", ""), "expBandStruct_0.par", WHOLE_FILE,
         "at least one row"),
    Case("reference_missing", delete("expBandStruct_0.par"), "expBandStruct_0.par", WHOLE_FILE,
         "existing"),
    # -- bandWeights_0.par ------------------------------------------------------------------
    Case("weights_count", put("bandWeights_0.par", "1\n" * 15), "bandWeights_0.par", 15,
         "nBands = 16", "15"),
    Case("weights_too_many", put("bandWeights_0.par", "1 " * 17), "bandWeights_0.par", 1,
         "nBands = 16", "17"),
    Case("weights_negative", edit("bandWeights_0.par", 4, "-1"), "bandWeights_0.par", 4, ">= 0",
         "-1"),
    Case("weights_all_zero", put("bandWeights_0.par", "0\n" * 16), "bandWeights_0.par",
         "weight", "weight > 0", "16 weights, all 0"),
    Case("weights_text", edit("bandWeights_0.par", 7, "twenty"), "bandWeights_0.par", 7,
         "number", "twenty"),
    Case("weights_nan", edit("bandWeights_0.par", 2, "nan"), "bandWeights_0.par", 2, "finite"),
    # -- init_<S>Params.par -----------------------------------------------------------------
    Case("params_six", put("init_SeParams.par", "1\n2\n3\n4\n5\n6\n"), "init_SeParams.par", 6,
         "9 (a0..a8)", "6"),
    Case("params_eleven", append("init_CdParams.par", "1\n2\n"), "init_CdParams.par", 11,
         "10", "11"),
    Case("params_text", edit("init_CdParams.par", 2, "1.389e"), "init_CdParams.par", 2,
         "number", "1.389e"),
    Case("params_nan", edit("init_SeParams.par", 5, "nan"), "init_SeParams.par", 5, "finite"),
    Case("params_empty", put("init_SeParams.par", "# none\n"), "init_SeParams.par", WHOLE_FILE,
         "9 (a0..a8)", "0"),
    Case("params_missing", delete("init_SeParams.par"), "init_SeParams.par", "Se", "species"),
    # -- init_qSpace_pot.par ----------------------------------------------------------------
    Case("qspace_species", put("init_qSpace_pot.par", "# q Cd Te\n0 1 2\n1 1 2\n"),
         "init_qSpace_pot.par", 1, "Cd Se", "Cd Te"),
    Case("qspace_duplicate", put("init_qSpace_pot.par", "# q Cd Cd\n0 1 2\n1 1 2\n"),
         "init_qSpace_pot.par", 1, "one column per species", "Cd Cd"),
    Case("qspace_header_count", put("init_qSpace_pot.par", "# q Cd Se\n0 1\n1 1\n"),
         "init_qSpace_pot.par", 1, "2 value columns", "1"),
    Case("qspace_decreasing", put("init_qSpace_pot.par", "# q Cd Se\n0 1 2\n2 1 2\n1 1 2\n"),
         "init_qSpace_pot.par", 4, "strictly increasing", "1"),
    Case("qspace_negative_q", put("init_qSpace_pot.par", "# q Cd Se\n-1 1 2\n1 1 2\n"),
         "init_qSpace_pot.par", 2, "q >= 0", "-1"),
    Case("qspace_one_column", put("init_qSpace_pot.par", "0\n1\n"), "init_qSpace_pot.par", 1,
         "at least 2", "1"),
    Case("qspace_text", put("init_qSpace_pot.par", "# q Cd Se\n0 1 2\n1 x 2\n"),
         "init_qSpace_pot.par", 3, "number", "x"),
    # -- init_PPmodel.pth and init_AdamState.pth --------------------------------------------
    Case("model_garbage", put("init_PPmodel.pth", b"\x00garbage" * 50), "init_PPmodel.pth",
         WHOLE_FILE, "a torch checkpoint saved by dpp or DeepPseudopot", "non-torch"),
    Case("model_text", put("init_PPmodel.pth", "hello\n"), "init_PPmodel.pth", WHOLE_FILE,
         "a torch checkpoint saved by dpp or DeepPseudopot", "non-torch"),
    Case("model_empty", put("init_PPmodel.pth", b""), "init_PPmodel.pth", WHOLE_FILE,
         "torch checkpoint", "an empty file"),
    Case("model_crafted", crafted("init_PPmodel.pth"), "init_PPmodel.pth", WHOLE_FILE,
         "torch checkpoint", "a pickle that would import"),
    Case("model_not_state_dict", torch_file("init_PPmodel.pth", torch.zeros(3)),
         "init_PPmodel.pth", WHOLE_FILE, "mapping of parameter names", "Tensor"),
    Case("model_architecture", state_dict([10, 10, 10]), "init_PPmodel.pth",
         "hidden_l.0.weight", "(20, 1)", "(10, 1)"),
    Case("model_layers", state_dict([20, 20]), "init_PPmodel.pth", "hidden_l.3",
         "tensors of", "missing"),
    Case("model_path_missing", over("init.model_path=/nonexistent/model.pth"), "model.pth",
         WHOLE_FILE, "torch checkpoint", "no such file"),
    Case("adam_garbage", put("init_AdamState.pth", b"PK\x03\x04 truncated"),
         "init_AdamState.pth", WHOLE_FILE, "optimiser state_dict", "non-torch"),
    Case("adam_empty", put("init_AdamState.pth", b""), "init_AdamState.pth", WHOLE_FILE,
         "torch checkpoint", "an empty file"),
    Case("adam_crafted", crafted("init_AdamState.pth"), "init_AdamState.pth", WHOLE_FILE,
         "torch checkpoint", "would import"),
    Case("adam_not_state", torch_file("init_AdamState.pth", {"exp_avg": torch.zeros(2)}),
         "init_AdamState.pth", WHOLE_FILE, "'param_groups'", "exp_avg"),
    # -- resume (checkpoints/last.ckpt) -----------------------------------------------------
    Case("resume_nothing", over("resume=true"), "last.ckpt", "resume", "checkpoint",
         "no such file"),
    Case("resume_architecture", both(last_checkpoint("real"),
         over("model.hidden_layers=[8,8,8]")), "last.ckpt", "hidden_l.0.weight", "(8, 1)",
         "(20, 1)"),
    Case("resume_truncated", last_checkpoint("truncated"), "last.ckpt", WHOLE_FILE,
         "Lightning checkpoint", "truncated"),
    Case("resume_crafted", last_checkpoint("crafted"), "last.ckpt", WHOLE_FILE,
         "Lightning checkpoint", "would import io.open"),
    Case("ckpt_path_missing", over("ckpt_path=/nonexistent/x.ckpt"), "x.ckpt", "resume",
         "checkpoint", "no such file"),
    Case("evaluate_checkpoint", both(put("model.pth", b"junk"),
         with_bundle_override("checkpoint={bundle}/model.pth")), "model.pth", WHOLE_FILE,
         "torch checkpoint", "non-torch", config="evaluate"),
    # -- deformation potentials (fit_defPot = 1) --------------------------------------------
    Case("defpot_missing", append("input_0.par", DEFPOT), "expDefPot_0.par", WHOLE_FILE,
         "existing file"),
    Case("defpot_columns", both(append("input_0.par", DEFPOT),
         put("expDefPot_0.par", "0 7 0 8 1.01 -2\n")), "expDefPot_0.par", 1, "7 (kVB",
         "6"),
    Case("defpot_ratio", both(append("input_0.par", DEFPOT),
         put("expDefPot_0.par", "0 7 0 8 1 -2 1\n")), "expDefPot_0.par", 1, "s != 1",
         "1"),
    Case("defpot_weight", both(append("input_0.par", DEFPOT),
         put("expDefPot_0.par", "0 7 0 8 1.01 -2 -1\n")), "expDefPot_0.par", 1, ">= 0",
         "-1"),
    Case("defpot_fraction", both(append("input_0.par", DEFPOT),
         put("expDefPot_0.par", "0 7.5 0 8 1.01 -2 1\n")), "expDefPot_0.par", 1, "integer",
         "7.5"),
    Case("defpot_kpoint", both(append("input_0.par", DEFPOT),
         put("expDefPot_0.par", "# kVB bVB kCB bCB s D w\n9 7 0 8 1.01 -2 1\n")),
         "expDefPot_0.par", 2, "< 5", "9"),
    Case("defpot_band", both(append("input_0.par", DEFPOT),
         put("expDefPot_0.par", "0 7 0 16 1.01 -2 1\n")), "expDefPot_0.par", 1,
         "< nBands = 16", "16"),
    Case("defpot_legacy", both(append("input_0.par", DEFPOT),
         put("expDefPot_0.par", "-1.2\n-2.5\n")), "expDefPot_0.par", 1, "idxGap",
         "unset"),
    # -- electron-phonon couplings (fit_eph = 1) --------------------------------------------
    Case("eph_needs_indices", append("input_0.par", "fit_eph = 1\n"), "input_0.par", "idxVB",
         "band/k index", "unset"),
    Case("eph_qpoints_columns", eph("0 0 0\n"), "qpoints_0.par", 1, "at least 4", "3"),
    Case("eph_qpoints_weight", eph("0 0 0 -1\n"), "qpoints_0.par", 1, ">= 0", "-1"),
    Case("eph_no_blocks", eph("0 0 0 1\n", "nothing here\n"), "expCoupling_0.par", WHOLE_FILE,
         "Atom idx", "none"),
    Case("eph_layout", eph("0 0 0 1\n", "Atom idx = 0   atom = Cd   position = 0\nvb\n"),
         "expCoupling_0.par", 2, "vb-vb coupling", "'vb'"),
    Case("eph_values", eph("0 0 0 1\n0.5 0 0 1\n"), "expCoupling_0.par", 3,
         "one per q-point (2)", "1"),
    Case("eph_value_text", eph("0 0 0 1\n", values="big"), "expCoupling_0.par", 3, "number",
         "big"),
    Case("eph_missing", eph("0 0 0 1\n", ""), "expCoupling_0.par", WHOLE_FILE, "existing"),
    # -- Monte Carlo companion files --------------------------------------------------------
    Case("mc_options_unknown", both(put("mcOpts.par", MC_OPTS_TEXT + "temperature = 3\n"),
         over(*MC_OPTIONS)), "mcOpts.par", "temperature", "one of betas"),
    Case("mc_options_eff_mass", both(put("mcOpts.par", MC_OPTS_TEXT + "fitEffMass = True\n"),
         over(*MC_OPTIONS)), "mcOpts.par", "fitEffMass", "False", "True"),
    Case("mc_options_betas", both(put("mcOpts.par", "betas = 100\n"), over(*MC_OPTIONS)),
         "mcOpts.par", "betas", "2", "1"),
    Case("mc_options_bool", both(put("mcOpts.par", "optGaps = maybe\n"), over(*MC_OPTIONS)),
         "mcOpts.par", "optGaps", "True or False", "maybe"),
    Case("mc_options_int", both(put("mcOpts.par", "totalIter = 2.5\n"), over(*MC_OPTIONS)),
         "mcOpts.par", 1, "integer", "2.5"),
    Case("mc_options_missing", over(*MC_OPTIONS), "mcOpts.par", WHOLE_FILE, "existing"),
    Case("mc_steps_one_species", both(put("CdParamSteps.par", "0.1\n" * 9), over(*MC)),
         "SeParamSteps.par", WHOLE_FILE, "every species or for none", "1 of 2"),
    Case("mc_steps_count", both(put("CdParamSteps.par", "0.1\n" * 7),
         put("SeParamSteps.par", "0.1\n" * 9), over(*MC)), "CdParamSteps.par", 7,
         "9 or 5", "7"),
    Case("mc_steps_negative", both(put("CdParamSteps.par", "0.1\n" * 9),
         put("SeParamSteps.par", "0.1\n" * 8 + "-0.1\n"), over(*MC)), "SeParamSteps.par", 9,
         ">= 0", "-0.1"),
    Case("mc_schedule_order", both(put("schedule.par", "1 5\n1 10\n"), over(*MC_SCHEDULE)),
         "schedule.par", 2, "strictly increasing", "1"),
    Case("mc_schedule_beta", both(put("schedule.par", "1 5\n4 0\n"), over(*MC_SCHEDULE)),
         "schedule.par", 2, "beta > 0", "0"),
    Case("mc_schedule_columns", both(put("schedule.par", "1 5 7\n"), over(*MC_SCHEDULE)),
         "schedule.par", 1, "2 (trial beta)", "3"),
    Case("mc_schedule_missing", over(*MC_SCHEDULE), "schedule.par", WHOLE_FILE, "existing"),
    Case("mc_replicas", over(*MC, "mc.replicas=0"), "command-line override", "mc.replicas=0",
         ">= 1", "0"),
    Case("mc_iterations_zero", over(*MC[:2], "mc.iterations=0"), "command-line override",
         "mc.iterations=0", ">= 1", "0"),
    # -- command-line overrides -------------------------------------------------------------
    Case("cli_negative_lr", over("recipe=legacy", "optimizer.lr=-1"), "command-line override",
         "optimizer.lr=-1", found="-1"),
    Case("cli_zero_lr", over("recipe=legacy", "optimizer.lr=0"), "command-line override",
         "optimizer.lr=0", "lr > 0", "0"),
    Case("cli_zero_damping", over("optimizer.damping=0"), "command-line override",
         "optimizer.damping=0", found="0"),
    Case("cli_zero_trials", over("optimizer.trials=0"), "command-line override",
         "optimizer.trials=0", found="0"),
    Case("cli_zero_gamma", over("recipe=legacy", "scheduler.gamma=0"), "command-line override",
         "scheduler.gamma=0", "gamma > 0", "0"),
    Case("cli_plateau_gamma", over("scheduler=plateau", "scheduler.gamma=0"),
         "command-line override", "scheduler.gamma=0", "gamma > 0"),
    Case("cli_zero_prefit_lr", over("init.optimizer.lr=0"), "command-line override",
         "init.optimizer.lr=0", "lr > 0"),
    Case("cli_batch_size", over("data.kpt_batch_size=0"), "command-line override",
         "data.kpt_batch_size=0", ">= 1", "0"),
    Case("cli_seed", over("seed=abc"), "command-line override", "seed=abc", "integer", "abc"),
    Case("cli_unknown_key", over("optimizer.lrr=0.1"), "command line", "optimizer.lrr=0.1",
         "a key of the configuration", "optimizer.lrr"),
    Case("cli_unknown_option", over("optimizer=adamm"), "command line", "optimizer=adamm",
         "one of", "adamm"),
    Case("cli_unknown_group_key", over("model.hiden_layers=[8]"), "command line",
         "model.hiden_layers", "key of the configuration"),
    Case("cli_bundle_missing", over("data.bundle=/nonexistent/bundle"), "/nonexistent/bundle",
         "data.bundle", "NN_config.par", "no such folder"),
    Case("cli_bundle_sweep", with_bundle_override("data.bundle={bundle},{bundle}"),
         "command line", "data.bundle=", "one bundle per multirun"),
    Case("cli_n_system", over("data.n_system=0"), "command-line override", "data.n_system=0",
         ">= 1", "0"),
    Case("cli_fifth_param", over("data.legacy_fifth_param=a4"), "command-line override",
         "data.legacy_fifth_param=a4", "strain", "a4"),
    Case("cli_hidden_type", over("model.hidden_layers=abc"), "command-line override",
         "model.hidden_layers=abc", "list of integers", "abc"),
    Case("cli_model_name", over("model.name=Net_foo"), "command-line override",
         "model.name=Net_foo", "catalogue", "Net_foo"),
    Case("cli_eigensolver", over("hamiltonian.eigensolver=magma"), "command-line override",
         "hamiltonian.eigensolver=magma", found="magma"),
    Case("cli_reorder", over("loss.reorder=sorted"), "command-line override",
         "loss.reorder=sorted", "smooth", "sorted"),
    Case("cli_relE_band", over("loss.relE_bIdx=99"), "command-line override",
         "loss.relE_bIdx=99", "< nBands = 16", "99"),
    Case("cli_threads", over("num_threads=-3"), "command-line override", "num_threads=-3",
         found="-3"),
    Case("cli_prefit_epochs", over("init.num_epochs=-1"), "command-line override",
         "init.num_epochs=-1", ">= 0", "-1"),
    Case("cli_workflow", over("workflow.name=fit"), "command-line override", "workflow.name=fit",
         "gradient", "fit"),
    Case("cli_grid", over("outputs.n_qgrid=1"), "command-line override", "outputs.n_qgrid=1",
         ">= 2", "1"),
    Case("cli_trainer", over("trainer.max_epochs=abc"), "command-line override",
         "trainer.max_epochs=abc", "integer", "abc"),
    Case("cli_accelerator", over("trainer.accelerator=foo"), "command-line override",
         "trainer.accelerator=foo", "valid value", "invalid accelerator name"),
    Case("cli_devices", over("trainer.devices=0"), "command-line override", "trainer.devices=0",
         "valid value", "devices=0"),
    Case("cli_run_dir_file", unwritable_run_dir, "a_file/run", "hydra.run.dir",
         "create and write", "is a file"),
]
# fmt: on


# -- running a case -------------------------------------------------------------------------
@dataclass
class Workspace:
    """The fixed bundle path, a clean copy of the bundle, cached compositions and a real
    last.ckpt; `clean_loss` is the clean bundle's evaluation loss."""

    root: Path
    clean: Path
    checkpoint: Path
    compositions: dict[tuple, tuple[DictConfig, dict, Prepared]] = field(default_factory=dict)
    clean_loss: float = float("nan")

    @property
    def bundle(self) -> Path:
        return self.root / "bundle"

    def reset(self) -> None:
        shutil.rmtree(self.bundle, ignore_errors=True)
        shutil.copytree(self.clean, self.bundle)

    def compose(self, config: str, overrides: list[str]) -> tuple[DictConfig, dict, Prepared]:
        """The job config, Hydra's choices and the pre-pass of `overrides` (cached by
        NN_config.par text and overrides)."""
        cache_key = (config, (self.bundle / "NN_config.par").read_bytes(), tuple(overrides))
        if cache_key not in self.compositions:
            prepared = prepare(config, overrides)
            cfg = copy.deepcopy(prepared.config)
            choices = OmegaConf.to_container(cfg.hydra.runtime.choices)
            with open_dict(cfg):
                del cfg["hydra"]
            self.compositions[cache_key] = (cfg, choices, prepared)
        return self.compositions[cache_key]

    def run(self, ctx: Context, extra: list[str], config: str = "train") -> float:
        overrides = [*QUIET, f"data.bundle={self.bundle}", *extra]
        cfg, choices, prepared = self.compose(config, overrides)
        return run(
            copy.deepcopy(cfg),
            run_dir=ctx.run_dir,
            overrides=overrides,
            choices=choices,
            prepared=prepared,
        )


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    root = tmp_path_factory.mktemp("catalogue")
    clean = small_bundle(root / "source", n_k=5, max_ke=1.5)
    first = root / "first_run"
    run_app(first, [f"data.bundle={clean}", "trainer.max_epochs=1", "init.num_epochs=0"])
    space = Workspace(root, clean, first / "checkpoints" / "last.ckpt")
    space.reset()
    run_dir = root / "runs" / "clean"
    space.clean_loss = space.run(Context(space.bundle, run_dir, space.checkpoint), NO_WORK)
    return space


def _work_files(run_dir: Path) -> list[str]:
    if not run_dir.is_dir():
        return []
    return sorted(p.name for pattern in WORK_FILES for p in run_dir.glob(pattern))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_refused_before_work(workspace: Workspace, case: Case) -> None:
    workspace.reset()
    ctx = Context(workspace.bundle, workspace.root / "runs" / case.name, workspace.checkpoint)
    with pytest.raises(InputError) as info:
        workspace.run(ctx, case.mutate(ctx), case.config)
    error, message = info.value, str(info.value)
    assert "\n" not in message and "weights_only=False" not in message, message
    assert case.file in (error.file or ""), message
    if isinstance(case.where, int):
        assert error.line == case.where, message
    elif case.where != WHOLE_FILE:
        assert case.where in (error.key or ""), message
    assert error.expected and case.expected in error.expected, message
    assert error.found and case.found in error.found, message
    assert _work_files(ctx.run_dir) == [], message
    assert not (workspace.bundle / "MARKER").exists()


def test_catalogue_is_large() -> None:
    assert len(CASES) >= 120 and len({c.name for c in CASES}) == len(CASES)


HARMLESS = {
    "crlf": every_file(lambda b: b.replace(b"\n", b"\r\n")),
    "cr_only": every_file(lambda b: b.replace(b"\n", b"\r")),
    "utf8_bom": every_file(lambda b: b"\xef\xbb\xbf" + b),
    "comments": every_file(commented),
    "tabs": every_file(lambda b: b.replace(b" ", b"\t").replace(b"\t=\t", b" = ")),
    "blank_lines_and_spaces": every_file(lambda b: b"\n\n" + b.replace(b"\n", b"   \n\n")),
    "symlinked_files": symlinked,
    "symlinked_bundle": lambda ctx: [],
}


@pytest.mark.parametrize("name", HARMLESS)
def test_harmless_variants_give_the_clean_loss(workspace: Workspace, name: str) -> None:
    workspace.reset()
    ctx = Context(workspace.bundle, workspace.root / "runs" / f"ok_{name}", workspace.checkpoint)
    extra = HARMLESS[name](ctx)
    if name == "symlinked_bundle":
        link = workspace.root / "linked"
        link.unlink(missing_ok=True)
        link.symlink_to(workspace.bundle, target_is_directory=True)
        loss = run_app(ctx.run_dir, [f"data.bundle={link}", *NO_WORK])
    else:
        loss = workspace.run(ctx, [*extra, *NO_WORK])
    assert loss == pytest.approx(workspace.clean_loss, rel=1e-12)


# -- python train.py ------------------------------------------------------------------------
def _train(*arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, str(REPO / "train.py"), *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
    )


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


@pytest.mark.parametrize(
    ("mutation", "arguments", "fragment"),
    [
        pytest.param(
            nn("optimizer_lr", "abc"), [], "NN_config.par, line", id="nn_config", marks=SLOW
        ),
        pytest.param(
            None, ["optimizer.dampin=0.1"], "did you mean 'optimizer.damping'", id="override"
        ),
        pytest.param(
            None,
            ["hydra.run.dir={bundle}/NN_config.par/run"],
            "cannot write the run directory",
            id="run_dir",
            marks=SLOW,
        ),
        pytest.param(
            inp("maxKE", "0"), ["hydra.run.dir={root}/run_maxke"], "key 'maxKE'", id="in_job"
        ),
        pytest.param(
            None,
            ["paths.output_root=a=b"],
            "key 'paths.output_root=a=b': malformed override",
            id="malformed",
            marks=SLOW,
        ),
    ],
)
def test_train_py_refuses_with_one_line(
    tmp_path: Path, mutation: Mutation | None, arguments: list[str], fragment: str
) -> None:
    bundle = small_bundle(tmp_path, n_k=5)
    if mutation is not None:
        mutation(Context(bundle, tmp_path / "run", Path()))
    filled = [a.format(bundle=bundle, root=tmp_path) for a in arguments]
    result = _train(f"data.bundle={bundle}", *filled, cwd=tmp_path)
    assert fragment in _one_error_line(result)
    assert not (tmp_path / "outputs").exists() and _work_files(tmp_path / "run_maxke") == []

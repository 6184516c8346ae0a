"""Load the data of an input bundle folder into typed, validated records (bundle-format §1).

Every file is read once. Settings (NN_config.par) are not part of the records: they are
translated into the run configuration by `dpp.io.nnconfig`.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from dpp.errors import InputError
from dpp.io.kpoints import order_matrix_path, read_labelled_points, read_order_matrix
from dpp.io.observables import (
    DefPotTarget,
    read_coupling_targets,
    read_defpot_targets,
    read_qpoints,
)
from dpp.io.params import params_path, read_species_params
from dpp.io.qspace import read_qspace_table
from dpp.io.records import Bundle, SystemData
from dpp.io.reference import read_band_weights, read_reference_bands
from dpp.io.settings import read_settings
from dpp.io.system import read_system
from dpp.slots import N_SLOTS

CONFIG_NAME = "NN_config.par"
QSPACE_NAME = "init_qSpace_pot.par"
MODEL_NAME = "init_PPmodel.pth"
OPTIMIZER_NAME = "init_AdamState.pth"


def count_systems(folder: Path) -> int:
    """Number of systems of a bundle without NN_config.par: system_0.par, system_1.par, …"""
    count = 0
    while (folder / f"system_{count}.par").is_file():
        count += 1
    if count == 0:
        raise InputError(folder / "system_0.par", "file not found", expected="a system file")
    return count


def load_bundle(
    path: str | Path,
    *,
    n_systems: int | None = None,
    fifth_param: str = "strain",
    allow_left_handed: bool = False,
    require_reference: bool = True,
    deformation_potentials: bool = False,
    legacy_defpot_weight: float = 1.0,
    electron_phonon: bool = False,
) -> Bundle:
    """Read and validate the bundle in folder `path`.

    `n_systems` systems are read (None: as many as there are system_X.par files).
    `fifth_param` places the 5th number of a 5-number parameter file (`strain` = a8,
    `long_range` = a4); `allow_left_handed` accepts a cell with a negative triple product.
    expBandStruct_X.par may be absent only with `require_reference=False`; a fit
    (`require_reference`) also needs a k-point weight and a band weight > 0 in every system.
    expDefPot_X.par is read for the systems with fit_defPot = 1, or for every system with
    `deformation_potentials` (the analytic Monte Carlo engine's fitDefPot), a legacy two-line
    file then weighted by `legacy_defpot_weight`. qpoints_X.par and expCoupling_X.par are read
    for the systems with fit_eph = 1, or for every system with `electron_phonon` (fitCoupling).
    Every problem is an InputError naming file and line or key.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise InputError(folder, "bundle folder not found", expected="a folder with system files")
    count = count_systems(folder) if n_systems is None else n_systems
    for index in range(count):
        file = folder / f"system_{index}.par"
        if not file.is_file():
            raise InputError(
                file,
                "file not found",
                expected=f"one file per system: system_0.par ... system_{count - 1}.par",
                found="no such file",
            )
    systems = [
        read_system_data(
            folder,
            index,
            allow_left_handed=allow_left_handed,
            require_reference=require_reference,
            deformation_potentials=deformation_potentials,
            legacy_defpot_weight=legacy_defpot_weight,
            electron_phonon=electron_phonon,
        )
        for index in range(count)
    ]
    species = tuple(sorted({symbol for s in systems for symbol in s.crystal.symbols}))
    pp_params = np.zeros((len(species), N_SLOTS))
    for row, symbol in enumerate(species):
        file = params_path(folder, symbol)
        if not file.is_file():
            raise InputError(
                file,
                "file not found",
                key=symbol,
                expected=f"parameters a0..a8 of species '{symbol}'",
                found="no such file",
            )
        pp_params[row] = read_species_params(file, fifth_param=fifth_param)
    qspace = folder / QSPACE_NAME
    return Bundle(
        path=folder,
        systems=systems,
        species=species,
        pp_params=pp_params,
        qspace_prior=read_qspace_table(qspace, species) if _optional(qspace) else None,
        init_model_path=_optional(folder / MODEL_NAME),
        init_optimizer_path=_optional(folder / OPTIMIZER_NAME),
    )


def first_kpoints(bundle: Bundle, n: int) -> Bundle:
    """`bundle` with only the first `n` k-points of every system (quick checks). A system
    whose deformation potentials or couplings need other k-points is an InputError."""
    systems = []
    for system in bundle.systems:
        if n >= system.n_kpoints:
            systems.append(system)
            continue
        if system.defpot_targets or system.couplings is not None:
            raise InputError(
                system.files.get("input"),
                "deformation potentials and couplings need every k-point",
                key="max_kpoints",
                expected=f"null or >= {system.n_kpoints}",
                found=str(n),
            )
        keep = slice(0, n)
        systems.append(
            replace(
                system,
                kpoints=system.kpoints[keep],
                kweights=system.kweights[keep],
                order_matrix=None if system.order_matrix is None else system.order_matrix[keep],
                ref_path=None if system.ref_path is None else system.ref_path[keep],
                ref_bands=None if system.ref_bands is None else system.ref_bands[keep],
                kpoint_labels={k: v for k, v in system.kpoint_labels.items() if k < n},
            )
        )
    return replace(bundle, systems=systems)


def read_system_data(
    folder: str | Path,
    index: int,
    *,
    allow_left_handed: bool = False,
    require_reference: bool = True,
    deformation_potentials: bool = False,
    legacy_defpot_weight: float = 1.0,
    electron_phonon: bool = False,
) -> SystemData:
    """Read and cross-check the files of system `index` of a bundle folder."""
    folder = Path(folder)
    files = {
        "system": folder / f"system_{index}.par",
        "input": folder / f"input_{index}.par",
        "kpoints": folder / f"kpoints_{index}.par",
    }
    crystal = read_system(files["system"], allow_left_handed=allow_left_handed)
    settings = read_settings(files["input"])
    kpoints, kweights, kpoint_labels = read_labelled_points(files["kpoints"])
    n_k, n_bands = kpoints.shape[0], settings.n_bands
    order_file = order_matrix_path(files["kpoints"])
    order_matrix = None
    if _optional(order_file):
        files["order_matrix"] = order_file
        order_matrix = read_order_matrix(order_file, n_k, n_bands)
    ref_path = ref_bands = None
    reference = folder / f"expBandStruct_{index}.par"
    if _optional(reference) or require_reference:
        files["reference"] = reference
        ref_path, ref_bands = read_reference_bands(reference, n_bands, n_k)
    weights_file = folder / f"bandWeights_{index}.par"
    if _optional(weights_file):
        files["band_weights"] = weights_file
    band_weights = read_band_weights(weights_file, n_bands)
    if require_reference:
        _require_weight(files["kpoints"], kweights, "k-point", index)
        _require_weight(weights_file, band_weights, "band", index)
    if settings.idx_gap is not None and settings.idx_gap >= n_k:
        raise InputError(
            files["input"],
            "k-point index out of range",
            key="idxGap",
            expected=f"< {n_k} (rows of {files['kpoints'].name})",
            found=str(settings.idx_gap),
        )
    defpot_targets = ()
    if settings.fit_defpot or deformation_potentials:
        files["defpot"] = folder / f"expDefPot_{index}.par"
        legacy = (settings.idx_gap, settings.idx_vb, settings.idx_cb)
        defpot_targets = tuple(
            read_defpot_targets(
                files["defpot"],
                legacy_indices=None if None in legacy else legacy,
                legacy_weight=legacy_defpot_weight,
            )
        )
        _check_states(files["defpot"], defpot_targets, n_k, n_bands)
    qpoints = qweights = couplings = None
    if settings.fit_eph or electron_phonon:
        because = "fit_eph = 1" if settings.fit_eph else "fitCoupling"
        _require_keys(files["input"], settings, ("idx_vb", "idx_cb", "idx_gap"), because)
        files["qpoints"] = folder / f"qpoints_{index}.par"
        files["coupling"] = folder / f"expCoupling_{index}.par"
        qpoints, qweights = read_qpoints(files["qpoints"])
        couplings = read_coupling_targets(files["coupling"], n_qpoints=qpoints.shape[0])
    return SystemData(
        index=index,
        crystal=crystal,
        settings=settings,
        kpoints=kpoints,
        kweights=kweights,
        kpoint_labels=kpoint_labels,
        band_weights=band_weights,
        order_matrix=order_matrix,
        ref_path=ref_path,
        ref_bands=ref_bands,
        defpot_targets=defpot_targets,
        qpoints=qpoints,
        qweights=qweights,
        couplings=couplings,
        files=files,
    )


_INPUT_KEY = {"idx_vb": "idxVB", "idx_cb": "idxCB", "idx_gap": "idxGap"}


def _require_keys(file: Path, settings: object, fields: tuple[str, ...], because: str) -> None:
    for name in fields:
        if getattr(settings, name) is None:
            raise InputError(
                file,
                f"{because} needs '{_INPUT_KEY[name]}'",
                key=_INPUT_KEY[name],
                expected="a band/k index",
                found="unset",
            )


def _require_weight(file: Path, weights: np.ndarray, what: str, index: int) -> None:
    """A fit needs a weight > 0: with every weight 0 the system contributes nothing."""
    if not (weights > 0).any():
        raise InputError(
            file,
            f"every {what} weight is 0, so system {index} would fit nothing",
            key="weight",
            expected="at least one weight > 0",
            found=f"{weights.size} weights, all 0",
        )


def _check_states(
    file: Path, targets: tuple[DefPotTarget, ...], n_kpoints: int, n_bands: int
) -> None:
    """Every (k, band) state of the deformation-potential targets exists in the system."""
    for target in targets:
        for k, band in target.states:
            if k >= n_kpoints:
                raise InputError(
                    file,
                    "k-point index out of range",
                    line=target.line,
                    expected=f"< {n_kpoints} (rows of the k-point file)",
                    found=str(k),
                )
            if band >= n_bands:
                raise InputError(
                    file,
                    "band index out of range",
                    line=target.line,
                    expected=f"< nBands = {n_bands}",
                    found=str(band),
                )


def _optional(path: Path) -> Path | None:
    """`path` when that optional file is there, else None; a symbolic link to nothing is an
    error (it names a file meant to be read)."""
    if path.is_symlink() and not path.exists():
        raise InputError(
            path,
            "broken symbolic link",
            expected="a link to an existing file",
            found=f"a link to {os.readlink(path)}",
        )
    return path if path.is_file() else None

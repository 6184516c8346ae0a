"""Load a whole input bundle folder into typed, validated records (bundle-format §1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dpp.errors import InputError
from dpp.io.config import NNConfig, validate_for_systems
from dpp.io.kpoints import order_matrix_path, read_order_matrix, read_points
from dpp.io.montecarlo import read_beta_schedule
from dpp.io.observables import read_coupling_targets, read_defpot_targets, read_qpoints
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


def load_bundle(
    path: str | Path,
    *,
    require_reference: bool = True,
    config: NNConfig | None = None,
    **overrides: Any,
) -> Bundle:
    """Read and validate the bundle in folder `path`.

    `config` replaces the folder's NN_config.par (e.g. one built from a Hydra run config).

    `overrides` are NN_config keys (e.g. `basis_search="legacy"`, `SObool=1`) applied on top of
    NN_config.par and validated the same way. expBandStruct_X.par may be absent only with
    `require_reference=False`. Every problem is an InputError naming file and line or key.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise InputError(folder, "bundle folder not found", expected="a folder with NN_config.par")
    config = NNConfig.from_file(folder / CONFIG_NAME, overrides)
    systems = [
        read_system_data(folder, index, config, require_reference=require_reference)
        for index in range(config.nSystem)
    ]
    species = tuple(sorted({symbol for s in systems for symbol in s.crystal.symbols}))
    validate_for_systems(config, systems, species)
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
        pp_params[row] = read_species_params(file, fifth_param=config.legacy_fifth_param)
    schedule = config.mc_beta_schedule
    if schedule is not None and config.mc_bool:
        read_beta_schedule(folder / schedule)
    qspace = folder / QSPACE_NAME
    return Bundle(
        path=folder,
        config=config,
        systems=systems,
        species=species,
        pp_params=pp_params,
        qspace_prior=read_qspace_table(qspace, species) if qspace.is_file() else None,
        init_model_path=_optional(folder / MODEL_NAME),
        init_optimizer_path=_optional(folder / OPTIMIZER_NAME),
    )


def read_system_data(
    folder: str | Path, index: int, config: NNConfig, *, require_reference: bool = True
) -> SystemData:
    """Read and cross-check the files of system `index` of a bundle folder."""
    folder = Path(folder)
    files = {
        "system": folder / f"system_{index}.par",
        "input": folder / f"input_{index}.par",
        "kpoints": folder / f"kpoints_{index}.par",
    }
    crystal = read_system(files["system"], allow_left_handed=config.allow_left_handed)
    settings = read_settings(files["input"])
    kpoints, kweights = read_points(files["kpoints"])
    n_k, n_bands = kpoints.shape[0], settings.n_bands
    order_file = order_matrix_path(files["kpoints"])
    order_matrix = None
    if order_file.is_file():
        files["order_matrix"] = order_file
        order_matrix = read_order_matrix(order_file, n_k, n_bands)
    ref_path = ref_bands = None
    reference = folder / f"expBandStruct_{index}.par"
    if reference.is_file() or require_reference:
        files["reference"] = reference
        ref_path, ref_bands = read_reference_bands(reference, n_bands, n_k)
    weights_file = folder / f"bandWeights_{index}.par"
    if weights_file.is_file():
        files["band_weights"] = weights_file
    band_weights = read_band_weights(weights_file, n_bands)
    if settings.idx_gap is not None and settings.idx_gap >= n_k:
        raise InputError(
            files["input"],
            "k-point index out of range",
            key="idxGap",
            expected=f"< {n_k} (rows of {files['kpoints'].name})",
            found=str(settings.idx_gap),
        )
    if settings.fit_defpot:
        files["defpot"] = folder / f"expDefPot_{index}.par"
        legacy = (settings.idx_gap, settings.idx_vb, settings.idx_cb)
        read_defpot_targets(files["defpot"], legacy_indices=None if None in legacy else legacy)
    if settings.fit_eph:
        _require_keys(files["input"], settings, ("idx_vb", "idx_cb", "idx_gap"), "fit_eph = 1")
        files["qpoints"] = folder / f"qpoints_{index}.par"
        files["coupling"] = folder / f"expCoupling_{index}.par"
        qpoints, _ = read_qpoints(files["qpoints"])
        read_coupling_targets(files["coupling"], n_qpoints=qpoints.shape[0])
    return SystemData(
        index=index,
        crystal=crystal,
        settings=settings,
        kpoints=kpoints,
        kweights=kweights,
        band_weights=band_weights,
        order_matrix=order_matrix,
        ref_path=ref_path,
        ref_bands=ref_bands,
        files=files,
    )


_INPUT_KEY = {"idx_vb": "idxVB", "idx_cb": "idxCB", "idx_gap": "idxGap"}


def _require_keys(file: Path, settings: Any, fields: tuple[str, ...], because: str) -> None:
    for field in fields:
        if getattr(settings, field) is None:
            raise InputError(
                file,
                f"{because} needs '{_INPUT_KEY[field]}'",
                key=_INPUT_KEY[field],
                expected="a band/k index",
                found="unset",
            )


def _optional(path: Path) -> Path | None:
    return path if path.is_file() else None

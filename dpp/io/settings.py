"""input_X.par: cutoff, number of bands, band indices and plot windows (bundle-format §5)."""

from __future__ import annotations

import warnings
from pathlib import Path

from dpp.errors import InputError
from dpp.io.keys import KeySpec, did_you_mean, parse_value
from dpp.io.keyvalue import read_key_values
from dpp.io.records import SystemSettings


def _key(name: str, kind: str, field: str, doc: str, **extra: object) -> tuple[KeySpec, str]:
    return KeySpec(name, kind, doc, **extra), field


_KEYS: dict[str, tuple[KeySpec, str]] = {
    spec.name: (spec, field)
    for spec, field in (
        _key(
            "maxKE",
            "float",
            "max_ke",
            "kinetic cutoff on |G|^2/2 (Hartree)",
            above=0.0,
            required=True,
        ),
        _key("nBands", "int", "n_bands", "bands per k-point", minimum=1, required=True),
        _key("idxVB", "int", "idx_vb", "valence-edge band index (0-based)", minimum=0),
        _key("idxCB", "int", "idx_cb", "conduction-edge band index (0-based)", minimum=0),
        _key("idxGap", "int", "idx_gap", "k-point index of the gap (0-based)", minimum=0),
        _key("BS_plot_center", "float", "bs_plot_center", "centre of the plot windows (eV)"),
        _key("BS_plot_CBVB_range", "float", "bs_plot_range", "half-height of the panel (eV)"),
        _key(
            "BS_plot_CBVB_range_zoom",
            "float",
            "bs_plot_range_zoom",
            "half-height of the zoom panel (eV)",
        ),
        _key("systemName", "str", "system_name", "label in plots and logs"),
        _key("fit_defPot", "bool", "fit_defpot", "fit the rows of expDefPot_X.par"),
        _key("fit_eph", "bool", "fit_eph", "fit the couplings of expCoupling_X.par"),
        _key("relE_bIdx", "int", "relE_bIdx", "per-system relative-energy band", minimum=0),
        _key(
            "strain_ref_scale",
            "float",
            "strain_ref_scale",
            "equilibrium scale of the strain factor (Bohr)",
            above=0.0,
        ),
        _key("fit_window_low", "float", "window_low", "lowest fitted energy above the edge (eV)"),
        _key("fit_window_high", "float", "window_high", "highest fitted energy (eV)"),
        _key(
            "fit_window_edge",
            "choice",
            "window_edge",
            "zero of the window: vbm, cbm or absolute",
            choices=("vbm", "cbm", "absolute"),
        ),
        _key(
            "fit_window_smoothness",
            "float",
            "window_smoothness",
            "roll-off width of the window edges (eV)",
            above=0.0,
        ),
        _key("exclude_bands", "int_list", "exclude_bands", "bands never fitted", minimum=0),
    )
}
SETTINGS_KEYS: dict[str, KeySpec] = {name: spec for name, (spec, _) in _KEYS.items()}
"""The keys of input_X.par."""


def read_settings(path: str | Path) -> SystemSettings:
    """Read input_X.par; maxKE and nBands are required, unknown keys give a warning."""
    path = Path(path)
    fields: dict[str, object] = {}
    for key, (text, line) in read_key_values(path).items():
        if key not in _KEYS:
            hint = did_you_mean(key, _KEYS)
            hint = f" ({hint})" if hint else ""
            warnings.warn(f"{path}, line {line}: unknown key '{key}' ignored{hint}", stacklevel=2)
            continue
        spec, field = _KEYS[key]
        fields[field] = parse_value(spec, text, path, line)
    for spec, field in _KEYS.values():
        if spec.required and field not in fields:
            raise InputError(
                path,
                "required key missing",
                key=spec.name,
                expected=f"'{spec.name} = ...'",
                found="no such line",
            )
    settings = SystemSettings(**fields)
    if settings.relE_bIdx is not None and settings.relE_bIdx >= settings.n_bands:
        raise InputError(
            path,
            "band index out of range",
            key="relE_bIdx",
            expected=f"< nBands = {settings.n_bands}",
            found=str(settings.relE_bIdx),
        )
    return settings

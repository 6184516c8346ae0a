"""Wang–Zunger starting parameters a0…a9 (physics.md §4) of any species, with their provenance.

`starting_params` takes, in this order of priority: the species of the shipped bundles
(`STARTING_PARAMS`), then the Cohen–Bergstresser table (dpp.tools.form_factors: Si, Ge, Sn, Al,
Zn, Sb, Te and the other elements of 14 diamond and zinc-blende semiconductors), then for any
other element with an s+p valence count (N, C, O, B, Be, Mg, the halogens, Tl, Bi, ...)
the curve of its analogue scaled to its size (`scaled_analogue`). Elements with an open d or f
shell have none, nor H and the alkali metals (the one analogue, the shipped Cs, has a0 = 0).

Analogue scaling: the element with starting values and the same number of s+p valence
electrons whose covalent radius (ASE's table) is closest, its local potential scaled as
V(r) → V(r/s)/s² with s the ratio of covalent radii (N from P: s = 0.66; C from Si: 0.68).
In q-space v(q) → s v(s q): a0 → s³ a0, a1 → a1/s², a2 unchanged, a3 → s² a3. A crystal
scaled by s in that potential has the analogue's bands times 1/s², so a nitride starts from
its phosphide's band shape. The analogue's spin–orbit, nonlocal and strain slots are not
carried over. The rule is rough for first-row elements, whose p states have no core to be
orthogonal to: on the pw.x LDA bands of zinc-blende GaN the starting curves (shipped Ga, N
scaled from P) give 4.9 eV RMS (VBM-aligned, kept bands) and a 7.4 eV gap against 1.9 eV;
Si (table) 0.60 eV, AlAs (table Al, shipped As) 0.38 eV, GaAs (shipped) 0.71 eV.

Each shipped vector is copied from a parameter file shipped with dpp, read with dpp's rules
(a 5-number file puts its 5th value in the strain slot a8, bundle-format §9). a0 is in
Hartree·Bohr³, a1 in 1/Bohr², a2 dimensionless, a3 in Bohr²; a5…a7 are the spin–orbit and
nonlocal strengths fitted together with them. They are starting points for a fit, not
transferable potentials.
"""

from __future__ import annotations

import numpy as np

from dpp.slots import N_SLOTS
from dpp.tools.band_selection import sp_electrons
from dpp.tools.form_factors import BOHR_ANGSTROM, SOURCE, tabulated_elements, tabulated_params

STARTING_PARAMS: dict[str, tuple[tuple[float, ...], str]] = {
    "Cd": (
        (-31.4518, 1.3890, -0.0502, 1.6603, 0.0, 0.0, 0.0, 0.0, 0.0586),
        "dpp/data/examples/zb_CdSe/init_CdParams.par",
    ),
    "Se": (
        (8.4921, 4.3513, 1.3600, 0.3227, 0.0, 0.0, 0.0, 0.0, 0.1746),
        "dpp/data/examples/zb_CdSe/init_SeParams.par",
    ),
    "S": (
        (7.6697, 4.5192, 1.3456, 0.3035, 0.0, 0.0, 0.0, 0.0, 0.2087),
        "tests/data/extras/defpot/init_SParams.par",
    ),
    "In": (
        (50.61980368, 2.16277701, 3.04453741, 0.54417263, 0.0, 0.0, 0.0, 0.0, 0.64666079),
        "tests/data/InGaAsP/init_InParams.par",
    ),
    "Ga": (
        (50.77526879, 2.29527553, 3.72038796, 0.59163580, 0.0, 0.0, 0.0, 0.0, 0.79710125),
        "tests/data/InGaAsP/init_GaParams.par",
    ),
    "As": (
        (25.80944629, 2.58859458, 1.58196225, 0.51424374, 0.0, 0.0, 0.0, 0.0, -0.03501301),
        "tests/data/InGaAsP/init_AsParams.par",
    ),
    "P": (
        (27.44798360, 2.59141679, 1.66089229, 0.47417733, 0.0, 0.0, 0.0, 0.0, -0.03003529),
        "tests/data/InGaAsP/init_PParams.par",
    ),
    "Cs": (
        (0.0, 0.73523927, 2.46919399, 1.33888287, 0.0, 0.0, 0.0, 0.0, 0.0),
        "tests/data/CsPbI3_soc/init_CsParams.par",
    ),
    "Pb": (
        (
            88.83030750,
            2.60529157,
            4.28692327,
            0.51950186,
            0.0,
            7.78990812,
            1.06405744,
            -0.00808029,
            0.05,
        ),
        "tests/data/CsPbI3_soc/init_PbParams.par",
    ),
    "I": (
        (
            113.75644925,
            2.14135468,
            2.84227140,
            0.56706414,
            0.0,
            3.03441874,
            0.04515637,
            0.00220169,
            0.05,
        ),
        "tests/data/CsPbI3_soc/init_IParams.par",
    ),
}
"""species → (a0…a9, the shipped file they come from)."""


def _direct(symbol: str) -> tuple[np.ndarray, str] | None:
    entry = STARTING_PARAMS.get(symbol)
    if entry is not None:
        return np.array(entry[0], dtype=np.float64), f"shipped with dpp: {entry[1]}"
    fitted = tabulated_params(symbol)
    if fitted is None:
        return None
    params = np.zeros(N_SLOTS)
    params[: len(fitted)] = fitted
    return params, f"Wang-Zunger fit to the form factors of {SOURCE}"


def covalent_radius(symbol: str) -> float:
    """Covalent radius in Bohr (ASE's table, Cordero et al. 2008)."""
    from ase.data import atomic_numbers, covalent_radii

    return float(covalent_radii[atomic_numbers[symbol]]) / BOHR_ANGSTROM


def _has_local(symbol: str) -> bool:
    """Whether the starting curve of `symbol` is not zero (the shipped Cs has a0 = 0)."""
    entry = _direct(symbol)
    return entry is not None and entry[0][0] != 0.0


def scaled_analogue(symbol: str) -> tuple[np.ndarray, str] | None:
    """a0..a3 of the nearest-sized element with starting values and the same s+p valence
    count, scaled to `symbol`'s covalent radius (module docstring); None without one."""
    valence = sp_electrons(symbol)
    if valence is None:
        return None
    candidates = [
        other
        for other in (*STARTING_PARAMS, *tabulated_elements())
        if other != symbol and sp_electrons(other) == valence and _has_local(other)
    ]
    if not candidates:
        return None
    radius = covalent_radius(symbol)
    analogue = min(candidates, key=lambda other: abs(covalent_radius(other) - radius))
    source = _direct(analogue)
    if source is None:
        return None
    scale = radius / covalent_radius(analogue)
    a0, a1, a2, a3 = source[0][:4]
    params = np.zeros(N_SLOTS)
    params[:4] = (scale**3 * a0, a1 / scale**2, a2, a3 * scale**2)
    return params, (
        f"the local potential of {analogue} ({source[1]}) scaled by the covalent radii "
        f"(s = {scale:.4f})"
    )


def starting_params(symbol: str) -> tuple[np.ndarray, str] | None:
    """a0..a8 of `symbol` and where they come from: shipped, else the table, else a scaled
    analogue; None for an element without any (open d or f shell)."""
    return _direct(symbol) or scaled_analogue(symbol)

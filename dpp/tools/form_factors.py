"""Published screened-pseudopotential form factors as Wang–Zunger starting parameters.

Table: M. L. Cohen and T. K. Bergstresser, Phys. Rev. 141, 789 (1966), the local empirical
pseudopotentials of 14 diamond and zinc-blende semiconductors: symmetric V_S and antisymmetric
V_A form factors in Rydberg at |G|² = 3, 8, 11 (V_S) and 3, 4, 11 (V_A) in units of (2π/a)²,
with the lattice constants a (Å) of that paper. They are per atomic volume Ω_a = a³/8; the
atom of a compound AB sees v_A = V_S + V_A and v_B = V_S − V_A, with the anion (B) the more
attractive; V_S(4) and V_A(8) multiply vanishing structure factors and are unknown.

dpp's form factors are per atom in Hartree·Bohr³ and divided by the cell volume (physics.md
§5.2), so v_dpp(q) = ½ V(Ry) · Ω_a(Bohr³). Check: GaAs gives v_Ga = −12.2 and
v_As = −22.8 Hartree·Bohr³ at |G|² = 3, the shipped InGaAsP starting curves −10.9 and −23.6.

Each element's points (from every compound of the table that holds it, at that compound's
q = |G| in 1/Bohr) are completed by
- q = 0: the Thomas–Fermi limit of a screened ion, v(0) = −π² Z / k_F (= −(2/3) E_F Z / n),
  with Z the element's s+p valence electrons and k_F that of the compound's valence density
  (weight 0.1: v(0) only shifts the bands of the tabulated crystal);
- zeros at |G|² = 16, 19, 24 (2π/a)², where the table's potentials end (weight 0.2);
and fitted by the Wang–Zunger form v(q) = a0 (q² − a1) / (a2 exp(a3 q²) − 1) (physics.md
§5.3) with a1 > 0, a2 > 1, a3 > 0, so the curve has no pole (the fits tend to a large a2,
i.e. v ≈ (a0/a2)(q² − a1) exp(−a3 q²)). The weights were chosen on Si: its bands from the
fitted curve (dpp, maxKE 7.5 Hartree) are 0.24 eV RMS from the table's own (|G|² ≤ 21
basis) at Γ, X, L, with the indirect gap at X 0.92 eV (table 0.95 eV).
"""

from __future__ import annotations

import math

import numpy as np

from dpp.tools.band_selection import sp_electrons

BOHR_ANGSTROM = 0.529177210903
"""Bohr radius in Å (CODATA 2018)."""

RYDBERG_HARTREE = 0.5

SOURCE = "Cohen & Bergstresser, Phys. Rev. 141, 789 (1966)"

COHEN_BERGSTRESSER: dict[str, tuple[str, str, float, tuple[float, ...]]] = {
    # crystal: (A, B, a in Å, (V_S3, V_S8, V_S11, V_A3, V_A4, V_A11) in Rydberg)
    "Si": ("Si", "Si", 5.43, (-0.21, 0.04, 0.08, 0.00, 0.00, 0.00)),
    "Ge": ("Ge", "Ge", 5.66, (-0.23, 0.01, 0.06, 0.00, 0.00, 0.00)),
    "Sn": ("Sn", "Sn", 6.49, (-0.20, 0.00, 0.04, 0.00, 0.00, 0.00)),
    "GaP": ("Ga", "P", 5.44, (-0.22, 0.03, 0.07, 0.12, 0.07, 0.02)),
    "GaAs": ("Ga", "As", 5.64, (-0.23, 0.01, 0.06, 0.07, 0.05, 0.01)),
    "AlSb": ("Al", "Sb", 6.13, (-0.21, 0.02, 0.06, 0.06, 0.04, 0.02)),
    "InP": ("In", "P", 5.86, (-0.23, 0.01, 0.06, 0.07, 0.05, 0.01)),
    "GaSb": ("Ga", "Sb", 6.12, (-0.22, 0.00, 0.05, 0.06, 0.05, 0.01)),
    "InAs": ("In", "As", 6.04, (-0.22, 0.00, 0.05, 0.08, 0.05, 0.03)),
    "InSb": ("In", "Sb", 6.48, (-0.20, 0.00, 0.04, 0.06, 0.05, 0.01)),
    "ZnS": ("Zn", "S", 5.41, (-0.22, 0.03, 0.07, 0.24, 0.14, 0.04)),
    "ZnSe": ("Zn", "Se", 5.65, (-0.23, 0.01, 0.06, 0.18, 0.12, 0.03)),
    "ZnTe": ("Zn", "Te", 6.07, (-0.22, 0.00, 0.05, 0.13, 0.10, 0.01)),
    "CdTe": ("Cd", "Te", 6.41, (-0.20, 0.00, 0.04, 0.15, 0.09, 0.04)),
}
"""The table of Cohen & Bergstresser (1966), Table II: crystal → (cation, anion, a, form
factors). Elemental crystals have V_A = 0."""

TAIL_SHELLS = (16.0, 19.0, 24.0)
"""|G|² in (2π/a)² beyond the table where the fit is pulled towards 0."""
TAIL_WEIGHT = 0.2
ZERO_WEIGHT = 0.1


def tabulated_elements() -> tuple[str, ...]:
    """Elements with form factors in the table, sorted."""
    return tuple(sorted({s for a, b, _, _ in COHEN_BERGSTRESSER.values() for s in (a, b)}))


def _points(symbol: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """q (1/Bohr), v (Hartree·Bohr³) and fit weights of `symbol` from the table."""
    q, v, w = [], [], []
    z = sp_electrons(symbol)
    for cation, anion, lattice, factors in COHEN_BERGSTRESSER.values():
        if symbol not in (cation, anion):
            continue
        sign = 1.0 if symbol == cation else -1.0
        s3, s8, s11, a3, _, a11 = factors
        a = lattice / BOHR_ANGSTROM
        volume = a**3 / 8.0
        unit = 2.0 * math.pi / a
        scale = RYDBERG_HARTREE * volume
        valence = (sp_electrons(cation) or 0) + (sp_electrons(anion) or 0)
        k_fermi = (3.0 * math.pi**2 * valence / (2.0 * volume)) ** (1.0 / 3.0)
        for shell, value in ((3.0, s3 + sign * a3), (8.0, s8), (11.0, s11 + sign * a11)):
            q.append(unit * math.sqrt(shell))
            v.append(scale * value)
            w.append(1.0)
        q.append(0.0)
        v.append(-(math.pi**2) * (z or 0) / k_fermi)
        w.append(ZERO_WEIGHT)
        for shell in TAIL_SHELLS:
            q.append(unit * math.sqrt(shell))
            v.append(0.0)
            w.append(TAIL_WEIGHT)
    return np.array(q), np.array(v), np.array(w)


def wang_zunger_values(q: np.ndarray, params: np.ndarray) -> np.ndarray:
    """v(q) = a0 (q² − a1) / (a2 exp(a3 q²) − 1) in Hartree·Bohr³, q in 1/Bohr."""
    a0, a1, a2, a3 = params[:4]
    return a0 * (q**2 - a1) / (a2 * np.exp(a3 * q**2) - 1.0)


def fit_wang_zunger(q: np.ndarray, v: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """a0..a3 of the weighted least-squares Wang–Zunger fit to v(q) (a1 > 0, a2 > 1, a3 > 0),
    started from a root a1 at the first sign change of v."""
    from scipy.optimize import least_squares

    order = np.argsort(q)
    qs, vs = q[order], v[order]
    change = int(np.argmax(np.diff(np.sign(vs)) > 0))
    root = 0.5 * (qs[change] ** 2 + qs[change + 1] ** 2)
    v0 = float(np.mean(v[q == 0.0])) if np.any(q == 0.0) else float(vs[0])
    start = np.array([-v0 / root, root, 2.0, 0.5])

    def residual(params: np.ndarray) -> np.ndarray:
        return weights * (wang_zunger_values(q, params) - v)

    result = least_squares(
        residual,
        start,
        bounds=([1e-6, 1e-6, 1.0 + 1e-6, 1e-6], [np.inf, np.inf, np.inf, np.inf]),
        x_scale=np.abs(start),
    )
    return result.x


def tabulated_params(symbol: str) -> np.ndarray | None:
    """a0..a3 of `symbol` fitted to the table (module docstring); None when not tabulated."""
    if symbol not in tabulated_elements():
        return None
    return fit_wang_zunger(*_points(symbol))

"""The typed settings of `dpp-states` (conf/states.yaml); lengths in nm or Bohr as named."""

from __future__ import annotations

from dataclasses import dataclass

from dpp.errors import SettingError

STRUCTURE_KINDS = ("nanocrystal", "supercell", "file")


@dataclass(frozen=True)
class StructureSettings:
    """kind: nanocrystal (one box per diameter of `diameters_nm`, a size series when
    several), supercell (`supercell` copies of the bundle system's cell) or file (`file`,
    any ASE-readable structure). centre: fractional coordinates of the bulk cell at the
    nanocrystal's centre. margin_nm: vacuum between the outermost atom and the box faces.
    system: the bundle system whose crystal is the bulk."""

    kind: str = "nanocrystal"
    diameters_nm: tuple[float, ...] = (2.0,)
    centre: tuple[float, float, float] = (0.0, 0.0, 0.0)
    margin_nm: float = 0.6
    supercell: tuple[int, int, int] = (2, 2, 2)
    file: str | None = None
    system: int = 0

    def __post_init__(self) -> None:
        if self.kind not in STRUCTURE_KINDS:
            raise SettingError(
                "kind", "unknown structure", expected=" or ".join(STRUCTURE_KINDS), found=self.kind
            )
        object.__setattr__(self, "diameters_nm", tuple(float(d) for d in self.diameters_nm))
        if self.kind == "nanocrystal" and not (
            self.diameters_nm and all(d > 0 for d in self.diameters_nm)
        ):
            raise SettingError(
                "diameters_nm", "no size", expected="diameters > 0", found=list(self.diameters_nm)
            )
        if self.kind == "file" and not self.file:
            raise SettingError("file", "no structure file", expected="a path", found=self.file)
        if self.margin_nm < 0:
            raise SettingError(
                "margin_nm", "negative margin", expected=">= 0", found=self.margin_nm
            )


@dataclass(frozen=True)
class LigandSettings:
    """A ligand pseudo-atom on each dangling bond of one host species: V(r) =
    amplitude·exp(−r²/(2 width²)) (Hartree, Bohr), at bond_fraction of the bond length."""

    amplitude: float
    width: float = 1.0
    bond_fraction: float = 0.5

    def __post_init__(self) -> None:
        if not self.width > 0:
            raise SettingError("width", "non-positive width", expected="> 0", found=self.width)
        if not 0 < self.bond_fraction <= 1:
            raise SettingError(
                "bond_fraction", "outside the bond", expected="0 < f <= 1", found=self.bond_fraction
            )


@dataclass(frozen=True)
class SolverSettings:
    """max_ke: cutoff (Hartree) of the boxes and of the bulk band edges (None: the fit's
    maxKE). valence_bands: valence bands of the bulk primitive cell (spatial; spinor with
    spin–orbit), for its band edges. n_valence, n_conduction: states wanted below and above
    the gap. tol: residual ‖Hψ − εψ‖ (Hartree). offset: the folding energies lie this
    fraction of the gap inside it from the VBM and CBM (of the bulk; after a coarser level,
    of the box as predicted from it). buffer: extra vectors per block. device: cpu or cuda.
    coarse_ke: cutoffs (Hartree, ascending) of the cutoff continuation, each box solved at
    them first, each solve starting the next (dpp.states.continuation); those at or above
    the box cutoff are skipped, () is off."""

    max_ke: float | None = None
    coarse_ke: tuple[float, ...] = (2.5, 5.0)
    valence_bands: int = 4
    n_valence: int = 4
    n_conduction: int = 4
    tol: float = 1e-4
    max_iter: int = 500
    buffer: int = 8
    offset: float = 0.1
    device: str = "cpu"

    def __post_init__(self) -> None:
        object.__setattr__(self, "coarse_ke", _cutoffs(self.coarse_ke))
        for name in ("valence_bands", "n_valence", "n_conduction", "max_iter"):
            if getattr(self, name) < 1:
                raise SettingError(name, "too small", expected=">= 1", found=getattr(self, name))
        if not self.tol > 0:
            raise SettingError("tol", "non-positive tolerance", expected="> 0", found=self.tol)
        if not 0 <= self.offset < 0.5:
            raise SettingError(
                "offset", "outside the gap", expected="0 <= f < 0.5", found=self.offset
            )
        if self.max_ke is not None and not self.max_ke > 0:
            raise SettingError("max_ke", "non-positive cutoff", expected="> 0", found=self.max_ke)


def _cutoffs(values: object) -> tuple[float, ...]:
    """`coarse_ke` as a tuple of ascending positive cutoffs (Hartree)."""
    expected = "a list of ascending cutoffs > 0 (Hartree), [] for none"
    try:
        if isinstance(values, str):
            raise TypeError
        cutoffs = tuple(float(e) for e in values)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise SettingError(
            "coarse_ke", "not a list of cutoffs", expected=expected, found=values
        ) from None
    if not all(e > 0 for e in cutoffs) or any(
        b <= a for a, b in zip(cutoffs, cutoffs[1:], strict=False)
    ):
        raise SettingError(
            "coarse_ke", "bad continuation cutoffs", expected=expected, found=list(cutoffs)
        )
    return cutoffs

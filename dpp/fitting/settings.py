"""Settings of the loss (physics.md §7, §11): what is fitted and how bands are compared."""

from __future__ import annotations

import math
from dataclasses import dataclass

from dpp.errors import SettingError
from dpp.fitting.windows import BandWindow

REORDER_MODES = ("none", "smooth", "eigvec")
RELATIVE_MODES = ("first_kpoint", "same_kpoint")
PENALTY_REFERENCES = ("prior", "zero")
ENERGY_ZERO_MODES = ("absolute", "per_system", "common")


@dataclass(frozen=True)
class LossSettings:
    """The loss of a run.

    relE_bIdx: measure energies from this band (input_X.par's own value wins), or None.
    relE_reference: the reference band at the `first_kpoint` (original) or `same_kpoint`.
    legacy_relE_detached: the reference as a constant in the gradient (the original).
    reorder: band reordering before the loss: none, smooth (§11.1) or eigvec (§11.2).
    legacy_reorder: smooth_reorder's per-k orientation as the original.
    penalize_*: the decay penalty (q0 in 1/Bohr, λ) and the magnitude penalty (T in
        Hartree·Bohr³, μ) on the network form factors (§7.4); penalty_reference prior|zero.
    defpot_weight, coupling_weight: weights of the deformation-potential and coupling terms.
    window_low, window_high, window_edge, window_smoothness, exclude_bands: the band window
        (eV relative to the reference VBM, CBM or absolute; smooth roll-off width in eV) and
        the bands never fitted (dpp.fitting.windows); input_X.par may set its own.
    energy_zero: `absolute` compares energies as given (the reference's zero is meaningful);
        `per_system` removes each system's optimal rigid offset between computed and
        reference bands (the zero of a periodic DFT run is arbitrary); `common` removes one
        offset shared by every system (references on one scale: their band alignments are
        fitted, the overall zero is free).
    smoothness: strength λ of the curvature regulariser on the network's v(q)
        (dpp.fitting.smoothness; 0 = off), on v itself (`zero`) or on its departure from
        the starting curve (`prior`, as penalty_reference).
    departure: strength μ of the penalty on the size of v − reference curve (the same
        reference; 0 = off).
    s_channel_bound: strength of the penalty on an attractive s-channel, a9 < 0
        (dpp.fitting.bounds; 0 = off).
    """

    relE_bIdx: int | None = None  # noqa: N815 - the NN_config key users know
    relE_reference: str = "first_kpoint"
    legacy_relE_detached: bool = False
    reorder: str = "none"
    legacy_reorder: bool = False
    penalize_starting: float | None = None
    penalize_lambda: float | None = None
    penalize_mag_threshold: float | None = None
    penalize_mag_lambda: float | None = None
    penalty_reference: str = "prior"
    defpot_weight: float = 1.0
    coupling_weight: float = 1.0
    window_low: float | None = None
    window_high: float | None = None
    window_edge: str = "vbm"
    window_smoothness: float = 0.1
    exclude_bands: tuple[int, ...] = ()
    energy_zero: str = "absolute"
    smoothness: float = 0.0
    smoothness_reference: str = "zero"
    departure: float = 0.0
    s_channel_bound: float = 0.0

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("reorder", self.reorder, REORDER_MODES),
            ("relE_reference", self.relE_reference, RELATIVE_MODES),
            ("penalty_reference", self.penalty_reference, PENALTY_REFERENCES),
            ("energy_zero", self.energy_zero, ENERGY_ZERO_MODES),
            ("smoothness_reference", self.smoothness_reference, PENALTY_REFERENCES),
        ):
            if value not in allowed:
                raise SettingError(
                    name, "unknown value", expected=" or ".join(allowed), found=value
                )
        if self.relE_bIdx is not None and self.relE_bIdx < 0:
            raise SettingError(
                "relE_bIdx", "negative band index", expected=">= 0", found=self.relE_bIdx
            )
        if (self.penalize_starting is None) != (self.penalize_lambda is None):
            given = "penalize_starting" if self.penalize_starting is not None else "penalize_lambda"
            other = "penalize_lambda" if given == "penalize_starting" else "penalize_starting"
            raise SettingError(
                given, f"needs {other} too", expected="both or neither", found=f"only {given}"
            )
        self.window  # noqa: B018 - validates the window settings
        for name in (
            "defpot_weight",
            "coupling_weight",
            "smoothness",
            "departure",
            "s_channel_bound",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise SettingError(
                    name, "not a weight", expected="a finite number >= 0", found=value
                )

    @property
    def window(self) -> BandWindow:
        """The band window of every system without its own in input_X.par."""
        return BandWindow(
            self.window_low,
            self.window_high,
            self.window_edge,
            self.window_smoothness,
            tuple(self.exclude_bands),
        )

    @property
    def decay_penalty(self) -> bool:
        return self.penalize_starting is not None and self.penalize_lambda is not None

    @property
    def magnitude_penalty(self) -> bool:
        return (
            self.penalize_mag_lambda is not None
            and self.penalize_mag_lambda > 0
            and self.penalize_mag_threshold is not None
        )

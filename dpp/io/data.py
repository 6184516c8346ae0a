"""The `data` settings of a run: which bundle, how it is read and how its k-points are
served."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dpp.errors import InputError, SettingError
from dpp.io.bundle import CONFIG_NAME, first_kpoints, load_bundle
from dpp.io.records import Bundle

FIFTH_PARAM_SLOTS = ("strain", "long_range")


@dataclass(frozen=True)
class DataSettings:
    """The input bundle and how its k-points are served.

    bundle: the bundle folder. n_system: systems to read (None: every system_X.par).
    separate_kpt_grad: serve k-points in batches of kpt_batch_size (per process) whose
    gradients accumulate (the step is the full-batch step either way); else one batch.
    legacy_fifth_param: slot of the 5th number of 5-number parameter files.
    allow_left_handed: accept a cell with a negative triple product (uses |Ω|).
    max_kpoints: fit only the first max_kpoints k-points of every system (None: all; quick
    checks such as debug=fast_dev_run).
    """

    bundle: str
    n_system: int | None = None
    separate_kpt_grad: bool = True
    kpt_batch_size: int = 8
    legacy_fifth_param: str = "strain"
    allow_left_handed: bool = False
    max_kpoints: int | None = None

    def __post_init__(self) -> None:
        if self.max_kpoints is not None and self.max_kpoints < 1:
            raise SettingError(
                "max_kpoints", "no k-points to fit", expected=">= 1 or null", found=self.max_kpoints
            )
        if self.kpt_batch_size < 1:
            raise SettingError(
                "kpt_batch_size",
                "empty k-point batches",
                expected=">= 1",
                found=self.kpt_batch_size,
            )
        if self.n_system is not None and self.n_system < 1:
            raise SettingError("n_system", "no systems", expected=">= 1", found=self.n_system)
        if self.legacy_fifth_param not in FIFTH_PARAM_SLOTS:
            raise SettingError(
                "legacy_fifth_param",
                "unknown slot",
                expected=" or ".join(FIFTH_PARAM_SLOTS),
                found=self.legacy_fifth_param,
            )

    def load(self, **options: Any) -> Bundle:
        """The bundle of `bundle` read with these options (and `options`, passed to
        `load_bundle`), cut to its first `max_kpoints` k-points when set."""
        bundle = load_bundle(
            self.bundle,
            n_systems=self.n_system,
            fifth_param=self.legacy_fifth_param,
            allow_left_handed=self.allow_left_handed,
            **options,
        )
        return bundle if self.max_kpoints is None else first_kpoints(bundle, self.max_kpoints)


def bundle_folder(value: Any) -> Path:
    """The bundle folder named by `data.bundle` (absolute), after checking it holds an
    NN_config.par this user can read."""
    if value is None:
        raise InputError(
            "configuration",
            "no input bundle",
            key="data.bundle",
            expected="a bundle folder",
            found="unset (null)",
        )
    folder = Path(str(value)).expanduser().resolve()
    try:
        found = (folder / CONFIG_NAME).is_file()
    except OSError as error:
        raise InputError(
            folder,
            "cannot read the bundle folder",
            key="data.bundle",
            expected="a folder this user can read",
            found=error.strerror,
        ) from None
    if not found:
        raise InputError(
            folder,
            "not a bundle folder",
            key="data.bundle",
            expected=f"a folder with {CONFIG_NAME}",
            found=f"no {CONFIG_NAME}" if folder.is_dir() else "no such folder",
        )
    return folder

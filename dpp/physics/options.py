"""The physics switches of a Hamiltonian (physics.md §3, §5), independent of any input format."""

from __future__ import annotations

from dataclasses import dataclass

from dpp.errors import SettingError
from dpp.physics.basis import BASIS_SEARCH_MODES
from dpp.physics.eigensolver import SOLVERS


@dataclass(frozen=True)
class PhysicsOptions:
    """How H(k) is built and diagonalised.

    spin_orbit: spinor Hamiltonian with the spin–orbit and both nonlocal channels.
    basis_search: `complete` sphere |G|²/2 < maxKE, or the original's `legacy` box.
    long_range_with_nn: add the a4 long-range tail to a network form factor too.
    nonlocal_without_soc: nonlocal channels on the N×N matrix when spin_orbit is off.
    eigensolver: `auto`, `lapack` (CPU subset driver) or `torch` (batched eigh).
    k_chunk: k-points assembled at once (0 = automatic within a 2 GB budget).
    cache_projectors: keep the spin–orbit/nonlocal k-kernels between evaluations.
    legacy_batchnorm: call a batch-norm network once per atom and k-point, as the original
        (its running statistics then depend on the number of atoms and k-points).
    """

    spin_orbit: bool = False
    basis_search: str = "complete"
    long_range_with_nn: bool = True
    nonlocal_without_soc: bool = False
    eigensolver: str = "auto"
    k_chunk: int = 0
    cache_projectors: bool = True
    legacy_batchnorm: bool = False

    def __post_init__(self) -> None:
        if self.basis_search not in BASIS_SEARCH_MODES:
            raise SettingError(
                "basis_search",
                "unknown basis search",
                expected=" or ".join(BASIS_SEARCH_MODES),
                found=self.basis_search,
            )
        if self.eigensolver not in SOLVERS:
            raise SettingError(
                "eigensolver",
                "unknown eigensolver",
                expected=", ".join(SOLVERS),
                found=self.eigensolver,
            )
        if self.k_chunk < 0:
            raise SettingError(
                "k_chunk", "negative chunk size", expected=">= 0", found=self.k_chunk
            )

    @property
    def nonlocal_active(self) -> bool:
        """Whether the nonlocal channels enter H(k)."""
        return self.spin_orbit or self.nonlocal_without_soc

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
    nonlocal_s: the nonlocal s-channel (l = 0, strength a9), with or without spin–orbit.
    eigensolver: `lapack` (CPU subset driver), `torch` (batched eigh), `davidson` (block
        Davidson warm-started from the previous evaluation's eigenvectors of each k-point,
        batched on GPU; cold starts and fallbacks are dense) or `auto` (davidson on CPU
        from `davidson_min_dim` on, lapack below it; batched eigh on GPU).
    k_chunk: k-points assembled at once (0 = automatic within a 2 GB budget).
    cache_projectors: keep the spin–orbit/nonlocal projector factors between evaluations.
    legacy_batchnorm: update a batch-norm network's running statistics once per atom and
        k-point in every training step, as the original's one network call per atom and
        k-point (default: once per system and step; either way independent of the k-point
        batching and of DDP, dpp.models.batchnorm).
    davidson_tol: convergence of each wanted eigenpair, ‖H x − θ x‖₂ ≤ tol (Hartree). The
        eigenvalue error is about tol²/gap, the gradient error grows about linearly with tol:
        the default keeps eigenvalues within 1e-10 eV and loss gradients within about 1e-7
        (relative) of the dense solver.
    davidson_buffer: vectors carried beyond the wanted ones (0 = max(8, ⌈n_eig/2⌉)); the
        block is made even with spin–orbit so that no Kramers pair is split at its edge.
    davidson_max_iter: iterations before a k-point falls back to a dense solve.
    davidson_refresh: a dense solve of each k-point after this many warm-started ones
        in a row (0 = never).
    davidson_min_dim: smallest matrix dimension for which `auto` uses davidson on CPU.
    """

    spin_orbit: bool = False
    basis_search: str = "complete"
    long_range_with_nn: bool = True
    nonlocal_without_soc: bool = False
    nonlocal_s: bool = False
    eigensolver: str = "auto"
    k_chunk: int = 0
    cache_projectors: bool = True
    legacy_batchnorm: bool = False
    davidson_tol: float = 1e-7
    davidson_buffer: int = 0
    davidson_max_iter: int = 50
    davidson_refresh: int = 100
    davidson_min_dim: int = 400

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
        if not self.davidson_tol > 0:
            raise SettingError(
                "davidson_tol", "non-positive tolerance", expected="> 0", found=self.davidson_tol
            )
        for name in ("davidson_buffer", "davidson_refresh", "davidson_min_dim"):
            if getattr(self, name) < 0:
                raise SettingError(
                    name, "negative value", expected=">= 0", found=getattr(self, name)
                )
        if self.davidson_max_iter < 1:
            raise SettingError(
                "davidson_max_iter", "no iterations", expected=">= 1", found=self.davidson_max_iter
            )

    @property
    def nonlocal_active(self) -> bool:
        """Whether the nonlocal channels enter H(k)."""
        return self.spin_orbit or self.nonlocal_without_soc

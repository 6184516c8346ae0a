"""Nonlocal s-channel (l = 0) a9: a Gaussian projector of width NL0_WIDTH (physics.md §5.8).

V_NL0 = Σ_s a9(s) S_s ∘ 4π Σ_q c_q j0(|K_m| r_q) j0(|K_n| r_q), identical in both spin blocks:
the operator of the l = 1 channels with the l = 0 radial kernel.
"""

from __future__ import annotations

from dpp.physics.options import PhysicsOptions
from dpp.physics.projectors import S_CHANNEL
from dpp.physics.terms.nonlocal_l1 import NonlocalTerm
from dpp.slots import Slot


class SChannelTerm(NonlocalTerm):
    """Linear in A9 = Σ_s a9(s) S_s; the kernel formed per k-point."""

    name = "nonlocal_s"
    slots = (Slot.NONLOCAL_0,)
    channels = {Slot.NONLOCAL_0: S_CHANNEL}

    @classmethod
    def enabled(cls, options: PhysicsOptions) -> bool:
        return options.nonlocal_s

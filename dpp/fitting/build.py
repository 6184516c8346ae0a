"""The objectives of the workflows, assembled from the loss terms."""

from __future__ import annotations

import torch

from dpp.fitting.bands import BandTerm
from dpp.fitting.bounds import SChannelBound
from dpp.fitting.costs import NormalisedBandTerm, SpinOrbitLimitTerm
from dpp.fitting.objective import Objective
from dpp.fitting.observables import CouplingTerm, DefPotTerm
from dpp.fitting.penalties import PenaltyTerm, prior_curve
from dpp.fitting.settings import LossSettings
from dpp.fitting.smoothness import SmoothnessTerm, smoothness_grid
from dpp.fitting.terms import GlobalTerm
from dpp.io.records import Bundle
from dpp.physics.basis import largest_transfer


def _observable_terms(
    bundle: Bundle, settings: LossSettings, coupling_reduction: str = "sum"
) -> list[GlobalTerm]:
    terms: list[GlobalTerm] = [
        DefPotTerm(bundle.systems, weight=settings.defpot_weight),
        CouplingTerm(bundle.systems, settings.coupling_weight, coupling_reduction),
    ]
    return [term for term in terms if term.active]


def training_objective(
    bundle: Bundle, settings: LossSettings, device: torch.device | str = "cpu"
) -> Objective:
    """The loss of gradient training and of the network Monte Carlo engine (physics.md §7):
    bands (with relative energies and reordering), the v(q) penalties, deformation
    potentials and couplings of the systems that fit them, the smoothness of v(q) over the
    |G − G'| the bases couple."""
    n_kpoints = [s.n_kpoints for s in bundle.systems]
    penalties = PenaltyTerm(settings, bundle.pp_params, bundle.qspace_prior, n_kpoints)
    q_max = max(largest_transfer(system.settings.max_ke) for system in bundle.systems)
    prior = None
    if settings.smoothness_reference == "prior":
        prior = prior_curve(smoothness_grid(q_max), bundle.pp_params, bundle.qspace_prior)
    smoothness = SmoothnessTerm(
        settings.smoothness, q_max, sum(n_kpoints), prior, departure=settings.departure
    )
    bound = SChannelBound(settings.s_channel_bound, sum(n_kpoints))
    terms = [term for term in (penalties, smoothness, bound) if term.active]
    terms += _observable_terms(bundle, settings)
    return Objective([BandTerm(bundle.systems, settings, device)], terms)


def analytic_objective(
    bundle: Bundle,
    settings: LossSettings,
    *,
    opt_gaps: bool = False,
    device: torch.device | str = "cpu",
) -> Objective:
    """The normalised cost of the analytic Monte Carlo engine (physics.md §10.2) with the
    a5 limit, plus the observables of the systems that fit them."""
    band = NormalisedBandTerm(bundle.systems, settings, device, opt_gaps=opt_gaps)
    observables = _observable_terms(bundle, settings, coupling_reduction="mean")
    return Objective([band], [SpinOrbitLimitTerm(), *observables])

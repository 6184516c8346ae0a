"""The fitting layer shared by gradient training and Monte Carlo: the loss as a list of named,
weighted terms, parameter moves, the pre-fit and pre-adjust stages."""

from dpp.fitting.bands import BandTerm, SystemTargets
from dpp.fitting.costs import NormalisedBandTerm, SpinOrbitLimitTerm
from dpp.fitting.objective import Evaluation, Objective, accumulate, trainable
from dpp.fitting.observables import CouplingTerm, DefPotTerm
from dpp.fitting.penalties import PenaltyTerm
from dpp.fitting.settings import LossSettings
from dpp.fitting.terms import GlobalTerm, KPointTerm

__all__ = [
    "BandTerm",
    "CouplingTerm",
    "DefPotTerm",
    "Evaluation",
    "GlobalTerm",
    "KPointTerm",
    "LossSettings",
    "NormalisedBandTerm",
    "Objective",
    "PenaltyTerm",
    "SpinOrbitLimitTerm",
    "SystemTargets",
    "accumulate",
    "trainable",
]

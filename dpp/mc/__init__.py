"""Monte Carlo fitting (the chain only): network modes 1–7, the analytic two-temperature
engine and parallel tempering, with checkpoint/resume."""

from dpp.mc.runner import MonteCarloRunner
from dpp.mc.settings import MonteCarloSettings

__all__ = ["MonteCarloRunner", "MonteCarloSettings"]

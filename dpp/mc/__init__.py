"""Monte Carlo fitting: network modes 1–7, analytic two-temperature engine, parallel tempering."""

from dpp.mc.runner import MonteCarloRunner
from dpp.mc.settings import MonteCarloSettings
from dpp.mc.workflow import run_monte_carlo

__all__ = ["MonteCarloRunner", "MonteCarloSettings", "run_monte_carlo"]

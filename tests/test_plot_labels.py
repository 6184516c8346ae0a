"""Figures people read carry units and whole-number epochs."""

from __future__ import annotations

import numpy as np

from dpp.outputs import plots


def test_cost_figure_has_whole_epoch_ticks():
    fig = plots.cost_figure([(1, 3.0), (2, 2.0), (3, 1.5)], [(3, 1.4)], "training cost")
    (ax,) = fig.axes
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)
    plots.close(fig)


def test_potential_difference_panel_states_its_unit():
    q = np.linspace(0.0, 5.0, 11)
    values = np.stack([np.cos(q), np.sin(q)], axis=1)
    r = np.linspace(0.0, 5.0, 11)
    fig = plots.potentials_figure(q, values, 0.5 * values, ["Cd", "Se"], r, values, "final")
    assert "Hartree Bohr^3" in fig.axes[1].get_ylabel()
    plots.close(fig)

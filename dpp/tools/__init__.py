"""The Extended Toolkit: command-line tools around dpp bundles (each module has `main`).

dpp-convert-bands (convert_bands), dpp-primitive-cell (primitive_cell), dpp-kpath (kpath),
dpp-charge-density (charge_density), dpp-cluster-potentials (cluster_potentials),
dpp-plot-bands (plot_bands) and dpp-plot-terms (plot_terms).
"""

"""Physical constants and fixed model widths (Hartree atomic units unless stated)."""

AUTOEV = 27.2114
"""Hartree to eV, the truncated value the reference files were made with."""

LONG_RANGE_GAMMA = 0.2
"""Screening of the long-range tail -a4·erf(γr)/r, in 1/Bohr."""

LONG_RANGE_Q_MIN = 1e-4
"""Below this |q| (1/Bohr) the long-range tail is dropped."""

SOC_WIDTH = 0.7
"""Gaussian width (Bohr) of the spin-orbit radial function exp(-r²/w²)."""

NL1_WIDTH = 1.0
"""Gaussian width (Bohr) of the first nonlocal channel."""

NL0_WIDTH = 1.25
"""Gaussian width (Bohr) of the nonlocal s-channel (l = 0) projector: the width whose Si fit
transferred best to strained copies and another polytype (docs/physics.md §5.8)."""

NL2_CENTER = 1.5
"""Centre (Bohr) of the shifted-Gaussian second nonlocal channel exp(-(r-1.5)²)."""

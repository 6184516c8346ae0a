"""Where a network's first hidden layer changes slope (bundle-format §11.3 bodies).

A hidden unit of the first layer sees w·q + b, so its activation turns on at the transition
q* = −b/w (a ReLU knot; the centre of a CELU, tanh or sigmoid step). A one-input network can
only bend where such transitions lie, and the bands see v(q) only at the |G − G'| of their
bases, up to 2·sqrt(2·maxKE). Spreading the first layer's transitions evenly over that range
before the pre-fit gives the band fit bends where the bands need them.
"""

from __future__ import annotations

import torch
from torch import nn

from dpp.models.gates import GatedNet
from dpp.models.mlp import MLP


def first_layer(model: nn.Module) -> nn.Linear | None:
    """The q → hidden Linear of a catalogue network (None: no MLP body, or batch norm)."""
    body = model.neural_network if isinstance(model, GatedNet) else model
    if not isinstance(body, MLP) or body.batchnorm or len(body.linears) < 2:
        return None
    return body.linears[0]


def transitions(model: nn.Module) -> torch.Tensor:
    """q* = −b/w of each first-layer unit, in 1/Bohr (inf for a unit with w = 0)."""
    linear = first_layer(model)
    if linear is None:
        raise ValueError("the model has no first hidden layer of q")
    with torch.no_grad():
        return -linear.bias / linear.weight[:, 0]


def spread_transitions(model: nn.Module, q_max: float) -> bool:
    """Move the first layer's transitions to q_max·i/(n + 1), i = 1..n (1/Bohr), in place.

    Units alternate the side they are active on (w > 0: above q*, w < 0: below); every |w|
    becomes the layer's mean |w|, so the initialiser's scale is kept. Returns False, with the
    model unchanged, for a model without a first hidden layer of q or with batch norm (whose
    normalisation moves the transitions again).
    """
    linear = first_layer(model)
    if linear is None:
        return False
    if not q_max > 0:
        raise ValueError(f"q_max must be > 0 (1/Bohr), got {q_max}")
    n = linear.out_features
    with torch.no_grad():
        like = {"dtype": linear.weight.dtype, "device": linear.weight.device}
        knots = torch.linspace(0.0, q_max, n + 2, **like)[1:-1]
        sides = torch.ones(n, **like)
        sides[1::2] = -1.0
        slopes = sides * linear.weight.abs().mean()
        linear.weight.copy_(slopes[:, None])
        linear.bias.copy_(-slopes * knots)
    return True

"""Multilayer-perceptron body shared by every network in the PPmodel catalogue.

Input q: |ΔG| in 1/Bohr, shape (M, 1). Output: (M, n_species), v_s(q) in Hartree·Bohr³.
Layout and initialisers follow bundle-format.md §11.3.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

Initialiser = Callable[[torch.Tensor, "torch.Generator | None"], object]


def _rand_normal(weight: torch.Tensor, generator: torch.Generator | None) -> None:
    """N(0, 1/fan_in) (Net_celu_RandInit), drawn from the run's generator (physics.md §9)."""
    nn.init.normal_(weight, 0.0, 1.0 / math.sqrt(weight.shape[1]), generator=generator)


INITIALISERS: dict[str, Initialiser] = {
    "default": lambda w, g: None,
    "xavier_normal": lambda w, g: nn.init.xavier_normal_(w, generator=g),
    "xavier_uniform": lambda w, g: nn.init.xavier_uniform_(w, generator=g),
    "he_normal": lambda w, g: nn.init.kaiming_normal_(
        w, mode="fan_in", nonlinearity="relu", generator=g
    ),
    "he_uniform": lambda w, g: nn.init.kaiming_uniform_(w, nonlinearity="relu", generator=g),
    "rand": _rand_normal,
    "uniform01": lambda w, g: nn.init.uniform_(w, 0.0, 1.0, generator=g),
}
"""Weight initialisers by name; biases always keep PyTorch's default U(±1/sqrt(fan_in))."""

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "celu": lambda: nn.CELU(alpha=1.0),
}


@dataclass(frozen=True)
class BodySpec:
    """One row of the catalogue's network part.

    prefix: ``hidden`` or ``hidden_l`` (name of the Linear list in the state_dict).
    uses_dropout: whether the class applies dropout p after each hidden activation.
    """

    activation: str
    init: str
    prefix: str
    batchnorm: bool = False
    uses_dropout: bool = False


def _init_linear(linear: nn.Linear, init: str, generator: torch.Generator | None) -> None:
    """PyTorch's default draw (re-done on ``generator`` if given), then the weight scheme.

    Without a generator the draws come from the global torch RNG in the same order as the
    original code, so ``torch.manual_seed(s)`` reproduces the clone's initial weights.
    """
    with torch.no_grad():
        if generator is not None:
            nn.init.kaiming_uniform_(linear.weight, a=math.sqrt(5), generator=generator)
            bound = 1.0 / math.sqrt(linear.in_features)
            nn.init.uniform_(linear.bias, -bound, bound, generator=generator)
        INITIALISERS[init](linear.weight, generator)


class MLP(nn.Module):
    """Fully connected net ``layers[0] → … → layers[-1]``; the last Linear is linear.

    Each hidden step is ``dropout(activation(bn(linear(x))))`` (bn and dropout optional).
    With BN a BatchNorm1d is also created for the output layer (unused, but in the
    state_dict, as in the original).
    """

    def __init__(
        self,
        layers: Sequence[int],
        spec: BodySpec,
        *,
        dropout: float = 0.0,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        super().__init__()
        self.prefix = spec.prefix
        linears = nn.ModuleList()
        for fan_in, fan_out in zip(layers, layers[1:], strict=False):
            linear = nn.Linear(fan_in, fan_out, dtype=dtype)
            _init_linear(linear, spec.init, generator)
            linears.append(linear)
        setattr(self, spec.prefix, linears)
        if spec.batchnorm:
            self.hidden_bn = nn.ModuleList(
                nn.BatchNorm1d(n, eps=1e-5, momentum=0.1, dtype=dtype) for n in layers[1:]
            )
        self.batchnorm = spec.batchnorm
        self.activation = ACTIVATIONS[spec.activation]()
        self.drop = nn.Dropout(p=dropout if spec.uses_dropout else 0.0)

    @property
    def linears(self) -> nn.ModuleList:
        """The Linear maps, whatever their state_dict prefix."""
        return getattr(self, self.prefix)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(M, layers[0]) → (M, layers[-1])."""
        *hidden, last = self.linears
        for i, linear in enumerate(hidden):
            x = linear(x)
            if self.batchnorm:
                x = self.hidden_bn[i](x)
            x = self.drop(self.activation(x))
        return last(x)

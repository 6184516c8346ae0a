"""Shared pieces of the benchmark scripts: bundle trimming, the model options, the band loss.

Only `dpp.io.load_bundle`, `dpp.models`, `dpp.physics` and torch are used; physics and model
settings are command-line options (a bundle's NN_config.par is not read).
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import torch

from dpp.io.records import Bundle
from dpp.models import build_model, load_checkpoint
from dpp.physics.hamiltonian import PseudopotentialHamiltonian


def add_bundle_arguments(parser: argparse.ArgumentParser) -> None:
    """Physics switches, k-point/cutoff trimming and the model (defaults: the InGaAsP net)."""
    parser.add_argument("--spin-orbit", action="store_true")
    parser.add_argument("--basis-search", default="complete", choices=("complete", "legacy"))
    parser.add_argument("--kpoints", type=int, default=None, help="use the first K k-points")
    parser.add_argument("--max-ke", type=float, default=None, help="override maxKE (Hartree)")
    parser.add_argument("--model", default="Net_relu_xavier_decay2", help="PPmodel class")
    parser.add_argument("--hidden", type=int, nargs="+", default=[20, 20, 20])
    parser.add_argument("--gaussian-std", type=float, default=None)
    parser.add_argument("--decay-rate", type=float, default=1.5)
    parser.add_argument("--decay-center", type=float, default=6.0)
    parser.add_argument(
        "--checkpoint", default=None, help="model weights (default: the bundle's init_PPmodel.pth)"
    )


def trimmed(bundle: Bundle, n_kpoints: int | None, max_ke: float | None) -> Bundle:
    """The bundle with only the first `n_kpoints` k-points and optionally another cutoff."""
    keep = slice(None) if n_kpoints is None else slice(0, n_kpoints)
    systems = []
    for system in bundle.systems:
        settings = system.settings if max_ke is None else replace(system.settings, max_ke=max_ke)
        order = None if system.order_matrix is None else system.order_matrix[keep]
        systems.append(
            replace(
                system,
                settings=settings,
                kpoints=system.kpoints[keep],
                kweights=system.kweights[keep],
                ref_bands=system.ref_bands[keep],
                ref_path=None if system.ref_path is None else system.ref_path[keep],
                order_matrix=order,
            )
        )
    return replace(bundle, systems=systems)


def model_for(args: argparse.Namespace, bundle: Bundle) -> torch.nn.Module:
    """The network of the options, with the checkpoint's (or init_PPmodel.pth's) weights."""
    model = build_model(
        args.model,
        args.hidden,
        bundle.n_species,
        gaussian_std=args.gaussian_std,
        decay_rate=args.decay_rate,
        decay_center=args.decay_center,
        generator=torch.Generator().manual_seed(0),
    )
    checkpoint = args.checkpoint or bundle.init_model_path
    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
    return model


def band_loss(
    hamiltonian: PseudopotentialHamiltonian, bundle: Bundle, system: int, k: torch.Tensor
) -> torch.Tensor:
    """Σ_k w_k Σ_b u_b (E − E_ref)² (eV²) of `system` over the k-points `k`."""
    data = bundle.systems[system]
    reference = torch.as_tensor(data.ref_bands)[k]
    weights = torch.as_tensor(data.kweights)[k, None] * torch.as_tensor(data.band_weights)
    return (weights * (hamiltonian.bands(system, k) - reference) ** 2).sum()


def forward_backward(hamiltonian: PseudopotentialHamiltonian, bundle: Bundle) -> float:
    """Band loss over every k-point of every system, back-propagated chunk by chunk as in
    training (memory bounded by one chunk); returns the loss in eV²."""
    total = 0.0
    for index, system in enumerate(bundle.systems):
        for chunk in torch.split(torch.arange(system.n_kpoints), hamiltonian.k_chunk(index)):
            loss = band_loss(hamiltonian, bundle, index, chunk)
            loss.backward()
            total += float(loss.detach())
    return total

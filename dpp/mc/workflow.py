"""`workflow=monte_carlo`: build the Hamiltonian and the settings from the config, run a chain."""

from __future__ import annotations

import logging
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dpp.errors import InputError
from dpp.io.montecarlo import McOptions, read_beta_schedule, read_mc_options, read_param_steps
from dpp.io.records import Bundle
from dpp.mc.runner import MonteCarloRunner
from dpp.mc.settings import MonteCarloSettings
from dpp.models import build_model_from_config, load_checkpoint
from dpp.physics import PhysicsOptions, build_hamiltonian

log = logging.getLogger(__name__)

WORKFLOW_FILE = "conf/workflow/monte_carlo.yaml"
DEFAULT_PATIENCE = 10000  # analytic engine: stop after this many trials without a new best


def _get(node: Any, key: str, default: Any = None) -> Any:
    value = node.get(key, default) if hasattr(node, "get") else getattr(node, key, default)
    return default if value is None else value


def _path(bundle: Bundle, value: str | None) -> Path | None:
    if value is None:
        return None
    path = Path(value)
    return path if path.is_absolute() else bundle.path / path


def resolve_engine(requested: str, model_name: str) -> str:
    """auto → analytic for PPmodel = ZeroFunction, else nn."""
    if requested == "auto":
        return "analytic" if model_name == "ZeroFunction" else "nn"
    if requested not in ("nn", "analytic"):
        raise InputError(
            WORKFLOW_FILE,
            "unknown engine",
            key="engine",
            expected="auto, nn or analytic",
            found=repr(requested),
        )
    return requested


def read_options(path: Path | None) -> McOptions | None:
    """mcOpts*.par; the deformation-potential and coupling terms are not implemented here."""
    if path is None:
        return None
    options = read_mc_options(path)
    for key, on in (("fitDefPot", options.fit_def_pot), ("fitCoupling", options.fit_coupling)):
        if on:
            raise InputError(
                path,
                "not supported by dpp's Monte Carlo engine yet",
                key=key,
                expected="False",
                found="True",
            )
    return options


def replica_ladder(
    count: int, explicit: list[float] | None, options: McOptions | None, beta: float
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """β per replica (coldest first) and analytic step factors: the explicit list, else a
    geometric ladder from β0 to β1 of mcOpts (else from mc_beta to mc_beta/100)."""
    if count <= 1 and not explicit:
        return (), ()
    betas = list(explicit) if explicit else []
    hot, cold = (options.betas[1], options.betas[0]) if options else (beta / 100.0, beta)
    if not betas:
        betas = np.geomspace(cold, hot, count).tolist()
    if any(b <= 0 for b in betas):
        raise InputError(
            WORKFLOW_FILE,
            "bad replica betas",
            key="replica_betas",
            expected="values > 0",
            found=str(betas),
        )
    mods = (1.0, 1.0) if options is None else options.temp_step_size_mod
    fraction = np.linspace(0.0, 1.0, len(betas))
    step_mods = mods[0] * (mods[1] / mods[0]) ** fraction if mods[0] > 0 else fraction * 0 + 1
    return tuple(float(b) for b in betas), tuple(float(m) for m in step_mods)


def build_model_for(bundle: Bundle, seed: int) -> torch.nn.Module:
    """The bundle's PPmodel, loaded from init_PPmodel.pth when present (else seeded init)."""
    model = build_model_from_config(
        bundle.config, bundle.n_species, generator=torch.Generator().manual_seed(seed)
    )
    if bundle.init_model_path is not None:
        load_checkpoint(model, bundle.init_model_path)
    else:
        log.warning("no init_PPmodel.pth: the network Monte Carlo starts from a random model")
    return model.eval()


def settings_from_config(cfg: Any, bundle: Bundle, engine: str) -> MonteCarloSettings:
    """MonteCarloSettings from `cfg.workflow`, falling back to the mc_* keys of NN_config.par."""
    wf, c = cfg.workflow, bundle.config
    options = read_options(_path(bundle, _get(wf, "options_file")))
    schedule_file = _path(bundle, _get(wf, "beta_schedule", c.mc_beta_schedule))
    beta = float(_get(wf, "beta", c.mc_beta if c.mc_beta is not None else 1.0))
    iterations = _get(wf, "iterations", c.mc_iter)
    if iterations is None:
        iterations = options.total_iter if options else None
    if iterations is None:
        raise InputError(
            bundle.path / "NN_config.par",
            "number of trial moves unset",
            key="mc_iter",
            expected="workflow.iterations or mc_iter",
            found="nothing",
        )
    if schedule_file is not None and int(_get(wf, "replicas", 1)) > 1:
        raise InputError(
            WORKFLOW_FILE,
            "a beta schedule needs a single chain",
            key="replicas",
            expected="1 with beta_schedule",
            found=str(_get(wf, "replicas")),
        )
    replica_betas, step_mods = replica_ladder(
        int(_get(wf, "replicas", 1)), _get(wf, "replica_betas"), options, beta
    )
    patience = _get(wf, "patience", DEFAULT_PATIENCE if engine == "analytic" else 0)
    seed = int(_get(wf, "seed", _get(cfg, "seed", c.seed)))
    return MonteCarloSettings(
        engine=engine,
        iterations=int(iterations),
        percentage=float(_get(wf, "percentage", c.mc_percentage or 0.0)),
        beta=beta,
        perturb_mode=int(_get(wf, "perturb_mode", c.mc_perturb_mode)),
        legacy_modes=bool(_get(wf, "legacy_mc_modes", c.legacy_mc_modes)),
        schedule=None if schedule_file is None else read_beta_schedule(schedule_file),
        options=options,
        steps=read_param_steps(bundle.path, bundle.species, bundle.pp_params),
        replica_betas=replica_betas,
        replica_step_mods=step_mods,
        exchange_every=int(_get(wf, "exchange_every", 10)),
        workers=int(_get(wf, "workers", _get(cfg, "num_cores", 0))),
        checkpoint_every=int(_get(wf, "checkpoint_every", 10)),
        patience=int(patience),
        seed=seed,
        resume=bool(_get(wf, "resume", True)),
        tensorboard=bool(_get(wf, "tensorboard", True)),
        progress=bool(_get(wf, "progress", True)),
        extra={"bundle": str(bundle.path), "seed": seed, "engine": engine},
    )


def run_monte_carlo(cfg: Any, bundle: Bundle, run_dir: Path) -> float:
    """Run the Monte Carlo workflow of `cfg` on `bundle` into `run_dir`; returns the best cost."""
    model_cfg = _get(cfg, "model", {})
    model_name = _get(model_cfg, "name", bundle.config.PPmodel)
    engine = resolve_engine(str(_get(cfg.workflow, "engine", "auto")), model_name)
    settings = settings_from_config(cfg, bundle, engine)
    model = None if engine == "analytic" else build_model_for(bundle, settings.seed)
    names = {f.name for f in fields(PhysicsOptions)}
    switches = {k: v for k, v in dict(_get(cfg, "hamiltonian", {})).items() if k in names}
    options = PhysicsOptions(
        spin_orbit=bool(bundle.config.SObool), cache_projectors=bool(bundle.config.cacheSO)
    )
    hamiltonian = build_hamiltonian(bundle, model, options, **switches)
    log.info(
        "Monte Carlo: engine %s, %d trials, seed %d, %d replica(s)",
        engine,
        settings.iterations,
        settings.seed,
        settings.n_replicas,
    )
    return MonteCarloRunner(bundle, hamiltonian, settings, run_dir).run()

"""NN_config.par ↔ Hydra config mapping and the precedence rules of a run.

Precedence, lowest first: group defaults of conf/ < NN_config.par of `data.bundle` <
the selected experiment file < command-line overrides. Every NN_config.par key
(bundle-format §3) has one dotted Hydra path in `NN_TO_HYDRA`; `mc_bool = 1` selects
`workflow=monte_carlo`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from dpp.errors import InputError
from dpp.io.config import KEYS, NNConfig

log = logging.getLogger(__name__)

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "data" / "examples"
EMBEDDED_EXPERIMENT = "zb_CdSe"
"""Experiment applied when no `data.bundle` (and no experiment) is given."""

NN_TO_HYDRA: dict[str, str] = {
    # run / data
    "nSystem": "data.n_system",
    "separateKptGrad": "data.separate_kpt_grad",
    "legacy_fifth_param": "data.legacy_fifth_param",
    "seed": "seed",
    # model
    "PPmodel": "model.name",
    "hiddenLayers": "model.hidden_layers",
    "PPmodel_decay_rate": "model.decay_rate",
    "PPmodel_decay_center": "model.decay_center",
    "PPmodel_gaussian_std": "model.gaussian_std",
    "PPmodel_scale": "model.scale",
    "checkpoint": "model.gradient_checkpointing",
    # physics switches
    "SObool": "hamiltonian.spin_orbit",
    "cacheSO": "hamiltonian.cache_projectors",
    "basis_search": "hamiltonian.basis_search",
    "allow_left_handed": "hamiltonian.allow_left_handed",
    "long_range_with_nn": "hamiltonian.long_range_with_nn",
    "nonlocal_without_soc": "hamiltonian.nonlocal_without_soc",
    "eigensolver": "hamiltonian.eigensolver",
    "k_chunk": "hamiltonian.k_chunk",
    "num_cores": "hamiltonian.num_threads",
    "smooth_reorder": "hamiltonian.smooth_reorder",
    "eigvec_reorder": "hamiltonian.eigvec_reorder",
    "legacy_batchnorm": "hamiltonian.legacy_batchnorm",
    "legacy_reorder": "hamiltonian.legacy_reorder",
    # loss
    "penalize_starting": "loss.penalize_starting",
    "penalize_lambda": "loss.penalize_lambda",
    "penalize_mag_threshold": "loss.penalize_mag_threshold",
    "penalize_mag_lambda": "loss.penalize_mag_lambda",
    "penalty_reference": "loss.penalty_reference",
    "relE_bIdx": "loss.relE_bIdx",
    "relE_reference": "loss.relE_reference",
    "legacy_relE_detached": "loss.legacy_relE_detached",
    # initialisation
    "init_Zunger_num_epochs": "init.num_epochs",
    "init_Zunger_optimizer": "init.optimizer",
    "init_Zunger_optimizer_lr": "init.lr",
    "init_Zunger_scheduler_gamma": "init.scheduler_gamma",
    "init_Zunger_plotEvery": "init.plot_every",
    "init_Zunger_schedulerStep": "init.scheduler_step",
    "init_Zunger_printGrad": "init.print_grad",
    # gradient training
    "max_num_epochs": "trainer.max_epochs",
    "optimizer": "optimizer.name",
    "optimizer_lr": "optimizer.lr",
    "sgd_momentum": "optimizer.sgd_momentum",
    "adam_beta1": "optimizer.adam_beta1",
    "adam_beta2": "optimizer.adam_beta2",
    "scheduler_gamma": "scheduler.gamma",
    "schedulerStep": "scheduler.step",
    # callbacks and outputs
    "plotEvery": "callbacks.plot_every",
    "patience": "callbacks.patience",
    "perturbEvery": "callbacks.perturb_every",
    "pre_adjust_moves": "callbacks.pre_adjust_moves",
    "pre_adjust_stepSize": "callbacks.pre_adjust_step_size",
    "printGrad": "callbacks.print_grad",
    "runtime_flag": "callbacks.runtime_flag",
    "memory_flag": "callbacks.memory_flag",
    "SHOWPLOTS": "callbacks.show_plots",
    "qmax": "callbacks.qmax",
    "nQGrid": "callbacks.n_qgrid",
    "Rmax": "callbacks.rmax",
    "nRGrid": "callbacks.n_rgrid",
    "ft_qmax": "callbacks.ft_qmax",
    "ft_nQGrid": "callbacks.ft_n_qgrid",
    # Monte Carlo (conf/workflow/monte_carlo.yaml)
    "mc_iter": "workflow.iterations",
    "mc_percentage": "workflow.percentage",
    "mc_beta": "workflow.beta",
    "mc_perturb_mode": "workflow.perturb_mode",
    "mc_beta_schedule": "workflow.beta_schedule",
    "mc_engine": "workflow.engine",
    "legacy_mc_modes": "workflow.legacy_mc_modes",
}
"""NN_config.par key -> dotted Hydra path. `mc_bool` is `workflow.name == monte_carlo`."""

MC_KEYS = frozenset(k for k, path in NN_TO_HYDRA.items() if path.startswith("workflow."))
HYDRA_TO_NN = {path: key for key, path in NN_TO_HYDRA.items()}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def nn_to_hydra(given: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Typed NN_config values -> ({dotted path: value}, workflow name or None)."""
    values = {NN_TO_HYDRA[k]: _plain(v) for k, v in given.items() if k in NN_TO_HYDRA}
    workflow = None
    if "mc_bool" in given:
        workflow = "monte_carlo" if given["mc_bool"] else "gradient"
    if workflow != "monte_carlo":
        values = {p: v for p, v in values.items() if not p.startswith("workflow.")}
    return values, workflow


def _leaves(node: Any, prefix: str) -> Iterable[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key in ("defaults", "hydra"):
                continue
            yield from _leaves(value, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix


def _file_leaves(path: Path, package: str) -> set[str]:
    """Dotted keys a config file sets (its own content, not its defaults list)."""
    if not path.is_file():
        return set()
    text = path.read_text()
    node = OmegaConf.to_container(OmegaConf.load(path), resolve=False) or {}
    if "@package _global_" in text:
        package = ""
    return set(_leaves(node, package))


def explicit_keys(
    overrides: Iterable[str], choices: Mapping[str, Any], config_dirs: Iterable[Path] = ()
) -> set[str]:
    """Dotted keys set explicitly: by command-line `key=value` overrides, by the files of
    groups chosen on the command line, and by the selected experiment file."""
    dirs = [CONF_DIR, *config_dirs]
    explicit: set[str] = set()
    chosen_groups = set()
    for override in overrides:
        key, _, _ = override.partition("=")
        key = key.lstrip("+~")
        if key.startswith("hydra.") or key.startswith("hydra/"):
            continue
        if key in choices and "." not in key:
            chosen_groups.add(key)
        else:
            explicit.add(key)
    experiment = choices.get("experiment")
    if experiment:
        chosen_groups.add("experiment")
    for group in chosen_groups:
        option = choices.get(group)
        if not option:
            continue
        for folder in dirs:
            explicit |= _file_leaves(folder / group / f"{option}.yaml", group)
    return explicit


def _is_explicit(path: str, explicit: set[str]) -> bool:
    return any(path == key or path.startswith(key + ".") for key in explicit)


def bundle_path(cfg: DictConfig) -> Path:
    """The input folder of the run (`data.bundle`, relative paths from the launch folder)."""
    if cfg.data.bundle is None:
        return EXAMPLES_DIR / EMBEDDED_EXPERIMENT
    return Path(str(cfg.data.bundle)).expanduser().resolve()


def _load_workflow(name: str, config_dirs: Iterable[Path]) -> DictConfig:
    for folder in [CONF_DIR, *config_dirs]:
        file = folder / "workflow" / f"{name}.yaml"
        if file.is_file():
            return OmegaConf.load(file)
    raise InputError(
        CONF_DIR / "workflow",
        "workflow config not found",
        key="workflow",
        expected=f"{name}.yaml",
        found="no such file",
    )


def resolve_config(
    cfg: DictConfig,
    overrides: Iterable[str] = (),
    choices: Mapping[str, Any] | None = None,
    config_dirs: Iterable[Path] = (),
) -> DictConfig:
    """The run's config: `cfg` with the bundle's NN_config.par merged under the explicit
    settings (experiment and command line). Without a bundle, the embedded example runs
    with experiment `zb_CdSe`."""
    overrides = list(overrides)
    choices = dict(choices or {})
    config_dirs = [Path(d) for d in config_dirs]
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    if "hydra" in cfg:
        with open_dict(cfg):
            del cfg["hydra"]
    explicit = explicit_keys(overrides, choices, config_dirs)
    if cfg.data.bundle is None and not choices.get("experiment"):
        embedded = OmegaConf.load(CONF_DIR / "experiment" / f"{EMBEDDED_EXPERIMENT}.yaml")
        for path in _leaves(OmegaConf.to_container(embedded), ""):
            if not _is_explicit(path, explicit):
                OmegaConf.update(cfg, path, OmegaConf.select(embedded, path), force_add=True)
        explicit |= set(_leaves(OmegaConf.to_container(embedded), ""))
    folder = bundle_path(cfg)
    file = folder / "NN_config.par"
    if not file.is_file():
        raise InputError(
            folder, "not a bundle folder", key="data.bundle", expected="NN_config.par in it"
        )
    given = NNConfig.from_file(file).given
    values, workflow = nn_to_hydra(given)
    workflow_chosen = any(k == "workflow" or k.startswith("workflow.") for k in explicit)
    if workflow is not None and not workflow_chosen and cfg.workflow.name != workflow:
        cfg.workflow = _load_workflow(workflow, config_dirs)
    for path, value in values.items():
        if path.startswith("workflow.") and cfg.workflow.name != "monte_carlo":
            continue
        if not _is_explicit(path, explicit):
            OmegaConf.update(cfg, path, value, force_add=True)
    with open_dict(cfg):
        cfg.data.bundle = str(folder)
    return cfg


def nnconfig_from_cfg(cfg: DictConfig, source: str | Path | None = None) -> NNConfig:
    """The validated NNConfig equivalent to a resolved run config (non-default keys given)."""
    given: dict[str, Any] = {}
    for key, path in NN_TO_HYDRA.items():
        if key in MC_KEYS and cfg.workflow.name != "monte_carlo":
            continue
        value = OmegaConf.select(cfg, path, default=None)
        if value is None or (key == "mc_engine" and value == "auto"):
            continue
        value = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
        default = KEYS[key].default
        if value != _plain(default) or KEYS[key].required:
            given[key] = value
    monte_carlo = cfg.workflow.name == "monte_carlo"
    given["mc_bool"] = monte_carlo  # the chosen workflow wins over the file's mc_bool
    if monte_carlo:
        given["max_num_epochs"] = 0
    return NNConfig.from_mapping(given, source=source)


def _register_resolvers() -> None:
    """`${dpp.example:NAME}` (a shipped example folder) and `${dpp.repo:PATH}` (a path in the
    source checkout) for experiment files."""
    if not OmegaConf.has_resolver("dpp.example"):
        OmegaConf.register_new_resolver("dpp.example", lambda name: str(EXAMPLES_DIR / name))
    if not OmegaConf.has_resolver("dpp.repo"):
        OmegaConf.register_new_resolver("dpp.repo", lambda path: str(CONF_DIR.parent / path))


_register_resolvers()

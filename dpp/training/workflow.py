"""Run a resolved config: gradient training, Monte Carlo (dpp.mc) or evaluation.

Stages of the gradient workflow (seeds, "Overall Execution Flow"): configuration ingest ->
model and initialisation chain -> baseline bands (oldFunc_*, initZunger_*) -> optional
pre-adjust moves -> Lightning training (one step per epoch) -> final potentials (final_*).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import TensorBoardLogger

from dpp.errors import InputError
from dpp.io.records import Bundle
from dpp.io.writers import save_torch_atomic, write_text_atomic
from dpp.physics import build_hamiltonian
from dpp.training import plots
from dpp.training.callbacks import (
    LAST_CHECKPOINT,
    EarlyStopping,
    EpochOutputs,
    Perturbation,
)
from dpp.training.config import resolve_config
from dpp.training.datamodule import KPointDataModule
from dpp.training.module import OptimizerSettings, PseudopotentialModule
from dpp.training.objective import RelativeEnergy, bundle_targets
from dpp.training.observables import ObservableTerms
from dpp.training.outputs import OutputGrids, Reporter, evaluate_bands, write_run_info
from dpp.training.penalties import Penalties, PenaltySettings
from dpp.training.preadjust import pre_adjust
from dpp.training.prefit import PrefitSettings, initialise
from dpp.training.reordering import check_parallel, reorder_mode
from dpp.training.setup import (
    build_network,
    load_run_bundle,
    physics_options,
    set_threads,
    train_slots,
)
from dpp.training.strategy import is_global_zero

log = logging.getLogger(__name__)
RESOLVED_CONFIG = "config_resolved.yaml"


def _dpp_version() -> str:
    try:
        return version("dpp")
    except PackageNotFoundError:
        return "unknown"


def _hydra_context() -> tuple[list[str], dict[str, Any], Path | None, list[Path]]:
    """Command-line overrides, group choices, run dir and extra config dirs of Hydra."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return [], {}, None, []
    hydra = HydraConfig.get()
    dirs = [
        Path(source.path.removeprefix("file://"))
        for source in hydra.runtime.config_sources
        if source.provider == "command-line" and source.schema == "file"
    ]
    choices = {k: v for k, v in hydra.runtime.choices.items() if not k.startswith("hydra")}
    return list(hydra.overrides.task), choices, Path(hydra.runtime.output_dir), dirs


def run(
    cfg: DictConfig,
    *,
    run_dir: str | Path | None = None,
    overrides: Iterable[str] | None = None,
    choices: Mapping[str, Any] | None = None,
    config_dirs: Iterable[str | Path] = (),
) -> float:
    """Resolve `cfg` (NN_config.par of the bundle under the explicit settings), save it in the
    run directory and run its workflow; returns the final validation loss (eV²).

    Inside a Hydra app the overrides, choices and run directory come from Hydra."""
    hydra_overrides, hydra_choices, hydra_dir, hydra_dirs = _hydra_context()
    overrides = hydra_overrides if overrides is None else list(overrides)
    choices = hydra_choices if choices is None else dict(choices)
    run_dir = Path(run_dir or hydra_dir or Path.cwd())
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = resolve_config(cfg, overrides, choices, [*hydra_dirs, *map(Path, config_dirs)])
    if is_global_zero():
        write_text_atomic(run_dir / RESOLVED_CONFIG, OmegaConf.to_yaml(cfg, resolve=True))
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    set_threads(int(cfg.hamiltonian.num_threads))
    name = cfg.workflow.name
    log.info("workflow %s on %s; run directory %s", name, cfg.data.bundle, run_dir)
    if name == "evaluate":
        from dpp.training.evaluation import run_evaluate

        return run_evaluate(cfg, load_run_bundle(cfg, require_reference=False), run_dir)
    bundle = load_run_bundle(cfg)
    if name == "monte_carlo":
        from dpp.mc.workflow import run_monte_carlo

        return run_monte_carlo(cfg, bundle, run_dir)
    if name != "gradient":
        raise InputError(
            None,
            "unknown workflow",
            key="workflow.name",
            expected="gradient, monte_carlo or evaluate",
            found=repr(name),
        )
    return run_gradient(cfg, bundle, run_dir)


def _prefit_settings(cfg: DictConfig) -> PrefitSettings:
    i = cfg.init
    return PrefitSettings(
        num_epochs=int(i.num_epochs or 0),
        optimizer=str(i.optimizer),
        lr=i.lr,
        scheduler_gamma=float(i.scheduler_gamma),
        plot_every=i.plot_every,
        scheduler_step=i.scheduler_step,
        print_grad=bool(i.print_grad),
    )


def _optimizer_settings(cfg: DictConfig, bundle: Bundle) -> OptimizerSettings:
    o, s = cfg.optimizer, cfg.scheduler
    state = bundle.init_optimizer_path if o.load_state else None
    return OptimizerSettings(
        name=str(o.name),
        lr=float(o.lr) if o.lr is not None else 1e-3,
        sgd_momentum=float(o.sgd_momentum),
        adam_beta1=float(o.adam_beta1),
        adam_beta2=float(o.adam_beta2),
        lbfgs_max_iter=int(o.lbfgs_max_iter),
        gamma=float(s.gamma) if s.gamma is not None else 1.0,
        scheduler_step=int(s.step) if s.step is not None else 1,
        state_path=None if state is None else str(state),
    )


def _penalties(bundle: Bundle) -> Penalties:
    c = bundle.config
    settings = PenaltySettings(
        starting=c.penalize_starting,
        strength=c.penalize_lambda,
        mag_threshold=c.penalize_mag_threshold,
        mag_strength=c.penalize_mag_lambda,
        reference=c.penalty_reference,
    )
    return Penalties(
        settings, bundle.pp_params, bundle.qspace_prior, [s.n_kpoints for s in bundle.systems]
    )


def _flat_hparams(cfg: DictConfig) -> dict[str, Any]:
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}.{key}" if prefix else key)
        else:
            flat[prefix] = str(node) if isinstance(node, list) or node is None else node

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return flat


def run_gradient(cfg: DictConfig, bundle: Bundle, run_dir: Path) -> float:
    """The gradient workflow; returns the final validation loss (eV², eval mode)."""
    seed = int(cfg.seed)
    generator = torch.Generator().manual_seed(seed)
    network = build_network(cfg, bundle, generator)
    options = physics_options(bundle.config)
    hamiltonian = build_hamiltonian(
        bundle, network, options, train_slots=train_slots(cfg, bundle, network)
    )
    progress = bool(cfg.trainer.enable_progress_bar)
    logger = None
    if cfg.logger.name == "tensorboard":
        logger = TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version="")
    state = {"epoch": 0}

    def figure_sink(tag: str, fig: Any) -> None:
        if logger is not None and cfg.logger.log_figures:
            logger.experiment.add_figure(tag, fig, global_step=state["epoch"], close=False)

    c = bundle.config
    reporter = Reporter(
        run_dir,
        bundle,
        OutputGrids(c.qmax, c.nQGrid, c.Rmax, c.nRGrid, c.ft_qmax, c.ft_nQGrid),
        show_plots=bool(c.SHOWPLOTS),
        figure_sink=figure_sink,
    )
    resume = run_dir / LAST_CHECKPOINT if cfg.resume else None
    if resume is not None and not resume.is_file():
        raise InputError(
            resume, "nothing to resume", key="resume", expected="a checkpoint from an earlier run"
        )
    lead, device = is_global_zero(), _stage_device(cfg)
    if resume is None and lead:
        chosen = initialise(
            network,
            bundle,
            _prefit_settings(cfg),
            run_dir,
            generator,
            model_path=None if cfg.init.model_path is None else Path(str(cfg.init.model_path)),
            progress=progress,
        )
        hamiltonian.to(device)
        reporter.basis_states(hamiltonian)
        analytic = build_hamiltonian(bundle, None, options).to(device)
        reporter.bands("oldFunc", evaluate_bands(analytic), tag="bands_oldFunc")
        reporter.bands("initZunger", evaluate_bands(hamiltonian), tag="bands")
        reporter.potentials(
            "initZunger",
            hamiltonian,
            tag="potentials",
            converge=bool(cfg.callbacks.converge_plots),
            real_space_files=True,
        )
        write_run_info(
            run_dir / "run_info.json",
            bundle,
            hamiltonian,
            seed=seed,
            init_path=chosen,
            version=_dpp_version(),
        )
    elif resume is None:
        log.info("DDP rank > 0: initial parameters come from rank 0 when training starts")
    else:
        log.info("resuming from %s", resume)
    targets = bundle_targets(bundle)
    relative = RelativeEnergy.from_config(c, bundle.systems)
    n_kpoints = [s.n_kpoints for s in bundle.systems]
    data = KPointDataModule(n_kpoints, int(cfg.data.kpt_batch_size), bool(c.separateKptGrad))
    module = PseudopotentialModule(
        hamiltonian,
        targets,
        relative,
        _penalties(bundle),
        _optimizer_settings(cfg, bundle),
        data.batches(),
        observables=ObservableTerms(bundle),
        runtime_flag=bool(c.runtime_flag),
    ).to(device)
    epochs = int(c.max_num_epochs)
    if epochs > 0:
        if resume is None and lead and c.pre_adjust_moves > 0:
            pre_adjust(module, c.pre_adjust_moves, c.pre_adjust_stepSize, generator, reporter)
        _fit(cfg, module, data, reporter, logger, state, resume)
    final = _finish(module, reporter, run_dir, bool(cfg.callbacks.converge_plots))
    if logger is not None:
        logger.log_hyperparams(_flat_hparams(cfg), metrics={"hp/final_loss": final})
        logger.finalize("success")
    log.info("final validation loss %.6g eV^2; results in %s", final, run_dir)
    return final


def _stage_device(cfg: DictConfig) -> torch.device:
    """Device of the stages outside the Trainer (baseline bands, pre-adjust): this process's
    GPU when the trainer runs on GPUs, else the CPU."""
    if str(cfg.trainer.accelerator) in ("gpu", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def _fit(
    cfg: DictConfig,
    module: PseudopotentialModule,
    data: KPointDataModule,
    reporter: Reporter,
    logger: TensorBoardLogger | None,
    state: dict[str, int],
    resume: Path | None,
) -> None:
    c = reporter.bundle.config
    plot_every = int(c.plotEvery)
    callbacks: list[pl.Callback] = [
        _EpochCounter(state),
        EpochOutputs(
            reporter,
            plot_every,
            print_grad=bool(c.printGrad),
            memory_flag=bool(c.memory_flag),
            checkpoint_every=int(cfg.callbacks.checkpoint_every),
        ),
        EarlyStopping(int(c.patience), float(cfg.callbacks.min_delta)),
    ]
    if c.perturbEvery > 0:
        callbacks.append(
            Perturbation(c.perturbEvery, float(cfg.callbacks.perturb_epsilon), int(cfg.seed))
        )
    t = cfg.trainer
    trainer = pl.Trainer(
        max_epochs=int(c.max_num_epochs),
        accelerator=str(t.accelerator),
        devices=t.devices,
        num_nodes=int(t.num_nodes),
        strategy=_strategy(t.get("strategy")),
        use_distributed_sampler=False,  # the DataModule shards the k-points itself
        precision=t.precision,
        logger=logger if logger is not None else False,
        callbacks=callbacks,
        check_val_every_n_epoch=plot_every,
        num_sanity_val_steps=0,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=bool(t.enable_progress_bar),
        log_every_n_steps=int(t.log_every_n_steps),
        default_root_dir=str(reporter.run_dir),
    )
    _check_launch(trainer)
    check_parallel(reorder_mode(c), trainer.world_size)
    trainer.fit(module, datamodule=data, ckpt_path=None if resume is None else str(resume))


def _check_launch(trainer: pl.Trainer) -> None:
    """Lightning starts local DDP ranks by re-running the command line, which inside a Hydra
    multirun would start the sweep again: there the ranks must come from SLURM or torchrun."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if trainer.world_size == 1 or not HydraConfig.initialized():
        return
    external = trainer.strategy.cluster_environment.creates_processes_externally
    if HydraConfig.get().mode == RunMode.MULTIRUN and not external:
        raise InputError(
            None,
            "DDP inside a local multirun",
            key="trainer.devices",
            expected="devices=1 per sweep job, or hydra/launcher=slurm with tasks_per_node",
            found=f"{trainer.world_size} processes",
        )


def _strategy(node: Any) -> str | pl.strategies.Strategy:
    """`auto` (one device), or the strategy a `_target_` node builds (trainer=ddp). Plain
    `ddp` would average the gradients over ranks inside DistributedDataParallel."""
    if node is None or node == "auto":
        return "auto"
    if OmegaConf.is_dict(node) and "_target_" in node:
        return instantiate(node)
    raise InputError(
        None,
        "unsupported trainer strategy",
        key="trainer.strategy",
        expected="auto or a _target_ node such as trainer=ddp (KPointDDPStrategy)",
        found=str(node),
    )


class _EpochCounter(pl.Callback):
    """Keeps the 1-based epoch for TensorBoard figure steps."""

    def __init__(self, state: dict[str, int]) -> None:
        self.state = state

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.state["epoch"] = trainer.current_epoch + 1


def _finish(
    module: PseudopotentialModule, reporter: Reporter, run_dir: Path, converge: bool
) -> float:
    """Final potentials and cost plot (global rank 0); returns the final eval-mode loss,
    evaluated by all ranks together after a DDP fit."""
    ham = module.hamiltonian
    if is_global_zero():
        _final_files(module, reporter, run_dir, converge)
    was_training = ham.training
    ham.eval()
    with torch.no_grad():
        final, _, _ = module.full_pass(backward=False)
    ham.train(was_training)
    return final


def _final_files(
    module: PseudopotentialModule, reporter: Reporter, run_dir: Path, converge: bool
) -> None:
    reporter.potentials("final", module.hamiltonian, converge=converge, real_space_files=True)
    if module.network is not None:
        save_torch_atomic(module.network.state_dict(), run_dir / "final_PPmodel.pth")
    if module.train_history:
        fig = plots.cost_figure(module.train_history, module.val_history, "training cost")
        plots.save_figure(fig, run_dir / "final_train_cost.png")
        plots.close(fig)

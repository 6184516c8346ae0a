"""The NN_config.par schema (bundle-format §3): every key's type, its place in the Hydra
configuration (conf/) and a one-line doc. Defaults live in conf/, not here.

This module and its siblings are the only places that know NN_config key names.
"""

from __future__ import annotations

from dataclasses import dataclass

from dpp.io.keys import KeySpec

PPMODEL_CLASSES = (
    "Net_sig",
    "Net_tanh",
    "Net_relu",
    "Net_relu_xavier",
    "Net_sigmoid_xavier",
    "Net_celu_HeInit",
    "Net_celu_RandInit",
    "Net_sig_UniformInit",
    "Net_tanh_XavierInit_dropout",
    "Net_relu_HeInit",
    "Net_sig_bn",
    "Net_tanh_bn",
    "Net_relu_bn",
    "Net_Xavier_BN",
    "Net_He_BN",
    "Net_relu_xavier_BN",
    "Net_relu_xavier_BN_dropout",
    "ZeroFunction",
    "Net_relu_xavier_BN_dropout_decay",
    "Net_relu_xavier_decay",
    "Net_relu_xavier_decay2",
    "Net_relu_xavier_decayGaussian",
    "Net_sigmoid_xavier_decayGaussian",
    "Net_celu_HeInit_decayGaussian",
    "Net_celu_HeInit_scale_decayGaussian",
    "Net_celu_RandInit_decayGaussian",
    "Net_relu_HeInit_decayGaussian",
    "Net_relu_xavier_BN_decayGaussian",
    "Net_relu_xavier_BN_dropout_decayGaussian",
)
"""The PPmodel catalogue (bundle-format §11.3)."""

OPTIMIZER_NAMES = (
    "adam",
    "sgd",
    "asgd",
    "lbfgs",
    "adadelta",
    "adagrad",
    "adamw",
    "sparseadam",
    "adamax",
    "nadam",
    "radam",
    "rmsprop",
)
"""Values of `optimizer`; each but sparseadam is a file conf/optimizer/<name>.yaml."""

UPSTREAM_KEYS = (
    "num_threads",
    "pool_initSO",
    "pool_initNL",
    "local_env_corr",
    "init_LSD_*",
    "LSD*",
    "descriptor_backend",
    "force_retrain",
    "tot_magnetization",
    "partial_eig*",
    "group_by_type",
    "low_mem",
    "mat_cache_dir",
    "longRange_lr",
)
"""Keys (glob patterns) of the later upstream revision: accepted with a warning, not used."""


@dataclass(frozen=True)
class NNKey:
    """A key of NN_config.par: its type and the dotted Hydra path its value goes to
    (`None`: translated by a rule of `translate.py`)."""

    spec: KeySpec
    path: str | None

    @property
    def name(self) -> str:
        return self.spec.name


def _key(name: str, kind: str, path: str | None, doc: str, **extra: object) -> NNKey:
    return NNKey(KeySpec(name, kind, doc, **extra), path)


_KEYS = (
    # 3.1 required
    _key(
        "PPmodel",
        "choice",
        "model.name",
        "network class (bundle-format §11.3)",
        choices=PPMODEL_CLASSES,
        required=True,
    ),
    _key(
        "hiddenLayers",
        "int_list",
        "model.hidden_layers",
        "hidden widths; the network is [1] + hiddenLayers + [n_species]",
        minimum=1,
        required=True,
    ),
    _key(
        "nSystem",
        "int",
        "data.n_system",
        "number of systems (files *_0 ... *_{nSystem-1})",
        minimum=1,
        required=True,
    ),
    # 3.2 execution and diagnostics
    _key("num_cores", "int", "num_threads", "CPU threads of the run; 0 = automatic", minimum=0),
    _key("SHOWPLOTS", "bool", "outputs.show_plots", "open interactive plot windows"),
    _key(
        "separateKptGrad",
        "bool",
        "data.separate_kpt_grad",
        "serve k-points in batches whose gradients accumulate",
    ),
    _key(
        "checkpoint",
        "bool",
        "model.gradient_checkpointing",
        "activation checkpointing around the network call (results unchanged)",
    ),
    _key("memory_flag", "bool", "callbacks.epoch_log.memory", "peak memory in the epoch log"),
    _key("runtime_flag", "bool", None, "wall-clock profile of the training stages"),
    _key("printGrad", "bool", "callbacks.epoch_log.gradients", "gradient norms each epoch"),
    _key("seed", "int", "seed", "seed of every random generator of the run"),
    _key(
        "eigensolver",
        "choice",
        "hamiltonian.eigensolver",
        "eigensolver backend",
        choices=("auto", "lapack", "torch", "davidson"),
    ),
    _key("k_chunk", "int", "hamiltonian.k_chunk", "k-points per H(k) batch; 0 = auto", minimum=0),
    # 3.3 spin-orbit and physics switches
    _key(
        "SObool",
        "bool",
        "hamiltonian.spin_orbit",
        "spinor Hamiltonian with spin-orbit and both nonlocal channels",
    ),
    _key(
        "cacheSO",
        "bool",
        "hamiltonian.cache_projectors",
        "keep the spin-orbit/nonlocal kernels between steps",
    ),
    _key(
        "basis_search",
        "choice",
        "hamiltonian.basis_search",
        "plane-wave basis: complete sphere 1/2|G|^2 < maxKE, or the original's legacy box",
        choices=("complete", "legacy"),
    ),
    _key(
        "allow_left_handed",
        "bool",
        "data.allow_left_handed",
        "accept a left-handed cell (uses |Omega|) instead of rejecting it",
    ),
    _key(
        "long_range_with_nn",
        "bool",
        "hamiltonian.long_range_with_nn",
        "add the a4 long-range tail to the network output too",
    ),
    _key(
        "nonlocal_without_soc",
        "bool",
        "hamiltonian.nonlocal_without_soc",
        "nonlocal channels on the spatial (N x N) Hamiltonian when SObool = 0",
    ),
    _key(
        "nonlocal_s",
        "bool",
        "hamiltonian.nonlocal_s",
        "the nonlocal s-channel (l = 0, strength a9 of init_<S>Params.par)",
    ),
    # 3.4 model
    _key(
        "PPmodel_decay_rate",
        "float",
        "model.decay_rate",
        "logistic gate steepness r (Net_relu_xavier_decay)",
    ),
    _key(
        "PPmodel_decay_center",
        "float",
        "model.decay_center",
        "logistic gate centre c in 1/Bohr (Net_relu_xavier_decay)",
    ),
    _key(
        "PPmodel_gaussian_std",
        "float",
        "model.gaussian_std",
        "sigma of the Gaussian gate exp(-q^2/(2 sigma^2)) in 1/Bohr",
        minimum=0.0,
    ),
    _key(
        "PPmodel_scale",
        "float_list",
        "model.scale",
        "one output factor per species in species order",
    ),
    _key(
        "train_slots",
        "int_list",
        "model.train_slots",
        "analytic slots a0..a9 trained by gradient beside the network (6 7: nonlocal strengths)",
        minimum=0,
    ),
    # 3.5 penalties
    _key(
        "penalize_starting",
        "float",
        "loss.penalize_starting",
        "q0 in 1/Bohr where deviation from the prior curve starts to be penalised",
    ),
    _key("penalize_lambda", "float", "loss.penalize_lambda", "strength of the decay penalty"),
    _key(
        "penalize_mag_threshold",
        "float",
        "loss.penalize_mag_threshold",
        "allowed |v_s(q)| on [0, 12] (Hartree Bohr^3)",
    ),
    _key(
        "penalize_mag_lambda",
        "float",
        "loss.penalize_mag_lambda",
        "strength of the magnitude penalty; <= 0 disables",
    ),
    _key(
        "penalty_reference",
        "choice",
        "loss.penalty_reference",
        "what the decay penalty measures deviation from",
        choices=("prior", "zero"),
    ),
    # 3.6 initialisation stage
    _key("init_Zunger_num_epochs", "int", "init.num_epochs", "pre-fit epochs", minimum=0),
    _key(
        "init_Zunger_optimizer",
        "choice",
        None,
        "pre-fit optimiser",
        choices=("adam", "sgd"),
    ),
    _key(
        "init_Zunger_optimizer_lr",
        "float",
        "init.optimizer.lr",
        "pre-fit learning rate",
        minimum=0.0,
    ),
    _key(
        "init_Zunger_scheduler_gamma",
        "float",
        "init.decay_gamma",
        "pre-fit exponential learning-rate decay factor",
    ),
    _key(
        "init_Zunger_plotEvery",
        "int",
        "init.plot_every",
        "pre-fit save interval (and default decay interval); -1 = never",
    ),
    _key(
        "init_Zunger_schedulerStep",
        "int",
        "init.decay_every",
        "pre-fit decay interval",
        minimum=1,
    ),
    _key("init_Zunger_printGrad", "bool", "init.print_grad", "pre-fit gradient norms"),
    # 3.7 gradient training
    _key(
        "max_num_epochs", "int", "trainer.max_epochs", "optimiser steps (one per epoch)", minimum=0
    ),
    _key("optimizer", "choice", None, "optimiser of the band training", choices=OPTIMIZER_NAMES),
    _key("optimizer_lr", "float", "learning_rate", "base learning rate", minimum=0.0),
    _key("sgd_momentum", "float", None, "SGD momentum", minimum=0.0),
    _key("adam_beta1", "float", None, "Adam beta1", minimum=0.0),
    _key("adam_beta2", "float", None, "Adam beta2", minimum=0.0),
    _key("scheduler_gamma", "float", "lr_decay.gamma", "learning-rate decay factor"),
    _key(
        "schedulerStep",
        "int",
        "lr_decay.every",
        "decay after epochs e > 0 with e % schedulerStep == 0",
        minimum=1,
    ),
    _key(
        "plotEvery",
        "int",
        "trainer.check_val_every_n_epoch",
        "validation, checkpoints and plots when (e+1) % plotEvery == 0",
        minimum=1,
    ),
    _key(
        "patience",
        "int",
        "callbacks.early_stopping.patience_epochs",
        "early-stopping patience in epochs",
        minimum=1,
    ),
    _key(
        "perturbEvery",
        "int",
        "callbacks.perturbation.every",
        "> 0: Monte Carlo mode-1 kick every perturbEvery epochs; -1 = never",
    ),
    _key(
        "pre_adjust_moves",
        "int",
        "init.pre_adjust_moves",
        "single-parameter pre-adjust moves before epoch 0",
        minimum=0,
    ),
    _key("pre_adjust_stepSize", "float", "init.pre_adjust_step_size", "step of a pre-adjust move"),
    _key(
        "relE_bIdx",
        "int",
        "loss.relE_bIdx",
        "train on energies relative to this band (input_X.par value wins)",
        minimum=0,
    ),
    _key(
        "relE_reference",
        "choice",
        "loss.relE_reference",
        "k-point of the relative-energy reference band",
        choices=("first_kpoint", "same_kpoint"),
    ),
    _key(
        "energy_zero",
        "choice",
        "loss.energy_zero",
        "absolute: the reference's zero is meaningful; per_system: each system's offset is "
        "free; common: one offset shared by every system (their alignment is kept)",
        choices=("absolute", "per_system", "common"),
    ),
    _key(
        "smoothness",
        "float",
        "loss.smoothness",
        "strength of the curvature regulariser on the network's v(q) (0 = off)",
        minimum=0.0,
    ),
    _key(
        "smoothness_reference",
        "choice",
        "loss.smoothness_reference",
        "the regulariser's curvature: of v itself (zero) or of v minus the starting curve (prior)",
        choices=("zero", "prior"),
    ),
    _key(
        "departure",
        "float",
        "loss.departure",
        "strength of the penalty on the size of v(q) minus the smoothness reference (0 = off)",
        minimum=0.0,
    ),
    _key(
        "s_channel_bound",
        "float",
        "loss.s_channel_bound",
        "strength of the penalty on an attractive nonlocal s-channel, a9 < 0 (0 = off)",
        minimum=0.0,
    ),
    # 3.8 Monte Carlo (mc_perturb_mode is checked by MonteCarloSettings)
    _key("mc_bool", "bool", None, "run Monte Carlo instead of gradient training"),
    _key("mc_iter", "int", "mc.iterations", "number of Monte Carlo trial moves", minimum=1),
    _key("mc_percentage", "float", "mc.percentage", "perturbation magnitude epsilon", minimum=0.0),
    _key("mc_beta", "float", "mc.beta", "beta of the square-root Metropolis rule", minimum=0.0),
    _key("mc_perturb_mode", "int", "mc.perturb_mode", "perturbation kernel 1-7"),
    _key(
        "mc_beta_schedule",
        "path",
        "mc.beta_schedule",
        "beta schedule file (relative to the bundle); overrides mc_beta",
    ),
    _key("mc_engine", "choice", "mc.engine", "Monte Carlo engine", choices=("nn", "analytic")),
    # 3.9 band order and output grids (bounds as OutputSettings: a bad file value is refused
    # even where the command line overrides it)
    _key("smooth_reorder", "bool", None, "extrapolation/assignment band reordering"),
    _key("eigvec_reorder", "bool", None, "eigenvector-overlap band reordering"),
    _key("qmax", "float", "outputs.qmax", "q_max of the *_qSpace_pot.dat tables", above=0.0),
    _key("nQGrid", "int", "outputs.n_qgrid", "rows of the *_qSpace_pot.dat tables", minimum=2),
    _key("Rmax", "float", "outputs.rmax", "r_max of the real-space potential files", above=0.0),
    _key("nRGrid", "int", "outputs.n_rgrid", "rows of the real-space potential files", minimum=2),
    _key(
        "ft_qmax",
        "float",
        "outputs.ft_qmax",
        "q cutoff of the real-space transform (1/Bohr)",
        above=0.0,
    ),
    _key("ft_nQGrid", "int", "outputs.ft_n_qgrid", "q points of the transform", minimum=2),
    # legacy switches (reproduce the original where dpp differs)
    _key(
        "legacy_batchnorm",
        "bool",
        "hamiltonian.legacy_batchnorm",
        "batch-norm running statistics exactly as the original",
    ),
    _key(
        "legacy_fifth_param",
        "choice",
        "data.legacy_fifth_param",
        "slot of the 5th number of 5-number init_<S>Params.par files",
        choices=("strain", "long_range"),
    ),
    _key("legacy_reorder", "bool", "loss.legacy_reorder", "smooth_reorder as the original"),
    _key(
        "legacy_relE_detached",
        "bool",
        "loss.legacy_relE_detached",
        "detach the relative-energy reference from the gradient, as the original",
    ),
    _key("legacy_mc_modes", "bool", "mc.legacy_modes", "Monte Carlo modes 2 and 4 as the original"),
)

KEYS: dict[str, NNKey] = {key.name: key for key in _KEYS}
"""The schema: key name -> NNKey, in documentation order."""

ADAM_FAMILY = ("adam", "adamw", "adamax", "nadam", "radam")
"""Optimisers that take `betas` (adam_beta1, adam_beta2)."""

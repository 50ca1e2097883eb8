"""Continual-learning run configuration: frozen dataclasses loaded from TOML, validated before any work starts.

Same conventions as :mod:`neurosim.config` (and its loader): unknown keys, wrong types and impossible values raise
:class:`neurosim.config.ConfigError` naming the key path. Sections: ``[tasks]`` (which task sequence),
``[model]``/``[neuron]`` (the network, as for ``neurosim train``; here an LIF MLP by default), ``[train]`` (how every
method trains each task), ``[hlop]`` (subspace sizes per task and Hebbian settings) and ``[ewc]``.

Example:
    >>> cfg = continual_config_from_dict({"tasks": {"num_tasks": 3}, "hlop": {"preset": "pmnist_paper"}})
    >>> cfg.model.kind, cfg.tasks.num_tasks, subspace_sizes(cfg.hlop, 0, 3), subspace_sizes(cfg.hlop, 3, 3)
    ('mlp', 3, (80, 200, 100), (50, 50, 50))
    >>> continual_config_from_dict({"hlop": {"sizez": [1]}})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    neurosim.config.ConfigError: hlop.sizez: unknown key; valid keys: ...
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from neurosim.config import (
    LOSSES, PENALTY_ON, PER_STEP_LOSSES, TORCH_SEED_RANGE, ConfigError, ModelConfig, NeuronConfig, _build,
    _check_device, _check_seed, _choice, _expand_home, _ineffective, InvalidValue, _non_negative, _positive,
    load_toml_config,
)

#: the losses continual training takes: those scored, as its tasks are, by the time-summed output
CONTINUAL_LOSSES = ("rate_ce", "tet", "sltt_mix")

__all__ = [
    "CONTINUAL_METHODS", "ContinualConfig", "ContinualModelConfig", "ContinualNeuronConfig", "ContinualTrainConfig",
    "EWCConfig",
    "HLOPConfig", "PRESETS", "PROTOCOLS", "TasksConfig", "continual_config_from_dict", "ineffective_continual_settings",
    "load_continual_config", "subspace_sizes",
]

CONTINUAL_METHODS = ("baseline", "ewc", "hlop", "multitask")
PROTOCOLS = ("permuted", "class_split")
TRAIN_METHODS = ("bptt", "sltt", "sltt_k")
PRESETS = ("none", "pmnist_paper")
#: the most tasks a sequence may have: task i of seed s seeds generators with s * MAX_TASKS + i
MAX_TASKS = 1000
#: the seeds a run can take: task i of seed s seeds generators with s * 1000 + i (i < 1000), which must stay in
#: torch.manual_seed's range
SEED_RANGE = (-(-TORCH_SEED_RANGE[0] // 1000), (TORCH_SEED_RANGE[1] - 999) // 1000)


@dataclass(frozen=True)
class TasksConfig:
    """The task sequence."""

    source: str = "sklearn_digits"  # sklearn_digits (8×8, offline, constant input current) | a registry dataset
    protocol: str = "permuted"  # permuted: pixel permutations, shared head | class_split: class groups, multi-head
    num_tasks: int = 5  # permuted: number of permutations, at most 1000 (class_split: all groups; not to be set)
    classes_per_task: int = 2  # class_split: classes per task (10 digits → 5 tasks of 2; permuted: not to be set)
    permute_first: bool = False  # permuted: False keeps task 0 unpermuted (easier to look at); the PMNIST code permutes all
    time_steps: int = 4  # T: steps per sample (static digits: the same input current every step)
    # registry (event) sources: sum-pool H and W by this factor (event digits 34×34 → 17×17 with 2); a source one row
    # high (SHD's 700 channels) along its channels alone (700 → 350 with 2)
    downsample: int = 1
    train_subset: int | None = None  # use only the first N training samples of the source (quick runs)
    test_subset: int | None = None  # use only the first N test samples of the source
    root: str | None = None  # registry sources: where they live (event_digits' generated file too; None: the cache)

    def __post_init__(self) -> None:
        _expand_home(self, "root")
        _choice(self, "protocol", PROTOCOLS)
        _positive(self, "num_tasks", "classes_per_task", "time_steps", "downsample", "train_subset", "test_subset")
        if self.num_tasks > MAX_TASKS:
            raise InvalidValue("num_tasks", f"must be at most {MAX_TASKS} (task i of seed s seeds generators with "
                                            f"s * {MAX_TASKS} + i, the next seed's from i = {MAX_TASKS} on), got "
                                            f"{self.num_tasks}")
        if not self.source:
            raise InvalidValue("source", "must name sklearn_digits or a registry dataset, got an empty string")
        # a key the protocol or source ignores, set to something else than its default, is a setting the user
        # expects to act (a saved config.toml writes every key at its default: it loads)
        protocol, fix = f"protocol {self.protocol!r}", "set tasks.protocol to the protocol that uses it"
        ignored = [
            ("num_tasks", self.protocol == "class_split", protocol,
             "the tasks are the class groups of classes_per_task classes each", fix),
            ("classes_per_task", self.protocol == "permuted", protocol,
             "every task has all the classes, permuted (num_tasks sets how many)", fix),
            ("permute_first", self.protocol == "class_split", protocol, "its tasks permute nothing", fix),
            ("downsample", self.source == "sklearn_digits", "source 'sklearn_digits'",
             "its 8×8 digits are pixel currents, not event frames to pool", "set tasks.source to a registry dataset"),
        ]
        for key, unused, by, why, what in ignored:
            default = next(f.default for f in fields(self) if f.name == key)
            if unused and getattr(self, key) != default:
                raise InvalidValue(key, f"is not used by {by} ({why}), got {getattr(self, key)!r}; leave it out, or "
                                        f"{what}")


@dataclass(frozen=True)
class ContinualModelConfig(ModelConfig):
    """The network (:class:`neurosim.config.ModelConfig`), with defaults for 8×8 digits: a 64-512-512-10 LIF MLP.
    ``recurrent = true`` works here too: HLOP then protects each hidden layer's feedback weights as well, so
    ``hlop.sizes`` needs a size for them (the error lists the protected layers in order)."""

    kind: str = "mlp"  # fully connected: permutations destroy the spatial structure convolutions rely on
    input_shape: tuple[int, ...] = (64,)  # 8×8 digits, flattened
    hidden: tuple[int, ...] = (512, 512)  # wide enough that spike activity leaves room to learn new tasks (paper: 800, 800)
    readout: str = "membrane"  # non-spiking readout, like the paper's linear classifier averaged over T


@dataclass(frozen=True)
class ContinualNeuronConfig(NeuronConfig):
    """The LIF neurons (:class:`neurosim.config.NeuronConfig`), with defaults that fire on pixel currents in [0, 1].

    With 64 pixel currents in [0, 1] and T = 4, the project-wide default neuron (τ 2 ms, threshold 1) stays nearly
    silent and the MLP does not learn at all.
    """

    tau_mem_ms: float = 5.0  # β = exp(−1/5) ≈ 0.82 at dt 1 ms: integrates the constant pixel current over T = 4 steps
    v_th: float = 0.5  # with τ 5 ms: enough hidden spikes within T = 4 steps for the MLP to learn


@dataclass(frozen=True)
class ContinualTrainConfig:
    """How every method trains each task (the same settings for all methods)."""

    method: str = "bptt"  # bptt | sltt | sltt_k — HLOP's projection works with each
    k: int = 2  # sltt_k: steps per batch with a backward pass
    time_chunk: int | None = None  # steps per call; None: the method's (bptt ~128 samples on CPU, sltt 1, sltt_k auto)
    # rate_ce | tet | sltt_mix (sltt and sltt_k need a per-step loss: tet or sltt_mix). Tasks are scored by the
    # time-summed output, the read-out these three train; max_ce and last_ce (neurosim train) are not offered here
    loss: str = "rate_ce"
    loss_lambda: float = 0.05  # sltt_mix: weight of its MSE term
    epochs: int = 3  # passes over each task's training data; multitask: passes over the union of all tasks
    batch_size: int = 32  # samples per step (paper PMNIST: 64 on 60,000 images; digits have 1,437 per task)
    optimizer: str = "sgd"  # sgd (the paper's); adam's per-coordinate scaling would undo the orthogonal projection
    lr: float = 0.1  # the paper's PMNIST learning rate
    momentum: float = 0.0  # sgd momentum (paper: none); momentum of projected gradients stays projected
    grad_clip: float | None = None  # max gradient norm; None: no clipping (the paper clips nothing)
    freeze_after_first: bool = True  # after task 0: biases, BatchNorm, thresholds frozen (the paper's code, all methods)
    device: str = "cpu"  # cpu | cuda | cuda:N | auto
    threads: int | None = None  # torch CPU threads; None leaves torch's choice
    # λ of the activity penalty added to every task's loss, as in neurosim train (neurosim.training.regularize): the
    # synaptic operations the hidden layers' spikes cause ("synops", energy on event-driven chips) or their firing
    # rate ("spikes"), per step and sample as a fraction of the most possible. Its gradient is projected by HLOP and
    # its share is not in EWC's Fisher. 0: none (written to config.toml only when set, so results stay reusable)
    activity_penalty: float = field(default=0.0, metadata={"written_when_set": True})
    activity_penalty_on: str = field(default="synops", metadata={"written_when_set": True})

    def __post_init__(self) -> None:
        _choice(self, "method", TRAIN_METHODS)
        _choice(self, "activity_penalty_on", PENALTY_ON)
        _non_negative(self, "activity_penalty")
        if self.loss in LOSSES and self.loss not in CONTINUAL_LOSSES:
            raise InvalidValue("loss", f"{self.loss!r} is for neurosim train: continual tasks are scored by the "
                                       f"time-summed output, the read-out {', '.join(CONTINUAL_LOSSES)} train; use "
                                       "one of those")
        _choice(self, "loss", CONTINUAL_LOSSES)
        _choice(self, "optimizer", ("sgd", "adam"))
        _positive(self, "k", "time_chunk", "epochs", "batch_size", "lr", "grad_clip", "threads")
        _non_negative(self, "momentum")
        if not 0 <= self.loss_lambda <= 1:
            raise InvalidValue("loss_lambda", f"must be in [0, 1], got {self.loss_lambda!r}")
        if self.method in ("sltt", "sltt_k") and self.loss not in PER_STEP_LOSSES:
            raise InvalidValue("loss", f"method {self.method!r} needs a per-step loss (tet or sltt_mix), got "
                                       f"{self.loss!r}")
        _check_device(self)


@dataclass(frozen=True)
class HLOPConfig:
    """Hebbian subspaces and projection."""

    layers: tuple[str, ...] = ()  # module names of the layers to protect; empty: every Linear/Conv2d (head included)
    lr: tuple[float, ...] = (0.03,)  # Hebbian rate per protected layer, last value repeats (paper, 784-d pixels/800-d spikes: 0.001/0.01)
    iterations: int = 5  # Oja iterations per Hebbian update, one per batch (the HLOP code's 5)
    momentum: float = 0.9  # momentum of the Hebbian update (HLOP code)
    clamp: float = 10.0  # clip of each ΔH entry (HLOP code)
    preset: str = "none"  # none: use `sizes` | pmnist_paper: [80, 200, 100], then 70 per layer, 20 fewer every 3rd task
    sizes: tuple[tuple[int, ...], ...] = ((20, 60, 40), (10, 30, 20))  # new rows per protected layer at task i; last repeats
    # extra Hebbian-only passes (eval mode) after a task's training: H fits the trained net's activity (the paper's code
    # has none: its rows learn during training only, as with 0)
    hebbian_epochs: int = 2
    orthonormalize: bool = False  # project with an orthonormal basis of span(H_old) instead of H_oldᵀH_old (paper)
    max_samples: int = 8192  # presynaptic vectors per Hebbian update, drawn at random (conv patches are many); 0: all

    def __post_init__(self) -> None:
        _choice(self, "preset", PRESETS)
        if self.max_samples is None:  # Python's "all", kept as 0 so that config.toml says it too
            object.__setattr__(self, "max_samples", 0)
        _positive(self, "iterations", "clamp")
        if self.max_samples < 0:
            raise InvalidValue("max_samples", f"must be >= 0 (0 uses all), got {self.max_samples!r}")
        if len(set(self.layers)) != len(self.layers):
            raise InvalidValue("layers", f"names a layer twice: {list(self.layers)}")
        if not self.lr or any(not (v > 0 and math.isfinite(v)) for v in self.lr):
            raise InvalidValue("lr", f"must be a non-empty list of positive rates, got {list(self.lr)!r}")
        if not 0 <= self.momentum < 1:
            raise InvalidValue("momentum", f"must be in [0, 1), got {self.momentum!r}")
        if self.hebbian_epochs < 0:
            raise InvalidValue("hebbian_epochs", f"must be >= 0, got {self.hebbian_epochs!r}")
        if self.preset == "none":
            if not self.sizes or any(not row for row in self.sizes):
                raise InvalidValue("sizes", f"needs at least one non-empty list of rows per layer, got {self.sizes!r}")
            if any(k < 0 for row in self.sizes for k in row):
                raise InvalidValue("sizes", f"rows must be >= 0, got {self.sizes!r}")
            if len({len(row) for row in self.sizes}) != 1:
                raise InvalidValue("sizes", f"every task's list needs one entry per protected layer, "
                                            f"got {self.sizes!r}")


@dataclass(frozen=True)
class EWCConfig:
    """Elastic weight consolidation (Kirkpatrick et al., PNAS 2017), the classic comparison method."""

    lam: float = 3000.0  # penalty weight λ: loss + λ/2 Σ_tasks Σ_i F_i (θ_i − θ*_i)²; best ACC of 10…1e5 on digits (tuning seeds)
    fisher_samples: int = 200  # training samples per task for the diagonal (empirical, per-sample) Fisher

    def __post_init__(self) -> None:
        _positive(self, "lam", "fisher_samples")


@dataclass(frozen=True)
class ContinualConfig:
    """One continual-learning run: methods compared on one task sequence, over one or more seeds."""

    name: str = "continual"  # run folder name under out_dir
    seeds: tuple[int, ...] = (0,)  # each method runs once per seed (permutations, init and batch order); in SEED_RANGE
    out_dir: str = "runs"  # parent folder of run folders (a leading ~ is the home folder)
    methods: tuple[str, ...] = CONTINUAL_METHODS  # baseline (fine-tuning) | ewc | hlop | multitask (joint upper bound)
    tasks: TasksConfig = field(default_factory=TasksConfig)
    model: ContinualModelConfig = field(default_factory=ContinualModelConfig)
    neuron: ContinualNeuronConfig = field(default_factory=ContinualNeuronConfig)
    train: ContinualTrainConfig = field(default_factory=ContinualTrainConfig)
    hlop: HLOPConfig = field(default_factory=HLOPConfig)
    ewc: EWCConfig = field(default_factory=EWCConfig)

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name in (".", ".."):
            raise InvalidValue("name", f"must be a plain folder name, got {self.name!r}")
        _expand_home(self, "out_dir")
        if not self.seeds:
            raise InvalidValue("seeds", "needs at least one seed")
        for i, seed in enumerate(self.seeds):
            _check_seed(seed, f"seeds[{i}]", *SEED_RANGE,
                        "task i of a seed seeds generators with seed * 1000 + i, which torch.manual_seed must take")
        if len(set(self.seeds)) != len(self.seeds):
            raise InvalidValue("seeds", f"repeats a seed: {list(self.seeds)} (each seed is one run of every method; "
                                        "a repeat would count the same run twice in the mean and std)")
        if not self.methods:
            raise InvalidValue("methods", f"needs at least one of {list(CONTINUAL_METHODS)}")
        for m in self.methods:
            if m not in CONTINUAL_METHODS:
                raise InvalidValue("methods", f"unknown method {m!r}; choose from {list(CONTINUAL_METHODS)}")
        if len(set(self.methods)) != len(self.methods):
            raise InvalidValue("methods", f"lists a method twice: {list(self.methods)}")


def ineffective_continual_settings(cfg: ContinualConfig) -> list[str]:
    """The settings of ``cfg`` given a value other than their default that the rest of the config makes have no
    effect, each with why, as :func:`neurosim.config.ineffective_settings` finds them for ``neurosim train``
    (``train.k`` without ``train.method = 'sltt_k'`` …); :func:`neurosim.continual.runner.run_continual` warns about
    them. The ``[hlop]`` and ``[ewc]`` settings of a run without that method are not among them: a config sets them
    for the whole comparison, and ``--methods`` runs a part of it.

    Example:
        >>> ineffective_continual_settings(continual_config_from_dict(
        ...     {"methods": ["baseline"], "train": {"method": "sltt", "loss": "tet", "k": 4}}))
        ["train.k = 4: only train.method = 'sltt_k' draws k steps per batch"]
    """
    return _ineffective(cfg.train, cfg.model, cfg.neuron)


def _paper_schedule(task: int) -> tuple[int, ...]:
    # HLOP's PMNIST script: [80, 200, 100] rows at task 0; later tasks add 70 per layer, 20 fewer from every
    # task whose index is a multiple of 3 on (70, 70, 50, 50, 50, 30, 30, 30, 10 for tasks 1–9).
    if task == 0:
        return (80, 200, 100)
    inc = 70 - 20 * (task // 3)
    return (max(inc, 0),) * 3


def subspace_sizes(hlop: HLOPConfig, task: int, num_layers: int, names: tuple[str, ...] | None = None
                   ) -> tuple[int, ...]:
    """New Hebbian rows per protected layer at task ``task`` (0-based).

    Args:
        names: the protected layers' names, for the error (a recurrent hidden layer adds its feedback weights,
            ``<layer>.recurrent``, to them).

    Raises:
        ConfigError: the schedule has a different number of layers than the model's protected layers.
    """
    sizes = _paper_schedule(task) if hlop.preset == "pmnist_paper" else hlop.sizes[min(task, len(hlop.sizes) - 1)]
    if len(sizes) != num_layers:
        key = "hlop.preset" if hlop.preset != "none" else "hlop.sizes"
        which = f" {list(names)}" if names else ""
        fed_back = [n for n in names or () if n.endswith(".recurrent")]
        why = (f", the feedback weights of the recurrent hidden layers (model.recurrent) among them: "
               f"{', '.join(fed_back)}" if fed_back else "")
        raise ConfigError(f"{key}: gives {len(sizes)} subspace sizes per task but HLOP protects {num_layers} "
                          f"layers{which}{why}; list one size per protected layer (or set hlop.layers)")
    return tuple(int(s) for s in sizes)


def continual_config_from_dict(data: dict[str, Any]) -> ContinualConfig:
    """Build and validate a :class:`ContinualConfig` from nested dicts (e.g. parsed TOML)."""
    train = data.get("train") if isinstance(data, dict) else None
    if isinstance(train, dict) and "activity_penalty_warmup" in train:  # neurosim train's key, not silently dropped
        raise ConfigError("train.activity_penalty_warmup: not taken by neurosim continual, whose penalty applies "
                          "from each task's first batch; leave the key out (or lower train.activity_penalty if the "
                          "network falls silent on task 0)")
    return _build(ContinualConfig, data, "")


def load_continual_config(path: str | Path | None = None, overrides: list[str] | None = None) -> ContinualConfig:
    """Load a continual TOML config (or the defaults when ``path`` is None) and apply ``key.path=value`` overrides.

    Raises:
        ConfigError: unreadable TOML, unknown key, wrong type or impossible value (the message names the key path).
        TypeError: ``overrides`` is not a list of ``"key=value"`` strings (one such string alone, not in a list).
    """
    return load_toml_config(path, overrides, continual_config_from_dict)

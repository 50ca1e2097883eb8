"""Run configuration: frozen dataclasses loaded from TOML and validated before any work starts.

Every section is a frozen dataclass whose defaults explain themselves. :func:`load_config` reads a TOML
file, applies ``--set key.path=value`` overrides, and raises :class:`ConfigError` naming the key path,
what was given and what was expected, for unknown keys, wrong types and impossible values.

Example:
    >>> cfg = config_from_dict({"train": {"epochs": 2}, "data": {"time_steps": 8}})
    >>> cfg.train.epochs, cfg.data.time_steps, cfg.neuron.reset
    (2, 8, 'subtract')
    >>> config_from_dict({"train": {"epochz": 2}})
    Traceback (most recent call last):
    ...
    neurosim.config.ConfigError: train.epochz: unknown key; valid keys: ...
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
import types
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from neurosim.functional import RESET_TIMINGS, RESETS, SURROGATES

__all__ = [
    "AugmentConfig", "ConfigError", "DataConfig", "InvalidValue", "ModelConfig", "NeuronConfig", "RunConfig",
    "TrainConfig", "apply_overrides", "config_from_dict", "config_to_dict", "dumps_toml", "load_config",
]


class ConfigError(ValueError):
    """A configuration value is unknown, of the wrong type, or impossible. The message names the key path."""


class InvalidValue(ConfigError):
    """An impossible value, raised where a config dataclass is built (``AugmentConfig(drop=2.0)``): ``key`` names
    the field, ``message`` says why; the loaders add the section path (``data.augment.drop: ...``)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(key, message)
        self.key, self.message = key, message

    def __str__(self) -> str:  # a config dataclass built from Python: "shift: must be ...", not a tuple's repr
        return f"{self.key}: {self.message}"


def _as_tuple(v):
    return tuple(v) if isinstance(v, list) else v


def _non_negative(obj, *names: str) -> None:
    for n in names:
        v = getattr(obj, n)
        if v is not None and not (math.isfinite(v) and v >= 0):
            raise InvalidValue(n, f"must be a finite number >= 0, got {v!r}")


def _positive(obj, *names: str) -> None:
    for n in names:
        v = getattr(obj, n)
        if v is not None and not (v > 0 and math.isfinite(v)):
            raise InvalidValue(n, f"must be {'positive' if math.isfinite(v) else 'a positive finite number'}, "
                                  f"got {v!r}")


#: the seeds ``torch.manual_seed`` takes: its generators hold 64 bits (a negative seed is read modulo 2**64)
TORCH_SEED_RANGE = (-2**63, 2**64 - 1)


def _check_seed(value: int, key: str, low: int, high: int, why: str) -> None:
    """``value`` must lie in ``[low, high]``, the seeds the run can use (``why`` says which call limits them): one
    outside got as far as that call and failed there (``torch.manual_seed``: "Overflow when unpacking long long")."""
    if not low <= value <= high:
        raise InvalidValue(key, f"must be an integer in [{low}, {high}] ({why}), got {value!r}; pick a seed in range")


def _check_device(obj) -> None:
    """``obj.device`` must name a device: auto, cpu, cuda or cuda:N (whether it exists is checked at run time)."""
    if not (obj.device in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", obj.device)):
        raise InvalidValue("device", f"must be auto, cpu, cuda or cuda:N, got {obj.device!r}")


def _expand_home(obj, *names: str) -> None:
    """Expand a leading ``~`` (``~/runs``, ``~user/data``) in the path-valued fields ``names`` as a shell would
    (pathlib's ``expanduser``): no TOML reader does, and ``out_dir = "~/runs"`` made a folder named ``~`` in the
    working directory. A field may hold one path (None is left alone) or a tuple of names and paths."""
    for n in names:
        v = getattr(obj, n)
        if isinstance(v, tuple):
            object.__setattr__(obj, n, tuple(_expanded(x, f"{n}[{i}]") for i, x in enumerate(v)))
        elif v is not None:
            object.__setattr__(obj, n, _expanded(v, n))


def _expanded(path: str, key: str) -> str:
    if not path.startswith("~"):
        return path
    try:
        return str(Path(path).expanduser())
    except RuntimeError:  # no HOME and no password entry, or ~user names no user
        raise InvalidValue(key, f"{path!r} starts with ~, but that home folder cannot be found (HOME is not set, or no "
                            "such user); give the full path") from None


def _choice(obj, name: str, choices) -> None:
    v = getattr(obj, name)
    if v not in choices:
        raise InvalidValue(name, f"must be one of {list(choices)}, got {v!r}")


@dataclass(frozen=True)
class NeuronConfig:
    """LIF neuron settings shared by every spiking layer of the model."""

    tau_mem_ms: float = 2.0  # membrane time constant; 2 ms at dt 1 ms gives β ≈ 0.61, a fast leak for short T
    dt_ms: float = 1.0  # simulated time per step; only the ratio dt/τ matters for β
    beta: float | None = None  # decay per step; set it to override tau_mem_ms (e.g. snnTorch models)
    v_th: float = 1.0  # firing threshold, in the same units as the input current
    reset: str = "subtract"  # subtract keeps the surplus above threshold (less information lost than zero)
    detach_reset: bool = False  # True stops gradients through the reset (SpikingJelly's option)
    reset_timing: str = "immediate"  # immediate (SLTT/SpikingJelly) | delayed (snnTorch Leaky)
    surrogate: str = "atan"  # snnTorch's and SpikingJelly's common default surrogate
    surrogate_alpha: float | None = None  # None: the surrogate's usual sharpness (atan: 2)
    learn_beta: bool = False  # PLIF-style learnable decay
    learn_threshold: bool = False  # learnable threshold
    # current-based neurons (CUBA: snnTorch's Synaptic, NIR's CubaLIF, Loihi's): a synaptic current decaying with
    # this time constant drives the membrane (neurosim.nn.CubaLIF); None: the input drives the membrane directly.
    # Written to configs only when set
    tau_syn_ms: float | None = field(default=None, metadata={"written_when_set": True})

    def __post_init__(self) -> None:
        _positive(self, "tau_mem_ms", "dt_ms", "v_th", "surrogate_alpha", "tau_syn_ms")
        if self.beta is not None and not 0 <= self.beta <= 1:
            raise InvalidValue("beta", f"must be in [0, 1], got {self.beta!r}")
        _choice(self, "reset", RESETS)
        _choice(self, "reset_timing", RESET_TIMINGS)
        _choice(self, "surrogate", SURROGATES)

    def lif_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :class:`neurosim.nn.LIF`."""
        return dict(tau_mem_ms=self.tau_mem_ms, dt_ms=self.dt_ms, beta=self.beta, v_th=self.v_th,
                    reset=self.reset, detach_reset=self.detach_reset, reset_timing=self.reset_timing,
                    surrogate=self.surrogate, surrogate_alpha=self.surrogate_alpha,
                    learn_beta=self.learn_beta, learn_threshold=self.learn_threshold)


MODEL_KINDS = ("conv", "mlp")
_CONV_ONLY = ("channels", "kernel_size", "padding", "pool", "input_pool", "pool_type")
READOUTS = ("spikes", "membrane")
POOL_TYPES = ("max", "sum", "avg")


@dataclass(frozen=True)
class ModelConfig:
    """Network architecture, built by :func:`neurosim.nn.build_model`."""

    kind: str = "conv"  # conv (event cameras) | mlp (audio spikes, flattened inputs)
    input_shape: tuple[int, ...] = (2, 34, 34)  # per-sample input (C, H, W) or (N,); N-MNIST-sized default
    num_classes: int = 10  # output neurons
    channels: tuple[int, ...] = (16, 32)  # conv: output channels per conv block
    kernel_size: int = 5  # conv: square kernel size
    padding: int = 0  # conv: zero padding per side (0 matches the classic N-MNIST conv SNN)
    pool: int = 2  # conv: pool size after each conv block (1 = none); its kind: pool_type
    input_pool: int = 1  # conv: sum-pool the input by this factor first (e.g. 4 for 128×128 DVS-Gesture)
    # conv: the pooling after each conv block: max | sum (Speck/DYNAP-CNN pools only by summing; NIR's SumPool2d)
    # | avg. Written to configs only when set
    pool_type: str = field(default="max", metadata={"written_when_set": True})
    hidden: tuple[int, ...] = ()  # fully connected hidden layer sizes before the output layer
    batch_norm: bool = False  # BatchNorm after each conv / hidden linear layer
    dropout: float = 0.0  # dropout before each hidden/output linear layer (one mask for all steps)
    readout: str = "spikes"  # spikes: output LIF layer | membrane: non-spiking leaky integrator
    readout_beta: float = 0.9  # decay of the membrane readout; 0: o_t = W·s_t, a plain linear classifier per step
    # recurrent hidden layers: each hidden layer's spikes feed back to it at the next step through a dense N × N
    # matrix (neurosim.nn.RLIF; snnTorch's RLeaky). Needs hidden layers. Written to configs only when set
    recurrent: bool = field(default=False, metadata={"written_when_set": True})

    def __post_init__(self) -> None:
        _choice(self, "kind", MODEL_KINDS)
        _choice(self, "readout", READOUTS)
        _choice(self, "pool_type", POOL_TYPES)
        if not self.input_shape or any(int(d) <= 0 for d in self.input_shape):
            raise InvalidValue("input_shape", f"must be a non-empty list of positive sizes, got {self.input_shape!r}")
        if self.kind == "conv" and len(self.input_shape) != 3:
            raise InvalidValue("input_shape", f"conv models need (C, H, W), got {self.input_shape!r}")
        if self.kind == "mlp":
            # An mlp flattens its input: conv settings would be silently ignored (input_pool = 4 would not pool).
            ignored = [f.name for f in dataclasses.fields(self)
                       if f.name in _CONV_ONLY and _as_tuple(getattr(self, f.name)) != f.default]
            if ignored:
                also = f" (as do {', '.join('model.' + n for n in ignored[1:])})" if len(ignored) > 1 else ""
                raise InvalidValue(ignored[0], f"only applies to kind = \"conv\"{also}; an mlp flattens its input: "
                                           "remove it or use kind = \"conv\"")
        for name in ("channels", "hidden"):
            if any(int(c) <= 0 for c in getattr(self, name)):
                raise InvalidValue(name, f"sizes must be positive, got {getattr(self, name)!r}")
        _positive(self, "num_classes", "kernel_size", "pool", "input_pool")
        if self.padding < 0:
            raise InvalidValue("padding", f"must be >= 0, got {self.padding!r}")
        if not 0 <= self.dropout < 1:
            raise InvalidValue("dropout", f"must be in [0, 1), got {self.dropout!r}")
        if not 0 <= self.readout_beta <= 1:
            raise InvalidValue("readout_beta", f"must be in [0, 1], got {self.readout_beta!r}")
        if self.recurrent and not self.hidden:
            raise InvalidValue("recurrent", "makes the hidden layers recurrent, and there are none: give model.hidden "
                                            "(e.g. [256]) or leave recurrent off")


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation of the training frames, drawn anew for every sample and epoch (:mod:`neurosim.data.augment`);
    all off by default. The test split is never augmented."""

    shift: int = 0  # translate each sample by up to this many pixels in x and in y (events off the sensor are lost)
    flip: bool = False  # mirror left-right with probability 1/2 (not for classes that depend on the side: gestures)
    drop: float = 0.0  # remove each event with this probability (EventDrop; Binomial thinning of the frames' counts)
    cutout: int = 0  # zero a square of this side at a random centre, at every time step

    def __post_init__(self) -> None:  # (a config file's values are type-checked before; these come from Python)
        for name in ("shift", "cutout"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise InvalidValue(name, f"must be a whole number of pixels >= 0 (0: off), got {v!r}")
        if not isinstance(self.flip, bool):
            raise InvalidValue("flip", f"must be true or false, got {self.flip!r}")
        if isinstance(self.drop, bool) or not isinstance(self.drop, (int, float)) or not 0 <= self.drop < 1:
            raise InvalidValue("drop", f"must be a probability in [0, 1) (0: off), got {self.drop!r}")

    @property
    def active(self) -> bool:
        return bool(self.shift or self.flip or self.drop or self.cutout)


@dataclass(frozen=True)
class DataConfig:
    """Which data, and how events become frames."""

    # name in the dataset registry (`neurosim datasets list`), or folder:PATH, recordings of one's own
    # (neurosim.data.folder; a relative PATH is taken from the working directory and stored absolute)
    dataset: str = "event_digits"
    time_steps: int = 10  # frames per sample (ToFrame n_time_bins); T of the network
    batch_size: int = 32  # samples per optimizer step and process (under torchrun a step averages batch_size × processes)
    root: str | None = None  # where datasets live (tonic's folders; event_digits' generated file); None: the cache
    train_subset: int | None = None  # use only the first N training samples (quick runs, tests)
    test_subset: int | None = None  # use only the first N test samples
    # unused: every sample becomes frames once, cached on disk, mapped into memory and batched in this process
    # (no DataLoader workers to start); a value > 0 warns. Kept so that configs and checkpoints which set it still load.
    num_workers: int = 0
    # a fraction of the training split held out for validation (stratified; the same samples for every seed): each
    # epoch reports val_loss/val_acc and the run keeps the best epoch's weights in best.pt; 0: none, and the
    # training split is all trained on. Written to configs and checkpoints only when set (as augment, below)
    val_split: float = field(default=0.0, metadata={"written_when_set": True})
    # [data.augment]: training frames only. Written to configs and checkpoints only when on, so that a run without it
    # stays readable by neurosim versions before it (they refuse a key they do not know)
    augment: AugmentConfig = field(default_factory=AugmentConfig, metadata={"written_when_set": True})

    def __post_init__(self) -> None:
        _expand_home(self, "root")
        if self.root is not None:  # kept absolute, as a folder: dataset is: the run's checkpoint finds its data from
            object.__setattr__(self, "root", str(Path(self.root).resolve()))  # any working directory
        if self.dataset.startswith("folder:"):  # recordings of one's own: kept absolute, so that the run's config and
            folder = _expanded(self.dataset[len("folder:"):], "dataset")  # checkpoint find them from anywhere
            object.__setattr__(self, "dataset", f"folder:{Path(folder).resolve()}")
        _positive(self, "time_steps", "batch_size", "train_subset", "test_subset")
        if not 0 <= self.val_split < 1:
            raise InvalidValue("val_split", f"must be a fraction in [0, 1) of the training split (0: no validation), "
                                            f"got {self.val_split!r}")
        if self.num_workers < 0:
            raise InvalidValue("num_workers", f"must be >= 0, got {self.num_workers!r}")
        if self.num_workers > 0:
            warnings.warn(f"data.num_workers = {self.num_workers} has no effect: neurosim train, evaluate and demo "
                          "(make_loaders) convert every sample to frames once, map the cached frames into memory and batch them in "
                          "this process, so they start no DataLoader workers; remove the setting (or set it to 0). "
                          "For worker processes, give the dataset to your own torch DataLoader(num_workers=...)",
                          UserWarning, stacklevel=3)  # 3: the caller of DataConfig(...)


METHODS = ("bptt", "sltt", "sltt_k")
LOSSES = ("rate_ce", "tet", "sltt_mix", "max_ce", "last_ce")  # neurosim.training.losses.LOSS_NAMES
PER_STEP_LOSSES = ("tet", "sltt_mix")  # those SLTT and SLTT-K can take one step at a time
PENALTY_ON = ("synops", "spikes")  # neurosim.training.regularize.PENALTY_KINDS
# why each other loss cannot be taken one step at a time (the error train.method = 'sltt' | 'sltt_k' gives)
_NOT_PER_STEP = {
    "rate_ce": "the cross-entropy of the time-averaged output is not a sum of per-step terms",
    "max_ce": "the maximum over time is known only after the last step, and SLTT backpropagates each step as it runs",
    "last_ce": "with the temporal gradient cut, the last step's loss trains the weights on the last step's input "
               "only, so nothing the network should have held from earlier steps is learned",
}
LOSS_TARGETS = ("ones", "onehot")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULERS = ("cosine", "none")


@dataclass(frozen=True)
class TrainConfig:
    """How the network is trained."""

    method: str = "bptt"  # bptt (full graph through time) | sltt | sltt_k
    k: int = 2  # sltt_k: time steps per batch that get a backward pass
    time_chunk: int | None = None  # steps per call; None: the method's (bptt ~128 samples on CPU, sltt 1, sltt_k auto)
    epochs: int = 5  # passes over the training split
    # rate_ce: CE on time-averaged output | tet: mean per-step CE | sltt_mix | max_ce: CE on the maximum over time
    # (SHD's membrane read-out) | last_ce: CE on the last step (read at the end); each predicts by what it trains
    loss: str = "rate_ce"
    loss_lambda: float = 0.05  # sltt_mix: weight of the MSE term, (1−λ)·CE + λ·MSE (SLTT paper: 0.05)
    loss_target: str = "ones"  # sltt_mix: MSE towards ones (the official code's φ = 1) | onehot (its -mse_n_reg)
    optimizer: str = "adam"  # adam | adamw | sgd
    lr: float = 2e-3  # learning rate
    momentum: float = 0.9  # sgd momentum
    # L2 penalty (adamw: decoupled decay); None: 0.01 for adamw (as torch), else 0 — resolved when the config is
    # built, so dataclasses.replace(cfg, optimizer="adamw") keeps the resolved value unless weight_decay=None is given
    weight_decay: float | None = None
    scheduler: str = "cosine"  # cosine annealing to 0 over all epochs | none
    grad_clip: float | None = 1.0  # max gradient norm; "none" disables clipping
    device: str = "auto"  # auto (cuda if present) | cpu | cuda | cuda:N
    threads: int | None = None  # torch CPU threads; None leaves torch's choice
    checkpoint_every: int = 1  # epochs between checkpoints
    # early stopping: end training once this many epochs in a row bring no better validation accuracy than the best
    # (best.pt); needs a validation split (data.val_split, or fit(val_loader=...)). None: train all epochs
    patience: int | None = None
    # λ of an activity penalty added to the loss (neurosim.training.regularize): the synaptic operations the spikes
    # cause (activity_penalty_on = "synops", energy on event-driven chips) or the firing rate ("spikes"), per step
    # and sample as a fraction of the most possible. 0: none
    activity_penalty: float = field(default=0.0, metadata={"written_when_set": True})
    activity_penalty_on: str = field(default="synops", metadata={"written_when_set": True})
    # epochs over which the penalty rises linearly from 0 (epoch 1 trains without it), so that the read-out learns
    # to fire before activity is pushed down; 0: the whole penalty from the start
    activity_penalty_warmup: int = field(default=0, metadata={"written_when_set": True})

    def __post_init__(self) -> None:
        _choice(self, "method", METHODS)
        _choice(self, "activity_penalty_on", PENALTY_ON)
        _non_negative(self, "activity_penalty", "activity_penalty_warmup")
        _choice(self, "loss", LOSSES)
        _choice(self, "optimizer", OPTIMIZERS)
        _choice(self, "scheduler", SCHEDULERS)
        _positive(self, "k", "time_chunk", "epochs", "lr", "grad_clip", "threads", "checkpoint_every", "patience")
        if not 0 <= self.loss_lambda <= 1:
            raise InvalidValue("loss_lambda", f"must be in [0, 1], got {self.loss_lambda!r}")
        _choice(self, "loss_target", LOSS_TARGETS)
        if self.weight_decay is None:  # AdamW without decay would be Adam: take torch's default as PyTorch users expect
            object.__setattr__(self, "weight_decay", 0.01 if self.optimizer == "adamw" else 0.0)
        _non_negative(self, "weight_decay", "momentum")
        if self.method in ("sltt", "sltt_k") and self.loss not in PER_STEP_LOSSES:
            raise InvalidValue("loss", f"method {self.method!r} computes the loss one step at a time and needs a "
                                       f"per-step loss, which {self.loss!r} is not ({_NOT_PER_STEP[self.loss]}); "
                                       "set train.loss = 'tet' or 'sltt_mix' (the paper's), or keep "
                                       f"train.loss = {self.loss!r} with train.method = 'bptt'")
        _check_device(self)


@dataclass(frozen=True)
class RunConfig:
    """One training run: where results go and the sections above."""

    name: str = "run"  # run folder name under out_dir
    seed: int = 0  # seeds torch, numpy and python's random; in [-2**63, 2**64 - 1], the seeds torch takes
    out_dir: str = "runs"  # parent folder of run folders (a leading ~ is the home folder)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    neuron: NeuronConfig = field(default_factory=NeuronConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name in (".", ".."):
            raise InvalidValue("name", f"must be a plain folder name, got {self.name!r}")
        _expand_home(self, "out_dir")

        _check_seed(self.seed, "seed", *TORCH_SEED_RANGE, "-2**63 to 2**64 - 1: the seeds torch.manual_seed takes")


def ineffective_settings(cfg: RunConfig) -> list[str]:
    """The settings of ``cfg`` given a value other than their default that the rest of the config makes have no
    effect (``train.k`` without ``train.method = 'sltt_k'`` …), each with why: ``neurosim train`` warns about them
    (a config that sets them is kept loadable: a checkpoint's config may hold one after its method was changed).

    Example:
        >>> ineffective_settings(config_from_dict({"train": {"method": "sltt", "loss": "tet", "k": 4}}))
        ["train.k = 4: only train.method = 'sltt_k' draws k steps per batch"]
    """
    return _ineffective(cfg.train, cfg.model, cfg.neuron)


def _ineffective(t, m, n) -> list[str]:
    """:func:`ineffective_settings` of the sections ``train``, ``model`` and ``neuron`` (their own classes' defaults):
    a continual config's too (:func:`neurosim.continual.config.ineffective_continual_settings`), whose train section
    has no ``loss_target`` or ``activity_penalty_warmup``."""
    default = {f"{sec}.{f.name}": f.default for sec, part in (("train", t), ("model", m), ("neuron", n))
               for f in dataclasses.fields(part)}
    checks = [
        ("train.k", t.k, t.method != "sltt_k", "only train.method = 'sltt_k' draws k steps per batch"),
        ("train.loss_lambda", t.loss_lambda, t.loss != "sltt_mix", "only train.loss = 'sltt_mix' has an MSE term"),
        ("train.loss_target", getattr(t, "loss_target", None), t.loss != "sltt_mix",
         "only train.loss = 'sltt_mix' has an MSE target"),
        ("train.momentum", t.momentum, t.optimizer != "sgd", f"train.optimizer = {t.optimizer!r} takes no momentum"),
        ("train.activity_penalty_on", t.activity_penalty_on, t.activity_penalty == 0,
         "train.activity_penalty is 0 (no penalty)"),
        ("train.activity_penalty_warmup", getattr(t, "activity_penalty_warmup", None), t.activity_penalty == 0,
         "train.activity_penalty is 0 (no penalty)"),
        ("model.readout_beta", m.readout_beta, m.readout != "membrane",
         "only model.readout = 'membrane' has a decaying read-out"),
        ("neuron.tau_mem_ms", n.tau_mem_ms, n.beta is not None, "neuron.beta is set, and replaces it"),
    ]
    return [f"{key} = {_shown(value).split(' (')[0]}: {why}" for key, value, unused, why in checks
            if key in default and unused and value != default[key]]


def settings_differ(keys: list[str]) -> str:
    """``"train.lr differs"`` or ``"train.lr, train.epochs differ"``: the settings named in an error."""
    return f"{', '.join(keys)} {'differs' if len(keys) == 1 else 'differ'}"


# --------------------------------------------------------------------------------------- loading


def _type_name(tp) -> str:
    return getattr(tp, "__name__", str(tp)).replace("NoneType", "None")


#: what a key of each type expects, as error messages say it
_EXPECTED = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
_EXPECTED_ITEMS = {int: "integers", float: "numbers", bool: "true or false values", str: "strings"}
#: whole numbers below this size are exact as floats (2**53 + 1 reads as 2**53): ``3.0`` and ``1e3`` are read as 3 and 1000
_EXACT_FLOAT_INT = 2**53


def _shown(value: Any) -> str:
    """``value`` as a config file spells it (TOML: ``true``, ``{a = 1}``; strings quoted), and what it is."""
    if value is None:
        return "None"
    kinds = ((bool, "a boolean"), (int, "an integer"), (float, "a float"), (str, "a string"), (dict, "a table"),
             ((list, tuple), "a list"))
    kind = next((k for t, k in kinds if isinstance(value, t)), type(value).__name__)
    return f"{_spelled(value)} ({kind})"


def _spelled(value: Any) -> str:
    if isinstance(value, _SetValue):
        value = value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_spelled(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_spelled(v) for v in value) + "]"
    return repr(value)


def _wrong_type(path: str, expected: str, value: Any, hint: str = "") -> ConfigError:
    """The error for a value of the wrong type: what the key expects, what it got, and a hint on what to write; it
    keeps ``(path, expected, hint)`` so that a union (``int | None``) can join its members' expectations."""
    error = ConfigError(f"{path}: expected {expected}, got {_shown(value)}{hint}")
    error.wrong_type = (path, expected, hint)
    return error


def _int_hint(value: Any) -> str:
    """What to write instead of ``value`` for an integer key."""
    if isinstance(value, float) and math.isfinite(value):
        if value.is_integer():  # beyond 2**53 a float is not exact: 12345678901234567890.0 is ...67168
            return "; a float this large is not exact: write the integer's digits, without a decimal point or exponent"
        return f"; write a whole number: {math.floor(value)} or {math.ceil(value)}"
    if isinstance(value, float):
        return "; write a whole number"
    return ""


def _unquoted_hint(value: Any, tp) -> str:
    """A quoted value the key would take unquoted (``epochs = "3"`` in a file): say to drop the quotes."""
    if not isinstance(value, str) or tp is str or "\n" in value:
        return ""
    try:
        bare = tomllib.loads(f"v = {value.strip()}")["v"]
        _coerce(bare, tp, "")
    except (tomllib.TOMLDecodeError, ConfigError):
        return ""
    return f"; write it without quotes: {value.strip()}"


def _unquoted_list_hint(value: Any, item_tp, path: str) -> str:
    """A list of bare words (``--set methods=[hlop, ewc]``, which TOML reads as one string): say to quote each one."""
    if item_tp is not str or not isinstance(value, str):
        return ""
    text = value.strip()
    if not (text.startswith("[") and text.endswith("]")):
        return ""
    words = [w.strip().strip("'\"") for w in text[1:-1].split(",") if w.strip()]
    quoted = "[" + ", ".join(f'"{w}"' for w in words) + "]"
    return (f"; TOML quotes each string in a list: {quoted} (on a command line inside single quotes, "
            f"--set '{path}={quoted}')")


def _coerce(value: Any, tp, path: str) -> Any:
    """Check ``value`` against the annotation ``tp``; convert lists to tuples and ints to floats.

    TOML has no null: for a key that may be None, the string ``"none"`` (any case) stands for it, in a file as in
    ``--set`` (a folder named none is ``./none``); :func:`config_to_dict` writes None so where it is not the default.
    An integer key takes a float that is a whole number (``epochs = 3.0``, ``batch_size = 1e3``; below 2**53, where
    floats are exact), as pydantic does and as configs written by sweep tools need; ``3.5`` is refused.
    """
    if isinstance(value, _SetValue):
        if isinstance(value.value, dict) and dataclasses.is_dataclass(tp):
            raise ConfigError(f"{path}: is a table; setting it whole would put its other keys back to their "
                              f"defaults; set the keys one by one: --set {_keys_one_by_one(path, value.value)}")
        value = value.read_as(tp)
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if type(None) in args and (value is None or (isinstance(value, str) and value.lower() == "none")):
            return None
        members = [a for a in args if a is not type(None)]
        errors = []
        for arg in members:
            try:
                return _coerce(value, arg, path)
            except ConfigError as e:
                errors.append(e)
        # (path, expected, hint) of each member that refused the value's type (None: it failed deeper, or otherwise)
        wrong = [w if (w := getattr(e, "wrong_type", None)) and w[0] == path else None for e in errors]
        if len(errors) == 1 and not wrong[0]:
            raise errors[0]  # not the type of this key's value: e.g. a wrong item of a list, named by its index
        expected = " or ".join(w[1] if w else _type_name(a) for w, a in zip(wrong, members))
        if type(None) in args:
            expected += ' or "none"'
        raise _wrong_type(path, expected, value, next((w[2] for w in wrong if w and w[2]), ""))
    if origin is tuple:
        (item_tp, *_rest) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            items = "lists" if typing.get_origin(item_tp) is tuple else _EXPECTED_ITEMS[item_tp]
            one_item = isinstance(value, (int, float)) and not isinstance(value, bool) and items != "lists"
            raise _wrong_type(path, f"a list of {items}", value,
                             f"; write it in brackets: [{value!r}]" if one_item
                              else _unquoted_list_hint(value, item_tp, path))
        return tuple(_coerce(v, item_tp, f"{path}[{i}]") for i, v in enumerate(value))
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _wrong_type(path, _EXPECTED[float], value, _unquoted_hint(value, tp))
        return float(value)
    if tp is int:
        if isinstance(value, float) and value.is_integer() and abs(value) < _EXACT_FLOAT_INT:
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong_type(path, _EXPECTED[int], value, _int_hint(value) or _unquoted_hint(value, tp))
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise _wrong_type(path, _EXPECTED[bool], value, _unquoted_hint(value, tp))
        return value
    if tp is str:
        if not isinstance(value, str):
            raise _wrong_type(path, _EXPECTED[str], value)
        return value
    raise ConfigError(f"{path}: unsupported annotation {tp!r}")  # a programming error in this module


def _build(cls, data: Any, path: str):
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"{path or '<root>'}: expected a table of keys, got {_shown(data)}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        key_path = f"{path}.{key}" if path else key
        if key not in hints:
            raise ConfigError(f"{key_path}: unknown key; valid keys: {', '.join(names)}")
        kwargs[key] = _coerce(value, hints[key], key_path)
    try:
        return cls(**kwargs)
    except InvalidValue as e:
        key_path = f"{path}.{e.key}" if path else e.key
        raise ConfigError(f"{key_path}: {e.message}") from None


def config_from_dict(data: dict[str, Any]) -> RunConfig:
    """Build and validate a :class:`RunConfig` from nested dicts (e.g. parsed TOML)."""
    return _build(RunConfig, data, "")


def config_from_checkpoint(data: dict[str, Any]) -> RunConfig:
    """The run config a checkpoint stored (:func:`config_from_dict`), also from versions before a check was added:
    an ``mlp`` model's conv-only settings, which those accepted and ignored, are dropped; so is ``data.num_workers``
    (it never had an effect, and warning about it on every load of a file would ask for an edit nobody can make)."""
    model = data.get("model")
    if isinstance(model, dict) and model.get("kind") == "mlp":
        data = {**data, "model": {k: v for k, v in model.items() if k not in _CONV_ONLY}}
    if isinstance(data.get("data"), dict):
        data = {**data, "data": {k: v for k, v in data["data"].items() if k != "num_workers"}}
    return config_from_dict(data)


def config_to_dict(cfg) -> dict[str, Any]:
    """A plain nested dict (tuples as lists) that :func:`config_from_dict` reads back.

    TOML has no null: a None is left out where it is the default, and written as ``"none"`` where it is not (e.g.
    ``train.grad_clip = "none"``: no clipping), which the loaders read back as None. Keys added in a later version
    (``data.val_split``, the ``data.augment`` table) are left out while at their defaults (older versions refuse
    them).
    """
    out = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if f.metadata.get("written_when_set") and v == (f.default_factory() if f.default is dataclasses.MISSING
                                                         else f.default):
            continue
        if dataclasses.is_dataclass(v):
            out[f.name] = config_to_dict(v)
        elif v is not None:
            out[f.name] = list(v) if isinstance(v, tuple) else v
        elif f.default is not None and f.default is not dataclasses.MISSING:
            out[f.name] = "none"
    return out


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare word: treat as a string (`--set train.method=sltt`)


#: decimal numbers that Python reads but TOML does not: ``.001``, ``1.``, ``-.5e3``
_BARE_DECIMAL = re.compile(r"[+-]?(\d+\.\d*|\.\d+)([eE][+-]?\d+)?")


class _SetValue:
    """A ``--set`` value as typed and as TOML reads it; the key's annotation decides which one counts
    (:meth:`read_as`), so that ``--set name=2024`` names a run "2024" rather than failing as an integer."""

    __slots__ = ("text", "value")

    def __init__(self, text: str) -> None:
        self.text, self.value = text, _parse_value(text)

    def __repr__(self) -> str:  # error messages show what TOML made of it
        return repr(self.value)

    def read_as(self, tp) -> Any:
        """The value for a key annotated ``tp``: a key that takes a string takes the text as typed where TOML read
        a number, a bool or a date (``2024``, ``true``, ``1e3``); one that takes a number reads ``.001`` and ``1.``."""
        args = typing.get_args(tp) if typing.get_origin(tp) in (Union, types.UnionType) else (tp,)
        if isinstance(self.value, str):
            number = (float in args or int in args) and _BARE_DECIMAL.fullmatch(self.text)
            return float(self.text) if number else self.value  # (an int key takes 1. and refuses .5 as a float)
        if str in args and not isinstance(self.value, (list, dict)):
            return self.text
        return self.value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides (values in TOML syntax; bare words are strings) to nested dicts.

    A whole table (``train={epochs=1}``) is refused: it would replace every key of that section. (Without the
    config's types this refuses any table value; :func:`load_config` tells a section from a key that takes one value
    and says what that key expects.) ``overrides`` is a list of strings: a bare ``"key=value"`` string is a
    TypeError.
    """
    return _apply_overrides(data, overrides, _parse_value)


def _override_list(overrides: Any) -> list[str]:
    """``overrides`` as a list, checked to be ``key=value`` strings in a list (or tuple, or other iterable): a bare
    string would be read character by character ("override 'r'"), so it is refused, as is an item not a string."""
    if isinstance(overrides, (str, bytes)):
        raise TypeError(f"overrides must be a list of 'key=value' strings, got the {type(overrides).__name__} "
                        f"{overrides!r}; write [{overrides!r}]")
    try:
        items = list(overrides)
    except TypeError:
        raise TypeError(f"overrides must be a list of 'key=value' strings, got {type(overrides).__name__} "
                        f"{overrides!r}") from None
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"overrides must be a list of 'key=value' strings, got the {type(item).__name__} "
                            f"{item!r} among them")
    return items


def _apply_overrides(data: dict[str, Any], overrides: list[str], parse) -> dict[str, Any]:
    import copy

    data = copy.deepcopy(data)
    for item in _override_list(overrides):
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key.path=value, e.g. train.epochs=3")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(p.strip() for p in parts):
            raise ConfigError(f"override {item!r}: the key path {key.strip()!r} has an empty part; expected "
                              "key.path=value, e.g. train.epochs=3")
        node = data
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {p} is not a table")
        value = parse(text.strip())
        if isinstance(value, dict):  # (a _SetValue's table is checked against the key's type when the config is built)
            name = ".".join(p.strip() for p in parts)
            raise ConfigError(f"override {item!r}: sets the whole table {name}, which would put its other keys back "
                              f"to their defaults; set the keys one by one: --set {_keys_one_by_one(name, value)}")
        node[parts[-1]] = value
    return data


def _keys_one_by_one(name: str, table: dict[str, Any]) -> str:
    """The ``--set`` arguments that set ``table``'s keys in the table ``name`` one by one."""
    example = " ".join(f"{name}.{k}={_toml_value(v)}" for k, v in table.items() if not isinstance(v, dict))
    return example or f"{name}.KEY=VALUE"


#: the configs that come with neurosim (``neurosim/configs/*.toml``), which the loaders also take by name
SHIPPED_CONFIGS = Path(__file__).resolve().parent / "configs"


def shipped_config(name: str) -> Path | None:
    """The config that comes with neurosim under ``name`` (``quickstart`` or ``quickstart.toml``), or None."""
    file = SHIPPED_CONFIGS / (name if name.endswith(".toml") else f"{name}.toml")
    return file if "/" not in name and file.is_file() else None


def config_command(keys) -> str | None:
    """The command whose config has these top-level ``keys`` (of a TOML file): ``"continual"``, ``"lsm"`` or
    ``"train"``; None when they do not tell (e.g. only ``name`` and ``out_dir``, which every config has)."""
    keys = set(keys)
    if keys & {"tasks", "seeds", "methods", "hlop", "ewc"}:
        return "continual"
    if keys & {"reservoir", "readout", "energy"}:
        return "lsm"
    if keys & {"model", "neuron", "train"} and keys & {"data", "seed"}:  # continual has no data/seed, lsm no model
        return "train"
    return None


def load_toml_config(path: str | Path | None, overrides: list[str] | None, from_dict):
    """``from_dict`` of the TOML file at ``path`` (nothing: the defaults) with ``key.path=value`` overrides applied.

    An error is blamed on what caused it: ``--set KEY=VALUE: ...`` when an override set the key at fault, else
    ``FILE: ...`` (a shipped config is then not wrong when a user's override is).

    Raises:
        ConfigError: missing or unreadable file, unknown key, wrong type or impossible value (naming the key path).
        TypeError: ``overrides`` is not a list of ``"key=value"`` strings (one such string alone, not in a list).
    """
    overrides = _override_list(overrides if overrides is not None else [])  # before the file is read
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file() and path.parent == Path(".") and shipped_config(path.name):
            path = shipped_config(path.name)  # a shipped config's name, as the command line takes it ("quickstart")
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist (nor is it the name of a shipped config: "
                              f"{', '.join(sorted(f.stem for f in SHIPPED_CONFIGS.glob('*.toml')))})")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: not valid TOML: {e}") from None
    data = _apply_overrides(data, overrides, _SetValue)  # a malformed override names itself
    try:
        return from_dict(data)
    except ConfigError as e:
        at_fault = str(e).split(":", 1)[0].split("[", 1)[0]  # "train.lr: expected ..." → train.lr
        for item in reversed(overrides):
            key = item.split("=", 1)[0].strip()
            if at_fault == key or at_fault.startswith(key + ".") or key.startswith(at_fault + "."):
                raise ConfigError(f"--set {item}: {e}") from None
        raise ConfigError(f"{path}: {e}" if path is not None else str(e)) from None


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Load a TOML run config (or the defaults when ``path`` is None) and apply overrides. ``path`` may also be a
    shipped config's name (``load_config("quickstart")``, as ``neurosim train --config quickstart``).

    Raises:
        ConfigError: unreadable TOML, unknown key, wrong type or impossible value (message names the key path).
        TypeError: ``overrides`` is not a list of ``"key=value"`` strings (``["train.epochs=1"]``, not
            ``"train.epochs=1"``).
    """
    return load_toml_config(path, overrides, config_from_dict)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return repr(v)


def dumps_toml(cfg: RunConfig) -> str:
    """Serialise a config to TOML text that :func:`load_config` reads back to an equal config."""
    lines: list[str] = []

    def table(d: dict, path: str) -> None:
        if path:
            lines.append(f"\n[{path}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in d.items() if not isinstance(v, dict))
        for k, v in d.items():
            if isinstance(v, dict):  # after the plain keys: in TOML a key under a table header belongs to it
                table(v, f"{path}.{k}" if path else k)

    table(config_to_dict(cfg), "")
    return "\n".join(lines) + "\n"

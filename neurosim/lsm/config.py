"""Configuration of an RRAM liquid-state-machine run: frozen dataclasses loaded from TOML.

Unknown keys, wrong types and impossible values are :class:`neurosim.config.ConfigError` naming the key path,
as for training configs; ``--set key.path=value`` overrides work the same way.

Example:
    >>> cfg = lsm_config_from_dict({"reservoir": {"neurons": 64}, "readout": {"kind": "mlp"}})
    >>> cfg.reservoir.neurons, cfg.reservoir.beta, cfg.readout.kind
    (64, 0.9, 'mlp')
    >>> lsm_config_from_dict({"readout": {"kind": "svm"}})
    Traceback (most recent call last):
    ...
    neurosim.config.ConfigError: readout.kind: must be one of ['linear', 'mlp', 'contrastive'], got 'svm'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neurosim.config import (
    TORCH_SEED_RANGE, _build, _check_seed, _expand_home, InvalidValue, _non_negative, _positive, load_toml_config,
)

__all__ = ["EnergyConfig", "LSMConfig", "LSMDataConfig", "ReadoutConfig", "ReservoirConfig", "load_lsm_config",
           "lsm_config_from_dict", "READOUTS"]

READOUTS = ("linear", "mlp", "contrastive")


@dataclass(frozen=True)
class LSMDataConfig:
    """Which events, and how they become the reservoir's input spikes."""

    dataset: str = "event_digits"  # name in the dataset registry (`neurosim datasets list`)
    time_steps: int = 50  # T: frames per sample (the paper's T = 50)
    input_size: int = 16  # frames are centre-cropped to a multiple of this and sum-pooled to input_size²
    merge_polarity: bool = True  # ON + OFF into one channel: 16 x 16 = 256 inputs, as in the paper
    root: str | None = None  # where datasets live (tonic's folders; event_digits' generated file); None: the cache
    train_subset: int | None = None  # only the first N training samples (quick runs, tests)
    test_subset: int | None = None  # only the first N test samples

    def __post_init__(self) -> None:
        _expand_home(self, "root")
        _positive(self, "time_steps", "input_size", "train_subset", "test_subset")


@dataclass(frozen=True)
class ReservoirConfig:
    """The fixed random spiking reservoir and the RRAM cells its weights come from."""

    neurons: int = 256  # reservoir size (the paper: 256)
    beta: float = 0.9  # membrane decay per step (the paper: 0.9)
    v_th: float = 5.0  # firing threshold in units of one ON-cell weight (the paper: 5)
    input_scale: float = 1.0  # read amplitude of input rows (multiplies the input weights); at most 1 with the ADC
    recurrent_scale: float = 4.0  # recurrent rows read at recurrent_scale / sqrt(neurons): fading memory, not chaos;
    # that amplitude is at most 1 with the ADC (full read voltage): recurrent_scale <= sqrt(neurons)
    p_switch: float = 0.5  # probability that a SET pulse switches a cell (stochastic switching)
    sigma_log: float = 0.3  # log-normal spread of a cell's conductance after the pulse
    on_off_ratio: float = 17.0  # G_on / G_off (NeuroSim V1.4: 1.7 MΩ / 100 kΩ)
    read_noise_rel: float = 0.02  # per-read conductance noise on the chip (2 %)
    adc_bits: int | None = 4  # column ADC on the chip: 4 bits as in the rram_lsm40nm spec its energy is charged
    # on (SpikeSim's ADC); None reads exact currents
    feature_bins: int = 5  # readout features: spike rates of every neuron in this many time windows

    def __post_init__(self) -> None:
        _positive(self, "neurons", "v_th", "input_scale", "on_off_ratio", "feature_bins")
        if not 0 < self.beta <= 1:
            raise InvalidValue("beta", f"must be in (0, 1], got {self.beta!r}")
        if not 0 < self.p_switch < 1:
            raise InvalidValue("p_switch", f"must be in (0, 1), got {self.p_switch!r}")
        _non_negative(self, "recurrent_scale", "sigma_log", "read_noise_rel")
        if self.on_off_ratio <= 1:
            raise InvalidValue("on_off_ratio", f"must be > 1, got {self.on_off_ratio!r}")
        if self.adc_bits is not None and self.adc_bits < 1:
            raise InvalidValue("adc_bits", f"must be >= 1 or absent, got {self.adc_bits!r}")
        from neurosim.hardware.nonideal import MAX_ADC_BITS  # the chip's reads are NonIdealConfig's: its limits

        if self.adc_bits is not None and self.adc_bits > MAX_ADC_BITS:
            raise InvalidValue("adc_bits", f"at most {MAX_ADC_BITS} bits (float32 currents resolve no finer steps), "
                                           f"got {self.adc_bits!r}; none reads the currents exactly")
        if self.read_noise_rel > 1:
            raise InvalidValue("read_noise_rel", f"must be a fraction of G in [0, 1] (0.05 is 5 %), got "
                                                 f"{self.read_noise_rel!r}")


@dataclass(frozen=True)
class ReadoutConfig:
    """The trained digital readout on the reservoir's features."""

    kind: str = "linear"  # linear | mlp (one hidden ReLU layer) | contrastive (SupCon embedding + class prototypes)
    hidden: int = 128  # mlp / contrastive: hidden units
    embedding: int = 64  # contrastive: embedding size
    epochs: int = 300  # full-batch optimiser steps (features are small: 1,438 x 1,280 for event digits)
    lr: float = 0.01  # Adam learning rate
    weight_decay: float = 1e-4  # L2 penalty
    temperature: float = 0.1  # contrastive: softmax temperature of the supervised contrastive loss

    def __post_init__(self) -> None:
        if self.kind not in READOUTS:
            raise InvalidValue("kind", f"must be one of {list(READOUTS)}, got {self.kind!r}")
        _positive(self, "hidden", "embedding", "epochs", "lr", "temperature")
        _non_negative(self, "weight_decay")


@dataclass(frozen=True)
class EnergyConfig:
    """Energy of the reservoir per inference, measured on test samples."""

    # hardware_models target names or spec files, each once
    targets: tuple[str, ...] = ("rram_lsm40nm", "rram_neurosim", "loihi")
    samples: int = 100  # test samples the activity profile is averaged over
    dt_ms: float = 6.3  # simulated time per step: 315 ms of saccades / 50 steps

    def __post_init__(self) -> None:
        _expand_home(self, "targets")  # a spec file may be ~/specs/mine.toml
        _positive(self, "samples", "dt_ms")
        if not self.targets:
            raise InvalidValue("targets", "must name at least one target")
        repeated = sorted({t for t in self.targets if self.targets.count(t) > 1})
        if repeated:  # (it was costed once, with one row and one set of metrics: a typo went unseen)
            raise InvalidValue("targets", f"lists {', '.join(map(repr, repeated))} more than once, in "
                                          f"{list(self.targets)}; name each target once")


@dataclass(frozen=True)
class LSMConfig:
    """One LSM run: where results go, and the sections above."""

    name: str = "lsm"  # run folder name under out_dir
    seed: int = 0  # seeds the reservoir draws, the readout and the read noise; in [0, 2**64 - 1]
    out_dir: str = "runs"  # parent folder of run folders (a leading ~ is the home folder)
    data: LSMDataConfig = field(default_factory=LSMDataConfig)
    reservoir: ReservoirConfig = field(default_factory=ReservoirConfig)
    readout: ReadoutConfig = field(default_factory=ReadoutConfig)
    energy: EnergyConfig = field(default_factory=EnergyConfig)

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name in (".", ".."):
            raise InvalidValue("name", f"must be a plain folder name, got {self.name!r}")
        _expand_home(self, "out_dir")
        # the chip's read-noise stream is seeded through numpy's SeedSequence, which takes no negative seed
        _check_seed(self.seed, "seed", 0, TORCH_SEED_RANGE[1],
                    "0 to 2**64 - 1: torch.manual_seed takes no larger seed and the chip's read-noise stream "
                    "(numpy's SeedSequence) no negative one")


def lsm_config_from_dict(data: dict[str, Any]) -> LSMConfig:
    """Build and validate an :class:`LSMConfig` from nested dicts (e.g. parsed TOML)."""
    return _build(LSMConfig, data, "")


def load_lsm_config(path: str | Path | None = None, overrides: list[str] | None = None) -> LSMConfig:
    """Load an LSM TOML config (or the defaults when ``path`` is None) and apply ``key.path=value`` overrides.

    Raises:
        ConfigError: unreadable TOML, unknown key, wrong type or impossible value (the message names the key).
        TypeError: ``overrides`` is not a list of ``"key=value"`` strings (one such string alone, not in a list).
    """
    return load_toml_config(path, overrides, lsm_config_from_dict)

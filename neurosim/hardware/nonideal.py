r"""RRAM device non-idealities on a trained model: weights → conductances → a Monte-Carlo "chip".

Every ``Linear``/``Conv2d`` weight matrix is stored as differential pairs of cells, conductances normalised to
``G_on = 1`` and ``G_off = 1/on_off_ratio``::

    g⁺ = G_off + (1 − G_off)·max(w, 0)/w_max,   g⁻ = G_off + (1 − G_off)·max(−w, 0)/w_max,
    w_eff = (g⁺ − g⁻) · w_max / (1 − G_off)                      (w_max = max |w| of the layer)

(G is a cell's whole conductance, G_off included, not its part above G_off.) The read-out's scale is set by
``w_max``, so whatever a chip's cells deviate by moves a weight by a fraction of ``w_max``; an all-zero matrix has
``w_max = 0`` and computes 0, stuck cells or not: the limit of a layer whose largest weight goes to 0.

and each chip (one seeded draw) applies, in this order:

* **quantisation** of each cell to ``levels`` evenly spaced conductances between G_off and G_on (sliced: the
  magnitude code to ``levels`` values, each cell to ``2^cell_bits``);
* **programming variation**: ``g ← g·(1 + σ·ε)``, ε ~ N(0, 1) per cell, clipped at 0 (no conductance is negative;
  G_off is the off state's nominal value, and a cell programmed there lands above or below it);
* **stuck-at faults**: a fraction ``stuck_on_rate`` of cells sits at G_on, ``stuck_off_rate`` at G_off;
* **drift**: ``g ← g·(t/t₀)^−ν``, ν per cell ~ N(``drift_nu``, ``drift_nu_std``) clipped at 0; every cell of a pair
  decays, so one ν for all cells is a pure gain error, every weight times ``(t/t₀)^−ν``;
* **global drift compensation** (``drift_compensation``; Joshi et al., Nat. Commun. 11, 2473, 2020): the periphery
  reads each layer's array once at t₀ and again at t with every row driven, both columns of each pair on their own
  and the slices weighted by their place values ``c_k = 2^(cell_bits·k)``, and scales the layer's outputs by the
  ratio ``α = Σ c_k (g⁺ + g⁻)|t₀ / Σ c_k (g⁺ + g⁻)|t`` (the calibration reads are taken as exact). One ν for all
  cells is undone exactly; with a spread of ν what is left is each cell's deviation from the layer's mean decay;

and at inference time, per read (every step and sample):

* **read noise**: each driven cell reads ``g·(1 + σ_r·ε)``; summed on a column this is exact in distribution as
  output noise of standard deviation ``σ_r·sqrt(Σ_i x_i² g_i²)``;
* **ADC quantisation**: the rows are cut into tiles of ``tile_rows``; each tile's two columns of a pair are
  converted separately with ``adc_bits`` over ``[0, adc_range_frac · Σ_rows g]`` (the column's largest current for
  spike inputs), then subtracted and summed digitally. By default (``adc_calibration="read"``) ``g`` are the cells
  as they are read, drifted: the full scale follows the drift, an ideal calibration that keeps every code in use.
  With ``adc_calibration="programmed"`` it is set once from the cells as programmed (at t0): drifted currents then
  fill less of the range (a uniform drift by ``(t/t0)^−ν`` takes that share of the codes), and global drift
  compensation, a digital gain after the ADC, restores their scale but not the codes. A convolution's rows are
  those of its unrolled (im2col) matrix, ``C_in·kh·kw`` of them in the order (channel, ky, kx), cut every
  ``tile_rows`` rows as :mod:`hardware_models.crossbar` maps and costs them: a tile may hold part of a channel's
  kernel.

**Bit slicing** (``cell_bits``, NeuroSim's ``cellBit``): with ``levels`` set, each side's magnitude code
``m = round(|w|/w_max · (levels − 1))`` (``B = ⌈log2 levels⌉`` bits: 7 for 128 levels) is split into
``S = ⌈B / cell_bits⌉`` digits ``d_k`` of ``cell_bits`` bits, least significant first, each on a cell of its own
(``2·S`` cells per weight, as :mod:`hardware_models.crossbar` maps and costs them)::

    g_k = G_off + (1 − G_off) · d_k / (2^cell_bits − 1)          (the other side's cells at G_off)
    w_eff = Σ_k 2^(cell_bits·k) · (g⁺_k − g⁻_k) · w_max (2^cell_bits − 1) / ((levels − 1)(1 − G_off))

Every cell then deviates on its own (variation, faults, drift, read noise) and every cell column is converted on its
own by the ADC, the slices being combined digitally after it: a stuck cell of slice ``k`` moves its weight by at
most ``(2^cell_bits − 1)·2^(cell_bits·k)`` codes, not by the whole range as a stuck cell holding the whole magnitude
does.
``cell_bits = None`` keeps one cell per side for the whole magnitude.

**Random streams.** A chip (one ``seed``) draws each effect from a stream of its own, seeded from the chip's seed
and the effect's name (:func:`numpy.random.SeedSequence`): ``program`` (variation, then faults, cell by cell of
each layer in order), ``drift`` (the spread of ν) and ``read`` (read noise, one key per layer). Turning on a
spread of ν, or read noise, leaves the other effects' draws of the chip as they were. Variation and faults share
the ``program`` stream, in the order the results in the README and ``benchmarks/results`` were drawn in: a chip
with variation has other stuck cells than the same seed without it. Read noise is counter-based
(:func:`read_normals`): each output element of each read is a normal made (Box–Muller, float32, |ε| up to 5.8) from
a SplitMix64 hash of the layer's key, the read (tile, pulse, side of the pairs) and the element's place among that
read's outputs so far (step · samples + sample, then the column), so a sequence run a chunk of steps at a time
draws the same noise as one call over all its steps, and only the reads with a nonzero spread (a driven row) cost
a draw.

The bias stays digital and exact. With every effect off the model is returned unchanged (a copy), so ideal
outputs are reproduced exactly; with only per-chip effects the programmed weights are written into a copy of
each layer; read noise or an ADC replace the layer by :class:`CrossbarLinear` / :class:`CrossbarConv2d` /
:class:`CrossbarDiagonal`.

**BatchNorm.** A chip holds the weights the energy model costs: those of the NIR export
(:func:`neurosim.export.to_nir`), where a BatchNorm (1d or 2d, at inference: its running statistics) right after a
``Linear`` or :class:`neurosim.nn.Conv2d` is folded into it, ``W·γ/√(σ² + ε)`` and the bias ``(b − μ)·γ/√(σ² + ε) +
β``. The chip programs the folded weights (their own ``w_max``, quantisation, read-out scale and ADC ranges: each
column's range is that of its folded weights), keeps the folded bias digital, and the BatchNorm becomes an
``nn.Identity``. It folds exactly the BatchNorms the export folds: the next module in the layer's chain of
``Sequential``\ s (nested ones run in turn), past the ``nn.Identity`` and :class:`neurosim.nn.Dropout` modules the
export drops (and torch's dropouts, identities at inference too, in a model the export refuses). One after a
Flatten, a pool or any other module, or without running statistics, the export refuses to fold, and the chip keeps
it digital after the unfolded weights (a layer not mapped, ``layers``, keeps its BatchNorm too). The chip is the
model at inference whatever its mode. A model without BatchNorm is programmed as before, bit for bit.

**Recurrent layers** (:class:`neurosim.nn.RLIF`): the feedback weights sit on the chip like the feed-forward ones.
A dense recurrence's ``.recurrent`` is a ``Linear`` ``N × N`` array whose rows are driven by the layer's own spikes
of the step before, so it is found and programmed as every Linear (on an RRAM chip recurrence is a crossbar whose
outputs are wired back to its inputs, as in the RRAM liquid state machine, :mod:`neurosim.lsm`). With the Linear
that feeds the layer (in a ``Sequential``, nested ones run in turn, past dropouts and Flatten) it is one matrix, as
:mod:`hardware_models.crossbar` maps and costs them: ``[W_in | W_rec]``, the ``N_in`` input rows first, then the
``N`` recurrent rows, on the same ``N`` columns, cut every ``tile_rows`` rows of the stack; a tile may hold the last
input rows and the first recurrent rows, and its columns then add both before the ADC. Each matrix is programmed as
on its own (its quantisation against its own ``w_max``, its own draws), and its rows are read at the amplitude
``scale / S`` (``S`` the larger of the two matrices' read-out scales ``scale``, ``w_max``'s), so the columns'
currents add ``W_in·x[t] + W_rec·s[t−1]`` in one read-out scale ``S``. Global drift compensation is the array's,
one α from its calibration reads with every row driven at its amplitude, a digital gain on its columns (which add
both matrices' currents before the ADC), so both matrices take the array's α, not each its own (a spread of ν
leaves them apart), with or without read noise and ADC; the ADC's full scale is the
column's largest current, ``Σ_rows a·g``, and the energy model charges each row read at that amplitude ``(a·V)²·G``
per cell (:mod:`hardware_models.crossbar`, ``a`` from the exported weights' largest magnitudes). A BatchNorm1d
between the Linear and the layer (at inference) is folded into the input weights, as every folded BatchNorm
(*BatchNorm*): the chip holds ``W·γ/σ``; one the export does not fold stays digital between the two matrices, which
are then not stacked. The input side (:class:`CrossbarStackedInput`) reads the tiles of input rows alone at every
step at once; the feedback (:class:`CrossbarStackedFeedback`, the layer's ``.recurrent``) reads the other tiles step
by step with ``[x[t], s[t−1]]``. Without read noise and ADC the stacked matrices compute what they do apart. A
one-to-one recurrence (``connectivity="diagonal"``, :class:`neurosim.nn.DiagonalRecurrent`) is mapped as one
differential pair of cells per neuron, read by that neuron's own spike (:class:`CrossbarDiagonal`): the same
quantisation, variation, faults, drift, read noise and ADC, with ``w_max`` the largest of the ``N`` weights. It is
not mapped as the diagonal of an ``N × N`` array: the ``N² − N`` unused cells there would sit at G_off in both
columns of their pairs, and their variation and stuck-ON faults would add feedback between neurons that the model
does not have. A dense recurrence whose ``N × N`` weight is zero off its diagonal is one too, mapped so (and not
stacked with its input weights), as :mod:`hardware_models.graph` reads it from the weights for the energy model: the
same chip as ``connectivity="diagonal"``'s with those ``N`` weights.

Example:
    >>> import torch
    >>> from neurosim.nn import Linear, LIF, Sequential
    >>> net = Sequential(Linear(4, 3), LIF(beta=0.9))
    >>> chip = apply_nonidealities(net, NonIdealConfig(levels=16, sigma_rel=0.05), seed=1)
    >>> chip is not net and bool((chip[0].weight != net[0].weight).any())
    True
    >>> out, _ = chip(torch.rand(5, 2, 4))
    >>> out.shape
    torch.Size([5, 2, 3])
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from typing import Iterable

import numba
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from neurosim._splitmix import GOLDEN, mix, mix_one
from neurosim.nn.layers import Conv2d, Dropout, Flatten, is_stateful, run_chunked, time_chunk
from neurosim.nn.recurrent import RLIF, DiagonalRecurrent

__all__ = ["NonIdealConfig", "CrossbarLinear", "CrossbarConv2d", "CrossbarDiagonal", "apply_nonidealities",
           "combine_slices", "crossbar_layers", "program_conductances",
           "effective_weight", "perturb_weight", "accuracy", "evaluate_nonideal", "noise_aware_finetune"]


#: the widest ADC simulated: float32 holds integers exactly up to 2^24, so a finer conversion step is not resolved
MAX_ADC_BITS = 24

#: when a column's ADC full scale is set (NonIdealConfig.adc_calibration): at every read, or once at programming
ADC_CALIBRATIONS = ("read", "programmed")


@dataclass(frozen=True)
class NonIdealConfig:
    """Device non-idealities of one RRAM technology (all off by default: an ideal crossbar).

    Args:
        levels: conductance levels per cell (``2**bits``); None keeps analog conductances.
        on_off_ratio: G_on / G_off (NeuroSim V1.4: 1.7 MΩ / 100 kΩ = 17).
        sigma_rel: programming variation, σ relative to the programmed conductance (0.05 = 5 %; at most 1).
        stuck_on_rate / stuck_off_rate: fractions of cells stuck at G_on / G_off.
        read_noise_rel: read-to-read noise, σ relative to the conductance, fresh at every read (at most 1).
        adc_bits: bits of the ADC converting each tile's column currents (1 to 24); None reads them exactly.
        adc_range_frac: ADC full scale as a fraction of the column's largest current (all rows on).
        tile_rows: rows per tile: the partial sums the ADC sees (convolutions: rows of the unrolled matrix, as the
            energy model cuts them).
        drift_nu / drift_nu_std: drift exponent ν and its device-to-device spread, G(t) = G₀·(t/t₀)^−ν.
        drift_t_s / drift_t0_s: time since programming and the reference time, in seconds (``drift_t_s >=
            drift_t0_s``: the law holds from t0 on).
        drift_compensation: scale each layer's outputs by its global drift compensation factor α (module
            docstring); no effect without drift.
        cell_bits: bits per cell when each side's magnitude code (``levels`` values) is sliced over several cells
            (module docstring); None: one cell per side holds the whole magnitude. Needs ``levels``.
        adc_calibration: when each column's ADC full scale is set (module docstring): ``"read"`` (default) from
            the cells as they are at the read, so drift costs no ADC resolution (an ideal calibration); or
            ``"programmed"``, once, from the cells as programmed (at t0), so drifted currents use less of the
            range. The same without drift.
    """

    levels: int | None = None  # None: analog cells; 32 = 5-bit cells
    on_off_ratio: float = 17.0  # NeuroSim V1.4 default R_off / R_on = 1.7 MΩ / 100 kΩ
    sigma_rel: float = 0.0  # a few % is typical for programmed RRAM (REFERENCES.md)
    stuck_on_rate: float = 0.0  # fraction of cells stuck at G_on
    stuck_off_rate: float = 0.0  # fraction of cells stuck at G_off
    read_noise_rel: float = 0.0  # per-read conductance noise
    adc_bits: int | None = None  # None: ideal column readout
    adc_range_frac: float = 1.0  # 1: never clips spike inputs; smaller trades clipping for resolution
    tile_rows: int = 128  # NeuroSim's sub-array height
    drift_nu: float = 0.0  # 0: no drift
    drift_nu_std: float = 0.0  # spread of ν between cells
    drift_t_s: float = 1.0  # seconds since programming
    drift_t0_s: float = 1.0  # reference time of the programmed value
    drift_compensation: bool = False  # False: the read-out keeps the gain it had at t0, as a chip without calibration
    cell_bits: int | None = None  # None: one cell per side; 1: NeuroSim V1.4's 1-bit cells, 7 per side at 128 levels
    adc_calibration: str = "read"  # "read": the full scale follows the cells' drift (ideal); "programmed": fixed at t0

    def __post_init__(self) -> None:
        def bad(key: str, msg: str):
            return ValueError(f"NonIdealConfig.{key}: {msg}")

        if self.levels is not None and (isinstance(self.levels, bool) or not isinstance(self.levels, int)
                                        or self.levels < 2):
            raise bad("levels", f"must be an integer >= 2 (or None for analog cells), got {self.levels!r}")
        if not (math.isfinite(self.on_off_ratio) and self.on_off_ratio > 1):
            raise bad("on_off_ratio", f"must be > 1 (G_on / G_off), got {self.on_off_ratio!r}")
        for key in ("sigma_rel", "read_noise_rel", "drift_nu", "drift_nu_std"):
            v = getattr(self, key)
            if not (math.isfinite(v) and v >= 0):
                raise bad(key, f"must be a number >= 0, got {v!r}")
        for key in ("sigma_rel", "read_noise_rel"):  # σ relative to G: 5 (meant as 5 %) would be 500 % of G
            v = getattr(self, key)
            if v > 1:
                raise bad(key, f"must be a fraction of G in [0, 1] (0.05 is 5 %), got {v!r}")
        for key in ("stuck_on_rate", "stuck_off_rate"):
            v = getattr(self, key)
            if not 0 <= v <= 1:
                raise bad(key, f"must be a fraction in [0, 1], got {v!r}")
        if self.stuck_on_rate + self.stuck_off_rate > 1:
            raise bad("stuck_on_rate", f"stuck_on_rate + stuck_off_rate = {self.stuck_on_rate + self.stuck_off_rate:g} "
                                       "exceeds 1")
        if self.adc_bits is not None and (isinstance(self.adc_bits, bool) or not isinstance(self.adc_bits, int)
                                          or self.adc_bits < 1):
            raise bad("adc_bits", f"must be an integer >= 1 (or None), got {self.adc_bits!r}")
        if self.adc_bits is not None and self.adc_bits > MAX_ADC_BITS:
            raise bad("adc_bits", f"at most {MAX_ADC_BITS} bits (float32 column currents resolve no finer steps, so a "
                                  f"wider ADC would be simulated as an exact read), got {self.adc_bits!r}; "
                                  "adc_bits=None reads the column currents exactly")
        if not (0 < self.adc_range_frac <= 1):
            raise bad("adc_range_frac", f"must be in (0, 1], got {self.adc_range_frac!r}")
        if isinstance(self.tile_rows, bool) or not isinstance(self.tile_rows, int) or self.tile_rows < 1:
            raise bad("tile_rows", f"must be a positive integer, got {self.tile_rows!r}")
        for key in ("drift_t_s", "drift_t0_s"):
            v = getattr(self, key)
            if not (math.isfinite(v) and v > 0):
                raise bad(key, f"must be a positive number of seconds, got {v!r}")
        if self.cell_bits is not None:
            if isinstance(self.cell_bits, bool) or not isinstance(self.cell_bits, int) or not 1 <= self.cell_bits <= 16:
                raise bad("cell_bits", f"must be an integer in 1..16 (or None: one cell per side), got "
                                       f"{self.cell_bits!r}")
            if self.levels is None:
                raise bad("cell_bits", f"{self.cell_bits} slices the quantised magnitude code over cells, but levels "
                                       "is None (analog cells): set levels too, or cell_bits=None")
        if self.adc_calibration not in ADC_CALIBRATIONS:
            raise bad("adc_calibration", f"must be one of {ADC_CALIBRATIONS}, got {self.adc_calibration!r}")
        if not isinstance(self.drift_compensation, bool):
            raise bad("drift_compensation", f"must be True or False, got {self.drift_compensation!r}")
        if self.drift_t_s < self.drift_t0_s:
            raise bad("drift_t_s", f"{self.drift_t_s:g} s is before drift_t0_s = {self.drift_t0_s:g} s: G(t) = "
                                   "G0·(t/t0)^−ν holds from t0, when G0 was read, on (earlier times would make every "
                                   "cell grow); give a time >= drift_t0_s")

    @property
    def g_off(self) -> float:
        """G_off relative to G_on."""
        return 1.0 / self.on_off_ratio

    @property
    def slices(self) -> int | None:
        """Cells per side of a weight's pair with bit slicing (``cell_bits``); None without it."""
        if self.cell_bits is None:
            return None
        return max(1, -(-(self.levels - 1).bit_length() // self.cell_bits))

    @property
    def per_chip(self) -> bool:
        """Whether any effect fixed at programming time is on (quantisation, variation, faults, drift)."""
        return (self.levels is not None or self.sigma_rel > 0 or self.stuck_on_rate > 0 or self.stuck_off_rate > 0
                or self._drifts)

    @property
    def per_read(self) -> bool:
        """Whether any effect acts at every read (read noise, ADC)."""
        return self.read_noise_rel > 0 or self.adc_bits is not None

    @property
    def ideal(self) -> bool:
        return not (self.per_chip or self.per_read)

    @property
    def _drifts(self) -> bool:
        return (self.drift_nu > 0 or self.drift_nu_std > 0) and self.drift_t_s != self.drift_t0_s

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------------- one chip
def _randn(shape, generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    dev = generator.device if generator is not None else like.device
    return torch.randn(shape, generator=generator, device=dev, dtype=like.dtype).to(like.device)


def _rand(shape, generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    dev = generator.device if generator is not None else like.device
    return torch.rand(shape, generator=generator, device=dev, dtype=like.dtype).to(like.device)


def _program_cell(g: torch.Tensor, cfg: NonIdealConfig, gen: torch.Generator | None,
                  quantise: bool = True, drift_gen: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One side's cells ``(at t0, at t)``: programmed (quantisation, variation, faults: draws from ``gen``), then
    drifted (the exponents' spread from ``drift_gen``, or ``gen`` where it is None)."""
    g_off = cfg.g_off
    if quantise and cfg.levels is not None:
        steps = cfg.levels - 1
        g = g_off + torch.round((g - g_off) / (1 - g_off) * steps) / steps * (1 - g_off)
    if cfg.sigma_rel > 0:
        g = (g * (1 + cfg.sigma_rel * _randn(g.shape, gen, g))).clamp_min(0.0)
    if cfg.stuck_on_rate > 0 or cfg.stuck_off_rate > 0:
        u = _rand(g.shape, gen, g)
        g = torch.where(u < cfg.stuck_on_rate, torch.ones_like(g), g)
        g = torch.where((u >= cfg.stuck_on_rate) & (u < cfg.stuck_on_rate + cfg.stuck_off_rate),
                        torch.full_like(g, g_off), g)
    if not cfg._drifts:
        return g, g
    nu = cfg.drift_nu + cfg.drift_nu_std * _randn(g.shape, gen if drift_gen is None else drift_gen, g) \
        if cfg.drift_nu_std > 0 else torch.full_like(g, cfg.drift_nu)
    return g, g * (cfg.drift_t_s / cfg.drift_t0_s) ** (-nu.clamp_min(0.0))


def _drift_gain(at_t0: tuple[torch.Tensor, torch.Tensor], at_t: tuple[torch.Tensor, torch.Tensor],
                cfg: NonIdealConfig) -> float:
    """Global drift compensation's factor α of one layer: its cells' place-weighted sum ``Σ c_k (g⁺ + g⁻)`` at t0
    over the same at t (module docstring)."""
    def read(g_pos: torch.Tensor, g_neg: torch.Tensor) -> float:
        both = (g_pos + g_neg).double()
        if cfg.cell_bits is not None:  # slices first: weight each by its place value 2^(cell_bits·k)
            both = both.flatten(1).sum(1) * torch.tensor([2.0 ** (cfg.cell_bits * k) for k in range(both.shape[0])],
                                                         dtype=torch.float64, device=both.device)
        return float(both.sum())

    now = read(*at_t)
    return read(*at_t0) / now if now > 0 else 1.0


def program_conductances(weight: torch.Tensor, cfg: NonIdealConfig, generator: torch.Generator | None = None, *,
                         drift_generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Program ``weight`` onto one chip: ``(g_pos, g_neg, scale)`` with ``w_eff = (g_pos − g_neg)·scale``.

    Conductances are relative to G_on; ``scale = w_max / (1 − G_off)``. Variation and faults draw from
    ``generator`` (all of ``g_pos``'s cells, then ``g_neg``'s), the drift exponents' spread from
    ``drift_generator`` (None: from ``generator`` too, after each side's other draws). With bit slicing
    (``cfg.cell_bits``) both have a leading slice dimension, ``[slices, *weight.shape]`` (least significant first),
    ``scale = w_max·(2^cell_bits − 1) / ((levels − 1)(1 − G_off))`` and ``w_eff = Σ_k 2^(cell_bits·k)·(g_pos[k] −
    g_neg[k])·scale`` (:func:`combine_slices`). With ``cfg.drift_compensation`` and drift, ``scale`` also holds the
    layer's compensation factor α.
    """
    return _program(weight, cfg, generator, drift_generator)[:3]


def _program(weight: torch.Tensor, cfg: NonIdealConfig, generator: torch.Generator | None,
             drift_generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor, float, torch.Tensor,
                                                                torch.Tensor, float]:
    """:func:`program_conductances`' ``(g_pos, g_neg, scale)``, the cells as programmed, before drift, and the
    read-out scale without drift compensation: ``(…, g_pos at t0, g_neg at t0, scale without α)`` (the same tensors
    where nothing drifts, the same scale without compensation)."""
    w = weight.detach()
    w_max = float(w.abs().max()) if w.numel() else 0.0
    g_off = cfg.g_off
    if w_max == 0 and cfg.cell_bits is None:
        z = torch.full_like(w, g_off)
        return z, z.clone(), 0.0, z, z, 0.0
    if cfg.cell_bits is not None:
        top = 2**cfg.cell_bits - 1
        shifts = torch.tensor([cfg.cell_bits * k for k in range(cfg.slices)]).view(-1, *[1] * w.dim())
        sides = []
        for side in (w, -w):
            code = (torch.round(side.clamp_min(0) / w_max * (cfg.levels - 1)) if w_max else torch.zeros_like(w))
            digits = (code.to(torch.int64).unsqueeze(0) >> shifts) & top
            g = g_off + (1 - g_off) * digits.to(w.dtype) / top
            sides.append(_program_cell(g, cfg, generator, quantise=False, drift_gen=drift_generator) if w_max
                         else (g, g))
        scale = w_max * top / ((cfg.levels - 1) * (1 - g_off))
    else:
        g_pos = g_off + (1 - g_off) * w.clamp_min(0) / w_max
        g_neg = g_off + (1 - g_off) * (-w).clamp_min(0) / w_max
        sides = [_program_cell(g, cfg, generator, drift_gen=drift_generator) for g in (g_pos, g_neg)]
        scale = w_max / (1 - g_off)
    (pos_t0, pos), (neg_t0, neg) = sides
    raw = scale
    if cfg.drift_compensation and cfg._drifts and w_max:
        scale *= _drift_gain((pos_t0, neg_t0), (pos, neg), cfg)
    return pos, neg, scale, pos_t0, neg_t0, raw


def combine_slices(g_pos: torch.Tensor, g_neg: torch.Tensor, scale: float, cfg: NonIdealConfig) -> torch.Tensor:
    """The weight that :func:`program_conductances`' cells hold: ``(g_pos − g_neg)·scale``, summed over the slices
    with their place values ``2^(cell_bits·k)`` where ``cfg`` slices the weights."""
    if cfg.cell_bits is None:
        return (g_pos - g_neg) * scale
    place = torch.tensor([2.0 ** (cfg.cell_bits * k) for k in range(g_pos.shape[0])], dtype=g_pos.dtype,
                         device=g_pos.device).view(-1, *[1] * (g_pos.dim() - 1))
    return ((g_pos - g_neg) * place).sum(0) * scale


def effective_weight(weight: torch.Tensor, cfg: NonIdealConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """The weight one chip computes with (programming effects only; same shape as ``weight``)."""
    g_pos, g_neg, scale = program_conductances(weight, cfg, generator)
    return combine_slices(g_pos, g_neg, scale, cfg)


def perturb_weight(weight: torch.Tensor, cfg: NonIdealConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """``weight`` with one chip's programming effects in the forward pass and an identity gradient
    (straight-through): ``w + (w_chip − w).detach()``. Used for noise-aware training."""
    return weight + (effective_weight(weight, cfg, generator) - weight).detach()


# ---------------------------------------------------------------------------------------------- layers
@numba.njit(cache=True, nogil=True)
def _read_normals(spread, stream, first, out):  # pragma: no cover - compiled
    """``out[i]``: a standard normal that is a fixed function of ``(stream, first + i)`` where ``spread[i] > 0``
    (0 elsewhere, where the read has no noise). Counters ``2p`` and ``2p + 1`` share one SplitMix64 hash of ``p``:
    Box–Muller in float32 from 24 of its bits for the radius (|ε| up to 5.8) and 24 for the angle, the cosine for
    the even counter, the sine for the odd one."""
    done = np.uint64(0xFFFFFFFFFFFFFFFF)  # the pair whose radius and angle are at hand (none yet)
    radius = np.float32(0.0)
    angle = np.float32(0.0)
    for i in range(spread.size):
        if spread[i] > 0:
            c = first + np.uint64(i)
            pair = c >> np.uint64(1)
            if pair != done:
                z = mix_one(mix_one(stream + (pair + np.uint64(1)) * GOLDEN) ^ stream)
                u = np.float32((z >> np.uint64(40)) + np.uint64(1)) * np.float32(2.0 ** -24)  # (0, 1]
                radius = np.float32(math.sqrt(np.float32(-2.0) * math.log(u)))
                angle = np.float32(z & np.uint64(0xFFFFFF)) * np.float32(2.0 * math.pi / 2.0 ** 24)
                done = pair
            out[i] = radius * (math.cos(angle) if (c & np.uint64(1)) == 0 else math.sin(angle))
        else:
            out[i] = 0.0


def read_noise_stream(key: int, tile: int, pulse: int, side: int) -> int:
    """The counter-based stream of one kind of read of a crossbar layer whose noise key is ``key``: tile ``tile``,
    the ``pulse``-th pulse of its rows (0: the input itself, or its first event level), the ``side`` (0: the
    columns of ``g⁺``, 1: ``g⁻``) of its pairs."""
    if not (0 <= pulse < 2 ** 20 and side in (0, 1) and tile >= 0):
        raise ValueError(f"read_noise_stream: tile {tile}, pulse {pulse}, side {side} out of range")
    read = np.uint64((tile << 21) | (pulse << 1) | side)
    with np.errstate(over="ignore"):
        return int(mix(mix(np.uint64(key % 2 ** 64)) + GOLDEN * (read + np.uint64(1))))


def read_normals(spread: torch.Tensor, stream: int, first: int) -> torch.Tensor:
    """Standard normals shaped as ``spread``, element ``i`` (row-major) a fixed function of ``(stream, first +
    i)`` (:func:`read_noise_stream`), 0 where ``spread`` is not above 0: the noise of a read whose elements are the
    ``first``-th onwards that this kind of read has drawn. A read cut into several calls (chunks of time steps)
    draws the same values as one call. Drawn on the CPU (a tensor on another device is copied there and back)."""
    s = spread.detach()
    work = s.to("cpu", torch.float32 if s.dtype not in (torch.float32, torch.float64) else s.dtype).contiguous()
    out = torch.empty_like(work)
    if work.numel():
        _read_normals(work.numpy().reshape(-1), np.uint64(stream), np.uint64(first), out.numpy().reshape(-1))
    return out.to(device=s.device, dtype=s.dtype)


def _noise_key(generator: torch.Generator | None) -> int:
    """A crossbar layer's read-noise key from its ``generator``: the generator's seed where it is as freshly seeded
    (each layer of :func:`apply_nonidealities`' chips has one of its own), else a draw from it; either way the
    generator is advanced, so that layers given one generator draw keys, and noise, of their own (the seed alone
    gave them all one key: the same noise at every read of the same place). None: a draw of torch's global
    generator."""
    if generator is None:
        return int(torch.randint(0, 2 ** 62, (1,)).item())
    fresh = torch.Generator(device=generator.device).manual_seed(generator.initial_seed())
    unused = torch.equal(generator.get_state(), fresh.get_state())
    draw = int(torch.randint(0, 2 ** 62, (1,), generator=generator, device=generator.device).item())
    return int(generator.initial_seed()) if unused else draw


def _adc(y: torch.Tensor, full_scale: torch.Tensor, bits: int, inplace: bool = False) -> torch.Tensor:
    """Uniform ``bits``-bit conversion of non-negative column currents over ``[0, full_scale]`` (per column);
    ``inplace``: into ``y`` itself (the same operations, the same values)."""
    fs = full_scale.clamp_min(1e-12)
    step = fs / (2**bits - 1)
    if inplace:
        y.clamp_min_(0).div_(step).round_().mul_(step)
        return torch.minimum(y, fs, out=y)
    return torch.minimum(torch.round(y.clamp_min(0) / step) * step, fs)


class _CrossbarBase(nn.Module):
    def __init__(self, g_pos: torch.Tensor, g_neg: torch.Tensor, scale: float, bias: torch.Tensor | None,
                 cfg: NonIdealConfig, generator: torch.Generator | None) -> None:
        super().__init__()
        self.register_buffer("g_pos", g_pos.detach().clone())
        self.register_buffer("g_neg", g_neg.detach().clone())
        self.register_buffer("bias", None if bias is None else bias.detach().clone())
        self.scale = float(scale)
        self.cfg = cfg
        self.generator = generator
        #: the read noise's key (module docstring, *Random streams*): :func:`_noise_key`'s
        self.noise_key = _noise_key(generator)
        self._drawn: dict[int, int] = {}  # tile -> elements of one read's output drawn so far (each pulse and side)
        self.register_buffer("row_amplitude", None)  # read amplitude per row (stacked matrices); None: all 1
        # the cells the ADC's full scale is set from when not those read (adc_calibration="programmed": at t0)
        self.register_buffer("calibrated_pos", None)
        self.register_buffer("calibrated_neg", None)

    def calibrate(self, g_pos: torch.Tensor, g_neg: torch.Tensor) -> "_CrossbarBase":
        """Set the ADC's full scale from the cells ``g_pos``/``g_neg`` (shaped as the layer's, e.g. as programmed,
        before drift) instead of the cells read (``adc_calibration="programmed"``); returns the layer."""
        if g_pos.shape != self.g_pos.shape or g_neg.shape != self.g_neg.shape:
            raise ValueError(f"the calibration cells must have the layer's cells' shape {tuple(self.g_pos.shape)}, "
                             f"got {tuple(g_pos.shape)} and {tuple(g_neg.shape)}")
        self.calibrated_pos = g_pos.detach().to(self.g_pos).clone()
        self.calibrated_neg = g_neg.detach().to(self.g_neg).clone()
        return self

    def _driven(self, g: torch.Tensor) -> torch.Tensor:
        """Cells ``g`` times their rows' read amplitudes: the currents per unit input (``g`` where all are 1)."""
        return g if self.row_amplitude is None else g * self.row_amplitude

    @property
    def weight(self) -> torch.Tensor:
        """The programmed weight (what the chip computes without read noise and ADC)."""
        return combine_slices(self._driven(self.g_pos), self._driven(self.g_neg), self.scale, self.cfg)

    @property
    def _w_shape(self) -> torch.Size:
        """The weight's shape (the cells' without the slice dimension)."""
        return self.g_pos.shape if self.cfg.cell_bits is None else self.g_pos.shape[1:]

    #: the dimension of a read's output that holds the columns (Linear: the last; Conv2d: the channels)
    _column_dim = -1

    def _shift_add(self, y: torch.Tensor) -> torch.Tensor:
        """Bit slicing: the slices' converted columns (slice-major along :attr:`_column_dim`, as the cells
        ``g.flatten(0, 1)`` give them) weighted by their place values ``2^(cell_bits·k)`` and summed."""
        slices = self.g_pos.shape[0]
        d = self._column_dim % y.dim()
        y = y.unflatten(d, (slices, y.shape[d] // slices))
        place = torch.tensor([2.0 ** (self.cfg.cell_bits * k) for k in range(slices)], dtype=y.dtype,
                             device=y.device).view(slices, *[1] * (y.dim() - d - 1))
        return (y * place).sum(d)

    def _pulses(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The row inputs of one tile's reads: ``[x]``, or with the ADC on and ``k > 1`` events on a row (event
        counts of the first layer, sum-pooled spikes) one binary input per event level, so that the row is driven
        with ``k`` pulses as the energy model counts it: one read and conversion per pulse, summed digitally, and
        the ADC's full scale (every row driven once) clips no count."""
        if self.cfg.adc_bits is None or not x.numel():
            return [x]
        peak = float(x.detach().max())  # (spikes of layers left trainable carry a graph)
        if peak <= 1:
            return [x]
        if not torch.equal(x, torch.round(x)):
            raise ValueError(f"the ADC model drives a crossbar's rows with spikes or event counts, but this "
                             f"layer's input has fractional values above 1 (up to {peak:g}); turn the ADC off "
                             "(adc_bits = None) for it, or scale its input to [0, 1]")
        return [(x >= k).to(x.dtype) for k in range(1, int(peak) + 1)]

    def _column(self, pulses: list[torch.Tensor], g: torch.Tensor, g_scale: torch.Tensor, tile: int, side: int,
                first: int) -> torch.Tensor:
        """Current of the columns holding ``g`` (``side`` 0: ``g⁺``, 1: ``g⁻``) over tile ``tile``'s reads, with read
        noise (its draws from element ``first`` on) and ADC (its full scale from the cells ``g_scale``)."""
        return sum(self._read(x, g, g_scale, (tile, k, side, first)) for k, x in enumerate(pulses))

    def _read(self, x: torch.Tensor, g: torch.Tensor, g_scale: torch.Tensor, where: tuple) -> torch.Tensor:
        """One read of the columns holding ``g`` with row inputs ``x`` (at most 1 where the ADC is on); the ADC's full
        scale is that of the cells ``g_scale`` (``g`` itself but with ``adc_calibration="programmed"``). ``where``:
        ``(tile, pulse, side, first)``, which read noise this is (:func:`read_normals`)."""
        y = self._mvm(x, g)
        cfg = self.cfg
        # without a graph to keep, the output-sized steps run in place: the same values, without a fresh tensor per
        # operation (a conv layer's reads, bit-sliced, are hundreds of MB per block of samples)
        inplace = not y.requires_grad
        if cfg.read_noise_rel > 0:
            spread = self._mvm(x * x, g * g)
            tile, pulse, side, first = where
            noise = read_normals(spread, read_noise_stream(self.noise_key, tile, pulse, side), first)
            if inplace:
                y.add_(spread.clamp_min_(0).sqrt_().mul_(cfg.read_noise_rel).mul_(noise))
            else:
                y = y + cfg.read_noise_rel * torch.sqrt(spread.clamp_min(0)) * noise
        if cfg.adc_bits is not None:
            y = _adc(y, cfg.adc_range_frac * self._full_scale(g_scale, y), cfg.adc_bits, inplace=inplace)
        return y

    def _tiles(self) -> list:
        """One entry per crossbar tile, which the layer kind's ``_slice_input`` / ``_slice_weight`` read: the input
        rows the tile holds."""
        return [slice(None)]

    def _compute(self, x: torch.Tensor, tiles: list[int] | None = None) -> torch.Tensor:
        """The layer's output without its bias: the converted columns of the tiles numbered ``tiles`` (indices into
        :meth:`_tiles`; default: every tile) summed. Each tile's reads draw their noise from where its reads so far
        left off (``_drawn``), so that a sequence cut into calls draws what one call does. (A layer called more than
        once per call of the model, its weights shared, counts its calls' reads in the order they come: cut into
        chunks, it draws other, as independent, values than one call.)"""
        sliced = self.cfg.cell_bits is not None
        cells = [self.g_pos, self.g_neg]
        if self.calibrated_pos is not None:
            cells += [self.calibrated_pos, self.calibrated_neg]
        cells = [self._driven(g) for g in cells]
        # bit slicing: every slice's cells are columns of their own (read, noised and converted as such, in one call)
        cells = [g.flatten(0, 1) for g in cells] if sliced else cells
        out = 0
        every = self._tiles()
        for i in range(len(every)) if tiles is None else tiles:
            tile = every[i]
            xs = self._slice_input(x, tile)
            gp, gn, *scaled = [self._slice_weight(g, tile) for g in cells]
            fp, fn = scaled or (gp, gn)
            pulses = self._pulses(xs)  # decided once per tile, for both columns of each pair
            first = self._drawn.get(i, 0)
            y = self._column(pulses, gp, fp, i, 0, first) - self._column(pulses, gn, fn, i, 1, first)
            self._drawn[i] = first + y.numel()
            out = out + (self._shift_add(y) if sliced else y) * self.scale
        return out


class CrossbarLinear(_CrossbarBase):
    """A Linear layer computed on one programmed chip, tile by tile, with read noise and ADC (time-first or not).

    ``row_amplitude`` (``[N_in]``, optional): the read amplitude of each row, relative to the full read voltage
    (matrices stacked on one array's rows, each with its own scale: :func:`apply_nonidealities`); a row driven at
    ``a`` adds ``a·x·g`` to its columns' currents, ``a·g`` to their full scale and read noise ``σ_r·a·x·g``.

    Shapes:
        x: ``[..., N_in]`` → ``[..., N_out]``.
    """

    def __init__(self, g_pos: torch.Tensor, g_neg: torch.Tensor, scale: float, bias: torch.Tensor | None,
                 cfg: NonIdealConfig, generator: torch.Generator | None, *,
                 row_amplitude: torch.Tensor | None = None) -> None:
        super().__init__(g_pos, g_neg, scale, bias, cfg, generator)
        if row_amplitude is not None:
            if tuple(row_amplitude.shape) != (self._w_shape[1],):
                raise ValueError(f"row_amplitude must have one value per row, shape ({self._w_shape[1]},), got "
                                 f"{tuple(row_amplitude.shape)}")
            self.row_amplitude = row_amplitude.detach().to(device=g_pos.device, dtype=g_pos.dtype).clone()

    def _tiles(self) -> list[slice]:
        n = self._w_shape[1]
        r = self.cfg.tile_rows
        return [slice(i, min(i + r, n)) for i in range(0, n, r)]

    @staticmethod
    def _slice_input(x, sl):
        return x[..., sl]

    @staticmethod
    def _slice_weight(g, sl):
        return g[:, sl]

    @staticmethod
    def _mvm(x, g):
        return F.linear(x, g)

    @staticmethod
    def _full_scale(g, y):
        return g.sum(dim=1)  # per column: every row of the tile on

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self._compute(x)
        return y if self.bias is None else y + self.bias


class CrossbarConv2d(_CrossbarBase):
    """A Conv2d computed on one programmed chip, tile by tile, with read noise and ADC per tile. The tiles hold
    ``tile_rows`` rows each of the unrolled matrix (``C_in·kh·kw`` rows in the order (channel, ky, kx), the last
    tile the rest), as :mod:`hardware_models.crossbar` maps them: a tile may end inside a channel's kernel, whose
    other rows are then on the next tile. Accepts ``[T, B, C, H, W]`` (time folded into the batch) or
    ``[B, C, H, W]``."""

    def __init__(self, g_pos, g_neg, scale, bias, cfg, generator, *, stride, padding, dilation, groups,
                 padding_mode: str = "zeros") -> None:
        super().__init__(g_pos, g_neg, scale, bias, cfg, generator)
        if groups != 1 and cfg.per_read:
            raise ValueError("read noise and ADC are simulated for convolutions with groups = 1 only; "
                             f"this layer has groups = {groups} (turn off per-read effects for it)")
        if isinstance(padding, str) and padding_mode != "zeros":
            raise ValueError(f"padding = {padding!r} with padding_mode = {padding_mode!r} is not simulated; give "
                             "the padding in pixels")
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self.padding_mode = padding_mode
        if padding_mode != "zeros":
            ph, pw = (padding, padding) if isinstance(padding, int) else padding
            self._pad_arg = (pw, pw, ph, ph)

    _column_dim = 1

    def _tiles(self) -> list[tuple[slice, torch.Tensor | None]]:
        """Per tile ``(channels, mask)``: the input channels its rows belong to and, where it holds only part of
        the first or last one's kernel, a ``[channels, kh, kw]`` mask of its rows (None: whole channels)."""
        c_in, kh, kw = self._w_shape[1:]
        k = kh * kw
        rows, r = c_in * k, self.cfg.tile_rows
        tiles = []
        for r0 in range(0, rows, r):
            r1 = min(r0 + r, rows)
            c0, c1 = r0 // k, -(-r1 // k)
            mask = None
            if r0 != c0 * k or r1 != c1 * k:
                row = torch.arange(c0 * k, c1 * k, device=self.g_pos.device).view(c1 - c0, kh, kw)
                mask = (row >= r0) & (row < r1)
            tiles.append((slice(c0, c1), mask))
        return tiles

    @staticmethod
    def _slice_input(x, tile):
        return x[:, tile[0]]

    @staticmethod
    def _slice_weight(g, tile):
        channels, mask = tile
        return g[:, channels] if mask is None else g[:, channels] * mask.to(g.dtype)

    def _mvm(self, x, g):
        if self.padding_mode != "zeros":  # pad as the layer does, then convolve without padding
            x = F.pad(x, self._pad_arg, mode=self.padding_mode)
            return F.conv2d(x, g, None, self.stride, 0, self.dilation, self.groups)
        return F.conv2d(x, g, None, self.stride, self.padding, self.dilation, self.groups)

    @staticmethod
    def _full_scale(g, y):
        return g.sum(dim=(1, 2, 3)).view(1, -1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 5:
            T, B = x.shape[:2]  # time, batch
            y = self.forward(x.reshape(T * B, *x.shape[2:]))
            return y.reshape(T, B, *y.shape[1:])
        if x.dim() != 4:
            raise ValueError(f"CrossbarConv2d expects [T, B, C, H, W] or [B, C, H, W], got shape {tuple(x.shape)}")
        y = self._compute(x)
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)


class CrossbarDiagonal(_CrossbarBase):
    """A one-to-one recurrence (:class:`neurosim.nn.DiagonalRecurrent`) on one programmed chip: neuron ``i``'s
    feedback weight is one differential pair of cells whose single row is driven by the neuron's own spike, with read
    noise and an ADC whose full scale is that pair's cell (one row on).

    Shapes:
        s: ``[..., N]`` → ``[..., N]``.
    """

    @staticmethod
    def _slice_input(x, sl):
        return x

    @staticmethod
    def _slice_weight(g, sl):
        return g

    @staticmethod
    def _mvm(x, g):
        if g.shape[-1] != x.shape[-1]:  # bit slicing: the slices' cells side by side, each read by the same spike
            x = x.repeat(*[1] * (x.dim() - 1), g.shape[-1] // x.shape[-1])
        return x * g

    @staticmethod
    def _full_scale(g, y):
        return g  # one row per column

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        y = self._compute(s)
        return y if self.bias is None else y + self.bias


class _StepRows:
    """The input rows of one call of a stacked layer, handed from its input side to its feedback: set by
    :class:`CrossbarStackedInput` for the call's steps, taken one step at a time by :class:`CrossbarStackedFeedback`
    (and let go after the last)."""

    __slots__ = ("x_seq", "step")

    def __init__(self) -> None:
        self.x_seq: torch.Tensor | None = None
        self.step = 0


class _StackedSide(nn.Module):
    """One side of a stacked dense recurrent layer: the shared crossbar, the input row count, the side's own bias
    and tiles, and the step's input rows both sides read."""

    _input_side: bool

    def __init__(self, crossbar: CrossbarLinear, inputs: int, bias: torch.Tensor | None, rows: _StepRows) -> None:
        super().__init__()
        self.crossbar = crossbar
        self.inputs = inputs
        self.register_buffer("bias", None if bias is None else bias.detach().clone())
        self._rows = rows
        every = crossbar._tiles()
        self._own_index = [i for i, t in enumerate(every) if (t.stop <= inputs) == self._input_side]
        self._own_tiles = [every[i] for i in self._own_index]


class CrossbarStackedInput(_StackedSide):
    """The input side of a dense recurrent layer whose input and recurrent weights are one matrix on one chip
    (``[W_in | W_rec]``, input rows first, as :mod:`hardware_models.crossbar` maps and costs it): the tiles that
    hold only input rows, read at every step at once, plus the input weights' bias. It also hands each step's
    input rows to the layer's :class:`CrossbarStackedFeedback`, which reads the tile shared by the last input rows
    and the first recurrent rows with both, and the tiles after it with the fed-back spikes.

    Shapes:
        x_seq: ``[T, B, N_in]`` → ``[T, B, N]``.
    """

    _input_side = True  # reads the tiles of input rows only (the feedback: every tile holding a recurrent row)

    @property
    def weight(self) -> torch.Tensor:
        """The programmed input weights ``[N, N_in]``."""
        return self.crossbar.weight[:, : self.inputs]

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        if x_seq.dim() != 3 or x_seq.shape[-1] != self.inputs:
            raise ValueError(f"a stacked recurrent layer's input side expects [T, B, {self.inputs}], got shape "
                             f"{tuple(x_seq.shape)}")
        self._rows.x_seq, self._rows.step = x_seq, 0
        n = self.crossbar._w_shape[0]
        y = (self.crossbar._compute(x_seq, self._own_index) if self._own_index
             else x_seq.new_zeros(*x_seq.shape[:-1], n))
        return y if self.bias is None else y + self.bias


class CrossbarStackedFeedback(_StackedSide):
    """The feedback side of a stacked dense recurrent layer (:class:`CrossbarStackedInput`): called by the
    :class:`neurosim.nn.RLIF` as its ``.recurrent`` with the spikes ``s[t−1]``, it reads the tiles holding recurrent
    rows with the rows ``[x[t], s[t−1]]``, plus the recurrent bias.

    Shapes:
        s: ``[B, N]`` → ``[B, N]``.
    """

    _input_side = False

    @property
    def weight(self) -> torch.Tensor:
        """The programmed recurrent weights ``[N, N]``."""
        return self.crossbar.weight[:, self.inputs:]

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        rows = self._rows
        if rows.x_seq is None:
            raise RuntimeError("a stacked recurrent layer's feedback was read without its step's input rows: its "
                               "input side (CrossbarStackedInput, the layer before the RLIF) runs first on the same "
                               "steps, as the Sequential calls them")
        x = rows.x_seq[rows.step]
        rows.step += 1
        if rows.step == rows.x_seq.shape[0]:
            rows.x_seq = None  # the call's steps are read: let its input go
        y = self.crossbar._compute(torch.cat([x.to(s.dtype), s], dim=-1), self._own_index)
        return y if self.bias is None else y + self.bias


#: the modules whose weights a chip holds in its cells
CROSSBAR_KINDS = (nn.Linear, nn.Conv2d, DiagonalRecurrent)

#: the modules the NIR export drops (identities at inference), so that a BatchNorm after them is folded all the same;
#: with torch's dropouts, identities at inference as neurosim's Dropout (the export refuses a model holding one, so
#: no graph of it folds otherwise; the chip folded a BatchNorm past neurosim's Dropout and not past torch's)
_DROPPED = (Dropout, nn.modules.dropout._DropoutNd, nn.Identity)

#: weightless modules that may sit between a dense recurrent layer and the Linear feeding it (at inference): those
#: dropped, and a Flatten. The export keeps a Flatten (a NIR node) and folds no BatchNorm past it (it refuses the
#: model), but the energy model stacks a Linear on a population's rows past it (``synapse → Flatten* → target``,
#: :mod:`hardware_models.graph`): so :func:`_stacked` looks past a Flatten and :func:`_folded` does not
_PASS_THROUGH = _DROPPED + (Flatten,)


# ---------------------------------------------------------------------------------------------- whole models
def crossbar_layers(model: nn.Module) -> list[str]:
    """Names of the modules of ``model`` whose weights :func:`apply_nonidealities` maps onto cells, in order:
    every ``Linear`` and ``Conv2d`` (a dense recurrent layer's ``.recurrent`` included) and every one-to-one
    recurrence (:class:`neurosim.nn.DiagonalRecurrent`)."""
    return [n for n, m in model.named_modules() if isinstance(m, CROSSBAR_KINDS)]


def _targets(model: nn.Module, layers: Iterable[str] | None) -> list[str]:
    names = crossbar_layers(model)
    if layers is None:
        return names
    layers = list(layers)
    unknown = [n for n in layers if n not in names]
    if unknown:
        raise ValueError(f"layers {unknown} are not Linear/Conv2d modules or recurrences of the model; those are "
                         f"{names}")
    return layers


def _set_module(root: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, new)


#: a chip's random streams (module docstring, *Random streams*), in the order their seeds were introduced
_STREAMS = ("program", "read", "drift")


def _stream_seed(seed: int, role: str, index: int = 0) -> int:
    """A seed for one random stream of chip ``seed``: distinct for every (chip, role, layer), so no chip's
    programming draws repeat another chip's read noise (``seed`` and ``seed·1_000_003 + i + 1`` did)."""
    return int(np.random.SeedSequence([int(seed), _STREAMS.index(role), index]).generate_state(1)[0])


def _unparametrize(m: nn.Module) -> None:
    """Make ``m``, a module of a chip's copy of the model, a plain module of the class it was parametrized from (a
    Linear, a Conv2d with its stride, padding, dilation and groups, a DiagonalRecurrent…) whose parametrized tensors
    are parameters holding their current values.

    This is ``parametrize.remove_parametrizations(m, name, leave_parametrized=True)`` without its
    ``delattr(type(m), name)``: the class of a parametrized module is made for it, and the deep copy shares it with
    the model's module, which would lose its ``weight``."""
    m.parametrizations.eval()  # the values at inference (spectral_norm's power iteration steps in training)
    values = {name: getattr(m, name).detach().clone() for name in m.parametrizations}
    grads = {name: any(p.requires_grad for p in m.parametrizations[name].parameters()) for name in values}
    m.__class__ = type(m).__bases__[0]  # the class parametrize subclassed for this module
    delattr(m, "parametrizations")
    for name, value in values.items():
        setattr(m, name, nn.Parameter(value, requires_grad=grads[name]))


def _chain(model: nn.Module, name: str) -> list[tuple[str, nn.Module]]:
    """The leaves (modules that are not Sequentials) of the outermost chain of Sequentials holding module ``name`` of
    ``model``, in the order they run (nested ones in turn), as the NIR export chains them; empty where ``name``'s
    parent is not a Sequential."""
    parts = name.split(".")
    top = None
    for k in range(len(parts) - 1, -1, -1):  # up from the parent, while the containers are Sequentials
        if not isinstance(model.get_submodule(".".join(parts[:k])), nn.Sequential):
            break
        top = k
    if top is None:
        return []

    def leaves(box: nn.Module, prefix: str):
        for k, m in box.named_children():
            path = f"{prefix}.{k}" if prefix else k
            yield from leaves(m, path) if isinstance(m, nn.Sequential) else [(path, m)]

    return list(leaves(model.get_submodule(".".join(parts[:top])), ".".join(parts[:top])))


def _run_before(model: nn.Module, name: str) -> list[tuple[str, nn.Module]]:
    """The modules that run before module ``name`` of ``model``, in the order they run (:func:`_chain`)."""
    chain = _chain(model, name)
    return chain[: [n for n, _ in chain].index(name)] if chain else []


def _folded(model: nn.Module, names: list[str]) -> dict[str, str]:
    """The BatchNorms a chip folds into the weights before them: ``{Linear or Conv2d: its BatchNorm}`` for every
    ``Linear`` and :class:`neurosim.nn.Conv2d` in ``names`` that the NIR export folds one into (module docstring,
    *BatchNorm*): the next module of its chain (:func:`_chain`), past the modules the export drops (``nn.Identity``,
    :class:`neurosim.nn.Dropout`; torch's dropouts too, :data:`_DROPPED`) and nothing else, is a BatchNorm (1d or 2d)
    with running statistics and one feature per output."""
    found = {}
    for name in names:
        m = model.get_submodule(name)
        if not isinstance(m, (nn.Linear, Conv2d)):
            continue
        chain = _chain(model, name)
        after = chain[[n for n, _ in chain].index(name) + 1:] if chain else []
        bn = next(((n, b) for n, b in after if not isinstance(b, _DROPPED)), None)
        if bn is not None and isinstance(bn[1], nn.modules.batchnorm._BatchNorm) and \
                bn[1].running_mean is not None and bn[1].running_var is not None and \
                bn[1].num_features == m.weight.shape[0]:
            found[name] = bn[0]
    return found


def _one_to_one(model: nn.Module, name: str) -> bool:
    """Whether module ``name`` of ``model`` is a dense :class:`neurosim.nn.RLIF`'s ``.recurrent`` whose ``N × N``
    weight (``N >= 2``) is zero off its diagonal: a one-to-one recurrence, as :mod:`hardware_models.graph` reads it
    from the exported weights and :mod:`hardware_models.crossbar` maps and costs it (``N`` pairs of cells, not
    stacked with the input weights), so the chip programs its ``N`` weights as a ``connectivity="diagonal"``
    layer's (module docstring, *Recurrent layers*)."""
    owner, _, leaf = name.rpartition(".")
    if leaf != "recurrent" or not owner:
        return False
    rlif = model.get_submodule(owner)
    if not isinstance(rlif, RLIF) or rlif.connectivity != "dense":
        return False
    w = model.get_submodule(name).weight.detach()
    n = w.shape[0]
    return w.dim() == 2 and n >= 2 and w.shape[1] == n and not w[~torch.eye(n, dtype=torch.bool,
                                                                             device=w.device)].any()


def _stacked(model: nn.Module, names: list[str], folded: dict[str, str]) -> dict[str, str]:
    """The dense recurrent layers whose input and recurrent weights share their columns on the chip: ``{input
    Linear: its RLIF's .recurrent}`` for every :class:`neurosim.nn.RLIF` (dense) in a ``Sequential`` (nested ones
    included: :func:`_run_before`) whose ``.recurrent`` and the ``Linear`` that runs before it (past dropouts,
    Identity, Flatten (:data:`_PASS_THROUGH`) and the BatchNorm ``folded`` into the Linear, :func:`_folded`) are both
    in ``names`` (module docstring, *Recurrent layers*). A BatchNorm the chip keeps (one the export does not fold)
    is a digital step between the two matrices, which then are not stacked."""
    found = {}
    for rec in names:
        owner, _, leaf = rec.rpartition(".")
        if leaf != "recurrent" or not owner:
            continue
        rlif = model.get_submodule(owner)
        if not isinstance(rlif, RLIF) or rlif.connectivity != "dense":
            continue
        bn = None
        for name, m in reversed(_run_before(model, owner)):
            if isinstance(m, _PASS_THROUGH):
                continue
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and bn is None:
                bn = name
                continue
            if isinstance(m, nn.Linear) and name in names and m.out_features == rlif.features and \
                    folded.get(name) == bn:
                found[name] = rec
            break
    return found


def apply_nonidealities(model: nn.Module, cfg: NonIdealConfig, seed: int = 0, *,
                        layers: Iterable[str] | None = None) -> nn.Module:
    """One Monte-Carlo chip: a copy of ``model`` whose Linear/Conv2d weights (and recurrent weights) went through
    ``cfg`` (model unchanged).

    A dense :class:`neurosim.nn.RLIF` and the Linear feeding it, both mapped, are one matrix on the chip (module
    docstring, *Recurrent layers*): with read noise or an ADC the Linear becomes a :class:`CrossbarStackedInput`
    and the ``.recurrent`` a :class:`CrossbarStackedFeedback` of the same cells. A BatchNorm right after a mapped
    Linear or Conv2d (a recurrent layer's input Linear included) is folded into its programmed weights and bias (and
    becomes an ``nn.Identity``) where the NIR export folds it for the energy model (module docstring, *BatchNorm*).

    Args:
        model: a trained model (e.g. a neurosim ``Sequential``).
        cfg: the non-idealities.
        seed: the chip: the same seed gives the same programming draws and the same read-noise sequence, each
            effect drawing from a stream of its own (module docstring, *Random streams*).
        layers: module names to map onto crossbars (default: :func:`crossbar_layers`, every Linear and Conv2d and
            the recurrent weights of every :class:`neurosim.nn.RLIF`).
    """
    if not isinstance(cfg, NonIdealConfig):
        raise TypeError(f"cfg must be a NonIdealConfig, got {type(cfg).__name__}")
    chip = copy.deepcopy(model)
    names = _targets(chip, layers)
    if cfg.ideal:
        return chip
    for name in names:
        if parametrize.is_parametrized(chip.get_submodule(name)):
            # a computed weight (a converted snnTorch layer's one shared V, weight_norm, spectral_norm): on the chip
            # each cell is programmed, and drawn, on its own, so the copy's layer holds the weight's current values
            _unparametrize(chip.get_submodule(name))
    folded = _folded(chip, names)
    one_to_one = {n for n in names if _one_to_one(chip, n)}
    stacked = {k: v for k, v in _stacked(chip, names, folded).items() if v not in one_to_one}
    gen = torch.Generator().manual_seed(_stream_seed(seed, "program"))
    drift_gen = torch.Generator().manual_seed(_stream_seed(seed, "drift"))
    # the ADC's full scale from the cells as programmed (module docstring); the same as the cells read without drift
    at_t0 = cfg.adc_calibration == "programmed" and cfg.adc_bits is not None and cfg._drifts
    compensated = cfg.drift_compensation and cfg._drifts
    programmed = {}
    for i, name in enumerate(names):
        m = chip.get_submodule(name)
        w, bias = m.weight.detach(), m.bias
        if name in one_to_one:  # a dense recurrence zero off its diagonal: its N weights, as CrossbarDiagonal's
            w = w.diagonal()
        bn = folded.get(name)
        if bn is not None:  # the chip holds the folded weights (the BatchNorm at inference), as the export gives them
            from neurosim.export.nir import _fold_bn

            w, bias = _fold_bn(w, bias, chip.get_submodule(bn), bn)
            _set_module(chip, bn, nn.Identity())
            if not cfg.per_read and m.bias is None:  # the programmed weights go into the layer, with a bias
                m.bias = nn.Parameter(torch.empty_like(bias), requires_grad=m.weight.requires_grad)
        g_pos, g_neg, scale, *t0, raw_scale = _program(w.cpu(), cfg, gen, drift_gen)
        dev = m.weight.device
        g_pos, g_neg, t0 = g_pos.to(dev), g_neg.to(dev), [g.to(dev) for g in t0]
        if not cfg.per_read:
            if compensated and (name in stacked or name in stacked.values()):
                programmed[name] = (g_pos, g_neg, scale, bias, None, m.training, t0, raw_scale)
                continue  # written below, with its array's drift compensation
            # a stacked layer's two matrices compute exactly what they do apart (no read noise, no ADC)
            with torch.no_grad():
                w_chip = combine_slices(g_pos, g_neg, scale, cfg)
                m.weight.copy_(torch.diag(w_chip) if name in one_to_one else w_chip)
                if bn is not None:
                    m.bias.copy_(bias)
            continue
        read_gen = torch.Generator(device=dev).manual_seed(_stream_seed(seed, "read", i))
        programmed[name] = (g_pos, g_neg, scale, bias, read_gen, m.training, t0, raw_scale)
        if isinstance(m, nn.Conv2d):
            new = CrossbarConv2d(g_pos, g_neg, scale, bias, cfg, read_gen, stride=m.stride, padding=m.padding,
                                 dilation=m.dilation, groups=m.groups, padding_mode=m.padding_mode)
        elif isinstance(m, DiagonalRecurrent) or name in one_to_one:
            new = CrossbarDiagonal(g_pos, g_neg, scale, bias, cfg, read_gen)
        elif name in stacked or name in stacked.values():
            continue  # built below, once both its matrices are programmed
        else:
            new = CrossbarLinear(g_pos, g_neg, scale, bias, cfg, read_gen)
        if at_t0:
            new.calibrate(*t0)
        _set_module(chip, name, new.train(m.training))
    for name, rec in stacked.items():
        if cfg.per_read:
            _stack(chip, cfg, name, programmed[name], rec, programmed[rec], at_t0)
        elif compensated:  # each matrix's weights in its array's one read-out: its own scale times the array's α
            _, _, gain = _stack_read_out(programmed[name], programmed[rec], cfg)
            for key in (name, rec):
                g_pos, g_neg, _, bias, _, _, _, raw_scale = programmed[key]
                m = chip.get_submodule(key)
                with torch.no_grad():
                    m.weight.copy_(combine_slices(g_pos, g_neg, raw_scale * gain, cfg))
                    if folded.get(key) is not None:
                        m.bias.copy_(bias)
    return chip


def _stack_read_out(inp: tuple, rec: tuple, cfg: NonIdealConfig) -> tuple[torch.Tensor, float, float]:
    """A stacked array's ``(row amplitudes, read-out scale S, drift compensation factor α)`` from its input and
    recurrent matrices as :func:`apply_nonidealities` programmed them (:func:`_stack`).

    Each matrix's rows are read at ``scale / S``, its read-out scale before drift compensation (``w_max``'s) over the
    larger one ``S``: the energy model's amplitude ``max|W| / max over the stack of max|W|``. The array has one α
    (1 without drift compensation), from its calibration reads with every row driven at its amplitude: a digital
    gain on its columns after the ADC, and the columns add both matrices' currents, so there is no α of each
    matrix to apply (module docstring, *Recurrent layers*)."""
    (gp_in, gn_in, *_, t0_in, s_in), (gp_rec, gn_rec, *_, t0_rec, s_rec) = inp, rec
    top = max(s_in, s_rec)
    inputs, n = gp_in.shape[-1], gp_rec.shape[-1]
    amplitude = torch.cat([torch.full((inputs,), s_in / top if top else 1.0, dtype=torch.float64),
                           torch.full((n,), s_rec / top if top else 1.0, dtype=torch.float64)])
    gain = 1.0
    if cfg.drift_compensation and cfg._drifts and top:
        driven = amplitude.to(gp_in)
        now, then = [[torch.cat([a, b], dim=-1) * driven for a, b in pairs]
                     for pairs in (((gp_in, gp_rec), (gn_in, gn_rec)), tuple(zip(t0_in, t0_rec)))]
        gain = _drift_gain(tuple(then), tuple(now), cfg)
    return amplitude, top, gain


def _stack(chip: nn.Module, cfg: NonIdealConfig, name: str, inp: tuple, rec_name: str, rec: tuple,
           at_t0: bool) -> None:
    """Put a dense recurrent layer's programmed input (``name``) and recurrent (``rec_name``) matrices on one array:
    ``[W_in | W_rec]`` on its rows, input rows first, each matrix's rows read at the amplitude ``scale / S`` of its
    own read-out scale over the larger one ``S`` (so the columns' currents add the two matrices' products as their
    weights do), converted tile by tile over the whole stack (module docstring, *Recurrent layers*).

    The amplitudes and the array's one drift compensation factor α (in its read-out scale) are
    :func:`_stack_read_out`'s."""
    (gp_in, gn_in, _, b_in, read_gen, training, t0_in, _), (gp_rec, gn_rec, _, b_rec, *_, t0_rec, _) = inp, rec
    amplitude, top, gain = _stack_read_out(inp, rec, cfg)
    inputs = gp_in.shape[-1]
    g_pos, g_neg = torch.cat([gp_in, gp_rec], dim=-1), torch.cat([gn_in, gn_rec], dim=-1)
    xbar = CrossbarLinear(g_pos, g_neg, top * gain, None, cfg, read_gen, row_amplitude=amplitude)
    if at_t0:
        xbar.calibrate(*(torch.cat([a, b], dim=-1) for a, b in zip(t0_in, t0_rec)))
    rows = _StepRows()
    _set_module(chip, name, CrossbarStackedInput(xbar, inputs, b_in, rows).train(training))
    _set_module(chip, rec_name, CrossbarStackedFeedback(xbar, inputs, b_rec, rows).train(rec[5]))


#: samples per forward call in :func:`accuracy`: each read's noise is a function of its place in the layer's reads
#: (step · samples + sample), so evaluating in blocks of a fixed size keeps a chip's accuracy independent of the
#: loader's batch size
EVAL_BLOCK = 128




def _block_outputs(model: nn.Module, x_seq: torch.Tensor, dtype: torch.dtype | None = torch.float32, *,
                  chunked: bool | None = None) -> torch.Tensor:
    """``model``'s outputs over one block of samples ``x_seq [T, B, ...]`` (a compact batch of event counts, or
    floats), each call's input made ``dtype`` (None: as it is, e.g. for a fixed-point chip, which takes counts).

    ``chunked`` (None: where ``model`` carries a state, :func:`neurosim.nn.is_stateful`): a chunk of steps at a time
    (:func:`neurosim.nn.time_chunk`'s, as :func:`neurosim.nn.run_chunked` and ``neurosim evaluate`` run them) with
    the state carried, the same outputs as one call over all steps and only a chunk's ``dtype`` copy (and a chunk's
    activations) in memory at a time; else in one call over all ``T`` steps. A chip with read noise runs chunked
    too: each read's noise is a function of its place in the layer's reads (:func:`read_normals`), not of the
    call's shape."""
    if chunked is None:
        chunked = is_stateful(model)

    def convert(x: torch.Tensor) -> torch.Tensor:
        return x if dtype is None else x.to(dtype)

    if not chunked:
        return model(convert(x_seq))[0]
    return run_chunked(model, x_seq, steps=time_chunk(model, x_seq), convert=convert)[0]


def _blocks(loader, size: int, max_samples: int | None):
    """``(x_seq, y)`` of ``size`` samples each (the last may be smaller), re-cut from ``loader``'s batches, the first
    ``max_samples`` samples only."""
    xs, ys, held, taken = [], [], 0, 0
    for x_seq, y in loader:
        if max_samples is not None:
            if taken >= max_samples:
                break
            x_seq, y = x_seq[:, : max_samples - taken], y[: max_samples - taken]
        taken += int(y.shape[0])
        xs.append(x_seq)
        ys.append(y)
        held += int(y.shape[0])
        while held >= size:
            x_all, y_all = (xs[0], ys[0]) if len(xs) == 1 else (torch.cat(xs, 1), torch.cat(ys))
            yield x_all[:, :size], y_all[:size]
            xs, ys, held = [x_all[:, size:]], [y_all[size:]], held - size
    if held:
        yield (xs[0], ys[0]) if len(xs) == 1 else (torch.cat(xs, 1), torch.cat(ys))


@torch.no_grad()
def accuracy(model: nn.Module, loader, *, device: str | torch.device | None = None,
             max_samples: int | None = None, loss: str | None = None) -> float:
    """Test accuracy in percent (0–100) over ``(x_seq, y)`` batches, run in blocks of :data:`EVAL_BLOCK` samples
    whatever the loader's batch size (a chip's read noise is drawn per read, a function of its place in the
    layer's reads: step · samples + sample). The prediction is the read-out of the loss named ``loss`` (the run's
    ``train.loss``: :func:`neurosim.training.predict`); None: ``argmax Σ_t out_t``.

    A :class:`neurosim.data.FrameLoader`'s batches are taken compact (uint8 event counts) and each block runs a
    chunk of steps at a time (:func:`_block_outputs`: the same outputs, bit for bit, read noise included)."""
    from neurosim.training.losses import predict
    from neurosim.training.trainer import _compact_batches

    if device is None:
        p = next(iter(model.parameters()), None)
        if p is None:
            p = next(iter(model.buffers()), None)
        device = p.device if p is not None else torch.device("cpu")
    was = model.training
    model.eval()
    correct = total = 0
    try:
        for x_seq, y in _blocks(_compact_batches(loader), EVAL_BLOCK, max_samples):
            out_seq = _block_outputs(model, x_seq.to(device))
            correct += int((predict(out_seq, loss).cpu() == y.cpu()).sum())
            total += int(y.shape[0])
    finally:
        model.train(was)
    if total == 0:
        raise ValueError("accuracy: the loader yielded no samples")
    return 100.0 * correct / total


def evaluate_nonideal(model: nn.Module, loader, cfg: NonIdealConfig, *, chips: int = 5, seed: int = 0,
                      layers: Iterable[str] | None = None, device: str | torch.device | None = None,
                      max_samples: int | None = None, loss: str | None = None) -> dict:
    """Accuracy of ``model`` on ``chips`` Monte-Carlo chips of ``cfg``, next to the ideal accuracy (``loss``: as
    for :func:`accuracy`).

    Chip ``i`` uses seed ``seed + i`` (see :func:`apply_nonidealities`), so results are reproducible.

    Returns:
        ``{"ideal", "mean", "std", "per_chip", "chips", "config"}``; accuracies in percent (0–100),
        ``std`` the sample standard deviation over chips (0 for one chip).
    """
    if isinstance(chips, bool) or not isinstance(chips, int) or chips < 1:
        raise ValueError(f"chips must be a positive integer, got {chips!r}")
    ideal = accuracy(model, loader, device=device, max_samples=max_samples, loss=loss)
    per_chip = [accuracy(apply_nonidealities(model, cfg, seed + i, layers=layers), loader, device=device,
                         max_samples=max_samples, loss=loss) for i in range(chips)]
    mean = sum(per_chip) / chips
    std = math.sqrt(sum((a - mean) ** 2 for a in per_chip) / (chips - 1)) if chips > 1 else 0.0
    return {"ideal": ideal, "mean": mean, "std": std, "per_chip": per_chip, "chips": chips, "config": cfg.to_dict()}


def noise_aware_finetune(model: nn.Module, loader, cfg: NonIdealConfig, *, epochs: int = 2, lr: float = 5e-4,
                         seed: int = 0, loss: str = "rate_ce", grad_clip: float | None = 1.0,
                         layers: Iterable[str] | None = None, device: str | torch.device | None = None) -> nn.Module:
    """Fine-tune a copy of ``model`` with a fresh chip's programming effects in every forward pass.

    Each batch draws new quantisation/variation/fault/drift perturbations of the current weights and trains through
    them with a straight-through gradient (:func:`perturb_weight`), so the weights move to where a chip's
    deviations hurt less; ``layers`` (default :func:`crossbar_layers`, recurrent weights included) are the
    perturbed ones. Read noise and the ADC are not injected. Adam, ``loss`` from
    :func:`neurosim.training.get_loss`.

    A layer whose BatchNorm the chip folds (:func:`apply_nonidealities`) is perturbed as the chip programs it: the
    draw is made on the folded weights ``W·k`` (``k = γ/√(σ² + ε)`` per output, the BatchNorm's running statistics
    at the batch) against their own largest weight, and divided back by ``k``, so that the layer with its BatchNorm
    at inference computes the chip's folded weights. The model keeps its unfolded parameters and its BatchNorm,
    which trains as it does without noise (batch statistics, running statistics updated); the straight-through
    gradient reaches ``W``, ``γ`` and ``β`` as without noise.

    A parametrized weight (``weight_norm``, a converted snnTorch layer's one shared ``V``) is drawn as the plain
    weight of its current values, a draw for each of its cells as on the chip, and the straight-through gradient
    reaches the parametrization's own parameters (one shared ``V`` stays one value). A ``spectral_norm`` takes one
    power-iteration step of its ``u``, ``v`` per batch, where the weight is read for the draw, and the forward
    computes the weight drawn from (its parametrizations in eval mode there).

    A dense recurrence zero off its diagonal, which :func:`apply_nonidealities` programs as ``N`` weights on pairs of
    cells (module docstring, *Recurrent layers*), is drawn so, as ``connectivity="diagonal"``'s is: the cells off
    its diagonal, which that chip does not have, add no feedback, and the gradient reaches its diagonal alone, so the
    fine-tuned recurrence is still zero off its diagonal (that chip's) where its weight is a plain one.

    Returns:
        The fine-tuned copy (``model`` itself is not changed).
    """
    from torch.func import functional_call

    from neurosim.training.losses import get_loss

    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    tuned = copy.deepcopy(model)
    if device is not None:
        tuned = tuned.to(device)
    dev = next(tuned.parameters()).device
    names = _targets(tuned, layers)
    folded = _folded(tuned, names)
    tuned.eval()  # (a spectral_norm weight read in training mode would take a power-iteration step)
    one_to_one = {n for n in names if _one_to_one(tuned, n)}  # programmed as N weights, as the chip does
    loss_fn = get_loss(loss)
    opt = torch.optim.Adam(tuned.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(int(seed))
    # a parametrized weight (weight_norm, a converted snnTorch layer's shared V) is computed by its module: given to
    # functional_call it would be assigned through the parametrization's right_inverse, in place of its parameters;
    # its chip draw is the last step of its own parametrizations instead, while fine-tuning
    draws = {n: _ChipDraw(n in one_to_one) for n in names
             if parametrize.is_parametrized(tuned.get_submodule(n), "weight")}
    for n, draw in draws.items():
        steps = tuned.get_submodule(n).parametrizations.weight
        steps.eval()  # registering reads the weight: not a power-iteration step of spectral_norm (tuned.train() below)
        parametrize.register_parametrization(tuned.get_submodule(n), "weight", draw)
    tuned.train()
    try:
        for epoch in range(epochs):
            if hasattr(loader, "set_epoch"):
                loader.set_epoch(epoch)
            for x_seq, y in loader:
                x_seq, y = x_seq.to(dev).float(), y.to(dev)
                params = {}
                for n in names:
                    if n in draws:
                        draws[n].chip = None  # the weight its parametrizations compute, without the last draw
                    w = tuned.get_submodule(n).weight
                    if n in one_to_one:  # its N weights, as CrossbarDiagonal's: nothing drawn off the diagonal
                        chip = torch.diag(effective_weight(w.detach().diagonal().cpu(), cfg, gen)).to(dev)
                        w = torch.diag(w.diagonal())  # (the straight-through gradient reaches the diagonal alone)
                    else:
                        chip = (effective_weight(w.detach().cpu(), cfg, gen).to(dev) if n not in folded
                                else _unfold_chip(w, tuned.get_submodule(folded[n]), cfg, gen, folded[n]))
                    if n in draws:
                        draws[n].chip = chip.detach()
                    else:
                        params[f"{n}.weight"] = w + (chip - w).detach()
                # the drawn weights were computed above, in training mode: spectral_norm took its one power-iteration
                # step of the batch there. The forward computes them again (a recurrent layer's once per step) with
                # those u, v: the weight the chip was drawn from, with no further step (each read in training mode
                # took one: 2 per batch, T + 1 for a recurrence, where training without noise takes 1 per read)
                for n in draws:
                    tuned.get_submodule(n).parametrizations.weight.eval()
                try:
                    out_seq, _ = functional_call(tuned, params, (x_seq,))
                finally:
                    for n in draws:
                        tuned.get_submodule(n).parametrizations.weight.train()
                l = loss_fn(out_seq, y)
                opt.zero_grad(set_to_none=True)
                l.backward()
                if grad_clip:
                    nn.utils.clip_grad_norm_(tuned.parameters(), grad_clip)
                opt.step()
    finally:
        for n in draws:
            steps = tuned.get_submodule(n).parametrizations.weight
            del steps[len(steps) - 1]
    tuned.eval()
    return tuned


class _ChipDraw(nn.Module):
    """The last parametrization of a parametrized weight while :func:`noise_aware_finetune` trains: the weight its
    own parametrizations compute plus this batch's chip deviation, with a straight-through gradient
    (:func:`perturb_weight`); the weight itself where no draw is set. ``diagonal``: a one-to-one recurrence's
    ``N × N`` weight, whose gradient reaches its diagonal alone."""

    def __init__(self, diagonal: bool = False) -> None:
        super().__init__()
        self.chip: torch.Tensor | None = None
        self.diagonal = diagonal

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if self.chip is None:
            return weight
        if self.diagonal:
            weight = torch.diag(weight.diagonal())
        return weight + (self.chip - weight).detach()


def _unfold_chip(weight: torch.Tensor, bn: nn.modules.batchnorm._BatchNorm, cfg: NonIdealConfig,
                 gen: torch.Generator, where: str) -> torch.Tensor:
    """One chip's programming effects on ``weight`` folded with the BatchNorm ``bn`` after it, as the chip programs
    it (``W·k``, ``k = γ/√(σ² + ε)`` per output, the running statistics), divided back by ``k``: the weight before
    ``bn`` with which the layer and ``bn`` at inference compute what the chip does. An output with ``k = 0`` (γ = 0),
    which the BatchNorm zeroes whatever its weights, keeps its weights."""
    from neurosim.export.nir import _fold_bn

    w = weight.detach()
    f64 = torch.float64
    k = 1.0 / torch.sqrt(bn.running_var.detach().to(f64) + bn.eps)
    if bn.affine:
        k = k * bn.weight.detach().to(f64)
    k = k.reshape(-1, *[1] * (w.dim() - 1))
    chip = effective_weight(_fold_bn(w, None, bn, where)[0].cpu(), cfg, gen).to(device=w.device, dtype=f64)
    return torch.where(k != 0, chip / k, w.to(f64)).to(w.dtype)

r"""A trained model run in a digital chip's number formats: integer weights, thresholds, decays and membranes,
simulated step by step as the chip computes them, and the test accuracy that results.

The energy estimates (:mod:`hardware_models`) assume the chip computes what the float model does. It does not:
weights are a few bits, decays 12-bit fractions, membranes saturate, and some neurons cannot leak or reset the
way the model does. :func:`to_chip` builds the integer model of one digital target; :func:`evaluate_fixed_point`
compares its test accuracy with the float model's and with the float model holding the chip's weights
(:func:`chip_weights_model`); :func:`chip_activity` records the chip's own spikes, which
:func:`neurosim.estimation.chip_energy` prices next to the float model's; :func:`fixed_point_reports` runs both for
several targets (``neurosim estimate --fixed-point``, the demo's report).

Every chip takes the model as it would be exported: BatchNorm folded into the weights before it, dropout dropped,
an average pool run as a sum pool with its 1/k² folded into the next layer's weights, an LI layer only as the
read-out. Inputs must be whole numbers (spikes or event counts; Speck and SpiNNaker: not negative).

The arithmetic follows the target spec's ``arithmetic`` option, with the spec's ``[precision]`` constants:

``loihi`` — Intel Loihi's compartments and dense synapses, as Lava's bit-accurate process models compute them
(lava-nc/lava, ``src/lava/proc/lif/models.py`` ``PyLifModelBitAcc``, ``src/lava/proc/dense/models.py``
``PyDenseModelBitAcc``, ``src/lava/utils/weightutils.py``; Davies et al. 2018):

* a weight is a 9-bit word: even values in [−256, 254] in a mixed-sign matrix (its lowest bit dropped: 8
  significant bits), [0, 255] or [−255, 0] in a matrix of one sign (Lava's default sign mode); each matrix's summed
  input is shifted by its own exponent in [−8, 7] (a right shift rounds down), then by 6 bits into the 24-bit
  current ``u``; convolutions follow the same rules (Lava's own fixed-point Conv model is not bit-accurate);
* ``u ← trunc(u·(4096 − d_u)/4096) + input``, wrapping at ±2^23; ``v ← trunc(v·(4096 − d_v)/4096) + u + bias``,
  saturating at ±(2^23 − 1) (``trunc`` rounds toward zero, as the hardware's sign-magnitude shift does; the
  current's decay is ``d_u + 1``: ``d_u = 4095`` clears it every step, a plain LIF);
* a neuron spikes when ``v`` exceeds its threshold (a 17-bit mantissa shifted by 6) and resets to zero; the bias
  is a 13-bit mantissa times 2^0…2^7, added to ``v`` every step.

``dynapcnn`` — SynSense Speck / DYNAP-CNN cores, as sinabs maps a network onto them
(synsense/sinabs, ``sinabs/backend/dynapcnn/discretize.py``, ``chips/dynapcnn.py``, ``docs/speck/dangers.md``):

* one scale per layer brings its weights and biases to 8-bit integers and its threshold to the 16-bit state
  (sinabs' ``determine_discretization_scale``: the largest scale at which all three fit); the state's floor is the
  bottom of the 16-bit register, −2^15 (sinabs does so where a layer's ``min_v_mem`` is −2^15/scale; left at None,
  sinabs scales −2^15 as if it were in the model's units, which caps the scale at 1 and rounds most trained weights
  to zero);
* integrate-and-fire neurons: no leak (a model's β < 1 is dropped, and the report says so), the bias added every
  step (the chip adds it per leak-clock tick: one tick per time step is assumed), the state kept in
  [−2^15, 2^15 − 1]; per step a neuron emits ``⌊v/θ⌋`` spikes and subtracts as many thresholds, or resets to
  zero (sinabs' ``MultiSpike``, which its documentation recommends for matching the asynchronous chip), but at most
  one spike per input event that reached it in the step (the chip checks its threshold once per event: sinabs'
  ``docs/speck/faqs/tips_for_training.md``, "Weight Clipping During Training");
* pooling sums (sinabs' ``SumPool2d``): a max pool passes every spike of its window on.

``spinnaker`` — SpiNNaker 1 as sPyNNaker runs ``IF_curr_delta`` (LIF, RLIF, a read-out LI) and ``IF_curr_exp``
(CubaLIF with α > 0) on its ARM cores (SpiNNakerManchester/sPyNNaker master at 891cfb3: ``neural_modelling/src/neuron/
models/neuron_model_lif_impl.h``, ``synapse_types/synapse_types_delta_impl.h``, ``exp_synapse_utils.h``,
``neuron/decay.h``, ``synapse_row.h``, ``synapses.c``, ``neuron.c``, ``implementations/neuron_impl_standard.h``,
``common/maths-util.h``; ``spynnaker/pyNN/models/neuron/abstract_population_vertex.py``; spinn_common at 1e3a090:
``src/stdfix-exp.c``, ``include/utils.h``; GCC's ``gcc/config/arm/arm-fixed.md``):

* every value is an ``accum`` (s16.15, 32 bits) but the synaptic decays (u0.32); GCC multiplies accums without
  rounding (the product rounded down) and adds them as plain 32-bit integers: nothing saturates, everything wraps;
* a weight is a 16-bit magnitude, its sign the synapse type: a layer becomes an excitatory and an inhibitory
  projection; a step's spikes add their weights into a 16-bit ring buffer per neuron and type, which saturates at
  0xFFFF, and enters as ``sum << shift``; the shift per type is sPyNNaker's own: the smallest power of two above the
  worst sum Σ n·w_max (the most synapses into one neuron, times a sum pool's window, times the largest weight, in
  nA), so the weights keep 15 bits of that bound;
* the core computes ``R = tau_m / cm``, ``exp_TC = expk(−dt/tau_m)`` and the exponential synapse's ``decay =
  expulr(−dt/tau_syn)`` and input scale ``init = (tau_syn/dt)·(1.0ulr − decay)`` itself, with spinn_common's
  table-based exponential (reproduced here bit for bit); per step: synaptic input ``+= sum << shift`` (exp:
  ``+= ((sum << shift) · init) >> 32``), ``I = exc − inh + i_offset``, ``A = I·R``, ``V ← A − exp_TC·(A − V)``, a
  spike where ``V ≥ v_thresh``, ``V ← v_reset = 0``, then the synaptic input decays (delta: to 0; exp:
  ``(x · decay) >> 32``); ``tau_refrac = 0``. The counts: ``at_top``, the ring-buffer entries held at 0xFFFF in a
  step; ``wrapped``, the accum results that wrapped.

What is chosen here, not by the chip: the scale of each layer. Loihi: the threshold is ``THRESHOLD_UNITS`` = 2^14
voltage units (a 256 mantissa: headroom of 512 thresholds before saturation, decay rounding 1/16384 of a
threshold per step), each weight matrix takes the smallest exponent at which its largest weight fits (the most
significant bits), each bias the smallest exponent that fits. A non-spiking read-out takes the scale at which one
step of every input at once with its bias (Σ |w| + |b|) is 2^14, and is a compartment with the largest threshold (Lava's LIF always
fires: within 64 units of saturation it resets). Speck: sinabs' rule above. SpiNNaker: the PyNN parameters, as
s16.15 words (so that sPyNNaker's rounding to them is exact): ``tau_m`` (and ``tau_syn``) whose decay, as the core
computes it, is nearest the model's β (α) — β = 1 and α = 1 are out of reach (``exp_TC = 1`` would ignore the
input, ``expulr(0)`` is 0), the slowest decays are used and noted —, ``cm = tau_m`` (``R`` = 1 MΩ exactly), and the
scale (mV per unit of the model) at which the worst step's ``A = I·R`` (every input at once, Σ |w| + |b|, over
``1 − exp_TC``, and ``1 − α`` for a current) and the threshold are at most 2^14 mV, so that ``A − V`` never wraps
with one spike per input and step; the weights in nA follow (``scale / ((1 − exp_TC)·init)`` nA per unit of the
model's weight, ``init`` = 1 for a delta synapse),
the bias is ``i_offset`` (over ``1 − α`` for a CubaLIF, whose bias the model feeds through the current), a read-out
is a LIF whose threshold is the largest accum.

Not simulated: Lava's int32 overflow of a huge summed input (``a_in << 6`` past 2^31, which the hardware's
narrower input would not reach either: here it is computed exactly), Loihi's and SpiNNaker's one-step delay per
synapse layer (a network of ``L`` layers answers ``L``
steps late on the chip; the time-summed read-out here sees every step; a recurrent connection's delay is simulated),
the asynchronous order of Speck's events within a time step, input spikes above one per axon and step (counts enter
as graded inputs; on SpiNNaker as that many spikes), sPyNNaker's local-only convolutions (a convolution runs as its
connection list), and where a layer does not fit a core (the estimate's mapping reports that).

Example:
    >>> import torch
    >>> from neurosim import nn as nsn
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = nsn.Sequential(nsn.Linear(4, 3), nsn.LIF(beta=0.5))
    >>> chip = to_chip(model, "loihi")
    >>> spikes, _ = chip(torch.ones(5, 2, 4))
    >>> spikes.shape, chip.layers[0]["threshold_int"]
    (torch.Size([5, 2, 3]), 16384)
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["THRESHOLD_UNITS", "ChipFormat", "ChipModel", "ChipNeuron", "ChipSynapse",
           "chip_activity", "chip_format", "chip_weights_model", "evaluate_fixed_point", "fixed_point_reports", "fixed_point_targets",
           "format_fixed_point", "formats_key", "to_chip"]

#: the report's note on the energy estimates, which price the float model's spikes
ENERGY_NOTE = ("the energy estimates price the float model's activity; the chip's own spikes (spikes per neuron and "
               "step in the table) are priced by neurosim.estimation.chip_energy (neurosim estimate --fixed-point "
               "prints both)")
#: Loihi: the threshold in voltage units (see the module docstring)
THRESHOLD_UNITS = 2 ** 14


@dataclass(frozen=True)
class ChipFormat:
    """The number formats of one digital target (its spec's ``[precision]`` constants)."""

    target: str
    arithmetic: str  # "loihi" | "dynapcnn" | "spinnaker"
    # weight bits: Loihi 8 (the magnitude bits of a 9-bit word), Speck 8 (a signed byte), SpiNNaker 16 (an unsigned
    # magnitude, the sign given by the synapse type)
    weight_bits: int
    state_bits: int  # membrane (and Loihi's current) register width
    threshold_bits: int
    bias_bits: int
    weight_exp_bits: int = 0  # signed exponent of a weight matrix (Loihi: 4 → [−8, 7]); 0: one common scale
    bias_exp_bits: int = 0  # unsigned exponent of a bias (Loihi: 3 → 0..7)
    decay_bits: int = 0  # 0: no leak (integrate-and-fire)
    input_shift: int = 0  # Loihi: 6 bits of MSB alignment of the synaptic input and the threshold
    fraction_bits: int = 0  # SpiNNaker: fractional bits of the s16.15 accum (membrane, currents, threshold)

    @property
    def state_max(self) -> int:
        return 2 ** (self.state_bits - 1) - 1

    @property
    def weight_exps(self) -> range:
        if not self.weight_exp_bits:
            return range(0, 1)
        half = 2 ** (self.weight_exp_bits - 1)
        return range(-half, half)


def chip_format(target) -> ChipFormat:
    """The :class:`ChipFormat` of a digital ``target`` (name, spec path or ``hardware_models.Spec``).

    Raises:
        ValueError: the target is not digital, or its spec gives no ``arithmetic`` (no published number formats
            to simulate), naming the target.
    """
    from hardware_models import Spec, load_spec

    spec = target if isinstance(target, Spec) else load_spec(target)
    if spec.kind != "digital":
        raise ValueError(f"target {spec.name!r} is a {spec.kind} target; fixed-point simulation is for digital "
                         "neuromorphic chips (for RRAM crossbars use --nonideal)")
    arithmetic = spec.options.get("arithmetic")
    if arithmetic is None:
        raise ValueError(f"target {spec.name!r}: its spec gives no arithmetic (no published number formats of its "
                         f"neurons and synapses to simulate); targets that do: {fixed_point_targets()}")
    from hardware_models.specs import ARITHMETIC_NEEDS

    values = {k: int(spec.constants[f"precision.{k}"].value) for k in ARITHMETIC_NEEDS[arithmetic]}
    return ChipFormat(target=spec.name, arithmetic=arithmetic, **values)


def fixed_point_targets() -> list[str]:
    """The shipped targets whose spec gives an ``arithmetic`` (those :func:`to_chip` can simulate)."""
    from hardware_models import list_targets, load_spec

    return [t for t in list_targets() if "arithmetic" in load_spec(t).options]


def formats_key(spec) -> tuple:
    """What a target's integer model depends on (its arithmetic and ``[precision]`` constants): two targets with
    the same key (``loihi`` and ``loihi_sanafe``, one chip with two energy calibrations) give the same result."""
    return (spec.options.get("arithmetic"),
            tuple(sorted((k, c.value) for k, c in spec.constants.items() if k.startswith("precision."))))


# ------------------------------------------------------------------------------------------------ SpiNNaker's core
# sPyNNaker computes its decays on the ARM core from the s16.15 parameters it is given (neuron_model_lif_impl.h:
# exp_TC = expk(-kdivk(dt, tau_m)); exp_synapse_utils.h: decay = expulr(-kdivk(dt, tau_syn))), with spinn_common's
# table-based exponential (src/stdfix-exp.c). These functions compute the same integers: every argument and result
# is the int32 bit pattern of the fixed-point value (s16.15 for accums, u0.32 for unsigned long fracts).
_M32 = 2 ** 32 - 1


def _exp_tables() -> tuple[tuple[int, ...], tuple[int, ...]]:
    """stdfix-exp.c's ``__exp_hi[i] = round(e^(i − 13) · 2^32)`` (i = 0..25) and ``__expm1_mid[j] =
    round((1 − e^(−j/16)) · 2^32)`` (j = 0..15), the nearest integers, computed to 50 digits."""
    import decimal

    ctx = decimal.Context(prec=50)
    two32 = decimal.Decimal(2 ** 32)

    def nearest(x):
        return int(ctx.multiply(x, two32).to_integral_value(decimal.ROUND_HALF_EVEN))

    hi = tuple(nearest(ctx.exp(decimal.Decimal(i - 13))) for i in range(26))
    mid = tuple(nearest(ctx.subtract(1, ctx.exp(ctx.divide(-j, 16)))) for j in range(16))
    return hi, mid


_EXP_HI, _EXPM1_MID = _exp_tables()
_EXP_SERIES = (5294, 4293434720, 2081624032)  # stdfix-exp.c __exp_series: c0 + x·(c1 − c2·x), x in [0, 1/16)


def _scale64(x: int, y: int) -> int:
    """utils.h ``scale64``: ``x · y / 2^32`` for a 64-bit ``x`` and a u0.32 ``y``; the low word's product is
    rounded up where its fraction is at least 0x7FFFFFFF (``round64``)."""
    low = (x & _M32) * y
    return (low >> 32) + ((low & _M32) >= 0x7FFFFFFF) + (x >> 32) * y


def _exp_series(y: int) -> int:
    """``1 − e^(−y/2^32)`` in u0.32 by stdfix-exp.c's quadratic, in 32-bit unsigned arithmetic."""
    c0, c1, c2 = _EXP_SERIES
    t = (c1 - ((c2 * y) >> 32)) & _M32
    return (((t * y) >> 32) + c0) & _M32


def _expi64(n: int) -> int:
    """``e^(n/2^15) · 2^32`` as stdfix-exp.c's ``__expi64``: the integer part from ``__exp_hi``, the fraction in
    steps of 1/16 (``__expm1_mid``) and the rest by the series."""
    z, f = n >> 15, n & 0x7FFF
    if f == 0:
        return _EXP_HI[13 + z]
    z, f = z + 1, 32768 - f
    t = _EXP_HI[13 + z]
    t -= _scale64(t, _EXPM1_MID[f >> 11])
    return t - _scale64(t, _exp_series((f & 0x7FF) << 17))


def _spinn_expk(n: int) -> int:
    """spinn_common ``expk``: ``e^x`` in s16.15 (``x = n/2^15``), rounded down; 0 below −10.4, 2^31 − 1 above 11.1."""
    if n > 363408:
        return 2 ** 31 - 1
    return 0 if n < -340695 else _expi64(n) >> 17


def _spinn_expulr(n: int) -> int:
    """spinn_common ``expulr``: ``e^x`` in u0.32, the low 32 bits of ``__expi64`` (so ``e^0`` gives 0)."""
    if n > 363408:
        return 2 ** 31 - 1
    return 0 if n < -340695 else _expi64(n) & _M32


def _spinn_kdivk(a: int, b: int) -> int:
    """maths-util.h ``kdivk``: ``a/b`` for s16.15 bit patterns, an unsigned 64-bit division rounding down, the
    quotient's low 32 bits read as an s16.15."""
    q = (((a & _M32) << 15) // (b & _M32)) & _M32
    return q - 2 ** 32 if q >= 2 ** 31 else q


def _wrap32(x: torch.Tensor) -> torch.Tensor:
    """``x`` (int64) modulo 2^32 as a signed 32-bit value: what the ARM's 32-bit adds and products leave."""
    return ((x + 2 ** 31) & _M32) - 2 ** 31


# ------------------------------------------------------------------------------------------------ the chip parts
def _integral(x: torch.Tensor) -> bool:
    return bool(torch.equal(x, torch.round(x)))


class ChipSynapse(nn.Module):
    """A Linear or Conv2d with integer weights, its summed input shifted as the chip does.

    Output in the next neuron's voltage units: Loihi ``floor(Σ w·s · 2^exp) · 2^input_shift`` (``w`` the 9-bit
    word), Speck ``Σ w·s``. SpiNNaker (``weight_neg`` given): the two ring-buffer sums of a step, ``Σ w⁺·s`` of
    the excitatory synapses and ``Σ w⁻·s`` of the inhibitory ones (16-bit magnitudes), side by side on the channel
    axis (``[N, 2·out, ...]``), before the ring buffer's saturation, which the neuron applies. Inputs are whole
    numbers (spikes or event counts: :class:`ChipModel` checks)."""

    def __init__(self, name: str, op: str, weight_int: torch.Tensor, exp: int, post_shift: int,
                 conv: dict | None = None, weight_neg: torch.Tensor | None = None) -> None:
        super().__init__()
        self.name, self.op, self.exp, self.post_shift, self.conv = name, op, exp, post_shift, conv
        self.register_buffer("weight_int", weight_int.to(torch.float64))
        self.register_buffer("weight_neg", None if weight_neg is None else weight_neg.to(torch.float64))

    #: Speck: also count the input events reaching each neuron (``events``, ``[T, B, ...]``, set by each call), as
    #: a neuron there fires at most once per input event
    count_events = False
    events: torch.Tensor | None = None

    def _apply(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``w`` applied to ``x`` exactly: in float32 (about twice as fast) when no sum can reach 2^24, the largest
        integer float32 holds exactly with every integer below it, else in float64."""
        bound = float(self._abs_rows(w)) * float(x.abs().max()) if x.numel() else 0.0
        if bound < 2 ** 24:
            x, w = x.to(torch.float32), w.to(torch.float32)
        if self.op == "linear":
            y = F.linear(x, w)
        elif self.op == "diagonal":
            y = x * w
        else:
            y = F.conv2d(x, w, None, **self.conv)
        return y.to(torch.float64)

    @staticmethod
    def _abs_rows(w: torch.Tensor) -> torch.Tensor:
        """The largest Σ|w| over one output's inputs (a bound on any partial sum, per unit of input)."""
        return w.abs().reshape(w.shape[0], -1).sum(1).max() if w.dim() > 1 else w.abs().max()

    def step_sum(self, x: torch.Tensor) -> torch.Tensor:
        """Shifted input sum of ``x`` ``[N, ...]`` (one step or a folded sequence)."""
        if self.weight_neg is not None:  # SpiNNaker: the excitatory and the inhibitory ring buffer
            return torch.cat([self._apply(x, self.weight_int), self._apply(x, self.weight_neg)], dim=1)
        acc = self._apply(x, self.weight_int)
        if self.exp < 0:
            acc = torch.floor(acc * 2.0 ** self.exp)  # an arithmetic right shift rounds down
        shift = self.post_shift + max(self.exp, 0)
        return acc * 2.0 ** shift if shift else acc

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        x_seq = x_seq.to(torch.float64)
        t, b = x_seq.shape[:2]
        flat = x_seq.reshape(t * b, *x_seq.shape[2:])
        if self.count_events:  # the events that reach each neuron: the spikes through its nonzero weights
            self.events = self._apply(flat, (self.weight_int != 0).to(flat.dtype)).reshape(t, b, *self._out(x_seq))
        return self.step_sum(flat).reshape(t, b, *self._out(x_seq))

    def _out(self, x_seq: torch.Tensor) -> tuple[int, ...]:
        pair = 1 if self.weight_neg is None else 2
        if self.op == "linear":
            return (pair * self.weight_int.shape[0],)
        if self.op == "diagonal":
            return tuple(x_seq.shape[2:])
        probe = F.conv2d(x_seq[0, :1], self.weight_int, None, **self.conv)
        return (pair * probe.shape[1], *probe.shape[2:])

    def extra_repr(self) -> str:
        return f"{self.op}, {tuple(self.weight_int.shape)}, exp={self.exp}"


class ChipNeuron(nn.Module):
    """A layer of chip neurons in integer arithmetic (see the module docstring): ``(x_seq, state) -> (out, state)``.

    ``x_seq`` is the synapse's output: in voltage units on Loihi and Speck; on SpiNNaker the excitatory and the
    inhibitory ring-buffer sums side by side along the channels. Spiking layers return spikes (Speck: spike
    counts); a read-out (``spiking=False``) returns its membrane divided by ``scale`` (the model's units again).
    ``decay_v``/``decay_u``: Loihi's ``d_v`` and effective ``d_u + 1`` (amounts taken off per 4096); SpiNNaker's
    ``exp_TC`` and synaptic ``decay`` (the fractions kept, s16.15 and u0.32)."""

    stateful = True

    def __init__(self, name: str, fmt: ChipFormat, *, scale: float, threshold: int, reset: str, spiking: bool,
                 decay_v: int | None, decay_u: int | None, bias: torch.Tensor | None,
                 recurrent: ChipSynapse | None = None, spinnaker: dict | None = None) -> None:
        super().__init__()
        self.name, self.fmt, self.scale, self.threshold, self.reset = name, fmt, scale, threshold, reset
        self.spiking, self.decay_v, self.decay_u, self.recurrent = spiking, decay_v, decay_u, recurrent
        #: SpiNNaker: the PyNN parameters handed to sPyNNaker as s16.15 words (``pynn``: tau_m, cm, tau_syn,
        #: v_thresh, time_step ...), the ring-buffer shifts per synapse type (``shifts``), the synapse
        #: (``"delta"`` or ``"exp"``) and what the core computes from them (``R``, ``exp_TC``, ``decay``, ``init``)
        self.spinnaker = spinnaker
        self.register_buffer("bias_int", None if bias is None else bias.to(torch.float64))
        self._events_of: list[ChipSynapse] = []  # Speck: the synapse whose input events cap the spikes (not a child)
        self.record_updates = False  # chip_activity: count the neurons updated per step (nonzero input or membrane)
        self.updates: list[torch.Tensor] = []
        self.counts = {"steps": 0, "neuron_steps": 0, "spikes": 0, "saturated": 0, "at_top": 0, "at_floor": 0,
                       "wrapped": 0}

    def _carried(self, state, shape, parts: str) -> tuple:
        """A carried state, checked: the three tensors this layer returned, for neurons of one step's ``shape``."""
        if not (isinstance(state, tuple) and len(state) == 3):
            raise TypeError(f"{self.name}: a chip layer's state is the {parts} it returned, or None")
        if tuple(state[1].shape) != tuple(shape):
            raise ValueError(f"{self.name}: the carried state holds {tuple(state[1].shape)} neurons but this input's "
                             f"step is {tuple(shape)} (another batch size?); continue a run with its own state")
        return state

    def _decay(self, x: torch.Tensor, d: int) -> torch.Tensor:
        unity = 2 ** self.fmt.decay_bits
        return torch.trunc(x * (unity - d) / unity)  # exact: |x·(4096 − d)| < 2^36

    def forward(self, x_seq: torch.Tensor, state=None):
        x_seq = x_seq.to(torch.float64)
        if self.spinnaker is not None:
            return self._forward_spinnaker(x_seq, state)
        shape = x_seq.shape[1:]
        if state is None:
            zeros = x_seq.new_zeros(shape)
            u, v, s = zeros, zeros.clone(), zeros.clone()
        else:
            u, v, s = self._carried(state, shape, "(u, v, s)")
        if x_seq.shape[0] == 0:
            return x_seq.new_zeros(x_seq.shape), (u, v, s)
        bias = 0.0 if self.bias_int is None else self.bias_int.reshape(-1, *([1] * (len(shape) - 2)))
        top = self.fmt.state_max
        loihi = self.fmt.arithmetic == "loihi"
        out = []
        zero = x_seq.new_zeros(())
        # (summed on the device: read once, at the end)
        n_spikes, n_top, n_floor, n_wrapped = zero, zero.clone(), zero.clone(), zero.clone()
        events = None
        if self._events_of:  # this call's input events, taken (not left on the synapse for a later call)
            events, self._events_of[0].events = self._events_of[0].events, None
            if events is not None and events.shape != x_seq.shape:
                events = None
        step_updates = []
        for t, x in enumerate(x_seq):
            if self.recurrent is not None:
                x = x + self.recurrent.step_sum(s)
            if self.record_updates:  # as neurosim.activity counts them on the float model
                step_updates.append((((x + bias) != 0) | (v != 0)).sum())
            if loihi:
                u = x if self.decay_u == 2 ** self.fmt.decay_bits else self._decay(u, self.decay_u) + x
                above, below = u > top + 1, u <= -(top + 1)  # Lava wraps a current beyond ±2^23
                n_wrapped = n_wrapped + above.sum() + below.sum()
                u = torch.where(above, u - 2 * (top + 1), torch.where(below, u + 2 * (top + 1), u))
                v = self._decay(v, self.decay_v) + u + bias
                low = -top
            else:
                v = v + x + bias
                low = -(top + 1)  # the floor: the bottom of the 16-bit state (see the module docstring)
            n_top = n_top + (v > top).sum()
            n_floor = n_floor + (v < low).sum()
            v = v.clamp(low, top)
            if not self.spiking:
                if loihi:  # a compartment with the largest threshold: it resets above it (within 64 of saturating)
                    v = torch.where(v > self.threshold, torch.zeros_like(v), v)
                out.append(v / self.scale)
            elif loihi:
                s = (v > self.threshold).to(v.dtype)
                v = torch.where(s > 0, torch.zeros_like(v), v)
                out.append(s)
            else:  # as many thresholds as v holds, at most one per input event this step
                s = torch.where(v >= self.threshold, torch.floor(v / self.threshold), torch.zeros_like(v))
                if events is not None:
                    s = torch.minimum(s, events[t])
                v = torch.where(s > 0, torch.zeros_like(v), v) if self.reset == "zero" else v - s * self.threshold
                out.append(s)
            if self.spiking:
                n_spikes = n_spikes + s.sum()
        if self.record_updates:
            self.updates.append(torch.stack(step_updates))
        c = self.counts
        top_, floor_ = int(n_top), int(n_floor)
        c["steps"] += x_seq.shape[0]
        c["neuron_steps"] += x_seq[0].numel() * x_seq.shape[0]
        c["spikes"] += int(n_spikes)
        c["at_top"] += top_
        c["at_floor"] += floor_
        c["saturated"] += top_ + floor_
        c["wrapped"] += int(n_wrapped)
        return torch.stack(out), (u, v, s)

    def _forward_spinnaker(self, x_seq: torch.Tensor, state=None):
        """sPyNNaker's step (neuron.c ``neuron_transfer``, then ``neuron_impl_standard.h``), every value an int32
        bit pattern held in int64: the ring buffers (``x``: excitatory and inhibitory sums side by side) saturate at
        0xFFFF and enter as ``sum << shift``; the synaptic input takes them (delta: as they are; exponential: times
        ``init``, u0.32); ``I = exc − inh + i_offset``; ``A = I·R`` (an accum product: rounded down, wrapping);
        ``V ← A − exp_TC·(A − V)``; a spike where ``V ≥ v_thresh``, which resets ``V`` to 0; then the synaptic input
        decays (delta: to 0; exponential: ``(x · decay) >> 32``)."""
        sp, frac = self.spinnaker, self.fmt.fraction_bits
        t_steps, b, c2 = x_seq.shape[:3]
        c = c2 // 2
        shape = (b, c, *x_seq.shape[3:])
        i64 = torch.int64
        if state is None:
            syn = torch.zeros((b, c2, *x_seq.shape[3:]), dtype=i64)
            v = torch.zeros(shape, dtype=i64)
            s = torch.zeros(shape, dtype=torch.float64)
        else:
            syn, v, s = self._carried(state, shape, "(syn, v, s)")
        if t_steps == 0:
            return x_seq.new_zeros((0, *shape)), (syn, v, s)
        top = 2 ** self.fmt.weight_bits - 1
        bias = (torch.zeros((), dtype=i64) if self.bias_int is None
                else self.bias_int.to(i64).reshape(-1, *([1] * (len(shape) - 2))))
        shifts = torch.tensor(sp["shifts"], dtype=i64).repeat_interleave(c).reshape(-1, *([1] * (len(shape) - 2)))
        r_m, e_tc, thr = sp["R"], sp["exp_TC"], self.threshold
        exp_syn = sp["synapse"] == "exp"
        n_top, n_wrapped, n_spikes = 0, 0, 0
        out = []

        def wrap(z):
            nonlocal n_wrapped
            w = _wrap32(z)
            n_wrapped += int((w != z).sum())
            return w

        for x in x_seq:
            if self.recurrent is not None:  # the layer's own spikes of the step before: into the same ring buffers
                x = x + self.recurrent.step_sum(s)
            n_top += int((x > top).sum())
            ring = x.clamp(max=top).to(i64)
            add = wrap(ring << shifts)  # synapse_row_convert_weight_to_input
            if exp_syn:  # add_input_exp: decay_s1615(input, init)
                add = (add * sp["init"]) >> 32
            syn = wrap(syn + add)
            current = wrap(wrap(syn[:, :c] - syn[:, c:]) + bias)
            a = wrap((current * r_m) >> frac)  # + V_rest (0)
            v = wrap(a - wrap((e_tc * wrap(a - v)) >> frac))
            fired = v >= thr
            v = torch.where(fired, torch.zeros_like(v), v)  # V_reset = 0
            syn = (syn * sp["decay"]) >> 32 if exp_syn else torch.zeros_like(syn)  # synapse_types_shape_input
            if self.spiking:
                s = fired.to(torch.float64)
                n_spikes += int(fired.sum())
                out.append(s)
            else:
                out.append(v.to(torch.float64) / 2.0 ** frac / self.scale)
        cnt = self.counts
        cnt["steps"] += t_steps
        cnt["neuron_steps"] += t_steps * math.prod(shape)
        cnt["spikes"] += n_spikes
        cnt["at_top"] += n_top
        cnt["saturated"] += n_top
        cnt["wrapped"] += n_wrapped
        return torch.stack(out), (syn, v, s)

    def extra_repr(self) -> str:
        return f"{self.name}, threshold={self.threshold}, decay_v={self.decay_v}, decay_u={self.decay_u}"


class ChipModel(nn.Module):
    """The integer model :func:`to_chip` builds: ``(x_seq, state=None) -> (out_seq, state)`` like a neurosim
    Sequential. ``layers`` lists each synapse–neuron pair's formats, ``notes`` what the chip does differently from
    the float model, ``counts()`` the spikes and saturations of the runs so far."""

    def __init__(self, fmt: ChipFormat, parts: list[nn.Module], layers: list[dict], notes: list[str]) -> None:
        super().__init__()
        from neurosim import nn as nsn

        self._back = [row.pop("_back") for row in layers]  # the chip's weights in the model's units
        self.fmt, self.layers, self.notes = fmt, layers, notes
        self.net = nsn.Sequential(*parts)

    def check_input(self, x_seq: torch.Tensor) -> torch.Tensor:
        """``x_seq`` as float64 (bool and integer input too), or ValueError where it is not whole numbers."""
        x_seq = x_seq.to(torch.float64)
        if not _integral(x_seq):
            bad = x_seq[x_seq != torch.round(x_seq)].flatten()[0].item()
            first = next(m.name for m in self.net if isinstance(m, ChipSynapse))
            raise ValueError(f"{first}: a chip takes spikes or event counts, but the model's input has non-integer "
                             f"values (e.g. {bad:g}); use event data or a spike encoder (neurosim.data.encoders) in "
                             "front of the chip")
        if self.fmt.arithmetic in ("spinnaker", "dynapcnn") and bool((x_seq < 0).any()):
            first = next(m.name for m in self.net if isinstance(m, ChipSynapse))
            chip = "SpiNNaker" if self.fmt.arithmetic == "spinnaker" else "Speck"
            raise ValueError(f"{first}: {chip}'s inputs are spikes (a count of 0 or more per input and step), but "
                             f"the model's input has negative values (e.g. {x_seq.min().item():g}: OFF events of a "
                             "delta encoding?); give each polarity its own input channel")
        return x_seq

    def forward(self, x_seq: torch.Tensor, state=None):
        x_seq = self.check_input(x_seq)
        with torch.no_grad():
            return self.net(x_seq.cpu(), state)

    def counts(self) -> dict[str, dict[str, int]]:
        return {m.name: dict(m.counts) for m in self.net if isinstance(m, ChipNeuron)}

    def reset_counts(self) -> None:
        for m in self.net:
            if isinstance(m, ChipNeuron):
                m.counts = {k: 0 for k in m.counts}


# ------------------------------------------------------------------------------------------------ quantisation
def _fit_loihi_matrix(w_v: torch.Tensor, fmt: ChipFormat) -> tuple[torch.Tensor, int, int, int]:
    """Loihi weight words and exponent ``e`` with ``word·2^e·2^6 ≈ w_v``: the smallest ``e`` at which the largest
    weight fits. The words follow Lava's default sign mode (``determine_sign_mode``, then ``clip_weights`` and
    ``truncate_weights``): a mixed-sign matrix's are even values in [−256, 254] (its lowest bit dropped), an
    excitatory (all ≥ 0) one's [0, 255], an inhibitory (all ≤ 0) one's [−255, 0]. Returns
    ``(words, e, clipped, lsb)``, ``lsb`` the step between words (2 or 1)."""
    full = 2 ** fmt.weight_bits
    if bool((w_v >= 0).all()):
        lo, hi, lsb = 0, full - 1, 1
    elif bool((w_v <= 0).all()):
        lo, hi, lsb = -(full - 1), 0, 1
    else:
        lo, hi, lsb = -full, full - 2, 2
    unit = 2 ** fmt.input_shift
    exps = fmt.weight_exps
    for e in exps:
        words = torch.round(w_v / (lsb * unit * 2.0 ** e)) * lsb
        if bool((words >= lo).all() and (words <= hi).all()):
            return words, e, 0, lsb
    words = torch.round(w_v / (lsb * unit * 2.0 ** e)) * lsb
    return words.clamp(lo, hi), e, int(((words < lo) | (words > hi)).sum()), lsb


def _fit_loihi_bias(b_v: torch.Tensor, fmt: ChipFormat) -> tuple[torch.Tensor, int, int]:
    """Loihi bias ``mant·2^exp`` (13-bit mantissa, exponent 0..7) nearest to ``b_v``; returns (bias, exp, clipped)."""
    lo, hi = -(2 ** (fmt.bias_bits - 1)), 2 ** (fmt.bias_bits - 1) - 1
    for e in range(2 ** fmt.bias_exp_bits):
        mant = torch.round(b_v / 2.0 ** e)
        if bool((mant >= lo).all() and (mant <= hi).all()):
            return mant * 2.0 ** e, e, 0
    mant = torch.round(b_v / 2.0 ** e)
    return mant.clamp(lo, hi) * 2.0 ** e, e, int(((mant < lo) | (mant > hi)).sum())


def _sinabs_scale(t: torch.Tensor, bits: int) -> float:
    """sinabs' ``determine_discretization_scale``: the largest scale that fits ``t`` into ``bits`` signed bits
    (the negative side one step wider). Zero tensors impose no limit."""
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    t_min, t_max = float(t.min()), float(t.max())
    if t_min == t_max == 0:
        return math.inf
    if abs(t_min) <= abs(t_max) * abs(lo / hi):
        return abs(hi / t_max)
    return abs(lo / t_min)


def _module_params(m: nn.Module, name: str) -> tuple[str, torch.Tensor, torch.Tensor | None, dict | None]:
    w = m.weight.detach().to("cpu", torch.float64)  # the chip model runs on the CPU, whatever the model's device
    b = None if m.bias is None else m.bias.detach().to("cpu", torch.float64)
    if isinstance(m, nn.Conv2d):
        if m.padding_mode != "zeros":
            raise ValueError(f"{name}: a Conv2d with padding_mode={m.padding_mode!r} has no chip equivalent (chips pad "
                             "with zeros)")
        return "conv", w, b, dict(stride=m.stride, padding=m.padding, dilation=m.dilation, groups=m.groups)
    return "linear", w, b, None


def _neuron_facts(m: nn.Module) -> dict[str, Any]:
    """What a chip needs of a neurosim neuron layer: kind, β, α, threshold, reset, recurrent weights."""
    from neurosim import nn as nsn

    if isinstance(m, nsn.LI):
        return {"kind": "LI", "beta": float(m.beta), "alpha": 0.0, "v_th": None, "reset": None, "timing": None,
                "recurrent": None}
    lif, alpha, rec = m, 0.0, None
    if isinstance(m, nsn.CubaLIF):
        lif, alpha = m.lif, float(m.alpha)
    elif isinstance(m, nsn.RLIF):
        lif, rec = m.lif, m.recurrent
    return {"kind": type(m).__name__, "beta": float(lif.beta), "alpha": alpha, "v_th": float(lif.v_th),
            "reset": lif.reset, "timing": lif.reset_timing, "recurrent": rec}


def _recorded(part: nn.Module, name: str) -> nn.Module:
    """Mark a chip part whose output is the activity the energy models count (a spiking layer's spikes, the
    events leaving a max pool), under the model's module name. (A sum pool passes every spike on: the energy
    models count it from its input.)"""
    part.record_as = name
    return part


def _check_pool(m: nn.Module, name: str) -> None:
    """Refuse the pooling options a chip's sum or max pool does not have, naming them."""
    odd = []
    if getattr(m, "ceil_mode", False):
        odd.append("ceil_mode=True")
    if getattr(m, "divisor_override", None) is not None:
        odd.append(f"divisor_override={m.divisor_override}")
    pad = m.padding if isinstance(m.padding, tuple) else (m.padding, m.padding)
    if isinstance(m, nn.AvgPool2d) and not m.count_include_pad and any(pad):
        odd.append("count_include_pad=False with padding")
    if getattr(m, "dilation", 1) not in (1, (1, 1)):
        odd.append(f"dilation={m.dilation}")
    if odd:
        raise ValueError(f"{name}: {type(m).__name__} with {', '.join(odd)} has no chip equivalent (chips pool "
                         "fixed windows, floor-sized)")


def _pool_size(m: nn.Module) -> int:
    k = m.kernel_size if isinstance(m.kernel_size, tuple) else (m.kernel_size, m.kernel_size)
    return int(k[0] * k[1])


def to_chip(model, target, *, maxpool: str | None = None) -> ChipModel:
    """The integer model of ``model`` on the digital ``target`` (see the module docstring).

    Args:
        model: a neurosim Sequential (BatchNorm is folded into the weight layer before it, dropout dropped) or an
            snnTorch ``nn.Sequential`` (converted first).
        target: a digital target with an ``arithmetic`` (``loihi``, ``loihi_sanafe``, ``speck``, ``spinnaker``), a
            spec path or a ``hardware_models.Spec``.
        maxpool: Loihi and SpiNNaker keep a max pool of spikes (one OR neuron per window does it exactly); Speck has
            only sum pooling, so its max pools become sum pools (the default there; ``"error"`` refuses instead).

    Raises:
        ValueError: a layer the chip cannot run (named), a target without an arithmetic.
    """
    from neurosim import nn as nsn
    from neurosim.export.nir import _as_layers, _fold_bn, _to_neurosim

    fmt = chip_format(target)
    speck = fmt.arithmetic == "dynapcnn"
    spinn = fmt.arithmetic == "spinnaker"
    if spinn and (fmt.fraction_bits, fmt.state_bits, fmt.decay_bits) != (15, 32, 32):
        raise ValueError(f"target {fmt.target!r}: sPyNNaker's arithmetic is s16.15 accums and u0.32 decays "
                         f"(spinn_common's expk and expulr are written for them); its spec gives "
                         f"fraction_bits={fmt.fraction_bits}, state_bits={fmt.state_bits}, decay_bits={fmt.decay_bits}")
    if maxpool not in (None, "error", "sumpool"):
        raise ValueError(f"maxpool must be 'error' or 'sumpool', got {maxpool!r}")
    try:
        model = _to_neurosim(model)
    except TypeError:
        raise TypeError(f"to_chip needs a neurosim Sequential (e.g. from neurosim.nn.build_model or from_nir) or an "
                        f"snnTorch nn.Sequential, got {type(model).__name__}") from None
    layers = _as_layers(model)
    parts: list[nn.Module] = []
    info: list[dict] = []
    notes: list[str] = []
    pending: dict | None = None  # the weight layer waiting for its neuron
    gain = 1.0  # an average pool's 1/k², folded into the next weight layer
    per_input = 1  # SpiNNaker: spikes one input of the next weight layer can carry per step (a sum pool's window)
    convs: list[str] = []
    maxpools: list[str] = []
    leaky: list[str] = []

    readout: str | None = None  # an LI seen: nothing may follow it but the end

    def need_neuron(where: str) -> None:
        if readout is not None:
            raise ValueError(f"{readout}: a non-spiking LI layer feeds the layers after it ({where}); on a chip a "
                             "layer passes spikes on, so an LI can only be the last (read-out) layer")
        if pending is not None:
            raise ValueError(f"{where}: comes between the weight layer {pending['name']!r} and its neurons; a chip "
                             "needs a neuron layer right after each Linear/Conv2d (BatchNorm and Dropout aside)")

    for name, m in layers:
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            need_neuron(name)
            op, w, b, conv = _module_params(m, name)
            pending = {"name": name, "op": op, "w": w * gain, "b": b, "conv": conv, "gain": gain,
                       "bn": None, "per_input": per_input}
            gain, per_input = 1.0, 1
            if op == "conv":
                convs.append(name)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            if pending is None:
                raise ValueError(f"{name}: a BatchNorm not right after a Linear/Conv2d cannot be folded into weights")
            w, b = _fold_bn(pending["w"], pending["b"], m, name)
            pending["w"], pending["b"] = w.to("cpu", torch.float64), b.to("cpu", torch.float64)
            pending["bn"] = name
        elif isinstance(m, (nn.Dropout, nsn.Dropout)):
            continue
        elif isinstance(m, (nsn.LIF, nsn.CubaLIF, nsn.RLIF, nsn.LI)):
            if pending is None:
                raise ValueError(f"{name}: a neuron layer without a Linear/Conv2d before it; a chip's neurons are fed "
                                 "through synapses")
            if readout is not None:
                raise ValueError(f"{readout}: a non-spiking LI layer feeds the layers after it; on a chip a layer "
                                 "passes spikes on, so an LI can only be the last (read-out) layer")
            part_s, part_n, row = _quantise_pair(pending, name, m, fmt, notes, leaky)
            parts += [part_s, _recorded(part_n, name) if part_n.spiking else part_n]
            info.append(row)
            pending = None
            if isinstance(m, nsn.LI):
                readout = name
        elif isinstance(m, nn.MaxPool2d):
            need_neuron(name)
            _check_pool(m, name)
            if speck:
                if maxpool == "error":
                    raise ValueError(f"{name}: Speck pools by summing (sinabs SumPool2d); use maxpool='sumpool' to "
                                     "run it as a sum pool, or train with sum pooling")
                parts.append(nsn.SumPool2d(m.kernel_size, m.stride, m.padding))  # (counted from its input)
                notes.append(f"{name}: Speck has no max pooling; run as a sum pool (every spike in a window passes)")
            else:
                parts.append(_recorded(nsn.MaxPool2d(m.kernel_size, m.stride, m.padding), name))
                maxpools.append(name)
        elif isinstance(m, nn.AvgPool2d):  # (SumPool2d too: it is an AvgPool2d times the window)
            need_neuron(name)
            _check_pool(m, name)
            parts.append(nsn.SumPool2d(m.kernel_size, m.stride, m.padding))
            per_input *= _pool_size(m)
            if not isinstance(m, nsn.SumPool2d):
                gain /= _pool_size(m)
        elif isinstance(m, (nn.Flatten, nsn.Flatten)):
            need_neuron(name)
            parts.append(nsn.Flatten())
        else:
            raise ValueError(f"{name}: {type(m).__name__} has no chip equivalent here (chips run Linear/Conv2d, "
                             "LIF/CubaLIF/RLIF/LI, pooling and Flatten)")
    if pending is not None:  # a model ending in a weight layer: its sums are read out (an LI with β = 0)
        if speck:
            raise ValueError(f"{pending['name']}: the model ends in a weight layer; Speck's cores output the events "
                             "(or states) of neurons, not synaptic sums: end the model with a LIF or LI read-out")
        part_s, part_n, row = _quantise_pair(pending, pending["name"], nsn.LI(0.0), fmt, notes, leaky,
                                             trailing=True)
        parts += [part_s, part_n]
        info.append(row)
    if not info:
        raise ValueError("the model has no weight layer to put on a chip")
    if leaky:
        notes.append(f"{', '.join(leaky)}: Speck's neurons integrate and fire without leak; the model's decay "
                     "(β < 1) is dropped on the chip")
    spiking = [r["layer"] for r in info if r["neuron"] != "LI"]
    if speck and spiking:
        notes.append(f"{', '.join(spiking)}: per step a Speck neuron fires once per threshold its membrane holds, at "
                     "most once per input event reaching it (the float model fires at most once); a bias alone "
                     "never makes it fire")
    if spinn:
        if convs:
            notes.append(f"{', '.join(convs)}: a convolution runs as the synapses it amounts to (a connection list in "
                         "sPyNNaker's synaptic matrix, the ring-buffer shift counting the whole kernel); sPyNNaker's "
                         "local-only ConvolutionConnector, whose arithmetic differs, is not modelled")
        if maxpools:
            notes.append(f"{', '.join(maxpools)}: a max pool of spikes runs as one neuron per window that fires when "
                         "any input of its window does (a population of its own on SpiNNaker, not a built-in)")
        notes.append("sPyNNaker delivers a spike one time step later at the earliest (a projection's delay is at "
                     "least one step): a network of L layers answers L steps late on the chip; not simulated here, "
                     "each layer's input is applied in the step it is sent")
        notes.append("tau_refrac = 0: no refractory steps (the model has none); v_rest = v_reset = 0, i_offset "
                     "carries the bias; each weight layer is split into an excitatory and an inhibitory projection")
        notes.append("the input's event counts enter as that many spikes in a step; the first layer's ring-buffer "
                     "shift assumes at most one spike per input and step, as sPyNNaker does for a source without a "
                     "declared rate")
    return ChipModel(fmt, parts, info, _grouped(notes))


def _grouped(notes: list[str]) -> list[str]:
    """``"1: m"``, ``"4: m"`` → ``"1, 4: m"`` (notes whose message after the first ``": "`` repeats), in
    first-seen order; every other note as it is."""
    order: dict[str, list[str]] = {}
    for n in notes:
        where, sep, message = n.partition(": ")
        order.setdefault(message if sep else n, []).append(where if sep else "")
    return [f"{', '.join(dict.fromkeys(wheres))}: {message}" if len(wheres) > 1 else
            (f"{wheres[0]}: {message}" if wheres[0] else message) for message, wheres in order.items()]


def _quantise_pair(syn: dict, name: str, m: nn.Module, fmt: ChipFormat, notes: list[str], leaky: list[str],
                   trailing: bool = False):
    facts = _neuron_facts(m)
    kind, beta, alpha, v_th = facts["kind"], facts["beta"], facts["alpha"], facts["v_th"]
    spiking = kind != "LI"
    loihi = fmt.arithmetic == "loihi"
    w, b = syn["w"], syn["b"]
    rec = facts["recurrent"]
    rec_w = rec_b = None
    if rec is not None:
        rec_w = rec.weight.detach().to("cpu", torch.float64)
        rec_b = None if rec.bias is None else rec.bias.detach().to("cpu", torch.float64)
        b = rec_b if b is None else (b if rec_b is None else b + rec_b)
    if fmt.arithmetic == "spinnaker":
        return _quantise_spinnaker(syn, name, facts, fmt, w, b, rec_w, notes, trailing)
    if not loihi:
        if kind in ("CubaLIF", "RLIF"):
            raise ValueError(f"{name}: Speck runs integrate-and-fire neurons fed forward; a {kind} layer (a synaptic "
                             "current or recurrent connections) has no DYNAP-CNN equivalent")
        if spiking and facts["reset"] == "none":
            raise ValueError(f"{name}: Speck resets a neuron that fires (by subtracting the threshold or to zero); "
                             "reset='none' has no equivalent")
        if beta != 1.0:
            leaky.append(name)
        if spiking and facts["timing"] == "delayed":
            notes.append(f"{name}: the model resets a step late (snnTorch's timing); Speck resets in the step it fires")
    row: dict[str, Any] = {"layer": name, "synapse": syn["name"], "neuron": kind}

    if loihi:
        if spiking:
            scale = THRESHOLD_UNITS / v_th
        else:
            w_abs = w.abs().reshape(w.shape[0], -1).sum(1) + (0 if b is None else b.abs())
            top = float(w_abs.max())
            scale = THRESHOLD_UNITS / top if top > 0 else 1.0
        words, exp, clipped, lsb = _fit_loihi_matrix(w * scale, fmt)
        post = fmt.input_shift
        # a read-out is a compartment with the largest threshold (Lava's LIF always fires above its threshold)
        vth = round(v_th * scale / 2 ** fmt.input_shift) if spiking else 2 ** fmt.threshold_bits - 1
        threshold = int(vth) << fmt.input_shift
        if kind == "CubaLIF" and b is not None and bool((b != 0).any()) and alpha < 1:
            b = b / (1 - alpha)
            notes.append(f"{name}: the model's bias enters the synaptic current; Loihi adds a bias to the voltage, "
                         "so it is given there as b/(1 − α) (the same steady state, not the same first steps)")
        bias_v, bias_exp, bias_clipped = (None, None, 0) if b is None else _fit_loihi_bias(b * scale, fmt)
        unity = 2 ** fmt.decay_bits
        decay_v = min(max(round(unity * (1 - beta)), 0), unity - 1)
        if trailing:
            notes.append(f"{name}: the model ends in a weight layer; its sums are read from a compartment with "
                         f"Loihi's fastest decay ({unity - 1}/{unity} per step)")
        elif round(unity * (1 - beta)) > unity - 1:
            notes.append(f"{name}: β = {beta:g} needs a voltage decay of {unity}/{unity}; Loihi's largest is "
                         f"{unity - 1}/{unity} (β = 1/{unity})")
        decay_u = min(max(round(unity * (1 - alpha)), 1), unity)  # the chip adds 1 (Lava's ds_offset)
        if kind == "CubaLIF" and round(unity * (1 - alpha)) < 1:
            notes.append(f"{name}: α = {alpha:g} needs a current that never decays; Loihi's slowest decay is "
                         f"1/{unity} per step")
        if spiking and facts["reset"] != "zero":
            notes.append(f"{name}: the model resets by {facts['reset']!r}; Loihi resets a neuron that fires to zero")
        if spiking and facts["timing"] == "delayed":
            notes.append(f"{name}: the model resets a step late (snnTorch's timing); Loihi resets in the step it fires")
        synapse = ChipSynapse(syn["name"], syn["op"], words, exp, post, syn["conv"])
        unit = 2 ** post  # voltage units of one word unit at exponent 0
        back = {"w": words * 2.0 ** exp * unit / scale,
                "b": None if bias_v is None else bias_v / scale * ((1 - alpha) if kind == "CubaLIF" and alpha < 1 else 1.0)}
        recurrent = None
        if rec_w is not None:
            r_words, r_exp, r_clipped, _ = _fit_loihi_matrix(rec_w * scale, fmt)
            op = "diagonal" if rec_w.dim() == 1 else "linear"
            recurrent = ChipSynapse(f"{name}.recurrent", op, r_words, r_exp, post)
            back["w_rec"] = r_words * 2.0 ** r_exp * unit / scale
            row.update(recurrent_exp=r_exp, recurrent_weights_clipped=r_clipped,
                       recurrent_weights_zero=_zero_fraction(r_words, rec_w))
        neuron = ChipNeuron(name, fmt, scale=scale, threshold=threshold, reset="zero", spiking=spiking,
                            decay_v=decay_v, decay_u=decay_u, bias=bias_v, recurrent=recurrent)
        row.update(scale=scale, weight_exp=exp, weight_lsb=lsb * 2.0 ** exp * 2 ** post / scale / syn["gain"],
                   weights_clipped=clipped, weights_zero=_zero_fraction(words, w), threshold_int=threshold,
                   decay_v=decay_v, decay_u=decay_u - 1, bias_exp=bias_exp, biases_clipped=bias_clipped,
                   beta_chip=1 - decay_v / unity)
        row["_back"] = {**back, "neuron": name, "synapse": syn["name"], "bn": syn["bn"], "gain": syn["gain"]}
        return synapse, neuron, row

    # DYNAP-CNN (sinabs): one scale for weights, biases and the threshold
    scale = _sinabs_scale(w, fmt.weight_bits)
    if b is not None:
        scale = min(scale, _sinabs_scale(b, fmt.bias_bits))
    if spiking:
        scale = min(scale, (2 ** (fmt.threshold_bits - 1) - 1) / v_th)
    if not math.isfinite(scale):
        scale = 1.0
    words = torch.round(w * scale)
    threshold = int(round(v_th * scale)) if spiking else 0
    if spiking and threshold < 1:
        threshold = 1
    bias_int = None if b is None else torch.round(b * scale)
    synapse = ChipSynapse(syn["name"], syn["op"], words, 0, 0, syn["conv"])
    neuron = ChipNeuron(name, fmt, scale=scale, threshold=threshold, reset=facts["reset"] or "subtract",
                        spiking=spiking, decay_v=None, decay_u=None, bias=bias_int)
    synapse.count_events = True
    neuron._events_of.append(synapse)
    row.update(scale=scale, weight_exp=0, weight_lsb=1 / scale / syn["gain"], weights_clipped=0,
               weights_zero=_zero_fraction(words, w), threshold_int=threshold, beta_chip=1.0)
    row["_back"] = {"w": words / scale, "b": None if bias_int is None else bias_int / scale, "neuron": name,
                    "synapse": syn["name"], "bn": syn["bn"], "gain": syn["gain"]}
    return synapse, neuron, row


def _spinn_tau(target: float, decay_of, unity: int) -> tuple[int, int]:
    """The s16.15 time constant τ (ms, the step being 1 ms) whose decay per step as the core computes it,
    ``decay_of(τ)`` (in units of ``1/unity``), is nearest ``target``; returns ``(τ, decay)``. ``target = 0``: a τ
    of 1/16 ms, whose decay ``e^(−16)`` spinn_common rounds to 0; 1 (no decay) is out of reach: ``τ = ∞`` cannot be
    written, and ``dt/τ = 0`` gives ``expk`` 1 (the LIF's input then has no effect) and ``expulr`` 0 (its low 32 bits),
    so the search starts at ``dt/τ = 2^−15``."""
    if target <= 0:
        tau = 2 ** 11
        return tau, decay_of(tau)
    m = max(1, round(-math.log(target) * 2 ** 15)) if target < 1 else 1
    taus = {t for k in range(max(1, m - 2), m + 3) for t in (2 ** 30 // k, -(-2 ** 30 // k)) if 1 <= t < 2 ** 31}
    tau = min(taus, key=lambda t: (abs(decay_of(t) / unity - target), t))
    return tau, decay_of(tau)


def _spinn_shift(projections: list[tuple[torch.Tensor, int]]) -> int:
    """sPyNNaker's ring-buffer shift of one synapse type (``AbstractPopulationVertex.get_ring_buffer_shifts``, all
    delays equal so the bound is ``_Stats.total_weights``): over the projections, Σ n·w_max (the most synapses of the
    type into one neuron, times the inputs' spikes per step, times the largest weight, in nA), and the smallest power
    of two above it (``2^shift > Σ``, ``shift ≥ 0``)."""
    total = 0.0
    for mat, per_input in projections:
        nonzero = mat != 0
        if bool(nonzero.any()):
            total += int(nonzero.reshape(mat.shape[0], -1).sum(1).max()) * per_input * float(mat.max())
    if total <= 0:
        return 0
    power = int(math.ceil(max(0.0, math.log2(total))))
    return power + 1 if 2 ** power <= total else power


#: SpiNNaker: the largest input current ``I·R`` (mV), and threshold, that a layer's worst step may ask of the s16.15
#: accum: 2^14, so that ``A − V``, which can span twice that, stays inside the accum's ±2^16 (it wraps beyond)
SPINNAKER_RANGE = 2 ** 14


def _quantise_spinnaker(syn: dict, name: str, facts: dict, fmt: ChipFormat, w: torch.Tensor, b, rec_w, notes: list[str],
                        trailing: bool):
    """A synapse–neuron pair as an sPyNNaker population (see the module docstring): IF_curr_delta (LIF, RLIF, a read-out
    LI) or IF_curr_exp (CubaLIF with α > 0), its PyNN parameters chosen as s16.15 words, its weights split into an
    excitatory and an inhibitory projection as sPyNNaker scales them."""
    kind, beta, alpha, v_th = facts["kind"], facts["beta"], facts["alpha"], facts["v_th"]
    spiking = kind != "LI"
    one = 2 ** fmt.fraction_bits  # 1.0 in s16.15; also the time step, 1 ms
    tau_m, e_tc = _spinn_tau(beta, lambda t: _spinn_expk(-_spinn_kdivk(one, t)), one)
    r_m = _spinn_kdivk(tau_m, tau_m)  # cm = tau_m: R = tau_m / cm = 1 MΩ
    exp_syn = kind == "CubaLIF" and alpha > 0
    tau_s = decay = init = None
    if exp_syn:  # exp_synapse_utils.h decay_and_init
        tau_s, decay = _spinn_tau(alpha, lambda t: _spinn_expulr(-_spinn_kdivk(one, t)), 2 ** 32)
        # (tau/dt)·(1.0ulr − decay), GCC's 1.0ulr being the largest u0.32, 2^32 − 1
        init = ((_spinn_kdivk(tau_s, one) * (_M32 - decay)) >> 15) & _M32
    leak = 1 - e_tc / one
    alpha_chip = 0.0 if decay is None else decay / 2 ** 32
    per_input = syn.get("per_input", 1)
    rows = w.abs().reshape(w.shape[0], -1).sum(1) * per_input
    if rec_w is not None:
        rows = rows + (rec_w.abs() if rec_w.dim() == 1 else rec_w.abs().sum(1))
    if b is not None:
        rows = rows + b.abs()
    worst = float(rows.max()) / ((1 - alpha_chip) if exp_syn else 1.0)  # the largest current a step can hold
    scale = SPINNAKER_RANGE * leak / worst if worst > 0 else math.inf  # mV of membrane per unit of the model's
    if spiking:
        scale = min(scale, SPINNAKER_RANGE / v_th)
    if not math.isfinite(scale) or scale <= 0:
        scale = 1.0
    to_na = scale / leak / ((init / 2 ** 32) if exp_syn else 1.0)  # nA of ring-buffer input per unit of weight

    def signed(mat):
        return (mat * to_na).clamp(min=0), (-mat * to_na).clamp(min=0)

    w_pos, w_neg = signed(w)
    rec_dense = None if rec_w is None else (torch.diag(rec_w) if rec_w.dim() == 1 else rec_w)
    r_pos, r_neg = signed(rec_dense) if rec_dense is not None else (None, None)
    shifts = []
    for ff, rr in ((w_pos, r_pos), (w_neg, r_neg)):
        shifts.append(_spinn_shift([(ff, per_input)] + ([] if rr is None else [(rr, 1)])))
    top = 2 ** fmt.weight_bits - 1
    clipped = 0

    def words(mat, shift):  # synapse_io: weight · 2^(16 − (shift + 1)); synapse_dynamics_static: rint(|w|) & 0xFFFF
        nonlocal clipped
        q = torch.round(mat * 2.0 ** (fmt.weight_bits - 1 - shift))
        clipped += int((q > top).sum())
        return torch.remainder(q, top + 1)

    ints = [words(w_pos, shifts[0]), words(w_neg, shifts[1])]
    units = [2.0 ** (s - (fmt.weight_bits - 1)) / to_na for s in shifts]  # one word, back in the model's units
    synapse = ChipSynapse(syn["name"], syn["op"], ints[0], 0, 0, syn["conv"], weight_neg=ints[1])
    back_w = ints[0] * units[0] - ints[1] * units[1]
    row: dict[str, Any] = {"layer": name, "synapse": syn["name"], "neuron": kind}
    back: dict[str, Any] = {"w": back_w}
    recurrent = None
    if rec_dense is not None:
        r_ints = [words(r_pos, shifts[0]), words(r_neg, shifts[1])]
        recurrent = ChipSynapse(f"{name}.recurrent", "linear", r_ints[0], 0, 0, weight_neg=r_ints[1])
        back_r = r_ints[0] * units[0] - r_ints[1] * units[1]
        back["w_rec"] = torch.diagonal(back_r) if rec_w.dim() == 1 else back_r
        row.update(recurrent_weights_zero=_zero_fraction(back["w_rec"], rec_w))
    bias_words = None
    if b is not None:
        b_eff = b / (1 - alpha_chip) if exp_syn else b
        bias_words = torch.round(b_eff * scale / leak * one)
        back["b"] = bias_words / one * leak / scale * ((1 - alpha_chip) if exp_syn else 1.0)
        if exp_syn and bool((b != 0).any()):
            notes.append(f"{name}: the model's bias enters the synaptic current; sPyNNaker adds i_offset to the "
                         "input after the synapses, so it is given there as b/(1 − α), with the chip's α (the same "
                         "steady state, not the same first steps)")
    else:
        back["b"] = None
    threshold = max(1, round(v_th * scale * one)) if spiking else 2 ** (fmt.threshold_bits - 1) - 1
    pynn = {"time_step": one, "tau_m": tau_m, "cm": tau_m, "v_rest": 0, "v_reset": 0, "v": 0, "tau_refrac": 0,
            "v_thresh": threshold}
    if exp_syn:
        pynn.update(tau_syn_E=tau_s, tau_syn_I=tau_s, isyn_exc=0, isyn_inh=0)
    spinnaker = {"synapse": "exp" if exp_syn else "delta", "shifts": tuple(shifts), "R": r_m, "exp_TC": e_tc,
                 "decay": decay, "init": init, "pynn": pynn, "weight_nA": to_na}
    neuron = ChipNeuron(name, fmt, scale=scale, threshold=threshold, reset="zero", spiking=spiking, decay_v=e_tc,
                        decay_u=decay, bias=bias_words, recurrent=recurrent, spinnaker=spinnaker)
    if beta >= 1:
        notes.append(f"{name}: β = 1 needs τ_m = ∞, which sPyNNaker's closed form cannot take (exp_TC = 1 ignores "
                     f"the input); the slowest leak its expk gives is used, β = {e_tc / one:.6g}")
    if exp_syn and alpha >= 1:
        notes.append(f"{name}: α = 1 needs τ_syn = ∞, which sPyNNaker cannot take (expulr(0) is 0); the slowest "
                     f"synaptic decay it gives is used, α = {alpha_chip:.6g}")
    if trailing:
        notes.append(f"{name}: the model ends in a weight layer; its sums are read from the membrane of neurons that "
                     "forget every step (τ_m = dt/16: exp_TC = 0) and never reach their threshold")
    if not spiking:
        notes.append(f"{name}: the read-out is the membrane after each step; sPyNNaker records v at the start of a "
                     "step, so it records these values one step later")
    if spiking and facts["reset"] != "zero":
        notes.append(f"{name}: the model resets by {facts['reset']!r}; sPyNNaker's LIF sets a neuron that fires to "
                     "v_reset (0 here)")
    if spiking and facts["timing"] == "delayed":
        notes.append(f"{name}: the model resets a step late and fires above its threshold (snnTorch's timing); "
                     "sPyNNaker fires where v ≥ v_thresh and resets in the step it fires")
    lsb = max((u for u, x in zip(units, ints) if bool((x != 0).any())), default=units[0])
    row.update(scale=scale, weight_exp=shifts[0], ring_buffer_shifts=list(shifts), weight_lsb=lsb / syn["gain"],
               weights_clipped=clipped, weights_zero=_zero_fraction(back_w, w), threshold_int=threshold,
               exp_TC=e_tc, synaptic_decay=decay, init=init, beta_chip=e_tc / one, alpha_chip=alpha_chip if exp_syn else None,
               tau_m_ms=tau_m / one, cm_nF=tau_m / one, tau_syn_ms=None if tau_s is None else tau_s / one,
               v_thresh_mV=threshold / one if spiking else None)
    row["_back"] = {**back, "neuron": name, "synapse": syn["name"], "bn": syn["bn"], "gain": syn["gain"]}
    return synapse, neuron, row


def _zero_fraction(words: torch.Tensor, w: torch.Tensor) -> float:
    """Share of the model's nonzero weights that the chip's words round to zero."""
    nonzero = w != 0
    n = int(nonzero.sum())
    return 0.0 if n == 0 else int(((words == 0) & nonzero).sum()) / n


def chip_weights_model(model, chip: ChipModel) -> nn.Module:
    """A copy of ``model`` (float dynamics) with the chip's weights and biases, converted back to the model's units:
    what the weights alone cost. BatchNorm is folded into the weights before it (replaced by an identity), a
    recurrent bias moved into the synapse before it. Layers the chip could not keep (a model ending in a weight
    layer gets an LI on the chip) keep the float model's structure."""
    from torch.nn.utils import parametrize

    from neurosim.export.nir import _to_neurosim
    from neurosim.hardware.nonideal import _set_module

    copy_ = copy.deepcopy(_to_neurosim(model))
    modules = dict(copy_.named_modules())
    with torch.no_grad():
        for back in chip._back:
            syn = modules[back["synapse"]]
            w = (back["w"] / back["gain"]).to(syn.weight.dtype)
            syn.weight.copy_(w.reshape(syn.weight.shape))
            if back["b"] is not None:
                b = back["b"].to(syn.weight.dtype)
                if syn.bias is None:
                    syn.bias = nn.Parameter(b.clone())
                else:
                    syn.bias.copy_(b)
            elif syn.bias is not None:
                syn.bias.zero_()
            if back["bn"] is not None:
                _set_module(copy_, back["bn"], nn.Identity())
            neuron = modules.get(back["neuron"])
            if "w_rec" in back and neuron is not None:
                rec = neuron.recurrent
                if parametrize.is_parametrized(rec, "weight"):
                    parametrize.remove_parametrizations(rec, "weight", leave_parametrized=True)
                rec.weight.copy_(back["w_rec"].to(rec.weight.dtype).reshape(rec.weight.shape))
                if rec.bias is not None:
                    rec.bias.zero_()  # (moved into the synapse's bias above)
    return copy_


@torch.no_grad()
def chip_activity(chip: ChipModel, data, node_names: dict[str, str], *, dt_s: float, samples: int | None = 64,
                  input_name: str | None = "input"):
    """The chip's own activity as a :class:`hardware_models.ActivityProfile`: each spiking layer's spikes (Speck:
    spike counts), its neurons updated per step (a nonzero input, bias included, or a nonzero membrane entering
    the step, as :func:`neurosim.activity.activity_profile` counts them) and the events leaving each max pool,
    recorded under ``node_names[model module name]`` (the NIR graph's node names); the input frames as the input
    events.

    ``samples``: the first this many samples of ``data`` (``(x_seq, y)`` batches or one ``[T, B, ...]`` input)."""
    import numpy as np
    from hardware_models import ActivityProfile

    import dataclasses

    from neurosim.hardware.nonideal import EVAL_BLOCK, _blocks

    batches = [(data, torch.zeros(data.shape[1]))] if isinstance(data, torch.Tensor) else data
    trains: dict[str, list] = {}
    inputs = []
    # neurons updated per step: where a neuron fires at most once per step (Speck's fire several times: the energy
    # models' check that a neuron that fires was updated counts spikes, and Speck publishes no update energy)
    neurons = {m.name: m for m in chip.net if isinstance(m, ChipNeuron) and getattr(m, "record_as", None) in node_names
               and chip.fmt.arithmetic == "loihi"}
    for m in neurons.values():
        m.record_updates, m.updates = True, []
    try:
        for x_seq, _ in _blocks(batches, EVAL_BLOCK, samples):
            x = chip.check_input(x_seq.cpu())
            inputs.append(x.abs().numpy())  # (an OFF event, −1, is an event too)
            for part in chip.net:
                x = part(x)[0] if _stateful(part) else part(x)
                key = getattr(part, "record_as", None)
                if key is not None and key in node_names:
                    trains.setdefault(node_names[key], []).append(x.numpy())
    finally:
        for m in neurons.values():
            m.record_updates = False
    if not inputs:
        raise ValueError("chip_activity: no samples (empty data)")
    spikes = {node: np.concatenate(parts, axis=1) for node, parts in trains.items()}
    events = np.concatenate(inputs, axis=1)
    profile = ActivityProfile.from_spike_trains(spikes, dt_s, input_events=events, input_name=input_name)
    n = events.shape[1]
    updates = {node_names[name]: (torch.stack(m.updates).sum(0) / n).numpy() for name, m in neurons.items()}
    for m in neurons.values():
        m.updates = []
    return dataclasses.replace(profile, updates_per_step=updates)


def _stateful(part: nn.Module) -> bool:
    return bool(getattr(part, "stateful", False))


# ------------------------------------------------------------------------------------------------ evaluation
@torch.no_grad()
def evaluate_fixed_point(model, loader, target, *, loss: str | None = None, max_samples: int | None = None,
                         maxpool: str | None = None) -> dict:
    """Test accuracy of ``model`` in float and on ``target``'s integer arithmetic, over the same samples.

    Returns a JSON-ready dict: ``target``, ``arithmetic``, ``float_acc`` and ``chip_acc`` (percent),
    ``chip_weights_acc`` (the float model with the chip's weights and biases only, :func:`chip_weights_model`: the
    difference to ``chip_acc`` is what the chip's neurons cost — reset, leak, rounding, saturation),
    ``agreement`` (percent of samples both classify alike), ``samples``, ``layers`` (each layer's scale, weight
    exponent and resolution, weights rounded to zero or clipped, integer threshold, decays, and on the test data
    spikes per neuron and step on the chip and in the float model (whose activity the energy estimates use), and
    the saturated or wrapped register updates), and ``notes``.
    """
    from neurosim.export.nir import _to_neurosim
    from neurosim.hardware.nonideal import EVAL_BLOCK, _blocks
    from neurosim.training.losses import predict

    chip = to_chip(model, target, maxpool=maxpool)
    float_model = _to_neurosim(model)  # (an snnTorch model runs as its neurosim equivalent: the same spikes)
    p = next(iter(float_model.parameters()), None)
    device = p.device if p is not None else torch.device("cpu")
    dtype = p.dtype if p is not None and p.dtype.is_floating_point else torch.float32
    weights_only = chip_weights_model(model, chip).to(device).eval()  # (copied before the counting hooks go on)
    was = float_model.training
    float_spikes: dict[str, list[float]] = {}
    modules = dict(float_model.named_modules())

    def counter(name):
        def hook(_module, _inputs, output):
            s_seq = output[0] if isinstance(output, tuple) else output
            got = float_spikes.setdefault(name, [0.0, 0])
            got[0] += float(s_seq.detach().sum())
            got[1] += s_seq.numel()
        return hook

    handles = [modules[r["layer"]].register_forward_hook(counter(r["layer"])) for r in chip.layers
               if r["neuron"] != "LI" and r["layer"] in modules]
    float_model.eval()
    right_f = right_c = right_w = agree = total = 0
    try:
        for x_seq, y in _blocks(loader, EVAL_BLOCK, max_samples):
            out_f, _ = float_model(x_seq.to(device, dtype))
            out_w, _ = weights_only(x_seq.to(device, dtype))
            out_c, _ = chip(x_seq.cpu())
            pf, pw, pc = predict(out_f, loss).cpu(), predict(out_w, loss).cpu(), predict(out_c, loss).cpu()
            y = y.cpu()
            right_f += int((pf == y).sum())
            right_w += int((pw == y).sum())
            right_c += int((pc == y).sum())
            agree += int((pf == pc).sum())
            total += int(y.shape[0])
    finally:
        float_model.train(was)
        for h in handles:
            h.remove()
    if total == 0:
        raise ValueError("evaluate_fixed_point: the loader yielded no samples")
    counts = chip.counts()
    layers = []
    for row in chip.layers:
        c = counts[row["layer"]]
        per = max(c["neuron_steps"], 1)
        f = float_spikes.get(row["layer"])
        layers.append({**row, "spikes_per_neuron_step": c["spikes"] / per,
                       "float_spikes_per_neuron_step": None if f is None else f[0] / max(f[1], 1),
                       "saturated_updates": c["saturated"], "saturated_at_top": c["at_top"],
                       "saturated_at_floor": c["at_floor"], "wrapped_updates": c["wrapped"]})
    notes = list(chip.notes)
    if any(r["float_spikes_per_neuron_step"] is not None for r in layers):
        notes.append(ENERGY_NOTE)
    return {"target": chip.fmt.target, "arithmetic": chip.fmt.arithmetic, "samples": total,
            "float_acc": 100.0 * right_f / total, "chip_acc": 100.0 * right_c / total,
            "chip_weights_acc": 100.0 * right_w / total,
            "agreement": 100.0 * agree / total, "layers": layers, "notes": notes}


def _held(row: dict) -> str:
    wrapped = f", {row['wrapped_updates']} wrapped" if row["wrapped_updates"] else ""
    return f"{row['saturated_at_top']}/{row['saturated_at_floor']}{wrapped}"


def fixed_point_reports(model, test, specs, *, loss: str | None, input_shape, dt_s: float, samples: int | None = 64,
                        max_samples: int | None = None, out_dir=None, float_activity=None, extra: dict | None = None,
                        on_report=None) -> tuple[dict, dict]:
    """:func:`evaluate_fixed_point` and the energy at the chip's own spikes
    (:func:`neurosim.estimation.chip_energy`, on ``samples`` samples) for each of ``specs``; what ``neurosim
    estimate --fixed-point`` and the demo's report run.

    A target with the same arithmetic and number formats as one run before (:func:`formats_key`: ``loihi_sanafe``
    after ``loihi``) takes its accuracy (``same_as``) and gets its own energy. A target that cannot run the model
    (a ``ValueError``: Speck and a recurrent layer) is left out, its reason kept. With ``out_dir`` each report is
    written to ``fixed_point_<target>.json`` there (atomically), with ``extra``'s keys added (e.g. the checkpoint).
    ``on_report(name, report)`` is called as each is done; ``float_activity``: the float model's activity
    measured on the same samples and graph (an estimate's), not measured again.

    Returns:
        ``({target: report}, {target: why it could not run})``.
    """
    import json
    from pathlib import Path

    from neurosim._io import atomic_write_text
    from neurosim.estimation import chip_energy

    reports, refused, keys = {}, {}, {}
    for spec in specs:
        key = formats_key(spec)
        twin = next((name for name, k in keys.items() if k == key), None)
        try:
            if twin is not None:  # the same integer model: the same accuracy
                r = {k: v for k, v in reports[twin].items() if k != "energy"}
                r.update(target=spec.name, same_as=twin)
            else:
                r = evaluate_fixed_point(model, test, spec, loss=loss, max_samples=max_samples)
            r["energy"] = chip_energy(model, input_shape, test, spec, dt_s=dt_s, samples=samples,
                                      float_activity=float_activity)
        except ValueError as e:
            refused[spec.name] = str(e)
            continue
        keys[spec.name] = key
        r.update(extra or {})
        if out_dir is not None:
            out = Path(out_dir)
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out / f"fixed_point_{spec.name}.json", json.dumps(r, indent=1) + "\n")
        reports[spec.name] = r
        if on_report is not None:
            on_report(spec.name, r)
    return reports, refused


def _rates(row: dict) -> str:
    if row["neuron"] == "LI":
        return "read-out"
    f = row.get("float_spikes_per_neuron_step")
    return f"{row['spikes_per_neuron_step']:.4f}" + ("" if f is None else f" ({f:.4f})")


def format_fixed_point(report: dict) -> str:
    """A printable summary of :func:`evaluate_fixed_point`'s report."""
    lines = [f"{report['target']} ({report['arithmetic']} arithmetic), {report['samples']} test samples: "
             f"float {report['float_acc']:.2f} %, chip {report['chip_acc']:.2f} % "
             f"({report['chip_acc'] - report['float_acc']:+.2f}), same class for {report['agreement']:.1f} %; "
             f"float with the chip's weights {report['chip_weights_acc']:.2f} %"]
    lines.append(f"  {'layer':<14}{'exp':>5}{'weight step':>13}{'to zero':>9}{'clipped':>9}{'threshold':>11}"
                 f"{'spikes/neuron/step chip (float)':>33}{'held at top/floor':>19}")
    for r in report["layers"]:
        lines.append(f"  {r['layer']:<14}{r['weight_exp']:>5}{r['weight_lsb']:>13.3g}{100 * r['weights_zero']:>8.1f}%"
                     f"{r['weights_clipped']:>9}{r['threshold_int']:>11}{_rates(r):>33}"
                     f"{_held(r):>19}")
    lines += [f"  note: {n}" for n in report["notes"]]
    return "\n".join(lines)

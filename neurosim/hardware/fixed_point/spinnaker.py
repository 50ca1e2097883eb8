r"""SpiNNaker's arithmetic (a spec's ``arithmetic = "spinnaker"``): SpiNNaker 1 as sPyNNaker runs ``IF_curr_delta``
(LIF, RLIF, a read-out LI) and ``IF_curr_exp`` (CubaLIF with α > 0) on its ARM cores (SpiNNakerManchester/sPyNNaker
master at 891cfb3: ``neural_modelling/src/neuron/models/neuron_model_lif_impl.h``,
``synapse_types/synapse_types_delta_impl.h``, ``exp_synapse_utils.h``, ``neuron/decay.h``, ``synapse_row.h``,
``synapses.c``, ``neuron.c``, ``implementations/neuron_impl_standard.h``, ``common/maths-util.h``;
``spynnaker/pyNN/models/neuron/abstract_population_vertex.py``; spinn_common at 1e3a090: ``src/stdfix-exp.c``,
``include/utils.h``; GCC's ``gcc/config/arm/arm-fixed.md``):

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

What is chosen here, not by the chip: the scale of each layer, in the PyNN parameters, as s16.15 words (so that
sPyNNaker's rounding to them is exact): ``tau_m`` (and ``tau_syn``) whose decay, as the core computes it, is nearest
the model's β (α) — β = 1 and α = 1 are out of reach (``exp_TC = 1`` would ignore the input, ``expulr(0)`` is 0),
the slowest decays are used and noted —, ``cm = tau_m`` (``R`` = 1 MΩ exactly), and the scale (mV per unit of the
model) at which the worst step's ``A = I·R`` (every input at once, Σ |w| + |b|, over ``1 − exp_TC``, and ``1 − α``
for a current) and the threshold are at most 2^14 mV (``SPINNAKER_RANGE``), so that ``A − V`` never wraps with one
spike per input and step; the weights in nA follow (``scale / ((1 − exp_TC)·init)`` nA per unit of the model's
weight, ``init`` = 1 for a delta synapse), the bias is ``i_offset`` (over ``1 − α`` for a CubaLIF, whose bias the
model feeds through the current), a read-out is a LIF whose threshold is the largest accum.

Not simulated (see :mod:`neurosim.hardware.fixed_point`): SpiNNaker's one-step delay per synapse layer, input spikes
above one per axon and step (counts enter as that many spikes), sPyNNaker's local-only convolutions (a convolution
runs as its connection list).

:func:`_quantise_spinnaker` chooses a synapse–neuron pair's PyNN parameters and weights; :func:`spinnaker_step` is
one time step of its neurons, which :class:`~neurosim.hardware.fixed_point.parts.ChipNeuron` runs over time
(:data:`SPINNAKER`).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch

from neurosim.hardware.fixed_point.parts import (ChipDynamics, ChipFormat, ChipNeuron, ChipSynapse, _per_channel,
                                                 _zero_fraction)


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


# ------------------------------------------------------------------------------------------------ quantisation
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
                        decay_u=decay, bias=bias_words, dynamics=SPINNAKER, recurrent=recurrent, spinnaker=spinnaker)
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


# ------------------------------------------------------------------------------------------------ the step
class SpinnakerRun(NamedTuple):
    """A SpiNNaker layer's constants for one run (:func:`spinnaker_start`): int32 bit patterns (s16.15 accums, the
    synaptic ``init`` and ``decay`` u0.32), as ``layer.spinnaker`` gives them."""

    bias: torch.Tensor  # i_offset, broadcast over one step's neurons (int64)
    shifts: torch.Tensor  # the ring-buffer shift of each channel of ``x``: excitatory ones, then inhibitory ones
    channels: int  # c: ``x[:, :c]`` are the excitatory ring buffers, ``x[:, c:]`` the inhibitory ones
    top: int  # 0xFFFF: a ring buffer saturates there
    frac: int  # 15: an accum's fractional bits
    r_m: int  # R = tau_m / cm
    exp_tc: int  # exp_TC, the membrane's decay
    threshold: int  # v_thresh
    exp_syn: bool  # an exponential synapse (IF_curr_exp); else a delta synapse (IF_curr_delta)
    init: int | None  # the exponential synapse's input scale
    decay: int | None  # the exponential synapse's decay
    spiking: bool
    scale: float  # mV per unit of the model (a read-out returns ``v / 2^15 / scale``)


def spinnaker_start(layer: ChipNeuron, x_seq: torch.Tensor) -> tuple[tuple, SpinnakerRun]:
    """The zero state ``(syn, v, s)`` of a run of ``x_seq`` ``[T, B, 2·C, ...]`` (the excitatory and the inhibitory
    ring-buffer sums side by side) and ``layer``'s constants: ``syn`` the synaptic inputs ``[B, 2·C, ...]`` and
    ``v`` the membranes ``[B, C, ...]`` (int64 holding int32 bit patterns), ``s`` the spikes (float64)."""
    sp, frac = layer.spinnaker, layer.fmt.fraction_bits
    t_steps, b, c2 = x_seq.shape[:3]
    c = c2 // 2
    shape = (b, c, *x_seq.shape[3:])
    i64 = torch.int64
    syn = torch.zeros((b, c2, *x_seq.shape[3:]), dtype=i64)
    v = torch.zeros(shape, dtype=i64)
    s = torch.zeros(shape, dtype=torch.float64)
    top = 2 ** layer.fmt.weight_bits - 1
    bias = (torch.zeros((), dtype=i64) if layer.bias_int is None
            else _per_channel(layer.bias_int.to(i64), shape))
    shifts = _per_channel(torch.tensor(sp["shifts"], dtype=i64).repeat_interleave(c), shape)
    return (syn, v, s), SpinnakerRun(
        bias=bias, shifts=shifts, channels=c, top=top, frac=frac, r_m=sp["R"], exp_tc=sp["exp_TC"],
        threshold=layer.threshold, exp_syn=sp["synapse"] == "exp", init=sp["init"], decay=sp["decay"],
        spiking=layer.spiking, scale=layer.scale)


def spinnaker_step(x: torch.Tensor, state: tuple, p: SpinnakerRun, events=None):
    """sPyNNaker's step (neuron.c ``neuron_transfer``, then ``neuron_impl_standard.h``), every value an int32
    bit pattern held in int64: the ring buffers (``x``: excitatory and inhibitory sums side by side) saturate at
    0xFFFF and enter as ``sum << shift``; the synaptic input takes them (delta: as they are; exponential: times
    ``init``, u0.32); ``I = exc − inh + i_offset``; ``A = I·R`` (an accum product: rounded down, wrapping);
    ``V ← A − exp_TC·(A − V)``; a spike where ``V ≥ v_thresh``, which resets ``V`` to 0; then the synaptic input
    decays (delta: to 0; exponential: ``(x · decay) >> 32``). ``state`` is ``(syn, v, s)``; ``events`` is not used
    (Speck's).

    Returns:
        ``(out, (syn, v, s), (at_top, 0, wrapped))``: the spikes (or a read-out's membrane in the model's units),
        the new state, and the step's counts of ring-buffer entries held at 0xFFFF and of accum results that wrapped.
    """
    syn, v, s = state
    c, frac = p.channels, p.frac
    wrapped = []

    def wrap(z):
        w = _wrap32(z)
        wrapped.append((w != z).sum())
        return w

    at_top = (x > p.top).sum()
    ring = x.clamp(max=p.top).to(torch.int64)
    add = wrap(ring << p.shifts)  # synapse_row_convert_weight_to_input
    if p.exp_syn:  # add_input_exp: decay_s1615(input, init)
        add = (add * p.init) >> 32
    syn = wrap(syn + add)
    current = wrap(wrap(syn[:, :c] - syn[:, c:]) + p.bias)
    a = wrap((current * p.r_m) >> frac)  # + V_rest (0)
    v = wrap(a - wrap((p.exp_tc * wrap(a - v)) >> frac))
    fired = v >= p.threshold
    v = torch.where(fired, torch.zeros_like(v), v)  # V_reset = 0
    syn = (syn * p.decay) >> 32 if p.exp_syn else torch.zeros_like(syn)  # synapse_types_shape_input
    if p.spiking:
        s = fired.to(torch.float64)
        out = s
    else:
        out = v.to(torch.float64) / 2.0 ** frac / p.scale
    return out, (syn, v, s), (at_top, 0, sum(wrapped))


#: sPyNNaker's LIF as :class:`~neurosim.hardware.fixed_point.parts.ChipNeuron` runs it
SPINNAKER = ChipDynamics("(syn, v, s)", spinnaker_start, spinnaker_step)

r"""Bit-exactness of ``to_chip(model, "spinnaker")`` against an independent reference of sPyNNaker's LIF.

The reference below is written from sPyNNaker's and spinn_common's C code and sPyNNaker's Python (SpiNNakerManchester/
sPyNNaker master at 891cfb3, spinn_common at 1e3a090), not from :mod:`neurosim.hardware.fixed_point`; every fixed-point
value is its 32-bit pattern held in numpy ``int64`` (or a Python int):

* spinn_common ``src/stdfix-exp.c`` — ``expk`` and ``expulr`` by ``__expi64`` with the literal tables ``__exp_hi``,
  ``__expm1_mid``, ``__exp_series`` (the implementation derives the first two by formula; a test checks they agree),
  ``include/utils.h`` — ``scale64`` / ``round64``; ``neural_modelling/src/common/maths-util.h`` — ``kdivk``, ``kdivui``
  (unsigned 64-bit division).
* GCC's accum arithmetic for ARM (``gcc/config/arm/arm-fixed.md``): ``accum * accum`` (``mulsa3``) is ``smull``, then
  the low word shifted right by 15 OR the high word shifted left by 17 — bits 15..46 of the product, so rounded down
  and wrapping; ``+``/``-`` are plain 32-bit adds (wrapping); ``1.0ulr`` is the largest u0.32 (``fixed-value.c``).
* ``neuron/models/neuron_model_lif_impl.h`` — ``neuron_model_initialise`` (``R = kdivk(tau_m, cm)``, ``exp_TC =
  expk(-kdivk(ts, tau_m))``, ``T_refract = ceil(tau_refrac/ts)``), ``neuron_model_state_update`` (outside the
  refractory time: ``input = exc − inh + external_bias + I_offset + current_offset``, ``alpha = input·R + V_rest``,
  ``V = alpha − exp_TC·(alpha − V)``), ``neuron_model_has_spiked`` (``V = V_reset``, the refractory timer set).
* ``threshold_types/threshold_type_static.h`` — a spike where ``V >= v_thresh`` (``REAL_COMPARE`` on the bits).
* ``synapse_types/synapse_types_delta_impl.h`` (input added as it comes, cleared after the step) and
  ``exp_synapse_utils.h`` / ``neuron/decay.h`` (``decay = expulr(−ts/τ)``, ``init = decay_s1615_to_u032(τ/ts, 1.0ulr −
  decay)``; input added as ``decay_s1615(input, init)``, the state decayed as ``decay_s1615(state, decay)`` after the
  step; ``decay_s1615(x, d) = (x·d) >> 32`` in ``int64``).
* ``neuron/neuron.c`` ``neuron_transfer`` and ``synapse_row.h`` (a ring-buffer entry ``> 0`` enters as
  ``(int32) value << shift`` read as an s16.15), ``neuron/synapses.c`` (each synaptic word adds its 16-bit weight to
  the entry, which saturates at 0xFFFF when bit 16 is set), ``c_main.c`` (a step: the ring buffers, then the
  neurons), ``implementations/neuron_impl_standard.h`` (per neuron: read the synaptic input, update, threshold,
  reset, then ``synapse_types_shape_input``), ``input_types/input_type_current.h`` and
  ``additional_inputs/additional_input_none_impl.h`` (no conversion, no extra current).
* ``spynnaker/pyNN/models/neuron/abstract_population_vertex.py`` — ``get_ring_buffer_shifts`` (with all delays equal:
  Σ over the incoming projections of ``spikes_per_tick · w_max · n_conns``, here one spike per input and step; the
  power ``ceil(log2)``, plus one where ``2^power`` equals it) and the weight scale ``2^(16 − (shift + 1))``;
  ``synapse_dynamics_static.py`` — ``rint(|w|) & 0xFFFF``.

Deliberate differences from an sPyNNaker run, shared with ``fixed_point`` (documented there): a spike reaches the next
population in the step it is sent (sPyNNaker's delay is at least one step), and a recurrent projection's one step later
(its delay of one step); the input's counts are spikes of a ``SpikeSourceArray`` (several in a step where the count is
more); the weights of one model layer become two ``FromListConnector`` projections (excitatory, inhibitory), a
convolution or a pooled layer its unrolled connection list.

Every test builds a small model with seeded weights, converts it, reads the PyNN parameters the chip chose (the s16.15
words of ``tau_m``, ``cm``, ``tau_syn``, ``v_thresh``, ``i_offset``, and the weights in nA as ``weight_nA`` times the
model's), sets up the reference populations from them, and asserts that the core's derived constants, the 16-bit
weights and shifts, every layer's spikes (and a read-out's membrane), the final states and the counts of saturated
ring-buffer entries and wrapped accums equal the reference's exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from neurosim import nn as nsn
from neurosim.hardware.fixed_point import ChipNeuron, ChipSynapse, to_chip
from fp_helpers import cuba_mlp, event_counts, li_readout_mlp, random_bias, rlif_mlp, run_recorded, seeded

U32, U64, INT32_MAX = 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF, 2 ** 31 - 1

# ------------------------------------------------------------------ spinn_common src/stdfix-exp.c (literal tables)
EXP_HI = [9708, 26389, 71733, 194991, 530041, 1440801, 3916503, 10646160, 28939262, 78665070, 213833830, 581260615,
          1580030169, 4294967296, 11674931555, 31735754293, 86266724208, 234497268814, 637429664642, 1732713474316,
          4710003551159, 12803117065094, 34802480465680, 94602950235157, 257157480542844, 699026506411923]
EXPM1_MID = [0, 260218914, 504671961, 734314346, 950043403, 1152702096, 1343082321, 1521927990, 1689937949,
             1847768698, 1996036966, 2135322113, 2266168400, 2389087112, 2504558555, 2613033936]
EXP_SERIES = [5294, 4293434720, 2081624032]


def s32(x: int) -> int:
    x &= U32
    return x - 2 ** 32 if x >= 2 ** 31 else x


def round64(x: int) -> int:  # utils.h
    r = x >> 32
    if (x & U32) >= INT32_MAX:
        r += 1
    return r


def scale64(x: int, y: int) -> int:  # utils.h
    r = round64(((x & U32) * y) & U64)
    return (r + (x >> 32) * y) & U64


def coef_mult(c: int, x: int) -> int:
    return ((c * x) & U64) >> 32


def exp_series(x: int) -> int:
    tmp = (EXP_SERIES[1] - coef_mult(EXP_SERIES[2], x)) & U32
    tmp = coef_mult(tmp, x)
    return (tmp + EXP_SERIES[0]) & U32


def expi64(n: int) -> int:
    z = n >> 15  # (int32_t) n >> 15: arithmetic
    f = n - (z << 15)
    if f > 0:
        z += 1
        f = 32768 - f
        tmp1 = EXP_HI[13 + z]
        tmp1 = (tmp1 - scale64(tmp1, EXPM1_MID[f >> 11])) & U64
        y = ((f & 0x7FF) << 17) & U32
        tmp1 = (tmp1 - scale64(tmp1, exp_series(y))) & U64
    else:
        tmp1 = EXP_HI[13 + z]
    return tmp1


def expk(x: int) -> int:
    if 363408 < x:
        return INT32_MAX
    if x < -340695:
        return 0
    return s32(expi64(x) >> 17)


def expulr(x: int) -> int:
    if 363408 < x:
        return INT32_MAX
    if x < -340695:
        return 0
    return expi64(x) & U32


# ------------------------------------------------------------------ maths-util.h, decay.h, lif_ceil_accum
def udiv64(a: int, b: int) -> int:
    return (a & U64) // (b & U64)


def kdivk(a: int, b: int) -> int:
    return s32(udiv64(((a & U64) << 15) & U64, b & U64) & U32)


def kdivui(a: int, b: int) -> int:
    return s32(udiv64(a & U64, b) & U32)


def lif_ceil_accum(value: int) -> int:
    integer, fraction = value >> 15, value & 0x7FFF
    return integer + 1 if fraction > 0 else integer


def decay_s1615_to_u032(x: int, decay: int) -> int:
    return (((x & U64) * decay) & U64) >> 15 & U32


def decay_s1615(x: np.ndarray, decay: int, stats: dict) -> np.ndarray:
    return as_int32((x.astype(np.int64) * decay) >> 32, stats)


# ------------------------------------------------------------------ GCC's accum arithmetic on ARM (arm-fixed.md)
def as_int32(x: np.ndarray, stats: dict) -> np.ndarray:
    """An exact integer result as the 32-bit register holds it, counting the values that wrapped."""
    x = np.asarray(x, np.int64)
    r = (x & U32).astype(np.int64)
    r = np.where(r >= 2 ** 31, r - 2 ** 32, r)
    stats["wrapped"] += int((r != x).sum())
    return r


def add_k(a, b, stats):  # add<mode>3: add
    return as_int32(np.asarray(a, np.int64) + b, stats)


def sub_k(a, b, stats):  # sub<mode>3: sub
    return as_int32(np.asarray(a, np.int64) - b, stats)


def mul_k(a, b, stats):  # mulsa3: smull; (low >> 15) | (high << 17)
    p = np.asarray(a, np.int64) * np.asarray(b, np.int64)
    low, high = p & U32, (p >> 32) & U32
    r = ((low >> 15) | (high << 17)) & U32
    r = np.where(r >= 2 ** 31, r - 2 ** 32, r)
    stats["wrapped"] += int((r != np.floor_divide(p, 2 ** 15)).sum())
    return r


# ------------------------------------------------------------------ the Python side (abstract_population_vertex.py)
def ring_buffer_shift(weight_lists: list[np.ndarray]) -> int:
    """get_ring_buffer_shifts for one synapse type; each list a dense [pre, post] matrix of that type's |weights|
    in nA (0: no connection), one spike per input and step."""
    total = 0.0
    for w in weight_lists:
        if (w != 0).any():
            n_conns = int((w != 0).sum(0).max())  # get_n_connections_to_post_vertex_maximum
            total += 1.0 * (float(w.max()) * n_conns)  # spikes_per_tick * (w_max * n_conns)
    power = 0 if total <= 0 else int(math.ceil(max(0, math.log2(total))))
    return power + 1 if (2 ** power) <= total else power


def weight_words(w: np.ndarray, shift: int) -> np.ndarray:
    scaled = w * float(math.pow(2, 16 - (shift + 1)))  # __get_weight_scale
    return (np.rint(np.abs(scaled)).astype("uint32") & 0xFFFF).astype(np.int64)  # synapse_dynamics_static


@dataclass
class Projection:
    weights_na: np.ndarray  # [pre, post], signed: split into an excitatory and an inhibitory FromListConnector
    recurrent: bool = False


@dataclass
class Population:
    """An IF_curr_delta or IF_curr_exp population: its parameters as the s16.15 (u0.32) words written for it."""

    name: str
    pynn: dict
    i_offset: np.ndarray  # [n] words
    synapse: str  # "delta" | "exp"
    readout: bool
    projections: list[Projection]
    stats: dict = field(default_factory=lambda: {"wrapped": 0, "ring_saturated": 0, "sat_events": 0})

    def __post_init__(self) -> None:
        p = self.pynn
        ts = kdivui(p["time_step"], 1)  # n_steps_per_timestep = 1
        self.R = kdivk(p["tau_m"], p["cm"])
        self.exp_TC = expk(s32(-kdivk(ts, p["tau_m"])))
        self.T_refract = lif_ceil_accum(kdivk(p["tau_refrac"], ts))
        self.decay = self.init = None
        if self.synapse == "exp":  # decay_and_init, the same tau for both types
            ts_over_tau = kdivk(ts, p["tau_syn_E"])
            self.decay = expulr(s32(-ts_over_tau))
            inv_decay = (U32 - self.decay) & U32  # 1.0ulr - decay, 1.0ulr = 0xFFFFFFFF
            tau_over_ts = kdivk(p["tau_syn_E"], ts)
            self.init = decay_s1615_to_u032(tau_over_ts, inv_decay)
        # the Python side: a ring-buffer shift per synapse type over the incoming projections, 16-bit words
        pos = [np.clip(pr.weights_na, 0, None) for pr in self.projections]
        neg = [np.clip(-pr.weights_na, 0, None) for pr in self.projections]
        self.shifts = (ring_buffer_shift(pos), ring_buffer_shift(neg))
        self.words = [(weight_words(a, self.shifts[0]), weight_words(b, self.shifts[1])) for a, b in zip(pos, neg)]

    def reset(self, batch: int) -> None:
        n = self.i_offset.size
        self.V = np.full((batch, n), self.pynn["v"], np.int64)
        self.refract_timer = np.zeros((batch, n), np.int64)
        self.exc = np.zeros((batch, n), np.int64)
        self.inh = np.zeros((batch, n), np.int64)
        self.last = np.zeros((batch, n), np.int64)

    def fill_ring_buffers(self, spikes_in: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """synapses.c: every spike adds its row's 16-bit weights, each entry saturating at 0xFFFF."""
        batch, n = spikes_in.shape[0], self.i_offset.size
        rings = [np.zeros((batch, n), np.int64), np.zeros((batch, n), np.int64)]
        hit = np.zeros((2, batch, n), bool)
        for proj, words in zip(self.projections, self.words):
            source = self.last if proj.recurrent else spikes_in
            for j in range(source.shape[1]):
                for rep in range(int(source[:, j].max(initial=0))):
                    rows = source[:, j] > rep
                    for k in range(2):
                        if not words[k][j].any():
                            continue
                        acc = rings[k][rows] + words[k][j]
                        sat = acc & 0x10000
                        self.stats["sat_events"] += int((sat != 0).sum())
                        hit[k][rows] |= sat != 0
                        rings[k][rows] = np.where(sat != 0, sat - 1, acc)
        self.stats["ring_saturated"] += int(hit.sum())
        return rings[0], rings[1]

    def transfer(self, ring_exc: np.ndarray, ring_inh: np.ndarray) -> None:
        """neuron.c neuron_transfer: each nonzero entry as (int32) value << shift, added to its synapse type."""
        for ring, k in ((ring_exc, 0), (ring_inh, 1)):
            val = as_int32(ring << self.shifts[k], self.stats)
            state = self.exc if k == 0 else self.inh
            if self.synapse == "exp":
                add = decay_s1615(val, self.init, self.stats)
            else:
                add = val
            new = np.where(ring > 0, add_k(state, add, self.stats), state)
            if k == 0:
                self.exc = new
            else:
                self.inh = new

    def do_timestep_update(self) -> np.ndarray:
        p, st = self.pynn, self.stats
        active = self.refract_timer <= 0
        total_exc = add_k(0, self.exc, st)
        total_inh = add_k(0, self.inh, st)
        current = add_k(add_k(add_k(sub_k(total_exc, total_inh, st), 0, st), self.i_offset, st), 0, st)
        alpha = add_k(mul_k(current, self.R, st), p["v_rest"], st)
        v_new = sub_k(alpha, mul_k(self.exp_TC, sub_k(alpha, self.V, st), st), st)
        self.V = np.where(active, v_new, self.V)
        self.refract_timer = np.where(active, self.refract_timer, self.refract_timer - 1)
        spike = self.V >= p["v_thresh"]
        self.V = np.where(spike, p["v_reset"], self.V)
        self.refract_timer = np.where(spike, self.T_refract, self.refract_timer)
        if self.synapse == "exp":  # exp_shaping
            self.exc = decay_s1615(self.exc, self.decay, st)
            self.inh = decay_s1615(self.inh, self.decay, st)
        else:
            self.exc = np.zeros_like(self.exc)
            self.inh = np.zeros_like(self.inh)
        self.last = spike.astype(np.int64)
        return spike


def run_reference(pops: list[Population], x: np.ndarray) -> list[np.ndarray]:
    """Every population's output ``[T, B, n]``: spikes, or a read-out's membrane words after each step."""
    t_steps, batch = x.shape[:2]
    for pop in pops:
        pop.reset(batch)
    outs = [[] for _ in pops]
    for t in range(t_steps):
        spikes = x[t].reshape(batch, -1).astype(np.int64)
        for pop, out in zip(pops, outs):
            pop.transfer(*pop.fill_ring_buffers(spikes))
            spikes = pop.do_timestep_update().astype(np.int64)
            out.append(pop.V.copy() if pop.readout else spikes)
    return [np.stack(o) for o in outs]


# ------------------------------------------------------------------ the network sPyNNaker would get
def conv_as_dense(kernel: np.ndarray, in_shape: tuple, conv: dict) -> tuple[np.ndarray, tuple]:
    """A convolution (groups = 1) as its connection matrix [pre, post] (C·H·W, channel-major)."""
    c_out, c_in, kh, kw = kernel.shape
    (sh, sw), (ph, pw) = conv["stride"], conv["padding"]
    _, h, w = in_shape
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    dense = np.zeros((c_in * h * w, c_out * ho * wo), kernel.dtype)
    for o in range(c_out):
        for y in range(ho):
            for z in range(wo):
                post = (o * ho + y) * wo + z
                for c in range(c_in):
                    for a in range(kh):
                        for b in range(kw):
                            yy, zz = y * sh - ph + a, z * sw - pw + b
                            if 0 <= yy < h and 0 <= zz < w:
                                dense[(c * h + yy) * w + zz, post] = kernel[o, c, a, b]
    return dense, (c_out, ho, wo)


def pool_as_dense(in_shape: tuple, k: int, value: float) -> tuple[np.ndarray, tuple]:
    """A non-overlapping k×k pool as [pre, pooled] with ``value`` where a neuron lies in a window."""
    c, h, w = in_shape
    ho, wo = h // k, w // k
    dense = np.zeros((c * h * w, c * ho * wo))
    for ch in range(c):
        for y in range(ho * k):
            for z in range(wo * k):
                dense[(ch * h + y) * w + z, (ch * ho + y // k) * wo + z // k] = value
    return dense, (c, ho, wo)


def spinn_network(model: nsn.Sequential, chip, in_shape: tuple) -> list[Population]:
    """The populations and projections for ``model`` with the parameters ``chip`` chose (weights: the model's, times
    ``weight_nA``). Each population also keeps its feed-forward synapse's input shape and pool (``via``), to expand
    the chip's words for comparison."""
    neurons = {m.name: m for m in chip.net if isinstance(m, ChipNeuron)}
    pops, shape, dense, pool, via = [], tuple(in_shape), None, None, None
    items = list(model.named_children())
    for idx, (name, m) in enumerate(items):
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
            k = m.weight.detach().double().numpy()
            via = (shape, None if pool is None else (pool != 0).astype(np.int64))
            if isinstance(m, torch.nn.Linear):
                dense, shape = k.T.copy(), (k.shape[0],)
            else:
                dense, shape = conv_as_dense(k, shape, {"stride": m.stride, "padding": m.padding})
            if pool is not None:
                dense, pool = pool @ dense, None
            if idx == len(items) - 1:  # a trailing weight layer: read from neurons named after it
                pops.append(_population(neurons[name], [Projection(dense)], shape, True, via))
        elif isinstance(m, torch.nn.AvgPool2d):
            pool, shape = pool_as_dense(shape, m.kernel_size, 1.0 / m.kernel_size ** 2)
        elif isinstance(m, nsn.Flatten):
            shape = (int(np.prod(shape)),)
        elif isinstance(m, (nsn.LIF, nsn.CubaLIF, nsn.RLIF, nsn.LI)):
            projs = [Projection(dense)]
            if isinstance(m, nsn.RLIF):
                rw = m.recurrent.weight.detach().double().numpy()
                projs.append(Projection(np.diag(rw) if rw.ndim == 1 else rw.T.copy(), recurrent=True))
            pops.append(_population(neurons[name], projs, shape, isinstance(m, nsn.LI), via))
        else:
            raise AssertionError(f"no reference for {type(m).__name__}")
    return pops


def _population(neuron: ChipNeuron, projs: list[Projection], shape: tuple, readout: bool, via: tuple) -> Population:
    sp = neuron.spinnaker
    for p in projs:
        p.weights_na = p.weights_na * sp["weight_nA"]
    n = int(np.prod(shape))
    if neuron.bias_int is None:
        i_offset = np.zeros(n, np.int64)
    else:
        b = neuron.bias_int.numpy()
        assert np.isfinite(b).all() and (b == np.round(b)).all() and np.abs(b).max() < 2 ** 31, neuron.name
        b = b.astype(np.int64)
        i_offset = np.repeat(b, n // b.size)  # a conv's bias is per channel
    pop = Population(neuron.name, dict(sp["pynn"]), i_offset, sp["synapse"], readout, projs)
    pop.via = via
    return pop


# ------------------------------------------------------------------ comparing
def check_constants(chip, pops: list[Population]) -> None:
    """The core's constants and the 16-bit words and shifts, chip against reference."""
    neurons = [m for m in chip.net if isinstance(m, ChipNeuron)]
    synapses = [m for m in chip.net if isinstance(m, ChipSynapse) and not m.name.endswith(".recurrent")]
    assert [n.name for n in neurons] == [p.name for p in pops]
    for neuron, syn, pop in zip(neurons, synapses, pops):
        sp = neuron.spinnaker
        assert (sp["R"], sp["exp_TC"], sp["decay"], sp["init"]) == (pop.R, pop.exp_TC, pop.decay, pop.init), pop.name
        assert neuron.threshold == pop.pynn["v_thresh"] and neuron.decay_v == pop.exp_TC
        assert tuple(sp["shifts"]) == pop.shifts, (pop.name, sp["shifts"], pop.shifts)
        in_shape, pool01 = pop.via
        for k, words in enumerate((syn.weight_int, syn.weight_neg)):
            w = words.numpy().astype(np.int64)
            dense = w.T if syn.op == "linear" else conv_as_dense(w, in_shape, syn.conv)[0]
            if pool01 is not None:
                dense = pool01 @ dense
            assert np.array_equal(dense, pop.words[0][k]), f"{pop.name}: {'exc' if k == 0 else 'inh'} words"
        if neuron.recurrent is not None:
            for k, words in enumerate((neuron.recurrent.weight_int, neuron.recurrent.weight_neg)):
                assert np.array_equal(words.numpy().astype(np.int64).T, pop.words[1][k]), f"{pop.name}: recurrent"


def run_chip(chip, x: np.ndarray) -> tuple[list[np.ndarray], list[tuple]]:
    """Every ChipNeuron's output ``[T, B, n]`` (spikes, or a read-out's membrane words ``out·scale·2^15``) and its
    final state ``(exc, inh, v)`` as words."""
    got, finals = [], []

    def hook(mod, out):
        o = out[0].detach().double()
        if not mod.spiking:
            o = o * mod.scale * 2 ** 15
            assert torch.allclose(o, torch.round(o), rtol=0, atol=1e-4)
            o = torch.round(o)
        got.append(o.reshape(o.shape[0], o.shape[1], -1).numpy().astype(np.int64))
        syn, v, _ = out[1]
        c = syn.shape[1] // 2
        finals.append((syn[:, :c].reshape(syn.shape[0], -1).numpy(), syn[:, c:].reshape(syn.shape[0], -1).numpy(),
                       v.reshape(v.shape[0], -1).numpy()))

    run_recorded(chip, x, hook)
    return got, finals


def check_exact(model, x: np.ndarray, *, active: bool = True) -> tuple:
    """Convert ``model``, run chip and reference on ``x`` ``[T, B, ...]`` and assert they agree exactly."""
    chip = to_chip(model, "spinnaker")
    pops = spinn_network(model, chip, x.shape[2:])
    check_constants(chip, pops)
    ref = run_reference(pops, x)
    got, finals = run_chip(chip, x)
    counts = chip.counts()
    assert len(got) == len(ref) == len(pops)
    for pop, g, r, (exc, inh, v) in zip(pops, got, ref, finals):
        assert g.shape == r.shape, pop.name
        bad = np.argwhere(g != r)
        assert bad.size == 0, f"layer {pop.name}: {len(bad)} differences, first at [t, b, n] = {bad[:3].tolist()}"
        assert np.array_equal(v, pop.V) and np.array_equal(exc, pop.exc) and np.array_equal(inh, pop.inh), pop.name
        assert counts[pop.name]["at_top"] == pop.stats["ring_saturated"], pop.name
        assert counts[pop.name]["wrapped"] == pop.stats["wrapped"], (pop.name, counts[pop.name], pop.stats)
        if active and not pop.readout:
            assert 0 < r.mean() < 1, f"layer {pop.name}: spike rate {r.mean()} says nothing"
    return chip, pops, ref


# ------------------------------------------------------------------ the reference itself, checked by hand
def test_reference_matches_hand_computed_values():
    st = {"wrapped": 0}
    # expk: e^0 = 1.0; e^-1 in s16.15 is 12054.6 -> 12054 (the table and the series round down here); the table's
    # bounds saturate; e^(-2^-15) comes out 32766 (the series' constant term c0 costs a bit)
    assert expk(0) == 32768 and expk(-32768) == 12054 and expk(-340696) == 0 and expk(363409) == INT32_MAX
    assert expk(-1) == 32766
    assert expulr(0) == 0  # the low 32 bits of 2^32: expulr cannot give 1
    assert expulr(-1) == 2 ** 32 - 136317
    # kdivk rounds down: 1/3 ms = 10922.67 -> 10922; equal words give exactly 1.0
    assert kdivk(32768, 3 * 32768) == 10922 and kdivk(12345, 12345) == 32768
    # mulsa3 rounds down, also for negatives: -1 * 0.5 (in 2^-15 bits) = -0.5 bit -> -1
    assert mul_k(np.array([-1, 1, -3]), 16384, st).tolist() == [-1, 0, -2]
    assert mul_k(np.array([2 ** 31 - 1]), 65536, st).tolist() == [-2] and st["wrapped"] == 1  # 2^32 - 2 wraps
    assert add_k(np.array([2 ** 31 - 1]), 1, st).tolist() == [-(2 ** 31)] and st["wrapped"] == 2
    # decay_s1615 rounds down (an arithmetic shift)
    assert decay_s1615(np.array([-1, 1]), 2 ** 31, st).tolist() == [-1, 0]
    # 1.0ulr - decay, times tau/ts: tau = dt, decay = e^-1 -> init = 1 - e^-1 (in u0.32)
    d = expulr(-32768)
    assert decay_s1615_to_u032(32768, U32 - d) == U32 - d
    # the ring-buffer shift: 2^power strictly above the bound; the weight scale 2^(15 - shift), rint half to even
    assert ring_buffer_shift([np.array([[1.0], [1.0]])]) == 2  # 2 nA: 2^1 is not above it
    assert ring_buffer_shift([np.array([[0.3]])]) == 0 and ring_buffer_shift([np.zeros((2, 2))]) == 0
    assert weight_words(np.array([0.5 / 2 ** 15, 1.5 / 2 ** 15, 2.5 / 2 ** 15]), 0).tolist() == [0, 2, 2]
    # the ring buffer saturates at 0xFFFF (bit 16 set -> 0x10000 - 1)
    pop = Population("p", {"time_step": 32768, "tau_m": 32768, "cm": 32768, "tau_refrac": 0, "v": 0, "v_rest": 0,
                           "v_reset": 0, "v_thresh": INT32_MAX}, np.zeros(1, np.int64), "delta", True,
                     [Projection(np.array([[1.5]]))])
    assert pop.shifts == (1, 0) and pop.words[0][0].tolist() == [[24576]]  # 1.5 nA · 2^14: a word stays below 2^15
    pop.reset(1)
    exc, _ = pop.fill_ring_buffers(np.array([[3]]))  # 24576, 49152, then 73728: held at 65535
    assert exc.tolist() == [[65535]] and pop.stats["ring_saturated"] == 1 and pop.stats["sat_events"] == 1


def test_the_implementations_exp_tables_and_functions_equal_spinn_commons():
    from neurosim.hardware.fixed_point import spinnaker as fp

    assert list(fp._EXP_HI) == EXP_HI and list(fp._EXPM1_MID) == EXPM1_MID and list(fp._EXP_SERIES) == EXP_SERIES
    rng = np.random.default_rng(0)
    args = np.concatenate([rng.integers(-340800, 363500, 3000), np.arange(-40, 41), [-340695, -340696, 363408]])
    for n in args.tolist():
        assert fp._spinn_expk(n) == expk(n) and fp._spinn_expulr(n) == expulr(n), n
    for a, b in rng.integers(1, 2 ** 31, (500, 2)).tolist():
        assert fp._spinn_kdivk(a, b) == kdivk(a, b), (a, b)


# ------------------------------------------------------------------ chip == sPyNNaker
@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9, 0.99, 1.0])
def test_lif_mlp_with_biases(beta):
    rng = seeded(1)
    model = nsn.Sequential(nsn.Linear(12, 16), nsn.LIF(beta=beta, v_th=1.0, reset="zero"),
                           nsn.Linear(16, 6), nsn.LIF(beta=beta, v_th=0.7, reset="zero"))
    with torch.no_grad():
        model[0].weight.mul_(2.0)
        model[2].weight.mul_(2.0)
    random_bias(model[0], rng, 0.15)
    random_bias(model[2], rng, 0.1)
    chip, pops, _ = check_exact(model, event_counts(rng, 30, 4, 12))
    assert all(p.stats["wrapped"] == 0 for p in pops)
    assert all(p.synapse == "delta" and p.T_refract == 0 and p.R == 32768 for p in pops)
    assert all(p.i_offset.any() for p in pops)
    for row in chip.layers:
        assert abs(row["beta_chip"] - beta) < (1e-4 if beta < 1 else 1e-3)


def test_lif_with_li_readout_and_a_trailing_weight_layer():
    rng = seeded(2)
    model = li_readout_mlp(rng)
    chip, pops, ref = check_exact(model, event_counts(rng, 25, 4, 10))
    assert np.abs(ref[-1]).max() > 2 ** 15  # the read-out's membrane moves by more than 1 mV
    assert chip.layers[-1]["threshold_int"] == INT32_MAX
    trailing = nsn.Sequential(nsn.Linear(10, 14), nsn.LIF(beta=0.8, v_th=1.0, reset="zero"), nsn.Linear(14, 5))
    chip, pops, ref = check_exact(trailing, event_counts(rng, 20, 3, 10))
    assert pops[-1].exp_TC == 0 and pops[-1].name == "2"


@pytest.mark.parametrize("alpha", [0.3, 0.8, 1.0])
def test_cuba_lif_runs_as_if_curr_exp(alpha):
    rng = seeded(3)
    model = cuba_mlp(alpha, rng)
    chip, pops, _ = check_exact(model, event_counts(rng, 30, 4, 10))
    assert all(p.synapse == "exp" and 0 < p.init < 2 ** 32 for p in pops) and pops[0].i_offset.any()
    assert all(abs(p.decay / 2 ** 32 - min(alpha, 0.9999)) < 1e-4 for p in pops)


@pytest.mark.parametrize("connectivity", ["dense", "diagonal"])
def test_rlif_recurrent_spikes_arrive_a_step_later_in_the_same_ring_buffers(connectivity):
    rng = seeded(4)
    model = rlif_mlp(connectivity, rng)
    x = event_counts(rng, 30, 4, 8)
    chip, pops, ref = check_exact(model, x)
    assert len(pops[0].projections) == 2 and pops[0].projections[1].recurrent
    alone = spinn_network(model, chip, (8,))  # without the feedback the layer spikes otherwise
    alone[0].projections.pop()
    alone[0].words.pop()
    assert not np.array_equal(run_reference(alone, x)[0], ref[0])


def test_conv_avgpool_flatten_readout():
    rng = seeded(5)
    model = nsn.Sequential(nsn.Conv2d(2, 3, 3, stride=2, padding=1), nsn.LIF(beta=0.9, v_th=1.0, reset="zero"),
                           nsn.Conv2d(3, 4, 3, padding=1), nsn.CubaLIF(alpha=0.5, beta=0.8, v_th=0.5, reset="zero"),
                           nsn.AvgPool2d(2), nsn.Flatten(), nsn.Linear(4 * 2 * 2, 5), nsn.LI(0.8))
    with torch.no_grad():
        model[0].weight.mul_(2.0)
        model[2].weight.mul_(3.0)
    chip, pops, _ = check_exact(model, event_counts(rng, 15, 3, 2, 8, 8))
    assert pops[0].words[0][0].shape == (2 * 8 * 8, 3 * 4 * 4) and pops[1].i_offset.shape == (4 * 4 * 4,)
    assert any("ConvolutionConnector" in n for n in chip.notes)


def test_ring_buffer_saturation_and_accum_wraps_as_the_core_has_them():
    """Input counts far above one spike per step: the ring buffers saturate at 0xFFFF and the membrane wraps."""
    rng = seeded(6)
    model = nsn.Sequential(nsn.Linear(6, 5), nsn.LIF(beta=0.9, v_th=1.0, reset="zero"),
                           nsn.Linear(5, 3), nsn.LI(0.9))
    with torch.no_grad():
        model[0].weight.abs_()
    x = event_counts(rng, 12, 3, 6, high=3)
    x[4:8] *= 40
    chip, pops, _ = check_exact(model, x, active=False)
    assert pops[0].stats["ring_saturated"] > 0 and pops[0].stats["wrapped"] > 0
    c = chip.counts()[pops[0].name]
    assert c["saturated"] == c["at_top"] == pops[0].stats["ring_saturated"] and c["at_floor"] == 0


def test_representable_model_matches_the_float_model_closely():
    """Weights, biases and threshold comfortably above the words' steps: chip spikes equal float spikes nearly
    everywhere (the rest is rounding of the decay and the weights)."""
    rng = seeded(7)
    model = nsn.Sequential(nsn.Linear(20, 30), nsn.LIF(beta=0.9, v_th=0.5, reset="zero"))
    random_bias(model[0], rng, 0.05)
    x = event_counts(rng, 30, 8, 20, high=2)
    chip = to_chip(model, "spinnaker")
    got, _ = chip(torch.from_numpy(x).double())
    with torch.no_grad():
        want, _ = model(torch.from_numpy(x).float())
    assert (got.numpy() != want.numpy()).mean() < 0.01 and want.mean() > 0.05


# ------------------------------------------------------------------ notes and errors
def test_notes_name_what_spinnaker_does_otherwise():
    model = nsn.Sequential(nsn.Conv2d(1, 2, 3), nsn.LIF(beta=1.0, v_th=1.0), nsn.MaxPool2d(2), nsn.Flatten(),
                           nsn.Linear(2 * 3 * 3, 4), nsn.CubaLIF(alpha=1.0, beta=0.9, reset_timing="delayed"),
                           nsn.Linear(4, 3), nsn.LI(0.5))
    with torch.no_grad():
        model[4].bias.fill_(0.1)
    chip = to_chip(model, "spinnaker")
    notes = "\n".join(chip.notes)
    for needle in ("1: β = 1 needs τ_m = ∞", "5: α = 1 needs τ_syn = ∞",
                   "1, 5: the model resets by 'subtract'; sPyNNaker's LIF sets a neuron that fires to v_reset",  # (grouped)
                   "5: the model resets a step late", "5: the model's bias enters the synaptic current",
                   "7: the read-out is the membrane after each step", "0: a convolution runs as the synapses",
                   "2: a max pool of spikes", "one time step later at the earliest", "tau_refrac = 0",
                   "the input's event counts enter as that many spikes"):
        assert needle in notes, needle
    rows = {r["layer"]: r for r in chip.layers}
    assert rows["1"]["beta_chip"] == 32766 / 32768 and rows["5"]["alpha_chip"] == (2 ** 32 - 136317) / 2 ** 32
    assert rows["1"]["tau_m_ms"] == rows["1"]["cm_nF"] and rows["5"]["tau_syn_ms"] > 30000


def test_negative_input_is_refused_naming_the_first_layer():
    model = nsn.Sequential(nsn.Linear(3, 2), nsn.LIF(beta=0.9))
    chip = to_chip(model, "spinnaker")
    x = torch.zeros(2, 1, 3)
    x[1, 0, 2] = -1
    with pytest.raises(ValueError, match=r"^0: SpiNNaker.s inputs are spikes.*negative values \(e.g. -1: OFF events"):
        chip(x)


def test_a_spec_with_other_formats_is_refused_naming_the_target(tmp_path):
    import copy
    import sys

    from hardware_models.specs import SPEC_DIR, spec_from_dict

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    with open(SPEC_DIR / "spinnaker.toml", "rb") as fh:
        data = copy.deepcopy(tomllib.load(fh))
    data["precision"]["fraction_bits"]["value"] = 16
    spec = spec_from_dict(data, origin="spinnaker.toml")
    with pytest.raises(ValueError, match=r"^target 'spinnaker': sPyNNaker's arithmetic is s16.15.*fraction_bits=16"):
        to_chip(nsn.Sequential(nsn.Linear(3, 2), nsn.LIF()), spec)


def test_report_and_weights_model_on_spinnaker():
    from neurosim.hardware.fixed_point import chip_weights_model, evaluate_fixed_point, format_fixed_point

    rng = seeded(8)
    model = nsn.Sequential(nsn.Linear(6, 8), nsn.LIF(beta=0.9, v_th=0.5, reset="zero"), nsn.Linear(8, 3), nsn.LI(0.9))
    random_bias(model[0], rng, 0.1)
    chip = to_chip(model, "spinnaker")
    back = chip_weights_model(model, chip)
    for i in (0, 2):  # the chip's weights, back in the model's units: within half a word's step
        step = max(chip.layers[i // 2]["weight_lsb"], 1e-12)
        assert float((back[i].weight - model[i].weight).detach().abs().max()) <= step / 2 + 1e-12
    x = torch.from_numpy(event_counts(rng, 10, 12, 6, high=2)).float()
    y = torch.from_numpy(rng.integers(0, 3, 12))
    report = evaluate_fixed_point(model, [(x, y)], "spinnaker")
    assert report["arithmetic"] == "spinnaker" and report["samples"] == 12
    assert report["layers"][0]["ring_buffer_shifts"] == list(chip.layers[0]["ring_buffer_shifts"])
    assert "spinnaker (spinnaker arithmetic)" in format_fixed_point(report)


def test_a_membrane_exactly_at_the_threshold_fires():
    """sPyNNaker fires where V >= v_thresh: one weight equal to the threshold, no leak kept (β = 0), gives a
    membrane exactly at v_thresh (2^14 mV), and a spike, as in the float model. The other two weights land on half a
    word: rint rounds them to even."""
    model = nsn.Sequential(nsn.Linear(1, 3, bias=False), nsn.LIF(beta=0.0, v_th=1.0, reset="zero"))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0], [2.5 / 2 ** 14], [3.5 / 2 ** 14]]))
    x = np.array([[[1]], [[0]], [[1]]])
    chip, pops, ref = check_exact(model, x, active=False)
    assert pops[0].shifts[0] == 15 and pops[0].words[0][0].tolist() == [[16384, 2, 4]]  # 2^14 nA: 2^14 is not above it
    assert pops[0].pynn["v_thresh"] == 2 ** 29 and ref[0][:, 0, 0].tolist() == [1, 0, 1]


def test_ring_buffer_holds_0xffff_and_counts_only_what_exceeds_it():
    model = nsn.Sequential(nsn.Linear(2, 1), nsn.LI(0.0))  # V = I every step
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.5, -0.25]]))
        model[0].bias.fill_(-0.1)
    chip = to_chip(model, "spinnaker")
    neuron = next(m for m in chip.net if isinstance(m, ChipNeuron))
    shift = neuron.spinnaker["shifts"][0]
    sums = torch.tensor([[[65535.0, 0.0]], [[65536.0, 0.0]], [[200000.0, 0.0]]])  # [T, B, exc and inh]
    states = [neuron(sums[i:i + 1])[1][1] for i in range(3)]
    assert neuron.counts["at_top"] == 2 and neuron.counts["wrapped"] == 0
    assert states[0].tolist() == states[1].tolist() == states[2].tolist() == [[(65535 << shift) + int(neuron.bias_int)]]

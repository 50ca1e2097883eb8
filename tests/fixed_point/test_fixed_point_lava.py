r"""Bit-exactness of ``to_chip(model, "loihi")`` against an independent reference of Lava's bit-accurate models.

The reference below is written from Lava's source (lava-nc/lava), not from :mod:`neurosim.hardware.fixed_point`:

* ``src/lava/proc/dense/models.py`` — ``AbstractPyDenseModelBitAcc`` / ``PyDenseModelBitAcc``: the weights are
  prepared once with ``clip_weights(weights, sign_mode, num_bits=8)`` and ``truncate_weights(weights, sign_mode,
  num_weight_bits)`` (``num_weight_bits`` defaults to 8; ``sign_mode`` is the ``sign_mode`` process parameter or,
  by default, ``determine_sign_mode(weights)``); per step ``a_accum = weights · s_in`` is shifted by
  ``weight_exp`` (``np.left_shift`` if ``weight_exp > 0`` else ``np.right_shift`` by ``−weight_exp``, an
  arithmetic shift that rounds down) and sent as ``int32``.
* ``src/lava/utils/weightutils.py`` — ``SignMode``, ``determine_sign_mode``, ``clip_weights``, ``truncate_weights``.
* ``src/lava/proc/lif/models.py`` — ``AbstractPyLifModelFixed.subthr_dynamics`` / ``PyLifModelBitAcc``: with
  ``ds_offset = 1``, ``dm_offset = 0``, 12-bit decays, ``act_shift = vth_shift = 6`` and 24-bit ``u``/``v``::

      u ← int32(sign(u·(4096 − (du + 1))) · (|u·(4096 − (du + 1))| >> 12)) + (a_in << 6)
      u ← u − 2^24 where u > 2^23, then (u_before + 2^24) where that is ≤ −2^23      (Lava's wrap)
      v ← clip(int32(sign(v·(4096 − dv)) · (|…| >> 12)) + u + (bias_mant << bias_exp), ±(2^23 − 1))
      s = v > (vth << 6);  v ← 0 where s

  The membrane ``u``/``v`` registers and ``a_in`` are ``int32`` arrays in Lava, so ``a_in << 6`` and the sums
  wrap modulo 2^32 there; the reference computes in ``int64`` and reproduces those ``int32`` wraps at the same
  places (counted in ``stats["int32_overflow"]``: every ordinary test asserts there are none, so exact integer
  arithmetic and Lava's ``int32`` arithmetic agree on it).

Deliberate differences from a Lava network, which the reference shares with ``fixed_point`` (documented there):

* Lava's Dense sends at step ``t`` the sum of step ``t − 1`` (``a_buff``: one step of delay per synapse layer).
  ``fixed_point`` does not simulate that delay, so the reference applies each step's input in the same step.
  A recurrent connection (``RLIF``) is where the delay is part of the model: its input at step ``t`` is
  ``W_rec · s[t − 1]``, which enters ``a_in`` together with (summed with, before the ``<< 6``) the feed-forward
  input, as Lava's ``PyInPortVectorDense.recv`` sums the connected ports.
* The first layer's inputs are event counts, taken as graded spikes (Lava's ``num_message_bits > 0``:
  ``weights.dot(s_in)``); later layers get binary spikes, for which both of Lava's paths agree.
* A convolution is run as the Dense matrix it amounts to (unrolled here by hand). Lava's own ``Conv`` fixed-point
  model (``src/lava/proc/conv/models.py`` ``PyConvModelFixed``, tagged ``fixed_pt``, not ``bit_accurate_loihi``)
  neither applies ``weight_exp`` nor clips/truncates weights, and clamps its output to 24 bits.
* A non-spiking read-out (``LI``) is a LIF compartment whose threshold is never reached (Lava has no non-spiking
  LIF; fixed_point gives it ``vth = 2^17 − 1``, which ``v`` exceeds only within 64 of saturation, and resets there as
  Lava does).

Every test builds a small neurosim model with seeded random weights, converts it, reads the integers the chip
chose (``ChipSynapse.weight_int``/``.exp``, ``ChipNeuron.threshold``/``.decay_v``/``.bias_int``/``.recurrent``,
Lava's ``du`` and ``bias_exp`` from ``chip.layers``), expresses them as Lava process parameters, and asserts that
every layer's spikes (and an ``LI`` read-out's membrane) equal the reference's exactly, as do the final ``u`` and
``v`` and the counts of saturated and wrapped register updates. The last test is a strict xfail: the place where
``fixed_point`` and Lava's Python models compute different numbers (Lava's ``int32`` overflow of a huge input).
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

# ------------------------------------------------------------------ Lava's constants (AbstractPyLifModelFixed)
DS_OFFSET = 1  # added to du: the current's effective decay constant
DM_OFFSET = 0  # added to dv
DECAY_SHIFT = 12
DECAY_UNITY = 2 ** DECAY_SHIFT
VTH_SHIFT = 6
ACT_SHIFT = 6
MAX_UV_VAL = 2 ** (24 - 1)  # u, v are 24 bits wide
VTH_MAX = 2 ** 17 - 1  # PyLifModelBitAcc: vth is an unsigned 17-bit integer
BIAS_MANT_RANGE = (-(2 ** 12), 2 ** 12 - 1)  # signed 13-bit
BIAS_EXP_RANGE = (0, 7)  # unsigned 3-bit
INT32_LO, INT32_HI = -(2 ** 31), 2 ** 31 - 1

# weightutils.SignMode
MIXED, EXCITATORY, INHIBITORY = "mixed", "excitatory", "inhibitory"


def _i32(x: np.ndarray, stats: dict) -> np.ndarray:
    """``x`` (int64) as Lava's int32 arrays hold it: modulo 2^32, counting the values that wrapped."""
    x = np.asarray(x, dtype=np.int64)
    out = (x - INT32_LO) % 2 ** 32 + INT32_LO
    stats["int32_overflow"] += int((out != x).sum())
    return out


# ------------------------------------------------------------------ weightutils.py
def determine_sign_mode(weights: np.ndarray) -> str:
    if np.min(weights) >= 0:
        return EXCITATORY
    if np.max(weights) <= 0:
        return INHIBITORY
    return MIXED


def clip_weights(weights: np.ndarray, sign_mode: str, num_bits: int) -> np.ndarray:
    w = weights.astype(np.int64)
    mixed, inhibitory = int(sign_mode == MIXED), int(sign_mode == INHIBITORY)
    if inhibitory:
        w = -w
    w = np.clip(w, (-2 ** num_bits) * mixed, 2 ** num_bits - 1)  # learning_simulation=False
    return -w if inhibitory else w


def truncate_weights(weights: np.ndarray, sign_mode: str, num_weight_bits: int,
                     max_num_weight_bits: int = 8) -> np.ndarray:
    w = weights.astype(np.int64)
    if sign_mode == INHIBITORY:
        w = -w
    n = max_num_weight_bits - num_weight_bits + int(sign_mode == MIXED)
    w = (w >> n) << n
    return -w if sign_mode == INHIBITORY else w


# ------------------------------------------------------------------ dense/models.py: PyDenseModelBitAcc
@dataclass
class LavaDense:
    """``Dense(weights=weights, weight_exp=weight_exp[, sign_mode=...])`` with ``num_weight_bits = 8``."""

    weights: np.ndarray  # [out, in], as handed to the process
    weight_exp: int = 0
    sign_mode: str | None = None  # None: Lava's default, determine_sign_mode(weights)
    num_weight_bits: int = 8

    def __post_init__(self) -> None:
        mode = self.sign_mode or determine_sign_mode(self.weights)
        w = clip_weights(self.weights, mode, num_bits=8)
        self.w = truncate_weights(w, mode, self.num_weight_bits)

    def step(self, s_in: np.ndarray, stats: dict) -> np.ndarray:
        """``a_buff`` for the input ``s_in`` ``[B, in]`` (graded or binary)."""
        a_accum = _i32(s_in.astype(np.int64) @ self.w.T, stats)
        if self.weight_exp > 0:
            out = np.left_shift(a_accum, self.weight_exp)
        else:
            out = np.right_shift(a_accum, -self.weight_exp)
            k = -self.weight_exp
            if k:  # where the arithmetic shift rounds down rather than toward zero
                stats["floor_not_trunc"] += int(((a_accum < 0) & (a_accum % 2 ** k != 0)).sum())
        return _i32(out, stats)


# ------------------------------------------------------------------ lif/models.py: PyLifModelBitAcc
@dataclass
class LavaLIF:
    """``LIF(du=du, dv=dv, vth=vth, bias_mant=..., bias_exp=...)`` run by ``PyLifModelBitAcc``; ``vth=None``: a
    compartment that never fires (a read-out)."""

    du: int
    dv: int
    vth: int | None
    bias_mant: np.ndarray | int = 0
    bias_exp: np.ndarray | int = 0

    def __post_init__(self) -> None:
        assert 0 <= self.du <= DECAY_UNITY - 1 and 0 <= self.dv <= DECAY_UNITY - 1, (self.du, self.dv)
        assert self.vth is None or 0 <= self.vth <= VTH_MAX, self.vth
        mant, exp = np.asarray(self.bias_mant, np.int64), np.asarray(self.bias_exp, np.int64)
        assert mant.min(initial=0) >= BIAS_MANT_RANGE[0] and mant.max(initial=0) <= BIAS_MANT_RANGE[1], mant
        assert exp.min(initial=0) >= BIAS_EXP_RANGE[0] and exp.max(initial=0) <= BIAS_EXP_RANGE[1], exp
        # scale_bias (bias_exp >= 0 here, so only the left shift)
        self.effective_bias = np.left_shift(mant, exp)
        # scale_threshold
        self.effective_vth = None if self.vth is None else self.vth << VTH_SHIFT

    @staticmethod
    def _decay(x: np.ndarray, decay_const: int, stats: dict) -> np.ndarray:
        d = x.astype(np.int64) * (DECAY_UNITY - decay_const)
        return _i32(np.sign(d) * np.right_shift(np.abs(d), DECAY_SHIFT), stats)

    def step(self, u: np.ndarray, v: np.ndarray, a_in: np.ndarray, stats: dict):
        """One ``run_spk``: returns ``(u, v, spikes, v_before_reset)``."""
        decayed_curr = self._decay(u, self.du + DS_OFFSET, stats)
        activation_in = _i32(np.left_shift(a_in, ACT_SHIFT), stats)
        decayed_curr = _i32(decayed_curr + activation_in, stats)
        wrapped = np.where(decayed_curr > MAX_UV_VAL, decayed_curr - 2 * MAX_UV_VAL, decayed_curr)
        wrapped = np.where(wrapped <= -MAX_UV_VAL, decayed_curr + 2 * MAX_UV_VAL, wrapped)
        stats["wrapped"] += int((wrapped != decayed_curr).sum())
        u = _i32(wrapped, stats)
        decayed_volt = self._decay(v, self.dv + DM_OFFSET, stats)
        updated = _i32(decayed_volt + u + self.effective_bias, stats)
        v = np.clip(updated, -MAX_UV_VAL + 1, MAX_UV_VAL - 1)
        stats["saturated"] += int((v != updated).sum())
        if self.effective_vth is None:
            return u, v, np.zeros_like(v), v
        stats["ties"] += int((v == self.effective_vth).sum())
        s = v > self.effective_vth
        return u, np.where(s, 0, v), s.astype(np.int64), v


@dataclass
class LavaLayer:
    name: str
    dense: LavaDense
    lif: LavaLIF
    recurrent: LavaDense | None = None
    readout: bool = False  # compared by its membrane v (as a Lava probe of v reads it), not its spikes
    final: tuple = ()  # (u, v) after the last step of run_reference
    stats: dict = field(default_factory=lambda: dict.fromkeys(
        ("int32_overflow", "wrapped", "saturated", "ties", "floor_not_trunc"), 0))


def run_reference(layers: list[LavaLayer], x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Run ``x`` ``[T, B, n_in]`` (integers) through the layers, each step's input in the same step. Returns each
    layer's output ``[T, B, n]`` (spikes, or ``v`` after the step for a read-out) and ``u`` per step; each layer's
    final ``(u, v)`` is left in ``layer.final``."""
    t_steps, batch = x.shape[:2]
    state = [(np.zeros((batch, L.dense.w.shape[0]), np.int64),) * 3 for L in layers]  # u, v, s[t-1]
    outs = [np.zeros((t_steps, batch, L.dense.w.shape[0]), np.int64) for L in layers]
    us = [np.zeros_like(o) for o in outs]
    for t in range(t_steps):
        s = x[t].astype(np.int64)
        for i, L in enumerate(layers):
            u, v, s_prev = state[i]
            a_in = L.dense.step(s, L.stats)
            if L.recurrent is not None:  # a second port into a_in: summed by recv, before the << 6
                a_in = _i32(a_in + L.recurrent.step(s_prev, L.stats), L.stats)
            u, v, s, _ = L.lif.step(u, v, a_in, L.stats)
            state[i] = (u, v, s)
            outs[i][t] = v if L.readout else s
            us[i][t] = u
    for L, (u, v, _) in zip(layers, state):
        L.final = (u, v)
    return outs, us


# ------------------------------------------------------------------ from the ChipModel to Lava parameters
def _int_array(t: torch.Tensor) -> np.ndarray:
    a = t.detach().cpu().double().numpy()
    assert np.array_equal(a, np.round(a)), "the chip's integers are not integers"
    return a.astype(np.int64)


def _conv_as_dense(words: np.ndarray, in_shape: tuple[int, int, int], conv: dict) -> tuple[np.ndarray, tuple]:
    """The Dense matrix ``[C'·H'·W', C·H·W]`` (C order) of a convolution (groups = dilation = 1)."""
    assert conv["groups"] == 1 and tuple(conv["dilation"]) == (1, 1), conv
    c_out, c_in, kh, kw = words.shape
    c, h, w = in_shape
    assert c == c_in
    (sh, sw), (ph, pw) = conv["stride"], conv["padding"]
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    dense = np.zeros((c_out, ho, wo, c, h, w), np.int64)
    for oy in range(ho):
        for ox in range(wo):
            for dy in range(kh):
                for dx in range(kw):
                    iy, ix = oy * sh - ph + dy, ox * sw - pw + dx
                    if 0 <= iy < h and 0 <= ix < w:
                        dense[:, oy, ox, :, iy, ix] = words[:, :, dy, dx]
    return dense.reshape(c_out * ho * wo, c * h * w), (c_out, ho, wo)


def _dense_of(syn: ChipSynapse, in_shape: tuple, sign_mode: str | None) -> tuple[LavaDense, tuple]:
    words = _int_array(syn.weight_int)
    if words.min() < 0 < words.max():
        assert (words % 2 == 0).all() and words.min() >= -256 and words.max() <= 254, "not a 9-bit mixed-sign word"
    else:  # one sign: Lava's EXCITATORY / INHIBITORY modes keep every bit
        assert np.abs(words).max() <= 255, "not an 8-bit magnitude"
    assert syn.post_shift == ACT_SHIFT
    assert -8 <= syn.exp <= 7
    if syn.op == "linear":
        assert in_shape == (words.shape[1],), (in_shape, words.shape)
        return LavaDense(words, syn.exp, sign_mode), (words.shape[0],)
    if syn.op == "diagonal":
        return LavaDense(np.diag(words), syn.exp, sign_mode), in_shape
    dense, out_shape = _conv_as_dense(words, in_shape, syn.conv)
    return LavaDense(dense, syn.exp, sign_mode), out_shape


def lava_layers(chip, in_shape: tuple, sign_mode: str | None = None, readout_vth: int | None = None):
    """The Lava processes (as reference objects) for the integers ``chip`` chose."""
    rows = {r["layer"]: r for r in chip.layers}
    layers, pending, shape = [], None, tuple(in_shape)
    for part in chip.net:
        if isinstance(part, ChipSynapse):
            pending, shape = _dense_of(part, shape, sign_mode)
        elif isinstance(part, ChipNeuron):
            row = rows[part.name]
            assert row["weight_exp"] == pending.weight_exp
            du, dv = row["decay_u"], part.decay_v
            assert part.decay_u == du + DS_OFFSET and row["decay_v"] == dv
            n = int(np.prod(shape))
            if part.spiking:
                assert part.threshold == (part.threshold >> VTH_SHIFT) << VTH_SHIFT == row["threshold_int"]
                vth = part.threshold >> VTH_SHIFT
            else:
                vth = readout_vth
            mant, exp = 0, 0
            if part.bias_int is not None:
                exp = row["bias_exp"]
                b = _int_array(part.bias_int)
                assert (b % 2 ** exp == 0).all()
                mant = np.repeat(b >> exp, n // b.size)  # a conv's bias is per channel
            rec = None
            if part.recurrent is not None:
                assert part.recurrent.exp == row["recurrent_exp"]
                rec, _ = _dense_of(part.recurrent, shape, sign_mode)
            layers.append(LavaLayer(part.name, pending, LavaLIF(du, dv, vth, mant, exp), rec, not part.spiking))
            pending = None
        elif isinstance(part, nsn.Flatten):
            shape = (int(np.prod(shape)),)
        else:
            raise AssertionError(f"no reference for {type(part).__name__}")
    return layers


def run_chip(chip, x: np.ndarray) -> tuple[list[np.ndarray], list[tuple]]:
    """Every ChipNeuron's output ``[T, B, n]`` (spikes, or a read-out's membrane ``v``: ``out·scale``) and its
    final ``(u, v)``."""
    got, finals = [], []

    def hook(mod, out):
        o = out[0].detach().double()
        if not mod.spiking:
            o = o * mod.scale
            assert torch.allclose(o, torch.round(o), rtol=0, atol=1e-6)
            o = torch.round(o)
        got.append(o.reshape(o.shape[0], o.shape[1], -1).numpy().astype(np.int64))
        finals.append(tuple(_int_array(t.reshape(t.shape[0], -1)) for t in out[1][:2]))

    run_recorded(chip, x, hook)
    return got, finals


def check_exact(model, x: np.ndarray, *, active: bool = True, **kw) -> tuple:
    """Convert ``model``, run chip and reference on ``x`` ``[T, B, ...]`` and assert they agree exactly: every
    layer's output, its final current and membrane, and its saturated and wrapped update counts. ``active``: also
    assert that each spiking layer fires, yet not always (so that the comparison says something)."""
    chip = to_chip(model, "loihi")
    layers = lava_layers(chip, x.shape[2:], **kw)
    ref, _ = run_reference(layers, x.reshape(x.shape[0], x.shape[1], -1))
    got, finals = run_chip(chip, x)
    counts = chip.counts()
    assert len(got) == len(ref) == len(layers)
    for L, g, r, (u, v) in zip(layers, got, ref, finals):
        assert g.shape == r.shape, L.name
        bad = np.argwhere(g != r)
        assert bad.size == 0, f"layer {L.name}: {len(bad)} differences, first at [t, b, n] = {bad[:3].tolist()}"
        assert np.array_equal(u, L.final[0]) and np.array_equal(v, L.final[1]), f"layer {L.name}: final u, v"
        assert counts[L.name]["saturated"] == L.stats["saturated"], L.name
        assert counts[L.name]["wrapped"] == L.stats["wrapped"], L.name
        if active and not L.readout:
            assert 0 < r.mean() < 1, f"layer {L.name}: spike rate {r.mean()} says nothing"
    return chip, layers, ref


def no_int32_overflow(layers) -> None:
    assert all(L.stats["int32_overflow"] == 0 for L in layers), [L.stats for L in layers]


# ------------------------------------------------------------------ the reference itself, checked by hand
def test_reference_matches_hand_computed_lava_steps():
    """The reference's wrap, saturation, decay and shift edges, against values worked out by hand from Lava's
    code, so that the oracle itself is checked."""
    stats = dict.fromkeys(("int32_overflow", "wrapped", "saturated", "ties", "floor_not_trunc"), 0)
    lif = LavaLIF(du=4095, dv=0, vth=VTH_MAX)
    z = np.zeros(4, np.int64)
    a_in = np.array([2 ** 17, 2 ** 17 + 1, -(2 ** 17), -(2 ** 17) - 1])  # << 6: ±2^23, ±(2^23 + 64)
    u, _, _, v = lif.step(z, z, a_in, stats)  # (v before the reset: the first and third fire)
    # > 2^23 wraps by −2^24; 2^23 itself stays; ≤ −2^23 wraps by +2^24 (−2^23 becomes +2^23)
    assert u.tolist() == [2 ** 23, 64 - 2 ** 23, 2 ** 23, 2 ** 23 - 64]
    assert v.tolist() == [2 ** 23 - 1, 64 - 2 ** 23, 2 ** 23 - 1, 2 ** 23 - 64]
    assert stats["wrapped"] == 3 and stats["saturated"] == 2
    # decay rounds toward zero: 1000·(4096 − 2048) >> 12 = 500; −1001 → −500 (not −501)
    lif = LavaLIF(du=2047, dv=2048, vth=None, bias_mant=np.array([3, -3]), bias_exp=2)
    u, v, _, _ = lif.step(np.array([1000, -1001]), np.array([-7, 7]), np.array([0, 0]), stats)
    assert u.tolist() == [500, -500] and v.tolist() == [-3 + 500 + 12, 3 - 500 - 12]
    # Dense: a negative exponent shifts right arithmetically (rounds down); mixed words keep even values, an
    # all-negative matrix is INHIBITORY (clipped to −255), an all-positive one EXCITATORY (odd values kept)
    d = LavaDense(np.array([[3, -5], [-256, 255]]), -1)
    assert d.w.tolist() == [[2, -6], [-256, 254]]
    assert d.step(np.array([[1, 1]]), stats).tolist() == [[-2, -1]]
    assert LavaDense(np.array([[-256, -3]])).w.tolist() == [[-255, -3]]
    assert LavaDense(np.array([[255, 3]])).w.tolist() == [[255, 3]]


# ------------------------------------------------------------------ chip == Lava
@pytest.mark.parametrize("beta", [1.0, 0.9, 0.5])
def test_lif_mlp_with_biases(beta):
    rng = seeded(1)
    model = nsn.Sequential(nsn.Linear(12, 16), nsn.LIF(beta=beta, v_th=1.0, reset="zero"),
                           nsn.Linear(16, 6), nsn.LIF(beta=beta, v_th=0.7, reset="zero"))
    random_bias(model[0], rng, 0.15)
    random_bias(model[2], rng, 0.1)
    x = event_counts(rng, 40, 8, 12)
    chip, layers, _ = check_exact(model, x)
    no_int32_overflow(layers)
    assert all(L.lif.effective_bias.any() for L in layers)
    assert [L.lif.dv for L in layers] == [round(4096 * (1 - beta))] * 2
    assert all(L.lif.du == 4095 for L in layers)  # a LIF: the current is cleared every step


def test_lif_mlp_with_li_readout():
    rng = seeded(2)
    model = li_readout_mlp(rng)
    chip, layers, ref = check_exact(model, event_counts(rng, 30, 6, 10))
    no_int32_overflow(layers)
    assert np.abs(ref[-1]).max() > 1000  # the read-out's membrane moves
    assert np.abs(ref[-1]).max() <= VTH_MAX << VTH_SHIFT  # (where a Lava read-out with the largest vth is silent)


@pytest.mark.parametrize("alpha", [0.5, 0.8])
def test_cuba_lif(alpha):
    rng = seeded(3)
    model = cuba_mlp(alpha, rng)
    chip, layers, _ = check_exact(model, event_counts(rng, 40, 6, 10))
    no_int32_overflow(layers)
    assert [L.lif.du for L in layers] == [round(4096 * (1 - alpha)) - 1] * 2


@pytest.mark.parametrize("connectivity", ["dense", "diagonal"])
def test_rlif(connectivity):
    rng = seeded(4)
    model = rlif_mlp(connectivity, rng)
    x = event_counts(rng, 40, 6, 8)
    chip, layers, ref = check_exact(model, x)
    no_int32_overflow(layers)
    rec = layers[0].recurrent
    assert rec is not None and np.count_nonzero(rec.w) > (80 if connectivity == "dense" else 8)
    if connectivity == "diagonal":
        assert np.array_equal(rec.w, np.diag(np.diag(rec.w)))
    # the feedback matters: without it the layer spikes otherwise
    alone = lava_layers(chip, (8,))
    alone[0].recurrent = None
    assert not np.array_equal(run_reference(alone, x)[0][0], ref[0])


def test_conv_flatten_readout():
    rng = seeded(5)
    model = nsn.Sequential(nsn.Conv2d(2, 3, 3, stride=2, padding=1), nsn.LIF(beta=0.9, v_th=1.0, reset="zero"),
                           nsn.Conv2d(3, 4, 3, padding=1), nsn.CubaLIF(alpha=0.5, beta=0.8, v_th=0.5, reset="zero"),
                           nsn.Flatten(), nsn.Linear(4 * 4 * 4, 5), nsn.LI(0.8))
    with torch.no_grad():
        model[0].weight.mul_(2.0)
        model[2].weight.mul_(2.0)
    chip, layers, _ = check_exact(model, event_counts(rng, 25, 4, 2, 8, 8))
    no_int32_overflow(layers)
    assert layers[0].dense.w.shape == (3 * 4 * 4, 2 * 8 * 8)
    assert layers[1].lif.effective_bias.shape == (4 * 4 * 4,)


def test_negative_weight_exponent_rounds_down():
    rng = seeded(6)
    model = nsn.Sequential(nsn.Linear(16, 32), nsn.LIF(beta=0.95, v_th=1.0, reset="zero"),
                           nsn.Linear(32, 4), nsn.LIF(beta=0.95, v_th=1.0, reset="zero"))
    with torch.no_grad():  # weights of a few hundredths of the threshold
        model[0].weight.copy_(torch.from_numpy(rng.normal(0.01, 0.02, (32, 16))))
        model[2].weight.copy_(torch.from_numpy(rng.normal(0.05, 0.07, (4, 32))))
    random_bias(model[0], rng, 0.002)
    chip, layers, _ = check_exact(model, event_counts(rng, 50, 8, 16, high=4))
    no_int32_overflow(layers)
    assert [L.dense.weight_exp for L in layers] == [-3, -2]
    assert all(L.stats["floor_not_trunc"] > 0 for L in layers)  # the right shift's rounding down was exercised


def test_saturated_membrane():
    rng = seeded(7)
    model = nsn.Sequential(nsn.Linear(8, 6), nsn.LIF(beta=0.9, v_th=1.0, reset="zero"),
                           nsn.Linear(6, 4), nsn.LI(1.0))
    with torch.no_grad():
        model[0].weight.copy_(torch.from_numpy(rng.normal(0, 1.0, (6, 8))))
    x = event_counts(rng, 30, 4, 8, high=60)
    chip, layers, _ = check_exact(model, x, active=False)
    no_int32_overflow(layers)
    sat = chip.counts()[layers[0].name]["saturated"]
    assert sat > 0 and sat == layers[0].stats["saturated"]
    assert chip.counts()[layers[0].name]["wrapped"] == 0


def test_wrapped_current():
    rng = seeded(8)
    model = nsn.Sequential(nsn.Linear(8, 6), nsn.CubaLIF(alpha=0.995, beta=0.9, v_th=1.0, reset="zero"))
    with torch.no_grad():
        model[0].weight.copy_(torch.from_numpy(np.abs(rng.normal(0, 1.0, (6, 8))) * rng.choice([-1, 1], (6, 1))))
    x = event_counts(rng, 40, 4, 8, high=20)
    chip, layers, _ = check_exact(model, x, active=False)
    no_int32_overflow(layers)
    assert layers[0].lif.du < 40
    wrapped = chip.counts()[layers[0].name]["wrapped"]
    assert wrapped > 0 and wrapped == layers[0].stats["wrapped"]


def test_wrap_and_saturation_edges():
    """Currents of exactly ±2^23 and just beyond (Lava keeps +2^23, turns −2^23 into +2^23), through the chip."""
    model = nsn.Sequential(nsn.Linear(2, 1, bias=False), nsn.LIF(beta=1.0, v_th=1.0, reset="zero"))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[64.0, -64.0]]))  # words ±128 at exponent 7: 2^20 per event
    x = np.array([[8, 0], [9, 0], [0, 8], [0, 9], [0, 0], [7, 0], [0, 7], [4, 3], [0, 7], [0, 7], [0, 0]])[:, None]
    chip, layers, ref = check_exact(model, x, active=False)
    no_int32_overflow(layers)
    assert layers[0].dense.weight_exp == 7 and layers[0].dense.w.tolist() == [[128, -128]]
    _, us = run_reference(lava_layers(chip, (2,)), x)
    assert us[0][:, 0, 0].tolist() == [2 ** 23, -7 * 2 ** 20, 2 ** 23, 7 * 2 ** 20, 0, 7 * 2 ** 20,
                                       -7 * 2 ** 20, 2 ** 20, -7 * 2 ** 20, -7 * 2 ** 20, 0]
    assert ref[0][:, 0, 0].tolist() == [1, 0, 1, 1, 0, 1, 0, 0, 0, 0, 0]
    assert layers[0].final[1].tolist() == [[1 - 2 ** 23]]  # saturated below, at −(2^23 − 1)
    assert chip.counts()[layers[0].name]["wrapped"] == 3 and chip.counts()[layers[0].name]["saturated"] == 3


# ------------------------------------------------------------------ float model == chip where it is representable
def test_representable_float_model_spikes_exactly():
    """β = 1, zero reset, weights and biases on the chip's grid (k/128 at weight exponent 0, biases k/1024), a
    threshold a hair above 1 (so that the float model's ``h >= v_th`` is the chip's ``v > 16384``): the chip
    computes the float64 model's spikes exactly."""
    rng = seeded(9)
    v_th = math.nextafter(1.0, 2.0)
    model = nsn.Sequential(nsn.Linear(12, 10), nsn.LIF(beta=1.0, v_th=v_th, reset="zero"),
                           nsn.Linear(10, 6), nsn.LIF(beta=1.0, v_th=v_th, reset="zero")).double()
    ks = []
    with torch.no_grad():
        for lif in (model[1], model[3]):  # (the buffer was made in float32, where the nudge rounds away)
            lif.v_th_value.fill_(v_th)
        assert float(model[1].v_th) == v_th > 1.0
        for lin, grain in ((model[0], 16), (model[2], 1)):  # the first layer coarse: its sums hit 1 exactly
            k = rng.integers(-127 // grain, 127 // grain + 1, lin.weight.shape) * grain
            k.flat[0] = 127 // grain * grain  # the largest weight sets exponent 0
            ks.append(k)
            lin.weight.copy_(torch.from_numpy(k / 128))
            lin.bias.copy_(torch.from_numpy(rng.integers(-60, 61, lin.bias.shape) * grain / 1024))
    x = rng.integers(0, 2, size=(50, 8, 12))
    chip = to_chip(model, "loihi")
    for syn, k in zip([m for m in chip.net if isinstance(m, ChipSynapse)], ks):
        assert syn.exp == 0 and np.array_equal(_int_array(syn.weight_int), 2 * k)  # represented exactly
    with torch.no_grad():
        want, _ = model(torch.from_numpy(x).double())
    got, _ = chip(torch.from_numpy(x).double())
    assert 0 < float(want.mean()) < 1
    assert torch.equal(got, want)
    # and the same on the Lava reference, whose membranes hit the threshold exactly (the ties the nudge decides)
    layers = lava_layers(chip, (12,))
    ref, _ = run_reference(layers, x)
    assert np.array_equal(ref[-1], want.detach().numpy().astype(np.int64))
    assert layers[0].stats["ties"] > 0
    # with the threshold at 1.0 itself, the float model fires at those ties and the chip does not
    for lif in (model[1], model[3]):
        lif.v_th_value.fill_(1.0)
    assert to_chip(model, "loihi").layers[0]["threshold_int"] == 16384
    with torch.no_grad():
        tied, _ = model(torch.from_numpy(x).double())
    assert not torch.equal(tied, want)


# ------------------------------------------------------------------ where fixed_point and Lava differ
def _precondition(fn, *args, **kw):
    """Run a precondition of an xfail test: its failure is an error, not the expected failure."""
    try:
        return fn(*args, **kw)
    except AssertionError as e:
        raise RuntimeError(f"precondition failed: {e}") from e


def _require(cond: bool, what: str) -> None:
    if not cond:
        raise RuntimeError(f"precondition failed: {what}")


def test_one_signed_matrices_take_lavas_default_sign_modes():
    """Lava picks a matrix's sign mode from its weights: all ≤ 0 is INHIBITORY (words in [−255, 0], no bit dropped),
    all ≥ 0 EXCITATORY ([0, 255]); the chip's words are those, odd values included, and the runs are exact."""
    model = nsn.Sequential(nsn.Linear(3, 2, bias=False), nsn.LI(0.9))
    for sign in (-1.0, 1.0):
        with torch.no_grad():
            model[0].weight.copy_(sign * torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.37, 0.0]]))
        chip = to_chip(model, "loihi")
        words = _int_array(chip.net[0].weight_int)
        assert (words * sign >= 0).all() and np.abs(words).max() <= 255 and (words % 2 != 0).any(), words
        check_exact(model, event_counts(np.random.default_rng(10), 10, 2, 3), active=False)


def test_saturated_readout_vs_largest_lava_threshold():
    model = nsn.Sequential(nsn.Linear(1, 1, bias=False), nsn.LI(1.0))
    with torch.no_grad():
        model[0].weight.fill_(1.0)  # word 128 at exponent 1: 1638400 per step of 100 events
    x = np.full((8, 1, 1), 100)
    _, _, ref = _precondition(check_exact, model, x[:5], active=False, readout_vth=VTH_MAX)  # below: the same
    _require(ref[0].max() == 5 * 1638400 <= VTH_MAX << VTH_SHIFT, f"v reaches the largest threshold: {ref}")
    check_exact(model, x, active=False, readout_vth=VTH_MAX)  # step 5 saturates: Lava fires and resets


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="Lava computes a_in << 6 and u in int32, which wrap modulo 2^32 once |a_in| >= 2^25; "
                   "fixed_point computes them exactly (float64)")
def test_int32_overflow_of_the_input():
    model = nsn.Sequential(nsn.Linear(1, 1, bias=False), nsn.LIF(beta=1.0, v_th=1.0, reset="zero"))
    with torch.no_grad():
        model[0].weight.fill_(127.0)  # word 254 at exponent 7: 32512 per event
    # 1000 events: a_in << 6 = 2080768000 < 2^31, where both wrap u once (by 2^24) and clip v alike
    _, layers, _ = _precondition(check_exact, model, np.array([[1000], [0], [1]])[:, None, :], active=False)
    _require(layers[0].stats["int32_overflow"] == 0 and layers[0].stats["wrapped"] > 0, str(layers[0].stats))
    x = np.array([[1100], [0], [1]])[:, None, :]  # 1100 events: a_in << 6 = 2288844800 > 2^31
    layers = lava_layers(to_chip(model, "loihi"), (1,))
    run_reference(layers, x)
    _require(layers[0].stats["int32_overflow"] > 0, "Lava's int32 arithmetic overflows")
    check_exact(model, x, active=False)


def test_the_chosen_integers_worked_out_by_hand():
    """The quantisation itself (the tests above check the dynamics on the integers to_chip chose): one LIF layer,
    θ = 0.5, β = 0.75, weights [[0.3, −0.05], [0.2, 0.1]], bias [0.01, −0.02].

    Scale: the threshold is 2^14 voltage units, so 32768 units per unit of the model. The matrix has both signs:
    words are even, in [−256, 254], worth 2^e · 2^6 units each. At e = 0 the 0.3 weight needs 0.3 · 32768 / 64 =
    153.6 → 154 (even) ≤ 254: it fits, and e = −1 would need 307.2: it does not. Words: 0.3 → 154, −0.05 → −25.6 →
    −26, 0.2 → 102.4 → 102, 0.1 → 51.2 → 52 (even: round(x / 2) · 2). Threshold mantissa 2^14 / 64 = 256. dv =
    round(4096 · 0.25) = 1024; du = 4095 (no current). Bias: 0.01 · 32768 = 327.68 → 328 at exponent 0 (13-bit
    mantissa), −0.02 → −655.36 → −655."""
    model = nsn.Sequential(nsn.Linear(2, 2), nsn.LIF(beta=0.75, v_th=0.5))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.3, -0.05], [0.2, 0.1]]))
        model[0].bias.copy_(torch.tensor([0.01, -0.02]))
    chip = to_chip(model, "loihi")
    syn, neuron, row = chip.net[0], chip.net[1], chip.layers[0]
    assert syn.exp == 0 and syn.weight_int.tolist() == [[154.0, -26.0], [102.0, 52.0]]
    assert neuron.threshold == 256 << 6 and neuron.decay_v == 1024 and row["decay_u"] == 4095
    assert neuron.bias_int.tolist() == [328.0, -655.0] and row["bias_exp"] == 0
    assert row["scale"] == 32768.0 and row["weight_lsb"] == pytest.approx(2 * 64 / 32768)

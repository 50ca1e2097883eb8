r"""Loihi's arithmetic (a spec's ``arithmetic = "loihi"``): Intel Loihi's compartments and dense synapses, as Lava's
bit-accurate process models compute them (lava-nc/lava, ``src/lava/proc/lif/models.py`` ``PyLifModelBitAcc``,
``src/lava/proc/dense/models.py`` ``PyDenseModelBitAcc``, ``src/lava/utils/weightutils.py``; Davies et al. 2018):

* a weight is a 9-bit word: even values in [−256, 254] in a mixed-sign matrix (its lowest bit dropped: 8
  significant bits), [0, 255] or [−255, 0] in a matrix of one sign (Lava's default sign mode); each matrix's summed
  input is shifted by its own exponent in [−8, 7] (a right shift rounds down), then by 6 bits into the 24-bit
  current ``u``; convolutions follow the same rules (Lava's own fixed-point Conv model is not bit-accurate);
* ``u ← trunc(u·(4096 − d_u)/4096) + input``, wrapping at ±2^23; ``v ← trunc(v·(4096 − d_v)/4096) + u + bias``,
  saturating at ±(2^23 − 1) (``trunc`` rounds toward zero, as the hardware's sign-magnitude shift does; the
  current's decay is ``d_u + 1``: ``d_u = 4095`` clears it every step, a plain LIF);
* a neuron spikes when ``v`` exceeds its threshold (a 17-bit mantissa shifted by 6) and resets to zero; the bias
  is a 13-bit mantissa times 2^0…2^7, added to ``v`` every step.

What is chosen here, not by the chip: the scale of each layer. The threshold is ``THRESHOLD_UNITS`` = 2^14
voltage units (a 256 mantissa: headroom of 512 thresholds before saturation, decay rounding 1/16384 of a
threshold per step), each weight matrix takes the smallest exponent at which its largest weight fits (the most
significant bits), each bias the smallest exponent that fits. A non-spiking read-out takes the scale at which one
step of every input at once with its bias (Σ |w| + |b|) is 2^14, and is a compartment with the largest threshold
(Lava's LIF always fires: within 64 units of saturation it resets).

Not simulated (see :mod:`neurosim.hardware.fixed_point`): Lava's int32 overflow of a huge summed input (``a_in << 6``
past 2^31, which the hardware's narrower input would not reach either: here it is computed exactly), Loihi's
one-step delay per synapse layer.

:func:`_quantise_loihi` chooses a synapse–neuron pair's integers; :func:`loihi_step` is one time step of its
compartments, which :class:`~neurosim.hardware.fixed_point.parts.ChipNeuron` runs over time (:data:`LOIHI`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from neurosim.hardware.fixed_point.parts import (ChipDynamics, ChipFormat, ChipNeuron, ChipSynapse, _per_channel,
                                                 _zero_fraction)

#: Loihi: the threshold in voltage units (see the module docstring)
THRESHOLD_UNITS = 2 ** 14


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


def _quantise_loihi(syn: dict, name: str, facts: dict, fmt: ChipFormat, w: torch.Tensor, b, rec_w, notes: list[str],
                    trailing: bool):
    """A synapse–neuron pair as Loihi compartments (see the module docstring): its weight words and exponent, its
    threshold, decays and bias, at ``THRESHOLD_UNITS`` voltage units per threshold of a spiking layer."""
    kind, beta, alpha, v_th = facts["kind"], facts["beta"], facts["alpha"], facts["v_th"]
    spiking = kind != "LI"
    row: dict[str, Any] = {"layer": name, "synapse": syn["name"], "neuron": kind}

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
                        decay_v=decay_v, decay_u=decay_u, bias=bias_v, dynamics=LOIHI, recurrent=recurrent)
    row.update(scale=scale, weight_exp=exp, weight_lsb=lsb * 2.0 ** exp * 2 ** post / scale / syn["gain"],
               weights_clipped=clipped, weights_zero=_zero_fraction(words, w), threshold_int=threshold,
               decay_v=decay_v, decay_u=decay_u - 1, bias_exp=bias_exp, biases_clipped=bias_clipped,
               beta_chip=1 - decay_v / unity)
    row["_back"] = {**back, "neuron": name, "synapse": syn["name"], "bn": syn["bn"], "gain": syn["gain"]}
    return synapse, neuron, row


# ------------------------------------------------------------------------------------------------ the step
class LoihiRun(NamedTuple):
    """A Loihi layer's constants for one run (:func:`loihi_start`)."""

    bias: torch.Tensor | float  # the bias (mantissa · 2^exp), broadcast over one step's neurons; 0.0 without one
    top: int  # 2^23 − 1: ``v`` saturates at ±top, ``u`` wraps beyond ±(top + 1)
    unity: int  # 4096: a decay is the amount taken off per ``unity``
    decay_u: int  # the current's effective decay ``d_u + 1`` (``unity``: cleared every step)
    decay_v: int  # the voltage's decay ``d_v``
    threshold: int
    spiking: bool
    scale: float  # voltage units per unit of the model (a read-out returns ``v / scale``)


def loihi_start(layer: ChipNeuron, x_seq: torch.Tensor) -> tuple[tuple, LoihiRun]:
    """The zero state ``(u, v, s)`` of a run of ``x_seq`` ``[T, B, ...]`` and ``layer``'s constants."""
    shape = x_seq.shape[1:]
    zeros = x_seq.new_zeros(shape)
    bias = 0.0 if layer.bias_int is None else _per_channel(layer.bias_int, shape)
    return (zeros, zeros.clone(), zeros.clone()), LoihiRun(
        bias=bias, top=layer.fmt.state_max, unity=2 ** layer.fmt.decay_bits, decay_u=layer.decay_u,
        decay_v=layer.decay_v, threshold=layer.threshold, spiking=layer.spiking, scale=layer.scale)


def _decay(x: torch.Tensor, d: int, unity: int) -> torch.Tensor:
    return torch.trunc(x * (unity - d) / unity)  # exact: |x·(4096 − d)| < 2^36


def loihi_step(x: torch.Tensor, state: tuple, p: LoihiRun, events=None):
    """One time step of Loihi compartments (see the module docstring): ``x`` ``[B, ...]`` the synaptic input in
    voltage units, ``state`` ``(u, v, s)``; ``events`` is not used (Speck's). ``u ← trunc(u·(4096 − d_u)/4096) + x``,
    wrapping at ±2^23; ``v ← trunc(v·(4096 − d_v)/4096) + u + bias``, saturating at ±(2^23 − 1); a spike where ``v``
    exceeds the threshold, and ``v ← 0``. A read-out returns ``v / scale``, reset where it exceeds its (largest)
    threshold.

    Returns:
        ``(out, (u, v, s), (at_top, at_floor, wrapped))``: the spikes (or the read-out), the new state, and the
        step's counts of membranes held at ±(2^23 − 1) and of currents that wrapped.
    """
    u, v, s = state
    top = p.top
    u = x if p.decay_u == p.unity else _decay(u, p.decay_u, p.unity) + x
    above, below = u > top + 1, u <= -(top + 1)  # Lava wraps a current beyond ±2^23
    wrapped = above.sum() + below.sum()
    u = torch.where(above, u - 2 * (top + 1), torch.where(below, u + 2 * (top + 1), u))
    v = _decay(v, p.decay_v, p.unity) + u + p.bias
    low = -top
    at_top, at_floor = (v > top).sum(), (v < low).sum()
    v = v.clamp(low, top)
    if not p.spiking:  # a compartment with the largest threshold: it resets above it (within 64 of saturating)
        v = torch.where(v > p.threshold, torch.zeros_like(v), v)
        return v / p.scale, (u, v, s), (at_top, at_floor, wrapped)
    s = (v > p.threshold).to(v.dtype)
    v = torch.where(s > 0, torch.zeros_like(v), v)
    return s, (u, v, s), (at_top, at_floor, wrapped)


#: Loihi's compartments as :class:`~neurosim.hardware.fixed_point.parts.ChipNeuron` runs them
LOIHI = ChipDynamics("(u, v, s)", loihi_start, loihi_step)

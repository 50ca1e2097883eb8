r"""Speck's arithmetic (a spec's ``arithmetic = "dynapcnn"``): SynSense Speck / DYNAP-CNN cores, as sinabs maps a
network onto them (synsense/sinabs, ``sinabs/backend/dynapcnn/discretize.py``, ``chips/dynapcnn.py``,
``docs/speck/dangers.md``):

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

What is chosen here, not by the chip: the scale of each layer, by sinabs' rule above.

Not simulated (see :mod:`neurosim.hardware.fixed_point`): the asynchronous order of Speck's events within a time
step, input spikes above one per axon and step (counts enter as graded inputs).

:func:`_quantise_dynapcnn` chooses a synapse–neuron pair's integers; :func:`dynapcnn_step` is one time step of its
neurons, which :class:`~neurosim.hardware.fixed_point.parts.ChipNeuron` runs over time (:data:`DYNAPCNN`).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch

from neurosim.hardware.fixed_point.parts import (ChipDynamics, ChipFormat, ChipNeuron, ChipSynapse, _per_channel,
                                                 _zero_fraction)


# ------------------------------------------------------------------------------------------------ quantisation
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


def _quantise_dynapcnn(syn: dict, name: str, facts: dict, fmt: ChipFormat, w: torch.Tensor, b, notes: list[str],
                       leaky: list[str]):
    """A synapse–neuron pair as a DYNAP-CNN layer (see the module docstring), refusing what the chip does not have
    (a synaptic current, recurrent connections, ``reset='none'``); a leaky layer's name goes to ``leaky``."""
    kind, beta, v_th = facts["kind"], facts["beta"], facts["v_th"]
    spiking = kind != "LI"
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
                        spiking=spiking, decay_v=None, decay_u=None, bias=bias_int, dynamics=DYNAPCNN)
    synapse.count_events = True
    neuron._events_of.append(synapse)
    row.update(scale=scale, weight_exp=0, weight_lsb=1 / scale / syn["gain"], weights_clipped=0,
               weights_zero=_zero_fraction(words, w), threshold_int=threshold, beta_chip=1.0)
    row["_back"] = {"w": words / scale, "b": None if bias_int is None else bias_int / scale, "neuron": name,
                    "synapse": syn["name"], "bn": syn["bn"], "gain": syn["gain"]}
    return synapse, neuron, row


# ------------------------------------------------------------------------------------------------ the step
class DynapcnnRun(NamedTuple):
    """A DYNAP-CNN layer's constants for one run (:func:`dynapcnn_start`)."""

    bias: torch.Tensor | float  # the integer bias, broadcast over one step's neurons; 0.0 without one
    top: int  # 2^15 − 1: the state is kept in [−2^15, 2^15 − 1]
    threshold: int
    reset: str  # "subtract" or "zero"
    spiking: bool
    scale: float  # state units per unit of the model (a read-out returns ``v / scale``)


def dynapcnn_start(layer: ChipNeuron, x_seq: torch.Tensor) -> tuple[tuple, DynapcnnRun]:
    """The zero state ``(u, v, s)`` of a run of ``x_seq`` ``[T, B, ...]`` (``u`` is not used: there is no
    synaptic current) and ``layer``'s constants."""
    shape = x_seq.shape[1:]
    zeros = x_seq.new_zeros(shape)
    bias = 0.0 if layer.bias_int is None else _per_channel(layer.bias_int, shape)
    return (zeros, zeros.clone(), zeros.clone()), DynapcnnRun(
        bias=bias, top=layer.fmt.state_max, threshold=layer.threshold, reset=layer.reset, spiking=layer.spiking,
        scale=layer.scale)


def dynapcnn_step(x: torch.Tensor, state: tuple, p: DynapcnnRun, events: torch.Tensor | None = None):
    """One time step of DYNAP-CNN neurons (see the module docstring): ``x`` ``[B, ...]`` the synaptic input,
    ``state`` ``(u, v, s)``, ``events`` the input events that reached each neuron in the step (None: no cap).
    ``v ← v + x + bias``, kept in [−2^15, 2^15 − 1]; ``⌊v/θ⌋`` spikes, at most one per input event, and ``v``
    reset to zero or less as many thresholds. A read-out returns ``v / scale``.

    Returns:
        ``(out, (u, v, s), (at_top, at_floor, 0))``: the spike counts (or the read-out), the new state, and the
        step's counts of states held at the top or the floor of the register (nothing wraps).
    """
    u, v, s = state
    top = p.top
    v = v + x + p.bias
    low = -(top + 1)  # the floor: the bottom of the 16-bit state (see the module docstring)
    at_top, at_floor = (v > top).sum(), (v < low).sum()
    v = v.clamp(low, top)
    if not p.spiking:
        return v / p.scale, (u, v, s), (at_top, at_floor, 0)
    # as many thresholds as v holds, at most one per input event this step
    s = torch.where(v >= p.threshold, torch.floor(v / p.threshold), torch.zeros_like(v))
    if events is not None:
        s = torch.minimum(s, events)
    v = torch.where(s > 0, torch.zeros_like(v), v) if p.reset == "zero" else v - s * p.threshold
    return s, (u, v, s), (at_top, at_floor, 0)


#: DYNAP-CNN's neurons as :class:`~neurosim.hardware.fixed_point.parts.ChipNeuron` runs them
DYNAPCNN = ChipDynamics("(u, v, s)", dynapcnn_start, dynapcnn_step)

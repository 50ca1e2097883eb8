"""What every chip's integer model is made of: its number formats (:class:`ChipFormat`, a target spec's
``[precision]`` constants), its synapses (:class:`ChipSynapse`), its neurons (:class:`ChipNeuron`, a time loop around
its chip's step: :class:`ChipDynamics`) and the model they make (:class:`ChipModel`).

Each chip's arithmetic, its quantisation and its neurons' step, is in its own file (:mod:`.loihi`, :mod:`.dynapcnn`,
:mod:`.spinnaker`, which build their layers from these parts); :func:`~neurosim.hardware.fixed_point.to_chip` puts a
model's layers together (:mod:`.convert`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


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
        probe = F.conv2d(x_seq.new_zeros((1, *x_seq.shape[2:])), self.weight_int, None, **self.conv)  # (T or B 0 too)
        return (pair * probe.shape[1], *probe.shape[2:])

    def extra_repr(self) -> str:
        return f"{self.op}, {tuple(self.weight_int.shape)}, exp={self.exp}"



class ChipDynamics(NamedTuple):
    """How one chip's neurons compute, as :class:`ChipNeuron`'s time loop runs them. Each chip's file defines one
    (:data:`~neurosim.hardware.fixed_point.loihi.LOIHI`, :data:`~neurosim.hardware.fixed_point.dynapcnn.DYNAPCNN`,
    :data:`~neurosim.hardware.fixed_point.spinnaker.SPINNAKER`) and gives it to the layers it quantises."""

    #: the state's three tensors, named for errors (``"(u, v, s)"``): the second holds the membranes ``v`` of one
    #: step's neurons, the third the spikes ``s`` of the step before (what a recurrent connection feeds back)
    state: str
    #: ``(layer, x_seq) -> (zero_state, constants)``: the state a run starts from when none is carried, and the
    #: layer's constants for this run (a NamedTuple whose ``bias`` is broadcast over one step's neurons)
    start: Callable[..., tuple[tuple, Any]]
    #: ``(x, state, constants, events) -> (out, state, (at_top, at_floor, wrapped))``: one time step of the layer,
    #: ``x`` the step's synaptic input, ``events`` (Speck) the input events that reached each neuron in the step, else
    #: None; returns the step's output, the new state and its counts of register updates held at the top or the floor
    #: and of results that wrapped
    step: Callable[..., tuple]


def _per_channel(t: torch.Tensor, shape) -> torch.Tensor:
    """``t`` ``[C]`` broadcast over one step's neurons ``shape`` (``[B, C, ...]``)."""
    return t.reshape(-1, *([1] * (len(shape) - 2)))


class ChipNeuron(nn.Module):
    """A layer of chip neurons in integer arithmetic: ``(x_seq, state) -> (out, state)``, a time loop around its
    chip's step (``dynamics``: :class:`ChipDynamics`; each chip's arithmetic is in its own file, :mod:`.loihi`,
    :mod:`.dynapcnn`, :mod:`.spinnaker`).

    ``x_seq`` is the synapse's output: in voltage units on Loihi and Speck; on SpiNNaker the excitatory and the
    inhibitory ring-buffer sums side by side along the channels. Spiking layers return spikes (Speck: spike
    counts); a read-out (``spiking=False``) returns its membrane divided by ``scale`` (the model's units again).
    ``decay_v``/``decay_u``: Loihi's ``d_v`` and effective ``d_u + 1`` (amounts taken off per 4096); SpiNNaker's
    ``exp_TC`` and synaptic ``decay`` (the fractions kept, s16.15 and u0.32)."""

    stateful = True

    def __init__(self, name: str, fmt: ChipFormat, *, scale: float, threshold: int, reset: str, spiking: bool,
                 decay_v: int | None, decay_u: int | None, bias: torch.Tensor | None, dynamics: ChipDynamics,
                 recurrent: ChipSynapse | None = None, spinnaker: dict | None = None) -> None:
        super().__init__()
        self.name, self.fmt, self.scale, self.threshold, self.reset = name, fmt, scale, threshold, reset
        self.spiking, self.decay_v, self.decay_u, self.recurrent = spiking, decay_v, decay_u, recurrent
        self.dynamics = dynamics  # the chip's step, which forward runs once per time step
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
        #: the synapse layer's one-step delay (Lava's Dense, sPyNNaker's minimum delay): the input of step t
        #: reaches the neurons at t + 1 (to_chip's ``delays``); the state then carries the step in transit too
        self.delay = False

    def _carried(self, state, shape, parts: str) -> tuple:
        """A carried state, checked: the tensors this layer returned, for neurons of one step's ``shape``."""
        n = 3 + self.delay
        if self.delay:
            parts = parts[:-1] + ", input in transit)"
        if not (isinstance(state, tuple) and len(state) == n):
            raise TypeError(f"{self.name}: a chip layer's state is the {parts} it returned, or None")
        if tuple(state[1].shape) != tuple(shape):
            raise ValueError(f"{self.name}: the carried state holds {tuple(state[1].shape)} neurons but this input's "
                             f"step is {tuple(shape)} (another batch size?); continue a run with its own state")
        return state

    def forward(self, x_seq: torch.Tensor, state=None):
        """``x_seq`` ``[T, B, ...]`` through the chip's step, one time step at a time from ``state`` (None: zeros),
        with the recurrent connection's input (the layer's spikes of the step before) added; counts the spikes and
        the register updates held at the top or the floor or wrapped."""
        x_seq = x_seq.to(torch.float64)
        zero_state, p = self.dynamics.start(self, x_seq)
        state = zero_state if state is None else tuple(self._carried(state, zero_state[1].shape, self.dynamics.state))
        if x_seq.shape[0] == 0:
            if self.delay and len(state) == 3:
                state = (*state, x_seq.new_zeros(x_seq.shape[1:]))
            return x_seq.new_zeros((0, *state[1].shape)), state
        if self.delay:  # each step's input arrives a step later: the one in transit first, the last one kept
            in_transit = state[3] if len(state) == 4 else x_seq.new_zeros(x_seq.shape[1:])
            x_seq, state, arriving_last = torch.cat([in_transit[None], x_seq[:-1]]), state[:3], x_seq[-1]
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
            if self.recurrent is not None:  # the layer's own spikes of the step before
                x = x + self.recurrent.step_sum(state[2])
            if self.record_updates and x.shape == state[1].shape:  # as neurosim.activity counts them (SpiNNaker's
                step_updates.append((((x + p.bias) != 0) | (state[1] != 0)).sum())  # ring-buffer pairs: not)
            events_t = None if events is None else events[t]
            y, state, (at_top, at_floor, wrapped) = self.dynamics.step(x, state, p, events_t)
            n_top, n_floor, n_wrapped = n_top + at_top, n_floor + at_floor, n_wrapped + wrapped
            out.append(y)
            if self.spiking:
                n_spikes = n_spikes + y.sum()
        if self.record_updates and step_updates:
            self.updates.append(torch.stack(step_updates))
        c = self.counts
        top_, floor_ = int(n_top), int(n_floor)
        c["steps"] += x_seq.shape[0]
        c["neuron_steps"] += state[1].numel() * x_seq.shape[0]
        c["spikes"] += int(n_spikes)
        c["at_top"] += top_
        c["at_floor"] += floor_
        c["saturated"] += top_ + floor_
        c["wrapped"] += int(n_wrapped)
        return torch.stack(out), ((*state, arriving_last) if self.delay else state)

    def extra_repr(self) -> str:
        return f"{self.name}, threshold={self.threshold}, decay_v={self.decay_v}, decay_u={self.decay_u}"


class ChipModel(nn.Module):
    """The integer model :func:`~neurosim.hardware.fixed_point.to_chip` builds: ``(x_seq, state=None) ->
    (out_seq, state)`` like a neurosim Sequential. ``layers`` lists each synapse–neuron pair's formats, ``notes`` what
    the chip does differently from the float model, ``advice`` the ``neurosim train --set`` options that give a
    model this chip's neurons, ``counts()`` the spikes and saturations of the runs so far."""

    def __init__(self, fmt: ChipFormat, parts: list[nn.Module], layers: list[dict], notes: list[str]) -> None:
        super().__init__()
        from neurosim import nn as nsn

        self._back = [row.pop("_back") for row in layers]  # the chip's weights in the model's units
        self.fmt, self.layers, self.notes = fmt, layers, notes
        self.advice: list[str] = []  # ``--set`` options that train a model with this chip's neurons (to_chip's)
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


def _zero_fraction(words: torch.Tensor, w: torch.Tensor) -> float:
    """Share of the model's nonzero weights that the chip's words round to zero."""
    nonzero = w != 0
    n = int(nonzero.sum())
    return 0.0 if n == 0 else int(((words == 0) & nonzero).sum()) / n

r"""Activity regularisation: train a network to cost less on an event-driven chip.

On Loihi, SpiNNaker, TrueNorth or Speck, energy follows the synaptic events: each spike costs one operation per
synapse it drives (``neurosim estimate``). :class:`ActivityPenalty` adds to the training loss

* ``on = "synops"``: ``λ · Σ_l Σ_n s_l,n · f_l,n / Σ_l Σ_n f_l,n``, the synaptic operations the spikes cause as a
  fraction of the most the network could cause (every neuron firing at every step), ``f`` the exact number of
  synapses each neuron drives (its fan-out in the exported NIR graph, borders of convolutions included:
  :meth:`hardware_models.GraphFacts.projection_fan_out`) — the differentiable synaptic-operation count sinabs
  trains Speck models with (``sinabs.SynOpCounter``), normalised so that ``λ`` is comparable across networks;
* ``on = "spikes"``: ``λ · Σ_l Σ_n s_l,n / N``, the mean firing rate of the ``N`` neurons that drive synapses (the
  L1 rate penalty of snnTorch's ``l1_rate_sparsity`` and of Zenke and Vogels' surrogate-gradient work),

both per time step and sample, averaged over the ``T`` steps (so a per-step method adds ``1/T`` of it at each step,
as it does the loss). The output layer, which drives no synapses, is not penalised. A neuron before a max pool is
counted with its fan-out through the pool as a sum pool (the export's), an upper bound: a max pool passes one spike
per window. Spikes are the surrogate-gradient spikes, so the penalty's gradient reaches every layer's weights.

The Trainer applies it with ``train.activity_penalty = λ`` (and ``train.activity_penalty_on``); the training methods
add :func:`pending_penalty` to the loss of each forward call they back-propagate (BPTT once, SLTT per step or chunk,
SLTT-K at its drawn steps), and steps run without a graph add nothing.

Example:
    >>> import torch
    >>> from neurosim.nn import LIF, Linear, Sequential
    >>> _ = torch.manual_seed(6)
    >>> net = Sequential(Linear(4, 3), LIF(beta=0.5, v_th=0.5), Linear(3, 2), LIF())
    >>> x = torch.rand(5, 2, 4) * 2                # [T, B, inputs]
    >>> pen = ActivityPenalty(net, 0.1, on="spikes", input_shape=(4,))
    >>> with pen.active():
    ...     out, _ = net(x)
    ...     term = pending_penalty(5)               # 0.1 x the hidden layer's mean firing rate
    >>> hidden, _ = net[1](net[0](x))
    >>> round(float(hidden.mean()), 3), bool(torch.isclose(term, 0.1 * hidden.mean()))
    (0.467, True)
"""

from __future__ import annotations

import contextvars
import math
from contextlib import contextmanager
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["PENALTY_KINDS", "ActivityPenalty", "pending_penalty"]

#: what the penalty counts
PENALTY_KINDS = ("synops", "spikes")

_ACTIVE: contextvars.ContextVar["ActivityPenalty | None"] = contextvars.ContextVar("neurosim_activity_penalty",
                                                                                   default=None)


def pending_penalty(time_steps: int):
    """The active penalty's term for the spikes recorded since the last call (``0.0`` when none is active or no spike
    was recorded with a graph), for a sequence of ``time_steps`` steps: what a training method adds to the loss it
    back-propagates."""
    pen = _ACTIVE.get()
    return 0.0 if pen is None else pen.take(time_steps)


class ActivityPenalty:
    """``λ`` times the synaptic operations (or spikes) of ``model``'s spiking layers, per step and sample, as a
    fraction of the most possible (see the module docstring).

    Args:
        model: a neurosim model that exports to NIR (its spiking layers are :class:`~neurosim.nn.LIF` modules,
            also inside RLIF and CubaLIF).
        weight: ``λ >= 0``.
        on: ``"synops"`` or ``"spikes"``.
        input_shape: the per-sample input shape (to export the model and count each neuron's synapses).

    Raises:
        ValueError: a bad weight or kind, a model that cannot be exported, or one whose spiking layers drive no
            synapses (named).
    """

    def __init__(self, model: nn.Module, weight: float, on: str = "synops",
                 input_shape: Sequence[int] | None = None) -> None:
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not (
                math.isfinite(weight) and weight >= 0):
            raise ValueError(f"the activity penalty's weight must be a number >= 0, got {weight!r}")
        if on not in PENALTY_KINDS:
            raise ValueError(f"the activity penalty counts one of {', '.join(PENALTY_KINDS)}, got {on!r}")
        if input_shape is None:
            raise ValueError("ActivityPenalty needs the model's per-sample input_shape (to count each neuron's "
                             "synapses)")
        self.weight, self.on = float(weight), on
        #: the share of ``weight`` applied now (a warm-up sets it below 1)
        self.scale = 1.0
        self.model = model
        self._weights = _fan_outs(model, tuple(input_shape), on)  # module name -> per-neuron weight (numpy)
        self.total = float(sum(w.sum() for w in self._weights.values()))
        if self.total <= 0:
            raise ValueError("the model's spiking layers drive no synapses (only its output layer spikes): an "
                             "activity penalty has nothing to count")
        self._raw = None
        self._on_device: dict = {}
        self._first = next(name for name, m in model.named_modules() if name in self._weights)  # counts the steps
        #: the activity taken so far (as a fraction of the most possible, summed over steps) and the steps it covers:
        #: ``recorded / steps`` is the mean per step and sample (:meth:`pop_activity`)
        self.recorded, self.steps = 0.0, 0

    @contextmanager
    def active(self) -> Iterator["ActivityPenalty"]:
        """While the block runs, the model's spiking layers record their spikes (where autograd records a graph)
        and :func:`pending_penalty` takes them."""
        from neurosim.nn import LIF

        handles = []
        for name, module in self.model.named_modules():
            if isinstance(module, LIF) and name in self._weights:
                handles.append(module.register_forward_hook(self._hook(name)))
        token = _ACTIVE.set(self)
        try:
            yield self
        finally:
            _ACTIVE.reset(token)
            for h in handles:
                h.remove()
            self._raw = None

    def _hook(self, name: str):
        def record(module, args, output) -> None:
            if not torch.is_grad_enabled():
                return  # a step without a graph (SLTT-K's others, evaluation): nothing to learn from
            spikes = output[0] if isinstance(output, tuple) else output
            key = (name, spikes.device, spikes.dtype)
            w = self._on_device.get(key)
            if w is None:
                w = self._on_device[key] = torch.as_tensor(self._weights[name], dtype=spikes.dtype,
                                                           device=spikes.device)
            part = (spikes * w).sum() / (spikes.shape[1] * self.total)  # [t, B, ...]: per sample
            self._raw = part if self._raw is None else self._raw + part
            if name == self._first:
                self.steps += spikes.shape[0]
        return record

    def take(self, time_steps: int):
        """``λ · (recorded spikes, weighted) / T`` since the last call, and start anew; ``0.0`` if none."""
        raw, self._raw = self._raw, None
        if raw is None:
            return 0.0
        self.recorded += float(raw.detach())
        return raw * (self.weight * self.scale / time_steps)

    def pop_activity(self) -> float | None:
        """The mean activity taken since the last call, per step and sample: the synaptic operations as a fraction of
        the most possible (``synops``) or the firing rate (``spikes``), over the steps back-propagated; None if
        none was; then start anew."""
        value = self.recorded / self.steps if self.steps else None
        self.recorded, self.steps = 0.0, 0
        return value


def _fan_outs(model: nn.Module, input_shape: tuple[int, ...], on: str) -> dict[str, np.ndarray]:
    """Per LIF module (name as in ``model.named_modules()``), the synapses each neuron drives (``synops``) or 1 for a
    neuron that drives any (``spikes``), in the neurons' shape; from the model's NIR graph."""
    from hardware_models import analyze

    from neurosim.activity import _cuba_parts
    from neurosim.estimation import _module_node_names
    from neurosim.export import to_nir
    from neurosim.nn import LIF

    try:
        graph = to_nir(model, input_shape, maxpool="sumpool")
        nodes = _module_node_names(model, graph)
        facts = analyze(graph)
    except (ValueError, TypeError, NotImplementedError) as e:
        raise ValueError(f"the activity penalty counts each neuron's synapses on the model's NIR graph, which could "
                         f"not be made: {e}") from None
    cuba, _ = _cuba_parts(model)
    out: dict[str, np.ndarray] = {}
    for name, module in model.named_modules():
        if not isinstance(module, LIF):
            continue
        node = nodes.get(cuba.get(name, name))
        if node is None or node not in facts.populations:
            raise ValueError(f"spiking layer {name!r} has no neuron node in the model's NIR graph")
        shape = facts.populations[node].shape
        fan = np.zeros(shape)
        for proj in facts.projections_from(node):
            fan = fan + facts.projection_fan_out(proj)
        out[name] = fan if on == "synops" else (fan > 0).astype(np.float64)
    return out

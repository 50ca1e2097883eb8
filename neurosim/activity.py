"""Record what a model's layers emit while it runs, without changing its outputs.

:func:`record_outputs` attaches temporary forward hooks to chosen layers (by default every spiking layer), runs the
model once under ``no_grad`` and returns each layer's whole output sequence (for a figure of one sample: it keeps
every recorded ``[T, B, ...]`` output until the run ends). :func:`activity_profile` (the hardware adapters'
``ActivityProfile``) keeps only what the profile needs: its hooks reduce each output as it is made to float64 totals
per time step and per neuron, and it runs the model on a few samples at a time (``batch_size``) and, on CPU, a few
steps at a time (:func:`neurosim.nn.run_chunked`), so its memory does not grow with ``T`` or ``samples``. The hooks
are removed afterwards, even on error.

For every recorded :class:`~neurosim.nn.LIF` layer, and every :class:`~neurosim.nn.LI` readout, the profile also
counts, per step, the neurons that must be updated (``updates_per_step``): those with a nonzero input current
``x[t]`` or a nonzero membrane ``v[t−1]`` entering the step (or that fire). A neuron at rest with no input is left
alone by event-driven chips; SANA-FE charges its soma update energy only to the others (``src/models.cpp`` lines
520–525, ``LoihiLifModel::update``, commit 8951ab0). The hook recomputes a LIF layer's membrane from the call's
input and starting state with the layer's own backend (:func:`neurosim.functional.lif_scan`: the membrane the layer
computed, bit for bit) and sums the count at once; an LI layer's output is its membrane.

A recurrent layer (:class:`~neurosim.nn.RLIF`) is recorded through its LIF, module ``layer.lif``, which it calls once
per step with the step's whole current ``x[t] + W_rec·s[t−1]``: its spikes and updates are joined along time (the
feedback current counts as input), under the name its neuron has in the exported NIR graph once inlined.

A current-based layer (:class:`~neurosim.nn.CubaLIF`) ``k`` is recorded through its LIF, module ``k.lif``, under the
layer's own name ``k`` (its NIR ``CubaLIF`` node's): that LIF's input is the synaptic current ``i[t]``, so a neuron
whose current is nonzero (still decaying from earlier input, or fed this step) counts as updated, as a CUBA
compartment is on Loihi (Davies et al. 2018: its current ``u`` and voltage ``v`` are updated in the same
compartment step). The current's LI child (``k.syn``) is part of that neuron, not a population of its own.
SANA-FE's Loihi model charges an update for a message arriving, a nonzero potential or bias, not for a decaying
``input_current`` alone (``src/models.cpp``, ``LoihiLifModel::update``): after a reset to 0 with no new input, a CUBA
neuron whose current still decays counts here and not there. (On the quickstart conv net with ``neuron.tau_syn_ms=5``
the two counts are equal: its biases give every neuron input in every step.)
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Mapping

import torch
from torch import nn

from neurosim.functional import LIFState, lif_scan
from neurosim.functional.lif import _v_before
from neurosim.nn import LI, LIF, CubaLIF
from neurosim.nn.layers import run_chunked

__all__ = ["activity_profile", "record_outputs"]


def _cuba_parts(model: nn.Module) -> tuple[dict[str, str], set[str]]:
    """``({'k.lif': 'k'}, {'k.syn'})`` for every :class:`~neurosim.nn.CubaLIF` ``k`` of ``model``: its LIF child is
    recorded under the layer's name (its NIR node's), and its current (an LI child) is no population of its own."""
    lifs, syns = {}, set()
    for name, module in model.named_modules():
        if name and isinstance(module, CubaLIF):
            lifs[f"{name}.lif"] = name
            syns.add(f"{name}.syn")
    return lifs, syns


@contextmanager
def _hooks(model: nn.Module, kinds: tuple[type, ...], on_output: Callable[[str, torch.Tensor], None],
           on_neuron: Callable[[str, nn.Module, torch.Tensor, object, torch.Tensor], None] | None = None
           ) -> Iterator[None]:
    """While the block runs, every submodule of ``kinds`` hands each call's (detached) output to
    ``on_output(name, output)``; with ``on_neuron``, every LIF among them and every LI layer (recorded or not) also
    hands it its input and starting state: ``on_neuron(name, module, x_seq, state, output)``.

    A :class:`~neurosim.nn.CubaLIF` ``k`` is one layer named ``k``: its LIF child (recorded when ``kinds`` has LIF or
    CubaLIF) reports under ``k``, with the synaptic current ``i[t]`` as its input, and its LI child ``k.syn`` is
    neither a neuron nor, unless ``kinds`` has LI, recorded."""
    cuba_lifs, cuba_syns = _cuba_parts(model)
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, CubaLIF):
            continue  # (recorded through its LIF child)
        recorded = isinstance(module, kinds) or (name in cuba_lifs and CubaLIF in kinds)
        neuron = on_neuron is not None and name not in cuba_syns and (
            isinstance(module, LI) or (recorded and isinstance(module, LIF)))
        if name and (recorded or neuron):
            def hook(mod, args, kwargs, output, name=cuba_lifs.get(name, name), recorded=recorded, neuron=neuron):
                out = (output[0] if isinstance(output, tuple) else output).detach()
                if recorded:
                    on_output(name, out)
                if neuron:
                    x_seq = args[0] if args else kwargs["x_seq"]
                    state = args[1] if len(args) > 1 else kwargs.get("state")
                    on_neuron(name, mod, x_seq.detach(), state, out)
            handles.append(module.register_forward_hook(hook, with_kwargs=True))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def record_outputs(model: nn.Module, x_seq: torch.Tensor, kinds: tuple[type, ...] = (LIF,)
                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Run ``model(x_seq)`` and return ``(out_seq, {layer name: output sequence [T, B, ...]})``.

    A module called several times in the run has its outputs joined along time, in the order of the calls: the LIF
    inside an :class:`~neurosim.nn.RLIF` (``layer.lif``), called once per step, gives all ``T`` steps, not the last.

    Args:
        model: a neurosim model (``forward(x_seq, state=None) -> (out_seq, state)``).
        x_seq: input ``[T, B, ...]``.
        kinds: module types whose outputs are recorded (default: LIF layers).

    Raises:
        ValueError: a recorded module's calls give outputs that cannot be joined along time (other batch or
            neuron shapes: it is not called once per step, or not time-first), naming the module.
    """
    parts: dict[str, list[torch.Tensor]] = {}
    was_training = model.training
    model.eval()
    try:
        with _hooks(model, kinds, lambda name, out: parts.setdefault(name, []).append(out)):
            out_seq, _ = model(x_seq)
    finally:
        model.train(was_training)
    store: dict[str, torch.Tensor] = {}
    for name, outs in parts.items():
        shapes = {tuple(o.shape[1:]) for o in outs}
        if len(shapes) > 1:
            raise ValueError(f"record_outputs: module {name!r} was called {len(outs)} times with outputs of "
                             f"different shapes after the time dim {sorted(shapes)}; they cannot be joined along "
                             "time — record other modules (kinds=...)")
        store[name] = outs[0] if len(outs) == 1 else torch.cat(outs)
    return out_seq, store


_BLOCK = 1 << 22  # elements of an output converted to float64 at a time (32 MiB), however large the output


def _sums(out: torch.Tensor, absolute: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Float64 totals of ``out [t, B, ...]``: per step ``[t]`` (over batch and neurons) and per neuron ``[...]``
    (over steps and batch); ``absolute`` sums ``|out|``. Converted a block of steps at a time."""
    t = out.shape[0]
    per = max(1, _BLOCK // max(1, out[0].numel()))
    steps, count = [], None
    for i in range(0, t, per):
        s = out[i:i + per].double()  # (the output itself where it is float64 already: not changed in place)
        if absolute:
            s = s.abs()
        steps.append(s.reshape(s.shape[0], -1).sum(dim=1))
        c = s.sum(dim=(0, 1))
        count = c if count is None else count + c
    return torch.cat(steps), count


def _reducer(steps: dict[str, list[torch.Tensor]], counts: dict[str, torch.Tensor]
             ) -> Callable[[str, torch.Tensor], None]:
    """An ``on_output`` for :func:`_hooks` that adds each call's output to ``steps[name]`` (per-step totals, one entry
    per call: a model run a chunk of steps at a time calls a layer once per chunk) and ``counts[name]`` (per-neuron
    totals)."""
    def add(name: str, out: torch.Tensor) -> None:
        step, count = _sums(out)
        steps.setdefault(name, []).append(step)
        counts[name] = count if name not in counts else counts[name] + count
    return add


def _updates(layer: nn.Module, x_seq: torch.Tensor, state, out: torch.Tensor) -> torch.Tensor:
    """Float64 ``[t]``: per step of one LIF or LI call, the neurons (over batch and neurons) whose state changes: a
    nonzero input ``x[t]``, a nonzero membrane entering the step (``v[t−1]``, the call's starting state at its first
    step) or a spike. A LIF's membrane is recomputed from ``x_seq`` and ``state`` with the layer's own backend (the
    values it computed), one call's ``[t, B, ...]`` at a time (a chunked run calls the layer once per chunk); an LI's
    output is its membrane."""
    if x_seq.shape[0] == 0:
        return torch.zeros(0, dtype=torch.float64, device=x_seq.device)
    v0 = state.v if isinstance(state, LIFState) else state  # (a LIF takes a bare tensor as its state too)
    if isinstance(layer, LI):
        v_in = torch.cat([torch.zeros_like(out[:1]) if v0 is None else v0.unsqueeze(0).to(out.dtype), out[:-1]])
        moved = (x_seq != 0) | (v_in != 0)
    else:
        params = layer.params()
        _, rec = lif_scan(x_seq, params, state, record_membrane=True, backend=layer.backend)
        v_seq = rec.v_seq  # immediate timing: pre-reset h[t]; delayed: the raw membrane v[t], reset applied next step
        if v0 is None:
            v0 = torch.zeros_like(v_seq[0])
        if params.reset_timing == "immediate":
            v_in = _v_before(v_seq, v0, params.v_th, params.reset)
        else:
            v_in = torch.cat([v0.unsqueeze(0), v_seq[:-1]])
        moved = (x_seq != 0) | (v_in != 0) | (out != 0)
    return moved.reshape(moved.shape[0], -1).sum(dim=1).double()


def _update_reducer(updates: dict[str, list[torch.Tensor]]
                    ) -> Callable[[str, nn.Module, torch.Tensor, object, torch.Tensor], None]:
    """An ``on_neuron`` for :func:`_hooks` that adds each LIF or LI call's per-step update counts to
    ``updates[name]``."""
    def add(name: str, layer: nn.Module, x_seq: torch.Tensor, state, out: torch.Tensor) -> None:
        updates.setdefault(name, []).append(_updates(layer, x_seq, state, out))
    return add


@torch.no_grad()
def activity_profile(model: nn.Module, data, *, dt_s: float, samples: int | None = None,
                     kinds: tuple[type, ...] = (LIF,), names: Mapping[str, str] | None = None,
                     input_name: str | None = "input", device: str | torch.device | None = None,
                     batch_size: int = 16):
    """Measure a model's spiking activity as a :class:`hardware_models.ActivityProfile`.

    Runs ``model`` (eval mode, no gradients, outputs unchanged) on ``samples`` inputs and averages, per recorded
    layer, the spikes per time step and the spikes per neuron over the run, and per recorded LIF layer (and every LI
    readout) the neurons updated per time step (nonzero input or membrane entering the step: see the module
    docstring). The input frames count as the input events (an event-count frame contributes its counts).

    Memory: each recorded output is reduced, as the layer emits it, to float64 totals per step and per neuron; the
    model runs ``batch_size`` samples at a time (and on CPU a chunk of steps at a time, as evaluation does), and
    only the samples used are converted to the model's dtype. The totals do not depend on ``batch_size`` or the
    chunks: spikes and event counts are whole numbers, which float64 adds exactly in any order (graded outputs
    or inputs, which are not, agree to float64 rounding).

    Args:
        model: a neurosim model (``forward(x_seq) -> (out_seq, state)``).
        data: one input ``[T, B, ...]``, or an iterable of ``(x_seq, y)`` batches (e.g. a test loader).
        dt_s: seconds per time step.
        samples: use at most this many samples (default: all that ``data`` yields).
        kinds: module types whose outputs are recorded (default: LIF layers).
        names: module name → node name in the profile (e.g. the NIR graph's node names, from
            :func:`neurosim.export.to_nir`); default: the module names of ``model.named_modules()``.
        input_name: the graph's Input node name (its spatial event counts are stored under it); ``None`` keeps
            only the per-step input totals.
        device: where to run (default: where the model's parameters are).
        batch_size: samples per forward call (bounds the memory; the profile is the same for any value).

    Returns:
        The profile; its node names are ``names[module]`` for every recorded module.
    """
    from hardware_models import ActivityProfile

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"activity_profile: batch_size must be a whole number of samples >= 1, got {batch_size!r}")
    p = next((q for q in model.parameters() if q.is_floating_point()), None)
    dtype = p.dtype if p is not None else torch.float32  # inputs in the model's precision (float64 models too)
    if device is None:
        device = p.device if p is not None else torch.device("cpu")
    batches = [(data, None)] if isinstance(data, torch.Tensor) else data
    inp_key = input_name or "__input__"
    sums_step: dict[str, torch.Tensor] = {}
    sums_count: dict[str, torch.Tensor] = {}
    sums_update: dict[str, torch.Tensor] = {}
    seen, T = 0, None
    was_training = model.training
    model.eval()
    try:
        for x_seq, _ in batches:
            if samples is not None and seen >= samples:
                break
            x_seq = torch.as_tensor(x_seq)
            if x_seq.ndim < 3:
                raise ValueError(f"activity_profile: inputs must be [T, B, ...], got shape {tuple(x_seq.shape)}")
            if samples is not None:
                x_seq = x_seq[:, : samples - seen]  # before any conversion: only the samples used are copied
            if T is None:
                T = x_seq.shape[0]
            elif x_seq.shape[0] != T:
                raise ValueError(f"activity_profile: batches have different time steps ({x_seq.shape[0]} vs {T})")
            for start in range(0, x_seq.shape[1], batch_size):
                x = x_seq[:, start:start + batch_size].contiguous().to(device, dtype)  # (copied in its own dtype)
                # an OFF event (−1, e.g. delta encoding with off_spike=True) is an event as much as an ON event (+1)
                found = {inp_key: _sums(x, absolute=True)}
                steps: dict[str, list[torch.Tensor]] = {}
                counts: dict[str, torch.Tensor] = {}
                updates: dict[str, list[torch.Tensor]] = {}
                with _hooks(model, kinds, _reducer(steps, counts), _update_reducer(updates)):
                    run_chunked(model, x) if getattr(model, "stateful", False) else model(x)
                for name, parts in steps.items():
                    step = torch.cat(parts)
                    if step.shape[0] != T:
                        raise ValueError(f"activity_profile: module {name!r} emitted {step.shape[0]} time steps in "
                                         f"all for an input of T = {T} (it runs more than once per step, or its "
                                         "output is not time-first [T, B, ...]); record other modules (kinds=...)")
                    found[name] = (step, counts[name])
                for name, (step, count) in found.items():
                    sums_step[name] = sums_step[name] + step if name in sums_step else step
                    sums_count[name] = sums_count[name] + count if name in sums_count else count
                for name, parts in updates.items():
                    update = torch.cat(parts)
                    if update.shape[0] != T:  # (a recorded LIF: checked above with its spikes; an LI readout here)
                        raise ValueError(f"activity_profile: module {name!r} ran {update.shape[0]} time steps in all "
                                         f"for an input of T = {T} (it runs more than once per step, or its input "
                                         "is not time-first [T, B, ...])")
                    sums_update[name] = sums_update[name] + update if name in sums_update else update
                seen += x.shape[1]
                del x
            del x_seq  # before the next batch is made: one batch in memory at a time
    finally:
        model.train(was_training)
    if not seen:
        raise ValueError("activity_profile: no samples (empty data)")
    mapping = dict(names or {})
    missing = [m for m in sums_step if m != inp_key and mapping and m not in mapping]
    if missing:
        raise ValueError(f"activity_profile: no node name given for recorded module(s) {missing}; "
                         f"names has {sorted(mapping)}")
    per_step, counts, updated = {}, {}, {}
    for name in sums_step:
        if name == inp_key and input_name is None:
            continue
        node = name if name == inp_key else mapping.get(name, name)
        per_step[node] = (sums_step[name] / seen).cpu().numpy()
        counts[node] = (sums_count[name] / seen).cpu().numpy()
        if name in sums_update:
            updated[node] = (sums_update[name] / seen).cpu().numpy()
    for name in [n for n in sums_update if n not in sums_step]:  # LI layers (not recorded: they do not spike)
        if mapping and name not in mapping:
            continue  # names given without this layer: the caller's profile has no node for it
        updated[mapping.get(name, name)] = (sums_update[name] / seen).cpu().numpy()
    return ActivityProfile(time_steps=int(T), dt_s=float(dt_s), samples=int(seen), spikes_per_step=per_step,
                           spike_counts=counts, input_events_per_step=(sums_step[inp_key] / seen).cpu().numpy(),
                           updates_per_step=updated)

"""Record what a model's layers emit while it runs, without changing its outputs.

:func:`record_outputs` attaches temporary forward hooks to chosen layers (by default every spiking layer), runs the
model once under ``no_grad`` and returns each layer's output sequence. The hooks are removed afterwards, even on
error. (The hardware adapters' ``ActivityProfile`` is built from these recordings.)
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Mapping

import torch
from torch import nn

from neurosim.nn import LIF

__all__ = ["activity_profile", "record_outputs"]


@contextmanager
def _hooks(model: nn.Module, kinds: tuple[type, ...], store: dict[str, torch.Tensor]) -> Iterator[None]:
    handles = []
    for name, module in model.named_modules():
        if name and isinstance(module, kinds):
            def hook(mod, args, output, name=name):
                out = output[0] if isinstance(output, tuple) else output
                store[name] = out.detach()
            handles.append(module.register_forward_hook(hook))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def record_outputs(model: nn.Module, x_seq: torch.Tensor, kinds: tuple[type, ...] = (LIF,)
                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Run ``model(x_seq)`` and return ``(out_seq, {layer name: output sequence [T, B, ...]})``.

    Args:
        model: a neurosim model (``forward(x_seq, state=None) -> (out_seq, state)``).
        x_seq: input ``[T, B, ...]``.
        kinds: module types whose outputs are recorded (default: LIF layers).
    """
    store: dict[str, torch.Tensor] = {}
    was_training = model.training
    model.eval()
    try:
        with _hooks(model, kinds, store):
            out_seq, _ = model(x_seq)
    finally:
        model.train(was_training)
    return out_seq, store


@torch.no_grad()
def activity_profile(model: nn.Module, data, *, dt_s: float, samples: int | None = None,
                     kinds: tuple[type, ...] = (LIF,), names: Mapping[str, str] | None = None,
                     input_name: str | None = "input", device: str | torch.device | None = None):
    """Measure a model's spiking activity as a :class:`hardware_models.ActivityProfile`.

    Runs ``model`` (eval mode, no gradients, outputs unchanged) on ``samples`` inputs and averages, per recorded
    layer, the spikes per time step and the spikes per neuron over the run. The input frames count as the input
    events (an event-count frame contributes its counts).

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

    Returns:
        The profile; its node names are ``names[module]`` for every recorded module.
    """
    from hardware_models import ActivityProfile

    p = next((q for q in model.parameters() if q.is_floating_point()), None)
    dtype = p.dtype if p is not None else torch.float32  # inputs in the model's precision (float64 models too)
    if device is None:
        device = p.device if p is not None else torch.device("cpu")
    batches = [(data, None)] if isinstance(data, torch.Tensor) else data
    sums_step: dict[str, torch.Tensor] = {}
    sums_count: dict[str, torch.Tensor] = {}
    seen, T = 0, None
    for x_seq, _ in batches:
        if samples is not None and seen >= samples:
            break
        x_seq = torch.as_tensor(x_seq)
        if samples is not None:
            x_seq = x_seq[:, : samples - seen]
        x_seq = x_seq.to(device, dtype)
        if x_seq.ndim < 3:
            raise ValueError(f"activity_profile: inputs must be [T, B, ...], got shape {tuple(x_seq.shape)}")
        if T is None:
            T = x_seq.shape[0]
        elif x_seq.shape[0] != T:
            raise ValueError(f"activity_profile: batches have different time steps ({x_seq.shape[0]} vs {T})")
        _, layers = record_outputs(model, x_seq, kinds)
        # an OFF event (−1, e.g. delta encoding with off_spike=True) is an event as much as an ON event (+1)
        recorded = {input_name or "__input__": x_seq.abs(), **layers}
        for name, s in recorded.items():
            s = s.double()
            step = s.reshape(T, s.shape[1], -1).sum(dim=(1, 2))
            count = s.sum(dim=(0, 1))
            sums_step[name] = sums_step.get(name, 0) + step
            sums_count[name] = sums_count.get(name, 0) + count
        seen += x_seq.shape[1]
    if not seen:
        raise ValueError("activity_profile: no samples (empty data)")
    inp_key = input_name or "__input__"
    mapping = dict(names or {})
    missing = [m for m in sums_step if m != inp_key and mapping and m not in mapping]
    if missing:
        raise ValueError(f"activity_profile: no node name given for recorded module(s) {missing}; "
                         f"names has {sorted(mapping)}")
    per_step, counts = {}, {}
    for name in sums_step:
        if name == inp_key and input_name is None:
            continue
        node = name if name == inp_key else mapping.get(name, name)
        per_step[node] = (sums_step[name] / seen).cpu().numpy()
        counts[node] = (sums_count[name] / seen).cpu().numpy()
    return ActivityProfile(time_steps=int(T), dt_s=float(dt_s), samples=int(seen), spikes_per_step=per_step,
                           spike_counts=counts, input_events_per_step=(sums_step[inp_key] / seen).cpu().numpy())

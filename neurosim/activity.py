"""Record what a model's layers emit while it runs, without changing its outputs.

:func:`record_outputs` attaches temporary forward hooks to chosen layers (by default every spiking layer), runs the
model once under ``no_grad`` and returns each layer's whole output sequence (for a figure of one sample: it keeps
every recorded ``[T, B, ...]`` output until the run ends). :func:`activity_profile` (the hardware adapters'
``ActivityProfile``) keeps only what the profile needs: its hooks reduce each output as it is made to float64 totals
per time step and per neuron, and it runs the model on a few samples at a time (``batch_size``) and, on CPU, a few
steps at a time (:func:`neurosim.nn.run_chunked`), so its memory does not grow with ``T`` or ``samples``. The hooks
are removed afterwards, even on error.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Mapping

import torch
from torch import nn

from neurosim.nn import LIF
from neurosim.nn.layers import run_chunked

__all__ = ["activity_profile", "record_outputs"]


@contextmanager
def _hooks(model: nn.Module, kinds: tuple[type, ...], on_output: Callable[[str, torch.Tensor], None]
           ) -> Iterator[None]:
    """While the block runs, every submodule of ``kinds`` hands each call's (detached) output to
    ``on_output(name, output)``."""
    handles = []
    for name, module in model.named_modules():
        if name and isinstance(module, kinds):
            def hook(mod, args, output, name=name):
                on_output(name, (output[0] if isinstance(output, tuple) else output).detach())
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
        with _hooks(model, kinds, store.__setitem__):
            out_seq, _ = model(x_seq)
    finally:
        model.train(was_training)
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


@torch.no_grad()
def activity_profile(model: nn.Module, data, *, dt_s: float, samples: int | None = None,
                     kinds: tuple[type, ...] = (LIF,), names: Mapping[str, str] | None = None,
                     input_name: str | None = "input", device: str | torch.device | None = None,
                     batch_size: int = 16):
    """Measure a model's spiking activity as a :class:`hardware_models.ActivityProfile`.

    Runs ``model`` (eval mode, no gradients, outputs unchanged) on ``samples`` inputs and averages, per recorded
    layer, the spikes per time step and the spikes per neuron over the run. The input frames count as the input
    events (an event-count frame contributes its counts).

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
                with _hooks(model, kinds, _reducer(steps, counts)):
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
    per_step, counts = {}, {}
    for name in sums_step:
        if name == inp_key and input_name is None:
            continue
        node = name if name == inp_key else mapping.get(name, name)
        per_step[node] = (sums_step[name] / seen).cpu().numpy()
        counts[node] = (sums_count[name] / seen).cpu().numpy()
    return ActivityProfile(time_steps=int(T), dt_s=float(dt_s), samples=int(seen), spikes_per_step=per_step,
                           spike_counts=counts, input_events_per_step=(sums_step[inp_key] / seen).cpu().numpy())

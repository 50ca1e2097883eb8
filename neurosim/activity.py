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

import operator
from contextlib import contextmanager
from typing import Callable, Iterator, Mapping

import torch
from torch import nn

from neurosim.functional import LIFState, lif_scan
from neurosim.functional.lif import _v_before
from neurosim.nn import LI, LIF, CubaLIF
from neurosim.nn.layers import run_chunked

__all__ = ["StepProfiles", "activity_profile", "cohort_profiles", "record_outputs", "step_profiles"]


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

    A neurosim model (``stateful``, e.g. :class:`~neurosim.nn.Sequential`) runs a chunk of steps at a time with its
    state carried (:func:`neurosim.nn.run_chunked`: the same outputs), so memory holds the recorded outputs and one
    chunk's intermediate tensors, not every layer's whole sequence.

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
            # a chunk of steps at a time, as evaluation runs it: only the recorded outputs grow with T, not every
            # layer's intermediate [T, B, ...] tensors (the run's raster figure of one DVS Gesture sample at T = 200
            # took 267 MB more than the training before it)
            out_seq, _ = run_chunked(model, x_seq) if getattr(model, "stateful", False) else model(x_seq)
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


def _sums(out: torch.Tensor, absolute: bool = False, weights: torch.Tensor | None = None
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Float64 totals of ``out [t, B, ...]``: per step ``[t]`` (over batch and neurons) and per neuron ``[...]``
    (over steps and batch); ``absolute`` sums ``|out|``. Converted a block of steps at a time.

    ``weights [K, t, B]`` (float64): the totals of K cohorts instead, ``[K, t]`` and ``[K, ...]``, each sample and
    step weighted by its cohort's weight (0 or 1: whole numbers stay exact)."""
    t = out.shape[0]
    per = max(1, _BLOCK // max(1, out[0].numel()))
    steps, count = [], None
    for i in range(0, t, per):
        s = out[i:i + per].double()  # (the output itself where it is float64 already: not changed in place)
        if absolute:
            s = s.abs()
        if weights is None:
            steps.append(s.reshape(s.shape[0], -1).sum(dim=1))
            c = s.sum(dim=(0, 1))
        else:
            w = weights[:, i:i + per]
            steps.append(torch.einsum("ktb,tb->kt", w, s.reshape(s.shape[0], s.shape[1], -1).sum(-1)))
            c = (w.reshape(w.shape[0], -1) @ s.reshape(s.shape[0] * s.shape[1], -1)).reshape(w.shape[0], *s.shape[2:])
        count = c if count is None else count + c
    return torch.cat(steps, dim=-1), count


class _Cohorts:
    """The cohorts' weights ``[K, T, B]`` for the batch under way; each recorded module's calls take the next steps of
    them (a chunked run calls a layer once per chunk, an RLIF's LIF once per step)."""

    def __init__(self, weights: torch.Tensor) -> None:
        self.weights, self.at = weights, {}

    def take(self, key: tuple[str, str], t: int) -> torch.Tensor:
        i = self.at.get(key, 0)
        T = self.weights.shape[1]
        if i + t > T:
            raise ValueError(f"activity_profile: module {key[1]!r} emitted more than T = {T} time steps for an input "
                             "of T steps (it runs more than once per step, or its output is not time-first "
                             "[T, B, ...]); record other modules (kinds=...)")
        self.at[key] = i + t
        return self.weights[:, i:i + t]


class _PerStep:
    """Per-step float64 totals of each module over one batch of ``T`` steps (``[T]``, or ``[K, T]`` per cohort), each
    module's in one buffer made at its first call, which every later call (a chunked run calls a layer once per
    chunk) writes its steps into: no small result outlives its chunk. Kept in a list per call until the batch ended,
    they fragmented the heap the chunks' transient tensors come from, so peak memory grew with the number of chunks:
    ``neurosim estimate`` took 496 MB at T = 50 and 858 MB at T = 400, 442 and 551 MB where glibc was kept from
    growing its heap (quickstart net, 64 samples).

    ``steps[name]`` counts the steps a module emitted, also past ``T`` (those are not stored): the caller checks
    that every module emitted exactly ``T``."""

    def __init__(self, T: int) -> None:
        self.T, self.totals, self.steps = T, {}, {}

    def add(self, name: str, step: torch.Tensor) -> None:
        at, t = self.steps.get(name, 0), step.shape[-1]
        self.steps[name] = at + t
        if at + t > self.T:
            return
        if name not in self.totals:
            self.totals[name] = step.new_zeros((*step.shape[:-1], self.T))
        self.totals[name][..., at:at + t] = step


class _StepTotals:
    """Every sample's totals of each module, added up over the batches (:meth:`next_batch` between two): per step
    (``steps[name]``, ``[T]``; ``updates[name]`` for the neurons updated) and per step and neuron (``counts[name]``,
    ``[T, ...]``), from which the profile of the first ``t`` steps of every sample is cut for each ``t``
    (:class:`StepProfiles`). Steps past ``T`` are not stored (the caller's per-batch :class:`_PerStep` reports them).

    ``counts[name]`` is the one total that grows with ``T`` and the network (80 MB of float64 for the quickstart net
    at ``T`` = 400). Spikes and event counts are whole numbers: it holds them as int32 (half the bytes, the same
    values) while every total added is whole and the running sums over the steps (:func:`_step_profiles`) cannot
    pass 2³¹ (``bound[name]``: the most any of them can reach); graded outputs or inputs, or larger counts, make it
    float64 from then on, as it was throughout."""

    def __init__(self, T: int) -> None:
        self.T, self.steps, self.counts, self.updates, self.at, self.bound = T, {}, {}, {}, {}, {}

    def next_batch(self) -> None:
        self.at = {}

    def _take(self, key: tuple[str, str], t: int) -> int | None:
        at = self.at.get(key, 0)
        self.at[key] = at + t
        return at if at + t <= self.T else None

    def add(self, name: str, out: torch.Tensor, absolute: bool = False) -> None:
        """Add a call's output ``[t, B, ...]`` (``|out|`` with ``absolute``), converted a block of steps at a time."""
        at = self._take(("out", name), out.shape[0])
        if at is None:
            return
        per = max(1, _BLOCK // max(1, out[0].numel()))
        for i in range(0, out.shape[0], per):
            s = out[i:i + per].double()
            if absolute:
                s = s.abs()
            k = s.shape[0]
            if name not in self.steps:
                self.steps[name] = s.new_zeros(self.T)
                self.counts[name] = s.new_zeros((self.T, *s.shape[2:]), dtype=torch.int32)
                self.bound[name] = 0.0
            self.steps[name][at + i:at + i + k] += s.reshape(k, -1).sum(dim=1)
            c = s.sum(dim=1)  # [k, ...] float64
            counts = self.counts[name]
            if counts.dtype == torch.int32:
                self.bound[name] += float(c.abs().sum(0).max()) if c.numel() else 0.0
                if self.bound[name] >= 2 ** 31 or not bool((c == c.trunc()).all()):
                    counts = self.counts[name] = counts.double()  # (the whole numbers so far: exact)
            counts[at + i:at + i + k] += c.to(counts.dtype)

    def add_updates(self, name: str, moved: torch.Tensor) -> None:
        """Add a call's neurons updated per step and sample, ``[t, B]`` (float64)."""
        at = self._take(("update", name), moved.shape[0])
        if at is None:
            return
        if name not in self.updates:
            self.updates[name] = moved.new_zeros(self.T)
        self.updates[name][at:at + moved.shape[0]] += moved.sum(dim=1)


def _reducer(steps: _PerStep, counts: dict[str, torch.Tensor], cohorts: _Cohorts | None = None,
             totals: _StepTotals | None = None) -> Callable[[str, torch.Tensor], None]:
    """An ``on_output`` for :func:`_hooks` that adds each call's output to ``steps`` (per-step totals; a model run a
    chunk of steps at a time calls a layer once per chunk) and ``counts[name]`` (per-neuron totals); per cohort with
    ``cohorts``; and to ``totals`` where given."""
    def add(name: str, out: torch.Tensor) -> None:
        if totals is not None:
            totals.add(name, out)
        w = None if cohorts is None else cohorts.take(("out", name), out.shape[0])
        step, count = _sums(out, weights=w)
        steps.add(name, step)
        if name in counts:
            counts[name] += count  # (in place: the totals keep one tensor per module)
        else:
            counts[name] = count
    return add


def _updates(layer: nn.Module, x_seq: torch.Tensor, state, out: torch.Tensor) -> torch.Tensor:
    """Float64 ``[t, B]``: per step and sample of one LIF or LI call, the neurons whose state changes: a
    nonzero input ``x[t]``, a nonzero membrane entering the step (``v[t−1]``, the call's starting state at its first
    step) or a spike. A LIF's membrane is recomputed from ``x_seq`` and ``state`` with the layer's own backend (the
    values it computed), one call's ``[t, B, ...]`` at a time (a chunked run calls the layer once per chunk); an LI's
    output is its membrane."""
    if x_seq.shape[0] == 0:
        return torch.zeros(0, x_seq.shape[1], dtype=torch.float64, device=x_seq.device)
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
    return moved.reshape(moved.shape[0], moved.shape[1], -1).sum(dim=2).double()


def _update_reducer(updates: _PerStep, cohorts: _Cohorts | None = None, totals: _StepTotals | None = None
                    ) -> Callable[[str, nn.Module, torch.Tensor, object, torch.Tensor], None]:
    """An ``on_neuron`` for :func:`_hooks` that adds each LIF or LI call's per-step update counts to ``updates``
    (``[t]``; per cohort ``[K, t]`` with ``cohorts``), and to ``totals`` where given."""
    def add(name: str, layer: nn.Module, x_seq: torch.Tensor, state, out: torch.Tensor) -> None:
        moved = _updates(layer, x_seq, state, out)
        if totals is not None:
            totals.add_updates(name, moved)
        if cohorts is None:
            updates.add(name, moved.sum(dim=1))
        else:
            w = cohorts.take(("update", name), moved.shape[0])
            updates.add(name, torch.einsum("ktb,tb->kt", w, moved))
    return add


def _model_input(x_seq: torch.Tensor, model: nn.Module, device, dtype: torch.dtype) -> torch.Tensor:
    """A batch ``[T, B, ...]`` as ``model`` is run on it here (:func:`neurosim.nn.run_chunked` for a neurosim model):
    event counts (integer or boolean) stay in their own dtype where the model is a neurosim one of float32 weights,
    and ``run_chunked`` makes a chunk of steps float32 at a time (:func:`neurosim.nn.as_float`: the same values);
    anything else is converted whole to the model's ``dtype``. Contiguous, on ``device``."""
    if (not x_seq.is_floating_point() and not x_seq.is_complex() and dtype == torch.float32
            and getattr(model, "stateful", False)):
        return x_seq.contiguous().to(device)
    return x_seq.contiguous().to(device, dtype)


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
    only the samples used are converted to the model's dtype; event counts (integer frames) a chunk of steps at a
    time (:func:`_model_input`). The totals do not depend on ``batch_size`` or the
    chunks: spikes and event counts are whole numbers, which float64 adds exactly in any order (graded outputs
    or inputs, which are not, agree to float64 rounding).

    Args:
        model: a neurosim model (``forward(x_seq) -> (out_seq, state)``).
        data: one input ``[T, B, ...]``, or an iterable of ``(x_seq, y)`` batches (e.g. a test loader).
        dt_s: seconds per time step.
        samples: use at most this many samples (default: all that ``data`` yields).
        kinds: module types whose outputs are recorded (default: LIF layers).
        names: module name → node name in the profile (e.g. the NIR graph's node names, from
            :func:`neurosim.export.to_nir`); default: a model from :func:`neurosim.export.from_nir` its graph's
            (``model.nir_node_names``: ``0.1`` for module ``0_1``; a layer added after the import its module
            name), any other the module names of ``model.named_modules()``.
        input_name: the graph's Input node name (its spatial event counts are stored under it); ``None`` keeps
            only the per-step input totals.
        device: where to run (default: where the model's parameters are).
        batch_size: samples per forward call (bounds the memory; the profile is the same for any value).

    Returns:
        The profile; its node names are ``names[module]`` for every recorded module.
    """
    return _measure(model, data, dt_s=dt_s, samples=samples, kinds=kinds, names=names, input_name=input_name,
                    device=device, batch_size=batch_size)


@torch.no_grad()
def cohort_profiles(model: nn.Module, data, cohorts, *, dt_s: float, kinds: tuple[type, ...] = (LIF,),
                    names: Mapping[str, str] | None = None, input_name: str | None = "input",
                    device: str | torch.device | None = None, batch_size: int = 16) -> list:
    """The activity of several cohorts of the samples, each run for its own number of steps, in one pass.

    ``cohorts`` is a sequence of ``(steps, members)``: a cohort's profile is what :func:`activity_profile` measures
    on its ``members`` (indices into the samples ``data`` yields, in order, or a boolean mask over them) run for the
    first ``steps`` steps only: ``time_steps = steps`` and the means over its members. A network is causal (its step
    ``t`` does not depend on later input), so the first ``steps`` steps of the whole run are that shorter run: what a
    chip that stops after ``steps`` steps (early exit: :mod:`neurosim.estimation.early_exit`) computes. A cohort
    without members gives None. The profiles equal :func:`activity_profile`'s on each cohort's samples and steps
    (the whole numbers exactly); the model runs once, whatever the number of cohorts. (Every sample over each
    number of steps, ``T`` cohorts, is :func:`step_profiles`' at a fraction of the time and memory.)

    Args are those of :func:`activity_profile`; ``data`` is read once, in order, and must hold every sample a
    cohort names.
    """
    rows = _cohort_rows(cohorts)
    if not rows:
        raise ValueError("cohort_profiles: no cohorts")
    return _measure(model, data, dt_s=dt_s, samples=None, kinds=kinds, names=names, input_name=input_name,
                    device=device, batch_size=batch_size, cohorts=rows)


def _cohort_rows(cohorts, where: str = "cohort_profiles") -> list[tuple[int, torch.Tensor]]:
    """``cohorts`` as ``[(steps, member indices int64)]``, each checked (a ValueError naming the cohort)."""
    rows = []
    for k, item in enumerate(cohorts):
        try:
            steps, members = item
        except (TypeError, ValueError):
            raise ValueError(f"{where}: cohort {k} must be a pair (steps, members), got {item!r}") from None
        try:
            whole = None if isinstance(steps, bool) else operator.index(steps)
        except TypeError:
            whole = None
        if whole is None or whole < 1:
            raise ValueError(f"{where}: cohort {k}: steps must be a whole number >= 1, got {steps!r}")
        m = torch.as_tensor(members)
        if m.numel() == 0:
            m = m.long()  # (an empty list reads as float)
        if m.dtype == torch.bool:
            if m.ndim != 1:
                raise ValueError(f"{where}: cohort {k}: a mask of members must be 1-D, got shape {tuple(m.shape)}")
            m = m.nonzero().flatten()
        elif m.is_floating_point() or m.is_complex() or m.ndim > 1:
            raise ValueError(f"{where}: cohort {k}: members must be sample indices or a boolean mask, got a "
                             f"{m.dtype} tensor of shape {tuple(m.shape)}")
        m = m.flatten().long()
        if m.numel() and int(m.min()) < 0:
            raise ValueError(f"{where}: cohort {k}: sample index {int(m.min())} is negative")
        rows.append((whole, m))
    return rows


class StepProfiles:
    """Every sample's activity over its first ``t`` steps, for each ``t`` from 1 to ``time_steps``, measured in one
    run (:func:`step_profiles`), and the profiles of the cohorts asked for alongside (:attr:`cohorts`, as
    :func:`cohort_profiles` gives them).

    :meth:`first` makes the profile of ``t`` steps when asked: the run's per-step totals cut to their first ``t``
    steps, and each neuron's total over them (running sums of its per-step totals). They are
    :func:`cohort_profiles`' of the cohort ``(t, every sample)`` (the whole numbers exactly), which keeps one
    weighted total per neuron and cohort and sums every call's output once per cohort: the ``T`` cohorts of
    ``neurosim estimate --early-exit`` at ``T`` = 400 (quickstart net, 64 samples) took 23 s of CPU and raised the
    peak by 350 MB, against 10 s and 250 MB here (a plain :func:`activity_profile`: 9 s, 210 MB). Memory holds one
    total per neuron and step, ``T × neurons`` int32 where they are whole numbers (spikes, event counts; float64 for
    graded values), and one profile at a time where the caller keeps none.

    Attributes:
        time_steps: ``T``, the steps of the run.
        samples: the samples measured.
        cohorts: the profile of each cohort asked for (None for one without members).
    """

    def __init__(self, first: Callable[[int], object], time_steps: int, samples: int, cohorts: list) -> None:
        self._first, self.time_steps, self.samples, self.cohorts = first, time_steps, samples, cohorts

    def first(self, steps: int):
        """The :class:`hardware_models.ActivityProfile` of every sample run for its first ``steps`` steps (1 …
        ``time_steps``; ``time_steps``: the whole run's, :func:`activity_profile`'s).

        Raises:
            ValueError: ``steps`` is not a whole number in ``[1, time_steps]``.
        """
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= self.time_steps:
            raise ValueError(f"StepProfiles.first: steps must be a whole number in [1, {self.time_steps}], got "
                             f"{steps!r}")
        return self._first(steps)


@torch.no_grad()
def step_profiles(model: nn.Module, data, cohorts=(), *, dt_s: float, kinds: tuple[type, ...] = (LIF,),
                  names: Mapping[str, str] | None = None, input_name: str | None = "input",
                  device: str | torch.device | None = None, batch_size: int = 16) -> StepProfiles:
    """Every sample's activity over its first ``t`` steps, for each ``t`` (:meth:`StepProfiles.first`), and that of
    ``cohorts`` (``(steps, members)`` as :func:`cohort_profiles` takes them; none by default), in one pass.

    Args are those of :func:`cohort_profiles`.
    """
    rows = _cohort_rows(cohorts, "step_profiles")
    return _measure(model, data, dt_s=dt_s, samples=None, kinds=kinds, names=names, input_name=input_name,
                    device=device, batch_size=batch_size, cohorts=rows or None, by_steps=True)


def _measure(model: nn.Module, data, *, dt_s: float, samples: int | None, kinds: tuple[type, ...],
             names: Mapping[str, str] | None, input_name: str | None, device, batch_size: int, cohorts=None,
             by_steps: bool = False):
    """:func:`activity_profile`'s profile; with ``cohorts`` (``[(steps, member indices)]``), one per cohort; with
    ``by_steps``, a :class:`StepProfiles` (holding the cohorts' profiles, if any)."""
    from hardware_models import ActivityProfile

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"activity_profile: batch_size must be a whole number of samples >= 1, got {batch_size!r}")
    p = next((q for q in model.parameters() if q.is_floating_point()), None)
    dtype = p.dtype if p is not None else torch.float32  # inputs in the model's precision (float64 models too)
    if device is None:
        device = p.device if p is not None else torch.device("cpu")
    batches = [(data, None)] if isinstance(data, torch.Tensor) else data
    inp_key = input_name or "__input__"
    member = None
    if cohorts is not None:  # [K, samples named] membership; the samples past the last one named weigh nothing
        known = 1 + max((int(m.max()) for _, m in cohorts if m.numel()), default=-1)
        member = torch.zeros(len(cohorts), known, dtype=torch.float64)
        for k, (_, m) in enumerate(cohorts):
            member[k].index_add_(0, m, torch.ones(m.numel(), dtype=torch.float64))  # (a sample named twice: twice)
        cohort_steps = torch.tensor([e for e, _ in cohorts])
    sums_step: dict[str, torch.Tensor] = {}
    sums_count: dict[str, torch.Tensor] = {}
    sums_update: dict[str, torch.Tensor] = {}
    seen, T = 0, None
    totals: _StepTotals | None = None  # (by_steps: every sample's totals per step, and per step and neuron)
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
                if member is not None and int(cohort_steps.max()) > T:
                    k = int(cohort_steps.argmax())
                    raise ValueError(f"cohort_profiles: cohort {k} runs {int(cohort_steps[k])} steps but the inputs "
                                     f"have T = {T}")
            elif x_seq.shape[0] != T:
                raise ValueError(f"activity_profile: batches have different time steps ({x_seq.shape[0]} vs {T})")
            if by_steps and totals is None:
                totals = _StepTotals(T)
            for start in range(0, x_seq.shape[1], batch_size):
                x = _model_input(x_seq[:, start:start + batch_size], model, device, dtype)  # (counts: compact)
                B = x.shape[1]
                w = None
                if member is not None:
                    rows = member[:, seen:seen + B]
                    if rows.shape[1] < B:  # samples no cohort names
                        rows = torch.cat([rows, rows.new_zeros(rows.shape[0], B - rows.shape[1])], dim=1)
                    before = (torch.arange(T)[None, :] < cohort_steps[:, None]).double()  # [K, T]
                    w = (before[:, :, None] * rows[:, None, :]).to(device)  # [K, T, B]
                cohort = None if w is None else _Cohorts(w)
                # an OFF event (−1, e.g. delta encoding with off_spike=True) is an event as much as an ON event (+1)
                found = {inp_key: _sums(x, absolute=True, weights=w)}
                if totals is not None:
                    totals.next_batch()
                    totals.add(inp_key, x, absolute=True)
                steps, counts, updates = _PerStep(T), {}, _PerStep(T)
                with _hooks(model, kinds, _reducer(steps, counts, cohort, totals),
                            _update_reducer(updates, cohort, totals)):
                    run_chunked(model, x) if getattr(model, "stateful", False) else model(x)
                for name, emitted in steps.steps.items():
                    if emitted != T:
                        raise ValueError(f"activity_profile: module {name!r} emitted {emitted} time steps in "
                                         f"all for an input of T = {T} (it runs more than once per step, or its "
                                         "output is not time-first [T, B, ...]); record other modules (kinds=...)")
                    found[name] = (steps.totals[name], counts[name])
                for name, (step, count) in found.items():
                    sums_step[name] = sums_step[name] + step if name in sums_step else step
                    sums_count[name] = sums_count[name] + count if name in sums_count else count
                for name, ran in updates.steps.items():
                    if ran != T:  # (a recorded LIF: checked above with its spikes; an LI readout here)
                        raise ValueError(f"activity_profile: module {name!r} ran {ran} time steps in "
                                         f"all for an input of T = {T} (it runs more than once per step, or its "
                                         "input is not time-first [T, B, ...])")
                    update = updates.totals[name]
                    sums_update[name] = sums_update[name] + update if name in sums_update else update
                seen += B
                del x
            del x_seq  # before the next batch is made: one batch in memory at a time
    finally:
        model.train(was_training)
    if not seen:
        raise ValueError("activity_profile: no samples (empty data)")
    if member is not None and member.shape[1] > seen:
        raise ValueError(f"cohort_profiles: a cohort names sample {member.shape[1] - 1} but the data holds {seen} "
                         "samples")
    if names is None:  # a model imported from NIR: its graph's node names (from_nir renames what torch forbids)
        imported = getattr(model, "nir_node_names", None)
        # a layer added after the import keeps its module name (as to_nir names it)
        names = None if not imported else {**{m: m for m in (*sums_step, *sums_update) if m != inp_key}, **imported}
    mapping = dict(names or {})
    missing = [m for m in sums_step if m != inp_key and mapping and m not in mapping]
    if missing:
        raise ValueError(f"activity_profile: no node name given for recorded module(s) {missing}; "
                         f"names has {sorted(mapping)}")
    nodes = {name: name if name == inp_key else mapping.get(name, name) for name in sums_step
             if not (name == inp_key and input_name is None)}
    li = [n for n in sums_update if n not in sums_step and (not mapping or n in mapping)]  # LI readouts (no spikes;
    # left out where names are given without them: the caller's profile has no node for them)

    def profile(pick, steps: int, n: int):
        cut = lambda t: (pick(t)[..., :steps] / n).cpu().numpy()  # noqa: E731
        return ActivityProfile(
            time_steps=int(steps), dt_s=float(dt_s), samples=int(n),
            spikes_per_step={node: cut(sums_step[name]) for name, node in nodes.items()},
            spike_counts={node: (pick(sums_count[name]) / n).cpu().numpy() for name, node in nodes.items()},
            input_events_per_step=cut(sums_step[inp_key]),
            updates_per_step={mapping.get(name, name): cut(sums_update[name])
                              for name in [n_ for n_ in sums_update if n_ in sums_step] + li})

    if by_steps:
        return _step_profiles(totals, inp_key, nodes, mapping, li, sums_update, sums_step, dt_s, T, seen,
                              [] if member is None else [profile(lambda t, k=k: t[k], e, int(m.numel())) if m.numel()
                                                         else None for k, (e, m) in enumerate(cohorts)])
    if member is None:
        return profile(lambda t: t, T, seen)
    return [profile(lambda t, k=k: t[k], e, int(m.numel())) if m.numel() else None
            for k, (e, m) in enumerate(cohorts)]


def _step_profiles(totals: _StepTotals, inp_key: str, nodes: dict, mapping: dict, li: list, sums_update: dict,
                   sums_step: dict, dt_s: float, T: int, n: int, cohorts: list) -> StepProfiles:
    """:class:`StepProfiles` of ``totals`` (``n`` samples; the nodes, names and LI readouts :func:`_measure` found)."""
    from hardware_models import ActivityProfile

    for count in totals.counts.values():
        count.cumsum_(0)  # row t − 1: each neuron's total over the first t steps (whole numbers: exact; int32: the
        # sums stay below 2³¹, _StepTotals.bound)
    updated = [name for name in sums_update if name in sums_step] + li

    def first(steps: int):
        cut = lambda t: (t[:steps] / n).cpu().numpy()  # noqa: E731
        return ActivityProfile(
            time_steps=int(steps), dt_s=float(dt_s), samples=int(n),
            spikes_per_step={node: cut(totals.steps[name]) for name, node in nodes.items()},
            spike_counts={node: (totals.counts[name][steps - 1].double() / n).cpu().numpy()
                          for name, node in nodes.items()},
            input_events_per_step=cut(totals.steps[inp_key]),
            updates_per_step={mapping.get(name, name): cut(totals.updates[name]) for name in updated})

    return StepProfiles(first, T, n, cohorts)

r"""SLTT and SLTT-K: online training whose memory does not grow with the number of time steps.

Spatial Learning Through Time (Meng et al., ICCV 2023, arXiv 2302.14311). The paper's LIF neuron is

.. math::

    u[t] = \lambda\,\mathrm{sg}\big(u[t-1] - V_{th}\,s[t-1]\big) + W s_{in}[t], \qquad
    s[t] = H(u[t] - V_{th}), \qquad \lambda = 1 - 1/\tau

where ``sg`` is stop-gradient: gradients flow only through space (layer to layer within the same step),
never back through time. The loss is a sum of per-step terms, ``L = (1/T)·Σ_t ℓ(o_t, y)``, so the gradient
is a sum of per-step gradients and each step can be forwarded and backwarded at once: the graph of step
``t`` is freed before step ``t + 1`` starts, and training memory is that of one step, whatever ``T`` is.

* :class:`SLTT` — for each ``t``: forward one step ``x_seq[t:t+1]`` with the carried state detached, compute
  ``ℓ(o_t, y)/T``, ``backward()`` (gradients accumulate in ``.grad``). The Trainer then takes one optimizer
  step per batch.
* :class:`SLTTK` — SLTT-K: ``K`` steps drawn per batch (``randperm(T)[:K]``) get a backward pass; the others
  run under ``torch.no_grad`` (the neuron state still advances). The loss stays divided by ``T``.

The model is not modified. Between calls the method detaches the whole state dict
(:func:`neurosim.nn.detach_state`), which is exactly the ``sg(·)`` above for every reset mode and reset timing,
works with learnable decay/threshold, and carries the dropout mask (one mask for all steps). Time-distributed
BatchNorm sees one step at a time, i.e. normalises per step as in the paper.

**Chunks of steps** (``time_chunk``, default 1: the paper's loop). A call may hold several steps: the chunk runs
under :func:`neurosim.functional.no_temporal_grad`, in which the LIF and LI layers cut the temporal path inside
the call too, so the chunk's single backward gives exactly the gradients of its steps run one at a time
(tested), as one spatial pass over ``[steps·B, ...]`` with no loop back through time. Memory is that of the
chunk, still independent of ``T``. ``time_chunk=None`` picks :func:`sltt_chunk` (about 128 samples on CPU; one
step on GPU, with BatchNorm in training mode, and for stateful layers that do not declare
``cuts_temporal_grad``, the model itself included: a hand-written model whose own ``forward(x_seq, state)`` feeds
spikes back runs one step per call unless it declares ``cuts_temporal_grad = True``; neurosim's ``Sequential``,
which every built model is, does, and so does the recurrent :class:`neurosim.nn.RLIF`, which detaches its fed-back
spikes inside a call under ``no_temporal_grad``, and the current-based :class:`neurosim.nn.CubaLIF`, which cuts its
current as it cuts the membrane: chunks of recurrent and current-based models keep the gradients of one step per
call, tested).

Measured on the 2-core benchmark machine (``benchmarks/bench_sltt.py``, T = 50, batch 32): one step at a time,
SLTT holds ~0.1× BPTT's memory but takes ~1.2× BPTT's time, not the paper's 0.7× (its Table 1, on GPU). The
convolutions, identical in both methods, are ~57 % of either's time and already run near the CPU's peak FLOP
rate; what SLTT saves (the backward through time) is small here, because BPTT runs it as one fused numba pass
per layer (:mod:`neurosim.functional._lif_kernels`), and SLTT's T small steps each pay per-call costs (kernel
launches, autograd, Python) that BPTT's 4-step chunks amortise. Per sample SLTT is cheaper, so the gap closes
with the batch: at batch 128 SLTT takes 0.81× BPTT's time (``bench_sltt.py --batch 128``). Chunks of 4 steps
take about BPTT's time for ~2.5× the memory of one step. SLTT-K's forward-only steps run without autograd,
pooling argmax or a membrane buffer, in chunks where the allocator is tuned: 0.37–0.43× BPTT's time.

The loss must decompose over time steps (``loss.per_step``: ``tet``, ``sltt_mix``); ``rate_ce`` does not.

:data:`PAPER_NEURON` is the paper's neuron (τ = 1.1 → λ = β = 1 − 1/1.1, triangle surrogate α = 1, subtract
reset, V_th = 1); ``neurosim train --config sltt_paper`` runs the paper's setting by name.

Example:
    >>> import torch
    >>> from neurosim.nn import LIF, Flatten, Linear, Sequential
    >>> from neurosim.training import get_loss, get_method
    >>> net = Sequential(Flatten(), Linear(8, 3), LIF(**paper_lif_kwargs()))
    >>> x_seq, y = torch.rand(6, 4, 8), torch.tensor([0, 1, 2, 0])   # [T, B, N], [B]
    >>> out = get_method("sltt").forward_backward(net, x_seq, y, get_loss("sltt_mix"))
    >>> out.out_seq.shape, out.backward_passes   # the paper's loop: one backward per step
    (torch.Size([6, 4, 3]), 6)
    >>> SLTT(time_chunk=None).forward_backward(net, x_seq, y, get_loss("sltt_mix")).backward_passes  # batch 4: one chunk
    1
    >>> get_method("sltt_k", k=2).forward_backward(net, x_seq, y, get_loss("tet")).backward_passes
    2
"""

from __future__ import annotations

import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from neurosim.config import NeuronConfig, RunConfig, load_config
from neurosim.functional import no_temporal_grad
from neurosim.nn.layers import as_float, check_steps, detach_state, is_stateful
from neurosim.nn.layers import time_chunk as _chunk_of_samples
from neurosim.training.distributed import no_sync, unwrap
from neurosim.training.losses import Loss
from neurosim.training.memory import cpu_allocator_tuned
from neurosim.training.regularize import pending_penalty
from neurosim.training.methods import StepOutput, call_model, check_batch, register_method

__all__ = [
    "PAPER_NEURON", "PAPER_TAU", "SLTT", "SLTTK", "paper_beta", "paper_config", "paper_lif_kwargs",
    "run_online", "sltt_chunk",
]

PAPER_TAU = 1.1  # the official code's default -tau; λ = 1 − 1/τ ≈ 0.0909 (a very fast leak)


def paper_beta(tau: float = PAPER_TAU) -> float:
    """The paper's decay ``λ = 1 − 1/τ`` (dimensionless τ ≥ 1, in time steps; τ = 1 gives λ = 0: no memory).

    Note that this is not ``exp(−dt/τ)``: neurosim's ``tau_mem_ms`` would give a different β for the same τ.
    """
    if not tau >= 1:
        raise ValueError(f"the paper's tau must be >= 1 (λ = 1 − 1/τ must be in [0, 1)), got {tau!r}")
    return 1.0 - 1.0 / tau


# The paper's LIF neuron: λ = 1 − 1/1.1, triangle surrogate α = 1, soft (subtract) reset, V_th = 1,
# reset applied in the step that spiked (SpikingJelly/paper timing), gradient through the reset kept.
PAPER_NEURON = NeuronConfig(
    beta=paper_beta(PAPER_TAU), v_th=1.0, reset="subtract", detach_reset=False, reset_timing="immediate",
    surrogate="triangle", surrogate_alpha=1.0,
)


def paper_lif_kwargs() -> dict[str, Any]:
    """Keyword arguments for :class:`neurosim.nn.LIF` giving the paper's neuron (:data:`PAPER_NEURON`)."""
    return PAPER_NEURON.lif_kwargs()


def paper_config(overrides: list[str] | None = None) -> RunConfig:
    """The shipped ``sltt_paper.toml`` run config (paper neuron, SLTT, ``sltt_mix`` loss, SGD + cosine)."""
    return load_config(Path(__file__).resolve().parents[1] / "configs" / "sltt_paper.toml", overrides)


def _check(x_seq: torch.Tensor, y: torch.Tensor, loss: Loss, method: str) -> int:
    T = check_batch(x_seq, y, method)
    if not getattr(loss, "per_step", False):
        raise ValueError(
            f"{method} computes the loss one time step at a time, but {type(loss).__name__} does not decompose "
            "over steps; use a per-step loss: loss = 'tet' or 'sltt_mix' (the paper's)"
        )
    return T


def sltt_chunk(model: torch.nn.Module, x_seq: torch.Tensor) -> int:
    """Time steps SLTT forwards and backwards at once: about :data:`neurosim.nn.CHUNK_SAMPLES` samples on CPU.

    A chunk of steps run under :func:`neurosim.functional.no_temporal_grad` has the same gradients as its steps
    run one at a time, and it backwards as one spatial pass over ``[steps·B, ...]``, which is faster on CPU.
    The memory held is that of the chunk, ``max(B, CHUNK_SAMPLES)`` samples at most, still independent of
    ``T``. One step at a time (the paper's loop, least memory) on GPUs, with BatchNorm in training mode
    (statistics per step), and when a stateful layer does not declare that it honours ``no_temporal_grad``
    (``cuts_temporal_grad``): then the state is detached between steps, which is exact for any layer. The model
    itself counts as such a layer unless it is neurosim's :class:`~neurosim.nn.Sequential` or declares
    ``cuts_temporal_grad = True`` for its own ``forward`` (which may feed spikes back from step to step).
    """
    if x_seq.device.type != "cpu" or _one_step_only(model):
        return 1
    return _chunk_of_samples(model, x_seq)


#: samples (steps × batch) per forward-only call of SLTT-K on a GPU: one kernel launch per layer covers many steps
#: (one step per call made T·layers launches, each waiting on the last), and the memory of a call stays bounded
GPU_FORWARD_SAMPLES = 1024


def _auto_forward_chunk(model: torch.nn.Module, x_seq: torch.Tensor, drawn: bool) -> int:
    """SLTT-K's ``time_chunk = "auto"``: steps per forward-only call (see :class:`SLTTK`)."""
    if not drawn or _chunks_change_values(unwrap(model)):
        return 1
    if x_seq.device.type != "cpu":  # a GPU: few large calls, the memory of a call still bounded independent of T
        return max(1, min(x_seq.shape[0], -(-GPU_FORWARD_SAMPLES // max(1, x_seq.shape[1]))))
    return sltt_chunk(model, x_seq) if cpu_allocator_tuned() else 1


def _one_step_only(model: torch.nn.Module) -> str | None:
    """Why SLTT must run ``model`` one step per call to be exact (None: chunks are exact too).

    The model itself counts as a stateful layer: its own ``forward(x_seq, state)`` may carry state from step to step
    (hidden spikes fed back through a Linear), which only the detach between calls cuts. neurosim's
    :class:`~neurosim.nn.Sequential` declares ``cuts_temporal_grad`` (it only chains its layers, which are checked
    one by one); another model class must declare it to run in chunks, and so must a subclass of Sequential that
    writes its own ``forward`` (the flag it inherits speaks for Sequential's).
    """
    model = unwrap(model)  # DistributedDataParallel's wrapper carries no state of its own
    if not _declares_cut(model):
        return (f"the model ({type(model).__name__}) has its own forward and does not declare "
                "cuts_temporal_grad = True for it (neurosim's Sequential does), so state that forward carries "
                "between steps (e.g. spikes fed back) is cut only by detaching it between calls")
    if why := _chunks_change_values(model):
        return why
    for name, m in model.named_modules():
        if is_stateful(m) and not getattr(m, "cuts_temporal_grad", False):
            return (f"stateful layer {name!r} ({type(m).__name__}) does not declare that it honours "
                    "no_temporal_grad (cuts_temporal_grad), so its state is detached between steps")
    return None


def _chunks_change_values(model: torch.nn.Module) -> str | None:
    """Why several steps per call would compute other values than one step per call (None: the same values).
    This alone decides for forward-only steps (SLTT-K's): without a graph, what cuts gradients does not matter."""
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.training:
            return f"BatchNorm {name!r} in training mode normalises each step by its own statistics"
    return None


def _declares_cut(model: torch.nn.Module) -> bool:
    """Whether ``model`` declares ``cuts_temporal_grad = True`` for the ``forward`` it runs: on the instance, or on
    the class that defines that ``forward`` or a subclass of it."""
    if "cuts_temporal_grad" in vars(model):
        return bool(vars(model)["cuts_temporal_grad"])
    for cls in type(model).__mro__:
        if "cuts_temporal_grad" in vars(cls):
            return bool(vars(cls)["cuts_temporal_grad"])
        if "forward" in vars(cls):  # this class's forward, and no declaration made for it
            return False
    return False


def _segments(T: int, backward_steps: set[int] | None, chunk: int) -> list[tuple[int, int, bool]]:
    """``(start, stop, with_grad)`` pieces of ``range(T)``: steps with a backward one at a time (SLTT-K) or in
    chunks of ``chunk`` (SLTT), forward-only stretches in chunks of ``chunk``."""
    pieces: list[tuple[int, int, bool]] = []
    t = 0
    while t < T:
        grad = backward_steps is None or t in backward_steps
        stop = t + 1
        if backward_steps is None:
            stop = min(T, t + chunk)
        elif not grad:
            while stop < min(T, t + chunk) and stop not in backward_steps:
                stop += 1
        pieces.append((t, stop, grad))
        t = stop
    return pieces


def run_online(model: torch.nn.Module, x_seq: torch.Tensor, y: torch.Tensor, loss: Loss,
               backward_steps: set[int] | None = None, time_chunk: int | None = 1) -> StepOutput:
    """The SLTT loop: forward with the temporal path cut; backward at once where asked.

    Args:
        model: ``forward(x_seq, state=None) -> (out_seq, state)`` (e.g. :class:`neurosim.nn.Sequential`); a model
            that returns something else or takes no ``state`` is a TypeError saying so.
        x_seq: input ``[T, B, ...]``; integer or boolean frames (a compact batch of event counts) are converted to
            float32 one call's steps at a time (:func:`neurosim.nn.as_float`).
        y: targets ``[B]``.
        loss: a per-step loss; step ``t`` contributes ``loss.step(o_t, y) / T``.
        backward_steps: steps that get a backward pass, one each; None means all (SLTT). The others run under
            ``torch.no_grad`` and only advance the state (SLTT-K).
        time_chunk: steps per forward call (and per backward, for SLTT); None picks :func:`sltt_chunk`. 1 is the
            paper's loop.

    Returns:
        :class:`StepOutput` with the loss over all ``T`` steps (backwarded or not), the detached outputs
        ``[T, B, C]``, and the number of backward calls made.
    """
    T = x_seq.shape[0]  # time steps
    method = "SLTT" if backward_steps is None else "SLTT-K"  # for the errors
    chunk = sltt_chunk(model, x_seq) if time_chunk is None else check_steps(time_chunk)
    # SLTT-K's steps with a backward run one per call anyway: its chunks hold forward-only steps, whose values
    # are all that chunks could change
    why = _one_step_only(model) if backward_steps is None else _chunks_change_values(unwrap(model))
    if chunk > 1 and why:
        changed = "the gradients" if backward_steps is None else "the forward-only steps' values"
        warnings.warn(f"time_chunk = {chunk} runs one step per call instead: {why}, and several steps per call "
                      f"would change {changed}", RuntimeWarning, stacklevel=3)
        chunk = 1
    state = None
    # Outputs and loss go into buffers made once: no small allocation outlives a step, so the heap the steps'
    # transient tensors come from does not fragment as T grows (it showed as peak RSS growing with T).
    out_seq = total = None
    passes = 0
    segments = _segments(T, backward_steps, chunk)
    last_backward = max((i for i, seg in enumerate(segments) if seg[2]), default=-1)
    for i, (start, stop, with_grad) in enumerate(segments):
        # data-parallel: gradients are averaged across processes once, by the batch's last backward pass
        with no_sync(model) if with_grad and i != last_backward else nullcontext():
            with torch.set_grad_enabled(with_grad and torch.is_grad_enabled()), no_temporal_grad():
                # (a compact batch's counts made float32 a chunk at a time: no float copy of all T steps)
                out, state = call_model(model, as_float(x_seq[start:stop]), state, method)
                # sg(·) between calls; detaching before backward also drops every reference the state holds
                # into this chunk's graph, so nothing of it survives its backward.
                state = detach_state(state)
                value = loss.step(out[0], y)
                for o_t in out[1:]:
                    value = value + loss.step(o_t, y)
                value = value / T
            if with_grad and value.requires_grad:
                (value + pending_penalty(T)).backward()  # (an activity penalty on this call's spikes, if any)
                passes += 1
            else:
                pending_penalty(T)  # (nothing recorded without a graph; emptied all the same)
        if out_seq is None:
            out_seq = out.new_empty((T, *out.shape[1:]))
            total = torch.zeros((), dtype=value.dtype, device=value.device)
        out_seq[start:stop] = out.detach()
        total += value.detach()
        del out, value
    return StepOutput(float(total), out_seq, passes)


@dataclass
class SLTT:
    """Spatial learning through time: forward + backward per step (or per chunk of steps), temporal path cut.

    Memory is that of one step (or chunk), independent of ``T``; gradients accumulate in ``.grad`` over the
    backward passes, and the Trainer takes one optimizer step per batch.

    Args:
        time_chunk: steps per forward/backward: 1 (default) is the paper's loop, the least memory; N > 1 runs N
            steps per call with the same gradients (one step per call, with a warning, where that would not hold:
            BatchNorm in training mode, stateful layers without ``cuts_temporal_grad``, a model of your own whose
            ``forward`` does not declare it); None picks
            :func:`sltt_chunk` (about 128 samples on CPU).
    """

    time_chunk: int | None = 1
    name: str = "sltt"
    takes_compact_input: ClassVar[bool] = True  # integer frames converted per call (neurosim.training.methods)

    def forward_backward(self, model, x_seq, y, loss) -> StepOutput:
        _check(x_seq, y, loss, "SLTT")
        return run_online(model, x_seq, y, loss, time_chunk=self.time_chunk)


@dataclass
class SLTTK:
    """SLTT-K: backward at ``k`` time steps drawn per batch; the others forward only (state still advances).

    Args:
        k: number of steps per batch that get a backward pass, one pass each (paper: 4 for DVS-Gesture T = 20,
            2 for DVS-CIFAR10 T = 10). ``k >= T`` trains every step: that is SLTT, run as SLTT (``k > T``, most
            likely a mistake, with a RuntimeWarning).
        generator: RNG for drawing the steps; None uses torch's global RNG (saved in checkpoints, so resumed
            runs draw the same steps).
        time_chunk: steps per forward-only call (they hold no graph) and, for ``k >= T``, per SLTT chunk: 1,
            N, None for :func:`sltt_chunk`, or ``"auto"`` (default): on CPU :func:`sltt_chunk` where
            :func:`neurosim.training.tune_cpu_allocator` is in force (the Trainer's default on CPU), else 1; on a
            GPU :data:`GPU_FORWARD_SAMPLES` samples per call; 1 where :func:`sltt_chunk` would need one step
            per call (BatchNorm in training mode); ``k >= T`` runs as the default SLTT (one step at a time). Steps with a backward pass always run one
            at a time. Chunks of forward-only steps have uneven lengths between the drawn steps, and glibc's
            default allocator returns and re-faults their memory (~15,000 page faults per batch at T = 20, 37
            instead of 22 ms); with the tuned allocator they are ~10–15 % faster than one step at a time (T = 50).

    Attributes:
        last_steps: the steps drawn for the last batch, ascending.
    """

    k: int = 2
    generator: torch.Generator | None = None
    time_chunk: int | str | None = "auto"
    name: str = "sltt_k"
    takes_compact_input: ClassVar[bool] = True  # integer frames converted per call (neurosim.training.methods)
    last_steps: tuple[int, ...] = field(default=(), init=False)
    _warned_for: set[int] = field(default_factory=set, init=False, repr=False, compare=False)  # T warned of (k > T)

    def __post_init__(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise ValueError(f"sltt_k needs an integer k >= 1 (steps with a backward pass per batch), got {self.k!r}")
        if isinstance(self.time_chunk, str) and self.time_chunk != "auto":
            raise ValueError(
                f"sltt_k: time_chunk must be a whole number of steps, None or 'auto', got {self.time_chunk!r}"
            )

    def forward_backward(self, model, x_seq, y, loss) -> StepOutput:
        T = _check(x_seq, y, loss, "SLTT-K")
        if self.k > T and T not in self._warned_for:  # (once per T: the Trainer calls from two places)
            self._warned_for.add(T)
            warnings.warn(f"SLTT-K: k = {self.k} is more than the batch's T = {T} time steps, so every step gets a "
                          "backward pass: this is SLTT (train.method = 'sltt'), at SLTT's cost; for SLTT-K's saving "
                          f"set k below T (the paper: 4 of T = 20 steps on DVS-Gesture)", RuntimeWarning, stacklevel=2)
        steps = torch.randperm(T, generator=self.generator)[: self.k]
        self.last_steps = tuple(sorted(int(t) for t in steps))
        drawn = None if len(self.last_steps) == T else set(self.last_steps)
        chunk = self.time_chunk
        if chunk == "auto":
            chunk = _auto_forward_chunk(model, x_seq, drawn is not None)
        return run_online(model, x_seq, y, loss, drawn, time_chunk=chunk)


def _sltt(time_chunk: int | None = None) -> SLTT:
    """``sltt``'s factory: from a config, ``time_chunk`` None is one step at a time. It takes no ``k``: every step
    gets a backward pass (``sltt_k`` draws ``k`` of them)."""
    return SLTT(1 if time_chunk is None else time_chunk)


def _sltt_k(k: int = 2, generator: torch.Generator | None = None, time_chunk: int | str | None = None) -> SLTTK:
    """``sltt_k``'s factory: from a config, ``time_chunk`` None is ``"auto"``."""
    return SLTTK(k, generator, "auto" if time_chunk is None else time_chunk)


register_method("sltt", _sltt)
register_method("sltt_k", _sltt_k)

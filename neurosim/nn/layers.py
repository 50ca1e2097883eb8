"""Time-distributed layers over time-first tensors ``[T, B, ...]``, and the stateful ``Sequential``.

Stateless layers (Conv2d, Linear, BatchNorm, pooling, Flatten) fold time into the batch — ``[T·B, ...]`` —
apply the torch layer once, and unfold; there is no Python loop over ``T``. They subclass the torch
layers, so parameters and ``state_dict`` keys are the usual ones. BatchNorm therefore normalises over
time and batch together; called on one step at a time (as SLTT does) it normalises per step.

Stateful layers (``LIF``, ``LI``, ``Dropout``) take and return an explicit state:
``forward(x_seq, state=None) -> (y_seq, state)``. :class:`Sequential` threads the states of its
stateful children in a dict keyed by child name, so a whole network is also
``net(x_seq, state=None) -> (out_seq, state)`` and running ``T`` in chunks with the carried state equals
one run (dropout masks included: one mask for all steps).

Example:
    >>> import torch
    >>> from neurosim.nn import LIF
    >>> net = Sequential(Flatten(), Linear(4, 3), LIF(beta=0.9))
    >>> out, state = net(torch.rand(6, 2, 2, 2))     # [T, B, C, H]
    >>> out.shape, sorted(state)
    (torch.Size([6, 2, 3]), ['2'])
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from neurosim.functional.lif import _check_state, _float_input, is_temporal_grad_enabled
from neurosim.nn._pool import window_max_pool, window_max_pool_ok
from neurosim.nn.lif import _format_scalar

__all__ = [
    "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Conv2d", "Dropout", "Flatten", "LI", "Linear",
    "MaxPool2d", "Sequential", "SumPool2d", "TimeDistributed", "as_float", "detach_state", "is_stateful",
    "run_chunked", "time_chunk",
]


def _check_seq(x_seq: torch.Tensor, min_dim: int, layer: str) -> None:
    if x_seq.dim() < min_dim:
        raise ValueError(
            f"{layer} expects a time-first tensor with at least {min_dim} dims [T, B, ...], "
            f"got shape {tuple(x_seq.shape)}"
        )


def _check_dtype(x_seq: torch.Tensor, model: nn.Module) -> None:
    """Spikes and event counts as ints or bools, or another float type than the weights', are named here instead
    of in torch's "Input type (long int) and bias type (float) should be the same" from deep inside a layer; so is
    input on another device than the weights."""
    p = next(model.parameters(), None)
    if p is not None and p.device != x_seq.device:  # (else torch's "Input type ... and weight type ...", a layer in)
        raise ValueError(f"x_seq is on {x_seq.device} but the model's weights are on {p.device}: pass "
                         f"x_seq.to({str(p.device)!r}) (or move the model: model.to({str(x_seq.device)!r}))")
    if p is None or x_seq.dtype == p.dtype:
        return
    if x_seq.is_floating_point() and torch.is_autocast_enabled(x_seq.device.type):
        return  # mixed precision: autocast casts per operation
    how = "x_seq.float()" if p.dtype == torch.float32 else f"x_seq.to({p.dtype})"
    raise TypeError(f"x_seq is {x_seq.dtype} but the model's weights are {p.dtype}: pass {how}"
                    + (f" (or convert the model: model.to({x_seq.dtype}))" if x_seq.is_floating_point() else ""))


def _fold(module_forward, x_seq: torch.Tensor) -> torch.Tensor:
    T, B = x_seq.shape[:2]  # time, batch
    y = module_forward(x_seq.reshape(T * B, *x_seq.shape[2:]))
    return y.reshape(T, B, *y.shape[1:])


class TimeDistributed(nn.Module):
    """Apply any per-sample module to every step of ``[T, B, ...]`` at once (time folded into batch)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        _check_seq(x_seq, 3, type(self.module).__name__)
        return _fold(self.module, x_seq)


class Conv2d(nn.Conv2d):
    """``torch.nn.Conv2d`` over ``[T, B, C, H, W]``."""

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        _check_seq(x_seq, 5, "Conv2d")
        return _fold(super().forward, x_seq)


class Linear(nn.Linear):
    """``torch.nn.Linear`` over ``[T, B, N]`` (or any ``[T, B, ..., N]``)."""

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        _check_seq(x_seq, 3, "Linear")
        return super().forward(x_seq)


class BatchNorm2d(nn.BatchNorm2d):
    """``torch.nn.BatchNorm2d`` over ``[T, B, C, H, W]``; statistics over time and batch together."""

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        _check_seq(x_seq, 5, "BatchNorm2d")
        return _fold(super().forward, x_seq)


class BatchNorm1d(nn.BatchNorm1d):
    """``torch.nn.BatchNorm1d`` over ``[T, B, N]``; statistics over time and batch together."""

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        _check_seq(x_seq, 3, "BatchNorm1d")
        return _fold(super().forward, x_seq)


def _pair(v) -> tuple[int, int]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _check_window(layer: str, kernel_size, stride) -> None:
    """Pooling windows and strides of at least 1 (0 divided by zero in the output size)."""
    for name, v in (("kernel_size", kernel_size), ("stride", stride)):
        if v is None and name == "stride":
            continue
        if any(isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1 for k in _pair(v)):
            raise ValueError(f"{layer}: {name} must be a whole number >= 1 (or a pair of them), got {v!r}")


class MaxPool2d(nn.MaxPool2d):
    """``torch.nn.MaxPool2d`` over ``[T, B, C, H, W]`` (on spikes: a logical OR over the window).

    On CPU, non-overlapping windows (``stride == kernel_size``, no padding, dilation or ceil mode: the usual
    ``MaxPool2d(2)``) of float32/64 input are pooled by :func:`neurosim.nn._pool.window_max_pool`, numba kernels
    that keep a one-byte argmax per window instead of ``max_pool2d``'s int64 index: the same values and the same
    gradient routing (ties, NaN and ±inf included), about 4–10× faster forward on spike maps. Other settings and
    devices use ``torch.nn.functional.max_pool2d``.
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False) -> None:
        if return_indices:
            raise ValueError("MaxPool2d: return_indices=True is not supported over time sequences (the layer returns "
                             "one [T, B, C, H, W] tensor); use torch.nn.functional.max_pool2d on [T·B, C, H, W]")
        _check_window("MaxPool2d", kernel_size, stride)
        super().__init__(kernel_size, stride, padding, dilation, return_indices, ceil_mode)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        _check_seq(x_seq, 5, "MaxPool2d")
        if self._fast_ok(x_seq):
            return window_max_pool(x_seq, *_pair(self.kernel_size))
        return _fold(super().forward, x_seq)

    def _fast_ok(self, x_seq: torch.Tensor) -> bool:
        k = _pair(self.kernel_size)
        return window_max_pool_ok(
            x_seq, k, _pair(self.stride if self.stride is not None else k), _pair(self.padding),
            _pair(self.dilation), self.ceil_mode, self.return_indices,
        )


class AvgPool2d(nn.AvgPool2d):
    """``torch.nn.AvgPool2d`` over ``[T, B, C, H, W]``."""

    def __init__(self, kernel_size, stride=None, padding=0, *args, **kwargs) -> None:
        _check_window("AvgPool2d", kernel_size, stride)
        super().__init__(kernel_size, stride, padding, *args, **kwargs)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        _check_seq(x_seq, 5, "AvgPool2d")
        return _fold(super().forward, x_seq)


class SumPool2d(nn.AvgPool2d):
    """Sum pooling over ``[T, B, C, H, W]`` (average pooling times the window area; NIR's ``SumPool2d``)."""

    def __init__(self, kernel_size, stride=None, padding=0) -> None:
        _check_window("SumPool2d", kernel_size, stride)
        super().__init__(kernel_size, stride, padding, count_include_pad=True)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        _check_seq(x_seq, 5, "SumPool2d")
        k = _pair(self.kernel_size)
        return _fold(super().forward, x_seq) * (k[0] * k[1])


class Flatten(nn.Module):
    """Flatten every dim after time and batch: ``[T, B, ...] → [T, B, N]``."""

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        _check_seq(x_seq, 3, "Flatten")
        return x_seq.flatten(2)


class Dropout(nn.Module):
    """Dropout with one mask for all time steps; the mask is the layer's state.

    Args:
        p: probability of zeroing an element (the same elements at every step).
    """

    stateful = True
    cuts_temporal_grad = True  # honours neurosim.functional.no_temporal_grad

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout p must be in [0, 1), got {p!r}")
        self.p = p

    def forward(self, x_seq: torch.Tensor, state: torch.Tensor | None = None):
        _check_seq(x_seq, 2, "Dropout")
        if not self.training or self.p == 0:
            return x_seq, state
        if state is None:
            keep = x_seq.new_empty(x_seq.shape[1:]).bernoulli_(1 - self.p)
            state = keep / (1 - self.p)
        elif state.shape != x_seq.shape[1:]:
            raise ValueError(
                f"dropout mask has shape {tuple(state.shape)} but the steps have shape {tuple(x_seq.shape[1:])}"
            )
        return x_seq * state, state

    def extra_repr(self) -> str:
        return f"p={self.p}"


class LI(nn.Module):
    """Non-spiking leaky integrator readout: ``v[t] = β·v[t−1] + x[t]``; outputs the membrane ``v`` each step.

    β is a buffer (``beta_value``), as in :class:`neurosim.nn.LIF`: it is in ``state_dict`` and loads with the
    weights. A state dict saved before it was (no ``beta_value``) loads too, keeping the β the layer was built with.

    Args:
        beta: decay per step in [0, 1] (0: the output is each step's input, a plain linear readout).

    A carried state must have one step's shape, dtype and device (as :class:`neurosim.nn.LIF`'s); integer and bool
    input is promoted to float32 first.
    """

    stateful = True
    cuts_temporal_grad = True  # honours neurosim.functional.no_temporal_grad
    _version = 2  # 2: β saved in state_dict as beta_value

    def __init__(self, beta: float = 0.9) -> None:
        super().__init__()
        if not 0 <= beta <= 1:
            raise ValueError(f"beta must be in [0, 1], got {beta!r}")
        self.register_buffer("beta_value", torch.tensor(float(beta)))

    @property
    def beta(self) -> torch.Tensor:
        """Decay per step (a 0-d tensor, the ``beta_value`` buffer)."""
        return self.beta_value

    def forward(self, x_seq: torch.Tensor, state: torch.Tensor | None = None):
        _check_seq(x_seq, 2, "LI")
        given = x_seq.dtype
        x_seq = _float_input(x_seq)
        beta = self.beta_value
        if beta.device != x_seq.device and not beta.device.type == "cpu":  # (a 0-d CPU tensor works on any device)
            raise ValueError(f"LI's beta_value is on {beta.device} but x_seq is on {x_seq.device}; move the layer to "
                             "x_seq's device (.to(x_seq.device))")
        if state is None:
            v = x_seq.new_zeros(x_seq.shape[1:])
        else:  # not broadcast: a state of another shape or dtype is a state of another run
            v = _check_state(x_seq, state, "LI's state", given if given != x_seq.dtype else None,
                             why="β·v + x would otherwise run silently in the wider of the two dtypes")
        temporal = is_temporal_grad_enabled()
        out = []
        for x in x_seq:
            v = beta * (v if temporal else v.detach()) + x
            out.append(v)
        out_seq = torch.stack(out) if out else x_seq.new_zeros(x_seq.shape)  # (T = 0: no steps)
        return out_seq, (v if temporal else v.detach())

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs) -> None:
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
        key = prefix + "beta_value"
        if key in missing_keys and (local_metadata.get("version") or 1) < 2:  # saved before β was: keep this β
            missing_keys.remove(key)

    def extra_repr(self) -> str:
        return f"beta={_format_scalar(self.beta_value)}"


def is_stateful(module: nn.Module) -> bool:
    """Whether ``module.forward`` takes and returns a state (``(x_seq, state) -> (y_seq, state)``)."""
    return bool(getattr(module, "stateful", False))


class Sequential(nn.Sequential):
    """A chain of layers with explicit state: ``forward(x_seq, state=None) -> (out_seq, state)``.

    ``state`` is a dict from child name to that child's state (only stateful children appear): pass the dict a
    previous call returned, or None to start from rest.
    """

    stateful = True
    cuts_temporal_grad = True  # honours neurosim.functional.no_temporal_grad

    def forward(self, x_seq: torch.Tensor, state: dict[str, Any] | None = None):
        if not isinstance(x_seq, torch.Tensor):
            raise TypeError(f"x_seq must be a torch.Tensor [T, B, ...], got {type(x_seq).__name__}")
        if state is not None and not isinstance(state, Mapping):
            raise TypeError(f"state must be the dict this model returned (child name -> that child's state), or None "
                            f"to start from rest; got {type(state).__name__}")
        _check_dtype(x_seq, self)
        state = {} if state is None else state
        new_state: dict[str, Any] = {}
        for name, layer in self.named_children():
            if is_stateful(layer):
                x_seq, new_state[name] = layer(x_seq, state.get(name))
            else:
                if not _built_class(layer).__module__.startswith("neurosim."):
                    _check_foreign_layer(name, layer, x_seq)
                x_seq = layer(x_seq)
        return x_seq, new_state


#: torch's own layers that take one time step ``[B, C, ...]``, by their time-distributed neurosim versions
_PER_STEP_TORCH = {nn.Conv2d: "Conv2d", nn.BatchNorm1d: "BatchNorm1d", nn.BatchNorm2d: "BatchNorm2d",
                   nn.MaxPool2d: "MaxPool2d", nn.AvgPool2d: "AvgPool2d", nn.Flatten: "Flatten"}
#: every torch layer that reads dimension 0 as the batch and 1 as channels (or flattens from 1)
_PER_STEP_KINDS = (nn.modules.conv._ConvNd, nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.modules.pooling._MaxPoolNd,
                   nn.modules.pooling._AvgPoolNd, nn.modules.pooling._AdaptiveAvgPoolNd,
                   nn.modules.pooling._AdaptiveMaxPoolNd, nn.Flatten, nn.Unflatten)


def _built_class(layer: nn.Module) -> type:
    """The class ``layer`` was built as: a parametrized layer (``weight_norm``, ``spectral_norm``) is an instance of
    the ``Parametrized<Class>`` subclass torch's parametrize makes of it, which lives in torch's module."""
    cls = type(layer)
    return cls.__bases__[0] if nn.utils.parametrize.is_parametrized(layer) else cls


def _check_foreign_layer(name: str, layer: nn.Module, x_seq: torch.Tensor) -> None:
    """A TypeError for a layer of torch or snnTorch that would read :class:`Sequential`'s ``[T, B, ...]`` as one
    step (torch's errors, "expected 4D input (got 5D input)", or a silently wrong result where the shapes fit: a
    GroupNorm reading B as channels, snnTorch's ``Leaky`` running all ``T`` steps as one step of ``T·B`` samples);
    a RuntimeWarning for torch's ``Dropout`` in training mode, whose mask is new at every step."""
    cls = _built_class(layer)
    what = f"layer {name!r} ({'snntorch' if cls.__module__.startswith('snntorch') else 'torch.nn'}.{cls.__name__})"
    if cls.__module__.startswith("snntorch"):
        raise TypeError(f"Sequential: {what} steps one time step per call and keeps its state inside it, but "
                        "Sequential passes every layer all the steps at once, [T, B, ...] "
                        f"(here {tuple(x_seq.shape)}); convert the snnTorch model with "
                        "neurosim.interop.from_snntorch(nn.Sequential(...)) (a Leaky becomes "
                        "neurosim.nn.LIF(beta=β, reset_timing='delayed'), the same spikes)")
    if not cls.__module__.startswith("torch.nn"):  # another library's, or the user's own: its own business
        return
    if isinstance(layer, nn.Sequential | nn.ModuleList):  # a torch container: what it holds
        for child_name, child in layer.named_children():
            if not _built_class(child).__module__.startswith("neurosim."):
                _check_foreign_layer(f"{name}.{child_name}", child, x_seq)
        return
    if isinstance(layer, _PER_STEP_KINDS):
        ours = _PER_STEP_TORCH.get(cls)
        use = ("neurosim.nn.Flatten() (each step's features: [T, B, N])" if cls is nn.Flatten else
               f"neurosim.nn.{ours} (the same arguments, over every step at once)" if ours else
               f"neurosim.nn.TimeDistributed(torch.nn.{cls.__name__}(...)) (every step at once, time folded into "
               "the batch)")
        raise TypeError(f"Sequential: {what} takes one time step [B, ...] per call, but Sequential passes every "
                        f"layer [T, B, ...] (here {tuple(x_seq.shape)}): use {use}")
    if isinstance(layer, nn.modules.dropout._DropoutNd) and layer.training and layer.p > 0:
        warnings.warn(f"Sequential: {what} draws a new mask at every time step; neurosim.nn.Dropout({layer.p}) keeps "
                      "one mask for all steps (the SLTT paper's, and what running T in chunks with the carried state "
                      "relies on)", RuntimeWarning, stacklevel=2)


#: samples (time steps × batch) per layer call that keep a conv layer's activations in CPU cache; measured on the
#: foundation benchmark's conv SNN (2 threads): chunks of 64–160 samples run BPTT about 2× faster at T = 50 than
#: one call over all 1,600 (benchmarks/results/train_vs_snntorch.json).
CHUNK_SAMPLES = 128


def time_chunk(model: nn.Module, x_seq: torch.Tensor) -> int:
    """Time steps per call for :func:`run_chunked`: about :data:`CHUNK_SAMPLES` samples per chunk on CPU.

    No chunking (all ``T`` steps at once) on GPUs, where one large call is fastest, and when a BatchNorm layer is in
    training mode, whose batch statistics are taken over all ``T·B`` samples of the call.
    """
    T, B = x_seq.shape[0], max(1, x_seq.shape[1])
    if x_seq.device.type != "cpu":
        return T
    if _training_batch_norm(model):
        return T
    return max(1, min(T, -(-CHUNK_SAMPLES // B)))


def _training_batch_norm(model: nn.Module) -> str | None:
    """The name of a BatchNorm layer of ``model`` in training mode (None if there is none)."""
    return next((name for name, m in model.named_modules()
                 if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training), None)


def check_steps(steps: Any, name: str = "time_chunk") -> int:
    """``steps`` if it is a whole number of time steps >= 1, else a ValueError naming ``name``."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"{name} must be a whole number of time steps >= 1, got {steps!r}")
    return steps


def as_float(x_seq: torch.Tensor) -> torch.Tensor:
    """Integer and boolean frames (event counts of a compact batch, :meth:`neurosim.data.FrameLoader.iter_from`
    with ``compact=True``) as float32, the values a FrameLoader's float batch holds; float tensors as they are.

    Where a batch is consumed a step or a chunk of steps at a time (SLTT, :func:`run_chunked`), converting each
    slice as it is run keeps one float32 copy of a slice instead of the whole ``[T, B, ...]`` batch in memory.

    Example:
        >>> import torch
        >>> as_float(torch.tensor([[0, 3]], dtype=torch.uint8))
        tensor([[0., 3.]])
    """
    if x_seq.is_floating_point():
        return x_seq
    if x_seq.is_complex():
        raise TypeError(f"x_seq must be real frames, got {x_seq.dtype}")
    return x_seq.to(torch.float32)


def run_chunked(model: nn.Module, x_seq: torch.Tensor, state: Any = None, steps: int | None = None, *,
                convert: Callable[[torch.Tensor], torch.Tensor] | None = None):
    """``model(x_seq, state)`` computed ``steps`` time steps at a time with the state carried between calls.

    The result (outputs, final state, gradients through the outputs) equals one call over all steps — the
    chunked-equals-full property of every stateful layer — but each layer works on a cache-sized slab instead of
    ``[T·B, ...]`` at once. ``steps=None`` picks :func:`time_chunk`. Integer or boolean ``x_seq`` (a compact batch
    of event counts) is converted to float32 one chunk at a time (:func:`as_float`): only a chunk's float copy is
    made, not the whole batch's. ``convert`` replaces :func:`as_float` where a model takes another input (a
    fixed-point chip's float64, or the counts as they are).
    """
    convert = as_float if convert is None else convert
    T = x_seq.shape[0]
    steps = time_chunk(model, x_seq) if steps is None else check_steps(steps, "steps")
    if steps < T and (bn := _training_batch_norm(model)):
        warnings.warn(f"time_chunk = {steps} runs all {T} steps in one call instead: BatchNorm {bn!r} in training "
                      "mode takes its statistics over all T·B samples of the call", RuntimeWarning, stacklevel=3)
        steps = T
    if steps >= T:
        return model(convert(x_seq), state)
    outs = []
    for start in range(0, T, steps):
        out, state = model(convert(x_seq[start:start + steps]), state)
        outs.append(out)
    return torch.cat(outs), state


def detach_state(state: Any) -> Any:
    """Detach every tensor in a (nested) state: dicts, tuples, NamedTuples, tensors, None."""
    if isinstance(state, torch.Tensor):
        return state.detach()
    if isinstance(state, dict):
        return {k: detach_state(v) for k, v in state.items()}
    if isinstance(state, tuple) and hasattr(state, "_fields"):
        return type(state)(*(detach_state(v) for v in state))
    if isinstance(state, (list, tuple)):
        return type(state)(detach_state(v) for v in state)
    return state

"""Training methods own how gradients flow through time; models never change between methods.

A method computes one batch's gradients: ``forward_backward(model, x_seq, y, loss) -> StepOutput``.
It accumulates into ``.grad`` (the Trainer zeroes gradients, clips, and steps the optimizer). ``model`` may be
wrapped in DistributedDataParallel (data-parallel runs): a method with several backward passes per batch runs all
but the last under :func:`neurosim.training.distributed.no_sync`.
Register new methods with :func:`register_method`; SLTT and SLTT-K live in :mod:`neurosim.training.sltt`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import torch

from neurosim.nn.layers import run_chunked
from neurosim.training.distributed import unwrap
from neurosim.training.losses import Loss

__all__ = ["BPTT", "StepOutput", "TrainingMethod", "get_method", "register_method", "METHODS"]


@dataclass
class StepOutput:
    """What one batch produced: the loss value and the (detached) output sequence ``[T, B, C]``."""

    loss: float
    out_seq: torch.Tensor
    backward_passes: int = 1


def check_batch(x_seq: torch.Tensor, y: torch.Tensor, method: str) -> int:
    """``T`` of a training batch, after checking what every method needs: ``x_seq`` time-first ``[T, B, ...]``
    with ``T >= 1``, and one integer class target per sample, ``y`` of shape ``[B]``."""
    if not isinstance(x_seq, torch.Tensor) or x_seq.dim() < 3:
        shape = tuple(x_seq.shape) if isinstance(x_seq, torch.Tensor) else type(x_seq).__name__
        raise ValueError(f"{method}: x_seq must be time-first [T, B, features...], got {shape}")
    if x_seq.shape[0] == 0 or x_seq.shape[1] == 0:
        empty = "time steps" if x_seq.shape[0] == 0 else "samples"
        raise ValueError(f"{method}: x_seq {tuple(x_seq.shape)} has no {empty}")
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != (x_seq.shape[1],) or y.is_floating_point():
        what = f"{y.dtype} {tuple(y.shape)}" if isinstance(y, torch.Tensor) else type(y).__name__
        hint = ""
        if isinstance(y, torch.Tensor) and tuple(y.shape) == (x_seq.shape[0],):
            hint = " (is x_seq missing its time dimension? one step is x_seq[None])"
        raise ValueError(f"{method}: y must hold one integer class per sample, shape [B] = ({x_seq.shape[1]},) "
                         f"for x_seq {tuple(x_seq.shape)}, got {what}{hint}")
    return x_seq.shape[0]


class TrainingMethod(Protocol):
    name: str

    def forward_backward(self, model: torch.nn.Module, x_seq: torch.Tensor, y: torch.Tensor,
                         loss: Loss) -> StepOutput: ...


@dataclass
class BPTT:
    """Backpropagation through time: one forward over all ``T`` steps, one backward through the full graph.

    Memory grows linearly with ``T`` (every step's activations are kept for the backward pass). The forward runs
    in time chunks with the state carried (:func:`neurosim.nn.run_chunked`): the same graph and gradients as one
    call, faster on CPU because each layer's activations stay in cache.

    Args:
        time_chunk: time steps per forward call; None picks :func:`neurosim.nn.time_chunk` (no chunking on GPU or
            with BatchNorm in training mode).
    """

    time_chunk: int | None = None
    name: str = "bptt"

    def forward_backward(self, model, x_seq, y, loss):
        check_batch(x_seq, y, "BPTT")
        out_seq, _ = run_chunked(model, x_seq, steps=self.time_chunk) if _is_sequential(model) else model(x_seq)
        value = loss(out_seq, y)
        value.backward()
        return StepOutput(float(value.detach()), out_seq.detach())


def _is_sequential(model) -> bool:
    return getattr(unwrap(model), "stateful", False)


METHODS: dict[str, Callable[..., TrainingMethod]] = {"bptt": lambda time_chunk=None, **_: BPTT(time_chunk)}


def register_method(name: str, factory: Callable[..., TrainingMethod]) -> None:
    """Make a method available by name to configs and the CLI (``factory(**options) -> method``)."""
    METHODS[name] = factory


def get_method(name: str, **options) -> TrainingMethod:
    """A training method by name (``bptt``, plus any registered, e.g. ``sltt``, ``sltt_k``)."""
    if name not in METHODS:
        try:  # SLTT registers itself on import
            import neurosim.training.sltt  # noqa: F401
        except ImportError:
            pass
    if name not in METHODS:
        raise ValueError(f"unknown training method {name!r}; available: {sorted(METHODS)}")
    return METHODS[name](**options)

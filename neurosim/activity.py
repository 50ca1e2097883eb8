"""Record what a model's layers emit while it runs, without changing its outputs.

:func:`record_outputs` attaches temporary forward hooks to chosen layers (by default every spiking layer), runs the
model once under ``no_grad`` and returns each layer's output sequence. The hooks are removed afterwards, even on
error. (The hardware adapters' ``ActivityProfile`` is built from these recordings.)
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from neurosim.nn import LIF

__all__ = ["record_outputs"]


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

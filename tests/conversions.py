"""A context manager for tests of compact (integer) batches: the shapes of the integer → float copies made inside it."""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode


class IntToFloatCopies(TorchDispatchMode):
    """Records in ``.shapes`` the shape of every integer (or boolean) → float tensor the torch ops run inside the
    block make: where a batch of event counts is converted, and how much of it at a time; ``.dtypes`` their float
    dtypes, in the same order."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[int, ...]] = []
        self.dtypes: list[torch.dtype] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func is torch.ops.aten._to_copy.default and not args[0].is_floating_point() and out.is_floating_point():
            self.shapes.append(tuple(out.shape))
            self.dtypes.append(out.dtype)
        return out

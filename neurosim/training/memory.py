"""How much memory training needs: the bytes autograd keeps for the backward pass.

:class:`SavedTensorMeter` counts, through :func:`torch.autograd.graph.saved_tensors_hooks`, every tensor saved for
backward while it is alive, and keeps the peak. It is exact, deterministic and device-independent — unlike process
RSS or CUDA allocator statistics it measures only what the training method itself decides to keep, which is the
quantity SLTT makes independent of the number of time steps (Meng et al., ICCV 2023, Sec. 4).

Example:
    >>> import torch
    >>> w = torch.ones(3, requires_grad=True)
    >>> with SavedTensorMeter() as meter:
    ...     loss = (w * torch.ones(3)).sum()     # saves the other operand: 3 floats
    ...     loss.backward()
    >>> meter.peak_bytes, meter.live_bytes
    (12, 0)
"""

from __future__ import annotations

import torch

__all__ = ["SavedTensorMeter"]


class _Held:
    """A saved tensor with its size; releasing it (autograd freeing the graph) lowers the meter's live count."""

    __slots__ = ("tensor", "nbytes", "meter")

    def __init__(self, tensor: torch.Tensor, nbytes: int, meter: "SavedTensorMeter"):
        self.tensor, self.nbytes, self.meter = tensor, nbytes, meter

    def __del__(self):
        self.meter.live_bytes -= self.nbytes


class SavedTensorMeter:
    """Context manager measuring the peak bytes held by autograd for backward inside its block.

    Attributes:
        peak_bytes: the most bytes saved for backward at any one moment.
        live_bytes: bytes still held now (0 once every graph built inside the block has been freed).

    Tensors saved twice (e.g. a weight used at every step) are counted each time they are saved: that is what
    grows with T when a method keeps a graph per step, even though the storage is shared.
    """

    def __init__(self) -> None:
        self.peak_bytes = 0
        self.live_bytes = 0
        self._hooks = None

    def _pack(self, t: torch.Tensor) -> _Held:
        n = t.numel() * t.element_size()
        self.live_bytes += n
        self.peak_bytes = max(self.peak_bytes, self.live_bytes)
        return _Held(t, n, self)

    @staticmethod
    def _unpack(held: _Held) -> torch.Tensor:
        return held.tensor

    def __enter__(self) -> "SavedTensorMeter":
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)
        self._hooks = None

    @property
    def peak_mb(self) -> float:
        return self.peak_bytes / 2**20

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

import ctypes
import os
import sys

import torch

__all__ = ["SavedTensorMeter", "TrainingMemoryError", "cpu_allocator_tuned", "is_out_of_memory", "tune_cpu_allocator"]

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers (malloc.h)
_tuned: bool | None = None


def cpu_allocator_tuned() -> bool:
    """Whether :func:`tune_cpu_allocator` has put its settings in force in this process."""
    return bool(_tuned)


def tune_cpu_allocator(mmap_threshold_mb: int = 32, trim_threshold_mb: int = 128) -> bool:
    """Stop glibc's ``malloc`` from returning training buffers to the OS after every step (Linux/glibc only).

    Training allocates and frees the same multi-megabyte buffers every iteration. glibc's default policy (a
    dynamic mmap threshold, and trimming the heap top above twice that) hands many of them back to the kernel,
    and each page is then faulted in again on the next iteration: on the 2-core benchmark machine neurosim's
    BPTT at T = 50, batch 32 took 15,000–22,000 minor page faults per iteration and 139–150 ms; with
    allocations up to ``mmap_threshold_mb`` served from the heap and up to ``trim_threshold_mb`` of free heap
    kept, it takes ~2 faults and 119–128 ms (SLTT, whose buffers are one step's size, is unaffected). The price
    is that up to ``trim_threshold_mb`` of freed memory stays with the process.

    This is process-wide (``mallopt``), like PyTorch's CPU tuning guide's advice to preload jemalloc/tcmalloc.
    The :class:`~neurosim.training.Trainer` calls it once for CPU training unless ``tune_allocator=False``.
    Nothing is changed where the user already configured malloc (``MALLOC_*`` or ``GLIBC_TUNABLES`` in the
    environment), or off glibc.

    Returns:
        True when the settings are in force (set by this or an earlier call), False when left alone.
    """
    global _tuned
    if _tuned is not None:
        return _tuned
    _tuned = False
    if not sys.platform.startswith("linux") or any(
            k.startswith("MALLOC_") or k == "GLIBC_TUNABLES" for k in os.environ):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # glibc only: there the parameter numbers below mean what they say
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success; glibc caps the mmap threshold at 32 MiB on 64-bit
    _tuned = bool(mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold_mb) << 20)
                  and mallopt(_M_TRIM_THRESHOLD, int(trim_threshold_mb) << 20))
    return _tuned


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


class TrainingMemoryError(MemoryError):
    """A training step ran out of memory; the message says which batch, what it held and what to change (for BPTT:
    SLTT, whose memory does not grow with the number of time steps)."""


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is an allocation that failed: Python's ``MemoryError``, torch's ``OutOfMemoryError`` (CUDA)
    or the ``RuntimeError`` torch's CPU allocator raises (``DefaultCPUAllocator: can't allocate memory``, where the
    process has a memory limit: ``ulimit -v``, a container's)."""
    kinds = tuple(k for k in (getattr(torch, "OutOfMemoryError", None), torch.cuda.OutOfMemoryError) if k is not None)
    if isinstance(error, (MemoryError, *kinds)):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and ("DefaultCPUAllocator" in text or "out of memory" in text.lower())


def memory_advice(method: str, time_steps: int, input_mb: float, time_chunk: int | None = None,
                  input_dtype: str = "float32") -> str:
    """What to change when a training step of ``method`` (``bptt``, ``sltt``, ``sltt_k``) ran out of memory on a
    batch of ``time_steps`` steps whose input takes ``input_mb`` MiB (frames of ``input_dtype``: float32, or a
    compact batch's uint8 event counts; O(T) whatever the method)."""
    if method == "bptt":
        return (f"BPTT keeps every one of the T = {time_steps} steps for its backward pass, so its memory grows with T: "
                "train with --set train.method=sltt train.loss=tet, which keeps one step's (or sltt_k with train.k, "
                "faster; README, 'Long sequences: SLTT'), or lower data.batch_size or data.time_steps")
    chunk = "" if not time_chunk or time_chunk == 1 else (f"lower train.time_chunk ({time_chunk} steps are kept per "
                                                          "backward pass; 1 keeps one), or ")
    return (f"{method.upper().replace('_', '-')} keeps one step's memory whatever T is, but the batch's input frames "
            f"themselves take {input_mb:.0f} MiB ({input_dtype}, O(T)) and one step's memory grows with the batch and "
            f"the model: {chunk}lower data.batch_size, or data.time_steps")

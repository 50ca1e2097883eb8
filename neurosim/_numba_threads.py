"""How neurosim's parallel numba kernels (CPU max pooling, the LIF scan) share numba's thread pool with torch.

* One lock serialises the launches: numba's fallback ``workqueue`` threading layer must not be entered from two
  threads at once (a DataLoader thread, a user's thread pool).
* Each launch first sets numba's thread count to ``torch.get_num_threads()`` (within numba's own limit), so
  ``torch.set_num_threads`` governs both.
* A process forked after a kernel ran (a ``fork`` multiprocessing worker) must not launch them again: numba's
  default OpenMP layer (GNU libgomp) is not fork-safe. :func:`numba_usable` is then False and callers use
  torch ops; graphs recorded before the fork check it again in their backward.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

import numba
import torch

__all__ = ["kernel_threads", "numba_usable"]

_LOCK = threading.Lock()
_ran = False  # a kernel has run in this process (numba's thread pool is up)
_forked = False  # this process was forked from one where a kernel had run


def _after_fork_in_child() -> None:
    global _forked
    _forked = _forked or _ran


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def numba_usable() -> bool:
    """False in a process forked after the kernels ran (numba's thread pool may not have survived the fork)."""
    return not _forked


@contextlib.contextmanager
def kernel_threads() -> Iterator[None]:
    """Hold the kernel lock, with numba's thread count set to torch's, around one kernel launch.

    The first launch starts numba's OpenMP pool, which sets the OpenMP thread count to ``NUMBA_NUM_THREADS``
    (all cores). torch reads that same count (both use the one libgomp loaded), so a ``torch.set_num_threads(1)``
    made before would silently become all cores (measured: two 1-thread DDP processes on 2 cores ran 105–230
    instead of 46 ms per step). torch's count is put back after that launch.
    """
    global _ran
    with _LOCK:
        first, threads = not _ran, torch.get_num_threads()
        _ran = True
        try:
            numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
            yield
        finally:
            if first and torch.get_num_threads() != threads:
                torch.set_num_threads(threads)

"""A shorter OpenMP spin-wait, so that two CPU jobs sharing the cores do not stall each other.

After every parallel region GNU OpenMP (libgomp: torch's CPU thread pool and numba's ``omp`` layer each load one)
keeps its idle threads busy-waiting for ~300,000 spins (about 3 ms) before they sleep. A job that has the cores to
itself loses nothing by it. Two jobs on the same cores (two trainings, a training beside the test suite) can: a
spinning thread burns the time slice that the thread it waits for needs, at every barrier. On the 2-core benchmark
machine two BPTT trainings of 2 threads each ran at ~1.8 s per iteration in 5 of 6 pairs over two runs, and at
112–116 ms in the other (45–50 ms alone). With a 10,000-spin wait (~0.1 ms) they run at 220–244 ms in every pair,
and a lone job is as fast as with the default (``benchmarks/bench_shared_cores.py``; one thread per job is faster
still, 80–90 ms). Shorter waits cost a lone job time (ad-hoc runs:
1,000 spins ~10 %, 3,000 spins 4–7 %).

:func:`shorten_spin_wait` runs when ``neurosim`` is imported: it sets ``GOMP_SPINCOUNT`` unless the user chose
the waiting behaviour (``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY`` in the environment). libgomp reads it once, when
it is loaded, so it reaches torch's thread pool only where ``neurosim`` is imported before torch (the ``neurosim``
command; in a script, import neurosim first or export the variable), numba's always (it loads at the first
kernel), and child processes. ``GOMP_SPINCOUNT=300000`` restores libgomp's default wait.
"""

from __future__ import annotations

import os

__all__ = ["SPIN_COUNT", "shorten_spin_wait"]

SPIN_COUNT = "10000"  # ~0.1 ms (libgomp's estimate: 100,000 spins per ms)


def shorten_spin_wait(environ=os.environ) -> bool:
    """Set ``GOMP_SPINCOUNT`` to :data:`SPIN_COUNT` unless the environment already chooses how OpenMP waits.

    Returns:
        True when it was set here, False when the user's setting was kept.
    """
    if "GOMP_SPINCOUNT" in environ or "OMP_WAIT_POLICY" in environ:
        return False
    environ["GOMP_SPINCOUNT"] = SPIN_COUNT
    return True

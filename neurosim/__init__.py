"""neurosim — spiking neural networks on event data, continual learning, and hardware estimates.

Subpackages follow one direction of dependency (see DESIGN.md): ``functional`` (pure maths) →
``nn`` (modules) → ``training`` / ``continual`` → ``cli``.
"""

from neurosim._numba_cache import use_writable_numba_cache as _use_writable_numba_cache
from neurosim._openmp import shorten_spin_wait as _shorten_spin_wait

__version__ = "0.1.0"

_shorten_spin_wait()  # before torch loads OpenMP, where neurosim is imported first (see neurosim._openmp)
_use_writable_numba_cache()  # before the first cached kernel compiles (see neurosim._numba_cache)

"""SplitMix64 (Steele, Lea & Flood, OOPSLA 2014): the counter-based hash that picks augmentation draws
(:mod:`neurosim.data.augment`), validation samples (:func:`neurosim.data.pipeline.split_validation`) and an RRAM
chip's read noise (:func:`neurosim.hardware.nonideal.read_normals`) as fixed functions of their inputs, the same in
every process and numpy version."""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["GOLDEN", "mix", "mix_one"]

GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # the sequence's increment: 2**64 / the golden ratio


def mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's output function on a uint64 array (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


@numba.njit(cache=True, nogil=True)
def mix_one(z):  # pragma: no cover - compiled
    """:func:`mix` of one uint64, for numba kernels."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))

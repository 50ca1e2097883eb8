"""Seeded models and inputs shared by the chip reference tests (Lava, sPyNNaker)."""

from __future__ import annotations

import numpy as np
import torch


def seeded(n: int) -> np.random.Generator:
    """Seed torch (the models' initial weights) and return a numpy generator of the same seed (their inputs)."""
    torch.manual_seed(n)
    return np.random.default_rng(n)


def event_counts(rng, t, b, *shape, high=3) -> np.ndarray:
    """Integer event counts ``[T, B, *shape]`` in ``[0, high)``."""
    return rng.integers(0, high, size=(t, b, *shape))


def random_bias(layer, rng, scale: float) -> None:
    """Set ``layer.bias`` to normal draws of standard deviation ``scale``."""
    with torch.no_grad():
        layer.bias.copy_(torch.from_numpy(rng.normal(0, scale, layer.bias.shape)))

"""Seeded models and inputs shared by the chip tests (the Lava and sPyNNaker references, Speck, errors)."""

from __future__ import annotations

import numpy as np
import torch

from neurosim import nn as nsn


def seeded(n: int) -> np.random.Generator:
    """Seed torch (the models' initial weights) and return a numpy generator of the same seed (their inputs)."""
    torch.manual_seed(n)
    return np.random.default_rng(n)


def event_counts(rng, t, b, *shape, high=3) -> np.ndarray:
    """Integer event counts ``[T, B, *shape]`` in ``[0, high)``."""
    return rng.integers(0, high, size=(t, b, *shape))


def counts(shape, seed: int = 1, high: int = 3) -> torch.Tensor:
    """Seeded integer event counts of ``shape`` in ``[0, high)``, as a float tensor."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, high, shape, generator=g).float()


def run_recorded(chip, x: np.ndarray, record) -> None:
    """Run ``chip`` on ``x`` (as float64) with ``record(module, output)`` hooked on each of its neuron layers; the
    hooks are removed afterwards, even on error."""
    from neurosim.hardware.fixed_point import ChipNeuron

    handles = [m.register_forward_hook(lambda mod, _inp, out: record(mod, out)) for m in chip.net
               if isinstance(m, ChipNeuron)]
    try:
        chip(torch.from_numpy(x).double())
    finally:
        for h in handles:
            h.remove()


def random_bias(layer, rng, scale: float) -> None:
    """Set ``layer.bias`` to normal draws of standard deviation ``scale``."""
    with torch.no_grad():
        layer.bias.copy_(torch.from_numpy(rng.normal(0, scale, layer.bias.shape)))


def li_readout_mlp(rng) -> nsn.Sequential:
    """10 → 14 LIF (β 0.8) → 5 LI read-out (β 0.9), the read-out's bias drawn from ``rng``."""
    model = nsn.Sequential(nsn.Linear(10, 14), nsn.LIF(beta=0.8, v_th=1.0, reset="zero"),
                           nsn.Linear(14, 5), nsn.LI(0.9))
    random_bias(model[2], rng, 0.3)
    return model


def cuba_mlp(alpha: float, rng) -> nsn.Sequential:
    """10 → 12 → 5 current-based layers (α as given; β 0.9 and 0.7), the first bias drawn from ``rng``."""
    model = nsn.Sequential(nsn.Linear(10, 12), nsn.CubaLIF(alpha=alpha, beta=0.9, v_th=1.0, reset="zero"),
                           nsn.Linear(12, 5), nsn.CubaLIF(alpha=alpha, beta=0.7, v_th=0.5, reset="zero"))
    random_bias(model[0], rng, 0.05)
    return model


def rlif_mlp(connectivity: str, rng) -> nsn.Sequential:
    """8 → 10 recurrent (``connectivity``) → 4 LIF, the feedback weights drawn from ``rng`` (σ 0.6)."""
    model = nsn.Sequential(nsn.Linear(8, 10),
                           nsn.RLIF(10, beta=0.9, v_th=1.0, reset="zero", connectivity=connectivity),
                           nsn.Linear(10, 4), nsn.LIF(beta=0.9, v_th=1.0, reset="zero"))
    with torch.no_grad():
        rec = model[1].recurrent
        rec.weight.copy_(torch.from_numpy(rng.normal(0, 0.6, rec.weight.shape)))
    return model

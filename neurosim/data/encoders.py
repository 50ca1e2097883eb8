"""Spike encoders for static (frame) data: rate, latency and delta coding, time-first.

For users who bring MNIST-style images instead of event data. Every encoder returns a time-first float tensor:
an input batch ``[B, ...]`` becomes ``[T, B, ...]`` and a single image ``[...]`` becomes ``[T, ...]`` (the encoders
work element-wise, so "batch" is just the leading input dimension). Inputs may be torch tensors or numpy arrays;
the output is on the input's device (float32 unless the input is float64).

* :func:`rate_encode` — each pixel spikes at every step with probability ``gain·x + offset`` (``bernoulli``,
  binary output; equal to ``snntorch.spikegen.rate`` under the same seed), or emits ``Poisson(gain·x)`` spikes per
  step (``poisson``, counts). Mean output per step = intensity. Seeded with a private ``torch.Generator``.
* :func:`latency_encode` — one spike per pixel; bright pixels first. Logarithmic (an RC neuron charged by the
  pixel: ``t = τ·ln(x / (x − threshold))``) or linear (``t = τ·(1 − x)``), with ``threshold``, ``normalize`` and
  ``clip`` as in ``snntorch.spikegen.latency`` (equal output where the spike falls inside the window; spikes later
  than ``T − 1`` are dropped, as snnTorch does with ``bypass=True``).
* :func:`delta_encode` — delta modulation of a time series ``[T, ...]`` (e.g. video frames): a spike where the
  value rose by at least ``threshold`` since the previous step, optionally ``−1`` "off" spikes where it fell by at
  least ``threshold`` (``snntorch.spikegen.delta``).

Rate and latency coding need intensities in ``[0, 1]``: anything else (e.g. uint8 images in 0..255, or NaN)
raises ``ValueError`` saying what was found.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

__all__ = ["delta_encode", "latency_encode", "rate_encode"]


def _as_tensor(data, name: str = "data") -> torch.Tensor:
    if isinstance(data, np.ndarray):
        if not data.dtype.isnative:  # big-endian (or little on a big-endian host): torch reads native order only
            data = data.astype(data.dtype.newbyteorder("="))
        data = torch.from_numpy(np.ascontiguousarray(data))
    elif not isinstance(data, torch.Tensor):
        data = torch.as_tensor(data)
    if data.is_complex():
        raise TypeError(f"{name} must be real, got {data.dtype}")
    if not data.is_floating_point():
        data = data.to(torch.float32)
    elif data.dtype not in (torch.float32, torch.float64):
        data = data.to(torch.float32)
    return data


def _check_unit_range(x: torch.Tensor, what: str) -> None:
    if x.numel() == 0:
        return
    if torch.isnan(x).any():
        raise ValueError(f"{what}: input contains NaN")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 1:
        hint = " (uint8 images: divide by 255 first)" if hi > 1 and hi <= 255 and lo >= 0 else ""
        raise ValueError(f"{what} needs intensities in [0, 1], got values in [{lo:g}, {hi:g}]{hint}")


#: the largest whole number each output dtype holds together with every smaller one (a Poisson count per step)
_MAX_EXACT_COUNT = {torch.float32: 2.0 ** 24, torch.float64: 2.0 ** 53}


def _check_steps(num_steps) -> int:
    if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)) or num_steps < 1:
        raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")
    return int(num_steps)


def _generator(seed: int | None, generator: torch.Generator | None) -> torch.Generator | None:
    """The generator to draw from: ``generator``, a CPU generator seeded with ``seed`` (the same spikes on every
    device: CPU and CUDA generators give different streams), or None for torch's global RNG."""
    if generator is not None and seed is not None:
        raise ValueError("pass either seed or generator, not both")
    if generator is not None:
        return generator
    if seed is None:
        return None  # torch's global RNG
    return torch.Generator().manual_seed(int(seed))


def _draw(sample, rate: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    """``sample(rate, generator=g)`` on the generator's device, returned on ``rate``'s (a CPU generator cannot draw
    on a GPU)."""
    if g is None or g.device == rate.device:
        return sample(rate, generator=g)
    return sample(rate.to(g.device), generator=g).to(rate.device)


def rate_encode(data, num_steps: int, *, gain: float = 1.0, offset: float = 0.0, method: str = "bernoulli",
                seed: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Rate-code intensities in ``[0, 1]``: ``[B, ...]`` → ``[num_steps, B, ...]`` (or ``[...]`` → ``[T, ...]``).

    Args:
        data: intensities in ``[0, 1]`` (tensor or array).
        num_steps: number of time steps ``T``.
        gain, offset: the firing probability per step (``bernoulli``) or the mean count (``poisson``) is
            ``gain·x + offset`` — for ``bernoulli`` clipped to ``[0, 1]`` as snnTorch does.
        method: ``bernoulli`` — binary spikes, independently at each step (``snntorch.spikegen.rate``);
            ``poisson`` — spike *counts* per step drawn from ``Poisson(gain·x + offset)`` (a Poisson process
            sampled in bins; values may exceed 1 for bright pixels with ``gain > 1``, mean count = rate).
        seed: seed of a private generator (same seed, same spikes); None uses torch's global RNG.
        generator: a ``torch.Generator`` to draw from instead of ``seed``.

    Returns:
        Float tensor ``[T, *data.shape]``; mean over time ≈ ``gain·x + offset``.

    Raises:
        ValueError: intensities outside ``[0, 1]`` or NaN; ``num_steps < 1``; unknown ``method``; for ``poisson``,
            ``gain·x + offset`` negative or above 2**24 (float32 output; 2**53 for float64), the largest count the
            output holds exactly.
    """
    if method not in ("bernoulli", "poisson"):
        raise ValueError(f"method must be 'bernoulli' or 'poisson', got {method!r}")
    steps = _check_steps(num_steps)
    for name, value in (("gain", gain), ("offset", offset)):
        if not math.isfinite(value):
            raise ValueError(f"rate_encode: {name} must be a finite number, got {value!r}")
    x = _as_tensor(data)
    _check_unit_range(x, "rate_encode")
    g = _generator(seed, generator)
    rate = x.unsqueeze(0).repeat((steps,) + (1,) * x.dim()) * gain + offset
    if method == "bernoulli":
        return _draw(torch.bernoulli, rate.clamp(0.0, 1.0), g)
    if rate.numel() and float(rate.min()) < 0:
        raise ValueError(f"poisson rate_encode needs gain·x + offset >= 0, got {float(rate.min()):g}")
    limit = _MAX_EXACT_COUNT[rate.dtype]
    if rate.numel() and not float(rate.max()) <= limit:
        raise ValueError(f"poisson rate_encode needs gain·x + offset <= {limit:.0f} (2**{int(math.log2(limit))}, the "
                         f"largest count per step {rate.dtype} holds exactly; torch.poisson's counts overflow to "
                         f"negative numbers above ~9.2e18), got {float(rate.max()):g}: lower gain or offset")
    return _draw(torch.poisson, rate, g)


def latency_encode(data, num_steps: int, *, tau: float = 1.0, threshold: float = 0.01, linear: bool = False,
                   normalize: bool = False, clip: bool = False, first_spike_time: int = 0,
                   epsilon: float = 1e-7) -> torch.Tensor:
    """Time-to-first-spike code: one spike per element, earlier for larger values. ``[B, ...]`` → ``[T, B, ...]``.

    Spike times (as ``snntorch.spikegen.latency``):

    * log (default): ``t = τ·ln(x' / (x' − threshold)) + first_spike_time`` with ``x' = max(x, threshold + ε)``
      (a leaky RC neuron driven by ``x`` reaching ``threshold``); with ``normalize``, rescaled so the latest spike
      lands on step ``T − 1``.
    * linear: ``t = min(τ·(1 − x), τ·(1 − threshold)) + first_spike_time``; with ``normalize``,
      ``τ = T − 1 − first_spike_time`` (x = 1 fires at ``first_spike_time``, x ≤ threshold at ``T − 1``).

    The spike goes to step ``round(t)``; spikes with ``round(t) > T − 1`` fall outside the window and are dropped
    (snnTorch raises there unless ``bypass=True``, then drops them too). With ``clip``, elements below
    ``threshold`` do not spike at all.

    Args:
        data: intensities in ``[0, 1]``.
        num_steps: ``T``.
        tau: time constant in steps (> 0).
        threshold: in ``(0, 1)``; elements below it saturate to the latest time (or vanish with ``clip``).
        linear: linear instead of logarithmic code.
        normalize: stretch the code so the latest spike lands on step ``T − 1``.
        clip: drop spikes of elements below ``threshold``.
        first_spike_time: earliest spike step (a whole number).
        epsilon: keeps the log code finite at ``x = threshold`` (> 0).

    Raises:
        ValueError: intensities outside ``[0, 1]`` or NaN; bad ``threshold``, ``tau``, ``num_steps``,
            ``first_spike_time`` (not a whole number in ``[0, T − 1]``) or ``epsilon`` (not a positive finite
            number).
    """
    steps = _check_steps(num_steps)
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
    if not (tau > 0 and math.isfinite(tau)):
        raise ValueError(f"tau must be a positive finite number of steps, got {tau!r}")
    if (isinstance(first_spike_time, bool) or not isinstance(first_spike_time, numbers.Real)
            or not float(first_spike_time).is_integer() or not 0 <= first_spike_time <= steps - 1):
        raise ValueError(f"first_spike_time must be a whole number of steps in [0, num_steps - 1 = {steps - 1}], "
                         f"got {first_spike_time!r}")
    first_spike_time = int(first_spike_time)  # (2.0 is a whole number too, as snnTorch's latency takes it)
    if not (epsilon > 0 and math.isfinite(epsilon)):
        raise ValueError(f"epsilon must be a small positive finite number (it keeps the log code finite at "
                         f"x = threshold; default 1e-7), got {epsilon!r}")
    x = _as_tensor(data)
    _check_unit_range(x, "latency_encode")
    below = x < threshold
    if linear:
        if normalize:
            tau = steps - 1 - first_spike_time
        t = torch.clamp_max(-tau * (x - 1), -tau * (threshold - 1)) + first_spike_time
    else:
        xc = torch.clamp(x, min=threshold + epsilon)
        t = tau * torch.log(xc / (xc - threshold))
        if first_spike_time > 0:
            t = t + first_spike_time
        if normalize and x.numel():
            span = torch.max(t - first_spike_time)
            t = (t - first_spike_time) * (steps - first_spike_time - 1) / span + first_spike_time
    idx = torch.round(t).clamp_max(steps).long()  # (clamped first: a huge tau's time does not fit int64)
    keep = idx <= steps - 1
    if clip:
        keep = keep & ~below
    out = torch.zeros((steps,) + tuple(x.shape), dtype=x.dtype, device=x.device)
    out.scatter_(0, idx.clamp(0, steps - 1).unsqueeze(0), keep.unsqueeze(0).to(x.dtype))
    return out


def delta_encode(data, *, threshold: float = 0.1, off_spike: bool = False, padding: bool = False) -> torch.Tensor:
    """Delta modulation of a time series ``[T, ...]`` (``snntorch.spikegen.delta``): spikes where it changes.

    ``s[t] = 1`` where ``x[t] − x[t−1] ≥ threshold``; with ``off_spike``, ``s[t] = −1`` where
    ``x[t] − x[t−1] ≤ −threshold``. The step before the first is zeros (so a bright first frame spikes), or, with
    ``padding``, the first frame itself (no spikes at ``t = 0``).

    Args:
        data: time-first values ``[T, ...]`` (any real values; e.g. a video ``[T, B, H, W]``).
        threshold: change needed for a spike (> 0).
        off_spike: also emit ``−1`` for decreases.
        padding: compare the first step with itself instead of with zeros.

    Returns:
        Float tensor shaped like ``data`` with values in {0, 1} (or {−1, 0, 1} with ``off_spike``).

    Raises:
        ValueError: ``threshold <= 0``, a 0-d input, or NaN in the input.
    """
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0, got {threshold!r}")
    x = _as_tensor(data)
    if x.dim() == 0:
        raise ValueError("delta_encode needs a time-first series [T, ...], got a scalar")
    if x.numel() and torch.isnan(x).any():
        raise ValueError("delta_encode: input contains NaN")
    prev = torch.cat((x[:1] if padding else torch.zeros_like(x[:1]), x[:-1]))
    diff = x - prev
    out = (diff >= threshold).to(x.dtype)
    if off_spike:
        out = out - (diff <= -threshold).to(x.dtype)
    return out

"""A dynamic-vision-sensor (DVS) emulator: intensity frames in, tonic-format events out.

The pixel model follows v2e / ESIM (see ``REFERENCES.md`` "DVS emulation"; Hu, Liu & Delbruck, "v2e: From video
frames to realistic DVS events", CVPRW 2021; Rebecq et al., "ESIM", CoRL 2018):

1. **Photoreceptor.** Each pixel sees ``log(I + eps)``, passed through a first-order low-pass filter whose cut-off
   frequency grows with intensity (dim pixels are slow): ``f_c = cutoff_hz · (I + eps) / (1 + eps)``.
2. **Change detection.** The pixel remembers a log level ``M``. Every time the filtered log intensity moves by the
   pixel's contrast threshold ``C`` above (below) ``M`` it emits an ON (OFF) event and moves ``M`` by ``C``.
   ``C`` is drawn per pixel and polarity from ``N(contrast, contrast_sigma)``. Several crossings within one frame
   interval are spread evenly over the interval (linear interpolation of the crossing times).
3. **Refractory period.** An event closer than ``refractory_us`` to the pixel's previous event is dropped
   (the level ``M`` still moves, as in v2e).
4. **Noise.** Leak events: ``M`` slowly drifts down by ``contrast · r`` per second, so a static pixel emits an ON
   event about every ``1 / r`` seconds. As in v2e, the drift uses the *nominal* threshold ``contrast`` (a pixel whose
   own ``C`` is higher leaks more slowly), each pixel has its own rate ``r = leak_rate_hz · 10^(σ·z)``, ``z ~ N(0, 1)``,
   ``σ`` = ``leak_rate_cov_decades``, and starts at a random phase of its leak cycle (``M`` lowered by ``U(0, C)``
   at the first frame), so leak events come at unrelated times rather than all at once, and recordings shorter than
   ``1 / leak_rate_hz`` get their share. Shot noise: Poisson events at ``shot_noise_rate_hz`` per pixel, random
   polarity.

The output is a structured array in tonic's dtype (``x, y, t, p``; ``t`` in µs; ``p`` 1 = ON, 0 = OFF), sorted by
time, so every tonic transform applies to it. The emulator is deterministic for a given ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

__all__ = ["EVENT_DTYPE", "DVSParams", "emulate", "saccade_offsets", "render_shifted"]

EVENT_DTYPE = np.dtype([("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])
"""tonic's event dtype for N-MNIST-like data (``tonic.datasets.NMNIST.dtype``)."""


@dataclass(frozen=True)
class DVSParams:
    """Pixel parameters of the emulated sensor.

    Attributes:
        contrast: mean contrast threshold ``C`` in log-intensity units (v2e default-ish 0.2–0.3).
        contrast_sigma: per-pixel standard deviation of ``C`` (fixed-pattern mismatch).
        refractory_us: dead time after an event, in µs.
        cutoff_hz: photoreceptor low-pass cut-off at full intensity, in Hz; ``0`` disables the filter.
        leak_rate_hz: leak (background ON) event rate per pixel, in Hz: the median over pixels, each pixel's own
            rate spreading around it by ``leak_rate_cov_decades`` (the mean is ~4 % higher with the defaults).
        shot_noise_rate_hz: shot-noise event rate per pixel, in Hz.
        eps: offset inside ``log(I + eps)`` that keeps black pixels finite.
        leak_rate_cov_decades: per-pixel spread of the leak rate, in decades (standard deviation of
            ``log10`` of the rate; v2e's ``noise_rate_cov_decades``, default 0.1 there too); ``0``: every pixel
            leaks at ``leak_rate_hz``.
    """

    contrast: float = 0.25
    contrast_sigma: float = 0.03
    refractory_us: int = 500
    cutoff_hz: float = 300.0
    leak_rate_hz: float = 0.1
    shot_noise_rate_hz: float = 2.0
    eps: float = 0.05
    leak_rate_cov_decades: float = 0.1

    def __post_init__(self):
        for name in ("contrast", "eps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"DVSParams.{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("contrast_sigma", "refractory_us", "cutoff_hz", "leak_rate_hz", "shot_noise_rate_hz",
                     "leak_rate_cov_decades"):
            if not getattr(self, name) >= 0:  # (NaN fails too)
                raise ValueError(f"DVSParams.{name} must be >= 0, got {getattr(self, name)!r}")


_NEVER = np.iinfo(np.int64).max  # "no such event": later than any timestamp


@numba.njit(cache=True)
def _emulate(frames, times_us, contrast, contrast_sigma, refractory_us, cutoff_hz, leak_rate_hz, leak_cov_decades,
             shot_rate_hz, eps, seed, out):
    """Fill ``out`` ([capacity, 4]: x, y, t, p) and return the event count, or -1 if ``out`` is too small."""
    np.random.seed(seed)
    n_frames, height, width = frames.shape
    capacity = out.shape[0]
    c_on = np.empty((height, width))
    c_off = np.empty((height, width))
    next_shot = np.empty((height, width), dtype=np.int64)
    for i in range(height):
        for j in range(width):
            c_on[i, j] = max(0.01, contrast + contrast_sigma * np.random.standard_normal())
            c_off[i, j] = max(0.01, contrast + contrast_sigma * np.random.standard_normal())
            next_shot[i, j] = _next_arrival(times_us[0], shot_rate_hz)
    log_f = np.log(frames[0] + eps)
    level = log_f.copy()
    leak_drift = np.zeros((height, width))  # log units per second, nominal threshold × the pixel's leak rate
    if leak_rate_hz > 0.0:  # (drawn after the thresholds and first shot times: without leak, the same streams)
        for i in range(height):
            for j in range(width):
                rate = leak_rate_hz
                if leak_cov_decades > 0.0:
                    rate *= 10.0 ** (leak_cov_decades * np.random.standard_normal())
                leak_drift[i, j] = contrast * rate
                level[i, j] -= np.random.random() * c_on[i, j]  # a random phase of the pixel's leak cycle
    last_t = np.full((height, width), -(1 << 60), dtype=np.int64)
    n = 0
    for k in range(1, n_frames):
        t0 = times_us[k - 1]
        t1 = times_us[k]
        dt_us = t1 - t0
        dt_s = dt_us * 1e-6
        a = 2.0 * np.pi * cutoff_hz * dt_s / (1.0 + eps)
        for i in range(height):
            for j in range(width):
                intensity = frames[k, i, j]
                target = np.log(intensity + eps)
                if cutoff_hz > 0.0:
                    new = log_f[i, j] + min(1.0, a * (intensity + eps)) * (target - log_f[i, j])
                else:
                    new = target
                log_f[i, j] = new
                level[i, j] -= leak_drift[i, j] * dt_s
                diff = new - level[i, j]
                count = 0
                pol = 0
                step = 0.0
                if diff >= c_on[i, j]:
                    count = int(diff / c_on[i, j])
                    pol = 1
                    step = c_on[i, j]
                elif -diff >= c_off[i, j]:
                    count = int(-diff / c_off[i, j])
                    step = -c_off[i, j]
                # the interval's threshold crossings (spread evenly over it) and shot-noise arrivals, in time
                # order: the refractory period applies to whichever came first
                e = 0
                while True:
                    t_cross = t0 + (dt_us * (e + 1)) // count if e < count else _NEVER
                    t_shot = next_shot[i, j] if next_shot[i, j] <= t1 else _NEVER
                    if t_cross == _NEVER and t_shot == _NEVER:
                        break
                    if t_cross <= t_shot:
                        level[i, j] += step
                        e += 1
                        t = t_cross
                        p = pol
                    else:
                        t = t_shot
                        next_shot[i, j] = _next_arrival(t, shot_rate_hz)
                        if t <= t0:
                            continue
                        p = 1 if np.random.random() < 0.5 else 0
                    if t - last_t[i, j] < refractory_us:
                        continue
                    if n == capacity:
                        return -1
                    last_t[i, j] = t
                    out[n, 0] = j
                    out[n, 1] = i
                    out[n, 2] = t
                    out[n, 3] = p
                    n += 1
    return n


@numba.njit(cache=True)
def _next_arrival(t_us, rate_hz):
    """Time of the next event of a Poisson process of ``rate_hz`` after ``t_us`` (never if the rate is 0)."""
    if rate_hz <= 0.0:
        return _NEVER
    return t_us + 1 + int(np.random.exponential(1e6 / rate_hz))


def emulate(frames: np.ndarray, times_us: np.ndarray, params: DVSParams = DVSParams(), seed: int = 0) -> np.ndarray:
    """Events a DVS would emit while watching ``frames``.

    Args:
        frames: intensities ``[N, H, W]`` in ``[0, 1]`` (linear, not log), one per timestamp; the first frame sets
            the initial state and emits nothing.
        times_us: strictly increasing integer timestamps in µs, length ``N``.
        params: pixel model parameters.
        seed: seed of the per-pixel thresholds and the noise (same seed, same events).

    Returns:
        Events in :data:`EVENT_DTYPE` (``x`` column, ``y`` row), sorted by ``t`` (stable).
    """
    frames = np.asarray(frames, dtype=np.float64)
    times = np.asarray(times_us)
    if frames.ndim != 3:
        raise ValueError(f"frames must be [N, H, W], got shape {frames.shape}")
    if times.shape != (frames.shape[0],):
        raise ValueError(f"times_us must have one timestamp per frame ({frames.shape[0]}), got shape {times.shape}")
    if not np.issubdtype(times.dtype, np.integer):
        raise ValueError(f"times_us must be integers (µs), got dtype {times.dtype}")
    if frames.shape[0] > 1 and np.any(times[1:] <= times[:-1]):  # not np.diff: it wraps on unsigned ints
        raise ValueError("times_us must be strictly increasing")
    if frames.size and (np.nanmin(frames) < 0 or np.nanmax(frames) > 1 or np.isnan(frames).any()):
        raise ValueError("frames must hold intensities in [0, 1] (no NaN)")
    if frames.shape[0] < 2:
        return np.zeros(0, dtype=EVENT_DTYPE)
    capacity = max(4096, frames[0].size * 8)
    while True:
        out = np.empty((capacity, 4), dtype=np.int64)
        n = _emulate(frames, times.astype(np.int64), float(params.contrast), float(params.contrast_sigma),
                     int(params.refractory_us), float(params.cutoff_hz), float(params.leak_rate_hz),
                     float(params.leak_rate_cov_decades), float(params.shot_noise_rate_hz), float(params.eps),
                     int(seed) % (2**32), out)
        if n >= 0:
            break
        capacity *= 4  # rerun from the start with room for more (same seed, same events)
    out = out[:n]
    order = np.argsort(out[:, 2], kind="stable")
    events = np.empty(n, dtype=EVENT_DTYPE)
    for c, name in enumerate(EVENT_DTYPE.names):
        events[name] = out[order, c]
    return events


def saccade_offsets(times_us: np.ndarray, leg_us: int = 105_000,
                    vertices: tuple[tuple[float, float], ...] = ((0.0, 0.0), (3.5, 7.0), (7.0, 0.0), (0.0, 0.0)),
                    smooth: bool = True) -> np.ndarray:
    """Sensor displacement ``(dx, dy)`` in pixels at each time, along N-MNIST's three-saccade triangle.

    The path visits ``vertices`` with ``leg_us`` per leg (Orchard et al., "Converting static image datasets to
    spiking neuromorphic datasets using saccades", Front. Neurosci. 2015). With ``smooth`` each leg follows a
    raised-cosine velocity profile (the pan-tilt unit accelerates and brakes), which reproduces the event bursts in
    the middle of each saccade seen in real recordings; otherwise the speed is constant.
    """
    v = np.asarray(vertices, dtype=np.float64)
    t = np.asarray(times_us, dtype=np.float64)
    legs = len(v) - 1
    s = np.clip(t / leg_us, 0, legs)
    leg = np.minimum(s.astype(np.int64), legs - 1)
    frac = s - leg
    if smooth:
        frac = 0.5 - 0.5 * np.cos(np.pi * frac)
    return v[leg] + (v[leg + 1] - v[leg]) * frac[:, None]


def render_shifted(image: np.ndarray, canvas_hw: tuple[int, int], offsets: np.ndarray,
                   background: float = 1.0) -> np.ndarray:
    """Frames of ``image`` (placed at the canvas' top-left) shifted by sub-pixel ``offsets`` ``[N, 2]`` (dx, dy).

    Bilinear interpolation; canvas pixels the image does not cover show ``background``. Returns ``[N, H, W]``.
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"image must be 2-D [H, W], got shape {img.shape}")
    offs = np.asarray(offsets, dtype=np.float64).reshape(-1, 2)
    return _render(img, int(canvas_hw[0]), int(canvas_hw[1]), offs, float(background))


@numba.njit(cache=True)
def _sample(img, y, x, background):
    ih, iw = img.shape
    if y < 0 or y >= ih or x < 0 or x >= iw:
        return background
    return img[y, x]


@numba.njit(cache=True)
def _render(img, h, w, offsets, background):
    out = np.empty((offsets.shape[0], h, w))
    for k in range(offsets.shape[0]):
        dx = offsets[k, 0]
        dy = offsets[k, 1]
        for i in range(h):
            sy = i - dy
            y0 = int(np.floor(sy))
            fy = sy - y0
            for j in range(w):
                sx = j - dx
                x0 = int(np.floor(sx))
                fx = sx - x0
                a = _sample(img, y0, x0, background)
                b = _sample(img, y0, x0 + 1, background)
                c = _sample(img, y0 + 1, x0, background)
                d = _sample(img, y0 + 1, x0 + 1, background)
                out[k, i, j] = (1 - fy) * ((1 - fx) * a + fx * b) + fy * ((1 - fx) * c + fx * d)
    return out

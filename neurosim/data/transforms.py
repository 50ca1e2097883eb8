"""Fast, tonic-compatible event transforms (numba).

Drop-in replacements for the ``tonic.transforms`` event transforms that dominate preprocessing time: small frozen
dataclasses whose ``__call__(events)`` takes tonic's structured event arrays (fields ``x, y, t, p``; or ``t, x, p``
for audio such as SHD) and that work inside ``tonic.transforms.Compose``. The hot loops are numba kernels; on the
same input the output is the same as tonic 1.7.0's (tested against tonic in ``tests/data/test_transforms.py``),
except where tonic is wrong. The differences, all deliberate:

* **Unsorted timestamps.** tonic's slicing (``ToFrame``) assumes sorted timestamps and its filters (``Denoise``,
  ``RefractoryPeriod``) walk the array in storage order, so an unsorted input silently gives wrong frames. Here
  ``ToFrame``, ``Denoise``, ``RefractoryPeriod`` and ``ToVoxelGrid`` first sort an unsorted input by ``t``
  (stable: events with equal timestamps keep their order). Sorted input, the normal case, is recognised during a
  pass the transform makes anyway (ToFrame: the binning pass itself). Filter outputs are then in time order.
* **Empty input.** tonic's ``ToFrame`` returns float64 zeros laid out ``(T, P, W, H)`` (its non-empty output is int16
  ``(T, P, H, W)``); here it is int16 ``(T, P, H, W)`` (``(T, P, W)`` for audio). tonic's ``Denoise``,
  ``RefractoryPeriod`` and ``ToVoxelGrid`` raise on empty input; here they return an empty array (a zero grid).
* **Coordinates outside the sensor.** tonic's ``np.add.at`` wraps negative ``x``/``y``/``p`` around (``p = -1`` lands
  in the last polarity channel) and raises a bare ``IndexError`` on too-large ones. Here ``ToFrame`` and
  ``ToVoxelGrid`` raise ``ValueError`` naming the event (map ``p ∈ {-1, 1}`` to ``{0, 1}`` first); ``Denoise`` and
  ``RefractoryPeriod`` raise on negative coordinates (tonic wraps them to the far edge); ``RandomFlipLR/UD`` raise
  on coordinates outside the sensor (tonic would mirror them to negative or wrapped values). ``ToFrame``,
  ``ToVoxelGrid``, ``Denoise`` and ``RefractoryPeriod`` raise on fractional float coordinates (tonic truncates 1.7
  to pixel 1) and on NaN/inf timestamps (a NaN falls in no frame, and poisons a filter's pixel memory). An error
  names the event by its index in the caller's array, also when the input was sorted first.
* **Silent overflows.** A frame count past int16's 32,767 (a hot pixel in a long frame) wraps around in tonic; here
  ``ToFrame`` raises, naming the frame and pixel. Integer timestamps whose frame windows pass int64's range
  (``t`` near 2**63, or uint64 above it) give tonic wrapped or float-rounded windows and wrong or empty frames;
  here ``ToFrame`` raises (subtract ``t[0]`` first). With unsigned timestamps (AEDAT4's uint64) and a ``time_window``
  longer than the recording, numpy 2 wraps tonic's ``duration - time_window`` around (``uint - int`` stays unsigned):
  it asks for ~1e13 frames and fails with ``MemoryError``; here ``ToFrame`` gives one frame, as for signed timestamps.
  ``Downsample`` raises where a product does not fit its field (``uint8`` x times 2, ``int32`` t times 1000), as
  ``CenterCrop`` does for padding; tonic wraps around. ``ToFrame(n_time_bins=T)`` on events spanning fewer than
  ``T`` time units (all frames empty, kept from tonic) warns.
* **Denoise / RefractoryPeriod start-up.** tonic initialises its per-pixel memories as if every pixel had fired at
  ``t = 0``: ``Denoise`` keeps every event with ``t < filter_time`` that has any in-range neighbour, even one that
  never fired, and ``RefractoryPeriod`` drops the first event of a pixel when its ``t <= 0``. Here a pixel that has
  not fired yet has no effect (``Denoise`` drops an event whose neighbours never fired; ``RefractoryPeriod`` keeps
  the first event of every pixel). ``tonic_compatible=True`` restores tonic's behaviour exactly.
* **ToVoxelGrid polarity.** tonic maps polarity 0 to -1 by ``p[p == 0] = -1``, which on a bool field writes
  ``True`` — every event counts +1 — and on an unsigned field raises ``OverflowError`` (numpy 2; numpy 1 wraps it
  to 255). Here polarity is ``+1`` where ``p > 0`` and ``-1`` elsewhere, for every dtype. A recording whose
  timestamps are all equal (one event, say) makes tonic divide by zero; here all its events sit at the start of
  bin 0.
* **TimeJitter.** ``sort_timestamps=True`` sorts stably (tonic's quicksort may reorder events with equal
  timestamps). On unsigned timestamps tonic's cast wraps a jittered time below zero around (to ~2**32 for uint32),
  so its ``clip_negative`` never sees it and keeps the event at that huge time; here ``clip_negative=True`` drops
  it and ``clip_negative=False`` raises ``ValueError``.
* **Random transforms** take ``seed``: ``None`` draws from numpy's global RNG exactly as tonic does (same draws,
  so ``np.random.seed(s)`` reproduces tonic's output; torch's ``DataLoader`` reseeds it per worker); an ``int``
  gives the transform its own ``np.random.default_rng(seed)`` (reproducible sequence of calls). Inside a torch
  ``DataLoader`` worker an ``int`` seed is mixed with the worker's seed (``get_worker_info().seed``, which torch
  draws from its global RNG, or the loader's ``generator``, whenever it starts workers):
  ``np.random.default_rng([seed, worker_seed])``, made at the worker's first call. Every worker thus draws its
  own augmentations, workers started anew each epoch (``persistent_workers=False``) draw new ones each epoch, and
  ``torch.manual_seed`` before the loop repeats them all; in the main process (``num_workers=0``) the stream is
  ``default_rng(seed)`` as before — held by the transform, so a checkpointed training run resumed in a new process
  restarts it (``seed=None`` or ``num_workers > 0`` resume exactly: the Trainer restores numpy's global stream and
  the loader's worker seeds). A ``np.random.Generator`` or ``np.random.RandomState`` is used as given
  (``RandomState(s)`` reproduces tonic after ``np.random.seed(s)``; every worker gets a copy of it, in the state
  it had when the workers started).
* **Parameters** are checked when the transform is built (``ValueError`` / ``TypeError`` with the reason), not
  deep inside a call.

Kept from tonic on purpose: ``ToFrame(n_time_bins=T)`` bins of width ``(t[-1] - t[0]) // T`` starting at ``t[0]``
(see :class:`ToFrame` — the events in the last ``(t[-1] - t[0]) % T + 1`` time units, at least those at the last
timestamp, fall in no frame), so frames cached by :mod:`neurosim.data.frames` are the same whichever
implementation built them; frames are int16 counts (a count past 32,767 raises, see above).
"""

from __future__ import annotations

import math
import numbers
import operator
import warnings
from dataclasses import dataclass, field
from typing import Optional, Sequence, Tuple, Union

import numba
import numpy as np
from torch.utils.data import get_worker_info

__all__ = [
    "CenterCrop", "Denoise", "Downsample", "DropEvent", "RandomCrop", "RandomFlipLR", "RandomFlipUD",
    "RefractoryPeriod", "TimeJitter", "ToFrame", "ToVoxelGrid",
]

SeedLike = Union[None, int, np.random.Generator, np.random.RandomState]

_OK = -1
_UNSORTED = -2
_FULL = -3  # ``_FULL - j``: event ``j`` would push its frame count past int16's range
_COUNT_MAX = 32767  # np.iinfo(np.int16).max: frames are int16 counts, as tonic's

# ---------------------------------------------------------------------------------------------------- kernels


@numba.njit(cache=True, nogil=True)
def _searchsorted_left(t, values):
    """``np.searchsorted(t, values, side='left')`` without numpy's cast of ``t`` to the dtype of ``values``."""
    n = t.shape[0]
    out = np.empty(values.shape[0], np.int64)
    for i in range(values.shape[0]):
        v = values[i]
        lo, hi = 0, n
        while lo < hi:
            mid = (lo + hi) >> 1
            if t[mid] < v:
                lo = mid + 1
            else:
                hi = mid
        out[i] = lo
    return out


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _to_frame_kernel(x, y, p, t, starts, ends, frames):
    """Count events ``starts[s] <= j < ends[s]`` into ``frames[s, p, y, x]`` (zeroed, int16).

    Checks in the same pass that ``t`` is sorted (every index, including those in no slice). Returns ``_OK``,
    ``_UNSORTED``, the index of the first binned event outside the frame shape, or ``_FULL - j`` when event ``j``
    would raise a count past int16's range (it would wrap around).
    """
    n = t.shape[0]
    n_slices, n_pol, height, width = frames.shape
    covered = 0
    unsorted = False
    for s in range(n_slices):
        lo = starts[s]
        hi = ends[s]
        if lo > covered:  # events in no slice: only the order check
            for j in range(max(covered, 1), lo):
                unsorted |= t[j] < t[j - 1]
        if hi > lo:
            prev = t[lo - 1] if lo > 0 else t[lo]
            for j in range(lo, hi):
                tj = t[j]
                unsorted |= tj < prev
                prev = tj
                xx = np.int64(x[j])
                yy = np.int64(y[j])
                pp = np.int64(p[j])
                if xx < 0 or xx >= width or yy < 0 or yy >= height or pp < 0 or pp >= n_pol:
                    return j
                if frames[s, pp, yy, xx] == _COUNT_MAX:
                    return _FULL - j
                frames[s, pp, yy, xx] += 1
        covered = max(covered, hi)
    for j in range(max(covered, 1), n):
        unsorted |= t[j] < t[j - 1]
    return _UNSORTED if unsorted else _OK


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _to_frame_records(events, starts, ends, frames, zero_p):
    """:func:`_to_frame_kernel` reading whole records of a structured array with x, y, t, p (~30 % faster)."""
    n = events.shape[0]
    n_slices, n_pol, height, width = frames.shape
    covered = 0
    unsorted = False
    for s in range(n_slices):
        lo = starts[s]
        hi = ends[s]
        if lo > covered:
            for j in range(max(covered, 1), lo):
                unsorted |= events[j].t < events[j - 1].t
        if hi > lo:
            prev = events[lo - 1].t if lo > 0 else events[lo].t
            for j in range(lo, hi):
                e = events[j]
                tj = e.t
                unsorted |= tj < prev
                prev = tj
                xx = np.int64(e.x)
                yy = np.int64(e.y)
                pp = 0 if zero_p else np.int64(e.p)
                if xx < 0 or xx >= width or yy < 0 or yy >= height or pp < 0 or pp >= n_pol:
                    return j
                if frames[s, pp, yy, xx] == _COUNT_MAX:
                    return _FULL - j
                frames[s, pp, yy, xx] += 1
        covered = max(covered, hi)
    for j in range(max(covered, 1), n):
        unsorted |= events[j].t < events[j - 1].t
    return _UNSORTED if unsorted else _OK


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _scan(x, y, t):
    """One pass: ``(t is sorted, min x, max x, min y, max y)`` (x, y as int64)."""
    n = t.shape[0]
    xmin = xmax = np.int64(x[0])
    ymin = ymax = np.int64(y[0])
    unsorted = False
    for j in range(1, n):
        xx = np.int64(x[j])
        yy = np.int64(y[j])
        unsorted |= t[j] < t[j - 1]
        xmin = min(xmin, xx)
        xmax = max(xmax, xx)
        ymin = min(ymin, yy)
        ymax = max(ymax, yy)
    return not unsorted, xmin, xmax, ymin, ymax


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _denoise_kernel(x, y, t, until, width, height, filter_time, init, keep):
    """tonic's Denoise loop: keep an event when a 4-neighbour's last ``t + filter_time`` exceeds its ``t``.

    ``until`` holds each event's ``t + filter_time`` where numba cannot compute it in the timestamps' own precision
    (float16: numpy rounds the sum to float16 in tonic), else it is empty and the sum is computed here.
    The memory has a border that never fires (-inf): tonic does not look past ``0`` and ``max + 1``; branch-free.
    """
    memory = np.full((width + 2, height + 2), -np.inf)
    memory[1:width + 1, 1:height + 1] = init
    for j in range(t.shape[0]):
        xx = np.int64(x[j]) + 1
        yy = np.int64(y[j]) + 1
        tj = t[j]
        memory[xx, yy] = until[j] if until.shape[0] else tj + filter_time
        keep[j] = ((memory[xx - 1, yy] > tj) | (memory[xx + 1, yy] > tj)
                   | (memory[xx, yy - 1] > tj) | (memory[xx, yy + 1] > tj))


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _refractory_kernel(x, y, t, width, height, delta, init, keep):
    """tonic's RefractoryPeriod loop: keep an event when ``t - t_last(pixel) > delta``; every event sets t_last."""
    memory = np.full((width, height), init, np.float64)
    for j in range(t.shape[0]):
        xx = np.int64(x[j])
        yy = np.int64(y[j])
        tj = t[j]
        keep[j] = tj - memory[xx, yy] > delta
        memory[xx, yy] = tj


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _downsample_kernel(x, y, t, fx, fy, ft, has_y, scale_t):
    """In place: ``x *= fx``, ``y *= fy``, ``t *= ft``, each product cast back to the field's dtype (truncation)."""
    for j in range(t.shape[0]):
        x[j] = x[j] * fx
        if has_y:
            y[j] = y[j] * fy
        if scale_t:
            t[j] = t[j] * ft


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _box_mask(x, y, x0, x1, y0, y1, keep):
    """``keep = (x0 <= x < x1) & (y0 <= y < y1)``; returns the count kept."""
    count = 0
    for j in range(x.shape[0]):
        xx = np.int64(x[j])
        yy = np.int64(y[j])
        k = x0 <= xx and xx < x1 and y0 <= yy and yy < y1
        keep[j] = k
        count += k
    return count


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _voxel_kernel(x, y, p, t, span, n_bins, width, height, grid):
    """tonic's voxel grid (bilinear in time over ``n_bins * (t - t0) / (tN - t0)``), polarity ``p > 0 ? 1 : -1``.

    ``span`` is ``tN - t0`` as numpy computes it in the timestamps' own dtype (float16 rounds it, in tonic too).

    ``grid`` is flat, zeroed, float64. Adds all left weights first and then all right weights, in event order, as
    tonic's two ``np.add.at`` calls do, so the float sums are bit-identical. Returns ``_OK``, ``_UNSORTED`` or the
    index of the first event outside the sensor.
    """
    n = t.shape[0]
    for j in range(n):
        xx = np.int64(x[j])
        yy = np.int64(y[j])
        if xx < 0 or xx >= width or yy < 0 or yy >= height:
            return j
        if j > 0 and t[j] < t[j - 1]:
            return _UNSORTED
    t0 = np.float64(t[0])
    denom = np.float64(span)
    plane = width * height
    for side in range(2):
        for j in range(n):
            if span != 0:
                ts = (n_bins * (np.float64(t[j]) - t0)) / denom
            else:
                ts = 0.0
            ti = np.int64(ts)
            dt = ts - ti
            pol = 1.0 if p[j] > 0 else -1.0
            idx = np.int64(x[j]) + np.int64(y[j]) * width
            if side == 0:
                if ti < n_bins:
                    grid[idx + ti * plane] += pol * (1.0 - dt)
            elif ti + 1 < n_bins:
                grid[idx + (ti + 1) * plane] += pol * dt
    return _OK


# ---------------------------------------------------------------------------------------------------- helpers


def _check_events(events, need: Sequence[str], who: str) -> None:
    names = getattr(getattr(events, "dtype", None), "names", None)
    if not isinstance(events, np.ndarray) or names is None or events.ndim != 1:
        raise TypeError(f"{who}: events must be a 1-D structured numpy array with fields such as x, y, t, p "
                        f"(tonic's format), got {type(events).__name__}"
                        + (f" of shape {events.shape}, dtype {events.dtype}" if isinstance(events, np.ndarray)
                           else ""))
    missing = [f for f in need if f not in names]
    if missing:
        titled = {f: next(n for n in names if events.dtype.fields[n][2:] == (f,)) for f in missing
                  if f in events.dtype.fields}  # tonic.io.read_aedat4: polarity field 'on', titled 'p'
        hint = ""
        if titled:
            renamed = tuple(next((t for t, n in titled.items() if n == name), name) for name in names)
            hint = (f"; {', '.join(f'{t!r} is only the title of field {n!r}' for t, n in titled.items())} (as "
                    f"tonic.io.read_aedat4 names it): rename the fields first, events.dtype.names = {renamed!r}")
        raise ValueError(f"{who}: events lack field(s) {', '.join(map(repr, missing))} (fields: {', '.join(names)})"
                         + hint)


def _check_numbers(events: np.ndarray, who: str) -> None:
    """Float fields must hold what the kernels can index and bin: whole coordinates and polarities (a float cast
    would truncate 1.7 to 1 silently), finite timestamps (a NaN falls in no time bin and is lost silently)."""
    for name in events.dtype.names:
        values = events[name]
        if values.dtype.kind != "f" or name not in ("x", "y", "p", "t"):
            continue
        bad = ~np.isfinite(values) if name == "t" else (values != np.floor(values)) | ~np.isfinite(values)
        if bad.any():
            i = int(np.argmax(bad))
            what = "finite values" if name == "t" else "whole numbers"
            raise ValueError(f"{who}: field {name!r} must hold {what}, but event {i} has {name} = {values[i]} "
                             f"({int(bad.sum())} such event(s)); "
                             + ("drop or fix them first" if name == "t" else "round or cast them to integers first"))


def _numba_records(events: np.ndarray) -> bool:
    """Whether numba can read ``events`` as records: every field a native-endian number."""
    for name in events.dtype.names:
        ftype = events.dtype.fields[name][0]
        if (ftype.kind not in "biuf" or ftype.shape != () or not ftype.isnative or ftype == np.float16
                or not name.isidentifier()):
            return False
    return True


def _native(a: np.ndarray) -> np.ndarray:
    """A field numba can read: itself, or a native-endian copy (float16 becomes float32)."""
    if a.dtype == np.float16:
        return a.astype(np.float32)
    return a if a.dtype.isnative else a.astype(a.dtype.newbyteorder("="))


def _zeros_like_field(n: int) -> np.ndarray:
    """A read-only length-``n`` array of int64 zeros that takes no memory (stride 0): the ``y`` of audio events."""
    return np.broadcast_to(np.zeros(1, np.int64), (n,))


def _sort_by_time(events: np.ndarray) -> np.ndarray:
    return events[_time_order(events)]


def _check_time_range(t: np.ndarray, start, end, last_end_offset) -> None:
    """Integer timestamps whose frame windows numpy cannot compute: past int64 (its sums wrap around) or unsigned
    above int64 (mixed with the int64 window index they turn into float64). tonic bins them silently wrong."""
    if t.dtype.kind not in "iu":
        return
    limit = np.iinfo(np.int64).max
    first, last = _scalar(start), _scalar(end)
    reach = max(last, first + last_end_offset, last - first)
    if reach > limit:
        raise ValueError(f"ToFrame: timestamps from {first} to {last} give frame windows that reach {reach}, past "
                         f"int64's range ({limit}), where numpy's window arithmetic wraps around or rounds to float64 "
                         "(tonic's too, silently: wrong or empty frames); subtract the first timestamp first "
                         "(t - t[0])")


def _scalar(v):
    """A numpy scalar as a Python number (exact arithmetic, no unsigned wrap-around); other values as given."""
    return v.item() if isinstance(v, np.generic) else v


def _time_order(events: np.ndarray) -> np.ndarray:
    """The stable order that sorts ``events`` by ``t``: ``events[order]`` is :func:`_sort_by_time`'s result, and
    ``order[i]`` is the caller's index of sorted event ``i`` (for error messages)."""
    return np.argsort(events["t"], kind="stable")


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _positive(value, name: str, who: str, allow_zero: bool = False):
    if not _is_number(value) or not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{who}: {name} must be a finite number {bound}, got {value!r}")
    return value


def _positive_int(value, name: str, who: str) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        v = operator.index(value)
    except TypeError:
        raise ValueError(f"{who}: {name} must be a positive integer, got {value!r}") from None
    if v <= 0:
        raise ValueError(f"{who}: {name} must be a positive integer, got {value!r}")
    return v


def _sensor_size(value, who: str, optional: bool = False):
    if value is None:
        if optional:
            return None
        raise ValueError(f"{who}: sensor_size is required, a 3-tuple (width, height, polarities)")
    try:
        size = tuple(operator.index(v) for v in value)
    except TypeError:
        raise ValueError(f"{who}: sensor_size must be 3 positive integers (width, height, polarities), "
                         f"got {value!r}") from None
    if len(size) != 3 or any(v <= 0 for v in size):
        raise ValueError(f"{who}: sensor_size must be 3 positive integers (width, height, polarities), "
                         f"got {value!r}" + ("; None infers it from each sample's events (tonic also takes an "
                                             "empty one so)" if optional and not size else ""))
    return size


def _size2(value, name: str, who: str):
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    try:
        size = tuple(operator.index(v) for v in value)
    except TypeError:
        raise ValueError(f"{who}: {name} must be an int or (width, height) of positive ints, got {value!r}") from None
    if len(size) != 2 or any(v <= 0 for v in size):
        raise ValueError(f"{who}: {name} must be an int or (width, height) of positive ints, got {value!r}")
    return size


def _probability(value, name: str, who: str) -> float:
    if not _is_number(value) or not 0 <= value <= 1:
        raise ValueError(f"{who}: {name} must be a probability in [0, 1], got {value!r}")
    return value


def _make_rng(seed, who: str):
    if seed is None or isinstance(seed, (np.random.Generator, np.random.RandomState)):
        return seed
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        return np.random.default_rng(int(seed))
    raise TypeError(f"{who}: seed must be None, an int, a np.random.Generator or a np.random.RandomState, "
                    f"got {type(seed).__name__}")


def _uniform(rng) -> float:
    """One draw in [0, 1): ``np.random.random_sample()`` (tonic's ``np.random.rand()``) when ``rng`` is None."""
    return np.random.random_sample() if rng is None else rng.random()


def _worker_seed() -> Optional[int]:
    """The seed of the torch ``DataLoader`` worker this runs in (distinct per worker, and per epoch unless the workers
    persist); None in the main process."""
    info = get_worker_info()
    return None if info is None else int(info.seed)


class _Seeded:
    """Mixin: ``self._rng`` is the generator of the ``seed`` field (see the module docstring): for an ``int`` seed,
    ``default_rng(seed)`` in the main process and ``default_rng([seed, worker seed])`` in a ``DataLoader`` worker."""

    def _init_rng(self) -> None:
        object.__setattr__(self, "_own_rng", _make_rng(self.seed, type(self).__name__))
        object.__setattr__(self, "_rng_worker", None)  # the worker seed _own_rng was mixed with (None: not mixed)

    @property
    def _rng(self):
        if not isinstance(self.seed, numbers.Integral):
            return self._own_rng  # None (numpy's global RNG), or the caller's own generator: used as given
        worker = _worker_seed()
        if worker is not None and worker != self._rng_worker:  # a copy of the transform in a new worker process
            object.__setattr__(self, "_own_rng", np.random.default_rng([int(self.seed), worker]))
            object.__setattr__(self, "_rng_worker", worker)
        return self._own_rng


# ---------------------------------------------------------------------------------------------------- ToFrame


@dataclass(frozen=True)
class ToFrame:
    """Events → frames of event counts ``[T, P, H, W]`` (int16; ``[T, P, W]`` for audio events without ``y``).

    Same parameters and output as ``tonic.transforms.ToFrame``; exactly one of ``time_window``, ``event_count``,
    ``n_time_bins``, ``n_event_bins`` chooses the slicing:

    * ``time_window``: windows of that length (timestamp units) every ``time_window - overlap``, from ``start_time``
      (default: first timestamp) to ``end_time`` (default: last timestamp); ``include_incomplete`` adds the last,
      partial window. At least one frame.
    * ``event_count``: ``event_count`` events per frame, ``overlap`` events shared by neighbours;
      ``include_incomplete`` as above.
    * ``n_time_bins``: ``T`` frames. As in tonic, each bin is ``(t[-1] - t[0]) // T * (1 + overlap)`` long (integer
      floor division, even for float timestamps) and bins start every ``width * (1 - overlap)`` from ``t[0]``.
      Consequences kept for compatibility (frames cached by :mod:`neurosim.data.frames` must not depend on which
      implementation built them): the events in the last ``(t[-1] - t[0]) % T + 1`` time units — at least those at
      the last timestamp — are in no frame, and a recording shorter than ``T`` time units (a single event, say)
      gives all-zero frames. Use ``time_window`` with ``start_time``/``end_time`` to bin a fixed span exactly.
    * ``n_event_bins``: ``T`` frames of ``len(events) // T * (1 + overlap)`` events each.

    ``overlap`` is in timestamp units (``time_window``), events (``event_count``) — smaller than the window or
    count; a negative one leaves a gap between frames, as in tonic's slicers — or a fraction of a bin in ``[0, 1)``
    (``n_time_bins``, ``n_event_bins``). ``sensor_size`` is ``(W, H, P)``; ``None`` infers it per
    sample from the events (``max x + 1``, ``max y + 1``, number of distinct polarities) as tonic does. With
    ``P == 1`` all events must have the same polarity (as in tonic) and go to channel 0.

    Differences from tonic (see the module docstring): unsorted input is sorted by ``t`` first; empty input gives
    int16 zeros ``[T, P, H, W]`` (``T`` = ``n_time_bins`` / ``n_event_bins``; for ``time_window`` the number of
    windows between ``start_time`` and ``end_time`` when both are set, else 1; for ``event_count`` 1), not tonic's
    float64 ``[T, P, W, H]``; a binned event outside ``sensor_size`` raises ``ValueError`` naming its index in the
    caller's array; more than 32,767 events of one pixel in one frame raise ``ValueError`` (tonic's int16 counts
    wrap around); integer timestamps whose windows pass int64's range raise ``ValueError`` (tonic bins them
    silently wrong: empty or wrapped frames); unsigned timestamps spanning less than ``time_window`` give one frame
    (under numpy 2 tonic's window count wraps around to ~1e13 frames: ``MemoryError``); with ``n_time_bins``, events spanning fewer than ``T`` time units
    give empty frames with a warning (tonic is silent); the input is never modified (tonic's writes ``p = 0`` into
    it when ``P == 1``).
    """

    sensor_size: Optional[Tuple[int, int, int]]
    time_window: Optional[float] = None
    event_count: Optional[int] = None
    n_time_bins: Optional[int] = None
    n_event_bins: Optional[int] = None
    overlap: float = 0
    include_incomplete: bool = False
    start_time: Optional[float] = None
    end_time: Optional[float] = None

    def __post_init__(self):
        who = "ToFrame"
        object.__setattr__(self, "sensor_size", _sensor_size(self.sensor_size, who, optional=True))
        chosen = [n for n in ("time_window", "event_count", "n_time_bins", "n_event_bins")
                  if getattr(self, n) is not None]
        if len(chosen) != 1:
            raise ValueError(f"{who}: set exactly one of time_window, event_count, n_time_bins, n_event_bins "
                             f"(got {', '.join(chosen) if chosen else 'none'})")
        if not _is_number(self.overlap) or not math.isfinite(self.overlap):
            raise ValueError(f"{who}: overlap must be a finite number, got {self.overlap!r}")
        if self.time_window is not None:
            _positive(self.time_window, "time_window", who)
            if self.overlap >= self.time_window:
                raise ValueError(f"{who}: overlap ({self.overlap}) must be smaller than time_window "
                                 f"({self.time_window})")
        elif self.event_count is not None:
            object.__setattr__(self, "event_count", _positive_int(self.event_count, "event_count", who))
            if self.overlap >= self.event_count:
                raise ValueError(f"{who}: overlap ({self.overlap}) must be smaller than event_count "
                                 f"({self.event_count})")
        else:
            name = chosen[0]
            object.__setattr__(self, name, _positive_int(getattr(self, name), name, who))
            if not 0 <= self.overlap < 1:
                raise ValueError(f"{who}: with {name}, overlap is a fraction of a bin in [0, 1), got {self.overlap!r}")
        for name in ("start_time", "end_time"):
            v = getattr(self, name)
            if v is not None and (self.time_window is None or not _is_number(v)):
                raise ValueError(f"{who}: {name} is a number and only used with time_window, got {v!r}")
        if self.start_time is not None and self.end_time is not None and self.end_time < self.start_time:
            raise ValueError(f"{who}: end_time ({self.end_time}) is before start_time ({self.start_time})")

    # ---- slicing, as tonic.slicers computes it: window arithmetic on the timestamps as given (``stamps``: float16
    # rounds there, as in tonic), the search on ``t``, the same values as numba reads them (float16 as float32)
    def _time_window_slices(self, t: np.ndarray, stamps: np.ndarray):
        tw, stride = self.time_window, self.time_window - self.overlap
        start = stamps[0] if self.start_time is None else self.start_time
        end = stamps[-1] if self.end_time is None else self.end_time
        if stamps.dtype.kind == "u":  # numpy 2 keeps ``uint - int`` unsigned: a span shorter than the window would wrap
            duration = _scalar(end) - _scalar(start)  # around to ~2**64 (tonic asks for ~1e13 frames); Python ints
        else:
            duration = end - start
        if self.include_incomplete:
            n_slices = int(np.ceil((duration - tw) / stride) + 1)
        else:
            n_slices = int(np.floor((duration - tw) / stride) + 1)
        n_slices = max(n_slices, 1)
        _check_time_range(stamps, start, end, (n_slices - 1) * stride + tw)
        window_starts = np.arange(n_slices) * stride + start
        return _searchsorted_left(t, np.asarray(window_starts)), _searchsorted_left(t, np.asarray(window_starts + tw))

    def _slices(self, t: np.ndarray, stamps: np.ndarray):
        n = len(t)
        if self.time_window is not None:
            return self._time_window_slices(t, stamps)
        if self.event_count is not None:
            count = min(self.event_count, n)
            stride = self.event_count - self.overlap
            if self.include_incomplete:
                n_slices = int(np.ceil((n - count) / stride) + 1)
            else:
                n_slices = int(np.floor((n - count) / stride) + 1)
            starts = (np.arange(n_slices) * stride).astype(np.int64)
            return np.minimum(starts, n), np.minimum(starts + count, n)
        if self.n_time_bins is not None:
            first, last = stamps[0], stamps[-1]
            _check_time_range(stamps, first, last, last.item() - first.item())
            width = (last - first) // self.n_time_bins * (1 + self.overlap)
            stride = width * (1 - self.overlap)
            window_starts = np.asarray(np.arange(self.n_time_bins) * stride + first)
            return _searchsorted_left(t, window_starts), _searchsorted_left(t, np.asarray(window_starts + width))
        count = int(n // self.n_event_bins * (1 + self.overlap))
        stride = int(count * (1 - self.overlap))
        starts = np.arange(self.n_event_bins, dtype=np.int64) * stride
        return np.minimum(starts, n), np.minimum(starts + count, n)

    def _empty_frame_count(self) -> int:
        if self.n_time_bins is not None:
            return self.n_time_bins
        if self.n_event_bins is not None:
            return self.n_event_bins
        if self.time_window is not None and self.start_time is not None and self.end_time is not None:
            stride = self.time_window - self.overlap
            span = (self.end_time - self.start_time - self.time_window) / stride
            return max(int((np.ceil(span) if self.include_incomplete else np.floor(span)) + 1), 1)
        return 1

    def __call__(self, events: np.ndarray) -> np.ndarray:
        _check_events(events, ("x", "t", "p"), "ToFrame")
        _check_numbers(events, "ToFrame")
        has_y = "y" in events.dtype.names
        size = self.sensor_size
        if len(events) == 0:
            if size is None:
                raise ValueError("ToFrame: cannot infer sensor_size from an empty event array; pass sensor_size")
            shape = (size[2], size[1], size[0]) if has_y else (size[2], size[0])
            return np.zeros((self._empty_frame_count(), *shape), dtype=np.int16)
        if size is None:
            size = (int(events["x"].max()) + 1, int(events["y"].max()) + 1 if has_y else 1,
                    len(np.unique(events["p"])))
        width, height, n_pol = size[0], (size[1] if has_y else 1), size[2]
        order = None  # set once an unsorted input is sorted: order[i] is the caller's index of event i
        for attempt in range(2):
            n = len(events)
            stamps = events["t"]
            t = _native(stamps)
            p = _native(events["p"])
            if n_pol == 1 and not np.all(p == p[0]):
                raise ValueError("ToFrame: sensor_size has 1 polarity but the events have several; "
                                 "merge them first (e.g. tonic.transforms.MergePolarities)")
            starts, ends = self._slices(t, stamps)
            frames = np.zeros((len(starts), n_pol, height, width), dtype=np.int16)
            if has_y and _numba_records(events):
                code = _to_frame_records(events, starts, ends, frames, n_pol == 1)
            else:
                y = _native(events["y"]) if has_y else _zeros_like_field(n)
                pol = _zeros_like_field(n) if n_pol == 1 else p
                code = _to_frame_kernel(_native(events["x"]), y, pol, t, starts, ends, frames)
            if code == _OK:
                span = stamps[-1] - stamps[0]
                if self.n_time_bins is not None and span // self.n_time_bins == 0:
                    warnings.warn(f"ToFrame: the events span {span} time units, less than n_time_bins = "
                                  f"{self.n_time_bins}, so every bin is (t[-1] - t[0]) // n_time_bins = 0 units wide "
                                  "and the frames are empty (tonic's binning, kept); bin a fixed span with "
                                  "time_window, start_time and end_time instead", stacklevel=2)
                return frames if has_y else frames[:, :, 0, :]
            if attempt == 0 and (code == _UNSORTED or np.any(t[1:] < t[:-1])):
                order = _time_order(events)  # (an out-of-range event of an unsorted input: check it once sorted)
                events = events[order]
                continue
            if code <= _FULL:
                raise ValueError(self._full_message(events, _FULL - code, starts, ends, n_pol == 1, has_y))
            e = events[code]
            where = f"x={e['x']}" + (f", y={e['y']}" if has_y else "") + f", p={e['p']}"
            raise ValueError(f"ToFrame: event {code if order is None else int(order[code])} ({where}) is outside "
                             f"sensor_size {tuple(size)} (x < width{', y < height' if has_y else ''}, "
                             "0 <= p < polarities)")
        raise AssertionError("unreachable")  # pragma: no cover

    def _full_message(self, events, j, starts, ends, zero_p: bool, has_y: bool) -> str:
        """Why event ``j`` overflowed a count: its pixel, the first frame holding more than int16's maximum."""
        e = events[j]
        same = events["x"] == e["x"]
        if has_y:
            same &= events["y"] == e["y"]
        if not zero_p:
            same &= events["p"] == e["p"]
        where = f"x={e['x']}" + (f", y={e['y']}" if has_y else "") + f", p={0 if zero_p else e['p']}"
        for s in np.flatnonzero((starts <= j) & (ends > j)):
            count = int(np.count_nonzero(same[starts[s]:ends[s]]))
            if count > _COUNT_MAX:
                return (f"ToFrame: frame {s} counts {count} events at pixel {where}, more than its int16 counts hold "
                        f"({_COUNT_MAX}; they would wrap around, as tonic's do); use shorter frames (more "
                        "n_time_bins, a smaller time_window or event_count) or remove the hot pixel first")
        raise AssertionError("unreachable")  # pragma: no cover


# ---------------------------------------------------------------------------------------------------- filters


_MAX_PIXELS = 1 << 26  # 67 M pixels (8192 × 8192): far beyond any event camera, 0.5 GiB of int64 timestamps


def _pixel_filter_inputs(events: np.ndarray, who: str):
    """Sorted events, their x, y (zeros for audio), t, and the data-derived width/height tonic uses."""
    _check_events(events, ("x", "t"), who)
    _check_numbers(events, who)  # a NaN t would poison its pixel's memory, x = 1.7 would be pixel 1
    has_y = "y" in events.dtype.names
    y = _native(events["y"]) if has_y else _zeros_like_field(len(events))
    ok, xmin, xmax, ymin, ymax = _scan(_native(events["x"]), y, _native(events["t"]))
    if xmin < 0 or ymin < 0:
        raise ValueError(f"{who}: events have negative coordinates (min x = {xmin}" +
                         (f", min y = {ymin}" if has_y else "") + ")")
    width, height = int(xmax) + 1, int(ymax) + 1
    if width * height > _MAX_PIXELS:  # the filters keep one timestamp per pixel of the data's bounding box
        raise ValueError(f"{who}: events reach x = {int(xmax)}" + (f", y = {int(ymax)}" if has_y else "") +
                         f", a {width} × {height} pixel grid ({width * height * 8 / 2**30:.1f} GiB of timestamps); "
                         "no event sensor is that large: check the x/y fields (swapped with t, or not decoded?)")
    if not ok:
        events = _sort_by_time(events)
        y = _native(events["y"]) if has_y else _zeros_like_field(len(events))
    return events, _native(events["x"]), y, _native(events["t"]), width, height


def _operand(value, dtype: np.dtype):
    """``value`` as numpy's ``field * value`` sees it, so a numba kernel computes in tonic's precision: for a float
    field, a scalar of the product's dtype (a Python float is 'weak' and keeps a float32 field's product float32, a
    numpy float64 makes it float64); for other fields ``value`` as given (numba multiplies them exactly in int64 or
    float64)."""
    return np.result_type(dtype, value).type(value) if dtype.kind == "f" else value


@dataclass(frozen=True)
class Denoise:
    """Drop events that no 4-neighbour pixel supports within ``filter_time`` (tonic's ``Denoise``).

    An event at ``(x, y, t)`` is kept when one of ``(x±1, y)``, ``(x, y±1)`` had an event at some ``t' > t -
    filter_time`` (earlier in time order, or at the same timestamp earlier in the array). Polarity is ignored.
    Events without ``y`` (audio) use the neighbours ``x ± 1``.

    Differences from tonic (see the module docstring): a pixel that has not fired yet supports nothing (tonic acts
    as if every pixel fired at ``t = 0``, so it keeps isolated events with ``t < filter_time``);
    ``tonic_compatible=True`` gives tonic's output exactly. Unsorted input is sorted by ``t`` first; empty input
    gives an empty array (tonic raises); NaN timestamps and fractional coordinates raise ``ValueError``.
    """

    filter_time: float
    tonic_compatible: bool = False

    def __post_init__(self):
        _positive(self.filter_time, "filter_time", "Denoise")

    def __call__(self, events: np.ndarray) -> np.ndarray:
        _check_events(events, ("x", "t"), "Denoise")
        if len(events) == 0:
            return events.copy()
        events, x, y, t, width, height = _pixel_filter_inputs(events, "Denoise")
        filter_time = _operand(self.filter_time, t.dtype)
        stamps = events["t"]
        # float16 timestamps (read as float32 by the kernel): their sums with filter_time as tonic's numpy computes
        # them, one event's scalar at a time: in float16 under numpy 2 (NEP 50), in float64 under numpy 1, where a
        # scalar plus a Python float is a float64
        until = np.empty(0)
        if stamps.dtype == np.float16:
            precision = (stamps.dtype.type(0) + self.filter_time).dtype
            until = (stamps.astype(precision) + self.filter_time).astype(np.float64)
        init = float(self.filter_time) if self.tonic_compatible else -np.inf
        keep = np.empty(len(events), np.bool_)
        _denoise_kernel(x, y, t, until, width, height, filter_time, init, keep)
        return np.compress(keep, events)


@dataclass(frozen=True)
class RefractoryPeriod(_Seeded):
    """Drop events that follow the previous event of their pixel within ``delta`` (tonic's ``RefractoryPeriod``).

    An event is kept when ``t - t_prev > delta``, ``t_prev`` being the time of the pixel's previous event, kept or
    not. Polarity is ignored; events without ``y`` (audio) are filtered per channel ``x``. ``delta`` may be a
    ``(low, high)`` pair: each call then draws ``int(low + (high - low) * u)``, ``u`` uniform in [0, 1) from
    ``seed`` (see the module docstring; ``None`` is numpy's global RNG, as tonic).

    Differences from tonic (see the module docstring): the first event of every pixel is kept (tonic drops it when
    its ``t <= 0``); ``tonic_compatible=True`` gives tonic's output exactly. Unsorted input is sorted by ``t``
    first; empty input gives an empty array (tonic raises); NaN timestamps (which would also drop the pixel's next
    event) and fractional coordinates raise ``ValueError``.
    """

    delta: Union[float, Tuple[float, float]]
    seed: SeedLike = field(default=None, compare=False)
    tonic_compatible: bool = False

    def __post_init__(self):
        who = "RefractoryPeriod"
        if isinstance(self.delta, (tuple, list)):
            if len(self.delta) != 2:
                raise ValueError(f"{who}: delta must be a number or a (low, high) pair, got {self.delta!r}")
            lo = _positive(self.delta[0], "delta[0]", who, allow_zero=True)
            hi = _positive(self.delta[1], "delta[1]", who, allow_zero=True)
            if hi < lo:
                raise ValueError(f"{who}: delta = {self.delta!r} has high < low")
            object.__setattr__(self, "delta", (lo, hi))
        else:
            _positive(self.delta, "delta", who, allow_zero=True)
        self._init_rng()

    def _draw_delta(self):
        if isinstance(self.delta, tuple):
            lo, hi = self.delta
            return int((hi - lo) * _uniform(self._rng) + lo)
        return self.delta

    def __call__(self, events: np.ndarray) -> np.ndarray:
        _check_events(events, ("x", "t"), "RefractoryPeriod")
        delta = self._draw_delta()
        if len(events) == 0:
            return events.copy()
        events, x, y, t, width, height = _pixel_filter_inputs(events, "RefractoryPeriod")
        init = -float(delta) if self.tonic_compatible else -np.inf
        keep = np.empty(len(events), np.bool_)
        _refractory_kernel(x, y, t, width, height, delta, init, keep)
        return np.compress(keep, events)


# ---------------------------------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class Downsample:
    """Multiply timestamps by ``time_factor`` and pixel coordinates by ``spatial_factor`` (tonic's ``Downsample``).

    ``spatial_factor`` is one number or ``(fx, fy)``; with ``sensor_size`` and ``target_size`` given instead, it is
    ``target_size / sensor_size[:2]``. Products are computed in the precision numpy gives them in tonic (a float32
    field times a Python float is a float32 product, times ``target_size / sensor_size`` a float64 one) and cast back
    to each field's dtype (truncation towards zero for integer fields, as numpy's assignment in tonic). A product
    that does not fit its field (``uint8`` x times 2, ``int32`` t times 1000) raises ``ValueError`` (tonic wraps it
    around silently): cast the field to a wider type first. No event is dropped; later transforms need the reduced
    sensor size. Events without ``y`` (audio) scale ``x`` and ``t``.
    """

    time_factor: float = 1
    spatial_factor: Union[float, Tuple[float, float]] = 1
    sensor_size: Optional[Tuple[int, int, int]] = None
    target_size: Optional[Tuple[int, int]] = None

    def __post_init__(self):
        who = "Downsample"
        if isinstance(self.time_factor, (tuple, list)):  # tonic passes it to time_skew_numpy, which draws from it
            raise ValueError(f"{who}: time_factor must be a number, got {self.time_factor!r}; for a random factor "
                             "per call (what tonic's Downsample does with a range, undocumented) put "
                             "tonic.transforms.TimeSkew(coefficient=(low, high)) before it")
        _positive(self.time_factor, "time_factor", who)
        if isinstance(self.spatial_factor, (tuple, list)):
            if len(self.spatial_factor) != 2:
                raise ValueError(f"{who}: spatial_factor must be a number or (fx, fy), got {self.spatial_factor!r}")
            for v in self.spatial_factor:
                _positive(v, "spatial_factor", who)
            object.__setattr__(self, "spatial_factor", tuple(self.spatial_factor))
        else:
            _positive(self.spatial_factor, "spatial_factor", who)
        if self.target_size is not None:
            object.__setattr__(self, "sensor_size", _sensor_size(self.sensor_size, who))
            object.__setattr__(self, "target_size", _size2(self.target_size, "target_size", who))
        elif self.sensor_size is not None:
            object.__setattr__(self, "sensor_size", _sensor_size(self.sensor_size, who))

    def _factors(self):
        if self.target_size is not None:
            f = np.asarray(self.target_size) / self.sensor_size[:-1]
            return f[0], f[1]  # numpy float64, as tonic's: it makes a float32 field's product float64
        if isinstance(self.spatial_factor, tuple):
            return self.spatial_factor
        return self.spatial_factor, self.spatial_factor

    def __call__(self, events: np.ndarray) -> np.ndarray:
        _check_events(events, ("x", "t"), "Downsample")
        out = events.copy()
        if len(out) == 0:
            return out
        fx, fy = self._factors()
        has_y = "y" in out.dtype.names
        fx, ft = _operand(fx, out["x"].dtype), _operand(self.time_factor, out["t"].dtype)
        fy = _operand(fy, out["y"].dtype) if has_y else fx
        scale_t = not (isinstance(self.time_factor, numbers.Integral) and self.time_factor == 1)
        for name, factor, what in (("x", fx, "spatial_factor"), ("y", fy, "spatial_factor"),
                                   ("t", ft, "time_factor")):
            if name in out.dtype.names and (name != "t" or scale_t):
                _check_scaled_range(out[name], factor, name, what)
        fields = [out[f] for f in ("x", "y", "t") if f in out.dtype.names]
        if all(_native(f) is f for f in fields):
            _downsample_kernel(out["x"], out["y"] if has_y else out["x"], out["t"], fx, fy, ft, has_y, scale_t)
        else:  # fields numba cannot write in place (byte-swapped, float16): numpy, as tonic
            out["t"] = out["t"] * ft
            out["x"] = out["x"] * fx
            if has_y:
                out["y"] = out["y"] * fy
        return out


def _check_scaled_range(values: np.ndarray, factor, name: str, what: str) -> None:
    """``values * factor`` must fit the field's dtype: the cast back would wrap around (tonic's does, silently)."""
    if not factor > 1 or values.dtype.kind not in "iuf":  # a factor <= 1 keeps every value in range
        return
    lo, hi = values.min().item() * factor, values.max().item() * factor
    if values.dtype.kind == "f":
        fits, top, bottom = not max(abs(lo), abs(hi)) > float(np.finfo(values.dtype).max), hi, lo  # (NaN: NaN)
    else:
        top, bottom = math.trunc(hi), math.trunc(lo)  # the cast truncates towards zero
        info = np.iinfo(values.dtype)
        fits = info.min <= bottom and top <= info.max
    if not fits:
        reach = top if abs(top) >= abs(bottom) else bottom
        raise ValueError(f"Downsample: scaling {name} by {factor} ({what}) takes it to {reach}, past what the events' "
                         f"{values.dtype} field holds; cast the field to a wider type first")


def _crop(events: np.ndarray, x0: int, y0: int, width: int, height: int, shift_x: int, shift_y: int):
    keep = np.empty(len(events), np.bool_)
    _box_mask(_native(events["x"]), _native(events["y"]), x0, x0 + width, y0, y0 + height, keep)
    out = np.compress(keep, events)
    for name, shift in (("x", shift_x), ("y", shift_y)):  # shift < 0 pads: computed wide, then checked to fit
        shifted = out[name].astype(np.float64 if out[name].dtype.kind == "f" else np.int64) - shift
        kind = np.finfo if out[name].dtype.kind == "f" else np.iinfo
        if len(shifted) and shifted.max() > kind(out[name].dtype).max:
            raise ValueError(f"CenterCrop: padding to {width}×{height} moves {name} up to {int(shifted.max())}, past what "
                             f"the events' {out[name].dtype} field holds; cast the field to a wider type first")
        out[name] = shifted
    return out


@dataclass(frozen=True)
class CenterCrop:
    """Keep the events in a centred ``size`` window (``int`` or ``(width, height)``) and shift them to its origin.

    As tonic's ``CenterCrop``: the window starts at ``(sensor - size) // 2`` per axis; where ``size`` exceeds the
    sensor, nothing is dropped on that axis and events are shifted by the (negative) offset, i.e. padded. Use the
    new sensor size ``(*size, P)`` afterwards.
    """

    sensor_size: Tuple[int, int, int]
    size: Union[int, Tuple[int, int]]

    def __post_init__(self):
        object.__setattr__(self, "sensor_size", _sensor_size(self.sensor_size, "CenterCrop"))
        object.__setattr__(self, "size", _size2(self.size, "size", "CenterCrop"))

    def __call__(self, events: np.ndarray) -> np.ndarray:
        _check_events(events, ("x", "y"), "CenterCrop")
        offsets = [(self.sensor_size[i] - self.size[i]) // 2 for i in range(2)]
        return _crop(events, max(offsets[0], 0), max(offsets[1], 0), self.size[0], self.size[1],
                     offsets[0], offsets[1])


@dataclass(frozen=True)
class RandomCrop(_Seeded):
    """Keep the events in a ``target_size`` ``(width, height)`` window at a random position (tonic's ``RandomCrop``).

    The window's corner is ``int(u * (W - w)), int(u' * (H - h))`` with ``u, u'`` uniform in [0, 1) drawn from
    ``seed`` (see the module docstring); events are shifted to the window's origin.
    """

    sensor_size: Tuple[int, int, int]
    target_size: Tuple[int, int]
    seed: SeedLike = field(default=None, compare=False)

    def __post_init__(self):
        who = "RandomCrop"
        object.__setattr__(self, "sensor_size", _sensor_size(self.sensor_size, who))
        object.__setattr__(self, "target_size", _size2(self.target_size, "target_size", who))
        if self.target_size[0] > self.sensor_size[0] or self.target_size[1] > self.sensor_size[1]:
            raise ValueError(f"{who}: target_size {self.target_size} is larger than the sensor "
                             f"{self.sensor_size[:2]}")
        self._init_rng()

    def __call__(self, events: np.ndarray) -> np.ndarray:
        _check_events(events, ("x", "y"), "RandomCrop")
        (w, h), (tw, th) = self.sensor_size[:2], self.target_size
        x0 = int(_uniform(self._rng) * (w - tw))
        y0 = int(_uniform(self._rng) * (h - th))
        return _crop(events, x0, y0, tw, th, x0, y0)


def _check_axis(values: np.ndarray, bound: int, axis: str, who: str) -> None:
    if len(values) and (values.min() < 0 or values.max() >= bound):
        raise ValueError(f"{who}: events have {axis} outside [0, {bound}) (min {values.min()}, max {values.max()}); "
                         "check sensor_size")


class _RandomFlip(_Seeded):
    """Shared by the flips: one uniform draw per call, mirror ``_field`` when the draw is ``<= p`` (as tonic)."""

    _field = "x"
    _axis = 0  # index of the flipped size in sensor_size (W, H, P)

    def __post_init__(self):
        name = type(self).__name__
        object.__setattr__(self, "sensor_size", _sensor_size(self.sensor_size, name))
        _probability(self.p, "p", name)
        self._init_rng()

    def __call__(self, events: np.ndarray) -> np.ndarray:
        name, f, size = type(self).__name__, self._field, self.sensor_size[self._axis]
        _check_events(events, (f,), name)
        _check_axis(events[f], size, f, name)
        out = events.copy()
        if _uniform(self._rng) <= self.p:
            out[f] = size - 1 - out[f]
        return out


@dataclass(frozen=True)
class RandomFlipLR(_RandomFlip):
    """With probability ``p``, mirror the events left-right: ``x' = W - 1 - x`` (tonic's ``RandomFlipLR``).

    One uniform draw per call from ``seed`` (see the module docstring); it flips when the draw is ``<= p``, as
    tonic. Unlike tonic, ``x`` outside ``[0, W)`` raises ``ValueError``.
    """

    sensor_size: Tuple[int, int, int]
    p: float = 0.5
    seed: SeedLike = field(default=None, compare=False)


@dataclass(frozen=True)
class RandomFlipUD(_RandomFlip):
    """With probability ``p``, mirror the events up-down: ``y' = H - 1 - y`` (tonic's ``RandomFlipUD``).

    One uniform draw per call from ``seed`` (see the module docstring); it flips when the draw is ``<= p``, as
    tonic. Unlike tonic, ``y`` outside ``[0, H)`` raises ``ValueError``.
    """

    _field = "y"
    _axis = 1

    sensor_size: Tuple[int, int, int]
    p: float = 0.5
    seed: SeedLike = field(default=None, compare=False)


# ---------------------------------------------------------------------------------------------------- time / drop


@dataclass(frozen=True)
class TimeJitter(_Seeded):
    """Add Gaussian noise ``N(0, std)`` to every timestamp (tonic's ``TimeJitter``).

    Jittered times are cast back to the ``t`` dtype (truncation towards zero for integer timestamps, as tonic);
    ``clip_negative`` drops the events whose new time is negative; ``sort_timestamps`` sorts the result by time
    (stable, unlike tonic's quicksort, so equal timestamps keep their order). Draws ``len(events)`` normals from
    ``seed`` (see the module docstring). With unsigned timestamps a negative result does not wrap around (tonic's
    does, to ~2**32 for uint32, and keeps the event even with ``clip_negative``): ``clip_negative=True`` drops the
    event, ``clip_negative=False`` raises ``ValueError``.
    """

    std: float
    clip_negative: bool = True
    sort_timestamps: bool = False
    seed: SeedLike = field(default=None, compare=False)

    def __post_init__(self):
        _positive(self.std, "std", "TimeJitter", allow_zero=True)
        self._init_rng()

    def __call__(self, events: np.ndarray) -> np.ndarray:
        _check_events(events, ("t",), "TimeJitter")
        n = len(events)
        rng = self._rng
        shifts = np.random.normal(0, self.std, n) if rng is None else rng.normal(0, self.std, n)
        t = events["t"]
        jittered = t + shifts
        if np.issubdtype(t.dtype, np.unsignedinteger):
            new_t = np.trunc(jittered)  # compare before the cast: it would wrap around
            if not self.clip_negative and n and new_t.min() < 0:
                raise ValueError("TimeJitter: jitter made unsigned timestamps negative; use clip_negative=True")
        else:
            new_t = jittered.astype(t.dtype)  # tonic assigns into the field: the same cast
        if self.clip_negative:
            keep = ~(new_t < 0)
            out = np.compress(keep, events)
            new_t = new_t[keep]
        else:
            out = events.copy()
        out["t"] = new_t
        if self.sort_timestamps:
            out = _sort_by_time(out)
        return out


@dataclass(frozen=True)
class DropEvent(_Seeded):
    """Drop ``int(p * N + 0.5)`` events chosen uniformly at random without replacement (tonic's ``DropEvent``).

    ``p`` may be a ``(low, high)`` pair, drawn uniformly per call. Draws from ``seed`` (see the module docstring);
    with ``seed=None`` the same calls as tonic (``np.random.choice(N, k, replace=False)``). The kept events keep
    their order.
    """

    p: Union[float, Tuple[float, float]]
    seed: SeedLike = field(default=None, compare=False)

    def __post_init__(self):
        who = "DropEvent"
        if isinstance(self.p, (tuple, list)):
            if len(self.p) != 2:
                raise ValueError(f"{who}: p must be a probability or a (low, high) pair, got {self.p!r}")
            lo, hi = (_probability(v, "p", who) for v in self.p)
            if hi < lo:
                raise ValueError(f"{who}: p = {self.p!r} has high < low")
            object.__setattr__(self, "p", (lo, hi))
        else:
            _probability(self.p, "p", who)
        self._init_rng()

    def __call__(self, events: np.ndarray) -> np.ndarray:
        _check_events(events, (), "DropEvent")
        p = self.p
        if isinstance(p, tuple):
            p = (p[1] - p[0]) * _uniform(self._rng) + p[0]
        n = len(events)
        k = int(p * n + 0.5)
        rng = self._rng
        drop = np.random.choice(n, k, replace=False) if rng is None else rng.choice(n, k, replace=False)
        keep = np.ones(n, np.bool_)
        keep[drop] = False
        return np.compress(keep, events)


# ---------------------------------------------------------------------------------------------------- voxel grid


@dataclass(frozen=True)
class ToVoxelGrid:
    """Events → voxel grid ``[n_time_bins, 1, H, W]`` (float64), bilinear weights in time (tonic's ``ToVoxelGrid``).

    Zhu et al. 2019's event volume as tonic computes it: an event at normalised time
    ``u = n_time_bins * (t - t0) / (tN - t0)`` adds ``pol * (1 - frac(u))`` to bin ``floor(u)`` and
    ``pol * frac(u)`` to the next bin (weights past the last bin are dropped, so events at ``tN`` add nothing —
    kept from tonic). Differences from tonic (see the module docstring): ``pol`` is ``+1`` where ``p > 0`` and
    ``-1`` elsewhere for every polarity dtype (tonic loses the sign of bool polarities); equal timestamps (e.g. one
    event) put every event at the start of bin 0 (tonic divides by zero); empty input gives zeros; unsorted input
    is sorted first; any number of polarity channels is accepted (tonic asserts 2; the grid has one channel).
    """

    sensor_size: Tuple[int, int, int]
    n_time_bins: int = 10

    def __post_init__(self):
        object.__setattr__(self, "sensor_size", _sensor_size(self.sensor_size, "ToVoxelGrid"))
        object.__setattr__(self, "n_time_bins", _positive_int(self.n_time_bins, "n_time_bins", "ToVoxelGrid"))

    def __call__(self, events: np.ndarray) -> np.ndarray:
        _check_events(events, ("x", "y", "t", "p"), "ToVoxelGrid")
        _check_numbers(events, "ToVoxelGrid")
        width, height = self.sensor_size[0], self.sensor_size[1]
        order = None  # set once an unsorted input is sorted: order[i] is the caller's index of event i
        for attempt in range(2):
            grid = np.zeros(self.n_time_bins * height * width, np.float64)
            if len(events) == 0:
                break
            first, last = events["t"][0], events["t"][-1]
            # tN - t0 as tonic computes it: in the field's dtype (float16 rounds), integers exactly (unsorted: unused)
            span = np.float64(last - first if first.dtype.kind == "f" else _scalar(last) - _scalar(first))
            code = _voxel_kernel(*(_native(events[f]) for f in "xypt"), span, self.n_time_bins, width, height, grid)
            if code == _OK:
                break
            if code == _UNSORTED and attempt == 0:
                order = _time_order(events)
                events = events[order]
                continue
            e = events[code]
            raise ValueError(f"ToVoxelGrid: event {code if order is None else int(order[code])} (x={e['x']}, "
                             f"y={e['y']}) is outside sensor_size {self.sensor_size}")
        return grid.reshape(self.n_time_bins, 1, height, width)

"""Events → frames, converted once and cached on disk.

:func:`cached_frames` turns every sample of an event dataset into a frame tensor ``[T, P, H, W]`` (event counts
per time bin, polarity and pixel) and stores the whole split in one ``.npz`` under
``<cache>/frames/``, keyed by the dataset, split and every transform parameter. The next epoch — and the next
run — reads the array instead of processing events. A corrupt or mismatched cache file is detected and rebuilt.
"""

from __future__ import annotations

import hashlib
import io
import json
import warnings
import zipfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

from neurosim.data._cache import default_cache_dir, store

__all__ = ["FRAMES_FORMAT", "cached_frames", "events_to_frames", "frame_cache_path"]

FRAMES_FORMAT = 1


def _to_frame(sensor_size: Sequence[int], time_steps: int):
    try:
        from neurosim.data.transforms import ToFrame
    except ImportError:  # pragma: no cover - the fast transforms are part of the package
        from tonic.transforms import ToFrame
    return ToFrame(sensor_size=tuple(sensor_size), n_time_bins=time_steps)


_FRAME_DTYPES = (np.uint8, np.uint16, np.int32)  # the smallest that holds the largest count is used


def events_to_frames(dataset, sensor_size: Sequence[int], time_steps: int, progress: bool = True,
                     desc: str = "frames") -> tuple[np.ndarray, np.ndarray]:
    """Convert every ``(events, label)`` of ``dataset`` to frames ``[N, T, P, H, W]`` (smallest integer dtype).

    The frames are written sample by sample into one array allocated up front in the final dtype: memory is the
    split's frames once (uint8 for counts up to 255; a sample with a larger count widens the array to uint16, or
    int32 past 65,535, once), not a list of per-sample frames, a stacked copy and a cast copy.

    Raises:
        ValueError: a sample ToFrame refuses, one with another number of time bins than ``time_steps``, one of
            another shape than the first sample's (the message names the sample), or an empty dataset.
    """
    to_frame = _to_frame(sensor_size, time_steps)
    n = len(dataset)
    if n == 0:
        raise ValueError("the dataset is empty: no frames to build")
    frames = None
    labels = np.empty(n, dtype=np.int64)
    top = 0  # the largest count so far: frames.dtype is the smallest of _FRAME_DTYPES that holds it
    for i in tqdm(range(n), desc=desc, disable=None if progress else True, leave=False):
        events, label = dataset[i]
        try:
            f = np.asarray(to_frame(events))
        except ValueError as exc:  # (e.g. a count past ToFrame's int16 range: it names the frame and pixel)
            raise ValueError(f"sample {i}: {exc}") from exc
        if f.shape[0] != time_steps:
            raise ValueError(f"sample {i}: ToFrame gave {f.shape[0]} time bins, expected {time_steps}")
        if frames is None:
            frames = np.empty((n, *f.shape), dtype=_FRAME_DTYPES[0])
        elif f.shape != frames.shape[1:]:
            raise ValueError(f"sample {i}: ToFrame gave frames of shape {f.shape}, sample 0 {frames.shape[1:]}: "
                             "every sample of a split needs the same sensor_size")
        top = max(top, int(f.max(initial=0)))
        dtype = _smallest_dtype(top)
        if dtype != frames.dtype:  # a larger count than the dtype so far holds: widen what is filled, once per dtype
            wider = np.empty(frames.shape, dtype=dtype)
            wider[:i] = frames[:i]
            frames = wider
        frames[i] = f  # (a C cast, as astype: counts are whole numbers that fit)
        labels[i] = int(label)
    return frames, labels


def _smallest_dtype(top: int) -> type:
    return next((d for d in _FRAME_DTYPES[:-1] if top <= np.iinfo(d).max), _FRAME_DTYPES[-1])


def frame_cache_path(key: dict, cache_dir: Path | None = None) -> Path:
    """Cache file for a key (dataset, split, transform parameters…)."""
    text = json.dumps({"format": FRAMES_FORMAT, **key}, sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return root / "frames" / f"{key.get('dataset', 'data')}_{key.get('split', 'all')}_{digest}.npz"


def _read(path: Path, key: dict) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            stored = json.loads(str(z["key"]))
            if stored != {"format": FRAMES_FORMAT, **key}:
                return None
            frames, labels = z["frames"], z["labels"]
        if len(frames) != len(labels):
            return None
        return frames, labels
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError, json.JSONDecodeError):
        return None


def cached_frames(key: dict, build: Callable[[], tuple[np.ndarray, np.ndarray]],
                  cache_dir: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return ``build()``'s ``(frames, labels)``, from the cache when a valid entry for ``key`` exists.

    A missing entry is built and written atomically; an unreadable or mismatched one is rebuilt (with a warning).
    A cache that cannot be written (read-only, full) costs the cache, not the run: a warning, and the frames built
    are returned.
    """
    path = frame_cache_path(key, cache_dir)
    if path.is_file():
        hit = _read(path, key)
        if hit is not None:
            return hit
        warnings.warn(f"frame cache {path} is corrupt or stale; rebuilding it", stacklevel=2)
    frames, labels = build()
    buf = io.BytesIO()
    np.savez(buf, frames=frames, labels=labels,
             key=np.array(json.dumps({"format": FRAMES_FORMAT, **key}, sort_keys=True)))
    store(path, buf.getvalue(), "the frames")  # (getvalue shares the buffer's bytes: no copy)
    return frames, labels

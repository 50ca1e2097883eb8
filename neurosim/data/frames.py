"""Events → frames, converted once and cached on disk.

:func:`cached_frames` turns every sample of an event dataset into a frame tensor ``[T, P, H, W]`` (event counts
per time bin, polarity and pixel) and stores the whole split under ``<cache>/frames/``, keyed by the dataset, split
and every transform parameter: the frames and the labels as two raw arrays (``<entry>.frames.bin``,
``<entry>.labels.bin``) beside a small JSON key file (``<entry>.json``: the key, and each array's dtype and shape),
written last, so that it exists only beside a complete entry. The next epoch — and the next run — maps the arrays
into memory instead of processing events: the processes of one machine (e.g. the ranks of a ``torchrun``) share one
copy of the frames in the system's page cache, and a process reads from disk only the samples it uses. A corrupt,
truncated or mismatched entry is detected and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

from neurosim.data._cache import default_cache_dir, store

__all__ = ["FRAMES_FORMAT", "MappedArray", "cached_frames", "events_to_frames", "frame_array_path", "frame_cache_path"]

FRAMES_FORMAT = 2  # 2: raw arrays mapped into memory beside a JSON key; 1: one .npz, read whole by every process
_ARRAYS = ("frames", "labels")  # the arrays of an entry, each in <entry>.<name>.bin


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


def _entry_name(key: dict, frames_format: int) -> str:
    text = json.dumps({"format": frames_format, **key}, sort_keys=True)
    return f"{key.get('dataset', 'data')}_{key.get('split', 'all')}_{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def frame_cache_path(key: dict, cache_dir: Path | None = None) -> Path:
    """The key file of the cache entry for a key (dataset, split, transform parameters…): ``<cache>/frames/<dataset>_
    <split>_<digest>.json``, the arrays beside it (:func:`frame_array_path`). It is written last: it exists only
    beside a complete entry."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return root / "frames" / f"{_entry_name(key, FRAMES_FORMAT)}.json"


def frame_array_path(path: Path, name: str) -> Path:
    """The file of array ``name`` (``"frames"`` or ``"labels"``) of the entry whose key file is ``path``."""
    return path.with_name(f"{path.name[:-len('.json')]}.{name}.bin")


def _format1_path(key: dict, cache_dir: Path | None) -> Path:
    """Where neurosim with FRAMES_FORMAT 1 kept the same key's frames: one .npz, removed once the entry is rewritten."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return root / "frames" / f"{_entry_name(key, 1)}.npz"


class MappedArray(np.memmap):
    """An array of a frame-cache entry, mapped from its file copy-on-write (``mode="c"``).

    Pages are read from the file as they are used and shared with every other process that maps it. The array is
    writable (``torch.from_numpy`` takes it as it is), but what a process writes stays in its own memory: the file
    never changes. Pickled (e.g. to ``DataLoader`` workers started with ``spawn``), the whole array travels as a
    reference to its file, which the receiving process maps again, instead of as its bytes; so changes made in
    place do not travel: send a copy (``np.array(frames)``) of changed frames. A slice, a copy or a result of
    arithmetic pickles by value, as any array does.
    """

    _file: tuple | None = None  # (path, dtype, shape) of the array _map returned; views and copies have None

    def __reduce__(self):
        if self._file is not None and self.shape == self._file[2]:
            return _map, self._file
        return np.asarray(self).__reduce__()  # a plain array, by value


def _map(path: str, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """Array ``path`` of an entry as a :class:`MappedArray`, after checking that the file holds exactly its bytes."""
    dtype, shape = np.dtype(dtype), tuple(int(n) for n in shape)
    if dtype.hasobject or any(n < 0 for n in shape):
        raise ValueError(f"{path}: not an array of numbers ({dtype}, {shape})")
    size = Path(path).stat().st_size
    if size != dtype.itemsize * math.prod(shape):  # truncated (a full disk), or another entry's
        raise ValueError(f"{path}: {size} bytes, expected {dtype.itemsize * math.prod(shape)} for {dtype}{shape}")
    if size == 0:  # (an empty file cannot be mapped)
        return np.empty(shape, dtype)
    array = MappedArray(path, dtype=dtype, mode="c", shape=shape)
    array._file = (str(path), dtype.str, shape)
    return array


def _read(path: Path, key: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """The entry's ``(frames, labels)``, mapped; None where it is not a complete entry of ``key``."""
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        arrays = stored.pop("arrays")
        if json.dumps(stored, sort_keys=True) != json.dumps({"format": FRAMES_FORMAT, **key}, sort_keys=True):
            return None
        frames, labels = (_map(str(frame_array_path(path, name)), arrays[name]["dtype"], arrays[name]["shape"])
                          for name in _ARRAYS)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        return None  # (json's errors are ValueErrors)
    if frames.ndim == 0 or labels.ndim == 0 or len(frames) != len(labels):
        return None
    return frames, labels


def _remove(*paths: Path) -> None:
    for p in paths:
        try:
            p.unlink(missing_ok=True)
        except OSError:  # a read-only folder: a file without its key file is never served
            pass


def cached_frames(key: dict, build: Callable[[], tuple[np.ndarray, np.ndarray]],
                  cache_dir: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return ``build()``'s ``(frames, labels)``, from the cache when a valid entry for ``key`` exists.

    Both are :class:`MappedArray` arrays (see there: shared between processes, writable but private to this one,
    pickled as a reference to the file) when they come from the cache, or were just stored there. A missing entry
    is built and written: each array to its own file, atomically and without a copy in memory, then the key file;
    an unreadable, truncated or mismatched one is rebuilt (with a warning). A cache that cannot be written
    (read-only, full) costs the cache, not the run: a warning, and the frames built are returned from memory (inside
    :func:`~neurosim.data._cache.writes_required` it is a :class:`~neurosim.data._cache.CacheWriteError`). An entry
    of the old format (one ``.npz``, FRAMES_FORMAT 1) of the same key is removed once the new one is complete.
    """
    path = frame_cache_path(key, cache_dir)
    if path.is_file():
        hit = _read(path, key)
        if hit is not None:
            return hit
        warnings.warn(f"frame cache {path} is corrupt or stale; rebuilding it", stacklevel=2)
    frames, labels = build()
    arrays = {"frames": np.ascontiguousarray(frames), "labels": np.ascontiguousarray(labels)}
    parts = [frame_array_path(path, name) for name in _ARRAYS]
    text = json.dumps({"format": FRAMES_FORMAT, **key, "arrays": {
        name: {"dtype": a.dtype.str, "shape": list(a.shape)} for name, a in arrays.items()}}, sort_keys=True)
    _remove(path)  # an entry being rewritten has no key file until its arrays are complete
    try:
        stored = True
        for part, a in zip(parts, arrays.values()):  # each array's own bytes, as a flat byte view: no copy (np.savez
            stored = stored and store(part, memoryview(a.reshape(-1).view(np.uint8)), "the frames")  # into a buffer
        stored = stored and store(path, text.encode("utf-8"), "the frames")  # held a second one); the key file last
    except BaseException:  # (CacheWriteError inside writes_required, an interrupt)
        _remove(*parts)
        raise
    if not stored:
        _remove(*parts)  # arrays without a key file are never read: do not leave them filling the disk
        return frames, labels
    _remove(_format1_path(key, cache_dir))
    hit = _read(path, key)  # mapped, as every later read gets them: the array built here can be freed
    return hit if hit is not None else (frames, labels)

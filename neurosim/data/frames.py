"""Events → frames, converted once and cached on disk.

:func:`cached_frames` turns every sample of an event dataset into a frame tensor ``[T, P, H, W]`` (event counts
per time bin, polarity and pixel) and stores the whole split under ``<cache>/frames/``, keyed by the dataset, split
and every transform parameter: the frames and the labels as two raw arrays (``<entry>.frames.bin``,
``<entry>.labels.bin``) beside a small JSON key file (``<entry>.json``: the key, and each array's dtype and shape),
written last, so that it exists only beside a complete entry. The next epoch — and the next run — maps the arrays
into memory instead of processing events: the processes of one machine (e.g. the ranks of a ``torchrun``) share one
copy of the frames in the system's page cache, and a process reads from disk only the samples it uses. A missing,
truncated or mismatched file (by size, dtype and shape against the key: there is no checksum) is detected and
rebuilt; a file that cannot be mapped is read into memory instead. :func:`cached_event_frames` builds an entry from
an event dataset writing each sample's frames to the file as it is converted, so that memory does not hold the
split's frames, which grow with the number of time bins ``T``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import warnings
from multiprocessing.reduction import ForkingPickler
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

from neurosim._io import AtomicFile, _remove_stale_temps
from neurosim._stack import caller_stacklevel
from neurosim.data._cache import ENV_VAR, default_cache_dir, store, write_failed
from neurosim.data.readers import EventFileError

__all__ = ["FRAMES_FORMAT", "FramesError", "MappedArray", "cached_event_frames", "cached_frames", "events_to_frames",
           "frame_array_path", "frame_cache_path"]

FRAMES_FORMAT = 2  # 2: raw arrays mapped into memory beside a JSON key; 1: one .npz, read whole by every process
_ARRAYS = ("frames", "labels")  # the arrays of an entry, each in <entry>.<name>.bin


class FramesError(EventFileError):
    """A recording whose events ToFrame refuses at the frame settings asked for (e.g. a hot pixel's count past int16
    in one frame): the file reads well, so ``neurosim datasets check`` does not list it."""


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
    int32 past 65,535, once), not a list of per-sample frames, a stacked copy and a cast copy. (The frame cache does
    not hold them in memory at all: :func:`cached_event_frames` writes each sample to its file.)

    Samples whose events span fewer than ``time_steps`` time units (one event, all at one timestamp) get empty frames,
    as from tonic's ``ToFrame``: one ``UserWarning`` per call says how many, naming the first five by file (a
    folder dataset's, ``source(i)``) or index. Samples without events (a recording where nothing moved) get zero
    frames, as from tonic's ``ToFrame``, said by another such warning.

    Raises:
        ValueError: a sample ToFrame refuses, one with another number of time bins than ``time_steps``, one of
            another shape than the first sample's (the message names the sample), or an empty dataset.
        FramesError: a sample ToFrame refuses, of a dataset whose ``source(i)`` gives sample ``i``'s file (a
            folder dataset's): the message names the file.
    """
    n = len(dataset)
    frames = None
    labels = np.empty(n, dtype=np.int64)
    for i, f, label, top in _each_frame(dataset, sensor_size, time_steps, progress, desc):
        if frames is None:
            frames = np.empty((n, *f.shape), dtype=_FRAME_DTYPES[0])
        dtype = _smallest_dtype(top)
        if dtype != frames.dtype:  # a larger count than the dtype so far holds: widen what is filled, once per dtype
            wider = np.empty(frames.shape, dtype=dtype)
            wider[:i] = frames[:i]
            frames = wider
        frames[i] = f  # (a C cast, as astype: counts are whole numbers that fit)
        labels[i] = label
    return frames, labels


def _each_frame(dataset, sensor_size: Sequence[int], time_steps: int, progress: bool, desc: str):
    """``(i, frames [T, P, H, W] of sample i, its label, the largest count so far)`` for every sample of
    ``dataset``, checked as :func:`events_to_frames` says."""
    to_frame = _to_frame(sensor_size, time_steps)
    n = len(dataset)
    if n == 0:
        raise ValueError("the dataset is empty: no frames to build")
    shape = None
    top = 0  # the largest count so far: the frames' dtype is the smallest of _FRAME_DTYPES that holds it
    source = getattr(dataset, "source", None)  # a dataset that knows its samples' files (a folder's) names them
    short = []  # the samples whose events span fewer time units than time_steps: empty frames, said once at the end
    no_events = []  # the samples without events (nothing moved, a silent clip): zero frames, said once at the end
    for i in tqdm(range(n), desc=desc, disable=None if progress else True, leave=False):
        events, label = dataset[i]
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                f = np.asarray(to_frame(events))
        except ValueError as exc:  # (e.g. a count past ToFrame's int16 range: it names the frame and pixel)
            if source is not None:
                raise FramesError(source(i), str(exc)) from exc
            raise ValueError(f"sample {i}: {exc}") from exc
        for w in caught:
            if str(w.message).startswith(_SHORT_SPAN):
                short.append((i, int(events["t"].max()) - int(events["t"].min())))  # (sorted or not)
            else:  # (as ToFrame gave it)
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
        if isinstance(events, np.ndarray) and len(events) == 0:
            no_events.append(i)
        if f.shape[0] != time_steps:
            raise ValueError(f"sample {i}: ToFrame gave {f.shape[0]} time bins, expected {time_steps}")
        if shape is None:
            shape = f.shape
        elif f.shape != shape:
            raise ValueError(f"sample {i}: ToFrame gave frames of shape {f.shape}, sample 0 {shape}: "
                             "every sample of a split needs the same sensor_size")
        top = max(top, int(f.max(initial=0)))
        yield i, f, int(label), top
    if short:
        _warn_short_spans(short, n, source, time_steps, desc)
    if no_events:
        _warn_no_events(no_events, n, source, desc)


_SHORT_SPAN = "ToFrame: the events span"  # how ToFrame's warning of a span shorter than n_time_bins begins


def _warn_short_spans(short: list[tuple[int, int]], n: int, source, time_steps: int, desc: str) -> None:
    """One warning for a split's samples whose events span fewer than ``time_steps`` time units (each ToFrame's own,
    which named none and which Python shows once for all alike): how many, and the first few by file or index."""
    shown = ", ".join(f"{source(i) if source is not None else f'sample {i}'} ({span} µs)" for i, span in short[:5])
    more = f" and {len(short) - 5} more" if len(short) > 5 else ""
    warnings.warn(f"{desc}: {len(short)} of {n} recordings span fewer time units than the {time_steps} frames, so "
                  f"ToFrame(n_time_bins={time_steps}) bins them 0 units wide and their frames are empty: {shown}"
                  f"{more}; check their timestamps (whole microseconds), or leave them out", UserWarning,
                  stacklevel=caller_stacklevel())


def _warn_no_events(no_events: list[int], n: int, source, desc: str) -> None:
    """One warning for a split's samples that hold no events: valid data (a scene where nothing moved, a silent
    clip), framed as zeros as tonic's ``ToFrame`` frames them; said, as a file cut short of its events reads alike."""
    shown = ", ".join(str(source(i)) if source is not None else f"sample {i}" for i in no_events[:5])
    more = f" and {len(no_events) - 5} more" if len(no_events) > 5 else ""
    warnings.warn(f"{desc}: {len(no_events)} of {n} recordings hold no events, so their frames are all zero (as "
                  f"tonic's ToFrame frames them): {shown}{more}; that is right for a recording where nothing moved "
                  "or a silent clip, else leave them out", UserWarning, stacklevel=caller_stacklevel())


class _WriteFailed(Exception):
    """Writing a cache file failed (``error``), as opposed to reading the dataset."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


class _FramesFile:
    """A split's frames ``[N, T, ...]`` written to the entry's frames file sample by sample (an
    :class:`~neurosim._io.AtomicFile`), in the smallest of the frame dtypes that holds the largest count so far: a
    larger count rewrites the samples written so far into a new file in the wider dtype, a block at a time (once per
    dtype, as :func:`events_to_frames` widens its array). Writes that fail raise :class:`_WriteFailed`."""

    _BLOCK_BYTES = 64 << 20  # read back per block when widening

    def __init__(self, path: Path) -> None:
        self.path, self.out, self.dtype, self.shape, self.written = path, None, None, None, 0

    def _open(self) -> AtomicFile:
        try:
            return AtomicFile(self.path)
        except OSError as e:
            raise _WriteFailed(e) from e

    def put(self, f: np.ndarray, top: int) -> None:
        dtype = np.dtype(_smallest_dtype(top))
        if self.out is None:
            self.out, self.dtype, self.shape = self._open(), dtype, f.shape
        elif dtype != self.dtype:
            self._widen(dtype)
        self._write(self.out, np.ascontiguousarray(f, dtype=self.dtype))  # (a C cast: counts that fit)
        self.written += 1

    @staticmethod
    def _write(out: AtomicFile, a: np.ndarray) -> None:
        try:
            out.write(memoryview(a.reshape(-1).view(np.uint8)))
        except OSError as e:
            raise _WriteFailed(e) from e

    def _widen(self, dtype: np.dtype) -> None:
        old, was = self.out, self.dtype
        try:
            old.file.flush()
        except OSError as e:
            raise _WriteFailed(e) from e
        new = self._open()
        try:
            size = math.prod(self.shape)
            per = max(1, self._BLOCK_BYTES // (size * dtype.itemsize))  # samples per block
            for start in range(0, self.written, per):
                n = min(per, self.written - start)
                block = np.fromfile(old.tmp, dtype=was, count=n * size, offset=start * size * was.itemsize)
                self._write(new, block.astype(dtype))
        except BaseException:
            new.discard()
            raise
        old.discard()
        self.out, self.dtype = new, dtype

    def commit(self) -> None:
        try:
            self.out.commit()
        except OSError as e:
            raise _WriteFailed(e) from e

    def discard(self) -> None:
        if self.out is not None:
            self.out.discard()


def _smallest_dtype(top: int) -> type:
    return next((d for d in _FRAME_DTYPES[:-1] if top <= np.iinfo(d).max), _FRAME_DTYPES[-1])


def _entry_name(key: dict) -> str:
    """``<dataset>_<split>_<digest of the whole key>``, a name of one file in ``<cache>/frames/``: a folder dataset
    (``folder:/path/to/rec``) is named ``folder-rec`` there, and any character other than a letter, digit, ``.``,
    ``_`` or ``-`` is ``_`` (its full name keys the digest); it was a chain of folders, ``frames/folder:/path/to/``,
    whose ``:`` Windows does not take."""
    text = json.dumps({"format": FRAMES_FORMAT, **key}, sort_keys=True)
    dataset = str(key.get("dataset", "data"))
    if dataset.startswith("folder:"):
        dataset = "folder-" + Path(dataset[len("folder:"):]).name
    dataset = re.sub(r"[^A-Za-z0-9._-]", "_", dataset)
    return f"{dataset}_{key.get('split', 'all')}_{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def frame_cache_path(key: dict, cache_dir: Path | None = None) -> Path:
    """The key file of the cache entry for a key (dataset, split, transform parameters…): ``<cache>/frames/<dataset>_
    <split>_<digest>.json``, the arrays beside it (:func:`frame_array_path`). It is written last: it exists only
    beside a complete entry."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return root / "frames" / f"{_entry_name(key)}.json"


def frame_array_path(path: Path, name: str) -> Path:
    """The file of array ``name`` (``"frames"`` or ``"labels"``) of the entry whose key file is ``path``."""
    return path.with_name(f"{path.name[:-len('.json')]}.{name}.bin")


def _format1_files(folder: Path) -> list[Path]:
    """The entries neurosim with FRAMES_FORMAT 1 left in ``folder`` (``<cache>/frames/``): every ``*.npz`` there,
    since neurosim writes no other .npz under it."""
    try:
        return sorted(folder.glob("*.npz"))
    except OSError:
        return []


_SWEPT: set[Path] = set()  # frame folders whose format-1 entries this process has removed


def _remove_format1(folder: Path) -> None:
    """Remove the old-format (FRAMES_FORMAT 1) entries of ``folder``, once per process and folder: called after a
    format-2 entry was stored there, so a run that keys other splits (a subset) frees them too. Their ``.tmp``
    files are left to :func:`~neurosim._io._remove_stale_temps`: those of a finished or killed write go, a live
    write's (an older neurosim using the same cache right now) is kept — it would fail without it."""
    if folder in _SWEPT:
        return
    _SWEPT.add(folder)
    _remove(*_format1_files(folder))
    try:
        temps = list(folder.glob(".*.npz.*.tmp"))
    except OSError:
        return
    for target in {t.name[1:t.name.index(".npz.") + len(".npz")] for t in temps}:
        try:
            _remove_stale_temps(folder / target)
        except OSError:
            pass


def _identity(stat: os.stat_result) -> tuple[int, int, int, int]:
    """What tells a file from its replacement (a rebuilt or removed and recreated entry)."""
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


class MappedArray(np.memmap):
    """An array of a frame-cache entry, mapped from its file copy-on-write (``mode="c"``).

    Pages are read from the file as they are used and shared with every other process that maps it. The array is
    writable (``torch.from_numpy`` takes it as it is), but what a process writes stays in its own memory: the file
    never changes. Copy-on-write has a price where the system does not overcommit memory
    (``vm.overcommit_memory=2``): each mapping counts the whole file against the commit limit, although none of it
    is used until written. Where that limit, or another (open files), refuses the mapping, :func:`cached_frames`
    reads the entry into memory instead, with a warning. (``MAP_NORESERVE`` would not help: Linux ignores it under
    strict overcommit.)

    Results are plain arrays, as ``np.memmap``'s are: arithmetic, ``astype(...) / 2``, fancy indexing and
    reductions give ``np.ndarray`` or scalars (``frames.max()`` is a number), not arrays of no file.

    Pickled, it is an array like any other: ``pickle``, ``torch.save`` or joblib store its numbers, which stay
    valid when the cache is cleaned. Sent to another process by :mod:`multiprocessing` (the arguments of a
    ``spawn`` process, ``DataLoader`` workers, ``Pool`` tasks: what ``multiprocessing.reduction.ForkingPickler``
    pickles), a whole array travels instead as a reference to its file (absolute path), which the receiving
    process maps again: its bytes are not copied, and changes made in place do not travel — send a copy
    (``np.array(frames)``) of changed frames. A slice or a copy travels by value.
    """

    #: (absolute path, dtype, the file's shape, file identity, rows mapped or None for all) of an array _map
    #: returned; else None
    _file: tuple | None = None

    def __array_wrap__(self, arr, context=None, return_scalar=False):
        arr = super().__array_wrap__(arr, context)  # (np.memmap's leaves a subclass's result as it is)
        if arr is self:  # an ufunc that wrote into this array (out=, +=)
            return arr
        arr = arr.view(np.ndarray)
        return arr[()] if return_scalar or arr.shape == () else arr

    def __getitem__(self, index):
        got = super().__getitem__(index)  # a view of the mapping stays mapped; a copy (fancy index) is a plain array
        return got.view(np.ndarray) if isinstance(got, MappedArray) and got._mmap is None else got

    def __reduce__(self):
        return np.asarray(self).__reduce__()  # a plain array, by value


def _reduce_for_a_process(array: MappedArray):
    """How :mod:`multiprocessing` sends a :class:`MappedArray`: a whole array as a reference to its file while the
    file is still the one mapped, anything else by value."""
    if array._file is not None and array.shape == _mapped_shape(array._file[2], array._file[4]):
        try:
            same = _identity(os.stat(array._file[0])) == array._file[3]
        except OSError:
            same = False
        if same:
            return _remap, array._file
    return array.__reduce__()


ForkingPickler.register(MappedArray, _reduce_for_a_process)


def _mapped_shape(shape: tuple[int, ...], rows: int | None) -> tuple[int, ...]:
    """The shape of the first ``rows`` rows of a file's array of ``shape`` (None: all of them)."""
    return tuple(shape) if rows is None or rows >= shape[0] else (rows, *shape[1:])


def _remap(path: str, dtype: str, shape: tuple[int, ...], identity: tuple, rows: int | None = None) -> np.ndarray:
    """A :class:`MappedArray` sent by :mod:`multiprocessing`, mapped again in the receiving process (its first
    ``rows`` rows where only those were mapped)."""
    try:
        return _map(path, dtype, shape, identity, rows=rows)
    except (_Stale, _Unreadable) as e:
        raise ValueError(f"{e}: frames sent to this process as a reference to that frame-cache file could not be "
                         "mapped again; keep the frame cache in place while the processes it is sent to start, or "
                         "send them a copy (np.array(frames))") from None


class _Stale(Exception):
    """Not a complete, valid entry of its key (a missing or wrong-size file, a key file that does not match): it
    is rebuilt."""


class _Unreadable(Exception):
    """An entry that this process cannot read now (no permission, too many open files…): it is left as it is."""

    def __init__(self, path: str, error: OSError) -> None:
        super().__init__(f"{path}: {error.strerror or error}")
        self.path, self.error = path, error


def _advice(e: OSError) -> str:
    """What lets this process map or read the cache again, for the cause ``e``."""
    if e.errno == errno.ENOMEM:
        return ("under strict overcommit (vm.overcommit_memory=2) a copy-on-write mapping counts the whole file "
                "against the commit limit: free memory, raise vm.overcommit_ratio, or run fewer processes at once")
    if e.errno in (errno.EMFILE, errno.ENFILE):
        return "raise the limit on open files (ulimit -n), or open fewer files at once"
    if e.errno in (errno.EACCES, errno.EPERM):
        return f"make the file readable, or set {ENV_VAR} to a cache folder of your own"
    return "check the file and the file system it is on (some cannot map files)"


_UNMAPPED: set[str] = set()  # entries (key files) and files this process could not map, and warned about


def _warn_unmapped(path: str, e: OSError, entry: str | None = None) -> None:
    """Say once per entry (or file) and process that ``path`` could not be mapped, why, and what to do."""
    if (entry or path) in _UNMAPPED:
        return
    _UNMAPPED.add(entry or path)
    warnings.warn(f"could not map the frame cache file {path} ({e.strerror or e}): this process reads "
                  f"{'the entry' if entry else 'it'} into memory instead (the entry is fine and is kept); "
                  f"{_advice(e)}", RuntimeWarning, stacklevel=caller_stacklevel())


def _map(path: str, dtype: np.dtype, shape: tuple[int, ...], identity: tuple | None = None,
         entry: str | None = None, rows: int | None = None) -> np.ndarray:
    """Array ``path`` of an entry as a :class:`MappedArray`, after checking that the file holds exactly its bytes
    (and, with ``identity``, that it is still that file). A file that cannot be mapped is read into memory
    instead (a warning, once per ``entry`` — its key file — or file, and process).

    ``rows``: only the array's first ``rows`` rows (samples) are mapped (or read), ``[rows, ...]``: a subset of a
    cached split takes its own bytes of address space, not the whole file's (which counts against ``ulimit -v``:
    ~55 GB for N-MNIST's training split at T = 400). None, or ``rows`` past the end: the whole array.

    Raises:
        _Stale: a missing file or one of another size (or identity).
        _Unreadable: a file that cannot be opened or read (the entry is not to blame).
    """
    path, dtype, shape = os.path.abspath(path), np.dtype(dtype), tuple(shape)
    nbytes = dtype.itemsize * math.prod(shape)
    try:
        f = open(path, "rb")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as e:
        raise _Stale(f"{path}: {e.strerror}") from None
    except OSError as e:
        raise _Unreadable(path, e) from None
    with f:
        try:
            stat = os.fstat(f.fileno())
        except OSError as e:
            raise _Unreadable(path, e) from None
        if stat.st_size != nbytes:  # truncated (a full disk), or another entry's
            raise _Stale(f"{path}: {stat.st_size} bytes, expected {nbytes} for {dtype}{shape}")
        if identity is not None and _identity(stat) != tuple(identity):
            raise _Stale(f"{path}: replaced since it was mapped")
        rows = None if rows is None or rows >= shape[0] else int(rows)
        mapped = _mapped_shape(shape, rows)
        if dtype.itemsize * math.prod(mapped) == 0:  # (an empty file, or no rows, cannot be mapped)
            return np.empty(mapped, dtype)
        try:
            array = MappedArray(f, dtype=dtype, mode="c", shape=mapped)  # (from offset 0: the first rows' bytes only)
        except OSError as e:  # the system refused the mapping: ENOMEM (the commit limit), ENFILE/EMFILE, ENODEV
            _warn_unmapped(path, e, entry)
            return _read_whole(f, path, dtype, mapped)
    array._file = (path, dtype.str, shape, _identity(stat), rows)
    return array


def _read_whole(f, path: str, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """The array of open file ``f`` read into memory (the fallback of :func:`_map`): its first rows, as many as
    ``shape`` holds."""
    try:
        array = np.empty(shape, dtype)
    except MemoryError:
        raise MemoryError(f"{path}: {dtype.itemsize * math.prod(shape)} bytes of frames could neither be mapped nor "
                          "read into memory; free memory, or use a subset (data.train_subset)") from None
    try:
        f.seek(0)
        got = f.readinto(memoryview(array.reshape(-1).view(np.uint8)))
    except OSError as e:
        raise _Unreadable(path, e) from None
    if got != array.nbytes:
        raise _Stale(f"{path}: {got} bytes read, expected {array.nbytes}")
    return array


_FRAME_DTYPE_NAMES = ", ".join(np.dtype(d).name for d in _FRAME_DTYPES)


def _layout(arrays: dict, key: dict) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    """Each array's ``(dtype, shape)`` from an entry's key file, checked against what frames of ``key`` are:
    frames ``[N, T, P, H, W]`` (``[N, T, P, W]`` for sensors without y, e.g. audio) of one of the frame dtypes,
    ``T`` and the sensor those of the key where it has them, and ``N`` int64 labels. Raises :class:`_Stale`."""
    got = {}
    for name in _ARRAYS:
        dtype, shape = arrays[name]["dtype"], arrays[name]["shape"]
        if not isinstance(dtype, str) or not isinstance(shape, list) or \
                not all(type(n) is int and n >= 0 for n in shape):
            raise _Stale(f"{name}: dtype {dtype!r}, shape {shape!r} describe no array")
        got[name] = (np.dtype(dtype), tuple(shape))
    (frames_dtype, frames), (labels_dtype, labels) = got["frames"], got["labels"]
    if frames_dtype not in [np.dtype(d) for d in _FRAME_DTYPES]:
        raise _Stale(f"frames of dtype {frames_dtype}, expected one of {_FRAME_DTYPE_NAMES}")
    if labels_dtype != np.dtype(np.int64):
        raise _Stale(f"labels of dtype {labels_dtype}, expected int64")
    if len(frames) not in (4, 5) or labels != frames[:1]:
        raise _Stale(f"frames of shape {frames} and labels of shape {labels}, expected [N, T, P, H, W] (or "
                     "[N, T, P, W]) and [N]")
    if "n_time_bins" in key and frames[1] != key["n_time_bins"]:
        raise _Stale(f"frames of {frames[1]} time bins, the key says {key['n_time_bins']}")
    if "sensor_size" in key:
        w, h, p = key["sensor_size"]
        if frames[2:] != ((p, h, w) if len(frames) == 5 else (p, w)):
            raise _Stale(f"frames of shape {frames}, the key's sensor_size is {key['sensor_size']} (W, H, P)")
    return got


def _read(path: Path, key: dict, rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The entry's ``(frames, labels)``, mapped (or read, where they cannot be mapped); ``rows``: the first ``rows``
    samples only (:func:`_map`).

    Raises:
        _Stale: not a complete, valid entry of ``key``.
        _Unreadable: an entry this process cannot read now.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError) as e:
        raise _Stale(f"{path}: {e.strerror}") from None
    except OSError as e:
        raise _Unreadable(str(path), e) from None
    except UnicodeDecodeError:
        raise _Stale("the key file is not text") from None
    try:
        stored = json.loads(text)
        arrays = stored.pop("arrays")
        if json.dumps(stored, sort_keys=True) != json.dumps({"format": FRAMES_FORMAT, **key}, sort_keys=True):
            raise _Stale("the key file holds another key")
        layout = _layout(arrays, key)
    except (ValueError, KeyError, TypeError, AttributeError) as e:  # (json's errors are ValueErrors)
        raise _Stale(f"the key file is malformed ({type(e).__name__}: {e})") from None
    frames = _map(str(frame_array_path(path, "frames")), *layout["frames"], entry=str(path), rows=rows)
    labels = _map(str(frame_array_path(path, "labels")), *layout["labels"], entry=str(path), rows=rows)
    return frames, labels


def _remove(*paths: Path) -> None:
    for p in paths:
        try:
            p.unlink(missing_ok=True)
        except OSError:  # a read-only folder: a file without its key file is never served
            pass


def _stored(frames: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """``build()``'s arrays as an entry stores them: contiguous, integer labels as int64."""
    arrays = {"frames": np.ascontiguousarray(frames), "labels": np.ascontiguousarray(labels)}
    if arrays["labels"].dtype.kind in "iu":
        arrays["labels"] = arrays["labels"].astype(np.int64, copy=False)
    return arrays


def cached_frames(key: dict, build: Callable[[], tuple[np.ndarray, np.ndarray]],
                  cache_dir: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return ``build()``'s ``(frames, labels)``, from the cache when a valid entry for ``key`` exists.

    Both are :class:`MappedArray` arrays (see there: shared between processes, writable but private to this one,
    sent to other processes of :mod:`multiprocessing` as a reference to the file) when they come from the cache,
    or were just stored there. A missing entry is built and written: each array to its own file, atomically and
    without a copy in memory, then the key file.

    An entry is checked before it is served: its key file must hold ``key``, frames of a frame dtype (uint8, uint16,
    int32) and shape ``[N, T, P, H, W]`` (``[N, T, P, W]`` without y) whose ``T`` and sensor are the key's
    ``n_time_bins`` and ``sensor_size`` where it has them, int64 labels ``[N]``, and each file exactly the bytes
    they take. One that fails (a missing or truncated file, another key's) is rebuilt, with a warning saying why.
    There is no checksum: a byte changed inside a ``.bin`` file (a disk error) is served as it is (the ``.npz`` of
    FRAMES_FORMAT 1 had a CRC that detected it, at the price of reading the whole split). An entry that cannot be
    mapped (ENOMEM under strict overcommit, too many open files) is read into memory instead, and one that cannot
    be read at all (no permission) is built in memory for this run; both are left as they are, with a warning.

    A cache that cannot be written (read-only, full) costs the cache, not the run: a warning, and the frames built
    are returned from memory (inside :func:`~neurosim.data._cache.writes_required` it is a
    :class:`~neurosim.data._cache.CacheWriteError`). Once an entry is stored, the entries of the old format (one
    ``.npz`` per entry, FRAMES_FORMAT 1) in the same folder are removed, whatever their key.

    Raises:
        ValueError: ``build()`` gave arrays that are not frames and labels of ``key`` (as :func:`events_to_frames`
            gives them); nothing is written then.
    """
    path = frame_cache_path(key, cache_dir)
    served = _served(path, key, build)
    if served is not None:
        return served
    frames, labels = build()
    arrays = _stored(frames, labels)
    layout = {name: {"dtype": a.dtype.str, "shape": list(a.shape)} for name, a in arrays.items()}
    try:  # arrays that no read would ever serve: build() is wrong, not the cache; nothing is written
        _layout(layout, key)
    except _Stale as e:
        raise ValueError(f"cached_frames: build() for {path.name} gave {e.args[0]}; it must return frames and "
                         "labels as events_to_frames does") from None
    parts = [frame_array_path(path, name) for name in _ARRAYS]
    _remove(path)  # an entry being rewritten has no key file until its arrays are complete
    try:
        stored = True
        for part, a in zip(parts, arrays.values()):  # each array's own bytes, as a flat byte view: no copy (np.savez
            stored = stored and store(part, memoryview(a.reshape(-1).view(np.uint8)), "the frames")  # into a buffer
        stored = stored and _store_key(path, key, layout)  # held a second one); the key file last
    except BaseException:  # (CacheWriteError inside writes_required, an interrupt)
        _remove(*parts)
        raise
    if not stored:
        _remove(*parts)  # arrays without a key file are never read: do not leave them filling the disk
        return frames, labels
    return _stored_entry(path, key, lambda: (frames, labels))


def cached_event_frames(key: dict, dataset: Callable[[], Sequence], sensor_size: Sequence[int], time_steps: int,
                        progress: bool = True, desc: str = "frames", cache_dir: Path | None = None,
                        rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`cached_frames` of ``events_to_frames(dataset(), sensor_size, time_steps)``, written to the cache as the
    samples are converted: building the entry holds one sample's frames in memory, not the split's (which
    :func:`events_to_frames` returns whole: 14 GB for N-MNIST's 60,000 training samples at T = 100, ~1 GB for the
    event digits at T = 300, and T times more with every step). ``dataset`` is called only when the entry must be
    built. The entry, its checks and what is served are :func:`cached_frames`'; a cache that cannot be written
    (read-only, full) costs the cache, not the run, as there: a warning, and the frames are converted again in
    memory (a :class:`~neurosim.data._cache.CacheWriteError` inside
    :func:`~neurosim.data._cache.writes_required`).

    ``rows``: of an entry served from the cache (or just stored), only the first ``rows`` samples are mapped, as
    ``(frames[:rows], labels[:rows])`` of the mapping of the whole file would be, but taking only their own address
    space (``data.train_subset`` of a split already cached). Frames converted in memory (a cache that cannot be
    written or read) are the whole split's.

    Raises:
        ValueError, FramesError: as :func:`events_to_frames`; nothing is written then.
    """
    path = frame_cache_path(key, cache_dir)
    served = _served(path, key, lambda: events_to_frames(dataset(), sensor_size, time_steps, progress, desc), rows)
    if served is not None:
        return served
    ds = dataset()
    parts = [frame_array_path(path, name) for name in _ARRAYS]
    _remove(path)  # an entry being rewritten has no key file until its arrays are complete
    out, labels = _FramesFile(parts[0]), np.empty(len(ds), dtype=np.int64)
    try:
        for i, f, label, top in _each_frame(ds, sensor_size, time_steps, progress, desc):
            out.put(f, top)
            labels[i] = label
        out.commit()
    except _WriteFailed as e:
        out.discard()
        write_failed(parts[0], e.error, "the frames")
        return events_to_frames(ds, sensor_size, time_steps, progress, desc)
    except BaseException:  # the dataset's errors, an interrupt: no file left
        out.discard()
        raise
    layout = {"frames": {"dtype": out.dtype.str, "shape": [len(ds), *out.shape]},
              "labels": {"dtype": labels.dtype.str, "shape": [len(ds)]}}
    stored = False
    try:
        try:  # frames that no read would ever serve (a key whose sensor they do not have): nothing is kept
            _layout(layout, key)
        except _Stale as e:
            raise ValueError(f"cached_event_frames: the frames of {path.name} are {e.args[0]}") from None
        stored = store(parts[1], memoryview(labels.view(np.uint8)), "the frames") and _store_key(path, key, layout)
        if not stored:  # (warned) the frames are on disk without the rest of an entry: served mapped, then removed
            return _map(str(parts[0]), out.dtype, (len(ds), *out.shape)), labels
    finally:
        if not stored:  # arrays without a key file are never read: do not leave them filling the disk
            _remove(*parts)
    return _stored_entry(path, key, lambda: events_to_frames(ds, sensor_size, time_steps, progress, desc), rows)


def _served(path: Path, key: dict, build: Callable[[], tuple[np.ndarray, np.ndarray]], rows: int | None = None):
    """The entry of ``key`` at ``path``, mapped (its first ``rows`` samples: :func:`_map`); None where there is none
    to serve (missing, or stale: a warning, and the caller rebuilds it); ``build()`` where it cannot be read (a
    warning; the entry is left as it is)."""
    if not path.is_file():
        return None
    try:
        return _read(path, key, rows)
    except _Stale as e:
        warnings.warn(f"frame cache {path} is corrupt or stale; rebuilding it ({e})", stacklevel=3)
    except _Unreadable as e:
        warnings.warn(f"could not read the frame cache {e} (the entry is left as it is): its frames are built "
                      f"in memory for this run; {_advice(e.error)}", RuntimeWarning, stacklevel=3)
        return build()
    return None


def _store_key(path: Path, key: dict, layout: dict) -> bool:
    """Write the entry's key file (last: it exists only beside complete arrays); False where it could not be (warned)."""
    text = json.dumps({"format": FRAMES_FORMAT, **key, "arrays": layout}, sort_keys=True)
    return store(path, text.encode("utf-8"), "the frames")


def _stored_entry(path: Path, key: dict, otherwise: Callable[[], tuple[np.ndarray, np.ndarray]],
                  rows: int | None = None):
    """The entry just stored at ``path``, mapped as every later read gets it (its first ``rows`` samples:
    :func:`_map`; frames built in memory can be freed), once the old-format entries beside it are removed;
    ``otherwise()`` where it cannot be read back (replaced or removed meanwhile by another process, or not mappable
    here)."""
    _remove_format1(path.parent)
    try:
        return _read(path, key, rows)
    except (_Stale, _Unreadable):
        return otherwise()

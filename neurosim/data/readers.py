"""Robust readers for event files on disk, and a folder checker that reports every bad file.

Three on-disk formats used by the datasets neurosim loads through tonic (layouts in ``REFERENCES.md``,
"Event data formats"):

* **N-MNIST / N-Caltech101 ``.bin``** — 5 bytes per event: ``b0 = x``, ``b1 = y``,
  ``b2 = (p << 7) | t[22:16]``, ``b3 = t[15:8]``, ``b4 = t[7:0]`` (t in µs). A record with ``y = 240`` is a
  timestamp-overflow marker, not an event. :func:`read_nmnist_bin` decodes exactly as tonic 1.7's
  ``tonic.io.read_mnist_file`` (same events, same order, same dtype ``tonic.datasets.NMNIST.dtype``, the same
  overflow handling: every marker adds ``2**13`` µs to all later records, markers dropped).
* **``.npy`` event arrays** (DVSGesture: ``(N, 4)`` x, y, p, t; POKERDVS: ``(N, 4)`` t, x, y, p; or a structured
  array) — :func:`read_npy_events`.
* **SHD / SSC ``.h5``** — ``spikes/times`` (seconds, one variable-length array per sample), ``spikes/units``
  (channel per spike), ``labels``; optional ``extra/keys`` and ``extra/speaker`` — :func:`read_shd_h5` returns
  events in tonic's audio dtype ``(t, x, p)`` exactly as ``tonic.datasets.SHD`` builds them (``t`` = seconds ×
  1e6 truncated to int µs, ``x`` = unit, ``p`` = 1).

Every reader raises :class:`EventFileError` (a ``ValueError``) for a missing, empty, truncated or garbage file,
with a message that names the file and says what is wrong — for ``.bin`` files also the byte offset of the first
bad record — instead of a numpy / h5py traceback.

:func:`check_files` scans a folder (or a list of files), reads every event file, does not stop at the first bad
one, and returns a :class:`CheckReport` with the good files and, for each bad file, the reason. It is what
``neurosim datasets check NAME`` prints::

    >>> report = check_files("~/.cache/neurosim/datasets/NMNIST/Train")          # doctest: +SKIP
    >>> print(report.format())                                                    # doctest: +SKIP
    checked 60000 files under ...: 59998 ok, 2 bad
      .../3/01234.bin: truncated: 21623 bytes is not a whole number of 5-byte records ... (byte offset 21620)
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

__all__ = [
    "EVENT_SUFFIXES", "NMNIST_DTYPE", "SHD_DTYPE", "BadFile", "CheckReport", "EventFileError", "ShdFile",
    "check_files", "read_events", "read_nmnist_bin", "read_npy_events", "read_shd_h5", "shd_label_problem",
]

NMNIST_DTYPE = np.dtype([("x", int), ("y", int), ("t", int), ("p", int)])
"""Event dtype of tonic's N-MNIST reader (``tonic.datasets.NMNIST.dtype``): x, y, t (µs), p — all ``int``."""

SHD_DTYPE = np.dtype([("t", int), ("x", int), ("p", int)])
"""Event dtype of tonic's SHD/SSC datasets (``tonic.datasets.SHD.dtype``): t (µs), x (channel), p (always 1)."""

EVENT_SUFFIXES = (".bin", ".npy", ".h5", ".hdf5")
"""File suffixes :func:`check_files` looks at by default (and :func:`read_events` understands)."""

_NMNIST_RECORD = 5
_NMNIST_OVERFLOW_Y = 240
_NMNIST_OVERFLOW_US = 2**13  # what tonic 1.7 adds per overflow marker


class EventFileError(ValueError):
    """An event file is missing, empty, truncated or not in the expected format.

    The message names the file and the problem, and for record-based formats the byte offset of the first bad
    record: ``"/data/x.bin: truncated: ... (byte offset 21620)"``.

    Attributes:
        path: the file.
        reason: what is wrong, without the file name.
        offset: byte offset of the first bad record, or None where it does not apply.
    """

    def __init__(self, path: str | os.PathLike, reason: str, offset: int | None = None):
        self.path = Path(path)
        self.reason = reason
        self.offset = offset
        msg = f"{self.path}: {reason}"
        if offset is not None:
            msg += f" (byte offset {offset})"
        super().__init__(msg)

    def __reduce__(self):  # keep the attributes when pickled (e.g. out of a DataLoader worker)
        return (type(self), (self.path, self.reason, self.offset))


def _file_size(path: Path) -> int:
    if not path.exists():
        raise EventFileError(path, "no such file")
    if not path.is_file():
        raise EventFileError(path, "not a regular file")
    try:
        return path.stat().st_size
    except OSError as exc:
        raise EventFileError(path, f"cannot read: {exc.strerror or exc}") from exc


def _read_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise EventFileError(path, f"cannot read: {exc.strerror or exc}") from exc


# --------------------------------------------------------------------------------------------------------------
# N-MNIST .bin


def read_nmnist_bin(path: str | os.PathLike, *, sensor_size: tuple[int, int] | None = (34, 34),
                    validate: bool = True, allow_empty: bool = False, dtype: np.dtype = NMNIST_DTYPE) -> np.ndarray:
    """Read an N-MNIST-format ``.bin`` file (40-bit records) into tonic's N-MNIST event array.

    The decoding equals tonic 1.7's ``tonic.io.read_mnist_file(path, dtype=NMNIST.dtype)`` event for event
    (tested on a real recording); on top of it, a file that cannot be a recording raises :class:`EventFileError`.

    Args:
        path: the ``.bin`` file.
        sensor_size: ``(width, height)`` every event must fall inside — ``(34, 34)`` for N-MNIST; pass the
            sensor of another dataset in this format (N-Caltech101: ``(240, 180)``) or None to skip the check.
        validate: check coordinates (``sensor_size``) and that timestamps never decrease — random bytes fail
            these at once. ``False`` decodes whatever is there, like tonic (size and emptiness still checked).
        allow_empty: accept a well-formed file that holds no events (only overflow markers); a 0-byte file is
            always an error.
        dtype: output dtype with fields ``x, y, t, p`` (default tonic's N-MNIST dtype).

    Returns:
        Structured array (fields x, y, t, p in ``dtype``), ``t`` in µs, in file order.

    Raises:
        EventFileError: missing, unreadable or 0-byte file; a size that is not a whole number of 5-byte records
            (truncated; the offset is that of the incomplete last record); with ``validate``, the first record
            outside ``sensor_size`` or going back in time (offset of that record); no events and not
            ``allow_empty``.
    """
    path = Path(path)
    size = _file_size(path)
    if size == 0:
        raise EventFileError(path, "empty file (0 bytes), expected 5-byte N-MNIST event records", offset=0)
    if size % _NMNIST_RECORD:
        last = size - size % _NMNIST_RECORD
        raise EventFileError(
            path, f"truncated: {size} bytes is not a whole number of {_NMNIST_RECORD}-byte records; the last record "
                  f"has only {size % _NMNIST_RECORD} of its {_NMNIST_RECORD} bytes", offset=last)
    raw = np.frombuffer(_read_bytes(path), dtype=np.uint8)
    if raw.size != size:  # the file changed under us
        raise EventFileError(path, f"file size changed while reading ({size} → {raw.size} bytes)")
    rec = raw.reshape(-1, _NMNIST_RECORD).astype(np.int64)
    x, y = rec[:, 0], rec[:, 1]
    p = (rec[:, 2] & 128) >> 7
    t = ((rec[:, 2] & 127) << 16) | (rec[:, 3] << 8) | rec[:, 4]
    overflow = y == _NMNIST_OVERFLOW_Y
    if overflow.any():  # tonic: ts[i:] += 2**13 for every marker i (the marker itself included, then dropped)
        t = t + _NMNIST_OVERFLOW_US * np.cumsum(overflow)
    keep = ~overflow
    idx = np.flatnonzero(keep)
    if validate and idx.size:
        if sensor_size is not None:
            width, height = int(sensor_size[0]), int(sensor_size[1])
            outside = (x[idx] >= width) | (y[idx] >= height)
            if outside.any():
                i = int(idx[np.argmax(outside)])
                raise EventFileError(
                    path, f"not N-MNIST data: record {i} has x={x[i]}, y={y[i]}, outside the {width}×{height} "
                          f"sensor (garbage or another format?)", offset=i * _NMNIST_RECORD)
        back = np.diff(t[idx]) < 0
        if back.any():
            j = int(np.argmax(back)) + 1
            i, prev = int(idx[j]), int(idx[j - 1])
            raise EventFileError(
                path, f"not N-MNIST data: record {i} goes back in time (t={t[i]} µs after t={t[prev]} µs; "
                      f"garbage or another format?)", offset=i * _NMNIST_RECORD)
    if idx.size == 0 and not allow_empty:
        raise EventFileError(path, f"no events: all {len(rec)} records are timestamp-overflow markers")
    events = np.empty(idx.size, dtype=dtype)
    events["x"], events["y"], events["t"], events["p"] = x[idx], y[idx], t[idx], p[idx]
    return events


# --------------------------------------------------------------------------------------------------------------
# .npy


def read_npy_events(path: str | os.PathLike, *, columns: Sequence[str] | None = None, dtype: np.dtype | None = None,
                    allow_empty: bool = False, sensor_size: tuple[int, int, int] | None = None) -> np.ndarray:
    """Read an event array saved with ``np.save``, checking the file before numpy parses it.

    Args:
        path: the ``.npy`` file.
        columns: names of the columns of a plain 2-D array, in stored order (DVSGesture ``("x", "y", "p", "t")``,
            POKERDVS ``("t", "x", "y", "p")``); the file must then hold ``(N, len(columns))`` numbers (or a
            structured array with those fields, by name or title: ``tonic.io.read_aedat4`` names its polarity
            field ``on``, titled ``p``) and a structured array is returned. None: return the array as stored
            (plain 2-D or structured 1-D).
        dtype: with ``columns``, the structured dtype to return (fields taken by name, e.g. tonic's
            ``DVSGesture.dtype``); default: fields named ``columns`` with the stored element type.
        allow_empty: accept an array with no events.
        sensor_size: with ``columns``, ``(width, height, polarities)`` every event's ``x``, ``y`` and ``p`` must fall
            inside (``[0, size)``), as :func:`read_nmnist_bin` checks its coordinates (DVSGesture ``(128, 128, 2)``).

    Raises:
        EventFileError: missing or 0-byte file; not a ``.npy`` file (bad magic string or header — garbage);
            truncated (fewer data bytes than the header announces); pickled objects; wrong shape or columns;
            non-finite values; an event outside ``sensor_size``; no events and not ``allow_empty``.
    """
    path = Path(path)
    size = _file_size(path)
    if size == 0:
        raise EventFileError(path, "empty file (0 bytes), expected a .npy array")
    fmt = np.lib.format
    try:
        with open(path, "rb") as f:
            try:
                version = fmt.read_magic(f)
            except ValueError as exc:
                raise EventFileError(path, f"not a .npy file (bad magic string; garbage or another format?): {exc}") \
                    from exc
            try:
                if version == (1, 0):
                    header = fmt.read_array_header_1_0(f)
                elif version == (2, 0):
                    header = fmt.read_array_header_2_0(f)
                else:  # format 3.0 (utf-8 field names): no public header reader; np.load below checks it
                    header = None
            except (ValueError, SyntaxError, EOFError) as exc:
                raise EventFileError(path, f"corrupt .npy header: {exc}") from exc
            header_end = f.tell()
    except OSError as exc:
        raise EventFileError(path, f"cannot read: {exc.strerror or exc}") from exc
    if header is not None:
        shape, _fortran, stored = header
        if stored.hasobject:
            raise EventFileError(path, f"holds Python objects ({stored}), not an event array; refusing to unpickle")
        n = int(np.prod(shape, dtype=np.int64))
        if size < header_end + n * stored.itemsize:
            raise EventFileError(
                path, f"truncated: the header announces {shape} {stored} ({n * stored.itemsize} data bytes) but "
                      f"only {size - header_end} are present")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise EventFileError(path, f"cannot load: {exc}") from exc

    if arr.dtype.names is None:
        if arr.ndim != 2:
            raise EventFileError(path, f"expected a 2-D (events × columns) array or a structured array, got shape "
                                       f"{arr.shape}")
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise EventFileError(path, f"expected numbers, got dtype {arr.dtype}")
        if columns is not None and arr.shape[1] != len(columns):
            flipped = arr.shape[0] == len(columns)  # (columns × events: np.stack([t, x, y, p]) without .T)
            raise EventFileError(path, f"expected {len(columns)} columns {tuple(columns)}, got shape {arr.shape}"
                                 + (f": one row per column? store the array transposed ({arr.shape[1]} events × "
                                    f"{len(columns)} columns, np.save(file, a.T))" if flipped else ""))
        if np.issubdtype(arr.dtype, np.inexact) and arr.size and not np.isfinite(arr).all():
            r = int(np.argmax(~np.isfinite(arr).all(axis=1)))
            raise EventFileError(path, f"non-finite value (NaN/inf) in event {r}")
    else:
        if arr.ndim != 1:
            raise EventFileError(path, f"expected a 1-D structured event array, got shape {arr.shape}")
        if columns is not None:
            missing = [c for c in columns if c not in arr.dtype.fields]  # (a field's title too: tonic's aedat4 "p")
            if missing:
                raise EventFileError(path, f"structured array lacks fields {missing} (has {arr.dtype.names})")
        for name in arr.dtype.names:
            col = arr[name]
            if np.issubdtype(col.dtype, np.inexact) and col.size and not np.isfinite(col).all():
                raise EventFileError(path, f"non-finite value (NaN/inf) in field {name!r}, event "
                                           f"{int(np.argmax(~np.isfinite(col)))}")
    if len(arr) == 0 and not allow_empty:
        raise EventFileError(path, "no events (the array is empty)")
    if columns is None:
        return arr
    if dtype is None:
        base = arr.dtype if arr.dtype.names is None else None
        dtype = np.dtype([(c, base if base is not None else arr.dtype[c]) for c in columns])
    dtype = np.dtype(dtype)
    if dtype.names is None or any(name not in columns for name in dtype.names):
        raise ValueError(f"dtype must be a structured dtype whose fields are among columns {tuple(columns)}, "
                         f"got {dtype}")
    if sensor_size is not None:
        for name, size in zip(("x", "y", "p"), sensor_size):
            if name not in columns:
                continue
            col = arr[:, list(columns).index(name)] if arr.dtype.names is None else arr[name]
            bad = (col < 0) | (col >= size)
            if bad.any():
                i = int(np.argmax(bad))
                fix = ""
                if name == "p" and col[i] < 0:
                    fix = "; polarity is 0 (OFF) or 1 (ON), not -1/+1: store (p > 0)"
                elif name != "p":
                    fix = ("; every event must lie on it: crop or downsample a larger sensor's recording, or correct "
                           "sensor_size (width, height, polarities, in that order)")
                raise EventFileError(path, f"event {i} has {name}={col[i]}, outside [0, {size}) of the "
                                           f"{tuple(sensor_size)} sensor{fix}")
    out = np.empty(len(arr), dtype=dtype)
    for name in dtype.names:
        out[name] = arr[:, list(columns).index(name)] if arr.dtype.names is None else arr[name]
    return out


# --------------------------------------------------------------------------------------------------------------
# SHD / SSC .h5


@dataclass
class ShdFile:
    """The contents of an SHD/SSC-format ``.h5`` file (see :func:`read_shd_h5`).

    Attributes:
        path: the file.
        events: one structured array per sample in :data:`SHD_DTYPE` (t µs, x channel, p = 1).
        labels: ``int64`` label per sample.
        keys: class names from ``extra/keys`` (decoded to ``str``), or None when absent.
        speakers: ``extra/speaker`` per sample, or None when absent.
    """

    path: Path
    events: list[np.ndarray]
    labels: np.ndarray
    keys: list[str] | None = None
    speakers: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.events)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        return self.events[index], int(self.labels[index])


def _h5_dataset(f, path: Path, name: str):
    import h5py

    try:
        obj = f[name]
    except KeyError:
        raise EventFileError(path, f"not an SHD/SSC file: no dataset {name!r} (has {sorted(_h5_names(f))})") from None
    if not isinstance(obj, h5py.Dataset):
        raise EventFileError(path, f"not an SHD/SSC file: {name!r} is a group, not a dataset")
    return obj


def _h5_names(f) -> list[str]:
    names: list[str] = []
    f.visit(names.append)
    return names


def read_shd_h5(path: str | os.PathLike, *, n_channels: int | None = 700, allow_empty_samples: bool = True,
                require_extra: bool = False) -> ShdFile:
    """Read an SHD/SSC-format HDF5 file completely, checking its structure and every sample.

    The events of sample ``i`` are what ``tonic.datasets.SHD(...)[i][0]`` gives for the same file:
    ``t = int(times * 1e6)`` (seconds → µs, truncated like tonic), ``x = units``, ``p = 1``.

    Args:
        path: the ``.h5`` file.
        n_channels: every unit must be below this (700 for SHD/SSC); None skips the check.
        allow_empty_samples: accept samples without spikes (real SHD has none, but they are well-formed).
        require_extra: ``extra/keys`` and ``extra/speaker`` must be there too (tonic's ``SHD`` and ``SSC`` classes
            read both; ``neurosim datasets check shd`` asks for them).

    Raises:
        EventFileError: missing, 0-byte, truncated (HDF5 end-of-file mismatch) or non-HDF5 file; missing
            ``spikes/times``, ``spikes/units`` or ``labels`` (with ``require_extra``, ``extra/keys`` or
            ``extra/speaker``); different numbers of samples in them; a sample whose
            times and units differ in length; negative or non-finite times; units outside ``[0, n_channels)``;
            a negative label, or one past the class names of ``extra/keys`` (:func:`shd_label_problem`);
            unreadable (corrupt) data.
    """
    import h5py

    path = Path(path)
    size = _file_size(path)
    if size == 0:
        raise EventFileError(path, "empty file (0 bytes), expected an HDF5 file")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        text = str(exc)
        m = re.search(r"eof = (\d+).*stored_eof = (\d+)", text)
        if m:
            reason = (f"truncated: the HDF5 file has {m.group(1)} bytes but its superblock says {m.group(2)}")
        elif "truncated" in text:
            reason = f"truncated HDF5 file ({text})"
        elif "signature" in text:
            reason = "not an HDF5 file (no HDF5 signature; garbage or another format?)"
        else:
            reason = f"cannot open as HDF5: {text}"
        raise EventFileError(path, reason) from exc
    with f:
        d_times = _h5_dataset(f, path, "spikes/times")
        d_units = _h5_dataset(f, path, "spikes/units")
        d_labels = _h5_dataset(f, path, "labels")
        if require_extra:
            _h5_dataset(f, path, "extra/keys")
            _h5_dataset(f, path, "extra/speaker")
        try:
            times = d_times[()]
            units = d_units[()]
            labels = np.asarray(d_labels[()])
            keys = f["extra/keys"][()] if "extra/keys" in f else None
            speakers = np.asarray(f["extra/speaker"][()]) if "extra/speaker" in f else None
        except (OSError, RuntimeError, ValueError, TypeError) as exc:
            raise EventFileError(path, f"corrupt data (HDF5 read failed: {exc})") from exc
    if labels.ndim != 1:
        raise EventFileError(path, f"labels must be 1-D, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise EventFileError(path, f"labels must be integers, got dtype {labels.dtype}")
    times, units = np.atleast_1d(times), np.atleast_1d(units)
    if not (len(times) == len(units) == len(labels)):
        raise EventFileError(path, f"sample counts differ: spikes/times {len(times)}, spikes/units {len(units)}, "
                                   f"labels {len(labels)}")
    if speakers is not None and speakers.shape[:1] != labels.shape:
        raise EventFileError(path, f"extra/speaker has {len(speakers)} entries for {len(labels)} samples")
    events = []
    for i, (ts, us) in enumerate(zip(times, units)):
        ts, us = np.asarray(ts), np.asarray(us)
        if ts.ndim != 1 or us.ndim != 1 or len(ts) != len(us):
            raise EventFileError(path, f"sample {i}: spikes/times has {ts.shape} but spikes/units {us.shape}")
        if not (np.issubdtype(ts.dtype, np.number) and np.issubdtype(us.dtype, np.integer)):
            raise EventFileError(path, f"sample {i}: expected numeric times and integer units, got {ts.dtype} / "
                                       f"{us.dtype}")
        if len(ts) == 0 and not allow_empty_samples:
            raise EventFileError(path, f"sample {i} has no spikes")
        t64 = ts.astype(np.float64)
        if len(ts) and not (np.isfinite(t64).all() and t64.min() >= 0):
            raise EventFileError(path, f"sample {i}: spike times must be finite and >= 0 seconds "
                                       f"(min {np.nanmin(t64) if np.isfinite(t64).any() else t64[0]})")
        if len(us) and (us.min() < 0 or (n_channels is not None and us.max() >= n_channels)):
            raise EventFileError(path, f"sample {i}: units must be in [0, {n_channels}), got [{us.min()}, {us.max()}]")
        ev = np.empty(len(ts), dtype=SHD_DTYPE)
        ev["t"] = t64 * 1e6  # truncation toward zero, as tonic's make_structured_array does
        ev["x"] = us
        ev["p"] = 1
        events.append(ev)
    key_list = None
    if keys is not None:
        key_list = [k.decode() if isinstance(k, bytes) else str(k) for k in np.atleast_1d(keys)]
    problem = shd_label_problem(labels, key_list)
    if problem:
        raise EventFileError(path, problem)
    return ShdFile(path=path, events=events, labels=labels.astype(np.int64), keys=key_list, speakers=speakers)


def shd_label_problem(labels: np.ndarray, keys: Sequence[str] | None) -> str | None:
    """What is wrong with an SHD/SSC-format file's ``labels`` against its class names ``extra/keys`` (as tonic's
    ``SHD(...).classes`` holds them: a label is its class's index there), or None: a negative label, or one past the
    names (where the file names any). Names without a sample of their own are no error (a split may lack a class)."""
    labels = np.asarray(labels)
    if not len(labels):
        return None
    if labels.min() < 0:
        i = int(np.argmax(labels < 0))
        return f"sample {i} has the label {int(labels[i])}: labels are class indices, 0 or more"
    if keys and labels.max() >= len(keys):
        i, top = int(np.argmax(labels >= len(keys))), int(labels.max())
        shown = ", ".join(map(repr, keys[:5])) + (", ..." if len(keys) > 5 else "")
        return (f"sample {i} has the label {int(labels[i])}, past the {len(keys)} class names of extra/keys "
                f"({shown}; labels up to {top} need {top + 1}): a label is its class's index in extra/keys, so name "
                "every class there (neurosim.data.audio.write_shd_h5's keys) or correct the labels")
    return None


# --------------------------------------------------------------------------------------------------------------
# Dispatch and folder check


def read_events(path: str | os.PathLike) -> Any:
    """Read any event file neurosim understands, chosen by suffix, with the readers' default checks.

    ``.bin`` → :func:`read_nmnist_bin` (N-MNIST 34×34 sensor), ``.npy`` → :func:`read_npy_events`,
    ``.h5``/``.hdf5`` → :func:`read_shd_h5`. Other suffixes raise :class:`EventFileError`; for ``.aedat4`` (which
    neurosim does not read itself) it says to convert the file with tonic, as the README's recipe:
    ``np.save("rec.npy", tonic.io.read_aedat4("rec.aedat4"))``, then read the ``.npy``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".bin":
        return read_nmnist_bin(path)
    if suffix == ".npy":
        return read_npy_events(path)
    if suffix in (".h5", ".hdf5"):
        return read_shd_h5(path)
    if suffix == ".aedat4":
        raise EventFileError(path, f"an AEDAT4 recording, which neurosim does not read itself: convert it with tonic "
                                   f"to a .npy of tonic's events, np.save({path.with_suffix('.npy').name!r}, "
                                   f"tonic.io.read_aedat4({path.name!r})), and read that (known types: "
                                   f"{', '.join(EVENT_SUFFIXES)})")
    raise EventFileError(path, f"unknown event file type {suffix!r} (known: {', '.join(EVENT_SUFFIXES)})")


@dataclass(frozen=True)
class BadFile:
    """One file that failed: its path and why (the reader's message without the path, or the exception)."""

    path: Path
    reason: str


@dataclass
class CheckReport:
    """Result of :func:`check_files`.

    Attributes:
        root: the folder scanned (None when a list of files was given).
        ok: files that read without error, sorted.
        bad: files that failed, in scan order, each with the reason.
    """

    root: Path | None = None
    ok: list[Path] = field(default_factory=list)
    bad: list[BadFile] = field(default_factory=list)

    @property
    def n_checked(self) -> int:
        return len(self.ok) + len(self.bad)

    @property
    def all_ok(self) -> bool:
        """True when every checked file read cleanly (also when there were no files: check ``n_checked``)."""
        return not self.bad

    @property
    def bad_paths(self) -> list[Path]:
        return [b.path for b in self.bad]

    def format(self, max_bad: int | None = None) -> str:
        """A human-readable summary: one line of counts, then one line per bad file (at most ``max_bad``)."""
        where = f" under {self.root}" if self.root is not None else ""
        if self.n_checked == 0:
            return f"no event files found{where}"
        lines = [f"checked {self.n_checked} file{'s' if self.n_checked != 1 else ''}{where}: "
                 f"{len(self.ok)} ok, {len(self.bad)} bad"]
        shown = self.bad if max_bad is None else self.bad[:max_bad]
        for b in shown:
            name = b.path
            if self.root is not None:
                try:
                    name = b.path.relative_to(self.root)
                except ValueError:
                    pass
            lines.append(f"  {name}: {b.reason}")
        if len(shown) < len(self.bad):
            lines.append(f"  ... and {len(self.bad) - len(shown)} more bad files")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


def _collect(paths_or_folder, suffixes: Iterable[str] | None, recursive: bool) -> tuple[Path | None, list[Path]]:
    if isinstance(paths_or_folder, (str, os.PathLike)):
        root = Path(paths_or_folder).expanduser()
        if root.is_file():
            return None, [root]
        if not root.is_dir():
            raise FileNotFoundError(f"no such file or folder: {root}")
        wanted = None if suffixes is None else {s.lower() if s.startswith(".") else "." + s.lower() for s in suffixes}
        it = root.rglob("*") if recursive else root.iterdir()
        files = sorted(p for p in it
                       if p.is_file() and not p.name.startswith(".")
                       and (wanted is None or p.suffix.lower() in wanted))
        return root, files
    return None, [Path(p).expanduser() for p in paths_or_folder]


def check_files(paths_or_folder: str | os.PathLike | Iterable[str | os.PathLike], reader: Callable[[Path], Any] | None
                = None, *, suffixes: Iterable[str] | None = EVENT_SUFFIXES, recursive: bool = True,
                progress: bool = False) -> CheckReport:
    """Read every event file in a folder (or list) and report which are bad and why, without stopping at the first.

    Args:
        paths_or_folder: a folder (searched recursively unless ``recursive=False``; hidden files skipped), a single
            file, or an iterable of file paths (checked as given, in that order, whatever their suffix).
        reader: ``reader(path)`` reads one file and raises on a bad one; its return value is discarded. Default
            :func:`read_events` (chosen by suffix). Pass e.g. ``functools.partial(read_nmnist_bin,
            sensor_size=(240, 180))`` or ``functools.partial(read_npy_events, columns=("x", "y", "p", "t"))``
            for a dataset's own checks.
        suffixes: in a folder, only files with these suffixes are read (default ``.bin .npy .h5 .hdf5``, so
            archives such as ``train.zip`` are left alone); None reads every file.
        recursive: search sub-folders.
        progress: show a tqdm progress bar.

    Returns:
        :class:`CheckReport`: ``ok`` and ``bad`` lists (``bad[i].reason`` is the :class:`EventFileError` reason,
        or ``"<ExceptionType>: message"`` for any other exception the reader raised) and ``format()`` for printing.

    Raises:
        FileNotFoundError: ``paths_or_folder`` is a path that does not exist (a per-file problem never raises).
    """
    root, files = _collect(paths_or_folder, suffixes, recursive)
    reader = read_events if reader is None else reader
    report = CheckReport(root=root)
    iterator: Iterable[Path] = files
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(files, desc="checking", unit="file")
    for path in iterator:
        try:
            reader(path)
        except EventFileError as exc:
            reason = exc.reason + (f" (byte offset {exc.offset})" if exc.offset is not None else "")
            report.bad.append(BadFile(path, reason))
        except Exception as exc:  # noqa: BLE001 — a scan reports every failure and goes on
            report.bad.append(BadFile(path, f"{type(exc).__name__}: {exc}"))
        else:
            report.ok.append(path)
    return report

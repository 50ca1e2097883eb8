"""Recordings of one's own as a dataset: ``data.dataset = "folder:PATH"`` (``neurosim train``, ``datasets check``).

A folder laid out as torchvision's ``ImageFolder``, one file per recording::

    PATH/dataset.toml             sensor_size = [W, H, P]   (required)
                                  columns = ["t", "x", "y", "p"]   (only for plain (N, 4) .npy arrays: their order;
                                  ["t", "x"] or ["t", "x", "p"] for audio events, on a sensor one row high)
    PATH/train/<class>/<file>     .npy (tonic's structured events, or plain with ``columns``) or .bin (N-MNIST format)
    PATH/test/<class>/<file>

Events as tonic's: ``x``, ``y`` pixels, ``p`` polarity below ``P``, ``t`` in whole microseconds; on a sensor one row
high (``[W, 1, P]``), audio events without ``y`` too: tonic's ``(t, x, p)`` (SHD's dtype, as
:class:`~neurosim.data.audio.AudioToSpikes` gives them: ``x`` the channel, ``y`` read as 0, and with ``P = 1`` their
``p``, always 1, as 0), or time and channel alone (a structured ``(t, x)`` array, or a plain one with ``columns =
["t", "x"]``: ``y = p = 0``, the sensor ``[channels, 1, 1]`` as SHD's); ``columns`` without ``y`` on a sensor taller
than one row is an error. The classes are the ``train`` split's sub-folders sorted by name as text (label = index:
``10`` sorts before ``2``, so pad numbers, ``02``; numbers that text orders otherwise warn); every ``test`` class must
be one of them, and a class without ``test`` recordings warns (the test accuracy leaves it out). Hidden files
(``.DS_Store``) are skipped; any other file that is not ``.npy`` or ``.bin``, a folder inside a class folder, or a
file in ``train/`` or ``test/`` itself (outside every class folder), is a :class:`FolderDatasetError` naming it. Each
recording is read with :mod:`neurosim.data.readers`' checks (truncation, garbage, events outside ``sensor_size``) and
whole-number x, y, p and t, the first bad one an :class:`~neurosim.data.readers.EventFileError` naming the file;
``neurosim datasets check folder:PATH`` lists every bad one. A recording without events (a scene where nothing moved,
a silent clip; a ``.bin`` file of no records) is valid data: its frames are all zero, as tonic's ``ToFrame`` gives
them, with a warning naming such files when the frames are built (``neurosim datasets check`` counts them ok and names
them too). A recording the frames cannot hold (a hot pixel's count past int16 in one frame) is a
:class:`~neurosim.data.frames.FramesError` naming the file. Frames are cached as for any dataset, keyed by the
folder's files (sizes and times), so recordings added or changed are converted again.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurosim.data.registry import DatasetInfo

__all__ = ["PREFIX", "FolderDatasetError", "FolderEvents", "folder_dataset", "recordings"]

PREFIX = "folder:"
SUFFIXES = (".npy", ".bin")
_EVENT_FIELDS = ("x", "y", "p", "t")
_AUDIO_FIELDS = ("t", "x", "p")  # audio events (SHD's, tonic's audio dtype): no y; p, always 1, may be left out too
_COLUMN_SETS = (frozenset(_EVENT_FIELDS), frozenset(_AUDIO_FIELDS), frozenset(("t", "x")))


class FolderDatasetError(ValueError):
    """A ``folder:PATH`` dataset that is not one (no such folder, no ``dataset.toml``, a stray file, ...): the
    message says what to fix."""


@dataclass(frozen=True)
class _Spec:
    sensor_size: tuple[int, int, int]
    columns: tuple[str, ...] | None


def _read_spec(path: Path) -> _Spec:
    from neurosim.config import tomllib

    file = path / "dataset.toml"
    example = 'sensor_size = [W, H, P]  (e.g. [128, 128, 2] for a DVS128: width, height, polarities)'
    if not file.is_file():
        raise FolderDatasetError(f"{file} is missing: a folder dataset needs it to say its sensor, e.g. {example}")
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise FolderDatasetError(f"{file}: not valid TOML: {e}") from None
    unknown = sorted(set(data) - {"sensor_size", "columns"})
    if unknown:
        raise FolderDatasetError(f"{file}: unknown key(s) {', '.join(unknown)}; it takes sensor_size and columns")
    size = data.get("sensor_size")
    if not (isinstance(size, list) and len(size) == 3 and all(isinstance(v, int) and not isinstance(v, bool)
                                                              and v >= 1 for v in size)):
        raise FolderDatasetError(f"{file}: sensor_size must be three whole numbers >= 1, {example}; got {size!r}")
    columns = data.get("columns")
    if columns is not None and not (isinstance(columns, list) and all(isinstance(c, str) for c in columns)
                                    and len(set(columns)) == len(columns)
                                    and frozenset(columns) in _COLUMN_SETS):
        raise FolderDatasetError(f"{file}: columns must name x, y, p and t once each, in the order a plain .npy array "
                                 f"stores them (e.g. [\"t\", \"x\", \"y\", \"p\"]), or for audio events (time and "
                                 f"channel, as SHD's) t and x, or t, x and p (e.g. [\"t\", \"x\"]); got {columns!r}")
    if columns is not None and "y" not in columns and size[1] != 1:
        raise FolderDatasetError(f"{file}: columns {columns!r} name no y, which only audio events leave out: their "
                                 f"sensor is one row high, sensor_size = [channels, 1, 1] as SHD's (y = 0); got "
                                 f"sensor_size = {size!r} (name y in columns for a camera's events)")
    return _Spec(tuple(size), None if columns is None else tuple(columns))


def _files(folder: Path, strays: list | None = None) -> list[Path]:
    """The recordings in one class folder, sorted; an unknown file type is an error naming it (with ``strays``: it
    is appended there as ``(path, reason)`` instead, and the search goes on)."""
    files = []
    for f in sorted(folder.iterdir()):
        if f.name.startswith("."):
            continue
        if f.is_dir() or f.suffix.lower() not in SUFFIXES:
            convert = "" if f.is_dir() else ('; convert other formats to .npy, e.g. np.save("rec.npy", '
                                             'tonic.io.read_aedat4("rec.aedat4"))')
            why = (f"not a recording neurosim reads in a folder dataset (one .npy or .bin file per recording, "
                   f"directly in its class folder{convert})")
            if strays is None:
                raise FolderDatasetError(f"{f}: {why}")
            strays.append((f, why))
            continue
        files.append(f)
    return files


def recordings(path: Path, split: str, classes: tuple[str, ...], strays: list | None = None
               ) -> list[tuple[Path, int]]:
    """``(file, label)`` of every recording of ``split``, in class then file-name order.

    Args:
        strays: a list to collect the class folders' files of another type, and folders, as ``(path, reason)``
            (``neurosim datasets check`` lists them all with the unreadable recordings); None raises at the first.
            A split holding only such files then gives no recordings instead of an error: the caller lists them.

    Raises:
        FolderDatasetError: the split holds no recording (nor, with ``strays``, a file of another type), or
            (without ``strays``) a class folder holds a file of another type or a folder.
    """
    split_dir = path / split
    samples = []
    before = None if strays is None else len(strays)
    for label, name in enumerate(classes):
        if (split_dir / name).is_dir():
            samples += [(f, label) for f in _files(split_dir / name, strays)]
    if not samples and strays is not None and len(strays) > before:  # the caller lists them: what is wrong there
        return samples
    if not samples:
        raise FolderDatasetError(f"{split_dir} holds no recordings; put each in {split}/<class name>/ (classes: "
                                 f"{', '.join(classes)})")
    from neurosim._stack import caller_stacklevel as _caller_stacklevel  # (the warnings name the user's call)

    if split == "train":
        _warn_unpadded_numbers(split_dir, classes)
    empty = sorted(set(classes) - {classes[label] for _, label in samples})
    if empty and split == "train":
        warnings.warn(f"{split_dir}: class folder(s) {', '.join(empty)} hold no recordings: the model never "
                      "trains on them", UserWarning, stacklevel=_caller_stacklevel())
    elif empty:
        warnings.warn(f"{split_dir}: class(es) {', '.join(empty)} have no recordings: the test accuracy does not "
                      f"measure them (put some in {split}/<class name>/)", UserWarning, stacklevel=_caller_stacklevel())
    return samples


def _warn_unpadded_numbers(split_dir: Path, classes: tuple[str, ...]) -> None:
    """Class folders named by numbers that text order numbers otherwise than their values (``1, 10, 2``): say which
    label each then gets, and to pad them, as the labels are numbered by the names sorted as text (the warning
    points at the first caller outside neurosim)."""
    from neurosim._stack import caller_stacklevel as _caller_stacklevel

    if not all(name.isdigit() for name in classes) or list(classes) == sorted(classes, key=int):
        return
    width = max(map(len, classes))
    labels = ", ".join(f"{name} -> {label}" for label, name in enumerate(classes[:6]))
    padded = ", ".join(name.zfill(width) for name in sorted(classes, key=int)[:3])
    warnings.warn(f"{split_dir}: the class folders are numbers, and their labels follow the names sorted as text "
                  f"(class -> label: {labels}{', ...' if len(classes) > 6 else ''}), not the numbers' order; pad "
                  f"them ({padded}, ...) for that", UserWarning, stacklevel=_caller_stacklevel())


class FolderEvents:
    """One split of a folder dataset: ``(events, label)`` samples in tonic's structured event format."""

    def __init__(self, path: Path, split: str, spec: _Spec, classes: tuple[str, ...]) -> None:
        self.path, self.split, self.spec, self.classes = path, split, spec, classes
        self.samples = recordings(path, split, classes)

    def __len__(self) -> int:
        return len(self.samples)

    def source(self, i: int) -> Path:
        """The file of sample ``i`` (what an error about the sample names)."""
        return self.samples[i][0]

    def __getitem__(self, i: int):
        file, label = self.samples[i]
        return read_recording(file, self.spec), label


def read_recording(file: Path, spec: _Spec) -> np.ndarray:
    """One recording of a folder dataset, checked against its sensor (an EventFileError naming the file). One without
    events (nothing moved: an empty array, a ``.bin`` file without records) is valid, read as no events."""
    from neurosim.data.readers import NMNIST_DTYPE, EventFileError, read_nmnist_bin, read_npy_events

    if file.suffix.lower() == ".bin":
        try:  # (N-MNIST's format has no header: a recording without events is a file without records)
            no_records = file.stat().st_size == 0
        except OSError:
            no_records = False  # read_nmnist_bin says what is wrong with it
        if no_records:
            return np.zeros(0, dtype=NMNIST_DTYPE)
        events = read_nmnist_bin(file, sensor_size=spec.sensor_size[:2], allow_empty=True)
        if len(events) and int(events["p"].max()) >= spec.sensor_size[2]:
            raise EventFileError(file, f"an event of polarity {int(events['p'].max())}, outside the sensor's "
                                       f"{spec.sensor_size[2]} polarity(ies) (dataset.toml's sensor_size)")
        return events
    try:  # (only its header is read: a plain array needs the columns' order)
        stored = np.load(file, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError):
        stored = None  # read_npy_events says what is wrong with it
    if stored is not None and stored.dtype.names is None and spec.columns is None:
        raise EventFileError(file, f"a plain {stored.shape} array: say the order of its columns in the dataset's "
                                   "dataset.toml (columns = [\"t\", \"x\", \"y\", \"p\"], say; [\"t\", \"x\"] for "
                                   "audio events of time and channel)")
    if stored is not None and spec.sensor_size[1] == 1:
        fields = stored.dtype.fields
        if fields is not None and "y" not in fields and {"t", "x"} <= set(fields):
            return _audio_recording(file, spec, tuple(c for c in _AUDIO_FIELDS if c in fields))
        if fields is None and "y" not in spec.columns:
            return _audio_recording(file, spec, spec.columns)
    events = read_npy_events(file, columns=spec.columns or _EVENT_FIELDS, sensor_size=spec.sensor_size,
                             allow_empty=True)
    _whole_numbers(file, events, ("x", "y", "p"), "x, y and p must be whole numbers (pixels, polarity): round or "
                                                  "cast them to integers first")
    t = events["t"]
    if np.issubdtype(t.dtype, np.floating) and len(t) and np.any(t != np.floor(t)):
        raise EventFileError(file, "timestamps with fractions: t must be whole microseconds, as tonic's (in seconds "
                                   "every time bin would be 0 units wide and the frames empty): store "
                                   "np.round(t * 1e6) as integers")
    return events


def _whole_numbers(file: Path, events: np.ndarray, names: tuple[str, ...], what: str) -> None:
    """An :class:`~neurosim.data.readers.EventFileError` naming the first event whose ``names`` field has a fraction
    (float columns), followed by ``what`` (which must be whole and how to make them so)."""
    from neurosim.data.readers import EventFileError

    for name in names:
        col = events[name]
        if np.issubdtype(col.dtype, np.floating) and len(col) and np.any(col != np.floor(col)):
            i = int(np.argmax(col != np.floor(col)))
            raise EventFileError(file, f"event {i} has {name}={col[i]}: {what}")


def _audio_recording(file: Path, spec: _Spec, columns: tuple[str, ...]) -> np.ndarray:
    """Audio events without ``y`` on a sensor one row high: tonic's ``(t, x, p)`` (SHD's dtype,
    :class:`~neurosim.data.audio.AudioToSpikes`' output) or ``(t, x)`` alone, a structured array's fields or a plain
    array's ``columns`` (in their order). ``y = 0``; ``p = 0`` where there is none, and with one polarity (tonic's
    audio ``p`` is always 1), as the registry's SHD; no events is a silent clip, not an error."""
    from neurosim.data.readers import read_npy_events

    width, _, polarities = spec.sensor_size
    sensor = (width, 1, polarities if polarities > 1 else 2)  # p = 1 is read as 0 on a one-polarity sensor
    stored = read_npy_events(file, columns=columns, sensor_size=sensor, allow_empty=True)
    _whole_numbers(file, stored, columns, f"{', '.join(columns)} must be whole numbers (t in microseconds, x the "
                                          "channel): round or cast them to integers first")
    events = np.zeros(len(stored), dtype=[(n, np.int64) for n in _EVENT_FIELDS])
    events["x"], events["t"] = stored["x"], stored["t"]
    if polarities > 1 and "p" in columns:
        events["p"] = stored["p"]
    return events


def audio_like(sensor_size: tuple[int, int, int]) -> bool:
    """A sensor one row high and of one polarity: taken as audio (a cochlea model's channels, as
    :mod:`neurosim.data.audio` writes them), which ``neurosim datasets prepare`` hints to train with the ``shd``
    config, any other with ``quickstart``."""
    return sensor_size[1] == 1 and sensor_size[2] == 1


def _hinted_time_steps(sensor_size: tuple[int, int, int]) -> int:
    """Frames per sample of the config ``neurosim datasets prepare`` prints for this sensor (``shd``'s 100 for audio,
    ``quickstart``'s 10 else): what prepare caches, so that the printed command trains on those frames."""
    from neurosim.config import SHIPPED_CONFIGS, load_config

    return load_config(SHIPPED_CONFIGS / f"{'shd' if audio_like(sensor_size) else 'quickstart'}.toml").data.time_steps


def folder_dataset(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``"folder:PATH"`` (a relative PATH is taken from the working directory).

    Raises:
        ValueError: no such folder, no ``dataset.toml`` or a wrong one, no ``train``/``test`` split, no class, a
            test class the training split lacks, a file of another type or outside every class folder — each
            naming what to fix.
    """
    path = Path(name[len(PREFIX):]).expanduser().resolve()
    if not path.is_dir():
        raise FolderDatasetError(f"dataset {name!r}: {path} is not a folder (a folder dataset is a folder with "
                                 "dataset.toml and train/<class>/, test/<class>/ recordings; a relative folder:PATH "
                                 "is taken from the working directory the command runs in)")
    spec = _read_spec(path)
    for split in ("train", "test"):
        if not (path / split).is_dir():
            raise FolderDatasetError(f"dataset {name!r}: {path / split} is missing; put each recording in "
                             f"{split}/<class name>/")
    classes = tuple(sorted(d.name for d in (path / "train").iterdir() if d.is_dir() and not d.name.startswith(".")))
    if not classes:
        raise FolderDatasetError(f"dataset {name!r}: {path / 'train'} has no class folders; put each recording in "
                         "train/<class name>/")
    for split in ("train", "test"):
        loose = sorted(f for f in (path / split).iterdir() if not f.is_dir() and not f.name.startswith("."))
        if loose:
            raise FolderDatasetError(f"{loose[0]}: a recording outside any class folder; move it into "
                                     f"{split}/<class name>/ (classes: {', '.join(classes)})")
    extra = sorted(d.name for d in (path / "test").iterdir() if d.is_dir() and not d.name.startswith(".")
                   and d.name not in classes)
    if extra:
        raise FolderDatasetError(f"dataset {name!r}: test class(es) {', '.join(extra)} have no folder in train/ (the "
                         f"classes are train/'s: {', '.join(classes)})")
    return DatasetInfo(
        name=f"{PREFIX}{path}",
        sensor_size=spec.sensor_size,
        num_classes=len(classes),
        default_time_steps=_hinted_time_steps(spec.sensor_size),
        description=f"recordings in {path} ({len(classes)} classes)",
        loader=lambda split, root, download, progress: FolderEvents(path, split, spec, classes),
        on_disk=lambda root: True,
        location=lambda root: path,
        classes=classes,
        extra={"folder": path, "reader": lambda file: read_recording(Path(file), spec)},
    )

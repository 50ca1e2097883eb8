"""The tonic datasets of the registry: N-MNIST, DVS Gesture, SHD, SSC, POKER-DVS, N-Caltech101, CIFAR10-DVS.

Loading goes through tonic's own dataset classes (``tonic.datasets.NMNIST(save_to=root, ...)``), so data lives where
tonic puts it — ``<root>/<ClassName>/`` — and a folder that tonic already downloaded works as is. What neurosim adds:

* **No surprise downloads.** tonic downloads from its constructor whenever its ``_check_exists()`` fails. neurosim
  checks the same layout first (:class:`SplitLayout`: the archive file, which tonic only tests with ``isfile``, and
  at least tonic's minimum number of data files under the extracted folder) and raises
  :class:`~neurosim.data.registry.DatasetNotFoundError` — saying where the data would go, how big it is, and what is
  missing — unless the caller asked for a download (``download=True``, ``neurosim datasets prepare NAME``).
* **One sample format.** :class:`TonicSplit` gives ``(events, int label)`` in a deterministic order (tonic lists some
  folders in file-system order), with train/test splits for the datasets tonic does not split (N-Caltech101,
  CIFAR10-DVS: the first 90 % of each class's sorted files train, SpikingJelly's ``split_to_train_test_set``
  convention), string labels mapped to class indices, and events that fit the registry's sensor size, so every
  dataset's frames are ``[T, P, H, W]``:

  - SHD/SSC: tonic gives ``(t, x, p=1)`` audio events; neurosim adds ``y = 0`` and sets ``p = 0`` (one channel), so
    ``ToFrame`` on the sensor ``(700, 1, 1)`` gives ``[T, 1, 1, 700]`` like any camera.
  - N-Caltech101: recordings have different sizes (tonic's ``sensor_size`` is None; tonic shifts each to start at
    0). Events outside the 240×180 box the images were scaled into are dropped and x, y halved: sensor
    ``(120, 90, 2)`` (full-size frames of the 8,709 samples would take ~7.5 GB at T = 10).
  - CIFAR10-DVS: 128×128 recordings, x and y halved to ``(64, 64, 2)`` (the SLTT paper resizes to 48×48; full size
    frames would take ~3.3 GB at T = 10).

* **Clear errors for optional readers.** CIFAR10-DVS files are AEDAT4, which tonic 1.7.0 reads with the ``aedat``
  package (``tonic.io.read_aedat4`` imports it) — not a tonic dependency. Without it, loading raises
  :class:`~neurosim.data.registry.MissingReaderError` naming the package, before anything is downloaded.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from neurosim.data.registry import DatasetInfo, DatasetNotFoundError, MissingReaderError

__all__ = ["SPECS", "SplitLayout", "TonicSpec", "TonicSplit", "check_dataset", "dataset_infos", "file_classes",
           "label_notes",
           "layout_problems", "load_split", "location", "on_disk"]

TEST_FRACTION_UNSPLIT = 0.1
"""Share of each class's (sorted) files used as the test split where tonic has no split."""


@dataclass(frozen=True)
class SplitLayout:
    """What tonic 1.7.0's ``_check_exists()`` wants on disk for one split, under ``<root>/<ClassName>/``.

    Attributes:
        archive: the downloaded archive; tonic only checks that the file exists (md5 is checked when downloading).
        folder: folder (relative to the dataset folder; ``""`` = the dataset folder) searched recursively.
        suffix: data file suffix counted there.
        min_files: how many such files tonic wants before it believes the archive was extracted.
        data_file: a file the split reads that must exist (SHD/SSC: ``shd_train.h5``). tonic's check is weaker
            there — any one ``.h5`` in the folder passes it, and tonic then fails opening the missing file.
    """

    archive: str
    folder: str
    suffix: str
    min_files: int
    data_file: str = ""


@dataclass(frozen=True)
class TonicSpec:
    """How neurosim loads one tonic dataset (see the module docstring)."""

    name: str  # registry name
    tonic_class: str  # attribute of tonic.datasets; also the folder name tonic uses
    splits: dict[str, SplitLayout]  # neurosim split -> layout (the same layout for both when tonic has no split)
    split_kwargs: dict[str, dict[str, Any]] | None  # constructor arguments per split; None: tonic has no split
    sensor_size: tuple[int, int, int]  # of the events TonicSplit returns
    num_classes: int
    classes: tuple[str, ...]
    description: str
    size_note: str
    default_time_steps: int
    default_config: str | None = None
    requires: tuple[tuple[str, str], ...] = ()  # (module, what needs it) that must be importable to read files
    check_suffixes: tuple[str, ...] = ()
    check_reader: str = ""  # name of the readers.py reader for `neurosim datasets check`
    check_reader_kwargs: dict[str, Any] = field(default_factory=dict)
    event_fn: Callable[[np.ndarray], np.ndarray] | None = None  # applied to every sample's events
    label_by_folder: bool = False  # tonic's targets are folder names (N-Caltech101)
    config_hint: str = ""  # how to train it without a shipped config


# ------------------------------------------------------------------------------------------------ event fixes


def _audio_events(events: np.ndarray) -> np.ndarray:
    """SHD/SSC ``(t, x, p=1)`` → ``(t, x, y=0, p=0)``: one spatial row and one polarity channel."""
    out = np.zeros(len(events), dtype=np.dtype([("t", np.int64), ("x", np.int64), ("y", np.int64), ("p", np.int64)]))
    out["t"], out["x"] = events["t"], events["x"]
    return out


def _crop_halve(events: np.ndarray, width: int, height: int) -> np.ndarray:
    """Drop events outside ``width × height`` and halve x and y (integer division)."""
    keep = (events["x"] >= 0) & (events["x"] < width) & (events["y"] >= 0) & (events["y"] < height)
    out = events[keep].copy()
    out["x"] //= 2
    out["y"] //= 2
    return out


# ------------------------------------------------------------------------------------------------ the datasets



SPECS: dict[str, TonicSpec] = {s.name: s for s in (
    TonicSpec(
        name="nmnist", tonic_class="NMNIST",
        splits={"train": SplitLayout("train.zip", "Train", ".bin", 10_000),
                "test": SplitLayout("test.zip", "Test", ".bin", 10_000)},
        split_kwargs={"train": {"train": True}, "test": {"train": False}},
        sensor_size=(34, 34, 2), num_classes=10, classes=tuple(str(d) for d in range(10)),
        description="N-MNIST: MNIST digits seen by an ATIS camera making 3 saccades (60,000 train / 10,000 test)",
        size_note="about 1 GB download (train.zip + test.zip), ~2 GB extracted",
        default_time_steps=10, default_config="nmnist",
        check_suffixes=(".bin",), check_reader="read_nmnist_bin", check_reader_kwargs={"sensor_size": (34, 34)},
    ),
    TonicSpec(
        name="dvsgesture", tonic_class="DVSGesture",
        splits={"train": SplitLayout("ibmGestureTrain.tar.gz", "ibmGestureTrain", ".npy", 100),
                "test": SplitLayout("ibmGestureTest.tar.gz", "ibmGestureTest", ".npy", 100)},
        split_kwargs={"train": {"train": True}, "test": {"train": False}},
        sensor_size=(128, 128, 2), num_classes=11,
        classes=("hand clap", "right hand wave", "left hand wave", "right arm cw", "right arm ccw", "left arm cw",
                 "left arm ccw", "arm roll", "air drums", "air guitar", "other"),
        description="IBM DVS128 Gesture: 11 hand and arm gestures, 29 people, 3 lightings (1,077 train / 264 test)",
        size_note="about 2.5 GB download (tonic's preprocessed .npy archives)",
        default_time_steps=20, default_config="dvsgesture",
        check_suffixes=(".npy",), check_reader="read_npy_events",
        check_reader_kwargs={"columns": ("x", "y", "p", "t"), "sensor_size": (128, 128, 2)},
    ),
    TonicSpec(
        name="shd", tonic_class="SHD",
        splits={"train": SplitLayout("shd_train.h5.zip", "", ".h5", 1, "shd_train.h5"),
                "test": SplitLayout("shd_test.h5.zip", "", ".h5", 1, "shd_test.h5")},
        split_kwargs={"train": {"train": True}, "test": {"train": False}},
        sensor_size=(700, 1, 1), num_classes=20, classes=(),
        description="Spiking Heidelberg Digits: spoken digits 0-9 in English and German through a cochlea model, "
                    "700 channels (8,156 train / 2,264 test)",
        size_note="about 0.2 GB download, ~0.5 GB unpacked (.h5)",
        default_time_steps=100, default_config="shd",
        check_suffixes=(".h5",), check_reader="read_shd_h5", check_reader_kwargs={"n_channels": 700, "require_extra": True},
        event_fn=_audio_events,
    ),
    TonicSpec(
        name="ssc", tonic_class="SSC",
        splits={"train": SplitLayout("ssc_train.h5.zip", "", ".h5", 1, "ssc_train.h5"),
                "test": SplitLayout("ssc_test.h5.zip", "", ".h5", 1, "ssc_test.h5")},
        split_kwargs={"train": {"split": "train"}, "test": {"split": "test"}},
        sensor_size=(700, 1, 1), num_classes=35, classes=(),
        description="Spiking Speech Commands: 35 spoken command words through a cochlea model, 700 channels "
                    "(75,466 train / 20,382 test)",
        size_note="about 1.5 GB download, ~3 GB unpacked (.h5); frames at T = 100 take ~5 GB",
        default_time_steps=100,
        check_suffixes=(".h5",), check_reader="read_shd_h5", check_reader_kwargs={"n_channels": 700, "require_extra": True},
        event_fn=_audio_events,
        config_hint="--config shd --set data.dataset=ssc model.num_classes=35",
    ),
    TonicSpec(
        name="pokerdvs", tonic_class="POKERDVS",
        splits={"train": SplitLayout("pips_train.tar.gz", "pips_train", ".npy", 20),
                "test": SplitLayout("pips_test.tar.gz", "pips_test", ".npy", 20)},
        split_kwargs={"train": {"train": True}, "test": {"train": False}},
        sensor_size=(35, 35, 2), num_classes=4, classes=("clubs", "hearts", "diamonds", "spades"),
        description="POKER-DVS: card pips flipped in front of a DVS, 4 suits (48 train / 20 test)",
        size_note="under 1 MB; tonic copies it from its own package (its PyPI wheel lacks the archives)",
        default_time_steps=10,
        check_suffixes=(".npy",), check_reader="read_npy_events",
        check_reader_kwargs={"columns": ("t", "x", "y", "p"), "sensor_size": (35, 35, 2)},
        config_hint="--config quickstart --set data.dataset=pokerdvs model.input_shape=[2,35,35] model.num_classes=4",
    ),
    TonicSpec(
        name="ncaltech101", tonic_class="NCALTECH101",
        splits={"train": SplitLayout("N-Caltech101-archive.zip", "Caltech101", ".bin", 8709),
                "test": SplitLayout("N-Caltech101-archive.zip", "Caltech101", ".bin", 8709)},
        split_kwargs=None,
        sensor_size=(120, 90, 2), num_classes=101, classes=(),
        description="N-Caltech101: Caltech101 images seen by a saccading ATIS camera, 101 classes incl. background "
                    "(8,709 samples; neurosim: 90 %/10 % per class), halved to 120×90",
        size_note="about 2 GB download (zip inside a zip), ~3 GB extracted",
        default_time_steps=10,
        check_suffixes=(".bin",), check_reader="read_nmnist_bin", check_reader_kwargs={"sensor_size": (304, 240)},
        event_fn=partial(_crop_halve, width=240, height=180), label_by_folder=True,
        config_hint="--config quickstart --set data.dataset=ncaltech101 model.input_shape=[2,90,120] "
                    "model.num_classes=101",
    ),
    TonicSpec(
        name="cifar10dvs", tonic_class="CIFAR10DVS",
        splits={"train": SplitLayout("CIFAR10DVS.zip", "", ".aedat4", 1000),
                "test": SplitLayout("CIFAR10DVS.zip", "", ".aedat4", 1000)},
        split_kwargs=None,
        sensor_size=(64, 64, 2), num_classes=10,
        classes=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        description="CIFAR10-DVS: CIFAR-10 images moved on a monitor in front of a DVS128 (10,000 samples; "
                    "neurosim: 90 %/10 % per class), halved to 64×64",
        size_note="about 6 GB download (AEDAT4 files; needs the 'aedat' package to read)",
        default_time_steps=10,
        requires=(("aedat", "CIFAR10-DVS's AEDAT4 files (tonic.io.read_aedat4)"),),
        check_suffixes=(".aedat4",), check_reader="aedat4",
        event_fn=partial(_crop_halve, width=128, height=128),
        config_hint="--config dvsgesture --set data.dataset=cifar10dvs data.time_steps=10 "
                    "model.input_shape=[2,64,64] model.input_pool=1 model.num_classes=10",
    ),
)}


# ------------------------------------------------------------------------------------------------ layout checks


def location(spec: TonicSpec, root: Path) -> Path:
    """``<root>/<ClassName>``: where tonic keeps the dataset."""
    return Path(root).expanduser() / spec.tonic_class


def layout_problems(spec: TonicSpec, root: Path, splits: Sequence[str] = ("train", "test")) -> list[str]:
    """What keeps tonic from accepting the dataset under ``root`` (empty list: it is on disk), as sentences."""
    loc = location(spec, root)
    problems: list[str] = []
    for layout in dict.fromkeys(spec.splits[s] for s in splits):  # unique, in order
        archive = loc / layout.archive
        if not archive.is_file() and layout.data_file and (loc / layout.data_file).is_file():
            problems.append(f"{archive} is missing (tonic wants the archive next to {layout.data_file} and only checks "
                            f"that it exists: if {layout.data_file} is a file of your own, such as "
                            f"neurosim.data.audio.write_shd_h5 writes, create an empty one: touch {archive})")
        elif not archive.is_file():
            problems.append(f"{archive} is missing (tonic wants the archive file next to the extracted data)")
        if layout.data_file and not (loc / layout.data_file).is_file():
            problems.append(f"{loc / layout.data_file} is missing")
        folder = loc / layout.folder
        n = _count_files(folder, layout.suffix, layout.min_files)
        if n < layout.min_files:
            problems.append(f"{folder} holds {n} {layout.suffix} file{'s' if n != 1 else ''}, tonic wants at least "
                            f"{layout.min_files}")
    return problems


def on_disk(spec: TonicSpec, root: Path) -> bool:
    """True when tonic will read the dataset under ``root`` without downloading (both splits)."""
    return not layout_problems(spec, root)


def _count_files(folder: Path, suffix: str, stop_at: int) -> int:
    """Entries matching tonic's ``Path(folder).glob("**/*<suffix>")``, counting no further than ``stop_at``.

    ``os.walk`` (no symlinked folders, like pathlib's ``**``) over files and folders; much faster than the glob on
    tens of thousands of files.
    """
    if not folder.is_dir():
        return 0
    n = 0
    for _, dirs, files in os.walk(folder):
        n += sum(name.endswith(suffix) for name in files) + sum(name.endswith(suffix) for name in dirs)
        if n >= stop_at:
            break
    return n


def _require_readers(spec: TonicSpec) -> None:
    for module, what in spec.requires:
        if importlib.util.find_spec(module) is None:
            raise MissingReaderError(
                f"dataset {spec.name!r}: reading {what} needs the optional package {module!r}, which is not "
                f"installed; install it with `pip install {module}`", package=module)


# ------------------------------------------------------------------------------------------------ samples


class TonicSplit:
    """One split of a tonic dataset as ``(events, label)`` samples in a fixed order.

    Args:
        spec: the dataset.
        split: ``'train'`` or ``'test'``.
        dataset: the tonic dataset object it reads from (``.dataset`` keeps it for tonic-specific attributes).
        indices: which of ``dataset``'s samples, in which order.
        labels: the integer label of each of those samples.
        classes: class names, index = label.

    Attributes:
        sensor_size: (W, H, P) of the events returned.
        targets: ``labels`` as an int64 array.
    """

    def __init__(self, spec: TonicSpec, split: str, dataset, indices: Sequence[int], labels: Sequence[int],
                 classes: Sequence[str]) -> None:
        self.spec, self.split, self.dataset = spec, split, dataset
        self.indices = np.asarray(indices, dtype=np.int64)
        self.targets = np.asarray(labels, dtype=np.int64)
        self.classes = list(classes)
        self.sensor_size = spec.sensor_size
        if len(self.indices) != len(self.targets):
            raise ValueError(f"{len(self.indices)} indices but {len(self.targets)} labels")

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {self!r} of length {len(self)}")
        events, _ = self.dataset[int(self.indices[i])]
        if self.spec.event_fn is not None:
            events = self.spec.event_fn(events)
        return events, int(self.targets[i])

    def __repr__(self) -> str:
        return f"TonicSplit({self.spec.name!r}, {self.split!r}, {len(self)} samples)"


def _order_and_labels(spec: TonicSpec, ds) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A deterministic sample order, integer labels and class names of a tonic dataset object."""
    n = len(ds)
    data = getattr(ds, "data", None)
    if spec.tonic_class in ("SHD", "SSC"):
        import h5py

        with h5py.File(Path(ds.location_on_system) / ds.data_filename, "r") as f:
            labels = np.asarray(f["labels"][()], dtype=np.int64)
            keys = _hsd_keys(f)
        return np.arange(n), labels, keys or list(spec.classes)
    targets = list(ds.targets)
    if spec.label_by_folder:
        names = sorted(set(targets))
        if len(names) > spec.num_classes:
            raise ValueError(f"dataset {spec.name!r}: found {len(names)} class folders under "
                             f"{ds.location_on_system}, expected at most {spec.num_classes}")
        index = {c: i for i, c in enumerate(names)}
        labels = np.array([index[t] for t in targets], dtype=np.int64)
        classes = names
    else:
        labels = np.asarray(targets, dtype=np.int64)
        classes = list(spec.classes)
    if data and isinstance(data[0], (str, Path)):  # file paths: sort by path (tonic may list in file-system order)
        order = np.array(sorted(range(n), key=lambda i: str(data[i])), dtype=np.int64)
    else:  # arrays loaded in class-folder order (POKERDVS): class-major, files sorted within a class by tonic
        order = np.argsort(labels, kind="stable")
    return order, labels, classes


def _hsd_keys(f) -> list[str]:
    """The class names of an open SHD/SSC file (``extra/keys``, bytes in the Heidelberg files) as text."""
    return [k.decode() if isinstance(k, bytes) else str(k) for k in f["extra/keys"][()]] if "extra/keys" in f else []


def file_classes(spec: TonicSpec, root: Path) -> tuple[str, ...]:
    """The class names the dataset's files under ``root`` hold, as :func:`load_split` numbers the labels, without
    opening tonic's dataset: SHD's and SSC's ``extra/keys`` (of the training file; the test file's where that is
    missing), N-Caltech101's class folders (those holding recordings, sorted). Empty for the others, and where the
    files are not there or cannot be read."""
    loc = location(spec, root)
    if spec.tonic_class in ("SHD", "SSC"):
        import h5py

        for split in ("train", "test"):
            try:
                with h5py.File(loc / spec.splits[split].data_file, "r") as f:
                    return tuple(_hsd_keys(f))
            except (OSError, KeyError, ValueError, TypeError):  # missing or unreadable: the other split's file
                continue
        return ()
    if spec.label_by_folder:  # as tonic's targets: the name of each folder with recordings in it
        layout = spec.splits["train"]
        return tuple(sorted({Path(folder).name for folder, _, files in os.walk(loc / layout.folder)
                             if any(f.endswith(layout.suffix.lstrip(".")) for f in files)}))
    return ()


def label_notes(spec: TonicSpec, root: Path) -> list[str]:
    """What ``neurosim datasets list`` says of SHD/SSC-format files under ``root`` whose labels and class names
    (``extra/keys``) disagree: a label past the names (an error when loaded), names no sample has (their count is
    the classes all the same). Empty for the other datasets, and where the files are not there or cannot be read."""
    if spec.tonic_class not in ("SHD", "SSC"):
        return []
    import h5py

    from neurosim.data.readers import shd_label_problem

    notes = []
    for split in ("train", "test"):
        path = location(spec, root) / spec.splits[split].data_file
        try:
            with h5py.File(path, "r") as f:
                labels, keys = np.asarray(f["labels"][()], dtype=np.int64), _hsd_keys(f)
        except (OSError, KeyError, ValueError, TypeError):  # missing or unreadable: datasets check says why
            continue
        problem = shd_label_problem(labels, keys)
        if problem:
            notes.append(f"{path}: {problem} (loading it is an error)")
        elif keys and len(labels) and len(np.unique(labels)) < len(keys):
            notes.append(f"{path}: its samples are of {len(np.unique(labels))} of the {len(keys)} classes extra/keys "
                         "names (the classes counted)")
    return notes


def _split_unsplit(order: np.ndarray, labels: np.ndarray, split: str) -> np.ndarray:
    """The first 90 % of each class (in ``order``) for train, the rest for test."""
    keep = []
    for c in np.unique(labels):
        idx = order[labels[order] == c]
        n_test = int(round(len(idx) * TEST_FRACTION_UNSPLIT))
        n_train = len(idx) - n_test
        keep.append(idx[:n_train] if split == "train" else idx[n_train:])
    chosen = np.concatenate(keep) if keep else np.zeros(0, dtype=np.int64)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return chosen[np.argsort(rank[chosen], kind="stable")]  # back in the overall order


def _tonic_dataset(spec: TonicSpec, split: str, root: Path):
    import tonic.datasets

    cls = getattr(tonic.datasets, spec.tonic_class)
    kwargs = spec.split_kwargs[split] if spec.split_kwargs is not None else {}
    return cls(save_to=str(root), **kwargs)


OFFLINE_ENV = "NEUROSIM_OFFLINE"


def offline() -> bool:
    """True when the environment variable ``NEUROSIM_OFFLINE`` is set to anything but ``""``, ``0``, ``false``
    or ``no``: no dataset is downloaded (as ``HF_HUB_OFFLINE`` does for Hugging Face); the test suite sets it."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def load_split(spec: TonicSpec, split: str, root: Path, download: bool = False, progress: bool = True) -> TonicSplit:
    """Load one split through tonic's class; download only when ``download`` (tonic shows the progress bar)."""
    _require_readers(spec)
    root = Path(root).expanduser()
    if not download:
        problems = layout_problems(spec, root, (split,))
        if problems:  # never let tonic's constructor start a download nobody asked for
            from neurosim.data.registry import get_dataset

            raise DatasetNotFoundError(get_dataset(spec.name).not_found_message(root))
    elif layout_problems(spec, root, (split,)):
        _fetch(spec, split, root)
    if spec.tonic_class in ("SHD", "SSC"):
        _check_hsd_datasets(location(spec, root) / spec.splits[split].data_file)
    ds = _tonic_dataset(spec, split, root)
    order, labels, classes = _order_and_labels(spec, ds)
    if spec.tonic_class in ("SHD", "SSC"):
        _check_hsd_labels(location(spec, root) / spec.splits[split].data_file, split, labels, classes)
    indices = order if spec.split_kwargs is not None else _split_unsplit(order, labels, split)
    return TonicSplit(spec, split, ds, indices, labels[indices], classes)


def _check_hsd_labels(path: Path, split: str, labels: np.ndarray, names: Sequence[str]) -> None:
    """An SHD/SSC-format file's labels against its class names (``extra/keys``; a label is its class's index there):
    a label past them (or negative) is an :class:`~neurosim.data.readers.EventFileError` naming the file; names no
    sample has warn, as a folder dataset's empty class folders do (the classes are the names all the same, as tonic's
    ``SHD(...).classes``: ``model.num_classes`` counts them)."""
    from neurosim._stack import caller_stacklevel
    from neurosim.data.readers import EventFileError, shd_label_problem

    problem = shd_label_problem(labels, names)
    if problem:
        raise EventFileError(path, problem)
    absent = sorted(set(range(len(names))) - set(np.unique(labels).tolist()))
    if not absent or not len(labels):
        return
    shown = ", ".join(names[i] for i in absent[:5]) + (f" and {len(absent) - 5} more" if len(absent) > 5 else "")
    what = ("the model never trains on them" if split == "train" else
            "the test accuracy does not measure them")
    warnings.warn(f"{path}: {len(absent)} of the {len(names)} classes extra/keys names have no sample in the {split} "
                  f"split ({shown}): {what}; they still count in model.num_classes, as a label is its class's index "
                  "in extra/keys (for fewer outputs, number the classes with samples 0, 1, ... and name only those)",
                  UserWarning, stacklevel=caller_stacklevel())


HSD_DATASETS = ("spikes/times", "spikes/units", "labels", "extra/keys", "extra/speaker")
"""What tonic's ``SHD`` and ``SSC`` read from a file: all five must be there (``extra/*`` in its constructor)."""


def _check_hsd_datasets(path: Path) -> None:
    """An :class:`~neurosim.data.readers.EventFileError` naming the file and what it lacks, where tonic would fail
    with h5py's bare ``KeyError`` (its constructor reads ``extra/keys`` and ``extra/speaker``)."""
    import h5py

    from neurosim.data.readers import EventFileError

    try:
        with h5py.File(path, "r") as f:
            missing = [name for name in HSD_DATASETS if not isinstance(f.get(name), h5py.Dataset)]
    except OSError as exc:
        raise EventFileError(path, f"cannot open as HDF5: {exc}") from exc
    if missing:
        raise EventFileError(path, f"not an SHD/SSC file tonic reads: no dataset {', '.join(missing)} (tonic's SHD and "
                                   f"SSC read {', '.join(HSD_DATASETS)}); neurosim.data.audio.write_shd_h5 writes them "
                                   "all")


def _fetch(spec: TonicSpec, split: str, root: Path) -> None:
    """Download and extract what ``split`` needs, through tonic's own download code."""
    from tonic.download_utils import extract_archive

    if spec.name == "pokerdvs":
        _fetch_pokerdvs(spec, split, root)
        return
    loc = location(spec, root)
    archive = loc / spec.splits[split].archive
    data_file = loc / spec.splits[split].data_file if spec.splits[split].data_file else None
    if data_file is not None and data_file.is_file() and not archive.is_file():
        raise DatasetNotFoundError(  # tonic would download the archive and extract the published file over it
            f"dataset {spec.name!r}: {data_file} is there without {archive.name}, so downloading would replace it with "
            f"the published {spec.tonic_class} (tonic extracts the archive over it). For a file of your own, such as "
            f"neurosim.data.audio.write_shd_h5 writes, create an empty {archive.name} beside it (touch {archive}) and "
            f"run again; for a leftover of an interrupted download, delete {data_file} and run prepare again")
    if archive.is_file() and archive.stat().st_size > 0:  # downloaded before, extraction incomplete
        extract_archive(str(archive), str(loc))
    if layout_problems(spec, root, (split,)):
        if archive.is_file():  # tonic would trust the archive and not download again
            raise DatasetNotFoundError(
                f"dataset {spec.name!r}: {archive} is there but the data is incomplete after extracting it "
                f"({'; '.join(layout_problems(spec, root, (split,)))}); delete {archive} and run prepare again")
        if offline():
            raise DatasetNotFoundError(
                f"dataset {spec.name!r}: {spec.splits[split].archive} ({spec.size_note}) is not in {loc}, and "
                f"{OFFLINE_ENV}={os.environ[OFFLINE_ENV]!r} turns downloads off: unset it, or put the archive there "
                "yourself")
        made = not loc.exists()
        loc.mkdir(parents=True, exist_ok=True)
        print(f"downloading {spec.name} ({spec.size_note}) into {loc}", flush=True)
        try:
            _tonic_dataset(spec, split, root)  # tonic's constructor downloads (tqdm bar) and extracts
        except OSError as e:  # no network, a refused or broken connection (urllib's URLError is an OSError)
            archive.unlink(missing_ok=True)  # a partial download, which tonic would trust next time
            if made and not any(loc.iterdir()):
                loc.rmdir()
            raise DatasetNotFoundError(
                f"dataset {spec.name!r}: downloading {spec.splits[split].archive} into {loc} failed "
                f"({type(e).__name__}: {e}); check the network and run prepare again, or put the archive there "
                "yourself") from None
    if spec.name == "ncaltech101" and layout_problems(spec, root, (split,)):
        # the outer archive holds Caltech101.zip, which tonic 1.7.0 does not extract
        for inner in sorted(loc.rglob("Caltech101.zip")):
            extract_archive(str(inner), str(loc))
    problems = layout_problems(spec, root, (split,))
    if problems:
        raise DatasetNotFoundError(f"dataset {spec.name!r}: download finished but the data is still incomplete "
                                   f"({'; '.join(problems)}); delete {loc} and run prepare again")


def _fetch_pokerdvs(spec: TonicSpec, split: str, root: Path) -> None:
    """POKER-DVS ships inside tonic's source tree, not its PyPI wheel; accept the archive placed by hand."""
    from tonic.download_utils import extract_archive

    loc = location(spec, root)
    layout = spec.splits[split]
    archive = loc / layout.archive
    if archive.is_file() and archive.stat().st_size > 0:
        extract_archive(str(archive), str(loc))
        return
    try:
        _tonic_dataset(spec, split, root)  # copies the archive from tonic's package folder when it is there
    except FileNotFoundError as e:
        raise DatasetNotFoundError(
            f"dataset 'pokerdvs': tonic copies {layout.archive} from its own package folder, but the installed tonic "
            f"does not include it ({e}). Get pips_train.tar.gz and pips_test.tar.gz from tonic's source repository "
            f"(github.com/neuromorphs/tonic, folder tonic/datasets/), put them in {loc} and run prepare again"
        ) from None
    if not archive.is_file():  # tonic deletes the copied archive after extracting; its check wants the file
        archive.touch()


# ------------------------------------------------------------------------------------------------ check


def _aedat4_reader(path: Path) -> None:
    from tonic.io import read_aedat4

    events = read_aedat4(str(path))
    if len(events) == 0:
        raise ValueError("no events")


def check_dataset(spec: TonicSpec, root: Path, progress: bool = False):
    """Read every data file of the dataset with neurosim's checking readers; returns a ``readers.CheckReport``.

    Does not stop at the first bad file. Raises :class:`DatasetNotFoundError` when the dataset folder is absent.
    """
    from neurosim.data import readers  # owned by the readers module; imported only when a check runs

    loc = location(spec, root)
    if not loc.is_dir():
        raise DatasetNotFoundError(f"dataset {spec.name!r}: nothing to check, {loc} does not exist")
    if spec.check_reader == "aedat4":
        _require_readers(spec)
        reader = _aedat4_reader
    else:
        reader = partial(getattr(readers, spec.check_reader), **spec.check_reader_kwargs)
    folders = sorted({loc / spec.splits[s].folder for s in spec.splits})
    if len(folders) == 1:
        return readers.check_files(folders[0], reader=reader, suffixes=spec.check_suffixes, progress=progress)
    files: list[Path] = []
    for folder in folders:
        if folder.is_dir():  # the files check_files would pick in one folder (hidden ones, e.g. ._x.bin, skipped)
            files += readers._collect(folder, spec.check_suffixes, recursive=True)[1]
    report = readers.check_files(files, reader=reader, progress=progress)
    report.root = loc
    return report


# ------------------------------------------------------------------------------------------------ registry


def dataset_infos() -> list[DatasetInfo]:
    """A :class:`DatasetInfo` for every tonic dataset in :data:`SPECS`."""
    infos = []
    for spec in SPECS.values():
        infos.append(DatasetInfo(
            name=spec.name,
            sensor_size=spec.sensor_size,
            num_classes=spec.num_classes,
            description=spec.description,
            loader=partial(load_split, spec),
            on_disk=partial(on_disk, spec),
            location=partial(location, spec),
            default_time_steps=spec.default_time_steps,
            default_config=spec.default_config,
            size_note=spec.size_note,
            classes=spec.classes,
            missing=partial(layout_problems, spec),
            extra={"tonic_class": spec.tonic_class, "spec": spec, "config_hint": spec.config_hint,
                   "requires": [m for m, _ in spec.requires]},
            audio=spec.event_fn is _audio_events,
            file_classes=partial(file_classes, spec) if not spec.classes else None,
        ))
    return infos

"""Dataset registry: every dataset neurosim can train on, by name.

Each :class:`DatasetInfo` knows its sensor size, classes, default frame transform and config, where it is stored,
and how to load a split as an event dataset (``(events, label)`` samples in tonic's structured dtype). Nothing
here downloads: :meth:`DatasetInfo.load` raises :class:`DatasetNotFoundError` (saying where the data would go,
how big it is and what is missing) unless the data is on disk or the caller passes ``download=True``.

Registered: ``event_digits`` (bundled, generated offline) and the tonic datasets of
:mod:`neurosim.data.tonic_datasets` — ``nmnist``, ``dvsgesture``, ``shd``, ``ssc``, ``pokerdvs``, ``ncaltech101``,
``cifar10dvs``. ``neurosim datasets list`` shows them with their status and path.

Example:
    >>> info = get_dataset("nmnist")
    >>> info.sensor_size, info.num_classes, info.default_time_steps, info.default_config
    ((34, 34, 2), 10, 10, 'nmnist')
    >>> info.location("/data")
    PosixPath('/data/NMNIST')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from neurosim.data._cache import default_cache_dir

__all__ = ["DATASETS", "DatasetInfo", "DatasetNotFoundError", "MissingReaderError", "get_dataset",
           "register_dataset"]


class DatasetNotFoundError(FileNotFoundError):
    """The dataset is not on disk and downloading was not asked for."""


class MissingReaderError(ImportError):
    """Reading a dataset's files needs an optional package that is not installed; the message names it.

    Attributes:
        package: the pip package to install (e.g. ``"aedat"``).
    """

    def __init__(self, message: str, package: str = "") -> None:
        super().__init__(message, name=package or None)
        self.package = package


@dataclass(frozen=True)
class DatasetInfo:
    """What neurosim knows about one dataset.

    Attributes:
        name: registry name.
        sensor_size: tonic sensor size (W, H, P) — for audio (channels, 1, 1).
        num_classes: number of classes.
        description: one line shown by ``neurosim datasets list``.
        default_time_steps: frames per sample of the default frame transform (:meth:`frame_transform`).
        default_config: name of the shipped config in ``neurosim/configs`` (without ``.toml``), if any.
        size_note: approximate download size, shown before a download.
        loader: ``loader(split, root, download, progress) -> dataset`` with ``(events, label)`` samples.
        on_disk: ``on_disk(root) -> bool``.
        location: ``location(root) -> Path`` where the data lives: the file or folder the loader reads. Its
            files' sizes and times key the frame cache, so a location that does not exist (or holds no files)
            leaves the frames uncached, converted on every run.
        bundled: generated locally, needs no network.
        classes: class names (index = label) where fixed; empty when they come from the files.
        file_classes: ``file_classes(root) -> tuple[str, ...]``: the class names the files under ``root`` hold,
            for a dataset whose names are not fixed (SHD's and SSC's ``extra/keys``, N-Caltech101's class folders);
            empty where they hold none or cannot be read. :meth:`class_names` asks it.
        missing: ``missing(root) -> list[str]``: what keeps the dataset from being on disk (for messages).
        extra: anything dataset-specific (tonic class, config hint, optional packages).
        audio: its ``x`` are the channels of a cochlea model in one row (SHD, SSC), not pixels: its frames are
            ``[T, 1, 1, channels]`` like a camera's, but :func:`~neurosim.data.make_loaders` (and so ``neurosim
            train``) refuses the augmentations that move pixels (``data.augment.shift``, ``flip``, ``cutout``) for it
            (:func:`neurosim.data.pipeline.check_augment`).
    """

    name: str
    sensor_size: tuple[int, int, int]
    num_classes: int
    description: str
    loader: Callable
    on_disk: Callable[[Path], bool]
    location: Callable[[Path], Path]
    default_time_steps: int = 10
    default_config: str | None = None
    size_note: str = ""
    bundled: bool = False
    classes: tuple[str, ...] = ()
    missing: Callable[[Path], list[str]] | None = None
    extra: dict = field(default_factory=dict)
    audio: bool = False
    file_classes: Callable[[Path], tuple[str, ...]] | None = None

    def class_names(self, root: str | Path | None = None) -> tuple[str, ...]:
        """The class names, index = label: :attr:`classes` where fixed, else those the files under ``root`` hold
        (:attr:`file_classes`; ``root`` as for :meth:`load`); empty where neither gives any. Reads no events."""
        if self.classes or self.file_classes is None:
            return tuple(self.classes)
        return tuple(self.file_classes(self.root(root)))

    def root(self, root: str | Path | None = None) -> Path:
        """The dataset root, absolute: ``root`` if given, else ``<neurosim cache>/datasets``. (Absolute, so the
        frame cache keys the same folder alike from any working directory, and printed hints work anywhere.)"""
        return (Path(root).expanduser() if root is not None else default_cache_dir() / "datasets").resolve()

    def frame_transform(self, time_steps: int | None = None):
        """The default events → frames transform: ``ToFrame(sensor_size, n_time_bins=T)`` → ``[T, P, H, W]``.

        neurosim's fast ``ToFrame`` when :mod:`neurosim.data.transforms` provides it, else tonic's.
        """
        try:
            from neurosim.data.transforms import ToFrame
        except ImportError:
            from tonic.transforms import ToFrame
        return ToFrame(sensor_size=tuple(self.sensor_size), n_time_bins=int(time_steps or self.default_time_steps))

    def not_found_message(self, root: str | Path | None = None) -> str:
        """Why the dataset is not on disk under ``root``, where it would go, and how to get it."""
        r = self.root(root)
        problems = self.missing(r) if self.missing is not None and self.location(r).exists() else []
        why = f" ({'; '.join(problems)})" if problems else ""
        return (f"dataset {self.name!r} is not on disk at {self.location(r)}{why}. Run "
                f"`neurosim datasets prepare {self.name}` (add --root DIR for another place) to download it there "
                f"({self.size_note or 'size unknown'}), or set data.root to the folder that already holds it")

    def load(self, split: str, root: str | Path | None = None, download: bool = False, progress: bool = True):
        """The ``split`` ('train' | 'test') as an event dataset."""
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        r = self.root(root)
        if not self.bundled and not download and not self.on_disk(r):
            raise DatasetNotFoundError(self.not_found_message(r))
        return self.loader(split, r, download, progress)

    def prepare(self, root: str | Path | None = None, progress: bool = True, frames: bool = True,
                time_steps: int | None = None) -> dict:
        """Make the dataset ready to train on: download and extract it if needed (tonic's progress bar), then
        convert both splits to cached frames of the default transform (or ``time_steps`` frames).

        Returns ``{"location": Path, "samples": {split: n}, "frames": {split: shape}, "uncached": [split, ...]}``:
        ``"frames"`` the splits whose frames are in the cache, ``"uncached"`` those converted but not cached because
        the location cannot be fingerprinted (a warning says why); ``frames=False`` skips the conversion (both are
        then empty).

        Raises:
            neurosim.data._cache.CacheWriteError: (an OSError) the cache folder cannot take the generated data or
                the frames (full, read-only): caching is the point of preparing, so this is an error, not the
                warning a training run gets; it names the file, the cause and what to do.
        """
        from neurosim.config import DataConfig
        from neurosim.data._cache import writes_required
        from neurosim.data.pipeline import _load_frames

        r = self.root(root)
        samples, shapes, uncached = {}, {}, []
        with writes_required():
            for split in ("train", "test"):
                samples[split] = len(self.load(split, r, download=True, progress=progress))
            if frames:
                cfg = DataConfig(dataset=self.name, time_steps=int(time_steps or self.default_time_steps),
                                 root=str(r))
                for split in ("train", "test"):
                    got, _, fingerprint = _load_frames(cfg, split, progress)
                    if fingerprint is None:
                        uncached.append(split)
                    else:
                        shapes[split] = tuple(got.shape)
        return {"location": self.location(r), "samples": samples, "frames": shapes, "uncached": uncached}


DATASETS: dict[str, DatasetInfo] = {}


def register_dataset(info: DatasetInfo) -> DatasetInfo:
    """Add (or replace) a dataset in the registry."""
    DATASETS[info.name] = info
    return info


def get_dataset(name: str) -> DatasetInfo:
    """A registered dataset by name, or ``"folder:PATH"``, a folder of one's own recordings
    (:mod:`neurosim.data.folder`). A clear error lists the known names, or says what the folder lacks."""
    if name.startswith("folder:"):
        from neurosim.data.folder import folder_dataset

        return folder_dataset(name)
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}, or folder:PATH "
                         "for recordings of your own (train/<class>/ and test/<class>/ files and a dataset.toml)")
    return DATASETS[name]


def _event_digits_folder(root: Path) -> Path | None:
    """Where the generated event digits live for a dataset ``root``: the neurosim cache for the default root
    (``<cache>/datasets``; None), where the file has always been, else ``root`` itself (``data.root``,
    ``datasets prepare --root``), so that a root set for the data is where the bundled data is generated and read
    too; it was ignored, the file going to the cache whatever the root."""
    return None if Path(root).resolve() == (default_cache_dir() / "datasets").resolve() else Path(root)


def _event_digits_loader(split, root, download, progress):
    from neurosim.data.event_digits import EventDigits

    return EventDigits(split=split, cache_dir=_event_digits_folder(root), progress=progress)


def _event_digits_path(root: Path) -> Path:
    from neurosim.data.event_digits import event_digits_cache_path

    return event_digits_cache_path(_event_digits_folder(root))


register_dataset(DatasetInfo(
    name="event_digits",
    sensor_size=(34, 34, 2),
    num_classes=10,
    description="bundled: scikit-learn's 8×8 digits through neurosim's DVS emulator, N-MNIST-like (1,797 samples)",
    loader=_event_digits_loader,
    on_disk=lambda root: _event_digits_path(root).is_file(),
    location=_event_digits_path,
    default_time_steps=10,
    default_config="quickstart",
    size_note="generated locally in under a minute, no download",
    bundled=True,
))


def _register_tonic_datasets() -> None:
    from neurosim.data.tonic_datasets import dataset_infos

    for info in dataset_infos():
        register_dataset(info)


_register_tonic_datasets()

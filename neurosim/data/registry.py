"""Dataset registry: every dataset neurosim can train on, by name.

Each :class:`DatasetInfo` knows its sensor size, classes, default frame settings and config, where it is stored,
and how to load a split as an event dataset (``(events, label)`` samples in tonic's structured dtype). Nothing
here downloads: :meth:`DatasetInfo.load` raises :class:`DatasetNotFoundError` (saying where the data would go
and how big it is) unless the data is on disk or the caller passes ``download=True``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from neurosim.data._cache import default_cache_dir

__all__ = ["DATASETS", "DatasetInfo", "DatasetNotFoundError", "get_dataset", "register_dataset"]


class DatasetNotFoundError(FileNotFoundError):
    """The dataset is not on disk and downloading was not asked for."""


@dataclass(frozen=True)
class DatasetInfo:
    """What neurosim knows about one dataset.

    Attributes:
        name: registry name.
        sensor_size: tonic sensor size (W, H, P) — for audio (channels, 1, 1).
        num_classes: number of classes.
        description: one line shown by ``neurosim datasets list``.
        default_time_steps: frames per sample of the default frame transform.
        default_config: name of the shipped config in ``neurosim/configs`` (without ``.toml``), if any.
        size_note: approximate download size, shown before a download.
        loader: ``loader(split, root, download, progress) -> dataset`` with ``(events, label)`` samples.
        on_disk: ``on_disk(root) -> bool``.
        location: ``location(root) -> Path`` where the data lives.
        bundled: generated locally, needs no network.
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
    extra: dict = field(default_factory=dict)

    def root(self, root: str | Path | None = None) -> Path:
        return Path(root).expanduser() if root is not None else default_cache_dir() / "datasets"

    def load(self, split: str, root: str | Path | None = None, download: bool = False, progress: bool = True):
        """The ``split`` ('train' | 'test') as an event dataset."""
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        r = self.root(root)
        if not self.bundled and not download and not self.on_disk(r):
            raise DatasetNotFoundError(
                f"dataset {self.name!r} is not on disk at {self.location(r)}; run "
                f"`neurosim datasets prepare {self.name}` to download it ({self.size_note or 'size unknown'}), "
                "or set data.root to where it already is"
            )
        return self.loader(split, r, download, progress)


DATASETS: dict[str, DatasetInfo] = {}


def register_dataset(info: DatasetInfo) -> DatasetInfo:
    """Add (or replace) a dataset in the registry."""
    DATASETS[info.name] = info
    return info


def get_dataset(name: str) -> DatasetInfo:
    """A registered dataset by name (clear error listing the known names)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def _event_digits_loader(split, root, download, progress):
    from neurosim.data.event_digits import EventDigits

    return EventDigits(split=split, progress=progress)


def _event_digits_path(root: Path) -> Path:
    from neurosim.data.event_digits import event_digits_cache_path

    return event_digits_cache_path()


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

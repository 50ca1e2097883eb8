"""Event digits: the bundled, N-MNIST-like event dataset, made offline from scikit-learn's 8×8 digits.

Each of the 1,797 digits of ``sklearn.datasets.load_digits`` (UCI optical digits, 8×8, 16 grey levels) is upsampled
to 28×28 (MNIST's size), drawn dark on a bright background and watched by the emulated DVS of
:mod:`neurosim.data.dvs` while the sensor makes N-MNIST's three saccades (triangle (0,0)→(3.5,7)→(7,0)→(0,0) pixels,
105 ms per leg) over a 34×34 pixel array — the recipe of Orchard et al. (2015) for N-MNIST. Every sample has its own
seed, so the dataset is bit-for-bit reproducible; the train/test split (80/20, stratified by class) is fixed.

The whole set is generated once (a few seconds with numba) and cached as ``event_digits_v3.npz`` under
:func:`neurosim.data._cache.default_cache_dir` (``NEUROSIM_CACHE_DIR`` overrides it), or under the dataset root
when one is set (``data.root``, ``neurosim datasets prepare --root``). A corrupt cache file is
detected and rebuilt. Samples are ``(events, label)`` with events in tonic's N-MNIST dtype, so any
``tonic.transforms`` transform works on them. See ``datasets/event_digits.md`` for the dataset card.
"""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

from neurosim.data._cache import default_cache_dir, store
from neurosim.data.dvs import EVENT_DTYPE, DVSParams, emulate, render_shifted, saccade_offsets

__all__ = ["EventDigits", "build_event_digits", "event_digits_cache_path", "load_event_digits", "VERSION",
           "SENSOR_SIZE", "DVS_PARAMS"]

VERSION = 3  # 2: shot noise on pixels whose level is changing too (v1 dropped it there); 3: leak events at random
# phases and per-pixel rates (v2 pixels all leaked at once every 10 s, so a 0.3 s sample had none)
SENSOR_SIZE = (34, 34, 2)
"""tonic sensor size (W, H, P), as N-MNIST."""
DVS_PARAMS = DVSParams()
FRAME_US = 1000
"""The emulator sees one rendered frame per millisecond."""
LEG_US = 105_000
IMAGE_SIZE = 28
INK = 0.77
"""Ink darkness: a full-intensity stroke reflects ``1 - INK`` of the background light."""
TEST_FRACTION = 0.2
SPLIT_SEED = 2015
BASE_SEED = 34_034


def event_digits_cache_path(cache_dir: str | Path | None = None) -> Path:
    """Where the generated dataset is cached."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return root / f"event_digits_v{VERSION}.npz"


def _upsample(img8: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """Bilinear upsampling of an 8×8 grey image (0..16) to ``size``×``size`` in [0, 1] (pixel centres aligned)."""
    src = np.asarray(img8, dtype=np.float64) / 16.0
    n = src.shape[0]
    coords = (np.arange(size) + 0.5) * n / size - 0.5
    c0 = np.clip(np.floor(coords).astype(int), 0, n - 1)
    c1 = np.clip(c0 + 1, 0, n - 1)
    f = np.clip(coords - c0, 0.0, 1.0)
    rows = src[c0] * (1 - f)[:, None] + src[c1] * f[:, None]
    return rows[:, c0] * (1 - f)[None, :] + rows[:, c1] * f[None, :]


def digit_events(image8: np.ndarray, seed: int, params: DVSParams = DVS_PARAMS) -> np.ndarray:
    """The events of one 8×8 digit (values 0..16) on the emulated 34×34 sensor, with N-MNIST's saccades."""
    times = np.arange(0, 3 * LEG_US + FRAME_US, FRAME_US, dtype=np.int64)
    offsets = saccade_offsets(times, leg_us=LEG_US)
    scene = 1.0 - INK * _upsample(image8)
    frames = render_shifted(scene, (SENSOR_SIZE[1], SENSOR_SIZE[0]), offsets, background=1.0)
    return emulate(frames, times, params, seed=seed)


def _split(labels: np.ndarray) -> np.ndarray:
    """Boolean mask of test samples: a fixed, class-stratified 20 %."""
    rng = np.random.default_rng(SPLIT_SEED)
    is_test = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        n_test = int(round(TEST_FRACTION * len(idx)))
        is_test[rng.permutation(idx)[:n_test]] = True
    return is_test


def build_event_digits(progress: bool = True, limit: int | None = None) -> dict[str, np.ndarray]:
    """Generate the dataset: flat event columns with per-sample offsets, labels and the test mask."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images, labels = digits.images, digits.target.astype(np.int64)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    # each digit's events go to the stored columns' dtypes as they are made (7 bytes an event, not EVENT_DTYPE's
    # 32): the 7.7 M events of all 1797 digits took 246 MB as a list and as many again concatenated
    columns = {name: [] for name in _COLUMNS}
    bar = tqdm(range(len(images)), desc="event digits (DVS emulation)", disable=None if progress else True,
               leave=False)
    for i in bar:
        events = digit_events(images[i], seed=BASE_SEED + i)
        for name, dtype in _COLUMNS.items():
            columns[name].append(events[name].astype(dtype))
    counts = np.array([len(c) for c in columns["t"]], dtype=np.int64)
    return {
        **{name: np.concatenate(parts) if parts else np.zeros(0, _COLUMNS[name]) for name, parts in columns.items()},
        "offsets": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        "labels": labels, "is_test": _split(labels),
    }


_COLUMNS = {"x": np.uint8, "y": np.uint8, "t": np.uint32, "p": np.uint8}  # the cache file's event columns


def _meta() -> str:
    return json.dumps({"version": VERSION, "dvs": asdict(DVS_PARAMS), "frame_us": FRAME_US, "leg_us": LEG_US,
                       "image_size": IMAGE_SIZE, "ink": INK, "base_seed": BASE_SEED, "split_seed": SPLIT_SEED,
                       "test_fraction": TEST_FRACTION}, sort_keys=True)


_FIELDS = ("x", "y", "t", "p", "offsets", "labels", "is_test")


def _read_cache(path: Path) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["meta"]) != _meta():
                return None
            data = {k: z[k] for k in _FIELDS}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None
    n = int(data["offsets"][-1]) if len(data["offsets"]) else -1
    if any(len(data[k]) != n for k in "xytp") or len(data["labels"]) != len(data["offsets"]) - 1 \
            or len(data["is_test"]) != len(data["labels"]):
        return None
    return data


_MEMORY: dict[Path, dict[str, np.ndarray]] = {}


def load_event_digits(cache_dir: str | Path | None = None, progress: bool = True) -> dict[str, np.ndarray]:
    """The generated dataset, from the cache (built and written atomically on first use; rebuilt if corrupt)."""
    path = event_digits_cache_path(cache_dir)
    if path in _MEMORY:
        return _MEMORY[path]
    data = _read_cache(path) if path.is_file() else None
    if data is None:
        if path.is_file():
            warnings.warn(f"event digits cache {path} is corrupt or from another version; rebuilding it",
                          stacklevel=2)
        data = build_event_digits(progress=progress)
        buf = io.BytesIO()
        np.savez_compressed(buf, meta=np.array(_meta()), **data)
        # a folder other than the neurosim cache was chosen by data.root (registry) or cache_dir, not by the cache's
        # variable: the advice names what chose it
        other = path.parent.resolve() != default_cache_dir().resolve()
        store(path, buf.getvalue(), "the event digits",
              "data.root (datasets prepare: --root; EventDigits: cache_dir)" if other else None)
    _MEMORY[path] = data
    return data


class EventDigits:
    """The bundled event-digits dataset with tonic's dataset interface.

    ``EventDigits(split="train")[i] -> (events, label)``; ``events`` is a structured array (``x, y, t, p``; ``t`` in
    µs) in tonic's N-MNIST dtype. ``transform`` / ``target_transform`` are applied as in tonic datasets.

    Args:
        split: ``"train"`` (1,438 samples) or ``"test"`` (359 samples).
        transform: applied to the events, e.g. ``tonic.transforms.ToFrame(sensor_size=EventDigits.sensor_size, ...)``.
        target_transform: applied to the label.
        cache_dir: where the generated file lives (default: :func:`~neurosim.data._cache.default_cache_dir`).
        progress: show a progress bar while generating.
    """

    sensor_size = SENSOR_SIZE
    dtype = EVENT_DTYPE
    ordering = dtype.names
    classes = [str(d) for d in range(10)]

    def __init__(self, split: str = "train", transform: Callable | None = None,
                 target_transform: Callable | None = None, cache_dir: str | Path | None = None,
                 progress: bool = True):
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        self.split = split
        self.transform = transform
        self.target_transform = target_transform
        self._data = load_event_digits(cache_dir, progress)
        mask = self._data["is_test"] if split == "test" else ~self._data["is_test"]
        self.indices = np.flatnonzero(mask)
        self.targets = self._data["labels"][self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for EventDigits({self.split!r}) of length {len(self)}")
        k = self.indices[i]
        d = self._data
        lo, hi = d["offsets"][k], d["offsets"][k + 1]
        events = np.empty(hi - lo, dtype=EVENT_DTYPE)
        for name in "xytp":
            events[name] = d[name][lo:hi]
        label = int(d["labels"][k])
        if self.transform is not None:
            events = self.transform(events)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return events, label

    def __repr__(self) -> str:
        return f"EventDigits(split={self.split!r}, samples={len(self)}, sensor_size={self.sensor_size})"

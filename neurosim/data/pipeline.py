"""From a :class:`neurosim.config.DataConfig` to train/test batch loaders of cached frames.

Frames are cached under a key that holds the source files' fingerprint (:func:`source_fingerprint` of
``DatasetInfo.location``), so changed recordings are converted again. A dataset whose location cannot be
fingerprinted (it does not exist, or holds no files: e.g. a registered dataset whose loader reads its recordings from
somewhere else, or makes them in memory) is converted on every call instead of being cached under a key that would
not change with its data; a warning names the dataset once per call of :func:`make_loaders` or :func:`load_frames`.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from neurosim._splitmix import mix
from neurosim._stack import caller_stacklevel
from neurosim.config import ConfigError, DataConfig
from neurosim.data._cache import store_failed
from neurosim.data.augment import AugmentError
from neurosim.data.frames import cached_event_frames, events_to_frames, frame_cache_path
from neurosim.data.loaders import FrameLoader
from neurosim.data.registry import DatasetInfo, get_dataset

__all__ = ["DataBundle", "check_augment", "eval_loader", "frame_cache_key", "load_frames", "make_loaders",
           "recording_spans_us", "source_fingerprint", "split_validation"]

#: seeds the choice of validation samples: the same held-out samples for every run seed, so that runs that differ
#: in their seed are selected and compared on one validation set
VAL_SPLIT_SEED = 0x76616C


@dataclass
class DataBundle:
    """Train, validation and test loaders plus what they were made from (``train`` and ``train_frames`` are None
    where only the test split was loaded: ``runs.load_run(test_only=True)``). With ``data.val_split``, ``val`` serves
    the samples held out of ``train_frames`` and ``train`` the others (:func:`split_validation`); else ``val`` is
    None and ``train`` serves all of them."""

    info: DatasetInfo
    train: FrameLoader | None
    test: FrameLoader
    train_frames: np.ndarray | None
    test_frames: np.ndarray
    fingerprint: list | None = None  # the source files' (source_fingerprint), None where there are none to
    # read (then the frames were not cached): checkpoints record it
    val: FrameLoader | None = None


class _First:
    """The first ``n`` samples of a dataset (so a subset run converts only what it uses)."""

    def __init__(self, dataset, n: int):
        self.dataset, self.n = dataset, min(int(n), len(dataset))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.dataset[i]


_DIGEST_BYTES = 64 << 20  # a single file up to this size is keyed by its content, a larger one by size and mtime


def _file_digest(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def source_fingerprint(path: Path) -> list | None:
    """Names, sizes and modification times of a dataset's files: ``[file count, total bytes, newest mtime, digest]``,
    the digest a SHA-1 over every file's relative path, size and mtime; a single file up to 64 MiB is keyed by
    ``[1, bytes, SHA-1 of its content]`` instead. None where ``path`` is neither a file nor a folder holding at
    least one file: nothing there identifies the data.

    Part of the frame-cache key, so frames are rebuilt when the data on disk changes (a re-download, a file
    added, replaced, or renamed, e.g. moved to another class folder) instead of silently serving frames of the
    old files; without a fingerprint the frames are not cached at all. Of a folder only ``stat`` is read, not the
    files' contents.
    """
    path = Path(path)
    if path.is_file():
        st = path.stat()
        if st.st_size <= _DIGEST_BYTES:  # e.g. the generated event digits: two processes that write the same
            return [1, st.st_size, _file_digest(path)]  # content at once share one cache entry
        return [1, st.st_size, st.st_mtime_ns]
    if not path.is_dir():
        return None
    entries, seen = [], set()
    for root, dirs, files in os.walk(path, followlinks=True):  # a linked folder's files are the data too
        real = os.path.realpath(root)
        if real in seen:  # (a link back up the tree: walked once)
            dirs[:] = []
            continue
        seen.add(real)
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            try:
                st = os.stat(full)
            except OSError:
                continue
            entries.append((os.path.relpath(full, path), st.st_size, st.st_mtime_ns))
    if not entries:  # an empty folder says nothing about the data: its fingerprint would never change
        return None
    digest = hashlib.sha1("\n".join(f"{n}\t{b}\t{t}" for n, b, t in entries).encode("utf-8", "surrogateescape"))
    return [len(entries), sum(e[1] for e in entries), max((e[2] for e in entries), default=0), digest.hexdigest()]


def frame_cache_key(cfg: DataConfig, split: str, fingerprint: list | None = None) -> dict:
    """The frame-cache key of a whole split: dataset, split, sensor, time bins, and the source files' fingerprint
    (``fingerprint``, when the caller has it already: both splits share the source). Its ``"fingerprint"`` is None
    where the source cannot be fingerprinted: such a key identifies no data, and :func:`load_frames` does not
    cache under it."""
    info = get_dataset(cfg.dataset)
    location = info.location(info.root(cfg.root))
    return {"dataset": info.name, "split": split, "sensor_size": list(info.sensor_size),
            "n_time_bins": cfg.time_steps, "source": str(location),
            "fingerprint": source_fingerprint(location) if fingerprint is None else fingerprint}


def load_frames(cfg: DataConfig, split: str, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``[N, T, P, H, W]`` and labels of one split, from the frame cache (built on first use).

    From the cache they are memory-mapped (:class:`~neurosim.data.frames.MappedArray`: shared with the other
    processes that read the split, pages read as used, writable but private to this process; read into memory
    where the system refuses the mapping); a subset or uncached frames are arrays in memory.

    With ``train_subset``/``test_subset`` only the first N samples are converted, unless the whole split is
    already cached (then it is sliced). A dataset whose location cannot be fingerprinted is converted every time,
    with a warning (see the module docstring).
    """
    return _load_frames(cfg, split, progress)[:2]


def _warn_uncached(info: DatasetInfo, location: Path) -> None:
    if store_failed(location):  # a generated dataset whose file the cache folder could not take (store said why)
        warnings.warn(
            f"dataset {info.name!r}: its generated file {location} could not be stored (see the warning before), so "
            "its frames cannot be cached either: both are made again on every run until the cache folder can be "
            "written", RuntimeWarning, stacklevel=caller_stacklevel())
        return
    warnings.warn(
        f"dataset {info.name!r}: its location {location} does not exist or holds no files, so the frame cache "
        "cannot tell when its recordings change; its frames are converted on every run instead of cached. To cache "
        "them, register the dataset with a location(root) that returns the file or folder its loader reads",
        UserWarning, stacklevel=caller_stacklevel())


def _load_frames(cfg: DataConfig, split: str, progress: bool, fingerprint: list | None = None, warn: bool = True):
    """:func:`load_frames`, and the source's fingerprint (given by the caller, or read here). ``warn=False``: the
    caller has already said that the source cannot be fingerprinted (the other split of the same source)."""
    info = get_dataset(cfg.dataset)
    location = info.location(info.root(cfg.root))
    loaded = None
    if not location.exists():  # generate a bundled dataset (or raise a clear not-on-disk error) before keying
        loaded = info.load(split, cfg.root, progress=progress)
    key = frame_cache_key(cfg, split, fingerprint if loaded is None else None)
    subset = cfg.train_subset if split == "train" else cfg.test_subset
    cache = key["fingerprint"] is not None  # a key without one would serve old frames after the data changed
    if subset is not None and not (cache and frame_cache_path(key).is_file()):
        key = {**key, "first": int(subset)}

    def dataset():
        ds = loaded if loaded is not None else info.load(split, cfg.root, progress=progress)
        if "first" in key:  # a full-split key (even one whose file turned out unreadable) gets the whole split
            ds = _First(ds, subset)
        return ds

    desc = f"{info.name} {split} frames"
    if cache:  # written to the cache as they are converted: never the whole split in memory; of a split already
        # cached, a subset maps its own samples' bytes only (not the whole file's address space, nor a copy)
        frames, labels = cached_event_frames(key, dataset, info.sensor_size, cfg.time_steps, progress, desc,
                                             rows=subset)
    else:  # (first: a dataset that is not there at all raises its own clear error)
        frames, labels = events_to_frames(dataset(), info.sensor_size, cfg.time_steps, progress, desc)
        if warn:
            _warn_uncached(info, location)
    if subset is not None and subset < len(frames):  # (frames converted in memory, not mapped: the whole split's)
        frames, labels = np.array(frames[:subset]), np.array(labels[:subset])  # plain copies of the subset
    return frames, labels, key["fingerprint"]


def check_augment(cfg: DataConfig, info: DatasetInfo | None = None) -> None:
    """Refuse an augmentation that makes no sense for the dataset's data, whatever shape its frames have: one that
    moves pixels (``shift``, ``flip``, ``cutout``) on an audio dataset (``DatasetInfo.audio``: SHD, SSC), whose
    frames ``[N, T, 1, 1, channels]`` hold the channels of a cochlea model in one row, not an image.
    :func:`make_loaders` and ``neurosim train`` (before anything is loaded) both ask it. ``info``: the dataset's,
    when already looked up.

    Raises:
        ConfigError: naming the setting and the dataset.
    """
    info = get_dataset(cfg.dataset) if info is None else info
    spatial = [name for name in ("shift", "flip", "cutout") if getattr(cfg.augment, name)]
    if info.audio and spatial:
        width, height, polarities = info.sensor_size
        raise ConfigError(f"data.augment.{spatial[0]} moves pixels, but dataset {info.name!r} is audio: its frames "
                          f"[N, T, {polarities}, {height}, {width}] hold {width} channels of a cochlea model in one "
                          "row, not an image; turn it off for this dataset")


def make_loaders(cfg: DataConfig, seed: int = 0, device: str | torch.device = "cpu",
                 progress: bool = True) -> DataBundle:
    """Loaders for a config's dataset: shuffled (seeded per epoch) training batches and ordered test batches, both of
    ``cfg.batch_size`` samples (:func:`eval_loader`; a final training batch of a single sample is dropped). Frames
    come from the frame cache, except for a dataset whose location cannot be fingerprinted: that is converted anew,
    with one warning naming it.

    Raises:
        ConfigError: ``cfg.augment`` asks for what the dataset's data cannot take (:func:`check_augment`, before any
            frame is loaded, and what its frames cannot: a shift off the sensor, say), naming the setting.
    """
    info = get_dataset(cfg.dataset)
    check_augment(cfg, info)
    train_frames, train_labels, fingerprint = _load_frames(cfg, "train", progress)
    test_frames, test_labels, _ = _load_frames(cfg, "test", progress, fingerprint,  # the same source files
                                               warn=fingerprint is not None)  # (said once, by the train split)
    # a last training batch of one sample is dropped: BatchNorm cannot normalise one value per channel (SLTT's
    # per-step statistics, or T = 1), and one sample's gradient step is mostly noise
    train_rows, val = None, None
    if cfg.val_split:
        try:
            train_rows, val_rows = split_validation(train_labels, cfg.val_split,
                                                    f"the training split of dataset {info.name!r}")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        val = eval_loader(cfg, train_frames, train_labels, device, rows=val_rows)
        classes = len(np.unique(train_labels))
        if len(val_rows) < classes:
            warnings.warn(f"data.val_split = {cfg.val_split} holds out {len(val_rows)} of {len(train_labels)} training "
                          f"samples, fewer than its {classes} classes: validation accuracy (best.pt, train.patience) "
                          "says little on so few; raise data.val_split (or data.train_subset)", UserWarning,
                          stacklevel=2)
    n_train = len(train_labels) if train_rows is None else len(train_rows)
    single_left = n_train % cfg.batch_size == 1 and n_train > 1
    try:
        train = FrameLoader(train_frames, train_labels, cfg.batch_size, shuffle=True, seed=seed,
                            drop_last=single_left, device=device, augment=cfg.augment, indices=train_rows)
    except AugmentError as exc:  # an augmentation these frames cannot take: name the dataset and the config key
        raise ConfigError(f"data.{exc} (dataset {info.name!r})") from None
    test = eval_loader(cfg, test_frames, test_labels, device)
    _warn_channels_one_split_lacks(info, train_frames, test_frames)
    return DataBundle(info, train, test, train_frames, test_frames, fingerprint, val)


#: the share of one split's spikes on channels where the other split has none above which a dataset one row high
#: warns: ~85 % where one split was made with 64 channels and the other with 700, a few % where both are alike
CHANNEL_MISMATCH_SHARE = 0.2
_CHANNEL_CHECK_SAMPLES = 256  # samples per split looked at, spread over it (the folders' splits are class-sorted)


def _channel_counts(frames: np.ndarray) -> np.ndarray:
    step = max(1, -(-len(frames) // _CHANNEL_CHECK_SAMPLES))
    return np.asarray(frames[::step]).sum(axis=tuple(range(frames.ndim - 1)), dtype=np.int64)


def _warn_channels_one_split_lacks(info: DatasetInfo, train_frames: np.ndarray, test_frames: np.ndarray) -> None:
    """Warn where a dataset one row high (audio: SHD, SSC, a folder of AudioToSpikes' events) has more than
    :data:`CHANNEL_MISMATCH_SHARE` of one split's spikes on channels where the other split has none: the SHD format
    does not record its channels, and splits converted with different front ends (``n_channels``) trained and
    tested silently, at chance."""
    if info.sensor_size[1] != 1 or not len(train_frames) or not len(test_frames):
        return
    counts = {"training": _channel_counts(train_frames), "test": _channel_counts(test_frames)}
    for split, other in (("test", "training"), ("training", "test")):
        lone = (counts[other] == 0) & (counts[split] > 0)
        total = int(counts[split].sum())
        share = int(counts[split][lone].sum()) / total if total else 0.0
        if share > CHANNEL_MISMATCH_SHARE:
            used = {name: np.flatnonzero(c) for name, c in counts.items()}
            effect = "never learns them" if split == "test" else "is never tested on them"
            warnings.warn(
                f"dataset {info.name!r}: {share:.0%} of the {split} split's spikes are on channels where the {other} "
                f"split has none (channels with spikes: training {_span(used['training'])}, test "
                f"{_span(used['test'])}, of {info.sensor_size[0]}), so the model {effect}. Were the splits converted "
                "with different front ends (AudioToSpikes' n_channels, f_max)? Convert both with the same one",
                UserWarning, stacklevel=3)
            return


def _span(channels: np.ndarray) -> str:
    return f"{channels[0]}–{channels[-1]}" if len(channels) else "none"


def recording_spans_us(info: DatasetInfo, root: str | Path | None = None, split: str = "train",
                       samples: int = 64) -> np.ndarray:
    """How long recordings of a split last: ``t[-1] - t[0]`` (µs, the span ``ToFrame(n_time_bins=T)`` cuts into
    ``T`` steps) of up to ``samples`` of them, spread over the split (the folders' splits are class-sorted). A
    recording of fewer than two events spans nothing and is left out. Reads those recordings only, not the frames.

    Raises:
        DatasetNotFoundError, EventFileError, ...: as :meth:`DatasetInfo.load` and its samples raise them.
    """
    dataset = info.load(split, root, progress=False)
    n = len(dataset)
    rows = np.unique(np.linspace(0, n - 1, min(n, samples)).round().astype(np.int64)) if n else []
    spans = []
    for i in rows:
        t = np.asarray(dataset[int(i)][0]["t"])
        if len(t) > 1:
            spans.append(float(t.max()) - float(t.min()))
    return np.asarray(spans, dtype=np.float64)


def split_validation(labels, fraction: float, what: str = "the training split") -> tuple[np.ndarray, np.ndarray]:
    """``(train_rows, val_rows)``: a stratified hold-out of ``fraction`` of ``labels``' samples, sorted row numbers.

    ``round(fraction × N)`` samples (at least one) are held out, shared among the classes in proportion to their
    counts (largest remainders; as scikit-learn's stratified split), each class keeping one sample or more for
    training (fewer are held out where that leaves too few). Which samples: a fixed hash of the row number
    (SplitMix64 with :data:`VAL_SPLIT_SEED`), so the split is the same for every run seed and every numpy version (a
    resumed run validates on the same samples).

    Raises:
        ValueError: ``fraction`` is not in (0, 1), or no sample can be held out (``what`` names the split).
    """
    if not 0 < fraction < 1:
        raise ValueError(f"data.val_split must be in (0, 1), got {fraction!r}")
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    share = fraction * counts
    held = np.floor(share).astype(np.int64)  # (fraction < 1: at most counts - 1)
    total = min(max(1, int(np.floor(fraction * len(labels) + 0.5))), int((counts - 1).sum()))
    if total < 1:
        raise ValueError(f"data.val_split: {what} has {len(labels)} sample(s), one per class at most, all needed "
                         "for training; none can be held out for validation")
    for c in np.argsort(-(share - np.floor(share)), kind="stable"):  # the largest remainders get one more
        if held.sum() >= total:
            break
        if held[c] < counts[c] - 1:
            held[c] += 1
    rank = mix(np.arange(len(labels), dtype=np.uint64) ^ np.uint64(VAL_SPLIT_SEED))
    val = np.sort(np.concatenate([rows[np.argsort(rank[rows], kind="stable")[:k]]
                                  for rows, k in ((np.flatnonzero(labels == c), k) for c, k in zip(classes, held))]))
    return np.setdiff1d(np.arange(len(labels)), val), val


def eval_loader(cfg: DataConfig, frames, labels, device: str | torch.device = "cpu", rows=None) -> FrameLoader:
    """The ordered evaluation loader over ``frames``/``labels`` (their ``rows`` only, where given), in batches of
    ``cfg.batch_size``: a batch that fits training fits evaluation, which keeps no graph (a fixed larger batch ran out
    of memory at the first evaluation after ``data.batch_size`` was lowered to fit). Accuracy does not depend on it:
    each sample is evaluated on its own (the mean loss only to float rounding, summed per batch)."""
    return FrameLoader(frames, labels, cfg.batch_size, shuffle=False, device=device, indices=rows)

"""Write small datasets in the exact on-disk layout and file formats tonic 1.7.0 reads, for offline tests.

Every writer puts files where ``tonic.datasets.<Class>(save_to=root)`` looks for them — ``root/<ClassName>/…`` — and
enough of them to pass tonic's own "is it there?" check, which is (read from tonic 1.7.0's sources)::

    Dataset._check_exists() = isfile(root/<ClassName>/<archive>)            # md5 is checked only when downloading
                              and len(glob(root/<ClassName>/<folder>/**/*<suffix>)) >= N

    NMNIST       train.zip / test.zip,  Train/ | Test/ <digit>/*.bin                 N = 10000 per split
    DVSGesture   ibmGestureTrain.tar.gz / ibmGestureTest.tar.gz, <same name>/user<NN>_<lighting>/<label>.npy   N = 100
    SHD, SSC     shd_train.h5.zip (+ shd_train.h5), …                                N = 1 (.h5)
    POKERDVS     pips_train.tar.gz / pips_test.tar.gz, pips_train/<cl|he|di|sp>/*.npy N = 20
    NCALTECH101  N-Caltech101-archive.zip, Caltech101/<class>/*.bin                  N = 8709
    CIFAR10DVS   CIFAR10DVS.zip, <class>/*.aedat4                                    N = 1000

so the archive is written as an empty placeholder and the data files are real files in the real format. With those
in place tonic's constructor never downloads. The event content is synthetic but learnable: in each class a blob
crosses the sensor in its own direction (audio: sweeps up from its own band of channels), so a tiny model can beat
chance in a few steps (:func:`class_events`).

The two binary encoders are written here from the format descriptions, not taken from any reader:

* N-MNIST / N-Caltech101 ``.bin`` — 5 bytes per event: ``b0 = x``, ``b1 = y``, ``b2 = p << 7 | t[22:16]``,
  ``b3 = t[15:8]``, ``b4 = t[7:0]`` (t in µs); a record with ``y = 240`` is a timestamp-overflow marker to which
  tonic responds by adding 2**13 µs to every later record. :func:`encode_nmnist_bin` inserts markers so that any
  non-decreasing t up to a few hours round-trips.
* SHD / SSC ``.h5`` — ``spikes/times`` (seconds, one variable-length array per sample), ``spikes/units`` (channel
  per spike), ``labels``, ``extra/keys`` (class names), ``extra/speaker``. :func:`write_hsd_h5`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = [
    "DATASET_WRITERS", "TONIC_MIN_FILES", "band_events", "class_events", "encode_nmnist_bin", "forbid_downloads",
    "write_cifar10dvs", "write_dataset", "write_dvsgesture", "write_hsd_h5", "write_ncaltech101", "write_nmnist",
    "write_pokerdvs", "write_shd", "write_ssc",
]

TONIC_MIN_FILES = {"NMNIST": 10_000, "DVSGesture": 100, "SHD": 1, "SSC": 1, "POKERDVS": 20, "NCALTECH101": 8709,
                   "CIFAR10DVS": 1000}
"""Data files tonic 1.7.0's ``_check_exists`` wants to see per split folder before it believes a dataset is there."""

_OVERFLOW_Y = 240
_OVERFLOW_US = 2 ** 13
_T_BITS = 23


# ------------------------------------------------------------------------------------------------ synthetic events


def class_events(rng: np.random.Generator, labels, n_classes: int, n_events: int, width: int, height: int,
                 duration_us: int) -> dict[str, np.ndarray]:
    """Events of a blob that moves in a class-specific direction, one row per label: arrays ``[len(labels), n]``.

    2-D sensors: the blob (σ ≈ a tenth of the sensor) crosses the sensor centre along the direction
    ``2π·label / n_classes``. 1-D sensors (``height == 1``, audio): it sweeps up a quarter of the channels, starting
    in the class's own band. t is sorted in ``[0, duration_us)``; p is 1 on the blob's leading half, 0 behind it
    (an edge moving over a DVS); everything is clipped to the sensor. Returns int64 ``x, y, t, p``.
    """
    labels = np.asarray(labels, dtype=np.int64)[:, None]
    shape = (len(labels), n_events)
    t = np.sort(rng.integers(0, duration_us, shape), axis=1)
    phase = t / duration_us - 0.5  # -0.5 .. 0.5 over the recording
    if height == 1:
        lo = (labels * width) // n_classes
        centre = lo + (0.25 * width) * (phase + 0.5)
        dx = rng.normal(0.0, max(1.0, width / (4 * n_classes)), shape)
        x = np.clip(np.rint(centre + dx), 0, width - 1)
        return {"x": x.astype(np.int64), "y": np.zeros(shape, np.int64), "t": t, "p": (dx > 0).astype(np.int64)}
    angle = 2 * np.pi * labels / n_classes
    ux, uy = np.cos(angle), np.sin(angle)
    sigma = max(1.0, 0.1 * min(width, height))
    dx, dy = rng.normal(0.0, sigma, shape), rng.normal(0.0, sigma, shape)
    x = np.clip(np.rint((width - 1) / 2 + 0.6 * width * phase * ux + dx), 0, width - 1)
    y = np.clip(np.rint((height - 1) / 2 + 0.6 * height * phase * uy + dy), 0, height - 1)
    return {"x": x.astype(np.int64), "y": y.astype(np.int64), "t": t,
            "p": (dx * ux + dy * uy > 0).astype(np.int64)}


def band_events(rng: np.random.Generator, label: int, n_classes: int, n_events: int, width: int, height: int,
                duration_us: int) -> dict[str, np.ndarray]:
    """:func:`class_events` for one sample: 1-D arrays ``x, y, t, p``."""
    return {k: v[0] for k, v in class_events(rng, [label], n_classes, n_events, width, height, duration_us).items()}


def _placeholder(path: Path) -> None:
    """The archive tonic only checks with ``isfile`` (md5 is checked when it downloads, which tests never do)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


# ------------------------------------------------------------------------------------------------ N-MNIST .bin


def _pack(x, y, t, p) -> np.ndarray:
    """Records ``[..., 5]`` uint8 of events whose t fits in 23 bits (no markers needed)."""
    return np.stack([x, y, (p << 7) | ((t >> 16) & 0x7F), (t >> 8) & 0xFF, t & 0xFF], axis=-1).astype(np.uint8)


def encode_nmnist_bin(x: Sequence[int], y: Sequence[int], t: Sequence[int], p: Sequence[int]) -> bytes:
    """Encode events as N-MNIST 40-bit records (t in µs, non-decreasing), with overflow markers where t ≥ 2**23.

    tonic decodes a file as ``t_i = raw_t_i + 2**13 · (number of markers at or before record i)``; an event at t gets
    ``k = max(0, ceil((t − (2**23 − 1)) / 2**13))`` markers before it, so ``raw_t = t − k·2**13`` fits in 23 bits.

    Raises:
        ValueError: coordinates outside 0..255, y = 240 (reserved for markers), p not 0/1, t negative or decreasing.
    """
    x, y, t, p = (np.asarray(a, dtype=np.int64) for a in (x, y, t, p))
    if not (len(x) == len(y) == len(t) == len(p)):
        raise ValueError(f"x, y, t, p lengths differ: {len(x)}, {len(y)}, {len(t)}, {len(p)}")
    if len(x) and (x.min() < 0 or x.max() > 255 or y.min() < 0 or y.max() > 255):
        raise ValueError("x and y must be in 0..255 (one byte each)")
    if np.any(y == _OVERFLOW_Y):
        raise ValueError(f"y = {_OVERFLOW_Y} marks a timestamp overflow in this format; events cannot use it")
    if len(p) and not np.isin(p, (0, 1)).all():
        raise ValueError("p must be 0 or 1")
    if len(t) and (t.min() < 0 or np.any(np.diff(t) < 0)):
        raise ValueError("t must be non-negative and non-decreasing (µs)")
    t_max = (1 << _T_BITS) - 1
    k = np.maximum(0, -((t_max - t) // _OVERFLOW_US))  # ceil((t - t_max) / 2**13), at least 0
    n_markers = int(k[-1]) if len(k) else 0
    records = np.zeros((len(x) + n_markers, 5), dtype=np.uint8)
    records[:, 1] = _OVERFLOW_Y  # every slot not taken by an event below is a marker
    # event i goes to record i + k_i (k_i markers precede it)
    records[np.arange(len(x)) + k] = _pack(x, y, t - k * _OVERFLOW_US, p)
    return records.tobytes()


def _write_bin_classes(folder: Path, classes: Sequence[str], n_files: int, width: int, height: int,
                       events_per_file: int, duration_us: int, seed: int) -> None:
    # all files at once (tens of thousands of small files): the same bytes encode_nmnist_bin gives for t < 2**23
    if duration_us >= 1 << _T_BITS:
        raise ValueError("duration_us must stay below 2**23 µs here (no overflow markers)")
    rng = np.random.default_rng(seed)
    labels = np.arange(n_files) % len(classes)
    ev = class_events(rng, labels, len(classes), events_per_file, width, height, duration_us)
    x, y, t, p = ev["x"], ev["y"], ev["t"], ev["p"]
    records = _pack(x, y, t, p)
    dirs = [str(folder / c) for c in classes]
    for d in dirs:
        Path(d).mkdir(parents=True, exist_ok=True)
    for i in range(n_files):
        with open(f"{dirs[labels[i]]}/{i:05d}.bin", "wb") as f:
            f.write(records[i].tobytes())


def write_nmnist(root: str | Path, split: str = "train", n_files: int = TONIC_MIN_FILES["NMNIST"],
                 events_per_file: int = 24, seed: int = 0) -> Path:
    """``root/NMNIST/{Train,Test}/<digit>/NNNNN.bin`` + the ``{train,test}.zip`` placeholder; returns the split folder.

    Files cycle through the digits, so every class gets ``n_files / 10`` samples (tonic labels a file by the last
    character of its folder).
    """
    loc = Path(root) / "NMNIST"
    folder = loc / ("Train" if split == "train" else "Test")
    _placeholder(loc / f"{split}.zip")
    _write_bin_classes(folder, [str(d) for d in range(10)], n_files, 34, 34, events_per_file, 300_000,
                       seed + (split == "test"))
    return folder


NCALTECH101_CLASSES = (
    "BACKGROUND_Google", "Faces_easy", "Leopards", "Motorbikes", "accordion", "airplanes", "anchor", "ant", "barrel",
    "bass", "beaver", "binocular", "bonsai", "brain", "brontosaurus", "buddha", "butterfly", "camera", "cannon",
    "car_side", "ceiling_fan", "cellphone", "chair", "chandelier", "cougar_body", "cougar_face", "crab", "crayfish",
    "crocodile", "crocodile_head", "cup", "dalmatian", "dollar_bill", "dolphin", "dragonfly", "electric_guitar",
    "elephant", "emu", "euphonium", "ewer", "ferry", "flamingo", "flamingo_head", "garfield", "gerenuk", "gramophone",
    "grand_piano", "hawksbill", "headphone", "hedgehog", "helicopter", "ibis", "inline_skate", "joshua_tree",
    "kangaroo", "ketch", "lamp", "laptop", "llama", "lobster", "lotus", "mandolin", "mayfly", "menorah", "metronome",
    "minaret", "nautilus", "octopus", "okapi", "pagoda", "panda", "pigeon", "pizza", "platypus", "pyramid", "revolver",
    "rhino", "rooster", "saxophone", "schooner", "scissors", "scorpion", "sea_horse", "snoopy", "soccer_ball",
    "stapler", "starfish", "stegosaurus", "stop_sign", "strawberry", "sunflower", "tick", "trilobite", "umbrella",
    "watch", "water_lilly", "wheelchair", "wild_cat", "windsor_chair", "wrench", "yin_yang",
)
"""The 101 folders of N-Caltech101's ``Caltech101/`` (Caltech101's categories without ``Faces``, plus background)."""


def write_ncaltech101(root: str | Path, n_files: int = TONIC_MIN_FILES["NCALTECH101"], events_per_file: int = 16,
                      n_classes: int = len(NCALTECH101_CLASSES), seed: int = 0) -> Path:
    """``root/NCALTECH101/Caltech101/<class>/NNNNN.bin`` + the ``N-Caltech101-archive.zip`` placeholder.

    Recordings are up to 240×180 pixels (N-Caltech101's images were scaled to fit that box), in the N-MNIST format.
    """
    loc = Path(root) / "NCALTECH101"
    _placeholder(loc / "N-Caltech101-archive.zip")
    folder = loc / "Caltech101"
    _write_bin_classes(folder, NCALTECH101_CLASSES[:n_classes], n_files, 240, 180, events_per_file, 300_000, seed)
    return folder


# ------------------------------------------------------------------------------------------------ .npy datasets


DVSGESTURE_LIGHTING = ("fluorescent", "fluorescent_led", "lab", "led", "natural")


def write_dvsgesture(root: str | Path, split: str = "train", n_users: int = 10, events_per_file: int = 64,
                     seed: int = 0) -> Path:
    """``root/DVSGesture/ibmGesture{Train,Test}/user<NN>_<lighting>/<label>.npy`` + the ``.tar.gz`` placeholder.

    Each file is tonic's preprocessed form: an ``(N, 4)`` integer array with columns x, y, p, t and t in **ms**
    (tonic multiplies it by 1000). One file per gesture (11) per user folder: ``n_users = 10`` gives 110 ≥ 100.
    """
    name = "ibmGestureTrain" if split == "train" else "ibmGestureTest"
    loc = Path(root) / "DVSGesture"
    _placeholder(loc / f"{name}.tar.gz")
    rng = np.random.default_rng(seed + (split == "test"))
    first_user = 1 if split == "train" else 24  # the real split: users 1–23 train, 24–29 test
    for u in range(n_users):
        d = loc / name / f"user{first_user + u:02d}_{DVSGESTURE_LIGHTING[u % len(DVSGESTURE_LIGHTING)]}"
        d.mkdir(parents=True, exist_ok=True)
        for label in range(11):
            ev = band_events(rng, label, 11, events_per_file, 128, 128, 1_500)  # 1.5 s in ms
            arr = np.stack([ev["x"], ev["y"], ev["p"], ev["t"]], axis=1).astype(np.int32)
            np.save(d / f"{label}.npy", arr)
    return loc / name


POKERDVS_CLASSES = ("cl", "he", "di", "sp")


def write_pokerdvs(root: str | Path, split: str = "train", per_class: int = 5, events_per_file: int = 48,
                   seed: int = 0) -> Path:
    """``root/POKERDVS/pips_{train,test}/<cl|he|di|sp>/NN.npy`` + the ``.tar.gz`` placeholder.

    Files are ``(N, 4)`` integer arrays with columns t (µs), x, y, p on the 35×35 sensor; ``per_class = 5`` gives
    20 files, tonic's minimum.
    """
    name = f"pips_{split}"
    loc = Path(root) / "POKERDVS"
    _placeholder(loc / f"{name}.tar.gz")
    rng = np.random.default_rng(seed + (split == "test"))
    for label, cls in enumerate(POKERDVS_CLASSES):
        d = loc / name / cls
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            ev = band_events(rng, label, 4, events_per_file, 35, 35, 20_000)
            np.save(d / f"{cls}{i:02d}.npy", np.stack([ev["t"], ev["x"], ev["y"], ev["p"]], axis=1).astype(np.int64))
    return loc / name


# ------------------------------------------------------------------------------------------------ SHD / SSC .h5


def write_hsd_h5(path: str | Path, times_s: Sequence[np.ndarray], units: Sequence[np.ndarray],
                 labels: Sequence[int], keys: Sequence[str], speakers: Sequence[int] | None = None) -> Path:
    """Write one SHD/SSC-format HDF5 file.

    Layout (Cramer et al. 2020): ``spikes/times`` — variable-length float arrays, spike times in seconds;
    ``spikes/units`` — variable-length uint16 arrays, the channel (0..699) of each spike; ``labels`` — uint16 per
    sample; ``extra/keys`` — class names as bytes; ``extra/speaker`` — uint16 speaker id per sample.
    """
    import h5py

    if not (len(times_s) == len(units) == len(labels)):
        raise ValueError(f"times, units and labels lengths differ: {len(times_s)}, {len(units)}, {len(labels)}")
    speakers = np.zeros(len(labels), dtype=np.uint16) if speakers is None else np.asarray(speakers, np.uint16)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        t_ds = f.create_dataset("spikes/times", (len(labels),), dtype=h5py.vlen_dtype(np.float32))
        u_ds = f.create_dataset("spikes/units", (len(labels),), dtype=h5py.vlen_dtype(np.uint16))
        for i, (ts, us) in enumerate(zip(times_s, units)):
            if len(ts) != len(us):
                raise ValueError(f"sample {i}: {len(ts)} spike times but {len(us)} units")
            t_ds[i] = np.asarray(ts, dtype=np.float32)
            u_ds[i] = np.asarray(us, dtype=np.uint16)
        f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint16))
        f.create_dataset("extra/keys", data=np.array([k.encode() for k in keys]))
        f.create_dataset("extra/speaker", data=speakers)
    return path


def _write_hsd(root: str | Path, cls: str, prefix: str, split: str, n_classes: int, n_samples: int,
               spikes_per_sample: int, seed: int) -> Path:
    loc = Path(root) / cls
    _placeholder(loc / f"{prefix}_{split}.h5.zip")
    rng = np.random.default_rng(seed + {"train": 0, "test": 1, "valid": 2}[split])
    times, units, labels = [], [], []
    for i in range(n_samples):
        label = i % n_classes
        ev = band_events(rng, label, n_classes, spikes_per_sample, 700, 1, 800_000)
        times.append(ev["t"] / 1e6)
        units.append(ev["x"])
        labels.append(label)
    keys = [f"class-{c}" for c in range(n_classes)]
    return write_hsd_h5(loc / f"{prefix}_{split}.h5", times, units, labels, keys, rng.integers(0, 12, n_samples))


def write_shd(root: str | Path, split: str = "train", n_samples: int = 40, spikes_per_sample: int = 80,
              seed: int = 0) -> Path:
    """``root/SHD/shd_{train,test}.h5`` (20 classes, 700 channels) + the ``.h5.zip`` placeholder."""
    return _write_hsd(root, "SHD", "shd", split, 20, n_samples, spikes_per_sample, seed)


def write_ssc(root: str | Path, split: str = "train", n_samples: int = 70, spikes_per_sample: int = 80,
              seed: int = 0) -> Path:
    """``root/SSC/ssc_{train,test,valid}.h5`` (35 classes, 700 channels) + the ``.h5.zip`` placeholder."""
    return _write_hsd(root, "SSC", "ssc", split, 35, n_samples, spikes_per_sample, seed)


# ------------------------------------------------------------------------------------------------ CIFAR10-DVS


CIFAR10DVS_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def write_cifar10dvs(root: str | Path, n_files: int = TONIC_MIN_FILES["CIFAR10DVS"],
                     source: str | Path | None = None) -> Path:
    """``root/CIFAR10DVS/<class>/NNNN.aedat4`` + the ``CIFAR10DVS.zip`` placeholder.

    There is no AEDAT4 encoder here (the format is flatbuffers + LZ4 packets, and the reader package ``aedat`` is
    not installed to check one against), so the files are symbolic links to ``source`` — a real AEDAT4 recording,
    e.g. ``../shared/fixtures/real/sample.aedat4`` — or, without a source, files holding only the AEDAT4 magic line:
    right for tonic's layout check and for testing what happens without a reader, not readable as events.
    """
    loc = Path(root) / "CIFAR10DVS"
    _placeholder(loc / "CIFAR10DVS.zip")
    for i in range(n_files):
        d = loc / CIFAR10DVS_CLASSES[i % 10]
        if i < 10:
            d.mkdir(parents=True, exist_ok=True)
        f = d / f"{i:04d}.aedat4"
        if source is not None:
            f.symlink_to(Path(source).resolve())
        else:
            f.write_bytes(b"#!AER-DAT4.0\r\n")
    return loc


# ------------------------------------------------------------------------------------------------ dispatch


def write_dataset(name: str, root: str | Path, **kwargs) -> Path:
    """Write both splits (or the single folder) of a registry dataset under ``root``; returns ``root``.

    ``kwargs`` go to the writer (e.g. ``n_files``, ``events_per_file``).
    """
    if name not in DATASET_WRITERS:
        raise ValueError(f"no fixture writer for {name!r}; known: {', '.join(sorted(DATASET_WRITERS))}")
    writer, splits = DATASET_WRITERS[name]
    if splits:
        for split in splits:
            writer(root, split=split, **kwargs)
    else:
        writer(root, **kwargs)
    return Path(root)


DATASET_WRITERS = {
    "nmnist": (write_nmnist, ("train", "test")),
    "dvsgesture": (write_dvsgesture, ("train", "test")),
    "shd": (write_shd, ("train", "test")),
    "ssc": (write_ssc, ("train", "test")),
    "pokerdvs": (write_pokerdvs, ("train", "test")),
    "ncaltech101": (write_ncaltech101, ()),
    "cifar10dvs": (write_cifar10dvs, ()),
}
"""Registry name → (writer, splits it is called for; empty: one call without a split)."""


# ------------------------------------------------------------------------------------------------ no network


class DownloadAttempted(RuntimeError):
    """Raised by :func:`forbid_downloads`' stand-ins: tonic (or anything) tried to fetch data in a test."""


def forbid_downloads(monkeypatch) -> None:
    """Make every way tonic could download raise :class:`DownloadAttempted`: its ``download`` methods, POKER-DVS's
    local copy, its URL helper, and any socket connection."""
    import socket

    import tonic.dataset
    import tonic.datasets
    import tonic.download_utils

    def refuse(*args, **kwargs):
        raise DownloadAttempted("a download was attempted in an offline test")

    monkeypatch.setattr(tonic.dataset.Dataset, "download", refuse)
    for cls in ("NMNIST", "DVSGesture", "SHD", "SSC", "NCALTECH101", "CIFAR10DVS"):
        if "download" in vars(getattr(tonic.datasets, cls)):
            monkeypatch.setattr(getattr(tonic.datasets, cls), "download", refuse)
    monkeypatch.setattr(tonic.datasets.POKERDVS, "_copy_and_extract_local_data", refuse)
    monkeypatch.setattr(tonic.download_utils, "download_url", refuse)
    monkeypatch.setattr(tonic.download_utils, "download_and_extract_archive", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)

"""The tonic datasets of the registry, offline: fixture files in tonic 1.7.0's exact layout and formats are read by
tonic's own classes (no network: every download path is made to raise), neurosim trains a step on them, the frame
cache makes later epochs event-free, and a missing optional reader gives a clear error."""

from __future__ import annotations

import importlib.util
import mmap
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import fixture_writers as fw
from neurosim.config import config_from_dict, load_config
from neurosim.data import DATASETS, DatasetNotFoundError, events_to_frames, get_dataset, make_loaders
from neurosim.data.pipeline import frame_cache_key
from neurosim.data.frames import frame_cache_path
from neurosim.data.loaders import FrameLoader
from neurosim.data.registry import MissingReaderError
from neurosim.data.tonic_datasets import SPECS, TonicSplit, layout_problems
from neurosim.nn import build_model
from neurosim.training import Trainer

TONIC_NAMES = ("nmnist", "dvsgesture", "shd", "ssc", "pokerdvs", "ncaltech101", "cifar10dvs")
READABLE = [n for n in TONIC_NAMES if n != "cifar10dvs"]  # CIFAR10-DVS needs the optional `aedat` reader
HAVE_AEDAT = importlib.util.find_spec("aedat") is not None
CONFIGS = Path(__file__).resolve().parents[2] / "neurosim" / "configs"


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No download can happen; a private frame cache; returns the dataset root."""
    fw.forbid_downloads(monkeypatch)
    monkeypatch.setenv("NEUROSIM_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "data"


def _tiny_run_config(info, frame_shape, root, time_steps, **data):
    """A run config with a tiny model for frames of ``frame_shape`` (P, H, W)."""
    p, h, w = frame_shape
    if h == 1:  # audio: [1, 1, 700]
        model = {"kind": "mlp", "input_shape": [p, h, w], "hidden": [16]}
    else:
        model = {"kind": "conv", "input_shape": [p, h, w], "channels": [4], "kernel_size": 3, "pool": 2,
                 "input_pool": 4 if h >= 64 else 1}
    return config_from_dict({
        "name": "tiny", "seed": 0,
        "data": {"dataset": info.name, "time_steps": time_steps, "batch_size": 4, "root": str(root), **data},
        "model": {**model, "num_classes": info.num_classes},
        "train": {"epochs": 1, "lr": 0.01, "device": "cpu"},
    })


# ------------------------------------------------------------------------------------------------ registry


def test_every_tonic_dataset_is_registered_with_what_a_user_needs(tmp_path):
    assert set(TONIC_NAMES) | {"event_digits"} <= set(DATASETS)
    expected_sensor = {"nmnist": (34, 34, 2), "dvsgesture": (128, 128, 2), "shd": (700, 1, 1), "ssc": (700, 1, 1),
                       "pokerdvs": (35, 35, 2), "ncaltech101": (120, 90, 2), "cifar10dvs": (64, 64, 2)}
    expected_classes = {"nmnist": 10, "dvsgesture": 11, "shd": 20, "ssc": 35, "pokerdvs": 4, "ncaltech101": 101,
                        "cifar10dvs": 10}
    for name in TONIC_NAMES:
        info = get_dataset(name)
        assert info.sensor_size == expected_sensor[name]
        assert info.num_classes == expected_classes[name]
        assert not info.classes or len(info.classes) == info.num_classes
        assert info.location(tmp_path) == tmp_path / SPECS[name].tonic_class  # tonic's save_to/<ClassName>
        assert info.root(None).name == "datasets"
        assert "GB" in info.size_note or "MB" in info.size_note
        assert info.default_time_steps > 0 and info.description
        if info.default_config:
            assert (CONFIGS / f"{info.default_config}.toml").is_file()
        else:
            assert info.extra["config_hint"].startswith("--config ")
        assert not info.on_disk(tmp_path)
    assert {get_dataset(n).default_config for n in ("nmnist", "dvsgesture", "shd")} == {"nmnist", "dvsgesture", "shd"}


@pytest.mark.parametrize("name", ["nmnist", "dvsgesture", "shd"])
def test_shipped_configs_fit_their_datasets(name):
    cfg = load_config(CONFIGS / f"{name}.toml")
    info = get_dataset(name)
    assert cfg.data.dataset == name and cfg.model.num_classes == info.num_classes
    w, h, p = info.sensor_size
    model = build_model(cfg.model, cfg.neuron)
    out, _ = model(torch.zeros(2, 3, p, h, w))  # frames [T, B, P, H, W] as the pipeline makes them
    assert out.shape == (2, 3, info.num_classes)


def test_default_frame_transform_gives_t_p_h_w(tmp_path):
    events = np.zeros(5, dtype=[("x", int), ("y", int), ("t", int), ("p", int)])
    events["t"] = np.arange(5) * 1000
    frames = get_dataset("pokerdvs").frame_transform(4)(events)
    assert frames.shape == (4, 2, 35, 35)
    assert get_dataset("nmnist").frame_transform()(events).shape[0] == 10


# ------------------------------------------------------------------------------------------------ tonic reads fixtures


@pytest.mark.parametrize("name", READABLE)
def test_tonic_reads_the_fixture_offline_and_neurosim_trains_a_step(name, offline):
    fw.write_dataset(name, offline)
    info = get_dataset(name)
    assert info.on_disk(offline), layout_problems(SPECS[name], offline)
    train, test = info.load("train", offline), info.load("test", offline)
    assert isinstance(train, TonicSplit) and len(train) > 0 and len(test) > 0
    tonic_cls = __import__("tonic").datasets.__dict__[SPECS[name].tonic_class]
    assert isinstance(train.dataset, tonic_cls)  # read by tonic's own class
    w, h, p = info.sensor_size
    for ds in (train, test):
        events, label = ds[0]
        assert isinstance(label, int) and 0 <= label < info.num_classes
        assert len(events) > 0 and {"x", "y", "t", "p"} <= set(events.dtype.names)
        assert events["x"].max() < w and events["y"].max() < h and events["p"].max() < p
        assert np.all(np.diff(events["t"]) >= 0)

    # one training step through the pipeline's pieces: events → frames → time-first batches → Trainer
    subset = [train[i] for i in range(8)]
    frames, labels = events_to_frames(subset, info.sensor_size, time_steps=3, progress=False)
    assert frames.shape == (8, 3, p, h, w) and frames.sum() > 0
    cfg = _tiny_run_config(info, frames.shape[2:], offline, 3)
    model = build_model(cfg.model, cfg.neuron)
    before = [q.detach().clone() for q in model.parameters()]
    trainer = Trainer(model, cfg, run_dir=None, progress=False)
    metrics = trainer.train_epoch(FrameLoader(frames, labels, batch_size=8))
    assert np.isfinite(metrics["train_loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def _tonic_accepts(name: str, root: Path, split: str) -> bool:
    """What tonic's constructor decides: read what is there (True) or download (False)."""
    from neurosim.data.tonic_datasets import _tonic_dataset

    try:
        _tonic_dataset(SPECS[name], split, root)
    except fw.DownloadAttempted:
        return False
    return True


@pytest.mark.parametrize("name", READABLE + ["cifar10dvs"])
def test_on_disk_agrees_with_tonics_own_check(name, offline):
    """neurosim's check says "on disk" exactly when tonic's constructor would read instead of download."""
    writer, splits = fw.DATASET_WRITERS[name]
    writer(offline, **({"split": "train"} if splits else {}))  # the train split is enough here
    spec = SPECS[name]
    layout = spec.splits["train"]
    loc = offline / spec.tonic_class
    assert not layout_problems(spec, offline, ("train",)) and _tonic_accepts(name, offline, "train")
    # one data file short of tonic's minimum (SHD/SSC: the split's own .h5 gone)
    files = sorted((loc / layout.folder).glob(f"**/*{layout.suffix}"))
    files = files[: len(files) - layout.min_files + 1] if not layout.data_file else [loc / layout.data_file]
    if layout.data_file:  # with the test split's .h5 in the same folder
        writer(offline, split="test")
    moved = [f.rename(f.with_name(f.name + ".away")) for f in files]
    problems = layout_problems(spec, offline, ("train",))
    if layout.data_file:
        assert problems == [f"{loc / layout.data_file} is missing"]
        with pytest.raises(OSError):  # tonic counts any .h5 in the folder, then fails to open the missing one
            _tonic_accepts(name, offline, "train")
    else:
        assert len(problems) == 1 and f"at least {layout.min_files}" in problems[0]
        assert not _tonic_accepts(name, offline, "train")
    for m, f in zip(moved, files):
        m.rename(f)
    assert not layout_problems(spec, offline, ("train",)) and _tonic_accepts(name, offline, "train")
    # the archive placeholder gone: tonic would download again
    (loc / layout.archive).unlink()
    assert not _tonic_accepts(name, offline, "train")
    placeholder = (f"next to {layout.data_file} and only checks that it exists: if {layout.data_file} is a file of "
                   f"your own, such as neurosim.data.audio.write_shd_h5 writes, create an empty one: touch "
                   f"{loc / layout.archive})" if layout.data_file else "file next to the extracted data)")
    assert layout_problems(spec, offline, ("train",)) == [f"{loc / layout.archive} is missing (tonic wants the archive "
                                                          + placeholder]
    assert not get_dataset(name).on_disk(offline)


def test_more_events_per_pixel_and_bin_than_int16_counts_is_an_error_not_a_wrapped_count():
    from neurosim.data import EVENT_DTYPE

    events = np.zeros(70_000, dtype=EVENT_DTYPE)  # all at pixel (0, 0), one time bin
    events["t"] = np.arange(70_000)
    with pytest.raises(ValueError, match=r"sample 0: ToFrame: frame 0 counts 39999 events at pixel x=0, y=0, p=0, "
                                         r"more than its int16 counts hold \(32767"):
        events_to_frames([(events[:40_000], 0)], (1, 1, 1), time_steps=1, progress=False)
    # 69,999 would wrap around to a positive 4,463 (a check for negative counts missed it)
    with pytest.raises(ValueError, match=r"sample 0: ToFrame: frame 0 counts 69999 events"):
        events_to_frames([(events, 0)], (1, 1, 1), time_steps=1, progress=False)
    frames, _ = events_to_frames([(events[:30_000], 0)], (1, 1, 1), time_steps=1, progress=False)
    assert frames.dtype == np.uint16 and int(frames.max()) >= 29_999  # counted, not wrapped


def test_not_on_disk_says_where_how_big_and_what_to_run_without_downloading(offline):
    info = get_dataset("nmnist")
    with pytest.raises(DatasetNotFoundError) as e:
        info.load("train", offline)
    msg = str(e.value)
    assert str(offline / "NMNIST") in msg and "about 1 GB" in msg and "neurosim datasets prepare nmnist" in msg
    # partly there: the message says what is missing
    fw.write_pokerdvs(offline, "train", per_class=2)
    with pytest.raises(DatasetNotFoundError, match=r"pips_train holds 8 \.npy files, tonic wants at least 20"):
        get_dataset("pokerdvs").load("train", offline)
    with pytest.raises(ValueError, match="split must be"):
        info.load("valid", offline)
    with pytest.raises(ValueError, match="unknown dataset 'nmist'; known datasets: .*nmnist"):
        get_dataset("nmist")


# ------------------------------------------------------------------------------------------------ dataset specifics


def test_audio_events_become_one_row_one_channel_frames(offline):
    fw.write_shd(offline, "train", n_samples=6)
    fw.write_shd(offline, "test", n_samples=3)
    ds = get_dataset("shd").load("train", offline)
    events, label = ds[2]
    raw, raw_label = ds.dataset[2]  # tonic's (t, x, p=1) in µs
    assert label == int(raw_label) == 2
    np.testing.assert_array_equal(events["t"], raw["t"])
    np.testing.assert_array_equal(events["x"], raw["x"])
    assert not events["y"].any() and not events["p"].any()
    frames = get_dataset("shd").frame_transform(10)(events)
    assert frames.shape == (10, 1, 1, 700)
    assert frames.sum() == np.sum(events["t"] < events["t"].max())  # tonic's bins leave out the last timestamp
    assert ds.classes[:2] == ["class-0", "class-1"]  # from the file's extra/keys



SHD_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
             "null", "eins", "zwei", "drei", "vier", "fuenf", "sechs", "sieben", "acht", "neun")


def test_a_run_on_shd_files_names_their_classes_in_its_checkpoint_and_evaluate(offline, tmp_path, capsys):
    """SHD's class names are in its files (extra/keys), not in the registry: the checkpoint kept none, so `neurosim
    evaluate` said "class 11" where tonic's SHD says "eins". A dataset without names keeps its numbers (test_cli)."""
    import re

    from neurosim.cli import main
    from neurosim.data.audio import write_shd_h5
    from neurosim.training import load_checkpoint
    from neurosim.training.checkpoint import save_checkpoint

    rng = np.random.default_rng(0)

    def samples(n):
        out = []
        for i in range(n):
            ev = np.zeros(30, dtype=[("t", np.int64), ("x", np.int64), ("p", np.int64)])
            ev["t"], ev["x"], ev["p"] = np.sort(rng.integers(0, 800_000, 30)), (i % 20) * 30 + np.arange(30), 1
            out.append(ev)
        return out

    for split, n in (("train", 40), ("test", 20)):
        write_shd_h5(offline / "SHD" / f"shd_{split}.h5", samples(n), [i % 20 for i in range(n)], keys=SHD_WORDS)
        (offline / "SHD" / f"shd_{split}.h5.zip").touch()
    assert get_dataset("shd").class_names(offline) == SHD_WORDS and get_dataset("shd").classes == ()
    assert get_dataset("ssc").class_names(offline) == ()  # no files: no names (and no error)
    assert main(["-q", "train", "--config", "shd", "--set", f"data.root={offline}", f"out_dir={tmp_path}",
                 "name=words", "model.hidden=[8]", "data.time_steps=4", "data.batch_size=20", "train.epochs=1"]) == 0
    ckpt = tmp_path / "words" / "checkpoint.pt"
    assert load_checkpoint(ckpt)["class_names"] == list(SHD_WORDS)
    capsys.readouterr()
    old = load_checkpoint(ckpt)
    for payload in (old, {k: v for k, v in old.items() if k != "class_names"}):  # saved, or (older) from the files
        save_checkpoint(ckpt, payload)
        assert main(["-q", "evaluate", "--checkpoint", str(ckpt)]) == 0
        rows = re.findall(r"^  (.+?) +[\d.]+ %  \((\d+) samples\)$", capsys.readouterr().out, re.MULTILINE)
        assert rows == [(word, "1") for word in SHD_WORDS]

def test_shd_files_of_ones_own_without_the_archive_are_never_downloaded_over(offline, monkeypatch):
    """write_shd_h5's own shd_train.h5, without tonic's shd_train.h5.zip: `prepare shd` used to download the published
    SHD, whose archive tonic extracts over the user's file; now it refuses, and every message says to touch the zip."""
    from neurosim.data import tonic_datasets as td
    from neurosim.data.audio import write_shd_h5

    ev = np.zeros(3, dtype=[("t", np.int64), ("x", np.int64), ("p", np.int64)])
    ev["t"], ev["x"], ev["p"] = [0, 500, 1000], [3, 4, 5], 1
    own = write_shd_h5(offline / "SHD" / "shd_train.h5", [ev, ev], [0, 1])
    write_shd_h5(offline / "SHD" / "shd_test.h5", [ev], [1])
    (offline / "SHD" / "shd_test.h5.zip").touch()
    before = own.read_bytes()
    zip_path = offline / "SHD" / "shd_train.h5.zip"
    spec = SPECS["shd"]
    assert any(f"create an empty one: touch {zip_path}" in p for p in layout_problems(spec, offline, ("train",)))
    with pytest.raises(DatasetNotFoundError, match=r"shd_train.h5.zip is missing \(tonic wants .* touch "):
        get_dataset("shd").load("train", offline)

    def network(*args, **kwargs):
        raise AssertionError("tonic was asked to download")

    monkeypatch.setattr(td, "_tonic_dataset", network)
    monkeypatch.delenv("NEUROSIM_OFFLINE")  # prepare's download path, as a user without the variable runs it
    with pytest.raises(DatasetNotFoundError, match=r"shd_train.h5 is there without shd_train.h5.zip, so downloading "
                                                    r"would replace it .*touch .*shd_train.h5.zip"):
        td.load_split(spec, "train", offline, download=True)
    assert own.read_bytes() == before and not zip_path.exists()
    monkeypatch.undo()  # tonic's own class again (the download methods stay forbidden: see `offline`)
    fw.forbid_downloads(monkeypatch)
    zip_path.touch()  # what the messages say
    events, label = get_dataset("shd").load("train", offline)[1]
    assert label == 1 and events["x"].tolist() == [3, 4, 5] and events["t"].tolist() == [0, 500, 1000]


@pytest.mark.parametrize("missing", ["extra/speaker", "extra/keys", "labels", "spikes/units"])
def test_an_shd_file_missing_a_dataset_is_named_not_a_bare_key_error(offline, missing):
    """tonic's SHD reads all five datasets (extra/* in its constructor) and failed with h5py's KeyError and a
    traceback; `datasets check shd` passed a file without extra/keys or extra/speaker."""
    import h5py

    from neurosim.data.readers import EventFileError
    from neurosim.data.tonic_datasets import check_dataset

    fw.write_shd(offline, "train", n_samples=4)
    fw.write_shd(offline, "test", n_samples=2)
    path = offline / "SHD" / "shd_train.h5"
    with h5py.File(path, "a") as f:
        del f[missing]
    with pytest.raises(EventFileError, match=rf"shd_train.h5: not an SHD/SSC file tonic reads: no dataset {missing} "
                                             r"\(tonic's SHD and SSC read .*write_shd_h5 writes them all"):
        get_dataset("shd").load("train", offline)
    report = check_dataset(SPECS["shd"], offline)
    assert [b.path.name for b in report.bad] == ["shd_train.h5"] and missing in report.bad[0].reason


def test_unsplit_datasets_get_a_fixed_per_class_split(offline):
    fw.write_ncaltech101(offline, n_classes=7)
    info = get_dataset("ncaltech101")
    train, test = info.load("train", offline), info.load("test", offline)
    assert len(train) + len(test) == 8709 and not set(train.indices) & set(test.indices)
    counts_train = np.bincount(train.targets, minlength=7)
    counts_test = np.bincount(test.targets, minlength=7)
    np.testing.assert_allclose(counts_test / (counts_train + counts_test), 0.1, atol=0.001)
    assert train.classes == sorted(fw.NCALTECH101_CLASSES[:7])
    assert info.class_names(offline) == tuple(train.classes)  # the class folders' names, without loading a split
    # labels follow the folder names, whatever order tonic listed the files in
    for ds in (train, test):
        for i in (0, len(ds) - 1):
            path = Path(ds.dataset.data[ds.indices[i]])
            assert ds.classes[ds[i][1]] == path.parent.name
    again = info.load("test", offline)
    np.testing.assert_array_equal(again.indices, test.indices)
    events, _ = train[0]
    assert events["x"].max() < 120 and events["y"].max() < 90


def test_sample_order_is_sorted_by_file_not_file_system_order(offline):
    fw.write_dataset("dvsgesture", offline)
    ds = get_dataset("dvsgesture").load("train", offline)
    paths = [str(ds.dataset.data[i]) for i in ds.indices]
    assert paths == sorted(paths) and len(paths) == 110
    assert [ds[i][1] for i in range(11)] == [int(Path(p).stem) for p in paths[:11]]


def test_cifar10dvs_without_its_reader_names_the_package(offline, monkeypatch):
    fw.write_cifar10dvs(offline)
    info = get_dataset("cifar10dvs")
    assert info.on_disk(offline)  # the layout check needs no reader
    monkeypatch.setitem(sys.modules, "aedat", None)  # as if not installed (it is a dev dependency)
    with pytest.raises(MissingReaderError, match=r"'aedat'.*pip install aedat") as e:
        info.load("train", offline)
    assert e.value.package == "aedat" and isinstance(e.value, ImportError)
    # asked to download, it refuses before fetching gigabytes it could not read (forbid_downloads would raise)
    with pytest.raises(MissingReaderError, match="aedat"):
        info.load("train", offline / "elsewhere", download=True)


@pytest.mark.skipif(not HAVE_AEDAT, reason="the optional 'aedat' package (CIFAR10-DVS's AEDAT4 reader) is not "
                                           "installed; test_cifar10dvs_without_its_reader_names_the_package covers it")
def test_cifar10dvs_reads_real_aedat4_files_through_tonic(offline, real_file):  # pragma: no cover - needs aedat
    fw.write_cifar10dvs(offline, source=real_file("sample.aedat4"))
    ds = get_dataset("cifar10dvs").load("train", offline)
    events, label = ds[0]
    assert len(events) > 0 and events["x"].max() < 64 and events["y"].max() < 64 and 0 <= label < 10
    # and neurosim trains a step on them (only the subset's files are converted)
    cfg = _tiny_run_config(get_dataset("cifar10dvs"), (2, 64, 64), offline, 4, train_subset=8, test_subset=4)
    data = make_loaders(cfg.data, progress=False)
    model = build_model(cfg.model, cfg.neuron)
    history = Trainer(model, cfg, run_dir=None, progress=False).fit(data.train, data.test, resume=False)
    assert data.train_frames.shape[1:] == (4, 2, 64, 64) and data.train_frames.sum() > 0
    assert np.isfinite(history[-1]["train_loss"])


# ------------------------------------------------------------------------------------------------ pipeline + cache


def _count_event_reads(monkeypatch) -> list[int]:
    calls = [0]
    original = TonicSplit.__getitem__

    def counting(self, i):
        calls[0] += 1
        return original(self, i)

    monkeypatch.setattr(TonicSplit, "__getitem__", counting)
    return calls


def test_shipped_shd_config_trains_end_to_end_and_later_epochs_read_no_events(offline, monkeypatch, tmp_path):
    from neurosim.runs import train_run

    fw.write_dataset("shd", offline)  # 40 train / 40 test samples
    reads = _count_event_reads(monkeypatch)
    cfg = load_config(CONFIGS / "shd.toml", [f'data.root="{offline}"', "data.time_steps=8", "data.batch_size=8",
                                             "train.epochs=2", f'out_dir="{tmp_path / "runs"}"', 'train.device="cpu"'])
    result = train_run(cfg, progress=False)
    assert len(result.history) == 2 and np.isfinite(result.history[-1]["train_loss"])
    # every sample read once, in epoch 1's conversion, and 32 training recordings once more before training, to tell
    # how long they last (runs.SPAN_SAMPLES: audio only); epoch 2 used cached frames only
    assert reads[0] == 80 + 32
    assert (result.run_dir / "report.md").is_file() and (result.run_dir / "frames.png").is_file()
    assert result.data.train_frames.shape == (40, 8, 1, 1, 700)
    # a new run (or process) with the same data and transform: a cache hit, no event processing at all
    data = make_loaders(cfg.data, progress=False)
    assert reads[0] == 80 + 32
    np.testing.assert_array_equal(data.train_frames, result.data.train_frames)


def test_shipped_dvsgesture_config_trains_a_step(offline, tmp_path):
    from neurosim.runs import train_run

    fw.write_dataset("dvsgesture", offline, n_users=10, events_per_file=32)
    cfg = load_config(CONFIGS / "dvsgesture.toml", [f'data.root="{offline}"', "data.time_steps=2",
                                                   "data.train_subset=8", "data.test_subset=8", "data.batch_size=8",
                                                   "train.epochs=1", f'out_dir="{tmp_path / "runs"}"'])
    result = train_run(cfg, progress=False, figures=False)
    assert result.data.train_frames.shape[1:] == (2, 2, 128, 128)
    assert np.isfinite(result.history[0]["train_loss"])


def test_frame_cache_is_keyed_by_transform_and_a_corrupt_entry_is_rebuilt(offline, monkeypatch):
    fw.write_dataset("pokerdvs", offline)
    reads = _count_event_reads(monkeypatch)
    info = get_dataset("pokerdvs")
    cfg = _tiny_run_config(info, (2, 35, 35), offline, 4).data
    first = make_loaders(cfg, progress=False)
    assert reads[0] == 40
    make_loaders(cfg, progress=False)
    assert reads[0] == 40  # hit
    other = make_loaders(_tiny_run_config(info, (2, 35, 35), offline, 6).data, progress=False)
    assert reads[0] == 80 and other.train_frames.shape[1] == 6  # other transform parameters: another entry
    key = frame_cache_key(cfg, "train")
    assert key["source"] == str(offline / "POKERDVS") and key["fingerprint"][0] > 0
    path = frame_cache_path(key)
    assert path.is_file()
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # truncated, as by a crash or a full disk
    with pytest.warns(UserWarning, match="corrupt or stale; rebuilding"):
        again = make_loaders(cfg, progress=False)
    assert reads[0] == 100  # only the corrupt train entry was rebuilt
    np.testing.assert_array_equal(again.train_frames, first.train_frames)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_loaders(cfg, progress=False)  # the rebuilt entry is valid
    assert reads[0] == 100


def test_a_subset_run_never_leaves_its_samples_under_the_whole_splits_key(offline, monkeypatch):
    """A corrupt whole-split entry is rebuilt whole, even by a subset run (which then slices it)."""
    fw.write_dataset("pokerdvs", offline)
    info = get_dataset("pokerdvs")
    whole = _tiny_run_config(info, (2, 35, 35), offline, 4).data
    full = make_loaders(whole, progress=False)
    path = frame_cache_path(frame_cache_key(whole, "train"))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    small = _tiny_run_config(info, (2, 35, 35), offline, 4, train_subset=8).data
    with pytest.warns(UserWarning, match="corrupt or stale; rebuilding"):
        assert len(make_loaders(small, progress=False).train_frames) == 8
    again = make_loaders(whole, progress=False)
    np.testing.assert_array_equal(again.train_frames, full.train_frames)  # all 40, not the subset's 8


def test_a_subset_converts_only_its_samples_and_changed_files_rebuild_the_frames(offline, monkeypatch):
    fw.write_dataset("pokerdvs", offline)
    reads = _count_event_reads(monkeypatch)
    info = get_dataset("pokerdvs")
    small = _tiny_run_config(info, (2, 35, 35), offline, 4, train_subset=8, test_subset=4).data
    data = make_loaders(small, progress=False)
    assert reads[0] == 8 + 4 and len(data.train_frames) == 8  # not the whole split
    make_loaders(small, progress=False)
    assert reads[0] == 12  # cached
    whole = _tiny_run_config(info, (2, 35, 35), offline, 4).data
    make_loaders(whole, progress=False)
    assert reads[0] == 12 + 40
    sliced = make_loaders(small, progress=False)
    assert reads[0] == 52  # the whole split is cached now: the subset is sliced from it
    # only the subset's rows of the whole split's file are mapped (a mapping of the whole file counted against
    # ulimit -v; a copy of the subset took its memory), with the whole split's first 8 samples' values
    frames, row = sliced.train_frames, sliced.train_frames[0].nbytes
    mapped = len(frames.base) if isinstance(frames.base, mmap.mmap) else frames.nbytes
    assert len(frames) == 8 and mapped <= 8 * row + 2 * mmap.ALLOCATIONGRANULARITY and mapped < 40 * row
    np.testing.assert_array_equal(frames, make_loaders(whole, progress=False).train_frames[:8])
    # new files in the dataset folder (e.g. a re-download) change the key: frames are rebuilt, not served stale
    fw.write_pokerdvs(offline, "train", per_class=6)
    make_loaders(whole, progress=False)
    assert reads[0] > 52


def test_a_file_moved_to_another_class_folder_changes_the_fingerprint(tmp_path):
    from neurosim.data.pipeline import source_fingerprint

    for cls, name in (("cat", "a.bin"), ("dog", "b.bin")):
        (tmp_path / cls).mkdir()
        (tmp_path / cls / name).write_bytes(b"events")
    before = source_fingerprint(tmp_path)
    assert source_fingerprint(tmp_path) == before  # stable
    (tmp_path / "cat" / "a.bin").rename(tmp_path / "dog" / "a.bin")  # same count, bytes and file mtimes
    after = source_fingerprint(tmp_path)
    assert after[:3] == before[:3] and after != before


def test_a_small_single_file_dataset_is_keyed_by_its_content_not_its_mtime(tmp_path):
    # two processes that generate the same file at once (the bundled event digits) share one frame-cache entry
    import os

    from neurosim.data.pipeline import source_fingerprint

    f = tmp_path / "digits.npz"
    f.write_bytes(b"events" * 100)
    key = source_fingerprint(f)
    os.utime(f, (1, 1))
    assert source_fingerprint(f) == key
    f.write_bytes(b"Events" * 100)  # same size, other content
    assert source_fingerprint(f) != key


def test_a_failed_download_is_one_clear_error_and_leaves_nothing_behind(tmp_path, monkeypatch):
    import urllib.error

    from neurosim.data import tonic_datasets as td

    spec = SPECS["nmnist"]
    archive = td.location(spec, tmp_path) / spec.splits["train"].archive

    def no_network(*args, **kwargs):
        archive.write_bytes(b"half an archive")  # tonic had started writing it
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(td, "_tonic_dataset", no_network)
    monkeypatch.delenv("NEUROSIM_OFFLINE")  # this test is of the download path (its network is faked)
    with pytest.raises(DatasetNotFoundError, match=r"downloading .* into .*NMNIST failed \(URLError: .*Name or "
                                                    r"service not known.*check the network"):
        td.load_split(spec, "train", tmp_path, download=True)
    assert not td.location(spec, tmp_path).exists()  # no empty folder, no partial archive tonic would trust


def test_neurosim_offline_refuses_a_download_before_anything_is_written(tmp_path, monkeypatch):
    from neurosim.data import tonic_datasets as td

    def network(*args, **kwargs):
        raise AssertionError("tonic was asked to download")

    monkeypatch.setattr(td, "_tonic_dataset", network)
    spec = SPECS["nmnist"]
    for value in ("1", "yes"):
        monkeypatch.setenv("NEUROSIM_OFFLINE", value)
        with pytest.raises(DatasetNotFoundError, match=rf"'nmnist': train.zip .* NEUROSIM_OFFLINE='{value}' turns "
                                                       "downloads off: unset it"):
            td.load_split(spec, "train", tmp_path, download=True)
    assert not td.location(spec, tmp_path).exists()
    for value in ("0", "false", ""):
        monkeypatch.setenv("NEUROSIM_OFFLINE", value)
        assert not td.offline()

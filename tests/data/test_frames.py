"""Events → frames and the frame cache (neurosim.data.frames): the same frames as stacking every sample's ToFrame
output and casting to the smallest dtype, built with the split's frames in memory once; cached as arrays mapped from
their files (shared between processes, never written through, sent to other processes as a reference, pickled by
value), a damaged, half-written or mismatched entry never served, one the system will not map read instead."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest

from neurosim.data.frames import cached_frames, events_to_frames, frame_array_path, frame_cache_path
from neurosim.data.transforms import ToFrame

SENSOR = (34, 34, 2)  # W, H, P: N-MNIST's sensor
DTYPE = np.dtype([("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])


class Recordings:
    """``n`` N-MNIST-like recordings made on demand (as a dataset reads them from disk); sample ``hot`` puts half
    of its events on one pixel (counts past 255: uint16 frames)."""

    def __init__(self, n: int, events: int = 2000, hot: int | None = None) -> None:
        self.n, self.events, self.hot = n, events, hot

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        rng = np.random.default_rng(i)
        n = self.events * (20 if i == self.hot else 1)
        ev = np.zeros(n, DTYPE)
        ev["x"], ev["y"], ev["p"] = rng.integers(0, 34, n), rng.integers(0, 34, n), rng.integers(0, 2, n)
        ev["t"] = np.sort(rng.integers(0, 300_000, n))
        if i == self.hot:
            ev["x"][: n // 2], ev["y"][: n // 2] = 3, 4
        return ev, i % 10


def _stacked(dataset, time_steps: int) -> np.ndarray:
    """The reference: every sample's ToFrame output stacked, cast to the smallest dtype that holds the largest
    count (what events_to_frames returned when it built the frames that way)."""
    to_frame = ToFrame(sensor_size=SENSOR, n_time_bins=time_steps)
    stacked = np.stack([to_frame(dataset[i][0]) for i in range(len(dataset))])
    top = int(stacked.max(initial=0))
    return stacked.astype(np.uint8 if top <= 255 else np.uint16 if top <= 65535 else np.int32)


@pytest.mark.parametrize("hot", [None, 0, 7], ids=["uint8", "uint16-from-the-first", "uint16-from-sample-7"])
def test_frames_are_the_stacked_toframe_outputs_in_the_smallest_dtype_byte_for_byte(hot):
    data = Recordings(12, hot=hot)
    frames, labels = events_to_frames(data, SENSOR, 5, progress=False)
    expected = _stacked(data, 5)
    assert frames.dtype == expected.dtype == (np.uint8 if hot is None else np.uint16)
    assert frames.shape == expected.shape == (12, 5, 2, 34, 34) and frames.tobytes() == expected.tobytes()
    assert labels.dtype == np.int64 and labels.tolist() == [i % 10 for i in range(12)]


def test_frames_are_built_in_one_array_not_a_list_a_stack_and_a_cast():
    """The frames in memory once: the int16 per-sample list, np.stack's copy and astype's copy peaked at ~5x the
    split's frames (7 GB for N-MNIST's training split)."""
    data = Recordings(400)
    tracemalloc.start()
    try:
        frames, _ = events_to_frames(data, SENSOR, 10, progress=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert frames.dtype == np.uint8 and frames.nbytes == 400 * 10 * 2 * 34 * 34  # 9.2 MB
    assert peak < 1.25 * frames.nbytes + 3e6, f"peak {peak / 1e6:.1f} MB for {frames.nbytes / 1e6:.1f} MB of frames"


def test_a_sample_of_another_shape_is_an_error_naming_it(monkeypatch):
    """(np.stack refused it without naming the sample; the array filled in place must not broadcast it.)"""
    import neurosim.data.frames as frames_module

    shapes = {0: (3, 2, 34, 34), 1: (3, 1, 34, 34)}  # a transform that infers the sensor from the events (tonic's)
    monkeypatch.setattr(frames_module, "_to_frame", lambda sensor_size, time_steps: lambda events: np.ones(
        shapes[int(events)], np.int16))
    with pytest.raises(ValueError, match=r"sample 1: ToFrame gave frames of shape \(3, 1, 34, 34\), sample 0 "
                                         r"\(3, 2, 34, 34\): every sample of a split needs the same sensor_size"):
        events_to_frames([(0, 0), (1, 1)], SENSOR, 3, progress=False)
    with pytest.raises(ValueError, match="the dataset is empty"):
        events_to_frames([], SENSOR, 3, progress=False)


def _build(n: int = 6, hot: int | None = None, calls: list | None = None):
    """A ``build`` for cached_frames: the frames of ``n`` recordings (counting its calls in ``calls``)."""
    def build():
        if calls is not None:
            calls.append(1)
        return events_to_frames(Recordings(n, events=300, hot=hot), SENSOR, 3, progress=False)
    return build


def _entry_files(cache: Path) -> list[str]:
    return sorted(p.name for p in (cache / "frames").glob("*"))


@pytest.mark.parametrize("hot", [None, 2], ids=["uint8", "uint16"])
def test_a_cached_split_is_mapped_from_its_file_byte_for_byte(tmp_path, hot):
    """(It was one .npz read whole into every process's memory: 2 GB per torchrun rank for DVS Gesture.)"""
    expected, labels = _build(hot=hot)()
    calls = []
    built = cached_frames({"dataset": "d", "split": "train"}, _build(hot=hot, calls=calls), cache_dir=tmp_path)
    again = cached_frames({"dataset": "d", "split": "train"}, _build(hot=hot, calls=calls), cache_dir=tmp_path)
    assert len(calls) == 1
    key = frame_cache_path({"dataset": "d", "split": "train"}, tmp_path)
    for frames, got_labels in (built, again):  # the frames just built are served mapped too (and freed)
        assert isinstance(frames, np.memmap) and isinstance(got_labels, np.memmap)
        assert Path(frames.filename) == frame_array_path(key, "frames")
        assert frames.dtype == expected.dtype and frames.shape == expected.shape
        assert frames.tobytes() == expected.tobytes() and got_labels.tolist() == labels.tolist()
    assert _entry_files(tmp_path) == [f"{key.stem}.frames.bin", key.name, f"{key.stem}.labels.bin"]


def test_cached_frames_are_writable_but_writing_never_reaches_the_cache(tmp_path):
    import torch

    from neurosim.data.loaders import FrameLoader

    key = {"dataset": "d", "split": "train"}
    frames, labels = cached_frames(key, _build(), cache_dir=tmp_path)
    expected = np.array(frames)
    on_disk = frame_array_path(frame_cache_path(key, tmp_path), "frames").read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns about a tensor over read-only memory
        batch = next(iter(FrameLoader(frames, labels, batch_size=6)))[0]
        tensor = torch.from_numpy(frames)
    tensor += 1  # a caller that normalises in place changes its own copy-on-write pages only
    frames[0] = 0
    assert frame_array_path(frame_cache_path(key, tmp_path), "frames").read_bytes() == on_disk
    assert torch.equal(batch, torch.as_tensor(expected).float().transpose(0, 1))
    again, _ = cached_frames(key, lambda: pytest.fail("rebuilt"), cache_dir=tmp_path)
    assert again.tobytes() == expected.tobytes()


def test_pickled_cached_frames_hold_their_values_and_outlive_the_cache(tmp_path, monkeypatch):
    """(They pickled as a reference to a path, relative where the cache folder was: pickle.dump, torch.save or joblib
    stored a reference that broke after a chdir or once the cache was cleaned.)"""
    import io
    import shutil

    import torch

    monkeypatch.chdir(tmp_path)
    frames, labels = cached_frames({"dataset": "d"}, _build(40), cache_dir=Path("cache"))  # a relative cache folder
    expected = np.array(frames)
    data, saved = pickle.dumps((frames, labels)), io.BytesIO()
    torch.save({"frames": frames}, saved)
    assert len(data) > frames.nbytes == 40 * 3 * 2 * 34 * 34  # the values
    shutil.rmtree("cache")
    monkeypatch.chdir("/")
    got_frames, got_labels = pickle.loads(data)
    assert type(got_frames) is np.ndarray and got_frames.tobytes() == expected.tobytes()
    assert got_labels.tolist() == [i % 10 for i in range(40)]
    saved.seek(0)
    assert torch.load(saved, weights_only=False)["frames"].tobytes() == expected.tobytes()


def test_cached_frames_sent_to_another_process_travel_as_their_absolute_file_not_their_bytes(tmp_path, monkeypatch):
    """(np.memmap pickles its bytes: a DataLoader worker started with spawn got a copy of the whole split.) What
    multiprocessing sends (ForkingPickler: spawn arguments, DataLoader workers, Pool tasks) is a reference to the
    file, by absolute path; a slice, or frames whose file was replaced since, by value."""
    from multiprocessing.reduction import ForkingPickler

    monkeypatch.chdir(tmp_path)
    key = {"dataset": "d"}
    frames, labels = cached_frames(key, _build(40), cache_dir=Path("cache"))
    data = bytes(ForkingPickler.dumps((frames, labels)))
    assert len(data) < 1000
    monkeypatch.chdir("/")  # a process started elsewhere
    got_frames, got_labels = pickle.loads(data)
    assert isinstance(got_frames, np.memmap) and got_frames.filename == frames.filename
    assert Path(got_frames.filename).is_absolute()
    assert got_frames.tobytes() == frames.tobytes() and got_labels.tolist() == labels.tolist()
    part = pickle.loads(ForkingPickler.dumps(frames[:2]))  # a view (and so a subset) travels by value
    assert type(part) is np.ndarray and part.tobytes() == frames[:2].tobytes()
    file = Path(frames.filename)
    file.with_name("new").write_bytes(bytes(file.stat().st_size))
    os.replace(file.with_name("new"), file)  # the entry rebuilt since (as the cache writes: a new file renamed over)
    again = pickle.loads(ForkingPickler.dumps(frames))
    assert type(again) is np.ndarray and again.tobytes() == frames.tobytes() and again.any()


def test_results_computed_from_cached_frames_are_plain_arrays_and_numbers(tmp_path):
    """(They stayed MappedArray: frames.max() was an unhashable 0-d array, astype(...) / 2 an array of no file.)"""
    frames, labels = cached_frames({"dataset": "d"}, _build(), cache_dir=tmp_path)
    top = frames.max()
    assert type(top) is np.uint8 and {top: 1}[int(frames.max())] == 1
    assert type(labels.sum()) is np.int64 and type(frames.mean()) is np.float64
    for result in (frames.astype("f4") / 2, frames + 1, frames.sum(axis=0), frames[[0, 2]], np.sqrt(frames)):
        assert type(result) is np.ndarray
    view = frames[1:]  # a view still reads the file's pages
    assert isinstance(view, np.memmap) and view.filename == frames.filename
    frames += 1  # in place (copy-on-write): still the mapped array
    assert isinstance(frames, np.memmap) and frames.filename == view.filename


def _mapped_from(frames) -> tuple:
    """What a spawned process received: the file its frames are mapped from (None: a copy), and their sum."""
    return getattr(frames, "filename", None), int(np.asarray(frames, dtype=np.int64).sum())


class _Whole:
    """A one-item dataset whose item is what the worker holds: its frames' file and their sum."""

    def __init__(self, frames) -> None:
        self.frames = frames

    def __len__(self) -> int:
        return 1

    def __getitem__(self, i: int) -> tuple:
        return _mapped_from(self.frames)


@pytest.mark.slow  # spawned interpreters import numpy, torch and neurosim: 5-10 s on two shared cores
def test_a_spawned_process_and_a_spawned_dataloader_worker_map_the_cached_frames_themselves(tmp_path):
    import multiprocessing

    import torch

    frames, _ = cached_frames({"dataset": "d"}, _build(), cache_dir=tmp_path)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.apply(_mapped_from, (frames,)) == _mapped_from(frames) == (frames.filename, frames.sum())
    loader = torch.utils.data.DataLoader(_Whole(frames), batch_size=None, num_workers=1,
                                         multiprocessing_context="spawn")
    assert tuple(next(iter(loader))) == (frames.filename, frames.sum())


def _edit_key(path: Path, name: str, **spec) -> None:
    """Change what an entry's key file says about array ``name`` (``dtype``, ``shape``)."""
    stored = json.loads(path.read_text())
    stored["arrays"][name].update(spec)
    path.write_text(json.dumps(stored, sort_keys=True))


DAMAGE = {  # what is damaged, and the reason the warning gives
    "truncated frames": "bytes, expected",
    "missing labels": "No such file",
    "labels of another length": r"expected \[N, T, P, H, W\]",
    "truncated key": "malformed",
    # the same number of bytes, read as other numbers (they were served: integrity was by size only)
    "labels of another dtype": "labels of dtype float64, expected int64",
    "frames of another dtype": "frames of dtype int8, expected one of uint8, uint16, int32",
    "frames of another sensor": r"the key's sensor_size is \[34, 34, 2\]",
    "frames of other time bins": "frames of 6 time bins, the key says 3",
    "frames as one row per sample": r"expected \[N, T, P, H, W\]",
    "a shape of floats": "describe no array",
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_entry_is_never_served_and_is_rebuilt(tmp_path, damage):
    key = {"dataset": "d", "split": "train", "sensor_size": list(SENSOR), "n_time_bins": 3}
    expected, _ = cached_frames(key, _build(), cache_dir=tmp_path)
    expected = np.array(expected)
    path = frame_cache_path(key, tmp_path)
    frames_file, labels_file = frame_array_path(path, "frames"), frame_array_path(path, "labels")
    if damage == "truncated frames":  # a full disk mid-write (a file that the rename got anyway)
        frames_file.write_bytes(frames_file.read_bytes()[:-1])
    elif damage == "missing labels":
        labels_file.unlink()
    elif damage == "labels of another length":
        labels_file.write_bytes(labels_file.read_bytes()[:8])
        _edit_key(path, "labels", shape=[1])
    elif damage == "truncated key":
        path.write_text(path.read_text()[:20])
    elif damage == "labels of another dtype":
        _edit_key(path, "labels", dtype="<f8")
    elif damage == "frames of another dtype":
        _edit_key(path, "frames", dtype="|i1")
    elif damage == "frames of another sensor":
        _edit_key(path, "frames", shape=[6, 3, 2, 17, 68])
    elif damage == "frames of other time bins":
        _edit_key(path, "frames", shape=[6, 6, 1, 34, 34])
    elif damage == "frames as one row per sample":
        _edit_key(path, "frames", shape=[6, 3 * 2 * 34 * 34])
    else:
        _edit_key(path, "frames", shape=[6.0, 3, 2, 34, 34])
    calls = []
    with pytest.warns(UserWarning, match=f"frame cache {path} is corrupt or stale; rebuilding it .*{DAMAGE[damage]}"):
        frames, labels = cached_frames(key, _build(calls=calls), cache_dir=tmp_path)
    assert calls == [1] and frames.tobytes() == expected.tobytes() and len(labels) == 6
    assert labels.dtype == np.int64 and frames.dtype == expected.dtype and frames.shape == expected.shape
    assert cached_frames(key, lambda: pytest.fail("rebuilt twice"), cache_dir=tmp_path)[0].shape == expected.shape


def test_frames_without_a_y_axis_are_served_and_frames_of_no_key_are_an_error(tmp_path):
    """Audio (SHD: sensor (700, 1, 1)) gives frames [N, T, P, W]; a build() that gives what no read would serve is
    an error when the entry is stored, not an entry rebuilt on every run."""
    key = {"dataset": "a", "sensor_size": [8, 1, 1], "n_time_bins": 3}
    audio = np.arange(4 * 3 * 1 * 8, dtype=np.uint8).reshape(4, 3, 1, 8), np.arange(4)
    cached_frames(key, lambda: audio, cache_dir=tmp_path)
    frames, labels = cached_frames(key, lambda: pytest.fail("rebuilt"), cache_dir=tmp_path)
    assert isinstance(frames, np.memmap) and frames.tobytes() == audio[0].tobytes() and labels.tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match=r"build\(\) for d_all_\w+\.json gave frames of dtype float64, expected "
                                         r"one of uint8, uint16, int32; it must return frames and labels as "
                                         r"events_to_frames"):
        cached_frames({"dataset": "d"}, lambda: (np.zeros((2, 3, 1, 4, 4)), np.zeros(2, np.int64)), cache_dir=tmp_path)
    assert not list((tmp_path / "frames").glob("d_all_*"))


def _entry(cache: Path) -> dict:
    """Every file of the cache's frame folder: its bytes and when it was written."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in (cache / "frames").iterdir()}


@pytest.mark.parametrize("error, advice", [("ENOMEM", "vm.overcommit_memory=2"), ("EMFILE", "ulimit -n")])
def test_an_entry_the_system_will_not_map_is_read_into_memory_and_kept(tmp_path, monkeypatch, error, advice):
    """(A refused mapping — the commit limit under strict overcommit, too many open files — was reported as a
    corrupt entry, and the whole split rebuilt on every run.)"""
    import errno
    import mmap

    key = {"dataset": "d", "split": "train"}
    expected, labels = cached_frames(key, _build(), cache_dir=tmp_path)
    expected, labels = np.array(expected), np.array(labels)
    path, entry, code = frame_cache_path(key, tmp_path), _entry(tmp_path), getattr(errno, error)

    def refused(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(mmap, "mmap", refused)  # (what np.memmap calls)
    with pytest.warns(RuntimeWarning) as warned:
        for _ in range(2):  # one warning per entry (not per file) and process
            frames, got_labels = cached_frames(key, lambda: pytest.fail("rebuilt"), cache_dir=tmp_path)
            assert type(frames) is np.ndarray and frames.tobytes() == expected.tobytes()
            assert got_labels.tolist() == labels.tolist()
    assert len(warned) == 1 and warned[0].filename == __file__  # the caller's line, not inside neurosim
    message = str(warned[0].message)
    assert message.startswith(f"could not map the frame cache file {frame_array_path(path, 'frames')} "
                              f"({os.strerror(code)}): this process reads the entry into memory instead")
    assert advice in message and "the entry is fine and is kept" in message
    assert _entry(tmp_path) == entry
    monkeypatch.undo()
    assert isinstance(cached_frames(key, lambda: pytest.fail("rebuilt"), cache_dir=tmp_path)[0], np.memmap)


def test_an_entry_that_cannot_be_read_is_built_in_memory_and_left_as_it_is(tmp_path, monkeypatch):
    import errno

    import neurosim.data.frames as frames_module

    key = {"dataset": "d", "split": "train"}
    expected, _ = cached_frames(key, _build(), cache_dir=tmp_path)
    expected, entry = np.array(expected), _entry(tmp_path)
    frames_file = frame_array_path(frame_cache_path(key, tmp_path), "frames")

    def denied(file, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", file)

    monkeypatch.setattr(frames_module, "open", denied, raising=False)  # (the arrays' files are opened there)
    calls = []
    with pytest.warns(RuntimeWarning, match=rf"could not read the frame cache {frames_file}: Permission denied \(the "
                                            r"entry is left as it is\): its frames are built in memory for this run; "
                                            r"make the file readable"):
        frames, _ = cached_frames(key, _build(calls=calls), cache_dir=tmp_path)
    assert calls == [1] and frames.tobytes() == expected.tobytes()
    assert _entry(tmp_path) == entry


def _disk_full_at(monkeypatch, suffix: str) -> list[str]:
    """The cache's one writer on a disk that fills up at the file ending in ``suffix``; returns the files written."""
    import errno

    import neurosim.data._cache as cache

    written, real = [], cache.atomic_write_bytes

    def write(path, data):
        if path.name.endswith(suffix):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        written.append(path.name)
        return real(path, data)

    monkeypatch.setattr(cache, "atomic_write_bytes", write)
    return written


@pytest.mark.parametrize("suffix", [".frames.bin", ".labels.bin", ".json"])
def test_a_disk_full_mid_entry_leaves_neither_an_entry_nor_its_arrays(tmp_path, monkeypatch, suffix):
    key = {"dataset": "d", "split": "train"}
    written = _disk_full_at(monkeypatch, suffix)
    with pytest.warns(RuntimeWarning, match=rf"could not store the frames .*{suffix}: No space left on device"):
        frames, labels = cached_frames(key, _build(), cache_dir=tmp_path)
    assert frames.shape == (6, 3, 2, 34, 34) and not isinstance(frames, np.memmap)  # from memory: the run goes on
    order = [".frames.bin", ".labels.bin", ".json"]  # the key file last
    assert written == [frame_cache_path(key, tmp_path).stem + s for s in order[:order.index(suffix)]]
    assert _entry_files(tmp_path) == []  # no key file, and no arrays filling the disk without one


def test_a_cache_that_must_be_written_raises_and_leaves_no_arrays(tmp_path, monkeypatch):
    from neurosim.data._cache import CacheWriteError, writes_required

    _disk_full_at(monkeypatch, ".json")
    with writes_required(), pytest.raises(CacheWriteError, match=r"could not store the frames in .*\.json "
                                                                 r"\(No space left on device\): free space"):
        cached_frames({"dataset": "d"}, _build(), cache_dir=tmp_path)
    assert _entry_files(tmp_path) == []


def _write_format1(path: Path, key: dict, frames, labels) -> None:
    """An entry as neurosim with FRAMES_FORMAT 1 wrote it: one .npz holding the frames, labels and key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, frames=frames, labels=labels, key=np.array(json.dumps({"format": 1, **key}, sort_keys=True)))


def test_old_npz_entries_are_removed_once_a_new_entry_is_stored_whatever_their_key(tmp_path):
    """(Only the .npz of the very key rebuilt was removed: a run of other keys — a subset — left gigabytes of old
    entries forever.) Temporary files of old writes go once their writer is gone; a live one's stays."""
    import socket
    import time

    def format1_path(key):
        digest = hashlib.sha256(json.dumps({"format": 1, **key}, sort_keys=True).encode()).hexdigest()[:16]
        return tmp_path / "frames" / f"{key['dataset']}_{key['split']}_{digest}.npz"

    mine, other = {"dataset": "d", "split": "train"}, {"dataset": "d", "split": "test"}
    expected, labels = _build()()
    _write_format1(format1_path(mine), mine, expected, labels)
    _write_format1(format1_path(other), other, expected, labels)
    killed = tmp_path / "frames" / f".{format1_path(other).name}.{socket.gethostname()}.1.ab3.tmp"
    live = tmp_path / "frames" / f".{format1_path(other).name}.another-host.12.cd4.tmp"
    for tmp in (killed, live):
        tmp.write_bytes(b"part of an old write")
    day_ago = time.time() - 2 * 86400
    os.utime(killed, (day_ago, day_ago))
    calls = []
    frames, _ = cached_frames({**mine, "first": 3}, _build(3, calls=calls), cache_dir=tmp_path)  # a subset's key
    assert calls == [1] and frames.tobytes() == expected[:3].tobytes()
    assert not format1_path(mine).exists() and not format1_path(other).exists() and not killed.exists()
    assert live.exists()


def test_storing_the_frames_holds_no_second_copy_of_them():
    """(np.savez into a buffer held a second copy of the split while it was written: 2x the frames at the peak.)"""
    import tempfile

    data = Recordings(400)
    frames, labels = events_to_frames(data, SENSOR, 10, progress=False)
    with tempfile.TemporaryDirectory() as folder:
        tracemalloc.start()
        try:
            got, _ = cached_frames({"dataset": "d"}, lambda: (frames, labels), cache_dir=Path(folder))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert got.tobytes() == frames.tobytes()
        del got
    assert peak < 0.1 * frames.nbytes, f"peak {peak / 1e6:.1f} MB beyond {frames.nbytes / 1e6:.1f} MB of frames"


@pytest.mark.parametrize("hot", [None, 0, 7], ids=["uint8", "uint16-from-the-first", "uint16-from-sample-7"])
def test_an_event_split_is_cached_as_it_is_converted_never_whole_in_memory(tmp_path, hot):
    """cached_event_frames writes each sample's frames to the entry's file as it converts them: the entry (and what
    is served, mapped) is byte for byte cached_frames' of events_to_frames, in the smallest dtype (a larger count
    rewrites the samples before it, wider), but memory holds one sample, not the split (14 GB for N-MNIST at
    T = 100, T times more with every step)."""
    from neurosim.data.frames import cached_event_frames

    data = Recordings(400, hot=hot)
    expected, labels = events_to_frames(data, SENSOR, 10, progress=False)
    calls = []

    def dataset():
        calls.append(1)
        return data

    key = {"dataset": "d", "split": "train", "n_time_bins": 10, "sensor_size": list(SENSOR)}
    tracemalloc.start()
    try:
        frames, got = cached_event_frames(key, dataset, SENSOR, 10, progress=False, cache_dir=tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 0.25 * expected.nbytes, f"peak {peak / 1e6:.1f} MB for {expected.nbytes / 1e6:.1f} MB of frames"
    assert isinstance(frames, np.memmap) and frames.dtype == expected.dtype and frames.shape == expected.shape
    assert frames.tobytes() == expected.tobytes() and got.tolist() == labels.tolist()
    again, _ = cached_event_frames(key, dataset, SENSOR, 10, progress=False, cache_dir=tmp_path)
    assert calls == [1] and again.tobytes() == expected.tobytes()
    path = frame_cache_path(key, tmp_path)
    assert _entry_files(tmp_path) == [f"{path.stem}.frames.bin", path.name, f"{path.stem}.labels.bin"]
    other = tmp_path / "other"
    cached_frames(key, lambda: (expected, labels), cache_dir=other)  # the same entry, byte for byte
    for name in (path.name, f"{path.stem}.frames.bin", f"{path.stem}.labels.bin"):
        assert (other / "frames" / name).read_bytes() == (tmp_path / "frames" / name).read_bytes()


def _frames_file_full_after(monkeypatch, limit: int) -> None:
    """The streamed frames file is on a disk that is full after ``limit`` bytes."""
    import errno

    import neurosim.data.frames as frames_module

    class Full(frames_module.AtomicFile):
        def write(self, data) -> None:
            if self.file.tell() + memoryview(data).nbytes > limit:
                try:
                    raise OSError(errno.ENOSPC, "No space left on device")  # as write() raises it: no path
                except OSError as e:
                    self.discard()
                    from neurosim._io import _raise_naming
                    _raise_naming(e, self.path)
            super().write(data)

    monkeypatch.setattr(frames_module, "AtomicFile", Full)


def test_a_disk_that_fills_while_an_event_split_is_cached_warns_and_serves_it_from_memory(tmp_path, monkeypatch):
    from neurosim.data._cache import CacheWriteError, writes_required
    from neurosim.data.frames import cached_event_frames

    data = Recordings(6, events=300)
    expected, labels = events_to_frames(data, SENSOR, 3, progress=False)
    _frames_file_full_after(monkeypatch, 2 * expected[0].nbytes)
    key = {"dataset": "d", "split": "train"}
    with pytest.warns(RuntimeWarning, match=r"could not store the frames .*\.frames\.bin: No space left on device"):
        frames, got = cached_event_frames(key, lambda: data, SENSOR, 3, progress=False, cache_dir=tmp_path)
    assert not isinstance(frames, np.memmap) and frames.tobytes() == expected.tobytes()  # the run goes on
    assert got.tolist() == labels.tolist() and _entry_files(tmp_path) == []  # and no part of an entry is left
    with writes_required(), pytest.raises(CacheWriteError, match=r"could not store the frames in .*\.frames\.bin "
                                                                 r"\(No space left on device\): free space"):
        cached_event_frames(key, lambda: data, SENSOR, 3, progress=False, cache_dir=tmp_path)
    assert _entry_files(tmp_path) == []


@pytest.mark.parametrize("suffix", [".labels.bin", ".json"])
def test_an_event_split_whose_entry_cannot_be_completed_is_served_and_leaves_no_arrays(tmp_path, monkeypatch, suffix):
    from neurosim.data.frames import cached_event_frames

    data = Recordings(6, events=300)
    expected, _ = events_to_frames(data, SENSOR, 3, progress=False)
    _disk_full_at(monkeypatch, suffix)
    with pytest.warns(RuntimeWarning, match=rf"could not store the frames .*{suffix}: No space left on device"):
        frames, _ = cached_event_frames({"dataset": "d"}, lambda: data, SENSOR, 3, progress=False, cache_dir=tmp_path)
    assert frames.tobytes() == expected.tobytes() and _entry_files(tmp_path) == []


def test_an_event_split_that_fails_to_convert_leaves_nothing(tmp_path, monkeypatch):
    import neurosim.data.frames as frames_module
    from neurosim.data.frames import cached_event_frames

    shapes = {0: (3, 2, 34, 34), 1: (3, 1, 34, 34)}
    monkeypatch.setattr(frames_module, "_to_frame", lambda sensor_size, time_steps: lambda events: np.ones(
        shapes[int(events)], np.int16))
    with pytest.raises(ValueError, match=r"sample 1: ToFrame gave frames of shape \(3, 1, 34, 34\)"):
        cached_event_frames({"dataset": "d"}, lambda: [(0, 0), (1, 1)], SENSOR, 3, progress=False, cache_dir=tmp_path)
    assert not (tmp_path / "frames").exists() or list((tmp_path / "frames").iterdir()) == []


def _mapped_bytes(array: np.memmap) -> int:
    """The bytes of address space the array's mapping takes (its ``mmap``'s length; the frames map from offset 0)."""
    return len(array._mmap)


def test_the_first_rows_of_a_cached_split_map_only_their_own_bytes(tmp_path, monkeypatch):
    """A subset of a split already cached (data.train_subset) was the whole file mapped, then copied: the mapping took
    the whole file's address space (ulimit -v: ~55 GB for N-MNIST's training split at T = 400), and the copy was the
    process's own memory. The first rows are mapped alone, their values the whole mapping's."""
    import mmap
    from multiprocessing.reduction import ForkingPickler

    from neurosim.data.frames import cached_event_frames

    data = Recordings(12)
    key = {"dataset": "d", "split": "train", "n_time_bins": 5, "sensor_size": list(SENSOR)}
    whole, labels = cached_event_frames(key, lambda: data, SENSOR, 5, progress=False, cache_dir=tmp_path)
    row = whole[0].nbytes
    assert _mapped_bytes(whole) == 12 * row
    frames, got = cached_event_frames(key, lambda: pytest.fail("rebuilt"), SENSOR, 5, progress=False,
                                      cache_dir=tmp_path, rows=4)
    assert isinstance(frames, np.memmap) and isinstance(got, np.memmap)
    assert frames.shape == (4, *whole.shape[1:]) and frames.dtype == whole.dtype
    assert _mapped_bytes(frames) == 4 * row and _mapped_bytes(got) == 4 * 8  # (int64 labels)
    assert frames.tobytes() == whole[:4].tobytes() and got.tolist() == labels[:4].tolist()
    if Path("/proc/self/maps").is_file():  # (Linux) what the system mapped: the 4 rows' pages, and the whole's
        maps = [line for line in Path("/proc/self/maps").read_text().splitlines()
                if line.endswith(str(frame_array_path(frame_cache_path(key, tmp_path), "frames")))]
        sizes = sorted(int(end, 16) - int(start, 16) for start, end in (m.split()[0].split("-") for m in maps))
        page = mmap.PAGESIZE
        assert sizes == [-(-4 * row // page) * page, -(-12 * row // page) * page]  # (whole: still held above)
    # sent to another process: a reference to the file and the rows, mapped again there as the same rows
    sent = bytes(ForkingPickler.dumps(frames))
    assert len(sent) < 1000
    again = pickle.loads(sent)
    assert isinstance(again, np.memmap) and _mapped_bytes(again) == 4 * row and again.tobytes() == frames.tobytes()
    part = pickle.loads(ForkingPickler.dumps(frames[:2]))  # a slice of them, by value
    assert type(part) is np.ndarray and part.tobytes() == whole[:2].tobytes()
    past = cached_event_frames(key, lambda: pytest.fail("rebuilt"), SENSOR, 5, progress=False, cache_dir=tmp_path,
                               rows=50)[0]  # more rows than the split: the whole split
    assert past.shape == whole.shape and _mapped_bytes(past) == 12 * row


def test_the_first_rows_of_an_entry_the_system_will_not_map_are_read_alone(tmp_path, monkeypatch):
    import errno
    import mmap

    from neurosim.data.frames import cached_event_frames

    key = {"dataset": "d", "split": "train", "n_time_bins": 5, "sensor_size": list(SENSOR)}
    whole, labels = cached_event_frames(key, lambda: Recordings(9), SENSOR, 5, progress=False, cache_dir=tmp_path)
    whole, labels = np.array(whole), np.array(labels)

    def refused(*args, **kwargs):
        raise OSError(errno.ENOMEM, os.strerror(errno.ENOMEM))

    monkeypatch.setattr(mmap, "mmap", refused)
    with pytest.warns(RuntimeWarning, match="reads the entry into memory instead"):
        frames, got = cached_event_frames(key, lambda: pytest.fail("rebuilt"), SENSOR, 5, progress=False,
                                          cache_dir=tmp_path, rows=3)
    assert type(frames) is np.ndarray and frames.shape == (3, *whole.shape[1:])
    assert frames.tobytes() == whole[:3].tobytes() and got.tolist() == labels[:3].tolist()

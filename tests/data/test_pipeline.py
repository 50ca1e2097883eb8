"""DataConfig → cached frames → loaders, for datasets registered by the user: the frame cache never serves frames of
recordings that have changed since (a source it cannot fingerprint is converted every time, and it says so)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from neurosim.config import DataConfig
from neurosim.data import DATASETS, DatasetInfo, events_to_frames, load_frames, make_loaders
from neurosim.data.pipeline import source_fingerprint

SENSOR = (4, 4, 2)  # W, H, P
DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.int8)])


def _recordings(seed: int, n: int = 6) -> list[tuple[np.ndarray, int]]:
    """``n`` random 40-event recordings on a 4×4 sensor, labels 0, 1, 0, 1, …"""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        ev = np.zeros(40, DTYPE)
        ev["x"], ev["y"] = rng.integers(0, 4, 40), rng.integers(0, 4, 40)
        ev["t"], ev["p"] = np.sort(rng.integers(0, 10_000, 40)), rng.integers(0, 2, 40)
        out.append((ev, i % 2))
    return out


def _register(monkeypatch, recordings: dict, location) -> DatasetInfo:
    """A bundled dataset 'mine' whose loader serves ``recordings["now"]`` from memory (both splits alike)."""
    info = DatasetInfo(name="mine", sensor_size=SENSOR, num_classes=2, description="the user's recordings",
                       loader=lambda split, root, download, progress: list(recordings["now"]),
                       on_disk=lambda root: True, location=location, bundled=True)
    monkeypatch.setitem(DATASETS, info.name, info)  # removed again after the test
    return info


def _frames_now(recordings: dict, time_steps: int) -> np.ndarray:
    return events_to_frames(recordings["now"], SENSOR, time_steps, progress=False)[0]


def _uncached_warnings(record) -> list[str]:
    return [str(w.message) for w in record if "converted on every run" in str(w.message)]


@pytest.mark.parametrize("where", ["missing", "empty folder"])
def test_a_location_without_files_is_not_cached_so_changed_recordings_give_new_frames(where, cache_dir, tmp_path,
                                                                                    monkeypatch):
    # the reviewer's case: location → a path that does not exist; the cache key was only name/split/sensor/T, so
    # the second call served the first recordings' frames
    folder = tmp_path / "mine"
    if where == "empty folder":
        folder.mkdir()
    recordings = {"now": _recordings(1)}
    _register(monkeypatch, recordings, lambda root: folder)
    cfg = DataConfig(dataset="mine", time_steps=3, batch_size=4)
    assert source_fingerprint(folder) is None
    said = []
    for seed in (1, 5):  # the user's recordings change between the two runs
        recordings["now"] = _recordings(seed)
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            bundle = make_loaders(cfg, progress=False)
        np.testing.assert_array_equal(bundle.train_frames, _frames_now(recordings, 3))
        np.testing.assert_array_equal(bundle.test_frames, _frames_now(recordings, 3))
        assert bundle.fingerprint is None
        said.append(_uncached_warnings(record))
    for run in said:
        assert len(run) == 1, run  # once for both splits
        assert "'mine'" in run[0] and str(folder) in run[0] and "location(root)" in run[0]
    assert not list(cache_dir.glob("frames/mine_*"))  # nothing was stored under a key that cannot change


def test_a_subset_of_an_uncached_source_converts_only_its_samples(cache_dir, tmp_path, monkeypatch):
    recordings = {"now": _recordings(2)}
    _register(monkeypatch, recordings, lambda root: tmp_path / "nowhere")
    cfg = DataConfig(dataset="mine", time_steps=2, batch_size=2, train_subset=3)
    with pytest.warns(UserWarning, match="dataset 'mine'.*converted on every run"):
        frames, labels = load_frames(cfg, "train", progress=False)
    np.testing.assert_array_equal(frames, _frames_now(recordings, 2)[:3])
    assert labels.tolist() == [0, 1, 0]


def test_a_subset_of_a_cached_split_maps_only_its_samples(cache_dir, tmp_path, monkeypatch):
    # it was the whole split's file mapped, then the subset copied into the process's own memory
    source = tmp_path / "mine.npy"
    recordings = {"now": _recordings(4, n=10)}
    np.save(source, np.concatenate([ev for ev, _ in recordings["now"]]))
    _register(monkeypatch, recordings, lambda root: source)
    whole, _ = load_frames(DataConfig(dataset="mine", time_steps=3), "train", progress=False)  # cached
    frames, labels = load_frames(DataConfig(dataset="mine", time_steps=3, train_subset=4), "train", progress=False)
    assert isinstance(frames, np.memmap) and isinstance(labels, np.memmap)  # (a copy is a plain array)
    assert frames.filename == whole.filename and len(frames._mmap) == 4 * whole[0].nbytes < len(whole._mmap)
    np.testing.assert_array_equal(frames, _frames_now(recordings, 3)[:4])
    assert labels.tolist() == [0, 1, 0, 1]


def test_a_location_with_the_files_is_cached_and_rebuilt_when_they_change(cache_dir, tmp_path, monkeypatch):
    """What the warning advises: a location that returns the file the loader reads keys the cache."""
    source = tmp_path / "mine.npy"
    recordings = {"now": _recordings(3)}

    def write(seed):
        recordings["now"] = _recordings(seed)
        np.save(source, np.concatenate([ev for ev, _ in recordings["now"]]))

    write(3)
    _register(monkeypatch, recordings, lambda root: source)
    cfg = DataConfig(dataset="mine", time_steps=3, batch_size=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        first = make_loaders(cfg, progress=False)
        assert first.fingerprint is not None and len(list(cache_dir.glob("frames/mine_*.json"))) == 2
        write(7)
        second = make_loaders(cfg, progress=False)
    np.testing.assert_array_equal(first.train_frames, events_to_frames(_recordings(3), SENSOR, 3, False)[0])
    np.testing.assert_array_equal(second.train_frames, _frames_now(recordings, 3))
    assert second.fingerprint != first.fingerprint


def test_source_fingerprint_of_nothing_is_none(tmp_path):
    assert source_fingerprint(tmp_path / "missing") is None
    assert source_fingerprint(tmp_path) is None  # an empty folder
    (tmp_path / "sub").mkdir()
    assert source_fingerprint(tmp_path) is None  # folders, but no file
    Path(tmp_path / "sub" / "a.bin").write_bytes(b"events")
    assert source_fingerprint(tmp_path)[0] == 1


def test_an_empty_dataset_folder_is_still_the_not_on_disk_error_without_a_cache_warning(cache_dir, tmp_path):
    from neurosim.data import DatasetNotFoundError

    (tmp_path / "POKERDVS").mkdir(parents=True)  # e.g. made by hand before the files were copied in
    cfg = DataConfig(dataset="pokerdvs", time_steps=2, batch_size=4, root=str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DatasetNotFoundError, match="not on disk"):
            make_loaders(cfg, progress=False)


def _full_disk(monkeypatch):
    import errno

    import neurosim.data._cache as cache

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(cache, "atomic_write_bytes", full)  # the cache's one writer


def test_a_full_cache_disk_warns_for_each_split_with_advice_for_a_full_disk(cache_dir, tmp_path, monkeypatch):
    # both splits' warnings had the same text (the folder, not the file), so Python showed only the first; and the
    # advice was for a read-only folder
    source = tmp_path / "mine.npy"
    recordings = {"now": _recordings(3)}
    np.save(source, np.concatenate([ev for ev, _ in recordings["now"]]))
    _register(monkeypatch, recordings, lambda root: source)
    _full_disk(monkeypatch)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("default")  # Python's own: a text is shown once per line
        make_loaders(DataConfig(dataset="mine", time_steps=3, batch_size=4), progress=False)
    said = [str(w.message) for w in record if "could not store" in str(w.message)]
    assert len(said) == 2 and "mine_train_" in said[0] and "mine_test_" in said[1]
    assert all("No space left on device" in s and "free space on that disk, or set NEUROSIM_CACHE_DIR to a folder on "
               f"a disk with space (it is {cache_dir} now)" in s for s in said), said


def test_a_generated_dataset_that_could_not_be_stored_is_not_blamed_on_its_registration(cache_dir, tmp_path,
                                                                                         monkeypatch):
    # the bundled event digits on a full disk: their file was not written, so the frames could not be keyed, and
    # the warning told the user to "register the dataset with a location(root)"
    from neurosim.data._cache import store

    generated = cache_dir / "mine_v1.npz"

    def generate(split, root, download, progress):
        if not generated.exists():
            store(generated, b"data", "the generated recordings")
        return _recordings(4)

    info = DatasetInfo(name="mine", sensor_size=SENSOR, num_classes=2, description="generated", loader=generate,
                       on_disk=lambda root: True, location=lambda root: generated, bundled=True)
    monkeypatch.setitem(DATASETS, info.name, info)
    _full_disk(monkeypatch)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        make_loaders(DataConfig(dataset="mine", time_steps=3, batch_size=4), progress=False)
    said = [str(w.message) for w in record]
    assert not any("location(root)" in s for s in said), said
    assert any(f"its generated file {generated} could not be stored" in s for s in said), said


def test_the_test_loader_batches_data_batch_size_samples_like_training(cache_dir, tmp_path, monkeypatch):
    # it took max(batch_size, 128): a user who lowered data.batch_size to fit GPU memory ran out at the first
    # evaluation, whose batch did not follow
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "rec.bin").write_bytes(b"1")  # a location with a file: cached, no warning
    _register(monkeypatch, {"now": _recordings(1)}, lambda root: tmp_path / "mine")
    bundle = make_loaders(DataConfig(dataset="mine", time_steps=3, batch_size=4), progress=False)
    assert bundle.test.batch_size == bundle.train.batch_size == 4
    assert [x.shape[1] for x, _ in bundle.test] == [4, 2]  # 6 samples, in order


def test_a_long_sequence_splits_frames_are_cached_without_holding_the_split_in_memory(cache_dir, tmp_path,
                                                                                      monkeypatch):
    """The frames of a split are O(T): building the frame cache wrote them to their file as they were converted,
    never the whole split in memory (it built the split's array first: 14 GB for N-MNIST's training split at
    T = 100, ~1 GB for the event digits at T = 300)."""
    import tracemalloc

    source = tmp_path / "mine.npy"
    recordings = {"now": _recordings(3, n=200)}
    np.save(source, np.concatenate([ev for ev, _ in recordings["now"]]))
    _register(monkeypatch, recordings, lambda root: source)
    cfg = DataConfig(dataset="mine", time_steps=2000, batch_size=4)
    expected = _frames_now(recordings, 2000)  # (ToFrame's kernels compiled or loaded before memory is traced)
    tracemalloc.start()
    try:
        frames, labels = load_frames(cfg, "train", progress=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert frames.shape == (200, 2000, 2, 4, 4) and isinstance(frames, np.memmap)  # served from its file
    assert frames.tobytes() == expected.tobytes() and labels.tolist() == [0, 1] * 100
    # (1 MB of it is the source file's fingerprint, read in 1 MiB blocks)
    assert peak < 0.25 * frames.nbytes, f"peak {peak / 1e6:.2f} MB for {frames.nbytes / 1e6:.2f} MB of frames"

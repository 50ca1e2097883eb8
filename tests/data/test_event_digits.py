"""The bundled event-digits dataset: N-MNIST-like statistics, tonic compatibility, fixed split, robust cache."""

from __future__ import annotations

import numpy as np
import pytest
import tonic

import neurosim.data.event_digits as ed
from neurosim.data import EventDigits, get_dataset


def test_event_count_per_digit_is_close_to_a_real_nmnist_recording(real_file, event_digits_cache):
    real = tonic.io.read_mnist_file(str(real_file("sample_nmnist.bin")), dtype=tonic.datasets.NMNIST.dtype)
    assert len(real) == 4325
    counts = np.diff(ed.load_event_digits(event_digits_cache)["offsets"])
    assert len(counts) == 1797
    assert abs(counts.mean() - len(real)) <= 0.3 * len(real)
    assert counts.min() > 0.3 * len(real)  # no digit is (almost) empty


def test_samples_look_like_tonic_nmnist(event_digits_cache):
    train, test = EventDigits("train", progress=False), EventDigits("test", progress=False)
    events, label = train[0]
    assert events.dtype == tonic.datasets.NMNIST.dtype
    assert EventDigits.sensor_size == tonic.datasets.NMNIST.sensor_size
    assert 0 <= label < 10
    assert np.all(np.diff(events["t"]) >= 0)
    assert events["x"].max() < 34 and events["y"].max() < 34
    assert set(np.unique(events["p"])) == {0, 1}
    assert 300_000 <= events["t"].max() <= 315_000  # three 105 ms saccades
    # any tonic transform works on the samples
    frames = tonic.transforms.ToFrame(sensor_size=EventDigits.sensor_size, n_time_bins=5)(events)
    assert frames.shape == (5, 2, 34, 34)
    assert frames.sum() == np.sum(events["t"] < events["t"].max())  # tonic's binning leaves out the last timestamp
    denoised = tonic.transforms.Denoise(filter_time=10_000)(events)
    assert 0 < len(denoised) < len(events)
    assert len(train) + len(test) == 1797


def test_split_is_fixed_stratified_and_disjoint(event_digits_cache):
    train, test = EventDigits("train", progress=False), EventDigits("test", progress=False)
    assert not set(train.indices) & set(test.indices)
    share = np.bincount(test.targets, minlength=10) / (np.bincount(test.targets, minlength=10)
                                                      + np.bincount(train.targets, minlength=10))
    np.testing.assert_allclose(share, 0.2, atol=0.01)
    assert len(test) == 359
    np.testing.assert_array_equal(ed._split(ed.load_event_digits(event_digits_cache)["labels"]), ~(
        np.isin(np.arange(1797), train.indices)))


def test_generation_is_deterministic_per_sample():
    from sklearn.datasets import load_digits

    img = load_digits().images[5]
    np.testing.assert_array_equal(ed.digit_events(img, seed=11), ed.digit_events(img, seed=11))
    small = ed.build_event_digits(progress=False, limit=3)
    np.testing.assert_array_equal(small["t"][small["offsets"][1]:small["offsets"][2]],
                                  ed.digit_events(img := load_digits().images[1], seed=ed.BASE_SEED + 1)["t"])
    # every column in the cache file's dtype, made per digit as it is emulated (no list of 32-byte events)
    assert {k: small[k].dtype for k in "xytp"} == {"x": np.uint8, "y": np.uint8, "t": np.uint32, "p": np.uint8}
    for i in range(3):
        events, lo, hi = ed.digit_events(load_digits().images[i], seed=ed.BASE_SEED + i), *small["offsets"][i:i + 2]
        for k in "xytp":
            np.testing.assert_array_equal(small[k][lo:hi], events[k])


def test_transforms_and_index_errors(event_digits_cache):
    ds = EventDigits("test", transform=len, target_transform=lambda y: -y, progress=False)
    n_events, neg_label = ds[3]
    assert n_events == len(EventDigits("test", progress=False)[3][0]) and neg_label <= 0
    with pytest.raises(IndexError, match="out of range"):
        ds[len(ds)]
    with pytest.raises(ValueError, match="split"):
        EventDigits("validation")


def test_cache_is_written_atomically_and_a_corrupt_file_is_rebuilt(cache_dir, monkeypatch):
    build = ed.build_event_digits
    monkeypatch.setattr(ed, "build_event_digits", lambda progress=True: build(progress=False, limit=20))
    monkeypatch.setattr(ed, "_MEMORY", {})
    path = ed.event_digits_cache_path()
    assert path.parent == cache_dir
    first = EventDigits("train", progress=False)
    assert path.is_file() and [p.name for p in cache_dir.iterdir()] == [path.name]  # no temp files left
    reference = first[0][0]
    path.write_bytes(path.read_bytes()[:1000])  # truncated
    monkeypatch.setattr(ed, "_MEMORY", {})
    with pytest.warns(UserWarning, match="corrupt"):
        again = EventDigits("train", progress=False)
    np.testing.assert_array_equal(again[0][0], reference)
    assert ed._read_cache(path) is not None


def test_registry_entry_needs_no_network(event_digits_cache):
    info = get_dataset("event_digits")
    assert info.bundled and info.sensor_size == (34, 34, 2) and info.num_classes == 10
    assert info.on_disk(info.root()) and info.location(info.root()) == ed.event_digits_cache_path()
    assert len(info.load("test", progress=False)) == 359


def test_a_cache_folder_that_cannot_be_written_costs_the_cache_not_the_run(tmp_path, monkeypatch):
    import errno

    import neurosim.data.event_digits as ed

    tiny = {"x": np.arange(3)}
    monkeypatch.setattr(ed, "build_event_digits", lambda progress=True: tiny)

    def read_only(path, data):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    import neurosim.data._cache as cache

    monkeypatch.setattr(cache, "atomic_write_bytes", read_only)  # the cache's one writer
    monkeypatch.setenv("NEUROSIM_CACHE_DIR", str(tmp_path / "ro"))
    with pytest.warns(RuntimeWarning, match="could not store the event digits in the cache folder .*Read-only file "
                                            "system.*NEUROSIM_CACHE_DIR"):
        assert ed.load_event_digits(tmp_path / "ro", progress=False) is tiny
    # a folder the cache's variable did not choose (a data.root): setting the variable would not move it
    with pytest.warns(RuntimeWarning, match=r"could not store the event digits in the folder .*Read-only file "
                                            r"system.*set data.root \(datasets prepare: --root; EventDigits: "
                                            r"cache_dir\) to a folder you can write, or leave it unset") as seen:
        assert ed.load_event_digits(tmp_path / "shared", progress=False) is tiny
    assert not any("NEUROSIM_CACHE_DIR" in str(w.message) for w in seen)


def test_a_data_root_is_where_the_bundled_digits_are_generated_and_read(event_digits_cache, tmp_path, monkeypatch):
    """data.root (neurosim train, lsm, continual's tasks.root, datasets prepare --root) was ignored for event_digits:
    the file went to the neurosim cache whatever the root, and a root holding it was never read."""
    from neurosim.config import DataConfig
    from neurosim.data.pipeline import load_frames

    info = get_dataset("event_digits")
    name = ed.event_digits_cache_path().name
    cached = event_digits_cache / name
    # the default root (None, or <cache>/datasets spelled out) keeps the file where it has always been
    assert info.location(info.root()) == info.location(info.root(event_digits_cache / "datasets")) == cached
    full = ed.load_event_digits(event_digits_cache, progress=False)
    made = []

    def build(progress=True):
        made.append(1)
        return full

    monkeypatch.setattr(ed, "build_event_digits", build)
    monkeypatch.setattr(ed, "_MEMORY", {})
    before = cached.stat().st_mtime_ns
    root = tmp_path / "data"
    assert info.location(info.root(root)) == root / name and not info.on_disk(info.root(root))
    frames, labels = load_frames(DataConfig(root=str(root), time_steps=3, test_subset=5), "test", progress=False)
    assert made == [1] and (root / name).is_file() and info.on_disk(info.root(root))  # generated under the root
    assert frames.shape == (5, 3, 2, 34, 34) and cached.stat().st_mtime_ns == before
    assert labels.tolist() == full["labels"][full["is_test"]][:5].tolist()
    # a root that holds the file is read, not generated again
    monkeypatch.setattr(ed, "_MEMORY", {})
    assert len(info.load("test", root, progress=False)) == 359 and made == [1]

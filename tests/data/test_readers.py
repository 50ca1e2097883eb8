"""Event-file readers: exact agreement with tonic on a real N-MNIST recording, and clear errors (naming the file,
and for N-MNIST the byte offset) for truncated, empty and garbage .bin / .npy / .h5 files; folder checks report
every bad file."""

from __future__ import annotations

import functools
import pickle

import h5py
import numpy as np
import pytest

from neurosim.data.readers import (NMNIST_DTYPE, SHD_DTYPE, CheckReport, EventFileError, check_files, read_events,
                                   read_nmnist_bin, read_npy_events, read_shd_h5)


def encode_nmnist(x, y, t, p) -> bytes:
    """N-MNIST 40-bit records (REFERENCES.md): b0 = x, b1 = y, b2 = p<<7 | t[22:16], b3 = t[15:8], b4 = t[7:0]."""
    x, y, t, p = (np.asarray(a, dtype=np.int64) for a in (x, y, t, p))
    rec = np.stack([x, y, (p << 7) | ((t >> 16) & 127), (t >> 8) & 255, t & 255], axis=1)
    return rec.astype(np.uint8).tobytes()


def _small_bin(n=50, seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, 300_000, n))
    return encode_nmnist(rng.integers(0, 34, n), rng.integers(0, 34, n), t, rng.integers(0, 2, n))


def _write_shd(path, samples, labels):
    with h5py.File(path, "w") as f:
        vt = f.create_dataset("spikes/times", (len(samples),), dtype=h5py.vlen_dtype(np.float32))
        vu = f.create_dataset("spikes/units", (len(samples),), dtype=h5py.vlen_dtype(np.uint16))
        for i, (t, u) in enumerate(samples):
            vt[i] = np.asarray(t, np.float32)
            vu[i] = np.asarray(u, np.uint16)
        f.create_dataset("labels", data=np.asarray(labels, np.uint16))
        f.create_dataset("extra/keys", data=np.array([b"zero", b"one", b"two"]))
        f.create_dataset("extra/speaker", data=np.zeros(len(samples), np.uint16))
    return path


def _shd_samples(n=4, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        k = int(rng.integers(5, 60))
        out.append((np.sort(rng.uniform(0, 1.0, k)), rng.integers(0, 700, k)))
    return out


# ---------------------------------------------------------------------------------------------------- N-MNIST


def test_real_nmnist_recording_matches_tonic_event_for_event(real_file):
    from tonic.datasets import NMNIST
    from tonic.io import read_mnist_file

    path = real_file("sample_nmnist.bin")
    ours = read_nmnist_bin(path)
    theirs = read_mnist_file(str(path), dtype=NMNIST.dtype)
    assert len(ours) == 4325
    assert ours.dtype == theirs.dtype == NMNIST.dtype == NMNIST_DTYPE
    assert ours.dtype.names == ("x", "y", "t", "p")
    np.testing.assert_array_equal(ours, theirs)
    assert ours["x"].min() >= 0 and ours["x"].max() < 34 and ours["y"].max() < 34
    assert np.all(np.diff(ours["t"]) >= 0) and 300_000 < ours["t"][-1] < 320_000
    assert set(np.unique(ours["p"])) == {0, 1}


def test_hand_encoded_records_decode_like_tonic_including_overflow(tmp_path):
    from tonic.io import read_mnist_file

    # an overflow marker (y = 240) in the middle: tonic adds 2**13 µs to it and everything after, then drops it
    data = encode_nmnist([1, 2], [3, 4], [100, 8000], [1, 0])
    data += bytes([0, 240, 0, 0, 0])
    data += encode_nmnist([5, 33], [6, 33], [50, (1 << 23) - 1 - 2**13], [1, 1])
    path = tmp_path / "x.bin"
    path.write_bytes(data)
    ours = read_nmnist_bin(path)
    np.testing.assert_array_equal(ours, read_mnist_file(str(path), dtype=NMNIST_DTYPE))
    assert ours["t"].tolist() == [100, 8000, 50 + 2**13, (1 << 23) - 1]
    assert ours["x"].tolist() == [1, 2, 5, 33] and ours["p"].tolist() == [1, 0, 1, 1]


def test_truncated_bin_names_file_and_offset_of_incomplete_record(tmp_path, real_file):
    data = real_file("sample_nmnist.bin").read_bytes()
    path = tmp_path / "cut.bin"
    path.write_bytes(data[:-2])  # 21,623 bytes: the last record has 3 of its 5 bytes
    with pytest.raises(EventFileError) as info:
        read_nmnist_bin(path)
    err = info.value
    assert isinstance(err, ValueError)
    assert str(path) in str(err) and "truncated" in str(err)
    assert err.offset == 21620 and "byte offset 21620" in str(err)
    assert err.path == path


@pytest.mark.parametrize("cut", [1, 4, 6, 4999])
def test_any_cut_that_splits_a_record_is_reported(tmp_path, cut):
    path = tmp_path / "cut.bin"
    path.write_bytes(_small_bin(1000)[:cut])
    with pytest.raises(EventFileError, match="truncated") as info:
        read_nmnist_bin(path)
    assert info.value.offset == cut - cut % 5


def test_empty_bin(tmp_path):
    path = tmp_path / "empty.bin"
    path.write_bytes(b"")
    with pytest.raises(EventFileError, match=r"empty file \(0 bytes\)") as info:
        read_nmnist_bin(path)
    assert str(path) in str(info.value) and info.value.offset == 0


def test_garbage_bin_reports_first_bad_record(tmp_path):
    good = _small_bin(20)
    path = tmp_path / "garbage.bin"
    path.write_bytes(good + bytes([200, 17, 0, 0, 0]) + good)  # record 20: x = 200 on a 34×34 sensor
    with pytest.raises(EventFileError, match="outside the 34×34 sensor") as info:
        read_nmnist_bin(path)
    assert info.value.offset == 100 and "byte offset 100" in str(info.value)
    assert str(path) in str(info.value)
    # random bytes of a valid length are refused too
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(EventFileError, match="not N-MNIST data"):
        read_nmnist_bin(path)
    # another sensor in the same format (N-Caltech101) is accepted when told
    path.write_bytes(encode_nmnist([200, 239], [17, 179], [5, 9], [0, 1]))
    assert len(read_nmnist_bin(path, sensor_size=(240, 180))) == 2
    assert len(read_nmnist_bin(path, sensor_size=None)) == 2


def test_time_going_backwards_is_garbage(tmp_path):
    path = tmp_path / "back.bin"
    path.write_bytes(encode_nmnist([1, 2, 3], [1, 2, 3], [10, 500, 20], [0, 1, 0]))
    with pytest.raises(EventFileError, match="goes back in time") as info:
        read_nmnist_bin(path)
    assert info.value.offset == 10
    assert len(read_nmnist_bin(path, validate=False)) == 3  # tonic-like: decode whatever is there


def test_only_overflow_markers_means_no_events(tmp_path):
    path = tmp_path / "markers.bin"
    path.write_bytes(bytes([0, 240, 0, 0, 0]) * 3)
    with pytest.raises(EventFileError, match="no events"):
        read_nmnist_bin(path)
    assert len(read_nmnist_bin(path, allow_empty=True)) == 0


def test_missing_file_is_an_event_file_error(tmp_path):
    with pytest.raises(EventFileError, match="no such file"):
        read_nmnist_bin(tmp_path / "nope.bin")


def test_event_file_error_survives_pickling(tmp_path):
    err = EventFileError(tmp_path / "a.bin", "truncated: x", offset=15)
    back = pickle.loads(pickle.dumps(err))
    assert str(back) == str(err) and back.offset == 15 and back.path == err.path


# ---------------------------------------------------------------------------------------------------- .npy


def test_npy_good_file_with_columns_matches_tonic_dvsgesture_layout(tmp_path):
    from tonic.datasets import DVSGesture

    arr = np.array([[1, 2, 0, 10], [127, 5, 1, 20]], dtype=np.float64)  # x, y, p, t
    np.save(tmp_path / "0.npy", arr)
    raw = read_npy_events(tmp_path / "0.npy")
    np.testing.assert_array_equal(raw, arr)
    ev = read_npy_events(tmp_path / "0.npy", columns=("x", "y", "p", "t"), dtype=DVSGesture.dtype)
    assert ev.dtype == DVSGesture.dtype
    assert ev["x"].tolist() == [1, 127] and ev["t"].tolist() == [10, 20] and ev["p"].tolist() == [False, True]
    # POKERDVS order t, x, y, p into a default dtype
    ev = read_npy_events(tmp_path / "0.npy", columns=("t", "x", "y", "p"))
    assert ev.dtype.names == ("t", "x", "y", "p") and ev["t"].tolist() == [1, 127]


@pytest.mark.parametrize("row, word", [([128, 2, 1, 5], "x=128"), ([-3, 4, 0, 7], "x=-3"), ([1, 200, 0, 7], "y=200"),
                                       ([1, 2, 7, 9], "p=7")])
def test_npy_events_outside_the_sensor_are_named(tmp_path, row, word):
    np.save(tmp_path / "0.npy", np.array([[0, 0, 1, 1], row], dtype=np.float64))
    with pytest.raises(EventFileError, match=rf"event 1 has {word}.*\(128, 128, 2\) sensor"):
        read_npy_events(tmp_path / "0.npy", columns=("x", "y", "p", "t"), sensor_size=(128, 128, 2))
    read_npy_events(tmp_path / "0.npy", columns=("x", "y", "p", "t"))  # no sensor given: not checked


def test_npy_structured_array(tmp_path):
    ev = np.zeros(3, dtype=NMNIST_DTYPE)
    ev["t"] = [1, 2, 3]
    np.save(tmp_path / "s.npy", ev)
    np.testing.assert_array_equal(read_npy_events(tmp_path / "s.npy"), ev)


def test_truncated_npy(tmp_path):
    np.save(tmp_path / "full.npy", np.arange(400, dtype=np.int64).reshape(100, 4))
    data = (tmp_path / "full.npy").read_bytes()
    path = tmp_path / "cut.npy"
    path.write_bytes(data[:-37])
    with pytest.raises(EventFileError, match=r"truncated: the header announces \(100, 4\)") as info:
        read_npy_events(path)
    assert str(path) in str(info.value)
    path.write_bytes(data[:50])  # inside the header
    with pytest.raises(EventFileError, match="corrupt .npy header") as info:
        read_npy_events(path)
    assert str(path) in str(info.value)


def test_empty_and_garbage_npy(tmp_path):
    path = tmp_path / "e.npy"
    path.write_bytes(b"")
    with pytest.raises(EventFileError, match=r"empty file \(0 bytes\)") as info:
        read_npy_events(path)
    assert str(path) in str(info.value)
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8).tobytes())
    with pytest.raises(EventFileError, match="not a .npy file") as info:
        read_npy_events(path)
    assert str(path) in str(info.value)


def test_npy_content_checks(tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, np.zeros((0, 4)))
    with pytest.raises(EventFileError, match="no events"):
        read_npy_events(path)
    assert read_npy_events(path, allow_empty=True).shape == (0, 4)
    np.save(path, np.zeros((5, 3)))
    with pytest.raises(EventFileError, match="expected 4 columns"):
        read_npy_events(path, columns=("x", "y", "p", "t"))
    np.save(path, np.zeros(7))
    with pytest.raises(EventFileError, match="2-D"):
        read_npy_events(path)
    np.save(path, np.array([[1.0, 2.0], [np.nan, 1.0]]))
    with pytest.raises(EventFileError, match="non-finite value .* in event 1"):
        read_npy_events(path)
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(EventFileError, match="Python objects"):
        read_npy_events(path)


# ---------------------------------------------------------------------------------------------------- .h5


def test_shd_h5_matches_tonic_shd(tmp_path):
    from tonic.datasets import SHD

    samples = _shd_samples(5)
    root = tmp_path / "data"
    (root / "SHD").mkdir(parents=True)
    path = _write_shd(root / "SHD" / "shd_train.h5", samples, [0, 1, 2, 1, 0])
    (root / "SHD" / "shd_train.h5.zip").write_bytes(b"")  # tonic only checks that the archive exists
    ours = read_shd_h5(path)
    ds = SHD(str(root), train=True)
    assert len(ours) == len(ds) == 5
    assert ours.keys == ["zero", "one", "two"] and ours.labels.tolist() == [0, 1, 2, 1, 0]
    for i in range(5):
        ev, label = ds[i]
        assert ours.events[i].dtype == ev.dtype == SHD.dtype == SHD_DTYPE
        np.testing.assert_array_equal(ours.events[i], ev)
        assert ours[i][1] == label


def test_truncated_empty_and_garbage_h5(tmp_path):
    good = _write_shd(tmp_path / "good.h5", _shd_samples(30), [0] * 30)
    data = good.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(EventFileError, match="truncated: the HDF5 file has") as info:
        read_shd_h5(cut)
    assert str(cut) in str(info.value)
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    with pytest.raises(EventFileError, match=r"empty file \(0 bytes\)") as info:
        read_shd_h5(empty)
    assert str(empty) in str(info.value)
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(EventFileError, match="not an HDF5 file") as info:
        read_shd_h5(garbage)
    assert str(garbage) in str(info.value)


def test_h5_structure_checks(tmp_path):
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f["labels"] = np.arange(3)
    with pytest.raises(EventFileError, match="no dataset 'spikes/times'"):
        read_shd_h5(path)
    _write_shd(path, _shd_samples(3), [0, 1])
    with pytest.raises(EventFileError, match="sample counts differ"):
        read_shd_h5(path)
    _write_shd(path, [(np.array([0.1, 0.2]), np.array([3, 800]))], [0])
    with pytest.raises(EventFileError, match=r"units must be in \[0, 700\)"):
        read_shd_h5(path)
    _write_shd(path, [(np.array([0.1, -0.2]), np.array([3, 4]))], [0])
    with pytest.raises(EventFileError, match="finite and >= 0"):
        read_shd_h5(path)
    with h5py.File(path, "w") as f:
        vt = f.create_dataset("spikes/times", (1,), dtype=h5py.vlen_dtype(np.float32))
        vu = f.create_dataset("spikes/units", (1,), dtype=h5py.vlen_dtype(np.uint16))
        vt[0] = np.array([0.1, 0.2], np.float32)
        vu[0] = np.array([1], np.uint16)
        f["labels"] = np.array([0])
    with pytest.raises(EventFileError, match="sample 0: spikes/times has"):
        read_shd_h5(path)


# ---------------------------------------------------------------------------------------------------- check_files


def _mixed_folder(root, real_bin: bytes):
    (root / "0").mkdir(parents=True)
    (root / "1").mkdir()
    (root / "0" / "a.bin").write_bytes(real_bin)
    (root / "0" / "b_truncated.bin").write_bytes(real_bin[:-3])
    (root / "1" / "c.bin").write_bytes(_small_bin(40, seed=2))
    (root / "1" / "d_empty.bin").write_bytes(b"")
    (root / "1" / "e_garbage.bin").write_bytes(np.random.default_rng(5).integers(0, 256, 500, dtype=np.uint8)
                                               .tobytes())
    np.save(root / "f.npy", np.ones((4, 4)))
    (root / "g_bad.npy").write_bytes(b"\x93NUMPY nonsense")
    _write_shd(root / "h.h5", _shd_samples(2), [0, 1])
    (root / "i_bad.h5").write_bytes(b"not hdf5 at all")
    (root / "train.zip").write_bytes(b"")        # not an event file: skipped
    (root / ".hidden.bin").write_bytes(b"x")     # hidden: skipped
    return {"0/b_truncated.bin", "1/d_empty.bin", "1/e_garbage.bin", "g_bad.npy", "i_bad.h5"}


def test_check_files_reports_every_bad_file_in_a_mixed_folder(tmp_path, real_file):
    expected_bad = _mixed_folder(tmp_path / "ds", real_file("sample_nmnist.bin").read_bytes())
    report = check_files(tmp_path / "ds")
    assert isinstance(report, CheckReport)
    bad = {b.path.relative_to(tmp_path / "ds").as_posix(): b.reason for b in report.bad}
    assert set(bad) == expected_bad
    assert {p.relative_to(tmp_path / "ds").as_posix() for p in report.ok} == {"0/a.bin", "1/c.bin", "f.npy", "h.h5"}
    assert report.n_checked == 9 and not report.all_ok
    assert "byte offset 21620" in bad["0/b_truncated.bin"] and "truncated" in bad["0/b_truncated.bin"]
    assert "empty file" in bad["1/d_empty.bin"]
    assert "not N-MNIST data" in bad["1/e_garbage.bin"]
    text = report.format()
    assert text.splitlines()[0].endswith("4 ok, 5 bad")
    for name in expected_bad:
        assert name in text
    assert "and 3 more bad files" in report.format(max_bad=2)


def test_check_files_with_a_dataset_reader_and_suffixes(tmp_path, real_file):
    _mixed_folder(tmp_path / "ds", real_file("sample_nmnist.bin").read_bytes())
    report = check_files(tmp_path / "ds", reader=functools.partial(read_nmnist_bin, sensor_size=(34, 34)),
                         suffixes=[".bin"])
    assert report.n_checked == 5 and len(report.bad) == 3
    # non-EventFileError exceptions from a custom reader are reported too, and the scan goes on
    calls = []

    def flaky(path):
        calls.append(path)
        if path.name == "a.bin":
            raise RuntimeError("boom")

    report = check_files(tmp_path / "ds", reader=flaky, suffixes=["bin"])
    assert len(calls) == 5 and [b.reason for b in report.bad] == ["RuntimeError: boom"]


def test_check_files_on_a_list_single_file_and_empty_or_missing_folder(tmp_path):
    (tmp_path / "a.bin").write_bytes(_small_bin())
    (tmp_path / "b.bin").write_bytes(b"")
    report = check_files([tmp_path / "a.bin", tmp_path / "b.bin", tmp_path / "missing.bin"])
    assert [p.name for p in report.ok] == ["a.bin"]
    assert [b.path.name for b in report.bad] == ["b.bin", "missing.bin"]
    assert "no such file" in report.bad[1].reason
    assert check_files(tmp_path / "a.bin").all_ok
    (tmp_path / "empty").mkdir()
    report = check_files(tmp_path / "empty")
    assert report.n_checked == 0 and "no event files found" in report.format()
    with pytest.raises(FileNotFoundError):
        check_files(tmp_path / "does-not-exist")


def test_read_events_dispatches_by_suffix(tmp_path, real_file):
    assert len(read_events(real_file("sample_nmnist.bin"))) == 4325
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(EventFileError, match="unknown event file type"):
        read_events(tmp_path / "x.txt")


def test_read_events_on_an_aedat4_file_says_to_convert_it_with_tonic(tmp_path):
    # it said only "unknown event file type '.aedat4'", not the README's recipe
    path = tmp_path / "rec.AEDAT4"
    path.write_bytes(b"#!AER-DAT4.0\r\n")
    with pytest.raises(EventFileError, match=r"rec.AEDAT4: an AEDAT4 recording, which neurosim does not read itself: "
                                             r"convert it with tonic to a .npy of tonic's events, "
                                             r"np.save\('rec.npy', tonic.io.read_aedat4\('rec.AEDAT4'\)\), and read "
                                             r"that"):
        read_events(path)


def test_a_plain_array_stored_one_row_per_column_says_to_transpose_it(tmp_path):
    # np.save(f, np.stack([t, x, y, p])) gives (4, N): "expected 4 columns, got shape (4, 100)" left the cause out
    path = tmp_path / "rows.npy"
    np.save(path, np.zeros((4, 100), dtype=np.int64))
    with pytest.raises(EventFileError, match=r"got shape \(4, 100\): one row per column\? store the array transposed "
                                             r"\(100 events × 4 columns, np.save\(file, a.T\)\)"):
        read_npy_events(path, columns=("t", "x", "y", "p"))
    np.save(path, np.zeros((5, 3)))  # neither way round: no such advice
    with pytest.raises(EventFileError, match=r"got shape \(5, 3\)$"):
        read_npy_events(path, columns=("t", "x", "y", "p"))

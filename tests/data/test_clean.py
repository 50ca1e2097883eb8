"""neurosim.data.clean / `neurosim datasets clean`: the cache entries no run reads again, and only neurosim's."""

from __future__ import annotations

import os

import numpy as np

from neurosim.cli import main
from neurosim.config import DataConfig
from neurosim.data import make_loaders
from neurosim.data.dvs import EVENT_DTYPE


def _recordings(root, n=2):
    for split in ("train", "test"):
        for label in range(2):
            (root / split / f"c{label}").mkdir(parents=True, exist_ok=True)
            for i in range(n):
                ev = np.zeros(20, EVENT_DTYPE)
                ev["t"], ev["x"], ev["y"], ev["p"] = np.arange(20) * 100, label * 3, i, i % 2
                np.save(root / split / f"c{label}" / f"{i}.npy", ev)
    (root / "dataset.toml").write_text("sensor_size = [8, 4, 2]\n")


def _tree(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_clean_removes_old_named_old_format_and_changed_data_entries_and_nothing_else(tmp_path, monkeypatch, capsys):
    # a folder dataset's entries were named frames/folder:/ABS/PATH/<name>_<split>_<hash>.*, and are
    # frames/folder-<name>_<split>_<hash>.* now: the old ones, and every entry of recordings since changed, stayed
    # on disk for ever, with no command to find them
    cache = tmp_path / "cache"
    monkeypatch.setenv("NEUROSIM_CACHE_DIR", str(cache))
    rec = tmp_path / "rec"
    _recordings(rec)
    cfg = DataConfig(dataset=f"folder:{rec}", time_steps=3, batch_size=2)
    make_loaders(cfg, progress=False)
    frames = cache / "frames"
    before = {p.name for p in frames.iterdir()}  # the entries of the recordings as they were
    assert len(before) == 6
    np.save(rec / "train" / "c0" / "2.npy", np.load(rec / "train" / "c0" / "0.npy"))  # a recording added
    make_loaders(cfg, progress=False)
    now = {p.name for p in frames.iterdir()} - before
    assert len(now) == 6
    old = frames / "folder:" / str(rec).lstrip("/")  # what an earlier neurosim left
    old.mkdir(parents=True)
    for part in ("json", "frames.bin", "labels.bin"):
        (old / f"rec_train_0123456789abcdef.{part}").write_bytes(b"x" * 100)
    (old / "notes.txt").write_text("mine")  # not neurosim's: stays, and so does its folder
    (frames / "nmnist_train_00112233aabbccdd.npz").write_bytes(b"z" * 10)  # FRAMES_FORMAT 1
    (frames / "mine.txt").write_text("mine")
    (frames / "arrays_train_aaaaaaaaaaaaaaaa.frames.bin").write_bytes(b"")  # an entry being written: no key file
    (cache / "event_digits_v2.npz").write_bytes(b"d" * 7)
    (cache / "event_digits_v3.npz").write_bytes(b"d")  # this version's
    (cache / "datasets" / "NMNIST").mkdir(parents=True)
    (cache / "datasets" / "NMNIST" / "x_train_0123456789abcdef.json").write_text("{}")  # a download's, never taken
    everything = _tree(cache)

    assert main(["datasets", "clean", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert _tree(cache) == everything  # nothing removed
    lines = out.splitlines()
    assert lines[0].startswith(f"5 stale cache entries in {cache}, ")
    assert f"  frames/folder:/{str(rec).lstrip('/')}/rec_train_0123456789abcdef.json +.frames.bin +.labels.bin: " \
           "300 B, named as before a folder dataset's entries were folder-<name>_<split>_<hash>" in out
    assert "  frames/nmnist_train_00112233aabbccdd.npz: 10 B, of the old frame-cache format" in out
    assert "  event_digits_v2.npz: 7 B, the event digits of version 2, older than this neurosim's 3" in out
    changed = [ln for ln in lines if f"its data, {rec}, changed since" in ln]
    assert len(changed) == 2 and all(ln.split(":")[0].strip()[len("frames/"):].split(" ")[0] in before
                                     for ln in changed)
    assert lines[-1].startswith("--dry-run: nothing removed")

    served = {name: os.stat(frames / name).st_mtime_ns for name in now}
    assert main(["-q", "datasets", "clean"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "removed 11 files"  # 3 + 1 + 1 + 2 × 3
    assert sorted(p.name for p in frames.iterdir()) == sorted(
        now | {"folder:", "mine.txt", "arrays_train_aaaaaaaaaaaaaaaa.frames.bin"})
    left = [p for p in (frames / "folder:").rglob("*") if not p.is_dir()]
    assert left == [old / "notes.txt"] and (old / "notes.txt").read_text() == "mine"  # (and the folders to it)
    assert sorted(p.name for p in cache.iterdir()) == ["datasets", "event_digits_v3.npz", "frames"]
    assert (cache / "datasets" / "NMNIST" / "x_train_0123456789abcdef.json").is_file()
    make_loaders(cfg, progress=False)  # the current entries are served as they were
    assert {name: os.stat(frames / name).st_mtime_ns for name in now} == served
    assert main(["datasets", "clean"]) == 0
    assert capsys.readouterr().out == f"no stale cache files in {cache}\n"


def test_clean_takes_an_old_chain_whole_where_only_neurosims_files_are_in_it_and_never_follows_links(
        tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache"
    monkeypatch.setenv("NEUROSIM_CACHE_DIR", str(cache))
    old = cache / "frames" / "folder:" / "data" / "rec"
    old.mkdir(parents=True)
    (old / "rec_test_0123456789abcdef.npz").write_bytes(b"x")  # (FRAMES_FORMAT 1 under the old name)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "rec_test_fedcba9876543210.json").write_text("{}")  # neurosim-like names behind a link
    (old / "linked").symlink_to(elsewhere, target_is_directory=True)
    (old / "link_train_0123456789abcdef.json").symlink_to(elsewhere / "rec_test_fedcba9876543210.json")
    assert main(["datasets", "clean"]) == 0
    assert "1 stale cache entry in" in capsys.readouterr().out
    assert (elsewhere / "rec_test_fedcba9876543210.json").is_file()
    assert sorted(p.name for p in old.iterdir()) == ["link_train_0123456789abcdef.json", "linked"]
    (old / "linked").unlink()
    (old / "link_train_0123456789abcdef.json").unlink()
    assert main(["datasets", "clean"]) == 0  # nothing stale; the empty chain goes only with an entry removed
    (old / "rec_train_0123456789abcdef.npz").write_bytes(b"x")
    assert main(["datasets", "clean"]) == 0
    assert sorted(p.name for p in (cache / "frames").iterdir()) == []



def test_clean_leaves_keys_of_ones_own_and_a_newer_neurosims_files(tmp_path, monkeypatch, capsys):
    # taken before, though runs read them: cached_frames keys of one's own whose "source" is no dataset folder, or
    # whose fingerprint is not source_fingerprint's ("its data ... is gone or holds no files"), a newer neurosim's key
    # ("of frame-cache format 3, not this neurosim's 2") and event digits, sharing the cache from another environment
    from neurosim.data.event_digits import VERSION
    from neurosim.data.frames import FRAMES_FORMAT, cached_frames

    cache = tmp_path / "cache"
    monkeypatch.setenv("NEUROSIM_CACHE_DIR", str(cache))
    frames, labels = np.zeros((2, 3, 1, 2, 2), np.uint8), np.zeros(2, np.int64)
    for source, fingerprint in (("s3://bucket/mine-v1", "sha256:abc"), ("mine", [1, 2, 3, 4]),
                                (str(tmp_path / "gone"), "v1")):
        cached_frames({"dataset": "mine", "split": "train", "n_time_bins": 3, "sensor_size": [2, 2, 1],
                       "source": source, "fingerprint": fingerprint}, lambda: (frames, labels))
    cached_frames({"dataset": "mine", "split": "test", "source": str(tmp_path / "gone"), "fingerprint": [1, 2, 3, 4],
                   "note": "mine"}, lambda: (frames, labels))  # (another field than frame_cache_key's)
    (cache / "frames" / "nmnist_train_0123456789abcdef.json").write_text(f'{{"format": {FRAMES_FORMAT + 1}}}')
    (cache / f"event_digits_v{VERSION + 1}.npz").write_bytes(b"d")
    mine = _tree(cache)
    assert len([p for p in mine if p.endswith(".json")]) == 5
    assert main(["datasets", "clean"]) == 0
    assert capsys.readouterr().out == f"no stale cache files in {cache}\n" and _tree(cache) == mine
    (cache / f"event_digits_v{VERSION - 1}.npz").write_bytes(b"d")  # an older version's go
    assert main(["datasets", "clean"]) == 0
    assert capsys.readouterr().out.endswith("removed 1 file\n") and _tree(cache) == mine


def test_clean_looks_through_a_cache_folder_and_a_frames_folder_that_are_links(tmp_path, monkeypatch, capsys):
    # a cache folder that is a link (moved to another disk) was not looked into for event digits, a frames/ that is
    # one not at all: "no stale cache files", though neurosim reads and writes through both
    from neurosim.data.event_digits import VERSION

    disk = tmp_path / "disk"
    (disk / "cache").mkdir(parents=True)
    (disk / "frames").mkdir()
    cache = tmp_path / "cache"
    cache.symlink_to(disk / "cache", target_is_directory=True)
    (disk / "cache" / "frames").symlink_to(disk / "frames", target_is_directory=True)
    monkeypatch.setenv("NEUROSIM_CACHE_DIR", str(cache))
    (disk / "frames" / "rec_train_0123456789abcdef.npz").write_bytes(b"x" * 10)
    (disk / "frames" / "mine.txt").write_text("mine")
    (disk / "cache" / f"event_digits_v{VERSION - 1}.npz").write_bytes(b"d")
    assert main(["datasets", "clean"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"2 stale cache entries in {cache}, ") and out.endswith("removed 2 files\n")
    assert _tree(disk) == ["cache", "cache/frames", "frames", "frames/mine.txt"]
    assert cache.is_symlink() and (cache / "frames").is_symlink()

"""``neurosim datasets list | prepare | check``, offline: prepare calls tonic's download only when the data is not on
disk (a fake download stands in for the network), works without network when it is, and check lists every bad
file instead of stopping at the first."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import fixture_writers as fw
from neurosim.cli import main
from neurosim.data import DATASETS

HAVE_READERS = importlib.util.find_spec("neurosim.data.readers") is not None
needs_readers = pytest.mark.skipif(not HAVE_READERS, reason="neurosim.data.readers (the checking readers) is not in "
                                                            "this checkout")


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No download can happen; a private frame cache; returns the dataset root."""
    fw.forbid_downloads(monkeypatch)
    monkeypatch.setenv("NEUROSIM_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "data"


def _rows(out: str) -> dict[str, str]:
    return {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}


def test_quiet_goes_anywhere_on_the_command_line(offline, capsys):
    for argv in (["-q", "datasets", "list"], ["datasets", "-q", "list"], ["datasets", "list", "-q"]):
        assert main(argv) == 0, argv
        assert "event_digits" in capsys.readouterr().out


@pytest.mark.parametrize("command, says", [
    ([], "no progress bars (prepare's download and frame conversion, check's reading of the files)"),
    (["list"], "no effect here: list shows no progress bar"),
    (["prepare"], "no progress bars (tonic's download, the frame conversion)"),
    (["check"], "no progress bar while the files are read; the report of the bad files is still printed")])
def test_quiet_help_says_what_it_does_under_datasets(capsys, command, says):
    # it read "... train's and demo's per-epoch metrics ..., continual's per-(method, seed) results", the others'
    with pytest.raises(SystemExit):
        main(["datasets", *command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    quiet = text[text.index("-q, --quiet"):]
    assert says in quiet and "train's" not in quiet and "continual" not in quiet


def test_list_shows_every_dataset_with_status_and_path(offline, capsys):
    fw.write_dataset("shd", offline)
    assert main(["datasets", "list", "--root", str(offline)]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert out.splitlines()[0].split() == ["name", "status", "sensor", "classes", "T", "config", "size", "path"]
    assert set(rows) == set(DATASETS)
    assert "on disk" in rows["shd"] and "not on disk" not in rows["shd"] and str(offline / "SHD") in rows["shd"]
    assert "700x1x1" in rows["shd"] and " shd " in rows["shd"]
    for name in ("nmnist", "dvsgesture", "ssc", "pokerdvs", "ncaltech101", "cifar10dvs"):
        assert "not on disk" in rows[name] and str(offline / DATASETS[name].location(offline).name) in rows[name]
    assert "about 1 GB download" in rows["nmnist"]


def test_list_counts_the_classes_the_files_on_disk_name_where_they_name_them(offline, capsys):
    """SHD files of one's own (write_shd_h5, 3 classes) were listed with the registry's 20 classes."""
    from neurosim.data.audio import write_shd_h5
    from neurosim.data.readers import SHD_DTYPE

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        samples = []
        for label in range(3):
            ev = np.zeros(10, dtype=SHD_DTYPE)
            ev["t"], ev["x"], ev["p"] = np.sort(rng.integers(0, 10_000, 10)), rng.integers(0, 700, 10), 1
            samples.append(ev)
        write_shd_h5(offline / "SHD" / f"shd_{split}.h5", samples, [0, 1, 2])
        (offline / "SHD" / f"shd_{split}.h5.zip").write_bytes(b"")
    assert main(["datasets", "list", "--root", str(offline)]) == 0
    captured = capsys.readouterr()
    rows = _rows(captured.out)
    assert rows["shd"].split()[4] == "3" and "on disk" in rows["shd"]  # name, on, disk, sensor, classes
    assert rows["ssc"].split()[5] == str(DATASETS["ssc"].num_classes)  # not on disk: the registry's 35
    assert "classes: as the files on disk name them for shd, the registry's count for the others" in captured.err
    assert main(["datasets", "list", "--root", str(offline / "none")]) == 0
    captured = capsys.readouterr()
    assert _rows(captured.out)["shd"].split()[5] == "20" and "classes: the registry's count\n" in captured.err


def test_prepare_downloads_through_tonic_only_what_is_missing(offline, monkeypatch, capsys):
    import tonic.datasets

    calls = []

    def fake_download(self):  # what tonic's download_and_extract_archive leaves behind, written offline
        calls.append((type(self).__name__, self.filename, self.location_on_system))
        split = "train" if "train" in self.filename else "test"
        fw.write_shd(Path(self.location_on_system).parent, split, n_samples=20)

    monkeypatch.setattr(tonic.datasets.SHD, "download", fake_download)
    monkeypatch.delenv("NEUROSIM_OFFLINE")  # the download itself is faked above
    assert main(["-q", "datasets", "prepare", "shd", "--root", str(offline)]) == 0
    out = capsys.readouterr().out
    loc = str(offline / "SHD")
    assert calls == [("SHD", "shd_train.h5.zip", loc), ("SHD", "shd_test.h5.zip", loc)]
    assert f"location: {offline / 'SHD'} (not on disk yet: about 0.2 GB download" in out
    assert "ready: 20 train, 20 test samples" in out
    assert "frames cached (train): [20, 100, 1, 1, 700]" in out
    assert f"neurosim train --config shd --set data.root={offline}" in out
    entries = sorted(p.name.split("_", 2)[1] + p.name[p.name.index("."):]
                     for p in (offline.parent / "cache" / "frames").glob("shd_*"))
    assert entries == ["test.frames.bin", "test.json", "test.labels.bin", "train.frames.bin", "train.json",
                       "train.labels.bin"]  # each split's arrays and the key file written after them
    # again: everything is there, tonic is not asked to download
    assert main(["-q", "datasets", "prepare", "shd", "--root", str(offline)]) == 0
    assert len(calls) == 2


def test_prepare_works_offline_when_the_files_are_there(offline, capsys):
    fw.write_dataset("dvsgesture", offline, n_users=10, events_per_file=16)
    assert main(["-q", "datasets", "prepare", "dvsgesture", "--root", str(offline), "--time-steps", "3"]) == 0
    out = capsys.readouterr().out
    assert "ready: 110 train, 110 test samples" in out and "frames cached (test): [110, 3, 2, 128, 128]" in out
    assert "not on disk yet" not in out
    # the printed command reuses these frames: same (absolute) root, same time steps
    assert f"neurosim train --config dvsgesture --set data.root={offline.resolve()} data.time_steps=3" in out


def test_a_relative_root_keys_the_frame_cache_like_its_absolute_path(offline, monkeypatch):
    from neurosim.config import DataConfig
    from neurosim.data.pipeline import frame_cache_key

    fw.write_dataset("pokerdvs", offline)
    monkeypatch.chdir(offline.parent)
    relative = DataConfig(dataset="pokerdvs", root=offline.name, time_steps=2)
    absolute = DataConfig(dataset="pokerdvs", root=str(offline.resolve()), time_steps=2)
    assert frame_cache_key(relative, "train") == frame_cache_key(absolute, "train")


def test_prepare_refuses_cleanly(offline, capsys, monkeypatch):
    fw.write_cifar10dvs(offline / "c")
    if importlib.util.find_spec("aedat") is None:  # the reader is checked before anything is downloaded
        assert main(["-q", "datasets", "prepare", "cifar10dvs", "--root", str(offline / "d")]) == 2
        assert "pip install aedat" in capsys.readouterr().err
    # POKER-DVS: tonic copies it from its own package folder, which its PyPI wheel lacks
    import tonic.datasets

    def missing_archive(self):
        raise FileNotFoundError(f"Local data file {self.filename} not found")

    monkeypatch.setattr(tonic.datasets.POKERDVS, "_copy_and_extract_local_data", missing_archive)
    assert main(["-q", "datasets", "prepare", "pokerdvs", "--root", str(offline)]) == 2
    err = capsys.readouterr().err
    assert "github.com/neuromorphs/tonic" in err and str(offline / "POKERDVS") in err
    with pytest.raises(SystemExit) as e:
        main(["datasets", "prepare", "mnist"])
    assert e.value.code == 2 and "unknown dataset" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["datasets", "prepare", "shd", "--time-steps", "0"])


def test_prepare_accepts_a_pokerdvs_archive_placed_by_hand(offline, capsys, tmp_path):
    import tarfile

    src = tmp_path / "src"
    fw.write_dataset("pokerdvs", src)
    loc = offline / "POKERDVS"
    loc.mkdir(parents=True)
    for split in ("train", "test"):
        with tarfile.open(loc / f"pips_{split}.tar.gz", "w:gz") as tar:
            tar.add(src / "POKERDVS" / f"pips_{split}", arcname=f"pips_{split}")
    assert main(["-q", "datasets", "prepare", "pokerdvs", "--root", str(offline), "--no-frames"]) == 0
    assert "ready: 20 train, 20 test samples" in capsys.readouterr().out


@needs_readers
def test_check_reports_every_bad_file(offline, capsys):
    fw.write_dataset("dvsgesture", offline, n_users=10, events_per_file=8)
    folder = offline / "DVSGesture" / "ibmGestureTrain"
    users = sorted(folder.iterdir())
    (users[0] / "3.npy").write_bytes(b"")  # empty
    good = (users[1] / "4.npy").read_bytes()
    (users[1] / "4.npy").write_bytes(good[:-7])  # truncated
    (users[2] / "5.npy").write_bytes(np.random.default_rng(0).bytes(300))  # garbage
    np.save(users[3] / "6.npy", np.array([[500.0, 2, 1, 5], [3, 4, 1, 7]]))  # x beyond the 128-pixel sensor
    (users[4] / "._7.npy").write_bytes(b"\x00\x05\x16\x07")  # macOS resource fork: not an event file, skipped
    assert main(["-q", "datasets", "check", "dvsgesture", "--root", str(offline)]) == 1
    out = capsys.readouterr().out
    assert "checked 220 files" in out and "216 ok, 4 bad" in out
    for k, bad, word in ((0, "3.npy", "empty"), (1, "4.npy", "truncated"), (2, "5.npy", "not a .npy file"),
                         (3, "6.npy", "x=500.0, outside [0, 128)")):
        line = next(ln for ln in out.splitlines() if f"{users[k].name}/{bad}:" in ln)
        assert word in line
    assert main(["-q", "datasets", "check", "dvsgesture", "--root", str(offline), "--max-bad", "1"]) == 1
    assert "and 3 more bad files" in capsys.readouterr().out


@needs_readers
def test_check_nmnist_bin_files_names_byte_offsets(offline, capsys):
    fw.write_nmnist(offline, "train", n_files=30)
    folder = offline / "NMNIST" / "Train"
    f1, f2 = sorted(folder.rglob("*.bin"))[:2]
    f1.write_bytes(f1.read_bytes()[:-2])  # truncated last record
    f2.write_bytes(f2.read_bytes()[:10] + bytes([200, 1, 0, 0, 0]) + f2.read_bytes()[15:])  # x = 200 off the sensor
    assert main(["-q", "datasets", "check", "nmnist", "--root", str(offline)]) == 1
    out = capsys.readouterr().out
    assert "30 files" in out and "28 ok, 2 bad" in out
    assert f"{f1.relative_to(folder)}: truncated" in out and "(byte offset 115)" in out
    assert f"{f2.relative_to(folder)}: not N-MNIST data" in out and "(byte offset 10)" in out


@needs_readers
def test_check_shd_and_clean_datasets(offline, capsys):
    fw.write_dataset("shd", offline)
    assert main(["-q", "datasets", "check", "shd", "--root", str(offline)]) == 0
    assert "2 ok, 0 bad" in capsys.readouterr().out
    h5 = offline / "SHD" / "shd_test.h5"
    h5.write_bytes(h5.read_bytes()[:1000])
    assert main(["-q", "datasets", "check", "shd", "--root", str(offline)]) == 1
    assert "shd_test.h5: truncated" in capsys.readouterr().out


def test_check_without_data_or_reader_is_a_one_line_error(offline, capsys):
    assert main(["-q", "datasets", "check", "nmnist", "--root", str(offline)]) == 2
    err = capsys.readouterr().err
    assert f"{offline / 'NMNIST'} does not exist" in err
    assert err.startswith("neurosim datasets check: error: "), err  # as its other errors (was `neurosim datasets:`)
    fw.write_cifar10dvs(offline, n_files=3)
    if importlib.util.find_spec("aedat") is None:
        assert main(["-q", "datasets", "check", "cifar10dvs", "--root", str(offline)]) == 2
        assert "pip install aedat" in capsys.readouterr().err
    assert main(["-q", "datasets", "check", "event_digits"]) == 0
    assert "nothing to check" in capsys.readouterr().out


def _full_cache(monkeypatch):
    """The cache's one writer, on a full disk: a pathless ENOSPC, as write() gives (atomic_write_bytes adds the path)."""
    import errno

    import neurosim.data._cache as cache

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(cache, "atomic_write_bytes", full)


def test_prepare_on_a_full_cache_disk_fails_naming_the_file_the_cause_and_what_to_do(offline, capsys, monkeypatch):
    # it printed "ready: ... in <cache>/event_digits_v3.npz" and "frames cached" and exited 0, with nothing written
    import neurosim.data.event_digits as ed

    monkeypatch.setattr(ed, "_MEMORY", {})
    monkeypatch.setattr(ed, "build_event_digits", lambda progress=True: {"x": np.arange(3)})  # (fails before use)
    _full_cache(monkeypatch)
    assert main(["-q", "datasets", "prepare", "event_digits"]) == 1
    out, err = capsys.readouterr()
    assert "ready" not in out and "frames cached" not in out
    cache = offline.parent / "cache"
    assert err == (f"neurosim datasets prepare: error: could not store the event digits in {cache / 'event_digits_v3.npz'}"
                   " (No space left on device): free space on that disk, or set NEUROSIM_CACHE_DIR to a folder on a "
                   f"disk with space (it is {cache} now), then run this again\n")


def test_prepare_fails_when_the_frames_cannot_be_cached(offline, capsys, monkeypatch):
    fw.write_dataset("dvsgesture", offline, n_users=10, events_per_file=16)
    _full_cache(monkeypatch)
    assert main(["-q", "datasets", "prepare", "dvsgesture", "--root", str(offline), "--time-steps", "3"]) == 1
    out, err = capsys.readouterr()
    assert "frames cached" not in out
    assert err.startswith(f"neurosim datasets prepare: error: could not store the frames in {offline.parent / 'cache'}"
                          "/frames/dvsgesture_train_") and "(No space left on device): free space" in err


def test_prepare_of_shd_files_of_ones_own_prints_their_number_of_classes(offline, capsys):
    # README: write SHD's format with write_shd_h5, then `neurosim train --config shd --set data.root=ROOT
    # model.num_classes=N`; prepare's command left the N out, and shd.toml's 20 outputs trained on 2 classes
    from neurosim.data.audio import write_shd_h5

    events = np.zeros(3, dtype=[("t", int), ("x", int), ("p", int)])
    events["t"], events["x"], events["p"] = [0, 500, 900], [1, 2, 3], 1
    for split in ("train", "test"):
        write_shd_h5(offline / "SHD" / f"shd_{split}.h5", [events, events], [0, 1], keys=["yes", "no"])
        (offline / "SHD" / f"shd_{split}.h5.zip").touch()
    assert main(["-q", "datasets", "prepare", "shd", "--root", str(offline), "--no-frames"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (f"train it: neurosim train --config shd --set "
                                                        f"data.root={offline} model.num_classes=2")
    (offline / "SHD").rename(offline / "SSC")  # SSC's command names its 35 classes: the files' 2 instead
    for split in ("train", "test"):
        (offline / "SSC" / f"shd_{split}.h5").rename(offline / "SSC" / f"ssc_{split}.h5")
        (offline / "SSC" / f"shd_{split}.h5.zip").rename(offline / "SSC" / f"ssc_{split}.h5.zip")
    assert main(["-q", "datasets", "prepare", "ssc", "--root", str(offline), "--no-frames"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (f"train it: neurosim train --config shd --set data.dataset=ssc "
                                                        f"model.num_classes=2 data.root={offline}")


def test_datasets_help_shows_no_restructured_text_marks(capsys):
    # its description was the module docstring's first line as written: "``neurosim datasets``: list ..."
    with pytest.raises(SystemExit):
        main(["datasets", "--help"])
    out = capsys.readouterr().out
    assert "neurosim datasets: list the registered datasets" in " ".join(out.split()) and "``" not in out


def _shd_files(root, labels, keys):
    """SHD-format train and test files (each sample 3 spikes) with these labels and class names, as another tool
    writes them (write_shd_h5 refuses labels past its keys)."""
    times = [np.array([0.0, 0.0005, 0.0009])] * len(labels)
    for split in ("train", "test"):
        fw.write_hsd_h5(root / "SHD" / f"shd_{split}.h5", times, [np.array([1, 2, 3])] * len(labels), labels, keys)
        (root / "SHD" / f"shd_{split}.h5.zip").touch()


def test_shd_files_whose_labels_pass_their_class_names_are_a_clear_error(offline, capsys):
    # extra/keys named 3 classes, the labels went up to 5: list counted 3 classes, check passed both files, prepare
    # printed a command with model.num_classes=3, which training then refused (labels up to 5), and evaluate's
    # per-class table had no name for classes 3 to 5
    from neurosim.data import get_dataset
    from neurosim.data.readers import EventFileError, shd_label_problem

    _shd_files(offline, [0, 1, 2, 3, 4, 5], ["a", "b", "c"])
    said = ("sample 3 has the label 3, past the 3 class names of extra/keys ('a', 'b', 'c'; labels up to 5 need 6): "
            "a label is its class's index in extra/keys, so name every class there")
    with pytest.raises(EventFileError, match=r"shd_train.h5: " + said.replace("(", r"\(").replace(")", r"\)")):
        get_dataset("shd").load("train", offline)
    assert main(["-q", "datasets", "prepare", "shd", "--root", str(offline), "--no-frames"]) == 2
    out, err = capsys.readouterr()
    assert "train it" not in out and err.startswith(f"neurosim datasets prepare: error: {offline}/SHD/shd_train.h5: "
                                                    f"{said}")
    assert main(["-q", "datasets", "check", "shd", "--root", str(offline)]) == 1
    out = capsys.readouterr().out
    assert "0 ok, 2 bad" in out and f"shd_train.h5: {said}" in out and f"shd_test.h5: {said}" in out
    assert main(["datasets", "list", "--root", str(offline)]) == 0
    assert f"shd: {offline}/SHD/shd_train.h5: {said}" in capsys.readouterr().err
    assert shd_label_problem(np.array([0, 2, -1]), ["a", "b", "c"]) == (
        "sample 2 has the label -1: labels are class indices, 0 or more")  # (SHD's uint16 labels cannot be; others')
    assert shd_label_problem(np.array([0, 2, 7]), []) is None  # no names: the labels alone count


def test_shd_files_naming_classes_none_of_their_samples_has_count_them_and_say_so(offline, capsys):
    # extra/keys named 20 classes, the samples were of 5: nothing said that 15 of the model's outputs would never be
    # trained or tested (a folder's empty class folders warn); the classes are still the names (tonic's classes)
    from neurosim.data import get_dataset

    keys = [f"w{i}" for i in range(20)]
    _shd_files(offline, [0, 1, 2, 3, 4, 0], keys)
    with pytest.warns(UserWarning, match=r"shd_train.h5: 15 of the 20 classes extra/keys names have no sample in the "
                                         r"train split \(w5, w6, w7, w8, w9 and 10 more\): the model never trains on "
                                         r"them; they still count in model.num_classes"):
        train = get_dataset("shd").load("train", offline)
    assert train.classes == keys and sorted(set(train.targets.tolist())) == [0, 1, 2, 3, 4]
    with pytest.warns(UserWarning, match=r"shd_test.h5: 15 of the 20 .* in the test split .*the test accuracy does "
                                         r"not measure them"):
        get_dataset("shd").load("test", offline)
    assert main(["datasets", "list", "--root", str(offline)]) == 0
    out, err = capsys.readouterr()
    assert next(ln for ln in out.splitlines() if ln.startswith("shd ")).split()[4] == "20"
    assert (f"shd: {offline}/SHD/shd_train.h5: its samples are of 5 of the 20 classes extra/keys names (the classes "
            "counted)") in err

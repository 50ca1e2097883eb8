"""Recordings of one's own: data.dataset = "folder:PATH" (neurosim.data.folder)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import fixture_writers as fw
from neurosim.config import DataConfig
from neurosim.data import get_dataset, make_loaders
from neurosim.data.dvs import EVENT_DTYPE
from neurosim.data.readers import EventFileError
from neurosim.data.transforms import ToFrame

W, H, P = 16, 12, 2


def _events(seed: int, label: int, n: int = 300) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ev = np.zeros(n, EVENT_DTYPE)
    ev["t"] = np.sort(rng.integers(0, 50_000, n))
    ev["x"] = np.clip(rng.normal(3 + 4 * label, 1.5, n), 0, W - 1).astype(int)  # each class in its own columns
    ev["y"], ev["p"] = rng.integers(0, H, n), rng.integers(0, P, n)
    return ev


def _folder(tmp_path, per_class=(6, 3), classes=("left", "middle", "right")):
    root = tmp_path / "rec"
    for split, n in zip(("train", "test"), per_class):
        for label, name in enumerate(classes):
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                np.save(root / split / name / f"{i}.npy", _events(100 * label + i + (0 if split == "train" else 50),
                                                                  label))
    (root / "dataset.toml").write_text(f"sensor_size = [{W}, {H}, {P}]\n")
    return root


def test_a_folder_is_a_dataset_whose_classes_are_its_sub_folders(tmp_path):
    root = _folder(tmp_path)
    (root / "train" / "left" / ".DS_Store").write_text("")  # hidden files are skipped
    info = get_dataset(f"folder:{root}")
    assert info.classes == ("left", "middle", "right") and info.num_classes == 3 and info.sensor_size == (W, H, P)
    train = info.load("train")
    assert len(train) == 18 and len(info.load("test")) == 9
    events, label = train[7]  # sorted: left 0-5, middle 6-11
    stored = np.load(root / "train" / "middle" / "1.npy")
    assert label == 1 and all(np.array_equal(events[f], stored[f]) for f in ("x", "y", "p", "t"))


def test_make_loaders_frames_a_folder_dataset_like_any_other(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROSIM_CACHE_DIR", str(tmp_path / "cache"))
    root = _folder(tmp_path)
    monkeypatch.chdir(tmp_path)  # a relative folder is taken from the working directory
    bundle = make_loaders(DataConfig(dataset="folder:rec", time_steps=4, batch_size=4), progress=False)
    assert tuple(bundle.train_frames.shape) == (18, 4, P, H, W)
    want = ToFrame(sensor_size=(W, H, P), n_time_bins=4)(np.load(root / "test" / "right" / "2.npy"))
    np.testing.assert_array_equal(bundle.test_frames[8], want)
    assert sorted(torch.cat([y for _, y in bundle.train]).tolist()) == [0] * 6 + [1] * 6 + [2] * 6
    assert list((tmp_path / "cache").rglob("*.frames.bin"))  # cached, keyed by the folder's files


def test_plain_arrays_need_their_column_order_and_bin_files_are_read_as_n_mnist(tmp_path):
    root = _folder(tmp_path, per_class=(1, 1), classes=("a", "b"))
    ev = _events(9, 0)
    plain = np.stack([ev["t"], ev["x"], ev["y"], ev["p"]], axis=1)
    np.save(root / "train" / "a" / "plain.npy", plain)
    (root / "train" / "b" / "rec.bin").write_bytes(fw.encode_nmnist_bin(ev["x"], ev["y"], ev["t"], ev["p"]))
    info = get_dataset(f"folder:{root}")
    with pytest.raises(EventFileError, match=r"plain.npy: a plain \(300, 4\) array: say the order of its columns in"):
        info.load("train")[1]
    (root / "dataset.toml").write_text(f'sensor_size = [{W}, {H}, {P}]\ncolumns = ["t", "x", "y", "p"]\n')
    train = get_dataset(f"folder:{root}").load("train")
    for i in (1, 3):  # the plain array and the .bin file (a/plain.npy, b/rec.bin) hold the structured one's events
        events, _ = train[i]
        assert all(np.array_equal(events[f], ev[f]) for f in ("x", "y", "p", "t")), i


def test_an_event_outside_the_sensor_names_the_file(tmp_path):
    root = _folder(tmp_path, per_class=(1, 1), classes=("a",))
    ev = _events(1, 0)
    ev["x"][5] = W
    np.save(root / "train" / "a" / "0.npy", ev)
    with pytest.raises(EventFileError, match=r"train/a/0.npy"):
        get_dataset(f"folder:{root}").load("train")[0]


@pytest.mark.parametrize("breakage, message", [
    (lambda r: (r / "dataset.toml").unlink(), r"dataset.toml is missing: .* sensor_size = \[W, H, P\]"),
    (lambda r: (r / "dataset.toml").write_text("sensor_size = [16, 12]\n"), "sensor_size must be three whole"),
    (lambda r: (r / "dataset.toml").write_text("sensor = [16, 12, 2]\n"), r"unknown key\(s\) sensor"),
    (lambda r: (r / "dataset.toml").write_text('sensor_size = [16, 12, 2]\ncolumns = ["x", "y"]\n'),
     "columns must name x, y, p and t once each"),
    (lambda r: __import__("shutil").rmtree(r / "test"), r"rec/test is missing"),
    (lambda r: (r / "test" / "up").mkdir(), r"test class\(es\) up have no folder in train/"),
    (lambda r: (r / "train" / "a" / "notes.txt").write_text("x"), r"notes.txt: not a recording"),
])
def test_a_folder_that_is_not_a_dataset_says_what_to_fix(tmp_path, breakage, message):
    root = _folder(tmp_path, per_class=(1, 1), classes=("a",))
    breakage(root)
    with pytest.raises(ValueError, match=message):
        get_dataset(f"folder:{root}").load("train")


def test_train_and_check_take_a_folder_dataset(tmp_path, monkeypatch, capsys):
    from neurosim.cli import main

    monkeypatch.setenv("NEUROSIM_CACHE_DIR", str(tmp_path / "cache"))
    root = _folder(tmp_path)
    args = ["-q", "train", "--config", "quickstart", "--set", f"data.dataset=folder:{root}", f"out_dir={tmp_path}",
            f"model.input_shape=[{P}, {H}, {W}]", "model.num_classes=3", "model.channels=[4]", "model.kernel_size=3",
            "data.time_steps=4", "data.batch_size=6", "train.epochs=1"]
    assert main(args) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert main(["datasets", "check", f"folder:{root}"]) == 0
    (root / "test" / "left" / "9.npy").write_bytes(b"garbage")
    assert main(["datasets", "check", f"folder:{root}"]) == 1
    assert "test/left/9.npy: not a .npy file" in capsys.readouterr().out
    assert main(["datasets", "check", f"folder:{tmp_path / 'nothing'}"]) == 2
    assert "is not a folder" in (err := capsys.readouterr().err) and "taken from the working directory" in err
    assert main(["-q", "train", "--config", "quickstart", "--set", "data.dataset=folder:nowhere"]) == 2
    assert "data.dataset: dataset 'folder:/" in capsys.readouterr().err  # (stored absolute)


def _per_class(out: str) -> list[tuple[str, float, int]]:
    """``neurosim evaluate``'s per-class lines: (name, accuracy %, samples)."""
    import re

    return [(name, float(acc), int(n)) for name, acc, n in
            re.findall(r"^  (.+?) +([\d.]+) %  \((\d+) samples\)$", out, re.MULTILINE)]


def test_a_folder_runs_checkpoint_keeps_its_class_names_and_evaluate_names_the_classes(tmp_path, monkeypatch, capsys):
    # the checkpoint kept no class names: evaluating a folder run could say only its overall accuracy
    import re

    from neurosim.cli import main
    from neurosim.runs import evaluate_checkpoint
    from neurosim.training import load_checkpoint
    from neurosim.training.checkpoint import save_checkpoint

    monkeypatch.setenv("NEUROSIM_CACHE_DIR", str(tmp_path / "cache"))
    root = _folder(tmp_path, per_class=(6, 2), classes=("left", "middle", "right"))
    np.save(root / "test" / "middle" / "2.npy", _events(999, 1))  # 2, 3 and 2 test recordings
    args = ["-q", "train", "--config", "quickstart", "--set", f"data.dataset=folder:{root}", f"out_dir={tmp_path}",
            f"model.input_shape=[{P}, {H}, {W}]", "model.num_classes=3", "model.channels=[4]", "model.kernel_size=3",
            "data.time_steps=4", "data.batch_size=6", "train.epochs=1", "name=named"]
    assert main(args) == 0
    ckpt = tmp_path / "named" / "checkpoint.pt"
    assert load_checkpoint(ckpt)["class_names"] == ["left", "middle", "right"]
    capsys.readouterr()
    assert main(["-q", "evaluate", "--checkpoint", str(ckpt)]) == 0
    out = capsys.readouterr().out
    rows = _per_class(out)
    assert [(name, n) for name, _, n in rows] == [("left", 2), ("middle", 3), ("right", 2)]
    overall = float(re.search(r"test accuracy: ([\d.]+) %", out).group(1))
    assert sum(acc * n for _, acc, n in rows) / 7 == pytest.approx(overall, abs=0.01)  # the classes make up the whole

    # the names are the checkpoint's: a class folder renamed since is said, and the model's classes still shown
    for split in ("train", "test"):
        (root / split / "right").rename(root / split / "rechts")
    with pytest.warns(RuntimeWarning) as caught:  # (and that the files are others: moved)
        metrics = evaluate_checkpoint(ckpt, progress=False)
    assert [w for w in caught if re.search(r"trained on the classes left, middle, right \(labels 0 to 2\), but "
                                           r"dataset 'folder:.*' now has left, middle, rechts", str(w.message))]
    assert metrics["class_names"] == ["left", "middle", "right"] and metrics["class_samples"] == [2, 3, 2]

    # a checkpoint from before the names were kept loads, and names the classes as the dataset does now
    old = load_checkpoint(ckpt)
    del old["class_names"]
    save_checkpoint(ckpt, old)
    with pytest.warns(RuntimeWarning, match="other data files"):  # (renamed)
        assert main(["-q", "evaluate", "--checkpoint", str(ckpt)]) == 0
    assert [name for name, _, _ in _per_class(capsys.readouterr().out)] == ["left", "middle", "rechts"]
    save_checkpoint(ckpt, {**old, "class_names": "left"})
    assert main(["-q", "evaluate", "--checkpoint", str(ckpt)]) == 2
    assert "its class_names must be a list of strings" in capsys.readouterr().err


def test_resuming_an_epoch_interrupted_before_the_dataset_grew_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    # the trainer's ValueError (a traceback, exit status 1) advised fit(resume=False), the Python API's way out
    import os
    import signal

    from neurosim.cli import main

    monkeypatch.setenv("NEUROSIM_CACHE_DIR", str(tmp_path / "cache"))
    root = _folder(tmp_path)  # 18 training recordings: 5 batches of 4
    args = ["-q", "train", "--config", "quickstart", "--set", f"data.dataset=folder:{root}", f"out_dir={tmp_path}",
            f"model.input_shape=[{P}, {H}, {W}]", "model.num_classes=3", "model.channels=[4]", "model.kernel_size=3",
            "data.time_steps=4", "data.batch_size=4", "train.epochs=1", "name=grow"]
    real, steps = torch.optim.Adam.step, []

    def ctrl_c_in_step_2(self, *a, **kw):
        steps.append(1)
        if len(steps) == 2:
            os.kill(os.getpid(), signal.SIGINT)  # held back to the batch's end: a checkpoint of 2 batches of 5
        return real(self, *a, **kw)

    monkeypatch.setattr(torch.optim.Adam, "step", ctrl_c_in_step_2)
    assert main(args) == 130
    monkeypatch.setattr(torch.optim.Adam, "step", real)
    capsys.readouterr()
    for i in (6, 7, 8, 9):  # 22 recordings: 6 batches
        np.save(root / "train" / "left" / f"{i}.npy", _events(1000 + i, 0))
    ckpt = tmp_path / "grow" / "checkpoint.pt"
    with pytest.warns(RuntimeWarning, match="other data files"):
        assert main(args) == 2
    assert capsys.readouterr().err == (
        f"neurosim train: error: {ckpt} stopped part-way through epoch 1 (after batch 2 of its 5), but the training "
        f"split of dataset 'folder:{root}' now gives 6 batch(es) per epoch: the data changed since, so that epoch "
        "cannot be finished; restore the data it was trained on to resume, choose another name (--set name=...), or "
        "pass --no-resume to start over\n")
    for i in (6, 7, 8, 9):  # the data it was trained on: it resumes
        (root / "train" / "left" / f"{i}.npy").unlink()
    assert main(args) == 0


def test_a_one_row_folder_dataset_takes_the_augmentations_its_frames_take(tmp_path, monkeypatch, capsys):
    # a folder's frames are [N, T, P, H, W] whatever its height (make_loaders flips them), but train's check before
    # loading took a sensor one row high for audio frames [N, T, P, W] and refused flip and cutout
    from neurosim.cli import main

    monkeypatch.setenv("NEUROSIM_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "row"
    for split, n in (("train", 4), ("test", 2)):
        for label in range(2):
            (root / split / str(label)).mkdir(parents=True)
            for i in range(n):
                ev = _events(10 * label + i + 5 * (split == "test"), label)
                ev["y"], ev["p"] = 0, 0
                np.save(root / split / str(label) / f"{i}.npy", ev)
    (root / "dataset.toml").write_text(f"sensor_size = [{W}, 1, 1]\n")
    base = ["-q", "train", "--config", "shd", "--set", f"data.dataset=folder:{root}", f"out_dir={tmp_path}",
            f"model.input_shape=[{W}]", "model.num_classes=2", "model.hidden=[8]", "data.time_steps=4",
            "data.batch_size=4", "train.epochs=1"]
    for setting in ("flip=true", "cutout=3"):
        assert main([*base, f"data.augment.{setting}", f"name={setting[:4]}"]) == 0, capsys.readouterr().err
    assert main([*base, "data.augment.shift=1", "name=shift"]) == 2
    assert capsys.readouterr().err.startswith(f"neurosim train: error: data.augment.shift = 1 moves every event off "
                                              f"the 1×{W} sensor in some draws")


def test_a_folder_runs_config_names_it_absolutely_and_bad_contents_are_one_line_errors(tmp_path, monkeypatch,
                                                                                           capsys):
    from neurosim.cli import main
    from neurosim.config import load_config

    monkeypatch.setenv("NEUROSIM_CACHE_DIR", str(tmp_path / "cache"))
    root = _folder(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert load_config(None, ["data.dataset=folder:rec"]).data.dataset == f"folder:{root}"
    assert load_config(None, ["data.dataset=folder:~/x"]).data.dataset.startswith("folder:/")
    (root / "train" / "left" / "notes.txt").write_text("x")
    base = ["-q", "train", "--config", "quickstart", "--set", "data.dataset=folder:rec", f"out_dir={tmp_path}",
            f"model.input_shape=[{P},{H},{W}]", "model.num_classes=3", "model.channels=[4]", "model.kernel_size=3",
            "data.time_steps=4", "train.epochs=1"]
    assert main(base) == 2
    assert "notes.txt: not a recording" in capsys.readouterr().err
    assert main(["datasets", "check", "folder:rec"]) == 1  # check applies training's rules, listing every file
    assert "notes.txt: not a recording" in capsys.readouterr().out
    (root / "train" / "left" / "notes.txt").unlink()
    (root / "test" / "left" / "1.npy").write_bytes(b"\x93NUMPY garbage")
    assert main(base) == 2
    err = capsys.readouterr().err
    assert "test/left/1.npy" in err and "Traceback" not in err
    # the command that lists them all names the dataset (it said `neurosim datasets check NAME`)
    assert err.endswith(f" (`neurosim datasets check folder:{root}` lists every bad file of a dataset)\n")
    assert main(["-q", "datasets", "prepare", "folder:rec"]) == 2
    err = capsys.readouterr().err  # (prefixed as the datasets commands' other errors: it said `neurosim datasets`)
    assert err.startswith(f"neurosim datasets prepare: error: {root / 'test' / 'left' / '1.npy'}: ")
    assert err.endswith(f" (`neurosim datasets check folder:{root}` lists every bad file of a dataset)\n")


def test_bin_polarities_and_fractional_timestamps_are_checked_against_the_sensor(tmp_path):
    root = _folder(tmp_path, per_class=(1, 1), classes=("a",))
    (root / "dataset.toml").write_text(f"sensor_size = [{W}, {H}, 1]\n")
    ev = _events(3, 0)
    (root / "train" / "a" / "1.bin").write_bytes(fw.encode_nmnist_bin(ev["x"], ev["y"], ev["t"], ev["p"]))
    train = get_dataset(f"folder:{root}").load("train")
    with pytest.raises(EventFileError, match=r"1.bin: an event of polarity 1, outside the sensor's 1"):
        train[1]
    seconds = np.zeros(3, [("x", "<i8"), ("y", "<i8"), ("p", "<i8"), ("t", "<f8")])
    seconds["t"] = [0.0, 0.5, 1.25]
    np.save(root / "train" / "a" / "0.npy", seconds)
    with pytest.raises(EventFileError, match="t must be whole microseconds"):
        train[0]


def test_an_empty_split_or_training_class_says_so(tmp_path):
    root = _folder(tmp_path, per_class=(2, 1), classes=("a", "b"))
    for f in (root / "train" / "b").iterdir():
        f.unlink()
    with pytest.warns(UserWarning, match=r"class folder\(s\) b hold no recordings: the model never trains on them"):
        get_dataset(f"folder:{root}").load("train")
    for f in (root / "test").rglob("*.npy"):
        f.unlink()
    with pytest.raises(ValueError, match=r"rec/test holds no recordings"):
        get_dataset(f"folder:{root}").load("test")


def test_frames_of_a_linked_class_folder_are_rebuilt_when_it_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROSIM_CACHE_DIR", str(tmp_path / "cache"))
    root = _folder(tmp_path, per_class=(2, 1), classes=("a", "b"))
    elsewhere = tmp_path / "elsewhere"
    (root / "train" / "b").rename(elsewhere)
    (root / "train" / "b").symlink_to(elsewhere)
    cfg = DataConfig(dataset=f"folder:{root}", time_steps=4, batch_size=2)
    assert len(make_loaders(cfg, progress=False).train_frames) == 4
    np.save(elsewhere / "9.npy", _events(77, 1))
    assert len(make_loaders(cfg, progress=False).train_frames) == 5


def _sensor_folder(root, sensor_size, classes=2, per_class=(4, 2)):
    """A folder dataset of ``sensor_size`` (W, H, P) whose recordings cover the sensor at random."""
    w, h, p = sensor_size
    rng = np.random.default_rng(0)
    for split, n in zip(("train", "test"), per_class):
        for label in range(classes):
            (root / split / str(label)).mkdir(parents=True)
            for i in range(n):
                ev = np.zeros(200, EVENT_DTYPE)
                ev["t"] = np.sort(rng.integers(0, 50_000, 200))
                ev["x"], ev["y"], ev["p"] = rng.integers(0, w, 200), rng.integers(0, h, 200), rng.integers(0, p, 200)
                np.save(root / split / str(label) / f"{i}.npy", ev)
    (root / "dataset.toml").write_text(f"sensor_size = [{w}, {h}, {p}]\n")
    return root


@pytest.mark.parametrize("sensor_size, config, model", [
    ((34, 34, 2), "quickstart", ["'model.input_shape=[2,34,34]'"]),  # quickstart's model as it is
    ((16, 12, 2), "quickstart", ["'model.input_shape=[2,12,16]'", "'model.channels=[16]'"]),  # one conv block fits
    ((20, 1, 2), "quickstart", ["model.kind=mlp", "'model.input_shape=[40]'", "'model.hidden=[128]'"]),  # one row
    ((4, 4, 2), "quickstart", ["model.kind=mlp", "'model.input_shape=[32]'", "'model.hidden=[128]'"]),
    ((20, 1, 1), "shd", ["'model.input_shape=[20]'"]),  # audio channels: SHD's T = 100 MLP, not quickstart's T = 10
], ids=["34x34", "16x12", "one-row", "4x4", "audio"])
def test_prepare_prints_a_training_command_that_builds_its_model(tmp_path, monkeypatch, capsys, sensor_size, config,
                                                                 model):
    # it always printed quickstart's two conv blocks, which a 16×12 or one-row sensor cannot hold ("model.input_shape
    # (2, 12, 16) is too small for 2 conv blocks")
    import shlex

    from neurosim.cli import main

    monkeypatch.setenv("NEUROSIM_CACHE_DIR", str(tmp_path / "cache"))
    root = _sensor_folder(tmp_path / "rec", sensor_size)
    assert main(["-q", "datasets", "prepare", f"folder:{root}"]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert line == (f"train it: neurosim train --config {config} --set data.dataset=folder:{root} {' '.join(model)} "
                    "model.num_classes=2")
    cached = sorted((tmp_path / "cache").rglob("*.json"))
    args = shlex.split(line.removeprefix("train it: neurosim "))
    assert main(["-q", *args, f"out_dir={tmp_path}", "train.epochs=1", "data.batch_size=4"]) == 0, \
        capsys.readouterr().err
    # the command trains on the frames prepare cached (audio's were T = 10, quickstart's, and shd's T = 100 converted
    # them again)
    assert sorted((tmp_path / "cache").rglob("*.json")) == cached and len(cached) == 2


@pytest.mark.parametrize("split", ["train", "test"])
def test_a_recording_left_in_a_split_folder_outside_any_class_is_an_error_naming_it(tmp_path, split):
    # it was skipped in silence: a recording in train/ itself was never trained on (nor one in test/ tested)
    root = _folder(tmp_path, per_class=(1, 1), classes=("a", "b"))
    np.save(root / split / "loose.npy", _events(5, 0))
    with pytest.raises(ValueError, match=rf"{split}/loose.npy: a recording outside any class folder; move it into "
                                         rf"{split}/<class name>/ \(classes: a, b\)"):
        get_dataset(f"folder:{root}")
    (root / split / "loose.npy").unlink()
    (root / split / ".DS_Store").write_text("")  # hidden files are still skipped
    assert len(get_dataset(f"folder:{root}").load(split)) == 2


@pytest.mark.parametrize("emptied", ["empty", "missing"])
def test_a_class_with_no_test_recordings_warns_that_the_test_accuracy_leaves_it_out(tmp_path, emptied):
    # it was silent: evaluate's accuracy and per-class table simply lacked the class
    import shutil

    root = _folder(tmp_path, per_class=(1, 1), classes=("a", "b"))
    if emptied == "empty":
        for f in (root / "test" / "b").iterdir():
            f.unlink()
    else:
        shutil.rmtree(root / "test" / "b")
    with pytest.warns(UserWarning, match=r"rec/test: class\(es\) b have no recordings: the test accuracy does not "
                                         r"measure them"):
        assert len(get_dataset(f"folder:{root}").load("test")) == 1


def test_tonic_events_whose_polarity_is_a_titled_field_are_read(tmp_path):
    # tonic.io.read_aedat4 names the polarity field "on" with the title "p" (events["p"] works): saved with np.save,
    # such a recording was refused, "structured array lacks fields ['p'] (has ('t', 'x', 'y', 'on'))"
    root = _folder(tmp_path, per_class=(1, 1), classes=("a",))
    ev = _events(4, 0)
    aedat = np.zeros(len(ev), [("t", "<u8"), ("x", "<u2"), ("y", "<u2"), (("p", "on"), "?")])
    for f in ("t", "x", "y", "p"):
        aedat[f] = ev[f]
    np.save(root / "train" / "a" / "0.npy", aedat)
    events, _ = get_dataset(f"folder:{root}").load("train")[0]
    assert all(np.array_equal(events[f], ev[f]) for f in ("x", "y", "p", "t"))
    np.testing.assert_array_equal(ToFrame(sensor_size=(W, H, P), n_time_bins=4)(events),
                                  ToFrame(sensor_size=(W, H, P), n_time_bins=4)(ev))


def test_a_real_aedat4_recording_saved_as_tonic_reads_it_is_a_folder_datasets_recording(tmp_path, real_file):
    pytest.importorskip("aedat", reason="tonic.io.read_aedat4 needs the 'aedat' package")
    from tonic.io import read_aedat4

    events = read_aedat4(str(real_file("sample.aedat4")))  # DVXplorer, 320×240, absolute µs timestamps (uint64)
    root = tmp_path / "rec"
    for split in ("train", "test"):
        (root / split / "scene").mkdir(parents=True)
        np.save(root / split / "scene" / "0.npy", events)
    (root / "dataset.toml").write_text("sensor_size = [320, 240, 2]\n")
    got, _ = get_dataset(f"folder:{root}").load("train")[0]
    assert len(got) == 111_954 and all(np.array_equal(got[f], events[f]) for f in ("x", "y", "p", "t"))
    frames = ToFrame(sensor_size=(320, 240, 2), n_time_bins=4)(got)
    assert frames.shape == (4, 2, 240, 320) and frames.sum() > 0.99 * len(got)


def test_a_recording_in_a_format_the_folder_does_not_read_says_how_to_convert_it(tmp_path):
    root = _folder(tmp_path, per_class=(1, 1), classes=("a",))
    (root / "train" / "a" / "rec.aedat4").write_bytes(b"#!AER-DAT4.0\r\n")
    with pytest.raises(ValueError, match=r"rec.aedat4: not a recording .* convert other formats to .npy, e.g. "
                                         r"np.save\(\"rec.npy\", tonic.io.read_aedat4\(\"rec.aedat4\"\)\)"):
        get_dataset(f"folder:{root}").load("train")


def test_polarity_as_plus_minus_one_timestamps_in_seconds_and_another_sensors_events_say_what_to_do(tmp_path):
    # each named the file and what was wrong but not what to do, and seconds were said to fall "into one time bin"
    # where they give empty frames (every bin (t[-1] - t[0]) // T = 0 units wide)
    root = _folder(tmp_path, per_class=(1, 1), classes=("a",))
    file = root / "train" / "a" / "0.npy"
    ev = _events(6, 0)
    signed = np.zeros(len(ev), [("x", "<i8"), ("y", "<i8"), ("p", "<i8"), ("t", "<i8")])
    for f in ("x", "y", "t"):
        signed[f] = ev[f]
    signed["p"] = 2 * ev["p"] - 1
    np.save(file, signed)
    train = get_dataset(f"folder:{root}").load("train")
    with pytest.raises(EventFileError, match=r"0.npy: event \d+ has p=-1, outside \[0, 2\) .*; polarity is 0 \(OFF\) "
                                             r"or 1 \(ON\), not -1/\+1: store \(p > 0\)"):
        train[0]
    seconds = np.zeros(len(ev), [("x", "<i8"), ("y", "<i8"), ("p", "<i8"), ("t", "<f8")])
    for f in ("x", "y", "p"):
        seconds[f] = ev[f]
    seconds["t"] = ev["t"] / 1e6
    np.save(file, seconds)
    with pytest.raises(EventFileError, match=r"t must be whole microseconds, as tonic's \(in seconds every time bin "
                                             r"would be 0 units wide and the frames empty\): store "
                                             r"np.round\(t \* 1e6\)"):
        train[0]
    wide = ev.copy()
    wide["x"][7] = 300
    np.save(file, wide)
    with pytest.raises(EventFileError, match=r"event 7 has x=300, outside \[0, 16\) of the \(16, 12, 2\) sensor; every "
                                             r"event must lie on it: crop or downsample a larger sensor's recording, "
                                             r"or correct sensor_size \(width, height, polarities, in that order\)"):
        train[0]


@pytest.mark.parametrize("out_dir, name", [(".", "rec"), ("rec/train", "run"), ("rec/test/left", "run")],
                         ids=["the-folder", "in-train", "in-a-class"])
def test_a_run_folder_among_the_recordings_is_refused_before_anything_is_written(tmp_path, monkeypatch, capsys,
                                                                                out_dir, name):
    # out_dir = "." and name = the dataset's folder wrote checkpoint.pt, config.toml, report.md ... into it, over a
    # report.md or config.toml of the user's own; in train/ or test/ the run became a class (or a stray file)
    from neurosim.cli import main

    monkeypatch.setenv("NEUROSIM_CACHE_DIR", str(tmp_path / "cache"))
    root = _folder(tmp_path, per_class=(1, 1))
    (root / "config.toml").write_text("my recording settings\n")
    monkeypatch.chdir(tmp_path)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    assert main(["-q", "train", "--config", "quickstart", "--set", "data.dataset=folder:rec", f"out_dir={out_dir}",
                 f"name={name}", f"model.input_shape=[{P},{H},{W}]", "model.num_classes=3", "model.channels=[4]",
                 "model.kernel_size=3", "data.time_steps=4", "train.epochs=1"]) == 2
    err = capsys.readouterr().err
    assert f"out_dir, name: the run folder {(tmp_path / out_dir / name).resolve()} is among the recordings of " \
           f"data.dataset = folder:{root}" in err and "choose another out_dir or name" in err
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before
    assert (root / "config.toml").read_text() == "my recording settings\n"


def test_fractional_pixels_are_a_bad_file_and_a_recording_frames_refuse_names_its_file(tmp_path, monkeypatch, capsys):
    # a plain float array with x = 0.99 passed `datasets check` ("ok") and a pixel counted past int16 (a hot pixel) met
    # while framing: both then stopped `prepare` and `train` with a traceback ending "sample 15: ToFrame: ...",
    # naming no file
    from neurosim.cli import main

    monkeypatch.setenv("NEUROSIM_CACHE_DIR", str(tmp_path / "cache"))
    root = _folder(tmp_path, per_class=(2, 1))
    (root / "dataset.toml").write_text(f'sensor_size = [{W}, {H}, {P}]\ncolumns = ["t", "x", "y", "p"]\n')
    ev = _events(8, 1)
    plain = np.stack([ev["t"], ev["x"], ev["y"], ev["p"]], axis=1).astype(float)
    plain[3, 1] = 2.5
    np.save(root / "train" / "middle" / "1.npy", plain)
    assert main(["datasets", "check", f"folder:{root}"]) == 1
    assert "train/middle/1.npy: event 3 has x=2.5: x, y and p must be whole numbers" in capsys.readouterr().out
    hot = np.zeros(40_000, EVENT_DTYPE)  # one pixel, 39,999 events in the first of 4 frames (the last in none)
    hot["t"] = np.arange(40_000) // 1000
    hot["t"][-1] = 1_000_000
    np.save(root / "train" / "middle" / "1.npy", hot)
    assert main(["datasets", "check", f"folder:{root}"]) == 0  # (a property of the frames, not of the file)
    assert main(["-q", "datasets", "prepare", f"folder:{root}", "--time-steps", "4"]) == 2
    err = capsys.readouterr().err
    assert f"error: {root}/train/middle/1.npy: ToFrame: frame 0 counts 39999 events at pixel x=0, y=0" in err
    assert "Traceback" not in err
    assert "datasets check" not in err  # (which does not list it)


def test_check_lists_files_of_other_types_with_the_bad_recordings_instead_of_stopping(tmp_path, capsys):
    from neurosim.cli import main

    root = _folder(tmp_path)
    (root / "train" / "left" / "notes.txt").write_text("my notes")
    (root / "test" / "middle" / "raw.aedat4").write_bytes(b"\0")
    (root / "test" / "left" / "9.npy").write_bytes(b"garbage")
    assert main(["datasets", "check", f"folder:{root}"]) == 1
    out = capsys.readouterr().out
    assert "3 bad" in out and "train/left/notes.txt: not a recording neurosim reads" in out
    assert "test/middle/raw.aedat4: not a recording" in out and "tonic.io.read_aedat4" in out
    assert "test/left/9.npy: not a .npy file" in out
    with pytest.raises(ValueError, match="notes.txt: not a recording"):  # training still stops at the first
        get_dataset(f"folder:{root}").load("train")


def test_audio_events_without_y_are_a_one_row_folders_recordings_and_silence_is_one(tmp_path, monkeypatch):
    """AudioToSpikes gives tonic's audio dtype (t, x, p = 1) without y, which a folder refused ("lacks fields
    ['y']"), and a silent clip, which gives no events, was "no events (the array is empty)"."""
    from neurosim.data.audio import SHD_DTYPE
    from neurosim.data.tonic_datasets import _audio_events

    monkeypatch.setenv("NEUROSIM_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "kws"
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("test", 2)):
        for label in range(2):
            (root / split / f"word{label}").mkdir(parents=True)
            for i in range(n):
                ev = np.zeros(0 if (label, i) == (0, 0) else 40, dtype=SHD_DTYPE)  # the first clip: silence
                ev["t"] = np.sort(rng.integers(0, 300_000, len(ev)))
                ev["x"], ev["p"] = rng.integers(8 * label, 8 * label + 8, len(ev)), 1
                np.save(root / split / f"word{label}" / f"{i}.npy", ev)
    (root / "dataset.toml").write_text("sensor_size = [16, 1, 1]\n")
    train = get_dataset(f"folder:{root}").load("train")
    events, label = train[4]
    stored = np.load(root / "train" / "word1" / "1.npy")
    assert label == 1 and events.dtype.names == ("x", "y", "p", "t")
    np.testing.assert_array_equal(events, _audio_events(stored)[list(events.dtype.names)])  # as the registry's SHD
    assert len(train[0][0]) == 0  # the silent clip
    bundle = make_loaders(DataConfig(dataset=f"folder:{root}", time_steps=5, batch_size=2), progress=False)
    assert tuple(bundle.train_frames.shape) == (6, 5, 1, 1, 16) and not bundle.train_frames[0].any()
    np.testing.assert_array_equal(bundle.train_frames[4], ToFrame(sensor_size=(16, 1, 1), n_time_bins=5)(events))
    (root / "dataset.toml").write_text("sensor_size = [16, 2, 1]\n")  # a camera's sensor: y is needed
    with pytest.raises(EventFileError, match=r"lacks fields \['y'\]"):
        get_dataset(f"folder:{root}").load("train")[1]


@pytest.mark.parametrize("train_channels, test_channels, warned", [
    (4, 16, r"7\d% of the test split's spikes are on channels where the training split has none \(channels with "
            r"spikes: training 0–3, test 0–15, of 16\), so the model never learns them"),
    (16, 4, r"of the training split's spikes are on channels where the test split has none .*is never tested on them"),
    (16, 16, None)])
def test_splits_converted_with_different_channel_counts_warn(tmp_path, monkeypatch, train_channels, test_channels,
                                                              warned):
    """Training on spikes of a 4-channel front end and testing on a 16-channel one's (or the SHD format's 64 and
    700) trained and tested at chance without a word: the format does not record its channels."""
    import warnings

    from neurosim.data.audio import SHD_DTYPE

    monkeypatch.setenv("NEUROSIM_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "kws"
    rng = np.random.default_rng(1)
    for split, channels in (("train", train_channels), ("test", test_channels)):
        for label in range(2):
            (root / split / f"word{label}").mkdir(parents=True)
            for i in range(4):
                ev = np.zeros(60, dtype=SHD_DTYPE)
                ev["t"], ev["p"] = np.sort(rng.integers(0, 300_000, 60)), 1
                ev["x"] = rng.integers(0, channels, 60)  # every word over all of the front end's channels
                np.save(root / split / f"word{label}" / f"{i}.npy", ev)
    (root / "dataset.toml").write_text("sensor_size = [16, 1, 1]\n")
    config = DataConfig(dataset=f"folder:{root}", time_steps=4, batch_size=2)
    if warned is None:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            make_loaders(config, progress=False)
    else:
        with pytest.warns(UserWarning, match=warned + r".*AudioToSpikes' n_channels"):
            make_loaders(config, progress=False)


def test_check_lists_a_splits_files_of_other_types_when_it_holds_nothing_else(tmp_path, capsys):
    """A test/ of AEDAT4 files only: check said 'holds no recordings; put each in test/<class name>/' (where they
    are), not what training says of them (not a recording neurosim reads; convert them to .npy)."""
    from neurosim.cli import main

    root = _folder(tmp_path)
    for f in sorted((root / "test").rglob("*.npy")):
        f.rename(f.with_suffix(".aedat4"))
    assert main(["datasets", "check", f"folder:{root}"]) == 1
    out = capsys.readouterr().out
    assert "9 bad" in out and "test/left/0.aedat4: not a recording neurosim reads" in out
    assert "tonic.io.read_aedat4" in out
    with pytest.raises(ValueError, match="0.aedat4: not a recording"):  # as training says
        get_dataset(f"folder:{root}").load("test")


@pytest.mark.parametrize("clip_ms, warned", [(20, True), (1000, False)])
def test_audio_recordings_far_shorter_than_their_steps_warn_naming_the_step(tmp_path, monkeypatch, clip_ms, warned):
    """shd.toml's 100 steps of neuron.dt_ms = 10 ms on 20 ms clips: ToFrame stretches each clip over the 100 steps
    (0.2 ms each), and nothing said that the export's time constants and the estimate's latency then take a step to
    last 50× longer than it does. SHD-length clips (1 s: 10 ms steps) say nothing."""
    import re
    import warnings

    from neurosim.cli import main
    from neurosim.data.audio import SHD_DTYPE

    monkeypatch.setenv("NEUROSIM_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "kws"
    rng = np.random.default_rng(2)
    for split in ("train", "test"):
        for label in range(2):
            (root / split / f"word{label}").mkdir(parents=True)
            for i in range(3):
                ev = np.zeros(40, dtype=SHD_DTYPE)  # AudioToSpikes' times: multiples of its 0.5 ms step
                ev["t"] = np.sort(rng.integers(0, clip_ms * 2 + 1, 40)) * 500
                ev["t"][[0, -1]] = 0, clip_ms * 1000  # each clip spans clip_ms
                ev["x"], ev["p"] = rng.integers(0, 16, 40), 1
                np.save(root / split / f"word{label}" / f"{i}.npy", ev)
    (root / "dataset.toml").write_text("sensor_size = [16, 1, 1]\n")
    args = ["-q", "train", "--config", "shd", "--set", f"data.dataset=folder:{root}", f"out_dir={tmp_path}",
            "model.input_shape=[16]", "model.num_classes=2", "model.hidden=[8]", "data.batch_size=6",
            "train.epochs=1"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(args) == 0
    said = [str(w.message) for w in caught if "neuron.dt_ms" in str(w.message)]
    if not warned:
        assert not said
        return
    (message,) = said
    assert re.search(r"its recordings last about 20 ms \(the median of 6 training recordings\), and the frames "
                     r"stretch each over data.time_steps = 100 steps of about 0.2 ms, while neuron.dt_ms = 10 ms "
                     r"says a step lasts 50× longer", message), message
    assert "set neuron.dt_ms = 0.2" in message and "`neurosim estimate --step-ms 0.2`" in message


def test_a_run_on_recordings_that_moved_is_rerun_with_their_new_folder_and_evaluates_there(tmp_path, monkeypatch,
                                                                                          capsys):
    # the README says evaluate names a folder run's classes "even after the folder has moved", but a moved folder
    # could not be named: a rerun with --set data.dataset=folder:NEW was "a checkpoint of a different config", and
    # evaluate, estimate and export looked only where the checkpoint said
    import shutil

    from neurosim.cli import main
    from neurosim.training import load_checkpoint

    monkeypatch.setenv("NEUROSIM_CACHE_DIR", str(tmp_path / "cache"))
    root = _folder(tmp_path, per_class=(4, 2))
    args = ["-q", "train", "--config", "quickstart", "--set", f"out_dir={tmp_path}", "name=run",
            f"model.input_shape=[{P}, {H}, {W}]", "model.num_classes=3", "model.channels=[4]", "model.kernel_size=3",
            "data.time_steps=4", "data.batch_size=6", "train.epochs=1"]
    assert main([*args, f"data.dataset=folder:{root}"]) == 0
    ckpt = tmp_path / "run" / "checkpoint.pt"
    weights = load_checkpoint(ckpt)["model"]
    new = tmp_path / "moved" / "rec"
    new.parent.mkdir()
    root.rename(new)
    capsys.readouterr()
    assert main(["-q", "evaluate", "--checkpoint", str(ckpt)]) == 2
    assert capsys.readouterr().err == (
        f"neurosim evaluate: error: data.dataset: {ckpt} was trained on the recordings in {root}, which is not a "
        "folder now; if they moved, rerun the run's training command with their new folder, `neurosim train "
        f"--config {tmp_path / 'run' / 'config.toml'} --set data.dataset=folder:NEW`: a finished run trains no "
        "further and stores it in its checkpoints\n")

    other = tmp_path / "other"  # other classes: not these recordings moved, so refused before anything is written
    shutil.copytree(new, other)
    for split in ("train", "test"):
        (other / split / "right").rename(other / split / "zzz")
    assert main([*args, f"data.dataset=folder:{other}"]) == 2
    err = capsys.readouterr().err
    assert f"was trained on folder:{root}, whose classes were left, middle, right; folder:{other} has left, middle, " \
           "zzz: not those recordings moved" in err

    with pytest.warns(RuntimeWarning, match=f"data.dataset: the run in .* was trained on recordings found elsewhere "
                                            f"\\(checkpoint.pt stored folder:{root}\\); its checkpoints now store "
                                            f"this run's, folder:{new}, where neurosim evaluate"):
        assert main([*args, f"data.dataset=folder:{new}"]) == 0
    payload = load_checkpoint(ckpt)
    assert payload["config"]["data"]["dataset"] == f"folder:{new}" and payload["epoch"] == 1
    assert all(torch.equal(v, weights[k]) for k, v in payload["model"].items())  # trained no further
    capsys.readouterr()
    assert main(["-q", "evaluate", "--checkpoint", str(ckpt)]) == 0
    assert [name for name, _, _ in _per_class(capsys.readouterr().out)] == ["left", "middle", "right"]

    assert main([*args, "data.dataset=event_digits"]) == 2  # from a folder to a registered dataset: another config
    assert "data.dataset differs" in capsys.readouterr().err


def test_recordings_too_short_for_their_frames_are_named_in_one_warning_per_split(tmp_path, monkeypatch):
    # ToFrame warned per recording without naming it, and Python showed its identical warnings once: a user with
    # several such recordings learnt that some recording had empty frames, not which
    import warnings

    monkeypatch.setenv("NEUROSIM_CACHE_DIR", str(tmp_path / "cache"))
    root = _folder(tmp_path, per_class=(3, 2))
    one = _events(7, 0, n=1)  # one event
    same = _events(8, 1)
    same["t"] = 500  # every event at one timestamp
    np.save(root / "train" / "left" / "one.npy", one)
    np.save(root / "train" / "middle" / "same.npy", same)
    rev = _events(9, 2, n=2)
    rev["t"] = [3, 1]  # unsorted: ToFrame sorts it, and its span is 2 µs, not t[-1] - t[0] = -2
    np.save(root / "train" / "right" / "rev.npy", rev)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_loaders(DataConfig(dataset=f"folder:{root}", time_steps=4, batch_size=4), progress=False)
    said = [str(w.message) for w in caught if "span" in str(w.message)]
    assert {w.filename for w in caught if "span" in str(w.message)} == {__file__}  # the caller's line, not ours
    assert said == [f"folder:{root} train frames: 3 of 12 recordings span fewer time units than the 4 frames, so "
                    f"ToFrame(n_time_bins=4) bins them 0 units wide and their frames are empty: "
                    f"{root / 'train' / 'left' / 'one.npy'} (0 µs), {root / 'train' / 'middle' / 'same.npy'} (0 µs), "
                    f"{root / 'train' / 'right' / 'rev.npy'} (2 µs); check their timestamps (whole microseconds), or "
                    "leave them out"]


def test_class_folders_numbered_without_padding_warn_which_label_each_gets(tmp_path):
    # the labels follow the names sorted as text (README: "pad numbers"), silently: class 10 got label 1
    import warnings

    root = _folder(tmp_path, per_class=(1, 1), classes=("1", "2", "10"))
    with pytest.warns(UserWarning, match=r"train: the class folders are numbers, and their labels follow the names "
                                         r"sorted as text \(class -> label: 1 -> 0, 10 -> 1, 2 -> 2\), not the "
                                         r"numbers' order; pad them \(01, 02, 10, ...\) for that"):
        get_dataset(f"folder:{root}").load("train")
    padded = _folder(tmp_path / "padded", per_class=(1, 1), classes=("01", "02", "10"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        get_dataset(f"folder:{padded}").load("train")  # text order is their numbers' order: nothing to say
        get_dataset(f"folder:{root}").load("test")  # (said once, by the training split)


def test_a_folder_datasets_frames_are_cached_as_files_of_the_frames_folder(tmp_path, monkeypatch):
    # the entry was named by the dataset, "folder:/abs/path": a chain of folders frames/folder:/abs/path/ under the
    # cache (":" is no file name on Windows), not the frames/<dataset>_<split>_<hash>.json datasets/README.md says
    import shutil

    monkeypatch.setenv("NEUROSIM_CACHE_DIR", str(tmp_path / "cache"))
    first = _folder(tmp_path / "my data", per_class=(2, 1)).rename(tmp_path / "my data" / "rec:1")
    second = shutil.copytree(first, tmp_path / "elsewhere" / "rec:1")  # another folder of that name: its own entries
    for folder in (first, second):
        make_loaders(DataConfig(dataset=f"folder:{folder}", time_steps=4, batch_size=4), progress=False)
    frames = tmp_path / "cache" / "frames"
    entries = sorted(p.name for p in frames.iterdir())
    assert all((frames / name).is_file() for name in entries) and len(entries) == 12  # 2 folders × 2 splits × 3
    assert sorted(name.rsplit("_", 1)[0] for name in entries if name.endswith(".json")) == [
        "folder-rec_1_test", "folder-rec_1_test", "folder-rec_1_train", "folder-rec_1_train"]


def test_more_outputs_than_the_folder_has_classes_warn(tmp_path, monkeypatch):
    # quickstart's num_classes = 10 kept for 3 class folders trained silently: 7 outputs no class's, in the estimate
    import warnings

    from neurosim.cli import main

    monkeypatch.setenv("NEUROSIM_CACHE_DIR", str(tmp_path / "cache"))
    root = _folder(tmp_path, per_class=(2, 1))
    args = ["-q", "train", "--config", "quickstart", "--set", f"data.dataset=folder:{root}", f"out_dir={tmp_path}",
            f"model.input_shape=[{P}, {H}, {W}]", "model.channels=[4]", "model.kernel_size=3", "data.time_steps=4",
            "train.epochs=1"]
    with pytest.warns(RuntimeWarning, match=f"model.num_classes: is 10 but dataset 'folder:{root}' has 3 classes: 7 "
                                            "of the model's outputs are no class's, never a target, and stay in what "
                                            "neurosim estimate and export take; set model.num_classes = 3"):
        assert main([*args, "name=ten"]) == 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main([*args, "name=three", "model.num_classes=3"]) == 0
    assert not [w for w in caught if "model.num_classes" in str(w.message)]


def test_audio_events_of_time_and_channel_alone_are_recordings_with_y_and_p_zero(tmp_path, monkeypatch):
    """SHD-style (t, x) events, a plain (N, 2) array or a structured one of those two fields, could not be used:
    columns had to name x, y, p and t, and a structured array lacked fields ['y', 'p']."""
    monkeypatch.setenv("NEUROSIM_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(1)
    clips = {}
    for structured in (False, True):
        root = tmp_path / ("structured" if structured else "plain")
        for split in ("train", "test"):
            for label in range(2):
                (root / split / f"word{label}").mkdir(parents=True)
                t = np.sort(rng.integers(0, 200_000, 30))
                x = rng.integers(6 * label, 6 * label + 6, 30)
                clips[root, split, label] = (t, x)
                if structured:
                    ev = np.zeros(30, dtype=[("t", np.int64), ("x", np.int64)])
                    ev["t"], ev["x"] = t, x
                else:
                    ev = np.stack([t, x], axis=1)  # (N, 2): t, x
                np.save(root / split / f"word{label}" / "0.npy", ev)
        (root / "dataset.toml").write_text("sensor_size = [12, 1, 1]\n" + ("" if structured else
                                                                        'columns = ["t", "x"]\n'))
        test = get_dataset(f"folder:{root}").load("test")
        for label in range(2):
            events, got_label = test[label]
            t, x = clips[root, "test", label]
            assert got_label == label and events.dtype.names == ("x", "y", "p", "t")
            np.testing.assert_array_equal(events["t"], t)
            np.testing.assert_array_equal(events["x"], x)
            assert not events["y"].any() and not events["p"].any()
        bundle = make_loaders(DataConfig(dataset=f"folder:{root}", time_steps=4, batch_size=2), progress=False)
        assert tuple(bundle.test_frames.shape) == (2, 4, 1, 1, 12)
        np.testing.assert_array_equal(bundle.test_frames[1], ToFrame(sensor_size=(12, 1, 1), n_time_bins=4)(test[1][0]))


@pytest.mark.parametrize("toml, message", [
    ('sensor_size = [12, 4, 1]\ncolumns = ["t", "x"]\n',
     r"columns \['t', 'x'\] name no y, which only audio events leave out: their sensor is one row high, "
     r"sensor_size = \[channels, 1, 1\] .*got sensor_size = \[12, 4, 1\]"),
    ('sensor_size = [12, 1, 1]\ncolumns = ["t", "y"]\n', r"columns must name x, y, p and t once each.* or for audio "
                                                          r"events \(time and channel, as SHD's\) t and x"),
    ('sensor_size = [12, 1, 1]\ncolumns = ["t", "x", "x"]\n', "columns must name x, y, p and t once each"),
    ('sensor_size = [12, 1, 1]\ncolumns = ["t", "x", "y"]\n', "columns must name x, y, p and t once each"),
])
def test_columns_that_leave_out_what_only_audio_may_say_what_is_valid(tmp_path, toml, message):
    root = _folder(tmp_path, per_class=(1, 1), classes=("a",))
    (root / "dataset.toml").write_text(toml)
    with pytest.raises(ValueError, match=message):
        get_dataset(f"folder:{root}")


def test_a_plain_audio_array_of_other_columns_or_channels_past_the_sensor_names_the_file(tmp_path):
    root = tmp_path / "kws"
    (root / "train" / "a").mkdir(parents=True)
    (root / "test" / "a").mkdir(parents=True)
    np.save(root / "train" / "a" / "0.npy", np.array([[10, 3, 1], [20, 4, 1]]))  # (t, x, p) but columns say (t, x)
    np.save(root / "test" / "a" / "0.npy", np.array([[10, 3], [20, 12]]))  # channel 12 of a 12-channel sensor
    (root / "dataset.toml").write_text('sensor_size = [12, 1, 1]\ncolumns = ["t", "x"]\n')
    info = get_dataset(f"folder:{root}")
    with pytest.raises(EventFileError, match=r"train/a/0.npy: expected 2 columns \('t', 'x'\), got shape \(2, 3\)"):
        info.load("train")[0]
    with pytest.raises(EventFileError, match=r"test/a/0.npy: event 1 has x=12, outside \[0, 12\)"):
        info.load("test")[0]


@pytest.mark.parametrize("how", ["load", "make_loaders"])
def test_a_folders_warnings_point_at_the_users_call(tmp_path, monkeypatch, how):
    """An empty class folder's, a class without test recordings' and unpadded numbers' warnings pointed at neurosim's
    own lines (folder.py's loader=lambda ...), not the user's call."""
    import shutil
    import warnings

    monkeypatch.setenv("NEUROSIM_CACHE_DIR", str(tmp_path / "cache"))
    root = _folder(tmp_path, per_class=(1, 1), classes=("1", "2", "10", "11"))
    for f in (root / "train" / "11").iterdir():
        f.unlink()
    shutil.rmtree(root / "test" / "2")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if how == "load":
            info = get_dataset(f"folder:{root}")
            info.load("train")
            info.load("test")
        else:
            make_loaders(DataConfig(dataset=f"folder:{root}", time_steps=2, batch_size=2), progress=False)
    said = {m: w for w in caught for m in ("numbers", "never trains", "test accuracy") if m in str(w.message)}
    assert len(said) == 3, [str(w.message) for w in caught]
    for w in said.values():
        assert (w.filename, w.category) == (__file__, UserWarning), (w.filename, w.lineno, str(w.message))


def test_a_recording_without_events_is_zero_frames_with_a_warning_naming_it(tmp_path, monkeypatch, capsys):
    """A recording where nothing moved (an empty array, a .bin file of no records or of timestamp-overflow markers
    alone) was a bad file ("no events (the array is empty)"), refused by training and listed by datasets check; tonic's
    ToFrame frames such events as zeros. They are read as no events, framed as zeros, and named by one warning per
    split and by datasets check, which counts them ok."""
    import warnings

    from neurosim.cli import main

    monkeypatch.setenv("NEUROSIM_CACHE_DIR", str(tmp_path / "cache"))
    root = _folder(tmp_path, per_class=(2, 1), classes=("a", "b"))
    still = [root / "train" / "a" / "still.npy", root / "train" / "b" / "none.bin", root / "train" / "b" / "wrap.bin"]
    np.save(still[0], np.zeros(0, EVENT_DTYPE))
    still[1].write_bytes(b"")  # N-MNIST's format has no header: no events, no records
    still[2].write_bytes(bytes([0, 240, 0, 0, 0]) * 2)  # two timestamp-overflow markers, no event
    train = get_dataset(f"folder:{root}").load("train")
    assert [len(train[i][0]) for i in range(len(train))] == [300, 300, 0, 300, 300, 0, 0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bundle = make_loaders(DataConfig(dataset=f"folder:{root}", time_steps=4, batch_size=4), progress=False)
    assert tuple(bundle.train_frames.shape) == (7, 4, P, H, W)
    assert [bool(bundle.train_frames[i].any()) for i in range(7)] == [True, True, False, True, True, False, False]
    said = [str(w.message) for w in caught if "no events" in str(w.message)]
    assert said == [f"folder:{root} train frames: 3 of 7 recordings hold no events, so their frames are all zero (as "
                    f"tonic's ToFrame frames them): {still[0]}, {still[1]}, {still[2]}; that is right for a recording "
                    "where nothing moved or a silent clip, else leave them out"]
    capsys.readouterr()
    assert main(["-q", "datasets", "check", f"folder:{root}"]) == 0
    out = capsys.readouterr().out
    assert "checked 9 files: 9 ok, 0 bad" in out
    assert (f"3 ok recordings hold no events (their frames are all zero: right for a recording where nothing moved, "
            f"else leave them out): {still[0]}, {still[1]}, {still[2]}") in out
    (root / "train" / "a" / "cut.bin").write_bytes(b"\x01\x02\x03")  # not a whole record: still a bad file
    assert main(["-q", "datasets", "check", f"folder:{root}"]) == 1
    assert "cut.bin: truncated" in capsys.readouterr().out

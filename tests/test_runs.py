"""neurosim.runs: loading a trained run leaves the caller's random streams alone."""

from __future__ import annotations

import errno
import warnings
from pathlib import Path

import pytest
import torch

from neurosim.runs import evaluate_checkpoint, load_or_train, load_run


@pytest.mark.parametrize("load", [
    lambda ckpt: load_run(ckpt, progress=False),
    lambda ckpt: load_or_train(ckpt, None, progress=False),
    lambda ckpt: evaluate_checkpoint(ckpt, progress=False),
], ids=["load_run", "load_or_train", "evaluate_checkpoint"])
def test_loading_a_run_does_not_advance_torchs_random_stream(tiny_checkpoint, load):
    # it builds the model, whose random initialisation the checkpoint's weights replace: that build drew from
    # torch's global stream, so a seeded script drew other numbers after it
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    load(tiny_checkpoint)
    assert torch.equal(torch.rand(3), expected)


def test_load_run_test_only_reads_no_training_frames_and_still_checks_the_data(tiny_checkpoint, monkeypatch):
    # estimate and evaluate use the test split only, but load_run loaded both (~2 GB of training frames for DVS
    # Gesture at T = 60)
    import neurosim.data.pipeline as pipeline
    import neurosim.runs as runs

    splits = []

    def spy(real):
        def load(cfg, split, *args, **kwargs):
            splits.append(split)
            return real(cfg, split, *args, **kwargs)
        return load

    monkeypatch.setattr(pipeline, "_load_frames", spy(pipeline._load_frames))
    monkeypatch.setattr(runs, "_load_frames", spy(runs._load_frames))
    _, _, full = load_run(tiny_checkpoint, progress=False)
    assert splits == ["train", "test"]
    splits.clear()
    _, _, only = load_run(tiny_checkpoint, progress=False, test_only=True)
    assert splits == ["test"] and only.train is None and only.train_frames is None
    assert (only.test_frames == full.test_frames).all() and only.fingerprint == full.fingerprint
    assert only.test.batch_size == full.test.batch_size
    splits.clear()
    assert evaluate_checkpoint(tiny_checkpoint, progress=False)["samples"] == len(full.test.labels)
    assert splits == ["test"]

    # the data-fingerprint check still runs on the test split alone
    ckpt = torch.load(tiny_checkpoint, weights_only=False)
    ckpt["data_fingerprint"] = [1, 1, "other files"]
    other = tiny_checkpoint.parent / "other.pt"
    torch.save(ckpt, other)
    with pytest.warns(RuntimeWarning, match="other data files"):
        load_run(other, progress=False, test_only=True)


def _part_way(ckpt_path):
    """``ckpt_path`` rewritten as if its run had been interrupted after batch 1 of 2 of the epoch after its own."""
    from neurosim.training.checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(ckpt_path)
    ckpt["epoch"] -= 1
    save_checkpoint(ckpt_path, {**ckpt, "partial_epoch": {"batches": 1, "epoch_batches": 2, "evaluating": False,
                                                          "ranks": []}})
    return ckpt["epoch"] + 1


@pytest.mark.parametrize("load", [
    lambda ckpt: load_run(ckpt, progress=False),
    lambda ckpt: evaluate_checkpoint(ckpt, progress=False),
], ids=["load_run", "evaluate_checkpoint"])
def test_a_part_way_checkpoints_warning_points_at_the_callers_line(tiny_checkpoint, load):
    # evaluate_checkpoint's warning pointed inside runs.py, where it calls load_run
    epoch = _part_way(tiny_checkpoint)
    with pytest.warns(RuntimeWarning, match=f"part-way through epoch {epoch}: it has trained .*the first 1 of epoch "
                                            f"{epoch}'s 2 batches") as caught:
        load(tiny_checkpoint)
    assert [w.filename for w in caught if "part-way" in str(w.message)] == [__file__]


def _recurrent_config(out_dir, method="bptt", **train):
    from neurosim.config import config_from_dict

    return config_from_dict({
        "name": f"rec-{method}", "out_dir": str(out_dir), "seed": 1,
        "data": {"dataset": "event_digits", "time_steps": 5, "batch_size": 32, "train_subset": 64, "test_subset": 32},
        "model": {"kind": "mlp", "input_shape": [2, 34, 34], "hidden": [24], "recurrent": True, "readout": "membrane"},
        "neuron": {"tau_mem_ms": 2.0},
        "train": {"epochs": 1, "lr": 0.003, "threads": 1, "method": method,
                  **({} if method == "bptt" else {"loss": "tet"}), **train},
    })


def test_a_recurrent_runs_raster_shows_its_recurrent_layer_at_every_step(tmp_path, event_digits_cache, monkeypatch):
    # the raster recorded the RLIF's LIF child, which runs once per step: the panel "layer 2.lif" held one step
    import neurosim.viz
    from neurosim.nn import RLIF
    from neurosim.runs import layer_spikes, train_run

    drawn = {}
    real = neurosim.viz.raster
    monkeypatch.setattr(neurosim.viz, "raster", lambda panels, **kw: drawn.update(panels) or real(panels, **kw))
    result = train_run(_recurrent_config(tmp_path), progress=False, figures=True)
    assert isinstance(result.model[2], RLIF)
    assert list(drawn) == ["input", "layer 2"] and tuple(drawn["layer 2"].shape) == (5, 24)
    x_seq = torch.as_tensor(result.data.test_frames[:1]).float().transpose(0, 1)
    with torch.no_grad():
        hidden, _ = result.model[2](result.model[1](result.model[0](x_seq)))
    torch.testing.assert_close(drawn["layer 2"], hidden[:, 0], rtol=0, atol=0)
    assert hidden.sum() > 0  # the layer fires: the panel is not empty by construction
    report = (result.run_dir / "report.md").read_text()
    assert "`mlp` SNN, recurrent hidden layers (RLIF)" in report and (result.run_dir / "raster.png").is_file()
    out_seq, layers = layer_spikes(result.model, x_seq)
    assert list(layers) == ["2"] and out_seq.shape == (5, 1, 10)


def test_the_raster_shows_a_cuba_layer_once_under_its_own_name():
    # a CubaLIF records through its LIF child ('1.lif'), whose input is the synaptic current; its LI child ('1.syn')
    # emits that current, not spikes: neither may show as a layer of its own
    from neurosim.config import ModelConfig, NeuronConfig
    from neurosim.nn import CubaLIF, build_model
    from neurosim.runs import layer_spikes

    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="mlp", input_shape=(12,), hidden=(8,), num_classes=3),
                        NeuronConfig(tau_syn_ms=5.0, beta=0.8, v_th=0.3)).eval()
    cubas = [name for name, m in model.named_modules() if isinstance(m, CubaLIF)]
    x_seq = (torch.rand(6, 2, 12) < 0.5).float() * 2
    out_seq, layers = layer_spikes(model, x_seq)
    assert list(layers) == cubas and len(cubas) == 2
    with torch.no_grad():
        hidden, _ = model[2](model[1](model[0](x_seq)))
    assert torch.equal(layers[cubas[0]], hidden) and hidden.sum() > 0
    assert torch.equal(out_seq, model(x_seq)[0])


# ---------------------------------------------------------------------------------------------- other commands' runs
def _run_folder_files(command: str, config_only: bool) -> dict[str, str]:
    """A run folder of ``command`` as it writes one (its config as saved, the files only it writes, report.md and a
    figure), or (``config_only``) its config.toml alone, as a run leaves it before its other files."""
    from neurosim.config import dumps_toml, load_config
    from neurosim.continual import load_continual_config
    from neurosim.lsm.config import load_lsm_config

    config = {"train": lambda: load_config("quickstart"), "continual": lambda: load_continual_config(),
              "lsm": lambda: load_lsm_config()}[command]()
    files = {"config.toml": dumps_toml(config)}
    if not config_only:
        files |= {"train": {"checkpoint.pt": "weights", "metrics.jsonl": "{}\n", "curves.png": "png"},
                  "continual": {"finished/hlop_seed0.json": "{}", "results.json": "{}", "accuracy_hlop.png": "png"},
                  "lsm": {"metrics.json": "{}", "estimates.json": "{}", "raster.png": "png"}}[command]
        files["report.md"] = f"# the {command} run's report"
    return files


#: each command's line, into <out>/r (demo: <out>/demo), that --no-resume / --overwrite may follow
_COMMANDS = {
    "train": lambda out: ["train", "--config", "quickstart", "--set", f"out_dir={out}", "name=r",
                          "data.train_subset=8", "data.test_subset=8", "train.epochs=1"],
    "continual": lambda out: ["continual", "--config", "continual_pmnist_digits", "--set", f"out_dir={out}", "name=r",
                              "seeds=[0]", "tasks.num_tasks=2", "tasks.train_subset=20", "tasks.test_subset=10"],
    "demo": lambda out: ["demo", "--out", str(out), "--epochs", "1"],
    "lsm": lambda out: ["lsm", "--set", f"out_dir={out}", "name=r", "data.train_subset=20", "data.test_subset=10"],
}


#: the option that starts a run of the same command over (demo has none)
_START_OVER = {"train": "--no-resume", "continual": "--no-resume", "lsm": "--overwrite"}


@pytest.mark.parametrize("config_only", [False, True], ids=["run", "config-only"])
@pytest.mark.parametrize("command, other, flag", [
    (c, o, flag) for c in _COMMANDS for o in ("train", "continual", "lsm") for flag in (False, True)
    if o != {"demo": "train"}.get(c, c) and (c in _START_OVER or not flag)])
def test_a_command_refuses_another_commands_run_folder_before_any_work(tmp_path, monkeypatch, capsys, command, other,
                                                                        flag, config_only):
    """`--set name=` of an LSM (or continual) run: `neurosim train` wrote its config.toml, report.md and figures over
    that run's; each run command refuses another command's folder, --no-resume / --overwrite or not, and leaves it
    as it was."""
    import neurosim.continual.runner as continual_runner
    import neurosim.lsm.run as lsm_run
    import neurosim.runs as runs
    from neurosim.cli import main

    def no_work(*args, **kwargs):
        raise RuntimeError("data loaded: the run started before refusing the folder")

    for module, name in ((runs, "make_loaders"), (continual_runner, "load_source"), (lsm_run, "load_lsm_data")):
        monkeypatch.setattr(module, name, no_work)
    run = tmp_path / ("demo" if command == "demo" else "r")
    files = _run_folder_files(other, config_only)
    for name, text in files.items():
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_text(text)
    line = _COMMANDS[command](tmp_path)
    assert main(["-q", *line[:1], *([_START_OVER[command]] if flag else []), *line[1:]]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"neurosim {command}: error: {run} holds a `neurosim {other}` run") and "\n" not in err, err
    assert (f"a `neurosim {command}` run would write over" in err
            and ("--out" if command == "demo" else "--set name=") in err), err
    assert sorted(p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()) == sorted(files)
    assert all((run / name).read_text() == text for name, text in files.items())


@pytest.mark.parametrize("command", ["train", "continual", "lsm"])
def test_a_run_folder_is_told_by_its_files_or_its_config(tmp_path, command):
    from neurosim.runs import refuse_other_commands_run, run_folder_command

    assert run_folder_command(tmp_path / "none") is None and run_folder_command(tmp_path) is None
    (tmp_path / "config.toml").write_text('name = "r"\nout_dir = "runs"\n')  # every config has these: no telling
    assert run_folder_command(tmp_path) is None
    for config_only in (True, False):
        for name, text in _run_folder_files(command, config_only).items():
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_text(text)
        assert run_folder_command(tmp_path) == command
        refuse_other_commands_run(tmp_path, command)  # its own command's run: left to that command's rules
    if command == "train":
        refuse_other_commands_run(tmp_path, "demo")  # demo trains a train run


def test_a_seed_sweep_refuses_another_commands_folder_before_training_any_seed(tmp_path, monkeypatch, capsys):
    import neurosim.runs as runs
    from neurosim.cli import main

    def no_work(*args, **kwargs):
        raise RuntimeError("data loaded: a seed was trained before the sweep's folders were checked")

    monkeypatch.setattr(runs, "make_loaders", no_work)
    run = tmp_path / "r-seed1"
    files = _run_folder_files("lsm", config_only=False)
    run.mkdir()
    for name, text in files.items():
        (run / name).write_text(text)
    assert main(["-q", "train", "--seeds", "0", "1", *_COMMANDS["train"](tmp_path)[1:]]) == 2
    assert f"{run} holds a `neurosim lsm` run" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r-seed1"]  # seed 0's folder not started, no summary
    assert all((run / name).read_text() == text for name, text in files.items())


def test_remove_outputs_of_takes_only_neurosims_files_and_says_what_it_could_not_remove(tmp_path, monkeypatch):
    from neurosim.runs import remove_outputs_of

    model = tmp_path / "hlop_seed0.pt"  # (gone already: what was made of it is what goes)
    estimate = tmp_path / "estimate-hlop_seed0"
    estimate.mkdir()
    for name in ("estimate.txt", "energy.png", "early_exit.json", "notes.md"):
        (estimate / name).write_text("x")
    (estimate / "estimate.json").write_text('{"activity": {}, "targets": {}}')  # (as an estimate writes it)
    (tmp_path / "model-hlop_seed0.nir").write_bytes(b"\x89HDF\r\n\x1a\n not neurosim's")  # another tool's NIR file
    (tmp_path / "estimate-other").mkdir()  # another model's
    (tmp_path / "estimate-other" / "estimate.json").write_text('{"activity": {}, "targets": {}}')
    unlink = Path.unlink

    def refuse(self, *args, **kwargs):
        if self.name == "energy.png":
            raise PermissionError(13, "Permission denied")
        return unlink(self, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", refuse)
    with pytest.warns(RuntimeWarning, match=r"energy.png could not be removed \(Permission denied\): it is of the "
                                            r"model .*hlop_seed0.pt held before it was replaced"):
        removed = remove_outputs_of(model)
    assert sorted(p.name for p in removed) == ["early_exit.json", "estimate.json", "estimate.txt"]
    assert sorted(p.name for p in estimate.iterdir()) == ["energy.png", "notes.md"]
    assert (tmp_path / "model-hlop_seed0.nir").is_file() and (tmp_path / "estimate-other" / "estimate.json").is_file()


def test_remove_outputs_of_takes_an_estimate_stopped_part_way_and_not_an_estimate_json_of_ones_own(tmp_path):
    """The estimate folder of a replaced model was kept where the estimate had stopped before its estimate.json (its
    files then sat beside the new model as its own); a folder whose estimate.json the user wrote was cleared."""
    import json

    from neurosim.estimation import INCOMPLETE_MARK, _INCOMPLETE_FORMAT
    from neurosim.runs import remove_outputs_of

    stopped = tmp_path / "estimate-a"
    stopped.mkdir()
    (stopped / INCOMPLETE_MARK).write_text(json.dumps({"format": _INCOMPLETE_FORMAT}))
    for name in ("activity.json", "model.nir", "energy.png"):
        (stopped / name).write_text("x")
    theirs = tmp_path / "estimate-b"
    theirs.mkdir()
    for name in ("estimate.json", "estimate.txt"):
        (theirs / name).write_text("my own")
    removed = remove_outputs_of(tmp_path / "a.pt")
    assert sorted(p.name for p in removed) == sorted(["activity.json", "energy.png", INCOMPLETE_MARK, "estimate-a",
                                                      "model.nir"])
    assert not stopped.exists()
    assert remove_outputs_of(tmp_path / "b.pt") == [] and sorted(p.name for p in theirs.iterdir()) == [
        "estimate.json", "estimate.txt"]


def _chmod_stops_writes(tmp_path: Path) -> bool:
    """Whether a folder made read-only here refuses a new file (not as root, whose writes chmod does not stop)."""
    probe = tmp_path / "probe"
    probe.mkdir()
    probe.chmod(0o555)
    try:
        (probe / "x").touch()
    except PermissionError:
        return True
    finally:
        probe.chmod(0o755)
    return False


@pytest.mark.parametrize("where, mode, said", [
    ("estimate-hlop_seed0", 0o555, "{est}/energy.png, {est}/estimate.json could not be removed"),
    ("estimate-hlop_seed0", 0o600, "{est} could not be read"),  # not searchable: a PermissionError raised before
    ("model-hlop_seed0.nir", 0o000, "{nir} could not be read"),  # not readable: a PermissionError raised before
])
def test_remove_outputs_of_says_which_path_its_permissions_kept(tmp_path, where, mode, said):
    """A folder or file whose permissions stop remove_outputs_of is one warning naming it, never an error: the run
    that replaced the model has done (or is to do) its own work, which what is left beside the old model must not
    stop. Skipped as root, where chmod does not stop writes."""
    from neurosim.runs import remove_outputs_of

    if not _chmod_stops_writes(tmp_path):
        pytest.skip("chmod does not stop this user's writes (root)")
    estimate, nir = tmp_path / "estimate-hlop_seed0", tmp_path / "model-hlop_seed0.nir"
    estimate.mkdir()
    (estimate / "estimate.json").write_text('{"activity": {}, "targets": {}}')  # (as an estimate writes it)
    (estimate / "energy.png").write_text("x")
    nir.write_bytes(b"\x89HDF\r\n\x1a\n")
    (tmp_path / where).chmod(mode)
    try:
        with pytest.warns(RuntimeWarning) as caught:
            removed = remove_outputs_of(tmp_path / "hlop_seed0.pt")
    finally:
        (tmp_path / where).chmod(0o755 if (tmp_path / where).is_dir() else 0o644)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1 and messages[0].startswith(f"{said.format(est=estimate, nir=nir)} (Permission denied): ")
    assert f"of the model {tmp_path / 'hlop_seed0.pt'} held before it was replaced" in messages[0]
    assert nir.is_file()  # (whose it is cannot be told, or not neurosim's: it stays)
    if where == nir.name:  # the estimate folder beside the model is neurosim's, and goes
        assert removed == [estimate / "energy.png", estimate / "estimate.json", estimate] and not estimate.exists()
    else:
        assert removed == [] and sorted(p.name for p in estimate.iterdir()) == ["energy.png", "estimate.json"]


def test_storing_a_moved_data_root_maps_each_checkpoint_and_rewrites_only_those_that_moved(tmp_path, monkeypatch):
    """Every train run ends by asking its checkpoints which data.root they store, and loaded each whole for it (the
    weights and optimizer state of a large model, twice with best.pt): the root is read with the tensors mapped now.
    What a moved root stores is as before: the file written from the whole checkpoint, the root alone changed."""
    from dataclasses import replace

    from neurosim.config import config_from_dict, config_to_dict
    from neurosim.runs import _file_identity, _store_data_root
    from neurosim.training.checkpoint import load_checkpoint, save_checkpoint

    cfg = config_from_dict({"data": {"root": str(tmp_path / "data")}})
    payload = {"model": {"w": torch.arange(12.0).reshape(3, 4)}, "epoch": 2, "config": config_to_dict(cfg),
               "optimizer": {"state": {0: {"momentum_buffer": torch.ones(3, 4)}}}}
    for name in ("checkpoint.pt", "best.pt"):
        save_checkpoint(tmp_path / name, payload)
    identity = {name: _file_identity(tmp_path / name) for name in ("checkpoint.pt", "best.pt")}
    loads = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **kw: loads.append(kw.get("mmap", False)) or real_load(*a, **kw))
    _store_data_root(tmp_path, cfg)  # the same root: each file mapped, none written
    assert loads == [True, True]
    assert all(_file_identity(tmp_path / name) == was for name, was in identity.items())
    # moved: checkpoint.pt's root changes (read whole to be written again), best.pt's already is this run's
    expected = load_checkpoint(tmp_path / "checkpoint.pt")
    expected["config"]["data"]["root"] = str(tmp_path / "moved")
    save_checkpoint(tmp_path / "expected.pt", expected)
    save_checkpoint(tmp_path / "best.pt", expected)
    loads.clear()
    with pytest.warns(RuntimeWarning, match=r"\(checkpoint.pt stored .*data\); its checkpoints now store this run's"):
        _store_data_root(tmp_path, replace(cfg, data=replace(cfg.data, root=str(tmp_path / "moved"))))
    assert loads[:2] == [True, False] and loads[2:] == [True]
    assert (tmp_path / "checkpoint.pt").read_bytes() == (tmp_path / "expected.pt").read_bytes()


def test_a_mapped_checkpoint_read_takes_a_legacy_file_whole_and_names_a_corrupt_one(tmp_path):
    """load_checkpoint(mmap=True) maps a zip-format file's tensors; torch cannot map its legacy format, which is read
    whole (a file saved so by a script of one's own), and a file that is no checkpoint is the CheckpointError of an
    ordinary read, not torch's mmap error."""
    from neurosim.training.checkpoint import CheckpointError, load_checkpoint

    payload = {"format": 1, "model": {"w": torch.arange(6.0)}, "config": {"data": {"root": "r"}}}
    torch.save(payload, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    loaded = load_checkpoint(tmp_path / "legacy.pt", mmap=True)
    assert loaded["config"] == payload["config"] and torch.equal(loaded["model"]["w"], payload["model"]["w"])
    (tmp_path / "notes.pt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match=r"notes.pt' could not be read"):
        load_checkpoint(tmp_path / "notes.pt", mmap=True)


def test_checking_that_a_run_may_resume_maps_its_checkpoint_rather_than_reading_it(tmp_path, event_digits_cache,
                                                                                   monkeypatch):
    # a rerun first asks whether the folder's checkpoint may continue as the config: its config and record, which
    # read the whole file (weights and optimizer state) before the Trainer read it again
    import neurosim.runs as runs
    from neurosim.cli import main

    args = ["-q", "train", "--config", "quickstart", "--set", f"out_dir={tmp_path}", "name=r", "data.train_subset=16",
            "data.test_subset=8", "data.time_steps=2", "train.epochs=1"]
    assert main(args) == 0
    calls = []
    real = runs.load_checkpoint
    monkeypatch.setattr(runs, "load_checkpoint", lambda path, *a, **kw: calls.append(kw) or real(path, *a, **kw))
    assert main(args) == 0
    assert calls and all(kw.get("mmap") is True for kw in calls)


@pytest.mark.parametrize("stopped_by", [ValueError("the data's labels are wrong"), KeyboardInterrupt()])
def test_a_stopped_runs_own_error_surfaces_when_warnings_are_errors(tmp_path, monkeypatch, stopped_by):
    """A run that replaced its checkpoint and then stopped warns, as it stops, that the earlier model's estimate
    went with it; under ``-W error`` that warning was raised from the run's ``finally`` and replaced the error that
    stopped the run. The run's own error surfaces, the estimate still goes, and the warning is a note on the error."""
    import neurosim.runs as runs
    from neurosim.training.distributed import World

    run = tmp_path / "r"
    (run / "estimate").mkdir(parents=True)
    (run / "checkpoint.pt").write_bytes(b"the earlier model")
    (run / "estimate" / "estimate.json").write_text('{"activity": {}, "targets": {}}')  # (as an estimate writes it)

    def replaces_then_stops(cfg, run_dir, *args):
        (run_dir / ".new").write_bytes(b"the new model")
        (run_dir / ".new").replace(run_dir / "checkpoint.pt")  # (as an atomic write replaces it)
        raise stopped_by

    monkeypatch.setattr(runs, "_train_started", replaces_then_stops)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(type(stopped_by)) as info:
            runs._train_in_folder(None, run, False, False, False, World(), 0.0)
    assert info.value is stopped_by
    assert not (run / "estimate").exists()
    if hasattr(stopped_by, "add_note"):  # Python 3.11+
        assert len(info.value.__notes__) == 1 and "RuntimeWarning" in info.value.__notes__[0]
        assert "estimate described checkpoint.pt as it was before this run" in info.value.__notes__[0]


def test_a_finished_run_removes_every_replaced_models_outputs_before_a_warning_raises(tmp_path, monkeypatch):
    """A run that replaced checkpoint.pt and best.pt warns that each one's estimate went with it; under ``-W error``
    the warning about checkpoint.pt raised before best.pt's estimate was removed, which then passed for the new
    best model's. Both go first; the warning (now an error) still says what went."""
    import neurosim.runs as runs
    from neurosim.training.distributed import World

    run = tmp_path / "r"
    for model, folder in (("checkpoint.pt", "estimate"), ("best.pt", "estimate-best")):
        (run / folder).mkdir(parents=True)
        (run / model).write_bytes(b"the earlier model")
        (run / folder / "estimate.json").write_text('{"activity": {}, "targets": {}}')  # (as an estimate writes it)

    def replaces_both(cfg, run_dir, *args):
        for model in ("checkpoint.pt", "best.pt"):
            (run_dir / ".new").write_bytes(b"the new model")
            (run_dir / ".new").replace(run_dir / model)  # (as an atomic write replaces it)
        return "the result"

    monkeypatch.setattr(runs, "_train_started", replaces_both)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeWarning, match="estimate described checkpoint.pt as it was before this run"):
            runs._train_in_folder(None, run, False, False, False, World(), 0.0)
    assert not (run / "estimate").exists() and not (run / "estimate-best").exists()
    # warnings shown: one per model, after both were removed
    for model, folder in (("checkpoint.pt", "estimate"), ("best.pt", "estimate-best")):
        (run / folder).mkdir()
        (run / model).write_bytes(b"the earlier model")
        (run / folder / "estimate.json").write_text('{"activity": {}, "targets": {}}')
    with pytest.warns(RuntimeWarning) as caught:
        assert runs._train_in_folder(None, run, False, False, False, World(), 0.0) == "the result"
    assert [str(w.message).split(" described ")[0] for w in caught] == [f"{run}: estimate", f"{run}: estimate-best"]


def test_starting_continual_over_removes_every_earlier_models_outputs_before_a_warning_raises(tmp_path, monkeypatch):
    """``neurosim continual --no-resume`` over results of other settings removes their models' estimates; a
    warning about the first (a file it could not remove) raised under ``-W error`` before the next's were removed."""
    from neurosim.continual.runner import _keep_other_settings

    run = tmp_path / "c"
    (run / "finished").mkdir(parents=True)
    for stem in ("a_seed0", "b_seed0"):
        (run / "finished" / f"{stem}.json").write_text('{"fingerprint": "other"}')
        est = run / "models" / f"estimate-{stem}"
        est.mkdir(parents=True)
        (est / "estimate.json").write_text('{"activity": {}, "targets": {}}')
    # a file of the first model's estimate cannot be removed: one warning, said after the second's is removed
    stuck = run / "models" / "estimate-a_seed0" / "energy.png"
    stuck.write_bytes(b"png")
    real_unlink = Path.unlink

    def unlink(self, *args, **kwargs):
        if self == stuck:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_unlink(self, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", unlink)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeWarning, match="estimate-a_seed0/energy.png could not be removed"):
            _keep_other_settings(None, run, ("mine",), resume=False)
    assert not (run / "models" / "estimate-b_seed0").exists()
    assert [p.name for p in stuck.parent.iterdir()] == ["energy.png"]


def test_labels_past_the_class_names_of_the_datasets_files_are_a_config_error_before_training(tmp_path):
    """Frames cached from SHD-format files whose labels pass their extra/keys (loading such files is an error now,
    caching them was not) trained, and evaluate had no name for those classes."""
    from types import SimpleNamespace

    import numpy as np

    from neurosim.config import ConfigError, load_config
    from neurosim.runs import _check_labels

    cfg = load_config("shd", [f"data.root={tmp_path}"])
    info = SimpleNamespace(class_names=lambda root: ("a", "b", "c"), num_classes=20)
    data = SimpleNamespace(info=info, train=SimpleNamespace(labels=np.array([0, 5])),
                           test=SimpleNamespace(labels=np.array([1])))
    with pytest.raises(ConfigError, match=r"data.dataset: dataset 'shd' has labels up to 5 but its files name 3 "
                                          r"classes, and a label is its class's index there; `neurosim datasets "
                                          r"check shd` names the files"):
        _check_labels(cfg, data)
    data.train.labels = np.array([0, 2])
    with pytest.warns(RuntimeWarning, match="has 3 classes"):  # shd.toml's 20 outputs for 3 classes (as before)
        _check_labels(cfg, data)

"""The `neurosim` command line: the documented subcommands work, bad input gives one clear line and status 2."""

from __future__ import annotations

import shlex
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from neurosim.cli import main


def test_datasets_list_shows_the_bundled_dataset_and_where_it_is(event_digits_cache, capsys):
    assert main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("event_digits"))
    assert "on disk" in row and "34x34x2" in row and str(event_digits_cache) in row


def test_train_then_evaluate_a_tiny_run(tmp_path, event_digits_cache, capsys):
    args = ["-q", "train", "--config", "quickstart", "--set", "name=cli", f"out_dir={tmp_path}",
            "data.train_subset=64", "data.test_subset=32", "data.time_steps=4", "train.epochs=1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"run folder: {tmp_path / 'cli'}" in out and "test accuracy:" in out
    run = tmp_path / "cli"
    assert {"report.md", "curves.png", "raster.png", "frames.png", "checkpoint.pt"} <= {p.name for p in run.iterdir()}
    assert main(["-q", "evaluate", "--checkpoint", str(run / "checkpoint.pt")]) == 0
    out = capsys.readouterr().out
    assert "test accuracy:" in out and "(32 samples)" in out
    per_class = [line.split() for line in out.splitlines()[2:]]  # event digits have no names: the labels' numbers
    assert out.splitlines()[1] == "per class:" and [row[:2] for row in per_class] == [["class", f"{i}"] for i in
                                                                                        range(len(per_class))]
    assert sum(int(row[-2].lstrip("(")) for row in per_class) == 32
    assert main(["evaluate", "--checkpoint", str(run), "-q"]) == 0  # the run folder will do; -q after the command
    assert "(32 samples)" in capsys.readouterr().out
    # resuming with a different config is refused instead of silently mixing runs, naming what differs …
    assert main(args[:-1] + ["train.lr=0.5"]) == 2
    assert "different config (train.lr differs)" in capsys.readouterr().err
    # … but where and how long it runs may change, and how its folder is spelled (another thread count warns that
    # the sums round differently)
    written_with = torch.load(run / "checkpoint.pt", weights_only=False)["cpu_threads"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(args[:-1] + ["train.epochs=2", "train.threads=1", "train.device=cpu", "data.num_workers=1"]) == 0
    warned = [str(w.message) for w in caught if "CPU thread(s) per process" in str(w.message)]
    assert len(warned) == (written_with != 1), warned
    # a finished run asked for fewer epochs than it has: refused, not silently left inconsistent
    assert main(args[:-1] + ["train.epochs=1"]) == 2
    assert "has already trained 2 epochs, more than the 1 asked" in capsys.readouterr().err
    if not torch.cuda.is_available():  # a checkpoint trained on a GPU evaluates on a machine without one
        ckpt = torch.load(run / "checkpoint.pt", weights_only=False)
        ckpt["config"]["train"]["device"] = "cuda"
        torch.save(ckpt, tmp_path / "gpu.pt")
        with pytest.warns(RuntimeWarning, match="train.device = 'cuda', which this machine lacks; loading it on the CPU"):
            assert main(["-q", "evaluate", "--checkpoint", str(tmp_path / "gpu.pt")]) == 0


@pytest.mark.parametrize("override, words", [
    ("neuron.tau_mem_ms=-1", ["neuron.tau_mem_ms"]),
    ("data.time_steps=0", ["data.time_steps"]),
    ("train.bogus=1", ["train.bogus", "unknown"]),
    ("train.lr=fast", ["train.lr"]),
    ("data.dataset=mnist", ["data.dataset", "unknown dataset 'mnist'", "event_digits"]),
    ("model.kernel_size=40", ["model.input_shape", "too small"]),
    ("model.input_pool=64", ["model.input_pool 64 is larger than the input"]),
    ("model.num_classes=5", ["model.num_classes", "labels up to 9", "model.num_classes = 10"]),
    pytest.param("train.device=cuda", ["train.device", "CUDA is not available"],
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")),
])
def test_bad_config_values_are_rejected_before_any_work(tmp_path, capsys, override, words):
    code = main(["train", "--config", "quickstart", "--set", f"out_dir={tmp_path}", override])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("neurosim train: error:") and err.count("\n") == 1
    for w in words:
        assert w in err
    assert not any(tmp_path.iterdir())  # nothing was created


def test_missing_config_and_checkpoint_are_named(tmp_path, capsys):
    assert main(["train", "--config", str(tmp_path / "nope.toml")]) == 2
    assert "nope.toml" in capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", str(tmp_path / "missing.pt")]) == 2
    assert "missing.pt" in capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", str(tmp_path)]) == 2
    assert "is a folder without a checkpoint.pt" in capsys.readouterr().err


def test_an_output_folder_that_cannot_be_made_is_named_before_any_work(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("mine")
    for key, argv in (("out_dir", ["train", "--config", "quickstart", "--set", f"out_dir={afile}"]),
                      ("out_dir", ["train", "--config", "quickstart", "--set", f"out_dir={tmp_path}", "name=afile"]),
                      ("--out", ["demo", "--out", str(afile)])):  # each named as the user gave it
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{key}: {afile} is a file, not a folder" in err, err
    assert afile.read_text() == "mine"


def test_a_folder_without_write_permission_is_named_with_its_cause(tmp_path, monkeypatch):
    import os

    from neurosim._io import OutputPathError, check_output_folder

    monkeypatch.setattr(os, "access", lambda p, mode: False)
    with pytest.raises(OutputPathError, match=r"--out: cannot write in .* \((no permission|a read-only file system)\); "
                                              r"choose another --out"):
        check_output_folder(tmp_path / "x", "--out")


def test_an_interrupted_run_says_what_it_kept(tmp_path, capsys, monkeypatch):
    import neurosim.runs

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(neurosim.runs, "train_run", stop)
    assert main(["train", "--config", "quickstart", "--set", f"out_dir={tmp_path}"]) == 130
    assert "before the first checkpoint: no checkpoint was saved" in capsys.readouterr().err
    (tmp_path / "quickstart").mkdir()
    (tmp_path / "quickstart" / "checkpoint.pt").write_bytes(b"")
    assert main(["train", "--config", "quickstart", "--set", f"out_dir={tmp_path}"]) == 130
    assert "checkpoint.pt holds this run's last checkpoint: rerun the same command to resume" in \
        capsys.readouterr().err


def test_sigterm_stops_a_command_as_ctrl_c_does_with_status_143(tmp_path, capsys, monkeypatch):
    import signal

    import neurosim.runs
    from neurosim.cli import Terminated

    def terminated(*args, **kwargs):
        assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN, None)  # handled meanwhile
        raise Terminated

    handler = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(neurosim.runs, "train_run", terminated)
    (tmp_path / "quickstart").mkdir()
    (tmp_path / "quickstart" / "checkpoint.pt").write_bytes(b"")
    assert main(["train", "--config", "quickstart", "--set", f"out_dir={tmp_path}"]) == 143
    assert "terminated (SIGTERM); " in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) == handler  # main() puts the caller's handler back


def test_a_sigterm_handled_inside_a_del_still_stops_the_command(tmp_path, capsys, monkeypatch):
    # Python ignores an exception raised in __del__ ("Exception ignored in ..."): a SIGTERM whose handler ran there
    # (training.memory's _Held.__del__ runs all through a backward pass) was lost, and as the handler had set SIGTERM
    # to be ignored, no later SIGTERM stopped the command either (a torchrun worker went on to a collective the other
    # worker had left and failed there with a traceback)
    import os
    import signal
    import time

    import neurosim.runs

    class Dying:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGTERM)
            len("")  # a call: the pending handler runs here, inside __del__

    def train(*args, **kwargs):
        Dying()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            time.sleep(0.01)
        raise AssertionError("still running 5 s after SIGTERM")

    hook, handler = sys.unraisablehook, signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(neurosim.runs, "train_run", train)
    assert main(["train", "--config", "quickstart", "--set", f"out_dir={tmp_path}"]) == 143
    err = capsys.readouterr().err
    assert "terminated (SIGTERM)" in err and "Exception ignored" not in err, err
    assert sys.unraisablehook is hook and signal.getsignal(signal.SIGTERM) == handler


def test_main_called_from_python_puts_back_the_process_settings_it_changed(tmp_path, monkeypatch):
    # a notebook's or a test's sys.stdout stayed line-buffered after main(), and train.threads set torch's thread
    # count for the rest of the process; the SIGTERM handler and sys.unraisablehook came back already
    import io
    import signal
    import types

    import neurosim.runs

    threads = torch.get_num_threads()
    run_threads = 1 if threads != 1 else 2
    seen = []

    def train(cfg, **kwargs):
        torch.set_num_threads(cfg.train.threads)  # what the Trainer does with train.threads
        seen.append((sys.stdout.line_buffering, torch.get_num_threads()))
        if kwargs.get("resume"):
            raise KeyboardInterrupt
        return types.SimpleNamespace(run_dir=tmp_path / "quickstart", history=[{"test_acc": 0.5}])

    monkeypatch.setattr(neurosim.runs, "train_run", train)
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", stdout)
    hook, handler = sys.unraisablehook, signal.getsignal(signal.SIGTERM)
    argv = ["train", "--config", "quickstart", "--set", f"out_dir={tmp_path}", f"train.threads={run_threads}"]
    try:
        assert main([*argv, "--no-resume"]) == 0  # returns
        assert main(argv) == 130  # interrupted
        with pytest.raises(SystemExit):
            main(["--version"])  # argparse exits
        assert seen == [(True, run_threads)] * 2  # line-buffered while it ran
        assert not stdout.line_buffering and torch.get_num_threads() == threads
        assert sys.unraisablehook is hook and signal.getsignal(signal.SIGTERM) == handler
    finally:
        torch.set_num_threads(threads)


def _cli(tmp_path, *settings: str) -> tuple[list[str], dict[str, str]]:
    """``python -m neurosim train`` of a small quickstart run in ``tmp_path/job``, with the environment of a batch job
    (no PYTHONUNBUFFERED: standard output to a file is then block-buffered unless neurosim says otherwise)."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    argv = [sys.executable, "-m", "neurosim", "train", "--config", "quickstart", "--set", "name=job",
            f"out_dir={tmp_path}", "data.train_subset=64", "data.test_subset=32", "data.time_steps=4", *settings]
    return argv, env


def test_a_batch_jobs_log_shows_each_epoch_as_it_ends_and_sigterm_keeps_the_checkpoint(tmp_path, event_digits_cache):
    import signal
    import time

    argv, env = _cli(tmp_path, "train.epochs=1000")
    log, err = tmp_path / "job.out", tmp_path / "job.err"
    with open(log, "w") as out, open(err, "w") as errors:
        job = subprocess.Popen(argv, stdout=out, stderr=errors, env=env)
        try:  # two epochs done (the second's metrics are written after the first's line is printed) …
            metrics, deadline = tmp_path / "job" / "metrics.jsonl", time.monotonic() + 120
            while job.poll() is None and time.monotonic() < deadline and not (
                    metrics.is_file() and metrics.read_text().count("\n") >= 2):
                time.sleep(0.1)
            # … and the first epoch's line is in the log, not in an 8 KiB buffer written when the job ends
            assert "epoch=1 " in log.read_text(), f"no epoch line in the log while the job ran: {err.read_text()}"
            job.send_signal(signal.SIGTERM)  # what slurm sends before it kills the job
            assert job.wait(timeout=60) == 143
        finally:
            job.kill()
            job.wait()
    message = err.read_text()  # (the epoch under way stops at its batch's end, checkpointed part-way through)
    assert "terminated (SIGTERM); " in message and "holds this run's last checkpoint (epoch " in message and \
        "): rerun the same command to resume" in message and "Traceback" not in message, message
    run = tmp_path / "job"
    assert (run / "checkpoint.pt").is_file()
    assert not any(p.name == ".lock" or p.name.endswith(".tmp") for p in run.iterdir()), list(run.iterdir())
    assert torch.load(run / "checkpoint.pt", weights_only=False)["epoch"] >= 1


#: ``python -c`` this, then ``neurosim train`` arguments: SIGTERM reaches the process inside its third optimizer step
_TERMINATED_IN_STEP_3 = """
import os, signal, sys, torch
from neurosim.cli import main
real, calls = torch.optim.Adam.step, []
def step(self, *args, **kwargs):
    calls.append(1)
    if len(calls) == 3:
        os.kill(os.getpid(), signal.SIGTERM)
    return real(self, *args, **kwargs)
torch.optim.Adam.step = step
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_part_way_through_an_epoch_keeps_its_batches_and_a_rerun_continues_there(tmp_path,
                                                                                         event_digits_cache, capsys):
    import json

    argv, env = _cli(tmp_path, "train.epochs=2", "train.threads=2", "-q")  # 2 batches of 32 per epoch
    job = subprocess.run([sys.executable, "-c", _TERMINATED_IN_STEP_3, *argv[3:]], env=env, capture_output=True,
                         text=True, timeout=300)
    ckpt = tmp_path / "job" / "checkpoint.pt"
    assert job.returncode == 143, job.stderr
    assert job.stderr.strip().splitlines()[-1] == (
        f"terminated (SIGTERM); {ckpt} holds this run's last checkpoint (epoch 1 and the first 1 of epoch 2's 2 "
        "batches): rerun the same command to resume at batch 2 of epoch 2")
    assert main(argv[3:]) == 0  # the same command, rerun
    assert main(["name=whole" if a == "name=job" else a for a in argv[3:]]) == 0  # never interrupted

    def metrics(name):
        lines = (tmp_path / name / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(line).items() if not k.endswith("time_s")} for line in lines]

    assert metrics("job") == metrics("whole") and len(metrics("job")) == 2
    job_weights = torch.load(ckpt, weights_only=False)["model"]
    for k, v in torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=False)["model"].items():
        assert torch.equal(v, job_weights[k]), k


def test_a_reader_that_goes_away_stops_training_quietly(tmp_path, event_digits_cache):
    argv, env = _cli(tmp_path, "train.epochs=40")  # `neurosim train ... | head -1`
    err = tmp_path / "job.err"
    with open(err, "w") as errors:
        job = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errors, env=env, text=True)
        try:
            assert job.stdout.readline().startswith("epoch=1 ")
            job.stdout.close()
            assert job.wait(timeout=120) == 141  # 128 + SIGPIPE, as the shell reports a writer SIGPIPE stopped
        finally:
            job.kill()
            job.wait()
    assert "Traceback" not in err.read_text() and "BrokenPipe" not in err.read_text(), err.read_text()
    run = tmp_path / "job"
    assert (run / "checkpoint.pt").is_file() and not (run / ".lock").exists()


def test_a_broken_pipe_that_is_not_stdout_is_a_failure_with_its_traceback(tmp_path):
    # only standard output's reader going away is a quiet stop (141); another pipe or socket breaking is an error
    script = ("import sys, neurosim.cli as cli\n"
              "def broken(command): raise BrokenPipeError(32, 'Broken pipe')\n"
              "cli._check_launch = broken\n"
              "sys.exit(cli.main(['datasets', 'list']))\n")
    with open(tmp_path / "out.txt", "w") as out:
        done = subprocess.run([sys.executable, "-c", script], stdout=out, stderr=subprocess.PIPE, text=True,
                              timeout=120)
    assert done.returncode == 1 and "BrokenPipeError" in done.stderr, (done.returncode, done.stderr)


@pytest.mark.parametrize("argv, words", [
    (["train", "--config", "continual_pmnist_digits"],
     "is a config for `neurosim continual`, not `neurosim train`: run `neurosim continual --config "
     "continual_pmnist_digits`"),
    (["train", "--config", "lsm_event_digits"], "is a config for `neurosim lsm`"),
    # was "seed: unknown key" / "data.batch_size: unknown key"
    (["continual", "--config", "quickstart"], "quickstart.toml is a config for `neurosim train`, not `neurosim "
                                              "continual`: run `neurosim train --config quickstart`"),
    (["lsm", "--config", "nmnist"],
     "is a config for `neurosim train`, not `neurosim lsm`: run `neurosim train --config nmnist`"),
    (["lsm", "--config", "continual_pmnist_digits"], "is a config for `neurosim continual`, not `neurosim lsm`"),
    (["continual", "--config", "lsm_event_digits"], "is a config for `neurosim lsm`, not `neurosim continual`"),
    (["train", "--config", "."], "is a folder; give a .toml file"),
    (["train", "--config", "quickstart", "--set", "=3"], "override '=3': the key path '' has an empty part"),
    (["demo", "--epochs", "0"], "--epochs must be at least 1, got 0"),
])
def test_misdirected_input_gets_a_pointer(argv, words, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err, err
    assert not any(tmp_path.iterdir())


def test_train_lists_only_its_own_shipped_configs(capsys):
    assert main(["train", "--config", "nope"]) == 2
    err = capsys.readouterr().err
    assert "quickstart" in err and "continual_pmnist_digits" not in err and "lsm_event_digits" not in err


def test_starting_over_keeps_the_earlier_run_until_the_new_one_has_an_epoch(tmp_path, event_digits_cache, capsys,
                                                                            monkeypatch):
    from neurosim.runs import STALE_MARK
    from neurosim.training import Trainer

    args = ["-q", "train", "--config", "quickstart", "--set", f"out_dir={tmp_path}", "name=r", "data.train_subset=32",
            "data.test_subset=16", "data.time_steps=4", "train.epochs=1"]
    assert main(args) == 0
    run = tmp_path / "r"
    # the earlier model's estimate and export, and notes of one's own in the estimate's folder
    assert main(["-q", "estimate", "--checkpoint", str(run), "--target", "loihi", "--samples", "4"]) == 0
    assert main(["-q", "export", "--checkpoint", str(run), "--maxpool", "sumpool"]) == 0
    (run / "estimate" / "notes.txt").write_text("mine")
    before = {n: (run / n).read_bytes() for n in ("checkpoint.pt", "metrics.jsonl", "config.toml", "model.nir",
                                                 "estimate/estimate.json", "estimate/energy.png")}
    report = (run / "report.md").read_text()

    def stop(self, loader, *args, **kwargs):
        raise KeyboardInterrupt

    train_epoch = Trainer._train_epoch
    monkeypatch.setattr(Trainer, "_train_epoch", stop)
    assert main([*args, "seed=5", "--no-resume"]) == 130  # stopped before its first epoch ended
    assert "checkpoint.pt is still the earlier run's (rerun with --no-resume to start over again" in \
        capsys.readouterr().err
    assert {n: (run / n).read_bytes() for n in before} == before  # nothing of the earlier run is gone
    marked = (run / "report.md").read_text()
    assert marked.startswith(STALE_MARK) and marked.endswith(report)
    monkeypatch.setattr(Trainer, "_train_epoch", train_epoch)
    assert main([*args, "seed=5", "--no-resume"]) == 0
    assert (run / "checkpoint.pt").read_bytes() != before["checkpoint.pt"]
    assert not (run / "report.md").read_text().startswith(STALE_MARK)
    # the earlier model's estimate and export went with it (they would pass for the new model's); the notes stay
    assert not (run / "model.nir").exists() and sorted(p.name for p in (run / "estimate").iterdir()) == ["notes.txt"]


def test_a_resumed_run_that_trains_further_takes_the_estimate_and_export_of_its_earlier_model_with_it(
        tmp_path, event_digits_cache):
    """A run resumed with more epochs rewrote checkpoint.pt and best.pt, but estimate/ and model.nir described the
    model before it (figures of the first epoch beside a checkpoint of the second); they go as they do when a run
    starts over, with a warning naming them, and files of one's own stay."""
    args = ["-q", "train", "--config", "quickstart", "--set", f"out_dir={tmp_path}", "name=r", "data.train_subset=32",
            "data.test_subset=16", "data.time_steps=4", "data.val_split=0.5"]
    assert main([*args, "train.epochs=1"]) == 0
    run = tmp_path / "r"
    for ckpt in ("checkpoint.pt", "best.pt"):
        assert main(["-q", "estimate", "--checkpoint", str(run / ckpt), "--target", "loihi", "--samples", "4"]) == 0
    assert main(["-q", "export", "--checkpoint", str(run), "--maxpool", "sumpool"]) == 0
    (run / "estimate" / "notes.txt").write_text("mine")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # resumed with nothing to train: nothing is stale
        assert main([*args, "train.epochs=1"]) == 0
    assert (run / "estimate" / "estimate.json").is_file() and (run / "model.nir").is_file()
    with pytest.warns(RuntimeWarning, match=rf"{run}: estimate, model.nir described checkpoint.pt as it was before "
                                            r"this run trained it further \(resumed\)") as caught:
        assert main([*args, "train.epochs=2"]) == 0
    assert not (run / "model.nir").exists() and sorted(p.name for p in (run / "estimate").iterdir()) == ["notes.txt"]
    said = [str(w.message) for w in caught if "would have passed for the new model's" in str(w.message)]
    if (run / "estimate-best").exists():  # best.pt still epoch 1's (its validation accuracy not beaten)
        assert len(said) == 1 and (run / "estimate-best" / "estimate.json").is_file()
    else:
        assert len(said) == 2 and "estimate-best described best.pt" in said[1]


def test_training_out_of_memory_is_one_line_that_points_bptt_at_sltt(tmp_path, capsys, monkeypatch):
    from neurosim.training.methods import BPTT

    def fails(self, model, x_seq, y, loss):  # as torch's CPU allocator raises it under `ulimit -v`
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 7372800 bytes. Error "
                           "code 12 (Cannot allocate memory)")

    monkeypatch.setattr(BPTT, "forward_backward", fails)
    assert main(["-q", "train", "--config", "quickstart", "--set", f"out_dir={tmp_path}", "name=r",
                 "data.train_subset=32", "data.test_subset=16", "data.time_steps=4", "train.epochs=1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("neurosim train: error: training ran out of memory in batch 1 of epoch 1 (32 samples × T = "
                          "4 steps, on cpu): BPTT keeps every one") and "train.method=sltt" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_full_disk_is_one_line_and_a_read_only_frame_cache_costs_only_the_cache(tmp_path, capsys, monkeypatch,
                                                                                 event_digits_cache):
    import errno

    import neurosim.data.frames as frames
    import neurosim.runs

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")  # as a write that fills the disk raises it

    monkeypatch.setattr(neurosim.runs, "train_run", full)
    assert main(["train", "--config", "quickstart", "--set", f"out_dir={tmp_path}"]) == 1
    err = capsys.readouterr().err
    assert err == ("neurosim train: error: No space left on device. Stopped before the first checkpoint: no "
                   "checkpoint was saved, a rerun starts from the beginning\n")
    from neurosim.cli import _storage_error

    tmp = PermissionError(errno.EACCES, "Permission denied", "/data/cache/frames/.x.npz.host.12.ab3.tmp")
    assert _storage_error(tmp) == "Permission denied while writing in /data/cache/frames"  # not the temp's name

    def read_only(path, data):
        raise PermissionError(errno.EACCES, "Permission denied", str(path.parent / f".{path.name}.h.1.x.tmp"))

    import neurosim.data._cache as cache

    monkeypatch.setattr(cache, "atomic_write_bytes", read_only)  # the cache's one writer
    with pytest.warns(RuntimeWarning, match="could not store the frames in the cache folder .*Permission denied"):
        got = frames.cached_frames({"k": "new"}, lambda: (np.zeros((2, 3, 2, 4, 4), np.uint8), np.zeros(2, np.int64)),
                                   cache_dir=tmp_path)
    assert got[0].shape == (2, 3, 2, 4, 4)


def test_console_script_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "neurosim.cli", "--help"], capture_output=True, text=True, check=True)
    for cmd in ("train", "evaluate", "demo", "datasets"):
        assert cmd in out.stdout


def test_the_demo_writes_under_any_folder_name(tmp_path):
    from neurosim.runs import demo_config

    folder = tmp_path / "it's \"here\""  # quotes used to be spliced into a TOML override
    cfg = demo_config(folder, epochs=1)
    assert cfg.out_dir == str(folder) and (cfg.name, cfg.train.epochs) == ("demo", 1)


def test_a_last_training_batch_of_one_sample_is_dropped_so_batch_norm_trains(tmp_path, event_digits_cache):
    args = ["-q", "train", "--config", "quickstart", "--set", f"out_dir={tmp_path}", "data.train_subset=33",
            "data.test_subset=16", "data.time_steps=2", "train.epochs=1", "model.batch_norm=true",
            "model.hidden=[16]", "train.method=sltt", "train.loss=tet"]  # SLTT: BatchNorm1d per step, B values
    assert main(args) == 0  # 33 = 32 + 1: the lone sample made BatchNorm raise mid-epoch


def test_training_from_a_moved_run_folders_config_says_how_to_resume_it_there(tmp_path, capsys):
    from neurosim.cli import _note_moved_run

    moved = tmp_path / "moved" / "run1"
    moved.mkdir(parents=True)
    (moved / "config.toml").write_text('name = "run1"\nout_dir = "gone"\n')
    (moved / "checkpoint.pt").write_bytes(b"x")
    _note_moved_run(moved / "config.toml", Path("gone") / "run1")
    err = capsys.readouterr().err
    assert f"its out_dir and name point to {Path('gone') / 'run1'}" in err
    assert f"--set out_dir={moved.parent} name=run1" in err
    _note_moved_run(moved / "config.toml", moved)  # resumed where it is: nothing to say
    (moved / "checkpoint.pt").unlink()
    _note_moved_run(moved / "config.toml", Path("gone") / "run1")  # no run there to resume
    assert capsys.readouterr().err == ""
    # a folder with spaces: the overrides are quoted for the shell (pasted unquoted, they split into other words)
    spaced = tmp_path / "my runs" / "run 1"
    spaced.mkdir(parents=True)
    (spaced / "config.toml").write_text('name = "run 1"\nout_dir = "gone"\n')
    (spaced / "checkpoint.pt").write_bytes(b"x")
    _note_moved_run(spaced / "config.toml", Path("gone") / "run 1")
    hint = capsys.readouterr().err.split("add --set ")[1].strip()
    assert shlex.split(hint) == [f"out_dir={spaced.parent}", "name=run 1"]


def test_a_checkpoint_trained_on_other_data_files_says_so_when_evaluated(tiny_checkpoint, tmp_path):
    from neurosim.runs import evaluate_checkpoint

    ckpt = torch.load(tiny_checkpoint, weights_only=False)
    assert ckpt["data_fingerprint"] is not None  # the bundled event digits: their content's digest
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same files: nothing to say
        evaluate_checkpoint(tiny_checkpoint, progress=False)
    ckpt["data_fingerprint"] = [1, 123, "digits of an older neurosim"]
    torch.save(ckpt, tmp_path / "old.pt")
    with pytest.warns(RuntimeWarning, match="trained on other data files than the dataset on disk now"):
        evaluate_checkpoint(tmp_path / "old.pt", progress=False)


def _tiny_train(tmp_path, epochs=2):
    return ["-q", "train", "--config", "quickstart", "--set", "name=full", f"out_dir={tmp_path}",
            "data.train_subset=64", "data.test_subset=32", "data.time_steps=4", f"train.epochs={epochs}"]


def test_a_full_disk_at_a_checkpoint_says_the_last_one_is_intact_and_how_to_resume(tmp_path, event_digits_cache,
                                                                                 capsys, monkeypatch):
    # the error said what failed but not what was kept or what to do (the Ctrl-C path did)
    import errno

    import neurosim.training.trainer as trainer_module

    real = trainer_module.save_checkpoint

    def full_at_epoch_2(path, ckpt):
        if ckpt["epoch"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path.parent / ".checkpoint.pt.h.1.x.tmp"))
        real(path, ckpt)

    monkeypatch.setattr(trainer_module, "save_checkpoint", full_at_epoch_2)
    assert main(_tiny_train(tmp_path)) == 1
    run = tmp_path / "full"
    assert capsys.readouterr().err == (f"neurosim train: error: No space left on device while writing in {run}. The "
                                       f"last checkpoint (epoch 1) in {run / 'checkpoint.pt'} is intact: rerun the "
                                       "same command to resume once there is space\n")


def test_a_checkpoint_interrupted_after_its_epochs_last_batch_resumes_with_the_epochs_end(tmp_path):
    # it said "resume at batch 7 of epoch 1" of an epoch of 6 (under torchrun "batch 4" of 3 per process)
    from neurosim.cli import _checkpoint_holds
    from neurosim.training.checkpoint import save_checkpoint

    ckpt = tmp_path / "checkpoint.pt"
    for done, holds, there in [(6, " (all 6 of epoch 1's batches)", " with the end of epoch 1 (its scheduler step "
                                                                    "and evaluation)"),
                               (5, " (the first 5 of epoch 1's 6 batches)", " at batch 6 of epoch 1")]:
        save_checkpoint(ckpt, {"epoch": 0, "partial_epoch": {"batches": done, "epoch_batches": 6,
                                                             "evaluating": False, "ranks": []}})
        assert _checkpoint_holds(ckpt) == (holds, there)


def test_a_truncated_checkpoint_points_at_no_resume(tmp_path, event_digits_cache, capsys):
    run = tmp_path / "full"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"PK\x03\x04 truncated")
    assert main(_tiny_train(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "could not be read" in err and err.endswith("rerun with --no-resume to start the run over in that folder\n")


def test_a_demo_that_fails_in_its_estimate_says_how_to_finish(tmp_path, event_digits_cache, capsys, monkeypatch):
    import errno

    import neurosim.runs as runs

    def full(result, *a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device", str(result.run_dir / "estimate" / "model.nir"))

    monkeypatch.setattr(runs, "estimate_run", full)
    monkeypatch.setattr(runs, "demo_config", lambda out_dir="runs", epochs=None: runs.replace(
        runs.load_config(runs.CONFIGS / "quickstart.toml", ["name=demo", "train.epochs=1", "data.train_subset=64",
                                                           "data.test_subset=32", "data.time_steps=4"]),
        out_dir=str(out_dir)))
    assert main(["-q", "demo", "--out", str(tmp_path)]) == 1
    ckpt = tmp_path / "demo" / "checkpoint.pt"
    assert capsys.readouterr().err.endswith(f"Training finished ({ckpt}, epoch 1); once there is space, `neurosim "
                                            f"estimate --checkpoint {ckpt}` writes the estimate (`neurosim demo` "
                                            "would train again)\n")


def test_a_path_option_written_with_equals_expands_a_leading_tilde(tiny_checkpoint, tmp_path, monkeypatch):
    """The shell leaves ``~`` alone after ``=`` (``--out=~/m.nir``): neurosim expands it, as in a config's paths,
    instead of making a folder named ``~``."""
    import shutil

    from neurosim.cli import main

    home = tmp_path / "home"
    (home / "runs").mkdir(parents=True)
    shutil.copy(tiny_checkpoint, home / "runs" / "checkpoint.pt")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    assert main(["-q", "export", "--checkpoint=~/runs/checkpoint.pt", "--out=~/model.nir",
                 "--maxpool", "sumpool"]) == 0
    assert (home / "model.nir").is_file()
    assert not (tmp_path / "~").exists()


def test_set_values_cut_off_by_another_option_get_an_error_that_says_so(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["train", "--config", "quickstart", "--set", "train.epochs=1", "--no-resume", "data.time_steps=4"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: data.time_steps=4; --set takes the KEY=VALUE items right after it" in err
    with pytest.raises(SystemExit):
        main(["train", "--config", "quickstart", "--bogus"])
    assert "unrecognized arguments: --bogus\n" in capsys.readouterr().err


def test_python_m_neurosim_cli_reports_a_subcommands_error_in_one_line(tmp_path):
    """Run as `python -m neurosim.cli`, the module was __main__, a copy of neurosim.cli: the UserError the subcommands
    import from neurosim.cli was not the one its _run caught, and a missing checkpoint ended in a traceback."""
    import os

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-m", "neurosim.cli", "estimate", "--checkpoint",
                           str(tmp_path / "none.pt"), "--target", "loihi"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr == f"neurosim estimate: error: checkpoint '{tmp_path / 'none.pt'}' does not exist\n"


def test_a_finished_run_rerun_with_its_data_moved_stores_the_new_data_root_in_its_checkpoint(tmp_path,
                                                                                            event_digits_cache):
    """A finished run trains nothing more when rerun, so it wrote no checkpoint: the one it kept named the old
    data.root, and `neurosim evaluate` generated the event digits anew there (or found no dataset)."""
    import shutil

    import torch

    old, new = tmp_path / "old", tmp_path / "new"
    shutil.copytree(event_digits_cache, old)
    args = ["-q", "train", "--config", "quickstart", "--set", f"out_dir={tmp_path}", "name=r", "data.train_subset=32",
            "data.test_subset=16", "data.time_steps=4", "train.epochs=1"]
    assert main([*args, f"data.root={old}"]) == 0
    ckpt = tmp_path / "r" / "checkpoint.pt"
    weights = torch.load(ckpt, weights_only=False)["model"]
    assert main(["-q", "estimate", "--checkpoint", str(ckpt), "--target", "loihi", "--samples", "4"]) == 0
    estimate = (tmp_path / "r" / "estimate" / "estimate.json").read_bytes()
    old.rename(new)
    with pytest.warns(RuntimeWarning, match=f"data.root: the run in .* was trained on data found elsewhere "
                                            f"\\(checkpoint.pt stored {old}\\); its checkpoints now store this run's, "
                                            f"{new}, where neurosim evaluate") as caught:
        assert main([*args, f"data.root={new}"]) == 0
    # the checkpoint was written again, its model the same: the estimate made of it is still its own
    assert (tmp_path / "r" / "estimate" / "estimate.json").read_bytes() == estimate
    assert not [w for w in caught if "would have passed for the new model's" in str(w.message)]
    payload = torch.load(ckpt, weights_only=False)
    assert payload["config"]["data"]["root"] == str(new) and payload["epoch"] == 1
    assert all(torch.equal(v, weights[k]) for k, v in payload["model"].items())
    assert main(["-q", "evaluate", "--checkpoint", str(ckpt)]) == 0 and not old.exists()  # read where it is now

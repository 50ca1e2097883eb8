"""neurosim train --seeds: one run per seed, their mean and spread (neurosim.runs.train_seeds)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neurosim.cli import main

TINY = ["data.train_subset=64", "data.test_subset=32", "data.time_steps=4", "train.epochs=2"]


def _metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_seeds_train_one_run_each_and_summarise_them(event_digits_cache, tmp_path, capsys):
    args = ["train", "--config", "quickstart", "--seeds", "3", "5", "--set", "name=s", f"out_dir={tmp_path}", *TINY,
            "data.val_split=0.25"]
    assert main(["-q", *args]) == 0
    out = capsys.readouterr().out
    summary = json.loads((tmp_path / "s-seeds.json").read_text())
    assert [r["seed"] for r in summary["runs"]] == [3, 5]
    finals, bests = [], []
    for r in summary["runs"]:
        history = _metrics(tmp_path / f"s-seed{r['seed']}")
        best = max(history, key=lambda m: (m["val_acc"], -m["val_loss"]))
        assert r["test_acc"] == history[-1]["test_acc"] and r["best_test_acc"] == best["test_acc"]
        finals.append(r["test_acc"])
        bests.append(r["best_test_acc"])
    assert summary["test_acc"] == pytest.approx({"mean": np.mean(finals), "std": np.std(finals, ddof=1)})
    assert summary["best_test_acc"] == pytest.approx({"mean": np.mean(bests), "std": np.std(bests, ddof=1)})
    assert f"final test accuracy: {100 * np.mean(finals):.2f} % ± {100 * np.std(finals, ddof=1):.2f}" in out
    # the runs differ by their seed alone: their configs say so
    configs = [(tmp_path / f"s-seed{s}" / "config.toml").read_text() for s in (3, 5)]
    assert "seed = 3" in configs[0] and "seed = 5" in configs[1]
    # a rerun trains nothing again (each run is finished) and writes the same summary
    stamps = [(tmp_path / f"s-seed{s}" / "checkpoint.pt").stat().st_mtime_ns for s in (3, 5)]
    assert main(["-q", *args]) == 0
    assert stamps == [(tmp_path / f"s-seed{s}" / "checkpoint.pt").stat().st_mtime_ns for s in (3, 5)]
    assert json.loads((tmp_path / "s-seeds.json").read_text()) == summary


def test_one_seed_has_no_spread_and_a_run_without_validation_no_best_column(event_digits_cache, tmp_path, capsys):
    assert main(["-q", "train", "--config", "quickstart", "--seeds", "0", "--set", f"out_dir={tmp_path}", *TINY]) == 0
    summary = json.loads((tmp_path / "quickstart-seeds.json").read_text())
    assert summary["test_acc"]["std"] is None and "best_test_acc" not in summary
    assert "(one seed)" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--seeds", "1", "1"], r"\[1, 1\] repeats a seed"),
    (["--seeds", "1", "--set", "seed=4"], "drop seed=... from --set"),
    (["--seeds", str(2**64)], r"--seeds: seed: must be an integer in"),
])
def test_bad_seeds_are_refused_before_anything_is_trained(tmp_path, capsys, args, message):
    import re

    assert main(["train", "--config", "quickstart", *args, "--set", f"out_dir={tmp_path}"]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not any(tmp_path.iterdir())


def test_an_interrupted_no_resume_sweep_goes_on_as_it_began(tmp_path, monkeypatch):
    """Rerun without --no-resume: the runs it had started over resume, those it had not reached start over."""
    import os
    import time
    import types

    import neurosim.runs as runs
    from neurosim.config import load_config

    cfg = load_config("quickstart", ["name=s", f"out_dir={tmp_path}", *TINY])
    calls, stop_at = [], {"seed": None}

    def spy(one, resume=True, progress=True):
        calls.append((one.seed, resume))
        if one.seed == stop_at["seed"]:
            stop_at["seed"] = None
            raise KeyboardInterrupt
        return types.SimpleNamespace(history=[{"epoch": 1, "test_acc": 0.5}],
                                     trainer=types.SimpleNamespace(stopped_early=False))

    monkeypatch.setattr(runs, "train_run", spy)
    for seed in (3, 5):  # an earlier sweep's runs, finished
        (tmp_path / f"s-seed{seed}").mkdir()
        (tmp_path / f"s-seed{seed}" / "checkpoint.pt").write_text("old")
        os.utime(tmp_path / f"s-seed{seed}" / "checkpoint.pt", (time.time() - 100, time.time() - 100))
    stop_at["seed"] = 5
    with pytest.raises(KeyboardInterrupt):
        runs.train_seeds(cfg, [3, 5], resume=False)
    assert calls == [(3, False), (5, False)] and (tmp_path / "s-seeds.pending.json").is_file()
    (tmp_path / "s-seed3" / "checkpoint.pt").write_text("new")  # seed 3 was started over (and finished)
    calls.clear()
    summary, path = runs.train_seeds(cfg, [3, 5], resume=True)
    assert calls == [(3, True), (5, False)]  # 3 resumes its new run; 5, never started over, starts over
    assert not (tmp_path / "s-seeds.pending.json").exists() and path == tmp_path / "s-seeds.json"


def test_a_seed_runs_own_config_names_the_sweep_without_its_seed_and_the_summary_says_who_stopped_early(
        event_digits_cache, tmp_path, capsys, monkeypatch):
    from neurosim.training import Trainer

    evaluate = Trainer._evaluate

    def val_worse_after_epoch_1_for_seed_1(self, loader, stop=None):  # the validation loader: the rows held out
        if getattr(loader, "indices", None) is not None and not loader.shuffle:
            return {"acc": 0.5 if self.epoch == 0 or self.config.seed == 2 else 0.4, "loss": 1.0 - 0.01 * self.epoch}
        return evaluate(self, loader, stop)

    monkeypatch.setattr(Trainer, "_evaluate", val_worse_after_epoch_1_for_seed_1)
    args = ["-q", "train", "--config", "quickstart", "--seeds", "1", "2", "--set", "name=base-seed7",
            f"out_dir={tmp_path}", *TINY, "train.epochs=4", "data.val_split=0.25", "train.patience=2"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "the runs are named base-seedS" in out and (tmp_path / "base-seed1").is_dir()
    one, two = json.loads((tmp_path / "base-seeds.json").read_text())["runs"]
    assert (one["epochs"], one["planned_epochs"], one["stopped_early"]) == (3, 4, True)
    assert (two["epochs"], two["stopped_early"]) == (4, False)  # (its val loss falls: each epoch is a better one)
    assert "3 of 4 (stopped early)" in out and len(_metrics(tmp_path / "base-seed1")) == 3


def test_seeds_equal_modulo_2_64_are_one_seed(tmp_path, capsys):
    args = ["train", "--config", "quickstart", "--seeds", "-1", str(2**64 - 1), "--set", f"out_dir={tmp_path}"]
    assert main(args) == 2
    assert "-1 and 2**64 - 1 are one seed" in capsys.readouterr().err


def test_ctrl_c_in_a_sweep_names_the_run_and_how_to_go_on(tmp_path, monkeypatch, capsys):
    import neurosim.runs as runs

    def stopped(one, resume=True, progress=True):
        raise KeyboardInterrupt

    monkeypatch.setattr(runs, "train_run", stopped)
    assert main(["-q", "train", "--config", "quickstart", "--seeds", "4", "--no-resume", "--set", "name=s",
                 f"out_dir={tmp_path}"]) == 130
    err = capsys.readouterr().err
    assert "during s-seed4 (its checkpoint: none yet); rerun without --no-resume to go on with the seeds" in err
    assert "those this --no-resume sweep had not started over yet" in err


def test_a_second_sweep_under_the_same_name_adds_its_seeds_and_keeps_an_earlier_no_resume_sweeps_record(
        tmp_path, monkeypatch, capsys):
    """Sweeps of seeds 0, 1 then 2 (same settings) and 3 (other epochs): the summary holds all, the mean only the
    same settings; a --no-resume sweep's pending seeds survive another sweep of other seeds."""
    import types

    import neurosim.runs as runs
    from neurosim.config import dumps_toml, load_config

    accs = {0: 0.5, 1: 0.7, 2: 0.9, 3: 0.1}
    calls = []

    def fake(one, resume=True, progress=True):
        calls.append((one.seed, resume))
        run_dir = tmp_path / one.name
        run_dir.mkdir(exist_ok=True)
        (run_dir / "config.toml").write_text(dumps_toml(one))
        return types.SimpleNamespace(history=[{"epoch": 1, "test_acc": accs[one.seed]}])

    monkeypatch.setattr(runs, "train_run", fake)
    cfg = load_config("quickstart", ["name=s", f"out_dir={tmp_path}", *TINY])
    runs.train_seeds(cfg, [0, 1])
    summary, path = runs.train_seeds(cfg, [2])
    assert [r["seed"] for r in summary["runs"]] == [2, 0, 1] and summary["seeds"] == [2, 0, 1]
    assert summary["test_acc"]["mean"] == pytest.approx(0.7) and json.loads(path.read_text()) == summary
    other = load_config("quickstart", ["name=s", f"out_dir={tmp_path}", *TINY, "train.epochs=3"])
    summary, _ = runs.train_seeds(other, [3])  # other settings: the earlier runs are listed apart now
    assert [r["seed"] for r in summary["runs"]] == [3] and summary["test_acc"]["mean"] == pytest.approx(0.1)
    assert sorted(r["seed"] for r in summary["other_runs"]) == [0, 1, 2]
    assert all(r["differs"] == ["train.epochs"] for r in summary["other_runs"])
    summary, _ = runs.train_seeds(cfg, [0])  # the first settings again: seed 3 apart, 1 and 2 back in the mean
    assert sorted(r["seed"] for r in summary["runs"]) == [0, 1, 2]
    assert [r["seed"] for r in summary["other_runs"]] == [3]

    def stop_at_5(one, resume=True, progress=True):
        calls.append((one.seed, resume))
        raise KeyboardInterrupt

    monkeypatch.setattr(runs, "train_run", stop_at_5)
    with pytest.raises(KeyboardInterrupt):
        runs.train_seeds(cfg, [5, 6], resume=False)  # stopped before either run was started over
    monkeypatch.setattr(runs, "train_run", fake)
    accs.update({5: 0.3, 6: 0.3, 7: 0.3})
    calls.clear()
    runs.train_seeds(cfg, [7])  # another sweep: it must not forget that 5 and 6 are to start over
    runs.train_seeds(cfg, [5, 6])
    assert calls == [(7, True), (5, False), (6, False)]
    assert not (tmp_path / "s-seeds.pending.json").exists()
    assert main(["-q", "train", "--config", "quickstart", "--seeds", "1", "--set", "name=s", f"out_dir={tmp_path}",
                 *TINY]) == 0
    assert "not in the mean: seed 3" in capsys.readouterr().out

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

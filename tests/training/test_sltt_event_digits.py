"""SLTT against BPTT on the bundled event digits: same model, data, epochs and loss — accuracy within 2 points."""

from __future__ import annotations

import pytest

from neurosim.config import config_from_dict
from neurosim.runs import train_run


def _cfg(method, out_dir):
    return config_from_dict({
        "name": method, "out_dir": str(out_dir), "seed": 0,
        "data": {"dataset": "event_digits", "time_steps": 5, "batch_size": 32, "train_subset": 640},
        "neuron": {"tau_mem_ms": 2.0, "dt_ms": 1.0},
        "train": {"epochs": 3, "lr": 0.003, "threads": 2, "method": method, "loss": "tet"},
    })


@pytest.mark.slow
def test_sltt_accuracy_is_within_two_points_of_bptt(tmp_path, event_digits_cache):
    acc = {m: train_run(_cfg(m, tmp_path), resume=False, progress=False, figures=False).history[-1]["test_acc"]
           for m in ("bptt", "sltt")}
    assert acc["bptt"] > 0.6  # both actually learned (chance is 0.10), on the full 359-sample test split
    assert abs(acc["sltt"] - acc["bptt"]) <= 0.02, acc

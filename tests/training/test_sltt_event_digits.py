"""SLTT against BPTT on the bundled event digits: same model, data, epochs and loss — accuracy within 2 points.

One seed is not enough to tell: after 3 epochs the gap over seeds 0-4 was 0, -4.5, -0.8, +0.8 and -8.1 points
(neither run had converged). After 6 epochs it was 0, -1.7, +1.4, +0.3 and -0.6 points (mean -0.1), so the
test trains 6 epochs and compares the mean over two seeds (13-60 s).

This checks that SLTT trains as well as BPTT, the issue's parity target; it cannot prove SLTT right. The task is
easy: an SLTT broken to back-propagate only step 0 still came within 1.3 points here. The gradient tests
(tests/functional/test_no_temporal_grad.py, tests/training/test_sltt.py) are the ones that catch a wrong SLTT.
"""

from __future__ import annotations

import pytest

from neurosim.config import config_from_dict
from neurosim.runs import train_run

SEEDS = (0, 1)


def _cfg(method, out_dir, seed=0, epochs=6):
    return config_from_dict({
        "name": f"{method}_{seed}", "out_dir": str(out_dir), "seed": seed,
        "data": {"dataset": "event_digits", "time_steps": 5, "batch_size": 32, "train_subset": 640},
        "neuron": {"tau_mem_ms": 2.0, "dt_ms": 1.0},
        "train": {"epochs": epochs, "lr": 0.003, "threads": 2, "method": method, "loss": "tet"},
    })


@pytest.mark.slow
def test_sltt_accuracy_is_within_two_points_of_bptt(tmp_path, event_digits_cache):
    acc = {(m, s): train_run(_cfg(m, tmp_path, s), resume=False, progress=False, figures=False).history[-1]["test_acc"]
           for m in ("bptt", "sltt") for s in SEEDS}
    assert min(acc.values()) > 0.8, acc  # every run learned (chance is 0.10), on the full 359-sample test split
    gap = sum(acc["sltt", s] - acc["bptt", s] for s in SEEDS) / len(SEEDS)
    assert abs(gap) <= 0.02, acc

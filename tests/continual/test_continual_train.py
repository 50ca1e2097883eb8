"""The continual training loop (neurosim.continual.train) iterates each epoch's loader once."""

from __future__ import annotations

import time

import pytest
import torch

from neurosim.continual import continual_config_from_dict, permuted_tasks, run_method
from neurosim.continual import train as continual_train


@pytest.mark.parametrize("progress", [False, True])
def test_each_training_epoch_iterates_its_loader_once(monkeypatch, progress):
    # tqdm.auto.tqdm(loader) called iter(loader) in its __init__ and again when iterated (tqdm issues #1598, #1467):
    # twice per epoch, bar shown or not (a torch DataLoader started its workers twice)
    iterated = []

    class CountingLoader(continual_train.FrameLoader):
        def __iter__(self):
            iterated.append(self.shuffle)  # shuffle: a training loader; evaluation's do not shuffle
            return super().__iter__()

    monkeypatch.setattr(continual_train, "FrameLoader", CountingLoader)
    cfg = continual_config_from_dict({"model": {"hidden": [8]}, "train": {"epochs": 3},
                                      "tasks": {"num_tasks": 2, "train_subset": 16, "test_subset": 8}})
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(16, 4, 64, generator=g), torch.arange(16) % 10  # [N, T, 8×8 digit]
    tasks = permuted_tasks(x, y, x[:8], y[:8], num_tasks=2)
    run_method(cfg, "baseline", tasks, progress=progress)
    assert iterated.count(True) == 2 * 3  # 2 tasks × 3 epochs, once each


def test_the_clock_starts_after_a_first_pass_and_the_results_do_not_depend_on_it(monkeypatch):
    # The first pass of a process compiles the numba LIF kernels (~5 s on a fresh install): run inside the clock, it
    # was charged to whichever method ran first, and report.md's "HLOP's CPU time is 0.04x the baseline's" followed
    import types

    events = []
    real_get_method = continual_train.get_method

    class Recording:
        def __init__(self, method):
            self.method = method

        def forward_backward(self, *args, **kwargs):
            events.append("pass")
            return self.method.forward_backward(*args, **kwargs)

    def clock():
        events.append("clock")
        return time.perf_counter()

    monkeypatch.setattr(continual_train, "get_method", lambda *a, **kw: Recording(real_get_method(*a, **kw)))
    monkeypatch.setattr(continual_train, "time", types.SimpleNamespace(perf_counter=clock,
                                                                       process_time=time.process_time))
    cfg = continual_config_from_dict({"model": {"hidden": [8]}, "train": {"epochs": 1}})
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(40, 4, 64, generator=g), torch.arange(40) % 10  # [N, T, 8×8 digit]
    tasks = permuted_tasks(x, y, x[:20], y[:20], num_tasks=2)
    warmed = run_method(cfg, "baseline", tasks, seed=3)
    assert events[0] == "pass" and "clock" in events
    monkeypatch.setattr(continual_train, "_warm_up", lambda *a, **kw: None)
    assert run_method(cfg, "baseline", tasks, seed=3).matrix == warmed.matrix  # seeded after the warm-up

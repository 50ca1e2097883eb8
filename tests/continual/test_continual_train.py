"""The continual training loop (neurosim.continual.train) iterates each epoch's loader once."""

from __future__ import annotations

import time

import pytest
import torch

from neurosim.continual import continual_config_from_dict, permuted_tasks, run_method
from neurosim.continual import train as continual_train

# the tiny setups here learn little or nothing, which run_method warns of ("did not learn", RuntimeWarning; its own
# tests are in test_continual_protocol.py): dozens of such warnings would bury the test output
pytestmark = pytest.mark.filterwarnings("ignore:.*did not learn:RuntimeWarning")


@pytest.mark.parametrize("progress", [False, True])
def test_each_training_epoch_iterates_its_loader_once(monkeypatch, progress):
    # tqdm.auto.tqdm(loader) called iter(loader) in its __init__ and again when iterated (tqdm issues #1598, #1467):
    # twice per epoch, bar shown or not (a torch DataLoader started its workers twice)
    iterated = []

    class CountingLoader(continual_train.FrameLoader):
        def _batches(self, start, compact=False):  # (iter(loader) and iter_from(0, compact=...) alike)
            iterated.append(self.shuffle)  # shuffle: a training loader; evaluation's do not shuffle
            return super()._batches(start, compact)

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
    real_configured = continual_train.configured_method

    class Recording:
        def __init__(self, method):
            self.method = method

        def forward_backward(self, *args, **kwargs):
            events.append("pass")
            return self.method.forward_backward(*args, **kwargs)

    def clock():
        events.append("clock")
        return time.perf_counter()

    monkeypatch.setattr(continual_train, "configured_method", lambda tc: Recording(real_configured(tc)))
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


def _count_tasks(dtype, n=40, T=6, seed=0):
    """Three permuted tasks of event counts ``[N, T, 2, 5, 5]`` (0-3 events) in ``dtype``, labels of 4 classes."""
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randint(0, 4, (n, T, 2, 5, 5), generator=g), torch.arange(n) % 4
    x = x.to(dtype)
    return permuted_tasks(x[:28], y[:28], x[28:], y[28:], num_tasks=3, seed=1)


def _count_cfg(method: str):
    return continual_config_from_dict({
        "model": {"kind": "mlp", "input_shape": [2, 5, 5], "hidden": [12], "num_classes": 4},
        "train": {"epochs": 2, "batch_size": 8, "method": method, "loss": "rate_ce" if method == "bptt" else "tet",
                  "lr": 0.2},
        "hlop": {"sizes": [[4, 2], [4, 2]], "hebbian_epochs": 1, "max_samples": 40},
        "tasks": {"num_tasks": 3}})


def test_tasks_of_event_counts_keep_them_compact():
    tasks = _count_tasks(torch.uint8)
    assert all(t.x_train.dtype == torch.uint8 and t.x_test.dtype == torch.uint8 for t in tasks)
    floats = _count_tasks(torch.float32)
    assert torch.equal(tasks[1].x_train.float(), floats[1].x_train)  # the same permutation of the same counts
    assert _count_tasks(torch.int64)[0].x_train.dtype == torch.float32  # wider than float32: converted, as before


@pytest.mark.parametrize("train_method", ["bptt", "sltt"])
def test_compact_tasks_train_on_compact_batches_with_the_float_tasks_results_bit_for_bit(monkeypatch, train_method):
    # a task of uint8 counts reaches the training method as uint8 batches (converted a step or chunk at a time), and
    # evaluation runs chunk by chunk: every method's accuracy matrix and final weights are those of float32 tasks
    seen = []
    real_configured = continual_train.configured_method

    class Recording:
        def __init__(self, method):
            self.method, self.takes_compact_input = method, method.takes_compact_input

        def forward_backward(self, model, x_seq, *args):
            seen.append(x_seq.dtype)
            return self.method.forward_backward(model, x_seq, *args)

    monkeypatch.setattr(continual_train, "configured_method", lambda tc: Recording(real_configured(tc)))
    cfg = _count_cfg(train_method)
    compact, floats = _count_tasks(torch.uint8), _count_tasks(torch.float32)
    for method in ("baseline", "ewc", "hlop", "multitask"):
        seen.clear()
        a = run_method(cfg, method, compact, seed=3)
        assert set(seen) == {torch.uint8}
        seen.clear()
        b = run_method(cfg, method, floats, seed=3)
        assert set(seen) == {torch.float32}
        assert a.matrix == b.matrix
        assert a.state.keys() == b.state.keys()
        assert all(torch.equal(a.state[k], b.state[k]) for k in a.state), method


def test_a_method_that_does_not_take_compact_input_gets_float_batches(monkeypatch):
    seen = []
    real_configured = continual_train.configured_method

    class Mine:  # a method of one's own, without takes_compact_input
        def __init__(self, method):
            self.method = method

        def forward_backward(self, model, x_seq, *args):
            seen.append(x_seq.dtype)
            return self.method.forward_backward(model, x_seq, *args)

    monkeypatch.setattr(continual_train, "configured_method", lambda tc: Mine(real_configured(tc)))
    run_method(_count_cfg("sltt"), "baseline", _count_tasks(torch.uint8), seed=0)
    assert set(seen) == {torch.float32}


def test_evaluation_runs_a_batch_of_counts_a_chunk_at_a_time(monkeypatch):
    # the whole test batch was one call over all T steps, on its float32 copy (256 × T × inputs × 4 bytes)
    tasks = _count_tasks(torch.uint8, T=40)
    model = continual_train.build_continual_model(_count_cfg("sltt"), tasks)
    calls = []
    model.register_forward_pre_hook(lambda m, args: calls.append((args[0].dtype, args[0].shape[0])))
    acc = continual_train.evaluate_task(model, tasks[0], batch_size=4)
    assert calls and all(dtype == torch.float32 and steps < 40 for dtype, steps in calls)
    calls.clear()
    assert continual_train.evaluate_task(model, _count_tasks(torch.float32, T=40)[0], batch_size=4) == acc


def test_hebbian_passes_run_compact_counts_a_chunk_at_a_time_and_learn_what_one_float_call_learnt():
    # each batch was one call over all T steps of its float32 copy (the vectors HLOP draws follow the calls); it now
    # runs a chunk at a time inside HLOP.one_batch, which draws as that one call did: the same rows, bit for bit
    from conversions import IntToFloatCopies

    from neurosim.continual import HLOP

    cfg = _count_cfg("sltt")
    task = _count_tasks(torch.uint8, T=40)[1]
    learnt = []
    for old_way in (True, False):
        torch.manual_seed(0)
        model = continual_train.build_continual_model(cfg, [task])
        hlop = HLOP(model, lr=0.05, max_samples=40, seed=3)
        hlop.begin_task([4, 2])
        if old_way:  # the loop as it was: float32 batches, one call each
            loader = continual_train.FrameLoader(task.x_train, task.y_train, 8, shuffle=True, seed=7)
            model.eval()
            with torch.no_grad(), hlop.hebbian_only():
                for epoch in range(2):
                    loader.set_epoch(epoch)
                    for x_seq, _ in loader:
                        model(x_seq)
                        hlop.step()
        else:
            with IntToFloatCopies() as copies:
                continual_train._hebbian_passes(model, task, hlop, cfg, 2, 0, False, "cpu")
            assert copies.shapes and all(shape[0] < 40 for shape in copies.shapes)  # 16 steps of 8 samples a call
        learnt.append({name: sub.weight.clone() for name, sub in hlop.subspaces.items()})
    assert all(torch.equal(learnt[0][k], learnt[1][k]) for k in learnt[0])

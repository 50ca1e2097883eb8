"""Data-parallel training under torchrun (gloo on CPU): two processes with half batches train exactly what one
process trains with whole batches, exchange gradients once per batch whatever the method, and resume exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from neurosim.cli import main
from neurosim.data import FrameLoader
from neurosim.runs import evaluate_checkpoint
from neurosim.training.distributed import launched_world_size

WORKER = Path(__file__).with_name("ddp_worker.py")
BATCH = 16  # per optimizer step: one process × 16, or two × 8


def _torchrun(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", *args]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """What ddp_worker.py ended with: one process (whole batches), and each of two torchrun processes."""
    one, two = tmp_path_factory.mktemp("one"), tmp_path_factory.mktemp("two")
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    subprocess.run([sys.executable, str(WORKER), str(one), str(BATCH)], check=True, timeout=300, env=env)
    _torchrun(str(WORKER), str(two), str(BATCH // 2), env=env)
    load = lambda p: torch.load(p, weights_only=False)  # noqa: E731
    return load(one / "rank0.pt"), load(two / "rank0.pt"), load(two / "rank1.pt")


def _strip(history):
    return [{k: v for k, v in m.items() if not k.endswith("time_s")} for m in history]


def _losses(history):
    return [v for m in history for v in (m["train_loss"], m["test_loss"], m["test_acc"])]


@pytest.mark.slow  # two processes (the runs fixture starts them once, ~15 s)
@pytest.mark.parametrize("method", ["bptt", "sltt", "sltt_chunks"])
def test_two_processes_train_what_one_process_trains_with_the_whole_batch(runs, method):
    one, rank0, _ = runs
    assert rank0["world"] == 2 and one["world"] == 1
    single, ddp = one[method]["state"], rank0[method]["state"]
    assert single.keys() == ddp.keys()
    for k in single:  # the same gradients, summed in another order: float32 rounding apart
        torch.testing.assert_close(ddp[k], single[k], rtol=0, atol=1e-6, msg=k)
    assert _losses(rank0[method]["history"]) == pytest.approx(_losses(one[method]["history"]), abs=1e-5)
    assert [m["backward_passes"] for m in rank0[method]["history"]] == \
        [m["backward_passes"] for m in one[method]["history"]]


@pytest.mark.slow  # two processes (the runs fixture starts them once, ~15 s)
@pytest.mark.parametrize("method", ["bptt", "sltt", "sltt_chunks", "sltt_k"])
def test_processes_exchange_gradients_once_per_batch_and_stay_identical(runs, method):
    _, rank0, rank1 = runs
    for rank in (rank0, rank1):
        # SLTT backwards 6 times per batch (chunks: 2, SLTT-K: 2): all but the last run under no_sync
        assert rank[method]["exchanges"] == 2 * rank[method]["batches"] == 8
    for k, v in rank0[method]["state"].items():
        assert torch.equal(v, rank1[method]["state"][k]), k
    assert _strip(rank0[method]["history"]) == _strip(rank1[method]["history"])  # metrics are reduced over both processes


@pytest.fixture(scope="module")
def recurrent_runs(tmp_path_factory):
    """ddp_worker.py's methods with recurrent hidden layers: one process (whole batches), and process 0 of two."""
    one, two = tmp_path_factory.mktemp("one_rec"), tmp_path_factory.mktemp("two_rec")
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    subprocess.run([sys.executable, str(WORKER), str(one), str(BATCH), "recurrent"], check=True, timeout=300, env=env)
    _torchrun(str(WORKER), str(two), str(BATCH // 2), "recurrent", env=env)
    load = lambda p: torch.load(p, weights_only=False)  # noqa: E731
    return load(one / "rank0.pt"), load(two / "rank0.pt"), load(two / "rank1.pt")


@pytest.mark.slow  # two processes (~15 s)
def test_recurrent_layers_train_data_parallel_as_in_one_process(recurrent_runs):
    """Every parameter of an RLIF is used at every step, so DDP needs no find_unused_parameters; the feedback
    weights' gradients are averaged with the others, once per batch whatever the method."""
    one, rank0, rank1 = recurrent_runs
    for method in ("bptt", "sltt", "sltt_chunks", "sltt_k"):
        assert "2.recurrent.weight" in rank0[method]["state"]
        assert rank0[method]["exchanges"] == rank1[method]["exchanges"] == 2 * rank0[method]["batches"] == 8
        for k, v in rank0[method]["state"].items():
            assert torch.equal(v, rank1[method]["state"][k]), (method, k)
        if method != "sltt_k":  # (SLTT-K's processes draw their own steps: another run than one process's)
            for k, v in one[method]["state"].items():
                torch.testing.assert_close(rank0[method]["state"][k], v, rtol=0, atol=1e-6, msg=(method, k))
    # BPTT and SLTT trained the feedback differently: the weights moved, the comparison is not of untrained models
    assert not torch.equal(one["bptt"]["state"]["2.recurrent.weight"], one["sltt"]["state"]["2.recurrent.weight"])


@pytest.mark.slow  # two processes (the runs fixture starts them once, ~15 s)
def test_a_resumed_data_parallel_run_equals_an_uninterrupted_one(runs):
    for rank in runs:  # dropout + SLTT-K: each process's random stream is restored, not process 0's
        full, resumed = rank["resume"]["full"], rank["resume"]["resumed"]
        for k in full:
            assert torch.equal(full[k], resumed[k]), k
        assert _strip(rank["resume"]["history"][0]) == _strip(rank["resume"]["history"][1])


@pytest.mark.slow  # two processes (the runs fixture starts them once, ~15 s)
def test_an_interrupt_one_process_gets_stops_all_after_the_same_batch_and_resumes_exactly(runs):
    one, *ranks = runs
    for result in (one, *ranks):
        assert result["part"]["stopped"].startswith("interrupted after batch 2 of 4 of epoch 2: ")
        assert result["part"]["batches"] == 2 and result["part"]["ranks"] == result["world"]
        assert _strip(result["part"]["history"]) == _strip(result["resume"]["history"][0])
        for k, v in result["resume"]["full"].items():
            assert torch.equal(result["part"]["resumed"][k], v), k


@pytest.mark.slow  # a real torchrun, ~15 s
def test_neurosim_train_under_torchrun_writes_one_run_folder(tmp_path, event_digits_cache):
    run = _torchrun("-m", "neurosim", "-q", "train", "--config", "quickstart", "--set", "name=ddp",
                    f"out_dir={tmp_path}", "data.train_subset=64", "data.test_subset=32", "data.time_steps=4",
                    "train.epochs=1", "train.threads=1")
    assert run.stdout.count("run folder:") == 1  # process 0 reports for both
    folder = tmp_path / "ddp"
    assert {"checkpoint.pt", "config.toml", "metrics.jsonl", "report.md"} <= {p.name for p in folder.iterdir()}
    assert "data-parallel over 2 processes (2 × 32 samples per optimizer step" in (folder / "report.md").read_text()
    ckpt = torch.load(folder / "checkpoint.pt", weights_only=False)
    assert ckpt["world_size"] == 2
    assert not any(k.startswith("module.") for k in ckpt["model"])  # loads into a plain model
    assert len(ckpt["rng_ranks"]) == 2
    # one process evaluating the checkpoint gets the accuracy the two processes reported together
    reported = json.loads((folder / "metrics.jsonl").read_text().splitlines()[-1])
    ev = evaluate_checkpoint(folder / "checkpoint.pt", progress=False)
    assert (ev["acc"], ev["loss"]) == pytest.approx((reported["test_acc"], reported["test_loss"]), abs=1e-6)


@pytest.mark.parametrize("command", [["demo"], ["continual", "--config", "continual_pmnist_digits"]])
def test_commands_that_run_in_one_process_refuse_torchrun(monkeypatch, capsys, command):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(command) == 2
    err = capsys.readouterr().err
    assert "only `neurosim train` runs data-parallel" in err and f"neurosim {command[0]}" in err


def test_world_size_must_be_a_positive_whole_number():
    assert launched_world_size({}) == 1
    assert launched_world_size({"WORLD_SIZE": "4"}) == 4
    for bad in ("two", "0"):
        with pytest.raises(ValueError, match="WORLD_SIZE"):
            launched_world_size({"WORLD_SIZE": bad})


def _epoch(loader, epoch=0):
    loader.set_epoch(epoch)
    return [y.tolist() for _, y in loader]


@pytest.mark.parametrize("n", [40, 37])
def test_shards_split_each_epoch_like_distributed_sampler(n):
    frames, labels = torch.zeros(n, 2, 3), torch.arange(n)
    loader = FrameLoader(frames, labels, batch_size=4, shuffle=True, seed=1)
    for epoch in (0, 1):
        whole = _epoch(loader, epoch)
        shards = [_epoch(loader.shard(r, 3), epoch) for r in range(3)]
        assert len({len(s) for s in shards}) == 1  # the same number of batches everywhere (DDP needs it)
        seen = sorted(y for s in shards for batch in s for y in batch)
        assert set(seen) == set(range(n)) and len(seen) == 3 * -(-n // 3)  # all, plus repeats to even out
        flat = [y for batch in whole for y in batch]
        for i in range(len(shards[0]) - 1):  # batch i of all shards = the samples of a 3×4 batch i, unsharded
            assert sorted(y for s in shards for y in s[i]) == sorted(flat[12 * i:12 * (i + 1)])
    uneven = [_epoch(loader.shard(r, 3, even=False)) for r in range(3)]
    assert sorted(y for s in uneven for b in s for y in b) == list(range(n))  # evaluation: each sample once


def test_loaders_take_any_byte_order_and_seed_and_name_an_empty_dataset():
    frames = np.arange(24, dtype=">f4").reshape(6, 2, 2)  # big-endian, as read from another machine's file
    labels = np.arange(6, dtype=">i8")
    loader = FrameLoader(frames, labels, batch_size=4, shuffle=True, seed=2**62)  # seed·100003 overflowed
    assert sorted(y for _, ys in loader for y in ys.tolist()) == list(range(6))
    assert torch.equal(next(iter(loader))[0], next(iter(FrameLoader(frames.astype("<f4"), labels.astype("<i8"),
                                                                    4, shuffle=True, seed=2**62)))[0])
    with pytest.raises(ValueError, match="no samples"):
        FrameLoader(np.zeros((0, 2, 2)), np.zeros(0))


def test_bad_shards_are_named():
    frames, labels = torch.zeros(4, 2, 3), torch.arange(4)
    with pytest.raises(ValueError, match="rank"):
        FrameLoader(frames, labels, rank=2, num_replicas=2)
    with pytest.raises(ValueError, match="num_replicas"):
        FrameLoader(frames, labels, num_replicas=0)
    with pytest.raises(ValueError, match="4 samples cannot be split evenly over 5"):
        FrameLoader(frames, labels).shard(0, 5)


def _tiny_trainer(**train):
    from neurosim.config import RunConfig, TrainConfig
    from neurosim.nn import LI, Linear, Sequential
    from neurosim.training import Trainer

    cfg = RunConfig(train=TrainConfig(**train))
    return Trainer(Sequential(Linear(4, 3), LI(0.9)), cfg, progress=False)


def test_torchrun_without_a_process_group_is_pointed_out(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.warns(RuntimeWarning, match="torchrun started 2 processes but there is no process group"):
        _tiny_trainer(device="cpu")


def test_one_gpu_named_for_every_process_is_refused(monkeypatch):
    from neurosim.training import distributed, trainer

    monkeypatch.setattr(distributed, "current_world", lambda: distributed.World(rank=1, size=2, local_rank=1))
    monkeypatch.setattr(trainer, "resolve_device", lambda name: torch.device(name))
    with pytest.raises(ValueError, match="would put all 2 processes on one GPU"):
        _tiny_trainer(device="cuda:0")


@pytest.mark.parametrize("batch_sampler", [False, True])
def test_a_distributed_sampler_in_a_torch_data_loader_shuffles_anew_every_epoch(batch_sampler):
    from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, TensorDataset

    class Recording(DistributedSampler):
        drawn: list[int] = []

        def __iter__(self):
            self.drawn.append(self.epoch)  # the epoch this pass shuffles for
            return super().__iter__()

    dataset = TensorDataset(torch.zeros(16, 3, 4), torch.arange(16) % 3)  # [N, T, features]
    sampler = Recording(dataset, num_replicas=2, rank=0, shuffle=True, seed=0)
    sampler.drawn = []
    collate = lambda items: (torch.stack([x for x, _ in items], 1), torch.stack([y for _, y in items]))  # noqa: E731
    loader = (DataLoader(dataset, batch_sampler=BatchSampler(sampler, 4, drop_last=False), collate_fn=collate)
              if batch_sampler else DataLoader(dataset, batch_size=4, sampler=sampler, collate_fn=collate))
    _tiny_trainer(device="cpu", epochs=3).fit(loader, resume=False)
    assert sampler.drawn == [0, 1, 2]  # without set_epoch, every epoch repeats epoch 0's order


def _draws_after_loading(path, world):
    trainer = _tiny_trainer(device="cpu")
    trainer.world = world  # as if torchrun had started this process
    trainer.load(path)
    return torch.rand(4)


def test_resuming_with_another_number_of_processes_warns_and_gives_each_process_its_own_stream(tmp_path):
    from neurosim.training import seed_everything
    from neurosim.training.distributed import World

    seed_everything(7)
    path = _tiny_trainer(device="cpu").save(tmp_path / "one.pt")  # written by one process
    saved_stream = torch.rand(4)
    assert torch.equal(_draws_after_loading(path, World()), saved_stream)  # same world: exact
    with pytest.warns(RuntimeWarning, match=r"written by 1 training process\(es\) and is resumed by 2.*2 × 32.*"
                                            r"1 × 32.*processes 1\+ draw new random streams"):
        assert torch.equal(_draws_after_loading(path, World(0, 2)), saved_stream)  # process 0 continues
    other = _draws_after_loading(path, World(1, 2, 1))  # process 1 has no saved stream: not a copy of 0's
    assert not torch.equal(other, saved_stream)
    assert torch.equal(_draws_after_loading(path, World(1, 2, 1)), other)  # drawn from the seed: reproducible
    assert not torch.equal(_draws_after_loading(path, World(2, 3, 2)), other)


def test_a_checkpoint_only_some_processes_see_is_refused(monkeypatch, tmp_path):
    from neurosim.training import distributed

    trainer = _tiny_trainer(device="cpu")
    trainer.run_dir = tmp_path
    trainer.save()
    monkeypatch.setattr(distributed, "all_gather", lambda found: [found, False])  # process 1 is on another disk
    with pytest.raises(RuntimeError, match=r"exists for process\(es\) \[0\] of 2 only.*filesystem every process"):
        trainer.fit([], resume=True)
    trainer.fit([], resume=False, epochs=0)  # starting over asks no process about the checkpoint


def test_a_group_made_without_torchrun_spreads_its_processes_over_the_gpus(monkeypatch):
    from neurosim.training.distributed import _local_rank

    monkeypatch.setenv("LOCAL_RANK", "3")
    assert _local_rank(7) == 3  # torchrun's word
    monkeypatch.delenv("LOCAL_RANK")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert [_local_rank(r) for r in range(6)] == [0, 1, 2, 3, 0, 1]  # not every process on GPU 0
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert _local_rank(5) == 0

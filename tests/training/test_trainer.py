"""Training end to end on the bundled event digits: it learns, it resumes exactly, it keeps its files."""

from __future__ import annotations

import json
import warnings
import weakref
from dataclasses import replace

import pytest
import torch

from neurosim.config import ConfigError, config_from_dict
from neurosim.data import make_loaders
from neurosim.nn import build_model
from neurosim.runs import evaluate_checkpoint, train_run
from neurosim.training import Trainer, best_epoch, load_checkpoint, seed_everything


def _cfg(out_dir, name="t", epochs=2, **train):
    return config_from_dict({
        "name": name, "out_dir": str(out_dir), "seed": 1,
        "data": {"dataset": "event_digits", "time_steps": 5, "batch_size": 32,
                 "train_subset": 320, "test_subset": 160},
        "neuron": {"tau_mem_ms": 2.0, "dt_ms": 1.0},
        "train": {"epochs": epochs, "lr": 0.003, "threads": 2, **train},
    })


def test_short_run_beats_chance_clearly_and_writes_its_files(tmp_path, event_digits_cache):
    result = train_run(_cfg(tmp_path, epochs=3), progress=False, figures=False)
    assert result.history[-1]["test_acc"] > 0.45  # chance is 0.10
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    run = tmp_path / "t"
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]
    assert (run / "config.toml").read_text().count("time_steps = 5") == 1
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt", "config.toml", "metrics.jsonl"]
    ev = evaluate_checkpoint(run / "checkpoint.pt", progress=False)
    assert ev["acc"] == pytest.approx(result.history[-1]["test_acc"], abs=1e-9)


def _strip(history):
    return [{k: v for k, v in m.items() if not k.endswith("time_s")} for m in history]


def _fit(cfg, run_dir, stop_after=None):
    seed_everything(cfg.seed)
    data = make_loaders(cfg.data, seed=cfg.seed, progress=False)
    trainer = Trainer(build_model(cfg.model, cfg.neuron), cfg, run_dir, progress=False)
    return trainer.fit(data.train, data.test, epochs=stop_after)


@pytest.mark.parametrize("optimizer, lr", [("adam", 0.003), ("sgd", 0.1)])
def test_resumed_run_equals_uninterrupted_run(tmp_path, event_digits_cache, optimizer, lr):
    cfg = _cfg(tmp_path, epochs=3, optimizer=optimizer, lr=lr)  # cosine schedule over 3 epochs
    full = _fit(cfg, tmp_path / "a")
    _fit(cfg, tmp_path / "b", stop_after=1)  # the process dies after epoch 1 …
    resumed = _fit(cfg, tmp_path / "b")  # … and a new one picks up from the checkpoint
    assert [m["epoch"] for m in resumed] == [1, 2, 3]
    assert _strip(resumed) == _strip(full)
    assert full[-1]["train_loss"] < full[0]["train_loss"]  # it did train
    a = load_checkpoint(tmp_path / "a" / "checkpoint.pt")["model"]
    b = load_checkpoint(tmp_path / "b" / "checkpoint.pt")["model"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_metrics_record_the_memory_kept_for_backward():
    """``saved_mb``: BPTT's grows with T, SLTT's stays one step's (the issue's saved-tensor property, per run)."""
    from neurosim.config import RunConfig, TrainConfig
    from neurosim.nn import LI, LIF, Linear, Sequential

    saved = {}
    for method in ("bptt", "sltt"):
        for T in (4, 16):
            g = torch.Generator().manual_seed(0)
            batches = [((torch.rand(T, 8, 12, generator=g) < 0.3).float(), torch.randint(0, 3, (8,), generator=g))
                       for _ in range(2)]
            torch.manual_seed(0)
            model = Sequential(Linear(12, 16), LIF(beta=0.9), Linear(16, 3), LI(0.9))
            cfg = RunConfig(seed=0, train=TrainConfig(method=method, epochs=1, loss="tet", device="cpu"))
            saved[method, T] = Trainer(model, cfg, progress=False).fit(batches, resume=False)[0]["saved_mb"]
    assert saved["sltt", 16] == saved["sltt", 4] > 0
    assert saved["bptt", 16] > 3 * saved["bptt", 4]
    assert saved["bptt", 4] > saved["sltt", 4]


def test_a_run_resumed_with_more_epochs_anneals_over_the_new_number(tmp_path):
    from neurosim.config import RunConfig, TrainConfig
    from neurosim.nn import LI, LIF, Linear, Sequential

    g = torch.Generator().manual_seed(0)
    batches = [((torch.rand(4, 8, 12, generator=g) < 0.3).float(), torch.randint(0, 3, (8,), generator=g))]

    def lrs(run_dir, epochs):
        torch.manual_seed(0)
        model = Sequential(Linear(12, 16), LIF(beta=0.9), Linear(16, 3), LI(0.9))
        cfg = RunConfig(train=TrainConfig(epochs=epochs, lr=0.002, device="cpu"))
        return [m["lr"] for m in Trainer(model, cfg, run_dir, progress=False).fit(batches)]

    planned = lrs(tmp_path / "four", 4)  # cosine over 4 epochs
    lrs(tmp_path / "two", 2)
    resumed = lrs(tmp_path / "two", 4)  # the same run, extended to 4 epochs
    assert resumed[2:] == pytest.approx(planned[2:], rel=1e-12, abs=0)  # not the old schedule's 0 and back up
    assert resumed[:2] != pytest.approx(planned[:2])  # what was done under the 2-epoch schedule stays in the history


def test_resuming_with_another_cpu_thread_count_warns_that_it_rounds_differently(tmp_path):
    import warnings

    from neurosim.config import RunConfig, TrainConfig
    from neurosim.nn import LI, LIF, Linear, Sequential

    batches = [((torch.rand(4, 8, 12) < 0.3).float(), torch.randint(0, 3, (8,)))]

    def fit(epochs, threads):
        model = Sequential(Linear(12, 16), LIF(beta=0.9), Linear(16, 3), LI(0.9))
        cfg = RunConfig(train=TrainConfig(epochs=epochs, lr=0.002, device="cpu", threads=threads))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            Trainer(model, cfg, tmp_path, progress=False).fit(batches)
        return [str(w.message) for w in caught if "CPU thread" in str(w.message)]

    before = torch.get_num_threads()
    try:
        assert fit(1, threads=1) == []
        assert fit(2, threads=1) == []  # resumed as written
        warned = fit(3, threads=2)
        assert len(warned) == 1 and "written with 1 CPU thread(s) per process and is resumed with 2" in warned[0]
        assert "train.threads = 1" in warned[0]
        assert fit(3, threads=1) == []  # a finished run trains nothing more: no warning about how it would round
    finally:
        torch.set_num_threads(before)



def test_resume_warnings_point_at_the_code_that_called_load_or_fit(tmp_path):
    # load() became load() -> _restore(): its warnings pointed at trainer.py's load instead of the caller's line
    from neurosim.config import RunConfig, TrainConfig
    from neurosim.nn import LI, Flatten, Linear, Sequential

    batches = [(torch.rand(4, 10, 20), torch.randint(0, 3, (10,)))]

    def trainer():
        return Trainer(Sequential(Flatten(), Linear(20, 3), LI(0.9)),
                       RunConfig(train=TrainConfig(epochs=2, device="cpu")), tmp_path, progress=False)

    trainer().fit(batches, epochs=1)
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    ckpt["cpu_threads"] = torch.get_num_threads() + 1  # as if written with another thread count
    torch.save(ckpt, tmp_path / "checkpoint.pt")
    for resume in (lambda t: t.load(tmp_path / "checkpoint.pt"), lambda t: t.fit(batches)):
        t = trainer()
        with pytest.warns(RuntimeWarning, match="CPU thread") as caught:
            resume(t)
        assert [w.filename for w in caught if "CPU thread" in str(w.message)] == [__file__]

def test_resuming_on_other_data_files_warns(tmp_path):
    import warnings

    from neurosim.config import RunConfig, TrainConfig
    from neurosim.nn import LI, LIF, Linear, Sequential

    batches = [((torch.rand(4, 8, 12) < 0.3).float(), torch.randint(0, 3, (8,)))]

    def fit(epochs, fingerprint):
        model = Sequential(Linear(12, 16), LIF(beta=0.9), Linear(16, 3), LI(0.9))
        cfg = RunConfig(train=TrainConfig(epochs=epochs, lr=0.002, device="cpu"))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            Trainer(model, cfg, tmp_path, progress=False, data_fingerprint=fingerprint).fit(batches)
        return [str(w.message) for w in caught if "other data files" in str(w.message)]

    assert fit(1, [1, 100, "v2 digest"]) == []
    assert fit(2, [1, 100, "v2 digest"]) == []  # the same files
    warned = fit(3, [1, 98, "v3 digest"])  # e.g. the event digits regenerated by a newer neurosim
    assert len(warned) == 1 and "the resumed epochs train on the new files" in warned[0]
    assert fit(4, None) == []  # nothing to compare with


@pytest.mark.parametrize("how", ["nan_loss", "nan_weights_silent_readout", "inf_gradient"])
def test_training_that_diverges_stops_with_an_error_instead_of_reporting_an_accuracy(tmp_path, how):
    from neurosim.config import RunConfig, TrainConfig
    from neurosim.nn import LI, LIF, Linear, Sequential

    g = torch.Generator().manual_seed(0)
    batches = [((torch.rand(4, 8, 12, generator=g) < 0.3).float(), torch.randint(0, 3, (8,), generator=g))
               for _ in range(3)]
    torch.manual_seed(0)
    readout = LI(0.9) if how != "nan_weights_silent_readout" else LIF(beta=0.9)
    model = Sequential(Linear(12, 16), LIF(beta=0.9, v_th=0.5), Linear(16, 3), readout)
    train = dict(epochs=2, device="cpu", grad_clip=None if how != "inf_gradient" else 1.0)
    loss = "rate_ce"
    with torch.no_grad():
        if how == "nan_loss":
            model[2].bias[0] = float("nan")  # a NaN readout: NaN loss from the first batch
        elif how == "nan_weights_silent_readout":
            model[0].weight[0, 0] = float("nan")  # NaN currents spike nowhere: the loss stays a finite ln 3
        else:
            model[2].weight.register_hook(lambda grad: grad * float("inf"))
    trainer = Trainer(model, RunConfig(train=TrainConfig(**train, loss=loss)), tmp_path, progress=False)
    with pytest.raises(FloatingPointError, match=r"training diverged in epoch 1: .*(loss of batch 1 is nan|"
                                                 r"parameter\(s\) 0.weight|gradient of batch 1 has norm)"):
        trainer.fit(batches)
    assert not (tmp_path / "checkpoint.pt").exists()  # nothing diverged was saved


def test_checkpoints_keep_the_training_gpus_random_stream_only(monkeypatch):
    # every visible GPU's stream (get_rng_state_all) could not be restored where fewer GPUs are visible
    from neurosim.training import trainer as tr

    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device: calls.append(("get", str(device))) or "g1")
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda s, device: calls.append(("set", s, str(device))))
    assert "cuda" not in tr._rng_state(torch.device("cpu"))  # a CPU run touches no GPU
    state = tr._rng_state(torch.device("cuda", 1))
    assert state["cuda"] == "g1" and calls == [("get", "cuda:1")]
    tr._set_rng_state(state, torch.device("cuda", 1))
    assert calls[-1] == ("set", "g1", "cuda:1")
    old = dict(state, cuda=["g0", "g1", "g2"])  # an older checkpoint: one state per visible GPU
    tr._set_rng_state(old, torch.device("cuda", 2))
    assert calls[-1] == ("set", "g2", "cuda:2")
    calls.clear()
    tr._set_rng_state(old, torch.device("cuda", 5))  # written where fewer GPUs were visible: left as it is
    tr._set_rng_state(state, torch.device("cpu"))
    assert calls == []


def test_resuming_with_another_config_or_fewer_epochs_is_refused_before_anything_is_written(tmp_path):
    from neurosim.config import ConfigError, RunConfig, TrainConfig
    from neurosim.nn import LI, Flatten, Linear, Sequential
    from neurosim.training import CheckpointError

    batches = [(torch.rand(4, 10, 20), torch.randint(0, 3, (10,)))]

    def trainer(lr=0.01, epochs=2, classes=3, **train):
        model = Sequential(Flatten(), Linear(20, classes), LI(0.9))  # the user's own model, as in the Python API
        return Trainer(model, RunConfig(train=TrainConfig(epochs=epochs, lr=lr, device="cpu", **train)), tmp_path,
                       progress=False)

    trainer().fit(batches)
    files = {name: (tmp_path / name).read_bytes() for name in ("config.toml", "metrics.jsonl", "checkpoint.pt")}
    # another learning rate: the checkpoint's optimizer would silently keep the old one
    with pytest.raises(ConfigError, match=r"holds a checkpoint of a different config \(train.lr differs\).*"
                                          r"another run_dir.*resume=False"):
        trainer(lr=0.5).fit(batches)
    # fewer epochs than done, from the config or from fit's argument
    with pytest.raises(ConfigError, match=r"train.epochs: .* has already trained 2 epochs, more than the 1 asked; "
                                          r"rerun with train.epochs >= 2.*resume=False"):
        trainer(epochs=1).fit(batches)
    with pytest.raises(ConfigError, match=r"epochs: .* has already trained 2 epochs, more than the 1 asked"):
        trainer().fit(batches, epochs=1)
    # a model whose weights do not fit: the user built it, no config did
    with pytest.raises(CheckpointError, match=r"do not fit the model given to the Trainer .*another run_dir.*"
                                              r"resume=False"):
        trainer(classes=4).fit(batches)
    assert {name: (tmp_path / name).read_bytes() for name in files} == files  # config.toml still says lr = 0.01
    # what may change on resume still resumes: more epochs, another checkpoint interval
    history = trainer(epochs=3, checkpoint_every=2).fit(batches)
    assert [m["epoch"] for m in history] == [1, 2, 3]
    # starting afresh: resume=False in this folder, or another run_dir
    assert [m["epoch"] for m in trainer(lr=0.5).fit(batches, resume=False)] == [1, 2]
    assert "lr = 0.5" in (tmp_path / "config.toml").read_text()


# ---------------------------------------------------------------- a user's own torch DataLoader

class _Samples(torch.utils.data.Dataset):
    """48 samples [T = 4, 12], label i % 3; counts the samples loaded (across worker processes)."""

    def __init__(self, loaded=None):
        self.loaded = loaded

    def __len__(self):
        return 48

    def __getitem__(self, i):
        if self.loaded is not None:
            with self.loaded.get_lock():
                self.loaded.value += 1
        g = torch.Generator().manual_seed(i)
        return (torch.rand(4, 12, generator=g) < 0.3).float(), i % 3


def _time_first(batch):
    return torch.stack([x for x, _ in batch], 1), torch.tensor([y for _, y in batch])  # [T, B, 12], [B]


def _own_model_trainer(run_dir=None, epochs=2, progress=False, seed=3, **train):
    from neurosim.config import RunConfig, TrainConfig
    from neurosim.nn import LI, LIF, Linear, Sequential

    torch.manual_seed(0)
    model = Sequential(Linear(12, 16), LIF(beta=0.9), Linear(16, 3), LI(0.9))
    cfg = RunConfig(seed=seed, train=TrainConfig(epochs=epochs, lr=0.01, device="cpu", threads=2, **train))
    return Trainer(model, cfg, run_dir, progress=progress)


@pytest.mark.parametrize("progress", [False, True])
def test_an_epoch_iterates_its_loader_once_bar_or_not(progress):
    # tqdm.auto.tqdm(loader) called iter(loader) in its __init__ and again when iterated (tqdm issues #1598, #1467)
    iterated = []

    class Batches(list):
        def __iter__(self):
            iterated.append(1)
            return super().__iter__()

    loader = Batches(_time_first([_Samples()[i] for i in range(k, k + 8)]) for k in (0, 8))
    history = _own_model_trainer(epochs=3, progress=progress).fit(loader, resume=False)
    assert len(history) == 3 and len(iterated) == 3


def test_a_dataloader_with_workers_starts_them_once_per_epoch_and_trains_as_one_without():
    # wrapped in tqdm, each epoch forked 2 × num_workers processes that prefetched batches thrown away, and the
    # extra iter() drew a worker seed from torch's stream, so num_workers = 0 and 2 shuffled differently
    import multiprocessing

    started, loaded = multiprocessing.Value("i", 0), multiprocessing.Value("i", 0)

    def count_start(_worker_id):
        with started.get_lock():
            started.value += 1

    weights = {}
    for workers in (0, 2):
        loader = torch.utils.data.DataLoader(
            _Samples(loaded), batch_size=8, shuffle=True, num_workers=workers, collate_fn=_time_first,
            worker_init_fn=count_start if workers else None)
        trainer = _own_model_trainer(epochs=2)
        trainer.fit(loader, resume=False)
        weights[workers] = trainer.model.state_dict()
        if workers:
            assert started.value == 2 * 2  # 2 epochs × 2 workers
        assert loaded.value == 2 * 48  # 2 epochs × 48 samples, none prefetched and thrown away
        loaded.value = 0
    for k in weights[0]:
        assert torch.equal(weights[0][k], weights[2][k]), k


def _shuffling_loader(own):
    data = _Samples()
    if own == "loader generator":  # tutorial 03's pattern
        return torch.utils.data.DataLoader(data, batch_size=8, shuffle=True, collate_fn=_time_first,
                                           generator=torch.Generator().manual_seed(0))
    sampler = torch.utils.data.RandomSampler(data, generator=torch.Generator().manual_seed(0))
    return torch.utils.data.DataLoader(data, batch_size=8, sampler=sampler, collate_fn=_time_first)


@pytest.mark.parametrize("own", ["loader generator", "sampler generator"])
def test_a_run_resumed_with_a_dataloaders_own_generator_equals_an_uninterrupted_one(tmp_path, own):
    # the generator's state was not checkpointed: the resumed process replayed epoch 1's shuffle order
    full = _own_model_trainer(tmp_path / "a", epochs=3)
    full_history = full.fit(_shuffling_loader(own), _shuffling_loader(own))
    _own_model_trainer(tmp_path / "b", epochs=3).fit(_shuffling_loader(own), _shuffling_loader(own), epochs=1)
    torch.manual_seed(123)  # a new process: other global random state, fresh loaders
    resumed = _own_model_trainer(tmp_path / "b", epochs=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # everything was restored: nothing to warn about
        resumed_history = resumed.fit(_shuffling_loader(own), _shuffling_loader(own))
    assert _strip(resumed_history) == _strip(full_history)
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k


def test_resuming_where_a_loaders_randomness_cannot_be_restored_warns(tmp_path):
    own = "loader generator"
    _own_model_trainer(tmp_path, epochs=1).fit(_shuffling_loader(own))
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert set(ckpt["rng"]["loaders"]["train"]) == {"generator"}  # the sampler shares the loader's generator

    def warned(loaders):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _own_model_trainer(epochs=2).load(tmp_path / "checkpoint.pt", loaders=loaders)
        return [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]

    assert warned({"train": _shuffling_loader(own)}) == []
    assert warned({"train": [(torch.zeros(4, 8, 12), torch.zeros(8, dtype=torch.long))]}) == [
        f"{tmp_path / 'checkpoint.pt'} holds the state of a generator that the train loader given now lacks, so the "
        "loader's shuffle order and worker seeds continue from another random state than the run's, which will not "
        "match one that was never interrupted; resume with a loader built as the one that wrote the checkpoint, or "
        "pass fit(resume=False) to start over"]
    (message,) = warned({"train": _shuffling_loader("sampler generator")})
    assert "no state of the train loader's own sampler.generator (it was saved without this loader" in message
    # a checkpoint of a neurosim that kept no loader generators still loads, and says what it lacks
    del ckpt["rng"]["loaders"]
    torch.save(ckpt, tmp_path / "checkpoint.pt")
    (message,) = warned({"train": _shuffling_loader(own)})
    assert "no state of the train loader's own generator: it was written by an older neurosim" in message
    assert warned({"train": torch.utils.data.DataLoader(_Samples(), batch_size=8, shuffle=True)}) == []  # global RNG
    # persistent workers keep their random streams (and skip the worker seed of later epochs): not restorable
    persistent = torch.utils.data.DataLoader(_Samples(), batch_size=8, shuffle=True, num_workers=1,
                                             persistent_workers=True)
    (message,) = warned({"train": persistent})
    assert "the train loader keeps persistent workers" in message and "persistent_workers=False" in message


def test_a_failed_checkpoint_leaves_the_metrics_at_the_checkpoints_epoch(tmp_path, monkeypatch):
    # metrics.jsonl was written before the checkpoint: after a full disk at epoch 2's checkpoint it listed epoch 2
    # while checkpoint.pt held epoch 1, and a resumed run would train epoch 2 again
    import errno

    import neurosim.training.trainer as trainer_module

    loader = [_time_first([_Samples()[i] for i in range(k, k + 8)]) for k in (0, 8)]
    real = trainer_module.save_checkpoint

    def full_at_epoch_2(path, ckpt):
        if ckpt["epoch"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, ckpt)

    monkeypatch.setattr(trainer_module, "save_checkpoint", full_at_epoch_2)
    run = tmp_path / "run"
    with pytest.raises(OSError, match="No space left"):
        _own_model_trainer(run, epochs=3).fit(loader, resume=False)
    assert load_checkpoint(run / "checkpoint.pt")["epoch"] == 1
    assert [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1]


def test_a_report_that_cannot_be_written_leaves_no_report_beside_a_mix_of_figures(tmp_path, event_digits_cache,
                                                                                 disk_full_at):
    # write_report wrote the new curves.png, then failed (a full disk) at frames.png: the earlier run's report.md
    # stayed, describing a new curves.png beside the earlier frames.png and raster.png
    from neurosim.runs import write_report

    result = train_run(_cfg(tmp_path, epochs=1), progress=False)
    run = tmp_path / "t"
    assert (run / "report.md").is_file() and (run / "frames.png").is_file()
    disk_full_at("frames.png")
    with pytest.raises(OSError, match=r"No space left on device \(writing the report of .*: its earlier report.md was "
                                      r"removed first, and no report.md was written") as info:
        write_report(result)
    assert info.value.filename == str(run / "frames.png")
    assert not (run / "report.md").exists()


# ---------------------------------------------------------------- an interrupted epoch is not lost

class _Signals:
    """The trainer's method, sending this process the signals ``signums`` (None: one SIGINT) in a row as batch ``at``
    (counted over the whole run, from 1) starts: the first lands in the middle of that batch, the later ones while it
    waits; ``raise_``: then a KeyboardInterrupt raised there (as by a Ctrl-C handler of one's own). ``calls`` counts
    the batches it has trained (``at=None``: it only counts)."""

    def __init__(self, method, at, signums=None, raise_=False):
        import signal

        self.method, self.at, self.raise_, self.calls = method, at, raise_, 0
        self.signums = [signal.SIGINT] if signums is None else signums

    def forward_backward(self, *args, **kwargs):
        import os

        self.calls += 1
        if self.calls == self.at:
            for signum in self.signums:
                os.kill(os.getpid(), signum)
            if self.raise_:
                raise KeyboardInterrupt
        return self.method.forward_backward(*args, **kwargs)


def _interrupted_fit(trainer, at, *loaders, **kwargs):
    """``trainer.fit(*loaders)`` interrupted by Ctrl-C as batch ``at`` runs: the KeyboardInterrupt's message."""
    trainer.method = _Signals(trainer.method, at, **kwargs)
    with pytest.raises(KeyboardInterrupt) as stopped:
        trainer.fit(*loaders)
    return str(stopped.value)


def _same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("method", [{"method": "bptt"}, {"method": "sltt", "loss": "tet"},
                                    {"method": "sltt_k", "k": 2, "loss": "tet"}], ids=["bptt", "sltt", "sltt_k"])
def test_an_epoch_interrupted_part_way_resumes_at_its_next_batch_as_if_never_interrupted(tmp_path, event_digits_cache,
                                                                                         method):
    cfg = _cfg(tmp_path, epochs=2, **method)
    cfg = replace(cfg, data=replace(cfg.data, train_subset=160, test_subset=64))  # 5 batches of 32 per epoch
    full = _fit(cfg, tmp_path / "a")
    seed_everything(cfg.seed)
    data = make_loaders(cfg.data, seed=cfg.seed, progress=False)
    trainer = Trainer(build_model(cfg.model, cfg.neuron), cfg, tmp_path / "b", progress=False)
    message = _interrupted_fit(trainer, 5 + 3, data.train, data.test)  # epoch 2's third batch (5 per epoch)
    assert message == (f"interrupted after batch 3 of 5 of epoch 2: {tmp_path / 'b' / 'checkpoint.pt'} holds the "
                       "epoch so far; fit() resumes at batch 4 of epoch 2")
    ckpt = load_checkpoint(tmp_path / "b")
    assert ckpt["format"] == 2 and ckpt["epoch"] == 1 and len(ckpt["history"]) == 1  # (neurosim < it: refused)
    assert {k: v for k, v in ckpt["partial_epoch"].items() if k != "ranks"} == {
        "batches": 3, "epoch_batches": 5, "evaluating": False}
    (progress,) = ckpt["partial_epoch"]["ranks"]
    assert progress["total"] == 3 * 32 and progress["saved_mb"] > 0 and progress["start_rng"] is not None
    # a weight-only evaluation of it says that it is part-way through an epoch
    with pytest.warns(RuntimeWarning, match="part-way through epoch 2: it has trained epoch 1 and the first 3 of "
                                            "epoch 2's 5 batches"):
        evaluate_checkpoint(tmp_path / "b", progress=False)
    torch.manual_seed(123)  # a new process: other global random state
    resumed = _fit(cfg, tmp_path / "b")
    assert _strip(resumed) == _strip(full)
    _same_weights(load_checkpoint(tmp_path / "a")["model"], load_checkpoint(tmp_path / "b")["model"])
    assert load_checkpoint(tmp_path / "b")["format"] == 1  # the epoch's end: readable by any neurosim again


@pytest.mark.parametrize("own", ["loader generator", "global stream"])
def test_a_dataloaders_interrupted_epoch_replays_its_order_and_resumes_exactly(tmp_path, own):
    # a loader other than a FrameLoader: its first batches are loaded again and thrown away; checkpoints only every
    # 5 epochs, so the interrupted epoch 2 has no epoch checkpoint before it: the one written on interrupt is all
    def loader():
        if own == "global stream":
            return torch.utils.data.DataLoader(_Samples(), batch_size=8, shuffle=True, collate_fn=_time_first)
        return _shuffling_loader(own)

    full = _own_model_trainer(tmp_path / "a", epochs=3, checkpoint_every=5)
    full_history = full.fit(loader(), loader())
    message = _interrupted_fit(_own_model_trainer(tmp_path / "b", epochs=3, checkpoint_every=5), 6 + 4, loader(),
                               loader())
    assert "after batch 4 of 6 of epoch 2:" in message
    ckpt = load_checkpoint(tmp_path / "b")
    assert ckpt["epoch"] == 1 and ckpt["partial_epoch"]["batches"] == 4
    assert [m["epoch"] for m in map(json.loads, (tmp_path / "b" / "metrics.jsonl").read_text().splitlines())] == [1]
    torch.manual_seed(123)
    resumed = _own_model_trainer(tmp_path / "b", epochs=3, checkpoint_every=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resumed_history = resumed.fit(loader(), loader())
    assert _strip(resumed_history) == _strip(full_history)
    _same_weights(full.model.state_dict(), resumed.model.state_dict())


def test_a_second_signal_stops_at_once_and_keeps_the_last_finished_checkpoint(tmp_path):
    import signal

    trainer = _own_model_trainer(tmp_path, epochs=3)
    message = _interrupted_fit(trainer, 6 + 2, _shuffling_loader("loader generator"),
                              signums=[signal.SIGINT] * 2)
    assert message == ""  # raised where the second signal landed, not at the batch's end
    ckpt = load_checkpoint(tmp_path)
    assert ckpt["format"] == 1 and ckpt["epoch"] == 1 and "partial_epoch" not in ckpt
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handlers are back


def test_without_a_run_dir_the_interrupt_stops_the_batches_end_and_saves_nothing(tmp_path):
    trainer = _own_model_trainer(None, epochs=2)
    message = _interrupted_fit(trainer, 3, _shuffling_loader("loader generator"))
    assert message == "interrupted after batch 3 of 6 of epoch 1; the Trainer has no run_dir, so nothing was saved"
    assert trainer.method.calls == 3
    state = next(iter(trainer.optimizer.state_dict()["state"].values()))
    assert int(state["step"]) == 3  # the third batch's optimizer step ran whole


class _StopWhileEvaluating:
    """A test loader (a list of batches) that sends Ctrl-C as it yields its second batch, the first time only."""

    def __init__(self, batches):
        self.batches, self.sent = batches, False

    def __iter__(self):
        import os
        import signal

        for i, batch in enumerate(self.batches):
            if i == 1 and not self.sent:
                self.sent = True
                os.kill(os.getpid(), signal.SIGINT)
            yield batch


def test_an_interrupt_while_evaluating_keeps_the_trained_epoch_and_resuming_only_evaluates_it(tmp_path):
    test = [_time_first([_Samples()[i] for i in range(k, k + 8)]) for k in (0, 8, 16)]
    full = _own_model_trainer(tmp_path / "a", epochs=2)
    full_history = full.fit(_shuffling_loader("loader generator"), test)
    stopped = _own_model_trainer(tmp_path / "b", epochs=2)
    with pytest.raises(KeyboardInterrupt, match=r"interrupted while evaluating epoch 1: .* fit\(\) resumes with its "
                                                r"evaluation"):
        stopped.fit(_shuffling_loader("loader generator"), _StopWhileEvaluating(test))
    ckpt = load_checkpoint(tmp_path / "b")
    assert ckpt["epoch"] == 0 and ckpt["partial_epoch"]["evaluating"] and ckpt["partial_epoch"]["batches"] == 6
    resumed = _own_model_trainer(tmp_path / "b", epochs=2)
    resumed.method = _Signals(resumed.method, at=None)  # counts the batches it trains
    assert _strip(resumed.fit(_shuffling_loader("loader generator"), test)) == _strip(full_history)
    assert resumed.method.calls == 6  # epoch 2's only: epoch 1 was trained, it was evaluated again
    _same_weights(full.model.state_dict(), resumed.model.state_dict())


def test_an_interrupted_epoch_resumes_only_under_its_config_and_with_its_epoch_asked_for(tmp_path):
    from neurosim.config import ConfigError

    _interrupted_fit(_own_model_trainer(tmp_path, epochs=3), 6 + 2, _shuffling_loader("loader generator"))
    with pytest.raises(ConfigError, match="train.epochs: .* has trained epoch 1 and the first 2 of epoch 2's 6 "
                                          r"batches, more than the 1 epoch\(s\) asked; rerun with train.epochs >= 2"):
        _own_model_trainer(tmp_path, epochs=1).fit(_shuffling_loader("loader generator"))
    changed = _own_model_trainer(tmp_path, epochs=3)
    changed.config = replace(changed.config, train=replace(changed.config.train, lr=0.5))
    with pytest.raises(ConfigError, match=r"different config \(train.lr differs\)"):
        changed.fit(_shuffling_loader("loader generator"))
    # each process's share of the epoch depends on their number: another number cannot continue it
    ckpt = load_checkpoint(tmp_path)
    torch.save({**ckpt, "world_size": 2, "rng_ranks": [ckpt["rng"]] * 2}, tmp_path / "checkpoint.pt")
    with pytest.raises(ConfigError, match=r"written by 2 training process\(es\) part-way through epoch 2 .* resume it "
                                          r"with 2 process\(es\) \(torchrun --nproc-per-node 2"):
        _own_model_trainer(tmp_path, epochs=3).fit(_shuffling_loader("loader generator"))
    torch.save(ckpt, tmp_path / "checkpoint.pt")
    # a loader with fewer batches than the epoch had done is not the run's
    with pytest.raises(ValueError, match="the training loader yields 1 batch"), \
            pytest.warns(RuntimeWarning, match="holds the state of a generator that the train loader given now lacks"):
        _own_model_trainer(tmp_path, epochs=3).fit([_time_first([_Samples()[i] for i in range(8)])])


_SIGTERM_IN_A_SCRIPT = """
import os, signal, sys, torch
sys.path.insert(0, {tests!r})
from test_trainer import _Signals, _own_model_trainer, _shuffling_loader
trainer = _own_model_trainer({run!r}, epochs=2)
trainer.method = _Signals(trainer.method, 3, [signal.SIGTERM])
trainer.fit(_shuffling_loader("loader generator"))
print("not stopped")
"""


def test_sigterm_with_its_default_action_ends_a_script_at_the_batchs_end_checkpointed(tmp_path):
    # a script of one's own (no neurosim command line): SIGTERM ends the process as before, by the signal, but
    # after the batch under way and its checkpoint
    import signal
    import subprocess
    import sys
    from pathlib import Path

    script = _SIGTERM_IN_A_SCRIPT.format(tests=str(Path(__file__).parent), run=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGTERM and "not stopped" not in done.stdout, done.stderr
    ckpt = load_checkpoint(tmp_path)
    assert ckpt["epoch"] == 0 and ckpt["partial_epoch"]["batches"] == 3
    # the script's log says what the checkpoint holds and where a rerun resumes (it said nothing)
    assert done.stderr.endswith(f"SIGTERM: interrupted after batch 3 of 6 of epoch 1: {tmp_path / 'checkpoint.pt'} "
                                "holds the epoch so far; fit() resumes at batch 4 of epoch 1\n"), done.stderr


def test_an_interrupt_in_the_first_epoch_of_a_run_started_over_keeps_the_earlier_runs_checkpoint(tmp_path):
    # fit(resume=False) keeps the earlier run's files until it has an epoch to write: a part-way checkpoint of its
    # first epoch would replace a finished run's with a few batches of a new one
    _own_model_trainer(tmp_path, epochs=1).fit(_shuffling_loader("loader generator"))
    earlier = (tmp_path / "checkpoint.pt").read_bytes()
    trainer = _own_model_trainer(tmp_path, epochs=2)
    trainer.method = _Signals(trainer.method, 2)
    with pytest.raises(KeyboardInterrupt, match="interrupted after batch 2 of 6 of epoch 1 of a run started over with "
                                                "resume=False: nothing was saved, and .* is still the earlier run's"):
        trainer.fit(_shuffling_loader("loader generator"), resume=False)
    assert (tmp_path / "checkpoint.pt").read_bytes() == earlier
    trainer.method = _Signals(trainer.method.method, 6 + 2)  # its second epoch: saved part-way
    with pytest.raises(KeyboardInterrupt, match="fit\\(\\) resumes at batch 3 of epoch 2"):
        trainer.fit(_shuffling_loader("loader generator"), resume=False)
    assert load_checkpoint(tmp_path)["partial_epoch"]["batches"] == 2


# ---------------------------------------------------------------- a noted signal is never dropped

def test_a_signal_while_the_epochs_files_are_written_stops_after_them(tmp_path, monkeypatch):
    # fit asked for a signal only before the epoch's checkpoint: one that came while it was written was noted, then
    # dropped as the epoch's block ended, and training went on (a scheduler's SIGTERM trained on until SIGKILL)
    import os
    import signal

    real_save = Trainer.save

    def save(self, *args, **kwargs):  # Ctrl-C lands while epoch 1's checkpoint is written
        if self.epoch == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "save", save)
    trainer = _own_model_trainer(tmp_path / "a", epochs=3)
    with pytest.raises(KeyboardInterrupt, match=r"^interrupted at the end of epoch 1: .*checkpoint.pt holds it; "
                                                r"fit\(\) resumes with epoch 2$"):
        trainer.fit(_shuffling_loader("loader generator"))
    assert load_checkpoint(tmp_path / "a")["epoch"] == 1
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    # no checkpoint due at that epoch's end (checkpoint_every): the signal during metrics.jsonl's write makes one
    monkeypatch.setattr(Trainer, "save", real_save)
    trainer = _own_model_trainer(tmp_path / "b", epochs=3, checkpoint_every=5)
    real_write = trainer._write_run_files

    def write():
        if trainer.epoch == 1:
            os.kill(os.getpid(), signal.SIGINT)
        real_write()

    trainer._write_run_files = write
    with pytest.raises(KeyboardInterrupt, match="interrupted at the end of epoch 1: .* holds it"):
        trainer.fit(_shuffling_loader("loader generator"))
    assert load_checkpoint(tmp_path / "b")["epoch"] == 1


def test_a_ctrl_c_after_a_held_sigterm_stops_as_sigterm_does(tmp_path):
    # the second signal was delivered as itself: the held SIGTERM was dropped for the Ctrl-C's KeyboardInterrupt
    # (under neurosim train: status 130 instead of 143)
    import signal

    class Terminated(KeyboardInterrupt):  # as neurosim.cli's SIGTERM handler raises
        pass

    def on_sigterm(signum, frame):
        raise Terminated

    on_sigterm.neurosim_interrupt = True
    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        trainer = _own_model_trainer(tmp_path, epochs=2)
        trainer.method = _Signals(trainer.method, 6 + 2, [signal.SIGTERM, signal.SIGINT])
        with pytest.raises(KeyboardInterrupt) as stopped:
            trainer.fit(_shuffling_loader("loader generator"))
        assert type(stopped.value) is Terminated
        assert signal.getsignal(signal.SIGTERM) is on_sigterm  # the handlers are back
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert trainer.method.calls == 6 + 2 and load_checkpoint(tmp_path)["epoch"] == 1  # stopped at once


_SIGTERM_THEN_AN_INTERRUPT = """
import signal, sys
sys.path.insert(0, {tests!r})
from test_trainer import _Signals, _own_model_trainer, _shuffling_loader
trainer = _own_model_trainer(None, epochs=2)
trainer.method = _Signals(trainer.method, 2, [signal.SIGTERM] + ([] if {raise_} else [signal.SIGINT]), {raise_})
try:
    trainer.fit(_shuffling_loader("loader generator"))
except KeyboardInterrupt:
    print("caught, went on")
"""


@pytest.mark.parametrize("raise_", [False, True], ids=["ctrl-c", "raised"])
def test_a_held_sigterm_with_its_default_action_ends_the_script_whatever_interrupt_follows(tmp_path, raise_):
    # the KeyboardInterrupt (of a Ctrl-C, or raised by code of one's own) was caught by the script, which lived on:
    # the SIGTERM fit held was never acted on
    import signal
    import subprocess
    import sys
    from pathlib import Path

    script = _SIGTERM_THEN_AN_INTERRUPT.format(tests=str(Path(__file__).parent), raise_=raise_)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGTERM and "went on" not in done.stdout, (done.stdout, done.stderr)
    assert "SIGTERM: interrupted during epoch 1; the last checkpoint written is kept" in done.stderr


def test_a_signal_still_noted_as_an_epoch_block_ends_is_delivered_with_any_error_as_its_cause():
    import os
    import signal

    from neurosim.training import distributed
    from neurosim.training.trainer import _DeferredInterrupts

    def block():
        return _DeferredInterrupts(distributed.current_world(), torch.device("cpu"), "epoch 3")

    with pytest.raises(KeyboardInterrupt, match="^interrupted during epoch 3; the last checkpoint written is kept$"):
        with block():
            os.kill(os.getpid(), signal.SIGINT)  # noted after the last question: nothing asks for it again
    with pytest.raises(KeyboardInterrupt, match=r"interrupted during epoch 3, which then failed \(ValueError: "
                                                r"boom\)") as stopped:
        with block():
            os.kill(os.getpid(), signal.SIGINT)
            raise ValueError("boom")
    assert isinstance(stopped.value.__cause__, ValueError)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(ValueError, match="no signal"):  # without a signal, an error is only itself
        with block():
            raise ValueError("no signal")


class _FailingAfterSignal:
    """A loader of 6 batches of 8 whose iterator, asked for batch ``at`` (from 1), sends Ctrl-C and raises, as a
    DataLoader does whose workers the signal ended (SIGTERM to the process group); ``at=None``: never."""

    def __init__(self, at):
        self.at, self.batches = at, [_time_first([_Samples()[i] for i in range(k, k + 8)]) for k in range(0, 48, 8)]

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        import os
        import signal

        for i, batch in enumerate(self.batches, 1):
            if i == self.at:
                os.kill(os.getpid(), signal.SIGINT)
                raise RuntimeError("DataLoader worker (pid(s) 1234) exited unexpectedly")
            yield batch


def test_a_loader_that_fails_after_a_signal_stops_between_batches_checkpointed(tmp_path):
    # SIGTERM to the whole process group ends a DataLoader's workers at once: the main process, waiting for the next
    # batch, raised "worker exited unexpectedly" (exit status 1, no checkpoint of the epoch so far)
    full = _own_model_trainer(tmp_path / "a", epochs=2)
    full_history = full.fit(_FailingAfterSignal(None))
    stopped = _own_model_trainer(tmp_path / "b", epochs=2)
    with pytest.raises(KeyboardInterrupt, match=r"^interrupted after batch 3 of 6 of epoch 2 \(the training loader "
                                                r"then failed: RuntimeError: DataLoader worker .*exited unexpectedly\)"
                                                r": .* holds the epoch so far; fit\(\) resumes at batch 4 of epoch 2$"
                       ) as info:
        _fit_failing_in_epoch_2(stopped)
    assert isinstance(info.value.__cause__, RuntimeError)
    assert load_checkpoint(tmp_path / "b")["partial_epoch"]["batches"] == 3
    resumed = _own_model_trainer(tmp_path / "b", epochs=2)
    assert _strip(resumed.fit(_FailingAfterSignal(None))) == _strip(full_history)
    _same_weights(full.model.state_dict(), resumed.model.state_dict())


def _fit_failing_in_epoch_2(trainer):
    """``trainer.fit`` on a loader that fails after a signal as it is asked for epoch 2's fourth batch."""
    class Loader(_FailingAfterSignal):
        def __iter__(self):
            self.at = 4 if trainer.epoch == 1 else None
            return super().__iter__()

    return trainer.fit(Loader(None))


_LOADER_KILLED_WITH_ITS_GROUP = """
import os, signal, sys, time, torch
sys.path.insert(0, {tests!r})
from test_trainer import _Samples, _own_model_trainer, _time_first
class Slow(_Samples):
    def __getitem__(self, i):
        if i == 34:  # a worker, part-way through epoch 1's fifth batch (the main process has trained the four
            # before it and waits for it): SIGTERM to the whole process group, as timeout and Slurm send it
            os.killpg(os.getpgid(0), signal.SIGTERM)
        time.sleep(0.1)
        return super().__getitem__(i)
trainer = _own_model_trainer({run!r}, epochs=2)
trainer.fit(torch.utils.data.DataLoader(Slow(), batch_size=8, collate_fn=_time_first, num_workers=2))
print("not stopped")
"""


@pytest.mark.slow
def test_sigterm_to_the_process_group_with_loader_workers_ends_the_run_by_it_checkpointed(tmp_path):
    # the workers died at once and the main process, waiting for a batch, raised RuntimeError: status 1, no
    # checkpoint of the epoch so far (it stops so whether the signal lands in a batch or in the wait for one)
    import signal
    import subprocess
    import sys
    from pathlib import Path

    script = _LOADER_KILLED_WITH_ITS_GROUP.format(tests=str(Path(__file__).parent), run=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          start_new_session=True)
    assert done.returncode == -signal.SIGTERM and "not stopped" not in done.stdout, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    ckpt = load_checkpoint(tmp_path)
    assert ckpt["epoch"] == 0 and 1 <= ckpt["partial_epoch"]["batches"] <= 4


_LOADER_KILLED_MID_BATCH = """
import os, signal, sys, time, torch
sys.path.insert(0, {tests!r})
from test_trainer import _Samples, _own_model_trainer, _time_first
FLAG = {flag!r}
class Waits(_Samples):
    def __getitem__(self, i):
        if i == 34:  # a worker loading the fifth batch: SIGTERM to the whole group once the third batch trains
            while not os.path.exists(FLAG):
                time.sleep(0.01)
            os.killpg(os.getpgid(0), signal.SIGTERM)
        return super().__getitem__(i)
trainer = _own_model_trainer({run!r}, epochs=2)
method_step, calls = trainer.method.forward_backward, []
def slow_third_batch(*args):
    calls.append(1)
    if len(calls) == 3:  # the signal and the dead workers' SIGCHLD come while this batch trains
        open(FLAG, "w").close()
        time.sleep(1.5)
    return method_step(*args)
trainer.method.forward_backward = slow_third_batch
trainer.fit(torch.utils.data.DataLoader(Waits(), batch_size=8, collate_fn=_time_first, num_workers=2))
print("not stopped")
"""


@pytest.mark.slow
def test_sigterm_to_the_process_group_in_the_middle_of_a_batch_finishes_it_and_checkpoints(tmp_path):
    # PyTorch's SIGCHLD handler raised "DataLoader worker is killed by signal" inside the batch under way (here
    # in its forward): the process ended by the signal, but with that traceback and without the epoch so far
    import signal
    import subprocess
    import sys
    from pathlib import Path

    script = _LOADER_KILLED_MID_BATCH.format(tests=str(Path(__file__).parent), run=str(tmp_path / "run"),
                                             flag=str(tmp_path / "third_batch"))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          start_new_session=True)
    assert done.returncode == -signal.SIGTERM and "not stopped" not in done.stdout, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt["epoch"] == 0 and ckpt["partial_epoch"]["batches"] == 3


def test_a_full_disk_as_the_epoch_so_far_is_saved_is_the_error_raised_and_keeps_the_last_checkpoint(
        tmp_path, monkeypatch):
    # fit raised a bare OSError and dropped the signal: a SIGTERM whose action is the default one no longer ended
    # the process. Now the storage error, what to act on, stops the run as itself (the signal counts as delivered)
    import errno
    import signal

    import neurosim.training.trainer as trainer_module

    real = trainer_module.save_checkpoint

    def full(path, ckpt):
        if ckpt.get("partial_epoch"):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, ckpt)

    monkeypatch.setattr(trainer_module, "save_checkpoint", full)
    trainer = _own_model_trainer(tmp_path, epochs=3)
    trainer.method = _Signals(trainer.method, 6 + 3)
    with pytest.raises(OSError, match="No space left") as info:
        trainer.fit(_shuffling_loader("loader generator"))
    if hasattr(info.value, "add_note"):
        assert info.value.__notes__ == ["SIGINT came as the checkpoint of epoch 2 so far was being written: the run "
                                        "stops without it, the last checkpoint written is kept"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert load_checkpoint(tmp_path)["epoch"] == 1 and "partial_epoch" not in load_checkpoint(tmp_path)


_FULL_DISK_ON_SIGTERM = """
import errno, signal, sys
sys.path.insert(0, {tests!r})
import neurosim.training.trainer as trainer_module
from test_trainer import _Signals, _own_model_trainer, _shuffling_loader
def full(path, ckpt):
    raise OSError(errno.ENOSPC, "No space left on device", str(path))
trainer_module.save_checkpoint = full
trainer = _own_model_trainer({run!r}, epochs=2)
trainer.method = _Signals(trainer.method, 3, [signal.SIGTERM])
try:
    trainer.fit(_shuffling_loader("loader generator"))
except OSError:
    pass  # a script that goes on after a failed save
print("not stopped")
"""


def test_a_full_disk_as_sigterm_is_handled_by_default_prints_the_error_and_ends_by_the_signal(tmp_path):
    import signal
    import subprocess
    import sys
    from pathlib import Path

    script = _FULL_DISK_ON_SIGTERM.format(tests=str(Path(__file__).parent), run=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGTERM and "not stopped" not in done.stdout, done.stderr
    assert "OSError: [Errno 28] No space left on device" in done.stderr


# ---------------------------------------------------------------- resuming: the loader and load()

def test_resuming_an_interrupted_epoch_with_another_number_of_batches_is_refused(tmp_path):
    # batch_size 8 → 4: 12 batches; it resumed at batch 3 of 12, samples other than those not yet trained
    _interrupted_fit(_own_model_trainer(tmp_path, epochs=2), 6 + 2, _shuffling_loader("loader generator"))
    smaller = torch.utils.data.DataLoader(_Samples(), batch_size=4, shuffle=True, collate_fn=_time_first,
                                          generator=torch.Generator().manual_seed(0))
    trainer = _own_model_trainer(tmp_path, epochs=2)
    trainer.method = _Signals(trainer.method, at=None)
    with pytest.raises(ValueError, match=r"the training loader yields 12 batch\(es\) in epoch 2, but .*checkpoint.pt "
                                         r"was interrupted after batch 2 of its 6: it is not the loader the run was "
                                         r"trained with .* pass fit\(resume=False\) to start over"):
        trainer.fit(smaller)
    assert trainer.method.calls == 0


def test_fit_after_load_of_an_interrupted_epochs_checkpoint_continues_it_exactly(tmp_path):
    # fit found no checkpoint in its own run_dir (none here), seeded afresh and dropped what load() restored: the
    # epoch was trained again from its first batch
    _interrupted_fit(_own_model_trainer(tmp_path / "a", epochs=2), 6 + 2, _shuffling_loader("loader generator"))
    full = _own_model_trainer(None, epochs=2)
    full_history = full.fit(_shuffling_loader("loader generator"))
    torch.manual_seed(123)
    loaded = _own_model_trainer(None, epochs=2)
    loaded.load(tmp_path / "a" / "checkpoint.pt")
    loaded.method = _Signals(loaded.method, at=None)
    assert _strip(loaded.fit(_shuffling_loader("loader generator"))) == _strip(full_history)
    assert loaded.method.calls == 4  # epoch 2's batches 3 to 6
    _same_weights(full.model.state_dict(), loaded.model.state_dict())
    # into a run folder of its own, and for a checkpoint at an epoch's end too
    loaded = _own_model_trainer(tmp_path / "c", epochs=2)
    loaded.load(tmp_path / "a" / "checkpoint.pt")
    loaded.fit(_shuffling_loader("loader generator"))
    _same_weights(full.model.state_dict(), loaded.model.state_dict())
    loaded = _own_model_trainer(None, epochs=3)
    train = _shuffling_loader("loader generator")
    loaded.load(tmp_path / "c" / "checkpoint.pt", loaders={"train": train})
    loaded.method = _Signals(loaded.method, at=None)
    loaded.fit(train, epochs=3)
    assert loaded.method.calls == 6 and [m["epoch"] for m in loaded.history] == [1, 2, 3]
    # resume=False does not continue the epoch load() restored (it seeds afresh and trains the epoch whole)
    again = _own_model_trainer(None, epochs=2)
    again.load(tmp_path / "a" / "checkpoint.pt")
    again.method = _Signals(again.method, at=None)
    again.fit(_shuffling_loader("loader generator"), resume=False)
    assert again.method.calls == 6


def test_interrupted_after_the_last_batch_it_resumes_with_the_epochs_end_without_a_scheduler_warning(tmp_path):
    # the messages said "resumes at batch 7 of epoch 1" of 6, and the resumed cosine schedule's step before any
    # optimizer step in the new process made PyTorch warn of a wrong call order
    full = _own_model_trainer(tmp_path / "a", epochs=2, scheduler="cosine")
    full_history = full.fit(_shuffling_loader("loader generator"))
    message = _interrupted_fit(_own_model_trainer(tmp_path / "b", epochs=2, scheduler="cosine"), 6,
                               _shuffling_loader("loader generator"))
    assert message.endswith("interrupted after batch 6 of 6 of epoch 1: "
                            f"{tmp_path / 'b' / 'checkpoint.pt'} holds the epoch so far; fit() resumes with the end of "
                            "epoch 1 (its scheduler step and evaluation)")
    from neurosim.training.checkpoint import trained_so_far

    assert trained_so_far(load_checkpoint(tmp_path / "b")) == "all 6 of epoch 1's batches"
    resumed = _own_model_trainer(tmp_path / "b", epochs=2, scheduler="cosine")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _strip(resumed.fit(_shuffling_loader("loader generator"))) == _strip(full_history)
    _same_weights(full.model.state_dict(), resumed.model.state_dict())


def _global_stream_loader(dataset=None):
    """A DataLoader that shuffles from torch's global stream (no generator of its own): it follows the seed."""
    return torch.utils.data.DataLoader(dataset or _Samples(), batch_size=8, shuffle=True, collate_fn=_time_first)


def test_fit_after_load_of_another_runs_checkpoint_seeds_with_its_own_seed_and_of_its_own_continues_it(tmp_path):
    # fit kept the random states load() restored for any checkpoint: fine-tuned from another run's, seeds 1 and 2
    # gave one and the same run
    _own_model_trainer(tmp_path / "pretrained", epochs=1).fit(_global_stream_loader())

    def finetune(seed):
        trainer = _own_model_trainer(None, epochs=3, seed=seed)
        trainer.load(tmp_path / "pretrained" / "checkpoint.pt")
        return _strip(trainer.fit(_global_stream_loader())[1:])

    assert finetune(1) != finetune(2)
    assert finetune(1) == finetune(1)
    # the run's own checkpoint (the same config: its seed) continues as if never stopped
    full = _own_model_trainer(None, epochs=3)
    full_history = full.fit(_global_stream_loader())
    _own_model_trainer(tmp_path / "a", epochs=3).fit(_global_stream_loader(), epochs=1)
    torch.manual_seed(123)
    loaded = _own_model_trainer(None, epochs=3)
    loaded.load(tmp_path / "a" / "checkpoint.pt")
    assert _strip(loaded.fit(_global_stream_loader())) == _strip(full_history)
    _same_weights(full.model.state_dict(), loaded.model.state_dict())


class _Unreadable(_Samples):
    def __getitem__(self, i):
        raise OSError(f"sample {i}: no such file")


def test_a_fit_after_load_that_fails_before_training_leaves_a_retry_to_continue_the_checkpoint(tmp_path):
    # the failed fit had dropped what load() restored: the retry with the run's loader seeded afresh and trained the
    # interrupted epoch again from its first batch
    from neurosim.config import ConfigError

    _interrupted_fit(_own_model_trainer(tmp_path / "a", epochs=2), 6 + 2, _shuffling_loader("loader generator"))
    full = _own_model_trainer(None, epochs=2)
    full_history = full.fit(_shuffling_loader("loader generator"))
    loaded = _own_model_trainer(None, epochs=2)
    loaded.load(tmp_path / "a" / "checkpoint.pt")
    loaded.method = _Signals(loaded.method, at=None)
    # part-way through epoch 2: fit(epochs=1) returned, trained nothing, and dropped it
    with pytest.raises(ConfigError, match=r"epochs: .*checkpoint.pt has trained epoch 1 and the first 2 of epoch 2's "
                                          r"6 batches, more than the 1 epoch\(s\) asked; rerun with epochs >= 2"):
        loaded.fit(_shuffling_loader("loader generator"), epochs=1)
    smaller = torch.utils.data.DataLoader(_Samples(), batch_size=4, shuffle=True, collate_fn=_time_first)
    with pytest.raises(ValueError, match=r"yields 12 batch\(es\) in epoch 2"):
        loaded.fit(smaller)
    with pytest.raises(OSError, match="no such file"):
        loaded.fit(_global_stream_loader(_Unreadable()))
    assert loaded.method.calls == 0
    assert _strip(loaded.fit(_shuffling_loader("loader generator"))) == _strip(full_history)
    assert loaded.method.calls == 4  # epoch 2's batches 3 to 6
    _same_weights(full.model.state_dict(), loaded.model.state_dict())
    # at an epoch's end: the failed first batch drew from the random states (iter(DataLoader) draws a seed)
    full = _own_model_trainer(None, epochs=2)
    full_history = full.fit(_global_stream_loader())
    _own_model_trainer(tmp_path / "b", epochs=2).fit(_global_stream_loader(), epochs=1)
    loaded = _own_model_trainer(None, epochs=2)
    loaded.load(tmp_path / "b" / "checkpoint.pt")
    with pytest.raises(OSError, match="no such file"):
        loaded.fit(_global_stream_loader(_Unreadable()))
    assert _strip(loaded.fit(_global_stream_loader())) == _strip(full_history)
    _same_weights(full.model.state_dict(), loaded.model.state_dict())


def test_seed_everything_takes_a_seed_and_rank_past_torchs_range_as_torch_reads_a_negative_one():
    """Config seeds go up to 2**64 - 1; torchrun adds the rank (and numpy's SeedSequence refuses negative ones): torch
    takes seeds modulo 2**64, as it reads -1 as 2**64 - 1, so every process still gets a seed."""
    from neurosim.training.trainer import seed_everything

    def draws(seed):
        seed_everything(seed)
        return torch.rand(3).tolist()

    assert draws(2**64 - 1) == draws(-1)
    assert draws(2**64 + 1) == draws(1)  # seed 2**64 - 1 on rank 2 (torch raised an overflow)


# ----------------------------------------------------------------------------------------------- validation, best.pt

def _batches(first, last):
    return [_time_first([_Samples()[i] for i in range(k, k + 8)]) for k in range(first, last, 8)]


def test_a_val_loader_is_evaluated_every_epoch_beside_the_test_loader(tmp_path):
    val, test = _batches(0, 16), _batches(16, 40)
    trainer = _own_model_trainer(tmp_path, epochs=2)
    history = trainer.fit(_shuffling_loader("loader generator"), test, val_loader=val)
    assert all({"val_loss", "val_acc", "test_loss", "test_acc"} <= m.keys() for m in history)
    assert history[-1]["val_acc"] == trainer.evaluate(val)["acc"]
    assert history[-1]["test_acc"] == trainer.evaluate(test)["acc"]
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["val_acc"] for line in lines] == [m["val_acc"] for m in history]


def test_best_pt_keeps_the_best_validation_epoch_across_a_resume(tmp_path, monkeypatch):
    import shutil

    val = _batches(0, 16)
    # (val accuracy, val loss) per epoch: epoch 4 ties epoch 2's accuracy with a higher loss, so epoch 2 stays best
    scores = {1: (0.5, 1.0), 2: (0.7, 0.9), 3: (0.6, 0.8), 4: (0.7, 0.95)}
    evaluate = Trainer._evaluate

    def scripted(self, loader, stop=None):
        if loader is val:
            acc, loss = scores[self.epoch + 1]
            return {"acc": acc, "loss": loss}
        return evaluate(self, loader, stop)

    monkeypatch.setattr(Trainer, "_evaluate", scripted)
    _own_model_trainer(tmp_path, epochs=2).fit(_shuffling_loader("loader generator"), val_loader=val)
    assert load_checkpoint(tmp_path / "best.pt")["epoch"] == 2
    shutil.copy(tmp_path / "checkpoint.pt", tmp_path / "epoch2.pt")
    resumed = _own_model_trainer(tmp_path, epochs=4)
    history = resumed.fit(_shuffling_loader("loader generator"), val_loader=val)
    assert [m["epoch"] for m in history] == [1, 2, 3, 4] and best_epoch(history)["epoch"] == 2
    best, epoch2 = load_checkpoint(tmp_path / "best.pt"), load_checkpoint(tmp_path / "epoch2.pt")
    assert best["epoch"] == 2 and load_checkpoint(tmp_path)["epoch"] == 4
    _same_weights(best["model"], epoch2["model"])
    assert best_epoch([{"epoch": 1, "val_acc": 0.5, "val_loss": 2.0}, {"epoch": 2, "val_acc": 0.5, "val_loss": 1.0},
                       {"epoch": 3, "val_acc": 0.5, "val_loss": 1.0}])["epoch"] == 2
    assert best_epoch([{"epoch": 1, "test_acc": 0.9}]) is None


def test_an_interrupt_while_validating_resumes_with_the_evaluation(tmp_path):
    val, test = _batches(0, 24), _batches(24, 40)
    full = _own_model_trainer(tmp_path / "a", epochs=2)
    full_history = full.fit(_shuffling_loader("loader generator"), test, val_loader=val)
    stopped = _own_model_trainer(tmp_path / "b", epochs=2)
    with pytest.raises(KeyboardInterrupt, match="interrupted while evaluating epoch 1"):
        stopped.fit(_shuffling_loader("loader generator"), test, val_loader=_StopWhileEvaluating(val))
    assert not (tmp_path / "b" / "best.pt").exists()
    resumed = _own_model_trainer(tmp_path / "b", epochs=2)
    assert _strip(resumed.fit(_shuffling_loader("loader generator"), test, val_loader=val)) == _strip(full_history)
    _same_weights(load_checkpoint(tmp_path / "a" / "best.pt")["model"],
                  load_checkpoint(tmp_path / "b" / "best.pt")["model"])


def test_patience_ends_training_once_that_many_epochs_bring_no_better_validation_and_a_rerun_stays_stopped(
        tmp_path, monkeypatch):
    from neurosim.config import ConfigError, load_config

    val = _batches(0, 16)
    scores = {1: 0.5, 2: 0.7, 3: 0.6, 4: 0.7, 5: 0.9, 6: 0.95}  # epoch 4 ties 2 (same loss): no better
    evaluate = Trainer._evaluate
    monkeypatch.setattr(Trainer, "_evaluate", lambda self, loader, stop=None: {"acc": scores[self.epoch + 1],
                                                                               "loss": 1.0} if loader is val
                        else evaluate(self, loader, stop))
    trainer = _own_model_trainer(tmp_path, epochs=6, patience=2)
    history = trainer.fit(_shuffling_loader("loader generator"), val_loader=val)
    assert [m["epoch"] for m in history] == [1, 2, 3, 4] and trainer.stopped_early
    again = _own_model_trainer(tmp_path, epochs=6, patience=2)
    again.method = _Signals(again.method, at=None)
    assert len(again.fit(_shuffling_loader("loader generator"), val_loader=val)) == 4 and again.method.calls == 0
    more = _own_model_trainer(tmp_path, epochs=6, patience=3)  # patience may change on resume: it trains on
    assert [m["epoch"] for m in more.fit(_shuffling_loader("loader generator"), val_loader=val)] == [1, 2, 3, 4, 5, 6]
    assert not more.stopped_early and load_checkpoint(tmp_path / "best.pt")["epoch"] == 6
    with pytest.raises(ValueError, match=r"train.patience = 2 stops on validation accuracy: pass fit\(\.\.\., "
                                         r"val_loader=\.\.\.\)"):
        _own_model_trainer(tmp_path / "other", patience=2).fit(_shuffling_loader("loader generator"))
    with pytest.raises(ConfigError, match=r"train.patience: = 3 stops training on validation accuracy, but there is "
                                          r"no validation split; set data.val_split"):
        train_run(load_config(None, ["train.patience=3", f"out_dir={tmp_path}"]))
    assert not (tmp_path / "run").exists()


def test_a_best_pt_that_the_resumed_checkpoint_does_not_continue_is_mended_or_removed(tmp_path, monkeypatch):
    import shutil

    val = _batches(0, 16)
    scores = {1: 0.5, 2: 0.7, 3: 0.8}
    evaluate = Trainer._evaluate
    monkeypatch.setattr(Trainer, "_evaluate", lambda self, loader, stop=None: {"acc": scores[self.epoch + 1],
                                                                               "loss": 1.0} if loader is val
                        else evaluate(self, loader, stop))
    a = tmp_path / "a"
    _own_model_trainer(a, epochs=3).fit(_shuffling_loader("loader generator"), val_loader=val, epochs=2)
    shutil.copy(a / "checkpoint.pt", tmp_path / "epoch2.pt")
    _own_model_trainer(a, epochs=3).fit(_shuffling_loader("loader generator"), val_loader=val)
    assert load_checkpoint(a / "best.pt")["epoch"] == 3
    # as with train.checkpoint_every = 2 and a crash in epoch 4: best.pt holds epoch 3, the checkpoint epoch 2
    shutil.copy(tmp_path / "epoch2.pt", a / "checkpoint.pt")
    with pytest.warns(RuntimeWarning, match=r"best.pt held epoch 3 of a run that .*checkpoint.pt does not continue.*"
                                            r"replaced it with .*checkpoint.pt, epoch 2, this run's best"):
        _own_model_trainer(a, epochs=3).fit(_shuffling_loader("loader generator"), val_loader=val, epochs=2)
    assert load_checkpoint(a / "best.pt")["epoch"] == 2
    _same_weights(load_checkpoint(a / "best.pt")["model"], load_checkpoint(tmp_path / "epoch2.pt")["model"])
    # a best epoch that no checkpoint holds (epoch 1, the checkpoint is epoch 2's) cannot be rebuilt: removed
    b = tmp_path / "b"
    scores.update({1: 0.9})
    _own_model_trainer(b, epochs=2).fit(_shuffling_loader("loader generator"), val_loader=val)
    torch.save({**load_checkpoint(b / "best.pt"), "epoch": 7}, b / "best.pt")
    with pytest.warns(RuntimeWarning, match=r"held epoch 7 .* removed it\. This run's best validation epoch so far, "
                                            r"1, cannot be rebuilt"):
        _own_model_trainer(b, epochs=2).fit(_shuffling_loader("loader generator"), val_loader=val)
    assert not (b / "best.pt").exists()
    # a consistent best.pt is left alone
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _own_model_trainer(a, epochs=3).fit(_shuffling_loader("loader generator"), val_loader=val, epochs=2)


def test_a_run_without_validation_removes_an_earlier_best_pt_once_it_replaced_the_checkpoint(tmp_path):
    _own_model_trainer(tmp_path, epochs=1).fit(_shuffling_loader("loader generator"), val_loader=_batches(0, 8))
    assert (tmp_path / "best.pt").is_file()
    trainer = _own_model_trainer(tmp_path, epochs=3, checkpoint_every=2)
    batches = _batches(0, 16)

    class FailsInEpoch2(list):
        def __iter__(self):
            if trainer.epoch == 1:
                raise OSError("the disk went away")
            return super().__iter__()

    with pytest.raises(OSError, match="went away"):
        trainer.fit(FailsInEpoch2(batches), resume=False)  # epoch 1 written, not checkpointed (every 2)
    assert (tmp_path / "best.pt").is_file() and load_checkpoint(tmp_path)["config"]["train"]["checkpoint_every"] == 1
    _own_model_trainer(tmp_path, epochs=2, checkpoint_every=2).fit(batches, resume=False)
    assert not (tmp_path / "best.pt").exists() and load_checkpoint(tmp_path)["epoch"] == 2


def test_best_epoch_reads_a_history_from_metrics_jsonl_where_a_non_finite_loss_is_null():
    from neurosim.viz import training_curves

    history = [{"epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "val_acc": 0.6, "val_loss": None},
               {"epoch": 2, "train_loss": 0.9, "train_acc": 0.6, "val_acc": 0.6, "val_loss": 0.8},
               {"epoch": 3, "train_loss": 0.8, "train_acc": 0.7, "val_acc": None, "val_loss": None}]
    assert best_epoch(history)["epoch"] == 2  # the tie goes to the finite loss
    assert best_epoch(history[2:]) is None
    training_curves(history)
    training_curves(history[2:])


def test_a_validated_run_resumed_without_its_val_loader_is_refused_and_keeps_best_pt(tmp_path):
    _own_model_trainer(tmp_path, epochs=1).fit(_shuffling_loader("loader generator"), val_loader=_batches(0, 8))
    with pytest.raises(ValueError, match=r"holds a run validated every epoch .* pass fit\(\.\.\., val_loader=\.\.\.\)"):
        _own_model_trainer(tmp_path, epochs=2).fit(_shuffling_loader("loader generator"))
    assert (tmp_path / "best.pt").is_file() and load_checkpoint(tmp_path)["epoch"] == 1


def test_an_early_stop_is_checkpointed_whatever_checkpoint_every_and_only_counts_with_epochs_left(tmp_path,
                                                                                                  monkeypatch):
    val = _batches(0, 16)
    scores = {1: 0.5, 2: 0.7, 3: 0.6, 4: 0.6, 5: 0.6, 6: 0.9}
    evaluate = Trainer._evaluate
    monkeypatch.setattr(Trainer, "_evaluate", lambda self, loader, stop=None: {"acc": scores[self.epoch + 1],
                                                                               "loss": 1.0} if loader is val
                        else evaluate(self, loader, stop))
    # patience spent after epoch 3, an odd one, with checkpoints every 2 epochs: checkpointed at 3 all the same
    a = _own_model_trainer(tmp_path / "a", epochs=6, patience=1, checkpoint_every=2)
    assert len(a.fit(_shuffling_loader("loader generator"), val_loader=val)) == 3 and a.stopped_early
    assert load_checkpoint(tmp_path / "a")["epoch"] == 3
    again = _own_model_trainer(tmp_path / "a", epochs=6, patience=1, checkpoint_every=2)
    again.method = _Signals(again.method, at=None)
    again.fit(_shuffling_loader("loader generator"), val_loader=val)
    assert again.method.calls == 0  # stopped: nothing trained again
    # patience spent at the last planned epoch: the run ended as planned, not early; more epochs train on
    b = _own_model_trainer(tmp_path / "b", epochs=4, patience=2)
    assert len(b.fit(_shuffling_loader("loader generator"), val_loader=val)) == 4 and not b.stopped_early
    more = _own_model_trainer(tmp_path / "b", epochs=8, patience=2)
    history = more.fit(_shuffling_loader("loader generator"), val_loader=val)
    assert len(history) == 5 and more.stopped_early  # epoch 5 trained, then no better in 2: stopped with 3 left


RECURRENT_MLP = {"kind": "mlp", "input_shape": [2, 34, 34], "hidden": [64], "recurrent": True, "readout": "membrane"}


@pytest.mark.parametrize("method", ["bptt", "sltt_k"])
def test_a_recurrent_model_learns_resumes_exactly_and_evaluates_as_trained(tmp_path, event_digits_cache, method):
    from neurosim.nn import RLIF

    train = {"method": method} if method == "bptt" else {"method": "sltt_k", "k": 2, "loss": "tet"}
    cfg = replace(_cfg(tmp_path, epochs=3, **train), model=config_from_dict({"model": RECURRENT_MLP}).model)
    full, a, b = _full_and_resumed(cfg, tmp_path)
    assert "2.recurrent.weight" in a and all(torch.equal(a[k], b[k]) for k in a)
    assert full[-1]["test_acc"] > 0.3 and full[-1]["saved_mb"] > 0  # chance is 0.10
    ev = evaluate_checkpoint(tmp_path / "a" / "checkpoint.pt", progress=False)
    assert ev["acc"] == pytest.approx(full[-1]["test_acc"], abs=1e-9)
    assert isinstance(build_model(cfg.model, cfg.neuron)[2], RLIF)


@pytest.mark.parametrize("method", ["bptt", "sltt"])
def test_a_cuba_model_learns_resumes_exactly_and_evaluates_as_trained(tmp_path, event_digits_cache, method):
    """neuron.tau_syn_ms makes the hidden and output layers CubaLIF: the synaptic current's decay α is saved with the
    weights (syn.beta_value), a resumed run equals the uninterrupted one, and the checkpoint evaluates as trained."""
    from neurosim.nn import CubaLIF

    train = {"method": method} if method == "bptt" else {"method": "sltt", "loss": "tet"}
    cfg = _cfg(tmp_path, epochs=3, **train)
    cfg = replace(cfg, neuron=replace(cfg.neuron, tau_syn_ms=3.0))
    full, a, b = _full_and_resumed(cfg, tmp_path)
    alphas = [k for k in a if k.endswith("syn.beta_value")]
    assert alphas and all(torch.equal(a[k], b[k]) for k in a)
    assert all(float(a[k]) == pytest.approx(torch.exp(torch.tensor(-1 / 3.0)).item()) for k in alphas)
    assert full[-1]["test_acc"] > 0.3 and full[-1]["train_loss"] < full[0]["train_loss"]  # chance is 0.10
    ev = evaluate_checkpoint(tmp_path / "a" / "checkpoint.pt", progress=False)
    assert ev["acc"] == pytest.approx(full[-1]["test_acc"], abs=1e-9)
    assert any(isinstance(m, CubaLIF) for m in build_model(cfg.model, cfg.neuron))
    for tau_syn_ms in (5.0, None):  # another synaptic time constant, or LIF neurons: not this run's checkpoint
        with pytest.raises(ConfigError, match=r"neuron.tau_syn_ms differs"):
            _fit(replace(cfg, neuron=replace(cfg.neuron, tau_syn_ms=tau_syn_ms)), tmp_path / "a")


def _full_and_resumed(cfg, tmp_path):
    """An uninterrupted run (``a``) and one stopped after epoch 1 and resumed (``b``), whose histories must agree;
    returns the first's history and both final checkpoints' weights."""
    full = _fit(cfg, tmp_path / "a")
    _fit(cfg, tmp_path / "b", stop_after=1)
    resumed = _fit(cfg, tmp_path / "b")
    assert _strip(resumed) == _strip(full)
    return (full, load_checkpoint(tmp_path / "a" / "checkpoint.pt")["model"],
            load_checkpoint(tmp_path / "b" / "checkpoint.pt")["model"])


class _WatchedBatches:
    """Batches made on demand, each watched by a weak reference: ``alive[i]`` is how many earlier batches' inputs
    were still held when batch ``i`` was asked for."""

    def __init__(self, n: int):
        self.n, self.refs, self.alive = n, [], []

    def _make(self, i: int):
        self.alive.append(sum(r() is not None for r in self.refs))
        x_seq, y = _time_first([_Samples()[j] for j in range(8 * i, 8 * i + 8)])
        self.refs.append(weakref.ref(x_seq))
        return x_seq, y

    def __iter__(self):
        return (self._make(i) for i in range(self.n))  # (the generator itself keeps no batch)


@pytest.mark.parametrize("method", ["bptt", "sltt"])
def test_training_and_evaluating_hold_one_batch_at_a_time(method):
    """A batch's frames are O(T): the Trainer lets a batch go before it asks for the next one, in training and in
    evaluation, so a long-T run holds one batch's frames, not two (it kept the last batch's until the next was
    made)."""
    trainer = _own_model_trainer(method=method, loss="tet")
    train, test = _WatchedBatches(3), _WatchedBatches(3)
    trainer.fit(train, test, resume=False, epochs=1)
    assert train.alive == [0, 0, 0] and test.alive == [0, 0, 0]


_CPU_OOM = ("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you tried to "
            "allocate 7372800 bytes. Error code 12 (Cannot allocate memory)")  # torch 2.13 under `ulimit -v`


@pytest.mark.parametrize("method, says", [
    ("bptt", r"BPTT keeps every one of the T = 4 steps .* --set train.method=sltt train.loss=tet"),
    ("sltt", r"SLTT keeps one step's memory whatever T is, but the batch's input frames themselves take 0 MiB .* "
             r"lower data.batch_size"),
])
def test_a_batch_that_runs_out_of_memory_says_what_it_held_and_what_to_change(method, says, monkeypatch):
    """An allocation that fails in a training step (torch's CPU allocator under a memory limit, CUDA's out of
    memory) is a TrainingMemoryError naming the batch, its T and what to change: for BPTT, SLTT. It was torch's
    RuntimeError and its traceback."""
    from neurosim.training import TrainingMemoryError
    from neurosim.training.methods import BPTT
    from neurosim.training.sltt import SLTT

    def fails(self, model, x_seq, y, loss):
        raise RuntimeError(_CPU_OOM)

    monkeypatch.setattr(BPTT if method == "bptt" else SLTT, "forward_backward", fails)
    trainer = _own_model_trainer(method=method, loss="tet")
    with pytest.raises(TrainingMemoryError, match=r"training ran out of memory in batch 1 of epoch 1 \(8 samples × "
                                                  rf"T = 4 steps, on cpu\): {says}") as caught:
        trainer.fit(_batches(0, 16), resume=False)
    assert isinstance(caught.value, MemoryError) and str(caught.value.__cause__) == _CPU_OOM


def test_an_error_that_is_not_out_of_memory_stays_itself(monkeypatch):
    from neurosim.training.methods import BPTT

    def fails(self, model, x_seq, y, loss):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied (8x12 and 13x16)")

    monkeypatch.setattr(BPTT, "forward_backward", fails)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        _own_model_trainer(loss="tet").fit(_batches(0, 16), resume=False)


# ----------------------------------------------------------------------------------------------- compact batches

@pytest.mark.parametrize("method", ["bptt", "sltt", "sltt_k"])
def test_a_frameloaders_counts_reach_the_method_compact_and_train_as_their_float32_batches(method, monkeypatch):
    """Long sequences: the Trainer takes a FrameLoader's batches in the frames' own dtype (uint8 event counts: a
    quarter of float32's bytes, O(T)), which the methods and run_chunked make float32 a call's steps at a time; the
    run (weights, losses, accuracies, evaluation) is exactly that of the same loader's float32 batches, which the
    loader still gives when iterated."""
    from neurosim.data import FrameLoader
    from neurosim.training.methods import BPTT
    from neurosim.training.sltt import SLTT, SLTTK

    g = torch.Generator().manual_seed(2)
    counts = torch.randint(0, 4, (40, 6, 12), generator=g, dtype=torch.uint8)  # [N, T, features]
    labels = torch.randint(0, 3, (40,), generator=g)
    seen = []
    cls = {"bptt": BPTT, "sltt": SLTT, "sltt_k": SLTTK}[method]
    real = cls.forward_backward

    def recording(self, model, x_seq, y, loss):
        seen.append(x_seq.dtype)
        return real(self, model, x_seq, y, loss)

    monkeypatch.setattr(cls, "forward_backward", recording)
    runs = []
    for frames in (counts.float(), counts):  # float32 frames: the loader's float batches, as before
        seen.clear()
        trainer = _own_model_trainer(epochs=2, method=method, loss="tet")
        train = FrameLoader(frames, labels, batch_size=8, shuffle=True, seed=4)
        test = FrameLoader(frames[:16], labels[:16], batch_size=8)
        history = trainer.fit(train, test, resume=False)
        runs.append((_strip(history), trainer.model.state_dict(), trainer.evaluate(test), set(seen)))
    (h_f, w_f, e_f, seen_f), (h_c, w_c, e_c, seen_c) = runs
    assert seen_f == {torch.float32} and seen_c == {torch.uint8}
    assert h_c == h_f and e_c == e_f and h_f[-1]["train_acc"] > 0
    _same_weights(w_c, w_f)
    assert next(iter(train))[0].dtype == torch.float32  # what user code iterating the loader gets


def test_a_training_method_of_ones_own_still_gets_float32_batches_from_a_frameloader_of_counts():
    """Compact batches go only to methods that declare ``takes_compact_input`` (BPTT, SLTT, SLTT-K): a method a
    user registered before compact batches existed must not start getting uint8 frames it cannot run."""
    from neurosim.data import FrameLoader
    from neurosim.training.methods import BPTT

    seen = []

    class Mine:  # the TrainingMethod protocol, nothing more
        name = "mine"

        def forward_backward(self, model, x_seq, y, loss):
            seen.append(x_seq.dtype)
            return BPTT().forward_backward(model, x_seq, y, loss)

    counts = torch.randint(0, 4, (16, 6, 12), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    trainer = _own_model_trainer(epochs=1)
    trainer.method = Mine()
    trainer.fit(FrameLoader(counts, torch.arange(16) % 3, batch_size=8), resume=False)
    assert seen == [torch.float32, torch.float32]


def test_out_of_memory_on_a_compact_batch_names_the_frames_dtype(monkeypatch):
    """The advice gives the bytes the batch's frames take as they are held: uint8 counts from a FrameLoader."""
    from neurosim.data import FrameLoader
    from neurosim.training import TrainingMemoryError
    from neurosim.training.sltt import SLTT

    def fails(self, model, x_seq, y, loss):
        raise RuntimeError(_CPU_OOM)

    monkeypatch.setattr(SLTT, "forward_backward", fails)
    loader = FrameLoader(torch.ones(16, 4, 12, dtype=torch.uint8), torch.arange(16) % 3, batch_size=8)
    with pytest.raises(TrainingMemoryError, match=r"input frames themselves take 0 MiB \(uint8, O\(T\)\)"):
        _own_model_trainer(method="sltt", loss="tet").fit(loader, resume=False)

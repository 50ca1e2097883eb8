"""One process of the data-parallel tests: ``torchrun ... ddp_worker.py OUT_DIR BATCH`` (or plain ``python`` for
the single-process reference).

It trains a small MLP SNN on made-up spike frames with BPTT, SLTT (one step at a time, and in chunks) and SLTT-K,
counting the gradient exchanges DDP makes, then trains a run that dies after one epoch and is resumed, and one
that the last process alone is sent Ctrl-C in, part-way through epoch 2, and is resumed. Every
process writes what it ended with to ``OUT_DIR/rank{R}.pt``; tests/training/test_distributed.py compares them.
``ddp_worker.py OUT_DIR BATCH recurrent`` trains the methods only, with recurrent hidden layers (``model.recurrent``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from neurosim.config import config_from_dict
from neurosim.data import FrameLoader
from neurosim.nn import build_model
from neurosim.training import Trainer, seed_everything
from neurosim.training.distributed import process_group_from_env

T, N, FEATURES = 6, 64, (2, 4, 4)
METHODS = {"bptt": {}, "sltt": {"time_chunk": 1}, "sltt_chunks": {"time_chunk": 3}, "sltt_k": {"k": 2}}


def config(method: str, batch: int, epochs: int = 2, dropout: float = 0.0, recurrent: bool = False, **train):
    return config_from_dict({
        "seed": 3,
        "data": {"dataset": "event_digits", "time_steps": T, "batch_size": batch},
        "model": {"kind": "mlp", "input_shape": list(FEATURES), "hidden": [24], "num_classes": 4,
                  "dropout": dropout, "readout": "membrane", **({"recurrent": True} if recurrent else {})},
        "neuron": {"beta": 0.8},
        "train": {"method": method.replace("_chunks", ""), "loss": "tet", "optimizer": "sgd", "lr": 0.5,
                  "momentum": 0.0, "scheduler": "none", "grad_clip": None, "epochs": epochs, "threads": 1,
                  "device": "cpu", **train},
    })


def data(batch: int):
    g = torch.Generator().manual_seed(0)
    frames = (torch.rand(N, T, *FEATURES, generator=g) < 0.3).float()
    labels = torch.randint(0, 4, (N,), generator=g)
    return FrameLoader(frames, labels, batch, shuffle=True, seed=5), FrameLoader(frames[:20], labels[:20], 16)


class ExchangeCount:
    """How many times :func:`counted_allreduce` ran (DDP passes it as the hook's state)."""

    calls = 0


def counted_allreduce(count: ExchangeCount, bucket):
    """A DDP communication hook that averages gradients as DDP does by default, counting its calls."""
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

    count.calls += 1
    return allreduce_hook(None, bucket)


class Interrupting:
    """A training method that sends this process SIGINT as its batch ``at`` (counted over the run, from 1) starts."""

    def __init__(self, method, at: int):
        self.method, self.at, self.calls = method, at, 0

    def forward_backward(self, *args, **kwargs):
        import os
        import signal

        self.calls += 1
        if self.calls == self.at:
            os.kill(os.getpid(), signal.SIGINT)
        return self.method.forward_backward(*args, **kwargs)


def train(cfg, batch: int, run_dir=None, epochs=None, interrupt_at=None):
    seed_everything(cfg.seed)
    trainer = Trainer(build_model(cfg.model, cfg.neuron), cfg, run_dir, progress=False)
    if interrupt_at:
        trainer.method = Interrupting(trainer.method, interrupt_at)
    count = ExchangeCount()
    if trainer.world.distributed:
        trainer._net.register_comm_hook(count, counted_allreduce)
    train_loader, test_loader = data(batch)
    history = trainer.fit(train_loader, test_loader, epochs=epochs)
    return trainer, history, count.calls


def main(out: Path, batch: int, recurrent: bool = False) -> None:
    with process_group_from_env("cpu") as world:
        results = {}
        for name, options in METHODS.items():
            trainer, history, exchanges = train(config(name, batch, recurrent=recurrent, **options), batch)
            results[name] = {"state": trainer.model.state_dict(), "history": history, "exchanges": exchanges,
                             "batches": len(trainer._shard(data(batch)[0], even=True))}
        if recurrent:  # the methods are what recurrence could change; resuming is the same code as without it
            torch.save({"world": world.size, **results}, out / f"rank{world.rank}.pt")
            return
        cfg = config("sltt_k", batch, epochs=3, dropout=0.3, k=3)  # dropout: each process's RNG matters
        full, _, _ = train(cfg, batch, out / "full")
        train(cfg, batch, out / "resumed", epochs=1)  # dies after epoch 1 …
        resumed, _, _ = train(cfg, batch, out / "resumed")  # … and all processes pick up from its checkpoint
        results["resume"] = {"full": full.model.state_dict(), "resumed": resumed.model.state_dict(),
                             "history": (full.history, resumed.history)}
        # only the last process is sent Ctrl-C, in epoch 2's second batch (4 batches per epoch): all stop after it
        try:
            train(cfg, batch, out / "part", interrupt_at=4 + 2 if world.rank == world.size - 1 else None)
            stopped = None
        except KeyboardInterrupt as e:
            stopped = str(e)
        partial = torch.load(out / "part" / "checkpoint.pt", weights_only=False)["partial_epoch"]
        resumed, _, _ = train(cfg, batch, out / "part")
        results["part"] = {"stopped": stopped, "batches": partial["batches"], "ranks": len(partial["ranks"]),
                           "resumed": resumed.model.state_dict(), "history": resumed.history}
        torch.save({"world": world.size, **results}, out / f"rank{world.rank}.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), recurrent=sys.argv[3:] == ["recurrent"])

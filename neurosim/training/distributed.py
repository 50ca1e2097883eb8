"""Data-parallel training with PyTorch's own engine: ``torchrun`` starts the processes, DistributedDataParallel
(DDP) averages the gradients.

    torchrun --standalone --nproc-per-node 2 -m neurosim train --config quickstart

Under ``torchrun`` the :class:`~neurosim.training.Trainer` wraps the model in DDP, gives each process its own
shard of every epoch (``data.batch_size`` samples per process and step, as in PyTorch's DDP examples, so the
batch of one optimizer step is ``batch_size × processes``), averages the epoch's metrics over all processes,
and process 0 alone writes the run folder. Methods with several backward passes per batch (SLTT, SLTT-K) run
all but the batch's last under :func:`no_sync`, so gradients cross processes once per batch, not once per step.

On CPU the processes talk over gloo, on GPUs over NCCL with one GPU per process (``cuda:LOCAL_RANK``). A script
that uses the Trainer directly trains inside :func:`process_group_from_env`, or calls
``torch.distributed.init_process_group`` itself and ``destroy_process_group`` at the end (without it, torch's
gloo processes may abort with SIGABRT as they exit, after the training finished). Every process must then make
the Trainer's collective calls (building it, ``fit``, ``evaluate``, ``save``) in the same order, and the run
folder must be on a filesystem all processes share.

Ctrl-C or SIGTERM part-way through an epoch (one process's or all) stops every process after the same batch: after
each batch ``fit`` all-reduces whether a process got one (0.2–0.3 ms over gloo on CPU), then all write the epoch's
checkpoint together and raise. Such a checkpoint resumes with as many processes as wrote it.
"""

from __future__ import annotations

import os
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

__all__ = ["World", "all_gather", "all_reduce_sums", "barrier", "current_world", "launched_world_size", "no_sync",
           "process_group_from_env", "sync_buffers", "unwrap", "wrap"]


@dataclass(frozen=True)
class World:
    """This process's place among the training processes: ``rank`` of ``size``, ``local_rank`` on its machine."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        """Process 0: the one that writes files and shows progress."""
        return self.rank == 0


def current_world() -> World:
    """The process group this process belongs to (a world of one when there is none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    rank = dist.get_rank()
    return World(rank, dist.get_world_size(), _local_rank(rank))


def _local_rank(rank: int) -> int:
    """This process's GPU on its machine: torchrun's ``LOCAL_RANK``; in a group made without torchrun (e.g. under
    SLURM) ``rank % GPUs``, so that the processes of one machine do not all take GPU 0."""
    value = os.environ.get("LOCAL_RANK")
    if value is not None:
        return int(value)
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return rank % gpus if gpus else 0


def launched_world_size(environ: dict[str, str] | None = None) -> int:
    """How many processes ``torchrun`` started (its ``WORLD_SIZE``); 1 when it did not start this one."""
    environ = os.environ if environ is None else environ
    value = environ.get("WORLD_SIZE", "1")
    try:
        size = int(value)
    except ValueError:
        raise ValueError(f"WORLD_SIZE must be a whole number of processes, got {value!r}") from None
    if size < 1:
        raise ValueError(f"WORLD_SIZE must be at least 1, got {size}")
    return size


@contextmanager
def process_group_from_env(device: str = "auto") -> Iterator[World]:
    """Join the process group ``torchrun`` describes, for the duration of the block; a world of one otherwise.

    ``device`` is the run's ``train.device``: CUDA runs use NCCL (one GPU per process), CPU runs gloo. A group
    that already exists (made by the caller) is used as it is and left open.
    """
    if launched_world_size() == 1 or (dist.is_available() and dist.is_initialized()):
        yield current_world()
        return
    if not dist.is_available():
        raise RuntimeError("torchrun started several processes but this torch build has no torch.distributed")
    cuda = torch.cuda.is_available() and device != "cpu"
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo")
    try:
        yield current_world()
    finally:
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every process (nothing to wait for in a world of one); NCCL is told each process's GPU."""
    world = current_world()
    if world.distributed:
        if dist.get_backend() == "nccl":
            dist.barrier(device_ids=[torch.cuda.current_device()])  # the GPU this process was given
        else:
            dist.barrier()


def all_reduce_sums(values: list[float], device: torch.device | str = "cpu") -> list[float]:
    """``values`` summed element-wise over all processes (unchanged in a world of one).

    ``device`` must be one the backend reduces on: the CPU for gloo, the process's GPU for NCCL.
    """
    if not current_world().distributed:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def all_gather(obj: Any) -> list[Any]:
    """One picklable object from every process, in rank order (``[obj]`` in a world of one)."""
    world = current_world()
    if not world.distributed:
        return [obj]
    out: list[Any] = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside a DistributedDataParallel wrapper (the model itself otherwise)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def no_sync(model: torch.nn.Module):
    """Context in which a backward pass only accumulates gradients, without averaging them across processes.

    DDP's ``no_sync`` for a wrapped model, nothing otherwise. Wrap the forward *and* the backward of every pass
    but a batch's last: the last pass's backward then averages the gradients accumulated over all of them.
    """
    return model.no_sync() if isinstance(model, DistributedDataParallel) else nullcontext()


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``model`` in DistributedDataParallel when this process is one of several, else ``model`` itself.

    DDP copies process 0's parameters and buffers to every process here, so all start from the same weights.
    Buffers are not re-broadcast before every forward call (DDP's default): that is a collective per call, and
    SLTT-K's processes make different numbers of calls per batch (each draws its own steps), which would
    deadlock. Running statistics (BatchNorm) therefore follow each process's own data until
    :func:`sync_buffers` copies process 0's to all, which the Trainer does before evaluating and saving.
    """
    if not current_world().distributed:
        return model
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError("distributed training needs a model with trainable parameters; this one has none")
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                   forward_sync_buffers=False)


def sync_buffers(model: torch.nn.Module) -> None:
    """Copy process 0's buffers (e.g. BatchNorm running statistics) to every process."""
    if not current_world().distributed:
        return
    for buf in unwrap(model).buffers():
        dist.broadcast(buf, src=0)

"""The Trainer: epochs, optimizer, schedule, clipping, evaluation, metrics, atomic and resumable checkpoints.

A run folder ``runs/NAME/`` holds ``config.toml`` (the config used), ``metrics.jsonl`` (one JSON object per
epoch), ``checkpoint.pt`` (latest; model, optimizer, scheduler, RNG states, history) and whatever the caller
adds (figures, ``report.md``). ``fit(..., resume=True)`` continues from ``checkpoint.pt`` and, on CPU with the
same seed, gives exactly the results of an uninterrupted run: batch order depends only on ``(seed, epoch)``
and the RNG states are restored, the global ones and the loaders' own (a torch DataLoader's ``generator=``, its
sampler's); a loader whose randomness cannot be restored (persistent workers) warns when resumed. It continues
only the run the config describes: a checkpoint written with other settings (``train.lr``, the model, …; only
:data:`~neurosim.training.checkpoint.RESUME_MAY_CHANGE` may differ), or with more epochs done than asked, is a
:class:`~neurosim.config.ConfigError` before anything is written; ``resume=False`` or another ``run_dir`` starts
afresh.

An interrupted epoch is not lost: Ctrl-C or SIGTERM while ``fit`` trains stops it at the end of the batch under way
(never inside ``optimizer.step()``), writes a checkpoint of the epoch so far (``partial_epoch``: the batches done,
the partial sums, the random states at the epoch's start and at that moment) and raises what the signal raises
there (KeyboardInterrupt; ``neurosim.cli.Terminated`` under the command line). ``fit`` then replays the epoch's
batch order from its start states, skips the batches done and continues from the save point: the result is
bit-identical to an uninterrupted run. A signal held is never dropped: one during the epoch's checkpoint stops the
run after it, and one followed by a failing loader (its workers got it too) stops it between batches, checkpointed.

Launched by ``torchrun`` (a process group exists), the Trainer trains data-parallel with PyTorch's
DistributedDataParallel (:mod:`neurosim.training.distributed`): each process trains on its shard of every
epoch, metrics are taken over all processes' samples, and process 0 alone writes files and shows progress.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import signal
import sys
import threading
import time
import traceback
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from neurosim.config import ConfigError, RunConfig, config_to_dict, dumps_toml
from neurosim.data.loaders import FrameLoader
from neurosim.nn.layers import as_float, run_chunked
from neurosim.training import distributed
from neurosim.training.checkpoint import (
    CheckpointError, ResumedEpochError, atomic_write_text, check_epochs_done, check_resumable, load_checkpoint,
    load_weights, resumes_at, save_checkpoint, trained_so_far,
)
from neurosim.training.history import best_epoch, patience_spent, stopped_early
from neurosim.training.losses import Loss, get_loss, predict
from neurosim.training.regularize import ActivityPenalty
from neurosim.training.memory import (
    SavedTensorMeter, TrainingMemoryError, is_out_of_memory, memory_advice, tune_cpu_allocator,
)
from neurosim.training.methods import TrainingMethod, configured_method, model_output
from neurosim.training.progress import loader_bar, loader_length

__all__ = ["INTERRUPT_HANDLER_MARK", "Trainer", "resolve_device", "seed_everything"]


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA). Any integer: torch takes it modulo 2**64 (as it reads a
    negative seed), so ``seed + rank`` under torchrun stays a seed for a config seed near 2**64 − 1."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed % 2**64)


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; otherwise the named device.

    Raises:
        ConfigError: (a ValueError) naming ``train.device``: not a device, or CUDA asked for where there is none.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as e:
        raise ConfigError(f"train.device: {name!r} is not a device ({e})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device: {name!r} but CUDA is not available here; use 'auto' or 'cpu'")
    return dev


def _rng_state(device: torch.device) -> dict[str, Any]:
    """The random streams a run draws from: Python's, numpy's, torch's CPU one and, training on a GPU, that GPU's
    (only it: a checkpoint of every visible GPU's could not be restored where fewer are visible)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is None or device.type != "cuda":
        return
    if isinstance(cuda, (list, tuple)):  # older checkpoints: every visible GPU's state
        index = device.index if device.index is not None else torch.cuda.current_device()
        cuda = cuda[index] if index < len(cuda) else None
    if cuda is not None:
        torch.cuda.set_rng_state(cuda, device)


#: the random generators a loader may hold of its own (a torch DataLoader's ``generator=``, a sampler's)
_GENERATOR_TYPES = (torch.Generator, np.random.Generator, np.random.RandomState, random.Random)


def _loader_generators(loader: Iterable | None) -> dict[str, Any]:
    """The random generators of its own that ``loader`` shuffles with (and seeds DataLoader workers from), by where
    they are: the loader's attributes (a torch DataLoader's ``generator``), its ``sampler``'s and its
    ``batch_sampler``'s (and that one's ``sampler``): e.g. ``{"generator": g}`` for ``DataLoader(...,
    generator=g)``, ``{"sampler.generator": g}`` for ``DataLoader(ds, sampler=RandomSampler(ds, generator=g))``.
    Each generator once, under the first name found; a loader that draws from the global streams has none."""
    batch_sampler = getattr(loader, "batch_sampler", None)
    owners = (("", loader), ("sampler.", getattr(loader, "sampler", None)), ("batch_sampler.", batch_sampler),
              ("batch_sampler.sampler.", getattr(batch_sampler, "sampler", None)))
    found: dict[str, Any] = {}
    seen: set[int] = set()
    for prefix, owner in owners:
        for name, value in getattr(owner, "__dict__", {}).items():
            if isinstance(value, _GENERATOR_TYPES) and id(value) not in seen:
                seen.add(id(value))
                found[prefix + name] = value
    return found


def _generator_state(gen: Any) -> tuple[str, Any]:
    if isinstance(gen, torch.Generator):
        return "torch.Generator", gen.get_state()
    if isinstance(gen, np.random.Generator):
        return "numpy.random.Generator", gen.bit_generator.state
    if isinstance(gen, np.random.RandomState):
        return "numpy.random.RandomState", gen.get_state()
    return "random.Random", gen.getstate()


def _set_generator_state(gen: Any, saved: tuple[str, Any]) -> bool:
    """Restore ``gen`` from :func:`_generator_state`'s ``saved``; False (``gen`` unchanged) where it is another kind."""
    kind, state = saved
    if kind != _generator_state(gen)[0]:
        return False
    if isinstance(gen, torch.Generator):
        gen.set_state(state)
    elif isinstance(gen, np.random.Generator):
        gen.bit_generator.state = state
    elif isinstance(gen, np.random.RandomState):
        gen.set_state(state)
    else:
        gen.setstate(state)
    return True


def _loader_rng_state(loaders: dict[str, Iterable | None]) -> dict[str, dict[str, tuple[str, Any]]]:
    """``{"train": {"generator": (kind, state)}, ...}``: the state of every loader's own generators."""
    return {role: {name: _generator_state(gen) for name, gen in _loader_generators(loader).items()}
            for role, loader in loaders.items() if loader is not None}


def _restore_loader_rngs(saved: dict[str, dict[str, tuple[str, Any]]] | None, loaders: dict[str, Iterable | None],
                         path: Path, warn: bool) -> None:
    """Put each loader's own generators back where the checkpoint ``path`` has them (``saved``, None in checkpoints
    of neurosim before it kept them); with ``warn``, say which loader's randomness could not be restored, so that
    the resumed run will not match an uninterrupted one."""
    for role, loader in loaders.items():
        if loader is None:
            continue
        kept = (saved or {}).get(role, {})
        now = _loader_generators(loader)
        missing = [name for name, gen in now.items() if name not in kept or not _set_generator_state(gen, kept[name])]
        gone = [name for name in kept if name not in now]
        if not warn:
            continue
        if missing or gone:
            if missing and saved is None:
                what = (f"no state of the {role} loader's own {', '.join(missing)}: it was written by an older "
                        "neurosim, which did not keep them")
            elif missing:
                what = (f"no state of the {role} loader's own {', '.join(missing)} (it was saved without this "
                        "loader, or the loader that wrote it had no such generator)")
            else:
                what = f"the state of a {', '.join(gone)} that the {role} loader given now lacks"
            warnings.warn(f"{path} holds {what}, so the loader's shuffle order and worker seeds continue from "
                          "another random state than the run's, which will not match one that was never "
                          "interrupted; resume with a loader built as the one that wrote the checkpoint, or pass "
                          "fit(resume=False) to start over", RuntimeWarning, stacklevel=4)
        if getattr(loader, "persistent_workers", False) and getattr(loader, "num_workers", 0) > 0:
            warnings.warn(f"the {role} loader keeps persistent workers: their random streams live in the worker "
                          "processes and cannot be checkpointed, and a new loader draws a worker seed that the "
                          "uninterrupted run's later epochs did not, so the resumed run shuffles (and augments) "
                          "unlike one that was never interrupted; build it with persistent_workers=False for an "
                          "exact resume", RuntimeWarning, stacklevel=4)


def _compact_batches(loader: Iterable, compact: bool = True) -> Iterable:
    """A FrameLoader's batches in their frames' compact dtype (uint8 event counts,
    :meth:`~neurosim.data.FrameLoader.iter_from`), which the training methods and :func:`~neurosim.nn.run_chunked`
    convert to float32 a step or chunk at a time: no float32 copy of a whole long batch (O(T)) where SLTT and
    evaluation run it in pieces; the same values as its float batches. Any other loader, or ``compact=False`` (a
    training method that does not declare ``takes_compact_input``), as it is."""
    return loader.iter_from(0, compact=True) if compact and isinstance(loader, FrameLoader) else loader


def _json_safe(metrics: dict[str, Any]) -> dict[str, Any]:
    """``metrics`` with NaN and ±inf as None: ``null`` in strict JSON (a bare NaN is not JSON outside Python)."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in metrics.items()}


def _set_epoch(loader: Iterable, epoch: int) -> None:
    """Tell ``loader`` (a FrameLoader), or the sampler of a torch DataLoader (e.g. ``DistributedSampler``),
    which epoch starts, so that its shuffle differs from epoch to epoch."""
    for obj in (loader, getattr(loader, "sampler", None), getattr(getattr(loader, "batch_sampler", None),
                                                                 "sampler", None)):
        if callable(getattr(obj, "set_epoch", None)):
            obj.set_epoch(epoch)
            return


def _rng_snapshot(device: torch.device, loaders: dict[str, Iterable | None]) -> dict[str, Any]:
    """The random states a checkpoint keeps: the global streams (:func:`_rng_state`) and the loaders' own."""
    return {**_rng_state(device), "loaders": _loader_rng_state(loaders)}


def _set_rng_snapshot(snapshot: dict[str, Any], device: torch.device, loaders: dict[str, Iterable | None]) -> None:
    _set_rng_state(snapshot, device)
    _restore_loader_rngs(snapshot.get("loaders"), loaders, Path(), warn=False)


#: set (True) on a signal handler that raises a KeyboardInterrupt (sub)class as Ctrl-C does, as ``neurosim.cli``'s
#: SIGTERM handler (raising ``Terminated``): :meth:`Trainer.fit` may then hold that signal back to a batch's end
INTERRUPT_HANDLER_MARK = "neurosim_interrupt"


def _deferrable(handler: Any) -> bool:
    """Whether :meth:`Trainer.fit` may hold a signal with this handler back: Python's Ctrl-C handler, the default
    action (the process ends; it then ends at the batch's end, its checkpoint written), or a marked handler."""
    return handler is signal.default_int_handler or handler == signal.SIG_DFL or \
        getattr(handler, INTERRUPT_HANDLER_MARK, False) is True


class _DeferredInterrupts:
    """While a :meth:`Trainer.fit` epoch runs: the first SIGINT or SIGTERM is noted instead of raised, and the
    training loop, which asks :meth:`pending` after each batch and after the epoch's files are written, stops after
    the batch under way (or the epoch's end) and a checkpoint; a second signal stops it at once, as without it
    (SIGTERM, if either of the two is: one noted is not dropped for a Ctrl-C after it).

    A noted signal is never dropped: one still noted as the block ends (it came after the last :meth:`pending`) is
    delivered then; if an exception is on its way out of the block, the signal's exception is raised with it as the
    cause (where the signal's action is the default one, the exception is printed and the process ends by the
    signal), except for a storage error while the run's files were written (:meth:`writing`), which stops the run
    as itself.

    Only in the main thread (where Python runs signal handlers), and only for a signal whose handler
    :func:`_deferrable` accepts: another handler (a user's own) keeps its behaviour. The handlers found are
    put back when the block ends, or before a noted signal is delivered to them.

    In a process group every process must ask :meth:`pending` at the same points: it is a collective (one
    all-reduce of two numbers per batch: 0.2–0.3 ms over gloo between two CPU processes), so that all stop after
    the same batch, the one a process that got the signal stops after (SIGTERM wins over SIGINT when processes got
    different ones).
    """

    def __init__(self, world: distributed.World, device: torch.device, during: str = "fit") -> None:
        self.world, self.device, self.during = world, device, during
        self.previous: dict[int, Any] = {}
        self.signum: int | None = None
        self.delivered = False  # the noted signal has been raised (or stopped the run as a storage error)
        #: what a signal noted after the last :meth:`pending` says as it is delivered at the block's end
        self.late_message = f"interrupted during {during}; the last checkpoint written is kept"

    def __enter__(self) -> "_DeferredInterrupts":
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                handler = signal.getsignal(signum)
                if _deferrable(handler):
                    self.previous[signum] = handler
                    signal.signal(signum, self._note)
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if isinstance(exc, KeyboardInterrupt) and self.signum == signal.SIGTERM and not self.delivered \
                and self.previous.get(signal.SIGTERM) == signal.SIG_DFL:
            self.deliver(signal.SIGTERM, self.late_message)  # the process ends by it, not by an exception that
            # the caller may catch and go on (a Ctrl-C met by a handler of one's own after the SIGTERM was held)
        if self.signum is None or self.delivered or isinstance(exc, KeyboardInterrupt):
            self._put_back()  # (a KeyboardInterrupt on its way out already stops as the signal would)
            return
        if exc is None:  # noted after fit last asked: deliver it now rather than train on
            self.deliver(self.signum, self.late_message)
        self.deliver(self.signum, f"interrupted during {self.during}, which then failed ({type(exc).__name__}: "
                                  f"{exc}); the last checkpoint written is kept", cause=exc, show_cause=True)

    def hold_worker_failures(self) -> None:
        """Called once the epoch's loader iterator exists. PyTorch's SIGCHLD handler (set as a DataLoader starts its
        workers) raises the moment a worker is killed, in whatever the main process is doing: with a signal noted
        (SIGTERM to the whole process group kills the workers too) it would cut the batch under way short and lose
        the epoch so far. While a signal is noted, dead workers are left to the loader, which raises when the next
        batch is asked for (the epoch is between batches then: :meth:`Trainer._loader_failed`); the batch under way
        ends and is checkpointed first. Without a noted signal the handler runs as PyTorch set it."""
        if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGCHLD") \
                or signal.SIGCHLD in self.previous:
            return
        handler = signal.getsignal(signal.SIGCHLD)
        if not callable(handler):  # no DataLoader workers (or not a Python handler): nothing raises
            return

        def on_child(signum: int, frame: Any) -> None:
            if self.signum is None or self.delivered:
                handler(signum, frame)

        self.previous[signal.SIGCHLD] = handler
        signal.signal(signal.SIGCHLD, on_child)

    def _put_back(self) -> dict[int, Any]:
        previous, self.previous = self.previous, {}
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        return previous

    def _note(self, signum: int, frame: Any) -> None:
        if self.signum is None:
            self.signum = signum
            return
        # a second signal: stop at once (the last checkpoint written is kept), through the handler it would have met;
        # SIGTERM wins, as in pending(): a scheduler's SIGTERM held, then a Ctrl-C, ends the process as SIGTERM does
        self.deliver(signal.SIGTERM if self.signum == signal.SIGTERM else signum, None)

    def pending(self) -> int | None:
        """The signal to stop for (the same in every process), or None to go on."""
        if not self.world.distributed:
            return self.signum
        term, inter = distributed.all_reduce_sums([float(self.signum == signal.SIGTERM),
                                                   float(self.signum == signal.SIGINT)], self.device)
        return signal.SIGTERM if term else signal.SIGINT if inter else None

    def deliver(self, signum: int, message: str | None, cause: BaseException | None = None,
                show_cause: bool = False) -> None:
        """Raise what the signal ``signum`` raises without the Trainer (the handlers put back first), with
        ``message`` (and ``cause`` as its ``__cause__``): a KeyboardInterrupt for Ctrl-C, ``neurosim.cli.Terminated``
        for SIGTERM under the command line; where its action is the default one, the process ends by the signal, as
        it would have, after printing ``message`` (or, for a second signal, :attr:`late_message`) to stderr: what the
        checkpoint holds and where a rerun resumes (with ``show_cause``, ``cause`` is printed first: an error of its
        own, not one the signal brought about, as a DataLoader's workers killed by it)."""
        self.delivered = True
        handler = self._put_back().get(signum)
        if handler == signal.SIG_DFL:
            if cause is not None and show_cause:
                traceback.print_exception(cause)
            print(f"{signal.Signals(signum).name}: {message or self.late_message}", file=sys.stderr, flush=True)
            signal.raise_signal(signum)  # ends the process
        try:
            if callable(handler):
                handler(signum, None)
        except KeyboardInterrupt as e:
            if message is None and cause is None:
                raise
            raise type(e)(*([message] if message else [])) from cause
        raise KeyboardInterrupt(*([message] if message else [])) from cause  # a process that did not get it, or a
        # handler that returned: stop all the same

    @contextlib.contextmanager
    def writing(self, what: str) -> Iterator[None]:
        """A block that writes ``what`` (the run's checkpoint or files). An OSError raised in it (a full disk) while
        a signal is noted stops the run as itself, the error to act on: it propagates with a note naming the signal,
        which counts as delivered (the handlers are put back). Where the signal's action is the default one, the
        error is printed and the process ends by the signal, as it would have."""
        try:
            yield
        except OSError as e:
            if self.signum is None or self.delivered:
                raise
            self.delivered = True
            handler = self._put_back().get(self.signum)
            if hasattr(e, "add_note"):  # Python 3.11+
                e.add_note(f"{signal.Signals(self.signum).name} came as {what} was being written: the run stops "
                           "without it, the last checkpoint written is kept")
            if handler == signal.SIG_DFL:
                traceback.print_exception(e)
                signal.raise_signal(self.signum)  # ends the process
            raise


@dataclass
class _EpochProgress:
    """How far this process has got in the epoch under way: what a checkpoint written part-way through it keeps
    (``partial_epoch``), and what a resumed epoch continues from."""

    batches: int = 0
    total: int = 0
    correct: int = 0
    loss_sum: float = 0.0
    backward_passes: int = 0
    saved_mb: float | None = None
    #: the activity penalty's activity summed over the epoch's batches, and the batches (train.activity_penalty)
    activity_sum: float = 0.0
    activity_batches: int = 0
    #: whether the model's outputs were nonzero in any batch of the epoch (a spiking read-out that never fires)
    outputs_moved: bool = False
    train_time_s: float = 0.0
    #: this process's random states (global and the loaders' own) at the epoch's start, before ``iter(loader)``:
    #: a resumed epoch replays its batch order from them
    start_rng: dict[str, Any] | None = None
    #: the epoch's training metrics once all its batches have run (interrupted while it evaluated)
    trained: dict[str, Any] | None = None
    #: the number of batches the training loader had in this epoch (None: no length), when it was interrupted
    epoch_batches: int | None = None

    def summary(self) -> dict[str, Any]:
        """What a checkpoint's ``partial_epoch`` says of the epoch beside every process's progress (``ranks``): the
        batches done, of how many, and whether it was interrupted while evaluating."""
        return {"batches": self.batches, "epoch_batches": self.epoch_batches, "evaluating": self.trained is not None}


@dataclass
class Trainer:
    """Train a spiking model with a pluggable method (BPTT, SLTT, …).

    Args:
        model: a module with ``forward(x_seq, state=None) -> (out_seq [T, B, C], state)``.
        config: the run config (``train`` section drives the optimisation).
        run_dir: folder for config, metrics and checkpoints; None keeps nothing on disk.
        method: a training method; None builds the one named in ``config.train.method``.
        loss: a loss; None builds the one named in ``config.train.loss``.
        progress: show a progress bar with live loss and accuracy.
        tune_allocator: on CPU, keep training buffers in the process instead of glibc returning and re-faulting
            them every step (:func:`neurosim.training.tune_cpu_allocator`: process-wide; BPTT takes 15 % less
            time at T = 50, ``benchmarks/bench_cpu_paths.py``). False leaves malloc as it is.

    In a process group (``torchrun``), the model trains wrapped in DistributedDataParallel (``self.model`` stays
    the plain module: checkpoints hold its ``state_dict``, interchangeable with single-process runs), a
    :class:`~neurosim.data.FrameLoader` is split into this process's shard (other iterables must be sharded by
    the caller, e.g. with torch's ``DistributedSampler``), ``train.device = "auto"`` on GPUs means this process's
    GPU, ``cuda:LOCAL_RANK``, and each process seeds its RNGs with ``seed + rank`` (its own dropout masks and
    SLTT-K draws). Building the Trainer, :meth:`fit`, :meth:`train_epoch`, :meth:`evaluate` and :meth:`save` are
    collective there: every process must call them, in the same order (one process evaluating alone waits
    forever for the others). The run folder must be on a filesystem all processes see: process 0 writes the
    checkpoint and every process resumes from it.
    """

    model: torch.nn.Module
    config: RunConfig
    run_dir: Path | None = None
    method: TrainingMethod | None = None
    loss: Loss | None = None
    progress: bool = True
    tune_allocator: bool = True
    history: list[dict[str, Any]] = field(default_factory=list)
    #: what identifies the training data (neurosim.runs sets the dataset files' fingerprint): saved in the
    #: checkpoint, and a resume on other data warns
    data_fingerprint: Any = None
    #: the dataset's class names, index = label, where it has them (neurosim.runs sets the dataset's): saved in the
    #: checkpoint (``class_names``), so that evaluating it later names the classes
    class_names: Sequence[str] | None = None

    def __post_init__(self) -> None:
        tc = self.config.train
        if tc.threads:
            torch.set_num_threads(tc.threads)
        self.world = distributed.current_world()
        self.device = resolve_device(tc.device)
        if self.world.distributed and self.device.type == "cuda":
            if self.device.index is not None:
                raise ValueError(f"train.device = {tc.device!r} would put all {self.world.size} processes on one "
                                 "GPU; use 'cuda' or 'auto' (each process then takes cuda:LOCAL_RANK)")
            self.device = torch.device("cuda", self.world.local_rank)
            torch.cuda.set_device(self.device)  # NCCL talks over the current GPU; a user-made group may not set it
        elif not self.world.distributed and distributed.launched_world_size() > 1:
            warnings.warn(
                f"torchrun started {distributed.launched_world_size()} processes but there is no process group, so "
                "each trains alone on all the data; call torch.distributed.init_process_group() first, or train "
                "inside neurosim.training.distributed.process_group_from_env()", RuntimeWarning, stacklevel=3)
        if self.tune_allocator and self.device.type == "cpu":
            tune_cpu_allocator()
        self.model.to(self.device)
        self._net = distributed.wrap(self.model, self.device)  # what the method trains: DDP in a process group
        if self.method is None:
            self.method = configured_method(tc)
        if self.loss is None:
            self.loss = get_loss(tc.loss, tc.loss_lambda, tc.loss_target)
        #: the activity penalty added to the loss (train.activity_penalty > 0), or None
        self.penalty = ActivityPenalty(self.model, tc.activity_penalty, tc.activity_penalty_on,
                                       self.config.model.input_shape) if tc.activity_penalty > 0 else None
        params = [p for p in self.model.parameters() if p.requires_grad]
        if tc.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(params, lr=tc.lr, momentum=tc.momentum, weight_decay=tc.weight_decay)
        elif tc.optimizer == "adamw":
            self.optimizer = torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay)
        else:
            self.optimizer = torch.optim.Adam(params, lr=tc.lr, weight_decay=tc.weight_decay)
        self.scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=tc.epochs)
                          if tc.scheduler == "cosine" else None)
        self.epoch = 0
        #: set by a resumed checkpoint of an interrupted epoch: (this process's progress, the random states then)
        self._resume: tuple[_EpochProgress, dict[str, Any]] | None = None
        self._epoch_started = time.perf_counter()  # (fit sets it as each epoch starts: its train_time_s)
        self._earlier_kept = False  # fit(resume=False) over an earlier run's checkpoint, before its first epoch ends
        self._resumed_from: Path | None = None  # the checkpoint last restored (load() or fit()), for the messages
        #: what load() restored (the checkpoint's epoch, config and partial_epoch) that fit() has not yet continued
        self._loaded: dict[str, Any] | None = None
        if self.run_dir is not None:
            self.run_dir = Path(self.run_dir)

    # ------------------------------------------------------------------ files
    @property
    def checkpoint_path(self) -> Path | None:
        return None if self.run_dir is None else self.run_dir / "checkpoint.pt"

    @property
    def best_path(self) -> Path | None:
        """Where :meth:`fit` with a validation loader keeps the best validation epoch's checkpoint."""
        return None if self.run_dir is None else self.run_dir / "best.pt"

    @property
    def stopped_early(self) -> bool:
        """Whether :meth:`fit` ended before its planned epochs because ``train.patience`` epochs in a row brought no
        better validation epoch (:func:`~neurosim.training.history.stopped_early` of :attr:`history`): a rerun
        trains no further, unless asked for a larger patience, or none."""
        return stopped_early(self.history, self.config.train.patience)

    def _drop_stale_best(self, ckpt: dict[str, Any]) -> None:
        """Mend ``best.pt`` where it is not the best validation epoch of the history just resumed from ``ckpt``: one
        written by an attempt this checkpoint does not continue (an epoch after the last checkpoint, which the rerun
        trains again; or a run started over in the folder and stopped before its first checkpoint). Where the best
        epoch is the checkpoint's own (written at its end), best.pt becomes a copy of it; else it is removed, and
        written again when an epoch beats that one. Either way with a warning."""
        path = self.best_path
        if path is None or not self.world.is_main or not path.is_file():
            return
        expected = best_epoch(self.history)
        try:
            kept = load_checkpoint(path, map_location="cpu")
            held = f"epoch {kept.get('epoch')}"
            if expected is not None and kept.get("epoch") == expected["epoch"] and \
                    kept.get("history") == self.history[:expected["epoch"]]:
                return
        except (CheckpointError, OSError) as e:
            held = f"nothing readable ({e})"
        about = (f"{path} held {held} of a run that {self.checkpoint_path} does not continue (written after it, by "
                 "an attempt stopped before its next checkpoint, or by another run in this folder)")
        if expected is not None and expected["epoch"] == self.epoch and "partial_epoch" not in ckpt:
            save_checkpoint(path, ckpt)  # the checkpoint is the best epoch itself
            warnings.warn(f"{about}; replaced it with {self.checkpoint_path}, epoch {self.epoch}, this run's best "
                          "validation epoch", RuntimeWarning, stacklevel=3)
            return
        path.unlink()
        warnings.warn(f"{about}; removed it. " + (
            f"This run's best validation epoch so far, {expected['epoch']}, cannot be rebuilt (no checkpoint holds "
            "its weights); best.pt is written again when an epoch beats it" if expected is not None else
            "best.pt is written again by the epochs to come"), RuntimeWarning, stacklevel=3)

    def _write_run_files(self) -> None:
        if self.run_dir is None or not self.world.is_main:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.run_dir / "config.toml", dumps_toml(self.config))
        atomic_write_text(self.run_dir / "metrics.jsonl",
                          "".join(json.dumps(_json_safe(m), allow_nan=False) + "\n" for m in self.history))

    def save(self, path: Path | None = None, loaders: dict[str, Iterable | None] | None = None) -> Path:
        """Write a checkpoint (atomic) with everything needed to resume.

        Args:
            path: where; None means ``run_dir/checkpoint.pt``.
            loaders: the loaders by role (:meth:`fit` passes ``{"train": ..., "test": ..., "val": ...}``) whose own
                random generators the checkpoint keeps too: a torch DataLoader's ``generator=`` and its sampler's own
                (:meth:`load` with the same roles restores them).

        In a process group every process must call it (it gathers each process's RNG state, ``rng_ranks``);
        process 0 writes the file and the others wait until it is there.
        """
        return self._save(path, loaders)

    def _save(self, path: Path | None = None, loaders: dict[str, Iterable | None] | None = None,
              progress: _EpochProgress | None = None) -> Path:
        """:meth:`save`; with this process's ``progress``, a checkpoint of the epoch under way, part-way through
        (``partial_epoch``: :meth:`_EpochProgress.summary`, with every process's progress under ``ranks``)."""
        path = Path(path) if path is not None else self.checkpoint_path
        if path is None:
            raise ValueError("no run_dir and no path given: nowhere to save the checkpoint")
        distributed.sync_buffers(self.model)  # the checkpoint holds process 0's; every process continues alike
        ckpt = {
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "rng": _rng_snapshot(self.device, loaders or {}),
            "history": self.history,
            "config": config_to_dict(self.config),
            "world_size": self.world.size,
            "cpu_threads": torch.get_num_threads() if self.device.type == "cpu" else None,
            "data_fingerprint": self.data_fingerprint,
            "class_names": [str(c) for c in self.class_names] if self.class_names else None,
        }
        if self.world.distributed:
            ckpt["rng_ranks"] = distributed.all_gather(ckpt["rng"])
        if progress is not None:
            ckpt["partial_epoch"] = {**progress.summary(), "ranks": distributed.all_gather(asdict(progress))}
        if self.world.is_main:
            save_checkpoint(path, ckpt)
        distributed.barrier()
        return path

    def load(self, path: Path, loaders: dict[str, Iterable | None] | None = None) -> None:
        """Restore model, optimizer, scheduler, RNG states and history from a checkpoint.

        ``loaders`` (by role, as given to :meth:`save`) get their own random generators back: a DataLoader built
        with ``generator=`` then shuffles as it would have in the uninterrupted run. A loader whose generator the
        checkpoint lacks (written by an older neurosim, or by another loader), or that keeps persistent workers
        (whose random streams live in the workers), warns that the run will not match an uninterrupted one.

        Resumed with as many processes as wrote it, every process continues its own random streams, so the run
        is exact. With another number of processes it warns (the batch per optimizer step changes with the number
        of processes, so the run no longer matches an uninterrupted one): processes the checkpoint holds a stream
        for continue it, the others draw fresh ones (copying process 0's would repeat its dropout masks and SLTT-K
        draws). With another number of CPU threads it warns too: the sums round differently.

        It restores whatever the checkpoint holds; :meth:`fit` first checks that the checkpoint's config is this
        Trainer's (:func:`~neurosim.training.checkpoint.check_resumable`). A checkpoint written when :meth:`fit`
        was interrupted part-way through an epoch holds weights part-way through it (``self.epoch`` counts the
        epochs finished); :meth:`fit` (``resume=True``, with no checkpoint in ``run_dir`` of its own, which it
        would resume instead) continues that epoch at its next batch, exactly, with the random states restored
        here, not seeded afresh; of one at an epoch's end it keeps them when the checkpoint's config is this
        Trainer's (as for a resume; its seed too), and seeds with ``config.seed`` otherwise (another run's
        checkpoint, a pretrained model to fine-tune).

        Raises:
            CheckpointError: the file is unreadable, or its weights do not fit ``self.model``.
            ConfigError: it was written part-way through an epoch by another number of processes.
        """
        # on the CPU first: RNG states must be CPU tensors; the model and optimizer copy to their device
        self._restore(load_checkpoint(path, map_location="cpu"), path, loaders)

    def _restore(self, ckpt: dict[str, Any], path: Path, loaders: dict[str, Iterable | None] | None = None) -> None:
        """:meth:`load` of the checkpoint ``ckpt`` read from ``path``. Called by :meth:`load` or :meth:`fit` only: its
        warnings point at their caller (stacklevel 3; the loaders' at 4, from one call deeper)."""
        partial = ckpt.get("partial_epoch")
        streams = ckpt.get("rng_ranks") or [ckpt["rng"]]  # one per process that wrote it
        saved_world = int(ckpt.get("world_size", len(streams)))
        if partial and saved_world != self.world.size:
            raise ConfigError(
                f"{path} was written by {saved_world} training process(es) part-way through epoch "
                f"{int(ckpt['epoch']) + 1} ({trained_so_far(ckpt)}), and each process's share of that epoch depends "
                f"on their number: resume it with {saved_world} process(es) (torchrun --nproc-per-node "
                f"{saved_world}, or without torchrun for 1), or start over")
        load_weights(self.model, ckpt["model"], path, model_is="the model given to the Trainer",
                     advice="resume it with the model it was trained with, give another run_dir to start afresh "
                            "there, or pass fit(resume=False) to start over in this one")
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler and ckpt["scheduler"]:
            self.scheduler.load_state_dict(ckpt["scheduler"])
            self._stretch_schedule(self.config.train.epochs)
        self.history = list(ckpt["history"])
        self.epoch = int(ckpt["epoch"])
        # the warnings below are about the training still to come: none for a finished run (nothing is retrained)
        trains_on = self.world.is_main and (bool(partial) or self.epoch < self.config.train.epochs)
        if saved_world != self.world.size and trains_on:
            warnings.warn(f"{path} was written by {saved_world} training process(es) and is resumed by "
                          f"{self.world.size}: each optimizer step now averages {self.world.size} × "
                          f"{self.config.data.batch_size} samples instead of {saved_world} × "
                          f"{self.config.data.batch_size}"
                          + (f", and processes {saved_world}+ draw new random streams" if self.world.size > saved_world
                             else "") + ", so the run will not match one that was never interrupted",
                          RuntimeWarning, stacklevel=3)
        saved_data = ckpt.get("data_fingerprint")
        if saved_data is not None and self.data_fingerprint is not None and saved_data != self.data_fingerprint \
                and trains_on:
            warnings.warn(f"{path} was trained on other data files than the dataset on disk now (regenerated, "
                          "re-downloaded, changed or copied since): the resumed epochs train on the new files"
                          + (" (the epoch it stopped in resumes only if it still has as many batches)" if partial
                             else ""),
                          RuntimeWarning, stacklevel=3)
        saved_threads = ckpt.get("cpu_threads")
        if saved_threads and self.device.type == "cpu" and saved_threads != torch.get_num_threads() and trains_on:
            warnings.warn(f"{path} was written with {saved_threads} CPU thread(s) per process and is resumed with "
                          f"{torch.get_num_threads()}: torch's CPU convolutions sum in another order with another "
                          "thread count, so the run will not match one that was never interrupted bit for bit "
                          f"(set train.threads = {saved_threads} for that)", RuntimeWarning, stacklevel=3)
        self._resume = None if not partial else (_EpochProgress(**partial["ranks"][self.world.rank]),
                                                 streams[self.world.rank])
        self._resumed_from = Path(path)
        # (fit continues what was restored here when it finds no checkpoint of its own: _continues_loaded)
        self._loaded = {key: ckpt.get(key) for key in ("epoch", "config", "partial_epoch")}
        if self.world.rank < len(streams):
            _set_rng_state(streams[self.world.rank], self.device)
            _restore_loader_rngs(streams[self.world.rank].get("loaders"), loaders or {}, path,
                                 warn=self.world.is_main)
        else:  # a process the checkpoint has no stream for: one of its own, unlike every other process's
            seq = np.random.SeedSequence([self.config.seed % 2**64, self.world.rank, self.epoch, saved_world])
            seed_everything(int(seq.generate_state(1, np.uint64)[0]) >> 1)  # int: numpy 1 refuses uint64 >> 1

    def _stretch_schedule(self, epochs: int) -> None:
        """A run resumed with another ``train.epochs`` anneals over the new number: the cosine continues from the
        epoch reached as if it had been planned for ``epochs`` from the start (the checkpoint's own ``T_max``
        would reach 0 at the old end and climb again after it)."""
        sched = self.scheduler
        if not isinstance(sched, torch.optim.lr_scheduler.CosineAnnealingLR) or sched.T_max == epochs:
            return
        sched.T_max = epochs
        t = min(sched.last_epoch, epochs)
        for group, base in zip(self.optimizer.param_groups, sched.base_lrs):
            group["lr"] = sched.eta_min + (base - sched.eta_min) * (1 + math.cos(math.pi * t / epochs)) / 2
        sched._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    # ------------------------------------------------------------------ loops
    def train_epoch(self, loader: Iterable) -> dict[str, float]:
        """One pass over ``loader``: mean loss and accuracy, backward passes, and ``saved_mb``, the peak MiB the
        method kept for backward in the epoch's first batch (:class:`~neurosim.training.SavedTensorMeter`: the
        memory SLTT keeps independent of ``T``, measured the same on every device).

        ``loader`` is iterated once (``iter(loader)`` is called once: a torch DataLoader starts its workers once).
        Called on its own it is interrupted as any Python code is; :meth:`fit` holds Ctrl-C and SIGTERM back to
        the end of the batch under way and checkpoints the epoch part-way through."""
        return self._train_epoch(loader, _EpochProgress())

    def _train_epoch(self, loader: Iterable, progress: _EpochProgress, resumed_rng: dict[str, Any] | None = None,
                     interrupts: _DeferredInterrupts | None = None,
                     loaders: dict[str, Iterable | None] | None = None) -> dict[str, float]:
        """:meth:`train_epoch` from ``progress`` on: a new epoch's (nothing done) or a resumed one's, whose random
        states at the save point are ``resumed_rng``. With ``interrupts``, a signal noted there stops it at the
        end of the batch under way, after a checkpoint of the epoch so far (:meth:`_stop_part_way`)."""
        self.model.train()
        loaders = loaders or {}
        shard = self._shard(loader, even=True)
        _set_epoch(shard, self.epoch)
        stream = iter(self._resumed_batches(shard, progress, resumed_rng, loaders) if resumed_rng is not None
                      else _compact_batches(shard, self._compact_input))
        if interrupts is not None:
            interrupts.hold_worker_failures()  # a worker killed by the signal must not cut the batch under way short
        clip = self.config.train.grad_clip
        tc_warmup = self.config.train.activity_penalty_warmup
        # a bar that only counts, not tqdm(loader), which calls iter(loader) twice (neurosim.training.progress)
        with loader_bar(shard, f"epoch {self.epoch + 1}/{self.config.train.epochs}", leave=False,
                        disable=None if self.progress and self.world.is_main else True, dynamic_ncols=True) as bar:
            bar.update(progress.batches)
            while True:
                try:
                    x_seq, y = next(stream)
                except StopIteration:
                    break
                except Exception as e:  # noqa: BLE001 - re-raised
                    self._loader_failed(e, interrupts, progress, loaders, loader_length(shard))
                    raise
                x_seq, y = x_seq.to(self.device), y.to(self.device)
                self.optimizer.zero_grad(set_to_none=True)
                if self.penalty is not None and tc_warmup:  # epoch e (from 0) takes e / warmup of the penalty
                    self.penalty.scale = min(1.0, self.epoch / tc_warmup)
                try:  # (an allocation that fails: TrainingMemoryError, saying what to change)
                    with self.penalty.active() if self.penalty is not None else contextlib.nullcontext():
                        # the first batch is metered (hooks: a Python call per saved tensor)
                        if progress.saved_mb is None:
                            with SavedTensorMeter() as meter:
                                out = self.method.forward_backward(self._net, x_seq, y, self.loss)
                            progress.saved_mb = meter.peak_bytes / 2**20
                        else:
                            out = self.method.forward_backward(self._net, x_seq, y, self.loss)
                except Exception as e:  # noqa: BLE001 - re-raised
                    if is_out_of_memory(e):
                        raise self._out_of_memory(x_seq, progress.batches + 1) from e
                    raise
                if not progress.outputs_moved:
                    progress.outputs_moved = bool(out.out_seq.any())
                if self.penalty is not None and (activity := self.penalty.pop_activity()) is not None:
                    progress.activity_sum += activity
                    progress.activity_batches += 1
                if not math.isfinite(out.loss):
                    self._diverged(f"the loss of batch {progress.batches + 1} is {out.loss}")
                if clip:
                    norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip))
                    if not math.isfinite(norm):
                        self._diverged(f"the gradient of batch {progress.batches + 1} has norm {norm}")
                self.optimizer.step()
                progress.batches += 1
                n = y.shape[0]
                progress.total += n
                progress.correct += int((predict(out.out_seq, self.loss) == y).sum())
                progress.loss_sum += out.loss * n
                progress.backward_passes += out.backward_passes
                # the batch goes before the next is made: one batch's frames (O(T)) in memory at a time, not two
                del x_seq, y, out
                bar.set_postfix(loss=f"{progress.loss_sum / progress.total:.3f}",
                                acc=f"{progress.correct / progress.total:.3f}", refresh=False)
                bar.update()
                signum = interrupts.pending() if interrupts is not None else None
                if signum is not None:
                    self._stop_part_way(interrupts, signum, progress, loaders, loader_length(shard))
        if progress.total == 0:
            raise ValueError("the training loader yielded no batches")
        bad = [name for name, p in self.model.named_parameters() if not bool(torch.isfinite(p).all())]
        if bad:  # a finite loss does not prove finite weights: a spiking readout of NaN weights is silent, loss ln C
            self._diverged(f"parameter(s) {', '.join(bad[:5])}{' …' if len(bad) > 5 else ''} are not finite")
        # over all processes (samples a padded shard repeats count twice); passes and saved_mb are per process
        loss_sum, correct, total = distributed.all_reduce_sums([progress.loss_sum, progress.correct, progress.total],
                                                               self._reduce_device)
        row = {"train_loss": loss_sum / total, "train_acc": correct / total,
               "backward_passes": progress.backward_passes, "saved_mb": progress.saved_mb}
        if self.penalty is not None:  # (this process's batches, as saved_mb)
            key = "train_synops_fraction" if self.penalty.on == "synops" else "train_firing_rate"
            row[key] = progress.activity_sum / progress.activity_batches if progress.activity_batches else None
        if not progress.outputs_moved and self.world.is_main:
            # a silent read-out has no gradient to learn from: the loss stays ln C and every prediction one class
            why = (f"train.activity_penalty = {self.penalty.weight:g} may be silencing the network; if later epochs "
                   "stay silent, train again with a smaller one (0.01-0.03 kept the demo model's accuracy)"
                   if self.penalty is not None else
                   "if later epochs stay silent, lower neuron.v_th, raise the input or the learning rate, or read "
                   "out the membrane (model.readout = 'membrane')")
            warnings.warn(f"the model's outputs were all zero in every batch of epoch {self.epoch + 1}, so its "
                          f"read-out learnt little from them: {why}", RuntimeWarning, stacklevel=3)
        return row

    def _loader_failed(self, error: Exception, interrupts: _DeferredInterrupts | None, progress: _EpochProgress,
                       loaders: dict[str, Iterable | None], epoch_batches: int | None) -> None:
        """The training loader raised ``error`` for the next batch. With a signal noted, that is most likely the
        signal's doing (SIGTERM to the whole process group, as coreutils' ``timeout`` and Slurm send it, ends a
        DataLoader's workers at once): the epoch is between batches, so it stops as it would have after the batch,
        checkpointed, the loader's error the signal exception's cause. Not in a process group, where the other
        processes are training their next batch; without a signal, the error is the caller's to raise."""
        if interrupts is None or interrupts.signum is None or interrupts.delivered or self.world.distributed:
            return
        self._stop_part_way(interrupts, interrupts.signum, progress, loaders, epoch_batches, loader_failed=error)

    def _resumed_batches(self, loader: Iterable, progress: _EpochProgress, resumed_rng: dict[str, Any],
                         loaders: dict[str, Iterable | None]) -> Iterable:
        """The batches of an interrupted epoch after the ``progress.batches`` it had trained, in the order they
        had then: ``iter(loader)`` from the random states the epoch started with, its first batches skipped (a
        FrameLoader's unread, :meth:`~neurosim.data.FrameLoader.iter_from`; any other loader's loaded and thrown
        away, as long as loading them takes), then the random states of the moment it was interrupted."""
        done = progress.batches
        has, had = loader_length(loader), progress.epoch_batches
        if has is not None and had is not None and has != had:
            raise self._fewer_batches(has, done, had)
        _set_rng_snapshot(progress.start_rng, self.device, loaders)
        if isinstance(loader, FrameLoader):
            if done > len(loader):
                raise self._fewer_batches(len(loader), done)
            stream = loader.iter_from(done, compact=self._compact_input)
        else:
            stream = iter(loader)
            for seen in range(done):
                if next(stream, None) is None:
                    raise self._fewer_batches(seen, done)
        _set_rng_snapshot(resumed_rng, self.device, loaders)
        return stream

    def _fewer_batches(self, has: int, done: int, had: int | None = None) -> ResumedEpochError:
        of = f" of its {had}" if had is not None else " of it"
        return ResumedEpochError(
            f"the training loader yields {has} batch(es) in epoch {self.epoch + 1}, but {self._resumed_from} was "
            f"interrupted after batch {done}{of}: it is not the loader the run was trained with (other data, batch "
            "size or sampler); resume with that loader, or pass fit(resume=False) to start over",
            path=self._resumed_from, epoch=self.epoch + 1, done=done, had=had, has=has)

    def _stop_part_way(self, interrupts: _DeferredInterrupts, signum: int, progress: _EpochProgress,
                       loaders: dict[str, Iterable | None], epoch_batches: int | None,
                       loader_failed: BaseException | None = None) -> None:
        """Stop the epoch under way for the signal ``signum``: write a checkpoint of it so far (with a run_dir),
        then raise what the signal raises, saying where a resumed run continues. ``loader_failed``: the error the
        training loader raised for the next batch after the signal came (its workers got it too), the signal's
        exception's cause."""
        epoch, evaluating = self.epoch + 1, progress.trained is not None
        progress.epoch_batches = epoch_batches
        if evaluating:
            where, resumes = f"while evaluating epoch {epoch}", "fit() resumes with its evaluation"
        else:
            where = (f"after batch {progress.batches}{f' of {epoch_batches}' if epoch_batches else ''} of epoch "
                     f"{epoch}")
            resumes = f"fit() resumes {resumes_at(progress.summary(), epoch)}"
        if loader_failed is not None:
            where += f" (the training loader then failed: {type(loader_failed).__name__}: {loader_failed})"
        if self.run_dir is None:
            interrupts.deliver(signum, f"interrupted {where}; the Trainer has no run_dir, so nothing was saved",
                               cause=loader_failed)
        if self._earlier_kept:  # started over (resume=False) where a run was: its checkpoint stays until an epoch ends
            interrupts.deliver(signum, f"interrupted {where} of a run started over with resume=False: nothing was "
                                       f"saved, and {self.checkpoint_path} is still the earlier run's",
                               cause=loader_failed)
        if not evaluating:
            progress.train_time_s = time.perf_counter() - self._epoch_started
        with interrupts.writing(f"the checkpoint of epoch {epoch} so far"):
            path = self._save(loaders=loaders, progress=progress)
        interrupts.deliver(signum, f"interrupted {where}: {path} holds the epoch so far; {resumes}",
                           cause=loader_failed)

    def _out_of_memory(self, x_seq: torch.Tensor, batch: int) -> TrainingMemoryError:
        """The error of batch ``batch`` (input ``x_seq``) running out of memory: what it held, and what to change."""
        T, B = x_seq.shape[0], x_seq.shape[1]
        method = getattr(self.method, "name", type(self.method).__name__)
        advice = memory_advice(method, T, x_seq.numel() * x_seq.element_size() / 2**20,
                               getattr(self.method, "time_chunk", None) if method == "sltt" else None,
                               str(x_seq.dtype).replace("torch.", ""))
        return TrainingMemoryError(f"training ran out of memory in batch {batch} of epoch {self.epoch + 1} ({B} "
                                   f"samples × T = {T} steps, on {self.device}): {advice}; the last checkpoint (if "
                                   "any) is kept")

    def _diverged(self, what: str) -> None:
        raise FloatingPointError(
            f"training diverged in epoch {self.epoch + 1}: {what}; the last checkpoint (if any) is kept. Lower "
            "train.lr, set train.grad_clip, or check the data and train.weight_decay/momentum")

    def evaluate(self, loader: Iterable) -> dict[str, Any]:
        """Loss and accuracy on ``loader`` (no gradients, eval mode), and per label ``i`` below
        ``model.num_classes`` its samples, ``class_samples[i]``, and those classified right, ``class_correct[i]``."""
        return self._evaluate(loader)

    @torch.no_grad()
    def _evaluate(self, loader: Iterable, stop: Callable[[], bool] | None = None) -> dict[str, Any] | None:
        """:meth:`evaluate`; None as soon as ``stop()`` says so after a batch (a signal noted while it ran)."""
        self.model.eval()
        distributed.sync_buffers(self.model)  # every process evaluates the model process 0 would save
        loader = self._shard(loader, even=False)
        total, correct, loss_sum = 0, 0, 0.0
        classes = self.config.model.num_classes
        samples_of, correct_of = torch.zeros(classes, dtype=torch.long), torch.zeros(classes, dtype=torch.long)
        for x_seq, y in _compact_batches(loader):
            x_seq, y = x_seq.to(self.device), y.to(self.device)
            result = (run_chunked(self.model, x_seq) if getattr(self.model, "stateful", False)
                      else self.model(as_float(x_seq)))  # (run_chunked converts a compact batch chunk by chunk)
            out_seq, _ = model_output(result, self.model, x_seq, "evaluate")
            n = y.shape[0]
            total += n
            hit = predict(out_seq, self.loss) == y
            correct += int(hit.sum())
            loss_sum += float(self.loss(out_seq, y)) * n
            labels, hit = y.reshape(-1).long().cpu(), hit.reshape(-1).cpu()
            known = (labels >= 0) & (labels < classes)  # (a label beyond the model's outputs has no class to count)
            samples_of += torch.bincount(labels[known], minlength=classes)
            correct_of += torch.bincount(labels[known & hit], minlength=classes)
            del x_seq, y, result, out_seq  # before the next batch is made (as in training)
            if stop is not None and stop():
                return None
        sums = distributed.all_reduce_sums([loss_sum, correct, total, *samples_of.tolist(), *correct_of.tolist()],
                                           self._reduce_device)
        loss_sum, correct, total = sums[:3]
        if total == 0:
            raise ValueError("the evaluation loader yielded no batches")
        return {"loss": loss_sum / total, "acc": correct / total,
                "class_samples": [int(v) for v in sums[3:3 + classes]],
                "class_correct": [int(v) for v in sums[3 + classes:]]}

    def _checkpoint_found(self) -> bool:
        """Whether the run has a checkpoint to resume from, the same answer in every process (else an error)."""
        found = self.checkpoint_path is not None and self.checkpoint_path.is_file()
        answers = distributed.all_gather(found)
        if len(set(answers)) > 1:
            seeing = [rank for rank, seen in enumerate(answers) if seen]
            raise RuntimeError(
                f"{self.checkpoint_path} exists for process(es) {seeing} of {len(answers)} only: data-parallel "
                "runs need their run folder on a filesystem every process shares, so that all resume from the "
                "same checkpoint")
        return found

    @property
    def _reduce_device(self) -> torch.device:
        return self.device if self.device.type == "cuda" else torch.device("cpu")  # NCCL reduces on the GPU

    @property
    def _compact_input(self) -> bool:
        """Whether the training method takes a FrameLoader's compact (integer) batches: BPTT, SLTT and SLTT-K do
        (``takes_compact_input``); a method of one's own gets float32 batches, as it always did."""
        return bool(getattr(self.method, "takes_compact_input", False))

    def _shard(self, loader: Iterable, even: bool) -> Iterable:
        """This process's shard of a FrameLoader not already sharded, in a process group; ``loader`` otherwise."""
        if self.world.distributed and isinstance(loader, FrameLoader) and loader.num_replicas == 1:
            return loader.shard(self.world.rank, self.world.size, even=even)
        return loader

    def fit(self, train_loader: Iterable, test_loader: Iterable | None = None, *, val_loader: Iterable | None = None,
            resume: bool = True, epochs: int | None = None) -> list[dict[str, Any]]:
        """Train until ``epochs`` (default ``config.train.epochs``) are done, resuming from the run's checkpoint.

        Each epoch is evaluated on ``val_loader`` (``val_loss``, ``val_acc``) and ``test_loader`` (``test_loss``,
        ``test_acc``) where given. With a ``val_loader`` and a ``run_dir``, the epoch of the best validation accuracy
        so far (ties: the lower validation loss; then the earlier epoch) is also written to ``run_dir/best.pt``, a
        checkpoint like ``checkpoint.pt`` (before it, so that a rerun after a crash between the two writes it again):
        select the model on the validation samples, and report the test accuracy of that one. With
        ``train.patience = p``, training ends early once the last ``p`` epochs brought no better one
        (:attr:`stopped_early`; read from the history, so a rerun of a run that stopped stops again).

        Args:
            resume: continue from ``run_dir/checkpoint.pt`` when there is one, else from what :meth:`load` restored
                (its epoch, the batch an interrupted epoch resumes at; its random states where it is part-way through
                an epoch or was written with this Trainer's config, which then continues exactly, else ``config.seed``
                seeds them: another run's checkpoint, fine-tuned, draws as this config says). If the first epoch
                fails before it trains (a loader that is not the run's), a retry continues the same. ``run_dir``'s
                checkpoint must have been written with this Trainer's config (only
                :data:`~neurosim.training.checkpoint.RESUME_MAY_CHANGE` may differ, e.g. ``train.epochs``) and have
                no more than ``epochs`` epochs done. False starts over (without what :meth:`load` restored): the earlier
                run's files stay until this run has trained an epoch. The loaders' own random generators (a torch
                DataLoader's ``generator=``, its sampler's) are checkpointed and restored with the global ones, so
                the resumed epochs shuffle as in an uninterrupted run; where a loader's cannot be (a checkpoint
                without them, persistent workers) a RuntimeWarning says so. Generators inside the dataset are not
                seen: an augmentation with its own integer ``seed=`` run in the main process (``num_workers=0``)
                restarts its stream on resume, silently (with ``num_workers > 0`` its stream derives from the worker
                seed, which is restored; with ``seed=None`` it draws from numpy's global stream, also restored).
            epochs: the epoch to train up to; None means ``config.train.epochs``.

        Interrupts: the first SIGINT (Ctrl-C) or SIGTERM during an epoch is held back to the end of the batch under
        way; then a checkpoint of the epoch so far is written (with a ``run_dir``; whatever ``checkpoint_every``)
        and the signal's exception is raised, saying at which batch a rerun resumes (a signal during evaluation
        stops it, and the checkpoint keeps the trained epoch: resumed, it evaluates; one after the epoch's
        evaluation stops after its checkpoint). ``fit`` resumes such a checkpoint at its next batch, exactly: a
        FrameLoader starts there unread (:meth:`~neurosim.data.FrameLoader.iter_from`), any other loader is
        iterated from the epoch's start and its first batches are loaded and dropped (as long as loading them
        takes). A signal while the epoch's checkpoint and metrics are written stops after them (the checkpoint
        written, whatever ``checkpoint_every``). If the training loader raises while a signal is held (SIGTERM to the
        whole process group, as coreutils' ``timeout`` and Slurm send it, ends a DataLoader's workers at once), the
        epoch is between batches: it is checkpointed as above and the signal's exception raised, the loader's error
        its cause (not under torchrun, where the other processes train on: there, and for any other error while a
        signal is held, the signal's exception is raised with the error as its cause, the last checkpoint kept). A
        storage error (a full disk) while a checkpoint is written with a signal held is raised itself, the one to
        act on, and the last checkpoint is kept; where the signal's action is the default one, the process prints it
        and ends by the signal. A second signal raises at once, keeping the last checkpoint written (SIGTERM's
        exception or action if either signal was SIGTERM: a Ctrl-C after it does not drop it). Signals are held back
        only in the main thread, and only where their handler is Python's Ctrl-C one, the default action (the process
        then ends by the signal after the checkpoint, as it would have, with the exception's message on stderr: what
        the checkpoint holds, where a rerun resumes) or ``neurosim.cli``'s (marked with
        :data:`INTERRUPT_HANDLER_MARK`); a handler of one's own keeps its behaviour. Under torchrun every process
        asks the others after each batch whether one got a signal (an all-reduce of two numbers, 0.2–0.3 ms over
        gloo on CPU), so that all stop after the same batch; evaluation there is not cut short (processes may have
        different numbers of evaluation batches): the epoch ends, is checkpointed, and all stop. A checkpoint
        written part-way through an epoch resumes only with as many processes as wrote it.

        Returns:
            The per-epoch metrics history (also in ``run_dir/metrics.jsonl``).

        Raises:
            ConfigError: (a ValueError) the checkpoint was written with another config, naming the settings that
                differ, or has more epochs done than asked (one part-way through epoch ``e`` needs ``epochs >= e``),
                or part-way through an epoch by another number of processes; nothing is written then. The same
                for a checkpoint :meth:`load` restored part-way through epoch ``e`` and ``epochs < e``.
                ``resume=False`` or another ``run_dir`` starts afresh.
            CheckpointError: the checkpoint's weights do not fit ``self.model``.
            ResumedEpochError: (a CheckpointError) resuming part-way through an epoch, the training loader yields
                another number of batches than the interrupted epoch had (or fewer than were done, where either has
                no length).
            KeyboardInterrupt: (or ``neurosim.cli.Terminated``) a signal stopped it, as described above.
        """
        epochs_name = "train.epochs" if epochs is None else "epochs"  # what the caller set, for the messages
        epochs = self.config.train.epochs if epochs is None else epochs
        if self.config.train.patience is not None and val_loader is None:
            raise ValueError(f"train.patience = {self.config.train.patience} stops on validation accuracy: pass "
                             "fit(..., val_loader=...) (make_loaders gives one with data.val_split), or set "
                             "train.patience = None")
        loaders = {"train": train_loader, "test": test_loader}  # their own generators are checkpointed too
        if val_loader is not None:  # (a key only when given: checkpoints without validation stay as they were)
            loaders["val"] = val_loader
        retry = None  # what load() restored, put back if the first epoch fails before it trains (another loader)
        if resume and self._checkpoint_found():
            ckpt = load_checkpoint(self.checkpoint_path, map_location="cpu")
            check_resumable(ckpt, self.config, epochs, self.run_dir,
                            epochs_name=epochs_name,
                            elsewhere="give another run_dir to start afresh there",
                            start_over="pass fit(resume=False) to start over in this one")
            self._restore(ckpt, self.checkpoint_path, loaders)
            if val_loader is None and best_epoch(self.history) is not None:
                raise ValueError(f"{self.checkpoint_path} holds a run validated every epoch (val_acc in its history, "
                                 "best.pt beside it); pass fit(..., val_loader=...) to continue it, or fit(resume="
                                 "False) or another run_dir to start a run without validation")
            self._drop_stale_best(ckpt)
        elif resume and self._loaded is not None and self._continues_loaded(epochs, epochs_name):
            retry = self._loaded, self._resume, _rng_snapshot(self.device, loaders)
        else:
            seed_everything(self.config.seed + self.world.rank)
            self._resume = None
        self._loaded = None
        earlier = not resume and self.checkpoint_path is not None and self.checkpoint_path.is_file()
        self._earlier_kept = earlier  # an interrupt in this run's first epoch then leaves the earlier checkpoint
        if not earlier:  # starting over: the earlier run's files stay until this run has an epoch to write
            self._write_run_files()
        while self.epoch < epochs and not self.stopped_early:
            resumed, self._resume = self._resume, None
            progress, resumed_rng = resumed if resumed is not None else (_EpochProgress(), None)
            mark = self._trained_mark(progress)
            try:
                with _DeferredInterrupts(self.world, self._reduce_device, f"epoch {self.epoch + 1}") as interrupts:
                    self._fit_epoch(train_loader, test_loader, loaders, epochs, interrupts, progress, resumed_rng)
            except BaseException:
                if retry is not None and self._trained_mark(progress) == mark:  # nothing trained, nothing stepped
                    self._loaded, self._resume = retry[0], retry[1]
                    _set_rng_snapshot(retry[2], self.device, loaders)
                raise
            retry = None
        return self.history

    def _trained_mark(self, progress: _EpochProgress) -> tuple[int, int, int | None]:
        """What changes once an epoch has trained (``progress`` its progress): the epochs done, its batches, and the
        schedule's steps (an epoch resumed after its last batch steps it without training one)."""
        return self.epoch, progress.batches, getattr(self.scheduler, "last_epoch", None)

    def _continues_loaded(self, epochs: int, epochs_name: str) -> bool:
        """Whether :meth:`fit` continues the random states :meth:`load` restored (``self._loaded``) rather than seed
        with ``config.seed``: for a checkpoint part-way through an epoch, whose remaining batches were drawn from
        them (then ``epochs`` must reach that epoch: else a ConfigError, as for ``run_dir``'s checkpoint), and for
        one written at an epoch's end with this Trainer's config (its seed; :func:`check_resumable`), which then
        continues as if never stopped. Another run's (a pretrained model to fine-tune) gets ``config.seed``."""
        loaded, where = self._loaded, self._resumed_from
        ways_out = dict(epochs_name=epochs_name, elsewhere="load() another checkpoint",
                        start_over="pass fit(resume=False) to start over")
        if self._resume is not None:  # (its config is not checked: it is what load() was asked for)
            check_epochs_done(loaded, epochs, where, **ways_out)
            return True
        try:
            check_resumable(loaded, self.config, epochs, where, **ways_out)
        except ConfigError:
            return False
        return True

    def _fit_epoch(self, train_loader: Iterable, test_loader: Iterable | None, loaders: dict[str, Iterable | None],
                   epochs: int, interrupts: _DeferredInterrupts, progress: _EpochProgress,
                   resumed_rng: dict[str, Any] | None) -> None:
        """One epoch of :meth:`fit` from ``progress``, a new one's (nothing done) or an interrupted one's, whose
        random states at the save point are ``resumed_rng``: train, step the schedule, evaluate, checkpoint. A signal
        noted in ``interrupts`` stops it after the batch under way (of training or, in one process, of evaluation), or
        after the epoch's checkpoint when it came later."""
        self._epoch_started = time.perf_counter() - progress.train_time_s  # (the time before the interrupt counts)
        if progress.trained is None:  # (else interrupted while evaluating: its training is done)
            if resumed_rng is None:
                progress.start_rng = _rng_snapshot(self.device, loaders)  # before iter(loader): to replay its order
            done_before = progress.batches
            metrics = {"epoch": self.epoch + 1,
                       **self._train_epoch(train_loader, progress, resumed_rng, interrupts, loaders)}
            metrics["lr"] = self.optimizer.param_groups[0]["lr"]
            if self.scheduler:
                with warnings.catch_warnings():
                    if progress.batches == done_before:  # resumed after the epoch's last batch: the optimizer
                        # stepped before the interrupt, not in this process, which torch cannot tell
                        warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` "
                                                                  r"before `optimizer\.step\(\)`")
                    self.scheduler.step()
            metrics["train_time_s"] = time.perf_counter() - self._epoch_started
        else:
            metrics = dict(progress.trained)
        evaluated = [(role, loaders[role]) for role in ("val", "test") if loaders.get(role) is not None]
        before = _rng_snapshot(self.device, loaders) if evaluated else None  # (a DataLoader's iter() draws a seed)
        for role, loader in evaluated:
            # one process stops part-way through evaluating; processes of a group may have different numbers of
            # evaluation batches, so they stop when all have evaluated
            ev = self._evaluate(loader, None if self.world.distributed else lambda: interrupts.signum is not None)
            if ev is None:  # a checkpoint of the trained epoch, as it was before evaluating: resumed, it evaluates
                _set_rng_snapshot(before, self.device, loaders)
                progress.trained = {k: v for k, v in metrics.items() if not k.startswith(("val_", "test_"))}
                self._stop_part_way(interrupts, interrupts.signum, progress, loaders, progress.batches)
            metrics.update({f"{role}_loss": ev["loss"], f"{role}_acc": ev["acc"]})
        self.epoch += 1
        self.history.append(metrics)
        if self.epoch < epochs and patience_spent(self.history, self.config.train.patience):
            metrics["stopped_early"] = True  # the last epoch fit() trains: checkpointed whatever checkpoint_every
        best = self.run_dir is not None and best_epoch(self.history) is metrics
        signum = interrupts.pending()  # noted after the epoch's last batches: it ends, checkpointed, and stops
        saved = self.run_dir is not None and (self.epoch % self.config.train.checkpoint_every == 0
                                              or self.epoch == epochs or signum is not None
                                              or "stopped_early" in metrics)
        with interrupts.writing(f"epoch {self.epoch}'s checkpoint and metrics"):
            if best:  # before checkpoint.pt: a crash between the two retrains the epoch, which writes it again
                self.save(self.best_path, loaders=loaders)
            if saved:
                self.save(loaders=loaders)  # first: a failed save (a full disk) leaves metrics.jsonl at the
                if "val" not in loaders and self.world.is_main:  # checkpoint's epoch, not one ahead of it
                    self.best_path.unlink(missing_ok=True)  # an earlier run's, whose checkpoint this one replaced
            self._write_run_files()
        self._earlier_kept = False  # (the folder's metrics and config are this run's now)
        if self.progress and self.world.is_main:
            shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}
            tqdm.write(" ".join(f"{k}={v}" for k, v in shown.items()))
        if signum is None:  # one noted while those were written: asked again (at the same point in every process)
            signum = interrupts.pending()
            if signum is not None and self.run_dir is not None and not saved:
                with interrupts.writing(f"epoch {self.epoch}'s checkpoint"):
                    self.save(loaders=loaders)
                saved = True
        kept = (f"{self.checkpoint_path} holds it; fit() resumes with epoch {self.epoch + 1}" if saved else
                f"{self.checkpoint_path} holds the last checkpoint written (train.checkpoint_every = "
                f"{self.config.train.checkpoint_every})" if self.run_dir is not None else
                "the Trainer has no run_dir, so nothing was saved")
        interrupts.late_message = f"interrupted at the end of epoch {self.epoch}: {kept}"  # (one noted from now on)
        if signum is not None:
            interrupts.deliver(signum, interrupts.late_message)

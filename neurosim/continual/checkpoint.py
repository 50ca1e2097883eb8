"""A continual run's final models as neurosim checkpoints, which ``neurosim estimate``, ``evaluate`` and ``export``
take like a training run's.

:func:`~neurosim.continual.run_continual` writes ``models/<method>_seed<S>.pt`` beside ``finished/`` for every
(method, seed) it trains: the weights after the last task (multitask: after its joint training). The file is an
ordinary neurosim checkpoint (:func:`neurosim.training.checkpoint.save_checkpoint`):

* ``model`` — the state dict;
* ``config`` — the run config *view* of the continual config (:func:`run_config_view`): the model, the neurons, the
  loss the tasks were trained with, T; what building, evaluating, estimating and exporting the model read;
* ``continual`` — what the view leaves out: the whole continual config, the method, the seed, the task names, the
  accuracy matrix of that (method, seed) and the fingerprint of the settings it ran with.

A relative ``tasks.root`` is stored absolute (taken from the working directory of the run), so that the file loads
from any folder. A rerun of the run that reuses a finished model with another ``tasks.root`` (the task data moved)
stores the new one in it (:func:`update_tasks_root`): it is where the run found the tasks, and where loading the
model looks for them.

Loading one (:func:`neurosim.runs.load_run`, so every command that takes ``--checkpoint``) rebuilds that seed's task
sequence from the continual config and serves the **test splits of all its tasks**, interleaved (task 0's first
sample, task 1's first, …, then every task's second …): the model is to serve every task it learnt, and any first
``n`` samples (``neurosim estimate --samples n``) cover the tasks evenly. On the permuted protocol the accuracy over
them is the run's ACC (the mean of the matrix's last row, every task having the same test samples). On the
class-split protocol the run scores each task within its own head (task-incremental) while a checkpoint's read-out
scores over all outputs (class-incremental): lower, and a warning says so.

Example:
    >>> from neurosim.continual.config import continual_config_from_dict
    >>> view = run_config_view(continual_config_from_dict({"tasks": {"time_steps": 6}}), seed=3)
    >>> view.seed, view.data.dataset, view.data.time_steps, view.model.hidden, view.train.loss
    (3, 'sklearn_digits', 6, (512, 512), 'rate_ce')
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any, Sequence

import torch

from neurosim.config import DataConfig, ModelConfig, NeuronConfig, RunConfig, TrainConfig, config_to_dict
from neurosim.continual.config import ContinualConfig, continual_config_from_dict

__all__ = ["KIND", "continual_data", "is_continual", "model_path", "run_config_view", "save_continual_model",
           "update_tasks_root"]

#: the ``kind`` of a continual run's model checkpoint (a training run's checkpoint has none)
KIND = "continual"


def model_path(run_dir: str | Path, method: str, seed: int) -> Path:
    """Where :func:`~neurosim.continual.run_continual` keeps the model of ``(method, seed)``."""
    return Path(run_dir) / "models" / f"{method}_seed{seed}.pt"


def run_config_view(cfg: ContinualConfig, seed: int) -> RunConfig:
    """The :class:`~neurosim.config.RunConfig` that describes a continual model as a training run's config would: its
    ``model`` and ``neuron`` sections, ``train`` with the continual run's method, loss and optimiser settings (what
    evaluating reads: the loss decides how outputs are read), and ``data`` naming the task source with its T and
    batch size. ``data.dataset`` is the continual run's ``tasks.source`` (``sklearn_digits`` is no dataset of
    ``neurosim train``'s registry): the data of a continual model come from :func:`continual_data`."""
    t = cfg.train
    train = TrainConfig(method=t.method, k=t.k, time_chunk=t.time_chunk, epochs=t.epochs, loss=t.loss,
                        loss_lambda=t.loss_lambda, optimizer=t.optimizer, lr=t.lr, momentum=t.momentum,
                        scheduler="none", grad_clip=t.grad_clip, device=t.device, threads=t.threads)
    data = DataConfig(dataset=cfg.tasks.source, time_steps=cfg.tasks.time_steps, batch_size=t.batch_size,
                      root=cfg.tasks.root, train_subset=cfg.tasks.train_subset, test_subset=cfg.tasks.test_subset)
    return RunConfig(name=cfg.name, seed=seed, out_dir=cfg.out_dir, data=data, model=_as(ModelConfig, cfg.model),
                     neuron=_as(NeuronConfig, cfg.neuron), train=train)


def _as(cls, section):
    """``section`` (a continual section: a subclass with other defaults) as its base ``cls``, every value kept."""
    return cls(**{f.name: getattr(section, f.name) for f in dataclasses.fields(cls)})


def save_continual_model(path: str | Path, model: torch.nn.Module | dict, cfg: ContinualConfig, method: str,
                         seed: int, task_names: Sequence[str], matrix: Sequence[Sequence[float]],
                         fingerprint: str) -> Path:
    """Write the model of one (method, seed) of a continual run as a neurosim checkpoint (atomically).

    Args:
        model: the trained model, or its state dict.
        matrix: that (method, seed)'s accuracy matrix (points), kept with the weights it describes.
        fingerprint: the hash of the settings the result depends on (the runner's, as in ``finished/``).
    """
    from neurosim.training.checkpoint import save_checkpoint

    state = model.state_dict() if isinstance(model, torch.nn.Module) else model
    state = {k: v.detach().cpu().clone() for k, v in state.items()}
    cfg = _root_made_absolute(cfg)
    return save_checkpoint(path, {
        "kind": KIND, "model": state, "config": config_to_dict(run_config_view(cfg, seed)),
        "continual": {"config": config_to_dict(cfg), "method": method, "seed": int(seed),
                      "tasks": list(task_names), "matrix": [list(map(float, row)) for row in matrix],
                      "fingerprint": fingerprint},
    })


def _root_made_absolute(cfg: ContinualConfig) -> ContinualConfig:
    """``cfg`` with its ``tasks.root`` absolute (as ``folder:`` datasets are): loading rebuilds the tasks from any
    folder."""
    if cfg.tasks.root is None:
        return cfg
    return dataclasses.replace(cfg, tasks=dataclasses.replace(cfg.tasks, root=str(Path(cfg.tasks.root).resolve())))


def update_tasks_root(path: str | Path, cfg: ContinualConfig) -> tuple[bool, str | None]:
    """Store ``cfg``'s ``tasks.root`` (made absolute) in the continual model at ``path`` where it stores another one;
    the rest of the file is kept as it is (its weights, its record, the fingerprint of its settings, which
    ``tasks.root`` is not part of). The run reusing a finished model calls it, and on every other model of the same
    settings in its folder (of methods or seeds it did not run): the tasks were found there now. The stored root is
    read with the weights mapped (:func:`~neurosim.training.checkpoint.load_checkpoint` ``mmap=True``); a file to
    rewrite is read whole.

    Returns:
        ``(updated, stored)``: whether the file was rewritten, and the root it stored before (None: the cache).

    Raises:
        CheckpointError: ``path`` is no continual model of this neurosim's making.
    """
    from neurosim.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

    def sections(payload: dict) -> tuple[dict, dict]:
        try:
            return payload["continual"]["config"].setdefault("tasks", {}), payload["config"].setdefault("data", {})
        except (KeyError, TypeError, AttributeError) as e:
            raise CheckpointError(f"checkpoint {str(path)!r} is no continual model with a readable record of its run "
                                  f"({type(e).__name__}: {e})") from None

    stored, now = sections(load_checkpoint(path, mmap=True))[0].get("root"), _root_made_absolute(cfg).tasks.root
    if stored == now:  # (read with its weights mapped: every rerun asks)
        return False, stored
    payload = load_checkpoint(path)  # whole, to be written again
    tasks, data = sections(payload)
    for section in (tasks, data):  # the continual config, and the run config view built from it (data.root)
        if now is None:
            section.pop("root", None)  # as config_to_dict leaves a None out
        else:
            section["root"] = now
    save_checkpoint(path, payload)
    return True, stored


def is_continual(payload: dict[str, Any]) -> bool:
    """Whether a loaded checkpoint is a continual run's model (:func:`save_continual_model`)."""
    return payload.get("kind") == KIND


def _interleaved(parts: Sequence[torch.Tensor]) -> torch.Tensor:
    """The rows of ``parts`` taken in turn: the first of each, then the second of each, … (a part that has run out is
    skipped); the row indices into ``torch.cat(parts)``."""
    starts = torch.tensor([0] + [len(p) for p in parts]).cumsum(0)[:-1]
    order = [(i, k) for k, p in enumerate(parts) for i in range(len(p))]
    order.sort()
    return torch.tensor([int(starts[k]) + i for i, k in order], dtype=torch.long)


def continual_data(payload: dict[str, Any], path: str | Path, device: str | torch.device = "cpu",
                   progress: bool = False, test_only: bool = True):
    """The :class:`~neurosim.data.pipeline.DataBundle` of a continual model's checkpoint: the test splits (and,
    without ``test_only``, the training splits) of every task of its seed's sequence, interleaved (see the module
    docstring). Its ``info`` names the task source and protocol.

    Raises:
        CheckpointError: the checkpoint's ``continual`` record is missing or not of this neurosim's making.
    """
    from neurosim.continual.runner import build_tasks
    from neurosim.data.loaders import FrameLoader
    from neurosim.data.pipeline import DataBundle
    from neurosim.data.registry import DATASETS, DatasetInfo
    from neurosim.training.checkpoint import CheckpointError, _caller_stacklevel

    record = payload.get("continual")
    try:
        cfg = continual_config_from_dict(record["config"])
        seed = int(record["seed"])
    except (TypeError, KeyError, ValueError) as e:
        raise CheckpointError(f"checkpoint {str(path)!r} is a continual model without a readable record of its run "
                              f"({type(e).__name__}: {e})") from None
    tc = cfg.tasks
    # a permuted sequence's tasks are the permutations (seeded by the seed alone) of the source: with the test splits
    # alone wanted, one training sample is read, not every task's permuted copy of the training split
    built = (dataclasses.replace(cfg, tasks=dataclasses.replace(tc, train_subset=1))
             if test_only and tc.protocol == "permuted" else cfg)
    # (the tasks the model learnt, as its record says: a class split a run now refuses was kept before it was)
    tasks = build_tasks(built, seed, progress=progress, check_classes=False)
    if tc.protocol == "class_split":
        warnings.warn(f"{path}: the continual run scored each class-split task within its own head (task-"
                      f"incremental); evaluated here the model's read-out picks among all {cfg.model.num_classes} "
                      "outputs (class-incremental), which gives a lower accuracy than the run's matrix. Activity, "
                      "energy and latency are those of the model either way", RuntimeWarning,
                      stacklevel=_caller_stacklevel())

    def loader(split: str, shuffle: bool) -> FrameLoader:
        xs = [getattr(t, f"x_{split}") for t in tasks]
        rows = _interleaved(xs)
        where = torch.argsort(rows)  # each concatenated row's place in the interleaved order
        frames = torch.empty((sum(len(x) for x in xs), *xs[0].shape[1:]), dtype=xs[0].dtype)
        start = 0
        for x in xs:  # written in place: no concatenated copy beside the interleaved one
            frames[where[start:start + len(x)]] = x
            start += len(x)
        labels = torch.cat([getattr(t, f"y_{split}") for t in tasks])[rows]
        return FrameLoader(frames, labels, cfg.train.batch_size, shuffle=shuffle, seed=seed, device=device)

    test = loader("test", False)
    train = None if test_only else loader("train", True)
    source = DATASETS.get(tc.source)

    def nowhere(*_):
        raise RuntimeError(f"the tasks of a continual run are built by neurosim.continual, not read from "
                           f"{tc.source!r}'s files")

    what = (f"{len(tasks)} permuted tasks" if tc.protocol == "permuted"
            else f"{len(tasks)} class-split tasks of {tc.classes_per_task} classes")
    info = DatasetInfo(name=tc.source, sensor_size=source.sensor_size if source else (tasks[0].input_shape[-1], 1, 1),
                       num_classes=cfg.model.num_classes,
                       description=f"the test splits of a continual run's {what} from {tc.source}, interleaved",
                       loader=nowhere, on_disk=nowhere, location=nowhere,
                       classes=source.classes if source else ())
    return DataBundle(info, train, test, None if train is None else train.frames, test.frames, None)

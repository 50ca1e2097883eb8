"""Task sequences for continual learning: permuted inputs (shared head) and class splits (multi-head).

A :class:`Task` holds time-first-ready samples ``x [N, T, ...]`` (float32, or a registry dataset's event counts in
their compact integer dtype: see :class:`Task`) and labels for its train and test splits,
plus ``classes``: None for a shared head (every task uses all outputs: the permuted protocol), or the tuple of
output classes the task's head uses (the class-split protocol: the network's output layer is split into one head
per task; training and evaluation only look at the task's own outputs).

* :func:`permuted_tasks` — PMNIST-style: task ``i`` applies a fixed random permutation to the features of every
  time step (the same permutation for train and test, for every step); the labels stay the same.
* :func:`class_split_tasks` — split the classes into consecutive groups (``classes_per_task`` each).
* :func:`load_source` — the samples to build tasks from: ``sklearn_digits`` (scikit-learn's 8×8 digits, pixel
  intensities in [0, 1] fed as a constant input current for ``T`` steps: offline, 1,437 train / 360 test), or
  any dataset of the registry (:mod:`neurosim.data.registry`; event frames ``[T, P, H, W]``, optionally sum-pooled).

Example:
    >>> import torch
    >>> x, y = torch.rand(20, 3, 8), torch.arange(20) % 4          # [N, T, features]
    >>> tasks = permuted_tasks(x, y, x, y, num_tasks=3, seed=0)
    >>> [t.name for t in tasks], tasks[0].classes
    (['permuted-0', 'permuted-1', 'permuted-2'], None)
    >>> bool(torch.equal(tasks[0].x_train, x)), bool(torch.equal(tasks[1].x_train.sort(-1).values, x.sort(-1).values))
    (True, True)
    >>> [t.classes for t in class_split_tasks(x, y, x, y, classes_per_task=2)]
    [(0, 1), (2, 3)]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["SOURCES", "Task", "check_same_inputs", "class_split_tasks", "concat_tasks", "load_source",
           "permuted_tasks"]

SOURCES = ("sklearn_digits",)  # built-in static sources; any registry dataset name works too
DIGITS_SPLIT_SEED = 2015  # fixed stratified 80/20 split of scikit-learn's digits (as the bundled event digits)


@dataclass(frozen=True)
class Task:
    """One task: samples ``[N, T, ...]`` and labels ``[N]`` for train and test.

    The samples are float32, or event counts kept in a compact dtype (``uint8``, ``int8``, ``int16`` or ``bool``: a
    registry dataset's frames, a quarter of float32's bytes for the frame cache's uint8), which the continual loops
    convert to float32 where they run them (:func:`neurosim.nn.as_float`: a batch's steps a chunk at a time in
    training and evaluation), with the same values and results as float32 samples. Samples of any other dtype
    (float64, int64 counts, a numpy array) are made float32 and labels of any integer dtype int64 when the task is
    built, as :func:`permuted_tasks` and :func:`class_split_tasks` make them; train and test need the same per-step
    shape.

    Attributes:
        classes: output classes of this task's head; None means the shared head (all outputs).
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x, y = _task_samples(self.name, split, getattr(self, f"x_{split}"), getattr(self, f"y_{split}"))
            object.__setattr__(self, f"x_{split}", x)
            object.__setattr__(self, f"y_{split}", y)
            if x.dim() < 3:
                raise ValueError(f"task {self.name!r}: x_{split} must be [N, T, ...], got shape {tuple(x.shape)}")
            if y.dim() != 1 or len(y) != len(x):
                raise ValueError(f"task {self.name!r}: y_{split} must be [N] with N = {len(x)}, "
                                 f"got shape {tuple(y.shape)}")
            if len(x) == 0:
                raise ValueError(f"task {self.name!r}: the {split} split is empty")
        if self.x_train.shape[2:] != self.x_test.shape[2:]:
            raise ValueError(f"task {self.name!r}: x_train and x_test differ in their per-step shape "
                             f"{tuple(self.x_train.shape[2:])} vs {tuple(self.x_test.shape[2:])} (shapes [N, T, ...]): "
                             "the same network reads both")

    @property
    def time_steps(self) -> int:
        return self.x_train.shape[1]

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Per-step input shape (what ``model.input_shape`` must be)."""
        return tuple(self.x_train.shape[2:])


#: dtypes a task keeps its samples in (event counts, smaller than float32); any other is converted to float32
COMPACT_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.bool)
_COMPACT_NUMPY = (np.dtype(np.uint8), np.dtype(np.int8), np.dtype(np.int16), np.dtype(np.bool_))


def _task_samples(name: str, split: str, x, y) -> tuple[torch.Tensor, torch.Tensor]:
    """A :class:`Task`'s ``x`` and ``y`` of one split as the continual loops take them: ``x`` float32 or in a compact
    dtype (float64 samples, or counts in a wider integer dtype, made float32, as :func:`permuted_tasks` does), ``y``
    int64 class indices (from any integer dtype, or whole-number floats; other labels, and negative ones, are
    refused, naming the task)."""
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(np.asarray(x))
    if x.dtype not in COMPACT_DTYPES and x.dtype != torch.float32:
        x = x.float()
    if not isinstance(y, torch.Tensor):
        y = torch.as_tensor(np.asarray(y))
    if y.is_floating_point() or y.is_complex():
        if y.is_complex() or not bool(torch.isfinite(y).all()) or not bool((y == y.round()).all()):
            raise ValueError(f"task {name!r}: y_{split} must hold integer class indices, got {y.dtype} values that "
                             "are not whole numbers")
    elif y.dtype == torch.bool:
        raise ValueError(f"task {name!r}: y_{split} must hold integer class indices, got torch.bool")
    y = y.long()
    if y.numel() and int(y.min()) < 0:
        raise ValueError(f"task {name!r}: y_{split} holds the negative label {int(y.min())}; class indices start at 0")
    return x, y


def _as_samples(x, y) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if x.dtype not in COMPACT_DTYPES:  # (compact counts stay compact: converted a batch's chunk at a time)
        x = x.float()
    y = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y).long()
    if x.dim() < 3:
        raise ValueError(f"samples must be [N, T, ...] (time second), got shape {tuple(x.shape)}; "
                         "static inputs: repeat them over T first, e.g. x[:, None].expand(-1, T, -1)")
    return x, y


def permuted_tasks(x_train, y_train, x_test, y_test, num_tasks: int, seed: int = 0,
                   permute_first: bool = False) -> list[Task]:
    """``num_tasks`` tasks, each a fixed permutation of the per-step features; shared head (``classes=None``).

    Args:
        x_train, x_test: ``[N, T, ...]``; the permutation acts on the flattened ``...`` of every step.
        num_tasks: number of tasks.
        seed: seed of the permutations.
        permute_first: permute task 0 too (the PMNIST code does); False keeps the original order for task 0.
    """
    if num_tasks < 1:
        raise ValueError(f"num_tasks must be >= 1, got {num_tasks}")
    x_train, y_train = _as_samples(x_train, y_train)
    x_test, y_test = _as_samples(x_test, y_test)
    if x_train.shape[2:] != x_test.shape[2:]:
        raise ValueError(f"train and test steps differ in shape: {tuple(x_train.shape[2:])} vs {tuple(x_test.shape[2:])}")
    n_feat = int(np.prod(x_train.shape[2:]))
    g = torch.Generator().manual_seed(int(seed))
    tasks = []
    for i in range(num_tasks):
        perm = torch.randperm(n_feat, generator=g)
        if i == 0 and not permute_first:
            perm = torch.arange(n_feat)

        def apply(x, perm=perm):
            return x.flatten(2)[:, :, perm].reshape(x.shape)

        tasks.append(Task(f"permuted-{i}", apply(x_train), y_train, apply(x_test), y_test, None))
    return tasks


def class_split_tasks(x_train, y_train, x_test, y_test, classes_per_task: int = 2,
                      class_order: list[int] | None = None) -> list[Task]:
    """Tasks of ``classes_per_task`` classes each (the last may have fewer), in ``class_order`` (default sorted)."""
    x_train, y_train = _as_samples(x_train, y_train)
    x_test, y_test = _as_samples(x_test, y_test)
    if classes_per_task < 1:
        raise ValueError(f"classes_per_task must be >= 1, got {classes_per_task}")
    order = sorted(set(y_train.tolist())) if class_order is None else list(class_order)
    tasks = []
    for i in range(0, len(order), classes_per_task):
        cls = tuple(int(c) for c in order[i:i + classes_per_task])
        keep_tr = torch.isin(y_train, torch.tensor(cls))
        keep_te = torch.isin(y_test, torch.tensor(cls))
        tasks.append(Task(f"classes-{'-'.join(map(str, cls))}", x_train[keep_tr], y_train[keep_tr],
                          x_test[keep_te], y_test[keep_te], cls))
    return tasks


def check_same_inputs(tasks) -> None:
    """Refuse a task sequence whose elements are not :class:`Task` s or whose tasks feed the network inputs of
    different per-step shapes (one network learns them all), naming the first task that differs.

    Raises:
        TypeError: an element is not a Task.
        ValueError: a task's per-step input shape differs from the first task's.
    """
    for i, t in enumerate(tasks):
        if not isinstance(t, Task):
            raise TypeError(f"a task sequence holds Task objects (permuted_tasks, class_split_tasks, build_tasks or "
                            f"Task(name, x_train, y_train, x_test, y_test)), got {type(t).__name__} at index {i}")
    first = tasks[0]
    for i, t in enumerate(tasks[1:], start=1):
        if t.input_shape != first.input_shape:
            raise ValueError(f"task {i} ({t.name!r}) gives inputs of shape {list(t.input_shape)} per step but task 0 "
                             f"({first.name!r}) {list(first.input_shape)}: every task of a sequence feeds the same "
                             "network")


def concat_tasks(tasks: list[Task]) -> Task:
    """All tasks' training data in one task (the joint / multitask upper bound); test split of the first task.

    Class-split tasks keep their heads implicitly: their class sets are disjoint, so a sample's label tells its
    head (see :class:`neurosim.continual.train.TaskLoss`).
    """
    if not tasks:
        raise ValueError("concat_tasks needs at least one task")
    t0 = tasks[0]
    check_same_inputs(tasks)
    for t in tasks[1:]:
        if t.time_steps != t0.time_steps:
            raise ValueError(f"the joint (multitask) training set needs every task's samples to have the same T: "
                             f"task {t.name!r} has {t.time_steps} steps, task {t0.name!r} {t0.time_steps}")
    return Task("joint", torch.cat([t.x_train for t in tasks]), torch.cat([t.y_train for t in tasks]),
                t0.x_test, t0.y_test, None)


def _sklearn_digits(time_steps: int, train_subset: int | None, test_subset: int | None):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)  # [1797, 64], pixel intensities in [0, 1]
    x_tr, x_te, y_tr, y_te = train_test_split(x, d.target, test_size=0.2, stratify=d.target,
                                              random_state=DIGITS_SPLIT_SEED)
    x_tr, y_tr = x_tr[:train_subset], y_tr[:train_subset]
    x_te, y_te = x_te[:test_subset], y_te[:test_subset]

    def rep(a):  # a constant input current: the same frame at every step, [N, T, 64]
        return torch.from_numpy(np.ascontiguousarray(a))[:, None].expand(-1, time_steps, -1).contiguous()

    return rep(x_tr), torch.from_numpy(y_tr).long(), rep(x_te), torch.from_numpy(y_te).long()


def _sum_pool(x: torch.Tensor, kernel: tuple[int, int]) -> torch.Tensor:
    """Event counts ``[N, T, P, H, W]`` summed over ``kernel`` blocks of ``H × W`` (a remainder dropped), exactly, in
    the smallest of uint8 and int16 that holds any such sum of ``x``'s dtype (float32 beyond, and for float ``x``),
    a block of samples at a time (no wider copy of the whole split). Pooling float32 frames with ``avg_pool2d`` and
    multiplying back by ``kh·kw`` was not exact for every kernel (5 × 5: 570 of the sums 0 … 6375 came out a rounding
    away from the whole number)."""
    kh, kw = kernel
    n, t, p, h, w = x.shape
    if x.dtype == torch.bool:
        top = 1
    elif x.is_floating_point():
        top = None
    else:
        top = torch.iinfo(x.dtype).max
    bound = None if top is None else top * kh * kw
    dtype = next((d for d in (torch.uint8, torch.int16) if bound is not None and bound <= torch.iinfo(d).max),
                 torch.float32)
    hh, ww = h // kh, w // kw
    out = torch.empty((n, t, p, hh, ww), dtype=dtype)
    per = max(1, (1 << 22) // max(1, t * p * h * w))  # samples per block: ~4 M counts (32 MB summed in 64 bits)
    for i in range(0, n, per):
        block = x[i:i + per, :, :, :hh * kh, :ww * kw].reshape(-1, t, p, hh, kh, ww, kw)
        acc = torch.float64 if x.is_floating_point() else torch.int64  # (exact sums of any counts)
        out[i:i + per] = block.sum(dim=(4, 6), dtype=acc).to(dtype)
    return out


def _registry(name: str, time_steps: int, downsample: int, train_subset, test_subset, root, progress):
    from neurosim.config import DataConfig
    from neurosim.data.pipeline import load_frames

    cfg = DataConfig(dataset=name, time_steps=time_steps, root=root, train_subset=train_subset,
                     test_subset=test_subset)
    out = []
    for split in ("train", "test"):
        frames, labels = load_frames(cfg, split, progress)  # [N, T, P, H, W]
        frames = np.asarray(frames)  # (a MappedArray: its file's pages, read as they are used)
        # the counts in their own dtype (the frame cache's uint8), else float32 as before
        x = torch.from_numpy(frames if frames.dtype in _COMPACT_NUMPY else frames.astype(np.float32))
        if downsample > 1:
            n, t, _, h, w = x.shape
            # sum-pool H and W (a source one row high, e.g. audio channels, along W alone); a remainder is dropped
            kernel = (1 if h == 1 else downsample, downsample)
            if kernel[0] > h or kernel[1] > w:
                from neurosim.config import ConfigError

                raise ConfigError(f"tasks.downsample: {downsample} is larger than {name!r}'s frames ({h} × {w}); use "
                                  f"a factor of at most {w if h == 1 else min(h, w)}")
            x = _sum_pool(x, kernel)
        out += [x, torch.from_numpy(np.asarray(labels)).long()]
    return tuple(out)


def load_source(source: str, time_steps: int, downsample: int = 1, train_subset: int | None = None,
                test_subset: int | None = None, root: str | None = None, progress: bool = False):
    """``(x_train [N, T, ...], y_train, x_test, y_test)`` of a source: ``sklearn_digits`` or a registry dataset.

    Raises:
        ValueError: unknown source (the message lists the known ones).
    """
    if source == "sklearn_digits":
        return _sklearn_digits(time_steps, train_subset, test_subset)
    from neurosim.data.registry import DATASETS

    if source not in DATASETS:
        raise ValueError(f"unknown task source {source!r}; known: {', '.join(list(SOURCES) + sorted(DATASETS))}")
    return _registry(source, time_steps, downsample, train_subset, test_subset, root, progress)

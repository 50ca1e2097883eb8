"""Batching of pre-computed frames into time-first tensors.

Frames are converted from events once (and cached, see :mod:`neurosim.data.frames`), so an epoch does no
event processing. :class:`FrameLoader` shuffles with a generator seeded by ``(seed, epoch)``: the order of an
epoch does not depend on what ran before it, which is what makes resumed training identical to an
uninterrupted run; :meth:`FrameLoader.iter_from` starts an epoch at a given batch without reading the ones
before it (an epoch resumed where it was interrupted). :meth:`FrameLoader.shard` splits each epoch between the
processes of a data-parallel run, as torch's ``DistributedSampler`` does. :func:`time_first_collate` batches
samples framed on the fly (augmented every epoch) for a ``torch.utils.data.DataLoader``, zero-padding samples of
different lengths on request.
"""

from __future__ import annotations

import numpy as np
import torch

from neurosim.config import AugmentConfig
from neurosim.data import augment as _augment

__all__ = ["FrameLoader", "time_first_collate"]


def _native(values) -> np.ndarray:
    """``values`` as a numpy array in the machine's byte order (torch reads no other)."""
    a = np.asarray(values)
    return a if a.dtype.isnative else a.astype(a.dtype.newbyteorder("="))


class FrameLoader:
    """Iterate ``(x_seq [T, B, ...] float32, y [B] int64)`` batches over frames ``[N, T, ...]`` (with
    ``iter_from(0, compact=True)``: event counts in their own dtype, converted where they are consumed).

    Args:
        frames: array or tensor ``[N, T, ...]`` (any numeric dtype; converted to float32 per batch).
        labels: ``[N]`` integer class labels.
        batch_size: samples per batch.
        shuffle: reshuffle every epoch (seeded by ``seed`` and the epoch set with :meth:`set_epoch`).
        seed: base seed of the shuffle.
        drop_last: drop a final incomplete batch.
        device: where batches are placed.
        rank, num_replicas: this process's shard of each epoch, of ``num_replicas`` (see :meth:`shard`).
        even: with ``num_replicas > 1``, give every shard the same number of samples (and so of batches): the
            last few samples of the epoch's order are repeated to fill the shards up, or dropped with
            ``drop_last``. False keeps every sample exactly once and lets shards differ by one (evaluation).
        augment: an :class:`~neurosim.config.AugmentConfig` (random shift, flip, event drop, cutout of each sample;
            :mod:`neurosim.data.augment`), drawn per sample from ``(seed, epoch, its position in the epoch's
            order)``: :meth:`iter_from` and :meth:`shard` augment every sample as one uninterrupted process would.
            None or all off: batches are the frames as they are.
        indices: the rows of ``frames``/``labels`` this loader serves, in this order (before shuffling): a part of
            one array, e.g. a validation split held out of a cached training split, without copying its frames.
            ``loader.labels`` is then the served rows' labels. None: every row. (With ``indices``, make a new loader
            rather than replace ``loader.frames`` or ``loader.labels``: the rows index the whole array.)

    Frames from the frame cache (:func:`~neurosim.data.load_frames`) stay mapped from their file: a batch reads only
    its samples, and a loader sent to another process by :mod:`multiprocessing` (a ``spawn`` process's arguments)
    carries a reference to the file, not the frames (see :class:`~neurosim.data.frames.MappedArray`: changes made
    to ``loader.frames`` in place do not travel that way; frames replaced with ``loader.frames = ...`` do). Pickled
    otherwise (``pickle``, ``torch.save``), a loader holds its frames' values.
    """

    def __init__(self, frames, labels, batch_size: int = 32, shuffle: bool = False, seed: int = 0,
                 drop_last: bool = False, device: str | torch.device = "cpu", rank: int = 0,
                 num_replicas: int = 1, even: bool = True, augment: AugmentConfig | None = None,
                 indices=None) -> None:
        self.frames = torch.as_tensor(_native(frames)) if not isinstance(frames, torch.Tensor) else frames
        # the array the frames tensor shares memory with: pickled in its place while the tensor is still all of it
        # (a cached split's MappedArray travels to a spawned process as a reference to its file, not as its bytes)
        self._array = frames if isinstance(frames, np.ndarray) and frames.size and \
            self.frames.data_ptr() == frames.ctypes.data else None
        self.labels = torch.as_tensor(_native(labels), dtype=torch.long)
        if self.frames.dim() < 3:
            raise ValueError(f"frames must be [N, T, ...], got shape {tuple(self.frames.shape)}")
        if len(self.frames) != len(self.labels):
            raise ValueError(f"{len(self.frames)} frame samples but {len(self.labels)} labels")
        self.indices = None if indices is None else _rows(indices, len(self.frames))
        if self.indices is not None:
            self._all_labels, self.labels = self.labels, self.labels[self.indices]
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed must be an integer, got {seed!r}")
        self.batch_size, self.shuffle, self.seed, self.drop_last = batch_size, shuffle, int(seed), drop_last
        if isinstance(num_replicas, bool) or not isinstance(num_replicas, int) or num_replicas < 1:
            raise ValueError(f"num_replicas must be a whole number >= 1, got {num_replicas!r}")
        if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be a whole number in [0, {num_replicas}), got {rank!r}")
        if len(self.labels) == 0:
            raise ValueError("FrameLoader: no samples (frames and labels are empty)")
        if even and num_replicas > len(self.labels):
            raise ValueError(f"{len(self.labels)} samples cannot be split evenly over {num_replicas} processes")
        self.device = torch.device(device)
        self.rank, self.num_replicas, self.even = rank, num_replicas, even
        if augment is not None and not isinstance(augment, AugmentConfig):
            raise TypeError(f"augment must be an AugmentConfig (neurosim.config) or None, got {type(augment).__name__}")
        self.augment = augment if augment is not None and augment.active else None
        if self.augment is not None:
            _augment.check_frames(self.augment, tuple(self.frames.shape), self.frames.dtype)
        self.epoch = 0

    def shard(self, rank: int, num_replicas: int, even: bool = True) -> "FrameLoader":
        """A loader over this one's data that yields only process ``rank``'s part of each epoch.

        Every shard follows the same seeded order of the epoch and takes every ``num_replicas``-th sample of it
        from position ``rank`` on, so the shards together cover the epoch once (``even=False``) or once plus a
        few repeats (``even=True``, what training needs: DDP expects the same number of batches everywhere).
        Batch ``i`` of all shards together holds the samples of a ``batch_size × num_replicas`` batch ``i`` of
        the unsharded order.
        """
        return self._like(rank=rank, num_replicas=num_replicas, even=even)

    def in_order(self) -> "FrameLoader":
        """A loader over the same samples (of every shard), in their order, not shuffled, augmented or dropped: to
        evaluate them (e.g. the training samples of a run with ``data.augment``)."""
        return self._like(shuffle=False, drop_last=False, augment=None)

    def _like(self, **changes) -> "FrameLoader":
        """A loader over this one's frames and rows with the settings ``changes`` (FrameLoader's arguments) changed."""
        array = self._whole_array()
        settings = dict(batch_size=self.batch_size, shuffle=self.shuffle, seed=self.seed, drop_last=self.drop_last,
                        device=self.device, augment=self.augment, indices=self.indices)
        return FrameLoader(self.frames if array is None else array,
                           self.labels if self.indices is None else self._all_labels, **{**settings, **changes})

    def _whole_array(self) -> np.ndarray | None:
        """The array the frames were given as, while ``self.frames`` is still a view of all of it (same memory,
        shape, dtype and strides); None once frames were replaced (``loader.frames = ...``) or never were one."""
        a, f = self._array, self.frames
        if a is None or not isinstance(f, torch.Tensor) or f.device.type != "cpu":
            return None
        same = (f.data_ptr() == a.ctypes.data and tuple(f.shape) == a.shape and f.element_size() == a.itemsize
                and tuple(s * f.element_size() for s in f.stride()) == a.strides
                and f.dtype == torch.from_numpy(np.empty(0, a.dtype.newbyteorder("="))).dtype)
        return a if same else None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_array"] = self._whole_array()
        if state["_array"] is not None:  # the array, not the tensor: torch pickles a tensor's bytes
            state["frames"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if self.frames is None:
            self.frames = torch.as_tensor(_native(self._array))

    def _shard_size(self) -> int:
        n, r = len(self.labels), self.num_replicas
        if r == 1:
            return n
        if self.even:
            return n // r if self.drop_last else -(-n // r)
        return len(range(self.rank, n, r))

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose shuffle order the next iteration uses."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        n = self._shard_size()
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        return self.iter_from(0)

    def iter_from(self, batch: int, compact: bool = False):
        """The epoch's batches from batch ``batch`` (0-based) on: the same order as ``iter(loader)``, the batches
        before it skipped without being read (a resumed epoch continues where it was interrupted at no cost).

        ``compact=True`` yields integer and boolean frames (event counts: the frame cache's uint8 or int16) in their
        own dtype instead of float32, for a consumer that converts them a step or a chunk of steps at a time as it
        runs them (:func:`neurosim.nn.as_float`, as the training methods and :func:`neurosim.nn.run_chunked` do):
        a uint8 batch takes a quarter of the float32 batch's memory (839 MB of float32 for DVS Gesture at T = 400,
        batch 16), and SLTT then holds one step's float copy, not all ``T``. The values, order and augmentation
        are the float batches' own; float frames come as float32 either way. The :class:`~neurosim.training.Trainer`
        iterates FrameLoaders so.

        Raises:
            ValueError: ``batch`` is not a whole number in ``[0, len(loader)]``.
        """
        if isinstance(batch, bool) or not isinstance(batch, int) or not 0 <= batch <= len(self):
            raise ValueError(f"iter_from: batch must be a whole number in [0, {len(self)}] (this epoch has "
                             f"{len(self)} batches), got {batch!r}")
        if not isinstance(compact, bool):
            raise TypeError(f"iter_from: compact must be True or False, got {compact!r}")
        return self._batches(batch, compact)

    def _batches(self, start: int, compact: bool = False):
        n = len(self.labels)
        if self.shuffle:
            g = torch.Generator().manual_seed((self.seed * 100_003 + self.epoch) % 2**64)  # any int seed
            order = torch.randperm(n, generator=g)
        else:
            order = torch.arange(n)
        if self.num_replicas > 1:
            size = self._shard_size()
            if self.even:
                total = size * self.num_replicas
                order = order[:total] if total <= n else torch.cat([order, order[:total - n]])
            positions = np.arange(len(order))[self.rank::self.num_replicas][:size]  # in the whole epoch's order
            order = order[positions]
        else:
            positions = np.arange(len(order))
        for i in range(start, len(self)):
            batch = slice(i * self.batch_size, (i + 1) * self.batch_size)
            # (made by a function: this generator holds no reference to a batch while the caller trains on it)
            yield self._batch(order[batch], positions[batch], compact)

    def _batch(self, idx: torch.Tensor, positions: np.ndarray,
               compact: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x_seq [T, B, ...] float32, y [B])`` of the samples ``idx`` (at ``positions`` in the epoch's order);
        ``compact``: integer and boolean frames in their own dtype (see :meth:`iter_from`).

        The samples are gathered and made time-first in the frames' own dtype (uint8 for cached event counts) and
        converted to float32 last, on the loader's device: one float32 copy of the batch is ever made, where
        converting first and then transposing made two (2 × 113 MiB for a batch of 32 at T = 400, 34×34×2)."""
        x = self.frames[idx if self.indices is None else self.indices[idx]]
        if self.augment is not None:  # each sample's draws: (seed, epoch, its position in the epoch's order) alone
            draws = _augment.draw(self.augment, positions, self.seed, self.epoch, *self.frames.shape[-2:])
            x = _augment.apply(self.augment, x.cpu(), draws)  # the gathered copy, in the frames' dtype
        x = x.transpose(0, 1).contiguous()  # T, B, ...: still compact
        # moved in the frames' dtype (a GPU gets the compact bytes), converted there (compact: by the consumer)
        x = x.to(self.device, non_blocking=True)
        if not (compact and not x.is_floating_point()):
            x = x.to(torch.float32)
        return x, self.labels[idx].to(self.device)


def _rows(indices, n: int) -> torch.Tensor:
    """``indices`` as an int64 tensor of distinct rows in ``[0, n)``, or a ValueError saying what is wrong."""
    rows = torch.as_tensor(_native(indices) if not isinstance(indices, torch.Tensor) else indices)
    if rows.numel() == 0 and rows.dim() == 1:
        return rows.long().cpu()  # (no rows: refused as "no samples" by the loader)
    if rows.dim() != 1 or rows.dtype.is_floating_point or rows.dtype == torch.bool or rows.is_complex():
        raise ValueError(f"indices must be a 1-D array of integer row numbers (for a boolean mask m: "
                         f"numpy.flatnonzero(m)), got {str(rows.dtype).replace('torch.', '')} values of shape "
                         f"{tuple(rows.shape)}")
    rows = rows.long().cpu()
    if len(rows) and (int(rows.min()) < 0 or int(rows.max()) >= n):
        raise ValueError(f"indices must be rows in [0, {n}) (the frames' samples), got {int(rows.min())} to "
                         f"{int(rows.max())}")
    if len(torch.unique(rows)) != len(rows):
        raise ValueError("indices repeat a row: each sample may be served once per epoch")
    return rows


def _count_list(counts: list[int], most: int = 16) -> str:
    return ", ".join(map(str, counts[:most])) + (f", ... ({len(counts)} samples)" if len(counts) > most else "")


def time_first_collate(batch, pad: bool = False):
    """``DataLoader`` collate for ``(frames [T, ...], label)`` samples → ``(x_seq [T, B, ...], y [B])``.

    Samples framed with ``ToFrame(n_time_bins=...)`` all have the same ``T``. Framed by time window or event count
    (``ToFrame(time_window=...)``), recordings of different lengths give different ``T``: ``pad=True`` then
    zero-pads every sample at the end to the batch's longest ``T``, as tonic's ``PadTensors(batch_first=False)``
    does — pass ``collate_fn=functools.partial(time_first_collate, pad=True)``. Padded steps are zero *input*, not
    absent steps: the network keeps running through them (membranes decay, nothing is masked), and a loss or spike
    count over all ``T`` includes them. Without ``pad``, samples of different ``T`` are an error that names them.

    Args:
        batch: ``(frames, label)`` samples; frames an array or tensor ``[T, ...]`` (any numeric dtype), label an int.
        pad: zero-pad shorter samples at the end of time to the longest ``T`` of the batch.

    Shapes:
        frames of sample ``b``: ``[T_b, ...]`` (the same ``...`` for all) → ``x_seq``: ``[max T_b, B, ...]`` float32;
        ``y``: ``[B]`` int64.

    Raises:
        ValueError: an empty batch, a sample without a time axis, samples whose non-time shapes differ, or (without
            ``pad``) samples with different numbers of frames.

    Example:
        >>> import functools
        >>> import numpy as np
        >>> x, y = time_first_collate([(np.ones((2, 3)), 0), (np.ones((4, 3)), 1)], pad=True)
        >>> tuple(x.shape), x[:, 0].sum(1).tolist(), y.tolist()   # sample 0: 2 frames, then 2 zero frames
        ((4, 2, 3), [3.0, 3.0, 0.0, 0.0], [0, 1])
        >>> collate = functools.partial(time_first_collate, pad=True)   # DataLoader(..., collate_fn=collate)
    """
    if len(batch) == 0:
        raise ValueError("time_first_collate: the batch is empty; expected (frames [T, ...], label) samples")
    xs, ys = zip(*batch)
    xs = [torch.as_tensor(v if isinstance(v, torch.Tensor) else _native(v), dtype=torch.float32) for v in xs]
    for i, x in enumerate(xs):
        if x.dim() == 0:
            raise ValueError(f"time_first_collate: sample {i} has frames of shape (), expected [T, ...] with time "
                             "first (e.g. ToFrame's [T, P, H, W])")
    rest = [tuple(x.shape[1:]) for x in xs]
    if len(set(rest)) > 1:
        raise ValueError(f"time_first_collate: samples differ in more than time: frame shapes after T are "
                         f"{_count_list([str(r) for r in rest])}; every sample needs the same sensor size "
                         "(and polarities)")
    counts = [x.shape[0] for x in xs]
    if len(set(counts)) > 1 and not pad:
        raise ValueError(
            f"time_first_collate: the samples have different numbers of frames T ({_count_list(counts)}), as "
            "ToFrame(time_window=...) or event_count=... gives for recordings of different lengths; pass pad=True "
            "(collate_fn=functools.partial(time_first_collate, pad=True)) to zero-pad each sample at the end to the "
            "longest T, or frame with ToFrame(n_time_bins=...) for the same T everywhere")
    x_seq = torch.zeros(max(counts), len(xs), *rest[0], dtype=torch.float32, device=xs[0].device)  # T, B, ...
    for b, x in enumerate(xs):
        x_seq[:x.shape[0], b] = x
    return x_seq, torch.as_tensor(np.asarray(ys), dtype=torch.long)

"""Batching of pre-computed frames into time-first tensors.

Frames are converted from events once (and cached, see :mod:`neurosim.data.frames`), so an epoch does no
event processing. :class:`FrameLoader` shuffles with a generator seeded by ``(seed, epoch)``: the order of an
epoch does not depend on what ran before it, which is what makes resumed training identical to an
uninterrupted run. :meth:`FrameLoader.shard` splits each epoch between the processes of a data-parallel run,
as torch's ``DistributedSampler`` does.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["FrameLoader", "time_first_collate"]


def _native(values) -> np.ndarray:
    """``values`` as a numpy array in the machine's byte order (torch reads no other)."""
    a = np.asarray(values)
    return a if a.dtype.isnative else a.astype(a.dtype.newbyteorder("="))


class FrameLoader:
    """Iterate ``(x_seq [T, B, ...] float32, y [B] int64)`` batches over frames ``[N, T, ...]``.

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
    """

    def __init__(self, frames, labels, batch_size: int = 32, shuffle: bool = False, seed: int = 0,
                 drop_last: bool = False, device: str | torch.device = "cpu", rank: int = 0,
                 num_replicas: int = 1, even: bool = True) -> None:
        self.frames = torch.as_tensor(_native(frames)) if not isinstance(frames, torch.Tensor) else frames
        self.labels = torch.as_tensor(_native(labels), dtype=torch.long)
        if self.frames.dim() < 3:
            raise ValueError(f"frames must be [N, T, ...], got shape {tuple(self.frames.shape)}")
        if len(self.frames) != len(self.labels):
            raise ValueError(f"{len(self.frames)} frame samples but {len(self.labels)} labels")
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.batch_size, self.shuffle, self.seed, self.drop_last = batch_size, shuffle, seed, drop_last
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
        self.epoch = 0

    def shard(self, rank: int, num_replicas: int, even: bool = True) -> "FrameLoader":
        """A loader over this one's data that yields only process ``rank``'s part of each epoch.

        Every shard follows the same seeded order of the epoch and takes every ``num_replicas``-th sample of it
        from position ``rank`` on, so the shards together cover the epoch once (``even=False``) or once plus a
        few repeats (``even=True``, what training needs: DDP expects the same number of batches everywhere).
        Batch ``i`` of all shards together holds the samples of a ``batch_size × num_replicas`` batch ``i`` of
        the unsharded order.
        """
        return FrameLoader(self.frames, self.labels, self.batch_size, self.shuffle, self.seed, self.drop_last,
                           self.device, rank=rank, num_replicas=num_replicas, even=even)

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
            order = order[self.rank::self.num_replicas][:size]
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            x = self.frames[idx].to(self.device, torch.float32, non_blocking=True)
            yield x.transpose(0, 1).contiguous(), self.labels[idx].to(self.device)


def time_first_collate(batch):
    """``DataLoader`` collate for ``(frames [T, ...], label)`` samples → ``(x_seq [T, B, ...], y [B])``."""
    xs, ys = zip(*batch)
    x = torch.stack([torch.as_tensor(np.asarray(v), dtype=torch.float32) for v in xs], dim=1)
    return x, torch.as_tensor(np.asarray(ys), dtype=torch.long)

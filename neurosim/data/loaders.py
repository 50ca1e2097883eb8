"""Batching of pre-computed frames into time-first tensors.

Frames are converted from events once (and cached, see :mod:`neurosim.data.frames`), so an epoch does no
event processing. :class:`FrameLoader` shuffles with a generator seeded by ``(seed, epoch)``: the order of an
epoch does not depend on what ran before it, which is what makes resumed training identical to an
uninterrupted run.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["FrameLoader", "time_first_collate"]


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
    """

    def __init__(self, frames, labels, batch_size: int = 32, shuffle: bool = False, seed: int = 0,
                 drop_last: bool = False, device: str | torch.device = "cpu") -> None:
        self.frames = torch.as_tensor(np.asarray(frames)) if not isinstance(frames, torch.Tensor) else frames
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
        if self.frames.dim() < 3:
            raise ValueError(f"frames must be [N, T, ...], got shape {tuple(self.frames.shape)}")
        if len(self.frames) != len(self.labels):
            raise ValueError(f"{len(self.frames)} frame samples but {len(self.labels)} labels")
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.batch_size, self.shuffle, self.seed, self.drop_last = batch_size, shuffle, seed, drop_last
        self.device = torch.device(device)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose shuffle order the next iteration uses."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        n = len(self.labels)
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(n, generator=g)
        else:
            order = torch.arange(n)
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            x = self.frames[idx].to(self.device, torch.float32, non_blocking=True)
            yield x.transpose(0, 1).contiguous(), self.labels[idx].to(self.device)


def time_first_collate(batch):
    """``DataLoader`` collate for ``(frames [T, ...], label)`` samples → ``(x_seq [T, B, ...], y [B])``."""
    xs, ys = zip(*batch)
    x = torch.stack([torch.as_tensor(np.asarray(v), dtype=torch.float32) for v in xs], dim=1)
    return x, torch.as_tensor(np.asarray(ys), dtype=torch.long)

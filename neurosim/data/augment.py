"""Augmentation of cached event frames, batch by batch, reproducibly.

``neurosim train`` converts events to frames once and caches them (:mod:`neurosim.data.frames`), so the event
transforms of :mod:`neurosim.data.transforms` cannot run per epoch there. The usual augmentations of event-camera
training can be done on frames of event counts instead, per sample and the same at every time step, and give the
frames of the events so transformed, framed in the sample's own time bins (``ToFrame(n_time_bins=T)`` sets the bins
from the first and last event; where a transform removes one of those, framing the transformed events would move
every bin edge a little, which the frames keep as they were):

- ``shift``: translate by whole pixels, up to ``shift`` in x and in y, events moved off the sensor lost — the frames
  of the events moved before framing (torchvision's ``RandomCrop(size, padding=shift)`` on frames; NDA's "rolling",
  Li et al., ECCV 2022, with zeros coming in instead of the other edge);
- ``flip``: mirror left-right with probability 1/2 (``RandomFlipLR``; it swaps left- and right-handed gestures, so
  leave it off where the class depends on the side);
- ``drop``: remove each event independently with probability ``drop``: a pixel's count ``c`` becomes
  ``Binomial(c, 1 − drop)``, the frames of the events left (EventDrop's random drop, Gu et al., IJCAI 2021;
  :class:`~neurosim.data.transforms.DropEvent` removes exactly ``round(drop · N)`` of a sample's ``N`` events, the
  same on average);
- ``cutout``: zero a ``cutout × cutout`` square at a random centre, partly off the sensor at the edges (DeVries &
  Taylor 2017; NDA, Li et al., ECCV 2022).

Each sample's draws depend only on ``(seed, epoch, its position in the epoch's order)`` (:func:`draw`), never on
what ran before or on the batch size: a resumed epoch (:meth:`FrameLoader.iter_from`) augments as the uninterrupted
one did, and the shards of a data-parallel run augment each sample as one process would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import torch

from neurosim._splitmix import GOLDEN, mix, mix_one
from neurosim.config import AugmentConfig

__all__ = ["AugmentConfig", "AugmentError", "Draws", "apply", "check_frames", "draw"]

_SALT = 0x6175676D656E74  # "augment": the draws' stream is not the shuffle's, which (seed, epoch) seeds too
_STREAMS = 6  # per position: dy, dx, flip, cutout y, cutout x, drop seed


class AugmentError(ValueError):
    """Frames that an augmentation setting cannot apply to; the message starts with the setting (``augment.shift``)."""


@dataclass(frozen=True)
class Draws:
    """What :func:`draw` picked for each of ``n`` positions of an epoch's order."""

    shift: np.ndarray  # [n, 2] int: (dy, dx), each in [-shift, shift]
    flip: np.ndarray  # [n] bool
    cutout: np.ndarray  # [n, 2] int: the square's centre (y, x), each anywhere on the sensor
    drop_seed: np.ndarray  # [n] uint64: seeds each sample's event drop


def draw(spec: AugmentConfig, positions, seed: int, epoch: int, height: int, width: int) -> Draws:
    """The draws of the samples at ``positions`` of epoch ``epoch``'s order, for frames of ``height × width`` pixels
    (where cutouts are centred): each a fixed function of ``(seed, epoch, position)`` (counter-based, SplitMix64), so
    a sample's augmentation does not depend on which other positions are drawn, in what batches, by which process,
    or on what ran before (any int seed, as the shuffle)."""
    positions = np.asarray(positions, dtype=np.uint64).reshape(-1)
    with np.errstate(over="ignore"):
        key = mix(np.array([int(seed) % 2**64], np.uint64) ^ np.uint64(_SALT))
        key = mix(key + np.uint64(int(epoch) % 2**64) * GOLDEN)
        counters = positions[:, None] * np.uint64(_STREAMS) + np.arange(1, _STREAMS + 1, dtype=np.uint64)
        bits = mix(key + counters * GOLDEN)  # [n, streams]
    unit = (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53  # uniform in [0, 1)

    def below(column: int, m: int) -> np.ndarray:  # uniform integers in [0, m)
        return np.minimum((unit[:, column] * m).astype(np.int64), m - 1)

    return Draws(shift=np.stack([below(0, 2 * spec.shift + 1), below(1, 2 * spec.shift + 1)], axis=1) - spec.shift,
                 flip=(unit[:, 2] < 0.5) & spec.flip,
                 cutout=np.stack([below(3, height), below(4, width)], axis=1),
                 drop_seed=bits[:, 5])


def check_frames(spec: AugmentConfig, shape: tuple[int, ...], dtype: torch.dtype) -> None:
    """Refuse frames ``[N, T, ...]`` that ``spec`` cannot augment, naming the setting.

    Raises:
        AugmentError: a spatial setting (shift, flip, cutout) on frames that are not ``[N, T, P, H, W]`` (e.g.
            audio's ``[N, T, 1, channels]``), a shift that moves every event off the sensor in some draws (not
            smaller than its height or width), a cutout that covers the whole sensor (as large as both), or ``drop``
            on frames that are not event counts (a float dtype).
    """
    spatial = [name for name, on in (("shift", spec.shift), ("flip", spec.flip), ("cutout", spec.cutout)) if on]
    if spatial and len(shape) != 5:
        raise AugmentError(f"augment.{spatial[0]} moves the pixels of frames [N, T, P, H, W] (polarity, height, "
                           f"width); these frames are {list(shape)}; turn it off for this dataset")
    if spatial:
        height, width = shape[-2:]
        if spec.shift >= min(height, width):
            raise AugmentError(f"augment.shift = {spec.shift} moves every event off the {height}×{width} sensor in "
                               f"some draws; it must be below {min(height, width)}")
        if spec.cutout >= max(height, width):
            raise AugmentError(f"augment.cutout = {spec.cutout} covers the whole {height}×{width} sensor in some "
                               f"draws; it must be below {max(height, width)}")
    if spec.drop and dtype.is_floating_point:
        raise AugmentError(f"augment.drop removes events from frames of event counts; these frames are {dtype} "
                           "(not counts, e.g. encoded images); turn it off for them")


_SIGNED = {torch.uint16: torch.int16, torch.uint32: torch.int32, torch.uint64: torch.int64}


def apply(spec: AugmentConfig, x: torch.Tensor, draws: Draws) -> torch.Tensor:
    """Augment a batch ``x [B, T, ...]`` (a CPU tensor of counts, any dtype: the loader augments the frames it
    gathered, before they go to the device, so a run augments alike on every device) with ``draws`` of its ``B``
    samples. Returns ``x`` changed in place (a contiguous copy of it where it is not contiguous)."""
    if not spec.active:
        return x
    if x.device.type != "cpu":
        raise ValueError(f"augment: frames must be on the CPU, got a tensor on {x.device}")
    if len(draws.flip) != len(x):
        raise ValueError(f"augment: {len(draws.flip)} draws for a batch of {len(x)} samples")
    x = x.contiguous()  # (the drop kernel writes through a flat view)
    if spec.drop:
        _drop_events(x.view(len(x), -1).numpy(), 1.0 - spec.drop, draws.drop_seed)
    moved = x.view(_SIGNED[x.dtype]) if x.dtype in _SIGNED else x  # the same bits: torch flips no uint16
    if spec.flip:
        rows = torch.as_tensor(np.flatnonzero(draws.flip))
        moved[rows] = moved[rows].flip(-1)
    if spec.shift:
        height, width = x.shape[-2:]
        for b, (dy, dx) in enumerate(draws.shift.tolist()):
            if dy or dx:
                shifted = torch.zeros_like(moved[b])
                shifted[..., max(dy, 0):height + min(dy, 0), max(dx, 0):width + min(dx, 0)] = \
                    moved[b, ..., max(-dy, 0):height - max(dy, 0), max(-dx, 0):width - max(dx, 0)]
                moved[b] = shifted
    if spec.cutout:
        half = spec.cutout // 2
        for b, (cy, cx) in enumerate(draws.cutout.tolist()):  # rows cy - half … cy - half + cutout - 1, clipped
            moved[b, ..., max(cy - half, 0):max(cy - half + spec.cutout, 0),
                  max(cx - half, 0):max(cx - half + spec.cutout, 0)] = 0
    return x


@numba.njit(cache=True, nogil=True)
def _drop_events(counts, keep, seeds):  # pragma: no cover - compiled
    """Each of a pixel's ``c`` events kept with probability ``keep``: ``counts[b, i]`` becomes Binomial(c, keep),
    sample ``b``'s draws from ``seeds[b]`` alone (the SplitMix64 sequence: one hash per event)."""
    threshold = np.uint64(keep * 2.0**64) if keep < 1.0 else np.uint64(2**64 - 1)
    for b in range(counts.shape[0]):
        state = np.uint64(seeds[b])
        row = counts[b]
        for i in range(row.shape[0]):
            c = row[i]
            if c > 0:
                k = 0
                for _ in range(int(c)):
                    state += np.uint64(0x9E3779B97F4A7C15)  # (GOLDEN: numba takes the literal)
                    if mix_one(state) < threshold:
                        k += 1
                row[i] = k

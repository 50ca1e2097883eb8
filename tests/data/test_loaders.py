"""time_first_collate: samples framed on the fly become time-first batches; samples of different lengths (ToFrame by
time window) are zero-padded at the end on request, and are otherwise an error that names their frame counts."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from neurosim.data.loaders import time_first_collate
from neurosim.data.transforms import ToFrame

SENSOR = (4, 4, 2)  # W, H, P
DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.int8)])


def _recording(duration_us: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ev = np.zeros(50, DTYPE)
    ev["x"], ev["y"], ev["p"] = rng.integers(0, 4, 50), rng.integers(0, 4, 50), rng.integers(0, 2, 50)
    ev["t"] = np.sort(rng.integers(0, duration_us, 50))
    ev["t"][-1] = duration_us - 1
    return ev


def _windowed_samples():
    """Recordings of 20, 35 and 50 ms framed by 7 ms windows: 3, 5 and 8 frames (the reviewer's case)."""
    to_frame = ToFrame(sensor_size=SENSOR, time_window=7_000)
    return [(to_frame(_recording(d, seed)), seed % 2) for seed, d in enumerate((20_000, 35_000, 50_000))]


def test_samples_of_one_length_stack_time_first():
    samples = [(np.full((3, 2, 4, 4), i, np.uint8), i) for i in range(5)]
    x_seq, y = time_first_collate(samples)
    assert x_seq.shape == (3, 5, 2, 4, 4) and x_seq.dtype == torch.float32
    assert y.tolist() == [0, 1, 2, 3, 4] and y.dtype == torch.long
    assert torch.equal(x_seq[:, 2], torch.full((3, 2, 4, 4), 2.0))
    assert torch.equal(time_first_collate(samples, pad=True)[0], x_seq)  # nothing to pad: the same batch


def test_samples_of_different_lengths_are_an_error_that_names_the_counts_and_the_option():
    samples = _windowed_samples()
    counts = [s[0].shape[0] for s in samples]
    assert len(set(counts)) == 3  # the set-up: one frame per window, so the lengths differ
    with pytest.raises(ValueError) as info:  # was torch's bare "stack expects each tensor to be equal size"
        time_first_collate(samples)
    message = str(info.value)
    assert f"({', '.join(map(str, counts))})" in message
    assert "pad=True" in message and "n_time_bins" in message


def test_pad_zero_pads_every_sample_at_the_end_to_the_longest():
    samples = _windowed_samples()
    collate = functools.partial(time_first_collate, pad=True)  # what a DataLoader's collate_fn gets
    x_seq, y = collate(samples)
    longest = max(s[0].shape[0] for s in samples)
    assert x_seq.shape == (longest, 3, 2, 4, 4)
    for b, (frames, label) in enumerate(samples):
        t = frames.shape[0]
        assert torch.equal(x_seq[:t, b], torch.as_tensor(frames, dtype=torch.float32))  # the sample, unchanged
        assert not x_seq[t:, b].any()  # then zero input
        assert y[b] == label
    loader = torch.utils.data.DataLoader(samples, batch_size=3, collate_fn=collate)
    assert torch.equal(next(iter(loader))[0], x_seq)


def test_other_malformed_batches_name_the_problem():
    with pytest.raises(ValueError, match="batch is empty"):
        time_first_collate([])
    with pytest.raises(ValueError, match=r"sample 1 has frames of shape \(\)"):
        time_first_collate([(np.zeros((2, 3)), 0), (np.float32(1.0), 1)])
    with pytest.raises(ValueError, match=r"frame shapes after T are \(2, 4, 4\), \(2, 5, 5\).*sensor size"):
        time_first_collate([(np.zeros((2, 2, 4, 4)), 0), (np.zeros((2, 2, 5, 5)), 1)], pad=True)


def test_tensor_samples_keep_their_values():
    a, b = torch.arange(6.0).reshape(2, 3), torch.arange(3.0).reshape(1, 3).double()
    x_seq, _ = time_first_collate([(a, 0), (b, 1)], pad=True)
    assert torch.equal(x_seq[:, 0], a) and torch.equal(x_seq[:1, 1], b.float()) and not x_seq[1:, 1].any()


def _cached(tmp_path):
    from neurosim.data.frames import cached_frames

    rng = np.random.default_rng(0)
    return cached_frames({"dataset": "d"}, lambda: (rng.integers(0, 9, (50, 3, 2, 34, 34), dtype=np.uint8),
                                                    np.arange(50) % 10), cache_dir=tmp_path)


def test_a_loader_of_cached_frames_sent_to_another_process_carries_their_file_not_their_bytes(tmp_path):
    """(torch pickles a tensor's bytes: a loader sent to a spawned process carried the whole split.) What
    multiprocessing sends (ForkingPickler) carries the file; pickle and torch.save keep the values, as for any
    frames."""
    import pickle
    from multiprocessing.reduction import ForkingPickler

    from neurosim.data.loaders import FrameLoader

    frames, labels = _cached(tmp_path)
    loader = FrameLoader(frames, labels, batch_size=16, shuffle=True, seed=3)
    for sent in (loader, loader.shard(1, 2)):
        sent.set_epoch(2)
        data = bytes(ForkingPickler.dumps(sent))
        assert len(data) < 3000 < frames.nbytes // 100
        by_value = pickle.dumps(sent)
        assert len(by_value) > frames.nbytes
        for got in (pickle.loads(data), pickle.loads(by_value)):
            assert got.frames.data_ptr() != sent.frames.data_ptr()  # its own mapping of the file, or copy
            for (x, y), (x0, y0) in zip(got, sent, strict=True):
                assert torch.equal(x, x0) and torch.equal(y, y0)
    in_memory = FrameLoader(np.array(frames), labels, batch_size=16)  # frames of no file: their bytes, as before
    assert len(ForkingPickler.dumps(in_memory)) > frames.nbytes
    assert torch.equal(pickle.loads(ForkingPickler.dumps(in_memory)).frames, in_memory.frames)


@pytest.mark.parametrize("cached", [True, False], ids=["cached", "in-memory"])
def test_a_loader_whose_frames_were_changed_shards_and_pickles_the_changed_frames(tmp_path, cached):
    """(shard() and pickling used the array the loader was made with: after loader.frames = ..., shards and
    pickled copies silently got the original frames; a change made in place was dropped by a pickled loader.)"""
    import pickle
    from multiprocessing.reduction import ForkingPickler

    from neurosim.data.loaders import FrameLoader

    frames, labels = _cached(tmp_path)
    frames = frames if cached else np.array(frames)
    loader = FrameLoader(frames, labels, batch_size=16)
    loader.frames = loader.frames[:, :1].contiguous()  # e.g. the first time step only
    first = loader.frames.clone()
    for sent in (loader.shard(0, 2), pickle.loads(pickle.dumps(loader)), pickle.loads(ForkingPickler.dumps(loader))):
        assert torch.equal(sent.frames, first)
    for change in (lambda f: f[:, :1], lambda f: f.view(torch.int8), lambda f: f.transpose(3, 4)):
        loader.frames = change(torch.as_tensor(frames))  # views of the same memory, but not the same frames
        assert torch.equal(pickle.loads(pickle.dumps(loader)).frames, loader.frames)
        assert torch.equal(loader.shard(1, 2).frames, loader.frames)
    binarised = FrameLoader(frames, labels, batch_size=16)
    binarised.frames.clamp_(max=1)  # in place: the loader's own copy-on-write pages
    assert pickle.loads(pickle.dumps(binarised)).frames.max() == 1


# ---------------------------------------------------------------- FrameLoader.iter_from: a resumed epoch

class _Reading:
    """Frames that note the size of every batch read from them."""

    def __init__(self, frames):
        self.frames, self.read = frames, []

    def __getitem__(self, idx):
        self.read.append(len(idx))
        return self.frames[idx]


@pytest.mark.parametrize("shard", [None, (1, 2)])
def test_iter_from_continues_the_epochs_order_without_reading_the_batches_before(shard):
    from neurosim.data import FrameLoader

    frames = torch.arange(23 * 2 * 3, dtype=torch.float32).reshape(23, 2, 3)  # [N, T, F]
    loader = FrameLoader(frames, torch.arange(23) % 4, batch_size=4, shuffle=True, seed=7)
    if shard:
        loader = loader.shard(*shard)
    loader.set_epoch(3)
    whole = list(loader)
    loader.frames = _Reading(loader.frames)
    tail = list(loader.iter_from(2))
    assert loader.frames.read == [len(y) for _, y in whole[2:]]  # the two batches before were never read
    assert len(tail) == len(whole) - 2
    for (xa, ya), (xb, yb) in zip(whole[2:], tail):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert list(loader.iter_from(len(loader))) == []
    for bad in (-1, len(loader) + 1, 1.0, True):
        with pytest.raises(ValueError, match=rf"iter_from: batch must be a whole number in \[0, {len(loader)}\]"):
            loader.iter_from(bad)


class _FloatBytes:
    """Counts the bytes of the float32 tensors the torch ops run inside the block create: their outputs, except
    those that are an input written in place (``copy_``)."""

    def __init__(self) -> None:
        from torch.utils._python_dispatch import TorchDispatchMode

        counter = self

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                given = {a.untyped_storage().data_ptr() for a in [*args, *(kwargs or {}).values()]
                         if isinstance(a, torch.Tensor)}
                for t in out if isinstance(out, (tuple, list)) else (out,):
                    if isinstance(t, torch.Tensor) and t.dtype == torch.float32 and \
                            t.untyped_storage().data_ptr() not in given:
                        counter.bytes += t.numel() * t.element_size()
                return out

        self.bytes, self._mode = 0, Mode()

    def __enter__(self) -> "_FloatBytes":
        self._mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._mode.__exit__(*exc)


def test_a_batch_of_compact_frames_is_made_float32_once_and_the_loader_keeps_no_copy_of_it():
    """Long sequences: a batch's frames are O(T), so the loader makes one float32 copy (time-first) of the compact
    cached counts, and keeps no reference to it while the caller trains on the batch. It made two (float, then a
    transposed float copy) and held the first until the next batch."""
    from neurosim.data import FrameLoader

    frames = torch.randint(0, 3, (8, 50, 2, 6, 6), dtype=torch.uint8)  # [N, T, P, H, W] event counts
    loader = FrameLoader(frames, torch.arange(8) % 2, batch_size=4, shuffle=True)
    stream = iter(loader)
    with _FloatBytes() as made:
        x_seq, y = next(stream)
    assert x_seq.shape == (50, 4, 2, 6, 6) and x_seq.dtype == torch.float32 and x_seq.is_contiguous()
    assert torch.equal(x_seq, frames[_epoch_order(loader, 4)].transpose(0, 1).float())
    assert made.bytes == x_seq.nbytes  # one float32 batch
    del x_seq
    held = sum(v.nbytes for v in stream.gi_frame.f_locals.values() if isinstance(v, torch.Tensor))
    assert held < frames[0].nbytes  # the epoch's order, not a batch


def _epoch_order(loader, n: int) -> torch.Tensor:
    """The first ``n`` samples of ``loader``'s epoch order (its seeded shuffle)."""
    g = torch.Generator().manual_seed((loader.seed * 100_003 + loader.epoch) % 2**64)
    return torch.randperm(len(loader.labels), generator=g)[:n]


@pytest.mark.parametrize("augment", [False, True])
def test_compact_batches_hold_the_float_batches_values_in_the_frames_own_dtype(augment):
    """Long sequences: ``iter_from(..., compact=True)`` yields a cached split's uint8 counts as they are (a quarter of
    the float32 batch's bytes), for a consumer that converts them a step or a chunk at a time; the same samples,
    order and augmentation as the float32 batches, which plain iteration still gives."""
    from neurosim.config import AugmentConfig
    from neurosim.data import FrameLoader

    frames = torch.randint(0, 4, (10, 7, 2, 6, 6), dtype=torch.uint8)  # [N, T, P, H, W] event counts
    spec = AugmentConfig(shift=2, flip=True, drop=0.3) if augment else None
    loader = FrameLoader(frames, torch.arange(10) % 3, batch_size=4, shuffle=True, seed=5, augment=spec)
    loader.set_epoch(2)
    floats = list(loader)
    with _FloatBytes() as made:
        compact = list(loader.iter_from(0, compact=True))
    assert made.bytes == 0  # no float32 copy of any batch
    assert [x.dtype for x, _ in floats] == [torch.float32] * 3 and [x.dtype for x, _ in compact] == [torch.uint8] * 3
    for (xf, yf), (xc, yc) in zip(floats, compact):
        assert xc.shape == xf.shape and torch.equal(xc.float(), xf) and torch.equal(yc, yf)
    assert [x for x, _ in loader.iter_from(1, compact=True)][0].dtype == torch.uint8  # a resumed epoch too


def test_compact_batches_of_float_frames_are_float32_and_compact_must_be_a_bool():
    from neurosim.data import FrameLoader

    frames = torch.rand(4, 3, 5, dtype=torch.float64)  # encoded images, not counts
    loader = FrameLoader(frames, torch.arange(4), batch_size=2)
    x_seq, _ = next(loader.iter_from(0, compact=True))
    assert x_seq.dtype == torch.float32 and torch.equal(x_seq, frames[:2].transpose(0, 1).float())
    with pytest.raises(TypeError, match="iter_from: compact must be True or False, got 'yes'"):
        loader.iter_from(0, compact="yes")

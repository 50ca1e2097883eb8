"""Events → frames and the frame cache (neurosim.data.frames): the same frames as stacking every sample's ToFrame
output and casting to the smallest dtype, built with the split's frames in memory once."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from neurosim.data.frames import events_to_frames
from neurosim.data.transforms import ToFrame

SENSOR = (34, 34, 2)  # W, H, P: N-MNIST's sensor
DTYPE = np.dtype([("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])


class Recordings:
    """``n`` N-MNIST-like recordings made on demand (as a dataset reads them from disk); sample ``hot`` puts half
    of its events on one pixel (counts past 255: uint16 frames)."""

    def __init__(self, n: int, events: int = 2000, hot: int | None = None) -> None:
        self.n, self.events, self.hot = n, events, hot

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        rng = np.random.default_rng(i)
        n = self.events * (20 if i == self.hot else 1)
        ev = np.zeros(n, DTYPE)
        ev["x"], ev["y"], ev["p"] = rng.integers(0, 34, n), rng.integers(0, 34, n), rng.integers(0, 2, n)
        ev["t"] = np.sort(rng.integers(0, 300_000, n))
        if i == self.hot:
            ev["x"][: n // 2], ev["y"][: n // 2] = 3, 4
        return ev, i % 10


def _stacked(dataset, time_steps: int) -> np.ndarray:
    """The reference: every sample's ToFrame output stacked, cast to the smallest dtype that holds the largest
    count (what events_to_frames returned when it built the frames that way)."""
    to_frame = ToFrame(sensor_size=SENSOR, n_time_bins=time_steps)
    stacked = np.stack([to_frame(dataset[i][0]) for i in range(len(dataset))])
    top = int(stacked.max(initial=0))
    return stacked.astype(np.uint8 if top <= 255 else np.uint16 if top <= 65535 else np.int32)


@pytest.mark.parametrize("hot", [None, 0, 7], ids=["uint8", "uint16-from-the-first", "uint16-from-sample-7"])
def test_frames_are_the_stacked_toframe_outputs_in_the_smallest_dtype_byte_for_byte(hot):
    data = Recordings(12, hot=hot)
    frames, labels = events_to_frames(data, SENSOR, 5, progress=False)
    expected = _stacked(data, 5)
    assert frames.dtype == expected.dtype == (np.uint8 if hot is None else np.uint16)
    assert frames.shape == expected.shape == (12, 5, 2, 34, 34) and frames.tobytes() == expected.tobytes()
    assert labels.dtype == np.int64 and labels.tolist() == [i % 10 for i in range(12)]


def test_frames_are_built_in_one_array_not_a_list_a_stack_and_a_cast():
    """The frames in memory once: the int16 per-sample list, np.stack's copy and astype's copy peaked at ~5x the
    split's frames (7 GB for N-MNIST's training split)."""
    data = Recordings(400)
    tracemalloc.start()
    try:
        frames, _ = events_to_frames(data, SENSOR, 10, progress=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert frames.dtype == np.uint8 and frames.nbytes == 400 * 10 * 2 * 34 * 34  # 9.2 MB
    assert peak < 1.25 * frames.nbytes + 3e6, f"peak {peak / 1e6:.1f} MB for {frames.nbytes / 1e6:.1f} MB of frames"


def test_a_sample_of_another_shape_is_an_error_naming_it(monkeypatch):
    """(np.stack refused it without naming the sample; the array filled in place must not broadcast it.)"""
    import neurosim.data.frames as frames_module

    shapes = {0: (3, 2, 34, 34), 1: (3, 1, 34, 34)}  # a transform that infers the sensor from the events (tonic's)
    monkeypatch.setattr(frames_module, "_to_frame", lambda sensor_size, time_steps: lambda events: np.ones(
        shapes[int(events)], np.int16))
    with pytest.raises(ValueError, match=r"sample 1: ToFrame gave frames of shape \(3, 1, 34, 34\), sample 0 "
                                         r"\(3, 2, 34, 34\): every sample of a split needs the same sensor_size"):
        events_to_frames([(0, 0), (1, 1)], SENSOR, 3, progress=False)
    with pytest.raises(ValueError, match="the dataset is empty"):
        events_to_frames([], SENSOR, 3, progress=False)

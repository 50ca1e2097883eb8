"""neurosim.data.transforms: the same output as tonic 1.7.0 on random event streams, documented differences, errors.

Every comparison runs tonic's own transform on the same input (a copy: tonic's ToFrame writes into it). Random
transforms are compared draw for draw: numpy's global RNG seeded before each of the two calls (``seed=None``), and
a ``np.random.RandomState`` with the same seed.
"""

from __future__ import annotations

import numpy as np
import pytest
import tonic
import tonic.transforms as tt
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import neurosim.data.transforms as nt
from neurosim.data import frames as frames_module
from neurosim.data.dvs import EVENT_DTYPE

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# random streams often span fewer time units than n_time_bins: ToFrame then warns that its frames are empty
SHORT_SPANS = pytest.mark.filterwarnings("ignore:ToFrame. the events span")

# Four layouts: tonic's N-MNIST dtype (int64 x4); DVSGesture-like packed small ints with a bool polarity (``t`` at
# byte offset 5: unaligned); float timestamps first with unsigned coordinates; big-endian fields (numba reads
# native-endian copies).
DTYPES = {
    "nmnist": EVENT_DTYPE,
    "packed_bool_p": np.dtype([("x", "<i2"), ("y", "<i2"), ("p", "?"), ("t", "<i8")]),
    "float_t": np.dtype([("t", "<f8"), ("x", "<u2"), ("y", "<u2"), ("p", "<i1")]),
    "big_endian": np.dtype([("x", ">i4"), ("y", ">i4"), ("t", ">i8"), ("p", ">i2")]),
}
AUDIO_DTYPE = np.dtype([("t", "<i8"), ("x", "<i8"), ("p", "<i8")])


def make_events(x, y, t, p, dtype=EVENT_DTYPE) -> np.ndarray:
    ev = np.zeros(len(t), dtype=dtype)
    for name, values in (("x", x), ("y", y), ("t", t), ("p", p)):
        if name in dtype.names:
            ev[name] = values
    return ev


@st.composite
def streams(draw, min_size=0, max_size=60, dtypes=tuple(DTYPES), polarities=(2,), sort=True, audio=False):
    """``(events, sensor_size)``: a random event stream on a small sensor, timestamps sorted, many ties."""
    width = draw(st.integers(1, 7))
    height = 1 if audio else draw(st.integers(1, 7))
    n_pol = draw(st.sampled_from(polarities))
    n = draw(st.integers(min_size, max_size))
    dtype = AUDIO_DTYPE if audio else DTYPES[draw(st.sampled_from(dtypes))]
    t_max = draw(st.sampled_from([0, 3, 50, 10_000, 1_000_000]))
    t0 = draw(st.sampled_from([0, 0, 7, 20_000]))
    ints = st.lists(st.integers(0, 2**31), min_size=n, max_size=n)
    t = t0 + np.asarray(draw(ints), dtype=np.int64) % (t_max + 1)
    if sort:
        t = np.sort(t)
    x = np.asarray(draw(ints), dtype=np.int64) % width
    y = np.asarray(draw(ints), dtype=np.int64) % height
    p = np.asarray(draw(ints), dtype=np.int64) % n_pol
    return make_events(x, y, t, p, dtype), (width, height, n_pol)


def few_windows(events, params) -> bool:
    """Keep ``time_window`` cases to at most a few hundred frames (tiny windows on long streams need GBs)."""
    if "time_window" not in params or len(events) == 0:
        return True
    return (events["t"].max() - events["t"].min()) / (params["time_window"] - params["overlap"]) < 300


def assert_same(ours, theirs):
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.dtype == theirs.dtype
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)


def stable_sorted(events):
    return events[np.argsort(events["t"], kind="stable")]


def frame_params():
    overlap_frac = st.sampled_from([0, 0.0, 0.25, 0.5])
    return st.one_of(
        st.fixed_dictionaries({"n_time_bins": st.integers(1, 12), "overlap": overlap_frac}),
        st.fixed_dictionaries({"n_event_bins": st.integers(1, 12), "overlap": overlap_frac}),
        st.fixed_dictionaries({"time_window": st.sampled_from([1, 5, 1000, 50_000, 2.5]),
                               "overlap": st.sampled_from([0, 0.5, -3, -1000]),  # negative: gaps between frames
                               "include_incomplete": st.booleans()}),
        st.fixed_dictionaries({"event_count": st.integers(1, 30), "overlap": st.sampled_from([0, 0, -2, -2.5]),
                               "include_incomplete": st.booleans()}),
        st.fixed_dictionaries({"event_count": st.integers(5, 30), "overlap": st.integers(1, 4),
                               "include_incomplete": st.booleans()}),
    )


# ------------------------------------------------------------------------------------------------------- ToFrame


@SHORT_SPANS
@SETTINGS
@given(data=streams(min_size=1, polarities=(1, 2)), params=frame_params())
def test_to_frame_equals_tonic(data, params):
    events, size = data
    assume(few_windows(events, params))
    before = events.copy()
    ours = nt.ToFrame(sensor_size=size, **params)(events)
    theirs = tt.ToFrame(sensor_size=size, **params)(events.copy())
    assert_same(ours, theirs)
    assert_same(events, before)  # never modifies its input (tonic writes p = 0 when P == 1)


@SHORT_SPANS
@SETTINGS
@given(data=streams(min_size=1), params=frame_params())
def test_to_frame_infers_the_sensor_size_as_tonic(data, params):
    events, _ = data
    assume(few_windows(events, params))
    assert_same(nt.ToFrame(sensor_size=None, **params)(events), tt.ToFrame(sensor_size=None, **params)(events.copy()))


@SHORT_SPANS
@SETTINGS
@given(data=streams(min_size=1, audio=True), params=frame_params())
def test_to_frame_audio_events_equal_tonic(data, params):
    events, size = data
    assume(few_windows(events, params))
    ours = nt.ToFrame(sensor_size=size, **params)(events)
    assert ours.ndim == 3 and ours.shape[1:] == (size[2], size[0])
    assert_same(ours, tt.ToFrame(sensor_size=size, **params)(events.copy()))


@SHORT_SPANS
@SETTINGS
@given(data=streams(min_size=2, sort=False), params=frame_params())
def test_to_frame_sorts_unsorted_input(data, params):
    events, size = data
    assume(few_windows(events, params))
    assert_same(nt.ToFrame(sensor_size=size, **params)(events),
                tt.ToFrame(sensor_size=size, **params)(stable_sorted(events)))


@SHORT_SPANS
@pytest.mark.parametrize("t_dtype", ["<i8", "<i4", "<u8", "<u4", "<f8", "<f4"])
def test_to_frame_equals_tonic_for_every_timestamp_type_and_fixed_spans(t_dtype):
    """Seeded sweep the hypothesis tests above leave out: int32, unsigned and float32 timestamps (from 0, 7 or 2**40
    where the type holds it), start_time / end_time before, inside and after the events, ties and bin edges. tonic
    gets unsigned timestamps as int64 where its window count wraps around (the documented difference)."""
    rng = np.random.default_rng(int.from_bytes(t_dtype.encode(), "little"))
    big = np.dtype(t_dtype).itemsize == 8
    for _ in range(15):
        width, height, n_pol = int(rng.integers(1, 6)), int(rng.integers(1, 6)), int(rng.choice([1, 2]))
        n = int(rng.choice([1, 2, rng.integers(3, 80)]))
        t0 = int(rng.choice([0, 7, 2**40 if big else 1000]))
        ticks = rng.integers(0, 6, n) * 10 if rng.random() < 0.3 else rng.integers(0, rng.choice([1, 60, 5000]), n)
        dtype = np.dtype([("t", t_dtype), ("x", "<u2"), ("y", "<i2"), ("p", "?" if n_pol == 2 else "<i1")])
        p = rng.integers(0, 2, n) if n_pol == 2 else np.full(n, rng.integers(0, 2))
        events = make_events(rng.integers(0, width, n), rng.integers(0, height, n), t0 + np.sort(ticks), p, dtype)
        signed = events.astype([(f, "<i8" if f == "t" and t_dtype[1] == "u" else dtype[f]) for f in dtype.names])
        cases = [{"n_time_bins": int(rng.integers(1, 8)), "overlap": float(rng.choice([0, 0.25]))},
                 {"n_event_bins": int(rng.integers(1, 8)), "overlap": float(rng.choice([0, 0.5]))},
                 {"event_count": int(rng.integers(2, 20)), "overlap": int(rng.choice([1, -3])),
                  "include_incomplete": bool(rng.random() < 0.5)}]
        for window in (10, 25.5, 1000):
            for start, end in ((None, None), (t0 - 5, t0 + 57), (t0 + 30, None), (None, t0 + 20), (t0 + 9000, None)):
                if t0 - 5 < 0 and start == t0 - 5 and t_dtype[1] == "u":
                    start = t0
                cases.append({"time_window": window, "overlap": float(rng.choice([0, 5, -7])), "start_time": start,
                              "end_time": end, "include_incomplete": bool(rng.random() < 0.5)})
        for params in cases:
            for size in ((width, height, n_pol), None):
                ours = nt.ToFrame(sensor_size=size, **params)(events)
                assert_same(ours, tt.ToFrame(sensor_size=size, **params)(signed.copy()))


def test_to_frame_on_empty_input_has_the_non_empty_layout():
    size = (5, 3, 2)  # W != H shows tonic's transposed (T, P, W, H) zeros
    empty = np.zeros(0, EVENT_DTYPE)
    ours = nt.ToFrame(sensor_size=size, n_time_bins=4)(empty)
    assert ours.shape == (4, 2, 3, 5) and ours.dtype == np.int16 and not ours.any()
    theirs = tt.ToFrame(sensor_size=size, n_time_bins=4)(empty)
    assert theirs.shape == (4, 2, 5, 3) and theirs.dtype == np.float64  # the documented difference
    one = make_events([4], [2], [10], [1])
    with pytest.warns(UserWarning, match="span 0 time units"):
        assert nt.ToFrame(sensor_size=size, n_time_bins=4)(one).shape == ours.shape
    assert nt.ToFrame(sensor_size=size, n_event_bins=3)(empty).shape == (3, 2, 3, 5)
    assert nt.ToFrame(sensor_size=size, event_count=10)(empty).shape == (1, 2, 3, 5)
    assert nt.ToFrame(sensor_size=size, time_window=10)(empty).shape == (1, 2, 3, 5)
    # with start and end given, the number of windows does not depend on the events
    tw = nt.ToFrame(sensor_size=size, time_window=10, start_time=0, end_time=100)
    assert tw(empty).shape[0] == tw(make_events([0, 1], [0, 1], [3, 50], [0, 1])).shape[0] == 10
    assert nt.ToFrame(sensor_size=(5, 1, 2), n_time_bins=4)(np.zeros(0, AUDIO_DTYPE)).shape == (4, 2, 5)
    with pytest.raises(ValueError, match="cannot infer sensor_size"):
        nt.ToFrame(sensor_size=None, n_time_bins=4)(empty)


def test_to_frame_n_time_bins_keeps_tonics_binning():
    """Bins of (t[-1] - t[0]) // T from t[0]: the last timestamp is in no frame; a single event gives zeros."""
    events = make_events([0, 1, 2, 3], [0, 0, 0, 0], [0, 10, 19, 20], [0, 0, 1, 1])
    frames = nt.ToFrame(sensor_size=(4, 1, 2), n_time_bins=2)(events)
    assert frames.sum() == 3 and frames[1, 1, 0, 3] == 0
    with pytest.warns(UserWarning, match=r"span 0 time units, less than n_time_bins = 2.*frames are empty"):
        assert not nt.ToFrame(sensor_size=(4, 1, 2), n_time_bins=2)(events[:1]).any()
    # the exact alternative: a fixed span with time_window
    exact = nt.ToFrame(sensor_size=(4, 1, 2), time_window=10.5, start_time=0, end_time=21)(events)
    assert exact.shape[0] == 2 and exact.sum() == 4


def test_frames_module_uses_the_fast_to_frame():
    to_frame = frames_module._to_frame((34, 34, 2), 10)
    assert isinstance(to_frame, nt.ToFrame)
    rng = np.random.default_rng(0)
    events = make_events(rng.integers(0, 34, 500), rng.integers(0, 34, 500), np.sort(rng.integers(0, 300_000, 500)),
                         rng.integers(0, 2, 500))
    assert_same(to_frame(events), tt.ToFrame(sensor_size=(34, 34, 2), n_time_bins=10)(events.copy()))


def test_strided_and_read_only_inputs():
    rng = np.random.default_rng(2)
    n = 3000
    events = make_events(rng.integers(0, 20, n), rng.integers(0, 20, n), np.sort(rng.integers(0, 10**5, n)),
                         rng.integers(0, 2, n))
    for view in (events[::3], events[1::2].copy()):  # a strided view; a contiguous copy; both read-only
        view.flags.writeable = False
        for ours, theirs in ((nt.ToFrame((20, 20, 2), n_time_bins=7), tt.ToFrame(sensor_size=(20, 20, 2),
                                                                                n_time_bins=7)),
                             (nt.Denoise(500, tonic_compatible=True), tt.Denoise(500)),
                             (nt.RefractoryPeriod(500, tonic_compatible=True), tt.RefractoryPeriod(500)),
                             (nt.Downsample(spatial_factor=0.5), tt.Downsample(spatial_factor=0.5)),
                             (nt.CenterCrop((20, 20, 2), 9), tt.CenterCrop((20, 20, 2), 9)),
                             (nt.ToVoxelGrid((20, 20, 2), 5), tt.ToVoxelGrid((20, 20, 2), 5))):
            assert_same(ours(view), theirs(view.copy()))


def test_to_frame_rejects_events_outside_the_sensor():
    events = make_events([0, 5], [0, 0], [0, 10], [0, 1])
    with pytest.raises(ValueError, match=r"event 1 \(x=5, y=0, p=1\) is outside sensor_size \(5, 5, 2\)"):
        nt.ToFrame(sensor_size=(5, 5, 2), event_count=2)(events)
    with pytest.raises(ValueError, match="outside sensor_size"):  # p = -1: tonic puts it in channel 1
        nt.ToFrame(sensor_size=(6, 6, 2), event_count=2)(make_events([0, 1], [0, 0], [0, 10], [-1, 1]))
    with pytest.raises(ValueError, match="1 polarity but the events have several"):
        nt.ToFrame(sensor_size=(6, 6, 1), n_time_bins=2)(make_events([0, 1], [0, 0], [0, 10], [0, 1]))


def test_to_frame_checks_coordinates_of_unsorted_input_after_sorting():
    # x = 9 is outside the sensor, but once sorted it is the last event, which n_time_bins leaves out (as tonic)
    events = make_events([0, 0, 9], [0, 0, 0], [10, 0, 20], [1, 0, 1])
    ours = nt.ToFrame(sensor_size=(5, 5, 2), n_time_bins=2)(events)
    assert_same(ours, tt.ToFrame(sensor_size=(5, 5, 2), n_time_bins=2)(stable_sorted(events)))
    assert ours.sum() == 2


@pytest.mark.parametrize("layout", ["nmnist", "big_endian", "audio"])  # record kernel, field kernel, no y
def test_to_frame_counts_past_int16_raise_instead_of_wrapping(layout):
    """tonic's int16 counts wrap: 32,768 events of one pixel count -32,768, 65,537 count 1."""
    dtype = AUDIO_DTYPE if layout == "audio" else DTYPES[layout]
    size = (3, 1, 2) if layout == "audio" else (3, 4, 2)
    where = "x=1, p=1" if layout == "audio" else "x=1, y=2, p=1"

    def hot_pixel(n):
        return make_events(np.ones(n), np.full(n, 2), np.arange(n), np.ones(n), dtype)

    full = nt.ToFrame(sensor_size=size, event_count=32_767)(hot_pixel(32_767))
    assert full.max() == 32_767 and full.sum() == 32_767
    for n in (32_768, 65_537):
        events = hot_pixel(n)
        with pytest.raises(ValueError, match=rf"frame 0 counts {n} events at pixel {where}, more than its int16"):
            nt.ToFrame(sensor_size=size, event_count=n)(events)
        with pytest.raises(ValueError, match=rf"frame 0 counts {n} events"):  # unsorted: counted once sorted
            nt.ToFrame(sensor_size=size, event_count=n)(events[::-1])
    later = hot_pixel(100 + 32_768 + 1)
    later["t"] = np.concatenate([np.zeros(100), np.full(32_768, 1500), [2500]])
    with pytest.raises(ValueError, match="frame 1 counts 32768 events"):  # frames [0, 1000) and [1000, 2000)
        nt.ToFrame(sensor_size=size, time_window=1000)(later)


def test_errors_name_the_event_by_its_index_in_the_callers_array():
    # event 0 (x = 9) is outside the 4×3 sensor; the input is in reverse time order (event 0 is the last once sorted)
    events = make_events([9, 1, 2, 3, 1], [0, 1, 2, 1, 0], [50, 40, 30, 20, 10], [0, 1, 0, 1, 0])
    with pytest.raises(ValueError, match=r"ToFrame: event 0 \(x=9, y=0, p=0\) is outside"):
        nt.ToFrame(sensor_size=(4, 3, 2), time_window=100)(events)
    with pytest.raises(ValueError, match=r"ToVoxelGrid: event 0 \(x=9, y=0\) is outside"):
        nt.ToVoxelGrid(sensor_size=(4, 3, 2), n_time_bins=2)(events)
    with pytest.raises(ValueError, match=r"ToFrame: event 4 \(x=9"):  # sorted input: the index as given
        nt.ToFrame(sensor_size=(4, 3, 2), time_window=100)(events[::-1])


def test_to_frame_refuses_timestamps_whose_windows_pass_int64():
    """Near 2**63, numpy's window sums wrap around (int64) or turn to float64 (uint64): tonic's frames are empty."""
    top = np.iinfo(np.int64).max
    near = make_events([0, 1, 2, 3], [0, 1, 2, 1], [top - 40, top - 30, top - 20, top - 1], [0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"reach 9223372036854775867, past int64's range.*subtract the first"):
        nt.ToFrame(sensor_size=(4, 3, 2), time_window=100)(near)  # tonic: one empty frame
    for params in ({"time_window": 10}, {"n_time_bins": 2}, {"event_count": 2}):  # windows that fit are binned
        assert_same(nt.ToFrame(sensor_size=(4, 3, 2), **params)(near),
                    tt.ToFrame(sensor_size=(4, 3, 2), **params)(near.copy()))
    unsigned = np.dtype([("x", "<i8"), ("y", "<i8"), ("t", "<u8"), ("p", "<i8")])
    above = make_events([0, 1, 2, 3], [0, 0, 0, 0], np.array([10, 5000, 9000, 20_000], np.uint64) + np.uint64(2**63),
                        [0, 1, 0, 1], unsigned)
    for params in ({"time_window": 1000}, {"n_time_bins": 2}):
        with pytest.raises(ValueError, match="past int64's range"):
            nt.ToFrame(sensor_size=(4, 3, 2), **params)(above)  # tonic, time_window: 19 empty frames
    shifted = above.copy()
    shifted["t"] -= shifted["t"][0]
    assert nt.ToFrame(sensor_size=(4, 3, 2), time_window=1000, include_incomplete=True)(shifted).sum() == 4
    epoch = above.copy()  # µs since the epoch as uint64 (AEDAT4): fine
    epoch["t"] = np.array([1605537493718345, 1605537493718348, 1605537493719000, 1605537494308262], np.uint64)
    assert_same(nt.ToFrame(sensor_size=(4, 3, 2), time_window=1000)(epoch),
                tt.ToFrame(sensor_size=(4, 3, 2), time_window=1000)(epoch.copy()))


@pytest.mark.parametrize("t_dtype", ["<u8", "<u4", "<u2"])
def test_to_frame_time_window_longer_than_unsigned_recording_gives_one_frame(t_dtype):
    """AEDAT4 timestamps are uint64: under numpy 2, tonic's ``duration - time_window`` wraps around when the recording
    is shorter than the window (uint64 - int stays uint64), asking for ~1e13 frames (MemoryError); one frame, as for
    signed timestamps."""
    unsigned = np.dtype([("t", t_dtype), ("x", "<u2"), ("y", "<u2"), ("p", "?")])
    signed = np.dtype([("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("p", "?")])
    t = [1000, 1200, 1500, 1500, 3000]
    events = make_events([0, 1, 2, 3, 1], [0, 2, 1, 1, 0], t, [0, 1, 1, 0, 1], unsigned)
    as_signed = events.astype(signed)
    for params in ({"time_window": 5000}, {"time_window": 2001, "include_incomplete": True},
                   {"time_window": 3000, "overlap": 1000}, {"time_window": 500, "end_time": 900},
                   {"time_window": 500, "start_time": 3500}, {"time_window": 700, "start_time": 500, "end_time": 1000}):
        ours = nt.ToFrame(sensor_size=(4, 3, 2), **params)(events)
        assert_same(ours, nt.ToFrame(sensor_size=(4, 3, 2), **params)(as_signed))
        assert_same(ours, tt.ToFrame(sensor_size=(4, 3, 2), **params)(as_signed.copy()))
    assert nt.ToFrame(sensor_size=(4, 3, 2), time_window=5000)(events).sum() == 5


def test_to_frame_time_window_on_a_real_aedat4_recording_equals_tonic(real_file):
    """A real DVXplorer recording (uint64 µs since the epoch, 0.59 s) in windows shorter and longer than it."""
    tonic_io = pytest.importorskip("tonic.io")
    pytest.importorskip("aedat", reason="reading AEDAT4 needs the aedat package")
    events = tonic_io.read_aedat4(str(real_file("sample.aedat4")))
    events.dtype.names = ("t", "x", "y", "p")  # tonic's CIFAR10DVS renames read_aedat4's polarity field 'on' so
    span = int(events["t"][-1] - events["t"][0])
    as_signed = events.astype([("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("p", "?")])
    for window in (50_000, span, span + 1, 1_000_000):
        for include_incomplete in (False, True):
            params = {"time_window": window, "include_incomplete": include_incomplete}
            ours = nt.ToFrame(sensor_size=(320, 240, 2), **params)(events)
            assert_same(ours, tt.ToFrame(sensor_size=(320, 240, 2), **params)(as_signed.copy()))
            if window > span:  # one window from the first event holds them all
                assert ours.shape[0] == 1 and ours.sum() == len(events)


def test_to_frame_warns_when_n_time_bins_exceeds_the_span():
    seconds = make_events([0, 1, 2, 3, 1], [0] * 5, [0.0, 0.1, 0.25, 0.5, 0.99], [0] * 5, DTYPES["float_t"])
    with pytest.warns(UserWarning, match=r"span 0.99 time units, less than n_time_bins = 10"):
        frames = nt.ToFrame(sensor_size=(4, 3, 2), n_time_bins=10)(seconds)  # float seconds: bins 0.99 // 10 = 0
    assert not frames.any()


def test_transforms_pickle_for_dataloader_workers():
    import pickle

    events = make_events([0, 1, 2, 3], [0, 0, 1, 1], [0, 5, 10, 15], [0, 1, 0, 1])
    for transform in (nt.ToFrame(sensor_size=(4, 2, 2), n_time_bins=2), nt.Denoise(10),
                      nt.RandomCrop((4, 2, 2), (2, 2), seed=5),
                      nt.DropEvent((0.1, 0.9), seed=np.random.default_rng(2))):
        clone = pickle.loads(pickle.dumps(transform))
        assert clone == transform
        assert_same(clone(events), transform(events))


def test_to_frame_inside_tonic_compose_and_is_a_frozen_dataclass():
    events = make_events([0, 1, 2], [0, 0, 0], [0, 5, 10], [0, 1, 0])  # the first has no support
    pipeline = tonic.transforms.Compose([nt.Denoise(filter_time=100), nt.ToFrame(sensor_size=(3, 3, 2),
                                                                               event_count=2)])
    frames = pipeline(events)
    assert frames.shape == (1, 2, 3, 3) and frames.sum() == 2
    t = nt.ToFrame(sensor_size=[3, 3, 2], n_time_bins=2)
    assert t.sensor_size == (3, 3, 2) and hash(t) == hash(nt.ToFrame(sensor_size=(3, 3, 2), n_time_bins=2))
    with pytest.raises(AttributeError):
        t.n_time_bins = 3



def test_a_tonic_dataset_takes_them_in_compose_through_dataloader_workers(tmp_path):
    """The drop-in use: tonic's POKERDVS with ``transform=Compose([...])`` of ours, loaded by two worker processes
    (the transforms travel there by pickle), gives tonic's frames. (Its files are in place: nothing downloads.)"""
    import fixture_writers as fw
    from torch.utils.data import DataLoader

    fw.write_pokerdvs(tmp_path, "train")
    assert tonic.datasets.POKERDVS.sensor_size == (35, 35, 2)  # halved: x, y in [0, 17]

    def dataset(m, **compat):
        steps = [m.Denoise(filter_time=5000, **compat), m.RefractoryPeriod(delta=100, **compat),
                 m.Downsample(spatial_factor=0.5), m.ToFrame(sensor_size=(18, 18, 2), n_time_bins=5)]
        return tonic.datasets.POKERDVS(str(tmp_path), train=True, transform=tt.Compose(steps))

    theirs = dataset(tt)
    loaded = [(np.asarray(frames), int(label)) for frames, label in
              DataLoader(dataset(nt, tonic_compatible=True), batch_size=None, num_workers=2)]
    assert len(loaded) == len(theirs) == 20
    for (frames, label), (expected, expected_label) in zip(loaded, theirs):
        assert label == expected_label
        assert_same(frames, expected)
    assert sum(frames.sum() for frames, _ in loaded) > 0


# ------------------------------------------------------------------------------------------------------- filters


@SETTINGS
@given(data=streams(min_size=1), filter_time=st.sampled_from([1, 5, 1000, 30_000, 2.5]))
def test_denoise_tonic_compatible_equals_tonic(data, filter_time):
    events, _ = data
    assert_same(nt.Denoise(filter_time, tonic_compatible=True)(events), tt.Denoise(filter_time)(events))


@SETTINGS
@given(data=streams(min_size=1), filter_time=st.sampled_from([1, 5, 1000, 30_000]))
def test_denoise_equals_tonic_once_every_pixel_could_have_fired(data, filter_time):
    events, _ = data
    assume(events["t"].min() >= filter_time)  # tonic's start-up behaviour (the documented difference) is not hit
    assert_same(nt.Denoise(filter_time)(events), tt.Denoise(filter_time)(events))


def test_denoise_start_up_difference():
    # an isolated event early in the recording: tonic keeps it (as if every pixel fired at t = 0), we drop it
    events = make_events([0, 5, 6], [0, 5, 5], [100, 20_000, 20_001], [1, 1, 1])
    assert len(tt.Denoise(filter_time=10_000)(events)) == 2  # (0, 0) @ 100 and (6, 5) supported by (5, 5)
    ours = nt.Denoise(filter_time=10_000)(events)
    assert ours["x"].tolist() == [6]
    assert_same(nt.Denoise(filter_time=10_000, tonic_compatible=True)(events), tt.Denoise(filter_time=10_000)(events))


@SETTINGS
@given(data=streams(min_size=1), delta=st.sampled_from([0, 1, 5, 1000, 30_000, 2.5]))
def test_refractory_tonic_compatible_equals_tonic(data, delta):
    events, _ = data
    assert_same(nt.RefractoryPeriod(delta, tonic_compatible=True)(events), tt.RefractoryPeriod(delta)(events))


@SETTINGS
@given(data=streams(min_size=1), delta=st.sampled_from([0, 1, 5, 1000, 30_000]))
def test_refractory_equals_tonic_for_positive_timestamps(data, delta):
    events, _ = data
    assume(events["t"].min() > 0)
    assert_same(nt.RefractoryPeriod(delta)(events), tt.RefractoryPeriod(delta)(events))


def test_refractory_keeps_the_first_event_of_every_pixel():
    events = make_events([0, 0, 1], [0, 0, 0], [0, 5, 0], [1, 0, 1])
    assert len(tt.RefractoryPeriod(delta=10)(events)) == 0  # tonic drops first events at t <= 0
    assert nt.RefractoryPeriod(delta=10)(events)["x"].tolist() == [0, 1]
    assert len(nt.RefractoryPeriod(delta=10, tonic_compatible=True)(events)) == 0


@SETTINGS
@given(data=streams(min_size=1), seed=st.integers(0, 2**16))
def test_refractory_random_delta_draws_as_tonic(data, seed):
    events, _ = data
    np.random.seed(seed)
    theirs = tt.RefractoryPeriod(delta=(0, 2000))(events)
    np.random.seed(seed)
    ours = nt.RefractoryPeriod(delta=(0, 2000), tonic_compatible=True)(events)
    assert_same(ours, theirs)
    rs = nt.RefractoryPeriod(delta=(0, 2000), tonic_compatible=True, seed=np.random.RandomState(seed))(events)
    assert_same(rs, theirs)


@SETTINGS
@given(data=streams(min_size=2, sort=False))
def test_filters_sort_unsorted_input(data):
    events, _ = data
    assert_same(nt.Denoise(50, tonic_compatible=True)(events), tt.Denoise(50)(stable_sorted(events)))
    assert_same(nt.RefractoryPeriod(50, tonic_compatible=True)(events), tt.RefractoryPeriod(50)(stable_sorted(events)))


@SETTINGS
@given(data=streams(min_size=1, audio=True))
def test_filters_on_audio_events_use_channel_neighbours(data):
    events, _ = data
    ref = nt.RefractoryPeriod(20)(events)
    # the same as 2-D events on a one-pixel-high sensor
    as_2d = make_events(events["x"], np.zeros(len(events)), events["t"], events["p"])
    assert_same(ref["t"], nt.RefractoryPeriod(20)(as_2d)["t"])
    assert_same(nt.Denoise(20)(events)["x"], nt.Denoise(20)(as_2d)["x"])


def test_filters_on_empty_and_single_events():
    empty = np.zeros(0, EVENT_DTYPE)
    for transform in (nt.Denoise(100), nt.RefractoryPeriod(100), nt.Downsample(spatial_factor=0.5),
                      nt.CenterCrop((4, 4, 2), 2), nt.RandomCrop((4, 4, 2), (2, 2), seed=0),
                      nt.RandomFlipLR((4, 4, 2), seed=0), nt.RandomFlipUD((4, 4, 2), seed=0),
                      nt.TimeJitter(10, seed=0), nt.DropEvent(0.5, seed=0)):
        out = transform(empty)
        assert out.dtype == EVENT_DTYPE and len(out) == 0
    one = make_events([1], [2], [30], [1])
    assert len(nt.Denoise(100)(one)) == 0  # nothing supports it
    assert_same(nt.Denoise(10, tonic_compatible=True)(one), tt.Denoise(10)(one))
    assert_same(nt.RefractoryPeriod(100)(one), one)
    assert_same(nt.RefractoryPeriod(100, tonic_compatible=True)(one), tt.RefractoryPeriod(100)(one))


@pytest.mark.parametrize("f", [nt.Denoise(10), nt.RefractoryPeriod(10),
                               nt.RefractoryPeriod(10, tonic_compatible=True)])
def test_filters_refuse_nan_timestamps_and_fractional_coordinates(f):
    dtype = np.dtype([("x", "f8"), ("y", "f8"), ("t", "f8"), ("p", "f8")])
    whole = make_events([1, 1, 1, 2], [0, 0, 0, 0], [0, 50, 100, 105], [0, 0, 0, 0], dtype)
    assert len(f(whole)) > 0  # float fields holding whole numbers are fine
    missing_time = whole.copy()
    missing_time["t"][1] = np.nan  # RefractoryPeriod dropped the pixel's next valid event (t = 100) too
    with pytest.raises(ValueError, match=r"field 't' must hold finite values, but event 1 has t = nan"):
        f(missing_time)
    fractional = whole.copy()
    fractional["x"][3] = 1.7  # was pixel 1
    with pytest.raises(ValueError, match=r"field 'x' must hold whole numbers, but event 3 has x = 1.7"):
        f(fractional)


def test_filters_reject_negative_coordinates():
    with pytest.raises(ValueError, match="negative coordinates"):
        nt.Denoise(10)(make_events([-1, 0], [0, 0], [0, 1], [0, 0]))


@pytest.mark.parametrize("f", [nt.Denoise(10), nt.RefractoryPeriod(10)])
def test_filters_name_coordinates_no_sensor_has_instead_of_running_out_of_memory(f):
    huge = make_events([3, 2_000_000_000], [0, 70_000], [0, 1], [0, 0])
    with pytest.raises(ValueError, match=r"reach x = 2000000000, y = 70000, a 2000000001 × 70001 pixel grid .*"
                                         r"check the x/y fields"):
        f(huge)
    assert len(f(make_events([3, 8191], [0, 8191], [0, 1], [0, 0]))) <= 2  # 8192 × 8192 still runs


# ------------------------------------------------------------------------------------------------------- geometry


DOWNSAMPLE_PARAMS = st.one_of(
    st.fixed_dictionaries({"spatial_factor": st.sampled_from([0.5, 0.25, 1, 2, 0.3]),
                           "time_factor": st.sampled_from([1, 0.001, 1.5, 2])}),
    st.fixed_dictionaries({"spatial_factor": st.sampled_from([(0.5, 0.25), (0.3, 1.7)])}),
)


@SETTINGS
@given(data=streams(), params=DOWNSAMPLE_PARAMS)
def test_downsample_equals_tonic(data, params):
    events, _ = data
    before = events.copy()
    assert_same(nt.Downsample(**params)(events), tt.Downsample(**params)(events))
    assert_same(events, before)


@SETTINGS
@given(data=streams(), target=st.tuples(st.integers(1, 7), st.integers(1, 7)))
def test_downsample_to_target_size_equals_tonic(data, target):
    events, size = data
    assert_same(nt.Downsample(sensor_size=size, target_size=target)(events),
                tt.Downsample(sensor_size=size, target_size=target)(events))


@SETTINGS
@given(data=streams(min_size=1, audio=True), factor=st.sampled_from([0.5, 1, 0.1]))
def test_downsample_audio_equals_tonic(data, factor):
    events, _ = data
    assert_same(nt.Downsample(spatial_factor=factor, time_factor=factor)(events),
                tt.Downsample(spatial_factor=factor, time_factor=factor)(events))


@SETTINGS
@given(data=streams(dtypes=("nmnist", "packed_bool_p")), size=st.one_of(st.integers(1, 9),
                                                                        st.tuples(st.integers(1, 9),
                                                                                  st.integers(1, 9))))
def test_center_crop_equals_tonic(data, size):
    events, sensor = data
    theirs = tt.CenterCrop(sensor_size=sensor, size=size)(events)  # tonic mutates `size`; build it fresh each time
    assert_same(nt.CenterCrop(sensor_size=sensor, size=size)(events), theirs)


def test_downsample_refuses_products_its_fields_cannot_hold():
    """tonic casts the products back and wraps around: uint8 x = 200 times 2 gives 144, int32 t in ms times 1000
    gives negative timestamps."""
    narrow = make_events([100, 200], [0, 0], [0, 1], [0, 0], np.dtype([("x", "u1"), ("y", "u1"), ("t", "i8"),
                                                                        ("p", "u1")]))
    with pytest.raises(ValueError, match=r"scaling x by 2.0 \(spatial_factor\) takes it to 400, past what the "
                                         r"events' uint8 field holds; cast the field to a wider type first"):
        nt.Downsample(spatial_factor=2.0)(narrow)
    assert nt.Downsample(spatial_factor=1.2)(narrow)["x"].tolist() == [120, 240]  # fits
    assert nt.Downsample(spatial_factor=0.5)(narrow)["x"].tolist() == [50, 100]
    ms = make_events([0, 1], [0, 0], [2**31 - 100, 2**31 - 1], [0, 0],
                     np.dtype([("x", "i8"), ("y", "i8"), ("t", "i4"), ("p", "u1")]))
    with pytest.raises(ValueError, match=r"scaling t by 1000 \(time_factor\) takes it to 2147483647000.*int32"):
        nt.Downsample(time_factor=1000)(ms)
    with pytest.raises(ValueError, match=r"takes it to -2147483648000"):  # negative timestamps too
        nt.Downsample(time_factor=1000)(make_events([0], [0], [-2**31], [0], ms.dtype))
    wide = ms.astype(np.dtype([("x", "i8"), ("y", "i8"), ("t", "i8"), ("p", "u1")]))
    assert nt.Downsample(time_factor=1000)(wide)["t"].tolist() == [(2**31 - 100) * 1000, (2**31 - 1) * 1000]
    ok = make_events([1, 2], [0, 0], [5, 2**21], [0, 0], ms.dtype)
    assert_same(nt.Downsample(time_factor=1000)(ok), tt.Downsample(time_factor=1000)(ok.copy()))


@pytest.mark.parametrize("field", ["<f4", "<f2", "<f8", ">f4", "<i2", "<u8"])
def test_downsample_computes_in_the_precision_tonics_numpy_does(field):
    """float32 x times 0.3 is a float32 product in numpy (a Python float is 'weak': 3 * float32(0.3) = 0.90000004),
    target_size / sensor_size a float64 one (float16 x * 0.5 then rounds once, from float64)."""
    rng = np.random.default_rng(5)
    dtype = np.dtype([("x", field), ("y", field), ("t", field), ("p", "i1")])
    events = make_events(rng.integers(0, 200, 300), rng.integers(0, 200, 300), np.sort(rng.integers(0, 2000, 300)),
                         rng.integers(0, 2, 300), dtype)
    cases = [{"spatial_factor": 0.3}, {"spatial_factor": (0.1, 0.7), "time_factor": 0.001},
             {"time_factor": 1.3}, {"spatial_factor": 2, "time_factor": 3},
             {"spatial_factor": np.float64(0.3), "time_factor": np.float32(0.7)},
             {"sensor_size": (200, 200, 2), "target_size": (60, 33)}]
    for params in cases:
        assert_same(nt.Downsample(**params)(events), tt.Downsample(**params)(events))



@SHORT_SPANS
@pytest.mark.parametrize("ours, theirs", [
    (nt.ToFrame((8, 8, 2), n_time_bins=7), tt.ToFrame((8, 8, 2), n_time_bins=7)),
    (nt.ToFrame((8, 8, 2), n_time_bins=3, overlap=0.3), tt.ToFrame((8, 8, 2), n_time_bins=3, overlap=0.3)),
    (nt.ToFrame((8, 8, 2), time_window=333.3, overlap=100.1, include_incomplete=True),
     tt.ToFrame((8, 8, 2), time_window=333.3, overlap=100.1, include_incomplete=True)),
    (nt.Denoise(filter_time=50.3, tonic_compatible=True), tt.Denoise(filter_time=50.3)),
    (nt.ToVoxelGrid((8, 8, 2), n_time_bins=5), tt.ToVoxelGrid((8, 8, 2), n_time_bins=5)),
], ids=["ToFrame-bins", "ToFrame-bins-overlap", "ToFrame-window", "Denoise", "ToVoxelGrid"])
def test_float16_timestamps_are_computed_in_float16_as_in_tonic(ours, theirs):
    """The kernels read float16 timestamps as float32 and computed a bin's width, a window count, ``t +
    filter_time`` and the voxel grid's ``tN - t0`` in float32, where tonic's numpy rounds each to float16: other
    frame edges, other kept events, other voxel weights (a tenth of streams or more differed). (Under numpy 1
    tonic's per-event ``t + filter_time`` is a float64: a scalar plus a Python float; neurosim follows either.)"""
    rng = np.random.default_rng(16)
    dtype = np.dtype([("x", "<i2"), ("y", "<i2"), ("t", "<f2"), ("p", "<i1")])
    for _ in range(60):
        n = int(rng.integers(2, 200))
        t = np.sort(rng.uniform(0, rng.choice([2_000, 10_000, 60_000]), n).astype(np.float16))
        events = make_events(rng.integers(0, 8, n), rng.integers(0, 8, n), t, rng.integers(0, 2, n), dtype)
        assert_same(ours(events), theirs(events.copy()))

def test_center_crop_pads_unsigned_coordinates_and_names_a_field_too_narrow():
    events = make_events([0, 1, 2], [0, 2, 1], [0, 1, 2], [0, 1, 0], DTYPES["float_t"])  # uint16 x, y
    out = nt.CenterCrop(sensor_size=(4, 3, 2), size=(8, 6))(events)  # tonic: OverflowError on -= -2
    assert out.dtype == events.dtype and out["x"].tolist() == [2, 3, 4] and out["y"].tolist() == [2, 4, 3]
    narrow = make_events([0, 250], [0, 0], [0, 1], [0, 0], np.dtype([("x", "u1"), ("y", "u1"), ("t", "i8"),
                                                                   ("p", "i1")]))
    with pytest.raises(ValueError, match=r"CenterCrop: padding to 300×1 moves x up to 275.*uint8 field"):
        nt.CenterCrop(sensor_size=(251, 1, 1), size=(300, 1))(narrow)


@pytest.mark.parametrize("transform", [nt.ToFrame((4, 3, 2), n_time_bins=2), nt.ToVoxelGrid((4, 3, 2), 2)])
def test_event_tensors_refuse_fractional_coordinates_and_nan_timestamps(transform):
    dtype = np.dtype([("x", "f4"), ("y", "f4"), ("t", "f8"), ("p", "i1")])
    whole = make_events([0, 1, 2, 3], [0, 1, 1, 2], [0, 1, 2, 3], [0, 1, 0, 1], dtype)
    assert np.asarray(transform(whole)).sum() != 0  # float fields holding whole numbers are fine
    fractional = whole.copy()
    fractional["x"][1] = 1.7  # would land on x = 1 silently
    with pytest.raises(ValueError, match=r"field 'x' must hold whole numbers, but event 1 has x = 1.7"):
        transform(fractional)
    missing_time = whole.copy()
    missing_time["t"][2] = np.nan  # would fall in no bin and vanish
    with pytest.raises(ValueError, match=r"field 't' must hold finite values, but event 2 has t = nan"):
        transform(missing_time)


@SETTINGS
@given(data=streams(), seed=st.integers(0, 2**16), frac=st.tuples(st.floats(0.1, 1), st.floats(0.1, 1)))
def test_random_crop_equals_tonic_draw_for_draw(data, seed, frac):
    events, sensor = data
    target = (max(1, int(sensor[0] * frac[0])), max(1, int(sensor[1] * frac[1])))
    np.random.seed(seed)
    theirs = tt.RandomCrop(sensor_size=sensor, target_size=target)(events)
    np.random.seed(seed)
    assert_same(nt.RandomCrop(sensor_size=sensor, target_size=target)(events), theirs)
    assert_same(nt.RandomCrop(sensor_size=sensor, target_size=target, seed=np.random.RandomState(seed))(events),
                theirs)


@SETTINGS
@given(data=streams(), seed=st.integers(0, 2**16), p=st.sampled_from([0.0, 0.3, 0.5, 1.0]))
def test_random_flips_equal_tonic_draw_for_draw(data, seed, p):
    events, sensor = data
    for ours_cls, theirs_cls in ((nt.RandomFlipLR, tt.RandomFlipLR), (nt.RandomFlipUD, tt.RandomFlipUD)):
        np.random.seed(seed)
        theirs = theirs_cls(sensor_size=sensor, p=p)(events)
        np.random.seed(seed)
        assert_same(ours_cls(sensor_size=sensor, p=p)(events), theirs)
        assert_same(ours_cls(sensor_size=sensor, p=p, seed=np.random.RandomState(seed))(events), theirs)


def test_flip_rejects_coordinates_outside_the_sensor():
    with pytest.raises(ValueError, match=r"x outside \[0, 4\)"):
        nt.RandomFlipLR(sensor_size=(4, 4, 2), p=1.0)(make_events([4], [0], [0], [0]))


# ------------------------------------------------------------------------------------------------------- time, drop


@SETTINGS
@given(data=streams(), seed=st.integers(0, 2**16), std=st.sampled_from([0.0, 1.0, 30.0, 5000.0]),
       clip=st.booleans())
def test_time_jitter_equals_tonic_draw_for_draw(data, seed, std, clip):
    events, _ = data
    np.random.seed(seed)
    theirs = tt.TimeJitter(std=std, clip_negative=clip)(events)
    np.random.seed(seed)
    assert_same(nt.TimeJitter(std=std, clip_negative=clip)(events), theirs)
    assert_same(nt.TimeJitter(std=std, clip_negative=clip, seed=np.random.RandomState(seed))(events), theirs)
    # sorted: a stable sort of the same jittered events (tonic's quicksort may swap equal timestamps)
    ours_sorted = nt.TimeJitter(std=std, clip_negative=clip, sort_timestamps=True,
                                seed=np.random.RandomState(seed))(events)
    assert_same(ours_sorted, stable_sorted(theirs))


def test_time_jitter_on_unsigned_timestamps_drops_or_refuses_what_tonic_wraps_around():
    dtype = np.dtype([("x", "<u2"), ("y", "<u2"), ("t", "<u4"), ("p", "?")])
    events = make_events([0, 1, 2, 3, 4, 5], [0] * 6, [10, 20, 30, 40, 50, 60], [0, 1] * 3, dtype)
    np.random.seed(1)
    theirs = tt.TimeJitter(std=100, clip_negative=True)(events)
    np.random.seed(1)
    ours = nt.TimeJitter(std=100, clip_negative=True)(events)
    wrapped = theirs["t"] > 2**31  # tonic: jittered below 0, cast to uint32 around 2**32, kept despite clip_negative
    assert wrapped.sum() == 4
    assert_same(ours, theirs[~wrapped])
    with pytest.raises(ValueError, match="jitter made unsigned timestamps negative; use clip_negative=True"):
        nt.TimeJitter(std=100, clip_negative=False, seed=np.random.RandomState(1))(events)


@SETTINGS
@given(data=streams(), seed=st.integers(0, 2**16),
       p=st.one_of(st.sampled_from([0.0, 0.1, 0.5, 1.0]), st.just((0.1, 0.6))))
def test_drop_event_equals_tonic_draw_for_draw(data, seed, p):
    events, _ = data
    np.random.seed(seed)
    theirs = tt.DropEvent(p=p)(events)
    np.random.seed(seed)
    assert_same(nt.DropEvent(p=p)(events), theirs)
    assert_same(nt.DropEvent(p=p, seed=np.random.RandomState(seed))(events), theirs)


def test_seeded_random_transforms_are_reproducible():
    rng = np.random.default_rng(1)
    n = 2000
    events = make_events(rng.integers(0, 34, n), rng.integers(0, 34, n), np.sort(rng.integers(0, 10**6, n)),
                         rng.integers(0, 2, n))
    makers = [lambda s: nt.RandomCrop((34, 34, 2), (20, 20), seed=s), lambda s: nt.RandomFlipLR((34, 34, 2), seed=s),
              lambda s: nt.RandomFlipUD((34, 34, 2), seed=s), lambda s: nt.TimeJitter(100.0, seed=s),
              lambda s: nt.DropEvent(0.3, seed=s), lambda s: nt.DropEvent((0.1, 0.9), seed=s),
              lambda s: nt.RefractoryPeriod((0, 50_000), seed=s)]
    for make in makers:
        a, b, c = make(7), make(7), make(8)
        runs_a = [a(events) for _ in range(4)]
        runs_b = [b(events) for _ in range(4)]
        for x, y in zip(runs_a, runs_b):
            assert_same(x, y)  # the same sequence of calls from the same seed
        assert any(len(x) != len(z) or not np.array_equal(x, z) for x, z in zip(runs_a, [c(events) for _ in range(4)]))
        g = make(np.random.default_rng(3))  # a Generator is used as given
        assert_same(g(events), make(np.random.default_rng(3))(events))


# ------------------------------------------------------------------------------------------------------- voxel grid


@SETTINGS
@given(data=streams(min_size=2, dtypes=("nmnist", "float_t")), n_bins=st.integers(1, 8))
def test_voxel_grid_equals_tonic_for_integer_polarity(data, n_bins):
    events, size = data
    assume(events["t"][-1] != events["t"][0])  # tonic divides by zero otherwise
    assert_same(nt.ToVoxelGrid(sensor_size=size, n_time_bins=n_bins)(events),
                tt.ToVoxelGrid(sensor_size=size, n_time_bins=n_bins)(events))


@SETTINGS
@given(data=streams(min_size=2, dtypes=("packed_bool_p",)), n_bins=st.integers(1, 8))
def test_voxel_grid_keeps_the_sign_of_bool_polarity(data, n_bins):
    events, size = data
    assume(events["t"][-1] != events["t"][0])
    as_int = make_events(events["x"], events["y"], events["t"], events["p"].astype(np.int64))
    ours = nt.ToVoxelGrid(sensor_size=size, n_time_bins=n_bins)(events)
    assert_same(ours, tt.ToVoxelGrid(sensor_size=size, n_time_bins=n_bins)(as_int))
    tonic_bool = tt.ToVoxelGrid(sensor_size=size, n_time_bins=n_bins)(events)
    assert (tonic_bool >= 0).all()  # tonic: every bool event counts +1 (the documented difference)


def test_voxel_grid_edge_cases():
    size = (3, 2, 2)
    assert_same(nt.ToVoxelGrid(size, 4)(np.zeros(0, EVENT_DTYPE)), np.zeros((4, 1, 2, 3)))
    grid = nt.ToVoxelGrid(size, 4)(make_events([2, 1], [1, 0], [50, 50], [0, 1]))  # equal timestamps
    expected = np.zeros((4, 1, 2, 3))
    expected[0, 0, 1, 2], expected[0, 0, 0, 1] = -1.0, 1.0
    assert_same(grid, expected)
    shuffled = make_events([0, 1, 2], [0, 1, 0], [30, 0, 10], [1, 0, 1])
    assert_same(nt.ToVoxelGrid(size, 3)(shuffled), tt.ToVoxelGrid(size, 3)(stable_sorted(shuffled)))
    with pytest.raises(ValueError, match="outside sensor_size"):
        nt.ToVoxelGrid(size, 3)(make_events([3], [0], [0], [0]))


# ------------------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("build, error, match", [
    (lambda: nt.ToFrame(sensor_size=(34, 34, 2)), ValueError, "exactly one of"),
    (lambda: nt.ToFrame(sensor_size=(34, 34, 2), n_time_bins=3, time_window=10), ValueError, "exactly one of"),
    (lambda: nt.ToFrame(sensor_size=(34, 34, 2), n_time_bins=0), ValueError, "n_time_bins must be a positive int"),
    (lambda: nt.ToFrame(sensor_size=(34, 34, 2), n_time_bins=2.5), ValueError, "positive integer"),
    (lambda: nt.ToFrame(sensor_size=(34, 34, 2), n_event_bins=4, overlap=1), ValueError, r"\[0, 1\)"),
    (lambda: nt.ToFrame(sensor_size=(34, 34, 2), n_time_bins=4, overlap=-0.5), ValueError, r"\[0, 1\)"),
    (lambda: nt.ToFrame(sensor_size=(34, 34, 2), time_window=10, overlap=float("nan")), ValueError, "finite number"),
    (lambda: nt.ToFrame(sensor_size=(34, 34, 2), time_window=-5), ValueError, "time_window must be"),
    (lambda: nt.ToFrame(sensor_size=(34, 34, 2), time_window=10, overlap=10), ValueError, "smaller than time_window"),
    (lambda: nt.ToFrame(sensor_size=(34, 34, 2), event_count=10, overlap=12), ValueError, "smaller than event_count"),
    (lambda: nt.ToFrame(sensor_size=(34, 34, 2), n_time_bins=3, start_time=0), ValueError, "only used with"),
    (lambda: nt.ToFrame(sensor_size=(34, 34), n_time_bins=3), ValueError, "sensor_size must be 3 positive"),
    (lambda: nt.ToFrame(sensor_size=(34, 0, 2), n_time_bins=3), ValueError, "sensor_size must be 3 positive"),
    (lambda: nt.Denoise(filter_time=0), ValueError, "filter_time must be a finite number > 0"),
    (lambda: nt.Denoise(filter_time="10"), ValueError, "filter_time"),
    (lambda: nt.RefractoryPeriod(delta=-1), ValueError, "delta must be"),
    (lambda: nt.RefractoryPeriod(delta=(5, 1)), ValueError, "high < low"),
    (lambda: nt.RefractoryPeriod(delta=1, seed="x"), TypeError, "seed must be"),
    (lambda: nt.Downsample(spatial_factor=0), ValueError, "spatial_factor"),
    (lambda: nt.Downsample(time_factor=-1), ValueError, "time_factor"),
    (lambda: nt.Downsample(time_factor=(0.5, 2)), ValueError, r"random factor.*TimeSkew\(coefficient=\(low, high\)\)"),
    (lambda: nt.ToFrame(sensor_size=(), n_time_bins=3), ValueError, r"got \(\); None infers it"),
    (lambda: nt.Downsample(target_size=(10, 10)), ValueError, "sensor_size is required"),
    (lambda: nt.CenterCrop(sensor_size=(34, 34, 2), size=(0, 3)), ValueError, "size must be"),
    (lambda: nt.RandomCrop(sensor_size=(34, 34, 2), target_size=(40, 10)), ValueError, "larger than the sensor"),
    (lambda: nt.RandomFlipLR(sensor_size=(34, 34, 2), p=1.5), ValueError, r"probability in \[0, 1\]"),
    (lambda: nt.RandomFlipUD(sensor_size=(34, 34, 2), p=-0.1), ValueError, "probability"),
    (lambda: nt.TimeJitter(std=-1), ValueError, "std must be"),
    (lambda: nt.DropEvent(p=2), ValueError, "probability"),
    (lambda: nt.DropEvent(p=(0.5, 0.1)), ValueError, "high < low"),
    (lambda: nt.ToVoxelGrid(sensor_size=(34, 34, 2), n_time_bins=0), ValueError, "n_time_bins"),
])
def test_bad_parameters_give_clear_errors(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_bad_event_arrays_give_clear_errors():
    with pytest.raises(TypeError, match="structured numpy array"):
        nt.ToFrame(sensor_size=(3, 3, 2), n_time_bins=2)(np.zeros((5, 4)))
    with pytest.raises(ValueError, match="lack field"):
        nt.Denoise(10)(np.zeros(3, np.dtype([("x", int), ("y", int)])))
    with pytest.raises(ValueError, match="lack field.*'y'"):
        nt.CenterCrop((3, 3, 2), 2)(np.zeros(3, AUDIO_DTYPE))
    # tonic.io.read_aedat4's layout: the polarity field is named 'on' and titled 'p' (tonic's ToFrame: AssertionError)
    aedat4 = np.zeros(3, np.dtype([("t", "<u8"), ("x", "<u2"), ("y", "<u2"), (("p", "on"), "?")]))
    with pytest.raises(ValueError, match=r"lack field\(s\) 'p' \(fields: t, x, y, on\); 'p' is only the title of "
                                         r"field 'on' .*events.dtype.names = \('t', 'x', 'y', 'p'\)"):
        nt.ToFrame(sensor_size=(3, 3, 2), n_time_bins=2)(aedat4)
    aedat4.dtype.names = ("t", "x", "y", "p")  # as the hint says (tonic's CIFAR10DVS does the same)
    assert nt.ToFrame(sensor_size=(3, 3, 2), event_count=3)(aedat4).sum() == 3

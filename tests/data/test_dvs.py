"""The DVS emulator: events appear where and only where log intensity changes, with the right polarity."""

from __future__ import annotations

import numpy as np
import pytest

from neurosim.data.dvs import EVENT_DTYPE, DVSParams, emulate, render_shifted, saccade_offsets

QUIET = DVSParams(leak_rate_hz=0.0, shot_noise_rate_hz=0.0, contrast_sigma=0.0, cutoff_hz=0.0, refractory_us=0)


def _times(n, step_us=1000):
    return np.arange(n, dtype=np.int64) * step_us


def test_static_scene_without_noise_gives_no_events():
    frames = np.tile(np.random.default_rng(0).uniform(0.1, 1.0, (1, 16, 16)), (200, 1, 1))
    events = emulate(frames, _times(200), DVSParams(leak_rate_hz=0.0, shot_noise_rate_hz=0.0))
    assert events.dtype == EVENT_DTYPE
    assert len(events) == 0


def test_static_scene_with_default_noise_gives_only_background_events():
    # defaults: 2 Hz shot noise + 0.1 Hz leak per pixel; 34×34 pixels for 0.3 s → ~ 1156 · 0.3 · 2.1 ≈ 730 events,
    # far below the ~4,300 of a moving digit; the static edges contribute nothing.
    frames = np.ones((301, 34, 34))
    frames[:, 10:20, 10:20] = 0.2
    events = emulate(frames, _times(301), DVSParams(), seed=3)
    expected = 34 * 34 * 0.3 * (DVSParams().shot_noise_rate_hz + DVSParams().leak_rate_hz)
    assert 0.7 * expected < len(events) < 1.3 * expected
    assert len(events) < 0.25 * 4325


def test_brightening_pixel_gives_on_events_and_darkening_off():
    n = 50
    ramp = np.linspace(0.1, 0.9, n)
    frames = np.full((n, 2, 2), 0.5)
    frames[:, 0, 0] = ramp          # brightening
    frames[:, 1, 1] = ramp[::-1]    # darkening
    events = emulate(frames, _times(n), QUIET)
    on = events[(events["x"] == 0) & (events["y"] == 0)]
    off = events[(events["x"] == 1) & (events["y"] == 1)]
    assert len(on) > 0 and np.all(on["p"] == 1)
    assert len(off) > 0 and np.all(off["p"] == 0)
    # log-intensity change / threshold = number of crossings (no filter, no mismatch, no refractory)
    crossings = int(np.log((0.9 + QUIET.eps) / (0.1 + QUIET.eps)) / QUIET.contrast)
    assert len(on) == crossings and len(off) == crossings
    assert len(events) == 2 * crossings  # the constant pixels stay silent


def test_events_are_sorted_and_inside_the_sensor():
    frames = render_shifted(np.eye(10) * 0.8 + 0.1, (20, 24), saccade_offsets(_times(200), leg_us=60_000))
    events = emulate(frames, _times(200), DVSParams(), seed=1)
    assert len(events) > 100
    assert np.all(np.diff(events["t"]) >= 0)
    assert events["x"].min() >= 0 and events["x"].max() < 24
    assert events["y"].min() >= 0 and events["y"].max() < 20
    assert set(np.unique(events["p"])) <= {0, 1}
    assert events["t"].min() > 0 and events["t"].max() <= 199_000


def test_same_seed_same_events_other_seed_other_events():
    frames = render_shifted(np.eye(8) * 0.8 + 0.1, (16, 16), saccade_offsets(_times(120), leg_us=40_000))
    a = emulate(frames, _times(120), seed=7)
    b = emulate(frames, _times(120), seed=7)
    c = emulate(frames, _times(120), seed=8)
    np.testing.assert_array_equal(a, b)
    assert len(a) != len(c) or not np.array_equal(a, c)


def test_refractory_period_drops_events_within_the_dead_time():
    n = 20
    frames = np.full((n, 1, 1), 0.1)
    frames[1:, 0, 0] = 0.9  # one big step: several crossings in one 1 ms interval
    many = emulate(frames, _times(n), QUIET)
    few = emulate(frames, _times(n), DVSParams(leak_rate_hz=0.0, shot_noise_rate_hz=0.0, contrast_sigma=0.0,
                                               cutoff_hz=0.0, refractory_us=600))
    assert len(many) == int(np.log(0.95 / 0.15) / 0.25)
    assert 0 < len(few) < len(many)
    assert np.all(np.diff(few["t"]) >= 600)


def test_shot_noise_fires_on_changing_pixels_as_on_static_ones():
    """A pixel crossing its threshold in every frame interval still gets its shot noise (v1 dropped it there: the
    interval's crossings were stamped first, and earlier shot times looked like refractory violations)."""
    n = 1001  # 10 s of 10 ms frames, 10×10 pixels
    t = np.arange(n, dtype=np.int64) * 10_000
    flicker = np.where(np.arange(n)[:, None, None] % 2 == 0, 0.2, 0.8) * np.ones((1, 10, 10))
    quiet = DVSParams(contrast=0.25, contrast_sigma=0, refractory_us=0, cutoff_hz=0, leak_rate_hz=0,
                      shot_noise_rate_hz=0.0)
    noisy = DVSParams(**{**quiet.__dict__, "shot_noise_rate_hz": 20.0})
    crossings = len(emulate(flicker, t, quiet, seed=1))
    noise_on_changing = len(emulate(flicker, t, noisy, seed=1)) - crossings
    noise_on_static = len(emulate(np.full((n, 10, 10), 0.5), t, noisy, seed=1))
    assert 18_000 < noise_on_static < 22_000  # 100 pixels × 20 Hz × 10 s
    assert noise_on_changing == noise_on_static  # the same arrivals (same seed), none lost


def test_photoreceptor_low_pass_spreads_a_step_over_time():
    n = 100
    frames = np.full((n, 1, 1), 0.1)
    frames[1:, 0, 0] = 0.9
    instant = emulate(frames, _times(n), QUIET)
    filtered = emulate(frames, _times(n), DVSParams(leak_rate_hz=0.0, shot_noise_rate_hz=0.0, contrast_sigma=0.0,
                                                    cutoff_hz=50.0, refractory_us=0))
    assert instant["t"].max() <= 1000
    assert filtered["t"].max() > 5000  # the slow pixel keeps firing as it settles


def test_leak_makes_every_static_pixel_fire_on_events_at_the_leak_rate():
    # without mismatch the level drifts down by C·rate per second from a random phase in [0, C): one ON event
    # every 1/rate = 0.2 s, the first within 0.2 s, so floor(2.1 · 5 + phase) = 10 or 11 per pixel in 2.1 s
    n = 2101
    frames = np.full((n, 10, 10), 0.5)
    params = DVSParams(leak_rate_hz=5.0, shot_noise_rate_hz=0.0, contrast_sigma=0.0, leak_rate_cov_decades=0.0,
                       refractory_us=0)
    events = emulate(frames, _times(n), params)
    assert np.all(events["p"] == 1)
    per_pixel = np.bincount(events["y"] * 10 + events["x"], minlength=100)
    assert set(per_pixel.tolist()) <= {10, 11}
    assert events["t"].min() < 200_000  # no pixel waits a whole leak period for its first event


def test_leak_events_of_a_static_scene_are_spread_over_time():
    """The level drifts with the nominal threshold from a random phase (v2e): pixels do not leak in step (they
    all fired in the same frame every 1/leak_rate_hz before, whatever contrast_sigma)."""
    n = 3001  # 30 s of 10 ms frames, 20×20 pixels, default mismatch, leak at 1 Hz
    frames = np.full((n, 20, 20), 0.4)
    params = DVSParams(leak_rate_hz=1.0, shot_noise_rate_hz=0.0)
    events = emulate(frames, _times(n, 10_000), params, seed=3)
    rate = len(events) / 400 / 30.0
    assert 0.95 < rate < 1.15  # ≈ leak_rate_hz per pixel (lognormal rates and 1/C mismatch: mean ~1.04)
    _, per_frame = np.unique(events["t"], return_counts=True)
    assert per_frame.max() <= 20  # at most 5 % of the pixels in any one frame (~4 per frame on average)
    assert len(per_frame) > 0.75 * n  # leak events in most frames
    np.testing.assert_array_equal(events, emulate(frames, _times(n, 10_000), params, seed=3))  # deterministic


def test_recordings_shorter_than_the_leak_period_get_their_share_of_leak_events():
    # 34×34 static pixels for 0.3 s at the default 0.1 Hz: ~1156 · 0.3 · 0.1 ≈ 35 leak events (none before)
    frames = np.full((301, 34, 34), 0.5)
    events = emulate(frames, _times(301), DVSParams(shot_noise_rate_hz=0.0), seed=5)
    assert 15 < len(events) < 70 and np.all(events["p"] == 1)


@pytest.mark.parametrize("bad, match", [
    (dict(frames=np.ones((3, 4))), "frames must be"),
    (dict(times_us=np.array([0, 1000])), "one timestamp per frame"),
    (dict(times_us=np.array([0.0, 1.0, 2.0])), "integers"),
    (dict(times_us=np.array([0, 1000, 1000])), "strictly increasing"),
    (dict(times_us=np.array([0, 10000, 5000], dtype=np.uint64)), "strictly increasing"),  # np.diff would wrap
    (dict(frames=np.full((3, 2, 2), 2.0)), r"\[0, 1\]"),
])
def test_bad_input_is_rejected_with_a_clear_message(bad, match):
    args = dict(frames=np.ones((3, 2, 2)) * 0.5, times_us=np.array([0, 1000, 2000]))
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        emulate(**args)


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError, match="contrast"):
        DVSParams(contrast=0.0)
    with pytest.raises(ValueError, match="refractory_us"):
        DVSParams(refractory_us=-1)
    with pytest.raises(ValueError, match="leak_rate_cov_decades"):
        DVSParams(leak_rate_cov_decades=float("nan"))


def test_saccade_path_visits_the_triangle_vertices():
    t = np.array([0, 105_000, 210_000, 315_000, 52_500])
    off = saccade_offsets(t)
    np.testing.assert_allclose(off[:4], [[0, 0], [3.5, 7], [7, 0], [0, 0]], atol=1e-12)
    np.testing.assert_allclose(off[4], [1.75, 3.5], atol=1e-12)  # mid-leg (symmetric velocity profile)


def test_render_shift_by_whole_pixels_moves_the_image():
    img = np.zeros((3, 3))
    img[1, 1] = 1.0
    out = render_shifted(img, (6, 6), np.array([[0.0, 0.0], [2.0, 1.0], [0.5, 0.0]]), background=0.0)
    assert out[0, 1, 1] == 1.0 and out[0].sum() == 1.0
    assert out[1, 2, 3] == 1.0 and out[1].sum() == 1.0
    np.testing.assert_allclose(out[2, 1, 1:3], [0.5, 0.5])

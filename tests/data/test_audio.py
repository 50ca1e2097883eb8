"""Audio → SHD-format spikes, demonstrated on a real spoken digit (../shared/fixtures/real/spoken_digit.flac:
0–0.2 s an unvoiced fricative with energy around 7 kHz, 0.24–0.63 s the loud voiced vowel part, silence at both
ends), plus pure tones, determinism, and the atomic SHD .h5 writer read back by tonic."""

from __future__ import annotations

import functools
import sys

import numpy as np
import pytest

from neurosim.data.audio import (SHD_MAX_CHANNELS, AudioToSpikes, center_frequencies, load_audio, resample,
                                 write_shd_h5)
from neurosim.data.readers import SHD_DTYPE, read_shd_h5


@functools.lru_cache(maxsize=None)
def _load(path: str):
    waveform, sr = load_audio(path)
    waveform.setflags(write=False)
    return waveform, sr


@functools.lru_cache(maxsize=None)
def _default_events(path: str):
    ev = AudioToSpikes()(*_load(path))
    ev.setflags(write=False)
    return ev


@pytest.fixture
def digit(real_file):
    """(waveform, sample_rate) of the real spoken digit (read once per session; skips where absent)."""
    return _load(str(real_file("spoken_digit.flac")))


@pytest.fixture
def digit_events(real_file):
    """Events of the spoken digit with the default AudioToSpikes (computed once per session)."""
    return _default_events(str(real_file("spoken_digit.flac")))


def _frame_rms(waveform, sr, frame_s=0.01):
    n = int(sr * frame_s)
    return np.sqrt((waveform[: len(waveform) // n * n].reshape(-1, n) ** 2).mean(axis=1))


def test_output_is_tonic_shd_format(digit, digit_events):
    import tonic

    waveform, sr = digit
    ev = digit_events
    assert ev.dtype == tonic.datasets.SHD.dtype == SHD_DTYPE and ev.dtype.names == ("t", "x", "p")
    assert len(ev) > 1000
    assert np.all(ev["p"] == 1)
    assert ev["x"].min() >= 0 and ev["x"].max() < SHD_MAX_CHANNELS
    assert np.all(np.diff(ev["t"]) >= 0) and ev["t"].min() >= 0 and ev["t"].max() < len(waveform) / sr * 1e6
    assert AudioToSpikes().sensor_size == tonic.datasets.SHD.sensor_size == (700, 1, 1)


def test_spikes_are_concentrated_in_the_voiced_part(digit, digit_events):
    waveform, sr = digit
    rms = _frame_rms(waveform, sr)
    frame = np.minimum(digit_events["t"] // 10_000, len(rms) - 1)
    voiced = rms >= 0.25 * rms.max()      # ~0.24–0.63 s
    silent = rms < 0.01 * rms.max()       # the first 40 ms and the last 110 ms
    assert voiced.sum() > 20 and silent.sum() > 5
    in_voiced = voiced[frame]
    assert in_voiced.mean() > 0.8                      # most spikes in the voiced half of the clip
    density_ratio = (in_voiced.sum() / voiced.sum()) / ((~in_voiced).sum() / (~voiced).sum())
    assert density_ratio > 5                           # spikes per frame: voiced ≫ elsewhere
    assert silent[frame].mean() < 0.01                 # silence is (almost) silent


def test_channel_rates_follow_frequency_content(digit, digit_events):
    waveform, sr = digit
    a2s = AudioToSpikes()
    cf = a2s.centers[digit_events["x"]]
    rms = _frame_rms(waveform, sr)
    frame = np.minimum(digit_events["t"] // 10_000, len(rms) - 1)
    fricative = digit_events["t"] < 200_000
    voiced = (rms >= 0.25 * rms.max())[frame]
    # the fricative's energy is above 3 kHz (spectral centroid ~7 kHz), the vowel's below 1 kHz
    assert fricative.sum() > 100 and np.median(cf[fricative]) > 4000
    assert np.median(cf[voiced]) < 1000
    counts = np.bincount(digit_events["x"], minlength=700)
    assert counts.max() > 3 * np.median(counts) and (counts == 0).sum() > 10  # rates differ between channels


@pytest.mark.parametrize("freq", [300, 1000, 3000, 6000])
def test_pure_tone_excites_channels_around_its_frequency(freq):
    a2s = AudioToSpikes()
    sr = 16000
    t = np.arange(int(0.4 * sr)) / sr
    ev = a2s(0.5 * np.sin(2 * np.pi * freq * t), sr)
    counts = np.bincount(ev["x"], minlength=a2s.n_channels)
    weighted_cf = (a2s.centers * counts).sum() / counts.sum()
    assert abs(weighted_cf - freq) < 0.15 * freq
    far = np.abs(np.log2(a2s.centers / freq)) > 1.5  # more than 1.5 octaves away
    assert counts[far].sum() < 0.05 * counts.sum()


def test_silence_gives_no_spikes_and_level_does_not_matter_when_normalised(digit):
    waveform, sr = digit
    a2s = AudioToSpikes()
    assert len(a2s(np.zeros(8000), 16000)) == 0
    np.testing.assert_array_equal(a2s(0.1 * waveform, sr), a2s(waveform, sr))


@pytest.mark.parametrize("normalize", [True, False])
def test_a_dc_offset_changes_no_spike(digit, normalize):
    """The mean is removed before the filterbank: the low channels' gammatone tails (0.075 at 0 Hz for channel 0)
    made a constant offset fire ~300 channels for as long as it lasted."""
    waveform, sr = digit
    a2s = AudioToSpikes(normalize=normalize)
    peak = np.abs(waveform).max()
    plain = a2s(waveform, sr)
    for offset in (0.05 * peak, -0.1 * peak):
        shifted = a2s(waveform + offset, sr)
        assert len(shifted) == len(plain) and np.mean(shifted == plain) > 0.999  # the same, up to rounding
    for value in (0.5, 0.1, -0.7):  # a constant is silence, also resampled (its rounding residue is not amplified)
        assert len(a2s(np.full(16000, value), 16000)) == 0
        assert len(a2s(np.full(16000, value), 44100)) == 0


def test_deterministic_with_seed(digit):
    waveform, sr = digit
    clip = waveform[: sr // 2]
    assert np.array_equal(AudioToSpikes()(clip, sr), AudioToSpikes()(clip, sr))
    noisy = AudioToSpikes(noise_std=0.05, seed=3)
    a, b = noisy(clip, sr), AudioToSpikes(noise_std=0.05, seed=3)(clip, sr)
    assert np.array_equal(a, b)
    c = AudioToSpikes(noise_std=0.05, seed=4)(clip, sr)
    assert not np.array_equal(a, c)


def test_fewer_channels_mel_and_power_options(digit):
    waveform, sr = digit
    for kw in ({"n_channels": 64}, {"n_channels": 128, "filterbank": "mel"}, {"compression": "power"}):
        a2s = AudioToSpikes(**kw)
        ev = a2s(waveform, sr)
        assert len(ev) > 500 and ev["x"].max() < a2s.n_channels and ev.dtype == SHD_DTYPE


def test_from_file_equals_call(digit, real_file):
    a2s = AudioToSpikes(n_channels=100)
    np.testing.assert_array_equal(a2s.from_file(real_file("spoken_digit.flac")), a2s(*digit))


def test_waveform_layouts_and_resampling():
    sr_in, sr_out = 48000, 16000
    t_in = np.arange(4800) / sr_in
    sine = np.sin(2 * np.pi * 440 * t_in)  # 44 whole periods: FFT resampling is exact
    np.testing.assert_allclose(resample(sine, sr_in, sr_out), np.sin(2 * np.pi * 440 * np.arange(1600) / sr_out),
                               atol=1e-9)
    a2s = AudioToSpikes(n_channels=32)
    mono = a2s(sine, sr_in)
    assert len(mono) > 0
    np.testing.assert_array_equal(a2s(np.stack([sine, sine], axis=1), sr_in), mono)  # frames × channels
    np.testing.assert_array_equal(a2s(np.stack([sine, sine]), sr_in), mono)          # channels × frames
    import torch

    np.testing.assert_array_equal(a2s(torch.from_numpy(sine), sr_in), mono)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"n_channels must be an integer in \[1, 700\]"):
        AudioToSpikes(n_channels=701)
    with pytest.raises(ValueError, match="f_max"):
        AudioToSpikes(sample_rate=8000, f_max=5000)
    with pytest.raises(ValueError, match="filterbank"):
        AudioToSpikes(filterbank="bark")
    with pytest.raises(ValueError, match="tau_mem_s must be a positive finite number, got 0"):
        AudioToSpikes(tau_mem_s=0)  # seconds, named so: LIF(tau_mem_ms=5) is milliseconds
    with pytest.raises(ValueError, match="NaN"):
        AudioToSpikes()(np.array([0.0, np.nan]), 16000)
    with pytest.raises(ValueError, match="empty"):
        AudioToSpikes()(np.zeros(0), 16000)
    cf = center_frequencies(10, 100, 5000)
    assert cf[0] == pytest.approx(100) and cf[-1] == pytest.approx(5000) and np.all(np.diff(cf) > 0)


def test_missing_soundfile_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "soundfile", None)  # import soundfile → ImportError
    with pytest.raises(ImportError, match="soundfile"):
        load_audio(tmp_path / "x.flac")


def test_unreadable_audio_file_names_it(tmp_path):
    pytest.importorskip("soundfile")
    path = tmp_path / "noise.flac"
    path.write_bytes(b"definitely not audio" * 10)
    with pytest.raises(ValueError, match="noise.flac"):
        load_audio(path)


# ------------------------------------------------------------------------------------------------ SHD writer


def test_written_shd_file_reads_back_in_tonic_identically(tmp_path, digit_events):
    from tonic.datasets import SHD

    rng = np.random.default_rng(0)
    other = np.zeros(200, dtype=SHD_DTYPE)
    other["t"] = np.sort(rng.integers(0, 2_000_000, 200))
    other["x"] = rng.integers(0, 700, 200)
    other["p"] = 1
    samples = [digit_events, other, digit_events[:0]]
    root = tmp_path / "data"
    path = write_shd_h5(root / "SHD" / "shd_train.h5", samples, [7, 2, 0], keys=[f"digit {i}" for i in range(20)],
                        speakers=[1, 2, 3])
    (root / "SHD" / "shd_train.h5.zip").write_bytes(b"")  # tonic only checks that the archive exists
    ds = SHD(str(root), train=True)
    assert len(ds) == 3 and ds.classes[7] == b"digit 7" and list(ds.speaker) == [1, 2, 3]
    for i, sample in enumerate(samples):
        ev, label = ds[i]
        assert ev.dtype == SHD.dtype
        np.testing.assert_array_equal(ev, sample)  # exact µs round trip through seconds
        assert label == [7, 2, 0][i]
    ours = read_shd_h5(path)
    for i, sample in enumerate(samples):
        np.testing.assert_array_equal(ours.events[i], sample)
    assert ours.keys[7] == "digit 7" and ours.speakers.tolist() == [1, 2, 3]
    assert sorted(p.name for p in (root / "SHD").iterdir()) == ["shd_train.h5", "shd_train.h5.zip"]


def test_writer_is_atomic_and_validates(tmp_path, monkeypatch):
    good = np.zeros(3, dtype=SHD_DTYPE)
    good["t"], good["x"] = [0, 10, 20], [1, 2, 3]
    path = write_shd_h5(tmp_path / "s.h5", [good], [1])
    before = path.read_bytes()
    bad = good.copy()
    bad["x"][1] = 700
    with pytest.raises(ValueError, match=r"channels must be in \[0, 700\)"):
        write_shd_h5(path, [bad], [1])
    with pytest.raises(ValueError, match="2 samples but 1 labels"):
        write_shd_h5(path, [good, good], [1])

    import h5py

    real_create = h5py.Group.create_dataset

    def crash(self, name, *args, **kwargs):  # fail half-way through writing
        if name == "labels":
            raise OSError("disk full")
        return real_create(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", crash)
    with pytest.raises(OSError, match="disk full"):
        write_shd_h5(path, [good, good], [1, 2])
    assert path.read_bytes() == before  # the old file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["s.h5"]  # and no temporary file is left behind


@pytest.mark.parametrize("n, m", [(1024, 2048), (1000, 1500), (1001, 300), (1024, 334), (999, 2002), (48, 16)])
def test_resampling_equals_scipy_including_the_nyquist_bins(n, m):
    scipy_signal = pytest.importorskip("scipy.signal")
    x = np.random.default_rng(n + m).standard_normal(n)
    np.testing.assert_allclose(resample(x, n, m), scipy_signal.resample(x, m), atol=1e-10)
    tone = np.cos(np.pi * np.arange(8))  # a tone at the Nyquist frequency, upsampled ×2: amplitude 1, not 2
    assert abs(resample(tone, 8000, 16000)).max() == pytest.approx(1.0)


def test_shd_writer_refuses_what_it_would_store_wrongly(tmp_path):
    ev = np.zeros(2, dtype=[("t", "<f8"), ("x", "<i8")])
    ev["t"] = [10, 20]
    with pytest.raises(ValueError, match=r"labels must be integers in \[0, 65535\]"):
        write_shd_h5(tmp_path / "a.h5", [ev], [70000])  # uint16 would store 4464
    with pytest.raises(ValueError, match="1 keys for labels up to 3"):
        write_shd_h5(tmp_path / "a.h5", [ev], [3], keys=["zero"])
    ev["t"] = [10.7, 20.9]
    with pytest.raises(ValueError, match="whole microseconds.*10.7"):
        write_shd_h5(tmp_path / "a.h5", [ev], [0])
    assert not (tmp_path / "a.h5").exists()


# ------------------------------------------------------------------------------------------------ mistakes


@pytest.mark.parametrize("n, sr", [(1, 16000), (7, 16000), (3, 8000), (22, 48000)])
def test_a_clip_shorter_than_one_step_is_an_error_not_an_empty_sample(n, sr):
    """dt_s = 0.5 ms: 8 samples at 16 kHz (22 at 48 kHz resample to 7). Such a clip used to give no events, silently
    (indistinguishable from silence in a dataset)."""
    a2s = AudioToSpikes(f_max=3000)
    clip = np.sin(np.arange(n) + 1.0)
    with pytest.raises(ValueError, match=rf"{n} sample\(s\) at {sr} Hz .*shorter than one LIF step \(dt_s = 0.5 ms\)"):
        a2s(clip, sr)
    assert a2s(np.tile(clip, 3 * 8 * 48000 // sr), sr).dtype == SHD_DTYPE  # a few steps long: converted


def test_a_short_file_is_named(tmp_path):
    soundfile = pytest.importorskip("soundfile")
    path = tmp_path / "click.wav"
    soundfile.write(path, np.array([0.5, -0.5, 0.25]), 16000)
    with pytest.raises(ValueError, match=r"click\.wav: the waveform is 3 sample\(s\)"):
        AudioToSpikes().from_file(path)


def test_a_rate_below_twice_f_max_warns_of_the_channels_it_cannot_reach():
    """An 8 kHz recording holds nothing above 4 kHz; the default front end's channels reach 7.2 kHz, so its top
    120 channels stay (almost) silent, and in a dataset mixing rates the rate shows in the spikes."""
    a2s = AudioToSpikes()
    noise = np.random.default_rng(0).standard_normal(8000)
    dead = int(np.sum(a2s.centers > 4000))
    with pytest.warns(UserWarning, match=rf"8000 Hz holds no frequency above 4000 Hz.*f_max = 7200 Hz: its {dead} "
                                         r"channel\(s\).*AudioToSpikes\(f_max=3600\)") as caught:
        ev = a2s(noise, 8000)
    assert caught[0].filename == __file__  # it points at the caller's line, not inside neurosim
    assert dead == 120 and np.isin(np.arange(700 - dead, 700), ev["x"]).mean() < 0.5  # most of them never fire
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AudioToSpikes(f_max=3600)(noise, 8000)  # the advice given: no warning
        a2s(np.random.default_rng(0).standard_normal(16000), 16000)
        a2s(np.random.default_rng(0).standard_normal(48000), 48000)


def test_call_arguments_and_settings_that_would_fail_silently_are_refused():
    a2s = AudioToSpikes(n_channels=16)
    for rate in (None, "16000", 0, -8000, float("nan"), True):
        with pytest.raises(ValueError, match=rf"sample_rate must be the waveform's rate in Hz .*got {rate!r}"):
            a2s(np.zeros(1000), rate)
    with pytest.raises(ValueError, match="noise_std must be a finite number >= 0, got nan"):
        AudioToSpikes(noise_std=float("nan"))  # used to be accepted: NaN currents never spike
    with pytest.raises(TypeError, match="normalize must be True or False, got 'no'"):
        AudioToSpikes(normalize="no")


def test_shd_writer_refuses_labels_and_speakers_its_reader_would_not_take(tmp_path):
    """2-D labels were written (read_shd_h5 then refused the file: "labels must be 1-D"), a speaker -1 was numpy's
    OverflowError and a key that is not text an AttributeError."""
    ev = np.zeros(2, dtype=SHD_DTYPE)
    ev["t"], ev["x"], ev["p"] = [10, 20], [1, 2], 1
    with pytest.raises(ValueError, match=r"labels must be one integer per sample \(1-D\), got shape \(1, 1\)"):
        write_shd_h5(tmp_path / "a.h5", [ev], [[0]])
    with pytest.raises(ValueError, match=r"speakers must be integers in \[0, 65535\]"):
        write_shd_h5(tmp_path / "a.h5", [ev], [0], speakers=[-1])
    with pytest.raises(ValueError, match="1 samples but speakers of shape \\(2,\\)"):
        write_shd_h5(tmp_path / "a.h5", [ev], [0], speakers=[1, 2])
    assert not (tmp_path / "a.h5").exists()
    back = read_shd_h5(write_shd_h5(tmp_path / "a.h5", [ev, ev], [0, 1], keys=[0, "eins"], speakers=[3, 65535]))
    assert back.keys == ["0", "eins"] and back.speakers.tolist() == [3, 65535] and back.labels.tolist() == [0, 1]


def test_write_shd_h5_takes_class_names_as_an_shd_file_holds_them(tmp_path):
    """extra/keys as h5py reads them from a published file are bytes: they were written as "b'zero'" (str of bytes)."""
    import h5py

    from neurosim.data.audio import write_shd_h5
    from neurosim.data.readers import read_shd_h5

    ev = np.zeros(2, dtype=[("t", "<i8"), ("x", "<i8"), ("p", "<i8")])
    ev["t"], ev["p"] = [10, 20], 1
    first = write_shd_h5(tmp_path / "a.h5", [ev, ev], [0, 1], keys=["zero", "eins"])
    with h5py.File(first, "r") as f:
        keys = f["extra/keys"][()]  # numpy bytes, as from the Heidelberg files
    assert isinstance(keys[0], bytes)
    back = read_shd_h5(write_shd_h5(tmp_path / "b.h5", [ev, ev], [0, 1], keys=keys))
    assert back.keys == ["zero", "eins"]


def test_shd_writer_sorts_each_sample_by_time_and_refuses_a_y_it_cannot_hold(tmp_path):
    """The spikes were written in the order given (the Heidelberg files, and what tonic's ToFrame assumes, are sorted
    by time) and a ``y`` field was dropped without a word, a nonzero one too."""
    from tonic.datasets import SHD

    # neurosim's own shd events (t, x, y = 0, p = 0), shuffled, with ties in time: the stable order is kept
    ev = np.zeros(6, dtype=[("t", np.int64), ("x", np.int64), ("y", np.int64), ("p", np.int64)])
    ev["t"], ev["x"] = [300, 100, 200, 100, 300, 0], [5, 1, 9, 2, 4, 7]
    root = tmp_path / "data"
    write_shd_h5(root / "SHD" / "shd_train.h5", [ev, ev[:0]], [1, 0], keys=["zero", "one"])
    (root / "SHD" / "shd_train.h5.zip").write_bytes(b"")  # tonic only checks that the archive exists
    got, label = SHD(str(root), train=True)[0]
    assert label == 1 and got.dtype == SHD.dtype
    assert got["t"].tolist() == [0, 100, 100, 200, 300, 300]
    assert got["x"].tolist() == [7, 1, 2, 9, 5, 4]  # ties in their given order (1 before 2, 5 before 4)
    assert got["p"].tolist() == [1] * 6
    assert read_shd_h5(root / "SHD" / "shd_train.h5").events[0].tolist() == got.tolist()

    two_rows = ev.copy()
    two_rows["y"][3] = 1
    with pytest.raises(ValueError, match=r"sample 1: event 3 has y = 1, but the SHD format holds one row"):
        write_shd_h5(tmp_path / "b.h5", [ev, two_rows], [0, 1])
    assert not (tmp_path / "b.h5").exists()

"""Audio → spikes in the SHD format: a fast cochlea-like front end and an atomic SHD ``.h5`` writer.

The Spiking Heidelberg Digits (SHD) were made with a detailed inner-ear model (700 channels along the basilar
membrane → hair cells → bushy cells). :class:`AudioToSpikes` is a cheap front end with the same output format,
for turning your own recordings into SHD-style samples that ``tonic.datasets.SHD`` and neurosim's SHD pipeline
(:func:`write_shd_h5` says how) or a folder dataset (:mod:`neurosim.data.folder`) read:

1. **Load / mix / resample.** A waveform (1-D, or 2-D with the shorter axis as channels, which are averaged) at
   any rate is resampled to ``sample_rate`` by band-limited FFT resampling (the spectrum is cut or zero-padded to
   the new length, as ``scipy.signal.resample`` does; exact for band-limited periodic signals, a little edge
   ringing otherwise). Its mean is subtracted: a DC offset (common in microphones and ADCs) would otherwise leak
   through the low channels' filters (the gammatone response is not 0 at 0 Hz) and make them fire throughout, where
   a cochlea does not respond. With ``normalize`` the waveform is then scaled to a peak of 1, so the output does
   not depend on recording level.
2. **Filterbank** (FFT, zero-phase): ``n_channels`` band-pass filters with centre frequencies from ``f_min`` to
   ``f_max``, channel 0 the lowest. ``gammatone``: ERB-spaced centres and the magnitude response of a 4th-order
   gammatone filter, ``|H(f)| = (1 + ((f − fc)/b)²)^−2``, ``b = 1.019·ERB(fc)``, ``ERB(f) = 24.7·(4.37·f/1000 + 1)``
   (Glasberg & Moore 1990). ``mel``: mel-spaced triangular filters (each spans its two neighbours' centres).
   Every filter peaks at gain 1.
3. **Hair cell**: half-wave rectification, then compression — ``log``: ``log(1 + r/floor) / log(1 + 1/floor)``
   (``floor`` = ``log_floor``, maps [0, 1] → [0, 1] with ~60 dB range by default) or ``power``: ``r**power`` —
   then the mean over each LIF step of ``dt_s`` seconds (a low-pass that keeps phase locking below ~1/(2·dt_s) Hz).
4. **LIF neuron per channel** (neurosim's :func:`neurosim.functional.lif_scan`, immediate reset to zero):
   ``v[k] = β·v[k−1] + (1 − β)·gain·d[k] (+ noise)``, ``β = exp(−dt_s/tau_mem_s)``, spike when ``v ≥ 1``. A channel
   whose drive stays above ``1/gain`` fires regularly, faster for louder input; silence gives no spikes.
   ``noise_std`` adds seeded Gaussian membrane noise (same ``seed``, same spikes).

The output is a structured array in tonic's audio dtype ``(t, x, p)`` — ``t`` in µs (the start of the LIF step
that spiked), ``x`` the channel, ``p = 1`` — sorted by time then channel, exactly the dtype of
``tonic.datasets.SHD`` samples, with sensor size ``(n_channels, 1, 1)`` (``n_channels ≤ 700``, SHD's).

:func:`write_shd_h5` stores samples in the SHD file layout (``spikes/times`` in seconds, ``spikes/units``,
``labels``, ``extra/keys``, ``extra/speaker``) atomically, so a crash never leaves half a file.

Example::

    >>> a2s = AudioToSpikes(n_channels=700)                         # doctest: +SKIP
    >>> events = a2s.from_file("seven.flac")                        # doctest: +SKIP
    >>> write_shd_h5("my_shd/shd_train.h5", [events], [7])          # doctest: +SKIP
"""

from __future__ import annotations

import functools
import io
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from neurosim._io import atomic_write_bytes
from neurosim.data.readers import SHD_DTYPE

__all__ = ["SHD_DTYPE", "SHD_MAX_CHANNELS", "AudioToSpikes", "center_frequencies", "erb", "filterbank_response",
           "load_audio", "resample", "write_shd_h5"]

SHD_MAX_CHANNELS = 700
"""Channels of the Spiking Heidelberg Digits (tonic's SHD sensor size is ``(700, 1, 1)``)."""

FILTERBANKS = ("gammatone", "mel")
COMPRESSIONS = ("log", "power")


# --------------------------------------------------------------------------------------------------------------
# waveform handling


def load_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read an audio file with ``soundfile``: ``(waveform [frames] or [frames, channels] float64, sample_rate)``.

    Raises:
        ImportError: ``soundfile`` is not installed (``pip install soundfile`` or ``pip install neurosim[audio]``).
        FileNotFoundError: no such file.
        ValueError: the file is empty or not an audio format soundfile can read (message names the file).
    """
    try:
        import soundfile
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("reading audio files needs the 'soundfile' package: pip install soundfile "
                          "(or pip install 'neurosim[audio]')") from exc
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such audio file: {path}")
    try:
        data, sr = soundfile.read(str(path), dtype="float64", always_2d=False)
    except RuntimeError as exc:  # soundfile.LibsndfileError: unknown format, corrupt or truncated header
        raise ValueError(f"{path}: cannot read audio: {exc}") from exc
    if data.size == 0:
        raise ValueError(f"{path}: the audio file holds no samples")
    return data, int(sr)


def _to_mono(waveform) -> np.ndarray:
    if isinstance(waveform, torch.Tensor):
        waveform = waveform.detach().cpu().numpy()
    w = np.asarray(waveform, dtype=np.float64)
    if w.ndim == 2:
        w = w.mean(axis=1 if w.shape[1] <= w.shape[0] else 0)  # the shorter axis holds the channels
    elif w.ndim != 1:
        raise ValueError(f"waveform must be 1-D (frames) or 2-D (frames × channels), got shape {w.shape}")
    if w.size == 0:
        raise ValueError("waveform is empty")
    if not np.isfinite(w).all():
        raise ValueError("waveform contains NaN or inf")
    return w


def resample(waveform: np.ndarray, orig_rate: float, new_rate: float) -> np.ndarray:
    """Band-limited FFT resampling of a 1-D signal (spectrum truncated or zero-padded; length scales by the ratio).

    Downsampling removes everything above the new Nyquist frequency (no aliasing); the signal is treated as
    periodic, so expect slight ringing at the ends of clips that do not start and end near zero.
    """
    if orig_rate <= 0 or new_rate <= 0:
        raise ValueError(f"sample rates must be > 0, got {orig_rate} → {new_rate}")
    x = np.asarray(waveform, dtype=np.float64)
    if orig_rate == new_rate:
        return x.copy()
    n = x.shape[-1]
    m = max(1, int(round(n * new_rate / orig_rate)))
    spec = np.fft.rfft(x)
    k = min(len(spec), m // 2 + 1)
    out_spec = np.zeros(m // 2 + 1, dtype=complex)
    out_spec[:k] = spec[:k]
    if m < n and m % 2 == 0:  # the new Nyquist bin holds both ±m/2 (irfft keeps its real part), as in scipy
        out_spec[m // 2] *= 2
    elif m > n and n % 2 == 0:  # the old Nyquist bin is shared between ±n/2 of the longer spectrum
        out_spec[n // 2] *= 0.5
    return np.fft.irfft(out_spec, n=m) * (m / n)


# --------------------------------------------------------------------------------------------------------------
# filterbank


def erb(f) -> np.ndarray:
    """Equivalent rectangular bandwidth (Hz) of the human auditory filter at ``f`` Hz (Glasberg & Moore 1990)."""
    return 24.7 * (4.37 * np.asarray(f, dtype=np.float64) / 1000.0 + 1.0)


def _erb_rate(f):
    return 21.4 * np.log10(4.37 * np.asarray(f, dtype=np.float64) / 1000.0 + 1.0)


def _erb_rate_inv(e):
    return (10 ** (np.asarray(e) / 21.4) - 1.0) * 1000.0 / 4.37


def _mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _mel_inv(m):
    return 700.0 * (10 ** (np.asarray(m) / 2595.0) - 1.0)


def center_frequencies(n_channels: int, f_min: float, f_max: float, kind: str = "gammatone") -> np.ndarray:
    """``n_channels`` centre frequencies from ``f_min`` to ``f_max`` Hz, equally spaced on the ERB-rate
    (``gammatone``) or mel (``mel``) scale, ascending."""
    if kind == "gammatone":
        return _erb_rate_inv(np.linspace(_erb_rate(f_min), _erb_rate(f_max), n_channels))
    if kind == "mel":
        return _mel_inv(np.linspace(_mel(f_min), _mel(f_max), n_channels))
    raise ValueError(f"filterbank must be one of {FILTERBANKS}, got {kind!r}")


def filterbank_response(freqs: np.ndarray, centers: np.ndarray, kind: str = "gammatone") -> np.ndarray:
    """Magnitude responses ``[n_channels, len(freqs)]`` of the filterbank at ``freqs`` Hz (peak gain 1)."""
    f = np.asarray(freqs, dtype=np.float64)[None, :]
    fc = np.asarray(centers, dtype=np.float64)[:, None]
    if kind == "gammatone":
        b = 1.019 * erb(fc)
        return (1.0 + ((f - fc) / b) ** 2) ** -2.0
    if kind == "mel":
        c = np.asarray(centers, dtype=np.float64)
        if len(c) > 1:
            lo = np.concatenate([[max(c[0] - (c[1] - c[0]), 0.0)], c[:-1]])[:, None]
            hi = np.concatenate([c[1:], [c[-1] + (c[-1] - c[-2])]])[:, None]
        else:
            lo, hi = fc * 0.5, fc * 1.5
        rise = (f - lo) / np.maximum(fc - lo, 1e-9)
        fall = (hi - f) / np.maximum(hi - fc, 1e-9)
        return np.clip(np.minimum(rise, fall), 0.0, 1.0)
    raise ValueError(f"filterbank must be one of {FILTERBANKS}, got {kind!r}")


def _fast_length(n: int) -> int:
    """The smallest 2·3·5-smooth integer >= n (an FFT length that pocketfft handles quickly)."""
    best = 1 << int(math.ceil(math.log2(max(n, 1))))
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


@functools.lru_cache(maxsize=8)
def _response(n_fft: int, sample_rate: float, n_channels: int, f_min: float, f_max: float, kind: str) -> torch.Tensor:
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    centers = center_frequencies(n_channels, f_min, f_max, kind)
    return torch.from_numpy(filterbank_response(freqs, centers, kind)).float()


# --------------------------------------------------------------------------------------------------------------
# the front end


@dataclass(frozen=True)
class AudioToSpikes:
    """Waveform → SHD-format spike events (see the module docstring for the model).

    Args:
        n_channels: filterbank channels = output neurons (1..700; SHD has 700).
        sample_rate: rate (Hz) the waveform is resampled to before filtering.
        f_min, f_max: lowest / highest centre frequency in Hz; ``f_max`` defaults to ``0.45·sample_rate``
            (and must stay below Nyquist).
        filterbank: ``gammatone`` (ERB-spaced) or ``mel``.
        compression: ``log`` or ``power``.
        log_floor: level (relative to the waveform's peak when ``normalize``) that maps to about 0 under ``log``
            compression; smaller → more sensitive to quiet sounds.
        power: exponent of ``power`` compression.
        normalize: scale each waveform to a peak of 1 before filtering.
        dt_s: LIF time step in seconds (rounded to a whole number of samples at ``sample_rate``); spike times are
            multiples of it.
        tau_mem_s: LIF membrane time constant in seconds.
        gain: drive-to-current gain; a channel fires while its compressed drive exceeds ``1/gain``.
        noise_std: standard deviation of Gaussian noise added to each step's input current (membrane units).
        seed: seed of that noise.
    """

    n_channels: int = SHD_MAX_CHANNELS
    sample_rate: int = 16000
    f_min: float = 50.0
    f_max: float | None = None
    filterbank: str = "gammatone"
    compression: str = "log"
    log_floor: float = 1e-3
    power: float = 0.3
    normalize: bool = True
    dt_s: float = 5e-4
    tau_mem_s: float = 5e-3
    gain: float = 6.0
    noise_std: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.n_channels, bool) or not isinstance(self.n_channels, (int, np.integer)) \
                or not 1 <= self.n_channels <= SHD_MAX_CHANNELS:
            raise ValueError(f"n_channels must be an integer in [1, {SHD_MAX_CHANNELS}] (the SHD format), "
                             f"got {self.n_channels!r}")
        if not self.sample_rate > 0:
            raise ValueError(f"sample_rate must be > 0, got {self.sample_rate!r}")
        if self.filterbank not in FILTERBANKS:
            raise ValueError(f"filterbank must be one of {FILTERBANKS}, got {self.filterbank!r}")
        if self.compression not in COMPRESSIONS:
            raise ValueError(f"compression must be one of {COMPRESSIONS}, got {self.compression!r}")
        nyquist = self.sample_rate / 2
        if not 0 < self.f_min < self.fmax < nyquist:
            raise ValueError(f"need 0 < f_min < f_max < sample_rate/2 = {nyquist:g} Hz, got f_min={self.f_min!r}, "
                             f"f_max={self.fmax!r}")
        for name in ("log_floor", "power", "dt_s", "tau_mem_s", "gain"):
            v = getattr(self, name)
            if not (v > 0 and math.isfinite(v)):
                raise ValueError(f"{name} must be a positive finite number, got {v!r}")
        if not (self.noise_std >= 0 and math.isfinite(self.noise_std)):  # NaN noise would silence every channel
            raise ValueError(f"noise_std must be a finite number >= 0, got {self.noise_std!r}")
        if not isinstance(self.normalize, (bool, np.bool_)):
            raise TypeError(f"normalize must be True or False, got {self.normalize!r}")

    # derived quantities ---------------------------------------------------------------------------------------

    @property
    def fmax(self) -> float:
        return float(self.f_max) if self.f_max is not None else 0.45 * self.sample_rate

    @property
    def hop(self) -> int:
        """Samples per LIF step."""
        return max(1, int(round(self.dt_s * self.sample_rate)))

    @property
    def step_seconds(self) -> float:
        """The LIF step actually used (``hop / sample_rate``)."""
        return self.hop / self.sample_rate

    @property
    def sensor_size(self) -> tuple[int, int, int]:
        """tonic sensor size ``(n_channels, 1, 1)``."""
        return (int(self.n_channels), 1, 1)

    @property
    def centers(self) -> np.ndarray:
        """Centre frequency (Hz) of each channel, ascending."""
        return center_frequencies(self.n_channels, self.f_min, self.fmax, self.filterbank)

    # stages ---------------------------------------------------------------------------------------------------

    def preprocess(self, waveform, sample_rate: float) -> np.ndarray:
        """Mono, resampled to ``self.sample_rate``, zero-mean and (with ``normalize``) peak-normalised waveform.

        A waveform that varies by less than ``1e-9`` of its offset (a constant, up to float rounding) becomes
        silence: normalising its rounding residue would make full-scale noise of it.

        Raises:
            ValueError: ``sample_rate`` is not a positive number, or the waveform is shorter than one LIF step
                (:attr:`step_seconds`), too short to give a spike (often a waveform passed as channels × frames
                with one frame, or a wrong sample rate).

        Warns:
            UserWarning: ``sample_rate / 2`` (the highest frequency the waveform holds) is below ``f_max``: the
                channels centred above it get (almost) no input, so recordings at different rates converted with
                one front end differ by their rate; convert them all with an ``f_max`` below the lowest rate's half.
        """
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float, np.integer, np.floating)) \
                or not (math.isfinite(sample_rate) and sample_rate > 0):
            raise ValueError(f"sample_rate must be the waveform's rate in Hz (a positive number), got {sample_rate!r}")
        mono = _to_mono(waveform)
        w = resample(mono, sample_rate, self.sample_rate)
        if len(w) < self.hop:
            n_in = len(mono)
            raise ValueError(
                f"the waveform is {n_in} sample(s) at {sample_rate:g} Hz ({n_in / sample_rate * 1e3:.3g} ms), shorter "
                f"than one LIF step (dt_s = {self.step_seconds * 1e3:g} ms): it cannot give a spike. Check the "
                "waveform's layout (frames, or frames × channels) and its sample rate, or leave the clip out")
        nyquist = sample_rate / 2
        if nyquist < self.fmax:
            from neurosim._stack import caller_stacklevel as _caller_stacklevel

            dead = int(np.sum(self.centers > nyquist))
            warnings.warn(
                f"a waveform at {sample_rate:g} Hz holds no frequency above {nyquist:g} Hz, but the filterbank reaches "
                f"f_max = {self.fmax:g} Hz: its {dead} channel(s) centred above {nyquist:g} Hz (of {self.n_channels}) "
                "get (almost) no input, and recordings at higher rates would differ from it by their rate alone. "
                f"Convert every recording of a dataset with AudioToSpikes(f_max={0.45 * sample_rate:g}) (below the "
                "lowest rate's half)", UserWarning, stacklevel=_caller_stacklevel())  # (from_file's caller too)
        raw_peak = float(np.max(np.abs(w)))
        w = w - w.mean()  # no DC offset
        if float(np.max(np.abs(w))) <= 1e-9 * raw_peak:
            w = np.zeros_like(w)
        if self.normalize:
            peak = float(np.max(np.abs(w)))
            if peak > 0:
                w = w / peak
        return w

    def drive(self, waveform, sample_rate: float) -> np.ndarray:
        """Compressed, rectified filterbank output per LIF step: ``[steps, n_channels]`` float32 in ``[0, ~1]``."""
        w = self.preprocess(waveform, sample_rate)
        hop = self.hop
        n_steps = max(1, math.ceil(len(w) / hop))
        n = n_steps * hop
        n_fft = _fast_length(n + max(1024, n // 8))  # zero padding keeps the filters' tails from wrapping around
        spec = torch.fft.rfft(torch.from_numpy(w).float(), n=n_fft)
        resp = _response(n_fft, self.sample_rate, self.n_channels, self.f_min, self.fmax, self.filterbank)
        out = torch.empty(self.n_channels, n_steps)
        scale = 1.0 / math.log1p(1.0 / self.log_floor)
        chunk = max(1, int(2**24 // n_fft))  # bound the memory of one chunk of band signals (~64 MB)
        for c0 in range(0, self.n_channels, chunk):
            r = torch.fft.irfft(spec[None, :] * resp[c0:c0 + chunk], n=n_fft)[:, :n]
            r.clamp_min_(0.0)  # half-wave rectification
            if self.compression == "log":
                r.div_(self.log_floor).log1p_().mul_(scale)
            else:
                r.pow_(self.power)
            out[c0:c0 + chunk] = r.reshape(r.shape[0], n_steps, hop).mean(dim=2)
        return out.T.contiguous().numpy()

    def spikes(self, waveform, sample_rate: float) -> np.ndarray:
        """Spike raster ``[steps, n_channels]`` (bool), one row per LIF step of :attr:`step_seconds`."""
        from neurosim.functional import LIFParams, lif_scan

        d = torch.from_numpy(self.drive(waveform, sample_rate))
        beta = math.exp(-self.step_seconds / self.tau_mem_s)
        current = (1.0 - beta) * self.gain * d
        if self.noise_std > 0:
            g = torch.Generator().manual_seed(int(self.seed))
            current = current + self.noise_std * torch.randn(current.shape, generator=g)
        with torch.no_grad():
            s, _ = lif_scan(current.unsqueeze(1), LIFParams(beta=beta, v_th=1.0, reset="zero"))
        return s.squeeze(1).numpy() > 0

    def __call__(self, waveform, sample_rate: float) -> np.ndarray:
        """Events of one waveform in tonic's SHD dtype (``t`` µs, ``x`` channel, ``p`` = 1), sorted by time.

        Args:
            waveform: samples ``[frames]`` or ``[frames, channels]`` / ``[channels, frames]`` (mixed to mono);
                numpy array, list or tensor.
            sample_rate: its rate in Hz (resampled to ``self.sample_rate`` if different).

        Silence gives no events; a waveform shorter than one LIF step is an error, and one whose rate is below
        ``2·f_max`` a warning (see :meth:`preprocess`).
        """
        raster = self.spikes(waveform, sample_rate)
        k, ch = np.nonzero(raster)  # row-major: sorted by step, then channel
        events = np.empty(len(k), dtype=SHD_DTYPE)
        events["t"] = np.round(k * self.step_seconds * 1e6).astype(np.int64)
        events["x"] = ch
        events["p"] = 1
        return events

    def from_file(self, path: str | os.PathLike) -> np.ndarray:
        """Events of an audio file (read with ``soundfile``; see :func:`load_audio`); an error names the file."""
        waveform, sr = load_audio(path)
        try:
            return self(waveform, sr)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None


# --------------------------------------------------------------------------------------------------------------
# SHD writer


def write_shd_h5(path: str | os.PathLike, samples: Sequence[np.ndarray], labels: Sequence[int], *,
                 keys: Sequence[str] | None = None, speakers: Sequence[int] | None = None) -> Path:
    """Write samples as an SHD/SSC-format HDF5 file, atomically (temp file in the same folder, then rename).

    Layout (as the Heidelberg files): ``spikes/times`` (variable-length float64 arrays, seconds),
    ``spikes/units`` (variable-length uint16), ``labels`` (uint16), ``extra/keys`` (class names, bytes),
    ``extra/speaker`` (uint16): what ``tonic.datasets.SHD``/``SSC`` read. Each sample's spikes are stored sorted by
    time, as in the Heidelberg files (a stable sort: spikes at one time keep their order), so readers that bin
    sorted events (tonic's ``ToFrame``) take them as given. Times are stored as ``(t + 0.5 µs) / 1e6`` seconds so
    that readers which truncate ``times·1e6`` to integer µs (tonic, :func:`neurosim.data.readers.read_shd_h5`) get
    ``t`` back exactly. The published SHD/SSC files hold their times as float16 (steps of ~0.5 ms near 1 s; tonic
    issue #321), which cannot keep µs: readers that convert the times to float64 before scaling them (tonic 1.7,
    :func:`~neurosim.data.readers.read_shd_h5`) read both alike.

    To train on such files with neurosim's ``shd`` dataset, write ``ROOT/SHD/shd_train.h5`` and ``shd_test.h5``
    and put an empty ``shd_train.h5.zip`` / ``shd_test.h5.zip`` beside each (tonic only checks that its archive
    exists), then ``neurosim train --config shd --set data.root=ROOT model.num_classes=N``. Its frames are 700
    channels wide; for fewer channels, a folder dataset (``np.save`` each sample's events) is one row of
    ``n_channels`` (:mod:`neurosim.data.folder`).

    Args:
        path: output ``.h5`` file (parent folders are created).
        samples: one event array per sample with fields ``t`` (µs, integer ≥ 0) and ``x`` (channel in [0, 700)),
            e.g. :class:`AudioToSpikes` output or tonic SHD samples, in any order. The format has no ``y`` and no
            polarity (tonic reads ``p = 1``): a ``y`` field must be all 0 (one row of channels, as neurosim's
            ``shd`` dataset gives its events); ``p`` is not stored.
        labels: integer label per sample (≥ 0).
        keys: class names for ``extra/keys`` (text, or bytes as an SHD file holds them); default ``"class 0" …
            "class max(labels)"``.
        speakers: speaker id per sample for ``extra/speaker``; default all 0.

    Returns:
        The path written.

    Raises:
        ValueError: mismatched lengths, labels or speakers that are not one integer in [0, 65535] per sample,
            missing fields, fractional or negative times, channels outside [0, 700), or a ``y`` other than 0
            (which the file cannot hold).
    """
    import h5py

    path = Path(path)
    labels_arr = np.asarray(labels)
    if labels_arr.ndim != 1:
        raise ValueError(f"labels must be one integer per sample (1-D), got shape {labels_arr.shape}")
    if len(samples) != len(labels_arr):
        raise ValueError(f"{len(samples)} samples but {len(labels_arr)} labels")
    if labels_arr.size and (not np.issubdtype(labels_arr.dtype, np.integer) or labels_arr.min() < 0
                            or labels_arr.max() > np.iinfo(np.uint16).max):
        raise ValueError("labels must be integers in [0, 65535] (SHD stores them as uint16)")
    if keys is not None and labels_arr.size and len(keys) <= labels_arr.max():
        raise ValueError(f"{len(keys)} keys for labels up to {labels_arr.max()}: give one key per class")
    times, units = [], []
    for i, ev in enumerate(samples):
        ev = np.asarray(ev)
        if ev.dtype.names is None or "t" not in ev.dtype.names or "x" not in ev.dtype.names:
            raise ValueError(f"sample {i}: expected a structured event array with fields 't' and 'x', got {ev.dtype}")
        if ev["t"].dtype.kind == "f" and not np.array_equal(ev["t"], np.floor(ev["t"])):
            raise ValueError(f"sample {i}: times must be whole microseconds, got fractional values such as "
                             f"{ev['t'][ev['t'] != np.floor(ev['t'])][0]}")
        t = ev["t"].astype(np.int64)
        x = ev["x"].astype(np.int64)
        if len(t) and t.min() < 0:
            raise ValueError(f"sample {i}: negative time {t.min()} µs")
        if len(x) and (x.min() < 0 or x.max() >= SHD_MAX_CHANNELS):
            raise ValueError(f"sample {i}: channels must be in [0, {SHD_MAX_CHANNELS}), got [{x.min()}, {x.max()}]")
        if "y" in ev.dtype.names and np.any(ev["y"] != 0):
            j = int(np.argmax(ev["y"] != 0))
            raise ValueError(f"sample {i}: event {j} has y = {ev['y'][j]}, but the SHD format holds one row of "
                             "channels (no y): it would be lost. Number the channels x in one row (e.g. x + y * "
                             "width), or keep such events in a folder dataset (neurosim.data.folder)")
        order = np.argsort(t, kind="stable")  # the Heidelberg files' order: by time, spikes at one time as given
        times.append((t[order].astype(np.float64) + 0.5) / 1e6)
        units.append(x[order].astype(np.uint16))
    n_classes = int(labels_arr.max()) + 1 if labels_arr.size else 0
    # text; bytes (an SHD file's own extra/keys, as h5py reads them) decoded as read_shd_h5 decodes them
    key_list = ([k.decode() if isinstance(k, bytes) else str(k) for k in keys] if keys is not None
                else [f"class {i}" for i in range(n_classes)])
    spk = np.zeros(len(samples), dtype=np.int64) if speakers is None else np.asarray(speakers)
    if spk.ndim != 1 or len(spk) != len(samples):
        raise ValueError(f"{len(samples)} samples but speakers of shape {spk.shape}: give one speaker id per sample")
    if spk.size and (not np.issubdtype(spk.dtype, np.integer) or spk.min() < 0 or spk.max() > np.iinfo(np.uint16).max):
        raise ValueError("speakers must be integers in [0, 65535] (SHD stores them as uint16)")
    spk = spk.astype(np.uint16)

    buf = io.BytesIO()  # built in memory, then written atomically: an interrupted write leaves no broken file
    with h5py.File(buf, "w") as f:
        vt = f.create_dataset("spikes/times", (len(times),), dtype=h5py.vlen_dtype(np.float64))
        vu = f.create_dataset("spikes/units", (len(units),), dtype=h5py.vlen_dtype(np.uint16))
        for i, (t, u) in enumerate(zip(times, units)):
            vt[i] = t
            vu[i] = u
        f.create_dataset("labels", data=labels_arr.astype(np.uint16))
        f.create_dataset("extra/keys", data=np.array([k.encode() for k in key_list], dtype=bytes)
                         if key_list else np.zeros(0, dtype="S1"))
        f.create_dataset("extra/speaker", data=spk)
    atomic_write_bytes(path, buf.getvalue())
    return path

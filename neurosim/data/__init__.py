"""neurosim.data: event datasets, the DVS emulator, fast event transforms, frame caching, readers, encoders.

The dataset registry (:func:`get_dataset`) is the entry point: ``get_dataset("event_digits").load("train")`` gives a
tonic-style dataset of ``(events, label)``; :func:`make_loaders` turns a :class:`neurosim.config.DataConfig` into
cached-frame batch loaders for the Trainer (augmented per batch on request: :mod:`neurosim.data.augment`). The
transforms (:class:`ToFrame`, :class:`Denoise`, …) are numba versions of tonic's with the same call style and output;
:mod:`neurosim.data.readers` reads event files with clear errors; :mod:`neurosim.data.encoders` turns images into
spikes and :mod:`neurosim.data.audio` waveforms into SHD-format spikes.
"""

from neurosim.config import AugmentConfig
from neurosim.data.audio import AudioToSpikes, load_audio, write_shd_h5
from neurosim.data.dvs import EVENT_DTYPE, DVSParams, emulate, saccade_offsets
from neurosim.data.encoders import delta_encode, latency_encode, rate_encode
from neurosim.data.event_digits import EventDigits, event_digits_cache_path
from neurosim.data.frames import cached_frames, events_to_frames
from neurosim.data.loaders import FrameLoader
from neurosim.data.pipeline import DataBundle, load_frames, make_loaders
from neurosim.data.readers import (
    BadFile, CheckReport, EventFileError, ShdFile, check_files, read_events, read_nmnist_bin, read_npy_events,
    read_shd_h5,
)
from neurosim.data.registry import (
    DATASETS, DatasetInfo, DatasetNotFoundError, MissingReaderError, get_dataset, register_dataset,
)
from neurosim.data.transforms import (
    CenterCrop, Denoise, Downsample, DropEvent, RandomCrop, RandomFlipLR, RandomFlipUD, RefractoryPeriod, TimeJitter,
    ToFrame, ToVoxelGrid,
)

__all__ = [
    "AugmentConfig", "DATASETS", "DVSParams", "DataBundle", "DatasetInfo", "DatasetNotFoundError", "EVENT_DTYPE",
    "EventDigits", "FrameLoader", "MissingReaderError", "cached_frames", "emulate", "event_digits_cache_path",
    "events_to_frames",
    "get_dataset", "load_frames", "make_loaders", "register_dataset", "saccade_offsets",
    # readers
    "BadFile", "CheckReport", "EventFileError", "ShdFile", "check_files", "read_events", "read_nmnist_bin",
    "read_npy_events", "read_shd_h5",
    # encoders and audio
    "AudioToSpikes", "delta_encode", "latency_encode", "load_audio", "rate_encode", "write_shd_h5",
    # transforms
    "CenterCrop", "Denoise", "Downsample", "DropEvent", "RandomCrop", "RandomFlipLR", "RandomFlipUD",
    "RefractoryPeriod", "TimeJitter", "ToFrame", "ToVoxelGrid",
]

"""neurosim.data: event datasets, the DVS emulator, frame conversion and caching, batch loaders.

The dataset registry (:func:`get_dataset`) is the entry point: ``get_dataset("event_digits").load("train")`` gives a
tonic-style dataset of ``(events, label)``; :func:`make_loaders` turns a :class:`neurosim.config.DataConfig` into
cached-frame batch loaders for the Trainer.
"""

from neurosim.data.dvs import EVENT_DTYPE, DVSParams, emulate, saccade_offsets
from neurosim.data.event_digits import EventDigits, event_digits_cache_path
from neurosim.data.frames import cached_frames, events_to_frames
from neurosim.data.loaders import FrameLoader
from neurosim.data.pipeline import DataBundle, load_frames, make_loaders
from neurosim.data.registry import DATASETS, DatasetInfo, DatasetNotFoundError, get_dataset, register_dataset

__all__ = [
    "DATASETS", "DVSParams", "DataBundle", "DatasetInfo", "DatasetNotFoundError", "EVENT_DTYPE", "EventDigits",
    "FrameLoader", "cached_frames", "emulate", "event_digits_cache_path", "events_to_frames", "get_dataset",
    "load_frames", "make_loaders", "register_dataset", "saccade_offsets",
]

"""From a :class:`neurosim.config.DataConfig` to train/test batch loaders of cached frames."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from neurosim.config import DataConfig
from neurosim.data.frames import cached_frames, events_to_frames
from neurosim.data.loaders import FrameLoader
from neurosim.data.registry import DatasetInfo, get_dataset

__all__ = ["DataBundle", "load_frames", "make_loaders"]


@dataclass
class DataBundle:
    """Train and test loaders plus what they were made from."""

    info: DatasetInfo
    train: FrameLoader
    test: FrameLoader
    train_frames: np.ndarray
    test_frames: np.ndarray


def load_frames(cfg: DataConfig, split: str, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``[N, T, P, H, W]`` and labels of one split, from the frame cache (built on first use)."""
    info = get_dataset(cfg.dataset)
    key = {"dataset": info.name, "split": split, "sensor_size": list(info.sensor_size),
           "n_time_bins": cfg.time_steps, "source": str(info.location(info.root(cfg.root)))}

    def build():
        ds = info.load(split, cfg.root, progress=progress)
        return events_to_frames(ds, info.sensor_size, cfg.time_steps, progress, desc=f"{info.name} {split} frames")

    frames, labels = cached_frames(key, build)
    subset = cfg.train_subset if split == "train" else cfg.test_subset
    if subset is not None:
        frames, labels = frames[:subset], labels[:subset]
    return frames, labels


def make_loaders(cfg: DataConfig, seed: int = 0, device: str | torch.device = "cpu",
                 progress: bool = True) -> DataBundle:
    """Loaders for a config's dataset: shuffled (seeded per epoch) training batches and ordered test batches."""
    info = get_dataset(cfg.dataset)
    train_frames, train_labels = load_frames(cfg, "train", progress)
    test_frames, test_labels = load_frames(cfg, "test", progress)
    train = FrameLoader(train_frames, train_labels, cfg.batch_size, shuffle=True, seed=seed, device=device)
    test = FrameLoader(test_frames, test_labels, max(cfg.batch_size, 128), shuffle=False, device=device)
    return DataBundle(info, train, test, train_frames, test_frames)

# %% [markdown]
# # 03 — Event datasets: events, frames, augmentations, and training on a tonic dataset
#
# neurosim reads the neuromorphic datasets of the field through **tonic**, the library this field already uses:
# `neurosim datasets list` shows N-MNIST, DVS Gesture, SHD, SSC, POKER-DVS, N-Caltech101 and CIFAR10-DVS, whether
# each is on disk, and where. This tutorial looks at the raw events of one dataset, turns them into frames, tries
# the usual event augmentations, and trains a spiking network on it — on cached frames, on cached frames augmented
# batch by batch, and with augmentations applied to the events on the fly.
#
# Run from the repository root with neurosim installed (`make install`):
# `.venv/bin/python tutorials/03_event_datasets.py` (figures in `runs/tutorials/03/`, or `NEUROSIM_TUTORIAL_OUT`).
# It uses **N-MNIST**; if it is not on disk yet, the run downloads it first (about 1 GB, into
# `~/.cache/neurosim/datasets/NMNIST`; the same as `neurosim datasets prepare nmnist`). `NEUROSIM_FAST=1` (what the
# tests run) needs no network: it writes a small **POKER-DVS** folder in tonic's exact on-disk format with the test
# suite's fixture writers (`tests/data/fixture_writers.py`) and trains on that. Its events are synthetic — in each
# class a blob crosses the sensor in a direction of its own — so the fast mode's figures show no card pips and its
# near-perfect accuracy says only that the pipeline works.

# %%
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use(os.environ.get("MPLBACKEND", "Agg"))
import matplotlib.pyplot as plt
import numpy as np
import tonic.transforms as T
import torch

import neurosim.data as ND
from neurosim.config import AugmentConfig, config_from_dict
from neurosim.data import DATASETS, get_dataset, make_loaders
from neurosim.data.loaders import time_first_collate
from neurosim.nn import build_model
from neurosim.training import Trainer, seed_everything
from neurosim.viz import event_frames, save_figure, training_curves

FAST = os.environ.get("NEUROSIM_FAST") == "1"
OUT = Path(os.environ.get("NEUROSIM_TUTORIAL_OUT", "runs/tutorials/03"))
OUT.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## The registry
# Every dataset has a name, the sensor size tonic reports (W, H, P), its classes, a default frame transform
# (`T` frames per sample) and, for N-MNIST, DVS Gesture and SHD, a shipped config (`neurosim train --config nmnist`).
# Nothing downloads until you ask: loading a dataset that is not on disk raises an error that says where it would
# go and how big it is.

# %%
for info in DATASETS.values():
    status = "on disk" if info.on_disk(info.root()) else "not on disk"
    print(f"{info.name:13s} {'x'.join(map(str, info.sensor_size)):10s} {info.num_classes:3d} classes  "
          f"T={info.default_time_steps:<3d} {status:12s} {info.location(info.root())}")

if FAST:  # a small POKER-DVS folder in tonic's layout (pips_*/<suit>/*.npy + archive), written by the test fixtures
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "data"))
    import fixture_writers

    NAME, ROOT = "pokerdvs", OUT / "data"
    fixture_writers.write_dataset(NAME, ROOT, per_class=12, events_per_file=1500)
else:
    NAME, ROOT = "nmnist", None
info = get_dataset(NAME)
if not info.on_disk(info.root(ROOT)):
    if not ND.tonic_datasets.offline():
        print(f"{NAME} is not on disk: downloading it now ({info.size_note})")
    try:
        info.prepare(ROOT, frames=False)
    except ND.DatasetNotFoundError as e:  # no network (or NEUROSIM_OFFLINE): say so and stop, no traceback
        sys.exit(f"{e}\nThis tutorial needs {NAME}; NEUROSIM_FAST=1 runs it offline on a small POKER-DVS folder.")

# %% [markdown]
# ## The events
# A sample is `(events, label)`: a structured array with one row per event — pixel `x, y`, timestamp `t` in µs and
# polarity `p` (1 = brighter, ON; 0 = darker, OFF) — read by tonic's own dataset class (`train.dataset` is the
# `tonic.datasets` object).

# %%
train = info.load("train", ROOT)
test = info.load("test", ROOT)
events, label = train[0]
print(train, "|", type(train.dataset).__module__ + "." + type(train.dataset).__name__)
print(f"sample 0: {len(events)} events, label {label}, fields {events.dtype.names}, "
      f"t from {events['t'].min()} to {events['t'].max()} µs, ON {int((events['p'] == 1).sum())} / "
      f"OFF {int((events['p'] == 0).sum())}")

W, H, P = info.sensor_size
fig, (ax_xy, ax_t) = plt.subplots(1, 2, figsize=(10, 4))
on = events["p"] == 1
ax_xy.scatter(events["x"][on], events["y"][on], s=3, c="tab:red", alpha=0.5, label="ON")  # translucent: a pixel
ax_xy.scatter(events["x"][~on], events["y"][~on], s=3, c="tab:blue", alpha=0.5, label="OFF")  # with both is purple
ax_xy.set(xlim=(0, W), ylim=(H, 0), aspect="equal", title="where: every event of sample 0", xlabel="x (pixel)",
          ylabel="y (pixel)")
ax_xy.legend(loc="upper right", fontsize=8)
ax_t.scatter(events["t"] / 1000, events["x"], s=2, c=np.where(on, "tab:red", "tab:blue"))
ax_t.set(title="when: x over time", xlabel="t (ms)", ylabel="x (pixel)")
fig.tight_layout()
save_figure(fig, OUT / "events.png")

# %% [markdown]
# ## Frames
# A network steps through time, so the event stream becomes `T` frames: event counts per time bin, polarity and
# pixel, `[T, P, H, W]`. `info.frame_transform(T)` is neurosim's fast `ToFrame`, whose output is exactly that of
# tonic's `ToFrame(sensor_size, n_time_bins=T)` — including tonic's bin edges, which leave the events of the last
# few µs (at least those at the last timestamp) in no frame: hence one or a few events fewer counted than recorded.

# %%
TIME_STEPS = 10
to_frame = info.frame_transform(TIME_STEPS)
frames = to_frame(events)
print("frames:", frames.shape, frames.dtype, "| events counted:", int(frames.sum()), "of", len(events))
save_figure(event_frames(frames, title=f"{NAME} sample 0 (label {label}) as {TIME_STEPS} frames"),
            OUT / "frames.png")

# %% [markdown]
# ## Augmentations
# Event data are small, so training usually perturbs the events: **time jitter** (move each event by a few
# hundred µs), **event drop** (remove a random share of events), **spatial jitter** (move events by about a
# pixel) — all keep the label. **Flips** are common for objects, but change the meaning of digits and of
# "left/right hand" gestures, so they are shown here and left out of training. **Denoise** is a filter, not an
# augmentation: it removes events with no neighbour within `filter_time` (sensor noise). `neurosim.data` has numba
# versions of tonic's transforms with the same parameters (`ND.Denoise` is ~175–215× faster than tonic's on a
# million events, `benchmarks/results/transforms.json`); with `tonic_compatible=True` their output is tonic's
# exactly, by default Denoise and RefractoryPeriod also treat a pixel that has not fired yet as silent (tonic keeps
# isolated events in the first `filter_time`). They mix freely with tonic's (spatial jitter below is tonic's). Each
# panel sums the frames over time.

# %%
rng_seed = 3
np.random.seed(rng_seed)  # tonic's random transforms draw from numpy's global generator (neurosim's take seed=)
span_us = int(events["t"].max() - events["t"].min())
augmentations = {
    "original": None,
    "time jitter": ND.TimeJitter(std=0.02 * span_us, clip_negative=True, sort_timestamps=True, seed=rng_seed),
    "drop 30 %": ND.DropEvent(p=0.3, seed=rng_seed),
    "spatial jitter": T.SpatialJitter(sensor_size=info.sensor_size, var_x=1.0, var_y=1.0, clip_outliers=True),
    "flip left-right": ND.RandomFlipLR(sensor_size=info.sensor_size, p=1.0),
    "denoise": ND.Denoise(filter_time=0.05 * span_us),
}
panels, names = [], []
for name, aug in augmentations.items():
    ev = events.copy() if aug is None else aug(events.copy())  # tonic transforms may edit their input in place
    panels.append(to_frame(ev).sum(axis=0))
    names.append(f"{name}\n{len(ev)} ev")
save_figure(event_frames(np.stack(panels), title="one sample under each augmentation (frames summed over time)",
                         labels=names), OUT / "augmentations.png")

# %% [markdown]
# ## Training on cached frames
# `make_loaders` converts each split to frames once and caches them on disk (keyed by dataset, split, sensor and
# `T`, and the files' sizes and times), so the second epoch — and the next run — does no event processing: compare
# the two load times below (the first converts unless an earlier run of the tutorial cached the same files' frames).

# %%
cfg = config_from_dict({
    "name": "cached", "out_dir": str(OUT), "seed": 0,
    "data": {"dataset": NAME, "root": None if ROOT is None else str(ROOT), "time_steps": TIME_STEPS,
             "batch_size": 8 if FAST else 64, "train_subset": None if FAST else 10_000,
             "test_subset": None if FAST else 2_000},
    "model": {"kind": "conv", "input_shape": [P, H, W], "channels": [8, 16] if FAST else [16, 32], "kernel_size": 5,
              "padding": 2, "pool": 2, "num_classes": info.num_classes, "readout": "membrane"},
    "train": {"epochs": 3 if FAST else 4, "lr": 0.005 if FAST else 0.002},
})
t0 = time.perf_counter()
data = make_loaders(cfg.data, seed=cfg.seed)
t1 = time.perf_counter()
make_loaders(cfg.data, seed=cfg.seed)
t2 = time.perf_counter()
print(f"first load (events → frames): {t1 - t0:.2f} s; second load (cache hit): {t2 - t1:.2f} s; "
      f"train frames {tuple(data.train_frames.shape)}")

seed_everything(cfg.seed)
model = build_model(cfg.model, cfg.neuron)
history_cached = Trainer(model, cfg, run_dir=OUT / cfg.name).fit(data.train, data.test, resume=False)

# %% [markdown]
# ## Augmenting the cached frames
# Some augmentations can be done on frames of event counts, so the cached frames can take them batch by batch at
# almost no cost: a shift by whole pixels, a left-right flip, dropping each event with probability `p` (a pixel's
# count `c` becomes Binomial(c, 1 − p)) and a cutout square give the frames of the events so transformed (binned
# in the sample's own time bins).
# `data.augment` turns them on for the training split (`neurosim train --set data.augment.shift=2`; the test split is
# never augmented), drawn anew every epoch from the seed, the epoch and the sample's position in it — so an
# interrupted run resumes, and a torchrun run shards, with the very same augmentations.

# %%
cfg_frames = replace(cfg, name="augmented_frames",
                     data=replace(cfg.data, augment=AugmentConfig(shift=2, drop=0.1)))
data_frames = make_loaders(cfg_frames.data, seed=cfg.seed)  # the cached frames again, augmented per batch
seed_everything(cfg.seed)
model_frames = build_model(cfg_frames.model, cfg_frames.neuron)
history_frames = Trainer(model_frames, cfg_frames, run_dir=OUT / cfg_frames.name).fit(data_frames.train,
                                                                                      data_frames.test, resume=False)

# %% [markdown]
# ## Training with augmentations on the fly
# Other augmented samples (time jitter, sub-pixel spatial jitter) must be framed anew every epoch, so they cannot
# be cached: a `torch.utils.data.DataLoader` applies
# `Compose([augmentations..., ToFrame])` to every sample as it is drawn and `time_first_collate` stacks them into
# `[T, B, P, H, W]` batches — the Trainer takes any iterable of `(x_seq, y)`. This costs event processing every
# epoch; `DataLoader(num_workers=...)` spreads it over CPU cores. Here every sample has the same number of frames
# (`n_time_bins`); frames by time window give recordings of different lengths, which
# `functools.partial(time_first_collate, pad=True)` zero-pads at the end to the batch's longest.

# %%
train_augment = T.Compose([
    ND.DropEvent(p=0.1),
    ND.TimeJitter(std=0.01 * span_us, clip_negative=True, sort_timestamps=True),
    T.SpatialJitter(sensor_size=info.sensor_size, var_x=0.5, var_y=0.5, clip_outliers=True),
    to_frame,
])


class Augmented(torch.utils.data.Dataset):
    """The first ``n`` samples of a split, augmented and framed afresh at every access."""

    def __init__(self, split, transform, n=None):
        self.split, self.transform = split, transform
        self.n = len(split) if n is None else min(n, len(split))

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        events, label = self.split[i]
        return self.transform(events.copy()), label


train_aug = torch.utils.data.DataLoader(Augmented(train, train_augment, cfg.data.train_subset),
                                        batch_size=cfg.data.batch_size, shuffle=True, collate_fn=time_first_collate,
                                        generator=torch.Generator().manual_seed(0))
cfg_aug = replace(cfg, name="augmented")
seed_everything(cfg.seed)
model_aug = build_model(cfg_aug.model, cfg_aug.neuron)
history_aug = Trainer(model_aug, cfg_aug, run_dir=OUT / cfg_aug.name).fit(train_aug, data.test, resume=False)

for name, hist in (("cached frames", history_cached), ("frames augmented", history_frames),
                   ("augmented on the fly", history_aug)):
    print(f"{name:20s} test accuracy after {len(hist)} epochs: {100 * hist[-1]['test_acc']:.1f} %, "
          f"{sum(h['train_time_s'] for h in hist):.1f} s training")
save_figure(training_curves(history_cached, title=f"{NAME}: cached frames"), OUT / "curves_cached.png")
save_figure(training_curves(history_aug, title=f"{NAME}: augmented on the fly"), OUT / "curves_augmented.png")
assert all(np.isfinite(h[-1]["train_loss"]) for h in (history_cached, history_frames, history_aug))

# %% [markdown]
# ## Next
# * Train the shipped configs: `neurosim datasets prepare dvsgesture`, then `neurosim train --config dvsgesture`
#   (or `nmnist`, `shd`). `neurosim datasets check NAME` reads every file of a dataset and lists the bad ones.
# * Tutorial 04 trains with SLTT, whose memory does not grow with `T` — useful for DVS Gesture's 20 steps.

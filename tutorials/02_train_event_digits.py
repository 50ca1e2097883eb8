# %% [markdown]
# # 02 — Train a spiking network on event data, from Python
#
# The bundled **event digits** are scikit-learn's 8×8 digits recorded by neurosim's emulated event camera while it
# makes N-MNIST's three saccades: each sample is a stream of ~4,300 events `(x, y, t, p)` on a 34×34 sensor, in
# tonic's format. This tutorial looks at the events, turns them into frames, trains the classic N-MNIST conv SNN
# with BPTT, and inspects what the trained network does.
#
# Run from the repository root with neurosim installed (`make install`):
# `.venv/bin/python tutorials/02_train_event_digits.py` (figures in `runs/tutorials/02/`, or `NEUROSIM_TUTORIAL_OUT`).
# `NEUROSIM_FAST=1` trains on a small subset for two epochs (what the tests run).

# %%
import os
from pathlib import Path

import numpy as np
import torch

from neurosim.activity import record_outputs
from neurosim.config import config_from_dict
from neurosim.data import EventDigits, make_loaders
from neurosim.nn import build_model
from neurosim.training import Trainer, best_epoch, seed_everything
from neurosim.viz import event_frames, raster, save_figure, training_curves

FAST = os.environ.get("NEUROSIM_FAST") == "1"
OUT = Path(os.environ.get("NEUROSIM_TUTORIAL_OUT", "runs/tutorials/02"))

# %% [markdown]
# ## The events
# The first call generates the dataset (10–20 s, once) and caches it under `~/.cache/neurosim` (set
# `NEUROSIM_CACHE_DIR` to move it). Samples are `(events, label)` like any tonic dataset.

# %%
train_events = EventDigits("train")
events, label = train_events[0]
print(train_events, "| first sample:", len(events), "events, label", label)
print("fields", events.dtype.names, "| t spans", events["t"].min(), "…", events["t"].max(), "µs",
      "| ON events:", int((events["p"] == 1).sum()), "OFF:", int((events["p"] == 0).sum()))

# %% [markdown]
# ## Frames
# The network sees `T` frames per sample: event counts per time bin, polarity and pixel (tonic's `ToFrame` with
# `n_time_bins=T`). neurosim converts the whole split once and caches the frames, so later epochs and runs do no
# event processing at all. In the figure, `t=k` is the k-th time bin; ON events (brighter) are red, OFF events
# (darker) blue: the digit's edges light up as the sensor sweeps across it.

# %%
cfg = config_from_dict({
    "name": "tutorial02", "out_dir": str(OUT), "seed": 0,
    "data": {"dataset": "event_digits", "time_steps": 10, "batch_size": 32, "val_split": 0.1,
             "train_subset": 256 if FAST else None, "test_subset": 128 if FAST else None},
    "neuron": {"tau_mem_ms": 2.0, "dt_ms": 1.0, "surrogate": "atan"},
    "train": {"epochs": 2 if FAST else 6, "lr": 0.005 if FAST else 0.002, "optimizer": "adam", "scheduler": "cosine"},
})
data = make_loaders(cfg.data, seed=cfg.seed)
x0 = torch.as_tensor(data.test_frames[0]).float()  # [T, P, H, W]
print("frames per sample:", tuple(x0.shape))
save_figure(event_frames(x0, title=f"test sample 0 (label {int(data.test.labels[0])})"), OUT / "frames.png")

# %% [markdown]
# ## The model and the training loop
# Conv 2→16 k5 · LIF · MaxPool · Conv 16→32 k5 · LIF · MaxPool · Linear 800→10 · LIF, over `[T, B, C, H, W]`
# tensors (time first). The `Trainer` runs BPTT with the rate-coded cross-entropy (`rate_ce`: cross-entropy of the
# output's spike rates, its spikes averaged over time) and writes metrics and an atomic checkpoint per epoch to the
# run folder; `fit(..., resume=True)` would continue an interrupted run from that checkpoint (here every run of the
# tutorial starts afresh). `data.val_split = 0.1` held a tenth of the training
# samples out (`data.val`): each epoch is evaluated on them too, and `best.pt` keeps the epoch that did best there.
# That is the model to report, with its test accuracy — picking the best epoch by test accuracy would overstate it.

# %%
seed_everything(cfg.seed)
model = build_model(cfg.model, cfg.neuron)
print(model)
trainer = Trainer(model, cfg, run_dir=OUT / cfg.name)
history = trainer.fit(data.train, data.test, val_loader=data.val, resume=False)
best = best_epoch(history)
print(f"test accuracy after {len(history)} epoch(s): {100 * history[-1]['test_acc']:.1f} %; best validation epoch "
      f"{best['epoch']} ({100 * best['val_acc']:.1f} % on {len(data.val.labels)} held-out samples): test accuracy "
      f"{100 * best['test_acc']:.1f} %, weights in {trainer.best_path}")
save_figure(training_curves(history, title="event digits, BPTT"), OUT / "curves.png")

# %% [markdown]
# ## Inside the trained network
# `record_outputs` hooks every LIF layer and returns its spikes for one input, without changing the model; layers
# are named by their index in the `Sequential` printed above (`1`, `4`, `8`: the three LIFs). The raster shows the
# input events and each layer's spikes over the `T` steps (at most 400 neurons of a layer, evenly spaced); the
# output layer's spike counts are the class scores.

# %%
model.eval()
with torch.no_grad():
    out_seq, layers = record_outputs(model, x0.unsqueeze(1))
counts = out_seq.sum(0)[0]
print("output spike counts per class:", counts.int().tolist(), "→ predicted", int(counts.argmax()))
for name, s in layers.items():
    print(f"layer {name}: firing rate {float(s.mean()):.3f} spikes/neuron/step")
panels = {"input": (x0 > 0).float()}
panels.update({f"layer {name}": s[:, 0] for name, s in layers.items()})
save_figure(raster(panels, title="spikes through the network"), OUT / "raster.png")
assert np.isfinite(history[-1]["train_loss"])

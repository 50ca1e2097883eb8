# %% [markdown]
# # 04 — SLTT: training whose memory does not grow with the number of time steps
#
# Backpropagation through time (BPTT) keeps every time step's activations until the backward pass, so training
# memory grows linearly with `T` — the reason long DVS or audio sequences do not fit. **SLTT** (Spatial Learning
# Through Time, Meng et al., ICCV 2023) drops the gradient path through the neuron state,
# `u[t] = λ·sg(u[t−1] − V_th·s[t−1]) + W·s_in[t]`. This is tutorial 01's LIF (`u` its membrane before reset
# `h`, `λ` its leak β, `V_th` the threshold, `s_in` the layer's input spikes) with `sg(·)`, stop-gradient
# (`.detach()`: the value passes, its gradient does not). The paper shows that this path carries little of the
# gradient; without it each step can do its forward *and* backward at once and forget everything, accumulating
# weight gradients over steps.
# **SLTT-K** back-propagates only K randomly chosen steps per batch and runs the others without a graph.
#
# This tutorial trains the same conv SNN with BPTT and SLTT on the bundled event digits, compares the accuracy
# curves, and measures the bytes autograd keeps for backward as `T` grows, for BPTT, SLTT and SLTT-K.
#
# Run from the repository root with neurosim installed (`make install`):
# `.venv/bin/python tutorials/04_sltt_memory.py` (figures in `runs/tutorials/04/`, or `NEUROSIM_TUTORIAL_OUT`).
# `NEUROSIM_FAST=1` uses a small subset and fewer epochs (what the tests run). In a config file the same choice is
# two lines of `[train]`: `method = "sltt"` (or `"sltt_k"` with `k = 2`) and a per-step loss, `loss = "tet"` or
# `"sltt_mix"`.

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from matplotlib.ticker import MaxNLocator

from neurosim.config import config_from_dict
from neurosim.data import make_loaders
from neurosim.nn import build_model
from neurosim.training import TET, SavedTensorMeter, Trainer, get_method, seed_everything
from neurosim.training.sltt import SLTT
from neurosim.viz import save_figure

FAST = os.environ.get("NEUROSIM_FAST") == "1"
OUT = Path(os.environ.get("NEUROSIM_TUTORIAL_OUT", "runs/tutorials/04"))


def config(method: str, time_steps: int = 10):
    return config_from_dict({
        "name": f"tutorial04_{method}", "out_dir": str(OUT), "seed": 0,
        "data": {"dataset": "event_digits", "time_steps": time_steps, "batch_size": 32,
                 "train_subset": 256 if FAST else None, "test_subset": 128 if FAST else None},
        "neuron": {"tau_mem_ms": 2.0, "dt_ms": 1.0, "surrogate": "atan"},
        # the per-step loss (TET: mean over steps of CE) is the one SLTT optimises step by step; use it for both
        "train": {"method": method, "loss": "tet", "epochs": 2 if FAST else 6, "lr": 0.005 if FAST else 0.002,
                  "optimizer": "adam", "scheduler": "cosine"},
    })


# %% [markdown]
# ## Same model, same data, two training methods
# The model object is identical for both; only `train.method` changes. The Trainer asks the method for the
# gradients of each batch and takes one optimizer step.

# %%
histories = {}
for method in ("bptt", "sltt"):
    cfg = config(method)
    data = make_loaders(cfg.data, seed=cfg.seed)
    seed_everything(cfg.seed)
    model = build_model(cfg.model, cfg.neuron)
    trainer = Trainer(model, cfg, run_dir=OUT / cfg.name)
    histories[method] = trainer.fit(data.train, data.test, resume=False)
    print(f"{method}: test accuracy {100 * histories[method][-1]['test_acc']:.1f} % after "
          f"{len(histories[method])} epochs, {sum(h['train_time_s'] for h in histories[method]):.1f} s")

fig, ax = plt.subplots(figsize=(6, 3.6))
for method, style in (("bptt", "-o"), ("sltt", "-s")):
    h = histories[method]
    ax.plot([m["epoch"] for m in h], [100 * m["test_acc"] for m in h], style, label=method.upper())
ax.set(xlabel="epoch", ylabel="test accuracy (%)", title="event digits: BPTT vs SLTT")
ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs only
ax.grid(alpha=0.3)
ax.legend()
save_figure(fig, OUT / "accuracy.png")

# %% [markdown]
# ## Memory against T
# `SavedTensorMeter` counts every tensor autograd saves for backward while it is alive and keeps the peak — the
# memory a training method decides to keep, independent of the allocator or the device. One training step of
# each method on one batch, for growing `T`:

# %%
steps = [4, 8, 16] if FAST else [5, 10, 20, 50]
cfg = config("bptt")
seed_everything(0)
model = build_model(cfg.model, cfg.neuron)
x_long = (torch.rand(max(steps), 16, 2, 34, 34) < 0.05).float()  # 16 samples of random events, [T, B, C, H, W]
y = torch.randint(0, 10, (16,))
methods = {"BPTT": get_method("bptt"), "SLTT": get_method("sltt"),
           "SLTT, 8-step chunks": SLTT(time_chunk=None), "SLTT-K (K=2)": get_method("sltt_k", k=2)}
peak_mb = {name: [] for name in methods}
for T in steps:
    for name, method in methods.items():
        model.zero_grad(set_to_none=True)
        with SavedTensorMeter() as meter:
            method.forward_backward(model, x_long[:T], y, TET())
        peak_mb[name].append(meter.peak_mb)
    print(f"T = {T:3d}: " + ", ".join(f"{n} {v[-1]:.1f} MB" for n, v in peak_mb.items()))

fig, ax = plt.subplots(figsize=(6, 3.6))
# SLTT and SLTT-K keep the same bytes, and the chunked SLTT as much as BPTT up to one chunk: the lines lie on each
# other, so they differ in marker size and line style
for name, (marker, size, style) in zip(methods, (("o", 9, "-"), ("s", 9, "-"), ("x", 7, "--"), ("^", 5, ":"))):
    ax.plot(steps, peak_mb[name], marker=marker, ms=size, ls=style, label=name)
ax.set(xlabel="time steps T", ylabel="peak saved for backward (MB)", title="training memory vs T (batch 16)")
ax.grid(alpha=0.3)
ax.legend()
save_figure(fig, OUT / "memory_vs_T.png")

# %% [markdown]
# BPTT's memory grows in proportion to `T`; SLTT's and SLTT-K's stay at one step's worth. SLTT can also forward
# and backward several steps per call with the same gradients — the temporal path is cut inside the chunk too —
# (`SLTT(time_chunk=None)`: about 128 samples per call on CPU, 8 steps of this batch of 16; config
# `train.time_chunk = 8`): its memory then stops growing at one chunk's worth, and on CPU it runs faster (4-step
# chunks in bench_sltt, T = 50, batch 32: 26 % less time than one step per call, 0.89× BPTT's).
# What it costs: SLTT ignores the temporal gradient, which the paper finds costs little accuracy (here, in full mode
# with one CPU thread, both reach 95.3 % after 6 epochs; the fast mode's 2 epochs on 256 samples are too short to
# compare), and SLTT-K also skips most steps' backward passes, so it is faster. `benchmarks/bench_sltt.py`
# measures process memory and time per iteration for the same comparison, with snnTorch's BPTT alongside.

# %%
chunked = peak_mb["SLTT, 8-step chunks"]
assert peak_mb["SLTT"][0] == peak_mb["SLTT"][-1] and chunked[1] == chunked[-1] > peak_mb["SLTT"][-1]
assert peak_mb["BPTT"][-1] > peak_mb["BPTT"][0]

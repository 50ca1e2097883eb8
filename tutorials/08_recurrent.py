# %% [markdown]
# # 08 — Recurrence: holding an answer after the input has gone
#
# A LIF neuron forgets at the rate its membrane leaks: with τ = 2 ms at 1 ms steps each step keeps
# β = e^(−1/2) ≈ 0.61 of the membrane, so ten steps later 0.61¹⁰ ≈ 0.7 % of it is left; a neuron whose membrane is
# reset to zero when it spikes, and that receives no more input, never spikes again. A **recurrent** layer
# (`neurosim.nn.RLIF`) also feeds its own spikes back, `h[t] = β·v[t−1] + W·x[t] + W_rec·s[t−1]` (tutorial 01's LIF
# plus the feedback), so activity can outlast the input and carry what it saw. Recurrent SNNs are what Cramer et al.
# (IEEE TNNLS 2020) found ahead of feed-forward ones on the Spiking Heidelberg Digits, whose words unfold over a
# second.
#
# The task here makes memory the whole question. Each bundled event digit is cut into 5 time bins of events,
# followed by 10 **empty** bins, and the class is read at the **last** step only (`train.loss = "last_ce"`,
# cross-entropy of the last step's output; each loss predicts with the read-out it trains, here `argmax o_T`).
# The read-out is non-spiking and keeps nothing of earlier steps (`model.readout_beta = 0`: `o_t = W·s_t + b`),
# so at the last step the network can only answer from spikes its hidden layer still fires then. On the plain task
# (the same 5 bins of events, no silence) both networks can answer.
#
# Run from the repository root with neurosim installed (`make install`): `.venv/bin/python tutorials/08_recurrent.py`
# (figures in `runs/tutorials/08/`, or `NEUROSIM_TUTORIAL_OUT`). `NEUROSIM_FAST=1` trains on a subset for fewer
# epochs (what the tests run; the table at the end gives both modes' results). In a config file the recurrent
# variant is one line of `[model]`, `recurrent = true`, and the read-out one line of `[train]`, `loss = "last_ce"`
# (or `"max_ce"`, the SHD one).

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from neurosim.config import config_from_dict
from neurosim.data import FrameLoader, make_loaders
from neurosim.nn import LIF, RLIF, Linear, build_model
from neurosim.training import Trainer, seed_everything
from neurosim.training.losses import predict
from neurosim.viz import raster, save_figure

FAST = os.environ.get("NEUROSIM_FAST") == "1"
OUT = Path(os.environ.get("NEUROSIM_TUTORIAL_OUT", "runs/tutorials/08"))
EVENT_BINS, SILENT_BINS = 5, 10
EPOCHS = 6 if FAST else 12


def config(recurrent: bool, reset: str = "zero"):
    return config_from_dict({
        "name": f"tutorial08_{'rlif' if recurrent else 'lif'}", "out_dir": str(OUT), "seed": 0,
        "data": {"dataset": "event_digits", "time_steps": EVENT_BINS, "batch_size": 32,
                 "train_subset": 1024 if FAST else None, "test_subset": 256 if FAST else None},
        # 2×34×34 events → 128 hidden neurons → 10 classes; the read-out keeps no memory of its own
        "model": {"kind": "mlp", "input_shape": [2, 34, 34], "hidden": [128], "readout": "membrane",
                  "readout_beta": 0.0, "recurrent": recurrent},
        "neuron": {"tau_mem_ms": 2.0, "dt_ms": 1.0, "surrogate": "atan", "reset": reset},
        "train": {"method": "bptt", "loss": "last_ce", "epochs": EPOCHS, "lr": 0.005, "optimizer": "adam",
                  "scheduler": "cosine", "device": "cpu"},
    })


# %% [markdown]
# ## The two tasks, from the same frames
# `make_loaders` turns each digit's events into 5 frames; the delayed task appends 10 frames of zeros to every
# sample and serves them with the library's `FrameLoader`, shuffled per epoch like the plain training loader.

# %%
cfg = config(recurrent=False)
data = make_loaders(cfg.data, seed=cfg.seed)


def delayed(frames) -> torch.Tensor:
    """``[N, T, C, H, W]`` frames followed by SILENT_BINS empty ones."""
    f = torch.as_tensor(np.asarray(frames))
    return torch.cat([f, f.new_zeros((f.shape[0], SILENT_BINS, *f.shape[2:]))], dim=1)


tasks = {
    "plain": (data.train, data.test),
    "delayed": (FrameLoader(delayed(data.train_frames), data.train.labels, cfg.data.batch_size, shuffle=True,
                            seed=cfg.seed, drop_last=data.train.drop_last),
                FrameLoader(delayed(data.test_frames), data.test.labels, cfg.data.batch_size)),
}
print(f"{len(data.train.labels)} training and {len(data.test.labels)} test samples; plain T = {EVENT_BINS}, "
      f"delayed T = {EVENT_BINS + SILENT_BINS} ({SILENT_BINS} empty bins at the end)")

# %% [markdown]
# ## The networks
# `build_model` gives Flatten · Linear 2312→128 · LIF · Linear 128→10 · leaky read-out, and with
# `model.recurrent = true` an `RLIF` in the LIF's place. A feed-forward LIF layer has two ways of its own to
# outlast its input, and this task closes both, so that the leak is all the memory it has:
#
# * **Reset to zero** (`neuron.reset = "zero"`), not by subtraction (the default). A subtractive reset takes one
#   threshold off the membrane per spike: a strong input current leaves a membrane many thresholds high, which
#   then fires for as many steps while it leaks — a count held in the membrane's size, and training finds it
#   (weights grow until it spans the silence).
# * **No bias in the hidden layer** (set to zero and frozen here, in both networks). A bias is a constant
#   current: a neuron it drives above threshold fires periodically forever, and the *phase* of that rhythm, set by
#   what the input left in the membrane, is a memory.
#
# With the library's defaults (subtractive reset, biases) the feed-forward network solves the delayed task about
# as well as the recurrent one (the grey curve below). The recurrent weights start at 4× torch's default scale
# (±4/√128): at the default, the fed-back current is too weak for activity to outlive the input at first, and BPTT
# took 10 epochs or more to find the self-sustaining regime, more or less depending on the seed.

# %%
def hidden_layer(model):
    """The spiking hidden layer (LIF or RLIF) and the Linear before it."""
    mods = list(model.modules())
    i = next(i for i, m in enumerate(mods) if isinstance(m, (LIF, RLIF)))
    return mods[i], next(m for m in reversed(mods[:i]) if isinstance(m, Linear))


def make_model(recurrent: bool, bias: bool = False, reset: str = "zero"):
    cfg = config(recurrent, reset)
    seed_everything(cfg.seed)
    model = build_model(cfg.model, cfg.neuron)
    layer, linear = hidden_layer(model)
    if not bias:
        torch.nn.init.zeros_(linear.bias)
        linear.bias.requires_grad_(False)  # the Trainer's optimizer takes only parameters that require grad
    if recurrent:
        with torch.no_grad():
            layer.recurrent.weight.mul_(4.0)
    return model, cfg


@torch.no_grad()
def accuracy(model, loader, loss) -> float:
    """Test accuracy with the loss's own read-out (`predict(out_seq, loss)`: for last_ce, the last step's class)."""
    model.eval()
    correct = sum(int((predict(model(x_seq)[0], loss) == y).sum()) for x_seq, y in loader)
    return correct / len(loader.labels)


def train(recurrent: bool, task: str, bias: bool = False, reset: str = "zero"):
    """Train one network on one task; the test accuracy after every epoch."""
    model, cfg = make_model(recurrent, bias, reset)
    train_loader, test_loader = tasks[task]
    trainer = Trainer(model, cfg, progress=False)
    curve = []
    for epoch in range(1, cfg.train.epochs + 1):
        trainer.fit(train_loader, epochs=epoch)  # continues from the epoch before
        curve.append(accuracy(model, test_loader, trainer.loss))
    return model, curve


# %% [markdown]
# ## Training
# The same config, loss and optimizer for all four runs; only `model.recurrent` and the task change. A fifth
# run trains the feed-forward network with the library's defaults (biases, subtractive reset) on the delayed task.

# %%
curves, models = {}, {}
for task in ("plain", "delayed"):
    for recurrent in (False, True):
        name = ("recurrent (RLIF)" if recurrent else "feed-forward (LIF)")
        models[task, recurrent], curves[task, recurrent] = train(recurrent, task)
        print(f"{task:8s} {name:19s}: test accuracy {100 * curves[task, recurrent][-1]:.1f} % after {EPOCHS} epochs")
bias_model, bias_curve = train(False, "delayed", bias=True, reset="subtract")
print(f"delayed  feed-forward, biases and subtractive reset: {100 * bias_curve[-1]:.1f} %")

counts = np.bincount(np.asarray(data.test.labels), minlength=10)
chance = counts.max() / counts.sum()  # what always answering the commonest test class scores
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
epochs = range(1, EPOCHS + 1)
for ax, task in zip(axes, ("plain", "delayed")):
    ax.plot(epochs, [100 * a for a in curves[task, False]], "-o", label="feed-forward (LIF)")
    ax.plot(epochs, [100 * a for a in curves[task, True]], "-s", label="recurrent (RLIF)")
    if task == "delayed":
        ax.plot(epochs, [100 * a for a in bias_curve], ":", color="grey", label="feed-forward, biases + subtract reset")
    ax.axhline(100 * chance, color="k", lw=0.8, ls="--", label="commonest class for all")
    ax.set(xlabel="epoch", title=f"{task}: {EVENT_BINS} event bins" + (
        f" + {SILENT_BINS} empty" if task == "delayed" else ""))
    ax.grid(alpha=0.3)
axes[0].set_ylabel("test accuracy (%)")
# one legend for both panels, below them: inside, the curves cross every corner of the delayed panel
fig.legend(*axes[1].get_legend_handles_labels(), fontsize=8, ncol=4, loc="lower center")
fig.suptitle("event digits, class read at the last step (last_ce)")
fig.subplots_adjust(top=0.82, bottom=0.27)
save_figure(fig, OUT / "accuracy.png")

# %% [markdown]
# ## What the hidden layers do in the silence
# A forward hook on the hidden layer keeps its output for one test digit: the whole `[T, B, N]` spike sequence
# (an `RLIF` is one module, called once for the whole sequence). The dashed line marks the end of the events.

# %%
x_seq = tasks["delayed"][1].frames[:1].transpose(0, 1).float()  # one test sample, [T, 1, 2, 34, 34]


def hidden_spikes(model) -> torch.Tensor:
    layer, _ = hidden_layer(model)
    kept = {}
    handle = layer.register_forward_hook(lambda module, args, out: kept.update(spikes=out[0]))
    with torch.no_grad():
        model.eval()
        model(x_seq)
    handle.remove()
    return kept["spikes"][:, 0]  # [T, N]


panels = {"input events": (x_seq[:, 0] != 0).float(),
          "LIF, feed-forward": hidden_spikes(models["delayed", False]),
          "RLIF, recurrent": hidden_spikes(models["delayed", True]),
          "LIF, defaults": hidden_spikes(bias_model)}  # biases and subtractive reset
silent = {name: float(s[EVENT_BINS:].mean()) for name, s in panels.items()}
for name, rate in silent.items():
    print(f"{name:18s}: {rate:.3f} spikes per neuron and step in the empty bins")
fig = raster(panels, title=f"test digit {int(data.test.labels[0])}: spikes through the delayed task")
for ax in fig.axes:
    ax.axvline(EVENT_BINS - 0.5, color="tab:red", ls="--", lw=1)
save_figure(fig, OUT / "raster_silent_bins.png")

# %% [markdown]
# The feed-forward layer stops with the last event: at the last step its output is the read-out's bias alone, the
# same for every digit, so it answers one class for all. The recurrent layer keeps firing through the empty bins,
# in a pattern that depends on the digit, and the read-out classifies that pattern. The feed-forward layer with
# the defaults fires on too, from membranes left many thresholds high and from its biases.
#
# Measured on CPU (seed 0; test accuracy after the last epoch; with 1 and 2 CPU threads, whose sums round
# differently, so that training takes another path — the recurrent run most, a sign of how few seeds say):
#
# | mode | plain, LIF | plain, RLIF | delayed, LIF | delayed, RLIF | delayed, LIF with defaults |
# |---|---|---|---|---|---|
# | full (1,438 training / 359 test samples, 12 epochs) | 96.1–96.9 % | 95.3–96.1 % | 10.0 % | 91.6 % | 94.7–95.0 % |
# | `NEUROSIM_FAST=1` (1,024 / 256, 6 epochs) | 94.9–95.7 % | 94.1 % | 9.8 % | 64.8–77.3 % | 80.5–80.9 % |
#
# 10 % is the one class the silent network always answers (its share of the test samples). On the plain task
# recurrence does no better than LIF; in the fast mode's 6 epochs the recurrent net has not yet caught up with the
# feed-forward one that the defaults let remember.

# %%
with torch.no_grad():
    ff_out = models["delayed", False](tasks["delayed"][1].frames[:64].transpose(0, 1).float())[0]
assert silent["LIF, feed-forward"] == 0 and panels["RLIF, recurrent"][-1].sum() > 0
assert len(predict(ff_out, "last_ce").unique()) == 1  # no spikes at the end: one answer for every digit
assert curves["delayed", True][-1] > curves["delayed", False][-1]

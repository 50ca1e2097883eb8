# %% [markdown]
# # 06 — What would my SNN cost on a neuromorphic chip?
#
# The usual answer in SNN papers multiplies operation counts by 0.9 pJ (an addition) or 4.6 pJ (a multiply-add)
# at 45 nm. It ignores the chip: how its memory is organised, what a spike costs to route, what the chip burns
# while idle, and whether the model fits at all. neurosim answers per chip, from each chip's published figures
# (`hardware_models/specs/*.toml`, every constant with its unit and source):
#
# 1. the model is exported to a NIR graph (the format Loihi's Lava, SpiNNaker, Speck's Sinabs and others read);
# 2. its activity is **measured** on test samples (spikes per layer per time step);
# 3. each target's model maps the neurons and synapses to cores within the chip's limits and costs the
#    activity: synaptic events, neuron updates, spike routing, static power × run time.
#
# Run from the repository root with neurosim installed (`make install`):
# `.venv/bin/python tutorials/06_chip_energy.py` (figures in `runs/tutorials/06/`, or `NEUROSIM_TUTORIAL_OUT`).
# It uses the demo model (`runs/demo/checkpoint.pt`, which `make demo` writes; the path is taken from the working
# directory) when it exists and otherwise trains the same network first (8 epochs, about half a minute on one CPU
# thread; a rerun reuses it). The numbers quoted in the text are the demo model's. `NEUROSIM_FAST=1` trains it
# briefly on a subset (what the tests run): a model near chance, whose figures show what each step prints, not the
# results the text discusses.

# %%
import os
from pathlib import Path

import torch

from neurosim.config import load_config
from neurosim.estimation import estimate_model, joules, plot_energy
from neurosim.runs import CONFIGS, load_or_train
from neurosim.training import seed_everything
from neurosim.viz import save_figure

FAST = os.environ.get("NEUROSIM_FAST") == "1"
OUT = Path(os.environ.get("NEUROSIM_TUTORIAL_OUT", "runs/tutorials/06"))
DEMO = Path("runs/demo/checkpoint.pt")

# %% [markdown]
# ## The model: the demo's conv SNN on event digits

# %%
overrides = ["name=tutorial06" + ("_fast" if FAST else ""), f'out_dir="{OUT}"']
if FAST:  # (lr 0.01: at the config's 0.002 its 4 batches leave the output layer silent, every number degenerate)
    overrides += ["data.train_subset=128", "data.test_subset=64", "train.epochs=1", "train.lr=0.01"]
seed_everything(0)
model, cfg, data = load_or_train(None if FAST else DEMO, load_config(CONFIGS / "quickstart.toml", overrides))
print(model)

# %% [markdown]
# ## Estimate on every target
# `estimate_model` does the three steps above and writes `estimate.json`, `activity.json`, `model.nir` and the
# figures. One time step is `dt` of simulated time (here 1 ms): a chip that runs in real time (Speck) takes that
# long per step, and TrueNorth and SpiNNaker advance on a 1 ms tick: a run lasts `T` ticks, and SpiNNaker's static
# power is paid for that long (TrueNorth's published energy per event already includes its leakage). For frames binned
# from a recording, the real step is the recording's duration / T
# (`neurosim estimate --step-ms`, `estimate_model(..., dt_s=...)`).

# %%
torch.manual_seed(0)
report = estimate_model(model, cfg.model.input_shape, data.test, dt_s=cfg.neuron.dt_ms * 1e-3,
                        samples=32 if FAST else 128, out_dir=OUT / "estimate")
print(report.table())
a = report.activity
print(f"\nmeasured on {a.samples} samples: {a.input_events_per_step.sum():.0f} input events and "
      + ", ".join(f"layer {k}: {v.sum():.0f} spikes" for k, v in a.spikes_per_step.items() if k != "input")
      + " per inference")

# %% [markdown]
# ## What dominates, and why
# For every target: its largest energy term, whether the model fits, and how it compares with the naive
# "0.9 pJ per synaptic operation" figure for the same activity.

# %%
for name, e in report.estimates.items():
    part, part_j = max(e.energy_j.items(), key=lambda kv: kv[1])
    share = part_j / e.total_energy_j if e.total_energy_j else 0.0
    naive = e.baselines_j.get("naive_snn_conventional_45nm")
    vs = f", {e.total_energy_j / naive:.2g}× the naive 45 nm estimate" if naive else ""
    fit = "" if e.mapping is None else (" fits" if e.fits else f" does NOT fit ({e.mapping.violations[0].message})")
    print(f"- {name}: {part} is {100 * share:.0f} % of {joules(e.total_energy_j)}{vs};{fit}")

# %% [markdown]
# Typically: on Loihi and SpiNNaker the **synaptic events** dominate — the conv layers give every input spike
# hundreds of targets, and each synaptic event reads its weight from core memory; SpiNNaker's ARM cores spend
# nanojoules per event where Loihi's dedicated logic spends tens of picojoules. Speck publishes no per-event
# energy, so its figure is only resting power × run time (a lower bound, said in its notes). RRAM crossbars
# compute a whole column in one analog read, so their cost is mostly the digital periphery (buffers, ~43 %), then
# the analog cell reads (`rram_neurosim`) or the ADCs (`rram_lsm40nm`), rather than weight fetches. TrueNorth's
# 256-input cores cannot hold a neuron with 400 or 800 inputs: the estimate is marked as not fitting
# ("no (a core limit)": no number of chips helps) and the mapper says which layer is over the limit and by how
# much; its energy figure assumes a chip the model does not run on. SpiNNaker (about 255 neurons per core, 18 cores
# per chip) and `rram_lsm40nm` (one
# 256 Kb macro's tiles) fit the model only on several chips: "no" with the number of chips it would take.
#
# ## Sparser activity, less energy
# Event-driven chips pay per spike. Halving all activity shows which targets profit: the dynamic terms scale,
# static power does not. Training does it with an activity penalty (`--set train.activity_penalty=0.03`, which
# penalises the synaptic operations the spikes cause: on the demo model about half the Loihi energy for 1.4 points
# of accuracy; README, "Training for less energy").

# %%
from hardware_models import analyze, estimate  # noqa: E402

facts = analyze(report.graph)
for name in ("loihi", "spinnaker2", "rram_neurosim"):
    full = report.estimates[name].total_energy_j
    half = estimate(facts, report.activity.scaled(0.5), name).total_energy_j
    print(f"{name}: {joules(full)} → {joules(half)} at half the activity ({half / full:.2f}×)")

save_figure(plot_energy(report.estimates.values()), OUT / "energy_breakdown.png")
print(f"\nfigures and estimate.json in {OUT / 'estimate'}")
assert all(e.total_energy_j > 0 for e in report.estimates.values())

# %% [markdown]
# ## Stopping early
# Each step costs a chip energy and time, and many inputs are decided well before the last step. `early_exit`
# measures the accuracy and each target's energy and latency when the chip stops after `t` steps, and when each
# sample stops once its running read-out is confident (SEENN-I; `neurosim estimate --early-exit`). The samples that
# stop after `t` steps are measured over those `t` steps and estimated as such a run.

# %%
from neurosim.estimation.early_exit import early_exit  # noqa: E402

ee = early_exit(model, cfg.model.input_shape, data.test, ["loihi", "truenorth"], loss=cfg.train.loss,
                dt_s=cfg.neuron.dt_ms * 1e-3, thresholds=[0.5, 0.9, 0.99], samples=64 if FAST else None,
                out_dir=OUT / "estimate")
print(ee.table())
sure = next(p for p in ee.policies if p.name == "confidence > 0.9")
print(f"\nconfident at 0.9: {sure.accuracy:.1f} % (all steps: {ee.full.accuracy:.1f} %) in {sure.mean_steps:.1f} of "
      f"{ee.time_steps} steps on average, {sure.energy_j['loihi'] / ee.full.energy_j['loihi']:.2f}x Loihi's energy")
assert sure.mean_steps <= ee.time_steps

# %% [markdown]
# On the demo model (full mode) the confident exit at 0.9 keeps the full accuracy (96.4 %) in 5.7 steps on average,
# for 0.56× the energy on Loihi; a fixed 5 steps costs 1.7 points. The read-out sums output spikes, so a class needs a
# lead of 5 spikes before the softmax passes 0.9 (e⁵/(e⁵ + 9) ≈ 0.94): no digit stops before step 5, 72 % stop there,
# and the ambiguous ones run on — those that stop last still take about as long as all steps.

# %% [markdown]
# ## One sample at a time: the latency the mean hides
# The estimate prices the *mean* activity. Energy is (almost) linear in activity, so that is the mean energy; latency
# is not: Loihi's step lasts as long as its busiest core needs, and the busiest core differs from sample to sample.
# `per_sample` measures and estimates every sample on its own (`neurosim estimate --per-sample`).

# %%
from neurosim.estimation.per_sample import per_sample  # noqa: E402

ps = per_sample(model, cfg.model.input_shape, data.test, ["loihi", "rram_neurosim"], dt_s=cfg.neuron.dt_ms * 1e-3,
                samples=32 if FAST else None, out_dir=OUT / "estimate")
print(ps.table())
lat = ps.costs["loihi"].latency_s
print(f"\nLoihi: {ps.costs['loihi'].latency_of_mean_s * 1e3:.2f} ms for the mean activity; the samples take "
      f"{lat.mean() * 1e3:.2f} ms on average and up to {lat.max() * 1e3:.2f} ms")
assert lat.mean() >= ps.costs["loihi"].latency_of_mean_s * (1 - 1e-9)

# %% [markdown]
# On the demo model (full mode, 359 test samples) Loihi needs 1.59 ms for the mean activity, but the samples take
# 1.73 ms on average (9 % more), 2.0 ms at the 99th percentile and 2.11 ms at most: a real-time budget should be set
# from the tail. The energy's mean equals the mean activity's (169 µJ). On `rram_neurosim` the per-sample mean
# latency is 2 % *below* the mean activity's: a row block is read once however many of its rows are driven, so its
# reads grow less than in proportion to its rows' rates, and one sample's busy rows come together; averaging the
# samples first spreads their events over more block reads than the samples make.

# %% [markdown]
# ## Does the model still work in the chip's integers?
# The estimates assume the chip computes what the float model does. A digital chip holds weights in 8 bits, decays
# in 12-bit fractions and membranes in 16- or 24-bit registers, and its neurons may reset or leak differently.
# `evaluate_fixed_point` runs the test split through the integer model of a chip (Loihi as Lava's bit-accurate
# models compute, Speck as sinabs discretises it; `neurosim estimate --fixed-point` from the command line) and
# separates the two causes: the float model with the chip's weights alone, and the whole chip.

# %%
from neurosim.hardware import evaluate_fixed_point, format_fixed_point  # noqa: E402

samples = 64 if FAST else None
chip_reports = {t: evaluate_fixed_point(model, data.test, t, loss=cfg.train.loss, max_samples=samples)
                for t in ("loihi", "speck")}
for r in chip_reports.values():
    print(format_fixed_point(r), end="\n\n")

# %% [markdown]
# On the demo model the chip's weights alone cost nothing (8 bits are plenty here); what costs accuracy is the
# neurons. Loihi resets a neuron that fires to zero where the model subtracts the threshold (about 2 points).
# Speck's integrate-and-fire neurons do not leak and its cores pool by summing, so every spike of a pooling window
# passes on and activity grows layer by layer (spikes per neuron and step, chip against float) until membranes
# saturate — over 10 points. Both are fixed in training, not after it: train with the chip's neuron.

# %%
ready = {"loihi": ["neuron.reset=zero"], "speck": ["neuron.beta=1.0", "model.pool_type=sum"]}
for target, extra in ready.items():
    tuned_cfg = load_config(CONFIGS / "quickstart.toml", [*overrides, *extra,
                                                           f"name=tutorial06_{target}" + ("_fast" if FAST else "")])
    seed_everything(0)
    tuned, _, _ = load_or_train(None, tuned_cfg)
    r = evaluate_fixed_point(tuned, data.test, target, loss=cfg.train.loss, max_samples=samples)
    before = chip_reports[target]
    print(f"{target} with {' '.join(extra)}: float {r['float_acc']:.1f} %, chip {r['chip_acc']:.1f} % "
          f"(the demo model: chip {before['chip_acc']:.1f} %, {before['chip_acc'] - before['float_acc']:+.1f})")
    assert 0 <= r["chip_acc"] <= 100

# %% [markdown]
# Trained for the chip, the float and chip accuracies agree within about 1–2 points (full mode, with 1–2 CPU threads,
# which move these retrained models by up to ~2 points: Loihi 94.7–96.4 % on the chip against 94.4–95.5 % in float;
# Speck 95.0 % against 96.7–96.9 %). SpiNNaker runs as sPyNNaker computes its LIF in
# s16.15 fixed point (target `spinnaker`); TrueNorth and SpiNNaker 2 publish no number formats in their cited
# sources, so they are not simulated.

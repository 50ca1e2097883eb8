# %% [markdown]
# # 07 — Resistive memory (RRAM) compute-in-memory: energy, device non-idealities, and the RRAM liquid state machine
#
# An RRAM crossbar stores a weight matrix as cell conductances and computes a matrix-vector product in place:
# drive the rows with voltages, and each column's current is `Σ_i V_i·G_ij` (Ohm's and Kirchhoff's laws). For an
# SNN the inputs are spikes, so only rows that receive a spike in a step are driven. Tools for this usually do one
# half: SpikeSim-style estimators cost every crossbar cycle whether a row spiked or not; IBM aihwkit and CrossSim
# simulate device noise but have no energy model. This tutorial does both on one model:
#
# 1. map the demo conv SNN onto crossbar tiles (differential pairs, bit slicing, ADC sharing) and estimate its
#    energy and latency from the measured spikes, activity-aware vs activity-blind, next to Loihi and 45 nm logic;
# 2. program it onto Monte-Carlo chips — conductance levels, programming variation σ, stuck-at cells, read noise,
#    the column ADC — and sweep σ and the fault rate;
# 3. train the RRAM liquid state machine (Lin et al.): a fixed random reservoir whose weights are free from
#    stochastic RRAM switching, plus a trained readout.
#
# Run from the repository root with neurosim installed (`make install`):
# `.venv/bin/python tutorials/07_rram_crossbar.py` (figures in `runs/tutorials/07/`, or `NEUROSIM_TUTORIAL_OUT`). It
# uses the demo model (`runs/demo/checkpoint.pt`, which `make demo` writes; the path is taken from the working
# directory) when it exists and otherwise trains the same network first, for 4 epochs instead of the demo's 8 (a
# rerun reuses it). `NEUROSIM_FAST=1` trains briefly on a subset and evaluates fewer chips and samples (what the
# tests run); its model is far from trained, so its figures show the steps, not the results the text discusses.
# The full run takes about 15 minutes on one CPU thread, most of it rram_neurosim's operating point: 5 chips whose
# 1-bit cells (14 per weight) are each read with noise and converted on their own (`benchmarks/bench_rram.py`, the
# same work: 14 of its 17 minutes then; since read noise is drawn per read, not in each call's shape, the whole
# bench takes about 10 minutes of CPU); the σ and fault-rate sweeps, without per-read effects, take a minute or two.
# It peaks at 3.2 GB of memory (`/usr/bin/time -v`, a later session, before that change; the fast mode: 1.6 GB).

# %%
import os
from pathlib import Path

import torch

from hardware_models import analyze, estimate, load_spec
from hardware_models.crossbar import map_crossbar
from neurosim.config import load_config
from neurosim.estimation import estimate_model, joules, seconds
from neurosim.hardware import (NonIdealConfig, accuracy, apply_nonidealities, format_nonideal, nonideal_report_model,
                               plot_accuracy_vs_fault_rate, plot_accuracy_vs_sigma, plot_energy_breakdown, plot_tiles)
from neurosim.lsm import load_lsm_config, run_lsm
from neurosim.runs import CONFIGS, load_or_train
from neurosim.training import seed_everything
from neurosim.viz import save_figure

FAST = os.environ.get("NEUROSIM_FAST") == "1"
OUT = Path(os.environ.get("NEUROSIM_TUTORIAL_OUT", "runs/tutorials/07"))
DEMO = Path("runs/demo/checkpoint.pt")
RRAM = ("rram_neurosim", "rram_lsm40nm")

# %% [markdown]
# ## The model: the demo's conv SNN on event digits

# %%
overrides = ["name=tutorial07" + ("_fast" if FAST else ""), f'out_dir="{OUT}"']
if FAST:
    overrides += ["data.train_subset=256", "data.test_subset=96", "train.epochs=2", "train.lr=0.005"]
else:
    overrides += ["train.epochs=4"]
seed_everything(0)
model, cfg, data = load_or_train(None if FAST else DEMO, load_config(CONFIGS / "quickstart.toml", overrides))
model.eval()
ideal = accuracy(model, data.test)
print(model)
print(f"ideal (float weights) test accuracy: {ideal:.2f} %")

# %% [markdown]
# ## Mapping onto crossbar tiles
# Two shipped specs (`hardware_models/specs/rram_*.toml`, every constant with its source):
# `rram_neurosim` — DNN+NeuroSim V1.4 defaults: 128×128 sub-arrays, 8-bit weights on 1-bit cells (7 magnitude
# slices per side of a differential pair: 14 columns per weight), 8 columns per 5-bit ADC; `rram_lsm40nm` — a
# 512×512 macro in the spirit of the RRAM LSM paper, 5-bit weights on one 4-bit cell per side.
# A conv layer is unrolled (im2col): `C_in·k·k` rows, `C_out` columns, read once per output position.

# %%
torch.manual_seed(0)
report = estimate_model(model, cfg.model.input_shape, data.test, list(RRAM) + ["loihi", "conventional_45nm"],
                        dt_s=cfg.neuron.dt_ms * 1e-3, samples=32 if FAST else 128)
facts = analyze(report.graph)
for target in RRAM:
    mapping = map_crossbar(facts, load_spec(target))
    print(f"\n{target}: {mapping.tiles} tiles of {mapping.tile_rows}x{mapping.tile_columns}, "
          f"utilisation {100 * mapping.utilisation:.1f} %")
    for layer in mapping.layers:
        print(f"  {layer.target:<6} {layer.kind:<6} {layer.rows:>4} rows x {layer.columns:>3} columns "
              f"({layer.slices} slice(s)/side, {layer.weights_per_tile} weights/tile): {layer.row_tiles} x "
              f"{layer.col_tiles} = {layer.tiles} tiles, read {layer.positions}x per step")
    if mapping.shared_tiles:  # where the chip's tiles would not hold the network, small pieces share a tile
        print(f"  {sum(len(t) for t in mapping.shared_tiles)} small matrices (or last tiles) share "
              f"{len(mapping.shared_tiles)} tile(s) block-diagonally, so the layers' tiles add up to more")
print("\nthe same model on other tile sizes (rram_neurosim):",
      ", ".join(f"{n}x{n}: {map_crossbar(facts, load_spec('rram_neurosim'), tile_size=n).tiles} tiles"
                for n in (64, 128, 256)))

# %% [markdown]
# ## Energy and latency from the measured spikes
# Per step, only rows that received a spike are driven; a tile converts its columns only when one of its rows
# was driven. The **activity-blind** variant drives every row in every crossbar cycle, as SpikeSim counts.

# %%
ests = dict(report.estimates)
for target in RRAM:
    ests[f"{target}_blind"] = estimate(facts, report.activity, target, activity_blind=True)
print(f"{'target':<22}{'energy/inference':>18}{'latency':>12}  largest part")
for name, e in ests.items():
    part, j = max(e.energy_j.items(), key=lambda kv: kv[1])
    lat = e.latency_per_inference_s
    print(f"{name:<22}{joules(e.total_energy_j, 4):>18}{seconds(lat):>12}  "
          f"{part} ({100 * j / e.total_energy_j:.0f} %)")
for target in RRAM:
    ratio = ests[target].total_energy_j / ests[f"{target}_blind"].total_energy_j
    print(f"{target}: activity-aware / activity-blind energy = {ratio:.3f}")
save_figure(plot_energy_breakdown(ests, title="demo model: energy per inference"), OUT / "energy_breakdown.png")
save_figure(plot_tiles({t: ests[t] for t in RRAM}), OUT / "tiles.png")

# %% [markdown]
# On the crossbars the ADC conversions and the digital periphery (membrane reads and writes, accumulation) cost
# more than the analog array itself; the cells' share grows with the number of driven rows — which is why the
# activity-blind count overstates the array and driver energy. On Loihi every synaptic event reads its weight
# from core SRAM (23.6 pJ each), and the conv layers give each input spike hundreds of targets.
#
# ## One chip, then many
# Programming writes each weight as a differential pair `G⁺ − G⁻` between G_off and G_on; on `rram_neurosim` each
# side's 7 magnitude bits go to seven 1-bit cells (`cell_bits=1`, bit slicing), each read by its own column and
# combined after the ADC. A chip deviates from the float model by quantisation to the cell levels, programming
# variation, stuck cells and drift (fixed once programmed, cell by cell), and by read noise and the ADC at every
# read. `apply_nonidealities` gives one seeded chip. A model with BatchNorm has it folded into the conv or linear
# layer before it, `W·γ/√(σ² + ε)`, as the energy estimate costs it: the chip programs the folded weights.

# %%
chip = apply_nonidealities(model, NonIdealConfig(levels=128, cell_bits=1, sigma_rel=0.1, stuck_on_rate=0.01,
                                                 stuck_off_rate=0.01), seed=0)
w, w_chip = model[0].weight.detach(), chip[0].weight.detach()
print(f"conv1 on one chip: relative weight error {float((w_chip - w).norm() / w.norm()):.3f}; "
      f"accuracy {accuracy(chip, data.test):.2f} % (ideal {ideal:.2f} %)")

# %% [markdown]
# `nonideal_report_model` takes the spec's quantisation and bit slicing, on/off ratio, tile rows and ADC, evaluates
# `chips` seeded chips at an operating point (σ 5 %, 1 % stuck cells, 2 % read noise, the ADC), and sweeps σ and the
# fault rate one at a time (the same chips at every value). `neurosim estimate --checkpoint … --nonideal` runs the
# same.

# %%
chips, samples = (2, 48) if FAST else (5, None)
# the chips are compared with the float model on the same test samples (fast mode: the first 48)
ideal_here = ideal if samples is None else accuracy(model, data.test, max_samples=samples)
nonideal = {}
for target in RRAM:
    nonideal[target] = nonideal_report_model(
        model, data.test, target, chips=chips, ideal=ideal_here, max_samples=samples,
        sigmas=(0.0, 0.1, 0.5) if FAST else (0.0, 0.05, 0.1, 0.2, 0.5),
        fault_rates=(0.0, 0.05) if FAST else (0.0, 0.01, 0.02, 0.05, 0.1), out_dir=OUT / "nonideal")
    print(format_nonideal(nonideal[target]))
save_figure(plot_accuracy_vs_sigma(nonideal), OUT / "accuracy_vs_sigma.png")
save_figure(plot_accuracy_vs_fault_rate(nonideal), OUT / "accuracy_vs_fault_rate.png")

# %% [markdown]
# Spiking conv layers average many inputs per column, so independent per-cell variation mostly cancels: even
# σ = 20 % costs little. Stuck cells are worse, most where one cell holds a weight's whole magnitude
# (`rram_lsm40nm`): a cell stuck at G_on turns a small weight into the largest one. On `rram_neurosim`'s 1-bit
# slices only a stuck most significant cell moves a weight that far (64 of its 127 codes); the other six move it by
# 1 to 32 codes, so the same fraction of stuck cells costs less there.
#
# ## The RRAM liquid state machine
# The reservoir is never trained, so it needs no precise weights at all: Lin et al. program a random matrix by
# applying one SET pulse to every cell, which switches it with probability ~½ (stochastic switching). Inputs are
# the events pooled to 16×16 (256 rows), 256 LIF neurons (decay 0.9, threshold 5) whose spikes feed back on 256
# more rows of the same crossbar, T = 50; a linear readout is trained on the spike rates. Three reservoirs:
# Gaussian float weights (software), the RRAM cells read exactly, and the same cells on the chip (read noise,
# 4-bit ADC).

# %%
lsm_over = [f'out_dir="{OUT}"', "name=lsm"]
if FAST:
    lsm_over += ["data.train_subset=300", "data.test_subset=100", "reservoir.neurons=128", "readout.epochs=150",
                 "energy.samples=20"]
lsm = run_lsm(load_lsm_config(CONFIGS / "lsm_event_digits.toml", lsm_over), progress=False)
m = lsm.metrics
print(f"LSM test accuracy ({m['train_samples']} training samples): software {m['acc_software']:.2f} %, RRAM cells "
      f"read exactly {m['acc_rram_ideal']:.2f} %, on the chip {m['acc_rram']:.2f} % (chance {m['chance_acc']:.0f} %)")
for name, e in lsm.estimates.items():
    print(f"  reservoir on {name}: {joules(e.total_energy_j, 4)} per inference")
print(f"report, figures and metrics in {lsm.run_dir}")

# %%
assert all(e.total_energy_j > 0 for e in ests.values())
assert ests["rram_neurosim"].total_energy_j <= ests["rram_neurosim_blind"].total_energy_j
assert m["acc_rram"] > 2 * m["chance_acc"]

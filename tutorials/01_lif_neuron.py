# %% [markdown]
# # 01 — One LIF neuron
#
# A leaky integrate-and-fire neuron integrates its input current into a membrane potential that leaks towards
# zero; when the potential reaches the threshold it emits a spike and is reset. In discrete time (step `dt`):
#
#     h[t] = β·v[t−1] + x[t],   s[t] = H(h[t] − v_th),   v[t] = h[t] − v_th·s[t]      (β = exp(−dt/τ))
#
# This tutorial drives one neuron, plots its membrane and spikes, shows the surrogate gradient that makes the
# step function trainable, and draws a raster of a small population.
#
# Run: `python tutorials/01_lif_neuron.py` (figures go to `runs/tutorials/01/`). `NEUROSIM_FAST=1` is the quick
# mode the tests use.

# %%
import os
from pathlib import Path

import torch

from neurosim.functional import Surrogate
from neurosim.nn import LIF
from neurosim.viz import membrane_trace, raster, save_figure

FAST = os.environ.get("NEUROSIM_FAST") == "1"
OUT = Path(os.environ.get("NEUROSIM_TUTORIAL_OUT", "runs/tutorials/01"))
T = 60 if FAST else 200

# %% [markdown]
# ## A neuron driven by a constant current
# τ = 10 ms at dt = 1 ms gives β ≈ 0.905. With input 0.15 per step the membrane would settle at 0.15/(1 − β) ≈ 1.58,
# above the threshold 1, so the neuron fires regularly.

# %%
lif = LIF(tau_mem_ms=10.0, dt_ms=1.0, v_th=1.0, reset="subtract", record_membrane=True)
x_seq = torch.full((T, 1, 1), 0.15)  # [T, B, N]
spikes, state = lif(x_seq)
print(f"beta = {float(lif.beta):.4f}, spikes in {T} ms: {int(spikes.sum())}")
fig = membrane_trace(state.v_seq[:, 0, 0], spikes[:, 0, 0], v_th=1.0, dt_ms=1.0, title="LIF, constant input 0.15")
print("saved", save_figure(fig, OUT / "membrane.png"))

# %% [markdown]
# ## Reset modes
# `subtract` keeps what overshoots the threshold, `zero` discards it, `none` never resets (the neuron fires every
# step once above threshold).

# %%
for reset in ("subtract", "zero", "none"):
    s, _ = LIF(tau_mem_ms=10.0, reset=reset)(torch.full((T, 1, 1), 0.3))
    print(f"reset={reset:8s} spikes: {int(s.sum())}")

# %% [markdown]
# ## Surrogate gradients
# The spike is a step function: its true derivative is zero almost everywhere. Training replaces it, in the
# backward pass only, by the derivative of a smooth function of the same shape. The forward pass stays exact.

# %%
u = torch.linspace(-2, 2, 9, requires_grad=True)
for name in ("atan", "sigmoid", "fast_sigmoid", "triangle", "rectangle"):
    sur = Surrogate(name)
    print(f"{name:12s} g'(u) =", [round(float(v), 3) for v in sur.grad(u.detach())])

# %% [markdown]
# ## A population raster
# 50 neurons with random input currents: stronger drive, higher rate.

# %%
torch.manual_seed(0)
drive = torch.rand(1, 1, 50) * 0.3
s, _ = LIF(tau_mem_ms=10.0)(drive.expand(T, 1, 50) + 0.05 * torch.randn(T, 1, 50))
print("mean rate per step:", float(s.mean()))
print("saved", save_figure(raster(s[:, 0], title="50 LIF neurons, random drive", dt_ms=1.0), OUT / "raster.png"))

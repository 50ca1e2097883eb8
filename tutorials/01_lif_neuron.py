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
# Run from the repository root once neurosim is installed (`make install` creates `.venv/` with it):
# `.venv/bin/python tutorials/01_lif_neuron.py` (figures go to `runs/tutorials/01/`; `NEUROSIM_TUTORIAL_OUT=DIR`
# puts them elsewhere). `NEUROSIM_FAST=1` is the quick mode the tests use (60 steps instead of 200).

# %%
import os
from pathlib import Path

import torch

from neurosim.functional import Surrogate, spike
from neurosim.nn import LIF
from neurosim.viz import membrane_trace, raster, save_figure

FAST = os.environ.get("NEUROSIM_FAST") == "1"
OUT = Path(os.environ.get("NEUROSIM_TUTORIAL_OUT", "runs/tutorials/01"))
T = 60 if FAST else 200

# %% [markdown]
# ## A neuron driven by a constant current
# τ = 10 ms at dt = 1 ms gives β ≈ 0.905. With input 0.15 per step the membrane would settle at 0.15/(1 − β) ≈ 1.58,
# above the threshold 1, so the neuron fires regularly: it climbs for 10–11 steps, fires, and starts again.
# `record_membrane=True` keeps `h[t]`, the membrane *before* the reset, in `state.v_seq`: the trace peaks just
# above the threshold at each spike and drops by `v_th` on the next step.

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
# step once above threshold). With input 0.5 per step the membrane overshoots by up to half a threshold, so keeping
# the overshoot makes the next spike come sooner: `subtract` fires more often than `zero`. (With a weak input the
# overshoot is small and the two give the same count.)

# %%
for reset in ("subtract", "zero", "none"):
    s, _ = LIF(tau_mem_ms=10.0, reset=reset)(torch.full((T, 1, 1), 0.5))
    print(f"reset={reset:8s} spikes: {int(s.sum())}")

# %% [markdown]
# ## Surrogate gradients
# The spike is a step function of `u = h − v_th`: its true derivative is zero almost everywhere. Training replaces
# it, in the backward pass only, by the derivative `g'(u)` of a smooth function of the same shape (the *surrogate
# gradient*). The forward pass stays exact: `spike(u, surrogate)` returns 0 or 1, and its gradient is `g'(u)`.
# Each surrogate has a sharpness `alpha` (the defaults below; `LIF(..., surrogate="triangle", surrogate_alpha=2)`
# changes them): the narrower `g'`, the closer to the threshold a membrane must be to pass a gradient on.

# %%
u = torch.linspace(-1, 1, 9, requires_grad=True)  # membrane minus threshold
print("u           ", [round(v, 2) for v in u.tolist()])
for name in ("atan", "sigmoid", "fast_sigmoid", "triangle", "rectangle"):
    sur = Surrogate(name)
    s = spike(u, sur)  # forward: the exact step
    (grad,) = torch.autograd.grad(s.sum(), u)  # backward: the surrogate's derivative
    assert torch.equal(s, (u >= 0).float()) and torch.allclose(grad, sur.grad(u.detach()))
    print(f"{name:12s}", [round(float(v), 3) for v in grad], f"(alpha = {sur.alpha:g})")

# %% [markdown]
# ## A population raster
# 50 neurons with random input currents (plus noise), numbered from the weakest drive to the strongest: the
# higher the neuron, the higher its rate. Those whose drive leaves the membrane below threshold (drive below
# 1 − β ≈ 0.095) fire only when the noise pushes them over.

# %%
torch.manual_seed(0)
drive = (torch.rand(50) * 0.3).sort().values.view(1, 1, 50)  # [T=1, B=1, N], sorted: neuron 0 the weakest
s, _ = LIF(tau_mem_ms=10.0)(drive.expand(T, 1, 50) + 0.05 * torch.randn(T, 1, 50))
print(f"mean rate: {float(s.mean()):.3f} spikes per neuron and step")
fig = raster(s[:, 0], title="50 LIF neurons, weakest drive at the bottom", dt_ms=1.0)
print("saved", save_figure(fig, OUT / "raster.png"))

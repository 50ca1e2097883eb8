r"""A fixed random recurrent spiking reservoir whose weights come from stochastic RRAM switching.

**Weights.** Every synapse is a differential pair of cells that received one SET pulse. The pulse switches a
cell to its ON state with probability ``p_switch`` (stochastic switching); its conductance then spreads
log-normally around G_on or G_off (relative to G_on: 1 and ``1/on_off_ratio``)::

    G = (1 if switched else G_off) · exp(σ·ε − σ²/2),   ε ~ N(0, 1)       (mean-preserving spread)
    w = G⁺ − G⁻                                                              (in units of one ON cell)

so the weights are symmetric around 0, with a mass near 0 (both or neither switched) and two lobes at ±1 — the
random matrix that the RRAM liquid state machine gets for free from device stochasticity (Lin et al. 2025).

Three reservoirs are compared (:func:`neurosim.lsm.run_lsm`):

* ``software`` (:meth:`Reservoir.software`): float Gaussian weights with the standard deviation of the RRAM
  weights — the LSM one would simulate without the chip (a different random matrix, not the same one);
* ``rram_ideal`` (``Reservoir.rram(..., exact=True)``): the RRAM conductance draws, read exactly in float;
* ``rram`` (:meth:`Reservoir.rram`): the same draws read on the chip with per-read noise and the column ADC.

**Dynamics** (time-first, input and recurrent rows stacked on one crossbar as on the chip)::

    I[t] = a_in · W_in x[t] + a_rec · W_rec s[t−1],     a_rec = recurrent_scale / sqrt(N)
    v[t] = β·v[t−1] + I[t];   s[t] = H(v[t] − V_th);   v[t] −= V_th·s[t]          (neurosim LIF, subtract reset)

On the chip (``crossbar`` given) the currents are read from the programmed conductances with per-read noise
and, optionally, an ADC (:class:`neurosim.hardware.CrossbarLinear`). The weights are buffers: the reservoir has no
parameters and never receives gradients.

Example:
    >>> import torch
    >>> from neurosim.lsm.config import ReservoirConfig
    >>> cfg = ReservoirConfig(neurons=32)
    >>> res = Reservoir.rram(inputs=20, cfg=cfg, seed=0)
    >>> spikes, _ = res((torch.rand(10, 3, 20) < 0.3).float())   # [T, B, inputs] -> [T, B, neurons]
    >>> spikes.shape, list(res.parameters())
    (torch.Size([10, 3, 32]), [])
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
from torch import nn

from neurosim.hardware.nonideal import CrossbarLinear, NonIdealConfig, _stream_seed
from neurosim.lsm.config import ReservoirConfig
from neurosim.nn import LIF

__all__ = ["Reservoir", "adc_amplitude_problem", "rram_cells", "rate_features", "reservoir_graph"]


def rram_cells(shape, cfg: ReservoirConfig, generator: torch.Generator) -> torch.Tensor:
    """Conductances (relative to G_on) of cells after one stochastic SET pulse each (module docstring)."""
    switched = torch.rand(shape, generator=generator) < cfg.p_switch
    base = torch.where(switched, torch.tensor(1.0), torch.tensor(1.0 / cfg.on_off_ratio))
    spread = torch.exp(cfg.sigma_log * torch.randn(shape, generator=generator) - cfg.sigma_log**2 / 2)
    return base * spread


def adc_amplitude_problem(cfg: ReservoirConfig) -> tuple[str, str] | None:
    """``(key, why)`` where the chip's rows would be read above the full read voltage, which the column ADC's model
    (:class:`neurosim.hardware.CrossbarLinear`: spikes at amplitude ≤ 1, or whole event counts) cannot take:
    ``input_scale > 1``, or ``recurrent_scale / sqrt(neurons) > 1``; None where it can, or without an ADC."""
    if cfg.adc_bits is None:
        return None
    if cfg.input_scale > 1:
        return "input_scale", (f"input rows are read at input_scale times the full read voltage, at most 1 with the "
                               f"{cfg.adc_bits}-bit ADC, got {cfg.input_scale!r}; lower it, or set "
                               "reservoir.adc_bits = none (exact reads)")
    amp = cfg.recurrent_scale / math.sqrt(cfg.neurons)
    if amp > 1:
        return "recurrent_scale", (
            f"recurrent rows are read at recurrent_scale / sqrt(neurons) = {cfg.recurrent_scale:g} / "
            f"sqrt({cfg.neurons}) = {amp:.3g} times the full read voltage, at most 1 with the {cfg.adc_bits}-bit ADC; "
            f"with {cfg.neurons} neurons set recurrent_scale at most {math.sqrt(cfg.neurons):.3g}, more neurons, or "
            "reservoir.adc_bits = none (exact reads)")
    return None


def _draws(inputs: int, seed: int) -> tuple[int, torch.Generator]:
    """``(inputs, generator)``: the number of input rows and the generator of chip ``seed``, both checked first."""
    if isinstance(inputs, bool) or not isinstance(inputs, numbers.Integral) or inputs < 1:
        raise ValueError(f"inputs must be a whole number of input rows >= 1, got {inputs!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**64:
        raise ValueError(f"seed must be an integer in [0, 2**64 - 1] (torch's generator and the chip's read-noise "
                         f"stream take no other), got {seed!r}")
    return int(inputs), torch.Generator().manual_seed(int(seed))


class Reservoir(nn.Module):
    """Fixed recurrent LIF reservoir ``forward(x_seq, state=None) -> (spikes_seq, state)``.

    Args:
        w: ``[neurons, inputs + neurons]`` weights, input columns first (the stacked crossbar rows).
        inputs: number of input rows.
        cfg: dynamics and read amplitudes.
        crossbar: when given, the currents are read from this programmed crossbar (its weight equals ``w``).

    Shapes:
        x_seq: ``[T, B, inputs]`` → spikes ``[T, B, neurons]``; state: ``(lif_state, last_spikes [B, neurons])``.
    """

    stateful = True

    def __init__(self, w: torch.Tensor, inputs: int, cfg: ReservoirConfig, crossbar: CrossbarLinear | None = None):
        super().__init__()
        n = cfg.neurons
        if tuple(w.shape) != (n, inputs + n):
            raise ValueError(f"reservoir weights must be [{n}, {inputs + n}] (neurons, inputs + neurons), "
                             f"got {tuple(w.shape)}")
        self.register_buffer("w", w.detach().clone())
        amp = torch.cat([torch.full((inputs,), cfg.input_scale), torch.full((n,), cfg.recurrent_scale / math.sqrt(n))])
        self.register_buffer("row_amplitude", amp)
        self.inputs, self.neurons, self.cfg = inputs, n, cfg
        self.crossbar = crossbar
        self.register_buffer("g_pos", None)  # the cells (relative to G_on) of an RRAM reservoir; None in software
        self.register_buffer("g_neg", None)
        self.lif = LIF(beta=cfg.beta, v_th=cfg.v_th, reset="subtract")
        for p in self.parameters():  # the LIF has no learnable parameters here; make sure of it
            p.requires_grad_(False)

    @classmethod
    def rram(cls, inputs: int, cfg: ReservoirConfig, seed: int = 0, *, exact: bool = False) -> "Reservoir":
        """The on-chip reservoir: weights from stochastic switching, read with noise (and an ADC) per step.

        Args:
            seed: the chip: the same seed gives the same cells and the same read-noise sequence.
            exact: read the same cells exactly (no read noise, no ADC): the ``rram_ideal`` reservoir.

        Raises:
            ValueError: with the ADC on (not ``exact``), rows read above the full read voltage
                (:func:`adc_amplitude_problem`).
        """
        inputs, gen = _draws(inputs, seed)
        problem = None if exact else adc_amplitude_problem(cfg)
        if problem:
            raise ValueError(f"{problem[0]}: {problem[1]}")
        shape = (cfg.neurons, inputs + cfg.neurons)
        g_pos, g_neg = rram_cells(shape, cfg, gen), rram_cells(shape, cfg, gen)
        chip = NonIdealConfig(on_off_ratio=cfg.on_off_ratio, read_noise_rel=0.0 if exact else cfg.read_noise_rel,
                              adc_bits=None if exact else cfg.adc_bits, tile_rows=inputs + cfg.neurons)
        xbar = CrossbarLinear(g_pos, g_neg, 1.0, None, chip, torch.Generator().manual_seed(_stream_seed(seed, "read")))
        res = cls(g_pos - g_neg, inputs, cfg, crossbar=xbar if chip.per_read else None)
        res.g_pos, res.g_neg = g_pos, g_neg  # buffers: kept for the energy from the measured conductances
        return res

    @classmethod
    def software(cls, inputs: int, cfg: ReservoirConfig, seed: int = 0) -> "Reservoir":
        """The software reservoir: Gaussian weights with the standard deviation of the RRAM weights."""
        inputs, gen = _draws(inputs, seed)
        shape = (cfg.neurons, inputs + cfg.neurons)
        ref = rram_cells(shape, cfg, gen) - rram_cells(shape, cfg, gen)
        w = torch.randn(shape, generator=gen) * ref.std()
        return cls(w, inputs, cfg)

    @property
    def w_in(self) -> torch.Tensor:
        """Effective input weights ``a_in · W_in`` ``[neurons, inputs]``."""
        return self.w[:, : self.inputs] * self.row_amplitude[: self.inputs]

    @property
    def w_rec(self) -> torch.Tensor:
        """Effective recurrent weights ``a_rec · W_rec`` ``[neurons, neurons]``."""
        return self.w[:, self.inputs:] * self.row_amplitude[self.inputs:]

    def forward(self, x_seq: torch.Tensor, state=None):
        if x_seq.dim() != 3 or x_seq.shape[2] != self.inputs:
            raise ValueError(f"reservoir input must be [T, B, {self.inputs}], got shape {tuple(x_seq.shape)}")
        T, B, _ = x_seq.shape  # time, batch, inputs
        x_seq = x_seq.to(self.w.dtype)  # spikes of any dtype (bool, int, float64) drive the rows alike
        lif_state, s = (None, x_seq.new_zeros(B, self.neurons)) if state is None else state
        out = []
        with torch.no_grad():
            for t in range(T):
                rows = torch.cat([x_seq[t], s], dim=1) * self.row_amplitude  # read voltages of the stacked rows
                current = self.crossbar(rows) if self.crossbar is not None else rows @ self.w.T
                spikes, lif_state = self.lif(current[None], lif_state)
                s = spikes[0]
                out.append(s)
        return torch.stack(out), (lif_state, s)


def rate_features(spikes_seq: torch.Tensor, bins: int) -> torch.Tensor:
    """Spike rate of every neuron in ``bins`` equal time windows: ``[T, B, N] → [B, bins · N]`` (window-major)."""
    if spikes_seq.dim() != 3:
        raise ValueError(f"spikes_seq must be [T, B, neurons], got shape {tuple(spikes_seq.shape)}")
    if isinstance(bins, bool) or not isinstance(bins, numbers.Integral) or bins < 1:
        raise ValueError(f"bins must be a whole number of time windows >= 1, got {bins!r}")
    T, B, N = spikes_seq.shape  # time, batch, neurons
    edges = np.linspace(0, T, bins + 1).round().astype(int)
    if np.any(np.diff(edges) == 0):
        raise ValueError(f"feature_bins = {bins} is more than the {T} time steps")
    parts = [spikes_seq[a:b].mean(0) for a, b in zip(edges[:-1], edges[1:])]
    return torch.cat(parts, dim=1)


def reservoir_graph(reservoir: Reservoir, dt_s: float):
    """The reservoir as a NIR graph: ``input → w_in → lif ⟲ w_rec``, ``lif → output`` (for hardware estimates).

    With ``recurrent_scale = 0`` the recurrent rows are read at 0 V, so the reservoir has no feedback and the graph
    no ``w_rec`` (the hardware models would leave an all-zero loop out as well, with a note in every estimate)."""
    import nir

    if not (isinstance(dt_s, (int, float)) and math.isfinite(dt_s) and dt_s > 0):
        raise ValueError(f"dt_s must be a positive finite number of seconds per time step, got {dt_s!r}")
    n, k = reservoir.neurons, reservoir.inputs
    beta = reservoir.cfg.beta
    tau = dt_s / -math.log(beta) if beta < 1 else 1e9 * dt_s  # v[t] = β v[t−1] + I: β = exp(−dt/τ)
    nodes = {
        "input": nir.Input(input_type=np.array([k])),
        "w_in": nir.Linear(weight=reservoir.w_in.double().numpy()),
        "lif": nir.LIF(tau=np.full(n, tau), r=np.ones(n), v_leak=np.zeros(n),
                       v_threshold=np.full(n, reservoir.cfg.v_th)),
        "output": nir.Output(output_type=np.array([n])),
    }
    edges = [("input", "w_in"), ("w_in", "lif"), ("lif", "output")]
    if reservoir.cfg.recurrent_scale > 0:
        nodes["w_rec"] = nir.Linear(weight=reservoir.w_rec.double().numpy())
        edges += [("lif", "w_rec"), ("w_rec", "lif")]
    return nir.NIRGraph(nodes=nodes, edges=edges)

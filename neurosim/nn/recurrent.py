r"""Recurrent LIF neurons: a layer whose spikes feed back to its own neurons at the next step.

Per step ``t``, with ``x[t]`` the feed-forward input current and ``s[t−1]`` the layer's own spikes one step earlier
(zero before the first step):

.. math::

    h[t] = \beta\,v[t-1] + x[t] + W_{rec}\,s[t-1] \;(+\, b_{rec})

and then spike and reset as :class:`neurosim.nn.LIF` does, with either reset timing: the recurrent current is
simply added to the step's input. ``W_rec`` is a dense ``N × N`` matrix (``connectivity="dense"``: snnTorch's
``RLeaky(all_to_all=True, linear_features=N)``, SpikingJelly's ``LinearRecurrentContainer``) or one weight per
neuron (``"diagonal"``: each neuron's spike feeds back to itself only, snnTorch's ``all_to_all=False``). With
``reset_timing="delayed"`` the layer is snnTorch's ``RLeaky``: ``mem[t] = β·mem[t−1] + x[t] + W·spk[t−1] −
reset``. Recurrence is what lets a network hold information longer than its membranes do: Cramer et al. (IEEE
TNNLS 2020) report recurrent SNNs clearly ahead of feed-forward ones on the Spiking Heidelberg Digits.

Because step ``t`` needs the spikes of step ``t−1``, the layer runs its steps one at a time (a LIF layer scans
them in one kernel); the feed-forward weights before it still see all steps at once.

Inside :func:`neurosim.functional.no_temporal_grad` (SLTT) the fed-back spikes enter as constants, as the
membrane does: gradients reach ``W_rec`` through each step's own use of ``sg(s[t−1])``, and none flows back
through time. Under BPTT the gradient flows through both the membrane and the recurrent spikes.

The neuron is a :class:`neurosim.nn.LIF` child (``.lif``), called once per step, so its options (β or τ, threshold,
reset, surrogate, learnable decay or threshold, membrane recording) are LIF's; hooks on it see every step's total
current ``x[t] + W_rec·s[t−1]``.

Example:
    >>> import torch
    >>> layer = RLIF(3, beta=0.9)
    >>> s, state = layer(torch.rand(5, 2, 3))   # [T, B, N]
    >>> s.shape, state.v.shape, state.s.shape
    (torch.Size([5, 2, 3]), torch.Size([2, 3]), torch.Size([2, 3]))
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from neurosim.functional.lif import LIFState, _check_state, _float_input, is_temporal_grad_enabled
from neurosim.nn.lif import LIF

__all__ = ["CONNECTIVITIES", "DiagonalRecurrent", "RLIF", "RLIFState"]

CONNECTIVITIES = ("dense", "diagonal")


class RLIFState(NamedTuple):
    """State of a :class:`RLIF` layer carried between calls.

    Attributes:
        v: membrane after the last step ``[B, N]`` (as :class:`neurosim.functional.LIFState`'s ``v``).
        s: the layer's spikes at the last step ``[B, N]``, fed back at the next one.
        v_seq: membrane before reset at every step of the call ``[T, B, N]`` when the LIF records it, else None.
    """

    v: torch.Tensor
    s: torch.Tensor
    v_seq: torch.Tensor | None = None


class DiagonalRecurrent(nn.Module):
    """One-to-one recurrent weights: neuron ``i`` receives ``weight[i]·s_i`` (+ ``bias[i]``).

    Args:
        features: number of neurons.
        weight: initial weight of every neuron's feedback (snnTorch's ``V``, default 1).
        bias: add a learnable bias (zero at first).
    """

    def __init__(self, features: int, weight: float = 1.0, bias: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((features,), float(weight)))
        self.bias = nn.Parameter(torch.zeros(features)) if bias else None

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        y = s * self.weight
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return f"features={self.weight.numel()}, bias={self.bias is not None}"


class RLIF(nn.Module):
    """Multi-step LIF neurons with recurrent connections (see the module docstring for the dynamics).

    Args:
        features: number of neurons ``N``; the input's last dimension.
        tau_mem_ms, dt_ms: the leak, as for :class:`neurosim.nn.LIF`.
        connectivity: ``dense`` (an ``N × N`` matrix, ``.recurrent`` a ``torch.nn.Linear`` with torch's default
            initialisation, as snnTorch's ``RLeaky`` has) or ``diagonal`` (one weight per neuron, ``.recurrent`` a
            :class:`DiagonalRecurrent`).
        bias: give the recurrent connection a bias (off by default: the feed-forward layer before has one).
        **lif_options: every keyword option of :class:`neurosim.nn.LIF` (``beta``, ``v_th``, ``reset``,
            ``surrogate``, ``reset_timing``, ``learn_beta``, ``record_membrane``, ...).

    Shapes:
        x_seq: ``[T, B, N]`` → spikes ``[T, B, N]``; state: :class:`RLIFState` with ``v`` and ``s`` of ``[B, N]``.
    """

    stateful = True
    cuts_temporal_grad = True  # honours neurosim.functional.no_temporal_grad (the fed-back spikes too)

    def __init__(self, features: int, tau_mem_ms: float | None = 2.0, dt_ms: float = 1.0, *,
                 connectivity: str = "dense", bias: bool = False, **lif_options) -> None:
        super().__init__()
        if isinstance(features, bool) or not isinstance(features, int) or features < 1:
            raise ValueError(f"features must be a whole number of neurons >= 1, got {features!r}")
        if connectivity not in CONNECTIVITIES:
            raise ValueError(f"connectivity must be one of {CONNECTIVITIES}, got {connectivity!r}")
        self.features = features
        self.connectivity = connectivity
        self.lif = LIF(tau_mem_ms, dt_ms, **lif_options)
        self.recurrent = (nn.Linear(features, features, bias=bias) if connectivity == "dense"
                          else DiagonalRecurrent(features, bias=bias))

    def _start(self, x_seq: torch.Tensor, state, given: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """``(v, s)`` to start from: zeros, or the carried state checked against one step of ``x_seq``."""
        if state is None:
            zeros = x_seq.new_zeros(x_seq.shape[1:])
            return zeros, zeros
        if not isinstance(state, RLIFState):
            raise TypeError(f"an RLIF layer's state must be the RLIFState it returned (membrane and last spikes), or "
                            f"None to start from rest; got {type(state).__name__}")
        promoted = given if given != x_seq.dtype else None
        v = _check_state(x_seq, state.v, "state.v", promoted, "state._replace(v=state.v.to(x_seq.device))")
        s = _check_state(x_seq, state.s, "state.s", promoted, "state._replace(s=state.s.to(x_seq.device))")
        return v, s

    def forward(self, x_seq: torch.Tensor, state: RLIFState | None = None) -> tuple[torch.Tensor, RLIFState]:
        if not isinstance(x_seq, torch.Tensor):
            raise TypeError(f"x_seq must be a torch.Tensor [T, B, N], got {type(x_seq).__name__}")
        if x_seq.dim() != 3 or x_seq.shape[-1] != self.features:
            raise ValueError(f"RLIF({self.features}) expects a time-first tensor [T, B, {self.features}], got shape "
                             f"{tuple(x_seq.shape)}" + ("; put a Flatten() before it" if x_seq.dim() > 3 else ""))
        given = x_seq.dtype
        x_seq = _float_input(x_seq)
        v, s = self._start(x_seq, state, given)
        temporal = is_temporal_grad_enabled()
        lif_state = LIFState(v)
        spikes, membranes = [], []
        for x in x_seq:
            current = x + self.recurrent(s if temporal else s.detach())
            out, lif_state = self.lif(current.unsqueeze(0), lif_state)
            s = out[0]
            spikes.append(s)
            if lif_state.v_seq is not None:
                membranes.append(lif_state.v_seq)
        if not spikes:  # T = 0: no steps, the state unchanged
            return x_seq.new_zeros(x_seq.shape), RLIFState(v, s, x_seq.new_zeros(x_seq.shape)
                                                          if self.lif.record_membrane else None)
        v_seq = torch.cat(membranes) if membranes else None
        if not temporal:
            s = s.detach()
        return torch.stack(spikes), RLIFState(lif_state.v, s, v_seq)

    def extra_repr(self) -> str:
        return f"features={self.features}, connectivity={self.connectivity!r}"

r"""Current-based LIF neurons (CUBA): a synaptic current that decays on its own time scale drives the membrane.

Per step ``t`` (``x[t]`` the weighted input, ``i`` the synaptic current, ``v`` the membrane):

.. math::

    i[t] = \alpha\,i[t-1] + x[t], \qquad h[t] = \beta\,v[t-1] + i[t]

then spike and reset as :class:`neurosim.nn.LIF` does, with either reset timing, ``α = exp(−dt/τ_syn)`` and
``β = exp(−dt/τ_mem)``. An input spike thus reaches the membrane spread over several steps (a current that
rises at once and decays with ``τ_syn``) instead of as one jump, which gives a neuron two time scales. This is
snnTorch's ``Synaptic`` (with ``reset_timing="delayed"``, its discretisation), NIR's ``CubaLIF`` node (by forward
Euler, as snnTorch reads it; Norse discretises the same model otherwise, the current reaching the membrane a step
later) and the neuron model of Intel's Loihi (Davies et al., IEEE Micro 2018: a current ``u`` decaying with
``1/τ_u`` and a voltage ``v`` with ``1/τ_v``; REFERENCES.md, Loihi).

The current does not depend on the spikes, so the layer runs a leaky integrator over the sequence
(:class:`neurosim.nn.LI`, the child ``.syn``) and feeds its output to a LIF child (``.lif``) in one call each:
every LIF option (reset, timing, surrogate, learnable β or threshold, membrane recording, its fused kernels)
applies. Inside :func:`neurosim.functional.no_temporal_grad` (SLTT) both states enter each step as constants.
``alpha = 0`` makes the current the step's input, and the layer a LIF.

Example:
    >>> import torch
    >>> layer = CubaLIF(tau_syn_ms=5.0, tau_mem_ms=10.0)
    >>> s, state = layer(torch.rand(6, 2, 3))   # [T, B, ...]
    >>> s.shape, state.i.shape, state.lif.v.shape
    (torch.Size([6, 2, 3]), torch.Size([2, 3]), torch.Size([2, 3]))
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from neurosim.functional import LIFState, beta_from_tau, tau_from_beta
from neurosim.functional.lif import _check_state, _float_input
from neurosim.nn.layers import LI, _check_seq
from neurosim.nn.lif import LIF

__all__ = ["CubaLIF", "CubaLIFState"]


class CubaLIFState(NamedTuple):
    """State of a :class:`CubaLIF` layer carried between calls.

    Attributes:
        i: synaptic current after the last step ``[B, ...]``.
        lif: the membrane's :class:`neurosim.functional.LIFState` (``v``, and ``v_seq`` when recorded).
    """

    i: torch.Tensor
    lif: LIFState


class CubaLIF(nn.Module):
    """Multi-step current-based LIF neurons (see the module docstring for the dynamics).

    Args:
        tau_syn_ms: synaptic time constant in ms (``α = exp(−dt/τ_syn)``); or give ``alpha``.
        tau_mem_ms, dt_ms: the membrane's leak, as for :class:`neurosim.nn.LIF` (or give ``beta``).
        alpha: decay of the current per step in [0, 1]; overrides ``tau_syn_ms``.
        **lif_options: every keyword option of :class:`neurosim.nn.LIF` (``beta``, ``v_th``, ``reset``,
            ``surrogate``, ``reset_timing``, ``learn_beta``, ``record_membrane``, ...).

    α is the ``.syn`` child's 0-d buffer ``beta_value`` (in ``state_dict`` as ``syn.beta_value``).

    Shapes:
        x_seq: ``[T, B, ...]`` → spikes ``[T, B, ...]``; state: :class:`CubaLIFState`, tensors of ``[B, ...]``.
    """

    stateful = True
    cuts_temporal_grad = True  # honours neurosim.functional.no_temporal_grad (both children do)

    def __init__(self, tau_syn_ms: float | None = 5.0, tau_mem_ms: float | None = 2.0, dt_ms: float = 1.0, *,
                 alpha: float | None = None, **lif_options) -> None:
        super().__init__()
        if alpha is None:
            if tau_syn_ms is None:
                raise ValueError("give either tau_syn_ms (with dt_ms) or alpha")
            try:
                alpha = beta_from_tau(tau_syn_ms, dt_ms)
            except (TypeError, ValueError) as e:  # (its message names the membrane's time constant)
                raise type(e)(str(e).replace("tau_mem_ms", "tau_syn_ms")) from None
        if not 0 <= float(alpha) <= 1:
            raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
        self.syn = LI(float(alpha))
        self.lif = LIF(tau_mem_ms, dt_ms, **lif_options)

    @property
    def alpha(self) -> torch.Tensor:
        """Decay of the synaptic current per step (a 0-d tensor)."""
        return self.syn.beta_value

    @property
    def tau_syn_ms(self) -> float:
        """Synaptic time constant implied by α and ``dt_ms``."""
        return tau_from_beta(float(self.alpha), self.lif.dt_ms)

    def forward(self, x_seq: torch.Tensor, state: CubaLIFState | None = None) -> tuple[torch.Tensor, CubaLIFState]:
        if state is not None and not isinstance(state, CubaLIFState):
            raise TypeError(f"a CubaLIF layer's state must be the CubaLIFState it returned (current and membrane), "
                            f"or None to start from rest; got {type(state).__name__}")
        # checked here, so that the errors name this layer and not its LI child
        if not isinstance(x_seq, torch.Tensor):
            raise TypeError(f"x_seq must be a torch.Tensor [T, B, ...], got {type(x_seq).__name__}")
        _check_seq(x_seq, 2, "CubaLIF")
        if state is not None:
            given, x = x_seq.dtype, _float_input(x_seq)
            _check_state(x, state.i, "CubaLIF's state.i (the synaptic current)",
                         given if given != x.dtype else None, "state._replace(i=state.i.to(x_seq.device))",
                         why="the current would otherwise be computed in one dtype or the other")
        i_seq, i = self.syn(x_seq, None if state is None else state.i)
        s_seq, lif_state = self.lif(i_seq, None if state is None else state.lif)
        return s_seq, CubaLIFState(i, lif_state)

    def extra_repr(self) -> str:
        return f"alpha={float(self.alpha):.4g}"

"""LIF neuron module: a thin shell around :func:`neurosim.functional.lif_scan`.

The module holds parameters, never state: ``LIF(...)(x_seq, state=None) -> (spikes_seq, final_state)``
always returns that tuple. Carry ``final_state`` into the next call to continue a sequence.

Example:
    >>> import torch
    >>> lif = LIF(tau_mem_ms=10.0, dt_ms=1.0)
    >>> s, state = lif(torch.ones(5, 2, 3))          # [T, B, N]
    >>> s.shape, state.v.shape
    (torch.Size([5, 2, 3]), torch.Size([2, 3]))
"""

from __future__ import annotations

import math

import torch
from torch import nn

from neurosim.functional import LIFParams, LIFState, Surrogate, beta_from_tau, lif_scan, tau_from_beta
from neurosim.functional._lif_kernels import symbolic
from neurosim.functional.lif import BACKENDS

__all__ = ["LIF"]


def _read_is_cheap(t: torch.Tensor) -> bool:
    """Whether ``float(t)`` costs no wait for a device (the CPU), or ``t`` cannot be cached (an inference tensor)."""
    return t.device.type == "cpu" or t.is_inference()


class LIF(nn.Module):
    """Multi-step leaky integrate-and-fire neurons.

    Give the leak either as ``tau_mem_ms`` with ``dt_ms`` (``β = exp(−dt/τ)``) or as ``beta`` directly.

    Args:
        tau_mem_ms: membrane time constant in ms (default 2 ms with ``dt_ms`` = 1 → β ≈ 0.61).
        dt_ms: duration of one time step in ms.
        beta: decay per step in [0, 1] (0: no memory between steps, the SLTT paper's τ = 1); overrides
            ``tau_mem_ms``.
        v_th: firing threshold.
        reset: ``subtract`` | ``zero`` | ``none``.
        detach_reset: no gradient through the reset.
        surrogate: surrogate name (``atan``, ``sigmoid``, ``fast_sigmoid``, ``triangle``, ``rectangle``) or a
            :class:`~neurosim.functional.Surrogate` (with its own alpha).
        surrogate_alpha: surrogate sharpness; None takes the surrogate's default.
        learn_beta: learn the decay (PLIF, Fang et al. ICCV 2021), parametrised as ``β = sigmoid(w)``.
        learn_threshold: learn the threshold (kept positive through a softplus-free clamp at 1e-3).
        reset_timing: ``immediate`` (SLTT/SpikingJelly) or ``delayed`` (snnTorch ``Leaky``); see
            :mod:`neurosim.functional.lif`.
        record_membrane: return the pre-reset membrane of every step in ``final_state.v_seq`` (for plots).
        backend: ``auto`` | ``reference`` | ``fused`` (``fused`` needs ``reset_timing="immediate"`` and a fixed
            threshold). Under ``torch.compile`` and ``torch.export``, on meta and fake tensors and inside
            ``torch.func`` transforms every backend runs ``reference`` (the torch ops those tracers follow; see
            :mod:`neurosim.functional.lif`).

    β and the threshold are 0-d buffers (``beta_value``, ``v_th_value``) or, when learnt, parameters: ``.half()``
    and ``.to(torch.bfloat16)`` round them to that dtype as they round every buffer (β = 0.9 runs as 0.8999). A LIF
    left in float32 takes half input too and keeps them exact: convert the weighted layers only
    (``.float()`` afterwards does not restore a rounded β). Integer and bool input is promoted to float32
    (:func:`neurosim.functional.lif_scan`).

    Shapes:
        x_seq: ``[T, B, ...]`` → spikes ``[T, B, ...]``; state ``v``: ``[B, ...]``.
    """

    stateful = True
    cuts_temporal_grad = True  # honours neurosim.functional.no_temporal_grad

    def __init__(
        self,
        tau_mem_ms: float | None = 2.0,
        dt_ms: float = 1.0,
        *,
        beta: float | None = None,
        v_th: float = 1.0,
        reset: str = "subtract",
        detach_reset: bool = False,
        surrogate: str | Surrogate = "atan",
        surrogate_alpha: float | None = None,
        learn_beta: bool = False,
        learn_threshold: bool = False,
        reset_timing: str = "immediate",
        record_membrane: bool = False,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        if beta is None:
            if tau_mem_ms is None:
                raise ValueError("give either tau_mem_ms (with dt_ms) or beta")
            beta = beta_from_tau(tau_mem_ms, dt_ms)
        beta = float(beta)
        if not 0 <= beta <= 1:
            raise ValueError(f"beta must be in [0, 1], got {beta!r}")
        if not v_th > 0:
            raise ValueError(f"v_th must be positive, got {v_th!r}")
        self.dt_ms = float(dt_ms)
        if isinstance(surrogate, Surrogate):  # (as LIFParams takes it)
            if surrogate_alpha is not None and float(surrogate_alpha) != surrogate.alpha:
                raise ValueError(f"surrogate {surrogate} already has its alpha; give surrogate_alpha={surrogate_alpha!r} "
                                 "with a surrogate name instead, or leave it out")
            self.surrogate = surrogate
        else:
            self.surrogate = Surrogate(surrogate, surrogate_alpha)
        # Validate the remaining options once, here, through the functional parameter object.
        LIFParams(beta=beta, v_th=v_th, reset=reset, detach_reset=detach_reset,
                  surrogate=self.surrogate, reset_timing=reset_timing)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if backend == "fused" and (reset_timing != "immediate" or learn_threshold):
            raise ValueError(
                "backend='fused' needs reset_timing='immediate' and a fixed threshold, got "
                f"reset_timing={reset_timing!r}, learn_threshold={learn_threshold!r}; use backend='auto' (which takes "
                "the reference loop there) or 'reference'")
        self.reset = reset
        self.detach_reset = detach_reset
        self.reset_timing = reset_timing
        self.record_membrane = record_membrane
        self.backend = backend
        self.learn_beta = learn_beta
        self.learn_threshold = learn_threshold
        if learn_beta:
            b = min(max(beta, 1e-6), 1 - 1e-6)  # β = sigmoid(w) reaches neither 0 nor 1
            self.beta_logit = nn.Parameter(torch.tensor(math.log(b / (1 - b))))
        else:
            self.register_buffer("beta_value", torch.tensor(beta))
        if learn_threshold:
            self.v_th_param = nn.Parameter(torch.tensor(float(v_th)))
        else:
            self.register_buffer("v_th_value", torch.tensor(float(v_th)))

    @property
    def beta(self) -> torch.Tensor:
        """Current decay per step (a tensor; differentiable when learnt)."""
        return torch.sigmoid(self.beta_logit) if self.learn_beta else self.beta_value

    @property
    def v_th(self) -> torch.Tensor:
        """Current threshold (a tensor; differentiable when learnt)."""
        return self.v_th_param.clamp_min(1e-3) if self.learn_threshold else self.v_th_value

    @property
    def tau_mem_ms(self) -> float:
        """Membrane time constant implied by the current β and ``dt_ms``."""
        return tau_from_beta(float(self.beta.detach()), self.dt_ms)

    def _buffer_float(self, name: str) -> float:
        """``float(buffer)``. On a GPU every read waits for the queued kernels, and SLTT calls :meth:`params` per
        step: there the value is read again only when the buffer changed (in place, by ``load_state_dict``, or
        replaced by ``.to()``; a write through ``buffer.data`` is not seen). On the CPU, and for inference tensors
        (which have no version counter), it is read every time."""
        t = getattr(self, name)
        if _read_is_cheap(t):
            return float(t)
        key = (id(t), t.data_ptr(), t._version)
        cache = self.__dict__.setdefault("_buffer_floats", {})
        hit = cache.get(name)
        if hit is None or hit[0] != key:
            hit = cache[name] = (key, float(t))
        return hit[1]

    def params(self) -> LIFParams:
        """The functional parameters for this module's current values: a fixed β and threshold as Python numbers,
        or as their 0-d buffers where those hold no value to read (meta and fake tensors, ``torch.compile`` and
        ``torch.export`` tracing, ``torch.func`` transforms)."""
        if symbolic(*self._buffers.values()):
            return LIFParams(beta=self.beta, v_th=self.v_th, reset=self.reset, detach_reset=self.detach_reset,
                             surrogate=self.surrogate, reset_timing=self.reset_timing)
        beta = self.beta if self.learn_beta else self._buffer_float("beta_value")
        v_th = self.v_th if self.learn_threshold else self._buffer_float("v_th_value")
        return LIFParams(beta=beta, v_th=v_th, reset=self.reset, detach_reset=self.detach_reset,
                         surrogate=self.surrogate, reset_timing=self.reset_timing)

    def forward(self, x_seq: torch.Tensor, state: LIFState | None = None) -> tuple[torch.Tensor, LIFState]:
        return lif_scan(x_seq, self.params(), state, record_membrane=self.record_membrane, backend=self.backend)

    def extra_repr(self) -> str:
        """β, threshold, reset, timing and surrogate, then every option set away from its default (those that
        change training: a detached reset, a learnt β or threshold; and the backend and membrane recording)."""
        text = (f"beta={_format_scalar(self.beta)}, v_th={_format_scalar(self.v_th)}, reset={self.reset!r}, "
                f"timing={self.reset_timing!r}, surrogate={self.surrogate.name}(alpha={self.surrogate.alpha:g})")
        for name, default in (("detach_reset", False), ("learn_beta", False), ("learn_threshold", False),
                              ("record_membrane", False), ("backend", "auto")):
            if getattr(self, name) != default:
                text += f", {name}={getattr(self, name)!r}"
        return text


def _format_scalar(t: torch.Tensor) -> str:
    """A 0-d tensor's value to 4 significant digits; ``<meta>`` or ``<traced>`` where it has none to read."""
    if symbolic(t):
        return "<meta>" if t.is_meta else "<traced>"
    return f"{float(t.detach()):.4g}"

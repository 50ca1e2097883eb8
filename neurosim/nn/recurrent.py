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

The neuron is a :class:`neurosim.nn.LIF` child (``.lif``), so its options (β or τ, threshold, reset, surrogate,
learnable decay or threshold, membrane recording) are LIF's. While a hook watches it (a forward or backward hook on
``.lif`` or ``.recurrent``, or any global module hook: the activity profiler, raster plots, HLOP's projection), or
either has a ``forward`` replaced on the instance, ``.lif`` is called as a module once per step, so the hook sees every step's total current ``x[t] + W_rec·s[t−1]`` and the :class:`LIFState`.

**The fused scan.** Unwatched, with a fixed β and threshold, float32/float64 input, no autocast, a backend other
than ``reference`` and the stock ``.recurrent`` modules (``nn.Linear`` or :class:`DiagonalRecurrent`, also with a
``torch.nn.utils.parametrize`` weight such as a converted snnTorch layer's shared ``V``), the whole sequence is one
autograd node (:class:`_RLIFScan`) — for every reset with the ``immediate`` timing, and for the ``delayed`` timing
without a graph or with the temporal path cut (under BPTT the delayed timing keeps the per-step graph, whose
backward through time can be differentiated again) — with the same spikes, bit for bit (the same torch ops in the
same order), and the gradients of the per-step graph (tested to 1e-12 in float64; the sums run in another order).
Why: the per-step graph of ``T`` steps holds ~6·T autograd nodes and calls LIF's checks and dispatch ``T`` times;
fused, a BPTT iteration of an SHD-sized network takes about 0.8× the time, inference half, and autograd holds half
the bytes (``benchmarks/bench_recurrent.py``, figures in the README). The node keeps only the pre-reset
membranes ``h`` (the spikes are recomputed from them: ``s = h ≥ θ``) and ``W_rec`` once, where the per-step graph
kept ``W_rec``'s reference and the spikes at every step. Backward runs the step loop of :class:`neurosim.functional.lif._FusedLIF` with the recurrent
term: ``dL/ds[t−1] += dL/dh[t]·W_rec``, then ``dL/dW_rec = Σ_t dL/dh[t]ᵀ·s[t−1]`` as one matrix product over all
steps. Its backward through time cannot be differentiated again (``create_graph=True``, as the fused LIF's):
``backend="reference"`` runs the per-step graph. With the temporal path cut (SLTT) it can.

Example:
    >>> import torch
    >>> layer = RLIF(3, beta=0.9)
    >>> s, state = layer(torch.rand(5, 2, 3))   # [T, B, N]
    >>> s.shape, state.v.shape, state.s.shape
    (torch.Size([5, 2, 3]), torch.Size([2, 3]), torch.Size([2, 3]))
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules import module as _module
from torch.nn.utils import parametrize

from neurosim.functional._lif_kernels import symbolic
from neurosim.functional.lif import (
    LIFState, _check_state, _float_input, _step_dh, _step_forward, is_temporal_grad_enabled,
)
from neurosim.nn.lif import LIF

__all__ = ["CONNECTIVITIES", "DiagonalRecurrent", "RLIF", "RLIFState"]

CONNECTIVITIES = ("dense", "diagonal")

_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
_NO_DOUBLE_BACKWARD = (
    "the fused RLIF backward through time cannot itself be differentiated (create_graph=True); for gradient "
    "penalties and other double backward build the layer with backend='reference' (RLIF(..., backend='reference')), "
    "which runs the per-step graph")


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
        weight: initial weight of every neuron's feedback (snnTorch's ``V``, default 1). With the default threshold
            of 1 and the ``subtract`` reset, a feedback of 1 keeps a neuron firing at every step after its first
            spike: the weight learns from there, or start it lower.
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
        if isinstance(features, bool) or not isinstance(features, numbers.Integral) or features < 1:
            raise ValueError(f"features must be a whole number of neurons >= 1, got {features!r}")
        features = int(features)
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
            return x_seq.new_zeros(x_seq.shape[1:]), x_seq.new_zeros(x_seq.shape[1:])
        if not isinstance(state, RLIFState):
            raise TypeError(f"an RLIF layer's state must be the RLIFState it returned (membrane and last spikes), or "
                            f"None to start from rest; got {type(state).__name__}")
        promoted = given if given != x_seq.dtype else None
        v = _check_state(x_seq, state.v, "state.v", promoted, "state._replace(v=state.v.to(x_seq.device))")
        s = _check_state(x_seq, state.s, "state.s", promoted, "state._replace(s=state.s.to(x_seq.device))",
                         why="the fed-back current would otherwise be computed in one dtype or the other")
        if not torch.is_inference_mode_enabled():  # a state made under inference_mode continues into a graph
            v, s = (t.clone() if t.is_inference() else t for t in (v, s))
        return v, s

    def _watched(self) -> bool:
        """Whether something must see ``.lif`` called per step: a hook on ``.lif`` or ``.recurrent``, a global module
        hook, or a ``forward`` replaced on the instance. (A hook table torch no longer has counts as a hook.)"""
        for m in (self.lif, self.recurrent):
            if "forward" in vars(m) or any(getattr(m, name, True) for name in _HOOKS):
                return True
        return any(getattr(_module, f"_global{name}", True) for name in _HOOKS)

    def _fusable(self, x_seq: torch.Tensor, v: torch.Tensor, s: torch.Tensor, temporal: bool) -> bool:
        """Whether :class:`_RLIFScan` computes what the per-step loop would (see the module docstring)."""
        lif = self.lif
        if lif.reset_timing == "delayed" and temporal and _needs_graph(x_seq, v, s, self.recurrent):
            return False  # the loop's backward through time can be differentiated again there: keep it
        return (type(lif) is LIF and _stock_class(self.recurrent) in (nn.Linear, DiagonalRecurrent)
                and not lif.learn_beta and not lif.learn_threshold
                and lif.backend != "reference" and type(x_seq) is torch.Tensor
                and x_seq.dtype in (torch.float32, torch.float64)
                and not self._watched() and not torch.jit.is_tracing()
                # traced code first: an exported graph's tensors may be on a device autocast does not know
                and not symbolic(x_seq, v, s, self.recurrent.weight, *lif._buffers.values())
                and not torch.is_autocast_enabled(x_seq.device.type))

    def _forward_fused(self, x_seq: torch.Tensor, v: torch.Tensor, s: torch.Tensor, at_rest: bool,
                       temporal: bool) -> tuple[torch.Tensor, RLIFState]:
        lif = self.lif
        params = lif.params()  # β and θ as Python numbers, read without a device wait on GPUs after the first time
        # immediate timing: β as lif_scan hands it to addcmul (torch.as_tensor(float(β), dtype)), made on the device
        beta = lif.beta_value.to(x_seq.dtype) if lif.reset_timing == "immediate" else params.beta
        weight, bias = self.recurrent.weight, self.recurrent.bias
        cfg = _Config(params.v_th, lif.reset, lif.detach_reset, lif.surrogate, lif.reset_timing == "delayed",
                      self.connectivity == "diagonal", at_rest)
        if not _needs_graph(x_seq, v, s, self.recurrent):
            s_seq, v_last, h_seq = _scan(x_seq, v, s, weight, bias, beta, cfg, keep_h=lif.record_membrane)
            return s_seq, RLIFState(v_last, s_seq[-1].clone(), h_seq)
        if not temporal:
            v, s = v.detach(), s.detach()
        s_seq, v_last, s_last, h_seq = _RLIFScan.apply(x_seq, v, s, weight, bias, beta, cfg, not temporal)
        return s_seq, RLIFState(v_last, s_last, h_seq if lif.record_membrane else None)

    def forward(self, x_seq: torch.Tensor, state: RLIFState | None = None) -> tuple[torch.Tensor, RLIFState]:
        if not isinstance(x_seq, torch.Tensor):
            raise TypeError(f"x_seq must be a torch.Tensor [T, B, N], got {type(x_seq).__name__}")
        if x_seq.dim() != 3 or x_seq.shape[-1] != self.features:
            raise ValueError(f"RLIF({self.features}) expects a time-first tensor [T, B, {self.features}], got shape "
                             f"{tuple(x_seq.shape)}" + ("; put a Flatten() before it" if x_seq.dim() > 3 else ""))
        given = x_seq.dtype
        x_seq = _float_input(x_seq)
        w = self.recurrent.weight
        if w.dtype != x_seq.dtype and not torch.is_autocast_enabled(x_seq.device.type):
            raise ValueError(f"RLIF's recurrent weights (.recurrent.weight) are {w.dtype} but x_seq is {x_seq.dtype}: "
                             f"convert the layer (layer.to({x_seq.dtype})) or the input (x_seq.to({w.dtype}))")
        v, s = self._start(x_seq, state, given)
        temporal = is_temporal_grad_enabled()
        if x_seq.shape[0] and self._fusable(x_seq, v, s, temporal):
            return self._forward_fused(x_seq, v, s, state is None, temporal)
        # the per-step loop: .lif called as a module at every step (hooks, other LIF options, traced code)
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


def _stock_class(module: nn.Module) -> type:
    """``module``'s class, or for a module with a ``torch.nn.utils.parametrize`` parametrization (whose class is a
    generated subclass that computes ``.weight`` on access and changes nothing else) the class it was made from."""
    return type(module).__bases__[0] if parametrize.is_parametrized(module) else type(module)


def _needs_graph(x_seq, v, s, recurrent: nn.Module) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (
        x_seq, v, s, recurrent.weight, recurrent.bias))


class _Config(NamedTuple):
    """What :class:`_RLIFScan` needs besides tensors."""

    v_th: float
    reset: str
    detach_reset: bool
    surrogate: object  # neurosim.functional.Surrogate
    delayed: bool  # snnTorch's reset timing (LIF's reset_timing="delayed")
    diagonal: bool  # one recurrent weight per neuron
    at_rest: bool  # the run starts from rest: s0 is zeros


def _recurrent_current(x: torch.Tensor, s: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                       diagonal: bool) -> torch.Tensor:
    """``x + W·s (+ b)``, rounded as ``x + RLIF.recurrent(s)`` is (``nn.Linear``: ``F.linear``;
    :class:`DiagonalRecurrent`: ``s·w``, then ``+ b``). A new tensor."""
    if diagonal:
        rec = torch.mul(s, weight)
        if bias is not None:
            rec.add_(bias)
    else:
        rec = F.linear(s, weight, bias)
    return torch.add(x, rec, out=rec)  # addition commutes bit for bit


def _scan(x_seq, v0, s0, weight, bias, beta, cfg: _Config, keep_h: bool):
    """The RLIF forward without autograd: ``(spikes, final v, membranes or None)``, new tensors. The membranes are
    the pre-reset ``h`` (immediate timing) or ``v`` (delayed), as LIF records them.

    Per step the ops of the per-step loop, in its order — the recurrent current as :func:`_recurrent_current`,
    then the LIF step as :class:`neurosim.functional.lif._LIFStep` (immediate: ``h = addcmul(x, β, v)``,
    ``s = h ≥ θ``, the reset) or ``_scan_delayed`` (``v = β·v + x − θ·r`` with ``r = s`` of the step before,
    ``s = v > θ``) — so the spikes are the loop's bit for bit. A run from rest (``at_rest``) skips step 0's product
    with the zero spikes: ``x + (0·W + b)`` is ``x + b``."""
    v_th, reset, diagonal = cfg.v_th, cfg.reset, cfg.diagonal
    s_seq = torch.empty(x_seq.shape, dtype=x_seq.dtype, device=x_seq.device)
    h_seq = torch.empty_like(s_seq) if keep_h else None
    if cfg.delayed:
        r = torch.gt(v0, v_th).to(v0.dtype)  # the reset of step 0: heaviside(v0 − θ, strict); then s[t−1]
    else:
        scratch = None if keep_h else torch.empty_like(v0)
        buf = torch.empty_like(v0) if reset != "none" else None  # the state, rewritten each step
    v, s = v0, s0
    for t in range(x_seq.shape[0]):
        if t == 0 and cfg.at_rest:
            current = x_seq[0] if bias is None else x_seq[0] + bias
        else:
            current = _recurrent_current(x_seq[t], s, weight, bias, diagonal)
        if cfg.delayed:  # snnTorch's Leaky/RLeaky: the reset from the previous membrane, subtracted undecayed
            if reset == "zero":
                v = torch.mul(torch.rsub(r, 1).mul_(beta), v).add_(current)  # β·(1 − r)·v + x
            else:
                v = torch.mul(v, beta).add_(current)  # β·v + x
                if reset == "subtract":
                    v.sub_(r, alpha=v_th)  # − θ·r: exact product, one rounding as the loop's
            if keep_h:
                h_seq[t] = v
            s = r = torch.gt(v, v_th, out=s_seq[t])  # v − θ > 0 ⟺ v > θ (IEEE)
            continue
        v = _step_forward(current, v, beta, v_th, reset, h_seq[t] if keep_h else scratch, s_seq[t], buf)
        s = s_seq[t]
    if not cfg.delayed and reset == "none":
        v = v.clone()  # not a view of h_seq or the scratch buffer
    return s_seq, v, h_seq


def _fired(h_seq: torch.Tensor, cfg: _Config) -> torch.Tensor:
    """The spikes, recomputed from the recorded membranes (``h ≥ θ``; delayed timing ``v > θ``)."""
    return (torch.gt if cfg.delayed else torch.ge)(h_seq, cfg.v_th).to(h_seq.dtype)


def _spikes_before(h_seq: torch.Tensor, s0: torch.Tensor | None, cfg: _Config) -> torch.Tensor:
    """The spikes fed back into each step, ``[s0, s_0, …, s_{T−2}]``, recomputed from the membranes; ``s0`` None:
    zeros (a run from rest). Detached: constants in the weight's gradient."""
    s_prev = torch.empty_like(h_seq)
    if s0 is None:
        s_prev[0].zero_()
    else:
        s_prev[0] = s0.detach()
    s_prev[1:] = _fired(h_seq[:-1], cfg)
    return s_prev


class _RLIFScan(torch.autograd.Function):
    """A whole RLIF sequence as one autograd node (see the module docstring); saves the membranes ``h`` (and
    ``W_rec`` once, for the path back through time; ``s0`` when it is not zero).

    Backward (``g_t = σ'(h_t − θ)``; ``gs``: dL/ds_t from the output and from step ``t+1``'s recurrent input;
    ``gv``: dL/dv_t from step ``t+1``): ``dL/dh_t = (gs + gv·∂v/∂s)·g_t + gv·∂v/∂h|_s (+ dL/dh_t recorded)``, as
    :class:`neurosim.functional.lif._FusedLIF`; then ``dL/ds_{t−1} = dL/dh_t·W`` (dense) or ``dL/dh_t·w``
    (diagonal), ``dL/dv_{t−1} = β·dL/dh_t``, ``dL/dx_t = dL/dh_t``, ``dL/dW = Σ_t dL/dh_tᵀ·s_{t−1}`` and
    ``dL/db = Σ_t dL/dh_t``. With the temporal path cut (``cut``: SLTT) ``gs`` and ``gv`` carry nothing back in
    time, ``dL/dh_t = σ'(h_t − θ)·dL/ds_t (+ dL/dh_t)``, and the fed-back spikes enter ``dL/dW`` as constants;
    this is the only backward of the delayed timing (``h`` is then its membrane ``v``, and ``s = v > θ``).
    """

    @staticmethod
    def forward(ctx, x_seq, v0, s0, weight, bias, beta, cfg: _Config, cut: bool):
        ctx.set_materialize_grads(False)  # unused outputs get None, not full-size zero tensors
        s_seq, v, h_seq = _scan(x_seq, v0, s0, weight, bias, beta, cfg, keep_h=True)
        s_last = s_seq[-1].clone()  # the state's own tensor: in-place changes to the output leave it alone
        if cut:
            ctx.mark_non_differentiable(v, s_last)
        need = ctx.needs_input_grad
        # W carries gradients back in time (not under the cut); s0 enters dL/dW only, and is zeros from rest
        through_time = not cut and (x_seq.shape[0] > 1 or need[2])
        ctx.save_for_backward(h_seq, s0 if need[3] and not cfg.at_rest else None, weight if through_time else None)
        ctx.beta, ctx.cfg, ctx.cut = beta, cfg, cut
        return s_seq, v, s_last, h_seq

    @staticmethod
    def backward(ctx, grad_s, grad_v, grad_s_last, grad_h):
        h_seq, s0, weight = ctx.saved_tensors
        cfg = ctx.cfg
        if ctx.cut:
            dh = _spatial_dh(h_seq, grad_s, grad_h, cfg)
            gv = gs = None
        else:
            if torch.is_grad_enabled():
                raise RuntimeError(_NO_DOUBLE_BACKWARD)
            dh, gv, gs = _temporal_dh(h_seq, grad_s, grad_v, grad_s_last, grad_h, weight, ctx.beta, cfg,
                                      ctx.needs_input_grad[2])
        need = ctx.needs_input_grad
        grad_w = grad_b = None
        if need[3]:
            s_prev = _spikes_before(h_seq.detach(), s0, cfg)  # constants (sg) under the cut too
            if cfg.diagonal:
                grad_w = (dh * s_prev).sum((0, 1))
            else:
                n = dh.shape[-1]
                grad_w = dh.reshape(-1, n).T @ s_prev.reshape(-1, n)
        if need[4]:
            grad_b = dh.sum((0, 1))
        return (dh if need[0] else None, gv if need[1] else None, gs if need[2] else None, grad_w, grad_b,
                None, None, None)


def _spatial_dh(h_seq, grad_s, grad_h, cfg: _Config) -> torch.Tensor:
    """``dL/dh = σ'(h − θ)·dL/ds (+ dL/dh)`` for all steps at once (the temporal path cut). Under
    ``create_graph=True`` out of place, so that it is differentiated again through the saved ``h`` (an output)."""
    if grad_s is None:
        return grad_h if grad_h is not None else torch.zeros_like(h_seq)
    if torch.is_grad_enabled():
        dh = cfg.surrogate.grad(h_seq - cfg.v_th) * grad_s
        return dh if grad_h is None else dh + grad_h
    dh = cfg.surrogate.grad_(h_seq - cfg.v_th).mul_(grad_s)
    return dh if grad_h is None else dh.add_(grad_h)


def _temporal_dh(h_seq, grad_s, grad_v, grad_s_last, grad_h, weight, beta, cfg: _Config, need_s0: bool):
    """The loop back through time, immediate timing: ``(dL/dh for all steps, dL/dv0, dL/ds0 or None unless
    need_s0)``."""
    v_th, reset, detach_reset = cfg.v_th, cfg.reset, cfg.detach_reset
    T = h_seq.shape[0]  # time steps
    dh = cfg.surrogate.grad_(h_seq - v_th)  # g_t for all steps; overwritten step by step with dL/dh_t
    gv = grad_v if grad_v is not None else torch.zeros_like(h_seq[0])
    gs = grad_s_last  # dL/ds_{T−1} beyond the spike output: from the returned state
    if grad_s is not None:
        gs = grad_s[T - 1] if gs is None else grad_s[T - 1] + gs
    for t in range(T - 1, -1, -1):
        g = dh[t]
        _step_dh(g, h_seq[t], gs, gv, v_th, reset, detach_reset)
        if grad_h is not None:
            g.add_(grad_h[t])
        gv = g * beta
        # dL/ds_{t−1}: the recurrent input of step t, plus the output's gradient at t−1
        if t == 0 and not need_s0:
            gs = None
        elif cfg.diagonal:
            gs = g * weight if grad_s is None or t == 0 else torch.addcmul(grad_s[t - 1], g, weight)
        elif grad_s is None or t == 0:
            gs = torch.mm(g, weight)
        else:
            gs = torch.addmm(grad_s[t - 1], g, weight)
    return dh, gv, gs

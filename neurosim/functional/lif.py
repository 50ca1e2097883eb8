r"""Discrete leaky integrate-and-fire (LIF) dynamics over time-first tensors.

Per time step ``t`` (``x_seq[t]`` is the input current, ``v`` the membrane potential):

.. math::

    h[t] = \beta\,v[t-1] + x[t], \qquad s[t] = H(h[t] - v_{th}), \qquad
    v[t] = \mathrm{reset}(h[t], s[t])

with ``reset`` one of ``subtract`` (``h − v_th·s``), ``zero`` (``h·(1 − s)``) or ``none`` (``h``), and
``β = exp(−dt/τ_mem)``. This is the "immediate" reset timing used by SpikingJelly and by the SLTT paper
(``u[t] = λ·(u[t−1] − V_th·s[t−1]) + W·s_in[t]``, where their ``u`` is our pre-reset ``h``): the reset is
applied in the step that spiked, so it decays with the membrane.

snnTorch's ``Leaky`` (default ``reset_delay=True``) discretises differently: the reset is computed from the
previous membrane, detached, and subtracted *undecayed* at the next step, and a spike needs ``v > v_th``
strictly:

.. math::

    r[t] = H_{>}(v[t-1] - v_{th}), \qquad v[t] = \beta\,v[t-1] + x[t] - v_{th}\,r[t], \qquad
    s[t] = H_{>}(v[t] - v_{th})

(``zero`` reset: ``v[t] = β·(1 − r[t])·v[t−1] + x[t]``). Choose it with ``reset_timing="delayed"`` to run
snnTorch models identically. The two timings give different membrane traces for the same input; with
``reset="none"`` they agree apart from the tie ``v == v_th``.

Two backends compute the same thing: ``reference`` (a plain autograd loop, the definition) and ``fused``
(one autograd node for the whole sequence with a hand-derived backward that saves only ``h``; faster and
leaner). ``auto`` picks ``fused`` where it applies (immediate timing, one fixed threshold, float32/float64
input; half floats take the reference, which keeps a β given as a Python number unrounded where the fused scan
would round it to the dtype — a :class:`neurosim.nn.LIF` converted with ``.half()`` has rounded its β and
threshold buffers already, as ``.half()`` rounds every buffer; one left in float32 keeps them exact on half
input); called with ``T = 1`` (one step at a time: online inference) it runs a single-step kernel without the
scan loop. The fused backward through time cannot be differentiated again (``create_graph=True``: use
``reference``); with the temporal path cut (:func:`no_temporal_grad`) it can, as the reference.
On CPU the fused scan and its backward run as numba kernels (:mod:`neurosim.functional._lif_kernels`) that give
the torch ops' results bit for bit in one pass over memory; other devices, dtypes and the ``sigmoid``
surrogate's backward use the torch ops.

Integer and bool ``x_seq`` (spike counts, binary spikes) is promoted to torch's default float dtype (float32)
first, on every backend, as the reference's ``β·v + x`` promotes it (and as snnTorch's and SpikingJelly's
neurons do): spikes and state are then float32, and a carried state must be too.

Traced and transformed code runs the ``reference`` loop whatever the backend: under ``torch.compile`` and
``torch.export``, on meta and fake tensors (shape inference, ``FakeTensorMode``), and inside ``torch.func``
transforms (``grad``, ``vmap``, ``jacrev``: per-sample gradients, ensembles). Its plain torch ops are what those
tracers follow (the fused backward and the kernels read values the tracers do not have), so results agree with
eager mode to rounding (the fused scan computes ``β·v + x`` with one rounding, the reference with two): spikes
are the same unless a membrane lies within a rounding of the threshold. ``β`` and ``v_th`` may then be 0-d
tensors (:class:`neurosim.nn.LIF` passes its buffers). ``vmap`` over a layer that draws random numbers
(``Dropout`` in training) needs ``randomness="different"`` or ``"same"``, as for torch's own dropout.

Inside :func:`no_temporal_grad` the temporal path is cut: every step's previous state enters as a constant
(``sg(·)``), so gradients flow only from a step's spikes (or recorded membrane) to that step's input, and
to a learnable decay through ``β·sg(v[t−1])``. This is the neuron of SLTT (Meng et al., ICCV 2023): a whole
chunk of steps then backwards at once, as one spatial pass, with the result of one step at a time.

Shapes:
    x_seq: ``[T, B, ...]`` (time first); state ``v``: ``[B, ...]``; spikes: like ``x_seq``.

Example:
    >>> import torch
    >>> x = torch.full((4, 1), 0.6)
    >>> s, state = lif_scan(x, LIFParams(beta=1.0, v_th=1.0))
    >>> s.flatten().tolist()   # v: 0.6, 1.2→spike→0.2, 0.8, 1.4→spike→0.4
    [0.0, 1.0, 0.0, 1.0]
    >>> round(state.v.item(), 4)
    0.4
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import numbers
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import torch

from neurosim.functional import _lif_kernels as _kernels
from neurosim.functional.surrogate import Surrogate, heaviside, spike

__all__ = [
    "RESETS", "RESET_TIMINGS", "LIFParams", "LIFState", "beta_from_tau", "is_temporal_grad_enabled", "lif_scan",
    "no_temporal_grad", "strict_threshold", "tau_from_beta",
]

RESETS = ("subtract", "zero", "none")
RESET_TIMINGS = ("immediate", "delayed")
BACKENDS = ("auto", "reference", "fused")


_TEMPORAL_GRAD = contextvars.ContextVar("neurosim_temporal_grad", default=True)


@contextlib.contextmanager
def no_temporal_grad() -> Iterator[None]:
    """Within this context, neuron state carries no gradient from one step to the next (SLTT's ``sg``).

    Like ``torch.no_grad`` it is a mode, not a property of the model: the LIF and LI layers read it when they
    run forward, and the graph they build then holds no temporal path; the backward may run outside it.
    Nested uses and exceptions restore the previous mode.

    Example:
        >>> import torch
        >>> x = torch.full((3, 1), 0.6, requires_grad=True)
        >>> with no_temporal_grad():
        ...     s, _ = lif_scan(x, LIFParams(beta=1.0, v_th=1.0, surrogate=Surrogate("triangle")))
        >>> s.sum().backward()
        >>> [round(g, 4) for g in x.grad.flatten().tolist()]   # σ'(h_t − 1) of each step alone: h = 0.6, 1.2, 0.8
        [0.6, 0.8, 0.8]
    """
    token = _TEMPORAL_GRAD.set(False)
    try:
        yield
    finally:
        _TEMPORAL_GRAD.reset(token)


def is_temporal_grad_enabled() -> bool:
    """False inside :func:`no_temporal_grad`."""
    return _TEMPORAL_GRAD.get()


def strict_threshold(v_th: float, dtype: torch.dtype = torch.float32) -> float:
    """The threshold that makes the immediate timing (a spike at ``v >= v_th``) spike at ``v > v_th`` as NIR and
    snnTorch do: the next number above ``v_th`` in ``dtype``, the dtype the model runs in (ties ``v == v_th`` are
    common with integer weights and thresholds)."""
    return float(torch.nextafter(torch.tensor(v_th, dtype=dtype), torch.tensor(math.inf, dtype=dtype)))


def beta_from_tau(tau_mem_ms: float, dt_ms: float) -> float:
    """Decay per step ``β = exp(−dt/τ)``; both times in milliseconds."""
    for name, v in (("tau_mem_ms", tau_mem_ms), ("dt_ms", dt_ms)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError(f"{name} must be a number of milliseconds, got {v!r}")
    if not (tau_mem_ms > 0 and math.isfinite(tau_mem_ms)):
        raise ValueError(f"tau_mem_ms must be a positive finite number of milliseconds, got {tau_mem_ms!r}")
    if not (dt_ms > 0 and math.isfinite(dt_ms)):
        raise ValueError(f"dt_ms must be a positive finite number of milliseconds, got {dt_ms!r}")
    return math.exp(-dt_ms / tau_mem_ms)


def tau_from_beta(beta: float, dt_ms: float) -> float:
    """Inverse of :func:`beta_from_tau`: ``τ = −dt / ln β`` in ms (``inf`` for β = 1, 0 for β = 0: no memory)."""
    if not 0 <= beta <= 1:
        raise ValueError(f"beta must be in [0, 1], got {beta!r}")
    if beta == 0:
        return 0.0
    return math.inf if beta == 1 else -dt_ms / math.log(beta)


class LIFState(NamedTuple):
    """Membrane state carried between calls.

    Attributes:
        v: membrane potential after the last step, ``[B, ...]`` (post-reset for ``immediate`` timing, the
            raw membrane for ``delayed``/snnTorch timing).
        v_seq: membrane before reset at every step ``[T, B, ...]`` when recording was asked for, else None.
    """

    v: torch.Tensor
    v_seq: torch.Tensor | None = None


@dataclass(frozen=True)
class LIFParams:
    """Parameters of the LIF dynamics (see the module docstring for the equations).

    Args:
        beta: decay per step in [0, 1] (0: no memory between steps); a float or a tensor broadcastable to one
            step ``[B, ...]`` (learnable decay passes a tensor that requires grad).
        v_th: firing threshold (float or tensor; a tensor that requires grad makes it learnable).
        reset: ``subtract`` | ``zero`` | ``none``.
        detach_reset: stop the gradient through the reset term (as SpikingJelly's ``detach_reset``).
        surrogate: surrogate derivative of the spike non-linearity.
        reset_timing: ``immediate`` (default; SLTT/SpikingJelly) or ``delayed`` (snnTorch ``Leaky``).
    """

    beta: float | torch.Tensor = 0.9
    v_th: float | torch.Tensor = 1.0
    reset: str = "subtract"
    detach_reset: bool = False
    surrogate: Surrogate = Surrogate("atan")
    reset_timing: str = "immediate"

    def __post_init__(self) -> None:
        if self.reset not in RESETS:
            raise ValueError(f"reset must be one of {RESETS}, got {self.reset!r}")
        if self.reset_timing not in RESET_TIMINGS:
            raise ValueError(f"reset_timing must be one of {RESET_TIMINGS}, got {self.reset_timing!r}")
        if isinstance(self.surrogate, str):
            object.__setattr__(self, "surrogate", Surrogate(self.surrogate))
        if not isinstance(self.beta, torch.Tensor) and not 0 <= float(self.beta) <= 1:
            raise ValueError(f"beta must be in [0, 1], got {self.beta!r}")
        if not isinstance(self.v_th, torch.Tensor) and not float(self.v_th) > 0:
            raise ValueError(f"v_th must be positive, got {self.v_th!r}")
        # a tensor is checked too where its values can be read without a device sync (CPU, not traced)
        _check_tensor(self.beta, "beta", "in [0, 1]", lambda t: (t >= 0) & (t <= 1))
        _check_tensor(self.v_th, "v_th", "positive", lambda t: t > 0)


def _check_tensor(value, name: str, rule: str, ok) -> None:
    """ValueError when a CPU tensor ``value`` holds a value outside ``ok`` (NaN included); a GPU tensor is not read
    (a device sync per LIF call), nor one a tracer stands in for."""
    if not isinstance(value, torch.Tensor) or value.device.type != "cpu" or _kernels.symbolic(value):
        return
    t = value.detach()
    if t.numel() == 1:
        v = float(t)
        if not ok(v):
            raise ValueError(f"{name} must be {rule}, got a tensor holding {v!r}")
    elif t.numel() and not bool(ok(t).all()):
        bad = t[~ok(t)]
        raise ValueError(f"{name} must be {rule} everywhere, got a tensor with {bad.numel()} value(s) outside it "
                         f"(e.g. {float(bad.flatten()[0])!r})")


_HALF = (torch.float16, torch.bfloat16)
_NO_DOUBLE_BACKWARD = (
    "the fused LIF backward through time cannot itself be differentiated (create_graph=True); for gradient "
    "penalties and other double backward use backend='reference' (lif_scan(..., backend='reference') or "
    "LIF(..., backend='reference'))")


def _float_input(x_seq: torch.Tensor) -> torch.Tensor:
    """``x_seq`` as floats: integer and bool tensors (spike counts, binary spikes) in torch's default float dtype,
    as ``β·v + x`` promotes them; float tensors unchanged."""
    if x_seq.is_floating_point():
        return x_seq
    if x_seq.is_complex():
        raise TypeError(f"x_seq must be real, got {x_seq.dtype}")
    return x_seq.to(torch.get_default_dtype())


def _check_state(x_seq: torch.Tensor, v0, name: str, promoted_from: torch.dtype | None = None,
                 move: str = "state.to(x_seq.device)",
                 why: str = "the membrane would otherwise be computed in one dtype or the other depending on the "
                            "backend") -> torch.Tensor:
    """``v0`` if it can continue ``x_seq`` (one step's shape, ``x_seq``'s dtype and device), else a ValueError naming
    ``name`` (``move``: how to move it to x_seq's device; ``why``: why the dtypes must agree)."""
    if not isinstance(v0, torch.Tensor) or v0.shape != x_seq.shape[1:]:
        got = tuple(v0.shape) if isinstance(v0, torch.Tensor) else type(v0).__name__
        raise ValueError(
            f"{name} has shape {got} but x_seq steps have shape {tuple(x_seq.shape[1:])}; "
            "pass state=None to start from rest (state is never re-zeroed silently)"
        )
    if v0.dtype != x_seq.dtype:
        if promoted_from is not None:  # the state must be the float dtype x_seq was promoted to
            raise ValueError(f"{name} is {v0.dtype} but x_seq is {x_seq.dtype} (promoted from {promoted_from}: "
                             f"integer and bool input runs in {x_seq.dtype}); pass a {x_seq.dtype} state, e.g. the "
                             "one the previous call returned")
        raise ValueError(f"{name} is {v0.dtype} but x_seq is {x_seq.dtype}; cast one to the other ({why})")
    if v0.device != x_seq.device:
        raise ValueError(f"{name} is on {v0.device} but x_seq is on {x_seq.device}; move the state to x_seq's device "
                         f"({move}), or pass state=None to start from rest")
    return v0


def _check_param_devices(x_seq: torch.Tensor, params: LIFParams) -> None:
    """β and v_th tensors on x_seq's device, or 0-d CPU tensors (which torch takes as scalars on any device)."""
    for name in ("beta", "v_th"):
        p = getattr(params, name)
        if (isinstance(p, torch.Tensor) and p.device != x_seq.device
                and not (p.device.type == "cpu" and p.dim() == 0)):
            raise ValueError(f"LIFParams.{name} is a tensor on {p.device} but x_seq is on {x_seq.device}; move it to "
                             "x_seq's device (for a neurosim.nn.LIF: lif.to(x_seq.device))")


def _check_input(x_seq: torch.Tensor, state: LIFState | None,
                 params: LIFParams) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x_seq as floats, the initial membrane)``, or an error naming what does not fit."""
    if not isinstance(x_seq, torch.Tensor):
        raise TypeError(f"x_seq must be a torch.Tensor [T, B, ...], got {type(x_seq).__name__}")
    if x_seq.dim() < 2:
        raise ValueError(f"x_seq must be time-first [T, B, ...] with at least 2 dims, got shape {tuple(x_seq.shape)}")
    given = x_seq.dtype
    x_seq = _float_input(x_seq)
    _check_param_devices(x_seq, params)
    if state is None:
        return x_seq, x_seq.new_zeros(x_seq.shape[1:])  # (T = 0 has no x_seq[0])
    v0 = state.v if isinstance(state, LIFState) else state
    return x_seq, _check_state(x_seq, v0, "state.v", given if given != x_seq.dtype else None,
                               "LIFState(state.v.to(x_seq.device))")


def lif_scan(
    x_seq: torch.Tensor,
    params: LIFParams,
    state: LIFState | None = None,
    *,
    record_membrane: bool = False,
    backend: str = "auto",
) -> tuple[torch.Tensor, LIFState]:
    """Run LIF dynamics over ``T`` steps.

    Args:
        x_seq: input current ``[T, B, ...]``; integer and bool input is promoted to float32 (torch's default
            float dtype) first.
        params: :class:`LIFParams`.
        state: state from a previous call (continues the sequence) or None (start at rest, ``v = 0``).
        record_membrane: also return the pre-reset membrane of every step in ``state.v_seq``.
        backend: ``auto`` | ``reference`` | ``fused`` (traced and transformed code runs ``reference``: see the
            module docstring).

    Returns:
        ``(spikes_seq, final_state)``; ``spikes_seq`` has ``x_seq``'s shape and dtype (float32 for integer or bool
        ``x_seq``).

    Raises:
        ValueError: ``x_seq`` of rank < 2; a state of another shape, dtype or device than one step of ``x_seq``;
            β or v_th tensors on another device; a backend that does not exist or does not apply.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    x_seq, v0 = _check_input(x_seq, state, params)
    v_th = params.v_th
    fused_ok = (params.reset_timing == "immediate"
                and not (isinstance(v_th, torch.Tensor) and (v_th.requires_grad or v_th.numel() != 1))
                and x_seq.dtype not in _HALF)  # half floats: β rounds to the dtype there, not in the reference
    if backend == "fused" and not fused_ok:
        raise ValueError("the fused backend needs reset_timing='immediate', one threshold without grad, and "
                         f"float32/float64 input (got {x_seq.dtype}); use backend='reference' or 'auto'")
    temporal = is_temporal_grad_enabled()
    if x_seq.shape[0] == 0:  # no steps: no spikes, the state unchanged
        return x_seq.new_zeros(x_seq.shape), LIFState(v0, x_seq.new_zeros(x_seq.shape) if record_membrane else None)
    # traced (compile, export, meta/fake tensors, torch.func): the reference loop, which tracers follow
    fused = backend != "reference" and fused_ok and not _kernels.symbolic(x_seq, v0, params.beta, v_th)
    if fused and not record_membrane and not _needs_graph(x_seq, v0, params.beta):
        # inference, evaluation, SLTT-K's forward-only steps: in place, no graph, no membrane buffer
        beta = torch.as_tensor(params.beta, dtype=x_seq.dtype, device=x_seq.device)
        s_seq, v_final = _forward_no_graph(x_seq, v0, beta, float(params.v_th), params.reset)
        return s_seq, LIFState(v_final)
    if not fused:
        if params.reset_timing == "delayed":
            return _scan_delayed(x_seq, params, v0, record_membrane, temporal)
        return _scan_reference(x_seq, params, v0, record_membrane, temporal)
    beta = torch.as_tensor(params.beta, dtype=x_seq.dtype, device=x_seq.device)
    v_th = float(v_th)
    if not temporal:
        s_seq, v_final, h_seq = _SpatialLIF.apply(x_seq, v0.detach(), beta, v_th, params.reset, params.surrogate)
        return s_seq, LIFState(v_final, h_seq if record_membrane else None)
    if x_seq.shape[0] == 1:  # one step at a time (online inference, a carried graph): no scan machinery
        s, v_final, h = _LIFStep.apply(x_seq.squeeze(0), v0, beta, v_th, params.reset, params.detach_reset,
                                       params.surrogate)
        return s.unsqueeze(0), LIFState(v_final, h.unsqueeze(0) if record_membrane else None)
    s_seq, v_final, h_seq = _FusedLIF.apply(
        x_seq, v0, beta, v_th, params.reset, params.detach_reset, params.surrogate
    )
    return s_seq, LIFState(v_final, h_seq if record_membrane else None)


def _scan_reference(x_seq, params: LIFParams, v, record: bool, temporal: bool = True):
    spikes, hs = [], []
    for x in x_seq:
        if not temporal:
            v = v.detach()
        h = params.beta * v + x
        s = spike(h - params.v_th, params.surrogate)
        s_r = s.detach() if params.detach_reset else s
        if params.reset == "subtract":
            v = h - params.v_th * s_r
        elif params.reset == "zero":
            v = h * (1 - s_r)
        else:
            v = h
        spikes.append(s)
        if record:
            hs.append(h)
    return torch.stack(spikes), LIFState(v if temporal else v.detach(), torch.stack(hs) if record else None)


def _scan_delayed(x_seq, params: LIFParams, v, record: bool, temporal: bool = True):
    """snnTorch ``Leaky`` timing (reset_delay=True): detached reset from the previous membrane."""
    beta = params.beta
    if isinstance(beta, torch.Tensor):
        beta = beta.clamp(0, 1)  # snnTorch clamps beta to [0, 1] every step
    spikes, vs = [], []
    for x in x_seq:
        if not temporal:
            v = v.detach()
        r = heaviside(v - params.v_th, strict=True).detach()
        if params.reset == "subtract":
            v = beta * v + x - params.v_th * r
        elif params.reset == "zero":
            v = beta * (1 - r) * v + x
        else:
            v = beta * v + x
        s = spike(v - params.v_th, params.surrogate, strict=True)
        spikes.append(s)
        if record:
            vs.append(v)
    return torch.stack(spikes), LIFState(v if temporal else v.detach(), torch.stack(vs) if record else None)


def _reduce_to(grad: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Sum a broadcast gradient back to ``shape``."""
    while grad.dim() > len(shape):
        grad = grad.sum(0)
    for i, n in enumerate(shape):
        if n == 1 and grad.shape[i] != 1:
            grad = grad.sum(i, keepdim=True)
    return grad


def _needs_graph(x_seq, v0, beta) -> bool:
    if not torch.is_grad_enabled():
        return False
    return any(isinstance(t, torch.Tensor) and t.requires_grad for t in (x_seq, v0, beta))


def _forward_no_graph(x_seq, v0, beta, v_th: float, reset: str):
    """The LIF scan where no gradient is taken: the membrane is updated in place in one buffer, ``(spikes, v)``."""
    if _kernels.kernels_ok(x_seq, v0) and _kernels.scalar_ok(beta):
        s_seq, v, _ = _kernels.scan_forward(x_seq, v0, beta, v_th, reset, keep_h=False)
        return s_seq, v
    s_seq = torch.empty_like(x_seq)
    v = v0.clone() if x_seq.shape[0] == 0 else torch.empty_like(v0)
    prev = v0
    for t in range(x_seq.shape[0]):
        torch.addcmul(x_seq[t], beta, prev, out=v)  # h = β·v + x, in v's buffer
        prev = v
        s = torch.ge(v, v_th, out=s_seq[t])
        if reset == "subtract":
            v.sub_(s, alpha=v_th)
        elif reset == "zero":
            v.addcmul_(v, s, value=-1.0)
    return s_seq, v


def _fused_forward(x_seq, v0, beta, v_th: float, reset: str):
    """The LIF scan without autograd: ``(spikes, final v, pre-reset membrane h)``, each a new tensor."""
    if _kernels.kernels_ok(x_seq, v0) and _kernels.scalar_ok(beta):  # the same values in one pass (numba)
        return _kernels.scan_forward(x_seq, v0, beta, v_th, reset)
    h_seq = torch.empty_like(x_seq)
    s_seq = torch.empty_like(x_seq)
    v = v0
    buf = torch.empty_like(v0) if reset != "none" and x_seq.shape[0] else None  # the state, rewritten each step
    for t in range(x_seq.shape[0]):
        v = _step_forward(x_seq[t], v, beta, v_th, reset, h_seq[t], s_seq[t], buf)
    if reset == "none" or v is v0:
        v = v.clone()  # not a view of h_seq, and not the input tensor (T = 0)
    return s_seq, v, h_seq


def _step_forward(x, v, beta, v_th: float, reset: str, h_out, s_out, buf):
    """One step of the scan into given buffers: ``h = β·v + x`` (one rounding) into ``h_out``, ``s = h ≥ θ`` (0./1. in
    h's dtype) into ``s_out``; returns the reset state, in ``buf`` (``h_out`` itself for ``none``). Shared by the fused
    LIF's and the recurrent LIF's (:mod:`neurosim.nn.recurrent`) forward loops."""
    h = torch.addcmul(x, beta, v, out=h_out)
    s = torch.ge(h, v_th, out=s_out)
    if reset == "subtract":
        return torch.sub(h, s, alpha=v_th, out=buf)
    if reset == "zero":
        return torch.addcmul(h, h, s, value=-1.0, out=buf)
    return h


def _v_before(h_seq, v0, v_th: float, reset: str):
    """The (post-reset) state entering each step, ``[v0, v_0, …, v_{T−2}]``, recomputed from ``h``."""
    s = (h_seq >= v_th).to(h_seq.dtype)
    if reset == "subtract":
        v_after = h_seq - v_th * s
    elif reset == "zero":
        v_after = h_seq * (1 - s)
    else:
        v_after = h_seq
    return torch.cat([v0.unsqueeze(0), v_after[:-1]])


class _SpatialLIF(torch.autograd.Function):
    """LIF scan with the temporal path cut (:func:`no_temporal_grad`): ``dL/dx_t = dL/ds_t·σ'(h_t − θ) + dL/dh_t``.

    The backward is one element-wise pass over all steps (no loop back through time); the final state carries
    no gradient. The decay still learns through ``h_t = β·sg(v_{t−1}) + x_t``: ``dL/dβ = Σ_t dL/dh_t·v_{t−1}``.
    """

    @staticmethod
    def forward(ctx, x_seq, v0, beta, v_th, reset, surrogate):
        ctx.set_materialize_grads(False)
        s_seq, v, h_seq = _fused_forward(x_seq, v0, beta, v_th, reset)
        ctx.mark_non_differentiable(v)
        ctx.save_for_backward(h_seq, v0 if ctx.needs_input_grad[2] else None, beta)
        ctx.cfg = (v_th, reset, surrogate)
        return s_seq, v, h_seq

    @staticmethod
    def backward(ctx, grad_s, grad_v, grad_h):
        h_seq, v0, beta = ctx.saved_tensors
        v_th, reset, surrogate = ctx.cfg
        kernels = _kernels.backward_ok(surrogate) and _kernels.kernels_ok(h_seq, grads=(grad_s, grad_h))
        if grad_s is not None and kernels:  # one pass (numba), the same values as the torch ops below
            dh = _kernels.spatial_backward(h_seq, grad_s, grad_h, v_th, surrogate)
        elif grad_s is not None and torch.is_grad_enabled():  # create_graph: out of place, differentiable again
            dh = surrogate.grad(h_seq - v_th) * grad_s
            if grad_h is not None:
                dh = dh + grad_h
        elif grad_s is not None:
            dh = surrogate.grad_(h_seq - v_th).mul_(grad_s)
            if grad_h is not None:
                dh.add_(grad_h)
        else:
            dh = grad_h.clone() if grad_h is not None else torch.zeros_like(h_seq)
        grad_beta = None
        if ctx.needs_input_grad[2]:  # v_{t−1} enters as the constant sg(v_{t−1}): detached from h (create_graph)
            grad_beta = _reduce_to((dh * _v_before(h_seq.detach(), v0, v_th, reset)).sum(0), beta.shape)
        return (dh if ctx.needs_input_grad[0] else None), None, grad_beta, None, None, None


class _FusedLIF(torch.autograd.Function):
    """Whole-sequence LIF with a hand-derived backward; saves only the pre-reset membrane ``h``.

    Backward (``g_t = σ'(h_t − θ)``, ``gv`` = dL/dv_t flowing back from later steps):
    ``dL/dh_t = (dL/ds_t + gv·∂v/∂s)·g_t + gv·∂v/∂h|_s + dL/dh_t(recorded)``, ``dL/dx_t = dL/dh_t``,
    ``dL/dv_{t−1} = β·dL/dh_t``, ``dL/dβ = Σ_t dL/dh_t·v_{t−1}``, with ∂v/∂s = −θ (subtract), −h (zero),
    0 (none, or when the reset is detached) and ∂v/∂h|_s = 1 (subtract, none), 1 − s (zero).
    """

    @staticmethod
    def forward(ctx, x_seq, v0, beta, v_th, reset, detach_reset, surrogate):
        ctx.set_materialize_grads(False)  # unused outputs get None, not full-size zero tensors
        s_seq, v, h_seq = _fused_forward(x_seq, v0, beta, v_th, reset)
        # v0 only for dL/dβ: a state from torch.inference_mode() cannot be saved, and needs not be otherwise
        ctx.save_for_backward(h_seq, v0 if ctx.needs_input_grad[2] else None, beta)
        ctx.cfg = (v_th, reset, detach_reset, surrogate)
        return s_seq, v, h_seq

    @staticmethod
    def backward(ctx, grad_s, grad_v, grad_h):
        if torch.is_grad_enabled():
            raise RuntimeError(_NO_DOUBLE_BACKWARD)
        h_seq, v0, beta = ctx.saved_tensors
        v_th, reset, detach_reset, surrogate = ctx.cfg
        gv = grad_v if grad_v is not None else h_seq.new_zeros(h_seq.shape[1:])
        if _kernels.backward_ok(surrogate) and _kernels.scalar_ok(beta) and _kernels.kernels_ok(
                h_seq, grads=(grad_s, grad_h, gv)):  # the loop below, per neuron in one pass (numba), same values
            dh, gv = _kernels.temporal_backward(h_seq, grad_s, grad_h, gv, beta, v_th, reset, detach_reset, surrogate)
            return _fused_grads(ctx, dh, gv, h_seq, v0, beta, v_th, reset)
        # g_t = σ'(h_t − θ) for all steps at once; the buffer is then overwritten in place with dL/dh_t.
        dh = surrogate.grad_(h_seq - v_th)
        for t in range(h_seq.shape[0] - 1, -1, -1):
            g = dh[t]
            _step_dh(g, h_seq[t], grad_s[t] if grad_s is not None else None, gv, v_th, reset, detach_reset)
            if grad_h is not None:
                g.add_(grad_h[t])  # (+ grad of the recorded membrane)
            gv = beta * g
        return _fused_grads(ctx, dh, gv, h_seq, v0, beta, v_th, reset)


def _step_dh(g: torch.Tensor, h: torch.Tensor, gs: torch.Tensor | None, gv: torch.Tensor, v_th: float, reset: str,
             detach_reset: bool) -> torch.Tensor:
    """One step back through time, in place: ``g`` (``σ'(h_t − θ)``) becomes ``dL/dh_t = (dL/ds_t + gv·∂v/∂s)·g_t +
    gv·∂v/∂h|_s`` (``gs`` = dL/ds_t or None, ``gv`` = dL/dv_t from later steps; see :class:`_FusedLIF`). Shared by
    the fused LIF's and the recurrent LIF's (:mod:`neurosim.nn.recurrent`) backward loops."""
    if reset == "subtract" and not detach_reset:
        coef = torch.add(gs, gv, alpha=-v_th) if gs is not None else gv * -v_th
        return torch.addcmul(gv, g, coef, out=g)
    if reset == "zero":
        keep = gv * (h < v_th)
        coef = gs if detach_reset else (gs - gv * h if gs is not None else -gv * h)
        return g.copy_(keep) if coef is None else torch.addcmul(keep, g, coef, out=g)
    # none, or subtract with a detached reset: ∂v/∂s = 0, ∂v/∂h = 1
    return g.copy_(gv) if gs is None else torch.addcmul(gv, g, gs, out=g)


def _fused_grads(ctx, dh, gv, h_seq, v0, beta, v_th: float, reset: str):
    """:class:`_FusedLIF`'s gradients from ``dL/dh`` (all steps) and ``dL/dv0``."""
    grad_x = dh if ctx.needs_input_grad[0] else None
    grad_v0 = gv if ctx.needs_input_grad[1] else None
    grad_beta = None
    if ctx.needs_input_grad[2]:
        grad_beta = _reduce_to((dh * _v_before(h_seq, v0, v_th, reset)).sum(0), beta.shape)
    return grad_x, grad_v0, grad_beta, None, None, None, None


class _LIFStep(torch.autograd.Function):
    """One LIF step (the fused backend's maths for ``T = 1``) with a lean backward.

    Same equations as :class:`_FusedLIF`. When no gradient reaches the new state or the recorded membrane
    (SLTT detaches the state between steps), ``dL/dh = dL/ds·σ'(h − θ)``: one multiply after the surrogate.
    """

    @staticmethod
    def forward(ctx, x, v0, beta, v_th, reset, detach_reset, surrogate):
        ctx.set_materialize_grads(False)
        h = torch.addcmul(x, beta, v0)
        s = torch.ge(h, v_th, out=torch.empty_like(h))  # 0./1. in h's dtype (faster than a bool cast)
        if reset == "subtract":
            v = torch.sub(h, s, alpha=v_th)
        elif reset == "zero":
            v = torch.addcmul(h, h, s, value=-1.0)
        else:
            v = h.clone()  # not the same tensor as the h output
        ctx.save_for_backward(h, v0 if ctx.needs_input_grad[2] else None, beta)  # v0 only for dL/dβ
        ctx.cfg = (v_th, reset, detach_reset, surrogate)
        return s, v, h

    @staticmethod
    def backward(ctx, grad_s, grad_v, grad_h):
        if torch.is_grad_enabled():
            raise RuntimeError(_NO_DOUBLE_BACKWARD)
        h, v0, beta = ctx.saved_tensors
        v_th, reset, detach_reset, surrogate = ctx.cfg
        g = surrogate.grad_(h - v_th)  # σ'(h − θ), then overwritten in place with dL/dh
        if grad_v is None:
            if grad_s is None:
                g.zero_()
            else:
                g.mul_(grad_s)
        elif reset == "subtract" and not detach_reset:
            coef = torch.add(grad_s, grad_v, alpha=-v_th) if grad_s is not None else grad_v * -v_th
            torch.addcmul(grad_v, g, coef, out=g)
        elif reset == "zero":
            keep = grad_v * (h < v_th)
            coef = grad_s if detach_reset else (grad_s - grad_v * h if grad_s is not None else -grad_v * h)
            if coef is None:
                g.copy_(keep)
            else:
                torch.addcmul(keep, g, coef, out=g)
        elif grad_s is None:
            g.copy_(grad_v)
        else:
            torch.addcmul(grad_v, g, grad_s, out=g)
        if grad_h is not None:
            g.add_(grad_h)
        grad_v0 = beta * g if ctx.needs_input_grad[1] else None
        grad_beta = _reduce_to(g * v0, beta.shape) if ctx.needs_input_grad[2] else None
        grad_x = g if ctx.needs_input_grad[0] else None
        return grad_x, grad_v0, grad_beta, None, None, None, None

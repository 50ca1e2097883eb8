"""numba CPU kernels for the fused LIF backend: the whole scan, forward or backward, in one pass over memory.

The fused backend (:mod:`neurosim.functional.lif`) written in torch ops costs three element-wise calls per
step forward (``addcmul`` → ``ge`` → ``sub``) and, backward, five in-place calls for the surrogate derivative
plus one or two per step; each streams its operands through memory once and does almost no arithmetic. The
kernels here read ``x`` (or ``h`` and the incoming gradients) once per step and keep the running membrane
(or membrane gradient) of a block of neurons in cache across the steps; blocks run on numba's threads.

Results are torch's, bit for bit: each element goes through the operations torch's CPU kernels apply, in the
same order and precision, including the fused multiply-adds of its vectorised ``addcmul`` and
``add(..., alpha=)`` (``h = fma(β, v, x)``) — tested against the torch-op path for every reset, surrogate,
dtype and gradient combination (tests/functional/test_lif_kernels.py). ``sigmoid`` is left to torch: its
``exp`` does not vectorise in numba without Intel SVML.

They take contiguous float32/float64 CPU tensors and a one-element decay (:func:`kernels_ok`,
:func:`scalar_ok`); anything else runs the torch ops, and so does everything :func:`symbolic` (``torch.compile``
and ``torch.export`` tracing, ``torch.func`` transforms, meta and fake tensors: values the kernels cannot read).
Like the pooling kernels, launches hold one lock, use ``torch.get_num_threads()`` threads, and a process forked
after they ran uses torch ops (:mod:`neurosim._numba_threads`).

Measured on the 2-core benchmark machine (bench_sltt's conv SNN, T = 50, batch 32, 2 threads; torch-op and
kernel paths alternating iteration by iteration in one process, three processes): 12–13 % less time per BPTT
iteration (e.g. 131 → 115 ms), ~5 % per SLTT and 5–10 % per SLTT-K (K = 2) iteration. Alone, on 460,800
neurons × 4 steps: forward 0.27 instead of 0.42 ms (0.18 instead of 0.30 without a graph), backward through
time 0.47 instead of 0.98 ms, SLTT's spatial backward 0.21 instead of 0.52 ms. On one thread the kernels gain
nothing in training: the scan is bandwidth-bound, and one core streams at half the rate.

First use compiles them (~4.5 s per dtype; `make demo` takes ~5 s longer the first time); numba caches the result
next to this file.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch
from numba import prange
from numba.core import types
from numba.extending import intrinsic
from torch._subclasses.fake_tensor import FakeTensor

from neurosim._numba_threads import kernel_threads, numba_usable

__all__ = ["backward_ok", "kernels_ok", "scalar_ok", "scan_forward", "spatial_backward", "symbolic",
           "temporal_backward"]

SURROGATES = ("atan", "sigmoid", "fast_sigmoid", "triangle", "rectangle")  # sigmoid: torch ops (see below)
RESETS = ("subtract", "zero", "none")
_BLOCK = 8192  # neurons per block: a block's running state stays in L1/L2 across the steps


@intrinsic
def _fma(typingctx, a, b, c):
    """``a·b + c`` with one rounding (LLVM's ``llvm.fma``), as torch's vectorised ``addcmul``/``add(alpha=)``."""
    if not (isinstance(a, types.Float) and a == b == c):
        return None

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return a(a, b, c), codegen


# The kernels split the neurons into blocks and hand each block's 1-D slices of flat arrays to inlined loops over
# ``range(len)``: that is what LLVM vectorises. Indexing by a ``range(lo, hi)`` variable, which numba must check
# for negative wraparound, stays scalar and is 4-7x slower; so does a loop that branches between surrogates, or
# loads or stores under a flag, inside.


@numba.njit(inline="always", error_model="numpy")
def _surrogate_block(h, out, vth, code, c0, c1, one, zero):
    """``out = σ'(h − θ)`` in ``Surrogate.grad_``'s operation order, one loop per surrogate (``c0``, ``c1``: its
    constants in the tensor's dtype, see :func:`_constants`)."""
    n = h.shape[0]
    if code == 0:  # atan: ((x·πα/2)² + 1)⁻¹·α/2
        for i in range(n):
            z = (h[i] - vth) * c0
            z = z * z
            z = z + one
            out[i] = (one / z) * c1
    elif code == 2:  # fast sigmoid: (|x|·α + 1)⁻²
        for i in range(n):
            z = abs(h[i] - vth) * c0
            z = z + one
            z = z * z
            out[i] = one / z
    elif code == 3:  # triangle: clamp_min(|x|·(−α²) + α, 0), which keeps NaN
        for i in range(n):
            z = abs(h[i] - vth) * c0
            z = z + c1
            out[i] = z if (z > zero or z != z) else zero
    else:  # rectangle: 1/α where |x| < α/2, else 0 (NaN too, as lt_ does)
        for i in range(n):
            out[i] = (one if abs(h[i] - vth) < c0 else zero) * c1


@numba.njit(inline="always", error_model="numpy")
def _lif_step(v_prev, x, beta, vth, reset, one, zero):
    """One neuron, one step: ``(h, s, v)``."""
    hh = _fma(beta, v_prev, x)  # torch.addcmul(x, β, v)
    sp = one if hh >= vth else zero
    if reset == 0:
        return hh, sp, hh - vth * sp  # exact: sp is 0 or 1
    if reset == 1:
        return hh, sp, hh - hh * sp
    return hh, sp, hh


@numba.njit(inline="always", error_model="numpy")
def _forward_block(x, s, h, v_in, v, beta, vth, reset, keep_h, one, zero):
    # one loop each way: a store to h under a flag inside the loop keeps numba's parallel build scalar
    if keep_h:
        for i in range(v.shape[0]):
            h[i], s[i], v[i] = _lif_step(v_in[i], x[i], beta, vth, reset, one, zero)
    else:
        for i in range(v.shape[0]):
            _, s[i], v[i] = _lif_step(v_in[i], x[i], beta, vth, reset, one, zero)


def _scan_forward(x, v0, beta, vth, reset, keep_h, s, v, h, block):
    """``x``, ``s``, ``h``: flat ``[T·N]``; ``v0``, ``v``: ``[N]``."""
    N = v0.shape[0]
    T = x.shape[0] // N
    one, zero = s.dtype.type(1), s.dtype.type(0)
    nblocks = (N + block - 1) // block
    for b in prange(nblocks):
        lo = b * block
        hi = min(N, lo + block)
        vb = v[lo:hi]
        for t in range(T):
            o = t * N
            xb, sb, hb = x[o + lo:o + hi], s[o + lo:o + hi], h[o + lo:o + hi] if keep_h else h[0:0]
            # Step 0 reads v0, the others update vb in place. Two call sites, so that in each LLVM knows whether
            # the state read and the state written are the same array: a `v0 if t == 0 else vb` operand makes it
            # guard the loop with an overlap check that fails for t > 0 and falls back to scalar code; a copy
            # ``vb[:] = v0[…]`` goes through a temporary and costs as much as a step.
            if t == 0:
                _forward_block(xb, sb, hb, v0[lo:hi], vb, beta, vth, reset, keep_h, one, zero)
            else:
                _forward_block(xb, sb, hb, vb, vb, beta, vth, reset, keep_h, one, zero)


def _spatial_backward(h, gs, gh, has_gh, vth, code, c0, c1, out, block):
    """``out = σ'(h − θ)·gs (+ gh)``, all flat."""
    N = h.shape[0]
    one, zero = h.dtype.type(1), h.dtype.type(0)
    nblocks = (N + block - 1) // block
    for b in prange(nblocks):
        lo = b * block
        hi = min(N, lo + block)
        ob, gb = out[lo:hi], gs[lo:hi]
        _surrogate_block(h[lo:hi], ob, vth, code, c0, c1, one, zero)
        if has_gh:
            hb = gh[lo:hi]
            for i in range(ob.shape[0]):
                ob[i] = ob[i] * gb[i] + hb[i]  # two roundings, as mul_ then add_
        else:
            for i in range(ob.shape[0]):
                ob[i] = ob[i] * gb[i]


@numba.njit(inline="always", error_model="numpy")
def _temporal_block(h, gs, has_gs, gh, has_gh, gv_in, gv, dh, beta, vth, reset, detach, one, zero):
    """One step back through time for a block; ``dh`` holds σ'(h − θ) on entry, dL/dh on exit."""
    for i in range(h.shape[0]):
        g = dh[i]
        gvi = gv_in[i]
        gl, hl = gs[i], gh[i]  # loaded always (absent ones are stand-in arrays): a conditional load stays scalar
        gsi = gl if has_gs else zero
        if reset == 0 and not detach:  # subtract: coef = gs − θ·gv, g = g·coef + gv
            coef = _fma(gvi, -vth, gsi) if has_gs else gvi * -vth
            g = _fma(g, coef, gvi)
        elif reset == 1:  # zero: keep = gv·(h < θ), coef = gs (− gv·h unless detached)
            hh = h[i]
            keep = gvi * (one if hh < vth else zero)
            if detach:
                coef = gsi
            elif has_gs:
                coef = gsi - gvi * hh
            else:
                coef = -gvi * hh
            g = _fma(g, coef, keep) if (has_gs or not detach) else keep
        elif has_gs:  # none, or a detached subtract
            g = _fma(g, gsi, gvi)
        else:
            g = gvi
        if has_gh:
            g = g + hl
        dh[i] = g
        gv[i] = beta * g


def _temporal_backward(h, gs, has_gs, gh, has_gh, gv0, beta, vth, reset, detach, code, c0, c1, dh, gv, block):
    """``_FusedLIF.backward``'s loop back through time, per block of neurons (``h``, ``gs``, ``gh``, ``dh``: flat
    ``[T·N]``; ``gv0``, ``gv``: ``[N]``). ``gv`` enters as dL/dv_T and leaves as dL/dv_0 (= β·dL/dh_0)."""
    N = gv0.shape[0]
    T = h.shape[0] // N
    one, zero = h.dtype.type(1), h.dtype.type(0)
    nblocks = (N + block - 1) // block
    for b in prange(nblocks):
        lo = b * block
        hi = min(N, lo + block)
        gvb = gv[lo:hi]
        for t in range(T - 1, -1, -1):
            o = t * N
            hb, dhb = h[o + lo:o + hi], dh[o + lo:o + hi]
            gsb, ghb = gs[o + lo:o + hi], gh[o + lo:o + hi]  # h itself stands in for an absent one
            _surrogate_block(hb, dhb, vth, code, c0, c1, one, zero)
            if t == T - 1:  # two call sites, as in _scan_forward
                _temporal_block(hb, gsb, has_gs, ghb, has_gh, gv0[lo:hi], gvb, dhb, beta, vth, reset, detach, one,
                                zero)
            else:
                _temporal_block(hb, gsb, has_gs, ghb, has_gh, gvb, gvb, dhb, beta, vth, reset, detach, one, zero)


_scan_forward_kernel = numba.njit(cache=True, parallel=True, error_model="numpy")(_scan_forward)
_spatial_kernel = numba.njit(cache=True, parallel=True, error_model="numpy")(_spatial_backward)
_temporal_kernel = numba.njit(cache=True, parallel=True, error_model="numpy")(_temporal_backward)


def symbolic(*values) -> bool:
    """Whether these values (tensors; other values are skipped) may hold no data that the kernels, ``.numpy()``
    or ``float()`` can read: while ``torch.compile`` or ``torch.export`` traces (the kernels would get traced
    stand-ins for scalars and arrays), inside a ``torch.func`` transform (``grad``, ``vmap``, ``jacrev``, ...;
    their wrapped tensors have no storage), under a ``FakeTensorMode``, or for meta and fake tensors. Callers then
    use plain torch ops, which every tracer follows."""
    if _is_compiling() or _functorch_transform() is not None or _dispatch_mode(_FAKE_MODE) is not None:
        return True
    for t in values:  # (a loop, not any(...): this runs several times per LIF call)
        if isinstance(t, torch.Tensor) and (t.is_meta or isinstance(t, FakeTensor)):
            return True
    return False


_is_compiling = torch.compiler.is_compiling
_functorch_transform = torch._C._functorch.peek_interpreter_stack
_dispatch_mode, _FAKE_MODE = torch._C._get_dispatch_mode, torch._C._TorchDispatchModeKey.FAKE


def kernels_ok(*tensors: torch.Tensor | None, grads: tuple[torch.Tensor | None, ...] = ()) -> bool:
    """Whether the kernels can take these tensors: all on CPU, contiguous, of one float32/float64 dtype, and
    non-empty, in a process where numba's threads are usable, and none :func:`symbolic`. ``grads`` need not be
    contiguous (the backward functions copy those that are not, such as the expanded gradient of a ``sum()``).
    None entries are skipped."""
    ts = [t for t in tensors if t is not None]
    gs = [g for g in grads if g is not None]
    dtype = ts[0].dtype
    return (
        numba_usable() and dtype in (torch.float32, torch.float64) and ts[0].numel() > 0
        and all(t.device.type == "cpu" and t.dtype == dtype and t.is_contiguous() for t in ts)
        and all(g.device.type == "cpu" and g.dtype == dtype for g in gs)
        and not symbolic(*ts, *gs)
    )


def scalar_ok(value) -> bool:
    """A decay or threshold the kernels take: a Python number or a one-element CPU tensor (its value is read;
    a learnt β's gradient is computed by the caller from the kernels' ``dL/dh``)."""
    if isinstance(value, torch.Tensor):
        return value.numel() == 1 and value.device.type == "cpu"
    return isinstance(value, (int, float))


def backward_ok(surrogate) -> bool:
    """Whether a backward may use the kernels: every surrogate but ``sigmoid`` (its ``exp`` does not vectorise
    in numba without SVML; torch's ops win), and not while autograd records the backward itself
    (``create_graph=True``: SLTT's spatial backward in torch ops is differentiable again, the kernels are not)."""
    return surrogate.name != "sigmoid" and not torch.is_grad_enabled()


def _cast(value, dtype: torch.dtype):
    """``value`` as torch's CPU kernels see a scalar operand: rounded to the tensor's dtype."""
    np_type = np.float32 if dtype == torch.float32 else np.float64
    return np_type(float(value))


def _constants(name: str, alpha: float, dtype: torch.dtype):
    """``(code, c0, c1)`` for :func:`_surrogate_block`: the scalars ``Surrogate.grad_`` hands torch, in ``dtype``.
    ``sigmoid`` has no kernel loop (:func:`backward_ok` keeps it on torch ops); asking for it is an error, not a
    silent fall into another surrogate's loop."""
    a = alpha
    constants = {
        "atan": (math.pi / 2 * a, a / 2), "fast_sigmoid": (a, 0.0), "triangle": (-a * a, a),
        "rectangle": (a / 2, 1 / a),
    }
    if name not in constants:
        raise ValueError(f"the LIF kernels have no {name!r} surrogate; its backward runs in torch ops (backward_ok)")
    c0, c1 = constants[name]
    return SURROGATES.index(name), _cast(c0, dtype), _cast(c1, dtype)


def scan_forward(x_seq: torch.Tensor, v0: torch.Tensor, beta, v_th: float, reset: str, keep_h: bool = True):
    """The LIF scan: ``(spikes, final v, pre-reset membrane h or None)``, new tensors, equal to
    ``_fused_forward``'s. Call only where :func:`kernels_ok` (``x_seq``, ``v0``) and :func:`scalar_ok` (``beta``).

    The outputs are allocated in their own shape and handed to the kernel as flat views: returned as views of
    flat buffers, autograd would refuse in-place ops on them (``ReLU(inplace=True)`` after a LIF) as on any view
    output of a multi-output Function."""
    x = x_seq.reshape(-1)
    s = torch.empty_like(x_seq, memory_format=torch.contiguous_format)
    h = torch.empty_like(s) if keep_h else x.new_empty(0)
    v = torch.empty_like(v0, memory_format=torch.contiguous_format)
    dtype = x.dtype
    with kernel_threads():
        _scan_forward_kernel(
            x.numpy(), v0.reshape(-1).numpy(), _cast(beta, dtype), _cast(v_th, dtype), RESETS.index(reset), keep_h,
            s.view(-1).numpy(), v.view(-1).numpy(), h.view(-1).numpy(), _BLOCK,
        )
    return s, v, (h if keep_h else None)


def spatial_backward(h_seq: torch.Tensor, grad_s: torch.Tensor, grad_h: torch.Tensor | None, v_th: float,
                     surrogate) -> torch.Tensor:
    """``σ'(h − θ)·dL/ds (+ dL/dh)``: the backward of the LIF with the temporal path cut (SLTT)."""
    dh = torch.empty_like(h_seq, memory_format=torch.contiguous_format)
    code, c0, c1 = _constants(surrogate.name, surrogate.alpha, h_seq.dtype)
    grad_s = grad_s.contiguous()
    has_gh = grad_h is not None
    grad_h = grad_h.contiguous() if has_gh else h_seq
    with kernel_threads():
        _spatial_kernel(
            h_seq.reshape(-1).numpy(), grad_s.reshape(-1).numpy(), grad_h.reshape(-1).numpy(),
            has_gh, _cast(v_th, h_seq.dtype), code, c0, c1, dh.view(-1).numpy(), _BLOCK,
        )
    return dh


def temporal_backward(h_seq, grad_s, grad_h, grad_v, beta, v_th: float, reset: str, detach_reset: bool,
                      surrogate) -> tuple[torch.Tensor, torch.Tensor]:
    """``_FusedLIF``'s backward through time: ``(dL/dx_seq, dL/dv0)``; ``grad_v`` (dL/d final v) may be a zero
    tensor. Call only where :func:`kernels_ok` (``h_seq``, grads=the others) and :func:`scalar_ok` (``beta``)."""
    h = h_seq.reshape(-1)
    dh = torch.empty_like(h_seq, memory_format=torch.contiguous_format)  # own shape, passed flat: see scan_forward
    grad_v = grad_v.contiguous()
    gv = torch.empty_like(grad_v)
    dtype = h.dtype
    code, c0, c1 = _constants(surrogate.name, surrogate.alpha, dtype)
    has_gs, has_gh = grad_s is not None, grad_h is not None
    grad_s = grad_s.contiguous().reshape(-1) if has_gs else h
    grad_h = grad_h.contiguous().reshape(-1) if has_gh else h
    with kernel_threads():
        _temporal_kernel(
            h.numpy(), grad_s.numpy(), has_gs, grad_h.numpy(), has_gh, grad_v.reshape(-1).numpy(),
            _cast(beta, dtype), _cast(v_th, dtype), RESETS.index(reset), detach_reset, code, c0, c1,
            dh.view(-1).numpy(), gv.view(-1).numpy(), _BLOCK,
        )
    return dh, gv

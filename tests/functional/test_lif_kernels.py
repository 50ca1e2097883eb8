"""The numba LIF kernels give the torch-op fused backend's values and gradients bit for bit, and step aside where
they do not apply."""

import itertools
import os
import subprocess
import sys

import pytest
import torch

from neurosim.functional import LIFParams, LIFState, lif_scan, no_temporal_grad
from neurosim.functional import _lif_kernels as K
from neurosim.functional import lif as L
from neurosim.functional.surrogate import Surrogate

KERNEL_SURROGATES = [n for n in K.SURROGATES if n != "sigmoid"]
N_ODD = 2 * K._BLOCK + 37  # several blocks and a ragged last one


@pytest.fixture
def torch_ops(monkeypatch):
    """Run the fused backend's torch ops (the kernels' reference) inside the ``with`` block."""
    class _Switch:
        def __enter__(self):
            monkeypatch.setattr(K, "kernels_ok", lambda *a, **kw: False)

        def __exit__(self, *exc):
            monkeypatch.undo()

    return _Switch()


def _inputs(T, N, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(T, N, generator=g, dtype=dtype) * 0.8 + 0.45)
    v0 = torch.randn(N, generator=g, dtype=dtype) * 0.5
    special = torch.tensor([float("nan"), float("inf"), -float("inf"), 1.0, 0.0], dtype=dtype)
    x[0, : min(N, 5)] = special[: min(N, 5)]
    return x, v0


def _equal(a, b):
    return torch.equal(a, b) or (bool((a.isnan() == b.isnan()).all()) and torch.equal(a.nan_to_num(), b.nan_to_num()))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("T,N", [(1, N_ODD), (5, N_ODD), (7, 3)])
def test_forward_is_the_torch_ops_bit_for_bit(torch_ops, dtype, reset, T, N):
    x, v0 = _inputs(T, N, dtype)
    for beta, v_th in ((torch.tensor(0.6065306597, dtype=dtype), 1.0), (0.9, 0.3)):  # 0.3: not a binary fraction
        got = K.scan_forward(x, v0, beta, v_th, reset)
        with torch_ops:
            ref = L._fused_forward(x, v0, torch.as_tensor(beta, dtype=dtype), v_th, reset)
            ref_nograd = L._forward_no_graph(x, v0, torch.as_tensor(beta, dtype=dtype), v_th, reset)
        assert all(_equal(a, b) for a, b in zip(got, ref))
        s, v, h = K.scan_forward(x, v0, beta, v_th, reset, keep_h=False)
        assert h is None and _equal(s, ref_nograd[0]) and _equal(v, ref_nograd[1])
        assert s.dtype == dtype and set(s.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", KERNEL_SURROGATES)
@pytest.mark.parametrize("alpha", [None, 0.7])
def test_spatial_backward_is_the_torch_ops_bit_for_bit(dtype, name, alpha):
    sur = Surrogate(name, alpha)
    h, _ = _inputs(3, N_ODD, dtype, seed=1)
    a = sur.alpha
    h[1, :6] = torch.tensor([1 + 1 / a, 1 - 1 / a, 1 + a / 2, 1 - a / 2, 1.0, float("nan")], dtype=dtype)  # edges
    gs, gh = torch.randn_like(h), torch.randn_like(h)
    for grad_h in (None, gh):
        ref = sur.grad_(h - 1.0).mul_(gs)
        if grad_h is not None:
            ref.add_(grad_h)
        assert _equal(K.spatial_backward(h, gs, grad_h, 1.0, sur), ref)


def _fused_backward_torch(h, v0, beta, v_th, reset, detach, sur, gs, gv, gh):
    ctx = type("Ctx", (), {})()
    ctx.saved_tensors, ctx.cfg, ctx.needs_input_grad = (h, v0, beta), (v_th, reset, detach, sur), (True, True, False)
    with torch.no_grad():  # as autograd runs a backward (without create_graph)
        gx, gv0, *_ = L._FusedLIF.backward(ctx, gs, gv, gh)
    return gx, gv0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", KERNEL_SURROGATES)
@pytest.mark.parametrize("reset,detach", [("subtract", False), ("subtract", True), ("zero", False), ("zero", True),
                                          ("none", False)])
def test_temporal_backward_is_the_torch_ops_bit_for_bit(torch_ops, dtype, name, reset, detach):
    sur = Surrogate(name)
    x, v0 = _inputs(6, N_ODD, dtype, seed=2)
    beta = torch.tensor(0.8, dtype=dtype)
    _, _, h = K.scan_forward(x, v0, beta, 0.3, reset)
    gs, gh, gv = torch.randn_like(h), torch.randn_like(h), torch.randn_like(v0)
    for grad_s, grad_h, grad_v in itertools.product((gs, None), (gh, None), (gv, None)):
        if grad_s is None and grad_h is None and grad_v is None:
            continue
        got = K.temporal_backward(h, grad_s, grad_h, gv if grad_v is not None else torch.zeros_like(v0), beta, 0.3,
                                  reset, detach, sur)
        with torch_ops:
            ref = _fused_backward_torch(h, v0, beta, 0.3, reset, detach, sur, grad_s, grad_v, grad_h)
        assert _equal(got[0], ref[0]) and _equal(got[1], ref[1]), (grad_s is None, grad_h is None, grad_v is None)


def _run(x, v0, params, temporal, w):
    x, v0 = x.clone().requires_grad_(), v0.clone().requires_grad_()
    beta = params.beta
    if temporal:
        s, st = lif_scan(x, params, LIFState(v0), record_membrane=True)
    else:
        with no_temporal_grad():
            s, st = lif_scan(x, params, LIFState(v0), record_membrane=True)
    loss = (s * w).sum() + (st.v_seq * w).sum() * 0.1 + (st.v * w[-1]).sum()
    wrt = [x, v0] + ([beta] if isinstance(beta, torch.Tensor) and beta.requires_grad else [])
    grads = torch.autograd.grad(loss, wrt, allow_unused=True)
    return [s.detach(), st.v.detach(), st.v_seq.detach()] + [g for g in grads if g is not None]


@pytest.mark.parametrize("temporal", [True, False])
@pytest.mark.parametrize("learn_beta", [False, True])
@pytest.mark.parametrize("surrogate", ["atan", "triangle", "sigmoid"])
def test_lif_scan_with_kernels_equals_torch_ops_end_to_end(torch_ops, temporal, learn_beta, surrogate):
    x, v0 = _inputs(4, 3 * 5 * 7, torch.float32, seed=3)
    x = x.view(4, 3, 5, 7)
    v0 = v0.view(3, 5, 7)
    w = torch.randn_like(x)
    beta = torch.tensor(0.7, requires_grad=True) if learn_beta else 0.7
    params = LIFParams(beta=beta, v_th=1.0, reset="subtract", surrogate=Surrogate(surrogate))
    got = _run(x, v0, params, temporal, w)
    with torch_ops:
        ref = _run(x, v0, params, temporal, w)
    assert len(got) == len(ref) == 3 + 1 + temporal + learn_beta  # dL/dv0 only through time
    assert all(_equal(a, b) for a, b in zip(got, ref))


def test_kernels_run_where_they_apply_and_step_aside_elsewhere(monkeypatch):
    calls = []
    for name in ("scan_forward", "spatial_backward", "temporal_backward"):
        fn = getattr(K, name)
        monkeypatch.setattr(K, name, lambda *a, _fn=fn, _n=name, **kw: calls.append(_n) or _fn(*a, **kw))
    params = LIFParams(beta=0.5, v_th=1.0)
    x = torch.rand(3, 2, 8, requires_grad=True)
    s, _ = lif_scan(x, params)
    s.sum().backward()
    assert calls == ["scan_forward", "temporal_backward"]
    calls.clear()
    with no_temporal_grad():
        lif_scan(x, params)[0].sum().backward()
    assert calls == ["scan_forward", "spatial_backward"]
    calls.clear()
    with torch.no_grad():
        lif_scan(x, params)
    assert calls == ["scan_forward"]

    calls.clear()  # not taken: a non-contiguous input, half precision, sigmoid's backward
    xt = torch.rand(2, 8, 3).transpose(0, 2).requires_grad_()  # [3, 8, 2], not contiguous
    s, _ = lif_scan(xt, params)
    s.sum().backward()
    assert calls == [] and xt.grad.shape == xt.shape
    lif_scan(torch.rand(3, 2, 8, dtype=torch.bfloat16), params)
    assert calls == []
    lif_scan(x, LIFParams(beta=0.5, v_th=1.0, surrogate=Surrogate("sigmoid")))[0].sum().backward()
    assert calls == ["scan_forward"]


def test_kernels_step_aside_in_a_process_forked_after_they_ran(monkeypatch):
    from neurosim import _numba_threads

    x = torch.rand(3, 2, 8)
    assert K.kernels_ok(x)
    monkeypatch.setattr(_numba_threads, "_forked", True)
    assert not K.kernels_ok(x)
    s, state = lif_scan(x, LIFParams(beta=0.5, v_th=0.4))  # the torch ops, same result
    monkeypatch.setattr(_numba_threads, "_forked", False)
    s2, state2 = lif_scan(x, LIFParams(beta=0.5, v_th=0.4))
    assert torch.equal(s, s2) and torch.equal(state.v, state2.v)


def test_the_first_kernel_launch_keeps_the_torch_thread_count_the_user_set():
    """numba's OpenMP pool, started by the first launch, sets the OpenMP thread count torch reads to all cores;
    ``torch.set_num_threads(1)`` made before must survive it (a fresh process: the pool starts once)."""
    code = ("import torch, numba\n"
            "from neurosim.nn import LIF\n"
            "torch.set_num_threads(1)\n"
            "LIF(beta=0.9)(torch.rand(2, 4, 3, 8, 8))\n"
            "print(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)\n")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    torch_threads, pool = map(int, out.split())
    assert torch_threads == 1, f"numba's pool of {pool} threads reset torch's thread count to {torch_threads}"


def test_double_backward_goes_through_the_torch_ops(torch_ops):
    """``create_graph=True`` needs a differentiable backward: the kernels step aside for it (SLTT's spatial
    backward is twice differentiable in torch ops; the fused temporal one is not, with or without kernels)."""
    x = torch.randn(3, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(4)) + 0.5
    params = LIFParams(beta=0.7, v_th=1.0, surrogate=Surrogate("atan"))

    def grad_of_grad(temporal):
        xx = x.clone().requires_grad_()
        with (torch.enable_grad() if temporal else no_temporal_grad()):
            s, _ = lif_scan(xx, params)
        w = torch.randn(s.shape, dtype=s.dtype, generator=torch.Generator().manual_seed(5), requires_grad=True)
        (gx,) = torch.autograd.grad((s * w).sum(), xx, create_graph=True)
        return torch.autograd.grad((gx ** 2).sum(), w)[0]

    got = grad_of_grad(temporal=False)
    with torch_ops:
        ref = grad_of_grad(temporal=False)
    assert got.abs().sum() > 0 and torch.equal(got, ref)
    with pytest.raises(RuntimeError, match="cannot itself be differentiated.*backend='reference'"):
        grad_of_grad(temporal=True)


@pytest.mark.parametrize("temporal", [True, False])
def test_lif_outputs_can_be_modified_in_place_as_the_reference_s(temporal):
    # the kernels' outputs were views of flat buffers, which autograd forbids modifying in place for a
    # multi-output Function: ReLU(inplace=True) or in-place dropout after a LIF failed on the default CPU path
    from neurosim.nn import LIF, Linear, Sequential

    grads = {}
    for backend in ("auto", "reference"):
        torch.manual_seed(0)
        net = Sequential(Linear(8, 16), LIF(beta=0.9, backend=backend))
        x = torch.rand(4, 2, 8, generator=torch.Generator().manual_seed(1))
        with (torch.enable_grad() if temporal else no_temporal_grad()):
            out, _ = net(x)
        out[0] = 0  # index assignment
        torch.nn.functional.dropout(out, 0.5, training=True, inplace=True)
        torch.nn.ReLU(inplace=True)(out)
        out.sum().backward()
        grads[backend] = net[0].weight.grad
    assert grads["reference"].abs().sum() > 0 and torch.allclose(grads["auto"], grads["reference"])
    net = Sequential(Linear(8, 16), LIF(beta=0.9), torch.nn.ReLU(inplace=True))  # e.g. a ported model
    with (torch.enable_grad() if temporal else no_temporal_grad()):
        net(torch.rand(4, 2, 8))[0].sum().backward()
    s, v, h = K.scan_forward(torch.rand(3, 4, 5), torch.zeros(4, 5), 0.9, 1.0, "subtract")
    assert s._base is None and h._base is None and v._base is None and s.shape == h.shape == (3, 4, 5)

"""``no_temporal_grad``: a chunk of LIF steps with the temporal path cut has the gradients of its steps run one at a
time with the state detached between them (SLTT's ``sg``), for every backend, reset and learnable parameter."""

from __future__ import annotations

import pytest
import torch

from neurosim.functional import (
    LIFParams, LIFState, Surrogate, is_temporal_grad_enabled, lif_scan, no_temporal_grad,
)
from neurosim.nn import LI


def _inputs(T=6, shape=(3, 5), seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(T, *shape, generator=g, dtype=torch.float64) * 1.6).requires_grad_()
    v0 = torch.rand(*shape, generator=g, dtype=torch.float64)
    w_s = torch.randn(T, *shape, generator=g, dtype=torch.float64)  # weights of a linear loss on the spikes
    w_h = torch.randn(T, *shape, generator=g, dtype=torch.float64)  # ... and on the recorded membrane
    return x, v0, w_s, w_h


def _loss(s, state, w_s, w_h, use_membrane):
    total = (s * w_s).sum()
    return total + (state.v_seq * w_h).sum() if use_membrane else total


def _step_by_step(x, v0, params, w_s, w_h, use_membrane, backend):
    """Reference: one step per call, the state detached in between."""
    state, total = LIFState(v0), 0.0
    for t in range(x.shape[0]):
        s, state = lif_scan(x[t:t + 1], params, LIFState(state.v.detach()), record_membrane=True, backend=backend)
        total = total + _loss(s, state, w_s[t:t + 1], w_h[t:t + 1], use_membrane)
    return total


@pytest.mark.parametrize("backend", ["fused", "reference"])
@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("detach_reset", [False, True])
@pytest.mark.parametrize("surrogate", ["atan", "triangle"])
@pytest.mark.parametrize("use_membrane", [False, True], ids=["spikes", "spikes_and_membrane"])
def test_chunk_under_no_temporal_grad_equals_detached_steps(backend, reset, detach_reset, surrogate, use_membrane):
    x, v0, w_s, w_h = _inputs()
    beta = torch.tensor(0.8, dtype=torch.float64, requires_grad=True)  # a learnable decay
    params = LIFParams(beta=beta, v_th=1.0, reset=reset, detach_reset=detach_reset, surrogate=Surrogate(surrogate))
    with no_temporal_grad():
        s, state = lif_scan(x, params, LIFState(v0), record_membrane=True, backend=backend)
    assert s.sum() > 0 and (s == 0).any(), "the comparison must exercise spikes and silences"
    assert not state.v.requires_grad, "the carried state holds no temporal path"
    gx, gb = torch.autograd.grad(_loss(s, state, w_s, w_h, use_membrane), (x, beta))
    ref_x, ref_b = torch.autograd.grad(_step_by_step(x, v0, params, w_s, w_h, use_membrane, backend), (x, beta))
    torch.testing.assert_close(gx, ref_x, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gb, ref_b, rtol=1e-12, atol=1e-12)
    # the forward is unchanged by the mode
    s_full, state_full = lif_scan(x, params, LIFState(v0), backend=backend)
    assert torch.equal(s, s_full) and torch.equal(state.v, state_full.v)


def test_gradient_is_spatial_only_by_hand():
    # dL/dx_t = σ'(h_t − θ)·dL/ds_t exactly, with no contribution from later steps
    x, v0, w_s, _ = _inputs(T=4)
    params = LIFParams(beta=0.9, v_th=1.0, surrogate=Surrogate("triangle", 1.0))
    with no_temporal_grad():
        s, state = lif_scan(x, params, LIFState(v0), record_membrane=True)
    (gx,) = torch.autograd.grad((s * w_s).sum(), x)
    h = state.v_seq.detach()
    torch.testing.assert_close(gx, (1 - (h - 1).abs()).clamp_min(0) * w_s)
    # with the temporal path, later steps contribute: the gradients differ
    s_bptt, _ = lif_scan(x, params, LIFState(v0))
    (gx_bptt,) = torch.autograd.grad((s_bptt * w_s).sum(), x)
    assert not torch.allclose(gx, gx_bptt)


@pytest.mark.parametrize("timing", ["immediate", "delayed"])
def test_learnable_threshold_and_delayed_timing_use_the_detached_reference_loop(timing):
    x, v0, w_s, _ = _inputs()
    v_th = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    params = LIFParams(beta=0.7, v_th=v_th, reset_timing=timing)
    with no_temporal_grad():
        s, _ = lif_scan(x, params, LIFState(v0))
    g = torch.autograd.grad((s * w_s).sum(), (x, v_th))
    state, total = v0, 0.0
    for t in range(x.shape[0]):
        s_t, st = lif_scan(x[t:t + 1], params, LIFState(state.detach()))
        total, state = total + (s_t * w_s[t:t + 1]).sum(), st.v
    ref = torch.autograd.grad(total, (x, v_th))
    for a, b in zip(g, ref):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_leaky_integrator_readout_cuts_its_temporal_path():
    x = torch.rand(5, 2, 3, dtype=torch.float64, requires_grad=True)
    li = LI(0.5)
    with no_temporal_grad():
        out, v = li(x)
    assert not v.requires_grad, "the carried state holds no temporal path"
    (g,) = torch.autograd.grad(out.sum(), x)
    assert torch.equal(g, torch.ones_like(x)), "each output sees only its own step's input"
    (g_full,) = torch.autograd.grad(li(x)[0].sum(), x)
    assert g_full[0, 0, 0] == pytest.approx(1 + 0.5 + 0.25 + 0.125 + 0.0625)


def test_mode_nests_and_is_restored_after_an_error():
    assert is_temporal_grad_enabled()
    with pytest.raises(RuntimeError, match="boom"):
        with no_temporal_grad():
            assert not is_temporal_grad_enabled()
            with no_temporal_grad():
                assert not is_temporal_grad_enabled()
            assert not is_temporal_grad_enabled()
            raise RuntimeError("boom")
    assert is_temporal_grad_enabled()


@pytest.mark.parametrize("surrogate", ["atan", "sigmoid", "fast_sigmoid", "triangle", "rectangle"])
@pytest.mark.parametrize("T", [1, 5])
def test_second_derivative_through_the_membrane_equals_the_reference(surrogate, T):
    # the fused spatial backward built dL/dh in place (surrogate.grad_): differentiating it again w.r.t. x (through
    # h) failed with "modified by an inplace operation" for atan, sigmoid and fast_sigmoid
    x0, v0, _, _ = _inputs(T=T)
    beta = torch.tensor(0.8, dtype=torch.float64)
    results = {}
    for backend in ("fused", "reference"):
        x, b = x0.detach().clone().requires_grad_(), beta.clone().requires_grad_()
        with no_temporal_grad():
            s, _ = lif_scan(x, LIFParams(beta=b, surrogate=Surrogate(surrogate)), LIFState(v0), backend=backend)
        gx, gb = torch.autograd.grad((s ** 2).sum(), (x, b), create_graph=True)
        results[backend] = torch.autograd.grad((gx ** 2).sum() + gx.sum() + gb, x)[0]
    assert results["reference"].abs().sum() > 0
    assert torch.allclose(results["fused"], results["reference"], rtol=1e-12, atol=1e-12)


def test_an_input_gradient_penalty_reaches_the_weights_before_the_lif():
    from neurosim.nn import LIF, Linear, Sequential

    grads = {}
    for backend in ("auto", "reference"):
        torch.manual_seed(1)
        net = Sequential(Linear(8, 6), LIF(beta=0.9, backend=backend))
        x = torch.rand(4, 2, 8, generator=torch.Generator().manual_seed(0), requires_grad=True)
        with no_temporal_grad():
            out, _ = net(x)
        (gx,) = torch.autograd.grad(out.sum(), x, create_graph=True)
        grads[backend] = torch.autograd.grad((gx ** 2).sum(), net[0].weight)[0]
    assert grads["reference"].abs().sum() > 0 and torch.allclose(grads["auto"], grads["reference"], atol=1e-6)

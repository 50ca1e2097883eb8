"""Time-distributed layers, stateful Sequential, LIF module, and model builders."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neurosim.config import ModelConfig, NeuronConfig
from neurosim.nn import (
    LI, LIF, BatchNorm2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, Sequential, SumPool2d, build_model,
    detach_state,
)


def test_conv_over_time_equals_per_step_loop():
    torch.manual_seed(0)
    conv = Conv2d(2, 4, 3, padding=1)
    x = torch.rand(5, 3, 2, 8, 8)
    y = conv(x)
    ref = torch.stack([torch.nn.functional.conv2d(x[t], conv.weight, conv.bias, padding=1) for t in range(5)])
    torch.testing.assert_close(y, ref)


def test_sumpool_is_window_sum():
    x = torch.arange(16.0).view(1, 1, 1, 4, 4)
    y = SumPool2d(2)(x)
    assert y.flatten().tolist() == [0 + 1 + 4 + 5, 2 + 3 + 6 + 7, 8 + 9 + 12 + 13, 10 + 11 + 14 + 15]


def test_wrong_rank_error_shows_shape():
    with pytest.raises(ValueError, match=r"Conv2d expects .*\(2, 8, 8\)"):
        Conv2d(2, 4, 3)(torch.zeros(2, 8, 8))


def test_dropout_one_mask_for_all_steps_and_chunks():
    torch.manual_seed(0)
    drop = Dropout(0.5)
    x = torch.ones(6, 2, 10)
    y, mask = drop(x)
    assert torch.equal(y[0], y[5])  # same mask at every step
    assert 0 < (y[0] == 0).float().mean() < 1
    y2, _ = drop(x[:3], mask)
    assert torch.equal(y2, y[:3])  # carried mask continues the sequence
    drop.eval()
    assert torch.equal(drop(x)[0], x)


def _net(dropout: float) -> Sequential:
    return Sequential(
        Conv2d(2, 4, 3), BatchNorm2d(4), LIF(beta=0.8), MaxPool2d(2), Flatten(),
        Dropout(dropout), Linear(4 * 3 * 3, 5), LIF(beta=0.9, reset="zero"), Linear(5, 3), LI(0.9),
    )


@settings(max_examples=15, deadline=None)
@given(split=st.integers(1, 7), seed=st.integers(0, 1000))
def test_sequential_chunked_equals_full(split, seed):
    torch.manual_seed(seed)
    net = _net(0.3).eval()  # eval: BatchNorm uses running stats, so chunks see the same normalisation
    x = (torch.rand(8, 2, 2, 8, 8) < 0.4).float()
    full, st_full = net(x)
    a, st_a = net(x[:split])
    b, st_b = net(x[split:], st_a)
    torch.testing.assert_close(torch.cat([a, b]), full)
    torch.testing.assert_close(st_b["7"].v, st_full["7"].v)


def test_sequential_training_dropout_mask_carried_between_chunks():
    torch.manual_seed(3)
    net = Sequential(Flatten(), Dropout(0.5), Linear(6, 4), LIF(beta=0.9))
    x = torch.rand(6, 2, 6)
    _, state = net(x[:2])
    out_a, _ = net(x[2:], state)
    out_b, _ = net(x[2:], state)
    assert torch.equal(out_a, out_b)  # same carried mask, same result
    assert torch.equal(state["1"], net(x[2:], state)[1]["1"])


def test_detach_state_detaches_nested():
    net = _net(0.0)
    _, state = net(torch.rand(3, 2, 2, 8, 8))
    assert state["2"].v.requires_grad
    d = detach_state(state)
    assert not d["2"].v.requires_grad and not d["9"].requires_grad
    assert torch.equal(d["2"].v, state["2"].v)


def test_lif_module_tau_and_learnable_params():
    lif = LIF(tau_mem_ms=10.0, dt_ms=1.0, learn_beta=True, learn_threshold=True)
    assert lif.tau_mem_ms == pytest.approx(10.0, rel=1e-5)
    s, _ = lif(torch.rand(10, 4, 3) * 2)
    s.sum().backward()
    assert lif.beta_logit.grad is not None and lif.v_th_param.grad is not None
    with pytest.raises(ValueError, match="beta must be in"):
        LIF(beta=1.5)


def test_lif_record_membrane_returns_same_tuple_shape():
    s, state = LIF(beta=0.5, record_membrane=True)(torch.full((3, 1, 1), 0.6))
    assert state.v_seq.shape == (3, 1, 1)
    s2, state2 = LIF(beta=0.5)(torch.full((3, 1, 1), 0.6))
    assert state2.v_seq is None and torch.equal(s, s2)


def test_builders_shapes():
    conv = build_model(ModelConfig(), NeuronConfig())
    out, _ = conv(torch.zeros(4, 2, 2, 34, 34))
    assert out.shape == (4, 2, 10)
    linear = [m for m in conv.modules() if isinstance(m, torch.nn.Linear)]
    assert linear[-1].in_features == 800  # 34 → conv5 30 → pool 15 → conv5 11 → pool 5; 32·5·5
    gesture = build_model(ModelConfig(input_shape=(2, 128, 128), input_pool=4, channels=(16, 32, 32),
                                      kernel_size=3, padding=1, num_classes=11), NeuronConfig())
    assert gesture(torch.zeros(2, 1, 2, 128, 128))[0].shape == (2, 1, 11)
    shd = build_model(ModelConfig(kind="mlp", input_shape=(700,), hidden=(256, 256), num_classes=20,
                                  readout="membrane"), NeuronConfig())
    assert shd(torch.zeros(3, 2, 700))[0].shape == (3, 2, 20)


def test_builder_rejects_too_small_input():
    with pytest.raises(ValueError, match="too small"):
        build_model(ModelConfig(input_shape=(2, 8, 8), channels=(4, 4, 4)), NeuronConfig())


# ------------------------------------------------------------------------ running in time chunks (BPTT speed)


def test_run_chunked_equals_one_call_outputs_state_and_gradients():
    from neurosim.config import ModelConfig, NeuronConfig
    from neurosim.nn import build_model, run_chunked

    torch.manual_seed(0)
    cfg = ModelConfig(input_shape=(2, 10, 10), channels=(3,), kernel_size=3, hidden=(6,), dropout=0.3, num_classes=4)
    model = build_model(cfg, NeuronConfig(beta=0.8, v_th=0.3)).double()
    x = (torch.rand(7, 3, 2, 10, 10, dtype=torch.float64) < 0.4).double()
    grads = []
    for steps in (7, 3, 1):
        torch.manual_seed(1)  # the same dropout mask for each run (drawn once, carried in the state)
        model.zero_grad()
        out, state = run_chunked(model, x, steps=steps)
        out.pow(2).sum().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
        if steps == 7:
            ref_out, ref_state = out.detach(), state
        else:
            torch.testing.assert_close(out.detach(), ref_out)
            torch.testing.assert_close(state["6"].v, ref_state["6"].v)
            torch.testing.assert_close(state["4"], ref_state["4"])  # the dropout mask
    assert ref_out.abs().sum() > 0
    for g in grads[1:]:
        for a, b in zip(g, grads[0]):
            torch.testing.assert_close(a, b)


def test_time_chunk_keeps_batchnorm_statistics_over_all_steps_and_bad_steps_are_refused():
    from neurosim.nn import BatchNorm1d, run_chunked, time_chunk

    plain = Sequential(Linear(4, 3), LIF(beta=0.5))
    with_bn = Sequential(Linear(4, 3), BatchNorm1d(3), LIF(beta=0.5))
    x = torch.rand(50, 8, 4)
    assert time_chunk(plain, x) == 16  # 128 samples per call at batch 8
    assert time_chunk(with_bn, x) == 50  # training-mode BatchNorm: statistics over all T·B samples
    with_bn.eval()
    assert time_chunk(with_bn, x) == 16
    with pytest.raises(ValueError, match="steps"):
        run_chunked(plain, x, steps=0)


# ------------------------------------------------------- MaxPool2d: index-free pooling when no grad is taken

@settings(max_examples=60, deadline=None)
@given(
    k=st.sampled_from([1, 2, 3, (2, 3)]),
    h=st.integers(3, 13), w=st.integers(3, 13),
    spikes=st.booleans(), seed=st.integers(0, 2**16),
)
def test_maxpool_without_grad_equals_torch(k, h, w, spikes, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(2, 3, 4, h, w, generator=g)
    x = (x < 0.2).float() if spikes else x * 4 - 2
    pool = MaxPool2d(k)  # stride = kernel: the index-free path
    assert pool._fast_ok(x)
    with torch.no_grad():
        y = pool(x)
    ref = torch.nn.functional.max_pool2d(x.flatten(0, 1), k).view(2, 3, *y.shape[2:])
    assert torch.equal(y, ref)


def test_maxpool_index_free_path_propagates_nan_and_inf_like_torch():
    x = torch.zeros(1, 1, 1, 4, 4)
    x[..., 0, 1] = float("nan")
    x[..., 2, 2] = float("-inf")
    x[..., 3, 0] = float("inf")
    with torch.no_grad():
        y = MaxPool2d(2)(x)
    ref = torch.nn.functional.max_pool2d(x[0], 2)[None]
    assert torch.equal(y.isnan(), ref.isnan()) and torch.equal(y.nan_to_num(), ref.nan_to_num())


def test_maxpool_keeps_torch_routing_when_a_gradient_is_needed():
    x = (torch.rand(3, 2, 4, 6, 6) < 0.3).float().requires_grad_()  # ties everywhere: routing matters
    pool = MaxPool2d(2)
    assert not pool._fast_ok(x)
    g_out = torch.randn(3, 2, 4, 3, 3)
    (g,) = torch.autograd.grad(pool(x), x, g_out)
    x2 = x.detach().flatten(0, 1).requires_grad_()
    (ref,) = torch.autograd.grad(torch.nn.functional.max_pool2d(x2, 2), x2, g_out.flatten(0, 1))
    assert torch.equal(g, ref.view_as(g))


@pytest.mark.parametrize("kwargs", [dict(kernel_size=3, stride=2), dict(kernel_size=2, padding=1),
                                    dict(kernel_size=2, ceil_mode=True), dict(kernel_size=2, dilation=2)])
def test_maxpool_overlapping_or_padded_windows_use_torch(kwargs):
    x = torch.rand(2, 1, 3, 7, 7)
    pool = MaxPool2d(**kwargs)
    assert not pool._fast_ok(x)
    with torch.no_grad():
        y = pool(x)
    assert torch.equal(y, torch.nn.functional.max_pool2d(x.flatten(0, 1), **kwargs).view(2, 1, *y.shape[2:]))


@pytest.mark.parametrize("steps", [0, -2, 2.5, True])
def test_run_chunked_rejects_a_bad_chunk(steps):
    from neurosim.nn import run_chunked

    net = Sequential(Flatten(), Linear(4, 3), LIF(beta=0.9))
    with pytest.raises(ValueError, match=f"steps must be a whole number of time steps >= 1, got {steps!r}"):
        run_chunked(net, torch.rand(6, 2, 4), steps=steps)

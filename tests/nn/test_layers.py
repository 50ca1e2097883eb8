"""Time-distributed layers, stateful Sequential, LIF module, and model builders."""

import sys
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conversions import IntToFloatCopies
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


@pytest.mark.parametrize("steps", [7, 3])
def test_run_chunked_converts_integer_frames_a_chunk_at_a_time_to_the_float_runs_values(steps):
    """A compact batch (uint8 event counts, FrameLoader.iter_from(compact=True)) runs as its float32 copy does, but
    only one chunk's float copy is made at a time, not the whole [T, B, ...] batch's; Sequential itself refused
    it (and still does, called directly: its error says to pass x_seq.float())."""
    from neurosim.nn import as_float, build_model, run_chunked

    torch.manual_seed(0)
    cfg = ModelConfig(input_shape=(2, 10, 10), channels=(3,), kernel_size=3, hidden=(6,), num_classes=4)
    model = build_model(cfg, NeuronConfig(beta=0.8, v_th=0.3))
    counts = torch.randint(0, 3, (7, 3, 2, 10, 10), dtype=torch.uint8)
    out_f, state_f = run_chunked(model, counts.float(), steps=steps)
    out_f.pow(2).sum().backward()
    grads_f = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    with IntToFloatCopies() as made:
        out_c, state_c = run_chunked(model, counts, steps=steps)
    assert made.shapes == [(min(steps, 7 - t), 3, 2, 10, 10) for t in range(0, 7, steps)]  # chunk by chunk
    out_c.pow(2).sum().backward()
    assert out_f.abs().sum() > 0 and torch.equal(out_c, out_f)
    assert state_f and all(torch.equal(state_c[k].v, state_f[k].v) for k in state_f)
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads_f))
    with pytest.raises(TypeError, match=r"x_seq is torch.uint8 .* pass x_seq.float\(\)"):
        model(counts)
    floats = torch.rand(2, 3)
    assert as_float(floats) is floats and as_float(torch.ones(2, dtype=torch.bool)).dtype == torch.float32
    with pytest.raises(TypeError, match="x_seq must be real frames, got torch.complex64"):
        as_float(torch.ones(2, dtype=torch.complex64))


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


# ------------------------------------------------------- MaxPool2d: numba window pooling on CPU

def _torch_pool(x, k):
    T, B = x.shape[:2]
    y = torch.nn.functional.max_pool2d(x.flatten(0, 1), k)
    return y.view(T, B, *y.shape[1:])


@settings(max_examples=80, deadline=None)
@given(
    k=st.sampled_from([1, 2, 3, (2, 3)]),
    h=st.integers(3, 13), w=st.integers(3, 13),
    kind=st.sampled_from(["spikes", "real", "specials"]), dtype=st.sampled_from([torch.float32, torch.float64]),
    seed=st.integers(0, 2**16),
)
def test_maxpool_equals_torch_in_values_and_gradient_routing(k, h, w, kind, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(2, 3, 4, h, w, generator=g, dtype=dtype)
    if kind == "spikes":  # ties everywhere: the routing is what is tested
        x = (x < 0.2).to(dtype)
    else:
        x = x * 4 - 2
    if kind == "specials":  # NaN (the last NaN in a window wins), ±inf, -inf-only windows
        u = torch.rand(x.shape, generator=g)
        x[u < 0.08] = float("nan")
        x[(u >= 0.08) & (u < 0.16)] = float("inf")
        x[(u >= 0.16) & (u < 0.5)] = float("-inf")
    pool = MaxPool2d(k)
    assert pool._fast_ok(x)
    with torch.no_grad():
        y0 = pool(x)
    x1 = x.clone().requires_grad_()
    y1 = pool(x1)
    x2 = x.clone().requires_grad_()
    ref = _torch_pool(x2, k)
    for y in (y0, y1):
        assert y.dtype == dtype and torch.equal(y.isnan(), ref.isnan())
        assert torch.equal(y.nan_to_num(), ref.detach().nan_to_num())
    g_out = torch.randn(ref.shape, generator=g, dtype=dtype)
    (gx,) = torch.autograd.grad(y1, x1, g_out)
    (gref,) = torch.autograd.grad(ref, x2, g_out)
    assert torch.equal(gx, gref)


def test_maxpool_is_twice_differentiable_like_torch():
    x = torch.randn(2, 1, 3, 6, 7, dtype=torch.float64, requires_grad=True)
    pool = MaxPool2d(2)
    assert pool._fast_ok(x)
    assert torch.autograd.gradcheck(pool, (x,))
    assert torch.autograd.gradgradcheck(pool, (x,))
    g = torch.randn(2, 1, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    (gx,) = torch.autograd.grad(pool(x), x, g, create_graph=True)
    x2 = x.detach().requires_grad_()
    (gx2,) = torch.autograd.grad(_torch_pool(x2, 2), x2, g, create_graph=True)
    w = torch.randn_like(gx)
    assert torch.equal(torch.autograd.grad((gx * w).sum(), g)[0], torch.autograd.grad((gx2 * w).sum(), g)[0])


def test_maxpool_saves_one_byte_per_output_for_backward():
    x = torch.rand(4, 8, 16, 20, 20, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        y = MaxPool2d(2)(x)
    assert [(t.dtype, tuple(t.shape)) for t in saved] == [(torch.uint8, tuple(y.shape))]


def _pool_in_fork(queue):
    x = torch.arange(64.0).view(1, 1, 1, 8, 8).requires_grad_()
    pool = MaxPool2d(2)
    y = pool(x)
    y.sum().backward()
    queue.put((pool._fast_ok(x.detach()), y.tolist(), x.grad.tolist()))  # plain lists: no shared memory


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method: Linux")
def test_maxpool_in_a_process_forked_after_the_kernels_ran_uses_torch():
    import multiprocessing as mp

    MaxPool2d(2)(torch.rand(1, 1, 1, 4, 4, requires_grad=True)).sum().backward()  # the kernels' pool is up
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_pool_in_fork, args=(queue,))
    proc.start()
    fast_ok, y, gx = queue.get(timeout=60)  # a hang here is what the fallback prevents
    proc.join(60)
    x = torch.arange(64.0).view(1, 1, 8, 8).requires_grad_()
    ref = torch.nn.functional.max_pool2d(x, 2)
    ref.sum().backward()
    assert not fast_ok and y[0] == ref.tolist() and gx[0] == x.grad.tolist()


def test_maxpool_backward_of_a_graph_built_before_a_fork_uses_torch_ops(monkeypatch):
    from neurosim import _numba_threads

    x = ((torch.rand(2, 3, 4, 7, 9) < 0.3).double()).requires_grad_()
    for k in (2, (2, 3)):
        pool = MaxPool2d(k)
        y, y_plain = pool(x), pool(x)  # built with the kernels
        g = torch.randn(y.shape, dtype=y.dtype, requires_grad=True)
        monkeypatch.setattr(_numba_threads, "_forked", True)  # as in a forked child: the backward must not use them
        (gx,) = torch.autograd.grad(y, x, g, create_graph=True)
        (ggy,) = torch.autograd.grad((gx * x.detach()).sum(), g)
        (gx_plain,) = torch.autograd.grad(y_plain, x, g.detach())  # the plain backward (no create_graph)
        monkeypatch.setattr(_numba_threads, "_forked", False)
        x2 = x.detach().requires_grad_()
        y2 = _torch_pool(x2, k)
        (gx2,) = torch.autograd.grad(y2, x2, g, create_graph=True)
        (ggy2,) = torch.autograd.grad((gx2 * x.detach()).sum(), g)
        assert torch.equal(gx, gx2) and torch.equal(ggy, ggy2) and torch.equal(gx_plain, gx2)


@pytest.mark.parametrize("case", ["non-contiguous", "float16"])
def test_maxpool_falls_back_to_torch_where_the_kernel_does_not_apply(case):
    x = torch.rand(2, 3, 4, 8, 8)
    pool = MaxPool2d(2)
    x = x.transpose(-1, -2) if case == "non-contiguous" else x.half()
    assert not pool._fast_ok(x)
    assert torch.equal(pool(x), _torch_pool(x, 2))


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


def test_layers_take_zero_time_steps_from_rest():
    from neurosim.nn import LI, LIF, Dropout

    x = torch.rand(0, 2, 4)
    for layer in (LIF(), LI(), Dropout(0.5)):
        out, state = layer(x)
        assert out.shape == (0, 2, 4), type(layer).__name__
    assert torch.equal(LI()(x)[1], torch.zeros(2, 4))


def test_pool_arguments_torch_accepts_work_or_are_refused_by_name():
    from neurosim.nn import MaxPool2d, SumPool2d

    x = torch.rand(2, 1, 1, 4, 4)
    assert torch.allclose(SumPool2d([2, 2])(x), SumPool2d(2)(x))  # a list kernel, as torch's pools take
    with pytest.raises(ValueError, match="return_indices=True is not supported"):
        MaxPool2d(2, return_indices=True)
    from neurosim.nn.layers import AvgPool2d

    for make, text in ((lambda: MaxPool2d(0), "MaxPool2d: kernel_size must be a whole number >= 1"),
                       (lambda: SumPool2d((2, 0)), r"SumPool2d: kernel_size .* got \(2, 0\)"),
                       (lambda: AvgPool2d(2, stride=0), "AvgPool2d: stride must be")):
        with pytest.raises(ValueError, match=text):  # a zero window divided by zero when called
            make()


def test_inputs_of_another_dtype_than_the_weights_are_named():
    net = Sequential(Flatten(), Linear(4, 3), LIF(beta=0.9))
    for x, fix in ((torch.ones(2, 1, 4, dtype=torch.long), r"pass x_seq.float\(\)"),
                   (torch.ones(2, 1, 4, dtype=torch.bool), r"pass x_seq.float\(\)"),
                   (torch.ones(2, 1, 4, dtype=torch.float64), r"model.to\(torch.float64\)")):
        with pytest.raises(TypeError, match=rf"x_seq is {x.dtype} but the model's weights are torch.float32: .*{fix}"):
            net(x)
    assert net.double()(torch.ones(2, 1, 4, dtype=torch.float64))[0].dtype == torch.float64
    with torch.autocast("cpu", dtype=torch.bfloat16):  # mixed precision: autocast casts, no error
        assert net.float()(torch.ones(2, 1, 4, dtype=torch.bfloat16))[0].shape == (2, 1, 3)
    with pytest.raises(TypeError, match="tau_mem_ms must be a number of milliseconds, got '2'"):
        LIF(tau_mem_ms="2")


def test_lif_reads_its_buffers_back_to_python_only_when_they_change(monkeypatch):
    # on a GPU each float(buffer) waits for the queued kernels; SLTT asks for the parameters once per step
    import copy

    import neurosim.nn.lif as lif_module

    monkeypatch.setattr(lif_module, "_read_is_cheap", lambda t: False)  # as on a GPU (none here)
    lif = LIF(beta=0.9)
    reads = []
    real = torch.Tensor.__float__
    monkeypatch.setattr(torch.Tensor, "__float__", lambda t: reads.append(1) or real(t))
    for _ in range(50):
        p = lif.params()
    assert len(reads) == 2 and p.beta == pytest.approx(0.9) and p.v_th == 1.0  # β and v_th, read once each
    lif.beta_value.fill_(0.5)  # changed in place
    assert lif.params().beta == 0.5
    lif.load_state_dict({"beta_value": torch.tensor(0.25), "v_th_value": torch.tensor(2.0)})
    assert (lif.params().beta, lif.params().v_th) == (0.25, 2.0)
    twin = copy.deepcopy(lif)
    twin.beta_value.fill_(0.125)
    assert (twin.params().beta, lif.params().beta) == (0.125, 0.25)
    assert lif.double().params().beta == 0.25  # replaced by .to()


def test_lif_runs_under_inference_mode():
    # inference tensors have no version counter: a LIF made or moved under inference_mode still reads its buffers
    with torch.inference_mode():
        net = Sequential(Flatten(), Linear(4, 3), LIF(beta=0.9)).double()
        out, _ = net(torch.rand(5, 2, 4, dtype=torch.float64))
    assert out.shape == (5, 2, 3)


def test_li_beta_is_saved_and_loaded_with_the_weights():
    # β was a plain attribute: loading a state dict kept the new model's β silently (LIF's is a buffer)
    cfg = dict(kind="mlp", input_shape=(20,), hidden=(8,), readout="membrane")
    a = build_model(ModelConfig(**cfg, readout_beta=0.5), NeuronConfig())
    b = build_model(ModelConfig(**cfg, readout_beta=0.9), NeuronConfig())
    assert "4.beta_value" in a.state_dict() and float(b[4].beta) == pytest.approx(0.9)
    b.load_state_dict(a.state_dict())
    x = torch.rand(5, 3, 20) * 3
    assert float(b[4].beta) == 0.5 and torch.equal(a(x)[0], b(x)[0]) and repr(b[4]) == "LI(beta=0.5)"


def test_a_state_dict_saved_before_li_beta_was_loads_keeping_the_built_beta(tmp_path):
    import copy

    cfg = dict(kind="mlp", input_shape=(20,), hidden=(8,), readout="membrane")
    old = build_model(ModelConfig(**cfg, readout_beta=0.5), NeuronConfig()).state_dict()
    del old["4.beta_value"]
    old._metadata["4"]["version"] = 1  # what neurosim wrote then (nn.Module's version 1)
    torch.save(old, tmp_path / "old.pt")
    model = build_model(ModelConfig(**cfg, readout_beta=0.5), NeuronConfig())
    model.load_state_dict(torch.load(tmp_path / "old.pt", weights_only=True))  # strict, as checkpoints load
    assert float(model[4].beta) == 0.5
    new = copy.copy(model.state_dict())
    del new["4.beta_value"]  # a current state dict without it is still an error
    with pytest.raises(RuntimeError, match='Missing key.*"4.beta_value"'):
        model.load_state_dict(new)


def test_li_refuses_a_state_of_another_shape_dtype_or_device():
    # LI broadcast any state it was given: a [1, 5] state for a [4, 5] step gave a [4, 5] state back silently
    li, x = LI(0.9), torch.ones(3, 4, 5)
    for bad, what in ((torch.zeros(1, 5), r"has shape \(1, 5\) but x_seq steps have shape \(4, 5\)"),
                      (torch.zeros(5), r"has shape \(5,\)"),
                      (torch.zeros(4, 5, dtype=torch.float64), "is torch.float64 but x_seq is torch.float32"),
                      (torch.zeros(4, 5, device="meta"), "is on meta but x_seq is on cpu")):
        with pytest.raises(ValueError, match=f"LI's state {what}"):
            li(x, bad)
    out, state = li(x[:2])
    assert torch.equal(torch.cat([out, li(x[2:], state)[0]]), li(x)[0])  # its own state still continues
    assert li(torch.ones(3, 4, dtype=torch.int64))[0].dtype == torch.float32  # integer input: float32, as LIF
    with pytest.raises(ValueError) as info:  # LI has one implementation: no "backend" in its reason
        li(x, torch.zeros(4, 5, dtype=torch.float64))
    assert "backend" not in str(info.value) and "wider of the two dtypes" in str(info.value)
    with pytest.raises(ValueError, match="LI's beta_value is on meta but x_seq is on cpu"):
        LI(0.9).to("meta")(x)


def test_sequential_state_must_be_the_dict_it_returned():
    net = Sequential(Linear(3, 3), LIF())
    with pytest.raises(TypeError, match="state must be the dict this model returned .* or None .*got Tensor"):
        net(torch.rand(2, 2, 3), torch.zeros(2, 3))
    _, state = net(torch.rand(2, 2, 3))
    assert net(torch.rand(2, 2, 3), state)[1]["1"].v.shape == (2, 3)


def test_lif_options_that_cannot_run_are_refused_when_built():
    with pytest.raises(ValueError, match=r"backend must be one of \('auto', 'reference', 'fused'\), got 'numba'"):
        LIF(backend="numba")
    for kwargs in (dict(reset_timing="delayed"), dict(learn_threshold=True)):
        with pytest.raises(ValueError, match="backend='fused' needs reset_timing='immediate' and a fixed threshold"):
            LIF(backend="fused", **kwargs)


def test_half_input_keeps_beta_exact_in_a_float32_lif_and_half_rounds_it():
    # as documented (neurosim.nn.LIF): .half() rounds the β buffer like every buffer; a LIF left in float32 does not
    from neurosim.functional import LIFParams, lif_scan

    x = (torch.rand(50, 2, 16, generator=torch.Generator().manual_seed(0)) * 0.5).half()
    exact = lif_scan(x, LIFParams(beta=0.9), backend="reference")[1].v
    rounded = lif_scan(x, LIFParams(beta=float(torch.tensor(0.9).half())), backend="reference")[1].v
    assert not torch.equal(exact, rounded)
    assert torch.equal(LIF(beta=0.9)(x)[1].v, exact)
    lif = LIF(beta=0.9).half()
    assert lif.beta_value.dtype == torch.float16 and torch.equal(lif(x)[1].v, rounded)


@pytest.mark.parametrize("layer, hint", [
    (torch.nn.Conv2d(2, 4, 3), "neurosim.nn.Conv2d"),
    (torch.nn.MaxPool2d(2), "neurosim.nn.MaxPool2d"),
    (torch.nn.BatchNorm2d(2), "neurosim.nn.BatchNorm2d"),
    (torch.nn.GroupNorm(1, 4), "neurosim.nn.TimeDistributed"),  # B = 4 read as its 4 channels
    (torch.nn.Flatten(), "neurosim.nn.Flatten"),
    (torch.nn.Sequential(torch.nn.Conv2d(2, 2, 1)), "neurosim.nn.Conv2d"),  # inside a torch container too
])
def test_sequential_names_a_torch_layer_that_takes_one_step(layer, hint):
    # torch's own per-step layers got [T, B, ...]: torch's errors ("expected 4D input (got 5D input)"), or, where the
    # shapes happened to fit (GroupNorm), T read as the batch and B as channels, silently
    net = Sequential(layer, Flatten())
    with pytest.raises(TypeError, match=rf"Sequential: layer '0(\.0)?' \(torch\.nn\.\w+\) takes one time step "
                                        rf"\[B, \.\.\.\] per call, but Sequential passes every layer \[T, B, \.\.\.\] "
                                        rf"\(here \(3, 4, 2, 6, 6\)\): use {hint}"):
        net(torch.rand(3, 4, 2, 6, 6))


def test_sequential_sees_the_class_under_a_parametrization():
    # weight_norm / spectral_norm make a layer an instance of torch's Parametrized<Class>, whose module is torch's: a
    # parametrized neurosim Conv2d was refused as a torch layer, with the advice to wrap "torch.nn.ParametrizedConv2d"
    from torch.nn.utils.parametrizations import weight_norm

    torch.manual_seed(0)
    ours = weight_norm(Conv2d(2, 4, 3))
    x = torch.rand(3, 4, 2, 6, 6)
    out, _ = Sequential(ours, Flatten())(x)
    assert out.shape == (3, 4, 64) and torch.allclose(out, ours(x).flatten(2))
    with pytest.raises(TypeError, match=r"layer '0' \(torch\.nn\.Conv2d\) takes one time step .* "
                                        r"use neurosim\.nn\.Conv2d "):
        Sequential(weight_norm(torch.nn.Conv2d(2, 4, 3)), Flatten())(x)


def test_sequential_takes_torch_layers_that_work_on_any_leading_dims():
    torch.manual_seed(0)
    net = Sequential(Flatten(), torch.nn.Linear(8, 3), torch.nn.ReLU(), torch.nn.Identity(), LIF(beta=0.5),
                     torch.nn.Dropout(0.5).eval())
    x = torch.rand(4, 2, 2, 4)
    out, _ = net(x)
    assert torch.equal(out, LIF(beta=0.5)(torch.relu(net[1](x.flatten(2))))[0])


def test_sequential_names_an_snntorch_neuron_and_how_to_convert():
    snn = pytest.importorskip("snntorch")
    # snn.Leaky in neurosim's Sequential ran all T steps as one step with T·B samples under BPTT, silently
    net = Sequential(Flatten(), Linear(8, 3), snn.Leaky(beta=0.9, init_hidden=True))
    with pytest.raises(TypeError, match=r"layer '2' \(snntorch\.Leaky\) steps one time step per call and keeps its "
                                        r"state inside it.*neurosim\.interop\.from_snntorch"):
        net(torch.rand(4, 2, 2, 4))


def test_sequential_warns_that_torch_dropout_draws_a_mask_per_step():
    net = Sequential(Flatten(), Linear(8, 3), torch.nn.Dropout(0.5), LIF())
    with pytest.warns(RuntimeWarning, match=r"layer '2' \(torch\.nn\.Dropout\) draws a new mask at every time step; "
                                            r"neurosim\.nn\.Dropout\(0\.5\) keeps one mask for all steps"):
        net(torch.rand(4, 2, 2, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net.eval()(torch.rand(4, 2, 2, 4))  # the identity in eval mode: nothing to say


def test_inputs_on_another_device_than_the_weights_are_named():
    # (meta stands in for a GPU here) the first layer ran, and the error came from a LIF: "LIFParams.beta is a tensor
    # on meta but x_seq is on cpu"; on a GPU, torch's "Input type (torch.FloatTensor) and weight type
    # (torch.cuda.FloatTensor) should be the same"
    net = Sequential(Conv2d(2, 3, 3), LIF(beta=0.9)).to("meta")
    with pytest.raises(ValueError, match=r"x_seq is on cpu but the model's weights are on meta: pass "
                                         r"x_seq.to\('meta'\) \(or move the model: model.to\('cpu'\)\)"):
        net(torch.ones(2, 1, 2, 5, 5))
    assert net(torch.ones(2, 1, 2, 5, 5, device="meta"))[0].shape == (2, 1, 3, 3, 3)

"""RLIF: recurrent LIF layers (neurosim.nn.recurrent) against a hand-written loop of the equations."""

import pytest
import torch

from neurosim.config import ConfigError, ModelConfig, NeuronConfig, config_to_dict
from neurosim.functional import LIFState, no_temporal_grad
from neurosim.functional.surrogate import Surrogate, spike
from neurosim.nn import LI, LIF, RLIF, Linear, RLIFState, Sequential, build_model, run_chunked


def _reference(x, w, b, beta, v_th=1.0, reset="subtract", cut=False, diagonal=False):
    """h[t] = β·v[t−1] + x[t] + W·s[t−1] + b, written out step by step (``cut``: SLTT's sg on v and s)."""
    v = torch.zeros_like(x[0])
    s = torch.zeros_like(x[0])
    out = []
    sur = Surrogate("triangle")
    for xt in x:
        v_in, s_in = (v.detach(), s.detach()) if cut else (v, s)
        rec = s_in * w if diagonal else s_in @ w.T
        h = beta * v_in + xt + rec + (0 if b is None else b)
        s = spike(h - v_th, sur)
        v = h - v_th * s if reset == "subtract" else h * (1 - s)
        out.append(s)
    return torch.stack(out), v


def _layer(n=5, **kw):
    torch.manual_seed(0)
    layer = RLIF(n, beta=0.5, surrogate="triangle", **kw).double()  # 0.5: exact in the float32 buffer too
    with torch.no_grad():
        layer.recurrent.weight.mul_(3)  # strong enough feedback that it changes the spikes
    return layer


@pytest.mark.parametrize("connectivity", ["dense", "diagonal"])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_spikes_state_and_gradients_equal_the_equations(connectivity, reset):
    layer = _layer(connectivity=connectivity, bias=True, reset=reset)
    with torch.no_grad():
        layer.recurrent.bias.fill_(0.1)
    x = torch.randn(9, 3, 5, dtype=torch.float64, requires_grad=True)
    s, state = layer(x)
    ref, v = _reference(x, layer.recurrent.weight, layer.recurrent.bias, 0.5, reset=reset,
                        diagonal=connectivity == "diagonal")
    assert torch.equal(s, ref) and torch.allclose(state.v, v) and torch.equal(state.s, s[-1])
    assert 0 < s.mean() < 1
    weights = torch.arange(9, dtype=torch.float64)[:, None, None]
    got = torch.autograd.grad((s * weights).sum(), [x, layer.recurrent.weight])
    want = torch.autograd.grad((ref * weights).sum(), [x, layer.recurrent.weight])
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)
    assert got[1].abs().sum() > 0


def test_without_feedback_it_is_a_lif_layer():
    layer = _layer()
    with torch.no_grad():
        layer.recurrent.weight.zero_()
    x = torch.randn(6, 2, 5, dtype=torch.float64)
    lif = LIF(beta=0.5, surrogate="triangle").double()
    assert torch.equal(layer(x)[0], lif(x)[0])
    with torch.no_grad():
        layer.recurrent.weight.fill_(0.4)
    assert not torch.equal(layer(x)[0], lif(x)[0])


def test_chunks_with_the_carried_state_equal_one_call():
    torch.manual_seed(1)
    net = Sequential(Linear(4, 6), RLIF(6, beta=0.7, record_membrane=True), Linear(6, 3), LI(0.9)).double()
    x = torch.rand(10, 2, 4, dtype=torch.float64)
    full, state = net(x)
    for steps in (1, 3, 4):
        part, part_state = run_chunked(net, x, steps=steps)
        assert torch.equal(full, part)
        torch.testing.assert_close(state["1"].v, part_state["1"].v, rtol=1e-12, atol=1e-12)  # (GEMM blocking)
        assert torch.equal(state["1"].s, part_state["1"].s)
    assert state["1"].v_seq.shape == (10, 2, 6)
    (g_full,) = torch.autograd.grad(net(x)[0].sum(), [net[1].recurrent.weight])
    (g_part,) = torch.autograd.grad(run_chunked(net, x, steps=3)[0].sum(), [net[1].recurrent.weight])
    torch.testing.assert_close(g_full, g_part)


def test_no_temporal_grad_cuts_the_fed_back_spikes_too():
    layer = _layer()
    x = torch.randn(8, 3, 5, dtype=torch.float64, requires_grad=True)
    with no_temporal_grad():
        s, state = layer(x)
    assert not state.s.requires_grad and not state.v.requires_grad
    ref, _ = _reference(x, layer.recurrent.weight, None, 0.5, cut=True)
    assert torch.equal(s, ref)
    weights = torch.linspace(1, 2, 8, dtype=torch.float64)[:, None, None]
    got = torch.autograd.grad((s * weights).sum(), [x, layer.recurrent.weight])
    want = torch.autograd.grad((ref * weights).sum(), [x, layer.recurrent.weight])
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)
    full = torch.autograd.grad((layer(x)[0] * weights).sum(), [x])[0]
    assert not torch.allclose(full, got[0])  # BPTT's gradient differs: the cut is real


def test_bad_input_and_state_are_named():
    layer = RLIF(4)
    with pytest.raises(ValueError, match=r"RLIF\(4\) expects a time-first tensor \[T, B, 4\], got shape \(3, 2, 5\)"):
        layer(torch.rand(3, 2, 5))
    with pytest.raises(ValueError, match="put a Flatten"):
        layer(torch.rand(3, 2, 2, 4))
    with pytest.raises(TypeError, match="must be the RLIFState it returned"):
        layer(torch.rand(3, 2, 4), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"state.s has shape \(3, 4\)"):
        layer(torch.rand(3, 2, 4), RLIFState(torch.zeros(2, 4), torch.zeros(3, 4)))
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="features must be a whole number"):
            RLIF(bad)
    with pytest.raises(ValueError, match="connectivity must be one of"):
        RLIF(4, connectivity="sparse")
    s, state = layer(torch.rand(0, 2, 4))  # no steps: no spikes, state at rest
    assert s.shape == (0, 2, 4) and not state.v.any()


def test_integer_spikes_run_as_float32_like_lif():
    s, state = RLIF(3)(torch.ones(4, 2, 3, dtype=torch.int64))
    assert s.dtype == state.v.dtype == torch.float32


def test_model_config_recurrent_builds_rlif_hidden_layers_and_is_written_only_when_set():
    cfg = ModelConfig(kind="mlp", input_shape=(12,), hidden=(8, 6), num_classes=3, recurrent=True)
    net = build_model(cfg, NeuronConfig(beta=0.8, reset="zero"))
    rlifs = [m for m in net if isinstance(m, RLIF)]
    assert [m.features for m in rlifs] == [8, 6]
    assert float(rlifs[0].lif.beta) == pytest.approx(0.8) and rlifs[0].lif.reset == "zero"
    assert isinstance(net[-1], LIF)  # the output layer stays feed-forward
    assert net(torch.rand(5, 2, 12))[0].shape == (5, 2, 3)
    assert config_to_dict(cfg)["recurrent"] is True
    assert "recurrent" not in config_to_dict(ModelConfig())
    with pytest.raises(ConfigError, match="recurrent.*there are none: give model.hidden"):
        ModelConfig(recurrent=True)


def _memory_task(n: int, steps: int, seed: int):
    """The class is a cue on input channel 0 or 1 at the first step only; the answer is read at the last step."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.zeros(steps, n, 2)
    x[0, torch.arange(n), y] = 1.0
    return x, y


def _train_on_memory_task(recurrent: bool, seed: int) -> float:
    torch.manual_seed(seed)
    neuron = dict(beta=0.5)  # β^9 ≈ 0.002: a membrane forgets the cue within a few steps
    hidden = RLIF(32, **neuron) if recurrent else LIF(**neuron)
    # no bias: a bias-driven neuron fires periodically and its phase alone would remember the cue
    net = Sequential(Linear(2, 32, bias=False), hidden, Linear(32, 2), LI(0.0))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Linear) and m is not net[2]:
                m.weight.mul_(2)
    opt = torch.optim.Adam(net.parameters(), lr=0.03)
    x, y = _memory_task(64, 10, seed=0)
    for _ in range(150):
        opt.zero_grad()
        out, _ = net(x)
        torch.nn.functional.cross_entropy(out[-1], y).backward()
        opt.step()
    x_test, y_test = _memory_task(256, 10, seed=1)
    with torch.no_grad():
        return (net(x_test)[0][-1].argmax(1) == y_test).float().mean().item()


@pytest.mark.parametrize("seed", [0, 1])
def test_recurrence_holds_a_cue_that_membranes_forget(seed):
    """Trained on the last step's output only, the recurrent layer keeps the first step's cue (100 % in seeds 0–4
    when written); the same network without feedback is at chance."""
    assert _train_on_memory_task(recurrent=True, seed=seed) >= 0.95
    assert _train_on_memory_task(recurrent=False, seed=seed) <= 0.6


# --- the fused scan (one autograd node for the sequence) against the per-step loop -------------------------------
# A forward hook on .lif makes the layer call .lif once per step (its contract with the activity profiler), so a
# hooked twin runs the per-step loop on the same weights: spikes must be bit-identical and gradients equal.


def _looping(layer):
    """``layer`` with a no-op forward hook on ``.lif``: the per-step loop; returns the hook's handle."""
    return layer.lif.register_forward_hook(lambda *_: None)


def _run(layer, x, state, cut, loss_w):
    with no_temporal_grad() if cut else torch.enable_grad():
        s, st = layer(x, state)
    loss = (s * loss_w).sum()
    if not cut:
        loss = loss + (st.v ** 2).sum() + 0.5 * st.s.sum()  # gradients through the returned state as well
    if st.v_seq is not None:
        loss = loss + (st.v_seq.tanh() * loss_w).sum()
    return s, st, loss


@pytest.mark.parametrize("connectivity", ["dense", "diagonal"])
@pytest.mark.parametrize("reset,detach_reset", [("subtract", False), ("subtract", True), ("zero", False),
                                                ("zero", True), ("none", False)])
@pytest.mark.parametrize("cut", [False, True])
@pytest.mark.parametrize("timing", ["immediate", "delayed"])
def test_fused_scan_equals_the_per_step_loop(connectivity, reset, detach_reset, cut, timing):
    for dtype, carried, record in ((torch.float64, False, True), (torch.float64, True, False),
                                   (torch.float32, True, True)):
        layer = _layer(connectivity=connectivity, bias=True, reset=reset, detach_reset=detach_reset,
                       reset_timing=timing, record_membrane=record).to(dtype)
        with torch.no_grad():
            layer.recurrent.bias.uniform_(-0.3, 0.3)
        g = torch.Generator().manual_seed(3)
        x = torch.randn(7, 3, 5, generator=g, dtype=dtype).requires_grad_()
        loss_w = torch.rand(7, 3, 5, generator=g, dtype=dtype)
        state = None
        if carried:  # a state that carries gradient (BPTT across chunks), with spikes in it
            v0 = torch.randn(3, 5, generator=g, dtype=dtype).requires_grad_()
            s0 = (torch.rand(3, 5, generator=g) < 0.5).to(dtype).requires_grad_()
            state = RLIFState(v0, s0)
        inputs = [x, layer.recurrent.weight, layer.recurrent.bias] + ([v0, s0] if carried and not cut else [])
        s, st, loss = _run(layer, x, state, cut, loss_w)
        # the fused path ran; delayed timing through time keeps the loop (differentiable twice, as before)
        assert (type(s.grad_fn).__name__ == "_RLIFScanBackward") == (timing == "immediate" or cut)
        got = torch.autograd.grad(loss, inputs)
        handle = _looping(layer)
        s_ref, st_ref, loss_ref = _run(layer, x, state, cut, loss_w)
        handle.remove()
        assert type(s_ref.grad_fn).__name__ != "_RLIFScanBackward"
        want = torch.autograd.grad(loss_ref, inputs)
        assert torch.equal(s, s_ref) and torch.equal(st.s, st_ref.s) and torch.equal(st.v, st_ref.v)
        assert 0 < s.mean() < 1
        if record:
            assert torch.equal(st.v_seq, st_ref.v_seq)
        assert st.v.requires_grad == st_ref.v.requires_grad and st.s.requires_grad == st_ref.s.requires_grad
        tol = 1e-12 if dtype == torch.float64 else 1e-5
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, rtol=tol, atol=tol)
        assert got[1].abs().sum() > 0
        with torch.no_grad():  # inference: no graph, the same values
            s_ng, st_ng = layer(x, state)
        assert torch.equal(s_ng, s) and torch.equal(st_ng.v, st.v) and torch.equal(st_ng.s, st.s)


def test_hooks_see_every_step_and_global_hooks_keep_the_loop():
    layer = _layer()
    x = torch.randn(6, 2, 5, dtype=torch.float64)
    seen = []
    handle = layer.lif.register_forward_hook(lambda m, args, out: seen.append((args[0], args[1], out[0])))
    s, _ = layer(x)
    handle.remove()
    assert len(seen) == 6  # once per step, with that step's total current and the LIFState
    for t, (current, lif_state, out) in enumerate(seen):
        prev = s[t - 1] if t else torch.zeros_like(s[0])
        torch.testing.assert_close(current[0], x[t] + prev @ layer.recurrent.weight.T, rtol=0, atol=1e-12)
        assert isinstance(lif_state, LIFState) and torch.equal(out[0], s[t])
    calls = []
    handle = torch.nn.modules.module.register_module_forward_hook(lambda m, *_: calls.append(m))
    try:
        layer(x)
    finally:
        handle.remove()
    assert sum(m is layer.lif for m in calls) == 6
    assert type(layer(x.requires_grad_())[0].grad_fn).__name__ == "_RLIFScanBackward"  # unhooked again: fused


def test_a_replaced_recurrent_module_or_neuron_is_called():
    layer = _layer()
    x = torch.randn(6, 2, 5, dtype=torch.float64)

    class Doubled(torch.nn.Linear):  # e.g. a noisy or quantised stand-in for the recurrent weights
        def forward(self, s):
            return 2 * super().forward(s)

    twin = _layer()
    with torch.no_grad():
        twin.recurrent.weight.mul_(2)
    doubled = Doubled(5, 5, bias=False).double()
    doubled.load_state_dict(layer.recurrent.state_dict())
    layer.recurrent = doubled
    assert torch.equal(layer(x)[0], twin(x)[0])
    assert not torch.equal(layer(x)[0], _layer()(x)[0])


def test_fused_scan_double_backward_raises_through_time_and_works_with_the_cut():
    layer = _layer()
    x = torch.randn(5, 2, 5, dtype=torch.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="backend='reference'"):  # as the fused LIF's, and the loop's before
        torch.autograd.grad(layer(x)[0].sum(), x, create_graph=True)
    reference = _layer(backend="reference")  # the per-step graph: differentiable twice
    (gx,) = torch.autograd.grad(reference(x)[0].sum(), x, create_graph=True)
    assert gx.requires_grad
    w = torch.linspace(0.5, 1.5, 5, dtype=torch.float64)
    got, want = [], []
    for lay, out in ((layer, got), (reference, want)):
        with no_temporal_grad():
            s, _ = lay(x)
        (gx,) = torch.autograd.grad((s * w).sum(), x, create_graph=True)
        out.extend(torch.autograd.grad((gx ** 2).sum(), [x, lay.recurrent.weight]))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert got[0].abs().sum() > 0
    delayed = _layer(reset_timing="delayed")  # the loop's backward, as LIF's delayed timing: differentiable twice
    (gx,) = torch.autograd.grad(delayed(x)[0].sum(), x, create_graph=True)
    assert gx.requires_grad


def test_fused_scan_saves_less_for_backward():
    from neurosim.training import SavedTensorMeter

    layer = _layer(n=16)
    x = torch.randn(20, 4, 16, dtype=torch.float64, requires_grad=True)
    sizes = []
    for hooked in (False, True):
        handle = _looping(layer) if hooked else None
        with SavedTensorMeter() as meter:
            layer(x)[0].sum().backward()
        sizes.append(meter.peak_bytes)
        if handle:
            handle.remove()
    h_seq, weight = 20 * 4 * 16 * 8, 16 * 16 * 8  # the membranes and W_rec once (from rest: no s0)
    assert sizes[0] == h_seq + weight
    assert sizes[1] > 2 * sizes[0]  # the loop: W_rec's reference, the spikes and the membrane at every step


def test_recurrent_weights_of_another_dtype_are_named_on_both_paths():
    layer = RLIF(4, connectivity="diagonal").double()
    x = torch.rand(3, 2, 4)
    with pytest.raises(ValueError, match=r"recurrent weights \(.recurrent.weight\) are torch.float64 but x_seq is "
                                         r"torch.float32: convert the layer"):
        layer(x)
    layer.lif.register_forward_hook(lambda *a: None)  # the per-step loop
    with pytest.raises(ValueError, match="recurrent weights"):
        layer(x)


def test_a_state_made_under_inference_mode_continues_into_a_graph():
    layer = _layer()
    x = torch.randn(5, 2, 5, dtype=torch.float64)
    with torch.inference_mode():
        _, state = layer(x)
    for hooked in (False, True):
        if hooked:
            layer.lif.register_forward_hook(lambda *a: None)
        layer.zero_grad()
        s, _ = layer(x, state)
        s.sum().backward()
        assert layer.recurrent.weight.grad.abs().sum() > 0


def test_a_parametrized_recurrent_weight_runs_fused_with_the_loop_s_results():
    """snnTorch's one shared V converts to a parametrized DiagonalRecurrent weight: still the fused scan."""
    from torch.nn.utils import parametrize

    class Shared(torch.nn.Module):
        def forward(self, w):
            return w[:1].expand_as(w)

    layer = _layer(connectivity="diagonal")
    with torch.no_grad():
        layer.recurrent.weight.fill_(0.4)  # (3: neurons fire at every step after their first, beyond the surrogate)
    parametrize.register_parametrization(layer.recurrent, "weight", Shared())
    x = torch.randn(6, 2, 5, dtype=torch.float64, requires_grad=True)
    s, _ = layer(x)
    assert type(s.grad_fn).__name__ == "_RLIFScanBackward"
    (g,) = torch.autograd.grad(s.sum(), [layer.recurrent.parametrizations.weight.original])
    layer.lif.register_forward_hook(lambda *a: None)
    s_loop, _ = layer(x)
    (g_loop,) = torch.autograd.grad(s_loop.sum(), [layer.recurrent.parametrizations.weight.original])
    assert torch.equal(s, s_loop)
    torch.testing.assert_close(g, g_loop, rtol=1e-12, atol=1e-12)
    assert g[0] != 0 and not g[1:].any()  # the shared value alone learns


def test_a_run_of_no_steps_returns_a_state_of_separate_tensors_and_numpy_sizes_work():
    import numpy as np

    _, state = RLIF(3)(torch.rand(0, 2, 3))
    assert state.v is not state.s
    assert RLIF(np.int64(4)).features == 4 and type(RLIF(np.int64(4)).features) is int

"""LIF dynamics: hand-derived traces, chunking, backends, and the exact snnTorch cross-check."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neurosim.functional import LIFParams, LIFState, Surrogate, beta_from_tau, lif_scan, tau_from_beta

# Constant input x = 0.6, beta = 0.5, v_th = 1, immediate reset timing (h = β·v + x, then reset):
#   t0: h = 0.6                     t1: h = 0.5·0.6 + 0.6 = 0.9
#   t2: h = 0.45 + 0.6 = 1.05 → spike
#       subtract: v = 0.05   zero: v = 0   none: v = 1.05
#   subtract: t3 h = 0.625, t4 h = 0.9125, t5 h = 1.05625 → spike (v = 0.05625)
#   zero:     t3 h = 0.6,   t4 h = 0.9,    t5 h = 1.05 → spike (v = 0)
#   none:     t3 h = 1.125, t4 h = 1.1625, t5 h = 1.18125, all ≥ 1 → spike every step from t2
HAND = {
    "subtract": ([0, 0, 1, 0, 0, 1], [0.6, 0.9, 1.05, 0.625, 0.9125, 1.05625], 0.05625),
    "zero": ([0, 0, 1, 0, 0, 1], [0.6, 0.9, 1.05, 0.6, 0.9, 1.05], 0.0),
    "none": ([0, 0, 1, 1, 1, 1], [0.6, 0.9, 1.05, 1.125, 1.1625, 1.18125], 1.18125),
}


@pytest.mark.parametrize("backend", ["reference", "fused"])
@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
def test_hand_trace_immediate(reset, backend):
    x = torch.full((6, 1), 0.6, dtype=torch.float64)
    s, state = lif_scan(x, LIFParams(beta=0.5, v_th=1.0, reset=reset), record_membrane=True, backend=backend)
    spikes, membrane, v_end = HAND[reset]
    assert s.flatten().tolist() == spikes
    torch.testing.assert_close(state.v_seq.flatten(), torch.tensor(membrane, dtype=torch.float64))
    assert state.v.item() == pytest.approx(v_end)


def test_hand_trace_delayed_snntorch_timing():
    # snnTorch timing: v[t] = β·v[t−1] + x − v_th·H(v[t−1] − v_th), spike if v[t] > v_th.
    #   t0 0.6, t1 0.9, t2 1.05 → spike; t3 0.525 + 0.6 − 1 = 0.125; t4 0.6625; t5 0.93125;
    #   t6 1.065625 → spike.  (Immediate timing spikes at t5 instead: the reset there decays with v.)
    x = torch.full((7, 1), 0.6, dtype=torch.float64)
    p = LIFParams(beta=0.5, v_th=1.0, reset="subtract", reset_timing="delayed")
    s, state = lif_scan(x, p, record_membrane=True)
    assert s.flatten().tolist() == [0, 0, 1, 0, 0, 0, 1]
    torch.testing.assert_close(
        state.v_seq.flatten(),
        torch.tensor([0.6, 0.9, 1.05, 0.125, 0.6625, 0.93125, 1.065625], dtype=torch.float64),
    )


def test_threshold_tie_conventions():
    # v reaches exactly v_th: H(0) = 1 in neurosim's default, 0 in snnTorch's strict comparison.
    x = torch.tensor([[0.5], [0.5]], dtype=torch.float64)
    s_default, _ = lif_scan(x, LIFParams(beta=1.0, v_th=1.0))
    s_delayed, _ = lif_scan(x, LIFParams(beta=1.0, v_th=1.0, reset_timing="delayed"))
    assert s_default.flatten().tolist() == [0, 1]
    assert s_delayed.flatten().tolist() == [0, 0]


@settings(max_examples=40, deadline=None)
@given(
    T=st.integers(2, 12),
    split=st.integers(1, 11),
    reset=st.sampled_from(["subtract", "zero", "none"]),
    timing=st.sampled_from(["immediate", "delayed"]),
    beta=st.floats(0.1, 1.0),
    seed=st.integers(0, 2**16),
)
def test_chunked_run_equals_full_run(T, split, reset, timing, beta, seed):
    split = min(split, T - 1)
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(T, 3, 4, generator=g, dtype=torch.float64) * 1.5
    p = LIFParams(beta=beta, v_th=1.0, reset=reset, reset_timing=timing)
    s_full, st_full = lif_scan(x, p)
    s1, st1 = lif_scan(x[:split], p)
    s2, st2 = lif_scan(x[split:], p, st1)
    assert torch.equal(torch.cat([s1, s2]), s_full)
    torch.testing.assert_close(st2.v, st_full.v)


@pytest.mark.parametrize("surrogate", ["atan", "sigmoid", "fast_sigmoid", "triangle", "rectangle"])
@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("detach_reset", [False, True])
def test_fused_backend_matches_reference(surrogate, reset, detach_reset):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(10, 3, 5, generator=g, dtype=torch.float64)
    v0 = torch.randn(3, 5, generator=g, dtype=torch.float64)
    w_s, w_h = torch.randn(10, 3, 5, generator=g, dtype=torch.float64), torch.randn(10, 3, 5, generator=g, dtype=torch.float64)
    results = []
    for backend in ("reference", "fused"):
        xx, vv = x.clone().requires_grad_(True), v0.clone().requires_grad_(True)
        beta = torch.tensor(0.8, dtype=torch.float64, requires_grad=True)
        p = LIFParams(beta=beta, v_th=1.0, reset=reset, detach_reset=detach_reset, surrogate=Surrogate(surrogate))
        s, state = lif_scan(xx, p, LIFState(vv), record_membrane=True, backend=backend)
        ((s * w_s).sum() + (state.v ** 2).sum() + (state.v_seq * w_h).sum()).backward()
        results.append([s, state.v, xx.grad, vv.grad, beta.grad])
    for ref, fused in zip(*results):
        torch.testing.assert_close(fused, ref, rtol=1e-10, atol=1e-12)


def test_learnable_threshold_gets_gradient_and_uses_reference():
    x = torch.rand(8, 2, 3, dtype=torch.float64) * 2
    v_th = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    s, _ = lif_scan(x, LIFParams(beta=0.9, v_th=v_th))
    s.sum().backward()
    assert v_th.grad is not None and v_th.grad.item() < 0  # a higher threshold means fewer spikes
    with pytest.raises(ValueError, match="fused backend"):
        lif_scan(x, LIFParams(beta=0.9, v_th=v_th), backend="fused")


def test_a_fixed_per_neuron_threshold_runs_on_the_default_backend():
    x = torch.rand(6, 2, 3, dtype=torch.float64) * 2
    v_th = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)  # float(v_th) used to fail on the fused path
    s, state = lif_scan(x, LIFParams(beta=0.9, v_th=v_th))
    s_ref, state_ref = lif_scan(x, LIFParams(beta=0.9, v_th=v_th), backend="reference")
    assert torch.equal(s, s_ref) and torch.equal(state.v, state_ref.v)
    assert s[..., 0].sum() > s[..., 2].sum()  # each neuron's own threshold


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_floats_give_the_same_spikes_on_every_backend(dtype):
    x = (torch.rand(200, 4, 64, generator=torch.Generator().manual_seed(0)) * 0.5).to(dtype)
    params = LIFParams(beta=0.9, v_th=1.0)
    s_ref, state_ref = lif_scan(x, params, backend="reference")
    for grad in (False, True):  # inference, and the autograd scan
        s, state = lif_scan(x.clone().requires_grad_(grad), params)
        assert s.dtype == dtype and torch.equal(s, s_ref) and torch.equal(state.v.detach(), state_ref.v)
    with pytest.raises(ValueError, match=f"float32/float64 input \\(got {dtype}\\)"):
        lif_scan(x, params, backend="fused")


def test_zero_time_steps_from_rest_return_an_empty_sequence_and_the_rest_state():
    for backend in ("auto", "reference"):
        s, state = lif_scan(torch.zeros(0, 2, 3), LIFParams(), backend=backend)
        assert s.shape == (0, 2, 3) and torch.equal(state.v, torch.zeros(2, 3))


def test_bad_inputs_give_clear_errors():
    with pytest.raises(ValueError, match=r"state.v is torch.float32 but x_seq is torch.float64"):
        lif_scan(torch.zeros(4, 2, 3, dtype=torch.float64), LIFParams(), LIFState(torch.zeros(2, 3)))
    with pytest.raises(ValueError, match=r"time-first .*shape \(5,\)"):
        lif_scan(torch.zeros(5), LIFParams())
    with pytest.raises(ValueError, match="never re-zeroed"):
        lif_scan(torch.zeros(4, 2, 3), LIFParams(), LIFState(torch.zeros(3, 3)))
    with pytest.raises(ValueError, match="reset must be one of"):
        LIFParams(reset="hard")
    with pytest.raises(ValueError, match="tau_mem_ms"):
        beta_from_tau(-1.0, 1.0)


def test_beta_tau_conversion_round_trip():
    beta = beta_from_tau(20.0, 1.0)
    assert beta == pytest.approx(0.951229424500714)
    assert tau_from_beta(beta, 1.0) == pytest.approx(20.0)


snntorch = pytest.importorskip("snntorch")


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
def test_matches_snntorch_leaky_exactly(reset):
    """snnTorch ``Leaky`` (reset_delay=True, atan α=2) == neurosim with reset_timing='delayed'."""
    g = torch.Generator().manual_seed(1)
    x = torch.rand(25, 4, 6, generator=g) * 0.8
    beta, thr = 0.85, 0.7

    xs = x.clone().requires_grad_(True)
    leaky = snntorch.Leaky(beta=beta, threshold=thr, reset_mechanism=reset)
    mem = torch.zeros(4, 6)
    spk_rec, mem_rec = [], []
    for t in range(x.shape[0]):
        spk, mem = leaky(xs[t], mem)
        spk_rec.append(spk)
        mem_rec.append(mem)
    spk_ref, mem_ref = torch.stack(spk_rec), torch.stack(mem_rec)
    (spk_ref * torch.arange(25.0).view(25, 1, 1)).sum().backward()

    xn = x.clone().requires_grad_(True)
    p = LIFParams(beta=beta, v_th=thr, reset=reset, reset_timing="delayed", surrogate=Surrogate("atan", 2.0))
    s, state = lif_scan(xn, p, record_membrane=True)
    (s * torch.arange(25.0).view(25, 1, 1)).sum().backward()

    assert spk_ref.sum() > 10  # the comparison exercises real spikes and resets
    assert torch.equal(s, spk_ref)
    torch.testing.assert_close(state.v_seq, mem_ref)
    torch.testing.assert_close(xn.grad, xs.grad)


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("T", [1, 7])
def test_forward_without_graph_equals_the_autograd_scan(reset, T):
    """Where no gradient is taken the fused backend updates the membrane in place; same spikes and state."""
    g = torch.Generator().manual_seed(T)
    x = torch.rand(T, 4, 6, generator=g) * 1.5
    v0 = torch.rand(4, 6, generator=g)
    v0_before = v0.clone()
    params = LIFParams(beta=0.8, v_th=1.0, reset=reset)
    s_ref, st_ref = lif_scan(x.requires_grad_(), params, LIFState(v0), backend="fused")  # the autograd node
    with torch.no_grad():
        s, st = lif_scan(x, params, LIFState(v0), backend="fused")
    assert s_ref.grad_fn is not None and s.grad_fn is None
    assert torch.equal(s, s_ref) and torch.equal(st.v, st_ref.v) and s.sum() > 0
    torch.testing.assert_close(s, lif_scan(x.detach(), params, LIFState(v0), backend="reference")[0])
    assert torch.equal(v0, v0_before) and st.v.data_ptr() != v0.data_ptr(), "the caller's state is not modified"


@pytest.mark.parametrize("backend", ["auto", "fused", "reference"])
@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
def test_integer_and_bool_input_is_promoted_to_float32_on_every_backend(reset, backend):
    # x = 1 each step, β = 0.9, v_th = 2 (float maths; the fused path cast β to int64 (0) and gave no spikes):
    #   h = 1, 1.9, 2.71 → spike; then subtract: v = 0.71, h = 1.639 | zero: v = 0, h = 1 | none: h = 3.439 → spike
    spikes = {"subtract": [0, 0, 1, 0], "zero": [0, 0, 1, 0], "none": [0, 0, 1, 1]}[reset]
    v_end = {"subtract": 1.639, "zero": 1.0, "none": 3.439}[reset]
    params = LIFParams(beta=0.9, v_th=2.0, reset=reset)
    for x in (torch.ones(4, 1, dtype=torch.int64), torch.ones(4, 1, dtype=torch.bool)):
        s, state = lif_scan(x, params, backend=backend)
        assert s.dtype == state.v.dtype == torch.float32
        assert s.flatten().tolist() == spikes and state.v.item() == pytest.approx(v_end, abs=1e-6)
        first, mid = lif_scan(x[:2], params, backend=backend)  # a float32 state continues integer input
        assert torch.equal(torch.cat([first, lif_scan(x[2:], params, mid, backend=backend)[0]]), s)
    # a state of the input's own integer dtype is told the dtype to pass, not to "cast one to the other"
    for bad in (torch.float64, torch.int64):
        with pytest.raises(ValueError, match=rf"state.v is {bad} but x_seq is torch.float32 \(promoted from "
                                             r"torch.int64: .*\); pass a torch.float32 state") as info:
            lif_scan(torch.ones(4, 1, dtype=torch.int64), params, LIFState(torch.zeros(1, dtype=bad)))
        assert "cast one to the other" not in str(info.value)


def test_a_state_or_parameter_on_another_device_is_named():
    x = torch.rand(4, 2, 3)
    with pytest.raises(ValueError, match=r"state.v is on meta but x_seq is on cpu; move the state"):
        lif_scan(x, LIFParams(), LIFState(torch.zeros(2, 3, device="meta")))
    with pytest.raises(ValueError, match=r"state.v is on cpu but x_seq is on meta"):
        lif_scan(x.to("meta"), LIFParams(), LIFState(torch.zeros(2, 3)))
    for name in ("beta", "v_th"):
        with pytest.raises(ValueError, match=rf"LIFParams.{name} is a tensor on meta but x_seq is on cpu"):
            lif_scan(x, LIFParams(**{name: torch.tensor(0.9, device="meta")}))
    # a 0-d CPU tensor is a scalar to torch on any device, meta included
    assert lif_scan(x.to("meta"), LIFParams(beta=torch.tensor(0.9)))[0].is_meta


@pytest.mark.parametrize("T", [1, 5])
@pytest.mark.parametrize("backend", ["auto", "reference"])
def test_a_state_made_under_inference_mode_continues_into_a_graph(backend, T):
    # the fused scan saved the initial state for backward always; an inference tensor cannot be saved
    x = torch.rand(T, 3, 4, generator=torch.Generator().manual_seed(0)) * 1.5
    with torch.inference_mode():
        _, state = lif_scan(x, LIFParams(), backend=backend)
    xx = x.clone().requires_grad_()
    s, _ = lif_scan(xx, LIFParams(), state, backend=backend)
    (g,) = torch.autograd.grad((s * torch.arange(s.numel()).view(s.shape)).sum(), xx)
    xr = x.clone().requires_grad_()
    sr, _ = lif_scan(xr, LIFParams(), LIFState(state.v.clone()), backend="reference")
    (gr,) = torch.autograd.grad((sr * torch.arange(sr.numel()).view(sr.shape)).sum(), xr)
    assert torch.equal(s, sr) and torch.allclose(g, gr)


@pytest.mark.parametrize("kwargs, words", [
    ({"beta": torch.tensor(1.5)}, "beta must be in [0, 1], got a tensor holding 1.5"),
    ({"beta": torch.tensor(float("nan"))}, "beta must be in [0, 1]"),
    ({"beta": torch.tensor([0.5, 2.0, -1.0])}, "2 value(s) outside it"),
    ({"v_th": torch.tensor(-1.0)}, "v_th must be positive"),
    ({"v_th": torch.tensor([1.0, 0.0])}, "v_th must be positive everywhere"),
])
def test_lif_params_check_the_values_of_cpu_tensors_as_of_numbers(kwargs, words):
    # a tensor beta > 1 once passed unchecked, and the two reset timings then disagreed (one clamps it)
    with pytest.raises(ValueError) as err:
        LIFParams(**kwargs)
    assert words in str(err.value)
    LIFParams(beta=torch.tensor([0.0, 0.5, 1.0]), v_th=torch.tensor([0.1, 2.0]))  # in range: accepted

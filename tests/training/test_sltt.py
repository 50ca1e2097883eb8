"""SLTT and SLTT-K: exactness against BPTT where the temporal path vanishes, the per-step decomposition,
memory that does not grow with T, the K-step variant, presets, and a short training run."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import pytest
import torch

from conversions import IntToFloatCopies
from neurosim.config import ConfigError, ModelConfig, NeuronConfig, RunConfig, TrainConfig, load_config
from neurosim.functional import LIFParams, LIFState, Surrogate, lif_scan
from neurosim.nn import LI, LIF, BatchNorm1d, Dropout, Flatten, Linear, Sequential, build_model, detach_state
from neurosim.training import (
    BPTT, METHODS, RateCE, SLTTMix, TET, Trainer, get_loss, get_method, register_method,
)
from neurosim.training.memory import SavedTensorMeter
from neurosim.training.sltt import (
    PAPER_NEURON, SLTT, SLTTK, paper_beta, paper_config, paper_lif_kwargs, run_online, sltt_chunk,
)

CONFIGS = Path(__file__).resolve().parents[2] / "neurosim" / "configs"


# ----------------------------------------------------------------------------------------------- helpers


def _mlp(beta=0.5, *, timing="immediate", reset="subtract", backend="auto", learn=False, learn_th=None, dropout=0.0,
         readout="lif", gain=4.0, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    kw = dict(beta=beta, reset=reset, reset_timing=timing, backend=backend, surrogate="triangle",
              learn_beta=learn, learn_threshold=learn if learn_th is None else learn_th)
    layers = [Flatten(), Linear(6, 12), LIF(**kw)]
    if dropout:
        layers.append(Dropout(dropout))
    layers += [Linear(12, 4), LIF(**kw) if readout == "lif" else LI(0.7)]
    net = Sequential(*layers).to(dtype)
    with torch.no_grad():  # larger weights than torch's default init, so that both layers spike
        for m in net.modules():
            if isinstance(m, Linear):
                m.weight.mul_(gain)
    return net


def _data(T, B=5, seed=1, dtype=torch.float64, scale=1.2):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(T, B, 2, 3, generator=g, dtype=dtype) * scale
    y = torch.randint(0, 4, (B,), generator=g)
    return x, y


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _run(method, model, x, y, loss):
    model.zero_grad(set_to_none=True)
    out = method.forward_backward(model, x, y, loss)
    return out, _grads(model)


def _assert_grads_close(a, b, rtol=1e-10, atol=1e-12):
    assert a.keys() == b.keys() and a
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=rtol, atol=atol, msg=f"gradient of {k} differs")


# SLTT one step at a time (the paper's loop), in chunks of 4 steps (9 = 4 + 4 + 1), and in the automatic chunk
# (all steps at once for these small batches): chunks run under no_temporal_grad, steps under detach_state.
CHUNKS, CHUNK_IDS = [1, 4, None], ["per_step", "chunk4", "auto_chunk"]

# ------------------------------------------------------------ (a) SLTT == BPTT when λ = 0 (no temporal path)

# With β = λ = 0, h[t] = W·s_in[t] for every reset mode and timing: v[t−1] enters h[t] only through β·v[t−1]
# (immediate timing) or through a reset term that is detached by construction (delayed/snnTorch timing), so
# BPTT's temporal gradient dL/dv[t−1] = β·dL/dh[t] is exactly zero and BPTT's gradient *is* SLTT's.


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("timing,backend", [("immediate", "fused"), ("immediate", "reference"),
                                            ("delayed", "auto")])
@pytest.mark.parametrize("loss", [TET(), SLTTMix()], ids=["tet", "sltt_mix"])
@pytest.mark.parametrize("chunk", CHUNKS, ids=CHUNK_IDS)
def test_sltt_equals_bptt_without_temporal_path(reset, timing, backend, loss, chunk):
    model = _mlp(paper_beta(1.0), timing=timing, reset=reset, backend=backend)  # λ = 1 − 1/τ = 0 at τ = 1
    x, y = _data(T=7)
    out_b, g_bptt = _run(BPTT(), model, x, y, loss)
    out_s, g_sltt = _run(SLTT(chunk), model, x, y, loss)
    assert out_b.out_seq.sum() > 0, "the comparison must exercise real output spikes"
    assert torch.equal(out_s.out_seq, out_b.out_seq)
    assert out_s.loss == pytest.approx(out_b.loss, rel=1e-12)
    assert all(g.abs().sum() > 0 for g in g_sltt.values())
    _assert_grads_close(g_sltt, g_bptt)


def test_sltt_differs_from_bptt_with_leak():
    """The test above is not vacuous: with β > 0 BPTT's temporal path changes the gradient."""
    model = _mlp(beta=0.8)
    x, y = _data(T=7)
    _, g_bptt = _run(BPTT(), model, x, y, TET())
    _, g_sltt = _run(SLTT(), model, x, y, TET())
    assert any(not torch.allclose(g_bptt[k], g_sltt[k], rtol=1e-6) for k in g_bptt)


# ----------------------------------- (b) per-step backward == one backward of the summed detached-model loss


def _detached_model_grads(model, x, y, loss, steps=None, seed=None):
    """Reference: run the temporally detached model over all steps, sum (1/T)·ℓ_t, one backward."""
    T = x.shape[0]
    model.zero_grad(set_to_none=True)
    if seed is not None:
        torch.manual_seed(seed)
    state, total = None, 0.0
    for t in range(T):
        out_t, state = model(x[t:t + 1], detach_state(state))
        if steps is None or t in steps:
            total = total + loss.step(out_t[0], y) / T
    total.backward()
    return _grads(model)


@pytest.mark.parametrize("timing,backend", [("immediate", "fused"), ("immediate", "reference"),
                                            ("delayed", "auto")])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("learn", [False, True], ids=["fixed", "learnable_beta_threshold"])
@pytest.mark.parametrize("chunk", CHUNKS, ids=CHUNK_IDS)
def test_accumulated_per_step_backward_equals_detached_model_backward(timing, backend, reset, learn, chunk):
    # (the fused backend takes a learnable decay but not a learnable threshold)
    learn_th = learn and backend != "fused"
    model = _mlp(beta=0.7, timing=timing, reset=reset, backend=backend, learn=learn, learn_th=learn_th,
                 dropout=0.3, readout="li")
    x, y = _data(T=9)
    loss = SLTTMix()
    torch.manual_seed(5)  # the same dropout mask in both runs
    out, g_sltt = _run(SLTT(chunk), model, x, y, loss)
    g_ref = _detached_model_grads(model, x, y, loss, seed=5)
    assert out.backward_passes == {1: 9, 4: 3, None: 1}[chunk]  # B = 5: the automatic chunk holds all 9 steps
    if learn:
        assert "2.beta_logit" in g_sltt and ("2.v_th_param" in g_sltt) == learn_th
    _assert_grads_close(g_sltt, g_ref)


def test_sltt_weight_gradient_matches_hand_derivation():
    # One layer, h[t] = β·sg(v[t−1]) + W·x[t], s = H(h − 1), loss (1/T)·Σ_t Σ_i s_t,i (not a Loss object:
    # via a tiny per-step "loss" class). By hand: dL/dW = (1/T)·Σ_t σ'(h_t − 1)ᵀ·x_t with σ' the triangle.
    class SumLoss(TET):
        def step(self, o_t, y):
            return o_t.sum()

    T = 5
    model = _mlp(beta=0.5)
    layer = Sequential(Flatten(), Linear(6, 12), LIF(beta=0.5, surrogate="triangle")).double()
    layer[1].load_state_dict(model[1].state_dict())
    x, y = _data(T=T)
    _, g = _run(SLTT(), layer, x, y, SumLoss())
    W, b = layer[1].weight.detach(), layer[1].bias.detach()
    v = torch.zeros(x.shape[1], 12, dtype=x.dtype)
    dW = torch.zeros_like(W)
    for t in range(T):
        xt = x[t].flatten(1)
        h = 0.5 * v + xt @ W.T + b
        s = (h >= 1).to(h.dtype)
        sg = (1 - (h - 1).abs()).clamp_min(0)  # triangle, α = 1
        dW += sg.T @ xt / T
        v = h - s
    torch.testing.assert_close(g["1.weight"], dW, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("chunk,calls", [(1, 5), (2, 3)])
def test_one_dropout_mask_for_all_steps_under_sltt(chunk, calls):
    model = _mlp(beta=0.7, dropout=0.5, dtype=torch.float32)
    masks = []
    model[3].register_forward_hook(lambda mod, inp, out: masks.append(out[1]))  # Dropout -> (y, mask)
    x, y = _data(T=5, dtype=torch.float32)
    SLTT(chunk).forward_backward(model, x, y, TET())
    assert len(masks) == calls and (masks[0] == 0).any() and (masks[0] != 0).any()
    assert all(torch.equal(m, masks[0]) for m in masks)


def test_batchnorm_normalises_each_step_under_sltt():
    """Per step: BatchNorm's running mean follows T momentum updates with each step's own batch mean."""
    torch.manual_seed(0)
    model = Sequential(Linear(3, 4), BatchNorm1d(4), LIF(beta=0.5), Linear(4, 2), LIF(beta=0.5)).double()
    x, y = _data(T=4)
    x = x.flatten(2)[..., :3]
    with torch.no_grad():
        pre = model[0](x)  # the BN input of every step (the first layer sees no state)
    expected = torch.zeros(4, dtype=torch.float64)
    for t in range(4):
        expected = 0.9 * expected + 0.1 * pre[t].mean(0)
    SLTT().forward_backward(model, x, y % 2, TET())
    torch.testing.assert_close(model[1].running_mean, expected)


# ------------------------------------------------- (c) saved-for-backward bytes: constant for SLTT, linear BPTT


def _peak_saved_bytes(method, T):
    # conv · BN · LIF · pool · dropout · linear · BN · LIF · dropout · linear · LIF (every kind of layer)
    cfg = ModelConfig(input_shape=(2, 8, 8), channels=(3,), kernel_size=3, hidden=(8,), batch_norm=True,
                      dropout=0.2, num_classes=4)
    model = build_model(cfg, NeuronConfig(beta=0.6))
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(T, 2, 2, 8, 8, generator=g) < 0.3).float()
    y = torch.tensor([0, 1])
    with SavedTensorMeter() as meter:
        method.forward_backward(model, x, y, TET())
    assert meter.live_bytes == 0, "every saved tensor is released once the method returns"
    return meter.peak_bytes


def test_saved_tensor_bytes_constant_in_T_for_sltt_linear_for_bptt():
    sltt = [_peak_saved_bytes(SLTT(), T) for T in (4, 16, 64)]
    bptt = [_peak_saved_bytes(BPTT(), T) for T in (4, 16, 64)]
    assert sltt[0] > 0 and sltt[0] == sltt[1] == sltt[2]
    # BPTT: a fixed part (weights) plus the same number of bytes for every step: exactly affine in T.
    assert bptt[1] - bptt[0] > 0
    assert bptt[2] - bptt[1] == 4 * (bptt[1] - bptt[0])
    assert bptt[2] > 10 * sltt[2]


def test_sltt_k_saved_bytes_constant_in_T():
    peaks = [_peak_saved_bytes(SLTTK(k=2, generator=torch.Generator().manual_seed(0)), T) for T in (4, 16, 64)]
    assert peaks[0] == peaks[1] == peaks[2]


def _conv_model():
    cfg = ModelConfig(input_shape=(2, 8, 8), channels=(3,), kernel_size=3, hidden=(8,), dropout=0.2, num_classes=4)
    return build_model(cfg, NeuronConfig(beta=0.6))


def test_chunked_sltt_holds_one_chunk_whatever_T():
    # batch 32 on CPU: chunks of CHUNK_SAMPLES / 32 = 4 steps; the bytes held are one chunk's, for any T
    model = _conv_model()
    assert sltt_chunk(model, torch.zeros(64, 32, 2, 8, 8)) == 4

    def peak(method, T):
        g = torch.Generator().manual_seed(T)
        x = (torch.rand(T, 32, 2, 8, 8, generator=g) < 0.3).float()
        with SavedTensorMeter() as meter:
            out = method.forward_backward(model, x, torch.arange(32) % 4, TET())
        assert meter.live_bytes == 0
        return meter.peak_bytes, out.backward_passes

    chunked = [peak(SLTT(None), T) for T in (8, 32, 128)]
    assert [p for _, p in chunked] == [2, 8, 32]
    assert chunked[0][0] == chunked[1][0] == chunked[2][0] > 0
    per_step, _ = peak(SLTT(1), 32)
    bptt, _ = peak(BPTT(), 32)
    assert per_step < chunked[0][0] < bptt / 4


def _input_conversions(method, model, x, y, loss):
    """``method``'s output and gradients on ``x``, and the shapes of the integer → float copies made meanwhile."""
    torch.manual_seed(0)  # the same dropout mask (and SLTT-K's drawn steps) for either input
    with IntToFloatCopies() as copies:
        out, grads = _run(method, model, x, y, loss)
    return out, grads, copies.shapes


@pytest.mark.parametrize("make, steps", [
    (lambda: SLTT(1), [1] * 12), (lambda: SLTT(None), [4] * 3), (lambda: SLTTK(2, time_chunk=4), None),
    (lambda: BPTT(), [4] * 3),
])
def test_a_compact_batch_trains_as_its_float_copy_converted_a_call_at_a_time(make, steps):
    """Long sequences: the Trainer hands the methods a FrameLoader's uint8 counts (a quarter of the float32 batch's
    bytes); each method converts only the steps of one call to float32 (SLTT one step, chunks of 4 at batch 32 on
    CPU; BPTT's chunks too), and loss, outputs and gradients are exactly the float32 batch's."""
    cfg = ModelConfig(input_shape=(2, 8, 8), channels=(3,), kernel_size=3, hidden=(8,), dropout=0.2, num_classes=4,
                      readout="membrane")
    model = build_model(cfg, NeuronConfig(beta=0.6, v_th=0.3))
    g = torch.Generator().manual_seed(3)
    counts = torch.randint(0, 3, (12, 32, 2, 8, 8), generator=g, dtype=torch.uint8)
    y = torch.arange(32) % 4
    ref, ref_grads, none = _input_conversions(make(), model, counts.float(), y, TET())
    out, grads, shapes = _input_conversions(make(), model, counts, y, TET())
    assert none == [] and ref.out_seq.abs().sum() > 0
    assert out.loss == ref.loss and torch.equal(out.out_seq, ref.out_seq) and out.backward_passes == ref.backward_passes
    assert grads.keys() == ref_grads.keys() and all(torch.equal(grads[n], ref_grads[n]) for n in grads)
    assert all(s[1:] == (32, 2, 8, 8) for s in shapes) and sum(s[0] for s in shapes) == 12  # every step once
    if steps is not None:
        assert [s[0] for s in shapes] == steps
    else:  # SLTT-K: the drawn steps one at a time, the forward-only stretches between them in chunks of 4 at most
        assert max(s[0] for s in shapes) <= 4 and len(shapes) > 3


class _Unaware(torch.nn.Module):
    """A stateful layer that does not declare it honours no_temporal_grad."""

    stateful = True

    def forward(self, x_seq, state=None):
        return x_seq, state


def test_sltt_runs_one_step_at_a_time_where_chunks_would_not_be_exact():
    x = torch.zeros(16, 32, 2, 8, 8)
    model = _conv_model()
    assert sltt_chunk(model, x) == 4
    assert sltt_chunk(Sequential(*model, _Unaware()), x) == 1  # unknown stateful layer: detach between steps
    bn = build_model(ModelConfig(input_shape=(2, 8, 8), channels=(3,), kernel_size=3, hidden=(8,), batch_norm=True,
                                 num_classes=4), NeuronConfig())
    assert sltt_chunk(bn.train(), x) == 1  # BatchNorm statistics per step
    assert sltt_chunk(bn.eval(), x) == 4
    assert sltt_chunk(model, torch.zeros(16, 256, 2, 8, 8)) == 1  # a batch fills a chunk by itself
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match=f"time_chunk must be a whole number of time steps >= 1, got {bad!r}"):
            SLTT(bad).forward_backward(model, x, torch.zeros(32, dtype=torch.long), TET())


def test_chunked_and_per_step_sltt_give_the_same_conv_gradients():
    model = _conv_model().double()
    with torch.no_grad():  # larger weights, so that every layer spikes
        for p in model.parameters():
            p.mul_(4.0 if p.dim() > 1 else 1.0)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(10, 32, 2, 8, 8, generator=g) < 0.4).double()
    y = torch.arange(32) % 4
    torch.manual_seed(1)
    out_c, g_c = _run(SLTT(None), model, x, y, SLTTMix())
    torch.manual_seed(1)  # the same dropout mask
    out_s, g_s = _run(SLTT(1), model, x, y, SLTTMix())
    assert out_c.backward_passes == 3 and out_s.backward_passes == 10
    assert torch.equal(out_c.out_seq, out_s.out_seq) and out_c.out_seq.sum() > 0
    _assert_grads_close(g_c, g_s)


# --------------------------------------------------------------------------------------------- (d) SLTT-K


@pytest.mark.parametrize("chunk,passes", [(1, 6), (None, 1)], ids=["per_step", "auto_chunk"])
def test_sltt_k_with_k_equal_T_equals_sltt(chunk, passes):
    model = _mlp(beta=0.7, dropout=0.3)
    x, y = _data(T=6)
    torch.manual_seed(3)
    out_s, g_s = _run(SLTT(chunk), model, x, y, SLTTMix())
    method = SLTTK(k=6, generator=torch.Generator().manual_seed(0), time_chunk=chunk)  # leaves the global RNG
    torch.manual_seed(3)
    out_k, g_k = _run(method, model, x, y, SLTTMix())
    assert method.last_steps == tuple(range(6))
    assert out_k.backward_passes == out_s.backward_passes == passes
    assert out_k.loss == out_s.loss
    assert torch.equal(out_k.out_seq, out_s.out_seq)
    for k in g_s:
        assert torch.equal(g_k[k], g_s[k]), k


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("chunk", [1, None], ids=["per_step", "forward_only_chunks"])
def test_sltt_k_makes_exactly_k_backward_passes(k, chunk):
    T = 8
    model = _mlp(beta=0.7, dropout=0.3)
    x, y = _data(T=T)
    calls = []
    model[1].weight.register_hook(lambda g: calls.append(1))  # fires once per backward pass
    method = SLTTK(k=k, generator=torch.Generator().manual_seed(k), time_chunk=chunk)
    torch.manual_seed(4)
    out, g_k = _run(method, model, x, y, TET())
    assert out.backward_passes == k and len(calls) == k and len(method.last_steps) == k
    # Gradients: only the drawn steps, still scaled by 1/T; the state advanced through every step.
    g_ref = _detached_model_grads(model, x, y, TET(), steps=set(method.last_steps), seed=4)
    _assert_grads_close(g_k, g_ref)
    torch.manual_seed(4)
    out_all, _ = _run(SLTT(), model, x, y, TET())
    assert torch.equal(out.out_seq, out_all.out_seq)
    assert out.loss == pytest.approx(out_all.loss, rel=1e-12)  # the loss reported is over all T steps


def test_sltt_k_on_a_gpu_runs_forward_only_steps_in_bounded_chunks():
    from neurosim.training.sltt import GPU_FORWARD_SAMPLES, _auto_forward_chunk

    on_gpu = torch.empty(50, 32, 6, device="meta")  # only the device and shape are read
    assert _auto_forward_chunk(_mlp(), on_gpu, drawn=True) == GPU_FORWARD_SAMPLES // 32  # 32 steps, not 1 per call
    assert _auto_forward_chunk(_mlp(), torch.empty(8, 32, 6, device="meta"), drawn=True) == 8
    assert _auto_forward_chunk(_mlp(), on_gpu, drawn=False) == 1  # k >= T: plain SLTT
    bn = Sequential(Flatten(), Linear(6, 4), BatchNorm1d(4), LIF(beta=0.5))
    assert _auto_forward_chunk(bn.train(), on_gpu, drawn=True) == 1  # batch statistics per step


@pytest.mark.parametrize("tuned", [True, False])
def test_sltt_k_auto_chunks_forward_only_steps_only_with_the_tuned_allocator(monkeypatch, tuned):
    import neurosim.training.sltt as sltt_module

    monkeypatch.setattr(sltt_module, "cpu_allocator_tuned", lambda: tuned)
    T = 12
    model = _mlp(beta=0.7, dropout=0.3)
    x, y = _data(T=T)
    calls = []
    hook = model.register_forward_pre_hook(lambda m, args: calls.append(args[0].shape[0]))  # steps per call
    method = SLTTK(k=2, generator=torch.Generator().manual_seed(5))
    assert method.time_chunk == "auto"
    torch.manual_seed(6)
    out, g = _run(method, model, x, y, TET())
    hook.remove()
    assert sum(calls) == T and out.backward_passes == 2
    assert len(calls) == (T if not tuned else len(sltt_module._segments(T, set(method.last_steps), T)))
    if tuned:
        assert max(calls) > 1
    ref = SLTTK(k=2, generator=torch.Generator().manual_seed(5), time_chunk=1)
    torch.manual_seed(6)
    out_ref, g_ref = _run(ref, model, x, y, TET())
    assert ref.last_steps == method.last_steps
    _assert_grads_close(g, g_ref)
    torch.testing.assert_close(out.out_seq, out_ref.out_seq)


def test_sltt_k_rejects_an_unknown_time_chunk_word():
    with pytest.raises(ValueError, match="time_chunk must be a whole number of steps, None or 'auto', got 'fast'"):
        SLTTK(k=2, time_chunk="fast")


def test_sltt_k_larger_than_T_trains_every_step():
    model = _mlp()
    x, y = _data(T=3)
    # k > T is most likely a mistake (train.k = 30 with data.time_steps = 10 ran as SLTT, silently): said once
    method = SLTTK(k=10, time_chunk=1)
    with pytest.warns(RuntimeWarning, match=r"SLTT-K: k = 10 is more than the batch's T = 3 time steps, so every "
                                            r"step gets a backward pass: this is SLTT \(train.method = 'sltt'\)"):
        out = method.forward_backward(model, x, y, TET())
    assert out.backward_passes == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert method.forward_backward(model, x, y, TET()).backward_passes == 3  # said once, not every batch
        assert SLTTK(k=3, time_chunk=1).forward_backward(model, x, y, TET()).backward_passes == 3  # k = T: no warning


def test_sltt_k_draws_from_the_global_rng_by_default():
    x, y = _data(T=10)
    m = SLTTK(k=3)
    torch.manual_seed(0)
    m.forward_backward(_mlp(), x, y, TET())
    first = m.last_steps
    torch.manual_seed(0)
    m.forward_backward(_mlp(), x, y, TET())
    assert m.last_steps == first


# --------------------------------------------------------------------------------- registry, errors, presets


def test_methods_are_registered_and_built_from_config():
    assert {"sltt", "sltt_k"} <= METHODS.keys()
    assert isinstance(get_method("sltt"), SLTT)
    method = get_method("sltt_k", k=3)
    assert isinstance(method, SLTTK) and method.k == 3
    cfg = RunConfig(train=TrainConfig(method="sltt_k", k=4, loss="tet", device="cpu"))
    trainer = Trainer(_mlp(dtype=torch.float32), cfg, progress=False)
    assert isinstance(trainer.method, SLTTK) and trainer.method.k == 4 and trainer.method.time_chunk == "auto"
    for method, kind in (("sltt", SLTT), ("bptt", BPTT)):  # train.time_chunk reaches the method
        cfg = RunConfig(train=TrainConfig(method=method, time_chunk=3, loss="tet", device="cpu"))
        trainer = Trainer(_mlp(dtype=torch.float32), cfg, progress=False)
        assert isinstance(trainer.method, kind) and trainer.method.time_chunk == 3


def test_non_decomposable_loss_is_a_clear_error():
    x, y = _data(T=3)
    with pytest.raises(ValueError, match="tet.*sltt_mix"):
        SLTT().forward_backward(_mlp(), x, y, RateCE())
    with pytest.raises(ValueError, match="x_seq must be time-first"):
        SLTT().forward_backward(_mlp(), torch.zeros(3), y, TET())


@pytest.mark.parametrize("method", [BPTT(), SLTT(), SLTTK(k=1)], ids=["bptt", "sltt", "sltt_k"])
def test_every_method_names_a_bad_batch(method):
    x, y = _data(T=3)
    name = {"bptt": "BPTT", "sltt": "SLTT", "sltt_k": "SLTT-K"}[method.name]
    with pytest.raises(ValueError, match=rf"{name}: x_seq \(0, .*\) has no time steps"):
        method.forward_backward(_mlp(), x[:0], y, TET())
    with pytest.raises(ValueError, match=rf"{name}: y must hold one integer class per sample, shape \[B\]"):
        method.forward_backward(_mlp(), x, y[:-1], TET())
    with pytest.raises(ValueError, match="got torch.float32"):
        method.forward_backward(_mlp(), x, y.float(), TET())
    # batch-first [B, T, ...] (a DataLoader's default collate of [T, ...] samples): y fits dim 0, not dim 1
    with pytest.raises(ValueError, match=r"shape \[B\] = \(3,\) for x_seq \(5, 3, 2, 3\), got torch.int64 \(5,\); "
                                         r"x_seq looks batch-first \[B, T, \.\.\.\] .* neurosim is time-first "
                                         r"\[T, B, \.\.\.\]: pass x_seq.transpose\(0, 1\)"):
        method.forward_backward(_mlp(), x.transpose(0, 1), y, TET())
    with pytest.raises(ValueError, match=r"for a single time step \[B, \.\.\.\], x_seq\[None\]"):
        method.forward_backward(_mlp(), x[0], y, TET())  # [B, 2, 3] read as [T = B, 2, 3]


@pytest.mark.parametrize("method", [BPTT(), SLTT(), SLTTK(k=1)], ids=["bptt", "sltt", "sltt_k"])
def test_every_method_names_targets_on_another_device(method):
    # (meta stands in for a GPU) the loss raised torch's "Tensor on device cpu is not on the expected device meta!"
    x, y = _data(T=3)
    name = {"bptt": "BPTT", "sltt": "SLTT", "sltt_k": "SLTT-K"}[method.name]
    with pytest.raises(ValueError, match=rf"{name}: y is on meta but x_seq is on cpu: pass y.to\(x_seq.device\)"):
        method.forward_backward(_mlp(), x, y.to("meta"), TET())


@pytest.mark.parametrize("k", [0, -1, 1.5, True])
def test_bad_k_is_a_clear_error(k):
    with pytest.raises(ValueError, match="integer k >= 1"):
        SLTTK(k=k)


@pytest.mark.parametrize("name, option, hint", [("sltt_k", "K", "k=4"), ("sltt_k", "time_chunks", "time_chunk=4"),
                                                ("sltt", "chunk", "time_chunk=4"),
                                                ("bptt", "generator", "get_method('sltt_k', generator=4)"),
                                                ("sltt_k", "lr", None)])
def test_get_method_names_an_option_the_method_does_not_take(name, option, hint):
    # get_method("sltt_k", K=4) built SLTT-K with the default k = 2, silently: the factories swallowed every keyword
    with pytest.raises(TypeError, match=rf"training method {name!r} takes no option {option!r}; its options: ") as err:
        get_method(name, **{option: 4})
    assert ("did you mean" in str(err.value)) == (hint is not None)
    if hint:
        assert str(err.value).endswith(f"did you mean {hint}?")


@pytest.mark.parametrize("name", ["sltt", "bptt"])
def test_get_method_refuses_k_where_the_method_draws_no_steps(name):
    # get_method("sltt", k=4) built plain SLTT, every step with a backward pass, silently (the factory took k because
    # the Trainer passed train.k to every method); the config path warns of it, get_method now refuses it like any
    # option the method does not take, pointing at the method that takes it
    with pytest.raises(TypeError, match=rf"training method {name!r} takes no option 'k'; its options: time_chunk; "
                                        r"did you mean get_method\('sltt_k', k=4\)\?"):
        get_method(name, k=4)


@pytest.mark.parametrize("name", ["sltt", "bptt", "sltt_k"])
def test_a_config_s_train_k_and_time_chunk_go_to_the_methods_that_take_them(name):
    from types import SimpleNamespace

    from neurosim.training.methods import configured_method

    method = configured_method(SimpleNamespace(method=name, k=3, time_chunk=None))  # as the Trainer builds it
    assert method.name == name and (name != "sltt_k" or method.k == 3)


def test_a_config_s_options_reach_a_registered_factory_that_names_them_or_takes_any():
    from types import SimpleNamespace

    from neurosim.training.methods import configured_method

    got = {}

    def both(k=None, time_chunk=None):
        got["both"] = (k, time_chunk)
        return BPTT(time_chunk)

    def chunk_only(time_chunk=None):
        got["chunk"] = time_chunk
        return BPTT(time_chunk)

    def any_options(**options):
        got["any"] = options
        return BPTT()

    register_method("_test_k", both)
    register_method("_test_chunk", chunk_only)
    register_method("_test_any", any_options)
    try:
        for name in ("_test_k", "_test_chunk", "_test_any"):
            assert isinstance(configured_method(SimpleNamespace(method=name, k=5, time_chunk=7)), BPTT)
    finally:
        del METHODS["_test_k"], METHODS["_test_chunk"], METHODS["_test_any"]
    assert got == {"both": (5, 7), "chunk": 7, "any": {"k": 5, "time_chunk": 7}}
    with pytest.raises(ValueError, match="unknown training method 'nope'"):
        configured_method(SimpleNamespace(method="nope", k=2, time_chunk=None))


def test_get_method_checks_a_registered_factory_s_options_too():
    register_method("_test_plain", lambda time_chunk=None, k=None: BPTT(time_chunk))
    register_method("_test_open", lambda **options: BPTT())
    try:
        with pytest.raises(TypeError, match=r"'_test_plain' takes no option 'lr'; its options: k, time_chunk"):
            get_method("_test_plain", lr=1)
        assert isinstance(get_method("_test_open", lr=1), BPTT)  # a factory taking **options takes anything
    finally:
        del METHODS["_test_plain"], METHODS["_test_open"]


def test_under_no_grad_sltt_only_runs_forward():
    x, y = _data(T=4)
    with torch.no_grad():
        out = run_online(_mlp(), x, y, TET())
    assert out.backward_passes == 0 and out.out_seq.shape == (4, 5, 4)


def test_paper_preset():
    # λ = 1 − 1/τ with τ = 1.1 → 1/11.
    assert paper_beta() == pytest.approx(1 / 11)
    assert paper_beta(1.0) == 0.0
    with pytest.raises(ValueError, match="tau must be >= 1"):
        paper_beta(0.5)
    assert PAPER_NEURON.beta == pytest.approx(1 / 11)
    assert (PAPER_NEURON.surrogate, PAPER_NEURON.surrogate_alpha) == ("triangle", 1.0)
    assert (PAPER_NEURON.reset, PAPER_NEURON.v_th, PAPER_NEURON.reset_timing) == ("subtract", 1.0, "immediate")
    lif = LIF(**paper_lif_kwargs())
    assert float(lif.beta) == pytest.approx(1 / 11) and lif.surrogate.name == "triangle"
    cfg = paper_config()
    assert cfg.neuron.beta == pytest.approx(PAPER_NEURON.beta)
    assert (cfg.neuron.surrogate, cfg.neuron.surrogate_alpha, cfg.neuron.reset) == ("triangle", 1.0, "subtract")
    assert (cfg.train.method, cfg.train.loss, cfg.train.loss_lambda) == ("sltt", "sltt_mix", 0.05)


@pytest.mark.parametrize("name", ["sltt_paper", "sltt_k_nmnist"])
def test_shipped_sltt_configs_load_and_build(name):
    cfg = load_config(CONFIGS / f"{name}.toml")
    model = build_model(cfg.model, cfg.neuron)
    out, _ = model(torch.zeros(2, 1, *cfg.model.input_shape))
    assert out.shape == (2, 1, cfg.model.num_classes)
    if name == "sltt_k_nmnist":
        assert cfg.train.method == "sltt_k" and 1 <= cfg.train.k < cfg.data.time_steps


# ------------------------------------------- the single-step LIF path (lif_scan with T = 1) that SLTT runs on


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("detach_reset", [False, True])
@pytest.mark.parametrize("surrogate", ["atan", "triangle", "sigmoid"])
def test_one_step_at_a_time_with_carried_graph_equals_full_scan(reset, detach_reset, surrogate):
    """T calls with T = 1, state carried *with* its graph, == one scan: forward, membrane and every gradient
    (input, initial state, learnable β), including gradients through the carried state and the recorded h."""
    g = torch.Generator().manual_seed(7)
    x = (torch.rand(6, 3, 4, generator=g, dtype=torch.float64) * 1.4).requires_grad_()
    v0 = torch.rand(3, 4, generator=g, dtype=torch.float64).requires_grad_()
    beta = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    p = LIFParams(beta=beta, reset=reset, detach_reset=detach_reset, surrogate=Surrogate(surrogate))
    w_s, w_h = torch.rand(6, 3, 4, generator=g, dtype=torch.float64), torch.rand(6, 3, 4, generator=g,
                                                                                 dtype=torch.float64)

    def loss_of(s, h, v):
        return (s * w_s).sum() + (h * w_h).sum() + (v ** 2).sum()

    s_full, st = lif_scan(x, p, LIFState(v0), record_membrane=True, backend="fused")
    ref = torch.autograd.grad(loss_of(s_full, st.v_seq, st.v), (x, v0, beta))
    state, ss, hs = LIFState(v0), [], []
    for t in range(6):
        s_t, state = lif_scan(x[t:t + 1], p, state, record_membrane=True)
        ss.append(s_t)
        hs.append(state.v_seq)
    s_steps, h_steps = torch.cat(ss), torch.cat(hs)
    assert torch.equal(s_steps, s_full) and s_full.sum() > 0
    torch.testing.assert_close(h_steps, st.v_seq)
    got = torch.autograd.grad(loss_of(s_steps, h_steps, state.v), (x, v0, beta))
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("detach_reset", [False, True])
def test_single_step_matches_reference_backend(reset, detach_reset):
    g = torch.Generator().manual_seed(3)
    x = (torch.rand(1, 4, 5, generator=g, dtype=torch.float64) * 1.6).requires_grad_()
    v0 = (torch.rand(4, 5, generator=g, dtype=torch.float64) * 0.5).requires_grad_()
    beta = torch.tensor(0.6, dtype=torch.float64, requires_grad=True)
    outs = {}
    for backend in ("auto", "reference"):  # auto takes the single-step path for T = 1
        p = LIFParams(beta=beta, reset=reset, detach_reset=detach_reset, surrogate=Surrogate("triangle"))
        s, st = lif_scan(x, p, LIFState(v0), record_membrane=True, backend=backend)
        w = torch.Generator().manual_seed(9)
        loss = sum((o * torch.rand(o.shape, generator=w, dtype=torch.float64)).sum() for o in (s, st.v, st.v_seq))
        outs[backend] = (s, st.v, st.v_seq, *torch.autograd.grad(loss, (x, v0, beta)))
    assert outs["auto"][0].sum() > 0
    for a, b in zip(outs["auto"], outs["reference"]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------------------------ (e) SLTT learns


def _rate_coded_batches(n_batches, B=32, T=8, seed=0):
    """4 classes; class c fires channels 6c…6c+5 of 24 at 60 %, the rest at 10 % (Bernoulli per step)."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n_batches):
        y = torch.randint(0, 4, (B,), generator=g)
        rate = torch.full((B, 24), 0.1)
        for i, c in enumerate(y.tolist()):
            rate[i, 6 * c:6 * c + 6] = 0.6
        x = (torch.rand(T, B, 24, generator=g) < rate).float()
        batches.append((x, y))
    return batches


@pytest.mark.parametrize("method", ["sltt", "sltt_k"])
def test_sltt_learns_synthetic_task(method):
    torch.manual_seed(0)
    model = Sequential(Linear(24, 32), LIF(**paper_lif_kwargs()), Linear(32, 4), LI(paper_beta()))
    cfg = RunConfig(seed=0, train=TrainConfig(method=method, k=3, epochs=4, loss="sltt_mix", optimizer="adam",
                                              lr=1e-2, device="cpu"))
    trainer = Trainer(model, cfg, progress=False)
    history = trainer.fit(_rate_coded_batches(12, seed=1), _rate_coded_batches(4, seed=2), resume=False)
    assert history[-1]["test_acc"] > 0.8  # chance is 0.25
    expected = 12 * (8 if method == "sltt" else 3)
    assert history[-1]["backward_passes"] == expected


class _Leak(torch.nn.Module):
    """A user's stateful layer that does not declare ``cuts_temporal_grad``."""

    stateful = True

    def forward(self, x_seq, state=None):
        v = torch.zeros_like(x_seq[0]) if state is None else state
        out = []
        for x in x_seq:
            v = 0.9 * v + x
            out.append(v)
        return torch.stack(out), v


@pytest.mark.parametrize("case", ["batch_norm", "unmarked_state"])
def test_an_explicit_time_chunk_that_would_change_the_gradients_runs_one_step_per_call(case):
    torch.manual_seed(0)
    if case == "batch_norm":
        base = Sequential(Flatten(), Linear(6, 12, bias=False), BatchNorm1d(12), LIF(**paper_lif_kwargs()),
                          Linear(12, 4), LI(0.0))
    else:
        base = Sequential(Flatten(), Linear(6, 4), _Leak())
    x, y = _data(T=6)
    base = base.to(x.dtype)

    def grads(method):
        model = copy.deepcopy(base)
        method.forward_backward(model, x, y, SLTTMix())
        return _grads(model), [b.clone() for b in model.buffers()]

    exact, buffers = grads(SLTT(1))
    with pytest.warns(RuntimeWarning, match="time_chunk = 3 runs one step per call instead"):
        chunked, chunked_buffers = grads(SLTT(3))
    _assert_grads_close(chunked, exact)
    assert all(torch.equal(a, b) for a, b in zip(chunked_buffers, buffers))  # BatchNorm statistics per step
    if case == "batch_norm":  # BPTT: BatchNorm over all T·B samples, so the whole sequence in one call
        _, whole = _run(BPTT(6), copy.deepcopy(base), x, y, TET())
        with pytest.warns(RuntimeWarning, match="time_chunk = 2 runs all 6 steps in one call instead"):
            _, chunked = _run(BPTT(2), copy.deepcopy(base), x, y, TET())
        _assert_grads_close(chunked, whole)


def test_the_papers_tau_of_one_and_a_plain_linear_readout_build_through_the_public_api():
    cfg = paper_config(["neuron.beta=0.0", "model.readout_beta=0.0", "train.loss_target=onehot"])
    model = build_model(cfg.model, cfg.neuron)
    lifs = [m for m in model.modules() if isinstance(m, LIF)]
    assert lifs and all(float(m.beta) == 0.0 for m in lifs) and [m.beta for m in model.modules()
                                                                if isinstance(m, LI)] == [0.0]
    assert cfg.train.grad_clip is None  # the official code clips nothing
    loss = get_loss(cfg.train.loss, cfg.train.loss_lambda, cfg.train.loss_target)
    assert (loss.lam, loss.target) == (0.05, "onehot")
    with pytest.raises(ConfigError, match="train.loss_target: must be one of"):
        paper_config(["train.loss_target=zeros"])


class _Recurrent(torch.nn.Module):
    """A hand-written recurrent SNN: its own forward feeds the hidden spikes back through a Linear."""

    def __init__(self):
        super().__init__()
        self.inp, self.rec = torch.nn.Linear(6, 8), torch.nn.Linear(8, 8, bias=False)
        self.lif, self.fc, self.out = LIF(beta=0.9, v_th=0.5), torch.nn.Linear(8, 4), LI(0.8)

    def forward(self, x_seq, state=None):
        state = state or {}
        x_seq = x_seq.flatten(2)  # [T, B, 6]
        s, lif, li, outs = state.get("s", x_seq.new_zeros(x_seq.shape[1], 8)), state.get("lif"), state.get("out"), []
        for x in x_seq:
            spikes, lif = self.lif((self.inp(x) + self.rec(s))[None], lif)
            s = spikes[0]
            o, li = self.out(self.fc(spikes), li)
            outs.append(o[0])
        return torch.stack(outs), {"s": s, "lif": lif, "out": li}


def test_a_model_whose_own_forward_carries_state_runs_sltt_one_step_per_call():
    torch.manual_seed(0)
    base = _Recurrent().double()
    x, y = _data(T=6, scale=2.0)

    def grads(method):
        model = copy.deepcopy(base)
        method.forward_backward(model, x, y, TET())
        return _grads(model)

    exact = grads(SLTT(1))
    with pytest.warns(RuntimeWarning, match=r"time_chunk = 3 runs one step per call instead: the model \(_Recurrent\) "
                                            r"has its own forward and does not declare cuts_temporal_grad = True"):
        chunked = grads(SLTT(3))
    _assert_grads_close(chunked, exact)  # a chunk of 3 steps kept the feedback's gradient through time: 2.5 % off
    assert sltt_chunk(base, torch.zeros(16, 32, 2, 3)) == 1
    declared = type("Declared", (_Recurrent,), {"cuts_temporal_grad": True})()  # the author's word that it is exact
    assert sltt_chunk(declared, torch.zeros(16, 32, 2, 3)) == 4
    # neurosim's Sequential (what build_model and from_snntorch give) keeps its chunks; a subclass that writes its
    # own forward must declare it again
    x_conv = torch.zeros(16, 32, 2, 8, 8)
    assert sltt_chunk(_conv_model(), x_conv) == 4
    mlp = build_model(ModelConfig(kind="mlp", input_shape=(2, 8, 8), hidden=(8,), num_classes=4), NeuronConfig())
    assert sltt_chunk(mlp, x_conv) == 4
    class Own(Sequential):
        def forward(self, x_seq, state=None):
            return super().forward(x_seq, state)

    assert sltt_chunk(Own(*_conv_model()), x_conv) == 1
    assert sltt_chunk(type("Plain", (Sequential,), {})(*_conv_model()), x_conv) == 4


def test_sltt_k_chunks_its_forward_only_steps_for_any_model_unless_that_changes_their_values():
    """SLTT-K's chunks hold only forward-only steps (its backward steps run one per call), so a hand-written model
    keeps them (no graph: nothing to cut); BatchNorm in training mode does not (per-step statistics)."""
    torch.manual_seed(0)
    base = _Recurrent().double()
    x, y = _data(T=8, scale=2.0)

    def run(model, chunk):
        method = SLTTK(k=2, generator=torch.Generator().manual_seed(3), time_chunk=chunk)
        out = method.forward_backward(model, x, y, TET())
        return out, _grads(model)

    exact_out, exact = run(copy.deepcopy(base), 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "runs one step per call" warning
        chunked_out, chunked = run(copy.deepcopy(base), 4)
    _assert_grads_close(chunked, exact)
    assert torch.allclose(chunked_out.out_seq, exact_out.out_seq, rtol=0, atol=1e-12)
    bn = Sequential(Flatten(), Linear(6, 12, bias=False), BatchNorm1d(12), LIF(**paper_lif_kwargs()),
                    Linear(12, 4), LI(0.0)).double()
    with pytest.warns(RuntimeWarning, match=r"time_chunk = 4 runs one step per call instead: BatchNorm '2' .* "
                                            r"would change the forward-only steps' values"):
        run(bn, 4)


class _SpikesOnly(torch.nn.Module):
    """snnTorch style: returns the output tensor alone."""

    def __init__(self):
        super().__init__()
        self.fc, self.lif = Linear(6, 4), LIF(beta=0.9)

    def forward(self, x_seq, state=None):
        return self.lif(self.fc(x_seq.flatten(2)), state)[0]


class _NoState(_SpikesOnly):
    """Returns ``(out_seq, state)`` but takes no state argument."""

    def forward(self, x_seq):
        return self.lif(self.fc(x_seq.flatten(2)))


@pytest.mark.parametrize("method", [BPTT(), SLTT(), SLTTK(k=1)], ids=["bptt", "sltt", "sltt_k"])
@pytest.mark.parametrize("T", [2, 3])  # T = 2: a bare [T, B, C] output would unpack along its time axis
def test_a_model_that_does_not_return_out_seq_and_state_is_told_what_to_return(method, T):
    x, y = _data(T=T, dtype=torch.float32)
    name = {"bptt": "BPTT", "sltt": "SLTT", "sltt_k": "SLTT-K"}[method.name]
    with pytest.raises(TypeError, match=rf"{name}: the model must return \(out_seq \[T, B, C\], state\) and accept "
                                        r"state=None, but _SpikesOnly returned a tensor of shape \(\d, 5, 4\).*"
                                        r"neurosim.interop.from_snntorch"):
        method.forward_backward(_SpikesOnly(), x, y, TET())
    if method.name == "bptt":  # one call over the whole sequence: no state to pass
        assert method.forward_backward(_NoState(), x, y, TET()).out_seq.shape == (T, 5, 4)
    else:
        with pytest.raises(TypeError, match=rf"{name}: the model must accept state=None .* _NoState.forward takes "
                                            r"no state argument.*forward\(x_seq \[T, B, \.\.\.\], state=None\)"):
            method.forward_backward(_NoState(), x, y, TET())
    trainer = Trainer(_SpikesOnly(), RunConfig(train=TrainConfig(loss="tet", device="cpu")), progress=False)
    with pytest.raises(TypeError, match=r"evaluate: the model must return \(out_seq \[T, B, C\], state\)"):
        trainer.evaluate([(x, y)])


# ------------------------------------------------------------------------------------------- recurrent layers
def _recurrent_mlp(beta=0.5, feedback=True):
    from neurosim.nn import RLIF

    torch.manual_seed(0)
    net = Sequential(Flatten(), Linear(6, 12), RLIF(12, beta=beta, surrogate="triangle"), Linear(12, 4),
                     LI(0.7 if beta else 0.0)).double()
    with torch.no_grad():
        net[1].weight.mul_(4.0)
        net[2].recurrent.weight.mul_(3.0 if feedback else 0.0)
    return net


@pytest.mark.parametrize("chunk", [4, None], ids=["chunk4", "auto_chunk"])
def test_a_recurrent_model_runs_sltt_in_chunks_with_the_gradients_of_one_step_per_call(chunk):
    """RLIF declares cuts_temporal_grad (it detaches its fed-back spikes under no_temporal_grad), so SLTT may run it
    several steps per call: no warning, and the gradients of the paper's loop (the detached model, step by step)."""
    g_c = _assert_chunks_equal_one_step_per_call(_recurrent_mlp(), chunk)
    assert g_c["2.recurrent.weight"].abs().sum() > 0


def _assert_chunks_equal_one_step_per_call(model, chunk):
    """SLTT with ``chunk`` steps per call (no warning) against one step per call and the paper's loop (the detached
    model, step by step), and SLTT-K with and without chunks; returns the chunked run's gradients."""
    x, y = _data(T=9, B=6)
    assert sltt_chunk(model, x) > 1
    reference = _detached_model_grads(model, x, y, TET())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out_c, g_c = _run(SLTT(chunk), model, x, y, TET())
        out_s, g_s = _run(SLTT(1), model, x, y, TET())
        gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731 — SLTT-K: the same drawn steps for both
        _, g_k1 = _run(SLTTK(3, gen(), time_chunk=1), model, x, y, TET())
        _, g_kc = _run(SLTTK(3, gen(), time_chunk=chunk), model, x, y, TET())
    assert out_c.backward_passes < out_s.backward_passes == 9
    assert torch.equal(out_c.out_seq, out_s.out_seq)
    _assert_grads_close(g_c, reference)
    _assert_grads_close(g_s, reference)
    _assert_grads_close(g_kc, g_k1)
    return g_c


def test_sltt_cuts_the_fed_back_spikes_as_bptt_does_not():
    """With β = 0 (the readout's too) no membrane carries anything across steps: without feedback SLTT's gradient
    is BPTT's, with
    feedback BPTT also differentiates through the spikes fed back, which SLTT cuts."""
    x, y = _data(T=7, B=6)
    for feedback in (False, True):
        model = _recurrent_mlp(beta=0.0, feedback=feedback)
        out_b, g_b = _run(BPTT(), model, x, y, TET())
        out_s, g_s = _run(SLTT(None), model, x, y, TET())
        assert torch.equal(out_b.out_seq, out_s.out_seq) and out_b.out_seq.abs().sum() > 0
        same = all(torch.allclose(g_b[k], g_s[k], rtol=1e-10, atol=1e-12) for k in g_b)
        assert same is not feedback, f"feedback={feedback}"


# ------------------------------------------------------------------------------------ current-based (CUBA) layers
def _cuba_mlp(alpha=0.6, beta=0.5, timing="immediate", learn=True):
    from neurosim.nn import CubaLIF

    torch.manual_seed(0)
    net = Sequential(Flatten(), Linear(6, 12),
                     CubaLIF(alpha=alpha, beta=beta, surrogate="triangle", reset_timing=timing, learn_beta=learn,
                             learn_threshold=learn),
                     Linear(12, 4), LI(0.7 if alpha or beta else 0.0)).double()
    with torch.no_grad():
        net[1].weight.mul_(4.0)
    return net


@pytest.mark.parametrize("timing", ["immediate", "delayed"])
@pytest.mark.parametrize("chunk", [4, None], ids=["chunk4", "auto_chunk"])
def test_a_cuba_model_runs_sltt_in_chunks_with_the_gradients_of_one_step_per_call(chunk, timing):
    """CubaLIF declares cuts_temporal_grad (its current and membrane both enter each step as constants under
    no_temporal_grad), so SLTT runs it several steps per call without a warning, with the gradients of the paper's
    loop (the detached model, step by step); SLTT-K's forward-only chunks leave its gradients as they are."""
    g_c = _assert_chunks_equal_one_step_per_call(_cuba_mlp(timing=timing), chunk)
    assert g_c.keys() == {"1.weight", "1.bias", "2.lif.beta_logit", "2.lif.v_th_param", "3.weight", "3.bias"}
    assert all(g.abs().sum() > 0 for g in g_c.values())


def test_sltt_cuts_the_synaptic_current_as_bptt_does_not():
    """With β = 0 and α = 0 nothing carries across steps and SLTT's gradient is BPTT's; with α > 0 (β still 0) the
    current carries the input to later steps, which BPTT differentiates through and SLTT cuts. (β fixed: a
    learnable β is a sigmoid, 1e-6 at least.)"""
    x, y = _data(T=7, B=6)
    for alpha in (0.0, 0.8):
        model = _cuba_mlp(alpha=alpha, beta=0.0, learn=False)
        out_b, g_b = _run(BPTT(), model, x, y, TET())
        out_s, g_s = _run(SLTT(None), model, x, y, TET())
        assert torch.equal(out_b.out_seq, out_s.out_seq) and out_b.out_seq.abs().sum() > 0
        same = all(torch.allclose(g_b[k], g_s[k], rtol=1e-10, atol=1e-12) for k in g_b)
        assert same is (alpha == 0.0), f"alpha={alpha}"

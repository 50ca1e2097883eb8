"""The CUDA paths: the same spikes, states and gradients on a GPU as on the CPU, for the LIF backends, SLTT, SLTT-K,
BPTT and the Trainer. Skipped where torch sees no CUDA device (the project's CI and development machines)."""

from __future__ import annotations

import pytest
import torch

from neurosim.config import ModelConfig, NeuronConfig, RunConfig, TrainConfig
from neurosim.functional import LIFParams, LIFState, Surrogate, lif_scan, no_temporal_grad
from neurosim.nn import MaxPool2d, build_model
from neurosim.training import BPTT, TET, Trainer
from neurosim.training.sltt import SLTT, SLTTK, sltt_chunk

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA device here; these tests check the GPU code paths where one is")

CUDA = "cuda"


def _model(seed=0):
    torch.manual_seed(seed)
    cfg = ModelConfig(input_shape=(2, 12, 12), channels=(4, 8), kernel_size=3, hidden=(16,), num_classes=4)
    model = build_model(cfg, NeuronConfig(beta=0.7)).double()
    with torch.no_grad():  # larger weights, so that every layer spikes
        for p in model.parameters():
            p.mul_(3.0 if p.dim() > 1 else 1.0)
    return model


def _data(T=6, B=8):
    g = torch.Generator().manual_seed(1)
    return (torch.rand(T, B, 2, 12, 12, generator=g) < 0.3).double(), torch.arange(B) % 4


def _grads(method, model, x, y):
    model.zero_grad(set_to_none=True)
    out = method.forward_backward(model, x, y, TET())
    return out, {n: p.grad.detach().cpu() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("backend", ["fused", "reference"])
@pytest.mark.parametrize("temporal", [True, False], ids=["bptt", "no_temporal_grad"])
def test_lif_scan_on_gpu_equals_cpu(backend, temporal):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(7, 3, 5, generator=g, dtype=torch.float64) * 1.6
    params = LIFParams(beta=0.8, surrogate=Surrogate("triangle"))
    results = []
    for device in ("cpu", CUDA):
        xd = x.to(device).requires_grad_()
        if temporal:
            s, st = lif_scan(xd, params, backend=backend, record_membrane=True)
        else:
            with no_temporal_grad():
                s, st = lif_scan(xd, params, backend=backend, record_membrane=True)
        (gx,) = torch.autograd.grad((s * torch.arange(5, device=device)).sum() + st.v_seq.sum(), xd)
        with torch.no_grad():  # the in-place path without a graph
            s_ng, st_ng = lif_scan(xd, params, LIFState(torch.zeros_like(xd[0])), backend=backend)
        results.append([t.detach().cpu() for t in (s, st.v, gx, s_ng, st_ng.v)])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_maxpool_on_gpu_equals_cpu_with_and_without_grad():
    x = (torch.rand(3, 2, 4, 9, 9) < 0.3).double()
    pool = MaxPool2d(2)
    with torch.no_grad():
        assert torch.equal(pool(x.to(CUDA)).cpu(), pool(x))
    xc, xg = x.clone().requires_grad_(), x.to(CUDA).requires_grad_()
    go = torch.randn(3, 2, 4, 4, 4, dtype=torch.float64)
    (gc,) = torch.autograd.grad(pool(xc), xc, go)
    (gg,) = torch.autograd.grad(pool(xg), xg, go.to(CUDA))
    assert torch.equal(gc, gg.cpu())


@pytest.mark.parametrize("method", [BPTT(), SLTT(), SLTT(time_chunk=3), SLTTK(k=6)],
                         ids=["bptt", "sltt", "sltt_chunk3", "sltt_k_all_steps"])
def test_training_methods_give_the_same_gradients_on_gpu(method):
    x, y = _data()
    model = _model()
    out_c, g_c = _grads(method, model, x, y)
    out_g, g_g = _grads(method, model.to(CUDA), x.to(CUDA), y.to(CUDA))
    assert out_c.out_seq.sum() > 0
    assert torch.equal(out_c.out_seq, out_g.out_seq.cpu())
    assert g_c.keys() == g_g.keys()
    for k in g_c:
        torch.testing.assert_close(g_g[k], g_c[k], rtol=1e-9, atol=1e-12, msg=k)


def test_sltt_runs_one_step_per_call_on_gpu_by_default():
    x, _ = _data()
    assert sltt_chunk(_model().to(CUDA), x.to(CUDA)) == 1


def test_trainer_trains_on_cuda():
    x, y = _data(T=4, B=16)
    batches = [(x[:, i:i + 8].float(), y[i:i + 8]) for i in (0, 8)]  # time-first [T, B, ...], as the loaders give
    model = _model().float()
    cfg = RunConfig(train=TrainConfig(method="sltt", loss="tet", epochs=1, device="cuda"))
    trainer = Trainer(model, cfg, progress=False)
    history = trainer.fit(batches, batches, resume=False)
    assert next(model.parameters()).device.type == "cuda"
    assert history[-1]["train_loss"] > 0


def test_a_cuda_run_resumes_from_its_checkpoint(tmp_path):
    x, y = _data(T=4, B=16)
    batches = [(x[:, i:i + 8].float(), y[i:i + 8]) for i in (0, 8)]
    cfg = RunConfig(train=TrainConfig(method="bptt", loss="tet", epochs=2, device="cuda", optimizer="adam"))
    Trainer(_model().float(), cfg, tmp_path, progress=False).fit(batches, epochs=1, resume=False)
    resumed = Trainer(_model().float(), cfg, tmp_path, progress=False)  # RNG states load onto the CPU they need
    history = resumed.fit(batches)
    assert [m["epoch"] for m in history] == [1, 2]
    assert next(iter(resumed.optimizer.state.values()))["exp_avg"].device.type == "cuda"


def test_rate_encode_gives_the_same_spikes_on_gpu_and_takes_a_cpu_generator():
    from neurosim.data.encoders import rate_encode

    x = torch.rand(4, 6, generator=torch.Generator().manual_seed(0))
    cpu = rate_encode(x, 5, seed=3)
    gpu = rate_encode(x.to(CUDA), 5, seed=3)
    assert gpu.device.type == "cuda" and torch.equal(gpu.cpu(), cpu)
    drawn = rate_encode(x.to(CUDA), 5, method="poisson", generator=torch.Generator().manual_seed(4))
    assert drawn.device.type == "cuda"


def test_sltt_k_with_forward_only_steps_on_gpu_equals_cpu():
    # k < T: the steps without a backward run in GPU_FORWARD_SAMPLES-sized calls on the GPU, one by one on the CPU
    x, y = _data(T=10)
    results = []
    for device in ("cpu", CUDA):
        model = _model().to(device)
        method = SLTTK(k=3, generator=torch.Generator().manual_seed(2))
        out, grads = _grads(method, model, x.to(device), y.to(device))
        results.append((method.last_steps, out.out_seq.cpu(), grads))
    (steps_c, out_c, g_c), (steps_g, out_g, g_g) = results
    assert steps_c == steps_g
    torch.testing.assert_close(out_g, out_c)
    for name in g_c:
        torch.testing.assert_close(g_g[name], g_c[name], msg=name)


def test_hlop_attached_on_cpu_projects_the_gradients_of_a_model_moved_to_gpu():
    from neurosim.continual import HLOP
    from neurosim.nn import LIF, Flatten, Linear, Sequential

    torch.manual_seed(0)
    net = Sequential(Flatten(), Linear(12, 8), LIF(beta=0.5), Linear(8, 4), LIF(beta=0.5))
    hlop = HLOP(net, lr=0.05, seed=0, orthonormalize=True)  # an exact projector
    hlop.begin_task([3, 2])
    with torch.no_grad():
        for _ in range(5):
            net(torch.rand(4, 16, 12) * 2)
            hlop.step()
    hlop.end_task()
    hlop.begin_task([1, 1])  # task 1: gradients are projected from now on
    net.to(CUDA)
    out, _ = net(torch.rand(4, 16, 12, device=CUDA) * 2)
    out.sum().backward()
    w = net[1].weight
    assert w.grad.device.type == "cuda"
    basis = hlop.subspaces["1"].frozen.to(CUDA, w.grad.dtype)
    assert float((w.grad @ basis.T).norm()) < 1e-3 * float(w.grad.norm()) + 1e-6


@pytest.mark.parametrize("connectivity", ["dense", "diagonal"])
@pytest.mark.parametrize("temporal", [True, False], ids=["bptt", "no_temporal_grad"])
def test_recurrent_layer_on_gpu_equals_cpu(connectivity, temporal):
    """RLIF's fused scan (and its backward through time and the recurrent weights) on the GPU, float64."""
    from neurosim.nn import RLIF

    torch.manual_seed(0)
    layer = RLIF(6, beta=0.5, surrogate="triangle", connectivity=connectivity, bias=True).double()
    with torch.no_grad():
        layer.recurrent.weight.mul_(3)
    x = torch.randn(9, 4, 6, dtype=torch.float64)
    results = []
    for device in ("cpu", CUDA):
        layer.to(device)
        xd = x.to(device).requires_grad_()
        if temporal:
            s, state = layer(xd)
        else:
            with no_temporal_grad():
                s, state = layer(xd)
        params = [xd, layer.recurrent.weight, layer.recurrent.bias]
        grads = torch.autograd.grad((s * torch.arange(9, device=device)[:, None, None]).sum(), params)
        results.append([s.detach().cpu(), state.v.detach().cpu(), *(g.cpu() for g in grads)])
    assert results[0][0].sum() > 0
    assert torch.equal(results[0][0], results[1][0])
    for a, b in zip(results[0][1:], results[1][1:]):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)

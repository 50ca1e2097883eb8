"""Spiking models under torch's tracers and transforms: torch.compile, meta and fake tensors, torch.export, torch.func.

Traced and transformed code runs the LIF's reference loop (plain torch ops) instead of the fused scan and its numba
kernels, so results equal eager mode's to rounding: the fused scan computes ``β·v + x`` with one rounding, the
reference with two. Spikes are compared exactly (no membrane of these seeded inputs lies within a rounding of the
threshold), membranes and gradients to rounding.
"""

import pytest
import torch
from torch.func import functional_call, grad, vmap

from neurosim.nn import LI, LIF, RLIF, Conv2d, CubaLIF, Flatten, Linear, MaxPool2d, Sequential

# torch's own tracers call its deprecated torch.jit scripting internally (nothing of neurosim's)
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script:DeprecationWarning")


def _mlp(**lif):
    torch.manual_seed(0)
    return Sequential(Linear(20, 8), LIF(beta=0.9, **lif), Linear(8, 4), LIF(beta=0.8, v_th=0.2, reset="zero", **lif))


def _conv():
    torch.manual_seed(0)
    return Sequential(Conv2d(1, 3, 3, padding=1), LIF(beta=0.9), MaxPool2d(2), Flatten(), Linear(3 * 4 * 4, 5),
                      LIF(beta=0.7, learn_beta=True, learn_threshold=True), Linear(5, 3), LI(0.5))


def _input(*shape):
    return (torch.rand(*shape, generator=torch.Generator().manual_seed(1)) * 3).requires_grad_()


def _run(net, x):
    """Outputs, final states and the gradients of a loss on both, w.r.t. the input and every parameter."""
    out, state = net(x)
    loss = (out * torch.linspace(0.5, 1.5, out.shape[0]).view(-1, *[1] * (out.dim() - 1))).sum()
    loss = loss + sum(s.v.sum() if hasattr(s, "v") else s.sum() for s in state.values())
    grads = torch.autograd.grad(loss, [x, *net.parameters()])
    return out, state, grads


def _assert_same(a, b):
    (out_a, state_a, grads_a), (out_b, state_b, grads_b) = a, b
    torch.testing.assert_close(out_a, out_b)
    assert state_a.keys() == state_b.keys()
    for k in state_a:
        torch.testing.assert_close(getattr(state_a[k], "v", state_a[k]), getattr(state_b[k], "v", state_b[k]))
    for ga, gb in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(ga, gb)


@pytest.mark.parametrize("make, shape", [(_mlp, (6, 3, 20)), (_mlp, (1, 3, 20)), (_conv, (5, 2, 1, 8, 8))],
                         ids=["mlp", "one_step", "conv"])  # T = 1: the single-step path in eager mode
def test_torch_compile_gives_the_eager_outputs_and_gradients(make, shape):
    # the numba kernels got traced stand-ins (0-d arrays for scalars) and failed to type under compile
    net, x = make(), _input(*shape)
    eager = _run(net, x)
    out_eager = eager[0]
    with torch.no_grad():
        first = net[1](net[0](x))[0]
    assert out_eager.abs().sum() > 0 and 0 < float(first.mean()) < 1  # spikes and silences
    compiled = torch.compile(net, backend="eager")
    _assert_same(_run(compiled, x), eager)
    with torch.no_grad():  # the forward without a graph, another path in eager mode
        torch.testing.assert_close(compiled(x.detach())[0], out_eager.detach())


def test_torch_compile_with_inductor():
    net, x = _mlp(), _input(4, 3, 20)
    eager = _run(net, x)
    compiled = torch.compile(net)
    _assert_same(_run(compiled, x), eager)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x.detach())[0], eager[0].detach())


def test_a_model_on_the_meta_device_runs_forward_for_its_shapes():
    # LIF read its buffers with float(): "Tensor.item() cannot be called on meta tensors"
    for net, shape, out_shape, v_shape in ((_mlp(), (6, 3, 20), (6, 3, 4), (3, 8)),
                                           (_conv(), (5, 2, 1, 8, 8), (5, 2, 3), (2, 3, 8, 8)),
                                           (_mlp(reset_timing="delayed"), (1, 3, 20), (1, 3, 4), (3, 8))):
        net = net.to("meta")
        out, state = net(torch.empty(shape, device="meta"))
        assert out.is_meta and (tuple(out.shape), tuple(state["1"].v.shape)) == (out_shape, v_shape)
    with torch.device("meta"):
        lif = LIF(beta=0.9, record_membrane=True)
    s, state = lif(torch.empty(4, 2, 3, device="meta"))
    assert s.shape == state.v_seq.shape == (4, 2, 3) and "beta=<meta>" in repr(lif)


def test_fake_tensor_mode_and_torch_export():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        out, _ = _conv()(torch.empty(5, 2, 1, 8, 8))
    assert out.shape == (5, 2, 3)
    net, x = _mlp().eval(), _input(6, 3, 20).detach()
    exported = torch.export.export(net, (x,))
    torch.testing.assert_close(exported.module()(x)[0], net(x)[0])


def test_torch_func_grad_and_per_sample_gradients_through_vmap():
    net, x = _conv(), _input(5, 3, 1, 8, 8).detach()
    params, buffers = dict(net.named_parameters()), dict(net.named_buffers())

    def loss(p, x_seq):
        out, _ = functional_call(net, {**p, **buffers}, (x_seq,))
        return (out * torch.linspace(0.5, 1.5, out.shape[0]).view(-1, 1, 1)).sum()

    eager = torch.autograd.grad(loss(params, x), list(params.values()))
    g = grad(loss)(params, x)
    for name, ge in zip(params, eager, strict=True):
        torch.testing.assert_close(g[name], ge, msg=name)
    per_sample = vmap(grad(loss), in_dims=(None, 1))(params, x.unsqueeze(2))  # [T, 1, ...] per sample
    for name, ge in zip(params, eager, strict=True):
        torch.testing.assert_close(per_sample[name].sum(0), ge, msg=name)


def test_forward_mode_jacobian_equals_the_reverse_mode_one():
    from neurosim.functional import LIFParams, lif_scan

    x = _input(4, 2, 3).detach().double()
    for reset in ("subtract", "zero"):
        f = lambda x_seq: lif_scan(x_seq, LIFParams(beta=0.9, reset=reset))[0]  # noqa: E731
        jac = torch.func.jacrev(f)(x)
        assert jac.abs().sum() > 0
        torch.testing.assert_close(torch.func.jacfwd(f)(x), jac)


def test_vmap_over_the_batch_equals_the_batched_call():
    # the no-graph forward handed vmap's storage-less tensors to the numba kernels ("data pointer")
    net, x = _conv(), _input(5, 3, 1, 8, 8).detach()
    with torch.no_grad():
        out = vmap(lambda xi: net(xi.unsqueeze(1))[0].squeeze(1), in_dims=1, out_dims=1)(x)
        torch.testing.assert_close(out, net(x)[0])


def test_repr_shows_every_option_set_away_from_its_default():
    assert repr(LIF(beta=0.9)) == ("LIF(beta=0.9, v_th=1, reset='subtract', timing='immediate', "
                                   "surrogate=atan(alpha=2))")
    text = repr(LIF(beta=0.9, detach_reset=True, learn_beta=True, learn_threshold=True, record_membrane=True,
                    backend="reference"))
    assert text.endswith("surrogate=atan(alpha=2), detach_reset=True, learn_beta=True, learn_threshold=True, "
                         "record_membrane=True, backend='reference')")


# ---------------------------------------------------------------------------------------------- recurrent layers
def _recurrent(connectivity):
    torch.manual_seed(0)
    net = Sequential(Linear(20, 8), RLIF(8, beta=0.9, v_th=0.3, connectivity=connectivity), Linear(8, 4), LI(0.5))
    with torch.no_grad():  # excitatory input that would make every neuron fire at every step, inhibitory feedback
        net[0].weight.abs_().mul_(0.1)
        net[1].recurrent.weight.copy_(-torch.rand_like(net[1].recurrent.weight))
    return net


@pytest.mark.parametrize("connectivity", ["dense", "diagonal"])
def test_a_recurrent_layer_compiles_exports_runs_on_meta_and_under_torch_func(connectivity):
    """RLIF's step loop (T calls of its LIF child) traces like any Python loop: torch.compile unrolls it, the
    export holds T copies of the step, torch.func transforms it; every result equals eager mode's."""
    net, x = _recurrent(connectivity), _input(6, 3, 20)
    eager = _run(net, x)
    with torch.no_grad():
        no_feedback = _recurrent(connectivity)
        no_feedback[1].recurrent.weight.zero_()
        assert not torch.equal(no_feedback(x)[0], eager[0])  # the feedback is in play
    compiled = torch.compile(net, backend="eager")
    _assert_same(_run(compiled, x), eager)
    torch.testing.assert_close(compiled(x)[1]["1"].s, eager[1]["1"].s)

    exported = torch.export.export(net, (x.detach(),))
    torch.testing.assert_close(exported.module()(x.detach())[0], eager[0].detach())

    meta = _recurrent(connectivity).to("meta")
    out, state = meta(torch.empty(6, 3, 20, device="meta"))
    assert out.is_meta and out.shape == (6, 3, 4) and state["1"].s.shape == state["1"].v.shape == (3, 8)

    params, _, reference = _torch_func_grads(net, x.detach())
    assert reference[list(params).index("1.recurrent.weight")].abs().sum() > 0


def _torch_func_grads(net, x):
    """Check torch.func's ``grad`` and per-sample ``vmap(grad)`` of a loss on ``net``'s outputs against eager autograd,
    for every parameter; returns ``(params, loss(params, x, buffers=…), eager gradients)``."""
    params, buffers = dict(net.named_parameters()), dict(net.named_buffers())

    def loss(p, x_seq, b=buffers):
        out, _ = functional_call(net, {**p, **b}, (x_seq,))
        return (out * torch.linspace(0.5, 1.5, out.shape[0]).view(-1, 1, 1)).sum()

    reference = torch.autograd.grad(loss(params, x), list(params.values()))
    per_sample = vmap(grad(loss), in_dims=(None, 1))(params, x.unsqueeze(2))  # [T, 1, ...] per sample
    for name, ge in zip(params, reference, strict=True):
        torch.testing.assert_close(grad(loss)(params, x)[name], ge, msg=name)
        torch.testing.assert_close(per_sample[name].sum(0), ge, msg=name)
    return params, loss, reference


# ------------------------------------------------------------------------------------------ current-based layers
def _cuba(timing):
    torch.manual_seed(0)
    return Sequential(Conv2d(1, 3, 3, padding=1), CubaLIF(alpha=0.6, beta=0.9, reset_timing=timing), MaxPool2d(2),
                      Flatten(), Linear(3 * 4 * 4, 5),
                      CubaLIF(alpha=0.5, beta=0.7, learn_beta=True, learn_threshold=True, reset_timing=timing),
                      Linear(5, 3), LI(0.5))


def _cuba_run(net, x):
    """Outputs, final states and the gradients of a loss on the outputs and on both states of the first layer."""
    out, state = net(x)
    loss = (out * torch.linspace(0.5, 1.5, out.shape[0]).view(-1, 1, 1)).sum() + state["1"].i.sum()
    loss = loss + state["1"].lif.v.sum()
    return out, state, torch.autograd.grad(loss, [x, *net.parameters()])


@pytest.mark.parametrize("timing", ["immediate", "delayed"])
def test_a_cuba_layer_compiles_exports_runs_on_meta_and_under_torch_func(timing):
    """CubaLIF is an LI then a LIF, each over the whole sequence: torch.compile, torch.export, meta tensors and
    torch.func (grad, per-sample vmap, and a gradient in α, a buffer, through functional_call) give eager mode's
    results."""
    net, x = _cuba(timing), _input(5, 2, 1, 8, 8)
    out, state, grads = _cuba_run(net, x)
    with torch.no_grad():
        assert 0 < float(net[1](net[0](x))[0].mean()) < 1 and out.abs().sum() > 0
    c_out, c_state, c_grads = _cuba_run(torch.compile(net, backend="eager"), x)
    torch.testing.assert_close(c_out, out)
    torch.testing.assert_close(c_state["1"].i, state["1"].i)
    torch.testing.assert_close(c_state["1"].lif.v, state["1"].lif.v)
    for a, b in zip(c_grads, grads, strict=True):
        torch.testing.assert_close(a, b)

    exported = torch.export.export(_cuba(timing).eval(), (x.detach(),))
    torch.testing.assert_close(exported.module()(x.detach())[0], out.detach())

    meta_out, meta_state = _cuba(timing).to("meta")(torch.empty(5, 2, 1, 8, 8, device="meta"))
    assert meta_out.is_meta and meta_out.shape == (5, 2, 3)
    assert meta_state["1"].i.shape == meta_state["1"].lif.v.shape == (2, 3, 8, 8)

    buffers = dict(net.named_buffers())
    assert "1.syn.beta_value" in buffers  # α: fixed in training, but a buffer functional_call can take
    x = x.detach()
    params, loss, _ = _torch_func_grads(net, x)
    alpha = buffers["1.syn.beta_value"].clone().requires_grad_()
    (eager_alpha,) = torch.autograd.grad(loss(params, x, {**buffers, "1.syn.beta_value": alpha}), alpha)
    d_alpha = grad(lambda a: loss(params, x, {**buffers, "1.syn.beta_value": a}))(buffers["1.syn.beta_value"])
    assert eager_alpha.abs() > 0
    torch.testing.assert_close(d_alpha, eager_alpha)

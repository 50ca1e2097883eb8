"""snnTorch ``RLeaky`` → neurosim ``RLIF``: the same spikes, membranes and BPTT gradients as snnTorch stepped by hand,
SLTT training of the converted model, the trained values back in snnTorch, and every refused option named."""

from __future__ import annotations

import pytest
import torch
from torch import nn

snn = pytest.importorskip("snntorch")
from snntorch import surrogate, utils  # noqa: E402

from neurosim.interop import UnsupportedSnnTorchError, copy_to_snntorch, from_snntorch  # noqa: E402
from neurosim.nn import RLIF  # noqa: E402
from neurosim.training import SLTTMix, get_method  # noqa: E402

# recurrence kinds: dense (all_to_all=True, linear_features), one-to-one with one V for every neuron, one V per neuron
KINDS = ("dense", "shared_v", "per_neuron_v")
# reset mechanisms RLIF reproduces: (reset_mechanism, reset_delay)
RESETS = (("subtract", True), ("none", True), ("zero", False), ("none", False))


def _rleaky(kind: str, n: int, reset=("subtract", True), **kw) -> snn.RLeaky:
    mechanism, delay = reset
    if kind == "dense":
        layer = snn.RLeaky(linear_features=n, reset_mechanism=mechanism, reset_delay=delay, **kw)
        with torch.no_grad():  # strong feedback, so that it changes the spikes
            layer.recurrent.weight.mul_(4)
        return layer
    v = 0.6 if kind == "shared_v" else torch.linspace(-0.8, 0.9, n)
    return snn.RLeaky(all_to_all=False, V=v, reset_mechanism=mechanism, reset_delay=delay, **kw)


def _model(kind: str, reset=("subtract", True), init_hidden=True, seed=0, **kw) -> list[nn.Module]:
    """Linear(5, 8) → RLeaky(8) → Linear(8, 3) → Leaky(3), as a list of layers in execution order."""
    torch.manual_seed(seed)
    return [nn.Linear(5, 8), _rleaky(kind, 8, reset, beta=0.8, threshold=0.7, init_hidden=init_hidden, **kw),
            nn.Linear(8, 3), snn.Leaky(beta=0.9, threshold=0.5, init_hidden=init_hidden)]


def _step_snntorch(layers, x_seq):
    """snnTorch stepped by hand: the RLeaky's spikes and membranes and the last layer's spikes at every step."""
    fc1, rlif, fc2, lif = layers
    if rlif.init_hidden:
        utils.reset(nn.Sequential(*layers))
    else:
        rlif.reset_mem()  # (returns the state from snnTorch 1.0 on, None before: read the attributes)
        lif.reset_mem()
        spk1, mem1, mem2 = rlif.spk, rlif.mem, lif.mem
    hidden, membranes, out = [], [], []
    for x in x_seq:
        if rlif.init_hidden:
            spk1 = rlif(fc1(x))
            mem1 = rlif.mem
            spk2 = lif(fc2(spk1))
        else:
            spk1, mem1 = rlif(fc1(x), spk1, mem1)
            spk2, mem2 = lif(fc2(spk1), mem2)
        hidden.append(spk1)
        membranes.append(mem1)
        out.append(spk2)
    return torch.stack(hidden), torch.stack(membranes), torch.stack(out)


def _input(T=16, B=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(T, B, 5, generator=g) * 1.5


@pytest.mark.parametrize("init_hidden", [True, False], ids=["init_hidden", "explicit_state"])
@pytest.mark.parametrize("reset", RESETS, ids=lambda r: f"{r[0]}{'' if r[1] else '-no_delay'}")
@pytest.mark.parametrize("kind", KINDS)
def test_rleaky_gives_snntorchs_spikes_and_membranes(kind, reset, init_hidden):
    layers = _model(kind, reset, init_hidden)
    net = from_snntorch(layers)
    rlif = net[1]
    assert isinstance(rlif, RLIF) and rlif.connectivity == ("dense" if kind == "dense" else "diagonal")
    assert rlif.lif.reset == reset[0] and rlif.lif.reset_timing == ("delayed" if reset[1] else "immediate")
    x = _input()
    hidden, mem, out = _step_snntorch(layers, x)
    assert 0.05 < hidden.mean() < 0.95 and out.sum() > 0

    rlif.lif.record_membrane = True
    s, state = net(x)
    assert torch.equal(s, out)
    assert torch.equal(state["1"].s, hidden[-1])
    # float32 sums in another order (snnTorch (β·mem + x) + V·spk, RLIF β·v + (x + V·spk)): equal to rounding
    torch.testing.assert_close(state["1"].v, mem[-1])
    # the membrane before the reset: snnTorch's mem with the delayed timing; reset_delay=False stores it reset
    v_seq = state["1"].v_seq if reset[1] or reset[0] == "none" else state["1"].v_seq * (1 - hidden)
    torch.testing.assert_close(v_seq, mem)

    with torch.no_grad():  # the feedback matters: without it the spikes differ
        rlif.recurrent.weight.zero_() if kind != "shared_v" else rlif.recurrent.parametrizations.weight.original.zero_()
    assert not torch.equal(net(x)[0], out)


def _named_gradients(layers) -> dict[str, torch.Tensor]:
    return {n: p.grad for n, p in nn.Sequential(*layers).named_parameters()}


@pytest.mark.parametrize("reset", [("subtract", True), ("zero", False)], ids=["subtract", "zero-no_delay"])
@pytest.mark.parametrize("kind", KINDS)
def test_bptt_gradients_of_every_weight_equal_snntorchs(kind, reset):
    layers = _model(kind, reset, learn_beta=True, learn_threshold=True,
                    spike_grad=surrogate.fast_sigmoid(slope=5))
    net = from_snntorch(layers)
    x = _input(seed=1)
    w = torch.linspace(0.5, 1.5, x.shape[0]).view(-1, 1, 1)
    _, _, out = _step_snntorch(layers, x)
    (out * w).sum().backward()
    s, _ = net(x)
    assert torch.equal(s, out)
    (s * w).sum().backward()

    ref = _named_gradients(layers)
    got = {n: p.grad for n, p in net.named_parameters()}
    recurrent = {"dense": {"1.recurrent.weight": "1.recurrent.weight", "1.recurrent.bias": "1.recurrent.bias"},
                 "shared_v": {"1.recurrent.parametrizations.weight.original": "1.V"},
                 "per_neuron_v": {"1.recurrent.weight": "1.V"}}[kind]
    names = {"0.weight": "0.weight", "0.bias": "0.bias", "2.weight": "2.weight", "2.bias": "2.bias",
             "1.lif.v_th_param": "1.threshold", **recurrent}
    assert set(got) == set(names) | {"1.lif.beta_logit"}
    for mine, theirs in names.items():
        g_ref = ref[theirs].reshape(got[mine].shape)
        assert g_ref.abs().sum() > 0, theirs
        torch.testing.assert_close(got[mine], g_ref, rtol=1e-4, atol=1e-5 * float(g_ref.abs().max()), msg=mine)
    # neurosim learns β = sigmoid(w): dL/dw = dL/dβ · β(1 − β)
    beta = 0.8
    torch.testing.assert_close(got["1.lif.beta_logit"].reshape(()), ref["1.beta"].reshape(()) * beta * (1 - beta),
                               rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kind, method", [("dense", "sltt"), ("shared_v", "sltt_k")])
def test_sltt_trains_a_converted_rleaky_and_copy_to_snntorch_gives_the_same_model(kind, method):
    layers = _model(kind, learn_beta=True, learn_threshold=True)
    net = from_snntorch(layers)
    x = _input(T=10, B=24, seed=2)
    y = torch.arange(24) % 3
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    opt = torch.optim.Adam(net.parameters(), lr=0.03)
    method = get_method(method, k=3) if method == "sltt_k" else get_method(method)
    losses = []
    for _ in range(12):
        opt.zero_grad()
        losses.append(method.forward_backward(net, x, y, SLTTMix()).loss)
        opt.step()
    assert losses[-1] < losses[0]
    assert all(not torch.equal(before[n], p) for n, p in net.named_parameters())  # the recurrent weights too

    copy_to_snntorch(net, layers)
    _, _, out = _step_snntorch(layers, x)
    s, _ = net(x)
    assert out.sum() > 0 and torch.equal(s, out)
    rlif, ref = net[1], layers[1]
    assert float(ref.beta.detach()) == pytest.approx(float(rlif.lif.beta.detach()))
    assert float(ref.threshold.detach()) == float(rlif.lif.v_th.detach())
    if kind == "dense":
        assert torch.equal(ref.recurrent.weight, rlif.recurrent.weight)
        assert torch.equal(ref.recurrent.bias, rlif.recurrent.bias)
    else:  # one value for every neuron, learned as one, written into the RLeaky's own V (which its forward uses)
        assert ref.V.shape == () and torch.equal(rlif.recurrent.weight, ref.V.expand(8))
        assert ref.recurrent.V is ref.V and float(ref.V.detach()) != 0.6


def test_per_neuron_v_goes_back_into_the_rleaky():
    layers = _model("per_neuron_v")
    net = from_snntorch(layers)
    with torch.no_grad():
        net[1].recurrent.weight.copy_(torch.linspace(1.0, 2.0, 8))
    copy_to_snntorch(net, layers)
    assert torch.equal(layers[1].V, torch.linspace(1.0, 2.0, 8)) and layers[1].recurrent.V is layers[1].V


def test_fixed_recurrent_weights_stay_fixed():
    """learn_recurrent=False: snnTorch's recurrent weights take no gradient, so neither do neurosim's."""
    for kind in KINDS:
        net = from_snntorch(_model(kind, learn_recurrent=False))
        assert all(not p.requires_grad for p in net[1].recurrent.parameters())
        net(_input())[0].sum().backward()
        assert all(p.grad is None for p in net[1].recurrent.parameters())
        assert net[0].weight.grad is not None


def test_a_shared_v_stays_one_value():
    net = from_snntorch(_model("shared_v"))
    assert [p.shape for p in net[1].recurrent.parameters()] == [torch.Size([1])]
    assert torch.equal(net[1].recurrent.weight, torch.full((8,), 0.6))
    with pytest.raises(ValueError, match=r"one value shared by all 8 neurons.*shape \(8,\) whose values are all equal"):
        net[1].recurrent.weight = torch.linspace(0, 1, 8)
    # as the module docstring says: removing the parametrization gives every neuron its own weight, same spikes
    x = _input(seed=3) * 2
    s, _ = net(x)
    torch.nn.utils.parametrize.remove_parametrizations(net[1].recurrent, "weight")
    assert [p.shape for p in net[1].recurrent.parameters()] == [torch.Size([8])]
    assert 0 < s.mean() < 1 and torch.equal(net(x)[0], s)


def test_copy_to_snntorch_refuses_per_neuron_values_for_a_single_v():
    net = from_snntorch(_model("per_neuron_v"))
    target = _model("shared_v")
    with pytest.raises(ValueError, match=r"layer 1: the RLeaky has one V for every neuron but neurosim's one-to-one "
                                         r"weights differ \(from -0.8 to 0.9\)"):
        copy_to_snntorch(net, target)
    with pytest.raises(ValueError, match=r"layer 1: RLeaky in snnTorch but LIF in neurosim"):
        copy_to_snntorch(from_snntorch([nn.Linear(5, 8), snn.Leaky(beta=0.8), nn.Linear(8, 3), snn.Leaky(beta=0.9)]),
                         target)


@pytest.mark.filterwarnings("ignore:Inhibition is an unstable feature")
def test_every_unsupported_rleaky_option_is_listed_at_once():
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3), snn.RLeaky(beta=0.9, conv2d_channels=4, kernel_size=3, init_hidden=True),  # 1 conv
        nn.Flatten(), snn.RLeaky(beta=0.9, all_to_all=False, init_hidden=True),                        # 3 no N
        nn.Linear(36, 6), snn.RLeaky(beta=0.9, linear_features=6, init_hidden=True, reset_mechanism="zero"),  # 5
        snn.RLeaky(beta=0.9, linear_features=6, init_hidden=True, reset_delay=False),                  # 6 subtract
        snn.RLeaky(beta=0.9, linear_features=6, init_hidden=True, inhibition=True),                    # 7
        snn.RLeaky(beta=0.9, all_to_all=False, V=torch.ones(6, 1), init_hidden=True),                  # 8 V shape
        snn.RLeaky(beta=torch.linspace(0.5, 0.9, 6), linear_features=6, init_hidden=True),             # 9 beta
        snn.RSynaptic(alpha=0.8, beta=0.9, linear_features=6, init_hidden=True),                       # 10
        snn.RLeaky(beta=0.9, linear_features=6, init_hidden=True, output=True),                        # 11 output
        nn.Linear(6, 2),
    )
    with pytest.raises(UnsupportedSnnTorchError) as info:
        from_snntorch(model)
    msg = str(info.value)
    for needle in ("layer 1 (RLeaky): convolutional recurrence (conv2d_channels=4, kernel_size=3",
                   "layer 3 (RLeaky): all_to_all=False with one V for every neuron, and no nn.Linear before it",
                   "layer 5 (RLeaky): reset_mechanism='zero' with reset_delay=True",
                   "layer 6 (RLeaky): reset_delay=False with reset_mechanism='subtract'",
                   "layer 7 (RLeaky): inhibition=True", "layer 8 (RLeaky): V of shape (6, 1)",
                   "layer 9 (RLeaky): per-neuron beta", "layer 10 (RSynaptic): neuron RSynaptic",
                   "layer 11 (RLeaky): output=True before the last layer", "snntorch.RLeaky"):
        assert needle in msg, needle
    assert len(info.value.problems) == 9


def test_a_shared_v_finds_its_neuron_count_through_batchnorm_and_dropout():
    torch.manual_seed(0)
    ref = nn.Sequential(nn.Linear(5, 7), nn.BatchNorm1d(7), nn.Dropout(0.2),
                        snn.RLeaky(beta=0.8, all_to_all=False, V=0.5, init_hidden=True)).eval()
    net = from_snntorch(ref)
    assert net[3].features == 7
    x = _input(seed=4) * 3
    utils.reset(ref)
    expected = torch.stack([ref(xt) for xt in x])
    assert 0 < expected.mean() < 1 and torch.equal(net(x)[0], expected)



def test_a_float64_v_in_a_float32_model_converts_to_float32():
    torch.manual_seed(0)
    v = torch.linspace(-1, 1, 4, dtype=torch.float64)
    net = from_snntorch(nn.Sequential(nn.Linear(5, 4), snn.RLeaky(beta=0.8, all_to_all=False, V=v, init_hidden=True)))
    s, _ = net(torch.rand(6, 2, 5))
    assert s.dtype == torch.float32
    assert torch.equal(net[1].recurrent.weight, v.float())


@pytest.mark.parametrize("per_read", [False, True], ids=["programming", "read_noise"])
def test_a_shared_v_goes_onto_rram_chips_one_cell_pair_per_neuron(per_read):
    from neurosim.hardware.nonideal import NonIdealConfig, apply_nonidealities

    torch.manual_seed(0)
    net = from_snntorch(nn.Sequential(nn.Linear(5, 4), snn.RLeaky(beta=0.9, all_to_all=False, V=0.5,
                                                                   init_hidden=True)))
    cfg = NonIdealConfig(sigma_rel=0.2, read_noise_rel=0.1 if per_read else 0.0)
    chip = apply_nonidealities(net, cfg, seed=3)
    s, _ = chip(torch.rand(6, 2, 5))
    assert s.shape == (6, 2, 4)
    if not per_read:  # each neuron's feedback weight drawn on its own: no longer one shared value
        w = chip[1].recurrent.weight
        assert w.shape == (4,) and len(set(w.tolist())) == 4
    assert torch.equal(net[1].recurrent.weight, torch.full((4,), 0.5))  # the model itself unchanged


def test_a_shared_v_is_fine_tuned_through_each_neurons_chip_draw_and_stays_one_value():
    # noise-aware fine-tuning gave the chip's weights to functional_call as the recurrent weight, which assigned them
    # through the shared V's right_inverse: "this recurrent weight is one value shared by all 4 neurons", a refusal of
    # every chip that draws each neuron's cells on its own; the draw is now a step after the parametrization
    from neurosim.hardware.nonideal import NonIdealConfig, noise_aware_finetune

    torch.manual_seed(0)
    net = from_snntorch(nn.Sequential(nn.Linear(5, 4), snn.RLeaky(beta=0.9, all_to_all=False, V=0.5,
                                                                   init_hidden=True)))
    seen = []  # the feedback weights the forward pass read: one draw per neuron
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda m, i, o: seen.append(m.weight.detach().clone()) if type(m).__name__ == "ParametrizedDiagonalRecurrent"
        else None)
    try:
        tuned = noise_aware_finetune(net, [(torch.rand(6, 8, 5), torch.arange(8) % 4)], NonIdealConfig(sigma_rel=0.2),
                                     epochs=1)
    finally:
        hook.remove()
    assert seen and len(set(seen[0].tolist())) == 4
    w = tuned[1].recurrent.weight.detach()
    assert len(set(w.tolist())) == 1 and float(w[0]) != 0.5  # trained, still one shared V
    assert len(tuned[1].recurrent.parametrizations.weight) == 1
    assert torch.equal(net[1].recurrent.weight, torch.full((4,), 0.5))

"""snnTorch ``Synaptic`` → neurosim ``CubaLIF``: the same spikes, currents, membranes and BPTT gradients as snnTorch
stepped by hand, SLTT training of the converted model, the trained values back in snnTorch, and every refused option
named."""

from __future__ import annotations

import pytest
import torch
from torch import nn

snn = pytest.importorskip("snntorch")
from snntorch import surrogate, utils  # noqa: E402

from neurosim.interop import UnsupportedSnnTorchError, copy_to_snntorch, from_snntorch  # noqa: E402
from neurosim.nn import CubaLIF  # noqa: E402
from neurosim.training import SLTTMix, get_method  # noqa: E402

# snnTorch before 1.0 (make test-min runs 0.9): a Synaptic called with explicit states takes mem as its current
# (``self.syn = mem``), and reset_delay=False never resets; the conversion follows 1.0 and refuses the latter there
OLD_SNNTORCH = int(str(snn.__version__).split(".")[0]) < 1
# reset mechanisms CubaLIF reproduces: (reset_mechanism, reset_delay)
RESETS = (("subtract", True), ("none", True), ("zero", False), ("none", False))
RESET_IDS = [f"{r}{'' if d else '-no_delay'}" for r, d in RESETS]


def _model(reset=("subtract", True), init_hidden=True, seed=0, **kw) -> list[nn.Module]:
    """Linear(5, 8) → Synaptic(8) → Linear(8, 3) → Synaptic(3, output=True), as a list of layers in execution
    order."""
    mechanism, delay = reset
    torch.manual_seed(seed)
    layers = [nn.Linear(5, 8),
              snn.Synaptic(alpha=0.75, beta=0.8, threshold=0.7, reset_mechanism=mechanism, reset_delay=delay,
                           init_hidden=init_hidden, **kw),
              nn.Linear(8, 3),
              snn.Synaptic(alpha=0.6, beta=0.9, threshold=0.5, init_hidden=init_hidden, output=True, **kw)]
    with torch.no_grad():
        layers[2].weight.mul_(2)
    return layers


def _step_snntorch(layers, x_seq):
    """snnTorch stepped by hand: the first Synaptic's spikes, currents and membranes, and the last layer's spikes."""
    fc1, syn1, fc2, syn2 = layers
    if syn1.init_hidden:
        utils.reset(nn.Sequential(*layers))
    else:
        syn1.reset_mem()  # (returns the state from snnTorch 1.0 on, None before: read the attributes)
        syn2.reset_mem()
        i1, v1, i2, v2 = syn1.syn, syn1.mem, syn2.syn, syn2.mem
    spikes, currents, membranes, out = [], [], [], []
    for x in x_seq:
        if syn1.init_hidden:
            s1 = syn1(fc1(x))
            i1, v1 = syn1.syn, syn1.mem
            s2 = syn2(fc2(s1))[0]  # output=True: (spk, syn, mem)
        else:
            s1, i1, v1 = syn1(fc1(x), i1, v1)
            s2, i2, v2 = syn2(fc2(s1), i2, v2)
        spikes.append(s1)
        currents.append(i1)
        membranes.append(v1)
        out.append(s2)
    return torch.stack(spikes), torch.stack(currents), torch.stack(membranes), torch.stack(out)


def _input(T=16, B=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(T, B, 5, generator=g) * 1.5


def _skip_where_snntorch_differs(reset, init_hidden):
    if OLD_SNNTORCH and not init_hidden:
        pytest.skip(f"snnTorch {snn.__version__}'s Synaptic takes an explicit mem as its current (fixed in 1.0)")
    if OLD_SNNTORCH and reset == ("zero", False):
        pytest.skip(f"snnTorch {snn.__version__}'s Synaptic does not apply reset_delay=False (refused: see below)")


@pytest.mark.parametrize("init_hidden", [True, False], ids=["init_hidden", "explicit_state"])
@pytest.mark.parametrize("reset", RESETS, ids=RESET_IDS)
def test_synaptic_gives_snntorchs_spikes_currents_and_membranes(reset, init_hidden):
    _skip_where_snntorch_differs(reset, init_hidden)
    layers = _model(reset, init_hidden)
    net = from_snntorch(layers)
    cuba = net[1]
    assert isinstance(cuba, CubaLIF) and isinstance(net[3], CubaLIF)
    assert float(cuba.alpha) == pytest.approx(0.75) and float(net[3].alpha) == pytest.approx(0.6)
    assert cuba.lif.reset == reset[0] and cuba.lif.reset_timing == ("delayed" if reset[1] else "immediate")
    x = _input()
    hidden, current, mem, out = _step_snntorch(layers, x)
    assert 0.05 < hidden.mean() < 0.95 and 0 < out.mean() < 1

    cuba.lif.record_membrane = True
    s, state = net(x)
    assert torch.equal(s, out)
    # float32 Linear over [T, B, 5] at once and over [B, 5] per step round apart: currents equal to rounding
    torch.testing.assert_close(state["1"].i, current[-1])
    torch.testing.assert_close(state["1"].lif.v, mem[-1])
    v_seq = state["1"].lif.v_seq  # before the reset: snnTorch's mem with the delayed timing, reset after it otherwise
    torch.testing.assert_close(v_seq * (1 - hidden) if reset == ("zero", False) else v_seq, mem)

    with torch.no_grad():  # the current's decay matters: without it the spikes differ
        cuba.syn.beta_value.zero_()
    assert not torch.equal(net(x)[0], out)


@pytest.mark.parametrize("backend", ["auto", "reference"])
@pytest.mark.parametrize("reset", RESETS, ids=RESET_IDS)
def test_the_same_input_currents_give_snntorchs_values_bit_for_bit(reset, backend):
    """Fed the same tensors, the current is snnTorch's bit for bit (α·syn + x, the same operations in the same
    order), and so is the membrane but for the default backend's fused immediate timing (reset_delay=False), which
    rounds β·v + i once where snnTorch rounds twice (as documented for Leaky)."""
    _skip_where_snntorch_differs(reset, True)
    synaptic = snn.Synaptic(alpha=0.8, beta=0.85, threshold=0.6, reset_mechanism=reset[0], reset_delay=reset[1],
                            init_hidden=True)
    net = from_snntorch([synaptic], backend=backend)
    x = _input(T=24) - 0.3
    utils.reset(synaptic)
    spk, syn, mem = zip(*[(synaptic(xt), synaptic.syn, synaptic.mem) for xt in x])
    s, state = net(x)
    assert 0 < s.mean() < 1 and torch.equal(s, torch.stack(spk))
    assert torch.equal(state["0"].i, syn[-1])
    if reset[1] or backend == "reference":
        assert torch.equal(state["0"].lif.v, mem[-1])
    else:
        torch.testing.assert_close(state["0"].lif.v, mem[-1])


@pytest.mark.parametrize("reset", [("subtract", True), ("zero", False)], ids=["subtract", "zero-no_delay"])
def test_bptt_gradients_equal_snntorchs(reset):
    _skip_where_snntorch_differs(reset, True)
    layers = _model(reset, learn_beta=True, learn_threshold=True, spike_grad=surrogate.fast_sigmoid(slope=5))
    net = from_snntorch(layers)
    x = _input(seed=1)
    w = torch.linspace(0.5, 1.5, x.shape[0]).view(-1, 1, 1)
    _, _, _, out = _step_snntorch(layers, x)
    (out * w).sum().backward()
    s, _ = net(x)
    assert torch.equal(s, out)
    (s * w).sum().backward()

    ref = {n: p.grad for n, p in nn.Sequential(*layers).named_parameters()}
    got = {n: p.grad for n, p in net.named_parameters()}
    names = {"0.weight": "0.weight", "0.bias": "0.bias", "2.weight": "2.weight", "2.bias": "2.bias",
             "1.lif.v_th_param": "1.threshold", "3.lif.v_th_param": "3.threshold"}
    assert set(got) == set(names) | {"1.lif.beta_logit", "3.lif.beta_logit"}  # α is fixed: no gradient
    for mine, theirs in names.items():
        g_ref = ref[theirs].reshape(got[mine].shape)
        assert g_ref.abs().sum() > 0, theirs
        torch.testing.assert_close(got[mine], g_ref, rtol=1e-4, atol=1e-5 * float(g_ref.abs().max()), msg=mine)
    for i, beta in (("1", 0.8), ("3", 0.9)):  # neurosim learns β = sigmoid(w): dL/dw = dL/dβ · β(1 − β)
        torch.testing.assert_close(got[f"{i}.lif.beta_logit"].reshape(()), ref[f"{i}.beta"].reshape(()) * beta *
                                   (1 - beta), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("method", ["sltt", "sltt_k"])
def test_sltt_trains_a_converted_synaptic_and_copy_to_snntorch_gives_the_same_model(method):
    layers = _model(learn_beta=True, learn_threshold=True)
    net = from_snntorch(layers)
    x = _input(T=10, B=24, seed=2)
    y = torch.arange(24) % 3
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    opt = torch.optim.Adam(net.parameters(), lr=0.03)
    m = get_method(method, k=3) if method == "sltt_k" else get_method(method)
    losses = []
    for _ in range(12):
        opt.zero_grad()
        losses.append(m.forward_backward(net, x, y, SLTTMix()).loss)
        opt.step()
    assert losses[-1] < losses[0]
    assert all(not torch.equal(before[n], p) for n, p in net.named_parameters())
    with torch.no_grad():  # α is not trained, but a value set in neurosim goes back too
        net[1].syn.beta_value.fill_(0.5)

    copy_to_snntorch(net, layers)
    _, _, _, out = _step_snntorch(layers, x)
    s, _ = net(x)
    assert out.sum() > 0 and torch.equal(s, out)
    cuba, ref = net[1], layers[1]
    assert float(ref.alpha) == 0.5 and float(layers[3].alpha) == pytest.approx(0.6)
    assert float(ref.beta.detach()) == pytest.approx(float(cuba.lif.beta.detach()))
    assert float(ref.threshold.detach()) == float(cuba.lif.v_th.detach())


def test_alpha_is_clamped_as_snntorch_clamps_it_and_per_neuron_alphas_of_one_value_convert():
    torch.manual_seed(1)
    for alpha, expected in ((1.4, 1.0), (-0.3, 0.0), (torch.full((4,), 0.7), 0.7)):
        ref = nn.Sequential(nn.Linear(6, 4), snn.Synaptic(alpha=alpha, beta=0.8, threshold=0.8, init_hidden=True))
        with torch.no_grad():
            ref[0].weight.mul_(3)
        net = from_snntorch(ref)
        assert float(net[1].alpha) == pytest.approx(expected)
        x = torch.randint(0, 2, (20, 3, 6)).float()
        utils.reset(ref)
        expected_spikes = torch.stack([ref(xt) for xt in x])
        assert 0 < expected_spikes.mean() < 1 and torch.equal(net(x)[0], expected_spikes)
    with torch.no_grad():  # a per-neuron α takes the value in every neuron
        net[1].syn.beta_value.fill_(0.25)
    copy_to_snntorch(net, ref)
    assert torch.equal(ref[1].alpha, torch.full((4,), 0.25))


def test_a_float64_model_keeps_alpha_in_float64():
    torch.manual_seed(0)
    alpha = torch.tensor(0.9, dtype=torch.float64)  # (a float α is a float32 buffer: .double() widens its rounding)
    ref = nn.Sequential(nn.Linear(10, 8), snn.Synaptic(alpha=alpha, beta=0.8, init_hidden=True)).double()
    net = from_snntorch(ref)
    assert net[1].alpha.dtype == torch.float64 and float(net[1].alpha) == 0.9  # not 0.9 rounded to float32
    x = torch.rand(20, 3, 10, dtype=torch.float64)
    utils.reset(ref)
    spk, syn = zip(*[(ref(xt), ref[1].syn) for xt in x])
    s, state = net(x)
    assert 0 < s.mean() < 1 and torch.equal(s, torch.stack(spk))
    torch.testing.assert_close(state["1"].i, syn[-1], rtol=0, atol=1e-12)


@pytest.mark.filterwarnings("ignore:Inhibition is an unstable feature")
def test_every_unsupported_synaptic_option_is_listed_at_once():
    model = nn.Sequential(
        nn.Linear(4, 6),
        snn.Synaptic(alpha=0.8, beta=0.9, learn_alpha=True, init_hidden=True),                       # 1
        snn.Synaptic(alpha=torch.linspace(0.5, 0.9, 6), beta=0.9, init_hidden=True),                 # 2 per-neuron
        snn.Synaptic(alpha=0.8, beta=0.9, reset_mechanism="zero", init_hidden=True),                 # 3 zero delayed
        snn.Synaptic(alpha=0.8, beta=0.9, reset_delay=False, init_hidden=True),                      # 4 subtract
        snn.Synaptic(alpha=0.8, beta=0.9, state_quant=lambda m: m, init_hidden=True),                # 5
        snn.Synaptic(alpha=0.8, beta=0.9, spike_grad=surrogate.triangular(), init_hidden=True),      # 6
        snn.Synaptic(alpha=0.8, beta=0.9, init_hidden=True, output=True),                            # 7 output
        snn.RSynaptic(alpha=0.8, beta=0.9, linear_features=6, init_hidden=True),                     # 8
        snn.Synaptic(alpha=torch.full((6,), 0.8), beta=0.9, learn_alpha=True, init_hidden=True),     # 9 one problem
        nn.Linear(6, 2),
    )
    with pytest.raises(UnsupportedSnnTorchError) as info:
        from_snntorch(model)
    msg = str(info.value)
    for needle in ("layer 1 (Synaptic): learn_alpha=True (CubaLIF keeps the current's decay α fixed",
                   "layer 2 (Synaptic): per-neuron alpha of shape (6,) with different values",
                   "layer 3 (Synaptic): reset_mechanism='zero' with reset_delay=True",
                   "layer 4 (Synaptic): reset_delay=False with reset_mechanism='subtract'",
                   "layer 5 (Synaptic): state_quant", "layer 6 (Synaptic): surrogate 'triangular'",
                   "layer 7 (Synaptic): output=True before the last layer",
                   "layer 8 (RSynaptic): neuron RSynaptic", "layer 9 (Synaptic): learn_alpha=True",
                   "snntorch.Synaptic"):
        assert needle in msg, needle
    assert len(info.value.problems) == 9


def test_reset_delay_false_with_the_zero_reset_converts_only_where_snntorch_applies_it():
    model = [nn.Linear(4, 6), snn.Synaptic(alpha=0.8, beta=0.9, reset_mechanism="zero", reset_delay=False)]
    if OLD_SNNTORCH:
        with pytest.raises(UnsupportedSnnTorchError, match=rf"reset_delay=False with reset_mechanism='zero' in "
                                                           rf"snnTorch {snn.__version__}, whose Synaptic does not"):
            from_snntorch(model)
    else:
        assert from_snntorch(model)[1].lif.reset_timing == "immediate"


def test_copy_to_snntorch_needs_the_converted_structure():
    leaky = from_snntorch([nn.Linear(5, 8), snn.Leaky(beta=0.8), nn.Linear(8, 3), snn.Leaky(beta=0.9)])
    with pytest.raises(ValueError, match=r"layer 1: Synaptic in snnTorch but LIF in neurosim"):
        copy_to_snntorch(leaky, _model())
    with pytest.raises(ValueError, match=r"layer 1: Leaky in snnTorch but CubaLIF in neurosim"):
        copy_to_snntorch(from_snntorch(_model()), [nn.Linear(5, 8), snn.Leaky(beta=0.8), nn.Linear(8, 3),
                                                   snn.Leaky(beta=0.9)])

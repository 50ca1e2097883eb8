"""snnTorch → neurosim conversion: identical spikes and BPTT gradients, SLTT training, clear errors, round trip."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

snn = pytest.importorskip("snntorch")
from snntorch import surrogate, utils  # noqa: E402

from neurosim.interop import UnsupportedSnnTorchError, copy_to_snntorch, from_snntorch  # noqa: E402
from neurosim.nn import LIF  # noqa: E402
from neurosim.training import SLTTMix, get_method  # noqa: E402


def _snn_conv(reset="subtract", spike_grad=None, learn=False):
    torch.manual_seed(0)
    grad = spike_grad or surrogate.atan()
    kw = dict(init_hidden=True, reset_mechanism=reset, spike_grad=grad, learn_beta=learn, learn_threshold=learn)
    return nn.Sequential(
        nn.Conv2d(2, 6, 3), snn.Leaky(beta=0.8, threshold=0.6, **kw), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(6 * 5 * 5, 10), snn.Leaky(beta=0.7, threshold=0.5, **kw),
        nn.Linear(10, 3), snn.Leaky(beta=0.9, threshold=0.5, output=True, **kw),
    )


def _run_snntorch(net, x_seq):
    """snnTorch's way: reset the hidden states, call the net once per step, stack the outputs."""
    utils.reset(net)
    spikes = []
    for x in x_seq:
        out = net(x)
        spikes.append(out[0] if isinstance(out, tuple) else out)
    return torch.stack(spikes)


def _input(T=12, B=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, 2, 12, 12, generator=g) < 0.4).float() * 1.5


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("spike_grad", [surrogate.atan(), surrogate.atan(alpha=3.0), surrogate.fast_sigmoid(10),
                                        surrogate.sigmoid(slope=5)], ids=["atan", "atan3", "fast_sigmoid", "sigmoid"])
def test_converted_model_gives_identical_spikes_and_bptt_gradients(reset, spike_grad):
    ref = _snn_conv(reset, spike_grad)
    net = from_snntorch(ref)
    x = _input()

    s_ref = _run_snntorch(ref, x)
    s_ns, _ = net(x)
    assert s_ref.sum() > 0 and (s_ref == 0).any()
    assert torch.equal(s_ns, s_ref)

    # BPTT through the whole sequence: same loss, same gradients for every parameter.
    w = torch.linspace(0.5, 1.5, x.shape[0]).view(-1, 1, 1)
    (s_ref * w).sum().backward()
    (s_ns * w).sum().backward()
    ref_params = dict(ref.named_parameters())
    for name, p in net.named_parameters():
        g_ref = ref_params[name].grad  # float32 sums in another order: equal to rounding
        torch.testing.assert_close(p.grad, g_ref, rtol=1e-5, atol=1e-6 * float(g_ref.abs().max()), msg=name)


def test_plain_list_of_layers_without_init_hidden():
    torch.manual_seed(1)
    fc, lif = nn.Linear(5, 4), snn.Leaky(beta=0.85, threshold=0.4)
    net = from_snntorch([fc, lif])
    x = torch.rand(10, 3, 5)
    mem = lif.reset_mem()
    ref = []
    for xt in x:
        spk, mem = lif(fc(xt), mem)
        ref.append(spk)
    s, state = net(x)
    assert torch.equal(s, torch.stack(ref))
    torch.testing.assert_close(state["1"].v, mem)
    assert isinstance(net[1], LIF) and net[1].reset_timing == "delayed"


def test_converted_layers_hold_copies_and_train_mode_follows():
    ref = _snn_conv().eval()
    net = from_snntorch(ref)
    assert not net.training
    assert net[0].weight is not ref[0].weight and torch.equal(net[0].weight, ref[0].weight)


@pytest.mark.parametrize("method", ["sltt", "sltt_k"])
def test_sltt_trains_a_converted_model_and_weights_go_back(method):
    ref = _snn_conv(learn=True)
    net = from_snntorch(ref)
    assert {"1.beta_logit", "1.v_th_param"} <= dict(net.named_parameters()).keys()
    x = _input(T=8, B=16, seed=3)
    y = torch.arange(16) % 3
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    m = get_method(method, k=3) if method == "sltt_k" else get_method(method)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        out = m.forward_backward(net, x, y, SLTTMix())
        opt.step()
        losses.append(out.loss)
    assert losses[-1] < losses[0]
    copy_to_snntorch(net, ref)
    s_ns, _ = net(x)
    assert torch.equal(_run_snntorch(ref, x), s_ns)
    assert float(ref[1].beta.detach()) == pytest.approx(float(net[1].beta.detach()))


@pytest.mark.parametrize("reset", ["zero", "none"])
def test_reset_delay_false_converts_to_the_immediate_timing_with_a_strict_threshold(reset):
    torch.manual_seed(0)
    ref = nn.Sequential(nn.Linear(6, 5), snn.Leaky(beta=0.8, reset_mechanism=reset, reset_delay=False,
                                                   init_hidden=True))
    with torch.no_grad():  # integer weights and inputs: the membrane lands on the threshold itself often
        ref[0].weight.copy_(torch.randint(-1, 3, (5, 6)).float())
        ref[0].bias.zero_()
    net = from_snntorch(ref)
    assert net[1].reset_timing == "immediate"
    x = torch.randint(0, 2, (30, 4, 6)).float()
    s_ref = _run_snntorch(ref, x)
    assert s_ref.sum() > 10 and torch.equal(net(x)[0], s_ref)


def test_every_unsupported_option_is_listed_at_once():
    model = nn.Sequential(
        nn.Linear(4, 4), snn.Leaky(beta=torch.tensor([.8, .9, .9, .9]), init_hidden=True),  # per-neuron beta
        snn.Leaky(beta=0.9, init_hidden=True, output=True),                                # output mid-network
        snn.Leaky(beta=0.9, init_hidden=True, state_quant=lambda m: m),                    # state_quant
        snn.Leaky(beta=0.9, init_hidden=True, graded_spikes_factor=2.0),                   # graded spikes
        snn.Leaky(beta=0.9, init_hidden=True, spike_grad=surrogate.triangular()),          # surrogate
        snn.Leaky(beta=0.9, init_hidden=True, reset_delay=False),                          # reset timing
        snn.Lapicque(beta=0.9, init_hidden=True),                                          # other neuron
        nn.ReLU(), nn.Flatten(start_dim=0),
    )
    with pytest.raises(UnsupportedSnnTorchError) as info:
        from_snntorch(model)
    msg = str(info.value)
    for needle in ("layer 1 (Leaky): per-neuron beta", "layer 2 (Leaky): output=True before the last layer",
                   "layer 3 (Leaky): state_quant", "layer 4 (Leaky): graded spikes", "layer 5 (Leaky): surrogate",
                   "layer 6 (Leaky): reset_delay=False", "layer 7 (Lapicque): neuron Lapicque",
                   "layer 8 (ReLU): unsupported layer", "layer 9 (Flatten)", "Supported: snntorch.Leaky"):
        assert needle in msg, needle
    assert len(info.value.problems) == 9


def test_per_neuron_beta_and_threshold_of_one_value_convert_as_that_value():
    """snnTorch's NIR export needs β and the threshold as tensors of the layer's shape; all-equal ones convert."""
    torch.manual_seed(3)
    ref = nn.Sequential(nn.Linear(6, 4), snn.Leaky(beta=torch.full((4,), 0.8), threshold=torch.full((4,), 0.4),
                                                   init_hidden=True))
    with torch.no_grad():
        ref[0].weight.mul_(3)
    net = from_snntorch(ref)
    assert float(net[1].beta) == pytest.approx(0.8) and float(net[1].v_th) == pytest.approx(0.4)
    x = torch.randint(0, 2, (20, 3, 6)).float()
    s_ref = _run_snntorch(ref, x)
    assert 0 < s_ref.mean() < 1 and torch.equal(net(x)[0], s_ref)
    with torch.no_grad():  # the trained values go back into every neuron
        net[1].beta_value.fill_(0.5)
        net[1].v_th_value.fill_(0.25)
    copy_to_snntorch(net, ref)
    assert torch.equal(ref[1].beta, torch.full((4,), 0.5)) and torch.equal(ref[1].threshold, torch.full((4,), 0.25))


def test_learnable_per_neuron_beta_is_refused():
    model = nn.Sequential(nn.Linear(4, 4), snn.Leaky(beta=torch.full((4,), 0.9), learn_beta=True, init_hidden=True))
    with pytest.raises(UnsupportedSnnTorchError, match=r"learnable per-neuron beta of shape \(4,\)"):
        from_snntorch(model)


def test_not_a_sequence_is_a_clear_error():
    class Net(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(TypeError, match="nn.Sequential or a list of layers"):
        from_snntorch(Net())


def test_batchnorm_dropout_avgpool_identity_in_eval_mode():
    torch.manual_seed(2)
    ref = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), snn.Leaky(beta=0.8, init_hidden=True),
        nn.AvgPool2d(2), nn.Identity(), nn.Sequential(nn.Flatten(), nn.Dropout(0.3)),
        nn.Linear(4 * 6 * 6, 8), nn.BatchNorm1d(8), snn.Leaky(beta=0.8, threshold=0.3, init_hidden=True),
    )
    with torch.no_grad():  # non-trivial running statistics
        ref[1].running_mean.uniform_(-0.2, 0.2)
        ref[1].running_var.uniform_(0.5, 1.5)
    ref.eval()
    net = from_snntorch(ref)
    assert len(net) == 9  # Identity dropped, the nested Sequential flattened
    x = _input(T=6)
    s_ref = _run_snntorch(ref, x)
    s_ns, _ = net(x)
    assert s_ref.sum() > 0
    assert torch.equal(s_ns, s_ref)


def test_a_float64_model_converts_to_float64_and_gives_the_same_spikes():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(10, 8), snn.Leaky(beta=0.9, init_hidden=True)).double()
    ns = from_snntorch(net)
    assert {t.dtype for t in (*ns.parameters(), *ns.buffers())} == {torch.float64}
    x = torch.rand(20, 3, 10, dtype=torch.float64) * 1.5
    utils.reset(net)
    expected = torch.stack([net(x[t]) for t in range(20)])
    assert torch.equal(ns(x)[0], expected)


@pytest.mark.parametrize("learn", [False, True])
def test_a_float64_model_keeps_its_float64_beta_and_threshold(learn):
    # β and the threshold went through float32 (β 0.9 off by 2e-8, membranes by 2e-7), and the strict threshold
    # of reset_delay=False (the next float64 above 1) rounded back to 1 itself
    net = nn.Sequential(nn.Linear(10, 8), snn.Leaky(beta=0.9, threshold=1.0, init_hidden=True, reset_mechanism="zero",
                                                    reset_delay=False, learn_beta=learn,
                                                    learn_threshold=learn)).double()
    lif = from_snntorch(net, backend="reference")[1]
    v_th, beta = float(lif.v_th.detach()), float(lif.beta.detach())
    assert lif.v_th.dtype == torch.float64 and v_th == math.nextafter(1.0, 2.0)
    assert beta == pytest.approx(float(net[1].beta.detach()), abs=0 if not learn else 1e-15)  # snnTorch's own
    x = torch.rand(20, 3, 10, dtype=torch.float64) * 1.5
    utils.reset(net)
    spk, mem = zip(*[(net(x[t]), net[1].mem) for t in range(20)])
    out, state = from_snntorch(net, backend="reference")(x)
    assert torch.stack(spk).sum() > 5
    assert torch.equal(out, torch.stack(spk))
    torch.testing.assert_close(state["1"].v, mem[-1], rtol=0, atol=1e-12)  # float64 (float32 β: off by 2e-7)


def test_a_reset_mechanism_set_after_construction_is_refused_as_snntorch_ignores_it():
    net = nn.Sequential(nn.Linear(10, 8), snn.Leaky(beta=0.9, init_hidden=True))
    net[1].reset_mechanism = "zero"  # snnTorch keeps running the subtract reset it was built with
    with pytest.raises(UnsupportedSnnTorchError, match="reset_mechanism says 'zero' but this Leaky runs the "
                                                       "'subtract' reset"):
        from_snntorch(net)
    built = nn.Sequential(nn.Linear(10, 8), snn.Leaky(beta=0.9, init_hidden=True, reset_mechanism="zero"))
    assert from_snntorch(built)[1].reset == "zero"


@pytest.mark.parametrize("reset", ["zero", "none"])
def test_reset_delay_false_records_the_membrane_before_the_reset_as_documented(reset):
    # the module docstring: spikes and the final state are snnTorch's (bit for bit with backend="reference"),
    # state.v_seq is the membrane before the reset, snnTorch's mem the one after it: v_seq * (1 - spikes) for zero
    torch.manual_seed(0)
    ref = nn.Sequential(nn.Linear(6, 5), snn.Leaky(beta=0.7, reset_mechanism=reset, reset_delay=False,
                                                   init_hidden=True, output=True))
    with torch.no_grad():
        ref[0].weight.mul_(3)
    x = torch.rand(8, 3, 6)
    utils.reset(ref)
    spk, mem = (torch.stack(t) for t in zip(*(ref(xt) for xt in x)))
    net = from_snntorch(ref, backend="reference")
    net[1].record_membrane = True
    s, state = net(x)
    v_seq = state["1"].v_seq
    assert spk.sum() > 5 and torch.equal(s, spk) and torch.equal(state["1"].v, mem[-1])
    assert torch.equal(v_seq * (1 - s) if reset == "zero" else v_seq, mem)
    assert (reset == "zero") == bool((v_seq != mem).any())  # the zero reset's v_seq is not snnTorch's mem


@pytest.mark.parametrize("cls", [nn.BatchNorm2d, nn.BatchNorm1d])
def test_batchnorm_without_running_statistics_is_refused(cls):
    # without running statistics snnTorch's BatchNorm normalises every step by that step's batch, in eval mode too;
    # the converted time-distributed BatchNorm normalised all steps together: other spikes in eval mode (silently)
    before = [nn.Conv2d(2, 4, 3)] if cls is nn.BatchNorm2d else [nn.Flatten(), nn.Linear(2 * 12 * 12, 4)]
    ref = nn.Sequential(*before, cls(4, track_running_stats=False), snn.Leaky(beta=0.8, init_hidden=True)).eval()
    with pytest.raises(UnsupportedSnnTorchError, match=rf"layer {len(before)} \({cls.__name__}\): "
                                                       r"track_running_stats=False .*track_running_stats=True"):
        from_snntorch(ref)


def test_frozen_parameters_stay_frozen():
    # a layer frozen in snnTorch (requires_grad=False, as when fine-tuning the last layers) became trainable again
    torch.manual_seed(0)
    ref = nn.Sequential(
        nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), snn.Leaky(beta=0.8, learn_beta=True, learn_threshold=True,
                                                         init_hidden=True),
        nn.Flatten(), nn.Linear(4 * 10 * 10, 6),
        snn.Synaptic(alpha=0.7, beta=0.9, learn_alpha=True, learn_beta=True, init_hidden=True),
        nn.Linear(6, 3), snn.Leaky(beta=0.9, learn_beta=True, init_hidden=True),
    )
    for m in (ref[0], ref[1], ref[2], ref[5]):  # conv, BatchNorm, the first Leaky's β and threshold, Synaptic
        m.requires_grad_(False)
    net = from_snntorch(ref)
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    assert trainable == {"4.weight", "4.bias", "6.weight", "6.bias", "7.beta_logit"}
    assert float(net[2].beta) == pytest.approx(0.8) and float(net[5].alpha) == pytest.approx(0.7)
    x = _input(T=6)
    s_ns, _ = net(x)
    s_ns.sum().backward()
    assert all(p.grad is None for n, p in net.named_parameters() if n not in trainable)
    assert torch.equal(s_ns, _run_snntorch(ref, x))
    copy_to_snntorch(net, ref)  # the frozen values go back where they came from
    assert torch.equal(s_ns, _run_snntorch(ref, x))


@pytest.mark.parametrize("reset", ["subtract", "none"])
def test_lapicque_is_refused_with_the_leaky_that_replaces_it(reset):
    # Lapicque: mem = (1 − dt/(R·C))·mem + (dt/C)·x, a Leaky on inputs scaled by dt/C; the error gives both numbers
    torch.manual_seed(0)
    ref = nn.Sequential(nn.Linear(10, 8), snn.Lapicque(R=5.0, C=2.0, threshold=0.5, reset_mechanism=reset,
                                                       init_hidden=True))
    with pytest.raises(UnsupportedSnnTorchError, match=r"layer 1 \(Lapicque\): neuron Lapicque") as info:
        from_snntorch(ref)
    msg = str(info.value)
    assert f"snn.Leaky(beta={1 - 1 / (5 * 2):.6g}, threshold=0.5, reset_mechanism='{reset}'" in msg
    assert f"by dt/C = {1 / 2:.6g}" in msg
    # the recipe gives Lapicque's spikes
    alt = nn.Sequential(nn.Linear(10, 8), snn.Leaky(beta=0.9, threshold=0.5, reset_mechanism=reset, init_hidden=True))
    with torch.no_grad():
        alt[0].weight.copy_(ref[0].weight * 0.5)
        alt[0].bias.copy_(ref[0].bias * 0.5)
    x = torch.rand(30, 4, 10) * 3
    s_ref = _run_snntorch(ref, x)
    assert 0 < s_ref.mean() < 1 and torch.equal(from_snntorch(alt)(x)[0], s_ref)


def test_lapicques_zero_reset_and_alpha_say_what_converts_instead():
    model = nn.Sequential(nn.Linear(4, 4), snn.Lapicque(beta=0.9, reset_mechanism="zero", init_hidden=True),
                          snn.Alpha(alpha=0.9, beta=0.8, init_hidden=True),
                          snn.RSynaptic(alpha=0.9, beta=0.8, linear_features=4, init_hidden=True))
    with pytest.raises(UnsupportedSnnTorchError) as info:
        from_snntorch(model)
    lapicque, alpha, rsynaptic = info.value.problems
    assert "zero reset" in lapicque and "'subtract' or 'none'" in lapicque
    assert "layer 2 (Alpha)" in alpha and "snn.Synaptic" in alpha
    assert "layer 3 (RSynaptic)" in rsynaptic and "snn.RLeaky" in rsynaptic and "snn.Synaptic" in rsynaptic


def test_an_unsupported_surrogate_says_how_to_swap_it():
    model = nn.Sequential(nn.Linear(4, 4), snn.Leaky(beta=0.9, spike_grad=surrogate.triangular(), init_hidden=True))
    with pytest.raises(UnsupportedSnnTorchError, match=r"surrogate 'triangular' .*spike_grad = "
                                                       r"snntorch\.surrogate\.atan\(\)"):
        from_snntorch(model)


def test_a_hand_written_model_names_its_layers_for_the_list_route():
    class Net(nn.Module):  # snnTorch's tutorial style: a Python loop over time in forward()
        def __init__(self):
            super().__init__()
            self.fc1, self.lif1 = nn.Linear(6, 5), snn.Leaky(beta=0.9)
            self.fc2, self.lif2 = nn.Linear(5, 3), snn.Leaky(beta=0.8)

        def forward(self, x_seq):
            mem1, mem2, out = self.lif1.reset_mem(), self.lif2.reset_mem(), []
            for x in x_seq:
                spk1, mem1 = self.lif1(self.fc1(x), mem1)
                spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
                out.append(spk2)
            return torch.stack(out)

    torch.manual_seed(0)
    net = Net()
    with pytest.raises(TypeError, match=r"from_snntorch\(\[model\.fc1, model\.lif1, model\.fc2, model\.lif2\]\)"):
        from_snntorch(net)
    x = torch.rand(12, 3, 6) * 3
    converted = from_snntorch([net.fc1, net.lif1, net.fc2, net.lif2])  # the route the error gives
    expected = net(x)
    assert 0 < expected.mean() < 1 and torch.equal(converted(x)[0], expected)


@pytest.mark.parametrize("learn", [False, True])
def test_copy_to_snntorch_gives_reset_delay_false_layers_their_own_threshold_back(learn):
    # reset_delay=False converts with the next float above the threshold (neurosim's v >= v_th is snnTorch's v > v_th);
    # copy_to_snntorch wrote that strict threshold back, so each round trip raised snnTorch's threshold by a float
    kw = dict(threshold=1.0, reset_delay=False, learn_threshold=learn, init_hidden=True)
    ref = nn.Sequential(nn.Linear(4, 4), snn.Leaky(beta=0.9, reset_mechanism="zero", **kw),
                        nn.Linear(4, 4), snn.Synaptic(alpha=0.5, beta=0.9, reset_mechanism="none", **kw),
                        nn.Linear(4, 4), snn.RLeaky(beta=0.9, linear_features=4, reset_mechanism="zero", **kw))
    net = from_snntorch(ref)
    assert float(net[1].v_th.detach()) > 1.0  # the strict threshold
    copy_to_snntorch(net, ref)
    assert [float(ref[i].threshold.detach()) for i in (1, 3, 5)] == [1.0, 1.0, 1.0]
    with torch.no_grad():  # a trained threshold goes back as the one snnTorch spikes above where neurosim spikes
        net[1].v_th_param.fill_(0.75) if learn else net[1].v_th_value.fill_(0.75)
    copy_to_snntorch(net, ref)
    below = float(torch.nextafter(torch.tensor(0.75), torch.tensor(0.0)))  # snnTorch's v > below is v >= 0.75
    assert float(ref[1].threshold.detach()) == below


@pytest.mark.filterwarnings("ignore:Inhibition is an unstable feature")
def test_state_quant_and_inhibition_say_how_the_layer_converts():
    model = nn.Sequential(nn.Linear(4, 4), snn.Leaky(beta=0.9, init_hidden=True, state_quant=lambda m: m),
                          snn.Leaky(beta=0.9, init_hidden=True, inhibition=True))
    with pytest.raises(UnsupportedSnnTorchError) as info:
        from_snntorch(model)
    quant, inhibition = info.value.problems
    assert quant.startswith("layer 1 (Leaky): state_quant") and "state_quant=False" in quant
    assert inhibition.startswith("layer 2 (Leaky): inhibition=True") and "inhibition=False" in inhibition


def test_a_layer_used_twice_in_a_sequential_converts_at_both_places():
    # nn.Sequential's children() lists a module once: the second MaxPool2d, Dropout and Leaky were dropped silently
    torch.manual_seed(0)
    pool, drop = nn.MaxPool2d(2), nn.Dropout(0.2)
    lif = snn.Leaky(beta=0.8, threshold=0.5)  # init_hidden=False: parameters only, the states are the caller's
    ref = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), pool, snn.Leaky(beta=0.8, init_hidden=True),
                        nn.Conv2d(4, 4, 3, padding=1), pool, drop, nn.Flatten(), drop, nn.Linear(4 * 3 * 3, 5),
                        snn.Leaky(beta=0.8, threshold=0.2, init_hidden=True))
    net = from_snntorch(ref)
    assert len(net) == 10 and isinstance(net[4], type(net[1])) and isinstance(net[7], type(net[5]))
    x = _input(T=5)
    expected = _run_snntorch(ref.eval(), x)
    assert 0 < expected.mean() < 1 and torch.equal(from_snntorch(ref)(x)[0], expected)
    fc1, fc2 = nn.Linear(6, 5), nn.Linear(5, 3)  # one Leaky for two layers, each with its own mem (tutorial style)
    mem1, mem2, spikes = lif.reset_mem(), lif.reset_mem(), []
    x = torch.rand(12, 3, 6) * 3
    for xt in x:
        spk1, mem1 = lif(fc1(xt), mem1)
        spk2, mem2 = lif(fc2(spk1), mem2)
        spikes.append(spk2)
    spikes = torch.stack(spikes)
    assert 0 < spikes.mean() < 1 and torch.equal(from_snntorch([fc1, lif, fc2, lif])(x)[0], spikes)


def test_a_shared_layer_with_weights_or_a_shared_membrane_is_refused():
    fc, lif, bn = nn.Linear(4, 4), snn.Leaky(beta=0.9, init_hidden=True), nn.BatchNorm1d(4)
    learned = snn.Leaky(beta=0.9, learn_beta=True)
    with pytest.raises(UnsupportedSnnTorchError) as info:
        from_snntorch(nn.Sequential(fc, bn, lif, fc, bn, lif, learned, learned))
    problems = info.value.problems
    assert len(problems) == 4
    assert problems[0].startswith("layer 3 (Linear): the same module as layer 0") and "deepcopy" in problems[0]
    assert problems[1].startswith("layer 4 (BatchNorm1d): the same module as layer 1")
    assert problems[2].startswith("layer 5 (Leaky): the same module as layer 2") and "membrane" in problems[2]
    assert problems[3].startswith("layer 7 (Leaky): the same module as layer 6")


def test_per_neuron_values_that_differ_are_refused_with_what_to_do():
    model = nn.Sequential(nn.Linear(4, 4), snn.Leaky(beta=torch.tensor([0.5, 0.6, 0.7, 0.8]),
                                                     threshold=torch.tensor([1.0, 1.0, 2.0, 2.0]), init_hidden=True))
    with pytest.raises(UnsupportedSnnTorchError) as info:
        from_snntorch(model)
    beta, threshold = info.value.problems
    assert beta.startswith("layer 1 (Leaky): per-neuron beta of shape (4,)") and "their mean 0.65," in beta
    assert threshold.startswith("layer 1 (Leaky): per-neuron threshold") and "their mean 1.5," in threshold


def test_each_layer_keeps_its_own_train_or_eval_mode():
    # fine-tuning with a BatchNorm held in eval mode inside a model in train mode: the converted BatchNorm was put in
    # train mode with the rest (batch statistics, running statistics updated), silently
    torch.manual_seed(0)
    ref = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), snn.Leaky(beta=0.8, init_hidden=True), nn.Flatten(),
                        nn.Dropout(0.5), nn.Linear(4 * 10 * 10, 3), snn.Leaky(beta=0.8, init_hidden=True))
    ref.train()
    ref[1].eval()
    ref[4].eval()
    net = from_snntorch(ref)
    assert net.training and net[5].training
    assert not net[1].training and not net[4].training
    x = _input(T=5)
    assert torch.equal(net(x)[0], _run_snntorch(ref, x))  # eval BatchNorm and Dropout: the same spikes in train mode
    assert torch.equal(net[1].running_mean, ref[1].running_mean)


@pytest.mark.parametrize("backend", ["auto", "reference"])
def test_gradients_are_identical_at_the_neurons_and_a_weights_to_rounding(backend):
    """What the docs claim, each part: BPTT gradients with respect to a Leaky's input are snnTorch's bit for bit; a
    Linear's weight gradient only to rounding (neurosim sums its T·B inputs in another order)."""
    torch.manual_seed(0)
    x = torch.rand(12, 4, 20) * 1.5
    net = nn.Sequential(nn.Linear(20, 10), snn.Leaky(beta=0.9, init_hidden=True))
    ns = from_snntorch(net, backend=backend)
    w = torch.rand(12, 4, 10)
    utils.reset(net)
    cur_ref = [net[0](x[t]) for t in range(12)]
    for c in cur_ref:
        c.retain_grad()
    ref = torch.stack([net[1](c) for c in cur_ref])
    (ref * w).sum().backward()
    cur = ns[0](x)  # [T, B, 10], every step at once
    cur.retain_grad()
    out = ns[1](cur)[0]  # (spikes, state)
    (out * w).sum().backward()
    assert torch.equal(out, ref) and 0 < float(ref.detach().mean()) < 1
    assert torch.equal(cur.grad, torch.stack([c.grad for c in cur_ref]))
    torch.testing.assert_close(ns[0].weight.grad, net[0].weight.grad, rtol=1e-5, atol=1e-6)

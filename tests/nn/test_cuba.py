"""CubaLIF: current-based LIF layers (neurosim.nn.cuba) against a hand-written loop of the equations."""

import pytest
import torch

from neurosim.config import ConfigError, ModelConfig, NeuronConfig, config_to_dict
from neurosim.functional import no_temporal_grad
from neurosim.functional.surrogate import Surrogate, spike
from neurosim.nn import LIF, CubaLIF, CubaLIFState, Linear, Sequential, build_model, run_chunked


def _reference(x, alpha, beta, v_th=1.0, reset="subtract", cut=False):
    """i[t] = α·i[t−1] + x[t]; h[t] = β·v[t−1] + i[t]; spike; reset — step by step (``cut``: SLTT's sg)."""
    i = torch.zeros_like(x[0])
    v = torch.zeros_like(x[0])
    out = []
    for xt in x:
        i_in, v_in = (i.detach(), v.detach()) if cut else (i, v)
        i = alpha * i_in + xt
        h = beta * v_in + i
        s = spike(h - v_th, Surrogate("triangle"))
        v = h - v_th * s if reset == "subtract" else h * (1 - s)
        out.append(s)
    return torch.stack(out), i, v


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("cut", [False, True], ids=["bptt", "no_temporal_grad"])
def test_spikes_state_and_gradients_equal_the_equations(reset, cut):
    layer = CubaLIF(alpha=0.75, beta=0.5, surrogate="triangle", reset=reset).double()  # exact in float32 too
    x = (torch.randn(12, 3, 4, dtype=torch.float64) * 0.8).requires_grad_()
    if cut:
        with no_temporal_grad():
            s, state = layer(x)
    else:
        s, state = layer(x)
    ref, i, v = _reference(x, 0.75, 0.5, reset=reset, cut=cut)
    assert torch.equal(s, ref) and 0 < s.mean() < 1
    torch.testing.assert_close(state.i, i, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(state.lif.v, v, rtol=1e-12, atol=1e-12)
    weights = torch.arange(12, dtype=torch.float64)[:, None, None]
    (got,) = torch.autograd.grad((s * weights).sum(), x)
    (want,) = torch.autograd.grad((ref * weights).sum(), x)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_the_current_spreads_an_input_over_steps_and_alpha_zero_is_lif():
    x = torch.zeros(6, 1, 1)
    x[0] = 0.6  # below threshold alone: the decaying current must add up to a spike
    s, state = CubaLIF(alpha=0.9, beta=1.0)(x)
    assert s[0].item() == 0 and s[1].item() == 1  # 0.6, then 0.6 + 0.54
    assert LIF(beta=1.0)(x)[0].sum() == 0
    xs = torch.rand(8, 2, 5) * 2
    assert torch.equal(CubaLIF(alpha=0.0, beta=0.7)(xs)[0], LIF(beta=0.7)(xs)[0])


def test_chunks_with_the_carried_state_equal_one_call():
    torch.manual_seed(0)
    net = Sequential(Linear(4, 6), CubaLIF(alpha=0.8, beta=0.7), Linear(6, 3), CubaLIF(alpha=0.5, beta=0.9)).double()
    x = torch.rand(10, 2, 4, dtype=torch.float64)
    full, state = net(x)
    for steps in (1, 3):
        part, part_state = run_chunked(net, x, steps=steps)
        assert torch.equal(full, part)
        torch.testing.assert_close(state["3"].i, part_state["3"].i, rtol=1e-12, atol=1e-12)


def test_bad_arguments_and_state_are_named():
    with pytest.raises(ValueError, match="tau_syn_ms must be a positive"):
        CubaLIF(tau_syn_ms=-1.0)
    with pytest.raises(ValueError, match="alpha must be in"):
        CubaLIF(alpha=1.5)
    with pytest.raises(ValueError, match="give either tau_syn_ms"):
        CubaLIF(tau_syn_ms=None)
    with pytest.raises(TypeError, match="must be the CubaLIFState it returned"):
        CubaLIF()(torch.rand(3, 2, 4), torch.zeros(2, 4))
    layer = CubaLIF(tau_syn_ms=5.0, dt_ms=1.0)
    assert layer.tau_syn_ms == pytest.approx(5.0)
    _, state = layer(torch.rand(3, 2, 4))
    assert isinstance(state, CubaLIFState)


def test_neuron_tau_syn_ms_builds_cuba_layers_and_is_written_only_when_set():
    net = build_model(ModelConfig(kind="mlp", input_shape=(12,), hidden=(8,), num_classes=3),
                      NeuronConfig(tau_syn_ms=5.0, beta=0.8, reset="zero"))
    cubas = [m for m in net if isinstance(m, CubaLIF)]
    assert len(cubas) == 2 and cubas[0].tau_syn_ms == pytest.approx(5.0) and cubas[0].lif.reset == "zero"
    assert net(torch.rand(5, 2, 12))[0].shape == (5, 2, 3)
    assert config_to_dict(NeuronConfig(tau_syn_ms=5.0))["tau_syn_ms"] == 5.0
    assert "tau_syn_ms" not in config_to_dict(NeuronConfig())
    with pytest.raises(ConfigError, match="tau_syn_ms"):
        NeuronConfig(tau_syn_ms=0.0)
    with pytest.raises(ValueError, match="model.recurrent with neuron.tau_syn_ms"):
        build_model(ModelConfig(kind="mlp", input_shape=(4,), hidden=(3,), recurrent=True), NeuronConfig(tau_syn_ms=5))


def test_errors_about_input_and_state_name_the_cuba_layer_not_its_child():
    layer = CubaLIF()
    with pytest.raises(ValueError, match="CubaLIF expects a time-first tensor"):
        layer(torch.rand(5))
    _, state = layer(torch.rand(3, 2, 4))
    with pytest.raises(ValueError, match=r"CubaLIF's state.i \(the synaptic current\) has shape \(2, 4\)"):
        layer(torch.rand(3, 3, 4), state)
    with pytest.raises(ValueError, match=r"CubaLIF's state.i \(the synaptic current\) is torch.float32"):
        layer.double()(torch.rand(3, 2, 4, dtype=torch.float64), state)


def test_every_builder_refuses_recurrent_current_based_layers():
    from neurosim.nn import conv_snn, mlp_snn

    model = ModelConfig(kind="mlp", input_shape=(4,), hidden=(3,), recurrent=True)
    for build in (mlp_snn, build_model):
        with pytest.raises(ValueError, match="model.recurrent with neuron.tau_syn_ms"):
            build(model, NeuronConfig(tau_syn_ms=5.0))
    with pytest.raises(ValueError, match="model.recurrent with neuron.tau_syn_ms"):
        conv_snn(ModelConfig(input_shape=(1, 8, 8), channels=(2,), kernel_size=3, hidden=(3,), recurrent=True),
                 NeuronConfig(tau_syn_ms=5.0))

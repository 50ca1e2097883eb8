"""Speck / DYNAP-CNN in :mod:`neurosim.hardware.fixed_point`, checked against an independent reference of the chip's
integer integrate-and-fire neurons written from sinabs' source (synsense/sinabs):

* ``sinabs/backend/dynapcnn/discretize.py``: ``DYNAPCNN_WEIGHT_PRECISION_BITS = 8`` (weights and biases),
  ``DYNAPCNN_STATE_PRECISION_BITS = 16`` (the thresholds), ``determine_discretization_scale``,
  ``_discretize_conv_spk_`` (one common scale, the minimum of the three; ``discretize_tensor``: ``torch.round``);
* ``sinabs/activation/spike_generation.py`` ``MultiSpike``: ``(v > 0) · trunc(v / θ)`` spikes per step;
* ``sinabs/activation/reset_mechanism.py``: ``MembraneSubtract`` (``v − spikes·θ``), ``MembraneReset``
  (``v·(spikes == 0) + 0``);
* ``sinabs/layers/functional/lif.py`` with ``IAF`` (``alpha_mem = 1``): ``v ← v + input``, spike, reset, then the
  floor ``v ← relu(v − min_v_mem) + min_v_mem``;
* ``sinabs/backend/dynapcnn/dynapcnn_layer_utils.py`` ``extract_pooling_from_module``: an ``AvgPool2d`` becomes a
  sum pool and the next layer's weights (not its bias) are multiplied by ``1/k²`` before discretisation.

The reference does not import neurosim's fixed-point code; it reads the float model's parameters itself.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from neurosim import nn as nsn
from neurosim.hardware.fixed_point import ChipNeuron, to_chip
from neurosim.hardware.fixed_point.dynapcnn import _sinabs_scale
from fp_helpers import counts as shared_counts

WEIGHT_PRECISION_BITS = 8  # sinabs DYNAPCNN_WEIGHT_PRECISION_BITS (weights and biases)
STATE_PRECISION_BITS = 16  # sinabs DYNAPCNN_STATE_PRECISION_BITS (thresholds, state)
STATE_LOW = -(2 ** 15)  # what sinabs puts in for min_v_mem = None (discretize.py, chips/dynapcnn.py threshold_low)
STATE_TOP = 2 ** 15 - 1  # the chip's 16-bit state register (sinabs' IAF has no upper bound; see iaf_multispike)
F64 = torch.float64


# ------------------------------------------------------------------------------------------ the sinabs reference
def determine_discretization_scale(obj: torch.Tensor, bit_precision: int) -> float:
    """sinabs ``determine_discretization_scale``: the scale that fits ``obj`` into ``bit_precision`` signed bits, the
    negative side taken when it is larger than the positive side by more than the ratio 2^(n−1)/(2^(n−1) − 1)."""
    min_val_disc = -(2 ** (bit_precision - 1))
    max_val_disc = 2 ** (bit_precision - 1) - 1
    min_val_obj = float(torch.min(obj))
    max_val_obj = float(torch.max(obj))
    min_max_ratio_disc = abs(min_val_disc / max_val_disc)
    if abs(min_val_obj) <= abs(max_val_obj) * min_max_ratio_disc:
        return abs(max_val_disc / max_val_obj) if max_val_obj != 0 else math.inf  # (torch: 127 / 0 = inf)
    return abs(min_val_disc / min_val_obj)


def discretize_conv_spk(w: torch.Tensor, b: torch.Tensor | None, threshold: float, min_v_mem) -> dict:
    """sinabs ``_discretize_conv_spk_`` for one weight layer and its ``IAF``: ``min_v_mem`` in model units, or None
    (sinabs then puts −2^15 into the thresholds tensor, as if it were a model-unit value)."""
    w = w.to(F64)
    b = torch.zeros(w.shape[0], dtype=F64) if b is None else b.to(F64)
    low = STATE_LOW if min_v_mem is None else min_v_mem
    thresholds = torch.tensor((low, threshold), dtype=F64)
    scaling = min(determine_discretization_scale(w, WEIGHT_PRECISION_BITS),
                  determine_discretization_scale(b, WEIGHT_PRECISION_BITS),
                  determine_discretization_scale(thresholds, STATE_PRECISION_BITS))
    low_int, th_int = torch.round(thresholds * scaling).tolist()
    return {"scale": scaling, "w": torch.round(w * scaling), "b": torch.round(b * scaling), "threshold": th_int,
            "low": low_int}


def chip_floor_min_v_mem(w: torch.Tensor, b: torch.Tensor | None, threshold: float) -> float:
    """The ``min_v_mem`` (model units) that sinabs discretises to the chip's −2^15: ``−2^15 / s`` with ``s`` the
    scale the weights, biases and threshold alone allow. Then ``determine_discretization_scale`` of
    ``(min_v_mem, θ)`` is ``s`` again, so the layer keeps its scale and its floor is the bottom of the state."""
    w = w.to(F64)
    b = torch.zeros(w.shape[0], dtype=F64) if b is None else b.to(F64)
    s = min(determine_discretization_scale(w, WEIGHT_PRECISION_BITS),
            determine_discretization_scale(b, WEIGHT_PRECISION_BITS),
            (2 ** (STATE_PRECISION_BITS - 1) - 1) / threshold)
    return STATE_LOW / s


def iaf_multispike(current: torch.Tensor, bias: torch.Tensor, threshold: float, low: float, reset: str,
                   events: torch.Tensor | None = None):
    """sinabs ``IAF`` (``MultiSpike``, ``MembraneSubtract``/``MembraneReset``) on integer ``current`` ``[T, B, C, ...]``
    (``W·s`` per step, the bias added every step). Returns ``(spikes, v)``.

    Beyond sinabs: the state is held at the chip's 16-bit top, 2^15 − 1, before the spikes are drawn (sinabs'
    simulation does not bound ``v_mem`` from above; the tests that compare with sinabs proper stay below it), and
    with ``events`` (input events reaching each neuron per step) a neuron fires at most once per event, as the chip
    checks its threshold once per event (sinabs' tips_for_training.md, "Weight Clipping During Training")."""
    bias = bias.reshape(-1, *([1] * (current.dim() - 3)))
    v = torch.zeros_like(current[0])
    out = []
    for t, x in enumerate(current):
        v = v + x + bias
        v = torch.clamp(v, max=STATE_TOP)
        spikes = (v > 0) * torch.div(v, threshold, rounding_mode="trunc")
        if events is not None:
            spikes = torch.minimum(spikes, events[t])
        if reset == "subtract":
            v = v - spikes * threshold
        else:
            v = v * (spikes == 0).to(v.dtype) + 0.0
        v = F.relu(v - low) + low  # sinabs' min_v_mem floor
        out.append(spikes)
    return torch.stack(out), v


def _weighted(x_seq: torch.Tensor, layer: torch.nn.Module, w_int: torch.Tensor) -> torch.Tensor:
    t, b = x_seq.shape[:2]
    flat = x_seq.reshape(t * b, *x_seq.shape[2:])
    if isinstance(layer, torch.nn.Conv2d):
        y = F.conv2d(flat, w_int, None, layer.stride, layer.padding, layer.dilation, layer.groups)
    else:
        y = F.linear(flat, w_int)
    return y.reshape(t, b, *y.shape[1:])


def _sum_pool(x_seq: torch.Tensor, m: torch.nn.AvgPool2d) -> torch.Tensor:
    t, b = x_seq.shape[:2]
    y = F.avg_pool2d(x_seq.reshape(t * b, *x_seq.shape[2:]), m.kernel_size, m.stride, m.padding,
                     divisor_override=1)
    return y.reshape(t, b, *y.shape[1:])


def reference_run(model: nsn.Sequential, x_seq: torch.Tensor, min_v_mem="chip") -> tuple[list, list]:
    """Run ``model`` as sinabs discretises and simulates it on DYNAP-CNN. ``min_v_mem``: ``"chip"`` (each layer's
    floor at the chip's −2^15, :func:`chip_floor_min_v_mem`), None (sinabs' default) or a number (model units).

    Returns ``(outputs, layers)``: each neuron layer's output (spike counts; an ``LI`` read-out's membrane over its
    scale, neurosim's read-out, which sinabs does not have: no leak, weights and bias at one 8-bit scale) and its
    discretisation."""
    x = x_seq.to(F64)
    outputs, layers = [], []
    pending, gain = None, 1.0
    for m in model.children():
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
            b = None if m.bias is None else m.bias.detach().to(F64)
            pending = (m, m.weight.detach().to(F64) * gain, b)
            gain = 1.0
        elif isinstance(m, nsn.LIF):
            assert float(m.beta) == 1.0, "DYNAP-CNN neurons are IAF"
            conv, w, b = pending
            th = float(m.v_th)
            floor = chip_floor_min_v_mem(w, b, th) if min_v_mem == "chip" else min_v_mem
            d = discretize_conv_spk(w, b, th, floor)
            events = _weighted(x, conv, (d["w"] != 0).to(F64))
            x, v = iaf_multispike(_weighted(x, conv, d["w"]), d["b"], d["threshold"], d["low"], m.reset, events)
            outputs.append(x)
            layers.append(d)
        elif isinstance(m, nsn.LI):
            conv, w, b = pending
            b = torch.zeros(w.shape[0], dtype=F64) if b is None else b
            s = min(determine_discretization_scale(w, WEIGHT_PRECISION_BITS),
                    determine_discretization_scale(b, WEIGHT_PRECISION_BITS))
            v = torch.cumsum(_weighted(x, conv, torch.round(w * s)) + torch.round(b * s), 0)
            assert bool((v.abs() <= STATE_TOP).all()), "the test read-out should stay inside the 16-bit state"
            x = v / s
            outputs.append(x)
            layers.append({"scale": s})
        elif isinstance(m, nsn.SumPool2d):
            x = _sum_pool(x, m)
        elif isinstance(m, torch.nn.AvgPool2d):
            x = _sum_pool(x, m)
            k = m.kernel_size if isinstance(m.kernel_size, tuple) else (m.kernel_size, m.kernel_size)
            gain /= k[0] * k[1]
        elif isinstance(m, nsn.Flatten):
            x = x.flatten(2)
        else:
            raise AssertionError(f"the reference has no {type(m).__name__}")
    return outputs, layers


def chip_run(chip, x_seq: torch.Tensor) -> list[torch.Tensor]:
    """Each ChipNeuron's output of ``chip`` on ``x_seq``, layer by layer."""
    outputs, x = [], x_seq
    for m in chip.net.children():
        if nsn.is_stateful(m):
            x, _ = m(x)
        else:
            x = m(x)
        if isinstance(m, ChipNeuron):
            outputs.append(x)
    return outputs


# ------------------------------------------------------------------------------------------ models and data
def mlp(seed: int = 0) -> nsn.Sequential:
    torch.manual_seed(seed)
    model = nsn.Sequential(
        nsn.Linear(12, 16), nsn.LIF(beta=1.0, v_th=1.0, reset="subtract"),
        nsn.Linear(16, 8), nsn.LIF(beta=1.0, v_th=0.7, reset="zero"),
        nsn.Linear(8, 3), nsn.LI(1.0),
    )
    with torch.no_grad():
        model[0].weight.mul_(3.0)
        model[2].weight.mul_(2.0)
    return model


def conv_net(seed: int = 0) -> nsn.Sequential:
    torch.manual_seed(seed)
    model = nsn.Sequential(
        nsn.Conv2d(2, 4, 3, padding=1), nsn.LIF(beta=1.0, v_th=1.0, reset="subtract"),
        nsn.AvgPool2d(2),
        nsn.Conv2d(4, 6, 3, bias=False), nsn.LIF(beta=1.0, v_th=0.5, reset="zero"),
        nsn.SumPool2d(2),
        nsn.Flatten(), nsn.Linear(6, 5), nsn.LIF(beta=1.0, v_th=2.0, reset="subtract"),
    )
    with torch.no_grad():
        model[0].weight.mul_(2.0)
    return model


def counts(shape, seed: int = 1, high: int = 4) -> torch.Tensor:
    """The shared seeded counts, up to 3 events per pixel and step here."""
    return shared_counts(shape, seed, high)


# ------------------------------------------------------------------------------------------ chip == sinabs
@pytest.mark.parametrize("make, shape", [(mlp, (15, 3, 12)), (conv_net, (12, 2, 2, 8, 8))], ids=["mlp", "conv"])
def test_chip_spikes_equal_the_sinabs_reference(make, shape):
    """Spike counts (and the read-out) equal sinabs' discretisation with each layer's ``min_v_mem`` at the chip's
    state floor −2^15 (:func:`chip_floor_min_v_mem`): the configuration fixed_point simulates.

    How that differs from sinabs' default, ``min_v_mem = None``: sinabs then computes the threshold's scale from the
    tensor ``(−2^15, θ)`` as if −2^15 were in model units, so for any θ < 32767 that scale is 2^15/2^15 = 1 and the
    layer's common scale is ``min(s_w, s_b, 1)``; the floor it writes to the chip is ``round(−2^15·scale)``.
    fixed_point takes ``min(s_w, s_b, 32767/θ)`` (the threshold alone, which equals sinabs for any
    ``|min_v_mem| ≤ θ·32768/32767``) and floors the state at −2^15, as its module docstring says. See
    :func:`test_min_v_mem_none_is_not_what_fixed_point_simulates`."""
    model = make()
    x = counts(shape)
    ref, layers = reference_run(model, x)
    chip = to_chip(model, "speck")
    got = chip_run(chip, x)
    assert len(got) == len(ref) == len(chip.layers)
    for i, (g, r) in enumerate(zip(got, ref)):
        torch.testing.assert_close(g, r, rtol=0, atol=0, msg=f"layer {i}")
        row = chip.layers[i]
        assert row["scale"] == pytest.approx(layers[i]["scale"], rel=1e-12)
        if "threshold" in layers[i]:
            assert row["threshold_int"] == layers[i]["threshold"]
    spikes = [r for r, d in zip(ref, layers) if "threshold" in d]
    assert all(s.sum() > 0 and (s == 0).any() for s in spikes)  # every layer fires, not everywhere
    assert max(float(s.max()) for s in spikes) >= 2  # MultiSpike: several spikes of one neuron in one step
    final, _ = chip(x)
    torch.testing.assert_close(final, ref[-1], rtol=0, atol=0)


def test_chip_integer_weights_biases_and_thresholds_equal_sinabs():
    model = mlp(3)
    chip = to_chip(model, "speck")
    _, layers = reference_run(model, counts((2, 1, 12)))
    synapses = [m for m in chip.net.children() if hasattr(m, "weight_int")]
    neurons = [m for m in chip.net.children() if isinstance(m, ChipNeuron)]
    for syn, neu, d in zip(synapses, neurons, layers[:2]):
        assert torch.equal(syn.weight_int, d["w"])
        assert torch.equal(neu.bias_int, d["b"])
        assert neu.threshold == d["threshold"]
        assert syn.weight_int.abs().max() <= 128 and neu.bias_int.abs().max() <= 128


def test_state_limits_as_the_chip_holds_them():
    """A neuron driven below −2^15 stays at −2^15 (so a later push of +38400 leaves 5632 = 44 thresholds, not 0), and
    one driven above 2^15 − 1 fires from 2^15 − 1 (255 spikes, 127 left)."""
    model = nsn.Sequential(nsn.Linear(2, 1, bias=False), nsn.LIF(beta=1.0, v_th=1.0, reset="subtract"))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[-1.0, 0.5]]))  # scale 128/1: words −128, 64; threshold 128
    x = torch.tensor([[300.0, 0.0], [0.0, 600.0], [0.0, 600.0]]).reshape(3, 1, 2)
    ref, layers = reference_run(model, x)
    assert layers[0]["w"].tolist() == [[-128.0, 64.0]] and layers[0]["threshold"] == 128
    assert layers[0]["low"] == STATE_LOW
    assert ref[0].flatten().tolist() == [0.0, 44.0, 255.0]
    chip = to_chip(model, "speck")
    out, state = chip(x)
    assert out.flatten().tolist() == [0.0, 44.0, 255.0]
    assert state["1"][1].item() == 127.0
    assert chip.counts()["1"]["saturated"] == 2


# ------------------------------------------------------------------------------------------ sinabs' min_v_mem = None
def test_sinabs_min_v_mem_none_caps_the_scale_at_one():
    """What sinabs does with ``min_v_mem = None``: the thresholds tensor is ``(−2^15, θ)``, so for θ < 32767 its
    16-bit scale is 1 and the layer's scale is at most 1 (here the weights alone would allow 127/0.5 = 254)."""
    w = torch.tensor([[0.5, -0.25]])
    d = discretize_conv_spk(w, None, 1.0, None)
    assert d["scale"] == 1.0 and d["threshold"] == 1.0 and d["low"] == STATE_LOW
    assert d["w"].tolist() == [[0.0, -0.0]]  # torch.round(0.5) = 0: the weights vanish
    assert discretize_conv_spk(w, None, 1.0, -1.0)["scale"] == 254.0  # a floor within θ: the weights decide
    assert discretize_conv_spk(w, None, 1.0, chip_floor_min_v_mem(w, None, 1.0))["scale"] == pytest.approx(254.0)


def test_min_v_mem_none_is_not_what_fixed_point_simulates():
    """The documented difference: sinabs' default floor (None) caps the scale at 1, fixed_point does not."""
    model = mlp(0)
    chip = to_chip(model, "speck")
    _, layers = reference_run(model, counts((2, 1, 12)), min_v_mem=None)
    assert [d["scale"] for d in layers[:2]] == [1.0, 1.0]
    assert all(r["scale"] > 100 for r in chip.layers[:2])


# ------------------------------------------------------------------------------------------ hand-computed cases
@pytest.mark.parametrize("reset, kept", [("subtract", 127.0), ("zero", 0.0)])
def test_two_and_a_half_thresholds_give_two_spikes(reset, kept):
    """w = 0.5, θ = 1: scale 127/0.5 = 254, word 127, threshold 254. Five input events bring v to 635 = 2.5 θ: two
    spikes, and 0.5 θ = 127 kept (subtract) or 0 (zero)."""
    model = nsn.Sequential(nsn.Linear(1, 1, bias=False), nsn.LIF(beta=1.0, v_th=1.0, reset=reset))
    with torch.no_grad():
        model[0].weight.fill_(0.5)
    chip = to_chip(model, "speck")
    assert chip.layers[0]["threshold_int"] == 254 and chip.net[0].weight_int.item() == 127
    out, state = chip(torch.tensor([5.0, 0.0]).reshape(2, 1, 1))
    assert out.flatten().tolist() == [2.0, 0.0]
    assert state["1"][1].item() == kept


@pytest.mark.parametrize("values, scale", [
    ([-0.5, 0.25, 0.1], 128 / 0.5),  # the negative side dominates: 128/|min|
    ([-0.25, 0.5, 0.1], 127 / 0.5),  # the positive side: 127/max
    ([-1.0, 127 / 128], 128.0),  # |min| = max·128/127: both sides give 128
    ([0.0, 0.0], math.inf),  # zeros impose no limit
    ([0.2, 0.4], 127 / 0.4),
    ([-0.4, -0.2], 128 / 0.4),
])
def test_sinabs_scale_by_hand(values, scale):
    t = torch.tensor(values, dtype=F64)
    assert _sinabs_scale(t, 8) == pytest.approx(scale, rel=1e-12)
    assert _sinabs_scale(t, 8) == pytest.approx(determine_discretization_scale(t, 8), rel=1e-12)


def test_sinabs_scale_matches_the_reference_on_random_tensors():
    g = torch.Generator().manual_seed(4)
    for i in range(50):
        t = (torch.randn(7, generator=g, dtype=F64) + (i % 5 - 2) * 0.3) * 10 ** (i % 3 - 1)
        for bits in (8, 16):
            assert _sinabs_scale(t, bits) == pytest.approx(determine_discretization_scale(t, bits), rel=1e-12)


# ------------------------------------------------------------------------------------------ what Speck cannot run
def test_leak_is_dropped_and_named():
    torch.manual_seed(0)
    leaky = nsn.Sequential(nsn.Linear(6, 5), nsn.LIF(beta=0.9), nsn.Linear(5, 4), nsn.LIF(beta=1.0),
                           nsn.Linear(4, 2), nsn.LIF(beta=0.5))
    chip = to_chip(leaky, "speck")
    notes = [n for n in chip.notes if "leak" in n]
    assert len(notes) == 1 and notes[0].split(":")[0] == "1, 5" and "β < 1" in notes[0]  # layer 3 has β = 1
    assert [r["beta_chip"] for r in chip.layers] == [1.0, 1.0, 1.0]
    iaf = nsn.Sequential(*[nsn.LIF(beta=1.0) if isinstance(m, nsn.LIF) else m for m in leaky])
    x = counts((10, 2, 6), high=3)
    assert torch.equal(chip(x)[0], to_chip(iaf, "speck")(x)[0])
    assert [n.split(":")[1][:44] for n in to_chip(iaf, "speck").notes] == [" per step a Speck neuron fires once per thre"]


def test_a_steps_events_are_summed_before_the_threshold_and_the_report_says_the_order_is_not_kept():
    # weights +1 and -1, threshold 1: both inputs spike in the same step. Summed, the membrane stays at 0 and the
    # neuron is silent; the chip, taking the +1 event first, would fire and then fall to -1. Frames do not keep
    # the events' order, so the simulation sums; the report must say so.
    lin = nsn.Linear(2, 1, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, -1.0]]))
    chip = to_chip(nsn.Sequential(lin, nsn.LIF(beta=1.0, v_th=1.0)), "speck")
    out = chip(torch.ones(1, 1, 2))[0]
    assert out.sum().item() == 0
    (note,) = [n for n in chip.notes if "Speck neuron fires" in n]
    assert "one at a time in the order they arrive" in note and "summed before the threshold" in note


@pytest.mark.parametrize("neuron, what", [
    (lambda: nsn.CubaLIF(alpha=0.5, beta=1.0), "CubaLIF"),
    (lambda: nsn.RLIF(4, beta=1.0), "RLIF"),
    (lambda: nsn.LIF(beta=1.0, reset="none"), "reset='none'"),
])
def test_layers_speck_cannot_run_are_named(neuron, what):
    model = nsn.Sequential(nsn.Linear(3, 4), nsn.LIF(beta=1.0), nsn.Linear(4, 4), neuron())
    with pytest.raises(ValueError, match=r"^3: ") as info:
        to_chip(model, "speck")
    assert what in str(info.value)


def _pooled(pool) -> nsn.Sequential:
    torch.manual_seed(2)
    model = nsn.Sequential(nsn.Conv2d(1, 3, 3, padding=1), nsn.LIF(beta=1.0, v_th=0.5), pool,
                           nsn.Flatten(), nsn.Linear(12, 2), nsn.LIF(beta=1.0, v_th=0.5))
    with torch.no_grad():
        model[0].weight.mul_(3.0)
    return model


def test_max_pool_refused_or_run_as_sum_pool():
    model = _pooled(nsn.MaxPool2d(2))
    with pytest.raises(ValueError, match=r"^2: Speck pools by summing"):
        to_chip(model, "speck", maxpool="error")
    with pytest.raises(ValueError, match="maxpool must be"):
        to_chip(model, "speck", maxpool="max")
    summed = to_chip(_pooled(nsn.SumPool2d(2)), "speck")
    x = counts((8, 2, 1, 4, 4))
    want, _ = summed(x)
    assert want.sum() > 0
    for option in (None, "sumpool"):
        chip = to_chip(model, "speck", maxpool=option)
        assert any(isinstance(m, nsn.SumPool2d) for m in chip.net)
        assert not any(isinstance(m, torch.nn.MaxPool2d) for m in chip.net)
        assert [n for n in chip.notes if n.startswith("2: Speck has no max pooling")]
        assert torch.equal(chip(x)[0], want)
    ref, _ = reference_run(_pooled(nsn.SumPool2d(2)), x)
    assert torch.equal(want, ref[-1])


def test_li_read_out_without_leak_equals_the_reference_running_sum():
    """An ``LI(β = 1)`` read-out on Speck: the running sum of the integer input over the layer's scale (neurosim's
    read-out; sinabs has none), for a model that is nothing but the read-out too."""
    torch.manual_seed(1)
    model = nsn.Sequential(nsn.Linear(4, 3), nsn.LI(1.0))
    x = counts((6, 2, 4))
    ref, layers = reference_run(model, x)
    chip = to_chip(model, "speck")
    torch.testing.assert_close(chip(x)[0], ref[0], rtol=0, atol=0)
    assert not chip.notes and chip.layers[0]["threshold_int"] == 0


def test_a_model_ending_in_a_weight_layer_is_refused_on_speck():
    """Speck's cores output neurons' events or states, not synaptic sums (Loihi reads them as an LI with β ≈ 0)."""
    torch.manual_seed(1)
    model = nsn.Sequential(nsn.Linear(4, 3))
    with pytest.raises(ValueError, match="^0: the model ends in a weight layer; Speck"):
        to_chip(model, "speck")
    x = counts((6, 2, 4))
    chip = to_chip(model, "loihi")
    assert chip.net[1].decay_v == 4095  # the fastest decay Loihi has; a note says β = 0 is out of reach
    assert any("ends in a weight layer; its sums are read from a compartment with Loihi's fastest decay (4095/4096"
               in n for n in chip.notes)
    assert chip(x)[0].shape == (6, 2, 3)


def test_a_neuron_fires_at_most_once_per_input_event():
    """One event through a weight of 3θ (word 127, threshold 42): sinabs' MultiSpike would emit 3 spikes in the
    step; the chip checks its threshold once per event, so 1 spike and 85 kept (subtract); with no event the next
    step nothing fires although v > θ; two events then fire twice. A negative event counts as an event too."""
    model = nsn.Sequential(nsn.Linear(2, 1, bias=False), nsn.LIF(beta=1.0, v_th=1.0, reset="subtract"))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[3.0, -0.1]]))
    chip = to_chip(model, "speck")
    assert chip.layers[0]["threshold_int"] == 42 and chip.net[0].weight_int.flatten().tolist() == [127.0, -4.0]
    x = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 2.0], [1.0, 1.0]]).reshape(4, 1, 2)
    out, state = chip(x)
    # v: 127 → 1 spike, 85 | no event: 85, 0 spikes | 2 events: 85 − 8 = 77 → 1 spike (⌊77/42⌋ = 1), 35
    # | 2 events: 35 + 127 − 4 = 158 → ⌊158/42⌋ = 3, capped at 2: 74
    assert out.flatten().tolist() == [1.0, 0.0, 1.0, 2.0]
    assert state["1"][1].item() == 74.0


def test_negative_input_is_refused_on_speck():
    """A −1 (an OFF event of a delta encoding) is no event count: it would cancel events and give negative spikes."""
    model = nsn.Sequential(nsn.Linear(2, 1, bias=False), nsn.LIF(beta=1.0, v_th=1.0))
    chip = to_chip(model, "speck")
    with pytest.raises(ValueError, match=r"^0: Speck's inputs are spikes .*negative values \(e\.g\. -1: OFF events"):
        chip(torch.tensor([[1.0, -1.0]]).reshape(1, 1, 2))


def test_a_calls_input_events_are_not_left_for_the_next_call():
    model = nsn.Sequential(nsn.Linear(2, 1, bias=False), nsn.LIF(beta=1.0, v_th=1.0))
    chip = to_chip(model, "speck")
    chip(torch.ones(3, 2, 2))
    assert chip.net[0].events is None  # taken by the neuron (not kept alive, nor read by a later call)

"""neurosim.hardware.fixed_point: errors name what was wrong (the target, the layer, the input), BatchNorm folds and
Dropout drops as documented, snnTorch models convert, and evaluate_fixed_point reports accuracies over the samples
it was given."""

from __future__ import annotations

import re

import pytest
import torch

from neurosim import nn as nsn
from neurosim.hardware.fixed_point import (chip_format, evaluate_fixed_point, fixed_point_targets, format_fixed_point,
                                          to_chip)
from fp_helpers import counts

F64 = torch.float64
CHIPS = ["speck", "loihi", "spinnaker"]


def small(seed: int = 0, n_in: int = 6) -> nsn.Sequential:
    torch.manual_seed(seed)
    model = nsn.Sequential(nsn.Linear(n_in, 8), nsn.LIF(beta=1.0, v_th=0.5), nsn.Linear(8, 3), nsn.LI(1.0))
    with torch.no_grad():
        model[0].weight.mul_(2.0)
    return model


# ------------------------------------------------------------------------------------------ targets
def test_fixed_point_targets_are_the_specs_with_an_arithmetic():
    assert fixed_point_targets() == ["loihi", "loihi_sanafe", "speck", "spinnaker"]
    fmt = chip_format("speck")
    assert (fmt.arithmetic, fmt.weight_bits, fmt.bias_bits, fmt.state_bits, fmt.threshold_bits) == \
        ("dynapcnn", 8, 8, 16, 16)
    assert chip_format("loihi").arithmetic == "loihi"
    fmt = chip_format("spinnaker")
    assert (fmt.arithmetic, fmt.weight_bits, fmt.state_bits, fmt.fraction_bits, fmt.decay_bits) == \
        ("spinnaker", 16, 32, 15, 32)


@pytest.mark.parametrize("target, why", [
    ("truenorth", "gives no arithmetic"),
    ("spinnaker2", "gives no arithmetic"),
    ("rram_neurosim", "is a crossbar target"),
    ("conventional_45nm", "is a conventional target"),
])
def test_targets_without_integer_arithmetic_are_named(target, why):
    with pytest.raises(ValueError, match=f"^target '{target}'") as info:
        chip_format(target)
    assert why in str(info.value)
    with pytest.raises(ValueError, match=f"^target '{target}'.*{why}"):
        to_chip(small(), target)
    if "arithmetic" in why:  # and it says which targets can be simulated
        assert "['loihi', 'loihi_sanafe', 'speck', 'spinnaker']" in str(info.value)


# ------------------------------------------------------------------------------------------ input and layers
@pytest.mark.parametrize("target", CHIPS)
def test_non_integer_input_names_the_first_layer(target):
    chip = to_chip(small(), target)  # building is fine; running on a fraction is not
    x = counts((4, 2, 6))
    x[2, 1, 3] = 0.5
    with pytest.raises(ValueError, match=r"^0: a chip takes spikes or event counts.*non-integer values \(e.g. 0.5\)"):
        chip(x)
    assert chip(counts((4, 2, 6)))[0].shape == (4, 2, 3)  # whole numbers run


def test_non_integer_input_names_a_nested_first_layer():
    torch.manual_seed(0)
    model = nsn.Sequential()
    model.add_module("encoder", nsn.Sequential(nsn.Conv2d(1, 2, 3), nsn.LIF(beta=1.0)))
    model.add_module("flat", nsn.Flatten())
    model.add_module("head", nsn.Linear(8, 2))
    chip = to_chip(model, "loihi")  # (Speck refuses a model ending in a weight layer)
    with pytest.raises(ValueError, match=r"^encoder\.0: a chip takes spikes"):
        chip(torch.full((2, 1, 1, 4, 4), 0.25))


@pytest.mark.parametrize("target", CHIPS)
@pytest.mark.parametrize("layers, match", [
    (lambda: [nsn.LIF(beta=1.0), nsn.Linear(3, 2), nsn.LIF(beta=1.0)],
     r"^0: a neuron layer without a Linear/Conv2d before it"),
    (lambda: [nsn.Linear(3, 4), nsn.LIF(beta=1.0), nsn.LIF(beta=1.0)],
     r"^2: a neuron layer without a Linear/Conv2d before it"),
    (lambda: [nsn.Linear(3, 4), nsn.Linear(4, 2), nsn.LIF(beta=1.0)],
     r"^1: comes between the weight layer '0' and its neurons"),
    (lambda: [nsn.Linear(3, 4), nsn.LIF(beta=1.0), nsn.BatchNorm1d(4), nsn.Linear(4, 2), nsn.LIF(beta=1.0)],
     r"^2: a BatchNorm not right after a Linear/Conv2d cannot be folded"),
    (lambda: [nsn.Linear(3, 4), nsn.Flatten(), nsn.LIF(beta=1.0)],
     r"^1: comes between the weight layer '0' and its neurons"),
    (lambda: [nsn.Linear(3, 4), nsn.LIF(beta=1.0), torch.nn.ReLU()],
     r"^2: ReLU has no chip equivalent"),
    (lambda: [nsn.Flatten()], "no weight layer"),
])
def test_layer_order_a_chip_cannot_run_is_named(target, layers, match):
    with pytest.raises(ValueError, match=match):
        to_chip(nsn.Sequential(*layers()), target)


def _bn_model(conv: bool) -> nsn.Sequential:
    torch.manual_seed(5)
    if conv:
        layers = [nsn.Conv2d(2, 4, 3), nsn.BatchNorm2d(4), nsn.LIF(beta=1.0, v_th=0.6), nsn.Flatten(),
                  nsn.Linear(64, 3), nsn.LIF(beta=1.0, v_th=0.6)]
    else:
        layers = [nsn.Linear(6, 5), nsn.BatchNorm1d(5), nsn.LIF(beta=1.0, v_th=0.6), nsn.Linear(5, 3),
                  nsn.LIF(beta=1.0, v_th=0.6)]
    model = nsn.Sequential(*layers)
    bn = model[1]
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(bn.num_features) * 0.2)
        bn.running_var.copy_(torch.rand(bn.num_features) + 0.5)
        bn.weight.copy_(torch.rand(bn.num_features) + 0.5)
        bn.bias.copy_(torch.randn(bn.num_features) * 0.3)
    return model.eval()


def _folded_by_hand(model: nsn.Sequential) -> nsn.Sequential:
    """``W' = W·γ/√(σ² + ε)``, ``b' = (b − μ)·γ/√(σ² + ε) + β`` (float64), and the BatchNorm removed."""
    lin, bn = model[0], model[1]
    k = bn.weight.detach().to(F64) / torch.sqrt(bn.running_var.to(F64) + bn.eps)
    shape = (-1,) + (1,) * (lin.weight.dim() - 1)
    first = (nsn.Conv2d(lin.in_channels, lin.out_channels, lin.kernel_size, dtype=F64)
             if isinstance(lin, torch.nn.Conv2d) else nsn.Linear(lin.in_features, lin.out_features, dtype=F64))
    with torch.no_grad():
        first.weight.copy_(lin.weight.to(F64) * k.reshape(shape))
        first.bias.copy_((lin.bias.to(F64) - bn.running_mean.to(F64)) * k + bn.bias.to(F64))
    return nsn.Sequential(first, *list(model)[2:])


@pytest.mark.parametrize("target", CHIPS)
@pytest.mark.parametrize("conv", [False, True], ids=["linear", "conv"])
def test_batchnorm_after_a_weight_layer_is_folded(target, conv):
    model = _bn_model(conv)
    x = counts((10, 3, 2, 6, 6) if conv else (10, 3, 6))
    chip, hand = to_chip(model, target), to_chip(_folded_by_hand(model), target)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in chip.modules())
    assert torch.equal(chip.net[0].weight_int, hand.net[0].weight_int)
    assert torch.equal(chip.net[1].bias_int, hand.net[1].bias_int)
    assert chip.net[1].bias_int.abs().sum() > 0  # the BatchNorm's shift became a bias
    out, _ = chip(x)
    assert torch.equal(out, hand(x)[0])
    first = chip.layers[0]["layer"]
    assert chip.counts()[first]["spikes"] > 0 and list(chip.counts().values()) == list(hand.counts().values())


@pytest.mark.parametrize("target", CHIPS)
def test_dropout_is_dropped(target):
    torch.manual_seed(0)
    plain = small()
    layers = list(plain)
    dropped = nsn.Sequential(layers[0], nsn.Dropout(0.5), layers[1], torch.nn.Dropout(0.3), layers[2], layers[3])
    dropped.train()  # even in training mode: the chip has no dropout
    chip = to_chip(dropped, target)
    assert not any(isinstance(m, (nsn.Dropout, torch.nn.Dropout)) for m in chip.modules())
    x = counts((8, 4, 6))
    assert torch.equal(chip(x)[0], to_chip(plain, target)(x)[0])


# ------------------------------------------------------------------------------------------ snnTorch
def _snntorch_pair():
    snn = pytest.importorskip("snntorch")
    torch.manual_seed(3)
    net = torch.nn.Sequential(
        torch.nn.Linear(6, 8), snn.Leaky(beta=0.9, threshold=0.5, init_hidden=True),
        torch.nn.Linear(8, 3), snn.Leaky(beta=0.8, threshold=0.5, init_hidden=True, output=True),
    )
    with torch.no_grad():
        net[0].weight.mul_(2.0)
        net[2].weight.mul_(3.0)
    hand = nsn.Sequential(nsn.Linear(6, 8), nsn.LIF(beta=0.9, v_th=0.5, reset_timing="delayed"),
                          nsn.Linear(8, 3), nsn.LIF(beta=0.8, v_th=0.5, reset_timing="delayed"))
    hand.load_state_dict({k: v for k, v in net.state_dict().items() if k.split(".")[0] in ("0", "2")}, strict=False)
    return net, hand


@pytest.mark.parametrize("target", CHIPS)
def test_snntorch_sequential_converts(target):
    net, hand = _snntorch_pair()
    chip, want = to_chip(net, target), to_chip(hand, target)
    assert [r["neuron"] for r in chip.layers] == ["LIF", "LIF"]
    assert [r["layer"] for r in chip.layers] == ["1", "3"]
    x = counts((12, 4, 6))
    out, _ = chip(x)
    assert out.sum() > 0 and torch.equal(out, want(x)[0])
    assert chip.notes == want.notes
    if target == "speck":
        assert any(n.startswith("1, 3:") and "β < 1" in n for n in chip.notes)


def test_speck_notes_the_delayed_reset_as_loihi_does():
    _, hand = _snntorch_pair()
    for target in CHIPS:
        notes = to_chip(hand, target).notes
        assert any("resets a step late" in n for n in notes), (target, notes)


# ------------------------------------------------------------------------------------------ evaluate_fixed_point
def _loader(batches: int = 3, batch: int = 4, seed: int = 7):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randint(0, 3, (10, batch, 6), generator=g).float(), torch.randint(0, 3, (batch,), generator=g))
            for _ in range(batches)]


@pytest.mark.parametrize("target", CHIPS)
def test_evaluate_fixed_point_reports_accuracies_over_the_samples(target):
    model = small(2)
    loader = _loader()
    model.train()
    report = evaluate_fixed_point(model, loader, target)
    assert model.training  # its mode is restored
    assert report["target"] == target and report["samples"] == 12
    for key in ("float_acc", "chip_acc", "agreement"):
        assert 0.0 <= report[key] <= 100.0
    x = torch.cat([b[0] for b in loader], 1)
    y = torch.cat([b[1] for b in loader])
    with torch.no_grad():
        pf = model.eval()(x)[0].sum(0).argmax(-1)
    pc = to_chip(model, target)(x)[0].sum(0).argmax(-1)
    assert report["float_acc"] == pytest.approx(100.0 * float((pf == y).float().mean()))
    assert report["chip_acc"] == pytest.approx(100.0 * float((pc == y).float().mean()))
    assert report["agreement"] == pytest.approx(100.0 * float((pf == pc).float().mean()))
    assert [r["layer"] for r in report["layers"]] == ["1", "3"]
    for row in report["layers"]:
        assert {"scale", "threshold_int", "weights_zero", "spikes_per_neuron_step", "saturated_updates"} <= set(row)
    assert report["layers"][0]["spikes_per_neuron_step"] > 0


@pytest.mark.parametrize("target", CHIPS)
def test_evaluate_fixed_point_takes_a_frameloaders_counts_compact_a_chunk_of_steps_at_a_time(target, monkeypatch):
    """Each block of samples was made float32 (float64 for the chip) over all T steps and run in one call; a
    FrameLoader's uint8 counts now stay compact and each model runs a chunk of steps at a time, with the same
    report, bit for bit."""
    from conversions import IntToFloatCopies

    from neurosim.data import FrameLoader
    from neurosim.hardware import nonideal

    model = small(2)
    g = torch.Generator().manual_seed(3)
    frames = torch.randint(0, 3, (160, 10, 6), generator=g, dtype=torch.uint8)  # [N, T, ...]: blocks of 128 and 32
    labels = torch.randint(0, 3, (160,), generator=g)
    with IntToFloatCopies() as copies:
        report = evaluate_fixed_point(model, FrameLoader(frames, labels, batch_size=80), target)
    inputs = [s for s in copies.shapes if len(s) == 3]  # [steps, B, 6] (not a step's spikes made float, [B, 8])
    assert inputs and all(s[0] < 10 for s in inputs), inputs  # never all T steps at once
    monkeypatch.setattr(nonideal, "time_chunk", lambda _model, x_seq: x_seq.shape[0])  # one call over all T steps
    floats = [(frames[i:i + 80].transpose(0, 1).float(), labels[i:i + 80]) for i in (0, 80)]
    assert evaluate_fixed_point(model, floats, target) == report
    assert report["samples"] == 160 and report["layers"][0]["spikes_per_neuron_step"] > 0


def test_evaluate_fixed_point_max_samples_and_empty_loader():
    model = small(2)
    assert evaluate_fixed_point(model, _loader(), "speck", max_samples=5)["samples"] == 5
    assert evaluate_fixed_point(model, _loader(), "speck", max_samples=100)["samples"] == 12
    with pytest.raises(ValueError, match="no samples"):
        evaluate_fixed_point(model, [], "speck")
    with pytest.raises(ValueError, match="^0: a chip takes spikes"):
        evaluate_fixed_point(model, [(torch.full((3, 2, 6), 0.5), torch.zeros(2, dtype=torch.long))], "speck")


@pytest.mark.parametrize("target", CHIPS)
def test_batchnorm_without_running_statistics_is_named(target):
    model = nsn.Sequential(nsn.Linear(3, 2), nsn.BatchNorm1d(2, track_running_stats=False), nsn.LIF(beta=1.0))
    with pytest.raises(ValueError, match=r"^1: BatchNorm without running statistics"):
        to_chip(model, target)


def test_conv_padding_mode_error_names_the_layer():
    torch.manual_seed(0)
    model = nsn.Sequential(nsn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"), nsn.LIF(beta=1.0))
    with pytest.raises(ValueError, match="padding_mode='reflect'") as info:
        to_chip(model, "speck")
    assert str(info.value).startswith("0: "), str(info.value)


# ------------------------------------------------------------------------------------------ from the second read
def test_the_float_spike_rate_is_the_float_models_own():
    """The report's float rate counts the float model's spikes only (not those of the weights-only copy too)."""
    model = small(2)
    loader = _loader()
    rates = {}

    def hook(name):
        def count(_m, _i, out):
            rates.setdefault(name, []).append(out[0])
        return count

    model.eval()
    handles = [model[1].register_forward_hook(hook("1"))]
    with torch.no_grad():
        for x, _ in loader:
            model(x)
    for h in handles:
        h.remove()
    report = evaluate_fixed_point(model, loader, "loihi")
    row = report["layers"][0]
    s = torch.cat(rates["1"], 1)
    assert 0 < float(s.mean()) < 1
    assert row["float_spikes_per_neuron_step"] == pytest.approx(float(s.double().sum()) / s.numel(), rel=1e-12)
    assert report["layers"][1]["float_spikes_per_neuron_step"] is None  # (the LI read-out does not spike)
    assert not model[1]._forward_hooks  # the report's hooks are gone


@pytest.mark.parametrize("target", CHIPS)
def test_an_li_layer_can_only_be_the_read_out(target):
    mid = nsn.Sequential(nsn.Linear(4, 3), nsn.LI(0.9), nsn.Linear(3, 2), nsn.LIF(beta=1.0))
    with pytest.raises(ValueError, match=r"^1: a non-spiking LI layer feeds the layers after it"):
        to_chip(mid, target)
    pooled = nsn.Sequential(nsn.Conv2d(1, 2, 3), nsn.LI(1.0), nsn.SumPool2d(2))
    with pytest.raises(ValueError, match=r"^1: a non-spiking LI layer feeds the layers after it \(2\)"):
        to_chip(pooled, target)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_models_in_other_float_dtypes_are_evaluated_in_their_dtype(dtype):
    model = small(2).to(dtype).eval()
    loader = _loader()
    report = evaluate_fixed_point(model, loader, "loihi")
    assert report["samples"] == 12
    x = torch.cat([b[0] for b in loader], 1)
    y = torch.cat([b[1] for b in loader])
    with torch.no_grad():
        pf = model(x.to(dtype))[0].sum(0).argmax(-1)  # the model in its own dtype
    assert report["float_acc"] == pytest.approx(100.0 * float((pf == y).double().mean()))


def test_saturation_is_counted_at_the_top_and_at_the_floor():
    """Negative weights drive a leak-free Speck membrane down to its −2^15 floor; nothing reaches the top."""
    model = nsn.Sequential(nsn.Linear(2, 1, bias=False), nsn.LIF(beta=1.0, v_th=1.0))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[-1.0, 0.01]]))
    chip = to_chip(model, "speck")
    chip(torch.tensor([[300.0, 0.0]]).repeat(5, 1).reshape(5, 1, 2))
    c = chip.counts()["1"]
    assert c["at_floor"] > 0 and c["at_top"] == 0 and c["saturated"] == c["at_floor"]
    report = evaluate_fixed_point(model, [(torch.tensor([[300.0, 0.0]]).repeat(5, 1).reshape(5, 1, 2),
                                           torch.zeros(1, dtype=torch.long))], "speck")
    row = report["layers"][0]
    assert row["saturated_at_floor"] == row["saturated_updates"] > 0 and row["saturated_at_top"] == 0
    assert "held at top/floor" in format_fixed_point(report)


def test_a_cuba_bias_with_alpha_one_survives_in_the_weights_only_model():
    from neurosim.hardware.fixed_point import chip_weights_model

    model = nsn.Sequential(nsn.Linear(3, 2), nsn.CubaLIF(alpha=1.0, beta=0.9))
    with torch.no_grad():
        model[0].bias.fill_(0.01)
    chip = to_chip(model, "loihi")
    copy = chip_weights_model(model, chip)
    assert torch.allclose(copy[0].bias, model[0].bias, atol=chip.layers[0]["weight_lsb"])
    assert bool((copy[0].bias != 0).all())


def test_a_shared_v_gets_the_chips_weights_and_the_model_keeps_its_own():
    # the weights-only model removed the shared V's parametrization from its copy with remove_parametrizations,
    # which deletes the weight from the class the copy shares with the model's layer, and failed itself on the
    # expanded value ("more than one element of the written-to tensor refers to a single memory location"); the model
    # then had no recurrent weight ("'ParametrizedDiagonalRecurrent' object has no attribute 'weight'")
    snn = pytest.importorskip("snntorch")
    from neurosim.hardware.fixed_point import chip_weights_model
    from neurosim.interop import from_snntorch

    model = from_snntorch(torch.nn.Sequential(torch.nn.Linear(5, 4), snn.RLeaky(beta=0.9, all_to_all=False, V=0.5,
                                                                                 init_hidden=True)))
    copy = chip_weights_model(model, to_chip(model, "loihi"))
    w = copy[1].recurrent.weight.detach()
    assert w.shape == (4,) and torch.allclose(w, model[1].recurrent.weight.detach(), rtol=1e-2)
    assert torch.equal(model[1].recurrent.weight, torch.full((4,), 0.5))  # the model's own, still one shared V
    assert to_chip(model, "spinnaker").layers[0]["layer"] == "1"  # and it converts again


@pytest.mark.parametrize("pool, words", [
    (lambda: nsn.AvgPool2d(2, divisor_override=1), "divisor_override=1"),
    (lambda: nsn.MaxPool2d(2, ceil_mode=True), "ceil_mode=True"),
    (lambda: torch.nn.AvgPool2d(2, padding=1, count_include_pad=False), "count_include_pad=False with padding"),
])
def test_pooling_options_a_chip_lacks_are_refused_by_name(pool, words):
    model = nsn.Sequential(nsn.Conv2d(1, 2, 3), nsn.LIF(beta=1.0), pool(), nsn.Flatten(), nsn.Linear(8, 2),
                           nsn.LIF(beta=1.0))
    with pytest.raises(ValueError, match=rf"^2: \w+ with {re.escape(words)} has no chip equivalent"):
        to_chip(model, "loihi")


def test_bool_input_empty_sequences_and_a_state_of_another_batch():
    model = small(2)
    chip = to_chip(model, "loihi")
    x = torch.randint(0, 2, (4, 3, 6)).bool()
    out, state = chip(x)
    assert torch.equal(out, chip(x.double())[0])
    empty, _ = chip(torch.zeros(0, 3, 6))
    assert empty.shape == (0, 3, 3)
    with pytest.raises(ValueError, match=r"^1: the carried state holds \(3, 8\) neurons but this input's step is "
                                         r"\(1, 8\)"):
        chip(x[:, :1].double(), state)
    with pytest.raises(TypeError, match="to_chip needs a neurosim Sequential .* got Linear"):
        to_chip(torch.nn.Linear(2, 2), "loihi")


@pytest.mark.parametrize("target", CHIPS)
def test_an_empty_sequence_through_a_convolution(target):
    torch.manual_seed(0)
    model = nsn.Sequential(nsn.Conv2d(1, 2, 3), nsn.LIF(beta=1.0), nsn.Flatten(), nsn.Linear(2 * 4 * 4, 3),
                           nsn.LIF(beta=1.0))
    chip = to_chip(model, target)
    x = torch.randint(0, 3, (4, 2, 1, 6, 6)).float()
    _, state = chip(x)
    empty, kept = chip(x[:0], state)
    assert empty.shape == (0, 2, 3)
    assert all(torch.equal(a, b) for a, b in zip(kept["1"], state["1"]))  # the state passes through unchanged


# ------------------------------------------------------------------------------------------ per-layer delays
def _two_layers(seed: int = 3) -> nsn.Sequential:
    torch.manual_seed(seed)
    model = nsn.Sequential(nsn.Linear(6, 8, bias=False), nsn.LIF(beta=0.9, v_th=0.5, reset="zero"),
                           nsn.Linear(8, 3, bias=False), nsn.LIF(beta=0.9, v_th=0.3, reset="zero"))
    with torch.no_grad():
        model[0].weight.mul_(2.0)
    return model


@pytest.mark.parametrize("target", ["loihi", "spinnaker"])
def test_delays_shift_a_bias_free_network_by_its_layer_count(target):
    """Without biases a network at rest stays at rest until its input arrives: with one step per weight layer, two
    layers answer exactly two steps late (the same spikes, shifted), and a run in chunks equals one run."""
    model = _two_layers()
    x = counts((12, 4, 6), seed=5)
    plain, _ = to_chip(model, target)(x)
    chip = to_chip(model, target, delays=True)
    late, _ = chip(x)
    assert plain.sum() > 0 and torch.equal(late[:2], torch.zeros_like(late[:2]))
    assert torch.equal(late[2:], plain[:-2])
    first, state = chip(x[:5])
    rest, _ = chip(x[5:], state)
    assert torch.equal(torch.cat([first, rest]), late)
    assert any("answer 2 steps late" in n for n in chip.notes)


def test_speck_has_no_step_delay():
    model = _two_layers()
    x = counts((8, 2, 6), seed=5)
    chip = to_chip(model, "speck", delays=True)
    assert torch.equal(chip(x)[0], to_chip(model, "speck")(x)[0])
    assert any("Speck processes each event as it arrives" in n for n in chip.notes)


def test_delays_in_the_report():
    model = _two_layers()
    loader = [(counts((10, 4, 6), seed=s), torch.zeros(4, dtype=torch.long)) for s in (1, 2)]
    plain = evaluate_fixed_point(model, loader, "loihi")
    late = evaluate_fixed_point(model, loader, "loihi", delays=True)
    assert late["layers"][1]["spikes_per_neuron_step"] < plain["layers"][1]["spikes_per_neuron_step"]

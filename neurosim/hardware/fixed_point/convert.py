"""A trained model as a chip's integer model: :func:`to_chip` walks the model's layers as it would be exported
(BatchNorm folded, dropout dropped, an average pool as a sum pool with its 1/k² in the next weights, an LI only as
the read-out) and has each synapse–neuron pair quantised by its chip's file (:mod:`.loihi`, :mod:`.dynapcnn`,
:mod:`.spinnaker`); what the chip does differently from the float model becomes the model's notes.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from neurosim.hardware.fixed_point.dynapcnn import _quantise_dynapcnn
from neurosim.hardware.fixed_point.loihi import _quantise_loihi
from neurosim.hardware.fixed_point.parts import ChipFormat, ChipModel, ChipNeuron, chip_format
from neurosim.hardware.fixed_point.spinnaker import _quantise_spinnaker


def _module_params(m: nn.Module, name: str) -> tuple[str, torch.Tensor, torch.Tensor | None, dict | None]:
    w = m.weight.detach().to("cpu", torch.float64)  # the chip model runs on the CPU, whatever the model's device
    b = None if m.bias is None else m.bias.detach().to("cpu", torch.float64)
    if isinstance(m, nn.Conv2d):
        if m.padding_mode != "zeros":
            raise ValueError(f"{name}: a Conv2d with padding_mode={m.padding_mode!r} has no chip equivalent (chips pad "
                             "with zeros)")
        return "conv", w, b, dict(stride=m.stride, padding=m.padding, dilation=m.dilation, groups=m.groups)
    return "linear", w, b, None


def _neuron_facts(m: nn.Module) -> dict[str, Any]:
    """What a chip needs of a neurosim neuron layer: kind, β, α, threshold, reset, recurrent weights."""
    from neurosim import nn as nsn

    if isinstance(m, nsn.LI):
        return {"kind": "LI", "beta": float(m.beta), "alpha": 0.0, "v_th": None, "reset": None, "timing": None,
                "recurrent": None}
    lif, alpha, rec = m, 0.0, None
    if isinstance(m, nsn.CubaLIF):
        lif, alpha = m.lif, float(m.alpha)
    elif isinstance(m, nsn.RLIF):
        lif, rec = m.lif, m.recurrent
    return {"kind": type(m).__name__, "beta": float(lif.beta), "alpha": alpha, "v_th": float(lif.v_th),
            "reset": lif.reset, "timing": lif.reset_timing, "recurrent": rec}


def _recorded(part: nn.Module, name: str) -> nn.Module:
    """Mark a chip part whose output is the activity the energy models count (a spiking layer's spikes, the
    events leaving a max pool), under the model's module name. (A sum pool passes every spike on: the energy
    models count it from its input.)"""
    part.record_as = name
    return part


def _check_pool(m: nn.Module, name: str) -> None:
    """Refuse the pooling options a chip's sum or max pool does not have, naming them."""
    odd = []
    if getattr(m, "ceil_mode", False):
        odd.append("ceil_mode=True")
    if getattr(m, "divisor_override", None) is not None:
        odd.append(f"divisor_override={m.divisor_override}")
    pad = m.padding if isinstance(m.padding, tuple) else (m.padding, m.padding)
    if isinstance(m, nn.AvgPool2d) and not m.count_include_pad and any(pad):
        odd.append("count_include_pad=False with padding")
    if getattr(m, "dilation", 1) not in (1, (1, 1)):
        odd.append(f"dilation={m.dilation}")
    if odd:
        raise ValueError(f"{name}: {type(m).__name__} with {', '.join(odd)} has no chip equivalent (chips pool "
                         "fixed windows, floor-sized)")


def _pool_size(m: nn.Module) -> int:
    k = m.kernel_size if isinstance(m.kernel_size, tuple) else (m.kernel_size, m.kernel_size)
    return int(k[0] * k[1])


def to_chip(model, target, *, maxpool: str | None = None, delays: bool = False) -> ChipModel:
    """The integer model of ``model`` on the digital ``target`` (see :mod:`neurosim.hardware.fixed_point`).

    Args:
        model: a neurosim Sequential (BatchNorm is folded into the weight layer before it, dropout dropped) or an
            snnTorch ``nn.Sequential`` (converted first).
        target: a digital target with an ``arithmetic`` (``loihi``, ``loihi_sanafe``, ``speck``, ``spinnaker``), a
            spec path or a ``hardware_models.Spec``.
        maxpool: Loihi and SpiNNaker keep a max pool of spikes (one OR neuron per window does it exactly); Speck has
            only sum pooling, so its max pools become sum pools (the default there; ``"error"`` refuses instead).
        delays: simulate the one-step delay of each synapse layer on Loihi (Lava's Dense sends the sum of the step
            before) and SpiNNaker (a projection's delay is at least one step): a network of ``L`` weight layers then
            answers ``L`` steps late, as the chip run for the same ``T`` steps does. Off (the default), every layer
            answers in the step its input arrives, as the float model and a chip run ``L`` steps longer do (up to
            what the biases and leaks do in those steps). Speck processes events as they arrive: no delay.

    Raises:
        ValueError: a layer the chip cannot run (named), a target without an arithmetic.
    """
    from neurosim import nn as nsn
    from neurosim.export.nir import _as_layers, _fold_bn, _to_neurosim

    fmt = chip_format(target)
    speck = fmt.arithmetic == "dynapcnn"
    spinn = fmt.arithmetic == "spinnaker"
    if spinn and (fmt.fraction_bits, fmt.state_bits, fmt.decay_bits) != (15, 32, 32):
        raise ValueError(f"target {fmt.target!r}: sPyNNaker's arithmetic is s16.15 accums and u0.32 decays "
                         f"(spinn_common's expk and expulr are written for them); its spec gives "
                         f"fraction_bits={fmt.fraction_bits}, state_bits={fmt.state_bits}, decay_bits={fmt.decay_bits}")
    if maxpool not in (None, "error", "sumpool"):
        raise ValueError(f"maxpool must be 'error' or 'sumpool', got {maxpool!r}")
    try:
        model = _to_neurosim(model)
    except TypeError:
        raise TypeError(f"to_chip needs a neurosim Sequential (e.g. from neurosim.nn.build_model or from_nir) or an "
                        f"snnTorch nn.Sequential, got {type(model).__name__}") from None
    layers = _as_layers(model)
    parts: list[nn.Module] = []
    info: list[dict] = []
    notes: list[str] = []
    pending: dict | None = None  # the weight layer waiting for its neuron
    gain = 1.0  # an average pool's 1/k², folded into the next weight layer
    per_input = 1  # SpiNNaker: spikes one input of the next weight layer can carry per step (a sum pool's window)
    convs: list[str] = []
    maxpools: list[str] = []
    leaky: list[str] = []
    advice: dict[str, str] = {}  # setting -> why: how to train a model that runs on this chip as in float

    readout: str | None = None  # an LI seen: nothing may follow it but the end

    def need_neuron(where: str) -> None:
        if readout is not None:
            raise ValueError(f"{readout}: a non-spiking LI layer feeds the layers after it ({where}); on a chip a "
                             "layer passes spikes on, so an LI can only be the last (read-out) layer")
        if pending is not None:
            raise ValueError(f"{where}: comes between the weight layer {pending['name']!r} and its neurons; a chip "
                             "needs a neuron layer right after each Linear/Conv2d (BatchNorm and Dropout aside)")

    for name, m in layers:
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            need_neuron(name)
            op, w, b, conv = _module_params(m, name)
            pending = {"name": name, "op": op, "w": w * gain, "b": b, "conv": conv, "gain": gain,
                       "bn": None, "per_input": per_input}
            gain, per_input = 1.0, 1
            if op == "conv":
                convs.append(name)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            if pending is None:
                raise ValueError(f"{name}: a BatchNorm not right after a Linear/Conv2d cannot be folded into weights")
            w, b = _fold_bn(pending["w"], pending["b"], m, name)
            pending["w"], pending["b"] = w.to("cpu", torch.float64), b.to("cpu", torch.float64)
            pending["bn"] = name
        elif isinstance(m, (nn.Dropout, nsn.Dropout)):
            continue
        elif isinstance(m, (nsn.LIF, nsn.CubaLIF, nsn.RLIF, nsn.LI)):
            if pending is None:
                raise ValueError(f"{name}: a neuron layer without a Linear/Conv2d before it; a chip's neurons are fed "
                                 "through synapses")
            if readout is not None:
                raise ValueError(f"{readout}: a non-spiking LI layer feeds the layers after it; on a chip a layer "
                                 "passes spikes on, so an LI can only be the last (read-out) layer")
            part_s, part_n, row = _quantise_pair(pending, name, m, fmt, notes, leaky)
            parts += [part_s, _recorded(part_n, name) if part_n.spiking else part_n]
            _advise(advice, _neuron_facts(m), fmt)
            info.append(row)
            pending = None
            if isinstance(m, nsn.LI):
                readout = name
        elif isinstance(m, nn.MaxPool2d):
            need_neuron(name)
            _check_pool(m, name)
            if speck:
                if maxpool == "error":
                    raise ValueError(f"{name}: Speck pools by summing (sinabs SumPool2d); use maxpool='sumpool' to "
                                     "run it as a sum pool, or train with sum pooling")
                parts.append(nsn.SumPool2d(m.kernel_size, m.stride, m.padding))  # (counted from its input)
                notes.append(f"{name}: Speck has no max pooling; run as a sum pool (every spike in a window passes)")
                advice["model.pool_type=sum"] = "Speck pools by summing"
            else:
                parts.append(_recorded(nsn.MaxPool2d(m.kernel_size, m.stride, m.padding), name))
                maxpools.append(name)
        elif isinstance(m, nn.AvgPool2d):  # (SumPool2d too: it is an AvgPool2d times the window)
            need_neuron(name)
            _check_pool(m, name)
            parts.append(nsn.SumPool2d(m.kernel_size, m.stride, m.padding))
            per_input *= _pool_size(m)
            if not isinstance(m, nsn.SumPool2d):
                gain /= _pool_size(m)
        elif isinstance(m, (nn.Flatten, nsn.Flatten)):
            need_neuron(name)
            parts.append(nsn.Flatten())
        else:
            raise ValueError(f"{name}: {type(m).__name__} has no chip equivalent here (chips run Linear/Conv2d, "
                             "LIF/CubaLIF/RLIF/LI, pooling and Flatten)")
    if pending is not None:  # a model ending in a weight layer: its sums are read out (an LI with β = 0)
        if speck:
            raise ValueError(f"{pending['name']}: the model ends in a weight layer; Speck's cores output the events "
                             "(or states) of neurons, not synaptic sums: end the model with a LIF or LI read-out")
        part_s, part_n, row = _quantise_pair(pending, pending["name"], nsn.LI(0.0), fmt, notes, leaky,
                                             trailing=True)
        parts += [part_s, part_n]
        info.append(row)
    if not info:
        raise ValueError("the model has no weight layer to put on a chip")
    if leaky:
        notes.append(f"{', '.join(leaky)}: Speck's neurons integrate and fire without leak; the model's decay "
                     "(β < 1) is dropped on the chip")
    spiking = [r["layer"] for r in info if r["neuron"] != "LI"]
    if speck and spiking:
        notes.append(f"{', '.join(spiking)}: per step a Speck neuron fires once per threshold its membrane holds, at "
                     "most once per input event reaching it (the float model fires at most once); a bias alone "
                     "never makes it fire. The chip takes a step's events one at a time in the order they arrive, "
                     "which binned frames do not keep: here they are summed before the threshold is checked, so where "
                     "excitatory and inhibitory events meet in a step the chip may fire (or stop at the state's "
                     "floor) where this simulation does not")
    if spinn:
        if convs:
            notes.append(f"{', '.join(convs)}: a convolution runs as the synapses it amounts to (a connection list in "
                         "sPyNNaker's synaptic matrix, the ring-buffer shift counting the whole kernel); sPyNNaker's "
                         "local-only ConvolutionConnector, whose arithmetic differs, is not modelled")
        if maxpools:
            notes.append(f"{', '.join(maxpools)}: a max pool of spikes runs as one neuron per window that fires when "
                         "any input of its window does (a population of its own on SpiNNaker, not a built-in)")
        if not delays:
            notes.append("sPyNNaker delivers a spike one time step later at the earliest (a projection's delay is at "
                         "least one step): a network of L layers answers L steps late on the chip; not simulated "
                         "here (delays=True, --fixed-point-delays), each layer's input is applied in the step it is "
                         "sent")
        notes.append("tau_refrac = 0: no refractory steps (the model has none); v_rest = v_reset = 0, i_offset "
                     "carries the bias; each weight layer is split into an excitatory and an inhibitory projection")
        notes.append("the input's event counts enter as that many spikes in a step; the first layer's ring-buffer "
                     "shift assumes at most one spike per input and step, as sPyNNaker does for a source without a "
                     "declared rate")
    if delays and not speck:
        for part in parts:
            if isinstance(part, ChipNeuron):
                part.delay = True
        notes.append(f"each weight layer's input reaches its neurons one step later (simulated): the {len(info)} "
                     f"layers answer {len(info)} steps late, and the read-out sees the {len(info)} last steps' "
                     "inputs no more")
    elif delays:
        notes.append("Speck processes each event as it arrives: no delay per layer to simulate")
    chip = ChipModel(fmt, parts, info, _grouped(notes))
    chip.advice = [f"--set {k}" for k in advice]
    return chip


def _advise(advice: dict[str, str], facts: dict, fmt) -> None:
    """The training settings that give a model this chip's neuron (the notes' reset, timing and leak differences)."""
    if facts["kind"] == "LI":
        return
    if fmt.arithmetic in ("loihi", "spinnaker") and facts["reset"] != "zero":
        advice["neuron.reset=zero"] = "the chip resets a neuron that fires to zero"
    if facts["timing"] == "delayed":
        advice["neuron.reset_timing=immediate"] = "the chip resets in the step a neuron fires"
    if fmt.arithmetic == "dynapcnn" and facts["beta"] != 1.0:
        advice["neuron.beta=1"] = "Speck's neurons do not leak"
    if fmt.arithmetic == "dynapcnn" and facts["reset"] == "none":
        advice["neuron.reset=subtract"] = "Speck resets a neuron that fires"


def _grouped(notes: list[str]) -> list[str]:
    """``"1: m"``, ``"4: m"`` → ``"1, 4: m"`` (notes whose message after the first ``": "`` repeats), in
    first-seen order; every other note as it is."""
    order: dict[str, list[str]] = {}
    for n in notes:
        where, sep, message = n.partition(": ")
        order.setdefault(message if sep else n, []).append(where if sep else "")
    return [f"{', '.join(dict.fromkeys(wheres))}: {message}" if len(wheres) > 1 else
            (f"{wheres[0]}: {message}" if wheres[0] else message) for message, wheres in order.items()]



def _quantise_pair(syn: dict, name: str, m: nn.Module, fmt: ChipFormat, notes: list[str], leaky: list[str],
                   trailing: bool = False):
    """The weight layer ``syn`` and the neuron layer ``m`` after it on ``fmt``'s chip, by its file's rules: a
    :class:`ChipSynapse`, a :class:`ChipNeuron` and the layer's row of the report. A recurrent layer's bias is
    added to the synapse's."""
    facts = _neuron_facts(m)
    w, b = syn["w"], syn["b"]
    rec = facts["recurrent"]
    rec_w = rec_b = None
    if rec is not None:
        rec_w = rec.weight.detach().to("cpu", torch.float64)
        rec_b = None if rec.bias is None else rec.bias.detach().to("cpu", torch.float64)
        b = rec_b if b is None else (b if rec_b is None else b + rec_b)
    if fmt.arithmetic == "spinnaker":
        return _quantise_spinnaker(syn, name, facts, fmt, w, b, rec_w, notes, trailing)
    if fmt.arithmetic == "loihi":
        return _quantise_loihi(syn, name, facts, fmt, w, b, rec_w, notes, trailing)
    return _quantise_dynapcnn(syn, name, facts, fmt, w, b, notes, leaky)

"""neurosim's Speck integer model against sinabs itself: the same integers and spikes, and the time per batch.

sinabs (SynSense) is what people use to put a network on Speck / DYNAP-CNN; neurosim's ``dynapcnn`` arithmetic
(:mod:`neurosim.hardware.fixed_point`) claims to discretise as sinabs does (``backend/dynapcnn/discretize.py``) and to
run its integrate-and-fire neurons as sinabs' ``IAF`` with ``MultiSpike`` and ``MembraneSubtract``. This script
builds the quickstart conv network trained for Speck (β = 1, sum pooling; random weights: the check is of the
arithmetic, not of training), discretises each Conv2d + IAF pair with sinabs' own function (each layer's
``min_v_mem`` at the chip's −2^15 state floor, in model units), runs sinabs' IAF layers on the integer currents and
compares every layer's spikes with neurosim's chip model — with neurosim's cap of one spike per input event turned
off, as sinabs' simulation has no such cap (the script also reports how many spikes the cap removes). The final
Linear is run as the Conv2d over its whole input that Speck makes of it.

sinabs needs SynSense's ``samna`` driver, which only its chip backend imports: install sinabs without it
(``pip install --no-deps sinabs pbr``); the script loads ``discretize.py`` by path. Without sinabs it says so and
exits with status 0 having compared nothing (``make bench`` goes on to the next benchmark).

Usage: ``python benchmarks/bench_fixed_point.py [--batch 32] [--steps 10] [--rounds 5]``;
results in ``benchmarks/results/fixed_point.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def _sinabs():
    try:
        import sinabs.layers as sl
        from sinabs.activation import MembraneSubtract, MultiSpike
    except ImportError as e:
        return None, str(e)
    root = Path(importlib.util.find_spec("sinabs").submodule_search_locations[0])
    spec = importlib.util.spec_from_file_location("sinabs_discretize", root / "backend" / "dynapcnn" / "discretize.py")
    disc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(disc)  # (not through sinabs.backend.dynapcnn, whose __init__ imports samna)
    return (sl, MultiSpike, MembraneSubtract, disc), None


def _model():
    from neurosim.config import load_config
    from neurosim.nn import build_model

    cfg = load_config("quickstart", ["neuron.beta=1.0", "model.pool_type=sum"])
    torch.manual_seed(0)
    return build_model(cfg.model, cfg.neuron).eval(), cfg


def _sinabs_layers(model, chip, sinabs_parts, in_shape):
    """sinabs' discretised (conv, IAF) pair for each of the chip's layers, plus the pools between them."""
    from neurosim import nn as nsn

    sl, multi, subtract, disc = sinabs_parts
    stages, shape, rows = [], tuple(in_shape), iter(chip.layers)
    pending = None
    for m in model:
        if isinstance(m, (nsn.Conv2d, nsn.Linear)):
            if isinstance(m, nsn.Linear):  # Speck runs it as a convolution over its whole input
                conv = torch.nn.Conv2d(shape[0], m.out_features, shape[1:], bias=m.bias is not None)
                with torch.no_grad():
                    conv.weight.copy_(m.weight.reshape(conv.weight.shape))
                    if m.bias is not None:
                        conv.bias.copy_(m.bias)
            else:
                conv = torch.nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                                       bias=m.bias is not None)
                conv.load_state_dict(m.state_dict())
            pending = conv
        elif isinstance(m, nsn.LIF):
            row = next(rows)
            iaf = sl.IAF(spike_threshold=float(m.v_th), min_v_mem=-(2 ** 15) / row["scale"], spike_fn=multi,
                         reset_fn=subtract())
            dconv, diaf = disc.discretize_conv_spike(pending, iaf, to_int=False)
            stages.append(("layer", dconv, float(diaf.spike_threshold), float(diaf.min_v_mem)))
            with torch.no_grad():
                shape = tuple(dconv(torch.zeros(1, *shape)).shape[1:])
        elif isinstance(m, nsn.SumPool2d):
            stages.append(("pool", m.kernel_size))
            shape = (shape[0], shape[1] // m.kernel_size, shape[2] // m.kernel_size)
        elif isinstance(m, nsn.Flatten):
            continue  # the Linear-as-conv reads the (C, H, W) block itself
    return stages, sl, multi, subtract


@torch.no_grad()
def _run_sinabs(stages, sl, multi, subtract, x_seq):
    """Every layer's spikes [T, B, ...] with sinabs' IAF on the discretised currents."""
    outs, x = [], x_seq
    for stage in stages:
        if stage[0] == "pool":
            k = stage[1]
            t, b = x.shape[:2]
            x = torch.nn.functional.avg_pool2d(x.flatten(0, 1), k).mul(k * k).reshape(t, b, x.shape[2], *(
                d // k for d in x.shape[3:]))
            continue
        _, conv, threshold, low = stage
        t, b = x.shape[:2]
        cur = conv(x.flatten(0, 1)).reshape(t, b, -1, *conv(x[0, :1]).shape[2:])
        iaf = sl.IAF(spike_threshold=threshold, min_v_mem=low, spike_fn=multi, reset_fn=subtract())
        x = iaf(cur.transpose(0, 1)).transpose(0, 1)  # sinabs takes [B, T, ...]
        outs.append(x)
    return outs


def _run_chip(chip, x_seq):
    from neurosim.hardware.fixed_point import ChipNeuron

    outs, x = [], x_seq.double()
    for m in chip.net:
        x = m(x)[0] if isinstance(m, ChipNeuron) else m(x)
        if isinstance(m, ChipNeuron):
            outs.append(x)
    return outs


def main(argv=None) -> int:
    from neurosim.hardware.fixed_point import ChipSynapse, to_chip

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    parts, why = _sinabs()
    if parts is None:
        print(f"skipped: sinabs is not importable ({why}); install it without samna (pip install --no-deps sinabs "
              "pbr) to compare against it")
        return 0
    torch.set_num_threads(2)
    model, cfg = _model()
    chip = to_chip(model, "speck")
    stages, sl, multi, subtract = _sinabs_layers(model, chip, parts, cfg.model.input_shape)
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 4, (args.steps, args.batch, *cfg.model.input_shape), generator=g).float()

    for syn in chip.net:  # sinabs' simulation has no cap of one spike per input event
        if isinstance(syn, ChipSynapse):
            syn.count_events = False
    neuro_out, sin_out = _run_chip(chip, x), _run_sinabs(stages, sl, multi, subtract, x)
    equal = [bool(torch.equal(a, b.double().reshape(a.shape))) for a, b in zip(neuro_out, sin_out)]
    spikes = [float(a.sum()) for a in neuro_out]
    t_neuro, t_sinabs = [], []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        _run_chip(chip, x)
        t_neuro.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        _run_sinabs(stages, sl, multi, subtract, x)
        t_sinabs.append(time.perf_counter() - t0)
    for syn in chip.net:
        if isinstance(syn, ChipSynapse):
            syn.count_events = True
    capped = [float(a.sum()) for a in _run_chip(chip, x)]
    n, s = statistics.median(t_neuro), statistics.median(t_sinabs)
    result = {"model": "quickstart conv, beta=1, sum pooling, random weights", "batch": args.batch,
              "steps": args.steps, "rounds": args.rounds, "layers_equal": equal,
              "spikes_per_layer": spikes, "spikes_per_layer_with_event_cap": capped,
              "neurosim_ms": 1e3 * n, "sinabs_ms": 1e3 * s, "time_ratio_neurosim_sinabs": n / s,
              "neurosim_ms_all": [1e3 * v for v in t_neuro], "sinabs_ms_all": [1e3 * v for v in t_sinabs]}
    print(f"layers equal to sinabs (discretisation + IAF MultiSpike): {equal}; spikes per layer {spikes}")
    print(f"with one spike per input event at most: {capped}")
    print(f"time per batch (median of {args.rounds}): neurosim {1e3 * n:.1f} ms, sinabs {1e3 * s:.1f} ms "
          f"({n / s:.2f}x)")
    RESULTS.mkdir(exist_ok=True)
    from neurosim._io import atomic_write_text

    atomic_write_text(RESULTS / "fixed_point.json", json.dumps(result, indent=1) + "\n")
    print(f"results: {RESULTS / 'fixed_point.json'}")
    return 0 if all(equal) else 1


if __name__ == "__main__":
    sys.exit(main())

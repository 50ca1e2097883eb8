"""Small NIR graphs built by hand for the hardware model tests (fresh objects on every call)."""

from __future__ import annotations

import nir
import numpy as np


def lif(shape) -> nir.LIF:
    shape = tuple(np.atleast_1d(shape))
    return nir.LIF(tau=np.full(shape, 0.01), r=np.ones(shape), v_leak=np.zeros(shape), v_threshold=np.ones(shape))


def conv(c_out, c_in, k, *, stride=1, padding=0, dilation=1, groups=1, weight=None, input_shape=None) -> nir.Conv2d:
    w = np.ones((c_out, c_in // groups, k, k)) if weight is None else weight
    return nir.Conv2d(input_shape=input_shape, weight=w, stride=stride, padding=padding, dilation=dilation,
                      groups=groups, bias=np.zeros(w.shape[0]))


def mlp(*sizes, weight_fn=None) -> nir.NIRGraph:
    """Input(sizes[0]) -> [Linear -> LIF] per following size. weight_fn(i, shape) gives weights (default ones)."""
    nodes = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = np.ones((n_out, n_in)) if weight_fn is None else weight_fn(i, (n_out, n_in))
        nodes += [nir.Linear(weight=w), lif(n_out)]
    return nir.NIRGraph.from_list(*nodes)


def small_cnn(c1=8, c2=16, n_out=10, size=32) -> nir.NIRGraph:
    """Input(2, size, size) -> conv3x3 p1 -> LIF -> sumpool 2 -> conv3x3 -> LIF -> flatten -> linear -> LIF."""
    s2 = (size // 2) - 2
    nodes = {
        "input": nir.Input(input_type=np.array([2, size, size])),
        "conv1": conv(c1, 2, 3, padding=1),
        "lif1": lif((c1, size, size)),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "conv2": conv(c2, c1, 3),
        "lif2": lif((c2, s2, s2)),
        "flat": nir.Flatten(input_type={"input": np.array([c2, s2, s2])}, start_dim=0, end_dim=-1),
        "fc": nir.Linear(weight=np.ones((n_out, c2 * s2 * s2))),
        "lif3": lif(n_out),
        "output": nir.Output(output_type=np.array([n_out])),
    }
    names = list(nodes)
    edges = list(zip(names[:-1], names[1:]))
    return nir.NIRGraph(nodes=nodes, edges=edges)


def random_activity(facts, T=6, rate=0.2, seed=0, samples=2, dt_s=1e-3):
    """Random spike trains for every population of ``facts`` (inputs included) as an ActivityProfile."""
    from hardware_models import ActivityProfile

    rng = np.random.default_rng(seed)
    spikes = {}
    for name, pop in facts.populations.items():
        if pop.spiking:
            spikes[name] = (rng.random((T, samples, *pop.shape)) < rate).astype(float)
    return ActivityProfile.from_spike_trains(spikes, dt_s=dt_s, input_name=None), spikes


def conv_reads(c_in, H, W, c_out, OH, OW, k, stride, pad, dil, groups) -> list[set[int]]:
    """The inputs (flat indices into [c_in, H, W]) each output of a k x k conv reads (flat [c_out, OH, OW]),
    by plain loops: the brute force that conv connectivity is checked against."""
    reads = [set() for _ in range(c_out * OH * OW)]
    for o in range(len(reads)):
        co, rem = divmod(o, OH * OW)
        oy, ox = divmod(rem, OW)
        gi = co // (c_out // groups)
        for ci in range(gi * (c_in // groups), (gi + 1) * (c_in // groups)):
            for ky in range(k):
                for kx in range(k):
                    iy, ix = oy * stride - pad + ky * dil, ox * stride - pad + kx * dil
                    if 0 <= iy < H and 0 <= ix < W:
                        reads[o].add((ci * H + iy) * W + ix)
    return reads


def conv_case(stride, pad, dil, groups, H=6, W=5, k=3):
    """A 2·groups → 2·groups channel k×k conv on an H×W input feeding a LIF: ``(geometry, outputs N, input count,
    reads)``, ``reads`` from :func:`conv_reads` (for checking conv connectivity against brute force)."""
    from hardware_models import analyze

    c_in = c_out = 2 * groups
    OH = (H + 2 * pad - dil * (k - 1) - 1) // stride + 1
    OW = (W + 2 * pad - dil * (k - 1) - 1) // stride + 1
    g = nir.NIRGraph.from_list(nir.Input(input_type=np.array([c_in, H, W])),
                               conv(c_out, c_in, k, stride=stride, padding=pad, dilation=dil, groups=groups),
                               lif((c_out, OH, OW)))
    geom = analyze(g).geometry("conv2d")
    return geom, c_out * OH * OW, c_in * H * W, conv_reads(c_in, H, W, c_out, OH, OW, k, stride, pad, dil, groups)

"""Graph facts: shapes, synapse counts, exact fan-in/fan-out (borders), and synop counts vs brute force."""

from __future__ import annotations

import itertools

import nir
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hardware_models import ActivityProfile, GraphError, analyze
from hw_helpers import conv, lif, mlp, random_activity, small_cnn


# ------------------------------------------------------------------ brute force references (plain loops)
def brute_conv_synops(x, w, stride, pad, dil, groups):
    """Σ over outputs and kernel taps of [w != 0] · x[input tap]: every (spike, target, nonzero weight) once.

    x: (C_in, H, W) spike counts; w: (C_out, C_in/groups, kh, kw)."""
    C_in, H, W = x.shape
    C_out, cpg_in, kh, kw = w.shape
    OH = (H + 2 * pad - dil * (kh - 1) - 1) // stride + 1
    OW = (W + 2 * pad - dil * (kw - 1) - 1) // stride + 1
    cpg_out = C_out // groups
    total = 0.0
    for o, oy, ox, ci, ky, kx in itertools.product(range(C_out), range(OH), range(OW), range(cpg_in), range(kh), range(kw)):
        c = (o // cpg_out) * cpg_in + ci
        iy, ix = oy * stride - pad + ky * dil, ox * stride - pad + kx * dil
        if 0 <= iy < H and 0 <= ix < W and w[o, ci, ky, kx] != 0:
            total += x[c, iy, ix]
    return total


def brute_linear_synops(x, w):
    total = 0.0
    for i in range(w.shape[1]):
        for j in range(w.shape[0]):
            if w[j, i] != 0:
                total += x[i]
    return total


def brute_sum_pool(x, k, s):
    C, H, W = x.shape
    OH, OW = (H - k) // s + 1, (W - k) // s + 1
    out = np.zeros((C, OH, OW))
    for c, oy, ox in itertools.product(range(C), range(OH), range(OW)):
        out[c, oy, ox] = x[c, oy * s : oy * s + k, ox * s : ox * s + k].sum()
    return out


# ------------------------------------------------------------------ shapes and counts
def test_mlp_facts_by_hand():
    w1 = np.ones((5, 4))
    w1[0, :] = 0  # neuron 0 of layer 1 has no inputs
    g = mlp(4, 5, 3, weight_fn=lambda i, shape: w1 if i == 0 else np.ones(shape))
    f = analyze(g)
    assert [p.label for p in f.projections] == ["input->linear->lif", "lif->linear_1->lif_1"]
    assert f.neurons == 5 + 3
    assert f.nodes["linear"].synapses_dense == 20 and f.nodes["linear"].synapses_nonzero == 16
    assert f.synapses_dense == 20 + 15 and f.synapses_nonzero == 16 + 15
    np.testing.assert_array_equal(f.fan_out("input"), [4, 4, 4, 4])  # 5 targets, one zero row
    np.testing.assert_array_equal(f.fan_in("lif"), [0, 4, 4, 4, 4])
    np.testing.assert_array_equal(f.fan_out("lif"), [3] * 5)
    assert f.nodes["lif"].input_shape == (5,) and f.nodes["linear_1"].output_shape == (3,)


def test_conv_fan_out_at_borders_by_hand():
    # 1 channel 3x3 input, 3x3 kernel, padding 1: corners reach 4 outputs, edges 6, the centre 9
    g = nir.NIRGraph.from_list(nir.Input(input_type=np.array([1, 3, 3])), conv(1, 1, 3, padding=1), lif((1, 3, 3)))
    f = analyze(g)
    np.testing.assert_array_equal(f.fan_out("input")[0], [[4, 6, 4], [6, 9, 6], [4, 6, 4]])
    np.testing.assert_array_equal(f.fan_in("lif")[0], [[4, 6, 4], [6, 9, 6], [4, 6, 4]])
    assert f.nodes["conv2d"].synapses_dense == 4 * 4 + 4 * 6 + 9


def test_conv_fan_out_with_stride_by_hand():
    # 4x4 input, 3x3 kernel, stride 2, padding 1 -> 2x2 output. Rows read: oy=0 -> {0,1}, oy=1 -> {1,2,3},
    # so each input row is read [1, 2, 1, 1] times; fan-out = row count x column count.
    g = nir.NIRGraph.from_list(nir.Input(input_type=np.array([1, 4, 4])), conv(1, 1, 3, stride=2, padding=1),
                               lif((1, 2, 2)))
    rc = np.array([1, 2, 1, 1])
    np.testing.assert_array_equal(analyze(g).fan_out("input")[0], np.outer(rc, rc))


def test_conv1d_and_flatten_shapes():
    w = np.ones((3, 2, 3))
    c1 = nir.Conv1d(input_shape=None, weight=w, stride=1, padding=0, dilation=1, groups=1, bias=np.zeros(3))
    nodes = {"input": nir.Input(input_type=np.array([2, 10])), "c": c1, "l": lif((3, 8)),
             "flat": nir.Flatten(input_type={"input": np.array([3, 8])}, start_dim=0), "fc": nir.Linear(weight=np.ones((4, 24))),
             "l2": lif(4)}
    names = list(nodes)
    g = nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])), type_check=False)
    f = analyze(g)
    assert f.nodes["c"].output_shape == (3, 8)
    assert f.nodes["c"].synapses_dense == 3 * 8 * 2 * 3
    fo = f.fan_out("input")
    np.testing.assert_array_equal(fo[0], [3, 6, 9, 9, 9, 9, 9, 9, 6, 3])  # 3 out channels x taps reaching each position
    np.testing.assert_array_equal(f.fan_out("l"), np.full((3, 8), 4.0))


def test_graph_is_not_modified():
    g = small_cnn()
    before = (dict(g.nodes), list(g.edges))
    analyze(g)
    assert (dict(g.nodes), list(g.edges)) == before


# ------------------------------------------------------------------ synops == brute force over actual spikes
@settings(max_examples=25, deadline=None)
@given(
    c_in=st.integers(1, 3), groups=st.sampled_from([1, 2]), c_out_per=st.integers(1, 2), h=st.integers(3, 7),
    w_=st.integers(3, 7), k=st.integers(1, 3), stride=st.integers(1, 3), pad=st.integers(0, 2), dil=st.integers(1, 2),
    seed=st.integers(0, 10_000),
)
def test_conv_synops_equal_brute_force(c_in, groups, c_out_per, h, w_, k, stride, pad, dil, seed):
    c_in = c_in * groups
    c_out = c_out_per * groups
    assume(min(h, w_) + 2 * pad - dil * (k - 1) - 1 >= 0)  # the kernel fits the padded input
    rng = np.random.default_rng(seed)
    weight = rng.normal(size=(c_out, c_in // groups, k, k)) * (rng.random((c_out, c_in // groups, k, k)) < 0.7)
    oh = (h + 2 * pad - dil * (k - 1) - 1) // stride + 1
    ow = (w_ + 2 * pad - dil * (k - 1) - 1) // stride + 1
    g = nir.NIRGraph.from_list(nir.Input(input_type=np.array([c_in, h, w_])),
                               conv(c_out, c_in, k, stride=stride, padding=pad, dilation=dil, groups=groups, weight=weight),
                               lif((c_out, oh, ow)))
    f = analyze(g)
    T, B = 3, 2
    x = (rng.random((T, B, c_in, h, w_)) < 0.3).astype(float)
    out = (rng.random((T, B, c_out, oh, ow)) < 0.3).astype(float)
    act = ActivityProfile.from_spike_trains({"lif": out}, dt_s=1e-3, input_events=x, input_name="input")
    expected = sum(brute_conv_synops(x[t, b], weight, stride, pad, dil, groups) for t in range(T) for b in range(B)) / B
    got = f.synops(act)
    assert got.total == pytest.approx(expected)
    assert got.exact == ("input->conv2d->lif",)
    # the same count, seen from the receiving side
    assert f.received(f.projections[0], act.spike_counts["input"]).sum() == pytest.approx(expected)
    # per step: each step's synops are that step's spikes times the run's mean fan-out, summing to the total
    assert got.per_projection_step["input->conv2d->lif"].sum() == pytest.approx(expected)


@settings(max_examples=15, deadline=None)
@given(n_in=st.integers(1, 12), n_out=st.integers(1, 12), seed=st.integers(0, 10_000))
def test_linear_synops_equal_brute_force(n_in, n_out, seed):
    rng = np.random.default_rng(seed)
    weight = rng.normal(size=(n_out, n_in)) * (rng.random((n_out, n_in)) < 0.6)
    g = nir.NIRGraph.from_list(nir.Linear(weight=weight), lif(n_out), nir.Linear(weight=np.ones((2, n_out))), lif(2))
    f = analyze(g)
    T, B = 4, 3
    x = (rng.random((T, B, n_in)) < 0.4).astype(float)
    hidden = (rng.random((T, B, n_out)) < 0.4).astype(float)
    act = ActivityProfile.from_spike_trains({"lif": hidden, "lif_1": np.zeros((T, B, 2))}, dt_s=1e-3, input_events=x,
                                            input_name="input")
    exp_in = sum(brute_linear_synops(x[t, b], weight) for t in range(T) for b in range(B)) / B
    exp_hidden = hidden.sum() / B * 2
    got = f.synops(act)
    assert got.per_projection["input->linear->lif"] == pytest.approx(exp_in)
    assert got.per_projection["lif->linear_1->lif_1"] == pytest.approx(exp_hidden)
    assert got.per_target == pytest.approx({"lif": exp_in, "lif_1": exp_hidden})


def test_pooled_path_synops_equal_brute_force():
    """LIF spikes -> sum pool (events forwarded to their window) -> conv: count the conv's events exactly."""
    g = small_cnn(c1=2, c2=3, n_out=4, size=12)
    f = analyze(g)
    act, spikes = random_activity(f, T=3, rate=0.3, seed=3)
    w2 = g.nodes["conv2"].weight
    B = spikes["lif1"].shape[1]
    expected = 0.0
    for t in range(3):
        for b in range(B):
            pooled = brute_sum_pool(spikes["lif1"][t, b], 2, 2)
            expected += brute_conv_synops(pooled, w2, 1, 0, 1, 1)
    expected /= B
    assert f.synops(act).per_projection["lif1->conv2->lif2"] == pytest.approx(expected)
    # through Flatten: every lif2 spike reaches the 4 fc outputs
    assert f.synops(act).per_projection["lif2->fc->lif3"] == pytest.approx(spikes["lif2"].sum() / B * 4)


def test_even_spread_is_used_without_spike_counts():
    g = nir.NIRGraph.from_list(nir.Input(input_type=np.array([1, 3, 3])), conv(1, 1, 3, padding=1), lif((1, 3, 3)))
    f = analyze(g)
    act = ActivityProfile(time_steps=1, dt_s=1e-3, samples=1, spikes_per_step={"lif": np.zeros(1)},
                          input_events_per_step=np.array([9.0]))
    s = f.synops(act)
    assert s.total == pytest.approx(4 * 4 + 4 * 6 + 9)  # one event on each position: Σ fan-out
    assert s.exact == ()


# ------------------------------------------------------------------ errors
def test_unsupported_node_type_is_named():
    g = nir.NIRGraph.from_list(nir.Linear(weight=np.ones((3, 2))), nir.Scale(scale=np.ones(3)), lif(3))
    with pytest.raises(GraphError, match=r"unsupported types: \{'scale': 'Scale'\}"):
        analyze(g)


def test_a_layer_without_neurons_is_named():
    with pytest.raises(GraphError, match=r"node 'linear' \(Linear\) has no elements \(shape \(0,\)\)"):
        analyze(mlp(4, 0, 3))


def test_synapse_into_synapse_is_refused():
    g = nir.NIRGraph.from_list(nir.Linear(weight=np.ones((3, 2))), nir.Linear(weight=np.ones((4, 3))), lif(4))
    with pytest.raises(GraphError, match="feeds synapse node 'linear_1' with no neuron between"):
        analyze(g)


def test_pool_on_currents_is_refused():
    nodes = {"input": nir.Input(input_type=np.array([1, 4, 4])), "c": conv(1, 1, 3, padding=1),
             "p": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
             "l": lif((1, 2, 2))}
    g = nir.NIRGraph(nodes=nodes, edges=[("input", "c"), ("c", "p"), ("p", "l")])
    with pytest.raises(GraphError, match="pool 'p' sits between synapse node 'c' and the neurons"):
        analyze(g)


def test_shape_mismatch_names_the_edge():
    nodes = {"input": nir.Input(input_type=np.array([5])), "fc": nir.Linear(weight=np.ones((3, 4))), "l": lif(3)}
    g = nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "l")], type_check=False)
    with pytest.raises(GraphError, match=r"edge 'input' -> 'fc': 'input' outputs \(5,\) but 'fc' takes \(4,\)"):
        analyze(g)


def test_input_events_recorded_under_another_name_than_the_graphs_input_node_name_it():
    """from_spike_trains stores the input under input_name="input"; a graph whose Input node is named otherwise was
    refused with the node names alone, not the input_name that fixes it."""
    g = nir.NIRGraph(nodes={"x": nir.Input(input_type=np.array([4])), "fc": nir.Linear(weight=np.ones((3, 4))),
                            "l": lif(3), "y": nir.Output(output_type=np.array([3]))},
                     edges=[("x", "fc"), ("fc", "l"), ("l", "y")])
    f = analyze(g)
    spikes, events = np.zeros((2, 1, 3)), np.ones((2, 1, 4))
    activity = ActivityProfile.from_spike_trains({"l": spikes}, 1e-3, input_events=events)
    with pytest.raises(GraphError, match=r"names nodes \['input'\] that are not in the graph; graph nodes: \['x', "
                                         r"'fc', 'l', 'y'\]; the graph's Input node is 'x': record its events under "
                                         r"that name \(ActivityProfile.from_spike_trains\(..., input_name='x'\)\)$"):
        f.synops(activity)
    named = ActivityProfile.from_spike_trains({"l": spikes}, 1e-3, input_events=events, input_name="x")
    assert f.synops(named).total == 2 * 4 * 3  # the advice taken: every input event reaches the 3 neurons
    with pytest.raises(GraphError, match=r"names nodes \['lif9'\] that are not in the graph; graph nodes: \[[^;]*$"):
        f.synops(ActivityProfile.from_spike_trains({"l": spikes, "lif9": spikes}, 1e-3))  # no input: no advice


def test_activity_checks_against_the_graph():
    f = analyze(mlp(4, 3))
    too_many = ActivityProfile(time_steps=2, dt_s=1e-3, samples=1, spikes_per_step={"lif": np.array([1.0, 4.0])})
    with pytest.raises(GraphError, match="4 spikes at step 1 but the node has only 3 neurons"):
        f.synops(too_many)
    unknown = ActivityProfile(time_steps=2, dt_s=1e-3, samples=1, spikes_per_step={"lif9": np.zeros(2)})
    with pytest.raises(GraphError, match=r"names nodes \['lif9'\] that are not in the graph"):
        f.synops(unknown)
    wrong_shape = ActivityProfile(time_steps=1, dt_s=1e-3, samples=1, spikes_per_step={"lif": np.array([1.0])},
                                  spike_counts={"lif": np.array([0.5, 0.5])})
    with pytest.raises(GraphError, match=r"spike_counts\['lif'\] has shape \(2,\)"):
        f.synops(wrong_shape)
    hidden = analyze(mlp(4, 3, 2))
    missing = ActivityProfile(time_steps=1, dt_s=1e-3, samples=1, spikes_per_step={"lif_1": np.array([1.0])})
    with pytest.raises(GraphError, match="activity has no spikes for LIF node 'lif'"):
        hidden.synops(missing)


# ------------------------------------------------------------------ measured pool events (max pooling)
def _max_pool_activity(facts, seed=3):
    """Random spikes for every population, plus the max-pooled events of ``lif1`` under the node ``pool``."""
    act, spikes = random_activity(facts, T=5, rate=0.3, seed=seed)
    s = spikes["lif1"]  # (T, samples, C, H, W)
    T, B, C, H, W = s.shape
    pooled = s.reshape(T, B, C, H // 2, 2, W // 2, 2).max(axis=(4, 6))
    trains = {**spikes, "pool": pooled}
    return ActivityProfile.from_spike_trains(trains, dt_s=1e-3, input_name=None), trains


def test_measured_pool_events_replace_the_sum_of_the_pooled_spikes():
    facts = analyze(small_cnn(c1=2, c2=3, n_out=4, size=8))
    act, trains = _max_pool_activity(facts)
    label = "lif1->conv2->lif2"
    w = np.ones((3, 2, 3, 3))
    per_sample_pooled = trains["pool"].sum(axis=0).mean(axis=0)  # (C, 4, 4) events over the run, per sample
    per_sample_summed = brute_sum_pool(trains["lif1"].sum(axis=0).mean(axis=0), 2, 2)
    got = facts.synops(act).per_projection[label]
    assert got == pytest.approx(brute_conv_synops(per_sample_pooled, w, 1, 0, 1, 1))
    without = ActivityProfile.from_spike_trains({k: v for k, v in trains.items() if k != "pool"}, dt_s=1e-3,
                                                input_name=None)
    assert facts.synops(without).per_projection[label] == pytest.approx(
        brute_conv_synops(per_sample_summed, w, 1, 0, 1, 1))
    assert got < facts.synops(without).per_projection[label]  # a max pool passes fewer events on
    np.testing.assert_allclose(facts.synops(act).per_projection_step[label].sum(), got)
    # what each target neuron receives follows the pool's events too
    received = facts.received(next(p for p in facts.projections if p.label == label), None, act)
    assert received.sum() == pytest.approx(got)


def test_a_measured_pool_feeding_neurons_directly_passes_its_own_events():
    nodes = {
        "input": nir.Input(input_type=np.array([1, 4, 4])),
        "conv": conv(1, 1, 1),
        "lif1": lif((1, 4, 4)),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "lif2": lif((1, 2, 2)),
        "output": nir.Output(output_type=np.array([1, 2, 2])),
    }
    names = list(nodes)
    facts = analyze(nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:]))))
    act, spikes = random_activity(facts, T=4, rate=0.5, seed=1)
    pooled = spikes["lif1"].reshape(4, 2, 1, 2, 2, 2, 2).max(axis=(4, 6))
    act = ActivityProfile.from_spike_trains({**spikes, "pool": pooled}, dt_s=1e-3, input_name=None)
    syn = facts.synops(act).per_projection["lif1->pool->lif2"]
    assert syn == pytest.approx(pooled.sum() / 2)  # per sample: one event into one neuron
    assert syn < spikes["lif1"].sum() / 2


def test_bad_pool_activity_is_named():
    facts = analyze(small_cnn(c1=2, c2=3, n_out=4, size=8))
    act, trains = _max_pool_activity(facts)
    seven = np.full(7, act.spikes_per_step["pool"].sum() / 7)  # the right total, the wrong shape
    bad = ActivityProfile(time_steps=act.time_steps, dt_s=1e-3, samples=1,
                          spikes_per_step=dict(act.spikes_per_step), spike_counts={**act.spike_counts, "pool": seven})
    with pytest.raises(GraphError, match="pooling node 'pool'"):
        facts.synops(bad)
    flat = ActivityProfile(time_steps=act.time_steps, dt_s=1e-3, samples=1,
                           spikes_per_step={**act.spikes_per_step, "flat": np.ones(act.time_steps)})
    with pytest.raises(GraphError, match="not neuron, Input or pooling nodes"):
        facts.synops(flat)


def test_a_population_with_scalar_parameters_takes_its_size_from_the_synapse():
    """snnTorch's NIR export writes one 0-d τ, R, threshold for a whole layer."""
    scalar = dict(tau=np.array(1e-3), r=np.array(10.0), v_leak=np.array(0.0), v_threshold=np.array(1.0),
                  v_reset=np.array(0.0))
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([12])),
                                "fc": nir.Linear(weight=np.full((8, 12), 0.1)), "lif": nir.LIF(**scalar),
                                "output": nir.Output(output_type=np.array([8]))},
                         edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")], type_check=False)
    facts = analyze(graph)
    assert facts.neurons == 8

"""NIR graphs as other libraries write them: nested subgraphs, other spike-count layouts, malformed parameters,
duplicate edges, non-spiking sources and activity no network can produce (each refused, naming what is wrong)."""

from __future__ import annotations

import nir
import numpy as np
import pytest

from hardware_models import ActivityProfile, GraphError, analyze, estimate
from hardware_models.graph import flatten_graph
from hw_helpers import conv, lif, mlp
from si_approx import approx_si


def act(T, spikes, inp=None, counts=None):
    return ActivityProfile(time_steps=T, dt_s=1e-3, samples=1,
                           spikes_per_step={k: np.asarray(v, float) for k, v in spikes.items()},
                           spike_counts={k: np.asarray(v, float) for k, v in (counts or {}).items()},
                           input_events_per_step=None if inp is None else np.asarray(inp, float))


def rleaky(n=3, w_rec=None) -> nir.NIRGraph:
    """snnTorch's RLeaky export: a subgraph input -> lif <-> w_rec, lif -> output."""
    return nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([n])), "lif": lif(n),
                               "w_rec": nir.Linear(weight=np.ones((n, n)) if w_rec is None else w_rec),
                               "output": nir.Output(output_type=np.array([n]))},
                        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")])


def rleaky_net(n=3, w_rec=None) -> nir.NIRGraph:
    """Input(4) -> Linear(n x 4) -> RLeaky(n) subgraph -> Output."""
    return nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([4])), "fc": nir.Linear(weight=np.ones((n, 4))),
                               "rleaky": rleaky(n, w_rec), "output": nir.Output(output_type=np.array([n]))},
                        edges=[("input", "fc"), ("fc", "rleaky"), ("rleaky", "output")])


# ------------------------------------------------------------------ nested subgraphs
def test_a_nested_recurrent_layer_is_inlined_and_counted_by_hand():
    f = analyze(rleaky_net())
    assert [p.label for p in f.projections] == ["input->fc->rleaky.lif", "rleaky.lif->rleaky.w_rec->rleaky.lif"]
    assert list(f.graph.nodes) == ["input", "fc", "rleaky.lif", "rleaky.w_rec", "output"]
    # 4 input events, each to 3 neurons (12), and 3 recurrent spikes, each to 3 neurons (9)
    a = act(2, {"rleaky.lif": [1, 2]}, inp=[3, 1])
    assert f.synops(a).total == 21.0
    est = estimate(rleaky_net(), a, "loihi")
    assert est.synops == 21.0 and est.per_layer["rleaky.lif"]["synops_in"] == 21.0
    with pytest.raises(GraphError, match="activity has no spikes for LIF node 'rleaky.lif'"):
        f.synops(act(2, {}, inp=[3, 1]))


def test_nested_subgraphs_flatten_recursively_with_sparse_weights_by_hand():
    w = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0.0]])  # recurrent fan-out per neuron: 0, 1, 1
    inner = rleaky_net(3, w)  # a whole network as a subgraph of a subgraph
    inner.nodes["input"] = nir.Input(input_type=np.array([4]))
    block = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([4])), "net": inner,
                                "output": nir.Output(output_type=np.array([3]))},
                         edges=[("input", "net"), ("net", "output")])
    outer = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([4])), "block": block,
                                "output": nir.Output(output_type=np.array([3]))},
                         edges=[("input", "block"), ("block", "output")])
    f = analyze(outer)
    assert [p.label for p in f.projections] == ["input->block.net.fc->block.net.rleaky.lif",
                                                "block.net.rleaky.lif->block.net.rleaky.w_rec->block.net.rleaky.lif"]
    a = act(2, {"block.net.rleaky.lif": [2, 1]}, inp=[1, 1], counts={"block.net.rleaky.lif": [2, 1, 0]})
    assert f.synops(a).total == 2 * 3 + (2 * 0 + 1 * 1 + 0 * 1) == 7.0


def test_flatten_leaves_a_flat_graph_alone_and_names_collisions_and_ambiguous_ports():
    g = mlp(4, 3)
    assert flatten_graph(g) is g
    taken = rleaky_net()
    taken.nodes["rleaky.lif"] = lif(3)
    with pytest.raises(GraphError, match="two nodes named 'rleaky.lif'"):
        flatten_graph(taken)
    two_inputs = rleaky_net()
    two_inputs.nodes["rleaky"].nodes["input_b"] = nir.Input(input_type=np.array([3]))
    two_inputs.nodes["rleaky"].edges.append(("input_b", "lif"))
    with pytest.raises(GraphError, match=r"into subgraph 'rleaky', which has 2 Input nodes"):
        flatten_graph(two_inputs)
    two_inputs.edges[1] = ("fc", "rleaky.input")  # the edge names the port: fine
    assert ("fc", "rleaky.lif") in flatten_graph(two_inputs).edges


# ------------------------------------------------------------------ spike-count layout
def cnn_on_input():
    g = nir.NIRGraph(nodes={"in": nir.Input(input_type=np.array([2, 6, 6])), "c": conv(3, 2, 3), "lif": lif((3, 4, 4)),
                            "out": nir.Output(output_type=np.array([3, 4, 4]))},
                     edges=[("in", "c"), ("c", "lif"), ("lif", "out")])
    return analyze(g)


def test_spike_counts_in_another_layout_are_refused_naming_both_shapes():
    f = cnn_on_input()
    x = np.zeros((2, 6, 6))
    x[0, 2:4, 2:4] = 1  # 4 events in the middle of channel 0: each reaches 3 channels x 9 positions
    for ok in (x, x.ravel(), x[None]):
        assert f.synops(act(1, {"in": [4], "lif": [0]}, inp=[4], counts={"in": ok})).total == 108.0
    with pytest.raises(GraphError, match=r"spike_counts\['in'\] has shape \(6, 6, 2\) but Input node 'in' has output "
                                         r"shape \(2, 6, 6\)"):
        f.synops(act(1, {"in": [4], "lif": [0]}, inp=[4], counts={"in": np.transpose(x, (1, 2, 0))}))


def test_pool_counts_in_another_layout_are_refused():
    f = pooled_net()
    with pytest.raises(GraphError, match=r"spike_counts\['p'\] has shape \(2, 2, 1\) but pooling node 'p' has "
                                         r"output shape \(1, 2, 2\)"):
        f.synops(act(1, {"l0": [4], "l1": [1], "p": [2]}, inp=[0], counts={"p": [[[1], [1]], [[0], [0]]]}))
    for ok in ([1, 1, 0, 0], [[[1, 1], [0, 0]]]):  # flat, or the node's shape
        assert f.synops(act(1, {"l0": [4], "l1": [1], "p": [2]}, inp=[0], counts={"p": ok})).total == 2.0


# ------------------------------------------------------------------ non-spiking sources
def test_a_non_spiking_population_feeding_a_weight_layer_is_refused():
    g = nir.NIRGraph(nodes={"in": nir.Input(input_type=np.array([4])), "f0": nir.Linear(weight=np.ones((3, 4))),
                            "li": nir.LI(tau=np.ones(3), r=np.ones(3), v_leak=np.zeros(3)),
                            "f1": nir.Linear(weight=np.ones((2, 3))), "l": lif(2),
                            "out": nir.Output(output_type=np.array([2]))},
                     edges=[("in", "f0"), ("f0", "li"), ("li", "f1"), ("f1", "l"), ("l", "out")])
    a = act(2, {"l": [1, 1]}, inp=[2, 2])
    for target in ("loihi", "rram_neurosim", "conventional_45nm"):
        with pytest.raises(GraphError, match="LI node 'li' is non-spiking: its graded output feeds Linear node 'f1'"):
            estimate(g, a, target)


def test_a_non_spiking_readout_is_fine():
    g = nir.NIRGraph.from_list(nir.Linear(weight=np.ones((3, 4))), lif(3), nir.Linear(weight=np.ones((2, 3))),
                               nir.LI(tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2)))
    est = estimate(g, act(1, {"lif": [2]}, inp=[1]), "loihi")
    assert est.synops == 1 * 3 + 2 * 2
    # its neurons are compartments updated in every step, as a chip's are: 3 LIF + 2 LI compartments x 1 step, 2 of
    # them firing (81 pJ), the other 3 idle (52 pJ; an LI never fires, so its updates are idle ones)
    assert est.energy_j["neuron_active"] == approx_si(2 * 81e-12)
    assert est.energy_j["neuron_idle"] == approx_si(3 * 52e-12)
    # on RRAM tiles, the digital periphery updates each of the 5 neurons once (8-bit MAC, 0.23 pJ)
    assert estimate(g, act(1, {"lif": [2]}, inp=[1]), "rram_neurosim").energy_j["neuron_update"] == approx_si(5 * 0.23e-12)


# ------------------------------------------------------------------ malformed parameters and edges
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_weights_are_named(bad):
    w = np.ones((3, 4))
    w[0, 0] = bad
    with pytest.raises(GraphError, match=r"node 'linear' \(Linear\): 1 of its 12 weights are NaN or infinite"):
        analyze(mlp(4, 3, weight_fn=lambda i, shape: w))
    k = np.ones((2, 1, 3, 3))
    k[1, 0, 2, 2] = bad
    g = nir.NIRGraph.from_list(nir.Input(input_type=np.array([1, 5, 5])), conv(2, 1, 3, weight=k), lif((2, 3, 3)),
                               type_check=False)
    with pytest.raises(GraphError, match=r"node 'conv2d' \(Conv2d\): 1 of its 18 weights"):
        analyze(g)
    for target in ("loihi", "rram_neurosim"):  # crossbar targets crashed with IndexError, digital counted NaN as 1
        with pytest.raises(GraphError, match="NaN or infinite"):
            estimate(mlp(4, 3, weight_fn=lambda i, shape: w), act(1, {"lif": [1]}, inp=[2]), target)


def pooled_net(stride=(2, 2), padding=(0, 0)):
    p = nir.SumPool2d(kernel_size=np.array([2, 2]), stride=None if stride is None else np.array(stride),
                      padding=None if padding is None else np.array(padding))
    g = nir.NIRGraph(nodes={"in": nir.Input(input_type=np.array([1, 4, 4])), "l0": lif((1, 4, 4)), "p": p,
                            "l1": lif((1, 2, 2)), "out": nir.Output(output_type=np.array([1, 2, 2]))},
                     edges=[("in", "l0"), ("l0", "p"), ("p", "l1"), ("l1", "out")], type_check=False)
    return analyze(g)


def test_pool_stride_none_is_the_kernel_size():
    f = pooled_net(stride=None)
    assert f.geometry("p").stride == (2, 2) and f.nodes["p"].output_shape == (1, 2, 2)


@pytest.mark.parametrize("param", ["stride", "padding", "dilation", "groups"])
def test_conv_parameters_of_none_are_named(param):
    c = conv(2, 1, 3)
    setattr(c, param, None)
    g = nir.NIRGraph.from_list(nir.Input(input_type=np.array([1, 5, 5])), c, lif((2, 3, 3)), type_check=False)
    with pytest.raises(GraphError, match=f"node 'conv2d': {param} is None"):
        analyze(g)


def test_pool_padding_none_and_zero_stride_are_named():
    with pytest.raises(GraphError, match="node 'p': padding is None"):
        pooled_net(padding=None)
    with pytest.raises(GraphError, match=r"node 'p': stride \[0, 0\] must be whole numbers >= 1"):
        pooled_net(stride=(0, 0))


def test_a_duplicate_edge_is_named():
    g = nir.NIRGraph(nodes={"in": nir.Input(input_type=np.array([4])), "fc": nir.Linear(weight=np.ones((3, 4))),
                            "lif": lif(3), "out": nir.Output(output_type=np.array([3]))},
                     edges=[("in", "fc"), ("fc", "lif"), ("fc", "lif"), ("lif", "out")], type_check=False)
    with pytest.raises(GraphError, match=r"edge \('fc', 'lif'\) is listed twice"):
        analyze(g)


# ------------------------------------------------------------------ activity no network can produce
def test_a_neuron_with_more_spikes_than_steps_is_refused():
    f = analyze(mlp(4, 3))
    assert f.synops(act(2, {"lif": [1, 1]}, inp=[1, 1], counts={"lif": [2, 0, 0]})).total == 6.0  # at the limit
    with pytest.raises(GraphError, match=r"spike_counts\['lif'\] has 6 events at index \(0,\) of LIF node 'lif' in a "
                                         "run of 2 steps; a neuron spikes at most once per step"):
        f.synops(act(2, {"lif": [3, 3]}, inp=[1, 1], counts={"lif": [6, 0, 0]}))
    # input events are not limited: an event frame may hold several events per pixel and step
    assert f.synops(act(1, {"lif": [0], "input": [5]}, inp=[5], counts={"input": [5, 0, 0, 0]})).total == 15.0


def test_a_pool_with_more_events_than_windows_is_refused():
    f = pooled_net()
    with pytest.raises(GraphError, match="pooling node 'p' has 30 events at step 0 but the pool has only 4 windows"):
        f.synops(act(1, {"l0": [8], "l1": [1], "p": [30]}, inp=[0]))
    with pytest.raises(GraphError, match=r"spike_counts\['p'\] has 2 events at index \(0, 0, 0\)"):
        f.synops(act(1, {"l0": [8], "l1": [1], "p": [2]}, inp=[0], counts={"p": [[[2, 0], [0, 0]]]}))


def test_input_events_are_checked_against_the_sum_over_several_inputs():
    g = nir.NIRGraph(nodes={"a": nir.Input(input_type=np.array([4])), "b": nir.Input(input_type=np.array([2])),
                            "fa": nir.Linear(weight=np.ones((3, 4))), "fb": nir.Linear(weight=np.ones((3, 2))),
                            "lif": lif(3), "o": nir.Output(output_type=np.array([3]))},
                     edges=[("a", "fa"), ("b", "fb"), ("fa", "lif"), ("fb", "lif"), ("lif", "o")])
    f = analyze(g)
    assert f.synops(act(2, {"lif": [1, 1], "a": [2, 1], "b": [1, 0]}, inp=[3, 1])).total == (3 + 1) * 3
    with pytest.raises(GraphError, match=r"Input nodes \['a', 'b'\] sum to 4 events but input_events_per_step to 200"):
        f.synops(act(2, {"lif": [1, 1], "a": [2, 1], "b": [1, 0]}, inp=[100, 100]))


# ------------------------------------------------------------------ graphs without an Input node
def no_input(first=None, extra=None) -> nir.NIRGraph:
    """fc (Linear 3 x 4, or ``first`` -> fc) -> lif(3) -> output, with no Input node (as nir.read(type_check=False)
    gives a graph saved without one)."""
    nodes = {"fc": nir.Linear(weight=np.ones((3, 4))), "lif": lif(3), "output": nir.Output(output_type=np.array([3]))}
    edges = [("fc", "lif"), ("lif", "output")]
    if first is not None:
        nodes, edges = {"first": first, **nodes}, [("first", "fc"), *edges]
    nodes.update(extra or {})
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


@pytest.mark.parametrize("first", [None, nir.Flatten(input_type={"input": np.array([2, 2])}, start_dim=0)],
                         ids=["linear", "flatten"])
def test_a_graph_without_an_input_node_is_fed_at_its_root_by_an_implicit_input(first):
    g = no_input(first)
    root = "fc" if first is None else "first"
    f = analyze(g)
    assert list(g.nodes) == [n for n in ([] if first is None else ["first"]) + ["fc", "lif", "output"]]  # unchanged
    assert f.input_names == [f"input_{root}"] and f.populations[f"input_{root}"].shape == ((4,) if first is None
                                                                                           else (2, 2))
    assert f.notes and f"implicit Input node 'input_{root}'" in f.notes[0] and f"node '{root}'" in f.notes[0]
    # 8 input events x fan-out 3 (it was 0: the layer had no source population)
    a = act(2, {"lif": [1, 1]}, inp=[4, 4])
    assert f.synops(a).total == 24.0
    est = estimate(g, a, "loihi")
    assert est.synops == 24.0 and est.notes[0] == f.notes[0]  # the estimate says what the analysis assumed


def test_the_implicit_input_takes_nirs_name_and_a_free_one_and_reads_back_from_a_file(tmp_path):
    g = no_input(extra={"input_fc": lif(3)})  # a neuron node that happens to hold nir's name
    g.edges.append(("lif", "input_fc"))
    f = analyze(g)
    assert f.input_names == ["input_fc_0"] and f.populations["input_fc"].node_type == "LIF"
    nir.write(str(tmp_path / "noinput.nir"), no_input())
    f = analyze(nir.read(str(tmp_path / "noinput.nir"), type_check=False))  # the README's way to read a file
    assert f.input_names == ["input_fc"] and f.synops(act(2, {"lif": [1, 1]}, inp=[4, 4])).total == 24.0


def test_a_node_nothing_feeds_is_named_where_no_single_implicit_input_can_feed_it():
    several = no_input(extra={"fc2": nir.Linear(weight=np.ones((3, 2)))})
    several.edges.append(("fc2", "lif"))
    with pytest.raises(GraphError, match=r"node\(s\) 'fc' \(Linear\), 'fc2' \(Linear\) have no edge into them.*"
                                         r"several such nodes and no Input node.*Add an Input node"):
        analyze(several)
    beside = mlp(4, 3)  # input -> linear -> lif ...
    beside.nodes["fc2"] = nir.Linear(weight=np.ones((3, 2)))
    beside.edges.append(("fc2", "lif"))
    with pytest.raises(GraphError, match=r"node\(s\) 'fc2' \(Linear\) have no edge into them.*Input node\(s\) "
                                         r"\['input'\] do not reach them"):
        analyze(beside)
    unshaped = no_input(nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([1, 1]), padding=np.array([0, 0])))
    with pytest.raises(GraphError, match=r"node 'first' \(SumPool2d\) has no edge into it and no declared input "
                                         "shape; add an Input node"):
        analyze(unshaped)

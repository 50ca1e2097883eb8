"""Recurrent LIF layers (RLIF) through NIR: the subgraph they export as, identical outputs after write → read →
import for every connectivity, bias and reset timing, the flat ``LIF ⇄ Linear`` loop read by hand, what the hardware
models see, and clear errors for every other cycle or nesting."""

from __future__ import annotations

import math

import nir
import numpy as np
import pytest
import torch

from hardware_models import analyze
from neurosim.activity import record_outputs
from neurosim.export import NIRExportError, NIRImportError, from_nir, read_nir, to_nir, write_nir
from neurosim.export.cli import export_notes
from neurosim.nn import LI, RLIF, Conv2d, Flatten, Linear, Sequential

# graphs built here by hand, without neurosim metadata, are read at from_nir's default dt_s on purpose;
# the warning that default gives another tool's graph is tested on its own (pytest.warns sees it)
pytestmark = pytest.mark.filterwarnings("ignore:from_nir. neuron node.*carry no neurosim metadata:UserWarning")


def _binary(shape, p=0.4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g) < p).float()


def _recurrent_net(connectivity, bias, timing, seed=0):
    """Input(6) → Linear → RLIF(5) → Linear → RLIF(4, other settings) → Linear → LI(3), weights and feedback scaled
    up (and the diagonal's made uneven) so that both recurrent layers spike, as a trained one does."""
    torch.manual_seed(seed)
    net = Sequential(
        Linear(6, 5), RLIF(5, beta=0.8, v_th=0.5, reset="subtract", reset_timing=timing, connectivity=connectivity,
                           bias=bias),
        Linear(5, 4, bias=False), RLIF(4, beta=0.7, v_th=0.4, reset="zero", reset_timing=timing,
                                       connectivity=connectivity, bias=bias, learn_beta=True, learn_threshold=True),
        Linear(4, 3), LI(beta=0.9),
    )
    with torch.no_grad():
        for p in net.parameters():
            if p.dim() > 0:
                p.mul_(2.5)
        for layer in (net[1], net[3]):
            if connectivity == "diagonal":
                layer.recurrent.weight.copy_(torch.linspace(-1.0, 0.8, layer.features))
            if bias:
                layer.recurrent.bias.copy_(torch.linspace(-0.2, 0.3, layer.features))
    return net.eval()


@pytest.mark.parametrize("timing", ["immediate", "delayed"])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("connectivity", ["dense", "diagonal"])
def test_rlif_layers_round_trip_through_a_nir_file_with_identical_outputs(connectivity, bias, timing, tmp_path):
    net = _recurrent_net(connectivity, bias, timing)
    x = _binary((25, 4, 6))
    ref, _ = net(x)
    _, rec = record_outputs(net, x)
    for name in ("1.lif", "3.lif"):  # both recurrent layers spike (else equal outputs would prove little)
        assert 0 < rec[name].mean() < 1, name
    graph = to_nir(net, (6,), dt_s=1e-3)
    sub = graph.nodes["1"]
    assert isinstance(sub, nir.NIRGraph) and sorted(sub.nodes) == ["input", "lif", "output", "recurrent"]
    assert sorted(sub.edges) == [("input", "lif"), ("lif", "output"), ("lif", "recurrent"), ("recurrent", "lif")]
    syn = sub.nodes["recurrent"]
    assert isinstance(syn, nir.Affine if bias else nir.Linear)
    w = net[1].recurrent.weight.detach().numpy()
    np.testing.assert_array_equal(syn.weight, w if connectivity == "dense" else np.diag(w))
    # β = 0.8 at dt = 1 ms: τ = dt/(1 − β) = 5 ms, R = τ/dt = 5 (as for a LIF layer)
    np.testing.assert_allclose(sub.nodes["lif"].tau, 5e-3, rtol=1e-6)
    np.testing.assert_allclose(sub.nodes["lif"].r, 5.0, rtol=1e-6)

    back = from_nir(read_nir(write_nir(graph, tmp_path / "rec.nir")))
    for i in (1, 3):
        assert isinstance(back[i], RLIF) and back[i].connectivity == connectivity
        assert back[i].lif.reset_timing == timing and (back[i].recurrent.bias is not None) == bias
    assert back.state_dict().keys() == net.state_dict().keys()
    for k, v in net.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k
    out, _ = back(x)
    assert torch.equal(out, ref)


def test_a_float64_model_round_trips_in_float64(tmp_path):
    net = _recurrent_net("dense", True, "immediate").double()
    x = _binary((20, 3, 6)).double()
    back = from_nir(read_nir(write_nir(to_nir(net, (6,)), tmp_path / "r.nir")), dtype=torch.float64)
    assert back[1].recurrent.weight.dtype == torch.float64
    assert torch.equal(back(x)[0], net(x)[0])


def _hand_loop(w_in, w_rec, b_rec, beta, v_th, gain, x):
    """NIR's reading of ``input → fc → lif ⇄ w_rec``, in float64: the LIF without neurosim metadata resets to zero
    and spikes when v > v_th; its Euler input gain ``dt·R/τ`` scales both of its inputs."""
    T, B, _ = x.shape
    n = w_rec.shape[0]
    v, s, out = np.zeros((B, n)), np.zeros((B, n)), []
    for t in range(T):
        h = beta * v + gain * (x[t] @ w_in.T + s @ w_rec.T + b_rec)
        s = (h > v_th).astype(float)
        v = h * (1 - s)
        out.append(s)
    return np.stack(out)


@pytest.mark.parametrize("r_is_tau_over_dt", [True, False])
def test_a_flat_lif_linear_loop_without_metadata_imports_as_nir_defines_it(r_is_tau_over_dt):
    """snnTorch writes its RLeaky flat, named ``1.lif`` and ``1.w_rec``: one RLIF named ``1``. With R = τ/dt the
    input gain is 1; with R = 1 (Norse's convention) it is dt/τ = 0.2, folded into fc and the feedback alike."""
    rng = np.random.default_rng(0)
    n, dt_s, tau = 4, 1e-3, 5e-3  # β = 1 − dt/τ = 0.8
    r = tau / dt_s if r_is_tau_over_dt else 1.0
    gain = dt_s * r / tau
    w_in, w_rec, b_rec = rng.normal(size=(n, 3)) * 2 / gain, rng.normal(size=(n, n)) / gain, rng.normal(size=n) / gain
    o = np.ones(n)
    graph = nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([3])), "0": nir.Linear(weight=w_in),
               "1.lif": nir.LIF(tau=o * tau, r=o * r, v_leak=0 * o, v_threshold=o * 0.5, v_reset=0 * o),
               "1.w_rec": nir.Affine(weight=w_rec, bias=b_rec), "output": nir.Output(output_type=np.array([n]))},
        edges=[("input", "0"), ("0", "1.lif"), ("1.lif", "1.w_rec"), ("1.w_rec", "1.lif"), ("1.lif", "output")],
        type_check=False)
    net = from_nir(graph, dt_s=dt_s, dtype=torch.float64)
    assert list(net._modules) == ["0", "1"] and isinstance(net[1], RLIF) and net[1].connectivity == "dense"
    x = _binary((30, 2, 3), p=0.5).double()
    out, _ = net(x)
    ref = _hand_loop(w_in, w_rec, b_rec, 1 - dt_s / tau, 0.5, gain, x.numpy())
    assert 0 < ref.mean() < 1
    np.testing.assert_array_equal(out.detach().numpy(), ref)


def test_without_metadata_a_diagonal_feedback_matrix_reads_as_diagonal_connectivity():
    o = np.ones(3)
    sub = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([3])),
                              "output": nir.Output(output_type=np.array([3])),
                              "lif": nir.LIF(tau=o * 1e-2, r=o * 10, v_leak=0 * o, v_threshold=o, v_reset=0 * o),
                              "w": nir.Linear(weight=np.diag([0.5, -1.0, 2.0]))},
                       edges=[("input", "lif"), ("lif", "w"), ("w", "lif"), ("lif", "output")], type_check=False)
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([2])), "fc": nir.Linear(weight=np.ones((3, 2))),
                                "rec": sub, "output": nir.Output(output_type=np.array([3]))},
                         edges=[("input", "fc"), ("fc", "rec"), ("rec", "output")], type_check=False)
    net = from_nir(graph)
    assert net.rec.connectivity == "diagonal" and net.rec.recurrent.weight.tolist() == [0.5, -1.0, 2.0]
    assert math.isclose(float(net.rec.lif.beta), 0.9, rel_tol=1e-6)


def test_the_hardware_models_read_the_exported_recurrent_layer_and_the_cli_notes_name_its_neuron():
    net = _recurrent_net("diagonal", False, "immediate")
    graph = to_nir(net, (6,))
    facts = analyze(graph)
    labels = [p.label for p in facts.projections]
    assert "1.lif->1.recurrent->1.lif" in labels and "3.lif->3.recurrent->3.lif" in labels
    assert "input->0->1.lif" in labels and "1.lif->2->3.lif" in labels
    assert facts.nodes["1.recurrent"].synapses_nonzero == 5  # diagonal: one synapse per neuron
    notes = export_notes(graph)
    assert any("reset = 'subtract'" in n and "1.lif" in n for n in notes)
    biased = export_notes(to_nir(_recurrent_net("dense", True, "immediate"), (6,)))
    assert any("recurrent bias" in n and "node(s) 1, 3" in n for n in biased)


# ---------------------------------------------------------------------------------- what is refused
def test_an_rlif_after_a_conv_is_refused_naming_the_layer():
    net = Sequential(Conv2d(1, 2, 3), RLIF(2))
    with pytest.raises(NIRExportError, match=r"layer '1' \(RLIF\): an RLIF\(2\) layer takes a 1-d input of 2 features, "
                                             r"but this layer gets shape \(2, 3, 3\)"):
        to_nir(net, (1, 5, 5))


def _graph_with(sub, n=3):
    return nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([2])), "fc": nir.Linear(weight=np.ones((n, 2))),
                               "rec": sub, "output": nir.Output(output_type=np.array([n]))},
                        edges=[("input", "fc"), ("fc", "rec"), ("rec", "output")], type_check=False)


def _loop(n=3, edges=None, w=None):
    o = np.ones(n)
    return nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([n])), "output": nir.Output(output_type=np.array([n])),
               "lif": nir.LIF(tau=o * 1e-2, r=o * 10, v_leak=0 * o, v_threshold=o, v_reset=0 * o),
               "w": nir.Linear(weight=np.ones((n, n)) if w is None else w)},
        edges=edges or [("input", "lif"), ("lif", "w"), ("w", "lif"), ("lif", "output")], type_check=False)


def test_other_nestings_and_cycles_are_refused_naming_the_node():
    from_nir(_graph_with(_loop()))  # the recurrent form imports
    # snnTorch's importer wires its subgraph's input into the feedback weights: not a recurrent LIF layer
    wired = _loop(edges=[("input", "w"), ("lif", "w"), ("w", "lif"), ("lif", "output")])
    with pytest.raises(NIRImportError, match=r"node 'rec' is a nested NIR graph .* but not a recurrent LIF layer"):
        from_nir(_graph_with(wired))
    chain = nir.NIRGraph.from_list(nir.Linear(weight=np.ones((3, 3))), nir.LIF(
        tau=np.ones(3) * 1e-2, r=np.ones(3) * 10, v_leak=np.zeros(3), v_threshold=np.ones(3), v_reset=np.zeros(3)))
    with pytest.raises(NIRImportError, match="node 'rec' is a nested NIR graph"):
        from_nir(_graph_with(chain))
    with pytest.raises(NIRImportError, match=r"feedback weight must be a square N × N matrix, got shape \(3, 2\)"):
        from_nir(_graph_with(_loop(w=np.ones((3, 2)))))
    with pytest.raises(NIRImportError, match=r"3 recurrent neurons receive input of shape \(4,\)"):
        g = _graph_with(_loop())
        g.nodes["fc"] = nir.Linear(weight=np.ones((4, 2)))
        from_nir(g)
    # a loop through two neuron layers is no RLIF: the chain check refuses it as before
    o = np.ones(2)
    lif = lambda: nir.LIF(tau=o * 1e-2, r=o * 10, v_leak=0 * o, v_threshold=o, v_reset=0 * o)  # noqa: E731
    two = nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([2])), "a": nir.Linear(weight=np.eye(2)), "l1": lif(),
               "b": nir.Linear(weight=np.eye(2)), "l2": lif(), "c": nir.Linear(weight=np.eye(2)),
               "output": nir.Output(output_type=np.array([2]))},
        edges=[("input", "a"), ("a", "l1"), ("l1", "b"), ("b", "l2"), ("l2", "c"), ("c", "l1"), ("l2", "output")],
        type_check=False)
    with pytest.raises(NIRImportError, match="has several inputs"):
        from_nir(two)


def test_a_diagonal_layer_edited_off_its_diagonal_is_refused():
    graph = to_nir(_recurrent_net("diagonal", False, "immediate"), (6,))
    graph.nodes["1"].nodes["recurrent"].weight[0, 1] = 1.0
    with pytest.raises(NIRImportError, match="metadata says diagonal connectivity but the feedback matrix has weights "
                                             "off its diagonal"):
        from_nir(graph)


def test_record_outputs_of_an_rlif_hold_every_step():
    net = Sequential(Linear(3, 4), RLIF(4, beta=0.9, v_th=0.3), Flatten())
    x = _binary((12, 2, 3))
    out, rec = record_outputs(net, x)
    assert rec["1.lif"].shape == (12, 2, 4)
    assert torch.equal(rec["1.lif"], out)


# ------------------------------------------------------------------------------ refusals naming the file's nodes
def _flat(feedback, neuron=None, prefix="1."):
    """Input(2) → fc → <prefix>lif, with each ``(name, node)`` of ``feedback`` fed by the neuron and feeding it."""
    o = np.ones(3)
    nodes = {"input": nir.Input(input_type=np.array([2])), "fc": nir.Linear(weight=np.ones((3, 2))),
             f"{prefix}lif": neuron or nir.LIF(tau=o * 1e-2, r=o * 10, v_leak=0 * o, v_threshold=o, v_reset=0 * o),
             "output": nir.Output(output_type=np.array([3]))}
    edges = [("input", "fc"), ("fc", f"{prefix}lif"), (f"{prefix}lif", "output")]
    for name, node in feedback:
        nodes[prefix + name] = node
        edges += [(f"{prefix}lif", prefix + name), (prefix + name, f"{prefix}lif")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


@pytest.mark.parametrize("prefix", ["1.", ""])
def test_a_neuron_with_two_feedback_synapses_is_refused_naming_them(prefix):
    g = _flat([("w1", nir.Linear(weight=np.eye(3))), ("w2", nir.Linear(weight=np.eye(3)))], prefix=prefix)
    with pytest.raises(NIRImportError, match=rf"node '{prefix}lif' \(LIF\) has 2 feedback synapses "
                                             rf"\['{prefix}w1', '{prefix}w2'\].*a recurrent layer with one"):
        from_nir(g)


def test_flat_loop_errors_name_the_files_nodes():
    o = np.ones(3)
    gain_half = nir.LIF(tau=o * 1e-2, r=o * 5, v_leak=0 * o, v_threshold=o, v_reset=0 * o)  # dt·R/τ = 0.5
    g = _flat([("w", nir.Linear(weight=np.eye(3)))], neuron=gain_half, prefix="")
    del g.nodes["fc"]
    g.edges[:] = [("input", "lif")] + [e for e in g.edges if "fc" not in e]
    g.nodes["input"] = nir.Input(input_type=np.array([3]))
    with pytest.raises(NIRImportError, match=r"^node lif \(LIF\): input gain dt·R/τ = 0.5") as e:
        from_nir(g)
    assert "lif.lif" not in str(e.value)
    g = _flat([("w", nir.Linear(weight=np.ones((4, 3))))], prefix="")
    with pytest.raises(NIRImportError, match=r"^recurrent loop 'lif' ⇄ 'w': the feedback weight must be a square"):
        from_nir(g)


def test_loops_of_other_forms_say_what_a_recurrent_loop_must_be():
    o = np.ones(3)
    cuba = nir.CubaLIF(tau_syn=o * 1e-2, tau_mem=o * 1e-2, r=o, v_leak=0 * o, v_threshold=o)
    with pytest.raises(NIRImportError, match=r"nodes 'lif' \(CubaLIF\) and 'w' \(Linear\) feed each other, but 'lif' "
                                             r"is a CubaLIF, not a LIF/IF; neurosim imports a recurrent loop only as "
                                             r"LIF/IF ⇄ Linear/Affine"):
        from_nir(_flat([("w", nir.Linear(weight=np.eye(3)))], neuron=cuba, prefix=""))
    with pytest.raises(NIRImportError, match=r"nodes '1.lif' \(LIF\) and '1.v' \(Scale\) feed each other, but '1.v' "
                                             r"is a Scale, not a Linear/Affine"):
        from_nir(_flat([("v", nir.Scale(scale=o))]))
    g = _flat([("w", nir.Linear(weight=np.eye(3)))], prefix="")  # the feedback synapse also feeds the output
    g.edges.append(("w", "output"))
    with pytest.raises(NIRImportError, match=r"'w' also has other inputs or outputs \(\['output'\]\)"):
        from_nir(g)


@pytest.mark.parametrize("connectivity", ["dense", "diagonal"])
def test_a_chips_noisy_recurrence_is_refused_not_exported_as_its_ideal_weights(connectivity):
    from neurosim.hardware.nonideal import NonIdealConfig, apply_nonidealities

    net = Sequential(Linear(3, 4), RLIF(4, connectivity=connectivity))
    chip = apply_nonidealities(net, NonIdealConfig(read_noise_rel=0.3, adc_bits=3), layers=["1.recurrent"])
    kind = "CrossbarLinear" if connectivity == "dense" else "CrossbarDiagonal"
    with pytest.raises(NIRExportError, match=rf"layer '1' \(RLIF\): its feedback weights \(.recurrent\) are a {kind}, "
                                             "which has no NIR equivalent"):
        to_nir(chip, (3,))
    to_nir(net, (3,))  # the ideal model exports
    # a parametrized feedback weight (snnTorch's shared V) is still the module it was: it exports its value
    torch.nn.utils.parametrize.register_parametrization(net[1].recurrent, "weight", _Mean())
    w = to_nir(net, (3,)).nodes["1"].nodes["recurrent"].weight
    expected = net[1].recurrent.weight.detach().numpy()
    np.testing.assert_allclose(w if connectivity == "dense" else np.diag(w), expected)


class _Mean(torch.nn.Module):
    def forward(self, w):
        return w.mean().expand_as(w)


def _dotted_graph() -> nir.NIRGraph:
    """Another tool's graph with nodes named ``0.1`` (snnTorch's nested nn.Sequential), a flat recurrent loop
    ``1.1.lif`` ⇄ ``1.1.w_rec`` among them."""
    o5, o4 = np.ones(5), np.ones(4)
    lif = lambda o: nir.LIF(tau=o * 1e-2, r=o * 10, v_leak=0 * o, v_threshold=o * 0.3, v_reset=0 * o)  # noqa: E731
    rng = np.random.default_rng(0)
    nodes = {"input": nir.Input(input_type=np.array([6])), "0.0": nir.Affine(weight=rng.random((5, 6)),
             bias=np.zeros(5)), "0.1": lif(o5), "1.0": nir.Linear(weight=rng.random((4, 5))), "1.1.lif": lif(o4),
             "1.1.w_rec": nir.Linear(weight=rng.random((4, 4))), "output": nir.Output(output_type=np.array([4]))}
    edges = [("input", "0.0"), ("0.0", "0.1"), ("0.1", "1.0"), ("1.0", "1.1.lif"), ("1.1.lif", "1.1.w_rec"),
             ("1.1.w_rec", "1.1.lif"), ("1.1.lif", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def test_the_activity_of_an_imported_model_is_named_by_the_graphs_nodes_and_estimates_the_file(tmp_path):
    """Another tool's nodes named ``0.1`` (snnTorch's nested nn.Sequential) become modules ``0_1``; the imported
    model's activity was keyed by those, so ``estimate --nir FILE --activity`` refused it: 'activity names nodes
    ['0_1', ...] that are not in the graph'. It is now keyed by the graph's names, a flat loop's neuron too."""
    from hardware_models import ActivityProfile, estimate

    from neurosim.activity import activity_profile
    from neurosim.cli import main

    path = write_nir(_dotted_graph(), tmp_path / "other.nir")
    graph = read_nir(path)
    model = from_nir(graph, dt_s=1e-3)
    assert [n for n, _ in model.named_children()] == ["0_0", "0_1", "1_0", "1_1"]
    profile = activity_profile(model, (torch.rand(8, 3, 6) < 0.5).float(), dt_s=1e-3)
    assert sorted(profile.spikes_per_step) == ["0.1", "1.1.lif", "input"]
    assert all(profile.spikes_per_step[k].sum() > 0 for k in ("0.1", "1.1.lif"))  # spikes, under the right names
    assert estimate(graph, profile, "loihi").synops > 0
    profile.to_json(tmp_path / "activity.json")
    assert main(["-q", "estimate", "--nir", str(path), "--activity", str(tmp_path / "activity.json"),
                 "--target", "loihi"]) == 0
    assert ActivityProfile.from_json(tmp_path / "activity.json").time_steps == 8


def test_an_imported_models_export_keeps_the_graphs_names_which_its_activity_uses(tmp_path):
    """activity_profile names an imported model's nodes by the file's names (``0.1``), but to_nir named its export's
    by the modules (``0_1``): the profile of an imported (say, fine-tuned) model did not fit the graph it exported,
    'activity names nodes ['0.1', '1.1.lif'] that are not in the graph'. The export keeps the file's names, and a
    layer added after the import its module name, in both."""
    from hardware_models import estimate

    from neurosim.activity import activity_profile
    from neurosim.nn import LIF

    model = from_nir(_dotted_graph(), dt_s=1e-3)
    x = _binary((8, 3, 6), p=0.5)
    graph = to_nir(model, (6,), dt_s=1e-3)
    assert [k for k in graph.nodes if k not in ("input", "output")] == ["0.0", "0.1", "1.0", "1.1"]
    assert sorted(graph.nodes["1.1"].nodes) == ["input", "lif", "output", "recurrent"]  # flattened: node 1.1.lif
    profile = activity_profile(model, x, dt_s=1e-3)
    assert sorted(profile.spikes_per_step) == ["0.1", "1.1.lif", "input"]
    assert estimate(graph, profile, "loihi").synops > 0
    again = from_nir(read_nir(write_nir(graph, tmp_path / "again.nir")))  # (its own metadata: no dt_s needed)
    assert again.nir_node_names == model.nir_node_names and torch.equal(again(x)[0], model(x)[0])
    model.add_module("2", Linear(4, 3))
    model.add_module("3", LIF(beta=0.9, v_th=0.3))
    graph = to_nir(model, (6,), dt_s=1e-3)
    assert [k for k in graph.nodes if k not in ("input", "output")] == ["0.0", "0.1", "1.0", "1.1", "2", "3"]
    profile = activity_profile(model, x, dt_s=1e-3)  # (it named no node for module '3': a ValueError)
    assert sorted(profile.spikes_per_step) == ["0.1", "1.1.lif", "3", "input"]
    assert estimate(graph, profile, "loihi").synops > 0

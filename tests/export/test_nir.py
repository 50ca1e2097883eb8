"""NIR export/import: dt/τ conversion, identical spikes after write → read → import, nir's type inference,
BatchNorm folding, MaxPool handling, clear errors for what NIR or neurosim cannot express."""

from __future__ import annotations

import math
import re
import warnings

import nir
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neurosim.activity import record_outputs
from neurosim.config import ModelConfig, NeuronConfig
from neurosim.export import (
    NIRExportError, NIRImportError, beta_gain_from_tau_r, from_nir, read_nir, tau_r_from_beta, to_nir, write_nir,
)
from neurosim.nn import (
    LI, LIF, AvgPool2d, BatchNorm1d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, Sequential, SumPool2d,
    TimeDistributed, build_model,
)

# graphs built here by hand, without neurosim metadata, are read at from_nir's default dt_s on purpose;
# the warning that default gives another tool's graph is tested on its own (pytest.warns sees it)
pytestmark = pytest.mark.filterwarnings("ignore:from_nir. neuron node.*carry no neurosim metadata:UserWarning")


def _binary(shape, p=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g) < p).float()


def _scale_weights(model, factor):
    """Larger weights so that every layer of a freshly initialised model spikes (else equality is trivial)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (Linear, Conv2d)):
                m.weight.mul_(factor)
    return model


def _roundtrip(graph, tmp_path, **kw):
    path = write_nir(graph, tmp_path / "model.nir")
    return from_nir(read_nir(path), **kw)


def _assert_every_layer_spikes(model, x):
    _, rec = record_outputs(model, x)
    assert rec, "no LIF layer recorded"
    for name, s in rec.items():
        rate = s.mean().item()
        assert 0 < rate < 1, f"layer {name} fires at rate {rate}: the equality check would be trivial"


# ------------------------------------------------------------------------------------------- dt and τ
def test_tau_r_hand_values():
    # β = 0.75, dt = 1 ms: τ = dt/(1 − β) = 1e-3/0.25 = 4 ms, R = τ/dt = 4 (all exact in binary).
    assert tau_r_from_beta(0.75, 1e-3) == (0.004, 4.0)
    # β = 0.5, dt = 0.5 ms: τ = 1 ms, R = 2; and back: β = 1 − 0.5/1 = 0.5, gain = dt·R/τ = 0.5·2/1 = 1.
    assert tau_r_from_beta(0.5, 5e-4) == (1e-3, 2.0)
    assert beta_gain_from_tau_r(1e-3, 2.0, 5e-4) == (0.5, 1.0)
    # Norse-style R = 1 with τ = 10 ms at dt = 1 ms: β = 0.9, input gain dt/τ = 0.1.
    beta, gain = beta_gain_from_tau_r(0.01, 1.0, 1e-3)
    assert math.isclose(beta, 0.9, rel_tol=1e-12) and math.isclose(gain, 0.1, rel_tol=1e-12)
    # No leak (β = 1): IF/I nodes, dv/dt = R·I, Euler v += dt·R·I, so R = 1/dt.
    assert tau_r_from_beta(1.0, 1e-3) == (math.inf, 1000.0)
    assert beta_gain_from_tau_r(math.inf, 1000.0, 1e-3) == (1.0, 1.0)


@settings(max_examples=200, deadline=None)
@given(beta=st.floats(1e-6, 1 - 1e-9), dt_s=st.floats(1e-7, 1.0))
def test_beta_tau_beta_identity(beta, dt_s):
    tau_s, r = tau_r_from_beta(beta, dt_s)
    assert tau_s > dt_s
    beta2, gain = beta_gain_from_tau_r(tau_s, r, dt_s)
    assert math.isclose(beta2, beta, rel_tol=1e-9, abs_tol=1e-15)
    assert math.isclose(gain, 1.0, rel_tol=1e-9)


def test_nir_euler_step_reproduces_neurosim_membrane():
    """Simulate NIR's continuous LIF by forward Euler with the exported τ, R: the membrane equals neurosim's."""
    beta, dt_s = 0.8, 2e-3
    tau_s, r = tau_r_from_beta(beta, dt_s)
    x = torch.rand(20, 1, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 0.6
    lif = LIF(beta=beta, v_th=1.0, reset="none", record_membrane=True).double()
    _, state = lif(x)
    v, trace = torch.zeros(1, 5, dtype=torch.float64), []
    for i in x:  # τ dv/dt = (v_leak − v) + R·I, v_leak = 0
        v = v + dt_s / tau_s * (0.0 - v + r * i)
        trace.append(v)
    # β is stored in float32 inside LIF, hence the tolerance.
    torch.testing.assert_close(torch.stack(trace), state.v_seq, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("beta", [-0.1, 1.5, float("nan")])
def test_tau_r_rejects_bad_beta(beta):
    with pytest.raises(ValueError, match="beta"):
        tau_r_from_beta(beta, 1e-3)


def test_conversion_rejects_bad_dt_and_tau():
    with pytest.raises(ValueError, match="dt_s"):
        tau_r_from_beta(0.5, 0.0)
    with pytest.raises(ValueError, match="shorter than dt_s"):
        beta_gain_from_tau_r(0.5e-3, 1.0, 1e-3)  # τ < dt → β < 0
    assert tau_r_from_beta(0.0, 1e-3) == (1e-3, 1.0)  # β = 0, no memory: τ = dt …
    assert beta_gain_from_tau_r(1e-3, 1.0, 1e-3) == (0.0, 1.0)  # … and back


# ------------------------------------------------------------------------------------------- round trips
def test_default_conv_model_roundtrip_identical_spikes(tmp_path):
    torch.manual_seed(0)
    model = _scale_weights(build_model(ModelConfig(), NeuronConfig()), 3.0).eval()
    x = _binary((8, 3, 2, 34, 34))
    _assert_every_layer_spikes(model, x)
    graph = to_nir(model, (2, 34, 34), maxpool="sumpool")
    imported = _roundtrip(graph, tmp_path)
    assert [type(m) for m in imported] == [type(m) for m in model]  # MaxPool2d restored from metadata
    assert torch.equal(imported(x)[0], model(x)[0])
    _, rec, = record_outputs(model, x)
    _, rec2 = record_outputs(imported, x)
    assert rec.keys() == rec2.keys()  # node names = module names
    for k in rec:
        assert torch.equal(rec[k], rec2[k]), k


@pytest.mark.parametrize("neuron", [
    NeuronConfig(),
    NeuronConfig(reset="zero", tau_mem_ms=5.0),
    NeuronConfig(reset="none", v_th=0.5),
    NeuronConfig(reset_timing="delayed", beta=0.9),
    NeuronConfig(reset="zero", reset_timing="delayed", learn_beta=True, learn_threshold=True, surrogate="sigmoid"),
])
def test_mlp_roundtrip_identical_spikes(tmp_path, neuron):
    torch.manual_seed(1)
    model = _scale_weights(build_model(ModelConfig(kind="mlp", input_shape=(2, 6, 6), hidden=(32, 16)), neuron),
                           3.0).eval()
    if neuron.learn_threshold:
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, LIF):
                    m.v_th_param.fill_(0.7)
                    m.beta_logit.add_(0.3)
    x = _binary((10, 4, 2, 6, 6), p=0.4, seed=2)
    _assert_every_layer_spikes(model, x)
    imported = _roundtrip(to_nir(model, (2, 6, 6)), tmp_path)
    assert torch.equal(imported(x)[0], model(x)[0])
    for a, b in zip((m for m in model.modules() if isinstance(m, LIF)),
                    (m for m in imported.modules() if isinstance(m, LIF))):
        assert (a.reset, a.reset_timing, a.learn_beta, a.learn_threshold, a.surrogate) == \
            (b.reset, b.reset_timing, b.learn_beta, b.learn_threshold, b.surrogate)
        assert torch.equal(a.beta, b.beta) and torch.equal(a.v_th, b.v_th)


def test_membrane_readout_and_no_leak_roundtrip(tmp_path):
    """LI readout (→ NIR LI), a β = 1 LIF (→ NIR IF) and an LI with β = 1 (→ NIR I): outputs identical."""
    torch.manual_seed(2)
    for beta_lif, beta_li, kinds in [(0.8, 0.9, ("LIF", "LI")), (1.0, 1.0, ("IF", "I"))]:
        model = Sequential(Flatten(), Linear(12, 8), LIF(beta=beta_lif, v_th=0.5), Linear(8, 3), LI(beta_li)).eval()
        graph = to_nir(model, (3, 4))
        assert tuple(type(graph.nodes[k]).__name__ for k in ("2", "4")) == kinds
        x = _binary((7, 2, 3, 4), p=0.5, seed=3)
        out, _ = model(x)
        assert out.abs().sum() > 0
        assert torch.equal(_roundtrip(graph, tmp_path)(x)[0], out)


def test_batchnorm_folded_conv_roundtrip(tmp_path):
    torch.manual_seed(3)
    cfg = ModelConfig(channels=(6, 8), hidden=(12,), batch_norm=True, dropout=0.2)
    model = build_model(cfg, NeuronConfig())
    with torch.no_grad():  # non-trivial running statistics and affine parameters
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    model = _scale_weights(model, 4.0).double().eval()
    graph = to_nir(model, (2, 34, 34), maxpool="sumpool")
    kinds = [type(n).__name__ for n in graph.nodes.values()]
    assert "BatchNorm2d" not in kinds and kinds.count("Conv2d") == 2 and kinds.count("Affine") == 2
    assert "1" not in graph.nodes and graph.nodes["0"].metadata["neurosim"]["folded_batch_norm"] == "1"

    # Folded conv = W·γ/√(σ²+ε), (0 − μ)·γ/√(σ²+ε) + β: checked on the first conv by hand.
    conv, bn = model[0], model[1]
    s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    node = graph.nodes["0"]
    np.testing.assert_allclose(node.weight, (conv.weight * s[:, None, None, None]).detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(node.bias, (bn.bias - bn.running_mean * s).detach().numpy(), rtol=1e-12)

    # Identical spikes: computed in float64, so the folded and unfolded arithmetic round alike at threshold.
    x = _binary((6, 3, 2, 34, 34), seed=4).double()
    _assert_every_layer_spikes(model, x)
    imported = _roundtrip(graph, tmp_path, dtype=torch.float64)
    assert not any(isinstance(m, (torch.nn.modules.batchnorm._BatchNorm, Dropout)) for m in imported.modules())
    assert torch.equal(imported(x)[0], model(x)[0])


def test_snntorch_model_exports_and_reimports(tmp_path):
    snn = pytest.importorskip("snntorch")
    from snntorch import utils

    torch.manual_seed(4)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3), snn.Leaky(beta=0.8, threshold=0.5, init_hidden=True), torch.nn.AvgPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(4 * 5 * 5, 6), snn.Leaky(beta=0.7, threshold=0.3, init_hidden=True,
                                                                      reset_mechanism="zero"),
    ).eval()
    x = _binary((9, 2, 2, 12, 12), p=0.5, seed=5) * 1.5
    utils.reset(net)
    with torch.no_grad():
        ref = torch.stack([net(xt) for xt in x])
    assert 0 < ref.mean() < 1
    graph = to_nir(net, (2, 12, 12))
    assert [type(n).__name__ for n in graph.nodes.values()] == \
        ["Input", "Conv2d", "LIF", "AvgPool2d", "Flatten", "Affine", "LIF", "Output"]
    assert torch.equal(_roundtrip(graph, tmp_path)(x)[0], ref)


# ------------------------------------------------------------------------------------------- types
def _assert_fully_typed(graph):
    for name, node in graph.nodes.items():
        for t in (node.input_type, node.output_type):
            assert t is not None and all(v is not None for v in t.values()), f"{name} ({type(node).__name__})"


def test_graphs_pass_nir_type_inference(tmp_path):
    """snnTorch 1.0's exporter fails nir 1.0.8's type check on Linear + Leaky (scalar LIF parameters): ours passes."""
    lin_lif = to_nir(Sequential(Linear(4, 3), LIF(beta=0.9)), (4,))
    assert tuple(lin_lif.nodes["1"].input_type["input"]) == (3,)
    conv = to_nir(build_model(ModelConfig(kernel_size=3, padding=1, channels=(4, 6)), NeuronConfig()), (2, 34, 34),
                  maxpool="sumpool")
    expected = {"0": ((2, 34, 34), (4, 34, 34)), "2": ((4, 34, 34), (4, 17, 17)), "3": ((4, 17, 17), (6, 17, 17)),
                "5": ((6, 17, 17), (6, 8, 8)), "6": ((6, 8, 8), (384,)), "7": ((384,), (10,))}
    for g in (lin_lif, conv):
        _assert_fully_typed(g)
        g.infer_types()
        assert g.check_types()
    for k, (i, o) in expected.items():
        assert tuple(conv.nodes[k].input_type["input"]) == i and tuple(conv.nodes[k].output_type["output"]) == o, k
    # Read back with nir's own type check (pooling types are re-inferred by nir from the file).
    back = read_nir(write_nir(conv, tmp_path / "conv.nir"))
    _assert_fully_typed(back)
    assert back.check_types()


def test_conv_options_and_pools_export_and_import():
    torch.manual_seed(5)
    model = Sequential(
        Conv2d(2, 4, 3, stride=2, padding=1, dilation=1, bias=False), LIF(beta=0.9, v_th=0.3),
        Conv2d(4, 4, 3, padding="same", dilation=2, groups=2), LIF(beta=0.9, v_th=0.3),
        SumPool2d(2), AvgPool2d(3, stride=1, padding=1), Flatten(), Linear(4 * 4 * 4, 5), LIF(beta=0.9),
    ).eval()
    graph = to_nir(model, (2, 16, 16))
    c0, c2 = graph.nodes["0"], graph.nodes["2"]
    assert (tuple(c0.stride), tuple(c0.padding), c0.groups) == ((2, 2), (1, 1), 1) and not np.any(c0.bias)
    assert (tuple(c2.padding), tuple(c2.dilation), c2.groups) == ((2, 2), (2, 2), 2)
    x = _binary((5, 2, 2, 16, 16), p=0.5, seed=6)
    _assert_every_layer_spikes(model, x)
    assert torch.equal(from_nir(graph)(x)[0], model(x)[0])


# ------------------------------------------------------------------------------------------- MaxPool
def test_maxpool_needs_an_explicit_choice():
    model = Sequential(Conv2d(1, 2, 3), LIF(beta=0.5), MaxPool2d(2))
    with pytest.raises(NIRExportError, match=r"layer '2' \(MaxPool2d\).*maxpool='sumpool'"):
        to_nir(model, (1, 8, 8))
    graph = to_nir(model, (1, 8, 8), maxpool="sumpool")
    assert isinstance(graph.nodes["2"], nir.SumPool2d)
    with pytest.raises(ValueError, match="maxpool must be one of"):
        to_nir(model, (1, 8, 8), maxpool="avg")


def test_maxpool_is_min_one_sumpool_on_spikes_and_foreign_import_is_sumpool():
    x = _binary((3, 2, 4, 9, 9), p=0.4, seed=7)
    assert torch.equal(MaxPool2d(3, 2, 1)(x), SumPool2d(3, 2, 1)(x).clamp(max=1))  # the documented identity
    graph = to_nir(Sequential(LIF(beta=0.5, v_th=0.5), MaxPool2d(3, 2, 1)), (4, 9, 9), maxpool="sumpool")
    graph.nodes["1"].metadata = {}  # what another tool's graph looks like: a plain sum pool
    assert isinstance(from_nir(graph)[1], SumPool2d)


# ------------------------------------------------------------------------------------------- foreign graphs
def test_foreign_lif_graph_matches_forward_euler_reference():
    """A graph as another library writes it (no neurosim metadata): Euler dynamics, reset to zero, R and v_leak
    folded into the synapse."""
    rng = np.random.default_rng(0)
    dt_s, tau_s, r, v_leak, v_th = 1e-3, 5e-3, 1.0, 0.2, 0.4
    w, b = rng.normal(0, 1.0, (6, 10)), rng.normal(0, 0.1, 6)
    graph = nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([10])), nir.Affine(weight=w, bias=b),
        nir.LIF(tau=np.full(6, tau_s), r=np.full(6, r), v_leak=np.full(6, v_leak), v_threshold=np.full(6, v_th),
                v_reset=np.zeros(6)),
    )
    model = from_nir(graph, dt_s=dt_s, dtype=torch.float64)
    lif = next(m for m in model.modules() if isinstance(m, LIF))
    assert (lif.reset, lif.reset_timing) == ("zero", "immediate")
    x = _binary((30, 4, 10), p=0.5, seed=8).double()
    v, ref = torch.zeros(4, 6, dtype=torch.float64), []
    for xt in x:
        v = v + dt_s / tau_s * (v_leak - v + r * (xt @ torch.as_tensor(w).T + torch.as_tensor(b)))
        s = (v > v_th).double()  # NIR: a spike when v exceeds the threshold
        v = v * (1 - s)
        ref.append(s)
    ref = torch.stack(ref)
    assert 0 < ref.mean() < 1
    assert torch.equal(model(x)[0], ref)


def test_a_foreign_neuron_at_exactly_its_threshold_does_not_spike_yet():
    """Integer weights and thresholds, as hardware graphs have: v reaches v_th exactly, and NIR spikes at v > v_th."""
    graph = nir.NIRGraph.from_list(nir.Input(input_type=np.array([1])), nir.Linear(weight=np.ones((1, 1))),
                                   nir.IF(r=np.full(1, 1e3), v_threshold=np.full(1, 2.0), v_reset=np.zeros(1)))
    spikes, _ = from_nir(graph, dt_s=1e-3)(torch.ones(6, 1, 1))  # R·dt = 1: v grows by 1 per step
    assert spikes.flatten().tolist() == [0, 0, 1, 0, 0, 1]  # v = 1, 2 (not above), 3 → spike, reset, …


def test_edited_node_with_stale_metadata_is_an_error():
    graph = to_nir(Sequential(Linear(3, 2), LIF(beta=0.5)), (3,))
    graph.nodes["1"].tau = graph.nodes["1"].tau * 2
    with pytest.raises(NIRImportError, match=r"node '1' \(LIF\).*edited after export"):
        from_nir(graph)


# ------------------------------------------------------------------------------------------- errors
def test_unsupported_layer_is_named():
    model = Sequential(Linear(4, 4), TimeDistributed(torch.nn.ReLU()), LIF())
    with pytest.raises(NIRExportError, match=r"layer '1' \(TimeDistributed\) has no NIR equivalent; supported"):
        to_nir(model, (4,))


@pytest.mark.parametrize("model, shape, match", [
    (Sequential(BatchNorm1d(4), LIF()), (4,), r"layer '0' \(BatchNorm1d\).*folded"),
    (Sequential(Linear(4, 2), LIF()), (2, 4), r"layer '0' \(Linear\).*Flatten"),
    (Sequential(Conv2d(3, 2, 3), LIF()), (2, 8, 8), r"layer '0' \(Conv2d\).*\(3, H, W\)"),
    (Sequential(AvgPool2d(2, ceil_mode=True)), (1, 5, 5), "ceil_mode"),
])
def test_export_errors_name_the_layer(model, shape, match):
    with pytest.raises(NIRExportError, match=match):
        to_nir(model, shape)


def _lif(n):
    return nir.LIF(tau=np.full(n, 0.01), r=np.full(n, 10.0), v_leak=np.zeros(n), v_threshold=np.ones(n))


def test_import_errors_name_the_node():
    unsupported = nir.NIRGraph.from_list(nir.Input(input_type=np.array([3])), nir.Affine(np.ones((3, 3)), np.zeros(3)),
                                         nir.Threshold(threshold=np.ones(3)))
    with pytest.raises(NIRImportError, match=r"node 'threshold' \(Threshold\): node type Threshold is not supported"):
        from_nir(unsupported)

    nodes = {"input": nir.Input(input_type=np.array([3])), "a": nir.Linear(np.ones((3, 3))), "la": _lif(3),
             "b": nir.Linear(np.ones((3, 3))), "lb": _lif(3), "output": nir.Output(output_type=np.array([3]))}
    edges = [("input", "a"), ("input", "b"), ("a", "la"), ("b", "lb"), ("la", "output"), ("lb", "output")]
    with pytest.raises(NIRImportError, match=r"node 'input' \(Input\) branches to \['a', 'b'\]"):
        from_nir(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))

    per_neuron = nir.NIRGraph.from_list(nir.Input(input_type=np.array([2])), nir.Linear(np.ones((2, 2))),
                                        nir.LIF(tau=np.array([0.01, 0.02]), r=np.full(2, 10.0), v_leak=np.zeros(2),
                                                v_threshold=np.ones(2)))
    with pytest.raises(NIRImportError, match=r"node 'lif' \(LIF\): per-neuron tau"):
        from_nir(per_neuron)

    reset = nir.NIRGraph.from_list(nir.Input(input_type=np.array([2])), nir.Linear(np.ones((2, 2))),
                                   nir.LIF(tau=np.full(2, 0.01), r=np.full(2, 10.0), v_leak=np.zeros(2),
                                           v_threshold=np.ones(2), v_reset=np.full(2, -0.5)))
    with pytest.raises(NIRImportError, match=r"node 'lif' \(LIF\): v_reset = -0.5"):
        from_nir(reset)

    no_synapse = nir.NIRGraph.from_list(nir.Input(input_type=np.array([2])),
                                        nir.LIF(tau=np.full(2, 0.01), r=np.ones(2), v_leak=np.zeros(2),
                                                v_threshold=np.ones(2)))
    with pytest.raises(NIRImportError, match=r"node 'lif' \(LIF\): input gain"):
        from_nir(no_synapse)


# ------------------------------------------------------------------------------------------- files
def test_write_is_atomic_and_replaces(tmp_path, monkeypatch):
    g1 = to_nir(Sequential(Linear(3, 2), LIF(beta=0.5)), (3,))
    g2 = to_nir(Sequential(Linear(3, 4), LIF(beta=0.5)), (3,))
    path = tmp_path / "m.nir"
    write_nir(g1, path)
    write_nir(g2, path)  # replaces
    assert read_nir(path).nodes["0"].weight.shape == (4, 3)
    before = path.read_bytes()

    def broken_write(target, graph, **kw):
        target.write(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(nir, "write", broken_write)
    with pytest.raises(RuntimeError, match="disk full"):
        write_nir(g1, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.nir"]  # no temporary file left behind


def test_write_to_a_folder_and_import_as_a_non_float_dtype_are_named(tmp_path):
    """write_nir into a folder raised "Is a directory: '<tmp>/.x.vm.123.tmp' -> '<folder>'" (the temporary file's
    name first); from_nir(dtype=torch.int32) failed in nn.Module.to, dtype="float64" as an 'Invalid device string'."""
    graph = to_nir(Sequential(Linear(3, 2), LIF(beta=0.5)), (3,))
    with pytest.raises(IsADirectoryError, match=f"{re.escape(str(tmp_path))} is a folder; give the .nir file's name"):
        write_nir(graph, tmp_path)
    assert list(tmp_path.iterdir()) == []
    for dtype in (torch.int32, "float64", None):
        with pytest.raises(TypeError, match=r"dtype must be a floating torch\.dtype"):
            from_nir(graph, dtype=dtype)
    assert from_nir(graph, dtype=torch.float64)[0].weight.dtype == torch.float64


def test_read_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.nir"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="bad.nir: not a readable NIR graph"):
        read_nir(bad)
    with pytest.raises(FileNotFoundError, match="missing.nir"):
        read_nir(tmp_path / "missing.nir")


@pytest.mark.parametrize("kwargs", [dict(kernel_size=(3, 1)), dict(kernel_size=(1, 4), stride=(2, 1)),
                                    dict(kernel_size=(3, 2), padding=(1, 0), dilation=(1, 2), groups=2)],
                         ids=["3x1", "1x4_stride", "3x2_padded_dilated_grouped"])
def test_a_non_square_kernel_survives_a_file_round_trip(tmp_path, kwargs):
    # nir 1.0 types a Conv2d's output with weight.shape[2] as both kernel sizes, so its check refused these files
    from neurosim.nn import Conv2d

    torch.manual_seed(0)
    conv = Conv2d(2, 4, **kwargs)
    net = Sequential(conv, LIF(beta=0.5))
    write_nir(to_nir(net, input_shape=(2, 7, 6)), tmp_path / "k.nir")
    back = read_nir(tmp_path / "k.nir")
    x = (torch.rand(6, 2, 2, 7, 6) < 0.5).float()
    out = net(x)[0]
    assert list(back.nodes["0"].output_type["output"]) == list(out.shape[2:])
    torch.testing.assert_close(from_nir(back)(x)[0], out)


def test_a_grouped_conv_survives_a_file_round_trip_and_is_analysed(tmp_path):
    """nir rebuilds a Conv2d's input type from weight.shape[1] (C_in / groups); read_nir and the hardware models
    take the channels from weight and groups instead."""
    from hardware_models import analyze

    from neurosim.nn import Conv2d

    torch.manual_seed(0)
    net = Sequential(Conv2d(4, 4, 3, padding=1, groups=4), LIF(beta=0.9), Flatten(), Linear(4 * 6 * 6, 3),
                     LIF(beta=0.9))
    graph = to_nir(net, input_shape=(4, 6, 6))
    write_nir(graph, tmp_path / "dw.nir")
    back = read_nir(tmp_path / "dw.nir")
    assert list(back.nodes["0"].input_type["input"]) == [4, 6, 6]
    # depthwise 3×3, padding 1, 6×6: (2 + 3·4 + 2)² = 256 taps per channel; then Linear 144 → 3
    assert analyze(back).synapses_dense == analyze(graph).synapses_dense == 4 * 256 + 144 * 3
    x = (torch.rand(5, 2, 4, 6, 6) < 0.4).float()
    torch.testing.assert_close(from_nir(back)(x)[0], net(x)[0])


def _if_graph(weight: float, v_th: float = 1.0, node=None) -> nir.NIRGraph:
    neuron = node if node is not None else nir.IF(r=np.array([1000.0]), v_threshold=np.array([v_th]))
    return nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([1])),
                               "w": nir.Linear(weight=np.array([[weight]])), "n": neuron,
                               "output": nir.Output(output_type=np.array([1]))},
                        edges=[("input", "w"), ("w", "n"), ("n", "output")])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_foreign_threshold_is_strict_in_the_models_own_dtype(dtype):
    # NIR spikes at v > v_th: just above spikes, v == v_th does not (the next float32 above 1 missed 1 + 2^-30)
    eps = torch.finfo(dtype).eps
    x = torch.ones(1, 1, 1, dtype=dtype)
    assert from_nir(_if_graph(1.0 + eps), dtype=dtype)(x)[0].item() == 1.0
    assert from_nir(_if_graph(1.0), dtype=dtype)(x)[0].item() == 0.0


def test_a_neuron_whose_tau_equals_dt_in_float32_imports_with_no_memory():
    dt = 1e-4
    node = nir.LIF(tau=np.array([dt], dtype=np.float32), r=np.array([1.0]), v_leak=np.array([0.0]),
                   v_threshold=np.array([1.0]))  # float32(1e-4) is a little below 1e-4
    lif = [m for m in from_nir(_if_graph(1.0, node=node), dt_s=dt).modules() if isinstance(m, LIF)][0]
    assert float(lif.beta) == 0.0


def test_a_foreign_graph_imported_without_dt_s_warns_that_its_decays_assume_1e3():
    """A NIR graph does not record its dt, and snnTorch's export_to_nir writes τ = dt/(1 − β) for dt = 1e-4 s: its
    β = 0.9 (τ = 1e-3 s) read at the default 1e-3 s is 0, and nothing said so. Without dt_s the import now warns,
    naming the neurons; with it, or for neurosim's own graphs (their metadata keeps β), it stays silent."""
    node = nir.LIF(tau=np.array([1e-3]), r=np.array([10.0]), v_leak=np.array([0.0]), v_threshold=np.array([1.0]))
    with pytest.warns(UserWarning, match=r"node\(s\) 'n' carry no neurosim metadata.*dt_s=1e-4"):
        lif = from_nir(_if_graph(1.0, node=node)).n
    assert float(lif.beta) == 0.0  # what it assumed, as before
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(from_nir(_if_graph(1.0, node=node), dt_s=1e-4).n.beta) == pytest.approx(0.9)
        ours = Sequential(Linear(1, 1), LIF(beta=0.9))
        assert float(from_nir(to_nir(ours, (1,), dt_s=1e-4))[1].beta) == pytest.approx(0.9)  # any dt: exported β


def _grouped_conv1d(groups=2) -> nir.Conv1d:
    """Conv1d 2 -> 4 channels, kernel 3, padding 1, over 10 positions (depthwise-style for groups = 2)."""
    return nir.Conv1d(input_shape=10, weight=np.ones((4, 2 // groups, 3)), stride=1, padding=1, dilation=1,
                      groups=groups, bias=np.zeros(4))


def test_a_grouped_conv1d_file_is_read_with_its_whole_kernel_in_subgraphs_too(tmp_path):
    # nir 1.0 types a Conv1d's input with weight.shape[1] = C_in / groups channels, so its check refused the file
    o = np.ones((4, 10))
    body = {"c1": _grouped_conv1d(), "l1": nir.LIF(tau=o, r=o, v_leak=0 * o, v_threshold=o)}
    flat = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([2, 10])), **body,
                               "output": nir.Output(output_type=np.array([4, 10]))},
                        edges=[("input", "c1"), ("c1", "l1"), ("l1", "output")], type_check=False)
    nested = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([2, 10])), "block": flat,
                                 "output": nir.Output(output_type=np.array([4, 10]))},
                          edges=[("input", "block"), ("block", "output")], type_check=False)
    for name, graph, conv in (("flat", flat, lambda g: g.nodes["c1"]),
                              ("nested", nested, lambda g: g.nodes["block"].nodes["c1"])):
        nir.write(str(tmp_path / f"{name}.nir"), graph)
        back = read_nir(tmp_path / f"{name}.nir")
        assert list(conv(back).input_type["input"]) == [2, 10]
        assert list(conv(back).output_type["output"]) == [4, 10]


# ------------------------------------------------------------------------------------------- foreign parameters
def _pool_graph(pool) -> nir.NIRGraph:
    """Input (1, 4, 4) -> pool -> Flatten -> Linear (2 x 4) -> LIF(2)."""
    return nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([1, 4, 4])), "pool": pool,
                               "flat": nir.Flatten(input_type={"input": np.array([1, 2, 2])}, start_dim=0),
                               "fc": nir.Linear(weight=np.ones((2, 4))), "lif": _lif(2),
                               "output": nir.Output(output_type=np.array([2]))},
                        edges=[("input", "pool"), ("pool", "flat"), ("flat", "fc"), ("fc", "lif"),
                               ("lif", "output")], type_check=False)


@pytest.mark.parametrize("kind", [nir.SumPool2d, nir.AvgPool2d])
def test_a_foreign_pool_with_stride_none_strides_by_its_kernel(kind):
    # PyTorch's (and older sinabs') meaning of stride None, as hardware_models.analyze reads it: it was a TypeError
    net = from_nir(_pool_graph(kind(kernel_size=np.array([2, 2]), stride=None, padding=np.array([0, 0]))))
    assert net.pool.stride == (2, 2) and net.pool.kernel_size == (2, 2)
    y = net.pool(torch.ones(1, 1, 1, 4, 4))
    assert tuple(y.shape) == (1, 1, 1, 2, 2) and y.flatten().tolist() == [4.0 if kind is nir.SumPool2d else 1.0] * 4


def test_pool_and_conv_parameters_of_none_or_not_whole_numbers_are_named():
    pool = nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=None)
    with pytest.raises(NIRImportError, match=r"node 'pool' \(SumPool2d\): padding is None; give a whole number"):
        from_nir(_pool_graph(pool))
    pool = nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array(["a", "b"]))
    with pytest.raises(NIRImportError, match=r"node 'pool' \(SumPool2d\): padding \['a', 'b'\] is not numeric"):
        from_nir(_pool_graph(pool))
    pool = nir.SumPool2d(kernel_size=np.array([2.5, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    with pytest.raises(NIRImportError, match=r"kernel_size \[2.5, 2.0\] must be whole numbers"):
        from_nir(_pool_graph(pool))  # it was truncated to 2 without a word
    conv = nir.Conv2d(input_shape=(4, 4), weight=np.ones((2, 1, 3, 3)), stride=1, padding=1, dilation=1, groups=1,
                      bias=np.zeros(2))
    conv.stride = None  # as a file read without nir's checks can hold it (nir's constructor needs a stride)
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([1, 4, 4])), "conv": conv,
                                "lif": _lif((2, 4, 4)), "output": nir.Output(output_type=np.array([2, 4, 4]))},
                         edges=[("input", "conv"), ("conv", "lif"), ("lif", "output")], type_check=False)
    with pytest.raises(NIRImportError, match=r"node 'conv' \(Conv2d\): stride is None"):
        from_nir(graph)


def test_a_float64_import_keeps_beta_and_threshold_in_float64():
    # built in float32 and converted, β = 0.9 was 0.8999999761581421
    o = np.ones(2)
    graph = nir.NIRGraph.from_list(nir.Input(input_type=np.array([2])), nir.Linear(weight=np.eye(2)),
                                   nir.LIF(tau=o * 0.01, r=o * 10, v_leak=0 * o, v_threshold=o * 0.7),
                                   nir.Linear(weight=np.eye(2)), nir.LI(tau=o * 0.02, r=o * 20, v_leak=0 * o))
    net = from_nir(graph, dt_s=1e-3, dtype=torch.float64)
    lif, li = [m for m in net.modules() if isinstance(m, LIF)][0], [m for m in net.modules() if isinstance(m, LI)][0]
    assert lif.beta_value.dtype == torch.float64 and lif.beta_value.item() == 1 - 1e-3 / 0.01
    assert li.beta_value.item() == 1 - 1e-3 / 0.02
    assert lif.v_th_value.item() == math.nextafter(0.7, math.inf)  # strict in float64, not float32's next number
    # neurosim's own float64 model: β, the learnt β's logit and the learnt threshold as exported
    model = Sequential(Linear(2, 2), LIF(beta=0.9, v_th=0.7), Linear(2, 2), LIF(beta=0.3, learn_beta=True,
                                                                             learn_threshold=True, v_th=0.6),
                       Linear(2, 2), LI(beta=0.8)).double()
    with torch.no_grad():  # the layers made them in float32: in float64 now
        model[1].beta_value.fill_(0.9), model[1].v_th_value.fill_(0.7), model[5].beta_value.fill_(0.8)
        model[3].beta_logit.fill_(math.log(0.3 / 0.7)), model[3].v_th_param.fill_(0.6)
    graph = to_nir(model, input_shape=(2,), dt_s=1e-3)
    back = from_nir(graph, dtype=torch.float64)
    assert back[1].beta_value.item() == 0.9 and back[1].v_th_value.item() == 0.7
    assert back[3].beta_logit.item() == model[3].beta_logit.item() and back[3].v_th_param.item() == 0.6
    assert back[5].beta_value.item() == 0.8


def test_uniform_neuron_parameters_stored_flat_after_a_conv_are_taken():
    # (32,) values for (2, 4, 4) neurons: one value has no layout to get wrong; a count that differs is still named
    def graph(n):
        return nir.NIRGraph(nodes={
            "input": nir.Input(input_type=np.array([1, 4, 4])),
            "conv": nir.Conv2d(input_shape=(4, 4), weight=np.ones((2, 1, 3, 3)), stride=1, padding=1, dilation=1,
                               groups=1, bias=np.zeros(2)),
            "lif": nir.LIF(tau=np.full(n, 0.01), r=np.full(n, 10.0), v_leak=np.zeros(n), v_threshold=np.ones(n)),
            "output": nir.Output(output_type=np.array([n]))},
            edges=[("input", "conv"), ("conv", "lif"), ("lif", "output")], type_check=False)

    lif = from_nir(graph(32), dt_s=1e-3).lif
    assert math.isclose(float(lif.beta), 0.9, rel_tol=1e-6)
    with pytest.raises(NIRImportError, match=r"node 'lif' \(LIF\): tau has shape \(31,\) \(31 values\) but the "
                                             r"neurons have shape \(2, 4, 4\) \(32 neurons\)"):
        from_nir(graph(31))


def test_read_nir_without_the_type_check_reads_the_graph_as_stored(tmp_path):
    # the NIR paper's Rockpool file types its Output [1, 1, 1] behind a 1-neuron LIF: nir's check refuses it
    graph = nir.NIRGraph(nodes={"fc": nir.Linear(weight=np.ones((1, 1))), "lif": _lif(1),
                                "output": nir.Output(output_type=np.array([1, 1, 1]))},
                         edges=[("fc", "lif"), ("lif", "output")], type_check=False)
    nir.write(str(tmp_path / "rock.nir"), graph)
    with pytest.raises(ValueError, match=r"rock.nir: nir's type check refuses the graph \(ValueError: .*type mismatch"
                                         r".*\); read_nir\(path, type_check=False\) reads it as stored"):
        read_nir(tmp_path / "rock.nir")
    back = read_nir(tmp_path / "rock.nir", type_check=False)
    assert list(back.nodes) == ["fc", "lif", "output"]  # nothing inferred: no Input node added in front of 'fc'
    assert back.nodes["output"].output_type["output"].tolist() == [1, 1, 1]

"""Current-based LIF layers (CubaLIF) through NIR: the ``CubaLIF`` node they export as (forward Euler of NIR's
equations is exactly neurosim's step), identical outputs after write → read → import for both reset timings and a
learnable β and threshold, a foreign ``CubaLIF`` node imported as NIR defines it (against NIR's equations stepped by
hand), and clear errors for what NIR or neurosim cannot say."""

from __future__ import annotations

import nir
import numpy as np
import pytest
import torch

from neurosim.activity import record_outputs
from neurosim.export import NIRExportError, NIRImportError, from_nir, read_nir, to_nir, write_nir
from neurosim.export.cli import export_notes
from neurosim.nn import LI, CubaLIF, Linear, Sequential

# graphs built here by hand, without neurosim metadata, are read at from_nir's default dt_s on purpose;
# the warning that default gives another tool's graph is tested on its own (pytest.warns sees it)
pytestmark = pytest.mark.filterwarnings("ignore:from_nir. neuron node.*carry no neurosim metadata:UserWarning")


def _binary(shape, p=0.4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g) < p).float()


def _cuba_net(timing, seed=0):
    """Input(6) → Linear → CubaLIF(5) → Linear → CubaLIF(4, zero reset, learnable β and threshold) → Linear → LI(3),
    weights scaled up so that both CubaLIF layers spike."""
    torch.manual_seed(seed)
    net = Sequential(
        Linear(6, 5), CubaLIF(alpha=0.8, beta=0.7, v_th=0.5, reset="subtract", reset_timing=timing),
        Linear(5, 4, bias=False), CubaLIF(tau_syn_ms=3.0, tau_mem_ms=5.0, v_th=0.4, reset="zero", reset_timing=timing,
                                          learn_beta=True, learn_threshold=True),
        Linear(4, 3), LI(beta=0.9),
    )
    with torch.no_grad():
        for p in net.parameters():
            if p.dim() > 0:
                p.mul_(2.5)
    return net.eval()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("timing", ["immediate", "delayed"])
def test_cuba_layers_round_trip_through_a_nir_file_with_identical_outputs(timing, dtype, tmp_path):
    net = _cuba_net(timing).to(dtype)
    x = _binary((25, 4, 6)).to(dtype)
    ref, _ = net(x)
    _, rec = record_outputs(net, x)
    for name in ("1", "3"):  # both CUBA layers spike (else equal outputs would prove little)
        assert 0 < rec[name].mean() < 1, name
    graph = to_nir(net, (6,), dt_s=1e-3)
    node = graph.nodes["1"]
    assert isinstance(node, nir.CubaLIF)
    # α = 0.8, β = 0.7 at dt = 1 ms: τ_syn = dt/(1 − α) = 5 ms, w_in = τ_syn/dt = 5; τ_mem = 10/3 ms, R = 10/3
    np.testing.assert_allclose(node.tau_syn, 5e-3, rtol=1e-6)
    np.testing.assert_allclose(node.w_in, 5.0, rtol=1e-6)
    np.testing.assert_allclose(node.tau_mem, 1e-3 / 0.3, rtol=1e-6)
    np.testing.assert_allclose(node.r, 1 / 0.3, rtol=1e-6)
    assert node.metadata["neurosim"]["reset_timing"] == timing and node.metadata["neurosim"]["layer"] == "CubaLIF"

    back = from_nir(read_nir(write_nir(graph, tmp_path / "cuba.nir")), dtype=dtype)
    for i in (1, 3):
        assert isinstance(back[i], CubaLIF) and back[i].lif.reset_timing == timing
    assert back[3].lif.learn_beta and back[3].lif.learn_threshold
    assert back.state_dict().keys() == net.state_dict().keys()
    for k, v in net.state_dict().items():
        assert v.dtype == back.state_dict()[k].dtype and torch.equal(back.state_dict()[k], v), k
    out, _ = back(x)
    assert torch.equal(out, ref)


def _nir_by_hand(w, b, node, x, dt_s):
    """NIR's CubaLIF equations stepped by forward Euler in float64 (τ_syn·dI/dt = −I + w_in·S, τ_mem·dv/dt =
    v_leak − v + R·I, spike when v > v_th, then v = v_reset), behind the Affine ``w·x + b``."""
    ts, tm, r, w_in = (np.asarray(a, dtype=np.float64) for a in (node.tau_syn, node.tau_mem, node.r, node.w_in))
    v_th, v_reset, v_leak = (np.asarray(a, dtype=np.float64) for a in (node.v_threshold, node.v_reset, node.v_leak))
    i = np.zeros((x.shape[1], w.shape[0]))
    v = np.zeros_like(i)
    out = []
    for xt in x.numpy().astype(np.float64):
        s_in = xt @ w.T + b
        i = i + dt_s / ts * (-i + w_in * s_in)
        v = v + dt_s / tm * (v_leak - v + r * i)
        z = (v > v_th).astype(np.float64)
        v = np.where(z > 0, v_reset, v)
        out.append(z)
    return np.stack(out)


def test_a_foreign_cubalif_node_runs_as_nir_defines_it():
    """No neurosim metadata: α = 1 − dt/τ_syn = 0.5 with input gain dt·w_in/τ_syn = 1.5, β = 1 − dt/τ_mem = 0.75 with
    gain dt·R/τ_mem = 0.5; their product 0.75 is folded into the Affine before the neuron."""
    dt = 1e-3
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(3, 4)) * 1.5, rng.normal(size=3) * 0.1
    full = lambda v: np.full(3, v)  # noqa: E731
    cuba = nir.CubaLIF(tau_syn=full(2e-3), tau_mem=full(4e-3), r=full(2.0), v_leak=full(0.0), v_threshold=full(0.5),
                       v_reset=full(0.0), w_in=full(3.0))
    graph = nir.NIRGraph.from_list(nir.Input(input_type=np.array([4])), nir.Affine(weight=w, bias=b), cuba,
                                   nir.Output(output_type=np.array([3])))
    model = from_nir(graph, dt_s=dt, dtype=torch.float64)
    layer = model[1]
    assert isinstance(layer, CubaLIF) and float(layer.alpha) == 0.5 and float(layer.lif.beta) == 0.75
    assert (layer.lif.reset, layer.lif.reset_timing) == ("zero", "immediate")
    np.testing.assert_allclose(model[0].weight.detach().numpy(), 0.75 * w, rtol=1e-15)
    x = _binary((30, 5, 4), p=0.5, seed=1).double()
    out = model(x)[0].detach().numpy()
    assert 0 < out.mean() < 1
    np.testing.assert_array_equal(out, _nir_by_hand(w, b, cuba, x, dt))


def test_refusals_name_the_layer_or_node():
    with pytest.raises(NIRExportError, match=r"layer '1' \(CubaLIF\): alpha .* is 1 \(no decay\)"):
        to_nir(Sequential(Linear(3, 2), CubaLIF(alpha=1.0, beta=0.5)), (3,))
    with pytest.raises(NIRExportError, match=r"layer '1' \(CubaLIF\): beta .* is 1 \(no decay\)"):
        to_nir(Sequential(Linear(3, 2), CubaLIF(alpha=0.5, beta=1.0)), (3,))

    def graph_with(**changes):
        kw = dict(tau_syn=np.full(2, 2e-3), tau_mem=np.full(2, 4e-3), r=np.full(2, 4.0), v_leak=np.zeros(2),
                  v_threshold=np.ones(2), v_reset=np.zeros(2), w_in=np.full(2, 2.0))
        kw.update(changes)
        return nir.NIRGraph.from_list(nir.Input(input_type=np.array([3])), nir.Linear(weight=np.ones((2, 3))),
                                      nir.CubaLIF(**kw), nir.Output(output_type=np.array([2])))

    assert isinstance(from_nir(graph_with())[1], CubaLIF)  # (the graph the cases below change is importable)
    with pytest.raises(NIRImportError, match=r"CubaLIF\): v_leak = 0.1; a CubaLIF's leak potential"):
        from_nir(graph_with(v_leak=np.full(2, 0.1)))
    with pytest.raises(NIRImportError, match=r"CubaLIF\): per-neuron tau_syn"):
        from_nir(graph_with(tau_syn=np.array([2e-3, 3e-3])))
    with pytest.raises(NIRImportError, match=r"CubaLIF\): v_reset = 0.5"):
        from_nir(graph_with(v_reset=np.full(2, 0.5)))
    with pytest.raises(NIRImportError, match=r"CubaLIF\): the synaptic current \(tau_syn, w_in; neurosim's alpha\): "
                                             r"tau_s = 0.0005 s is shorter than dt_s"):
        from_nir(graph_with(tau_syn=np.full(2, 5e-4)))
    graph = to_nir(_cuba_net("immediate"), (6,))
    graph.nodes["1"].tau_syn = graph.nodes["1"].tau_syn * 2  # edited after export: the metadata no longer holds
    with pytest.raises(NIRImportError, match=r"node '1' \(CubaLIF\): its neurosim metadata \(α = 0.8\) disagrees"):
        from_nir(graph)


def test_export_notes_name_the_cuba_layers_other_tools_reset_differently():
    notes = export_notes(to_nir(_cuba_net("delayed"), (6,)))
    assert any(n.startswith("reset = 'subtract'") and "node(s) 1;" in n for n in notes)
    assert any(n.startswith("snnTorch's delayed reset") and "node(s) 1, 3;" in n for n in notes)

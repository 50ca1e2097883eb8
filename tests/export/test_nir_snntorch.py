"""NIR interchange with snnTorch itself: neurosim's graphs run in ``snntorch.import_from_nir`` and snnTorch's
``export_to_nir`` graphs run in :func:`from_nir`, with the same spikes (both at ``dt = 1e-4`` s), in memory and
through files; and each deviation the module docstring lists (reset, threshold tie, dt, refused nodes, snnTorch's
exporter failures) happens as written."""

from __future__ import annotations

import nir
import pytest
import torch
from torch import nn

pytest.importorskip("nirtorch", reason="snnTorch's NIR export/import needs nirtorch (pip install nirtorch)")
snn = pytest.importorskip("snntorch", minversion="1.0",
                          reason="the deviations below are snnTorch 1.0's; 0.9's NIR import differs (e.g. how it flattens)")
from snntorch.export_nir import export_to_nir  # noqa: E402 - both need nirtorch
from snntorch.import_nir import import_from_nir  # noqa: E402

from neurosim.activity import record_outputs as record  # noqa: E402
from neurosim.export import from_nir, read_nir, to_nir, write_nir  # noqa: E402
from neurosim.nn import LI, LIF, AvgPool2d, Conv2d, Flatten, Linear, Sequential, SumPool2d  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:nirtorch.extract_nir_graph:DeprecationWarning")

DT_S = 1e-4  # the dt snnTorch's exporter and importer assume


def _binary(shape, p=0.4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g) < p).float()


def _scaled(model, factor=3.0):
    """Larger weights, so that every layer spikes (else equal outputs prove nothing)."""
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(factor)
    return model


def _zero_leaky_membranes(module):
    for m in module.modules():
        if isinstance(m, snn.Leaky):
            m.mem = torch.zeros(0)  # re-made at the input's shape on the next call


def _run_imported(module, x_seq):
    """snnTorch's imported GraphModule: one time step of one sample per call (see the module docstring)."""
    T, B = x_seq.shape[:2]  # time, batch
    out = []
    with torch.no_grad():
        for b in range(B):
            _zero_leaky_membranes(module)
            state, ys = None, []
            for t in range(T):
                y, state = module(x_seq[t, b], state)
                ys.append(y)
            out.append(torch.stack(ys))
    return torch.stack(out, 1)


def _run_snntorch(net, x_seq):
    """An snnTorch nn.Sequential of init_hidden neurons: one time step of the whole batch per call."""
    _zero_leaky_membranes(net)
    with torch.no_grad():
        return torch.stack([net(x) for x in x_seq])


def _neurosim_net(pool, bias=True, reset="zero"):
    torch.manual_seed(0)
    features = Sequential(Conv2d(2, 4, 3, padding=1), pool, Flatten())(torch.zeros(1, 1, 2, 6, 6))[0].shape[-1]
    return _scaled(Sequential(
        Conv2d(2, 4, 3, padding=1), LIF(beta=0.9, v_th=0.5, reset=reset), pool, Flatten(),
        Linear(features, 5, bias=bias), LIF(beta=0.8, v_th=0.3, reset=reset),
    ).eval())


def _leaky(shape, beta, threshold, **kw):
    """snnTorch's exporter needs per-neuron beta and threshold (scalars fail nir's type inference)."""
    kw = {"reset_mechanism": "zero", "reset_delay": False, **kw}
    return snn.Leaky(beta=torch.full(shape, beta), threshold=torch.full(shape, threshold), init_hidden=True, **kw)


def _snntorch_net(**leaky_kw):
    torch.manual_seed(1)
    return _scaled(nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), _leaky((4, 6, 6), 0.9, 0.5, **leaky_kw), nn.AvgPool2d(2), nn.Flatten(),
        nn.Linear(4 * 3 * 3, 5), _leaky((5,), 0.8, 0.3, **leaky_kw),
    ))


def _export(net):
    return export_to_nir(net, torch.zeros(1, 2, 6, 6), ignore_dims=[0])  # graph shapes without the batch dim


def _assert_spiking(spikes):
    assert 0 < spikes.mean() < 1, f"output rate {float(spikes.mean())}: the equality check would be trivial"


# ------------------------------------------------------------------------------ neurosim → snnTorch
@pytest.mark.parametrize("pool", [AvgPool2d(2), SumPool2d(2), SumPool2d(3, 1)], ids=repr)
@pytest.mark.parametrize("bias", [True, False])
def test_neurosim_graph_runs_in_snntorch_with_the_same_spikes(pool, bias):
    net = _neurosim_net(pool, bias)
    x = _binary((12, 3, 2, 6, 6))
    ref, _ = net(x)
    _assert_spiking(ref)
    imported = import_from_nir(to_nir(net, (2, 6, 6), dt_s=DT_S))
    leaky = [m for m in imported.modules() if isinstance(m, snn.Leaky)]
    assert [(m.reset_mechanism, m.reset_delay) for m in leaky] == [("zero", False)] * 2
    assert torch.equal(_run_imported(imported, x), ref)


def test_neurosim_file_runs_in_snntorch_with_the_same_spikes(tmp_path):
    net = _neurosim_net(AvgPool2d(2))
    x = _binary((12, 2, 2, 6, 6), seed=1)
    path = write_nir(to_nir(net, (2, 6, 6), dt_s=DT_S), tmp_path / "net.nir")
    imported = import_from_nir(nir.read(str(path)))
    ref, _ = net(x)
    _assert_spiking(ref)
    assert torch.equal(_run_imported(imported, x), ref)


def test_snntorch_runs_neurosim_subtract_reset_as_reset_to_zero():
    """NIR's LIF resets to zero: snnTorch runs a subtract-reset LIF (neurosim's default) as a zero-reset one."""
    x = _binary((12, 3, 2, 6, 6), seed=2)
    subtract, zero = _neurosim_net(AvgPool2d(2), reset="subtract"), _neurosim_net(AvgPool2d(2), reset="zero")
    out = _run_imported(import_from_nir(to_nir(subtract, (2, 6, 6), dt_s=DT_S)), x)
    assert torch.equal(out, zero(x)[0])
    assert not torch.equal(out, subtract(x)[0])


def test_snntorch_does_not_spike_at_the_threshold_where_neurosim_does():
    # One neuron, weight 1, β = 0.5, v_th = 1, input 1 at every step.
    # neurosim (immediate timing) spikes at v ≥ v_th: v = 1 → spike, reset to 0, v = 1 → spike, … every step.
    # snnTorch spikes at v > v_th: v = 1 (no spike), 0.5 + 1 = 1.5 (spike, reset to 0), 1 (no spike), 1.5, …
    net = Sequential(Linear(1, 1, bias=False), LIF(beta=0.5, v_th=1.0, reset="zero")).eval()
    with torch.no_grad():
        net[0].weight.fill_(1.0)
    x = torch.ones(4, 1, 1)
    assert net(x)[0].flatten().tolist() == [1, 1, 1, 1]
    imported = import_from_nir(to_nir(net, (1,), dt_s=DT_S))
    assert _run_imported(imported, x).flatten().tolist() == [0, 1, 0, 1]


def test_snntorch_reads_tau_for_dt_1e4():
    """A graph exported for another dt decays differently in snnTorch: β = 0.9 at 1e-3 s is 1 − 0.1·0.1 = 0.99."""
    net = Sequential(Linear(3, 2), LIF(beta=0.9, reset="zero"))
    for dt_s, beta in ((1e-4, 0.9), (1e-3, 0.99)):
        (leaky,) = [m for m in import_from_nir(to_nir(net, (3,), dt_s=dt_s)).modules() if isinstance(m, snn.Leaky)]
        assert torch.allclose(leaky.beta, torch.full((2,), beta), rtol=0, atol=1e-6), dt_s


def test_snntorch_refuses_li_readouts_and_if_neurons():
    with pytest.raises(ValueError, match="Unknown node type .*LI"):
        import_from_nir(to_nir(Sequential(Linear(3, 2), LI(0.9)), (3,), dt_s=DT_S))
    with pytest.raises(AssertionError, match="r != 1"):  # β = 1 exports as IF with R = 1/dt
        import_from_nir(to_nir(Sequential(Linear(3, 2), LIF(beta=1.0, reset="zero")), (3,), dt_s=DT_S))


def test_snntorch_drops_sum_pool_padding():
    """nirtorch maps SumPool2d to LPPool2d without its padding: a padded sum pool gives another output size."""
    net = Sequential(Conv2d(2, 4, 3, padding=1), LIF(beta=0.9, reset="zero"), SumPool2d(2, padding=1), Flatten())
    x = _binary((2, 1, 2, 6, 6))
    assert net(x)[0].shape[-1] == 4 * 4 * 4
    assert _run_imported(import_from_nir(to_nir(net, (2, 6, 6), dt_s=DT_S)), x).shape[-1] == 4 * 3 * 3


def test_snntorch_import_takes_one_sample_per_call():
    """NIR's Flatten(start_dim=0) is torch's Flatten(0, -1): on a batch it flattens the batch dim too."""
    imported = import_from_nir(to_nir(_neurosim_net(AvgPool2d(2)), (2, 6, 6), dt_s=DT_S))
    _zero_leaky_membranes(imported)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        imported(torch.zeros(3, 2, 6, 6))


# ------------------------------------------------------------------------------ snnTorch → neurosim
def test_snntorch_graph_runs_in_neurosim_with_the_same_spikes():
    net = _snntorch_net()
    x = _binary((12, 3, 2, 6, 6), seed=3)
    ref = _run_snntorch(net, x)
    _assert_spiking(ref)
    model = from_nir(_export(net), dt_s=DT_S)
    assert [(m.reset, m.reset_timing) for m in model.modules() if isinstance(m, LIF)] == [("zero", "immediate")] * 2
    assert torch.equal(model(x)[0], ref)


def test_snntorch_file_runs_in_neurosim_with_the_same_spikes(tmp_path):
    net = _snntorch_net()
    x = _binary((12, 2, 2, 6, 6), seed=4)
    nir.write(str(tmp_path / "snn.nir"), _export(net))
    ref = _run_snntorch(net, x)
    _assert_spiking(ref)
    assert torch.equal(from_nir(read_nir(tmp_path / "snn.nir"), dt_s=DT_S)(x)[0], ref)


def test_snntorch_export_writes_every_leaky_as_reset_to_zero():
    """snnTorch's exporter writes no reset: its default Leaky (subtract, reset_delay=True) comes back from any NIR
    reader as a zero-reset neuron — the spikes of the same weights with reset_mechanism="zero", reset_delay=False."""
    default, zero = _snntorch_net(reset_mechanism="subtract", reset_delay=True), _snntorch_net()  # same weights
    x = _binary((12, 3, 2, 6, 6), seed=5)
    out = from_nir(_export(default), dt_s=DT_S)(x)[0]
    _assert_spiking(out)
    assert torch.equal(out, _run_snntorch(zero, x))
    assert not torch.equal(out, _run_snntorch(default, x))


def test_snntorch_export_fails_on_scalar_beta_and_neurosims_route_works():
    """snnTorch 1.0's export_to_nir writes a scalar beta as a shape-() LIF, which nir's type inference refuses;
    neurosim's to_nir reads the same model (via from_snntorch) and keeps its exact dynamics."""
    torch.manual_seed(2)
    net = _scaled(nn.Sequential(nn.Flatten(), nn.Linear(8, 5), snn.Leaky(beta=0.9, threshold=0.5, init_hidden=True)))
    with pytest.raises(ValueError, match="type mismatch"):
        export_to_nir(net, torch.zeros(1, 2, 4), ignore_dims=[0])
    x = _binary((12, 3, 2, 4), seed=6)
    ref = _run_snntorch(net, x)
    _assert_spiking(ref)
    assert torch.equal(from_nir(to_nir(net, (2, 4), dt_s=DT_S))(x)[0], ref)


def test_snntorch_export_fails_on_max_pool():
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), _leaky((4, 6, 6), 0.9, 0.5), nn.MaxPool2d(2))
    with pytest.raises(AttributeError):  # its module map returns None for MaxPool2d; nirtorch then fails on it
        _export(net)
    assert isinstance(to_nir(net, (2, 6, 6), dt_s=DT_S, maxpool="sumpool").nodes["2"], nir.SumPool2d)


# ------------------------------------------------------------------------------ recurrent layers (RLIF ⇄ RLeaky)
def _zero_rleaky_state(net):
    for m in net.modules():
        if isinstance(m, snn.RLeaky):
            m.mem, m.spk = torch.zeros(0), torch.zeros(0)  # re-made at the input's shape on the next call


def _rleaky_net(all_to_all: bool, n=5):
    """Linear(4 → n) → RLeaky(n), zero reset in the step that spikes (what NIR's LIF means), per-neuron β and
    threshold (the exporter needs them); dense feedback has snnTorch's default bias, diagonal feedback ``V``."""
    torch.manual_seed(3)
    kw = dict(linear_features=n) if all_to_all else dict(V=torch.linspace(-1.0, 1.0, n))
    rleaky = snn.RLeaky(beta=torch.full((n,), 0.9), threshold=torch.full((n,), 0.5), all_to_all=all_to_all,
                        init_hidden=True, reset_mechanism="zero", reset_delay=False, **kw)
    return _scaled(nn.Sequential(nn.Linear(4, n), rleaky), 2.0)


@pytest.mark.parametrize("all_to_all", [True, False])
def test_snntorch_rleaky_file_runs_in_neurosim_as_an_rlif_with_the_same_spikes(all_to_all, tmp_path):
    """snnTorch writes an RLeaky flat (``1.lif`` ⇄ ``1.w_rec``); from_nir reads the loop as one RLIF named ``1``."""
    from neurosim.nn import RLIF

    net = _rleaky_net(all_to_all)
    x = _binary((30, 3, 4), p=0.5, seed=7)
    _zero_rleaky_state(net)
    with torch.no_grad():
        ref = torch.stack([net(xt) for xt in x])
    _assert_spiking(ref)
    graph = export_to_nir(net, torch.zeros(1, 4), ignore_dims=[0])
    assert {"1.lif", "1.w_rec"} <= set(graph.nodes)
    model = from_nir(read_nir(write_nir(graph, tmp_path / "rleaky.nir")), dt_s=DT_S)
    assert isinstance(model[1], RLIF) and model[1].connectivity == ("dense" if all_to_all else "diagonal")
    assert torch.equal(model(x)[0], ref)


def _neurosim_recurrent(connectivity, bias):
    from neurosim.nn import RLIF

    torch.manual_seed(4)
    net = _scaled(Sequential(Linear(4, 5), RLIF(5, beta=0.9, v_th=0.5, reset="zero", connectivity=connectivity,
                                                bias=bias), Linear(5, 3), LIF(beta=0.8, v_th=0.4, reset="zero")), 2.0)
    if connectivity == "diagonal":
        with torch.no_grad():
            net[1].recurrent.weight.copy_(torch.linspace(-1.0, 1.0, 5))
    return net.eval()


@pytest.mark.parametrize("connectivity", ["dense", "diagonal"])
def test_neurosim_rlif_runs_in_snntorch_with_the_same_spikes(connectivity, tmp_path):
    """snnTorch 1.0 reads the subgraph through nirtorch as a Leaky and a Linear in a loop (not an RLeaky module):
    the feedback of step t − 1 enters step t, as in an RLIF."""
    net = _neurosim_recurrent(connectivity, bias=False)
    x = _binary((30, 3, 4), p=0.5, seed=8)
    ref, _ = net(x)
    _, rec = record(net, x)
    assert 0 < rec["1.lif"].mean() < 1
    imported = import_from_nir(read_nir(write_nir(to_nir(net, (4,), dt_s=DT_S), tmp_path / "rlif.nir")))
    assert not any(isinstance(m, snn.RLeaky) for m in imported.modules())
    assert torch.equal(_run_imported(imported, x), ref)


def test_snntorch_adds_the_recurrent_bias_only_from_the_second_step():
    """nirtorch starts a loop's feedback at zero, not at ``W·0 + b``: the imported network runs as the RLIF whose
    first step lacks the bias (export_notes says so)."""
    net = _neurosim_recurrent("dense", bias=True)[:2]  # Linear → RLIF: the output is the recurrent layer's spikes
    x = _binary((30, 3, 4), p=0.5, seed=9)
    out = _run_imported(import_from_nir(to_nir(net, (4,), dt_s=DT_S)), x)
    with torch.no_grad():
        current = net[0](x)
        current[0] -= net[1].recurrent.bias  # the bias missing at step 0
        expected, _ = net[1](current)
    _assert_spiking(expected)
    assert torch.equal(out, expected)
    assert not torch.equal(out, net(x)[0])


# ------------------------------------------------------------------------------ current-based layers (CubaLIF ⇄ Synaptic)
def _zero_synaptic_state(net):
    for m in net.modules():
        if isinstance(m, snn.Synaptic):
            m.syn, m.mem = torch.zeros(0), torch.zeros(0)  # re-made at the input's shape on the next call


def _run_imported_synaptic(module, x_seq):
    """As :func:`_run_imported`, the ``Synaptic`` modules' current and membrane zeroed before each sample."""
    T, B = x_seq.shape[:2]
    out = []
    with torch.no_grad():
        for b in range(B):
            _zero_synaptic_state(module)
            state, ys = None, []
            for t in range(T):
                y, state = module(x_seq[t, b], state)
                ys.append(y)
            out.append(torch.stack(ys))
    return torch.stack(out, 1)


def _synaptic(n, alpha, beta, threshold, **kw):
    """snnTorch's exporter needs per-neuron alpha, beta and threshold (scalars fail nir's type inference)."""
    kw = {"reset_mechanism": "zero", "reset_delay": False, **kw}
    return snn.Synaptic(alpha=torch.full((n,), alpha), beta=torch.full((n,), beta), threshold=torch.full((n,), threshold),
                        init_hidden=True, **kw)


def _synaptic_net(**kw):
    torch.manual_seed(5)
    return _scaled(nn.Sequential(nn.Linear(4, 5), _synaptic(5, 0.8, 0.9, 0.5, **kw), nn.Linear(5, 3),
                                 _synaptic(3, 0.6, 0.7, 0.4, **kw)), 2.0)


def test_snntorch_synaptic_file_runs_in_neurosim_as_cubalif_with_the_same_spikes(tmp_path):
    """snnTorch writes a Synaptic as CubaLIF with τ_syn = dt/(1 − α), w_in = τ_syn/dt (the convention neurosim uses):
    at dt_s = 1e-4 it comes back as a CubaLIF with the same α and β and, for the zero reset in the step that spikes
    (what NIR's CubaLIF means), the same spikes."""
    from neurosim.nn import CubaLIF

    net = _synaptic_net()
    x = _binary((30, 3, 4), p=0.5, seed=10)
    _zero_synaptic_state(net)
    with torch.no_grad():
        ref = torch.stack([net(xt) for xt in x])
    _assert_spiking(ref)
    graph = export_to_nir(net, torch.zeros(1, 4), ignore_dims=[0])
    assert isinstance(graph.nodes["1"], nir.CubaLIF)
    model = from_nir(read_nir(write_nir(graph, tmp_path / "synaptic.nir")), dt_s=DT_S)
    assert [(round(float(m.alpha), 6), round(float(m.lif.beta), 6), m.lif.reset, m.lif.reset_timing)
            for m in model.modules() if isinstance(m, CubaLIF)] == [(0.8, 0.9, "zero", "immediate"),
                                                                    (0.6, 0.7, "zero", "immediate")]
    assert torch.equal(model(x)[0], ref)


def _neurosim_cuba(reset="zero"):
    from neurosim.nn import CubaLIF

    torch.manual_seed(6)
    return _scaled(Sequential(Linear(4, 5), CubaLIF(alpha=0.8, beta=0.9, v_th=0.5, reset=reset), Linear(5, 3),
                              CubaLIF(alpha=0.6, beta=0.7, v_th=0.4, reset=reset)), 2.0).eval()


def test_neurosim_cubalif_runs_in_snntorch_as_synaptic_with_the_same_spikes(tmp_path):
    net = _neurosim_cuba()
    x = _binary((30, 3, 4), p=0.5, seed=11)
    ref, _ = net(x)
    _, rec = record(net, x)
    assert 0 < rec["1"].mean() < 1
    _assert_spiking(ref)
    imported = import_from_nir(read_nir(write_nir(to_nir(net, (4,), dt_s=DT_S), tmp_path / "cuba.nir")))
    synaptic = [m for m in imported.modules() if isinstance(m, snn.Synaptic)]
    assert [(m.reset_mechanism, m.reset_delay) for m in synaptic] == [("zero", False)] * 2
    assert torch.allclose(synaptic[0].alpha, torch.tensor(0.8), rtol=0, atol=1e-6)
    assert torch.equal(_run_imported_synaptic(imported, x), ref)


def test_snntorch_runs_a_subtract_reset_cubalif_as_reset_to_zero():
    x = _binary((30, 3, 4), p=0.5, seed=12)
    out = _run_imported_synaptic(import_from_nir(to_nir(_neurosim_cuba("subtract"), (4,), dt_s=DT_S)), x)
    assert torch.equal(out, _neurosim_cuba("zero")(x)[0])
    assert not torch.equal(out, _neurosim_cuba("subtract")(x)[0])

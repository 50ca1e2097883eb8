"""Estimates of recurrent models (RLIF layers): the activity is recorded under the exported graph's node names
(``layer.lif``), the hardware models count each recurrent spike's synaptic events inside its own layer (N for dense
feedback, 1 for diagonal) besides those into the next layer, and a trained recurrent checkpoint is estimated and
exported from the command line."""

from __future__ import annotations

import json

import nir
import pytest
import torch

from neurosim.activity import activity_profile, record_outputs
from neurosim.cli import main
from neurosim.estimation import estimate_files, estimate_model
from neurosim.nn import LIF, RLIF, Linear, Sequential


def _spikes(shape, p=0.4, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < p).float()


def _net(connectivity):
    """Input(4) → Linear (no bias) → RLIF(3) → Linear (no bias) → LIF(2); every weight nonzero (normal draws)."""
    torch.manual_seed(0)
    net = Sequential(Linear(4, 3, bias=False), RLIF(3, beta=0.8, v_th=0.5, connectivity=connectivity),
                     Linear(3, 2, bias=False), LIF(beta=0.8, v_th=0.5))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn_like(p) * 1.5)
    return net.eval()


@pytest.mark.parametrize("connectivity, recurrent_fan_out", [("dense", 3), ("diagonal", 1)])
def test_synaptic_operations_of_a_recurrent_model_match_a_hand_count_from_its_spikes(connectivity, recurrent_fan_out):
    net = _net(connectivity)
    B = 5
    x = _spikes((20, B, 4))
    _, rec = record_outputs(net, x)
    events_in, spikes_rec = float(x.sum()), float(rec["1.lif"].sum())
    assert 0 < rec["1.lif"].mean() < 1
    # per inference (the profile averages over samples): each input event reaches the 3 RLIF neurons; each RLIF
    # spike reaches its own layer (3 neurons, or itself) and the 2 neurons of the next layer; the last layer's
    # spikes leave the graph
    by_hand = (3 * events_in + (recurrent_fan_out + 2) * spikes_rec) / B
    report = estimate_model(net, (4,), x, ["loihi", "rram_neurosim"])
    assert sorted(report.activity.spikes_per_step) == ["1.lif", "3", "input"]
    for est in report.estimates.values():
        assert est.synops == pytest.approx(by_hand, rel=1e-12)
        assert est.per_layer["1.lif"]["synops_in"] == pytest.approx((3 * events_in + recurrent_fan_out * spikes_rec)
                                                                    / B, rel=1e-12)
        assert est.per_layer["3"]["synops_in"] == pytest.approx(2 * spikes_rec / B, rel=1e-12)


def test_the_recurrent_neurons_updated_per_step_count_their_feedback_current_by_hand():
    """RLIF(2), β = 0.5, v_th = 1, zero reset; the input reaches neuron 0 only, neuron 0's spikes reach neuron 1
    (feedback 0.5), nothing else. One input event at t0:
        t0: n0 gets 1 → fires (reset to 0); n1 at rest, no input                       1 updated, 1 spike
        t1: n0 nothing; n1 gets the feedback 0.5 → h = 0.5                             1 updated
        t2: n1 leaks, h = 0.25; t3: h = 0.125                                          1 updated each
    """
    net = Sequential(Linear(1, 2, bias=False), RLIF(2, beta=0.5, v_th=1.0, reset="zero"))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0], [0.0]]))
        net[1].recurrent.weight.copy_(torch.tensor([[0.0, 0.0], [0.5, 0.0]]))
        net[1].recurrent.bias = None
    x = torch.tensor([1.0, 0, 0, 0]).reshape(4, 1, 1)
    prof = activity_profile(net, x, dt_s=1e-3)
    assert prof.spikes_per_step["1.lif"].tolist() == [1, 0, 0, 0]
    assert prof.updates_per_step["1.lif"].tolist() == [1, 1, 1, 1]
    assert sorted(prof.updates_per_step) == ["1.lif"]


def test_the_profile_of_a_recurrent_model_is_the_same_a_few_steps_at_a_time(monkeypatch):
    import neurosim.nn.layers as layers

    net = _net("dense")
    x = _spikes((12, 3, 4), seed=2)
    calls = []
    net[1].register_forward_hook(lambda m, a, out: calls.append(a[0].shape[0]))
    whole = activity_profile(net, x, dt_s=1e-3)
    monkeypatch.setattr(layers, "CHUNK_SAMPLES", 15)  # 5 steps of 3 samples per call, the RLIF's state carried
    chunked = activity_profile(net, x, dt_s=1e-3)
    assert calls == [12, 5, 5, 2]
    for name in ("1.lif", "3"):
        assert chunked.spikes_per_step[name].tolist() == whole.spikes_per_step[name].tolist()
        assert chunked.updates_per_step[name].tolist() == whole.updates_per_step[name].tolist()


def test_record_outputs_joins_a_module_called_once_per_step_and_names_one_it_cannot_join():
    net = _net("diagonal")
    x = _spikes((9, 2, 4), seed=3)
    _, rec = record_outputs(net, x)
    rlif_out, _ = net[1](net[0](x))
    assert rec["1.lif"].shape == (9, 2, 3) and torch.equal(rec["1.lif"], rlif_out)

    class Twice(torch.nn.Module):  # one LIF called on 3 and then on 2 neurons
        def __init__(self):
            super().__init__()
            self.lif = LIF(beta=0.5, v_th=0.5)

        def forward(self, x_seq, state=None):
            self.lif(x_seq[..., :3])
            return self.lif(x_seq[..., :2])

    with pytest.raises(ValueError, match=r"record_outputs: module 'lif' was called 2 times with outputs of different "
                                         r"shapes after the time dim \[\(2, 2\), \(2, 3\)\]"):
        record_outputs(Twice(), x)


def test_estimate_outputs_of_a_recurrent_model_name_its_neurons(tmp_path):
    net = _net("dense")
    report = estimate_model(net, (4,), _spikes((10, 4, 4)), ["loihi"], out_dir=tmp_path)
    est = json.loads((tmp_path / "estimate.json").read_text())
    assert sorted(est["activity"]["spikes_per_inference"]) == ["1.lif", "3"]
    assert isinstance(nir.read(str(tmp_path / "model.nir")).nodes["1"], nir.NIRGraph)
    assert "1.lif" in report.estimates["loihi"].per_layer
    again = estimate_files(tmp_path / "model.nir", tmp_path / "activity.json", ["loihi"])  # the files alone
    assert again.estimates["loihi"].synops == report.estimates["loihi"].synops > 0


@pytest.fixture
def recurrent_checkpoint(event_digits_cache, tmp_path):
    """The quickstart conv net with a recurrent hidden layer of 8, trained one short epoch on event digits."""
    out = tmp_path / "runs"
    assert main(["-q", "train", "--config", "quickstart", "--set", "name=rec", f"out_dir={out}", "model.hidden=[8]",
                 "model.recurrent=true", "data.train_subset=32", "data.test_subset=16", "data.time_steps=4",
                 "train.epochs=1"]) == 0
    return out / "rec" / "checkpoint.pt"


@pytest.mark.slow  # trains a run (~10 s on 2 shared cores), besides the session's event-digits cache
def test_cli_estimates_and_exports_a_trained_recurrent_checkpoint(recurrent_checkpoint, tmp_path, capsys):
    from neurosim.export import from_nir, read_nir
    from neurosim.runs import load_run

    ckpt = recurrent_checkpoint
    assert main(["-q", "estimate", "--checkpoint", str(ckpt), "--target", "loihi", "--samples", "4",
                 "--out", str(tmp_path / "est")]) == 0
    est = json.loads((tmp_path / "est" / "estimate.json").read_text())
    rec = [k for k in est["activity"]["spikes_per_inference"] if k.endswith(".lif")]
    assert len(rec) == 1 and rec[0] in est["targets"]["loihi"]["per_layer"]
    assert main(["export", "--checkpoint", str(ckpt), "--maxpool", "sumpool", "--out", str(tmp_path / "m.nir")]) == 0
    assert "NIRGraph(LIF ⇄ Linear)" in capsys.readouterr().out
    model, cfg, data = load_run(ckpt, progress=False, test_only=True)
    back = from_nir(read_nir(tmp_path / "m.nir"))
    x = data.test.frames[:3].transpose(0, 1).float()
    assert torch.equal(back(x)[0], model(x)[0])

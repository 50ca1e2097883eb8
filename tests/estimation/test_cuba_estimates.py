"""Estimates of current-based models (CubaLIF layers): the activity is recorded under the exported ``CubaLIF`` node's
name (the layer's, not its ``.lif``'s), its current (``.syn``, an LI) is no population of its own, a neuron whose
synaptic current is nonzero counts as updated, synaptic operations match a hand count, and a trained CUBA checkpoint
is estimated on every target and exported from the command line."""

from __future__ import annotations

import json

import nir
import pytest
import torch

from neurosim.activity import activity_profile, record_outputs
from neurosim.cli import main
from neurosim.estimation import estimate_files, estimate_model
from neurosim.nn import LIF, CubaLIF, Linear, Sequential


def _spikes(shape, p=0.4, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < p).float()


def _net():
    """Input(4) → Linear (no bias) → CubaLIF(3) → Linear (no bias) → LIF(2); every weight nonzero (normal draws)."""
    torch.manual_seed(0)
    net = Sequential(Linear(4, 3, bias=False), CubaLIF(alpha=0.7, beta=0.8, v_th=0.5),
                     Linear(3, 2, bias=False), LIF(beta=0.8, v_th=0.5))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn_like(p) * 1.5)
    return net.eval()


def test_synaptic_operations_of_a_cuba_model_match_a_hand_count_from_its_spikes():
    net = _net()
    B = 5
    x = _spikes((20, B, 4))
    _, rec = record_outputs(net, x)
    assert sorted(rec) == ["1", "3"]  # the CubaLIF under its own name, once
    events_in, spikes_cuba = float(x.sum()), float(rec["1"].sum())
    assert 0 < rec["1"].mean() < 1
    # per inference: each input event reaches the 3 CUBA neurons, each of their spikes the 2 of the next layer (the
    # synaptic current is the neuron's own state, not a synapse); the last layer's spikes leave the graph
    by_hand = (3 * events_in + 2 * spikes_cuba) / B
    report = estimate_model(net, (4,), x, ["loihi", "loihi_sanafe", "rram_neurosim", "conventional_45nm"])
    assert sorted(report.activity.spikes_per_step) == ["1", "3", "input"]
    assert sorted(report.activity.updates_per_step) == ["1", "3"]
    for name, est in report.estimates.items():
        assert est.synops == pytest.approx(by_hand, rel=1e-12), name
        assert est.per_layer["1"]["synops_in"] == pytest.approx(3 * events_in / B, rel=1e-12), name
        assert est.per_layer["3"]["synops_in"] == pytest.approx(2 * spikes_cuba / B, rel=1e-12), name


@pytest.mark.parametrize("alpha, updated", [(0.5, [1, 1, 1, 1]), (0.0, [1, 0, 0, 0])])
def test_a_neuron_with_a_decaying_synaptic_current_counts_as_updated_by_hand(alpha, updated):
    """CubaLIF(1), β = 0.5, v_th = 1, zero reset; one input of 2 at t0, nothing after. With α = 0.5:
        t0: i = 2 → h = 2, fires (reset to 0)                          updated (input)
        t1: i = 1 → h = 1, fires (reset to 0)                          updated (current, spike)
        t2: i = 0.5 → h = 0.5; no input, membrane 0 entering the step  updated (its current alone)
        t3: i = 0.25 → h = 0.5                                         updated (current, membrane)
    With α = 0 (a LIF): t0 as above, then no current, membrane 0: at rest from t1 on."""
    net = Sequential(Linear(1, 1, bias=False), CubaLIF(alpha=alpha, beta=0.5, v_th=1.0, reset="zero"))
    with torch.no_grad():
        net[0].weight.fill_(1.0)
    x = torch.tensor([2.0, 0, 0, 0]).reshape(4, 1, 1)
    prof = activity_profile(net, x, dt_s=1e-3)
    assert prof.spikes_per_step["1"].tolist() == ([1, 1, 0, 0] if alpha else [1, 0, 0, 0])
    assert prof.updates_per_step["1"].tolist() == updated
    assert sorted(prof.updates_per_step) == ["1"]  # not '1.syn': the current is part of the neuron


def test_the_profile_of_a_cuba_model_is_the_same_a_few_steps_at_a_time(monkeypatch):
    import neurosim.nn.layers as layers

    net = _net()
    x = _spikes((12, 3, 4), seed=2)
    calls = []
    net[1].register_forward_hook(lambda m, a, out: calls.append(a[0].shape[0]))
    whole = activity_profile(net, x, dt_s=1e-3)
    monkeypatch.setattr(layers, "CHUNK_SAMPLES", 15)  # 5 steps of 3 samples per call, the current and membrane carried
    chunked = activity_profile(net, x, dt_s=1e-3)
    assert calls == [12, 5, 5, 2]
    for name in ("1", "3"):
        assert chunked.spikes_per_step[name].tolist() == whole.spikes_per_step[name].tolist()
        assert chunked.updates_per_step[name].tolist() == whole.updates_per_step[name].tolist()


def test_recording_cubalif_itself_gives_the_same_single_layer():
    net = _net()
    x = _spikes((9, 2, 4), seed=3)
    _, by_lif = record_outputs(net, x)
    _, by_cuba = record_outputs(net, x, kinds=(CubaLIF,))
    _, both = record_outputs(net, x, kinds=(LIF, CubaLIF))
    assert sorted(by_cuba) == ["1"] and sorted(both) == ["1", "3"]
    assert torch.equal(by_cuba["1"], by_lif["1"]) and torch.equal(both["1"], net[1](net[0](x))[0])


def test_estimate_outputs_of_a_cuba_model_name_its_layer(tmp_path):
    net = _net()
    report = estimate_model(net, (4,), _spikes((10, 4, 4)), ["loihi"], out_dir=tmp_path)
    est = json.loads((tmp_path / "estimate.json").read_text())
    assert sorted(est["activity"]["spikes_per_inference"]) == ["1", "3"]
    assert isinstance(nir.read(str(tmp_path / "model.nir")).nodes["1"], nir.CubaLIF)
    again = estimate_files(tmp_path / "model.nir", tmp_path / "activity.json", ["loihi"])  # the files alone
    assert again.estimates["loihi"].synops == report.estimates["loihi"].synops > 0


@pytest.fixture
def cuba_checkpoint(event_digits_cache, tmp_path):
    """The quickstart conv net with CUBA neurons (neuron.tau_syn_ms = 5), trained one short epoch on event digits."""
    out = tmp_path / "runs"
    assert main(["-q", "train", "--config", "quickstart", "--set", "name=cuba", f"out_dir={out}",
                 "neuron.tau_syn_ms=5", "data.train_subset=32", "data.test_subset=16", "data.time_steps=4",
                 "train.epochs=1"]) == 0
    return out / "cuba" / "checkpoint.pt"


@pytest.mark.slow  # trains a run (~10 s on 2 shared cores), besides the session's event-digits cache
def test_cli_estimates_and_exports_a_trained_cuba_checkpoint_on_every_target(cuba_checkpoint, tmp_path, capsys):
    from hardware_models.specs import list_targets
    from neurosim.export import from_nir, read_nir
    from neurosim.runs import load_run

    ckpt = cuba_checkpoint
    assert main(["-q", "estimate", "--checkpoint", str(ckpt), "--samples", "4", "--out", str(tmp_path / "est")]) == 0
    est = json.loads((tmp_path / "est" / "estimate.json").read_text())
    model, cfg, data = load_run(ckpt, progress=False, test_only=True)
    cubas = [name for name, m in model.named_modules() if isinstance(m, CubaLIF)]
    assert cubas and set(cubas) <= set(est["activity"]["spikes_per_inference"])
    assert sorted(est["targets"]) == sorted(list_targets())
    for target in est["targets"].values():
        assert set(cubas) <= set(target["per_layer"])
    assert main(["export", "--checkpoint", str(ckpt), "--maxpool", "sumpool", "--out", str(tmp_path / "m.nir")]) == 0
    assert "CubaLIF" in capsys.readouterr().out
    back = from_nir(read_nir(tmp_path / "m.nir"))
    x = data.test.frames[:3].transpose(0, 1).float()
    assert torch.equal(back(x)[0], model(x)[0])

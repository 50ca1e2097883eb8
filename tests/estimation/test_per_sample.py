"""Per-sample cost: each sample's estimate against the model measured and estimated on that sample alone, the
mean activity's figures against the ordinary estimate, and the report's files."""

import json

import numpy as np
import pytest
import torch
from small_nets import conv_net, record_estimates, recurrent_net

from neurosim.estimation import estimate_model
from neurosim.estimation.per_sample import PERCENTILES, per_sample

T, B = 6, 7
TARGETS = ["loihi", "rram_neurosim", "truenorth"]


def _conv_net():
    return conv_net(T, B)


def _recurrent_net():
    return recurrent_net(T, B)


@pytest.mark.parametrize("build", [_conv_net, _recurrent_net])
def test_each_samples_cost_is_the_estimate_of_that_sample_alone(build):
    net, x, shape = build()
    y = torch.arange(B) % 3
    report = per_sample(net, shape, [(x[:, :4], y[:4]), (x[:, 4:], y[4:])], TARGETS, chunk=3)
    assert report.samples == B and report.time_steps == T
    np.testing.assert_array_equal(report.labels, y.numpy())
    for i in range(B):
        alone = estimate_model(net, shape, x[:, [i]], TARGETS).estimates
        for t in TARGETS:
            c = report.costs[t]
            assert c.energy_j[i] == pytest.approx(alone[t].total_energy_j, rel=1e-9), (t, i)
            assert c.latency_s[i] == pytest.approx(alone[t].latency_per_inference_s, rel=1e-9), (t, i)
    whole = estimate_model(net, shape, x, TARGETS).estimates  # the mean activity: the ordinary estimate
    for t in TARGETS:
        assert report.costs[t].energy_of_mean_j == pytest.approx(whole[t].total_energy_j, rel=1e-9)
        assert report.costs[t].latency_of_mean_s == pytest.approx(whole[t].latency_per_inference_s, rel=1e-9)


def test_samples_chunks_and_batches_do_not_change_the_figures():
    net, x, shape = _conv_net()
    a = per_sample(net, shape, x, ["loihi"], chunk=16)
    b = per_sample(net, shape, [(x[:, :2], None), (x[:, 2:], None)], ["loihi"], chunk=1)
    np.testing.assert_array_equal(a.costs["loihi"].latency_s, b.costs["loihi"].latency_s)
    np.testing.assert_array_equal(a.costs["loihi"].energy_j, b.costs["loihi"].energy_j)
    assert a.labels is None
    head = per_sample(net, shape, [(x[:, :2], None), (x[:, 2:], None)], ["loihi"], samples=3)
    assert head.samples == 3
    np.testing.assert_array_equal(head.costs["loihi"].energy_j, a.costs["loihi"].energy_j[:3])


def test_a_busiest_core_chip_takes_longer_on_average_than_its_mean_activity_suggests():
    """Loihi's step lasts as long as its busiest core needs: a maximum, so the mean of the samples' latencies is at
    least the latency of their mean activity, and the samples differ."""
    net, x, shape = _conv_net()
    c = per_sample(net, shape, x, ["loihi"]).costs["loihi"]
    assert c.latency_s.mean() >= c.latency_of_mean_s * (1 - 1e-12)
    assert c.latency_s.max() > c.latency_s.min()


def test_summary_files_and_table(tmp_path):
    net, x, shape = _conv_net()
    report = per_sample(net, shape, [(x, torch.arange(B))], ["loihi", "truenorth"], out_dir=tmp_path)
    data = json.loads((tmp_path / "per_sample.json").read_text())
    lat = np.array(data["per_sample"]["loihi"]["latency_s"])
    s = data["summary"]["loihi"]
    assert s["latency_s"]["mean"] == pytest.approx(lat.mean())
    for q in PERCENTILES:
        assert s["latency_s"][f"p{q}"] == pytest.approx(np.percentile(lat, q))
    assert s["latency_s"]["max"] == lat.max()
    assert s["slowest_samples"][0] == int(lat.argmax())
    assert data["labels"] == list(range(B))
    assert (tmp_path / "per_sample.png").stat().st_size > 0
    text = (tmp_path / "per_sample.txt").read_text()
    assert "loihi" in text and "slowest samples" in text and text == report.table() + "\n"


@pytest.mark.parametrize("kwargs, words", [({"samples": 0}, "samples must be a whole number >= 1"),
                                           ({"chunk": 0}, "chunk must be a whole number >= 1"),
                                           ({"samples": True}, "samples must be")])
def test_bad_arguments_are_named(kwargs, words):
    net, x, shape = _conv_net()
    with pytest.raises(ValueError, match=words):
        per_sample(net, shape, x, ["loihi"], **kwargs)


def test_empty_data_is_refused():
    net, _, shape = _conv_net()
    with pytest.raises(ValueError, match="no samples"):
        per_sample(net, shape, [], ["loihi"])


def test_cli_per_sample_writes_its_files_and_matches_the_estimate(tiny_checkpoint, capsys):
    from neurosim.cli import main

    assert main(["-q", "estimate", "--checkpoint", str(tiny_checkpoint), "--target", "loihi", "--samples", "6",
                 "--per-sample"]) == 0
    out = capsys.readouterr().out
    assert "per-sample cost: 6 samples" in out and "slowest samples on loihi" in out
    folder = tiny_checkpoint.parent / "estimate"
    data = json.loads((folder / "per_sample.json").read_text())
    estimate = json.loads((folder / "estimate.json").read_text())
    assert data["samples"] == 6 and len(data["per_sample"]["loihi"]["latency_s"]) == 6 and len(data["labels"]) == 6
    ours = data["summary"]["loihi"]["latency_of_mean_activity_s"]  # the same samples' mean: the estimate's figure
    theirs = estimate["targets"]["loihi"]["latency_per_inference_s"]
    assert ours == pytest.approx(theirs, rel=1e-9)
    # an estimate without --per-sample in the same folder: the earlier run's files go with its estimate
    assert main(["-q", "estimate", "--checkpoint", str(tiny_checkpoint), "--target", "loihi", "--samples", "6"]) == 0
    assert not any(folder.glob("per_sample*"))


def test_cli_per_sample_with_early_exit_gives_each_policys_tail(tiny_checkpoint, capsys):
    from neurosim.cli import main

    assert main(["-q", "estimate", "--checkpoint", str(tiny_checkpoint), "--target", "loihi", "--samples", "4",
                 "--per-sample", "--early-exit", "--early-exit-samples", "5", "--exit-thresholds", "0.5"]) == 0
    assert "each sample estimated alone" in capsys.readouterr().out
    data = json.loads((tiny_checkpoint.parent / "estimate" / "early_exit.json").read_text())
    tails = {p["name"]: p.get("latency_s_per_sample") for p in data["policies"]}
    assert set(tails["confidence > 0.5"]["loihi"]) == {"mean", "p99", "max"} and tails["1 step"] is None


def test_cli_per_sample_needs_a_checkpoint(capsys):
    from neurosim.cli import main

    assert main(["estimate", "--nir", "x.nir", "--activity", "a.json", "--per-sample"]) == 2
    assert "--per-sample needs --checkpoint" in capsys.readouterr().err


def test_every_sample_is_costed_on_the_placement_of_the_mean_activity(monkeypatch):
    # a chip is placed once: where placement orders tie on cores, the estimate breaks the tie by latency at the
    # activity given as placed_for; per_sample passes the mean activity for every sample of a digital target (and
    # nothing to other kinds of target, which take no such option)
    recorded = record_estimates(monkeypatch)
    net, x, shape = _conv_net()
    per_sample(net, shape, x, ["loihi", "rram_neurosim"])
    calls = [(name, activity, options.get("placed_for")) for name, activity, options in recorded]
    loihi = [c for c in calls if c[0] == "loihi"]
    assert len(loihi) == B + 1
    mean = loihi[-1][1]  # the last: the mean activity's own estimate
    assert all(placed is mean for _, _, placed in loihi)
    assert all(placed is None for name, _, placed in calls if name == "rram_neurosim")

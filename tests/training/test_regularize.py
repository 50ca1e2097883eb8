"""The activity penalty: each neuron's weight (its exact fan-out), the term and its gradients under BPTT, SLTT and
SLTT-K against the penalty written out by hand, and training that spikes less."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neurosim.cli import main
from neurosim.config import ConfigError, load_config
from neurosim.nn import LIF, Conv2d, Flatten, Linear, MaxPool2d, RLIF, Sequential
from neurosim.training import get_loss, get_method
from neurosim.training.losses import Loss
from neurosim.training.regularize import ActivityPenalty, pending_penalty

T, B = 5, 3


def _conv_net(beta=0.8):
    torch.manual_seed(0)
    return Sequential(Conv2d(2, 4, 3), LIF(beta=beta, v_th=0.4), MaxPool2d(2), Conv2d(4, 6, 3, padding=1),
                      LIF(beta=beta, v_th=0.4), Flatten(), Linear(6 * 3 * 3, 4), LIF(beta=beta))


def test_each_neurons_weight_is_the_number_of_synapses_it_drives():
    net = _conv_net()
    pen = ActivityPenalty(net, 1.0, input_shape=(2, 8, 8))
    # the second LIF [6, 3, 3] drives Linear(54 -> 4): 4 synapses each; the output LIF drives none
    np.testing.assert_array_equal(pen._weights["4"], np.full((6, 3, 3), 4.0))
    np.testing.assert_array_equal(pen._weights["7"], np.zeros(4))
    # the first LIF [4, 6, 6] reaches Conv(4 -> 6, k3, pad 1) through a 2x2 pool: each neuron has the fan-out of its
    # window's pooled position, which a transposed convolution of ones counts, borders included (sinabs' way)
    pooled = F.conv_transpose2d(torch.ones(1, 6, 3, 3), torch.ones(6, 4, 3, 3), padding=1)[0]
    expected = pooled.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2).numpy()
    np.testing.assert_array_equal(pen._weights["1"], expected)
    assert pen.total == expected.sum() + 6 * 3 * 3 * 4
    spikes = ActivityPenalty(net, 1.0, on="spikes", input_shape=(2, 8, 8))
    assert spikes.total == 4 * 6 * 6 + 6 * 3 * 3  # every neuron that drives a synapse, once


def _hand_penalty(net, x, pen, steps=None):
    """λ · Σ_l Σ s·f / (B · total) / T over ``steps`` (all by default), the spikes recorded with their graph."""
    outs = {}
    hooks = [m.register_forward_hook(lambda m, a, o, n=n: outs.setdefault(n, []).append(o[0]))
             for n, m in net.named_modules() if isinstance(m, LIF)]
    try:
        out, _ = net(x)
    finally:
        for h in hooks:
            h.remove()
    term = 0.0
    for name, parts in outs.items():
        s = torch.cat(parts)
        if steps is not None:
            s = s[sorted(steps)]
        term = term + (s * torch.as_tensor(pen._weights[name], dtype=s.dtype)).sum()
    return out, pen.weight * term / (x.shape[1] * pen.total) / x.shape[0]


def _grads(net):
    return [p.grad.clone() for p in net.parameters()]


@pytest.mark.parametrize("on", ["synops", "spikes"])
def test_bptt_backpropagates_the_loss_plus_the_penalty(on):
    net = _conv_net()
    x, y = (torch.rand(T, B, 2, 8, 8) > 0.5).float(), torch.tensor([0, 1, 2])
    pen = ActivityPenalty(net, 0.7, on=on, input_shape=(2, 8, 8))
    loss = get_loss("rate_ce")
    with pen.active():
        got = get_method("bptt").forward_backward(net, x, y, loss)
    mine = _grads(net)
    net.zero_grad()
    out, term = _hand_penalty(net, x, pen)
    task = loss(out, y)
    (task + term).backward()
    assert got.loss == pytest.approx(float(task.detach()))  # the task loss is reported, not the penalty
    assert float(term.detach()) > 0
    for a, b in zip(mine, _grads(net)):
        torch.testing.assert_close(a, b)


def test_sltt_adds_each_steps_share_and_equals_bptt_without_a_temporal_path():
    """β = 0: nothing flows between steps, so SLTT's per-step penalties sum to BPTT's gradient."""
    net = _conv_net(beta=0.0)
    x, y = (torch.rand(T, B, 2, 8, 8) > 0.5).float(), torch.tensor([0, 1, 2])
    pen = ActivityPenalty(net, 0.7, input_shape=(2, 8, 8))
    loss = get_loss("tet")
    grads = {}
    for method in ("bptt", "sltt"):
        net.zero_grad()
        with pen.active():
            get_method(method).forward_backward(net, x, y, loss)
        grads[method] = _grads(net)
    for a, b in zip(grads["bptt"], grads["sltt"]):
        torch.testing.assert_close(a, b)


class _Nothing(Loss):
    """A per-step loss of zero: the gradients are the penalty's alone."""

    per_step = True

    def step(self, o_t, y):
        return 0.0 * o_t.sum()


def test_sltt_k_penalises_only_the_steps_it_backpropagates():
    net = _conv_net(beta=0.0)
    x, y = (torch.rand(T, B, 2, 8, 8) > 0.5).float(), torch.tensor([0, 1, 2])
    pen = ActivityPenalty(net, 0.7, input_shape=(2, 8, 8))
    method = get_method("sltt_k", k=2, generator=torch.Generator().manual_seed(3))
    with pen.active():
        method.forward_backward(net, x, y, _Nothing())
    mine = _grads(net)
    net.zero_grad()
    _, term = _hand_penalty(net, x, pen, steps=method.last_steps)
    term.backward()
    assert len(method.last_steps) == 2
    for a, b in zip(mine, _grads(net)):
        torch.testing.assert_close(a, b)


def test_a_recurrent_layer_counts_its_feedback_synapses():
    torch.manual_seed(1)
    net = Sequential(Linear(6, 5), RLIF(5, beta=0.9, v_th=0.3), Linear(5, 3), LIF())
    pen = ActivityPenalty(net, 1.0, input_shape=(6,))
    np.testing.assert_array_equal(pen._weights["1.lif"], np.full(5, 3.0 + 5.0))  # 3 forward + 5 fed back
    with pen.active():
        net(torch.rand(T, B, 6) * 2)
        assert float(pending_penalty(T)) > 0
        assert pending_penalty(T) == 0.0  # taken: nothing recorded since


@pytest.mark.parametrize("kwargs, words", [
    ({"weight": -1.0}, "weight must be a number >= 0"),
    ({"weight": 1.0, "on": "energy"}, "counts one of synops, spikes"),
    ({"weight": 1.0, "input_shape": None}, "needs the model's per-sample input_shape"),
])
def test_bad_penalties_are_refused_by_name(kwargs, words):
    with pytest.raises(ValueError, match=None) as err:
        ActivityPenalty(_conv_net(), **{"input_shape": (2, 8, 8), **kwargs})
    assert words in str(err.value)
    with pytest.raises(ValueError, match="drive no synapses"):
        ActivityPenalty(Sequential(Linear(4, 2), LIF()), 1.0, input_shape=(4,))


def test_the_config_checks_the_penalty_and_writes_it_only_when_set():
    with pytest.raises(ConfigError, match="activity_penalty"):
        load_config("quickstart", ["train.activity_penalty=-0.1"])
    with pytest.raises(ConfigError, match="activity_penalty_on"):
        load_config("quickstart", ["train.activity_penalty_on=energy"])
    from neurosim.config import dumps_toml

    assert "activity_penalty" not in dumps_toml(load_config("quickstart"))
    assert "activity_penalty = 0.5" in dumps_toml(load_config("quickstart", ["train.activity_penalty=0.5"]))


def test_training_with_the_penalty_makes_fewer_synaptic_operations(event_digits_cache, tmp_path):
    from neurosim.activity import activity_profile
    from neurosim.runs import load_run

    synops, accuracy = {}, {}
    for lam in (0.0, 0.01):
        name = f"pen{lam:g}"
        assert main(["-q", "train", "--config", "quickstart", "--set", f"name={name}", f"out_dir={tmp_path}",
                     "data.train_subset=512", "data.test_subset=64", "data.time_steps=6", "train.epochs=3",
                     f"train.activity_penalty={lam}"]) == 0
        model, cfg, data = load_run(tmp_path / name / "checkpoint.pt", progress=False, test_only=True)
        pen = ActivityPenalty(model, 1.0, input_shape=cfg.model.input_shape)
        act = activity_profile(model, data.test, dt_s=1e-3, kinds=(LIF,))
        synops[lam] = sum(float((np.asarray(act.spike_counts[name]) * pen._weights[name]).sum())
                          for name in pen._weights)
        saved = (tmp_path / name / "config.toml").read_text()
        assert ("activity_penalty" in saved) == (lam > 0)
        rows = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        assert [r["epoch"] for r in rows] == [1, 2, 3]
        accuracy[lam] = rows[-1]["test_acc"]
        # the epoch's measured activity is logged with the penalty on (the fraction of the most synaptic operations)
        assert all(("train_synops_fraction" in r) == (lam > 0) for r in rows)
        if lam > 0:
            assert all(0 < r["train_synops_fraction"] < 1 for r in rows)
    print(synops)
    assert synops[0.01] < 0.7 * synops[0.0]  # (measured: 0.60x, at the same test accuracy)
    assert accuracy[0.01] >= accuracy[0.0] - 0.1


def test_a_penalty_that_silences_the_network_is_warned_about(event_digits_cache, tmp_path):
    with pytest.warns(RuntimeWarning, match="outputs were all zero in every batch of epoch .*may be silencing the network"):
        assert main(["-q", "train", "--config", "quickstart", "--set", "name=dead", f"out_dir={tmp_path}",
                     "data.train_subset=128", "data.test_subset=32", "data.time_steps=4", "train.epochs=3",
                     "train.activity_penalty=1000", "train.activity_penalty_on=spikes"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "dead" / "metrics.jsonl").read_text().splitlines()]
    assert 0 <= rows[-1]["train_firing_rate"] < rows[0]["train_firing_rate"]


def test_a_warm_up_trains_the_first_epoch_without_the_penalty_and_raises_it_after(event_digits_cache, tmp_path):
    """train.activity_penalty_warmup = 2: epoch 1 trains exactly as without a penalty (even a huge one), epoch 2
    with half of it."""
    from neurosim.training import Trainer

    rows = {}
    for name, extra in (("plain", []), ("warm", ["train.activity_penalty=1000", "train.activity_penalty_warmup=2"])):
        assert main(["-q", "train", "--config", "quickstart", "--set", f"name={name}", f"out_dir={tmp_path}",
                     "data.train_subset=128", "data.test_subset=32", "data.time_steps=4", "train.epochs=1",
                     *extra]) == 0
        rows[name] = json.loads((tmp_path / name / "metrics.jsonl").read_text().splitlines()[0])
    for key in ("train_loss", "train_acc", "test_loss", "test_acc"):
        assert rows["warm"][key] == rows["plain"][key]
    scales = []
    real = Trainer._train_epoch

    def spy(self, *args, **kwargs):
        out = real(self, *args, **kwargs)
        scales.append(self.penalty.scale)
        return out

    import unittest.mock as mock

    with mock.patch.object(Trainer, "_train_epoch", spy):
        assert main(["-q", "train", "--config", "quickstart", "--set", "name=ramp", f"out_dir={tmp_path}",
                     "data.train_subset=64", "data.test_subset=32", "data.time_steps=4", "train.epochs=4",
                     "train.activity_penalty=0.01", "train.activity_penalty_warmup=2"]) == 0
    assert scales == [0.0, 0.5, 1.0, 1.0]
    with pytest.raises(ConfigError, match="activity_penalty_warmup"):
        load_config("quickstart", ["train.activity_penalty_warmup=-1"])

"""Read-out losses (neurosim.training.losses): values against hand computation, gradients, the prediction each loss
trains for, and the refusal of whole-sequence losses under SLTT / SLTT-K."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest
import torch

from neurosim.config import LOSSES, ConfigError, RunConfig, TrainConfig, config_from_dict, load_config
from neurosim.functional import no_temporal_grad
from neurosim.nn import LI, RLIF, Linear, Sequential
from neurosim.training import BPTT, TET, get_method
from neurosim.training.losses import LOSS_NAMES, LastCE, MaxCE, RateCE, SLTTMix, get_loss, predict
from neurosim.training.sltt import SLTT, SLTTK

CONFIGS = Path(__file__).resolve().parents[2] / "neurosim" / "configs"


def _outputs():
    """Two samples, T = 3, C = 3, chosen so that the three read-outs disagree on sample 0.

    sample 0: steps [2.5, 0, 0], [0, 1.5, 0.5], [0, 1.5, 1.8]
        sum  = [2.5, 3.0, 2.3] → class 1;  max = [2.5, 1.5, 1.8] → class 0;  last = [0, 1.5, 1.8] → class 2
    sample 1: steps [0, 0, 1], [0, 0, 2], [1, 0, 0]
        sum  = [1, 0, 3] → 2;  max = [1, 0, 2] → 2;  last = [1, 0, 0] → 0
    """
    out = torch.tensor([[[2.5, 0.0, 0.0], [0.0, 0.0, 1.0]],
                        [[0.0, 1.5, 0.5], [0.0, 0.0, 2.0]],
                        [[0.0, 1.5, 1.8], [1.0, 0.0, 0.0]]], dtype=torch.float64)
    return out, torch.tensor([0, 2])


def _ce(logits, label):
    """−log softmax(logits)[label], written out."""
    return -logits[label] + math.log(sum(math.exp(v) for v in logits))


def test_max_ce_is_the_cross_entropy_of_the_maximum_over_time():
    out, y = _outputs()
    # sample 0: max [2.5, 1.5, 1.8], label 0: −2.5 + log(e^2.5 + e^1.5 + e^1.8) ≈ 0.6230
    # sample 1: max [1, 0, 2], label 2: −2 + log(e + 1 + e^2) ≈ 0.4076
    want = (_ce([2.5, 1.5, 1.8], 0) + _ce([1.0, 0.0, 2.0], 2)) / 2
    assert abs(want - (0.6230 + 0.4076) / 2) < 1e-3  # the hand values above
    assert get_loss("max_ce")(out, y).item() == pytest.approx(want, rel=1e-12)


def test_last_ce_is_the_cross_entropy_of_the_last_step():
    out, y = _outputs()
    # sample 0: last [0, 1.5, 1.8], label 0: log(1 + e^1.5 + e^1.8) ≈ 2.4451
    # sample 1: last [1, 0, 0], label 2: −0 + log(e + 2) ≈ 1.5514
    want = (_ce([0.0, 1.5, 1.8], 0) + _ce([1.0, 0.0, 0.0], 2)) / 2
    assert abs(want - (2.4451 + 1.5514) / 2) < 1e-3
    assert get_loss("last_ce")(out, y).item() == pytest.approx(want, rel=1e-12)
    # only the last step counts: changing the others leaves the loss as it was
    other = out.clone()
    other[:-1] = torch.randn(2, 2, 3, dtype=torch.float64)
    assert torch.equal(LastCE()(other, y), LastCE()(out, y))


def test_gradients_reach_the_peak_step_or_the_last_step_only():
    out, y = _outputs()
    out.requires_grad_(True)
    B = out.shape[1]

    (g_max,) = torch.autograd.grad(MaxCE()(out, y), out)
    peak = out.detach().max(0)
    want = torch.zeros_like(out)
    dlogits = (torch.softmax(peak.values, -1) - torch.nn.functional.one_hot(y, 3)) / B  # d CE / d logits, mean
    for b in range(B):
        for c in range(3):
            want[peak.indices[b, c], b, c] = dlogits[b, c]
    torch.testing.assert_close(g_max, want, rtol=1e-12, atol=1e-15)
    assert g_max[0, 0, 0] < 0 < g_max[2, 0, 2]  # sample 0's label at its peak pushed up, class 2's peak down

    (g_last,) = torch.autograd.grad(LastCE()(out, y), out)
    want = torch.zeros_like(out)
    want[-1] = (torch.softmax(out.detach()[-1], -1) - torch.nn.functional.one_hot(y, 3)) / B
    torch.testing.assert_close(g_last, want, rtol=1e-12, atol=1e-15)

    x = torch.randn(5, 3, 4, dtype=torch.float64, requires_grad=True)  # distinct values: no ties at the maximum
    labels = torch.tensor([0, 3, 1])
    assert torch.autograd.gradcheck(lambda o: MaxCE()(o, labels), (x,))
    assert torch.autograd.gradcheck(lambda o: LastCE()(o, labels), (x,))


def test_each_loss_predicts_with_the_read_out_it_trains():
    out, y = _outputs()
    assert predict(out).tolist() == [1, 2]  # no loss: the time-summed read-out
    expected = {"rate_ce": [1, 2], "tet": [1, 2], "sltt_mix": [1, 2], "max_ce": [0, 2], "last_ce": [2, 0]}
    assert set(expected) == set(LOSS_NAMES)
    for name, classes in expected.items():
        loss = get_loss(name)
        assert loss.predict(out).tolist() == classes, name
        assert predict(out, loss).tolist() == classes, name
        assert predict(out, name).tolist() == classes, name
    # a trained read-out gets a low loss exactly where it predicts right
    assert MaxCE()(out, torch.tensor([0, 2])) < MaxCE()(out, torch.tensor([1, 2]))
    assert LastCE()(out, torch.tensor([2, 0])) < LastCE()(out, torch.tensor([1, 2]))


def test_bad_outputs_and_names_are_clear_errors():
    out, y = _outputs()
    for loss in (MaxCE(), LastCE()):
        with pytest.raises(ValueError, match=r"out_seq \[T, B, C\]"):
            loss(out[0], y)
        with pytest.raises(ValueError, match="targets must have shape"):
            loss(out, y[:1])
        with pytest.raises(ValueError, match=r"T >= 1, got shape \(0, 2, 3\)"):
            loss(out[:0], y)
        with pytest.raises(ValueError, match=r"T >= 1, got shape \(2, 3\)"):
            loss.predict(out[0])
    with pytest.raises(ValueError, match=r"T >= 1, got shape \(3,\)"):
        predict(out[0, 0])
    with pytest.raises(ValueError, match=r"unknown loss 'max'.*'max_ce', 'last_ce'"):
        get_loss("max")
    with pytest.raises(ValueError, match="unknown loss 'last'"):
        predict(out, "last")


def test_config_names_match_the_losses():
    assert LOSSES == LOSS_NAMES
    for name in ("max_ce", "last_ce"):
        cfg = config_from_dict({"train": {"loss": name}})
        assert cfg.train.loss == name and type(get_loss(cfg.train.loss)).__name__ in ("MaxCE", "LastCE")
    # the shipped SHD config with the recurrent variant its comments give (neurosim train --config shd --set ...)
    cfg = load_config(CONFIGS / "shd.toml", ["model.recurrent=true", "train.loss=max_ce"])
    assert cfg.model.recurrent and cfg.train.loss == "max_ce" and cfg.model.readout == "membrane"


@pytest.mark.parametrize("method", ["sltt", "sltt_k"])
@pytest.mark.parametrize("loss", ["max_ce", "last_ce", "rate_ce"])
def test_sltt_refuses_whole_sequence_losses_before_training(method, loss):
    with pytest.raises(ConfigError) as err:
        config_from_dict({"train": {"method": method, "loss": loss}})
    text = str(err.value)
    assert text.startswith("train.loss:") and f"which {loss!r} is not" in text
    assert "set train.loss = 'tet' or 'sltt_mix'" in text and "train.method = 'bptt'" in text
    with pytest.raises(ConfigError, match="train.loss"):
        RunConfig(train=TrainConfig(method=method, loss=loss))
    # the per-step losses are fine, and so are the new ones under BPTT
    TrainConfig(method=method, loss="tet")
    TrainConfig(method="bptt", loss=loss)


def _rnet():
    torch.manual_seed(0)
    net = Sequential(Linear(3, 8), RLIF(8, beta=0.5, surrogate="triangle"), Linear(8, 4), LI(0.5)).double()
    with torch.no_grad():
        net[0].weight.mul_(4)
        net[1].recurrent.weight.mul_(4)
    return net


def test_sltt_methods_refuse_the_losses_that_do_not_decompose_over_steps():
    x = torch.rand(6, 5, 3, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3, 0])
    for method in (SLTT(), SLTTK(k=2)):
        for loss in (MaxCE(), LastCE(), RateCE()):
            with pytest.raises(ValueError, match="does not decompose over steps.*'tet' or 'sltt_mix'"):
                method.forward_backward(_rnet(), x, y, loss)
    assert not MaxCE().per_step and not LastCE().per_step and TET().per_step and SLTTMix().per_step


def test_last_ce_learns_from_early_steps_only_through_the_temporal_path():
    """Why SLTT refuses last_ce: with the temporal gradient cut, the early inputs get none of its gradient."""
    net = _rnet()
    x = torch.rand(6, 5, 3, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3, 0])
    out, _ = net(x)
    assert 0 < float((out != 0).double().mean())
    (g_bptt,) = torch.autograd.grad(LastCE()(out, y), x)
    assert g_bptt[:-1].abs().sum() > 0  # BPTT: the early steps' inputs matter to the last step's output
    with no_temporal_grad():
        out_cut, _ = net(x)
        (g_cut,) = torch.autograd.grad(LastCE()(out_cut, y), x)
    assert torch.equal(g_cut[:-1], torch.zeros_like(g_cut[:-1])) and g_cut[-1].abs().sum() > 0
    # and BPTT trains with both new losses: a step's loss equals the loss of its outputs, and gradients reach W_rec
    for loss in (MaxCE(), LastCE()):
        net.zero_grad(set_to_none=True)
        step = get_method("bptt").forward_backward(net, x.detach(), y, loss)
        assert isinstance(get_method("bptt"), BPTT)
        with torch.no_grad():
            assert step.loss == pytest.approx(float(loss(net(x)[0], y)), rel=1e-12)
        assert net[1].recurrent.weight.grad.abs().sum() > 0


class _Replay(torch.nn.Module):
    """A 'model' whose outputs are its inputs: ``[T, B, C]`` in, the same out (one unused parameter to optimise)."""

    stateful = True

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x_seq, state=None):
        return x_seq + 0 * self.w, state


def _early_and_late(n=8):
    """Outputs whose time sum favours class 0 (4 against 3 and 2), their maximum over time class 1 (3 at step 1) and
    the last step class 2; labels 2."""
    x = torch.zeros(5, n, 3)
    x[:4, :, 0] = 1.0
    x[1, :, 1] = 3.0
    x[4, :, 2] = 2.0
    return x, torch.full((n,), 2)


@pytest.mark.parametrize("loss, acc", [("rate_ce", 0.0), ("max_ce", 0.0), ("last_ce", 1.0)])
def test_trainer_scores_with_the_read_out_its_loss_trains(tmp_path, loss, acc):
    from neurosim.training import Trainer

    x, y = _early_and_late()
    trainer = Trainer(_Replay(), RunConfig(train=TrainConfig(loss=loss, epochs=1)), tmp_path, progress=False)
    assert trainer.evaluate([(x, y)])["acc"] == acc
    history = trainer.fit([(x, y)], [(x, y)])
    assert history[-1]["train_acc"] == acc and history[-1]["test_acc"] == acc


def test_rram_chip_accuracy_takes_the_run_loss_read_out():
    from neurosim.hardware.nonideal import accuracy

    x, y = _early_and_late()
    assert accuracy(_Replay(), [(x, y)]) == 0.0
    assert accuracy(_Replay(), [(x, y)], loss="last_ce") == 100.0


def test_continual_training_offers_only_the_time_summed_read_outs():
    from neurosim.continual.config import ContinualTrainConfig

    for loss in ("max_ce", "last_ce"):
        with pytest.raises(ConfigError, match="loss"):
            ContinualTrainConfig(loss=loss)
    with pytest.raises(ConfigError, match="needs a per-step loss .* got 'rate_ce'"):
        ContinualTrainConfig(method="sltt", loss="rate_ce")


def test_continual_refuses_the_sequence_read_outs_saying_why():
    from neurosim.continual.config import ContinualTrainConfig

    with pytest.raises(ConfigError, match="'last_ce' is for neurosim train: continual tasks are scored by the "
                                          "time-summed output"):
        ContinualTrainConfig(loss="last_ce")


def test_max_ce_on_spiking_outputs_warns_before_training(tmp_path):
    from neurosim.runs import _check_before_loading

    for loss in ("max_ce", "last_ce"):
        cfg = config_from_dict({"out_dir": str(tmp_path), "train": {"loss": loss}})
        with pytest.warns(UserWarning, match=f"{loss} on spiking outputs.*model.readout=membrane"):
            _check_before_loading(cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _check_before_loading(config_from_dict({"out_dir": str(tmp_path), "train": {"loss": "max_ce"},
                                                "model": {"readout": "membrane"}}))

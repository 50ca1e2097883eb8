"""``train.activity_penalty`` in continual training: the same penalty as ``neurosim train`` adds, in every method's
gradient (projected by HLOP like the task loss's), its activity recorded per task, and the run's files."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from neurosim.cli import main
from neurosim.config import ConfigError, dumps_toml
from neurosim.continual import HLOP, continual_config_from_dict, load_continual_config, permuted_tasks, run_method
from neurosim.continual import train as continual_train
from neurosim.continual.runner import _fingerprints
from neurosim.nn import LIF
from neurosim.training import get_loss, get_method

# the tiny setups here learn little or nothing, which run_method warns of ("did not learn", RuntimeWarning; its own
# tests are in test_continual_protocol.py): dozens of such warnings would bury the test output
pytestmark = pytest.mark.filterwarnings("ignore:.*did not learn:RuntimeWarning")

T = 4


def _tasks(n_train=48, num_tasks=2):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n_train, T, 64, generator=g)  # [N, T, 8×8 pixel currents]
    y = torch.arange(n_train) % 10
    return permuted_tasks(x, y, x[:20], y[:20], num_tasks=num_tasks, seed=3)


def test_the_config_takes_the_penalty_checks_it_and_writes_it_only_when_set():
    cfg = load_continual_config("continual_pmnist_digits", ["train.activity_penalty=0.3",
                                                            "train.activity_penalty_on=spikes"])
    assert (cfg.train.activity_penalty, cfg.train.activity_penalty_on) == (0.3, "spikes")
    assert "activity_penalty = 0.3" in dumps_toml(cfg)
    plain = load_continual_config("continual_pmnist_digits")
    assert "activity_penalty" not in dumps_toml(plain)
    # results finished before the key existed (same settings, no penalty) are still this config's
    assert _fingerprints(plain) == _fingerprints(load_continual_config("continual_pmnist_digits",
                                                                       ["train.activity_penalty=0"]))
    assert _fingerprints(cfg)[0] != _fingerprints(plain)[0]
    with pytest.raises(ConfigError, match=r"train\.activity_penalty: must be a finite number >= 0"):
        load_continual_config("continual_pmnist_digits", ["train.activity_penalty=-1"])
    with pytest.raises(ConfigError, match=r"train\.activity_penalty_on: must be one of \['synops', 'spikes'\]"):
        load_continual_config("continual_pmnist_digits", ["train.activity_penalty_on=energy"])
    # neurosim train's warm-up is not silently dropped
    with pytest.raises(ConfigError, match=r"train\.activity_penalty_warmup: not taken by neurosim continual"):
        load_continual_config("continual_pmnist_digits", ["train.activity_penalty=0.3",
                                                          "train.activity_penalty_warmup=1"])


def test_a_training_step_descends_the_task_loss_plus_the_penalty():
    """64-8-10 MLP: the hidden layer's 8 neurons drive 10 synapses each, so the synops fraction per step and sample
    is the hidden layer's mean firing rate, and the penalty λ times it."""
    lam, lr = 0.5, 0.1
    cfg = continual_config_from_dict({
        "model": {"hidden": [8]}, "train": {"epochs": 1, "batch_size": 64, "lr": lr, "activity_penalty": lam}})
    (task,) = _tasks(num_tasks=1)  # 48 samples: one batch
    torch.manual_seed(0)
    model = continual_train.build_continual_model(cfg, [task])
    before = copy.deepcopy(model)
    penalty = continual_train.activity_penalty(cfg, model)
    activity = continual_train._train(model, task, cfg, get_loss("rate_ce"), 0, False, "cpu", penalty=penalty)

    # by hand: rate_ce + λ · mean hidden spike, one SGD step
    hidden = []
    lif = next(m for m in before.modules() if isinstance(m, LIF))
    handle = lif.register_forward_hook(lambda m, a, out: hidden.append(out[0]))
    out_seq, _ = before(task.x_train.transpose(0, 1))  # [T, B, 10]
    handle.remove()
    (spikes,) = hidden  # [T, B, 8]
    (get_loss("rate_ce")(out_seq, task.y_train) + lam * spikes.mean()).backward()
    rate = float(spikes.detach().mean())
    assert 0 < rate < 1
    assert activity == pytest.approx(rate, rel=1e-5)  # the activity recorded is what was penalised
    for (name, p), q in zip(model.named_parameters(), before.parameters()):
        torch.testing.assert_close(p.detach(), (q - lr * q.grad).detach(), msg=name)
    # and the penalty did change the step: without it the weights land elsewhere
    plain = copy.deepcopy(before)
    plain.zero_grad()
    assert continual_train._train(plain, task, cfg, get_loss("rate_ce"), 0, False, "cpu") is None
    assert not torch.allclose(next(plain.parameters()), next(model.parameters()))


def test_hlop_projects_the_penalty_gradient_out_of_the_old_subspace():
    torch.manual_seed(0)
    cfg = continual_config_from_dict({"model": {"hidden": [16, 16]}, "train": {"activity_penalty": 1.0}})
    task0, task1 = _tasks(n_train=64)
    model = continual_train.build_continual_model(cfg, [task0])
    hlop = HLOP(model, lr=0.05, orthonormalize=True)  # an exact basis: the projection leaves nothing inside it
    hlop.begin_task([8, 8, 8])
    with hlop.hebbian_only(), torch.no_grad():
        for _ in range(20):
            model(task0.x_train.transpose(0, 1))
            hlop.step()
    hlop.end_task()
    hlop.begin_task([0, 0, 0])

    class NoTaskLoss:  # the gradient is then the penalty's alone
        per_step = False

        def __call__(self, out_seq, y):
            return 0.0 * out_seq.sum()

    penalty = continual_train.activity_penalty(cfg, model)
    model.zero_grad()
    with penalty.active():
        get_method("bptt").forward_backward(model, task1.x_train.transpose(0, 1), task1.y_train, NoTaskLoss())
    hlop.remove()
    penalised = 0
    for name, layer in hlop.layers:
        g, basis = layer.weight.grad, hlop.subspaces[name].frozen
        if g.norm() == 0:
            continue  # the output layer drives no synapses: no penalty gradient
        penalised += 1
        q = torch.linalg.qr(basis.T).Q  # [in, k] orthonormal basis of the old subspace
        assert float((g @ q).norm() / g.norm()) < 1e-4, name
    assert penalised == 2  # both hidden layers' inputs (the input layer and the first hidden layer) moved


def test_every_method_records_each_tasks_activity_and_a_larger_penalty_lowers_it():
    tasks = _tasks(n_train=200, num_tasks=2)
    activity = {}
    for lam in (1e-9, 0.5):  # a vanishing penalty only measures
        cfg = continual_config_from_dict({
            "model": {"hidden": [32, 32]}, "hlop": {"sizes": [[4, 4, 4]], "hebbian_epochs": 1},
            "train": {"epochs": 2, "activity_penalty": lam}, "ewc": {"fisher_samples": 10}})
        for method in ("baseline", "ewc", "hlop", "multitask"):
            r = run_method(cfg, method, tasks, seed=0)
            assert len(r.activity) == (1 if method == "multitask" else 2)
            assert all(0 <= a < 1 for a in r.activity) and r.as_dict()["activity"] == r.activity
            activity[lam, method] = sum(r.activity) / len(r.activity)
    for method in ("baseline", "ewc", "hlop", "multitask"):
        assert activity[0.5, method] < 0.5 * activity[1e-9, method], method  # (measured: 0.15-0.35x)
    no_penalty = run_method(continual_config_from_dict({"model": {"hidden": [8]}, "train": {"epochs": 1}}),
                            "baseline", tasks)
    assert no_penalty.activity is None and "activity" not in no_penalty.as_dict()


SMALL = ["seeds=[0]", "tasks.num_tasks=2", "tasks.train_subset=150", "tasks.test_subset=60", "model.hidden=[32]",
         "hlop.sizes=[[8, 8]]", "hlop.hebbian_epochs=1", "train.epochs=1", "ewc.fisher_samples=20"]


def test_the_run_folder_reports_the_activity_and_a_rerun_keeps_it(tmp_path):
    args = ["-q", "continual", "--config", "continual_pmnist_digits", "--methods", "baseline", "multitask",
            "--set", *SMALL, f'out_dir="{tmp_path}"', "name=pen", "train.activity_penalty=0.5"]
    assert main(args) == 0
    run = tmp_path / "pen"
    results = json.loads((run / "results.json").read_text())
    assert len(results["runs"]["baseline"][0]["activity"]) == 2 and len(results["runs"]["multitask"][0]["activity"]) == 1
    first = results["summary"]
    assert 0 < first["baseline"]["activity_mean"] < 1 and first["baseline"]["activity_std"] is None
    report = (run / "report.md").read_text()
    assert "activity penalty (every method): λ = 0.5 on the hidden layers' synaptic operations" in report
    assert "| training activity |" in report
    assert "activity_penalty = 0.5" in (run / "config.toml").read_text()
    assert main(args) == 0  # everything reused from finished/: the activity with it
    assert json.loads((run / "results.json").read_text())["summary"] == first


def test_a_model_the_penalty_cannot_count_is_refused_before_training(tmp_path, capsys):
    args = ["continual", "--config", "continual_pmnist_digits", "--set", *SMALL, f'out_dir="{tmp_path}"',
            "model.hidden=[]", "hlop.sizes=[[8]]", "train.activity_penalty=0.5"]
    assert main(args) == 2
    assert "train.activity_penalty: the model's spiking layers drive no synapses" in capsys.readouterr().err
    assert not (tmp_path / "continual_pmnist_digits" / "finished").exists()

"""Early exit: running read-outs, cohort activity (one pass) against truncated runs, and the policies' accuracy and
costs against runs of the model on each cohort's samples and steps alone."""

import itertools
import json
import math
import re

import numpy as np
import pytest
import torch
from small_nets import conv_net, record_estimates, recurrent_net

from neurosim.activity import activity_profile, cohort_profiles
from neurosim.cli import main
from neurosim.estimation import ForeignFilesError, estimate_model, write_outputs
from neurosim.estimation.early_exit import early_exit, exit_confidence
from neurosim.nn import LIF, MaxPool2d
from neurosim.training.losses import LOSS_NAMES, predict, running_scores

T, B = 6, 9


def _conv_net():
    return conv_net(T, B)


def _recurrent_net():
    return recurrent_net(T, B)


def _same(a, b):
    assert a.time_steps == b.time_steps and a.samples == b.samples
    np.testing.assert_array_equal(a.input_events_per_step, b.input_events_per_step)
    for field in ("spikes_per_step", "spike_counts", "updates_per_step"):
        da, db = getattr(a, field), getattr(b, field)
        assert set(da) == set(db), field
        for k in da:
            np.testing.assert_array_equal(da[k], db[k], err_msg=f"{field}[{k}]")


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_each_read_out_after_the_last_step_predicts_as_the_loss(name):
    torch.manual_seed(0)
    out = (torch.rand(5, 7, 4) > 0.5).float()
    scores = running_scores(out, name)
    assert scores.shape == out.shape
    assert torch.equal(scores[-1].argmax(-1), predict(out, name))
    for t in range(1, 6):  # a run stopped after t steps reads as the loss reads its first t steps
        assert torch.equal(scores[t - 1].argmax(-1), predict(out[:t], name))


@pytest.mark.parametrize("build", [_conv_net, _recurrent_net])
def test_cohort_profiles_equal_the_profiles_of_each_cohorts_samples_run_for_its_steps(build):
    net, x, _ = build()
    kinds = (LIF, MaxPool2d)
    cohorts = [(T, torch.arange(B)), (2, [0, 3, 4]), (5, torch.tensor([True, False] * 4 + [True])), (1, [8]),
               (4, [2, 2, 7]), (3, [])]  # (a sample named twice counts twice, as in x[:, [2, 2, 7]])
    got = cohort_profiles(net, [(x[:, :4], None), (x[:, 4:], None)], cohorts, dt_s=1e-3, kinds=kinds, batch_size=3)
    assert got[-1] is None  # no members
    for (steps, members), prof in zip(cohorts[:-1], got[:-1]):
        idx = torch.as_tensor(members)
        idx = idx.nonzero().flatten() if idx.dtype == torch.bool else idx
        _same(prof, activity_profile(net, x[:steps, idx], dt_s=1e-3, kinds=kinds))


@pytest.mark.parametrize("cohort, words", [
    ((0, [1]), "steps must be a whole number >= 1"),
    ((True, [1]), "steps must be a whole number >= 1"),
    ((T + 1, [1]), f"inputs have T = {T}"),
    ((2, [B]), f"names sample {B} but the data holds {B}"),
    ((2, [-1]), "negative"),
    ((2, torch.tensor([0.5])), "sample indices or a boolean mask"),
    ((2,), "a pair (steps, members)"),
])
def test_cohort_profiles_refuse_bad_cohorts_by_name(cohort, words):
    net, x, _ = _conv_net()
    with pytest.raises(ValueError, match=None) as err:
        cohort_profiles(net, x, [cohort], dt_s=1e-3)
    assert words in str(err.value)


def _manual_exits(net, x, y, c, metric):
    """SEENN-I's loop, sample by sample: run t steps, exit once sure > c (or at T); the model's own prediction."""
    steps, hits = [], []
    for b in range(x.shape[1]):
        for t in range(1, T + 1):
            out, _ = net(x[:t, b:b + 1])
            summed = out.sum(0)
            p = torch.softmax(summed.double(), -1)
            sure = p.max() if metric == "confidence" else 1 + (p * p.log()).nan_to_num().sum() / math.log(p.numel())
            if sure > c or t == T:
                steps.append(t)
                hits.append(int(predict(out).item() == y[b]))
                break
    return steps, hits


@pytest.mark.parametrize("metric", ["confidence", "entropy"])
def test_early_exit_policies_match_runs_stopped_by_hand_and_their_estimates(metric):
    net, x, shape = _conv_net()
    y = torch.arange(B) % 5
    data = [(x[:, :5], y[:5]), (x[:, 5:], y[5:])]
    targets = ["loihi", "truenorth", "rram_neurosim"]
    rep = early_exit(net, shape, data, targets, thresholds=[0.3, 0.6], metric=metric)
    by = {p.name: p for p in rep.policies}
    net.eval()
    for t in range(1, T + 1):  # fixed steps: the model run for t steps, and the estimate of that run
        p = by[f"{t} step{'s' * (t > 1)}" + (" (all)" if t == T else "")]
        out, _ = net(x[:t])
        assert p.accuracy == pytest.approx(100.0 * float((predict(out) == y).double().mean()))
        assert p.mean_steps == t and p.exits[t - 1] == B
        e = estimate_model(net, shape, x[:t], targets)
        for name in targets:
            assert p.energy_j[name] == pytest.approx(e.estimates[name].total_energy_j, rel=1e-12)
            assert p.latency_s[name] == pytest.approx(e.estimates[name].latency_per_inference_s, rel=1e-12)
    for c in (0.3, 0.6):
        p = by[f"{metric} > {c:g}"]
        steps, hits = _manual_exits(net, x, y, c, metric)
        assert p.mean_steps == pytest.approx(np.mean(steps))
        assert p.accuracy == pytest.approx(100.0 * np.mean(hits))
        assert p.exits == np.bincount(np.array(steps) - 1, minlength=T).tolist()
        for name in targets:  # the mean over samples of each sample's own stopped run
            per = []
            for e_steps in sorted(set(steps)):
                who = [b for b, s in enumerate(steps) if s == e_steps]
                est = estimate_model(net, shape, x[:e_steps, who], [name]).estimates[name]
                per += [(len(who), est.total_energy_j, est.latency_per_inference_s)]
            assert p.energy_j[name] == pytest.approx(sum(n * j for n, j, _ in per) / B, rel=1e-12)
            assert p.latency_s[name] == pytest.approx(sum(n * s for n, _, s in per) / B, rel=1e-12)
            assert p.latency_max_s[name] == pytest.approx(per[-1][2], rel=1e-12)  # those that stop last


def test_per_sample_latency_tails_are_each_samples_own_stopped_run_estimated_alone():
    net, x, shape = _conv_net()
    y = torch.arange(B) % 5
    data = [(x[:, :5], y[:5]), (x[:, 5:], y[5:])]
    targets = ["loihi", "rram_neurosim"]
    rep = early_exit(net, shape, data, targets, thresholds=[0.3, 0.6], per_sample=True, samples=8)
    plain = early_exit(net, shape, data, targets, thresholds=[0.3, 0.6], samples=8)
    for p, q in zip(rep.policies, plain.policies):  # the other figures do not change
        assert (p.accuracy, p.exits, p.energy_j, p.latency_s) == (q.accuracy, q.exits, q.energy_j, q.latency_s)
    by = {p.name: p for p in rep.policies}
    assert not by["2 steps"].latency_tail_s  # fixed steps short of T: not estimated per sample
    for name, steps in [(f"{T} steps (all)", [T] * 8), *[(f"confidence > {c:g}", _manual_exits(net, x, y, c,
                                                          "confidence")[0][:8]) for c in (0.3, 0.6)]]:
        p = by[name]
        for target in targets:
            alone = np.array([estimate_model(net, shape, x[:s, [i]], [target]).estimates[target]
                              .latency_per_inference_s for i, s in enumerate(steps)])
            tail = p.latency_tail_s[target]
            assert tail["mean"] == pytest.approx(alone.mean(), rel=1e-9)
            assert tail["max"] == pytest.approx(alone.max(), rel=1e-9)
            assert tail["p99"] == pytest.approx(np.percentile(alone, 99), rel=1e-9)
    assert "each sample estimated alone" in rep.table()
    assert "latency_s_per_sample" in rep.to_dict()["policies"][-1]


def test_thresholds_zero_and_one_are_the_first_and_the_last_step():
    net, x, shape = _conv_net()
    y = torch.zeros(B, dtype=torch.long)
    rep = early_exit(net, shape, [(x, y)], ["loihi"], thresholds=[0, 1])
    by = {p.name: p for p in rep.policies}
    assert [p.name for p in rep.policies if p.kind == "steps"][:2] == ["1 step", "2 steps"]  # (was "1 steps")
    for c, fixed in (("0", "1 step"), ("1", f"{T} steps (all)")):
        p, q = by[f"confidence > {c}"], by[fixed]
        assert (p.accuracy, p.mean_steps, p.exits) == (q.accuracy, q.mean_steps, q.exits)
        assert p.energy_j["loihi"] == pytest.approx(q.energy_j["loihi"], rel=1e-12)
    assert rep.full is by[f"{T} steps (all)"]


def test_exit_confidence_is_a_probability_and_entropy_is_one_minus_its_normalised_value():
    scores = torch.tensor([[[0.0, 0.0, 0.0], [10.0, 0.0, 0.0]]])
    conf = exit_confidence(scores, "confidence")
    ent = exit_confidence(scores, "entropy")
    assert conf[0, 0] == pytest.approx(1 / 3) and ent[0, 0] == pytest.approx(0.0, abs=1e-12)
    assert conf[0, 1] > 0.99 and 0.99 < ent[0, 1] <= 1
    with pytest.raises(ValueError, match="exit metric must be one of confidence, entropy"):
        exit_confidence(scores, "margin")


@pytest.mark.parametrize("kwargs, words", [
    ({"thresholds": [1.5]}, "thresholds must be numbers in [0, 1]"),
    ({"thresholds": 0.9}, "thresholds must be a list"),
    ({"metric": "margin"}, "exit metric must be one of"),
    ({"samples": 0}, "samples must be a whole number >= 1"),
])
def test_early_exit_refuses_bad_options_by_name(kwargs, words):
    net, x, shape = _conv_net()
    with pytest.raises(ValueError) as err:
        early_exit(net, shape, [(x, torch.zeros(B, dtype=torch.long))], ["loihi"], **kwargs)
    assert words in str(err.value)


def test_early_exit_refuses_a_shuffling_loader_and_unlabelled_data():
    net, x, shape = _conv_net()
    ds = torch.utils.data.TensorDataset(x.transpose(0, 1), torch.zeros(B, dtype=torch.long))
    with pytest.raises(ValueError, match="same samples in the same order"):
        early_exit(net, shape, torch.utils.data.DataLoader(ds, batch_size=4, shuffle=True), ["loihi"])
    with pytest.raises(ValueError, match="needs labelled data"):
        early_exit(net, shape, [(x, None)], ["loihi"])


def test_early_exit_on_the_first_samples_reads_no_further():
    net, x, shape = _conv_net()
    y = torch.arange(B) % 5
    a = early_exit(net, shape, [(x, y)], ["loihi"], samples=4)
    b = early_exit(net, shape, [(x[:, :4], y[:4])], ["loihi"])
    assert a.samples == 4 and a.to_dict() == b.to_dict()


def test_cli_early_exit_writes_its_files_and_a_new_estimate_removes_them(tiny_checkpoint, capsys):
    assert main(["-q", "estimate", "--checkpoint", str(tiny_checkpoint), "--target", "loihi", "--samples", "8",
                 "--early-exit", "--exit-thresholds", "0.6,0.9", "--exit-metric", "entropy",
                 "--early-exit-samples", "12"]) == 0
    out = capsys.readouterr().out
    assert "early exit: 12 samples" in out and "entropy > 0.9" in out
    folder = tiny_checkpoint.parent / "estimate"
    data = json.loads((folder / "early_exit.json").read_text())
    assert data["samples"] == 12 and data["metric"] == "entropy" and data["targets"] == ["loihi"]
    assert [p["name"] for p in data["policies"]][-2:] == ["entropy > 0.6", "entropy > 0.9"]
    assert all(sum(p["exits_per_step"]) == 12 for p in data["policies"])
    assert (folder / "early_exit.png").stat().st_size > 0
    # an estimate without --early-exit in the same folder: the earlier run's early-exit files go with its estimate
    assert main(["-q", "estimate", "--checkpoint", str(tiny_checkpoint), "--target", "loihi", "--samples", "8"]) == 0
    assert not any(folder.glob("early_exit*")) and (folder / "estimate.json").is_file()


@pytest.mark.parametrize("argv, words", [
    (["--exit-metric", "entropy"], "--exit-metric applies only with --early-exit"),
    (["--early-exit", "--exit-thresholds", "0.5,1.5"], "--exit-thresholds must lie in [0, 1]"),
    (["--early-exit", "--early-exit-samples", "0"], "--early-exit-samples must be at least 1"),
])
def test_cli_early_exit_options_are_checked_before_any_work(argv, words, capsys):
    assert main(["estimate", "--checkpoint", "c.pt", *argv]) == 2
    assert words in capsys.readouterr().err


def test_cli_early_exit_needs_a_checkpoint(capsys):
    assert main(["estimate", "--nir", "x.nir", "--activity", "a.json", "--early-exit"]) == 2
    assert "--early-exit needs --checkpoint" in capsys.readouterr().err


def test_a_folder_without_an_estimate_keeps_files_named_like_extra_outputs(tmp_path):
    net, x, shape = _conv_net()
    report = estimate_model(net, shape, x, ["loihi"])
    mine = tmp_path / "nonideal_mine.json"
    mine.write_text("{}")
    # named as --nonideal's output, it would be taken for the estimate's beside its estimate.json: refused, as
    # neurosim estimate --out refuses it, unless overwrite
    with pytest.raises(ForeignFilesError, match="holds nonideal_mine.json, which neurosim estimate did not write"):
        write_outputs(report, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["nonideal_mine.json"]
    write_outputs(report, tmp_path, overwrite=True)
    assert mine.read_text() == "{}"  # no estimate.json was there: not an earlier estimate's file
    write_outputs(report, tmp_path)
    assert not mine.exists()  # beside an earlier estimate.json: its --nonideal output, removed with it


def test_an_estimate_goes_into_a_folder_where_neurosims_studies_wrote_first(tmp_path):
    """early_exit_checkpoint's default folder is the estimate's (<run>/estimate): a study run there before any
    estimate left its files, which the estimate refused as 'not written by neurosim' (ForeignFilesError, and
    neurosim estimate --checkpoint likewise) though the studies had written them. They are neurosim's and stay;
    a file of those names the studies did not write is still refused."""
    from neurosim.estimation.per_sample import per_sample

    net, x, shape = _conv_net()
    y = torch.zeros(x.shape[1], dtype=torch.long)
    out = tmp_path / "estimate"
    early_exit(net, shape, [(x, y)], ["loihi"], out_dir=out)
    per_sample(net, shape, [(x, y)], ["loihi"], out_dir=out)
    fixed = {"target": "loihi", "arithmetic": "loihi", "float_acc": 50.0, "chip_acc": 50.0, "layers": {}}
    (out / "fixed_point_loihi.json").write_text(json.dumps(fixed))  # (as fixed_point_reports writes it)
    studies = {p.name: p.read_bytes() for p in out.iterdir()}
    assert len(studies) == 7
    report = estimate_model(net, shape, x, ["loihi"], out_dir=out)
    assert report.files["estimate.json"].is_file()
    assert all((out / name).read_bytes() == data for name, data in studies.items())  # kept as they were
    cli = tmp_path / "cli"  # neurosim estimate --out into a folder where only the studies wrote
    cli.mkdir()
    for name, data in studies.items():
        (cli / name).write_bytes(data)
    assert main(["-q", "estimate", "--nir", str(out / "model.nir"), "--activity", str(out / "activity.json"),
                 "--target", "loihi", "--out", str(cli)]) == 0
    assert (cli / "estimate.json").is_file() and (cli / "early_exit.json").read_bytes() == studies["early_exit.json"]
    # a file of those names that no study wrote: refused as before
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "early_exit.txt").write_text("my notes")
    (mine / "fixed_point_spinnaker.json").write_text("{}")
    with pytest.raises(ForeignFilesError, match="holds early_exit.txt, fixed_point_spinnaker.json, which neurosim"):
        estimate_model(net, shape, x, ["loihi"], out_dir=mine)


def test_early_exit_refuses_data_whose_second_pass_brings_other_samples():
    net, x, shape = _conv_net()

    class Reshuffled:  # a loader that draws a new order each time it is iterated
        def __init__(self):
            self.calls = 0

        def __iter__(self):
            self.calls += 1
            order = torch.arange(B) if self.calls == 1 else torch.arange(B).flip(0)
            yield x[:, order], order

    with pytest.raises(ValueError, match="second pass brought other samples"):
        early_exit(net, shape, Reshuffled(), ["loihi"])


def test_the_run_report_has_a_section_on_stopping_early(tiny_checkpoint):
    from types import SimpleNamespace

    from neurosim.estimation.early_exit import early_exit_checkpoint
    from neurosim.runs import _early_exit_section, load_run
    from neurosim.training.losses import get_loss

    model, cfg, data = load_run(tiny_checkpoint, progress=False, device="cpu", test_only=True)
    run_dir = tiny_checkpoint.parent
    result = SimpleNamespace(model=model, data=data, run_dir=run_dir,
                             trainer=SimpleNamespace(config=cfg, loss=get_loss(cfg.train.loss)))
    text = "\n".join(_early_exit_section(result))
    assert text.startswith("## Stopping early") and "![early exit](estimate/early_exit.png)" in text
    saved = json.loads((run_dir / "estimate" / "early_exit.json").read_text())
    assert saved["targets"] == ["loihi", "truenorth", "rram_neurosim"] and saved["samples"] == len(data.test.labels)
    # the same figures as the command's, which reads the checkpoint and its test split itself
    again = early_exit_checkpoint(tiny_checkpoint, ["loihi", "truenorth", "rram_neurosim"], out_dir=run_dir / "again")
    assert again.table() in text
    assert _early_exit_section(result, targets=["speck"]) == []  # none of its targets asked for


def test_every_cohort_is_costed_on_the_placement_of_the_full_run(monkeypatch):
    # a chip is placed once: every cohort (each exit step's samples) and each sample's own stopped run are estimated
    # with placed_for = every sample's run over all T steps (the activity a placement tie is broken at); other kinds
    # of target take no such option
    recorded = record_estimates(monkeypatch)
    net, x, shape = _conv_net()
    y = torch.arange(B) % 5
    early_exit(net, shape, [(x, y)], ["loihi", "rram_neurosim"], thresholds=[0.5], per_sample=True)
    calls = [(name, activity, options.get("placed_for")) for name, activity, options in recorded]
    loihi = [c for c in calls if c[0] == "loihi"]
    full = [a for _, a, _ in loihi if a.time_steps == T and a.samples == B]
    assert len(full) == 1 and len(loihi) > B + T
    assert all(placed is full[0] for _, _, placed in loihi)
    assert all(placed is None for name, _, placed in calls if name == "rram_neurosim")


@pytest.mark.parametrize("build", [_conv_net, _recurrent_net])
def test_step_profiles_are_the_cohort_profiles_of_every_sample_over_its_first_steps(build):
    # early exit measured "t steps, every sample" as T cohorts, one weighted total per neuron and cohort (971 MB and
    # 37 s at T = 400); the run's per-step totals cut to t steps are the same profiles, whole numbers exactly
    from neurosim.activity import step_profiles

    net, x, _ = build()
    kinds = (LIF, MaxPool2d)
    data = [(x[:, :4], None), (x[:, 4:], None)]
    others = [(2, [0, 3, 4]), (5, torch.tensor([True, False] * 4 + [True])), (3, [])]
    got = step_profiles(net, data, others, dt_s=1e-3, kinds=kinds, batch_size=3)
    want = cohort_profiles(net, data, [(t, torch.arange(B)) for t in range(1, T + 1)] + others, dt_s=1e-3,
                           kinds=kinds, batch_size=3)
    assert got.time_steps == T and got.samples == B
    for t in range(1, T + 1):
        _same(got.first(t), want[t - 1])
        assert list(got.first(t).spike_counts) == list(want[t - 1].spike_counts)  # (the nodes in the same order)
    for prof, ref in zip(got.cohorts[:-1], want[T:-1]):
        _same(prof, ref)
    assert got.cohorts[-1] is None and len(got.cohorts) == len(others)
    _same(got.first(T), activity_profile(net, x, dt_s=1e-3, kinds=kinds))
    _same(step_profiles(net, x, dt_s=1e-3, kinds=kinds).first(4), want[3])  # no other cohorts
    for bad in (0, T + 1, 2.0, True):
        with pytest.raises(ValueError, match=rf"steps must be a whole number in \[1, {T}\], got {bad!r}"):
            got.first(bad)


def _cohort_reference(net, shape, data, targets, thresholds, metric):
    """Each policy's energy and latencies as early_exit costed them before: every cohort, the "t steps" ones too,
    measured by cohort_profiles and estimated on the full run's placement; and how many cohorts are not every
    sample."""
    from hardware_models import analyze, estimate, load_spec

    from neurosim.estimation import _counts_in_input_shape, _graph_and_activity, placed_for
    from neurosim.estimation.early_exit import _outputs, exit_confidence

    graph, names, inp, _ = _graph_and_activity(net, shape, data, dt_s=1e-3, samples=None, maxpool="sumpool",
                                               measure=False)
    out, _ = _outputs(net, data, None)
    S = out.shape[1]
    sure = exit_confidence(running_scores(out, None), metric)
    cohorts, policies = [], {}
    for t in range(1, T + 1):
        policies[t] = [(len(cohorts), S)]
        cohorts.append((t, torch.arange(S)))
    for c in thresholds:
        over = sure > c
        first = torch.where(over.any(0), over.double().argmax(0), torch.full((S,), T - 1))
        policies[c] = []
        for t, n in enumerate(torch.bincount(first, minlength=T).tolist()):
            if n:
                policies[c].append((len(cohorts), n))
                cohorts.append((t + 1, (first == t).nonzero().flatten()))
    profiles = cohort_profiles(net, data, cohorts, dt_s=1e-3, names=names, input_name=inp, kinds=(LIF, MaxPool2d))
    for act in profiles:
        _counts_in_input_shape(act, graph, inp)
    facts, specs = analyze(graph), {t: load_spec(t) for t in targets}
    placed = {t: placed_for(spec, profiles[T - 1], {}) for t, spec in specs.items()}
    costs = [{t: estimate(facts, act, specs[t], **placed[t]) for t in targets} for act in profiles]
    others = len({(t, m.numpy().tobytes()) for t, m in cohorts[T:] if m.numel() < S})  # (as early_exit keeps them)
    return others, {key: {t: (sum(n * costs[k][t].total_energy_j for k, n in parts) / S,
                      sum(n * costs[k][t].latency_per_inference_s for k, n in parts) / S,
                      costs[max(parts, key=lambda kn: cohorts[kn[0]][0])[0]][t].latency_per_inference_s)
                  for t in targets} for key, parts in policies.items()}


@pytest.mark.parametrize("build", [_conv_net, _recurrent_net])
def test_early_exit_costs_are_those_of_a_cohort_per_step_count_and_it_keeps_one_such_profile_at_a_time(
        build, monkeypatch):
    import gc
    import weakref

    import hardware_models

    net, x, shape = build()
    y = torch.arange(B) % 5
    data = [(x[:, :5], y[:5]), (x[:, 5:], y[5:])]
    targets, thresholds = ["loihi", "truenorth"], [0.3, 0.5, 0.7]
    cohorts, want = _cohort_reference(net, shape, data, targets, thresholds, "confidence")
    alive, real = [], hardware_models.estimate

    def recording(facts, activity, spec, **options):
        gc.collect()
        estimated.append(weakref.ref(activity))
        alive.append(len({id(r()) for r in estimated if r() is not None}))  # the profiles estimated, in memory
        return real(facts, activity, spec, **options)

    estimated = []
    monkeypatch.setattr(hardware_models, "estimate", recording)
    rep = early_exit(net, shape, data, targets, thresholds=thresholds)
    for p in rep.policies:
        for t in targets:  # bit for bit
            assert (p.energy_j[t], p.latency_s[t], p.latency_max_s[t]) == want[p.value][t], (p.name, t)
    # a "t steps" profile is made, estimated on every target and let go: beside the full run's (the placement's)
    # and the threshold cohorts', at most the one being estimated is held (T + cohorts profiles were, all at once)
    assert 0 < cohorts and max(alive) <= cohorts + 2 < cohorts + T


def test_step_profiles_keep_whole_totals_per_neuron_and_step_as_int32_and_graded_or_large_ones_as_float64():
    # T × neurons float64 (80 MB for the quickstart net at T = 400): spikes and counts are whole numbers, held in
    # half the bytes with the same values; graded inputs, and sums that could pass 2**31, as float64 as before
    from neurosim.activity import _StepTotals, step_profiles

    net, x, _ = _conv_net()
    kinds = (LIF, MaxPool2d)
    for graded in (False, True):
        xs = x * torch.rand(x.shape, generator=torch.Generator().manual_seed(1)) if graded else x
        totals = []
        real = _StepTotals.__init__
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(_StepTotals, "__init__", lambda self, T: (real(self, T), totals.append(self))[0])
            got = step_profiles(net, xs, dt_s=1e-3, kinds=kinds, batch_size=4)
        dtypes = {name: c.dtype for name, c in totals[0].counts.items()}
        assert dtypes.pop("input") == (torch.float64 if graded else torch.int32)
        assert set(dtypes.values()) == {torch.int32}  # spikes, and max-pooled spikes
        want = cohort_profiles(net, xs, [(t, torch.arange(B)) for t in (1, 4, T)], dt_s=1e-3, kinds=kinds)
        for t, ref in zip((1, 4, T), want):
            _same(got.first(t), ref)
    big = _StepTotals(3)
    big.add("n", torch.full((3, 2, 4), 2.0 ** 29, dtype=torch.float64))  # per neuron 2**30 a step, 3 * 2**30 in all
    assert big.counts["n"].dtype == torch.float64 and bool((big.counts["n"] == 2.0 ** 30).all())


def test_event_counts_stay_compact_until_each_chunk_of_steps_runs_with_the_float_inputs_results():
    # activity_profile, step_profiles and early_exit's outputs pass made each 16 samples' T steps float32 at once
    # (16 × 400 steps of 34 × 34 × 2 counts: 59 MB); run_chunked now converts a chunk of steps at a time
    from conversions import IntToFloatCopies

    from neurosim.activity import step_profiles

    net, _, shape = conv_net(40, B)
    counts = torch.randint(0, 3, (40, B, *shape), generator=torch.Generator().manual_seed(2), dtype=torch.uint8)
    y = torch.arange(B) % 5
    runs = []
    for x in (counts, counts.float()):
        with IntToFloatCopies() as copies:
            runs.append((activity_profile(net, x, dt_s=1e-3, kinds=(LIF, MaxPool2d)),
                         step_profiles(net, x, dt_s=1e-3, kinds=(LIF, MaxPool2d)).first(17),
                         early_exit(net, shape, [(x, y)], ["loihi"], thresholds=[0.3, 0.6]).to_dict()))
        if x.dtype == torch.uint8:  # float32: 15 steps of 9 samples a call (CHUNK_SAMPLES = 128); (the float64
            # totals convert a block of at most activity._BLOCK elements at a time, as they did)
            made = [s for s, dtype in zip(copies.shapes, copies.dtypes) if dtype == torch.float32]
            assert made and all(s[0] < 40 for s in made), made
    (a, first_a, report_a), (b, first_b, report_b) = runs
    _same(a, b)
    _same(first_a, first_b)
    assert report_a == report_b


# the demo model's: thresholds 0.7 and 0.8 stop after 4.44 and 4.71 steps on average at 95.5 and 95.8 %: their
# labels, drawn right of and below each point, lay over each other (and 0.8's over the 5-step point)
_DEMO_EXITS = ([73.26, 87.19, 91.92, 92.76, 94.15, 93.87, 94.43, 95.26, 95.82, 96.10],
               [(0.5, 95.54, 3.34), (0.7, 95.54, 4.44), (0.8, 95.82, 4.71), (0.9, 96.10, 5.76), (0.95, 96.10, 6.74),
                (0.99, 96.10, 7.98)])
# six thresholds within 0.5 steps and 1.4 % of each other, far above every fixed step: stacked four rows high at the
# axis's top, which was raised by the labels' excess alone, so that 0.6's label (that layout's) ended above the axis
_CLUSTER_AT_THE_TOP = ([61.02, 65.74, 68.02, 79.66],
                       [(0.5, 98.27, 2.25), (0.6, 97.03, 2.11), (0.7, 98.03, 1.98), (0.8, 97.75, 2.35),
                        (0.9, 98.31, 2.1), (0.95, 98.36, 1.92)])


@pytest.mark.parametrize("acc, sure", [_DEMO_EXITS, _CLUSTER_AT_THE_TOP], ids=["demo", "cluster_at_the_top"])
def test_the_figures_threshold_labels_do_not_overlap_each_other_or_leave_the_axis(acc, sure):
    from neurosim.estimation.early_exit import EarlyExitReport, ExitPolicy, plot_early_exit

    fixed = [ExitPolicy(f"{t} steps", "steps", t, a, float(t), [], {"loihi": t * 1.7e-5}) for t, a in
             enumerate(acc, 1)]
    dyn = [ExitPolicy(f"confidence > {c:g}", "threshold", c, a, s, [], {"loihi": s * 1.7e-5}) for c, a, s in sure]
    fig = plot_early_exit(EarlyExitReport(len(acc), 359, "summed outputs", "confidence", ["loihi"], fixed + dyn))
    fig.canvas.draw()
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    boxes = {t.get_text(): t.get_window_extent(renderer) for t in ax.texts}
    assert sorted(boxes) == sorted(f"{c:g}" for c, _, _ in sure)
    for a_, b_ in itertools.combinations(boxes, 2):
        assert not boxes[a_].overlaps(boxes[b_]), (a_, b_)
    inside = ax.get_window_extent(renderer)
    assert all(inside.y0 <= b.y0 and b.y1 <= inside.y1 for b in boxes.values()), (inside, boxes)


def test_the_studies_keep_files_of_the_users_in_their_output_folder_unless_asked_to_overwrite(tmp_path):
    """early_exit(..., out_dir=mine), per_sample and fixed_point_reports wrote over files of those names in a folder
    of the user's (estimate_model refuses it, as neurosim estimate --out does without --overwrite). A rerun into
    the study's own folder, and any folder with overwrite=True, go on."""
    from hardware_models import load_spec

    from neurosim.estimation.per_sample import per_sample
    from neurosim.hardware.fixed_point import fixed_point_reports

    net, x, shape = _conv_net()
    y = torch.arange(B) % 5
    studies = {
        "early_exit.txt": lambda out, **kw: early_exit(net, shape, [(x, y)], ["loihi"], thresholds=[0.5], out_dir=out,
                                                       **kw),
        "per_sample.png": lambda out, **kw: per_sample(net, shape, [(x, y)], ["loihi"], out_dir=out, **kw),
        "fixed_point_loihi.json": lambda out, **kw: fixed_point_reports(
            net, [(x, y)], [load_spec("loihi")], loss="rate_ce", input_shape=shape, dt_s=1e-3, samples=4,
            out_dir=out, **kw)}
    for name, study in studies.items():
        mine = tmp_path / name.split(".")[0]
        mine.mkdir()
        (mine / name).write_text("mine")
        with pytest.raises(ForeignFilesError) as e:
            study(mine)
        what = {"early_exit.txt": "early-exit", "per_sample.png": "per-sample"}.get(name, "fixed-point")
        assert str(e.value) == (f"out_dir: {mine} holds {name}, which neurosim's {what} study did not write (no "
                                "estimate.json of neurosim's is there) and would replace; choose another output "
                                "folder, or pass overwrite=True to replace it"), name
        assert [p.name for p in mine.iterdir()] == [name] and (mine / name).read_text() == "mine"
        study(mine, overwrite=True)
        assert (mine / name).read_bytes() != b"mine"
        study(mine)  # its own files now: a rerun replaces them


@pytest.mark.parametrize("stem", ["early_exit", "per_sample"])
def test_a_study_stopped_between_its_files_reruns_without_overwrite(tmp_path, monkeypatch, stem):
    """A study writes STEM.txt, STEM.png, then STEM.json: stopped (Ctrl-C) after its table, the folder held only
    STEM.txt, which the rerun refused as a file 'the study did not write' (ForeignFilesError without
    overwrite=True), and so did an estimate there. The mark written first (STEM.incomplete, as the estimate's
    estimate.incomplete) names the study's files until its JSON is written."""
    import neurosim.viz as viz
    from neurosim.estimation.per_sample import per_sample

    net, x, shape = _conv_net()
    y = torch.arange(B) % 5
    study = {"early_exit": lambda out: early_exit(net, shape, [(x, y)], ["loihi"], thresholds=[0.5], out_dir=out),
             "per_sample": lambda out: per_sample(net, shape, [(x, y)], ["loihi"], out_dir=out)}[stem]
    real = viz.save_figure

    def stop(fig, path, *a, **kw):
        raise KeyboardInterrupt

    out = tmp_path / "study"
    monkeypatch.setattr(viz, "save_figure", stop)
    with pytest.raises(KeyboardInterrupt):
        study(out)
    assert sorted(p.name for p in out.iterdir()) == [f"{stem}.incomplete", f"{stem}.txt"]
    monkeypatch.setattr(viz, "save_figure", real)
    stopped = tmp_path / "stopped"  # the same stopped study, for an estimate to go into
    stopped.mkdir()
    for p in out.iterdir():
        (stopped / p.name).write_bytes(p.read_bytes())
    study(out)  # no overwrite: the files there are the study's
    assert sorted(p.name for p in out.iterdir()) == [f"{stem}.{ext}" for ext in ("json", "png", "txt")]  # mark gone
    report = estimate_model(net, shape, x, ["loihi"], out_dir=stopped)
    assert report.files["estimate.json"].is_file() and (stopped / f"{stem}.txt").is_file()
    # a mark of the user's own (no JSON of neurosim's mark) does not make the study's names neurosim's
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / f"{stem}.incomplete").write_text('{"format": "mine", "files": ["%s.txt"]}' % stem)
    (mine / f"{stem}.txt").write_text("my notes")
    with pytest.raises(ForeignFilesError, match=re.escape(f"holds {stem}.incomplete, {stem}.txt, which")):
        study(mine)
    with pytest.raises(ForeignFilesError, match=re.escape(f"holds {stem}.incomplete, {stem}.txt, which")):
        estimate_model(net, shape, x, ["loihi"], out_dir=mine)
    assert (mine / f"{stem}.txt").read_text() == "my notes"

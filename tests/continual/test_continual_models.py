"""A continual run keeps each (method, seed)'s final model in ``models/``: a neurosim checkpoint that ``neurosim
estimate``, ``evaluate`` and ``export`` take, served the test splits of every task it learnt."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pytest
import torch

from neurosim.cli import main
from neurosim.config import ConfigError
from neurosim.continual import build_tasks, evaluate_task, load_continual_config, run_continual
from neurosim.continual.checkpoint import _interleaved, model_path, run_config_view
from neurosim.runs import evaluate_checkpoint, load_run

# the tiny setups here learn little or nothing, which run_method warns of ("did not learn", RuntimeWarning; its own
# tests are in test_continual_protocol.py): dozens of such warnings would bury the test output
pytestmark = pytest.mark.filterwarnings("ignore:.*did not learn:RuntimeWarning")

# The shipped config, shrunk to seconds: 3 permuted tasks of 120 samples, a 64-32-10 MLP, one epoch, one seed.
SMALL = ["seeds=[0]", "tasks.num_tasks=3", "tasks.train_subset=120", "tasks.test_subset=40", "model.hidden=[32]",
         "hlop.sizes=[[8, 8]]", "hlop.hebbian_epochs=1", "train.epochs=1", "ewc.fisher_samples=20"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("continual")
    cfg = load_continual_config("continual_pmnist_digits", [*SMALL, f'out_dir="{out}"'])
    return cfg, run_continual(cfg, progress=False, log=None)


def test_every_method_keeps_the_model_whose_accuracies_its_matrix_records(run):
    cfg, result = run
    tasks = build_tasks(cfg, 0)
    for method in cfg.methods:
        path = model_path(result.run_dir, method, 0)
        model, view, data = load_run(path, progress=False, test_only=True)
        (r,) = result.results[method]
        # each task through the loaded model: the run's last row, exactly
        assert [evaluate_task(model, t) for t in tasks] == r.matrix[-1], method
        # neurosim evaluate's accuracy over the interleaved test splits (equal per task) is the run's ACC
        metrics = evaluate_checkpoint(path, progress=False)
        assert metrics["samples"] == 3 * 40 and metrics["acc"] * 100 == pytest.approx(r.acc, abs=1e-9)
        record = torch.load(path, weights_only=False)["continual"]
        assert record["method"] == method and record["matrix"] == r.matrix and record["tasks"] == result.task_names
    assert view == run_config_view(cfg, 0) and view.model.hidden == (32,) and view.data.time_steps == 4


def test_the_test_split_takes_the_tasks_in_turn(run):
    cfg, result = run
    tasks = build_tasks(cfg, 0)
    _, _, data = load_run(model_path(result.run_dir, "hlop", 0), progress=False, test_only=True)
    frames, labels = data.test.frames, data.test.labels
    for i in range(2):  # sample i of task 0, of task 1, of task 2, then sample i + 1 ...
        for k, t in enumerate(tasks):
            assert torch.equal(frames[3 * i + k], t.x_test[i]) and labels[3 * i + k] == t.y_test[i]
    assert data.train is None and "3 permuted tasks" in data.info.description


def test_interleaving_tasks_of_unequal_size():
    parts = [torch.arange(3), torch.arange(10, 11), torch.arange(20, 22)]
    assert torch.cat(parts)[_interleaved(parts)].tolist() == [0, 10, 20, 1, 21, 2]


def test_estimate_export_and_evaluate_take_a_continual_model(run, tmp_path, capsys):
    cfg, result = run
    path = model_path(result.run_dir, "hlop", 0)
    out = tmp_path / "est"
    assert main(["-q", "estimate", "--checkpoint", str(path), "--target", "loihi", "--samples", "30",
                 "--out", str(out)]) == 0
    saved = json.loads((out / "estimate.json").read_text())
    from neurosim.estimation import estimate_model

    model, view, data = load_run(path, progress=False, test_only=True)
    x = data.test.frames[:30].transpose(0, 1)
    direct = estimate_model(model, view.model.input_shape, [(x, data.test.labels[:30])], ["loihi"], samples=30,
                            dt_s=view.neuron.dt_ms * 1e-3)
    assert saved["targets"]["loihi"]["total_energy_j"] == pytest.approx(direct.estimates["loihi"].total_energy_j,
                                                                        rel=1e-12)
    assert main(["-q", "export", "--checkpoint", str(path), "--out", str(tmp_path / "hlop.nir")]) == 0
    from neurosim.export import read_nir

    assert "LIF" in {type(n).__name__ for n in read_nir(tmp_path / "hlop.nir").nodes.values()}
    assert main(["-q", "evaluate", "--checkpoint", str(path)]) == 0
    assert f"test accuracy: {result.results['hlop'][0].acc:.2f} %" in capsys.readouterr().out
    # its tasks have no validation split: the refusal names what the model is, not a key of neurosim train's config
    assert main(["-q", "evaluate", "--checkpoint", str(path), "--split", "val"]) == 2
    err = capsys.readouterr().err
    assert "continual run's model" in err and "no validation split" in err and "data.val_split" not in err


def test_report_lists_the_models_and_a_rerun_keeps_them(run):
    cfg, result = run
    report = (result.run_dir / "report.md").read_text()
    assert "`models/`" in report and "hlop_seed0.pt" in report and "neurosim estimate --checkpoint" in report
    assert "`finished/`" in report and "`accuracy_<method>.png`" in report
    before = {m: model_path(result.run_dir, m, 0).stat().st_mtime_ns for m in cfg.methods}
    lines = []
    run_continual(cfg, progress=False, log=lines.append)  # every result reused: nothing trained, models kept
    assert all("finished by an earlier run)" in ln for ln in lines), lines
    assert {m: model_path(result.run_dir, m, 0).stat().st_mtime_ns for m in cfg.methods} == before


def test_a_result_finished_before_models_were_kept_says_so(tmp_path):
    cfg = load_continual_config("continual_pmnist_digits", [*SMALL, 'methods=["baseline"]', f'out_dir="{tmp_path}"'])
    first = run_continual(cfg, progress=False, log=None)
    model_path(first.run_dir, "baseline", 0).unlink()  # as a run of an earlier neurosim left it
    lines = []
    run_continual(cfg, progress=False, log=lines.append)
    assert "its model was not kept" in lines[0] and "--no-resume" in lines[0]
    assert "`models/`" not in (first.run_dir / "report.md").read_text()


def test_starting_over_with_other_settings_removes_their_models(tmp_path):
    cfg = load_continual_config("continual_pmnist_digits", [*SMALL, 'methods=["baseline"]', f'out_dir="{tmp_path}"'])
    first = run_continual(cfg, progress=False, log=None)
    old = torch.load(model_path(first.run_dir, "baseline", 0), weights_only=False)["continual"]["fingerprint"]
    other = load_continual_config("continual_pmnist_digits",
                                  [*SMALL, 'methods=["hlop"]', "train.lr=0.05", f'out_dir="{tmp_path}"'])
    run_continual(other, progress=False, log=None, resume=False)
    assert not model_path(first.run_dir, "baseline", 0).exists()  # went with its finished/ result
    new = torch.load(model_path(first.run_dir, "hlop", 0), weights_only=False)["continual"]["fingerprint"]
    assert new != old


def test_a_class_split_model_warns_that_its_accuracy_is_over_all_outputs(tmp_path):
    cfg = load_continual_config("continual_pmnist_digits", [
        "seeds=[0]", "tasks.protocol=\"class_split\"", "tasks.classes_per_task=5", "tasks.train_subset=100",
        "tasks.test_subset=40", "model.hidden=[16]", 'methods=["baseline"]', "train.epochs=1",
        f'out_dir="{tmp_path}"'])
    result = run_continual(cfg, progress=False, log=None)
    with pytest.warns(RuntimeWarning, match="class-incremental"):
        _, _, data = load_run(model_path(result.run_dir, "baseline", 0), progress=False, test_only=True)
    assert len(data.test.labels) == 40 and "2 class-split tasks" in data.info.description


def test_a_kept_class_split_model_of_a_task_of_one_class_still_loads(tmp_path, monkeypatch):
    """A model kept by a run from before classes_per_task = 3 was refused (3b34152) loads for evaluate, estimate and
    export: its tasks were rebuilt through the refusal, a ConfigError naming tasks.classes_per_task, which those
    commands cannot set, so the model could no longer be costed or exported."""
    import neurosim.continual.runner as runner

    cfg = load_continual_config("continual_pmnist_digits", [
        "seeds=[0]", "tasks.protocol=\"class_split\"", "tasks.classes_per_task=3", "tasks.train_subset=100",
        "tasks.test_subset=40", "model.hidden=[16]", 'methods=["baseline"]', "train.epochs=1",
        f'out_dir="{tmp_path}"'])
    with monkeypatch.context() as m:  # trained as before the refusal
        m.setattr(runner, "_check_class_groups", lambda *a: None)
        result = run_continual(cfg, progress=False, log=None)
    with pytest.raises(ConfigError, match="tasks.classes_per_task: 3 splits"):
        build_tasks(cfg, 0)  # a run of these settings is refused, as before
    with pytest.warns(RuntimeWarning, match="class-incremental"):
        _, _, data = load_run(model_path(result.run_dir, "baseline", 0), progress=False, test_only=True)
    assert len(data.test.labels) == 40 and "4 class-split tasks of 3 classes" in data.info.description


def test_a_run_folder_of_a_class_split_refused_now_says_what_stays_and_what_to_do(tmp_path, monkeypatch, capsys):
    """A folder made with classes_per_task = 3 before such splits were refused: rerunning its config was refused
    without a word of the folder, and changing the setting as that error said was refused with "rerun with those
    settings to continue it", which is refused. Both now say that the run cannot go on, what stays usable (its kept
    models for evaluate, estimate and export) and where a run can go (another name, or --no-resume)."""
    import neurosim.continual.runner as runner

    old = ["seeds=[0]", 'tasks.protocol="class_split"', "tasks.classes_per_task=3", "tasks.train_subset=100",
           "tasks.test_subset=40", "model.hidden=[16]", 'methods=["baseline"]', "train.epochs=1",
           f'out_dir="{tmp_path}"', 'name="old"']
    with monkeypatch.context() as m:  # trained as before the refusal
        m.setattr(runner, "_check_class_groups", lambda *a: None)
        run_dir = run_continual(load_continual_config("continual_pmnist_digits", old), progress=False,
                                log=None).run_dir
    files = {p: p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}
    config = str(run_dir / "config.toml")
    assert main(["-q", "continual", "--config", config]) == 2
    err = capsys.readouterr().err
    assert "tasks.classes_per_task: 3 splits the source's 10 classes into tasks of 3, 3, 3, 1" in err
    assert (f"{run_dir} holds results of these settings (baseline_seed0), finished by a neurosim that did not refuse "
            "them: they cannot be rerun or resumed" in err)
    assert f"its kept models ({run_dir / 'models'}: baseline_seed0.pt) still load for neurosim evaluate" in err
    assert "another name (--set name=...)" in err and "--no-resume, which replaces those results" in err
    assert main(["-q", "continual", "--config", config, "--set", "tasks.classes_per_task=2"]) == 2
    err = capsys.readouterr().err
    assert (f"{run_dir} holds results of other settings (baseline_seed0: tasks.classes_per_task differs), a class "
            "split refused now (tasks.classes_per_task = 3 of the source's 10 classes), so that run cannot be "
            "continued" in err)
    assert "rerun with those settings" not in err and "still load for neurosim evaluate, estimate and export" in err
    assert {p: p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()} == files  # nothing written
    assert main(["-q", "continual", "--config", config, "--set", "tasks.classes_per_task=2", "name=new"]) == 0
    assert main(["-q", "continual", "--config", config, "--set", "tasks.classes_per_task=2", "--no-resume"]) == 0
    assert load_continual_config(config).tasks.classes_per_task == 2


def test_a_continual_checkpoint_without_its_record_is_refused(run, tmp_path):
    from neurosim.training.checkpoint import CheckpointError, save_checkpoint

    cfg, result = run
    payload = torch.load(model_path(result.run_dir, "hlop", 0), weights_only=False)
    del payload["continual"], payload["format"]
    save_checkpoint(tmp_path / "bad.pt", payload)
    with pytest.raises(CheckpointError, match="continual model without a readable record"):
        load_run(tmp_path / "bad.pt", progress=False, test_only=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a permuted run's model loads without the class-split one
        load_run(Path(model_path(result.run_dir, "hlop", 0)), progress=False, test_only=True)


def test_a_relative_tasks_root_is_kept_absolute_so_the_model_loads_from_any_folder(tmp_path, monkeypatch):
    """tasks.root = "mydata" was stored as given: loaded from another working directory, a registry source was
    looked for there (event_digits was generated anew into it, silently; a tonic dataset was 'not on disk, set
    tasks.root', which estimate cannot set)."""
    import neurosim.continual.runner as runner
    from neurosim.continual.checkpoint import save_continual_model
    from neurosim.nn import build_model

    (tmp_path / "run").mkdir()
    monkeypatch.chdir(tmp_path / "run")
    cfg = load_continual_config("continual_pmnist_digits", [*SMALL, 'tasks.root="mydata"'])
    path = save_continual_model(tmp_path / "m.pt", build_model(cfg.model, cfg.neuron), cfg, "baseline", 0,
                                ["permuted-0"], [[10.0]], "f")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    roots = []
    load_source = runner.load_source
    monkeypatch.setattr(runner, "load_source", lambda *a: roots.append(a[5]) or load_source(*a))
    _, view, _ = load_run(path, progress=False, test_only=True)
    assert roots == [str(tmp_path / "run" / "mydata")] and view.data.root == roots[0]
    assert cfg.tasks.root == "mydata"  # the run's own config is left as written


def test_the_test_split_alone_reads_one_training_sample_of_a_permuted_source(run, monkeypatch):
    import neurosim.continual.runner as runner

    cfg, result = run
    built = []
    real = runner.build_tasks
    monkeypatch.setattr(runner, "build_tasks", lambda c, *a, **k: built.append(c.tasks.train_subset) or real(c, *a, **k))
    _, _, data = load_run(model_path(result.run_dir, "hlop", 0), progress=False, test_only=True)
    assert built == [1] and len(data.test.labels) == 3 * 40  # the permuted training copies are not made
    _, _, data = load_run(model_path(result.run_dir, "hlop", 0), progress=False, test_only=False)
    assert built == [1, 120] and len(data.train.labels) == 3 * 120


def test_a_rerun_with_the_task_data_moved_stores_the_new_tasks_root_in_the_kept_models(tmp_path, monkeypatch):
    """The data moved and the rerun said where (--set tasks.root=...): the results were reused, but the kept model
    stored the old folder, where evaluate, estimate and export then looked for its tasks (and could not set it)."""
    import neurosim.continual.runner as runner

    monkeypatch.chdir(tmp_path)
    first = [*SMALL, 'methods=["baseline", "hlop"]', 'tasks.root="old"', f'out_dir="{tmp_path}"']
    cfg = load_continual_config("continual_pmnist_digits", first)
    result = run_continual(cfg, progress=False, log=None)
    path = model_path(result.run_dir, "hlop", 0)
    weights = torch.load(path, weights_only=False)["model"]
    moved = load_continual_config("continual_pmnist_digits", [*first, 'tasks.root="new"'])
    lines = []
    with pytest.warns(RuntimeWarning, match="tasks.root: models reused") as caught:
        run_continual(moved, progress=False, log=lines.append)
    assert all("finished by an earlier run" in ln for ln in lines), lines  # nothing trained again
    (w,) = [w for w in caught if "tasks.root" in str(w.message)]  # one warning for the run, naming both folders
    assert f"baseline_seed0.pt, hlop_seed0.pt stored {tmp_path / 'old'}" in str(w.message)
    assert f"this run's, {tmp_path / 'new'}" in str(w.message)
    payload = torch.load(path, weights_only=False)
    assert payload["continual"]["config"]["tasks"]["root"] == str(tmp_path / "new")
    assert payload["config"]["data"]["root"] == str(tmp_path / "new")
    assert all(torch.equal(v, weights[k]) for k, v in payload["model"].items())  # the model itself as it was
    roots = []
    load_source = runner.load_source
    monkeypatch.setattr(runner, "load_source", lambda *a: roots.append(a[5]) or load_source(*a))
    _, view, _ = load_run(path, progress=False, test_only=True)
    assert roots == [str(tmp_path / "new")] and view.data.root == roots[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # the same root again: nothing to say, nothing rewritten
        before = path.stat().st_mtime_ns
        run_continual(moved, progress=False, log=None)
        assert path.stat().st_mtime_ns == before
    # back to the dataset cache (tasks.root = none): the stored root goes, as a run without one never had it
    with pytest.warns(RuntimeWarning, match=r"they now store this run's, the dataset cache \(none\)") as caught:
        run_continual(load_continual_config("continual_pmnist_digits", [*first, "tasks.root=none"]),
                      progress=False, log=None)
    (w,) = [w for w in caught if "tasks.root" in str(w.message)]  # (oldest sklearn warns while loading digits)
    assert w.filename == __file__  # pointing at the caller, not inside neurosim
    payload = torch.load(path, weights_only=False)
    assert "root" not in payload["continual"]["config"]["tasks"] and "root" not in payload["config"]["data"]


def test_a_rerun_of_some_methods_with_the_task_data_moved_stores_the_new_root_in_the_others_models_too(tmp_path):
    """`--methods hlop --set tasks.root=NEW` after a run of baseline and hlop: hlop's kept model took the new root, but
    baseline's, of the same settings and tasks in the same folder, kept the old one, where evaluate, estimate and
    export then looked for its tasks. A model there of other settings, or a file that is no continual model, stays
    as it is."""
    from neurosim.training.checkpoint import load_checkpoint, save_checkpoint

    first = [*SMALL, 'methods=["baseline", "hlop"]', f'tasks.root="{tmp_path / "old"}"', f'out_dir="{tmp_path}"']
    result = run_continual(load_continual_config("continual_pmnist_digits", first), progress=False, log=None)
    models = result.run_dir / "models"
    other = load_checkpoint(models / "baseline_seed0.pt")
    other["continual"]["fingerprint"] = "of other settings"
    save_checkpoint(models / "mine.pt", other)
    (models / "notes.pt").write_text("not a checkpoint")
    before = {name: (models / name).read_bytes() for name in ("mine.pt", "notes.pt")}
    weights = load_checkpoint(models / "baseline_seed0.pt")["model"]
    moved = load_continual_config("continual_pmnist_digits", [*first, 'methods=["hlop"]',
                                                              f'tasks.root="{tmp_path / "new"}"'])
    with pytest.warns(RuntimeWarning, match="tasks.root: models reused") as caught:
        run = run_continual(moved, progress=False, log=None)
    assert run.models == [models / "hlop_seed0.pt"]  # (the run's own models: hlop's)
    (w,) = [w for w in caught if "tasks.root" in str(w.message)]
    assert f"hlop_seed0.pt, baseline_seed0.pt stored {tmp_path / 'old'}" in str(w.message)  # its own first
    payload = load_checkpoint(models / "baseline_seed0.pt")
    assert payload["continual"]["config"]["tasks"]["root"] == payload["config"]["data"]["root"] == str(tmp_path / "new")
    assert all(torch.equal(v, weights[k]) for k, v in payload["model"].items())
    assert {name: (models / name).read_bytes() for name in before} == before


def test_a_model_trained_anew_takes_the_earlier_models_estimate_and_export_with_it(tmp_path):
    """--no-resume trained every (method, seed) anew, but models/estimate-<method>_seed<S>/ and the NIR export of the
    earlier model stayed beside the new one, as if they were its own."""
    cfg = load_continual_config("continual_pmnist_digits", [*SMALL, 'methods=["baseline"]', f'out_dir="{tmp_path}"'])
    models = run_continual(cfg, progress=False, log=None).run_dir / "models"

    def estimate_and_export():
        path = models / "baseline_seed0.pt"
        assert main(["-q", "estimate", "--checkpoint", str(path), "--target", "loihi", "--samples", "6"]) == 0
        assert main(["-q", "export", "--checkpoint", str(path)]) == 0
        assert main(["-q", "estimate", "--nir", str(models / "model-baseline_seed0.nir"), "--activity",
                     str(models / "estimate-baseline_seed0" / "activity.json"), "--target", "loihi"]) == 0
        return sorted(str(p.relative_to(models)) for p in models.rglob("*"))

    made = estimate_and_export()
    assert {"estimate-baseline_seed0/estimate.json", "model-baseline_seed0.nir",
            "model-baseline_seed0-estimate/estimate.json"} <= set(made)
    (models / "estimate-baseline_seed0" / "notes.txt").write_text("mine")  # not neurosim's: it stays
    run_continual(cfg, progress=False, log=None)  # the model reused: its estimate and export are still its own
    listed = sorted(str(p.relative_to(models)) for p in models.rglob("*"))
    assert listed == sorted([*made, "estimate-baseline_seed0/notes.txt"])
    run_continual(cfg, progress=False, log=None, resume=False)
    assert sorted(str(p.relative_to(models)) for p in models.rglob("*")) == [
        "baseline_seed0.pt", "estimate-baseline_seed0", "estimate-baseline_seed0/notes.txt"]
    estimate_and_export()
    (models / "estimate-baseline_seed0" / "notes.txt").unlink()
    # other settings, started over: the earlier settings' model goes, and what was made of it
    other = load_continual_config("continual_pmnist_digits",
                                  [*SMALL, 'methods=["hlop"]', "train.lr=0.05", f'out_dir="{tmp_path}"'])
    run_continual(other, progress=False, log=None, resume=False)
    assert sorted(str(p.relative_to(models)) for p in models.rglob("*")) == ["hlop_seed0.pt"]


def test_a_continual_run_folder_or_a_model_it_has_not_finished_is_refused_naming_its_models(run, tmp_path, capsys):
    """`neurosim evaluate --checkpoint runs/NAME` (the continual run's folder) said 'a folder without a checkpoint.pt',
    and a model of a run stopped before it finished just 'does not exist'."""
    cfg, result = run
    names = "baseline_seed0.pt, ewc_seed0.pt, hlop_seed0.pt, multitask_seed0.pt"
    for folder in (result.run_dir, result.run_dir / "models"):
        assert main(["-q", "evaluate", "--checkpoint", str(folder)]) == 2
        err = capsys.readouterr().err
        assert "continual run" in err and f"give one of its files (there: {names})" in err, err
    assert main(["-q", "estimate", "--checkpoint", str(result.run_dir / "models" / "hlop_seed1.pt")]) == 2
    err = capsys.readouterr().err
    assert f"does not exist: the continual run in {result.run_dir} has no such model (there: {names}); a (method, " \
           "seed) leaves its model once it has finished" in err, err
    (tmp_path / "stopped" / "finished").mkdir(parents=True)  # stopped before any (method, seed) finished
    assert main(["-q", "export", "--checkpoint", str(tmp_path / "stopped")]) == 2
    assert "(it has none yet: a (method, seed) leaves its model once it has finished" in capsys.readouterr().err
    (tmp_path / "plain").mkdir()  # any other folder: as before
    assert main(["-q", "evaluate", "--checkpoint", str(tmp_path / "plain")]) == 2
    assert "is a folder without a checkpoint.pt; give the checkpoint file" in capsys.readouterr().err


def test_a_finished_results_file_or_other_json_given_as_a_checkpoint_says_what_it_is(tmp_path):
    # torch.load's 'UnpicklingError: invalid load key' was all a user got for a finished/*.json or a metrics file
    from neurosim.training.checkpoint import CheckpointError, load_checkpoint

    finished = tmp_path / "run" / "finished"
    finished.mkdir(parents=True)
    (finished / "hlop_seed0.json").write_text('{"method": "hlop"}')
    model = tmp_path / "run" / "models" / "hlop_seed0.pt"
    with pytest.raises(CheckpointError, match=r"is a continual run's finished results \(JSON\); that "
                                              rf"\(method, seed\)'s model is {re.escape(str(model))}, not a "
                                              r"checkpoint$"):
        load_checkpoint(finished / "hlop_seed0.json")
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1}\n')
    with pytest.raises(CheckpointError, match=r"is a JSON file \(a checkpoint is a torch file: checkpoint.pt"):
        load_checkpoint(tmp_path / "metrics.jsonl")
    (tmp_path / "broken.pt").write_bytes(b"\x80\x02garbage")
    with pytest.raises(CheckpointError, match=r"could not be read \(UnpicklingError"):  # corrupt: as before
        load_checkpoint(tmp_path / "broken.pt")

"""``neurosim continual --config NAME`` writes runs/NAME/: accuracy matrices (JSON), heatmaps (PNG), report.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neurosim.cli import main
from neurosim.continual import load_continual_config

# the tiny setups here learn little or nothing, which run_method warns of ("did not learn", RuntimeWarning; its own
# tests are in test_continual_protocol.py): dozens of such warnings would bury the test output
pytestmark = pytest.mark.filterwarnings("ignore:.*did not learn:RuntimeWarning")

# The shipped config, shrunk to seconds: 2 tasks of 150 samples, a 64-32-10 MLP, one epoch, one seed.
SMALL = ["seeds=[0]", "tasks.num_tasks=2", "tasks.train_subset=150", "tasks.test_subset=60", "model.hidden=[32]",
         "hlop.sizes=[[8, 8]]", "hlop.hebbian_epochs=1", "train.epochs=1", "ewc.fisher_samples=20"]


def test_cli_writes_the_run_folder_under_runs_in_the_working_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # out_dir defaults to "runs", relative to where the command runs
    assert main(["-q", "continual", "--config", "continual_pmnist_digits", "--set", *SMALL]) == 0
    run = tmp_path / "runs" / "continual_pmnist_digits"
    printed = capsys.readouterr().out
    assert f"run folder: {run.relative_to(tmp_path)}" in printed and "hlop" in printed
    assert f"models: {(run / 'models').relative_to(tmp_path)} (4; neurosim estimate --checkpoint" in printed

    results = json.loads((run / "results.json").read_text())
    assert results["tasks"] == ["permuted-0", "permuted-1"] and results["seeds"] == [0]
    for method in ("baseline", "ewc", "hlop"):
        (r,) = results["runs"][method]
        matrix = r["matrix"]
        assert len(matrix) == 2 and all(len(row) == 2 and all(0 <= v <= 100 for v in row) for row in matrix)
        assert r["acc"] == sum(matrix[1]) / 2 and r["bwt"] == matrix[1][0] - matrix[0][0]
        assert results["summary"][method]["bwt_mean"] == r["bwt"]
    (joint,) = results["runs"]["multitask"]
    assert len(joint["matrix"]) == 1 and joint["bwt"] is None and "bwt_mean" not in results["summary"]["multitask"]

    for png in ["accuracy_matrices.png"] + [f"accuracy_{m}.png" for m in ("baseline", "ewc", "hlop", "multitask")]:
        assert (run / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (run / png).stat().st_size > 2000, png

    report = (run / "report.md").read_text()
    for row in ("| baseline (fine-tuning) |", "| EWC |", "| HLOP |", "| multitask (joint upper bound) |"):
        assert row in report
    assert "-1.30" in report and "78.58" in report  # the paper's numbers, for reference
    assert "![accuracy_matrices.png](accuracy_matrices.png)" in report

    # the saved config reruns the same job
    again = load_continual_config(run / "config.toml")
    assert again.tasks.num_tasks == 2 and again.model.hidden == (32,) and again.hlop.sizes == ((8, 8),)


def test_cli_methods_option_and_out_dir(tmp_path):
    out = tmp_path / "elsewhere"
    code = main(["-q", "continual", "--config", "continual_pmnist_digits", "--methods", "hlop",
                 "--set", *SMALL, f'out_dir="{out}"', 'name="only_hlop"'])
    assert code == 0
    results = json.loads((out / "only_hlop" / "results.json").read_text())
    assert list(results["runs"]) == ["hlop"]


def test_the_final_lines_of_a_run_of_several_seeds_give_the_spread_over_them(tmp_path, capsys):
    # before: "baseline  ACC  41.67 %  BWT -9.17", a mean whose spread only report.md held
    small = [o for o in SMALL if not o.startswith("seeds=")]
    assert main(["-q", "continual", "--config", "continual_pmnist_digits", "--methods", "baseline", "multitask",
                 "--set", *small, "seeds=[0, 1]", f'out_dir="{tmp_path}"']) == 0
    s = json.loads((tmp_path / "continual_pmnist_digits" / "results.json").read_text())["summary"]
    lines = capsys.readouterr().out.splitlines()
    b, m = s["baseline"], s["multitask"]
    assert lines[:3] == [
        "mean ± std (ddof 1) over 2 seeds:",
        f"baseline  ACC {b['acc_mean']:6.2f} ± {b['acc_std']:.2f} %  BWT {b['bwt_mean']:+.2f} ± {b['bwt_std']:.2f}",
        f"multitask ACC {m['acc_mean']:6.2f} ± {m['acc_std']:.2f} %  BWT —"]
    assert main(["-q", "continual", "--config", "continual_pmnist_digits", "--methods", "baseline",
                 "--set", *SMALL, f'out_dir="{tmp_path}"', "name=one"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("baseline  ACC ") and "±" not in out  # one seed: no spread to give


def test_a_setting_the_rest_of_the_config_leaves_without_effect_is_warned_of(tmp_path):
    # train.k under train.method = 'sltt' was ignored silently (neurosim train warns of it)
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match=r"settings with no effect in this config: train\.k = 4: only "
                                         r"train\.method = 'sltt_k' draws k steps per batch; train\.momentum = 0\.9: "
                                         r"train\.optimizer = 'adam' takes no momentum"):
        assert main(["-q", "continual", "--config", "continual_pmnist_digits", "--methods", "baseline", "--set",
                     *SMALL, f'out_dir="{out}"', "train.method=sltt", "train.loss=tet", "train.k=4",
                     "train.optimizer=adam", "train.momentum=0.9", "train.lr=0.001"]) == 0
    assert (out / "continual_pmnist_digits" / "results.json").is_file()


def test_cli_errors_are_one_line_with_status_2(tmp_path, capsys):
    assert main(["continual", "--config", "no_such_config"]) == 2
    err = capsys.readouterr().err
    assert "continual config 'no_such_config' not found" in err and "continual_pmnist_digits" in err
    assert main(["continual", "--config", "continual_pmnist_digits", "--set", "hlop.rate=0.1"]) == 2
    assert "hlop.rate: unknown key" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_a_stopped_run_keeps_what_it_finished_and_a_rerun_reuses_it(tmp_path, monkeypatch):
    from neurosim.continual import runner

    real, trained = runner.run_method, []

    def run_method(cfg, method, tasks, seed=0, progress=False):
        trained.append(method)
        if method == "hlop" and fail:
            raise KeyboardInterrupt  # the user stops the run during HLOP
        return real(cfg, method, tasks, seed=seed, progress=progress)

    monkeypatch.setattr(runner, "run_method", run_method)
    args = ["-q", "continual", "--config", "continual_pmnist_digits", "--methods", "baseline", "hlop",
            "--set", *SMALL, f'out_dir="{tmp_path}"']
    fail = True
    try:
        main(args)
    except KeyboardInterrupt:
        pass
    run = tmp_path / "continual_pmnist_digits"
    assert trained == ["baseline", "hlop"] and (run / "finished" / "baseline_seed0.json").is_file()
    assert not (run / "results.json").exists()
    assert load_continual_config(run / "config.toml").methods == ("baseline", "hlop")  # what finished/ holds
    fail, trained[:] = False, []
    lines = []
    monkeypatch.setattr("builtins.print", lambda *a, **kw: lines.append(" ".join(map(str, a))))
    assert main(args[1:]) == 0  # not quiet: the log says what was reused
    assert trained == ["hlop"] and any("baseline" in ln and "finished by an earlier run" in ln for ln in lines)
    first = json.loads((run / "results.json").read_text())["runs"]
    trained[:] = []
    assert main(args) == 0
    assert trained == [] and json.loads((run / "results.json").read_text())["runs"] == first
    assert main([*args, "train.threads=1"]) == 0 and trained == []  # where it runs is not what it computes
    # other settings would overwrite the folder's results: refused before anything trains, naming what differs
    lines[:] = []  # print is captured into lines (above), errors too
    assert main([*args, "train.lr=0.05"]) == 2 and trained == []
    assert "holds results of other settings (baseline_seed0, hlop_seed0: train.lr differs)" in "".join(lines)
    assert json.loads((run / "results.json").read_text())["runs"] == first
    (run / "accuracy_mine.png").write_bytes(b"a figure of one's own")  # a name like neurosim's figures
    (run / "accuracy_ewc.png").write_bytes(b"an earlier run's")  # a method this run does not run
    assert main([*args, "train.lr=0.05", "--no-resume"]) == 0 and trained == ["baseline", "hlop"]  # start over
    assert (run / "accuracy_mine.png").read_bytes() == b"a figure of one's own"
    assert not (run / "accuracy_ewc.png").exists() and (run / "accuracy_hlop.png").is_file()
    trained[:] = []
    assert main([*args, "train.lr=0.05"]) == 0 and trained == []  # … and then reused
    lines[:] = []
    assert main([*args, "--methods", "baseline"]) == 2  # the old settings' results are gone: no mixing back
    assert "train.lr differ" in "".join(lines)  # config.toml, written when a run starts, names what differs


def test_results_finished_by_an_earlier_version_are_still_recognised(tmp_path):
    # earlier versions also hashed threads, device and data root into a result's fingerprint
    from neurosim.continual.runner import _fingerprints, _load_finished

    cfg = load_continual_config(None, SMALL)
    new, legacy = _fingerprints(cfg)
    assert new != legacy and _fingerprints(load_continual_config(None, [*SMALL, "train.threads=1"]))[0] == new
    result = {"method": "baseline", "seed": 0, "matrix": [[90.0, 10.0], [80.0, 85.0]], "seconds": 1.0}
    path = tmp_path / "baseline_seed0.json"
    path.write_text(json.dumps({"fingerprint": legacy, "result": result}))
    assert _load_finished(path, (new, legacy)).acc == 82.5
    path.write_text(json.dumps({"fingerprint": "0" * 16, "result": result}))
    assert _load_finished(path, (new, legacy)) is None


def test_a_dataset_not_on_disk_is_reported_with_the_continual_key(tmp_path, capsys):
    # the registry's message said "set data.root", neurosim train's key, which a continual config refuses
    assert main(["continual", "--config", "continual_pmnist_digits", "--set", *SMALL, "tasks.source=nmnist",
                 f'tasks.root="{tmp_path}"', f'out_dir="{tmp_path}"']) == 2
    err = capsys.readouterr().err
    assert f"dataset 'nmnist' is not on disk at {tmp_path}" in err and "set tasks.root to the folder" in err
    assert "data.root" not in err


def test_a_run_stopped_before_anything_finished_does_not_claim_to_keep_results(tmp_path, monkeypatch, capsys):
    from neurosim.continual import runner

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C during the first (method, seed)

    monkeypatch.setattr(runner, "run_method", stopped)
    args = ["continual", "--config", "continual_pmnist_digits", "--set", *SMALL, f'out_dir="{tmp_path}"']
    assert main(args) == 130
    err = capsys.readouterr().err
    assert "interrupted before any (method, seed) had finished: nothing was kept" in err and "kept in" not in err
    if Path("/proc/self").is_dir():  # Linux: a folder nobody, root included, can make there (a storage error)
        assert main([*args, 'out_dir="/proc/neurosim-no-such-folder"']) == 1
        err = capsys.readouterr().err
        assert "before any (method, seed) had finished" in err and "kept in" not in err


def test_methods_given_both_by_option_and_by_set_is_refused(tmp_path, capsys):
    code = main(["-q", "continual", "--config", "continual_pmnist_digits", "--methods", "hlop",
                 "--set", *SMALL, 'methods=["baseline"]', f'out_dir="{tmp_path}"'])
    assert code == 2
    assert "--methods and --set methods=... both choose the methods" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # refused before any work


def test_the_models_line_counts_the_runs_own_models_only(tmp_path, capsys):
    """A file in models/ that is not one of this run's (method, seed) models (a copy of one's own, another method's
    model from an earlier run of the folder) was counted, and could be the one the line told to estimate."""
    import shutil

    args = ["-q", "continual", "--config", "continual_pmnist_digits", "--methods", "baseline", "--set", *SMALL,
            f'out_dir="{tmp_path}"']
    assert main(args) == 0
    models = tmp_path / "continual_pmnist_digits" / "models"
    shutil.copy(models / "baseline_seed0.pt", models / "a_copy.pt")  # sorts first
    shutil.copy(models / "baseline_seed0.pt", models / "hlop_seed0.pt")  # not a method of this run
    capsys.readouterr()
    assert main(args) == 0  # the result reused: nothing trained
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("models:"))
    assert f"(1; neurosim estimate --checkpoint {models / 'baseline_seed0.pt'} costs" in line, line


def test_a_list_of_bare_names_says_to_quote_them(tmp_path, capsys):
    """`--set methods=[hlop, ewc]` (as snnTorch-style argparse lists are typed) is one string to TOML: the error said
    'expected a list of strings' without saying how to write one."""
    assert main(["continual", "--config", "continual_pmnist_digits", "--set", "methods=[hlop, 'ewc']",
                 f'out_dir="{tmp_path}"']) == 2
    err = capsys.readouterr().err
    hint = """TOML quotes each string in a list: ["hlop", "ewc"] (on a command line inside single quotes, --set \
'methods=["hlop", "ewc"]')"""
    assert err.rstrip().endswith(hint) and err.count("\n") == 1, err
    assert load_continual_config(None, ['methods=["hlop", "ewc"]']).methods == ("hlop", "ewc")  # as the hint says
    assert not any(tmp_path.iterdir())


def test_train_s_seeds_option_points_at_the_configs_seeds(tmp_path, capsys):
    """`neurosim continual ... --seeds 0 1`, as neurosim train takes it, was only 'unrecognized arguments'."""
    with pytest.raises(SystemExit) as stop:
        main(["continual", "--config", "continual_pmnist_digits", "--seeds", "0", "1", "--set",
              f'out_dir="{tmp_path}"'])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.rstrip().endswith("unrecognized arguments: --seeds 0 1; neurosim continual runs every method once per "
                                 "seed of the config's `seeds`: --set seeds=[0, 1]"), err
    assert load_continual_config(None, ["seeds=[0, 1]"]).seeds == (0, 1)  # as the hint says


def test_the_readmes_continual_commands_run_one_after_another(tmp_path, monkeypatch):
    """The README's quickstart lines for continual, typed in turn (shrunk by SMALL): the penalised run went into the
    folder of the first, whose results were of other settings, and was refused."""
    import shlex

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    lines = [ln.partition("#")[0] for ln in readme.splitlines()
             if ln.startswith(("neurosim continual ", "neurosim estimate --checkpoint runs/continual"))]
    assert len(lines) >= 3, lines
    monkeypatch.chdir(tmp_path)
    for line in lines:
        argv = shlex.split(line)[1:]
        argv += ["--set", *SMALL] if argv[0] == "continual" else ["--samples", "8"]
        assert main(["-q", *argv]) == 0, line


def test_a_moved_run_folders_config_says_how_to_resume_it_there(tmp_path, monkeypatch, capsys):
    """`neurosim continual --config moved/NAME/config.toml` started a new run where the config's out_dir pointed,
    silently, as neurosim train did before it said so."""
    from neurosim.continual import runner

    monkeypatch.chdir(tmp_path)
    assert main(["-q", "continual", "--config", "continual_pmnist_digits", "--methods", "baseline",
                 "--set", *SMALL, 'out_dir="first"']) == 0
    (tmp_path / "moved").mkdir()
    (tmp_path / "first" / "continual_pmnist_digits").rename(tmp_path / "moved" / "continual_pmnist_digits")
    config = Path("moved") / "continual_pmnist_digits" / "config.toml"
    monkeypatch.setattr(runner, "run_method", lambda *a, **kw: (_ for _ in ()).throw(AssertionError("trained")))
    capsys.readouterr()
    with pytest.raises(AssertionError, match="trained"):  # a new run in first/, and a note that says so
        main(["-q", "continual", "--config", str(config)])
    err = capsys.readouterr().err
    assert f"note: {config} belongs to the run in {tmp_path / 'moved' / 'continual_pmnist_digits'} (it has finished " \
           f"results), but its out_dir and name point to {Path('first') / 'continual_pmnist_digits'}" in err, err
    hint = f"--set out_dir={tmp_path / 'moved'} name=continual_pmnist_digits"
    assert f"add {hint}" in err
    assert main(["-q", "continual", "--config", str(config), *hint.split()]) == 0  # as the note says: all reused
    assert capsys.readouterr().err == ""  # resumed where it is: nothing to say

"""A whole continual-learning run from a :class:`ContinualConfig`: tasks, every method × seed, files.

``run_continual(cfg)`` checks the config against the model and tasks before any training (HLOP's layers, rates
and subspace sizes for every task, the device), then writes ``<out_dir>/<name>/``:

* ``finished/<method>_seed<S>.json`` — each (method, seed) as soon as it is done, with a fingerprint of the
  settings it ran with: a run that is stopped or fails keeps what it finished, and running the same config again
  reuses those results instead of training them again (``resume=False``, or ``--no-resume``, trains all anew);
* ``models/<method>_seed<S>.pt`` — the model after the last task of each (method, seed), written just before its
  ``finished/`` file: a neurosim checkpoint that ``neurosim estimate``, ``evaluate`` and ``export`` take
  (:mod:`neurosim.continual.checkpoint`); what those wrote beside an earlier model there
  (``estimate-<method>_seed<S>/``, ``model-<method>_seed<S>.nir``) goes when a model trained anew replaces it
  (:func:`neurosim.runs.remove_outputs_of`), and a reused model takes this run's ``tasks.root`` where it stored
  another, as does every other model there of the same settings (methods or seeds this run did not run);
* ``config.toml`` — the config used;
* ``results.json`` — per method: every seed's accuracy matrix, ACC, BWT and wall time, and the mean ± std summary;
* ``accuracy_matrices.png`` (all methods, first seed) and ``accuracy_<method>.png`` — heatmaps;
* ``report.md`` — the ACC/BWT table next to the HLOP paper's reported numbers.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from neurosim._io import atomic_write_text, check_output_folder, hold_run_folder
from neurosim.config import ConfigError, config_to_dict, dumps_toml, settings_differ
from neurosim.continual.checkpoint import model_path, save_continual_model, update_tasks_root
from neurosim.continual.config import CONTINUAL_METHODS, ContinualConfig, ineffective_continual_settings
from neurosim.continual.report import accuracy_heatmap, accuracy_heatmaps, report_markdown
from neurosim.continual.tasks import Task, class_split_tasks, load_source, permuted_tasks
from neurosim.continual.train import (
    MethodResult, activity_penalty, build_continual_model, hlop_plan, run_method, summarize,
)

__all__ = ["ContinualRun", "build_tasks", "run_continual"]


def build_tasks(cfg: ContinualConfig, seed: int, source_data: tuple | None = None,
                progress: bool = False, *, check_classes: bool = True) -> list[Task]:
    """The config's task sequence for one seed (permutations depend on the seed; class splits do not).

    Args:
        source_data: ``load_source(...)``'s result, to reuse across seeds; None loads it.
        check_classes: refuse a class split that leaves a task one class, or asks for more classes per task than
            the source has (a ConfigError naming ``tasks.classes_per_task``: settings to run). False builds the tasks
            of a model already trained, as its record says (:func:`~neurosim.continual.checkpoint.continual_data`:
            a model kept before such splits were refused is still evaluated, estimated and exported).
    """
    tc = cfg.tasks
    if source_data is None:
        source_data = _load_source(cfg, progress)
    if tc.protocol == "permuted":
        return permuted_tasks(*source_data, num_tasks=tc.num_tasks, seed=seed, permute_first=tc.permute_first)
    if check_classes:
        _check_class_groups(tc.classes_per_task, len(set(source_data[1].tolist())))
    try:
        return class_split_tasks(*source_data, classes_per_task=tc.classes_per_task)
    except ValueError as e:  # e.g. a subset too small to hold every task's classes
        raise ConfigError(f"tasks.protocol = 'class_split': {e}; raise tasks.train_subset / tasks.test_subset so "
                          "that every task's classes appear in both splits") from None


def _refuses_class_groups(per_task: int, classes: int) -> bool:
    """Whether :func:`_check_class_groups` refuses a class split of ``classes`` classes into tasks of ``per_task``."""
    try:
        _check_class_groups(per_task, classes)
    except ConfigError:
        return True
    return False


def _check_class_groups(per_task: int, classes: int) -> None:
    """A class split of ``classes`` classes into tasks of ``per_task``: refused where a task would hold one class
    alone (scored within its own head, it is right whatever the model does, which lifts every method's ACC) or where
    ``per_task`` exceeds the classes there are (one task: nothing learnt in sequence)."""
    if per_task > classes:
        raise ConfigError(f"tasks.classes_per_task: {per_task} is more than the source's {classes} classes, which "
                          "would make one task of them all; choose at most half of them, so that there are tasks to "
                          "learn one after another")
    sizes = [min(per_task, classes - i) for i in range(0, classes, per_task)]
    if len(sizes) > 1 and sizes[-1] == 1:
        fits = [k for k in range(2, classes // 2 + 1) if classes % k != 1]
        way = (f"choose one that leaves every task 2 classes or more ({', '.join(map(str, fits))})" if fits else
               "the source has too few classes for tasks of 2 or more: use tasks.protocol = 'permuted'")
        raise ConfigError(f"tasks.classes_per_task: {per_task} splits the source's {classes} classes into tasks of "
                          f"{', '.join(map(str, sizes))}: a task of one class is scored within its own head, where "
                          f"it is always right, which lifts every method's ACC; {way}")


def _load_source(cfg: ContinualConfig, progress: bool) -> tuple:
    """:func:`load_source` of the config's ``[tasks]``, its errors naming the continual keys (``tasks.root``, not
    ``neurosim train``'s ``data.root``)."""
    from neurosim.data.registry import DatasetNotFoundError

    tc = cfg.tasks
    try:
        return load_source(tc.source, tc.time_steps, tc.downsample, tc.train_subset, tc.test_subset, tc.root,
                           progress)
    except DatasetNotFoundError as e:  # not on disk: where it was looked for, and how to get it
        raise DatasetNotFoundError(_continual_keys(str(e))) from None
    except ConfigError:  # names its own key (tasks.downsample)
        raise
    except ValueError as e:
        raise ConfigError(f"tasks.source: {_continual_keys(str(e))}") from None


def _continual_keys(message: str) -> str:
    return message.replace("data.root", "tasks.root")


@dataclass
class ContinualRun:
    """What :func:`run_continual` produced."""

    run_dir: Path
    results: dict[str, list[MethodResult]]
    summary: dict[str, dict[str, float]]
    task_names: list[str]
    seconds: float
    #: the models this run's (method, seed)s left in ``models/``, trained with its settings, in the order of its
    #: methods and seeds (not every ``.pt`` there: an earlier run's other methods, a copy of one's own)
    models: list[Path] = field(default_factory=list)


def _setting(cfg: ContinualConfig, tasks: Sequence[Task]) -> str:
    m, t = cfg.model, cfg.train
    n_in = math.prod(tasks[0].input_shape)
    if m.kind == "mlp":
        net = "LIF MLP " + "-".join(str(v) for v in (n_in, *m.hidden, m.num_classes))
    else:
        net = (f"LIF conv net on {list(tasks[0].input_shape)}, channels {list(m.channels)}, "
               f"hidden {list(m.hidden)}, {m.num_classes} outputs")
    if m.recurrent:
        net += " with recurrent hidden layers (dense feedback, protected by HLOP too)"
    head = "shared head" if tasks[0].classes is None else "one head per task"
    sizes = "pmnist_paper preset" if cfg.hlop.preset == "pmnist_paper" else [list(s) for s in cfg.hlop.sizes]
    penalty = (f"- activity penalty (every method): λ = {t.activity_penalty:g} on the hidden layers' "
               f"{'synaptic operations' if t.activity_penalty_on == 'synops' else 'firing rate'}\n"
               if t.activity_penalty > 0 else "")
    return (f"- tasks: {len(tasks)} × `{cfg.tasks.protocol}` from `{cfg.tasks.source}` ({head}; "
            f"{len(tasks[0].y_train)} train / {len(tasks[0].y_test)} test samples per task, T = {tasks[0].time_steps})\n"
            f"- model: {net}, readout `{m.readout}`; LIF τ = {cfg.neuron.tau_mem_ms} ms, v_th = {cfg.neuron.v_th}\n"
            f"- training (every method): {t.method.upper()}, loss `{t.loss}`, {t.optimizer} lr {t.lr}, "
            f"{t.epochs} epoch(s) per task, batch {t.batch_size}, biases/BN/thresholds frozen after task 0: "
            f"{t.freeze_after_first}\n"
            f"{penalty}"
            f"- HLOP: Hebbian lr {list(cfg.hlop.lr)}, {cfg.hlop.iterations} Oja iterations per pass, new subspace rows "
            f"per layer and task {sizes}, {cfg.hlop.hebbian_epochs} extra Hebbian epoch(s); EWC λ = {cfg.ewc.lam:g}")


#: settings a (method, seed) result does not depend on: the run's name and folder, which methods and seeds it runs,
#: and where and how it runs (as a resumed training run may change them)
_NOT_IN_RESULTS = ("name", "out_dir", "methods", "seeds", "train.threads", "train.device", "tasks.root")


def _fingerprints(cfg: ContinualConfig) -> tuple[str, str]:
    """The hash of every setting one (method, seed) result depends on, and the hash earlier versions wrote (which
    also covered threads, device and data root): a result carrying either is of these settings."""
    d = config_to_dict(cfg)

    def digest(drop: tuple[str, ...]) -> str:
        settings = {k: ({kk: vv for kk, vv in v.items() if f"{k}.{kk}" not in drop} if isinstance(v, dict) else v)
                    for k, v in d.items() if k not in drop}
        return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]

    return digest(_NOT_IN_RESULTS), digest(("name", "out_dir", "methods", "seeds"))


def _check_before_training(cfg: ContinualConfig, tasks: Sequence[Task]) -> None:
    """The config errors that would otherwise surface only after some methods had trained."""
    from neurosim.training.trainer import resolve_device

    resolve_device(cfg.train.device)  # a ConfigError naming train.device
    model = build_continual_model(cfg, tasks)
    activity_penalty(cfg, model)  # a ConfigError naming train.activity_penalty (a model it cannot count)
    if "hlop" in cfg.methods:
        hlop_plan(cfg, model, len(tasks))


def _accuracy_figures(run_dir: Path, methods_only: bool = False) -> list[Path]:
    """The accuracy figures a continual run writes in ``run_dir`` and finds there: ``accuracy_<method>.png`` for every
    method, and ``accuracy_matrices.png`` unless ``methods_only``; not another ``accuracy_*.png`` (a user's own)."""
    names = [f"accuracy_{m}.png" for m in CONTINUAL_METHODS] + ([] if methods_only else ["accuracy_matrices.png"])
    return [run_dir / n for n in names if (run_dir / n).is_file()]


def _load_finished(path: Path, fingerprints: tuple[str, ...]) -> MethodResult | None:
    try:
        saved = json.loads(path.read_text())
        if saved.get("fingerprint") not in fingerprints:
            return None
        r = saved["result"]
        return MethodResult(r["method"], int(r["seed"]), r["matrix"], float(r["seconds"]),
                            float("nan") if r.get("cpu_seconds") is None else float(r["cpu_seconds"]),
                            r.get("activity"))
    except (OSError, ValueError, KeyError, TypeError):  # unreadable or from another version: train it again
        return None


def _has_model(run_dir: Path, method: str, seed: int, fingerprints: tuple[str, ...]) -> bool:
    """Whether ``models/`` holds the model of ``(method, seed)`` trained with these settings."""
    return _trained_with(model_path(run_dir, method, seed), fingerprints)


def _trained_with(path: Path, fingerprints: tuple[str, ...]) -> bool:
    """Whether ``path`` is a continual model trained with the settings of one of ``fingerprints`` (its record read
    with the weights mapped, not loaded)."""
    from neurosim.training.checkpoint import CheckpointError, load_checkpoint

    if not path.is_file():
        return False
    try:
        return load_checkpoint(path, mmap=True).get("continual", {}).get("fingerprint") in fingerprints
    except (CheckpointError, AttributeError):
        return False


def _keep_other_settings(cfg: ContinualConfig, run_dir: Path, fingerprints: tuple[str, ...], resume: bool,
                         classes: int | None = None) -> None:
    """Refuse (``resume``) to mix this run into a folder whose finished results come from other settings, which it
    would overwrite; without ``resume`` (``--no-resume``: start over) those results are removed. ``classes``: the
    number of classes of the source, which tells whether the folder's settings are a class split refused now (then
    the refusal says that they cannot be rerun, not to rerun them)."""
    from neurosim.continual.config import load_continual_config
    from neurosim.runs import _remove_outputs_of_each, other_settings

    other = []
    for path in sorted((run_dir / "finished").glob("*.json")):
        try:
            if json.loads(path.read_text()).get("fingerprint") not in fingerprints:
                other.append(path)
        except (OSError, ValueError, AttributeError):  # unreadable: it would be trained again anyway
            continue
    if not other:
        return
    if not resume:  # starting over: the earlier settings' results and the summary made of them go
        models = [run_dir / "models" / f"{p.stem}.pt" for p in other]
        for path in [*other, run_dir / "results.json", run_dir / "report.md", *_accuracy_figures(run_dir), *models]:
            path.unlink(missing_ok=True)
        # their estimates and exports (models/estimate-<method>_seed<S>/ ...) with them, all before any warning
        _remove_outputs_of_each(models)
        return
    changed = other_settings(run_dir, config_to_dict(cfg), load_continual_config, _NOT_IN_RESULTS)
    why = settings_differ(changed) if changed else "a fingerprint of other settings"
    held = f"{run_dir} holds results of other settings ({', '.join(p.stem for p in other)}: {why})"
    try:
        saved = load_continual_config(run_dir / "config.toml")
    except (OSError, ValueError):  # (none, or unreadable: nothing tells the settings)
        saved = None
    if (saved is not None and classes is not None and saved.tasks.protocol == "class_split"
            and saved.tasks.source == cfg.tasks.source
            and _refuses_class_groups(saved.tasks.classes_per_task, classes)):
        models = [run_dir / "models" / f"{p.stem}.pt" for p in other]
        raise ConfigError(
            f"{held}, a class split refused now (tasks.classes_per_task = {saved.tasks.classes_per_task} of the "
            f"source's {classes} classes), so that run cannot be continued: {_what_stays(models)}; choose another name "
            "(--set name=...) for this run, or pass --no-resume to replace those results with its own")
    raise ConfigError(f"{held}; rerun with those settings to continue it, choose another name (--set name=...), or "
                      "pass --no-resume to replace them")


def _what_stays(models: list[Path]) -> str:
    """What a run folder of settings refused now still serves: its results, report and kept ``models``."""
    kept = [p for p in models if p.is_file()]
    shown = ", ".join(p.name for p in kept[:4]) + (f" and {len(kept) - 4} more" if len(kept) > 4 else "")
    return ("its results.json and report.md stay" + (f", and its kept models ({kept[0].parent}: {shown}) still load "
                                                     "for neurosim evaluate, estimate and export" if kept else ""))


def _kept_under_refused_settings(run_dir: Path, fingerprints: tuple[str, ...]) -> str:
    """For the refusal of a run's settings (a class split that leaves a task one class): where ``run_dir`` holds
    results of them, finished by a neurosim that did not refuse them, what becomes of those and what to do; else
    ``""``."""
    done = []
    for path in sorted((run_dir / "finished").glob("*.json")):
        try:
            if json.loads(path.read_text()).get("fingerprint") in fingerprints:
                done.append(path)
        except (OSError, ValueError, AttributeError):
            continue
    if not done:
        return ""
    models = [run_dir / "models" / f"{p.stem}.pt" for p in done]
    return (f". {run_dir} holds results of these settings ({', '.join(p.stem for p in done)}), finished by a neurosim "
            f"that did not refuse them: they cannot be rerun or resumed, but {_what_stays(models)}. To train the "
            "sequence again, change the settings as above and give the run another name (--set name=...), or keep "
            "this folder with --no-resume, which replaces those results")


def _store_tasks_root(cfg: ContinualConfig, run_dir: Path, fingerprints: tuple[str, ...], own: set[Path],
                      moved: dict[str | None, list[str]]) -> None:
    """Store this run's ``tasks.root`` in the folder's other models of these settings (``models/*.pt`` but ``own``,
    this run's (method, seed)s): methods or seeds an earlier run of them ran and this one did not (``--methods
    hlop`` after a run of every method). Their tasks are the same, and this run found them there; each one rewritten
    is added to ``moved`` under the root it stored. A model of other settings, or no continual model, is left as
    it is."""
    for path in sorted((run_dir / "models").glob("*.pt")):
        if path in own or not _trained_with(path, fingerprints):
            continue
        updated, stored = update_tasks_root(path, cfg)
        if updated:
            moved.setdefault(stored, []).append(path.name)


def _warn_root_moved(moved: dict[str | None, list[str]], cfg: ContinualConfig, run_dir: Path) -> None:
    """Say which kept models stored another ``tasks.root`` than this run's, now stored in them instead."""
    from neurosim._stack import caller_stacklevel as _caller_stacklevel

    if not moved:
        return
    now = "the dataset cache (none)" if cfg.tasks.root is None else str(Path(cfg.tasks.root).resolve())
    was = "; ".join(f"{', '.join(names)} stored "
                    + ("the dataset cache (none)" if root is None else root) for root, names in moved.items())
    warnings.warn(f"tasks.root: models reused from an earlier run in {run_dir / 'models'} (this run's, and any other "
                  f"of the same settings) were trained on tasks found elsewhere ({was}); they now store this run's, "
                  f"{now}, where neurosim evaluate, estimate and export look for their tasks (the results are "
                  "reused: tasks.root is where the data lives, not what they are)", RuntimeWarning,
                  stacklevel=_caller_stacklevel())


def run_continual(cfg: ContinualConfig, progress: bool = True, log=print, resume: bool = True) -> ContinualRun:
    """Run every method of ``cfg`` for every seed on the task sequence; write the run folder.

    A run folder that holds a ``neurosim train`` or ``lsm`` run is refused before any work, ``resume`` or not.

    Args:
        log: called with one line per finished (method, seed); None is silent.
        resume: reuse the (method, seed) results a previous run of the same settings left in ``finished/``.
    """
    from neurosim.runs import refuse_other_commands_run

    t0 = time.perf_counter()
    unused = ineffective_continual_settings(cfg)
    if unused:
        warnings.warn(f"setting{'s' * (len(unused) > 1)} with no effect in this config: {'; '.join(unused)}",
                      UserWarning, stacklevel=2)
    run_dir = check_output_folder(Path(cfg.out_dir) / cfg.name, "out_dir")
    with hold_run_folder(run_dir, "continual"):  # a second run in the same folder is refused
        refuse_other_commands_run(run_dir, "continual")  # a train or lsm run there, --no-resume or not
        return _run_in_folder(cfg, run_dir, progress, log, resume, t0)


def _run_in_folder(cfg: ContinualConfig, run_dir: Path, progress: bool, log, resume: bool, t0: float
                   ) -> ContinualRun:
    from neurosim.runs import remove_outputs_of

    source = _load_source(cfg, progress)
    fingerprints = _fingerprints(cfg)
    try:
        first_tasks = build_tasks(cfg, cfg.seeds[0], source)
    except ConfigError as e:  # (a folder of these settings' results: made by a neurosim that ran them)
        raise ConfigError(f"{e}{_kept_under_refused_settings(run_dir, fingerprints)}") from None
    _check_before_training(cfg, first_tasks)
    finished_dir = run_dir / "finished"
    fingerprint = fingerprints[0]
    _keep_other_settings(cfg, run_dir, fingerprints, resume, classes=len(set(source[1].tolist())))
    finished_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.toml", dumps_toml(cfg))  # the settings finished/ is filled with
    results: dict[str, list[MethodResult]] = {m: [] for m in cfg.methods}
    moved: dict[str | None, list[str]] = {}  # a kept model's earlier tasks.root -> the models that stored it
    for seed in cfg.seeds:  # one seed's tasks in memory at a time (permuted copies of the data)
        tasks = first_tasks if seed == cfg.seeds[0] else build_tasks(cfg, seed, source)
        for method in cfg.methods:
            path = finished_dir / f"{method}_seed{seed}.json"
            r = _load_finished(path, fingerprints) if resume else None
            reused = r is not None
            if r is None:
                r = run_method(cfg, method, tasks, seed=seed, progress=progress)
                # an earlier model's estimate and export go before the new model takes its place (not after: they
                # would sit beside it as its own if the run stopped in between)
                remove_outputs_of(model_path(run_dir, method, seed))
                # the model before the result that says it finished: a finished result has its model beside it
                save_continual_model(model_path(run_dir, method, seed), r.state, cfg, method, seed,
                                     [t.name for t in tasks], r.matrix, fingerprint)
                atomic_write_text(path, json.dumps({"fingerprint": fingerprint, "result": r.as_dict()}))
            results[method].append(r)
            kept = _has_model(run_dir, method, seed, fingerprints)
            if reused and kept:  # the tasks are where this run found them (tasks.root may differ from the model's)
                updated, stored = update_tasks_root(model_path(run_dir, method, seed), cfg)
                if updated:
                    moved.setdefault(stored, []).append(model_path(run_dir, method, seed).name)
            if log is not None:
                bwt = "—" if r.bwt != r.bwt else f"{r.bwt:+.2f}"
                log(f"{method:9s} seed {seed}: ACC {r.acc:6.2f} %  BWT {bwt}  ({r.seconds:.1f} s"
                    + (", finished by an earlier run" if reused else "")
                    + ("" if kept else
                       "; its model was not kept: finished by a neurosim before models/ (--no-resume trains it "
                       "again)") + ")")
    _store_tasks_root(cfg, run_dir, fingerprints, {model_path(run_dir, m, r.seed) for m, rs in results.items()
                                                   for r in rs}, moved)
    _warn_root_moved(moved, cfg, run_dir)
    task_names = [t.name for t in first_tasks]
    summary = {m: summarize(rs) for m, rs in results.items()}
    matrices = {m: rs[0].matrix for m, rs in results.items()}
    fig_names = ["accuracy_matrices.png"]
    from neurosim.viz import save_figure

    for stale in _accuracy_figures(run_dir, methods_only=True):  # an earlier run's methods that this one did not run
        if stale.stem[len("accuracy_"):] not in matrices:
            stale.unlink()
    save_figure(accuracy_heatmaps(matrices, title=f"accuracy matrices, seed {cfg.seeds[0]}"),
                run_dir / "accuracy_matrices.png")
    for m, matrix in matrices.items():
        save_figure(accuracy_heatmap(matrix, title=f"{m}, seed {cfg.seeds[0]}"), run_dir / f"accuracy_{m}.png")
    payload = {
        "name": cfg.name, "tasks": task_names, "seeds": list(cfg.seeds),
        "summary": summary,
        "runs": {m: [r.as_dict() for r in rs] for m, rs in results.items()},
        "config": config_to_dict(cfg),
    }
    atomic_write_text(run_dir / "config.toml", dumps_toml(cfg))  # with the results it describes
    atomic_write_text(run_dir / "results.json", json.dumps(payload, indent=1))
    models = [model_path(run_dir, m, r.seed) for m, rs in results.items() for r in rs
              if _has_model(run_dir, m, r.seed, fingerprints)]
    report = report_markdown(cfg.name, summary, _setting(cfg, first_tasks), fig_names, cfg.seeds,
                             models=[p.name for p in models])
    atomic_write_text(run_dir / "report.md", report)
    return ContinualRun(run_dir, results, summary, task_names, time.perf_counter() - t0, models)

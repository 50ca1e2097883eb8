"""Whole jobs behind the CLI: train a config into a run folder, evaluate a checkpoint, and the demo.

A run folder ``<out_dir>/<name>/`` ends up with ``config.toml``, ``metrics.jsonl``, ``checkpoint.pt``,
``report.md`` and PNG figures (training curves, input event frames, a spike raster of one sample through every
layer).
"""

from __future__ import annotations

import json
import re
import shlex
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from neurosim._io import atomic_write_text, check_output_folder, hold_run_folder
from neurosim.config import (
    SHIPPED_CONFIGS, ConfigError, RunConfig, config_from_checkpoint, config_to_dict, ineffective_settings, load_config,
)
from neurosim.data.pipeline import DataBundle, _load_frames, eval_loader, make_loaders, recording_spans_us
from neurosim.data.registry import get_dataset
from neurosim.nn import build_model
from neurosim.training import (Trainer, best_epoch, load_checkpoint, predict, resolve_device, seed_everything,
                               stopped_early)
from neurosim.training.checkpoint import (PYTHON_MODEL_ADVICE, ResumedEpochError, _caller_stacklevel,
                                         check_resumable, checkpoint_class_names, config_differences, load_weights,
                                         save_checkpoint, warn_if_part_way)
from neurosim.training.distributed import World, barrier, process_group_from_env

__all__ = ["RunResult", "demo", "estimate_run", "evaluate_checkpoint", "layer_spikes", "load_or_train", "load_run",
           "train_run", "train_seeds", "write_report"]

CONFIGS = SHIPPED_CONFIGS  # (the name tests and older scripts use)


@dataclass
class RunResult:
    """What :func:`train_run` produced."""

    run_dir: Path
    history: list[dict[str, Any]]
    model: torch.nn.Module
    trainer: Trainer
    data: DataBundle
    seconds: float


def _check_input_shape(cfg: RunConfig, data: DataBundle) -> None:
    sample = tuple(data.train_frames.shape[2:])  # frames are [N, T, P, H, W]
    want = tuple(cfg.model.input_shape)
    if cfg.model.kind == "conv" and sample != want:
        raise ConfigError(f"model.input_shape: is {list(want)} but dataset {cfg.data.dataset!r} gives frames of "
                          f"shape {list(sample)} per step; set model.input_shape = {list(sample)}")
    if cfg.model.kind == "mlp" and torch.Size(sample).numel() != torch.Size(want).numel():
        raise ConfigError(f"model.input_shape: {list(want)} has {torch.Size(want).numel()} inputs but dataset "
                          f"{cfg.data.dataset!r} gives {torch.Size(sample).numel()} per step ({list(sample)})")


def _check_before_loading(cfg: RunConfig) -> None:
    """What the config alone decides, checked before any data is loaded or folder written: the dataset exists (and
    the run folder is not among a folder dataset's recordings), the device is there, and the model can be built on
    the configured input shape."""
    from neurosim.data.augment import AugmentError, check_frames
    from neurosim.data.pipeline import check_augment
    from neurosim.data.registry import get_dataset

    try:
        info = get_dataset(cfg.data.dataset)
    except ValueError as e:
        raise ConfigError(f"data.dataset: {e}") from None
    folder = info.extra.get("folder")  # a folder dataset: the run must not write among its recordings
    run_dir = (Path(cfg.out_dir) / cfg.name).resolve()
    if folder is not None and (run_dir == folder or any(run_dir.is_relative_to(folder / split)
                                                        for split in ("train", "test"))):
        raise ConfigError(f"out_dir, name: the run folder {run_dir} is among the recordings of data.dataset = "
                          f"{cfg.data.dataset} (its checkpoint, config.toml and report.md would go there); choose "
                          "another out_dir or name")
    # (before the frames are built: the first conversion of a large dataset takes long) every registered dataset's
    # and folder's events have a y, so its frames are [N, T, P, H, W], a one-row sensor's too (H = 1)
    width, height, polarities = info.sensor_size
    check_augment(cfg.data, info)  # as make_loaders does, before it loads anything
    try:
        check_frames(cfg.data.augment, (1, cfg.data.time_steps, polarities, height, width), torch.uint8)
    except AugmentError as e:
        raise ConfigError(f"data.{e} (dataset {info.name!r})") from None
    if cfg.train.patience is not None and not cfg.data.val_split:
        raise ConfigError(f"train.patience: = {cfg.train.patience} stops training on validation accuracy, but there is "
                          "no validation split; set data.val_split (e.g. 0.1) too, or train.patience = none")
    if cfg.train.loss in ("max_ce", "last_ce") and cfg.model.readout == "spikes":
        what = "maximum over time" if cfg.train.loss == "max_ce" else "last step"
        warnings.warn(f"train.loss = {cfg.train.loss} on spiking outputs: each output's {what} is 0 or 1, so most "
                      "samples tie and the loss barely moves; it is the read-out of a membrane "
                      "(--set model.readout=membrane), as in Cramer et al.'s SHD baselines", UserWarning, stacklevel=2)
    unused = ineffective_settings(cfg)
    if unused:
        warnings.warn(f"setting{'s' * (len(unused) > 1)} with no effect in this config: {'; '.join(unused)}",
                      UserWarning, stacklevel=2)
    resolve_device(cfg.train.device)  # a ConfigError naming train.device
    check_output_folder(Path(cfg.out_dir) / cfg.name, "out_dir")
    try:
        with torch.random.fork_rng(devices=[]):  # a trial build: the run's initialisation draws stay as they were
            build_model(cfg.model, cfg.neuron)
    except ValueError as e:
        raise ConfigError(str(e) if str(e).startswith("model.") else f"model: {e}") from None


def _check_labels(cfg: RunConfig, data: DataBundle) -> None:
    """Labels past ``model.num_classes``, or past the class names the dataset's files give, are an error; more
    outputs than the dataset has classes (as its registry entry or its files name them: a folder's class folders,
    SHD-format files' ``extra/keys``) warn, as when a shipped config's ``num_classes`` was kept for recordings of
    one's own: the outputs of no class are never a target, and they stay in the model the estimate and the export
    take."""
    top = max(int(data.train.labels.max()), int(data.test.labels.max()))
    names = data.info.class_names(cfg.data.root)
    if names and top >= len(names):  # (SHD-format files: loading them says so; frames cached before did not)
        raise ConfigError(f"data.dataset: dataset {cfg.data.dataset!r} has labels up to {top} but its files name "
                          f"{len(names)} classes, and a label is its class's index there; `neurosim datasets check "
                          f"{cfg.data.dataset}` names the files")
    if top >= cfg.model.num_classes:
        raise ConfigError(f"model.num_classes: is {cfg.model.num_classes} but dataset {cfg.data.dataset!r} has labels "
                          f"up to {top}; set model.num_classes = {top + 1}")
    classes = len(names) or data.info.num_classes
    if top < classes < cfg.model.num_classes:
        warnings.warn(f"model.num_classes: is {cfg.model.num_classes} but dataset {cfg.data.dataset!r} has "
                      f"{classes} classes: {cfg.model.num_classes - classes} of the model's outputs are no class's, "
                      f"never a target, and stay in what neurosim estimate and export take; set model.num_classes = "
                      f"{classes}", RuntimeWarning, stacklevel=_caller_stacklevel())


#: a dataset one row high (audio) whose frames' steps last less than this share of neuron.dt_ms warns
SHORT_STEP_SHARE = 0.25
#: training recordings read at the start of a run to tell how long they last (the cached frames do not say)
SPAN_SAMPLES = 32


def _warn_short_steps(cfg: RunConfig, data: DataBundle) -> None:
    """Warn where an audio dataset's recordings (one row high: SHD, SSC, a folder of AudioToSpikes' events) are so
    short that each of the ``data.time_steps`` frames ToFrame cuts them into lasts under :data:`SHORT_STEP_SHARE` of
    ``neuron.dt_ms``. The frames always have ``T`` steps (a short clip is stretched, not cut to a few steps), so
    training sees the same steps; but what a step is said to last, ``neuron.dt_ms``, is then far too long for the
    time constants ``neurosim export`` writes and the latency and energy per inference ``neurosim estimate``
    reports. Camera datasets are left alone: their configs take ``dt_ms`` as the neurons' step only."""
    info = data.info
    if info.sensor_size[1] != 1:
        return
    try:
        spans_us = recording_spans_us(info, cfg.data.root, samples=SPAN_SAMPLES)
    except (OSError, ValueError):  # unreadable now (the frames came from the cache): nothing to measure
        return
    if not len(spans_us):
        return
    clip_ms, dt_ms, steps = float(np.median(spans_us)) / 1e3, cfg.neuron.dt_ms, cfg.data.time_steps
    step_ms = clip_ms / steps
    if step_ms >= SHORT_STEP_SHARE * dt_ms:
        return
    warnings.warn(
        f"dataset {info.name!r}: its recordings last about {clip_ms:.3g} ms (the median of {len(spans_us)} training "
        f"recordings), and the frames stretch each over data.time_steps = {steps} steps of about {step_ms:.2g} ms, "
        f"while neuron.dt_ms = {dt_ms:g} ms says a step lasts {dt_ms / step_ms:.0f}× longer. Training sees the same "
        "steps either way, but the time constants `neurosim export` writes and the latency and energy per inference "
        f"`neurosim estimate` reports take each step to last neuron.dt_ms: set neuron.dt_ms = {step_ms:.2g} (with "
        "neuron.tau_mem_ms, and tau_syn_ms where set, scaled alike, which keeps β), or give `neurosim estimate "
        f"--step-ms {step_ms:.2g}` and `neurosim export --dt-s {step_ms / 1e3:.2g}`", UserWarning,
        stacklevel=_caller_stacklevel())


STALE_MARK = "> **A new run started over in this folder**"


def _mark_report_stale(run_dir: Path) -> None:
    """Head the folder's ``report.md`` with a note that it describes the earlier run (once; kept, not deleted)."""
    report = run_dir / "report.md"
    if not report.is_file():
        return
    text = report.read_text(encoding="utf-8")
    if text.startswith(STALE_MARK):
        return
    note = (f"{STALE_MARK} ({time.strftime('%Y-%m-%d %H:%M')}) and has not finished: this report, "
            "its figures and until the new run's first checkpoint `checkpoint.pt` are the earlier run's; "
            "`metrics.jsonl` and `config.toml` are the new run's once it has trained an epoch.\n\n")
    atomic_write_text(report, note + text)


def remove_outputs_of(checkpoint: str | Path) -> list[Path]:
    """Remove what neurosim wrote, at its default places, of the model in ``checkpoint`` (a file about to be replaced
    by another run's model, or gone): the estimate folder beside it (``estimate/`` for a run's ``checkpoint.pt``,
    ``estimate-<stem>/`` for any other file: :func:`~neurosim.training.checkpoint.beside_checkpoint`), its NIR export
    (``model.nir`` / ``model-<stem>.nir``) and the estimate of that export (``model-<stem>-estimate/``). Those would
    otherwise sit beside the new model as if they were its own.

    Only neurosim's files go: in a folder that holds an estimate's ``estimate.json`` or the mark of one that stopped
    part-way (:func:`neurosim.estimation.is_estimate_folder`, as ``neurosim estimate`` decides which files it may
    replace), the files an estimate and its studies write (:func:`~neurosim.estimation.estimate_output_names`), and
    the folder itself if nothing else is left in it; the NIR file if ``neurosim export`` wrote it. Anything else there
    (notes of one's own, a NIR file of another tool, an ``estimate.json`` of one's own) stays.

    Returns:
        The files and folders removed.
    """
    removed, said = _remove_outputs(checkpoint)
    for message in said:
        warnings.warn(message, RuntimeWarning, stacklevel=_caller_stacklevel())
    return removed


def _remove_outputs(checkpoint: str | Path) -> tuple[list[Path], list[str]]:
    """:func:`remove_outputs_of`'s work, ``(removed, warnings)``: the warnings (what stayed, and why) are returned,
    not given, so that a caller removing several models' outputs removes them all before a warning that ``-W error``
    turns into an exception can stop it."""
    from neurosim.estimation import estimate_output_names, is_estimate_folder
    from neurosim.export.cli import _exported_by_neurosim
    from neurosim.training.checkpoint import beside_checkpoint

    path = Path(checkpoint)
    removed: list[Path] = []
    left: dict[str, list[Path]] = {}  # why -> what stayed

    def remove(item: Path) -> None:
        try:
            if item.is_dir():
                item.rmdir()
            else:
                item.unlink()
            removed.append(item)
        except OSError as e:  # (the run's own work is done or to do: a file left is said, not raised)
            left.setdefault(f"could not be removed ({e.strerror or e})", []).append(item)

    folders = [beside_checkpoint(path, "estimate")]
    nir = beside_checkpoint(path, "model", ".nir")
    try:
        ours = nir.is_file() and _exported_by_neurosim(nir)
    except OSError as e:  # (unreadable: whose it is cannot be told, so it stays)
        left.setdefault(f"could not be read ({e.strerror or e})", []).append(nir)
        ours = False
    if ours:
        remove(nir)
        folders.append(nir.parent / f"{nir.stem}-estimate")  # neurosim estimate --nir's default for it
    for folder in folders:
        try:
            if not is_estimate_folder(folder):  # no estimate's folder: not neurosim's to clear
                continue
            for name in estimate_output_names(folder):
                remove(folder / name)
            if not any(folder.iterdir()):
                remove(folder)
        except OSError as e:  # a folder that cannot be listed or searched (its permissions)
            left.setdefault(f"could not be read ({e.strerror or e})", []).append(folder)
    said = []
    for why, items in left.items():
        them = len(items) > 1
        what = (f"{'they are' if them else 'it is'} of the model {path} held before it was replaced, not of the new "
                f"one; remove {'them' if them else 'it'} by hand" if why.startswith("could not be removed") else
                f"{'they' if them else 'it'} may hold what neurosim made of the model {path} held before it was "
                "replaced, which is not of the new one; check by hand")
        said.append(f"{', '.join(map(str, items))} {why}: {what}")
    return removed, said


def _remove_outputs_of_each(checkpoints) -> list[Path]:
    """:func:`remove_outputs_of` for each of ``checkpoints``, every one's outputs removed before the first warning
    is given (under ``-W error`` a warning about one model raised before the next model's outputs were removed)."""
    removed, said = [], []
    for path in checkpoints:
        gone, words = _remove_outputs(path)
        removed += gone
        said += words
    for message in said:
        warnings.warn(message, RuntimeWarning, stacklevel=_caller_stacklevel())
    return removed


def _file_identity(path: Path) -> tuple[int, int] | None:
    """``path``'s inode and modification time, or None where there is no file: an atomic write replaces both."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


def _check_resumable(cfg: RunConfig, run_dir: Path) -> None:
    """Before any data is loaded: the folder's checkpoint, if any, may continue as ``cfg`` (the Trainer asks the same
    :func:`~neurosim.training.checkpoint.check_resumable` again when it resumes). Only the checkpoint's config and
    record are read; its tensors stay mapped."""
    ckpt = run_dir / "checkpoint.pt"
    if ckpt.is_file():
        payload = load_checkpoint(ckpt, mmap=True)
        check_resumable(payload, cfg, cfg.train.epochs, run_dir)
        _check_moved_folder(payload, cfg, run_dir)


def _check_moved_folder(payload: dict, cfg: RunConfig, run_dir: Path) -> None:
    """A run on ``folder:OLD`` resumed on ``folder:NEW`` (which :func:`check_resumable` lets pass: the recordings
    moved) must find the classes it was trained on there, in the same order; else it is another dataset."""
    was = payload.get("config", {}).get("data", {}).get("dataset")
    kept = payload.get("class_names")
    if was == cfg.data.dataset or not str(was).startswith("folder:") or not isinstance(kept, list):
        return
    now = list(get_dataset(cfg.data.dataset).classes)
    if now != kept:
        raise ConfigError(f"data.dataset: {run_dir} was trained on {was}, whose classes were {', '.join(kept)}; "
                          f"{cfg.data.dataset} has {', '.join(now) or 'none'}: not those recordings moved, so the run "
                          "cannot continue on it; give the folder they moved to, choose another name (--set "
                          "name=...), or pass --no-resume to start over")


def _resumed_on_other_data(e: ResumedEpochError, cfg: RunConfig) -> ResumedEpochError:
    """``e`` worded for a run whose checkpoint, written part-way through an epoch, meets another number of training
    batches with the same config: the dataset on disk has changed since. The ways out are the command line's, as
    :func:`_check_resumable`'s."""
    of = f" of its {e.had}" if e.had is not None else ""
    return ResumedEpochError(
        f"{e.path} stopped part-way through epoch {e.epoch} (after batch {e.done}{of}), but the training split of "
        f"dataset {cfg.data.dataset!r} now gives {e.has} batch(es) per epoch: the data changed since, so that epoch "
        "cannot be finished; restore the data it was trained on to resume, choose another name (--set name=...), or "
        "pass --no-resume to start over", path=e.path, epoch=e.epoch, done=e.done, had=e.had, has=e.has)


def other_settings(run_dir: Path, now: dict, load, ignore: tuple[str, ...] = ("name", "out_dir")) -> list[str] | None:
    """The settings in which the run in ``run_dir`` (its ``config.toml``, read with ``load``) differs from ``now``
    (a :func:`config_to_dict` form): ``[]`` when the same, None when there is no readable ``config.toml``."""
    try:
        saved = config_to_dict(load(run_dir / "config.toml"))
    except (OSError, ValueError):  # no file, or one this version cannot read
        return None
    return sorted(k for k in config_differences(saved, now) if k not in ignore and k.split(".")[0] not in ignore)


#: files in a run folder that only that command's runs write
_RUN_FILES = {"train": ("checkpoint.pt", "best.pt", "metrics.jsonl"), "continual": ("finished", "results.json"),
              "lsm": ("metrics.json", "estimates.json")}


def run_folder_command(run_dir: str | Path) -> str | None:
    """The command whose run ``run_dir`` holds: ``"train"`` (``neurosim demo``'s too), ``"continual"`` or
    ``"lsm"``, told by the files only that command writes, else by the sections of its ``config.toml``; None for a
    folder that is missing, empty or does not tell."""
    from neurosim.config import config_command, tomllib

    run_dir = Path(run_dir)
    for command, files in _RUN_FILES.items():
        if any((run_dir / f).exists() for f in files):
            return command
    try:
        return config_command(tomllib.loads((run_dir / "config.toml").read_text(encoding="utf-8")))
    except (OSError, ValueError):  # none, or not TOML: nothing says whose it is
        return None


def refuse_other_commands_run(run_dir: str | Path, command: str,
                              elsewhere: str = "choose another name (--set name=...) or out_dir") -> None:
    """Before any work: raise a :class:`ConfigError` when ``run_dir`` holds a run of another command than
    ``command`` (``train``, ``continual``, ``lsm``; ``demo`` trains a ``train`` run), whose ``config.toml``,
    ``report.md`` and figures a run of ``command`` would write over. Neither ``--overwrite`` nor ``--no-resume``
    replaces another command's run: they are for a run of the same command. ``elsewhere`` says where to go instead.
    """
    other = run_folder_command(run_dir)
    if other is not None and other != ("train" if command == "demo" else command):
        raise ConfigError(f"{run_dir} holds a `neurosim {other}` run, whose config.toml and report.md a `neurosim "
                          f"{command}` run would write over; {elsewhere}")


def train_run(cfg: RunConfig, resume: bool = True, progress: bool = True, figures: bool = True) -> RunResult:
    """Train ``cfg`` into ``<out_dir>/<name>/``, resuming from its checkpoint when there is one. A folder that holds
    a ``neurosim continual`` or ``lsm`` run is refused before any work, ``resume`` or not.

    Started by ``torchrun``, it trains data-parallel in the process group torchrun describes
    (:mod:`neurosim.training.distributed`); process 0 builds the data cache first and alone writes the run folder
    and report.
    """
    with process_group_from_env(cfg.train.device) as world:
        return _train_run(cfg, resume, progress and world.is_main, figures and world.is_main, world)


def train_seeds(cfg: RunConfig, seeds: list[int], resume: bool = True, progress: bool = True,
                starting: Callable[[RunConfig], None] | None = None) -> tuple[dict, Path]:
    """Train ``cfg`` once per seed, into ``<out_dir>/<name>-seed<s>/`` (each an ordinary run: rerunning resumes it,
    a finished one is not trained again), and summarise them in ``<out_dir>/<name>-seeds.json``: each seed's final
    test accuracy and, with ``data.val_split``, its best validation epoch's test accuracy (the one to report), with
    their mean and sample standard deviation, and whether it stopped early (``train.patience``). A name that ends in
    ``-seed<N>`` (a seed run's own config) loses that ending first. Returns the summary and its path.
    ``starting(cfg)`` is called as each seed's run starts (the command line names the run an interrupt stops).

    A sweep of other seeds under the same name adds them to the summary: the earlier sweeps' runs stay in it, in the
    mean where they were trained with the same settings, and listed apart (``other_runs``, with the settings that
    differ) where not.

    ``resume=False`` starts every seed's run over. It leaves ``<name>-seeds.pending.json`` until the sweep is done,
    so that a sweep stopped part-way and run again with ``resume=True`` goes on as the first one would have: the
    runs it had started over resume, those it had not reached start over (not resume their earlier run).

    Raises:
        ConfigError: no seeds, a seed twice (as torch reads seeds: modulo 2**64), or one outside the seeds torch
            takes.
    """
    if not seeds:
        raise ConfigError("--seeds: give at least one seed")
    if len({s % 2**64 for s in seeds}) != len(seeds):
        raise ConfigError(f"--seeds: {seeds} repeats a seed (each seed trains one run; torch reads a seed modulo "
                          "2**64, so -1 and 2**64 - 1 are one seed)")
    base = re.sub(r"-seed-?\d+$", "", cfg.name) or cfg.name
    runs = []
    for seed in seeds:
        try:
            runs.append(replace(cfg, seed=seed, name=f"{base}-seed{seed}"))
        except ConfigError as e:
            raise ConfigError(f"--seeds: {e}") from None
    for one in runs:  # before any is trained (each run checks its own folder again as it starts)
        refuse_other_commands_run(Path(one.out_dir) / one.name, "train")
    out = Path(cfg.out_dir)
    path, pending = out / f"{base}-seeds.json", out / f"{base}-seeds.pending.json"
    started_over = _pending_sweep(pending)  # seed -> when an unfinished --no-resume sweep started it over
    mine = {s % 2**64 for s in seeds}
    if not resume:  # every run starts over, and a rerun after an interrupt must know which had
        out.mkdir(parents=True, exist_ok=True)
        started_over = {s: t for s, t in (started_over or {}).items() if s % 2**64 not in mine}
        started_over.update(dict.fromkeys(seeds, time.time()))
        _write_pending(pending, started_over)
        _summarise(path, base, [], drop=mine)  # (its runs are being trained again: their entries go, others stay)
    results = []
    for one in runs:
        if starting is not None:
            starting(one)
        run_dir = Path(one.out_dir) / one.name
        again = resume
        if resume and started_over and one.seed in started_over:  # a --no-resume sweep's: resume only what it
            ckpt = run_dir / "checkpoint.pt"  # had started over
            again = ckpt.is_file() and ckpt.stat().st_mtime >= started_over[one.seed]
        result = train_run(one, resume=again, progress=progress)
        history, best = result.history, best_epoch(result.history)
        results.append({"seed": one.seed, "run_dir": str(run_dir), "epochs": len(history),
                        "planned_epochs": one.train.epochs, "test_acc": history[-1].get("test_acc")}
                       | ({"best_epoch": best["epoch"], "best_val_acc": best["val_acc"],
                           "best_test_acc": best.get("test_acc"),
                           "stopped_early": stopped_early(history, one.train.patience)} if best is not None else {}))
    summary = _summarise(path, base, results, drop=mine, like=cfg)
    if started_over:  # this sweep's seeds are done; an earlier --no-resume sweep's others are still to go on
        _write_pending(pending, {s: t for s, t in started_over.items() if s % 2**64 not in mine})
    return summary, path


def _summarise(path: Path, base: str, results: list[dict], drop: set, like: RunConfig | None = None) -> dict:
    """Write ``<base>-seeds.json``: ``results`` and the earlier summary's runs of other seeds (``drop``: the seeds whose
    earlier entries go), with the mean and sample standard deviation over those trained with the same settings.

    An earlier seed's run whose ``config.toml`` differs from ``like`` (with that seed) in more than its name is listed
    under ``other_runs`` with the settings that differ, outside the mean; ``like=None`` keeps every earlier run."""
    earlier, others = [], []
    try:
        old = json.loads(path.read_text())
        old_runs = [r for r in old.get("runs", []) + old.get("other_runs", []) if int(r["seed"]) % 2**64 not in drop]
    except FileNotFoundError:
        old_runs = []
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        warnings.warn(f"{path} cannot be read ({e}): the summary lists this sweep's seeds only", RuntimeWarning,
                      stacklevel=3)
        old_runs = []
    for r in old_runs:
        r = {k: v for k, v in r.items() if k != "differs"}
        differs = [] if like is None else other_settings(
            Path(r.get("run_dir", "")), config_to_dict(replace(like, seed=int(r["seed"]))), load_config,
            ignore=("name", "out_dir"))
        if differs is None:  # the run's folder is gone or unreadable: kept as the summary had it
            differs = []
        (others if differs else earlier).append(r | ({"differs": differs} if differs else {}))
    runs = results + earlier
    summary = {"name": base, "seeds": [r["seed"] for r in runs], "runs": runs}
    for key in ("test_acc", "best_test_acc"):
        values = [r[key] for r in runs if r.get(key) is not None]
        if values and len(values) == len(runs):
            summary[key] = {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1
                            else None}
    if others:
        summary["other_runs"] = others
    if runs or others:
        atomic_write_text(path, json.dumps(summary, indent=2, allow_nan=False) + "\n")
    else:
        path.unlink(missing_ok=True)
    return summary


def _write_pending(pending: Path, started_over: dict) -> None:
    """Record (or, when empty, remove) the seeds a ``resume=False`` sweep has started over and since when."""
    if started_over:
        atomic_write_text(pending, json.dumps({"since_by_seed": {str(s): t for s, t in started_over.items()}}) + "\n")
    else:
        pending.unlink(missing_ok=True)


def _pending_sweep(pending: Path) -> dict | None:
    """The seeds an unfinished ``resume=False`` sweep recorded in ``pending`` started over, each with its start time
    (``{seed: since}``), or None."""
    try:
        record = json.loads(pending.read_text())
        if "since_by_seed" in record:
            return {int(s): float(t) for s, t in record["since_by_seed"].items()}
        return dict.fromkeys((int(s) for s in record["seeds"]), float(record["since"]))  # (the earlier format)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        warnings.warn(f"{pending} cannot be read ({e}): every seed's run resumes its checkpoint", RuntimeWarning,
                      stacklevel=3)
        return None


def _train_run(cfg: RunConfig, resume: bool, progress: bool, figures: bool, world: World) -> RunResult:
    t0 = time.perf_counter()
    run_dir = Path(cfg.out_dir) / cfg.name
    _check_before_loading(cfg)
    # process 0 holds the folder for the whole run: a second run started in it is refused (the processes of one
    # data-parallel run share it through process 0)
    with hold_run_folder(run_dir, "train") if world.is_main else nullcontext():
        return _train_in_folder(cfg, run_dir, resume, progress, figures, world, t0)


def _train_in_folder(cfg: RunConfig, run_dir: Path, resume: bool, progress: bool, figures: bool, world: World,
                     t0: float) -> RunResult:
    refuse_other_commands_run(run_dir, "train")  # (held: no other command's run can start in it meanwhile)
    if resume:
        _check_resumable(cfg, run_dir)
    elif world.is_main and (run_dir / "checkpoint.pt").is_file():
        # starting over: the earlier run's checkpoint stays until the new run's first one replaces it (a run stopped
        # before that loses nothing); its report says that it is the earlier run's
        _mark_report_stale(run_dir)
    # the folder's models as they are now: one this run replaces (starting over) or trains further (resuming) takes
    # what was made of it with it; a checkpoint only given a moved data root keeps its model (_store_data_root)
    earlier = ({path: _file_identity(path) for path in (run_dir / "checkpoint.pt", run_dir / "best.pt")}
               if world.is_main else {})
    # (stopped or not) the estimates and exports of an earlier model this run replaced or removed go with it
    try:
        result = _train_started(cfg, run_dir, resume, progress, figures, world, t0, earlier)
    except BaseException as stopped:
        _remove_outputs_of_replaced(earlier, resume, stopped)
        raise
    _remove_outputs_of_replaced(earlier, resume)
    return result


def _remove_outputs_of_replaced(earlier: dict[Path, tuple[int, int] | None], resumed: bool,
                                stopped: BaseException | None = None) -> None:
    """Remove, with a warning, what neurosim made of each model in ``earlier`` (a file's identity when the run
    started, :func:`_file_identity`) that the run replaced.

    Every replaced model's outputs are removed before the first warning is given: under ``-W error`` the warning
    about ``checkpoint.pt`` raised before ``best.pt``'s outputs were removed, which then passed for the new model's.

    ``stopped``, the error stopping the run, is the one that surfaces: an error met here meanwhile (a warning that
    ``-W error`` turns into one, a file that cannot be removed) would otherwise replace it and hide why the run
    stopped. It is added to ``stopped`` as a note (Python 3.11+) instead, and each model is still seen to."""
    def noted(what: str, e: Exception) -> None:
        if hasattr(stopped, "add_note"):  # Python 3.11+
            stopped.add_note(f"{what}: {type(e).__name__}: {e}")

    said = []  # (model, warning), given once every model's outputs are removed
    for path, identity in earlier.items():
        if identity is None or _file_identity(path) == identity:
            continue
        try:
            removed, words = _remove_outputs(path)
        except Exception as e:
            if stopped is None:
                raise
            noted(f"while removing what neurosim made of the model {path} held before this run", e)
            continue
        said += [(path, w) for w in words] + ([(path, _removed_message(removed, path, resumed))] if removed else [])
    for path, message in said:
        if stopped is None:
            warnings.warn(message, RuntimeWarning, stacklevel=_caller_stacklevel())
            continue
        try:
            warnings.warn(message, RuntimeWarning, stacklevel=_caller_stacklevel())
        except Exception as e:
            noted(f"while removing what neurosim made of the model {path} held before this run", e)


def _removed_message(removed: list[Path], path: Path, resumed: bool) -> str:
    """That what neurosim made of the model ``path`` held before this run (its estimate, its NIR export) was
    removed with it, ``removed`` (not empty) naming those files and folders."""
    made = sorted({str(p.relative_to(path.parent).parts[0]) for p in removed if p.is_relative_to(path.parent)})
    how = ("this run trained it further (resumed)" if resumed else "this run, started over, replaced it")
    return (f"{path.parent}: {', '.join(made)} described {path.name} as it was before {how}, and would have "
            f"passed for the new model's: neurosim's files there were removed (others stay); `neurosim "
            f"estimate --checkpoint {path}` or `neurosim export` makes them again")


def _train_started(cfg: RunConfig, run_dir: Path, resume: bool, progress: bool, figures: bool, world: World,
                   t0: float, earlier: dict[Path, tuple[int, int] | None]) -> RunResult:
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    seed_everything(cfg.seed)
    device = resolve_device(cfg.train.device)
    if world.is_main:  # builds the frame cache once; the other processes then read it
        data = make_loaders(cfg.data, seed=cfg.seed, device=device, progress=progress)
    barrier()
    if not world.is_main:
        data = make_loaders(cfg.data, seed=cfg.seed, device=device, progress=False)
    _check_input_shape(cfg, data)
    _check_labels(cfg, data)
    if world.is_main:
        _warn_short_steps(cfg, data)
    model = build_model(cfg.model, cfg.neuron)
    trainer = Trainer(model, cfg, run_dir, progress=progress, data_fingerprint=data.fingerprint,
                      class_names=data.info.class_names(cfg.data.root) or None)  # saved in its checkpoints
    try:
        history = trainer.fit(data.train, data.test, val_loader=data.val, resume=resume)
    except ResumedEpochError as e:  # the config is the checkpoint's (_check_resumable): its data changed
        raise _resumed_on_other_data(e, cfg) from None
    if world.is_main:
        _store_data_root(run_dir, cfg, earlier)
    result = RunResult(run_dir, history, model, trainer, data, time.perf_counter() - t0)
    if figures:
        write_report(result)
    return result


def _store_data_root(run_dir: Path, cfg: RunConfig, earlier: dict[Path, tuple[int, int] | None] | None = None
                     ) -> None:
    """A resumed run that trained no further (it had finished) wrote no checkpoint: where its checkpoints name
    another ``data.root`` than this run's (the data moved, and ``--set data.root=NEW`` said where), or another
    folder dataset (``--set data.dataset=folder:NEW``: the recordings moved), store this run's in them, with a
    warning, as evaluate, estimate and export look for the data where the checkpoint says.

    Each checkpoint's stored data settings are read with its tensors mapped, not loaded (every run asks, and data
    seldom moves); one that names another is read whole and written again with this run's, the rest of it as it was.
    ``earlier`` (a file's identity when the run started, :func:`_file_identity`) takes the new identity of a file
    rewritten so while it held the model it started with: the model is the same, and what was made of it stays."""
    moved, folders = {}, {}
    for path in (run_dir / "checkpoint.pt", run_dir / "best.pt"):
        if not path.is_file():
            continue
        data = load_checkpoint(path, mmap=True).get("config", {}).get("data")
        if not isinstance(data, dict):
            continue
        # (check_resumable let only a folder's move pass)
        folder_moved = str(data.get("dataset")).startswith("folder:") and data["dataset"] != cfg.data.dataset
        root_moved = data.get("root") != cfg.data.root
        if not (folder_moved or root_moved):
            continue
        payload = load_checkpoint(path)  # (not the mapped file's tensors: it is about to be replaced)
        data = payload["config"]["data"]
        if folder_moved:
            folders[path.name] = data["dataset"]
            data["dataset"] = cfg.data.dataset
        if root_moved:
            moved[path.name] = data.get("root")
            if cfg.data.root is None:
                data.pop("root", None)  # as config_to_dict leaves a None out
            else:
                data["root"] = cfg.data.root
        before = _file_identity(path)
        save_checkpoint(path, payload)
        if earlier is not None and earlier.get(path) == before:  # (its model as the run found it)
            earlier[path] = _file_identity(path)
    if folders:
        was = "; ".join(f"{name} stored {folder}" for name, folder in folders.items())
        warnings.warn(f"data.dataset: the run in {run_dir} was trained on recordings found elsewhere ({was}); its "
                      f"checkpoints now store this run's, {cfg.data.dataset}, where neurosim evaluate, estimate and "
                      "export look for its data", RuntimeWarning, stacklevel=_caller_stacklevel())
    if moved:
        was = "; ".join(f"{name} stored {'the dataset cache (none)' if root is None else root}"
                        for name, root in moved.items())
        warnings.warn(f"data.root: the run in {run_dir} was trained on data found elsewhere ({was}); its checkpoints "
                      f"now store this run's, {'the dataset cache (none)' if cfg.data.root is None else cfg.data.root}"
                      ", where neurosim evaluate, estimate and export look for its data", RuntimeWarning,
                      stacklevel=_caller_stacklevel())


def _figures(result: RunResult) -> dict[str, str]:
    from neurosim.viz import event_frames, raster, save_figure, training_curves

    run_dir, made = result.run_dir, {}
    save_figure(training_curves(result.history, title="training curves"), run_dir / "curves.png")
    made["Training curves"] = "curves.png"
    x0 = torch.as_tensor(result.data.test_frames[:1]).float()  # [1, T, P, H, W]
    label = int(result.data.test.labels[0])
    save_figure(event_frames(x0[0], title=f"input event frames (test sample 0, label {label})"),
                run_dir / "frames.png")
    made["Input event frames"] = "frames.png"
    x_seq = x0.transpose(0, 1).to(result.trainer.device)
    out_seq, layers = layer_spikes(result.model, x_seq)
    panels = {"input": x_seq[:, 0] > 0}
    panels.update({f"layer {name}": s[:, 0] for name, s in layers.items()})
    save_figure(raster(panels, title=f"spikes of test sample 0 through every layer (label {label}, "
                                     f"predicted {int(predict(out_seq, result.trainer.loss)[0])})"),
              run_dir / "raster.png")
    made["Spike raster through every layer"] = "raster.png"
    return made


def layer_spikes(model: torch.nn.Module, x_seq: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``(out_seq, {layer name: spikes [T, B, ...]})`` of every spiking layer of ``model`` on ``x_seq`` (the run's
    raster figure), a recurrent layer (:class:`neurosim.nn.RLIF`) as one layer under its own name (its LIF child,
    called once per step, would show the same spikes a second time), and a current-based one
    (:class:`neurosim.nn.CubaLIF`) too: :func:`neurosim.activity.record_outputs` reports its LIF child under the
    layer's name, and its synaptic current (an LI child) emits no spikes."""
    from neurosim.activity import record_outputs
    from neurosim.nn import LIF, RLIF

    out_seq, layers = record_outputs(model, x_seq, kinds=(LIF, RLIF))
    recurrent = [name for name, m in model.named_modules() if isinstance(m, RLIF)]
    return out_seq, {name: s for name, s in layers.items()
                     if not any(name.startswith(r + ".") for r in recurrent)}


def _processes(size: int, batch_size: int) -> str:
    if size == 1:
        return ""
    return (f", data-parallel over {size} processes ({size} × {batch_size} samples per optimizer step; the "
            "table's memory kept for backward is one process's)")


def selection_summary(history: list[dict], cfg: RunConfig, run_dir: Path) -> tuple[str | None, str | None]:
    """Two sentences on a run's ``history`` beyond its final accuracy, or None each: its best validation epoch (with
    that epoch's test accuracy, and whether ``best.pt`` holds it) and an early stop (``train.patience``). ``neurosim
    train`` prints them, report.md quotes them."""
    best, best_text, stop_text = best_epoch(history), None, None
    if best is not None:
        kept = run_dir / "best.pt"
        best_text = (f"best validation epoch {best['epoch']}: validation accuracy {100 * best['val_acc']:.2f} %, "
                     f"test accuracy {100 * best.get('test_acc', float('nan')):.2f} % ("
                     + (f"its weights: {kept})" if kept.is_file() else f"its weights are no longer kept: {kept} is "
                                                                       "missing)"))
    if stopped_early(history, cfg.train.patience):
        last = "epoch" if cfg.train.patience == 1 else f"{cfg.train.patience} epochs"
        stop_text = (f"stopped early after epoch {len(history)} of {cfg.train.epochs}: no better validation epoch in "
                     f"the last {last} (train.patience)")
    return best_text, stop_text


def _number(value, scale: float = 1.0, digits: int = 4) -> str:
    """A metric for a report table: ``–`` where an epoch lacks it (None, or not recorded)."""
    return "–" if value is None else f"{scale * value:.{digits}f}"


def write_report(result: RunResult, extra_sections: list[str] | None = None) -> Path:
    """Write ``report.md`` (and figures) for a finished run; returns its path.

    The folder's earlier ``report.md`` is removed before the figures are written, so a write that fails (a full
    disk) leaves no report describing figures of two runs; the ``OSError`` then says what is there."""
    cfg = result.trainer.config
    report = result.run_dir / "report.md"
    earlier = report.is_file()
    try:
        report.unlink(missing_ok=True)
        figs = _figures(result)
    except OSError as e:
        raise OSError(e.errno, f"{e.strerror or e} (writing the report of {result.run_dir}: "
                      + ("its earlier report.md was removed first, and " if earlier else "")
                      + "no report.md was written; the figures there may be partly this run's, partly an earlier "
                      "run's; checkpoint.pt and metrics.jsonl are this run's)", e.filename) from e
    last = result.history[-1]
    lines = [
        f"# neurosim run `{cfg.name}`",
        "",
        f"- dataset: `{cfg.data.dataset}` ({len(result.data.train.labels)} train / "
        + (f"{len(result.data.val.labels)} validation / " if result.data.val is not None else "")
        + f"{len(result.data.test.labels)} test samples, T = {cfg.data.time_steps} frames)",
        f"- model: `{cfg.model.kind}` SNN" + (", recurrent hidden layers (RLIF)" if cfg.model.recurrent else "")
        + f", {sum(p.numel() for p in result.model.parameters()):,} parameters; "
        + (f"current-based LIF (CubaLIF) τ_syn = {cfg.neuron.tau_syn_ms} ms, " if cfg.neuron.tau_syn_ms is not None
           else "LIF ")
        + f"τ = {cfg.neuron.tau_mem_ms} ms, dt = {cfg.neuron.dt_ms} ms, reset {cfg.neuron.reset}, "
        f"surrogate {cfg.neuron.surrogate}",
        f"- training: {cfg.train.method.upper()}, loss `{cfg.train.loss}`, {cfg.train.optimizer} lr {cfg.train.lr}, "
        f"{len(result.history)} epochs, device `{result.trainer.device}`" + _processes(result.trainer.world.size,
                                                                                   cfg.data.batch_size),
        f"- **final test accuracy: {100 * last.get('test_acc', float('nan')):.2f} %** "
        f"(train {100 * last['train_acc']:.2f} %), training time {sum(m['train_time_s'] for m in result.history):.1f} s "
        f"over {len(result.history)} epochs (this session's wall time {result.seconds:.1f} s)",
    ]
    best = best_epoch(result.history)
    lines += [f"- **{text}**" + ("; the model to report" if text.startswith("best") else "")
              for text in selection_summary(result.history, cfg, result.run_dir) if text is not None]
    val = best is not None
    lines += [
        "",
        "| epoch | train loss | train acc (%) | " + ("val loss | val acc (%) | " if val else "")
        + "test loss | test acc (%) | epoch time (s) | saved for backward (MiB) |",
        "|---:|---:|---:|" + ("---:|---:|" if val else "") + "---:|---:|---:|---:|",
    ]
    for m in result.history:
        saved = f"{m['saved_mb']:.1f}" if m.get("saved_mb") is not None else "–"  # older runs did not record it
        lines.append(f"| {m['epoch']} | {m['train_loss']:.4f} | {100 * m['train_acc']:.2f} | "
                     + (f"{_number(m.get('val_loss'))} | {_number(m.get('val_acc'), 100, 2)} | " if val else "")
                     + f"{m.get('test_loss', float('nan')):.4f} | {100 * m.get('test_acc', float('nan')):.2f} | "
                     f"{m['train_time_s']:.1f} | {saved} |")
    lines.append("")
    for title, name in figs.items():
        lines += [f"## {title}", "", f"![{title}]({name})", ""]
    lines += extra_sections or []
    lines += ["## Files", "", "- `config.toml` — the exact config used (`neurosim train --config` reruns it)",
              "- `metrics.jsonl` — one JSON object per epoch", "- `checkpoint.pt` — resumable checkpoint "
              "(`neurosim evaluate --checkpoint` evaluates it)"]
    if best is not None and (result.run_dir / "best.pt").is_file():
        lines.append(f"- `best.pt` — the checkpoint of epoch {best['epoch']}, the best on validation (`neurosim "
                     "evaluate --checkpoint`, `estimate` and `export` take it too)")
    lines.append("")
    return atomic_write_text(report, "\n".join(lines))


def load_run(path: str | Path, progress: bool = True, device: str | torch.device | None = None,
             test_only: bool = False) -> tuple[torch.nn.Module, RunConfig, DataBundle]:
    """The trained model (eval mode), config and data loaders of a neurosim checkpoint.

    ``test_only=True`` loads only the test split (what evaluating and estimating use): the bundle's ``train`` and
    ``train_frames`` are None then, and the training frames (~2 GB for DVS Gesture at T = 60) are not read. The
    data-fingerprint check is the same either way (both splits share the source files).

    It leaves torch's random stream as it was (the model's random initialisation, which the checkpoint's weights
    replace, draws from a forked one): ``torch.manual_seed(0)`` and then ``load_run(...)`` draw as after the seed alone.

    A checkpoint of a run interrupted part-way through an epoch holds the weights of that moment: they load, with a
    RuntimeWarning saying how far the epoch had got (``neurosim train`` with the run's config finishes it). One whose
    dataset's classes have other names now than those it saved (a folder dataset's class folders renamed or added
    since) loads with a RuntimeWarning naming both.

    A continual run's model (``models/<method>_seed<S>.pt``, :mod:`neurosim.continual.checkpoint`) loads too: its
    config is the run config view of the continual one, and its data the test (and training) splits of every task
    it learnt, taken in turn.
    """
    model, cfg, data, _ = _load_run(path, progress, device, test_only)
    return model, cfg, data


def _load_run(path: str | Path, progress: bool, device: str | torch.device | None, test_only: bool
              ) -> tuple[torch.nn.Module, RunConfig, DataBundle, tuple[str, ...] | None]:
    """:func:`load_run`, and the class names the checkpoint saved (None where it has none: see
    :func:`~neurosim.training.checkpoint.checkpoint_class_names`)."""
    ckpt = load_checkpoint(path)
    names = checkpoint_class_names(ckpt, path)
    cfg = config_from_checkpoint(ckpt["config"])
    warn_if_part_way(ckpt, path)  # (pointing at the caller outside neurosim, e.g. of evaluate_checkpoint)
    if device is None:
        try:
            device = resolve_device(cfg.train.device)
        except ConfigError:  # trained on a GPU this machine lacks: evaluating needs none
            warnings.warn(f"{path} was trained with train.device = {cfg.train.device!r}, which this machine lacks; "
                          "loading it on the CPU", RuntimeWarning, stacklevel=_caller_stacklevel())
            device = torch.device("cpu")
    with torch.random.fork_rng(devices=[]):  # its random init is overwritten: the caller's draws stay as they were
        model = build_model(cfg.model, cfg.neuron)
    load_weights(model, ckpt["model"], path, advice=PYTHON_MODEL_ADVICE)
    model.to(device).eval()
    if ckpt.get("kind") == "continual":  # a continual run's model: the test splits of every task it learnt
        from neurosim.continual.checkpoint import continual_data

        return model, cfg, continual_data(ckpt, path, device, progress, test_only), names
    folder = Path(cfg.data.dataset[len("folder:"):]) if cfg.data.dataset.startswith("folder:") else None
    if folder is not None and not folder.is_dir():
        config = Path(path).parent / "config.toml"
        raise ConfigError(f"data.dataset: {path} was trained on the recordings in {folder}, which is not a folder "
                          "now; if they moved, rerun the run's training command with their new folder, "
                          f"`neurosim train --config {shlex.quote(str(config))} --set data.dataset=folder:NEW`: a "
                          "finished run trains no further and stores it in its checkpoints")
    if test_only:
        test_frames, test_labels, fingerprint = _load_frames(cfg.data, "test", progress)
        data = DataBundle(get_dataset(cfg.data.dataset), None, eval_loader(cfg.data, test_frames, test_labels, device),
                          None, test_frames, fingerprint)
    else:
        data = make_loaders(cfg.data, seed=cfg.seed, device=device, progress=progress)
    saved = ckpt.get("data_fingerprint")
    if saved is not None and data.fingerprint is not None and saved != data.fingerprint:
        warnings.warn(f"{path} was trained on other data files than the dataset on disk now (regenerated, "
                      "re-downloaded, changed or copied since): it is evaluated on the files there now",
                      RuntimeWarning, stacklevel=_caller_stacklevel())
    now = data.info.class_names(cfg.data.root)
    if names is not None and now and now != names:
        warnings.warn(f"{path} was trained on the classes {', '.join(names)} (labels 0 to {len(names) - 1}), but "
                      f"dataset {data.info.name!r} now has {', '.join(now)}: its labels are numbered by the classes "
                      "there now, which the model's outputs do not follow", RuntimeWarning,
                      stacklevel=_caller_stacklevel())
    return model, cfg, data, names


def load_or_train(checkpoint: str | Path | None, cfg: RunConfig, progress: bool = True
                  ) -> tuple[torch.nn.Module, RunConfig, DataBundle]:
    """The run of ``checkpoint`` when that file exists (e.g. ``runs/demo/checkpoint.pt``), else ``cfg`` trained now
    (into ``<cfg.out_dir>/<cfg.name>``, resuming if interrupted). Tutorials use it to reuse ``make demo``'s model."""
    if checkpoint is not None and Path(checkpoint).is_file():
        return load_run(checkpoint, progress=progress)
    result = train_run(cfg, progress=progress, figures=False)
    return result.model.eval(), cfg, result.data


def evaluate_checkpoint(path: str | Path, split: str = "test", progress: bool = True) -> dict[str, Any]:
    """Rebuild the model a checkpoint was trained with and evaluate it on its dataset's ``split``: ``"test"``,
    ``"train"`` (the samples it trained on: without those ``data.val_split`` held out) or ``"val"`` (those).

    Returns :meth:`Trainer.evaluate`'s metrics (loss, accuracy, and per label its samples and those classified
    right), ``samples``, and ``class_names``: the classes' names, index = label, as the checkpoint saved them
    (older checkpoints: the dataset's own, where it has them), or None for a dataset without names.

    Raises:
        ValueError: an unknown split, or ``"val"`` for a run without ``data.val_split``.
    """
    if split not in ("test", "train", "val"):
        raise ValueError(f"split must be 'test', 'train' or 'val', got {split!r}")
    model, cfg, data, names = _load_run(path, progress, None, test_only=split == "test")
    if split == "val" and data.val is None:
        if load_checkpoint(path).get("kind") == "continual":  # (read again on this error only)
            raise ConfigError(f"{path} is a continual run's model, whose tasks have no validation split: evaluate "
                              "the 'test' split (every task's, taken in turn) or the 'train' split")
        raise ConfigError(f"data.val_split: {path} was trained without a validation split; evaluate the 'train' or "
                          "'test' split")
    device = next(iter(model.parameters()), torch.empty(0)).device  # where load_run put it (maybe not cfg's)
    trainer = Trainer(model, replace(cfg, train=replace(cfg.train, device=str(device))), run_dir=None, progress=False)
    # the training samples as recorded, in order: not the training loader, which augments (data.augment)
    loader = data.test if split == "test" else data.val if split == "val" else data.train.in_order()
    metrics = trainer.evaluate(loader)
    metrics["samples"] = len(loader.labels)
    names = names if names is not None else data.info.class_names(cfg.data.root) or None
    metrics["class_names"] = list(names) if names is not None else None
    return metrics


def estimate_run(result: RunResult, targets=None, samples: int = 64) -> tuple[object, list[str]]:
    """Estimate a trained run's model on chip targets (default: all shipped) into ``<run_dir>/estimate/``.

    Returns the :class:`neurosim.estimation.EstimateReport` and the report.md section describing it.
    """
    from neurosim.estimation import estimate_model

    cfg = result.trainer.config
    report = estimate_model(result.model, cfg.model.input_shape, result.data.test, targets,
                            dt_s=cfg.neuron.dt_ms * 1e-3, samples=samples, out_dir=result.run_dir / "estimate")
    a = report.activity
    section = [
        "## Energy and latency on neuromorphic chips and RRAM",
        "",
        f"Activity measured on {a.samples} test samples (T = {a.time_steps}, dt = {a.dt_s * 1e3:g} ms), the model "
        "exported to NIR (`estimate/model.nir`) and estimated per target from each chip's published figures "
        "(`hardware_models/specs/`). Rerun with `neurosim estimate --checkpoint checkpoint.pt`.",
        "",
        "```",
        report.table(),
        "```",
        "",
    ]
    for e in report.estimates.values():
        for note in (e.mapping.violations if e.mapping else ()):
            section.append(f"- {e.target}: {note.message}")
    section += ["", "![energy per inference](estimate/energy.png)", "", "![per-layer activity](estimate/layers.png)",
                "", "![cores used](estimate/cores.png)", ""]
    section += _fixed_point_section(result, targets, samples, float_activity=report.activity)
    section += _early_exit_section(result, targets)
    return report, section


#: the targets report.md's early-exit section shows (a digital chip, a fixed-tick one and an RRAM crossbar)
EARLY_EXIT_TARGETS = ("loihi", "truenorth", "rram_neurosim")


def _early_exit_section(result: RunResult, targets=None) -> list[str]:
    """report.md's "stopping early" section: :func:`neurosim.estimation.early_exit.early_exit` on the whole test split
    for :data:`EARLY_EXIT_TARGETS` (those of ``targets``), ``early_exit.json`` beside the estimate."""
    from neurosim.estimation.early_exit import early_exit

    cfg = result.trainer.config
    chosen = [t for t in EARLY_EXIT_TARGETS if targets is None or t in targets]
    if not chosen:
        return []
    ee = early_exit(result.model, cfg.model.input_shape, result.data.test, chosen, loss=result.trainer.loss,
                    dt_s=cfg.neuron.dt_ms * 1e-3, out_dir=result.run_dir / "estimate")
    return ["## Stopping early", "",
            f"Accuracy, mean steps and energy per inference when the chip stops after each number of steps, and when "
            "each sample stops once the softmax of its running read-out is confident (SEENN-I), on the test split "
            f"({ee.samples} samples): each cohort of samples measured over its own steps and estimated as such a run "
            "(`estimate/early_exit.json`; `neurosim estimate --checkpoint checkpoint.pt --early-exit` for every "
            "target).", "", "```", ee.table(), "```", "", "![early exit](estimate/early_exit.png)", ""]


def _fixed_point_section(result: RunResult, targets=None, samples: int = 64, float_activity=None) -> list[str]:
    """report.md's "accuracy in the chips' integers" section: each digital target with an arithmetic on the whole
    test split (:func:`neurosim.hardware.fixed_point.fixed_point_reports`), ``fixed_point_<target>.json`` beside the
    estimate. ``float_activity``: the estimate's (the same samples), reused for the energy at the float spikes."""
    from hardware_models import load_spec

    from neurosim.estimation import fits_not, joules
    from neurosim.hardware.fixed_point import ENERGY_NOTE, fixed_point_reports, fixed_point_targets

    cfg = result.trainer.config
    specs = [load_spec(t) for t in fixed_point_targets() if targets is None or t in targets]
    if not specs:
        return []
    reports, refused = fixed_point_reports(
        result.model, result.data.test, specs, loss=cfg.train.loss, input_shape=cfg.model.input_shape,
        dt_s=cfg.neuron.dt_ms * 1e-3, samples=samples, out_dir=result.run_dir / "estimate",
        float_activity=float_activity)
    rows, notes = [], []
    for spec in specs:
        if spec.name in refused:
            rows.append(f"| {spec.name} | not simulated: {refused[spec.name]} | | | | |")
            continue
        r, e = reports[spec.name], reports[spec.name]["energy"]
        energy = ("no energy per event published" if "note" in e else
                  f"{joules(e['chip_activity']['energy_j'])} / {joules(e['float_activity']['energy_j'])}")
        if fits_not(r):  # as the estimate table marks it
            energy += f" (does not fit: {fits_not(r)})"
        accuracy = (f"the same integers as {r['same_as']} | |" if "same_as" in r else
                    f"{r['float_acc']:.2f} % | {r['chip_acc']:.2f} % | {r['chip_weights_acc']:.2f} %")
        agreement = "" if "same_as" in r else f"{r['agreement']:.1f} %"
        rows.append(f"| {spec.name} | {accuracy} | {agreement} | {energy} |")
        if "same_as" not in r:
            notes += [f"- {spec.name}: {n}" for n in r["notes"] if n != ENERGY_NOTE]
            if r["advice"]:
                notes.append(f"- {spec.name}: to train a model with its neurons, `neurosim train --config "
                             f"{result.run_dir / 'config.toml'} --set name={cfg.name}-{spec.name} "
                             f"{' '.join(r['advice'])}`")
    return ["## Accuracy in the chips' integer arithmetic", "",
            f"The test split ({len(result.data.test.labels)} samples) through each digital chip's integer model "
            "(`estimate/fixed_point_<target>.json`; `neurosim estimate --checkpoint checkpoint.pt --fixed-point`): "
            "weights, thresholds, decays and membranes as the chip holds them. \"Chip's weights\" is the float model "
            "with the chip's weights only; the rest of the difference is what the chip's neurons do differently. "
            f"The energy per inference is priced at the chip's own spikes and at the float model's ({samples} "
            "samples), as in the estimate above.",
            "", "| target | float | chip | chip's weights | same class | energy, chip / float spikes |",
            "|---|---|---|---|---|---|", *rows, "", *notes, ""]


def demo_config(out_dir: str | Path = "runs", epochs: int | None = None) -> RunConfig:
    """The demo's run config: the quickstart config, named ``demo``, under ``out_dir`` (any path, as given)."""
    overrides = ["name=demo"] + ([f"train.epochs={int(epochs)}"] if epochs is not None else [])
    return replace(load_config(CONFIGS / "quickstart.toml", overrides), out_dir=str(out_dir))


def demo(out_dir: str | Path = "runs", epochs: int | None = None, progress: bool = True,
         estimate: bool = True) -> Path:
    """Train the quickstart conv SNN on the bundled event digits, estimate it on every chip target, and write
    ``report.md``; returns its path. A ``demo`` folder that holds a ``neurosim continual`` or ``lsm`` run is
    refused before any work."""
    cfg = demo_config(out_dir, epochs)
    run_dir = check_output_folder(Path(cfg.out_dir) / cfg.name, "out_dir")
    # held through training, estimate and report: a second demo there is refused
    with hold_run_folder(run_dir, "demo", "give demo another --out folder"):
        refuse_other_commands_run(run_dir, "demo", "give demo another --out folder")
        result = train_run(cfg, resume=False, progress=progress, figures=False)
        extra = estimate_run(result)[1] if estimate else None
        return write_report(result, extra)

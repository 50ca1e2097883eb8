"""Atomic file writes and checkpoints.

Everything a run writes goes through :func:`atomic_write_bytes` / :func:`save_checkpoint`: the data lands in a
temporary file in the same folder and is moved over the target with ``os.replace``, so an interrupted run never
leaves a half-written checkpoint or metrics file behind.

:func:`check_resumable` decides whether a checkpoint may continue under a given config; the Trainer
(``fit(resume=True)``) and ``neurosim train`` both ask it, so a run is never continued under settings it was not
trained with.

A checkpoint written when a run was interrupted part-way through an epoch (see
:meth:`neurosim.training.Trainer.fit`) holds a ``partial_epoch`` beside the usual keys and is written as format
:data:`MID_EPOCH_FORMAT` (2), which neurosim before it does not read: it refuses the file ("not a neurosim
checkpoint (format 1)") instead of training the epoch again from its first batch with weights already part-way
through it. The next checkpoint at an epoch's end is format 1 again.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import torch

from neurosim._io import atomic_write_bytes, atomic_write_text
from neurosim._stack import caller_stacklevel as _caller_stacklevel
from neurosim.config import ConfigError, RunConfig, config_from_checkpoint, config_to_dict, settings_differ

__all__ = ["RESUME_MAY_CHANGE", "CheckpointError", "ResumedEpochError", "atomic_write_bytes", "atomic_write_text", "beside_checkpoint",
           "check_resumable",
           "checkpoint_class_names", "checkpoint_file", "config_differences", "load_checkpoint", "load_weights",
           "resumes_at", "save_checkpoint", "trained_so_far", "warn_if_part_way"]

CHECKPOINT_FORMAT = 1
#: the format of a checkpoint written part-way through an epoch (one with a ``partial_epoch``)
MID_EPOCH_FORMAT = 2


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, or not a neurosim checkpoint, or cannot continue with what it is
    given (weights that do not fit the model; :class:`ResumedEpochError`)."""


class ResumedEpochError(CheckpointError):
    """A checkpoint written part-way through an epoch cannot continue that epoch with the training loader given: the
    loader yields another number of batches than the interrupted epoch had (other data, batch size or sampler), or
    fewer than it had trained. The message is :meth:`~neurosim.training.Trainer.fit`'s (``fit(resume=False)``); the
    attributes let a caller word its own (``neurosim train`` says ``--no-resume``).

    Attributes:
        path: the checkpoint.
        epoch: the interrupted epoch (counted from 1).
        done: the batches of it the checkpoint has trained.
        had: the batches that epoch had (None where the loader had no length).
        has: the batches the loader given yields (or, without a length, the fewer than ``done`` it yielded).
    """

    def __init__(self, message: str, *, path: str | Path | None, epoch: int, done: int, had: int | None,
                 has: int) -> None:
        super().__init__(message)
        self.path, self.epoch, self.done, self.had, self.has = path, epoch, done, had, has


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Save a checkpoint dict atomically; adds the format version (:data:`MID_EPOCH_FORMAT` when it holds a
    ``partial_epoch``)."""
    buf = io.BytesIO()
    torch.save({"format": MID_EPOCH_FORMAT if payload.get("partial_epoch") else CHECKPOINT_FORMAT, **payload}, buf)
    return atomic_write_bytes(path, buf.getvalue())


def checkpoint_file(path: str | Path) -> Path:
    """``path``, or the ``checkpoint.pt`` in it when it is a run folder.

    Raises:
        CheckpointError: a folder without a ``checkpoint.pt``.
    """
    path = Path(path)
    if path.is_dir():
        if not (path / "checkpoint.pt").is_file():
            models = _continual_models(path)
            if models is None:
                raise CheckpointError(f"{str(path)!r} is a folder without a checkpoint.pt; give the checkpoint file")
            what = ("the models folder of a neurosim continual run" if models == path else
                    f"a neurosim continual run, which keeps a model per (method, seed) in {models}")
            raise CheckpointError(f"{str(path)!r} is {what}: give one of its files{_models_listed(models)}")
        return path / "checkpoint.pt"
    return path


def _continual_models(path: Path) -> Path | None:
    """The ``models/`` folder of the ``neurosim continual`` run that ``path`` (a folder) is, or is the ``models/``
    of (a run folder holds ``finished/``); None for any other folder."""
    if (path / "finished").is_dir():
        return path / "models"
    if path.name == "models" and (path.parent / "finished").is_dir():
        return path
    return None


def _models_listed(models: Path) -> str:
    """The models a continual run's ``models/`` holds, for a message: `` (there: a.pt, b.pt)``, or that it has none
    yet."""
    names = sorted(p.name for p in models.glob("*.pt")) if models.is_dir() else []
    if not names:
        return (" (it has none yet: a (method, seed) leaves its model once it has finished; rerun neurosim continual "
                "with the run's config to train them)")
    shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    return f" (there: {shown})"


def beside_checkpoint(path: str | Path, name: str, suffix: str = "") -> Path:
    """The default output ``name`` beside checkpoint ``path`` (a file or run folder): ``<run>/estimate`` for a
    run's ``checkpoint.pt``, ``<run>/estimate-best`` for its ``best.pt`` (any other file: its name after the dash), so
    that outputs of the two checkpoints of one run do not overwrite each other. ``suffix`` ends the name
    (``".nir"``)."""
    file = checkpoint_file(path)
    return file.parent / (f"{name}{suffix}" if file.name == "checkpoint.pt" else f"{name}-{file.stem}{suffix}")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu", *,
                    mmap: bool = False) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (``path`` may be a run folder holding ``checkpoint.pt``).

    ``mmap=True`` maps the file's tensors instead of reading them (``torch.load(mmap=True)``): what reads only a
    checkpoint's config or record (a run storing a moved data root, a continual run telling which models it kept)
    then costs the pickle of its dict, not its weights and optimizer state. The tensors read from the file when used;
    a file torch cannot map (its legacy, pre-zip format) is read whole.

    Raises:
        CheckpointError: the file is missing, truncated/corrupt, or not a neurosim checkpoint.
    """
    path = checkpoint_file(path)
    if not path.is_file():
        models = _continual_models(path.parent) if path.parent.name == "models" else None
        if models is not None:  # a continual run's model: not finished yet (stopped), or misspelt
            raise CheckpointError(
                f"checkpoint {str(path)!r} does not exist: the continual run in {path.parent.parent} has no such model"
                + (f"{_models_listed(models)}; a (method, seed) leaves its model once it has finished (rerun "
                   "neurosim continual with the run's config to train those not finished yet)"
                   if any(models.glob("*.pt")) else _models_listed(models)))
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        try:
            payload = torch.load(path, map_location=map_location, weights_only=False, mmap=mmap)
        except RuntimeError:
            if not mmap:
                raise
            payload = torch.load(path, map_location=map_location, weights_only=False)  # (not mappable: whole)
    except Exception as e:  # torch raises several types for corrupt files
        hint = _not_a_checkpoint(path)
        if hint:
            raise CheckpointError(f"{str(path)!r} is {hint}, not a checkpoint") from None
        raise CheckpointError(f"checkpoint {str(path)!r} could not be read ({type(e).__name__}: {e})") from None
    if not isinstance(payload, dict) or payload.get("format") not in (CHECKPOINT_FORMAT, MID_EPOCH_FORMAT):
        raise CheckpointError(f"{str(path)!r} is not a neurosim checkpoint (format {CHECKPOINT_FORMAT} or "
                              f"{MID_EPOCH_FORMAT})")
    return payload


def _not_a_checkpoint(path: Path) -> str | None:
    """What a file that torch cannot load is, where its name or first bytes say (a run folder's JSON or text
    files, given as a checkpoint by mistake); None where nothing does, a checkpoint that is corrupt."""
    if path.parent.name == "finished" and path.suffix == ".json":
        return (f"a continual run's finished results (JSON); that (method, seed)'s model is "
                f"{path.parent.parent / 'models' / (path.stem + '.pt')}")
    try:
        with open(path, "rb") as f:
            head = f.read(64).lstrip()
    except OSError:
        return None
    torch_file = "a checkpoint is a torch file: checkpoint.pt, best.pt or a continual run's models/*.pt"
    if head[:1] in (b"{", b"["):
        return f"a JSON file ({torch_file})"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):  # HDF5's signature: a NIR graph (neurosim export's model.nir)
        return (f"an HDF5 file, such as a NIR graph (neurosim estimate --nir FILE --activity ACTIVITY.json estimates "
                f"a NIR graph; {torch_file})")
    if path.suffix == ".toml":
        return f"a TOML file, such as a run's config.toml (neurosim train --config FILE trains one; {torch_file})"
    return None


def checkpoint_class_names(payload: dict[str, Any], path: str | Path) -> tuple[str, ...] | None:
    """The class names (index = label) of the dataset the checkpoint ``payload`` (read from ``path``) trained on, as
    the Trainer saved them (``class_names``): None for a dataset without names (the bundled event digits) and for
    a checkpoint written before neurosim kept them.

    Raises:
        CheckpointError: ``class_names`` is there but not a list of strings.
    """
    names = payload.get("class_names")
    if names is None:
        return None
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise CheckpointError(f"checkpoint {str(path)!r}: its class_names must be a list of strings (the dataset's "
                              f"classes, index = label), got {names!r}")
    return tuple(names)


def trained_so_far(payload: dict[str, Any]) -> str:
    """What the checkpoint ``payload`` has trained, in words: ``"epoch 3"`` (epochs 1 to 3 done), or for one
    written part-way through an epoch ``"epoch 2 and the first 5 of epoch 3's 10 batches"`` (``"epoch 2 and all 10
    of epoch 3's batches"`` after its last one), or ``"epoch 3's batches, not yet evaluated"`` (interrupted while it
    evaluated epoch 3)."""
    done = int(payload.get("epoch", 0))
    partial = payload.get("partial_epoch")
    if not partial:
        return f"epoch {done}"
    if partial.get("evaluating"):
        return f"epoch {done + 1}'s batches, not yet evaluated"
    batches, of = int(partial["batches"]), partial.get("epoch_batches")
    first = f"all {batches} of epoch {done + 1}'s batches" if _all_batches_done(partial) else \
        f"the first {batches} of epoch {done + 1}'s {of} batches" if of else \
        f"the first {batches} of epoch {done + 1} batches"
    return f"epoch {done} and {first}" if done else first


def _all_batches_done(partial: dict[str, Any]) -> bool:
    """Whether the ``partial_epoch`` of a checkpoint was written after its epoch's last batch (its length known)."""
    of = partial.get("epoch_batches")
    return bool(of) and int(partial["batches"]) >= int(of)


def resumes_at(partial: dict[str, Any], epoch: int) -> str:
    """Where a run resumed from a checkpoint written part-way through epoch ``epoch`` (its ``partial_epoch``,
    ``partial``) continues, in words: ``"at batch 4 of epoch 3"``, ``"with the end of epoch 3 (its scheduler step and
    evaluation)"`` after its last batch, or ``"with epoch 3's evaluation"`` when it was interrupted while evaluating."""
    if partial.get("evaluating"):
        return f"with epoch {epoch}'s evaluation"
    if _all_batches_done(partial):
        return f"with the end of epoch {epoch} (its scheduler step and evaluation)"
    return f"at batch {int(partial['batches']) + 1} of epoch {epoch}"


def warn_if_part_way(payload: dict[str, Any], path: str | Path) -> None:
    """A RuntimeWarning when the checkpoint ``payload`` (read from ``path``) was written part-way through an epoch:
    its weights are those of that moment, not of an epoch's end. What reads a checkpoint's weights alone
    (:func:`neurosim.runs.load_run`, ``neurosim export``) calls it; the warning points at the first caller outside
    neurosim. Nothing for one interrupted while evaluating (its epoch's training is whole)."""
    partial = payload.get("partial_epoch")
    if not partial or partial.get("evaluating"):
        return
    epoch = int(payload["epoch"]) + 1
    warnings.warn(f"{path} was written part-way through epoch {epoch}: it has trained {trained_so_far(payload)}, "
                  f"and its weights are those of that moment; resume the run (neurosim train with its config) to "
                  f"finish epoch {epoch}", RuntimeWarning, stacklevel=_caller_stacklevel())


#: what the commands that rebuild a checkpoint's model from its config (evaluate, estimate, export) advise when its
#: weights do not fit it: the usual cause is a Trainer run of a model built in Python, whose config's [model] section
#: (the default one, if never set) describes another model
PYTHON_MODEL_ADVICE = (
    "if the run trained a model built in Python (Trainer(model, ...) with a model of your own, or one from "
    "neurosim.interop.from_snntorch), its config does not describe it and the commands cannot rebuild it: build it "
    "again in Python, load the weights, model.load_state_dict(neurosim.training.load_checkpoint(PATH)['model']), "
    "then export it with neurosim.export.to_nir and write_nir, and estimate it with "
    "neurosim.estimation.estimate_model")


def load_weights(model: torch.nn.Module, state: dict[str, Any], path: str | Path, *,
                 model_is: str = "the model its config builds", advice: str = "") -> None:
    """``model.load_state_dict(state)``; weights that do not fit the model (edited, or from another config) are a
    :class:`CheckpointError` naming the checkpoint and the first mismatches, not torch's multi-line error.

    Args:
        model_is: what ``model`` is, for the message (the Trainer's is the model its caller built).
        advice: what to do instead, appended to the message after a semicolon.
    """
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as e:
        lines = [ln.strip() for ln in str(e).splitlines()[1:] if ln.strip()] or [str(e)]
        detail = "; ".join(lines[:3]) + (f"; and {len(lines) - 3} more" if len(lines) > 3 else "")
        raise CheckpointError(f"checkpoint {str(path)!r}: its weights do not fit {model_is} ({detail})"
                              + (f"; {advice}" if advice else "")) from None


#: settings a resumed run may change: how long it runs, where and how the folder and data are named, not what it
#: computes (another thread count only rounds differently: the Trainer warns that the run then no longer matches
#: an uninterrupted one bit for bit)
RESUME_MAY_CHANGE = ("train.epochs", "train.threads", "train.device", "train.checkpoint_every", "train.patience",
                     "name", "out_dir", "data.root", "data.num_workers")

#: how the resume error names the one change of data.dataset a resumed run may make: the recordings of a folder
#: dataset moved (``folder:OLD`` to ``folder:NEW``, as ``data.root`` may name a new place for a registered dataset)
FOLDER_MAY_MOVE = "data.dataset from one folder:PATH to another (the recordings moved)"


def config_differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    """The dotted key paths (``train.lr``) in which two :func:`~neurosim.config.config_to_dict` forms differ; a key
    that only one of them has differs too."""
    out = []
    for key in a.keys() | b.keys():
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += config_differences(va, vb, f"{prefix}{key}.")
        elif va != vb:
            out.append(f"{prefix}{key}")
    return out


def check_resumable(payload: dict[str, Any], config: RunConfig, epochs: int, where: str | Path, *,
                    epochs_name: str = "train.epochs", elsewhere: str = "choose another name (--set name=...)",
                    start_over: str = "pass --no-resume to start over") -> None:
    """Whether the checkpoint ``payload`` (of the run in ``where``) may continue as ``config`` for ``epochs`` epochs:
    the same config but for :data:`RESUME_MAY_CHANGE`, and no more epochs done than asked (one interrupted part-way
    through epoch ``e`` needs ``epochs >= e``).

    ``neurosim train`` and :meth:`neurosim.training.Trainer.fit` both ask it; the keyword arguments word the ways
    out for each (the defaults are the command line's).

    Raises:
        ConfigError: naming the settings that differ (or the epochs done and asked) and what to do instead: keep
            the config, run elsewhere (``elsewhere``), or start over (``start_over``).
    """
    check_epochs_done(payload, epochs, where, epochs_name=epochs_name, elsewhere=elsewhere, start_over=start_over)
    if payload.get("config") is None:  # nothing to compare with
        return
    try:
        saved = config_to_dict(config_from_checkpoint(payload["config"]))  # older files: today's form
    except ConfigError as e:
        raise ConfigError(f"{where} holds a checkpoint whose config this version of neurosim cannot read ({e}); "
                          f"{elsewhere}, or {start_over}") from None
    now = config_to_dict(config)
    moved = all(str(d.get("data", {}).get("dataset", "")).startswith("folder:") for d in (saved, now))
    for d in (saved, now):
        for key in RESUME_MAY_CHANGE + (("data.dataset",) if moved else ()):
            section, _, leaf = key.rpartition(".")
            (d.get(section, {}) if section else d).pop(leaf, None)
    if saved != now:
        changed = sorted(config_differences(saved, now))
        raise ConfigError(
            f"{where} holds a checkpoint of a different config ({settings_differ(changed)}); resume it with the "
            f"same config (only {', '.join(RESUME_MAY_CHANGE)}, and {FOLDER_MAY_MOVE}, may change), {elsewhere}, "
            f"or {start_over}"
        )


def check_epochs_done(payload: dict[str, Any], epochs: int, where: str | Path, *, epochs_name: str = "train.epochs",
                      elsewhere: str = "choose another name (--set name=...)",
                      start_over: str = "pass --no-resume to start over") -> None:
    """The epochs half of :func:`check_resumable`: no more epochs done in ``payload`` than ``epochs`` (one
    interrupted part-way through epoch ``e`` needs ``epochs >= e``); a ConfigError worded as there."""
    done = int(payload.get("epoch", 0))
    if payload.get("partial_epoch") and done + 1 > epochs:  # part-way through epoch done + 1
        raise ConfigError(f"{epochs_name}: {where} has trained {trained_so_far(payload)}, more than the {epochs} "
                          f"epoch(s) asked; rerun with {epochs_name} >= {done + 1} to continue it, {elsewhere}, or "
                          f"{start_over}")
    if done > epochs:
        raise ConfigError(f"{epochs_name}: {where} has already trained {done} epochs, more than the {epochs} asked; "
                          f"rerun with {epochs_name} >= {done} to continue it, {elsewhere}, or {start_over}")

"""The ``neurosim`` command.

    neurosim train --config FILE.toml [--set key.path=value ...] [--no-resume] [--seeds S1 S2 ...]
    neurosim evaluate --checkpoint runs/NAME/checkpoint.pt
    neurosim demo [--out runs] [--epochs N]
    neurosim datasets list | prepare NAME | check NAME
    neurosim estimate --checkpoint PATH [--target NAME ...]   (or --nir FILE --activity FILE)
    neurosim export --checkpoint PATH [--out model.nir]
    neurosim continual --config NAME
    neurosim lsm --config NAME
    (the last five are registered by the modules in PLUGINS)

Errors in user input (configs, paths, names) print one clear line and exit with status 2.

For scripts and batch schedulers: standard output is line-buffered, so a log file (a slurm ``.out``, ``nohup``,
``> log 2>&1``) shows each result line when it is printed, in order with the errors (:func:`main` called from Python
puts its buffering back, with the other process-wide settings it changed). SIGTERM, which schedulers send
before they kill a job, stops ``train``, ``continual``, ``lsm``, ``demo`` and ``estimate`` as Ctrl-C does (the last
checkpoint is kept, the run folder's lock released; rerunning resumes) and exits with status 143 (Ctrl-C: 130).
``train`` stops at the end of the batch under way and checkpoints the epoch so far: rerunning resumes at the next
batch, as if it had never stopped (a second signal stops it at once, its last checkpoint kept). When
the reader of standard output goes away (``neurosim train ... | head -1``) the command stops quietly with status 141,
as Unix tools do on SIGPIPE, its last checkpoint kept.

``train`` also runs data-parallel under torchrun, e.g. ``torchrun --standalone --nproc-per-node 2 -m neurosim
train --config quickstart`` (see :mod:`neurosim.training.distributed`); the other commands run in one process.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import io
import os
import select
import signal
import shlex
import sys
import threading
import time
from pathlib import Path

__all__ = ["main"]


# Subcommands owned by subpackages: each module defines ``register(subparsers)``, which adds its parser(s) with
# ``set_defaults(func=...)``; ``func(args) -> int`` may raise UserError/ConfigError for a clean one-line error.
PLUGINS = (
    "neurosim.data.cli",
    "neurosim.estimation.cli",
    "neurosim.export.cli",
    "neurosim.continual.cli",
    "neurosim.lsm.cli",
)


class UserError(Exception):
    """An error caused by the user's input: printed without a traceback."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the command was, like Ctrl-C's KeyboardInterrupt, so that the same cleanup runs (a
    half-written checkpoint removed, the run folder's lock released, the last checkpoint kept)."""


def resolve_config(path: str, prefix: str = "", what: str = "config") -> Path:
    """A config file path, or the shipped config of that name (``quickstart`` → ``neurosim/configs/quickstart.toml``).

    ``prefix`` narrows the names listed in the error (``"continual_"`` lists only continual configs).
    """
    from neurosim.config import SHIPPED_CONFIGS, shipped_config

    p = Path(path)
    if p.is_file():
        return p
    shipped = shipped_config(path)
    if shipped is not None:
        return shipped
    if p.is_dir():
        raise UserError(f"{what} {path!r} is a folder; give a .toml file or the name of a shipped {what}")
    names = sorted(f.stem for f in SHIPPED_CONFIGS.glob(f"{prefix}*.toml")
                   if prefix or not f.stem.startswith(_OTHER_COMMANDS))
    raise UserError(f"{what} {path!r} not found (neither a file nor a shipped {what}: {', '.join(names)})")


#: shipped configs of the other commands, by file-name prefix (``neurosim train`` does not list them)
_OTHER_COMMANDS = ("continual_", "lsm_")


def _other_command(path: Path, command: str) -> str | None:
    """The command the TOML file at ``path`` is written for (``train``, ``continual`` or ``lsm``) when that is not
    ``command``; None when it is, or when the file does not tell."""
    from neurosim.config import config_command, tomllib  # tomllib: the standard library's, or the tomli backport

    try:
        other = config_command(tomllib.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None
    return other if other != command else None


def check_config_command(path: Path, command: str, given: str) -> None:
    """Called when ``neurosim COMMAND`` could not load the config at ``path`` (``given`` as typed): raise a
    :class:`UserError` that names the command the file is for, if it is another's (else return)."""
    other = _other_command(path, command)
    if other:
        raise UserError(f"{path} is a config for `neurosim {other}`, not `neurosim {command}`: run `neurosim {other} "
                        f"--config {given}`")


def _note_moved_run(config_path: Path, run_dir: Path) -> None:
    """A run folder's own config.toml names the folder the run was started in: after the folder moved, training
    from it would start a new run there. Say so (on stderr), with the overrides that resume the moved run (a train
    run's, which has a checkpoint, or a continual run's, which has finished results)."""
    folder = config_path.resolve().parent
    if config_path.name != "config.toml":
        return
    if (folder / "checkpoint.pt").is_file():
        has = "a checkpoint"
    elif any((folder / "finished").glob("*.json")):
        has = "finished results"
    else:
        return
    if run_dir.resolve() != folder:
        print(f"note: {config_path} belongs to the run in {folder} (it has {has}), but its out_dir and name "
              f"point to {run_dir}, where this run goes; to resume the run in {folder} instead, add "
              f"--set {shlex.quote(f'out_dir={folder.parent}')} {shlex.quote(f'name={folder.name}')}",
              file=sys.stderr)  # (quoted for a shell where a path holds spaces)


def cmd_train(args) -> int:
    from neurosim.config import ConfigError, load_config
    from neurosim.runs import selection_summary, train_run

    path = resolve_config(args.config)
    try:
        cfg = load_config(path, args.set)
    except ConfigError:
        check_config_command(path, "train", args.config)
        raise
    args.run_dir, args.started = Path(cfg.out_dir) / cfg.name, time.time()  # for the message if it is interrupted
    _note_moved_run(path, args.run_dir)
    if args.seeds is not None:
        return _train_seeds(args, cfg)
    result = train_run(cfg, resume=not args.no_resume, progress=not args.quiet)
    if os.environ.get("RANK", "0") != "0":  # under torchrun, process 0 reports for all
        return 0
    print(f"run folder: {result.run_dir}")
    print(f"test accuracy: {100 * result.history[-1].get('test_acc', float('nan')):.2f} %")
    for text in selection_summary(result.history, cfg, result.run_dir):
        if text is not None:
            print(text)
    return 0


def _train_seeds(args, cfg) -> int:
    """``neurosim train --seeds S1 S2 ...``: one run per seed, then their mean and spread."""
    from neurosim.runs import train_seeds
    from neurosim.training.distributed import launched_world_size

    if launched_world_size() > 1:
        raise UserError("--seeds trains one run after another in one process; under torchrun train one seed per "
                        "launch (--set seed=N name=NAME-seedN)")
    if any(item.split("=", 1)[0].strip() == "seed" for item in args.set):
        raise UserError("--seeds sets each run's seed: drop seed=... from --set")

    def starting(one) -> None:
        args.run_dir = Path(one.out_dir) / one.name
        if not args.quiet:
            print(f"== seed {one.seed}: {args.run_dir}", flush=True)

    summary, path = train_seeds(cfg, args.seeds, resume=not args.no_resume, progress=not args.quiet,
                                starting=starting)
    if summary["name"] != cfg.name:
        print(f"note: the runs are named {summary['name']}-seedS (the config's name {cfg.name} ends in a seed)")
    validated = "best_test_acc" in summary
    rows = [["seed", "epochs", "test acc"] + (["best val epoch", "its test acc"] if validated else [])]
    for r in summary["runs"]:
        epochs = f"{r['epochs']}" + (f" of {r['planned_epochs']} (stopped early)" if r.get("stopped_early") else "")
        rows.append([str(r["seed"]), epochs, f"{100 * r['test_acc']:.2f} %"]
                    + ([str(r["best_epoch"]), f"{100 * r['best_test_acc']:.2f} %"] if validated else []))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths)))
    for key, what in (("test_acc", "final test accuracy"), ("best_test_acc", "best validation epoch's test accuracy")):
        if key in summary:
            spread = summary[key]["std"]
            print(f"{what}: {100 * summary[key]['mean']:.2f} %"
                  + (f" ± {100 * spread:.2f} (sample std over {len(summary['runs'])} seeds)" if spread is not None
                     else " (one seed)"))
    for r in summary.get("other_runs", ()):
        print(f"not in the mean: seed {r['seed']} ({r['run_dir']}), trained with other settings: "
              f"{', '.join(r['differs'])}")
    print(f"summary: {path}")
    return 0


def cmd_evaluate(args) -> int:
    from neurosim.runs import evaluate_checkpoint

    metrics = evaluate_checkpoint(args.checkpoint, split=args.split, progress=not args.quiet)
    print(f"{args.split} accuracy: {100 * metrics['acc']:.2f} %  loss: {metrics['loss']:.4f}  "
          f"({metrics['samples']} samples)")
    print("\n".join(_per_class_lines(metrics)))
    return 0


def _per_class_lines(metrics: dict) -> list[str]:
    """The accuracy of each class that has samples in :func:`neurosim.runs.evaluate_checkpoint`'s ``metrics``, one
    line each, named as the checkpoint names its classes (``class 3`` where it has no names)."""
    names = metrics.get("class_names") or []
    rows = [(names[i] if i < len(names) else f"class {i}", n, c)
            for i, (n, c) in enumerate(zip(metrics["class_samples"], metrics["class_correct"])) if n]
    width = max((len(name) for name, _, _ in rows), default=0)
    return ["per class:"] + [f"  {name:<{width}}  {100 * c / n:6.2f} %  ({n} samples)" for name, n, c in rows]


def cmd_demo(args) -> int:
    from neurosim.runs import demo

    if args.epochs is not None and args.epochs < 1:
        raise UserError(f"--epochs must be at least 1, got {args.epochs}")
    from neurosim._io import check_output_folder

    args.run_dir, args.started = check_output_folder(Path(args.out) / "demo", "--out"), time.time()
    report = demo(out_dir=args.out, epochs=args.epochs, progress=not args.quiet)
    print(f"report: {report}")
    return 0


def _version() -> str:
    from neurosim import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neurosim", description="Spiking neural networks: train them on event data (BPTT, SLTT), keep them "
        "learning without forgetting (HLOP), and estimate their energy and latency on neuromorphic chips and RRAM. "
        "`neurosim demo` runs the whole path on bundled data; `neurosim COMMAND --help` says more.")
    parser.add_argument("-q", "--quiet", action="store_true", help=_QUIET_HELP)
    parser.add_argument("--version", action="version", version=f"neurosim {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model from a TOML config")
    p.add_argument("--config", required=True, help="config file, or the name of a shipped config (e.g. quickstart)")
    p.add_argument("--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.epochs=3 data.batch_size=64")
    p.add_argument("--no-resume", action="store_true", help="start over even if the run folder has a checkpoint")
    p.add_argument("--seeds", type=int, nargs="+", default=None, metavar="SEED",
                   help="train one run per seed (NAME-seedS folders) and print their mean ± std; a rerun resumes the "
                        "unfinished ones")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a checkpoint on its dataset's test split")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--split", choices=("train", "val", "test"), default="test",
                   help="test (default), train (the samples trained on) or val (those data.val_split held out)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("demo", help="train the conv SNN on the bundled event digits and write a report")
    p.add_argument("--out", default="runs", help="parent folder of the demo run folder (default: runs)")
    p.add_argument("--epochs", type=int, default=None, help="override the number of epochs")
    p.set_defaults(func=cmd_demo)

    for module_name in PLUGINS:
        importlib.import_module(module_name).register(sub)
    _add_quiet(sub)  # `neurosim train ... -q` as well as `neurosim -q train ...`, at every level
    return parser


_QUIET_HELP = ("no progress bars, and none of the lines printed while it runs: train's and demo's per-epoch metrics "
               "(still in the run folder's metrics.jsonl), continual's per-(method, seed) results; the final "
               "results are still printed")


def _add_quiet(subparsers) -> None:
    for command in subparsers.choices.values():
        if not any("-q" in a.option_strings for a in command._actions):
            command.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                                 help=_QUIET_HELP)
        for nested in (a for a in command._actions if isinstance(a, argparse._SubParsersAction)):
            _add_quiet(nested)  # e.g. `neurosim datasets prepare NAME -q`


def _check_launch(command: str) -> None:
    """Only ``train`` runs data-parallel; the others would each run ``WORLD_SIZE`` times over the same files."""
    from neurosim.training.distributed import launched_world_size

    try:
        size = launched_world_size()
    except ValueError as e:
        raise UserError(str(e)) from None
    if size > 1 and command != "train":
        raise UserError(f"torchrun started {size} processes, but only `neurosim train` runs data-parallel; run "
                        f"`neurosim {command}` as one process (without torchrun)")


#: the commands that may run for long: SIGTERM stops them as Ctrl-C does (the others keep its default action)
_LONG_COMMANDS = ("train", "continual", "lsm", "demo", "estimate")


@contextlib.contextmanager
def _line_buffered(stream):
    """While the block runs, flush ``stream`` at every newline: to a file or pipe Python writes standard output in
    8 KiB blocks, so a job's log would show no epoch line until the job ends, lose them to a SIGKILL, and put an error
    (stderr is line-buffered) before the lines printed earlier. Its buffering comes back after, so that ``main()``
    called from Python (a notebook, a test) leaves the stream as it found it."""
    try:
        changed = not stream.line_buffering
        if changed:
            stream.reconfigure(line_buffering=True)
    except (AttributeError, ValueError, io.UnsupportedOperation):  # not a TextIOWrapper (e.g. a notebook's)
        changed = False
    try:
        yield
    finally:
        if changed:
            # (reconfigure flushes first: the stream may be closed by now, or its reader gone)
            with contextlib.suppress(ValueError, OSError):
                stream.reconfigure(line_buffering=False)


@contextlib.contextmanager
def _torch_threads_kept():
    """torch's CPU thread count comes back after the block (``train.threads`` sets it for the run)."""
    import torch  # (imported already by the subcommands' modules, which build_parser() imports)

    threads = torch.get_num_threads()
    try:
        yield
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


@contextlib.contextmanager
def _sigterm_as_interrupt(enabled: bool):
    """While the block runs, SIGTERM raises :class:`Terminated` (once; further SIGTERMs are ignored, so that they do
    not cut the cleanup short); the earlier handler comes back after. Signal handlers live in the main thread only.

    A :class:`Terminated` raised where Python ignores exceptions (a ``__del__``, e.g. training.memory's ``_Held``
    freed during backward; a weakref callback) reaches ``sys.unraisablehook`` instead: the signal is then sent again
    from a timer thread, so that it lands outside (a SIGTERM handled there would be ignored as well)."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    from neurosim.training.trainer import INTERRUPT_HANDLER_MARK  # (imported already by build_parser())

    def on_sigterm(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated

    # it raises as Ctrl-C does: the Trainer may hold it back to the end of a batch
    setattr(on_sigterm, INTERRUPT_HANDLER_MARK, True)

    def unraisable(info) -> None:
        if not isinstance(info.exc_value, Terminated):
            return previous_hook(info)
        signal.signal(signal.SIGTERM, on_sigterm)  # (unraisable Terminated: raised in the main thread, as is this)
        again = threading.Timer(0.01, os.kill, (os.getpid(), signal.SIGTERM))
        again.daemon = True
        again.start()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    previous_hook, sys.unraisablehook = sys.unraisablehook, unraisable
    try:
        yield
    finally:
        sys.unraisablehook = previous_hook
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _stdout_closed() -> bool:
    """Whether standard output's reader went away (the pipe's reading end is closed: ``poll`` reports an error on
    the writing end), rather than another pipe or socket the command wrote to. Where that cannot be told (no file
    descriptor, no ``poll``), it assumes standard output."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(event & select.POLLERR for _, event in poller.poll(0))
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        return True


def _stdout_gone() -> int:
    """Standard output's reader went away (``| head``): stop quietly, with SIGPIPE's status (128 + 13), as Unix tools
    do. Standard output now writes to the null device, so that Python's final flush raises nothing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):  # no file descriptor (in-process use)
        pass
    return 141


def main(argv: list[str] | None = None) -> int:
    """Run the ``neurosim`` command line ``argv`` (default: ``sys.argv[1:]``); returns the exit status.

    Called from Python (a notebook, a test), it leaves what it changed for the command as it found it, when it returns
    or raises (``SystemExit`` for ``--help`` or a usage error included): standard output's line buffering, the
    SIGTERM handler, ``sys.unraisablehook`` and torch's CPU thread count (``train.threads``). What a run does on
    purpose stays, as with :func:`neurosim.runs.train_run`: python's, numpy's and torch's random generators are seeded
    with the run's seed, and CPU training tunes glibc's malloc for the process
    (:func:`neurosim.training.tune_cpu_allocator`).
    """
    with _line_buffered(sys.stdout):
        args = _expand_home(_parse(build_parser(), argv))
        with _torch_threads_kept():
            return _run(args)


def _parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``parser.parse_args(argv)``, with a clearer error for ``KEY=VALUE`` items that an option cut off from their
    ``--set`` (``--set a=1 -q b=2``: argparse only says "unrecognized arguments: b=2")."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        stray = all("=" in item and not item.startswith("-") for item in extra)
        parser.error(f"unrecognized arguments: {' '.join(extra)}" + (
            "; --set takes the KEY=VALUE items right after it, up to the next option: put options such as -q or "
            "--no-resume before --set, or write --set again before these" if stray and hasattr(args, "set") else
            _seeds_hint(args, extra)))
    return args


def _seeds_hint(args: argparse.Namespace, extra: list[str]) -> str:
    """``neurosim continual --seeds 0 1`` (train's option): its seeds are the config's ``seeds``."""
    if getattr(args, "command", None) != "continual" or "--seeds" not in extra:
        return ""
    seeds = []
    for item in extra[extra.index("--seeds") + 1:]:  # the seeds typed after it
        if not item.lstrip("-").isdigit():
            break
        seeds.append(item)
    return (f"; neurosim continual runs every method once per seed of the config's `seeds`: --set "
            f"seeds=[{', '.join(seeds) or '0, 1, 2'}]")


#: options that take a path (``--target`` takes a target's name or a spec file's path)
_PATH_OPTIONS = ("config", "checkpoint", "out", "nir", "activity", "root", "target")


def _expand_home(args):
    """A leading ``~`` in a path option is the home folder, as in a config's paths: the shell expands it after a
    space (``--out ~/x``) but not after ``=`` (``--out=~/x``), which made a folder named ``~``."""
    for name in _PATH_OPTIONS:
        value = getattr(args, name, None)
        if isinstance(value, str):
            setattr(args, name, os.path.expanduser(value))
        elif isinstance(value, list):
            setattr(args, name, [os.path.expanduser(v) if isinstance(v, str) else v for v in value])
    return args


def _dataset_of(path: Path, args) -> str:
    """The dataset name ``neurosim datasets check`` takes for a bad file ``path``: ``folder:ROOT`` for a recording of
    a folder dataset (``ROOT/<split>/<class>/<file>`` beside ``ROOT/dataset.toml``), the command's own dataset for
    ``neurosim datasets``, else ``NAME``."""
    parents = Path(path).absolute().parents
    if len(parents) > 2 and parents[1].name in ("train", "test") and (parents[2] / "dataset.toml").is_file():
        return shlex.quote(f"folder:{parents[2]}")
    return shlex.quote(args.name) if args.command == "datasets" and getattr(args, "name", None) else "NAME"


def _run(args) -> int:
    """The command ``args`` names, with its errors turned into one line and an exit status."""
    from neurosim._io import OutputPathError
    from neurosim.config import ConfigError
    from neurosim.data.folder import FolderDatasetError
    from neurosim.data.frames import FramesError
    from neurosim.data.readers import EventFileError
    from neurosim.data.registry import DatasetNotFoundError, MissingReaderError
    from neurosim.training.checkpoint import CheckpointError
    from neurosim.training.memory import TrainingMemoryError

    try:
        with _sigterm_as_interrupt(args.command in _LONG_COMMANDS):
            _check_launch(args.command)
            return args.func(args)
    except BrokenPipeError:
        if not _stdout_closed():
            raise  # another pipe or socket broke: a real failure, with its traceback
        return _stdout_gone()
    except (UserError, ConfigError, CheckpointError, DatasetNotFoundError, MissingReaderError, OutputPathError,
            FolderDatasetError, EventFileError) as e:
        if isinstance(e, CheckpointError) and args.command == "train" and "could not be read" in str(e):
            e = f"{e}; rerun with --no-resume to start the run over in that folder"  # a truncated checkpoint
        if isinstance(e, EventFileError) and not isinstance(e, FramesError):  # a bad recording met building frames
            e = f"{e} (`neurosim datasets check {_dataset_of(e.path, args)}` lists every bad file of a dataset)"
        action = f" {args.action}" if args.command == "datasets" else ""  # (as the datasets commands' own errors)
        print(f"neurosim {args.command}{action}: error: {e}", file=sys.stderr)
        return 2
    except TrainingMemoryError as e:  # what the batch held and what to change (BPTT: SLTT), in one line
        print(f"neurosim {args.command}: error: {e}", file=sys.stderr)
        return 1
    except FloatingPointError as e:  # training (or Hebbian learning) diverged: say so in one line
        print(f"neurosim {args.command}: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        if e.filename is None and e.errno not in _STORAGE_ERRORS:  # a real failure, not the disk's: keep the traceback
            raise
        print(f"neurosim {args.command}: error: {_storage_error(e)}{_storage_kept(args)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        terminated = isinstance(e, Terminated)
        print(f"\n{_interrupted(args, 'terminated (SIGTERM)' if terminated else 'interrupted')}", file=sys.stderr)
        return 143 if terminated else 130  # 128 + the signal's number, as the shell reports a process it killed


#: errors of the storage, not of neurosim: one line, with the path where there is one
_STORAGE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO)


def _storage_error(e: OSError) -> str:
    """``e`` in one line; a temporary file of an atomic write is named by its folder and the file it was for."""
    what = e.strerror or str(e)
    if e.filename is None:
        return what
    path = Path(e.filename)
    if path.name.startswith(".") and path.name.endswith(".tmp"):
        return f"{what} while writing in {path.parent}"
    return f"{what}: {path}"


def _read_checkpoint(ckpt: Path) -> dict | None:
    from neurosim.training.checkpoint import load_checkpoint

    try:
        payload = load_checkpoint(ckpt)
        int(payload["epoch"])
        return payload
    except Exception:  # unreadable: say nothing about its epoch
        return None


def _checkpoint_epoch(ckpt: Path) -> int | None:
    payload = _read_checkpoint(ckpt)
    return None if payload is None else int(payload["epoch"])


def _checkpoint_holds(ckpt: Path) -> tuple[str, str]:
    """What the checkpoint ``ckpt`` has trained, as `` (epoch 2 and the first 3 of epoch 3's 10 batches)``, and
    where a resumed run continues, as `` at batch 4 of epoch 3`` (`` with the end of epoch 3 ...`` after its last
    batch); empty where it cannot be read."""
    from neurosim.training.checkpoint import resumes_at, trained_so_far

    payload = _read_checkpoint(ckpt)
    if payload is None:
        return "", ""
    partial = payload.get("partial_epoch")
    there = f" {resumes_at(partial, int(payload['epoch']) + 1)}" if partial else ""
    return f" ({trained_so_far(payload)})", there


def _storage_kept(args) -> str:
    """After a storage error (a full disk): what a run command kept, and how to go on (as :func:`_interrupted`)."""
    run_dir = getattr(args, "run_dir", None)
    if run_dir is None or args.command not in ("train", "demo", "continual"):
        return ""
    ckpt = run_dir / "checkpoint.pt"
    ours = ckpt.is_file() and ckpt.stat().st_mtime >= getattr(args, "started", 0)
    if args.command == "train" and ours:
        rerun = _rerun(args)
        holds, there = _checkpoint_holds(ckpt)
        return f". The last checkpoint{holds} in {ckpt} is intact: {rerun} to resume{there} once there is space"
    if args.command == "demo" and ours:
        from neurosim.runs import demo_config

        epoch = _checkpoint_epoch(ckpt)
        if epoch is not None and epoch >= demo_config(args.out, args.epochs).train.epochs:
            return (f". Training finished ({ckpt}, epoch {epoch}); once there is space, `neurosim estimate "
                    f"--checkpoint {ckpt}` writes the estimate (`neurosim demo` would train again)")
    return ". " + _interrupted(args, "Stopped")


def _rerun(args) -> str:
    """How to go on with a run command that stopped: the same command, less ``--no-resume``."""
    return "rerun without --no-resume" if getattr(args, "no_resume", False) else "rerun the same command"


def _interrupted(args, how: str = "interrupted") -> str:
    """What an interrupted command kept, and how to go on; ``how`` says what stopped it (the message's first words)."""
    run_dir = getattr(args, "run_dir", None)
    if args.command == "train" and run_dir is not None and getattr(args, "seeds", None):
        ckpt = run_dir / "checkpoint.pt"
        holds = _checkpoint_holds(ckpt)[0] if ckpt.is_file() else ""
        return (f"{how} during {run_dir.name} (its checkpoint{holds or ': none yet'}); {_rerun(args)} to go on with "
                "the seeds: finished runs are not trained again, the others resume" + (
                    " (or start over, those this --no-resume sweep had not started over yet)"
                    if args.no_resume else ""))
    if args.command == "train" and run_dir is not None:
        ckpt = run_dir / "checkpoint.pt"
        if not ckpt.is_file():
            return f"{how} before the first checkpoint: no checkpoint was saved, a rerun starts from the beginning"
        if getattr(args, "no_resume", False) and ckpt.stat().st_mtime < getattr(args, "started", 0):
            return (f"{how} before this run's first checkpoint: {ckpt} is still the earlier run's (rerun with "
                    "--no-resume to start over again, or without it to continue the earlier run)")
        rerun = _rerun(args)
        holds, there = _checkpoint_holds(ckpt)  # (part-way through an epoch: it resumes at the next batch)
        return f"{how}; {ckpt} holds this run's last checkpoint{holds}: {rerun} to resume{there}"
    if args.command == "demo" and run_dir is not None:
        ckpt = run_dir / "checkpoint.pt"
        kept = (f"; {ckpt} is still the earlier demo's until the new one's first checkpoint"
                if ckpt.is_file() and ckpt.stat().st_mtime < getattr(args, "started", 0) else "")
        return f"{how}{kept}; `neurosim demo` trains from the start when run again"
    if args.command == "continual" and run_dir is not None:
        finished = run_dir / "finished"
        if not any(finished.glob("*.json")) if finished.is_dir() else True:
            return f"{how} before any (method, seed) had finished: nothing was kept, a rerun starts from the beginning"
        rerun = _rerun(args)
        return f"{how}; the finished (method, seed) results are kept in {finished}: {rerun} to continue"
    return how


if __name__ == "__main__":  # pragma: no cover  (python -m neurosim.cli)
    # the package's own module, not this __main__ copy of it: the subcommands raise neurosim.cli's UserError, which
    # this copy's _run would not catch (a traceback instead of one line and status 2)
    from neurosim.cli import main as _package_main

    sys.exit(_package_main())

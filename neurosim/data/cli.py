"""``neurosim datasets``: list the registered datasets, prepare (download + convert) one, check its files.

    neurosim datasets list [--root DIR]
    neurosim datasets prepare NAME [--root DIR] [--time-steps T] [--no-frames]
    neurosim datasets check NAME [--root DIR] [--max-bad N]
    neurosim datasets clean [--dry-run]

``--root`` is the folder that holds tonic's ``<ClassName>/`` dataset folders (default: ``<neurosim cache>/datasets``;
a root tonic already downloaded into works as is) and the generated file of the bundled ``event_digits`` (by
default in the neurosim cache itself). ``prepare`` downloads only what is not on disk (tonic's own
download code and progress bar), then converts both splits to the frame cache with a progress bar; with the files
already there it needs no network. ``prepare`` exits with 1 when the cache folder cannot take the data or the
frames (full, read-only): the error names the file, the cause and what to do. ``check`` reads every data file and lists all the bad ones; it exits with 1
when any file is bad. ``clean`` lists, with their sizes, and removes the cache files no run reads again
(:mod:`neurosim.data.clean`: frames under an old name or format, of data that changed or is gone); ``--dry-run``
only lists them.
"""

from __future__ import annotations

import re
import sys

__all__ = ["register"]


def _error(args, message: str) -> int:
    print(f"neurosim datasets {args.action}: error: {message}", file=sys.stderr)
    return 2


def cmd_list(args) -> int:
    from neurosim.data.registry import DATASETS

    from neurosim.data.tonic_datasets import label_notes

    rows, counted, notes = [], [], []
    for info in sorted(DATASETS.values(), key=lambda i: (not i.bundled, i.name)):
        root = info.root(args.root)
        on_disk = info.on_disk(root)
        if on_disk and "spec" in info.extra:  # SHD-format files of one's own whose labels and names disagree
            notes += [f"{info.name}: {note}" for note in label_notes(info.extra["spec"], root)]
        # the classes the files on disk name, where they name them (SHD's extra/keys, N-Caltech101's class folders:
        # files of one's own, write_shd_h5's, may hold fewer than the registry's), else the registry's count
        names = info.class_names(root) if on_disk and info.file_classes is not None and not info.classes else ()
        if names:
            counted.append(info.name)
        rows.append((info.name, "on disk" if on_disk else "not on disk",
                     "x".join(map(str, info.sensor_size)), str(len(names) if names else info.num_classes),
                     str(info.default_time_steps), info.default_config or "-",
                     re.split(r" \(|,|;", info.size_note)[0], str(info.location(root))))
    head = ("name", "status", "sensor", "classes", "T", "config", "size", "path")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip())
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    # (the table alone on stdout, for scripts)
    print(f"classes: {'as the files on disk name them for ' + ', '.join(counted) + ', ' if counted else ''}"
          "the registry's count" + (" for the others" if counted else ""), file=sys.stderr)
    for note in notes:
        print(note, file=sys.stderr)
    print("and folder:PATH: recordings of your own, in PATH/train/<class>/ and PATH/test/<class>/ with a "
          "PATH/dataset.toml (neurosim.data.folder)", file=sys.stderr)
    return 0


def cmd_prepare(args) -> int:
    from neurosim.data.registry import MissingReaderError, get_dataset

    try:
        info = get_dataset(args.name)
    except ValueError as e:  # a folder dataset that is not one
        return _error(args, str(e))
    root = info.root(args.root)
    where = info.location(root)
    print(f"{info.name}: {info.description}")
    print(f"location: {where}" + ("" if info.on_disk(root) else f" (not on disk yet: {info.size_note})"))
    from neurosim.data._cache import CacheWriteError

    try:
        result = info.prepare(root, progress=not args.quiet, frames=not args.no_frames, time_steps=args.time_steps)
    except MissingReaderError as e:
        return _error(args, str(e))
    except CacheWriteError as e:  # preparing is caching: a cache that cannot be written is a failure
        print(f"neurosim datasets prepare: error: {e}", file=sys.stderr)
        return 1
    samples = ", ".join(f"{n} {split}" for split, n in result["samples"].items())
    print(f"ready: {samples} samples in {result['location']}")
    for split, shape in result["frames"].items():
        print(f"frames cached ({split}): {list(shape)} [N, T, P, H, W]")
    if result.get("uncached"):
        print(f"neurosim datasets prepare: error: the {' and '.join(result['uncached'])} frames were converted but "
              f"not cached: {where} does not exist or holds no files (see the warning above)", file=sys.stderr)
        return 1
    hint = _folder_config_hint(info) if "folder" in info.extra else info.extra.get("config_hint")
    # the overrides that make training find this root and reuse the frames just cached
    sets = ([f"data.root={root}"] if args.root and "folder" not in info.extra else []) + \
        ([f"data.time_steps={args.time_steps}"] if args.time_steps is not None and not args.no_frames else [])
    names = info.class_names(root) if "folder" not in info.extra else ()
    if names and len(names) != info.num_classes:  # files of one's own in a registered format (SHD's extra/keys)
        if not info.default_config and hint and "model.num_classes=" in hint:
            hint = re.sub(r"model\.num_classes=\d+", f"model.num_classes={len(names)}", hint)
        else:
            sets.append(f"model.num_classes={len(names)}")
    if info.default_config:
        print(f"train it: neurosim train --config {info.default_config}" + "".join(
            f" {'--set ' if i == 0 else ''}{s}" for i, s in enumerate(sets)))
    elif hint:
        print(f"train it: neurosim train {hint}" + "".join(f" {s}" for s in sets))
    return 0


def _folder_config_hint(info) -> str:
    """The ``--config quickstart --set ...`` arguments that train a model on the folder dataset ``info``, each
    candidate built as ``neurosim train`` builds it and the first that builds taken: quickstart's two conv blocks on
    its frames ``[P, H, W]``; its first block alone (``model.channels=[16]``) where two leave no pixels (a small
    sensor); an MLP on the flattened frames (``model.kind=mlp``, one hidden layer) where no conv block fits (a sensor
    one row high, or a tiny one). A sensor one row high and of one polarity is taken as audio (channels of a cochlea
    model, as neurosim.data.audio writes them): the hint is the ``shd`` config's recurrent-free MLP over T = 100 steps
    on its channels, which keeps memory over many steps where quickstart's T = 10 conv net would not."""
    import shlex

    import torch

    from neurosim.config import SHIPPED_CONFIGS, load_config
    from neurosim.nn import build_model

    from neurosim.data.folder import audio_like

    w, h, p = info.sensor_size
    if audio_like(info.sensor_size):  # SHD's settings, on this folder's channels and classes (and prepare's frames)
        overrides = [f"data.dataset={info.name}", f"model.input_shape=[{w}]", f"model.num_classes={info.num_classes}"]
        load_config(SHIPPED_CONFIGS / "shd.toml", overrides)  # (it builds: an MLP takes any width)
        return "--config shd --set " + " ".join(shlex.quote(item) for item in overrides)
    base = SHIPPED_CONFIGS / "quickstart.toml"
    first = load_config(base).model.channels[:1]
    head = [f"data.dataset={info.name}"]
    classes = [f"model.num_classes={info.num_classes}"]
    frames = f"model.input_shape=[{p},{h},{w}]"
    candidates = [
        head + [frames] + classes,
        head + [frames, f"model.channels=[{','.join(map(str, first))}]"] + classes,
        head + ["model.kind=mlp", f"model.input_shape=[{p * h * w}]", "model.hidden=[128]"] + classes,
    ]
    for overrides in candidates:
        try:
            cfg = load_config(base, overrides)
            with torch.random.fork_rng(devices=[]):  # (a trial build: no draw of the caller's is taken)
                build_model(cfg.model, cfg.neuron)
        except ValueError:
            continue
        break
    return "--config quickstart --set " + " ".join(shlex.quote(item) for item in overrides)


def cmd_check(args) -> int:
    from neurosim.data.registry import DatasetNotFoundError, MissingReaderError, get_dataset

    try:
        info = get_dataset(args.name)
    except ValueError as e:  # a folder dataset that is not one
        return _error(args, str(e))
    if "folder" in info.extra:  # training's rules: what it would read, and nothing else in the class folders
        from neurosim.data.folder import FolderDatasetError, recordings
        from neurosim.data.readers import BadFile, check_files

        strays: list = []  # files of other types in the class folders: listed with the bad recordings
        try:
            files = [f for split in ("train", "test")
                     for f, _ in recordings(info.extra["folder"], split, info.classes, strays)]
        except FolderDatasetError as e:
            return _error(args, str(e))
        no_events: list = []  # good recordings without events (valid: zero frames), named after the bad ones

        def read(file):
            events = info.extra["reader"](file)
            if len(events) == 0:
                no_events.append(file)
            return events

        report = check_files(files, read, progress=not args.quiet and sys.stderr.isatty())
        report.bad[:0] = [BadFile(path, why) for path, why in strays]
        print(report.format(max_bad=args.max_bad))
        if no_events:
            more = f" and {len(no_events) - 5} more" if len(no_events) > 5 else ""
            what = "ok recording holds" if len(no_events) == 1 else "ok recordings hold"
            print(f"{len(no_events)} {what} no events (their frames are all zero: right for a recording where "
                  f"nothing moved, else leave them out): {', '.join(map(str, no_events[:5]))}{more}")
        return 0 if report.all_ok and report.n_checked else 1
    spec = info.extra.get("spec")
    if spec is None:
        print(f"{info.name}: nothing to check — it is generated locally, and a corrupt cache file "
              f"({info.location(info.root(args.root))}) is detected and rebuilt when loaded")
        return 0
    from neurosim.data.tonic_datasets import check_dataset

    try:
        report = check_dataset(spec, info.root(args.root), progress=not args.quiet and sys.stderr.isatty())
    except (DatasetNotFoundError, MissingReaderError) as e:  # with the prefix of the command's other errors
        return _error(args, str(e))
    except ImportError as e:  # the checking readers live in neurosim.data.readers
        return _error(args, f"the file readers are not available ({e})")
    print(report.format(max_bad=args.max_bad))
    if report.n_checked == 0:
        return 1
    return 0 if report.all_ok else 1


def cmd_clean(args) -> int:
    from neurosim.data._cache import default_cache_dir
    from neurosim.data.clean import remove_entries, size_text, stale_entries

    root = default_cache_dir()
    entries = stale_entries(root)
    if not entries:
        print(f"no stale cache files in {root}")
        return 0
    total = sum(e.size_bytes for e in entries)
    print(f"{len(entries)} stale cache entr{'y' if len(entries) == 1 else 'ies'} in {root}, {size_text(total)}:")
    for entry in entries:
        print(f"  {entry.describe(root)}: {size_text(entry.size_bytes)}, {entry.reason}")
    if args.dry_run:
        print("--dry-run: nothing removed; run `neurosim datasets clean` to remove them")
        return 0
    removed, failed = remove_entries(entries, root)
    print(f"removed {len(removed)} file{'s' if len(removed) != 1 else ''}")
    for path, why in failed:
        print(f"neurosim datasets clean: error: {path} could not be removed ({why})", file=sys.stderr)
    return 1 if failed else 0


def _positive_int(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _quiet(parser, what: str) -> None:
    """``-q`` on ``parser`` with what it does there (``neurosim.cli`` adds it to every command, its help about
    train's and demo's output, to those that lack one); SUPPRESS keeps ``neurosim -q datasets ...``'s value."""
    import argparse

    parser.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help=what)


def register(sub) -> None:
    from neurosim.data.registry import DATASETS

    names = sorted(DATASETS)
    p = sub.add_parser("datasets", help="list, prepare (download + convert) and check datasets",
                       description=__doc__.split("\n\n")[0].replace("``", ""))  # (no reST marks in --help)
    _quiet(p, "no progress bars (prepare's download and frame conversion, check's reading of the files); what the "
              "commands report is printed as ever")
    actions = p.add_subparsers(dest="action", required=True, metavar="{list,prepare,check,clean}")

    def root_arg(q):
        q.add_argument("--root", default=None,
                       help="folder holding tonic's <ClassName>/ dataset folders (default: <neurosim cache>/datasets)")

    q = actions.add_parser("list", help="every dataset, whether it is on disk, and where")
    root_arg(q)
    _quiet(q, "no effect here: list shows no progress bar, only its table (-q is taken by every command)")
    q.set_defaults(func=cmd_list)

    def dataset_name(text: str) -> str:
        import argparse

        if text in names or text.startswith("folder:"):
            return text
        raise argparse.ArgumentTypeError(f"unknown dataset {text!r} (choose from {', '.join(names)}, or "
                                         "folder:PATH for recordings of your own)")

    one_of = f"one of: {', '.join(names)}; or folder:PATH, a folder of your own recordings"
    q = actions.add_parser("prepare", help="download (if not on disk) and convert a dataset to cached frames")
    q.add_argument("name", type=dataset_name, metavar="NAME", help=one_of)
    root_arg(q)
    q.add_argument("--time-steps", type=_positive_int, default=None, help="frames per sample (default: the dataset's)")
    q.add_argument("--no-frames", action="store_true", help="only download and extract, do not convert to frames")
    _quiet(q, "no progress bars (tonic's download, the frame conversion); where the data is, the samples and frames "
              "made and the command that trains on them are still printed")
    q.set_defaults(func=cmd_prepare)

    q = actions.add_parser("check", help="read every file of a dataset and report all bad ones")
    q.add_argument("name", type=dataset_name, metavar="NAME", help=one_of)
    root_arg(q)
    q.add_argument("--max-bad", type=_positive_int, default=50, help="list at most this many bad files (default 50)")
    _quiet(q, "no progress bar while the files are read; the report of the bad files is still printed")
    q.set_defaults(func=cmd_check)

    q = actions.add_parser("clean", help="remove the cache files no run reads again (old names, changed data)",
                           description="List, with their sizes, and remove the entries of neurosim's cache "
                                       "(NEUROSIM_CACHE_DIR, default ~/.cache/neurosim) that no run reads again: "
                                       "frames cached under an old name or format, frames of data that changed "
                                       "or is gone, event digits of an older version. Only neurosim's own cache "
                                       "files are taken; downloaded datasets and anything else stay.")
    q.add_argument("--dry-run", action="store_true", help="list them, remove nothing")
    _quiet(q, "no effect here: clean shows no progress bar (-q is taken by every command)")
    q.set_defaults(func=cmd_clean)

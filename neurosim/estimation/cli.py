"""``neurosim estimate``: energy, latency and mapping of a trained model on neuromorphic and RRAM targets."""

from __future__ import annotations

import math
from pathlib import Path

__all__ = ["register"]


def cmd_estimate(args) -> int:
    from neurosim._io import check_output_folder
    from neurosim.cli import UserError
    from neurosim.estimation import _targets, check_inputs_outside, estimate_checkpoint, estimate_files, target_keys
    from neurosim.hardware.cli_support import (check_fixed_point_args, check_nonideal_args, run_fixed_point_from_args,
                                               run_nonideal_from_args)

    if bool(args.checkpoint) == bool(args.nir):
        raise UserError("give either --checkpoint PATH, or --nir MODEL.nir with --activity ACTIVITY.json")
    if args.nonideal and not args.checkpoint:
        raise UserError("--nonideal needs --checkpoint: the accuracy is measured on the checkpoint's test data")
    if args.activity and not args.nir:
        raise UserError("--activity goes with --nir; with --checkpoint the activity is measured on its test data")
    if args.samples is not None and not args.checkpoint:
        raise UserError("--samples goes with --checkpoint (the test samples its activity is measured on); with --nir "
                        "the activity file gives the activity")
    try:
        target_keys(args.target)  # two spec files of one name would share a row and a file
        _targets(args.target)  # a misspelt name or a missing spec file, before the model and its data are read
    except ValueError as e:
        raise UserError(str(e)) from None
    out, flag = None, "--out"
    if args.out:
        out = Path(args.out)
        check_output_folder(args.out, flag)
    elif args.checkpoint or args.nir:  # the default, beside the checkpoint or the NIR file: checked as early
        from neurosim.training.checkpoint import CheckpointError, beside_checkpoint

        flag = "--out (default: beside the model)"
        try:
            out = beside_checkpoint(args.checkpoint, "estimate") if args.checkpoint else _beside_nir(args.nir)
        except CheckpointError:
            out = None  # reported with the checkpoint itself
        if out is not None and out.parent.is_dir():
            check_output_folder(out, flag)
    try:
        samples = 64 if args.samples is None else args.samples
        if samples < 1:
            raise UserError(f"--samples must be at least 1, got {samples}")
        if args.chips is not None and args.chips < 1:
            raise UserError(f"--chips must be at least 1, got {args.chips}")
        options = {} if args.chips is None else {"chips": args.chips}
        if args.placement_ties is not None:
            options["placement_ties"] = args.placement_ties
        _check_digital_options(args)
        if args.step_ms is not None and not (math.isfinite(args.step_ms) and args.step_ms > 0):
            raise UserError(f"--step-ms must be a positive number of milliseconds, got {args.step_ms:g}")
        check_nonideal_args(args, args.checkpoint)  # before the estimate: a bad flag costs nothing
        check_fixed_point_args(args, args.checkpoint)
        _check_early_exit_args(args)
        if args.per_sample and not args.checkpoint:
            raise UserError("--per-sample needs --checkpoint: each test sample's activity is measured on the model "
                            "(an activity file holds only their mean)")
        if args.nir and args.activity and out is not None:
            check_inputs_outside(out, args.nir, args.activity)  # (named as such, before the files of others)
        if out is not None and not args.overwrite:
            _check_files_are_neurosims(out, flag)
        if args.checkpoint:
            from neurosim.runs import load_run

            # read once: the estimate, --nonideal, --fixed-point and --early-exit all use its model and test split
            loaded = load_run(args.checkpoint, progress=not args.quiet, test_only=True)
            report = estimate_checkpoint(args.checkpoint, args.target, samples=samples, out_dir=args.out,
                                         progress=not args.quiet, step_ms=args.step_ms, loaded=loaded,
                                         overwrite=args.overwrite, **options)
        else:
            loaded = None
            if not args.activity:
                raise UserError("--nir needs --activity ACTIVITY.json (spikes per node and step, see "
                                "hardware_models.ActivityProfile)")
            out = args.out or str(_beside_nir(args.nir))
            report = estimate_files(args.nir, args.activity, args.target, out_dir=out, step_ms=args.step_ms,
                                    overwrite=args.overwrite, **options)
    except (ValueError, FileNotFoundError) as e:
        raise UserError(str(e)) from None
    print(report.table())
    measured = getattr(report.activity, "samples", None)
    if args.samples is not None and measured is not None and measured < args.samples:  # the whole test split
        print(f"note: --samples {args.samples}: the test split has {measured} samples; all {measured} were measured"
              + (" (and are estimated one by one with --per-sample)" if args.per_sample else ""))
    for e in report.estimates.values():
        for v in (e.mapping.violations if e.mapping else ()):
            print(f"  {e.target}: {v.message}")
    if report.files:
        print(f"estimate: {report.files['estimate.json']}")
    run_nonideal_from_args(args, args.checkpoint, args.out, loaded=loaded)
    run_fixed_point_from_args(args, args.checkpoint, args.out,
                              float_activity=report.activity if args.checkpoint else None, loaded=loaded)
    if args.early_exit:
        from neurosim.estimation.early_exit import DEFAULT_THRESHOLDS, early_exit_checkpoint

        try:
            ee = early_exit_checkpoint(args.checkpoint, args.target, samples=args.early_exit_samples,
                                       out_dir=args.out, progress=not args.quiet, step_ms=args.step_ms,
                                       thresholds=args.exit_thresholds or DEFAULT_THRESHOLDS,
                                       metric=args.exit_metric or "confidence", loaded=loaded,
                                       per_sample=args.per_sample, overwrite=args.overwrite, **options)
        except ValueError as e:
            raise UserError(str(e)) from None
        print(ee.table())
        print(f"early exit: {ee.files['early_exit.json']}")
    if args.per_sample:
        from neurosim.estimation.per_sample import per_sample_checkpoint

        try:
            ps = per_sample_checkpoint(args.checkpoint, args.target, samples=samples, out_dir=args.out,
                                       progress=not args.quiet, step_ms=args.step_ms, loaded=loaded,
                                       overwrite=args.overwrite, **options)
        except ValueError as e:
            raise UserError(str(e)) from None
        print(ps.table())
        print(f"per sample: {ps.files['per_sample.json']}")
    return 0


def _check_files_are_neurosims(out: Path, flag: str) -> None:
    """Before anything is written (without ``--overwrite``): :func:`neurosim.estimation.check_estimate_folder`
    refuses an output folder that is no estimate's and holds files named as an estimate writes them (its notes in
    ``estimate.txt``, an ``activity.json`` or ``model.nir`` of its own, with ``--out .``). A rerun, the default
    folder and an estimate stopped part-way are neurosim's and go on, as ``neurosim export --out`` replaces only its
    own export."""
    from neurosim._io import OutputPathError
    from neurosim.cli import UserError
    from neurosim.estimation import check_estimate_folder

    try:
        check_estimate_folder(out, flag=flag, how="pass --overwrite")
    except OutputPathError as e:
        raise UserError(str(e)) from None


def _beside_nir(nir_path) -> Path:
    """The default output folder of ``--nir``: ``<stem>-estimate`` beside the file (not a run's own ``estimate``,
    which ``neurosim export``'s ``model.nir`` sits beside, and not one shared by two NIR files of one folder)."""
    path = Path(nir_path).resolve()
    return path.parent / f"{path.stem}-estimate"


def _check_digital_options(args) -> None:
    """``--chips`` and ``--placement-ties`` only where a target asked for is digital: they set how a model is placed
    on a digital chip's cores, and every other target skips them with a note in estimate.json alone, so that
    ``--target rram_neurosim --nonideal --chips 2`` ran 5 Monte-Carlo chips (``--mc-chips``) without a word."""
    from hardware_models import SpecError, load_spec

    from neurosim.cli import UserError

    given = [flag for flag, value in (("--chips", args.chips), ("--placement-ties", args.placement_ties))
             if value is not None]
    if not given or not args.target:  # every shipped target, digital ones among them
        return
    try:
        if any(load_spec(t).kind == "digital" for t in args.target):
            return
    except SpecError:
        return  # an unknown target or a bad spec file: named where the targets are read
    one = len(given) == 1
    also = (" (the Monte-Carlo chips of --nonideal are --mc-chips)" if args.nonideal and args.chips is not None
            else "")
    raise UserError(f"{' and '.join(given)} appl{'ies' if one else 'y'} to digital targets (how a model is placed on "
                    f"their chips' cores), and none of {args.target} is one{also}: add a digital --target, or leave "
                    f"{'it' if one else 'them'} out")


def _check_early_exit_args(args) -> None:
    """``--early-exit``'s options only with it, and with ``--checkpoint``; thresholds in [0, 1]."""
    from neurosim.cli import UserError

    if not args.early_exit:
        for flag, given in (("--exit-thresholds", args.exit_thresholds is not None),
                            ("--exit-metric", args.exit_metric is not None),
                            ("--early-exit-samples", args.early_exit_samples is not None)):
            if given:
                raise UserError(f"{flag} applies only with --early-exit: add --early-exit, or leave it out")
        return
    if not args.checkpoint:
        raise UserError("--early-exit needs --checkpoint: accuracy and activity are measured on its test data")
    if args.early_exit_samples is not None and args.early_exit_samples < 1:
        raise UserError(f"--early-exit-samples must be at least 1, got {args.early_exit_samples}")
    bad = [c for c in args.exit_thresholds or () if not 0 <= c <= 1]
    if bad:
        raise UserError(f"--exit-thresholds must lie in [0, 1] (a probability, or one minus a normalised entropy), "
                        f"got {', '.join(f'{c:g}' for c in bad)}")


def register(sub) -> None:
    from neurosim.hardware.cli_support import _fractions, add_fixed_point_arguments, add_nonideal_arguments

    p = sub.add_parser("estimate", help="estimate energy, latency and mapping on neuromorphic/RRAM targets")
    p.add_argument("--checkpoint", help="a neurosim checkpoint (activity measured on its test split)")
    p.add_argument("--nir", help="a NIR graph from any library (with --activity); one that nir's type check refuses "
                                 "is read without it when the hardware models' own checks accept it (noted)")
    p.add_argument("--activity", help="activity.json for --nir (hardware_models.ActivityProfile)")
    p.add_argument("--target", action="append", default=None,
                   help="target spec name or file (repeatable; default: every shipped target)")
    p.add_argument("--samples", type=int, default=None,
                   help="test samples the activity is measured on, with --checkpoint (default 64)")
    p.add_argument("--out", default=None, help="output folder (default: <checkpoint dir>/estimate for a run's "
                   "checkpoint.pt; estimate-best for its best.pt, estimate-NAME for another NAME.pt; for --nir "
                   "MODEL.nir, MODEL-estimate beside it)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace files in the output folder named as the estimate writes them (estimate.txt, "
                        "activity.json, model.nir, ...) even where neurosim did not write them (an earlier estimate's "
                        "are replaced without it)")
    p.add_argument("--chips", type=int, default=None, metavar="N",
                   help="chips the digital targets may map the model onto (default 1: a model needing more is "
                        "marked as not fitting, with the number it needs); crossbar targets ignore it, with a note, "
                        "and without a digital target it is refused (--nonideal's Monte-Carlo chips: --mc-chips)")
    p.add_argument("--placement-ties", choices=("latency", "energy"), default=None,
                   help="on digital targets, where placement orders need as many cores: the one with the shortest "
                        "latency, then the least energy (latency, the default), or the least energy first (energy); "
                        "a note in estimate.json names the order chosen, its mapping's tied_orders every tied order's "
                        "figures")
    p.add_argument("--step-ms", type=float, default=None,
                   help="time per step on chips that run in real time (e.g. Speck; fixed-tick chips keep their "
                        "tick), in ms (default: the model's neuron.dt_ms, or with --nir the activity's dt_s; for "
                        "binned event recordings, the recording's duration / T)")
    add_nonideal_arguments(p)
    add_fixed_point_arguments(p)
    g = p.add_argument_group("early exit (with --checkpoint)")
    g.add_argument("--early-exit", action="store_true",
                   help="also measure accuracy, energy and latency per inference on each target when the chip stops "
                        "after 1..T steps, and when each sample stops once its read-out is confident (SEENN-I); "
                        "writes early_exit.json/.txt/.png")
    g.add_argument("--exit-thresholds", type=_fractions, default=None, metavar="C,C,...",
                   help="confidence thresholds in [0, 1] (default 0.5,0.7,0.8,0.9,0.95,0.99)")
    g.add_argument("--exit-metric", choices=("confidence", "entropy"), default=None,
                   help="largest softmax probability of the running read-out (default), or 1 - its normalised "
                        "entropy")
    g.add_argument("--early-exit-samples", type=int, default=None, metavar="N",
                   help="test samples for --early-exit (default: the whole test split)")
    g = p.add_argument_group("per-sample cost (with --checkpoint)")
    g.add_argument("--per-sample", action="store_true",
                   help="also estimate each of the --samples test samples on its own: the mean, median, 90th and "
                        "99th percentile and maximum of the energy and latency per inference beside the estimate of "
                        "their mean activity (a busiest-core chip's latency is a maximum: the mean activity "
                        "understates it), and the slowest samples; writes per_sample.json/.txt/.png. With "
                        "--early-exit, each sample's latency over the steps it runs too (mean, p99, max per threshold)")
    p.set_defaults(func=cmd_estimate)

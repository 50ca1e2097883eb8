"""``neurosim estimate ... --nonideal`` (RRAM chips) and ``--fixed-point`` (digital chips' integers): the flags and the
runs, kept here so the estimate command wires each in two lines.

In ``neurosim/estimation/cli.py``::

    add_nonideal_arguments(p)                                   # in register(), after the other arguments
    check_nonideal_args(args, args.checkpoint)                  # in cmd_estimate(), before the estimate
    run_nonideal_from_args(args, args.checkpoint, args.out)     # in cmd_estimate(), after the estimate is printed

(with ``from neurosim.hardware.cli_support import ...``). Without ``--nonideal`` both do nothing (the run
returns ``{}``).

Example:
    >>> import argparse
    >>> p = argparse.ArgumentParser()
    >>> _ = p.add_argument("--target", action="append")
    >>> add_nonideal_arguments(p)
    >>> args = p.parse_args(["--nonideal", "--target", "rram_neurosim", "--sigma", "0.1"])
    >>> args.nonideal, args.mc_chips, args.sigma, args.fault_rate
    (True, 5, 0.1, 0.01)
    >>> args.levels, args.adc_bits, args.drift_nu_std, args.drift_t0_s, args.drift_compensation  # the spec's, no drift
    (None, None, 0.0, 1.0, False)
    >>> args.adc_calibration  # the ADC's full scale follows the cells it reads
    'read'
"""

from __future__ import annotations

import argparse
from pathlib import Path

from neurosim.hardware.nonideal import ADC_CALIBRATIONS, MAX_ADC_BITS

__all__ = ["add_fixed_point_arguments", "add_nonideal_arguments", "check_fixed_point_args", "check_nonideal_args",
           "run_fixed_point_from_args", "run_nonideal_from_args"]


def _fractions(text: str) -> list[float]:
    parts = [v.strip() for v in text.split(",")]
    if not any(parts):
        raise argparse.ArgumentTypeError("expected at least one value")
    if "" in parts:  # "0.5,,0.7": a value left out, not one fewer value meant
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 0,0.05,0.1, got {text!r}, with "
                                         f"an empty entry (value {parts.index('') + 1})")
    try:
        return [float(v) for v in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 0,0.05,0.1, got {text!r}") from None


class _Given(argparse.Action):
    """Stores like argparse's own actions and also notes the flag as given, so that a flag given without
    ``--nonideal`` is named even when its value equals the default (``--sigma 0.05``)."""

    def __init__(self, option_strings, dest, flag_value=None, **kwargs):
        self.flag_value = flag_value
        super().__init__(option_strings, dest, nargs=0 if flag_value is not None else None, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, self.flag_value if self.flag_value is not None else values)
        given = dict(getattr(namespace, "_nonideal_given", None) or {})
        given[self.option_strings[0]] = True
        setattr(namespace, "_nonideal_given", given)


#: the most magnitude levels --levels takes: 15 bits, as the energy model's widest (16-bit signed) weights
MAX_LEVELS = 2**15


def add_nonideal_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--nonideal`` and its options (chips, σ, fault rate, read noise, ADC, drift, sweeps) to ``parser``."""
    g = parser.add_argument_group("RRAM device non-idealities (crossbar targets, with --checkpoint)")
    g.add_argument("--nonideal", action="store_true",
                   help="also evaluate test accuracy on Monte-Carlo RRAM chips of each crossbar target (spec's weight "
                        "quantisation, bit-sliced over its cells, on/off ratio, tile rows and ADC, plus the effects "
                        "below, each cell on its own), next to the ideal accuracy, and sweep variation and fault rate")
    g.add_argument("--mc-chips", action=_Given, type=int, default=5,
                   help="Monte-Carlo chips per setting (default 5)")
    g.add_argument("--sigma", action=_Given, type=float, default=0.05,
                   help="programming variation, σ relative to G (a fraction: 0.05 is 5 %%), at the operating point "
                        "(default 0.05)")
    g.add_argument("--fault-rate", action=_Given, type=float, default=0.01,
                   help="fraction of stuck-at cells at the operating point, half stuck ON, half OFF (default 0.01)")
    g.add_argument("--stuck-on-fraction", action=_Given, type=float, default=0.5,
                   help="share of the stuck cells stuck at G_on (default 0.5)")
    g.add_argument("--read-noise", action=_Given, type=float, default=0.02,
                   help="per-read conductance noise, σ relative to G (a fraction; default 0.02)")
    g.add_argument("--no-adc", action=_Given, flag_value=True, default=False,
                   help="read column currents exactly instead of the spec's ADC")
    g.add_argument("--adc-bits", action=_Given, type=int, default=None, metavar="B",
                   help=f"bits of the column ADC, 1 to {MAX_ADC_BITS} (default: the spec's array.adc_bits, 5 on "
                        "rram_neurosim, 4 on rram_lsm40nm); the energy estimate keeps the spec's energy per conversion")
    g.add_argument("--levels", action=_Given, type=int, default=None, metavar="N",
                   help=f"weight quantisation: magnitude levels on each side of a weight's differential pair, 2 to "
                        f"{MAX_LEVELS} (default: the spec's 2^(weight_bits-1)), bit-sliced over as many of the "
                        "spec's cells as they need (rram_neurosim: 128 levels on seven 1-bit cells; rram_lsm40nm: 16 "
                        "on one 4-bit cell); at the operating point and in the sweeps. The energy estimate keeps the "
                        "spec's weight_bits")
    g.add_argument("--no-quantize", action=_Given, flag_value=True, default=False,
                   help="no weight quantisation: one analog cell per side of each pair, at the operating point and "
                        "in the sweeps")
    g.add_argument("--drift-nu", action=_Given, type=float, default=0.0,
                   help="conductance drift exponent ν, G(t) = G0·(t/t0)^-ν (default 0: no drift)")
    g.add_argument("--drift-nu-std", action=_Given, type=float, default=0.0, metavar="S",
                   help="device-to-device spread of ν: each cell's exponent is drawn from N(--drift-nu, S), clipped "
                        "at 0 (default 0: one ν for every cell, which scales every weight alike)")
    g.add_argument("--drift-time-s", action=_Given, type=float, default=86400.0,
                   help="time since programming for the drift, seconds, at least t0 (default 86400: one day)")
    g.add_argument("--drift-t0-s", action=_Given, type=float, default=1.0, metavar="T0",
                   help="drift reference time t0, seconds: when the programmed G0 is read (default 1)")
    g.add_argument("--drift-compensation", action=_Given, flag_value=True, default=False,
                   help="global drift compensation: each layer's outputs are scaled by its array's summed read-out "
                        "at t0 over the same at t (Joshi et al., Nat. Commun. 2020), which undoes the mean decay; a "
                        "spread of ν stays")
    g.add_argument("--adc-calibration", action=_Given, choices=ADC_CALIBRATIONS, default="read",
                   help="when the ADC's full scale is set, with drift: 'read' (default) from each column's cells as "
                        "they are read, so it follows the drift and drift costs no ADC resolution (an ideal "
                        "calibration); 'programmed' once from the cells as programmed (at t0), so drifted currents "
                        "fill less of the range (--drift-compensation then restores their scale, not the codes)")
    g.add_argument("--sigmas", action=_Given, type=_fractions, default=None, metavar="S1,S2,...",
                   help="σ values of the variation sweep (default 0,0.05,0.1,0.2,0.5)")
    g.add_argument("--fault-rates", action=_Given, type=_fractions, default=None, metavar="F1,F2,...",
                   help="stuck-at rates of the fault sweep (default 0,0.01,0.02,0.05,0.1)")
    g.add_argument("--no-sweep", action=_Given, flag_value=True, default=False,
                   help="only the operating point, no sweeps")
    g.add_argument("--nonideal-samples", action=_Given, type=int, default=None, metavar="N",
                   help="test samples per chip (default: the whole test split)")
    g.add_argument("--mc-seed", action=_Given, type=int, default=0,
                   help="seed of the first chip (chip i uses seed + i; default 0)")
    parser.set_defaults(_nonideal_given=None)  # the options given (see _Given), to name those given without --nonideal


def check_nonideal_args(args: argparse.Namespace, checkpoint_path) -> list:
    """The crossbar specs ``--nonideal`` will run, after checking every flag it uses (so that a bad value is
    reported before the estimate, not after it): ``[]`` without ``--nonideal``.

    Raises:
        neurosim.cli.UserError: one line naming the flag.
    """
    if not getattr(args, "nonideal", False):
        given = list(getattr(args, "_nonideal_given", None) or {})
        if given:
            from neurosim.cli import UserError

            one = len(given) == 1
            raise UserError(f"{', '.join(given)} appl{'ies' if one else 'y'} only with --nonideal (the Monte-Carlo "
                            f"chips): add --nonideal, or leave {'it' if one else 'them'} out")
        return []
    import math

    from hardware_models import SpecError, list_targets, load_spec

    from neurosim.cli import UserError

    if not checkpoint_path:
        raise UserError("--nonideal needs --checkpoint: the accuracy is measured on the checkpoint's test data")
    if args.mc_chips < 1:
        raise UserError(f"--mc-chips must be at least 1, got {args.mc_chips}")
    if args.nonideal_samples is not None and args.nonideal_samples < 1:
        raise UserError(f"--nonideal-samples must be at least 1, got {args.nonideal_samples}")
    if args.no_sweep:
        swept = [flag for flag, v in (("--sigmas", args.sigmas), ("--fault-rates", args.fault_rates)) if v is not None]
        if swept:
            raise UserError(f"{' and '.join(swept)} set{'s' if len(swept) == 1 else ''} the sweeps, which --no-sweep "
                            "turns off: leave one out")
    given = getattr(args, "_nonideal_given", None) or {}
    if args.levels is not None:
        if args.no_quantize:
            raise UserError(f"--levels {args.levels} sets the quantisation that --no-quantize turns off: leave one out")
        if not 2 <= args.levels <= MAX_LEVELS:
            raise UserError(f"--levels must be 2 to {MAX_LEVELS} magnitude levels per side (at most 15 bits, as "
                            f"16-bit signed weights), got {args.levels}")
    if args.adc_bits is not None:
        if args.no_adc:
            raise UserError(f"--adc-bits {args.adc_bits} sets the ADC that --no-adc turns off: leave one out")
        if not 1 <= args.adc_bits <= MAX_ADC_BITS:
            raise UserError(f"--adc-bits must be 1 to {MAX_ADC_BITS} (float32 column currents resolve no finer steps; "
                            f"--no-adc reads them exactly), got {args.adc_bits}")
    at_least_zero = {"--sigma": [args.sigma], "--read-noise": [args.read_noise], "--drift-nu": [args.drift_nu],
                     "--drift-nu-std": [args.drift_nu_std], "--sigmas": args.sigmas or []}
    fractions = {"--fault-rate": [args.fault_rate], "--stuck-on-fraction": [args.stuck_on_fraction],
                 "--fault-rates": args.fault_rates or []}
    for flag, values in at_least_zero.items():
        for v in values:
            if not (math.isfinite(v) and v >= 0):
                raise UserError(f"{flag} must be a number >= 0, got {v}")
            if flag not in ("--drift-nu", "--drift-nu-std") and v > 1:  # σ relative to G: 5 (5 %) is 500 % of G
                raise UserError(f"{flag} must be a fraction of G in [0, 1] (0.05 is 5 %), got {v}")
    for flag, values in fractions.items():
        for v in values:
            if not 0 <= v <= 1:
                raise UserError(f"{flag} must be a fraction in [0, 1], got {v}")
    for flag, v in (("--drift-time-s", args.drift_time_s), ("--drift-t0-s", args.drift_t0_s)):
        if not (math.isfinite(v) and v > 0):
            raise UserError(f"{flag} must be a positive number of seconds, got {v}")
    if "--adc-calibration" in given and args.no_adc:
        raise UserError(f"--adc-calibration {args.adc_calibration} sets the ADC's full scale, which --no-adc turns "
                        "off: leave one out")
    idle = [f for f in ("--drift-time-s", "--drift-t0-s", "--drift-compensation", "--adc-calibration") if f in given]
    if idle and args.drift_nu == 0 and args.drift_nu_std == 0:
        one = len(idle) == 1
        raise UserError(f"{', '.join(idle)} ha{'s' if one else 've'} no effect without --drift-nu (ν = 0: no drift): "
                        f"add --drift-nu, e.g. 0.05, or leave {idle[0] if one else 'them'} out")
    t0 = args.drift_t0_s
    if args.drift_time_s < t0:
        named = ", --drift-t0-s" if "--drift-t0-s" in given else ""
        raise UserError(f"--drift-time-s must be at least {t0:g} s (t0{named}, when the programmed G0 is read: G(t) = "
                        f"G0·(t/{t0:g} s)^-ν holds from there on), got {args.drift_time_s}")
    asked = getattr(args, "target", None) or list_targets()
    try:
        specs = [load_spec(t) for t in asked]
    except SpecError as e:
        raise UserError(str(e)) from None
    crossbars = [s for s in specs if s.kind == "crossbar"]
    if not crossbars:
        raise UserError(f"--nonideal needs a crossbar (RRAM) target, e.g. --target rram_neurosim; got "
                        f"{[s.name for s in specs]}")
    from neurosim.hardware.report import nonideal_config_from_spec

    for spec in crossbars:  # what the spec itself gives (its ADC) is checked before the estimate too
        try:
            nonideal_config_from_spec(spec, adc=not args.no_adc, adc_bits=args.adc_bits)
        except ValueError as e:
            raise UserError(f"--nonideal: {e}") from None
    return crossbars


def run_nonideal_from_args(args: argparse.Namespace, checkpoint_path, out_dir, loaded=None) -> dict:
    """Run what :func:`add_nonideal_arguments` asked for; prints a table per target and returns ``{target: report}``.

    Args:
        args: parsed arguments (``args.target``: the targets; non-crossbar ones are skipped, none means every
            shipped crossbar target).
        checkpoint_path: the checkpoint being estimated (None: ``--nonideal`` is an error, it needs test data).
        out_dir: where ``nonideal_<target>.json`` and the sweep figures go (None: ``<checkpoint dir>/estimate``).
        loaded: :func:`neurosim.runs.load_run`'s ``(model, config, data)`` of ``checkpoint_path`` (``test_only``)
            when already read (see :func:`neurosim.hardware.report.load_checkpoint_model`); None reads it.

    Raises:
        neurosim.cli.UserError: bad values, no checkpoint, or no crossbar target (one line for the CLI).
    """
    if not getattr(args, "nonideal", False):
        return {}
    from neurosim.cli import UserError
    from neurosim.hardware.report import (FAULT_RATES, SIGMAS, format_nonideal, load_checkpoint_model,
                                          nonideal_report_model)
    from neurosim.training.checkpoint import beside_checkpoint

    crossbars = check_nonideal_args(args, checkpoint_path)
    from hardware_models import load_spec

    chosen = {s.name for s in crossbars}
    for t in dict.fromkeys(getattr(args, "target", None) or []):  # the targets asked for that get no chips: say so
        spec = load_spec(t)
        if spec.name not in chosen:
            print(f"non-ideal: {spec.name} not simulated (a {spec.kind} target, not an RRAM crossbar"
                  + ("; its integer arithmetic: --fixed-point" if "arithmetic" in spec.options else "") + ")")
    out = Path(out_dir) if out_dir else beside_checkpoint(checkpoint_path, "estimate")
    progress = not getattr(args, "quiet", False)
    model, test, cfg = load_checkpoint_model(checkpoint_path, progress=progress, loaded=loaded)
    opts = dict(chips=args.mc_chips, sigma_rel=args.sigma, fault_rate=args.fault_rate,
                stuck_on_fraction=args.stuck_on_fraction, read_noise_rel=args.read_noise, adc=not args.no_adc,
                adc_bits=args.adc_bits, quantize=not args.no_quantize, levels=args.levels,
                drift_nu=args.drift_nu, drift_nu_std=args.drift_nu_std, drift_t_s=args.drift_time_s,
                drift_t0_s=args.drift_t0_s, drift_compensation=args.drift_compensation,
                adc_calibration=args.adc_calibration,
                sigmas=() if args.no_sweep else (args.sigmas or SIGMAS),
                fault_rates=() if args.no_sweep else (args.fault_rates or FAULT_RATES),
                seed=args.mc_seed, max_samples=args.nonideal_samples, progress=progress,
                loss=cfg.train.loss,  # classify as the run's loss reads its outputs
                overwrite=bool(getattr(args, "overwrite", False)))  # (beside the estimate just written: its own)
    reports, ideal = {}, None
    for spec in crossbars:
        try:
            r = nonideal_report_model(model, test, spec, ideal=ideal, out_dir=out, checkpoint=str(checkpoint_path),
                                      **opts)
        except ValueError as e:
            raise UserError(str(e)) from None
        ideal = r["ideal_acc"]
        reports[spec.name] = r
        print(format_nonideal(r))
        print(f"non-ideal: {r['files']['json']}")
    return reports


# ------------------------------------------------------------------------------------------------ --fixed-point
def add_fixed_point_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--fixed-point`` and ``--fixed-point-samples`` to ``parser``."""
    g = parser.add_argument_group("digital chips' number formats (targets whose spec gives an arithmetic, with "
                                  "--checkpoint)")
    g.add_argument("--fixed-point", action="store_true",
                   help="also evaluate test accuracy in each digital target's integer arithmetic (weights, "
                        "thresholds, decays and membranes as the chip holds them: Loihi as Lava's bit-accurate "
                        "models, Speck as sinabs discretises it, SpiNNaker as sPyNNaker computes it), next to the "
                        "float accuracy and the float model with the chip's weights, and price the energy per "
                        "inference at the chip's own spikes next to the float model's (on --samples samples)")
    g.add_argument("--fixed-point-delays", action="store_true",
                   help="simulate the one-step delay of each synapse layer on Loihi and SpiNNaker (a network of L "
                        "layers answers L steps late within the same T steps); by default each layer answers in the "
                        "step its input arrives, as the float model and a chip run L steps longer do")
    g.add_argument("--fixed-point-samples", type=int, default=None, metavar="N",
                   help="test samples for --fixed-point's accuracies (default: the whole test split; the energy "
                        "uses --samples)")


def check_fixed_point_args(args: argparse.Namespace, checkpoint_path) -> list:
    """The digital specs ``--fixed-point`` will simulate (``[]`` without it), after checking its flags.

    Raises:
        neurosim.cli.UserError: one line naming the flag or the targets.
    """
    from neurosim.cli import UserError

    samples = getattr(args, "fixed_point_samples", None)
    if not getattr(args, "fixed_point", False):
        for flag, given in (("--fixed-point-samples", samples is not None),
                            ("--fixed-point-delays", getattr(args, "fixed_point_delays", False))):
            if given:
                raise UserError(f"{flag} applies only with --fixed-point: add --fixed-point, or leave it out")
        return []
    if not checkpoint_path:
        raise UserError("--fixed-point needs --checkpoint: the accuracy is measured on the checkpoint's test data")
    if samples is not None and samples < 1:
        raise UserError(f"--fixed-point-samples must be at least 1, got {samples}")
    from hardware_models import SpecError, list_targets, load_spec

    from neurosim.hardware.fixed_point import fixed_point_targets

    try:
        specs = [load_spec(t) for t in dict.fromkeys(getattr(args, "target", None) or list_targets())]
    except SpecError as e:
        raise UserError(str(e)) from None
    chosen = list({s.name: s for s in specs if s.kind == "digital" and "arithmetic" in s.options}.values())
    if not chosen:
        raise UserError(f"--fixed-point needs a digital target whose spec gives its arithmetic "
                        f"({fixed_point_targets()}); got {[s.name for s in specs]}")
    return chosen


def run_fixed_point_from_args(args: argparse.Namespace, checkpoint_path, out_dir, float_activity=None,
                              loaded=None) -> dict:
    """Run ``--fixed-point`` (:func:`neurosim.hardware.fixed_point.fixed_point_reports`): prints a summary per
    target, writes ``fixed_point_<target>.json`` (atomically) in ``out_dir`` (default ``<checkpoint dir>/estimate``)
    and returns ``{target: report}``. A target that cannot run the model (Speck and a recurrent layer) is skipped
    with a line saying why; none at all is an error. ``float_activity``: the estimate's measured activity (the same
    samples and graph), which the energy at the float model's spikes reuses; the chip's spikes are measured on its
    samples (without it, on ``args.samples``, default 64). ``loaded``: as
    :func:`run_nonideal_from_args`'s."""
    if not getattr(args, "fixed_point", False):
        return {}
    from hardware_models import load_spec

    from neurosim.cli import UserError
    from neurosim.estimation import format_chip_energy
    from neurosim.hardware.fixed_point import fixed_point_reports, format_fixed_point
    from neurosim.hardware.report import load_checkpoint_model
    from neurosim.training.checkpoint import beside_checkpoint

    specs = check_fixed_point_args(args, checkpoint_path)
    chosen = {s.name for s in specs}
    for t in dict.fromkeys(getattr(args, "target", None) or []):
        if t in chosen or Path(t).stem in chosen:
            continue
        spec = load_spec(t)
        why = ("its spec gives no arithmetic: the number formats of its neurons and synapses are not published "
               "there" if spec.kind == "digital" else
               f"a {spec.kind} target, not a digital chip" + (": see --nonideal" if spec.kind == "crossbar" else ""))
        print(f"fixed point: {spec.name} not simulated ({why})")
    out = Path(out_dir) if out_dir else beside_checkpoint(checkpoint_path, "estimate")
    model, test, cfg = load_checkpoint_model(checkpoint_path, progress=not getattr(args, "quiet", False),
                                             loaded=loaded)

    def show(name: str, r: dict) -> None:
        if "same_as" in r:
            print(f"{name}: the same arithmetic and number formats as {r['same_as']}, the same accuracy")
        else:
            print(format_fixed_point(r))
        print(format_chip_energy(r["energy"]))
        print(f"fixed point: {out / f'fixed_point_{name}.json'}")

    step_ms = getattr(args, "step_ms", None)
    delays = bool(getattr(args, "fixed_point_delays", False))
    # the energy at the chip's spikes on the samples of the float activity it is set beside: the estimate's (its
    # --samples is None when not given, and the estimate then measured its default 64, not the whole test split)
    samples = getattr(args, "samples", None)
    samples = float_activity.samples if float_activity is not None else 64 if samples is None else samples
    reports, refused = fixed_point_reports(
        model, test, specs, loss=cfg.train.loss, input_shape=cfg.model.input_shape,
        dt_s=(cfg.neuron.dt_ms if step_ms is None else step_ms) * 1e-3, samples=samples,
        max_samples=args.fixed_point_samples, out_dir=out, float_activity=float_activity,
        extra={"checkpoint": str(checkpoint_path), "delays": delays}, on_report=show, delays=delays,
        # the chips the estimate was given: the fit and energy of its table
        estimate_options={} if getattr(args, "chips", None) is None else {"chips": args.chips},
        overwrite=bool(getattr(args, "overwrite", False)))
    for name, why in refused.items():
        print(f"fixed point: {name} not simulated: {why}")
    if not reports:
        raise UserError("--fixed-point: no target could run the model: "
                        + "; ".join(f"{t}: {why}" for t, why in refused.items()))
    return reports

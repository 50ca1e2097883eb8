r"""Accuracy of a trained model on an RRAM crossbar target: Monte-Carlo chips at an operating point, and sweeps.

The device side comes from the target's spec (``hardware_models/specs/<target>.toml``,
:func:`nonideal_config_from_spec`):

* weights quantised to the spec's ``weight_bits``: ``2^(weight_bits − 1)`` magnitude codes per side of the
  differential pair, bit-sliced over cells of the spec's ``cell_bits`` as the energy model maps them
  (``rram_neurosim``: 7 one-bit cells per side, each varying, failing and converted on its own; ``rram_lsm40nm``:
  one 16-level cell per side);
* ``G_on / G_off = r_off / r_on``; tiles of ``array.rows`` rows; the column ADC with ``array.adc_bits`` (``adc``).

The quantisation (``levels``, or none: ``quantize=False``) and the ADC's bits (``adc_bits``) may replace the spec's.
What the spec does not give is an argument: programming variation σ (relative to G), the stuck-at fault rate
(split into stuck-ON and stuck-OFF by ``stuck_on_fraction``), read noise and drift (with its spread, reference time
and global compensation) — the effects of :mod:`neurosim.hardware.nonideal`. :func:`nonideal_report_model`
evaluates ``chips`` seeded chips at one operating point (mean ± sample std over chips, next to the ideal float
accuracy) and sweeps σ and the fault rate, one at a time, on top of the quantisation only (no ADC, read noise or
drift in the sweeps: they isolate one effect, and per-read effects are simulated tile by tile, which is slower).
Chip ``i`` uses seed ``seed + i`` at every sweep value (common random numbers: the same cells deviate, by σ times
the same draw), so curves are smooth and reproducible.

Sources: DNN+NeuroSim V1.4 defaults (the specs); IBM aihwkit and CrossSim for the kinds of non-idealities
(programming noise, stuck-at faults, read noise, drift, ADC) — REFERENCES.md, "RRAM compute-in-memory".

Example:
    >>> cfg = nonideal_config_from_spec("rram_neurosim", sigma_rel=0.05, fault_rate=0.02)
    >>> cfg.levels, cfg.cell_bits, cfg.slices, cfg.on_off_ratio, cfg.tile_rows, cfg.adc_bits
    (128, 1, 7, 17.0, 128, 5)
    >>> cfg.stuck_on_rate, cfg.stuck_off_rate
    (0.01, 0.01)
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Iterable, Sequence

from torch import nn

from neurosim._io import atomic_write_text
from neurosim.hardware.nonideal import MAX_ADC_BITS, NonIdealConfig, _targets, accuracy, apply_nonidealities

__all__ = ["FAULT_RATES", "SIGMAS", "chip_accuracies", "format_nonideal", "load_checkpoint_model",
           "nonideal_config_from_spec", "nonideal_report", "nonideal_report_model", "sweep_nonideal",
           "write_nonideal_report"]

SIGMAS = (0.0, 0.05, 0.1, 0.2, 0.5)  # programming variation swept by default (a few % is typical; 50 % breaks it)
FAULT_RATES = (0.0, 0.01, 0.02, 0.05, 0.1)  # stuck-at cell fractions swept by default
_FIELDS = {f.name for f in dataclasses.fields(NonIdealConfig)}


def _spec(target):
    from hardware_models import Spec, load_spec

    spec = target if isinstance(target, Spec) else load_spec(target)
    if spec.kind != "crossbar":
        raise ValueError(f"target {spec.name!r} is a {spec.kind} target; non-idealities need a crossbar (RRAM) "
                         "target such as rram_neurosim or rram_lsm40nm")
    return spec


def _fault_split(fault_rate: float, stuck_on_fraction: float) -> dict:
    if not (math.isfinite(fault_rate) and 0 <= fault_rate <= 1):
        raise ValueError(f"fault_rate must be a fraction of cells in [0, 1], got {fault_rate!r}")
    if not 0 <= stuck_on_fraction <= 1:
        raise ValueError(f"stuck_on_fraction must be in [0, 1], got {stuck_on_fraction!r}")
    return {"stuck_on_rate": fault_rate * stuck_on_fraction, "stuck_off_rate": fault_rate * (1 - stuck_on_fraction)}


def nonideal_config_from_spec(target, *, sigma_rel: float = 0.0, fault_rate: float = 0.0,
                              stuck_on_fraction: float = 0.5, read_noise_rel: float = 0.0, adc: bool = True,
                              adc_bits: int | None = None, quantize: bool = True, levels: int | None = None,
                              drift_nu: float = 0.0, drift_nu_std: float = 0.0, drift_t_s: float = 1.0,
                              drift_t0_s: float = 1.0, drift_compensation: bool = False,
                              adc_calibration: str = "read") -> NonIdealConfig:
    """The :class:`NonIdealConfig` of a crossbar ``target`` (name, path or ``Spec``) plus the given effects.

    Args:
        sigma_rel: programming variation, σ relative to G.
        fault_rate: fraction of stuck cells; ``stuck_on_fraction`` of them at G_on, the rest at G_off.
        read_noise_rel: per-read conductance noise (relative).
        adc: convert tile columns with the spec's ``array.adc_bits`` (False: exact column currents).
        adc_bits: the ADC's bits instead of the spec's (needs ``adc``).
        quantize: quantise weights to the spec's ``weight_bits``, sliced over cells of its ``cell_bits`` (False:
            one analog cell per side).
        levels: magnitude levels per side instead of the spec's ``2^(weight_bits − 1)``, sliced over the spec's
            cells (needs ``quantize``).
        drift_nu / drift_nu_std / drift_t_s / drift_t0_s: conductance drift ``G(t) = G0·(t/t0)^−ν``;
            ``drift_compensation``: global drift compensation of each layer's read-out.
        adc_calibration: when the ADC's full scale is set, ``"read"`` (from the cells as read: drift costs no
            resolution) or ``"programmed"`` (from the cells as programmed); see :class:`NonIdealConfig`.

    Raises:
        ValueError: not a crossbar target, or a value out of range (the message names it).
    """
    spec = _spec(target)
    weight_bits = int(spec.si("array.weight_bits"))
    if adc_bits is not None and not adc:
        raise ValueError(f"adc_bits = {adc_bits} sets the ADC that adc=False turns off: give one of them")
    if levels is not None and not quantize:
        raise ValueError(f"levels = {levels} sets the quantisation that quantize=False turns off: give one of them")
    if adc and adc_bits is None and spec.si("array.adc_bits") > MAX_ADC_BITS:
        raise ValueError(f"target {spec.name!r}: array.adc_bits = {spec.si('array.adc_bits'):g}: the non-ideal model "
                         f"simulates ADCs of at most {MAX_ADC_BITS} bits (float32 currents resolve no finer steps); "
                         "lower it, or read the columns exactly (adc=False, --no-adc)")
    return NonIdealConfig(
        levels=(2 ** (weight_bits - 1) if levels is None else levels) if quantize else None,
        cell_bits=int(spec.si("array.cell_bits")) if quantize else None,
        on_off_ratio=spec.si("device.r_off") / spec.si("device.r_on"),
        sigma_rel=sigma_rel, read_noise_rel=read_noise_rel,
        adc_bits=(int(spec.si("array.adc_bits")) if adc_bits is None else adc_bits) if adc else None,
        tile_rows=int(spec.si("array.rows")),
        drift_nu=drift_nu, drift_nu_std=drift_nu_std, drift_t_s=drift_t_s, drift_t0_s=drift_t0_s,
        drift_compensation=drift_compensation, adc_calibration=adc_calibration,
        **_fault_split(fault_rate, stuck_on_fraction))


def chip_accuracies(model: nn.Module, loader, cfg: NonIdealConfig, *, chips: int = 5, seed: int = 0,
                    max_samples: int | None = None, device=None, layers: Iterable[str] | None = None,
                    bar=None, loss: str | None = None) -> list[float]:
    """Test accuracy (percent) of ``chips`` Monte-Carlo chips of ``cfg``; chip ``i`` is seeded ``seed + i``
    (``loss``: the loss whose read-out classifies, as for :func:`neurosim.hardware.nonideal.accuracy`)."""
    if isinstance(chips, bool) or not isinstance(chips, int) or chips < 1:
        raise ValueError(f"chips must be a positive integer, got {chips!r}")
    out = []
    for i in range(chips):
        out.append(accuracy(apply_nonidealities(model, cfg, seed + i, layers=layers), loader, device=device,
                            max_samples=max_samples, loss=loss))
        if bar is not None:
            bar.update(1)
    return out


def _stats(per_chip: Sequence[float]) -> dict:
    n = len(per_chip)
    mean = sum(per_chip) / n
    std = math.sqrt(sum((a - mean) ** 2 for a in per_chip) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "std": std, "per_chip": list(per_chip)}


def _with(base: NonIdealConfig, param: str, value, stuck_on_fraction: float) -> NonIdealConfig:
    if param == "fault_rate":
        return dataclasses.replace(base, **_fault_split(float(value), stuck_on_fraction))
    if param not in _FIELDS:
        raise ValueError(f"cannot sweep {param!r}: sweepable are 'fault_rate' and the NonIdealConfig fields "
                         f"{sorted(_FIELDS)}")
    return dataclasses.replace(base, **{param: value})


def sweep_nonideal(model: nn.Module, loader, base: NonIdealConfig, param: str, values: Sequence, *, chips: int = 5,
                   seed: int = 0, stuck_on_fraction: float = 0.5, max_samples: int | None = None, device=None,
                   layers: Iterable[str] | None = None, bar=None, loss: str | None = None) -> list[dict]:
    """Accuracy over chips as one non-ideality varies: ``[{"value", "mean", "std", "per_chip"}, ...]``.

    Args:
        base: every other effect (e.g. the spec's quantisation from :func:`nonideal_config_from_spec`).
        param: a :class:`NonIdealConfig` field (``sigma_rel``, ``read_noise_rel``, ``drift_t_s``, ``adc_bits`` …) or
            ``fault_rate`` (stuck-at cells, split by ``stuck_on_fraction``).
        values: the values to evaluate, in order.
    """
    if not isinstance(base, NonIdealConfig):
        raise TypeError(f"base must be a NonIdealConfig, got {type(base).__name__}")
    values = list(values)
    if not values:
        raise ValueError(f"no values to sweep {param!r} over")
    points = []
    for v in values:
        cfg = _with(base, param, v, stuck_on_fraction)
        accs = chip_accuracies(model, loader, cfg, chips=chips, seed=seed, max_samples=max_samples, device=device,
                               layers=layers, bar=bar, loss=loss)
        points.append({"value": v, **_stats(accs)})
    return points


def nonideal_report_model(model: nn.Module, loader, target, *, chips: int = 5, sigma_rel: float = 0.05,
                          fault_rate: float = 0.01, stuck_on_fraction: float = 0.5, read_noise_rel: float = 0.02,
                          adc: bool = True, adc_bits: int | None = None, quantize: bool = True,
                          levels: int | None = None, drift_nu: float = 0.0, drift_nu_std: float = 0.0,
                          drift_t_s: float = 86400.0, drift_t0_s: float = 1.0, drift_compensation: bool = False,
                          adc_calibration: str = "read",
                          sigmas: Sequence[float] | None = SIGMAS, fault_rates: Sequence[float] | None = FAULT_RATES,
                          seed: int = 0, max_samples: int | None = None, device=None,
                          layers: Iterable[str] | None = None, ideal: float | None = None,
                          out_dir: str | Path | None = None, checkpoint: str | None = None,
                          progress: bool = False, loss: str | None = None, overwrite: bool = False) -> dict:
    """Ideal accuracy, accuracy over ``chips`` chips at the operating point, and the σ / fault-rate sweeps.

    Args:
        model / loader: a trained model and its test batches ``(x_seq [T, B, ...], y)``.
        target: a crossbar spec (name, path or ``Spec``): quantisation, on/off ratio, tile rows, ADC bits.
        sigma_rel, fault_rate, stuck_on_fraction, read_noise_rel, adc, adc_bits, drift_nu, drift_nu_std, drift_t_s,
            drift_t0_s, drift_compensation, adc_calibration: the operating point (see
            :func:`nonideal_config_from_spec`; drift at ``drift_t_s`` (default one day) relative to ``drift_t0_s``
            (default 1 s)).
        quantize / levels: the weights' quantisation, at the operating point and in the sweeps (default: the
            spec's).
        sigmas / fault_rates: sweep values (None or empty: no sweep), on the quantisation alone.
        ideal: the ideal accuracy when already known (skips one evaluation).
        out_dir: when given, writes ``nonideal_<target>.json`` and the sweep figures there
            (:func:`write_nonideal_report`). A folder that is no estimate's and holds files of these names that no
            non-ideal report wrote is refused before any chip is evaluated, unless ``overwrite``.
        checkpoint: recorded in the report (where the model came from).
        loss: the loss whose read-out turns outputs into classes (the run's ``train.loss``; ``max_ce`` and
            ``last_ce`` read the maximum over time and the last step); None: the time-summed output.

    Returns:
        A JSON-ready dict: ``target``, ``ideal_acc``, ``operating_point`` ``{config, mean, std, per_chip}``,
        ``sweep_base`` (config), ``sweeps`` ``{"sigma_rel": [...], "fault_rate": [...]}``, ``chips``, ``seed``,
        ``samples``, ``layers`` (the modules put on cells), ``loss`` (the read-out), ``seconds`` (and ``files`` when
        written). Accuracies in percent (0–100).

    Raises:
        neurosim.estimation.ForeignFilesError: ``out_dir`` holds files of the report's names that it did not write
            (without ``overwrite``), before any work.
    """
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    spec = _spec(target)
    sweeps = {k: list(v) for k, v in (("sigma_rel", sigmas), ("fault_rate", fault_rates)) if v}
    if out_dir is not None:  # the user's files stay as they are, before the chips are evaluated
        _check_out_dir(out_dir, spec.name, sweeps, overwrite)
    op = nonideal_config_from_spec(spec, sigma_rel=sigma_rel, fault_rate=fault_rate,
                                   stuck_on_fraction=stuck_on_fraction, read_noise_rel=read_noise_rel, adc=adc,
                                   adc_bits=adc_bits, quantize=quantize, levels=levels, drift_nu=drift_nu,
                                   drift_nu_std=drift_nu_std, drift_t_s=drift_t_s, drift_t0_s=drift_t0_s,
                                   drift_compensation=drift_compensation, adc_calibration=adc_calibration)
    base = nonideal_config_from_spec(spec, adc=False, quantize=quantize, levels=levels)
    total = chips * (1 + sum(len(v) for v in sweeps.values())) + (ideal is None)
    common = dict(chips=chips, seed=seed, max_samples=max_samples, device=device, layers=layers, loss=loss)
    with tqdm(total=total, desc=f"non-ideal chips on {spec.name}", disable=None if progress else True,
              leave=False, dynamic_ncols=True) as bar:
        if ideal is None:
            ideal = accuracy(model, loader, device=device, max_samples=max_samples, loss=loss)
            bar.update(1)
        point = _stats(chip_accuracies(model, loader, op, bar=bar, **common))
        results = {p: sweep_nonideal(model, loader, base, p, v, stuck_on_fraction=stuck_on_fraction, bar=bar,
                                     **common) for p, v in sweeps.items()}
    samples = _count(loader, max_samples)
    report = {"target": spec.name, "title": spec.title, "checkpoint": checkpoint, "ideal_acc": ideal, "chips": chips,
              "seed": seed, "samples": samples, "stuck_on_fraction": stuck_on_fraction,
              "layers": _targets(model, layers), "loss": loss,  # the layers put on cells; the read-out that classified
              "operating_point": {"config": op.to_dict(), **point}, "sweep_base": base.to_dict(), "sweeps": results,
              "seconds": time.perf_counter() - t0}
    if out_dir is not None:
        write_nonideal_report(report, out_dir, overwrite=overwrite)
    return report


def _count(loader, max_samples: int | None) -> int:
    labels = getattr(loader, "labels", None)
    n = len(labels) if labels is not None else sum(int(y.shape[0]) for _, y in loader)
    return n if max_samples is None else min(n, max_samples)


def load_checkpoint_model(checkpoint: str | Path, progress: bool = False, loaded=None):
    """``(model, test loader, run config)`` of a neurosim checkpoint (model in eval mode, on the CPU).

    ``loaded``: what :func:`neurosim.runs.load_run` ``(checkpoint, test_only=True)`` returned, when the caller has
    read the checkpoint already (``neurosim estimate`` reads it once for the estimate and each of its options): the
    file is not read again. Its model and test split are used as they are where they are on the CPU; a model on a
    GPU is copied to the CPU (the caller's stays there), and its test frames served by a loader onto the CPU.
    """
    import copy
    from itertools import chain

    from neurosim.runs import load_run

    if loaded is None:
        model, cfg, data = load_run(checkpoint, progress=progress, device="cpu", test_only=True)  # no training frames
        return model, data.test, cfg
    model, cfg, data = loaded
    if any(t.device.type != "cpu" for t in chain(model.parameters(), model.buffers())):
        model = copy.deepcopy(model).cpu()
    test = data.test
    if test.device.type != "cpu":
        from neurosim.data.pipeline import eval_loader

        test = eval_loader(cfg.data, data.test_frames, test.labels, "cpu")
    return model, test, cfg


def nonideal_report(checkpoint: str | Path, target, *, chips: int = 5, seed: int = 0, out_dir: str | Path | None = None,
                    progress: bool = False, overwrite: bool = False, **options) -> dict:
    """:func:`nonideal_report_model` for the model of a neurosim checkpoint on its dataset's test split.

    ``options`` are those of :func:`nonideal_report_model` (``sigma_rel``, ``fault_rate``, ``sigmas`` …). An
    ``out_dir`` that is no estimate's and holds files of the report's names that no non-ideal report wrote is
    refused (:class:`neurosim.estimation.ForeignFilesError`) before the checkpoint is read, unless ``overwrite``.
    """
    spec = _spec(target)  # a wrong target fails before the data is loaded
    if out_dir is not None:  # and so do files of the user's where the report would go
        sweeps = {"sigma_rel": options.get("sigmas", SIGMAS), "fault_rate": options.get("fault_rates", FAULT_RATES)}
        _check_out_dir(out_dir, spec.name, sweeps, overwrite)
    model, test, cfg = load_checkpoint_model(checkpoint, progress=progress)
    options.setdefault("loss", cfg.train.loss)
    return nonideal_report_model(model, test, target, chips=chips, seed=seed, progress=progress, out_dir=out_dir,
                                 checkpoint=str(checkpoint), overwrite=overwrite, **options)


#: the sweeps' figures: ``accuracy_vs_<name>_<target>.png`` for the sweep of each parameter
_FIGURES = (("sigma_rel", "sigma"), ("fault_rate", "fault_rate"))


def _output_names(target: str, sweeps: dict) -> list[str]:
    """What :func:`write_nonideal_report` writes for ``target`` with ``sweeps`` (``{param: values}``, the swept
    ones)."""
    return [f"nonideal_{target}.json"] + [f"accuracy_vs_{name}_{target}.png" for param, name in _FIGURES
                                          if sweeps.get(param)]


def _check_out_dir(out_dir, target: str, sweeps: dict, overwrite: bool) -> None:
    """Refuse an ``out_dir`` that is no estimate's and holds files of the report's names that no non-ideal report
    wrote (:func:`neurosim.estimation.check_study_folder`: the figures are the report's where its JSON is)."""
    from neurosim.estimation import check_study_folder

    check_study_folder(out_dir, "nonideal", overwrite=overwrite, names=_output_names(target, sweeps))


def write_nonideal_report(report: dict, out_dir: str | Path, *, overwrite: bool = False) -> dict:
    """Write ``nonideal_<target>.json`` and ``accuracy_vs_sigma_<target>.png`` / ``accuracy_vs_fault_rate_<target>.png``
    (atomic writes); returns ``{kind: path}`` and records the paths in ``report["files"]``.

    A folder that is no estimate's (:func:`neurosim.estimation.is_estimate_folder`) and holds files of these names
    that no non-ideal report wrote is refused before anything is written, unless ``overwrite``; an estimate's folder
    and a rerun's pass. A report's own files are its JSON (of the report's form) and the figures its ``files``
    names (a figure of a sweep it did not run is not its own), and, where a report stopped before its JSON (written
    last), the files its mark ``nonideal_<target>.incomplete`` names: that mark is written first and removed after
    the JSON. An estimate into the folder later keeps them (:func:`neurosim.estimation.check_estimate_folder`).

    Raises:
        neurosim.estimation.ForeignFilesError: naming the files.
    """
    from neurosim.estimation import _marked_while_writing
    from neurosim.hardware.plots import plot_accuracy_vs_fault_rate, plot_accuracy_vs_sigma
    from neurosim.viz import save_figure

    t = report["target"]
    _check_out_dir(out_dir, t, report["sweeps"], overwrite)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": out / f"nonideal_{t}.json"}
    plots = {"sigma_rel": plot_accuracy_vs_sigma, "fault_rate": plot_accuracy_vs_fault_rate}
    # the mark nonideal_<target>.incomplete names the files until the JSON (last) is written: a report stopped
    # part-way is rerun without overwrite
    with _marked_while_writing(out, f"nonideal_{t}", _output_names(t, report["sweeps"]), "neurosim's non-ideal report"):
        for param, name in _FIGURES:
            if report["sweeps"].get(param):  # each figure notes its chips, samples and the effects held fixed
                files[name] = save_figure(plots[param](report), out / f"accuracy_vs_{name}_{t}.png")
        report["files"] = {k: str(v) for k, v in files.items()}  # (what it wrote: check_study_folder reads it)
        atomic_write_text(files["json"], json.dumps(report, indent=1) + "\n")
    return files


def _cells(config: dict) -> str:
    """How a report's config holds a weight's magnitude: ``128 levels on 7 1-bit cells per side``."""
    if not config.get("levels"):
        return "analog cells"
    if not config.get("cell_bits"):
        return f"{config['levels']} levels"
    cfg = NonIdealConfig(levels=config["levels"], cell_bits=config["cell_bits"])
    return (f"{cfg.levels} levels on {cfg.slices} {cfg.cell_bits}-bit cell{'s' * (cfg.slices != 1)} per side")


def _drift(config: dict) -> str:
    """A report config's drift, as the table shows it: ``, drift ν 0.05 ± 0.01 at 86400 s, compensated`` (the
    reference time t0 where it is not 1 s, the ADC's calibration where it is set when programmed); empty without
    drift."""
    nu, spread = config["drift_nu"], config.get("drift_nu_std", 0.0)
    if not (nu or spread):
        return ""
    t0 = config.get("drift_t0_s", 1.0)
    return (f", drift ν {nu:g}" + (f" ± {spread:g}" if spread else "") + f" at {config['drift_t_s']:g} s"
            + (f" from t0 = {t0:g} s" if t0 != 1.0 else "") + (", compensated" if config.get("drift_compensation")
                                                               else "")
            + (", ADC full scale set when programmed" if config.get("adc_calibration") == "programmed"
               and config.get("adc_bits") else ""))


def format_nonideal(report: dict) -> str:
    """A short text table of one report (operating point and sweeps): mean ± sample std over the chips, the mean
    alone for one chip (whose spread is not measured)."""
    op = report["operating_point"]
    c = op["config"]
    chips = report["chips"]

    def acc(p: dict, width: int = 0, sep: str = " ± ") -> str:
        return f"{p['mean']:{width}.2f}" + (f"{sep}{p['std']:.2f}" if chips > 1 else "")

    lines = [
        f"non-idealities on {report['target']} ({chips} Monte-Carlo chip{'s' * (chips != 1)}, {report['samples']} "
        "test samples"
        + ("; one chip measures no spread" if chips == 1 else "") + "):",
        f"  ideal (float weights)        {report['ideal_acc']:6.2f} %",
        f"  operating point              {acc(op, 6)} %   "
        f"[{_cells(c)}, σ {100 * c['sigma_rel']:g} %, stuck-at "
        f"{100 * (c['stuck_on_rate'] + c['stuck_off_rate']):g} %, read noise {100 * c['read_noise_rel']:g} %, ADC "
        f"{c['adc_bits'] or 'exact'}{' bits' if c['adc_bits'] else ''}{_drift(c)}]",
    ]
    names = {"sigma_rel": "variation σ", "fault_rate": "stuck-at rate"}
    base = report.get("sweep_base")
    if report["sweeps"] and base is not None:  # the sweeps leave out the operating point's other effects: say so
        lines.append(f"  sweeps, one effect at a time on {_cells(base)} alone (no ADC, read noise or drift):")
    for param, points in report["sweeps"].items():
        cells = ", ".join(f"{100 * p['value']:g} %: {acc(p, sep='±')}" for p in points)
        lines.append(f"  {names.get(param, param):<28} {cells}")
    return "\n".join(lines)


"""An RRAM liquid-state-machine run: event digits → fixed random reservoir → trained readout, in software and
on RRAM weights, plus the reservoir's energy per inference on crossbar and digital targets.

Three reservoirs (see :mod:`neurosim.lsm.reservoir`): ``software`` (Gaussian float weights), ``rram_ideal`` (the
RRAM conductance draws read exactly) and ``rram`` (the same draws on the chip: read noise and column ADC). Each
gets its own readout, trained on its own features. The energy estimates use the measured activity of the ``rram``
reservoir on every target, so crossbar and digital targets are compared on the same spikes.

Writes ``<out_dir>/<name>/``: ``config.toml``, ``metrics.json``, ``report.md`` and figures (weight distributions,
a reservoir raster, accuracies, energy per target by component).
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from neurosim._io import atomic_write_text, check_output_folder, hold_run_folder
from neurosim.config import ConfigError, config_to_dict, settings_differ
from neurosim.lsm.config import LSMConfig, LSMDataConfig, load_lsm_config
from neurosim.lsm.readout import train_readout
from neurosim.lsm.reservoir import Reservoir, adc_amplitude_problem, rate_features, reservoir_graph

__all__ = ["LSMResult", "downsample_events", "load_lsm_data", "measured_cell_read_j", "run_lsm", "reservoir_energy"]

RESERVOIRS = ("software", "rram_ideal", "rram")


@dataclass
class LSMResult:
    """What :func:`run_lsm` produced (accuracies in percent, energies in joules per inference)."""

    run_dir: Path | None
    metrics: dict
    estimates: dict = field(default_factory=dict)  # target -> hardware_models.Estimate
    reservoirs: dict = field(default_factory=dict)  # "software" / "rram" -> Reservoir
    readouts: dict = field(default_factory=dict)


def downsample_events(frames: np.ndarray | torch.Tensor, size: int, merge_polarity: bool = True,
                      chunk: int = 256) -> torch.Tensor:
    """Event-count frames ``[N, T, P, H, W]`` → binary input spikes ``[N, T, (P·)size·size]`` (float32).

    The frames are centre-cropped to a multiple of ``size``, sum-pooled to ``size × size`` (polarities summed when
    ``merge_polarity``) and a pixel spikes in a step when it saw at least one event. ``chunk`` samples are
    converted at a time, so the memory beyond the result stays that of ``chunk`` samples' frames in float32.
    """
    frames = torch.as_tensor(np.asarray(frames))
    if frames.dim() != 5:
        raise ValueError(f"frames must be [N, T, P, H, W], got shape {tuple(frames.shape)}")
    N, T, P, H, W = frames.shape
    k = min(H, W) // size
    if k < 1:
        raise ValueError(f"frames of {H}x{W} cannot be pooled to {size}x{size}")
    top, left = (H - k * size) // 2, (W - k * size) // 2
    out = torch.empty((N, T, (1 if merge_polarity else P) * size * size))
    for i in range(0, N, chunk):  # float copies of `chunk` samples at a time, not of the whole split
        x = frames[i: i + chunk, ..., top: top + k * size, left: left + k * size].float()
        if merge_polarity:
            x = x.sum(2, keepdim=True)
        n = x.shape[0]
        x = torch.nn.functional.avg_pool2d(x.reshape(n * T, -1, k * size, k * size), k)
        out[i: i + n] = (x > 0).reshape(n, T, -1)
    return out


def load_lsm_data(cfg: LSMDataConfig, progress: bool = True):
    """``(x_train [N, T, inputs], y_train, x_test, y_test)`` of binary input spikes."""
    from neurosim.config import DataConfig
    from neurosim.data.pipeline import load_frames

    dcfg = DataConfig(dataset=cfg.dataset, time_steps=cfg.time_steps, root=cfg.root, train_subset=cfg.train_subset,
                      test_subset=cfg.test_subset)
    out = []
    for split in ("train", "test"):
        frames, labels = load_frames(dcfg, split, progress)
        try:
            x = downsample_events(frames, cfg.input_size, cfg.merge_polarity)
        except ValueError as e:
            raise ConfigError(f"data.input_size: {e}") from None
        out += [x, torch.as_tensor(labels).long()]
    return tuple(out)


def _accuracy_pct(predicted: torch.Tensor, labels: torch.Tensor) -> float:
    """Percentage of ``predicted`` equal to ``labels``, from the integer count of correct samples (a float32 mean
    wrote 95.54317593574524 for 343 of 359, not 95.54317548746518)."""
    if predicted.shape != labels.shape or labels.numel() == 0:
        raise ValueError(f"predictions and labels must be the same, non-empty shape, got {tuple(predicted.shape)} "
                         f"and {tuple(labels.shape)}")
    return 100.0 * int((predicted == labels).sum()) / labels.numel()


def _run_reservoir(res: Reservoir, x: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """Spikes ``[T, N, neurons]`` for inputs ``x [N, T, inputs]``."""
    return torch.cat([res(x[i: i + batch].transpose(0, 1))[0] for i in range(0, len(x), batch)], dim=1)


def reservoir_energy(res: Reservoir, x_seq: torch.Tensor, spikes_seq: torch.Tensor, targets, dt_s: float) -> dict:
    """Estimates of the reservoir per inference on ``targets`` (plus ``<crossbar>_blind``), from its measured spikes,
    keyed by each target's name (a spec file's is its name, as :func:`neurosim.estimation.target_keys` gives it).

    Args:
        x_seq / spikes_seq: input spikes ``[T, B, inputs]`` and reservoir spikes ``[T, B, neurons]``.
    """
    from hardware_models import ActivityProfile, analyze, estimate, load_spec
    from neurosim.estimation import target_keys

    graph = reservoir_graph(res, dt_s)
    act = ActivityProfile.from_spike_trains({"lif": spikes_seq.numpy()}, dt_s=dt_s, input_events=x_seq.numpy(),
                                            input_name="input")
    facts = analyze(graph)
    out = {}
    for key, t in target_keys(targets).items():
        out[key] = estimate(facts, act, t)
        if load_spec(t).kind == "crossbar":
            out[f"{key}_blind"] = estimate(facts, act, t, activity_blind=True)
    return out


def _driven_rows(res: Reservoir, x_seq: torch.Tensor, spikes_seq: torch.Tensor) -> torch.Tensor:
    """Drives per stacked row and inference: input spikes, and the reservoir's spikes of the step before (none
    where a row is read at 0 V: the recurrent rows at ``recurrent_scale = 0``)."""
    prev = torch.cat([torch.zeros_like(spikes_seq[:1]), spikes_seq[:-1]])
    drives = torch.cat([x_seq, prev], dim=2).double().sum((0, 1)) / x_seq.shape[1]
    return drives * (res.row_amplitude > 0)


def measured_cell_read_j(res: Reservoir, x_seq: torch.Tensor, spikes_seq: torch.Tensor, target) -> float:
    r"""Cell-read energy per inference from the reservoir's own programmed conductances on a crossbar ``target``.

    ``E = Σ_rows drives_row · (a_row · V_read)² · t_read · G_on · Σ_columns (g⁺ + g⁻)`` with the cells of
    :meth:`Reservoir.rram` (relative to G_on), each driven row read at the amplitude ``a_row`` the reservoir reads it
    at (:attr:`Reservoir.row_amplitude`: ``input_scale`` for input rows, ``recurrent_scale / sqrt(neurons)`` for
    recurrent ones, 0 V at ``recurrent_scale = 0``), as :mod:`hardware_models.crossbar` charges a row read at ``a·V``.
    :func:`hardware_models.estimate` instead rebuilds conductances from the quantised weight magnitudes (the other
    cell of a pair at G_off), each matrix of the reservoir's graph against its own largest weight and read at its
    amplitude relative to the larger one's; a stochastically switched pair has both cells ON in ``p_switch²`` of the
    cases, so its real read current is larger. Only meaningful where a weight is one cell per side (``weight_bits −
    1 ≤ cell_bits``, e.g. ``rram_lsm40nm``).

    Args:
        x_seq / spikes_seq: input spikes ``[T, B, inputs]`` and reservoir spikes ``[T, B, neurons]``.
    """
    from hardware_models import Spec, load_spec

    if res.g_pos is None:
        raise ValueError("measured_cell_read_j needs an RRAM reservoir (Reservoir.rram); this one has no cells")
    spec = target if isinstance(target, Spec) else load_spec(target)
    if spec.kind != "crossbar":
        raise ValueError(f"target {spec.name!r} is {spec.kind}, not a crossbar")
    g_on, v, t = 1.0 / spec.si("device.r_on"), spec.si("device.v_read"), spec.si("device.t_read")
    row_g = (res.g_pos + res.g_neg).double().sum(0)  # per stacked row, relative to G_on
    amp = res.row_amplitude.double()  # each row's read voltage over V_read: (a·V)² per cell
    return float(v * v * t * g_on * (_driven_rows(res, x_seq, spikes_seq) * amp * amp * row_g).sum())


def _one_cell_per_side(target) -> bool:
    from hardware_models import load_spec

    spec = load_spec(target)
    return spec.kind == "crossbar" and spec.si("array.weight_bits") - 1 <= spec.si("array.cell_bits")


def _check_before_loading(cfg: LSMConfig, write: bool = True, overwrite: bool = False) -> None:
    """Config values that would otherwise fail only after the reservoirs and readouts have run, and (``write``) a
    run folder that holds a run of other settings (kept unless ``overwrite``)."""
    from hardware_models.specs import SpecError, load_spec
    from neurosim.data.registry import get_dataset
    from neurosim.estimation import target_keys
    from neurosim.runs import other_settings, refuse_other_commands_run

    try:
        get_dataset(cfg.data.dataset)
    except ValueError as e:
        raise ConfigError(f"data.dataset: {e}") from None
    for target in cfg.energy.targets:
        try:
            load_spec(target)
        except SpecError as e:
            raise ConfigError(f"energy.targets: {e}") from None
    try:
        target_keys(cfg.energy.targets)  # two targets of one name (a copy of a shipped spec) would share their rows
    except ValueError as e:
        raise ConfigError(f"energy.targets: {e}") from None
    spelled: dict[str, str] = {}  # one spec file named twice ("loihi" and its path): costed once, as one row
    for target in cfg.energy.targets:
        (key,) = target_keys([target])
        if key in spelled:
            raise ConfigError(f"energy.targets: {spelled[key]!r} and {target!r} are the same spec file ({key!r}) "
                              "listed twice; name each target once")
        spelled[key] = target
    problem = adc_amplitude_problem(cfg.reservoir)
    if problem:
        raise ConfigError(f"reservoir.{problem[0]}: {problem[1]}")
    if cfg.reservoir.feature_bins > cfg.data.time_steps:
        raise ConfigError(f"reservoir.feature_bins: {cfg.reservoir.feature_bins} time windows cannot be cut from "
                          f"data.time_steps = {cfg.data.time_steps} steps; use at most {cfg.data.time_steps}")
    if not write:
        return
    run_dir = check_output_folder(Path(cfg.out_dir) / cfg.name, "out_dir")
    # even with overwrite: that replaces an LSM run, and would leave the other run's files half replaced
    refuse_other_commands_run(run_dir, "lsm")
    changed = None if overwrite else other_settings(run_dir, config_to_dict(cfg), load_lsm_config,
                                                    ("name", "out_dir", "data.root"))
    if changed:
        raise ConfigError(f"{run_dir} holds an LSM run of other settings ({settings_differ(changed)}); choose "
                          "another name (--set name=...), or pass --overwrite to replace it")


def run_lsm(cfg: LSMConfig, progress: bool = True, figures: bool = True, write: bool = True,
            overwrite: bool = False) -> LSMResult:
    """Run the whole LSM experiment of ``cfg`` (module docstring); ``write=False`` keeps everything in memory.

    A run folder that holds an LSM run of other settings is refused (before any work) unless ``overwrite``; one
    that holds a ``neurosim train`` or ``continual`` run is refused always.
    """
    if not isinstance(cfg, LSMConfig):
        raise TypeError(f"run_lsm needs an LSMConfig (load_lsm_config(path) or lsm_config_from_dict(dict)), got "
                        f"{type(cfg).__name__}")
    t0 = time.perf_counter()
    run_dir = check_output_folder(Path(cfg.out_dir) / cfg.name, "out_dir") if write else None
    # the folder is held for the whole run (a second run in it is refused), then checked for other settings
    with hold_run_folder(run_dir, "lsm") if write else nullcontext():
        _check_before_loading(cfg, write, overwrite)
        return _run(cfg, write, progress, figures, t0)


def _run(cfg: LSMConfig, write: bool, progress: bool, figures: bool, t0: float) -> LSMResult:
    from neurosim.estimation import target_keys
    from neurosim.training import seed_everything

    seed_everything(cfg.seed)
    x_tr, y_tr, x_te, y_te = load_lsm_data(cfg.data, progress)
    inputs = x_tr.shape[2]
    classes = int(max(y_tr.max(), y_te.max())) + 1
    rc = cfg.reservoir
    res = {"software": Reservoir.software(inputs, rc, seed=cfg.seed),
           "rram_ideal": Reservoir.rram(inputs, rc, seed=cfg.seed, exact=True),
           "rram": Reservoir.rram(inputs, rc, seed=cfg.seed)}
    metrics: dict = {"train_samples": len(y_tr), "test_samples": len(y_te), "inputs": inputs, "classes": classes,
                     "time_steps": x_tr.shape[1], "readout": cfg.readout.kind, "chance_acc": 100.0 / classes}
    readouts, spikes_test = {}, {}
    for kind, r in res.items():
        s_tr, s_te = _run_reservoir(r, x_tr), _run_reservoir(r, x_te)
        spikes_test[kind] = s_te
        f_tr, f_te = rate_features(s_tr, rc.feature_bins), rate_features(s_te, rc.feature_bins)
        ro = train_readout(f_tr, y_tr, cfg.readout, classes, seed=cfg.seed)
        readouts[kind] = ro
        metrics[f"acc_{kind}"] = _accuracy_pct(ro.predict(f_te), y_te)
        metrics[f"train_acc_{kind}"] = _accuracy_pct(ro.predict(f_tr), y_tr)
        # spikes per neuron per step: counted exactly (a float32 mean is off in the 8th digit), as a float64 ratio
        metrics[f"firing_rate_{kind}"] = float(s_te.double().sum()) / s_te.numel()
    n = min(cfg.energy.samples, len(y_te))
    x_seq, s_seq = x_te[:n].transpose(0, 1), spikes_test["rram"][:, :n]
    est = reservoir_energy(res["rram"], x_seq, s_seq, cfg.energy.targets, cfg.energy.dt_ms * 1e-3)
    for t, e in est.items():
        metrics[f"energy_j_{t}"] = e.total_energy_j
        metrics[f"latency_s_{t}"] = e.latency_per_inference_s
    for key, t in target_keys(cfg.energy.targets).items():
        if _one_cell_per_side(t):  # the spec stores these random weights as-is: cost the real conductances too
            measured = measured_cell_read_j(res["rram"], x_seq, s_seq, t)
            metrics[f"cell_read_j_measured_g_{key}"] = measured
            metrics[f"energy_j_{key}_measured_g"] = est[key].total_energy_j - est[key].energy_j["cell_read"] + measured
    metrics["seconds"] = time.perf_counter() - t0
    result = LSMResult(None, metrics, est, res, readouts)
    if write:
        result.run_dir = _write(cfg, result, spikes_test["rram"], x_te, figures)
    return result


# ---------------------------------------------------------------------------------------------- outputs
def _figures(run_dir: Path, result: LSMResult, spikes: torch.Tensor, x_te: torch.Tensor) -> dict[str, str]:
    from matplotlib.figure import Figure

    from neurosim.viz import raster, save_figure

    made = {}
    fig = Figure(figsize=(6.4, 3.6))
    ax = fig.add_subplot(1, 1, 1)
    labels = {"software": "software (Gaussian, same std)", "rram": "RRAM (G+ - G-, stochastic switching)"}
    for kind, r in result.reservoirs.items():
        if kind in labels:  # rram_ideal holds the same cells as rram
            ax.hist(r.w.flatten().numpy(), bins=120, histtype="step", density=True, label=labels[kind])
    ax.set_xlabel("weight (units of one ON cell)")
    ax.set_ylabel("density")
    ax.set_title("reservoir weights")
    ax.legend(fontsize=8)
    save_figure(fig, run_dir / "weights.png")
    made["Reservoir weight distributions"] = "weights.png"

    save_figure(raster({"input spikes": x_te[0], "RRAM reservoir": spikes[:, 0]},
                       title="test sample 0: input and reservoir spikes"), run_dir / "raster.png")
    made["Input and reservoir spikes"] = "raster.png"

    m = result.metrics
    fig = Figure(figsize=(4.8, 3.6))
    ax = fig.add_subplot(1, 1, 1)
    kinds = [k for k in RESERVOIRS if f"acc_{k}" in m]
    ax.bar(kinds, [m[f"acc_{k}"] for k in kinds], color=["#4c72b0", "#55a868", "#dd8452"][: len(kinds)])
    for i, k in enumerate(kinds):
        ax.text(i, m[f"acc_{k}"], f"{m[f'acc_{k}']:.1f}", ha="center", va="bottom", fontsize=8)
    ax.axhline(m["chance_acc"], color="grey", ls="--", lw=1, label="chance")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"LSM, {m['readout']} readout")
    ax.legend(fontsize=8)
    save_figure(fig, run_dir / "accuracy.png")
    made["Accuracy: software vs RRAM weights (exact reads, and on the chip)"] = "accuracy.png"

    from neurosim.hardware.plots import plot_energy_breakdown

    save_figure(plot_energy_breakdown(result.estimates, title="reservoir energy per inference (same measured spikes)"),
                run_dir / "energy.png")
    made["Reservoir energy per inference"] = "energy.png"
    return made


def _write(cfg: LSMConfig, result: LSMResult, spikes: torch.Tensor, x_te: torch.Tensor, figures: bool) -> Path:
    from neurosim.config import dumps_toml
    from neurosim.estimation import joules, seconds

    run_dir = Path(cfg.out_dir) / cfg.name
    run_dir.mkdir(parents=True, exist_ok=True)
    # config.toml names the run the folder holds: it goes first, and comes back last, so that a run stopped while
    # writing leaves no config.toml beside a mix of two runs' files (the next run of any settings rewrites them)
    (run_dir / "config.toml").unlink(missing_ok=True)
    atomic_write_text(run_dir / "metrics.json", json.dumps(result.metrics, indent=2) + "\n")
    atomic_write_text(run_dir / "estimates.json",
                      json.dumps({t: e.to_dict() for t, e in result.estimates.items()}, indent=2) + "\n")
    figs = _figures(run_dir, result, spikes, x_te) if figures else {}
    m, rc = result.metrics, cfg.reservoir
    lines = [
        f"# RRAM liquid state machine `{cfg.name}`",
        "",
        f"- data: `{cfg.data.dataset}`, {m['train_samples']} train / {m['test_samples']} test samples, "
        f"{cfg.data.input_size}x{cfg.data.input_size} input ({m['inputs']} inputs), T = {m['time_steps']}",
        f"- reservoir: {rc.neurons} LIF neurons, decay {rc.beta}, threshold {rc.v_th}, fixed random weights "
        f"(no training); RRAM: stochastic switching p = {rc.p_switch}, log-normal spread {rc.sigma_log}, "
        f"on/off {rc.on_off_ratio}, read noise {100 * rc.read_noise_rel:g} %, ADC "
        f"{'exact' if rc.adc_bits is None else f'{rc.adc_bits} bits'}",
        f"- readout: `{cfg.readout.kind}` on spike rates in {rc.feature_bins} time windows "
        f"({rc.feature_bins * rc.neurons} features), {cfg.readout.epochs} full-batch Adam steps",
        "",
        "| reservoir | test acc (%) | train acc (%) | firing rate (spikes/neuron/step) |",
        "|---|---:|---:|---:|",
    ]
    for kind in RESERVOIRS:
        lines.append(f"| {kind} | {m[f'acc_{kind}']:.2f} | {m[f'train_acc_{kind}']:.2f} | "
                     f"{m[f'firing_rate_{kind}']:.3f} |")
    lines += ["", f"Chance: {m['chance_acc']:.1f} %.", "",
              f"## Reservoir energy per inference ({min(cfg.energy.samples, m['test_samples'])} test samples)", "",
              "| target | energy | largest part | latency | tiles/cores |", "|---|---:|---|---:|---:|"]
    for t, e in result.estimates.items():  # (each in a unit that fits it: a digital target's µJ beside 140 nJ)
        top = max(e.energy_j.items(), key=lambda kv: kv[1])
        cores = e.mapping.cores_used if e.mapping is not None else "-"
        lines.append(f"| {t} | {joules(e.total_energy_j)} | {top[0]} {100 * top[1] / e.total_energy_j:.0f} % | "
                     f"{seconds(e.latency_per_inference_s)} | {cores} |")
    lines += ["", "`*_blind`: every crossbar row read every step (SpikeSim-style accounting). Energies are model "
              "estimates from hardware_models specs (see their sources), not measurements. All targets are costed on "
              "the same measured spikes of the `rram` reservoir; the digital readout is not included anywhere.", ""]
    for t in result.estimates:
        if f"energy_j_{t}_measured_g" in m:
            lines += [f"On `{t}` the weights are stored as-is (one cell per side). Costing the cell reads with the "
                      f"reservoir's own conductances (both cells of a pair may be ON) instead of conductances rebuilt "
                      f"from quantised weights gives cell reads of {joules(m[f'cell_read_j_measured_g_{t}'])} "
                      f"(model: {joules(result.estimates[t].energy_j['cell_read'])}) and "
                      f"**{joules(m[f'energy_j_{t}_measured_g'])}** per inference in all.", ""]
    for title, name in figs.items():
        lines += [f"## {title}", "", f"![{title}]({name})", ""]
    lines += ["## Files", "", "- `config.toml` — the config used (`neurosim lsm --config` reruns it)",
              "- `metrics.json` — accuracies, firing rates, energies", "- `estimates.json` — full energy estimates", ""]
    atomic_write_text(run_dir / "report.md", "\n".join(lines))
    atomic_write_text(run_dir / "config.toml", dumps_toml(cfg))
    return run_dir

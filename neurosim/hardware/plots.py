"""Figures for RRAM targets: accuracy vs a non-ideality (σ, fault rate), energy breakdown, tiles used.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot's global state; save it with
:func:`neurosim.viz.save_figure`. Energy components of crossbar estimates (:mod:`hardware_models.crossbar`) are
grouped as the issue's report asks (:data:`ENERGY_GROUPS`): **cells** (array reads V²·G·t), **ADC**, **drivers**
(word-line/DAC), **periphery** (shift-add, accumulation, LIF updates, buffers) and **static**; components of other
targets (digital cores, the conventional baseline) keep their own names.

Example:
    >>> fig = plot_accuracy_sweep({"rram_neurosim": [{"value": 0.0, "mean": 90.0, "std": 0.0, "per_chip": [90.0]},
    ...                                              {"value": 0.2, "mean": 80.0, "std": 2.0, "per_chip": [78.0, 82.0]}]},
    ...                           "sigma_rel", ideal=90.5)
    >>> fig.axes[0].get_xlabel()
    'programming variation σ (% of G)'
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

__all__ = ["ENERGY_GROUPS", "energy_groups", "plot_accuracy_sweep", "plot_accuracy_vs_fault_rate",
           "plot_accuracy_vs_sigma", "plot_energy_breakdown", "plot_tiles", "sweep_note"]

ENERGY_GROUPS = {
    "cell_read": "cells",
    "adc": "ADC",
    "wordline_driver": "drivers",
    "shift_add": "periphery",
    "accumulate": "periphery",
    "neuron_update": "periphery",
    "buffer": "periphery",
    "static": "static",
}
_GROUP_ORDER = ("cells", "ADC", "drivers", "periphery", "static")
_PARAM_LABELS = {
    "sigma_rel": ("programming variation σ (% of G)", 100.0),
    "fault_rate": ("stuck-at cells (%)", 100.0),
    "read_noise_rel": ("read noise σ (% of G)", 100.0),
    "drift_t_s": ("time since programming (s)", 1.0),
    "adc_bits": ("ADC bits", 1.0),
}


def _figure(width: float, height: float):
    from neurosim.viz.plots import _figure as fig

    return fig(width, height)


def _labelled(estimates) -> dict:
    """``{label: Estimate}`` from a mapping or an iterable of estimates (labelled by their target)."""
    if isinstance(estimates, Mapping):
        out = dict(estimates)
    else:
        out = {}
        for e in estimates:
            label = e.target
            while label in out:
                label += "'"
            out[label] = e
    if not out:
        raise ValueError("no estimates to plot")
    return out


def energy_groups(estimate) -> dict[str, float]:
    """Energy per inference (J) of ``estimate`` by group: crossbar components into :data:`ENERGY_GROUPS`,
    others under their own names (insertion order: the crossbar groups first)."""
    out: dict[str, float] = {}
    if estimate.kind == "crossbar":
        out = {g: 0.0 for g in _GROUP_ORDER}
        for k, v in estimate.energy_j.items():
            g = ENERGY_GROUPS.get(k, k)
            out[g] = out.get(g, 0.0) + float(v)
    else:
        out = {k: float(v) for k, v in estimate.energy_j.items()}
    return out


def plot_accuracy_sweep(curves: Mapping[str, Sequence[Mapping]], param: str, *, ideal: float | None = None,
                        title: str | None = None, note: str | None = None):
    """Accuracy (mean ± std over chips, and every chip as a dot) against one non-ideality.

    Args:
        curves: label → points ``{"value", "mean", "std", "per_chip"}`` (as :func:`neurosim.hardware.sweep_nonideal`
            returns); one line per label.
        param: the swept parameter (``sigma_rel``, ``fault_rate``, …): sets the axis label and unit.
        ideal: the float model's accuracy, drawn as a dashed line.
        note: what was simulated (chips, samples, the effects held fixed), written under the axes.
    """
    if not curves:
        raise ValueError("no curves to plot")
    xlabel, scale = _PARAM_LABELS.get(param, (param, 1.0))
    fig = _figure(5.6, 3.8)
    ax = fig.subplots()
    for i, (label, points) in enumerate(curves.items()):
        if not points:
            raise ValueError(f"curve {label!r} has no points")
        x = np.array([float(p["value"]) for p in points]) * scale
        m = np.array([p["mean"] for p in points])
        s = np.array([p["std"] for p in points])
        color = f"C{i % 10}"
        ax.errorbar(x, m, yerr=s, marker="o", capsize=3, color=color, label=f"{label} (mean ± std over chips)")
        for xv, p in zip(x, points):
            chips = p.get("per_chip", [])
            ax.scatter([xv] * len(chips), chips, s=8, color=color, alpha=0.35, lw=0)
    if ideal is not None:
        ax.axhline(ideal, color="grey", ls="--", lw=1, label=f"ideal float weights ({ideal:.1f} %)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title(title or f"accuracy vs {xlabel.split(' (')[0]}")
    if note:
        import textwrap

        # (a number and its unit stay on one line: a no-break space, which textwrap does not break at)
        text = "\n".join(textwrap.fill(line.replace(" %", "\u00a0%"), 105) for line in note.splitlines())
        ax.text(0.0, -0.16, text, transform=ax.transAxes, va="top", ha="left", fontsize=6.5, color="0.3")
    return fig


def sweep_note(report: Mapping, param: str) -> str | None:
    """What one report's ``param`` sweep simulated, in a line: chips and their seeds, test samples per chip, and every
    effect held fixed while ``param`` varies (the sweep base); None for a report without them (older files)."""
    from neurosim.hardware.report import _cells

    base = report.get("sweep_base")
    if base is None or "seed" not in report or "chips" not in report or "samples" not in report:
        return None
    chips, seed = report["chips"], report["seed"]
    seeds = f"seed {seed}" if chips == 1 else f"seeds {seed}–{seed + chips - 1}"
    held = [_cells(base), f"on/off {base['on_off_ratio']:g}"]
    if param != "sigma_rel":
        held.append(f"σ {100 * base['sigma_rel']:g} %")
    if param == "fault_rate":
        held.append(f"stuck cells {100 * report.get('stuck_on_fraction', 0.5):g} % at G_on, the rest at G_off")
    else:
        held.append(f"stuck-at {100 * (base['stuck_on_rate'] + base['stuck_off_rate']):g} %")
    if param != "adc_bits":
        held.append(f"ADC {base['adc_bits']} bits" if base["adc_bits"] else "ADC off (exact column reads)")
    if param != "read_noise_rel":
        held.append(f"read noise {100 * base['read_noise_rel']:g} %")
    if param != "drift_t_s":
        drifts = (base["drift_nu"] or base["drift_nu_std"]) and base["drift_t_s"] != base["drift_t0_s"]
        held.append(f"drift ν {base['drift_nu']:g} at {base['drift_t_s']:g} s" if drifts else "no drift")
    return (f"{report['target']}: {chips} chip{'s' * (chips != 1)} ({seeds}) × {report['samples']} test samples; "
            "held fixed: " + ", ".join(held))


def _curves(reports, param: str) -> tuple[dict, float | None, str | None]:
    if isinstance(reports, Mapping) and "sweeps" in reports:
        reports = [reports]
    reports = list(reports.values()) if isinstance(reports, Mapping) else list(reports)
    swept = [r for r in reports if r["sweeps"].get(param)]
    curves = {r["target"]: r["sweeps"][param] for r in swept}
    if not curves:
        raise ValueError(f"no report has a {param!r} sweep")
    notes = [sweep_note(r, param) for r in swept]
    return curves, reports[0].get("ideal_acc"), "\n".join(n for n in notes if n) or None


def plot_accuracy_vs_sigma(reports, title: str | None = None):
    """Accuracy vs programming variation σ from one or more :func:`neurosim.hardware.nonideal_report` dicts, with
    a note of what each simulated (:func:`sweep_note`)."""
    curves, ideal, note = _curves(reports, "sigma_rel")
    return plot_accuracy_sweep(curves, "sigma_rel", ideal=ideal, title=title, note=note)


def plot_accuracy_vs_fault_rate(reports, title: str | None = None):
    """Accuracy vs stuck-at fault rate from one or more :func:`neurosim.hardware.nonideal_report` dicts, with a note
    of what each simulated (:func:`sweep_note`)."""
    curves, ideal, note = _curves(reports, "fault_rate")
    return plot_accuracy_sweep(curves, "fault_rate", ideal=ideal, title=title, note=note)


def plot_energy_breakdown(estimates, title: str | None = None):
    """Left: energy per inference of every target (log axis). Right: each target's share by group (cells, ADC,
    drivers, periphery, static for crossbars; own components elsewhere).

    Args:
        estimates: ``{label: hardware_models.Estimate}`` or an iterable of estimates.
    """
    from hardware_models.results import _eng  # the one energy formatter (format_estimates uses it too)
    from matplotlib import colormaps

    ests = _labelled(estimates)
    labels = list(ests)
    groups = {label: energy_groups(e) for label, e in ests.items()}
    names: list[str] = list(_GROUP_ORDER) + sorted({k for g in groups.values() for k in g} - set(_GROUP_ORDER))
    names = [n for n in names if any(g.get(n, 0.0) > 0 for g in groups.values())]
    totals = np.array([ests[label].total_energy_j for label in labels])
    fig = _figure(max(8.0, 1.2 * len(labels) + 5), 4.0)
    ax_t, ax_f = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.4]})
    y = np.arange(len(labels))
    ax_t.barh(y, totals * 1e9, color="C7")
    for j, t in enumerate(totals):
        ax_t.text(t * 1e9, j, f" {_eng(t, 'J')}", va="center", fontsize=7)
    # a target the model does not fit on says so beside its name: its energy is that of a chip it does not run on
    ax_t.set_yticks(y, [label if getattr(ests[label], "fits", None) in (True, None) else
                        f"{label} ({ests[label].fit_text.replace('no (', 'no fit: ')}" for label in labels], fontsize=8)
    ax_t.invert_yaxis()
    top = float(totals.max()) * 1e9
    if totals.min() > 0 and totals.max() > 20 * totals.min():
        ax_t.set_xscale("log")
        ax_t.set_xlim(float(totals.min()) * 1e9 / 3, top * 8)  # room for the labels
    elif top > 0:
        ax_t.set_xlim(0, top * 1.35)
    ax_t.set_xlabel("energy per inference (nJ)")
    ax_t.set_title("total")
    left = np.zeros(len(labels))
    # one colour per component: matplotlib's 10-colour cycle drew a crossbar's cells and 45 nm logic's SRAM, or its
    # ADC and Loihi's synaptic events, in one colour (as neurosim.estimation.plot_energy does)
    colours = colormaps["tab10" if len(names) <= 10 else "tab20"]
    for i, n in enumerate(names):
        share = np.array([groups[label].get(n, 0.0) for label in labels]) / np.where(totals > 0, totals, 1.0)
        ax_f.barh(y, 100 * share, left=100 * left, color=colours(i % colours.N), label=n)
        left += share
    ax_f.set_yticks(y, [""] * len(labels))
    ax_f.invert_yaxis()
    ax_f.set_xlim(0, 100)
    ax_f.set_xlabel("share of the energy (%)")
    ax_f.set_title("breakdown")
    ax_f.legend(fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    fig.suptitle(title or "energy per inference by component")
    return fig


def plot_tiles(estimates, title: str | None = None):
    """Crossbar tiles used per layer and target (bars), with each layer's cell utilisation written on its bar.

    Args:
        estimates: ``{label: Estimate}`` or an iterable of estimates; targets without tiles (non-crossbar) are skipped.
    """
    ests = {k: e for k, e in _labelled(estimates).items() if e.kind == "crossbar"}
    if not ests:
        raise ValueError("no crossbar estimate to plot tiles for")
    layers: list[str] = []
    for e in ests.values():
        layers += [n for n, pl in e.per_layer.items() if pl.get("tiles", 0) > 0 and n not in layers]
    fig = _figure(max(6.0, 1.0 * len(layers) * len(ests) + 3), 3.8)
    ax = fig.subplots()
    width = 0.8 / len(ests)
    x = np.arange(len(layers))
    top = 1
    for i, (label, e) in enumerate(ests.items()):
        tiles = [e.per_layer.get(n, {}).get("tiles", 0) for n in layers]
        top = max(top, max(tiles, default=1))
        pos = x - 0.4 + width * (i + 0.5)
        total = e.mapping.cores_used if e.mapping is not None else sum(tiles)
        ax.bar(pos, tiles, width, color=f"C{i % 10}", label=f"{label}: {total} tiles")
        for px, n, t in zip(pos, layers, tiles):
            u = e.per_layer.get(n, {}).get("utilisation")
            if t and u is not None:
                ax.text(px, t, f"{100 * u:.0f}%", ha="center", va="bottom", fontsize=6)
    ax.set_xticks(x, layers, rotation=20, ha="right")
    ax.set_xlabel("layer")
    ax.set_ylabel("tiles (labels: cell utilisation)")
    if top > 50:
        ax.set_yscale("log")
    ax.legend(fontsize=7)
    ax.set_title(title or "crossbar tiles used per layer")
    return fig


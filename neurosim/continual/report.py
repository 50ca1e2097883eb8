"""Figures and the Markdown report of a continual-learning run.

:func:`accuracy_heatmap` draws one accuracy matrix (rows: after training task i; columns: task j evaluated),
:func:`accuracy_heatmaps` one panel per method. Both return a :class:`matplotlib.figure.Figure` built without
pyplot (Agg canvas), saved with :func:`neurosim.viz.save_figure`. :func:`report_markdown` renders the summary table
next to the numbers the HLOP paper reports (Xiao et al., ICLR 2024, arXiv 2402.11984).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["PAPER", "accuracy_heatmap", "accuracy_heatmaps", "report_markdown"]

# What the HLOP paper (Xiao et al., ICLR 2024, arXiv 2402.11984) reports, as quoted in REFERENCES.md: points.
PAPER = {
    "PMNIST, 10 permutations, 784-800-800-10 SNN, HLOP": {"acc": None, "bwt": -1.30},
    "10-split CIFAR-100, HLOP": {"acc": 78.58, "bwt": -0.26},
}

METHOD_LABELS = {"baseline": "baseline (fine-tuning)", "ewc": "EWC", "hlop": "HLOP",
                 "multitask": "multitask (joint upper bound)"}


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _draw(ax, matrix: np.ndarray, title: str, n_tasks: int, ylabel: bool = True):
    a = np.asarray(matrix, dtype=float)
    final_only = a.shape[0] != n_tasks  # multitask: one row of final accuracies, drawn as the last row
    if final_only:
        full = np.full((n_tasks, a.shape[1]), np.nan)
        full[-1] = a[-1]
        a = full
    im = ax.imshow(a, vmin=0, vmax=100, cmap="viridis")
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            v = a[i, j]
            if np.isfinite(v):
                ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if v < 60 else "black")
    ax.set_xticks(range(n_tasks))
    ax.set_xlabel("evaluated on task j")
    ax.set_yticks(range(n_tasks))
    if final_only:
        # upright, "final" was wider than the task numbers and ran into the panel on its left
        ax.set_yticklabels([""] * (n_tasks - 1) + ["final"], rotation=90, va="center")
    if ylabel:
        ax.set_ylabel("final (joint training)" if final_only else "after training task i")
    ax.set_title(title, fontsize=9)
    return im


def accuracy_heatmap(matrix, title: str = "accuracy (%)") -> Figure:
    """Heatmap of one accuracy matrix ``A[i, j]`` (points 0–100), values written in the cells.

    Example:
        >>> fig = accuracy_heatmap([[90, 10], [70, 88]], title="baseline")
        >>> len(fig.axes)    # the matrix and its colour bar
        2
    """
    a = np.atleast_2d(np.asarray(matrix, dtype=float))
    fig = _figure(1.2 + 0.6 * a.shape[1], 1.0 + 0.5 * max(a.shape[0], 2))
    ax = fig.subplots()
    im = _draw(ax, a, title, a.shape[1])
    fig.colorbar(im, ax=ax, label="accuracy (%)")
    return fig


def accuracy_heatmaps(matrices: Mapping[str, Sequence[Sequence[float]]], title: str | None = None) -> Figure:
    """One heatmap panel per method (``{method: matrix}``); a one-row matrix (multitask's final accuracies) is drawn
    as the last row of an otherwise empty panel."""
    if not matrices:
        raise ValueError("accuracy_heatmaps: no matrices to draw")
    n_tasks = max(len(np.atleast_2d(m)[0]) for m in matrices.values())
    k = len(matrices)
    fig = _figure(0.5 + (0.55 * n_tasks + 1.0) * k, 1.2 + 0.5 * max(n_tasks, 2))
    axes = np.atleast_1d(fig.subplots(1, k))
    im = None
    for i, (ax, (name, m)) in enumerate(zip(axes, matrices.items())):
        im = _draw(ax, np.atleast_2d(np.asarray(m, dtype=float)), METHOD_LABELS.get(name, name), n_tasks,
                   ylabel=i == 0)
    fig.colorbar(im, ax=list(axes), label="accuracy (%)", shrink=0.8)
    if title:
        fig.suptitle(title)
    return fig


def _pm(mean, std, digits: int = 2) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "—"
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def report_markdown(name: str, summary: Mapping[str, Mapping], setting: str, figures: Sequence[str],
                    seeds: Sequence[int], notes: Sequence[str] = (), models: Sequence[str] = ()) -> str:
    """The run's ``report.md``: ACC/BWT per method (mean ± std over seeds), wall time, the paper's numbers; with
    the activity penalty (``activity_mean`` in a summary) also the training activity it counted. ``models``: the
    run folder's model files (``models/<method>_seed<S>.pt``), listed with the commands that take them."""
    activity = ("", "")
    if any("activity_mean" in s for s in summary.values()):
        activity = (" training activity |", "---:|")
    lines = [f"# neurosim continual run `{name}`", "", setting, "",
             (f"Mean ± sample std (ddof = 1) over {len(seeds)} seeds {list(seeds)}." if len(seeds) > 1 else
              f"One seed {list(seeds)}: no spread measured.") + " ACC = mean final accuracy over all tasks; "
             "BWT = mean over earlier tasks of (final accuracy − accuracy right after learning it); points."
             + (" Training activity = what the activity penalty counts (synaptic operations as a fraction of the "
                "most possible, or the firing rate), per step and sample, over each task's training batches, "
                "averaged over tasks." if activity[0] else ""), "",
             f"| method | ACC (%) | BWT (points) |{activity[0]} wall time (s) | CPU time (s) |",
             f"|---|---:|---:|{activity[1]}---:|---:|"]
    for method, s in summary.items():
        cpu = f"{s['cpu_seconds_mean']:.1f}" if "cpu_seconds_mean" in s else "—"
        act = f" {_pm(s.get('activity_mean'), s.get('activity_std'), 4)} |" if activity[0] else ""
        lines.append(f"| {METHOD_LABELS.get(method, method)} | {_pm(s['acc_mean'], s['acc_std'])} | "
                     f"{_pm(s.get('bwt_mean'), s.get('bwt_std'))} |{act} {s['seconds_mean']:.1f} | {cpu} |")
    if "hlop" in summary and "baseline" in summary:
        key = "cpu_seconds_mean" if "cpu_seconds_mean" in summary["baseline"] else "seconds_mean"
        if summary["baseline"][key] > 0:
            ratio = summary["hlop"][key] / summary["baseline"][key]
            lines += ["", f"HLOP's {'CPU' if key.startswith('cpu') else 'wall'} time is {ratio:.2f}× the baseline's "
                      "(a Hebbian update per training batch and the extra Hebbian passes)."]
    lines += ["", "## For reference: the paper", "",
              "Xiao et al., *Hebbian Learning based Orthogonal Projection for Continual Learning of Spiking Neural "
              "Networks*, ICLR 2024 (arXiv 2402.11984; code: github.com/pkuxmq/HLOP-SNN). Different data, "
              "network and scale: a sanity reference, not a like-for-like comparison.", "",
              "| setting | ACC (%) | BWT (points) |", "|---|---:|---:|"]
    for setting_name, v in PAPER.items():
        acc = "—" if v["acc"] is None else f"{v['acc']:.2f}"
        lines.append(f"| {setting_name} | {acc} | {v['bwt']:.2f} |")
    lines += [""]
    for note in notes:
        lines += [note, ""]
    for fig in figures:
        lines += [f"![{fig}]({fig})", ""]
    lines += ["## Files", "", "- `config.toml` — the config used (`neurosim continual --config` reruns it)",
              "- `results.json` — every accuracy matrix (per method and seed), ACC, BWT, wall times, summary",
              "- `accuracy_matrices.png` — heatmaps of the first seed's matrices; `accuracy_<method>.png` — one "
              "method's",
              "- `finished/` — each (method, seed) as it finished, with a fingerprint of its settings (a rerun of "
              "the same settings reuses them)"]
    if models:
        lines += [f"- `models/` — the model after the last task of each (method, seed): {', '.join(models)}. "
                  "`neurosim estimate --checkpoint models/<file>` costs it on neuromorphic and RRAM targets (its "
                  "activity measured on every task's test samples); `neurosim evaluate` and `neurosim export` take "
                  "it too"]
    lines.append("")
    return "\n".join(lines)

"""A whole continual-learning run from a :class:`ContinualConfig`: tasks, every method × seed, files.

``run_continual(cfg)`` writes ``<out_dir>/<name>/``:

* ``config.toml`` — the config used;
* ``results.json`` — per method: every seed's accuracy matrix, ACC, BWT and wall time, and the mean ± std summary;
* ``accuracy_matrices.png`` (all methods, first seed) and ``accuracy_<method>.png`` — heatmaps;
* ``report.md`` — the ACC/BWT table next to the HLOP paper's reported numbers.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from neurosim._io import atomic_write_text
from neurosim.config import ConfigError, config_to_dict, dumps_toml
from neurosim.continual.config import ContinualConfig
from neurosim.continual.report import accuracy_heatmap, accuracy_heatmaps, report_markdown
from neurosim.continual.tasks import Task, class_split_tasks, load_source, permuted_tasks
from neurosim.continual.train import MethodResult, run_method, summarize

__all__ = ["ContinualRun", "build_tasks", "run_continual"]


def build_tasks(cfg: ContinualConfig, seed: int, source_data: tuple | None = None,
                progress: bool = False) -> list[Task]:
    """The config's task sequence for one seed (permutations depend on the seed; class splits do not).

    Args:
        source_data: ``load_source(...)``'s result, to reuse across seeds; None loads it.
    """
    tc = cfg.tasks
    if source_data is None:
        try:
            source_data = load_source(tc.source, tc.time_steps, tc.downsample, tc.train_subset, tc.test_subset,
                                      tc.root, progress)
        except ValueError as e:
            raise ConfigError(f"tasks.source: {e}") from None
    if tc.protocol == "permuted":
        return permuted_tasks(*source_data, num_tasks=tc.num_tasks, seed=seed, permute_first=tc.permute_first)
    return class_split_tasks(*source_data, classes_per_task=tc.classes_per_task)


@dataclass
class ContinualRun:
    """What :func:`run_continual` produced."""

    run_dir: Path
    results: dict[str, list[MethodResult]]
    summary: dict[str, dict[str, float]]
    task_names: list[str]
    seconds: float


def _setting(cfg: ContinualConfig, tasks: Sequence[Task]) -> str:
    m, t = cfg.model, cfg.train
    n_in = math.prod(tasks[0].input_shape)
    if m.kind == "mlp":
        net = "LIF MLP " + "-".join(str(v) for v in (n_in, *m.hidden, m.num_classes))
    else:
        net = (f"LIF conv net on {list(tasks[0].input_shape)}, channels {list(m.channels)}, "
               f"hidden {list(m.hidden)}, {m.num_classes} outputs")
    head = "shared head" if tasks[0].classes is None else "one head per task"
    sizes = "pmnist_paper preset" if cfg.hlop.preset == "pmnist_paper" else [list(s) for s in cfg.hlop.sizes]
    return (f"- tasks: {len(tasks)} × `{cfg.tasks.protocol}` from `{cfg.tasks.source}` ({head}; "
            f"{len(tasks[0].y_train)} train / {len(tasks[0].y_test)} test samples per task, T = {tasks[0].time_steps})\n"
            f"- model: {net}, readout `{m.readout}`; LIF τ = {cfg.neuron.tau_mem_ms} ms, v_th = {cfg.neuron.v_th}\n"
            f"- training (every method): {t.method.upper()}, loss `{t.loss}`, {t.optimizer} lr {t.lr}, "
            f"{t.epochs} epoch(s) per task, batch {t.batch_size}, biases/BN/thresholds frozen after task 0: "
            f"{t.freeze_after_first}\n"
            f"- HLOP: Hebbian lr {list(cfg.hlop.lr)}, {cfg.hlop.iterations} Oja iterations per pass, new subspace rows "
            f"per layer and task {sizes}, {cfg.hlop.hebbian_epochs} extra Hebbian epoch(s); EWC λ = {cfg.ewc.lam:g}")


def run_continual(cfg: ContinualConfig, progress: bool = True, log=print) -> ContinualRun:
    """Run every method of ``cfg`` for every seed on the task sequence; write the run folder.

    Args:
        log: called with one line per finished (method, seed); None is silent.
    """
    t0 = time.perf_counter()
    run_dir = Path(cfg.out_dir) / cfg.name
    tc = cfg.tasks
    try:
        source = load_source(tc.source, tc.time_steps, tc.downsample, tc.train_subset, tc.test_subset, tc.root,
                             progress)
    except ValueError as e:
        raise ConfigError(f"tasks.source: {e}") from None
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.toml", dumps_toml(cfg))
    results: dict[str, list[MethodResult]] = {m: [] for m in cfg.methods}
    task_names: list[str] = []
    first_tasks: list[Task] = []
    for seed in cfg.seeds:
        tasks = build_tasks(cfg, seed, source)
        if not first_tasks:
            first_tasks, task_names = tasks, [t.name for t in tasks]
        for method in cfg.methods:
            r = run_method(cfg, method, tasks, seed=seed, progress=progress)
            results[method].append(r)
            if log is not None:
                bwt = "—" if r.bwt != r.bwt else f"{r.bwt:+.2f}"
                log(f"{method:9s} seed {seed}: ACC {r.acc:6.2f} %  BWT {bwt}  ({r.seconds:.1f} s)")
    summary = {m: summarize(rs) for m, rs in results.items()}
    matrices = {m: rs[0].matrix for m, rs in results.items()}
    fig_names = ["accuracy_matrices.png"]
    from neurosim.viz import save_figure

    save_figure(accuracy_heatmaps(matrices, title=f"accuracy matrices, seed {cfg.seeds[0]}"),
                run_dir / "accuracy_matrices.png")
    for m, matrix in matrices.items():
        save_figure(accuracy_heatmap(matrix, title=f"{m}, seed {cfg.seeds[0]}"), run_dir / f"accuracy_{m}.png")
    payload = {
        "name": cfg.name, "tasks": task_names, "seeds": list(cfg.seeds),
        "summary": summary,
        "runs": {m: [r.as_dict() for r in rs] for m, rs in results.items()},
        "config": config_to_dict(cfg),
    }
    atomic_write_text(run_dir / "results.json", json.dumps(payload, indent=1))
    report = report_markdown(cfg.name, summary, _setting(cfg, first_tasks), fig_names, cfg.seeds)
    atomic_write_text(run_dir / "report.md", report)
    return ContinualRun(run_dir, results, summary, task_names, time.perf_counter() - t0)

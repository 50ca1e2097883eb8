"""Early exit: what a model's accuracy, energy and latency are when a chip stops before all ``T`` steps.

An SNN classifies from outputs it accumulates over ``T`` steps, and on a chip every step costs energy and time.
Many inputs are decided long before the last step. Two ways to stop early are measured here, on the same samples:

* **After a fixed number of steps** ``t = 1 … T``: every sample stops after ``t`` steps, and the read-out the model
  was trained with (:meth:`neurosim.training.Loss.running_scores`: the outputs summed, their maximum, or the last
  step's) classifies from those steps. This is the accuracy/latency curve SNN papers draw.
* **When the read-out is confident** (SEENN-I: Li, Geller, Kim and Panda, "SEENN: Towards Temporal Spiking Early-Exit
  Neural Networks", NeurIPS 2023, arXiv 2304.01230; code ``Intelligent-Computing-Lab-Yale/SEENN``, ``test_snn.py``):
  each sample stops after the first step ``t`` at which the softmax of its running class scores is sure enough,
  ``metric = "confidence"``: the largest probability exceeds the threshold, or ``metric = "entropy"``: one minus the
  entropy normalised by ``log C`` exceeds it (the paper's two metrics, on its running sums); a sample never that sure
  runs all ``T`` steps. Easy inputs stop early, hard ones run on.

Costs are not scaled down by the steps saved: the samples that stop after ``t`` steps are measured for those ``t``
steps (:func:`neurosim.activity.step_profiles`: each cohort's spikes, updates and input events over its own
steps; a network is causal, so these are the spikes a chip stopped there would have made; every sample's first
``t`` steps, for each ``t``, are cut from the whole run's totals, one profile at a time) and each such cohort is
estimated on each target as a run of ``t`` steps (:func:`hardware_models.estimate`: static power and fixed ticks
for ``t`` steps too). A policy's energy and latency per inference are the means over its samples; it also gives the
latency of its slowest cohort (the mean over the samples that stop last: on a fixed-tick chip every one of them
takes that long; on an event-driven chip, whose step time follows the activity, single samples may take longer).
With ``per_sample=True`` every sample is also estimated alone over the steps it runs (under the run of all steps
and each threshold): the mean, 99th percentile and maximum of those latencies are the tail a real-time budget needs.
Assumed, and not costed: the host reads the outputs after every step and stops the
chip at once (the read and the decision are free, and stopping takes no time).

Example:
    >>> import torch
    >>> from neurosim.config import ModelConfig, NeuronConfig
    >>> from neurosim.nn import build_model
    >>> torch.manual_seed(0) and None
    >>> model = build_model(ModelConfig(kind="mlp", input_shape=(20,), hidden=(16,), num_classes=3), NeuronConfig())
    >>> x, y = (torch.rand(6, 8, 20) > 0.6).float(), torch.randint(0, 3, (8,))   # [T, B, inputs], labels
    >>> report = early_exit(model, (20,), [(x, y)], targets=["loihi"], thresholds=[0.9])
    >>> [p.name for p in report.policies][-2:], report.policies[-1].mean_steps <= 6
    (['6 steps (all)', 'confidence > 0.9'], True)
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

__all__ = ["EXIT_METRICS", "DEFAULT_THRESHOLDS", "EarlyExitReport", "ExitPolicy", "early_exit",
           "early_exit_checkpoint", "exit_confidence", "plot_early_exit"]

#: how sure a running read-out is: SEENN's two metrics
EXIT_METRICS = ("confidence", "entropy")
#: thresholds tried by default (SEENN sweeps its threshold between about 0.5 and 0.99)
DEFAULT_THRESHOLDS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.99)
#: what every report states it assumed
ASSUMPTION = ("assumed: the host reads the outputs after every step and stops the chip at once (the read and the "
              "decision are not costed); each cohort is estimated as a run of its own number of steps")


def _steps(n: int) -> str:
    """``"1 step"``, ``"6 steps"``."""
    return f"{n} step" if n == 1 else f"{n} steps"


def exit_confidence(scores, metric: str = "confidence"):
    """``[T, B]``: how sure the running class scores ``[T, B, C]`` are after each step: the largest softmax
    probability (``"confidence"``) or one minus the softmax's entropy over ``log C`` (``"entropy"``), both in
    [0, 1]; larger is surer (SEENN-I's two metrics)."""
    import torch

    if metric not in EXIT_METRICS:
        raise ValueError(f"exit metric must be one of {', '.join(EXIT_METRICS)}, got {metric!r}")
    if scores.ndim != 3 or scores.shape[-1] < 2:
        raise ValueError(f"scores must be [T, B, C] with C >= 2 classes, got shape {tuple(scores.shape)}")
    logp = torch.log_softmax(scores.double(), dim=-1)
    if metric == "confidence":
        return logp.max(dim=-1).values.exp()
    entropy = -(logp.exp() * logp).nan_to_num().sum(dim=-1)  # (0·log 0 = 0)
    return (1 - entropy / math.log(scores.shape[-1])).clamp(0.0, 1.0)


@dataclass
class ExitPolicy:
    """One way of stopping: a fixed number of steps, or a confidence threshold.

    ``exits[t]`` samples stopped after ``t + 1`` steps; ``energy_j`` and ``latency_s`` are means per inference per
    target, ``latency_max_s`` the latency of the slowest cohort (the mean over the samples that stop last)."""

    name: str
    kind: str  # "steps" | "threshold"
    value: float  # the steps, or the threshold
    accuracy: float  # percent
    mean_steps: float
    exits: list  # samples per exit step
    energy_j: dict = field(default_factory=dict)
    latency_s: dict = field(default_factory=dict)
    latency_max_s: dict = field(default_factory=dict)
    latency_tail_s: dict = field(default_factory=dict)  # target -> {mean, p99, max} over samples estimated alone
    #: (cohort, samples) pairs; a cohort is ("first", t): every sample over its first t steps, or ("cohort", k):
    #: the k-th of the other cohorts measured
    cohorts: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "value": self.value, "accuracy": self.accuracy,
                "mean_steps": self.mean_steps, "exits_per_step": list(self.exits),
                "energy_j_per_inference": dict(self.energy_j), "latency_s_per_inference": dict(self.latency_s),
                "latency_s_slowest_cohort": dict(self.latency_max_s),
                **({"latency_s_per_sample": dict(self.latency_tail_s)} if self.latency_tail_s else {})}


@dataclass
class EarlyExitReport:
    """Every policy on the same samples; ``table()`` prints them, ``to_dict()`` is ``early_exit.json``."""

    time_steps: int
    samples: int
    readout: str
    metric: str
    targets: list
    policies: list
    notes: list = field(default_factory=list)
    files: dict = field(default_factory=dict)

    @property
    def full(self) -> ExitPolicy:
        """The run of all ``T`` steps (what the estimate prices)."""
        return next(p for p in self.policies if p.kind == "steps" and p.value == self.time_steps)

    def table(self) -> str:
        from neurosim.estimation import joules, seconds

        full = self.full
        lines = [f"early exit: {self.samples} samples, T = {self.time_steps}, read-out {self.readout}, exit metric "
                 f"{self.metric}; energy per inference (x the run of all {_steps(self.time_steps)})"]
        width = max(len(p.name) for p in self.policies)
        cells = {t: max(18, len(t) + 1) for t in self.targets}
        lines.append(f"{'policy':<{width}}  {'accuracy':>8}  {'steps':>5}" +
                     "".join(f"  {t:>{cells[t]}}" for t in self.targets))
        for p in self.policies:
            row = f"{p.name:<{width}}  {p.accuracy:>7.2f}%  {p.mean_steps:>5.2f}"
            for t in self.targets:
                e, f = p.energy_j[t], full.energy_j[t]
                cell = f"{joules(e)} ({e / f:.2f}x)" if f else joules(e)
                row += f"  {cell:>{cells[t]}}"
            lines.append(row)
        lines.append("latency per inference, mean (of the samples that stop last):")
        for t in [t for t in self.targets if full.latency_s[t] is not None]:
            parts = [f"{p.name}: {seconds(p.latency_s[t])}" + (
                f" ({seconds(p.latency_max_s[t])})" if p.kind == "threshold" else "")
                for p in self.policies if p.kind == "threshold" or p.value == self.time_steps]
            lines.append(f"  {t}: " + "; ".join(parts))
        tails = [p for p in self.policies if p.latency_tail_s]
        if tails:
            lines.append("latency per inference, each sample estimated alone: mean / p99 / max:")
            for t in [t for t in self.targets if t in tails[0].latency_tail_s]:
                parts = [f"{p.name}: " + " / ".join(seconds(p.latency_tail_s[t][q]) for q in ("mean", "p99", "max"))
                         for p in tails if t in p.latency_tail_s]
                lines.append(f"  {t}: " + "; ".join(parts))
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"time_steps": self.time_steps, "samples": self.samples, "readout": self.readout,
                "metric": self.metric, "targets": list(self.targets), "notes": list(self.notes),
                "policies": [p.to_dict() for p in self.policies]}

    def write(self, out_dir: str | Path, *, overwrite: bool = False) -> dict:
        """``early_exit.json``, ``early_exit.txt`` and ``early_exit.png`` in ``out_dir`` (each written atomically);
        files of these names that no early-exit study wrote are kept, and the write refused, unless ``overwrite``
        (:func:`neurosim.estimation.check_study_folder`)."""
        from neurosim.estimation import _write_study

        self.files = _write_study(out_dir, "early_exit", self.table(), plot_early_exit(self), self.to_dict(),
                                  overwrite=overwrite)
        return self.files


def _thresholds(thresholds) -> list[float]:
    if isinstance(thresholds, (str, bytes)) or not isinstance(thresholds, Sequence):
        raise ValueError(f"thresholds must be a list of numbers in [0, 1], got {thresholds!r}")
    out = []
    for c in thresholds:
        if isinstance(c, bool) or not isinstance(c, numbers.Real) or not (0 <= float(c) <= 1):
            raise ValueError(f"exit thresholds must be numbers in [0, 1] (a probability, or one minus a normalised "
                             f"entropy), got {c!r}")
        if float(c) not in out:
            out.append(float(c))
    return sorted(out)


def _check_order(data) -> None:
    """The samples are read twice (outputs, then activity): a loader that shuffles would give two orders."""
    import torch

    sampler = getattr(data, "sampler", None)
    if isinstance(data, torch.utils.data.DataLoader) and isinstance(sampler, torch.utils.data.RandomSampler):
        raise ValueError("early_exit reads the data twice and needs the same samples in the same order each time: "
                         "give a DataLoader without shuffle (or a list of (x_seq, y) batches)")


def _outputs(model, data, samples: int | None):
    """``(out [T, S, C], labels [S])`` of the model on the first ``samples`` of ``data`` (16 at a time)."""
    import torch

    from neurosim.activity import _model_input
    from neurosim.nn.layers import run_chunked

    p = next((q for q in model.parameters() if q.is_floating_point()), None)
    dtype, device = (p.dtype, p.device) if p is not None else (torch.float32, torch.device("cpu"))
    outs, labels, seen = [], [], 0
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for x_seq, y in data:
                if y is None:
                    raise ValueError("early_exit needs labelled data: (x_seq, y) batches")
                x_seq, y = torch.as_tensor(x_seq), torch.as_tensor(y)
                if samples is not None:
                    x_seq, y = x_seq[:, : samples - seen], y[: samples - seen]
                for start in range(0, x_seq.shape[1], 16):
                    x = _model_input(x_seq[:, start:start + 16], model, device, dtype)  # (counts: compact)
                    out, _ = run_chunked(model, x) if getattr(model, "stateful", False) else model(x)
                    outs.append(out.detach().float().cpu())
                labels.append(y.reshape(-1).cpu())
                seen += x_seq.shape[1]
                if samples is not None and seen >= samples:
                    break
    finally:
        model.train(was_training)
    if not seen:
        raise ValueError("early_exit: no samples (empty data)")
    out, y = torch.cat(outs, dim=1), torch.cat(labels)
    if out.ndim != 3 or y.shape != out.shape[1:2]:
        raise ValueError(f"early_exit: outputs must be [T, B, C] with one label per sample, got outputs of shape "
                         f"{tuple(out.shape)} and {y.numel()} labels")
    return out, y


def early_exit(model, input_shape: Sequence[int], data, targets: Sequence[str] | None = None, *, loss=None,
               thresholds: Sequence[float] = DEFAULT_THRESHOLDS, metric: str = "confidence", dt_s: float = 1e-3,
               samples: int | None = None, maxpool: str = "sumpool", out_dir: str | Path | None = None,
               per_sample: bool = False, overwrite: bool = False, **options) -> EarlyExitReport:
    """Accuracy, energy and latency of ``model`` stopped after each fixed number of steps and at each confidence
    threshold (see the module docstring), on every one of ``targets`` (default: every shipped target).

    Args:
        model: a neurosim model (or an snnTorch ``nn.Sequential``, run as its neurosim equivalent).
        input_shape: per-sample input shape, e.g. ``(2, 34, 34)``.
        data: ``(x_seq [T, B, ...], y)`` batches, read twice in the same order (no shuffling).
        loss: the loss (or its name) whose read-out classifies (:func:`neurosim.training.running_scores`); None: the
            time-summed read-out.
        thresholds: exit thresholds in [0, 1]; metric: ``"confidence"`` or ``"entropy"`` (:func:`exit_confidence`).
        dt_s, maxpool, **options: as :func:`neurosim.estimation.estimate_model`.
        samples: use the first ``samples`` (default: all).
        out_dir: when given, writes ``early_exit.json``, ``early_exit.txt`` and ``early_exit.png`` there.
        overwrite: replace files of those names in ``out_dir`` that no early-exit study wrote (a folder that is no
            estimate's, holding an ``early_exit.txt`` of one's own); without it such a folder is refused before
            any work with a :class:`neurosim.estimation.ForeignFilesError`.
        per_sample: also estimate each sample on its own over the steps it runs, under the run of all steps and
            each threshold (:mod:`neurosim.estimation.per_sample`): the mean, 99th percentile and maximum of the
            samples' latencies (``ExitPolicy.latency_tail_s``), where the slowest cohort's figure is its mean
            activity's. One more pass over the data, and an estimate per sample and exit step.
    """
    import torch
    from hardware_models import analyze, estimate, load_spec

    from neurosim.activity import step_profiles
    from neurosim.estimation import (_counts_in_input_shape, _graph_and_activity, _targets, check_study_folder,
                                     placed_for, target_keys)
    from neurosim.export.nir import _to_neurosim
    from neurosim.nn import LIF, MaxPool2d
    from neurosim.training.losses import get_loss, predict, running_scores

    levels = _thresholds(thresholds)
    if metric not in EXIT_METRICS:
        raise ValueError(f"exit metric must be one of {', '.join(EXIT_METRICS)}, got {metric!r}")
    if samples is not None and (isinstance(samples, bool) or not isinstance(samples, numbers.Integral) or samples < 1):
        raise ValueError(f"samples must be a whole number >= 1 or None (all), got {samples!r}")
    loss = get_loss(loss) if isinstance(loss, str) else loss
    keys = target_keys(_targets(targets))
    if out_dir is not None:
        check_study_folder(out_dir, "early_exit", overwrite=overwrite)
    _check_order(data)
    model = _to_neurosim(model)
    graph, names, inp, _ = _graph_and_activity(model, input_shape, data, dt_s=dt_s, samples=samples, maxpool=maxpool,
                                               measure=False)
    out, y = _outputs(model, data, samples)
    T, S = out.shape[0], out.shape[1]
    scores = running_scores(out, loss)
    preds = scores.argmax(-1)  # [T, S]
    preds[-1] = predict(out, loss)  # all T steps: exactly the model's own prediction
    sure = exit_confidence(scores, metric)
    correct = (preds == y[None, :]).double()

    cohorts: list[tuple[int, torch.Tensor]] = []  # the cohorts other than every sample over its first t steps
    index: dict[tuple, tuple[str, int]] = {}
    steps_of: dict[tuple[str, int], int] = {}

    def cohort(steps: int, members: torch.Tensor) -> tuple[str, int]:
        if members.numel() == S:  # every sample (members are distinct): the run's profile cut to its first steps
            steps_of[("first", steps)] = steps
            return ("first", steps)
        key = (steps, members.numpy().tobytes())
        if key not in index:
            index[key] = ("cohort", len(cohorts))
            steps_of[index[key]] = steps
            cohorts.append((steps, members))
        return index[key]

    everyone = torch.arange(S)
    policies, firsts = [], {}
    for t in range(1, T + 1):
        exits = [0] * T
        exits[t - 1] = S
        # named "1 step", "2 steps", ..., "T steps (all)" (the run of 1 step was "1 steps"; its kind and value say
        # which policy it is: "steps", 1)
        policies.append(ExitPolicy(_steps(t) + (" (all)" if t == T else ""), "steps", t,
                                   100.0 * float(correct[t - 1].mean()), float(t), exits,
                                   cohorts=[(cohort(t, everyone), S)]))
    for c in levels:
        over = sure > c
        first = torch.where(over.any(0), over.double().argmax(0), torch.full((S,), T - 1))  # exit step - 1
        firsts[c] = first
        hits = correct[first, everyone]
        exits = torch.bincount(first, minlength=T).tolist()
        parts = [(cohort(t + 1, (first == t).nonzero().flatten()), n) for t, n in enumerate(exits) if n]
        policies.append(ExitPolicy(f"{metric} > {c:g}", "threshold", c, 100.0 * float(hits.mean()),
                                   float((first + 1).double().mean()), exits, cohorts=parts))

    feed = _in_order(data if samples is None else _head(data, samples), y)
    # one pass: every sample's totals per step (and neuron), from which each "t steps" profile is cut when it is
    # estimated, and the threshold cohorts of some of the samples (T cohorts of all of them, each a weighted total
    # per neuron, all kept: 23 s of the 37 s of CPU at T = 400, see neurosim.activity.StepProfiles)
    measured = step_profiles(model, feed, cohorts, dt_s=dt_s, names=names, input_name=inp, kinds=(LIF, MaxPool2d))
    facts = analyze(graph)
    specs = {k: load_spec(t) for k, t in keys.items()}
    full = measured.first(T)  # every sample over all T steps: the run the network is placed for
    _counts_in_input_shape(full, graph, inp)
    placed = {k: placed_for(spec, full, options) for k, spec in specs.items()}  # one placement for every cohort

    def costed(act) -> dict:
        if act is not full:
            _counts_in_input_shape(act, graph, inp)
        return {k: estimate(facts, act, specs[k], **placed[k]) for k in keys}

    costs = {("cohort", k): costed(act) for k, act in enumerate(measured.cohorts)}  # per cohort: target -> Estimate
    for key, steps in steps_of.items():  # (each profile made, estimated and let go)
        if key[0] == "first":
            costs[key] = costed(full if steps == T else measured.first(steps))
    for p in policies:
        for t in keys:
            p.energy_j[t] = sum(n * costs[k][t].total_energy_j for k, n in p.cohorts) / S
            lat = [(n, costs[k][t].latency_per_inference_s) for k, n in p.cohorts]
            known = all(v is not None for _, v in lat)  # (a target without a latency model: None)
            p.latency_s[t] = sum(n * v for n, v in lat) / S if known else None
            last = max(p.cohorts, key=lambda kn: steps_of[kn[0]])[0]  # the cohort that runs the most steps
            p.latency_max_s[t] = costs[last][t].latency_per_inference_s
    if per_sample:
        _latency_tails(policies, firsts, model, data if samples is None else _head(data, samples), y, T, graph,
                       names, inp, dt_s, facts, specs, placed)
    readout = type(loss).__name__ if loss is not None else "summed outputs"
    readout = {"RateCE": "summed outputs", "TET": "summed outputs", "SLTTMix": "summed outputs",
               "MaxCE": "maximum over steps", "LastCE": "last step"}.get(readout, readout)
    report = EarlyExitReport(T, S, readout, metric, list(keys), policies, notes=[ASSUMPTION])
    if out_dir is not None:
        report.write(out_dir, overwrite=overwrite)
    return report


def _latency_tails(policies, firsts, model, data, labels, T, graph, names, inp, dt_s, facts, specs, options) -> None:
    """Each sample estimated alone over the steps it runs under the run of all ``T`` steps and each threshold
    (``firsts[c]``: its exit step − 1): every such policy's ``latency_tail_s`` (``options``: per target, the
    estimate's, with the placement the cohorts keep)."""
    import numpy as np
    from hardware_models import estimate

    from neurosim.estimation.per_sample import sample_profiles

    found, _ = sample_profiles(model, _in_order(data, labels), lambda i, _T: [T] + [int(f[i]) + 1 for f in
                               firsts.values()], graph=graph, names=names, input_name=inp, dt_s=dt_s)
    lat = {pair: {k: estimate(facts, act, spec, **options[k]).latency_per_inference_s for k, spec in specs.items()}
           for pair, act in found.items()}
    S = len(labels)
    for p in policies:
        if p.kind == "steps" and p.value != T:
            continue
        steps = [T] * S if p.kind == "steps" else [int(v) + 1 for v in firsts[p.value]]
        for k in specs:
            v = [lat[(i, t)][k] for i, t in enumerate(steps)]
            if any(x is None for x in v):
                continue
            v = np.asarray(v, dtype=np.float64)
            p.latency_tail_s[k] = {"mean": float(v.mean()), "p99": float(np.percentile(v, 99)),
                                   "max": float(v.max())}


def _in_order(data, labels):
    """``data``'s batches, checked to bring the labels of the first pass in the same order (a loader that shuffles
    would measure the activity of other samples than those whose exits were found)."""
    import torch

    seen = 0
    for x_seq, y in data:
        y_ = torch.as_tensor(y).reshape(-1).cpu()
        if not torch.equal(y_, labels[seen:seen + y_.numel()]):
            raise ValueError("early_exit reads the data twice and the second pass brought other samples (labels "
                             "differ from the first): give batches in a fixed order (no shuffling)")
        seen += y_.numel()
        yield x_seq, y


def _head(data, samples: int) -> list:
    """The first ``samples`` of ``data``'s ``(x_seq, y)`` batches."""
    import torch

    kept, seen = [], 0
    for x_seq, y in data:
        x_seq = torch.as_tensor(x_seq)[:, : samples - seen]
        kept.append((x_seq, None if y is None else torch.as_tensor(y)[: samples - seen]))
        seen += x_seq.shape[1]
        if seen >= samples:
            break
    return kept


def early_exit_checkpoint(path: str | Path, targets: Sequence[str] | None = None, *, samples: int | None = None,
                          out_dir: str | Path | None = None, progress: bool = False, step_ms: float | None = None,
                          loaded=None, **kwargs) -> EarlyExitReport:
    """:func:`early_exit` on a neurosim checkpoint's test split (the first ``samples``; None: all), with the read-out
    of the loss it was trained with; ``out_dir`` defaults to the checkpoint's estimate folder, and ``step_ms`` and
    ``loaded`` (the checkpoint as already read, or None to read it here) are
    :func:`neurosim.estimation.estimate_checkpoint`'s."""
    from neurosim.estimation import _first_samples, _open_checkpoint, check_study_folder
    from neurosim.training.losses import get_loss

    model, cfg, data, out_dir, dt_s = _open_checkpoint(  # (its folder refused before the checkpoint is read)
        path, step_ms, loaded, progress, out_dir,
        lambda out: check_study_folder(out, "early_exit", overwrite=kwargs.get("overwrite", False)))
    loss = get_loss(cfg.train.loss, cfg.train.loss_lambda, cfg.train.loss_target)
    return early_exit(model, cfg.model.input_shape, _first_samples(data.test, samples), targets, loss=loss,
                      dt_s=dt_s, samples=samples, out_dir=out_dir, **kwargs)


def plot_early_exit(report: EarlyExitReport):
    """Accuracy against mean steps (fixed steps: a line; thresholds: points), and each target's energy per
    inference relative to the run of all steps against the same axis."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from matplotlib import colormaps

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    fixed = [p for p in report.policies if p.kind == "steps"]
    dyn = [p for p in report.policies if p.kind == "threshold"]
    a.plot([p.mean_steps for p in fixed], [p.accuracy for p in fixed], "o-", label="fixed steps")
    if dyn:
        a.plot([p.mean_steps for p in dyn], [p.accuracy for p in dyn], "s", label=f"{report.metric} threshold")
    a.set(xlabel="mean steps per inference", ylabel="accuracy (%)", title=f"early exit ({report.samples} samples)")
    a.legend(fontsize=8, loc="lower right")
    full = report.full
    shown = [t for t in report.targets if full.energy_j[t]]
    # one colour per target (the 10-colour cycle gave the 1st and the 11th target one colour)
    colours = colormaps["tab10" if len(shown) <= 10 else "tab20"]
    for i, t in enumerate(shown):
        colour = colours(i % colours.N)
        b.plot([p.mean_steps for p in fixed], [p.energy_j[t] / full.energy_j[t] for p in fixed], "-", label=t,
               color=colour)
        if dyn:
            b.plot([p.mean_steps for p in dyn], [p.energy_j[t] / full.energy_j[t] for p in dyn], "s", color=colour)
    b.set(xlabel="mean steps per inference", ylabel=f"energy / all {_steps(report.time_steps)}",
          title="energy per inference")
    if shown:  # (the energy grows with the steps: the upper left corner is free)
        b.legend(fontsize=7, ncol=2, loc="upper left")
    fig.tight_layout()
    _label_thresholds(a, dyn)  # (in the axes as laid out: the labels' room is reckoned in points)
    fig.tight_layout()
    return fig


#: a threshold's label: its font size (points), and its height and gap above its point (points)
_LABEL_PT, _LABEL_H, _LABEL_GAP = 7, 10, 5


def _label_thresholds(ax, dyn) -> None:
    """Each threshold's value centred above its point; a label that would overlap one already placed (two
    thresholds with nearly the same mean steps and accuracy, as 0.7 and 0.8 on the demo model) goes one row higher,
    and the accuracy axis is raised to hold the highest. Each label is on a white ground, readable over the line of
    the fixed steps (they were placed right of and below their points, over each other and the line).

    Raising the axis moves the points down and closer together while the labels keep their size in points, so the
    top is solved for each label (its point's share of the axis and its height above the point) and the labels
    placed again at the new scale, until they fit (a top raised by the labels' excess alone left labels of
    points high on the axis above it)."""
    if not dyn:
        return
    ax.autoscale_view()  # the limits the points are drawn at (transData uses them; they are set lazily)
    to_pt = 72.0 / ax.figure.dpi
    order = sorted(dyn, key=lambda q: (q.mean_steps, q.accuracy))
    for _ in range(10):  # (each pass raises the top; the rows settle within a few)
        lo, hi = ax.get_ylim()
        height = (ax.transData.transform((0, hi))[1] - ax.transData.transform((0, lo))[1]) * to_pt
        placed: list[tuple[float, float, float]] = []  # (x centre, bottom, width) in points, of the labels placed
        offsets, need = [], hi
        for p in order:
            x, y = (v * to_pt for v in ax.transData.transform((p.mean_steps, p.accuracy)))
            width = 0.62 * _LABEL_PT * len(f"{p.value:g}") + 4  # (a digit about 0.6 em; 2 points of ground a side)
            row = 0
            while any(abs(x - px) < (width + pw) / 2 and abs(y + _LABEL_GAP + row * _LABEL_H - pb) < _LABEL_H
                      for px, pb, pw in placed):
                row += 1
            bottom = y + _LABEL_GAP + row * _LABEL_H
            placed.append((x, bottom, width))
            offsets.append(bottom - y)
            above = bottom - y + _LABEL_H  # the label's top above its point, in points
            if above < height:  # the top at which the point sits `above` below it: (acc − lo) / (top − lo) of it
                need = max(need, lo + (p.accuracy - lo) * height / (height - above))
        if need <= hi:
            break
        ax.set_ylim(lo, lo + (need - lo) * 1.02)
    for p, offset in zip(order, offsets):
        ax.annotate(f"{p.value:g}", (p.mean_steps, p.accuracy), textcoords="offset points", xytext=(0, offset),
                    ha="center", va="bottom", fontsize=_LABEL_PT,
                    bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.85})

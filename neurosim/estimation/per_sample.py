"""Per-sample cost: each test sample's energy and latency on each target, and the spread the mean activity hides.

:func:`neurosim.estimation.estimate_model` prices the *mean* activity over the samples: one profile, one estimate.
Energy is (almost) linear in the activity, so that is the mean energy per inference. Latency is not: an
event-driven chip's step takes as long as its busiest core needs (Loihi, SpiNNaker: a maximum over cores), a
crossbar's step as long as its slowest layer, and a chip with a fixed tick waits for the tick unless a step needs
more. The latency of the mean activity is then below the mean of the samples' latencies (a maximum of means is at
most the mean of the maxima), and a real-time application cares about the slow samples, not the mean.

Here every sample is measured on its own (:func:`neurosim.activity.cohort_profiles`, one cohort per sample: its
spikes, updates and input events, exactly as :func:`neurosim.activity.activity_profile` would measure that sample
alone) and estimated on every target (:func:`hardware_models.estimate`, the same model of the chip, placed once: where
placement orders tie on cores, every sample keeps the placement chosen for the mean activity). The report
gives, per target, the estimate of the mean activity beside the mean, median, 90th and 99th percentile and maximum
over the samples, and the samples that take longest (their indices in the test data, to look at).

Example:
    >>> import torch
    >>> from neurosim.config import ModelConfig, NeuronConfig
    >>> from neurosim.nn import build_model
    >>> torch.manual_seed(0) and None
    >>> model = build_model(ModelConfig(kind="mlp", input_shape=(20,), hidden=(16,), num_classes=3), NeuronConfig())
    >>> x, y = (torch.rand(6, 8, 20) > 0.6).float(), torch.randint(0, 3, (8,))   # [T, B, inputs], labels
    >>> report = per_sample(model, (20,), [(x, y)], targets=["loihi"])
    >>> report.samples, report.costs["loihi"].latency_s.shape
    (8, (8,))
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["PERCENTILES", "PerSampleReport", "SampleCosts", "per_sample", "per_sample_checkpoint", "plot_per_sample",
           "sample_profiles"]

#: the percentiles every summary gives (with the mean and the maximum)
PERCENTILES = (50, 90, 99)
#: how many of the slowest samples a summary names
SLOWEST = 5


@dataclass
class SampleCosts:
    """One target's cost of each sample: ``energy_j[i]`` and ``latency_s[i]`` (None: the target has no latency
    model), and the estimate of the mean activity over the samples (what :func:`~neurosim.estimation.estimate_model`
    reports)."""

    target: str
    energy_j: np.ndarray
    latency_s: np.ndarray | None
    energy_of_mean_j: float
    latency_of_mean_s: float | None

    @staticmethod
    def _spread(values: np.ndarray) -> dict:
        out = {"mean": float(values.mean())}
        out.update({f"p{q}": float(np.percentile(values, q)) for q in PERCENTILES})
        out["max"] = float(values.max())
        return out

    def summary(self) -> dict:
        """Mean, percentiles and maximum of the energy and latency, the mean activity's figures, and the indices
        of the slowest samples (by latency; by energy for a target without a latency model)."""
        out = {"energy_j": self._spread(self.energy_j), "energy_of_mean_activity_j": self.energy_of_mean_j}
        key = self.energy_j
        if self.latency_s is not None:
            out["latency_s"] = self._spread(self.latency_s)
            out["latency_of_mean_activity_s"] = self.latency_of_mean_s
            key = self.latency_s
        out["slowest_samples"] = [int(i) for i in np.argsort(-key, kind="stable")[:SLOWEST]]
        return out


@dataclass
class PerSampleReport:
    """Every target's :class:`SampleCosts` on the same samples; ``table()`` prints them, ``to_dict()`` is
    ``per_sample.json`` (the summaries, and each sample's figures and label)."""

    time_steps: int
    samples: int
    dt_s: float
    labels: np.ndarray | None
    costs: dict
    files: dict = field(default_factory=dict)

    def table(self) -> str:
        from neurosim.estimation import joules, seconds

        lines = [f"per-sample cost: {self.samples} samples, T = {self.time_steps}, each estimated on its own "
                 f"(\"of mean\": the estimate of the mean activity, what the estimate table gives)"]
        width = max([6] + [len(t) for t in self.costs])
        cols = ["of mean", "mean", *(f"p{q}" for q in PERCENTILES), "max"]
        lines.append(f"{'latency':<{width}}  " + "  ".join(f"{c:>9}" for c in cols))
        for t, c in self.costs.items():
            if c.latency_s is None:
                lines.append(f"{t:<{width}}  (no latency model)")
                continue
            s = c._spread(c.latency_s)
            lines.append(f"{t:<{width}}  " + "  ".join(f"{seconds(v):>9}" for v in (c.latency_of_mean_s, *s.values())))
        lines.append(f"{'energy':<{width}}  " + "  ".join(f"{c:>9}" for c in cols))
        for t, c in self.costs.items():
            s = c._spread(c.energy_j)
            lines.append(f"{t:<{width}}  " + "  ".join(f"{joules(v):>9}" for v in (c.energy_of_mean_j, *s.values())))
        timed = {t: c for t, c in self.costs.items() if c.latency_s is not None}
        if timed:
            t, c = max(timed.items(), key=lambda kv: kv[1].latency_s.max() / max(kv[1].latency_of_mean_s, 1e-300))
            slow = c.summary()["slowest_samples"]
            label = "" if self.labels is None else f" (labels {', '.join(str(int(self.labels[i])) for i in slow)})"
            lines.append(f"slowest samples on {t}: {', '.join(map(str, slow))}{label}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        per = {t: {"energy_j": c.energy_j.tolist(),
                   "latency_s": None if c.latency_s is None else c.latency_s.tolist()} for t, c in self.costs.items()}
        return {"time_steps": self.time_steps, "samples": self.samples, "dt_s": self.dt_s,
                "percentiles": list(PERCENTILES), "summary": {t: c.summary() for t, c in self.costs.items()},
                "labels": None if self.labels is None else [int(v) for v in self.labels], "per_sample": per}

    def write(self, out_dir: str | Path, *, overwrite: bool = False) -> dict:
        """``per_sample.json``, ``per_sample.txt`` and ``per_sample.png`` in ``out_dir`` (each written atomically);
        files of these names that no per-sample study wrote are kept, and the write refused, unless ``overwrite``
        (:func:`neurosim.estimation.check_study_folder`)."""
        from neurosim.estimation import _write_study

        self.files = _write_study(out_dir, "per_sample", self.table(), plot_per_sample(self), self.to_dict(),
                                  overwrite=overwrite)
        return self.files


def _batches(data, samples: int | None, chunk: int):
    """``(x [T, b, ...], y or None)`` pieces of at most ``chunk`` samples, the first ``samples`` of ``data``."""
    import torch

    seen = 0
    for x_seq, y in ([(data, None)] if isinstance(data, torch.Tensor) else data):
        x_seq = torch.as_tensor(x_seq)
        if x_seq.ndim < 3:
            raise ValueError(f"per_sample: inputs must be [T, B, ...], got shape {tuple(x_seq.shape)}")
        if samples is not None:
            x_seq = x_seq[:, : samples - seen]
        y = None if y is None else torch.as_tensor(y).reshape(-1)[: x_seq.shape[1]]
        for start in range(0, x_seq.shape[1], chunk):
            yield x_seq[:, start:start + chunk], None if y is None else y[start:start + chunk]
        seen += x_seq.shape[1]
        if samples is not None and seen >= samples:
            return


def sample_profiles(model, data, steps_for, *, graph, names, input_name, dt_s: float, samples: int | None = None,
                    chunk: int = 16):
    """``({(i, steps): profile}, labels or None)``: the activity of each sample ``i`` of ``data`` (in order; its first
    ``samples``) run alone for each number of steps in ``steps_for(i, T)`` (:func:`neurosim.activity.cohort_profiles`
    with one cohort per pair, ``chunk`` samples measured together), in the terms of ``graph`` (its module → node
    ``names`` and Input node ``input_name``); the labels as a numpy array when every batch has them."""
    import torch

    from neurosim.activity import cohort_profiles
    from neurosim.estimation import _counts_in_input_shape
    from neurosim.nn import LIF, MaxPool2d

    found, labels, unlabelled, seen = {}, [], False, 0
    for x, y in _batches(data, samples, chunk):
        b, T = x.shape[1], x.shape[0]
        if b == 0:
            continue
        pairs = [(seen + j, int(t)) for j in range(b) for t in dict.fromkeys(steps_for(seen + j, T))]
        got = cohort_profiles(model, [(x, None)], [(t, [i - seen]) for i, t in pairs], dt_s=dt_s, names=names,
                              input_name=input_name, kinds=(LIF, MaxPool2d))
        for pair, act in zip(pairs, got):
            _counts_in_input_shape(act, graph, input_name)
            found[pair] = act
        if y is None:
            unlabelled = True
        else:
            labels.append(y.cpu())
        seen += b
    return found, None if unlabelled or not labels else torch.cat(labels).numpy()


def _mean_profile(profiles: list):
    """The mean of one-sample profiles: what :func:`~neurosim.activity.activity_profile` measures on all of them."""
    from hardware_models import ActivityProfile

    first, n = profiles[0], len(profiles)

    def mean(get):
        return sum(get(p).astype(np.float64) for p in profiles) / n

    return ActivityProfile(
        time_steps=first.time_steps, dt_s=first.dt_s, samples=n,
        spikes_per_step={k: mean(lambda p, k=k: p.spikes_per_step[k]) for k in first.spikes_per_step},
        spike_counts={k: mean(lambda p, k=k: p.spike_counts[k]) for k in first.spike_counts},
        input_events_per_step=mean(lambda p: p.input_events_per_step),
        updates_per_step={k: mean(lambda p, k=k: p.updates_per_step[k]) for k in first.updates_per_step})


def per_sample(model, input_shape: Sequence[int], data, targets: Sequence[str] | None = None, *,
               dt_s: float = 1e-3, samples: int | None = None, maxpool: str = "sumpool",
               out_dir: str | Path | None = None, chunk: int = 16, overwrite: bool = False,
               **options) -> PerSampleReport:
    """Each sample's energy and latency per inference on every one of ``targets`` (default: every shipped target),
    with the estimate of their mean activity (module docstring).

    Args:
        model: a neurosim model (or an snnTorch ``nn.Sequential``, run as its neurosim equivalent).
        input_shape: per-sample input shape, e.g. ``(2, 34, 34)``.
        data: an input ``[T, B, ...]`` or ``(x_seq [T, B, ...], y)`` batches (labels are kept for the report).
        samples: use the first ``samples`` (default: all).
        chunk: samples measured together (memory: ``chunk`` × neurons float64 sums per layer).
        dt_s, maxpool, out_dir, **options: as :func:`neurosim.estimation.estimate_model` (``out_dir``: writes
            ``per_sample.json``, ``per_sample.txt`` and ``per_sample.png`` there).
        overwrite: replace files of those names in ``out_dir`` that no per-sample study wrote; without it a folder
            that is no estimate's and holds one is refused before any work
            (:class:`neurosim.estimation.ForeignFilesError`).
    """
    from hardware_models import analyze, estimate, load_spec

    from neurosim.estimation import _graph_and_activity, _targets, check_study_folder, placed_for, target_keys
    from neurosim.export.nir import _to_neurosim

    for name, v, low in (("samples", samples, 1), ("chunk", chunk, 1)):
        if v is None and name == "samples":
            continue
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < low:
            raise ValueError(f"per_sample: {name} must be a whole number >= {low}"
                             f"{' or None (all)' if name == 'samples' else ''}, got {v!r}")
    keys = target_keys(_targets(targets))
    if out_dir is not None:
        check_study_folder(out_dir, "per_sample", overwrite=overwrite)
    model = _to_neurosim(model)
    graph, names, inp, _ = _graph_and_activity(model, input_shape, data, dt_s=dt_s, samples=samples, maxpool=maxpool,
                                               measure=False)
    found, labels = sample_profiles(model, data, lambda i, T: [T], graph=graph, names=names, input_name=inp,
                                    dt_s=dt_s, samples=samples, chunk=int(chunk))
    if not found:
        raise ValueError("per_sample: no samples (empty data)")
    profiles = list(found.values())  # (in sample order)
    mean = _mean_profile(profiles)
    facts = analyze(graph)
    costs = {}
    for key, t in keys.items():
        spec = load_spec(t)
        placed = placed_for(spec, mean, options)  # one placement for every sample: the mean activity's
        ests = [estimate(facts, act, spec, **placed) for act in profiles]
        at_mean = estimate(facts, mean, spec, **placed)
        lat = [e.latency_per_inference_s for e in ests]
        costs[key] = SampleCosts(
            key, np.array([e.total_energy_j for e in ests]),
            None if any(v is None for v in lat) else np.array(lat, dtype=np.float64),
            at_mean.total_energy_j, at_mean.latency_per_inference_s)
    report = PerSampleReport(mean.time_steps, len(profiles), float(dt_s), labels, costs)
    if out_dir is not None:
        report.write(out_dir, overwrite=overwrite)
    return report


def per_sample_checkpoint(path: str | Path, targets: Sequence[str] | None = None, *, samples: int | None = 64,
                          out_dir: str | Path | None = None, progress: bool = False, step_ms: float | None = None,
                          loaded=None, **kwargs) -> PerSampleReport:
    """:func:`per_sample` on a neurosim checkpoint's test split (its first ``samples``; None: all); ``out_dir``
    defaults to the checkpoint's estimate folder, and ``step_ms`` and ``loaded`` (the checkpoint as already read, or
    None to read it here) are :func:`neurosim.estimation.estimate_checkpoint`'s."""
    from neurosim.estimation import _first_samples, _open_checkpoint, check_study_folder

    model, cfg, data, out_dir, dt_s = _open_checkpoint(  # (its folder refused before the checkpoint is read)
        path, step_ms, loaded, progress, out_dir,
        lambda out: check_study_folder(out, "per_sample", overwrite=kwargs.get("overwrite", False)))
    return per_sample(model, cfg.model.input_shape, _first_samples(data.test, samples), targets, dt_s=dt_s,
                      samples=samples, out_dir=out_dir, **kwargs)


def plot_per_sample(report: PerSampleReport):
    """Each target's latency (left) and energy (right) over the samples, as the fraction of samples at or below a
    value, relative to the estimate of the mean activity (a dotted line at 1)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    frac = (np.arange(report.samples) + 1) / report.samples
    for ax, what in zip(axes, ("latency", "energy")):
        for t, c in report.costs.items():
            values, ref = ((c.latency_s, c.latency_of_mean_s) if what == "latency" else
                           (c.energy_j, c.energy_of_mean_j))
            if values is None or not ref:
                continue
            ax.step(np.sort(values) / ref, frac, where="post", label=t)
        ax.axvline(1.0, color="grey", linestyle=":", linewidth=1)
        ax.set(xlabel=f"{what} per inference / {what} of the mean activity", ylabel="fraction of samples",
               title=f"{what} of each of {report.samples} samples")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig

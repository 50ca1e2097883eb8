"""From a trained model (or a NIR graph + activity from any library) to chip energy, latency and mapping.

The pipeline: model → NIR graph (:func:`neurosim.export.to_nir`) → measured activity on N evaluation samples
(:func:`neurosim.activity.activity_profile`) → :func:`hardware_models.estimate` per target → ``estimate.json``,
a text table and PNG figures (energy breakdown per target, per-layer synaptic operations and firing rates, cores
used). The hardware models themselves live in the standalone :mod:`hardware_models` package.

Example:
    >>> import torch
    >>> from neurosim.config import ModelConfig, NeuronConfig
    >>> from neurosim.nn import build_model
    >>> model = build_model(ModelConfig(kind="mlp", input_shape=(20,), hidden=(16,), num_classes=3), NeuronConfig())
    >>> x = (torch.rand(8, 4, 20) > 0.7).float()                      # [T, B, inputs]
    >>> report = estimate_model(model, (20,), x, targets=["loihi", "truenorth"], dt_s=1e-3)
    >>> sorted(report.estimates)
    ['loihi', 'truenorth']
    >>> report.activity.samples, report.activity.time_steps
    (4, 8)
"""

from __future__ import annotations

import difflib
import json
import math
import numbers
import os
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from neurosim._io import OutputPathError, atomic_write_text

__all__ = ["chip_energy", "fits_not", "format_chip_energy", "joules", "seconds", "EstimateReport",
           "ForeignFilesError", "check_estimate_folder", "check_study_folder", "estimate_checkpoint",
           "estimate_files", "estimate_model", "plot_energy", "plot_layers", "plot_cores", "target_keys"]


@dataclass
class EstimateReport:
    """Estimates of one network on several targets, with the graph and activity they came from."""

    graph: object  # nir.NIRGraph
    activity: object  # hardware_models.ActivityProfile
    estimates: dict = field(default_factory=dict)  # target -> hardware_models.Estimate
    files: dict = field(default_factory=dict)  # what was written: name -> path
    facts: object = field(default=None, repr=False)  # hardware_models.GraphFacts of graph (None: to_dict makes it)
    # whether the samples were measured on a model (estimate --per-sample gives their spread), not read from an
    # activity file (estimate --nir), which holds only their mean
    from_model: bool = True

    def table(self) -> str:
        from hardware_models import format_estimates

        text = format_estimates(list(self.estimates.values()))
        n = getattr(self.activity, "samples", 1)
        if n > 1:
            spread = ("estimate --per-sample gives their spread" if self.from_model else "an activity file holds "
                      "only their mean; estimate --checkpoint ... --per-sample gives a neurosim model's spread")
            text += (f"\n(figures for the mean activity of {n} samples: the energy is their mean; latency is not "
                     f"linear in activity, so single samples differ: {spread})")
        return text

    def to_dict(self) -> dict:
        """A JSON-ready summary: the activity (its ``input_events_per_inference`` are the events the estimates
        count entering the graph: each Input node's ``spikes_per_step`` entry, or for a graph's only Input node
        without one, ``input_events_per_step``) and each target's estimate."""
        import nir
        from hardware_models import analyze
        from hardware_models.graph import flatten_graph

        a = self.activity
        neurons = (nir.LIF, nir.IF, nir.CubaLIF)
        per_node = {k: float(v.sum()) for k, v in a.spikes_per_step.items()}
        nodes = flatten_graph(self.graph).nodes  # a subgraph's neurons are named 'subgraph.node' in the activity
        is_neuron = {k: isinstance(nodes.get(k), neurons) for k in per_node}
        facts = analyze(self.graph) if self.facts is None else self.facts
        input_events = float(sum(facts.source_series(a, n).sum() for n in facts.input_names))
        return {
            "activity": {"time_steps": a.time_steps, "dt_s": a.dt_s, "samples": a.samples,
                         "input_events_per_inference": input_events,
                         "spikes_per_inference": {k: v for k, v in per_node.items() if is_neuron[k]},
                         # what other nodes pass on (the Input node, max pools exported as sum pools)
                         "events_per_inference": {k: v for k, v in per_node.items() if not is_neuron[k]}},
            "targets": {t: e.to_dict() for t, e in self.estimates.items()},
        }


def _targets(targets: Sequence[str] | None) -> list[str]:
    from hardware_models import list_targets

    known = list_targets()
    if not targets:
        return known
    bad = [t for t in targets if t not in known and not Path(t).is_file()]
    # read as a path, as hardware_models.load_spec reads it: a name ending in .toml or with a folder in it
    missing = [t for t in bad if str(t).endswith(".toml") or "/" in str(t) or os.sep in str(t)]
    if missing:
        raise ValueError(f"spec file(s) {missing} not found (a target ending in .toml or containing a slash is the "
                         f"path of a spec file); known targets: {', '.join(known)}")
    if bad:
        guesses = [f"{t!r} -> {close[0]!r}" for t in bad
                   for close in [difflib.get_close_matches(str(t).lower(), known, n=1)] if close]
        guess = f" (did you mean {', '.join(guesses)}?)" if guesses else ""
        raise ValueError(f"unknown target(s) {bad}{guess}; known targets: {', '.join(known)}")
    return list(targets)


def target_keys(targets: Sequence[str] | None) -> dict[str, str]:
    """``{key: target}`` for the targets asked (default: every shipped one): a spec file's key is its name, the file's
    stem. The same target twice counts once.

    Raises:
        ValueError: two different targets share a key (a modified copy of ``loihi.toml`` beside the shipped
            ``loihi``: the rows and files of one would replace the other's).
    """
    from hardware_models.specs import SPEC_DIR

    def where(t: str) -> Path:  # a shipped name is its file in the specs folder
        return Path(t).resolve() if Path(t).suffix == ".toml" or "/" in t else (SPEC_DIR / f"{t}.toml").resolve()

    keys: dict[str, str] = {}
    for t in dict.fromkeys(targets or ()):
        key = where(t).stem
        if key in keys and where(keys[key]) != where(t):
            raise ValueError(f"targets {keys[key]!r} and {t!r} are both named {key!r} (a spec's name is its file's "
                             "name): their rows and files would replace each other; copy one to a file of another "
                             "name (and set its name to match) to compare them")
        keys.setdefault(key, t)
    return keys


def _run(graph, activity, targets, out_dir, options, facts=None, from_model=True,
         overwrite: bool = False) -> EstimateReport:
    """Estimate ``graph`` on every target; ``facts`` (its analysis) when already made (each estimate starts with
    its notes, ``GraphFacts.notes``: what the analysis or the reading assumed about the graph); ``from_model``
    False for an activity read from a file (:attr:`EstimateReport.from_model`); ``overwrite``:
    :func:`write_outputs`'."""
    from hardware_models import analyze, estimate

    facts = analyze(graph) if facts is None else facts
    report = EstimateReport(graph, activity, facts=facts, from_model=from_model)
    for key, t in target_keys(_targets(targets)).items():
        report.estimates[key] = estimate(facts, activity, t, **options)
    if out_dir is not None:
        write_outputs(report, out_dir, overwrite=overwrite)
    return report


def estimate_model(model, input_shape: Sequence[int], data, targets: Sequence[str] | None = None, *,
                   dt_s: float = 1e-3, samples: int | None = None, out_dir: str | Path | None = None,
                   maxpool: str = "sumpool", overwrite: bool = False, **options) -> EstimateReport:
    """Export ``model`` to NIR, measure its activity on ``data`` and estimate it on ``targets`` (default: all).

    Args:
        model: a neurosim model, or an snnTorch ``nn.Sequential`` (converted with
            :func:`neurosim.interop.snntorch.from_snntorch`, whose spikes are identical, and measured as that).
        input_shape: per-sample input shape, e.g. ``(2, 34, 34)``.
        data: an input ``[T, B, ...]`` or an iterable of ``(x_seq, y)`` batches.
        targets: spec names or spec file paths.
        dt_s: seconds per time step.
        samples: number of samples to measure the activity on (default: all of ``data``).
        out_dir: when given, writes ``estimate.json``, ``activity.json``, ``model.nir`` and the figures there
            (:func:`write_outputs`).
        overwrite: replace files in ``out_dir`` named as the estimate writes them even where no neurosim estimate
            wrote them. Without it a folder that is no estimate's (:func:`is_estimate_folder`) and holds such a file
            (notes of one's own in ``estimate.txt``, another tool's ``model.nir``) is refused with a
            :class:`ForeignFilesError` before anything is measured (:func:`check_estimate_folder`); an earlier
            estimate's folder is replaced either way, as ``neurosim estimate --out`` (``--overwrite``) does.
        maxpool: how MaxPool2d is exported (:func:`neurosim.export.to_nir`); with the default ``sumpool`` the
            graph has the pool's exact connectivity, and the events leaving each max pool (at most one per window
            and step) are measured on the real model, like the spikes, so the hardware models count the synaptic
            operations the max-pooling model makes (a sum pool would pass every spike of the window on: ~2.5–3×
            more after the demo model's pools).
        **options: passed to :func:`hardware_models.estimate` (e.g. ``weight_bits``).

    Raises:
        ForeignFilesError: ``out_dir`` holds files of the estimate's names that no estimate wrote (without
            ``overwrite``).
    """
    from neurosim.export.nir import _to_neurosim

    if out_dir is not None:
        check_estimate_folder(out_dir, overwrite=overwrite)  # before the work: the user's files stay as they are
    model = _to_neurosim(model)  # an snnTorch model runs as its neurosim equivalent (identical spikes)
    graph, _, _, activity = _graph_and_activity(model, input_shape, data, dt_s=dt_s, samples=samples, maxpool=maxpool)
    return _run(graph, activity, targets, out_dir, options, overwrite=overwrite)


def _graph_and_activity(model, input_shape: Sequence[int], data, *, dt_s: float, samples: int | None,
                        maxpool: str = "sumpool", measure: bool = True):
    """A neurosim model's NIR graph, its module → node names, its Input node and (``measure``) its activity on
    ``data`` in the graph's terms (None without ``measure``)."""
    from neurosim.activity import activity_profile
    from neurosim.export import to_nir
    from neurosim.nn import LIF, MaxPool2d

    graph = to_nir(model, tuple(input_shape), dt_s=dt_s, maxpool=maxpool)
    names = _module_node_names(model, graph)
    inp = _input_node(graph)
    activity = None
    if measure:
        activity = activity_profile(model, data, dt_s=dt_s, samples=samples, names=names, input_name=inp,
                                    kinds=(LIF, MaxPool2d))
        _counts_in_input_shape(activity, graph, inp)
    return graph, names, inp, activity


def chip_energy(model, input_shape: Sequence[int], data, target, *, dt_s: float = 1e-3, samples: int | None = 64,
                float_activity=None, delays: bool = False, **options) -> dict:
    """Energy and latency per inference on a digital ``target`` twice, on the same samples: at the float model's
    activity (what :func:`estimate_model` prices) and at the activity of the model's integer version on that chip
    (:mod:`neurosim.hardware.fixed_point`: its spikes, which a reset to zero, a dropped leak or several spikes per
    step change).

    ``delays``: the chip with its one-step delay per layer (:func:`neurosim.hardware.fixed_point.to_chip`).
    ``float_activity``: the float model's activity when already measured on the same samples (an
    :func:`estimate_model` report's ``activity``); measured here otherwise. ``**options``: passed to
    :func:`hardware_models.estimate` as the estimate's (``chips``: the chips the model may take).

    Returns ``{"target", "samples", "fits", "fit_text", "float_activity", "chip_activity",
    "energy_ratio_chip_float"}``, each activity ``{"energy_j", "latency_s", "synops"}`` per inference (and ``"note"``
    where the target's figures do not depend on activity); ``"fits"`` is whether the model fits on the target as the
    estimate maps it, a boolean as in ``estimate.json`` (:attr:`hardware_models.Estimate.fits`), and ``"fit_text"``
    the same in the words of the estimate table (:attr:`hardware_models.Estimate.fit_text`: ``"yes"``,
    ``"yes (2 chips)"``, ``"no (3 chips)"``, ``"no (a core limit)"``): the integer model runs either way, and the
    figures of a target it does not fit are those of a chip it does not run on as mapped (as in the estimate
    table).

    Raises:
        ValueError: the target has no arithmetic, or the chip cannot run the model (named).
    """
    from hardware_models import Spec, analyze, estimate, load_spec

    from neurosim.export.nir import _to_neurosim
    from neurosim.hardware.fixed_point import chip_activity, to_chip
    from neurosim.hardware.fixed_point.parts import ChipNeuron

    spec = target if isinstance(target, Spec) else load_spec(target)
    model = _to_neurosim(model)
    chip = to_chip(model, spec, delays=delays)
    blind = spec.kind == "digital" and not any(spec.term(t) == "modelled" for t in ("synaptic", "neuron_update",
                                                                                    "routing"))
    graph, names, inp, float_act = _graph_and_activity(model, input_shape, data, dt_s=dt_s, samples=samples,
                                                       measure=float_activity is None)
    float_act = float_activity if float_activity is not None else float_act
    node_of = {}
    for part in chip.net:
        key = getattr(part, "record_as", None)
        if key is not None:
            node = names.get(key, names.get(f"{key}.lif"))
            if node is None:
                raise ValueError(f"{key}: no node of the model's NIR graph records this layer's activity")
            node_of[key] = node
        elif isinstance(part, ChipNeuron) and not part.spiking and part.name in names:
            node_of[part.name] = names[part.name]  # an LI read-out: its updated neurons (no spikes)
    # a chip whose published figures do not depend on activity (Speck: resting power only) costs the same either way
    chip_act = float_act if blind else chip_activity(chip, data, node_of, dt_s=dt_s, samples=samples, input_name=inp)
    facts = analyze(graph)
    out = {"target": spec.name, "samples": int(chip_act.samples)}
    if blind:
        out["note"] = (f"{spec.name} publishes no energy per event: its estimate does not depend on the activity, "
                       "so the chip's own spikes do not change it")
    _counts_in_input_shape(chip_act, graph, inp)
    for key, act in (("float_activity", float_act), ("chip_activity", chip_act)):
        e = estimate(facts, act, spec, **placed_for(spec, float_act, options))  # one placement: the float model's
        out[key] = {"energy_j": e.total_energy_j, "latency_s": e.latency_per_inference_s, "synops": e.synops}
        out.setdefault("fits", e.fits)  # (the float activity's: the table's; the mapping is the graph's)
        out.setdefault("fit_text", e.fit_text)
    f = out["float_activity"]["energy_j"]
    out["energy_ratio_chip_float"] = out["chip_activity"]["energy_j"] / f if f else None
    return out


def placed_for(spec, activity, options: dict) -> dict:
    """``options`` with ``placed_for=activity`` for a digital ``spec``: a study that estimates one network at many
    activities (per sample, per exit step, the chip's own spikes) keeps the placement chosen for ``activity``, as a
    chip placed once would (:func:`hardware_models.digital.estimate_digital`: a tie between placement orders goes to
    the shorter latency at the activity it is placed for). Other kinds of target take no such option."""
    return {**options, "placed_for": activity} if spec.kind == "digital" else options


def joules(j: float, digits: int = 3) -> str:
    """An energy with a readable unit and ``digits`` significant digits: ``joules(1.46e-4)`` → ``'146 µJ'``,
    ``joules(0.13)`` → ``'130 mJ'``, ``joules(1.6952e-4, 4)`` → ``'169.5 µJ'`` (rounded before the unit is chosen:
    ``joules(9.996e-4)`` → ``'1 mJ'``, not ``'1e+03 µJ'``)."""
    return _with_prefix(j, "J", digits)


def seconds(s: float | None, digits: int = 3) -> str:
    """A time with a readable unit: ``seconds(0.0123)`` → ``'12.3 ms'``, ``seconds(9.45)`` → ``'9.45 s'``; ``'-'``
    for None (a target without a latency model)."""
    return _with_prefix(s, "s", digits)


def _with_prefix(x: float | None, unit: str, digits: int) -> str:
    """The estimate table's formatter (:func:`hardware_models.results._eng`, f to no prefix), ``digits`` checked."""
    from hardware_models.results import _eng

    if isinstance(digits, bool) or not isinstance(digits, numbers.Integral) or digits < 1:
        raise ValueError(f"digits must be a whole number >= 1 (significant digits), got {digits!r}")
    return _eng(x, unit, int(digits))


def fits_not(r: dict) -> str | None:
    """``"no (3 chips)"`` where :func:`chip_energy`'s result (or a report holding ``"fits"`` and ``"fit_text"``, a
    ``fixed_point_<target>.json``) says the model does not fit on its target; None where it fits (or where that is
    not known). A report written before ``"fits"`` became a boolean holds the words in ``"fits"``: read as well."""
    fits = r.get("fits")
    if isinstance(fits, str):  # (fixed_point_<target>.json before fit_text: "fits": "no (3 chips)")
        return fits if fits.startswith("no") else None
    return (r.get("fit_text") or "no") if fits is False else None


def format_chip_energy(r: dict) -> str:
    """One line of :func:`chip_energy`'s result; where the model does not fit on the target, it says so."""
    f, c = r["float_activity"], r["chip_activity"]
    no = fits_not(r)
    unfit = (f"; the model does not fit on {r['target']} ({no}): the figures of a chip it does not run on as mapped"
             if no else "")
    if "note" in r:
        return f"  energy per inference {joules(f['energy_j'])}: {r['note']}{unfit}"
    return (f"  energy per inference at the chip's own spikes {joules(c['energy_j'])}, at the float model's "
            f"{joules(f['energy_j'])} ({r['energy_ratio_chip_float']:.2f}x; {r['samples']} samples); synaptic "
            f"operations {c['synops']:.3g} against {f['synops']:.3g}{unfit}")


def _counts_in_input_shape(activity, graph, inp: str | None) -> None:
    """The input's event counts in the shape of the graph's Input node: a model that takes frames flattened
    (an mlp with ``input_shape = [2312]`` for 2×34×34 frames) is given the frames, which count in their own shape."""
    import numpy as np

    counts = activity.spike_counts.get(inp) if inp is not None and activity.spike_counts else None
    shape = getattr(graph.nodes[inp], "input_type", {}).get("input") if counts is not None else None
    if shape is not None and np.size(counts) == int(np.prod(shape)) and np.shape(counts) != tuple(shape):
        activity.spike_counts[inp] = np.asarray(counts).reshape(tuple(int(d) for d in shape))


def _input_node(graph) -> str:
    import nir

    inputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Input)]
    if len(inputs) != 1:
        raise ValueError(f"the NIR graph needs exactly one Input node, found {inputs}")
    return inputs[0]


def _module_node_names(model, graph) -> dict[str, str]:
    """Map the model's spiking, LI readout and max-pooling module names to their NIR nodes (max pools: the
    ``SumPool2d`` nodes tagged ``MaxPool2d``), in order."""
    import nir
    from hardware_models.graph import flatten_graph

    from neurosim.activity import _cuba_parts
    from neurosim.export.nir import META_KEY
    from neurosim.nn import LI, LIF, MaxPool2d

    def is_maxpool(node) -> bool:
        return isinstance(node, nir.SumPool2d) and (getattr(node, "metadata", None) or {}).get(
            META_KEY, {}).get("layer") == "MaxPool2d"

    # a recurrent layer is a subgraph: its neuron is node 'layer.lif' once inlined, as the hardware models read it,
    # and module 'layer.lif' in the model (the RLIF's LIF, which the profile records once per step)
    graph = flatten_graph(graph)
    # a CubaLIF 'k' is node 'k', recorded under that name through its LIF 'k.lif'; its current 'k.syn' is no LI layer
    cuba_lifs, cuba_syns = _cuba_parts(model)
    out: dict[str, str] = {}
    order = _topological(graph)
    for kind, what, is_node in ((LIF, "spiking", lambda n: isinstance(n, (nir.LIF, nir.IF, nir.CubaLIF))),
                                (LI, "LI readout", lambda n: isinstance(n, (nir.LI, nir.I))),
                                (MaxPool2d, "max-pooling", is_maxpool)):
        modules = [cuba_lifs.get(name, name) for name, m in model.named_modules()
                   if name and isinstance(m, kind) and name not in cuba_syns]
        if all(m in graph.nodes and is_node(graph.nodes[m]) for m in modules):
            out.update({m: m for m in modules})
            continue
        nodes = sorted((k for k, n in graph.nodes.items() if is_node(n)), key=order.index)
        if len(nodes) != len(modules):
            raise ValueError(f"the model has {len(modules)} {what} layers but its NIR graph {len(nodes)}")
        out.update(zip(modules, nodes))
    return out


def _topological(graph) -> list[str]:
    """The nodes in the order signals reach them; on a cycle (a recurrent loop) the node it is entered at comes
    first (the first waiting node that an ordered node feeds), then the rest of the loop."""
    succ: dict[str, list[str]] = {k: [] for k in graph.nodes}
    indeg = {k: 0 for k in graph.nodes}
    for a, b in graph.edges:
        succ[a].append(b)
        indeg[b] += 1
    ready = [k for k, d in indeg.items() if d == 0]
    order: list[str] = []
    done: set[str] = set()
    while len(order) < len(indeg):
        if not ready:  # every waiting node is on a cycle: enter it where the ordered part feeds it
            fed = [b for a in order for b in succ[a] if b not in done]
            ready.append(fed[0] if fed else next(k for k in graph.nodes if k not in done))
        k = ready.pop(0)
        if k in done:
            continue
        order.append(k)
        done.add(k)
        for b in succ[k]:
            indeg[b] -= 1
            if indeg[b] == 0 and b not in done:
                ready.append(b)
    return order


def estimate_checkpoint(path: str | Path, targets: Sequence[str] | None = None, *, samples: int | None = 64,
                        out_dir: str | Path | None = None, progress: bool = False, step_ms: float | None = None,
                        loaded=None, overwrite: bool = False, **options) -> EstimateReport:
    """Estimate the model of a neurosim checkpoint, with activity measured on its dataset's test split.

    Only the test split is loaded, and only its first ``samples`` (None: all of them) are converted to float, 16 at
    a time.

    ``step_ms`` is the time one step takes on a chip that runs in real time (``timing = "realtime"``, e.g. Speck:
    its latency and static energy scale with it; fixed-tick chips keep their tick); None takes the model's
    ``neuron.dt_ms``. For event frames made by binning a recording, the recording's duration / T is the
    real-time figure (e.g. ~31.5 ms for event digits at T = 10).

    ``loaded`` is what :func:`neurosim.runs.load_run` ``(path, test_only=True)`` returned, when the checkpoint has
    been read already: ``neurosim estimate`` reads it once for the estimate and its ``--nonideal``, ``--fixed-point``
    and ``--early-exit``. None reads it here.

    ``out_dir`` (default: ``estimate`` beside ``checkpoint.pt``; ``estimate-NAME`` beside another ``NAME.pt``) gets
    the files of :func:`estimate_model`. Without ``overwrite`` a folder that is no estimate's
    (:func:`is_estimate_folder`) and holds a file named as the estimate writes one (``estimate.txt``,
    ``activity.json``, ``model.nir``, ...) is refused with a :class:`ForeignFilesError`, before the checkpoint is
    read, as ``neurosim estimate --out`` refuses it without ``--overwrite``; an earlier estimate's files are replaced
    either way."""
    if samples is not None:  # None: every test sample (as estimate_model's None)
        if isinstance(samples, bool) or not isinstance(samples, numbers.Integral) or samples < 1:
            raise ValueError(f"samples must be a whole number >= 1 (test samples the activity is measured on) or "
                             f"None (all), got {samples!r}")
        samples = int(samples)
    model, cfg, data, out_dir, dt_s = _open_checkpoint(path, step_ms, loaded, progress, out_dir,
                                                       lambda out: check_estimate_folder(out, overwrite=overwrite))
    return estimate_model(model, cfg.model.input_shape, _first_samples(data.test, samples), targets,
                          dt_s=dt_s, samples=samples, out_dir=out_dir, overwrite=overwrite, **options)


def _open_checkpoint(path, step_ms: float | None, loaded, progress: bool, out_dir, check=None):
    """``(model, cfg, data, out_dir, dt_s)`` of a checkpoint (``loaded``: as already read, or None to read its test
    split here) for :func:`estimate_checkpoint` and the early-exit and per-sample studies: ``out_dir`` defaults to
    the checkpoint's estimate folder, and a step lasts ``step_ms`` (None: the model's ``neuron.dt_ms``).
    ``check(out_dir)`` refuses the output folder, the default one too, before the checkpoint is read."""
    from neurosim.runs import load_run
    from neurosim.training.checkpoint import CheckpointError, beside_checkpoint

    if step_ms is not None and not (math.isfinite(step_ms) and step_ms > 0):
        raise ValueError(f"step_ms must be a positive number of milliseconds, got {step_ms!r}")
    if check is not None:
        try:
            out = beside_checkpoint(path, "estimate") if out_dir is None else out_dir
        except CheckpointError:  # (a path that is no checkpoint: load_run says so)
            out = None
        if out is not None:
            check(out)
    if loaded is None:
        loaded = load_run(path, progress=progress, test_only=True)  # the training frames go unused
    model, cfg, data = loaded
    out_dir = beside_checkpoint(path, "estimate") if out_dir is None else out_dir
    return model, cfg, data, out_dir, (cfg.neuron.dt_ms if step_ms is None else step_ms) * 1e-3


def _write_study(out_dir: str | Path, stem: str, text: str, figure, data: dict, overwrite: bool = False) -> dict:
    """``STEM.txt``, ``STEM.png`` (``figure``) and ``STEM.json`` (last) in ``out_dir``, each written atomically: the
    files of a study beside an estimate (early exit, per-sample cost); returns name -> path. Files of these names
    that the study did not write are kept unless ``overwrite`` (:func:`check_study_folder`). The mark
    ``STEM.incomplete`` names them while they are written (:func:`_marked_while_writing`): a study stopped before
    its JSON is rerun without ``overwrite``."""
    from neurosim.viz import save_figure

    check_study_folder(out_dir, stem, overwrite=overwrite)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = [f"{stem}.{ext}" for ext in ("txt", "png", "json")]
    with _marked_while_writing(out, stem, names, f"neurosim's {stem.replace('_', '-')} study"):
        atomic_write_text(out / f"{stem}.txt", text + "\n")
        save_figure(figure, out / f"{stem}.png")
        atomic_write_text(out / f"{stem}.json", json.dumps(data, indent=1))
    return {f"{stem}.{ext}": out / f"{stem}.{ext}" for ext in ("json", "txt", "png")}


def _first_samples(loader, samples: int | None) -> list:
    """The first ``samples`` of a test :class:`~neurosim.data.FrameLoader` as one ``(x_seq [T, n, ...], y)`` batch,
    a view in the frames' own dtype: the profile converts a few samples at a time (its ``batch_size``) to the model's
    dtype, so only those are ever float (the loader's batches are whole float32 test batches)."""
    n = None if samples is None else int(samples)
    return [(loader.frames[:n].transpose(0, 1), loader.labels[:n])]


def estimate_files(nir_path: str | Path, activity_path: str | Path, targets: Sequence[str] | None = None, *,
                   out_dir: str | Path | None = None, step_ms: float | None = None, overwrite: bool = False,
                   **options) -> EstimateReport:
    """Estimate a NIR graph written by any library, with an ``activity.json`` measured by that library.

    ``step_ms`` replaces the activity's ``dt_s`` (the time per step on chips that run in real time; see
    :func:`estimate_checkpoint`); None keeps it.

    A graph that nir's own type check refuses is read without it (:func:`neurosim.export.read_nir` with
    ``type_check=False``), and :func:`hardware_models.analyze`'s checks decide: it reads, e.g., the NIR paper's
    Rockpool file, whose Output is typed ``[1, 1, 1]`` behind a 1-neuron LIF. The estimates' notes then say so.

    ``out_dir`` and ``overwrite``: as :func:`estimate_model`'s (files there that no estimate wrote are kept, and
    the estimate refused, unless ``overwrite``).

    Raises:
        FileNotFoundError: a file is missing.
        ValueError: naming the file, when it is not a NIR graph or the hardware models cannot read it (a
            :class:`hardware_models.GraphError`, with nir's complaint too when its type check refused the graph);
            or when ``out_dir`` is the folder of the two files and names them as the estimate writes its own
            (``model.nir``, ``activity.json``), which would replace them (even with ``overwrite``); a
            :class:`ForeignFilesError` where it holds other files of the estimate's names that no estimate wrote.
    """
    from hardware_models import ActivityProfile, GraphError, analyze

    from neurosim.export import read_nir

    for p in (nir_path, activity_path):
        if not Path(p).is_file():
            raise FileNotFoundError(f"{p}: no such file")
    if out_dir is not None:
        check_inputs_outside(out_dir, nir_path, activity_path)
        check_estimate_folder(out_dir, overwrite=overwrite)
    refused = None
    try:
        graph = read_nir(nir_path)  # names the file when it is not a readable NIR graph
    except ValueError as e:
        refused = e
        try:
            graph = read_nir(nir_path, type_check=False)
        except ValueError:
            raise refused from None  # not a NIR graph at all: nir's reason
    activity = ActivityProfile.from_json(activity_path)
    if step_ms is not None:
        if not (math.isfinite(step_ms) and step_ms > 0):
            raise ValueError(f"step_ms must be a positive number of milliseconds, got {step_ms!r}")
        activity = replace(activity, dt_s=step_ms * 1e-3)
    try:
        facts = analyze(graph)
    except GraphError as e:
        also = f" (and {refused})" if refused is not None else ""
        raise GraphError(f"{nir_path}: {e}{also}") from None
    if refused is not None:  # nir's complaint, less read_nir's advice, which was just taken; first in every estimate
        why = str(refused).removesuffix("; read_nir(path, type_check=False) reads it as stored")
        facts.notes = (f"{why}: read without it, the hardware models' own shape checks accept the graph",
                       *facts.notes)
    return _run(graph, activity, targets, out_dir, options, facts, from_model=False, overwrite=overwrite)


def check_inputs_outside(out_dir: str | Path, nir_path: str | Path, activity_path: str | Path) -> None:
    """Raise a ``ValueError`` where ``out_dir`` holds :func:`estimate_files`' own input under the names the estimate
    writes its copies by (``model.nir``, ``activity.json``), which it would replace: the activity at ``step_ms``,
    the graph as neurosim writes it. (``neurosim estimate --nir`` asks it before anything is read; an input file
    that is missing is left to the reading.)"""
    mine = [(flag, name) for flag, name, given in (("--nir", "model.nir", nir_path),
                                                    ("--activity", "activity.json", activity_path))
            if (Path(out_dir) / name).is_file() and Path(given).is_file()
            and os.path.samefile(Path(out_dir) / name, given)]
    if mine:
        raise ValueError(f"the output folder (--out) {out_dir} holds the estimate's input ("
                         + ", ".join(f"{flag} {Path(out_dir) / name}" for flag, name in mine)
                         + "), which it would replace with the copy it writes there (the activity at --step-ms, "
                         "the graph as neurosim writes it): choose another output folder, or none (neurosim "
                         "estimate: MODEL-estimate beside the NIR file)")


# ---------------------------------------------------------------------------------------------- outputs
#: what :func:`write_outputs` writes, in that order: ``estimate.json`` last, so that it is there only beside a
#: complete set
OUTPUT_FILES = ("activity.json", "model.nir", "energy.png", "layers.png", "cores.png", "estimate.txt",
                "estimate.json")


#: what ``estimate --nonideal``, ``--fixed-point``, ``--early-exit`` and ``--per-sample`` write beside an estimate
#: (glob patterns)
EXTRA_OUTPUTS = ("nonideal_*.json", "accuracy_vs_*.png", "fixed_point_*.json", "early_exit.json", "early_exit.txt",
                 "early_exit.png", "per_sample.json", "per_sample.txt", "per_sample.png", "nonideal_*.incomplete",
                 "early_exit.incomplete", "per_sample.incomplete")


#: written first by :func:`write_outputs` and removed once its ``estimate.json`` is written: a folder holding it is
#: one an estimate stopped writing in part-way (Ctrl-C, a full disk), whose files are neurosim's to replace
#: (:func:`_marked_while_writing`; a study's is ``STEM.incomplete``, naming its files)
INCOMPLETE_MARK = "estimate.incomplete"
_INCOMPLETE_FORMAT = "neurosim-estimate-incomplete"


def _mark_format(stem: str) -> str:
    """The ``format`` of the mark ``STEM.incomplete`` (:data:`_INCOMPLETE_FORMAT` for the estimate's)."""
    return f"neurosim-{stem}-incomplete"


@contextmanager
def _marked_while_writing(out: Path, stem: str, files: Sequence[str] | None, what: str):
    """Write the mark ``STEM.incomplete`` in ``out`` before the block and remove it after: ``what`` (e.g.
    ``neurosim estimate``) writes its files there, ``STEM.json`` last. Where the block stops (Ctrl-C, a full disk)
    the mark stays, and says that the files named as ``what`` writes them are neurosim's: all of the estimate's
    (``files`` None: :func:`is_estimate_folder`), a study's ``files`` (:func:`_marked_files`), which a rerun then
    replaces without ``overwrite``. A mark that cannot be removed after a complete write is only a file more (the
    JSON written last says the set is complete)."""
    mark = out / f"{stem}.incomplete"
    body = {"format": _mark_format(stem),
            "note": f"{what} stopped writing here before its {stem}.json: the files named as its outputs are "
                    "part of its output; run it again to complete them"}
    if files is not None:
        body["files"] = list(files)
    atomic_write_text(mark, json.dumps(body, indent=1) + "\n")
    yield mark
    try:
        mark.unlink()
    except OSError:
        pass


def _marked_files(folder: Path, stem: str) -> set[str]:
    """The files a study stopped writing in ``folder`` names in its mark ``STEM.incomplete``
    (:func:`_marked_while_writing`), with the mark; empty where there is no such mark of neurosim's."""
    mark = _json_object(folder / f"{stem}.incomplete")
    if mark is None or mark.get("format") != _mark_format(stem) or not isinstance(mark.get("files"), list):
        return set()
    return {f"{stem}.incomplete", *(n for n in mark["files"] if isinstance(n, str) and Path(n).name == n)}


def _json_object(path: Path) -> dict | None:
    """``path``'s JSON object, or None where there is no such file or it is not JSON or not an object. An
    ``OSError`` that says nothing of whose the file is (its permissions) is raised."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, ValueError):  # (UnicodeDecodeError: a ValueError)
        return None
    return data if isinstance(data, dict) else None


def is_estimate_folder(folder: str | Path) -> bool:
    """Whether neurosim's estimate wrote in ``folder``: it holds an ``estimate.json`` as :func:`write_outputs` writes
    it (an object whose ``activity`` and ``targets`` are objects), or the mark :data:`INCOMPLETE_MARK` of an
    estimate that stopped part-way. The files there named as an estimate and its studies write them
    (:func:`estimate_output_names`) are then neurosim's: an estimate in that folder replaces them without
    ``--overwrite``, and :func:`neurosim.runs.remove_outputs_of` removes them with the model they describe."""
    folder = Path(folder)
    est = _json_object(folder / "estimate.json")
    if est is not None and isinstance(est.get("activity"), dict) and isinstance(est.get("targets"), dict):
        return True
    mark = _json_object(folder / INCOMPLETE_MARK)
    return mark is not None and mark.get("format") == _INCOMPLETE_FORMAT


def estimate_output_names(folder: str | Path) -> list[str]:
    """The files in ``folder`` (sorted names) named as an estimate and its ``--nonideal``, ``--fixed-point``,
    ``--early-exit`` and ``--per-sample`` studies write them: :data:`OUTPUT_FILES`, :data:`EXTRA_OUTPUTS` and
    :data:`INCOMPLETE_MARK`. Beside an estimate's ``estimate.json`` each is taken for its own (replaced, or removed
    by the next estimate there), so a folder that is no estimate's (:func:`is_estimate_folder`) must not hold any
    of them that the user made (``neurosim estimate`` refuses it without ``--overwrite``)."""
    folder = Path(folder)
    names = {*OUTPUT_FILES, INCOMPLETE_MARK, *(p.name for pattern in EXTRA_OUTPUTS for p in folder.glob(pattern))}
    return sorted(name for name in names if (folder / name).is_file())


class ForeignFilesError(OutputPathError):
    """An output folder that is no estimate's holds files named as an estimate writes them, which it would replace
    (:func:`check_estimate_folder`); a ``ValueError``."""


def check_estimate_folder(out_dir: str | Path, *, overwrite: bool = False, flag: str = "out_dir",
                          how: str = "pass overwrite=True") -> None:
    """Refuse, before anything is written, an output folder that is no estimate's (:func:`is_estimate_folder`: no
    ``estimate.json`` of neurosim's, no mark of an estimate stopped part-way) and holds files named as an estimate
    and its studies write them (:func:`estimate_output_names`: notes of one's own in ``estimate.txt``, an
    ``activity.json`` or ``model.nir`` of another tool's): an estimate would replace them, or take them for its own
    beside its ``estimate.json``. A folder that does not exist yet, an earlier estimate's (a rerun) and one an
    estimate stopped in part-way pass, and so does any with ``overwrite``; so do the files an early-exit,
    per-sample, fixed-point or non-ideal study wrote there before any estimate (their JSON as the study writes it,
    and the files that JSON, or the mark of a study stopped before its JSON, says it wrote: :func:`_studies_files`;
    e.g. the default ``<run>/estimate`` of ``early_exit_checkpoint``), which the estimate keeps. ``flag`` and
    ``how`` name the setting and the way to replace the files in the message (``neurosim estimate``: ``--out``,
    ``pass --overwrite``).

    Raises:
        ForeignFilesError: naming the files.
        OutputPathError: the folder cannot be read (whose files it holds cannot be told).
    """
    out = Path(out_dir)
    if overwrite:
        return

    def theirs() -> list[str]:
        ours = _studies_files(out)  # (a study run there before any estimate: neurosim's, kept beside it)
        return [name for name in estimate_output_names(out) if name not in ours]

    _refuse_foreign(out, theirs, flag, how, "which neurosim estimate did not write (no estimate.json of its own is "
                    "there) and would replace or take for its own")


def _refuse_foreign(out: Path, theirs: Callable[[], list[str]], flag: str, how: str, whose: str) -> None:
    """What :func:`check_estimate_folder` and :func:`check_study_folder` share: nothing is refused in a folder not
    there yet or an estimate's (:func:`is_estimate_folder`); elsewhere the files ``theirs()`` names (the user's) are
    a :class:`ForeignFilesError` (``whose``: who did not write them, and what would happen to them), and a folder
    that cannot be read an :class:`OutputPathError` (its permissions: whose its files are cannot be told, and
    nothing could be written there)."""
    try:
        if not out.is_dir() or is_estimate_folder(out):
            return
        found = theirs()
    except OSError as e:
        raise OutputPathError(f"{flag}: {out} cannot be read ({e.strerror or e}), so whose files it holds cannot be "
                              "told; choose another output folder") from None
    if found:
        one = len(found) == 1
        raise ForeignFilesError(f"{flag}: {out} holds {', '.join(found)}, {whose}; choose another output folder, or "
                                f"{how} to replace {'it' if one else 'them'}")


#: what a study's JSON holds (:func:`check_study_folder` knows its own file by them)
_STUDY_KEYS = {"early_exit": ("time_steps", "metric", "policies"),
               "per_sample": ("time_steps", "summary", "per_sample"),
               "fixed_point": ("target", "arithmetic", "float_acc", "chip_acc", "layers"),
               "nonideal": ("target", "ideal_acc", "operating_point", "sweeps")}


def _is_study_json(path: Path, stem: str) -> bool:
    """Whether ``path`` is a JSON file as the ``stem`` study writes it (an object with its keys)."""
    return path.name.endswith(".json") and all(k in (_json_object(path) or {}) for k in _STUDY_KEYS[stem])


def _own_files(folder: Path, name: str, stem: str) -> set[str]:
    """The files in ``folder`` that the ``stem`` study's JSON ``name`` says it wrote: none where ``name`` is no JSON
    as the study writes it; else ``name``, and the files its ``files`` names (the non-ideal report's: its figures
    are written for the sweeps asked for, so another ``accuracy_vs_*`` figure there is not its own), or, for a
    study whose JSON names none, ``STEM.txt`` and ``STEM.png`` (the early-exit and per-sample studies write all
    three every time)."""
    data = _json_object(folder / name) if name.endswith(".json") else None
    if data is None or not all(k in data for k in _STUDY_KEYS[stem]):
        return set()
    files = data.get("files")
    if isinstance(files, dict):
        files = list(files.values())
    if isinstance(files, list):
        return {name, *(Path(f).name for f in files if isinstance(f, str))}
    if stem in ("early_exit", "per_sample"):
        return {f"{stem}.{ext}" for ext in ("json", "txt", "png")}
    return {name}


def _studies_files(folder: Path) -> set[str]:
    """The files in ``folder`` that the early-exit, per-sample, fixed-point and non-ideal studies wrote there (their
    JSON as they write it, with the files it says they wrote: :func:`_own_files`), and those a study stopped
    writing names in its mark (:func:`_marked_files`): neurosim's, which :func:`check_estimate_folder` does not take
    for a user's where a study ran in the folder before any estimate."""
    ours: set[str] = set()
    for stem in ("early_exit", "per_sample"):
        ours |= _own_files(folder, f"{stem}.json", stem) | _marked_files(folder, stem)
    for stem in ("fixed_point", "nonideal"):
        for p in folder.glob(f"{stem}_*.json"):
            ours |= _own_files(folder, p.name, stem)
    for p in folder.glob("nonideal_*.incomplete"):
        ours |= _marked_files(folder, p.stem)
    return ours


def check_study_folder(out_dir: str | Path, stem: str, *, overwrite: bool = False, names: Sequence[str] = ()) -> None:
    """Refuse, before a study's work, an output folder that is no estimate's (:func:`is_estimate_folder`) and holds
    files named as the study writes them (``STEM.json``, ``.txt``, ``.png``; ``names`` instead where given, e.g.
    ``fixed_point_loihi.json``, or ``nonideal_rram_neurosim.json`` with its ``accuracy_vs_*`` figures) that the
    study did not write: a file of these names is the study's where the folder is an estimate's, where it is a
    JSON of the study's form (a rerun into the same folder), where that JSON says the study wrote it
    (:func:`_own_files`: a figure its ``files`` names; the early-exit and per-sample studies' ``.txt`` and ``.png``
    beside their JSON), or where the mark of the study stopped before its JSON names it (``STEM.incomplete``, the
    JSON's stem: :func:`_marked_while_writing`). ``stem``: ``"early_exit"``, ``"per_sample"``, ``"fixed_point"`` or
    ``"nonideal"``. Nothing is refused with ``overwrite``.

    Raises:
        ForeignFilesError: naming the files.
        OutputPathError: the folder cannot be read.
    """
    out = Path(out_dir)
    if overwrite:
        return
    names = list(names) or [f"{stem}.{ext}" for ext in ("json", "txt", "png")]
    # the mark STEM.incomplete of each STEM.json (fixed_point_reports writes one whole JSON per target: no mark)
    marks = [n.removesuffix(".json") for n in names if n.endswith(".json")] if stem != "fixed_point" else []

    def theirs() -> list[str]:
        present = sorted(n for n in {*names, *(f"{m}.incomplete" for m in marks)} if (out / n).is_file())
        ours = set().union(*(_own_files(out, n, stem) for n in present), *(_marked_files(out, m) for m in marks))
        return [n for n in present if n not in ours]

    _refuse_foreign(out, theirs, "out_dir", "pass overwrite=True", f"which neurosim's {stem.replace('_', '-')} study "
                    "did not write (no estimate.json of neurosim's is there) and would replace")


def write_outputs(report: EstimateReport, out_dir: str | Path, *, overwrite: bool = False) -> dict:
    """Write ``activity.json``, ``model.nir``, the PNG figures, ``estimate.txt`` and ``estimate.json`` (last).

    A folder that is no estimate's and holds files of these names (or of its studies') that no estimate wrote is
    refused unless ``overwrite`` (:func:`check_estimate_folder`).

    An earlier estimate's files in ``out_dir`` are removed first, so a write that fails (a full disk) leaves no mix
    of two estimates: only this one's files written so far, without ``estimate.json``; the ``OSError`` then says so.
    So are, beside an earlier ``estimate.json``, the files its ``--nonideal``, ``--fixed-point`` and ``--early-exit``
    wrote (:data:`EXTRA_OUTPUTS`): they
    described that estimate's model, which may since have trained on; the run that asks for them again writes them
    anew after this.

    :data:`INCOMPLETE_MARK` is written before anything else and removed after ``estimate.json``: a folder an estimate
    stopped in part-way is still known as an estimate's (:func:`is_estimate_folder`), and the next estimate there
    replaces its files without ``--overwrite``.
    """
    from neurosim.export import write_nir
    from neurosim.viz import save_figure

    check_estimate_folder(out_dir, overwrite=overwrite)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    earlier = [name for name in OUTPUT_FILES if (out / name).exists()]
    if is_estimate_folder(out):  # (only beside an estimate: a folder of the user's own keeps its files)
        earlier += sorted({p.name for pattern in EXTRA_OUTPUTS for p in out.glob(pattern) if p.is_file()})
    writers = {
        "activity.json": lambda path: report.activity.to_json(path),
        "model.nir": lambda path: write_nir(report.graph, path),
        "energy.png": lambda path: save_figure(plot_energy(report.estimates.values()), path),
        "layers.png": lambda path: save_figure(plot_layers(report), path),
        "cores.png": lambda path: save_figure(plot_cores(report.estimates.values()), path),
        "estimate.txt": lambda path: atomic_write_text(path, report.table() + "\n"),
        "estimate.json": lambda path: atomic_write_text(path, json.dumps(report.to_dict(), indent=1)),
    }
    files = {}
    try:
        with _marked_while_writing(out, "estimate", None, "neurosim estimate"):  # (INCOMPLETE_MARK)
            for name in earlier:
                (out / name).unlink()
            for name in OUTPUT_FILES:
                writers[name](out / name)
                files[name] = out / name
    except OSError as e:
        kept = f"; it holds only {', '.join(files)} of this one" if files else ""
        gone = "the earlier estimate there was removed first" if earlier else "nothing else is there"
        raise OSError(e.errno, f"{e.strerror or e} (writing the estimate in {out}: {gone}{kept}, without "
                      "estimate.json; run the estimate again once it can be written)", e.filename) from e
    report.files = {name: files[name] for name in ("estimate.json", "estimate.txt", "activity.json", "model.nir",
                                                  "energy.png", "layers.png", "cores.png")}
    return report.files


#: :func:`plot_energy` draws energies on a linear axis while the largest total is at most this many times the
#: smallest (the smallest bar then still a tenth of the axis), and each target's shares of its own total beyond
LINEAR_SPAN = 10.0


def _fit_label(e) -> str:
    """A target's name, with ``(no fit: 3 chips)`` / ``(no fit: a core limit)`` beneath where the model does not fit
    on it, ``(3 chips)`` where it fits on several (``--chips``: their static power is in its energy) (figures of
    energy or latency)."""
    fits = getattr(e, "fits", None)
    if fits is None or (fits and e.fit_text == "yes"):
        return e.target
    return f"{e.target}\n({e.fit_text.replace('no (', 'no fit: ').replace('yes (', '')}"


def plot_energy(estimates: Iterable):
    """Stacked bars: energy per inference of every target, split into its components, on a linear axis (each
    segment as tall as its part of the bar; on a log axis the upper segments of a stack are drawn far shorter than
    they are). While the totals lie within a factor :data:`LINEAR_SPAN` of each other the bars are the energies
    (in J with the prefix of the largest); else each bar is its target's components as shares of its own total
    (100 % stacked), which keeps targets that differ by orders of magnitude readable. Either way each bar has its
    total energy written above it."""
    from hardware_models.results import _eng  # the one energy formatter (format_estimates uses it too)

    from neurosim.viz.plots import _figure

    from matplotlib import colormaps

    ests = list(estimates)
    parts = sorted({k for e in ests for k in e.energy_j})
    totals = np.array([float(e.total_energy_j) for e in ests])
    positive = totals[totals > 0]
    shares = bool(len(positive)) and positive.max() > LINEAR_SPAN * positive.min()
    if shares:
        scale = np.where(totals > 0, totals, 1.0) / 100  # each bar in % of its own total
        ylabel = "share of the target's energy per inference (%)"
    else:
        top = float(positive.max()) if len(positive) else 1.0
        scale, prefix = next(((s, p) for s, p in ((1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p"))
                              if top >= s), (1e-15, "f"))
        ylabel = f"energy per inference ({prefix}J)"
    fig = _figure(max(6.0, 1.1 * len(ests) + 4), 4.2)
    ax = fig.subplots()
    bottom = np.zeros(len(ests))
    # one colour per component (matplotlib's 10-colour cycle gave two components of one chip the same colour)
    colours = colormaps["tab10" if len(parts) <= 10 else "tab20"]
    for i, part in enumerate(parts):
        vals = np.array([e.energy_j.get(part, 0.0) for e in ests]) / scale
        ax.bar(range(len(ests)), vals, bottom=bottom, label=part, color=colours(i % colours.N))
        bottom += vals
    for j, e in enumerate(ests):
        ax.text(j, bottom[j], _eng(e.total_energy_j, "J"), ha="center", va="bottom", fontsize=7)
    # a target the model does not fit on says so under its name: its energy is that of a chip it does not run on
    ax.set_xticks(range(len(ests)), [_fit_label(e) for e in ests], rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 112 if shares else max(float(bottom.max(initial=0.0)), 1e-30) * 1.12)  # room for the totals
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title("energy per inference by component" + (" (labels: total energy)" if shares else ""))
    return fig


def plot_layers(report: EstimateReport):
    """Per spiking layer: synaptic operations received and mean firing rate (Hz) from the measured activity."""
    from neurosim.viz.plots import _figure

    any_est = next(iter(report.estimates.values()))
    layers = list(any_est.per_layer)
    synops = [any_est.per_layer[k].get("synops_in", 0.0) for k in layers]
    rates = [any_est.per_layer[k].get("firing_rate_hz", 0.0) for k in layers]
    fig = _figure(9, 3.4)
    ax_s, ax_r = fig.subplots(1, 2)
    ax_s.bar(range(len(layers)), synops, color="C0")
    ax_s.set_xticks(range(len(layers)), layers, rotation=30, ha="right")
    ax_s.set_ylabel("synaptic ops / inference")
    ax_r.bar(range(len(layers)), rates, color="C1")
    ax_r.set_xticks(range(len(layers)), layers, rotation=30, ha="right")
    ax_r.set_ylabel("mean firing rate (Hz)")
    fig.suptitle(f"per-layer activity ({report.activity.samples} samples, T = {report.activity.time_steps})")
    return fig


def plot_cores(estimates: Iterable):
    """Cores used per target (chips needed and fit shown on the bars)."""
    from neurosim.viz.plots import _figure

    ests = [e for e in estimates if e.mapping is not None]
    fig = _figure(max(6.0, 1.1 * len(ests) + 2), 3.6)
    ax = fig.subplots()
    vals = [e.mapping.cores_used for e in ests]
    ax.bar(range(len(ests)), vals, color=["C2" if e.fits else "C3" for e in ests])
    for j, e in enumerate(ests):  # "fits", "fits (6 chips)" (--chips), "no fit (6 chips)", "no fit (a core limit)"
        label = e.fit_text.replace("yes", "fits", 1) if e.fits else e.fit_text.replace("no (", "no fit (")
        ax.text(j, vals[j], label, ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(ests)), [e.target for e in ests], rotation=30, ha="right")
    ax.set_ylabel("cores used")
    if vals and max(vals) > 100 * max(1, min(vals)):
        ax.set_yscale("log")
    several = any(e.fits and e.fit_text != "yes" for e in ests)  # on the chips --chips allows: named on its bar
    ax.set_title("mapping: cores used (green: fits on " + ("the chips named, else one)" if several else "one chip)"))
    return fig

"""What a chip's integer model does with the test data: :func:`evaluate_fixed_point` compares its accuracy with
the float model's and with the float model holding the chip's weights (:func:`chip_weights_model`),
:func:`chip_activity` records its own spikes for the energy models, :func:`fixed_point_reports` runs both for
several targets and :func:`format_fixed_point` prints a report.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from neurosim.hardware.fixed_point.convert import to_chip
from neurosim.hardware.fixed_point.parts import ChipModel, ChipNeuron, formats_key

#: how the note of a report whose model does not fit on its target starts (:func:`fixed_point_reports`)
NO_FIT = "the model does not fit on"

#: the report's note on the energy estimates, which price the float model's spikes
ENERGY_NOTE = ("the energy estimates price the float model's activity; the chip's own spikes (spikes per neuron and "
               "step in the table) are priced by neurosim.estimation.chip_energy (neurosim estimate --fixed-point "
               "prints both)")


def chip_weights_model(model, chip: ChipModel) -> nn.Module:
    """A copy of ``model`` (float dynamics) with the chip's weights and biases, converted back to the model's units:
    what the weights alone cost. BatchNorm is folded into the weights before it (replaced by an identity), a
    recurrent bias moved into the synapse before it. Layers the chip could not keep (a model ending in a weight
    layer gets an LI on the chip) keep the float model's structure."""
    from torch.nn.utils import parametrize

    from neurosim.export.nir import _to_neurosim
    from neurosim.hardware.nonideal import _set_module, _unparametrize

    copy_ = copy.deepcopy(_to_neurosim(model))
    modules = dict(copy_.named_modules())
    with torch.no_grad():
        for back in chip._back:
            syn = modules[back["synapse"]]
            w = (back["w"] / back["gain"]).to(syn.weight.dtype)
            syn.weight.copy_(w.reshape(syn.weight.shape))
            if back["b"] is not None:
                b = back["b"].to(syn.weight.dtype)
                if syn.bias is None:
                    syn.bias = nn.Parameter(b.clone())
                else:
                    syn.bias.copy_(b)
            elif syn.bias is not None:
                syn.bias.zero_()
            if back["bn"] is not None:
                _set_module(copy_, back["bn"], nn.Identity())
            neuron = modules.get(back["neuron"])
            if "w_rec" in back and neuron is not None:
                rec = neuron.recurrent
                if parametrize.is_parametrized(rec, "weight"):  # (a shared V): each neuron's own weight now
                    _unparametrize(rec)  # (remove_parametrizations would delete the model's own layer's weight)
                rec.weight.copy_(back["w_rec"].to(rec.weight.dtype).reshape(rec.weight.shape))
                if rec.bias is not None:
                    rec.bias.zero_()  # (moved into the synapse's bias above)
    return copy_


@torch.no_grad()
def chip_activity(chip: ChipModel, data, node_names: dict[str, str], *, dt_s: float, samples: int | None = 64,
                  input_name: str | None = "input"):
    """The chip's own activity as a :class:`hardware_models.ActivityProfile`: each spiking layer's spikes (Speck:
    spike counts), its neurons updated per step (a nonzero input, bias included, or a nonzero membrane entering
    the step, as :func:`neurosim.activity.activity_profile` counts them) and the events leaving each max pool,
    recorded under ``node_names[model module name]`` (the NIR graph's node names); the input frames as the input
    events. A non-spiking read-out (an LI layer) named in ``node_names`` has its updated neurons counted (its
    compartments are updated on the chip too), and no spikes.

    ``samples``: the first this many samples of ``data`` (``(x_seq, y)`` batches or one ``[T, B, ...]`` input).

    A :class:`neurosim.data.FrameLoader`'s batches are taken compact (uint8 event counts) and each block of
    samples runs a chunk of steps at a time (:func:`neurosim.nn.time_chunk`'s, each layer's state carried), its
    spikes summed as they come: only a chunk's float64 copy and each node's totals per step and per neuron are held,
    not all ``T`` steps of every layer. The totals are whole numbers, exact in float64, so the profile is the one
    :meth:`hardware_models.ActivityProfile.from_spike_trains` makes of the whole trains, bit for bit."""
    import dataclasses

    import numpy as np
    from hardware_models import ActivityError, ActivityProfile

    from neurosim.hardware.nonideal import EVAL_BLOCK, _blocks
    from neurosim.nn.layers import time_chunk
    from neurosim.training.trainer import _compact_batches

    batches = [(data, torch.zeros(data.shape[1]))] if isinstance(data, torch.Tensor) else _compact_batches(data)
    if input_name is not None and input_name in node_names.values():
        raise ActivityError(f"input_name {input_name!r} is also a node of node_names; give the input once")
    per_step: dict[str, np.ndarray] = {}  # node -> Σ over samples of its spikes per step, [T]
    per_neuron: dict[str, torch.Tensor] = {}  # node -> Σ over steps and samples of each neuron's spikes
    # neurons updated per step: where a neuron fires at most once per step (Speck's fire several times: the energy
    # models' check that a neuron that fires was updated counts spikes, and Speck publishes no update energy)
    neurons = {m.name: m for m in chip.net if isinstance(m, ChipNeuron) and chip.fmt.arithmetic == "loihi"
               and (getattr(m, "record_as", None) if m.spiking else m.name) in node_names}
    updated: dict[str, torch.Tensor] = {}  # layer -> Σ over samples of its neurons updated per step, [T]
    inp = input_name if input_name is not None else object()  # (no input node: the input's totals per step only)
    T, n = None, 0

    def add(node, x, start):
        """A chunk's ``x`` ``[steps, B, ...]`` into ``node``'s totals (steps from ``start``)."""
        sums = x.reshape(x.shape[0], x.shape[1], -1).sum(2).sum(1).numpy()
        if node not in per_step:
            per_step[node], per_neuron[node] = np.zeros(T), torch.zeros(x.shape[2:], dtype=torch.float64)
        per_step[node][start:start + x.shape[0]] += sums
        per_neuron[node] += x.sum((0, 1))

    for m in neurons.values():
        m.record_updates, m.updates = True, []
    try:
        for x_seq, _ in _blocks(batches, EVAL_BLOCK, samples):
            if T is None:
                T = x_seq.shape[0]
            elif x_seq.shape[0] != T:
                raise ValueError(f"chip_activity: the samples have {T} and {x_seq.shape[0]} time steps; give "
                                 "one sequence length")
            steps, states = time_chunk(chip, x_seq), {}
            for start in range(0, T, steps):
                x = chip.check_input(x_seq[start:start + steps].cpu())
                add(inp, x.abs(), start)  # (an OFF event, −1, is an event too)
                for i, part in enumerate(chip.net):
                    if _stateful(part):
                        x, states[i] = part(x, states.get(i))
                    else:
                        x = part(x)
                    key = getattr(part, "record_as", None)
                    if key is not None and key in node_names:
                        add(node_names[key], x, start)
            n += x_seq.shape[1]
            for name, m in neurons.items():
                if m.updates:
                    block = torch.cat(m.updates)
                    updated[name] = block if name not in updated else updated[name] + block
                m.updates = []
    finally:
        for m in neurons.values():
            m.record_updates, m.updates = False, []
    if n == 0:
        raise ValueError("chip_activity: no samples (empty data)")
    events = per_step.pop(inp) / n
    input_counts = per_neuron.pop(inp)
    spikes = {node: total / n for node, total in per_step.items()}
    counts = {node: (total / n).numpy() for node, total in per_neuron.items()}
    if input_name is not None:  # (from_spike_trains's order: the input node last)
        spikes[input_name], counts[input_name] = events, (input_counts / n).numpy()
    profile = ActivityProfile(time_steps=T, dt_s=dt_s, samples=n, spikes_per_step=spikes, spike_counts=counts,
                              input_events_per_step=events)
    updates = {node_names[name]: (updated[name] / n).numpy() for name in neurons if name in updated}
    return dataclasses.replace(profile, updates_per_step=updates)


def _stateful(part: nn.Module) -> bool:
    return bool(getattr(part, "stateful", False))


# ------------------------------------------------------------------------------------------------ evaluation
@torch.no_grad()
def evaluate_fixed_point(model, loader, target, *, loss: str | None = None, max_samples: int | None = None,
                         maxpool: str | None = None, delays: bool = False) -> dict:
    """Test accuracy of ``model`` in float and on ``target``'s integer arithmetic, over the same samples.

    Returns a JSON-ready dict: ``target``, ``arithmetic``, ``float_acc`` and ``chip_acc`` (percent),
    ``chip_weights_acc`` (the float model with the chip's weights and biases only, :func:`chip_weights_model`: the
    difference to ``chip_acc`` is what the chip's neurons cost — reset, leak, rounding, saturation),
    ``agreement`` (percent of samples both classify alike), ``samples``, ``layers`` (each layer's scale, weight
    exponent and resolution, weights rounded to zero or clipped, integer threshold, decays, and on the test data
    spikes per neuron and step on the chip and in the float model (whose activity the energy estimates use), and
    the saturated or wrapped register updates), and ``notes``.
    """
    from neurosim.export.nir import _to_neurosim
    from neurosim.hardware.nonideal import EVAL_BLOCK, _block_outputs, _blocks
    from neurosim.training.losses import predict
    from neurosim.training.trainer import _compact_batches

    chip = to_chip(model, target, maxpool=maxpool, delays=delays)
    float_model = _to_neurosim(model)  # (an snnTorch model runs as its neurosim equivalent: the same spikes)
    p = next(iter(float_model.parameters()), None)
    device = p.device if p is not None else torch.device("cpu")
    dtype = p.dtype if p is not None and p.dtype.is_floating_point else torch.float32
    weights_only = chip_weights_model(model, chip).to(device).eval()  # (copied before the counting hooks go on)
    was = float_model.training
    float_spikes: dict[str, list[float]] = {}
    modules = dict(float_model.named_modules())

    def counter(name):
        def hook(_module, _inputs, output):
            s_seq = output[0] if isinstance(output, tuple) else output
            got = float_spikes.setdefault(name, [0.0, 0])
            got[0] += float(s_seq.detach().sum())
            got[1] += s_seq.numel()
        return hook

    handles = [modules[r["layer"]].register_forward_hook(counter(r["layer"])) for r in chip.layers
               if r["neuron"] != "LI" and r["layer"] in modules]
    float_model.eval()
    right_f = right_c = right_w = agree = total = 0
    try:
        # (a FrameLoader's counts compact, each model run a chunk of steps at a time: the outputs of one call)
        for x_seq, y in _blocks(_compact_batches(loader), EVAL_BLOCK, max_samples):
            x_dev = x_seq.to(device)
            out_f = _block_outputs(float_model, x_dev, dtype)
            out_w = _block_outputs(weights_only, x_dev, dtype)
            out_c = _block_outputs(chip, x_seq.cpu(), None, chunked=True)  # (the chip takes the counts themselves)
            pf, pw, pc = predict(out_f, loss).cpu(), predict(out_w, loss).cpu(), predict(out_c, loss).cpu()
            y = y.cpu()
            right_f += int((pf == y).sum())
            right_w += int((pw == y).sum())
            right_c += int((pc == y).sum())
            agree += int((pf == pc).sum())
            total += int(y.shape[0])
    finally:
        float_model.train(was)
        for h in handles:
            h.remove()
    if total == 0:
        raise ValueError("evaluate_fixed_point: the loader yielded no samples")
    counts = chip.counts()
    layers = []
    for row in chip.layers:
        c = counts[row["layer"]]
        per = max(c["neuron_steps"], 1)
        f = float_spikes.get(row["layer"])
        layers.append({**row, "spikes_per_neuron_step": c["spikes"] / per,
                       "float_spikes_per_neuron_step": None if f is None else f[0] / max(f[1], 1),
                       "saturated_updates": c["saturated"], "saturated_at_top": c["at_top"],
                       "saturated_at_floor": c["at_floor"], "wrapped_updates": c["wrapped"]})
    notes = list(chip.notes)
    if any(r["float_spikes_per_neuron_step"] is not None for r in layers):
        notes.append(ENERGY_NOTE)
    return {"target": chip.fmt.target, "arithmetic": chip.fmt.arithmetic, "samples": total,
            "float_acc": 100.0 * right_f / total, "chip_acc": 100.0 * right_c / total,
            "chip_weights_acc": 100.0 * right_w / total,
            "agreement": 100.0 * agree / total, "layers": layers, "notes": notes, "advice": list(chip.advice)}


def _held(row: dict) -> str:
    wrapped = f", {row['wrapped_updates']} wrapped" if row["wrapped_updates"] else ""
    return f"{row['saturated_at_top']}/{row['saturated_at_floor']}{wrapped}"


def fixed_point_reports(model, test, specs, *, loss: str | None, input_shape, dt_s: float, samples: int | None = 64,
                        max_samples: int | None = None, out_dir=None, float_activity=None, extra: dict | None = None,
                        on_report=None, delays: bool = False, estimate_options: dict | None = None,
                        overwrite: bool = False) -> tuple[dict, dict]:
    """:func:`evaluate_fixed_point` and the energy at the chip's own spikes
    (:func:`neurosim.estimation.chip_energy`, on ``samples`` samples) for each of ``specs``; what ``neurosim
    estimate --fixed-point`` and the demo's report run.

    A target with the same arithmetic and number formats as one run before (:func:`formats_key`: ``loihi_sanafe``
    after ``loihi``) takes its accuracy (``same_as``) and gets its own energy. Each report says whether the model
    fits on its target as the estimate maps it (``fits``, a boolean as in ``estimate.json``, and ``fit_text``, the
    estimate table's words: ``"yes"``, ``"no (3 chips)"``, ``"no (a core limit)"``); where it does not, it is
    simulated all the same, as the estimate prices it all the same, and a first note says so (printed with the
    report). A target that cannot run the model
    (a ``ValueError``: Speck and a recurrent layer) is left out, its reason kept. With ``out_dir`` each report is
    written to ``fixed_point_<target>.json`` there (atomically), with ``extra``'s keys added (e.g. the checkpoint).
    ``on_report(name, report)`` is called as each is done; ``float_activity``: the float model's activity
    measured on the same samples and graph (an estimate's), not measured again; ``estimate_options``: the estimate's
    options (``{"chips": 8}``), so that energy and fit are those of its table. A folder ``out_dir`` that is no
    estimate's and holds a ``fixed_point_<target>.json`` that no fixed-point study wrote is refused before any work
    unless ``overwrite`` (:func:`neurosim.estimation.check_study_folder`).

    Returns:
        ``({target: report}, {target: why it could not run})``.
    """
    import json
    from pathlib import Path

    from neurosim._io import atomic_write_text
    from neurosim.estimation import check_study_folder, chip_energy

    if out_dir is not None:
        check_study_folder(out_dir, "fixed_point", overwrite=overwrite,
                           names=[f"fixed_point_{spec.name}.json" for spec in specs])
    reports, refused, keys = {}, {}, {}
    for spec in specs:
        key = formats_key(spec)
        twin = next((name for name, k in keys.items() if k == key), None)
        try:
            if twin is not None:  # the same integer model: the same accuracy (its own fit, below)
                r = {k: v for k, v in reports[twin].items() if k not in ("energy", "fits", "fit_text")}
                r.update(target=spec.name, same_as=twin, notes=[n for n in r["notes"] if not n.startswith(NO_FIT)])
            else:
                r = evaluate_fixed_point(model, test, spec, loss=loss, max_samples=max_samples, delays=delays)
            r["energy"] = chip_energy(model, input_shape, test, spec, dt_s=dt_s, samples=samples,
                                      float_activity=float_activity, delays=delays, **(estimate_options or {}))
        except ValueError as e:
            refused[spec.name] = str(e)
            continue
        # as estimate.json says it (Estimate.fits), and in the estimate table's words (Estimate.fit_text)
        r["fits"], r["fit_text"] = r["energy"]["fits"], r["energy"]["fit_text"]
        if r["fits"] is False:
            r["notes"] = [f"{NO_FIT} {spec.name} as the estimate maps it ({r['fit_text']}; the estimate names what "
                          "exceeds which limit): its integer arithmetic is simulated as if it ran there, and its "
                          "energy is that of a chip it does not run on as mapped", *r["notes"]]
        keys[spec.name] = key
        r.update(extra or {})
        if out_dir is not None:
            out = Path(out_dir)
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out / f"fixed_point_{spec.name}.json", json.dumps(r, indent=1) + "\n")
        reports[spec.name] = r
        if on_report is not None:
            on_report(spec.name, r)
    return reports, refused


def _rates(row: dict) -> str:
    if row["neuron"] == "LI":
        return "read-out"
    f = row.get("float_spikes_per_neuron_step")
    return f"{row['spikes_per_neuron_step']:.4f}" + ("" if f is None else f" ({f:.4f})")


def format_fixed_point(report: dict) -> str:
    """A printable summary of :func:`evaluate_fixed_point`'s report (its first line says where the model does not fit
    on the target, for a report of :func:`fixed_point_reports`)."""
    from neurosim.estimation import fits_not

    no = fits_not(report)  # (a report of fixed_point_reports says whether the model fits on the target)
    lines = [f"{report['target']} ({report['arithmetic']} arithmetic{', does not fit: ' + no if no else ''}), "
             f"{report['samples']} test samples: "
             f"float {report['float_acc']:.2f} %, chip {report['chip_acc']:.2f} % "
             f"({report['chip_acc'] - report['float_acc']:+.2f}), same class for {report['agreement']:.1f} %; "
             f"float with the chip's weights {report['chip_weights_acc']:.2f} %"]
    lines.append(f"  {'layer':<14}{'exp':>5}{'weight step':>13}{'to zero':>9}{'clipped':>9}{'threshold':>11}"
                 f"{'spikes/neuron/step chip (float)':>33}{'held at top/floor':>19}")
    for r in report["layers"]:
        lines.append(f"  {r['layer']:<14}{r['weight_exp']:>5}{r['weight_lsb']:>13.3g}{100 * r['weights_zero']:>8.1f}%"
                     f"{r['weights_clipped']:>9}{r['threshold_int']:>11}{_rates(r):>33}"
                     f"{_held(r):>19}")
    lines += [f"  note: {n}" for n in report["notes"]]
    if report.get("advice"):
        lines.append(f"  to train a model with this chip's neurons: neurosim train ... {' '.join(report['advice'])}")
    return "\n".join(lines)

"""Conventional digital baselines at 45 nm (Horowitz 2014): the same network as a dense ANN, and the two
usual back-of-envelope SNN figures, so the architecture-aware chip estimates can be read against them.

* **Dense ANN**, one pass per inference::

      E = MACs · E_MAC + pool adds · E_ADD + SRAM reads/writes + DRAM weight streaming

  MACs are every unrolled connection (zeros included: a dense engine does not skip them); a one-to-one
  recurrence (:mod:`hardware_models.graph`) is ``N`` multiplies, an element-wise product. A recurrent
  projection is counted once like every other (one pass, no time steps), so for a recurrent network, whose
  feedback only exists across steps, this figure is a lower bound; the notes say so and give its MACs. Every MAC reads
  its weight and its input activation from SRAM (no register reuse — an upper bound) and every output is
  written once; a 64-bit access carries 64/bits values. The SRAM energy per access is the Horowitz tier
  (8 KB, 32 KB, 1 MB) that fits the layer's weights (resp. activations); weights larger than the biggest
  tier are streamed once per inference from DRAM.

* **Naive SNN** (the formula many SNN papers use)::

      E = E_MAC · MACs(first layer) · T + E_AC · synops(other layers)

* **SNN with memory terms** (after Lemaire et al. 2022)::

      E = MACs(first)·T · (E_MAC + E_RAM(W₁)) + synops(other) · (E_AC + E_RAM(W_layer))
          + neuron updates · (E_AC + 2 · E_RAM(V_layer)),   E_RAM(bits) = a · bits + b

  a weight is read per synaptic event, the membrane read and written per neuron update; the memory size
  in bits sets the access energy.
"""

from __future__ import annotations

import math

import numpy as np

from .activity import ActivityProfile
from .graph import GraphFacts
from .results import Estimate
from .specs import Spec

__all__ = ["dense_ann_energy", "naive_snn_energy", "snn_with_memory_energy", "baselines", "estimate_conventional"]

PRECISIONS = {"fp32": 32, "int8": 8}


def _check(spec: Spec, precision: str) -> int:
    if spec.kind != "conventional":
        raise ValueError(f"spec {spec.name!r} is {spec.kind}, not a conventional baseline")
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {list(PRECISIONS)}")
    return PRECISIONS[precision]


def _sram_access(spec: Spec, size_bits: float) -> float:
    """Energy of one 64-bit SRAM access for a memory holding ``size_bits`` (smallest tier that fits)."""
    for tier in ("small", "medium", "large"):
        if size_bits <= spec.si(f"capacity.sram_{tier}_size"):
            return spec.si(f"energy.sram_read_64b_{tier}")
    return spec.si("energy.sram_read_64b_large")


def _ram(spec: Spec, size_bits: float) -> float:
    return spec.si("energy.ram_access_per_bit") * size_bits + spec.si("energy.ram_access_base")


def dense_ann_energy(facts: GraphFacts, spec: Spec, precision: str = "fp32") -> dict[str, float]:
    """Joules for one dense forward pass: ``{"mac", "pool_add", "sram", "dram"}``."""
    bits = _check(spec, precision)
    per_word = 64 / bits
    e_mac, e_add = spec.si(f"energy.mac_{precision}"), spec.si(f"energy.add_{precision}")
    out = {"mac": 0.0, "pool_add": 0.0, "sram": 0.0, "dram": 0.0}
    used = {p.synapse for p in facts.projections}  # (not an all-zero recurrence, which analyze leaves out)
    for name, f in facts.nodes.items():
        if f.role == "synapse" and name in used:
            macs = f.synapses_dense
            w_bits = f.weight_params * bits
            in_bits, out_bits = math.prod(f.input_shape) * bits, math.prod(f.output_shape) * bits
            out["mac"] += macs * e_mac
            out["sram"] += macs / per_word * (_sram_access(spec, w_bits) + _sram_access(spec, in_bits))
            out["sram"] += math.prod(f.output_shape) / per_word * _sram_access(spec, out_bits)
            if w_bits > spec.si("capacity.sram_large_size"):
                out["dram"] += math.ceil(w_bits / 64) * spec.si("energy.dram_access_64b")
        elif f.role == "pool":
            g = facts.geometry(name)
            out["pool_add"] += float(g.forward(np.ones(g.in_shape)).sum()) * e_add
    return out


def _split_synops(facts: GraphFacts, activity: ActivityProfile):
    syn = facts.synops(activity)
    first_macs, rest = 0.0, []
    seen = set()
    for proj in facts.projections:
        if not facts.populations[proj.source].on_chip:
            if proj.synapse is not None and proj.synapse not in seen:
                first_macs += facts.nodes[proj.synapse].synapses_dense
                seen.add(proj.synapse)
        else:
            rest.append((proj, syn.per_projection[proj.label]))
    return first_macs, rest, syn


def naive_snn_energy(facts: GraphFacts, activity: ActivityProfile, spec: Spec, precision: str = "fp32") -> dict[str, float]:
    """``{"first_layer_mac", "synops_ac"}``: E_MAC · MACs(first layer) · T + E_AC · synops(other layers)."""
    _check(spec, precision)
    first_macs, rest, _ = _split_synops(facts, activity)
    return {
        "first_layer_mac": first_macs * activity.time_steps * spec.si(f"energy.mac_{precision}"),
        "synops_ac": sum(s for _, s in rest) * spec.si(f"energy.add_{precision}"),
    }


def snn_with_memory_energy(facts: GraphFacts, activity: ActivityProfile, spec: Spec,
                           precision: str = "fp32") -> dict[str, float]:
    """``{"first_layer", "synops", "neuron_updates"}`` with weight and membrane memory accesses added."""
    bits = _check(spec, precision)
    e_mac, e_add = spec.si(f"energy.mac_{precision}"), spec.si(f"energy.add_{precision}")
    T = activity.time_steps
    first_macs, rest, _ = _split_synops(facts, activity)
    first_w = sum(facts.nodes[p.synapse].weight_params for p in facts.projections
                  if not facts.populations[p.source].on_chip and p.synapse is not None) * bits
    out = {"first_layer": first_macs * T * (e_mac + _ram(spec, first_w)), "synops": 0.0, "neuron_updates": 0.0}
    for proj, s in rest:
        w_bits = (facts.nodes[proj.synapse].weight_params if proj.synapse else facts.populations[proj.target].neurons) * bits
        out["synops"] += s * (e_add + _ram(spec, w_bits))
    for name, pop in facts.populations.items():
        if pop.on_chip:
            out["neuron_updates"] += pop.neurons * T * (e_add + 2 * _ram(spec, pop.neurons * bits))
    return out


def baselines(facts: GraphFacts, activity: ActivityProfile, spec: Spec, precision: str = "fp32") -> dict[str, float]:
    """Totals in joules: ``dense_ann``, ``naive_snn``, ``snn_with_memory`` (keys suffixed with the spec name)."""
    tag = spec.name
    return {
        f"dense_ann_{tag}": float(sum(dense_ann_energy(facts, spec, precision).values())),
        f"naive_snn_{tag}": float(sum(naive_snn_energy(facts, activity, spec, precision).values())),
        f"snn_with_memory_{tag}": float(sum(snn_with_memory_energy(facts, activity, spec, precision).values())),
    }


def _on_loop(facts: GraphFacts, proj, looped: list[str]) -> bool:
    """True when ``proj`` closes a cycle: its target reaches its source through on-chip projections (or they are
    one population)."""
    if proj.source == proj.target:
        return True
    stack, seen = [proj.target], set()
    while stack:
        n = stack.pop()
        if n == proj.source:
            return True
        if n not in seen:
            seen.add(n)
            stack.extend(q.target for q in facts.projections_from(n) if q.target in looped)
    return False


def estimate_conventional(facts: GraphFacts, activity: ActivityProfile, spec: Spec, *, precision: str = "fp32") -> Estimate:
    """The dense-ANN energy of the network as the estimate, with the SNN formulas alongside."""
    e = dense_ann_energy(facts, spec, precision)
    syn = facts.synops(activity)
    T = activity.time_steps
    per_layer = {}
    for n, p in facts.populations.items():
        macs = sum(facts.nodes[q.synapse].synapses_dense for q in facts.projections_to(n) if q.synapse)
        spikes = float(facts.source_series(activity, n).sum())
        per_layer[n] = {
            "neurons": p.neurons, "on_chip": p.on_chip, "macs_in": float(macs),
            "synops_in": syn.per_target.get(n, 0.0), "spikes": spikes,
            "firing_rate_hz": spikes / (p.neurons * T * activity.dt_s) if p.neurons else 0.0,
        }
    notes = list(spec.notes) + [
        f"{precision} arithmetic; activation functions (ReLU) are not costed",
        "the ANN makes one pass per inference; the SNN formulas in baselines_j cover all T steps",
        "latency is not modelled for the conventional baseline",
    ]
    looped = facts.recurrent_populations()
    if looped:
        rec = [q for q in facts.projections if q.synapse and q.source in looped and q.target in looped
               and _on_loop(facts, q, looped)]
        macs = sum(facts.nodes[q.synapse].synapses_dense for q in rec)
        notes.append(
            f"recurrent layer(s) {', '.join(map(repr, looped))}: the dense ANN's single pass counts their "
            f"feedback ({macs:,} MACs) once, though a recurrent network needs it at every one of its {T} steps "
            f"({macs * T:,} MACs); the dense-ANN figure is a lower bound here, the SNN formulas in baselines_j "
            "count every step")
    return Estimate(
        target=spec.name, kind=spec.kind, energy_j=e, total_energy_j=float(sum(e.values())),
        latency_per_step_s=None, latency_per_step_max_s=None, latency_per_inference_s=None,
        synops=syn.total, time_steps=T, mapping=None, per_layer=per_layer,
        baselines_j=baselines(facts, activity, spec, precision), notes=tuple(notes), sources=spec.citations(),
    )

"""hardware_models — energy, latency and mapping estimates for SNNs on neuromorphic and RRAM hardware.

Standalone: depends on numpy and nir only, never on torch or neurosim. Inputs are a NIR graph and an
``ActivityProfile``; a target is a spec file in ``hardware_models/specs/`` (see :mod:`.specs`).

Example:
    >>> import numpy as np, nir
    >>> from hardware_models import ActivityProfile, estimate, list_targets
    >>> g = nir.NIRGraph.from_list(
    ...     nir.Linear(weight=np.ones((4, 8))),
    ...     nir.LIF(tau=np.ones(4), r=np.ones(4), v_leak=np.zeros(4), v_threshold=np.ones(4)))
    >>> act = ActivityProfile(time_steps=2, dt_s=1e-3, samples=1,
    ...                       spikes_per_step={"lif": np.array([1.0, 2.0])},
    ...                       input_events_per_step=np.array([3.0, 1.0]))
    >>> est = estimate(g, act, "loihi")
    >>> est.synops  # 4 input events x fan-out 4
    16.0
    >>> est.mapping.cores_used, est.mapping.fits
    (1, True)
    >>> "truenorth" in list_targets()
    True
"""

from __future__ import annotations

from dataclasses import replace as _replace
from typing import Callable

import nir

from .activity import ActivityError, ActivityProfile
from .graph import GraphError, GraphFacts, analyze, flatten_graph
from .results import Estimate, LayerMapping, MappingResult, Violation, format_estimates
from .specs import Spec, SpecError, list_targets, load_spec

__all__ = [
    "ActivityError", "ActivityProfile", "Estimate", "GraphError", "GraphFacts", "LayerMapping", "MappingResult",
    "Spec", "SpecError", "Violation", "analyze", "estimate", "flatten_graph", "format_estimates", "list_targets",
    "load_spec",
    "register_estimator", "BASELINE_SPEC",
]

BASELINE_SPEC = "conventional_45nm"  # the spec every estimate is compared against (baselines_j)


def _digital(facts, activity, spec, **options):
    from .digital import estimate_digital

    return estimate_digital(facts, activity, spec, **options)


def _conventional(facts, activity, spec, **options):
    from .conventional import estimate_conventional

    return estimate_conventional(facts, activity, spec, **options)


_ESTIMATORS: dict[str, Callable[..., Estimate]] = {"digital": _digital, "conventional": _conventional}
_OPTIONS: dict[str, frozenset[str]] = {
    "digital": frozenset({"weight_bits", "chips", "placed_for", "placement_ties"}),
    "conventional": frozenset({"precision"}),
}


def register_estimator(kind: str, fn: Callable[..., Estimate], options: tuple[str, ...] = ()) -> None:
    """Make ``estimate`` handle specs of ``kind`` with ``fn(facts, activity, spec, **options) -> Estimate``.

    ``options`` names the keyword options ``fn`` accepts; others given to ``estimate`` are not passed on.
    """
    _ESTIMATORS[kind] = fn
    _OPTIONS[kind] = frozenset(options)


def estimate(graph: nir.NIRGraph | GraphFacts, activity: ActivityProfile, target: str | Spec, **options) -> Estimate:
    """Energy, latency and mapping of one inference of ``graph`` with ``activity`` on ``target``.

    Args:
        graph: the network (a ``nir.NIRGraph``, or the ``GraphFacts`` of :func:`analyze` to reuse the analysis
            across targets).
        activity: measured spiking activity of the same graph (node names must match).
        target: a shipped spec name (see :func:`list_targets`), a path to a spec file, or a loaded ``Spec``.
        **options: passed to the model: digital ``weight_bits`` (default 8), ``chips`` (default 1) and
            ``placed_for`` (the activity a tie between placement orders is broken at; default ``activity``),
            ``placement_ties`` ("latency", the default: the shortest latency first, then the least energy;
            "energy": the least energy first);
            conventional ``precision`` ("fp32" | "int8"); crossbar ``activity_blind``, ``weight_bits``,
            ``cell_bits``, ``tile_size``, ``columns_per_adc``, ``share_tiles`` (see
            :func:`hardware_models.crossbar.estimate_crossbar`). An option of another kind of target is ignored
            with a note (so one set of options can serve a loop over all targets); an unknown one is an error.

    Returns:
        An :class:`Estimate`; its ``baselines_j`` holds the conventional 45 nm figures for comparison.

    Raises:
        GraphError, SpecError, ActivityError: with a message naming the node, file/key or field at fault.
    """
    if not isinstance(activity, ActivityProfile):
        raise TypeError(f"activity must be a hardware_models.ActivityProfile, got {type(activity).__name__}")
    facts = graph if isinstance(graph, GraphFacts) else analyze(graph)
    spec = target if isinstance(target, Spec) else load_spec(target)
    if spec.kind not in _ESTIMATORS:
        raise SpecError(f"{spec.name}: kind {spec.kind!r} has no estimator yet; known kinds: {sorted(_ESTIMATORS)}")
    known = frozenset().union(*_OPTIONS.values())
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"unknown estimate option(s) {unknown}; options by target kind: "
                        f"{ {k: sorted(v) for k, v in _OPTIONS.items()} }")
    mine = {k: v for k, v in options.items() if k in _OPTIONS.get(spec.kind, ())}
    est = _ESTIMATORS[spec.kind](facts, activity, spec, **mine)
    if facts.notes:  # what the analysis assumed about the graph (an implicit Input node), first
        est = _replace(est, notes=tuple(facts.notes) + est.notes)
    skipped = sorted(set(options) - set(mine))
    if skipped:  # e.g. weight_bits in a loop over digital and conventional targets
        est = _replace(est, notes=est.notes + (f"option(s) {skipped} do not apply to {spec.kind} targets; ignored",))
    silent = [n for n in facts.input_names if n not in activity.spikes_per_step and facts.projections_from(n)]
    if silent and len(facts.input_names) == 1 and not activity.input_events_per_step.any():
        # an activity file without input events is more often an omission than a silent sensor: say so
        est = _replace(est, notes=est.notes + (
            f"the activity has no input events for Input node {silent[0]!r} (no spikes_per_step entry, "
            "input_events_per_step all zero): the synapses it feeds count no operations",))
    if spec.kind != "conventional" and not est.baselines_j:
        from .conventional import baselines

        try:
            base = baselines(facts, activity, load_spec(BASELINE_SPEC))
        except SpecError as exc:  # a broken or removed baseline spec must not block the chip estimate
            est = _replace(est, notes=est.notes + (f"no conventional baseline: {exc}",))
        else:
            est = _replace(est, baselines_j=base)
    return est

from . import crossbar as _crossbar  # noqa: E402,F401  (registers the "crossbar" spec kind and its estimator)

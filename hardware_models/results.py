"""Result types shared by the hardware models: mapping onto cores, and the estimate itself."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["Violation", "LayerMapping", "MappingResult", "Estimate", "format_estimates"]


def _plain(x: Any) -> Any:
    """Numpy scalars/arrays, tuples and dataclasses -> JSON-ready Python values (non-finite -> None)."""
    if hasattr(x, "to_dict"):
        return x.to_dict()
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return [_plain(v) for v in x.tolist()]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else None
    return x


@dataclass(frozen=True)
class Violation:
    """A chip limit that the network exceeds.

    Attributes:
        limit: the spec key (``fan_in_per_core``, ``cores_per_chip``, ``kernel_memory_per_core`` …).
        layer: the population concerned, or None for the whole network.
        value: what the network needs; ``allowed``: what the chip offers.
        message: one readable sentence.
    """

    limit: str
    layer: str | None
    value: float
    allowed: float
    message: str

    @property
    def excess(self) -> float:
        return self.value - self.allowed

    @property
    def ratio(self) -> float:
        return self.value / self.allowed if self.allowed else math.inf

    def to_dict(self) -> dict:
        return _plain({"limit": self.limit, "layer": self.layer, "value": self.value, "allowed": self.allowed,
                       "excess": self.excess, "ratio": self.ratio, "message": self.message})


@dataclass(frozen=True)
class LayerMapping:
    """How one neuron population is placed.

    Attributes:
        neurons: neurons of the population; ``slots``: neuron slots used (copies for fan-out included; on
            ``layer_per_core`` targets the neuron memory entries, each side of the feature map rounded up to a
            power of 2).
        cores: cores used; ``first_core``: index of its first core in placement order.
        neurons_per_core: neurons placed per core (the last core may hold fewer).
        input_slices: >1 when the fan-in was split into partial-sum compartments.
        limited_by: the constraint that set ``neurons_per_core``.
        max_synapses_per_core / max_axons_in_per_core / max_axons_out_per_core: the fullest core's load.
    """

    name: str
    neurons: int
    cores: int
    neurons_per_core: int
    first_core: int = 0
    slots: int = 0
    input_slices: int = 1
    limited_by: str = "neurons_per_core"
    max_synapses_per_core: float = 0.0
    max_axons_in_per_core: float = 0.0
    max_axons_out_per_core: float = 0.0

    def to_dict(self) -> dict:
        return _plain(dict(self.__dict__))


@dataclass(frozen=True)
class MappingResult:
    """Placement of a network on a chip: cores used, whether it fits, and what does not.

    ``tied_orders``: where several placement orders need the fewest cores (digital targets), each of them as
    ``{"order", "position_major", "latency_per_inference_s", "total_energy_j", "used"}`` in the order tried (the
    layers cut position-major, in words and as a list; the figures at the activity the tie was broken at, None where
    the order changes neither, so they were not costed; whether it is the one used); empty without a tie. The notes
    say how many tied and which was chosen, by what rule.
    """

    target: str
    cores_used: int
    cores_per_chip: int
    chips_needed: int | None  # None: no number of chips helps (a per-core limit is exceeded)
    fits: bool
    layers: Mapping[str, LayerMapping]
    violations: tuple[Violation, ...] = ()
    notes: tuple[str, ...] = ()
    tied_orders: tuple[Mapping[str, Any], ...] = ()

    def to_dict(self) -> dict:
        return _plain({
            "target": self.target, "cores_used": self.cores_used, "cores_per_chip": self.cores_per_chip,
            "chips_needed": self.chips_needed, "fits": self.fits, "layers": dict(self.layers),
            "violations": list(self.violations), "notes": list(self.notes), "tied_orders": list(self.tied_orders),
        })


@dataclass(frozen=True)
class Estimate:
    """Energy, latency and mapping of one network on one target, per inference (one sample).

    Attributes:
        energy_j: component -> joules per inference (e.g. synaptic, neuron_active, neuron_idle, routing, static).
        total_energy_j: sum of ``energy_j``.
        latency_per_step_s: mean time per step (None where the target has no notion of it).
        latency_per_step_max_s: slowest step.
        latency_per_inference_s: time for all T steps (plus any pipeline delay).
        synops: synaptic operations per inference.
        mapping: core placement (None for the conventional baseline).
        per_layer: population -> neurons, synapses_in, synops_in, spikes, firing_rate_hz, cores.
        baselines_j: the same network costed on conventional 45 nm logic (dense ANN, naive SNN formula,
            SNN with memory terms), for side-by-side comparison.
        notes: assumptions and warnings that apply to this estimate.
    """

    target: str
    kind: str
    energy_j: Mapping[str, float]
    total_energy_j: float
    latency_per_step_s: float | None
    latency_per_step_max_s: float | None
    latency_per_inference_s: float | None
    synops: float
    time_steps: int
    mapping: MappingResult | None = None
    per_layer: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    baselines_j: Mapping[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def fits(self) -> bool | None:
        return None if self.mapping is None else self.mapping.fits

    @property
    def fit_text(self) -> str:
        """Whether the network fits, in words: ``"yes"`` (on one chip), ``"yes (3 chips)"`` (on the several chips
        allowed), ``"no (3 chips)"`` (it would on that many), ``"no (a core limit)"`` (a layer exceeds what one core
        takes: no number of chips helps), or ``"-"`` (no mapping: the conventional baseline)."""
        if self.mapping is None:
            return "-"
        if self.mapping.fits:
            n = self.mapping.chips_needed
            return "yes" if not n or n <= 1 else f"yes ({n} chips)"
        return f"no ({self.mapping.chips_needed} chips)" if self.mapping.chips_needed else "no (a core limit)"

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (floats, lists, dicts; non-finite numbers become None)."""
        return _plain({
            "target": self.target, "kind": self.kind, "energy_j": dict(self.energy_j),
            "total_energy_j": self.total_energy_j, "latency_per_step_s": self.latency_per_step_s,
            "latency_per_step_max_s": self.latency_per_step_max_s,
            "latency_per_inference_s": self.latency_per_inference_s, "synops": self.synops,
            "time_steps": self.time_steps, "fits": self.fits,
            "mapping": self.mapping, "per_layer": {k: dict(v) for k, v in self.per_layer.items()},
            "baselines_j": dict(self.baselines_j), "notes": list(self.notes), "sources": dict(self.sources),
        })


def _eng(x: float | None, unit: str, digits: int = 3) -> str:
    """``x`` in ``unit`` with an SI prefix (f to none) and ``digits`` significant digits, rounded before the prefix
    is chosen (999.6 µJ is 1 mJ, not 1e+03 µJ), never in exponent notation within the prefixes (146 µJ at 1 digit
    is 100 µJ, 1234 J is 1230 J); ``-`` for None, NaN or infinity."""
    if x is None or not math.isfinite(x):
        return "-"
    if x == 0:
        return f"0 {unit}"
    x = float(f"{x:.{digits}g}")
    for scale, prefix in ((1, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p"), (1e-15, "f")):
        if abs(x) >= scale:
            v = float(f"{x / scale:.{digits}g}")  # (x / scale can be 146.00000000000003)
            whole = math.floor(math.log10(abs(v))) + 1  # digits before the point: %g shows them all
            return f"{v:.{max(digits, whole)}g} {prefix}{unit}"
    return f"{x:.{digits}g} {unit}"


def format_estimates(estimates: Sequence[Estimate]) -> str:
    """A plain-text table: one row per target with energy, its largest part, latency, cores and fit."""
    head = ("target", "energy/inference", "largest part", "latency/inference", "cores", "fits")
    rows = [head]
    for e in estimates:
        top = max(e.energy_j.items(), key=lambda kv: kv[1], default=("-", 0.0))
        share = f"{top[0]} {100 * top[1] / e.total_energy_j:.0f}%" if e.total_energy_j > 0 else "-"
        cores = "-" if e.mapping is None else str(e.mapping.cores_used)
        rows.append((e.target, _eng(e.total_energy_j, "J"), share, _eng(e.latency_per_inference_s, "s"), cores,
                     e.fit_text))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)

"""Target specs: one TOML file per chip in ``hardware_models/specs/``, every constant with its unit and source.

A constant is written ``key = { value = 23.6, unit = "pJ", source = "davies2018", note = "optional" }``
inside the section of its quantity (``[energy]``, ``[time]``, ``[power]``, ``[capacity]``); ``source``
names an entry of the file's ``[sources]`` table, which holds the full citation (paper, table). Values are
converted to SI on load (J, s, W; memory to bits; counts stay counts). Adding a chip means adding a file.

Digital specs also say, in ``[energy_terms]``, how each term of the digital model is obtained:
``"modelled"`` (from this file's constants), ``"not_published"`` (left out, and the estimate says so) or
``"included:<term>"`` (already inside another figure — e.g. TrueNorth's 26 pJ synaptic event is all-in,
so neuron updates, routing and static power are ``"included:synaptic"`` and never added on top).
A barrier time that depends on the tiles in use is a table: ``time.sync_table`` (one time per entry) with
``capacity.sync_table_tiles`` (the tile counts, increasing) and ``capacity.cores_per_tile``.

Every problem is reported as :class:`SpecError` naming the file and the key, e.g.
``loihi.toml: energy.synaptic_op: value -1 is negative``.

Example:
    >>> spec = load_spec("loihi")
    >>> spec.kind, spec.si("energy.synaptic_op")
    ('digital', 2.36e-11)
    >>> spec.constants["energy.synaptic_op"].citation.startswith("M. Davies")
    True
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 uses the tomli backport (declared in pyproject)
    import tomli as tomllib

__all__ = ["Constant", "Spec", "SpecError", "SPEC_DIR", "TERMS", "list_targets", "load_spec", "register_spec_kind",
           "spec_from_dict"]

SPEC_DIR = Path(__file__).resolve().parent / "specs"
SCHEMA_VERSION = 1

UNITS: dict[str, dict[str, float]] = {
    "energy": {"fJ": 1e-15, "pJ": 1e-12, "nJ": 1e-9, "uJ": 1e-6, "µJ": 1e-6, "mJ": 1e-3, "J": 1.0},
    "time": {"ps": 1e-12, "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0},
    "power": {"nW": 1e-9, "uW": 1e-6, "µW": 1e-6, "mW": 1e-3, "W": 1.0},
    "memory": {"bits": 1.0, "bytes": 8.0, "KiB": 8.0 * 1024, "MiB": 8.0 * 1024**2},
    "bits": {"bits": 1.0},
    "count": {"count": 1.0},
}
SI_NAMES = {"energy": "J", "time": "s", "power": "W", "memory": "bits", "bits": "bits", "count": "count"}

# How a digital chip computes (optional: without it the chip's arithmetic is not simulated), and the [precision]
# constants each arithmetic needs
ARITHMETICS = ("loihi", "dynapcnn", "spinnaker")
ARITHMETIC_NEEDS = {
    "loihi": ("weight_bits", "weight_exp_bits", "state_bits", "threshold_bits", "bias_bits", "bias_exp_bits",
              "decay_bits", "input_shift"),
    "dynapcnn": ("weight_bits", "state_bits", "threshold_bits", "bias_bits"),
    "spinnaker": ("weight_bits", "state_bits", "fraction_bits", "threshold_bits", "bias_bits", "decay_bits"),
}

# The widest [precision] constants the integer models (neurosim.hardware.fixed_point) can run: Loihi's and Speck's
# registers are float64 tensors, which hold every integer exactly only up to 2^53 (SpiNNaker's are int64 holding
# int32 bit patterns); an exponent width e gives scales 2^(±2^(e-1)), which must be float64 numbers (2^±1023).
PRECISION_MAX_BITS = 53
PRECISION_MAX_EXP_BITS = {"weight_exp_bits": 11, "bias_exp_bits": 10}  # signed: [-1024, 1023]; unsigned: [0, 1023]
PRECISION_WHY = "the integer models hold values in float64, whose integers are exact only up to 2^53"

# "bits" constants that may be 0 (every other one is a width, and 0 bits holds nothing; the models divide by them).
# [precision] constants are checked against the arithmetic that reads them (_check_digital).
ZERO_BITS_ALLOWED = {"capacity.synapse_overhead_bits"}  # a synapse may store nothing beside its weight

# Energy terms of the digital model, and the statuses a spec may give them.
TERMS = ("synaptic", "neuron_update", "routing", "static")
STATUSES = ("modelled", "not_published")

_DIGITAL = {
    "energy": {k: "energy" for k in (
        "synaptic_op", "neuron_update", "neuron_update_active", "neuron_update_idle", "neuron_access", "spike_out",
        "spike_message", "hop", "hop_ew", "hop_ns")},
    "time": {k: "time" for k in (
        "synaptic_op", "neuron_update", "neuron_update_active", "neuron_update_idle", "spike_message", "hop",
        "hop_ew", "hop_ns", "sync", "sync_table", "tick", "event_pipeline")},
    "power": {"static": "power", "typical": "power"},
    "capacity": {
        "cores_per_chip": "count", "neurons_per_core": "count", "synaptic_memory_per_core": "memory",
        "fan_in_per_core": "count", "fan_out_per_core": "count", "fan_out_per_neuron": "count",
        "weight_bits_min": "bits", "weight_bits_max": "bits", "synapse_overhead_bits": "bits",
        "kernel_memory_per_core": "count", "neuron_memory_per_core": "count", "pipeline_layers": "count",
        "destinations_per_core": "count", "cores_per_tile": "count", "sync_table_tiles": "count",
        # layer_per_core (DYNAP-CNN) core configuration, each checked where given
        "pool_sizes": "count", "stride_sizes": "count", "kernel_size_max": "count", "padding_max": "count",
        "features_per_core": "count", "input_size_max": "count", "output_size_max": "count",
        "sensor_polarities": "count",
    },
    # number formats of the chip's arithmetic (with the top-level option ``arithmetic``), which
    # neurosim.hardware.fixed_point simulates
    "precision": {k: "bits" for k in (
        "weight_bits", "weight_exp_bits", "bias_bits", "bias_exp_bits", "state_bits", "threshold_bits",
        "decay_bits", "input_shift", "fraction_bits")},
}
_CONVENTIONAL = {
    "energy": {k: "energy" for k in (
        "mac_fp32", "add_fp32", "mac_int8", "add_int8", "sram_read_64b_small", "sram_read_64b_medium",
        "sram_read_64b_large", "dram_access_64b", "ram_access_per_bit", "ram_access_base")},
    "capacity": {"sram_small_size": "memory", "sram_medium_size": "memory", "sram_large_size": "memory"},
}
SCHEMAS: dict[str, dict[str, dict[str, str]]] = {"digital": _DIGITAL, "conventional": _CONVENTIONAL}
OPTIONS = {
    "digital": {
        "timing": ("step_driven", "fixed_tick", "realtime"),
        "mapping": ("core_partition", "layer_per_core"),
        "fan_in_over_limit": ("split", "report"),
        "arithmetic": ARITHMETICS,
    },
    "conventional": {},
}
REQUIRED: dict[str, list[str]] = {}  # kind -> required "section.key" (default: every key of its schema)
CHECKS: dict[str, Any] = {}  # kind -> check(constants, fail) of what no single constant shows (registered kinds)
LIST_VALUED = {"capacity.kernel_memory_per_core", "capacity.neuron_memory_per_core", "time.sync_table",
               "capacity.sync_table_tiles", "capacity.pool_sizes", "capacity.stride_sizes"}
_ARTICLE = {"energy": "an", "memory": "a", "time": "a", "power": "a", "bits": "a", "count": "a"}
TOP_LEVEL = {"schema_version", "name", "kind", "title", "notes", "sources", "energy_terms"}


class SpecError(ValueError):
    """A target spec file is missing a field, has an impossible value, a wrong unit or an unknown key."""


@dataclass(frozen=True)
class Constant:
    """One published figure: its value as written, unit, source key and citation, and the SI value."""

    key: str  # "section.name"
    value: float | tuple[float, ...]
    unit: str
    source: str
    citation: str
    si: float | tuple[float, ...]
    note: str = ""

    def to_dict(self) -> dict:
        return {
            "value": list(self.value) if isinstance(self.value, tuple) else self.value,
            "unit": self.unit, "source": self.source, "citation": self.citation, "note": self.note,
        }


@dataclass(frozen=True)
class Spec:
    """A validated target spec. Look constants up with :meth:`si` (SI units) or ``constants[key]``."""

    name: str
    kind: str
    title: str
    constants: Mapping[str, Constant]
    sources: Mapping[str, str]
    options: Mapping[str, str] = field(default_factory=dict)
    energy_terms: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    path: Path | None = None

    def has(self, key: str) -> bool:
        return key in self.constants

    def si(self, key: str, default: Any = None):
        """Value of ``key`` ("section.name") in SI units; ``default`` when the spec does not give it."""
        c = self.constants.get(key)
        if c is None:
            if default is None:
                raise KeyError(f"spec {self.name!r} has no constant {key!r}; it has {sorted(self.constants)}")
            return default
        return c.si

    def term(self, name: str) -> str:
        """Status of an energy term: modelled | not_published | included:<term>."""
        return self.energy_terms.get(name, "not_published")

    def citations(self) -> dict[str, str]:
        """Source key -> citation, only for sources that some constant uses."""
        used = {c.source for c in self.constants.values()}
        return {k: v for k, v in self.sources.items() if k in used}

    def to_dict(self) -> dict:
        return {
            "name": self.name, "kind": self.kind, "title": self.title, "options": dict(self.options),
            "energy_terms": dict(self.energy_terms), "notes": list(self.notes),
            "constants": {k: c.to_dict() for k, c in self.constants.items()},
        }


# ---------------------------------------------------------------------------------------------- validation
def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _did_you_mean(unknown, known) -> str:
    """``": 'x' looks like a typo for 'y'"`` for the first unknown name close to a known one, else ``""``."""
    for name in unknown:
        close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1)
        if close:
            return f": {name!r} looks like a typo for {close[0]!r}"
    return ""


def _constant(where: str, key: str, entry: Any, dimension: str, sources: Mapping[str, str]) -> Constant:
    def fail(msg: str) -> SpecError:
        return SpecError(f"{where}: {key}: {msg}")

    if not isinstance(entry, Mapping):
        raise fail(f'expected a table {{ value = ..., unit = "...", source = "..." }}, got {entry!r}')
    missing = [f for f in ("value", "unit", "source") if f not in entry]
    extra = sorted(set(entry) - {"value", "unit", "source", "note"})
    if missing:
        typo = f" (unknown field(s) {extra}{_did_you_mean(extra, missing)})" if extra else ""
        raise fail(f"missing field(s) {missing}{typo}; every constant needs value, unit and source")
    if extra:
        raise fail(f"unknown field(s) {extra}{_did_you_mean(extra, ('value', 'unit', 'source', 'note'))}; allowed: "
                   "value, unit, source, note")
    value, unit, source = entry["value"], entry["unit"], entry["source"]
    if key in LIST_VALUED:
        if not (isinstance(value, list) and value and all(_num(v) for v in value)):
            per = "one per core" if key.endswith("_memory_per_core") else "one per table entry"
            raise fail(f"value must be a non-empty list of numbers ({per}), got {value!r}")
        values = tuple(float(v) for v in value)
    else:
        if not _num(value):
            raise fail(f"value must be a number, got {value!r}")
        values = (float(value),)
    for v in values:
        if not math.isfinite(v):
            raise fail(f"value {v!r} is not finite")
        if v < 0:
            what = "energies" if dimension == "energy" else f"{dimension} values"
            raise fail(f"value {v:g} is negative; {what} must be >= 0")
        if dimension in ("count", "bits") and v != int(v):
            raise fail(f"value {v:g} must be a whole number of {dimension}")
        if dimension in ("count", "memory") and v == 0:  # cores, neurons, rows, memory: nothing fits in zero
            raise fail(f"value 0 is not a usable {dimension}; it must be > 0")
        if dimension == "bits" and v == 0 and key not in ZERO_BITS_ALLOWED and not key.startswith("precision."):
            raise fail("value 0 is not a usable width; a width in bits must be >= 1")
    units = UNITS[dimension]
    if unit not in units:
        raise fail(f"unit {unit!r} is wrong here: this constant is {_ARTICLE.get(dimension, 'a')} {dimension}; expected one of {list(units)}")
    if not isinstance(source, str) or source not in sources:
        raise fail(f"source {source!r} is not a key of the [sources] table (keys: {sorted(sources)})")
    note = entry.get("note", "")
    if not isinstance(note, str):
        raise fail(f"note must be a string, got {note!r}")
    scale = units[unit]
    si = tuple(v * scale for v in values) if key in LIST_VALUED else values[0] * scale
    val = values if key in LIST_VALUED else (int(values[0]) if isinstance(value, int) else values[0])
    return Constant(key=key, value=val, unit=unit, source=source, citation=sources[source], si=si, note=note)


def spec_from_dict(data: Mapping[str, Any], origin: str = "<spec>", expected_name: str | None = None) -> Spec:
    """Validate parsed TOML data into a :class:`Spec`; ``origin`` (the file name) prefixes every error."""

    def fail(key: str, msg: str) -> SpecError:
        return SpecError(f"{origin}: {key}: {msg}")

    if not isinstance(data, Mapping):
        raise SpecError(f"{origin}: expected a TOML table at the top level")
    for key in ("schema_version", "name", "kind", "title", "sources"):
        if key not in data:
            raise fail(key, "missing required field")
    if data["schema_version"] != SCHEMA_VERSION:
        raise fail("schema_version", f"is {data['schema_version']!r}; this loader reads version {SCHEMA_VERSION}")
    name, kind, title = data["name"], data["kind"], data["title"]
    for key, v in (("name", name), ("kind", kind), ("title", title)):
        if not isinstance(v, str) or not v:
            raise fail(key, f"must be a non-empty string, got {v!r}")
    if expected_name is not None and name != expected_name:
        raise fail("name", f"is {name!r} but the file is named {expected_name + '.toml'!r}; they must agree (a "
                   f"target is known by its name, in tables and output files): set name = \"{expected_name}\", or "
                   f"rename the file to {name + '.toml'!r}")
    if kind not in SCHEMAS:
        raise fail("kind", f"{kind!r} is not a known kind; expected one of {list(SCHEMAS)}")
    schema = SCHEMAS[kind]

    sources = data["sources"]
    if not isinstance(sources, Mapping) or not sources:
        raise fail("sources", "must be a non-empty table of key = \"citation\"")
    for k, v in sources.items():
        if not isinstance(v, str) or not v.strip():
            raise fail(f"sources.{k}", f"must be a non-empty citation string, got {v!r}")

    allowed_top = TOP_LEVEL | set(schema) | set(OPTIONS[kind])
    unknown = sorted(set(data) - allowed_top)
    if unknown:
        raise fail(unknown[0], f"unknown key for a {kind} spec{_did_you_mean(unknown[:1], allowed_top)}; allowed: "
                   f"{sorted(allowed_top)}")

    constants: dict[str, Constant] = {}
    for section, keys in schema.items():
        table = data.get(section, {})
        if not isinstance(table, Mapping):
            raise fail(section, f"must be a table, got {table!r}")
        for k, entry in table.items():
            full = f"{section}.{k}"
            if k not in keys:
                raise fail(full, f"unknown constant{_did_you_mean([k], keys)}; a {kind} spec's [{section}] takes "
                           f"{sorted(keys)}")
            constants[full] = _constant(origin, full, entry, keys[k], sources)

    options: dict[str, str] = {}
    for opt, choices in OPTIONS[kind].items():
        if opt == "fan_in_over_limit" and opt not in data and data.get("mapping") != "core_partition":
            continue  # only the core partition mapper splits layers
        if opt == "arithmetic" and opt not in data:
            continue  # optional: a chip whose number formats are not published is not simulated
        if opt not in data:
            raise fail(opt, f"missing required field; expected one of {list(choices)}")
        if data[opt] not in choices:
            raise fail(opt, f"{data[opt]!r} is not one of {list(choices)}")
        options[opt] = data[opt]

    notes = data.get("notes", [])
    if not (isinstance(notes, list) and all(isinstance(n, str) for n in notes)):
        raise fail("notes", "must be a list of strings")

    terms: dict[str, str] = {}
    if kind == "digital":
        terms = _check_digital(data, constants, options, fail)
    else:
        if "energy_terms" in data:
            raise fail("energy_terms", f"only digital specs take [energy_terms]; this spec is {kind}")
        need = REQUIRED.get(kind) or [f"{s}.{k}" for s, keys in schema.items() for k in keys]
        missing = [k for k in need if k not in constants]
        if missing:
            raise fail(missing[0], f"missing required constant (a {kind} spec needs {need})")
        if kind in CHECKS:
            CHECKS[kind](constants, fail)
    return Spec(name=name, kind=kind, title=title, constants=constants, sources=dict(sources), options=options,
                energy_terms=terms, notes=tuple(notes))


def _check_digital(data, constants, options, fail) -> dict[str, str]:
    terms = data.get("energy_terms")
    if not isinstance(terms, Mapping):
        raise fail("energy_terms", f"missing required table; give each of {list(TERMS)} a status")
    for t in TERMS:
        if t not in terms:
            raise fail(f"energy_terms.{t}", "missing; expected 'modelled', 'not_published' or 'included:<term>'")
    for t, status in terms.items():
        if t not in TERMS:
            raise fail(f"energy_terms.{t}", f"unknown term; terms are {list(TERMS)}")
        if not isinstance(status, str):
            raise fail(f"energy_terms.{t}", f"must be a string, got {status!r}")
        if status.startswith("included:"):
            host = status.split(":", 1)[1]
            if host == t or host not in TERMS or terms.get(host) != "modelled":
                raise fail(f"energy_terms.{t}", f"{status!r} must name another term whose status is 'modelled'")
        elif status not in STATUSES:
            raise fail(f"energy_terms.{t}", f"{status!r} is not 'modelled', 'not_published' or 'included:<term>'")

    def need(key: str, why: str) -> None:
        if key not in constants:
            raise fail(key, f"missing required constant ({why})")

    if terms["synaptic"] == "modelled":
        need("energy.synaptic_op", "energy_terms.synaptic is 'modelled'")
    if terms["neuron_update"] == "modelled" and "energy.neuron_update" not in constants:
        need("energy.neuron_update_active", "energy_terms.neuron_update is 'modelled' and energy.neuron_update is absent")
        need("energy.neuron_update_idle", "energy_terms.neuron_update is 'modelled' and energy.neuron_update is absent")
    if terms["routing"] == "modelled":
        need("energy.spike_message", "energy_terms.routing is 'modelled'")
    if terms["static"] == "modelled":
        need("power.static", "energy_terms.static is 'modelled'")
    need("capacity.cores_per_chip", "every digital spec")
    if options["timing"] == "fixed_tick":
        need("time.tick", "timing is 'fixed_tick'")
    if options["timing"] == "step_driven":
        need("time.synaptic_op", "timing is 'step_driven'")
        if "time.neuron_update" not in constants:
            need("time.neuron_update_active", "timing is 'step_driven' and time.neuron_update is absent")
            need("time.neuron_update_idle", "timing is 'step_driven' and time.neuron_update is absent")
    if "time.sync_table" in constants:
        if "time.sync" in constants:
            raise fail("time.sync_table", "give either time.sync (one barrier time) or time.sync_table, not both")
        need("capacity.sync_table_tiles", "time.sync_table gives one barrier time per tile count listed there")
        need("capacity.cores_per_tile", "time.sync_table is looked up by the tiles in use")
        tiles, times = constants["capacity.sync_table_tiles"].value, constants["time.sync_table"].value
        if len(tiles) != len(times):
            raise fail("time.sync_table", f"lists {len(times)} times but capacity.sync_table_tiles lists {len(tiles)} "
                       "tile counts; they must pair up")
        if any(b <= a for a, b in zip(tiles, tiles[1:])):
            raise fail("capacity.sync_table_tiles", f"{list(tiles)} must be strictly increasing")
    elif "capacity.sync_table_tiles" in constants:
        raise fail("capacity.sync_table_tiles", "given without time.sync_table")
    if options["mapping"] == "core_partition":
        need("capacity.neurons_per_core", "mapping is 'core_partition'")
    if options["mapping"] == "layer_per_core":
        for k in ("capacity.kernel_memory_per_core", "capacity.neuron_memory_per_core"):
            need(k, "mapping is 'layer_per_core'")
            n = len(constants[k].value)
            cores = constants["capacity.cores_per_chip"].value
            if n != cores:
                raise fail(k, f"lists {n} cores but capacity.cores_per_chip is {cores}")
    arithmetic = options.get("arithmetic")
    if arithmetic is not None:
        for k in ARITHMETIC_NEEDS[arithmetic]:
            need(f"precision.{k}", f"arithmetic is {arithmetic!r}")
            if constants[f"precision.{k}"].value < 1 and k not in ("input_shift",):
                raise fail(f"precision.{k}", "must be at least 1 bit")
        _check_precision(constants, arithmetic, fail)
    elif any(k.startswith("precision.") for k in constants):
        raise fail("arithmetic", "missing: [precision] constants are read by the arithmetic that names how the chip "
                   f"computes; expected one of {list(ARITHMETICS)}")
    lo, hi = constants.get("capacity.weight_bits_min"), constants.get("capacity.weight_bits_max")
    if lo and hi and lo.si > hi.si:
        raise fail("capacity.weight_bits_min", f"{lo.value} is above capacity.weight_bits_max {hi.value}")
    held = constants.get("precision.weight_bits")
    if held and hi and held.si > hi.si:  # the mapping stores weights of at most hi bits; --fixed-point simulates held
        raise fail("precision.weight_bits", f"{held.value} bits is more than the chip stores (capacity.weight_bits_max "
                   f"= {hi.value}): the integer model would compute with finer weights than the estimate maps; lower "
                   f"precision.weight_bits to at most {hi.value}, or raise capacity.weight_bits_max")
    mem = constants.get("capacity.synaptic_memory_per_core")
    if mem:  # the smallest synapse: a weight of at least 1 bit (or the chip's minimum) and its overhead
        overhead = constants.get("capacity.synapse_overhead_bits")
        smallest = max(1.0, lo.si if lo else 1.0) + (overhead.si if overhead else 0.0)
        if mem.si < smallest:
            raise fail("capacity.synaptic_memory_per_core",
                       f"{mem.value:g} {mem.unit} cannot hold one synapse: the smallest takes {smallest:g} bits "
                       "(capacity.weight_bits_min, at least 1, plus capacity.synapse_overhead_bits)")
    return dict(terms)


def _check_precision(constants, arithmetic: str, fail) -> None:
    """[precision] widths the integer models can compute with (see ``PRECISION_MAX_BITS``)."""
    for full, c in constants.items():
        if not full.startswith("precision."):
            continue
        k = full.split(".", 1)[1]
        if k in PRECISION_MAX_EXP_BITS:
            top = PRECISION_MAX_EXP_BITS[k]
            if c.value > top:
                raise fail(full, f"{c.value:g} bits is too wide: at most {top}, as the scales 2^exponent must be "
                           "float64 numbers (exponents within ±1023)")
        elif c.value > PRECISION_MAX_BITS:
            raise fail(full, f"{c.value:g} bits is too wide: at most {PRECISION_MAX_BITS}, as {PRECISION_WHY}")
    if arithmetic == "loihi":  # u, v <- trunc(x·(2^decay_bits - d) / 2^decay_bits): a state times a decay factor
        state, decay = constants["precision.state_bits"].value, constants["precision.decay_bits"].value
        if state - 1 + decay > PRECISION_MAX_BITS:
            raise fail("precision.state_bits", f"{state:g} bits with precision.decay_bits {decay:g}: Loihi's decay "
                       f"multiplies a state by up to 2^decay_bits, a product of {state - 1 + decay:g} bits; "
                       f"state_bits - 1 + decay_bits must be at most {PRECISION_MAX_BITS}, as {PRECISION_WHY}")


def register_spec_kind(kind: str, sections: Mapping[str, Mapping[str, str]], options: Mapping[str, tuple] | None = None,
                       required: list[str] | None = None, check=None) -> None:
    """Teach the loader a new spec kind (e.g. ``crossbar``) without editing this module.

    Args:
        sections: section -> {constant name -> dimension}; dimensions are the keys of ``UNITS``.
        options: top-level string options -> allowed values (each is then required).
        required: "section.key" constants that must be present (default: all of them).
        check: ``check(constants, fail)``, run once every constant is valid on its own, for what only their
            combination shows (e.g. ``device.r_on`` below ``device.r_off``); ``fail(key, message)`` returns the
            :class:`SpecError` to raise, naming the file and the key.
    """
    for section, keys in sections.items():
        for key, dim in keys.items():
            if dim not in UNITS:
                raise ValueError(f"{kind}: {section}.{key}: dimension {dim!r} is not one of {list(UNITS)}")
    SCHEMAS[kind] = {s: dict(k) for s, k in sections.items()}
    OPTIONS[kind] = dict(options or {})
    if required is not None:
        REQUIRED[kind] = list(required)
    CHECKS.pop(kind, None)
    if check is not None:
        CHECKS[kind] = check


# ---------------------------------------------------------------------------------------------- loading
def list_targets() -> list[str]:
    """Names of the shipped target specs (file stems in ``hardware_models/specs``), sorted."""
    return sorted(p.stem for p in SPEC_DIR.glob("*.toml"))


def load_spec(name_or_path: str | os.PathLike) -> Spec:
    """Load and validate a shipped spec by name (``"loihi"``) or any spec file by path.

    Raises:
        SpecError: unknown name, unreadable TOML, or any validation failure (the message names file and key).
    """
    text = str(name_or_path)
    path = Path(text)
    if path.suffix != ".toml" and os.sep not in text and "/" not in text:
        path = SPEC_DIR / f"{text}.toml"
        if not path.is_file():
            close = difflib.get_close_matches(text.lower(), list_targets(), n=1)
            guess = f" (did you mean {close[0]!r}?)" if close else ""
            raise SpecError(f"unknown target {text!r}{guess}; shipped targets: {list_targets()} (or give a path to a "
                            ".toml spec)")
    if not path.is_file():
        raise SpecError(f"spec file {path} does not exist")
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path.name}: not valid TOML ({exc})") from None
    spec = spec_from_dict(data, origin=path.name, expected_name=path.stem)
    return dataclasses.replace(spec, path=path)

"""ActivityProfile — how much a network spiked, the input contract of every hardware model.

A profile is measured by running a model on ``samples`` inputs for ``time_steps`` steps of ``dt_s`` seconds
and averaging over the samples. For every NIR node name it holds

* ``spikes_per_step[name]``, shape ``(T,)``: spikes emitted at each step, summed over the node's neurons,
  mean over samples;
* ``spike_counts[name]``, the node's output shape and layout (e.g. channels first; or flat in that order):
  spikes per neuron over the whole run, mean over samples (optional per node; without it the models assume
  spikes spread evenly over the node's neurons);
* ``updates_per_step[name]``, shape ``(T,)`` (optional per node): neurons of the node whose state changes at each
  step, summed over its neurons, mean over samples: those with a nonzero input or a nonzero membrane potential
  entering the step, the neurons SANA-FE charges a soma update (a neuron at rest with no input is skipped). A
  neuron that fires is updated, so the series is at least ``spikes_per_step[name]`` at every step. Without it a
  model that charges updates by this condition counts every neuron as updated in every step (an upper bound).

and ``input_events_per_step``, shape ``(T,)``: events entering the graph per step (mean over samples; with
several Input nodes, all of them together). A node inside a nested subgraph is named ``subgraph.node``
(e.g. ``rleaky.lif``), as :func:`hardware_models.graph.flatten_graph` names it.
The two views of one node must agree: ``spike_counts[name].sum() == spikes_per_step[name].sum()``.
A node in ``spike_counts`` must also be in ``spikes_per_step``; to give the spatial distribution of the
input events, list the graph's ``Input`` node under both (its series then equals ``input_events_per_step``).

Plain numpy, serialisable to JSON (``activity.json``) so tools written in other libraries can produce it.

Example:
    >>> import numpy as np
    >>> spikes = {"lif": np.array([[[1, 0, 1]], [[0, 0, 1]]])}  # [T=2, B=1, 3 neurons]
    >>> p = ActivityProfile.from_spike_trains(spikes, dt_s=1e-3)
    >>> p.spikes_per_step["lif"].tolist(), p.spike_counts["lif"].tolist()
    ([2.0, 1.0], [1.0, 0.0, 2.0])
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

__all__ = ["ActivityProfile", "ActivityError"]

FORMAT_NAME = "neurosim.activity"
FORMAT_VERSION = 1


class ActivityError(ValueError):
    """An activity profile is malformed (wrong shape, negative or non-finite counts, inconsistent views)."""


def _contains_none(x) -> bool:
    """Whether a (nested) list holds ``None`` — JSON's ``null``, which numpy turns into NaN."""
    if x is None:
        return True
    return isinstance(x, (list, tuple)) and any(_contains_none(v) for v in x)


def _as_float_array(x, what: str) -> np.ndarray:
    if x is None:
        raise ActivityError(f"{what}: is null; expected an array of numbers")
    try:
        arr = np.array(x, dtype=np.float64)  # a private copy: the profile freezes it
    except (TypeError, ValueError) as exc:
        raise ActivityError(f"{what}: expected an array of numbers, got {type(x).__name__} ({exc})") from None
    if not np.all(np.isfinite(arr)):
        if _contains_none(x):
            raise ActivityError(f"{what}: contains null, which is not a number; expected numbers only")
        raise ActivityError(f"{what}: contains NaN or infinite values")
    if arr.size and arr.min() < 0:
        raise ActivityError(f"{what}: spike counts must be >= 0, found {arr.min():g}")
    return arr


def _json_type(x) -> str:
    """The JSON name of a parsed value's type, for messages about activity.json."""
    if x is None:
        return "null"
    if isinstance(x, bool):
        return "a boolean"
    if isinstance(x, (int, float)):
        return "a number"
    if isinstance(x, str):
        return "a string"
    if isinstance(x, (list, tuple)):
        return "a list"
    return type(x).__name__


def _short(x, limit: int = 40) -> str:
    text = json.dumps(x) if isinstance(x, (list, tuple, str, int, float, bool)) or x is None else repr(x)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _same_total(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9 * max(1.0, abs(a), abs(b)))


def _new_file_mode(path: Path) -> int:
    """Permission bits ``open(path, "w")`` would leave: the file's own if it exists, else 0666 & ~umask."""
    try:
        return os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask

@dataclass(frozen=True, eq=False)
class ActivityProfile:
    """Mean spiking activity of one network over ``samples`` inputs (see the module docstring).

    Args:
        time_steps: T, steps per inference.
        dt_s: simulated time per step, in seconds (used for firing rates and real-time chips).
        samples: number of inputs the means were taken over.
        spikes_per_step: node name -> ``(T,)`` mean spikes per step, summed over the node's neurons.
        spike_counts: node name -> node-output-shaped mean spikes per neuron over the run.
        input_events_per_step: ``(T,)`` mean input events per step.
        updates_per_step: node name -> ``(T,)`` mean neurons updated per step (nonzero input or potential),
            summed over the node's neurons; optional per node, also for nodes that do not spike (an LI readout).
    """

    time_steps: int
    dt_s: float
    samples: int
    spikes_per_step: Mapping[str, np.ndarray]
    spike_counts: Mapping[str, np.ndarray] = field(default_factory=dict)
    input_events_per_step: np.ndarray | None = None
    updates_per_step: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        T = self.time_steps
        if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
            raise ActivityError(f"time_steps must be a positive integer, got {T!r}")
        object.__setattr__(self, "time_steps", int(T))
        if isinstance(self.dt_s, bool) or not isinstance(self.dt_s, (int, float, np.floating)) or not (
            math.isfinite(self.dt_s) and self.dt_s > 0
        ):
            raise ActivityError(f"dt_s must be a positive number of seconds, got {self.dt_s!r}")
        object.__setattr__(self, "dt_s", float(self.dt_s))
        S = self.samples
        if isinstance(S, bool) or not isinstance(S, (int, np.integer)) or S < 1:
            raise ActivityError(f"samples must be a positive integer, got {S!r}")
        object.__setattr__(self, "samples", int(S))

        if not isinstance(self.spikes_per_step, Mapping):
            raise ActivityError(f"spikes_per_step must be a dict node name -> (T,) array, got {type(self.spikes_per_step).__name__}")
        per_step: dict[str, np.ndarray] = {}
        for name, series in self.spikes_per_step.items():
            if not isinstance(name, str) or not name:
                raise ActivityError(f"spikes_per_step: node names must be non-empty strings, got {name!r}")
            arr = _as_float_array(series, f"spikes_per_step[{name!r}]")
            if arr.shape != (T,):
                raise ActivityError(f"spikes_per_step[{name!r}]: expected shape ({T},) (time_steps), got {arr.shape}")
            arr.setflags(write=False)
            per_step[name] = arr
        object.__setattr__(self, "spikes_per_step", per_step)

        if self.spike_counts is None:
            object.__setattr__(self, "spike_counts", {})
        if not isinstance(self.spike_counts, Mapping):
            raise ActivityError(f"spike_counts must be a dict node name -> array, got {type(self.spike_counts).__name__}")
        counts: dict[str, np.ndarray] = {}
        for name, c in self.spike_counts.items():
            if name not in per_step:
                raise ActivityError(
                    f"spike_counts[{name!r}] has no matching spikes_per_step entry; every node in spike_counts "
                    f"must also be in spikes_per_step (nodes there: {sorted(per_step)})"
                )
            arr = _as_float_array(c, f"spike_counts[{name!r}]")
            if arr.ndim == 0:
                raise ActivityError(f"spike_counts[{name!r}]: expected an array of the node's output shape, got a scalar")
            total_counts, total_steps = float(arr.sum()), float(per_step[name].sum())
            if not _same_total(total_counts, total_steps):
                raise ActivityError(
                    f"node {name!r}: spike_counts sums to {total_counts:g} spikes but spikes_per_step sums to "
                    f"{total_steps:g}; both must describe the same run"
                )
            arr.setflags(write=False)
            counts[name] = arr
        object.__setattr__(self, "spike_counts", counts)

        if self.input_events_per_step is None:
            inp = np.zeros(T)
        else:
            inp = _as_float_array(self.input_events_per_step, "input_events_per_step")
            if inp.shape != (T,):
                raise ActivityError(f"input_events_per_step: expected shape ({T},) (time_steps), got {inp.shape}")
        inp.setflags(write=False)
        object.__setattr__(self, "input_events_per_step", inp)

        if self.updates_per_step is None:
            object.__setattr__(self, "updates_per_step", {})
        if not isinstance(self.updates_per_step, Mapping):
            raise ActivityError(f"updates_per_step must be a dict node name -> (T,) array, got "
                                f"{type(self.updates_per_step).__name__}")
        updates: dict[str, np.ndarray] = {}
        for name, series in self.updates_per_step.items():
            arr = _as_float_array(series, f"updates_per_step[{name!r}]")
            if arr.shape != (T,):
                raise ActivityError(f"updates_per_step[{name!r}]: expected shape ({T},) (time_steps), got {arr.shape}")
            fired = per_step.get(name)  # (None: a population that does not spike, an LI readout: nothing to compare)
            short = np.flatnonzero(arr < fired * (1 - 1e-9) - 1e-9) if fired is not None else ()
            if len(short):
                t = int(short[0])
                raise ActivityError(
                    f"node {name!r}: updates_per_step is {arr[t]:g} at step {t} but spikes_per_step is {fired[t]:g}; "
                    "a neuron that fires is updated in that step, so updates must be at least the spikes"
                )
            arr.setflags(write=False)
            updates[name] = arr
        object.__setattr__(self, "updates_per_step", updates)

    # ------------------------------------------------------------------ derived views
    @property
    def nodes(self) -> list[str]:
        """Names of the nodes with recorded spikes."""
        return list(self.spikes_per_step)

    @property
    def duration_s(self) -> float:
        """Simulated time of one inference, T·dt, in seconds."""
        return self.time_steps * self.dt_s

    def total_spikes(self, name: str) -> float:
        """Mean spikes node ``name`` emits in one inference (all neurons, all steps)."""
        return float(self.spikes_per_step[name].sum())

    def scaled(self, factor: float) -> "ActivityProfile":
        """The same profile with every count (spikes, updates and input events) multiplied by ``factor`` >= 0."""
        if not (math.isfinite(factor) and factor >= 0):
            raise ActivityError(f"scale factor must be a finite number >= 0, got {factor!r}")
        return ActivityProfile(
            time_steps=self.time_steps,
            dt_s=self.dt_s,
            samples=self.samples,
            spikes_per_step={k: v * factor for k, v in self.spikes_per_step.items()},
            spike_counts={k: v * factor for k, v in self.spike_counts.items()},
            input_events_per_step=self.input_events_per_step * factor,
            updates_per_step={k: v * factor for k, v in self.updates_per_step.items()},
        )

    # ------------------------------------------------------------------ construction from raw spikes
    @classmethod
    def from_spike_trains(
        cls,
        spikes: Mapping[str, np.ndarray],
        dt_s: float,
        input_events: np.ndarray | None = None,
        input_name: str | None = "input",
    ) -> "ActivityProfile":
        """Average raw spike trains into a profile.

        Args:
            spikes: node name -> spike (or event count) array ``[T, B, *node_shape]``.
            dt_s: seconds per step.
            input_events: optional ``[T, B, *input_shape]`` events fed to the graph's Input node.
            input_name: the Input node's name; when given with ``input_events``, the input's spatial
                counts are stored under it too, so synaptic operations of the first layer use exact
                per-position fan-out. ``None`` records only the per-step totals.

        Shapes:
            every array is time-first ``[T, B, ...]``; all must share T and B.
        """
        arrays = dict(spikes)
        if input_events is not None and input_name is not None:
            if input_name in arrays:
                raise ActivityError(f"input_name {input_name!r} is also a key of spikes; give the input once")
            arrays[input_name] = input_events
        T = B = None
        per_step, counts = {}, {}
        for name, x in arrays.items():
            arr = _as_float_array(x, f"spikes[{name!r}]")
            if arr.ndim < 2:
                raise ActivityError(f"spikes[{name!r}]: expected [T, B, ...] (time first), got shape {arr.shape}")
            if T is None:
                T, B = arr.shape[:2]
            elif arr.shape[:2] != (T, B):
                raise ActivityError(
                    f"spikes[{name!r}]: shape {arr.shape} has (T, B) = {arr.shape[:2]}, others have ({T}, {B})"
                )
            per_step[name] = arr.reshape(T, B, -1).sum(axis=2).mean(axis=1)
            counts[name] = arr.sum(axis=0).mean(axis=0)
        inp_steps = None
        if input_events is not None:
            inp = _as_float_array(input_events, "input_events")
            if inp.ndim < 2:
                raise ActivityError(f"input_events: expected [T, B, ...] (time first), got shape {inp.shape}")
            if T is None:
                T, B = inp.shape[:2]
            elif inp.shape[:2] != (T, B):
                raise ActivityError(f"input_events: shape {inp.shape} has (T, B) = {inp.shape[:2]}, spikes have ({T}, {B})")
            inp_steps = inp.reshape(inp.shape[0], inp.shape[1], -1).sum(axis=2).mean(axis=1)
        if T is None:
            raise ActivityError("from_spike_trains needs at least one spike array or input_events")
        return cls(
            time_steps=int(T), dt_s=dt_s, samples=int(B), spikes_per_step=per_step, spike_counts=counts,
            input_events_per_step=inp_steps,
        )

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict:
        """A JSON-ready dict (arrays as nested lists), tagged with the format name and version; ``updates_per_step``
        only where the profile has updates (files without it read as before)."""
        data = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "time_steps": self.time_steps,
            "dt_s": self.dt_s,
            "samples": self.samples,
            "input_events_per_step": self.input_events_per_step.tolist(),
            "spikes_per_step": {k: v.tolist() for k, v in self.spikes_per_step.items()},
            "spike_counts": {k: v.tolist() for k, v in self.spike_counts.items()},
        }
        if self.updates_per_step:
            data["updates_per_step"] = {k: v.tolist() for k, v in self.updates_per_step.items()}
        return data

    @classmethod
    def from_dict(cls, data: Mapping) -> "ActivityProfile":
        """Inverse of :meth:`to_dict`; rejects other formats, newer versions, missing keys and a per-node field that
        is not a JSON object (``null`` for the optional ``spike_counts`` and ``updates_per_step`` reads as absent)."""
        if not isinstance(data, Mapping):
            raise ActivityError(f"activity data must be a JSON object, got {type(data).__name__}")
        fmt = data.get("format")
        if fmt != FORMAT_NAME:
            # the estimate written from an activity (estimate.json: {"activity": summary, "targets": ...}) is
            # the file most often given for it; its activity.json is written beside it
            what = (" (it holds estimates: an estimate.json, whose activity is the activity.json written beside it)"
                    if fmt is None and "targets" in data else "")
            raise ActivityError(f"not an activity profile: format is {fmt!r}, expected {FORMAT_NAME!r}{what}")
        version = data.get("version")
        if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
            raise ActivityError(f"activity format version {version!r} is not supported (this reader: 1..{FORMAT_VERSION})")
        required = ("time_steps", "dt_s", "samples", "spikes_per_step")
        missing = [k for k in required if k not in data]
        if missing:
            raise ActivityError(f"activity data is missing {missing}; required keys: {list(required)}")
        known = set(required) | {"format", "version", "spike_counts", "input_events_per_step", "updates_per_step"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ActivityError(f"activity data has unknown keys {unknown}; known keys: {sorted(known)}")
        mappings = {}
        for key, values in (("spikes_per_step", "a (T,) list"), ("spike_counts", "a list of the node's output shape"),
                            ("updates_per_step", "a (T,) list")):
            value = data.get(key)
            if value is None and key != "spikes_per_step":
                value = {}  # optional: null reads as absent
            if not isinstance(value, Mapping):
                raise ActivityError(f"{key} must be a JSON object node name -> {values}, got "
                                    f"{_json_type(value)} {_short(value)}")
            mappings[key] = dict(value)
        return cls(
            time_steps=data["time_steps"],
            dt_s=data["dt_s"],
            samples=data["samples"],
            spikes_per_step=mappings["spikes_per_step"],
            spike_counts=mappings["spike_counts"],
            input_events_per_step=data.get("input_events_per_step"),
            updates_per_step=mappings["updates_per_step"],
        )

    def to_json(self, path: str | os.PathLike) -> Path:
        """Write the profile to ``path`` atomically (temp file in the same folder, then ``os.replace``). An
        ``OSError`` names ``path`` where the system gave none (a full disk fails in write() or flush() without one),
        as ``neurosim._io.atomic_write_bytes`` does."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self.to_dict(), fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, _new_file_mode(path))  # as open(path, "w") would, not mkstemp's private 0600
            os.replace(tmp, path)
        except BaseException as exc:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:  # (errno-less: as is)
                raise OSError(exc.errno, exc.strerror, str(path)) from exc
            raise
        return path

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "ActivityProfile":
        """Read a profile written by :meth:`to_json` (or by any tool following the same format); a missing,
        unreadable, non-UTF-8 or malformed file is an :class:`ActivityError` naming ``path``."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ActivityError(f"activity file {path} does not exist") from None
        except UnicodeDecodeError as exc:
            raise ActivityError(f"activity file {path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at "
                                f"position {exc.start}); expected an activity.json") from None
        except OSError as exc:
            raise ActivityError(f"activity file {path} cannot be read: {exc.strerror or exc}") from None
        try:
            data = json.loads(text)
        except ValueError as exc:  # JSONDecodeError, or a number too long to convert
            raise ActivityError(f"{path}: not valid JSON ({exc})") from None
        try:
            return cls.from_dict(data)
        except ActivityError as exc:
            raise ActivityError(f"{path}: {exc}") from None

"""Facts about a NIR graph that hardware models need: neurons, synapses, fan-in/fan-out, synaptic operations.

The graph is read as *populations* joined by *projections*:

* a population is a group of neurons that emit spikes or accumulate current: every ``LIF``, ``IF``,
  ``CubaLIF`` (spiking), ``LI``, ``CubaLI``, ``I`` (non-spiking), the graph's ``Input`` nodes (events
  arriving from outside the chip) and an ``Output`` node fed straight by a synapse node (a readout);
* a projection is the path from one population to the next:
  ``source → (Flatten | SumPool2d | AvgPool2d)* → synapse → Flatten* → target``, where the synapse node is
  ``Linear``, ``Affine``, ``Conv1d`` or ``Conv2d``. A pool with no weighted node after it acts as the synapse
  itself (all weights 1); a path with neither is a one-to-one connection.
* a *one-to-one recurrence* is a ``Linear``/``Affine`` node on a self-loop (``neuron → W → the same neuron``,
  nothing else feeding or fed by ``W``) whose ``N × N`` weight has no nonzero entry off its diagonal: each neuron
  feeds back onto itself alone (neurosim's ``RLIF(connectivity="diagonal")``, snnTorch's ``RLeaky(all_to_all=
  False)``; NIR has no one-to-one weight node that either tool writes, so both write the diagonal matrix). It is
  recognised from the weights, not from metadata, so graphs from any tool are read alike; a feed-forward diagonal
  matrix stays a matrix, as the graph says. Its node's ``one_to_one`` is True and its ``weight_params`` and
  ``synapses_dense`` count the ``N`` weights a chip stores and a dense engine multiplies (an element-wise
  product, as the frameworks compute it), not ``N²``; the hardware models place it as ``N`` single weights.
* a *silent recurrence* is a weight node on self-loops only whose weights are all zero (e.g. a reservoir without
  feedback): it carries no synaptic events, so it is left out of the projections, its node counts no weights and
  no synapses, and ``GraphFacts.notes`` says so. It costs what the graph without the loop costs, on every target
  (it is not read as a one-to-one recurrence, though nothing lies off its diagonal).
* an all-zero weight node on any other projection (feed-forward, or a loop beside other paths) carries no signal
  either, but stays what the graph says: it is mapped and costed as a chip would store it (leaving it out would
  change which layers the graph joins), and ``GraphFacts.notes`` names it, since it is likely a mistake (a layer
  pruned to nothing, an export that lost its weights).

Pooling before a synapse node is an event operation: a spike at position p is forwarded once to every
pooling window that contains p (address mapping, as on DYNAP-CNN/Speck), so it adds no synaptic operations
of its own. A spike's synaptic operations are its *actual fan-out*: the number of (postsynaptic neuron,
nonzero weight) pairs it reaches. For a convolution this is exact per input position, borders, stride,
padding, dilation and groups included (the transposed convolution of a ones tensor with the kernel's
nonzero mask)::

    synops(projection) = Σ_p  spike_count[p] · fan_out[p]

A pooling node may also have *measured* output events in the activity (``spikes_per_step`` / ``spike_counts``
under its name, of its output shape). Then the events leaving it are those, not the sum of its inputs: this is
how a max pool is counted (exported as ``SumPool2d``, it passes at most one event per window and step, which
only a recording of the running model can tell), and a projection through it counts
``Σ_q pool_events[q] · fan_out_after_pool[q]``.

Example:
    >>> import numpy as np, nir
    >>> g = nir.NIRGraph.from_list(
    ...     nir.Linear(weight=np.ones((3, 4))),
    ...     nir.LIF(tau=np.ones(3), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3)))
    >>> facts = analyze(g)
    >>> facts.neurons, facts.synapses_dense, facts.fan_out("input").tolist()
    (3, 12, [3.0, 3.0, 3.0, 3.0])
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Iterable, Mapping

import nir
import numpy as np

__all__ = [
    "GraphError", "ConvGeometry", "NodeFacts", "Population", "Projection", "GraphFacts", "SynopCount", "analyze",
    "flatten_graph", "SYNAPSE_TYPES", "SPIKING_TYPES", "NONSPIKING_TYPES",
]

SYNAPSE_TYPES = ("Linear", "Affine", "Conv1d", "Conv2d")
SPIKING_TYPES = ("LIF", "IF", "CubaLIF")
NONSPIKING_TYPES = ("LI", "CubaLI", "I")
POOL_TYPES = ("SumPool2d", "AvgPool2d")
RESHAPE_TYPES = ("Flatten",)
IO_TYPES = ("Input", "Output")
SUPPORTED_TYPES = SYNAPSE_TYPES + SPIKING_TYPES + NONSPIKING_TYPES + POOL_TYPES + RESHAPE_TYPES + IO_TYPES


class GraphError(ValueError):
    """The NIR graph has a node, shape or structure the hardware models cannot interpret."""


# ---------------------------------------------------------------------------------------------- helpers
def _shape(v) -> tuple[int, ...] | None:
    if v is None:
        return None
    arr = np.asarray(v)
    if arr.dtype == object:
        return None
    return tuple(int(x) for x in np.atleast_1d(arr).ravel())


def _defined(types: Mapping | None, key: str) -> tuple[int, ...] | None:
    if not types:
        return None
    return _shape(types.get(key))


def _per_dim(v, n: int, what: str, node: str, minimum: int = 1) -> tuple[int, ...]:
    """``v`` (one integer, or one per spatial dimension) as ``n`` integers >= ``minimum``; GraphError otherwise."""
    if v is None:
        raise GraphError(f"node {node!r}: {what} is None; give an integer or {n} integers")
    shown = v.tolist() if isinstance(v, np.ndarray) else v
    arr = np.atleast_1d(np.asarray(v)).ravel()
    if arr.size == 1:
        arr = np.repeat(arr, n)
    if arr.size != n:
        raise GraphError(f"node {node!r}: {what} {shown!r} must have 1 or {n} entries")
    try:
        out = tuple(int(x) for x in arr)
        whole = all(float(x) == i for x, i in zip(arr, out))
    except (TypeError, ValueError):
        whole = False
    if not whole or any(i < minimum for i in out):
        raise GraphError(f"node {node!r}: {what} {shown!r} must be whole numbers >= {minimum}")
    return out


# ---------------------------------------------------------------------------------------------- convolution
@dataclass(frozen=True)
class ConvGeometry:
    """A 2-d correlation (Conv1d is held as height 1) with a binary mask of its nonzero weights.

    Pools use the same machinery: depthwise (``groups = C``), all-ones kernel.

    Shapes:
        mask: ``(C_out, C_in // groups, kh, kw)`` bool; inputs ``(C_in, H, W)``; outputs ``(C_out, OH, OW)``.
    """

    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pad_lo: tuple[int, int]
    pad_hi: tuple[int, int]
    groups: int
    mask: np.ndarray = field(repr=False)

    @property
    def c_in_per_group(self) -> int:
        return self.in_shape[0] // self.groups

    @property
    def c_out_per_group(self) -> int:
        return self.out_shape[0] // self.groups

    def _grouped_mask(self, ky: int, kx: int) -> np.ndarray:
        # (G, C_out/G, C_in/G) as float for einsum
        G = self.groups
        return self.mask[:, :, ky, kx].reshape(G, self.c_out_per_group, self.c_in_per_group).astype(np.float64)

    def _slices(self, ky: int, kx: int) -> tuple[slice, slice]:
        (_, OH, OW), (sh, sw), (dh, dw) = self.out_shape, self.stride, self.dilation
        y0, x0 = ky * dh, kx * dw
        return slice(y0, y0 + sh * (OH - 1) + 1, sh), slice(x0, x0 + sw * (OW - 1) + 1, sw)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``y[o, oy, ox] = Σ mask[o, c, ky, kx] · x[c, oy·s − pad + ky·d, ox·s − pad + kx·d]`` (zeros outside)."""
        C, H, W = self.in_shape
        G = self.groups
        xp = np.zeros((C, H + self.pad_lo[0] + self.pad_hi[0], W + self.pad_lo[1] + self.pad_hi[1]))
        xp[:, self.pad_lo[0] : self.pad_lo[0] + H, self.pad_lo[1] : self.pad_lo[1] + W] = np.reshape(x, self.in_shape)
        xg = xp.reshape(G, self.c_in_per_group, xp.shape[1], xp.shape[2])
        out = np.zeros((G, self.c_out_per_group, self.out_shape[1], self.out_shape[2]))
        for ky in range(self.kernel[0]):
            for kx in range(self.kernel[1]):
                m = self._grouped_mask(ky, kx)
                if not m.any():
                    continue
                sy, sx = self._slices(ky, kx)
                out += np.einsum("goc,gchw->gohw", m, xg[:, :, sy, sx], optimize=True)
        return out.reshape(self.out_shape)

    def transpose(self, y: np.ndarray) -> np.ndarray:
        """Adjoint of :meth:`forward`: each output value is sent back to every input that feeds it."""
        C, H, W = self.in_shape
        G = self.groups
        yg = np.reshape(y, (G, self.c_out_per_group, self.out_shape[1], self.out_shape[2])).astype(np.float64)
        xp = np.zeros((G, self.c_in_per_group, H + self.pad_lo[0] + self.pad_hi[0], W + self.pad_lo[1] + self.pad_hi[1]))
        for ky in range(self.kernel[0]):
            for kx in range(self.kernel[1]):
                m = self._grouped_mask(ky, kx)
                if not m.any():
                    continue
                sy, sx = self._slices(ky, kx)
                xp[:, :, sy, sx] += np.einsum("goc,gohw->gchw", m, yg, optimize=True)
        xp = xp.reshape(C, xp.shape[2], xp.shape[3])
        return xp[:, self.pad_lo[0] : self.pad_lo[0] + H, self.pad_lo[1] : self.pad_lo[1] + W]

    def offsets_used(self) -> np.ndarray:
        """``(G, kh, kw)`` bool: kernel offsets with at least one nonzero weight in the group."""
        G = self.groups
        m = self.mask.reshape(G, self.c_out_per_group, self.c_in_per_group, *self.kernel)
        return m.any(axis=(1, 2))

    def receptive_positions(self, out_flat_positions: np.ndarray, used: np.ndarray) -> np.ndarray:
        """Bool ``(H, W)``: input positions read by the given output positions (flat ``oy·OW + ox``)."""
        _, H, W = self.in_shape
        OW = self.out_shape[2]
        oy, ox = np.divmod(out_flat_positions, OW)
        kys, kxs = np.nonzero(used)
        iy = oy[:, None] * self.stride[0] - self.pad_lo[0] + kys[None, :] * self.dilation[0]
        ix = ox[:, None] * self.stride[1] - self.pad_lo[1] + kxs[None, :] * self.dilation[1]
        ok = (iy >= 0) & (iy < H) & (ix >= 0) & (ix < W)
        hit = np.zeros((H, W), dtype=bool)
        hit[iy[ok], ix[ok]] = True
        return hit


def _conv_out(n: int, lo: int, hi: int, d: int, k: int, s: int) -> int:
    return (n + lo + hi - d * (k - 1) - 1) // s + 1


def _conv_geometry(name: str, node, in_shape: tuple[int, ...]) -> ConvGeometry:
    kind = type(node).__name__
    w = np.asarray(node.weight)
    one_d = kind == "Conv1d"
    nd = 1 if one_d else 2
    if w.ndim != nd + 2:
        raise GraphError(f"node {name!r} ({kind}): weight must be {nd + 2}-d (C_out, C_in/groups, kernel...), got shape {w.shape}")
    if len(in_shape) != nd + 1:
        raise GraphError(f"node {name!r} ({kind}): input must be (C, {'L' if one_d else 'H, W'}), got shape {in_shape}")
    groups = _per_dim(node.groups, 1, "groups", name)[0]
    C_out, C_in_g = w.shape[:2]
    if groups < 1 or C_out % groups or in_shape[0] != C_in_g * groups:
        raise GraphError(
            f"node {name!r} ({kind}): input has {in_shape[0]} channels; weight {w.shape} with groups={groups} "
            f"expects {C_in_g * groups} (and C_out divisible by groups)"
        )
    kernel = tuple(int(k) for k in w.shape[2:])
    stride = _per_dim(node.stride, nd, "stride", name)
    dilation = _per_dim(node.dilation, nd, "dilation", name)
    spatial = in_shape[1:]
    if isinstance(node.padding, str):
        if node.padding == "valid":
            lo = hi = (0,) * nd
        elif node.padding == "same":
            if any(s != 1 for s in stride):
                raise GraphError(f"node {name!r}: padding='same' is only defined for stride 1, got stride {stride}")
            total = [d * (k - 1) for d, k in zip(dilation, kernel)]
            lo = tuple(t // 2 for t in total)
            hi = tuple(t - t // 2 for t in total)
        else:
            raise GraphError(f"node {name!r}: padding {node.padding!r} must be 'same', 'valid' or integers")
    else:
        lo = hi = _per_dim(node.padding, nd, "padding", name, minimum=0)
    out_sp = tuple(_conv_out(n, a, b, d, k, s) for n, a, b, d, k, s in zip(spatial, lo, hi, dilation, kernel, stride))
    if any(o < 1 for o in out_sp):
        raise GraphError(f"node {name!r} ({kind}): input {in_shape} is too small for kernel {kernel}, output would be {out_sp}")
    mask = w != 0
    if one_d:  # hold as height 1
        mask = mask[:, :, None, :]
        return ConvGeometry(
            (in_shape[0], 1, spatial[0]), (C_out, 1, out_sp[0]), (1, kernel[0]), (1, stride[0]), (1, dilation[0]),
            (0, lo[0]), (0, hi[0]), groups, mask,
        )
    return ConvGeometry((in_shape[0], *spatial), (C_out, *out_sp), kernel, stride, dilation, lo, hi, groups, mask)


def _pool_geometry(name: str, node, in_shape: tuple[int, ...]) -> ConvGeometry:
    if len(in_shape) != 3:
        raise GraphError(f"node {name!r} ({type(node).__name__}): input must be (C, H, W), got shape {in_shape}")
    kernel = _per_dim(node.kernel_size, 2, "kernel_size", name)
    # stride None: the kernel size, as PyTorch's pooling layers (and older sinabs exports) mean it
    stride = kernel if node.stride is None else _per_dim(node.stride, 2, "stride", name)
    pad = _per_dim(node.padding, 2, "padding", name, minimum=0)
    C = in_shape[0]
    out_sp = tuple(_conv_out(n, p, p, 1, k, s) for n, p, k, s in zip(in_shape[1:], pad, kernel, stride))
    if any(o < 1 for o in out_sp):
        raise GraphError(f"node {name!r}: input {in_shape} is too small for pooling kernel {kernel}")
    mask = np.ones((C, 1, *kernel), dtype=bool)
    return ConvGeometry(tuple(in_shape), (C, *out_sp), kernel, stride, (1, 1), pad, pad, C, mask)


# ---------------------------------------------------------------------------------------------- facts
@dataclass(frozen=True)
class NodeFacts:
    """What one NIR node contributes. Synapse counts are *unrolled connections* (a conv kernel weight
    counts once per output position it is applied at, borders excluded); ``weight_params`` is the stored
    weight tensor's size. A one-to-one recurrence (``one_to_one``, see the module docstring) has ``N`` of both,
    its diagonal, though its NIR node holds an ``N × N`` matrix; a silent (all-zero) recurrence has none."""

    name: str
    node_type: str
    role: str  # input | output | synapse | neuron | pool | reshape
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    neurons: int = 0
    spiking: bool = False
    weight_params: int = 0
    weights_nonzero: int = 0
    synapses_dense: int = 0
    synapses_nonzero: int = 0
    fan_in_max: int = 0
    fan_out_max: int = 0
    one_to_one: bool = False

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Population:
    """Neurons of one node (or the events of an Input node)."""

    name: str
    node_type: str
    shape: tuple[int, ...]
    spiking: bool  # emits spikes (Input events count as spikes)
    on_chip: bool  # False for Input nodes: their events arrive from outside

    @property
    def neurons(self) -> int:
        return int(np.prod(self.shape))


@dataclass(frozen=True)
class Projection:
    """Connection ``source → pre_path → synapse → post_path → target`` (synapse None: one-to-one)."""

    source: str
    synapse: str | None
    target: str
    pre_path: tuple[str, ...] = ()
    post_path: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.source}->{self.synapse or 'identity'}->{self.target}"


@dataclass(frozen=True)
class SynopCount:
    """Synaptic operations per inference (mean over samples).

    Attributes:
        per_projection: projection label -> synops over the whole run.
        per_projection_step: projection label -> ``(T,)`` synops per step.
        per_target: target population -> synops it receives over the run.
        total: all synops of one inference.
        exact: projection labels whose count used per-neuron spike counts (others assumed even spread).
    """

    per_projection: dict[str, float]
    per_projection_step: dict[str, np.ndarray]
    per_target: dict[str, float]
    total: float
    exact: tuple[str, ...]


class GraphFacts:
    """Result of :func:`analyze`: node facts, populations, projections and fan-in/fan-out arrays.

    Fan-out arrays count nonzero-weight connections; arrays are computed once and cached. ``notes`` holds what
    the analysis assumed about the graph (e.g. an implicit Input node in front of a graph that has none).
    """

    def __init__(self, graph: nir.NIRGraph, nodes: dict[str, NodeFacts], populations: dict[str, Population],
                 projections: list[Projection], geoms: dict[str, ConvGeometry], masks: dict[str, np.ndarray],
                 notes: tuple[str, ...] = ()):
        self.notes = tuple(notes)
        self.graph = graph
        self.nodes = nodes
        self.populations = populations
        self.projections = projections
        self._geoms = geoms
        self._masks = masks  # Linear/Affine: (N_out, N_in) bool nonzero mask
        self._cache: dict = {}

    # ---- totals
    @property
    def neurons(self) -> int:
        """Neurons on the chip: every neuron population, readout accumulators into an Output node included
        (Input events come from outside and are not counted)."""
        return sum(p.neurons for p in self.populations.values() if p.on_chip)

    @property
    def synapses_dense(self) -> int:
        return sum(f.synapses_dense for f in self.nodes.values())

    @property
    def synapses_nonzero(self) -> int:
        return sum(f.synapses_nonzero for f in self.nodes.values())

    @property
    def input_names(self) -> list[str]:
        return [n for n, p in self.populations.items() if not p.on_chip]

    def synapse_nodes(self) -> list[str]:
        return [n for n, f in self.nodes.items() if f.role == "synapse"]

    def projections_from(self, source: str) -> list[Projection]:
        return [p for p in self.projections if p.source == source]

    def projections_to(self, target: str) -> list[Projection]:
        return [p for p in self.projections if p.target == target]

    def recurrent_populations(self) -> list[str]:
        """On-chip populations that reach themselves through on-chip projections (self-loops included)."""
        pops = [n for n, p in self.populations.items() if p.on_chip]
        on_chip = set(pops)
        edges = {p: {q.target for q in self.projections_from(p) if q.target in on_chip} for p in pops}

        def reaches(start: str, goal: str) -> bool:
            stack, seen = list(edges[start]), set()
            while stack:
                n = stack.pop()
                if n == goal:
                    return True
                if n not in seen:
                    seen.add(n)
                    stack.extend(edges[n])
            return False

        return [p for p in pops if reaches(p, p)]

    def geometry(self, name: str) -> ConvGeometry | None:
        """Convolution/pool geometry of a node, or None (Linear, Affine, others)."""
        return self._geoms.get(name)

    def linear_mask(self, name: str) -> np.ndarray | None:
        """``(N_out, N_in)`` bool nonzero mask of a Linear/Affine node, or None."""
        return self._masks.get(name)

    # ---- per-node arrays at the synapse level
    def synapse_fan_out(self, name: str) -> np.ndarray:
        """Nonzero connections leaving each input position of synapse node ``name`` (its input shape)."""
        key = ("syn_fan_out", name)
        if key not in self._cache:
            f = self.nodes[name]
            if name in self._masks:
                out = self._masks[name].sum(axis=0).astype(np.float64)
            else:
                g = self._geoms[name]
                out = g.transpose(np.ones(g.out_shape))
            self._cache[key] = np.reshape(out, f.input_shape)
        return self._cache[key]

    def synapse_fan_in(self, name: str) -> np.ndarray:
        """Nonzero connections arriving at each output position of synapse node ``name`` (its output shape)."""
        key = ("syn_fan_in", name)
        if key not in self._cache:
            f = self.nodes[name]
            if name in self._masks:
                out = self._masks[name].sum(axis=1).astype(np.float64)
            else:
                g = self._geoms[name]
                out = g.forward(np.ones(g.in_shape))
            self._cache[key] = np.reshape(out, f.output_shape)
        return self._cache[key]

    def synapse_forward(self, name: str, x: np.ndarray) -> np.ndarray:
        """Events at the input of ``name`` -> synaptic events received per output position (nonzero mask)."""
        f = self.nodes[name]
        if name in self._masks:
            return (self._masks[name] @ np.reshape(x, -1).astype(np.float64)).reshape(f.output_shape)
        return self._geoms[name].forward(x).reshape(f.output_shape)

    # ---- paths
    def _path_forward(self, path: Iterable[str], x: np.ndarray) -> np.ndarray:
        for n in path:
            f = self.nodes[n]
            if f.role == "pool":
                x = self._geoms[n].forward(x)
            x = np.reshape(x, f.output_shape)
        return x

    def _path_transpose(self, path: Iterable[str], y: np.ndarray) -> np.ndarray:
        for n in reversed(tuple(path)):
            f = self.nodes[n]
            y = np.reshape(y, f.output_shape)
            if f.role == "pool":
                y = self._geoms[n].transpose(y)
            y = np.reshape(y, f.input_shape)
        return y

    def measured_pool(self, activity, proj: Projection) -> str | None:
        """The last pooling node between ``proj``'s source and its synapse input whose output events ``activity``
        measured (a max pool), or, failing that, ``proj``'s synapse when it is such a pool; None otherwise."""
        if activity is None:
            return None
        for n in reversed((*proj.pre_path, proj.synapse)):
            if n is not None and self.nodes[n].role == "pool" and n in activity.spikes_per_step:
                return n
        return None

    def projection_series(self, activity, proj: Projection) -> np.ndarray:
        """``(T,)`` events per step entering ``proj``: its source's spikes, or a measured pool's output events."""
        pool = self.measured_pool(activity, proj)
        return self.source_series(activity, proj.source) if pool is None else activity.spikes_per_step[pool]

    def pool_counts(self, activity, name: str) -> np.ndarray:
        """Measured events per output position of pooling node ``name`` over the run (its output shape); without a
        ``spike_counts`` entry its total is spread evenly."""
        shape = self.nodes[name].output_shape
        if name in activity.spike_counts:
            return _in_layout(activity.spike_counts[name], shape, name, "pooling node")
        return np.full(shape, float(activity.spikes_per_step[name].sum()) / int(np.prod(shape)))

    def events_at_synapse(self, proj: Projection, source_counts: np.ndarray, activity=None) -> np.ndarray:
        """Source spike counts -> events arriving at the synapse node's input (through Flatten/pools).

        With ``activity``, the path starts after the last pool whose output events it measured (those events
        replace the sum of the source's spikes there; ``source_counts`` is then unused).
        """
        pool = self.measured_pool(activity, proj)
        if pool is not None and pool in proj.pre_path:
            i = proj.pre_path.index(pool)
            return self._path_forward(proj.pre_path[i + 1:], self.pool_counts(activity, pool))
        x = np.reshape(np.asarray(source_counts, dtype=np.float64), self.populations[proj.source].shape)
        return self._path_forward(proj.pre_path, x)

    def projection_fan_out(self, proj: Projection) -> np.ndarray:
        """Synaptic operations one spike of each source neuron causes in this projection (source shape)."""
        key = ("proj_fan_out", proj)
        if key not in self._cache:
            src_shape = self.populations[proj.source].shape
            if proj.synapse is None:
                out = np.ones(src_shape)
            else:
                out = np.reshape(self._path_transpose(proj.pre_path, self.synapse_fan_out(proj.synapse)), src_shape)
            self._cache[key] = out
        return self._cache[key]

    def projection_fan_in(self, proj: Projection) -> np.ndarray:
        """Nonzero connections of this projection arriving at each target neuron (target shape)."""
        key = ("proj_fan_in", proj)
        if key not in self._cache:
            tgt_shape = self.populations[proj.target].shape
            if proj.synapse is None:
                out = np.ones(tgt_shape)
            else:
                out = np.reshape(self.synapse_fan_in(proj.synapse), tgt_shape)
            self._cache[key] = out
        return self._cache[key]

    def fan_out(self, population: str) -> np.ndarray:
        """Total synaptic operations caused by one spike of each neuron of ``population`` (its shape)."""
        self._check_population(population)
        out = np.zeros(self.populations[population].shape)
        for p in self.projections_from(population):
            out = out + self.projection_fan_out(p)
        return out

    def fan_in(self, population: str) -> np.ndarray:
        """Nonzero synapses arriving at each neuron of ``population`` from all its projections (its shape)."""
        self._check_population(population)
        out = np.zeros(self.populations[population].shape)
        for p in self.projections_to(population):
            out = out + self.projection_fan_in(p)
        return out

    def received(self, proj: Projection, source_counts: np.ndarray, activity=None) -> np.ndarray:
        """Synaptic events each target neuron receives for the given source spike counts (target shape); with
        ``activity``, a measured pool's events replace the sum of its inputs (:meth:`events_at_synapse`)."""
        tgt_shape = self.populations[proj.target].shape
        if proj.synapse is None:
            return np.reshape(np.asarray(source_counts, dtype=np.float64), tgt_shape)
        if proj.synapse == self.measured_pool(activity, proj):  # a max pool into the neurons: its own events
            return np.reshape(self.pool_counts(activity, proj.synapse), tgt_shape)
        e = self.events_at_synapse(proj, source_counts, activity)
        return np.reshape(self.synapse_forward(proj.synapse, e), tgt_shape)

    def _check_population(self, name: str) -> None:
        if name not in self.populations:
            raise GraphError(f"{name!r} is not a neuron population or input of this graph; populations: {list(self.populations)}")

    # ---- activity
    def source_series(self, activity, population: str) -> np.ndarray:
        """``(T,)`` spikes per step of a population (Input nodes fall back to ``input_events_per_step``)."""
        pop = self.populations[population]
        if population in activity.spikes_per_step:
            return activity.spikes_per_step[population]
        if not pop.on_chip and len(self.input_names) == 1:
            return activity.input_events_per_step
        if not pop.spiking:
            return np.zeros(activity.time_steps)
        raise GraphError(
            f"activity has no spikes for {pop.node_type} node {population!r}; recorded nodes: {activity.nodes}"
            + ("; with several Input nodes each needs its own spikes_per_step entry" if not pop.on_chip else "")
        )

    def source_counts(self, activity, population: str) -> tuple[np.ndarray, bool]:
        """Spike counts per neuron over the run (population shape) and whether they were measured per neuron.

        Without a ``spike_counts`` entry the node's total is spread evenly over its neurons. A ``spike_counts``
        entry must have the node's shape, up to leading 1s, or be flat ``(N,)`` in the node's (C-)order.
        """
        pop = self.populations[population]
        if population in activity.spike_counts:
            return _in_layout(activity.spike_counts[population], pop.shape, population, f"{pop.node_type} node"), True
        total = float(self.source_series(activity, population).sum())
        return np.full(pop.shape, total / pop.neurons), False

    def check_activity(self, activity) -> None:
        """Raise :class:`GraphError` when the activity names unknown nodes, misses a spiking node, claims more
        spikes than a node can emit (a neuron at most once per step, a max pool at most one event per window and
        step) or more neuron updates than neurons (``updates_per_step``, or updates of a node that is not an on-chip
        population), gives spike counts in another layout than the node's, or disagrees with itself about the input
        events; also when a non-spiking population feeds a weight or pooling layer (see
        :meth:`check_spike_driven`)."""
        self.check_spike_driven()
        known = set(self.populations)
        T = activity.time_steps
        unknown = [n for n in activity.spikes_per_step if n not in self.nodes]
        if unknown:
            # from_spike_trains stores the input under input_name="input": another name for the graph's Input node
            # (a graph not written by neurosim or snnTorch) needs it given
            inputs = [n for n in self.input_names if n in self.nodes and n not in activity.spikes_per_step]
            hint = (f"; the graph's Input node is {inputs[0]!r}: record its events under that name "
                    f"(ActivityProfile.from_spike_trains(..., input_name={inputs[0]!r}))"
                    if "input" in unknown and len(inputs) == 1 else "")
            raise GraphError(f"activity names nodes {unknown} that are not in the graph; graph nodes: "
                             f"{list(self.nodes)}{hint}")
        pools = [n for n in activity.spikes_per_step if n not in known and self.nodes[n].role == "pool"]
        not_pop = [n for n in activity.spikes_per_step if n not in known and n not in pools]
        if not_pop:
            raise GraphError(
                f"activity records spikes for {not_pop}, which are not neuron, Input or pooling nodes; populations: "
                f"{sorted(known)}"
            )
        for name in pools:  # measured events leaving a max pool: at most one per window and step
            windows = int(np.prod(self.nodes[name].output_shape))
            series = activity.spikes_per_step[name]
            if series.max() > windows * (1 + 1e-9):
                t = int(series.argmax())
                raise GraphError(
                    f"activity for pooling node {name!r} has {series[t]:g} events at step {t} but the pool has only "
                    f"{windows} windows; its measured events are those leaving a max pool (at most one per window "
                    "and step). To count a sum pool, which passes on every spike, leave the node out of the activity"
                )
            _check_per_unit(self.pool_counts(activity, name), T, name, "pooling node", "window passes an event")
        for name, pop in self.populations.items():
            series = self.source_series(activity, name)
            if pop.on_chip and pop.spiking and series.size and series.max() > pop.neurons * (1 + 1e-9):
                t = int(series.argmax())
                raise GraphError(
                    f"activity for {name!r} has {series[t]:g} spikes at step {t} but the node has only {pop.neurons} "
                    "neurons (a neuron spikes at most once per step)"
                )
            counts, measured = self.source_counts(activity, name)  # shape check
            if measured and pop.on_chip and pop.spiking:
                _check_per_unit(counts, T, name, f"{pop.node_type} node", "neuron spikes")
        on_chip = [n for n, p in self.populations.items() if p.on_chip]
        stray = [n for n in activity.updates_per_step if n not in on_chip]
        if stray:
            raise GraphError(f"activity gives updates_per_step for {stray}, which are not neuron populations on the "
                             f"chip; those are {on_chip}. Record updates for neuron layers only")
        for name, series in activity.updates_per_step.items():
            neurons = self.populations[name].neurons
            if series.size and series.max() > neurons * (1 + 1e-9):
                t = int(series.argmax())
                raise GraphError(f"activity for {name!r} has {series[t]:g} neuron updates at step {t} but the node has "
                                 f"only {neurons} neurons (a neuron is updated at most once per step)")
        inputs = self.input_names
        if all(n in activity.spikes_per_step for n in inputs) and inputs and activity.input_events_per_step.any():
            a = sum(float(activity.spikes_per_step[n].sum()) for n in inputs)
            b = float(activity.input_events_per_step.sum())
            if not math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9):
                what = f"input node {inputs[0]!r}: spikes_per_step sums" if len(inputs) == 1 else (
                    f"the spikes_per_step entries of the Input nodes {inputs} sum")
                raise GraphError(f"{what} to {a:g} events but input_events_per_step to {b:g}; both count the events "
                                 "entering the graph")

    def check_spike_driven(self) -> None:
        """Raise :class:`GraphError` when a non-spiking population (LI, CubaLI, I) feeds a weight or pooling layer.

        Its graded output reaches the next layer at every step from every neuron: a dense layer, which the
        spike-driven models here (synops = spikes × fan-out, messages = spikes × destination cores) would count as
        zero operations. A digital neuromorphic chip routes spikes only, so such a layer is refused rather than
        costed by a guess. Non-spiking neurons as the network's readout (feeding an ``Output`` node, or a
        neuron one-to-one) are fine.
        """
        for proj in self.projections:
            pop = self.populations[proj.source]
            if pop.on_chip and not pop.spiking and proj.synapse is not None:
                raise GraphError(
                    f"{pop.node_type} node {proj.source!r} is non-spiking: its graded output feeds "
                    f"{self.nodes[proj.synapse].node_type} node {proj.synapse!r} (-> {proj.target!r}) at every step, "
                    "and the hardware models cost spike-driven layers only (a neuromorphic chip routes spikes). "
                    f"Make {proj.source!r} a spiking neuron (LIF, IF or CubaLIF), or keep non-spiking neurons as "
                    "the readout at the end of the network"
                )

    def synops(self, activity) -> SynopCount:
        """Synaptic operations per inference: Σ over source spikes of that neuron's actual fan-out.

        Per step, a projection's synops follow its source's spikes per step (the spatial distribution of
        a node's spikes is taken to be the same at every step).
        """
        self.check_activity(activity)
        per, per_step, per_target, exact = {}, {}, {}, []
        for proj in self.projections:
            pool = self.measured_pool(activity, proj)
            series = self.projection_series(activity, proj)
            if pool is None:
                counts, measured = self.source_counts(activity, proj.source)
                total = float(np.dot(counts.ravel(), self.projection_fan_out(proj).ravel()))
            else:  # the measured events leaving a max pool, each with its fan-out from there on
                measured = pool in activity.spike_counts
                if pool == proj.synapse:
                    total = float(self.pool_counts(activity, pool).sum())  # one event into one neuron
                else:
                    ev = self.events_at_synapse(proj, None, activity)
                    total = float(np.dot(ev.ravel(), self.synapse_fan_out(proj.synapse).ravel()))
            s = float(series.sum())
            step = series * (total / s) if s > 0 else np.zeros_like(series)
            per[proj.label] = total
            per_step[proj.label] = step
            per_target[proj.target] = per_target.get(proj.target, 0.0) + total
            if measured:
                exact.append(proj.label)
        return SynopCount(per, per_step, per_target, float(sum(per.values())), tuple(exact))

    def to_dict(self) -> dict:
        """Per-node facts and totals as plain JSON-ready data."""
        return {
            "neurons": self.neurons,
            "synapses_dense": self.synapses_dense,
            "synapses_nonzero": self.synapses_nonzero,
            "nodes": {n: f.to_dict() for n, f in self.nodes.items()},
            "projections": [p.label for p in self.projections],
        }


def _in_layout(counts: np.ndarray, shape: tuple[int, ...], name: str, what: str) -> np.ndarray:
    """``counts`` in ``shape`` when it has that shape (up to leading 1s) or is flat; GraphError otherwise.

    Same size is not enough: counts laid out channel-last ``(H, W, C)`` for a ``(C, H, W)`` node would be
    reshaped into the wrong positions without a word.
    """
    def core(s: tuple[int, ...]) -> tuple[int, ...]:
        i = 0
        while i < len(s) and s[i] == 1:
            i += 1
        return tuple(s[i:])

    n = int(np.prod(shape))
    if counts.shape == (n,) or core(counts.shape) == core(tuple(shape)):
        return np.reshape(counts, shape)
    raise GraphError(
        f"spike_counts[{name!r}] has shape {counts.shape} but {what} {name!r} has output shape {tuple(shape)}; give "
        f"the counts in the node's own layout ({tuple(shape)}, or flat ({n},) in that order), e.g. channels first "
        "(C, H, W), not (H, W, C)"
    )


def _check_per_unit(counts: np.ndarray, T: int, name: str, what: str, unit: str) -> None:
    """GraphError when a neuron (or pooling window) has more events over the run than the run has steps."""
    if counts.size and counts.max() > T * (1 + 1e-9):
        i = np.unravel_index(int(counts.argmax()), counts.shape)
        raise GraphError(
            f"spike_counts[{name!r}] has {counts[i]:g} events at index {tuple(int(v) for v in i)} of {what} "
            f"{name!r} in a run of {T} steps; a {unit} at most once per step"
        )


# ---------------------------------------------------------------------------------------------- analysis
def _intrinsic_shapes(name: str, node) -> tuple[tuple | None, tuple | None]:
    kind = type(node).__name__
    if kind == "Input":
        s = _defined(node.input_type, "input")
        return s, s
    if kind == "Output":
        s = _defined(node.output_type, "output")
        return s, s
    if kind in ("Linear", "Affine"):
        w = np.asarray(node.weight)
        if w.ndim != 2:
            raise GraphError(f"node {name!r} ({kind}): weight must be 2-d (N_out, N_in), got shape {w.shape}")
        return (int(w.shape[1]),), (int(w.shape[0]),)
    if kind in SPIKING_TYPES + NONSPIKING_TYPES:
        s = _defined(node.output_type, "output")
        if s == ():  # 0-d parameters shared by the whole population (snnTorch's export): shape from the edge
            return None, None
        return s, s
    s = _defined(getattr(node, "input_type", None), "input")
    if kind in ("Conv1d", "Conv2d") and s is not None and np.ndim(node.weight) >= 2:
        # nir derives a conv's input channels from weight.shape[1], which is C_in / groups for a grouped conv:
        # take the channels from the weight and groups, and only the spatial size from the declared type
        s = (int(np.asarray(node.weight).shape[1]) * int(getattr(node, "groups", 1) or 1), *s[1:])
    return s, None


def _check_weight(name: str, node) -> None:
    """GraphError unless the synapse node's weight is an array of finite numbers."""
    kind = type(node).__name__
    try:
        w = np.asarray(node.weight, dtype=np.float64)
    except (TypeError, ValueError):
        raise GraphError(f"node {name!r} ({kind}): weight is not an array of numbers "
                         f"(got {type(node.weight).__name__})") from None
    bad = int(np.count_nonzero(~np.isfinite(w)))
    if bad:
        raise GraphError(f"node {name!r} ({kind}): {bad} of its {w.size} weights are NaN or infinite (a diverged "
                         "training run?); the hardware models need finite weights")


def _compute_output(name: str, node, in_shape: tuple[int, ...], geoms: dict) -> tuple[int, ...]:
    kind = type(node).__name__
    if kind in ("Conv1d", "Conv2d"):
        g = _conv_geometry(name, node, in_shape)
        geoms[name] = g
        return (g.out_shape[0], g.out_shape[2]) if kind == "Conv1d" else g.out_shape
    if kind in POOL_TYPES:
        g = _pool_geometry(name, node, in_shape)
        geoms[name] = g
        return g.out_shape
    if kind == "Flatten":
        nd = len(in_shape)
        start = node.start_dim + nd if node.start_dim < 0 else node.start_dim
        end = node.end_dim + nd if node.end_dim < 0 else node.end_dim
        if not (0 <= start <= end < nd):
            raise GraphError(f"node {name!r} (Flatten): dims {node.start_dim}..{node.end_dim} do not fit input shape {in_shape}")
        return tuple(in_shape[:start]) + (int(np.prod(in_shape[start : end + 1])),) + tuple(in_shape[end + 1 :])
    return in_shape


def _infer(graph: nir.NIRGraph) -> tuple[dict, dict, dict]:
    nodes = graph.nodes
    unsupported = {n: type(v).__name__ for n, v in nodes.items() if type(v).__name__ not in SUPPORTED_TYPES}
    if unsupported:
        raise GraphError(f"nodes of unsupported types: {unsupported}; hardware models read {list(SUPPORTED_TYPES)}")
    seen = set()
    for a, b in graph.edges:
        for n in (a, b):
            if n not in nodes:
                raise GraphError(f"edge ({a!r}, {b!r}) names node {n!r}, which is not in the graph; nodes: {list(nodes)}")
        if (a, b) in seen:  # nir's own type check refuses it too; counted twice, it would double the connection
            raise GraphError(f"edge ({a!r}, {b!r}) is listed twice; list each connection once")
        seen.add((a, b))
    for n, node in nodes.items():
        if type(node).__name__ in SYNAPSE_TYPES:
            _check_weight(n, node)
    ins, outs, geoms = {}, {}, {}
    for n, node in nodes.items():
        ins[n], outs[n] = _intrinsic_shapes(n, node)
        if outs[n] is None and ins[n] is not None:
            outs[n] = _compute_output(n, node, ins[n], geoms)
    changed = True
    while changed:
        changed = False
        for a, b in graph.edges:
            if outs[a] is None or ins[b] is not None:
                continue
            ins[b] = outs[a]
            if outs[b] is None:
                outs[b] = _compute_output(b, nodes[b], ins[b], geoms)
            changed = True
    missing = [n for n in nodes if ins[n] is None or outs[n] is None]
    if missing:
        raise GraphError(f"cannot infer the shapes of nodes {missing}; give the graph's Input node a shape")
    for a, b in graph.edges:
        sa, sb = outs[a], ins[b]
        if sa == sb:
            continue
        lenient = type(nodes[b]).__name__ in SPIKING_TYPES + NONSPIKING_TYPES + ("Output",)
        if not (lenient and int(np.prod(sa)) == int(np.prod(sb))):
            raise GraphError(f"shape mismatch on edge {a!r} -> {b!r}: {a!r} outputs {sa} but {b!r} takes {sb}")
    return ins, outs, geoms


def flatten_graph(graph: nir.NIRGraph, sep: str = ".") -> nir.NIRGraph:
    """Inline nested ``NIRGraph`` nodes (subgraphs, e.g. snnTorch's ``RLeaky``/``RSynaptic`` exports) into one graph.

    Every node of a subgraph ``s`` is renamed ``s.<inner name>`` (recursively: ``a.b.c``). An edge into ``s`` goes
    to the successors of its ``Input`` node, an edge out of ``s`` comes from the predecessors of its ``Output``
    node, and the subgraph's own Input and Output nodes disappear. An edge may also name an inner node directly
    (``"s.lif"``), or, when the subgraph has several Input or Output nodes, the one it means (``"s.input_b"``).

    Args:
        graph: a NIR graph, nested or not.
        sep: joins a subgraph's name and its inner node names.

    Returns:
        ``graph`` itself when it has no subgraph; otherwise a new graph (built with ``type_check=False``) that
        shares the node objects (nothing is copied or modified).

    Raises:
        GraphError: a subgraph with no Input (Output) node that an edge goes into (comes out of), several where
            the edge does not say which, or a flattened name that another node already has.

    Example:
        >>> import numpy as np, nir
        >>> o = np.ones(3)
        >>> rec = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([3])),
        ...     "lif": nir.LIF(tau=o, r=o, v_leak=0 * o, v_threshold=o), "w_rec": nir.Linear(weight=np.eye(3)),
        ...     "output": nir.Output(output_type=np.array([3]))},
        ...     edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")])
        >>> g = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([4])),
        ...     "fc": nir.Linear(weight=np.ones((3, 4))), "rleaky": rec,
        ...     "output": nir.Output(output_type=np.array([3]))},
        ...     edges=[("input", "fc"), ("fc", "rleaky"), ("rleaky", "output")])
        >>> flat = flatten_graph(g)
        >>> list(flat.nodes)
        ['input', 'fc', 'rleaky.lif', 'rleaky.w_rec', 'output']
        >>> flat.edges[1:]
        [('fc', 'rleaky.lif'), ('rleaky.lif', 'rleaky.w_rec'), ('rleaky.w_rec', 'rleaky.lif'), ('rleaky.lif', 'output')]
    """
    if not any(isinstance(n, nir.NIRGraph) for n in graph.nodes.values()):
        return graph
    nodes: dict[str, object] = {}
    ports: dict[str, tuple[list[str], list[str]]] = {}  # subgraph -> (its Input names, its Output names), prefixed
    inner_edges: list[tuple[str, str]] = []

    def add(name: str, node) -> None:
        if name in nodes:
            raise GraphError(f"flattening the nested NIR graphs gives two nodes named {name!r}; rename one of them")
        nodes[name] = node

    for name, node in graph.nodes.items():
        if not isinstance(node, nir.NIRGraph):
            add(name, node)
            continue
        inner = flatten_graph(node, sep)
        for k, v in inner.nodes.items():
            add(f"{name}{sep}{k}", v)
        ports[name] = ([f"{name}{sep}{k}" for k, v in inner.nodes.items() if isinstance(v, nir.Input)],
                       [f"{name}{sep}{k}" for k, v in inner.nodes.items() if isinstance(v, nir.Output)])
        inner_edges += [(f"{name}{sep}{a}", f"{name}{sep}{b}") for a, b in inner.edges]

    def port(edge: tuple[str, str], end: str, into: bool) -> str:
        if end not in ports:
            return end
        names = ports[end][0 if into else 1]
        kind = "Input" if into else "Output"
        if len(names) != 1:
            raise GraphError(
                f"edge {edge} goes {'into' if into else 'out of'} subgraph {end!r}, which has "
                + (f"no {kind} node; give the subgraph one" if not names else
                   f"{len(names)} {kind} nodes {names}; name the one the edge means, e.g. {names[0]!r}")
            )
        return names[0]

    edges = [(port((a, b), a, False), port((a, b), b, True)) for a, b in graph.edges] + inner_edges
    for p in [n for ins, outs in ports.values() for n in ins + outs]:  # contract the inner Input/Output nodes
        succ = [b for a, b in edges if a == p and b != p]
        flat: list[tuple[str, str]] = []
        for a, b in edges:
            if b == p and a != p:
                flat += [(a, s) for s in succ]
            elif p not in (a, b):
                flat.append((a, b))
        edges = flat
        del nodes[p]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=dict(graph.metadata or {}), type_check=False)


def _implicit_input(graph: nir.NIRGraph) -> tuple[nir.NIRGraph, tuple[str, ...]]:
    """``graph`` with an ``Input`` node in front of its one root synapse, pooling or Flatten node, and a note.

    A node that nothing feeds (no edge into it) and that is not a population starts no projection: the layer it
    begins would silently drop out of the counts. ``nir.read(..., type_check=False)`` of a graph saved without an
    Input node gives such a graph; nir's own type inference (``NIRGraph.infer_types``) puts an ``Input`` named
    ``input_<node>`` in front of every root node, and so does this, for the one such root, when the graph has no
    Input node: the activity's ``input_events_per_step`` are then that node's events, as they would be behind
    an explicit Input. With an Input node already there, or several such roots, which events enter where is not
    known, and a GraphError asks for Input nodes instead. The graph is not modified: a new one shares its nodes.
    """
    if any(n not in graph.nodes for edge in graph.edges for n in edge):
        return graph, ()  # _infer names the unknown node, a likelier cause of a node that nothing feeds
    fed = {b for _, b in graph.edges}
    roots = [n for n, v in graph.nodes.items()
             if n not in fed and type(v).__name__ in SYNAPSE_TYPES + POOL_TYPES + RESHAPE_TYPES]
    if not roots:
        return graph, ()
    named = [f"{r!r} ({type(graph.nodes[r]).__name__})" for r in roots]
    inputs = [n for n, v in graph.nodes.items() if isinstance(v, nir.Input)]
    if inputs or len(roots) > 1:
        why = (f"the graph's Input node(s) {inputs} do not reach them" if inputs else
               "with several such nodes and no Input node, the input events cannot be assigned to them")
        raise GraphError(
            f"node(s) {', '.join(named)} have no edge into them: no population feeds them, so the layers they "
            f"start would count no operations ({why}). Add an Input node (nir.Input(input_type=...)) in front of "
            "each with an edge to it, and give each Input's events under its name in the activity's spikes_per_step"
        )
    root = roots[0]
    shape, _ = _intrinsic_shapes(root, graph.nodes[root])
    if shape is None:
        raise GraphError(f"node {named[0]} has no edge into it and no declared input shape; add an Input node with "
                         "the graph's input shape (nir.Input(input_type=...)) and an edge from it to the node")
    name, i = f"input_{root}", 0
    while name in graph.nodes:  # nir's naming: input_<node>, then input_<node>_0, _1, ...
        name, i = f"input_{root}_{i}", i + 1
    nodes = {name: nir.Input(input_type=np.array(shape)), **graph.nodes}
    note = (f"the graph has no Input node: node {named[0]} has no edge into it, so an implicit Input node {name!r} "
            f"of shape {shape} feeds it (as nir's type inference adds one); the activity's input_events_per_step "
            "are its events")
    return nir.NIRGraph(nodes=nodes, edges=[(name, root), *graph.edges], metadata=dict(graph.metadata or {}),
                        type_check=False), (note,)


def analyze(graph: nir.NIRGraph) -> GraphFacts:
    """Read a NIR graph into :class:`GraphFacts`. The graph is not modified.

    Nested subgraphs are inlined first (:func:`flatten_graph`): their nodes are then named ``subgraph.node``
    (e.g. ``rleaky.lif`` for snnTorch's ``RLeaky`` export), in the facts and in the activity alike, and
    ``GraphFacts.graph`` is the flattened graph.

    A graph with no Input node that starts at a synapse, pooling or Flatten node (e.g. read with
    ``nir.read(..., type_check=False)``) is fed there by an implicit Input node ``input_<node>``, as nir's type
    inference adds one: ``GraphFacts.graph`` then has it, and ``GraphFacts.notes`` says so. A weight node on
    self-loops only whose weights are all zero is left out of the projections (module docstring), with a note too;
    any other all-zero weight node is costed as the graph says, and noted.

    Raises:
        GraphError: unsupported node types, unknown endpoints or duplicate edges, shapes that cannot be inferred or
            do not match, weights that are NaN or infinite, a path the models cannot interpret (e.g. a synapse
            node feeding another synapse node), or synapse, pooling or Flatten nodes that nothing feeds when no
            single implicit Input node can (an Input node elsewhere in the graph, or several such nodes).
    """
    if not isinstance(graph, nir.NIRGraph):
        raise GraphError(f"expected a nir.NIRGraph, got {type(graph).__name__}")
    graph = flatten_graph(graph)
    graph, notes = _implicit_input(graph)
    ins, outs, geoms = _infer(graph)
    nodes = graph.nodes
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in graph.edges:
        succ[a].append(b)

    masks: dict[str, np.ndarray] = {}
    facts: dict[str, NodeFacts] = {}
    for n, node in nodes.items():
        kind = type(node).__name__
        if outs[n] is not None and kind != "Output" and 0 in tuple(outs[n]):
            raise GraphError(f"node {n!r} ({kind}) has no elements (shape {tuple(outs[n])}): every layer needs at "
                             "least one neuron or output")
        base = dict(name=n, node_type=kind, input_shape=ins[n], output_shape=outs[n])
        if kind in SYNAPSE_TYPES:
            w = np.asarray(node.weight)
            if kind in ("Linear", "Affine"):
                m = w != 0
                masks[n] = m
                dense_fi = np.full(w.shape[0], w.shape[1])
                nz_fi, nz_fo = m.sum(axis=1), m.sum(axis=0)
            else:
                g = geoms[n]
                dense_g = ConvGeometry(g.in_shape, g.out_shape, g.kernel, g.stride, g.dilation, g.pad_lo, g.pad_hi,
                                       g.groups, np.ones_like(g.mask))
                dense_fi = dense_g.forward(np.ones(g.in_shape))
                nz_fi = g.forward(np.ones(g.in_shape))
                nz_fo = g.transpose(np.ones(g.out_shape))
            facts[n] = NodeFacts(
                **base, role="synapse", weight_params=int(w.size), weights_nonzero=int(np.count_nonzero(w)),
                synapses_dense=int(round(dense_fi.sum())), synapses_nonzero=int(round(nz_fi.sum())),
                fan_in_max=int(nz_fi.max()), fan_out_max=int(nz_fo.max()),
            )
        elif kind in SPIKING_TYPES + NONSPIKING_TYPES:
            facts[n] = NodeFacts(**base, role="neuron", neurons=int(np.prod(outs[n])), spiking=kind in SPIKING_TYPES)
        elif kind in POOL_TYPES:
            facts[n] = NodeFacts(**base, role="pool")
        elif kind == "Flatten":
            facts[n] = NodeFacts(**base, role="reshape")
        else:
            facts[n] = NodeFacts(**base, role=kind.lower())

    populations: dict[str, Population] = {}
    for n, f in facts.items():
        if f.role == "input":
            populations[n] = Population(n, "Input", f.output_shape, spiking=True, on_chip=False)
        elif f.role == "neuron":
            populations[n] = Population(n, f.node_type, f.output_shape, spiking=f.spiking, on_chip=True)

    projections: list[Projection] = []
    for src in list(populations):
        stack: list[tuple[str, tuple[str, ...]]] = [(nxt, ()) for nxt in succ[src]]
        while stack:
            cur, pre = stack.pop()
            f = facts[cur]
            if f.role in ("reshape", "pool"):
                stack.extend((nxt, pre + (cur,)) for nxt in succ[cur])
            elif f.role == "synapse":
                projections.extend(_after_synapse(src, cur, pre, succ, facts, populations))
            elif f.role == "neuron":
                pools = [i for i, p in enumerate(pre) if facts[p].role == "pool"]
                if pools:  # the last pool is the synapse (weights 1); flattens after it are the post path
                    i = pools[-1]
                    if any(facts[p].role == "pool" for p in pre[i + 1 :]):
                        raise GraphError(f"path {src!r} -> {cur!r} has pools after each other: {pre}")
                    projections.append(Projection(src, pre[i], cur, pre[:i], pre[i + 1 :]))
                else:
                    projections.append(Projection(src, None, cur, (), pre))
            elif f.role == "output":
                continue
            elif f.role == "input":
                raise GraphError(f"edge into Input node {cur!r} from {src!r}; Input nodes take no edges")
    silent = _silent_loops(projections, facts)
    if silent:  # no spike crosses them: no synapses, crossbar rows or core memory, on any target
        projections = [p for p in projections if p.synapse not in silent]
        for syn in silent:
            facts[syn] = replace(facts[syn], weight_params=0, synapses_dense=0)  # (its nonzero counts are 0 already)
        notes = (*notes, f"recurrent weight(s) {', '.join(map(repr, silent))} are all zero: no spike crosses them, so "
                         "they are costed as no connection (no synapses, crossbar rows or core memory)")
    zero = list(dict.fromkeys(p.synapse for p in projections if p.synapse is not None
                              and facts[p.synapse].role == "synapse" and facts[p.synapse].weights_nonzero == 0))
    if zero:  # kept (dropping it would change which layers the graph joins), but said: it is likely a mistake
        biased = [n for n in zero if np.any(np.asarray(getattr(nodes[n], "bias", 0.0)) != 0)]
        notes = (*notes, f"weight node(s) {', '.join(map(repr, zero))}: all weights zero, so no spike crosses them "
                         "and they carry no signal" + (f" (only the bias of {', '.join(map(repr, biased))} drives "
                                                        "the next layer)" if biased else "")
                 + "; still mapped and costed as the graph says, as a chip would store them")
    for syn in _one_to_one(projections, facts, masks):
        n = masks[syn].shape[0]
        facts[syn] = replace(facts[syn], one_to_one=True, weight_params=n, synapses_dense=n)
    return GraphFacts(graph, facts, populations, projections, geoms, masks, notes)


def _silent_loops(projections: list[Projection], facts: dict[str, NodeFacts]) -> list[str]:
    """Weight nodes (Linear, Affine, Conv) whose weights are all zero and whose every projection is a self-loop
    (``neuron → W → the same neuron``): a recurrence that carries no synaptic events (module docstring). Read by
    the weights alone, such an ``N × N`` matrix would pass for a one-to-one recurrence (nothing off its diagonal)."""
    through: dict[str, list[Projection]] = {}
    for p in projections:
        if p.synapse is not None and facts[p.synapse].role == "synapse":
            through.setdefault(p.synapse, []).append(p)
    return [syn for syn, projs in through.items()
            if facts[syn].weights_nonzero == 0 and all(p.source == p.target for p in projs)]


def _one_to_one(projections: list[Projection], facts: dict[str, NodeFacts], masks: dict[str, np.ndarray]) -> list[str]:
    """Linear/Affine nodes that are one-to-one recurrences (module docstring): the one projection through the node
    is a self-loop of a population of ``N`` neurons, with no pool on its path, and the node's ``N × N`` weight is
    zero off its diagonal. ``N = 1`` is left alone (one weight either way)."""
    through: dict[str, list[Projection]] = {}
    for p in projections:
        if p.synapse is not None and p.synapse in masks:
            through.setdefault(p.synapse, []).append(p)
    out = []
    for syn, projs in through.items():
        m = masks[syn]
        if len(projs) != 1 or m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] < 2:
            continue
        p = projs[0]
        if p.source != p.target or any(facts[q].role != "reshape" for q in p.pre_path + p.post_path):
            continue
        if not m[~np.eye(m.shape[0], dtype=bool)].any():
            out.append(syn)
    return out


def _after_synapse(src, syn, pre, succ, facts, populations) -> list[Projection]:
    out = []
    stack = [(nxt, ()) for nxt in succ[syn]]
    if not stack:
        raise GraphError(f"synapse node {syn!r} has no successor; connect it to a neuron or Output node")
    while stack:
        cur, post = stack.pop()
        f = facts[cur]
        if f.role == "reshape":
            stack.extend((nxt, post + (cur,)) for nxt in succ[cur])
        elif f.role == "neuron":
            out.append(Projection(src, syn, cur, pre, post))
        elif f.role == "output":
            if cur not in populations:  # a readout: non-spiking accumulators of the Output's shape
                populations[cur] = Population(cur, "Output", f.input_shape, spiking=False, on_chip=True)
            out.append(Projection(src, syn, cur, pre, post))
        elif f.role == "synapse":
            raise GraphError(
                f"synapse node {syn!r} feeds synapse node {cur!r} with no neuron between; fuse the two weight "
                "layers into one or insert a neuron node"
            )
        elif f.role == "pool":
            raise GraphError(
                f"pool {cur!r} sits between synapse node {syn!r} and the neurons; pooling currents is not an event "
                "operation — pool the spikes after the neurons, or fold the pooling into the convolution"
            )
        else:
            raise GraphError(f"synapse node {syn!r} reaches {f.node_type} node {cur!r}; expected a neuron or Output node")
    return out

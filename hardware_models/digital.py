"""Event-driven digital neuromorphic cores (Loihi, TrueNorth, SpiNNaker, SpiNNaker2, Speck …).

**Mapping.** ``core_partition`` targets cut each neuron population, in its flat (C-order) neuron order,
into equal chunks of ``n`` neurons per core — the largest ``n`` for which every core stays within the
spec's limits: neurons per core, synaptic memory (nonzero synapses × (weight bits + overhead)), input
axons (distinct presynaptic inputs, exact for convolutions including borders) and output axons
(destination cores of its neurons). A population of channels × positions that a convolution or pool feeds
or reads may instead be cut *position-major* (every channel of consecutive positions on a core, so a core
reads a narrow input window); the mapper tries channel-major for all, position-major for all, then flips
each such population's order once, keeps the assignment with the fewest cores, and notes it. **Placement ties**:
where several of the orders tried need as many cores (the orders one flip away from a tied one are tried too, up to
4 per such population, ``FLIPS_PER_LAYER``: a note says where that cap left one untried), the estimate costs each
and uses the one with the shortest latency per inference, then the least energy (``placement_ties="energy"``: the
least energy first), then the first tried (a note says how many tied, by which rule, and which order was chosen;
``MappingResult.tied_orders`` lists each with its figures), at its activity or at ``placed_for``, the activity a
study that estimates one placed network at many activities (each sample, each exit step) places it for; on a chip
where the order changes neither (no time per operation, no routing cost: TrueNorth, SpiNNaker) the first tried is
used. :func:`map_network` without an activity keeps the first tried;
with one, it returns the estimate's placement. A neuron whose
inputs alone exceed a core is either *split* (``fan_in_over_limit = "split"``: ``k`` input slices, each
holding partial-sum compartments of the chunk) or *reported* as not fitting. A neuron that must reach more
cores than ``fan_out_per_neuron`` (TrueNorth: one) is copied; copies share its input axons, so a chunk's
neurons and copies fill ⌈slots / neurons_per_core⌉ cores (fewer where synaptic memory binds).
``layer_per_core`` targets (Speck) put every layer on one core whose kernel and neuron memories must hold it
(``c · 2^(⌈log2 kx·ky⌉ + ⌈log2 f⌉)`` kernel and ``f · 2^(⌈log2 fy⌉ + ⌈log2 fx⌉)`` neuron entries for ``c`` input
channels, ``f`` features of ``fy × fx``: sinabs' ``DynapcnnLayer.memory_summary``, which its mapper checks) and
whose spikes reach at most ``destinations_per_core`` layers (a recurrent loop counts as one); recurrent
layers are noted, since sinabs maps only acyclic networks by itself. Where the spec gives them, a core's
configuration limits are checked too (:func:`_layer_config_violations`: pool sizes, kernel size, stride, padding,
features, output and input map sizes).

A one-to-one recurrence (:mod:`hardware_models.graph`: ``N`` feedback weights, one per neuron) costs what its
``N`` nonzero synapses cost on ``core_partition`` targets, whose synaptic memory and input axons count nonzero
connections. On ``layer_per_core`` targets it takes the kernel memory of an ``N × N`` layer: a DYNAP-CNN core
stores its kernel densely, zeros included (sinabs' memory formula in :func:`_kernel_entries`), and a core has one
kernel, so a layer's ``N`` spikes come back as ``N`` more input channels of it, at its kernel size (the same for a
dense recurrence, and for any layer with several inputs: their channels together, at the largest kernel); a note
says so.

**Max pools.** A pooling node whose output events the activity measured is a max pool (exported as ``SumPool2d``,
:mod:`hardware_models.graph`); one without is a sum or average pool. No target here has a max-pooling unit, and a
max is not linear, so it cannot be folded into the next layer's weights as a sum or average pool is (those stay
folded: the source's spikes are sent to the cores of every neuron their pooled position reaches). What the chip
does with a max pool:

* ``core_partition`` targets (Loihi, TrueNorth, SpiNNaker) map it **as neurons**: one per window and channel, each
  firing in the steps where any input of its window spiked (weights 1, threshold 1, reset to zero: the max of
  spikes, exactly). The pool's input spikes reach those neurons as synaptic events; its measured events travel on
  to the next layer's cores and cause its synaptic events. So routing, synaptic events, neuron updates, cores and
  latency all count the same pool: the spikes before it up to its neurons, its events after them. A pooling
  neuron is updated in the steps it has input, which are the steps it fires (its ``updates_per_step``). This is
  how neurosim's integer models run a max pool on Loihi and SpiNNaker (:mod:`neurosim.hardware.fixed_point`), and
  how lava-dl maps pooling onto Loihi (``src/lava/lib/dl/slayer/block/cuba.py``: ``Pool`` is a pooling synapse
  followed by neurons).
* ``layer_per_core`` targets (Speck) cannot max-pool: a DYNAP-CNN core sum-pools the events it sends to its
  destination (sinabs documentation, ``docs/speck/faqs/available_network_arch.md`` item 4, and
  ``available_algorithmic_operation.md``: only ``SumPool2d``, and ``AvgPool2d`` converted to it). Every spike of a
  window passes, so the pool is counted as the sum pool the chip runs (its measured events are set aside), and a
  note says that the later layers' activity was measured with max pooling and would differ on the chip.

:func:`map_network` without an activity cannot measure a pool: it takes as max pools those the graph marks
(``MAX_POOL_TAG``: neurosim's export writes a ``MaxPool2d`` as a ``SumPool2d`` tagged in its metadata; no other tool
writes a max pool to NIR), so a neurosim model's graph alone maps onto the cores its estimate costs. A tagged pool
whose events an activity lacks is costed as a sum pool, with a note.

**Energy per inference** (each term only where the spec says it is ``modelled``)::

    synaptic      = E_syn · synops
    neuron_active = (E_access + E_active + E_spike_out) · spikes            (an update that emits a spike)
    neuron_idle   = (E_access + E_idle) · (compartments · T − spikes)
    routing       = Σ_messages (E_msg + hops_ew · E_ew + hops_ns · E_ns)
    static        = P_static · chips · run time

``E_active``/``E_idle`` are ``energy.neuron_update_active``/``_idle``, or both ``energy.neuron_update``;
``E_access`` (``energy.neuron_access``) and ``E_spike_out`` (``energy.spike_out``) are 0 unless the spec gives
them — SANA-FE's split of a soma step into an access of every neuron, an update and a spike out. With that split
(``neuron_access`` and one ``neuron_update``: ``loihi_sanafe``) the update is charged, as SANA-FE charges it, only
in the steps where a neuron has input or a nonzero potential (``src/models.cpp`` lines 520–525 at commit
8951ab0), counted by the activity's ``updates_per_step``::

    neuron_idle   = E_access · (compartments · T − spikes) + E_update · (updates · k − spikes)

(``k`` partial-sum compartments per neuron of a split layer, each counted as updated with its neuron). A layer
without ``updates_per_step`` (an ``activity.json`` from before they were recorded) is counted as updated in every
step, the upper bound above; the notes say so and by how much at most.

A message is one spike sent to one destination core; hops are mean Manhattan distances between the
source and destination cores, cores placed row-major on a √(cores per chip)-wide mesh (an assumption,
not a floor plan). Energy is therefore affine in activity: zero activity leaves neuron_idle and static
(for a ``step_driven`` chip with static power, run time itself depends on activity).

Chunks are runs of one of these two orders; a hand-tiled placement of 2-D patches can need fewer axons and
neuron copies, so core counts of convolutions on small cores are upper bounds.

**Latency per step** = busiest core (synops · t_syn + updates · t_update + messages · t_msg) + mean hop
delay + barrier sync, at least the chip's tick (``fixed_tick``) or ``dt`` (``realtime``). The barrier is
``time.sync``, or ``time.sync_table`` looked up by the tiles in use (see :func:`_sync_time`). Where the chip cannot
keep up with input arriving every ``dt`` (the activity's step), a note says so (:func:`_real_time_notes`): a
step-driven step longer than ``dt``, a tick longer than ``dt``, and on a real-time chip without per-operation times
(Speck), whose latency is ``T · dt`` whatever its load, the busiest layer's synaptic operations per second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import nir
import numpy as np

from .activity import ActivityProfile
from .graph import GraphFacts, Projection, analyze
from .results import Estimate, LayerMapping, MappingResult, Violation
from .specs import Spec

__all__ = ["map_network", "estimate_digital", "DEFAULT_WEIGHT_BITS"]

DEFAULT_WEIGHT_BITS = 8  # bits per stored weight unless the caller says otherwise; clipped to the chip's range
MAX_POOL_TAG = ("neurosim", "layer", "MaxPool2d")  # node.metadata[a][b] == c: a max pool written as SumPool2d


@dataclass
class _Placement:
    name: str
    neurons: int
    n: int = 1  # neurons per chunk (per core)
    k: int = 1  # input slices
    slots: int = 0
    first_core: int = 0
    limited_by: str = "neurons_per_core"
    dest_per_proj: dict = field(default_factory=dict)  # projection -> dest cores per source neuron (flat)
    max_syn: float = 0.0
    max_axons: float = 0.0
    max_out: float = 0.0
    order: str = "channel"  # chunks follow: "channel" (flat C order) or "position" (all channels of a position)
    perm: np.ndarray | None = field(default=None, repr=False)  # flat neuron indices in placement order
    rank: np.ndarray | None = field(default=None, repr=False)  # placement position of each flat neuron index
    core_count: int | None = None  # set by finish(): neuron copies included

    @property
    def starts(self) -> np.ndarray:
        return np.arange(0, self.neurons, self.n)

    @property
    def cores(self) -> int:
        return self.core_count if self.core_count is not None else self.k * math.ceil(self.neurons / self.n)

    def chunk_sums(self, values: np.ndarray, n: int | None = None) -> np.ndarray:
        """Sum of a per-neuron array (flat C order) over each chunk of ``n`` (default: this placement's) neurons
        taken in placement order."""
        v = np.reshape(values, -1)
        if not self.neurons:
            return np.zeros(1)
        if self.perm is not None:
            v = v[self.perm]
        return np.add.reduceat(v, np.arange(0, self.neurons, n or self.n))


def _position_major(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(perm, rank) of position-major order for a ``(C, *positions)`` population: neuron ``(c, p)`` (flat
    ``c·P + p``) comes at place ``p·C + c``, so a chunk holds every channel of consecutive positions."""
    C, P = shape[0], math.prod(shape[1:])
    return np.arange(C * P).reshape(C, P).T.ravel(), np.arange(C * P).reshape(P, C).T.ravel()


def _largest(upper: int, ok) -> int:
    """Largest n in [1, upper] with ok(n) (ok assumed monotone: true up to some n); 0 if ok(1) is false."""
    if upper < 1:
        return 0
    if ok(upper):
        return upper
    if not ok(1):
        return 0
    lo, hi = 1, upper - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


class _CorePartition:
    """Maps every on-chip population of ``facts`` onto cores within ``spec``'s limits."""

    def __init__(self, facts: GraphFacts, spec: Spec, weight_bits: int, chips: int,
                 orders: dict[str, str] | None = None, cache: dict | None = None):
        """``orders``: population -> ``"channel"`` (default) or ``"position"``; ``cache``: connectivity shared
        between partitions of the same graph and spec that try different orders."""
        self.facts, self.spec, self.chips = facts, spec, chips
        self.notes: list[str] = []
        self.violations: list[Violation] = []
        bits = weight_bits
        lo, hi = spec.si("capacity.weight_bits_min", 0), spec.si("capacity.weight_bits_max", math.inf)
        if bits > hi:
            self.notes.append(f"weights must be quantised to {int(hi)} bit(s) for {spec.name} (asked for {weight_bits})")
            bits = int(hi)
        if bits < lo:
            self.notes.append(f"{spec.name} stores at least {int(lo)}-bit weights (asked for {weight_bits})")
            bits = int(lo)
        self.bits_per_synapse = bits + spec.si("capacity.synapse_overhead_bits", 0)
        mem = spec.si("capacity.synaptic_memory_per_core", math.inf)
        self.syn_cap = math.floor(mem / self.bits_per_synapse) if math.isfinite(mem) else math.inf
        self.npc = int(spec.si("capacity.neurons_per_core"))
        self.fin_cap = spec.si("capacity.fan_in_per_core", math.inf)
        self.fout_cap = spec.si("capacity.fan_out_per_core", math.inf)
        self.fout_neuron = spec.si("capacity.fan_out_per_neuron", math.inf)
        self.pops = [n for n, p in facts.populations.items() if p.on_chip]
        self.spatial = [n for n in self.pops if self._spatial(n)]  # where position-major order is an option
        self.place = {}
        self.search_capped = False  # set by _place: its search of tied orders stopped at its cap (module docstring)
        for n in self.pops:
            p = self.place[n] = _Placement(n, facts.populations[n].neurons)
            if (orders or {}).get(n, "channel") == "position" and n in self.spatial:
                p.order = "position"
                p.perm, p.rank = _position_major(facts.populations[n].shape)
        self._fan_in_flat = {n: facts.fan_in(n).ravel() for n in self.pops}
        cache = {} if cache is None else cache
        self._conn: dict = cache.setdefault("conn", {})
        self._single: dict = cache.setdefault("single", {})

    def _spatial(self, pop: str) -> bool:
        """True for a population with channels and positions that a convolution or pool feeds or reads."""
        f = self.facts
        shape = f.populations[pop].shape
        if len(shape) < 2 or shape[0] < 2 or math.prod(shape[1:]) < 2:
            return False
        return any(f.geometry(node) is not None for proj in f.projections_to(pop) + f.projections_from(pop)
                   for node in (*proj.pre_path, proj.synapse) if node is not None)

    # ---------------------------------------------------------------- connectivity
    def connectivity(self, proj: Projection, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(input axons per chunk of n target neurons, destination chunks per synapse-input position)."""
        tp = self.place[proj.target]
        key = (proj, n, tp.order)
        if key in self._conn:
            return self._conn[key]
        f = self.facts
        N = tp.neurons
        starts = np.arange(0, N, n)
        if proj.synapse is None:
            axons = np.diff(np.append(starts, N)).astype(np.float64)
            dest = np.ones(f.populations[proj.source].neurons)
        elif f.linear_mask(proj.synapse) is not None:
            m = f.linear_mask(proj.synapse)
            if m.all():
                axons = np.full(len(starts), float(m.shape[1]))
                dest = np.full(m.shape[1], float(len(starts)))
            else:
                anyc = np.logical_or.reduceat(m if tp.perm is None else m[tp.perm], starts, axis=0)
                axons, dest = anyc.sum(axis=1).astype(np.float64), anyc.sum(axis=0).astype(np.float64)
        else:
            axons, dest = self._conv_connectivity(f.geometry(proj.synapse), N, n, starts, tp.rank)
        self._conn[key] = (axons, dest)
        return axons, dest

    @staticmethod
    def _conv_connectivity(g, N, n, starts, rank=None):
        """Exact for dense kernels: for every input position, the chunks holding an output that reads it.

        ``rank``: placement position of each output (flat C order index), None for flat C order itself."""
        G, cin_pg, cpg = g.groups, g.c_in_per_group, g.c_out_per_group
        _, H, W = g.in_shape
        _, OH, OW = g.out_shape
        P = OH * OW
        kh, kw = g.kernel
        iy, ix = np.divmod(np.arange(H * W), W)
        ky, kx = np.divmod(np.arange(kh * kw), kw)
        ny = iy[:, None] + g.pad_lo[0] - ky[None, :] * g.dilation[0]  # oy·s for the output reading iy via ky
        nx = ix[:, None] + g.pad_lo[1] - kx[None, :] * g.dilation[1]
        oy, ry = np.divmod(ny, g.stride[0])
        ox, rx = np.divmod(nx, g.stride[1])
        valid = (ry == 0) & (rx == 0) & (oy >= 0) & (oy < OH) & (ox >= 0) & (ox < OW)  # (HW, K)
        pos = oy * OW + ox
        used = g.offsets_used().reshape(G, kh * kw)
        chan = (np.arange(G)[:, None] * cpg + np.arange(cpg)[None, :]) * P  # (G, cpg) flat offset of each channel
        flat = chan[:, None, :, None] + pos[None, :, None, :]  # (G, HW, cpg, K)
        ok = valid[None, :, None, :] & used[:, None, None, :]
        if rank is not None:
            flat = rank[np.where(ok, flat, 0)]
        chunk = np.where(ok, flat // n, -1).reshape(G, H * W, cpg * kh * kw)
        chunk.sort(axis=2)
        first = chunk >= 0
        first[:, :, 1:] &= chunk[:, :, 1:] != chunk[:, :, :-1]  # first occurrence of each chunk id
        dest_sp = first.sum(axis=2).astype(np.float64)  # (G, HW): distinct destination chunks
        axons = np.bincount(chunk[first], minlength=len(starts)).astype(np.float64) * cin_pg
        dest = np.repeat(dest_sp.reshape(G, 1, H * W), cin_pg, axis=1)  # every input channel of a group alike
        return axons, dest.ravel()

    def _fan_in_advice(self, limit: str, allowed: float) -> str:
        """What a user can change where one neuron's inputs exceed a core (``limit``: ``fan_in_per_core`` or
        ``synaptic_memory_per_core``) and the chip does not split them: the model (a core's axons and synaptic
        memory are the chip's: TrueNorth's crossbar has 256 axon rows, which no setting raises), and for the
        memory the weight width where the chip stores narrower weights."""
        what = "input axons" if limit == "fan_in_per_core" else "synapses"
        advice = (f"the layer must be restructured (capacity.{limit} is the chip's): give each of its neurons at most "
                  f"{allowed:g} {what}, i.e. nonzero weights (a narrower layer or fewer channels before it, a smaller "
                  "kernel, or weights pruned to a sparse connectivity)")
        lo = self.spec.si("capacity.weight_bits_min", 1)
        bits = self.bits_per_synapse - self.spec.si("capacity.synapse_overhead_bits", 0)
        if limit == "synaptic_memory_per_core" and bits > lo:
            advice += f", or estimate with fewer weight_bits ({bits:g} now; {self.spec.name} stores {lo:g} and up)"
        return advice

    def single_neuron_axons(self, pop: str) -> np.ndarray:
        """Input axons each neuron of ``pop`` needs on its own (flat)."""
        if pop not in self._single:
            f = self.facts
            total = np.zeros(f.populations[pop].neurons)
            for proj in f.projections_to(pop):
                if proj.synapse is None:
                    total += 1.0
                elif f.linear_mask(proj.synapse) is not None:
                    total += f.linear_mask(proj.synapse).sum(axis=1)
                else:
                    g = f.geometry(proj.synapse)
                    used = np.repeat(g.offsets_used(), g.c_out_per_group, axis=0)  # (C_out, kh, kw)
                    reach = type(g)(g.in_shape, g.out_shape, g.kernel, g.stride, g.dilation, g.pad_lo, g.pad_hi,
                                    g.groups, np.broadcast_to(used[:, None], g.mask.shape))
                    total += reach.forward(np.ones(g.in_shape)).ravel()
            self._single[pop] = total
        return self._single[pop]

    def chunk_load(self, pop: str, n: int, k: int) -> tuple[float, float]:
        """(max synapses, max input axons) over the cores of ``pop`` with chunks of n and k input slices."""
        p = self.place[pop]
        syn = p.chunk_sums(self._fan_in_flat[pop], n)
        ax = np.zeros(len(syn))
        for proj in self.facts.projections_to(pop):
            ax = ax + self.connectivity(proj, n)[0]
        return float(np.ceil(syn.max() / k)), float(np.ceil(ax.max() / k))

    # ---------------------------------------------------------------- mapping passes
    def map_fan_in(self, pop: str) -> None:
        p = self.place[pop]
        if not self.facts.projections_to(pop):
            p.n, p.k = min(self.npc, p.neurons), 1
            return
        if self.syn_cap < 1:  # (the spec loader refuses a memory below the smallest synapse; a wider weight can be)
            mem = self.spec.constants["capacity.synaptic_memory_per_core"]
            raise ValueError(
                f"{self.spec.name}: a core's synaptic memory (capacity.synaptic_memory_per_core = {mem.value:g} "
                f"{mem.unit}) cannot hold one {self.bits_per_synapse:g}-bit synapse, so layer {pop!r} cannot be "
                "mapped; estimate with fewer weight_bits, or use a spec with more synaptic memory per core")
        syn1 = float(self._fan_in_flat[pop].max())
        ax1 = float(self.single_neuron_axons(pop).max())
        k = max(1, math.ceil(syn1 / self.syn_cap) if math.isfinite(self.syn_cap) else 1,
                math.ceil(ax1 / self.fin_cap) if math.isfinite(self.fin_cap) else 1)
        if k > 1:
            what = []
            if math.isfinite(self.fin_cap) and ax1 > self.fin_cap:
                what.append(("fan_in_per_core", ax1, self.fin_cap, "input axons"))
            if math.isfinite(self.syn_cap) and syn1 > self.syn_cap:
                what.append(("synaptic_memory_per_core", syn1, self.syn_cap,
                             f"synapses ({self.bits_per_synapse:g} bits each)"))
            policy = self.spec.options.get("fan_in_over_limit", "report")
            for limit, value, allowed, unit in what:
                msg = (f"layer {pop!r}: one neuron needs {value:g} {unit}, a {self.spec.name} core holds {allowed:g} "
                       f"(over by {value - allowed:g}, {value / allowed:.2f}x)")
                if policy == "split":
                    self.notes.append(msg + f"; split into {k} input slices of partial-sum compartments")
                else:
                    self.violations.append(Violation(limit, pop, value, allowed,
                                                     msg + "; " + self._fan_in_advice(limit, allowed)))
        p.k = k

        def syn_ok(n: int) -> bool:  # cheap: no connectivity needed
            return float(np.ceil(p.chunk_sums(self._fan_in_flat[pop], n).max() / k)) <= self.syn_cap

        def ok(n: int) -> bool:
            syn, ax = self.chunk_load(pop, n, k)
            return syn <= self.syn_cap and ax <= self.fin_cap

        n = _largest(max(_largest(min(self.npc, p.neurons), syn_ok), 1), ok)
        p.n = max(n, 1)
        p.limited_by = "neurons_per_core" if p.n == min(self.npc, p.neurons) else self._binding(pop, p.n + 1, k)
        p.max_syn, p.max_axons = self.chunk_load(pop, p.n, k)

    def _binding(self, pop: str, n: int, k: int) -> str:
        syn, ax = self.chunk_load(pop, n, k)
        if syn > self.syn_cap:
            return "synaptic_memory_per_core"
        return "fan_in_per_core" if ax > self.fin_cap else "neurons_per_core"

    def dest_out(self, pop: str) -> np.ndarray:
        """Destination cores per neuron of ``pop`` over all its projections (flat, source order)."""
        f = self.facts
        total = np.zeros(f.populations[pop].neurons)
        for proj in f.projections_from(pop):
            total += self.proj_dest(proj)
        return total

    def proj_dest(self, proj: Projection) -> np.ndarray:
        f = self.facts
        src_shape = f.populations[proj.source].shape
        if proj.target not in self.place:
            return np.zeros(int(np.prod(src_shape)))
        _, dest = self.connectivity(proj, self.place[proj.target].n)
        if proj.synapse is None:
            return dest
        syn_in = f.nodes[proj.synapse].input_shape
        return np.reshape(f._path_transpose(proj.pre_path, np.reshape(dest, syn_in)), -1)

    def map_fan_out(self) -> bool:
        """Shrink chunks whose neurons need more output axons than a core has; True if anything changed."""
        changed = False
        if not math.isfinite(self.fout_cap):
            return changed
        for pop in reversed(self.pops):
            p = self.place[pop]
            d = self.dest_out(pop)
            if not d.any():
                continue
            if d.max() > self.fout_cap:
                continue  # reported in finish()

            def ok(n: int) -> bool:
                return float(p.chunk_sums(d, n).max()) <= self.fout_cap

            if not ok(p.n):
                p.n = _largest(p.n, ok)
                p.limited_by = "fan_out_per_core"
                p.max_syn, p.max_axons = self.chunk_load(pop, p.n, p.k)
                changed = True
        return changed

    def _cores_with_copies(self, pop: str, copies: np.ndarray) -> int:
        """Cores of one input slice of ``pop`` when neuron ``i`` takes ``copies[i]`` slots (flat order).

        Copies of a neuron read the same input axons, so any slots of a chunk share its input axons and fit
        within ``fan_in_per_core``; a chunk's slots fill cores of ``neurons_per_core`` slots, fewer where the
        synaptic memory holds fewer copies of the chunk's largest fan-in. A chunk without copies keeps its core.
        """
        p = self.place[pop]
        cap = self.npc
        per_slot = float(np.ceil(self._fan_in_flat[pop].max(initial=0.0) / p.k))
        if math.isfinite(self.syn_cap) and per_slot > 0:
            cap = min(cap, int(self.syn_cap // per_slot))
        slots = p.chunk_sums(copies)
        sizes = p.chunk_sums(np.ones(p.neurons))
        return int(np.where(slots > sizes, np.ceil(slots / max(cap, 1)), 1.0).sum())

    def finish(self) -> MappingResult:
        for pop in self.pops:
            p = self.place[pop]
            d = self.dest_out(pop)
            for proj in self.facts.projections_from(pop):
                p.dest_per_proj[proj] = self.proj_dest(proj)
            if d.size and d.max() > self.fout_cap:
                v = float(d.max())
                self.violations.append(Violation(
                    "fan_out_per_core", pop, v, self.fout_cap,
                    f"layer {pop!r}: one neuron reaches {v:g} destination cores, a {self.spec.name} core has "
                    f"{self.fout_cap:g} output axons (capacity.fan_out_per_core; over by {v - self.fout_cap:g}, "
                    f"{v / self.fout_cap:.2f}x)"))
            if math.isfinite(self.fout_neuron) and d.size:
                copies = np.maximum(1, np.ceil(d / self.fout_neuron))
                p.slots = int(copies.sum())
                if p.slots > p.neurons:
                    p.core_count = p.k * self._cores_with_copies(pop, copies)
                    self.notes.append(
                        f"layer {pop!r}: neurons reach up to {d.max():g} cores but a {self.spec.name} neuron reaches "
                        f"{self.fout_neuron:g}; {p.slots - p.neurons} neuron copies added (a copy shares its "
                        "neuron's input axons and takes a free neuron slot of its core)")
            else:
                p.slots = p.neurons
            if d.size:
                p.max_out = float(p.chunk_sums(d).max())
        first = 0
        layers = {}
        for pop in self.pops:
            p = self.place[pop]
            p.first_core = first
            first += p.cores
            layers[pop] = LayerMapping(
                name=pop, neurons=p.neurons, cores=p.cores, neurons_per_core=p.n, first_core=p.first_core,
                slots=max(p.slots, p.neurons), input_slices=p.k, limited_by=p.limited_by,
                max_synapses_per_core=p.max_syn, max_axons_in_per_core=p.max_axons, max_axons_out_per_core=p.max_out)
        return _finish_mapping(self.spec, layers, first, self.violations, self.notes, self.chips)


def _finish_mapping(spec: Spec, layers, cores_used, violations, notes, chips) -> MappingResult:
    cpc = int(spec.si("capacity.cores_per_chip"))
    per_core = [v for v in violations if v.limit != "cores_per_chip"]
    chips_needed = None if per_core else max(1, math.ceil(cores_used / cpc))
    violations = list(violations)
    if chips_needed is not None and chips_needed > chips:
        violations.append(Violation(
            "cores_per_chip", None, cores_used, cpc * chips,
            f"the network needs {cores_used} cores, {chips} {spec.name} chip(s) have {cpc * chips} "
            f"(capacity.cores_per_chip = {cpc}; over by {cores_used - cpc * chips}, "
            f"{cores_used / (cpc * chips):.2f}x): {chips_needed} chips needed"))
    if chips_needed is None:
        notes = list(notes) + ["a per-core limit is exceeded: no number of chips makes this network fit as it is"]
    return MappingResult(target=spec.name, cores_used=int(cores_used), cores_per_chip=cpc, chips_needed=chips_needed,
                         fits=not violations, layers=layers, violations=tuple(violations), notes=tuple(notes))


# ---------------------------------------------------------------------------------------------- layer per core
def _clog(x: int) -> int:
    """⌈log2 x⌉ for a whole number x ≥ 1 (0 for 1), exactly."""
    return (int(x) - 1).bit_length()


def _kernel_shape(facts: GraphFacts, proj: Projection) -> tuple[int, int, int]:
    """``(c, kx·ky, f)`` of one projection as a DYNAP-CNN kernel: input channels, kernel positions, features (a
    Linear layer is a convolution over its whole input map; a one-to-one path or a pool a 1×1 one)."""
    tgt = facts.populations[proj.target]
    if proj.synapse is None:
        return tgt.shape[0], 1, tgt.shape[0]
    g = facts.geometry(proj.synapse)
    if g is not None:
        kk = 1 if facts.nodes[proj.synapse].role == "pool" else g.kernel[0] * g.kernel[1]
        return g.in_shape[0], kk, g.out_shape[0]
    n_out, n_in = facts.linear_mask(proj.synapse).shape
    flat = [p for p in proj.pre_path if facts.nodes[p].role == "reshape"]
    shape = facts.nodes[flat[0]].input_shape if flat else (n_in,)
    return shape[0], int(np.prod(shape[1:])), n_out


def _kernel_entries(facts: GraphFacts, projs: list[Projection]) -> int:
    """Kernel memory entries of a layer on a DYNAP-CNN core: ``c · 2^(⌈log2(kx·ky)⌉ + ⌈log2 f⌉)``. A core has one
    kernel: the events of several inputs (a recurrent loop's own spikes too) reach it as channels shifted apart
    (sinabs FAQ, a destination's ``feature_shift``), so ``c`` is their channels together and ``kx·ky`` the largest
    kernel among them."""
    shapes = [_kernel_shape(facts, p) for p in projs]
    if not shapes:
        return 0
    c, kk, f = sum(s[0] for s in shapes), max(s[1] for s in shapes), max(s[2] for s in shapes)
    return int(c * 2 ** (_clog(kk) + _clog(f)))


def _neuron_entries(shape: tuple[int, ...]) -> int:
    """Neuron memory entries of a layer on a DYNAP-CNN core: f · 2^(⌈log2 fy⌉ + ⌈log2 fx⌉) for ``f`` channels of
    ``fy × fx`` (sinabs' ``DynapcnnLayer.memory_summary``, which its mapper checks: each side of the feature map is
    addressed in whole bits); a flat layer of ``N`` neurons (a Linear's output, a 1×1 map) takes ``N``."""
    return int(shape[0]) * 2 ** sum(_clog(n) for n in shape[1:])


def _shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(str(int(n)) for n in shape)


def _match(needs: list[tuple[int, int]], kmem, nmem, avail: list[int]) -> dict[int, int]:
    """Bipartite matching of layers (kernel, neuron needs) to cores (Kuhn's augmenting paths)."""
    owner: dict[int, int] = {}

    def try_layer(i: int, seen: set) -> bool:
        for c in avail:
            if c in seen or kmem[c] < needs[i][0] or nmem[c] < needs[i][1]:
                continue
            seen.add(c)
            if c not in owner or try_layer(owner[c], seen):
                owner[c] = i
                return True
        return False

    for i in range(len(needs)):
        try_layer(i, set())
    return {i: c for c, i in owner.items()}


def _below(allowed, value: int) -> int:
    """The largest of ``allowed`` at most ``value`` (the smallest if none is): what to change ``value`` to."""
    return max((a for a in allowed if a <= value), default=min(allowed))


def _layer_config_violations(facts: GraphFacts, spec: Spec, pops: list[str]) -> tuple[list[Violation], list[str]]:
    """What a DYNAP-CNN core cannot be configured to do, for the limits ``spec`` gives (each optional): square sum
    pools of ``pool_sizes`` with the stride equal to the window and no padding; kernels of at most
    ``kernel_size_max`` per side (a Linear's is its whole input map), strides among ``stride_sizes``, padding up to
    ``padding_max``; at most ``features_per_core`` features and ``output_size_max`` per side of a core's output map;
    an input of at most ``input_size_max`` per side. Where the spec describes a sensor (``sensor_polarities``), a note
    says when the input is not a camera's 2-D event map (a vector, a 1-D signal or a single row, e.g. an audio model's
    frequency channels) or has more channels than the sensor's polarities: those events come from outside the chip."""
    def get(key):
        if not spec.has(f"capacity.{key}"):
            return None
        v = spec.si(f"capacity.{key}")
        return [int(a) for a in v] if isinstance(v, tuple) else int(v)

    out, notes, name = [], [], spec.name
    pool_sizes, strides = get("pool_sizes"), get("stride_sizes")
    k_max, pad_max, f_max = get("kernel_size_max"), get("padding_max"), get("features_per_core")
    in_max, out_max, polarities = get("input_size_max"), get("output_size_max"), get("sensor_polarities")
    if pool_sizes is not None:
        pooled: dict[str, list[str]] = {}  # pool node -> the layers whose events it pools
        for p in facts.projections:
            for n in (*p.pre_path, p.synapse):
                if n is not None and facts.nodes[n].role == "pool" and p.source not in pooled.setdefault(n, []):
                    pooled[n].append(p.source)
        for node, sources in pooled.items():
            g = facts.geometry(node)
            (kh, kw), stride, pad = g.kernel, g.stride, max(g.pad_lo + g.pad_hi)
            if kh == kw and kh in pool_sizes and stride == g.kernel and pad == 0:
                continue
            to = _below(pool_sizes, max(kh, kw))
            if kh != kw or kh not in pool_sizes:
                value, allowed = max(kh, kw), to
            else:  # the window is one a core takes; its stride or padding is not
                value, allowed = (max(stride), kh) if stride != g.kernel else (pad, 0)
            out.append(Violation(
                "pool_sizes", sources[0], value, allowed,
                f"pool {node!r} after layer{'s' * (len(sources) > 1)} {', '.join(map(repr, sources))}: window "
                f"{kh}x{kw}, stride {stride[0]}x{stride[1]}{f', padding {pad}' if pad else ''}; a {name} core sums the "
                f"events it sends over square windows of {', '.join(map(str, pool_sizes))} with the stride equal to "
                f"the window and no padding: use a pool of {to} (stride {to}), or a strided convolution"))
    for pop in pops:
        shape = facts.populations[pop].shape
        if f_max is not None and shape[0] > f_max:
            out.append(Violation("features_per_core", pop, shape[0], f_max,
                                 f"layer {pop!r} has {shape[0]} {'channels' if len(shape) > 1 else 'neurons'}; a "
                                 f"{name} core holds at most {f_max} features (its bias memory): give it fewer, or "
                                 "split it over two cores that read the same input"))
        if out_max is not None and len(shape) > 1 and max(shape[1:]) > out_max:
            out.append(Violation("output_size_max", pop, max(shape[1:]), out_max,
                                 f"layer {pop!r} has a {'x'.join(map(str, shape[1:]))} feature map; a {name} core's "
                                 f"output is at most {out_max}x{out_max}: downsample before it (a stride "
                                 "of 2 or 4 in its convolution, or a pool before it)"))
        for p in facts.projections_to(pop):
            g = facts.geometry(p.synapse) if p.synapse else None
            if p.synapse is None or facts.nodes[p.synapse].role == "pool":
                continue
            if g is not None:
                kernel, stride, pad = g.kernel, g.stride, max(g.pad_lo + g.pad_hi)
            else:  # a Linear is a convolution over its whole input map, without stride or padding
                flat = [q for q in p.pre_path if facts.nodes[q].role == "reshape"]
                kernel = (tuple(facts.nodes[flat[0]].input_shape[1:]) if flat else ()) or (1, 1)
                stride, pad = (1, 1), 0
            what = "Linear layer (a convolution over its whole input map)" if g is None else "convolution"
            if k_max is not None and max(kernel) > k_max:
                out.append(Violation("kernel_size_max", pop, max(kernel), k_max,
                                     f"layer {pop!r}: its {what} {p.synapse!r} has a {'x'.join(map(str, kernel))} "
                                     f"kernel; a {name} core's is at most {k_max}x{k_max}: " + (
                                         f"use kernels of at most {k_max} (several layers of them for a wider view)"
                                         if g is not None else "shrink the map it reads (a stride or pool before "
                                         "it, or another convolution layer)")))
            if strides is not None and any(s not in strides for s in stride):
                out.append(Violation("stride_sizes", pop, max(stride), _below(strides, max(stride)),
                                     f"layer {pop!r}: convolution {p.synapse!r} has stride {stride[0]}x{stride[1]}; "
                                     f"a {name} core strides by {', '.join(map(str, strides))}: use one of those"))
            if pad_max is not None and pad > pad_max:
                out.append(Violation("padding_max", pop, pad, pad_max,
                                     f"layer {pop!r}: convolution {p.synapse!r} pads by {pad}; a {name} core pads by "
                                     f"at most {pad_max}: use a smaller padding (or kernel)"))
    for inp in facts.input_names:
        shape = facts.populations[inp].shape
        if in_max is not None and len(shape) > 1 and max(shape[1:]) > in_max:
            out.append(Violation("input_size_max", inp, max(shape[1:]), in_max,
                                 f"input {inp!r} is {'x'.join(map(str, shape[1:]))}; a {name} core, and its DVS "
                                 f"sensor, take at most {in_max}x{in_max}: downsample or crop the events to "
                                 f"{in_max}x{in_max} before the chip (e.g. tonic's Downsample or CenterCrop)"))
        if polarities is None:  # (a chip without a sensor: any event source is its own)
            continue
        if len(shape) != 3 or min(shape[1:]) == 1:  # a vector, a 1-D signal or a single row: not a camera's image
            sensor = f"{polarities} polarities" + (f" of {in_max}x{in_max} pixels" if in_max is not None else "")
            notes.append(f"input {inp!r} ({_shape_text(shape)}) is not a 2-D camera input: {name} is a camera chip "
                         f"whose DVS sensor gives {sensor} (or a crop or pooling of them), so these events (an audio "
                         "model's frequency channels, say) must come from outside it, sent to the first core "
                         f"directly (sinabs DynapcnnNetwork(dvs_input=False)): {name} is priced here as an event "
                         "processor fed from outside, its sensor unused")
        elif shape[0] > polarities:
            notes.append(f"input {inp!r} has {shape[0]} channels; {name}'s DVS sensor gives {polarities} "
                         "polarities, so these events must come from outside it, sent to the first core directly "
                         "(sinabs DynapcnnNetwork(dvs_input=False))")
    return out, notes


def _map_layer_per_core(facts: GraphFacts, spec: Spec, weight_bits: int, chips: int):
    kmem = [int(x) for x in spec.si("capacity.kernel_memory_per_core")]
    nmem = [int(x) for x in spec.si("capacity.neuron_memory_per_core")]
    cores = list(range(len(kmem)))
    notes, violations = [], []
    hi = spec.si("capacity.weight_bits_max", math.inf)
    if weight_bits > hi:
        notes.append(f"weights must be quantised to {int(hi)} bits for {spec.name} (asked for {weight_bits})")
    pops = [n for n, p in facts.populations.items() if p.on_chip]
    needs = []
    for pop in pops:
        projs = facts.projections_to(pop)
        if len(projs) > 1:
            notes.append(f"layer {pop!r} has {len(projs)} inputs; on one core they share its kernel: their input "
                         "channels together, at the largest of their kernel sizes")
        needs.append((_kernel_entries(facts, projs), _neuron_entries(facts.populations[pop].shape)))
    on_chip = set(pops)
    max_dest = spec.si("capacity.destinations_per_core", math.inf)
    for pop in pops:
        dests = sorted({p.target for p in facts.projections_from(pop) if p.target in on_chip})
        if len(dests) > max_dest:
            violations.append(Violation("destinations_per_core", pop, len(dests), max_dest,
                                        f"layer {pop!r} sends its spikes to {len(dests)} layers ({', '.join(dests)}); "
                                        f"a {spec.name} core has {int(max_dest)} destinations: feed the others "
                                        "from one of those layers, or merge branches"))
    config, config_notes = _layer_config_violations(facts, spec, pops)
    violations += config
    notes += config_notes
    looped = facts.recurrent_populations()
    if looped:
        notes.append(f"recurrent connections ({', '.join(looped)}): {spec.name} cores can be wired in a loop by "
                     "hand, but sinabs converts only networks without cycles automatically, and its documentation "
                     "warns that a loop can deadlock the chip")
    diagonal = [p.synapse for p in facts.projections if p.synapse and facts.nodes[p.synapse].one_to_one]
    if diagonal:
        notes.append(f"one-to-one recurrence(s) ({', '.join(map(repr, diagonal))}) take the full kernel memory of "
                     f"an N x N weight layer: a {spec.name} core stores its kernel densely (c · 2^(⌈log2 kx·ky⌉ + "
                     "⌈log2 f⌉) entries, zeros included), and a layer's N spikes come back to it as N more input "
                     "channels of that kernel, at its kernel size")
    feasible = True
    for pop, (kn, nn) in zip(pops, needs):
        fits_k = [c for c in cores if kmem[c] >= kn]
        fits_n = [c for c in cores if nmem[c] >= nn]
        if not fits_k:
            violations.append(Violation("kernel_memory_per_core", pop, kn, max(kmem),
                                        f"layer {pop!r} needs {kn} kernel entries, the largest {spec.name} core has "
                                        f"{max(kmem)} (over by {kn - max(kmem)}, {kn / max(kmem):.2f}x): give it "
                                        "fewer input channels or features, or a smaller kernel (a Linear layer's is "
                                        "the whole map it reads: a stride or pool before it shrinks it)"))
        if not fits_n:
            shape = facts.populations[pop].shape
            rounded = "" if nn == facts.populations[pop].neurons else \
                " (channels · 2^(⌈log2 height⌉ + ⌈log2 width⌉): each side rounded up to a power of 2)"
            violations.append(Violation("neuron_memory_per_core", pop, nn, max(nmem),
                                        f"layer {pop!r} ({_shape_text(shape)}) needs {nn} neuron entries{rounded}, "
                                        f"the largest {spec.name} core holds {max(nmem)} (over by {nn - max(nmem)}, "
                                        f"{nn / max(nmem):.2f}x): give it fewer channels or a smaller feature map "
                                        "(a stride or a pool before it)"))
        if fits_k and fits_n and not (set(fits_k) & set(fits_n)):
            best = max(fits_k, key=lambda c: nmem[c])
            violations.append(Violation("neuron_memory_per_core", pop, nn, nmem[best],
                                        f"layer {pop!r}: no {spec.name} core has both {kn} kernel entries and "
                                        f"{nn} neuron states"))
        feasible = feasible and any(kmem[c] >= kn and nmem[c] >= nn for c in cores)
    assign = _match(needs, kmem, nmem, cores)
    chips_needed = None
    if feasible:  # fill chips in layer order
        chips_needed, i = 0, 0
        while i < len(pops):
            chips_needed += 1
            j = i + 1
            while j <= len(pops) and len(_match(needs[i:j], kmem, nmem, cores)) == j - i:
                j += 1
            i = j - 1
        chips_needed = max(chips_needed, 1)
    layers = {}
    for i, pop in enumerate(pops):
        n = facts.populations[pop].neurons
        layers[pop] = LayerMapping(name=pop, neurons=n, cores=1, neurons_per_core=n,
                                   first_core=assign.get(i, -1), slots=needs[i][1], limited_by="layer_per_core",
                                   max_synapses_per_core=needs[i][0])
    if feasible and len(assign) < len(pops) and chips_needed > chips:
        why = ""
        if chips == 1 and len(pops) <= len(cores):  # enough cores, too few of the kinds some layers need
            i = next(i for i in range(len(pops)) if i not in assign)
            able = [c for c in cores if kmem[c] >= needs[i][0] and nmem[c] >= needs[i][1]]
            held = {c: pops[j] for j, c in assign.items()}  # (every core it fits holds another layer)
            why = (f" (one layer per core): layer {pops[i]!r} ({needs[i][0]} kernel entries, {needs[i][1]} neuron "
                   f"entries) fits only cores {', '.join(map(str, able))}, which hold "
                   f"{', '.join(repr(held[c]) for c in able)}")
        violations.append(Violation("cores_per_chip", None, len(pops), len(cores) * chips,
                                    f"{len(pops)} layers cannot all be placed on the {len(cores)} cores of "
                                    f"{'one' if chips == 1 else chips} {spec.name} chip{'s' * (chips > 1)}{why}: "
                                    f"{chips_needed} chips needed; use fewer layers"
                                    f"{', shrink a layer to fit another core' if why else ''}, or allow "
                                    f"{chips_needed} chips (chips={chips_needed}, neurosim estimate --chips "
                                    f"{chips_needed})"))
    cpc = len(cores)
    per_core = [v for v in violations if v.limit != "cores_per_chip"]
    fits = not violations and (chips_needed or 1) <= chips
    if per_core:
        causes, memory = [], ("kernel_memory_per_core", "neuron_memory_per_core")
        if any(v.limit in memory for v in per_core):
            causes.append("a layer exceeds every core's memory")
        if any(v.limit == "destinations_per_core" for v in per_core):
            causes.append(f"a layer sends its spikes to more than the {int(max_dest)} layers a core can reach")
        other = sorted({v.limit for v in per_core if v.limit not in memory and v.limit != "destinations_per_core"})
        if other:
            causes.append(f"a layer is configured beyond what a core supports ({', '.join(other)})")
        notes.append(f"{' and '.join(causes)}: no number of chips makes this network fit as it is")
    return MappingResult(target=spec.name, cores_used=len(pops), cores_per_chip=cpc,
                         chips_needed=None if per_core else chips_needed, fits=fits, layers=layers,
                         violations=tuple(violations), notes=tuple(notes)), None


def map_network(facts: GraphFacts, spec: Spec, weight_bits: int = DEFAULT_WEIGHT_BITS, chips: int = 1, *,
                activity: ActivityProfile | None = None) -> MappingResult:
    """Place the network of ``facts`` on ``spec``'s cores (see the module docstring).

    Args:
        weight_bits: bits per stored weight (clipped to the chip's range, with a note).
        chips: chips available; ``fits`` is False when more are needed.
        activity: the activity an estimate would cost. With it, the mapping is exactly the estimate's
            (``estimate(facts, activity, spec, ...).mapping``): the pools with measured events are max pools, and a
            tie between placement orders goes to the shorter latency, then the lower energy, at this activity.
            Without it, the max pools are those the graph marks (neurosim's export tags each ``MaxPool2d`` it writes
            as a ``SumPool2d``), and a tie keeps the first order tried: the same cores as the estimate, for an
            activity that measures those pools' events.
    """
    if activity is not None:
        if not isinstance(activity, ActivityProfile):
            raise TypeError(f"map_network: activity must be a hardware_models.ActivityProfile (the activity an "
                            f"estimate would cost) or None, got {type(activity).__name__}")
        return estimate_digital(facts, activity, spec, weight_bits=weight_bits, chips=chips).mapping
    pools = _tagged_max_pools(facts)
    if not pools or spec.options["mapping"] == "layer_per_core":  # (a chip that sum-pools: a max pool stays folded)
        return _placements(facts, spec, weight_bits, chips)[0][0]
    pooled = _pooling_neurons(facts, pools)
    mapping = _placements(pooled, spec, weight_bits, chips)[0][0]
    return replace(mapping, notes=(*mapping.notes, _pooling_note(pooled, pools, "tagged MaxPool2d in the graph")))


def _map(facts, spec, weight_bits, chips):
    """The placement :func:`map_network` returns for ``facts`` as they are (no pools turned into neurons), with its
    mapper (None for ``layer_per_core``)."""
    return _placements(facts, spec, weight_bits, chips)[0]


def _placements(facts, spec, weight_bits, chips) -> list[tuple[MappingResult, _CorePartition | None]]:
    """Every placement of the fewest cores (a tie, for the estimate to break), the search's own pick first."""
    if spec.kind != "digital":
        raise ValueError(f"spec {spec.name!r} is {spec.kind}, not a digital neuromorphic target")
    if not isinstance(chips, int) or chips < 1:
        raise ValueError(f"chips must be a positive integer, got {chips!r}")
    if not isinstance(weight_bits, int) or weight_bits < 1:
        raise ValueError(f"weight_bits must be a positive integer, got {weight_bits!r}")
    # the candidate placements depend on the graph and the spec, not on the activity: kept on the facts for the same
    # spec contents (an early-exit study estimates one network at many activities); keyed by what the spec holds now,
    # so a spec changed in place is placed anew, and the same spec loaded again finds its placements
    key = _placement_key(spec, weight_bits, chips)
    if key not in facts._cache:
        facts._cache[key] = [_map_layer_per_core(facts, spec, weight_bits, chips)] \
            if spec.options["mapping"] == "layer_per_core" else _place(facts, spec, weight_bits, chips)
    return facts._cache[key]


def _placement_key(spec: Spec, weight_bits: int, chips: int) -> tuple:
    """What a placement and its tie depend on: the spec's options, constants and energy terms (whether routing is
    costed decides whether the order matters, :func:`_order_matters`, and a tie's energies), the weights' bits and
    the chips."""
    return ("digital placement", spec.name, tuple(sorted(spec.options.items())),
            tuple(sorted((k, c.si) for k, c in spec.constants.items())), tuple(sorted(spec.energy_terms.items())),
            weight_bits, chips)


def _place(facts, spec, weight_bits, chips) -> list[tuple[MappingResult, _CorePartition]]:
    """The placements of the fewest cores the order search finds (module docstring), in the order tried: the
    search's own pick first (channel-major for all, position-major for all, then each layer flipped in turn; a later
    order replaces the pick only with fewer cores), then every other order that needs as many cores, each with a
    note naming its orders. Where the order can change the estimate beyond its cores (:func:`_order_matters`), the
    orders one flip away from a tied one are tried too (up to ``FLIPS_PER_LAYER`` per spatial layer in all; where that
    cap leaves one untried, each placement's notes say so), so that a tie the sweep passed by (a layer flipped before
    another's flip saved cores) is found. :func:`estimate_digital` breaks a tie by
    latency, then energy."""
    cache: dict = {}

    def partition(orders: dict[str, str]) -> tuple[MappingResult, _CorePartition]:
        m = _CorePartition(facts, spec, weight_bits, chips, orders, cache)
        for pop in m.pops:
            m.map_fan_in(pop)
        for _ in range(8):
            if not m.map_fan_out():
                break
        return m.finish(), m

    def cost(r: tuple[MappingResult, _CorePartition]) -> tuple[int, int]:
        return sum(v.limit != "cores_per_chip" for v in r[0].violations), r[0].cores_used

    channel = best = partition({})
    spatial = channel[1].spatial
    if not spatial:
        return [best]
    # position-major for every spatial population, then one sweep flipping each one's order where it saves cores
    best_orders = dict.fromkeys(spatial, "channel")
    tried, found = [best_orders], [channel]
    for pop in [None, *spatial] if len(spatial) > 1 else [None]:
        if pop is None:
            orders = dict.fromkeys(spatial, "position")
        else:
            orders = {**best_orders, pop: "channel" if best_orders[pop] == "position" else "position"}
        if orders in tried:
            continue
        tried.append(orders)
        r = partition(orders)
        found.append(r)
        if cost(r) < cost(best):
            best, best_orders = r, orders
    capped = False  # an order one flip away from a tied one was left untried: the search stopped at its cap
    if _order_matters(spec):  # the orders one flip away from a tied one, for the estimate to break ties among
        cap = budget = FLIPS_PER_LAYER * len(spatial)  # partitions at most (the sweep above took len(spatial) + 1)
        frontier = [o for o, r in zip(tried, found) if cost(r) == cost(best)]
        while frontier and not capped:
            base = frontier.pop(0)
            for pop in spatial:
                orders = {**base, pop: "channel" if base[pop] == "position" else "position"}
                if orders in tried:
                    continue
                if not budget:
                    capped = True
                    break
                budget -= 1
                tried.append(orders)
                r = partition(orders)
                found.append(r)
                if cost(r) < cost(best):
                    best, frontier = r, [orders]
                elif cost(r) == cost(best):
                    frontier.append(orders)
    tied = [best] + [r for r in found if r is not best and cost(r) == cost(best)]
    searched = [] if not capped else [
        f"placement search: stopped at its cap of {cap} orders one flip away from a tied one ({FLIPS_PER_LAYER} per "
        f"layer with a choice of order), having tried {len(tried)} of the {2 ** len(spatial)} orders of its "
        f"{len(spatial)} such layers: an order left untried may tie (not costed) or need fewer cores"]
    for _, mapper in tied:
        mapper.search_capped = capped
    return [(replace(m, notes=(*m.notes, _order_note(m, mapper, spatial, channel[0].cores_used), *searched)), mapper)
            for m, mapper in tied]


#: orders one flip away from a tied one that :func:`_place` tries, per population whose order is a choice: with up to
#: 4 such populations (every network of the tests and the demo) the cap is never reached (4·n >= 2^n − n − 2 orders
#: left after the sweep); deeper networks note where it was (a search of every order, 2^n, grows too fast)
FLIPS_PER_LAYER = 4


def _order_text(mapper: _CorePartition, spatial: list[str]) -> str:
    """Which layers a placement cuts position-major: ``"position-major 'l1', channel-major 'l2'"``."""
    pos = [q for q in spatial if mapper.place[q].order == "position"]
    chan = [q for q in spatial if q not in pos]
    if not pos:
        return "every layer channel-major"
    return ", ".join(f"{what} {', '.join(map(repr, qs))}" for what, qs in (("position-major", pos),
                                                                           ("channel-major", chan)) if qs)


def _order_note(mapping: MappingResult, mapper: _CorePartition, spatial: list[str], channel_cores: int) -> str:
    pos = [q for q in spatial if mapper.place[q].order == "position"]
    chan = ", ".join(repr(q) for q in spatial if q not in pos)
    if pos:
        return (f"layers {', '.join(map(repr, pos))} placed position-major (a core holds every channel of "
                f"consecutive positions){f', {chan} channel-major' if chan else ''}: {mapping.cores_used} cores, "
                f"against {channel_cores} with every layer in flat channel-major order")
    return (f"layers {chan} placed in flat channel-major order: position-major order (every channel of "
            "consecutive positions on a core) needs as many cores or more")


# ---------------------------------------------------------------------------------------------- energy & latency
def _mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Mean |i − j| over i ~ histogram a, j ~ histogram b.

    In memory and time linear in the histograms' length (a mapping onto many small cores has as many mesh rows):
    |i − j| counts the k with min(i, j) <= k < max(i, j), so the mean is Σ_k P(i <= k < j) + P(j <= k < i) =
    Σ_k A(k)·(1 − B(k)) + B(k)·(1 − A(k)), with A, B the cumulative distributions."""
    if a.sum() == 0 or b.sum() == 0:
        return 0.0
    n = max(len(a), len(b))
    A = np.cumsum(np.pad(np.asarray(a, dtype=np.float64), (0, n - len(a)))) / a.sum()
    B = np.cumsum(np.pad(np.asarray(b, dtype=np.float64), (0, n - len(b)))) / b.sum()
    return float(np.sum(A * (1 - B) + B * (1 - A)))


def _mean_hops(src: range, dst: range, width: int) -> tuple[float, float]:
    s, d = np.arange(src.start, src.stop), np.arange(dst.start, dst.stop)
    if not len(s) or not len(d):
        return 0.0, 0.0
    dx = _mean_abs_diff(np.bincount(s % width, minlength=width), np.bincount(d % width, minlength=width))
    dy = _mean_abs_diff(np.bincount(s // width), np.bincount(d // width))
    return dx, dy


def _pick(spec: Spec, key: str, fallback: str, default: float | None = None) -> float:
    """``key`` if the spec gives it, else ``fallback``, else ``default`` (None: one must exist)."""
    return spec.si(key) if spec.has(key) else spec.si(fallback, default)


def _status_note(spec: Spec, term: str, label: str) -> str | None:
    st = spec.term(term)
    if st == "modelled":
        return None
    if st.startswith("included:"):
        return f"{label}: already inside the {spec.name} {st.split(':', 1)[1]} figure, not added on top"
    return f"{label}: no published {spec.name} figure, left out (0 J)"


# ---------------------------------------------------------------------------------------------- max pools
def _max_pools(facts: GraphFacts, activity: ActivityProfile) -> list[str]:
    """Pooling nodes whose output events ``activity`` measured: max pools (module docstring)."""
    return [n for n in activity.spikes_per_step
            if n not in facts.populations and n in facts.nodes and facts.nodes[n].role == "pool"]


def _pooled_sum(facts: GraphFacts, activity: ActivityProfile, pool: str) -> float:
    """Events leaving ``pool`` per inference when it sums: its inputs' spikes, each sent to every window it is in."""
    total, seen = 0.0, set()
    for proj in facts.projections:
        path = (*proj.pre_path, proj.synapse)
        if pool not in path or proj.source in seen:
            continue
        seen.add(proj.source)
        counts, _ = facts.source_counts(activity, proj.source)
        total += float(facts._path_forward(path[: path.index(pool) + 1], counts).sum())
    return total


def _max_pools_on(facts: GraphFacts, activity: ActivityProfile, spec: Spec
                  ) -> tuple[GraphFacts, ActivityProfile, list[str]]:
    """The graph and activity the chip runs, given its max pools (module docstring), and notes saying so.

    ``core_partition``: each max pool becomes a population of pooling neurons named after the pool (an ``IF`` node of
    the pool's output shape behind the pool's window, ``<pool>_window``), whose spikes are the pool's measured events
    and whose updates are those spikes. ``layer_per_core``: the pools' measured events are set aside (sum pools)."""
    pools = _max_pools(facts, activity)
    if not pools:
        return facts, activity, []
    named = ", ".join(map(repr, pools))
    if spec.options["mapping"] == "layer_per_core":
        kept = {k: v for k, v in activity.spikes_per_step.items() if k not in pools}
        counts = {k: v for k, v in activity.spike_counts.items() if k not in pools}
        summed = replace(activity, spikes_per_step=kept, spike_counts=counts)
        events = "; ".join(f"{p!r}: {_pooled_sum(facts, activity, p):.4g} events per inference instead of the max "
                           f"pool's {float(activity.spikes_per_step[p].sum()):.4g}" for p in pools)
        return facts, summed, [
            f"max pool(s) {named}: {spec.name} has no max pooling (a core sum-pools the events it sends on; sinabs "
            f"takes sum and average pools only), so every spike of a window passes and the pool is counted as the sum "
            f"pool the chip runs ({events}). The later layers' spikes were measured with max pooling: on the chip, "
            "summing, they would differ (neurosim estimate --fixed-point runs the chip's sum pools; train with "
            "model.pool_type=sum for the chip)"]
    pooled = _pooling_neurons(facts, pools)
    updates = {**activity.updates_per_step, **{p: activity.spikes_per_step[p] for p in pools}}
    return pooled, replace(activity, updates_per_step=updates), [_pooling_note(pooled, pools, "")]


def _pooling_neurons(facts: GraphFacts, pools: list[str]) -> GraphFacts:
    """``facts`` with each of ``pools`` a population of pooling neurons named after the pool (an ``IF`` node of the
    pool's output shape behind the pool's window, ``<pool>_window``); kept on ``facts`` for the same pools."""
    key = ("max pools as neurons", tuple(sorted(pools)))
    if key not in facts._cache:
        g = facts.graph
        nodes, window = dict(g.nodes), {}
        for p in pools:
            name, i = f"{p}_window", 0
            while name in nodes:
                name, i = f"{p}_window_{i}", i + 1
            window[p] = name
            shape = facts.nodes[p].output_shape
            nodes[name] = g.nodes[p]  # the pool's window (weights 1) ...
            nodes[p] = nir.IF(r=np.ones(shape), v_threshold=np.ones(shape))  # ... into one neuron per window
        edges = [(a, window.get(b, b)) for a, b in g.edges] + [(window[p], p) for p in pools]
        facts._cache[key] = analyze(nir.NIRGraph(nodes=nodes, edges=edges, metadata=dict(g.metadata or {}),
                                                 type_check=False))
    return facts._cache[key]


def _pooling_note(pooled: GraphFacts, pools: list[str], how: str) -> str:
    neurons = sum(pooled.populations[p].neurons for p in pools)
    return (f"max pool(s) {', '.join(map(repr, pools))}{f' ({how})' if how else ''}: mapped as {neurons} pooling "
            "neurons, one per window and channel, each firing in the steps where an input of its window spiked (the "
            "max of spikes; a max cannot be folded into the next layer's weights as a sum pool can): the pooled "
            "spikes are routed to them as synaptic events, and only the pool's measured events travel on to the next "
            "layer")


def _tagged_max_pools(facts: GraphFacts) -> list[str]:
    """Pooling nodes the graph itself marks as max pools: neurosim's export writes a ``MaxPool2d`` as a ``SumPool2d``
    whose metadata holds ``{"neurosim": {"layer": "MaxPool2d"}}`` (:mod:`neurosim.export.nir`, ``MAX_POOL_TAG`` here;
    nir's files keep node metadata). Other tools write no max pool to NIR (it has no node for one)."""
    out = []
    for name, f in facts.nodes.items():
        md = getattr(facts.graph.nodes.get(name), "metadata", None) if f.role == "pool" else None
        tag = md.get(MAX_POOL_TAG[0]) if isinstance(md, dict) else None
        layer = tag.get(MAX_POOL_TAG[1]) if isinstance(tag, dict) else None
        if isinstance(layer, bytes):  # (a string as h5py may read it back)
            layer = layer.decode(errors="replace")
        if layer == MAX_POOL_TAG[2]:
            out.append(name)
    return out


def estimate_digital(facts: GraphFacts, activity: ActivityProfile, spec: Spec, *,
                     weight_bits: int = DEFAULT_WEIGHT_BITS, chips: int = 1,
                     placed_for: ActivityProfile | None = None, placement_ties: str = "latency") -> Estimate:
    """Energy, latency and mapping of one inference on a digital neuromorphic target.

    Where several placement orders need the fewest cores, the one with the shortest latency per inference, then the
    least energy, then the first tried, is costed (module docstring, "Placement ties"), at ``activity``, or at
    ``placed_for`` when given: a chip is placed once, so a study that estimates one network at many activities (each
    sample, each exit step) passes the activity it places the network for, and every estimate keeps that placement.
    ``placement_ties="energy"`` breaks such a tie by the least energy first, then the shortest latency.

    Raises:
        ValueError: ``placed_for`` measures the events of other max pools than ``activity`` (on every target, with or
            without a tie: the two are activities of different networks), or ``placement_ties`` is not one of
            :data:`PLACEMENT_TIES`.
    """
    if placement_ties not in PLACEMENT_TIES:
        raise ValueError(f"placement_ties must be one of {', '.join(map(repr, PLACEMENT_TIES))} (what breaks a tie "
                         f"between placement orders of as many cores first), got {placement_ties!r}")
    facts.check_activity(activity)
    if placed_for is not None:
        if not isinstance(placed_for, ActivityProfile):
            raise TypeError(f"placed_for must be a hardware_models.ActivityProfile (the activity the network is "
                            f"placed for) or None, got {type(placed_for).__name__}")
        facts.check_activity(placed_for)
        theirs, ours = sorted(_max_pools(facts, placed_for)), sorted(_max_pools(facts, activity))
        if theirs != ours:  # on every target, tied or not: a pool measured in one only is another model's activity
            why = (f"on {spec.name} a max pool becomes pooling neurons, so the networks placed would differ"
                   if spec.options["mapping"] == "core_partition" else "a pool measured in one only is another "
                   "model's, or another export's, activity")
            raise ValueError(f"placed_for measures the events of max pools {theirs}, the activity estimated those of "
                             f"{ours}: both must measure the same pools ({why}); measure both on the same model, "
                             "exported alike")
    notes = _untagged_pool_notes(facts, activity, spec)
    chip_facts, chip_activity, pool_notes = _max_pools_on(facts, activity, spec)  # what the chip runs for a max pool
    candidates = _placements(chip_facts, spec, weight_bits, chips)
    if len(candidates) == 1:
        return _estimate_placed(chip_facts, chip_activity, spec, *candidates[0], notes + pool_notes)
    if not _order_matters(spec):
        est = _estimate_placed(chip_facts, chip_activity, spec, *candidates[0], notes + pool_notes)
        return _with_tie(est, _tie_note(candidates, None, 0, ""), _tied_orders(candidates, None, 0))
    if placed_for is None:
        ests = [_estimate_placed(chip_facts, chip_activity, spec, m, mapper, notes + pool_notes)
                for m, mapper in candidates]
        best = _fastest(ests, placement_ties)
        return _with_tie(ests[best], _tie_note(candidates, ests, best, "at this activity", placement_ties),
                         _tied_orders(candidates, ests, best))
    ref_facts, ref_activity, _ = _max_pools_on(facts, placed_for, spec)  # (the same pools: checked above)
    key = ("placement for", _placement_key(spec, weight_bits, chips), _activity_digest(placed_for), placement_ties)
    if key not in chip_facts._cache:
        ests = [_estimate_placed(ref_facts, ref_activity, spec, m, mapper, []) for m, mapper in candidates]
        best = _fastest(ests, placement_ties)
        chip_facts._cache[key] = best, _tie_note(candidates, ests, best, "at the activity it is placed for "
                                                                        "(placed_for)", placement_ties), \
            _tied_orders(candidates, ests, best)
    best, note, tied = chip_facts._cache[key]
    return _with_tie(_estimate_placed(chip_facts, chip_activity, spec, *candidates[best], notes + pool_notes), note,
                     tied)


#: what breaks a tie between placement orders that need as many cores, first (then the other)
PLACEMENT_TIES = ("latency", "energy")


def _fastest_key(e: Estimate) -> tuple[float, float]:
    """Latency per inference, then energy, each to 12 significant digits (float noise between placements ties)."""
    return float(f"{e.latency_per_inference_s or 0.0:.12g}"), float(f"{e.total_energy_j:.12g}")


def _fastest(ests: list[Estimate], placement_ties: str = "latency") -> int:
    """Index of the shortest latency per inference, then the least energy (``placement_ties="energy"``: the least
    energy, then the shortest latency), then the first."""
    order = slice(None) if placement_ties == "latency" else slice(None, None, -1)
    return min(range(len(ests)), key=lambda i: (*_fastest_key(ests[i])[order], i))


def _order_matters(spec: Spec) -> bool:
    """Whether the placement order can change an estimate on ``spec`` beyond its core count: through the busiest
    core's time (per-operation times) or routing's hops and messages. Without either (TrueNorth's all-in energy,
    SpiNNaker's), placements of as many cores cost the same."""
    return spec.has("time.synaptic_op") or spec.term("routing") == "modelled"


def _tie_note(candidates, ests: list[Estimate] | None, best: int, where: str, placement_ties: str = "latency") -> str:
    """A short note on a placement tie: how many orders tied, the rule that chose, the order chosen with its figures,
    and where the other rule would choose another, that one's (every order's figures: :func:`_tied_orders`)."""
    spatial = list(candidates[0][1].spatial)
    orders = [_order_text(mapper, spatial) for _, mapper in candidates]
    head = f"placement tie: {len(candidates)} orders need the same {candidates[0][0].cores_used} cores"
    if candidates[0][1].search_capped:
        head += " (the search reached its cap, see its note: more may tie)"
    if ests is None:
        return (f"{head}; on {candidates[0][0].target} the order changes neither latency nor energy (no time per "
                f"operation, no routing cost): the first tried is used ({orders[0]})")
    if len({_fastest_key(e) for e in ests}) == 1:
        return f"{head} and give the same latency and energy {where}: the first tried is used ({orders[0]})"

    def figures(e: Estimate) -> str:
        return f"{e.latency_per_inference_s * 1e3:.4g} ms, {e.total_energy_j * 1e6:.4g} µJ"

    latency_first = placement_ties == "latency"
    rule = ("the shortest latency per inference {}, then the least energy" if latency_first else
            "the least energy per inference {}, then the shortest latency")
    other = _fastest(ests, "energy" if latency_first else "latency")  # what the other rule would choose
    trade = ""
    if _fastest_key(ests[other]) != _fastest_key(ests[best]):  # (then better in the other metric, worse in the rule's)
        trade = (f"; the {'least energy' if latency_first else 'shortest latency'} of them: {orders[other]} "
                 f"({figures(ests[other])})")
    return (f"{head}; {rule.format(where)}, chose {orders[best]} ({figures(ests[best])}){trade}; every tied order's "
            "figures: the mapping's tied_orders")


def _tied_orders(candidates, ests: list[Estimate] | None, best: int) -> tuple[dict, ...]:
    """Every tied order, in the order tried, with its figures (None where they were not costed: the order changes
    neither) and whether it is the one used: :attr:`MappingResult.tied_orders`."""
    spatial = list(candidates[0][1].spatial)
    return tuple({"order": _order_text(mapper, spatial),
                  "position_major": [q for q in spatial if mapper.place[q].order == "position"],
                  "latency_per_inference_s": None if ests is None else ests[i].latency_per_inference_s,
                  "total_energy_j": None if ests is None else ests[i].total_energy_j,
                  "used": i == best} for i, (_, mapper) in enumerate(candidates))


def _with_tie(est: Estimate, note: str, tied: tuple[dict, ...]) -> Estimate:
    mapping = replace(est.mapping, notes=(*est.mapping.notes, note), tied_orders=tied)
    return replace(est, mapping=mapping, notes=tuple(dict.fromkeys((*est.notes, note))))


def _activity_digest(a: ActivityProfile) -> str:
    """A fingerprint of everything an estimate reads from ``a`` (to keep a placement chosen for it)."""
    import hashlib

    h = hashlib.sha256(repr((a.time_steps, float(a.dt_s), a.samples)).encode())
    for table in (a.spikes_per_step, a.spike_counts, a.updates_per_step):
        for name in sorted(table):
            v = np.ascontiguousarray(table[name], dtype=np.float64)
            h.update(name.encode() + repr(v.shape).encode() + v.tobytes())
        h.update(b"\1")
    h.update(np.ascontiguousarray(a.input_events_per_step, dtype=np.float64).tobytes())
    return h.hexdigest()


def _untagged_pool_notes(facts: GraphFacts, activity: ActivityProfile, spec: Spec) -> list[str]:
    """A note for each pool the graph marks as a max pool but whose events the activity lacks: costed as a sum pool,
    while :func:`map_network` without an activity maps it as a max pool."""
    missing = [p for p in _tagged_max_pools(facts) if p not in activity.spikes_per_step]
    if not missing or spec.options["mapping"] == "layer_per_core":
        return []
    return [f"pool(s) {', '.join(map(repr, missing))} are max pools in the graph (tagged MaxPool2d), but the activity "
            "has no events for them: costed as sum pools, folded into the next layer (more synaptic events, no "
            "pooling neurons; map_network without an activity maps them as max pools); measure their events "
            "(neurosim estimate records them) to cost them as max pools"]


def _estimate_placed(facts: GraphFacts, activity: ActivityProfile, spec: Spec, mapping: MappingResult,
                     mapper: _CorePartition | None, pool_notes: list[str]) -> Estimate:
    """The estimate on one placement (``facts`` and ``activity`` as the chip runs them: :func:`_max_pools_on`)."""
    T = activity.time_steps
    synops = facts.synops(activity)
    on_chip = [n for n, p in facts.populations.items() if p.on_chip]
    notes: list[str] = list(spec.notes) + list(mapping.notes) + pool_notes

    # ---- counts
    spikes = {n: float(facts.source_series(activity, n).sum()) for n in facts.populations}
    active = sum(spikes[n] for n in on_chip if facts.populations[n].spiking)
    slices = {n: (mapper.place[n].k if mapper else 1) for n in on_chip}
    compartments = sum(facts.populations[n].neurons * slices[n] for n in on_chip)
    idle = max(compartments * T - active, 0.0)

    width = max(1, math.ceil(math.sqrt(mapping.cores_per_chip)))
    core_range = {n: range(l.first_core, l.first_core + l.cores) for n, l in mapping.layers.items()}
    messages = 0.0
    routing_j = 0.0
    msgs_total = {n: 0.0 for n in facts.populations}
    hop_delay = 0.0
    e_msg = spec.si("energy.spike_message", 0.0)
    e_ew = spec.si("energy.hop_ew", spec.si("energy.hop", 0.0))
    e_ns = spec.si("energy.hop_ns", spec.si("energy.hop", 0.0))
    t_ew = spec.si("time.hop_ew", spec.si("time.hop", 0.0))
    t_ns = spec.si("time.hop_ns", spec.si("time.hop", 0.0))
    for proj in facts.projections:
        counts, _ = facts.source_counts(activity, proj.source)
        if mapper is not None:
            dest = mapper.place[proj.source].dest_per_proj.get(proj) if proj.source in mapper.place else None
            if dest is None:
                dest = mapper.proj_dest(proj)
        else:
            dest = np.ones(counts.size)  # one destination core per layer
        msgs = float(np.dot(counts.ravel(), dest))
        msgs_total[proj.source] += msgs
        messages += msgs
        if mapper is not None and facts.populations[proj.source].on_chip and proj.target in core_range:
            dx, dy = _mean_hops(core_range[proj.source], core_range[proj.target], width)
            if msgs > 0:
                hop_delay = max(hop_delay, dx * t_ew + dy * t_ns)
        else:
            dx = dy = 0.0
        routing_j += msgs * (e_msg + dx * e_ew + dy * e_ns)
    if any(not facts.populations[p.source].on_chip for p in facts.projections) and spec.term("routing") == "modelled":
        notes.append("input events enter their destination cores at the per-message cost, without mesh hops")
    if mapper is not None and spec.term("routing") == "modelled" and mapping.cores_used > mapping.cores_per_chip:
        notes.append(f"routing over {math.ceil(mapping.cores_used / mapping.cores_per_chip)} chips: the cores past "
                     f"the first chip continue its {width}-wide mesh row by row, and a hop between chips is priced as "
                     "one on a chip; chip-to-chip links (slower and costlier per hop) are not modelled, so routing "
                     "energy and hop delay are rough")

    # ---- energy
    e = {"synaptic": 0.0, "neuron_active": 0.0, "neuron_idle": 0.0, "routing": 0.0, "static": 0.0}
    if spec.term("synaptic") == "modelled":
        e["synaptic"] = synops.total * spec.si("energy.synaptic_op")
    if spec.term("neuron_update") == "modelled":
        e_access = spec.si("energy.neuron_access", 0.0)  # every compartment, every step, updated or not
        e_act = e_access + _pick(spec, "energy.neuron_update_active", "energy.neuron_update") + spec.si(
            "energy.spike_out", 0.0)
        e_idle = e_access + _pick(spec, "energy.neuron_update_idle", "energy.neuron_update")
        e["neuron_active"], e["neuron_idle"] = active * e_act, idle * e_idle
        if spec.has("energy.neuron_access") and not spec.has("energy.neuron_update_idle"):
            at_rest, note = _sanafe_rest(facts, activity, on_chip, slices, spikes, spec)
            e["neuron_idle"] -= at_rest * spec.si("energy.neuron_update")  # those pay the access alone
            notes.append(note)
    if spec.term("routing") == "modelled":
        e["routing"] = routing_j
    for term, label in (("synaptic", "synaptic events"), ("neuron_update", "neuron updates"),
                        ("routing", "spike routing"), ("static", "static power")):
        note = _status_note(spec, term, label)
        if note:
            notes.append(note)

    # ---- latency
    step_compute = _busiest_core(facts, activity, spec, mapper, synops, msgs_total, spikes)
    sync, sync_note = _sync_time(spec, mapping)
    if sync_note:
        notes.append(sync_note)
    step_compute = step_compute + (hop_delay + sync) * (step_compute > 0)
    timing = spec.options["timing"]
    if timing == "step_driven":
        step = step_compute
    else:
        floor = spec.si("time.tick") if timing == "fixed_tick" else activity.dt_s
        if step_compute.max(initial=0.0) > floor:
            notes.append(f"the busiest core needs up to {step_compute.max():.3g} s per step, more than the "
                         f"{floor:.3g} s {'tick' if timing == 'fixed_tick' else 'input step (dt)'}: it falls behind")
        step = np.maximum(step_compute, floor)
    notes += _real_time_notes(facts, activity, spec, mapping, synops, step_compute)
    run_time = float(step.sum())
    pipeline = 0.0
    if spec.has("time.event_pipeline"):
        layers_used = max(1, len(on_chip))
        pipeline = spec.si("time.event_pipeline") * layers_used / spec.si("capacity.pipeline_layers", layers_used)
    chips_on = mapping.chips_needed or max(1, math.ceil(mapping.cores_used / mapping.cores_per_chip))
    if spec.term("static") == "modelled":
        e["static"] = spec.si("power.static") * chips_on * run_time
    if spec.has("power.typical") and spec.term("static").startswith("included:"):
        ref = spec.si("power.typical") * chips_on * run_time
        notes.append(f"for reference: typical chip power x run time = {ref:.3g} J per inference "
                     f"({chips_on} chip(s), {run_time:.3g} s); not added")

    per_layer = {}
    for n, p in facts.populations.items():
        lm = mapping.layers.get(n)
        per_layer[n] = {
            "neurons": p.neurons, "on_chip": p.on_chip,
            "synapses_in": float(facts.fan_in(n).sum()), "synops_in": synops.per_target.get(n, 0.0),
            "spikes": spikes[n], "messages_out": msgs_total[n],
            "firing_rate_hz": spikes[n] / (p.neurons * T * activity.dt_s) if p.neurons else 0.0,
            "cores": lm.cores if lm else 0,
        }
    notes.append("neuron update = active when the neuron fires in that step, idle otherwise")
    inexact = [lbl for lbl in synops.per_projection if lbl not in synops.exact]
    if inexact:
        notes.append(f"no per-neuron spike counts for {len(inexact)} projection(s): their spikes were spread evenly")
    return Estimate(
        target=spec.name, kind=spec.kind, energy_j=e, total_energy_j=float(sum(e.values())),
        latency_per_step_s=float(step.mean()), latency_per_step_max_s=float(step.max()),
        latency_per_inference_s=run_time + pipeline, synops=synops.total, time_steps=T, mapping=mapping,
        per_layer=per_layer, notes=tuple(dict.fromkeys(notes)), sources=spec.citations(),
    )


def _real_time_notes(facts: GraphFacts, activity: ActivityProfile, spec: Spec, mapping: MappingResult,
                     synops, step_compute: np.ndarray) -> list[str]:
    """Whether the chip keeps up with input arriving every ``dt`` (the real time of the activity's steps), where the
    latency model alone does not say so: a step-driven chip whose busiest core takes longer than ``dt``; a fixed-tick
    chip whose tick is longer than ``dt``; a real-time chip without per-operation times, whose latency is ``T · dt``
    whatever its load (its busiest layer's synaptic operations per second are given, to compare with what its cores
    can process). Where the spec gives operation times, a fixed-tick or real-time step already lasts as long as the
    busiest core needs (module docstring), with its own note."""
    dt, timing, name = activity.dt_s, spec.options["timing"], spec.name
    busiest = float(step_compute.max(initial=0.0))
    if timing == "step_driven" and busiest > dt:
        return [f"not real time at this step: {name} starts a step when the last is done, and its slowest step "
                f"takes {busiest:.3g} s, more than the input's step (dt = {dt:.3g} s): input arriving every dt would "
                f"queue up, coming up to {busiest / dt:.4g}x faster than the chip takes it (the latency is the "
                "chip's compute time)"]
    if timing == "fixed_tick" and spec.si("time.tick") > dt * (1 + 1e-9):
        tick = spec.si("time.tick")
        return [f"not real time at this step: {name} advances one step per {tick:.3g} s tick, longer than the "
                f"input's step (dt = {dt:.3g} s): it runs {tick / dt:.4g}x slower than the input arrives"]
    if timing != "realtime" or spec.has("time.synaptic_op"):
        return []
    per_step: dict[str, np.ndarray] = {}
    for proj in facts.projections:
        if proj.target in mapping.layers:
            per_step[proj.target] = per_step.get(proj.target, 0.0) + synops.per_projection_step[proj.label]
    load = {pop: float(np.max(s)) / max(1, mapping.layers[pop].cores) for pop, s in per_step.items()}
    if not load or max(load.values()) <= 0:
        return []
    pop = max(load, key=load.get)
    per_core = " per core (its events spread evenly over its cores)" if mapping.layers[pop].cores > 1 else ""
    return [f"real time not checked: {name} publishes no time per synaptic operation, so the latency is T x dt "
            f"(dt = {dt:.3g} s) whatever the load; at this step the busiest layer, {pop!r}, takes up to "
            f"{load[pop]:.4g} synaptic operations in a step{per_core}, {load[pop] / dt:.3g} per second: where that "
            "is more than its core can process, the chip falls behind (a shorter step asks more per second) and the "
            "latency is longer"]


def _sanafe_rest(facts: GraphFacts, activity: ActivityProfile, on_chip: list[str], slices: dict[str, int],
                 spikes: dict[str, float], spec: Spec) -> tuple[float, str]:
    """Compartment-steps at rest (no input, zero potential: no update charged, SANA-FE's condition) and a note that
    says how updates were counted; on-chip populations without ``updates_per_step`` count as updated in every step."""
    T = activity.time_steps
    given = activity.updates_per_step  # (checked against the graph by GraphFacts.check_activity)
    at_rest = updated = 0.0
    for n in on_chip:
        if n not in given:
            continue
        neurons, series = facts.populations[n].neurons, given[n]
        at_rest += (neurons * T - float(series.sum())) * slices[n]
        updated += float(series.sum()) * slices[n]
    unmeasured = [n for n in on_chip if n not in given]
    e_upd = spec.si("energy.neuron_update")
    if not unmeasured:
        total = sum(facts.populations[n].neurons * slices[n] for n in on_chip) * T
        return at_rest, (
            f"neuron updates: every compartment pays the access in every step; the update ({e_upd * 1e12:.3g} pJ) "
            f"only in the {updated:.6g} of {total:.6g} compartment-steps where its neuron had input or a nonzero "
            "membrane potential (the activity's updates_per_step; SANA-FE's condition)")
    over = sum(facts.populations[n].neurons * slices[n] * T - spikes[n] for n in unmeasured) * e_upd
    which = "the activity" if len(unmeasured) == len(on_chip) else f"layers {', '.join(map(repr, unmeasured))}"
    return at_rest, (
        f"neuron updates: {which} without updates_per_step (an activity.json from before neurosim recorded them, or a "
        "layer it does not record): every compartment there is counted as updated in every step (access + update), "
        f"an upper bound: at most {over:.3g} J less if only the neurons that fire were updated; measure the activity "
        "again for SANA-FE's count (input or a nonzero potential)")


def _sync_time(spec: Spec, mapping: MappingResult) -> tuple[float, str | None]:
    """Barrier time per step and, for a table, a note saying which entry applies.

    ``time.sync_table`` is looked up as SANA-FE's ``LookupTable::get`` does: the entry of the largest tile count
    at or below the tiles in use (the first entry below the smallest count). Tiles in use = ⌈cores used /
    cores per tile⌉ (cores are numbered contiguously, so only the last tile can be partly used)."""
    if not spec.has("time.sync_table"):
        return spec.si("time.sync", 0.0), None
    counts = [int(c) for c in spec.constants["capacity.sync_table_tiles"].value]
    times = spec.si("time.sync_table")
    tiles = max(1, math.ceil(mapping.cores_used / spec.si("capacity.cores_per_tile")))
    i = max(0, int(np.searchsorted(counts, tiles, side="right")) - 1)
    return float(times[i]), (f"barrier sync {times[i] * 1e6:.3g} µs per step: {tiles} tile(s) of "
                             f"{int(spec.si('capacity.cores_per_tile'))} cores in use, the table's entry for "
                             f"{counts[i]} (the largest at or below the tiles in use)")


def _busiest_core(facts, activity, spec, mapper, synops, msgs_total, spikes) -> np.ndarray:
    """``(T,)`` time of the busiest core per step (0 where the spec gives no operation times)."""
    T = activity.time_steps
    if mapper is None or not spec.has("time.synaptic_op"):
        return np.zeros(T)
    t_syn = spec.si("time.synaptic_op")
    t_act = _pick(spec, "time.neuron_update_active", "time.neuron_update", 0.0)
    t_idle = _pick(spec, "time.neuron_update_idle", "time.neuron_update", 0.0)
    t_msg = spec.si("time.spike_message", 0.0)
    busiest = np.zeros(T)
    for pop, p in mapper.place.items():
        chunks = len(p.starts)
        sizes = np.diff(np.append(p.starts, p.neurons)).astype(np.float64)
        syn = np.zeros((chunks, T))
        for proj in facts.projections_to(pop):
            counts, _ = facts.source_counts(activity, proj.source)
            rec = facts.received(proj, counts, activity).ravel()
            if rec.sum() > 0:
                frac = p.chunk_sums(rec) / rec.sum()
            else:
                fi = facts.projection_fan_in(proj).ravel()
                frac = p.chunk_sums(fi) / max(fi.sum(), 1.0)
            syn += np.outer(frac, synops.per_projection_step[proj.label]) / p.k
        series = facts.source_series(activity, pop)
        own, _ = facts.source_counts(activity, pop)
        own = own.ravel()
        own_frac = p.chunk_sums(own) / own.sum() if own.sum() > 0 else np.zeros(chunks)
        act = np.outer(own_frac, series) if facts.populations[pop].spiking else np.zeros((chunks, T))
        idle = np.maximum(sizes[:, None] - act, 0.0)
        d = mapper.dest_out(pop)
        weighted = own * d
        msgs = np.zeros((chunks, T))
        if weighted.sum() > 0 and spikes[pop] > 0:
            msgs = np.outer(p.chunk_sums(weighted) / weighted.sum(), series * (msgs_total[pop] / spikes[pop]))
        t = syn * t_syn + act * t_act + idle * t_idle + msgs * t_msg
        busiest = np.maximum(busiest, t.max(axis=0))
    return busiest

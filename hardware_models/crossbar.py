"""RRAM crossbar compute-in-memory: tile mapping, and energy and latency per inference from spiking activity.

**Mapping.** Every weight matrix goes onto tiles (sub-arrays) of ``rows × columns`` cells:

* ``Linear``/``Affine``: one logical row per input, one logical column per output. All Linear projections into
  the same population are stacked on the rows of one matrix (e.g. a recurrent layer's input and recurrent
  weights share its columns, as in the RRAM liquid state machine; :mod:`neurosim.hardware.nonideal` reads a dense
  recurrent layer's chips so, tile by tile of the stack).
* A **one-to-one recurrence** (a self-loop whose ``N × N`` matrix is zero off its diagonal,
  :mod:`hardware_models.graph`) is ``N`` single weights, not a matrix: neuron ``i``'s weight is one differential
  pair on a row of its own, driven by its own spike, and columns of its own, converted on their own (as
  :class:`neurosim.hardware.nonideal.CrossbarDiagonal` programs it). The pairs sit on disjoint rows and columns,
  ``b = min(rows, ⌊columns / (2 · slices)⌋)`` to a tile (the tile's diagonal), so ``⌈N / b⌉`` tiles and
  ``N · 2 · slices`` cells; stacked on the input weights' rows it would take ``N`` rows of every column tile of
  the layer, ``N²`` weights of which ``N − 1`` in each row are zeros. Its tiles are read like a linear layer's row
  blocks of ``b`` rows, each read converting and accumulating only the ``b`` weights of its block.
* ``Conv1d``/``Conv2d`` (im2col): ``C_in/groups · kh · kw`` logical rows, ``C_out/groups`` logical columns, one
  matrix per group; the matrix is read once per output position (``OH · OW`` reads per step).
* A signed weight is a **differential pair** of cells (``G⁺ − G⁻``); its magnitude is quantised to
  ``weight_bits − 1`` bits and **sliced** over ``slices = ⌈(weight_bits − 1) / cell_bits⌉`` cells per side, so
  one weight takes ``2 · slices`` physical columns. A weight's columns stay in one tile:
  ``⌊columns / (2 · slices)⌋`` logical columns per tile.

  tiles = groups · ⌈rows_logical / rows⌉ · ⌈columns_logical / ⌊columns / (2 · slices)⌋⌉

  ``columns_per_adc`` columns share one ADC; utilisation = used cells / (tiles · rows · columns).
* Small matrices **share tiles** block-diagonally where the chip's tile count (``array.tiles_per_chip``) would
  otherwise be exceeded (``share_tiles="auto"``; True or False force it): the last row block's last column tile
  of each matrix (or conv group), when it leaves both rows and columns free, is packed first-fit by decreasing
  size with others on disjoint rows and columns. Each piece is still read on its own (its rows driven, its
  columns converted), so the energy below is unchanged; only the tile count (static power, chips needed) and the
  latency (a shared tile reads its pieces one after the other) change.

**Energy per inference.** Inputs are spikes, so only rows that receive a spike in a step are driven
(``activity_blind=True`` instead drives every row of every tile in every crossbar cycle, as SpikeSim counts it):

    cell_read       = Σ_driven rows (a·V)² · t_read · Σ_cells in the row G     (G from the actual weights)
    wordline_driver = driven rows · column tiles · columns_per_adc · E_wl  (E_wl per row and column-mux round)
    adc             = tile reads · used columns · E_adc        (a tile is read when >= 1 of its rows is driven)
    shift_add       = tile reads · used columns · E_shift_add  (combine slices and the differential pair)
    accumulate      = tile reads · logical columns · E_acc + synops of weightless projections · E_acc
    neuron_update   = neurons · T · E_neuron                   (LIF update in the digital periphery)
    buffer          = bits moved · E_bit   (the rows of each row block read, membrane read + write, output spikes)
    static          = P_static_per_tile · tiles · latency

A tile read converts its columns in ``columns_per_adc`` rounds (each ADC takes one of its columns per round); the
array is driven in every round, as SpikeSim's ``PE_cycle_energy`` charges its crossbar read energy once per round
(``xbar_size / 8`` rounds of 8-column muxes). A cell holding digit ``d`` of ``2^cell_bits − 1`` has ``G = G_off + d/(2^cell_bits − 1)·(G_on − G_off)``; the
other cell of its pair sits at ``G_off``. Each matrix is quantised against its own largest ``|w|``, so where several
are stacked on one array's rows (a recurrent layer's ``[W_in | W_rec]``) the columns add their currents in one scale
only if each matrix's rows are read at the amplitude ``a = max|W| / max over the stack of max|W|`` of the full read
voltage ``V``, as :mod:`neurosim.hardware.nonideal` reads them (a row of the largest-scale matrix, and every row of a
matrix on its own, at ``a = 1``); a row read at ``a·V`` takes ``(a·V)²·G·t_read`` per cell. The wordline driver's
energy per drive is the spec's whatever ``a``. Driven rows per step follow the ActivityProfile: a source neuron with
``c`` spikes per run and a population series ``s[t]`` spikes in step t at rate ``c·s[t]/Σs``. A tile is read at a
position and step with probability ``1 − Π_rows (1 − rate)`` (rows independent), so zero input gives no array,
driver, ADC, shift-add or accumulate energy — only neuron updates, membrane traffic and static power — and the
array and driver energy are linear in the number of driven rows.

**Latency.** A tile does one read per cycle ``t_cycle = t_read + columns_per_adc · t_adc + t_clock`` (the
ADC-sharing columns are converted one after the other); the tiles of a layer work in parallel, so a layer's
step takes (expected reads of its busiest tile) · t_cycle + t_clock, where a shared tile's reads are those of all
its pieces, one after the other. Layers form a pipeline over time steps:
latency = Σ_t max_layer step[t] + (fill: Σ_layer step[0] − max_layer step[0]).

Example:
    >>> import numpy as np, nir
    >>> from hardware_models import ActivityProfile, estimate
    >>> g = nir.NIRGraph.from_list(
    ...     nir.Linear(weight=np.ones((100, 300))),
    ...     nir.LIF(tau=np.ones(100), r=np.ones(100), v_leak=np.zeros(100), v_threshold=np.ones(100)))
    >>> act = ActivityProfile(time_steps=2, dt_s=1e-3, samples=1, spikes_per_step={"lif": np.array([3.0, 1.0])},
    ...                       input_events_per_step=np.array([20.0, 10.0]))
    >>> est = estimate(g, act, "rram_neurosim")
    >>> est.mapping.cores_used  # 300 rows -> 3 row tiles; 8-bit weights, 1 bit/cell: 14 columns/weight -> 9 per tile
    36
    >>> blind = estimate(g, act, "rram_neurosim", activity_blind=True)
    >>> bool(blind.energy_j["adc"] > est.energy_j["adc"])
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import specs as _specs
from .activity import ActivityProfile
from .graph import ConvGeometry, GraphFacts, Projection
from .results import Estimate, LayerMapping, MappingResult, Violation
from .specs import Spec

__all__ = ["CrossbarLayer", "CrossbarMapping", "map_crossbar", "estimate_crossbar", "cell_conductances",
           "CROSSBAR_SECTIONS", "OPTIONS"]

# The crossbar model needs resistances and voltages in its spec files; the loader learns these units here.
_specs.UNITS.setdefault("resistance", {"ohm": 1.0, "kohm": 1e3, "Mohm": 1e6})
_specs.UNITS.setdefault("voltage", {"mV": 1e-3, "V": 1.0})
_specs.SI_NAMES.setdefault("resistance", "ohm")
_specs.SI_NAMES.setdefault("voltage", "V")

CROSSBAR_SECTIONS = {
    "array": {"rows": "count", "columns": "count", "cell_bits": "bits", "weight_bits": "bits", "adc_bits": "bits",
              "columns_per_adc": "count", "psum_bits": "bits", "tiles_per_chip": "count"},
    "device": {"r_on": "resistance", "r_off": "resistance", "v_read": "voltage", "t_read": "time"},
    "energy": {"adc_conversion": "energy", "wordline_driver": "energy", "shift_add": "energy",
               "accumulate": "energy", "neuron_update": "energy", "buffer_per_bit": "energy"},
    "time": {"adc_conversion": "time", "clock": "time"},
    "power": {"static_per_tile": "power"},
}
_OPTIONAL = {"array.tiles_per_chip"}
OPTIONS = ("activity_blind", "weight_bits", "cell_bits", "tile_size", "columns_per_adc", "share_tiles")


def _check_spec(constants, fail) -> None:
    """What the loader checks of a crossbar spec beyond each constant (widths >= 1 bit it checks itself): a cell's
    on resistance must be above zero and below its off resistance (``G_on > G_off``: the model's conductances,
    and the on/off ratio ``--nonideal`` programs); and the array the model refuses at estimate time (there naming
    only the value, as an option may override it): weights of 2..16 bits, at most as many columns per ADC as a
    tile has, and a tile wide enough for one weight's differential pair of slices."""
    value = {k: int(constants[f"array.{k}"].value) for k in ("weight_bits", "cell_bits", "columns", "columns_per_adc")}
    if not 2 <= value["weight_bits"] <= 16:
        raise fail("array.weight_bits", f"{value['weight_bits']} bits: a signed weight needs 2..16 (a sign, carried by "
                   "the differential pair, and 1..15 magnitude bits)")
    if value["columns_per_adc"] > value["columns"]:
        raise fail("array.columns_per_adc", f"{value['columns_per_adc']} is more than the tile's {value['columns']} "
                   "columns (array.columns): an ADC takes turns among columns of one tile; lower it or widen the tile")
    slices = math.ceil((value["weight_bits"] - 1) / value["cell_bits"])
    if 2 * slices > value["columns"]:
        raise fail("array.columns", f"{value['columns']} columns cannot hold one weight: {value['weight_bits']}-bit "
                   f"weights on {value['cell_bits']}-bit cells take {slices} cell(s) per side of the differential "
                   f"pair, {2 * slices} columns; widen the tile, or raise array.cell_bits or lower array.weight_bits")
    r_on, r_off = constants["device.r_on"], constants["device.r_off"]
    if r_on.si <= 0:
        raise fail("device.r_on", f"value {r_on.value:g} {r_on.unit} must be > 0 (conductance 1/r_on)")
    if r_on.si >= r_off.si:
        raise fail("device.r_on", f"{r_on.value:g} {r_on.unit} must be below device.r_off ({r_off.value:g} "
                   f"{r_off.unit}): a cell's on state conducts more than its off state (on/off ratio r_off / r_on > 1)")


_specs.register_spec_kind(
    "crossbar", CROSSBAR_SECTIONS,
    required=[f"{s}.{k}" for s, keys in CROSSBAR_SECTIONS.items() for k in keys if f"{s}.{k}" not in _OPTIONAL],
    check=_check_spec)

_INTERP_POINTS = 24  # steps with more distinct rates than this interpolate log P(no row driven) over the rate


# ---------------------------------------------------------------------------------------------- mapping
@dataclass(frozen=True)
class CrossbarLayer:
    """One weight matrix on crossbar tiles.

    Attributes:
        target: the population its columns feed; ``synapses``: the synapse node(s) stacked on its rows.
        kind: ``linear`` (stacked Linear/Affine), ``conv`` (im2col) or ``diagonal`` (a one-to-one recurrence:
            ``rows = columns = N`` single weights, ``b = min(tile rows, weights_per_tile)`` of them to a tile, so
            ``row_tiles`` blocks of ``b`` rows, one tile each, and ``col_tiles = 1``).
        rows / columns: logical matrix size per group (inputs, outputs).
        groups: separate matrices (conv groups).
        positions: reads per time step (conv output positions; 1 for linear).
        slices: cells per weight magnitude on each side of the differential pair.
        weights_per_tile: logical columns per tile (``⌊tile columns / (2 · slices)⌋``).
        row_tiles / col_tiles / tiles: tiles along the rows, the columns, and in all, for the matrix on tiles of
            its own (:attr:`CrossbarMapping.shared_tiles` says which of its corner tiles it shares).
        used_cells: programmed cells (``groups · rows · columns · 2 · slices``).
        adcs: ADCs over all tiles (``tiles · ⌈tile columns / columns_per_adc⌉``).
        utilisation: used cells / (tiles · tile rows · tile columns).
        block_rows: logical rows of one row block: the tile's rows, or for a diagonal layer ``b``.
    """

    target: str
    synapses: tuple[str, ...]
    kind: str
    rows: int
    columns: int
    groups: int
    positions: int
    slices: int
    weights_per_tile: int
    row_tiles: int
    col_tiles: int
    tiles: int
    used_cells: int
    adcs: int
    utilisation: float
    block_rows: int = 0

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class CrossbarMapping:
    """All layers of a network on tiles of ``tile_rows × tile_columns``.

    ``shared_tiles``: tiles holding several small matrices block-diagonally (disjoint rows and columns), each
    given as ``(layer index, group)`` pairs; a matrix (or conv group) shares only its last row block's last
    column tile, and only when that piece leaves both rows and columns free.
    """

    target: str
    tile_rows: int
    tile_columns: int
    weight_bits: int
    cell_bits: int
    columns_per_adc: int
    layers: tuple[CrossbarLayer, ...]
    digital_projections: tuple[str, ...] = ()  # labels of projections without weights (one-to-one, pool only)
    tiles_per_chip: int | None = None
    shared_tiles: tuple[tuple[tuple[int, int], ...], ...] = ()

    @property
    def tiles(self) -> int:
        return sum(l.tiles for l in self.layers) - sum(len(t) for t in self.shared_tiles) + len(self.shared_tiles)

    def layer_tiles(self, indices) -> int:
        """Tiles holding weights of the layers at ``indices`` (a tile they share counted once)."""
        idx = set(indices)
        shared = [t for t in self.shared_tiles if any(i in idx for i, _ in t)]
        return sum(self.layers[i].tiles for i in idx) - sum(i in idx for t in shared for i, _ in t) + len(shared)

    @property
    def utilisation(self) -> float:
        cap = self.tiles * self.tile_rows * self.tile_columns
        return sum(l.used_cells for l in self.layers) / cap if cap else 0.0

    def to_mapping_result(self, facts: GraphFacts) -> MappingResult:
        """The mapping as the shared :class:`MappingResult` (a tile counts as a core)."""
        by_target: dict[str, list[int]] = {}
        for i, l in enumerate(self.layers):
            by_target.setdefault(l.target, []).append(i)
        layers = {}
        first = 0
        shared_at: dict[int, int] = {}  # shared tile -> its index in placement order, once placed
        for name, pop in facts.populations.items():
            if not pop.on_chip:
                continue
            idx = by_target.get(name, [])
            ls = [self.layers[i] for i in idx]
            tiles = self.layer_tiles(idx)  # a tile shared with other layers counts in each
            # its own tiles come next, then the shared tiles it is the first to use; one placed by an earlier
            # layer keeps its index (so first_core is the layer's lowest tile index, never past the tiles used)
            mine = [k for k, t in enumerate(self.shared_tiles) if any(i in idx for i, _ in t)]
            start = first
            first += tiles - len(mine)
            for k in mine:
                if k not in shared_at:
                    shared_at[k] = first
                    first += 1
            start = min([start] + [shared_at[k] for k in mine]) if tiles else start
            layers[name] = LayerMapping(
                name=name, neurons=pop.neurons, cores=tiles, neurons_per_core=min((l.weights_per_tile for l in ls),
                                                                                  default=pop.neurons),
                first_core=start, slots=pop.neurons,
                input_slices=max((l.row_tiles for l in ls if l.kind != "diagonal"), default=1),
                limited_by="tile_columns",
                max_synapses_per_core=float(self.tile_rows * min((l.weights_per_tile for l in ls), default=0)),
                max_axons_in_per_core=float(min(self.tile_rows, max((l.rows for l in ls), default=0))))
        violations, chips = [], 1
        tpc = self.tiles_per_chip
        if tpc:
            chips = max(1, math.ceil(self.tiles / tpc))
            if self.tiles > tpc:
                used = sum(l.used_cells for l in self.layers)
                cap = tpc * self.tile_rows * self.tile_columns
                violations.append(Violation(
                    "tiles_per_chip", None, self.tiles, tpc,
                    f"the network needs {self.tiles} tiles, one {self.target} chip has {tpc} (over by "
                    f"{self.tiles - tpc}, {self.tiles / tpc:.2f}x): {chips} chips; its weights take {used:,} cells, "
                    f"{100 * used / cap:.1f} % of the chip's {cap:,}, but a matrix larger than a tile takes whole "
                    "tiles and small ones share a tile only where their rows and columns both fit beside each other"))
        return MappingResult(target=self.target, cores_used=self.tiles, cores_per_chip=int(tpc or self.tiles or 1),
                             chips_needed=chips, fits=not violations, layers=layers, violations=tuple(violations),
                             notes=())

    def to_dict(self) -> dict:
        return {"tile_rows": self.tile_rows, "tile_columns": self.tile_columns, "weight_bits": self.weight_bits,
                "cell_bits": self.cell_bits, "columns_per_adc": self.columns_per_adc, "tiles": self.tiles,
                "utilisation": self.utilisation, "layers": [l.to_dict() for l in self.layers],
                "digital_projections": list(self.digital_projections),
                "shared_tiles": [[{"layer": self.layers[i].target, "group": g} for i, g in t]
                                 for t in self.shared_tiles]}


def _positive_int(name: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


def _settings(spec: Spec, weight_bits, cell_bits, tile_size, columns_per_adc, share_tiles="auto") -> dict:
    if spec.kind != "crossbar":
        raise ValueError(f"spec {spec.name!r} is {spec.kind}, not a crossbar target")
    if share_tiles != "auto" and not isinstance(share_tiles, (bool, np.bool_)):
        raise ValueError(f"share_tiles must be 'auto', True or False, got {share_tiles!r}")
    s = {
        "rows": int(spec.si("array.rows")), "columns": int(spec.si("array.columns")),
        "weight_bits": int(spec.si("array.weight_bits")), "cell_bits": int(spec.si("array.cell_bits")),
        "columns_per_adc": int(spec.si("array.columns_per_adc")), "share_tiles": share_tiles,
    }
    if tile_size is not None:
        s["rows"] = s["columns"] = _positive_int("tile_size", tile_size)
    if weight_bits is not None:
        s["weight_bits"] = _positive_int("weight_bits", weight_bits)
    if cell_bits is not None:
        s["cell_bits"] = _positive_int("cell_bits", cell_bits)
    if columns_per_adc is not None:
        s["columns_per_adc"] = _positive_int("columns_per_adc", columns_per_adc)
    if not 2 <= s["weight_bits"] <= 16:
        raise ValueError(f"weight_bits must be 2..16 (a sign and 1..15 magnitude bits), got {s['weight_bits']}")
    if s["columns_per_adc"] > s["columns"]:
        raise ValueError(f"columns_per_adc is {s['columns_per_adc']} but a tile has {s['columns']} columns: an ADC "
                         "cannot take turns among more columns than the tile has")
    s["slices"] = math.ceil((s["weight_bits"] - 1) / s["cell_bits"])
    if 2 * s["slices"] > s["columns"]:
        raise ValueError(f"one weight needs {2 * s['slices']} columns ({s['weight_bits']}-bit weights, "
                         f"{s['cell_bits']} bit(s) per cell, differential pair) but a tile has {s['columns']}")
    return s


def _group_projections(facts: GraphFacts):
    """(linear groups {target: {synapse: [projections]}}, conv groups {(synapse, target): [projections]},
    weightless projections, one-to-one recurrences [projections]). A synapse node fed by several sources (a skip
    connection) is one group: its weights are placed once and its input events are those of all its sources."""
    linear: dict[str, dict[str, list[Projection]]] = {}
    conv: dict[tuple[str, str], list[Projection]] = {}
    digital, diagonal = [], []
    for p in facts.projections:
        if p.synapse is None or facts.nodes[p.synapse].role != "synapse":
            digital.append(p)
        elif facts.nodes[p.synapse].one_to_one:
            diagonal.append(p)
        elif facts.linear_mask(p.synapse) is not None:
            linear.setdefault(p.target, {}).setdefault(p.synapse, []).append(p)
        else:
            conv.setdefault((p.synapse, p.target), []).append(p)
    return linear, conv, digital, diagonal


def _layer(target, synapses, kind, rows, columns, groups, positions, s) -> CrossbarLayer:
    per_tile = s["columns"] // (2 * s["slices"])
    if kind == "diagonal":  # rows = columns = N single weights, b to a tile on its diagonal
        block = min(s["rows"], per_tile)
        row_tiles, col_tiles = math.ceil(rows / block), 1
        used = rows * 2 * s["slices"]
    else:
        block = s["rows"]
        row_tiles = math.ceil(rows / s["rows"])
        col_tiles = math.ceil(columns / per_tile)
        used = groups * rows * columns * 2 * s["slices"]
    tiles = groups * row_tiles * col_tiles
    adcs = tiles * math.ceil(s["columns"] / s["columns_per_adc"])
    return CrossbarLayer(target=target, synapses=tuple(synapses), kind=kind, rows=rows, columns=columns, groups=groups,
                         positions=positions, slices=s["slices"], weights_per_tile=per_tile, row_tiles=row_tiles,
                         col_tiles=col_tiles, tiles=tiles, used_cells=used, adcs=adcs,
                         utilisation=used / (tiles * s["rows"] * s["columns"]), block_rows=block)


def map_crossbar(facts: GraphFacts, spec: Spec, *, weight_bits: int | None = None, cell_bits: int | None = None,
                 tile_size: int | None = None, columns_per_adc: int | None = None,
                 share_tiles: bool | str = "auto") -> CrossbarMapping:
    """Place every weight matrix of ``facts`` on ``spec``'s tiles (see the module docstring).

    Args:
        weight_bits: bits per signed weight (default: the spec's); the sign is carried by the differential pair.
        cell_bits: bits stored per cell (default: the spec's).
        tile_size: square tile size (e.g. 64, 128, 256) instead of the spec's rows × columns.
        columns_per_adc: columns sharing one ADC (default: the spec's).
        share_tiles: pack small matrices into shared tiles (module docstring): ``"auto"`` where the chip's tile
            count (``array.tiles_per_chip``) would otherwise be exceeded, True always, False never. Sharing saves
            tiles but a shared tile reads its pieces one after the other, so it costs latency.
    """
    s = _settings(spec, weight_bits, cell_bits, tile_size, columns_per_adc, share_tiles)
    return _map(facts, spec, s)


def _map(facts: GraphFacts, spec: Spec, s: dict) -> CrossbarMapping:
    linear, conv, digital, diagonal = _group_projections(facts)
    layers = []
    for target, by_syn in linear.items():
        rows = sum(facts.nodes[syn].input_shape[0] for syn in by_syn)
        cols = int(np.prod(facts.nodes[next(iter(by_syn))].output_shape))
        layers.append(_layer(target, list(by_syn), "linear", rows, cols, 1, 1, s))
    for syn, target in conv:
        g = facts.geometry(syn)
        rows = g.c_in_per_group * g.kernel[0] * g.kernel[1]
        layers.append(_layer(target, [syn], "conv", rows, g.c_out_per_group, g.groups,
                             g.out_shape[1] * g.out_shape[2], s))
    for p in diagonal:
        n = facts.nodes[p.synapse].output_shape[0]
        layers.append(_layer(p.target, [p.synapse], "diagonal", n, n, 1, 1, s))
    tpc = int(spec.si("array.tiles_per_chip")) if spec.has("array.tiles_per_chip") else None
    share = s["share_tiles"]
    if share == "auto":  # only where the chip's tiles would not hold the network otherwise
        share = tpc is not None and sum(l.tiles for l in layers) > tpc
    return CrossbarMapping(target=spec.name, tile_rows=s["rows"], tile_columns=s["columns"],
                           weight_bits=s["weight_bits"], cell_bits=s["cell_bits"],
                           columns_per_adc=s["columns_per_adc"], layers=tuple(layers),
                           digital_projections=tuple(p.label for p in digital), tiles_per_chip=tpc,
                           shared_tiles=_pack(layers, s) if share else ())


def _pack(layers: list[CrossbarLayer], s: dict) -> tuple[tuple[tuple[int, int], ...], ...]:
    """Tiles shared block-diagonally by small pieces: the last row block's last column tile of each matrix (per
    conv group) when it leaves rows and columns free, packed first-fit by decreasing size into tiles whose rows
    and logical columns add up to at most a tile's. Only tiles with two or more pieces are returned."""
    R = s["rows"]
    items = []
    for i, l in enumerate(layers):
        if l.kind == "diagonal":  # the last block: its weights on as many rows and columns
            r = c = l.rows - (l.row_tiles - 1) * l.block_rows
        else:
            r = l.rows - (l.row_tiles - 1) * R
            c = l.columns - (l.col_tiles - 1) * l.weights_per_tile
        if r < R and c < l.weights_per_tile:
            items += [(max(r / R, c / l.weights_per_tile), i, g, r, c) for g in range(l.groups)]
    items.sort(key=lambda it: -it[0])  # stable: equal sizes stay in layer and group order
    bins: list[list] = []  # [rows used, columns used, pieces], in opening order
    open_bins: list[list] = []  # those with rows and columns left
    for _, i, g, r, c in items:
        per_tile = layers[i].weights_per_tile
        for b in open_bins:
            if b[0] + r <= R and b[1] + c <= per_tile:
                b[0], b[1] = b[0] + r, b[1] + c
                b[2].append((i, g))
                break
        else:
            b = [r, c, [(i, g)]]
            bins.append(b)
            open_bins.append(b)
        if b[0] == R or b[1] == per_tile:
            open_bins.remove(b)
    return tuple(tuple(b[2]) for b in bins if len(b[2]) > 1)


# ---------------------------------------------------------------------------------------------- conductances
def _magnitude_codes(w: np.ndarray, weight_bits: int) -> np.ndarray:
    """|w| quantised to ``weight_bits − 1`` bits against the largest |w| (integers 0 … 2^(bits−1) − 1)."""
    top = float(np.abs(w).max(initial=0.0))
    if top == 0:
        return np.zeros(w.shape, dtype=np.int64)
    return np.rint(np.abs(w) / top * (2 ** (weight_bits - 1) - 1)).astype(np.int64)


def cell_conductances(weight: np.ndarray, weight_bits: int, cell_bits: int, g_on_s: float,
                      g_off_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Conductances of the cells holding ``weight`` (any shape) as differential pairs of bit-sliced cells.

    The magnitude is quantised to ``weight_bits − 1`` bits against the largest |weight|, split into
    ``cell_bits``-bit digits (least significant first); a digit ``d`` programs ``G_off + d/(2^cell_bits−1)·(G_on−G_off)``
    on the side of the weight's sign, the other side holds ``G_off``.

    Returns:
        ``(g_pos, g_neg)``, each of shape ``weight.shape + (slices,)`` in siemens.

    Example:
        >>> gp, gn = cell_conductances(np.array([1.0, -1.0, 0.0]), 2, 1, g_on_s=1e-5, g_off_s=1e-6)
        >>> gp[:, 0].tolist(), gn[:, 0].tolist()
        ([1e-05, 1e-06, 1e-06], [1e-06, 1e-05, 1e-06])
    """
    w = np.asarray(weight, dtype=np.float64)
    slices = math.ceil((weight_bits - 1) / cell_bits)
    q = _magnitude_codes(w, weight_bits)
    base = 2**cell_bits - 1
    digits = np.stack([(q >> (cell_bits * k)) & base for k in range(slices)], axis=-1).astype(np.float64)
    g = g_off_s + digits / base * (g_on_s - g_off_s)
    return np.where((w > 0)[..., None], g, g_off_s), np.where((w < 0)[..., None], g, g_off_s)


def _pair_conductance(w: np.ndarray, weight_bits: int, cell_bits: int, g_on: float, g_off: float) -> np.ndarray:
    """Σ over the ``2 · slices`` cells of each weight of G (same as summing :func:`cell_conductances`), fast."""
    slices = math.ceil((weight_bits - 1) / cell_bits)
    base = 2**cell_bits - 1
    codes = np.arange(2 ** (weight_bits - 1))
    digit_sum = sum((codes >> (cell_bits * k)) & base for k in range(slices)).astype(np.float64)
    q = _magnitude_codes(w, weight_bits)
    return 2 * slices * g_off + digit_sum[q] / base * (g_on - g_off)


def _row_conductance(facts: GraphFacts, layer: CrossbarLayer, s: dict, g_on: float, g_off: float) -> np.ndarray:
    """Σ over a row's used cells of G, per logical row: ``(rows,)`` for linear and diagonal, ``(groups, rows)`` for
    conv."""
    out = []
    for syn in layer.synapses:
        w = np.asarray(facts.graph.nodes[syn].weight, dtype=np.float64)
        if layer.kind == "diagonal":  # one pair per row: the neuron's own weight
            return _pair_conductance(np.diag(w), s["weight_bits"], s["cell_bits"], g_on, g_off)
        tot = _pair_conductance(w, s["weight_bits"], s["cell_bits"], g_on, g_off)  # per weight
        if layer.kind == "linear":
            out.append(tot.sum(axis=0))  # over outputs -> (N_in,)
        else:
            G = layer.groups
            tot = tot.reshape(G, tot.shape[0] // G, *tot.shape[1:])  # (G, C_out/G, C_in/G, kh, kw)
            return tot.sum(axis=1).reshape(G, -1)
    return np.concatenate(out)


def _stack_amplitudes(facts: GraphFacts, layer: CrossbarLayer) -> list[float] | None:
    """Read amplitude of each matrix stacked on a linear layer's rows (in ``layer.synapses``' order), relative to
    the full read voltage: its largest ``|w|`` over the stack's largest (module docstring); None where every row is
    read at the full voltage (one matrix, a conv, a one-to-one recurrence, a stack of all-zero matrices)."""
    if layer.kind != "linear" or len(layer.synapses) < 2:
        return None
    tops = [float(np.abs(np.asarray(facts.graph.nodes[syn].weight, dtype=np.float64)).max(initial=0.0))
            for syn in layer.synapses]
    top = max(tops)
    return None if top == 0 else [t / top for t in tops]


# ---------------------------------------------------------------------------------------------- activity
def _step_fraction(facts: GraphFacts, activity: ActivityProfile, proj) -> np.ndarray:
    series = np.asarray(facts.projection_series(activity, proj), dtype=np.float64)
    total = series.sum()
    return series / total if total > 0 else np.zeros_like(series)


def _log_idle(rate: np.ndarray) -> np.ndarray:
    """log P(a row is not driven) for per-step rates (clipped just below certainty to stay finite)."""
    return np.log1p(-np.clip(rate, 0.0, 1.0 - 1e-12))


def _per_step(fracs: np.ndarray, fn):
    """Evaluate ``fn(f) -> array`` for every step's fraction f, exactly for few distinct values, else by
    linear interpolation over a grid of the (smooth, concave) function of f."""
    uniq = np.unique(fracs)
    if len(uniq) <= _INTERP_POINTS:
        table = {float(f): fn(float(f)) for f in uniq}
        return np.stack([table[float(f)] for f in fracs], axis=-1)
    top = float(uniq[-1])
    grid = np.linspace(0.0, top, _INTERP_POINTS)
    vals = np.stack([fn(float(f)) for f in grid], axis=-1)
    pos = np.clip(np.asarray(fracs) / top * (_INTERP_POINTS - 1), 0, _INTERP_POINTS - 1)
    lo = np.minimum(pos.astype(np.int64), _INTERP_POINTS - 2)
    w = pos - lo
    return vals[..., lo] * (1 - w) + vals[..., lo + 1] * w


@dataclass
class _LayerCounts:
    driven_rows: float = 0.0  # row drives (per position) over the run
    cell_conductance_drive: float = 0.0  # Σ over drives of the row's total conductance (S), times a² (read amplitude)
    reads: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (T,) expected row-block reads
    busiest: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (T,) expected reads of the busiest row block
    row_bits: float = 0.0  # Σ over row-block reads of the rows in that block (input bits buffered), over the run
    block_reads: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))  # (groups, row blocks, T)


def _block_rows(rows: int, R: int, nb: int) -> np.ndarray:
    """Rows held by each of the ``nb`` row blocks of ``R`` rows (the last one may be partly filled)."""
    return np.minimum(R, rows - R * np.arange(nb)).astype(float)


def _linear_counts(facts, activity, layer, g_row, s, blind) -> _LayerCounts:
    T = activity.time_steps
    R = layer.block_rows
    c = _LayerCounts()
    counts, fracs = [], []
    for syn in layer.synapses:
        e = np.zeros(facts.nodes[syn].input_shape[0])
        f = np.zeros(T)
        for p in facts.projections:
            if p.synapse == syn and p.target == layer.target:
                src, _ = facts.source_counts(activity, p.source)
                ev = np.reshape(facts.events_at_synapse(p, src, activity), -1)
                e += ev
                f = f + _step_fraction(facts, activity, p) * ev.sum()
        f = f / e.sum() if e.sum() > 0 else f
        counts.append(e)
        fracs.append(f)
    nb = layer.row_tiles
    if blind:
        c.driven_rows = float(T * layer.rows)
        c.cell_conductance_drive = float(T * g_row.sum())
        c.reads = np.full(T, float(nb))
        c.busiest = np.ones(T)
        c.row_bits = float(T * layer.rows)
        c.block_reads = np.ones((1, nb, T))
        return c
    c.driven_rows = float(sum(e.sum() for e in counts))
    c.cell_conductance_drive = float(np.dot(np.concatenate(counts), g_row))
    # log P(idle) per row and step; rows of different sources have their own per-step series
    logs = []
    for e, f in zip(counts, fracs):
        logs.append(_per_step(f, lambda x, e=e: _log_idle(e * x)))  # (n_rows_source, T)
    L = np.concatenate(logs, axis=0)
    pad = nb * R - L.shape[0]
    L = np.concatenate([L, np.zeros((pad, T))]).reshape(nb, R, T).sum(axis=1)
    P = 1.0 - np.exp(L)  # (nb, T)
    c.reads = P.sum(axis=0)
    c.busiest = P.max(axis=0)
    c.block_reads = P[None]
    c.row_bits = float(P.sum(axis=1) @ _block_rows(layer.rows, R, nb))
    return c


def _window_sum(g: ConvGeometry, kernel_values: np.ndarray) -> np.ndarray:
    """``(C_in, H, W)``: Σ over output positions and kernel offsets reading each input of ``kernel_values[c, ky, kx]``."""
    C, H, W = g.in_shape
    _, OH, OW = g.out_shape
    (sy, sx), (dy, dx) = g.stride, g.dilation
    acc = np.zeros((C, H + g.pad_lo[0] + g.pad_hi[0], W + g.pad_lo[1] + g.pad_hi[1]))
    for ky in range(g.kernel[0]):
        for kx in range(g.kernel[1]):
            y0, x0 = ky * dy, kx * dx
            acc[:, y0: y0 + sy * (OH - 1) + 1: sy, x0: x0 + sx * (OW - 1) + 1: sx] += kernel_values[:, ky, kx][:, None, None]
    return acc[:, g.pad_lo[0]: g.pad_lo[0] + H, g.pad_lo[1]: g.pad_lo[1] + W]


def _conv_counts(facts, activity, layer, projs, g_row, s, blind) -> _LayerCounts:
    T = activity.time_steps
    g = facts.geometry(projs[0].synapse)
    C, H, W = g.in_shape
    G, cin = g.groups, g.c_in_per_group
    kh, kw = g.kernel
    K = kh * kw
    R = s["rows"]
    nb = layer.row_tiles
    P_out = layer.positions
    c = _LayerCounts()
    if blind:
        c.driven_rows = float(T * P_out * G * layer.rows)
        c.cell_conductance_drive = float(T * P_out * g_row.sum())
        c.reads = np.full(T, float(G * nb * P_out))
        c.busiest = np.full(T, float(P_out))
        c.row_bits = float(T * P_out * G * layer.rows)
        c.block_reads = np.full((G, nb, T), float(P_out))
        return c
    e, f = np.zeros((C, H, W)), np.zeros(T)
    for proj in projs:  # the events of every source feeding this conv (several on a skip connection)
        src, _ = facts.source_counts(activity, proj.source)
        ev = np.reshape(facts.events_at_synapse(proj, src, activity), (C, H, W))
        e += ev
        f = f + _step_fraction(facts, activity, proj) * ev.sum()
    f = f / e.sum() if e.sum() > 0 else f
    ones = np.ones((C, kh, kw))
    c.driven_rows = float((e * _window_sum(g, ones)).sum())
    gk = g_row.reshape(G * cin, kh, kw)  # row conductance per (input channel, ky, kx)
    c.cell_conductance_drive = float((e * _window_sum(g, gk)).sum())
    if e.sum() == 0:
        c.reads, c.busiest, c.block_reads = np.zeros(T), np.zeros(T), np.zeros((G, nb, T))
        return c
    OH, OW = g.out_shape[1], g.out_shape[2]
    (sy, sx), (dy, dx) = g.stride, g.dilation
    Hp, Wp = H + g.pad_lo[0] + g.pad_hi[0], W + g.pad_lo[1] + g.pad_hi[1]

    def block_log_idle(x: float) -> np.ndarray:
        """(G, nb, OH, OW): log P(no row of the block driven) at step fraction x."""
        Lp = np.zeros((C, Hp, Wp))
        Lp[:, g.pad_lo[0]: g.pad_lo[0] + H, g.pad_lo[1]: g.pad_lo[1] + W] = _log_idle(e * x)
        Lp = Lp.reshape(G, cin, Hp, Wp)
        S = np.zeros((G, nb, OH, OW))
        for ky in range(kh):
            for kx in range(kw):
                k = ky * kw + kx
                blk = (np.arange(cin) * K + k) // R  # block of row (c, ky, kx), monotone in c
                starts = np.flatnonzero(np.r_[True, blk[1:] != blk[:-1]])
                y0, x0 = ky * dy, kx * dx
                sl = Lp[:, :, y0: y0 + sy * (OH - 1) + 1: sy, x0: x0 + sx * (OW - 1) + 1: sx]
                S[:, blk[starts]] += np.add.reduceat(sl, starts, axis=1)
        return S

    L = _per_step(f, block_log_idle)  # (G, nb, OH, OW, T)
    P = 1.0 - np.exp(L)
    per_block = P.sum(axis=(2, 3))  # (G, nb, T) expected reads of each row block's tiles
    c.reads = per_block.sum(axis=(0, 1))
    c.busiest = per_block.max(axis=(0, 1))
    c.block_reads = per_block
    c.row_bits = float(per_block.sum(axis=(0, 2)) @ _block_rows(layer.rows, R, nb))
    return c


# ---------------------------------------------------------------------------------------------- estimate
def estimate_crossbar(facts: GraphFacts, activity: ActivityProfile, spec: Spec, *, activity_blind: bool = False,
                      weight_bits: int | None = None, cell_bits: int | None = None, tile_size: int | None = None,
                      columns_per_adc: int | None = None, share_tiles: bool | str = "auto") -> Estimate:
    """Energy, latency and tile mapping of one inference on an RRAM crossbar target (module docstring).

    Args:
        activity_blind: count every crossbar cycle with every row driven (SpikeSim-style accounting) instead of
            only the rows and tiles that receive spikes.
        weight_bits, cell_bits, tile_size, columns_per_adc: override the spec (see :func:`map_crossbar`).
        share_tiles: ``"auto"`` (where the chip's tile count binds), True or False (see :func:`map_crossbar`).
    """
    if not isinstance(activity_blind, (bool, np.bool_)):
        raise TypeError(f"activity_blind must be True or False, got {activity_blind!r}")
    facts.check_activity(activity)
    s = _settings(spec, weight_bits, cell_bits, tile_size, columns_per_adc, share_tiles)
    mapping = _map(facts, spec, s)
    T = activity.time_steps
    g_on, g_off = 1.0 / spec.si("device.r_on"), 1.0 / spec.si("device.r_off")
    v, t_read = spec.si("device.v_read"), spec.si("device.t_read")
    e_wl = spec.si("energy.wordline_driver") * s["columns"] / spec.si("array.columns")  # line length scales
    e_wl *= s["columns_per_adc"]  # the rows stay driven through every column-mux round of a tile read
    e_adc, e_sa = spec.si("energy.adc_conversion"), spec.si("energy.shift_add")
    e_acc, e_neu, e_bit = spec.si("energy.accumulate"), spec.si("energy.neuron_update"), spec.si("energy.buffer_per_bit")
    psum = spec.si("array.psum_bits")
    t_adc, t_clk = spec.si("time.adc_conversion"), spec.si("time.clock")
    t_cycle = t_read + s["columns_per_adc"] * t_adc + t_clk

    e = {k: 0.0 for k in ("cell_read", "wordline_driver", "adc", "shift_add", "accumulate", "neuron_update",
                          "buffer", "static")}
    synops = facts.synops(activity)
    per_layer: dict[str, dict] = {n: {"neurons": p.neurons, "on_chip": p.on_chip, "tiles": 0, "used_cells": 0,
                                      "tile_reads": 0.0, "driven_rows": 0.0, "adc_conversions": 0.0,
                                      "synops_in": synops.per_target.get(n, 0.0)}
                                  for n, p in facts.populations.items()}
    step_time: dict[str, np.ndarray] = {}
    _, conv, digital, _ = _group_projections(facts)
    result = mapping.to_mapping_result(facts)
    counts, amplitudes = [], {}
    for layer in mapping.layers:
        g_row = _row_conductance(facts, layer, s, g_on, g_off)
        amps = _stack_amplitudes(facts, layer)
        if amps is not None:  # a row read at a·V costs (a·V)²·G·t_read: its conductance counts a² times
            rows = [np.shape(facts.graph.nodes[syn].weight)[1] for syn in layer.synapses]
            g_row = g_row * np.repeat(np.square(amps), rows)
            amplitudes[layer.target] = amps
        if layer.kind in ("linear", "diagonal"):
            counts.append(_linear_counts(facts, activity, layer, g_row, s, activity_blind))
        else:
            counts.append(_conv_counts(facts, activity, layer, conv[(layer.synapses[0], layer.target)], g_row, s,
                                       activity_blind))
    # a shared tile reads its pieces one after the other: its pieces' row blocks wait for all of them
    shared_wait = [np.zeros(T) for _ in mapping.layers]
    for tile in mapping.shared_tiles:
        busy = sum(counts[i].block_reads[g, -1] for i, g in tile)
        for i, _ in tile:
            shared_wait[i] = np.maximum(shared_wait[i], busy)
    for li, (layer, cnt) in enumerate(zip(mapping.layers, counts)):
        reads = float(cnt.reads.sum())  # row-block reads; each reads all col_tiles tiles of the block
        if layer.kind == "diagonal":  # a block's read converts the weights of its block alone
            columns_read = float(cnt.block_reads[0].sum(axis=1) @ _block_rows(layer.rows, layer.block_rows,
                                                                              layer.row_tiles))
        else:
            columns_read = reads * layer.columns  # logical columns of one group, over all its column tiles
        conversions = columns_read * 2 * layer.slices
        e["cell_read"] += v * v * t_read * cnt.cell_conductance_drive
        e["wordline_driver"] += cnt.driven_rows * layer.col_tiles * e_wl
        e["adc"] += conversions * e_adc
        e["shift_add"] += conversions * e_sa
        e["accumulate"] += columns_read * e_acc
        e["buffer"] += cnt.row_bits * e_bit  # a block's input bits, read once per block read and broadcast
        t = np.maximum(cnt.busiest, shared_wait[li]) * t_cycle
        step_time[layer.target] = step_time.get(layer.target, np.zeros(T)) + t
        pl = per_layer[layer.target]
        pl["used_cells"] += layer.used_cells
        pl["tile_reads"] += reads * layer.col_tiles
        pl["driven_rows"] += cnt.driven_rows
        pl["adc_conversions"] += conversions
    for n, lm in result.layers.items():
        if per_layer[n]["used_cells"]:
            per_layer[n]["tiles"] = lm.cores  # tiles holding its weights; a shared tile counts in each layer
            per_layer[n]["utilisation"] = per_layer[n]["used_cells"] / (lm.cores * s["rows"] * s["columns"])
    for p in digital:  # one-to-one or pooling-only paths: additions in the digital periphery
        e["accumulate"] += synops.per_projection[p.label] * e_acc
    on_chip = [n for n, p in facts.populations.items() if p.on_chip]
    updates = sum(facts.populations[n].neurons for n in on_chip) * T
    spikes_out = sum(float(facts.source_series(activity, n).sum()) for n in on_chip if facts.populations[n].spiking)
    e["neuron_update"] = updates * e_neu
    e["buffer"] += (updates * 2 * psum + spikes_out) * e_bit  # membrane read + write, spikes written
    for n in on_chip:
        step_time[n] = step_time.get(n, np.zeros(T)) + t_clk  # the layer's LIF update (parallel periphery)

    steps = np.stack(list(step_time.values())) if step_time else np.zeros((1, T))
    per_step = steps.max(axis=0)
    fill = float(steps[:, 0].sum() - steps[:, 0].max())
    latency = float(per_step.sum()) + fill
    e["static"] = spec.si("power.static_per_tile") * mapping.tiles * latency

    for n, p in facts.populations.items():
        spikes = float(facts.source_series(activity, n).sum())
        per_layer[n]["spikes"] = spikes
        per_layer[n]["firing_rate_hz"] = spikes / (p.neurons * T * activity.dt_s) if p.neurons else 0.0
        per_layer[n]["cores"] = per_layer[n]["tiles"]

    notes = list(spec.notes) + [
        f"tiles of {s['rows']}x{s['columns']} cells; {s['weight_bits']}-bit weights as differential pairs of "
        f"{mapping.layers[0].slices if mapping.layers else math.ceil((s['weight_bits'] - 1) / s['cell_bits'])} "
        f"{s['cell_bits']}-bit cell(s) per side; {s['columns_per_adc']} columns share one ADC",
        f"{mapping.tiles} tiles, utilisation {100 * mapping.utilisation:.1f} %",
        ("activity-blind (SpikeSim-style): every row of every tile is driven in every crossbar cycle" if activity_blind
         else "activity-aware: only rows that receive a spike are driven; a tile converts only when one of its "
              "rows is driven (rows assumed independent within a step)"),
        f"crossbar cycle {t_cycle * 1e9:.3g} ns = read pulse + {s['columns_per_adc']} ADC conversions + one clock; "
        "layers pipelined over time steps",
        "LIF neurons are updated every step in the digital periphery (membrane read + write per update)",
    ]
    if mapping.shared_tiles:
        pieces = sum(len(t) for t in mapping.shared_tiles)
        names = "; ".join(" + ".join(_piece_name(mapping.layers[i], g) for i, g in t) for t in mapping.shared_tiles[:4])
        more = f"; and {len(mapping.shared_tiles) - 4} more" if len(mapping.shared_tiles) > 4 else ""
        notes.append(f"{pieces} small weight matrices (or their last tiles) share {len(mapping.shared_tiles)} tile(s) "
                     f"block-diagonally, on disjoint rows and columns ({names}{more}); each is read on its own, one "
                     "after the other, so its energy is as on a tile of its own; a shared tile counts in each of "
                     "its layers' tiles")
    for target, amps in amplitudes.items():
        if min(amps) < 1:
            stack = next(l for l in mapping.layers if l.target == target).synapses
            notes.append(f"{target!r}: its stacked matrices' rows are read at "
                         f"{', '.join(f'{a:.3g}' for a in amps)} of the read voltage ({', '.join(map(repr, stack))}; "
                         "each matrix quantised against its own largest weight), a cell costing (a·V)²·G·t_read")
    diagonal = [l for l in mapping.layers if l.kind == "diagonal"]
    if diagonal:
        notes.append(f"one-to-one recurrence(s) ({', '.join(repr(l.synapses[0]) for l in diagonal)}): N single "
                     "weights, each a differential pair on a row and columns of its own (driven by its neuron's own "
                     f"spike), {diagonal[0].block_rows} to a tile on disjoint rows and columns; not an N x N matrix")
    if mapping.digital_projections:
        notes.append(f"{len(mapping.digital_projections)} projection(s) without weights (one-to-one or pooling only) "
                     "are additions in the digital periphery, not crossbar reads")
    if any(facts.nodes[n].node_type in ("SumPool2d", "AvgPool2d") for n in facts.nodes):
        notes.append("pooled spikes reach the next crossbar as event counts; a row receiving k events is driven k times")
    inexact = [lbl for lbl in synops.per_projection if lbl not in synops.exact]
    if inexact and not activity_blind:
        notes.append(f"no per-neuron spike counts for {len(inexact)} projection(s): their spikes were spread evenly")
    return Estimate(
        target=spec.name, kind=spec.kind, energy_j=e, total_energy_j=float(sum(e.values())),
        latency_per_step_s=float(per_step.mean()), latency_per_step_max_s=float(per_step.max()),
        latency_per_inference_s=latency, synops=synops.total, time_steps=T, mapping=result,
        per_layer=per_layer, notes=tuple(dict.fromkeys(notes)), sources=spec.citations(),
    )


def _piece_name(layer: CrossbarLayer, group: int) -> str:
    return f"{layer.target!r}" + (f" group {group}" if layer.groups > 1 else "")


def _register() -> None:
    from . import register_estimator

    register_estimator("crossbar", estimate_crossbar, OPTIONS)


_register()

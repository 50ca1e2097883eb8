"""RRAM crossbar model: tile counts by hand (differential pairs, bit slicing, im2col, stacking), energy by hand,
zero input leaves only the periphery, array energy linear in driven rows, activity-blind accounting, and the
conv tile-read count against a brute-force im2col."""

from __future__ import annotations

import json
import math

import nir
import numpy as np
import pytest

from hardware_models import ActivityProfile, analyze, estimate, list_targets, load_spec
from hardware_models.crossbar import cell_conductances, map_crossbar
from hw_helpers import conv, lif, mlp
from si_approx import approx_si

ARRAY_TERMS = ("cell_read", "wordline_driver", "adc", "shift_add", "accumulate")


def one_layer_activity(n_in: int, counts: np.ndarray, T: int = 1, out: int = 1) -> ActivityProfile:
    """Input spikes ``counts`` (per input over the run, spread evenly over T steps); the LIF layer silent."""
    counts = np.asarray(counts, dtype=float)
    series = np.full(T, counts.sum() / T)
    return ActivityProfile(time_steps=T, dt_s=1e-3, samples=1,
                           spikes_per_step={"input": series, "lif": np.zeros(T)},
                           spike_counts={"input": counts, "lif": np.zeros(out)}, input_events_per_step=series)


def linear_graph(weight: np.ndarray) -> nir.NIRGraph:
    w = np.asarray(weight, dtype=float)
    return nir.NIRGraph.from_list(nir.Linear(weight=w), lif(w.shape[0]))


def conv_graph(c_in, c_out, k, size, *, stride=1, padding=0, groups=1, weight=None) -> nir.NIRGraph:
    nodes = {
        "input": nir.Input(input_type=np.array([c_in, size, size])),
        "conv": conv(c_out, c_in, k, stride=stride, padding=padding, groups=groups, weight=weight),
        "lif": None,
    }
    out = (size + 2 * padding - k) // stride + 1
    nodes["lif"] = lif((c_out, out, out))
    return nir.NIRGraph(nodes=nodes, edges=[("input", "conv"), ("conv", "lif")])


# ------------------------------------------------------------------ mapping by hand
@pytest.mark.parametrize("tile, cell_bits, expected", [
    # 300 inputs x 100 outputs, 8-bit weights: 7 magnitude bits -> ceil(7 / cell_bits) slices, x2 for the pair
    (128, 2, 3 * 7),    # 4 slices -> 8 columns/weight -> 16 weights per tile -> 7 column tiles; 3 row tiles
    (128, 1, 3 * 12),   # 7 slices -> 14 columns -> 9 per tile -> 12 column tiles
    (64, 2, 5 * 13),    # 8 per tile -> 13 column tiles; 300 / 64 -> 5 row tiles
    (256, 2, 2 * 4),    # 32 per tile -> 4 column tiles; 2 row tiles
])
def test_linear_tile_counts_by_hand(tile, cell_bits, expected):
    facts = analyze(mlp(300, 100))
    m = map_crossbar(facts, load_spec("rram_neurosim"), weight_bits=8, cell_bits=cell_bits, tile_size=tile)
    (layer,) = m.layers
    assert m.tiles == layer.tiles == expected
    slices = math.ceil(7 / cell_bits)
    assert layer.slices == slices and layer.used_cells == 300 * 100 * 2 * slices
    assert m.utilisation == pytest.approx(300 * 100 * 2 * slices / (expected * tile * tile))
    assert layer.adcs == expected * tile // 8  # 8 columns share an ADC


def test_conv_im2col_tile_counts_by_hand():
    facts = analyze(conv_graph(16, 32, 5, 15))
    (layer,) = map_crossbar(facts, load_spec("rram_neurosim"), weight_bits=8, cell_bits=2).layers
    # im2col: 16*5*5 = 400 rows -> 4 row tiles; 32 outputs at 8 columns each, 16 per tile -> 2 column tiles
    assert (layer.kind, layer.rows, layer.columns, layer.row_tiles, layer.col_tiles, layer.tiles) == \
        ("conv", 400, 32, 4, 2, 8)
    assert layer.positions == 11 * 11


def test_grouped_conv_is_one_matrix_per_group():
    facts = analyze(conv_graph(16, 32, 3, 10, groups=2))
    (layer,) = map_crossbar(facts, load_spec("rram_neurosim"), weight_bits=8, cell_bits=2).layers
    # per group: 8*3*3 = 72 rows (1 row tile), 16 outputs (1 column tile of 16); 2 groups -> 2 tiles
    assert (layer.groups, layer.rows, layer.columns, layer.tiles) == (2, 72, 16, 2)


def test_recurrent_layer_stacks_input_and_recurrent_weights_on_one_macro():
    rng = np.random.default_rng(0)
    nodes = {
        "input": nir.Input(input_type=np.array([256])),
        "w_in": nir.Linear(weight=rng.normal(size=(256, 256))),
        "lif": lif(256),
        "w_rec": nir.Linear(weight=rng.normal(size=(256, 256))),
        "output": nir.Output(output_type=np.array([256])),
    }
    g = nir.NIRGraph(nodes=nodes, edges=[("input", "w_in"), ("w_in", "lif"), ("lif", "w_rec"), ("w_rec", "lif"),
                                         ("lif", "output")])
    m = map_crossbar(analyze(g), load_spec("rram_lsm40nm"))
    (layer,) = m.layers
    # 256 + 256 rows, 256 neurons x (pair of one 4-bit cell) = 512 columns: exactly one 512 x 512 macro
    assert (layer.rows, layer.columns, layer.slices, layer.tiles) == (512, 256, 1, 1)
    assert set(layer.synapses) == {"w_in", "w_rec"} and m.utilisation == 1.0
    act = ActivityProfile(time_steps=5, dt_s=1e-3, samples=1, spikes_per_step={"lif": np.full(5, 10.0)},
                          input_events_per_step=np.full(5, 20.0))
    est = estimate(g, act, "rram_lsm40nm")
    assert est.fits and est.mapping.cores_used == 1 and est.energy_j["adc"] > 0



@pytest.mark.parametrize("scale, amplitudes", [(0.5, (1.0, 0.25)), (2.0, (1.0, 1.0)), (4.0, (0.5, 1.0))])
def test_stacked_matrices_rows_are_charged_at_the_read_amplitude_of_their_scale(scale, amplitudes):
    # each matrix is quantised against its own largest weight, so the columns add the stack's products in one scale
    # only with each matrix's rows read at max|W| / (the stack's max|W|) of the read voltage, as the chips read them;
    # the cell reads were charged at the full voltage. 2 neurons; w_in [[2], [0]] and w_rec scale·[[0, 1], [1, 0]]
    # hold, with 2-bit weights on 1-bit cells, one ON cell and three OFF cells per row: the input row and neuron 0's
    # recurrent row, each driven once
    def graph(scale: float) -> nir.NIRGraph:
        nodes = {"input": nir.Input(input_type=np.array([1])), "w_in": nir.Linear(weight=np.array([[2.0], [0.0]])),
                 "lif": lif(2), "w_rec": nir.Linear(weight=scale * np.array([[0.0, 1.0], [1.0, 0.0]])),
                 "output": nir.Output(output_type=np.array([2]))}
        return nir.NIRGraph(nodes=nodes, edges=[("input", "w_in"), ("w_in", "lif"), ("lif", "w_rec"),
                                                ("w_rec", "lif"), ("lif", "output")])

    act = ActivityProfile(time_steps=2, dt_s=1e-3, samples=1,
                          spikes_per_step={"input": np.array([1.0, 0.0]), "lif": np.array([1.0, 0.0])},
                          spike_counts={"input": np.array([1.0]), "lif": np.array([1.0, 0.0])},
                          input_events_per_step=np.array([1.0, 0.0]))
    spec = load_spec("rram_neurosim")
    est = estimate(graph(scale), act, spec, weight_bits=2, cell_bits=1)
    g_on, g_off = 1 / spec.si("device.r_on"), 1 / spec.si("device.r_off")
    row = spec.si("device.v_read") ** 2 * spec.si("device.t_read") * (g_on + 3 * g_off)  # one row at the full V
    assert est.energy_j["cell_read"] == approx_si(row * sum(a * a for a in amplitudes))
    said = [n for n in est.notes if "stacked matrices' rows are read at" in n]
    assert said == ([] if min(amplitudes) == 1 else
                    [f"'lif': its stacked matrices' rows are read at {amplitudes[0]:g}, {amplitudes[1]:g} of the read "
                     "voltage ('w_in', 'w_rec'; each matrix quantised against its own largest weight), a cell costing "
                     "(a·V)²·G·t_read"])
    # the rest of the estimate is that of the stack read at the full voltage (the same cells, a = 1)
    full = estimate(graph(2.0), act, spec, weight_bits=2, cell_bits=1)
    assert {k: v for k, v in est.energy_j.items() if k != "cell_read"} == \
        {k: v for k, v in full.energy_j.items() if k != "cell_read"}

def test_mapping_errors_name_the_problem():
    facts = analyze(mlp(8, 4))
    spec = load_spec("rram_neurosim")
    with pytest.raises(ValueError, match="one weight needs 14 columns"):
        map_crossbar(facts, spec, tile_size=8)
    with pytest.raises(ValueError, match="weight_bits must be 2..16"):
        map_crossbar(facts, spec, weight_bits=1)
    with pytest.raises(ValueError, match="tile_size must be a positive integer"):
        map_crossbar(facts, spec, tile_size=0)
    with pytest.raises(ValueError, match="not a crossbar target"):
        map_crossbar(facts, load_spec("loihi"))
    with pytest.raises(ValueError, match="columns_per_adc is 64 but a tile has 32 columns"):
        map_crossbar(facts, spec, tile_size=32, columns_per_adc=64)


def test_cell_conductances_slice_the_magnitude_and_pair_the_sign():
    g_on, g_off = 1e-5, 1e-6
    # 5-bit weights: 4 magnitude bits against max |w| = 15 -> codes 15, 6, 0, 15; 2 bits per cell: digits LSB first
    gp, gn = cell_conductances(np.array([15.0, -6.0, 0.0, -15.0]), 5, 2, g_on, g_off)
    level = lambda d: g_off + d / 3 * (g_on - g_off)  # noqa: E731
    np.testing.assert_allclose(gp[0], [level(3), level(3)])          # 15 = 0b11_11
    np.testing.assert_allclose(gn[1], [level(2), level(1)])          # 6 = 0b01_10, on the negative side
    np.testing.assert_allclose(gp[1], [g_off, g_off])
    np.testing.assert_allclose(np.r_[gp[2], gn[2]], g_off)            # zero: both sides at G_off
    np.testing.assert_allclose(gn[3], [level(3), level(3)])


# ------------------------------------------------------------------ energy and latency by hand
def test_one_spike_energy_and_latency_by_hand():
    spec = load_spec("rram_neurosim")
    g = linear_graph([[1.0, -1.0]])
    est = estimate(g, one_layer_activity(2, [1.0, 0.0]), spec, weight_bits=2, cell_bits=1)
    si = spec.si
    g_on, g_off = 1 / si("device.r_on"), 1 / si("device.r_off")
    e = est.energy_j
    # row 0 holds +1: G_on on the positive side, G_off on the negative side; one read pulse
    assert e["cell_read"] == approx_si(si("device.v_read") ** 2 * si("device.t_read") * (g_on + g_off))
    # one driven row through the 8 column-mux rounds of the tile read: SpikeSim's 1.76423 pJ per 64x64 crossbar
    # round, / 64 rows, x 2 for a 128-cell row
    assert e["wordline_driver"] == approx_si(8 * 2 * 1.76423e-12 / 64, rel=1e-3)
    assert e["adc"] == approx_si(2 * si("energy.adc_conversion"))      # the pair's two columns
    assert e["shift_add"] == approx_si(2 * si("energy.shift_add"))
    assert e["accumulate"] == approx_si(si("energy.accumulate"))         # one partial sum
    assert e["neuron_update"] == approx_si(si("energy.neuron_update"))   # one neuron, one step
    psum = si("array.psum_bits")
    assert e["buffer"] == approx_si((2 + 2 * psum) * si("energy.buffer_per_bit"))  # 2-bit input vector, membrane
    cycle = si("device.t_read") + 8 * si("time.adc_conversion") + si("time.clock")
    assert est.latency_per_inference_s == approx_si(cycle + si("time.clock"))
    assert e["static"] == approx_si(si("power.static_per_tile") * 1 * est.latency_per_inference_s)
    assert est.total_energy_j == approx_si(sum(e.values()))


def test_rram_lsm40nm_full_read_of_a_64x64_tile_costs_spikesims_pe_cycle():
    # SpikeSim's ela_spikesim.py, per PE cycle of one 64x64 RRAM crossbar (8 columns per ADC, so 8 mux rounds):
    # array xbar_size/8 * xbar_ar = 8 x 1.76423 pJ; ADC 64 x 2.03084 pJ; neuron 1.274 x 4 pJ for the 64 outputs the
    # cycle produces; PE cycle 26 clocks at 250 MHz = 104 ns. One step, all 64 inputs spike once; 32 outputs with
    # 5-bit weights on 4-bit cells take 2 columns each: the 64 columns of one tile.
    est = estimate(linear_graph(np.ones((32, 64))), one_layer_activity(64, np.ones(64), out=32), "rram_lsm40nm",
                   tile_size=64)
    assert est.mapping.cores_used == 1
    e = est.energy_j
    assert e["wordline_driver"] == approx_si(8 * 1.76423e-12, rel=1e-3)
    assert e["adc"] == approx_si(64 * 2.03084e-12)
    assert e["neuron_update"] == approx_si(32 * 1.274e-12 * 4 / 64)  # 32 of the 64 outputs of a PE cycle
    # one read cycle of 104 ns, then the layer's LIF update (one 4 ns clock)
    assert est.latency_per_inference_s == approx_si(104e-9 + 4e-9)


@pytest.mark.parametrize("row, block_rows", [(290, 44), (10, 128)])
def test_buffer_bits_are_the_rows_of_the_block_read(row, block_rows):
    # 300 inputs on 128-row tiles: blocks of 128, 128 and 44 rows; one event reads one block's input bits
    spec = load_spec("rram_neurosim")
    counts = np.zeros(300)
    counts[row] = 1.0
    est = estimate(linear_graph(np.ones((20, 300))), one_layer_activity(300, counts, out=20), spec)
    membrane = 20 * 2 * spec.si("array.psum_bits")  # 20 neurons, one step, read + write
    assert est.energy_j["buffer"] == approx_si((block_rows + membrane) * spec.si("energy.buffer_per_bit"))


def test_zero_input_leaves_only_periphery_and_static():
    g = conv_graph(2, 4, 3, 8, padding=1)
    facts = analyze(g)
    T = 4
    act = ActivityProfile(time_steps=T, dt_s=1e-3, samples=1, spikes_per_step={"lif": np.zeros(T)},
                          input_events_per_step=np.zeros(T))
    for target in ("rram_neurosim", "rram_lsm40nm"):
        est = estimate(facts, act, target)
        assert all(est.energy_j[k] == 0 for k in ARRAY_TERMS), est.energy_j
        assert est.energy_j["neuron_update"] > 0 and est.energy_j["static"] > 0 and est.energy_j["buffer"] > 0
        assert any("no input events for Input node 'input'" in n for n in est.notes)  # said, not silent
    busy = ActivityProfile(time_steps=T, dt_s=1e-3, samples=1, spikes_per_step={"lif": np.zeros(T)},
                           input_events_per_step=np.ones(T))
    assert not any("no input events" in n for n in estimate(facts, busy, "loihi").notes)


def test_array_energy_is_linear_in_driven_rows_and_adc_counts_tile_reads():
    g = linear_graph(np.ones((10, 128)))
    spec = load_spec("rram_neurosim")
    ests = {k: estimate(g, one_layer_activity(128, np.r_[np.ones(k), np.zeros(128 - k)], out=10), spec)
            for k in (1, 2, 5, 40)}
    for k, est in ests.items():
        assert est.energy_j["cell_read"] == approx_si(k * ests[1].energy_j["cell_read"])
        assert est.energy_j["wordline_driver"] == approx_si(k * ests[1].energy_j["wordline_driver"])
        # one row block, driven in the single step whatever k: one tile read
        assert est.energy_j["adc"] == approx_si(ests[1].energy_j["adc"])


def test_conv_array_energy_linear_in_activity_and_adc_sublinear():
    rng = np.random.default_rng(1)
    g = conv_graph(3, 8, 3, 12, padding=1, weight=rng.normal(size=(8, 3, 3, 3)))
    T = 6
    counts = rng.random((3, 12, 12)) * 0.6 * T  # mean rates up to 0.6 per step
    series = np.full(T, counts.sum() / T)
    act = ActivityProfile(time_steps=T, dt_s=1e-3, samples=1, spikes_per_step={"input": series, "lif": np.zeros(T)},
                          spike_counts={"input": counts, "lif": np.zeros((8, 12, 12))}, input_events_per_step=series)
    full = estimate(g, act, "rram_neurosim", tile_size=64)
    half = estimate(g, act.scaled(0.5), "rram_neurosim", tile_size=64)
    for k in ("cell_read", "wordline_driver"):
        assert half.energy_j[k] == approx_si(0.5 * full.energy_j[k])
    # a tile is read when any of its rows is driven: halving the rates removes fewer than half the reads
    assert 0.5 * full.energy_j["adc"] < half.energy_j["adc"] < full.energy_j["adc"]


def test_activity_blind_counts_every_cycle():
    T = 3
    g = mlp(300, 100)
    spec = load_spec("rram_neurosim")
    sparse = ActivityProfile(time_steps=T, dt_s=1e-3, samples=1, spikes_per_step={"lif": np.ones(T)},
                             input_events_per_step=np.full(T, 3.0))
    dense = sparse.scaled(20.0)
    b1 = estimate(g, sparse, spec, activity_blind=True, cell_bits=2)
    b2 = estimate(g, dense, spec, activity_blind=True, cell_bits=2)
    aware = estimate(g, sparse, spec, cell_bits=2)
    # 3 row blocks read every step; each read converts all 100 x 8 physical columns
    assert b1.energy_j["adc"] == approx_si(T * 3 * 100 * 8 * spec.si("energy.adc_conversion"))
    assert b1.energy_j["wordline_driver"] == approx_si(T * 300 * 7 * 8 * spec.si("energy.wordline_driver"))
    for k in ARRAY_TERMS:
        assert b1.energy_j[k] == approx_si(b2.energy_j[k])  # independent of activity
        assert aware.energy_j[k] < b1.energy_j[k]
    assert aware.latency_per_inference_s < b1.latency_per_inference_s
    assert any("activity-blind" in n for n in b1.notes)


def test_conv_blind_latency_by_hand():
    spec = load_spec("rram_neurosim")
    T, size = 2, 6
    g = conv_graph(2, 4, 3, size)
    act = ActivityProfile(time_steps=T, dt_s=1e-3, samples=1, spikes_per_step={"lif": np.zeros(T)},
                          input_events_per_step=np.zeros(T))
    est = estimate(g, act, spec, activity_blind=True)
    cycle = spec.si("device.t_read") + 8 * spec.si("time.adc_conversion") + spec.si("time.clock")
    positions = (size - 2) ** 2
    assert est.latency_per_inference_s == approx_si(T * (positions * cycle + spec.si("time.clock")))


@pytest.mark.parametrize("stride, padding", [(1, 0), (2, 1), (1, 2)])
def test_conv_reads_and_driven_rows_equal_brute_force_im2col(stride, padding):
    """With rates exactly 0 or 1 per step, expected tile reads are exact: compare with an explicit im2col."""
    rng = np.random.default_rng(stride * 10 + padding)
    C, H, K, OC, R = 3, 7, 3, 4, 8
    w = rng.normal(size=(OC, C, K, K))
    g = conv_graph(C, OC, K, H, stride=stride, padding=padding, weight=w)
    spikes = (rng.random((C, H, H)) < 0.15).astype(float)  # T = 1: a rate of 0 or 1
    act = ActivityProfile(time_steps=1, dt_s=1e-3, samples=1,
                          spikes_per_step={"input": [spikes.sum()], "lif": [0.0]},
                          spike_counts={"input": spikes, "lif": np.zeros(g.nodes["lif"].output_type["output"])},
                          input_events_per_step=[spikes.sum()])
    spec = load_spec("rram_neurosim")
    est = estimate(g, act, spec, tile_size=R, weight_bits=2, cell_bits=1)
    # brute force: patches in (c, ky, kx) order, rows split into blocks of R
    xp = np.pad(spikes, ((0, 0), (padding, padding), (padding, padding)))
    OH = (H + 2 * padding - K) // stride + 1
    patches = np.array([xp[:, oy * stride: oy * stride + K, ox * stride: ox * stride + K].ravel()
                        for oy in range(OH) for ox in range(OH)])  # (positions, C*K*K)
    rows = C * K * K
    blocks = [patches[:, i: i + R] for i in range(0, rows, R)]
    reads = sum(int((b.sum(axis=1) > 0).sum()) for b in blocks)
    driven = patches.sum()
    per_tile = R // 2  # 2-bit weights: one cell per side
    col_tiles = math.ceil(OC / per_tile)
    assert est.energy_j["adc"] == approx_si(reads * OC * 2 * spec.si("energy.adc_conversion"))
    rounds = 8  # 8 columns per ADC: the driven rows stay driven through 8 column-mux rounds
    assert est.energy_j["wordline_driver"] == approx_si(
        driven * col_tiles * rounds * spec.si("energy.wordline_driver") * R / 128)
    gp, gn = cell_conductances(w, 2, 1, 1 / spec.si("device.r_on"), 1 / spec.si("device.r_off"))
    g_row = (gp + gn).sum(axis=(0, -1)).ravel()  # (C*K*K,) in (c, ky, kx) order
    v, t = spec.si("device.v_read"), spec.si("device.t_read")
    assert est.energy_j["cell_read"] == approx_si(v * v * t * float((patches @ g_row).sum()))


def test_a_conv_fed_by_two_layers_is_placed_once_and_counts_both_sources():
    """A skip connection: ``la`` and ``lb`` both feed the conv ``c2``; its weights take one set of tiles and the rows
    it drives are those of both sources' events (the sum of each source alone)."""
    def graph(sources):
        nodes = {"input": nir.Input(input_type=np.array([1, 6, 6])), "ca": conv(2, 1, 1), "la": lif((2, 6, 6)),
                 "cb": conv(2, 1, 1), "lb": lif((2, 6, 6)), "c2": conv(3, 2, 3), "lc": lif((3, 4, 4)),
                 "output": nir.Output(output_type=np.array([3, 4, 4]))}
        edges = [("input", "ca"), ("ca", "la"), ("input", "cb"), ("cb", "lb"), ("c2", "lc"), ("lc", "output")]
        return nir.NIRGraph(nodes=nodes, edges=edges + [(src, "c2") for src in sources])

    rng = np.random.default_rng(0)
    counts = {"input": rng.random((1, 6, 6)), "la": rng.random((2, 6, 6)), "lb": 0.5 * rng.random((2, 6, 6)),
              "lc": np.zeros((3, 4, 4))}
    act = ActivityProfile(time_steps=1, dt_s=1e-3, samples=1, spikes_per_step={k: [v.sum()] for k, v in counts.items()},
                          spike_counts=counts, input_events_per_step=[counts["input"].sum()])
    both, a, b = (estimate(graph(src), act, "rram_neurosim").to_dict() for src in (("la", "lb"), ("la",), ("lb",)))
    lc = [d["per_layer"]["lc"] for d in (both, a, b)]
    assert lc[0]["tiles"] == lc[1]["tiles"] == lc[2]["tiles"]  # the conv's weights are placed once
    assert lc[0]["driven_rows"] == pytest.approx(lc[1]["driven_rows"] + lc[2]["driven_rows"])
    assert lc[1]["driven_rows"] > 0 and lc[2]["driven_rows"] > 0


# ------------------------------------------------------------------ API
def test_crossbar_targets_are_registered_and_cited():
    targets = list_targets()
    assert {"rram_neurosim", "rram_lsm40nm"} <= set(targets)
    for name in ("rram_neurosim", "rram_lsm40nm"):
        spec = load_spec(name)
        assert spec.kind == "crossbar"
        for key, c in spec.constants.items():
            assert c.source in spec.sources and len(c.citation) > 20, key
    ns = load_spec("rram_neurosim")
    assert (ns.si("array.rows"), ns.si("array.adc_bits"), ns.si("device.v_read")) == (128, 5, pytest.approx(0.55))
    assert ns.si("device.r_on") == pytest.approx(100e3) and ns.si("device.r_off") == pytest.approx(1.7e6)
    assert "Lin" in " ".join(load_spec("rram_lsm40nm").citations().values())


def test_estimate_result_is_json_with_tiles_per_layer():
    facts = analyze(conv_graph(2, 4, 3, 8))
    act = ActivityProfile(time_steps=2, dt_s=1e-3, samples=1, spikes_per_step={"lif": [3.0, 1.0]},
                          input_events_per_step=[10.0, 5.0])
    est = estimate(facts, act, "rram_neurosim", tile_size=64)
    d = json.loads(json.dumps(est.to_dict()))
    assert d["kind"] == "crossbar" and d["mapping"]["cores_used"] == d["per_layer"]["lif"]["tiles"] == 1
    assert d["sources"] and d["notes"] and d["fits"] is True
    with pytest.raises(TypeError, match="activity_blind must be True or False"):
        estimate(facts, act, "rram_neurosim", activity_blind="yes")
    note = estimate(facts, act, "loihi", activity_blind=True).notes
    assert any("['activity_blind'] do not apply to digital targets" in n for n in note)


def test_too_many_tiles_for_one_macro_is_reported():
    facts = analyze(mlp(1024, 300))
    act = ActivityProfile(time_steps=1, dt_s=1e-3, samples=1, spikes_per_step={"lif": [1.0]},
                          input_events_per_step=[5.0])
    est = estimate(facts, act, "rram_lsm40nm")
    assert not est.fits and est.mapping.chips_needed == est.mapping.cores_used == 4
    assert est.mapping.violations[0].limit == "tiles_per_chip"


def test_docstring_examples_run():
    import doctest

    import hardware_models.crossbar as crossbar

    result = doctest.testmod(crossbar, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0

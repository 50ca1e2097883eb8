"""Crossbar tiles shared block-diagonally: small weight matrices and conv groups share a tile on disjoint rows and
columns, each read on its own; the array energy stays that of tiles of their own, reads of a shared tile add up in
the latency, and a network that still needs more tiles than the chip has says how full its cells are."""

from __future__ import annotations

import math

import nir
import numpy as np
import pytest

from hardware_models import ActivityProfile, analyze, estimate, load_spec
from hardware_models.crossbar import map_crossbar
from hw_helpers import conv, lif, mlp
from si_approx import approx_si

ENERGY_BUT_STATIC = ("cell_read", "wordline_driver", "adc", "shift_add", "accumulate", "neuron_update", "buffer")


def mlp_activity(T=1):
    """8-16-4 MLP: input 0 and l1 neuron 0 spike once per step (each drives its row for certain)."""
    return ActivityProfile(time_steps=T, dt_s=1e-3, samples=1,
                           spikes_per_step={"input": np.ones(T), "lif": np.ones(T), "lif_1": np.zeros(T)},
                           spike_counts={"input": np.eye(8)[0] * T, "lif": np.eye(16)[0] * T, "lif_1": np.zeros(4)})


def test_two_small_matrices_share_the_one_macro():
    # rram_lsm40nm: one 512 x 512 macro; 5-bit weights = one 4-bit cell per side, 256 weights per tile row.
    # fc1 (8 rows x 16 columns) and fc2 (16 x 4) fit beside each other: 24 rows, 20 logical columns -> 1 tile
    g = mlp(8, 16, 4)
    m = map_crossbar(analyze(g), load_spec("rram_lsm40nm"))
    assert [l.tiles for l in m.layers] == [1, 1] and m.shared_tiles == (((0, 0), (1, 0)),) and m.tiles == 1
    assert m.utilisation == pytest.approx((8 * 16 + 16 * 4) * 2 / 512**2)
    est = estimate(g, mlp_activity(), "rram_lsm40nm")
    assert est.fits and est.mapping.cores_used == est.mapping.chips_needed == 1 and not est.mapping.violations
    assert est.per_layer["lif"]["tiles"] == est.per_layer["lif_1"]["tiles"] == 1  # the shared tile, in each layer
    assert any("share 1 tile(s) block-diagonally" in n and "'lif' + 'lif_1'" in n for n in est.notes)
    assert est.to_dict()["mapping"]["cores_used"] == 1


def test_grouped_conv_groups_share_a_tile():
    # one Conv1d, groups=2: two 3 x 2 matrices (1 input channel x 3 taps, 2 outputs per group) -> one tile
    nodes = {"in": nir.Input(input_type=np.array([2, 10])),
             "c": nir.Conv1d(input_shape=10, weight=np.ones((4, 1, 3)), stride=1, padding=1, dilation=1, groups=2,
                             bias=np.zeros(4)),
             "l": lif((4, 10))}
    g = nir.NIRGraph(nodes=nodes, edges=[("in", "c"), ("c", "l")], type_check=False)
    act = ActivityProfile(time_steps=1, dt_s=1e-3, samples=1, spikes_per_step={"in": [2.0], "l": [1.0]})
    est = estimate(g, act, "rram_lsm40nm")
    assert est.fits and est.mapping.cores_used == 1
    m = map_crossbar(analyze(g), load_spec("rram_lsm40nm"))
    assert m.shared_tiles == (((0, 0), (0, 1)),)


def test_depthwise_groups_fill_tiles_by_hand():
    # rram_neurosim: 8-bit weights on 1-bit cells: 14 columns per weight -> 9 per 128-column tile. A depthwise
    # 3x3 conv over 18 channels: 18 groups of 9 rows x 1 column; 9 groups fill a tile's columns (81 rows) -> 2
    g = nir.NIRGraph.from_list(nir.Input(input_type=np.array([18, 6, 6])), conv(18, 18, 3, groups=18),
                               lif((18, 4, 4)))
    m = map_crossbar(analyze(g), load_spec("rram_neurosim"), share_tiles=True)
    (layer,) = m.layers
    assert layer.tiles == 18 and m.tiles == 2
    assert [len(t) for t in m.shared_tiles] == [9, 9]
    # rram_neurosim has no tile limit: by default every group keeps its own tile (reads in parallel)
    assert map_crossbar(analyze(g), load_spec("rram_neurosim")).tiles == 18


def test_tiles_are_shared_by_default_only_where_the_chips_tiles_would_not_hold_the_network():
    spec = load_spec("rram_lsm40nm")  # one macro per chip
    one = nir.NIRGraph.from_list(nir.Input(input_type=np.array([8])), nir.Linear(weight=np.ones((4, 8))), lif(4))
    assert map_crossbar(analyze(one), spec).shared_tiles == ()  # fits alone: nothing to share
    assert map_crossbar(analyze(mlp(8, 16, 4)), spec).tiles == 1  # two matrices, one macro: shared
    assert map_crossbar(analyze(mlp(8, 16, 4)), spec, share_tiles=False).tiles == 2
    with pytest.raises(ValueError, match="share_tiles must be 'auto', True or False, got 'yes'"):
        map_crossbar(analyze(one), spec, share_tiles="yes")


def test_sharing_keeps_the_array_energy_and_serialises_the_reads():
    g = mlp(8, 16, 4)
    spec = load_spec("rram_lsm40nm")
    shared = estimate(g, mlp_activity(), spec)
    alone = estimate(g, mlp_activity(), spec, share_tiles=False)
    assert alone.mapping.cores_used == 2 and not alone.fits
    for term in ENERGY_BUT_STATIC:  # rows driven, cells read, ADC conversions: those of each matrix alone
        assert shared.energy_j[term] == approx_si(alone.energy_j[term], rel=1e-12), term
    # latency by hand: each matrix has one row block, read once in the step for certain. t_cycle = SpikeSim's PE
    # cycle, 104 ns (t_read + 8 ADC conversions + a clock = 10 + 8 * 11.25 + 4); a layer's step = its reads + the
    # LIF clock (4 ns). Alone: steps of 108 ns, fill 108 ns -> 216 ns. Shared: both reads on one tile, 208 + 4 ns;
    # fill 212 -> 424 ns
    t_cycle = 104e-9
    assert alone.latency_per_inference_s == approx_si(2 * (t_cycle + 4e-9), rel=1e-9)
    assert shared.latency_per_inference_s == approx_si(2 * (2 * t_cycle + 4e-9), rel=1e-9)
    p_tile = spec.si("power.static_per_tile")
    assert shared.energy_j["static"] == approx_si(p_tile * 1 * shared.latency_per_inference_s)
    assert alone.energy_j["static"] == approx_si(p_tile * 2 * alone.latency_per_inference_s)


def test_only_corner_pieces_share_and_the_violation_says_how_full_the_cells_are():
    # rram_lsm40nm: fc1 (600 inputs -> 300) takes 2 row blocks (512 + 88 rows) x 2 column tiles (256 + 44
    # weights): 4 tiles, of which only the corner (88 rows x 44 columns) leaves rows and columns free. fc2
    # (300 -> 10) fits beside it (388 rows, 54 columns): 4 tiles in all, 4 chips of one macro.
    g = mlp(600, 300, 10)
    est = estimate(g, ActivityProfile(time_steps=1, dt_s=1e-3, samples=1,
                                      spikes_per_step={"lif": [1.0], "lif_1": [0.0]},
                                      input_events_per_step=[3.0]), "rram_lsm40nm")
    m = map_crossbar(analyze(g), load_spec("rram_lsm40nm"))
    assert [l.tiles for l in m.layers] == [4, 1] and m.shared_tiles == (((1, 0), (0, 0)),)
    assert est.mapping.cores_used == 4 and not est.fits and est.mapping.chips_needed == 4
    assert est.per_layer["lif"]["tiles"] == 4 and est.per_layer["lif_1"]["tiles"] == 1
    (v,) = est.mapping.violations
    used = (600 * 300 + 300 * 10) * 2
    assert f"its weights take {used:,} cells, {100 * used / 512**2:.1f} % of the chip's 262,144" in v.message
    assert "a matrix larger than a tile takes whole tiles" in v.message


def test_sharing_packs_first_fit_by_decreasing_size():
    # rram_neurosim (128 rows, 9 weights per tile): pieces of (rows, columns) (100, 2), (60, 5), (30, 4), (20, 3)
    # by decreasing size max(r/128, c/9): (100, 2) 0.78, (60, 5) 0.56, (30, 4) 0.44, (20, 3) 0.33.
    # (100, 2) opens tile A; (60, 5) does not fit A's rows -> tile B; (30, 4) no to A (130 rows) -> B (90 rows,
    # 9 columns: full); (20, 3) -> A (120 rows, 5 columns). Tiles: A = {100, 20}, B = {60, 30}.
    sizes = [(100, 2), (60, 5), (30, 4), (20, 3)]
    nodes, edges = {}, []
    for i, (r, c) in enumerate(sizes):  # separate inputs: each matrix has its own rows
        nodes[f"in{i}"] = nir.Input(input_type=np.array([r]))
        nodes[f"w{i}"] = nir.Linear(weight=np.ones((c, r)))
        nodes[f"l{i}"] = lif(c)
        edges += [(f"in{i}", f"w{i}"), (f"w{i}", f"l{i}")]
    m = map_crossbar(analyze(nir.NIRGraph(nodes=nodes, edges=edges)), load_spec("rram_neurosim"), share_tiles=True)
    assert m.tiles == 2 and sum(l.tiles for l in m.layers) == 4
    names = [sorted(m.layers[i].target for i, _ in t) for t in m.shared_tiles]
    assert names == [["l0", "l3"], ["l1", "l2"]]
    assert math.isclose(m.utilisation, sum(r * c for r, c in sizes) * 14 / (2 * 128 * 128))


def test_shared_conv_groups_energy_as_alone_and_blind_latency_by_hand():
    # the depthwise conv above, activity-blind: every group reads its 16 positions every step. On 2 shared tiles
    # of 9 groups, a tile reads 9 x 16 = 144 times per step; t_cycle = 10 + 8 * 6 + 1 = 59 ns, + the LIF clock
    g = nir.NIRGraph.from_list(nir.Input(input_type=np.array([18, 6, 6])), conv(18, 18, 3, groups=18),
                               lif((18, 4, 4)))
    facts = analyze(g)
    T = 3
    act = ActivityProfile(time_steps=T, dt_s=1e-3, samples=1,
                          spikes_per_step={"input": np.full(T, 20.0), "lif": np.full(T, 2.0)})
    for blind in (True, False):
        shared = estimate(facts, act, "rram_neurosim", activity_blind=blind, share_tiles=True)
        alone = estimate(facts, act, "rram_neurosim", activity_blind=blind)
        assert (shared.mapping.cores_used, alone.mapping.cores_used) == (2, 18)
        for term in ENERGY_BUT_STATIC:
            assert shared.energy_j[term] == approx_si(alone.energy_j[term], rel=1e-12), (term, blind)
        assert shared.latency_per_inference_s >= alone.latency_per_inference_s
        if blind:
            assert shared.latency_per_inference_s == approx_si(T * (144 * 59e-9 + 1e-9), rel=1e-9)
            assert alone.latency_per_inference_s == approx_si(T * (16 * 59e-9 + 1e-9), rel=1e-9)


def test_layers_sharing_a_tile_are_placed_on_it_and_no_index_runs_past_the_tiles_used():
    est = estimate(mlp(8, 16, 4), mlp_activity(), "rram_lsm40nm")  # both matrices on the one macro
    assert est.mapping.cores_used == 1
    assert [(l.first_core, l.cores) for l in est.mapping.layers.values()] == [(0, 1), (0, 1)]
    # without sharing: one tile each, one after the other
    alone = estimate(mlp(8, 16, 4), mlp_activity(), "rram_lsm40nm", share_tiles=False)
    assert [(l.first_core, l.cores) for l in alone.mapping.layers.values()] == [(0, 1), (1, 1)]

"""One-to-one recurrences (a self-loop whose N × N matrix is zero off its diagonal): recognised from the weights in
graphs of any tool, and costed as N weights — crossbar cells, tiles and ADC conversions, dense-ANN MACs — by hand
against the dense recurrence of the same layer; Speck's dense kernel memory is kept and said why."""

from __future__ import annotations

import nir
import numpy as np
import pytest

from hardware_models import ActivityProfile, analyze, estimate
from hw_helpers import lif


def rnn(connectivity: str, n_in: int = 64, n: int = 256, n_out: int = 10, seed: int = 0) -> nir.NIRGraph:
    """Input(n_in) → w_in → lif ⇄ w_rec, lif → w_out → out → Output: the flat loop of snnTorch's RLeaky export.
    ``connectivity``: dense | diagonal | zero (an all-zero w_rec) | none (no w_rec, no loop); the other weights are
    the same draws in all four."""
    rng = np.random.default_rng(seed)
    w_rec = rng.normal(size=(n, n))
    if connectivity != "dense":
        diagonal = rng.normal(size=n)  # (drawn either way: w_out's draws are the same in every graph)
        w_rec = np.diag(diagonal) if connectivity == "diagonal" else np.zeros((n, n))
    nodes = {
        "input": nir.Input(input_type=np.array([n_in])),
        "w_in": nir.Linear(weight=rng.normal(size=(n, n_in))),
        "lif": lif(n),
        "w_rec": nir.Linear(weight=w_rec),
        "w_out": nir.Linear(weight=rng.normal(size=(n_out, n))),
        "out": lif(n_out),
        "output": nir.Output(output_type=np.array([n_out])),
    }
    edges = [("input", "w_in"), ("w_in", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "w_out"),
             ("w_out", "out"), ("out", "output")]
    if connectivity == "none":
        del nodes["w_rec"]
        edges = [e for e in edges if "w_rec" not in e]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def activity(T: int = 10) -> ActivityProfile:
    return ActivityProfile(time_steps=T, dt_s=1e-3, samples=1,
                           spikes_per_step={"lif": np.full(T, 20.0), "out": np.full(T, 2.0)},
                           input_events_per_step=np.full(T, 10.0))


def test_a_diagonal_self_loop_is_one_to_one_and_counts_n_weights():
    dense, diag = analyze(rnn("dense")).nodes["w_rec"], analyze(rnn("diagonal")).nodes["w_rec"]
    assert not dense.one_to_one and (dense.weight_params, dense.synapses_dense) == (65536, 65536)
    assert diag.one_to_one and (diag.weight_params, diag.synapses_dense, diag.synapses_nonzero) == (256, 256, 256)
    # a feed-forward diagonal matrix stays the matrix the graph says: a dense engine multiplies all of it
    ff = nir.NIRGraph.from_list(nir.Linear(weight=np.ones((3, 4))), lif(3), nir.Linear(weight=np.diag([1.0, 2, 3])),
                                lif(3))
    f = analyze(ff)
    assert [n.weight_params for n in f.nodes.values() if n.role == "synapse"] == [12, 9]
    assert not any(n.one_to_one for n in f.nodes.values())


def test_rram_places_a_diagonal_recurrence_as_n_single_weights():
    act = activity()
    dense = estimate(rnn("dense"), act, "rram_neurosim")
    diag = estimate(rnn("diagonal"), act, "rram_neurosim")
    # 8-bit weights on 1-bit cells: 7 slices, a pair of them = 14 columns per weight, 9 weights per 128-column tile.
    # dense: w_in and w_rec stacked, 64 + 256 = 320 rows (3 row tiles) x 256 columns (29 column tiles)
    assert dense.per_layer["lif"]["tiles"] == 3 * 29 == 87
    assert dense.per_layer["lif"]["used_cells"] == 320 * 256 * 14 == 1_146_880
    # diagonal: w_in alone is 64 rows (1 row tile) x 29 column tiles; the 256 feedback weights sit 9 to a tile on
    # its diagonal (own row, own columns): 29 tiles of 9, 9, ..., 4 weights, 256 pairs of 7-cell sides
    assert diag.per_layer["lif"]["tiles"] == 29 + 29 == 58
    assert diag.per_layer["lif"]["used_cells"] == 64 * 256 * 14 + 256 * 14 == 232_960
    assert dense.mapping.cores_used - diag.mapping.cores_used == 87 - 58
    assert any("one-to-one recurrence(s) ('w_rec')" in n and "9 to a tile" in n for n in diag.notes)
    # every crossbar cycle, every row driven (activity-blind): dense reads 3 row blocks of all 256 x 14 columns per
    # step, diagonal 1 block of w_in plus each of the 256 feedback weights once (14 columns each)
    T = act.time_steps
    blind_dense = estimate(rnn("dense"), act, "rram_neurosim", activity_blind=True).per_layer["lif"]
    blind_diag = estimate(rnn("diagonal"), act, "rram_neurosim", activity_blind=True).per_layer["lif"]
    assert blind_dense["adc_conversions"] == T * 3 * 256 * 14
    assert blind_diag["adc_conversions"] == T * 256 * 14 + T * 256 * 14
    assert blind_diag["tile_reads"] == T * 29 + T * 29  # w_in's 29 tiles and the 29 diagonal tiles, once a step
    assert diag.total_energy_j < dense.total_energy_j


def test_a_diagonal_block_shares_a_tile_with_another_small_piece():
    rng = np.random.default_rng(1)
    nodes = {"input": nir.Input(input_type=np.array([4])), "w_in": nir.Linear(weight=rng.normal(size=(10, 4))),
             "lif": lif(10), "w_rec": nir.Linear(weight=np.diag(rng.normal(size=10))),
             "output": nir.Output(output_type=np.array([10]))}
    g = nir.NIRGraph(nodes=nodes, edges=[("input", "w_in"), ("w_in", "lif"), ("lif", "w_rec"), ("w_rec", "lif"),
                                         ("lif", "output")])
    act = ActivityProfile(time_steps=2, dt_s=1e-3, samples=1, spikes_per_step={"lif": np.array([2.0, 1.0])},
                          input_events_per_step=np.array([2.0, 2.0]))
    own = estimate(g, act, "rram_neurosim", share_tiles=False)
    shared = estimate(g, act, "rram_neurosim", share_tiles=True)
    # w_in: 4 rows x 10 columns = 2 column tiles (9 + 1 weights); w_rec: 2 diagonal tiles (9 + 1 weights). The two
    # last pieces (4 rows x 1 weight, 1 row x 1 weight) fit one tile on disjoint rows and columns
    assert own.mapping.cores_used == 4 and shared.mapping.cores_used == 3
    assert shared.energy_j["adc"] == pytest.approx(own.energy_j["adc"])


def test_the_dense_ann_multiplies_a_diagonal_recurrence_element_wise_and_notes_the_single_pass():
    act = activity()
    dense = estimate(rnn("dense"), act, "conventional_45nm")
    diag = estimate(rnn("diagonal"), act, "conventional_45nm")
    assert dense.per_layer["lif"]["macs_in"] == 64 * 256 + 256 * 256
    assert diag.per_layer["lif"]["macs_in"] == 64 * 256 + 256
    e_mac = 4.6e-12  # Horowitz's fp32 MAC
    macs = 64 * 256 + 256 + 256 * 10
    assert diag.energy_j["mac"] == pytest.approx(macs * e_mac)
    assert dense.energy_j["mac"] - diag.energy_j["mac"] == pytest.approx((65536 - 256) * e_mac)
    note = [n for n in diag.notes if n.startswith("recurrent layer(s) 'lif'")]
    assert note and "(256 MACs) once" in note[0] and "10 steps (2,560 MACs)" in note[0]
    assert any("(65,536 MACs) once" in n for n in dense.notes)
    feed_forward = nir.NIRGraph.from_list(nir.Linear(weight=np.ones((3, 4))), lif(3))
    ff_act = ActivityProfile(time_steps=2, dt_s=1e-3, samples=1, spikes_per_step={"lif": np.ones(2)},
                             input_events_per_step=np.ones(2))
    assert not any("recurrent" in n for n in estimate(feed_forward, ff_act, "conventional_45nm").notes)


def test_digital_targets_count_the_diagonal_synapses_and_speck_keeps_its_dense_kernel():
    act = activity()
    for target in ("loihi", "truenorth", "spinnaker"):
        dense = estimate(rnn("dense"), act, target).mapping.layers["lif"]
        diag = estimate(rnn("diagonal"), act, target).mapping.layers["lif"]
        assert diag.max_synapses_per_core <= 64 * 256 + 256 < dense.max_synapses_per_core, target
    # DYNAP-CNN stores a 1x1 kernel from 256 channels to 256 features densely: 64·256 + 256·256 entries either way
    dense, diag = estimate(rnn("dense"), act, "speck"), estimate(rnn("diagonal"), act, "speck")
    assert dense.mapping.layers["lif"].max_synapses_per_core == diag.mapping.layers["lif"].max_synapses_per_core \
        == 64 * 256 + 256 * 256
    assert any("one-to-one recurrence(s) ('w_rec') take the full kernel memory" in n for n in diag.notes)
    assert not any("one-to-one" in n for n in dense.notes)


def _without(d: dict, note: str) -> dict:
    return d | {"notes": [n for n in d["notes"] if note not in n]}


@pytest.mark.parametrize("target", ["loihi", "truenorth", "spinnaker", "speck", "rram_neurosim", "rram_lsm40nm",
                                    "conventional_45nm"])
def test_an_all_zero_self_loop_costs_what_no_loop_costs_and_says_so(target):
    # a reservoir without feedback exported its all-zero w_rec: nothing off its diagonal, so it was read as a
    # one-to-one recurrence (rram_neurosim: 29 more tiles, the ADC reads of 256 feedback rows; Speck: a dense kernel
    # memory; a digital core: 256 more synapses; the dense ANN: 256 MACs)
    facts = analyze(rnn("zero"))
    w_rec = facts.nodes["w_rec"]
    assert not w_rec.one_to_one and (w_rec.weight_params, w_rec.synapses_dense, w_rec.synapses_nonzero) == (0, 0, 0)
    assert [p.label for p in facts.projections] == [p.label for p in analyze(rnn("none")).projections]
    assert facts.recurrent_populations() == [] and facts.synapses_dense == analyze(rnn("none")).synapses_dense
    act = activity()
    zero, none = estimate(rnn("zero"), act, target).to_dict(), estimate(rnn("none"), act, target).to_dict()
    note = "recurrent weight(s) 'w_rec' are all zero: no spike crosses them"
    assert any(note in n for n in zero["notes"]) and not any(note in n for n in none["notes"])
    assert _without(zero, note) == none
    if target in ("loihi", "rram_neurosim"):  # the activity-blind count reads every row placed
        blind = [estimate(rnn(c), act, target, activity_blind=True).to_dict() for c in ("zero", "none")]
        assert _without(blind[0], note) == blind[1]
        # a genuine one-to-one loop still costs its 256 weights (numbers: the tests above)
        diag = estimate(rnn("diagonal"), act, target)
        assert analyze(rnn("diagonal")).nodes["w_rec"].one_to_one and not any(note in n for n in diag.notes)
        assert diag.total_energy_j > none["total_energy_j"]
        if target == "loihi":  # the 256 feedback weights, on the core that holds lif
            assert diag.mapping.layers["lif"].max_synapses_per_core == (
                none["mapping"]["layers"]["lif"]["max_synapses_per_core"] + 256)
        else:  # its 29 diagonal tiles
            assert diag.mapping.cores_used == none["mapping"]["cores_used"] + 29


def test_an_all_zero_loop_of_one_neuron_and_a_zero_matrix_feeding_forward():
    # one neuron's zero self-weight is silent too; an all-zero feed-forward matrix stays what the graph says
    nodes = {"input": nir.Input(input_type=np.array([2])), "w_in": nir.Linear(weight=np.ones((1, 2))), "lif": lif(1),
             "w_rec": nir.Linear(weight=np.zeros((1, 1))), "w_out": nir.Linear(weight=np.zeros((3, 1))),
             "out": lif(3), "output": nir.Output(output_type=np.array([3]))}
    g = nir.NIRGraph(nodes=nodes, edges=[("input", "w_in"), ("w_in", "lif"), ("lif", "w_rec"), ("w_rec", "lif"),
                                         ("lif", "w_out"), ("w_out", "out"), ("out", "output")])
    facts = analyze(g)
    assert [p.label for p in facts.projections] == ["input->w_in->lif", "lif->w_out->out"]
    assert facts.nodes["w_rec"].weight_params == 0 and facts.nodes["w_out"].weight_params == 3
    assert any("'w_rec' are all zero" in n for n in facts.notes)


def _zero_out(graph: nir.NIRGraph, name: str) -> nir.NIRGraph:
    nodes = dict(graph.nodes)
    nodes[name] = nir.Linear(weight=np.zeros_like(graph.nodes[name].weight))
    return nir.NIRGraph(nodes=nodes, edges=list(graph.edges))


@pytest.mark.parametrize("target", ["loihi", "truenorth", "spinnaker", "speck", "rram_neurosim", "rram_lsm40nm",
                                    "conventional_45nm"])
def test_an_all_zero_feed_forward_matrix_is_costed_as_the_graph_says_and_noted(target):
    # an all-zero feed-forward matrix (a layer pruned to nothing, an export that lost its weights) was costed as the
    # graph says without a word; it still is (a chip stores it; leaving it out would change which layers the graph
    # joins), and every estimate's notes now name it
    zero, kept = _zero_out(rnn("none"), "w_out"), rnn("none")
    facts = analyze(zero)
    note = "weight node(s) 'w_out': all weights zero, so no spike crosses them and they carry no signal"
    assert [n for n in facts.notes if note in n] == [note + "; still mapped and costed as the graph says, as a chip "
                                                            "would store them"]
    assert [p.label for p in facts.projections] == [p.label for p in analyze(kept).projections]
    assert facts.nodes["w_out"].weight_params == analyze(kept).nodes["w_out"].weight_params == 10 * 256
    act = activity()
    est, ref = estimate(zero, act, target), estimate(kept, act, target)
    assert any(note in n for n in est.notes) and not any("all weights zero" in n for n in ref.notes)
    assert est.mapping is None or est.mapping.cores_used == ref.mapping.cores_used  # still placed, as the graph says
    # the silent loop keeps its own note only; a nonzero graph has neither
    assert not any("all weights zero" in n for n in analyze(rnn("zero")).notes)


def test_an_all_zero_affine_with_a_bias_is_named_with_its_bias():
    g = nir.NIRGraph.from_list(nir.Linear(weight=np.ones((3, 4))), lif(3),
                               nir.Affine(weight=np.zeros((2, 3)), bias=np.array([0.0, 0.5])), lif(2))
    notes = [n for n in analyze(g).notes if "all weights zero" in n]
    assert len(notes) == 1 and "(only the bias of 'affine' drives the next layer)" in notes[0], notes
    g = nir.NIRGraph.from_list(nir.Linear(weight=np.ones((3, 4))), lif(3),
                               nir.Affine(weight=np.zeros((2, 3)), bias=np.zeros(2)), lif(2))
    notes = [n for n in analyze(g).notes if "all weights zero" in n]
    assert len(notes) == 1 and "'affine'" in notes[0] and "bias" not in notes[0], notes

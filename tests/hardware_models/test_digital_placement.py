"""Digital core placement: position-major chunks for conv layers (every channel of consecutive positions on a core),
chosen per layer when they need fewer cores; TrueNorth neuron copies fill free slots of their core; Speck's notes
name the kind of per-core limit exceeded. Counts are derived by hand in the comments, connectivity by brute force."""

from __future__ import annotations

import math

import nir
import numpy as np
import pytest

from hardware_models import ActivityProfile, analyze, estimate, load_spec
from hardware_models.specs import SPEC_DIR
from hardware_models.digital import (_CorePartition, _estimate_placed, _map, _mean_hops, _placements, _position_major,
                                     map_network)
from hw_helpers import conv, conv_case, lif
from si_approx import approx_si


def two_convs(H=4, W=64, C=32, c_in=2, groups=1) -> nir.NIRGraph:
    """Input(c_in, H, W) -> conv 3x3 pad 1 -> LIF(C, H, W) -> conv 3x3 pad 1 (groups) -> LIF(C, H, W)."""
    nodes = {"input": nir.Input(input_type=np.array([c_in, H, W])), "c1": conv(C, c_in, 3, padding=1),
             "l1": lif((C, H, W)), "c2": conv(C, C, 3, padding=1, groups=groups), "l2": lif((C, H, W))}
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])))


def chunks(perm, n):
    """Flat neuron indices of each chunk of n neurons taken in placement order."""
    return [perm[a:a + n] for a in range(0, len(perm), n)]


# ------------------------------------------------------------------ finding: conv layers ~12x too many Loihi cores
def test_loihi_conv_layers_go_position_major_by_hand():
    # l2: 32 channels x 3x3 = 288 synapses per inner neuron at 8 bits; a core holds 128 KiB = 131,072 synapses ->
    # 455 neurons (455 * 288 = 131,040; 456 * 288 = 131,328). Position-major, a chunk of 455 is ~14 positions of
    # one row of 64 (inner chunks exist in rows 1-2), needing 32 x 3 rows x <= 18 columns = 1,728 <= 4,096 axons:
    # ceil(32 * 4 * 64 / 455) = 19 cores. l1: 18 synapses per neuron, 1,024 neurons per core -> 8 cores.
    # Channel-major, a 455-neuron chunk is a strip of one channel reading all 32 input channels over 4 rows:
    # far beyond 4,096 axons, so such chunks hold ~40 neurons.
    m = map_network(analyze(two_convs()), load_spec("loihi"))
    l1, l2 = m.layers["l1"], m.layers["l2"]
    assert (l2.neurons_per_core, l2.cores, l2.limited_by) == (455, 19, "synaptic_memory_per_core")
    assert l2.max_synapses_per_core == 455 * 288 and l2.max_axons_in_per_core == 32 * 3 * 18
    assert (l1.neurons_per_core, l1.cores) == (1024, 8) and l1.max_axons_out_per_core <= 4096
    assert m.cores_used == 27 and m.fits and m.chips_needed == 1
    (note,) = [n for n in m.notes if "position-major" in n]
    assert "'l1', 'l2' placed position-major" in note and "27 cores, against 410" in note  # 410: the old mapping
    channel = _CorePartition(analyze(two_convs()), load_spec("loihi"), 8, 1)  # flat channel-major chunks
    channel.map_fan_in("l2")
    assert channel.place["l2"].n < 64 and channel.place["l2"].limited_by == "fan_in_per_core"


def test_repro_network_needs_about_four_loihi_chips():
    # the review's 2 -> 32 -> 32 channel network at 64 x 64: l2 at 455 per core -> ceil(131,072 / 455) = 289
    # cores, l1 at 1,024 per core -> 128: 417 cores -> 4 chips of 128 (52 in channel-major order)
    m = map_network(analyze(two_convs(H=64, W=64)), load_spec("loihi"))
    assert (m.layers["l1"].cores, m.layers["l2"].cores, m.cores_used, m.chips_needed) == (128, 289, 417, 4)


@pytest.mark.parametrize("stride, pad, dil, groups, n", [(1, 1, 1, 1, 7), (2, 1, 1, 1, 5), (1, 0, 2, 2, 9),
                                                        (3, 2, 1, 2, 4), (1, 1, 1, 1, 13)])
def test_position_major_conv_connectivity_equals_brute_force(stride, pad, dil, groups, n):
    """Input axons per chunk and destination chunks per input, chunks taken position-major."""
    geom, N, inputs, reads = conv_case(stride, pad, dil, groups)  # reads: inputs read by each output
    perm, rank = _position_major(tuple(geom.out_shape))
    assert sorted(perm) == list(range(N)) and all(rank[perm] == np.arange(N))
    axons, dest = _CorePartition._conv_connectivity(geom, N, n, np.arange(0, N, n), rank)
    per_chunk = [set().union(*(reads[o] for o in c)) for c in chunks(perm, n)]
    np.testing.assert_array_equal(axons, [len(c) for c in per_chunk])
    np.testing.assert_array_equal(dest, [sum(i in c for c in per_chunk) for i in range(inputs)])


def test_order_is_chosen_per_layer():
    # TrueNorth (256 axons, 256 neurons per core), l2 depthwise. Channel-major, an l2 core holds one channel's
    # 4 x 64 = 256 positions reading one input channel's 256 positions: 256 axons, fits -> 32 cores (position-major:
    # 32 channels x 3 rows x 10 columns = 960 axons for 8 positions, too many). l1 position-major: 8 positions x
    # 32 channels per core reading 2 channels x 3 rows x 10 columns = 60 axons -> 32 cores (channel-major, a
    # 256-neuron strip reads 2 x 4 x 64 = 512 axons). An l1 neuron reaches only its own channel of l2, on one
    # core: no copies. 64 cores.
    m = map_network(analyze(two_convs(groups=32)), load_spec("truenorth"))
    assert {n: (l.cores, l.neurons_per_core, l.slots) for n, l in m.layers.items()} == \
        {"l1": (32, 256, 8192), "l2": (32, 256, 8192)}
    assert m.fits and m.cores_used == 64
    assert any("'l1' placed position-major" in n and "'l2' channel-major" in n for n in m.notes)
    # Loihi: both orders give 1,024 neurons per core for every layer; the tie keeps channel-major
    m = map_network(analyze(two_convs(groups=32)), load_spec("loihi"))
    assert m.cores_used == 16
    assert any("'l1', 'l2' placed in flat channel-major order" in n for n in m.notes)


def test_per_core_loads_and_messages_follow_the_placement_order():
    """Latency (busiest core) and routing messages against explicit chunk membership in position-major order."""
    g = two_convs()
    facts = analyze(g)
    spec = load_spec("loihi")
    rng = np.random.default_rng(1)
    counts = {"input": np.zeros((2, 4, 64)), "l1": np.zeros((32, 4, 64)), "l2": np.zeros((32, 4, 64))}
    counts["input"][:, 1:3, 5:9] = 1.0  # a few input positions, every channel
    counts["l1"][:, :, 40:44] = rng.integers(0, 2, size=(32, 4, 4))  # l1 spikes at a few positions
    counts["l2"][3, 2, 7] = 1.0
    act = ActivityProfile(time_steps=1, dt_s=1e-3, samples=1,
                          spikes_per_step={n: np.array([c.sum()]) for n, c in counts.items()}, spike_counts=counts)
    mapping, mapper = _map(facts, spec, 8, 1)
    n1, n2 = mapper.place["l1"].n, mapper.place["l2"].n
    perm1, _ = _position_major((32, 4, 64))
    # messages l1 -> l2: each l1 spike goes to every l2 core holding a neuron that reads it
    g2 = facts.geometry("c2")
    dest = np.zeros(32 * 4 * 64)
    for c in chunks(perm1, n2):
        mask = np.zeros(32 * 4 * 64)
        mask[c] = 1.0
        dest += (g2.transpose(mask.reshape(32, 4, 64)).ravel() > 0)
    est = estimate(facts, act, spec)
    assert est.per_layer["l1"]["messages_out"] == pytest.approx(float(counts["l1"].ravel() @ dest))
    # busiest core: synops received x t_syn + active x t_active + idle x t_idle (+ messages x t_msg), + sync
    t_syn, t_act, t_idle = spec.si("time.synaptic_op"), spec.si("time.neuron_update_active"), \
        spec.si("time.neuron_update_idle")
    t_msg = spec.si("time.spike_message", 0.0)
    busiest = 0.0
    for pop, src, n in (("l1", "input", n1), ("l2", "l1", n2)):
        (proj,) = facts.projections_to(pop)
        rec = facts.received(proj, counts[src]).ravel()
        d_out = dest if pop == "l1" else np.zeros(rec.size)
        own = counts[pop].ravel()
        for c in chunks(perm1, n):
            t = rec[c].sum() * t_syn + own[c].sum() * t_act + (len(c) - own[c].sum()) * t_idle
            busiest = max(busiest, t + (own[c] * d_out[c]).sum() * t_msg)
    l1, l2 = mapping.layers["l1"], mapping.layers["l2"]
    dx, dy = _mean_hops(range(0, l1.cores), range(l1.cores, l1.cores + l2.cores), math.ceil(math.sqrt(128)))
    hop = dx * spec.si("time.hop_ew") + dy * spec.si("time.hop_ns")
    assert est.latency_per_step_s == approx_si(busiest + hop + spec.si("time.sync"), rel=1e-12)


# ------------------------------------------------------------------ finding: TrueNorth neuron copies took a core each
@pytest.mark.parametrize("n_a, cores_a", [(1, 1), (10, 1), (100, 2), (256, 3)])
def test_truenorth_copies_fill_their_cores(n_a, cores_a):
    # la feeds a 600-neuron layer on 3 cores (256 + 256 + 88); a TrueNorth neuron reaches one core, so each la
    # neuron is copied 3 times: 3 * n_a slots, sharing their input axons, on ceil(3 * n_a / 256) cores
    nodes = {"in": nir.Input(input_type=np.array([100])), "fa": nir.Linear(weight=np.ones((n_a, 100))),
             "la": lif(n_a), "fb": nir.Linear(weight=np.ones((600, n_a))), "lb": lif(600)}
    names = list(nodes)
    m = map_network(analyze(nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])))),
                    load_spec("truenorth"))
    la = m.layers["la"]
    assert (la.slots, la.cores, m.layers["lb"].cores) == (3 * n_a, cores_a, 3)
    assert cores_a == math.ceil(3 * n_a / 256) and m.cores_used == cores_a + 3
    assert m.layers["lb"].first_core == cores_a  # the mesh placement starts after la's real cores


def test_truenorth_copies_of_a_chunk_limited_layer_share_its_cores():
    # demo-like conv on TrueNorth: copies of l1's neurons go beside them; no core holds more than 256 slots and
    # every core's axons stay within 256, so the copy count is slots over 256 per chunk
    m = map_network(analyze(two_convs(c_in=2)), load_spec("truenorth"))
    l1 = m.layers["l1"]
    assert l1.slots > l1.neurons and l1.max_axons_in_per_core <= 256
    assert math.ceil(l1.slots / 256) <= l1.cores <= math.ceil(l1.slots / 256) + math.ceil(l1.neurons / 256)


# ------------------------------------------------------------------ finding 10d: Speck notes name the kind of limit
def test_speck_destination_violation_is_not_called_a_memory_problem():
    nodes = {"in": nir.Input(input_type=np.array([4])), "f0": nir.Linear(weight=np.ones((4, 4))), "l1": lif(4)}
    edges = [("in", "f0"), ("f0", "l1")]
    for x in "abc":
        nodes.update({f"f{x}": nir.Linear(weight=np.ones((2, 4))), f"l{x}": lif(2)})
        edges += [("l1", f"f{x}"), (f"f{x}", f"l{x}")]
    m = map_network(analyze(nir.NIRGraph(nodes=nodes, edges=edges)), load_spec("speck"))
    assert [v.limit for v in m.violations] == ["destinations_per_core"]
    (note,) = [n for n in m.notes if "no number of chips" in n]
    assert "memory" not in note and "more than the 2 layers a core can reach" in note


# ------------------------------------------------------------------ finding: mean hops took memory quadratic in cores
def test_mean_hops_are_brute_force_means_of_manhattan_distances():
    # every (source core, destination core) pair of two row-major blocks on a width-w mesh, averaged by hand
    for src, dst, width in ((range(0, 5), range(5, 12), 4), (range(3, 4), range(0, 30), 6), (range(0, 9), range(0, 9), 3),
                            (range(10, 40), range(2, 3), 12)):
        pairs = [(s, d) for s in src for d in dst]
        dx = sum(abs(s % width - d % width) for s, d in pairs) / len(pairs)
        dy = sum(abs(s // width - d // width) for s, d in pairs) / len(pairs)
        assert _mean_hops(src, dst, width) == pytest.approx((dx, dy), rel=1e-12, abs=1e-12)


def test_mean_hops_over_many_cores_need_little_memory():
    # a spec with tiny cores maps a network onto millions of them (a mesh of as many rows): the mean hop distance
    # between two layers' blocks must not build a (rows x rows) matrix (2,000 rows here: 32 MB; 35,000 rows of
    # 8 cores for the demo on 4-bit cores: an out-of-memory error). Two blocks of 8,000 cores on a width-8 mesh:
    # mean |dx| over two uniform columns 0..7 = (8² - 1) / (3·8) = 2.625 (Σ|i-j| over the 8x8 pairs = 168, /64);
    # rows 0..999 against 1000..1999: mean dy = 1000
    import tracemalloc

    tracemalloc.start()
    try:
        dx, dy = _mean_hops(range(0, 8000), range(8000, 16000), 8)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (dx, dy) == pytest.approx((168 / 64, 1000.0), rel=1e-12)
    assert peak < 2_000_000  # bytes: histograms of 1,000-2,000 entries, not a 2,000 x 2,000 matrix


# ------------------------------------------------------------------ finding: placement ties kept the first order tried
def one_channel_activity(channels: slice, positions: slice) -> ActivityProfile:
    """One step of two_convs(groups=32): l1 fires at ``channels`` x ``positions`` (of the flat 4 x 64 map); the
    input and l2 are silent (input events would load every l1 core alike, more so those without border neurons)."""
    counts = {"input": np.zeros((2, 4, 64)), "l1": np.zeros((32, 256)), "l2": np.zeros((32, 4, 64))}
    counts["l1"][channels, positions] = 1.0
    counts["l1"] = counts["l1"].reshape(32, 4, 64)
    return ActivityProfile(time_steps=1, dt_s=1e-3, samples=1,
                           spikes_per_step={n: np.array([c.sum()]) for n, c in counts.items()}, spike_counts=counts)


def test_a_placement_tie_goes_to_the_shorter_latency():
    # two_convs(groups=32) on Loihi: every layer 1,024 neurons per core in either order, 8 + 8 = 16 cores, so the
    # four orders tried (all channel-major, all position-major, each layer flipped) tie. l1 firing in channel 0 at
    # all 256 positions: channel-major, a core of 1,024 = 4 channels x 256 positions holds all 256 active l1 neurons
    # and (depthwise l2: channel 0 reads channel 0 only) all of l2's synaptic events; position-major, a core holds 32
    # positions x 32 channels: 32 active neurons and an eighth of the events each. The first order tried
    # (channel-major) is the slowest; the estimate now takes the fastest.
    facts, spec = analyze(two_convs(groups=32)), load_spec("loihi")
    act = one_channel_activity(slice(0, 1), slice(None))
    candidates = _placements(facts, spec, 8, 1)
    assert len(candidates) == 4 and {m.cores_used for m, _ in candidates} == {16}
    assert [mapper.place["l1"].order for _, mapper in candidates][0] == "channel"
    lat = [_estimate_placed(facts, act, spec, m, mapper, []).latency_per_inference_s for m, mapper in candidates]
    est = estimate(facts, act, spec)
    assert est.latency_per_inference_s == min(lat) < lat[0]
    assert {n: est.mapping.layers[n].neurons_per_core for n in ("l1", "l2")} == {"l1": 1024, "l2": 1024}
    (note,) = [n for n in est.notes if n.startswith("placement tie")]
    assert note.startswith("placement tie: 4 orders need the same 16 cores; the shortest latency per inference at "
                           "this activity, then the least energy, chose position-major 'l1', 'l2' (")
    assert note in est.mapping.notes and len(est.mapping.tied_orders) == 4
    (used,) = [o for o in est.mapping.tied_orders if o["used"]]
    assert used["position_major"] == ["l1", "l2"] and used["latency_per_inference_s"] == min(lat)
    # all channels at 8 positions: position-major puts them on one core, channel-major spreads them over 8
    est = estimate(facts, one_channel_activity(slice(None), slice(100, 108)), spec)
    assert [o["order"] for o in est.mapping.tied_orders if o["used"]] == ["every layer channel-major"]


def test_a_tie_of_equal_costs_keeps_the_first_order_and_says_so():
    # no spikes at all after the input: every order costs the same (the input's events, spread over l1's cores
    # alike); the first order tried is kept. SpiNNaker has no time per operation and no routing cost: its ties are
    # not estimated twice
    facts = analyze(two_convs(groups=32))
    act = one_channel_activity(slice(0, 0), slice(0, 0))
    est = estimate(facts, act, "loihi")
    (note,) = [n for n in est.notes if n.startswith("placement tie")]
    assert note.endswith("give the same latency and energy at this activity: the first tried is used (every layer "
                         "channel-major)")
    spin = estimate(facts, one_channel_activity(slice(0, 1), slice(None)), "spinnaker")
    notes = [n for n in spin.notes if n.startswith("placement tie")]
    assert all("changes neither latency nor energy" in n for n in notes)


def test_placement_ties_energy_takes_the_least_energy_first():
    # the tied orders of two_convs(groups=32) on Loihi differ in latency and in routing energy: "energy" takes the
    # least energy (then the shortest latency), the default the shortest latency first; a bad value names the option
    facts, spec = analyze(two_convs(groups=32)), load_spec("loihi")
    act = one_channel_activity(slice(0, 1), slice(None))
    ests = [_estimate_placed(facts, act, spec, m, mapper, []) for m, mapper in _placements(facts, spec, 8, 1)]
    by_energy = min(ests, key=lambda e: (e.total_energy_j, e.latency_per_inference_s))
    by_latency = min(ests, key=lambda e: (e.latency_per_inference_s, e.total_energy_j))
    assert by_energy.mapping.layers != by_latency.mapping.layers  # the two rules choose differently here
    est = estimate(facts, act, spec, placement_ties="energy")
    assert est.total_energy_j == by_energy.total_energy_j and est.mapping.layers == by_energy.mapping.layers
    (note,) = [n for n in est.notes if n.startswith("placement tie")]
    assert "; the least energy per inference at this activity, then the shortest latency, chose " in note
    assert estimate(facts, act, spec).mapping.layers == by_latency.mapping.layers
    placed = estimate(facts, act, spec, placed_for=act, placement_ties="energy")  # kept apart from latency's tie
    assert placed.mapping.layers == by_energy.mapping.layers
    assert estimate(facts, act, spec, placed_for=act).mapping.layers == by_latency.mapping.layers
    with pytest.raises(ValueError, match=r"placement_ties must be one of 'latency', 'energy' .* got 'power'"):
        estimate(facts, act, spec, placement_ties="power")


def test_placed_for_keeps_one_placement_across_activities():
    # a study estimating one placed network at many activities (per sample, per exit step) passes the activity it
    # places the network for: an activity that alone would choose channel-major keeps position-major
    facts, spec = analyze(two_convs(groups=32)), load_spec("loihi")
    deploy = one_channel_activity(slice(0, 1), slice(None))  # -> position-major
    other = one_channel_activity(slice(None), slice(100, 108))  # -> channel-major on its own
    alone, placed = estimate(facts, other, spec), estimate(facts, other, spec, placed_for=deploy)
    own = estimate(facts, deploy, spec)
    assert [placed.mapping.layers[n].first_core for n in ("l1", "l2")] == [0, 8]
    assert any("at the activity it is placed for (placed_for)" in n for n in placed.notes)
    tie = lambda e: next(n for n in e.notes if n.startswith("placement tie"))  # noqa: E731
    used = lambda e: [o["order"] for o in e.mapping.tied_orders if o["used"]]  # noqa: E731
    assert used(placed) == used(own) and tie(placed).split(" chose ")[1] == tie(own).split(" chose ")[1]
    assert placed.latency_per_inference_s > alone.latency_per_inference_s
    assert estimate(facts, deploy, spec, placed_for=deploy).latency_per_inference_s == own.latency_per_inference_s
    with pytest.raises(TypeError, match="placed_for must be a hardware_models.ActivityProfile"):
        estimate(facts, other, spec, placed_for={"l1": 1})


def test_map_network_with_an_activity_is_the_estimates_mapping():
    facts, spec = analyze(two_convs(groups=32)), load_spec("loihi")
    act = one_channel_activity(slice(0, 1), slice(None))
    assert map_network(facts, spec, activity=act) == estimate(facts, act, spec).mapping
    assert map_network(facts, spec).cores_used == 16  # without: the same cores, the first order tried


@pytest.mark.parametrize("bad", [{"l1": np.ones(1)}, "activity.json"])
def test_map_network_names_an_activity_that_is_not_a_profile(bad):
    # it was an AttributeError from inside the estimate ('dict' object has no attribute 'time_steps')
    with pytest.raises(TypeError, match=r"^map_network: activity must be a hardware_models.ActivityProfile \(the "
                                        rf"activity an estimate would cost\) or None, got {type(bad).__name__}$"):
        map_network(analyze(two_convs(groups=32)), load_spec("loihi"), activity=bad)


def test_a_tie_in_latency_goes_to_the_lower_energy(tmp_path):
    # Loihi with a 1 s tick: every order's step lasts the tick, so the latencies tie and the energy decides (routing:
    # hops between l1's and l2's cores differ by order). The estimate's energy is the least of the orders'.
    text = (SPEC_DIR / "loihi.toml").read_text().replace('name = "loihi"', 'name = "slow"')
    text = text.replace('timing = "step_driven"', 'timing = "fixed_tick"')
    text = text.replace("[time]\n", '[time]\ntick = { value = 1, unit = "s", source = "davies2018" }\n')
    (tmp_path / "slow.toml").write_text(text)
    facts, spec = analyze(two_convs(groups=32)), load_spec(tmp_path / "slow.toml")
    act = one_channel_activity(slice(0, 1), slice(None))
    ests = [_estimate_placed(facts, act, spec, m, mapper, []) for m, mapper in _placements(facts, spec, 8, 1)]
    assert len({e.latency_per_inference_s for e in ests}) == 1 and len({e.total_energy_j for e in ests}) > 1
    est = estimate(facts, act, spec)
    assert est.total_energy_j == min(e.total_energy_j for e in ests)
    first_least = next(e for e in ests if e.total_energy_j == est.total_energy_j)  # equal energies: the first
    assert est.mapping.layers == first_least.mapping.layers



def test_a_spec_with_other_energy_terms_breaks_its_ties_anew(tmp_path):
    # the placements and the tie broken at placed_for are kept on the facts for the spec's contents; its energy terms
    # were left out of the key, so the same spec without a routing cost (every order then costs the same) reused the
    # decision, and the note, priced with routing
    import dataclasses

    text = (SPEC_DIR / "loihi.toml").read_text().replace('name = "loihi"', 'name = "slow"')
    text = text.replace('timing = "step_driven"', 'timing = "fixed_tick"')
    text = text.replace("[time]\n", '[time]\ntick = { value = 1, unit = "s", source = "davies2018" }\n')
    (tmp_path / "slow.toml").write_text(text)
    routed = load_spec(tmp_path / "slow.toml")
    unrouted = dataclasses.replace(routed, energy_terms={**routed.energy_terms, "routing": "not_published"})
    act = one_channel_activity(slice(0, 1), slice(None))
    tie = lambda e: next(n for n in e.notes if n.startswith("placement tie"))  # noqa: E731
    facts = analyze(two_convs(groups=32))
    assert " chose " in tie(estimate(facts, act, routed, placed_for=act))  # the orders' routing energies differ
    after = estimate(facts, act, unrouted, placed_for=act)
    alone = estimate(analyze(two_convs(groups=32)), act, unrouted, placed_for=act)
    assert tie(after) == tie(alone) and "give the same latency and energy" in tie(alone)
    assert after.mapping == alone.mapping and after.total_energy_j == alone.total_energy_j

def demo_like() -> tuple[nir.NIRGraph, ActivityProfile]:
    """The demo's network (2x34x34 -> conv5 16 -> max pool 2 -> conv5 32 -> max pool 2 -> 10) in one step of a
    digit-like activity: input and l1 fire in the central half of their maps, the pools and l2 once each."""
    pool = dict(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    nodes = {"input": nir.Input(input_type=np.array([2, 34, 34])), "c1": conv(16, 2, 5), "l1": lif((16, 30, 30)),
             "p1": nir.SumPool2d(**pool), "c2": conv(32, 16, 5), "l2": lif((32, 11, 11)), "p2": nir.SumPool2d(**pool),
             "flat": nir.Flatten(input_type={"input": np.array([32, 5, 5])}, start_dim=0, end_dim=-1),
             "fc": nir.Linear(weight=np.ones((10, 800))), "l3": lif(10)}
    names = list(nodes)
    counts = {"l3": np.ones(10)}
    for n, (C, H, W) in (("input", (2, 34, 34)), ("l1", (16, 30, 30)), ("p1", (16, 15, 15)), ("l2", (32, 11, 11)),
                         ("p2", (32, 5, 5))):
        c = counts[n] = np.zeros((C, H, W))
        if n in ("input", "l1"):
            c[:, H // 4: 3 * H // 4, W // 4: 3 * W // 4] = 1.0
        else:
            c[0, H // 2, W // 2] = 1.0
    act = ActivityProfile(time_steps=1, dt_s=1e-3, samples=1, spike_counts=counts,
                          spikes_per_step={n: np.array([c.sum()]) for n, c in counts.items()})
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:]))), act


def test_a_tie_the_order_sweep_passed_by_is_found():
    # the demo's case: all position-major needs 34 cores; the sweep flips l1 to channel-major (34: no gain), then p1
    # (33: kept), so channel-major l1 with channel-major p1 (33 cores, l1's central activity spread over all its
    # cores, not the few holding the central rows) was never tried, and the estimate took 1.6x the latency. Every
    # order of the four spatial layers, by brute force: the estimate is the fastest of those with the fewest cores.
    from hardware_models.digital import _max_pools_on

    g, act = demo_like()
    facts, spec = analyze(g), load_spec("loihi")
    chip, chip_act, _ = _max_pools_on(facts, act, spec)
    spatial = _CorePartition(chip, spec, 8, 1).spatial
    assert spatial == ["l1", "p1", "l2", "p2"]
    every = []
    for bits in range(16):
        m = _CorePartition(chip, spec, 8, 1, {q: ("channel", "position")[bits >> i & 1] for i, q in enumerate(spatial)})
        for pop in m.pops:
            m.map_fan_in(pop)
        while m.map_fan_out():
            pass
        r = m.finish()
        every.append((r.cores_used, _estimate_placed(chip, chip_act, spec, r, m, []).latency_per_inference_s))
    fewest = min(c for c, _ in every)
    est = estimate(facts, act, spec)
    assert est.mapping.cores_used == fewest == 33
    assert est.latency_per_inference_s == min(s for c, s in every if c == fewest)
    assert est.latency_per_inference_s < 0.7 * max(s for c, s in every if c == fewest)
    assert est.mapping.layers["l1"].cores == 15
    assert [o["position_major"] for o in est.mapping.tied_orders if o["used"]] == [["l2", "p2"]]


@pytest.mark.parametrize("target", ["loihi", "spinnaker", "truenorth", "speck"])
def test_placed_for_of_other_max_pools_is_refused_with_or_without_a_tie(target):
    # demo_like's pools p1, p2 measured in the activity, not in placed_for (a sum-pool export's activity): refused
    # only on Loihi, where the tie is costed at placed_for; SpiNNaker (ties not costed), TrueNorth and Speck (one
    # layer per core, no placement to choose) took it silently. Now every target names both lists
    g, act = demo_like()
    facts = analyze(g)
    summed = ActivityProfile(time_steps=1, dt_s=1e-3, samples=1,
                             spikes_per_step={k: v for k, v in act.spikes_per_step.items() if k not in ("p1", "p2")},
                             spike_counts={k: v for k, v in act.spike_counts.items() if k not in ("p1", "p2")})
    for placed, at, theirs, ours in ((summed, act, "[]", "['p1', 'p2']"), (act, summed, "['p1', 'p2']", "[]")):
        with pytest.raises(ValueError, match=rf"^placed_for measures the events of max pools \{theirs}, the activity "
                                             rf"estimated those of \{ours}: both must measure the same pools"):
            estimate(facts, at, target, placed_for=placed)
    assert estimate(facts, act, target, placed_for=act).total_energy_j == estimate(facts, act, target).total_energy_j


def test_a_tie_note_is_short_and_the_mapping_lists_every_tied_order():
    # the note listed every tied order with its figures (SpiNNaker's 6 on the demo); it names the count, the rule, the
    # order chosen and, where the other rule would choose another, that one (better in its metric, worse in the
    # rule's). Every order's figures are in mapping.tied_orders, and so in the estimate's JSON
    facts, spec = analyze(two_convs(groups=32)), load_spec("loihi")
    act = one_channel_activity(slice(0, 1), slice(None))  # the rules choose differently here (test above)
    ests = [_estimate_placed(facts, act, spec, m, mapper, []) for m, mapper in _placements(facts, spec, 8, 1)]
    fig = lambda e: f"({e.latency_per_inference_s * 1e3:.4g} ms, {e.total_energy_j * 1e6:.4g} µJ)"  # noqa: E731
    by_latency = min(ests, key=lambda e: (e.latency_per_inference_s, e.total_energy_j))
    by_energy = min(ests, key=lambda e: (e.total_energy_j, e.latency_per_inference_s))
    for rule, chosen, other, metric in (("latency", by_latency, by_energy, "least energy"),
                                        ("energy", by_energy, by_latency, "shortest latency")):
        est = estimate(facts, act, spec, placement_ties=rule)
        (note,) = [n for n in est.notes if n.startswith("placement tie")]
        tied = est.mapping.tied_orders
        (used,) = [o for o in tied if o["used"]]
        alt = next(o for o in tied if (o["latency_per_inference_s"], o["total_energy_j"]) ==
                   (other.latency_per_inference_s, other.total_energy_j))  # (of equal figures, the first tried)
        assert note.startswith("placement tie: 4 orders need the same 16 cores; ")
        assert f" chose {used['order']} {fig(chosen)}; the {metric} of them: {alt['order']} {fig(other)}; " in note
        assert note.endswith("every tied order's figures: the mapping's tied_orders")
        assert sum(o["order"] in note for o in tied) == 2  # (no order's text is inside another's here)
        assert [(o["latency_per_inference_s"], o["total_energy_j"]) for o in tied] == \
            [(e.latency_per_inference_s, e.total_energy_j) for e in ests]
        assert est.to_dict()["mapping"]["tied_orders"] == [dict(o) for o in tied]
    # where the rule's choice is also the best in the other metric, no second order is named
    est = estimate(facts, one_channel_activity(slice(None), slice(100, 108)), spec)
    (note,) = [n for n in est.notes if n.startswith("placement tie")]
    assert " of them: " not in note and note.count("channel-major") == 1
    # SpiNNaker: the order changes nothing; the note names the first tried, the mapping lists the others, uncosted
    g, act = demo_like()
    spin = estimate(analyze(g), act, "spinnaker")
    (note,) = [n for n in spin.notes if n.startswith("placement tie")]
    tied = spin.mapping.tied_orders
    assert len(tied) == 6 and note.startswith("placement tie: 6 orders need the same ")
    assert note.endswith(f"the first tried is used ({tied[0]['order']})") and len(note) < 250
    assert [o["used"] for o in tied] == [True] + [False] * 5
    assert {o["latency_per_inference_s"] for o in tied} == {o["total_energy_j"] for o in tied} == {None}
    # without a tie (Speck: a layer per core) the list is empty
    assert estimate(facts, one_channel_activity(slice(0, 1), slice(None)), "speck").mapping.tied_orders == ()


def depthwise_chain(layers: int) -> nir.NIRGraph:
    """two_convs(groups=32) with ``layers`` LIF layers: Input(2, 4, 64) -> conv -> LIF(32, 4, 64), then depthwise
    convs 3x3 pad 1, each to a LIF(32, 4, 64)."""
    nodes = {"input": nir.Input(input_type=np.array([2, 4, 64])), "c1": conv(32, 2, 3, padding=1),
             "l1": lif((32, 4, 64))}
    for i in range(2, layers + 1):
        nodes[f"c{i}"], nodes[f"l{i}"] = conv(32, 32, 3, padding=1, groups=32), lif((32, 4, 64))
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])))


@pytest.mark.parametrize("layers, tried, capped", [(4, 16, False), (5, 27, True)])
def test_the_tie_search_says_when_its_cap_left_an_order_untried(layers, tried, capped):
    # every layer 1,024 neurons per Loihi core in either order (two_convs(groups=32)), so every order ties. The sweep
    # tries n + 2 orders, the flip search at most 4 per layer: with 4 layers all 16 orders (6 + 10 <= 6 + 16), with 5
    # only 7 + 20 = 27 of the 32, and the cap, which said nothing, is now named in the mapping's and the tie's notes
    from hardware_models.digital import FLIPS_PER_LAYER

    facts, spec = analyze(depthwise_chain(layers)), load_spec("loihi")
    assert FLIPS_PER_LAYER == 4 and _CorePartition(facts, spec, 8, 1).spatial == [f"l{i}" for i in range(1, layers + 1)]
    candidates = _placements(facts, spec, 8, 1)
    assert len(candidates) == tried and {m.cores_used for m, _ in candidates} == {8 * layers}
    counts = {"input": np.zeros((2, 4, 64)), **{f"l{i}": np.zeros((32, 4, 64)) for i in range(1, layers + 1)}}
    counts["l1"][0] = 1.0
    act = ActivityProfile(time_steps=1, dt_s=1e-3, samples=1, spike_counts=counts,
                          spikes_per_step={n: np.array([c.sum()]) for n, c in counts.items()})
    est = estimate(facts, act, spec)
    (tie,) = [n for n in est.notes if n.startswith("placement tie")]
    searched = [n for n in est.notes if n.startswith("placement search")]
    assert len(est.mapping.tied_orders) == tried
    assert tie.startswith(f"placement tie: {tried} orders need the same {8 * layers} cores"
                          + (" (the search reached its cap, see its note: more may tie);" if capped else ";"))
    assert searched == ([f"placement search: stopped at its cap of {4 * layers} orders one flip away from a tied one "
                         "(4 per layer with a choice of order), having tried 27 of the 32 orders of its 5 such "
                         "layers: an order left untried may tie (not costed) or need fewer cores"] if capped else [])

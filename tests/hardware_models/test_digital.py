"""Digital neuromorphic model: core counts equal hand computations, limits are reported or split per spec,
energy is affine in activity with only idle/static terms left at zero activity, latency by hand."""

from __future__ import annotations

from dataclasses import replace

import nir
import numpy as np
import pytest

from hardware_models import ActivityProfile, analyze, estimate, list_targets, load_spec
from hardware_models.digital import map_network
from hardware_models.specs import SPEC_DIR
from hw_helpers import lif, mlp, random_activity, small_cnn
from si_approx import approx_si

DIGITAL = [t for t in list_targets() if load_spec(t).kind == "digital"]


def mapping(graph, target, **kw):
    return map_network(analyze(graph), load_spec(target), **kw)


def cores(m):
    return {name: layer.cores for name, layer in m.layers.items()}


# ------------------------------------------------------------------ TrueNorth: 256 axons x 256 neurons per core
def test_truenorth_core_counts_by_hand():
    assert cores(mapping(mlp(256, 256), "truenorth")) == {"lif": 1}
    assert cores(mapping(mlp(100, 256), "truenorth")) == {"lif": 1}
    assert cores(mapping(mlp(256, 512), "truenorth")) == {"lif": 2}  # 512 neurons / 256 per core
    assert cores(mapping(mlp(256, 257), "truenorth")) == {"lif": 2}


def test_truenorth_neuron_copies_for_fan_out():
    # every neuron of the 256-neuron layer must reach both cores of the 512-neuron layer, but a TrueNorth
    # neuron reaches one core: 2 copies each -> 512 slots -> 2 cores; plus 2 cores for the 512 layer.
    m = mapping(mlp(256, 256, 512), "truenorth")
    assert cores(m) == {"lif": 2, "lif_1": 2} and m.cores_used == 4
    assert m.layers["lif"].slots == 512 and m.fits


def test_truenorth_fan_in_over_256_is_reported():
    m = mapping(mlp(1024, 100), "truenorth")
    assert not m.fits and m.chips_needed is None
    (v,) = m.violations
    assert (v.limit, v.layer, v.value, v.allowed, v.excess, v.ratio) == ("fan_in_per_core", "lif", 1024, 256, 768, 4.0)
    assert "1024 input axons" in v.message and "restructured" in v.message
    # what the user can change: the model (it advised raising capacity.fan_in_per_core, TrueNorth's 256 crossbar rows)
    assert v.message.endswith("give each of its neurons at most 256 input axons, i.e. nonzero weights (a narrower "
                              "layer or fewer channels before it, a smaller kernel, or weights pruned to a sparse "
                              "connectivity)") and "raised" not in v.message


def test_fan_in_advice_names_what_a_user_can_change_per_target(tmp_path):
    """Where one neuron's synapses exceed a core's memory on a chip that does not split them, the advice names the
    weight width where the chip stores narrower weights, and never a capacity to raise."""
    # a Loihi that reports, not splits, and whose core holds 1 KiB (1024 8-bit synapses): 2000 per neuron exceed it
    text = (SPEC_DIR / "loihi.toml").read_text().replace('name = "loihi"', 'name = "small"')
    text = text.replace('fan_in_over_limit = "split"', 'fan_in_over_limit = "report"')
    text = text.replace('synaptic_memory_per_core = { value = 128, unit = "KiB"',
                        'synaptic_memory_per_core = { value = 1, unit = "KiB"')
    (tmp_path / "small.toml").write_text(text)
    m = mapping(mlp(2000, 10), str(tmp_path / "small.toml"))
    (v,) = [v for v in m.violations if v.limit == "synaptic_memory_per_core"]
    assert "raised" not in v.message and "give each of its neurons at most 1024 synapses" in v.message
    assert v.message.endswith(", or estimate with fewer weight_bits (8 now; small stores 1 and up)")
    (v,) = mapping(mlp(1024, 100), "truenorth").violations  # TrueNorth's weights are 1 bit: no narrower ones
    assert "weight_bits" not in v.message


# ------------------------------------------------------------------ Loihi: 1024 neurons, 128 KiB, 4096 axons per core
def test_loihi_neuron_limited():
    m = mapping(mlp(100, 2000), "loihi")
    assert cores(m) == {"lif": 2} and m.layers["lif"].limited_by == "neurons_per_core"


def test_loihi_synaptic_memory_limited():
    # 1000 synapses per neuron at 8 bits; a core holds 128 KiB = 1,048,576 bits = 131,072 synapses -> 131
    # neurons per core -> ceil(1000 / 131) = 8 cores. At 4 bits: 262 per core -> 4 cores.
    m = mapping(mlp(1000, 1000), "loihi")
    assert cores(m) == {"lif": 8} and m.layers["lif"].neurons_per_core == 131
    assert m.layers["lif"].limited_by == "synaptic_memory_per_core"
    assert cores(mapping(mlp(1000, 1000), "loihi", weight_bits=4)) == {"lif": 4}


def test_a_core_that_cannot_hold_one_synapse_is_an_error_naming_the_memory(tmp_path):
    # 4 bits of synaptic memory per core hold four 1-bit weights, but not one 8-bit synapse (was ZeroDivisionError)
    from hardware_models.specs import SPEC_DIR

    text = (SPEC_DIR / "loihi.toml").read_text().replace('name = "loihi"', 'name = "tiny"')
    path = tmp_path / "tiny.toml"
    path.write_text(text.replace('synaptic_memory_per_core = { value = 128, unit = "KiB"',
                                 'synaptic_memory_per_core = { value = 4, unit = "bits"'))
    spec = load_spec(path)
    assert map_network(analyze(mlp(4, 2)), spec, weight_bits=1).layers["lif"].neurons_per_core == 1
    with pytest.raises(ValueError, match=r"^tiny: a core's synaptic memory \(capacity.synaptic_memory_per_core = 4 "
                                         r"bits\) cannot hold one 8-bit synapse, so layer 'lif' cannot be mapped"):
        map_network(analyze(mlp(4, 2)), spec, weight_bits=8)


def test_loihi_fan_in_over_limit_is_split():
    # 5000 inputs > 4096 axons per core: split in 2 input slices of 2500 axons, 10 neurons each -> 2 cores
    m = mapping(mlp(5000, 10), "loihi")
    assert m.fits and cores(m) == {"lif": 2} and m.layers["lif"].input_slices == 2
    assert any("split into 2 input slices" in n for n in m.notes)


def test_loihi_fan_out_per_core_limits_the_source_layer():
    # lif_1: 512 synapses/neuron -> 256 neurons per core (memory) -> 10 cores. Every lif neuron reaches all 10,
    # and a core has 4096 output axons -> at most 409 lif neurons per core -> 2 cores. Total 12.
    m = mapping(mlp(64, 512, 2560), "loihi")
    assert cores(m) == {"lif": 2, "lif_1": 10} and m.cores_used == 12
    assert m.layers["lif"].neurons_per_core == 409 and m.layers["lif"].limited_by == "fan_out_per_core"


def test_chips_needed_when_cores_run_out():
    g = nir.NIRGraph.from_list(nir.Input(input_type=np.array([128 * 1024 + 1])), lif(128 * 1024 + 1))
    m = mapping(g, "loihi")
    assert m.cores_used == 129 and m.chips_needed == 2 and not m.fits
    (v,) = m.violations
    assert (v.limit, v.value, v.allowed) == ("cores_per_chip", 129, 128)
    assert "(capacity.cores_per_chip = 128; over by 1" in v.message  # the spec constant that binds
    assert mapping(g, "loihi", chips=2).fits


def test_fan_out_over_a_core_names_the_spec_constant(tmp_path):
    # a chip of one's own with 4 neurons and 2 output axons per core: lif_1's 12 neurons take 3 cores, and every
    # lif neuron (all-to-all weights) must reach all 3, more than its core's 2 output axons
    text = (SPEC_DIR / "loihi.toml").read_text().replace('name = "loihi"', 'name = "small"')
    text = text.replace("neurons_per_core = { value = 1024,", "neurons_per_core = { value = 4,")
    text = text.replace("fan_out_per_core = { value = 4096,", "fan_out_per_core = { value = 2,")
    (tmp_path / "small.toml").write_text(text)
    m = map_network(analyze(mlp(4, 4, 12)), load_spec(tmp_path / "small.toml"))
    (v,) = m.violations
    assert (v.limit, v.layer, v.value, v.allowed) == ("fan_out_per_core", "lif", 3, 2)
    assert "a small core has 2 output axons (capacity.fan_out_per_core; over by 1, 1.50x)" in v.message


def test_conv_layers_map_within_axon_limits():
    m = mapping(small_cnn(), "truenorth")
    for name, layer in m.layers.items():
        if name != "lif3":  # lif3 (fan-in 3136) is reported
            assert layer.max_axons_in_per_core <= 256
        assert layer.neurons_per_core <= 256
    assert [v.layer for v in m.violations] == ["lif3"]


# ------------------------------------------------------------------ Speck: one layer per core
def test_speck_places_a_small_cnn_one_layer_per_core():
    m = mapping(small_cnn(), "speck")
    assert m.fits and m.cores_used == 3
    # the fc layer needs 16 * 2^(ceil(log2 196) + ceil(log2 10)) = 65536 kernel entries: only cores 5 and 6
    assert m.layers["lif3"].max_synapses_per_core == 65536 and m.layers["lif3"].first_core in (5, 6)
    assert m.layers["lif1"].max_synapses_per_core == 2 * 2 ** (4 + 3)  # c=2, 3x3 -> 4, f=8 -> 3


def test_speck_reports_kernel_memory_and_layer_count():
    m = mapping(small_cnn(c2=32), "speck")  # fc: 32 * 2^(8 + 4) = 131072 entries > 65536
    assert not m.fits and m.chips_needed is None
    assert [(v.limit, v.layer, v.value, v.allowed) for v in m.violations] == [
        ("kernel_memory_per_core", "lif3", 131072, 65536)]
    deep = mlp(*([8] * 11))  # 10 layers, 9 cores
    m = mapping(deep, "speck")
    assert not m.fits and m.chips_needed == 2 and m.violations[0].limit == "cores_per_chip"
    two = mapping(deep, "speck", chips=2)  # the chips option is honoured, as on the other targets
    assert two.fits and two.chips_needed == 2 and not two.violations


def _fan_out_graph(branches: int, recurrent: bool = False) -> nir.NIRGraph:
    """input -> w0 -> hub (LIF 8) -> w_i -> leaf_i (LIF 4) for each branch, [hub -> w_rec -> hub]."""
    nodes = {"input": nir.Input(input_type=np.array([6])), "w0": nir.Linear(weight=np.ones((8, 6))), "hub": lif(8)}
    edges = [("input", "w0"), ("w0", "hub")]
    for i in range(branches):
        nodes |= {f"w{i + 1}": nir.Linear(weight=np.ones((4, 8))), f"leaf{i}": lif(4),
                  f"out{i}": nir.Output(output_type=np.array([4]))}
        edges += [("hub", f"w{i + 1}"), (f"w{i + 1}", f"leaf{i}"), (f"leaf{i}", f"out{i}")]
    if recurrent:
        nodes["w_rec"] = nir.Linear(weight=np.ones((8, 8)))
        edges += [("hub", "w_rec"), ("w_rec", "hub")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def test_speck_core_sends_to_at_most_two_layers():
    # sinabs FAQ: a DYNAP-CNN core has 2 destination cores
    assert mapping(_fan_out_graph(2), "speck").fits
    m = mapping(_fan_out_graph(3), "speck")
    assert not m.fits
    assert [(v.limit, v.layer, v.value, v.allowed) for v in m.violations] == [("destinations_per_core", "hub", 3, 2)]
    assert "leaf0, leaf1, leaf2" in m.violations[0].message


def test_speck_notes_recurrent_layers_and_counts_the_loop_as_a_destination():
    m = mapping(_fan_out_graph(1, recurrent=True), "speck")
    assert m.fits and any("recurrent connections (hub)" in n for n in m.notes)
    assert not any("recurrent" in n for n in mapping(_fan_out_graph(2), "speck").notes)
    m = mapping(_fan_out_graph(2, recurrent=True), "speck")  # leaf0, leaf1 and itself
    assert [(v.limit, v.value) for v in m.violations] == [("destinations_per_core", 3)]


# ------------------------------------------------------------------ energy
@pytest.mark.parametrize("target", DIGITAL)
def test_energy_is_affine_in_activity(target):
    facts = analyze(small_cnn(c1=4, c2=8, n_out=6, size=16))
    act, _ = random_activity(facts, T=5, rate=0.2, seed=1)
    act = act.scaled(0.5)  # room to double it: a neuron spikes at most T times (checked)
    e0 = estimate(facts, act.scaled(0.0), target).energy_j
    e1 = estimate(facts, act, target).energy_j
    for alpha in (0.5, 2.0):
        ea = estimate(facts, act.scaled(alpha), target).energy_j
        for k in e1:
            assert ea[k] == pytest.approx(e0[k] + alpha * (e1[k] - e0[k]), rel=1e-9, abs=1e-30), (target, k)


@pytest.mark.parametrize("target", DIGITAL)
def test_zero_activity_leaves_only_idle_and_static(target):
    facts = analyze(small_cnn(c1=4, c2=8, n_out=6, size=16))
    act, _ = random_activity(facts, T=5, rate=0.2, seed=1)
    est = estimate(facts, act.scaled(0.0), target)
    assert est.synops == 0
    assert est.energy_j["synaptic"] == est.energy_j["neuron_active"] == est.energy_j["routing"] == 0
    assert est.total_energy_j == approx_si(est.energy_j["neuron_idle"] + est.energy_j["static"])
    busy = estimate(facts, act, target)
    assert busy.total_energy_j >= est.total_energy_j


def single_layer_activity(T=4):
    """Input(4) -> Linear(3x4) -> LIF(3): 2 input events and 1 output spike in step 0, nothing after."""
    inp = np.zeros(T)
    inp[0] = 2.0
    out = np.zeros(T)
    out[0] = 1.0
    return ActivityProfile(time_steps=T, dt_s=1e-3, samples=1, spikes_per_step={"lif": out}, input_events_per_step=inp)


def test_loihi_energy_and_latency_by_hand():
    est = estimate(mlp(4, 3), single_layer_activity(T=4), "loihi")
    e = est.energy_j
    assert est.synops == 6  # 2 events x fan-out 3
    assert e["synaptic"] == approx_si(6 * 23.6e-12)
    assert e["neuron_active"] == approx_si(1 * 81e-12)
    assert e["neuron_idle"] == approx_si((3 * 4 - 1) * 52e-12)
    assert e["routing"] == approx_si(2 * 1.7e-12)  # 2 input events, each to 1 core, no mesh hops
    assert e["static"] == 0
    # step 0: 6 synops x 3.5 ns + 1 active x 8.4 ns + 2 idle x 5.3 ns + sync 465 ns; later steps: 3 idle + sync
    step0 = 6 * 3.5e-9 + 8.4e-9 + 2 * 5.3e-9 + 465e-9
    later = 3 * 5.3e-9 + 465e-9
    assert est.latency_per_step_max_s == approx_si(step0)
    assert est.latency_per_inference_s == approx_si(step0 + 3 * later)
    assert est.latency_per_step_s == approx_si((step0 + 3 * later) / 4)


def test_loihi_sanafe_energy_by_hand_from_sanafes_per_op_figures():
    # Input(2) -> 3 LIF -> 2 LIF, dense ones, T = 4; 2 input events per step, 'lif' fires 0,1,1,1 and 'lif_1' 0,0,1,0.
    # SANA-FE's arch/loihi.yaml charges: 51.2 pJ access per neuron per step, +21.6 pJ update (this activity has no
    # updates_per_step, as an activity.json from before they were recorded: every neuron counted as updated in every
    # step, the upper bound), +69.3 pJ per spike fired, 111 pJ per message (one per destination core), 35.5 pJ per
    # synapse, 3.0 pJ per east-west hop. tests/estimation/test_activity_updates.py charges measured updates.
    T = 4
    act = ActivityProfile(time_steps=T, dt_s=1e-3, samples=1,
                          spikes_per_step={"lif": np.array([0, 1, 1, 1.0]), "lif_1": np.array([0, 0, 1, 0.0])},
                          spike_counts={"lif": np.ones(3), "lif_1": np.array([1.0, 0])},
                          input_events_per_step=np.full(T, 2.0))
    est = estimate(mlp(2, 3, 2), act, "loihi_sanafe")
    e = {k: v * 1e12 for k, v in est.energy_j.items()}  # pJ
    neuron_steps, spikes = 5 * T, 4
    assert est.synops == 8 * 3 + 3 * 2
    assert e["synaptic"] == pytest.approx(30 * 35.5)
    assert e["neuron_active"] == pytest.approx(spikes * (51.2 + 21.6 + 69.3))  # 568.4
    assert e["neuron_idle"] == pytest.approx((neuron_steps - spikes) * (51.2 + 21.6))  # 1164.8
    assert e["neuron_active"] + e["neuron_idle"] == pytest.approx(51.2 * 20 + 21.6 * 20 + 69.3 * 4)  # 1733.2
    # messages: 8 input events to lif's one core, lif's 3 spikes to lif_1's one core (core 1: one east hop)
    assert est.mapping.cores_used == 2
    assert e["routing"] == pytest.approx((8 + 3) * 111.0 + 3 * 3.0)
    assert est.total_energy_j * 1e12 == pytest.approx(1065 + 1733.2 + 1230)  # 4028.2 pJ
    # the upper bound of the update count is stated: 16 neuron-steps without a spike x 21.6 pJ
    assert any("without updates_per_step" in n and "upper bound" in n and f"{16 * 21.6e-12:.3g} J" in n
               for n in est.notes)


@pytest.mark.parametrize("cores, sync_us", [(1, 0.6), (4, 0.6), (5, 1.0), (12, 1.0), (13, 1.4), (112, 1.4),
                                            (113, 1.8), (128, 1.8)])
def test_loihi_sanafe_sync_follows_sanafes_table_of_tiles_in_use(cores, sync_us):
    # SANA-FE's latency_sync {1: 0.6, 2: 1.0, 4: 1.4, 29: 1.8} us, looked up at the largest key <= tiles in use,
    # tiles of 4 cores. One layer of cores x 1024 neurons (4 inputs each): 1024 neurons per core. Without activity
    # each step is the busiest core's 1024 idle updates (5.3 ns each) plus the barrier.
    act = ActivityProfile(time_steps=2, dt_s=1e-3, samples=1, spikes_per_step={"lif": np.zeros(2)})
    est = estimate(mlp(4, 1024 * cores), act, "loihi_sanafe")
    assert est.mapping.cores_used == cores
    assert est.latency_per_step_max_s == approx_si(1024 * 5.3e-9 + sync_us * 1e-6)


def test_truenorth_is_all_in_and_ticks_at_1ms():
    est = estimate(mlp(4, 3), single_layer_activity(T=4), "truenorth")
    assert est.energy_j == approx_si({"synaptic": 6 * 26e-12, "neuron_active": 0, "neuron_idle": 0,
                                      "routing": 0, "static": 0})
    assert est.latency_per_inference_s == approx_si(4e-3) and est.latency_per_step_s == approx_si(1e-3)
    zero = estimate(mlp(4, 3), single_layer_activity(T=4).scaled(0), "truenorth")
    assert zero.total_energy_j == 0
    assert any("typical chip power" in n for n in zero.notes)


def test_spinnaker_static_power_scales_with_chips_and_ticks():
    facts = analyze(small_cnn())  # 47 cores at 255 neurons per core -> 3 chips of 18 cores
    act, _ = random_activity(facts, T=5, rate=0.1)
    est = estimate(facts, act, "spinnaker")
    assert est.mapping.chips_needed == 3 and not est.fits
    assert est.energy_j["static"] == approx_si(1.0 * 3 * 5 * 1e-3)
    n = facts.neurons
    assert est.energy_j["neuron_active"] + est.energy_j["neuron_idle"] == approx_si(n * 5 * 26e-9)


def test_speck_is_resting_power_over_real_time():
    facts = analyze(small_cnn())
    act, _ = random_activity(facts, T=5, rate=0.1, dt_s=2e-3)
    est = estimate(facts, act, "speck")
    assert est.total_energy_j == approx_si(0.42e-3 * 5 * 2e-3)
    assert est.latency_per_inference_s == approx_si(5 * 2e-3 + 3.36e-6 * 3 / 9)
    assert any("No public energy per synaptic operation" in n for n in est.notes)


def real_time_notes(est):
    return [n for n in est.notes if "real time" in n]


def test_a_step_driven_chip_slower_than_the_input_step_says_it_is_not_real_time():
    # Loihi's slowest step above: 6 x 3.5 + 8.4 + 2 x 5.3 + 465 = 505 ns. At 1 ms steps it keeps up; at 400 ns it
    # cannot (505 / 400 = 1.2625, shown 1.263x), and the latency stays its compute time
    slow = estimate(mlp(4, 3), replace(single_layer_activity(T=4), dt_s=4e-7), "loihi")
    (note,) = real_time_notes(slow)
    assert "not real time at this step" in note and "5.05e-07 s" in note and "1.263x faster" in note
    fast = estimate(mlp(4, 3), single_layer_activity(T=4), "loihi")
    assert not real_time_notes(fast) and slow.latency_per_inference_s == fast.latency_per_inference_s


def test_a_tick_longer_than_the_input_step_is_not_real_time():
    # TrueNorth keeps its 1 ms tick: at 0.1 ms steps it runs 10x slower than the input arrives
    est = estimate(mlp(4, 3), replace(single_layer_activity(T=4), dt_s=1e-4), "truenorth")
    (note,) = real_time_notes(est)
    assert "one step per 0.001 s tick" in note and "10x slower" in note
    assert est.latency_per_inference_s == approx_si(4e-3)
    assert not real_time_notes(estimate(mlp(4, 3), single_layer_activity(T=4), "truenorth"))


def test_speck_without_operation_times_gives_the_synaptic_rate_its_real_time_latency_assumes():
    # Speck publishes no time per synaptic operation: its latency is T x dt + the pipeline whatever the load, so the
    # note gives the busiest layer's load: 2 input events x fan-out 3 = 6 synaptic operations in step 0, 6 / dt per
    # second (6e+06 at 1 µs steps, 6000 at 1 ms); a shorter step asks more per second of the same core
    for dt, rate in ((1e-6, "6e+06"), (1e-3, "6e+03")):
        est = estimate(mlp(4, 3), replace(single_layer_activity(T=4), dt_s=dt), "speck")
        assert est.latency_per_inference_s == approx_si(4 * dt + 3.36e-6 / 9)
        (note,) = real_time_notes(est)
        assert "publishes no time per synaptic operation" in note
        assert f"layer, 'lif', takes up to 6 synaptic operations in a step, {rate} per second" in note
    assert any("SynOps/s" in n and "tips_for_training" in n for n in est.notes)  # the chip's limit, unpublished


def test_estimate_reports_per_layer_facts_and_baselines():
    facts = analyze(small_cnn(c1=4, c2=8, n_out=6, size=16))
    act, spikes = random_activity(facts, T=5, rate=0.2, seed=2)
    est = estimate(facts, act, "loihi")
    layer = est.per_layer["lif2"]
    assert layer["spikes"] == pytest.approx(spikes["lif2"].sum() / 2)
    assert layer["firing_rate_hz"] == pytest.approx(layer["spikes"] / (layer["neurons"] * 5 * 1e-3))
    assert layer["cores"] == est.mapping.layers["lif2"].cores
    assert sum(v["synops_in"] for v in est.per_layer.values()) == pytest.approx(est.synops)
    assert set(est.baselines_j) == {"dense_ann_conventional_45nm", "naive_snn_conventional_45nm",
                                    "snn_with_memory_conventional_45nm"}


@pytest.mark.parametrize("stride, pad, dil, groups, n", [(1, 1, 1, 1, 7), (2, 1, 1, 1, 5), (1, 0, 2, 2, 9), (3, 2, 1, 2, 4),
                                                        (1, 1, 1, 1, 200)])
def test_conv_chunk_connectivity_equals_brute_force(stride, pad, dil, groups, n):
    """Input axons per core and destination cores per input, against plain loops over a dense conv."""
    from hardware_models.digital import _CorePartition
    from hw_helpers import conv_case

    geom, N, inputs, reads = conv_case(stride, pad, dil, groups)  # reads: inputs read by each output
    axons, dest = _CorePartition._conv_connectivity(geom, N, n, np.arange(0, N, n))
    chunks = [set().union(*reads[a : a + n]) for a in range(0, N, n)]
    np.testing.assert_array_equal(axons, [len(c) for c in chunks])
    np.testing.assert_array_equal(dest, [sum(i in c for c in chunks) for i in range(inputs)])


def _cuba(graph: nir.NIRGraph) -> nir.NIRGraph:
    """``graph`` with every LIF node replaced by a CubaLIF node of the same shape (α = 0.5, β = 0.9 at 1 ms)."""
    def cuba(node):
        shape = np.shape(node.v_threshold)
        return nir.CubaLIF(tau_syn=np.full(shape, 2e-3), tau_mem=np.full(shape, 1e-2), r=np.full(shape, 10.0),
                           v_leak=np.zeros(shape), v_threshold=np.ones(shape), w_in=np.full(shape, 2.0))

    nodes = {k: cuba(n) if isinstance(n, nir.LIF) else n for k, n in graph.nodes.items()}
    return nir.NIRGraph(nodes=nodes, edges=list(graph.edges))


@pytest.mark.parametrize("target", DIGITAL)
def test_a_cuba_neuron_is_one_compartment_costed_as_a_lif(target):
    # Loihi's compartment is current-based (Davies et al. 2018: a current u and a voltage v, each with its own decay);
    # a LIF is that compartment with the current cleared every step. So a CubaLIF layer maps and costs as the LIF layer
    # of the same size with the same activity (spikes and updates): no second compartment for its current, no
    # synaptic event for it (the current is the neuron's state, not a synapse)
    graph = mlp(4, 3, 2)
    cuba = _cuba(graph)
    assert sum(isinstance(n, nir.CubaLIF) for n in cuba.nodes.values()) == 2
    act, _ = random_activity(analyze(graph), T=5, rate=0.3)
    lif_est, cuba_est = estimate(graph, act, target), estimate(cuba, act, target)
    assert cuba_est.synops == lif_est.synops > 0
    assert cuba_est.mapping.cores_used == lif_est.mapping.cores_used
    assert cuba_est.energy_j == lif_est.energy_j and cuba_est.latency_per_inference_s == lif_est.latency_per_inference_s
    assert analyze(cuba).populations[[k for k, n in cuba.nodes.items() if isinstance(n, nir.CubaLIF)][0]].spiking


def test_the_placement_kept_for_a_spec_follows_its_contents():
    """The placement is kept per spec contents: the same spec loaded again reuses it, one changed in place (its
    constants are a plain dict) is placed anew."""
    import dataclasses

    import nir

    from hardware_models import ActivityProfile, analyze, estimate, load_spec

    w = np.ones((300, 40))
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([40])), "fc": nir.Linear(weight=w),
                                "lif": nir.LIF(tau=np.full(300, 0.01), r=np.ones(300), v_leak=np.zeros(300),
                                               v_threshold=np.ones(300)),
                                "output": nir.Output(output_type=np.array([300]))},
                         edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")])
    facts = analyze(graph)
    act = ActivityProfile(time_steps=2, dt_s=1e-3, samples=1, spikes_per_step={"lif": [3.0, 1.0]},
                          input_events_per_step=[5.0, 2.0])
    spec = load_spec("loihi")
    before = estimate(facts, act, spec).mapping.cores_used
    assert estimate(facts, act, "loihi").mapping.cores_used == before
    assert sum(k[0] == "digital placement" for k in facts._cache if isinstance(k, tuple)) == 1  # one entry
    c = spec.constants["capacity.neurons_per_core"]
    spec.constants["capacity.neurons_per_core"] = dataclasses.replace(c, value=50, si=50.0)
    assert estimate(facts, act, spec).mapping.cores_used == estimate(analyze(graph), act, spec).mapping.cores_used
    assert estimate(facts, act, spec).mapping.cores_used > before


def test_routing_over_several_chips_is_said_to_be_rough(tmp_path):
    # Loihi with 2 cores per chip and 8 neurons per core: a 8-16-16 MLP takes 4 cores, 2 chips
    text = (SPEC_DIR / "loihi.toml").read_text().replace('name = "loihi"', 'name = "tiny_loihi"')
    text = text.replace('cores_per_chip = { value = 128,', 'cores_per_chip = { value = 2,')
    text = text.replace('neurons_per_core = { value = 1024,', 'neurons_per_core = { value = 8,')
    (tmp_path / "tiny_loihi.toml").write_text(text)
    facts = analyze(mlp(8, 16, 16))
    act, _ = random_activity(facts, T=3)
    two = estimate(facts, act, str(tmp_path / "tiny_loihi.toml"), chips=2)
    assert two.mapping.cores_used == 4 and two.fits
    assert any(n.startswith("routing over 2 chips: the cores past the first chip continue its 2-wide mesh")
               for n in two.notes)
    one = estimate(facts, act, "loihi")  # one chip: no such note
    assert one.mapping.cores_used == 2 and not any(n.startswith("routing over") for n in one.notes)

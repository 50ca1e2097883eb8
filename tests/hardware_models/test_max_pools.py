"""A max pool on the digital chips: routed, counted and mapped one way (hardware_models/digital.py, "Max pools").

The network, by hand: Input(1, 4, 4) -> 1x1 conv (weight 1) -> lif1 (1, 4, 4) -> pool 2x2 -> flatten -> Linear 4 -> 3
(all ones) -> lif2 (3). In its one step lif1 fires 6 spikes: 3 in the top-left window, 1 in the top-right, none in
the bottom-left, 2 in the bottom-right; the max pool passes 3 events (one per window with a spike), a sum pool 6."""

from __future__ import annotations

import nir
import numpy as np
import pytest

from hardware_models import ActivityProfile, analyze, estimate, load_spec
from hardware_models.digital import map_network
from hw_helpers import conv, lif

LIF1 = np.array([[1, 1, 0, 1],
                 [1, 0, 0, 0],
                 [0, 0, 1, 0],
                 [0, 0, 0, 1]], dtype=float)  # windows: 3, 1 / 0, 2 spikes
POOLED = np.array([[1, 1], [0, 1]], dtype=float)  # the max pool's events


def pooled_net() -> nir.NIRGraph:
    nodes = {
        "input": nir.Input(input_type=np.array([1, 4, 4])),
        "conv": conv(1, 1, 1),
        "lif1": lif((1, 4, 4)),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array([1, 2, 2])}, start_dim=0, end_dim=-1),
        "fc": nir.Linear(weight=np.ones((3, 4))),
        "lif2": lif(3),
        "output": nir.Output(output_type=np.array([3])),
    }
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])))


def activity(max_pool: bool) -> ActivityProfile:
    """One step, one sample: 5 input events, lif1's 6 spikes, lif2's 2, and (``max_pool``) the pool's 3 events."""
    trains = {"input": np.ones((1, 1, 1, 4, 4)) * (np.arange(16).reshape(4, 4) < 5),
              "lif1": LIF1[None, None, None], "lif2": np.array([[[1.0, 0.0, 1.0]]])}
    if max_pool:
        trains["pool"] = POOLED[None, None, None]
    return ActivityProfile.from_spike_trains(trains, dt_s=1e-3, input_name=None)


@pytest.mark.parametrize("target", ["loihi", "truenorth", "spinnaker"])
def test_a_max_pool_on_a_core_chip_is_a_layer_of_pooling_neurons(target):
    # lif1's 6 spikes reach the 4 pooling neurons (6 synaptic events, 6 messages: each spike to its window's one
    # neuron); the pool's 3 events travel on and each reaches the 3 lif2 neurons (9 synaptic events). Before, routing
    # sent lif1's 6 spikes on to lif2's core while the synaptic events counted the pool's 3 (9): two different pools.
    est = estimate(analyze(pooled_net()), activity(max_pool=True), target)
    layers = est.per_layer
    assert layers["pool"]["neurons"] == 4 and layers["pool"]["spikes"] == 3
    assert layers["pool"]["synops_in"] == 6 and layers["lif1"]["messages_out"] == 6
    assert layers["pool"]["messages_out"] == 3 and layers["lif2"]["synops_in"] == 9
    assert est.synops == 5 + 6 + 9  # input -> conv 1x1: one each
    assert "pool" in est.mapping.layers and est.mapping.layers["pool"].cores >= 1
    assert any("max pool(s) 'pool': mapped as 4 pooling neurons" in n for n in est.notes)


def test_pooling_neurons_pay_neuron_updates_on_loihi():
    # Loihi: 8.4 ns / 81 pJ for a neuron that fires, 52 pJ idle: the pool's 4 compartments are 3 active, 1 idle
    # (with lif1's 16 (6 active) and lif2's 3 (2 active)): active 11 x 81 pJ, idle (4 + 16 + 3 - 11) x 52 pJ
    est = estimate(analyze(pooled_net()), activity(max_pool=True), "loihi")
    assert est.energy_j["neuron_active"] == pytest.approx(11 * 81e-12)
    assert est.energy_j["neuron_idle"] == pytest.approx(12 * 52e-12)


def test_a_pooling_neuron_is_updated_only_when_it_fires_on_sanafe():
    # SANA-FE charges an update where a neuron has input or a nonzero potential; a pooling neuron resets to zero,
    # so it is updated exactly in the steps it fires: its 3 spikes, not its 4 compartment-steps
    est = estimate(analyze(pooled_net()), activity(max_pool=True), "loihi_sanafe")
    note = next(n for n in est.notes if n.startswith("neuron updates:"))
    assert "layers 'lif1', 'lif2' without updates_per_step" in note  # the pool's are known: not named


def test_a_sum_pool_stays_folded_into_the_next_layer():
    # no measured events: a sum pool, folded into the Linear's connectivity (6 spikes x 3 = 18 synaptic events)
    est = estimate(analyze(pooled_net()), activity(max_pool=False), "loihi")
    assert "pool" not in est.per_layer and "pool" not in est.mapping.layers
    assert est.per_layer["lif2"]["synops_in"] == 18 and est.per_layer["lif1"]["messages_out"] == 6
    assert not any("max pool" in n for n in est.notes)


def test_speck_sums_a_max_pool_and_says_so():
    # a DYNAP-CNN core sum-pools the events it sends: all 6 of lif1's spikes reach lif2 (18 synaptic events, not the
    # max pool's 9), the layers stay as mapped, and a note says the chip cannot max-pool
    est = estimate(analyze(pooled_net()), activity(max_pool=True), "speck")
    assert est.per_layer["lif2"]["synops_in"] == 18 and "pool" not in est.per_layer
    assert est.synops == 5 + 18
    note = next(n for n in est.notes if n.startswith("max pool(s) 'pool'"))
    assert "speck has no max pooling" in note and "'pool': 6 events per inference instead of the max pool's 3" in note
    assert "model.pool_type=sum" in note


# ------------------------------------------------------------------ map_network without an activity: tagged max pools
def tagged_net() -> nir.NIRGraph:
    """pooled_net with its pool tagged as neurosim's export tags a MaxPool2d written as SumPool2d."""
    g = pooled_net()
    g.nodes["pool"].metadata = {"neurosim": {"layer": "MaxPool2d"}}
    return g


@pytest.mark.parametrize("target", ["loihi", "truenorth", "spinnaker", "speck"])
def test_map_network_without_activity_maps_a_tagged_max_pool_as_the_estimate_does(target):
    # the graph alone says the pool is a max pool (neurosim's tag): the mapping without an activity has the pooling
    # neurons (core chips) or the folded sum pool (Speck) the estimate costs, on the same cores; before, it folded
    # every pool, one layer fewer than the estimate on the core chips
    facts = analyze(tagged_net())
    alone = map_network(facts, load_spec(target))
    costed = estimate(facts, activity(max_pool=True), target).mapping
    assert alone.cores_used == costed.cores_used and alone.layers == costed.layers
    assert ("pool" in alone.layers) == (target != "speck")
    if target != "speck":
        assert any("max pool(s) 'pool' (tagged MaxPool2d in the graph): mapped as 4 pooling neurons" in n
                   for n in alone.notes)
    untagged = map_network(analyze(pooled_net()), load_spec(target))  # nothing says it is a max pool: folded
    assert "pool" not in untagged.layers
    assert map_network(facts, load_spec(target), activity=activity(max_pool=True)) == costed


def test_a_tagged_max_pool_without_measured_events_is_costed_as_a_sum_pool_and_says_so():
    est = estimate(analyze(tagged_net()), activity(max_pool=False), "loihi")
    assert "pool" not in est.mapping.layers and est.per_layer["lif2"]["synops_in"] == 18
    note = next(n for n in est.notes if n.startswith("pool(s) 'pool' are max pools in the graph"))
    assert "costed as sum pools" in note and "map_network without an activity maps them as max pools" in note
    assert not any("are max pools in the graph" in n for n in estimate(analyze(tagged_net()), activity(max_pool=True),
                                                                       "loihi").notes)

"""The neuron updates an activity profile counts per LIF layer (nonzero input or membrane entering a step: SANA-FE's
condition for charging a soma update), and loihi_sanafe's energy from them, by hand on a 2 -> 3 -> 2 network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hardware_models import ActivityProfile, estimate
from neurosim.activity import activity_profile
from neurosim.estimation import estimate_model
from neurosim.nn import LIF, Linear, Sequential
from si_approx import approx_si


def _net(w1, w2, **lif) -> Sequential:
    """Input(2) -> Linear (no bias) -> LIF(3) -> Linear (no bias) -> LIF(2); β = 0.5, v_th = 1, zero reset."""
    opts = dict(beta=0.5, v_th=1.0, reset="zero") | lif
    net = Sequential(Linear(2, 3, bias=False), LIF(**opts), Linear(3, 2, bias=False), LIF(**opts))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor(w1))
        net[2].weight.copy_(torch.tensor(w2))
    return net


W1 = [[1.0, 0.0],   # n0: fires on every event of input a
      [0.5, 0.0],   # n1: half a threshold per event of a: never fires, its membrane stays nonzero (it leaks by halves)
      [0.0, 1.0]]   # n2: listens to input b, which stays silent: never updated
W2 = [[1.0, 0.0, 0.0],   # m0: fires on every spike of n0
      [0.0, 1.0, 0.0]]   # m1: listens to n1, which never fires: never updated
# input a has events at steps 1 and 3, b none (T = 4, one sample)
X = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [1.0, 0.0]]).unsqueeze(1)  # [T, B, 2]
# Layer 1, per step (x = input current, v = membrane entering the step; updated when either is nonzero):
#   t0: x = (0, 0, 0), v = (0, 0, 0)          -> none updated
#   t1: x = (1, .5, 0), v = 0                 -> n0 (h = 1: fires, reset to 0), n1 (h = .5)          2 updated, 1 spike
#   t2: x = 0, v = (0, .5, 0)                 -> n1 alone (its potential: h = .25)                   1 updated
#   t3: x = (1, .5, 0), v = (0, .25, 0)       -> n0 (fires), n1 (h = .625)                          2 updated, 1 spike
# Layer 2: m0 gets n0's spikes at t1 and t3 (x = 1: fires, reset to 0); m1 never has input nor potential.
UPDATES_1, SPIKES_1 = [0, 2, 1, 2], [0, 1, 0, 1]
UPDATES_2, SPIKES_2 = [0, 1, 0, 1], [0, 1, 0, 1]


def test_activity_profile_counts_the_neurons_with_input_or_potential_per_step():
    prof = activity_profile(_net(W1, W2), X, dt_s=1e-3)
    assert prof.spikes_per_step["1"].tolist() == SPIKES_1 and prof.spikes_per_step["3"].tolist() == SPIKES_2
    assert prof.updates_per_step["1"].tolist() == UPDATES_1
    assert prof.updates_per_step["3"].tolist() == UPDATES_2
    assert sorted(prof.updates_per_step) == ["1", "3"]  # LIF layers only (not the input)


def test_updates_follow_the_reset_timing():
    # One LIF(2) behind weights (1.5, .5) from one input with an event at step 0, zero reset, β = .5.
    # immediate: n0 fires at t0 and is reset there (rest from t1); n1 keeps .5, .25, .125: updated in all 4 steps.
    # delayed (snnTorch): n0's reset waits a step, so it enters t1 at 1.5 (updated, then 0).
    x = torch.tensor([1.0, 0, 0, 0]).reshape(4, 1, 1)
    for timing, expected in (("immediate", [2, 1, 1, 1]), ("delayed", [2, 2, 1, 1])):
        net = Sequential(Linear(1, 2, bias=False), LIF(beta=0.5, v_th=1.0, reset="zero", reset_timing=timing))
        with torch.no_grad():
            net[0].weight.copy_(torch.tensor([[1.5], [0.5]]))
        prof = activity_profile(net, x, dt_s=1e-3)
        assert prof.spikes_per_step["1"].tolist() == [1, 0, 0, 0], timing
        assert prof.updates_per_step["1"].tolist() == expected, timing


def test_updates_carry_the_membrane_across_calls_of_a_few_steps():
    """A model that calls its LIF one step at a time (the state carried between calls) counts the updates of one that
    calls it once: the membrane entering each call's first step is the carried state's."""
    from torch import nn

    class StepByStep(nn.Module):
        def __init__(self, per_step: int):
            super().__init__()
            self.fc, self.lif, self.per_step = nn.Linear(20, 8, bias=False), LIF(v_th=0.6), per_step

        def forward(self, x_seq, state=None):
            outs = []
            for t in range(0, x_seq.shape[0], self.per_step):
                s, state = self.lif(self.fc(x_seq[t:t + self.per_step]), state=state)  # (state by keyword)
                outs.append(s)
            return torch.cat(outs), state

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(3)
    x = (torch.rand((12, 5, 20), generator=g) < 0.02).float()  # sparse: neurons rest between events
    stepped, whole = StepByStep(1), StepByStep(12)
    whole.load_state_dict(stepped.state_dict())
    a = activity_profile(stepped, x, dt_s=1e-3)
    b = activity_profile(whole, x, dt_s=1e-3)
    np.testing.assert_array_equal(a.updates_per_step["lif"], b.updates_per_step["lif"])
    assert 0 < a.updates_per_step["lif"].sum() < 12 * 8  # some neuron-steps at rest, some not: a real comparison


def test_loihi_sanafe_energy_of_the_2_3_2_net_by_hand_from_sanafes_per_event_figures():
    # SANA-FE arch/loihi.yaml: 51.2 pJ access of every neuron in every step, +21.6 pJ update for a neuron with input or
    # a nonzero potential (src/models.cpp lines 520-525), +69.3 pJ per spike fired, 35.5 pJ per synaptic event,
    # 111 pJ per message (one per destination core), 3.0 pJ per east-west hop.
    report = estimate_model(_net(W1, W2), (2,), X, ["loihi_sanafe"], dt_s=1e-3)
    est = report.estimates["loihi_sanafe"]
    e = est.energy_j
    neuron_steps, spikes, updated = 5 * 4, 2 + 2, 5 + 2  # 3 + 2 neurons, T = 4; updates from the comments above
    # synaptic events: input a's 2 events reach n0 and n1 (2 nonzero synapses each); n0's 2 spikes reach m0 (1 each)
    assert est.synops == 2 * 2 + 2 * 1
    assert e["synaptic"] == approx_si(6 * 35.5e-12)
    assert e["neuron_active"] == approx_si(spikes * (51.2 + 21.6 + 69.3) * 1e-12)  # 568.4 pJ
    # 16 neuron-steps without a spike pay the access; 3 of them (n1's) the update as well: 819.2 + 64.8 pJ
    assert e["neuron_idle"] == approx_si(((neuron_steps - spikes) * 51.2 + (updated - spikes) * 21.6) * 1e-12)
    # messages: 2 input events into layer 1's core; n0's 2 spikes to layer 2's core, one east hop away
    assert est.mapping.cores_used == 2
    assert e["routing"] == approx_si((4 * 111.0 + 2 * 3.0) * 1e-12)
    assert est.total_energy_j == approx_si((213.0 + 568.4 + 884.0 + 450.0) * 1e-12)  # 2115.4 pJ
    assert any("only in the 7 of 20 compartment-steps" in n for n in est.notes)
    assert not any("upper bound" in n for n in est.notes if n.startswith("neuron updates"))

    # The same activity without updates_per_step (an activity.json from before they were recorded): every neuron is
    # charged the update in every step, the old upper bound, and the note says so and by how much at most.
    act = report.activity
    old = ActivityProfile(time_steps=act.time_steps, dt_s=act.dt_s, samples=act.samples,
                          spikes_per_step=act.spikes_per_step, spike_counts=act.spike_counts,
                          input_events_per_step=act.input_events_per_step)
    bound = estimate(report.graph, old, "loihi_sanafe")
    assert bound.energy_j["neuron_idle"] == approx_si((neuron_steps - spikes) * (51.2 + 21.6) * 1e-12)  # 1164.8 pJ
    assert bound.total_energy_j - est.total_energy_j == approx_si((neuron_steps - updated) * 21.6e-12)
    assert any("without updates_per_step" in n and "upper bound" in n and f"{16 * 21.6e-12:.3g} J" in n
               for n in bound.notes)


def test_loihi_sanafe_names_the_layers_without_updates_and_rejects_impossible_counts():
    report = estimate_model(_net(W1, W2), (2,), X, ["loihi_sanafe"], dt_s=1e-3)
    act = report.activity

    def with_updates(updates):
        return ActivityProfile(time_steps=act.time_steps, dt_s=act.dt_s, samples=act.samples,
                               spikes_per_step=act.spikes_per_step, spike_counts=act.spike_counts,
                               input_events_per_step=act.input_events_per_step, updates_per_step=updates)

    part = estimate(report.graph, with_updates({"1": act.updates_per_step["1"]}), "loihi_sanafe")
    # layer '3' (2 neurons, 2 spikes in 4 steps) charged the update in all 8 of its neuron-steps: 6 x 21.6 pJ more
    assert part.total_energy_j - report.estimates["loihi_sanafe"].total_energy_j == approx_si(6 * 21.6e-12)
    assert any("layers '3' without updates_per_step" in n and f"{6 * 21.6e-12:.3g} J" in n for n in part.notes)
    with pytest.raises(ValueError, match=r"'1' has 4 neuron updates at step 1 but the node has only 3 neurons"):
        estimate(report.graph, with_updates({"1": np.array([0, 4.0, 1, 2])}), "loihi_sanafe")
    with pytest.raises(ValueError, match=r"updates_per_step for \['input'\], which are not neuron populations"):
        estimate(report.graph, with_updates({"input": np.array([0, 2.0, 0, 2])}), "loihi_sanafe")
    with pytest.raises(ValueError, match=r"'1' has 4 neuron updates at step 1"):  # every target checks the activity
        estimate(report.graph, with_updates({"1": np.array([0, 4.0, 1, 2])}), "rram_neurosim")


def test_an_li_readout_is_counted_and_charged_by_the_same_condition():
    """An LI readout never fires but SANA-FE updates it whenever it has input or a nonzero potential: behind layer 1
    (W1 above), readout r0 gets n0's spikes at t1 and t3 and keeps a leaking potential at t2; r1 listens to n2, which
    never fires (W = [[1, 0, 0], [0, 0, 1]])."""
    from neurosim.nn import LI

    net = Sequential(Linear(2, 3, bias=False), LIF(beta=0.5, v_th=1.0, reset="zero"), Linear(3, 2, bias=False),
                     LI(0.9))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor(W1))
        net[2].weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))
    result = estimate_model(net, (2,), X, ["loihi_sanafe"], dt_s=1e-3)
    assert result.activity.updates_per_step["1"].tolist() == UPDATES_1
    assert result.activity.updates_per_step["3"].tolist() == [0, 1, 1, 1]
    assert "3" not in result.activity.spikes_per_step  # counted, not recorded as spikes
    note = next(n for n in result.estimates["loihi_sanafe"].notes if n.startswith("neuron updates"))
    assert "only in the 8 of 20 compartment-steps" in note  # 5 of layer 1's 12, 3 of the readout's 8


def test_the_count_follows_the_membrane_the_layer_computed_on_its_backend():
    """Membranes aimed at the threshold: the fused CPU scan rounds β·v + x once, torch's ops twice, so they disagree
    on which neurons fire (and so whose potential a zero reset leaves at 0); the count must follow the layer's own
    membrane. The layer is called with a bare tensor as its starting state, which LIF takes too."""
    from neurosim.functional import LIFState

    torch.manual_seed(1)
    n = 20000
    lif = LIF(beta=0.9, v_th=1.0, reset="zero")  # backend auto: the fused scan on CPU
    v0 = torch.rand(1, n) * 1.1
    x = torch.cat([1.0 - torch.tensor(0.9) * v0, torch.zeros(1, n)]).reshape(2, 1, n)  # h = 1 at t0, up to rounding

    class StartsCharged(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lif = lif

        def forward(self, x_seq):
            return self.lif(x_seq, v0)

    prof = activity_profile(StartsCharged(), x, dt_s=1e-3)
    _, after_t0 = lif(x[:1], LIFState(v0))
    still_charged = (after_t0.v != 0).sum().item()  # no input at t1: updated = a nonzero potential entering it
    assert 0 < still_charged < n  # (the rounding splits them: else this checks nothing)
    assert prof.updates_per_step["lif"].tolist() == [n, still_charged]

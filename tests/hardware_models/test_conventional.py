"""Conventional 45 nm baselines: dense ANN, naive SNN formula and SNN with memory terms, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from hardware_models import ActivityProfile, analyze, estimate, load_spec
from hardware_models.conventional import dense_ann_energy, naive_snn_energy, snn_with_memory_energy
from hw_helpers import mlp, small_cnn
from si_approx import approx_si

PJ = 1e-12


def activity(T=2):
    return ActivityProfile(time_steps=T, dt_s=1e-3, samples=1,
                           spikes_per_step={"lif": np.array([2.0, 1.0]), "lif_1": np.array([0.0, 1.0])},
                           input_events_per_step=np.array([3.0, 1.0]))


def test_dense_ann_by_hand():
    spec = load_spec("conventional_45nm")
    e = dense_ann_energy(analyze(mlp(4, 3)), spec)
    assert e["mac"] == approx_si(12 * 4.6 * PJ)
    # per MAC: one weight + one input read, 2 fp32 values per 64-bit word, both in the 8 KB tier (10 pJ);
    # outputs: 3 values written, 10 pJ per word
    assert e["sram"] == approx_si(12 / 2 * (10 + 10) * PJ + 3 / 2 * 10 * PJ)
    assert e["dram"] == 0 and e["pool_add"] == 0
    int8 = dense_ann_energy(analyze(mlp(4, 3)), spec, precision="int8")
    assert int8["mac"] == approx_si(12 * 0.23 * PJ)


def test_weights_beyond_the_largest_sram_stream_from_dram():
    spec = load_spec("conventional_45nm")
    facts = analyze(mlp(500, 600))  # 300,000 fp32 weights = 9.6 Mbit > 1 MiB
    assert dense_ann_energy(facts, spec)["dram"] == approx_si(300_000 * 32 / 64 * 1.3e-9)
    assert dense_ann_energy(facts, spec, precision="int8")["dram"] == 0  # 2.4 Mbit fits


def test_pool_adds_are_counted():
    spec = load_spec("conventional_45nm")
    e = dense_ann_energy(analyze(small_cnn(c1=2, c2=2, n_out=2, size=8)), spec)
    assert e["pool_add"] == approx_si(2 * 4 * 4 * 4 * 0.9 * PJ)  # 2 channels x 4x4 windows x 4 adds


def test_naive_snn_formula_by_hand():
    spec = load_spec("conventional_45nm")
    facts = analyze(mlp(4, 3, 2))
    e = naive_snn_energy(facts, activity(), spec)
    assert e["first_layer_mac"] == approx_si(12 * 2 * 4.6 * PJ)  # first-layer MACs x T
    assert e["synops_ac"] == approx_si(3 * 2 * 0.9 * PJ)  # 3 hidden spikes x fan-out 2


def test_snn_with_memory_by_hand():
    spec = load_spec("conventional_45nm")
    ram = lambda bits: (1.09e-5 * bits + 13.2) * PJ  # noqa: E731
    e = snn_with_memory_energy(analyze(mlp(4, 3, 2)), activity(), spec)
    assert e["first_layer"] == approx_si(12 * 2 * (4.6 * PJ + ram(12 * 32)))
    assert e["synops"] == approx_si(6 * (0.9 * PJ + ram(6 * 32)))
    assert e["neuron_updates"] == approx_si(3 * 2 * (0.9 * PJ + 2 * ram(3 * 32)) + 2 * 2 * (0.9 * PJ + 2 * ram(2 * 32)))


def test_conventional_target_estimate():
    est = estimate(mlp(4, 3, 2), activity(), "conventional_45nm")
    assert est.kind == "conventional" and est.mapping is None and est.latency_per_inference_s is None
    assert est.total_energy_j == approx_si(sum(est.energy_j.values()))
    assert est.baselines_j["dense_ann_conventional_45nm"] == approx_si(est.total_energy_j)
    assert est.baselines_j["naive_snn_conventional_45nm"] == approx_si((12 * 2 * 4.6 + 6 * 0.9) * PJ)
    with pytest.raises(ValueError, match="precision 'fp16' is not one of"):
        estimate(mlp(4, 3, 2), activity(), "conventional_45nm", precision="fp16")

"""Package surface: estimate() inputs and outputs, isolation from torch/neurosim, docstring examples."""

from __future__ import annotations

import doctest
import importlib
import json
import subprocess
import sys
import textwrap

import pytest

import hardware_models
from hardware_models import (ActivityProfile, GraphError, SpecError, analyze, estimate, format_estimates,
                             list_targets, load_spec)
from hw_helpers import mlp, random_activity, small_cnn
from si_approx import approx_si


def test_importing_hardware_models_does_not_import_torch_or_neurosim():
    code = textwrap.dedent("""
        import sys
        import numpy as np
        import hardware_models as hm
        import nir
        g = nir.NIRGraph.from_list(nir.Linear(weight=np.ones((2, 3))),
            nir.LIF(tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2)))
        act = hm.ActivityProfile(time_steps=1, dt_s=1e-3, samples=1, spikes_per_step={"lif": np.ones(1)})
        for t in hm.list_targets():
            hm.estimate(g, act, t)
        bad = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "neurosim"))
        print("LOADED", bad)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "LOADED []" in out.stdout, out.stdout


@pytest.mark.parametrize("module", ["activity", "graph", "specs", ""])
def test_docstring_examples_run(module):
    mod = importlib.import_module(f"hardware_models.{module}" if module else "hardware_models")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_estimate_accepts_facts_spec_objects_and_paths():
    g = small_cnn(c1=2, c2=4, n_out=3, size=12)
    facts = analyze(g)
    act, _ = random_activity(facts, T=4)
    by_name = estimate(g, act, "loihi")
    by_facts = estimate(facts, act, load_spec("loihi"))
    by_path = estimate(facts, act, hardware_models.specs.SPEC_DIR / "loihi.toml")
    assert by_name.total_energy_j == approx_si(by_facts.total_energy_j) == approx_si(by_path.total_energy_j)
    assert by_name.mapping.cores_used == by_facts.mapping.cores_used


def test_estimate_to_dict_is_json_and_complete():
    facts = analyze(small_cnn(c1=2, c2=4, n_out=3, size=12))
    act, _ = random_activity(facts, T=4)
    for target in list_targets():
        d = json.loads(json.dumps(estimate(facts, act, target).to_dict()))
        assert d["target"] == target and d["total_energy_j"] == approx_si(sum(d["energy_j"].values()))
        assert d["sources"] and d["notes"]
        if d["kind"] == "digital":
            assert d["mapping"]["cores_used"] >= 1 and d["latency_per_inference_s"] > 0


def test_format_estimates_has_a_row_per_target():
    facts = analyze(mlp(8, 4))
    act = ActivityProfile(time_steps=2, dt_s=1e-3, samples=1, spikes_per_step={"lif": [1.0, 1.0]})
    table = format_estimates([estimate(facts, act, t) for t in list_targets()])
    lines = table.splitlines()
    assert len(lines) == 2 + len(list_targets())
    assert lines[0].split()[0] == "target" and all(any(l.startswith(t) for l in lines) for t in list_targets())


@pytest.mark.parametrize("x, text", [(9.996e-4, "1 mJ"), (999.4e-6, "999 µJ"), (2.5e-12, "2.5 pJ"), (0.0, "0 J"),
                                     (1234.0, "1230 J"), (-5e-13, "-500 fJ")])
def test_engineering_units_round_before_choosing_the_prefix(x, text):
    from hardware_models.results import _eng
    assert _eng(x, "J") == text


def test_estimate_errors():
    facts = analyze(mlp(8, 4))
    act = ActivityProfile(time_steps=1, dt_s=1e-3, samples=1, spikes_per_step={"lif": [1.0]})
    with pytest.raises(SpecError, match="unknown target 'loihi9'"):
        estimate(facts, act, "loihi9")
    with pytest.raises(TypeError, match="activity must be a hardware_models.ActivityProfile"):
        estimate(facts, {"lif": [1.0]}, "loihi")
    with pytest.raises(GraphError, match="expected a nir.NIRGraph"):
        estimate("model.nir", act, "loihi")
    with pytest.raises(ValueError, match="chips must be a positive integer"):
        estimate(facts, act, "loihi", chips=0)
    with pytest.raises(TypeError, match=r"unknown estimate option\(s\) \['chip'\]"):
        estimate(facts, act, "loihi", chip=2)


def test_options_of_other_target_kinds_are_ignored_with_a_note():
    facts = analyze(mlp(8, 4))
    act = ActivityProfile(time_steps=1, dt_s=1e-3, samples=1, spikes_per_step={"lif": [1.0]})
    est = estimate(facts, act, "conventional_45nm", weight_bits=4, precision="int8")
    assert any("['weight_bits'] do not apply to conventional targets" in n for n in est.notes)
    assert est.energy_j["mac"] == approx_si(32 * 0.23e-12)
    four = estimate(facts, act, "loihi", weight_bits=4, precision="int8")
    assert any("['precision'] do not apply" in n for n in four.notes)


def test_format_estimates_says_whether_more_chips_would_fit_the_model():
    # 300 inputs per neuron: over a TrueNorth core's 256 axons, which no number of chips changes
    wide = format_estimates([estimate(analyze(mlp(300, 4)), ActivityProfile(
        time_steps=2, dt_s=1e-3, samples=1, spikes_per_step={"lif": [1.0, 1.0]}), "truenorth")])
    assert wide.splitlines()[-1].endswith("no (a core limit)")
    fits = format_estimates([estimate(analyze(mlp(8, 4)), ActivityProfile(
        time_steps=2, dt_s=1e-3, samples=1, spikes_per_step={"lif": [1.0, 1.0]}), "truenorth")])
    assert fits.splitlines()[-1].endswith("yes")

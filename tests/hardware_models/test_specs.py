"""Target specs: every shipped file loads, every constant has a unit and a cited source, and broken files
are rejected with a message naming the file and the key."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from hardware_models.specs import SPEC_DIR, TERMS, SpecError, list_targets, load_spec, spec_from_dict
from si_approx import approx_si

SHIPPED = ["conventional_45nm", "loihi", "loihi_sanafe", "rram_lsm40nm", "rram_neurosim", "speck", "spinnaker", "spinnaker2", "truenorth"]


def test_list_targets_names_every_shipped_spec():
    assert list_targets() == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_spec_loads_with_units_and_sources(name):
    spec = load_spec(name)
    assert spec.name == name and spec.constants
    for key, c in spec.constants.items():
        assert c.unit and c.source in spec.sources, key
        assert len(c.citation) > 20, f"{name}: {key} cites {c.citation!r}"
        si = c.si if isinstance(c.si, tuple) else (c.si,)
        assert all(math.isfinite(v) and v >= 0 for v in si), key
    if spec.kind == "digital":
        assert set(spec.energy_terms) == set(TERMS)


def test_si_conversion_of_shipped_values():
    loihi = load_spec("loihi")
    assert loihi.si("energy.synaptic_op") == approx_si(23.6e-12)
    assert loihi.si("time.sync") == approx_si(465e-9)
    assert loihi.si("capacity.synaptic_memory_per_core") == 128 * 1024 * 8  # bits
    assert load_spec("spinnaker").si("energy.synaptic_op") == approx_si(13.3e-9)
    assert load_spec("speck").si("power.static") == approx_si(0.42e-3)
    assert load_spec("conventional_45nm").si("energy.mac_fp32") == approx_si(4.6e-12)


def test_truenorth_figure_is_all_in():
    tn = load_spec("truenorth")
    assert tn.term("synaptic") == "modelled"
    assert {tn.term(t) for t in ("neuron_update", "routing", "static")} == {"included:synaptic"}


def test_constants_cite_the_reference_papers():
    cited = {name: " ".join(load_spec(name).citations().values()) for name in SHIPPED}
    assert "Davies" in cited["loihi"] and "SANA-FE" in cited["loihi_sanafe"]
    assert "Merolla" in cited["truenorth"] and "Hoeppner" in cited["spinnaker"]
    assert "sinabs" in cited["speck"] and "Horowitz" in cited["conventional_45nm"]


# ------------------------------------------------------------------ broken files
def write_variant(tmp_path: Path, base: str, edit) -> Path:
    """Copy a shipped spec under a new name, with ``edit(text) -> text`` applied."""
    text = (SPEC_DIR / f"{base}.toml").read_text()
    text = text.replace(f'name = "{base}"', 'name = "broken"')
    path = tmp_path / "broken.toml"
    path.write_text(edit(text))
    return path


@pytest.mark.parametrize("edit, key, match", [
    (lambda t: re.sub(r"synaptic_op = \{ value = 23.6,", "synaptic_op = { value = -23.6,", t), "energy.synaptic_op",
     "negative; energies must be >= 0"),
    (lambda t: t.replace('value = 23.6, unit = "pJ"', 'value = 23.6, unit = "ns"'), "energy.synaptic_op",
     "unit 'ns' is wrong here: this constant is an energy"),
    (lambda t: t.replace('value = 23.6, unit = "pJ", ', "value = 23.6, "), "energy.synaptic_op",
     r"missing field\(s\) \['unit'\]"),
    (lambda t: t.replace('source = "davies2018", note = "per synaptic operation"', 'note = "x"'), "energy.synaptic_op",
     r"missing field\(s\) \['source'\]"),
    (lambda t: t.replace('source = "davies2018", note = "per synaptic operation"', 'source = "nobody"'),
     "energy.synaptic_op", "source 'nobody' is not a key of the \\[sources\\] table"),
    (lambda t: re.sub(r"\nsynaptic_op = \{ value = 23.6[^\n]*", "", t), "energy.synaptic_op", "missing required constant"),
    (lambda t: t.replace("neurons_per_core = { value = 1024", "neurons_per_core = { value = 1024.5"),
     "capacity.neurons_per_core", "whole number"),
    (lambda t: t.replace("cores_per_chip = { value = 128", "cores_per_chip = { value = 0"),  # divided by, once
     "capacity.cores_per_chip", "value 0 is not a usable count; it must be > 0"),
    (lambda t: t.replace("[energy]\n", "[energy]\nsynaptic_opp = { value = 1, unit = \"pJ\", source = \"davies2018\" }\n"),
     "energy.synaptic_opp", "unknown constant: 'synaptic_opp' looks like a typo for 'synaptic_op'; a digital spec's"),
    # typos name the likely intended key (a misspelt field was reported as the right one missing, alone)
    (lambda t: t.replace("neurons_per_core = { value = 1024", "nuerons_per_core = { value = 1024"),
     "capacity.nuerons_per_core", "'nuerons_per_core' looks like a typo for 'neurons_per_core'"),
    (lambda t: t.replace("synaptic_op = { value = 23.6,", "synaptic_op = { vaule = 23.6,"), "energy.synaptic_op",
     r"missing field\(s\) \['value'\] \(unknown field\(s\) \['vaule'\]: 'vaule' looks like a typo for 'value'\)"),
    (lambda t: t.replace('source = "davies2018", note = "per synaptic operation"',
                         'source = "davies2018", nte = "per synaptic operation"'), "energy.synaptic_op",
     r"unknown field\(s\) \['nte'\]: 'nte' looks like a typo for 'note'; allowed"),
    (lambda t: t.replace("[energy]\n", "[energie]\n"), "energie",
     "unknown key for a digital spec: 'energie' looks like a typo for 'energy'"),
    (lambda t: t.replace('static = "not_published"', 'static = "included:static"'), "energy_terms.static",
     "must name another term"),
    (lambda t: t.replace('timing = "step_driven"', 'timing = "sometimes"'), "timing", "is not one of"),
    (lambda t: t.replace('kind = "digital"', 'kind = "quantum"'), "kind", "not a known kind"),
    (lambda t: t.replace('title = ', 'titel = '), "title", "missing required field"),
])
def test_broken_spec_is_rejected_naming_file_and_key(tmp_path, edit, key, match):
    path = write_variant(tmp_path, "loihi", edit)
    with pytest.raises(SpecError, match=match) as info:
        load_spec(path)
    assert str(info.value).startswith(f"broken.toml: {key}:"), str(info.value)


@pytest.mark.parametrize("edit, key, match", [
    # widths the models divide by: 0 bits was accepted and crashed the estimate with ZeroDivisionError
    (lambda t: t.replace("weight_bits_min = { value = 1,", "weight_bits_min = { value = 0,")
     .replace("weight_bits_max = { value = 9,", "weight_bits_max = { value = 0,"),
     "capacity.weight_bits_min", "value 0 is not a usable width; a width in bits must be >= 1"),
    (lambda t: t.replace("weight_bits_max = { value = 9,", "weight_bits_max = { value = 0,"),
     "capacity.weight_bits_max", "value 0 is not a usable width"),
    # a core that cannot hold the smallest synapse (weights of at least 8 bits, 4 bits of memory)
    (lambda t: t.replace("weight_bits_min = { value = 1,", "weight_bits_min = { value = 8,")
     .replace('synaptic_memory_per_core = { value = 128, unit = "KiB"',
              'synaptic_memory_per_core = { value = 4, unit = "bits"'),
     "capacity.synaptic_memory_per_core", r"4 bits cannot hold one synapse: the smallest takes 8 bits"),
    # a chip storing 4-bit weights whose integer model computes with Loihi's 8 (loaded; --fixed-point then simulated
    # finer weights than the estimate mapped)
    (lambda t: t.replace("weight_bits_max = { value = 9,", "weight_bits_max = { value = 4,"),
     "precision.weight_bits", r"8 bits is more than the chip stores \(capacity.weight_bits_max = 4\).*lower "
     r"precision.weight_bits to at most 4, or raise capacity.weight_bits_max"),
])
def test_unusable_widths_and_memories_are_rejected(tmp_path, edit, key, match):
    path = write_variant(tmp_path, "loihi", edit)
    with pytest.raises(SpecError, match=match) as info:
        load_spec(path)
    assert str(info.value).startswith(f"broken.toml: {key}:"), str(info.value)


def test_a_synapse_overhead_of_zero_bits_is_allowed():
    data = spec_data("loihi")
    data["capacity"]["synapse_overhead_bits"] = {"value": 0, "unit": "bits", "source": "davies2018"}
    assert spec_from_dict(data, origin="loihi.toml").si("capacity.synapse_overhead_bits") == 0


@pytest.mark.parametrize("base, edit, key, match", [
    ("rram_neurosim", lambda t: t.replace("cell_bits = { value = 1,", "cell_bits = { value = 0,"), "array.cell_bits",
     "value 0 is not a usable width"),
    ("rram_neurosim", lambda t: t.replace("adc_bits = { value = 5,", "adc_bits = { value = 0,"), "array.adc_bits",
     "value 0 is not a usable width"),
    ("rram_lsm40nm", lambda t: t.replace("weight_bits = { value = 5,", "weight_bits = { value = 0,"),
     "array.weight_bits", "value 0 is not a usable width"),
    ("rram_neurosim", lambda t: t.replace("psum_bits = { value = 16,", "psum_bits = { value = 0,"), "array.psum_bits",
     "value 0 is not a usable width"),
    # the on state must conduct more than the off state (was priced silently; only --nonideal refused it)
    ("rram_neurosim", lambda t: t.replace('r_on = { value = 100, unit = "kohm"', 'r_on = { value = 100, unit = "Mohm"'),
     "device.r_on", r"100 Mohm must be below device.r_off \(1.7 Mohm\).*on/off ratio r_off / r_on > 1"),
    ("rram_neurosim", lambda t: t.replace('r_on = { value = 100, unit = "kohm"', 'r_on = { value = 1.7, unit = "Mohm"'),
     "device.r_on", "must be below device.r_off"),
    ("rram_neurosim", lambda t: t.replace('r_on = { value = 100, unit = "kohm"', 'r_on = { value = 0, unit = "kohm"'),
     "device.r_on", "must be > 0"),
    # arrays the crossbar model refuses: they loaded, and the estimate then failed naming neither file nor key
    ("rram_neurosim", lambda t: t.replace("weight_bits = { value = 8,", "weight_bits = { value = 1,"),
     "array.weight_bits", r"1 bits: a signed weight needs 2..16"),
    ("rram_neurosim", lambda t: t.replace("weight_bits = { value = 8,", "weight_bits = { value = 17,"),
     "array.weight_bits", r"17 bits: a signed weight needs 2..16"),
    ("rram_neurosim", lambda t: t.replace("columns_per_adc = { value = 8,", "columns_per_adc = { value = 200,"),
     "array.columns_per_adc", r"200 is more than the tile's 128 columns \(array.columns\).*lower it or widen"),
    # 8-bit weights on 1-bit cells: 7 cells per side, 14 columns per weight; 8 columns hold none
    ("rram_neurosim", lambda t: t.replace("columns = { value = 128,", "columns = { value = 8,"),
     "array.columns", r"8 columns cannot hold one weight: 8-bit weights on 1-bit cells take 7 cell\(s\) per side"),
])
def test_broken_crossbar_spec_is_rejected_naming_the_key(tmp_path, base, edit, key, match):
    text = (SPEC_DIR / f"{base}.toml").read_text()
    assert edit(text) != text  # the edit applies to the shipped file
    path = write_variant(tmp_path, base, edit)
    with pytest.raises(SpecError, match=match) as info:
        load_spec(path)
    assert str(info.value).startswith(f"broken.toml: {key}:"), str(info.value)


def test_missing_energy_term_is_rejected(tmp_path):
    path = write_variant(tmp_path, "truenorth", lambda t: t.replace('routing = "included:synaptic"\n', ""))
    with pytest.raises(SpecError, match=r"^broken.toml: energy_terms.routing: missing"):
        load_spec(path)


def test_speck_memory_lists_must_match_the_core_count(tmp_path):
    path = write_variant(tmp_path, "speck", lambda t: t.replace("value = [16384, 16384, 16384, 32768", "value = [16384, 16384, 32768"))
    with pytest.raises(SpecError, match="capacity.kernel_memory_per_core: lists 8 cores but capacity.cores_per_chip is 9"):
        load_spec(path)


@pytest.mark.parametrize("edit, key, match", [
    (lambda t: t.replace("value = [0.6, 1.0, 1.4, 1.8]", "value = [0.6, 1.0, 1.4]"), "time.sync_table",
     "lists 3 times but capacity.sync_table_tiles lists 4 tile counts"),
    (lambda t: t.replace("value = [1, 2, 4, 29]", "value = [1, 4, 2, 29]"), "capacity.sync_table_tiles",
     "must be strictly increasing"),
    (lambda t: t.replace("[time]\n", '[time]\nsync = { value = 1.8, unit = "us", source = "sanafe" }\n'),
     "time.sync_table", "give either time.sync"),
    (lambda t: re.sub(r"\ncores_per_tile = [^\n]*", "", t), "capacity.cores_per_tile", "missing required constant"),
])
def test_sync_table_must_pair_up_with_increasing_tile_counts(tmp_path, edit, key, match):
    assert load_spec("loihi_sanafe").si("time.sync_table") == approx_si((0.6e-6, 1.0e-6, 1.4e-6, 1.8e-6))
    path = write_variant(tmp_path, "loihi_sanafe", edit)
    with pytest.raises(SpecError, match=match) as info:
        load_spec(path)
    assert str(info.value).startswith(f"broken.toml: {key}:"), str(info.value)


def test_name_must_match_file_and_unknown_target(tmp_path):
    path = tmp_path / "other.toml"
    path.write_text((SPEC_DIR / "loihi.toml").read_text())
    with pytest.raises(SpecError, match="other.toml: name: is 'loihi' but the file is named 'other.toml'; they must "
                                        r".*set name = \"other\", or rename the file to 'loihi.toml'"):
        load_spec(path)
    with pytest.raises(SpecError, match=r"unknown target 'loihi3' \(did you mean 'loihi'\?\); shipped targets"):
        load_spec("loihi3")
    with pytest.raises(SpecError, match=r"unknown target 'SpiNNaker' \(did you mean 'spinnaker'\?\); shipped"):
        load_spec("SpiNNaker")  # as the papers write it
    with pytest.raises(SpecError, match="unknown target 'nmnist'; shipped targets"):  # nothing like it: no guess
        load_spec("nmnist")


def test_invalid_toml_is_reported(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("name = [unclosed")
    with pytest.raises(SpecError, match="bad.toml: not valid TOML"):
        load_spec(path)


def test_a_new_kind_can_be_registered(monkeypatch, tmp_path):
    from hardware_models import specs

    monkeypatch.setattr(specs, "SCHEMAS", dict(specs.SCHEMAS))
    monkeypatch.setattr(specs, "OPTIONS", dict(specs.OPTIONS))
    monkeypatch.setattr(specs, "REQUIRED", dict(specs.REQUIRED))
    monkeypatch.setattr(specs, "CHECKS", dict(specs.CHECKS))

    def check(constants, fail):  # what only the constants together show
        if "energy.cell_read" in constants and constants["energy.cell_read"].si > constants["energy.adc"].si:
            raise fail("energy.cell_read", "is above energy.adc")

    specs.register_spec_kind("crossbar", {"energy": {"adc": "energy", "cell_read": "energy"}},
                             options={"cell": ("rram",)}, required=["energy.adc"], check=check)
    path = tmp_path / "xbar.toml"
    head = ('schema_version = 1\nname = "xbar"\nkind = "crossbar"\ntitle = "test"\ncell = "rram"\n'
            '[sources]\nspikesim = "Moitra et al. 2022, SpikeSim"\n[energy]\n')
    path.write_text(head + 'adc = { value = 2.03, unit = "pJ", source = "spikesim" }\n')
    assert load_spec(path).si("energy.adc") == approx_si(2.03e-12)
    path.write_text(path.read_text() + 'cell_read = { value = 3, unit = "pJ", source = "spikesim" }\n')
    with pytest.raises(SpecError, match=r"^xbar.toml: energy.cell_read: is above energy.adc"):
        load_spec(path)
    path.write_text(head + 'cell_read = { value = 2.03, unit = "pJ", source = "spikesim" }\n')
    with pytest.raises(SpecError, match=r"xbar.toml: energy.adc: missing required constant"):
        load_spec(path)


# ------------------------------------------------------------------ arithmetic and [precision]
def spec_data(base: str) -> dict:
    """A shipped spec's parsed TOML, a deep copy to break."""
    import copy
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    with open(SPEC_DIR / f"{base}.toml", "rb") as fh:
        return copy.deepcopy(tomllib.load(fh))


@pytest.mark.parametrize("base, arithmetic", [("loihi", "loihi"), ("loihi_sanafe", "loihi"), ("speck", "dynapcnn"),
                                               ("spinnaker", "spinnaker")])
def test_arithmetic_targets_declare_it_and_cite_every_precision_constant(base, arithmetic):
    from hardware_models.specs import ARITHMETIC_NEEDS, ARITHMETICS

    spec = load_spec(base)
    assert spec.options["arithmetic"] == arithmetic and arithmetic in ARITHMETICS
    precision = {k.split(".", 1)[1]: c for k, c in spec.constants.items() if k.startswith("precision.")}
    assert set(ARITHMETIC_NEEDS[arithmetic]) <= set(precision)
    for key, c in precision.items():
        assert c.unit == "bits" and c.value == int(c.value), key
        assert c.source in spec.sources and c.citation == spec.sources[c.source] and len(c.citation) > 20, key
    if base == "speck":  # sinabs' DYNAPCNN_WEIGHT_PRECISION_BITS and DYNAPCNN_STATE_PRECISION_BITS
        assert {k: c.value for k, c in precision.items()} == \
            {"weight_bits": 8, "bias_bits": 8, "state_bits": 16, "threshold_bits": 16}
        assert all("discretize.py" in c.citation for c in precision.values())
    elif base == "spinnaker":  # sPyNNaker's s16.15 accum, 16-bit weights, u0.32 decays
        assert {k: c.value for k, c in precision.items()} == \
            {"weight_bits": 16, "state_bits": 32, "fraction_bits": 15, "threshold_bits": 32, "bias_bits": 32,
             "decay_bits": 32}
        assert all("sPyNNaker" in c.citation and "891cfb3" in c.citation for c in precision.values())
        assert {"spinn_common", "gcc"} <= set(spec.sources)
    else:
        assert all("lava" in c.citation.lower() for c in precision.values())


def test_a_spec_without_arithmetic_still_loads():
    tn = load_spec("truenorth")
    assert "arithmetic" not in tn.options
    assert not [k for k in tn.constants if k.startswith("precision.")]
    data = spec_data("speck")
    del data["arithmetic"], data["precision"]
    spec = spec_from_dict(data, origin="speck.toml")
    assert "arithmetic" not in spec.options and spec.si("power.static") == approx_si(0.42e-3)


@pytest.mark.parametrize("base", ["loihi", "speck", "spinnaker"])
def test_a_missing_precision_constant_is_named(base):
    from hardware_models.specs import ARITHMETIC_NEEDS

    arithmetic = load_spec(base).options["arithmetic"]
    for key in ARITHMETIC_NEEDS[arithmetic]:
        data = spec_data(base)
        del data["precision"][key]
        with pytest.raises(SpecError, match=f"arithmetic is '{arithmetic}'") as info:
            spec_from_dict(data, origin="broken.toml")
        assert str(info.value).startswith(f"broken.toml: precision.{key}: missing required constant"), str(info.value)


def test_precision_constants_without_arithmetic_are_rejected():
    data = spec_data("loihi")
    del data["arithmetic"]
    with pytest.raises(SpecError, match=r"^broken.toml: arithmetic: missing.*\['loihi', 'dynapcnn', 'spinnaker'\]"):
        spec_from_dict(data, origin="broken.toml")


def test_an_unknown_arithmetic_lists_the_known_ones():
    data = spec_data("speck")
    data["arithmetic"] = "truenorth"
    with pytest.raises(SpecError, match=r"^broken.toml: arithmetic: 'truenorth' is not one of \['loihi', 'dynapcnn', 'spinnaker'\]"):
        spec_from_dict(data, origin="broken.toml")


@pytest.mark.parametrize("edit, key, match", [
    (lambda d: d["precision"]["weight_bits"].update(value=0), "precision.weight_bits", "must be at least 1 bit"),
    (lambda d: d["precision"]["weight_bits"].update(unit="count"), "precision.weight_bits", "unit 'count' is wrong"),
    (lambda d: d["precision"]["state_bits"].update(source="nobody"), "precision.state_bits", "source 'nobody'"),
    (lambda d: d["precision"].update(mantissa_bits={"value": 3, "unit": "bits", "source": "sinabs"}),
     "precision.mantissa_bits", "unknown constant"),
])
def test_broken_precision_constants_are_named(edit, key, match):
    data = spec_data("speck")
    edit(data)
    with pytest.raises(SpecError, match=match) as info:
        spec_from_dict(data, origin="broken.toml")
    assert str(info.value).startswith(f"broken.toml: {key}:"), str(info.value)


@pytest.mark.parametrize("base, key, value, match", [
    # 64 bits was accepted and crashed --fixed-point with OverflowError (2^64 past torch's int64)
    ("loihi", "state_bits", 64, "64 bits is too wide: at most 53, as the integer models hold values in float64, "
                                "whose integers are exact only up to 2\\^53"),
    ("loihi", "threshold_bits", 54, "54 bits is too wide: at most 53"),
    ("speck", "state_bits", 65, "too wide: at most 53"),
    ("spinnaker", "weight_bits", 64, "too wide: at most 53"),
    ("loihi", "weight_exp_bits", 12, "12 bits is too wide: at most 11, as the scales 2\\^exponent must be float64"),
    ("loihi", "bias_exp_bits", 11, "11 bits is too wide: at most 10"),
])
def test_precision_widths_past_what_the_integer_models_hold_are_rejected(base, key, value, match):
    data = spec_data(base)
    data["precision"][key]["value"] = value
    with pytest.raises(SpecError, match=match) as info:
        spec_from_dict(data, origin="broken.toml")
    assert str(info.value).startswith(f"broken.toml: precision.{key}:"), str(info.value)


def test_loihi_state_and_decay_together_must_stay_exact_in_float64():
    # Loihi's decay trunc(v·(2^12 − d)/2^12) multiplies a (state_bits − 1)-bit state by a 12-bit factor:
    # 42 − 1 + 12 = 53 bits is exact in float64, 43 − 1 + 12 = 54 is not
    data = spec_data("loihi")
    data["precision"]["state_bits"]["value"] = 42
    spec_from_dict(data, origin="loihi.toml")
    data["precision"]["state_bits"]["value"] = 43
    with pytest.raises(SpecError, match=r"^broken.toml: precision.state_bits: 43 bits with precision.decay_bits 12: "
                       r"Loihi's decay multiplies a state by up to 2\^decay_bits, a product of 54 bits; "
                       r"state_bits - 1 \+ decay_bits must be at most 53"):
        spec_from_dict(data, origin="broken.toml")


@pytest.mark.parametrize("base, key, value", [("loihi", "state_bits", 40), ("speck", "state_bits", 53),
                                              ("loihi", "weight_exp_bits", 11), ("loihi", "bias_exp_bits", 10)])
def test_precision_widths_up_to_the_limit_load(base, key, value):
    data = spec_data(base)
    data["precision"][key]["value"] = value
    assert spec_from_dict(data, origin=f"{base}.toml").constants[f"precision.{key}"].value == value


def test_input_shift_may_be_zero():
    data = spec_data("loihi")
    data["precision"]["input_shift"]["value"] = 0
    assert spec_from_dict(data, origin="loihi.toml").constants["precision.input_shift"].value == 0

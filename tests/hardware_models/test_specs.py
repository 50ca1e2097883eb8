"""Target specs: every shipped file loads, every constant has a unit and a cited source, and broken files
are rejected with a message naming the file and the key."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from hardware_models.specs import SPEC_DIR, TERMS, SpecError, list_targets, load_spec
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
     "energy.synaptic_opp", "unknown constant"),
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
    with pytest.raises(SpecError, match="other.toml: name: is 'loihi' but the file is named 'other'.toml"):
        load_spec(path)
    with pytest.raises(SpecError, match="unknown target 'loihi3'; shipped targets"):
        load_spec("loihi3")


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
    specs.register_spec_kind("crossbar", {"energy": {"adc": "energy", "cell_read": "energy"}},
                             options={"cell": ("rram",)}, required=["energy.adc"])
    path = tmp_path / "xbar.toml"
    path.write_text(
        'schema_version = 1\nname = "xbar"\nkind = "crossbar"\ntitle = "test"\ncell = "rram"\n'
        '[sources]\nspikesim = "Moitra et al. 2022, SpikeSim"\n'
        '[energy]\nadc = { value = 2.03, unit = "pJ", source = "spikesim" }\n'
    )
    assert load_spec(path).si("energy.adc") == approx_si(2.03e-12)
    path.write_text(path.read_text().replace("adc = ", "cell_read = "))
    with pytest.raises(SpecError, match=r"xbar.toml: energy.adc: missing required constant"):
        load_spec(path)

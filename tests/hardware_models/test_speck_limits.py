"""Speck / DYNAP-CNN: each layer's memory and configuration against the chip's published limits (sinabs' code and
documentation, cited in ``hardware_models/specs/speck.toml``). Expected entries are computed by hand in the comments;
every violation must name the layer, the limit and what to change."""

from __future__ import annotations

import nir
import numpy as np

from hardware_models import analyze, load_spec
from hardware_models.digital import map_network
from hw_helpers import conv, lif


def mapping(graph, **kw):
    return map_network(analyze(graph), load_spec("speck"), **kw)


def chain(input_shape, *nodes) -> nir.NIRGraph:
    return nir.NIRGraph.from_list(nir.Input(input_type=np.array(input_shape)), *nodes)


# ------------------------------------------------------------------ neuron memory: sides rounded up to powers of 2
def test_neuron_memory_rounds_each_side_of_the_feature_map_up_to_a_power_of_two():
    # sinabs DynapcnnLayer.memory_summary (what its mapper checks): f · 2^(⌈log2 fy⌉ + ⌈log2 fx⌉). 16 channels at
    # 33×33 are 17,424 neurons but take 16 · 64 · 64 = 65,536 entries, which only cores 0, 1, 2 (64Ki) hold:
    # four such layers cannot share one chip. At 32×32 they take 16 · 32 · 32 = 16,384 and fit any core.
    def four_layers(side):
        return chain([16, side, side], *[n for _ in range(4) for n in (conv(16, 16, 1), lif((16, side, side)))])

    m = mapping(four_layers(33))
    assert [(l.neurons, l.slots) for l in m.layers.values()] == [(17424, 65536)] * 4
    assert not m.fits and m.chips_needed == 2
    (v,) = m.violations
    assert v.limit == "cores_per_chip"
    assert "fits only cores 0, 1, 2" in v.message and "65536 neuron entries" in v.message
    small = mapping(four_layers(32))
    assert small.fits and [l.slots for l in small.layers.values()] == [16384] * 4


def test_a_layer_over_every_core_names_its_entries_and_what_to_change():
    # 64 channels at 64×64: 64 · 2^(6 + 6) = 262,144 entries, 4x the largest core's 65,536
    m = mapping(chain([2, 64, 64], conv(64, 2, 3, padding=1), lif((64, 64, 64))))
    (v,) = m.violations
    assert (v.limit, v.layer, v.value, v.allowed) == ("neuron_memory_per_core", "lif", 262144, 65536)
    assert "64x64x64" in v.message and "fewer channels" in v.message and "stride" in v.message
    assert m.chips_needed is None

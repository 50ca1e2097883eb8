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


# ------------------------------------------------------------------ a core's configuration (sinabs' documented limits)
def pool(k, stride=None) -> nir.SumPool2d:
    s = k if stride is None else stride
    return nir.SumPool2d(kernel_size=np.array([k, k]), stride=np.array([s, s]), padding=np.array([0, 0]))


def flatten(shape) -> nir.Flatten:
    return nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1)


def limits(m):
    return [(v.limit, v.layer, v.value, v.allowed) for v in m.violations]


def conv_pool_conv(k, stride=None):
    """Input(2, 30, 30) -> conv 3x3 -> LIF(8, 28, 28) -> pool k (stride) -> conv 3x3 -> LIF."""
    s = k if stride is None else stride
    side = (28 - k) // s + 1 - 2
    return chain([2, 30, 30], conv(8, 2, 3), lif((8, 28, 28)), pool(k, stride), conv(8, 8, 3), lif((8, side, side)))


def test_pool_sizes_are_1_2_or_4_with_the_stride_of_the_window():
    # sinabs docs: sum pooling 1x1, 2x2, 4x4; extract_pooling_from_module refuses a stride other than the window
    assert mapping(conv_pool_conv(2)).fits and mapping(conv_pool_conv(4)).fits
    m = mapping(conv_pool_conv(3))
    assert limits(m) == [("pool_sizes", "lif", 3, 2)] and m.chips_needed is None
    msg = m.violations[0].message
    assert "pool 'sumpool2d' after layer 'lif': window 3x3" in msg and "use a pool of 2 (stride 2)" in msg
    assert any("configured beyond what a core supports (pool_sizes)" in n for n in m.notes)
    assert limits(mapping(conv_pool_conv(2, stride=1))) == [("pool_sizes", "lif", 1, 2)]  # an overlapping pool
    # pooling the input events is the DVS layer's pooling, with the same sizes
    assert limits(mapping(chain([2, 60, 60], pool(3), conv(4, 2, 3), lif((4, 18, 18))))) == [
        ("pool_sizes", "input", 3, 2)]


def test_a_feature_map_over_64x64_and_an_input_over_128x128_are_reported():
    # sinabs docs: a core's output is at most 64x64, its input (and the DVS array) at most 128x128
    assert mapping(chain([2, 128, 128], conv(4, 2, 2, stride=2), lif((4, 64, 64)))).fits
    m = mapping(chain([2, 128, 128], conv(1, 2, 3, padding=1), lif((1, 128, 128))))  # 16,384 entries: memory fits
    assert limits(m) == [("output_size_max", "lif", 128, 64)]
    assert "128x128 feature map" in m.violations[0].message and "stride of 2 or 4" in m.violations[0].message
    m = mapping(chain([2, 256, 256], conv(4, 2, 4, stride=4), lif((4, 64, 64))))
    assert limits(m) == [("input_size_max", "input", 256, 128)]
    assert "downsample or crop the events to 128x128" in m.violations[0].message
    # the DVS layer pools what its 128x128 array sends: a 256x256 input does not fit however it is pooled
    assert limits(mapping(chain([2, 256, 256], pool(4), conv(4, 2, 1), lif((4, 64, 64))))) == [
        ("input_size_max", "input", 256, 128)]


def test_a_dense_layer_after_a_conv_names_its_kernel_size_and_kernel_memory():
    # Linear after a 16x30x30 map: a 30x30 kernel (at most 16x16) and 16 · 2^(⌈log2 900⌉ + ⌈log2 10⌉) =
    # 16 · 2^(10 + 4) = 262,144 kernel entries (the largest core: 65,536)
    m = mapping(chain([2, 34, 34], conv(16, 2, 5), lif((16, 30, 30)), flatten([16, 30, 30]),
                      nir.Linear(weight=np.ones((10, 16 * 900))), lif(10)))
    assert limits(m) == [("kernel_size_max", "lif_1", 30, 16), ("kernel_memory_per_core", "lif_1", 262144, 65536)]
    assert "(a convolution over its whole input map) 'linear' has a 30x30 kernel" in m.violations[0].message
    assert "fewer input channels or features" in m.violations[1].message
    # after a pool of 4 (30 -> 7): a 7x7 kernel, 16 · 2^(6 + 4) = 16,384 entries: fits
    assert mapping(chain([2, 34, 34], conv(16, 2, 5), lif((16, 30, 30)), pool(4), flatten([16, 7, 7]),
                         nir.Linear(weight=np.ones((10, 16 * 49))), lif(10))).fits


def test_kernel_stride_padding_and_channel_limits():
    # sinabs docs and validate_memory_speck.py: kernel <= 16x16, stride 1, 2, 4 or 8, padding 0-7, <= 1024 features
    assert limits(mapping(chain([2, 32, 32], conv(4, 2, 17), lif((4, 16, 16))))) == [("kernel_size_max", "lif", 17, 16)]
    assert mapping(chain([2, 32, 32], conv(4, 2, 16), lif((4, 17, 17)))).fits
    m = mapping(chain([2, 32, 32], conv(4, 2, 3, stride=3), lif((4, 10, 10))))
    assert limits(m) == [("stride_sizes", "lif", 3, 2)] and "strides by 1, 2, 4, 8" in m.violations[0].message
    assert mapping(chain([2, 32, 32], conv(4, 2, 3, stride=8), lif((4, 4, 4)))).fits
    assert limits(mapping(chain([2, 16, 16], conv(4, 2, 17, padding=8), lif((4, 16, 16))))) == [
        ("kernel_size_max", "lif", 17, 16), ("padding_max", "lif", 8, 7)]
    m = mapping(nir.NIRGraph.from_list(nir.Linear(weight=np.ones((2000, 4))), lif(2000)))  # 4 · 2^11 entries fit
    assert limits(m) == [("features_per_core", "lif", 2000, 1024)]
    # a Linear after flattening a flat input reads a 1x1 map (this raised ValueError from max() of no sides)
    assert mapping(chain([6], flatten([6]), nir.Linear(weight=np.ones((4, 6))), lif(4))).fits


def test_an_input_of_more_channels_than_polarities_is_noted_not_refused():
    # the DVS sensor gives 2 polarities; other event sources may send more channels to the first core
    m = mapping(chain([3, 32, 32], conv(4, 3, 3), lif((4, 30, 30))))
    assert m.fits and any("input 'input' has 3 channels" in n and "dvs_input=False" in n for n in m.notes)
    assert not any("polarities" in n for n in mapping(chain([2, 32, 32], conv(4, 2, 3), lif((4, 30, 30)))).notes)


def test_an_input_that_is_not_a_camera_image_is_noted_not_refused():
    # Speck is a camera chip (a 128x128 DVS, 2 polarities): an audio model's input, 700 frequency channels as a
    # vector (neurosim's shd config) or as one row, is priced as events sent in from outside, and the estimate says so
    def camera_notes(m):
        return [n for n in m.notes if "is not a 2-D camera input" in n]

    audio = mapping(chain([700], nir.Linear(weight=np.ones((8, 700))), lif(8)))  # 700 · 2^3 kernel entries fit
    (note,) = camera_notes(audio)
    assert audio.fits and "input 'input' (700) is not a 2-D camera input" in note
    assert "2 polarities of 128x128 pixels" in note and "dvs_input=False" in note
    row = mapping(chain([1, 1, 700], flatten([1, 1, 700]), nir.Linear(weight=np.ones((8, 700))), lif(8)))
    assert camera_notes(row) and ("input_size_max", "input", 700, 128) in limits(row)  # and wider than the sensor
    assert not camera_notes(mapping(conv_pool_conv(2)))  # 2x30x30 events: a crop of the sensor's


def test_a_layer_per_core_spec_without_the_configuration_limits_checks_only_memory():
    from hardware_models.specs import spec_from_dict
    from test_specs import spec_data

    data = spec_data("speck")
    for key in ("pool_sizes", "stride_sizes", "kernel_size_max", "padding_max", "features_per_core", "input_size_max",
                "output_size_max", "sensor_polarities"):
        del data["capacity"][key]
    spec = spec_from_dict(data, origin="speck.toml")
    g = chain([2, 256, 256], conv(4, 2, 3, stride=3), lif((4, 85, 85)), pool(3), conv(4, 4, 3), lif((4, 26, 26)))
    assert map_network(analyze(g), spec).fits
    assert {v.limit for v in mapping(g).violations} == {"input_size_max", "stride_sizes", "output_size_max",
                                                          "pool_sizes"}


def test_ten_layers_name_the_core_count_and_what_to_change():
    m = mapping(nir.NIRGraph.from_list(*[n for _ in range(10) for n in (nir.Linear(weight=np.ones((8, 8))), lif(8))]))
    (v,) = m.violations
    assert (v.limit, v.value, v.allowed) == ("cores_per_chip", 10, 9)
    assert "use fewer layers, or allow 2 chips (chips=2, neurosim estimate --chips 2)" in v.message


# ------------------------------------------------------------------ one kernel per core: several inputs share it
def test_a_recurrent_loop_adds_its_channels_to_the_cores_one_kernel():
    # Input(4, 3, 3) -> flatten -> Linear(36 -> 16) -> lif(16) with a one-to-one loop: the core's kernel is 3x3 (the
    # Linear reads the whole 3x3 map) and the loop's 16 spikes come back as 16 more input channels of it:
    # (4 + 16) · 2^(⌈log2 9⌉ + ⌈log2 16⌉) = 20 · 2^8 = 5,120 entries (not 4 · 2^8 + 16 · 2^4 = 1,280)
    nodes = {"input": nir.Input(input_type=np.array([4, 3, 3])), "flat": flatten([4, 3, 3]),
             "w_in": nir.Linear(weight=np.ones((16, 36))), "lif": lif(16),
             "w_rec": nir.Linear(weight=np.diag(np.arange(1.0, 17.0))),
             "output": nir.Output(output_type=np.array([16]))}
    edges = [("input", "flat"), ("flat", "w_in"), ("w_in", "lif"), ("lif", "w_rec"), ("w_rec", "lif"),
             ("lif", "output")]
    m = mapping(nir.NIRGraph(nodes=nodes, edges=edges))
    assert m.layers["lif"].max_synapses_per_core == 5120
    assert any("one-to-one recurrence(s) ('w_rec')" in n and "N more input channels" in n for n in m.notes)
    assert any("can deadlock the chip" in n for n in m.notes)


def test_two_inputs_share_one_kernel_at_the_larger_size():
    # a (4ch, 3x3 conv) and b (8ch, 1x1 conv) both feed c (8 features): (4 + 8) · 2^(⌈log2 9⌉ + ⌈log2 8⌉) =
    # 12 · 2^7 = 1,536 entries (not 4 · 2^7 + 8 · 2^3 = 576)
    nodes = {"input": nir.Input(input_type=np.array([2, 10, 10])), "ca": conv(4, 2, 1), "a": lif((4, 10, 10)),
             "cb": conv(8, 2, 1), "b": lif((8, 10, 10)), "ac": conv(8, 4, 3, padding=1), "bc": conv(8, 8, 1),
             "c": lif((8, 10, 10))}
    edges = [("input", "ca"), ("ca", "a"), ("input", "cb"), ("cb", "b"), ("a", "ac"), ("ac", "c"), ("b", "bc"),
             ("bc", "c")]
    m = mapping(nir.NIRGraph(nodes=nodes, edges=edges))
    assert m.layers["c"].max_synapses_per_core == 1536 and m.fits
    assert any("layer 'c' has 2 inputs; on one core they share its kernel" in n for n in m.notes)


def test_a_core_with_three_destinations_says_what_to_change():
    # sinabs FAQ: a core has 2 destinations
    nodes = {"input": nir.Input(input_type=np.array([6])), "w0": nir.Linear(weight=np.ones((8, 6))), "hub": lif(8)}
    edges = [("input", "w0"), ("w0", "hub")]
    for i in range(3):
        nodes |= {f"w{i + 1}": nir.Linear(weight=np.ones((4, 8))), f"leaf{i}": lif(4)}
        edges += [("hub", f"w{i + 1}"), (f"w{i + 1}", f"leaf{i}")]
    (v,) = mapping(nir.NIRGraph(nodes=nodes, edges=edges)).violations
    assert (v.limit, v.layer, v.value, v.allowed) == ("destinations_per_core", "hub", 3, 2)
    assert "feed the others from one of those layers" in v.message

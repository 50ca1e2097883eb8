"""Device non-idealities on trained models: exact ideal outputs, conductance mapping by hand, faults, drift,
read-noise statistics, tile-wise ADC within its quantisation step, seeded chips, and accuracy under variation."""

from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from neurosim.hardware import (CrossbarConv2d, CrossbarDiagonal, CrossbarLinear, NonIdealConfig, accuracy,
                               apply_nonidealities, crossbar_layers, effective_weight, evaluate_nonideal,
                               noise_aware_finetune, program_conductances)
from neurosim.nn import (LIF, RLIF, BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten, Linear, Sequential,
                         SumPool2d)
from rram_helpers import Batches, spike_patterns, trained_mlp


def small_conv_net() -> Sequential:
    torch.manual_seed(0)
    return Sequential(Conv2d(2, 4, 3, padding=1), LIF(beta=0.8, v_th=0.5), Flatten(), Linear(4 * 6 * 6, 3),
                      LIF(beta=0.8, v_th=0.5))


def test_ideal_config_reproduces_the_model_exactly_and_copies_it():
    net = small_conv_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = (torch.rand(5, 3, 2, 6, 6) < 0.3).float()
    chip = apply_nonidealities(net, NonIdealConfig(), seed=3)
    assert chip is not net
    assert torch.equal(chip(x)[0], net(x)[0])
    chip2 = apply_nonidealities(net, NonIdealConfig(sigma_rel=0.5, stuck_on_rate=0.1), seed=3)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # the trained model is untouched
    assert not torch.equal(chip2[0].weight, net[0].weight)


def test_tile_by_tile_crossbar_layers_equal_the_ideal_layers():
    torch.manual_seed(1)
    cfg = NonIdealConfig(tile_rows=7)  # nothing on: only the tiling is exercised
    w = torch.randn(5, 20, dtype=torch.float64)
    b = torch.randn(5, dtype=torch.float64)
    gp, gn, scale = program_conductances(w, cfg)
    lin = CrossbarLinear(gp, gn, scale, b, cfg, None)
    x = torch.rand(4, 3, 20, dtype=torch.float64)  # [T, B, N]
    assert len(lin._tiles()) == 3
    torch.testing.assert_close(lin(x), F.linear(x, w, b), rtol=1e-12, atol=1e-12)

    wc = torch.randn(6, 4, 3, 3, dtype=torch.float64)
    gp, gn, scale = program_conductances(wc, NonIdealConfig(tile_rows=18))
    conv = CrossbarConv2d(gp, gn, scale, None, NonIdealConfig(tile_rows=18), None, stride=(1, 1), padding=(1, 1),
                          dilation=(1, 1), groups=1)
    xc = torch.rand(2, 3, 4, 7, 7, dtype=torch.float64)  # [T, B, C, H, W]
    assert len(conv._tiles()) == 2  # two input channels (18 rows) per tile
    ref = F.conv2d(xc.flatten(0, 1), wc, None, 1, 1).reshape(2, 3, 6, 7, 7)
    torch.testing.assert_close(conv(xc), ref, rtol=1e-12, atol=1e-12)


def _tile_rows(layer) -> list[list[int]]:
    """The input rows each tile of a crossbar layer holds: a Linear's inputs; a conv's rows of the unrolled matrix,
    ``channel·kh·kw + ky·kw + kx``."""
    if isinstance(layer, CrossbarLinear):
        return [list(range(layer._w_shape[1]))[sl] for sl in layer._tiles()]
    c_in, kh, kw = layer._w_shape[1:]
    every = torch.arange(c_in * kh * kw).view(c_in, kh, kw)
    tiles = [t if isinstance(t, tuple) else (t, None) for t in layer._tiles()]  # (channels, mask of their rows)
    return [(every[ch] if mask is None else every[ch][mask]).flatten().tolist() for ch, mask in tiles]


@pytest.mark.parametrize("target", ["rram_neurosim", "rram_lsm40nm"])
def test_tiles_hold_the_rows_the_energy_model_maps_to_them(target):
    # a conv's tiles held whole input channels, ⌊128 / 25⌋ = 5 of a 5x5 kernel (125 rows), while the energy model
    # cuts the unrolled matrix every 128 rows: other partial sums met the ADC than those costed (and, for 99
    # channels of a 3x3 kernel, 8 tiles where it counts 7)
    from hardware_models import analyze, load_spec
    from hardware_models.crossbar import map_crossbar
    from neurosim.export import to_nir
    from neurosim.hardware import nonideal_config_from_spec

    torch.manual_seed(0)
    for c_in, k in ((24, 5), (99, 3)):
        side = 8
        out = side - k + 1
        net = Sequential(Conv2d(c_in, 20, k), LIF(beta=0.8), Flatten(), Linear(20 * out * out, 10), LIF(beta=0.8))
        mapping = map_crossbar(analyze(to_nir(net, (c_in, side, side))), load_spec(target))
        chip = apply_nonidealities(net, nonideal_config_from_spec(target, read_noise_rel=0.01), seed=0)
        for name, kind in (("0", "conv"), ("3", "linear")):
            layer = next(l for l in mapping.layers if l.synapses == (name,))
            assert layer.kind == kind
            tiles = _tile_rows(chip.get_submodule(name))
            assert len(tiles) == layer.row_tiles, (target, c_in, kind)
            # the energy model's row block of each row: row // tile rows
            assert tiles == [list(range(i, min(i + layer.block_rows, layer.rows)))
                             for i in range(0, layer.rows, layer.block_rows)]


def test_a_conv_tile_may_end_inside_a_channels_kernel():
    torch.manual_seed(5)
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64)  # 27 rows; tiles of 7 rows: 7, 7, 7, 6
    x = (torch.rand(2, 3, 6, 6) < 0.5).double()
    exact = NonIdealConfig(tile_rows=7)
    gp, gn, scale = program_conductances(w, exact)
    conv = CrossbarConv2d(gp, gn, scale, None, exact, None, stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1)
    assert [len(t) for t in _tile_rows(conv)] == [7, 7, 7, 6]
    torch.testing.assert_close(conv(x), F.conv2d(x, w, None, 1, 1), rtol=1e-12, atol=1e-12)
    # by hand, with a 3-bit ADC: each tile's columns converted over [0, Σ of the tile's cells] on the tile's rows
    bits = 3
    adc = CrossbarConv2d(gp, gn, scale, None, NonIdealConfig(tile_rows=7, adc_bits=bits), None, stride=(1, 1),
                         padding=(1, 1), dilation=(1, 1), groups=1)
    ref = 0
    for rows in _tile_rows(conv):
        keep = torch.zeros(27, dtype=torch.float64)
        keep[rows] = 1
        for g, sign in ((gp, 1), (gn, -1)):
            gt = g * keep.view(1, 3, 3, 3)
            full = gt.sum((1, 2, 3)).view(1, -1, 1, 1)
            step = full / (2**bits - 1)
            ref = ref + sign * scale * torch.minimum(torch.round(F.conv2d(x, gt, None, 1, 1) / step) * step, full)
    torch.testing.assert_close(adc(x), ref, rtol=1e-12, atol=1e-12)


def test_adc_error_stays_within_half_a_step_per_conversion():
    torch.manual_seed(2)
    bits, rows = 8, 16
    cfg = NonIdealConfig(adc_bits=bits, tile_rows=rows)
    w = torch.randn(6, 40, dtype=torch.float64)
    gp, gn, scale = program_conductances(w, cfg)
    lin = CrossbarLinear(gp, gn, scale, None, cfg, None)
    x = (torch.rand(50, 40) < 0.4).double()  # spikes: never beyond the ADC's full scale
    err = (lin(x) - x @ w.T).abs()
    # each tile converts the two columns of a pair: at most half a step each, steps = column full scale / (2^b − 1)
    bound = 0
    for sl in lin._tiles():
        bound = bound + (gp[:, sl].sum(1) + gn[:, sl].sum(1)) / (2**bits - 1) / 2 * scale
    assert bool((err <= bound + 1e-12).all())
    assert torch.equal(lin(torch.zeros(3, 40, dtype=torch.float64)), torch.zeros(3, 6, dtype=torch.float64))


def test_event_counts_drive_a_row_once_per_event_so_a_fine_adc_reads_them_exactly():
    torch.manual_seed(3)
    w = torch.randn(6, 40, dtype=torch.float64)
    counts = torch.randint(0, 6, (20, 40)).double()  # first-layer event counts, up to 5 per row
    for bits in (24, 4):
        cfg = NonIdealConfig(adc_bits=bits, tile_rows=16)
        gp, gn, scale = program_conductances(w, cfg)
        lin = CrossbarLinear(gp, gn, scale, None, cfg, None)
        pulses = sum(lin((counts >= k).double()) for k in range(1, 6))  # one read and conversion per event
        torch.testing.assert_close(lin(counts), pulses, rtol=0, atol=1e-12)
        if bits == 24:  # the full scale (every row once) used to clip the counts: errors of ~the output's size
            torch.testing.assert_close(lin(counts), counts @ w.T, rtol=0, atol=1e-4)
    with pytest.raises(ValueError, match="fractional values above 1 \\(up to 1.5\\)"):
        lin(torch.full((2, 40), 1.5, dtype=torch.float64))


@pytest.mark.parametrize("mode", ["reflect", "circular", "replicate"])
def test_a_crossbar_conv_pads_as_its_layer_does(mode):
    torch.manual_seed(4)
    layer = torch.nn.Conv2d(2, 3, 3, padding=1, padding_mode=mode).double()
    x = torch.rand(4, 2, 6, 6, dtype=torch.float64)
    chip = apply_nonidealities(Sequential(layer), NonIdealConfig(read_noise_rel=1e-12), seed=0)
    assert isinstance(chip[0], CrossbarConv2d)
    torch.testing.assert_close(chip[0](x), layer(x), rtol=0, atol=1e-9)


def test_conductance_mapping_and_quantisation_by_hand():
    # G_off = 1/2; three levels per cell: 0.5, 0.75, 1.0; scale = w_max / (1 - G_off) = 2
    cfg = NonIdealConfig(on_off_ratio=2.0, levels=3)
    w = torch.tensor([1.0, -0.5, 0.3, 0.0])
    gp, gn, scale = program_conductances(w, cfg)
    assert scale == pytest.approx(2.0)
    # 0.3 -> g+ = 0.5 + 0.5 * 0.3 = 0.65 -> nearest level 0.75; -0.5 -> g- = 0.75 exactly
    torch.testing.assert_close(gp, torch.tensor([1.0, 0.5, 0.75, 0.5]))
    torch.testing.assert_close(gn, torch.tensor([0.5, 0.75, 0.5, 0.5]))
    torch.testing.assert_close(effective_weight(w, cfg), torch.tensor([1.0, -0.5, 0.5, 0.0]))
    assert torch.equal(effective_weight(torch.zeros(3), cfg), torch.zeros(3))


def test_stuck_at_faults_hit_the_asked_fraction_and_rails():
    w = torch.randn(400, 500)
    off = NonIdealConfig(stuck_off_rate=1.0)
    assert torch.equal(effective_weight(w, off), torch.zeros_like(w))  # both cells at G_off
    on = NonIdealConfig(stuck_on_rate=1.0)
    assert torch.equal(effective_weight(w, on), torch.zeros_like(w))  # both cells at G_on
    cfg = NonIdealConfig(stuck_on_rate=0.03, stuck_off_rate=0.05)
    gp, _, _ = program_conductances(w, cfg, torch.Generator().manual_seed(0))
    ideal, _, _ = program_conductances(w, NonIdealConfig())
    changed_to_on = ((gp == 1.0) & (ideal != 1.0)).float().mean().item()
    at_off = (gp == cfg.g_off).float().mean().item()
    assert changed_to_on == pytest.approx(0.03, abs=0.003)
    assert at_off == pytest.approx(0.05 + (ideal == cfg.g_off).float().mean().item() * 0.92, abs=0.003)


def test_a_stuck_cell_moves_a_weight_by_a_fraction_of_the_layers_largest_so_an_all_zero_matrix_stays_zero():
    # the read-out scale is w_max / (1 − G_off): a cell stuck at G_on next to one at G_off reads as ±w_max. An all-zero
    # matrix (w_max = 0) computes 0 whatever its cells hold, the limit of ever smaller matrices, not a missing fault
    on = NonIdealConfig(stuck_on_rate=0.1)
    for w_max in (1.0, 1e-3, 1e-6):
        w = torch.zeros(40, 50, dtype=torch.float64)
        w[0, 0] = w_max
        moved = effective_weight(w, on, torch.Generator().manual_seed(0))
        assert float(moved.abs().max()) == pytest.approx(w_max) and bool((moved != w).any())
    zero = torch.zeros(40, 50)
    assert torch.equal(effective_weight(zero, on, torch.Generator().manual_seed(0)), zero)
    layer = torch.nn.Linear(50, 40)
    with torch.no_grad():
        layer.weight.zero_()
    chip = apply_nonidealities(Sequential(layer), NonIdealConfig(stuck_on_rate=0.1, read_noise_rel=0.1, adc_bits=4))
    torch.testing.assert_close(chip(torch.ones(3, 50))[0], layer.bias.detach().expand(3, 40))


def test_variation_spreads_cells_at_g_off_both_ways():
    # G is the whole conductance: a cell programmed to G_off varies about it, below as above (clipped at 0 only)
    cfg = NonIdealConfig(sigma_rel=0.1)
    gp, gn, _ = program_conductances(torch.ones(200, 300), cfg, torch.Generator().manual_seed(0))
    assert (gn < cfg.g_off).float().mean().item() == pytest.approx(0.5, abs=0.01)
    assert gn.mean().item() == pytest.approx(cfg.g_off, rel=0.002)


def test_uniform_drift_scales_every_weight():
    w = torch.randn(30, 20)
    cfg = NonIdealConfig(drift_nu=0.1, drift_t_s=100.0, drift_t0_s=1.0)
    torch.testing.assert_close(effective_weight(w, cfg), w * 100.0 ** -0.1, rtol=1e-5, atol=1e-6)
    assert NonIdealConfig(drift_nu=0.1, drift_t_s=5.0, drift_t0_s=5.0).ideal  # no time elapsed: no drift


@pytest.mark.parametrize("cells", [{}, {"levels": 128, "cell_bits": 1}])
def test_global_drift_compensation_undoes_a_uniform_drift_and_the_mean_of_a_spread(cells):
    # one ν for every cell shrinks every weight by (t/t0)^-ν (a gain error, above): a layer's read-out gain α, measured
    # at t0 and at t, undoes it exactly; with a spread of ν only the cells' deviations from the mean decay are left
    w = torch.randn(200, 150, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    base = dict(sigma_rel=0.05, stuck_on_rate=0.01, **cells)
    drift = dict(drift_nu=0.06, drift_t_s=1e5)
    before = effective_weight(w, NonIdealConfig(**base), torch.Generator().manual_seed(1))
    drifted = effective_weight(w, NonIdealConfig(**base, **drift), torch.Generator().manual_seed(1))
    fixed = effective_weight(w, NonIdealConfig(**base, **drift, drift_compensation=True),
                             torch.Generator().manual_seed(1))
    torch.testing.assert_close(drifted, before * 1e5 ** -0.06)
    torch.testing.assert_close(fixed, before, rtol=1e-9, atol=1e-12)

    # with a spread (ν drawn per cell, after each side's other draws: so here on the quantised cells alone)
    before = effective_weight(w, NonIdealConfig(**cells))
    spread = dict(drift, drift_nu_std=0.01)
    raw = effective_weight(w, NonIdealConfig(**cells, **spread), torch.Generator().manual_seed(1))
    comp = effective_weight(w, NonIdealConfig(**cells, **spread, drift_compensation=True),
                            torch.Generator().manual_seed(1))
    gain = lambda v: float((v * before).sum() / (before * before).sum())  # noqa: E731 least-squares gain on before
    assert gain(raw) == pytest.approx(1e5 ** -0.06, rel=0.1) and gain(comp) == pytest.approx(1.0, abs=0.03)
    assert float((comp - before).norm()) < 0.5 * float((raw - before).norm())
    with pytest.raises(ValueError, match="drift_compensation: must be True or False, got 1"):
        NonIdealConfig(drift_compensation=1)


def test_an_adc_calibrated_when_programmed_loses_codes_to_drift_and_one_calibrated_at_the_read_does_not():
    # the ADC's full scale followed each column's cells as read, drifted: drift cost no ADC resolution
    torch.manual_seed(8)
    net = Sequential(Linear(20, 6)).double()
    x = (torch.rand(400, 20) < 0.5).double()
    bits = 4
    base = dict(levels=16, adc_bits=bits, tile_rows=8)
    drift = dict(drift_nu=0.1, drift_t_s=100.0, drift_compensation=True)  # every cell × 100^−0.1 = 0.63
    fresh = apply_nonidealities(net, NonIdealConfig(**base), seed=0)[0]  # at t0
    follows = apply_nonidealities(net, NonIdealConfig(**base, **drift), seed=0)[0]
    fixed = apply_nonidealities(net, NonIdealConfig(**base, **drift, adc_calibration="programmed"), seed=0)[0]

    def by_hand(layer, full_pos, full_neg):
        """The drifted currents of each 8-row tile converted over the full scale of the cells ``full_*``, then the
        compensation's gain (in ``layer.scale``) and the bias."""
        out = net[0].bias.detach()
        for sl in (slice(0, 8), slice(8, 16), slice(16, 20)):
            for g, g_full, sign in ((layer.g_pos, full_pos, 1), (layer.g_neg, full_neg, -1)):
                full = g_full[:, sl].sum(1)
                step = full / (2**bits - 1)
                out = out + sign * layer.scale * torch.minimum(torch.round(x[:, sl] @ g[:, sl].T / step) * step, full)
        return out

    torch.testing.assert_close(follows(x), by_hand(follows, follows.g_pos, follows.g_neg), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fixed(x), by_hand(fixed, fresh.g_pos, fresh.g_neg), rtol=1e-12, atol=1e-12)
    # the default converts as at t0 (the compensation undoes the gain); set at programming, 0.63 of the codes
    exact = x @ fresh.weight.T + net[0].bias.detach()
    error = {k: float((layer(x) - exact).pow(2).mean().sqrt()) for k, layer in
             (("t0", fresh), ("read", follows), ("programmed", fixed))}
    assert error["read"] == pytest.approx(error["t0"], rel=0.05) and error["programmed"] > 1.3 * error["t0"], error
    # a recurrent layer's stacked matrices: the full scale from both matrices' cells as programmed
    xbar = apply_nonidealities(_stacked_net(100, 60), NonIdealConfig(**base, **drift, adc_calibration="programmed"),
                               seed=0)[3].recurrent.crossbar
    torch.testing.assert_close(xbar.g_pos, xbar.calibrated_pos * 100.0 ** -0.1)
    torch.testing.assert_close(xbar.g_neg, xbar.calibrated_neg * 100.0 ** -0.1)
    # without drift (or without an ADC) the two calibrations are one
    for kw in (base, dict(base, adc_bits=None, read_noise_rel=0.01)):
        a = apply_nonidealities(net, NonIdealConfig(**kw), seed=0)[0]
        b = apply_nonidealities(net, NonIdealConfig(**kw, adc_calibration="programmed"), seed=0)[0]
        assert torch.equal(a(x), b(x))


def test_programming_variation_has_the_asked_spread():
    w = torch.rand(300, 300) + 0.5
    cfg = NonIdealConfig(sigma_rel=0.1)
    gp, _, _ = program_conductances(w, cfg, torch.Generator().manual_seed(1))
    ideal, _, _ = program_conductances(w, NonIdealConfig())
    rel = gp / ideal - 1
    assert rel.mean().item() == pytest.approx(0.0, abs=0.003)
    assert rel.std().item() == pytest.approx(0.1, rel=0.02)


def test_read_noise_matches_the_column_sum_formula():
    torch.manual_seed(3)
    sigma = 0.2
    cfg = NonIdealConfig(read_noise_rel=sigma)
    w = torch.randn(3, 30, dtype=torch.float64)
    gp, gn, scale = program_conductances(w, cfg)
    lin = CrossbarLinear(gp, gn, scale, None, cfg, torch.Generator().manual_seed(0))
    x = (torch.rand(30) < 0.5).double()
    ys = lin(x.expand(20000, 30))
    expected = sigma * scale * torch.sqrt(x @ (gp**2).T + x @ (gn**2).T)
    torch.testing.assert_close(ys.mean(0), x @ w.T, rtol=0, atol=0.02)
    torch.testing.assert_close(ys.std(0), expected, rtol=0.03, atol=0)


def test_chips_are_seeded():
    net = small_conv_net()
    cfg = NonIdealConfig(sigma_rel=0.2, read_noise_rel=0.05, adc_bits=6)
    x = (torch.rand(4, 2, 2, 6, 6) < 0.3).float()
    a, b = apply_nonidealities(net, cfg, seed=5), apply_nonidealities(net, cfg, seed=5)
    c = apply_nonidealities(net, cfg, seed=6)
    torch.testing.assert_close(a[0].weight, b[0].weight)
    assert not torch.equal(a[0].weight, c[0].weight)
    assert torch.equal(a[0](x), b[0](x))  # the same read-noise sequence too
    # every chip's streams are its own: chip 6 does not program its cells with chip 5's read noise
    from neurosim.hardware.nonideal import _stream_seed

    seeds = {_stream_seed(s, role, i) for s in range(20) for role, i in [("program", 0), ("read", 0), ("read", 1)]}
    assert len(seeds) == 60
    with pytest.raises(ValueError, match=r"layers \['nope'\] are not Linear/Conv2d modules"):
        apply_nonidealities(net, cfg, layers=["nope"])


@pytest.mark.parametrize("cells", [{}, {"levels": 128, "cell_bits": 1}])
def test_a_drift_spread_leaves_the_chips_other_draws_as_they_were(cells):
    # the spread of ν was drawn from the programming stream, between each side's faults and the next side's
    # variation: turning it on moved every later cell's variation and faults (and those of every later layer)
    net = small_conv_net()
    base = dict(sigma_rel=0.1, stuck_on_rate=0.02, stuck_off_rate=0.02, read_noise_rel=0.05, adc_bits=8, **cells)
    x = (torch.rand(3, 2, 2, 6, 6, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    plain = apply_nonidealities(net, NonIdealConfig(**base), seed=4)
    # ν ~ N(0, 0.05) clipped at 0: every cell keeps its programmed G (ν ≤ 0) or decays (ν > 0), never grows
    spread = apply_nonidealities(net, NonIdealConfig(**base, drift_nu_std=0.05, drift_t_s=100.0), seed=4)
    for name in ("0", "3"):
        a, b = plain.get_submodule(name), spread.get_submodule(name)
        for ga, gb in ((a.g_pos, b.g_pos), (a.g_neg, b.g_neg)):
            kept = gb == ga
            assert bool((gb <= ga).all()) and 0.45 < kept.float().mean().item() < 0.55
            implied = -torch.log(gb[~kept] / ga[~kept]) / math.log(100.0)  # each decayed cell's own ν
            # a half-normal: E[ν | ν > 0] = s·sqrt(2/π), standard deviation s·sqrt(1 − 2/π); within 4 standard errors
            se = 0.05 * math.sqrt(1 - 2 / math.pi) / math.sqrt(implied.numel())
            assert abs(implied.mean().item() - 0.05 * math.sqrt(2 / math.pi)) < 4 * se
    # the read noise of the same chip, drawn from a stream of its own, is the same sequence: on the same cells
    # (those of `plain`, read through the drifted chip's layer) the outputs are bit for bit the same
    layer = spread.get_submodule("0")
    layer.g_pos.copy_(plain.get_submodule("0").g_pos)
    layer.g_neg.copy_(plain.get_submodule("0").g_neg)
    assert torch.equal(layer(x), plain.get_submodule("0")(x))


@pytest.mark.parametrize("kwargs, match", [
    ({"levels": 1}, "levels: must be an integer >= 2"),
    ({"sigma_rel": -0.1}, "sigma_rel: must be a number >= 0"),
    ({"stuck_on_rate": 0.7, "stuck_off_rate": 0.5}, "exceeds 1"),
    ({"on_off_ratio": 1.0}, "on_off_ratio: must be > 1"),
    ({"adc_bits": 0}, "adc_bits: must be an integer >= 1"),
    ({"adc_range_frac": 0.0}, r"adc_range_frac: must be in \(0, 1\]"),
    ({"drift_t_s": 0.0}, "drift_t_s: must be a positive number of seconds"),
    # a σ typed in percent (5 for 5 %) ran as 500 % of G; a drift read before t0 made every cell grow; a 40-bit ADC
    # ran as exact float32 reads while the report said "ADC 40 bits"
    ({"sigma_rel": 5.0}, r"sigma_rel: must be a fraction of G in \[0, 1\] \(0.05 is 5 %\), got 5.0"),
    ({"read_noise_rel": 2.0}, r"read_noise_rel: must be a fraction of G in \[0, 1\] \(0.05 is 5 %\), got 2.0"),
    ({"drift_nu": 0.1, "drift_t_s": 0.5}, r"drift_t_s: 0.5 s is before drift_t0_s = 1 s: G\(t\) = G0·\(t/t0\)\^−ν"),
    ({"adc_bits": 40}, r"adc_bits: at most 24 bits .*got 40; adc_bits=None reads the column currents exactly"),
    ({"adc_calibration": "t0"}, r"adc_calibration: must be one of \('read', 'programmed'\), got 't0'"),
])
def test_config_errors_name_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NonIdealConfig(**kwargs)


def test_no_variation_no_faults_reproduce_ideal_accuracy_and_large_variation_lowers_it():
    model, test = trained_mlp(steps=40)
    ideal = accuracy(model, test)
    assert ideal > 80  # 5 classes: chance is 20 %
    clean = evaluate_nonideal(model, test, NonIdealConfig(sigma_rel=0.0, stuck_on_rate=0.0), chips=3)
    assert clean["per_chip"] == [ideal] * 3 and clean["std"] == 0.0 and clean["ideal"] == ideal
    r50 = evaluate_nonideal(model, test, NonIdealConfig(sigma_rel=0.5), chips=6, seed=10)
    r5 = evaluate_nonideal(model, test, NonIdealConfig(sigma_rel=0.05), chips=6, seed=10)
    assert r50["mean"] < ideal - 3 and r50["mean"] < r5["mean"] - 3, (r50, r5, ideal)
    assert len(r50["per_chip"]) == 6 and r50["std"] > 0
    with pytest.raises(ValueError, match="chips must be a positive integer"):
        evaluate_nonideal(model, test, NonIdealConfig(), chips=0)


def test_a_chips_accuracy_does_not_depend_on_the_loaders_batch_size():
    """Read noise is drawn per forward call in the call's shape: accuracy() evaluates in blocks of EVAL_BLOCK
    samples whatever the loader's batches, so the same chip gives the same figure from any batch size."""
    model, _ = trained_mlp(steps=20)
    x, y = spike_patterns(300, seed=7)
    cfg = NonIdealConfig(sigma_rel=0.05, read_noise_rel=0.2)
    figures = {b: evaluate_nonideal(model, Batches(x, y, b), cfg, chips=2, seed=3)["per_chip"] for b in (32, 100, 300)}
    assert figures[32] == figures[100] == figures[300], figures
    capped = {b: evaluate_nonideal(model, Batches(x, y, b), cfg, chips=2, seed=3, max_samples=150)["per_chip"]
              for b in (32, 300)}
    assert capped[32] == capped[300], capped
    assert accuracy(model, Batches(x, y, 7), max_samples=10) == accuracy(model, Batches(x[:10], y[:10], 64))


@pytest.mark.parametrize("kind", ["ideal", "programmed", "adc", "read noise"])
def test_accuracy_takes_a_frameloaders_counts_compact_and_runs_them_a_chunk_of_steps_at_a_time(kind, monkeypatch):
    """accuracy() made each block of 128 samples float32 over all T steps and ran it in one call (473 MB of input at
    T = 400 for 34×34×2 event digits, and a conv layer's activations for all T steps); it now takes a FrameLoader's
    uint8 counts and runs each block a chunk of steps at a time, with the same outputs and figures, bit for bit. A
    chip with read noise kept one call over all T steps, as it drew its noise in the call's shape; its noise is now a
    function of each read's place in the layer's reads, and it runs chunked too, with the figures of one call."""
    from conversions import IntToFloatCopies

    from neurosim.data import FrameLoader
    from neurosim.hardware import nonideal

    model, _ = trained_mlp(steps=20)
    x, y = spike_patterns(300, seed=7)
    counts = (x * torch.randint(1, 3, x.shape, generator=torch.Generator().manual_seed(0))).to(torch.uint8)  # 0–2
    cfg = {"programmed": NonIdealConfig(levels=16, sigma_rel=0.1),
           "adc": NonIdealConfig(levels=16, sigma_rel=0.1, adc_bits=4, tile_rows=16),
           "read noise": NonIdealConfig(levels=16, read_noise_rel=0.1, adc_bits=4, tile_rows=16)}.get(kind)

    def chip():  # the same chip (its read noise too) for every run
        return model if cfg is None else apply_nonidealities(model, cfg, seed=4)

    T = counts.shape[1]
    with IntToFloatCopies() as copies:
        got = accuracy(chip(), FrameLoader(counts, y, batch_size=100))
    assert copies.shapes and all(s[0] < T for s in copies.shapes), copies.shapes  # never all T steps at once
    block = counts[:128].transpose(0, 1)
    with torch.no_grad():
        chunked = nonideal._block_outputs(chip(), block)
        one_call = chip()(block.float())[0]
        monkeypatch.setattr(nonideal, "time_chunk", lambda _model, x_seq: x_seq.shape[0])  # one call over all T
        floats = accuracy(chip(), Batches(counts.float(), y, 100))
    assert torch.equal(chunked, one_call)
    assert got == floats and 30 < got <= 100


@pytest.mark.slow
def test_noise_aware_finetuning_recovers_accuracy_under_faults():
    model, test = trained_mlp(steps=40)
    train = Batches(*spike_patterns(512, seed=1), 64)
    cfg = NonIdealConfig(sigma_rel=0.3, stuck_on_rate=0.03, stuck_off_rate=0.03)
    before = evaluate_nonideal(model, test, cfg, chips=16, seed=100)
    tuned = noise_aware_finetune(model, train, cfg, epochs=20, lr=0.005)
    control = noise_aware_finetune(model, train, NonIdealConfig(), epochs=20, lr=0.005)  # same training, no noise
    after = evaluate_nonideal(tuned, test, cfg, chips=16, seed=100)
    ctrl = evaluate_nonideal(control, test, cfg, chips=16, seed=100)
    # the same 16 chips for all three: fine-tuning gained 2.3–3.1 points over the model and 1.5–2.6 over the
    # control for chip seeds 100, 200, 300 (paired t 2.0–3.7); 8 chips left the gain within the chips' spread
    assert after["mean"] > before["mean"] + 1 and after["mean"] > ctrl["mean"] + 1, (before, after, ctrl)
    assert math.isfinite(after["ideal"])


# ---------------------------------------------------------------------------------------------- recurrent layers
def recurrent_net(connectivity: str) -> Sequential:
    """40 → RLIF(12) → 5: its feedback weights strong enough to change what the layer fires."""
    torch.manual_seed(0)
    net = Sequential(Linear(40, 12), RLIF(12, beta=0.8, v_th=0.5, connectivity=connectivity), Linear(12, 5),
                     LIF(beta=0.8, v_th=0.5))
    with torch.no_grad():
        net[1].recurrent.weight.copy_(torch.randn_like(net[1].recurrent.weight))
    return net


@pytest.mark.parametrize("connectivity", ["dense", "diagonal"])
def test_recurrent_weights_are_programmed_onto_cells_like_the_feed_forward_ones(connectivity):
    # a diagonal recurrence (DiagonalRecurrent, one weight per neuron) was skipped: its weights stayed exact
    net = recurrent_net(connectivity)
    assert crossbar_layers(net) == ["0", "1.recurrent", "2"]
    cfg = NonIdealConfig(levels=3)  # quantisation only: deterministic, three levels per cell of a pair
    chip = apply_nonidealities(net, cfg, seed=0)
    w = net[1].recurrent.weight.detach()
    torch.testing.assert_close(chip[1].recurrent.weight, effective_weight(w, cfg), rtol=1e-6, atol=0)
    assert not torch.equal(chip[1].recurrent.weight, w)
    halves = chip[1].recurrent.weight / float(w.abs().max()) * 2  # each weight is 0, ±w_max/2 or ±w_max
    torch.testing.assert_close(halves, halves.round(), rtol=0, atol=1e-5)
    varied = apply_nonidealities(net, NonIdealConfig(levels=3, sigma_rel=0.1), seed=0)
    assert not torch.equal(varied[1].recurrent.weight, chip[1].recurrent.weight)  # variation reaches them too
    x = spike_patterns(16, seed=2)[0].transpose(0, 1)
    assert not torch.equal(chip(x)[0], apply_nonidealities(net, cfg, layers=["0", "2"])(x)[0])
    with pytest.raises(ValueError, match=r"not Linear/Conv2d modules or recurrences.*'1.recurrent'"):
        apply_nonidealities(net, cfg, layers=["1"])


def test_a_diagonal_recurrence_reads_each_neurons_own_pair_of_cells_with_read_noise_and_adc():
    sigma = 0.2
    w = torch.tensor([0.5, -1.0, 0.25, 0.0], dtype=torch.float64)
    noisy = NonIdealConfig(read_noise_rel=sigma)
    gp, gn, scale = program_conductances(w, noisy)
    diag = CrossbarDiagonal(gp, gn, scale, None, noisy, torch.Generator().manual_seed(0))
    s = torch.tensor([1.0, 1.0, 0.0, 1.0], dtype=torch.float64)
    ys = diag(s.expand(20000, 4))
    torch.testing.assert_close(ys.mean(0), s * w, rtol=0, atol=0.01)
    expected = sigma * scale * torch.sqrt(s * (gp**2 + gn**2))  # one row per column: that cell's noise alone
    torch.testing.assert_close(ys.std(0), expected, rtol=0.03, atol=1e-12)
    assert float(ys[:, 2].abs().max()) == 0  # a neuron that did not fire reads nothing
    # a 2-bit ADC over half the column's range: a firing neuron's current (the whole range) clips at half of it
    clipped = NonIdealConfig(adc_bits=2, adc_range_frac=0.5)
    diag = CrossbarDiagonal(gp, gn, scale, None, clipped, None)
    torch.testing.assert_close(diag(s), s * (gp - gn) / 2 * scale)


def test_a_chip_with_adc_runs_a_recurrent_layer_with_its_graph_without_warnings():
    # the ADC read the fed-back spikes' peak with float(), which warns for a tensor that requires grad: here the
    # spikes of a layer whose input weights stayed exact (and trainable)
    import warnings

    net = recurrent_net("dense")
    chip = apply_nonidealities(net, NonIdealConfig(adc_bits=5), seed=0, layers=["1.recurrent"])
    assert isinstance(chip[1].recurrent, CrossbarLinear) and chip[0].weight.requires_grad
    x = spike_patterns(8, seed=2)[0].transpose(0, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, _ = chip(x)
    out.sum().backward()
    assert net[0].weight.grad is None and chip[0].weight.grad is not None


@pytest.mark.parametrize("connectivity", ["dense", "diagonal"])
def test_noise_aware_finetuning_perturbs_the_recurrent_weights_too(connectivity):
    net = recurrent_net(connectivity)
    train = Batches(*spike_patterns(64, seed=1), 32)
    cfg = NonIdealConfig(levels=3)  # deterministic: the runs differ only in which weights are quantised
    tuned = noise_aware_finetune(net, train, cfg, epochs=1, lr=0.01)
    skipped = noise_aware_finetune(net, train, cfg, epochs=1, lr=0.01, layers=["0", "2"])
    named = noise_aware_finetune(net, train, cfg, epochs=1, lr=0.01, layers=["0", "1.recurrent", "2"])
    assert not torch.equal(tuned[0].weight, skipped[0].weight)  # training saw the quantised feedback
    for a, b in zip(tuned.parameters(), named.parameters(), strict=True):
        assert torch.equal(a, b)


def _stacked_net(n_in: int, n: int, *, batch_norm: bool = False, dtype=torch.float32) -> Sequential:
    """n_in → [BatchNorm1d] → RLIF(n) (dense, with a recurrent bias) → 5, its feedback weights smaller than its input
    weights (so each matrix's read-out scale is its own), the BatchNorm's statistics not the identity's."""
    torch.manual_seed(3)
    layers = [Flatten(), Dropout(0.2), Linear(n_in, n, bias=not batch_norm)]
    if batch_norm:
        layers.append(BatchNorm1d(n))
    layers += [RLIF(n, beta=0.8, v_th=0.5, bias=True), Linear(n, 5), LIF(beta=0.8, v_th=0.5)]
    net = Sequential(*layers).to(dtype).eval()
    with torch.no_grad():
        net[2].weight.mul_(4)
        rlif = net[4 if batch_norm else 3]
        rlif.recurrent.weight.copy_(0.3 * torch.randn_like(rlif.recurrent.weight))
        if batch_norm:
            net[3].running_mean.uniform_(-0.2, 0.2)
            net[3].running_var.uniform_(0.5, 2.0)
            net[3].weight.uniform_(0.5, 1.5)
            net[3].bias.uniform_(-0.1, 0.1)
    return net


@pytest.mark.parametrize("target", ["rram_neurosim", "rram_lsm40nm"])
def test_a_dense_recurrent_layer_is_tiled_as_the_energy_model_stacks_it(target):
    # the energy model stacks a recurrent layer's input and recurrent matrices on the rows of one matrix (the
    # columns are its neurons); the chips tiled them apart: for 100 inputs into 60 neurons on 128-row tiles, one
    # tile of 100 input rows and one of 60 recurrent rows, where the energy model's two tiles hold rows 0-127 (the
    # 100 inputs and the first 28 recurrent rows, converted together) and 128-159
    from hardware_models import analyze, load_spec
    from hardware_models.crossbar import _stack_amplitudes, map_crossbar
    from neurosim.export import to_nir
    from neurosim.hardware import nonideal_config_from_spec
    from neurosim.hardware.nonideal import CrossbarStackedFeedback, CrossbarStackedInput

    for n_in, n, batch_norm in ((100, 60, False), (40, 12, False), (700, 256, True), (256, 256, True)):
        net = _stacked_net(n_in, n, batch_norm=batch_norm)
        rlif = "4" if batch_norm else "3"
        facts = analyze(to_nir(net, (n_in,)))
        mapping = map_crossbar(facts, load_spec(target))
        layer = next(l for l in mapping.layers if l.target == f"{rlif}.lif")
        assert layer.synapses == ("2", f"{rlif}.recurrent") and (layer.rows, layer.columns) == (n_in + n, n)
        chip = apply_nonidealities(net, nonideal_config_from_spec(target, read_noise_rel=0.01), seed=0)
        inp, feedback = chip[2], chip.get_submodule(f"{rlif}.recurrent")
        assert isinstance(inp, CrossbarStackedInput) and isinstance(feedback, CrossbarStackedFeedback)
        assert inp.crossbar is feedback.crossbar and tuple(inp.crossbar.weight.shape) == (layer.columns, layer.rows)
        tiles = _tile_rows(inp.crossbar)
        assert len(tiles) == layer.row_tiles, (target, n_in, n)
        assert tiles == [list(range(i, min(i + layer.block_rows, layer.rows)))
                         for i in range(0, layer.rows, layer.block_rows)]
        # every tile is read by one side or the other: those of input rows alone at every step at once, the rest
        # (the shared one included) step by step with the fed-back spikes
        own = [[r for sl in side._own_tiles for r in range(sl.start, sl.stop)] for side in (inp, feedback)]
        assert own[0] + own[1] == list(range(layer.rows)) and all(r < n_in for r in own[0])
        if batch_norm:
            assert isinstance(chip[3], torch.nn.Identity)  # folded into the input weights, as the export folds it
        # each matrix's rows read at the amplitude the energy model charges them at ((a·V)²·G·t_read)
        amps = _stack_amplitudes(facts, layer)
        assert min(amps) < 1
        torch.testing.assert_close(inp.crossbar.row_amplitude.double(),
                                   torch.tensor(amps, dtype=torch.float64).repeat_interleave(torch.tensor([n_in, n])),
                                   rtol=1e-6, atol=0)
        x = (torch.rand(3, 2, n_in) < 0.3).float()
        assert chip(x)[0].shape == (3, 2, 5)


def test_a_stacked_recurrent_layer_converts_its_shared_tile_with_both_kinds_of_rows_by_hand():
    torch.manual_seed(7)
    n_in, n, bits, rows = 10, 6, 3, 7  # 16 stacked rows: tiles 0-6 (inputs), 7-13 (3 inputs, 4 recurrent), 14-15
    net = Sequential(Linear(n_in, n), RLIF(n, beta=0.8, v_th=0.5, bias=True)).double()
    with torch.no_grad():
        net[1].recurrent.weight.mul_(0.5)
        net[1].recurrent.bias.fill_(0.1)
    cfg = NonIdealConfig(levels=16, adc_bits=bits, tile_rows=rows)
    chip = apply_nonidealities(net, cfg, seed=0)
    w_in, w_rec = net[0].weight.detach(), net[1].recurrent.weight.detach()
    # each matrix keeps its own quantisation against its own largest weight (as the energy model programs them)
    torch.testing.assert_close(chip[0].weight, effective_weight(w_in, cfg), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(chip[1].recurrent.weight, effective_weight(w_rec, cfg), rtol=1e-12, atol=1e-12)
    # by hand: the matrices' cells side by side on the rows, the recurrent rows read at the amplitude of their
    # read-out scale over the input's (w_max_rec / w_max_in), every tile's columns converted over [0, Σ a·g]
    (gp_in, gn_in, s_in), (gp_rec, gn_rec, s_rec) = (program_conductances(w, cfg) for w in (w_in, w_rec))
    a = torch.cat([torch.ones(n_in, dtype=torch.float64), torch.full((n,), s_rec / s_in, dtype=torch.float64)])
    gp, gn = torch.cat([gp_in, gp_rec], 1) * a, torch.cat([gn_in, gn_rec], 1) * a

    def read(v, tiles):
        out = 0
        for sl in tiles:
            for g, sign in ((gp[:, sl], 1), (gn[:, sl], -1)):
                full = g.sum(1)
                step = full / (2**bits - 1)
                out = out + sign * s_in * torch.minimum(torch.round(v[..., sl] @ g.T / step) * step, full)
        return out

    x = (torch.rand(4, 3, n_in) < 0.5).double()
    s = (torch.rand(3, n) < 0.5).double()
    torch.testing.assert_close(chip[0](x), read(x, [slice(0, 7)]) + net[0].bias, rtol=1e-12, atol=1e-12)
    for t in range(4):  # the feedback reads step t's inputs of the shared tile with the spikes it is given
        expected = read(torch.cat([x[t], s], 1), [slice(7, 14), slice(14, 16)]) + 0.1
        torch.testing.assert_close(chip[1].recurrent(s), expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(RuntimeError, match="feedback was read without its step's input rows: its input side"):
        chip[1].recurrent(s)  # a fifth step of a four-step call
    # the layer as a whole: its neurons fire as they do on those currents, step by step
    spikes, _ = chip(x)
    v, fed = torch.zeros(3, n, dtype=torch.float64), torch.zeros(3, n, dtype=torch.float64)
    for t in range(4):
        h = 0.8 * v + read(x[t], [slice(0, 7)]) + net[0].bias + read(torch.cat([x[t], fed], 1),
                                                                    [slice(7, 14), slice(14, 16)]) + 0.1
        fed = (h >= 0.5).double()
        v = h - 0.5 * fed
        torch.testing.assert_close(spikes[t], fed, rtol=0, atol=0)


def test_a_stacked_recurrent_chip_with_an_exact_read_fires_as_the_model_and_folds_its_batch_norm():
    net = _stacked_net(100, 60, batch_norm=True, dtype=torch.float64)
    x = (torch.rand(12, 4, 100, generator=torch.Generator().manual_seed(1)) < 0.3).double()
    ideal, _ = net(x)
    fine = apply_nonidealities(net, NonIdealConfig(adc_bits=24), seed=0)  # read noise off, 24-bit ADC: exact
    assert torch.equal(fine(x)[0], ideal)
    # programming effects alone: the folded weights are quantised (the chip holds W·γ/σ, not W and a digital BN)
    from neurosim.export.nir import _fold_bn

    cfg = NonIdealConfig(levels=8)
    chip = apply_nonidealities(net, cfg, seed=0)
    folded, bias = _fold_bn(net[2].weight, None, net[3], "3")
    assert isinstance(chip[3], torch.nn.Identity)
    torch.testing.assert_close(chip[2].weight, effective_weight(folded, cfg), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(chip[2].bias, bias, rtol=0, atol=0)
    with_adc = apply_nonidealities(net, dataclasses.replace(cfg, adc_bits=24), seed=0)
    torch.testing.assert_close(with_adc[2].weight, chip[2].weight, rtol=1e-12, atol=1e-12)
    assert torch.equal(with_adc(x)[0], chip(x)[0])


@pytest.mark.parametrize("nesting", ["rlif", "linear", "both"])
def test_a_recurrent_layer_in_nested_sequentials_is_stacked_as_the_energy_model_stacks_it(nesting):
    # the export runs nested Sequentials in order, so the energy model stacks the Linear and the recurrent matrix
    # whichever Sequential each sits in; the chips stacked them only as siblings of one Sequential, and tiled a
    # Linear in the outer Sequential and an RLIF in an inner one apart (other tiles than those costed)
    from hardware_models import analyze, load_spec
    from hardware_models.crossbar import map_crossbar
    from neurosim.export import to_nir
    from neurosim.hardware import nonideal_config_from_spec
    from neurosim.hardware.nonideal import CrossbarStackedFeedback, CrossbarStackedInput

    flat = _stacked_net(100, 60)
    front, rlif, back = list(flat[:3]), flat[3], list(flat[4:])
    if nesting == "rlif":
        net, rec = Sequential(*front, Sequential(rlif), *back), "3.0.recurrent"
    elif nesting == "linear":
        net, rec = Sequential(Sequential(*front), rlif, *back), "1.recurrent"
    else:
        net, rec = Sequential(Sequential(front[0], Sequential(*front[1:])), Sequential(rlif, *back)), "1.0.recurrent"
    net.eval()
    mapping = map_crossbar(analyze(to_nir(net, (100,))), load_spec("rram_neurosim"))
    layer = next(l for l in mapping.layers if l.target == rec.replace("recurrent", "lif"))
    assert len(layer.synapses) == 2 and (layer.rows, layer.columns) == (160, 60)  # the energy model: one matrix
    cfg = nonideal_config_from_spec("rram_neurosim", read_noise_rel=0.01)
    chip = apply_nonidealities(net, cfg, seed=0)
    feedback = chip.get_submodule(rec)
    assert isinstance(feedback, CrossbarStackedFeedback)
    inp = chip.get_submodule(layer.synapses[0])
    assert isinstance(inp, CrossbarStackedInput) and inp.crossbar is feedback.crossbar
    assert len(_tile_rows(inp.crossbar)) == layer.row_tiles
    # the same chip as the flat model's: the same cells, tiles and read noise, the same spikes
    x = (torch.rand(6, 3, 100, generator=torch.Generator().manual_seed(2)) < 0.3).float()
    assert torch.equal(chip(x)[0], apply_nonidealities(flat, cfg, seed=0)(x)[0])


def test_a_batch_norm_the_export_does_not_fold_stays_digital_between_unstacked_matrices():
    # Linear · Flatten · BatchNorm1d · RLIF: the export refuses to fold the BatchNorm (it follows a Flatten), and the
    # energy model has no such chip to cost; the chips folded it into the input weights and stacked those on the
    # feedback's rows all the same. Now the BatchNorm stays digital, a step between the two matrices, each on its own
    from neurosim.export import NIRExportError, to_nir

    flat = _stacked_net(100, 60, batch_norm=True)
    net = Sequential(*flat[:3], Flatten(), *flat[3:]).eval()
    with pytest.raises(NIRExportError, match="follows another kind of layer"):
        to_nir(net, (100,))
    cfg = NonIdealConfig(levels=16, read_noise_rel=0.01)
    chip = apply_nonidealities(net, cfg, seed=0)
    assert isinstance(chip[4], BatchNorm1d)
    assert type(chip[2]) is CrossbarLinear and type(chip[5].recurrent) is CrossbarLinear
    torch.testing.assert_close(chip[2].weight, effective_weight(net[2].weight.detach(), cfg), rtol=1e-6, atol=1e-7)
    assert chip((torch.rand(3, 2, 100) < 0.3).float())[0].shape == (3, 2, 5)

def test_a_batch_norm_past_torch_dropout_is_folded_and_stacked_as_past_neurosim_dropout():
    # Linear · torch Dropout · BatchNorm1d · RLIF: the chip stacked a recurrent layer's matrices past torch's Dropout
    # but folded no BatchNorm past it (only past neurosim's), so it kept this BatchNorm digital and, across it, the
    # two matrices apart. Both identities at inference: the chip is now the one without the Dropout (which the export
    # refuses; the graph it does export of that model folds and stacks)
    from neurosim.export import NIRExportError, to_nir
    from neurosim.hardware.nonideal import CrossbarStackedFeedback, CrossbarStackedInput

    ref = _stacked_net(100, 60, batch_norm=True)
    net = Sequential(*ref[:3], torch.nn.Dropout(0.2), *ref[3:]).eval()
    with pytest.raises(NIRExportError, match="no NIR equivalent"):
        to_nir(net, (100,))
    cfg = NonIdealConfig(levels=16, read_noise_rel=0.01)
    chip, chip_ref = apply_nonidealities(net, cfg, seed=0), apply_nonidealities(ref, cfg, seed=0)
    assert isinstance(chip[4], torch.nn.Identity)  # the BatchNorm folded
    assert type(chip[2]) is CrossbarStackedInput and type(chip[5].recurrent) is CrossbarStackedFeedback
    torch.testing.assert_close(chip[2].weight, chip_ref[2].weight, rtol=0, atol=0)
    x = (torch.rand(4, 3, 100, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    assert torch.equal(chip(x)[0], chip_ref(x)[0])

# ------------------------------------------------------------------------------------------------ BatchNorm folded
def _bn_net(dtype=torch.float32) -> Sequential:
    """Conv 16→8 k3 (no bias, 144 unrolled rows: two 128-row tiles) · BatchNorm2d · LIF · SumPool 2 · Flatten ·
    Linear 32→20 · Dropout · BatchNorm1d · LIF · Linear 20→3 · LIF, in eval mode, on [T, B, 16, 6, 6]; the
    BatchNorms' statistics and affine parameters far from the identity's, so that folding them changes each column's
    range (σ² from 0.2 to 3: a column's folded weights up to ~4x its neighbour's)."""
    torch.manual_seed(4)
    net = Sequential(Conv2d(16, 8, 3, bias=False), BatchNorm2d(8), LIF(beta=0.8, v_th=0.5), SumPool2d(2), Flatten(),
                     Linear(32, 20), Dropout(0.2), BatchNorm1d(20), LIF(beta=0.8, v_th=0.5), Linear(20, 3),
                     LIF(beta=0.8, v_th=0.5)).to(dtype).eval()
    with torch.no_grad():
        for bn in (net[1], net[7]):
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.2, 3.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.1, 0.1)
    return net


def _bn_input(T: int = 5, B: int = 3, dtype=torch.float32) -> torch.Tensor:
    return (torch.rand(T, B, 16, 6, 6, generator=torch.Generator().manual_seed(8)) < 0.3).to(dtype)


@pytest.mark.parametrize("target", ["rram_neurosim", "rram_lsm40nm"])
def test_a_batch_norm_is_folded_into_the_cells_the_energy_model_costs(target):
    # the energy model costs the export's folded weights W·γ/σ and bias; the chips programmed W (against its own
    # largest weight, other codes in every column) and kept the BatchNorm digital after the read-out
    import numpy as np

    from hardware_models import analyze, load_spec
    from hardware_models.crossbar import cell_conductances, map_crossbar
    from neurosim.export import to_nir
    from neurosim.hardware import nonideal_config_from_spec

    net = _bn_net(torch.float64)
    spec = load_spec(target)
    graph = to_nir(net, (16, 6, 6))
    mapping = map_crossbar(analyze(graph), spec)
    cfg = nonideal_config_from_spec(target, read_noise_rel=0.01)
    chip = apply_nonidealities(net, cfg, seed=0)
    for name, bn, kind in (("0", "1", CrossbarConv2d), ("5", "7", CrossbarLinear)):
        layer = next(l for l in mapping.layers if l.synapses == (name,))
        xbar = chip.get_submodule(name)
        assert isinstance(xbar, kind) and isinstance(chip.get_submodule(bn), torch.nn.Identity)
        assert xbar._w_shape[0] == layer.columns and len(_tile_rows(xbar)) == layer.row_tiles
        assert _tile_rows(xbar) == [list(range(i, min(i + layer.block_rows, layer.rows)))
                                    for i in range(0, layer.rows, layer.block_rows)]
        # the cells: those hardware_models.crossbar programs from the graph's (folded) weights, and its bias
        node = graph.nodes[name]
        hp, hn = cell_conductances(node.weight, int(spec.si("array.weight_bits")), int(spec.si("array.cell_bits")),
                                   g_on_s=1.0, g_off_s=cfg.g_off)
        np.testing.assert_allclose(xbar.g_pos.numpy(), np.moveaxis(hp, -1, 0), rtol=1e-12)
        np.testing.assert_allclose(xbar.g_neg.numpy(), np.moveaxis(hn, -1, 0), rtol=1e-12)
        np.testing.assert_allclose(xbar.bias.numpy(), node.bias, rtol=1e-12)
    # the layer after them, without a BatchNorm, holds its own weights' cells
    plain = graph.nodes["9"]
    hp, _ = cell_conductances(plain.weight, int(spec.si("array.weight_bits")), int(spec.si("array.cell_bits")),
                              g_on_s=1.0, g_off_s=cfg.g_off)
    np.testing.assert_allclose(chip[9].g_pos.numpy(), np.moveaxis(hp, -1, 0), rtol=1e-12)
    assert chip(_bn_input(dtype=torch.float64))[0].shape == (5, 3, 3)


def test_a_folded_chip_read_almost_exactly_computes_the_float_model():
    from neurosim.export.nir import _fold_bn

    net = _bn_net(torch.float64)
    x = _bn_input(dtype=torch.float64)
    with torch.no_grad():
        ideal, _ = net(x)
    assert 0 < float(ideal.mean()) < 1
    fine = NonIdealConfig(levels=2**20, adc_bits=24)  # no noise, ~exact cells, a 24-bit ADC
    chip = apply_nonidealities(net, fine, seed=0)
    assert isinstance(chip[1], torch.nn.Identity) and isinstance(chip[7], torch.nn.Identity)
    assert torch.equal(chip(x)[0], ideal)
    with torch.no_grad():  # the currents into the first neurons: the conv and its BatchNorm in one read
        torch.testing.assert_close(chip[0](x), net[1](net[0](x)), rtol=0, atol=1e-5)
    # programming effects alone: the layer (its own class, a bias added) holds the quantised folded weights
    cfg = NonIdealConfig(levels=8)
    programmed = apply_nonidealities(net, cfg, seed=0)
    folded, bias = _fold_bn(net[0].weight, None, net[1], "1")
    assert type(programmed[0]) is Conv2d and isinstance(programmed[1], torch.nn.Identity)
    torch.testing.assert_close(programmed[0].weight, effective_weight(folded, cfg), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(programmed[0].bias, bias, rtol=0, atol=0)
    assert torch.equal(apply_nonidealities(net, dataclasses.replace(fine, adc_bits=None), seed=0)(x)[0], ideal)


def test_folding_changes_only_the_folded_layers_and_keeps_every_other_cell_and_draw():
    # a model without BatchNorm is programmed as before: the BatchNorms' model differs from it in the folded layers
    # alone (the other layers' cells, faults, variation and read noise are drawn as without them), and a BatchNorm
    # the export does not fold (after a Flatten; without running statistics; before an unmapped layer) stays
    # digital after weights programmed unfolded
    net = _bn_net()
    bare = copy.deepcopy(net)
    bare[1], bare[7] = torch.nn.Identity(), torch.nn.Identity()
    cfg = NonIdealConfig(levels=16, sigma_rel=0.05, stuck_on_rate=0.01, stuck_off_rate=0.01, read_noise_rel=0.02,
                         adc_bits=6, tile_rows=64)
    chip, chip_bare = apply_nonidealities(net, cfg, seed=2), apply_nonidealities(bare, cfg, seed=2)
    assert not torch.equal(chip[0].g_pos, chip_bare[0].g_pos) and not torch.equal(chip[5].g_pos, chip_bare[5].g_pos)
    assert torch.equal(chip[9].g_pos, chip_bare[9].g_pos) and torch.equal(chip[9].g_neg, chip_bare[9].g_neg)
    spikes = (torch.rand(5, 3, 20, generator=torch.Generator().manual_seed(0)) < 0.4).float()
    assert torch.equal(chip[9](spikes), chip_bare[9](spikes))  # the same read noise too
    for kept in ("flatten", "no_stats", "unmapped"):
        other = copy.deepcopy(net)
        if kept == "flatten":
            other[6] = Flatten()  # Linear · Flatten · BatchNorm1d: the export refuses to fold it
        elif kept == "no_stats":
            other[7].running_mean = other[7].running_var = None
        layers = ["0", "9"] if kept == "unmapped" else None
        got = apply_nonidealities(other, cfg, seed=2, layers=layers)
        assert isinstance(got[7], torch.nn.BatchNorm1d) and not isinstance(got[1], torch.nn.BatchNorm2d)
        if kept == "unmapped":
            assert type(got[5]) is Linear and torch.equal(got[5].weight, net[5].weight)
        else:
            assert torch.equal(got[5].g_pos, chip_bare[5].g_pos) and torch.equal(got[9].g_pos, chip_bare[9].g_pos)
        assert torch.equal(got[0].g_pos, chip[0].g_pos)


def test_noise_aware_finetuning_perturbs_the_folded_weights_and_trains_the_unfolded_ones():
    # the chip programs W·k (k = γ/√(σ² + ε)); fine-tuning drew its perturbations on W, against W's own largest
    # weight: another quantisation than the chip's in every column whose k is not the layer's mean
    from neurosim.export.nir import _fold_bn

    net = _bn_net()
    x = torch.stack([_bn_input(T=4, B=8)[:, i] for i in range(8)])  # [N, T, ...]
    train = Batches(x, torch.arange(8) % 3, batch_size=8)
    cfg = NonIdealConfig(levels=5)  # deterministic: every draw is the quantisation alone
    seen = {}

    def record(name):
        def hook(module, args):
            seen.setdefault(name, module.weight.detach().clone())
        return hook

    for name in ("0", "5", "9"):
        net.get_submodule(name).register_forward_pre_hook(record(name))
    tuned = noise_aware_finetune(net, train, cfg, epochs=1, lr=0.01)
    for name, bn in (("0", "1"), ("5", "7")):
        w, norm = net.get_submodule(name).weight.detach(), net.get_submodule(bn)
        k = (norm.weight / torch.sqrt(norm.running_var + norm.eps)).detach().reshape(-1, *[1] * (w.dim() - 1))
        chip = effective_weight(_fold_bn(w, None, norm, bn)[0], cfg)
        torch.testing.assert_close(seen[name] * k, chip, rtol=1e-5, atol=1e-6)  # with k, the chip's weights
        assert not torch.allclose(seen[name], effective_weight(w, cfg), rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(seen["9"], effective_weight(net[9].weight.detach(), cfg), rtol=0, atol=0)
    for a, b in ((tuned[0].weight, net[0].weight), (tuned[1].weight, net[1].weight), (tuned[7].bias, net[7].bias)):
        assert not torch.equal(a, b)  # the gradient reached the unfolded weights and the BatchNorms' parameters
    assert isinstance(tuned[1], torch.nn.BatchNorm2d) and isinstance(tuned[7], torch.nn.BatchNorm1d)

# ------------------------------------------------------------------------------------------ current-based layers
def cuba_net() -> Sequential:
    """40 → CubaLIF(12) → 5 → CubaLIF(5), weights strong enough for both layers to fire."""
    from neurosim.nn import CubaLIF

    torch.manual_seed(0)
    net = Sequential(Linear(40, 12), CubaLIF(alpha=0.6, beta=0.8, v_th=0.5), Linear(12, 5),
                     CubaLIF(alpha=0.5, beta=0.8, v_th=0.3))
    with torch.no_grad():
        net[0].weight.mul_(3)
        net[2].weight.mul_(3)
    return net


def test_a_cuba_chip_programs_the_weights_and_runs_the_same_neurons():
    """A CubaLIF layer holds no weight (α and β are per-layer buffers): only the Linear layers go onto crossbars,
    and the chip is the model with the programmed weights, its currents and membranes computed as the model's."""
    import warnings

    from torch.func import functional_call

    net = cuba_net()
    assert crossbar_layers(net) == ["0", "2"]
    x = spike_patterns(16, seed=2)[0].transpose(0, 1)
    with torch.no_grad():
        s, state = net(x)
        ideal_out, ideal_state = apply_nonidealities(net, NonIdealConfig(), seed=3)(x)
    assert 0 < float(s.mean()) < 1
    assert torch.equal(ideal_out, s) and torch.equal(ideal_state["1"].i, state["1"].i)

    cfg = NonIdealConfig(levels=3)  # deterministic: each weight 0 or ±w_max/2 or ±w_max of its layer
    chip = apply_nonidealities(net, cfg, seed=0)
    programmed = {f"{n}.weight": effective_weight(net.get_submodule(n).weight.detach(), cfg) for n in ("0", "2")}
    for name, w in programmed.items():
        torch.testing.assert_close(chip.get_submodule(name[:-7]).weight, w, rtol=1e-6, atol=0)
        assert not torch.equal(w, net.get_submodule(name[:-7]).weight)
    assert all(torch.equal(a, b) for a, b in zip(chip.buffers(), net.buffers(), strict=True))  # α, β, thresholds
    with torch.no_grad():
        expected, expected_state = functional_call(net, programmed, (x,))
        got, got_state = chip(x)
    assert not torch.equal(expected, s)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(got_state["1"].i, expected_state["1"].i)
    with warnings.catch_warnings():  # read noise and an ADC on the spikes a CubaLIF sends on, in a graph
        warnings.simplefilter("error")
        noisy = apply_nonidealities(net, NonIdealConfig(adc_bits=5, read_noise_rel=0.1), seed=1, layers=["2"])
        out, _ = noisy(x)
    assert isinstance(noisy[2], CrossbarLinear) and out.shape == s.shape
    out.sum().backward()
    assert noisy[0].weight.grad is not None and net[0].weight.grad is None


# ------------------------------------------------------------------------------------------------ bit slicing
def test_sliced_cells_by_hand_and_as_the_energy_model_maps_them():
    import numpy as np

    from hardware_models.crossbar import cell_conductances

    # 4 magnitude codes (2 bits) on 1-bit cells, G_off = 1/2: 1.0 -> code 3 = digits (1, 1) on the + side; -1/3 ->
    # code 1 = digits (1, 0) on the - side; cells at G_off + (1 - G_off)·digit; scale = w_max·1 / (3·(1 - G_off))
    cfg = NonIdealConfig(on_off_ratio=2.0, levels=4, cell_bits=1)
    assert cfg.slices == 2
    w = torch.tensor([1.0, -1 / 3, 0.0], dtype=torch.float64)
    gp, gn, scale = program_conductances(w, cfg)
    torch.testing.assert_close(gp, torch.tensor([[1.0, 0.5, 0.5], [1.0, 0.5, 0.5]], dtype=torch.float64))
    torch.testing.assert_close(gn, torch.tensor([[0.5, 1.0, 0.5], [0.5, 0.5, 0.5]], dtype=torch.float64))
    assert scale == pytest.approx(2 / 3)
    torch.testing.assert_close(effective_weight(w, cfg), w)  # Σ_k 2^k (g⁺_k − g⁻_k)·scale: (0.5 + 2·0.5)·2/3 = 1
    # the same cells as hardware_models.crossbar programs them for the energy (8-bit weights, 1- and 2-bit cells)
    wr = torch.randn(6, 9, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for cell_bits, slices in ((1, 7), (2, 4), (4, 2)):
        c = NonIdealConfig(on_off_ratio=17.0, levels=128, cell_bits=cell_bits)
        gp, gn, _ = program_conductances(wr, c)
        hp, hn = cell_conductances(wr.numpy(), 8, cell_bits, g_on_s=1.0, g_off_s=1 / 17)
        assert gp.shape == (slices, 6, 9)
        np.testing.assert_allclose(gp.numpy(), np.moveaxis(hp, -1, 0), rtol=1e-12)
        np.testing.assert_allclose(gn.numpy(), np.moveaxis(hn, -1, 0), rtol=1e-12)
        # the sliced weight is the 128-level quantised weight, as one 128-level cell per side holds it
        torch.testing.assert_close(effective_weight(wr, c), effective_weight(wr, NonIdealConfig(levels=128)))


def test_each_sliced_cell_fails_and_varies_on_its_own():
    w = torch.randn(300, 200, generator=torch.Generator().manual_seed(1))
    cfg = NonIdealConfig(levels=128, cell_bits=1, stuck_on_rate=0.05)
    gp, gn, scale = program_conductances(w, cfg, torch.Generator().manual_seed(0))
    ideal_p, ideal_n, _ = program_conductances(w, NonIdealConfig(levels=128, cell_bits=1))
    cells = torch.cat([gp.flatten(), gn.flatten()])
    ideal = torch.cat([ideal_p.flatten(), ideal_n.flatten()])
    assert cells.numel() == 14 * w.numel()  # 7 cells per side: 5 % of all of them stuck, not of 2 per weight
    assert ((cells == 1.0) & (ideal != 1.0)).float().mean().item() == pytest.approx(0.05 * (ideal != 1.0).float()
                                                                                      .mean().item(), abs=0.002)
    # a stuck-ON cell of slice k moves its weight by 2^k codes (the cell was at G_off), never by the whole range
    code = (effective_weight(w, cfg, torch.Generator().manual_seed(0)) - effective_weight(w, NonIdealConfig(
        levels=128))) / (float(w.abs().max()) / 127)
    one_fault = (gp != ideal_p).sum(0) + (gn != ideal_n).sum(0) == 1
    moved = code[one_fault].abs().round()
    torch.testing.assert_close(code[one_fault].abs(), moved, rtol=0, atol=1e-3)
    assert set(moved.long().tolist()) <= {1, 2, 4, 8, 16, 32, 64}
    # variation: every cell its own draw, relative to its own conductance
    v = NonIdealConfig(levels=128, cell_bits=1, sigma_rel=0.1)
    gp, _, _ = program_conductances(w, v, torch.Generator().manual_seed(2))
    assert (gp / ideal_p - 1).std().item() == pytest.approx(0.1, rel=0.02)


def test_one_cell_per_side_sliced_or_not_is_the_same_chip():
    # rram_lsm40nm: 16 magnitude codes on one 4-bit cell per side: slicing changes nothing, draws included
    net = small_conv_net()
    for extra in ({"sigma_rel": 0.1, "stuck_on_rate": 0.02, "stuck_off_rate": 0.02}, {"read_noise_rel": 0.05,
                                                                                       "adc_bits": 4}):
        one = apply_nonidealities(net, NonIdealConfig(levels=16, **extra), seed=3)
        sliced = apply_nonidealities(net, NonIdealConfig(levels=16, cell_bits=4, **extra), seed=3)
        x = (torch.rand(4, 2, 2, 6, 6, generator=torch.Generator().manual_seed(0)) < 0.3).float()
        torch.testing.assert_close(sliced[0].weight, one[0].weight)
        torch.testing.assert_close(sliced[0](x), one[0](x), rtol=1e-5, atol=1e-5)


def test_a_sliced_crossbar_converts_every_slice_column_on_its_own():
    torch.manual_seed(4)
    w = torch.randn(5, 20, dtype=torch.float64)
    x = (torch.rand(30, 20) < 0.4).double()
    exact = NonIdealConfig(levels=8, cell_bits=1, tile_rows=7)
    gp, gn, scale = program_conductances(w, exact)
    lin = CrossbarLinear(gp, gn, scale, None, exact, None)
    assert gp.shape == (3, 5, 20) and len(lin._tiles()) == 3
    torch.testing.assert_close(lin(x), x @ lin.weight.T, rtol=1e-12, atol=1e-12)
    # by hand: per tile and slice, each column converted over [0, Σ_rows g] in 2^3 − 1 steps, shifted by 2^k
    bits = 3
    cfg = NonIdealConfig(levels=8, cell_bits=1, tile_rows=7, adc_bits=bits)
    adc = CrossbarLinear(gp, gn, scale, None, cfg, None)
    ref = 0
    for sl in (slice(0, 7), slice(7, 14), slice(14, 20)):
        for k in range(3):
            for g, sign in ((gp[k][:, sl], 1), (gn[k][:, sl], -1)):
                step = g.sum(1) / (2**bits - 1)
                ref = ref + sign * 2**k * scale * torch.minimum(torch.round(x[:, sl] @ g.T / step) * step, g.sum(1))
    torch.testing.assert_close(adc(x), ref, rtol=1e-12, atol=1e-12)
    conv_w = torch.randn(3, 2, 3, 3, dtype=torch.float64)
    gp, gn, scale = program_conductances(conv_w, cfg)
    conv = CrossbarConv2d(gp, gn, scale, None, NonIdealConfig(levels=8, cell_bits=1, tile_rows=9), None,
                          stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1)
    xc = (torch.rand(2, 2, 5, 5) < 0.5).double()
    assert len(conv._tiles()) == 2  # one input channel (9 rows) per tile, the slice dimension aside
    torch.testing.assert_close(conv(xc), F.conv2d(xc, conv.weight, None, 1, 1), rtol=1e-12, atol=1e-12)


def test_sliced_chips_run_every_layer_kind_and_finetune():
    for connectivity in ("dense", "diagonal"):
        torch.manual_seed(0)
        net = Sequential(Linear(6, 5), RLIF(5, beta=0.8, connectivity=connectivity))
        cfg = NonIdealConfig(levels=16, cell_bits=1, sigma_rel=0.05, read_noise_rel=0.02, adc_bits=5)
        chip = apply_nonidealities(net, cfg, seed=1)
        out, _ = chip((torch.rand(4, 3, 6) < 0.5).float())
        assert out.shape == (4, 3, 5)
    model, test = trained_mlp(steps=20)
    tuned = noise_aware_finetune(model, test, NonIdealConfig(levels=16, cell_bits=2, stuck_on_rate=0.02), epochs=1)
    assert tuned[0].weight.shape == model[0].weight.shape
    with pytest.raises(ValueError, match="cell_bits: 1 slices the quantised magnitude code over cells, but levels is "
                                         "None"):
        NonIdealConfig(cell_bits=1)
    with pytest.raises(ValueError, match="cell_bits: must be an integer in 1..16"):
        NonIdealConfig(levels=8, cell_bits=0)


def test_reads_without_a_graph_run_in_place_with_the_same_values():
    # the reads of inputs that carry no graph run in place (faster); with a graph they may not: both give one value
    net = small_conv_net()
    cfg = NonIdealConfig(levels=16, cell_bits=2, sigma_rel=0.05, read_noise_rel=0.1, adc_bits=4)
    x = (torch.rand(3, 2, 2, 6, 6, generator=torch.Generator().manual_seed(0)) < 0.4).float()  # spikes
    plain = apply_nonidealities(net, cfg, seed=2)[0](x)
    graph = apply_nonidealities(net, cfg, seed=2)[0](x.requires_grad_())
    assert graph.requires_grad and not plain.requires_grad
    assert torch.equal(plain, graph.detach())


# ------------------------------------------------------------------------------------------------ parametrized weights
def _strided_conv_net() -> Sequential:
    """Conv 2→4 k3 stride 2 padding 1 (6×6 → 3×3) · LIF · Flatten · Linear 36→3 · LIF."""
    torch.manual_seed(5)
    return Sequential(Conv2d(2, 4, 3, stride=2, padding=1), LIF(beta=0.8, v_th=0.5), Flatten(), Linear(36, 3),
                      LIF(beta=0.8, v_th=0.5)).eval()


@pytest.mark.parametrize("norm", ["weight_norm", "spectral_norm"])
@pytest.mark.parametrize("cfg", [NonIdealConfig(levels=16, sigma_rel=0.05),
                                 NonIdealConfig(levels=16, sigma_rel=0.05, read_noise_rel=0.02, adc_bits=5)],
                         ids=["programming", "read"])
def test_a_parametrized_conv_is_programmed_as_the_plain_conv_of_its_current_weights(norm, cfg):
    # a Conv2d (and a Linear) with a weight parametrization were rebuilt as an nn.Linear of the conv's weight, which
    # failed on the conv's 4-d weight; the chip now holds the module of its own class, stride and padding included,
    # with the weight's current values: the same chip as the plain model's of those weights
    net = _strided_conv_net()
    plain = copy.deepcopy(net)
    for i in (0, 3):
        getattr(torch.nn.utils.parametrizations, norm)(net[i])
    with torch.no_grad():
        for i in (0, 3):
            plain[i].weight.copy_(net[i].eval().weight)  # the weight at inference: spectral_norm's u, v as they are
    net.train()  # (in training each read of a spectral_norm weight would take a power-iteration step first)
    chip, ref = apply_nonidealities(net, cfg, seed=4), apply_nonidealities(plain, cfg, seed=4)
    x = (torch.rand(3, 2, 2, 6, 6, generator=torch.Generator().manual_seed(6)) < 0.4).float()
    assert torch.equal(chip(x)[0], ref(x)[0])
    if not cfg.per_read:
        assert type(chip[0]) is Conv2d and (chip[0].stride, chip[0].padding) == ((2, 2), (1, 1))
        assert type(chip[3]) is Linear and torch.equal(chip[0].weight, ref[0].weight)
    else:
        assert type(chip[0]) is CrossbarConv2d and chip[0].stride == (2, 2)
    assert torch.nn.utils.parametrize.is_parametrized(net[0], "weight")  # the model keeps its parametrization
    assert net[0].weight.shape == (4, 2, 3, 3)


def test_noise_aware_finetuning_draws_a_parametrized_weight_as_the_plain_one_and_trains_its_parameters():
    # functional_call assigned the chip's weight through the parametrization (weight_norm's right_inverse wrote it
    # into the parameters, in place): autograd's "modified by an inplace operation"; the draw is now the last step of
    # the layer's own parametrizations, while fine-tuning
    torch.manual_seed(2)
    net = Sequential(Linear(6, 5), LIF(beta=0.8, v_th=0.5), Linear(5, 3), LIF(beta=0.8, v_th=0.5))
    plain = copy.deepcopy(net)
    torch.nn.utils.parametrizations.weight_norm(net[0])
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = (torch.rand(4, 8, 6, generator=torch.Generator().manual_seed(3)) < 0.5).float()
    batches = [(x, torch.arange(8) % 3)]
    cfg = NonIdealConfig(levels=4, sigma_rel=0.1)
    seen = []  # the first layer's output in each run's one forward pass (the copies it trains are its own)
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda m, i, o: seen.append(o.detach()) if isinstance(m, Linear) and m.in_features == 6 else None)
    try:
        tuned = noise_aware_finetune(net, batches, cfg, epochs=1, seed=5)
        ref = noise_aware_finetune(plain, batches, cfg, epochs=1, seed=5)
    finally:
        hook.remove()
    torch.testing.assert_close(seen[0], seen[1], rtol=1e-5, atol=1e-6)  # the same chip's weights in the forward
    assert not torch.equal(seen[0], F.linear(x, plain[0].weight, plain[0].bias))
    assert len(tuned[0].parametrizations.weight) == 1  # the model's own parametrization, the draw gone
    assert not torch.equal(tuned[0].parametrizations.weight.original1, before["0.parametrizations.weight.original1"])
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())  # the model itself unchanged
    assert tuned[0].weight.shape == ref[0].weight.shape


def test_noise_aware_finetuning_takes_one_spectral_norm_power_iteration_step_per_batch():
    # the drawn weight was read once for the draw and again in the forward (a recurrence's once per step), each read
    # in training mode a power-iteration step of spectral_norm's u, v: 2 steps per batch (T + 1 for the recurrence)
    # where training without noise takes one per read (and registering the draw took one more); the forward's weight
    # was W/σ of another step than the one drawn from. Now the batch's one step is taken where the weight is read for
    # the draw, and the forward reads it with the same u, v
    from neurosim.hardware import nonideal

    torch.manual_seed(2)
    net = Sequential(Linear(6, 5), RLIF(5, beta=0.8, v_th=0.5), Linear(5, 3), LIF(beta=0.8, v_th=0.5))
    for m in (net[0], net[1].recurrent):
        torch.nn.utils.parametrizations.spectral_norm(m)
    ref = copy.deepcopy(net).train()
    g = torch.Generator().manual_seed(3)
    batches = [((torch.rand(4, 8, 6, generator=g) < 0.5).float(), torch.arange(8) % 3) for _ in range(3)]
    drawn = []
    real = nonideal.effective_weight
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(nonideal, "effective_weight", lambda w, *a: drawn.append(w.clone()) or real(w, *a))
        tuned = noise_aware_finetune(net, batches, NonIdealConfig(levels=8), epochs=1, lr=0.0, grad_clip=None)
    assert len(drawn) == 3 * 3  # layers 0, 1.recurrent and 2, per batch
    for b in range(3):  # training without noise: one step per read, one read of each weight per batch here
        assert torch.equal(drawn[3 * b], ref[0].weight.detach())
        assert torch.equal(drawn[3 * b + 1], ref[1].recurrent.weight.detach())
    for m, r in ((tuned[0], ref[0]), (tuned[1].recurrent, ref[1].recurrent)):
        sn, sr = m.parametrizations.weight[0], r.parametrizations.weight[0]
        assert torch.equal(sn._u, sr._u) and torch.equal(sn._v, sr._v)


@pytest.mark.parametrize("cfg", [NonIdealConfig(levels=16, sigma_rel=0.1, stuck_on_rate=0.05),
                                 NonIdealConfig(levels=16, cell_bits=1, sigma_rel=0.1, stuck_on_rate=0.05,
                                                read_noise_rel=0.05, adc_bits=5, tile_rows=16)],
                         ids=["programmed", "read"])
def test_a_dense_recurrence_zero_off_its_diagonal_is_programmed_as_the_one_to_one_recurrence_it_is(cfg):
    # the energy model reads such a matrix as a one-to-one recurrence (hardware_models.graph: N pairs of cells, not
    # stacked with the input weights); the chip programmed all N × N pairs, stacked with W_in, and its variation and
    # stuck-ON cells off the diagonal fed neurons back onto others. Now it is the chip of connectivity="diagonal"
    dense, diagonal = recurrent_net("dense"), recurrent_net("diagonal")
    with torch.no_grad():
        dense[1].recurrent.weight.copy_(torch.diag(diagonal[1].recurrent.weight))
        for i in (0, 2):
            dense[i].load_state_dict(diagonal[i].state_dict())
    x = spike_patterns(16, seed=2)[0].transpose(0, 1)
    chip, twin = apply_nonidealities(dense, cfg, seed=3), apply_nonidealities(diagonal, cfg, seed=3)
    assert torch.equal(chip(x)[0], twin(x)[0])
    if not cfg.per_read:
        w = chip[1].recurrent.weight
        assert torch.equal(w, torch.diag(twin[1].recurrent.weight)) and w.diagonal().ne(0).any()
    else:
        assert type(chip[0]) is CrossbarLinear and type(chip[1].recurrent) is CrossbarDiagonal  # not stacked
    with torch.no_grad():
        dense[1].recurrent.weight[0, 1] = 0.3  # one weight off the diagonal: a dense matrix again
    assert not isinstance(apply_nonidealities(dense, cfg, seed=3)[1].recurrent, CrossbarDiagonal)


def test_noise_aware_finetuning_draws_a_dense_recurrence_zero_off_its_diagonal_as_the_chip_programs_it():
    # apply_nonidealities programs it as N weights (connectivity="diagonal"'s chip), but fine-tuning drew all N × N
    # cells: stuck-ON cells off the diagonal fed neurons back onto others at up to the largest weight (1.75 against
    # 1.72 on the diagonal here), and the gradient filled the off-diagonal (121 of 132 weights nonzero after one
    # epoch), so the tuned model was a dense recurrence, programmed N × N stacked with W_in
    from neurosim.hardware import nonideal

    dense, diagonal = recurrent_net("dense"), recurrent_net("diagonal")
    with torch.no_grad():
        dense[1].recurrent.weight.copy_(torch.diag(diagonal[1].recurrent.weight))
        for i in (0, 2):
            dense[i].load_state_dict(diagonal[i].state_dict())
    x, y = spike_patterns(64, seed=1)
    cfg = NonIdealConfig(levels=16, sigma_rel=0.1, stuck_on_rate=0.05)
    shapes = []
    real = nonideal.effective_weight
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(nonideal, "effective_weight", lambda w, *a: shapes.append(tuple(w.shape)) or real(w, *a))
        tuned = noise_aware_finetune(dense, Batches(x, y, 32), cfg, epochs=1, lr=0.01, grad_clip=None)
    assert shapes == [(12, 40), (12,), (5, 12)] * 2  # the recurrence's N cells, per batch
    twin = noise_aware_finetune(diagonal, Batches(x, y, 32), cfg, epochs=1, lr=0.01, grad_clip=None)
    w = tuned[1].recurrent.weight.detach()
    assert torch.equal(w, torch.diag(w.diagonal())) and not torch.equal(w, dense[1].recurrent.weight)
    torch.testing.assert_close(w.diagonal(), twin[1].recurrent.weight.detach())
    read = NonIdealConfig(levels=16, sigma_rel=0.1, read_noise_rel=0.05, adc_bits=5, tile_rows=16)
    assert isinstance(apply_nonidealities(tuned, read, seed=0)[1].recurrent, CrossbarDiagonal)


# ---------------------------------------------------------------------------------------------- counter-based read noise
def _chunk_net() -> Sequential:
    """A bit-sliced conv layer (its input event counts up to 3: a read per pulse with the ADC on), a dense RLIF
    stacked with its input Linear (tiles of input rows, one shared by both kinds of rows, one of recurrent rows) and
    a one-to-one recurrence, ending in a Linear (currents, not spikes: every read's noise shows)."""
    torch.manual_seed(0)
    net = Sequential(Conv2d(2, 4, 3, padding=1), LIF(beta=0.8, v_th=0.5), Flatten(), Linear(4 * 6 * 6, 12),
                     RLIF(12, beta=0.8, v_th=0.5), Linear(12, 8), RLIF(8, beta=0.8, v_th=0.5, connectivity="diagonal"),
                     Linear(8, 3)).eval()
    with torch.no_grad():
        net[0].weight.mul_(3)
        net[3].weight.mul_(4)
        net[4].recurrent.weight.copy_(0.5 * torch.randn_like(net[4].recurrent.weight))
        net[5].weight.mul_(4)
        net[6].recurrent.weight.uniform_(-0.5, 0.5)
    return net


def test_read_noise_is_the_same_whether_a_sequence_runs_in_one_call_or_a_chunk_of_steps_at_a_time(monkeypatch):
    """A chip's read noise was drawn from its layer's generator in each call's shape, so a block of samples run a
    chunk of steps at a time drew other noise than one call over all T steps, and accuracy() ran every chip with
    read noise (each default --nonideal run's operating point) in one call: all T steps' activations at once, ~10 GB
    for the quickstart conv model's first bit-sliced layer at T = 400. Each read's noise is now a function of its
    place in the layer's reads: chunks of any size give the outputs of one call, bit for bit."""
    from neurosim.hardware import nonideal
    from neurosim.hardware.nonideal import CrossbarStackedFeedback, CrossbarStackedInput

    net = _chunk_net()
    cfg = NonIdealConfig(levels=16, cell_bits=2, sigma_rel=0.05, read_noise_rel=0.1, adc_bits=5, tile_rows=10)
    x = torch.randint(0, 4, (9, 5, 2, 6, 6), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    chip = apply_nonidealities(net, cfg, seed=2)
    assert isinstance(chip[0], CrossbarConv2d) and isinstance(chip[6].recurrent, CrossbarDiagonal)
    assert isinstance(chip[3], CrossbarStackedInput) and isinstance(chip[4].recurrent, CrossbarStackedFeedback)
    assert chip[3]._own_index and len(chip[4].recurrent._own_index) == 2  # the shared tile and one of recurrent rows
    with torch.no_grad():
        one_call = chip(x.float())[0]
        for steps in (1, 2, 4):
            monkeypatch.setattr(nonideal, "time_chunk", lambda _model, x_seq, k=steps: k)
            chunked = nonideal._block_outputs(apply_nonidealities(net, cfg, seed=2), x)
            assert torch.equal(chunked, one_call), steps
        # the noise is there, and fresh at every read: a second pass of the same chip reads other values
        quiet = apply_nonidealities(net, dataclasses.replace(cfg, read_noise_rel=0.0), seed=2)(x.float())[0]
        again = chip(x.float())[0]
    assert not torch.equal(one_call, quiet) and not torch.equal(again, one_call)


def test_read_normals_are_standard_normals_drawn_where_the_read_has_a_spread_whatever_the_calls():
    from neurosim.hardware.nonideal import read_noise_stream, read_normals

    stream = read_noise_stream(12345, tile=0, pulse=0, side=0)
    spread = torch.ones(200_000)
    z = read_normals(spread, stream, 0)
    assert abs(float(z.mean())) < 0.01 and abs(float(z.std()) - 1) < 0.01
    assert abs(float((z ** 4).mean()) - 3) < 0.05  # (a normal's kurtosis)
    # the draws of elements 1000 onwards are the same from any starting place, in any pieces, on any shape
    tail = read_normals(torch.ones(3, 7, dtype=torch.float64), stream, 1000)
    assert torch.equal(tail.flatten().float(), z[1000:1021])
    # no draw where a read has no spread (no row driven): 0 there, the others unchanged
    spread[::3] = 0
    masked = read_normals(spread, stream, 0)
    assert bool((masked[::3] == 0).all()) and torch.equal(masked[1::3], z[1::3])
    # every key, tile, pulse and side reads a stream of its own
    others = [read_noise_stream(12346, 0, 0, 0), read_noise_stream(12345, 1, 0, 0),
              read_noise_stream(12345, 0, 1, 0), read_noise_stream(12345, 0, 0, 1)]
    assert len({stream, *others}) == 5
    for other in others:
        w = read_normals(torch.ones(200_000), other, 0)
        assert abs(float(torch.corrcoef(torch.stack([z, w]))[0, 1])) < 0.01
    with pytest.raises(ValueError, match="pulse"):
        read_noise_stream(1, 0, 2 ** 20, 0)


def test_a_stacked_layers_matrices_take_their_arrays_one_drift_compensation_at_the_energy_models_amplitudes():
    """[W_in | W_rec] on one array each took its own drift compensation factor α into its read-out scale, so its rows
    were read at a = α·max|W| / max over the stack of α·max|W|, where the energy model charges them at a = max|W| /
    max over the stack of max|W|; and α, a digital gain on the columns after the ADC, cannot be two factors on
    columns that add both matrices' currents. With a spread of ν the two α differ: the rows are now read at the
    energy model's amplitudes, and the array has one α, from its calibration reads with every row driven at its
    amplitude, the same with or without read noise and ADC."""
    from dataclasses import replace

    from hardware_models import analyze, load_spec
    from hardware_models.crossbar import _stack_amplitudes, map_crossbar
    from neurosim.export import to_nir

    n_in, n = 40, 12
    net = _stacked_net(n_in, n)
    cfg = NonIdealConfig(levels=16, drift_nu=0.05, drift_nu_std=0.05, drift_t_s=1e5, drift_compensation=True,
                         adc_bits=8, adc_calibration="programmed", tile_rows=32)
    chip = apply_nonidealities(net, cfg, seed=1)
    xbar = chip[2].crossbar
    amps = xbar.row_amplitude.double()
    facts = analyze(to_nir(net, (n_in,)))
    layer = next(l for l in map_crossbar(facts, load_spec("rram_neurosim")).layers if l.target == "3.lif")
    energy = torch.tensor(_stack_amplitudes(facts, layer), dtype=torch.float64).repeat_interleave(torch.tensor([n_in, n]))
    torch.testing.assert_close(amps, energy, rtol=1e-6, atol=0)
    # the array's one α: its calibration read at t0 (the cells the ADC is calibrated from) over the same at t
    then, now = xbar.calibrated_pos + xbar.calibrated_neg, xbar.g_pos + xbar.g_neg

    def alpha(rows):
        return float((then[:, rows] * amps[rows]).sum() / (now[:, rows] * amps[rows]).sum())

    w_max = max(float(net[2].weight.detach().abs().max()), float(net[3].recurrent.weight.detach().abs().max()))
    assert xbar.scale == pytest.approx(w_max / (1 - cfg.g_off) * alpha(slice(None)), rel=1e-6)  # (float32 cells)
    assert abs(alpha(slice(0, n_in)) / alpha(slice(n_in, None)) - 1) > 1e-3  # each matrix's own α: not the same
    # without per-read effects the layers hold the same weights: each matrix's in the array's read-out
    quiet = apply_nonidealities(net, replace(cfg, adc_bits=None), seed=1)
    torch.testing.assert_close(quiet[2].weight, chip[2].weight, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(quiet[3].recurrent.weight, chip[3].recurrent.weight, rtol=1e-5, atol=1e-7)


def test_crossbar_layers_given_one_generator_read_noise_of_their_own_and_a_chips_keys_stay_their_seeds():
    """The read noise's key was the generator's seed, so two layers given one generator (CrossbarLinear and the
    others are public) read the same noise at every place, correlated 1.0, where drawing from the shared generator
    made it independent. A generator as freshly seeded still gives its seed (each chip layer's, whose noise, and the
    results drawn with it, stay as they were); one already drawn from gives a draw of its own."""
    from neurosim.hardware.nonideal import _stream_seed

    cfg = NonIdealConfig(levels=16, read_noise_rel=0.1)
    g = torch.Generator().manual_seed(7)
    cells = torch.rand(2, 4, 6, generator=torch.Generator().manual_seed(0)) * 0.9 + 0.1
    a, b = (CrossbarLinear(cells[0], cells[1], 1.0, None, cfg, g) for _ in range(2))
    quiet = CrossbarLinear(cells[0], cells[1], 1.0, None, NonIdealConfig(levels=16), None)
    x = torch.ones(2000, 6)
    with torch.no_grad():
        na, nb = (layer(x) - quiet(x) for layer in (a, b))
    assert a.noise_key == 7 and b.noise_key != 7
    assert abs(float(torch.corrcoef(torch.stack([na.flatten(), nb.flatten()]))[0, 1])) < 0.1
    # a chip's layers keep the keys of their own freshly seeded generators
    net = Sequential(Linear(6, 5), LIF(beta=0.8, v_th=0.5), Linear(5, 3)).eval()
    chip = apply_nonidealities(net, dataclasses.replace(cfg, tile_rows=4), seed=3)
    assert [chip[0].noise_key, chip[2].noise_key] == [_stream_seed(3, "read", 0), _stream_seed(3, "read", 1)]

"""RRAM liquid state machine: fixed reservoir (no gradients, unchanged by training), weights from the stochastic
switching distribution (seeded), readouts clearly above chance in a fast setting, the measured-conductance cell
energy by hand, and the CLI's run folder."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch

from neurosim.cli import main
from neurosim.lsm import (Reservoir, ReservoirConfig, rate_features, reservoir_graph, rram_cells, train_readout)
from neurosim.lsm.config import ReadoutConfig, lsm_config_from_dict
from neurosim.lsm.run import measured_cell_read_j
from rram_helpers import spike_patterns
from si_approx import approx_si

FAST_RES = ReservoirConfig(neurons=64, v_th=2.0, recurrent_scale=2.0, read_noise_rel=0.02, adc_bits=None,
                           feature_bins=4)


def _features(res: Reservoir, x: torch.Tensor) -> torch.Tensor:
    spikes, _ = res(x.transpose(0, 1))  # [N, T, inputs] -> [T, N, inputs]
    return rate_features(spikes, res.cfg.feature_bins)


def test_reservoir_is_fixed_no_parameters_no_gradients_unchanged_by_readout_training():
    res = Reservoir.rram(40, FAST_RES, seed=0)
    assert list(res.parameters()) == []
    before = {k: v.clone() for k, v in res.state_dict().items()}
    x, y = spike_patterns(120, inputs=40, T=8, seed=0)
    x.requires_grad_(True)
    spikes, _ = res(x.transpose(0, 1))
    assert not spikes.requires_grad  # nothing reaches the reservoir's weights (or the input) through it
    ro = train_readout(rate_features(spikes, 4), y, ReadoutConfig(epochs=50), num_classes=5)
    assert any(p.requires_grad for p in ro.parameters())  # only the readout learns
    after = res.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_rram_cells_follow_the_stochastic_switching_distribution():
    cfg = ReservoirConfig(p_switch=0.3, sigma_log=0.2, on_off_ratio=10.0)
    g = rram_cells((400, 500), cfg, torch.Generator().manual_seed(0))
    on = g > math.sqrt(1.0 * 0.1)  # geometric mean of G_on and G_off separates the two lobes (σ = 0.2)
    assert float(on.float().mean()) == pytest.approx(0.3, abs=0.01)
    # mean-preserving log-normal spread around each level: E[G | ON] = 1, E[G | OFF] = G_off
    assert float(g[on].mean()) == pytest.approx(1.0, rel=0.01)
    assert float(g[~on].mean()) == pytest.approx(0.1, rel=0.01)
    assert float(torch.log(g[on]).std()) == pytest.approx(0.2, rel=0.02)


def test_rram_weights_are_differences_of_seeded_cells_and_reproducible():
    cfg = ReservoirConfig(neurons=32)
    a, b, c = Reservoir.rram(20, cfg, seed=3), Reservoir.rram(20, cfg, seed=3), Reservoir.rram(20, cfg, seed=4)
    assert torch.equal(a.w, b.w) and not torch.equal(a.w, c.w)
    gen = torch.Generator().manual_seed(3)
    g_pos, g_neg = rram_cells((32, 52), cfg, gen), rram_cells((32, 52), cfg, gen)
    assert torch.equal(a.w, g_pos - g_neg) and torch.equal(a.g_pos, g_pos) and torch.equal(a.g_neg, g_neg)
    # the same chip gives the same noisy reads; the exact twin holds the same cells without a crossbar
    x = (torch.rand(6, 4, 20, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    assert torch.equal(a(x)[0], b(x)[0])
    exact = Reservoir.rram(20, cfg, seed=3, exact=True)
    assert exact.crossbar is None and a.crossbar is not None and torch.equal(exact.w, a.w)
    # the read noise is a stream of its own: not another chip's programming draws (seed + 7919 was chip 7922's)
    other = torch.Generator().manual_seed(3 + 7919)
    reads = torch.randn(100, generator=Reservoir.rram(20, cfg, seed=3).crossbar.generator)  # before any read
    assert not torch.equal(reads, torch.randn(100, generator=other))


def test_software_reservoir_is_a_different_gaussian_matrix_with_the_rram_spread():
    cfg = ReservoirConfig(neurons=128)
    sw, hw = Reservoir.software(128, cfg, seed=0), Reservoir.rram(128, cfg, seed=0)
    assert sw.g_pos is None and not torch.equal(sw.w, hw.w)
    assert float(sw.w.std()) == pytest.approx(float(hw.w.std()), rel=0.02)
    # RRAM weights are tri-modal: a quarter of the pairs has neither cell switched (w ≈ G_off − G_off ≈ 0), far more
    # mass at 0 than the Gaussian's (P(|w| < 0.05) ≈ 0.05 for σ ≈ 0.73)
    near_zero = lambda w: float((w.abs() < 0.05).float().mean())  # noqa: E731
    assert near_zero(hw.w) > 0.2 and near_zero(hw.w) > 3 * near_zero(sw.w)


@pytest.mark.parametrize("kind", ["software", "rram"])
def test_readout_trains_clearly_above_chance_in_a_fast_setting(kind):
    x_tr, y_tr = spike_patterns(400, inputs=40, T=10, seed=1)
    x_te, y_te = spike_patterns(200, inputs=40, T=10, seed=2)
    accs = []
    for seed in range(3):  # several reservoirs, not one lucky draw
        res = getattr(Reservoir, kind)(40, FAST_RES, seed=seed)
        ro = train_readout(_features(res, x_tr), y_tr, ReadoutConfig(epochs=150), num_classes=5, seed=seed)
        accs.append(float((ro.predict(_features(res, x_te)) == y_te).float().mean()))
    assert sum(accs) / len(accs) > 0.6  # chance is 0.2


def _driven_reservoir(cfg: ReservoirConfig, g_pos: list[list[float]]):
    """A 3-input RRAM reservoir of ``cfg`` (2 neurons) with conductances ``g_pos`` (``g_neg`` zero), a run of it
    (T = 2, one sample: inputs 0 and 2 spike in step 0; neuron 0 spikes in step 0, so its row is driven in step 1),
    the rram_lsm40nm spec and its energy of one cell read at the full voltage and G_on, V²·G_on·t_read."""
    from hardware_models import load_spec

    res = Reservoir.rram(3, cfg, seed=0)
    with torch.no_grad():
        res.g_pos.copy_(torch.tensor(g_pos))
        res.g_neg.zero_()
    x = torch.tensor([[[1.0, 0.0, 1.0]], [[0.0, 0.0, 0.0]]])
    s = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])
    spec = load_spec("rram_lsm40nm")
    v, t, g_on = spec.si("device.v_read"), spec.si("device.t_read"), 1 / spec.si("device.r_on")
    return res, x, s, spec, v * v * t * g_on


def test_measured_cell_read_energy_by_hand():
    cfg = ReservoirConfig(neurons=2, adc_bits=None)  # (with the ADC, 2 neurons' recurrent rows read at 4/√2 > 1)
    res, x, s, spec, unit = _driven_reservoir(cfg, [[1.0, 0.0, 0.5, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0, 0.0]])
    want = unit * (1.0 + 0.5 + 0.0)  # column sums of rows input0, input2, neuron0
    assert measured_cell_read_j(res, x, s, spec) == approx_si(want, rel=1e-12)
    assert measured_cell_read_j(res, torch.zeros_like(x), torch.zeros_like(s), spec) == 0.0
    with pytest.raises(ValueError, match="crossbar"):
        measured_cell_read_j(res, x, s, "loihi")
    with pytest.raises(ValueError, match="RRAM reservoir"):
        measured_cell_read_j(Reservoir.software(3, cfg), x, s, spec)


def test_measured_cell_reads_are_charged_at_each_rows_read_amplitude():
    # the reservoir reads its input rows at input_scale and its recurrent rows at recurrent_scale / sqrt(neurons) of
    # the read voltage; the measured cell reads charged every driven row at the full voltage. A row read at a·V
    # takes (a·V)²·G·t_read per cell, as the crossbar model charges a stacked matrix's rows
    cfg = ReservoirConfig(neurons=2, input_scale=0.5, recurrent_scale=1.0, adc_bits=None)  # a_rec = 1/sqrt(2)
    res, x, s, spec, unit = _driven_reservoir(cfg, [[1.0, 0.0, 0.5, 1.0, 0.0], [0.0, 1.0, 0.0, 0.25, 0.0]])
    want = unit * (0.5**2 * (1.0 + 0.5) + 0.5 * (1.0 + 0.25))  # rows input0, input2 at 0.5; neuron0
    assert measured_cell_read_j(res, x, s, spec) == approx_si(want, rel=1e-6)  # (the amplitudes are float32)


def test_a_reservoir_without_feedback_is_costed_without_its_recurrent_rows():
    """recurrent_scale = 0 reads the recurrent rows at 0 V: no feedback. The graph kept an all-zero w_rec loop,
    which the hardware models read as a one-to-one recurrence (zero off its diagonal), so the reservoir without
    feedback cost more than with it (rram_lsm40nm: twice the ADC energy, four times the static)."""
    from neurosim.lsm.run import reservoir_energy

    x, _ = spike_patterns(30, inputs=40, T=10, seed=0)
    x_seq = x.transpose(0, 1)
    fed, free = (Reservoir.rram(40, ReservoirConfig(neurons=32, recurrent_scale=r), seed=0) for r in (4.0, 0.0))
    spikes, _ = free(x_seq)
    assert 0 < spikes.mean() < 1
    graph = reservoir_graph(free, 1e-3)
    assert "w_rec" not in graph.nodes and ("lif", "output") in graph.edges
    assert "w_rec" in reservoir_graph(fed, 1e-3).nodes
    # the same spikes through both: the one whose recurrent rows are read costs more, on every target
    e_fed, e_free = (reservoir_energy(r, x_seq, spikes, ["rram_lsm40nm", "loihi"], 1e-3) for r in (fed, free))
    for t in ("rram_lsm40nm", "rram_lsm40nm_blind", "loihi"):
        assert e_free[t].total_energy_j < e_fed[t].total_energy_j, t
    # the measured-conductance cell reads drive only the input rows
    only_inputs = measured_cell_read_j(free, x_seq, torch.zeros_like(spikes), "rram_lsm40nm")
    assert measured_cell_read_j(free, x_seq, spikes, "rram_lsm40nm") == only_inputs
    assert measured_cell_read_j(fed, x_seq, spikes, "rram_lsm40nm") > only_inputs


def test_lsm_config_rejects_bad_values_naming_the_key():
    from neurosim.config import ConfigError

    with pytest.raises(ConfigError, match="reservoir.beta"):
        lsm_config_from_dict({"reservoir": {"beta": 1.5}})
    with pytest.raises(ConfigError, match="reservoir.adc_bits"):
        lsm_config_from_dict({"reservoir": {"adc_bits": 0}})
    # read on the chip as NonIdealConfig reads them: a 40-bit ADC, or read noise typed in percent, is named here
    with pytest.raises(ConfigError, match="reservoir.adc_bits: at most 24 bits"):
        lsm_config_from_dict({"reservoir": {"adc_bits": 40}})
    with pytest.raises(ConfigError, match=r"reservoir.read_noise_rel: must be a fraction of G in \[0, 1\]"):
        lsm_config_from_dict({"reservoir": {"read_noise_rel": 2.0}})
    for key in ("sigma_log", "read_noise_rel"):  # NaN passed a "< 0" check and failed after all the training
        with pytest.raises(ConfigError, match=f"reservoir.{key}: must be a finite number >= 0, got nan"):
            lsm_config_from_dict({"reservoir": {key: float("nan")}})
    with pytest.raises(ConfigError, match="readout.weight_decay: must be a finite number >= 0, got inf"):
        lsm_config_from_dict({"readout": {"weight_decay": float("inf")}})


@pytest.mark.parametrize("seed", [-1, 2**64])
def test_lsm_seed_outside_what_the_run_can_take_is_an_error_naming_it(seed):
    from neurosim.config import ConfigError

    # -1 failed in numpy's SeedSequence (the chip's read noise), 2**64 in torch.manual_seed, after loading the data
    with pytest.raises(ConfigError, match=rf"^seed: must be an integer in \[0, 18446744073709551615\] .*got {seed}"):
        lsm_config_from_dict({"seed": seed})


def test_the_largest_lsm_seed_builds_every_reservoir_and_readout():
    seed = lsm_config_from_dict({"seed": 2**64 - 1}).seed
    cfg = ReservoirConfig(neurons=8, adc_bits=None)
    for res in (Reservoir.software(3, cfg, seed), Reservoir.rram(3, cfg, seed),
                Reservoir.rram(3, cfg, seed, exact=True)):
        res((torch.rand(4, 2, 3) < 0.5).float())
    train_readout(torch.rand(6, 2), torch.arange(6) % 2, ReadoutConfig(epochs=1), 2, seed=seed)


@pytest.mark.parametrize("kind", ["linear", "mlp", "contrastive"])
def test_train_readout_leaves_the_callers_random_stream_alone_and_repeats_itself(kind):
    g = torch.Generator().manual_seed(0)
    features, labels = torch.rand(30, 6, generator=g), torch.arange(30) % 3
    cfg = ReadoutConfig(kind=kind, hidden=8, embedding=4, epochs=3)
    torch.manual_seed(42)
    expected = torch.rand(4)
    torch.manual_seed(42)
    a = train_readout(features, labels, cfg, 3, seed=5)
    assert torch.equal(torch.rand(4), expected)  # it used to reseed torch's global generator with seed 5
    torch.manual_seed(7)  # another global state: the same readout
    b = train_readout(features, labels, cfg, 3, seed=5)
    c = train_readout(features, labels, cfg, 3, seed=6)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    # the draws are those of torch's generator seeded with `seed`, as before (the LSM figures did not change)
    torch.manual_seed(5)
    first = torch.nn.Linear(6, 8 if kind != "linear" else 3)
    ref = train_readout(features, labels, ReadoutConfig(kind=kind, hidden=8, embedding=4, epochs=1, lr=1e-30), 3,
                        seed=5)
    layer = ref.net if kind == "linear" else ref.net[0]
    torch.testing.assert_close(layer.weight, first.weight, rtol=0, atol=1e-20)


def test_cli_writes_its_run_folder(tmp_path, event_digits_cache, capsys):
    args = ["-q", "lsm", "--set", f'out_dir="{tmp_path}"', "name=tiny", "data.train_subset=300",
            "data.test_subset=100", "data.time_steps=20", "reservoir.neurons=64", "readout.epochs=100",
            "energy.samples=20", "energy.targets=[\"rram_lsm40nm\",\"loihi\"]"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "software" in out and "on the chip" in out and "rram_lsm40nm" in out
    run = tmp_path / "tiny"
    for name in ("config.toml", "metrics.json", "estimates.json", "report.md", "accuracy.png", "energy.png"):
        assert (run / name).is_file() and (run / name).stat().st_size > 100, name
    m = json.loads((run / "metrics.json").read_text())
    assert m["train_samples"] == 300 and m["test_samples"] == 100 and m["time_steps"] == 20
    for kind in ("software", "rram_ideal", "rram"):
        assert m[f"acc_{kind}"] > 2 * m["chance_acc"]
        # exact ratios of counts, not float32 means (which wrote e.g. 95.53999900817871)
        for key, n in [(f"acc_{kind}", 100), (f"train_acc_{kind}", 300), (f"firing_rate_{kind}", 20 * 100 * 64)]:
            scale = 100.0 if "acc" in key else 1.0
            assert m[key] == scale * round(m[key] * n / scale) / n, (key, m[key])
    assert 0 < m["energy_j_rram_lsm40nm"] < m["energy_j_loihi"]
    assert m["energy_j_rram_lsm40nm_measured_g"] > m["energy_j_rram_lsm40nm"] - 1e-15
    assert main(["-q", "lsm", "--set", f'out_dir="{tmp_path}"', "reservoir.p_switch=2"]) == 2
    assert "reservoir.p_switch" in capsys.readouterr().err
    # the folder holds this run: one of other settings is refused before any work, unless --overwrite
    before = (run / "metrics.json").read_bytes()
    assert main([*args, "data.train_subset=200"]) == 2
    err = capsys.readouterr().err
    assert "holds an LSM run of other settings (data.train_subset differs)" in err and "--overwrite" in err
    assert (run / "metrics.json").read_bytes() == before
    assert main([*args[:1], "lsm", "--overwrite", *args[2:], "data.train_subset=200", "readout.epochs=5"]) == 0
    assert json.loads((run / "metrics.json").read_text())["train_samples"] == 200
    # stopped while writing (here: drawing the figures), a run leaves no config.toml beside a mix of two runs' files,
    # so the next run of either settings is accepted and rewrites them all
    import neurosim.lsm.run as lsm_run

    def stop(*a, **kw):
        raise KeyboardInterrupt

    figures = lsm_run._figures
    lsm_run._figures = stop
    try:
        assert main([*args[:1], "lsm", "--overwrite", *args[2:], "readout.epochs=5"]) == 130
    finally:
        lsm_run._figures = figures
    assert not (run / "config.toml").exists() and json.loads((run / "metrics.json").read_text())["train_samples"] == 300
    assert main([*args, "data.train_subset=200", "readout.epochs=5"]) == 0 and (run / "config.toml").is_file()


@pytest.mark.parametrize("override, kwargs, words", [
    ("reservoir.neurons=8", dict(neurons=8),
     ["reservoir.recurrent_scale", "4 / sqrt(8) = 1.41", "at most 2.83", "adc_bits"]),
    ("reservoir.input_scale=2", dict(input_scale=2.0), ["reservoir.input_scale", "got 2.0", "adc_bits"]),
])
def test_row_amplitudes_the_adc_model_cannot_read_are_named_before_any_work(tmp_path, event_digits_cache, capsys,
                                                                           override, kwargs, words):
    """Rows read above the full read voltage: the chip's ADC model refused them with a traceback, after the software
    and exact reservoirs had run (``--set reservoir.neurons=8``: recurrent rows at 4/√8 = 1.41)."""
    assert main(["-q", "lsm", "--set", f'out_dir="{tmp_path}"', "data.train_subset=20", "data.test_subset=10",
                 override]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and all(w in err for w in words), err
    assert not any(tmp_path.iterdir())
    with pytest.raises(ValueError, match=re.escape(words[0].split(".")[1])):
        Reservoir.rram(6, ReservoirConfig(**kwargs))
    # exact reads, or no ADC, take any amplitude
    x = (torch.rand(5, 2, 6, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    for res in (Reservoir.rram(6, ReservoirConfig(**kwargs), exact=True),
                Reservoir.rram(6, ReservoirConfig(**kwargs, adc_bits=None))):
        assert res(x)[0].shape == (5, 2, res.neurons)

@pytest.mark.parametrize("override, words", [
    ('energy.targets=["loihi2"]', ["energy.targets", "unknown target 'loihi2'"]),
    ("data.dataset=mnist", ["data.dataset", "unknown dataset 'mnist'"]),
    ("data.input_size=40", ["data.input_size", "cannot be pooled to 40x40"]),
    ("reservoir.feature_bins=60", ["reservoir.feature_bins", "data.time_steps = 50"]),
])
def test_cli_names_a_bad_setting_before_the_reservoirs_run(tmp_path, event_digits_cache, capsys, override, words):
    assert main(["-q", "lsm", "--set", f'out_dir="{tmp_path}"', "data.train_subset=20", "data.test_subset=10",
                 override]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and all(w in err for w in words), err
    assert not any(tmp_path.iterdir())


def test_a_feature_silent_in_training_does_not_decide_the_prediction():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(40) % 2
    features = torch.stack([labels.float() + 0.1 * torch.randn(40, generator=g), torch.zeros(40)], 1)
    readout = train_readout(features, labels, ReadoutConfig(kind="linear", weight_decay=0.0), 2)
    assert readout.std[1] == 1.0  # not 1e-6: one test event there became a standardised value of 1e6
    probe = torch.tensor([[0.0, 1.0], [1.0, 1.0]])  # the silent feature fires once at test time
    assert readout.predict(probe).tolist() == [0, 1]


def test_events_are_downsampled_to_input_spikes_by_hand_and_in_chunks():
    import numpy as np

    from neurosim.lsm.run import downsample_events

    frames = np.zeros((3, 2, 2, 5, 5), dtype=np.uint8)  # [N, T, P, H, W]: 5x5 crops to 4x4, pools 2x2 -> 2x2
    frames[0, 0, 1, 1, 2] = 3  # in the 4x4 crop (offset 0, rows/cols 0..3): pixel (1, 2) -> block (0, 1)
    frames[1, 1, 0, 3, 3] = 1  # block (1, 1)
    frames[2, 0, 0, 4, 4] = 9  # outside the crop: no spike
    x = downsample_events(frames, 2)
    assert x.shape == (3, 2, 4) and x.dtype == torch.float32
    assert x[0, 0].tolist() == [0, 1, 0, 0] and x[1, 1].tolist() == [0, 0, 0, 1] and x.sum() == 2
    assert downsample_events(frames, 2, merge_polarity=False)[0, 0].tolist() == [0] * 4 + [0, 1, 0, 0]
    for chunk in (1, 2, 5):
        assert torch.equal(downsample_events(frames, 2, chunk=chunk), x)


@pytest.mark.parametrize("command, files", [
    ("train", {"config.toml": "name = \"r\"\nseed = 0\n[data]\ntime_steps = 4\n[model]\nkind = \"mlp\"\n",
               "checkpoint.pt": "weights", "report.md": "# the training run's report"}),
    ("train", {"metrics.jsonl": "{}\n", "report.md": "# a run stopped before it wrote config.toml"}),
    ("continual", {"config.toml": "name = \"c\"\ntasks = 5\n", "finished/ewc-seed0.json": "{}",
                   "report.md": "# the continual run's report"}),
])
@pytest.mark.parametrize("overwrite", [False, True])
def test_cli_refuses_a_run_folder_of_another_command_even_with_overwrite(tmp_path, event_digits_cache, capsys,
                                                                         command, files, overwrite):
    """`--set name=` of a train or continual run: lsm wrote its config.toml, report.md and raster.png over that
    run's (the training run's report lost, its checkpoint left beside an LSM config), exit 0."""
    run = tmp_path / "r"
    for name, text in files.items():
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_text(text)
    args = ["-q", "lsm", *(["--overwrite"] if overwrite else []), "--set", f'out_dir="{tmp_path}"', "name=r",
            "data.train_subset=40", "data.test_subset=20", "data.time_steps=10", "reservoir.neurons=16",
            "readout.epochs=5", "energy.samples=5", 'energy.targets=["loihi"]']
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"holds a `neurosim {command}` run" in err and "--set name=" in err, err
    assert sorted(p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()) == sorted(files)
    assert all((run / name).read_text() == text for name, text in files.items())


def test_python_api_names_a_wrong_argument():
    """Wrong arguments to the public LSM functions failed deep inside torch or numpy (``expected m1 and m2 to have
    the same dtype``, ``not enough values to unpack``, ``Target 10 is out of bounds``, ``expected non-negative
    integer``) or not at all (a graph with τ = 0 for dt_s = 0)."""
    from neurosim.lsm import LSMConfig, reservoir_energy, run_lsm

    cfg = ReservoirConfig(neurons=8, v_th=2.0)
    res = Reservoir.rram(6, cfg, seed=0, exact=True)
    x = (torch.rand(5, 2, 6, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    assert torch.equal(res(x.double())[0], res(x)[0])  # float64 spikes are spikes: read as the weights' dtype
    for bad, words in [(lambda: rate_features(torch.zeros(5, 8), 2), "[T, B, neurons]"),
                       (lambda: rate_features(torch.zeros(5, 2, 8), 0), "bins"),
                       (lambda: Reservoir.rram(-1, cfg), "inputs"),
                       (lambda: Reservoir.software(0, cfg), "inputs"),
                       (lambda: Reservoir.rram(6, cfg, seed=-1), "seed"),
                       (lambda: reservoir_graph(res, 0.0), "dt_s"),
                       (lambda: reservoir_energy(res, x, res(x)[0], ["loihi"], -1e-3), "dt_s"),
                       (lambda: train_readout(torch.zeros(4, 3), torch.tensor([0, 1, 2, 3]), ReadoutConfig(epochs=1),
                                              num_classes=3), "num_classes"),
                       (lambda: train_readout(torch.zeros(4, 3), torch.tensor([0.0, 1.0, 0.0, 1.0]),
                                              ReadoutConfig(epochs=1), num_classes=2), "integer")]:
        with pytest.raises(ValueError, match=re.escape(words)):
            bad()
    with pytest.raises(TypeError, match="LSMConfig"):
        run_lsm({"reservoir": {"neurons": 8}})
    assert isinstance(LSMConfig(), LSMConfig)


def test_a_spec_file_target_is_keyed_by_its_name_and_a_name_clash_is_refused(tmp_path, capsys):
    """energy.targets = ["/path/myspec.toml"] gave metrics keys and report rows named by the whole path
    (``energy_j_/path/myspec.toml_blind``); `neurosim estimate` keys a spec file by its name, and refuses two
    targets of one name, which the LSM run took both of, the second one's figures replacing the first's."""
    from hardware_models.specs import SPEC_DIR
    from neurosim.lsm.run import reservoir_energy

    text = (SPEC_DIR / "rram_lsm40nm.toml").read_text()
    assert 'name = "rram_lsm40nm"' in text
    mine = tmp_path / "myspec.toml"
    mine.write_text(text.replace('name = "rram_lsm40nm"', 'name = "myspec"'))
    res = Reservoir.rram(6, ReservoirConfig(neurons=16, v_th=2.0), seed=0)
    x = (torch.rand(5, 2, 6, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    est = reservoir_energy(res, x, res(x)[0], [str(mine), "loihi"], 1e-3)
    assert sorted(est) == ["loihi", "myspec", "myspec_blind"]
    clash = tmp_path / "other" / "loihi.toml"
    clash.parent.mkdir()
    clash.write_text((SPEC_DIR / "loihi.toml").read_text())
    assert main(["-q", "lsm", "--set", f'out_dir="{tmp_path}"', "name=clash",
                 f'energy.targets=["loihi", "{clash}"]']) == 2
    err = capsys.readouterr().err
    assert "energy.targets:" in err and "both named 'loihi'" in err, err
    assert not (tmp_path / "clash").exists()


def test_a_target_listed_twice_is_refused_naming_it(tmp_path, capsys):
    """energy.targets = ["loihi", "loihi"] (or a config listing a target twice, or a shipped target beside its own
    spec file's path) was costed once, one row and one set of metrics, without a word: a typo for another target
    went unseen."""
    from hardware_models.specs import SPEC_DIR
    from neurosim.config import ConfigError
    from neurosim.lsm.config import load_lsm_config

    with pytest.raises(ConfigError, match=re.escape("energy.targets: lists 'loihi' more than once, in ['loihi', "
                                                    "'rram_lsm40nm', 'loihi']; name each target once")):
        lsm_config_from_dict({"energy": {"targets": ["loihi", "rram_lsm40nm", "loihi"]}})
    config = tmp_path / "twice.toml"
    config.write_text('[energy]\ntargets = ["rram_neurosim", "rram_neurosim"]\n')
    with pytest.raises(ConfigError, match="energy.targets: lists 'rram_neurosim' more than once"):
        load_lsm_config(config)
    assert lsm_config_from_dict({"energy": {"targets": ["loihi", "rram_lsm40nm"]}}).energy.targets == (
        "loihi", "rram_lsm40nm")
    for targets, words in [('["loihi","loihi"]', ["energy.targets: lists 'loihi' more than once"]),
                           (f'["loihi", "{SPEC_DIR / "loihi.toml"}"]',
                            ["energy.targets: 'loihi' and", "are the same spec file ('loihi') listed twice"])]:
        assert main(["-q", "lsm", "--set", f'out_dir="{tmp_path}"', "name=twice", f"energy.targets={targets}"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and all(w in err for w in words), err
        assert not (tmp_path / "twice").exists()


def test_data_root_is_where_the_lsm_reads_the_bundled_digits(event_digits_cache, tmp_path, monkeypatch):
    """data.root was ignored for event_digits: the LSM read (or generated) the file in the neurosim cache whatever
    the root. It is honoured as by `neurosim train` (one registry for both): here the file is under the root only,
    the cache is empty, and nothing may be generated."""
    import shutil

    import neurosim.data.event_digits as ed
    from neurosim.lsm.config import LSMDataConfig
    from neurosim.lsm.run import load_lsm_data

    name = ed.event_digits_cache_path().name
    root = tmp_path / "data"
    root.mkdir()
    shutil.copy(event_digits_cache / name, root / name)
    monkeypatch.setenv("NEUROSIM_CACHE_DIR", str(tmp_path / "empty_cache"))
    monkeypatch.setattr(ed, "_MEMORY", {})

    def build(progress=True):
        raise AssertionError("the event digits were generated instead of read from data.root")

    monkeypatch.setattr(ed, "build_event_digits", build)
    x_tr, y_tr, x_te, y_te = load_lsm_data(LSMDataConfig(root=str(root), time_steps=5, train_subset=12,
                                                         test_subset=6), progress=False)
    assert x_tr.shape == (12, 5, 256) and x_te.shape == (6, 5, 256) and len(y_tr) == 12 and len(y_te) == 6
    assert not list((tmp_path / "empty_cache").glob("event_digits*"))


def test_accuracy_is_the_exact_ratio_of_the_correct_count():
    from neurosim.lsm.run import _accuracy_pct

    labels = torch.arange(359) % 10
    predicted = labels.clone()
    predicted[:16] = (predicted[:16] + 1) % 10  # 343 of 359 right
    assert _accuracy_pct(predicted, labels) == 100.0 * 343 / 359 == 95.54317548746518  # float32: 95.54317593574524
    assert _accuracy_pct(labels, labels) == 100.0 and _accuracy_pct(predicted[:16], labels[:16]) == 0.0
    for bad in [(predicted[:5], labels), (labels[:0], labels[:0])]:
        with pytest.raises(ValueError, match="same, non-empty shape"):
            _accuracy_pct(*bad)


def test_the_reports_energy_table_gives_each_target_a_unit_that_fits_it(tmp_path):
    """report.md's table gave energies in a fixed nJ column and latencies in µs at 3 digits: a digital target's
    1695 nJ read "1.7e+03", its 2.5 ms "2.5e+03". Each now reads in a fitting unit (joules, seconds)."""
    from types import SimpleNamespace

    from neurosim.lsm.run import RESERVOIRS, LSMResult, _write

    def est(total, lat, cores):
        return SimpleNamespace(total_energy_j=total, energy_j={"cell_read": 0.75 * total, "adc": 0.25 * total},
                               latency_per_inference_s=lat, mapping=SimpleNamespace(cores_used=cores),
                               to_dict=lambda: {"total_energy_j": total})

    cfg = lsm_config_from_dict({"out_dir": str(tmp_path), "name": "r"})
    m = {"train_samples": 300, "test_samples": 100, "inputs": 256, "time_steps": 20, "readout": "linear",
         "chance_acc": 10.0, "cell_read_j_measured_g_rram_lsm40nm": 1.2e-7,
         "energy_j_rram_lsm40nm_measured_g": 1.6952e-7}
    for kind in RESERVOIRS:
        m.update({f"acc_{kind}": 90.0, f"train_acc_{kind}": 95.0, f"firing_rate_{kind}": 0.05})
    ests = {"rram_lsm40nm": est(1.403e-7, 3.2e-5, 2), "loihi": est(1.6952e-6, 2.5e-3, 3), "sanafe": est(2e-3, None, 1)}
    run = _write(cfg, LSMResult(None, m, ests), torch.zeros(1), torch.zeros(1), figures=False)
    text = (run / "report.md").read_text()
    assert "| target | energy | largest part | latency | tiles/cores |" in text
    assert "| rram_lsm40nm | 140 nJ | cell_read 75 % | 32 µs | 2 |" in text
    assert "| loihi | 1.7 µJ | cell_read 75 % | 2.5 ms | 3 |" in text
    assert "| sanafe | 2 mJ | cell_read 75 % | - | 1 |" in text
    assert "cell reads of 120 nJ (model: 105 nJ) and **170 nJ** per inference in all" in text

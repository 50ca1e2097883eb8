"""Non-ideality report on crossbar targets (spec → config, sweeps, files), the RRAM figures, and the
``--nonideal`` flag wiring for ``neurosim estimate``."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from neurosim.hardware import (NonIdealConfig, accuracy, energy_groups, format_nonideal, nonideal_config_from_spec,
                               nonideal_report_model, plot_accuracy_vs_fault_rate, plot_accuracy_vs_sigma,
                               plot_energy_breakdown, plot_tiles, sweep_nonideal)
from neurosim.hardware.cli_support import add_nonideal_arguments, check_nonideal_args, run_nonideal_from_args
from neurosim.viz import save_figure
from rram_helpers import trained_mlp
from si_approx import approx_si


def test_config_from_spec_reads_quantisation_on_off_tiles_and_adc():
    a = nonideal_config_from_spec("rram_neurosim")
    # 8-bit signed weights: 7 magnitude bits -> 128 levels; R_off / R_on = 1.7 MΩ / 100 kΩ; 128-row tiles; 5-bit ADC
    assert (a.levels, a.on_off_ratio, a.tile_rows, a.adc_bits) == (128, pytest.approx(17.0), 128, 5)
    # bit-sliced as the energy model maps the spec: 7 magnitude bits on 1-bit cells, 7 cells per side (the chips
    # held each side's 7 bits in one 128-level cell: a fault rate was per 2 cells of a weight, not per its 14)
    assert (a.cell_bits, a.slices) == (1, 7)
    c = nonideal_config_from_spec("rram_lsm40nm")  # 5-bit weights: 16 codes on one 4-bit cell per side
    assert (c.levels, c.cell_bits, c.slices) == (16, 4, 1)
    b = nonideal_config_from_spec("rram_lsm40nm", adc=False, quantize=False, sigma_rel=0.1, fault_rate=0.04,
                                  stuck_on_fraction=0.25)
    assert (b.levels, b.cell_bits, b.tile_rows, b.adc_bits, b.sigma_rel) == (None, None, 512, None, 0.1)
    assert (b.stuck_on_rate, b.stuck_off_rate) == (pytest.approx(0.01), pytest.approx(0.03))
    with pytest.raises(ValueError, match="'loihi' is a digital target"):
        nonideal_config_from_spec("loihi")
    with pytest.raises(ValueError, match="fault_rate"):
        nonideal_config_from_spec("rram_neurosim", fault_rate=1.5)
    with pytest.raises(ValueError, match="sigma_rel"):
        nonideal_config_from_spec("rram_neurosim", sigma_rel=-0.1)


def test_zero_sigma_and_zero_faults_reproduce_ideal_and_large_values_lower_it():
    model, test = trained_mlp(steps=40)
    ideal = accuracy(model, test)
    sig = sweep_nonideal(model, test, NonIdealConfig(), "sigma_rel", [0.0, 0.05, 0.5], chips=5, seed=3)
    flt = sweep_nonideal(model, test, NonIdealConfig(), "fault_rate", [0.0, 0.3], chips=5, seed=3)
    for first in (sig[0], flt[0]):
        assert first["per_chip"] == [ideal] * 5 and first["std"] == 0.0
    assert sig[2]["mean"] < ideal - 3 and sig[2]["mean"] < sig[1]["mean"] - 3, (sig, ideal)
    assert flt[1]["mean"] < ideal - 3, (flt, ideal)
    assert [p["value"] for p in sig] == [0.0, 0.05, 0.5] and len(sig[2]["per_chip"]) == 5
    with pytest.raises(ValueError, match="cannot sweep 'sigma'"):
        sweep_nonideal(model, test, NonIdealConfig(), "sigma", [0.1], chips=1)


def test_report_is_seeded_json_ready_and_writes_its_files(tmp_path):
    model, test = trained_mlp(steps=30)
    kw = dict(chips=2, sigmas=(0.0, 0.2), fault_rates=(0.0, 0.05), seed=7)
    r1 = nonideal_report_model(model, test, "rram_neurosim", out_dir=tmp_path, **kw)
    r2 = nonideal_report_model(model, test, "rram_neurosim", **kw)
    assert r1["operating_point"]["per_chip"] == r2["operating_point"]["per_chip"]  # same seeds, same chips
    assert r1["sweeps"] == r2["sweeps"]
    op = r1["operating_point"]
    assert op["config"]["adc_bits"] == 5 and op["config"]["sigma_rel"] == 0.05 and len(op["per_chip"]) == 2
    assert r1["sweep_base"]["adc_bits"] is None and r1["sweep_base"]["levels"] == 128
    assert r1["sweep_base"]["cell_bits"] == op["config"]["cell_bits"] == 1
    assert "[128 levels on 7 1-bit cells per side, σ 5 %, stuck-at 1 %" in format_nonideal(r1)
    assert "sweeps, one effect at a time on 128 levels on 7 1-bit cells per side alone (no ADC, read noise or " \
           "drift):" in format_nonideal(r1)
    assert r1["samples"] == 400 and 0 <= op["mean"] <= 100
    assert r1["layers"] == ["0", "2"] and r1["loss"] is None  # the two Linear layers; the time-summed read-out
    saved = json.loads((tmp_path / "nonideal_rram_neurosim.json").read_text())
    assert saved["ideal_acc"] == r1["ideal_acc"] and saved["sweeps"]["fault_rate"] == r1["sweeps"]["fault_rate"]
    for name in ("accuracy_vs_sigma_rram_neurosim.png", "accuracy_vs_fault_rate_rram_neurosim.png"):
        assert (tmp_path / name).stat().st_size > 1000
    # the figures say what was simulated: chips, seeds, samples, and every effect held fixed during the sweep (they
    # said none of it: 2 chips and 5 looked alike, and the sweep's quantisation, no ADC, no read noise were unsaid)
    texts = lambda fig: " ".join(t.get_text() for ax in fig.axes for t in ax.texts).replace("\u00a0", " ")  # noqa: E731
    sig = texts(plot_accuracy_vs_sigma(r1))
    for words in ("rram_neurosim: 2 chips (seeds 7–8) × 400 test samples", "128 levels on 7 1-bit cells per side",
                  "on/off 17", "stuck-at 0 %", "ADC off (exact column reads)", "read noise 0 %", "no drift"):
        assert words in sig.replace("\n", " "), (words, sig)
    flt = texts(plot_accuracy_vs_fault_rate(r1)).replace("\n", " ")
    assert "σ 0 %" in flt and "stuck cells 50 % at G_on" in flt and "stuck-at 0 %" not in flt
    both = {"a": r1, "b": {**r2, "target": "other"}}
    for fig, name in ((plot_accuracy_vs_sigma(both), "s.png"), (plot_accuracy_vs_fault_rate(r1), "f.png")):
        assert save_figure(fig, tmp_path / name).stat().st_size > 1000


def _report(per_chip: list[float], sweep: list[list[float]]) -> dict:
    """A report as nonideal_report_model returns it, with the given accuracies per chip (no model evaluated)."""
    def point(accs):  # mean and sample std over the chips (0 for one chip, as the report gives it)
        mean = sum(accs) / len(accs)
        return {"mean": mean, "std": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0, "per_chip": accs}

    return {"target": "rram_neurosim", "chips": len(per_chip), "samples": 100, "ideal_acc": 90.0,
            "operating_point": {"config": NonIdealConfig(sigma_rel=0.05).to_dict(), **point(per_chip)},
            "sweeps": {"sigma_rel": [{"value": v, **point(accs)} for v, accs in zip((0.0, 0.1), sweep)]}}


def test_the_report_keeps_files_of_the_users_in_out_dir_unless_overwrite(tmp_path, monkeypatch):
    import neurosim.hardware.report as report
    from neurosim.estimation import ForeignFilesError, estimate_model
    from neurosim.hardware import nonideal_report
    from neurosim.hardware.report import write_nonideal_report

    model, test = trained_mlp(steps=10)
    kw = dict(chips=1, sigmas=(0.0, 0.1), fault_rates=(), max_samples=40, seed=1)
    for name in ("nonideal_rram_neurosim.json", "accuracy_vs_sigma_rram_neurosim.png"):
        mine = tmp_path / name.split(".")[0]
        mine.mkdir()
        (mine / name).write_text("mine")
        with monkeypatch.context() as m:  # refused before any chip is evaluated
            m.setattr(report, "accuracy", lambda *a, **k: pytest.fail("evaluated first"))
            with pytest.raises(ForeignFilesError) as e:
                nonideal_report_model(model, test, "rram_neurosim", out_dir=mine, **kw)
            # and before the checkpoint is read (there is none)
            with pytest.raises(ForeignFilesError):
                nonideal_report(tmp_path / "none.pt", "rram_neurosim", out_dir=mine, **kw)
        assert str(e.value) == (f"out_dir: {mine} holds {name}, which neurosim's nonideal study did not write (no "
                                "estimate.json of neurosim's is there) and would replace; choose another output "
                                "folder, or pass overwrite=True to replace it")
        assert [p.name for p in mine.iterdir()] == [name] and (mine / name).read_text() == "mine"
    mine = tmp_path / "accuracy_vs_sigma_rram_neurosim"
    # no sigma sweep: that figure is not written, and the folder is not refused for it
    r = nonideal_report_model(model, test, "rram_neurosim", out_dir=mine, **{**kw, "sigmas": ()})
    assert (mine / "accuracy_vs_sigma_rram_neurosim.png").read_text() == "mine"
    r = nonideal_report_model(model, test, "rram_neurosim", **kw)
    mine = tmp_path / "figure"
    mine.mkdir()
    (mine / "accuracy_vs_sigma_rram_neurosim.png").write_text("mine")
    with pytest.raises(ForeignFilesError, match="holds accuracy_vs_sigma_rram_neurosim.png, which"):
        write_nonideal_report(r, mine)
    assert (mine / "accuracy_vs_sigma_rram_neurosim.png").read_text() == "mine"
    write_nonideal_report(r, mine, overwrite=True)
    assert (mine / "accuracy_vs_sigma_rram_neurosim.png").read_bytes().startswith(b"\x89PNG")
    assert json.loads((mine / "nonideal_rram_neurosim.json").read_text())["ideal_acc"] == r["ideal_acc"]
    write_nonideal_report(r, mine)  # its own files now (the report's JSON, its figure beside it): a rerun replaces
    nonideal_report_model(model, test, "rram_neurosim", out_dir=mine, **kw)
    # a JSON of the user's under the report's name, the figures beside it are not the report's either
    (mine / "nonideal_rram_neurosim.json").write_text("{}")
    with pytest.raises(ForeignFilesError, match="holds accuracy_vs_sigma_rram_neurosim.png, "
                                                "nonideal_rram_neurosim.json, which"):
        write_nonideal_report(r, mine)
    # beside an estimate (neurosim estimate --nonideal): an estimate's folder, whose files these are
    est = tmp_path / "estimate"
    est.mkdir()
    (est / "nonideal_rram_neurosim.json").write_text("{}")
    with pytest.raises(ForeignFilesError):
        write_nonideal_report(r, est)
    estimate_model(model, [40], test, targets=["rram_neurosim"], samples=8, out_dir=est, overwrite=True)
    write_nonideal_report(r, est)
    assert json.loads((est / "nonideal_rram_neurosim.json").read_text())["ideal_acc"] == r["ideal_acc"]



def test_the_reports_own_files_are_known_by_its_json_and_its_mark(tmp_path, monkeypatch):
    """nonideal_<target>.json knows which files are the report's: (1) a report stopped after a figure, before its
    JSON, was refused on rerun ('did not write' the figure) without overwrite; now its mark
    nonideal_<target>.incomplete names them. (2) An estimate into a folder where write_nonideal_report wrote first
    refused its JSON and figures as a user's; they are recognised by the JSON's keys, as the other studies' are.
    (3) A figure of the user's of a name the report did not write there (a sweep not asked for) was taken for the
    report's beside its JSON and replaced by a rerun with that sweep; now only the figures its JSON's files names
    are its own."""
    import neurosim.viz as viz
    from neurosim.estimation import ForeignFilesError, estimate_model
    from neurosim.hardware.report import write_nonideal_report

    model, test = trained_mlp(steps=10)
    kw = dict(chips=1, sigmas=(0.0, 0.1), fault_rates=(0.0, 0.1), max_samples=40, seed=1)
    r = nonideal_report_model(model, test, "rram_neurosim", **kw)
    sigma, fault = "accuracy_vs_sigma_rram_neurosim.png", "accuracy_vs_fault_rate_rram_neurosim.png"
    # (1) stopped after its first figure
    real = viz.save_figure

    def stop(fig, path, *a, **k):
        if path.name == fault:
            raise KeyboardInterrupt
        return real(fig, path, *a, **k)

    out = tmp_path / "stopped"
    monkeypatch.setattr(viz, "save_figure", stop)
    with pytest.raises(KeyboardInterrupt):
        write_nonideal_report(r, out)
    monkeypatch.setattr(viz, "save_figure", real)
    assert sorted(p.name for p in out.iterdir()) == [sigma, "nonideal_rram_neurosim.incomplete"]
    write_nonideal_report(r, out)  # no overwrite: the figure there is the report's
    assert sorted(p.name for p in out.iterdir()) == [fault, sigma, "nonideal_rram_neurosim.json"]  # the mark gone
    # (2) an estimate into the report's folder keeps its files as they are
    written = {p.name: p.read_bytes() for p in out.iterdir()}
    report = estimate_model(model, [40], test, targets=["rram_neurosim"], samples=8, out_dir=out)
    assert report.files["estimate.json"].is_file()
    assert all((out / name).read_bytes() == data for name, data in written.items())
    # (3) a report without the fault-rate sweep: the user's fault-rate figure beside it is not its own
    mine = tmp_path / "mine"
    only_sigma = nonideal_report_model(model, test, "rram_neurosim", out_dir=mine, **{**kw, "fault_rates": ()})
    assert sorted(only_sigma["files"]) == ["json", "sigma"]
    (mine / fault).write_text("mine")
    with pytest.raises(ForeignFilesError, match=f"holds {fault}, which neurosim's nonideal study did not write"):
        write_nonideal_report(r, mine)
    with pytest.raises(ForeignFilesError, match=f"holds {fault}, which neurosim estimate did not write"):
        estimate_model(model, [40], test, targets=["rram_neurosim"], samples=8, out_dir=mine)
    assert (mine / fault).read_text() == "mine"
    (mine / fault).unlink()
    estimate_model(model, [40], test, targets=["rram_neurosim"], samples=8, out_dir=mine)  # the report's alone

def test_the_text_table_shows_a_spread_only_over_several_chips():
    text = format_nonideal(_report([84.0, 86.0], [[90.0, 90.0], [80.0, 82.0]]))
    # "Monte-Carlo": beside the estimate's table, where a target needs "3 chips", "(5 chips" read as hardware
    assert "non-idealities on rram_neurosim (2 Monte-Carlo chips, 100 test samples):" in text
    assert "operating point               85.00 ± 1.41 %" in text  # sample std of 84, 86: √2
    assert "0 %: 90.00±0.00, 10 %: 81.00±1.41" in text
    # one chip measures no spread: it read "85.00 ± 0.00 %"
    text = format_nonideal(_report([85.0], [[90.0], [81.0]]))
    assert "(1 Monte-Carlo chip, 100 test samples; one chip measures no spread):" in text
    assert "operating point               85.00 %   [" in text and "±" not in text
    assert "0 %: 90.00, 10 %: 81.00" in text
    # drift as the table gave it before its spread, t0 and compensation could be set: unchanged where they are not
    drifting = _report([85.0], [[90.0], [81.0]])
    drifting["operating_point"]["config"] = NonIdealConfig(drift_nu=0.05, drift_t_s=86400.0).to_dict()
    assert "ADC exact, drift ν 0.05 at 86400 s]" in format_nonideal(drifting)


def _estimates():
    import nir

    from hardware_models import ActivityProfile, estimate

    rng = np.random.default_rng(0)
    g = nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([300])),
        "fc1": nir.Linear(weight=rng.normal(size=(200, 300))),
        "lif1": nir.LIF(tau=np.ones(200), r=np.ones(200), v_leak=np.zeros(200), v_threshold=np.ones(200)),
        "fc2": nir.Linear(weight=rng.normal(size=(10, 200))),
        "lif2": nir.LIF(tau=np.ones(10), r=np.ones(10), v_leak=np.zeros(10), v_threshold=np.ones(10)),
        "output": nir.Output(output_type=np.array([10])),
    }, edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")])
    act = ActivityProfile(time_steps=4, dt_s=1e-3, samples=1,
                          spikes_per_step={"lif1": np.array([20.0, 10, 5, 5]), "lif2": np.array([1.0, 1, 0, 1])},
                          input_events_per_step=np.array([30.0, 20, 20, 10]))
    return {t: estimate(g, act, t) for t in ("rram_neurosim", "rram_lsm40nm", "loihi")}


def test_energy_groups_cover_every_crossbar_component_and_the_figures_are_written(tmp_path):
    ests = _estimates()
    for name in ("rram_neurosim", "rram_lsm40nm"):
        g = energy_groups(ests[name])
        assert list(g) == ["cells", "ADC", "drivers", "periphery", "static"]
        assert sum(g.values()) == approx_si(ests[name].total_energy_j, rel=1e-12)
        e = ests[name].energy_j
        assert g["periphery"] == approx_si(e["shift_add"] + e["accumulate"] + e["neuron_update"] + e["buffer"])
    assert energy_groups(ests["loihi"]) == approx_si(dict(ests["loihi"].energy_j))
    assert save_figure(plot_energy_breakdown(ests), tmp_path / "energy.png").stat().st_size > 1000
    assert save_figure(plot_tiles(ests.values()), tmp_path / "tiles.png").stat().st_size > 1000
    # tiles by hand on rram_neurosim: fc1 300 rows -> 3 row tiles; 8-bit weights on 1-bit cells, 14 columns per
    # weight -> 9 outputs per 128-column tile -> 23 column tiles: 69; fc2 2 x 2 = 4
    assert ests["rram_neurosim"].per_layer["lif1"]["tiles"] == 69
    assert ests["rram_neurosim"].per_layer["lif2"]["tiles"] == 2 * 2
    with pytest.raises(ValueError, match="no crossbar estimate"):
        plot_tiles({"loihi": ests["loihi"]})


def test_energy_breakdown_labels_its_totals_in_engineering_units():
    from types import SimpleNamespace

    # totals chosen where the old formatter failed: 2.5 J (read "2.5e+03 mJ"), 999.6 pJ (rounds up to 1 nJ, read
    # "1e+03 pJ"), 0.5 pJ (below its smallest prefix, read "5e-13 J")
    ests = {name: SimpleNamespace(target=name, kind="digital", energy_j={"synaptic": j}, total_energy_j=j)
            for name, j in (("a", 2.5), ("b", 999.6e-12), ("c", 5e-13))}
    fig = plot_energy_breakdown(ests)
    labels = [t.get_text().strip() for t in fig.axes[0].texts]
    assert labels == ["2.5 J", "1 nJ", "500 fJ"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--target", action="append", default=None)
    add_nonideal_arguments(p)
    return p


def test_nonideal_flags_without_flag_do_nothing_and_bad_requests_are_one_line_errors(tmp_path):
    from neurosim.cli import UserError

    p = _parser()
    assert run_nonideal_from_args(p.parse_args([]), "whatever.pt", tmp_path) == {}
    with pytest.raises(UserError, match="needs --checkpoint"):
        run_nonideal_from_args(p.parse_args(["--nonideal"]), None, tmp_path)
    with pytest.raises(UserError, match="needs a crossbar"):
        run_nonideal_from_args(p.parse_args(["--nonideal", "--target", "loihi"]), "x.pt", tmp_path)
    with pytest.raises(UserError, match="--mc-chips"):
        run_nonideal_from_args(p.parse_args(["--nonideal", "--mc-chips", "0"]), "x.pt", tmp_path)
    with pytest.raises(SystemExit):
        p.parse_args(["--sigmas", "0,abc"])
    assert p.parse_args(["--sigmas", "0,0.1"]).sigmas == [0.0, 0.1]
    from neurosim.hardware.cli_support import _fractions

    with pytest.raises(argparse.ArgumentTypeError, match=r"got '0\.5,,0\.7', with an empty entry \(value 2\)"):
        _fractions("0.5,,0.7")  # a value left out was dropped silently: two values swept, not the three meant
    assert _fractions(" 0.5, 0.7 ") == [0.5, 0.7]
    for flags, message in ((["--sigma", "-1"], "--sigma must be a number >= 0, got -1.0"),
                           (["--sigmas=-0.1,0"], "--sigmas must be a number >= 0, got -0.1"),
                           (["--read-noise", "-0.1"], "--read-noise must be a number >= 0"),
                           (["--fault-rate", "2"], r"--fault-rate must be a fraction in \[0, 1\], got 2.0"),
                           (["--fault-rates", "0,1.5"], "--fault-rates must be a fraction"),
                           (["--drift-time-s", "0"], "--drift-time-s must be a positive number of seconds"),
                           # σ typed in percent ran as 500 % of G; a drift read before t0 = 1 s made the cells grow
                           (["--sigma", "5"], r"--sigma must be a fraction of G in \[0, 1\] \(0.05 is 5 %\), got 5.0"),
                           (["--sigmas", "0,10"], r"--sigmas must be a fraction of G in \[0, 1\]"),
                           (["--read-noise", "2"], r"--read-noise must be a fraction of G in \[0, 1\]"),
                           (["--drift-nu", "0.05", "--drift-time-s", "0.5"],
                            r"--drift-time-s must be at least 1 s \(t0, .*\), got 0.5")):
        with pytest.raises(UserError, match=message):
            check_nonideal_args(p.parse_args(["--nonideal", *flags]), "x.pt")


@pytest.mark.parametrize("flags, message", [
    (["--levels", "1"], r"--levels must be 2 to 32768 magnitude levels per side \(at most 15 bits, .*\), got 1"),
    (["--levels", "16", "--no-quantize"], "--levels 16 sets the quantisation that --no-quantize turns off"),
    (["--adc-bits", "0"], r"--adc-bits must be 1 to 24 \(.*--no-adc reads them exactly\), got 0"),
    (["--adc-bits", "25"], "--adc-bits must be 1 to 24"),
    (["--adc-bits", "4", "--no-adc"], "--adc-bits 4 sets the ADC that --no-adc turns off"),
    (["--drift-nu", "0.05", "--drift-nu-std", "-0.1"], "--drift-nu-std must be a number >= 0, got -0.1"),
    (["--drift-nu", "0.05", "--drift-t0-s", "0"], "--drift-t0-s must be a positive number of seconds, got 0.0"),
    (["--drift-nu", "0.05", "--drift-t0-s", "100", "--drift-time-s", "50"],
     r"--drift-time-s must be at least 100 s \(t0, --drift-t0-s, .*\(t/100 s\)\^-ν .*\), got 50.0"),
    (["--drift-nu", "0.05", "--drift-t0-s", "1e6"], r"--drift-time-s must be at least 1e\+06 s .*, got 86400.0"),
    (["--drift-compensation"], r"--drift-compensation has no effect without --drift-nu \(ν = 0: no drift\): add "
                               "--drift-nu, e.g. 0.05, or leave --drift-compensation out"),
    (["--drift-t0-s", "10", "--drift-compensation"],
     "--drift-t0-s, --drift-compensation have no effect without --drift-nu .* or leave them out"),
    (["--adc-calibration", "programmed"], r"--adc-calibration has no effect without --drift-nu \(ν = 0: no drift\)"),
    (["--drift-nu", "0.05", "--adc-calibration", "programmed", "--no-adc"],
     "--adc-calibration programmed sets the ADC's full scale, which --no-adc turns off: leave one out"),
])
def test_the_quantisation_adc_and_drift_flags_are_checked_naming_the_flag(flags, message):
    from neurosim.cli import UserError

    p = _parser()
    with pytest.raises(UserError, match=message):
        check_nonideal_args(p.parse_args(["--nonideal", *flags]), "x.pt")
    if "--no-adc" not in flags and "--no-quantize" not in flags:
        with pytest.raises(UserError, match=f"{flags[0]}.* appl(y|ies) only with --nonideal"):
            check_nonideal_args(p.parse_args(flags), "x.pt")


def test_the_quantisation_adc_and_drift_flags_reach_the_chips_and_the_report(tmp_path, monkeypatch, capsys):
    from types import SimpleNamespace

    import neurosim.hardware.report as report

    model, test = trained_mlp(steps=20)
    monkeypatch.setattr(report, "load_checkpoint_model", lambda *a, **k: (
        model, test, SimpleNamespace(train=SimpleNamespace(loss=None))))
    p = _parser()
    common = ["-q", "--nonideal", "--target", "rram_neurosim", "--mc-chips", "1", "--nonideal-samples", "40",
              "--sigmas", "0", "--fault-rates", "0"]
    # the drift spread alone drifts (each cell's ν from N(0, 0.02) clipped at 0), so --drift-time-s applies
    check_nonideal_args(p.parse_args(["--nonideal", "--drift-nu-std", "0.02", "--drift-time-s", "100"]), "x.pt")
    flags = ["--levels", "16", "--adc-bits", "3", "--drift-nu", "0.05", "--drift-nu-std", "0.01",
             "--drift-t0-s", "10", "--drift-time-s", "1000", "--drift-compensation"]
    r = run_nonideal_from_args(p.parse_args([*common, *flags]), "x.pt", tmp_path)["rram_neurosim"]
    c = r["operating_point"]["config"]
    assert (c["levels"], c["cell_bits"], c["adc_bits"]) == (16, 1, 3)  # 16 levels sliced over 4 of the spec's cells
    assert (c["drift_nu"], c["drift_nu_std"], c["drift_t0_s"], c["drift_t_s"], c["drift_compensation"]) == \
        (0.05, 0.01, 10.0, 1000.0, True)
    assert r["sweep_base"]["levels"] == 16 and r["sweep_base"]["adc_bits"] is None  # the sweeps' quantisation too
    saved = json.loads((tmp_path / "nonideal_rram_neurosim.json").read_text())
    assert saved["operating_point"]["config"] == c
    out = capsys.readouterr().out
    assert "[16 levels on 4 1-bit cells per side, σ 5 %" in out
    assert "ADC 3 bits, drift ν 0.05 ± 0.01 at 1000 s from t0 = 10 s, compensated]" in out
    assert c["adc_calibration"] == "read"  # the default: the full scale follows the drifted cells
    # the ADC's full scale set when the chip was programmed: the drifted currents lose codes
    r = run_nonideal_from_args(p.parse_args([*common, *flags, "--adc-calibration", "programmed"]), "x.pt",
                               tmp_path)["rram_neurosim"]
    assert r["operating_point"]["config"]["adc_calibration"] == "programmed"
    assert "compensated, ADC full scale set when programmed]" in capsys.readouterr().out
    # no quantisation: analog cells, one per side, at the operating point and in the sweeps
    r = run_nonideal_from_args(p.parse_args([*common, "--no-quantize"]), "x.pt", tmp_path)["rram_neurosim"]
    assert r["operating_point"]["config"]["levels"] is None and r["sweep_base"]["levels"] is None
    assert r["operating_point"]["config"]["cell_bits"] is None and "[analog cells, σ 5 %" in capsys.readouterr().out
    # without the new flags: the spec's quantisation and ADC, no drift, as before
    r = run_nonideal_from_args(p.parse_args(common), "x.pt", tmp_path)["rram_neurosim"]
    c = r["operating_point"]["config"]
    assert (c["levels"], c["cell_bits"], c["adc_bits"], c["drift_nu"], c["drift_nu_std"], c["drift_t0_s"],
            c["drift_compensation"]) == (128, 1, 5, 0.0, 0.0, 1.0, False)


def test_estimate_checks_its_flags_before_estimating(tmp_path, capsys, monkeypatch):
    import neurosim.estimation as estimation
    from neurosim.cli import main

    monkeypatch.setattr(estimation, "estimate_checkpoint", lambda *a, **kw: pytest.fail("estimated first"))
    for flags, words in ((["--nonideal", "--mc-chips", "0"], "--mc-chips must be at least 1"),
                         (["--samples", "0"], "--samples must be at least 1, got 0")):
        assert main(["estimate", "--checkpoint", str(tmp_path / "c.pt"), *flags]) == 2
        assert words in capsys.readouterr().err


def test_a_spec_whose_adc_the_model_cannot_simulate_is_refused_before_estimating(tmp_path, capsys, monkeypatch):
    from pathlib import Path

    import hardware_models
    import neurosim.estimation as estimation
    from neurosim.cli import main

    shipped = Path(hardware_models.__file__).parent / "specs" / "rram_neurosim.toml"
    text = shipped.read_text().replace('name = "rram_neurosim"', 'name = "adc40"')
    spec = tmp_path / "adc40.toml"
    spec.write_text(text.replace("adc_bits = { value = 5,", "adc_bits = { value = 40,"))
    monkeypatch.setattr(estimation, "estimate_checkpoint", lambda *a, **kw: pytest.fail("estimated first"))
    # it ran as exact float32 reads, reported as "ADC 40 bits"
    assert main(["estimate", "--checkpoint", str(tmp_path / "c.pt"), "--target", str(spec), "--nonideal"]) == 2
    err = capsys.readouterr().err
    assert "target 'adc40': array.adc_bits = 40: the non-ideal model simulates ADCs of at most 24 bits" in err
    assert "--no-adc" in err
    with pytest.raises(ValueError, match="array.adc_bits = 40"):
        nonideal_config_from_spec(str(spec))
    assert nonideal_config_from_spec(str(spec), adc=False).adc_bits is None
    assert nonideal_config_from_spec(str(spec), adc_bits=8).adc_bits == 8  # an ADC of its own replaces the spec's
    with pytest.raises(ValueError, match="adc_bits = 8 sets the ADC that adc=False turns off"):
        nonideal_config_from_spec(str(spec), adc=False, adc_bits=8)


def test_nonideal_from_args_on_a_checkpoint_writes_reports(tmp_path, event_digits_cache, capsys):
    from neurosim.config import config_from_dict, config_to_dict
    from neurosim.nn import build_model
    from neurosim.training import save_checkpoint

    cfg = config_from_dict({"data": {"dataset": "event_digits", "time_steps": 4, "test_subset": 40},
                            "model": {"kind": "mlp", "input_shape": [2, 34, 34], "hidden": [16]}})
    torch.manual_seed(0)
    model = build_model(cfg.model, cfg.neuron)
    ckpt = save_checkpoint(tmp_path / "run" / "checkpoint.pt", {"model": model.state_dict(),
                                                                "config": config_to_dict(cfg)})
    args = _parser().parse_args(["-q", "--nonideal", "--target", "rram_lsm40nm", "--target", "loihi",
                                 "--mc-chips", "2", "--sigmas", "0,0.1", "--fault-rates", "0,0.05"])
    reports = run_nonideal_from_args(args, ckpt, None)
    assert list(reports) == ["rram_lsm40nm"]
    r = reports["rram_lsm40nm"]
    assert r["samples"] == 40 and r["checkpoint"] == str(ckpt) and r["operating_point"]["config"]["adc_bits"] == 4
    out = tmp_path / "run" / "estimate"  # the estimate command's default folder
    assert json.loads((out / "nonideal_rram_lsm40nm.json").read_text())["chips"] == 2
    assert (out / "accuracy_vs_sigma_rram_lsm40nm.png").is_file()
    out = capsys.readouterr().out
    assert "operating point" in out
    # a target asked for that gets no chips is named (it was left out without a word)
    assert "non-ideal: loihi not simulated (a digital target, not an RRAM crossbar; its integer arithmetic: " \
           "--fixed-point)" in out


def test_energy_breakdown_draws_every_component_in_its_own_colour():
    from types import SimpleNamespace

    from matplotlib.colors import to_rgba

    # 12 components over two targets (tutorial 07's figure had 14): the 10-colour cycle gave the 1st and the 11th,
    # e.g. a crossbar's cells and 45 nm logic's SRAM, one colour
    parts = [f"part{i:02d}" for i in range(12)]
    ests = {name: SimpleNamespace(target=name, kind="digital", energy_j={p: 1e-9 for p in own},
                                  total_energy_j=1e-9 * len(own))
            for name, own in (("a", parts[:6]), ("b", parts[6:]))}
    handles, names = plot_energy_breakdown(ests).axes[1].get_legend_handles_labels()
    assert names == parts
    colours = {to_rgba(h.patches[0].get_facecolor()) for h in handles}
    assert len(colours) == len(parts)


def test_tiles_figure_names_its_x_axis():
    assert plot_tiles(_estimates().values()).axes[0].get_xlabel() == "layer"

"""RRAM compute-in-memory: accuracy of the demo model under device non-idealities, its energy and latency on both
RRAM specs next to Loihi and the 45 nm conventional baseline, activity-aware vs activity-blind (SpikeSim-style)
crossbar energy, and the RRAM liquid state machine (software vs RRAM weights).

Demo model: the quickstart conv SNN (Conv 2→16 k5 · LIF · MaxPool · Conv 16→32 k5 · LIF · MaxPool · Linear 800→10
· LIF, T = 10) trained with BPTT for ``EPOCHS`` epochs (seed 0) on the bundled event digits, into
``runs/bench_rram/demo`` (rerunning reuses its checkpoint). Accuracy is on the whole test split (359 samples).

* ``acc_sigma_<p>`` / ``acc_stuck_<p>``: mean over ``CHIPS`` seeded chips (chip i: seed i, the same cells at every
  value) of the rram_neurosim target — weights quantised to its 8-bit signed weights (128 magnitude codes per
  side, bit-sliced over seven 1-bit cells), on/off 17 — with only programming variation σ = p % of G, or only p %
  stuck-at cells (half ON, half OFF) added (no ADC, read noise or drift: one effect at a time); ``*_rram_lsm40nm``:
  the same on the 40 nm macro spec (16 levels, one 4-bit cell per side).
* ``acc_operating_point_<target>``: everything at once — σ 5 %, 1 % stuck cells, 2 % read noise, the spec's ADC.
* noise-aware fine-tuning (2 epochs with fresh 5 %-stuck chips in every forward pass) vs the same fine-tuning
  without noise, both evaluated on chips never seen in training (seeds 1000+).
* energies from :func:`neurosim.estimation.estimate_model` (activity measured on 128 test samples, dt = 1 ms).
* LSM: the ``lsm_event_digits`` config (256 inputs, 256 neurons, T = 50, decay 0.9, V_th 5) for ``LSM_SEEDS``
  reservoir draws: software (Gaussian float weights), RRAM cells read exactly, RRAM cells on the chip (2 % read
  noise, 4-bit ADC); mean over draws.

Writes ``benchmarks/results/rram.json`` (flat JSON, accuracies in percent 0–100, energies in joules, latencies in
seconds) and figures in ``runs/bench_rram/``. Run: ``OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_rram.py``
(about 10 minutes of one CPU thread's time: 564 s of CPU, 1756 s of wall time beside other jobs, 1567 of them the
rram_neurosim section, most of it its operating point, whose 1-bit cells are each read and converted on their own).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from hardware_models import estimate  # noqa: E402
from neurosim.config import load_config  # noqa: E402
from neurosim.estimation import estimate_model  # noqa: E402
from neurosim.hardware import (NonIdealConfig, accuracy, chip_accuracies, nonideal_config_from_spec,  # noqa: E402
                               nonideal_report_model, noise_aware_finetune, plot_accuracy_vs_fault_rate,
                               plot_accuracy_vs_sigma, plot_energy_breakdown, plot_tiles)
from neurosim.lsm import load_lsm_config, run_lsm  # noqa: E402
from neurosim.runs import CONFIGS, train_run  # noqa: E402
from neurosim.viz import save_figure  # noqa: E402

EPOCHS = 4
CHIPS = 5
SIGMAS = (0.0, 0.05, 0.1, 0.2, 0.5)
FAULTS = (0.0, 0.01, 0.02, 0.05, 0.1)
RRAM = ("rram_neurosim", "rram_lsm40nm")
TARGETS = RRAM + ("loihi", "conventional_45nm")
LSM_SEEDS = (0, 1, 2, 3, 4)
OUT = ROOT / "runs" / "bench_rram"
RESULT = ROOT / "benchmarks" / "results" / "rram.json"


def pct(x: float) -> str:
    return f"{x:.2f}"


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def main() -> None:
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    t_start = time.perf_counter()
    res: dict = {"chips": CHIPS, "epochs": EPOCHS}

    # ------------------------------------------------------------------ the demo model
    t0 = time.perf_counter()
    cfg = load_config(CONFIGS / "quickstart.toml", ["name=demo", f'out_dir="{OUT}"', f"train.epochs={EPOCHS}"])
    reused = (OUT / "demo" / "checkpoint.pt").is_file()
    run = train_run(cfg, resume=True, progress=False, figures=False)
    model, data = run.model.eval(), run.data
    ideal = accuracy(model, data.test)
    res["acc_ideal"] = ideal
    res["test_samples"] = len(data.test.labels)
    how = f"checkpoint {run.run_dir / 'checkpoint.pt'} reused" if reused else "trained"
    print(f"demo model ({EPOCHS} epochs, {how}, {time.perf_counter() - t0:.0f} s): ideal test accuracy {ideal:.2f} % "
          f"({res['test_samples']} samples)")

    # ------------------------------------------------------------------ accuracy under non-idealities
    reports = {}
    for target in RRAM:
        t0 = time.perf_counter()
        r = nonideal_report_model(model, data.test, target, chips=CHIPS, sigmas=SIGMAS, fault_rates=FAULTS,
                                  ideal=ideal, out_dir=OUT / "nonideal")
        reports[target] = r
        sfx = "" if target == "rram_neurosim" else f"_{target}"
        for p in r["sweeps"]["sigma_rel"]:
            res[f"acc_sigma_{round(100 * p['value'])}{sfx}"] = p["mean"]
            res[f"acc_sigma_{round(100 * p['value'])}_std{sfx}"] = p["std"]
        for p in r["sweeps"]["fault_rate"]:
            res[f"acc_stuck_{round(100 * p['value'])}{sfx}"] = p["mean"]
            res[f"acc_stuck_{round(100 * p['value'])}_std{sfx}"] = p["std"]
        op = r["operating_point"]
        res[f"acc_operating_point_{target}"] = op["mean"]
        res[f"acc_operating_point_std_{target}"] = op["std"]
        print(f"\n{target} ({CHIPS} chips per point, {time.perf_counter() - t0:.0f} s):")
        print("  σ (% of G)      " + "".join(f"{100 * p['value']:>15g}" for p in r["sweeps"]["sigma_rel"]))
        print("  accuracy (%)    " + "".join(f"{p['mean']:>9.2f} ±{p['std']:4.2f}" for p in r["sweeps"]["sigma_rel"]))
        print("  stuck-at (%)    " + "".join(f"{100 * p['value']:>15g}" for p in r["sweeps"]["fault_rate"]))
        print("  accuracy (%)    " + "".join(f"{p['mean']:>9.2f} ±{p['std']:4.2f}" for p in r["sweeps"]["fault_rate"]))
        c = op["config"]
        print(f"  operating point (σ 5 %, 1 % stuck, 2 % read noise, {c['adc_bits']}-bit ADC per "
              f"{c['tile_rows']}-row tile): {op['mean']:.2f} ± {op['std']:.2f} %  (ideal {ideal:.2f} %)")
    save_figure(plot_accuracy_vs_sigma(reports), OUT / "accuracy_vs_sigma.png")
    save_figure(plot_accuracy_vs_fault_rate(reports), OUT / "accuracy_vs_fault_rate.png")

    # ------------------------------------------------------------------ noise-aware fine-tuning
    t0 = time.perf_counter()
    stuck = nonideal_config_from_spec("rram_neurosim", adc=False, fault_rate=0.05)
    tuned = noise_aware_finetune(model, data.train, stuck, epochs=2, lr=5e-4, seed=0)
    control = noise_aware_finetune(model, data.train, NonIdealConfig(), epochs=2, lr=5e-4, seed=0)
    for key, m in (("before", model), ("finetuned", tuned), ("control_ft", control)):
        accs = chip_accuracies(m, data.test, stuck, chips=CHIPS, seed=1000)
        res[f"acc_stuck_5_{key}_unseen_chips"] = statistics.mean(accs)
    res["acc_ideal_finetuned"] = accuracy(tuned, data.test)
    print(f"\nnoise-aware fine-tuning at 5 % stuck cells ({time.perf_counter() - t0:.0f} s), {CHIPS} unseen chips: "
          f"before {res['acc_stuck_5_before_unseen_chips']:.2f} %, fine-tuned with faults "
          f"{res['acc_stuck_5_finetuned_unseen_chips']:.2f} %, fine-tuned without "
          f"{res['acc_stuck_5_control_ft_unseen_chips']:.2f} % (ideal after fine-tuning "
          f"{res['acc_ideal_finetuned']:.2f} %)")

    # ------------------------------------------------------------------ energy and latency
    t0 = time.perf_counter()
    torch.manual_seed(0)
    rep = estimate_model(model, cfg.model.input_shape, data.test, TARGETS, dt_s=cfg.neuron.dt_ms * 1e-3,
                         samples=128)
    ests = dict(rep.estimates)
    for t in RRAM:
        ests[f"{t}_blind"] = estimate(rep.graph, rep.activity, t, activity_blind=True)
    print(f"\nenergy per inference ({rep.activity.samples} test samples, T = {rep.activity.time_steps}, "
          f"{time.perf_counter() - t0:.0f} s):")
    print(f"  {'target':<24}{'energy':>12}{'latency':>12}{'tiles/cores':>13}  fits  largest part")
    for name, e in ests.items():
        res[f"energy_j_{name}"] = e.total_energy_j
        lat = e.latency_per_inference_s
        res[f"latency_s_{name}"] = lat
        cores = e.mapping.cores_used if e.mapping is not None else None
        if cores is not None:
            res[f"{'tiles' if e.kind == 'crossbar' else 'cores'}_{name}"] = cores
        part, j = max(e.energy_j.items(), key=lambda kv: kv[1])
        print(f"  {name:<24}{e.total_energy_j * 1e9:>10.4g} nJ{'-' if lat is None else f'{lat * 1e6:9.4g} µs':>12}"
              f"{'-' if cores is None else cores:>13}  {'-' if e.fits is None else ('yes' if e.fits else 'no'):<4}  "
              f"{part} {100 * j / e.total_energy_j:.0f} %")
    for t in RRAM:
        res[f"energy_ratio_activity_aware_over_blind_{t}"] = ests[t].total_energy_j / ests[f"{t}_blind"].total_energy_j
    res["energy_ratio_activity_aware_over_blind"] = res["energy_ratio_activity_aware_over_blind_rram_neurosim"]
    for t in RRAM:
        res[f"energy_ratio_loihi_over_{t}"] = ests["loihi"].total_energy_j / ests[t].total_energy_j
        e = ests[t]
        for k, v in e.energy_j.items():
            res[f"energy_j_{t}_{k}"] = v
    print("  activity-aware / activity-blind RRAM energy: " + ", ".join(
        f"{t} {res[f'energy_ratio_activity_aware_over_blind_{t}']:.3f}" for t in RRAM))
    print("  Loihi / RRAM energy: " + ", ".join(f"{t} {res[f'energy_ratio_loihi_over_{t}']:.1f}x" for t in RRAM))
    save_figure(plot_energy_breakdown(ests, title="demo model: energy per inference"), OUT / "energy.png")
    save_figure(plot_tiles({t: ests[t] for t in RRAM}), OUT / "tiles.png")

    # ------------------------------------------------------------------ the RRAM liquid state machine
    t0 = time.perf_counter()
    runs = []
    for seed in LSM_SEEDS:
        lcfg = load_lsm_config(CONFIGS / "lsm_event_digits.toml", [f"seed={seed}", f"name=lsm_seed{seed}",
                                                                   f'out_dir="{OUT}"'])
        runs.append(run_lsm(lcfg, progress=False, write=seed == LSM_SEEDS[0]).metrics)
    for kind in ("software", "rram_ideal", "rram"):
        accs = [m[f"acc_{kind}"] for m in runs]
        res[f"lsm_acc_{kind}"] = statistics.mean(accs)
        res[f"lsm_acc_{kind}_std"] = statistics.stdev(accs) if len(accs) > 1 else 0.0
    m0 = runs[0]
    for k, v in m0.items():
        if k.startswith(("energy_j_", "cell_read_j_")):
            res[f"lsm_{k}"] = v
    print(f"\nRRAM LSM ({len(LSM_SEEDS)} reservoir draws, {time.perf_counter() - t0:.0f} s), linear readout, "
          f"{m0['test_samples']} test samples:")
    print(f"  software (Gaussian float weights)       {res['lsm_acc_software']:.2f} ± {res['lsm_acc_software_std']:.2f} %")
    print(f"  RRAM cells, exact reads                 {res['lsm_acc_rram_ideal']:.2f} ± "
          f"{res['lsm_acc_rram_ideal_std']:.2f} %")
    print(f"  RRAM cells on the chip (noise, 4b ADC)  {res['lsm_acc_rram']:.2f} ± {res['lsm_acc_rram_std']:.2f} %")
    print("  reservoir energy per inference (seed 0): " + ", ".join(
        f"{k[len('energy_j_'):]} {v * 1e9:.4g} nJ" for k, v in m0.items() if k.startswith("energy_j_")))

    res["seconds"] = time.perf_counter() - t_start
    res = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in res.items()}
    write_json(RESULT, res)
    print(f"\n{len(res)} results in {RESULT.relative_to(ROOT)}, figures in {OUT.relative_to(ROOT)}; "
          f"{res['seconds']:.0f} s in all")


if __name__ == "__main__":
    main()

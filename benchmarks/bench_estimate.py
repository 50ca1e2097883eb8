"""How long `hardware_models.estimate` takes on a network with > 1 M synapses and 100 time steps, and the
estimate table of the demo model (the conv SNN `make demo` trains) on every shipped target.

Part 1 (speed):
The network is a small event-vision CNN written directly as a NIR graph (2x34x34 events → conv 3x3 →
LIF → sum-pool 2 → conv 3x3 → LIF → flatten → fc 256 → LIF → fc 10 → LIF, about 3.9 M unrolled synapses),
with a synthetic ActivityProfile: per-neuron rates drawn around 5 % per step, a per-step profile that
rises and decays. Each target is timed from the NIR graph (analysis included), median of 5 runs.

The comparison printed next to each chip is the popular naive estimate
``E_MAC · first-layer MACs · T + E_AC · synops`` (45 nm), the figure most SNN papers report.

Part 2 (demo model): the checkpoint of ``make demo`` (``runs/demo/checkpoint.pt``, or ``--checkpoint PATH``;
when there is none, the demo config is trained first, about 1–2 min), its activity measured on 64 test samples,
estimated on every target.

Writes ``benchmarks/results/estimate.json`` (flat JSON): synapses, time_steps, max_seconds_per_target,
seconds_<target>, energy_uj_synthetic_<target> and cores_synthetic_<target> for the synthetic network;
energy_uj_per_inference_<target>, latency_ms_per_inference_<target>, fits_<target> and demo_test_acc for the
demo model.

Run: ``.venv/bin/python benchmarks/bench_estimate.py [--checkpoint runs/demo/checkpoint.pt]``
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nir
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hardware_models import ActivityProfile, analyze, estimate, format_estimates, list_targets  # noqa: E402

T = 100  # time steps per inference
REPEATS = 5
RESULT = ROOT / "benchmarks" / "results" / "estimate.json"


def lif(shape) -> nir.LIF:
    return nir.LIF(tau=np.full(shape, 0.02), r=np.ones(shape), v_leak=np.zeros(shape), v_threshold=np.ones(shape))


def build_graph(rng: np.random.Generator) -> nir.NIRGraph:
    def conv(c_out, c_in):
        return nir.Conv2d(input_shape=None, weight=rng.normal(size=(c_out, c_in, 3, 3)), stride=1, padding=1,
                          dilation=1, groups=1, bias=np.zeros(c_out))

    nodes = {
        "input": nir.Input(input_type=np.array([2, 34, 34])),
        "conv1": conv(16, 2),
        "lif1": lif((16, 34, 34)),
        "pool1": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "conv2": conv(32, 16),
        "lif2": lif((32, 17, 17)),
        "flat": nir.Flatten(input_type={"input": np.array([32, 17, 17])}, start_dim=0),
        "fc1": nir.Linear(weight=rng.normal(size=(256, 32 * 17 * 17))),
        "lif3": lif((256,)),
        "fc2": nir.Linear(weight=rng.normal(size=(10, 256))),
        "lif4": lif((10,)),
        "output": nir.Output(output_type=np.array([10])),
    }
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])))


def synthetic_activity(graph: nir.NIRGraph, rng: np.random.Generator) -> ActivityProfile:
    facts = analyze(graph)
    envelope = np.exp(-np.arange(T) / 40.0) * (1 - np.exp(-np.arange(1, T + 1) / 5.0))  # rise, then decay
    per_step, counts = {}, {}
    for name, pop in facts.populations.items():
        rate = np.clip(rng.gamma(2.0, 0.025, size=pop.shape), 0, 1)  # spikes per neuron per step, mean 0.05
        series = envelope / envelope.mean() * rate.sum()
        per_step[name] = np.minimum(series, pop.neurons)
        counts[name] = rate * per_step[name].sum() / rate.sum()
    return ActivityProfile(time_steps=T, dt_s=1e-3, samples=32, spikes_per_step=per_step, spike_counts=counts,
                           input_events_per_step=per_step["input"])


def write_atomic(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)


def demo_checkpoint(path: str | None) -> Path:
    """The demo model's checkpoint: the given path, ``runs/demo/checkpoint.pt``, or a freshly trained one."""
    if path:
        if not Path(path).is_file():
            raise SystemExit(f"--checkpoint {path}: no such file")
        return Path(path)
    default = ROOT / "runs" / "demo" / "checkpoint.pt"
    if default.is_file():
        return default
    from neurosim.runs import demo

    print("no runs/demo/checkpoint.pt: training the demo model first (make demo does the same)")
    demo(out_dir=ROOT / "runs", progress=False, estimate=False)
    return default


def demo_estimates(path: Path) -> dict:
    import torch

    from neurosim.estimation import estimate_checkpoint
    from neurosim.runs import evaluate_checkpoint

    torch.set_num_threads(2)
    acc = evaluate_checkpoint(path, progress=False)["acc"]
    t0 = time.perf_counter()
    report = estimate_checkpoint(path, samples=64, out_dir=ROOT / "benchmarks" / "results" / "estimate_demo")
    wall = time.perf_counter() - t0
    print(f"\ndemo model ({path}, test accuracy {100 * acc:.2f} %), activity on {report.activity.samples} test "
          f"samples, T = {report.activity.time_steps}; NIR export + activity + all targets: {wall:.1f} s")
    print(report.table())
    shown = path.resolve().relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path
    out = {"demo_checkpoint": str(shown), "demo_test_acc": round(100 * acc, 2), "demo_estimate_seconds": round(wall, 2)}
    for t, e in report.estimates.items():
        out[f"energy_uj_per_inference_{t}"] = e.total_energy_j * 1e6
        if e.latency_per_inference_s is not None:
            out[f"latency_ms_per_inference_{t}"] = e.latency_per_inference_s * 1e3
        if e.mapping is not None:
            out[f"fits_{t}"] = bool(e.fits)
    return out


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=None, help="demo checkpoint (default: runs/demo/checkpoint.pt)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    graph = build_graph(rng)
    activity = synthetic_activity(graph, rng)
    facts = analyze(graph)
    print(f"network: {facts.neurons:,} neurons, {facts.synapses_dense:,} synapses, T = {T}, "
          f"{facts.synops(activity).total:,.0f} synops per inference")

    seconds, results = {}, []
    for target in list_targets():
        times = []
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            est = estimate(graph, activity, target)
            times.append(time.perf_counter() - t0)
        seconds[target] = statistics.median(times)
        results.append(est)

    print()
    print(format_estimates(results))
    print()
    print(f"{'target':<18} {'median s':>9}  {'energy / naive 45 nm estimate':>30}")
    for est in results:
        naive = est.baselines_j["naive_snn_conventional_45nm"]
        print(f"{est.target:<18} {seconds[est.target]:>9.3f}  {est.total_energy_j / naive:>29.2f}x")
    worst = max(seconds.values())
    print(f"\nslowest target: {worst:.3f} s (goal < 1 s per target)")

    out = {"synapses": int(facts.synapses_dense), "time_steps": T, "max_seconds_per_target": round(worst, 4)}
    out.update({f"seconds_{t}": round(s, 4) for t, s in seconds.items()})
    out.update({f"energy_uj_synthetic_{e.target}": e.total_energy_j * 1e6 for e in results})
    out.update({f"cores_synthetic_{e.target}": e.mapping.cores_used for e in results if e.mapping is not None})
    out.update(demo_estimates(demo_checkpoint(args.checkpoint)))
    write_atomic(RESULT, out)
    print(f"wrote {RESULT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

"""neurosim's numba event transforms vs tonic 1.7.0, same run; and the data pipeline feeding training.

Part 1 — transforms. A stream of 1e6 events (default) over 10 s in tonic's N-MNIST dtype (x, y, t, p all int64;
t in µs, sorted), for a 34×34×2 and a 128×128×2 sensor: 80 % from three Gaussian blobs (σ = W/12 px) moving on
Lissajous paths, 20 % uniform noise, random polarity; seeded. Compared (neurosim vs tonic, same input):
ToFrame(n_time_bins=10), ToFrame(time_window=100 ms), Denoise(filter_time=10 ms), RefractoryPeriod(delta=1 ms),
Downsample(spatial_factor=0.5, time_factor=0.001), plus CenterCrop and ToVoxelGrid(10) as extras. Every neurosim
kernel is compiled and warmed up on the same input first. Runs are interleaved (tonic, neurosim, tonic, ...) so
both see the same machine load; each time is the median of --reps runs (default 9) for neurosim and for tonic's
fast transforms, and of --slow-reps runs (default 3) for tonic's Denoise and RefractoryPeriod (pure-Python loops,
seconds per call). Minimum times are kept too. Speedup = tonic median ÷ neurosim median (the speedup_* keys);
speedup_*_of_minima = tonic min ÷ neurosim min, less sensitive to other load on a shared machine.

Identical outputs: every compared output is checked element for element (dtype, shape, values). Denoise and
RefractoryPeriod are compared — and their speedups computed — with ``tonic_compatible=True``, which reproduces
tonic's start-up behaviour (tonic acts as if every pixel fired at t = 0; see neurosim.data.transforms); the default
mode runs the same kernel (its time is reported as *_default_ms) and differs from tonic only on the events that
start-up behaviour touches (counted in *_default_events_differing).

Part 2 — data pipeline on the bundled event digits (1,438 training samples, 34×34×2, T = 10, batch 32), with the
quickstart model (conv SNN, BPTT, Adam) on the CPU:
* conversion: events → frames [T, 2, 34, 34] for the whole training split with neurosim's ToFrame and with tonic's
  (the same loop: dataset __getitem__ + ToFrame), samples/s; frames checked identical;
* steady state: the training loop of Trainer.train_epoch, timing separately the wait for the next batch from the
  FrameLoader over cached frames (what `neurosim train` does) and the step (forward, backward, optimizer) over
  --steps steps; data_fraction_cached = total data time ÷ total step time (the share of wall time spent waiting for
  data; per-batch medians also kept — on a shared 2-CPU machine a batch's gather can wait tens of ms for a torch
  worker thread, which skews single batches, not the total); and the loader alone over one epoch;
* "on the fly": the data time a batch would cost without the frame cache (32 × (__getitem__ + ToFrame)), for
  neurosim and for tonic, against the same step time.
Training is not data-bound when total data time < 10 % of total step time.

Usage: python benchmarks/bench_transforms.py [--events N] [--reps 9] [--slow-reps 3] [--steps 60] [--out PATH]
Writes benchmarks/results/transforms.json (flat). Prints every time and ratio; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE.parent))

import numba  # noqa: E402
import tonic  # noqa: E402
import tonic.transforms as tt  # noqa: E402

import neurosim.data.transforms as nt  # noqa: E402
from neurosim._io import atomic_write_text  # noqa: E402
from neurosim.data.dvs import EVENT_DTYPE  # noqa: E402

TARGETS = {"speedup_toframe_bins": 20, "speedup_toframe_window": 20, "speedup_denoise": 100,
           "speedup_refractory": 100}
DATA_FRACTION_TARGET = 0.10


def make_stream(n: int, width: int, height: int, duration_us: int = 10_000_000, seed: int = 0) -> np.ndarray:
    """``n`` events: 80 % from three moving Gaussian blobs, 20 % uniform noise; sorted int64 timestamps."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, duration_us, n))
    phase = t / duration_us * 2 * np.pi
    blob = rng.integers(0, 3, n)
    cx = width / 2 + 0.35 * width * np.sin((blob + 1) * 3 * phase + blob)
    cy = height / 2 + 0.35 * height * np.cos((blob + 2) * 2 * phase + 2 * blob)
    sigma = width / 12
    x = np.rint(cx + sigma * rng.standard_normal(n))
    y = np.rint(cy + sigma * rng.standard_normal(n))
    noise = rng.random(n) < 0.2
    x[noise] = rng.integers(0, width, noise.sum())
    y[noise] = rng.integers(0, height, noise.sum())
    events = np.zeros(n, EVENT_DTYPE)
    events["x"] = np.clip(x, 0, width - 1)
    events["y"] = np.clip(y, 0, height - 1)
    events["t"] = t
    events["p"] = rng.integers(0, 2, n)
    return events


def identical(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and bool(np.array_equal(a, b))


def timed(fn, events):
    t0 = time.perf_counter()
    out = fn(events)
    return time.perf_counter() - t0, out


def compare(name: str, ours, theirs, events, reps: int, tonic_reps: int) -> dict:
    """Interleaved timings of ``ours`` and ``theirs`` on ``events``; medians and minima in ms, identity."""
    ours(events)  # compile + warm up
    ours(events)
    t_ours, t_theirs, out_ours, out_theirs = [], [], None, None
    for i in range(max(reps, tonic_reps)):
        if i < tonic_reps:
            dt, out = timed(theirs, events.copy())  # a copy: tonic's ToFrame may write into its input
            t_theirs.append(dt)
            out_theirs = out if out_theirs is None else out_theirs
        if i < reps:
            dt, out = timed(ours, events)
            t_ours.append(dt)
            out_ours = out if out_ours is None else out_ours
    same = identical(out_ours, out_theirs)
    res = {"neurosim_ms": 1e3 * statistics.median(t_ours), "tonic_ms": 1e3 * statistics.median(t_theirs),
           "neurosim_min_ms": 1e3 * min(t_ours), "tonic_min_ms": 1e3 * min(t_theirs),
           "neurosim_reps": len(t_ours), "tonic_reps": len(t_theirs), "identical": same}
    res["speedup"] = res["tonic_ms"] / res["neurosim_ms"]
    res["speedup_of_minima"] = res["tonic_min_ms"] / res["neurosim_min_ms"]
    print(f"  {name:<26} neurosim {res['neurosim_ms']:9.2f} ms   tonic {res['tonic_ms']:9.1f} ms "
          f"({len(t_theirs)} runs)   {res['speedup']:7.1f}×  (minima: {res['speedup_of_minima']:6.1f}×)   "
          f"identical: {same}", flush=True)
    return res


def bench_transforms(n: int, reps: int, slow_reps: int, results: dict) -> bool:
    all_same = True
    for width in (34, 128):
        size = (width, width, 2)
        events = make_stream(n, width, width)
        tag = f"{width}"
        print(f"\n{n:,} events, sensor {width}×{width}×2", flush=True)
        cases = [
            ("toframe_bins", "ToFrame(n_time_bins=10)", nt.ToFrame(size, n_time_bins=10),
             tt.ToFrame(sensor_size=size, n_time_bins=10), reps),
            ("toframe_window", "ToFrame(time_window=100ms)", nt.ToFrame(size, time_window=100_000),
             tt.ToFrame(sensor_size=size, time_window=100_000), reps),
            ("denoise", "Denoise(10 ms)", nt.Denoise(10_000, tonic_compatible=True), tt.Denoise(10_000), slow_reps),
            ("refractory", "RefractoryPeriod(1 ms)", nt.RefractoryPeriod(1_000, tonic_compatible=True),
             tt.RefractoryPeriod(1_000), slow_reps),
            ("downsample", "Downsample(0.5, 0.001)", nt.Downsample(spatial_factor=0.5, time_factor=0.001),
             tt.Downsample(spatial_factor=0.5, time_factor=0.001), reps),
            ("centercrop", "CenterCrop(W/2)", nt.CenterCrop(size, width // 2), tt.CenterCrop(size, width // 2), reps),
            ("voxelgrid", "ToVoxelGrid(10)", nt.ToVoxelGrid(size, 10), tt.ToVoxelGrid(size, 10), reps),
        ]
        for key, label, ours, theirs, tonic_reps in cases:
            r = compare(label, ours, theirs, events, reps, tonic_reps)
            all_same &= r["identical"]
            for k, v in r.items():
                results[f"{key}_{tag}_{k}"] = v
            suffix = "" if width == 34 else f"_{tag}"
            results[f"speedup_{key}{suffix}"] = r["speedup"]
            results[f"speedup_{key}{suffix}_of_minima"] = r["speedup_of_minima"]
        # the default (correct start-up) mode: same kernel, differs from tonic only where tonic's start-up applies
        for key, default, compat in (("denoise", nt.Denoise(10_000), nt.Denoise(10_000, tonic_compatible=True)),
                                     ("refractory", nt.RefractoryPeriod(1_000),
                                      nt.RefractoryPeriod(1_000, tonic_compatible=True))):
            default(events)
            times = []
            for _ in range(reps):
                dt, out = timed(default, events)
                times.append(dt)
            ref = compat(events)
            # one output contains the other (the modes differ only in how a pixel that never fired counts)
            differing = abs(len(out) - len(ref))
            results[f"{key}_{tag}_default_ms"] = 1e3 * statistics.median(times)
            results[f"{key}_{tag}_default_events_differing"] = int(differing)
            print(f"  {key} default mode: {1e3 * statistics.median(times):.2f} ms, {differing} events differ from "
                  f"tonic (start-up only)")
    return all_same


# ------------------------------------------------------------------------------------------------ pipeline


def bench_pipeline(steps: int, results: dict) -> bool:
    import torch

    from neurosim.config import load_config
    from neurosim.data import EventDigits, FrameLoader, events_to_frames
    from neurosim.nn import build_model
    from neurosim.training import get_loss, get_method, seed_everything

    cfg = load_config(HERE.parent / "neurosim" / "configs" / "quickstart.toml")
    T, batch = cfg.data.time_steps, cfg.data.batch_size
    ds = EventDigits("train", progress=True)
    size = EventDigits.sensor_size
    n = len(ds)
    print(f"\ndata pipeline: event digits train split ({n} samples, {size}), T = {T}, batch {batch}, "
          f"torch threads {torch.get_num_threads()}", flush=True)

    ours, theirs = nt.ToFrame(size, n_time_bins=T), tt.ToFrame(sensor_size=size, n_time_bins=T)
    ours(ds[0][0])  # warm-up

    def convert(to_frame):
        out = []
        t0 = time.perf_counter()
        for i in range(n):
            events, _ = ds[i]
            out.append(to_frame(events))
        return time.perf_counter() - t0, out

    def getitem_only():
        t0 = time.perf_counter()
        for i in range(n):
            ds[i]
        return time.perf_counter() - t0

    t_get = min(getitem_only() for _ in range(2))
    (t_ours, f_ours), (t_theirs, f_theirs) = min((convert(ours) for _ in range(2)), key=lambda r: r[0]), \
        min((convert(theirs) for _ in range(2)), key=lambda r: r[0])
    same = all(identical(a, b) for a, b in zip(f_ours, f_theirs))
    t0 = time.perf_counter()
    frames, labels = events_to_frames(ds, size, T, progress=False)
    t_pipeline = time.perf_counter() - t0
    results.update({
        "pipeline_samples": n,
        "pipeline_getitem_us_per_sample": 1e6 * t_get / n,
        "pipeline_convert_samples_per_s_neurosim": n / t_ours,
        "pipeline_convert_samples_per_s_tonic": n / t_theirs,
        "pipeline_convert_speedup": t_theirs / t_ours,
        "pipeline_events_to_frames_samples_per_s": n / t_pipeline,
        "pipeline_frames_identical": same,
    })
    print(f"  events → frames: neurosim {n / t_ours:,.0f} samples/s, tonic {n / t_theirs:,.0f} samples/s "
          f"({t_theirs / t_ours:.1f}×; __getitem__ alone {1e6 * t_get / n:.0f} µs/sample), identical: {same}")
    print(f"  events_to_frames (frames.py, neurosim ToFrame): {n / t_pipeline:,.0f} samples/s")

    # the training loop of Trainer.train_epoch, data wait and step timed separately
    seed_everything(cfg.seed)
    model = build_model(cfg.model, cfg.neuron)
    method, loss = get_method(cfg.train.method), get_loss(cfg.train.loss)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    loader = FrameLoader(frames, labels, batch, shuffle=True, seed=cfg.seed)
    model.train()
    data_t, step_t = [], []
    warmup = 2
    it = iter(loader)
    for k in range(steps + warmup):
        t0 = time.perf_counter()
        try:
            x_seq, y = next(it)
        except StopIteration:
            it = iter(loader)
            x_seq, y = next(it)
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        method.forward_backward(model, x_seq, y, loss)
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        opt.step()
        t2 = time.perf_counter()
        if k >= warmup:
            data_t.append(t1 - t0)
            step_t.append(t2 - t1)
    data_ms, step_ms = 1e3 * statistics.median(data_t), 1e3 * statistics.median(step_t)
    # the loader alone, one full epoch (no training in between)
    alone = []
    it = iter(loader)
    while True:
        t0 = time.perf_counter()
        try:
            next(it)
        except StopIteration:
            break
        alone.append(time.perf_counter() - t0)
    alone_ms = 1e3 * statistics.median(alone)
    per_sample_ours = (t_ours / n) * 1e3  # ms per sample, __getitem__ + ToFrame
    per_sample_theirs = (t_theirs / n) * 1e3
    fly_ours, fly_theirs = batch * per_sample_ours, batch * per_sample_theirs
    mean_step_ms = 1e3 * statistics.fmean(step_t)
    results.update({
        "train_steps_timed": steps,
        "train_step_ms": step_ms,
        "train_samples_per_s": batch * len(step_t) / (sum(data_t) + sum(step_t)),
        "train_step_mean_ms": mean_step_ms,
        "loader_ms_per_batch_cached": data_ms,
        "loader_mean_ms_per_batch_cached": 1e3 * statistics.fmean(data_t),
        "data_fraction_cached": sum(data_t) / sum(step_t),
        "data_fraction_cached_medians": data_ms / step_ms,
        "loader_alone_ms_per_batch": alone_ms,
        "loader_alone_samples_per_s": batch / (alone_ms / 1e3),
        "data_ms_per_batch_on_the_fly_neurosim": fly_ours,
        "data_fraction_on_the_fly_neurosim": fly_ours / mean_step_ms,
        "data_ms_per_batch_on_the_fly_tonic": fly_theirs,
        "data_fraction_on_the_fly_tonic": fly_theirs / mean_step_ms,
        "training_not_data_bound": sum(data_t) / sum(step_t) < DATA_FRACTION_TARGET,
    })
    print(f"  training step (quickstart conv SNN, BPTT, batch {batch}): {step_ms:.1f} ms median, "
          f"{mean_step_ms:.1f} ms mean; "
          f"{results['train_samples_per_s']:.0f} samples/s end to end")
    print(f"  data per batch: cached frames {data_ms:.3f} ms median; total data time = "
          f"{100 * results['data_fraction_cached']:.2f} % of total step time (medians: "
          f"{100 * data_ms / step_ms:.2f} %; loader alone {alone_ms:.2f} ms/batch = "
          f"{results['loader_alone_samples_per_s']:,.0f} samples/s); on the fly (no frame cache; ÷ mean step): "
          f"neurosim {fly_ours:.2f} ms ({100 * fly_ours / mean_step_ms:.1f} %), tonic {fly_theirs:.2f} ms "
          f"({100 * fly_theirs / mean_step_ms:.1f} %)")
    return same


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=9, help="runs per neurosim transform and tonic's fast ones (>= 5)")
    ap.add_argument("--slow-reps", type=int, default=3, help="runs of tonic's Denoise and RefractoryPeriod")
    ap.add_argument("--steps", type=int, default=60, help="timed training steps")
    ap.add_argument("--no-pipeline", action="store_true", help="skip part 2")
    ap.add_argument("--out", type=Path, default=RESULTS / "transforms.json")
    args = ap.parse_args(argv)

    results: dict = {
        "events": args.events, "stream": "3 moving Gaussian blobs (80 %) + uniform noise (20 %), 10 s, sorted, "
        "tonic N-MNIST dtype (int64 x, y, t, p)",
        "reps": args.reps, "tonic_slow_reps": args.slow_reps, "timing": "median (min also kept); interleaved runs",
        "tonic_version": tonic.__version__, "numba_version": numba.__version__, "numpy_version": np.__version__,
        "python": platform.python_version(), "cpu_count": os.cpu_count(),
        "load_avg_1min_at_start": os.getloadavg()[0],
    }
    print(f"neurosim transforms vs tonic {tonic.__version__} (numba {numba.__version__}, numpy {np.__version__}); "
          f"load average {results['load_avg_1min_at_start']:.2f} on {os.cpu_count()} CPUs")
    same = bench_transforms(args.events, args.reps, args.slow_reps, results)
    if not args.no_pipeline:
        same &= bench_pipeline(args.steps, results)
    results["outputs_identical"] = bool(same)
    for key, target in TARGETS.items():
        results[f"target_{key}"] = target
        results[f"met_{key}"] = results[key] >= target
    results["target_data_fraction"] = DATA_FRACTION_TARGET
    results["load_avg_1min_at_end"] = os.getloadavg()[0]

    print(f"\nsummary ({args.events:,} events, 34×34×2; tonic ÷ neurosim, medians):")
    for key in ("speedup_toframe_bins", "speedup_toframe_window", "speedup_denoise", "speedup_refractory",
                "speedup_downsample"):
        target = TARGETS.get(key)
        print(f"  {key:<24} {results[key]:8.1f}×  (minima {results[key + '_of_minima']:6.1f}×)"
              + (f"   (target ≥ {target}×: "
                                                     f"{'met' if results[key] >= target else 'NOT met'})"
                                                     if target else ""))
    print(f"  outputs_identical        {results['outputs_identical']}")
    if "data_fraction_cached" in results:
        print(f"  data / step time         {100 * results['data_fraction_cached']:.2f} % (target < 10 %)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

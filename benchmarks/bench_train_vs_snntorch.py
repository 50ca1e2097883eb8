"""BPTT training speed and memory: neurosim vs snnTorch on the same conv SNN, same run.

Network (both libraries): Conv 2→16 k5 · LIF · MaxPool 2 · Conv 16→32 k5 · LIF · MaxPool 2 · Linear 800→10 · LIF,
batch 32, input 2×34×34 Bernoulli(0.05) spike frames, β = exp(−1/2) ≈ 0.61, threshold 1, subtract reset, atan
surrogate, loss = cross-entropy on the time-averaged output spikes, Adam. T ∈ {10, 50}; 2 threads.

Each (library, T) runs in its own subprocess so that peak memory is measured cleanly: peak RSS (ru_maxrss) above
the RSS reached after building the model and data, plus the bytes autograd saves for backward in one iteration
(peak, via neurosim.training.SavedTensorMeter). Time per iteration is the median over the timed iterations after
warm-up; every (library, T) runs in --rounds fresh workers, interleaved, and the fastest round's median is kept
(other processes on a shared machine only ever slow a run down; all rounds are in the JSON). neurosim trains
through its BPTT method, as its Trainer does (forward in time chunks, see neurosim.nn.run_chunked); snnTorch with
its usual per-step loop. Every worker first applies the Trainer's CPU set-up (setup_worker: glibc malloc
thresholds, neurosim's numba kernels loaded before the memory baseline), snnTorch's too.

Usage: python benchmarks/bench_train_vs_snntorch.py [--iters N] [--steps 10 50] [--rounds 3]
Writes benchmarks/results/train_vs_snntorch.json. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
LIBS = ("snntorch", "neurosim")
BETA = math.exp(-1.0 / 2.0)


def _rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def _neurosim_model():
    from neurosim.config import ModelConfig, NeuronConfig
    from neurosim.nn import build_model

    return build_model(ModelConfig(), NeuronConfig(beta=BETA))


def _snntorch_model():
    import snntorch as snn
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.lif1 = nn.Conv2d(2, 16, 5), snn.Leaky(beta=BETA)
            self.conv2, self.lif2 = nn.Conv2d(16, 32, 5), snn.Leaky(beta=BETA)
            self.fc, self.lif3 = nn.Linear(800, 10), snn.Leaky(beta=BETA)
            self.pool = nn.MaxPool2d(2)

        def forward(self, x_seq):
            m1 = self.lif1.reset_mem()
            m2 = self.lif2.reset_mem()
            m3 = self.lif3.reset_mem()
            out = []
            for x in x_seq:
                s1, m1 = self.lif1(self.conv1(x), m1)
                s2, m2 = self.lif2(self.conv2(self.pool(s1)), m2)
                s3, m3 = self.lif3(self.fc(self.pool(s2).flatten(1)), m3)
                out.append(s3)
            return torch.stack(out), None

    return Net()


def setup_worker() -> None:
    """Set up every worker, whatever library it measures, as neurosim's Trainer sets up CPU training.

    * :func:`neurosim.training.tune_cpu_allocator`: glibc keeps training buffers instead of returning and
      re-faulting them each step (the Trainer's default). Applied to the snnTorch workers too, so the comparison
      is between the libraries' code, not their malloc settings.
    * neurosim's compiled (numba) pooling kernels run once on a tiny input before the memory baseline: loading
      them brings in numba's LLVM runtime and thread pool, ~65 MB of RSS once per process (like importing a
      library), which is not training memory."""
    import torch

    from neurosim.nn import MaxPool2d
    from neurosim.training import tune_cpu_allocator

    tune_cpu_allocator()

    x = torch.rand(1, 1, 1, 2, 2, requires_grad=True)
    MaxPool2d(2)(x).sum().backward()


def worker(lib: str, T: int, iters: int, warmup: int) -> dict:
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = _neurosim_model() if lib == "neurosim" else _snntorch_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(T, 32, 2, 34, 34, generator=g) < 0.05).float()
    y = torch.randint(0, 10, (32,), generator=g)

    if lib == "neurosim":  # what neurosim's Trainer does per batch: the BPTT method (forward in time chunks)
        from neurosim.training import BPTT, RateCE

        bptt, rate_ce = BPTT(), RateCE()  # RateCE = cross-entropy of the time-averaged output, as below

        def step():
            opt.zero_grad(set_to_none=True)
            bptt.forward_backward(model, x, y, rate_ce)
            opt.step()
    else:
        def step():
            opt.zero_grad(set_to_none=True)
            out, _ = model(x)
            loss = F.cross_entropy(out.mean(0), y)
            loss.backward()
            opt.step()

    setup_worker()
    result = measure(step, iters, warmup)
    del result["last"]
    return result


def measure(step, iters: int, warmup: int, device: str = "cpu") -> dict:
    """Time ``step()`` (median and min ms over ``iters`` after ``warmup``), the peak memory it adds, and the peak bytes
    autograd holds for backward during one more call. Call it once the model, optimizer and data exist.

    On CPU the peak memory is the process's peak RSS above the RSS before the first call; on CUDA it is the peak of
    ``torch.cuda.max_memory_allocated`` above what was allocated before the first call, and every timed call ends
    with a synchronize."""
    import torch

    from neurosim.training import SavedTensorMeter

    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _rss_kb() * 1024  # no forward pass has run yet
    times, out = [], None
    for i in range(warmup + iters):
        t0 = time.perf_counter()
        out = step()
        if cuda:
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    if cuda:
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with SavedTensorMeter() as meter:  # peak bytes autograd holds for backward during one training step
        step()
    return {"ms_per_iter": 1000 * statistics.median(times), "ms_min": 1000 * min(times),
            "peak_mem_mb": max(peak - base, 0) / 2**20, "saved_tensor_mb": meter.peak_mb, "iters": iters,
            "last": out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iters", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, nargs="+", default=[10, 50])
    ap.add_argument("--rounds", type=int, default=3,
                    help="fresh workers per (library, T), run interleaved; time = min over rounds of the median")
    ap.add_argument("--worker", nargs=2, metavar=("LIB", "T"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args.iters, args.warmup)))
        return

    results: dict = {"batch": 32, "threads": 2, "input": "2x34x34", "iters_timed": args.iters,
                     "rounds": args.rounds, "load_avg_1min_at_start": os.getloadavg()[0]}
    # Rounds interleave every (T, library), so a burst of load from another process hits one round of both
    # rather than all rounds of one; each library's least disturbed round (min of medians) is reported.
    runs: dict = {(lib, T): [] for T in args.steps for lib in LIBS}
    env = dict(os.environ, OMP_NUM_THREADS="2")
    for r in range(args.rounds):
        print(f"round {r + 1}/{args.rounds} …", flush=True)
        for T in args.steps:
            for lib in LIBS:
                out = subprocess.run([sys.executable, __file__, "--worker", lib, str(T), "--iters", str(args.iters),
                                      "--warmup", str(args.warmup)], capture_output=True, text=True, env=env,
                                     check=True)
                runs[(lib, T)].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{'T':>4} {'library':>9} {'ms/iter':>9} {'(rounds)':>16} {'peak MB':>9} {'saved MB':>9}")
    for T in args.steps:
        row = {}
        for lib in LIBS:
            rs = runs[(lib, T)]
            row[lib] = r = {"ms_per_iter": min(x["ms_per_iter"] for x in rs),
                            "ms_per_iter_rounds": [round(x["ms_per_iter"], 1) for x in rs],
                            "ms_min": min(x["ms_min"] for x in rs),
                            "peak_mem_mb": statistics.median(x["peak_mem_mb"] for x in rs),
                            "saved_tensor_mb": rs[0]["saved_tensor_mb"], "iters": rs[0]["iters"]}
            shown = "/".join(f"{x:.0f}" for x in r["ms_per_iter_rounds"])
            print(f"{T:>4} {lib:>9} {r['ms_per_iter']:>9.1f} {shown:>16} {r['peak_mem_mb']:>9.1f} "
                  f"{r['saved_tensor_mb']:>9.1f}")
            for k, v in r.items():
                results[f"{lib}_{k}_T{T}"] = v
        results[f"time_ratio_T{T}"] = row["neurosim"]["ms_per_iter"] / row["snntorch"]["ms_per_iter"]
        results[f"mem_ratio_T{T}"] = row["neurosim"]["peak_mem_mb"] / max(row["snntorch"]["peak_mem_mb"], 1e-9)
        results[f"saved_ratio_T{T}"] = row["neurosim"]["saved_tensor_mb"] / row["snntorch"]["saved_tensor_mb"]
        print(f"     ratio neurosim/snnTorch: time {results[f'time_ratio_T{T}']:.2f}×, peak memory "
              f"{results[f'mem_ratio_T{T}']:.2f}×, saved tensors {results[f'saved_ratio_T{T}']:.2f}×")
    results["load_avg_1min_at_end"] = os.getloadavg()[0]
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from neurosim._io import atomic_write_text

    atomic_write_text(RESULTS / "train_vs_snntorch.json", json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS / 'train_vs_snntorch.json'}")


if __name__ == "__main__":
    main()

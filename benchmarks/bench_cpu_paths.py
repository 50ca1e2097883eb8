"""What neurosim's two CPU speed-ups for training are worth, each switched off in turn, same run.

The README quotes both (its "Configs" paragraph); this is their source:

* **malloc tuning** (:func:`neurosim.training.tune_cpu_allocator`, the Trainer's default on CPU): glibc keeps
  training buffers instead of handing them back to the OS and faulting them in again every step. It is
  process-wide and cannot be undone, so every arm runs in a fresh process.
* **numba kernels** (:mod:`neurosim.functional._lif_kernels`, :mod:`neurosim.nn._pool`): the LIF scan and its
  backward, and non-overlapping max pooling, in one pass each, with torch's results bit for bit. The
  ``no_kernels`` arm makes neurosim take its torch-op path, the one it takes in a process forked after the kernels
  ran (:func:`neurosim._numba_threads.numba_usable` is False).

Arms, each a fresh process: ``neurosim`` (both, the default), ``no_malloc_tuning``, ``no_kernels``. Workload
(bench_train_vs_snntorch.py's conv SNN and data): BPTT with rate cross-entropy and SLTT with TET, T = 50 (--T), batch 32,
2 threads, Adam. The arms run in interleaved rounds (one of each per round, so load drifts hit all of them); each
job times --iters iterations after warm-up and keeps their median; the figure is the median over rounds.

Usage: python benchmarks/bench_cpu_paths.py [--iters 20] [--rounds 3]
Writes benchmarks/results/cpu_paths.json. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
ARMS = ("neurosim", "no_malloc_tuning", "no_kernels")
METHODS = ("bptt", "sltt")


def worker(arm: str, method: str, T: int, iters: int, warmup: int) -> dict:
    import torch

    import neurosim._numba_threads as numba_threads
    from neurosim.training import BPTT, TET, RateCE, tune_cpu_allocator
    from neurosim.training.memory import cpu_allocator_tuned
    from neurosim.training.sltt import SLTT

    sys.path.insert(0, str(HERE))
    from bench_train_vs_snntorch import _neurosim_model

    if arm != "no_malloc_tuning":
        tune_cpu_allocator()
    if arm == "no_kernels":
        numba_threads._forked = True  # what a forked process sees: every caller takes its torch ops

    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = _neurosim_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(T, 32, 2, 34, 34, generator=g) < 0.05).float()
    y = torch.randint(0, 10, (32,), generator=g)
    algo, loss = (BPTT(), RateCE()) if method == "bptt" else (SLTT(), TET())

    def step():
        opt.zero_grad(set_to_none=True)
        algo.forward_backward(model, x, y, loss)
        opt.step()

    times = []
    for i in range(warmup + iters):
        t0 = time.perf_counter()
        step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return {"ms_per_iter": statistics.median(times) * 1e3, "malloc_tuned": cpu_allocator_tuned(),
            "kernels": numba_threads.numba_usable()}


def run_job(arm: str, method: str, T: int, iters: int, warmup: int) -> dict:
    # tune_cpu_allocator leaves malloc alone where the environment configures it: none of that here
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    env["OMP_NUM_THREADS"] = "2"
    cmd = [sys.executable, __file__, "--worker", arm, method, str(T), str(iters), str(warmup)]
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, cwd=HERE.parent)
    if p.returncode != 0:
        raise SystemExit(f"worker {arm} {method} failed with status {p.returncode}")
    job = json.loads(p.stdout.strip().splitlines()[-1])
    want = (arm != "no_malloc_tuning", arm != "no_kernels")
    if (job["malloc_tuned"], job["kernels"]) != want:  # an arm that did not switch off what it names measures nothing
        raise SystemExit(f"worker {arm} {method} ran with malloc tuned={job['malloc_tuned']}, "
                         f"kernels={job['kernels']}; expected {want}")
    return job


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iters", type=int, default=20, help="timed iterations per job")
    ap.add_argument("--warmup", type=int, default=5, help="untimed iterations first (the kernels compile or load)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every arm")
    ap.add_argument("--T", type=int, default=50, help="time steps (the malloc tuning's docstring measured T = 50)")
    ap.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        arm, method, T, iters, warmup = args.worker
        print(json.dumps(worker(arm, method, int(T), int(iters), int(warmup))))
        return
    if min(args.T, args.iters, args.rounds) < 1 or args.warmup < 0:
        ap.error("--T, --iters and --rounds must be at least 1, --warmup at least 0")

    results: dict = {"threads": 2, "T": args.T, "batch": 32, "iters": args.iters, "warmup": args.warmup,
                     "rounds": args.rounds, "cpu_count": os.cpu_count(),
                     "load_avg_1min_at_start": os.getloadavg()[0]}
    for r in range(args.rounds):
        for method in METHODS:
            for arm in ARMS:
                job = run_job(arm, method, args.T, args.iters, args.warmup)
                results.setdefault(f"{method}_{arm}_ms_rounds", []).append(round(job["ms_per_iter"], 1))
                print(f"round {r + 1}: {method} {arm:17s} {job['ms_per_iter']:7.1f} ms/iter", flush=True)
    results["load_avg_1min_at_end"] = os.getloadavg()[0]

    print(f"\nms/iteration, median of {args.rounds} rounds (T = {args.T}, batch 32, 2 threads)")
    print(f"{'':6s}{'neurosim':>10s}{'no malloc tuning':>18s}{'no kernels':>12s}   speed-up of each")
    for method in METHODS:
        ms = {arm: statistics.median(results[f"{method}_{arm}_ms_rounds"]) for arm in ARMS}
        for arm in ARMS:
            results[f"{method}_{arm}_ms"] = ms[arm]
        for arm in ARMS[1:]:  # what switching it off costs, as "neurosim is x % faster with it"
            results[f"{method}_saving_{arm.removeprefix('no_')}"] = 1 - ms["neurosim"] / ms[arm]
        print(f"{method.upper():6s}{ms['neurosim']:10.1f}{ms['no_malloc_tuning']:18.1f}{ms['no_kernels']:12.1f}   "
              f"malloc {results[f'{method}_saving_malloc_tuning']:+.0%}, "
              f"kernels {results[f'{method}_saving_kernels']:+.0%}")

    from neurosim._io import atomic_write_text

    RESULTS.mkdir(exist_ok=True)
    atomic_write_text(RESULTS / "cpu_paths.json", json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS / 'cpu_paths.json'}")


if __name__ == "__main__":
    main()

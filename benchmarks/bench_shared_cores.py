"""Two trainings on the same cores, with torch's OpenMP at libgomp's default spin-wait and at neurosim's, same run.

After every parallel region GNU OpenMP's idle threads busy-wait before they sleep. `import neurosim` sets
GOMP_SPINCOUNT=10000 (~0.1 ms) unless the environment already chooses (neurosim._openmp); libgomp reads it when
it is loaded, so torch's thread pool gets it when neurosim is imported before torch. This measures what that costs a
job alone on the machine and what it saves two jobs sharing its cores.

Workload (bench_train_vs_snntorch.py's model and data): neurosim BPTT, and SLTT, on the conv SNN, T = 20, batch 32,
2 threads per job, Adam. Arms, in fresh processes with no OpenMP wait variable in the environment:

* ``default``: the worker imports torch before neurosim, so torch's pool keeps libgomp's default (numba's pool,
  loaded later, gets neurosim's setting in both arms);
* ``neurosim``: the worker imports neurosim first, as the ``neurosim`` command does.

Each runs alone (BPTT and SLTT, --rounds interleaved rounds, the fastest round kept) and as a pair of BPTT jobs
started together on the same cores (both jobs' medians kept). A third pair arm, ``neurosim1``, gives each of the two
jobs one thread (``--set train.threads=1``), the README's advice for two jobs on two cores. Every job warms up, waits for a common start time and
then times iterations for --seconds; ms/iteration is the median.

Usage: python benchmarks/bench_shared_cores.py [--seconds 8] [--rounds 2]
Writes benchmarks/results/shared_cores.json. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
ARMS = ("default", "neurosim")
PAIR_ARMS = (*ARMS, "neurosim1")  # neurosim1: neurosim's setting, one thread per job


def worker(arm: str, method: str, start_at: float, seconds: float) -> dict:
    # torch's libgomp reads GOMP_SPINCOUNT when torch is imported; neurosim sets it when it is imported
    threads = 1 if arm == "neurosim1" else 2
    for name in ("torch", "neurosim") if arm == "default" else ("neurosim", "torch"):
        importlib.import_module(name)
    import torch

    sys.path.insert(0, str(HERE))
    from bench_train_vs_snntorch import _neurosim_model, setup_worker

    from neurosim.training import BPTT, TET
    from neurosim.training.sltt import SLTT

    setup_worker()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = _neurosim_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(20, 32, 2, 34, 34, generator=g) < 0.05).float()
    y = torch.randint(0, 10, (32,), generator=g)
    loss, algo = TET(), {"bptt": BPTT(), "sltt": SLTT()}[method]

    def step():
        opt.zero_grad(set_to_none=True)
        algo.forward_backward(model, x, y, loss)
        opt.step()

    # Train without pause from start-up on (no sleep: that would line the jobs' iterations up in phase, which
    # changes how they contend); time the iterations that start inside the common window.
    warmup, times = 3, []
    late_s = None  # how long after the window opened this job began its first timed iteration
    while time.time() < start_at + seconds or len(times) < 3:
        t0, now = time.perf_counter(), time.time()
        step()
        if warmup:
            warmup -= 1
        elif now >= start_at:
            late_s = max(0.0, now - start_at) if late_s is None else late_s
            times.append(time.perf_counter() - t0)
    return {"ms_per_iter": statistics.median(times) * 1e3, "iters": len(times), "late_s": round(late_s, 2),
            "gomp_spincount": os.environ.get("GOMP_SPINCOUNT")}


def _launch(arm: str, method: str, start_at: float, seconds: float) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    env["OMP_NUM_THREADS"] = "1" if arm == "neurosim1" else "2"
    cmd = [sys.executable, __file__, "--worker", arm, method, str(start_at), str(seconds)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True, cwd=HERE.parent)


def _collect(procs: list[subprocess.Popen]) -> list[dict]:
    out = []
    for p in procs:
        stdout, _ = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"worker failed with status {p.returncode}")
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def run_jobs(arm: str, methods: list[str], seconds: float, startup_s: float) -> list[dict]:
    """Start one job per entry of ``methods`` together; each times its iterations from a common start."""
    start_at = time.time() + startup_s  # imports, kernel loading and warm-up happen before it
    return _collect([_launch(arm, m, start_at, seconds) for m in methods])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=8.0, help="timed seconds per job")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds of the lone runs")
    ap.add_argument("--pair-rounds", type=int, default=3,
                    help="rounds of the pairs (they vary more: libgomp's default has a fast and a slow mode)")
    ap.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        arm, method, start_at, seconds = args.worker
        print(json.dumps(worker(arm, method, float(start_at), float(seconds))))
        return

    results: dict = {"threads_per_job": 2, "T": 20, "batch": 32, "seconds_per_job": args.seconds,
                     "rounds": args.rounds, "pair_rounds": args.pair_rounds, "cpu_count": os.cpu_count(),
                     "load_avg_1min_at_start": os.getloadavg()[0], "spin_neurosim": None}
    for r in range(args.rounds):
        for method in ("bptt", "sltt"):
            for arm in ARMS:
                (job,) = run_jobs(arm, [method], args.seconds, startup_s=6.0)
                results.setdefault(f"{method}_alone_{arm}_ms_rounds", []).append(round(job["ms_per_iter"], 1))
                if arm == "neurosim":
                    results["spin_neurosim"] = int(job["gomp_spincount"])
                print(f"round {r + 1}: {method} alone, {arm:8s} {job['ms_per_iter']:7.1f} ms/iter", flush=True)
    for r in range(args.pair_rounds):
        for arm in PAIR_ARMS:
            jobs = run_jobs(arm, ["bptt", "bptt"], args.seconds, startup_s=15.0)
            results.setdefault(f"bptt_pair_{arm}_ms", []).extend(round(j["ms_per_iter"], 1) for j in jobs)
            results.setdefault(f"bptt_pair_{arm}_late_s", []).extend(j["late_s"] for j in jobs)
            print(f"round {r + 1}: two BPTT jobs at once, {arm:9s} "
                  + " / ".join(f"{j['ms_per_iter']:.1f}" for j in jobs) + " ms/iter", flush=True)

    for method in ("bptt", "sltt"):
        for arm in ARMS:
            results[f"{method}_alone_{arm}_ms"] = min(results[f"{method}_alone_{arm}_ms_rounds"])
        results[f"{method}_alone_ratio_neurosim_over_default"] = (
            results[f"{method}_alone_neurosim_ms"] / results[f"{method}_alone_default_ms"])
    for arm in PAIR_ARMS:
        jobs = results[f"bptt_pair_{arm}_ms"]
        results[f"bptt_pair_{arm}_mean_ms"] = statistics.fmean(jobs)
        results[f"bptt_pair_{arm}_worst_ms"] = max(jobs)
    # libgomp's default has a fast and a slow mode from one pair to the next: the mean is the expected cost
    for stat in ("mean", "worst"):
        results[f"bptt_pair_{stat}_ratio_neurosim_over_default"] = (
            results[f"bptt_pair_neurosim_{stat}_ms"] / results[f"bptt_pair_default_{stat}_ms"])

    print(f"\ntorch's OpenMP spin count: libgomp's default vs neurosim's GOMP_SPINCOUNT={results['spin_neurosim']}")
    print(f"{'ms/iter':34s}{'default':>10s}{'neurosim':>10s}{'n/d':>8s}")
    for method in ("bptt", "sltt"):
        d, n = results[f"{method}_alone_default_ms"], results[f"{method}_alone_neurosim_ms"]
        print(f"{method.upper() + ' alone':34s}{d:10.1f}{n:10.1f}{n / d:8.2f}")
    for stat in ("mean", "worst"):
        d, n = (results[f"bptt_pair_{a}_{stat}_ms"] for a in ARMS)
        print(f"{f'two BPTT jobs at once, {stat} job':34s}{d:10.1f}{n:10.1f}{n / d:8.2f}")
    n1 = results["bptt_pair_neurosim1_mean_ms"]
    print(f"{'two BPTT jobs, 1 thread each':34s}{'':10s}{n1:10.1f}   (neurosim's setting)")
    for arm in PAIR_ARMS:
        jobs = results[f"bptt_pair_{arm}_ms"]
        print(f"  {arm}: each job {min(jobs):.1f} to {max(jobs):.1f} ms/iter over {len(jobs) // 2} pairs")

    from neurosim._io import atomic_write_text

    RESULTS.mkdir(exist_ok=True)
    atomic_write_text(RESULTS / "shared_cores.json", json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS / 'shared_cores.json'}")


if __name__ == "__main__":
    main()

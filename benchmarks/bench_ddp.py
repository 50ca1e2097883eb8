"""Data-parallel training on one CPU machine: one process with 2 threads vs torchrun with 2 processes × 1 thread.

The same optimizer steps in both arms: the quickstart conv SNN (Conv 2→16 k5 · LIF · MaxPool · Conv 16→32 k5 · LIF ·
MaxPool · Linear 800→10 · LIF), random input spikes (5 %), T = 10 and 20, 64 samples per optimizer step (one
process: batch 64; DDP: batch 32 in each of 2 processes, gradients averaged over gloo), Adam, BPTT and SLTT
(one step at a time: 10 or 20 backward passes per batch). A third arm runs SLTT under DDP with the gradients
averaged after every backward pass instead of once per batch (``no_sync`` switched off), which is what a plain DDP
wrapper around an SLTT loop does.

Each arm runs in fresh processes; the Trainer trains 4 epochs of 6 steps, the first is warm-up (numba compiles,
buffers grow), and ms per optimizer step is the median over the other epochs. Arms are interleaved over --rounds
rounds and each figure is the fastest round's.

Usage: python benchmarks/bench_ddp.py [--rounds 2]
Writes benchmarks/results/ddp.json. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
STEPS, EPOCHS, SAMPLES = 6, 4, 64
ARMS = {  # name: (processes, threads per process, SLTT gradients averaged once per batch)
    "one_process": (1, 2, True),
    "ddp": (2, 1, True),
    "ddp_sync_every_backward": (2, 1, False),
}


def worker(T: int, methods: list[str], once_per_batch: bool) -> None:
    import torch

    import neurosim.training.sltt as sltt
    from neurosim.config import load_config
    from neurosim.data import FrameLoader
    from neurosim.nn import build_model
    from neurosim.training import Trainer, seed_everything
    from neurosim.training.distributed import process_group_from_env

    if not once_per_batch:
        sltt.no_sync = lambda model: nullcontext()
    quick = load_config(HERE.parent / "neurosim" / "configs" / "quickstart.toml")
    with process_group_from_env("cpu") as world:
        batch = SAMPLES // world.size
        threads = int(os.environ.get("BENCH_THREADS", "2"))
        g = torch.Generator().manual_seed(0)
        frames = (torch.rand(SAMPLES * STEPS, T, 2, 34, 34, generator=g) < 0.05).float()
        labels = torch.randint(0, 10, (SAMPLES * STEPS,), generator=g)
        out = {"processes": world.size, "threads": threads}
        for method in methods:
            cfg = replace(quick, seed=0, train=replace(quick.train, method=method, loss="tet", epochs=EPOCHS,
                                                       threads=threads, device="cpu", scheduler="none",
                                                       grad_clip=None))
            seed_everything(0)
            trainer = Trainer(build_model(cfg.model, cfg.neuron), cfg, progress=False)
            history = trainer.fit(FrameLoader(frames, labels, batch, shuffle=True), resume=False)
            out[f"{method}_ms_per_step"] = 1e3 * statistics.median(m["train_time_s"] for m in history[1:]) / STEPS
            out[f"{method}_backward_passes_per_step"] = history[-1]["backward_passes"] / STEPS
        if world.is_main:
            print("RESULT " + json.dumps(out), flush=True)


def run_arm(arm: str, T: int, methods: list[str]) -> dict:
    procs, threads, once = ARMS[arm]
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env.update(BENCH_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    args = [str(Path(__file__).resolve()), "--worker", str(T), ",".join(methods), "1" if once else "0"]
    cmd = [sys.executable, *args] if procs == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(procs), *args]
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if run.returncode != 0:
        raise RuntimeError(f"arm {arm} failed:\n{run.stdout[-2000:]}\n{run.stderr[-4000:]}")
    line = next(ln for ln in run.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", nargs=3, metavar=("T", "METHODS", "ONCE"), help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--T", type=int, nargs="+", default=[10, 20])
    args = parser.parse_args()
    if args.worker:
        T, methods, once = args.worker
        worker(int(T), methods.split(","), once == "1")
        return

    results: dict = {"samples_per_step": SAMPLES, "steps_per_epoch": STEPS, "rounds": args.rounds,
                     "cpu_count": os.cpu_count()}
    for T in args.T:
        for r in range(args.rounds):
            for arm in ARMS:
                methods = ["sltt"] if arm == "ddp_sync_every_backward" else ["bptt", "sltt"]
                got = run_arm(arm, T, methods)
                for method in methods:
                    ms = got[f"{method}_ms_per_step"]
                    print(f"T={T} round {r + 1} {arm:>24} {method}: {ms:7.1f} ms/step")
                    results.setdefault(f"{method}_T{T}_{arm}_ms_rounds", []).append(round(ms, 1))
        for method in ("bptt", "sltt"):
            for arm in ARMS:
                key = f"{method}_T{T}_{arm}_ms_rounds"
                if key in results:
                    results[f"{method}_T{T}_{arm}_ms"] = min(results[key])
            results[f"{method}_T{T}_ratio_ddp_over_one_process"] = (
                results[f"{method}_T{T}_ddp_ms"] / results[f"{method}_T{T}_one_process_ms"])
        results[f"sltt_T{T}_ratio_sync_every_backward_over_once"] = (
            results[f"sltt_T{T}_ddp_sync_every_backward_ms"] / results[f"sltt_T{T}_ddp_ms"])

    print("\nms per optimizer step of 64 samples (fastest round)")
    print(f"{'':>10} {'1 proc × 2 thr':>15} {'DDP 2 × 1 thr':>15} {'ratio':>7} {'DDP, sync every bwd':>20}")
    for T in args.T:
        for method in ("bptt", "sltt"):
            one, ddp = results[f"{method}_T{T}_one_process_ms"], results[f"{method}_T{T}_ddp_ms"]
            every = results.get(f"{method}_T{T}_ddp_sync_every_backward_ms")
            print(f"{method} T={T:<3} {one:15.1f} {ddp:15.1f} {ddp / one:7.2f} "
                  f"{'' if every is None else f'{every:20.1f}'}")
    sys.path.insert(0, str(HERE.parent))
    from neurosim._io import atomic_write_text

    RESULTS.mkdir(exist_ok=True)
    atomic_write_text(RESULTS / "ddp.json", json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS / 'ddp.json'}")


if __name__ == "__main__":
    main()

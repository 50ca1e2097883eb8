"""BPTT training speed and memory: neurosim vs snnTorch and SpikingJelly on the same conv SNN, same run.

Network (every library): Conv 2→16 k5 · LIF · MaxPool 2 · Conv 16→32 k5 · LIF · MaxPool 2 · Linear 800→10 · LIF,
batch 32, input 2×34×34 Bernoulli(0.05) spike frames, β = exp(−1/2) ≈ 0.61, threshold 1, subtract reset, atan
surrogate, loss = cross-entropy on the time-averaged output spikes, Adam. T ∈ {10, 50}; 2 threads.

Each (library, T) runs in its own subprocess so that peak memory is measured cleanly: peak RSS (ru_maxrss) above
the RSS reached after building the model and data, plus the bytes autograd saves for backward in one iteration
(peak, via neurosim.training.SavedTensorMeter). Time per iteration is the median over the timed iterations after
warm-up; every (library, T) runs in --rounds fresh workers, interleaved, and the fastest round's median is kept
(other processes on a shared machine only ever slow a run down; all rounds are in the JSON). neurosim trains
through its BPTT method, as its Trainer does (forward in time chunks, see neurosim.nn.run_chunked); snnTorch with
its usual per-step loop. Every worker first applies the Trainer's CPU set-up (setup_worker: glibc malloc
thresholds, neurosim's numba kernels loaded before the memory baseline), the peers' too.

SpikingJelly (``spikingjelly.activation_based``) runs in its multi-step mode, as its tutorials train: the layers
are ``layer.Conv2d`` / ``layer.MaxPool2d`` / ``layer.Flatten`` / ``layer.Linear`` with ``step_mode='m'`` (each
folds ``[T, B, ...]`` into one ``[T·B, ...]`` call, as neurosim's layers do), the neurons
``neuron.LIFNode(tau=1/(1−β), decay_input=False, v_threshold=1, v_reset=None, surrogate_function=surrogate.ATan(),
detach_reset=False, step_mode='m')``, and ``functional.reset_net`` clears the neurons' state after each iteration.
The mapping: LIFNode charges ``H[t] = V[t−1] − V[t−1]/τ + X[t]`` with ``decay_input=False`` (``True`` would scale
the input by 1/τ too), which is ``β·V[t−1] + X[t]`` for ``τ = 1/(1−β)`` ≈ 2.54; ``v_reset=None`` is the soft
(subtract) reset; ``ATan()``'s default α = 2 is neurosim's and snnTorch's atan; neurosim's ``detach_reset``
default is False too. LIFNode fires on ``H ≥ threshold`` and resets in the step that spiked, i.e. neurosim's
default ``reset_timing='immediate'`` (snnTorch's Leaky subtracts the reset one step later, undecayed: neurosim
with ``reset_timing='delayed'``). Before timing, the script checks this (``check_spikingjelly``): the same weights
(×10, so that every layer spikes: at the benchmark's initialisation the second and third layers stay silent) and
input through neurosim's BPTT method and through SpikingJelly give the same spikes in every layer, membranes and
gradients to float rounding, and different spikes against neurosim's delayed timing. What cannot be made the
same: SpikingJelly computes the charge as ``V − V/τ + X``, neurosim as ``β·V + X``, so membranes agree only to
float32 rounding (a spike flips where a membrane lies within a rounding of the threshold: the check counts such
spikes). SpikingJelly ≥ 2.0 has no ``backend`` argument: on CPU its LIFNode always runs the torch reference (a
Python loop over T, autograd through every step's ops; cupy/triton/CUDA kernels are GPU only), which is what the
older releases' ``backend='torch'`` did.

SpikingJelly is optional: install it without its dependencies, which would pull another torch
(``pip install --no-deps spikingjelly loguru``, or ``--target DIR`` and DIR on PYTHONPATH for this run). Without it
the script prints that it skipped SpikingJelly and measures the others. (The import test and the check run in
subprocesses, as the workers do: a worker's peak RSS starts at its parent's, so the main process imports no torch.)

Usage: python benchmarks/bench_train_vs_snntorch.py [--iters N] [--steps 10 50] [--rounds 3]
       [--libs snntorch spikingjelly neurosim]
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
LIBS = ("snntorch", "spikingjelly", "neurosim")  # run in this order within a round; neurosim is always run
PEERS = ("snntorch", "spikingjelly")  # neurosim's time and memory are divided by each peer's
LABELS = {"snntorch": "snnTorch", "spikingjelly": "SpikingJelly", "neurosim": "neurosim"}
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


def _spikingjelly_model():
    """The same network in SpikingJelly's multi-step mode (the module docstring says how each setting maps)."""
    from spikingjelly.activation_based import layer, neuron, surrogate
    from torch import nn

    def lif():
        return neuron.LIFNode(tau=1.0 / (1.0 - BETA), decay_input=False, v_threshold=1.0, v_reset=None,
                              surrogate_function=surrogate.ATan(), detach_reset=False, step_mode="m")

    # the same layer indices as neurosim's Sequential (0 conv, 1 LIF, ..., 7 linear, 8 LIF): state dicts line up
    return nn.Sequential(layer.Conv2d(2, 16, 5, step_mode="m"), lif(), layer.MaxPool2d(2, step_mode="m"),
                         layer.Conv2d(16, 32, 5, step_mode="m"), lif(), layer.MaxPool2d(2, step_mode="m"),
                         layer.Flatten(step_mode="m"), layer.Linear(800, 10, step_mode="m"), lif())


def missing(lib: str, env: dict) -> str | None:
    """Why ``lib`` cannot be imported (e.g. "ModuleNotFoundError: No module named 'spikingjelly'"), or None.

    Tried in a subprocess, as everything that imports torch here: the main process must stay small, because a
    worker's peak RSS (ru_maxrss) starts at its parent's, which Linux carries across fork and exec."""
    out = subprocess.run([sys.executable, "-c", f"import {lib}"], capture_output=True, text=True, env=env)
    return None if out.returncode == 0 else (out.stderr.strip().splitlines() or [f"exit status {out.returncode}"])[-1]


def library_version(lib: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(lib)
    except PackageNotFoundError:
        return "unknown"


def check_spikingjelly(T: int = 20, weight_scale: float = 10.0) -> dict:
    """SpikingJelly's network against neurosim's, the same weights and input: are they the same neuron?

    neurosim trains through its BPTT method (as in the benchmark), SpikingJelly as in its worker; the weights are
    neurosim's, scaled by ``weight_scale`` so that every layer spikes, copied into SpikingJelly's layers. Returns
    each LIF layer's spike rate and the number of spikes that differ, the largest final-membrane and relative
    gradient differences, and the spikes that differ from neurosim with ``reset_timing='delayed'`` (snnTorch's
    timing), which shows which timing SpikingJelly's is."""
    import torch
    import torch.nn.functional as F
    from spikingjelly.activation_based import functional

    from neurosim.config import ModelConfig, NeuronConfig
    from neurosim.nn import build_model
    from neurosim.training import BPTT, RateCE

    torch.set_num_threads(2)
    torch.manual_seed(0)
    ns = _neurosim_model()
    with torch.no_grad():
        for p in ns.parameters():
            p.mul_(weight_scale)
    sj = _spikingjelly_model()
    sj.load_state_dict({k: v for k, v in ns.state_dict().items() if k.endswith((".weight", ".bias"))})
    delayed = build_model(ModelConfig(), NeuronConfig(beta=BETA, reset_timing="delayed"))
    delayed.load_state_dict(ns.state_dict())
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(T, 32, 2, 34, 34, generator=g) < 0.05).float()
    y = torch.randint(0, 10, (32,), generator=g)
    lifs = (1, 4, 8)

    def keep(out):  # neurosim's LIF returns (spikes, LIFState), SpikingJelly's the spikes (its membrane: .v)
        return (out[0].detach(), out[1].v.detach()) if isinstance(out, tuple) else (out.detach(), None)

    def record(model):  # each LIF layer's (spikes, membrane) per call: neurosim's BPTT runs the steps in chunks
        seen: dict = {i: [] for i in lifs}
        for i in lifs:
            model[i].register_forward_hook(lambda mod, inp, out, i=i: seen[i].append(keep(out)))
        return seen

    seen_ns, seen_sj, seen_delayed = record(ns), record(sj), record(delayed)
    BPTT().forward_backward(ns, x, y, RateCE())
    functional.reset_net(sj)
    F.cross_entropy(sj(x).mean(0), y).backward()
    with torch.no_grad():
        delayed(x)
    out: dict = {"T": T, "weight_scale": weight_scale}
    for n, i in enumerate(lifs, 1):
        s_ns = torch.cat([o[0] for o in seen_ns[i]])
        s_sj = torch.cat([o[0] for o in seen_sj[i]])
        s_delayed = torch.cat([o[0] for o in seen_delayed[i]])
        out[f"lif{n}_spike_rate"] = float(s_ns.mean())
        out[f"lif{n}_spikes_differing"] = int((s_ns != s_sj).sum())
        out[f"lif{n}_spikes_differing_from_delayed"] = int((s_delayed != s_sj).sum())
        out[f"lif{n}_final_v_max_abs_diff"] = float((seen_ns[i][-1][1] - sj[i].v.detach()).abs().max())
    out["grad_max_rel_diff"] = max(float((a.grad - b.grad).abs().max() / b.grad.abs().max().clamp_min(1e-30))
                                   for a, b in zip(ns.parameters(), sj.parameters()))
    out["spikes_identical"] = all(out[f"lif{n}_spikes_differing"] == 0 for n in range(1, len(lifs) + 1))
    return out


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
    torch.manual_seed(0)  # every library builds its layers in the same order: the same initial weights
    model = {"neurosim": _neurosim_model, "snntorch": _snntorch_model, "spikingjelly": _spikingjelly_model}[lib]()
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
    elif lib == "spikingjelly":  # its tutorials' loop: one multi-step call, then reset_net before the next batch
        from spikingjelly.activation_based import functional

        def step():
            opt.zero_grad(set_to_none=True)
            out = model(x)
            loss = F.cross_entropy(out.mean(0), y)
            loss.backward()
            opt.step()
            functional.reset_net(model)
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
    ap.add_argument("--libs", nargs="+", choices=LIBS, default=None,
                    help="libraries to measure (default: every one that imports; neurosim always runs, as every "
                         "ratio is neurosim's over a peer's)")
    ap.add_argument("--worker", nargs=2, metavar=("LIB", "T"), help=argparse.SUPPRESS)
    ap.add_argument("--check-spikingjelly", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args.iters, args.warmup)))
        return
    if args.check_spikingjelly:
        print(json.dumps(check_spikingjelly()))
        return

    env = dict(os.environ, OMP_NUM_THREADS="2")
    wanted = set(args.libs or LIBS) | {"neurosim"}
    libs = []
    for lib in LIBS:
        if lib not in wanted:
            continue
        if lib != "neurosim" and (why := missing(lib, env)):
            print(f"{LABELS[lib]}: skipped, it does not import ({why}); install it with "
                  f"`pip install --no-deps {lib}{' loguru' if lib == 'spikingjelly' else ''}` "
                  "(without --no-deps it would pull another torch)", flush=True)
            continue
        libs.append(lib)
    results: dict = {"batch": 32, "threads": 2, "input": "2x34x34", "iters_timed": args.iters,
                     "rounds": args.rounds, "load_avg_1min_at_start": os.getloadavg()[0], "libs": libs}
    for lib in libs:
        if lib != "neurosim":
            results[f"{lib}_version"] = library_version(lib)
    if "spikingjelly" in libs:  # the same neuron? checked before anything is timed (in a subprocess: see missing)
        out = subprocess.run([sys.executable, __file__, "--check-spikingjelly"], capture_output=True, text=True,
                             env=env, check=True)
        check = json.loads(out.stdout.strip().splitlines()[-1])
        results.update({f"spikingjelly_check_{k}": v for k, v in check.items()})
        layers = ", ".join(f"{check[f'lif{n}_spikes_differing']} ({100 * check[f'lif{n}_spike_rate']:.0f} % "
                           f"firing)" for n in (1, 2, 3))
        print(f"SpikingJelly {results['spikingjelly_version']} vs neurosim, same weights (×{check['weight_scale']:g}) "
              f"and input, T = {check['T']}: spikes differing per LIF layer {layers}; final membranes "
              f"|Δ| ≤ {max(check[f'lif{n}_final_v_max_abs_diff'] for n in (1, 2, 3)):.1e}; gradients relative "
              f"|Δ| ≤ {check['grad_max_rel_diff']:.1e}; against neurosim's delayed (snnTorch) timing "
              f"{sum(check[f'lif{n}_spikes_differing_from_delayed'] for n in (1, 2, 3))} spikes differ", flush=True)
    # Rounds interleave every (T, library), so a burst of load from another process hits one round of all of them
    # rather than all rounds of one; each library's least disturbed round (min of medians) is reported.
    runs: dict = {(lib, T): [] for T in args.steps for lib in libs}
    for r in range(args.rounds):
        print(f"round {r + 1}/{args.rounds} …", flush=True)
        for T in args.steps:
            for lib in libs:
                out = subprocess.run([sys.executable, __file__, "--worker", lib, str(T), "--iters", str(args.iters),
                                      "--warmup", str(args.warmup)], capture_output=True, text=True, env=env,
                                     check=True)
                runs[(lib, T)].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{'T':>4} {'library':>12} {'ms/iter':>9} {'(rounds)':>16} {'peak MB':>9} {'saved MB':>9}")
    for T in args.steps:
        row = {}
        for lib in libs:
            rs = runs[(lib, T)]
            row[lib] = r = {"ms_per_iter": min(x["ms_per_iter"] for x in rs),
                            "ms_per_iter_rounds": [round(x["ms_per_iter"], 1) for x in rs],
                            "ms_min": min(x["ms_min"] for x in rs),
                            "peak_mem_mb": statistics.median(x["peak_mem_mb"] for x in rs),
                            "saved_tensor_mb": rs[0]["saved_tensor_mb"], "iters": rs[0]["iters"]}
            shown = "/".join(f"{x:.0f}" for x in r["ms_per_iter_rounds"])
            print(f"{T:>4} {lib:>12} {r['ms_per_iter']:>9.1f} {shown:>16} {r['peak_mem_mb']:>9.1f} "
                  f"{r['saved_tensor_mb']:>9.1f}")
            for k, v in r.items():
                results[f"{lib}_{k}_T{T}"] = v
        for peer in PEERS:
            if peer not in row:
                continue
            # snnTorch's ratios keep their first names (time_ratio_T10, ...); the others name their peer
            suffix = f"T{T}" if peer == "snntorch" else f"vs_{peer}_T{T}"
            ns, other = row["neurosim"], row[peer]
            results[f"time_ratio_{suffix}"] = ns["ms_per_iter"] / other["ms_per_iter"]
            results[f"mem_ratio_{suffix}"] = ns["peak_mem_mb"] / max(other["peak_mem_mb"], 1e-9)
            results[f"saved_ratio_{suffix}"] = ns["saved_tensor_mb"] / other["saved_tensor_mb"]
            print(f"     ratio neurosim/{LABELS[peer]}: time {results[f'time_ratio_{suffix}']:.2f}×, peak memory "
                  f"{results[f'mem_ratio_{suffix}']:.2f}×, saved tensors {results[f'saved_ratio_{suffix}']:.2f}×")
    results["load_avg_1min_at_end"] = os.getloadavg()[0]
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from neurosim._io import atomic_write_text

    atomic_write_text(RESULTS / "train_vs_snntorch.json", json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS / 'train_vs_snntorch.json'}")


if __name__ == "__main__":
    main()

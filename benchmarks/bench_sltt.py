"""SLTT and SLTT-K vs BPTT (neurosim and snnTorch): training memory and time per iteration against T, same run.

Network: the foundation benchmark's conv SNN (Conv 2→16 k5 · LIF · MaxPool 2 · Conv 16→32 k5 · LIF · MaxPool 2 ·
Linear 800→10 · LIF), batch 32 (``--batch``), input 2×34×34 Bernoulli(0.05) spike frames, β = exp(−1/2),
threshold 1, subtract reset, atan surrogate (the same model and data as benchmarks/bench_train_vs_snntorch.py, whose helpers are
reused). Every method optimises the same per-step loss, (1/T)·Σ_t CE(o_t, y) (TET), with Adam; T ∈ {5, 10, 20, 50};
2 threads.

Methods: neurosim BPTT (time chunks of 128 samples), neurosim SLTT (the default: one step at a time, the
paper's loop), neurosim SLTT in chunks (``time_chunk=None``: 128 samples = 4 steps per forward/backward at batch
32, temporal path cut inside the chunk, the same gradients), neurosim SLTT-K (K = 2; its default ``"auto"``
runs the forward-only steps in 128-sample chunks under the tuned allocator), snnTorch BPTT (its usual per-step
loop).

Every worker first applies the Trainer's CPU set-up (bench_train_vs_snntorch.setup_worker: glibc malloc
thresholds, neurosim's numba kernels loaded before the memory baseline), snnTorch's included.

Each (method, T) runs in a fresh subprocess: peak memory is the peak RSS (ru_maxrss) above the RSS reached after
building model, optimizer and data; "saved MB" is the peak of the bytes autograd holds for backward at any one
moment during an iteration (saved_tensors_hooks, released bytes subtracted). Time per iteration is the median over
the timed iterations after warm-up (optimizer zero_grad + forward/backward + step); every (method, T) runs in
--rounds fresh workers, interleaved, and the fastest round's median is kept (other processes on a shared machine
only ever slow a run down); all rounds are in the JSON.

On a GPU (``--device cuda``) memory is the peak of ``torch.cuda.max_memory_allocated`` above the memory allocated
before the first iteration, every timed iteration ends with a synchronize, and the results go to sltt_cuda.json.

The model barely spikes at its initialisation on this input (rates ~5e-5, 0, 0 per layer, printed with the times);
every operation it runs is dense, so its time does not depend on that: ``--weight-gain 4`` scales the initial
weights to rates of 5, 15 and 30 % to check it (``--steps 50 --methods bptt sltt --rounds 5``, one session: BPTT 171.9
against 171.7 ms, SLTT 208.9 against 210.5 ms; sltt_partial.json, sltt_gain4_partial.json).

Usage: python benchmarks/bench_sltt.py [--iters N] [--steps 5 10 20 50] [--device cpu|cuda] [--batch 32]
[--weight-gain 1] [--no-plot]
Writes benchmarks/results/sltt.json (flat) and benchmarks/results/sltt.png; a run of fewer methods or steps writes
sltt_partial.json instead (other batches, gains and devices name their own files). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_train_vs_snntorch import _neurosim_model, _snntorch_model, measure, setup_worker  # noqa: E402

METHODS = ("bptt", "sltt", "sltt_chunk", "slttk2", "snntorch_bptt")
DEFAULT_STEPS = (5, 10, 20, 50)
LABELS = {"bptt": "neurosim BPTT", "sltt": "neurosim SLTT", "sltt_chunk": "SLTT, 128-sample chunks",
          "slttk2": "neurosim SLTT-K (K=2)", "snntorch_bptt": "snnTorch BPTT"}
TARGETS = {  # from the issue, in line with the paper
    "mem_ratio_sltt_bptt_T50": 0.3, "mem_growth_sltt_T50_over_T5": 1.2,
    "time_ratio_sltt_bptt_T50": 0.8, "time_ratio_slttk2_bptt_T50": 0.4,
}


def _spike_rates(model, x) -> list[float]:
    """The mean spike rate of each spiking layer (neurosim LIF, snnTorch Leaky) over one forward pass of ``x``, in
    the order the layers run (after training's iterations): what the benchmark's model does with its data, printed
    beside the times."""
    import snntorch as snn
    import torch

    from neurosim.nn import LIF

    totals: dict = {}

    def hook(module, inputs, out):
        spikes = out[0]
        n, s = totals.get(module, (0, 0.0))
        totals[module] = (n + spikes.numel(), s + float(spikes.float().sum()))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (LIF, snn.Leaky))]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return [s / n for n, s in totals.values()]


def worker(method: str, T: int, iters: int, warmup: int, device: str = "cpu", batch: int = 32,
           weight_gain: float = 1.0) -> dict:
    import torch

    from neurosim.training import BPTT, TET
    from neurosim.training.sltt import SLTT, SLTTK

    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = (_snntorch_model() if method == "snntorch_bptt" else _neurosim_model()).to(device)
    with torch.no_grad():  # --weight-gain: the same model made to spike more (its initial weights scaled)
        for p in model.parameters():
            if p.dim() > 1:
                p.mul_(weight_gain)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(T, batch, 2, 34, 34, generator=g) < 0.05).float().to(device)
    y = torch.randint(0, 10, (batch,), generator=g).to(device)
    loss = TET()
    algo = {"bptt": BPTT(), "snntorch_bptt": BPTT(), "sltt": SLTT(), "sltt_chunk": SLTT(time_chunk=None),
            "slttk2": SLTTK(k=2, generator=torch.Generator().manual_seed(2))}[method]

    def step():
        opt.zero_grad(set_to_none=True)
        out = algo.forward_backward(model, x, y, loss)
        opt.step()
        return out

    setup_worker()
    result = measure(step, iters, warmup, device)
    result["backward_passes"] = result.pop("last").backward_passes
    result["spike_rates"] = _spike_rates(model, x)  # after the measurements, which it must not disturb
    return result


def _plot(results: dict, steps: list[int], path: Path, device: str = "cpu", batch: int = 32) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_m, ax_t) = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = {"bptt": ("C0", "o"), "sltt": ("C1", "s"), "sltt_chunk": ("C4", "x"), "slttk2": ("C2", "^"),
              "snntorch_bptt": ("C3", "D")}
    for m in METHODS:
        c, mk = styles[m]
        ax_m.plot(steps, [results[f"{m}_peak_mem_mb_T{T}"] for T in steps], color=c, marker=mk, label=LABELS[m])
        ax_m.plot(steps, [results[f"{m}_saved_tensor_mb_T{T}"] for T in steps], color=c, marker=mk, ls=":",
                  alpha=0.6)
        ax_t.plot(steps, [results[f"{m}_ms_per_iter_T{T}"] for T in steps], color=c, marker=mk, label=LABELS[m])
    peak = "peak RSS" if device == "cpu" else "peak CUDA memory"
    ax_m.set(xlabel="time steps T", ylabel="MB", title=f"training memory (solid: {peak}, dotted: saved tensors)")
    ax_t.set(xlabel="time steps T", ylabel="ms / iteration (median)",
             title=f"time per iteration (batch {batch}, " + ("2 threads)" if device == "cpu" else f"{device})"))
    for ax in (ax_m, ax_t):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("SLTT vs BPTT — conv SNN 2×34×34, Conv16·Conv32·FC10")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _run_worker(m: str, T: int, args) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="2")
    proc = subprocess.run([sys.executable, __file__, "--worker", m, str(T), "--iters", str(args.iters),
                           "--warmup", str(args.warmup), "--device", args.device, "--batch", str(args.batch),
                           "--weight-gain", str(args.weight_gain)],
                          capture_output=True, text=True,
                          env=env)
    if proc.returncode != 0:
        raise SystemExit(f"worker {m} T={T} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iters", type=int, default=5, help="timed iterations per worker")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3,
                    help="fresh workers per (method, T), run interleaved; time = min over rounds of the median")
    ap.add_argument("--steps", type=int, nargs="+", default=list(DEFAULT_STEPS))
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--device", default="cpu",
                    help="cpu (the issue's setting: 2 threads, peak RSS) or cuda (peak CUDA memory allocated); "
                         "results for cuda go to sltt_cuda.json / sltt_cuda.png")
    ap.add_argument("--batch", type=int, default=32,
                    help="batch size (the issue's: 32); other sizes write sltt_b<B>.json, to see where SLTT's lower "
                         "per-sample cost outweighs its fixed per-step overhead")
    ap.add_argument("--weight-gain", type=float, default=1.0,
                    help="scale the models' initial weights (every weight tensor) by this factor. At 1 the model "
                         "barely spikes on the benchmark's input; all its operations are dense, and a gain of 4 "
                         "(spike rates of 5-25 %%) shows that the times do not depend on it. Other gains write "
                         "sltt_gain<G>.json")
    ap.add_argument("--worker", nargs=2, metavar=("METHOD", "T"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.batch < 1:
        ap.error(f"--batch must be >= 1, got {args.batch}")
    if not args.weight_gain > 0:
        ap.error(f"--weight-gain must be > 0, got {args.weight_gain}")
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args.iters, args.warmup, args.device,
                                args.batch, args.weight_gain)))
        return
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise SystemExit(f"--device {args.device}: torch sees no CUDA device on this machine")

    results: dict = {"device": args.device, "batch": args.batch, "weight_gain": args.weight_gain, "threads": 2,
                     "input": "2x34x34", "loss": "tet",
                     "iters_timed": args.iters,
                     "rounds": args.rounds, "load_avg_1min_at_start": os.getloadavg()[0], "cpu_count": os.cpu_count()}
    # Rounds interleave every (T, method) so that a burst of load from another process hits one round of
    # everything rather than all rounds of one method; the least disturbed round (min of medians) is reported.
    runs: dict = {(m, T): [] for T in args.steps for m in args.methods}
    for r in range(args.rounds):
        print(f"round {r + 1}/{args.rounds} …", flush=True)
        for T in args.steps:
            for m in args.methods:
                runs[(m, T)].append(_run_worker(m, T, args))
    print(f"{'T':>4} {'method':>22} {'ms/iter':>9} {'(rounds)':>22} {'peak MB':>9} {'saved MB':>9} {'backwards':>9}"
          f"  spike rates")
    for T in args.steps:
        for m in args.methods:
            rs = runs[(m, T)]
            r = {"ms_per_iter": min(x["ms_per_iter"] for x in rs),
                 "ms_per_iter_rounds": [round(x["ms_per_iter"], 1) for x in rs],
                 "peak_mem_mb": statistics.median(x["peak_mem_mb"] for x in rs),
                 "saved_tensor_mb": rs[0]["saved_tensor_mb"], "backward_passes": rs[0]["backward_passes"],
                 "spike_rates": [round(v, 5) for v in rs[0]["spike_rates"]]}
            shown = "/".join(f"{x:.0f}" for x in r["ms_per_iter_rounds"])
            print(f"{T:>4} {LABELS[m]:>22} {r['ms_per_iter']:>9.1f} {shown:>22} {r['peak_mem_mb']:>9.1f} "
                  f"{r['saved_tensor_mb']:>9.2f} {r['backward_passes']:>9}  "
                  + " ".join(f"{v:.4f}" for v in r["spike_rates"]))
            for k, v in r.items():
                results[f"{m}_{k}_T{T}"] = v
        if {"bptt", "sltt", "slttk2"} <= set(args.methods):
            b = lambda key, mm: results[f"{mm}_{key}_T{T}"]  # noqa: E731
            results[f"mem_ratio_sltt_bptt_T{T}"] = b("peak_mem_mb", "sltt") / max(b("peak_mem_mb", "bptt"), 1e-9)
            results[f"saved_ratio_sltt_bptt_T{T}"] = b("saved_tensor_mb", "sltt") / b("saved_tensor_mb", "bptt")
            results[f"time_ratio_sltt_bptt_T{T}"] = b("ms_per_iter", "sltt") / b("ms_per_iter", "bptt")
            results[f"time_ratio_slttk2_bptt_T{T}"] = b("ms_per_iter", "slttk2") / b("ms_per_iter", "bptt")
            if "sltt_chunk" in args.methods:
                results[f"time_ratio_slttchunk_bptt_T{T}"] = b("ms_per_iter", "sltt_chunk") / b("ms_per_iter", "bptt")
                results[f"mem_ratio_slttchunk_bptt_T{T}"] = (b("peak_mem_mb", "sltt_chunk")
                                                             / max(b("peak_mem_mb", "bptt"), 1e-9))
            print(f"     vs neurosim BPTT: SLTT memory {results[f'mem_ratio_sltt_bptt_T{T}']:.2f}× (saved tensors "
                  f"{results[f'saved_ratio_sltt_bptt_T{T}']:.3f}×), time {results[f'time_ratio_sltt_bptt_T{T}']:.2f}×;"
                  f" SLTT-K(2) time {results[f'time_ratio_slttk2_bptt_T{T}']:.2f}×")
    lo, hi = min(args.steps), max(args.steps)
    if "sltt" in args.methods:
        results[f"mem_growth_sltt_T{hi}_over_T{lo}"] = (results[f"sltt_peak_mem_mb_T{hi}"]
                                                         / max(results[f"sltt_peak_mem_mb_T{lo}"], 1e-9))
        results[f"saved_growth_sltt_T{hi}_over_T{lo}"] = (results[f"sltt_saved_tensor_mb_T{hi}"]
                                                          / results[f"sltt_saved_tensor_mb_T{lo}"])
    results["load_avg_1min_at_end"] = os.getloadavg()[0]
    print("\ntargets (T = 50 vs BPTT):")
    for key, target in TARGETS.items():
        if key in results:
            ok = "met" if results[key] <= target else "MISSED"
            print(f"  {key:<32} {results[key]:6.3f}  (target ≤ {target})  {ok}")

    from neurosim._io import atomic_write_text

    stem = (("sltt" if args.device == "cpu" else "sltt_cuda") + ("" if args.batch == 32 else f"_b{args.batch}")
            + ("" if args.weight_gain == 1 else f"_gain{args.weight_gain:g}"))
    if not (set(METHODS) <= set(args.methods) and set(DEFAULT_STEPS) <= set(args.steps)):
        stem += "_partial"  # a run of some methods or steps never replaces the full results file
    atomic_write_text(RESULTS / f"{stem}.json", json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS / f'{stem}.json'}")
    if not args.no_plot and set(METHODS) <= set(args.methods):
        _plot(results, args.steps, RESULTS / f"{stem}.png", args.device, args.batch)
        print(f"wrote {RESULTS / f'{stem}.png'}")


if __name__ == "__main__":
    main()

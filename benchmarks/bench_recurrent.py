"""Recurrent LIF training and inference: neurosim's RLIF (BPTT and SLTT) vs snnTorch's RLeaky, same run.

Network (every peer): Linear 700→256 · recurrent LIF 256 (dense N × N feedback) · Linear 256→20, the
Spiking Heidelberg Digits' sizes (700 input channels, 20 classes; Cramer et al., IEEE TNNLS 2020). The readout is
the last Linear's output at every step, and the loss is the same per-step cross-entropy for everyone
(neurosim's ``TET``: mean over steps of CE(o_t, y)), which both libraries compute identically and SLTT needs.
T = 100, batch 32, input Bernoulli(0.02) spikes, β = exp(−1/2) ≈ 0.61, threshold 1, subtract reset, atan
surrogate, a recurrent bias (snnTorch's recurrent Linear has one), Adam. The first Linear's weights are scaled ×8
(after ``torch.manual_seed(0)``) so that the hidden layer spikes (~8 % of neurons per step) instead of staying
silent at torch's default initialisation.

Peers:

* ``neurosim BPTT``: ``neurosim.training.get_method("bptt")`` (the forward in time chunks with the state
  carried, as the Trainer runs it) on ``Sequential(Linear, RLIF, Linear)``, neurosim's default reset timing
  (``immediate``: the reset in the step that spiked).
* ``neurosim BPTT, per-step loop``: the same with a no-op forward hook on the RLIF's ``.lif``, which makes the
  layer call its LIF once per step (as it does while the activity profiler watches it, and as every RLIF ran
  before its fused scan): what the fused scan gains.
* ``neurosim BPTT, delayed``: the same with ``reset_timing="delayed"``, which is snnTorch's RLeaky's dynamics
  (the outputs agree with snnTorch's to rounding; the script prints the largest difference).
* ``neurosim SLTT``: ``get_method("sltt")``: one step per forward/backward, temporal path cut (Meng et al.,
  ICCV 2023).
* ``snnTorch BPTT``: ``snn.RLeaky(beta, all_to_all=True, linear_features=256)`` stepped in snnTorch's usual
  Python loop over ``T`` (its tutorials' pattern), then ``loss.backward()``.

All peers run in this one process with 2 threads, built from the same weights (copied into snnTorch's layers).
Each round times ``--iters`` training iterations (``zero_grad`` + forward/backward + ``optimizer.step``) of
every peer, peers interleaved within the round and their order rotated between rounds, so that load from other
processes on a shared machine falls on all of them alike; a peer's figure is the median over rounds of its
per-round medians (every round's median is in the JSON). Inference is one forward over all ``T`` steps under
``torch.no_grad`` (neurosim: one call of the model; snnTorch: its loop), timed the same way. "saved MB" is
the peak of the bytes autograd holds for backward during one training iteration
(``neurosim.training.SavedTensorMeter``). The 1-minute load average is recorded at the start and the end.

Usage: python benchmarks/bench_recurrent.py [--rounds 5] [--iters 3] [--quick] [--no-plot]
Writes benchmarks/results/recurrent.json (flat) and benchmarks/results/recurrent.png (``--quick``: prints only).
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE.parent))

BETA = math.exp(-1.0 / 2.0)
N_IN, N_HID, N_OUT = 700, 256, 20  # SHD: 700 cochlea channels, 20 spoken digits
INPUT_GAIN = 8.0  # the first Linear's weights ×8: the hidden layer spikes at torch's default init otherwise not
PEERS = ("neurosim_bptt", "neurosim_bptt_loop", "neurosim_bptt_delayed", "neurosim_sltt", "snntorch_bptt")
LABELS = {"neurosim_bptt": "neurosim BPTT", "neurosim_bptt_loop": "neurosim BPTT, per-step loop",
          "neurosim_bptt_delayed": "neurosim BPTT, delayed", "neurosim_sltt": "neurosim SLTT",
          "snntorch_bptt": "snnTorch BPTT"}


def _neurosim_model(reset_timing: str = "immediate"):
    from neurosim.nn import RLIF, Linear, Sequential

    # bias=True: snnTorch's recurrent Linear has one, so both train the same parameters
    return Sequential(Linear(N_IN, N_HID), RLIF(N_HID, beta=BETA, reset_timing=reset_timing, bias=True),
                      Linear(N_HID, N_OUT))


def _snntorch_model():
    import snntorch as snn
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(N_IN, N_HID)
            self.rlif = snn.RLeaky(beta=BETA, all_to_all=True, linear_features=N_HID)
            self.fc2 = nn.Linear(N_HID, N_OUT)

        def forward(self, x_seq):
            spk, mem = self.rlif.reset_mem()
            out = []
            for x in x_seq:
                spk, mem = self.rlif(self.fc1(x), spk, mem)
                out.append(self.fc2(spk))
            return torch.stack(out)

    return Net()


def _copy_weights(src, dst) -> None:
    """neurosim's ``Sequential(Linear, RLIF, Linear)`` weights into the snnTorch net (same names but for RLIF)."""
    import torch

    with torch.no_grad():
        for a, b in ((src[0], dst.fc1), (src[1].recurrent, dst.rlif.recurrent), (src[2], dst.fc2)):
            b.weight.copy_(a.weight)
            b.bias.copy_(a.bias)


def build(T: int, batch: int):
    """``(peers, x, y)``: per peer a dict of ``model``, ``train()`` (one iteration) and ``infer()``."""
    import torch

    from neurosim.training import TET, get_method

    torch.manual_seed(0)
    reference = _neurosim_model()
    with torch.no_grad():
        reference[0].weight.mul_(INPUT_GAIN)
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(T, batch, N_IN, generator=g) < 0.02).float()
    y = torch.randint(0, N_OUT, (batch,), generator=g)
    loss = TET()
    peers = {}
    for name in PEERS:
        if name == "snntorch_bptt":
            model = _snntorch_model()
            _copy_weights(reference, model)
        else:
            model = _neurosim_model("delayed" if name.endswith("delayed") else "immediate")
            model.load_state_dict(reference.state_dict())
            if name == "neurosim_bptt_loop":
                model[1].lif.register_forward_hook(lambda *_: None)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        peers[name] = {"model": model, "opt": opt}
        if name == "snntorch_bptt":
            def train(model=model, opt=opt):
                opt.zero_grad(set_to_none=True)
                loss(model(x), y).backward()
                opt.step()

            def infer(model=model):
                with torch.no_grad():
                    return model(x)
        else:
            method = get_method("sltt" if name == "neurosim_sltt" else "bptt")

            def train(model=model, opt=opt, method=method):
                opt.zero_grad(set_to_none=True)
                method.forward_backward(model, x, y, loss)
                opt.step()

            def infer(model=model):
                with torch.no_grad():
                    return model(x)[0]
        peers[name].update(train=train, infer=infer)
    return peers, x, y


def _timed(fn, iters: int) -> float:
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def run(T: int, batch: int, rounds: int, iters: int) -> dict:
    import torch

    from neurosim.training import SavedTensorMeter, tune_cpu_allocator

    torch.set_num_threads(2)
    tune_cpu_allocator()  # the Trainer's CPU set-up, for every peer alike
    peers, x, y = build(T, batch)
    results: dict = {"T": T, "batch": batch, "threads": 2, "n_in": N_IN, "n_hidden": N_HID, "n_out": N_OUT,
                     "input_density": 0.02, "rounds": rounds, "iters_per_round": iters,
                     "torch": torch.__version__, "load_avg_1min_at_start": os.getloadavg()[0],
                     "cpu_count": os.cpu_count()}
    # same dynamics, same weights: neurosim's delayed timing should give snnTorch's outputs
    with torch.no_grad():
        a, b = peers["neurosim_bptt_delayed"]["infer"](), peers["snntorch_bptt"]["infer"]()
        hidden, _ = peers["neurosim_bptt"]["model"][:2](x)
    results["max_abs_diff_delayed_vs_snntorch"] = float((a - b).abs().max())
    results["hidden_spike_rate"] = float(hidden.mean())
    for p in peers.values():  # warm-up: first-call costs (allocations, numba, Adam's state)
        p["train"]()
        p["infer"]()
    for name, p in peers.items():
        with SavedTensorMeter() as meter:
            p["train"]()
        results[f"{name}_saved_tensor_mb"] = meter.peak_mb
    train = {n: [] for n in PEERS}
    infer = {n: [] for n in PEERS}
    for r in range(rounds):
        order = PEERS[r % len(PEERS):] + PEERS[:r % len(PEERS)]  # rotate who goes first
        print(f"round {r + 1}/{rounds} …", flush=True)
        for name in order:
            train[name].append(_timed(peers[name]["train"], iters))
            infer[name].append(_timed(peers[name]["infer"], iters))
    for name in PEERS:
        results[f"{name}_train_ms"] = statistics.median(train[name])
        results[f"{name}_train_ms_min"] = min(train[name])
        results[f"{name}_train_ms_rounds"] = [round(v, 2) for v in train[name]]
        results[f"{name}_infer_ms"] = statistics.median(infer[name])
        results[f"{name}_infer_ms_rounds"] = [round(v, 2) for v in infer[name]]
    st = "snntorch_bptt"
    for name in PEERS[:-1]:
        for kind in ("train_ms", "infer_ms", "saved_tensor_mb"):
            results[f"ratio_{kind}_{name}_over_snntorch"] = results[f"{name}_{kind}"] / results[f"{st}_{kind}"]
    for kind in ("train_ms", "infer_ms", "saved_tensor_mb"):  # the fused scan over the per-step loop
        results[f"ratio_{kind}_fused_over_loop"] = (results[f"neurosim_bptt_{kind}"]
                                                    / results[f"neurosim_bptt_loop_{kind}"])
    results["ratio_train_ms_sltt_over_bptt"] = results["neurosim_sltt_train_ms"] / results["neurosim_bptt_train_ms"]
    results["ratio_saved_tensor_mb_sltt_over_bptt"] = (results["neurosim_sltt_saved_tensor_mb"]
                                                       / results["neurosim_bptt_saved_tensor_mb"])
    results["load_avg_1min_at_end"] = os.getloadavg()[0]
    return results


def report(results: dict) -> None:
    print(f"\nT = {results['T']}, batch {results['batch']}, {N_IN}→{N_HID} (recurrent)→{N_OUT}, 2 threads; "
          f"hidden spike rate {results['hidden_spike_rate']:.3f}; load {results['load_avg_1min_at_start']:.2f} → "
          f"{results['load_avg_1min_at_end']:.2f}")
    print(f"{'peer':>28} {'train ms':>9} {'(rounds)':>28} {'infer ms':>9} {'saved MB':>9}")
    for name in PEERS:
        shown = "/".join(f"{v:.0f}" for v in results[f"{name}_train_ms_rounds"])
        print(f"{LABELS[name]:>28} {results[f'{name}_train_ms']:>9.1f} {shown:>28} "
              f"{results[f'{name}_infer_ms']:>9.1f} {results[f'{name}_saved_tensor_mb']:>9.2f}")
    print("ratios over snnTorch (train time / inference time / saved tensors):")
    for name in PEERS[:-1]:
        print(f"  {LABELS[name]:<28} {results[f'ratio_train_ms_{name}_over_snntorch']:.2f}× / "
              f"{results[f'ratio_infer_ms_{name}_over_snntorch']:.2f}× / "
              f"{results[f'ratio_saved_tensor_mb_{name}_over_snntorch']:.3f}×")
    print(f"fused scan over the per-step loop (BPTT): train {results['ratio_train_ms_fused_over_loop']:.2f}×, "
          f"inference {results['ratio_infer_ms_fused_over_loop']:.2f}×, saved tensors "
          f"{results['ratio_saved_tensor_mb_fused_over_loop']:.3f}×")
    print(f"SLTT over BPTT: time {results['ratio_train_ms_sltt_over_bptt']:.2f}×, saved tensors "
          f"{results['ratio_saved_tensor_mb_sltt_over_bptt']:.3f}×; neurosim delayed vs snnTorch outputs: max "
          f"|Δ| = {results['max_abs_diff_delayed_vs_snntorch']:.2e}")


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    colors = ["C0", "C7", "C4", "C1", "C3"]
    labels = [LABELS[n].replace(", ", "\n") for n in PEERS]
    for ax, key, title in zip(axes, ("train_ms", "infer_ms", "saved_tensor_mb"),
                              ("training iteration (ms, median)", "inference forward (ms, median)",
                               "saved for backward (MB, peak)")):
        values = [results[f"{n}_{key}"] for n in PEERS]
        ax.bar(range(len(PEERS)), values, color=colors)
        if key != "saved_tensor_mb":
            for i, n in enumerate(PEERS):
                rounds = results[f"{n}_{key.replace('_ms', '_ms_rounds')}"]
                ax.plot([i] * len(rounds), rounds, "k.", ms=3, alpha=0.6)
        ax.set_ylim(0, 1.5 * max(values))  # a round disturbed by another process is off the top
        ax.set_xticks(range(len(PEERS)), labels, fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"Recurrent LIF {N_IN}→{N_HID}→{N_OUT}, T = {results['T']}, batch {results['batch']}, "
                 "2 CPU threads (dots: per-round medians)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=100, help="time steps T")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=5, help="rounds, peers interleaved in each")
    ap.add_argument("--iters", type=int, default=3, help="timed iterations per peer and round")
    ap.add_argument("--quick", action="store_true", help="2 rounds of 2 iterations, prints only (no files)")
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args()
    for name in ("steps", "batch", "rounds", "iters"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.quick:
        args.rounds, args.iters = 2, 2
    results = run(args.steps, args.batch, args.rounds, args.iters)
    report(results)
    if args.quick:
        return
    from neurosim._io import atomic_write_text

    atomic_write_text(RESULTS / "recurrent.json", json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS / 'recurrent.json'}")
    if not args.no_plot:
        plot(results, RESULTS / "recurrent.png")
        print(f"wrote {RESULTS / 'recurrent.png'}")


if __name__ == "__main__":
    main()

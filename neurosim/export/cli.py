"""``neurosim export``: a trained checkpoint → a NIR file that other SNN libraries and hardware toolchains read.

    neurosim export --checkpoint runs/demo/checkpoint.pt [--out model.nir] [--maxpool sumpool] [--overwrite]

An existing file at the output path is replaced only where ``neurosim export`` wrote it (a NIR file whose graph's
metadata names neurosim's exporter); any other file there (a NIR file of another tool, notes of one's own) is kept
and the command refused, unless ``--overwrite`` asks to replace it.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["register"]

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # NIR files are HDF5


def _head(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(len(_HDF5_SIGNATURE))


def _exported_by_neurosim(path: Path) -> bool:
    """Whether ``path`` is a NIR file that neurosim's exporter wrote: its graph's metadata names the exporter
    (:func:`neurosim.export.to_nir` has written it since the first export)."""
    if _head(path) != _HDF5_SIGNATURE:
        return False
    import h5py

    from neurosim.export.nir import META_KEY

    try:
        with h5py.File(path, "r") as f:
            return f"node/metadata/{META_KEY}/exporter" in f
    except OSError:  # an HDF5 signature, but not a file h5py reads: not ours
        return False


def cmd_export(args) -> int:
    import nir

    from neurosim._io import check_output_file
    from neurosim.cli import UserError
    from neurosim.config import config_from_checkpoint
    from neurosim.export import NIRExportError, to_nir, write_nir
    from neurosim.nn import build_model
    from neurosim.training import load_checkpoint
    from neurosim.training.checkpoint import (PYTHON_MODEL_ADVICE, beside_checkpoint, checkpoint_file, load_weights,
                                             warn_if_part_way)

    out = Path(args.out) if args.out else beside_checkpoint(args.checkpoint, "model", ".nir")
    # a folder, or a path written as one (``--out exports/``, not made yet): the file goes in it, not a file
    # named ``exports``, which Path drops the trailing slash to
    if out.is_dir() or (args.out and args.out.endswith(("/", os.sep))):
        out = out / beside_checkpoint(args.checkpoint, "model", ".nir").name
    check_output_file(out, "--out")
    if out.is_file() and not args.overwrite and not _exported_by_neurosim(out):  # an earlier export is replaced
        what = ("is not a NIR file" if _head(out) != _HDF5_SIGNATURE
                else "is a NIR (HDF5) file that neurosim export did not write (no neurosim metadata: another tool's, "
                     "or one of your own)")
        raise UserError(f"--out: {out} exists and {what}; choose another path, or pass --overwrite to replace it")
    ckpt = load_checkpoint(args.checkpoint)  # a missing/corrupt file is a CheckpointError (one line)
    warn_if_part_way(ckpt, checkpoint_file(args.checkpoint))  # weights part-way through an epoch: exported, said
    cfg = config_from_checkpoint(ckpt["config"])
    model = build_model(cfg.model, cfg.neuron)
    load_weights(model, ckpt["model"], args.checkpoint, advice=PYTHON_MODEL_ADVICE)
    try:
        dt_s = cfg.neuron.dt_ms * 1e-3 if args.dt_s is None else args.dt_s
        graph = to_nir(model, cfg.model.input_shape, dt_s=dt_s, maxpool=args.maxpool)
    except NIRExportError as e:  # names the layer (and, for MaxPool2d, the --maxpool sumpool way out)
        raise UserError(str(e)) from None
    except ValueError as e:  # e.g. a dt_s that is no time step
        raise UserError(f"--dt-s: {e}" if args.dt_s is not None else str(e)) from None
    write_nir(graph, out)
    kinds = [_kind(n) for n in graph.nodes.values() if not isinstance(n, (nir.Input, nir.Output))]
    print(f"wrote {out}: {len(kinds)} nodes ({', '.join(kinds)}), dt = {dt_s * 1e3:g} ms")
    for note in export_notes(graph):
        print(f"  note: {note}")
    return 0


def _kind(node) -> str:
    """A node's type; a subgraph's with its inner nodes (an RLIF layer: ``NIRGraph(LIF ⇄ Linear)``)."""
    import nir

    if not isinstance(node, nir.NIRGraph):
        return type(node).__name__
    inner = [type(n).__name__ for n in node.nodes.values() if not isinstance(n, (nir.Input, nir.Output))]
    return f"NIRGraph({' ⇄ '.join(inner)})"


def _leaves(graph, prefix: str = ""):
    """``(name, node)`` of every node, those of subgraphs as ``subgraph.node`` (as the hardware models name them)."""
    import nir

    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            yield from _leaves(node, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", node


def export_notes(graph) -> list[str]:
    """What other tools will read differently from neurosim in ``graph`` (neurosim reads it back exactly)."""
    import nir

    from neurosim.export.nir import META_KEY

    found: dict[str, list[str]] = {}
    for name, node in graph.nodes.items():
        meta = (getattr(node, "metadata", None) or {}).get(META_KEY, {})
        rec = isinstance(node, nir.NIRGraph) and meta.get("layer") == "RLIF"
        if rec and any(isinstance(n, nir.Affine) for n in node.nodes.values()):
            found.setdefault("recurrent bias: snnTorch's import (nirtorch) adds it from the second step on, "
                             "neurosim and snnTorch's RLeaky from the first", []).append(name)
    for name, node in _leaves(graph):
        meta = (getattr(node, "metadata", None) or {}).get(META_KEY, {})
        if meta.get("layer") in ("LIF", "CubaLIF") and meta.get("reset") != "zero":
            found.setdefault(f"reset = {meta['reset']!r}: other tools read a reset to zero", []).append(name)
        if meta.get("layer") in ("LIF", "CubaLIF") and meta.get("reset_timing") == "delayed":
            found.setdefault("snnTorch's delayed reset: other tools reset in the step that spiked", []).append(name)
        if meta.get("layer") == "MaxPool2d":
            found.setdefault("MaxPool2d written as SumPool2d: other tools read a sum pool", []).append(name)
    return [f"{what} (node(s) {', '.join(names)}; the metadata keeps neurosim's setting)"
            for what, names in found.items()]


def register(sub) -> None:
    p = sub.add_parser("export", help="write a checkpoint's model as a NIR graph (for other libraries and chips)")
    p.add_argument("--checkpoint", required=True, help="a neurosim checkpoint")
    p.add_argument("--out", default=None, help="output .nir file, or a folder (one that exists, or a path ending in "
                   "/) for that file in it (default: model.nir beside a run's checkpoint.pt; model-best.nir for its "
                   "best.pt, model-NAME.nir for another NAME.pt)")
    p.add_argument("--maxpool", choices=("error", "sumpool"), default="error",
                   help="MaxPool2d has no NIR node: refuse (default) or write it as SumPool2d (exact connectivity, "
                        "approximate dynamics; see neurosim.export)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the --out file even if neurosim export did not write it (an earlier export is "
                        "replaced without it)")
    p.add_argument("--dt-s", type=float, default=None, metavar="SECONDS",
                   help="the time step the graph's τ and R are written for (default: the model's neuron.dt_ms); "
                        "snnTorch's NIR import assumes 1e-4")
    p.set_defaults(func=cmd_export)

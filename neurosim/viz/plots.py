"""Figures: spike rasters, membrane traces, event-frame grids, training curves.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot's global state (Agg canvas), so
they work headless and in tests; :func:`save_figure` writes a PNG atomically.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from neurosim._io import atomic_write_bytes

__all__ = ["event_frames", "membrane_trace", "raster", "save_figure", "training_curves"]


def _np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | Path, dpi: int = 120) -> Path:
    """Save ``fig`` as PNG at ``path`` (atomic write)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return atomic_write_bytes(path, buf.getvalue())


def raster(spikes, title: str | None = None, dt_ms: float | None = None, max_neurons: int = 400) -> Figure:
    """Spike raster of one sample.

    Args:
        spikes: ``[T, N]`` (or ``[T, ...]``, flattened), or a mapping from layer name to such arrays (one panel
            per layer, e.g. every layer of a network).
        title: figure title.
        dt_ms: step length; the x axis is in ms when given, in steps otherwise.
        max_neurons: show at most this many neurons per panel (evenly subsampled).
    """
    layers = dict(spikes) if isinstance(spikes, Mapping) else {"": spikes}
    if not layers:
        raise ValueError("raster: nothing to plot (no layers given)")
    fig = _figure(8, 1.3 + 1.6 * len(layers))
    axes = fig.subplots(len(layers), 1, squeeze=False, sharex=True)[:, 0]
    for ax, (name, s) in zip(axes, layers.items()):
        s = _np(s)
        if s.ndim < 2 or s.shape[0] == 0:
            raise ValueError(f"raster: layer {name!r} needs [T, N] with T >= 1, got shape {s.shape}")
        s = s.reshape(s.shape[0], -1)
        # an event: any nonzero but NaN (OFF = −1), as booleans: [T, N] float64 copies of a long sequence's layer were
        # 8x the spikes' bytes (160 MB for one DVS Gesture sample's first layer at T = 200)
        s = (s != 0) & ~np.isnan(s) if s.dtype.kind in "fc" else s != 0
        keep = np.linspace(0, s.shape[1] - 1, min(max_neurons, s.shape[1])).astype(int)
        t_idx, n_idx = np.nonzero(s[:, keep])
        t = t_idx * (dt_ms or 1.0)
        ax.scatter(t, n_idx, s=4, marker="|", color="black", linewidths=0.8)
        ax.set_ylim(-1, len(keep))
        rate = s.mean()  # events per neuron and step
        # subsampled, the y axis counts the neurons shown, not the layer's neuron indices: the label says so
        n, shown = s.shape[1], len(keep)
        count = f"{n} n" if shown == n else f"{shown} of {n} n"
        ax.set_ylabel(f"{name}\n({count})" if name else "neuron" if shown == n else f"neuron ({count} shown)",
                      fontsize=8)
        ax.text(1.0, 1.02, f"rate {rate:.3f}/step", transform=ax.transAxes, ha="right", fontsize=7)
    axes[-1].set_xlabel("time (ms)" if dt_ms else "time step")
    if title:
        fig.suptitle(title)
    return fig


def membrane_trace(v_seq, spikes=None, v_th: float | None = None, title: str | None = None,
                   dt_ms: float | None = None) -> Figure:
    """Membrane potential over time for one or a few neurons (``[T]`` or ``[T, K]``), spikes marked."""
    v = _np(v_seq)
    if v.ndim == 0 or v.shape[0] == 0:
        raise ValueError(f"membrane_trace needs [T] or [T, K] with T >= 1, got shape {v.shape}")
    v = v.reshape(v.shape[0], -1)
    t = np.arange(v.shape[0]) * (dt_ms or 1.0)
    fig = _figure(7, 3)
    ax = fig.subplots()
    for k in range(v.shape[1]):
        ax.plot(t, v[:, k], lw=1.2, label=f"neuron {k}" if v.shape[1] > 1 else "membrane")
    if spikes is not None:
        s = _np(spikes).reshape(v.shape[0], -1)
        for k in range(s.shape[1]):
            ts = t[s[:, k] > 0]
            ax.vlines(ts, ymin=v.max() * 1.05 if v.size else 1, ymax=v.max() * 1.15 if v.size else 1.1,
                      color=f"C{k}", lw=1.5, label="spikes" if s.shape[1] == 1 else None)
    if v_th is not None:
        ax.axhline(v_th, color="red", ls="--", lw=1, label="threshold")
    ax.set_xlabel("time (ms)" if dt_ms else "time step")
    ax.set_ylabel("membrane potential")
    # beside the axes: inside, a trace that fills its time axis (a neuron firing regularly) runs under any corner
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    if title:
        ax.set_title(title)
    return fig


def event_frames(frames, max_frames: int = 10, title: str | None = None, labels: Sequence | None = None) -> Figure:
    """Grid of event frames ``[T, P, H, W]`` (one sample over time) or ``[N, P, H, W]``.

    ON events are drawn red, OFF events blue (for ``P = 2``); single-polarity frames in grey. At most
    ``max_frames`` frames are shown, evenly spaced; ``labels`` titles them: one per input frame, or one per shown
    frame.
    """
    f = _np(frames)
    if f.ndim != 4 or f.shape[0] == 0:
        raise ValueError(f"event_frames needs [T, P, H, W] with T >= 1, got shape {f.shape}")
    if max_frames < 1:
        raise ValueError(f"event_frames: max_frames must be >= 1, got {max_frames}")
    idx = np.linspace(0, f.shape[0] - 1, min(max_frames, f.shape[0])).astype(int)
    if labels is not None and len(labels) not in (f.shape[0], len(idx)):
        raise ValueError(f"event_frames: {len(labels)} labels for {f.shape[0]} frames ({len(idx)} shown); give one "
                         "per frame or one per shown frame")
    n_frames = f.shape[0]
    f = f[idx].astype(float)  # only the frames shown
    fig = _figure(1.6 * len(idx), 2.0)
    axes = np.atleast_1d(fig.subplots(1, len(idx)))
    top = max(float(f.max()), 1e-9)
    for j, (ax, i) in enumerate(zip(axes, idx)):
        fr = f[j]
        if fr.shape[0] >= 2:  # polarity 1 = ON (red), 0 = OFF (blue)
            img = np.stack([fr[1], np.zeros_like(fr[0]), fr[0]], axis=-1) / top
            ax.imshow(np.clip(img * 3, 0, 1), interpolation="nearest")
        else:
            ax.imshow(fr[0], cmap="gray", vmin=0.0, vmax=top, interpolation="nearest")  # one scale for all frames
        ax.set_xticks([])
        ax.set_yticks([])
        label = f"t={i}" if labels is None else labels[i] if len(labels) == n_frames else labels[j]
        ax.set_title(str(label), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.set_layout_engine("constrained")  # room for the title above frame labels of two lines or more
    return fig


def training_curves(history: Sequence[Mapping], title: str | None = None) -> Figure:
    """Loss and accuracy per epoch from a Trainer history (``train_*``, ``val_*`` and ``test_*`` keys; the best
    validation epoch, whose weights ``best.pt`` keeps, is marked)."""
    if not history:
        raise ValueError("training_curves: the history is empty")
    ep = [h["epoch"] for h in history]
    fig = _figure(9, 3.2)
    ax_l, ax_a = fig.subplots(1, 2)
    def series(key, scale=1.0):  # an epoch without the key (or with null) is a gap, not an error
        return [scale * h[key] if h.get(key) is not None else np.nan for h in history]

    for key, style in (("train_loss", "-o"), ("val_loss", ":^"), ("test_loss", "--s")):
        if any(key in h for h in history):
            ax_l.plot(ep, series(key), style, label=key.replace("_", " "), ms=4)
    for key, style in (("train_acc", "-o"), ("val_acc", ":^"), ("test_acc", "--s")):
        if any(key in h for h in history):
            ax_a.plot(ep, series(key, 100), style, label=key.replace("_", " "), ms=4)
    if any(h.get("val_acc") is not None for h in history):
        from neurosim.training.history import best_epoch

        best = best_epoch(history)
        for ax in (ax_l, ax_a):
            ax.axvline(best["epoch"], color="0.5", lw=0.8, ls="-.", label=f"best val (epoch {best['epoch']})")
    ax_l.set_xlabel("epoch")
    ax_l.set_ylabel("loss")
    ax_a.set_xlabel("epoch")
    ax_a.set_ylabel("accuracy (%)")
    for ax in (ax_l, ax_a):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole: no tick at epoch 1.2
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig

"""Figures: every plot returns a matplotlib Figure with the data drawn, and saves a PNG atomically."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from neurosim.activity import record_outputs
from neurosim.config import ModelConfig, NeuronConfig
from neurosim.nn import LIF, build_model
from neurosim.viz import event_frames, membrane_trace, raster, save_figure, training_curves


def test_raster_draws_every_spike_one_panel_per_layer(tmp_path):
    a = torch.zeros(20, 5)
    a[3, 1] = a[7, 4] = a[19, 0] = 1
    b = torch.rand(20, 2, 3, 3) > 0.7
    fig = raster({"a": a, "b": b}, title="two layers", dt_ms=1.0)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    offsets = fig.axes[0].collections[0].get_offsets()
    assert sorted(map(tuple, np.asarray(offsets))) == [(3.0, 1.0), (7.0, 4.0), (19.0, 0.0)]
    assert len(fig.axes[1].collections[0].get_offsets()) == int(b.sum())
    path = save_figure(fig, tmp_path / "sub" / "r.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["r.png"]
    with pytest.raises(ValueError, match="nothing to plot"):
        raster({})


def test_membrane_trace_and_event_frames():
    v = torch.linspace(0, 1.5, 30)
    fig = membrane_trace(v, spikes=(v > 1).float(), v_th=1.0)
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), v.numpy())
    frames = np.zeros((4, 2, 8, 8))
    frames[2, 1, 3, 3] = 5
    fig = event_frames(frames, title="x")
    assert len(fig.axes) == 4
    assert fig.axes[2].images[0].get_array()[3, 3, 0] > 0  # ON drawn red
    with pytest.raises(ValueError, match=r"\[T, P, H, W\]"):
        event_frames(np.zeros((4, 8, 8)))


def test_training_curves_plot_the_history():
    hist = [{"epoch": i + 1, "train_loss": 2.0 / (i + 1), "train_acc": 0.1 * i, "test_loss": 2.1 / (i + 1),
             "test_acc": 0.09 * i} for i in range(4)]
    fig = training_curves(hist)
    ax_loss, ax_acc = fig.axes
    np.testing.assert_allclose(ax_loss.lines[0].get_ydata(), [h["train_loss"] for h in hist])
    np.testing.assert_allclose(ax_acc.lines[1].get_ydata(), [100 * h["test_acc"] for h in hist])
    with pytest.raises(ValueError, match="empty"):
        training_curves([])


def test_backend_is_non_interactive():
    assert matplotlib.get_backend().lower() == "agg"


def test_record_outputs_does_not_change_the_model_output():
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="mlp", input_shape=(20,), hidden=(16,), num_classes=3),
                        NeuronConfig(tau_mem_ms=5.0))
    x = (torch.rand(6, 2, 20) > 0.5).float()
    model.train()
    model.eval()
    ref, _ = model(x)
    model.train()
    out, layers = record_outputs(model, x)
    assert torch.equal(out, ref)
    assert model.training  # mode restored
    assert len(layers) == sum(isinstance(m, LIF) for m in model.modules())
    assert all(s.shape[:2] == (6, 2) for s in layers.values())
    assert not any(m._forward_hooks for m in model.modules())  # hooks removed


def test_plot_edge_cases_are_drawn_right_or_refused_by_name():
    frames = np.zeros((20, 1, 4, 4))
    fig = event_frames(frames, labels=[f"L{i}" for i in range(20)])  # one label per frame, 10 frames shown
    assert [ax.get_title() for ax in fig.axes] == [f"L{i}" for i in np.linspace(0, 19, 10).astype(int)]
    assert [ax.get_title() for ax in event_frames(frames, max_frames=3, labels="abc").axes] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="4 labels for 20 frames"):
        event_frames(frames, labels="abcd")
    for bad in (lambda: event_frames(np.zeros((0, 1, 4, 4))), lambda: event_frames(frames, max_frames=0),
                lambda: raster(np.zeros((0, 3))), lambda: membrane_trace(np.zeros(0))):
        with pytest.raises(ValueError, match="T >= 1|max_frames must be >= 1"):
            bad()
    events = np.array([[0, -1, 2, 0.3]] * 3)  # OFF events and counts are events; the rate counts events
    fig = raster(events)
    assert len(fig.axes[0].collections[0].get_offsets()) == 9 and "rate 0.750/step" in fig.axes[0].texts[0].get_text()
    hist = [{"epoch": 1, "train_loss": 1.0, "train_acc": 0.5}, {"epoch": 2, "train_loss": 0.8, "train_acc": 0.6,
                                                                  "test_loss": 0.9, "test_acc": 0.55}]
    ax_loss, _ = training_curves(hist).axes  # a key missing from the first epoch: a gap, not a KeyError
    single = np.ones((2, 1, 3, 3))
    single[1] = 0.5  # one polarity: every frame on one grey scale (a constant frame is not auto-scaled to black)
    assert [ax.images[0].get_clim() for ax in event_frames(single).axes] == [(0.0, 1.0), (0.0, 1.0)]
    np.testing.assert_allclose(ax_loss.lines[1].get_ydata(), [np.nan, 0.9])


def test_metrics_files_are_strict_json(tmp_path):
    import json

    from neurosim.config import RunConfig, TrainConfig
    from neurosim.training import Trainer

    trainer = Trainer(build_model(ModelConfig(kind="mlp", input_shape=(4,), hidden=(), num_classes=2),
                                  NeuronConfig()), RunConfig(train=TrainConfig(device="cpu")), tmp_path, progress=False)
    trainer.history = [{"epoch": 1, "test_loss": float("nan"), "saved_mb": None}]
    trainer._write_run_files()
    line = (tmp_path / "metrics.jsonl").read_text()
    assert json.loads(line, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}")) == {
        "epoch": 1, "test_loss": None, "saved_mb": None}


def test_a_recurrent_layers_membrane_trace_and_raster_show_every_step():
    from neurosim.nn import RLIF, Linear, Sequential
    from neurosim.runs import layer_spikes

    torch.manual_seed(0)
    net = Sequential(Linear(6, 4), RLIF(4, beta=0.8, v_th=1.0, record_membrane=True), Linear(4, 2), LIF(beta=0.8))
    x = torch.rand(12, 3, 6) * 2
    with torch.no_grad():
        _, state = net(x)
        spikes = net[1](net[0](x))[0]
    v_seq = state["1"].v_seq  # the membrane before reset at every step
    assert v_seq.shape == (12, 3, 4) and 0 < spikes.mean() < 1
    assert torch.equal(spikes, (v_seq >= 1.0).float())  # a spike wherever the membrane reached the threshold
    fig = membrane_trace(v_seq[:, 0, :2], spikes=spikes[:, 0, :2], v_th=1.0)
    for k in range(2):
        np.testing.assert_allclose(fig.axes[0].lines[k].get_ydata(), v_seq[:, 0, k].numpy())
        assert len(fig.axes[0].collections[k].get_segments()) == int(spikes[:, 0, k].sum())
    _, layers = layer_spikes(net, x)
    fig = raster({name: s[:, 0] for name, s in layers.items()})
    assert list(layers) == ["1", "3"] and len(fig.axes[0].collections[0].get_offsets()) == int(spikes[:, 0].sum())


def _display_extent(artist, fig):
    fig.canvas.draw()
    return artist.get_window_extent(fig.canvas.get_renderer())


def test_membrane_trace_legend_hides_no_part_of_the_trace():
    # tutorial 01's neuron: τ = 10 ms, input 0.15 per step, 60 steps: a sawtooth that fills the whole time axis, so
    # the legend in any corner of the axes (it was in the lower right) covered part of it
    lif = LIF(tau_mem_ms=10.0, record_membrane=True)
    spikes, state = lif(torch.full((60, 1, 1), 0.15))
    fig = membrane_trace(state.v_seq[:, 0, 0], spikes[:, 0, 0], v_th=1.0, dt_ms=1.0)
    ax = fig.axes[0]
    box = _display_extent(ax.get_legend(), fig)
    line = ax.lines[0]
    points = ax.transData.transform(np.column_stack([line.get_xdata(), line.get_ydata()]))
    assert not box.count_contains(points)
    assert not box.overlaps(ax.get_window_extent())  # nor the threshold line or the spike marks
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["membrane", "spikes", "threshold"]


def test_raster_says_when_it_shows_a_subset_of_the_neurons():
    # 1,000 neurons, 400 drawn: the y axis runs 0..400 over the ones shown, so the label must not read "1000 n" alone
    s = torch.zeros(5, 1000)
    fig = raster({"input": s, "small": torch.zeros(5, 30)})
    assert [ax.get_ylabel() for ax in fig.axes] == ["input\n(400 of 1000 n)", "small\n(30 n)"]
    assert raster(s, max_neurons=10).axes[0].get_ylabel() == "neuron (10 of 1000 n shown)"
    assert raster(s[:, :10]).axes[0].get_ylabel() == "neuron"


def test_event_frames_title_clears_labels_of_two_lines():
    # tutorial 03's augmentation grid: labels "name\nN ev" over each panel ran into the figure's title
    frames = np.zeros((6, 2, 35, 35))
    fig = event_frames(frames, title="one sample under each augmentation (frames summed over time)",
                       labels=[f"augmentation {i}\n{1000 + i} ev" for i in range(6)])
    title = _display_extent(fig._suptitle, fig)
    assert not any(title.overlaps(ax.title.get_window_extent(fig.canvas.get_renderer())) for ax in fig.axes)


def test_training_curves_put_ticks_on_whole_epochs_only():
    hist = [{"epoch": e, "train_loss": 1.0 / e, "train_acc": 0.3 * e} for e in (1, 2)]
    fig = training_curves(hist)
    fig.canvas.draw()
    for ax in fig.axes:
        lo, hi = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_a_long_sequences_raster_holds_booleans_not_float_copies_of_the_layer():
    """The run's raster shows every layer of one sample over all T steps: it marks events as booleans ([T, N] bytes),
    where it made float64 copies (8x a float32 layer's bytes: 160 MB for a DVS Gesture sample's first layer at
    T = 200); NaN is no event, any other nonzero is."""
    import tracemalloc

    g = torch.Generator().manual_seed(0)
    layer = (torch.rand(1000, 8000, generator=g) < 0.01).float()  # [T, N] float32: 32 MB
    layer[0, :3] = torch.tensor([float("nan"), -1.0, float("inf")])
    tracemalloc.start()
    try:
        fig = raster({"layer": layer}, max_neurons=8000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < layer.numel() * layer.element_size(), f"peak {peak / 1e6:.0f} MB"
    drawn = fig.axes[0].collections[0].get_offsets()
    assert len(drawn) == int(layer.count_nonzero()) - 1  # every event, the NaN not one

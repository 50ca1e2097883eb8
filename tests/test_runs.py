"""neurosim.runs: loading a trained run leaves the caller's random streams alone."""

from __future__ import annotations

import pytest
import torch

from neurosim.runs import evaluate_checkpoint, load_or_train, load_run


@pytest.mark.parametrize("load", [
    lambda ckpt: load_run(ckpt, progress=False),
    lambda ckpt: load_or_train(ckpt, None, progress=False),
    lambda ckpt: evaluate_checkpoint(ckpt, progress=False),
], ids=["load_run", "load_or_train", "evaluate_checkpoint"])
def test_loading_a_run_does_not_advance_torchs_random_stream(tiny_checkpoint, load):
    # it builds the model, whose random initialisation the checkpoint's weights replace: that build drew from
    # torch's global stream, so a seeded script drew other numbers after it
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    load(tiny_checkpoint)
    assert torch.equal(torch.rand(3), expected)


def test_load_run_test_only_reads_no_training_frames_and_still_checks_the_data(tiny_checkpoint, monkeypatch):
    # estimate and evaluate use the test split only, but load_run loaded both (~2 GB of training frames for DVS
    # Gesture at T = 60)
    import neurosim.data.pipeline as pipeline
    import neurosim.runs as runs

    splits = []

    def spy(real):
        def load(cfg, split, *args, **kwargs):
            splits.append(split)
            return real(cfg, split, *args, **kwargs)
        return load

    monkeypatch.setattr(pipeline, "_load_frames", spy(pipeline._load_frames))
    monkeypatch.setattr(runs, "_load_frames", spy(runs._load_frames))
    _, _, full = load_run(tiny_checkpoint, progress=False)
    assert splits == ["train", "test"]
    splits.clear()
    _, _, only = load_run(tiny_checkpoint, progress=False, test_only=True)
    assert splits == ["test"] and only.train is None and only.train_frames is None
    assert (only.test_frames == full.test_frames).all() and only.fingerprint == full.fingerprint
    assert only.test.batch_size == full.test.batch_size
    splits.clear()
    assert evaluate_checkpoint(tiny_checkpoint, progress=False)["samples"] == len(full.test.labels)
    assert splits == ["test"]

    # the data-fingerprint check still runs on the test split alone
    ckpt = torch.load(tiny_checkpoint, weights_only=False)
    ckpt["data_fingerprint"] = [1, 1, "other files"]
    other = tiny_checkpoint.parent / "other.pt"
    torch.save(ckpt, other)
    with pytest.warns(RuntimeWarning, match="other data files"):
        load_run(other, progress=False, test_only=True)


def _part_way(ckpt_path):
    """``ckpt_path`` rewritten as if its run had been interrupted after batch 1 of 2 of the epoch after its own."""
    from neurosim.training.checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(ckpt_path)
    ckpt["epoch"] -= 1
    save_checkpoint(ckpt_path, {**ckpt, "partial_epoch": {"batches": 1, "epoch_batches": 2, "evaluating": False,
                                                          "ranks": []}})
    return ckpt["epoch"] + 1


@pytest.mark.parametrize("load", [
    lambda ckpt: load_run(ckpt, progress=False),
    lambda ckpt: evaluate_checkpoint(ckpt, progress=False),
], ids=["load_run", "evaluate_checkpoint"])
def test_a_part_way_checkpoints_warning_points_at_the_callers_line(tiny_checkpoint, load):
    # evaluate_checkpoint's warning pointed inside runs.py, where it calls load_run
    epoch = _part_way(tiny_checkpoint)
    with pytest.warns(RuntimeWarning, match=f"part-way through epoch {epoch}: it has trained .*the first 1 of epoch "
                                            f"{epoch}'s 2 batches") as caught:
        load(tiny_checkpoint)
    assert [w.filename for w in caught if "part-way" in str(w.message)] == [__file__]


def _recurrent_config(out_dir, method="bptt", **train):
    from neurosim.config import config_from_dict

    return config_from_dict({
        "name": f"rec-{method}", "out_dir": str(out_dir), "seed": 1,
        "data": {"dataset": "event_digits", "time_steps": 5, "batch_size": 32, "train_subset": 64, "test_subset": 32},
        "model": {"kind": "mlp", "input_shape": [2, 34, 34], "hidden": [24], "recurrent": True, "readout": "membrane"},
        "neuron": {"tau_mem_ms": 2.0},
        "train": {"epochs": 1, "lr": 0.003, "threads": 1, "method": method,
                  **({} if method == "bptt" else {"loss": "tet"}), **train},
    })


def test_a_recurrent_runs_raster_shows_its_recurrent_layer_at_every_step(tmp_path, event_digits_cache, monkeypatch):
    # the raster recorded the RLIF's LIF child, which runs once per step: the panel "layer 2.lif" held one step
    import neurosim.viz
    from neurosim.nn import RLIF
    from neurosim.runs import layer_spikes, train_run

    drawn = {}
    real = neurosim.viz.raster
    monkeypatch.setattr(neurosim.viz, "raster", lambda panels, **kw: drawn.update(panels) or real(panels, **kw))
    result = train_run(_recurrent_config(tmp_path), progress=False, figures=True)
    assert isinstance(result.model[2], RLIF)
    assert list(drawn) == ["input", "layer 2"] and tuple(drawn["layer 2"].shape) == (5, 24)
    x_seq = torch.as_tensor(result.data.test_frames[:1]).float().transpose(0, 1)
    with torch.no_grad():
        hidden, _ = result.model[2](result.model[1](result.model[0](x_seq)))
    torch.testing.assert_close(drawn["layer 2"], hidden[:, 0], rtol=0, atol=0)
    assert hidden.sum() > 0  # the layer fires: the panel is not empty by construction
    report = (result.run_dir / "report.md").read_text()
    assert "`mlp` SNN, recurrent hidden layers (RLIF)" in report and (result.run_dir / "raster.png").is_file()
    out_seq, layers = layer_spikes(result.model, x_seq)
    assert list(layers) == ["2"] and out_seq.shape == (5, 1, 10)


def test_the_raster_shows_a_cuba_layer_once_under_its_own_name():
    # a CubaLIF records through its LIF child ('1.lif'), whose input is the synaptic current; its LI child ('1.syn')
    # emits that current, not spikes: neither may show as a layer of its own
    from neurosim.config import ModelConfig, NeuronConfig
    from neurosim.nn import CubaLIF, build_model
    from neurosim.runs import layer_spikes

    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="mlp", input_shape=(12,), hidden=(8,), num_classes=3),
                        NeuronConfig(tau_syn_ms=5.0, beta=0.8, v_th=0.3)).eval()
    cubas = [name for name, m in model.named_modules() if isinstance(m, CubaLIF)]
    x_seq = (torch.rand(6, 2, 12) < 0.5).float() * 2
    out_seq, layers = layer_spikes(model, x_seq)
    assert list(layers) == cubas and len(cubas) == 2
    with torch.no_grad():
        hidden, _ = model[2](model[1](model[0](x_seq)))
    assert torch.equal(layers[cubas[0]], hidden) and hidden.sum() > 0
    assert torch.equal(out_seq, model(x_seq)[0])

"""neurosim → hardware estimates: activity recording, the model/checkpoint/NIR-file paths, and `neurosim estimate`."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from neurosim.activity import activity_profile
from neurosim.cli import main
from neurosim.config import ModelConfig, NeuronConfig
from neurosim.estimation import estimate_files, estimate_model, is_estimate_folder
from neurosim.nn import build_model
from si_approx import approx_si


def _conv_model(seed: int = 0):
    torch.manual_seed(seed)
    cfg = ModelConfig(kind="conv", input_shape=(2, 12, 12), channels=(4, 8), kernel_size=3, num_classes=3)
    return build_model(cfg, NeuronConfig(v_th=0.5))


def _mlp_model(seed: int = 0):
    torch.manual_seed(seed)
    return build_model(ModelConfig(kind="mlp", input_shape=(20,), hidden=(16,), num_classes=3),
                       NeuronConfig(v_th=0.5))


def _spikes(shape, p=0.3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < p).float()


# ------------------------------------------------------------------------------------------- activity


def test_activity_profile_counts_the_spikes_the_model_emits_and_leaves_outputs_unchanged():
    model = _mlp_model()
    x = _spikes((6, 5, 20))
    model.eval()
    with torch.no_grad():
        ref, _ = model(x)
    # the hidden LIF's spikes, by running the first layers by hand (Flatten, Linear, LIF)
    with torch.no_grad():
        hidden, _ = model[2](model[1](model[0](x)))
    prof = activity_profile(model, x, dt_s=1e-3)
    with torch.no_grad():
        after, _ = model(x)
    torch.testing.assert_close(after, ref)  # recording changed nothing
    assert prof.samples == 5 and prof.time_steps == 6 and prof.dt_s == 1e-3
    np.testing.assert_allclose(prof.spikes_per_step["2"], hidden.sum(dim=(1, 2)).numpy() / 5)
    np.testing.assert_allclose(prof.input_events_per_step, x.sum(dim=(1, 2)).numpy() / 5)
    assert hidden.sum() > 0  # the check above compared real spikes, not zeros


def test_activity_profile_over_batches_respects_samples_and_rejects_bad_input():
    model = _mlp_model()
    batches = [(_spikes((4, 3, 20), seed=s), None) for s in range(3)]
    prof = activity_profile(model, batches, dt_s=2e-3, samples=7)
    assert prof.samples == 7
    whole = torch.cat([b[0] for b in batches], dim=1)[:, :7]
    np.testing.assert_allclose(prof.input_events_per_step, whole.sum(dim=(1, 2)).numpy() / 7)
    with pytest.raises(ValueError, match=r"\[T, B, \.\.\.\]"):
        activity_profile(model, torch.ones(20), dt_s=1e-3)
    with pytest.raises(ValueError, match="no samples"):
        activity_profile(model, [], dt_s=1e-3)


def test_off_events_count_as_events_and_float64_models_are_profiled():
    from neurosim.data import delta_encode

    model = _mlp_model()
    g = torch.Generator().manual_seed(3)
    x = delta_encode(torch.rand(6, 5, 20, generator=g), threshold=0.2, off_spike=True)  # +1 and −1 events
    assert (x < 0).any() and (x > 0).any()
    prof = activity_profile(model, x, dt_s=1e-3)  # the signed sum went negative: an ActivityError
    np.testing.assert_allclose(prof.input_events_per_step, x.abs().sum(dim=(1, 2)).numpy() / 5)
    wide = activity_profile(model.double(), x.double(), dt_s=1e-3)  # the inputs used to be cast to float32
    np.testing.assert_allclose(wide.spikes_per_step["2"], prof.spikes_per_step["2"])


def test_activity_profile_runs_a_few_samples_at_a_time_and_reduces_in_the_hooks():
    # it ran every sample at once and kept each layer's whole [T, B, ...] output until the forward ended (1.9 GB
    # for the DVS Gesture model at T = 20 on 64 samples); the totals must not depend on how the run is split
    model = _conv_model()
    x = _spikes((7, 10, 2, 12, 12), p=0.3) * torch.randint(1, 4, (7, 10, 2, 12, 12))  # event counts, not 0/1
    seen = []
    model[0].register_forward_pre_hook(lambda mod, args: seen.append(tuple(args[0].shape[:2])))
    small = activity_profile(model, x, dt_s=1e-3, batch_size=3)
    assert max(b for _, b in seen) == 3 and sum(b for t, b in seen if t == seen[0][0]) >= 3
    whole = activity_profile(model, x, dt_s=1e-3, batch_size=10)
    assert small.samples == whole.samples == 10 and list(small.spikes_per_step) == list(whole.spikes_per_step)
    for k in whole.spikes_per_step:  # whole numbers: float64 adds them exactly in any order
        np.testing.assert_array_equal(small.spikes_per_step[k], whole.spikes_per_step[k])
        np.testing.assert_array_equal(small.spike_counts[k], whole.spike_counts[k])
    np.testing.assert_array_equal(small.input_events_per_step, x.sum(dim=(1, 2, 3, 4)).double().numpy() / 10)
    with torch.no_grad():  # the first LIF's spikes, by hand
        hidden, _ = model[1](model[0](x))
    np.testing.assert_array_equal(small.spikes_per_step["1"], hidden.double().sum(dim=(1, 2, 3, 4)).numpy() / 10)
    np.testing.assert_array_equal(small.spike_counts["1"], hidden.double().sum(dim=(0, 1)).numpy() / 10)
    with pytest.raises(ValueError, match="batch_size must be a whole number"):
        activity_profile(model, x, dt_s=1e-3, batch_size=0)


def test_activity_profile_adds_up_a_layer_called_a_chunk_of_steps_at_a_time():
    """A model that runs its LIF one step per call (the hooks see [1, B, ...] T times) is profiled like one that
    runs all steps at once; a layer that emits other than T steps in all is named."""
    from torch import nn

    from neurosim.nn import LIF

    class StepByStep(nn.Module):
        def __init__(self, per_step: int):
            super().__init__()
            self.fc, self.lif, self.per_step = nn.Linear(20, 8), LIF(v_th=0.3), per_step

        def forward(self, x_seq, state=None):
            outs = []
            for t in range(0, x_seq.shape[0], self.per_step):
                s, state = self.lif(self.fc(x_seq[t:t + self.per_step]), state)
                outs.append(s)
            return torch.cat(outs), state

    torch.manual_seed(0)
    x = _spikes((6, 5, 20), p=0.5)
    stepped, whole = StepByStep(1), StepByStep(6)
    whole.load_state_dict(stepped.state_dict())
    a = activity_profile(stepped, x, dt_s=1e-3)
    b = activity_profile(whole, x, dt_s=1e-3)
    assert a.spikes_per_step["lif"].sum() > 0
    np.testing.assert_array_equal(a.spikes_per_step["lif"], b.spikes_per_step["lif"])
    np.testing.assert_array_equal(a.spike_counts["lif"], b.spike_counts["lif"])

    class Twice(StepByStep):
        def forward(self, x_seq, state=None):
            self.lif(self.fc(x_seq))
            return super().forward(x_seq, state)

    with pytest.raises(ValueError, match="module 'lif' emitted 12 time steps in all for an input of T = 6"):
        activity_profile(Twice(6), x, dt_s=1e-3)


def test_record_outputs_runs_a_neurosim_model_a_chunk_of_steps_at_a_time_with_the_same_outputs():
    """Long sequences: the run's raster figure records one sample's layers over all T steps; the model runs a chunk
    of steps at a time as evaluation does, so only the recorded outputs are whole sequences, not every layer's
    intermediate tensors (it ran all T at once: 267 MB for one DVS Gesture sample at T = 200)."""
    from neurosim.activity import record_outputs
    from neurosim.nn import time_chunk

    model = _conv_model()
    x = _spikes((300, 1, 2, 12, 12), p=0.3)  # [T, B, ...]: one sample of a long sequence
    seen = []
    model[0].register_forward_pre_hook(lambda mod, args: seen.append(args[0].shape[0]))
    out, layers = record_outputs(model, x)
    assert max(seen) == time_chunk(model, x) < 300 and sum(seen) == 300
    with torch.no_grad():
        whole, _ = model.eval()(x)  # (seen records this call too)
    assert torch.equal(out, whole) and all(s.shape[0] == 300 for s in layers.values())
    hidden, _ = model[1](model[0](x))
    assert torch.equal(layers["1"], hidden)


def test_activity_profile_keeps_no_tensor_per_chunk_of_steps():
    """Long sequences: a model run a step (or chunk) at a time makes T calls per batch; the profile writes each
    call's per-step totals into one buffer per layer and keeps nothing of the call itself. It kept two small tensors
    per call and layer until the batch ended, which fragmented the heap: `neurosim estimate` peaked at 858 MB at
    T = 400 against 496 MB at T = 50 (quickstart net, 64 samples). Counted here as the tensors alive at each call:
    they grow with the calls only as much as the model's own outputs do."""
    import gc

    from torch import nn

    from neurosim.nn import LIF

    class StepByStep(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.lif = nn.Linear(20, 8), LIF(v_th=0.3)

        def forward(self, x_seq, state=None):
            outs = []
            for t in range(x_seq.shape[0]):
                s, state = self.lif(self.fc(x_seq[t:t + 1]), state)
                outs.append(s)
            return torch.cat(outs), state

    def live_at_each_call(run) -> list[int]:
        live = []
        hook = model.lif.register_forward_pre_hook(
            lambda mod, args: live.append(sum(isinstance(o, torch.Tensor) for o in gc.get_objects())))
        try:
            run()
        finally:
            hook.remove()
        return live

    torch.manual_seed(0)
    model, x = StepByStep(), _spikes((16, 5, 20), p=0.5)
    with torch.no_grad():
        plain = live_at_each_call(lambda: model(x))
    profiled = live_at_each_call(lambda: activity_profile(model, x, dt_s=1e-3))
    assert len(plain) == len(profiled) == 16
    assert profiled[-1] - profiled[1] == plain[-1] - plain[1]  # (the first call made the buffers)


def test_estimate_checkpoint_measures_the_first_samples_a_few_at_a_time_without_the_training_split(
        tiny_checkpoint, monkeypatch):
    # it loaded both splits and passed whole test batches of 128 to the profile, which sliced them to `samples` only
    # after the loader had converted all of them to float
    import neurosim.activity as activity
    import neurosim.runs as runs
    from neurosim.estimation import estimate_checkpoint

    asked, batches = [], []
    real_load, real_profile = runs.load_run, activity.activity_profile

    def load_run(*args, **kwargs):
        asked.append(kwargs.get("test_only", False))
        return real_load(*args, **kwargs)

    def profile(model, data, **kwargs):
        data = list(data)
        batches.extend(x.shape[1] for x, _ in data)
        assert all(x.dtype == torch.uint8 for x, _ in data)  # the cached frames, converted by the profile
        return real_profile(model, data, **kwargs)

    monkeypatch.setattr(runs, "load_run", load_run)
    monkeypatch.setattr(activity, "activity_profile", profile)
    report = estimate_checkpoint(tiny_checkpoint, ["loihi"], samples=12)
    assert asked == [True] and report.activity.samples == 12
    assert batches == [12]  # only the first 12 of the 16 test samples are converted
    batches.clear()
    assert estimate_checkpoint(tiny_checkpoint, ["loihi"], samples=64).activity.samples == 16  # all there are
    assert batches == [16]  # (batches of at most 16 samples, the profile's batch)
    with pytest.raises(ValueError, match="samples must be a whole number >= 1"):
        estimate_checkpoint(tiny_checkpoint, ["loihi"], samples=0)


def test_estimate_checkpoint_takes_samples_none_as_every_test_sample(tiny_checkpoint):
    # samples=None (estimate_model's and activity_profile's "all of data") measured the whole test split until the
    # check of samples added with the first-samples feed refused it; a numpy integer (e.g. from a sweep) too
    import numpy as np

    from neurosim.estimation import estimate_checkpoint

    assert estimate_checkpoint(tiny_checkpoint, ["loihi"], samples=None).activity.samples == 16
    assert estimate_checkpoint(tiny_checkpoint, ["loihi"], samples=np.int64(5)).activity.samples == 5
    with pytest.raises(ValueError, match="samples must be a whole number >= 1"):
        estimate_checkpoint(tiny_checkpoint, ["loihi"], samples=2.5)


# ---------------------------------------------------------------------------------- estimate_model


def test_a_failed_re_estimate_leaves_no_mix_of_two_estimates(tmp_path, disk_full_at):
    # a full disk at the figures of a second estimate in the same folder left the new estimate.json, estimate.txt
    # and activity.json beside the first estimate's model.nir and figures, with nothing to tell them apart
    import errno

    model, x = _conv_model(), _spikes((5, 4, 2, 12, 12), p=0.2)
    estimate_model(model, (2, 12, 12), x, targets=["loihi"], dt_s=1e-3, out_dir=tmp_path)
    disk_full_at("layers.png")
    with pytest.raises(OSError, match=r"No space left on device \(writing the estimate in .*: the earlier estimate "
                                      r"there was removed first; it holds only activity.json, model.nir, energy.png "
                                      r"of this one, without estimate.json; run the estimate again") as info:
        estimate_model(model, (2, 12, 12), x, targets=["loihi"], dt_s=1e-3, out_dir=tmp_path)
    assert info.value.filename == str(tmp_path / "layers.png") and info.value.errno == errno.ENOSPC
    # the mark written first keeps the folder an estimate's, whose files the next estimate replaces
    assert sorted(p.name for p in tmp_path.iterdir()) == ["activity.json", "energy.png", "estimate.incomplete",
                                                          "model.nir"]
    assert is_estimate_folder(tmp_path)


def test_estimate_model_on_a_conv_net_with_maxpool_writes_every_output(tmp_path):
    model = _conv_model()
    x = _spikes((5, 4, 2, 12, 12), p=0.2)
    report = estimate_model(model, (2, 12, 12), x, targets=["loihi", "truenorth", "conventional_45nm"],
                            dt_s=1e-3, out_dir=tmp_path)
    assert set(report.estimates) == {"loihi", "truenorth", "conventional_45nm"}
    for e in report.estimates.values():
        assert e.total_energy_j > 0 and sum(e.energy_j.values()) == approx_si(e.total_energy_j)
    names = {"estimate.json", "estimate.txt", "activity.json", "model.nir", "energy.png", "layers.png", "cores.png"}
    assert names <= {p.name for p in tmp_path.iterdir()}
    data = json.loads((tmp_path / "estimate.json").read_text())
    assert data["activity"]["samples"] == 4
    assert data["targets"]["loihi"]["total_energy_j"] == approx_si(report.estimates["loihi"].total_energy_j)
    assert "loihi" in (tmp_path / "estimate.txt").read_text()
    # the NIR node names carry the measured spikes: every spiking layer of the graph has activity
    import nir

    lif_nodes = [k for k, n in report.graph.nodes.items() if isinstance(n, (nir.LIF, nir.IF))]
    assert lif_nodes and set(lif_nodes) <= set(report.activity.spikes_per_step)
    # spikes are the neurons'; what the max pools pass on is listed apart, not summed in as spikes
    pools = [k for k, n in report.graph.nodes.items() if isinstance(n, (nir.SumPool2d, nir.Input))]
    assert set(data["activity"]["spikes_per_inference"]) == set(lif_nodes)
    assert len(pools) == 3 and set(data["activity"]["events_per_inference"]) == set(pools)


def test_a_model_layer_with_all_weights_zero_is_costed_and_named_in_every_estimate(tmp_path):
    """A layer whose weights are all zero (pruned to nothing, never trained) reached the estimates through NIR
    without a word: it is still costed as the graph says (a chip would store it), and now named in the notes."""
    model = _mlp_model()
    with torch.no_grad():
        model[-2].weight.zero_()  # the readout's weights (Linear 16 -> 3 before its LIF)
        if model[-2].bias is not None:
            model[-2].bias.zero_()
    x = _spikes((5, 4, 20), p=0.3)
    targets = ["loihi", "rram_neurosim", "conventional_45nm"]
    report = estimate_model(model, (20,), x, targets=targets, dt_s=1e-3, out_dir=tmp_path)
    name = str(len(model) - 2)
    note = f"weight node(s) {name!r}: all weights zero, so no spike crosses them and they carry no signal"
    for t in targets:
        assert any(note in n for n in report.estimates[t].notes), (t, report.estimates[t].notes)
    written = json.loads((tmp_path / "estimate.json").read_text())["targets"]
    assert all(any(note in n for n in written[t]["notes"]) for t in targets)
    trained = estimate_model(_mlp_model(), (20,), x, targets=targets, dt_s=1e-3)
    for t in targets:
        assert not any("all weights zero" in n for n in trained.estimates[t].notes)
        mapped = report.estimates[t].mapping
        assert mapped is None or mapped.cores_used == trained.estimates[t].mapping.cores_used


def test_synaptic_operations_after_a_max_pool_count_the_events_it_passes_on():
    """MaxPool2d is exported as SumPool2d; the events it passes on (at most one per window and step) are recorded,
    so the conv behind it counts those, not every spike of the window."""
    from hardware_models import analyze

    from neurosim.activity import record_outputs

    model = _conv_model()  # conv 0 · LIF 1 · MaxPool 2 · conv 3 · LIF 4 · MaxPool 5 · Flatten 6 · Linear 7 · LIF 8
    x = _spikes((5, 4, 2, 12, 12), p=0.4)
    report = estimate_model(model, (2, 12, 12), x, targets=["loihi"])
    synops = analyze(report.graph).synops(report.activity).per_projection
    _, rec = record_outputs(model, x, kinds=(type(model[1]), type(model[2])))
    pooled = rec["2"].sum(dim=0).mean(dim=0)  # (4, 5, 5) events leaving the first max pool, per sample
    conv = model[3]
    assert (conv.weight != 0).all()
    reached = torch.nn.functional.conv2d(pooled[None], torch.ones_like(conv.weight))  # nonzero weights: all
    assert synops["1->3->4"] == pytest.approx(float(reached.sum()), rel=1e-9)
    summed = torch.nn.functional.avg_pool2d(rec["1"].sum(dim=0).mean(dim=0)[None], 2, divisor_override=1)
    assert float(reached.sum()) < float(torch.nn.functional.conv2d(summed, torch.ones_like(conv.weight)).sum())
    pooled2 = rec["5"].sum(dim=0).mean(dim=0).flatten()  # the second pool, through Flatten into Linear 7
    assert synops["4->7->8"] == pytest.approx(float(pooled2.sum()) * 3, rel=1e-9)  # 3 outputs, weights nonzero
    assert (model[7].weight != 0).all()


def test_more_input_activity_costs_more_energy_on_targets_with_a_dynamic_energy_model():
    # (Speck publishes no per-event energy: its estimate is resting power x time, the same for both)
    model = _conv_model()
    targets = ["loihi", "spinnaker2", "truenorth"]
    quiet = estimate_model(model, (2, 12, 12), _spikes((5, 4, 2, 12, 12), p=0.05), targets=targets)
    busy = estimate_model(model, (2, 12, 12), _spikes((5, 4, 2, 12, 12), p=0.4), targets=targets)
    for t in targets:
        assert busy.estimates[t].total_energy_j > quiet.estimates[t].total_energy_j, t
    assert busy.estimates["loihi"].energy_j["synaptic"] > 2 * quiet.estimates["loihi"].energy_j["synaptic"]


def test_an_snntorch_model_is_estimated_as_its_neurosim_equivalent():
    snn = pytest.importorskip("snntorch")
    from torch import nn

    from neurosim.interop import from_snntorch

    torch.manual_seed(0)
    ref = nn.Sequential(nn.Flatten(), nn.Linear(20, 8), snn.Leaky(beta=0.9, init_hidden=True),
                        nn.Linear(8, 3), snn.Leaky(beta=0.9, init_hidden=True, output=True))
    x = _spikes((6, 4, 20), p=0.5)
    got = estimate_model(ref, (20,), x, targets=["loihi"])
    want = estimate_model(from_snntorch(ref), (20,), x, targets=["loihi"])
    assert sum(got.activity.spikes_per_step[n].sum() for n in got.activity.nodes) > 0
    assert got.estimates["loihi"].total_energy_j == approx_si(want.estimates["loihi"].total_energy_j, rel=1e-12)


def test_unknown_target_is_named():
    with pytest.raises(ValueError, match="nochip"):
        estimate_model(_mlp_model(), (20,), _spikes((4, 2, 20)), targets=["nochip"])


def test_a_misspelt_target_is_named_with_the_target_it_resembles(capsys, tmp_path, monkeypatch):
    """`--target lohi` listed every target without saying which was meant."""
    with pytest.raises(ValueError, match=r"unknown target\(s\) \['lohi', 'Loihi', 'zzz'\] \(did you mean 'lohi' -> "
                                         r"'loihi', 'Loihi' -> 'loihi'\?\); known targets: conventional_45nm, loihi"):
        estimate_model(_mlp_model(), (20,), _spikes((4, 2, 20)), targets=["lohi", "Loihi", "zzz"])
    import neurosim.runs

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(neurosim.runs, "load_run", lambda *a, **kw: pytest.fail("read the checkpoint before the check"))
    assert main(["estimate", "--checkpoint", "c.pt", "--target", "spinaker2"]) == 2  # before the model is read
    assert "unknown target(s) ['spinaker2'] (did you mean 'spinaker2' -> 'spinnaker2'?)" in capsys.readouterr().err


@pytest.mark.parametrize("target", ["nope.toml", "specs/loihi"])
def test_a_target_that_is_a_path_to_no_file_says_the_spec_file_is_missing(target, tmp_path, monkeypatch):
    # it said "unknown target(s) ['nope.toml']", as if a shipped name had been misspelt
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=rf"^spec file\(s\) \['{target}'\] not found \(a target ending in .toml or "
                                         r"containing a slash is the path of a spec file\); known targets: "):
        estimate_model(_mlp_model(), (20,), _spikes((4, 2, 20)), targets=["loihi", target])


def test_nir_plus_activity_files_give_the_same_estimate_as_the_model(tmp_path):
    model = _conv_model()
    x = _spikes((5, 4, 2, 12, 12), p=0.2)
    direct = estimate_model(model, (2, 12, 12), x, targets=["loihi", "spinnaker2"], out_dir=tmp_path / "a")
    again = estimate_files(tmp_path / "a" / "model.nir", tmp_path / "a" / "activity.json", ["loihi", "spinnaker2"])
    for t in ("loihi", "spinnaker2"):
        assert again.estimates[t].total_energy_j == approx_si(direct.estimates[t].total_energy_j, rel=1e-9)
        assert again.estimates[t].mapping.cores_used == direct.estimates[t].mapping.cores_used


def test_an_estimate_of_files_does_not_point_to_per_sample_which_needs_a_model(tmp_path):
    """The table's footnote sent a `--nir` estimate to `estimate --per-sample`, which refuses --nir (an activity
    file holds only the samples' mean)."""
    model = _mlp_model()
    x = _spikes((5, 4, 20), p=0.2)
    direct = estimate_model(model, (20,), x, targets=["loihi"], out_dir=tmp_path / "a")
    again = estimate_files(tmp_path / "a" / "model.nir", tmp_path / "a" / "activity.json", ["loihi"],
                           out_dir=tmp_path / "b")
    assert direct.table().endswith("so single samples differ: estimate --per-sample gives their spread)")
    tail = ("so single samples differ: an activity file holds only their mean; estimate --checkpoint ... "
            "--per-sample gives a neurosim model's spread)")
    assert again.table().endswith(tail) and (tmp_path / "b" / "estimate.txt").read_text().endswith(tail + "\n")
    assert again.table().split("\n")[:-1] == direct.table().split("\n")[:-1]  # the same rows


def test_an_estimate_of_files_into_their_own_folder_is_refused_before_it_replaces_them(tmp_path, capsys):
    """`estimate --nir model.nir --activity activity.json --out .` wrote its copies over both: the activity file
    rewritten at --step-ms (dt_s 1e-3 became 5e-3), another library's graph as neurosim writes it."""
    model = _mlp_model()
    direct = estimate_model(model, (20,), _spikes((5, 4, 20), p=0.2), targets=["loihi"], out_dir=tmp_path / "a")
    folder = tmp_path / "mine"
    folder.mkdir()
    for name in ("model.nir", "activity.json"):
        (folder / name).write_bytes((tmp_path / "a" / name).read_bytes())
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    argv = ["estimate", "--nir", str(folder / "model.nir"), "--activity", str(folder / "activity.json"), "--target",
            "loihi", "--step-ms", "5", "--out", str(folder)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert (f"the output folder (--out) {folder} holds the estimate's input (--nir {folder / 'model.nir'}, "
            f"--activity {folder / 'activity.json'}), which it would replace" in err and "Traceback" not in err)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # nothing written
    (folder / "model.nir").rename(tmp_path / "graph.nir")  # the activity alone is refused too
    argv[2] = str(tmp_path / "graph.nir")
    assert main(argv) == 2 and f"holds the estimate's input (--activity {folder / 'activity.json'})" in \
        capsys.readouterr().err
    again = estimate_files(tmp_path / "graph.nir", folder / "activity.json", ["loihi"], out_dir=tmp_path / "b")
    assert again.estimates["loihi"].total_energy_j == approx_si(direct.estimates["loihi"].total_energy_j, rel=1e-9)


def test_an_estimate_of_files_keeps_the_users_files_in_its_output_folder(tmp_path, capsys):
    """`estimate --nir ... --out mine` wrote its estimate.txt over the user's notes of that name."""
    estimate_model(_mlp_model(), (20,), _spikes((5, 4, 20), p=0.2), targets=["loihi"], out_dir=tmp_path / "a")
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "estimate.txt").write_text("my notes")
    argv = ["estimate", "--nir", str(tmp_path / "a" / "model.nir"), "--activity", str(tmp_path / "a" / "activity.json"),
            "--target", "loihi", "--out", str(folder)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert (f"--out: {folder} holds estimate.txt, which neurosim estimate did not write (no estimate.json of its own "
            "is there) and would replace or take for its own; choose another output folder, or pass --overwrite to "
            "replace it" in err and "Traceback" not in err)
    assert [p.name for p in folder.iterdir()] == ["estimate.txt"] and (folder / "estimate.txt").read_text() == \
        "my notes"
    assert main(argv + ["--overwrite"]) == 0 and is_estimate_folder(folder)
    assert (folder / "estimate.txt").read_text().startswith(capsys.readouterr().out.split("\n")[0])
    assert main(argv) == 0  # the estimate's own folder now: a rerun replaces its files


def test_the_default_output_folder_is_refused_before_the_checkpoint_is_read(tiny_checkpoint, monkeypatch):
    """estimate_checkpoint's docstring: a folder of the user's is refused 'before the checkpoint is read'; at the
    default <run>/estimate (out_dir=None) it was checked only after load_run had read the model and its test
    split. So were the early-exit and per-sample studies' default folders."""
    import neurosim.runs
    from neurosim.estimation import ForeignFilesError, estimate_checkpoint
    from neurosim.estimation.early_exit import early_exit_checkpoint
    from neurosim.estimation.per_sample import per_sample_checkpoint

    def load_run(*args, **kwargs):
        raise AssertionError("the checkpoint was read")

    monkeypatch.setattr(neurosim.runs, "load_run", load_run)
    default = tiny_checkpoint.parent / "estimate"
    default.mkdir()
    for call, name in ((estimate_checkpoint, "estimate.txt"), (early_exit_checkpoint, "early_exit.txt"),
                       (per_sample_checkpoint, "per_sample.txt")):
        (default / name).write_text("my notes")
        with pytest.raises(ForeignFilesError, match=re.escape(f"{default} holds {name}, which")):
            call(tiny_checkpoint, ["loihi"])
        (default / name).unlink()
    with pytest.raises(AssertionError, match="the checkpoint was read"):  # a folder it may write in: read on
        estimate_checkpoint(tiny_checkpoint, ["loihi"])


def test_the_python_api_keeps_the_users_files_in_its_output_folder_unless_asked_to_overwrite(tiny_checkpoint,
                                                                                              tmp_path):
    """estimate_checkpoint(..., out_dir=mine) (and estimate_model, estimate_files) wrote over the user's notes in
    estimate.txt and activity.json without a word, where `neurosim estimate --out mine` refuses without
    --overwrite."""
    from neurosim.estimation import ForeignFilesError, estimate_checkpoint

    estimate_model(_mlp_model(), (20,), _spikes((5, 4, 20), p=0.2), targets=["loihi"], out_dir=tmp_path / "a")
    mine = tmp_path / "mine"
    mine.mkdir()
    files = {"activity.json": '{"mine": 1}', "estimate.txt": "my notes", "notes.md": "kept"}
    for name, text in files.items():
        (mine / name).write_text(text)
    calls = {"estimate_checkpoint": lambda **kw: estimate_checkpoint(tiny_checkpoint, ["loihi"], samples=4, **kw),
             "estimate_model": lambda **kw: estimate_model(_mlp_model(), (20,), _spikes((5, 4, 20), p=0.2),
                                                           targets=["loihi"], **kw),
             "estimate_files": lambda **kw: estimate_files(tmp_path / "a" / "model.nir",
                                                           tmp_path / "a" / "activity.json", ["loihi"], **kw)}
    for what, call in calls.items():
        with pytest.raises(ForeignFilesError) as e:
            call(out_dir=mine)
        assert str(e.value) == (f"out_dir: {mine} holds activity.json, estimate.txt, which neurosim estimate did not "
                                "write (no estimate.json of its own is there) and would replace or take for its own; "
                                "choose another output folder, or pass overwrite=True to replace them"), what
        assert isinstance(e.value, ValueError)
        assert {p.name: p.read_text() for p in mine.iterdir()} == files, what  # nothing written
    report = estimate_checkpoint(tiny_checkpoint, ["loihi"], samples=4, out_dir=mine, overwrite=True)
    assert report.files["estimate.json"] == mine / "estimate.json" and is_estimate_folder(mine)
    assert (mine / "estimate.txt").read_text() == report.table() + "\n" and (mine / "notes.md").read_text() == "kept"
    for what, call in calls.items():  # the estimate's own folder now: each replaces its files without overwrite
        assert call(out_dir=mine).files["estimate.json"] == mine / "estimate.json", what


def test_estimate_json_reports_the_input_events_the_estimate_counted(tmp_path):
    # a hand-written activity may give the input only as spikes_per_step["input"] (no input_events_per_step): the
    # estimate counts those 6 events; estimate.json reported 0 (the sum of the absent input_events_per_step)
    import nir

    from hardware_models import ActivityProfile

    graph = nir.NIRGraph.from_list(nir.Linear(weight=np.ones((3, 4))),
                                   nir.LIF(tau=np.ones(3), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3)))
    nir.write(str(tmp_path / "m.nir"), graph)
    spikes = {"input": [4.0, 2.0], "lif": [1.0, 2.0]}
    ActivityProfile(time_steps=2, dt_s=1e-3, samples=1, spikes_per_step=spikes).to_json(tmp_path / "a.json")
    report = estimate_files(tmp_path / "m.nir", tmp_path / "a.json", ["loihi"], out_dir=tmp_path / "out")
    assert report.estimates["loihi"].synops == 6 * 3  # 6 input events x fan-out 3
    activity = json.loads((tmp_path / "out" / "estimate.json").read_text())["activity"]
    assert activity["input_events_per_inference"] == 6.0 and activity["events_per_inference"] == {"input": 6.0}
    # the usual form, input_events_per_step without a per-node entry, reads as before
    ActivityProfile(time_steps=2, dt_s=1e-3, samples=1, spikes_per_step={"lif": [1.0, 2.0]},
                    input_events_per_step=[3.0, 2.0]).to_json(tmp_path / "b.json")
    report = estimate_files(tmp_path / "m.nir", tmp_path / "b.json", ["loihi"])
    assert report.to_dict()["activity"]["input_events_per_inference"] == 5.0


def test_estimate_files_names_a_missing_or_broken_file(tmp_path):
    bad = tmp_path / "broken.nir"
    bad.write_bytes(b"not hdf5")
    (tmp_path / "activity.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="missing.nir"):
        estimate_files(tmp_path / "missing.nir", tmp_path / "activity.json")
    with pytest.raises(ValueError, match="broken.nir"):
        estimate_files(bad, tmp_path / "activity.json")


def _bars(ax) -> list[list[tuple[float, float]]]:
    """Per stacked component (in drawing order), each target's segment as ``(bottom, height)``."""
    return [[(p.get_y(), p.get_height()) for p in bars.patches] for bars in ax.containers]


def test_the_energy_figure_stacks_shares_on_a_linear_axis_when_targets_differ_by_orders_of_magnitude():
    # the stacked bars were drawn on a log axis: a segment's drawn height then says nothing of its share
    from types import SimpleNamespace

    from neurosim.estimation import plot_energy

    parts = {"a": {"synaptic": 3e-6, "static": 1e-6}, "b": {"synaptic": 1e-3, "static": 4e-3, "routing": 5e-3},
             "c": {"static": 2e-9}}
    ests = [SimpleNamespace(target=t, energy_j=e, total_energy_j=sum(e.values())) for t, e in parts.items()]
    ax = plot_energy(ests).axes[0]
    assert ax.get_yscale() == "linear" and "share" in ax.get_ylabel()
    bars, names = _bars(ax), sorted({k for e in parts.values() for k in e})  # components in sorted order
    for j, (t, e) in enumerate(parts.items()):
        total, below = sum(e.values()), 0.0
        for i, name in enumerate(names):
            bottom, height = bars[i][j]
            assert bottom == pytest.approx(below) and height == pytest.approx(100 * e.get(name, 0.0) / total)
            below += height
        assert below == pytest.approx(100)  # every bar is its target's whole energy
    # a: synaptic 75 %, static 25 % by hand; the totals written above the bars
    assert [h for _, h in (bars[names.index("synaptic")][0], bars[names.index("static")][0])] == \
        [pytest.approx(75), pytest.approx(25)]
    assert [t.get_text() for t in ax.texts] == ["4 µJ", "10 mJ", "2 nJ"]


def test_the_energy_figure_draws_energies_on_a_linear_axis_when_the_targets_are_alike():
    from types import SimpleNamespace

    from neurosim.estimation import LINEAR_SPAN, plot_energy

    parts = {"a": {"synaptic": 3e-6, "static": 1e-6}, "b": {"synaptic": 2e-6, "static": 8e-6}, "zero": {"static": 0.0}}
    ests = [SimpleNamespace(target=t, energy_j=e, total_energy_j=sum(e.values())) for t, e in parts.items()]
    assert 10e-6 <= LINEAR_SPAN * 4e-6  # within the span (the zero total aside)
    ax = plot_energy(ests).axes[0]
    assert ax.get_yscale() == "linear" and ax.get_ylabel() == "energy per inference (µJ)"
    static, synaptic = _bars(ax)
    assert [h for _, h in synaptic] == pytest.approx([3, 2, 0]) and [b for b, _ in synaptic] == pytest.approx([1, 8, 0])
    assert [h for _, h in static] == pytest.approx([1, 8, 0]) and [b for b, _ in static] == [0, 0, 0]
    assert [t.get_text() for t in ax.texts] == ["4 µJ", "10 µJ", "0 J"]
    assert ax.get_ylim()[1] > 10  # the tallest bar and its label fit


def test_the_energy_figures_say_under_a_targets_name_that_the_model_does_not_fit_on_it():
    from types import SimpleNamespace

    from neurosim.estimation import plot_energy
    from neurosim.hardware.plots import plot_energy_breakdown

    ests = [SimpleNamespace(target=t, energy_j={"synaptic": 1e-6}, total_energy_j=1e-6, kind="digital", fits=f,
                            fit_text=text)
            for t, f, text in (("a", True, "yes"), ("b", False, "no (3 chips)"), ("c", False, "no (a core limit)"),
                               ("d", None, "-"))]
    ticks = [t.get_text() for t in plot_energy(ests).axes[0].get_xticklabels()]
    assert ticks == ["a", "b\n(no fit: 3 chips)", "c\n(no fit: a core limit)", "d"]
    ticks = [t.get_text() for t in plot_energy_breakdown({e.target: e for e in ests}).axes[0].get_yticklabels()]
    assert ticks == ["a", "b (no fit: 3 chips)", "c (no fit: a core limit)", "d"]


def test_the_figures_name_the_chips_a_model_fits_on_where_it_needs_several():
    """With --chips 8 a model needing 6 SpiNNaker chips fits: the cores figure labelled it "fits" under the title
    "green: fits on one chip", and the energy figure, whose bar holds 6 chips' static power, gave no count."""
    from types import SimpleNamespace

    from neurosim.estimation import plot_cores, plot_energy

    ests = [SimpleNamespace(target=t, energy_j={"static": 1e-6}, total_energy_j=1e-6, kind="digital", fits=f,
                            fit_text=text, mapping=SimpleNamespace(cores_used=c))
            for t, f, text, c in (("a", True, "yes", 3), ("b", True, "yes (6 chips)", 93),
                                  ("c", False, "no (3 chips)", 40), ("d", False, "no (a core limit)", 534))]
    ax = plot_cores(ests).axes[0]
    assert [t.get_text() for t in ax.texts] == ["fits", "fits (6 chips)", "no fit (3 chips)", "no fit (a core limit)"]
    assert ax.get_title() == "mapping: cores used (green: fits on the chips named, else one)"
    assert plot_cores(ests[:1] + ests[2:]).axes[0].get_title() == "mapping: cores used (green: fits on one chip)"
    ticks = [t.get_text() for t in plot_energy(ests).axes[0].get_xticklabels()]
    assert ticks == ["a", "b\n(6 chips)", "c\n(no fit: 3 chips)", "d\n(no fit: a core limit)"]


# -------------------------------------------------------------------------------------------- the CLI


def test_cli_estimates_a_trained_checkpoint(tiny_checkpoint, tmp_path, capsys):
    ckpt = tiny_checkpoint
    assert main(["-q", "estimate", "--checkpoint", str(ckpt), "--target", "loihi", "--target", "truenorth",
                 "--samples", "8"]) == 0
    out = capsys.readouterr().out
    assert "loihi" in out and "truenorth" in out
    est = json.loads((ckpt.parent / "estimate" / "estimate.json").read_text())
    assert set(est["targets"]) == {"loihi", "truenorth"} and est["activity"]["samples"] == 8
    assert est["activity"]["time_steps"] == 4
    # a real-time chip takes the step time it is given (a binned recording's duration / T), not neuron.dt_ms
    for name, step in (("fast", []), ("slow", ["--step-ms", "30"])):
        assert main(["-q", "estimate", "--checkpoint", str(ckpt), "--target", "speck", "--samples", "8", *step,
                     "--out", str(tmp_path / name)]) == 0
    fast, slow = (json.loads((tmp_path / n / "estimate.json").read_text()) for n in ("fast", "slow"))
    assert slow["activity"]["dt_s"] == approx_si(0.03) and fast["activity"]["dt_s"] == approx_si(1e-3)
    assert (slow["targets"]["speck"]["latency_per_inference_s"] - fast["targets"]["speck"]["latency_per_inference_s"]
            == approx_si(4 * (0.03 - 0.001)))  # T = 4 steps, 29 ms longer each
    assert main(["estimate", "--checkpoint", str(ckpt), "--step-ms", "0"]) == 2
    assert "--step-ms must be a positive number of milliseconds, got 0" in capsys.readouterr().err  # not step_ms

    # the exported files work for --nir/--activity (how models from other libraries come in)
    out_dir = tmp_path / "again"
    assert main(["-q", "estimate", "--nir", str(ckpt.parent / "estimate" / "model.nir"), "--activity",
                 str(ckpt.parent / "estimate" / "activity.json"), "--target", "loihi",
                 "--out", str(out_dir)]) == 0
    again = json.loads((out_dir / "estimate.json").read_text())
    assert again["targets"]["loihi"]["total_energy_j"] == approx_si(est["targets"]["loihi"]["total_energy_j"])

    # --nonideal: test accuracy on Monte-Carlo RRAM chips next to the ideal accuracy
    capsys.readouterr()
    assert main(["-q", "estimate", "--checkpoint", str(ckpt), "--target", "rram_neurosim", "--nonideal",
                 "--no-sweep", "--mc-chips", "2", "--nonideal-samples", "8"]) == 0
    nonideal = json.loads((ckpt.parent / "estimate" / "nonideal_rram_neurosim.json").read_text())
    assert 0 <= nonideal["ideal_acc"] <= 100 and "ideal" in capsys.readouterr().out.lower()


def _outputs_of(folder) -> dict:
    """The JSON files an estimate wrote in ``folder``, less the paths of the files written (one per folder) and the
    seconds the non-ideal chips took."""
    def strip(d):
        return {k: strip(v) for k, v in d.items() if k not in ("files", "seconds")} if isinstance(d, dict) else d

    return {p.name: strip(json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))}


def test_estimate_with_every_option_reads_the_checkpoint_once_and_writes_what_each_option_alone_writes(
        tiny_checkpoint, monkeypatch):
    # with --nonideal, --fixed-point and --early-exit the estimate, each option and the early exit read the
    # checkpoint, rebuilt the model and loaded the test frames again: four times
    import neurosim.runs as runs

    reads, loads = [], []
    real_read, real_load = runs.load_checkpoint, runs.load_run
    monkeypatch.setattr(runs, "load_checkpoint", lambda *a, **k: reads.append(a) or real_read(*a, **k))
    monkeypatch.setattr(runs, "load_run", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    base = ["-q", "estimate", "--checkpoint", str(tiny_checkpoint), "--samples", "6", "--target", "loihi",
            "--target", "rram_neurosim"]
    options = {"nonideal": ["--nonideal", "--no-sweep", "--mc-chips", "1", "--nonideal-samples", "6"],
               "fixed_point": ["--fixed-point", "--fixed-point-samples", "6"],
               "early_exit": ["--early-exit", "--early-exit-samples", "6", "--exit-thresholds", "0.8"]}
    every = tiny_checkpoint.parent / "every"
    assert main([*base, *(f for flags in options.values() for f in flags), "--out", str(every)]) == 0
    assert len(reads) == 1 and len(loads) == 1
    together = _outputs_of(every)
    assert {"estimate.json", "nonideal_rram_neurosim.json", "fixed_point_loihi.json", "early_exit.json"} <= \
        set(together)

    alone = {}
    for name, flags in options.items():  # each option on its own (its own read of the checkpoint): the same files
        assert main([*base, *flags, "--out", str(tiny_checkpoint.parent / name)]) == 0
        alone.update(_outputs_of(tiny_checkpoint.parent / name))
    assert len(reads) == 4
    assert alone == together


@pytest.mark.parametrize("argv, words", [
    (["estimate"], "either --checkpoint"),
    (["estimate", "--nir", "x.nir"], "--activity"),
    (["estimate", "--checkpoint", "nowhere.pt"], "nowhere.pt"),
    (["estimate", "--nir", "x.nir", "--activity", "a.json", "--nonideal"], "--nonideal needs --checkpoint"),
    (["estimate", "--checkpoint", "c.pt", "--activity", "a.json"], "--activity goes with --nir"),
    (["estimate", "--checkpoint", "c.pt", "--sigma", "0.1", "--no-sweep"],
     "--sigma, --no-sweep apply only with --nonideal"),
    (["estimate", "--checkpoint", "c.pt", "--mc-seed", "0", "--sigma=0.05"],  # the defaults' values, still named
     "--mc-seed, --sigma apply only with --nonideal"),
    (["estimate", "--checkpoint", "c.pt", "--out", "afile"], "--out: afile is a file, not a folder"),
    (["estimate", "--nir", "x.nir", "--activity", "a.json", "--samples", "8"], "--samples goes with --checkpoint"),
    (["estimate", "--checkpoint", "c.pt", "--target", "loihi", "--target", "specs2/loihi.toml"],
     "targets 'loihi' and 'specs2/loihi.toml' are both named 'loihi'"),
    (["estimate", "--checkpoint", "c.pt", "--chips", "0"], "--chips must be at least 1, got 0"),
    (["estimate", "--checkpoint", "c.pt", "--nonideal", "--drift-time-s", "100"],
     "--drift-time-s has no effect without --drift-nu"),
    (["estimate", "--checkpoint", "c.pt", "--nonideal", "--no-sweep", "--sigmas", "0,0.1"],
     "--sigmas sets the sweeps, which --no-sweep turns off"),
])
def test_cli_bad_input_is_one_line_with_status_2(argv, words, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("mine")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_a_nir_graph_or_a_config_given_as_the_checkpoint_is_named_as_such(tiny_checkpoint, tmp_path, capsys):
    """`estimate --checkpoint model.nir` (meant: --nir) failed with torch's 'UnpicklingError: invalid load key, 'H'',
    a run's config.toml with 'invalid load key, 'n''."""
    nir_file = tmp_path / "model.nir"
    assert main(["-q", "export", "--checkpoint", str(tiny_checkpoint), "--maxpool", "sumpool", "--out",
                 str(nir_file)]) == 0
    config = tmp_path / "config.toml"
    config.write_text('name = "x"\n')
    for given, words in ((nir_file, "is an HDF5 file, such as a NIR graph (neurosim estimate --nir FILE --activity "
                                    "ACTIVITY.json estimates a NIR graph; a checkpoint is a torch file"),
                         (config, "is a TOML file, such as a run's config.toml (neurosim train --config FILE trains "
                                  "one; a checkpoint is a torch file")):
        capsys.readouterr()
        assert main(["estimate", "--checkpoint", str(given), "--target", "loihi"]) == 2
        err = capsys.readouterr().err
        assert f"{str(given)!r} {words}" in err and "UnpicklingError" not in err and "Traceback" not in err


def test_cli_says_where_samples_asks_for_more_than_the_test_split_has(tiny_checkpoint, tmp_path, capsys):
    """--samples 1000 on a 16-sample test split measured the 16 without a word beyond the footnote's count."""
    argv = ["-q", "estimate", "--checkpoint", str(tiny_checkpoint), "--target", "loihi", "--out", str(tmp_path / "e")]
    assert main(argv + ["--samples", "1000"]) == 0
    out = capsys.readouterr().out
    assert "note: --samples 1000: the test split has 16 samples; all 16 were measured\n" in out
    assert json.loads((tmp_path / "e" / "estimate.json").read_text())["activity"]["samples"] == 16
    assert main(argv + ["--samples", "16"]) == 0 and "note: --samples" not in capsys.readouterr().out
    assert main(argv) == 0 and "note: --samples" not in capsys.readouterr().out  # the default 64: not asked for


def test_cli_keeps_files_of_ones_own_in_the_output_folder_and_replaces_its_own(tiny_checkpoint, tmp_path, capsys):
    """`estimate --out .` in a folder of one's own wrote over its activity.json and the notes in estimate.txt, and
    a later estimate there removed its early_exit.json as an earlier estimate's."""
    mine = tmp_path / "mine"
    mine.mkdir()
    files = {"activity.json": '{"mine": 1}', "estimate.txt": "my notes", "early_exit.json": "{}", "notes.md": "kept"}
    for name, text in files.items():
        (mine / name).write_text(text)
    argv = ["-q", "estimate", "--checkpoint", str(tiny_checkpoint), "--target", "loihi", "--samples", "4"]
    assert main(argv + ["--out", str(mine)]) == 2
    err = capsys.readouterr().err
    assert (f"--out: {mine} holds activity.json, early_exit.json, estimate.txt, which neurosim estimate did not write "
            "(no estimate.json of its own is there) and would replace or take for its own; choose another output "
            "folder, or pass --overwrite to replace them" in err and "Traceback" not in err)
    assert {p.name: p.read_text() for p in mine.iterdir()} == files  # nothing written
    # an estimate.json of one's own (not an estimate's) does not make the folder neurosim's
    (mine / "estimate.json").write_text('{"energy": "mine"}')
    assert main(argv + ["--out", str(mine)]) == 2 and "holds activity.json, early_exit.json, estimate.json, " \
        "estimate.txt, which" in capsys.readouterr().err
    # the default folder and a rerun into it, and a rerun into a folder given with --out, need no --overwrite
    for out in ([], ["--out", str(tmp_path / "e")]):
        assert main(argv + out) == 0 and main(argv + out) == 0
    assert is_estimate_folder(tiny_checkpoint.parent / "estimate") and is_estimate_folder(tmp_path / "e")
    assert main(argv + ["--out", str(mine), "--overwrite"]) == 0
    assert json.loads((mine / "estimate.json").read_text())["activity"]["samples"] == 4
    assert (mine / "notes.md").read_text() == "kept"  # (not named as the estimate's files)
    # an export of one's own (neurosim export, at another --dt-s) is not the estimate's model.nir to replace
    exported = tmp_path / "exported"
    assert main(["-q", "export", "--checkpoint", str(tiny_checkpoint), "--dt-s", "0.005", "--maxpool", "sumpool",
                 "--out", f"{exported}/"]) == 0
    nir_bytes = (exported / "model.nir").read_bytes()
    capsys.readouterr()
    assert main(argv + ["--out", str(exported)]) == 2 and f"--out: {exported} holds model.nir, which" in \
        capsys.readouterr().err
    assert (exported / "model.nir").read_bytes() == nir_bytes


def test_cli_reruns_an_estimate_stopped_part_way_without_overwrite(tiny_checkpoint, tmp_path, monkeypatch):
    """An estimate stopped (Ctrl-C) after some of its files leaves no estimate.json, only the mark written first:
    the rerun replaces the files, which are the estimate's, and finishes the set."""
    import neurosim.viz as viz
    from neurosim.estimation import INCOMPLETE_MARK, OUTPUT_FILES

    real = viz.save_figure

    def stop(fig, path, *a, **kw):
        if path.name == "layers.png":
            raise KeyboardInterrupt
        return real(fig, path, *a, **kw)

    out = tmp_path / "e"
    argv = ["-q", "estimate", "--checkpoint", str(tiny_checkpoint), "--target", "loihi", "--samples", "4", "--out",
            str(out)]
    monkeypatch.setattr(viz, "save_figure", stop)
    assert main(argv) == 130
    assert sorted(p.name for p in out.iterdir()) == ["activity.json", "energy.png", INCOMPLETE_MARK, "model.nir"]
    monkeypatch.setattr(viz, "save_figure", real)
    assert main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)  # complete, the mark gone


def test_cli_chips_lets_a_model_map_onto_several_chips(tiny_checkpoint, tmp_path):
    from hardware_models.specs import SPEC_DIR

    spec = tmp_path / "one_core.toml"  # Loihi with one core per chip: the tiny model needs one chip per layer
    spec.write_text((SPEC_DIR / "loihi.toml").read_text().replace('name = "loihi"', 'name = "one_core"')
                    .replace("cores_per_chip = { value = 128,", "cores_per_chip = { value = 1,"))
    runs = {}
    for chips in (None, 64):
        out = tmp_path / f"chips{chips}"
        argv = ["-q", "estimate", "--checkpoint", str(tiny_checkpoint), "--target", str(spec), "--target",
                "rram_neurosim", "--samples", "4", "--out", str(out)] + ([] if chips is None else ["--chips", "64"])
        assert main(argv) == 0
        runs[chips] = json.loads((out / "estimate.json").read_text())["targets"]
    needed = runs[None]["one_core"]["mapping"]["chips_needed"]
    assert needed > 1 and not runs[None]["one_core"]["fits"]
    assert runs[64]["one_core"]["fits"] and runs[64]["one_core"]["mapping"]["chips_needed"] == needed
    table = (tmp_path / "chips64" / "estimate.txt").read_text()
    assert f"yes ({needed} chips)" in table
    assert f"no ({needed} chips)" in (tmp_path / "chipsNone" / "estimate.txt").read_text()
    assert any("['chips'] do not apply to crossbar targets" in n for n in runs[64]["rram_neurosim"]["notes"])


@pytest.mark.parametrize("flags, words", [
    (["--nonideal", "--chips", "2"], "--chips applies to digital targets (how a model is placed on their chips' "
     "cores), and none of ['rram_neurosim'] is one (the Monte-Carlo chips of --nonideal are --mc-chips)"),
    (["--chips", "2", "--placement-ties", "energy"], "--chips and --placement-ties apply to digital targets"),
    (["--placement-ties", "energy"], "--placement-ties applies to digital targets"),
])
def test_cli_digital_placement_flags_without_a_digital_target_are_refused_before_any_work(
        flags, words, capsys, tmp_path, monkeypatch):
    """Crossbar targets skip --chips with a note in estimate.json alone: asked for crossbar targets only (the
    Monte-Carlo chips of --nonideal are --mc-chips), it was ignored without a word and --nonideal ran 5 chips."""
    import neurosim.runs

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(neurosim.runs, "load_run", lambda *a, **kw: pytest.fail("read the checkpoint before the check"))
    assert main(["estimate", "--checkpoint", "c.pt", "--target", "rram_neurosim", *flags]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_cli_digital_placement_flags_pass_where_one_target_asked_for_is_digital(capsys, tmp_path, monkeypatch):
    import neurosim.runs

    class Checked(Exception):
        pass

    def stop(*a, **kw):  # the flags passed the checks: stop before the model is read
        raise Checked

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(neurosim.runs, "load_run", stop)
    with pytest.raises(Checked):
        main(["estimate", "--checkpoint", "c.pt", "--target", "rram_neurosim", "--target", "loihi", "--chips", "2",
              "--placement-ties", "energy"])


def test_cli_placement_ties_reaches_every_digital_estimate(tiny_checkpoint, tmp_path, monkeypatch):
    from small_nets import record_estimates

    calls = record_estimates(monkeypatch)
    argv = ["-q", "estimate", "--checkpoint", str(tiny_checkpoint), "--target", "loihi", "--samples", "4", "--out",
            str(tmp_path / "est"), "--placement-ties", "energy"]
    assert main(argv) == 0 and calls and {o.get("placement_ties") for _, _, o in calls} == {"energy"}
    calls.clear()
    assert main(argv[:-2] + ["--out", str(tmp_path / "default")]) == 0
    assert {o.get("placement_ties") for _, _, o in calls} == {None}  # the model's default


def test_the_default_output_folder_is_checked_before_estimating(tiny_checkpoint, capsys, monkeypatch):
    import os

    import neurosim.estimation as est

    monkeypatch.setattr(os, "access", lambda p, mode: False)  # as in a read-only run folder
    monkeypatch.setattr(est, "estimate_checkpoint", lambda *a, **kw: pytest.fail("estimated before the check"))
    assert main(["estimate", "--checkpoint", str(tiny_checkpoint)]) == 2
    err = capsys.readouterr().err
    assert "--out (default: beside the model): cannot write in" in err and "choose another --out" in err


def test_demo_report_gains_the_chip_estimates_of_the_trained_model(tmp_path, event_digits_cache):
    from neurosim.config import load_config
    from neurosim.runs import CONFIGS, estimate_run, train_run, write_report

    cfg = load_config(CONFIGS / "quickstart.toml", [f'out_dir="{tmp_path}"', "name=demo", "data.train_subset=32",
                                                    "data.test_subset=16", "data.time_steps=4", "train.epochs=1"])
    result = train_run(cfg, progress=False, figures=False)
    report, section = estimate_run(result, targets=["loihi", "truenorth", "rram_neurosim"], samples=8)
    text = write_report(result, section).read_text()
    assert "## Energy and latency" in text and "estimate/energy.png" in text
    for t in ("loihi", "truenorth", "rram_neurosim"):
        assert t in text and report.estimates[t].total_energy_j > 0
    assert (tmp_path / "demo" / "estimate" / "energy.png").is_file()


def test_cli_estimates_foreign_nir_files_with_a_grouped_conv1d_or_a_nested_recurrent_layer(tmp_path):
    import nir

    from hardware_models import ActivityProfile

    o = np.ones((4, 10))
    conv = nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([2, 10])),
        "c1": nir.Conv1d(input_shape=10, weight=np.ones((4, 1, 3)), stride=1, padding=1, dilation=1, groups=2,
                         bias=np.zeros(4)),
        "l1": nir.LIF(tau=o, r=o, v_leak=0 * o, v_threshold=o), "output": nir.Output(output_type=np.array([4, 10]))},
        edges=[("input", "c1"), ("c1", "l1"), ("l1", "output")], type_check=False)
    x = np.zeros((2, 10))
    x[0, 0] = x[1, 5] = 1  # channel 0 at the border: 2 channels x 2 positions; channel 1 inside: 2 x 3
    ActivityProfile(time_steps=1, dt_s=1e-3, samples=1, spikes_per_step={"input": [2.0], "l1": [0.0]},
                    spike_counts={"input": x}, input_events_per_step=[2.0]).to_json(tmp_path / "conv.json")
    o = np.ones(3)
    rleaky = nir.NIRGraph(nodes={  # snnTorch's RLeaky export: a subgraph
        "input": nir.Input(input_type=np.array([3])), "lif": nir.LIF(tau=o, r=o, v_leak=0 * o, v_threshold=o),
        "w_rec": nir.Linear(weight=np.ones((3, 3))), "output": nir.Output(output_type=np.array([3]))},
        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")])
    rec = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([4])), "fc": nir.Linear(weight=np.ones((3, 4))),
                              "rleaky": rleaky, "output": nir.Output(output_type=np.array([3]))},
                       edges=[("input", "fc"), ("fc", "rleaky"), ("rleaky", "output")])
    ActivityProfile(time_steps=2, dt_s=1e-3, samples=1, spikes_per_step={"rleaky.lif": [1.0, 2.0]},
                    input_events_per_step=[3.0, 1.0]).to_json(tmp_path / "rec.json")
    # synops by hand: 2·2 + 2·3 = 10; 4 input events x 3 + 3 recurrent spikes x 3 = 21
    for name, graph, synops in (("conv", conv, 10.0), ("rec", rec, 21.0)):
        nir.write(str(tmp_path / f"{name}.nir"), graph)
        assert main(["-q", "estimate", "--nir", str(tmp_path / f"{name}.nir"), "--activity",
                     str(tmp_path / f"{name}.json"), "--target", "loihi", "--out", str(tmp_path / name)]) == 0
        est = json.loads((tmp_path / name / "estimate.json").read_text())
        assert est["targets"]["loihi"]["synops"] == synops
    assert est["activity"]["spikes_per_inference"] == {"rleaky.lif": 3.0}  # a neuron, under its flattened name


def _one_neuron_file(path, output_shape, with_input=True):
    """Input(1) -> Linear(1 x 1) -> LIF(1) -> Output typed ``output_shape`` (the NIR paper's Rockpool file
    types its Output [1, 1, 1] behind a 1-neuron LIF, which nir's type check refuses), written to ``path``."""
    import nir

    o = np.ones(1)
    nodes = {"input": nir.Input(input_type=np.array([1])), "fc": nir.Linear(weight=np.full((1, 1), 0.5)),
             "lif": nir.LIF(tau=o * 0.01, r=o * 10, v_leak=0 * o, v_threshold=o),
             "output": nir.Output(output_type=np.array(output_shape))}
    edges = [("input", "fc"), ("fc", "lif"), ("lif", "output")]
    if not with_input:
        nodes.pop("input"), edges.pop(0)
    nir.write(str(path), nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))
    return path


def test_cli_estimates_a_nir_file_that_nirs_type_check_refuses_and_says_so(tmp_path, capsys):
    from hardware_models import ActivityProfile

    from neurosim.export import read_nir

    f = _one_neuron_file(tmp_path / "rock.nir", [1, 1, 1])
    with pytest.raises(ValueError, match=r"rock.nir: nir's type check refuses the graph .*type_check=False"):
        read_nir(f)
    ActivityProfile(time_steps=2, dt_s=1e-3, samples=1, spikes_per_step={"lif": [0.0, 1.0]},
                    input_events_per_step=[3.0, 1.0]).to_json(tmp_path / "a.json")
    assert main(["-q", "estimate", "--nir", str(f), "--activity", str(tmp_path / "a.json"), "--target", "loihi",
                 "--out", str(tmp_path / "out")]) == 0  # it was refused: status 2
    est = json.loads((tmp_path / "out" / "estimate.json").read_text())["targets"]["loihi"]
    assert est["synops"] == 4.0  # 4 input events x fan-out 1
    assert "rock.nir: nir's type check refuses the graph" in est["notes"][0]
    assert est["notes"][0].endswith("read without it, the hardware models' own shape checks accept the graph")
    # no Input node either: analyze's implicit Input, noted too
    report = estimate_files(_one_neuron_file(tmp_path / "bare.nir", [1, 1, 1], with_input=False), tmp_path / "a.json",
                            ["loihi"])
    assert report.estimates["loihi"].synops == 4.0
    assert "implicit Input node 'input_fc'" in report.estimates["loihi"].notes[1]
    assert "bare.nir: nir's type check refuses" in report.estimates["loihi"].notes[0]


def test_a_nir_file_neither_nir_nor_the_hardware_models_can_read_names_the_file_and_both_reasons(tmp_path, capsys):
    from hardware_models import ActivityProfile

    f = _one_neuron_file(tmp_path / "bad.nir", [2])  # 2 outputs behind 1 neuron
    ActivityProfile(time_steps=1, dt_s=1e-3, samples=1, spikes_per_step={"lif": [0.0]},
                    input_events_per_step=[1.0]).to_json(tmp_path / "a.json")
    with pytest.raises(ValueError, match=r"bad.nir: shape mismatch on edge 'lif' -> 'output'.*\(and .*bad.nir: nir's "
                                         r"type check refuses the graph"):
        estimate_files(f, tmp_path / "a.json", ["loihi"])
    assert main(["-q", "estimate", "--nir", str(f), "--activity", str(tmp_path / "a.json"), "--target", "loihi",
                 "--out", str(tmp_path / "out")]) == 2
    assert "bad.nir: shape mismatch" in capsys.readouterr().err


def test_a_model_taking_flattened_frames_is_estimated_on_its_frames():
    # an mlp whose input_shape is the flattened frame (model.input_shape = [2 * 6 * 6]) runs on [T, B, 2, 6, 6]
    # frames: their counts are the Input node's (72,) events, not a (2, 6, 6) shape it does not have
    from neurosim.nn import LIF, Flatten, Linear, Sequential

    torch.manual_seed(0)
    model = Sequential(Flatten(), Linear(72, 5), LIF(beta=0.9))
    x = _spikes((4, 3, 2, 6, 6), p=0.2)
    report = estimate_model(model, (72,), x, targets=["loihi"])
    assert report.activity.spike_counts["input"].shape == (72,)
    assert report.estimates["loihi"].synops == pytest.approx(float(x.sum()) / 3 * 5)  # events x fan-out 5


def test_the_same_spec_named_twice_is_one_target_and_a_nir_file_estimates_beside_itself(tmp_path, capsys):
    """--target loihi and the shipped file's path are one target; a NIR file's default output is MODEL-estimate beside
    it (two NIR files of one folder, or a run's exported model.nir, no longer share one estimate folder); --step-ms
    sets the activity's step."""
    from hardware_models import ActivityProfile
    from hardware_models.specs import SPEC_DIR

    from neurosim.estimation import target_keys

    assert target_keys(["loihi", str(SPEC_DIR / "loihi.toml"), "loihi"]) == {"loihi": "loihi"}
    ActivityProfile(time_steps=2, dt_s=1e-3, samples=1, spikes_per_step={"lif": [0.0, 1.0]},
                    input_events_per_step=[3.0, 1.0]).to_json(tmp_path / "a.json")
    for name in ("one", "two"):
        f = _one_neuron_file(tmp_path / f"{name}.nir", [1])
        assert main(["-q", "estimate", "--nir", str(f), "--activity", str(tmp_path / "a.json"), "--target",
                     "speck"] + (["--step-ms", "5"] if name == "two" else [])) == 0
    one, two = (json.loads((tmp_path / f"{n}-estimate" / "estimate.json").read_text()) for n in ("one", "two"))
    assert one["activity"]["dt_s"] == 1e-3 and two["activity"]["dt_s"] == approx_si(5e-3)
    assert (two["targets"]["speck"]["latency_per_inference_s"] - one["targets"]["speck"]["latency_per_inference_s"]
            == approx_si(2 * (5e-3 - 1e-3)))  # Speck runs in real time: 2 steps, 4 ms longer each
    assert not (tmp_path / "estimate").exists()


@pytest.mark.parametrize("target", ["loihi", "truenorth", "speck"])
def test_the_exported_graph_alone_maps_as_the_estimate_does(target):
    # neurosim's export tags each MaxPool2d it writes as SumPool2d; hardware_models reads that tag, so mapping the
    # graph without an activity (hardware_models.digital.map_network) places what the estimate costs: the max pool's
    # pooling neurons on the core chips, on the same cores
    from hardware_models import analyze, load_spec
    from hardware_models.digital import map_network
    from small_nets import conv_net

    from neurosim.export import to_nir

    net, x, shape = conv_net(4, 3)
    report = estimate_model(net, shape, x, [target])
    alone = map_network(analyze(to_nir(net, shape, maxpool="sumpool")), load_spec(target))
    costed = report.estimates[target].mapping
    assert alone.cores_used == costed.cores_used and alone.layers == costed.layers
    assert len(alone.layers) == (2 if target == "speck" else 3)  # two LIF layers, and the pool's neurons


def test_energies_and_times_print_in_a_unit_that_fits_them():
    """Tutorial 07 printed 169.5 µJ as '1.695e+05 nJ', the early-exit table 9.45 s as '9.45e+03 ms', and
    joules(9.996e-4) gave '1e+03 µJ'."""
    from neurosim.estimation import joules, seconds
    from neurosim.estimation.early_exit import EarlyExitReport, ExitPolicy

    assert [joules(j) for j in (1.46e-4, 0.13, 9.996e-4, 2.5e-12, 0)] == ["146 µJ", "130 mJ", "1 mJ", "2.5 pJ", "0 J"]
    assert joules(1.6952e-4, 4) == "169.5 µJ" and joules(1.403e-7, 4) == "140.3 nJ"
    assert [seconds(s) for s in (9.45, 0.0123, 1.2e-5, None)] == ["9.45 s", "12.3 ms", "12 µs", "-"]
    with pytest.raises(ValueError, match="digits must be a whole number >= 1"):
        joules(1.0, 0)
    # fewer digits than the value has before its point gave exponents ('2e+01 mJ', '-1.5e+02 µJ'); below a pJ it
    # read '0.5 pJ' where the estimate table (hardware_models.results._eng, which it duplicated) reads '500 fJ'
    assert [joules(j, d) for j, d in ((0.02, 1), (-1.46e-4, 2), (1234.0, 3))] == ["20 mJ", "-150 µJ", "1230 J"]
    assert joules(5e-13) == "500 fJ" and seconds(5e-13) == "500 fs" and joules(float("nan")) == "-"
    # a real-time chip at 31.5 ms per step for 300 steps: 9.45 s per inference
    policies = [ExitPolicy("300 steps (all)", "steps", 300, 90.0, 300.0, [0] * 299 + [4], {"speck": 1.6952e-4},
                           {"speck": 9.45}, {"speck": 9.45}),
                ExitPolicy("confidence > 0.9", "threshold", 0.9, 90.0, 150.0, [0] * 149 + [4] + [0] * 150,
                           {"speck": 0.85e-4}, {"speck": 4.725}, {"speck": 4.725})]
    table = EarlyExitReport(300, 4, "summed outputs", "confidence", ["speck"], policies).table()
    assert "e+" not in table and "170 µJ (1.00x)" in table
    assert "  speck: 300 steps (all): 9.45 s; confidence > 0.9: 4.72 s (4.72 s)" in table

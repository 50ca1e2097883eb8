"""ActivityProfile: validation, construction from spike trains, JSON round trip (atomic write)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from hardware_models.activity import ActivityError, ActivityProfile


def profile(**over):
    kw = dict(time_steps=3, dt_s=1e-3, samples=2,
              spikes_per_step={"lif": np.array([1.0, 0.5, 2.0])},
              spike_counts={"lif": np.array([[1.0, 0.5], [2.0, 0.0]])},
              input_events_per_step=np.array([4.0, 0.0, 1.0]))
    kw.update(over)
    return ActivityProfile(**kw)


def test_valid_profile_freezes_private_copies():
    series = np.array([1.0, 0.5, 2.0])
    p = profile(spikes_per_step={"lif": series})
    series[0] = 99.0  # the caller's array stays writable and the profile is unaffected
    assert p.spikes_per_step["lif"][0] == 1.0
    with pytest.raises(ValueError):
        p.spikes_per_step["lif"][0] = 5.0
    assert p.total_spikes("lif") == 3.5 and p.duration_s == pytest.approx(3e-3)


@pytest.mark.parametrize("over, match", [
    (dict(time_steps=0), "time_steps must be a positive integer"),
    (dict(time_steps=2.5), "time_steps must be a positive integer"),
    (dict(dt_s=0.0), "dt_s must be a positive number"),
    (dict(dt_s=float("nan")), "dt_s must be a positive number"),
    (dict(samples=0), "samples must be a positive integer"),
    (dict(spikes_per_step={"lif": np.ones(4)}, spike_counts={}), r"expected shape \(3,\)"),
    (dict(spikes_per_step={"lif": np.array([1.0, -1.0, 0.0])}, spike_counts={}), "must be >= 0"),
    (dict(spikes_per_step={"lif": np.array([1.0, np.nan, 0.0])}, spike_counts={}), "NaN or infinite"),
    (dict(spike_counts={"lif": np.ones(3)}), "spike_counts sums to 3 spikes but spikes_per_step sums to 3.5"),
    (dict(spike_counts={"other": np.ones(2)}), "no matching spikes_per_step entry"),
    (dict(input_events_per_step=np.ones(2)), r"input_events_per_step: expected shape \(3,\)"),
    (dict(spikes_per_step=[1, 2, 3]), "spikes_per_step must be a dict"),
])
def test_invalid_profiles_are_rejected_with_the_reason(over, match):
    with pytest.raises(ActivityError, match=match):
        profile(**over)


def test_from_spike_trains_takes_means_over_samples():
    # T=2, B=2, node of shape (3,): sample 0 spikes 2 then 1, sample 1 spikes 0 then 1
    s = np.array([[[1, 0, 1], [0, 0, 0]],
                  [[0, 1, 0], [0, 0, 1]]], dtype=float)
    inp = np.ones((2, 2, 4))
    p = ActivityProfile.from_spike_trains({"lif": s}, dt_s=0.5e-3, input_events=inp, input_name="in")
    assert p.time_steps == 2 and p.samples == 2
    np.testing.assert_allclose(p.spikes_per_step["lif"], [1.0, 1.0])  # (2+0)/2, (1+1)/2
    np.testing.assert_allclose(p.spike_counts["lif"], [0.5, 0.5, 1.0])
    np.testing.assert_allclose(p.input_events_per_step, [4.0, 4.0])
    np.testing.assert_allclose(p.spike_counts["in"], np.full(4, 2.0))


def test_from_spike_trains_rejects_mismatched_time_or_batch():
    with pytest.raises(ActivityError, match=r"\(T, B\)"):
        ActivityProfile.from_spike_trains({"a": np.zeros((2, 1, 3)), "b": np.zeros((3, 1, 3))}, dt_s=1e-3)
    with pytest.raises(ActivityError, match="time first"):
        ActivityProfile.from_spike_trains({"a": np.zeros(3)}, dt_s=1e-3)


def test_scaled_multiplies_every_count():
    p = profile().scaled(0.5)
    np.testing.assert_allclose(p.spikes_per_step["lif"], [0.5, 0.25, 1.0])
    np.testing.assert_allclose(p.spike_counts["lif"], [[0.5, 0.25], [1.0, 0.0]])
    np.testing.assert_allclose(p.input_events_per_step, [2.0, 0.0, 0.5])
    with pytest.raises(ActivityError):
        profile().scaled(-1.0)


def test_json_round_trip_is_exact_and_atomic(tmp_path):
    p = profile()
    path = tmp_path / "sub" / "activity.json"
    path.parent.mkdir()
    path.write_text("old content")
    p.to_json(path)
    assert os.listdir(path.parent) == ["activity.json"]  # no temp file left behind
    q = ActivityProfile.from_json(path)
    assert (q.time_steps, q.dt_s, q.samples) == (3, 1e-3, 2)
    for name in p.spikes_per_step:
        np.testing.assert_array_equal(q.spikes_per_step[name], p.spikes_per_step[name])
        np.testing.assert_array_equal(q.spike_counts[name], p.spike_counts[name])
    np.testing.assert_array_equal(q.input_events_per_step, p.input_events_per_step)


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "activity.json"
    profile().to_json(path)
    before = path.read_text()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(json, "dump", boom)
    with pytest.raises(OSError, match="disk full"):
        profile(samples=7).to_json(path)
    assert path.read_text() == before and os.listdir(tmp_path) == ["activity.json"]


@pytest.mark.parametrize("edit, match", [
    (lambda d: d.update(format="other"), r"not an activity profile: format is 'other', expected 'neurosim.activity'$"),
    # an estimate.json given for its activity: it said only "format is None"
    (lambda d: (d.clear(), d.update(activity={"time_steps": 2}, targets={})),
     r"format is None, expected 'neurosim.activity' \(it holds estimates: an estimate.json, whose activity is the "
     r"activity.json written beside it\)$"),
    (lambda d: d.update(version=99), "version 99 is not supported"),
    (lambda d: d.pop("time_steps"), "missing"),
    (lambda d: d.update(extra=1), "unknown keys"),
    # a list or a string where an object node name -> series is expected (was a TypeError/ValueError from dict())
    (lambda d: d.update(spike_counts=[1, 2]), r"spike_counts must be a JSON object node name -> .*, got a list \[1, 2"),
    (lambda d: d.update(updates_per_step=[1, 2]), r"updates_per_step must be a JSON object .*, got a list"),
    (lambda d: d.update(spikes_per_step="abc"), r'spikes_per_step must be a JSON object .*, got a string "abc"'),
    (lambda d: d.update(spikes_per_step=None), "spikes_per_step must be a JSON object .*, got null"),
    # null is not a number (numpy would read it as NaN)
    (lambda d: d["spikes_per_step"].update(lif=None), r"spikes_per_step\['lif'\]: is null; expected an array"),
    (lambda d: d["spikes_per_step"].update(lif=[1.0, None, 2.0]), r"spikes_per_step\['lif'\]: contains null, which is "
                                                                  "not a number"),
    (lambda d: d["spike_counts"].update(lif=[[1.0, None], [2.0, 0.0]]), r"spike_counts\['lif'\]: contains null"),
])
def test_from_json_rejects_bad_files_naming_the_path(tmp_path, edit, match):
    data = profile().to_dict()
    edit(data)
    path = tmp_path / "a.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ActivityError, match=match) as info:
        ActivityProfile.from_json(path)
    assert str(path) in str(info.value)


def test_optional_mappings_given_as_null_read_as_absent():
    data = profile(spike_counts={}).to_dict()
    data.update(spike_counts=None, updates_per_step=None)
    p = ActivityProfile.from_dict(data)
    assert p.spike_counts == {} and p.updates_per_step == {}


def test_from_json_binary_file_or_folder_names_the_path(tmp_path):
    binary = tmp_path / "model.nir"  # an HDF5 file passed as the activity
    binary.write_bytes(b"\x89HDF\r\n\x1a\n\x00\x00")
    with pytest.raises(ActivityError, match="is not UTF-8 text") as info:
        ActivityProfile.from_json(binary)
    assert str(binary) in str(info.value)
    with pytest.raises(ActivityError, match="cannot be read") as info:
        ActivityProfile.from_json(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_from_json_missing_or_invalid_file(tmp_path):
    with pytest.raises(ActivityError, match="does not exist"):
        ActivityProfile.from_json(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ActivityError, match="not valid JSON"):
        ActivityProfile.from_json(bad)


# ------------------------------------------------------------------ neuron updates (optional per node)
def test_updates_per_step_round_trip_and_an_old_file_without_them(tmp_path):
    p = profile(updates_per_step={"lif": np.array([3.0, 0.5, 2.0])})
    assert p.updates_per_step["lif"].tolist() == [3.0, 0.5, 2.0]
    with pytest.raises(ValueError):
        p.updates_per_step["lif"][0] = 5.0  # frozen like the other series
    back = ActivityProfile.from_json(p.to_json(tmp_path / "activity.json"))
    assert back.updates_per_step["lif"].tolist() == [3.0, 0.5, 2.0]
    assert p.scaled(2.0).updates_per_step["lif"].tolist() == [6.0, 1.0, 4.0]
    old = profile().to_dict()  # a file written before updates were recorded: no key, read as none
    assert "updates_per_step" not in old
    assert ActivityProfile.from_dict(old).updates_per_step == {}


@pytest.mark.parametrize("updates, match", [
    ({"lif": np.ones(4)}, r"updates_per_step\['lif'\]: expected shape \(3,\)"),
    ({"lif": np.array([1.0, -1.0, 2.0])}, "must be >= 0"),
    ({"lif": np.array([1.0, 0.5, 1.5])}, "updates_per_step is 1.5 at step 2 but spikes_per_step is 2; a neuron that "
                                         "fires is updated"),
])
def test_updates_per_step_is_validated(updates, match):
    with pytest.raises(ActivityError, match=match):
        profile(updates_per_step=updates)


def test_updates_per_step_of_a_node_that_does_not_spike_is_kept():
    """An LI readout never fires but is updated (input or potential): its series has no spikes to be compared with;
    whether the graph has such a node is the hardware model's check."""
    p = profile(updates_per_step={"readout": [0.0, 2.0, 1.0]})
    assert "readout" not in p.spikes_per_step
    assert ActivityProfile.from_dict(p.to_dict()).updates_per_step["readout"].tolist() == [0.0, 2.0, 1.0]

"""Augmentation of cached frames (neurosim.data.augment, FrameLoader(augment=...), data.augment in configs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurosim.config import AugmentConfig, ConfigError, DataConfig, config_from_dict, config_to_dict
from neurosim.config import RunConfig, dumps_toml, load_config
from neurosim.data import FrameLoader
from neurosim.data import augment as A
from neurosim.data.dvs import EVENT_DTYPE
from neurosim.data.transforms import ToFrame

W, H, T = 12, 10, 4


def _events(seed: int, n: int = 400) -> np.ndarray:
    """Random events on a W×H sensor whose first and last events sit mid-sensor (they survive any shift up to 3, so
    the frames' time bins, set by the first and last timestamps, are the same before and after)."""
    rng = np.random.default_rng(seed)
    ev = np.zeros(n, EVENT_DTYPE)
    ev["t"] = np.sort(rng.integers(0, 10_000, n))
    ev["t"][0], ev["t"][-1] = 0, 10_000
    ev["x"], ev["y"], ev["p"] = rng.integers(0, W, n), rng.integers(0, H, n), rng.integers(0, 2, n)
    ev["x"][[0, -1]], ev["y"][[0, -1]] = W // 2, H // 2
    return ev


def _frames(events: np.ndarray) -> np.ndarray:
    return ToFrame(sensor_size=(W, H, 2), n_time_bins=T)(events)  # [T, P, H, W]


def _draws(n: int, shift=None, flip=None, cutout=None, seed=0) -> A.Draws:
    return A.Draws(shift=np.asarray(shift if shift is not None else [[0, 0]] * n),
                   flip=np.asarray(flip if flip is not None else [False] * n),
                   cutout=np.asarray(cutout if cutout is not None else [[0, 0]] * n),
                   drop_seed=np.arange(seed, seed + n, dtype=np.uint64))


@pytest.mark.parametrize("dy, dx", [(0, 3), (-2, 0), (3, -1), (-3, -3)])
def test_a_shift_of_the_frames_equals_the_frames_of_the_shifted_events(dy, dx):
    ev = _events(1)
    moved = ev.copy()
    moved["x"] = ev["x"] + dx
    moved["y"] = ev["y"] + dy
    moved = moved[(moved["x"] >= 0) & (moved["x"] < W) & (moved["y"] >= 0) & (moved["y"] < H)]
    x = torch.as_tensor(_frames(ev))[None]
    got = A.apply(AugmentConfig(shift=3), x, _draws(1, shift=[[dy, dx]]))
    np.testing.assert_array_equal(got[0].numpy(), _frames(moved))


def test_a_flip_of_the_frames_equals_the_frames_of_the_mirrored_events_and_only_flipped_samples_change():
    evs = [_events(2), _events(3)]
    mirrored = evs[0].copy()
    mirrored["x"] = W - 1 - evs[0]["x"]
    x = torch.as_tensor(np.stack([_frames(e) for e in evs]))
    got = A.apply(AugmentConfig(flip=True), x.clone(), _draws(2, flip=[True, False]))
    np.testing.assert_array_equal(got[0].numpy(), _frames(mirrored))
    np.testing.assert_array_equal(got[1].numpy(), _frames(evs[1]))


def test_cutout_zeroes_one_square_clipped_at_the_edges_at_every_step_and_polarity():
    x = torch.ones(2, T, 2, H, W, dtype=torch.uint8)
    got = A.apply(AugmentConfig(cutout=4), x, _draws(2, cutout=[[5, 6], [0, 0]]))
    hole = np.ones((H, W), bool)
    hole[3:7, 4:8] = False  # centre (5, 6), side 4: rows 5-2 … 5+1
    assert (got[0].numpy() == hole).all()
    corner = np.ones((H, W), bool)
    corner[0:2, 0:2] = False  # centre (0, 0): the square's other three quarters are off the sensor
    assert (got[1].numpy() == corner).all()


def test_drop_keeps_each_event_with_probability_one_minus_drop():
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 6, size=(64, T, 2, H, W)).astype(np.uint8)
    kept = A.apply(AugmentConfig(drop=0.3), torch.tensor(counts), _draws(64)).numpy().astype(np.int64)
    assert (kept <= counts).all() and (kept[counts == 0] == 0).all() and kept.min() >= 0
    for c in range(1, 6):  # Binomial(c, 0.7): mean 0.7 c, variance 0.21 c; ~12,800 pixels per count
        k = kept[counts == c]
        assert abs(k.mean() - 0.7 * c) < 5 * np.sqrt(0.21 * c / k.size), (c, k.mean())
        assert abs(k.var() - 0.21 * c) < 0.1 * 0.21 * c + 0.02, (c, k.var())
    total = counts.sum()
    assert abs(kept.sum() / total - 0.7) < 0.01


def test_a_samples_drop_depends_on_its_seed_alone():
    counts = torch.as_tensor(np.random.default_rng(1).integers(0, 4, size=(3, T, 2, H, W)).astype(np.uint8))
    spec = AugmentConfig(drop=0.5)
    together = A.apply(spec, counts.clone(), _draws(3, seed=10))
    alone = A.apply(spec, counts[1:2].clone(), _draws(1, seed=11))
    assert torch.equal(together[1], alone[0])
    other = A.apply(spec, counts[1:2].clone(), _draws(1, seed=12))
    assert not torch.equal(other[0], alone[0])


def test_draws_cover_the_range_and_depend_on_seed_and_epoch_only():
    spec = AugmentConfig(shift=2, flip=True, cutout=3)
    d = A.draw(spec, np.arange(5000), seed=3, epoch=1, height=H, width=W)
    assert set(np.unique(d.shift).tolist()) == {-2, -1, 0, 1, 2}
    assert 0.45 < d.flip.mean() < 0.55
    assert d.cutout[:, 0].min() == 0 and d.cutout[:, 0].max() == H - 1 and d.cutout[:, 1].max() == W - 1
    again = A.draw(spec, np.arange(5000), seed=3, epoch=1, height=H, width=W)
    assert all(np.array_equal(getattr(d, f), getattr(again, f)) for f in ("shift", "flip", "cutout", "drop_seed"))
    assert not np.array_equal(A.draw(spec, np.arange(5000), 3, 2, H, W).shift, d.shift)
    assert not np.array_equal(A.draw(spec, np.arange(5000), 4, 1, H, W).shift, d.shift)
    some = [4999, 7, 7, 0]  # a position's draws do not depend on which others are drawn
    alone = A.draw(spec, some, seed=3, epoch=1, height=H, width=W)
    assert all(np.array_equal(getattr(alone, f), getattr(d, f)[some]) for f in ("shift", "flip", "cutout", "drop_seed"))
    assert len(set(d.drop_seed.tolist())) == 5000
    assert not A.draw(AugmentConfig(shift=1), np.arange(100), 0, 0, H, W).flip.any()
    for seed in (-1, 2**200, np.int64(3)):  # any int seed, as the shuffle takes
        assert A.draw(spec, [0], seed=seed, epoch=2**40, height=H, width=W).shift.shape == (1, 2)


# ----------------------------------------------------------------------------------------------------- the loader

SPEC = AugmentConfig(shift=2, flip=True, drop=0.25, cutout=3)


def _data(n: int = 37):
    rng = np.random.default_rng(5)
    return rng.integers(0, 5, size=(n, T, 2, H, W)).astype(np.uint8), np.arange(n) % 10


def test_the_loader_augments_each_epoch_anew_reproducibly_and_leaves_the_frames_alone():
    frames, labels = _data()
    before = frames.copy()
    loader = FrameLoader(frames, labels, 8, shuffle=True, seed=1, augment=SPEC)
    plain = FrameLoader(frames, labels, 8, shuffle=True, seed=1)
    first = [x for x, _ in loader]
    assert all(x.dtype == torch.float32 and x.shape[0] == T for x in first)
    assert not all(torch.equal(a, b) for a, b in zip(first, [x for x, _ in plain]))
    assert [y.tolist() for _, y in loader] == [y.tolist() for _, y in plain]  # the order is the shuffle's
    assert all(torch.equal(a, b) for a, b in zip(first, [x for x, _ in loader]))  # same epoch: same draws
    loader.set_epoch(1)
    assert not any(torch.equal(a, b) for a, b in zip(first, [x for x, _ in loader]))
    np.testing.assert_array_equal(frames, before)


def test_a_resumed_epoch_augments_as_the_uninterrupted_one():
    frames, labels = _data()
    loader = FrameLoader(frames, labels, 8, shuffle=True, seed=2, augment=SPEC)
    loader.set_epoch(4)
    whole = list(loader)
    for start in (1, 3, len(loader)):
        rest = list(loader.iter_from(start))
        assert len(rest) == len(whole) - start
        assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(whole[start:], rest))


def test_shards_augment_each_sample_as_one_process_with_whole_batches_does():
    frames, labels = _data(40)
    one = FrameLoader(frames, labels, 8, shuffle=True, seed=3, augment=SPEC)
    shards = [one.shard(r, 2) for r in range(2)]
    for s in shards:
        s.batch_size = 4
        s.set_epoch(2)
    one.set_epoch(2)
    for whole, *parts in zip(one, *shards):
        x = torch.stack([p[0] for p in parts], dim=2).flatten(1, 2)  # interleave: rank r holds positions r, r + 2, …
        assert torch.equal(x, whole[0])


def test_frames_an_augmentation_cannot_take_are_refused_naming_the_setting():
    audio = np.zeros((4, T, 700), np.uint8)
    with pytest.raises(A.AugmentError, match=r"augment\.shift .* \[4, 4, 700\]"):
        FrameLoader(audio, np.zeros(4), 2, augment=AugmentConfig(shift=1))
    assert FrameLoader(audio, np.zeros(4), 2, augment=AugmentConfig(drop=0.1)).augment.drop == 0.1
    frames, labels = _data(4)
    with pytest.raises(A.AugmentError, match=r"augment\.cutout = 12 covers the whole 10×12 sensor"):
        FrameLoader(frames, labels, 2, augment=AugmentConfig(cutout=12))
    with pytest.raises(A.AugmentError, match=r"augment\.shift = 10 moves every event off the 10×12 sensor"):
        FrameLoader(frames, labels, 2, augment=AugmentConfig(shift=10))
    assert FrameLoader(frames, labels, 2, augment=AugmentConfig(shift=9, cutout=11)).augment.cutout == 11
    with pytest.raises(A.AugmentError, match=r"augment\.drop .* torch\.float32"):
        FrameLoader(frames.astype(np.float32), labels, 2, augment=AugmentConfig(drop=0.1))
    with pytest.raises(TypeError, match="AugmentConfig"):
        FrameLoader(frames, labels, 2, augment={"shift": 1})
    assert FrameLoader(frames, labels, 2, augment=AugmentConfig()).augment is None  # all off: nothing to do


# ----------------------------------------------------------------------------------------------------- the config


def test_the_config_takes_data_augment_from_files_and_set_and_checks_it(tmp_path):
    path = tmp_path / "aug.toml"
    path.write_text("[data.augment]\nshift = 2\nflip = true\n")
    cfg = load_config(str(path))
    assert cfg.data.augment == AugmentConfig(shift=2, flip=True)
    cfg = load_config(str(path), ["data.augment.drop=0.1", "data.augment.cutout=4"])
    assert cfg.data.augment == AugmentConfig(shift=2, flip=True, drop=0.1, cutout=4)
    assert load_config(str(_written(tmp_path, cfg))) == cfg
    for setting, message in (("data.augment.drop=1", r"data\.augment\.drop: must be a probability in \[0, 1\)"),
                             ("data.augment.shift=-1", r"data\.augment\.shift: must be a whole number of pixels >= 0"),
                             ("data.augment.spin=1", r"data\.augment\.spin: unknown key")):
        with pytest.raises(ConfigError, match=message):
            load_config(str(path), [setting])
    with pytest.raises(ValueError, match="^drop: must be a probability"):  # built from Python: says which field
        AugmentConfig(drop=2.0)


def _written(tmp_path, cfg):
    out = tmp_path / "written.toml"
    out.write_text(dumps_toml(cfg))
    return out


def test_a_config_without_augmentation_is_written_as_before_it_existed():
    assert "augment" not in config_to_dict(RunConfig())["data"]
    assert "augment" not in dumps_toml(RunConfig())
    on = RunConfig(data=DataConfig(augment=AugmentConfig(flip=True)))
    assert config_to_dict(on)["data"]["augment"] == {"shift": 0, "flip": True, "drop": 0.0, "cutout": 0}
    assert config_from_dict(config_to_dict(on)) == on


def test_make_loaders_augments_the_training_split_only(event_digits_cache):
    from neurosim.data import make_loaders
    cfg = DataConfig(time_steps=4, batch_size=16, train_subset=32, test_subset=16,
                     augment=AugmentConfig(shift=1, drop=0.2))
    bundle = make_loaders(cfg, seed=0, progress=False)
    assert bundle.train.augment == cfg.augment and bundle.test.augment is None
    plain = FrameLoader(bundle.train_frames, bundle.train.labels, 16, shuffle=True, seed=0)
    for (x, y), (x0, y0) in zip(bundle.train, plain):
        assert torch.equal(y, y0) and x.sum() < x0.sum()  # a fifth of the events dropped
    x, _ = next(iter(bundle.test))
    assert torch.equal(x, torch.as_tensor(bundle.test_frames[:16]).float().transpose(0, 1))


def test_make_loaders_names_the_dataset_whose_frames_an_augmentation_cannot_take(event_digits_cache):
    from neurosim.data import make_loaders
    cfg = DataConfig(time_steps=4, batch_size=16, train_subset=32, test_subset=16, augment=AugmentConfig(shift=34))
    with pytest.raises(ConfigError, match=r"^data\.augment\.shift = 34 moves every event off the 34×34 sensor.*"
                                          r"\(dataset 'event_digits'\)"):
        make_loaders(cfg, seed=0, progress=False)


def test_train_with_augmentation_records_it_and_evaluating_the_training_split_does_not_augment(
        event_digits_cache, tmp_path, monkeypatch):
    from neurosim.cli import main
    from neurosim.runs import evaluate_checkpoint
    from neurosim.training import Trainer

    args = ["-q", "train", "--config", "quickstart", "--set", "name=aug", f"out_dir={tmp_path}", "data.train_subset=32",
            "data.test_subset=16", "data.time_steps=4", "train.epochs=1", "data.augment.shift=2",
            "data.augment.drop=0.3"]
    assert main(args) == 0
    run = tmp_path / "aug"
    assert load_config(str(run / "config.toml")).data.augment == AugmentConfig(shift=2, drop=0.3)
    seen = []
    evaluate = Trainer.evaluate
    monkeypatch.setattr(Trainer, "evaluate", lambda self, loader, *a, **k: seen.append(loader) or
                        evaluate(self, loader, *a, **k))
    metrics = evaluate_checkpoint(run / "checkpoint.pt", split="train", progress=False)
    assert metrics["samples"] == 32 and seen[0].augment is None and not seen[0].shuffle


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32])
def test_every_count_dtype_of_the_frame_cache_is_augmented_alike(dtype):
    """The cache stores a split as uint16 once a count passes 255 (torch flips no uint16)."""
    counts = np.random.default_rng(2).integers(0, 4, size=(3, T, 2, H, W))
    spec = AugmentConfig(shift=2, flip=True, drop=0.4, cutout=3)
    draws = _draws(3, shift=[[1, -2], [0, 0], [-1, 1]], flip=[True, False, True], cutout=[[2, 3], [9, 11], [0, 5]])
    want = A.apply(spec, torch.tensor(counts.astype(np.uint8)), draws).numpy()
    got = A.apply(spec, torch.tensor(counts.astype(dtype)), draws)
    assert got.dtype == torch.from_numpy(np.zeros(0, dtype)).dtype
    np.testing.assert_array_equal(got.numpy().astype(np.int64), want.astype(np.int64))


def test_frames_with_permuted_strides_are_dropped_from_too():
    frames, labels = _data(8)
    loader = FrameLoader(frames, labels, 8, augment=AugmentConfig(drop=0.9))
    loader.frames = loader.frames.transpose(3, 4)  # replaced by a view: what a batch gathers is not contiguous
    x, _ = next(iter(loader))
    assert x.sum() < 0.2 * loader.frames.float().sum()
    with pytest.raises(ValueError, match="2 draws for a batch of 3 samples"):
        A.apply(AugmentConfig(drop=0.5), torch.zeros(3, T, 2, H, W, dtype=torch.uint8), _draws(2))


def test_augment_settings_of_the_wrong_type_from_python_are_refused():
    for kwargs, message in (({"shift": 2.5}, "shift: must be a whole number"), ({"flip": "no"}, "flip: must be true"),
                            ({"drop": True}, "drop: must be a probability"), ({"cutout": -1}, "cutout: must be")):
        with pytest.raises(ValueError, match=message):
            AugmentConfig(**kwargs)
    with pytest.raises(TypeError, match="seed must be an integer"):
        FrameLoader(*_data(4), 2, seed=1.5)
    assert FrameLoader(*_data(4), 2, shuffle=True, seed=np.int64(3), augment=AugmentConfig(shift=1)).seed == 3


def test_train_refuses_a_shift_as_large_as_the_sensor_before_converting_anything(tmp_path, monkeypatch, capsys):
    from neurosim.cli import main
    import neurosim.data.pipeline as pipeline
    import neurosim.runs  # noqa: F401 - before the patch: first imported under it, runs kept the patch for good

    monkeypatch.setattr(pipeline, "_load_frames", lambda *a, **k: pytest.fail("frames were loaded"))
    args = ["-q", "train", "--config", "quickstart", "--set", f"out_dir={tmp_path}", "data.augment.shift=34"]
    assert main(args) == 2
    assert "data.augment.shift = 34 moves every event off the 34×34 sensor" in capsys.readouterr().err
    assert not (tmp_path / "quickstart").exists()


def _audio_refusal(setting: str, dataset: str) -> str:
    return (f"data.augment.{setting} moves pixels, but dataset {dataset!r} is audio: its frames [N, T, 1, 1, 700] "
            "hold 700 channels of a cochlea model in one row, not an image; turn it off for this dataset")


@pytest.mark.parametrize("dataset", ["shd", "ssc"])
@pytest.mark.parametrize("setting", ["shift=1", "flip=true", "cutout=3"])
def test_train_refuses_moving_the_channels_of_an_audio_dataset_before_converting_anything(tmp_path, monkeypatch,
                                                                                         capsys, dataset, setting):
    # its frames are [N, T, 1, 1, 700] like a camera's (make_loaders would flip them): the refusal names them as
    # they are (it said "these frames are [1, T, 1, 700]")
    from neurosim.cli import main
    import neurosim.data.pipeline as pipeline
    import neurosim.runs  # noqa: F401 - before the patch: first imported under it, runs kept the patch for good

    monkeypatch.setattr(pipeline, "_load_frames", lambda *a, **k: pytest.fail("frames were loaded"))
    args = ["-q", "train", "--config", "shd", "--set", f"out_dir={tmp_path}", f"data.dataset={dataset}",
            "model.num_classes=35", f"data.augment.{setting}"]
    assert main(args) == 2
    assert capsys.readouterr().err == f"neurosim train: error: {_audio_refusal(setting.split('=')[0], dataset)}\n"
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("dataset", ["shd", "ssc"])
@pytest.mark.parametrize("setting", [{"shift": 1}, {"flip": True}, {"cutout": 3}])
def test_make_loaders_refuses_moving_the_channels_of_an_audio_dataset_as_train_does(monkeypatch, dataset, setting):
    # the command line refused these, while make_loaders from Python flipped or cut out a cochlea's channels
    from neurosim.data import make_loaders
    import neurosim.data.pipeline as pipeline

    monkeypatch.setattr(pipeline, "_load_frames", lambda *a, **k: pytest.fail("frames were loaded"))
    cfg = DataConfig(dataset=dataset, augment=AugmentConfig(**setting))
    with pytest.raises(ConfigError) as refused:
        make_loaders(cfg, progress=False)
    assert str(refused.value) == _audio_refusal(next(iter(setting)), dataset)  # the command line's words
    pipeline.check_augment(DataConfig(dataset=dataset, augment=AugmentConfig(drop=0.1)))  # drop is no move: taken
    pipeline.check_augment(DataConfig(dataset="nmnist", augment=AugmentConfig(**setting)))  # pixels: taken

"""Config loading: defaults, TOML round trip, overrides, and errors that name the key."""

import re
from pathlib import Path

import pytest

from neurosim.config import (ConfigError, RunConfig, apply_overrides, config_from_dict, config_to_dict, dumps_toml,
                             load_config)


@pytest.mark.parametrize(
    "data, key, text",
    [
        ({"train": {"epochz": 3}}, "train.epochz", "unknown key"),
        ({"bogus": 1}, "bogus", "unknown key"),
        ({"train": {"lr": "fast"}}, "train.lr", "expected a number, got 'fast'"),
        ({"data": {"time_steps": 2.5}}, "data.time_steps", "expected an integer"),
        ({"neuron": {"tau_mem_ms": -5.0}}, "neuron.tau_mem_ms", "must be positive, got -5.0"),
        ({"data": {"time_steps": 0}}, "data.time_steps", "must be positive, got 0"),
        ({"train": {"lr": float("inf")}}, "train.lr", "must be a positive finite number, got inf"),
        ({"model": {"channels": [16, "x"]}}, "model.channels[1]", "expected an integer"),
        ({"neuron": {"surrogate": "relu"}}, "neuron.surrogate", "must be one of"),
        ({"train": {"method": "rtrl"}}, "train.method", "must be one of"),
        ({"train": {"time_chunk": 0}}, "train.time_chunk", "must be positive, got 0"),
        ({"train": {"time_chunk": 2.5}}, "train.time_chunk",
         'expected an integer or "none", got 2.5 (a float); write a whole number: 2 or 3'),
        ({"neuron": {"learn_beta": "yes"}}, "neuron.learn_beta", "expected true or false"),
        ({"train": {"weight_decay": float("nan")}}, "train.weight_decay", "must be a finite number >= 0, got nan"),
        ({"train": {"momentum": float("inf")}}, "train.momentum", "must be a finite number >= 0, got inf"),
        ({"train": {"method": "sltt"}}, "train.loss", "set train.loss = 'tet' or 'sltt_mix'"),
        ({"model": {"kind": "mlp", "input_shape": [700], "input_pool": 4}}, "model.input_pool",
         'only applies to kind = "conv"'),
        ({"model": {"kind": "mlp", "input_shape": [700], "channels": [8], "pool": 1}}, "model.channels",
         "(as do model.pool)"),
    ],
)
def test_bad_config_names_key(data, key, text):
    with pytest.raises(ConfigError) as err:
        config_from_dict(data)
    assert str(err.value).startswith(f"{key}:")
    assert text in str(err.value)


def test_toml_round_trip(tmp_path):
    cfg = config_from_dict({"name": "x", "model": {"hidden": [64]}, "train": {"epochs": 3, "grad_clip": 0.5}})
    path = tmp_path / "c.toml"
    path.write_text(dumps_toml(cfg))
    assert load_config(path) == cfg


def test_none_that_is_not_the_default_survives_the_toml_round_trip(tmp_path):
    cfg = load_config(None, ["train.grad_clip=none", "train.time_chunk=none"])  # TOML has no null: "none"
    assert cfg.train.grad_clip is None and cfg.train.time_chunk is None
    path = tmp_path / "c.toml"
    path.write_text(dumps_toml(cfg))
    assert 'grad_clip = "none"' in path.read_text() and "time_chunk" not in path.read_text()  # None is its default
    assert load_config(path) == cfg  # the default grad_clip, 1.0, used to come back
    with pytest.raises(ConfigError, match="train.lr: expected a number, got 'none'"):
        load_config(None, ["train.lr=none"])


def test_an_error_is_blamed_on_the_override_that_caused_it_not_on_the_file(tmp_path):
    path = tmp_path / "shipped.toml"
    path.write_text('[train]\nepochs = 1\n')
    with pytest.raises(ConfigError, match=r"^--set train.epochz=3: train.epochz: unknown key"):
        load_config(path, ["train.lr=0.1", "train.epochz=3"])
    with pytest.raises(ConfigError, match=r"^--set model.hidden=\['a'\]: model.hidden\[0\]: expected an integer"):
        load_config(path, ["model.hidden=['a']"])
    path.write_text('[train]\nepochs = 0\n')  # the file itself is wrong
    with pytest.raises(ConfigError, match=r"shipped.toml: train.epochs: must be positive"):
        load_config(path, ["train.lr=0.1"])


def test_overrides_parse_toml_values_and_bare_words(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[train]\nepochs = 1\n')
    cfg = load_config(path, ["train.epochs=4", "train.method=sltt", "train.loss=tet", "model.channels=[8, 8]", "train.lr=0.01"])
    assert (cfg.train.epochs, cfg.train.method, cfg.model.channels, cfg.train.lr) == (4, "sltt", (8, 8), 0.01)
    with pytest.raises(ConfigError, match="expected key.path=value"):
        apply_overrides({}, ["train.epochs"])


def test_a_key_that_takes_a_string_takes_the_set_text_as_typed():
    # TOML reads these as a number, a bool or a float; a run name or folder is the text ("expected a string, got 2024")
    for text in ("2024", "true", "1e3", "nan", "007", "2024-01-01"):
        cfg = load_config(None, [f"name={text}", f"out_dir={text}"])
        assert (cfg.name, cfg.out_dir) == (text, text)
    assert load_config(None, ['name="quoted"']).name == "quoted"  # a TOML string is still read as TOML
    assert load_config(None, ["model.hidden=[8, 16]", "seed=2024"]).model.hidden == (8, 16)  # other keys: TOML
    from neurosim.continual.config import load_continual_config
    from neurosim.lsm.config import load_lsm_config

    assert load_continual_config(None, ["name=2024"]).name == load_lsm_config(None, ["name=2024"]).name == "2024"


def test_none_means_none_for_every_key_that_may_be_none(tmp_path):
    cfg = load_config(None, ["data.root=none", "train.grad_clip=None"])  # data.root made a folder named "none"
    assert cfg.data.root is None and cfg.train.grad_clip is None
    path = tmp_path / "c.toml"
    path.write_text('[data]\nroot = "none"\n')
    assert load_config(path).data.root is None
    assert load_config(None, ["data.root=./none"]).data.root == str(Path.cwd() / "none")  # a folder of that name
    assert load_config(None, ["name=none"]).name == "none"  # a key that cannot be None keeps the word


def test_a_float_key_reads_the_decimals_that_toml_lacks():
    assert load_config(None, ["train.lr=.001"]).train.lr == 0.001  # was "expected a number, got '.001'"
    cfg = load_config(None, ["train.lr=2.", "neuron.beta=+.5e-1"])
    assert (cfg.train.lr, cfg.neuron.beta) == (2.0, 0.05)
    with pytest.raises(ConfigError, match="neuron.beta: must be in .*got -0.05"):
        load_config(None, ["neuron.beta=-.5e-1"])
    with pytest.raises(ConfigError, match=r"expected an integer, got 0.5 \(a float\); write a whole number: 0 or 1"):
        load_config(None, ["train.epochs=.5"])  # was "got '.5'": read as a string
    assert load_config(None, ["name=.001"]).name == ".001"


def test_setting_a_whole_table_is_refused_with_the_keys_to_set_instead(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[train]\nepochs = 9\nlr = 0.1\n')
    with pytest.raises(ConfigError, match=r"^--set train={epochs=1}: train: is a table; setting it whole would put "
                                          r"its other keys back to their defaults; set the keys one by one: "
                                          r"--set train.epochs=1$"):
        load_config(path, ["train={epochs=1}"])  # silently dropped train.lr = 0.1
    with pytest.raises(ConfigError, match="sets the whole table"):
        apply_overrides({}, ["model={hidden=[8]}"])


@pytest.mark.parametrize("item, message", [
    # a key that takes one value, given a table: it said "sets the whole table name" (name is no table)
    ("name={a=1}", r"name: expected a string, got {a = 1} \(a table\)$"),
    ("train.epochs={a=1}", r"train.epochs: expected an integer, got {a = 1} \(a table\)$"),
    ("data.root={a=1}", r'data.root: expected a string or "none", got {a = 1} \(a table\)$'),
    ("train.epochs.x=1", r"train.epochs: expected an integer, got {x = 1} \(a table\)$"),
    # other wrong types: the value as TOML spells it (true, not Python's True), what it is, and what to write
    ("train.epochs=true", r"train.epochs: expected an integer, got true \(a boolean\)$"),
    ("neuron.learn_beta=1", r"neuron.learn_beta: expected true or false, got 1 \(an integer\)$"),
    ("train.lr=[1]", r"train.lr: expected a number, got \[1\] \(a list\)$"),
    ("model.hidden=5", r"model.hidden: expected a list of integers, got 5 \(an integer\); write it in brackets: "
                       r"\[5\]$"),
    ("train=1", r"train: expected a table of keys, got 1 \(an integer\)$"),
])
def test_a_set_value_of_the_wrong_type_says_what_the_key_expects_and_what_it_got(item, message):
    with pytest.raises(ConfigError, match=f"^--set {re.escape(item)}: {message}"):
        load_config(None, [item])


def test_a_quoted_value_in_a_file_says_to_drop_the_quotes(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[train]\nepochs = "3"\n')
    with pytest.raises(ConfigError, match=r"c.toml: train.epochs: expected an integer, got '3' \(a string\); write "
                                          r"it without quotes: 3$"):
        load_config(path)


def test_an_integer_key_takes_a_float_that_is_a_whole_number(tmp_path):
    # 3.0 and 1e3 are TOML floats (configs written by sweep tools, `--set data.batch_size=1e3`): they were refused as
    # "expected an integer, got 3.0 (float)"; a float with a fraction is still refused, saying what to write
    path = tmp_path / "c.toml"
    path.write_text("seed = -2.0\n[train]\nepochs = 3.0\n[model]\nchannels = [8.0, 16]\n")
    cfg = load_config(path, ["data.batch_size=1e3", "train.time_chunk=4.0"])
    assert (cfg.seed, cfg.train.epochs, cfg.model.channels, cfg.data.batch_size, cfg.train.time_chunk) == \
        (-2, 3, (8, 16), 1000, 4)
    assert all(type(v) is int for v in (cfg.seed, cfg.train.epochs, *cfg.model.channels, cfg.data.batch_size))
    assert load_config(path) == load_config(None, ["seed=-2", "train.epochs=3", "model.channels=[8, 16]"])
    with pytest.raises(ConfigError, match=r"^--set train.epochs=3.5: train.epochs: expected an integer, got 3.5 "
                                          r"\(a float\); write a whole number: 3 or 4$"):
        load_config(path, ["train.epochs=3.5"])
    with pytest.raises(ConfigError, match=r"seed: expected an integer, got 1e\+20 \(a float\); a float this large is "
                                          r"not exact: write the integer's digits"):
        load_config(None, ["seed=1e20"])  # beyond 2**53 the float may not be the integer written
    with pytest.raises(ConfigError, match=r"a float this large is not exact"):
        load_config(None, ["seed=9007199254740993.0"])  # 2**53 + 1 reads as the float 2**53
    assert load_config(None, ["seed=9007199254740991.0"]).seed == 2**53 - 1
    with pytest.raises(ConfigError, match=r"train.epochs: expected an integer, got inf \(a float\); write a whole"):
        load_config(None, ["train.epochs=inf"])


def test_a_leading_tilde_in_a_path_is_the_home_folder(tmp_path, monkeypatch):
    # out_dir = "~/runs" made a folder named "~" in the working directory: no TOML reader expands it
    from neurosim.continual.config import load_continual_config
    from neurosim.lsm.config import load_lsm_config

    monkeypatch.setenv("HOME", str(tmp_path))
    path = tmp_path / "c.toml"
    path.write_text('out_dir = "~/runs"\n[data]\nroot = "~/data"\n')
    cfg = load_config(path)
    assert (cfg.out_dir, cfg.data.root) == (str(tmp_path / "runs"), str(tmp_path / "data"))
    assert load_config(path) == load_config(None, ["out_dir=~/runs", "data.root=~/data"])  # --set as the file
    assert load_config(None, ["out_dir=~"]).out_dir == str(tmp_path)
    assert load_config(None, ["out_dir=a/~/b", "data.root=none"]).out_dir == "a/~/b"  # only a leading ~
    assert RunConfig(out_dir="~/r").out_dir == str(tmp_path / "r")  # the Python API as well
    cont = load_continual_config(None, ["out_dir=~/runs", "tasks.root=~/data"])
    assert (cont.out_dir, cont.tasks.root) == (str(tmp_path / "runs"), str(tmp_path / "data"))
    lsm = load_lsm_config(None, ["out_dir=~/runs", "data.root=~/data", "energy.targets=['loihi', '~/mine.toml']"])
    assert (lsm.out_dir, lsm.data.root, lsm.energy.targets) == (
        str(tmp_path / "runs"), str(tmp_path / "data"), ("loihi", str(tmp_path / "mine.toml")))
    dumped = tmp_path / "dumped.toml"
    dumped.write_text(dumps_toml(cfg))  # a run folder's config.toml names the folder itself
    assert load_config(dumped) == cfg and "~" not in dumped.read_text()
    with pytest.raises(ConfigError, match=r"^--set out_dir=~nosuchuser_x9/r: out_dir: '~nosuchuser_x9/r' starts "
                                          r"with ~, but that home folder cannot be found .*give the full path$"):
        load_config(None, ["out_dir=~nosuchuser_x9/r"])


def test_file_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text("[neuron]\ntau_mem_ms = -1.0\n")
    with pytest.raises(ConfigError, match=r"wrong.toml: neuron.tau_mem_ms: must be positive"):
        load_config(wrong)


def test_defaults_are_valid():
    assert load_config() == RunConfig()


def test_adamw_takes_torchs_decay_unless_one_is_given():
    assert config_from_dict({"train": {"optimizer": "adamw"}}).train.weight_decay == 0.01  # else AdamW = Adam
    assert config_from_dict({"train": {"optimizer": "adamw", "weight_decay": 0}}).train.weight_decay == 0.0
    assert config_from_dict({"train": {"optimizer": "adam"}}).train.weight_decay == 0.0
    assert config_from_dict({"train": {"optimizer": "sgd"}}).train.weight_decay == 0.0


def test_a_checkpoint_config_from_before_the_mlp_check_still_loads():
    from neurosim.config import config_from_checkpoint

    stored = config_to_dict(config_from_dict({"model": {"kind": "mlp", "input_shape": [20]}}))
    stored["model"]["pool"] = 1  # accepted and ignored by earlier versions
    with pytest.raises(ConfigError, match="model.pool"):
        config_from_dict(stored)  # a config file with it is refused
    assert config_from_checkpoint(stored).model.pool == 2  # a checkpoint with it loads (it meant nothing)


@pytest.mark.parametrize("seed", [2**64, -2**63 - 1, 10**30])
def test_a_seed_torch_cannot_take_is_an_error_naming_the_key(seed):
    # it got as far as torch.manual_seed, which failed with "Overflow when unpacking long long"
    with pytest.raises(ConfigError, match=r"^--set seed=\S+: seed: must be an integer in \[-9223372036854775808, "
                                          r"18446744073709551615\] .*got " + str(seed)):
        load_config(None, [f"seed={seed}"])


def test_the_seeds_at_the_ends_of_the_range_are_taken_and_work_in_torch():
    from neurosim.config import TORCH_SEED_RANGE
    from neurosim.training import seed_everything

    for seed in TORCH_SEED_RANGE:
        assert load_config(None, [f"seed={seed}"]).seed == seed
        seed_everything(seed)  # what a run does with it


def test_num_workers_above_0_warns_that_it_has_no_effect():
    import warnings

    from neurosim.config import DataConfig

    with pytest.warns(UserWarning, match=r"data.num_workers = 2 has no effect: .*frames once, map the cached frames into memory"
                                         r".*remove the setting"):
        cfg = config_from_dict({"data": {"num_workers": 2}})
    assert cfg.data.num_workers == 2  # configs and checkpoints that set it still load
    with pytest.warns(UserWarning, match="has no effect") as caught:
        DataConfig(num_workers=1)
    assert caught[0].filename == __file__  # the warning points at the line that made the config
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config_from_dict({"data": {"num_workers": 0}})
        # a checkpoint that stored it loads without the warning: the file cannot be edited, and it meant nothing
        from neurosim.config import config_from_checkpoint

        assert config_from_checkpoint({"data": {"num_workers": 2, "batch_size": 8}}).data.batch_size == 8


def test_load_config_takes_a_shipped_configs_name_as_the_command_line_does(tmp_path, monkeypatch):
    from neurosim.config import SHIPPED_CONFIGS

    assert load_config("sltt_paper") == load_config(SHIPPED_CONFIGS / "sltt_paper.toml")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quickstart").mkdir()  # a folder of that name here: still the shipped config (a file would win)
    assert load_config("quickstart").name == "quickstart"
    (tmp_path / "mine.toml").write_text('name = "mine"\n')
    assert load_config("mine.toml").name == "mine"
    with pytest.raises(ConfigError, match=r"'nope' does not exist \(nor is it the name of a shipped config: "
                                          r".*quickstart"):
        load_config("nope")


def test_model_recurrent_from_set_its_type_and_the_round_trip(tmp_path):
    base = ["model.kind=mlp", "model.hidden=[16, 8]"]
    cfg = load_config(None, [*base, "model.recurrent=true"])
    assert cfg.model.recurrent is True
    path = tmp_path / "c.toml"
    path.write_text(dumps_toml(cfg))
    assert "recurrent = true" in path.read_text() and load_config(path) == cfg
    assert "recurrent" not in dumps_toml(load_config(None, base))  # written only when set
    for bad, got in (("1", "1 (an integer)"), ("yes", "'yes' (a string)")):
        with pytest.raises(ConfigError, match=re.escape(f"--set model.recurrent={bad}: model.recurrent: expected "
                                                        f"true or false, got {got}")):
            load_config(None, [*base, f"model.recurrent={bad}"])
    with pytest.raises(ConfigError, match="model.recurrent: makes the hidden layers recurrent, and there are none"):
        load_config(None, ["model.recurrent=true"])
    conv = load_config("quickstart", ["model.hidden=[32]", "model.recurrent=true"])  # conv → flatten → RLIF 32
    assert conv.model.kind == "conv" and conv.model.recurrent


def _loaders():
    from neurosim.continual.config import load_continual_config
    from neurosim.lsm.config import load_lsm_config
    from neurosim.training.sltt import paper_config

    return {"load_config": lambda o: load_config(None, o), "load_lsm_config": lambda o: load_lsm_config(None, o),
            "load_continual_config": lambda o: load_continual_config(None, o),
            "load_config(shipped file)": lambda o: load_config("quickstart", o), "sltt.paper_config": paper_config,
            "apply_overrides": lambda o: apply_overrides({}, o)}


@pytest.mark.parametrize("loader", list(_loaders()))
def test_every_config_loader_takes_a_list_of_overrides_and_refuses_a_bare_string(loader):
    # a bare string was read as one override per character: load_lsm_config(path, "a=b") failed with "override 'a'"
    load = _loaders()[loader]
    for overrides in ("name=r", "", b"name=r", ["name=r", 3], 5):
        with pytest.raises(TypeError, match=r"^overrides must be a list of 'key=value' strings, got ") as e:
            load(overrides)
        if isinstance(overrides, str):
            assert f"write [{overrides!r}]" in str(e.value)
    for overrides in (["name=r"], ("name=r",)):  # a list, or any other iterable of strings
        got = load(overrides)
        assert (got["name"] if isinstance(got, dict) else got.name) == "r"
    if loader != "apply_overrides":
        assert load(None).name != "r" and load([]).name != "r"


def test_settings_the_rest_of_the_config_makes_ineffective_are_listed_with_why():
    from neurosim.config import ineffective_settings

    cfg = config_from_dict({"train": {"k": 4, "loss_lambda": 0.2, "optimizer": "adam", "momentum": 0.5,
                                      "activity_penalty_warmup": 2},
                            "model": {"readout_beta": 0.5}, "neuron": {"beta": 0.8, "tau_mem_ms": 4.0}})
    found = ineffective_settings(cfg)
    assert [f.split(" = ")[0] for f in found] == [
        "train.k", "train.loss_lambda", "train.momentum", "train.activity_penalty_warmup", "model.readout_beta",
        "neuron.tau_mem_ms"]
    assert found[0] == "train.k = 4: only train.method = 'sltt_k' draws k steps per batch"
    # where they act, or at their defaults, nothing is listed
    assert ineffective_settings(config_from_dict({"train": {"method": "sltt_k", "k": 4, "loss": "sltt_mix",
                                                            "loss_lambda": 0.2, "optimizer": "sgd",
                                                            "momentum": 0.5}})) == []
    assert ineffective_settings(config_from_dict({})) == []


def test_neurosim_train_warns_of_ineffective_settings_before_loading_data(tmp_path):
    from neurosim.runs import _check_before_loading

    cfg = config_from_dict({"out_dir": str(tmp_path), "train": {"k": 4}})
    with pytest.warns(UserWarning, match=r"^setting with no effect in this config: train.k = 4: only"):
        _check_before_loading(cfg)


def test_a_relative_data_root_is_kept_absolute(tmp_path, monkeypatch):
    # stored as given, a checkpoint trained with data.root = "data" looked for its data under whatever directory
    # neurosim evaluate / estimate ran in (and they cannot set data.root)
    monkeypatch.chdir(tmp_path)
    cfg = load_config(None, ["data.root=data"])
    assert cfg.data.root == str(tmp_path / "data")
    monkeypatch.chdir("/")
    assert config_from_dict(config_to_dict(cfg)).data.root == str(tmp_path / "data")  # as its checkpoint reads it

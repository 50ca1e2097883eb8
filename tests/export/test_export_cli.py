"""`neurosim export`: a trained checkpoint becomes a NIR file that imports back to the same spikes."""

from __future__ import annotations

import nir
import numpy as np
import torch

from neurosim.activity import record_outputs
from neurosim.cli import main
from neurosim.export import from_nir, read_nir


def test_export_a_trained_checkpoint_and_import_it_back(tiny_checkpoint, capsys):
    ckpt = tiny_checkpoint
    # the quickstart model has MaxPool2d, which NIR cannot say: refused with the layer named, unless asked
    assert main(["export", "--checkpoint", str(ckpt)]) == 2
    assert "MaxPool2d" in capsys.readouterr().err
    assert main(["export", "--checkpoint", str(ckpt.parent), "--maxpool", "sumpool"]) == 0  # the run folder
    out = capsys.readouterr().out
    assert "Conv2d" in out and f"wrote {ckpt.parent / 'model.nir'}" in out  # in the run folder, not beside it
    # what other tools will read differently is said, not only written in the docs
    assert "note: reset = 'subtract': other tools read a reset to zero" in out
    assert "note: MaxPool2d written as SumPool2d: other tools read a sum pool" in out
    elsewhere = ckpt.parent / "exports"
    elsewhere.mkdir()
    assert main(["export", "--checkpoint", str(ckpt), "--maxpool", "sumpool", "--out", str(elsewhere)]) == 0
    assert (elsewhere / "model.nir").is_file()  # --out may name a folder
    capsys.readouterr()
    graph = read_nir(ckpt.parent / "model.nir")
    imported = from_nir(graph)

    from neurosim.runs import load_run

    model, cfg, data = load_run(ckpt, progress=False)
    x, _ = next(iter(data.test))
    ref_out, ref_layers = record_outputs(model, x.float())
    got_out, got_layers = record_outputs(imported, x.float())
    assert torch.equal(got_out, ref_out) and list(got_layers) == list(ref_layers)
    for name in ref_layers:
        assert torch.equal(got_layers[name], ref_layers[name]), name
    assert sum(float(s.sum()) for s in ref_layers.values()) > 0  # real spikes were compared


def test_export_of_a_missing_checkpoint_is_one_line(tmp_path, capsys):
    assert main(["export", "--checkpoint", str(tmp_path / "none.pt")]) == 2
    err = capsys.readouterr().err
    assert "none.pt" in err and "Traceback" not in err


def test_export_replaces_an_earlier_export_but_no_other_file(tiny_checkpoint, tmp_path, capsys):
    mine = tmp_path / "notes.nir"
    mine.write_text("my notes")
    assert main(["export", "--checkpoint", str(tiny_checkpoint), "--maxpool", "sumpool", "--out", str(mine)]) == 2
    assert "exists and is not a NIR file" in capsys.readouterr().err and mine.read_text() == "my notes"
    out = tmp_path / "model.nir"
    for _ in range(2):  # the second run replaces the first export
        assert main(["-q", "export", "--checkpoint", str(tiny_checkpoint), "--maxpool", "sumpool", "--out",
                     str(out)]) == 0
    assert main(["export", "--checkpoint", str(tiny_checkpoint), "--out", str(mine / "x.nir")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err



def test_export_into_a_folder_keeps_another_tools_nir_file_unless_asked_to_overwrite(tiny_checkpoint, tmp_path,
                                                                                      capsys):
    """`--out DIR` wrote DIR/model.nir over any NIR (HDF5) file of that name: one exported by snnTorch or written
    by hand was replaced without a word. Only a file neurosim export wrote is replaced; --overwrite replaces others."""
    folder = tmp_path / "models"
    folder.mkdir()
    theirs = folder / "model.nir"
    nir.write(str(theirs), nir.NIRGraph(
        nodes={"input": nir.Input(np.array([3])), "fc": nir.Linear(weight=np.ones((2, 3))),
               "output": nir.Output(np.array([2]))}, edges=[("input", "fc"), ("fc", "output")]))
    before = theirs.read_bytes()
    argv = ["-q", "export", "--checkpoint", str(tiny_checkpoint), "--maxpool", "sumpool", "--out", str(folder)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert (f"--out: {theirs} exists and is a NIR (HDF5) file that neurosim export did not write" in err
            and "pass --overwrite to replace it" in err)
    assert theirs.read_bytes() == before
    assert main(argv + ["--overwrite"]) == 0  # asked for: replaced by the export
    assert theirs.read_bytes() != before and "Conv2d" in {type(n).__name__ for n in read_nir(theirs).nodes.values()}
    assert main(argv) == 0  # now an export of neurosim's: replaced again without asking
    notes = tmp_path / "notes.nir"
    notes.write_text("my notes")
    assert main(argv[:-1] + [str(notes), "--overwrite"]) == 0 and read_nir(notes).nodes

def test_export_to_a_folder_not_made_yet_written_with_a_trailing_slash_goes_in_it(tiny_checkpoint, tmp_path):
    """`--out exports/` (no such folder yet) wrote a file named `exports`: Path drops the trailing slash."""
    folder = tmp_path / "exports" / "nir"
    argv = ["-q", "export", "--checkpoint", str(tiny_checkpoint), "--maxpool", "sumpool", "--out", f"{folder}/"]
    assert main(argv) == 0
    assert folder.is_dir() and [p.name for p in folder.iterdir()] == ["model.nir"]
    assert read_nir(folder / "model.nir").nodes
    assert main(argv[:-1] + [str(tmp_path / "plain")]) == 0  # without the slash: a file of that name, as before
    assert (tmp_path / "plain").is_file() and read_nir(tmp_path / "plain").nodes


def test_a_checkpoint_whose_weights_do_not_fit_its_model_is_named(tiny_checkpoint, capsys):
    import torch

    ckpt = torch.load(tiny_checkpoint, weights_only=False)
    ckpt["model"]["0.weight"] = torch.zeros(1)
    torch.save(ckpt, tiny_checkpoint)
    for cmd in (["evaluate"], ["export", "--maxpool", "sumpool"]):
        assert main([*cmd, "--checkpoint", str(tiny_checkpoint)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "weights do not fit the model its config builds" in err
        assert "size mismatch for 0.weight" in err, err


def test_export_writes_tau_for_the_time_step_asked(tiny_checkpoint, tmp_path, capsys):
    # snnTorch's NIR import assumes dt = 1e-4 s: the same per-step decay, written as τ for that step
    from neurosim.export import read_nir

    out = {}
    for dt in ("1e-4", None):
        path = tmp_path / f"m{dt}.nir"
        argv = ["export", "--checkpoint", str(tiny_checkpoint), "--maxpool", "sumpool", "--out", str(path)]
        assert main(argv + (["--dt-s", dt] if dt else [])) == 0
        out[dt] = read_nir(path)
    assert "dt = 0.1 ms" in capsys.readouterr().out
    lif = [k for k, n in out[None].nodes.items() if isinstance(n, nir.LIF)][0]
    ratio = np.asarray(out[None].nodes[lif].tau) / np.asarray(out["1e-4"].nodes[lif].tau)
    np.testing.assert_allclose(ratio, 10.0)  # τ = dt / (1 − β): the model's 1 ms against 0.1 ms
    assert main(["export", "--checkpoint", str(tiny_checkpoint), "--maxpool", "sumpool", "--dt-s", "-1",
                 "--out", str(tmp_path / "bad.nir")]) == 2
    assert "--dt-s: dt_s must be a positive finite number" in capsys.readouterr().err


def test_exporting_a_checkpoint_written_part_way_through_an_epoch_warns(tiny_checkpoint, capsys):
    # neurosim evaluate and estimate warned (load_run); export read the weights of that moment without a word
    import pytest

    from neurosim.training.checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(tiny_checkpoint)
    ckpt["epoch"] -= 1
    save_checkpoint(tiny_checkpoint, {**ckpt, "partial_epoch": {"batches": 1, "epoch_batches": 2,
                                                                "evaluating": False, "ranks": []}})
    epoch = ckpt["epoch"] + 1
    with pytest.warns(RuntimeWarning, match=f"{tiny_checkpoint} was written part-way through epoch {epoch}: it has "
                                            f"trained .*the first 1 of epoch {epoch}'s 2 batches") as caught:
        assert main(["export", "--checkpoint", str(tiny_checkpoint), "--maxpool", "sumpool"]) == 0
    assert [w.filename for w in caught if "part-way" in str(w.message)] == [__file__]  # the caller of main()
    assert "wrote " in capsys.readouterr().out


def test_a_trainer_run_of_a_model_built_in_python_is_refused_saying_how_to_export_it(tmp_path, capsys):
    """A Trainer run of a converted snnTorch model saves the default config, whose [model] describes another model:
    evaluate, estimate and export failed with only the mismatched keys, not what to do instead."""
    import snntorch as snn
    from torch import nn

    from neurosim.config import config_from_dict
    from neurosim.export import to_nir
    from neurosim.interop import from_snntorch
    from neurosim.training import Trainer, load_checkpoint

    def convert():
        torch.manual_seed(0)
        return from_snntorch(nn.Sequential(nn.Linear(6, 3), snn.Leaky(beta=0.9, init_hidden=True)))

    x, y = torch.rand(4, 8, 6) * 4, torch.arange(8) % 3  # [T, B, features], strong enough to spike
    cfg = config_from_dict({"train": {"method": "sltt", "loss": "sltt_mix", "epochs": 1, "threads": 1}})
    Trainer(convert(), cfg, tmp_path / "run", progress=False).fit([(x, y)])
    ckpt = tmp_path / "run" / "checkpoint.pt"
    for cmd in (["export"], ["evaluate"], ["estimate", "--target", "loihi"]):
        assert main(["-q", *cmd, "--checkpoint", str(ckpt)]) == 2
        err = capsys.readouterr().err
        assert "weights do not fit the model its config builds" in err, err
        assert "neurosim.interop.from_snntorch" in err and "neurosim.export.to_nir" in err, err
    model = convert()  # what the message says to do instead works
    model.load_state_dict(load_checkpoint(ckpt)["model"])
    assert isinstance(to_nir(model, (6,)).nodes["1"], nir.LIF)

"""`neurosim export`: a trained checkpoint becomes a NIR file that imports back to the same spikes."""

from __future__ import annotations

import torch

from neurosim.activity import record_outputs
from neurosim.cli import main
from neurosim.export import from_nir, read_nir


def test_export_a_trained_checkpoint_and_import_it_back(tiny_checkpoint, capsys):
    ckpt = tiny_checkpoint
    # the quickstart model has MaxPool2d, which NIR cannot say: refused with the layer named, unless asked
    assert main(["export", "--checkpoint", str(ckpt)]) == 2
    assert "MaxPool2d" in capsys.readouterr().err
    (ckpt.parent / "model.nir").write_text("an older export")
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

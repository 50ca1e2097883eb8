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

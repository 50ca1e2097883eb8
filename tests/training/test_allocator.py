"""tune_cpu_allocator: glibc serves training-sized buffers from the heap instead of fresh mmaps (no re-faulting)."""

import ctypes
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from neurosim.config import RunConfig, TrainConfig
from neurosim.nn import Flatten, Linear, Sequential
from neurosim.training import Trainer
from neurosim.training import trainer as trainer_module


def _has_mallinfo2() -> bool:
    try:
        ctypes.CDLL(None).mallinfo2
        return sys.platform.startswith("linux")
    except (OSError, AttributeError):
        return False


# A 16 MiB buffer, as a training step allocates them: how many of its bytes glibc mmapped (mallinfo2().hblkhd).
_PROBE = textwrap.dedent("""
    import ctypes, json, sys
    import torch
    from neurosim.training import tune_cpu_allocator

    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in
                    ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                     "fordblks", "keepcost")]

    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = MallInfo2
    tuned = tune_cpu_allocator() if sys.argv[1] == "tune" else None
    again = tune_cpu_allocator() if sys.argv[1] == "tune" else None
    before = libc.mallinfo2().hblkhd
    buf = torch.ones(4 << 20)  # 16 MiB
    print(json.dumps({"tuned": tuned, "again": again, "mmapped": libc.mallinfo2().hblkhd - before}))
""")


def _probe(mode: str, **env) -> dict:
    import json

    clean = {k: v for k, v in os.environ.items() if not (k.startswith("MALLOC_") or k == "GLIBC_TUNABLES")}
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], env={**clean, **env}, capture_output=True, text=True,
                         check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not _has_mallinfo2(), reason="glibc >= 2.33 (mallinfo2) only: the setting is glibc's")
def test_tuned_allocator_serves_training_buffers_from_the_heap():
    untuned = _probe("none")
    assert untuned["mmapped"] >= 16 << 20  # glibc's default: a fresh mapping, faulted in page by page
    tuned = _probe("tune")
    assert tuned["tuned"] is True and tuned["again"] is True
    assert tuned["mmapped"] == 0


@pytest.mark.skipif(not _has_mallinfo2(), reason="glibc >= 2.33 (mallinfo2) only: the setting is glibc's")
def test_allocator_left_alone_where_the_user_configured_malloc():
    probe = _probe("tune", MALLOC_ARENA_MAX="2")
    assert probe["tuned"] is False and probe["mmapped"] >= 16 << 20


@pytest.mark.parametrize("tune", [True, False])
def test_trainer_tunes_the_allocator_for_cpu_training_unless_asked_not_to(monkeypatch, tune):
    calls = []
    monkeypatch.setattr(trainer_module, "tune_cpu_allocator", lambda: calls.append(1) or True)
    model = Sequential(Flatten(), Linear(4, 2))
    Trainer(model, RunConfig(train=TrainConfig(device="cpu")), progress=False, tune_allocator=tune)
    assert calls == ([1] if tune else [])
    assert next(model.parameters()).device == torch.device("cpu")

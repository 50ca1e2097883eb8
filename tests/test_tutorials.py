"""Every tutorial runs end to end in its fast mode and writes its figures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TUTORIALS = sorted((Path(__file__).resolve().parents[1] / "tutorials").glob("[0-9][0-9]_*.py"))


@pytest.mark.slow  # 5-20 s each, in a subprocess
@pytest.mark.parametrize("script", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs_in_fast_mode(script, tmp_path, event_digits_cache):
    env = dict(os.environ, NEUROSIM_FAST="1", NEUROSIM_TUTORIAL_OUT=str(tmp_path), MPLBACKEND="Agg",
               NEUROSIM_CACHE_DIR=str(event_digits_cache))
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    pngs = list(tmp_path.rglob("*.png"))
    assert pngs and all(p.stat().st_size > 1000 for p in pngs)


def test_there_are_tutorials():
    assert len(TUTORIALS) >= 2

"""What a user installing neurosim from PyPI or a source archive gets: one version, and an sdist that tests."""

import importlib.metadata
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import neurosim
from neurosim.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_the_version_is_written_once(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"neurosim {neurosim.__version__}"
    assert importlib.metadata.version("neurosim") == neurosim.__version__  # pyproject reads it from the package


@pytest.mark.skipif(not (ROOT / ".git").exists() or shutil.which("git") is None, reason="needs the git checkout")
def test_the_source_archive_carries_what_make_test_needs(tmp_path):
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    src = tmp_path / "src"
    for f in files:
        if (ROOT / f).is_file():
            (src / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, src / f)
    code = "import sys; from setuptools import build_meta as b; print(b.build_sdist(sys.argv[1]))"
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "dist")], cwd=src, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    with tarfile.open(tmp_path / "dist" / r.stdout.split()[-1]) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for needed in ("tests/conftest.py", "tests/data/fixture_writers.py", "tutorials/01_lif_neuron.py", "Makefile",
                   "requirements/constraints.txt", "datasets/event_digits.md", "neurosim/configs/quickstart.toml",
                   "hardware_models/specs/loihi.toml", "LICENSE"):
        assert needed in names, f"{needed} is not in the sdist"
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".nbi", ".nbc"))]

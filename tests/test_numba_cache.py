"""neurosim imports where numba can cache neither beside its sources nor in the user's cache folder."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from neurosim._numba_cache import _writable, use_writable_numba_cache


class _FullDisk:
    """A temporary file on a full disk: it is created, but writing data to it fails."""

    def __init__(self, f):
        self.f = f

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()

    def close(self):
        self.f.close()

    def write(self, data):
        raise OSError(28, "No space left on device")


def _only(*writable_folders):
    """A folder test answering yes for the given folders (and their children) only."""
    return lambda folder: any(Path(folder).is_relative_to(w) for w in writable_folders)


def _read_only(folder):
    """numba's own folder test failing: a read-only install, where numba falls back to the user's cache itself."""
    return False


@pytest.fixture
def numba_config_kept(monkeypatch):
    """numba's CACHE_DIR as it was after the test (setting NUMBA_CACHE_DIR also sets it in an imported numba)."""
    import numba

    monkeypatch.setattr(numba.config, "CACHE_DIR", numba.config.CACHE_DIR)


def test_numba_keeps_its_own_choice_where_the_sources_or_the_user_cache_are_writable(tmp_path):
    pkg, home = tmp_path / "site-packages" / "neurosim", tmp_path / "home"
    for writable in (_only(pkg), _only(home)):
        env = {"HOME": str(home)}
        assert use_writable_numba_cache(pkg, env, writable, _read_only) is None
        assert "NUMBA_CACHE_DIR" not in env


def test_nowhere_to_cache_points_numba_at_a_temporary_folder(tmp_path, monkeypatch, numba_config_kept):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    env = {"HOME": "/"}
    folder = use_writable_numba_cache(tmp_path / "ro", env, _only(tmp_path / "tmp"), _read_only)
    assert folder == env["NUMBA_CACHE_DIR"] and Path(folder).parent == tmp_path / "tmp"


def test_xdg_cache_home_is_numbas_user_cache_and_a_users_choice_is_kept(tmp_path):
    env = {"HOME": "/", "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    assert use_writable_numba_cache(tmp_path / "ro", env, _only(tmp_path / "xdg"), _read_only) is None
    env = {"HOME": "/", "NUMBA_CACHE_DIR": "/mine"}
    assert use_writable_numba_cache(tmp_path / "ro", env, lambda f: False) is None and env["NUMBA_CACHE_DIR"] == "/mine"


def test_an_install_on_a_full_disk_caches_in_the_users_cache_folder(tmp_path, monkeypatch, numba_config_kept):
    # numba's test of the install's __pycache__ (an empty file) passes on a full disk: it cached there, failed to
    # save each kernel, warned, and compiled them all again in every run. Now the user's cache folder takes them,
    # where numba's own fallback keeps them; a writable or read-only install is still numba's choice (above).
    import tempfile

    import numba

    pkg, home = tmp_path / "site-packages" / "neurosim", tmp_path / "home"
    full_disk = dict(writable=lambda f: not Path(f).is_relative_to(pkg), numba_would_use=lambda f: True)
    env = {"HOME": str(home)}
    folder = use_writable_numba_cache(pkg, env, **full_disk)
    assert folder == env["NUMBA_CACHE_DIR"] == numba.config.CACHE_DIR == str(home / ".cache" / "numba")
    env = {"HOME": str(home), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    assert use_writable_numba_cache(pkg, env, **full_disk) == str(tmp_path / "xdg" / "numba")
    # the user's cache full or read-only as well: the temporary folder, as where nothing can be written
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    env = {"HOME": str(home)}
    folder = use_writable_numba_cache(pkg, env, _only(tmp_path / "tmp"), lambda f: True)
    assert Path(folder).parent == tmp_path / "tmp"
    env = {"HOME": str(home), "NUMBA_CACHE_DIR": "/mine"}
    assert use_writable_numba_cache(pkg, env, **full_disk) is None and env["NUMBA_CACHE_DIR"] == "/mine"


def test_numbas_own_folder_test_is_an_empty_file_which_a_full_disk_allows(tmp_path, monkeypatch):
    import tempfile

    from neurosim._numba_cache import _numba_would_use

    assert _numba_would_use(tmp_path / "a" / "b") and (tmp_path / "a" / "b").is_dir()
    (tmp_path / "file").write_text("x")
    assert not _numba_would_use(tmp_path / "file" / "sub")
    real = tempfile.TemporaryFile
    monkeypatch.setattr(tempfile, "TemporaryFile", lambda **kw: _FullDisk(real(**kw)))
    assert _numba_would_use(tmp_path / "full") and not _writable(tmp_path / "full")


def test_the_folder_test_creates_and_writes(tmp_path):
    assert _writable(tmp_path / "a" / "b") and (tmp_path / "a" / "b").is_dir()
    (tmp_path / "file").write_text("x")
    assert not _writable(tmp_path / "file" / "sub")  # a file where the folder should be


def test_an_install_where_numba_can_cache_nowhere_still_runs_its_kernels(tmp_path):
    # A copy of the package whose __pycache__ folders cannot be made (a file holds each name), run with a HOME
    # under which no folder can be made either: what a user meets with a root-owned install and HOME=/. Without
    # the temporary folder numba raises "cannot cache function ... no locator available" at the first kernel.
    import neurosim

    site = tmp_path / "site"
    shutil.copytree(Path(neurosim.__file__).parent, site / "neurosim", ignore=shutil.ignore_patterns("__pycache__"))
    for folder in [p for p in (site / "neurosim").rglob("*") if p.is_dir()] + [site / "neurosim"]:
        (folder / "__pycache__").write_text("not a folder")
    (tmp_path / "home").write_text("not a folder")
    code = ("import os, numpy as np, neurosim.data.dvs as d; "
            "print(os.environ.get('NUMBA_CACHE_DIR'), len(d.emulate(np.ones((2, 4, 4)), np.array([0, 1000]))))")
    env = {**os.environ, "HOME": str(tmp_path / "home"), "PYTHONPATH": str(site), "TMPDIR": str(tmp_path / "tmp"),
           "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    for key in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME"):
        env.pop(key, None)
    (tmp_path / "tmp").mkdir()
    r = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split()[0] == str(tmp_path / "tmp" / f"neurosim-numba-{os.getuid()}")


def test_the_folder_test_writes_data_not_only_an_empty_file(tmp_path, monkeypatch):
    # a full disk lets numba's own test (an empty file) pass; the save after compiling then fails
    import tempfile

    real = tempfile.TemporaryFile

    monkeypatch.setattr(tempfile, "TemporaryFile", lambda **kw: _FullDisk(real(**kw)))
    assert not _writable(tmp_path / "full")


def test_a_failed_cache_save_warns_with_the_folder_and_the_kernel_runs(tmp_path, monkeypatch):
    # What a full disk under NUMBA_CACHE_DIR does: the save of the compiled kernel raises a pathless OSError,
    # which stopped the run at its first kernel. Now a RuntimeWarning names the cache folder; the result is there.
    import importlib.util

    import numba  # noqa: F401  (neurosim's import wrapped the save)
    from numba.core import caching

    def full(self, sig, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(caching.Cache, "_save_overload", full)
    (tmp_path / "kern_full_disk.py").write_text("import numba\n\n@numba.njit(cache=True)\ndef twice(x):\n"
                                                "    return 2 * x\n")
    spec = importlib.util.spec_from_file_location("kern_full_disk", tmp_path / "kern_full_disk.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.warns(RuntimeWarning, match=r"could not cache the compiled kernel twice in /\S+ \(No "
                                            r"space left.*NUMBA_CACHE_DIR"):
        assert module.twice(21) == 42

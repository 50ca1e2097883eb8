"""Shared test helpers. Fixtures here are stateless: each test gets fresh objects."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_REAL = PROJECT_ROOT.parent / "shared" / "fixtures" / "real"


def pytest_configure(config):
    # A shell without job control starts a background job (`make test &`, nohup) with SIGINT ignored, and Python then
    # installs no Ctrl-C handler, in this process or in the test scripts it starts: the Trainer rightly leaves such a
    # signal alone, and every interrupt test failed. The suite runs with Ctrl-C's usual handler (children inherit it
    # as the default action, and Python installs its own there).
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def real_fixture(name: str) -> Path:
    """Path to a real sensor recording in ../shared/fixtures/real, or skip the test with the reason."""
    path = SHARED_REAL / name
    if not path.is_file():
        pytest.skip(f"real fixture {name!r} not found at {path} (../shared is absent in this clone)")
    return path


_LOOPBACK = ("127.", "::1", "localhost", "0.0.0.0")


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """No test downloads: NEUROSIM_OFFLINE makes neurosim refuse (in subprocesses too, which inherit it), and a
    socket may connect to this machine only (the DDP tests' rendezvous). A test of the download path unsets it."""
    import socket

    monkeypatch.setenv("NEUROSIM_OFFLINE", "1")
    connect = socket.socket.connect

    def local_only(sock, address):
        host = address[0] if isinstance(address, tuple) else None
        if host is not None and not str(host).startswith(_LOOPBACK):
            raise OSError(f"a test tried to connect to {address!r}: tests run offline")
        return connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", local_only)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A private, empty neurosim cache directory for one test."""
    monkeypatch.setenv("NEUROSIM_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def real_file():
    """``real_file(name)``: path of a real recording in ../shared/fixtures/real (skips the test where absent)."""
    return real_fixture


@pytest.fixture
def disk_full_at(monkeypatch):
    """``disk_full_at("frames.png")``: from then on, saving a figure of that name fails as a full disk does."""
    import errno

    import neurosim.viz as viz

    real = viz.save_figure

    def make_full(name: str) -> None:
        def save(fig, path, *a, **kw):
            if path.name == name:
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
            return real(fig, path, *a, **kw)

        monkeypatch.setattr(viz, "save_figure", save)

    return make_full


@pytest.fixture(scope="session")
def _event_digits_dir(tmp_path_factory):
    from neurosim.data.event_digits import load_event_digits

    root = tmp_path_factory.mktemp("neurosim_cache")
    load_event_digits(root, progress=False)  # the full set, built once per session (~20 s on 2 cores)
    return root


@pytest.fixture
def event_digits_cache(_event_digits_dir, monkeypatch):
    """A neurosim cache directory that already holds the generated event digits (shared by the session)."""
    monkeypatch.setenv("NEUROSIM_CACHE_DIR", str(_event_digits_dir))
    return _event_digits_dir


@pytest.fixture(scope="session")
def _tiny_run(tmp_path_factory, _event_digits_dir):
    """A quickstart run trained briefly on event digits (once per session): its checkpoint path."""
    from neurosim.cli import main

    out = tmp_path_factory.mktemp("tiny_run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NEUROSIM_CACHE_DIR", str(_event_digits_dir))
        args = ["-q", "train", "--config", "quickstart", "--set", "name=tiny", f"out_dir={out}",
                "data.train_subset=32", "data.test_subset=16", "data.time_steps=4", "train.epochs=1"]
        assert main(args) == 0
    return out / "tiny" / "checkpoint.pt"


@pytest.fixture
def tiny_checkpoint(_tiny_run, event_digits_cache, tmp_path):
    """A copy of the session's tiny trained checkpoint in this test's own folder (outputs land beside it)."""
    import shutil

    run = tmp_path / "run"
    run.mkdir()
    return Path(shutil.copy(_tiny_run, run / "checkpoint.pt"))

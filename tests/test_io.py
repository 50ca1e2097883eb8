"""Atomic writes leave files with the permissions a plain write would, not the temporary file's private 0600."""

from __future__ import annotations

import errno
import os
import stat

import numpy as np
import pytest

from hardware_models import ActivityProfile
from neurosim._io import atomic_write_text

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_file_is_readable_by_others_as_the_umask_allows(tmp_path, umask_022):
    profile = ActivityProfile(time_steps=2, dt_s=1e-3, samples=1, spikes_per_step={"lif": np.array([1.0, 0.0])})
    for path in (atomic_write_text(tmp_path / "a.txt", "x"), profile.to_json(tmp_path / "activity.json")):
        assert _mode(path) == 0o644, path


def test_rewriting_a_file_keeps_its_permissions(tmp_path, umask_022):
    path = tmp_path / "shared.txt"
    path.write_text("old")
    os.chmod(path, 0o664)  # e.g. a group-writable shared cache
    atomic_write_text(path, "new")
    assert path.read_text() == "new" and _mode(path) == 0o664


def test_temporary_files_of_killed_writes_are_removed_by_the_next_write(tmp_path):
    import os
    import socket
    import subprocess
    import sys
    import time

    from neurosim._io import atomic_write_bytes

    host = socket.gethostname()
    dead_pid = subprocess.Popen([sys.executable, "-c", "pass"])  # a process that has exited
    dead_pid.wait()
    files = {
        f".ck.pt.{host}.{dead_pid.pid}.abc123.tmp": False,  # killed before its rename: removed
        f".ck.pt.{host}.{os.getpid()}.live9999.tmp": True,  # a live writer's (this process): kept
        ".ck.pt.elsewhere.1.zz000000.tmp": True,  # another machine's (a shared filesystem): kept
        ".ck.pt.a1b2c3d4.tmp": True,  # an older neurosim's, recent: kept a day
        ".other.pt.x.1.y.tmp": True,  # another file's: not looked at
    }
    for name in files:
        (tmp_path / name).write_bytes(b"partial")
    old = tmp_path / ".ck.pt.oldstyle.tmp"  # an older neurosim's, a day old: removed
    old.write_bytes(b"partial")
    os.utime(old, (time.time() - 90_000,) * 2)
    atomic_write_bytes(tmp_path / "ck.pt", b"data")
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {"ck.pt"} | {n for n, kept in files.items() if kept}


def test_a_full_disk_during_a_write_names_the_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    import errno

    from neurosim._io import atomic_write_bytes

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")  # what fsync/write raise: no path

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left on device") as info:
        atomic_write_bytes(tmp_path / "ck.pt", b"data")
    assert info.value.filename == str(tmp_path / "ck.pt") and info.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []


def test_an_oserror_without_errno_keeps_its_message(tmp_path, monkeypatch):
    """Naming the file rebuilds the error from its errno; one without (a library's OSError("...")) is left as it
    was, not turned into '[Errno None] None: <path>'."""
    from neurosim._io import atomic_write_bytes

    def broken(fd):
        raise OSError("the device went away")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError, match="^the device went away$"):
        atomic_write_bytes(tmp_path / "ck.pt", b"data")
    assert list(tmp_path.iterdir()) == []  # (ActivityProfile.to_json: test_activity's test_failed_write_...)


def test_a_full_disk_while_writing_an_activity_profile_names_the_file(tmp_path, monkeypatch):
    # hardware_models keeps its own atomic write (it imports no neurosim): it gives the same error as atomic_write_bytes
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    profile = ActivityProfile(time_steps=2, dt_s=1e-3, samples=1, spikes_per_step={"lif": np.array([1.0, 0.0])})
    with pytest.raises(OSError, match="No space left on device") as info:
        profile.to_json(tmp_path / "activity.json")
    assert info.value.filename == str(tmp_path / "activity.json") and info.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []


def test_a_live_writers_temporary_file_is_kept_whatever_its_process_number_says(tmp_path):
    # Containers sharing a host name number their processes apart: a live writer's pid may look dead here.
    import fcntl
    import socket
    import subprocess
    import sys

    from neurosim._io import atomic_write_bytes

    dead_pid = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_pid.wait()
    tmp = tmp_path / f".ck.pt.{socket.gethostname()}.{dead_pid.pid}.abc123.tmp"
    tmp.write_bytes(b"being written")
    with open(tmp, "rb") as writer:
        fcntl.flock(writer, fcntl.LOCK_EX)  # what atomic_write_bytes holds while it writes
        atomic_write_bytes(tmp_path / "ck.pt", b"data")
        assert tmp.exists()
    atomic_write_bytes(tmp_path / "ck.pt", b"data")  # the writer is gone now
    assert not tmp.exists()


def test_a_run_folder_is_held_by_one_run_at_a_time(tmp_path):
    import subprocess
    import sys

    from neurosim._io import hold_run_folder

    run = tmp_path / "run"
    with hold_run_folder(run, "train"):
        (run / "metrics.jsonl").write_text("{}\n")
        other = subprocess.run([sys.executable, "-c", "from neurosim._io import hold_run_folder\n"
                                f"with hold_run_folder({str(run)!r}, 'lsm'): pass"], capture_output=True, text=True)
        assert other.returncode == 1 and "RunFolderBusyError" in other.stderr
        assert f"{run} is in use by neurosim train (process {os.getpid()} " in other.stderr
    with hold_run_folder(run, "lsm"):  # released at the end (and by the system when a process dies)
        pass
    assert sorted(p.name for p in run.iterdir()) == ["metrics.jsonl"]  # the lock file goes with the run


def test_a_run_that_failed_before_any_output_leaves_no_folder(tmp_path):
    from neurosim._io import hold_run_folder

    with pytest.raises(ValueError, match="bad labels"):
        with hold_run_folder(tmp_path / "run", "train"):
            raise ValueError("bad labels")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "kept").mkdir()
    with hold_run_folder(tmp_path / "kept", "train"):
        pass
    assert (tmp_path / "kept").is_dir()  # a folder that was there stays


@pytest.mark.parametrize("argv", [
    ["train", "--config", "quickstart"],
    ["continual", "--config", "continual_pmnist_digits"],
    ["lsm", "--config", "lsm_event_digits"],
])
def test_a_second_run_in_a_busy_folder_is_refused_before_any_work(tmp_path, capsys, argv):
    import subprocess
    import sys

    from neurosim.cli import main

    run = tmp_path / "busy"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from neurosim._io import hold_run_folder\n"
                               f"with hold_run_folder({str(run)!r}, 'train'):\n"
                               "    print('held', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main([*argv, "--set", f"out_dir={tmp_path}", "name=busy"]) == 2
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err
    assert f"{run} is in use by neurosim train (process {holder.pid} " in err and err.count("\n") == 1
    assert sorted(p.name for p in run.iterdir()) == [".lock"]  # nothing of the refused run


def test_a_hold_inside_the_same_processes_hold_and_folders_made_for_nothing(tmp_path):
    from neurosim._io import hold_run_folder

    run = tmp_path / "a" / "b" / "run"
    with pytest.raises(ValueError, match="failed"):
        with hold_run_folder(run, "train"):
            raise ValueError("failed")
    assert list(tmp_path.iterdir()) == []  # the parents it made went too
    with hold_run_folder(run, "demo"):
        with hold_run_folder(run, "train"):  # demo's training inside demo's own hold
            (run / "checkpoint.pt").write_bytes(b"x")
        assert (run / ".lock").exists()  # the inner hold did not release the outer one
        assert "neurosim demo" in (run / ".lock").read_text()
    with hold_run_folder(run, "train"):
        pass
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt"]


def test_writes_go_on_where_the_file_system_has_no_locks(tmp_path, monkeypatch):
    import errno
    import fcntl

    from neurosim._io import atomic_write_bytes, hold_run_folder

    def no_locks(*args):
        raise OSError(errno.ENOLCK, "No locks available")  # NFS without its lock daemon

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with hold_run_folder(tmp_path / "run", "train"):
        atomic_write_bytes(tmp_path / "run" / "ck.pt", b"data")
        atomic_write_bytes(tmp_path / "run" / "ck.pt", b"data2")
    assert (tmp_path / "run" / "ck.pt").read_bytes() == b"data2"
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["ck.pt"]


def test_a_second_demo_is_told_to_use_another_out_folder(tmp_path):
    import subprocess
    import sys

    from neurosim._io import hold_run_folder

    with hold_run_folder(tmp_path / "demo", "demo", "give demo another --out folder"):
        r = subprocess.run([sys.executable, "-m", "neurosim", "-q", "demo", "--out", str(tmp_path)],
                           capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "give demo another --out folder" in r.stderr and "--set" not in r.stderr


class _FullDiskFile:
    """A text file on a full disk: writes are buffered, and flushing them (flush() or close()) raises a pathless
    ENOSPC, as a full file system does."""

    def __init__(self, f):
        self.f, self.pending = f, False

    def __getattr__(self, name):
        return getattr(self.f, name)

    def write(self, text):
        self.pending = True
        return len(text)

    def flush(self):
        if self.pending:
            raise OSError(errno.ENOSPC, "No space left on device")

    def close(self):
        self.f.close()
        self.flush()


def test_a_full_disk_at_the_run_folders_lock_names_the_lock_file(tmp_path, monkeypatch):
    # the holder line's write failed without a path, and close() in the cleanup raised a second pathless error
    # that replaced the first: the user saw only "No space left on device"
    import builtins

    import neurosim._io as io_module

    monkeypatch.setattr(io_module, "open", lambda *a, **kw: _FullDiskFile(builtins.open(*a, **kw)), raising=False)
    with pytest.raises(OSError) as info:
        with io_module.hold_run_folder(tmp_path / "runs" / "x", "train"):
            pass
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / "runs" / "x" / ".lock")
    assert not (tmp_path / "runs").exists()  # nothing left behind


def test_a_failing_close_of_the_lock_does_not_hide_the_runs_own_error(tmp_path, monkeypatch):
    import builtins

    import neurosim._io as io_module

    class LateFull(_FullDiskFile):
        def write(self, text):  # the holder line lands; the close fails
            self.pending = False
            return len(text)

        def close(self):
            self.f.close()
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io_module, "open", lambda *a, **kw: LateFull(builtins.open(*a, **kw)), raising=False)
    with pytest.raises(ValueError, match="bad labels"):
        with io_module.hold_run_folder(tmp_path / "run", "train"):
            raise ValueError("bad labels")

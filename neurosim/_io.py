"""Atomic file writes: data lands in a temporary file in the same folder, then ``os.replace`` moves it over the
target, so an interrupted run never leaves a half-written file behind. The file gets the permissions a plain
``open(path, "w")`` would give it (the target's own when it exists, else 0666 less the umask), not the
temporary file's private 0600: a shared cache or dataset file stays readable by the others."""

from __future__ import annotations

import glob
import os
import socket
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks; the checks below rely on them where they exist
    fcntl = None

__all__ = ["AtomicFile", "OutputPathError", "RunFolderBusyError", "atomic_write_bytes", "atomic_write_text",
           "check_output_file", "check_output_folder", "hold_run_folder", "new_file_mode"]


def new_file_mode(path: str | Path) -> int:
    """The permission bits ``open(path, "w")`` would leave ``path`` with: its own if it exists, else 0666 & ~umask."""
    try:
        return os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _tmp_prefix(path: Path) -> str:
    return f".{path.name}.{socket.gethostname()}.{os.getpid()}."


def _remove_stale_temps(path: Path) -> None:
    """Remove the temporary files that writes of ``path`` killed before their rename left (a stopped run's
    checkpoint or frame cache can be gigabytes): those of this machine whose process is gone, and any older than a
    day (e.g. from an older neurosim that named them without machine and process). A live writer's is kept: it
    holds a lock on its temporary file while writing, which also protects it where the process number cannot tell
    (containers sharing a host name, each with its own process numbers)."""
    host = socket.gethostname()
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        rest = tmp.name[len(path.name) + 2: -len(".tmp")]  # "<host>.<pid>.<random>" or "<random>"
        owner, _, pid_rand = rest.rpartition(".")[0].rpartition(".")
        try:
            gone = owner == host and not _alive(int(pid_rand))
            if gone or time.time() - tmp.stat().st_mtime > 86400:
                _unlink_unless_locked(tmp)
        except (ValueError, OSError):  # not ours to parse, or removed meanwhile
            continue


def _unlink_unless_locked(tmp: Path) -> None:
    if fcntl is None:
        tmp.unlink()
        return
    with open(tmp, "rb") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a writer holds it: alive, whatever its process number says
            return
        except OSError:  # a file system without locks: the process number decides alone
            pass
        tmp.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _raise_naming(e: OSError, path: str | Path):
    """Raise ``e`` (being handled), naming ``path`` where it names no file: a full disk raises from ``write()``
    without a path. An errno-less OSError keeps its own message."""
    if e.filename is None and e.errno is not None:
        raise OSError(e.errno, e.strerror, str(path)) from e
    raise e


class AtomicFile:
    """``path`` written piece by piece into a temporary file beside it, which :meth:`commit` moves over ``path``
    (:func:`atomic_write_bytes` for data that is never whole in memory: a split's frames, one sample at a time).
    The temporary file is locked while open, so that another writer's cleanup of stale temporaries leaves it alone;
    those that earlier, interrupted writes of ``path`` left behind are removed first. :meth:`discard` removes it.

    ``write`` and ``commit`` raise the ``OSError`` of a failed write naming ``path`` (a full disk raises without a
    path), the temporary file removed.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(self.path)
        fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(self.path), suffix=".tmp", dir=self.path.parent)
        self.tmp = Path(tmp)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # held until closed: another writer's cleanup leaves this file alone
            except OSError:  # a file system without locks (NFS without its lock daemon): write without
                pass
        self.file = os.fdopen(fd, "wb")

    def write(self, data) -> None:
        """Append ``data`` (any bytes-like object)."""
        try:
            self.file.write(data)
        except OSError as e:
            self.discard()
            _raise_naming(e, self.path)

    def commit(self) -> Path:
        """Flush, sync and move the file over ``path``, with the permissions ``open(path, "w")`` would give it."""
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            os.chmod(self.tmp, new_file_mode(self.path))
            os.replace(self.tmp, self.path)
        except OSError as e:
            self.discard()
            _raise_naming(e, self.path)
        return self.path

    def discard(self) -> None:
        """Remove the temporary file (nothing is written to ``path``)."""
        try:
            self.file.close()
        except OSError:  # (a full disk fails the close's flush too: the file goes all the same)
            pass
        self.tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same folder + ``os.replace``); temporary files that
    earlier, interrupted writes of ``path`` left behind are removed first."""
    f = AtomicFile(path)
    try:
        f.write(data)
        return f.commit()
    except BaseException:
        f.discard()
        raise


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write text atomically (UTF-8)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


class OutputPathError(ValueError):
    """An output path that cannot be written (a file where a folder must go, a folder without write permission)."""


class RunFolderBusyError(OutputPathError):
    """A run folder another process is writing (two runs in one folder would overwrite each other's results)."""


@contextmanager
def hold_run_folder(run_dir: str | Path, command: str, elsewhere: str = "choose another name (--set name=...)"):
    """Hold run folder ``run_dir`` for this process while the block runs: a second run in the same folder (of
    train, continual, lsm or demo: the commands that hold theirs) is refused, naming this one and saying what to
    do instead (``elsewhere``), instead of both writing into it.

    The lock is an advisory ``flock`` on ``<run_dir>/.lock``, a file that says who holds it and is removed at the
    end. The system releases the lock when the process ends, however it ends, so a killed run never leaves the
    folder locked (only the file, which the next run takes over).
    File systems without ``flock`` (some network mounts) and Windows run without the check.

    Raises:
        RunFolderBusyError: another live process holds the folder.
    """
    run_dir = Path(run_dir)
    key = os.path.abspath(run_dir)
    if fcntl is None or key in _HELD:  # (a hold inside this process's own, e.g. demo's training: already held)
        yield run_dir
        return
    made = [p for p in (run_dir, *run_dir.parents) if not p.exists()]  # the folders this run creates, deepest first
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = run_dir / ".lock"
    while True:
        f = open(lock, "a+", encoding="utf-8")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            _remove_empty(made)
            raise RunFolderBusyError(f"{run_dir} is in use by {holder}; two runs in one folder would overwrite each "
                                     f"other's results: wait for it to finish, or {elsewhere}") from None
        except OSError:  # no flock on this file system: run without the check
            break
        try:  # the file locked must still be the folder's lock (a run that made no output removes it at its end)
            if os.stat(lock).st_ino == os.fstat(f.fileno()).st_ino:
                break
        except FileNotFoundError:
            pass
        f.close()
    _HELD.add(key)
    try:
        try:
            f.seek(0)
            f.truncate()
            f.write(f"neurosim {command} (process {os.getpid()} on {socket.gethostname()}, since "
                    f"{time.strftime('%Y-%m-%d %H:%M:%S')})\n")
            f.flush()
        except OSError as e:
            _raise_naming(e, lock)
        yield run_dir
    finally:
        _HELD.discard(key)
        try:
            lock.unlink()  # still ours: the others refuse while it is held, and re-open a lock file that vanished
        except OSError:
            pass
        _remove_empty(made)  # a run that failed before any output leaves no folder behind
        try:
            f.close()  # releases the lock
        except OSError:  # the holder line still buffered (a full disk): the file is gone, and an error of the
            pass  # run (or of the line's write, above) is what to report, not this one


_HELD: set[str] = set()  # run folders this process holds (hold_run_folder)


def _remove_empty(folders: list[Path]) -> None:
    """Remove these folders, deepest first, while they are empty."""
    for p in folders:
        try:
            p.rmdir()
        except OSError:
            return


def check_output_folder(path: str | Path, what: str) -> Path:
    """Check, before any work, that folder ``path`` exists or can be made and written; ``what`` names the setting
    in the error (``out_dir``, ``--out``)."""
    path = Path(path)
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                raise OutputPathError(f"{what}: {p} is a file, not a folder" + (f" (the output goes to {path})"
                                                                                if p != path else ""))
            if not os.access(p, os.W_OK | os.X_OK):
                read_only = bool(os.statvfs(p).f_flag & os.ST_RDONLY)
                raise OutputPathError(f"{what}: cannot write in {p} ("
                                      + ("a read-only file system" if read_only else "no permission")
                                      + f"); choose another {what.split()[0]}")
            break
    return path


def check_output_file(path: str | Path, what: str) -> Path:
    """Check, before any work, that file ``path`` can be written: not a folder, its folder writable."""
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{what}: {path} is a folder; give a file name")
    check_output_folder(path.parent, what)
    return path

"""Where neurosim keeps generated and converted data.

The default is ``~/.cache/neurosim``; set ``NEUROSIM_CACHE_DIR`` to move it (tests point it at a temporary
folder). Nothing here downloads anything.
"""

from __future__ import annotations

import errno
import os
import warnings
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from neurosim._io import atomic_write_bytes

ENV_VAR = "NEUROSIM_CACHE_DIR"


def default_cache_dir() -> Path:
    """Return the cache root, creating nothing.

    Returns ``$NEUROSIM_CACHE_DIR`` when set, else ``$XDG_CACHE_HOME/neurosim``, else ``~/.cache/neurosim``.
    """
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "neurosim"


class CacheWriteError(OSError):
    """A cache entry that had to be written (inside :func:`writes_required`, e.g. ``neurosim datasets prepare``)
    could not be: the message names the file, the cause and what to do; ``errno`` and ``filename`` are the
    system's."""

    def __str__(self) -> str:
        return self.strerror


_REQUIRED: ContextVar[bool] = ContextVar("neurosim_cache_writes_required", default=False)


@contextmanager
def writes_required():
    """Inside this block :func:`store` raises :class:`CacheWriteError` instead of warning: for a caller whose only
    job is to fill the cache (``DatasetInfo.prepare``)."""
    token = _REQUIRED.set(True)
    try:
        yield
    finally:
        _REQUIRED.reset(token)


_FAILED: set[Path] = set()  # entries whose store warned in this process


def store_failed(path: Path) -> bool:
    """Whether :func:`store` could not write ``path`` in this process (and warned why)."""
    return Path(path) in _FAILED


def _advice(e: OSError, setting: str | None = None) -> str:
    """What makes the cache writable again, for the cause of ``e``; ``setting``: what chose a folder outside the
    neurosim cache, named instead of the cache's environment variable."""
    if setting is not None:
        verb = "free space on that disk, or" if e.errno in (errno.ENOSPC, errno.EDQUOT) else ""
        return f"{verb} set {setting} to a folder you can write, or leave it unset (the neurosim cache)".lstrip()
    env = os.environ.get(ENV_VAR)
    now = f" (it is {env} now)" if env else ""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"free space on that disk, or set {ENV_VAR} to a folder on a disk with space{now}"
    if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"set {ENV_VAR} to a folder you can write{now}"
    return f"check that folder, or set {ENV_VAR} to another one{now}"


def store(path: Path, data: bytes | memoryview, what: str, setting: str | None = None) -> bool:
    """Write cache entry ``path`` atomically (``data`` any bytes-like object: a memoryview of an array is written
    without a copy); a cache folder that cannot be written (read-only, full) costs the
    cache, not the run: a warning naming ``what``, the file, the cause and what to do, and False. Inside
    :func:`writes_required` it raises :class:`CacheWriteError` instead. ``setting``: what chose the folder when it
    is not the neurosim cache (e.g. ``data.root``), named in the advice instead of the cache's variable."""
    try:
        atomic_write_bytes(path, data)
    except OSError as e:
        write_failed(path, e, what, setting, stacklevel=4)
        return False
    return True


def write_failed(path: Path, e: OSError, what: str, setting: str | None = None, stacklevel: int = 3) -> None:
    """What :func:`store` does when cache entry ``path`` could not be written (``e``), for a writer of its own (the
    frames of a split, written as they are converted): a warning naming ``what``, the file, the cause and what to
    do (``stacklevel`` as :func:`warnings.warn`'s, from this function), or inside :func:`writes_required` a
    :class:`CacheWriteError`."""
    path = Path(path)
    cause = e.strerror or str(e)
    if _REQUIRED.get():
        raise CacheWriteError(e.errno, f"could not store {what} in {path} ({cause}): {_advice(e, setting)}, "
                              "then run this again", str(path)) from e
    _FAILED.add(path)
    # the file's name in the text: each split's frames warn (a warning's text is shown once per line)
    folder = "the cache folder" if setting is None else "the folder"
    warnings.warn(f"could not store {what} in {folder} {path.parent} ({path.name}: {cause}): this run uses "
                  f"them from memory, and the next run makes them again unless you {_advice(e, setting)}",
                  RuntimeWarning, stacklevel=stacklevel)

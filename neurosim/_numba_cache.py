"""A writable folder for numba's compiled-kernel cache, so that neurosim imports where it cannot write.

neurosim's kernels are compiled with ``numba.njit(cache=True)``. numba stores them next to the source
(``__pycache__``) or, where that is not writable, under the user's cache folder (``$XDG_CACHE_HOME`` or
``~/.cache``, then ``numba/``). Where neither can be written (neurosim installed by root and run as another user
whose HOME is ``/`` or read-only: ``docker run --user``, systemd's DynamicUser, ``nobody``), numba refuses to
compile any cached function: ``RuntimeError: cannot cache function ... no locator available``, at import.

:func:`use_writable_numba_cache` runs when ``neurosim`` is imported: in that case only, and unless the user chose
a folder (``NUMBA_CACHE_DIR``), it points numba at ``<temp dir>/neurosim-numba-<uid>``, so kernels compile (and
are cached there for the next run).

It also makes a cache that cannot be written *after* compiling cost the cache, not the run
(:func:`warn_on_failed_cache_saves`): numba tests a cache folder by creating an empty file, which works on a full
disk, and then fails to save the compiled kernel with a bare ``OSError: No space left on device`` that stops the
run at its first kernel, though the kernel is compiled. A failed save is a ``RuntimeWarning`` naming the cache
folder instead, and the kernel runs uncached.
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from pathlib import Path

__all__ = ["use_writable_numba_cache", "warn_on_failed_cache_saves"]


def _writable(folder: Path) -> bool:
    """Whether numba could cache in ``folder``: create the folder, then a file in it with data (numba's own test
    writes an empty file, which a full disk allows)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder) as f:
            f.write(b"\0" * 4096)
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        return False
    return True


def warn_on_failed_cache_saves() -> None:
    """Make numba's save of a compiled kernel to its cache warn instead of raise when the cache cannot be written
    (a full disk, a quota): a ``RuntimeWarning`` naming the kernel, the cache folder and the cause, and the kernel,
    compiled already, runs uncached. Wraps ``numba.core.caching.Cache.save_overload`` (numba >= 0.58) once."""
    from numba.core import caching

    save = caching.Cache.save_overload
    if getattr(save, "_neurosim_warns", False):
        return

    def save_overload(self, sig, data):
        try:
            save(self, sig, data)
        except OSError as e:
            where = e.filename or getattr(self, "_cache_path", None) or "numba's cache folder"
            name = re.sub(r"^<function (\S+) at .*>$", r"\1", str(getattr(self, "_name", "kernel")))
            warnings.warn(f"numba could not cache the compiled kernel {name} in {where} "
                          f"({e.strerror or e}): it runs uncached, and is compiled again in the next run. Free "
                          "space there, or set NUMBA_CACHE_DIR to a writable folder with space",
                          RuntimeWarning, stacklevel=2)

    save_overload._neurosim_warns = True
    caching.Cache.save_overload = save_overload


def use_writable_numba_cache(package_dir: Path = Path(__file__).parent, environ=os.environ,
                             writable=_writable) -> str | None:
    """Set ``NUMBA_CACHE_DIR`` to a temporary folder when numba could write neither beside neurosim's sources nor
    in the user's cache folder.

    Args:
        package_dir: neurosim's installed folder (numba caches in its ``__pycache__`` when it can).
        environ: the environment to read and set.
        writable: the folder test (numba's own: create the folder and a file in it).

    Returns:
        The folder set, or None when numba's own choice works or the user set ``NUMBA_CACHE_DIR``.

    Also calls :func:`warn_on_failed_cache_saves` (neurosim's import runs this function before any kernel compiles).
    """
    try:
        return _choose_cache_dir(package_dir, environ, writable)
    finally:
        warn_on_failed_cache_saves()


def _choose_cache_dir(package_dir: Path, environ, writable) -> str | None:
    if environ.get("NUMBA_CACHE_DIR"):
        return None
    user_cache = Path(environ.get("XDG_CACHE_HOME") or Path(environ.get("HOME") or "~").expanduser() / ".cache")
    if writable(package_dir / "__pycache__") or writable(user_cache / "numba"):
        return None
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    folder = Path(tempfile.gettempdir()) / f"neurosim-numba-{uid}"
    if not writable(folder):
        return None  # nothing writable at all: numba's own error names the function
    environ["NUMBA_CACHE_DIR"] = str(folder)
    import sys

    if "numba" in sys.modules:  # imported before neurosim: numba read its settings already
        sys.modules["numba"].config.CACHE_DIR = str(folder)
    return str(folder)

"""A writable folder for numba's compiled-kernel cache, so that neurosim imports where it cannot write.

neurosim's kernels are compiled with ``numba.njit(cache=True)``. numba stores them next to the source
(``__pycache__``) or, where that is not writable, under the user's cache folder (``$XDG_CACHE_HOME`` or
``~/.cache``, then ``numba/``). Where neither can be written (neurosim installed by root and run as another user
whose HOME is ``/`` or read-only: ``docker run --user``, systemd's DynamicUser, ``nobody``), numba refuses to
compile any cached function: ``RuntimeError: cannot cache function ... no locator available``, at import.

:func:`use_writable_numba_cache` runs when ``neurosim`` is imported: in that case only, and unless the user chose
a folder (``NUMBA_CACHE_DIR``), it points numba at ``<temp dir>/neurosim-numba-<uid>``, so kernels compile (and
are cached there for the next run).

Where the install's ``__pycache__`` is on a full disk (or over a quota), numba still picks it: its test of a folder
creates an empty file, which a full disk allows. Each run then compiled every kernel again and warned that it could
not cache them. There, and unless the user chose a folder, :func:`use_writable_numba_cache` points numba at the user's
cache folder (``<user cache>/numba``, where numba's own fallback caches, in the same layout), or the temporary folder
when that cannot be written either. ``NUMBA_CACHE_DIR`` then applies to the whole process and the processes it starts:
other packages' cached numba functions go there too, as they would with the variable exported. An install whose
``__pycache__`` is writable, or read-only (numba falls back by itself), is left to numba's choice.

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


def _writable(folder: Path, data: bool = True) -> bool:
    """Whether numba could cache in ``folder``: create the folder, then a file in it with data (numba's own test
    writes an empty file, which a full disk allows: ``data=False``, :func:`_numba_would_use`)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder) as f:
            if data:
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


def _numba_would_use(folder: Path) -> bool:
    """Whether numba would pick ``folder`` for its cache: its own test, create the folder and an empty file in it
    (``numba.core.caching._CacheLocator.ensure_cache_path``), which a full disk passes."""
    return _writable(folder, data=False)


def use_writable_numba_cache(package_dir: Path = Path(__file__).parent, environ=os.environ,
                             writable=_writable, numba_would_use=_numba_would_use) -> str | None:
    """Set ``NUMBA_CACHE_DIR`` where numba would otherwise cache nowhere, or somewhere its saves fail: when it could
    write neither beside neurosim's sources nor in the user's cache folder (a temporary folder then), and when the
    sources' ``__pycache__`` passes numba's own test but takes no data (a full disk: the user's cache folder then).

    Args:
        package_dir: neurosim's installed folder (numba caches in its ``__pycache__`` when it can).
        environ: the environment to read and set.
        writable: the folder test that a kernel can be saved there (create the folder and write data in it).
        numba_would_use: numba's own folder test (create the folder and an empty file in it).

    Returns:
        The folder set, or None when numba's own choice works or the user set ``NUMBA_CACHE_DIR``.

    Also calls :func:`warn_on_failed_cache_saves` (neurosim's import runs this function before any kernel compiles).
    """
    try:
        return _choose_cache_dir(package_dir, environ, writable, numba_would_use)
    finally:
        warn_on_failed_cache_saves()


def _choose_cache_dir(package_dir: Path, environ, writable, numba_would_use) -> str | None:
    if environ.get("NUMBA_CACHE_DIR"):
        return None
    user_cache = Path(environ.get("XDG_CACHE_HOME") or Path(environ.get("HOME") or "~").expanduser() / ".cache")
    in_tree = package_dir / "__pycache__"
    if writable(in_tree):
        return None
    if writable(user_cache / "numba"):
        if not numba_would_use(in_tree):
            return None  # read-only: numba falls back to the user's cache folder by itself
        # a full disk: numba would pick __pycache__ and fail to save every kernel, in every run. Its own fallback's
        # folder, where NUMBA_CACHE_DIR gives each source folder the subfolder that fallback gives it
        return _point_numba_at(user_cache / "numba", environ)
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    folder = Path(tempfile.gettempdir()) / f"neurosim-numba-{uid}"
    if not writable(folder):
        return None  # nothing writable at all: numba's own error names the function
    return _point_numba_at(folder, environ)


def _point_numba_at(folder: Path, environ) -> str:
    environ["NUMBA_CACHE_DIR"] = str(folder)
    import sys

    if "numba" in sys.modules:  # imported before neurosim: numba read its settings already
        sys.modules["numba"].config.CACHE_DIR = str(folder)
    return str(folder)

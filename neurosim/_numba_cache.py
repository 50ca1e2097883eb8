"""A writable folder for numba's compiled-kernel cache, so that neurosim imports where it cannot write.

neurosim's kernels are compiled with ``numba.njit(cache=True)``. numba stores them next to the source
(``__pycache__``) or, where that is not writable, under the user's cache folder (``$XDG_CACHE_HOME`` or
``~/.cache``, then ``numba/``). Where neither can be written (neurosim installed by root and run as another user
whose HOME is ``/`` or read-only: ``docker run --user``, systemd's DynamicUser, ``nobody``), numba refuses to
compile any cached function: ``RuntimeError: cannot cache function ... no locator available``, at import.

:func:`use_writable_numba_cache` runs when ``neurosim`` is imported: in that case only, and unless the user chose
a folder (``NUMBA_CACHE_DIR``), it points numba at ``<temp dir>/neurosim-numba-<uid>``, so kernels compile (and
are cached there for the next run).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["use_writable_numba_cache"]


def _writable(folder: Path) -> bool:
    """Whether numba could cache in ``folder`` (its own test: create the folder, then a file in it)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError:
        return False
    return True


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
    """
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

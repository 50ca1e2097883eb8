"""Where neurosim keeps generated and converted data.

The default is ``~/.cache/neurosim``; set ``NEUROSIM_CACHE_DIR`` to move it (tests point it at a temporary
folder). Nothing here downloads anything.
"""

from __future__ import annotations

import os
import warnings
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


def store(path: Path, data: bytes, what: str, advice: str = "") -> bool:
    """Write cache entry ``path`` atomically; a cache folder that cannot be written (read-only, full) costs the
    cache, not the run: a warning naming ``what`` (and ``advice``), and False."""
    try:
        atomic_write_bytes(path, data)
    except OSError as e:
        warnings.warn(f"could not store {what} in the cache folder {path.parent} ({e.strerror or e}{advice}): they "
                      "are used from memory this time and made again next time", RuntimeWarning, stacklevel=3)
        return False
    return True

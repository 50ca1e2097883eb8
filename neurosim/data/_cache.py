"""Where neurosim keeps generated and converted data.

The default is ``~/.cache/neurosim``; set ``NEUROSIM_CACHE_DIR`` to move it (tests point it at a temporary
folder). Nothing here downloads anything.
"""

from __future__ import annotations

import os
from pathlib import Path

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

"""Where a warning should point: the first line outside neurosim that led to it."""

from __future__ import annotations

import sys
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent  # the neurosim package folder


def caller_stacklevel() -> int:
    """The ``stacklevel`` for a ``warnings.warn`` made in the function that calls this one that points at the first
    caller outside neurosim (a user's ``evaluate_checkpoint(...)`` line, not where neurosim calls ``load_run``);
    under the command line, where every caller is neurosim's, the outermost of them."""
    frame, level, outermost = sys._getframe(2), 2, 2  # (the warning function's caller: stacklevel 2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith("<"):  # (not python -m's runpy, <frozen runpy>)
            if not Path(filename).resolve().is_relative_to(_PACKAGE):
                return level
            outermost = level
        frame, level = frame.f_back, level + 1
    return outermost

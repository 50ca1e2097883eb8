"""Where a warning should point: the first line outside neurosim that led to it."""

from __future__ import annotations

import sys
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent  # the neurosim package folder


def _torch_folder() -> Path | None:
    """torch's package folder: its frames between neurosim's and the user's (``torch.no_grad()`` as a decorator,
    ``nn.Module.__call__``) are passed over as neurosim's are."""
    module = sys.modules.get("torch")
    file = getattr(module, "__file__", None)
    return Path(file).resolve().parent if file else None


def caller_stacklevel() -> int:
    """The ``stacklevel`` for a ``warnings.warn`` made in the function that calls this one that points at the first
    caller outside neurosim (a user's ``evaluate_checkpoint(...)`` line, not where neurosim calls ``load_run``),
    passing over torch's frames too (a method decorated with ``torch.no_grad()``, a layer's ``forward`` called
    through ``nn.Module.__call__``: the warning pointed into torch); under the command line, where every caller is
    neurosim's, the outermost of them."""
    frame, level, outermost = sys._getframe(2), 2, 2  # (the warning function's caller: stacklevel 2)
    torch_folder = _torch_folder()
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith("<"):  # (not python -m's runpy, <frozen runpy>)
            path = Path(filename).resolve()
            if torch_folder is not None and path.is_relative_to(torch_folder):
                pass  # (torch's own frames: neither the user's line nor neurosim's outermost)
            elif not path.is_relative_to(_PACKAGE):
                return level
            else:
                outermost = level
        frame, level = frame.f_back, level + 1
    return outermost

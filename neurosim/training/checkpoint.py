"""Atomic file writes and checkpoints.

Everything a run writes goes through :func:`atomic_write_bytes` / :func:`save_checkpoint`: the data lands in a
temporary file in the same folder and is moved over the target with ``os.replace``, so an interrupted run never
leaves a half-written checkpoint or metrics file behind.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from neurosim._io import atomic_write_bytes, atomic_write_text

__all__ = ["CheckpointError", "atomic_write_bytes", "atomic_write_text", "checkpoint_file", "load_checkpoint",
           "load_weights", "save_checkpoint"]

CHECKPOINT_FORMAT = 1


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, or not a neurosim checkpoint."""


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Save a checkpoint dict atomically; adds the format version."""
    buf = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, **payload}, buf)
    return atomic_write_bytes(path, buf.getvalue())


def checkpoint_file(path: str | Path) -> Path:
    """``path``, or the ``checkpoint.pt`` in it when it is a run folder.

    Raises:
        CheckpointError: a folder without a ``checkpoint.pt``.
    """
    path = Path(path)
    if path.is_dir():
        if not (path / "checkpoint.pt").is_file():
            raise CheckpointError(f"{str(path)!r} is a folder without a checkpoint.pt; give the checkpoint file")
        return path / "checkpoint.pt"
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (``path`` may be a run folder holding ``checkpoint.pt``).

    Raises:
        CheckpointError: the file is missing, truncated/corrupt, or not a neurosim checkpoint.
    """
    path = checkpoint_file(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # torch raises several types for corrupt files
        raise CheckpointError(f"checkpoint {str(path)!r} could not be read ({type(e).__name__}: {e})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{str(path)!r} is not a neurosim checkpoint (format {CHECKPOINT_FORMAT})")
    return payload


def load_weights(model: torch.nn.Module, state: dict[str, Any], path: str | Path) -> None:
    """``model.load_state_dict(state)``; weights that do not fit the model (edited, or from another config) are a
    :class:`CheckpointError` naming the checkpoint and the first mismatches, not torch's multi-line error."""
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as e:
        lines = [ln.strip() for ln in str(e).splitlines()[1:] if ln.strip()] or [str(e)]
        detail = "; ".join(lines[:3]) + (f"; and {len(lines) - 3} more" if len(lines) > 3 else "")
        raise CheckpointError(f"checkpoint {str(path)!r}: its weights do not fit the model its config builds "
                              f"({detail})") from None

"""What a training history (``Trainer.history``, or ``metrics.jsonl`` read back) says about model selection: the
best validation epoch (the one ``best.pt`` keeps) and early stopping (``train.patience``). Plain Python, no torch:
the figures (:mod:`neurosim.viz`) read it too."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["best_epoch", "patience_spent", "stopped_early"]


def best_epoch(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The metrics of the epoch that :meth:`~neurosim.training.Trainer.fit` keeps in ``best.pt``: the highest
    ``val_acc`` (ties: the lower ``val_loss``, a missing or non-finite one last, then the earlier epoch); None for a
    run without validation. (In ``metrics.jsonl`` a non-finite loss is null.)"""
    def key(m: dict[str, Any]) -> tuple[float, float]:
        loss = m.get("val_loss")
        return m["val_acc"], -loss if isinstance(loss, (int, float)) and math.isfinite(loss) else -math.inf

    return max((m for m in history if m.get("val_acc") is not None), key=key, default=None)


def patience_spent(history: list[dict[str, Any]], patience: int | None) -> bool:
    """Whether the last ``patience`` epochs of ``history`` brought no better validation epoch than
    :func:`best_epoch` (False for ``patience`` None or a history without validation)."""
    best = best_epoch(history)
    return patience is not None and best is not None and history[-1]["epoch"] - best["epoch"] >= patience


def stopped_early(history: list[dict[str, Any]], patience: int | None) -> bool:
    """Whether training ended early, before its planned epochs, because its ``patience`` was spent: the last epoch
    is marked ``stopped_early`` (by :meth:`~neurosim.training.Trainer.fit`, where epochs were left) and the patience
    asked now is spent too (a larger one, or None, trains on)."""
    return bool(history) and bool(history[-1].get("stopped_early")) and patience_spent(history, patience)

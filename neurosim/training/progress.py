"""Progress bars over data loaders that leave the loader alone.

``tqdm.auto.tqdm(loader)`` is not a passive wrapper: ``tqdm.auto`` is tqdm's asyncio variant, whose ``__init__``
calls ``iter(loader)`` once and iterating the bar calls it again (tqdm issues #1598, #1467). For a torch
``DataLoader`` each ``iter()`` draws a worker seed from its generator (or torch's global one) and, with
``num_workers = N``, starts N worker processes that prefetch batches: wrapped, every epoch started 2N workers,
loaded batches it threw away, and drew from the random stream, so the same seed trained differently with
``num_workers = 0`` and 2. :func:`loader_bar` makes a bar that only counts; the caller iterates the loader itself,
once, and calls ``bar.update()`` per batch.
"""

from __future__ import annotations

from typing import Any, Iterable

from tqdm.auto import tqdm

__all__ = ["loader_bar", "loader_length"]


def loader_bar(loader: Iterable, desc: str, disable: bool | None, **kwargs: Any) -> tqdm:
    """A progress bar (not yet advanced) for one pass over ``loader``; it never touches ``loader`` but for
    ``len(loader)``, its total where the loader has a length.

    Args:
        loader: what the caller is about to iterate (once).
        desc: the bar's label.
        disable: True hides it; None hides it where the output is not a terminal (tqdm's rule).
        **kwargs: other ``tqdm`` options (``leave``, ``dynamic_ncols``, …).

    Example:
        >>> import io
        >>> batches = [1, 2, 3]
        >>> with loader_bar(batches, "epoch 1", disable=False, file=io.StringIO()) as bar:
        ...     for batch in batches:  # the loader's one iteration
        ...         bar.update()
        >>> bar.n, bar.total
        (3, 3)
    """
    return tqdm(total=loader_length(loader), desc=desc, disable=disable, **kwargs)


def loader_length(loader: Iterable) -> int | None:
    """``len(loader)``, or None for an iterable without a length (e.g. a DataLoader of an IterableDataset)."""
    try:
        return len(loader)  # type: ignore[arg-type]
    except (TypeError, AttributeError, NotImplementedError):
        return None

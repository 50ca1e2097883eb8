r"""Continual-learning metrics from the accuracy matrix.

``A[i, j]`` is the test accuracy on task ``j`` after training tasks ``0 … i`` (``N`` tasks, accuracy in points
0–100). As in HLOP (Xiao et al., ICLR 2024) and GEM/GPM before it:

.. math::

    \mathrm{ACC} = \frac{1}{N}\sum_{j=0}^{N-1} A[N-1, j], \qquad
    \mathrm{BWT} = \frac{1}{N-1}\sum_{j=0}^{N-2} \big(A[N-1, j] - A[j, j]\big)

ACC is the mean final accuracy over all tasks; BWT (backward transfer) is how much the final model lost (negative)
or gained on each earlier task compared with just after learning it. BWT is undefined for one task (NaN), and for a
single row of final accuracies ``[1, N]``, the multitask bound's matrix, which has no accuracies just after learning
each task (NaN; its ACC is the mean of that row, as ``MethodResult.acc`` and ``.bwt`` give them).

Example:
    >>> A = [[90, 10, 12],
    ...      [70, 88, 11],
    ...      [60, 80, 85]]
    >>> acc(A), bwt(A)        # (60 + 80 + 85)/3, ((60 − 90) + (80 − 88))/2
    (75.0, -19.0)
    >>> acc([[94, 95, 93]]), bwt([[94, 95, 93]])   # a multitask run: final accuracies only
    (94.0, nan)
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["acc", "bwt", "check_matrix", "seed_std"]


def check_matrix(matrix, final_row: bool = False) -> np.ndarray:
    """``matrix`` as a float ``[N, N]`` array; a clear error for any other shape or missing entries. With
    ``final_row``, a single row of final accuracies ``[1, N]`` (the multitask bound's) is taken too."""
    try:
        a = np.asarray(matrix, dtype=float)
    except ValueError:  # ragged rows, e.g. a lower-triangular list of lists
        lengths = [len(row) for row in matrix] if all(hasattr(row, "__len__") for row in matrix) else "mixed"
        raise ValueError(f"the accuracy matrix must be square [N, N] with N >= 1, got rows of lengths {lengths} "
                         "(fill the entries not measured with nan)") from None
    if final_row and a.ndim == 2 and a.shape[0] == 1 and a.shape[1] >= 1:
        if not np.isfinite(a).all():
            raise ValueError("the final accuracies [1, N] have missing (non-finite) entries")
        return a
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] == 0:
        raise ValueError(f"the accuracy matrix must be square [N, N] with N >= 1"
                         f"{' (or one row of final accuracies [1, N])' if final_row else ''}, got shape {a.shape}")
    n = a.shape[0]
    needed = np.concatenate([a[n - 1], np.diag(a)])
    if not np.isfinite(needed).all():
        raise ValueError("the accuracy matrix has missing (non-finite) entries on its diagonal or last row")
    return a


def acc(matrix) -> float:
    """Average final accuracy ``mean_j A[N−1, j]`` (same units as the matrix; a multitask run's single row
    ``[1, N]`` too)."""
    a = check_matrix(matrix, final_row=True)
    return float(a[-1].mean())


def bwt(matrix) -> float:
    """Backward transfer ``mean_{j<N−1} (A[N−1, j] − A[j, j])``; NaN for a single task and for a multitask run's
    single row of final accuracies ``[1, N]``."""
    a = check_matrix(matrix, final_row=True)
    n = a.shape[0]
    if n < 2:
        return math.nan
    return float(np.mean(a[-1, :-1] - np.diag(a)[:-1]))


def seed_std(values) -> float | None:
    """Sample standard deviation (ddof = 1) of a figure over seeds; None for a single seed (no spread measured)."""
    v = np.asarray(values, dtype=float)
    return float(v.std(ddof=1)) if v.size > 1 else None

"""The ROC AUC the OOD report measures its rules with (exact, by ranks).

Kept beside the report rather than imported from the training package's evaluation, so
that the OOD package never reaches up into training (which imports the report).
"""

from __future__ import annotations

import numpy as np


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values``, tied values sharing the mean of their ranks."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    mean_rank = ends - (counts - 1) / 2.0
    return mean_rank[inverse.reshape(-1)]


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Binary ROC AUC by the Mann-Whitney U statistic; None when one class is absent.

    The AUC is the chance that a random positive scores above a random negative, ties
    counting one half, which is exactly what average ranks give. It needs no threshold
    sweep and is exact.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    positive = np.asarray(positive, dtype=bool).reshape(-1)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    rank_sum = float(average_ranks(scores)[positive].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)

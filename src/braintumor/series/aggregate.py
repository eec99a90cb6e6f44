"""From per-slice answers to one answer for the series: a rule a reader can check by hand.

A tumour is usually visible on a few slices of a series, so an average over all slices
would drown it; and a series is read by a person who wants to be shown where to look.
The rule therefore follows the slices' own answers (the ones ``/api/classify`` gives for
each slice alone):

1. The answered slices are those the not-a-brain-MRI policy did not refuse.
2. A slice's class is its top class; its tumour probability is 1 - P(No Tumor).
3. The key slice is the answered slice with the highest tumour probability (the first
   in series order on a tie): the one to look at first.
4. The series class is No Tumor when no answered slice's class is a tumour class;
   otherwise the tumour class that the most slices have, ties broken by the higher sum
   of that class's probability over all answered slices.
5. The series probabilities are the mean of the probabilities of the slices that have
   the series class (so the series class is also their top class); ``confidence`` is
   the series class's; the series tumour probability is the key slice's.

A model whose classes include no "No Tumor" class has no tumour probability: the key
slice is then the most confident answered slice and the class the most frequent one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RULE = ("tumour when any answered slice's class is a tumour class; the series class is "
        "the tumour class of the most slices (else No Tumor); probabilities are the mean "
        "over the slices of that class; the key slice has the highest tumour probability")

_NO_TUMOUR_NAMES = {"notumor", "notumour", "normal", "healthy"}


def no_tumour_index(class_names: list[str]) -> int | None:
    """The index of the "No Tumor" class (by name, spelling-tolerant), or None."""
    for i, name in enumerate(class_names):
        if "".join(ch for ch in name.lower() if ch.isalpha()) in _NO_TUMOUR_NAMES:
            return i
    return None


@dataclass(frozen=True)
class SeriesSummary:
    class_id: int
    probabilities: np.ndarray  # (classes,), the mean over the slices of the series class
    tumour_probability: float | None  # the key slice's, in [0, 1]
    key_index: int  # position in the series of the key slice
    answered: int
    refused: int
    class_counts: np.ndarray  # (classes,) slices per class


def aggregate(probabilities: list[np.ndarray | None],
              class_names: list[str]) -> SeriesSummary | None:
    """Apply the module's rule; ``None`` entries are refused slices.

    Returns None when no slice was answered (the caller refuses the series).
    """
    answered = [i for i, p in enumerate(probabilities) if p is not None]
    if not answered:
        return None
    probs = np.stack([np.asarray(probabilities[i], dtype=np.float64) for i in answered])
    classes = probs.argmax(axis=1)
    counts = np.bincount(classes, minlength=len(class_names))
    no_tumour = no_tumour_index(class_names)
    if no_tumour is None:
        tumour = None
        key = int(np.argmax(probs.max(axis=1)))
        candidates = list(range(len(class_names)))
    else:
        tumour = 1.0 - probs[:, no_tumour]
        key = int(np.argmax(tumour))  # argmax takes the first of equal values
        candidates = [c for c in range(len(class_names)) if c != no_tumour]
    present = [c for c in candidates if counts[c] > 0]
    if present:
        totals = probs.sum(axis=0)
        series_class = max(present, key=lambda c: (counts[c], totals[c]))
    else:  # every answered slice is No Tumor
        series_class = int(no_tumour)  # type: ignore[arg-type]
    mean = probs[classes == series_class].mean(axis=0)
    return SeriesSummary(
        class_id=int(series_class), probabilities=mean,
        tumour_probability=None if tumour is None else float(tumour[key]),
        key_index=answered[key], answered=len(answered),
        refused=len(probabilities) - len(answered), class_counts=counts,
    )

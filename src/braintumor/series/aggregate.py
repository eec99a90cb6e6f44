"""From per-slice answers to one answer for the series: a rule a reader can check by hand.

A whole volume has 20-300 slices; a slice model that calls a few percent of healthy
slices a tumour would call nearly every healthy volume a tumour under "any slice is
enough". A tumour call therefore needs support, and only slices a reader would judge
count. The rule follows the slices' own answers (those ``/api/classify`` gives for each
slice alone):

1. The **counted** slices are those answered (not refused by the not-a-brain-MRI
   policy) and **assessed**: showing enough brain (:mod:`braintumor.series.assess`);
   the others never call a tumour.
2. A slice's tumour probability is 1 - P(No Tumor); it **calls a tumour** when that is
   at least :data:`VOLUME_SLICE_THRESHOLD` in a volume (defined in 3), at least
   :data:`SLICE_THRESHOLD` in any other series; its tumour class is its most probable
   tumour class. A model may carry its own volume threshold, chosen on validation
   volumes (``metadata.series``, ``braintumor fit-series-threshold``): slice models
   differ in how sure they are, so one number cannot suit every model.
3. **Support.** A volume (slice spacing known, at least :data:`VOLUME_MIN_ASSESSED`
   counted slices): a run of neighbouring counted slices that all call a tumour must
   span :data:`SUPPORT_MM` (a lesion is seen on neighbouring slices): at least
   max(2, ceil(SUPPORT_MM / spacing)) slices, never more than :data:`MAX_RUN`; the
   supporting slices are those of every run that long. Any other series (a short
   series, or no spacing): at least min(2, counted) counted slices must call a tumour;
   they are the supporting slices.
4. With support, the series class is the tumour class of the most supporting slices
   (ties: the larger summed probability of that class over them); the probabilities
   are their mean; the key slice is the supporting slice with the highest tumour
   probability; the series tumour probability is the key slice's.
5. Without support, the series class is No Tumor; the probabilities are the mean over
   the counted slices; the key slice is the counted slice with the highest tumour
   probability (still the one to look at first); the series tumour probability is the
   key slice's, capped at :data:`NO_SUPPORT_CAP` (below the threshold: no call).

Ties for the key slice go to the first in series order. ``confidence`` is the series
class's probability in the series probabilities.

A model whose classes include no "No Tumor" class has no tumour probability and keeps
the earlier rule (:data:`RULE_WITHOUT_NO_TUMOUR`): the key slice is the most confident
answered slice and the class the most frequent one, over every answered slice.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from braintumor.classes import no_tumour_index

#: A counted slice of a short series calls a tumour when its tumour probability is at
#: least this.
SLICE_THRESHOLD = 0.5
#: ...and a counted slice of a volume at least this: with 100-250 slices a volume has
#: many chances of a false alarm, so its slices need a firmer call. Chosen for the shipped
#: model on the validation cases of ``volumes/`` (training.volumes.case_split): the lowest
#: threshold at which the most healthy heads there came back No Tumor (4 of 5 at 0.95,
#: 0 of 5 at 0.5-0.8) with every tumour volume still called a tumour (3 of 3).
VOLUME_SLICE_THRESHOLD = 0.95
#: In a volume, a run of slices calling a tumour must span at least this (mm).
SUPPORT_MM = 6.0
#: The run length a volume needs is never more than this many slices.
MAX_RUN = 5
#: A series with a known slice spacing and at least this many counted slices is a volume.
VOLUME_MIN_ASSESSED = 8
#: Without support, the series tumour probability is at most this.
NO_SUPPORT_CAP = 0.49

def rule_text(volume_threshold: float = VOLUME_SLICE_THRESHOLD) -> str:
    """The rule in words, as ``summary.rule`` states it, with the volume threshold used."""
    return (
        "counted slices: answered and assessed (enough brain in view; the others never "
        "call a tumour); a slice calls a tumour when 1 - P(No Tumor) >= "
        f"{volume_threshold:g} in a volume, >= {SLICE_THRESHOLD:g} in a short series; "
        "a tumour needs support: in a volume (slice spacing known, "
        f">= {VOLUME_MIN_ASSESSED} counted slices) a run of neighbouring counted slices "
        f"calling a tumour spanning >= {SUPPORT_MM:g} mm (max(2, ceil({SUPPORT_MM:g} mm / "
        f"spacing)) slices, at most {MAX_RUN}), otherwise >= min(2, counted) counted "
        "slices calling a tumour; with support the class is the tumour class of the most "
        "supporting slices, probabilities their mean, the key slice the supporting slice "
        "with the highest tumour probability and the tumour probability its; without, No "
        "Tumor, the mean over the counted slices, the counted slice with the highest "
        f"tumour probability as key, its tumour probability capped at {NO_SUPPORT_CAP:g}")


RULE = rule_text()

RULE_WITHOUT_NO_TUMOUR = (
    "the model has no No Tumor class: the series class is the class of the most answered "
    "slices; probabilities are the mean over the slices of that class; the key slice is "
    "the most confident answered slice")


@dataclass(frozen=True)
class SeriesSummary:
    class_id: int
    probabilities: np.ndarray  # (classes,), the mean over the supporting (else counted) slices
    tumour_probability: float | None  # in [0, 1]; see the module's rule
    key_index: int  # position in the series of the key slice
    answered: int
    refused: int
    class_counts: np.ndarray  # (classes,) answered slices per top class
    #: Positions of the answered slices that were assessed, and of those that were not.
    assessed: list[int] = field(default_factory=list)
    not_assessed: list[int] = field(default_factory=list)
    #: Positions of the slices the series' call rests on (empty without support).
    supporting: list[int] = field(default_factory=list)
    rule: str = RULE
    #: The tumour probability a counted slice needed to call a tumour in this series.
    threshold: float = SLICE_THRESHOLD


def required_run(spacing_mm: float) -> int:
    """Slices a run needs in a volume with this slice spacing: max(2, ceil(SUPPORT_MM /
    spacing)), at most MAX_RUN."""
    return min(MAX_RUN, max(2, math.ceil(SUPPORT_MM / spacing_mm - 1e-9)))


def _runs(indices: list[int]) -> list[list[int]]:
    """Runs of consecutive series positions in the sorted ``indices``."""
    runs: list[list[int]] = []
    for i in indices:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def supporting_slices(calls: list[int], counted: int, spacing_mm: float | None) -> list[int]:
    """The series positions that support a tumour call (the module's step 3).

    ``calls``: sorted positions of the counted slices that call a tumour; ``counted``:
    how many slices are counted; ``spacing_mm``: the slice spacing, None when unknown.
    """
    if spacing_mm is not None and spacing_mm > 0 and counted >= VOLUME_MIN_ASSESSED:
        need = required_run(spacing_mm)
        return [i for run in _runs(calls) if len(run) >= need for i in run]
    return list(calls) if calls and len(calls) >= min(2, counted) else []


def _legacy(probs: np.ndarray, answered: list[int], class_names: Sequence[str],
            total: int, assessed: list[int], not_assessed: list[int]) -> SeriesSummary:
    """The rule for a model without a No Tumor class, over every answered slice."""
    classes = probs.argmax(axis=1)
    counts = np.bincount(classes, minlength=len(class_names))
    key = int(np.argmax(probs.max(axis=1)))
    totals = probs.sum(axis=0)
    present = [c for c in range(len(class_names)) if counts[c] > 0]
    series_class = max(present, key=lambda c: (counts[c], totals[c]))
    return SeriesSummary(
        class_id=int(series_class), probabilities=probs[classes == series_class].mean(axis=0),
        tumour_probability=None, key_index=answered[key], answered=len(answered),
        refused=total - len(answered), class_counts=counts, assessed=assessed,
        not_assessed=not_assessed,
        supporting=[answered[i] for i in np.flatnonzero(classes == series_class)],
        rule=RULE_WITHOUT_NO_TUMOUR)


def aggregate(probabilities: Sequence[np.ndarray | None], class_names: Sequence[str], *,
              assessed: Sequence[bool] | None = None,
              spacing_mm: float | None = None,
              volume_threshold: float | None = None) -> SeriesSummary | None:
    """Apply the module's rule; ``None`` entries are refused slices.

    ``assessed``: per slice, whether it shows enough brain (None: every slice does);
    ``spacing_mm``: the slice spacing, None when unknown; ``volume_threshold``: the
    model's own volume threshold (None: :data:`VOLUME_SLICE_THRESHOLD`).

    Returns None when no slice is answered, or (with a No Tumor class) when no answered
    slice is assessed: the caller refuses the series.
    """
    total = len(probabilities)
    flags = [True] * total if assessed is None else [bool(a) for a in assessed]
    if len(flags) != total:
        raise ValueError("assessed must have one flag per slice")
    answered = [i for i, p in enumerate(probabilities) if p is not None]
    if not answered:
        return None
    probs = np.stack([np.asarray(probabilities[i], dtype=np.float64) for i in answered])
    counted = [i for i in answered if flags[i]]
    not_assessed = [i for i in answered if not flags[i]]
    no_tumour = no_tumour_index(class_names)
    if no_tumour is None:
        return _legacy(probs, answered, class_names, total, counted, not_assessed)
    if not counted:
        return None
    row = {i: k for k, i in enumerate(answered)}
    tumour = 1.0 - probs[:, no_tumour]
    volume = spacing_mm is not None and spacing_mm > 0 and len(counted) >= VOLUME_MIN_ASSESSED
    if volume_threshold is None:
        volume_threshold = VOLUME_SLICE_THRESHOLD
    threshold = volume_threshold if volume else SLICE_THRESHOLD
    calls = [i for i in counted if tumour[row[i]] >= threshold]
    support = supporting_slices(calls, len(counted), spacing_mm)
    tumour_classes = [c for c in range(len(class_names)) if c != no_tumour]
    if support:
        rows = [row[i] for i in support]
        chosen = probs[rows]
        own = [tumour_classes[int(np.argmax(p[tumour_classes]))] for p in chosen]
        votes = np.bincount(own, minlength=len(class_names))
        sums = chosen.sum(axis=0)
        series_class = max(sorted(set(own)), key=lambda c: (votes[c], sums[c]))
        key = max(support, key=lambda i: (tumour[row[i]], -i))
        series_tumour = float(tumour[row[key]])
        mean = chosen.mean(axis=0)
    else:
        rows = [row[i] for i in counted]
        series_class = no_tumour
        key = max(counted, key=lambda i: (tumour[row[i]], -i))
        series_tumour = min(float(tumour[row[key]]), NO_SUPPORT_CAP)
        mean = probs[rows].mean(axis=0)
    return SeriesSummary(
        class_id=int(series_class), probabilities=mean, tumour_probability=series_tumour,
        key_index=int(key), answered=len(answered), refused=total - len(answered),
        class_counts=np.bincount(probs.argmax(axis=1), minlength=len(class_names)),
        assessed=counted, not_assessed=not_assessed, supporting=list(support),
        rule=rule_text(volume_threshold), threshold=threshold)

"""Which public collection each training image came from, and sampling weights that
balance the collections inside each class.

The dataset's ``sources.tsv`` (file -> figshare, br35h-no, br35h-yes, sartaj-or-unknown)
says where each file came from. Inside a class the collections are very unequal (90% of
meningiomas are figshare), so a network can learn "figshare look -> tumour". Weighting
each image by the inverse of its (class, collection) cell's size, capped so that a cell of
a few dozen scans is not repeated into memorisation, makes every collection count alike
inside its class; the weights are then scaled so that every class counts alike too.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

#: The collection of an image with no entry in sources.tsv (the extra tumour slices say
#: theirs themselves).
UNKNOWN = "unknown"


def read_sources(path: Path, prefix: str) -> dict[str, str]:
    """{path relative to the split folder: collection} for rows under ``prefix`` ("Training")."""
    found: dict[str, str] = {}
    if not path.is_file():
        return found
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            name = row["file"]
            if name.startswith(prefix + "/"):
                found[name[len(prefix) + 1:]] = row["source"]
    return found


def balanced_weights(labels: np.ndarray, collections: list[str], cap: float = 4.0
                     ) -> np.ndarray:
    """Per-image weights: inverse (class, collection) cell size, at most ``cap`` times the
    class's plain weight, then normalised so every class has the same total weight and the
    mean weight is 1."""
    labels = np.asarray(labels)
    keys = np.array([f"{label}|{source}" for label, source in zip(labels, collections,
                                                                   strict=True)])
    weights = np.ones(len(labels), dtype=np.float64)
    for label in np.unique(labels):
        in_class = labels == label
        cells = np.unique(keys[in_class])
        for cell in cells:
            members = keys == cell
            share = members.sum() / in_class.sum()
            weights[members] = min(1.0 / (len(cells) * share), cap)
        weights[in_class] *= 1.0 / weights[in_class].sum()
    return (weights * len(labels) / weights.sum()).astype(np.float32)

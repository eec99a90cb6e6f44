"""Give a trained model its nearest-neighbour memory (:mod:`braintumor.model.memory`).

Run by ``braintumor train`` after the network is trained, and on its own as
``braintumor fit-memory`` for a saved model. The vote's settings are chosen on the run's
validation split with a memory of the training split only (Testing is never read),
with and without the mirror images (``flip``); the memory that ships then holds every
Training scan, so the answers draw on all of them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from braintumor.datasets.folders import load_folder
from braintumor.model.loaded import ModelSettings, load_model
from braintumor.model.memory import (
    MEMORY_ARCHIVE_ENTRY,
    FeatureMemory,
    best_setting,
    choose_settings,
    with_mirror,
)
from braintumor.model.metadata import replace_metadata
from braintumor.training.run import RunFolder

log = logging.getLogger(__name__)


def fit_memory(model, pixels: np.ndarray, labels: np.ndarray, train_idx: np.ndarray,
               val_idx: np.ndarray, head_class: int = -1,
               val_allowed: np.ndarray | None = None,
               bank_idx: np.ndarray | None = None,
               val_weights: np.ndarray | None = None) -> tuple[FeatureMemory, dict]:
    """The memory of ``pixels`` (``bank_idx`` of them; all by default) with settings chosen
    on the validation part.

    ``head_class``: a class whose probability the head keeps (see
    :mod:`braintumor.model.memory`); -1 lets the vote decide every class.
    ``val_allowed``: per validation image, the classes that count as right (partial
    labels); by default its own label only. ``val_weights``: how much each validation
    image counts in the choice (by default alike).
    Returns (memory, description for the metadata, with the validation figures).
    """
    plain = model.outputs_of_pixels(pixels, head_only=True)
    mirror = model.outputs_of_pixels(pixels[:, :, ::-1], head_only=True)
    query, mixed_head = (np.asarray(t) for t in with_mirror(
        plain.features, plain.probabilities, mirror.features, mirror.probabilities))
    variants = {False: (plain.features, plain.probabilities), True: (query, mixed_head)}
    classes = len(model.class_names)
    grid = []
    for flip, (vectors, head) in variants.items():
        grid += choose_settings(vectors[train_idx], labels[train_idx], vectors[val_idx],
                                labels[val_idx], head[val_idx], classes, flip=flip,
                                head_class=head_class, val_allowed=val_allowed,
                                val_weights=val_weights)[1]
    best = best_setting(grid)
    top = plain.probabilities[val_idx].argmax(1)
    right = (top == labels[val_idx] if val_allowed is None
             else val_allowed[np.arange(len(top)), top] > 0)
    head_accuracy = float(np.average(right, weights=val_weights))
    vectors, _ = variants[best["flip"]]
    bank = np.arange(len(labels)) if bank_idx is None else np.asarray(bank_idx)
    memory = FeatureMemory.build(vectors[bank], labels[bank], classes, best["k"], best["tau"],
                                 best["mix"], best["flip"], head_class)
    description = {
        **memory.describe(),
        "chosen_on": "validation split, memory of the training split",
        "validation_accuracy": round(best["accuracy"], 5),
        "validation_nll": round(best["nll"], 5),
        "validation_accuracy_head_only": round(head_accuracy, 5),
        "grid": [{key: value if isinstance(value, bool) else round(value, 5)
                  for key, value in row.items()} for row in grid],
    }
    log.info("memory: k=%d tau=%g mix=%g flip=%s; validation accuracy %.4f (head alone %.4f)",
             memory.k, memory.tau, memory.mix, memory.flip, best["accuracy"], head_accuracy)
    return memory, description


def fit_memory_file(model_path: Path, data_dir: Path, run_dir: Path, settings: ModelSettings,
                    out: Path | None = None, cache_dir: Path | None = Path(".cache")) -> dict:
    """``braintumor fit-memory``: add (or replace) the memory of a saved model.

    ``data_dir`` must be the Training folder the run in ``run_dir`` was trained on (its
    ``split.json`` names the validation scans; a run folder that also holds its recipe is
    refitted by :func:`braintumor.training.train.refit` instead). Returns the memory's
    description.
    """
    model = load_model(settings, path=model_path)
    images = load_folder(data_dir, model.class_names, model.input_spec.size,
                         cache_dir=cache_dir, framing=model.input_spec.framing)
    train_idx, val_idx = RunFolder(run_dir).read_split([str(p) for p in images.paths])
    memory, description = fit_memory(model, images.pixels, images.labels, train_idx, val_idx)
    metadata = model.metadata
    metadata.memory = {**description, "data_fingerprint": images.fingerprint}
    replace_metadata(model_path, metadata, out, entries={MEMORY_ARCHIVE_ENTRY: memory.to_npz()})
    return metadata.memory

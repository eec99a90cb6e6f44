"""Fitting the distance statistics of a model and storing them with it.

Two vectors of every training scan are fitted (:mod:`braintumor.ood.mahalanobis`): the
model's penultimate features and the picture's layout (:mod:`braintumor.ood.layout`).
An image's score is the larger of its two distances, each divided by its *scale* (the
``quantile`` of the validation scans' distances), so both count alike whatever their
units; the threshold is the same quantile of the validation scans' scores. A score
under 1 is therefore typical of real scans, and the threshold sits a little above 1.

Why on the training split, and why the threshold on validation: the means and the
covariances describe what the model saw while learning, so they are fitted on exactly
the images it was trained on. Scores of those images are optimistic (the model has
learned them), so scales and threshold are chosen on the validation images, which the
model never trained on but which are real scans: with the default quantile (99.5%)
about 0.5% of real scans are refused by the distances. Testing is never used.

With the run folder of the training (``split.json``), its train and validation lists are
used, so the statistics never see a validation image. Without one, the same
near-duplicate-aware split as training (15%, seed 42) is made here.
"""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path

import numpy as np

from braintumor.config import Settings
from braintumor.datasets.folders import load_folder
from braintumor.model.loaded import ModelSettings, load_model
from braintumor.model.metadata import OOD_ARCHIVE_ENTRY, replace_metadata
from braintumor.ood.layout import layout
from braintumor.ood.mahalanobis import METHOD, MahalanobisStats, fit, pack
from braintumor.training.architectures import FEATURES_LAYER
from braintumor.training.run import RunFolder
from braintumor.training.split import duplicate_groups, grouped_stratified_split

log = logging.getLogger(__name__)

#: Share of validation scans whose score the threshold leaves below it.
DEFAULT_QUANTILE = 0.995


def backbone_feature_dims(model) -> int:
    """How many leading values of the head's input are the backbone's pooled features.

    Why: an outline model (``compact-seg``) pools its gated outline features beside the
    backbone's; those are near zero on any picture without a tumour outline, a noise
    picture included, and fitted in they make the distance blind to what the backbone
    sees. The statistics describe the backbone's part (``MahalanobisScorer`` reads the
    same leading values at serving).
    """
    if not model.metadata.segmentation_layer:
        return int(model.feature_dims)
    return int(model.keras_model.get_layer(FEATURES_LAYER).output.shape[-1])


def fit_statistics(model, train_pixels: np.ndarray, train_labels: np.ndarray,
                   val_pixels: np.ndarray, quantile: float = DEFAULT_QUANTILE,
                   layout_pixels: tuple[np.ndarray, np.ndarray] | None = None
                   ) -> tuple[dict[str, MahalanobisStats], dict]:
    """Fit on the training images; choose scales and threshold on the validation images.

    ``layout_pixels`` (train, validation) are the stretched whole pictures for a model
    that frames the head (see :func:`braintumor.classify.layout_pixels`); by default the
    model's own pixels. Returns the fits ({"features", "layout"}) and their description
    for the metadata's ``ood`` entry.
    """
    if not 0.5 <= quantile <= 1.0:
        raise ValueError(f"quantile must be between 0.5 and 1, got {quantile}")
    if len(val_pixels) == 0:
        raise ValueError("the threshold needs validation images")
    classes = len(model.class_names)
    dims = backbone_feature_dims(model)
    train_features = model.outputs_of_pixels(train_pixels).features[:, :dims]
    val = model.outputs_of_pixels(val_pixels)
    vectors = {"features": (train_features, val.features[:, :dims]),
               "layout": tuple(layout(p) for p in (layout_pixels
                                                   or (train_pixels, val_pixels)))}
    fits: dict[str, MahalanobisStats] = {}
    components: dict[str, dict] = {}
    val_ratio = []
    train_ratio = []
    for name, (train_vectors, val_vectors) in vectors.items():
        fitted = fits[name] = fit(train_vectors, train_labels, classes)
        scorer = fitted.scorer()
        val_scores = scorer.score(val_vectors)
        scale = float(np.quantile(val_scores, quantile))
        scale = scale if scale > 0 else 1.0
        val_ratio.append(val_scores / scale)
        train_ratio.append(scorer.score(train_vectors) / scale)
        components[name] = {"dims": fitted.dims, "shrinkage": round(fitted.shrinkage, 6),
                            "scale": round(scale, 6),
                            "validation_median": round(float(np.median(val_scores)), 4)}
    val_scores = np.max(val_ratio, axis=0)
    train_scores = np.max(train_ratio, axis=0)
    threshold = float(np.quantile(val_scores, quantile))
    confidence = val.probabilities.max(axis=1)
    description = {
        "method": f"max over features and layout of {METHOD} distance / validation scale",
        "threshold": round(threshold, 6),
        "quantile": quantile,
        "components": components,
        # None: the confidence rule is not used with fitted statistics (see detector.py)
        "min_confidence": None,
        "images": {"train": len(train_pixels), "validation": len(val_pixels)},
        "validation": {
            "score_median": round(float(np.median(val_scores)), 4),
            "score_max": round(float(val_scores.max()), 4),
            "refused": round(float(np.mean(val_scores > threshold)), 5),
            "confidence_p0_5": round(float(np.quantile(confidence, 0.005)), 4),
        },
        "train": {"score_median": round(float(np.median(train_scores)), 4),
                  "refused": round(float(np.mean(train_scores > threshold)), 5)},
        "arrays": "braintumor-ood.npz",
        "fitted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    log.info("OOD statistics: features %d (shrinkage %.3f), layout %d (shrinkage %.3f); "
             "threshold %.3f; %d train / %d validation images", fits["features"].dims,
             fits["features"].shrinkage, fits["layout"].dims, fits["layout"].shrinkage,
             threshold, len(train_pixels), len(val_pixels))
    return fits, description


def store(model_path: Path, metadata, fits: dict[str, MahalanobisStats], description: dict,
          out: Path | None = None) -> tuple[Path, dict]:
    """Write ``metadata`` with ``description`` as its ``ood`` entry, and the arrays.

    In place, or into a copy at ``out``. A bare model gets the metadata it was loaded with
    (the configured defaults) written along. Returns the path written and the metadata
    dict it now carries.
    """
    metadata = copy.deepcopy(metadata)
    metadata.ood = description
    target = replace_metadata(Path(model_path), metadata, out,
                              entries={OOD_ARCHIVE_ENTRY: pack(fits)})
    return target, metadata.to_dict()


def fit_model_file(model_path: Path, data_dir: Path, run_dir: Path | None = None,
                   out: Path | None = None, cache_dir: Path | None = Path(".cache"),
                   quantile: float = DEFAULT_QUANTILE,
                   settings: ModelSettings | None = None) -> dict:
    """``braintumor fit-ood``: fit on the training split of ``data_dir``, store in the model.

    ``settings`` are the caller's (the CLI loads them once); a model without metadata is
    read with them. Returns the ``ood`` description written.
    """
    model_path = Path(model_path)
    model = load_model(settings or Settings(), path=model_path)
    images = load_folder(Path(data_dir), list(model.class_names), model.input_spec.size,
                         cache_dir=cache_dir, framing=model.input_spec.framing)
    run = RunFolder(run_dir) if run_dir else None
    if run is not None and run.split_file.is_file():
        train_idx, val_idx = run.read_split(images.paths)
        if len(val_idx) == 0:
            raise ValueError(f"{run.split_file} lists no validation images")
        split_note = str(run.split_file)
    else:
        train_idx, val_idx = grouped_stratified_split(
            images.labels, duplicate_groups(images.pixels), 0.15, 42)
        split_note = "near-duplicate-aware 15% validation split, seed 42"
    whole = None
    if model.input_spec.framing != "stretch":  # the layout reads the whole picture
        stretched = load_folder(Path(data_dir), list(model.class_names),
                                model.input_spec.size, cache_dir=cache_dir).pixels
        whole = (stretched[train_idx], stretched[val_idx])
    fits, description = fit_statistics(model, images.pixels[train_idx],
                                       images.labels[train_idx], images.pixels[val_idx],
                                       quantile, layout_pixels=whole)
    description["split"] = split_note
    description["data_fingerprint"] = images.fingerprint
    target, _ = store(model_path, model.metadata, fits, description, out)
    log.info("OOD statistics written to %s", target)
    return description

"""The fitted OOD statistics a model file carries, read by the OOD package itself.

The arrays are an entry of the model's archive (``braintumor-ood.npz``, or the sidecar
``<model>.ood.npz``; :mod:`braintumor.model.archive`) and their description is the
metadata's ``ood`` block, both written by :mod:`braintumor.training.ood_fit`. The model
loader does not know about them: whoever builds a detector for a model reads them here.

Unusable statistics never stop a model from serving: the distance checks are then
skipped, which every OOD answer says in its reasons.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

from braintumor.model.archive import read_archive_entry
from braintumor.model.metadata import OOD_ARCHIVE_ENTRY
from braintumor.ood.mahalanobis import MahalanobisStats, unpack

log = logging.getLogger(__name__)


class ModelFacts(Protocol):
    """What the statistics are checked against (a :class:`~braintumor.model.LoadedModel`)."""

    path: Path

    @property
    def metadata(self) -> Any: ...
    @property
    def feature_dims(self) -> int: ...
    @property
    def class_names(self) -> list[str]: ...


def read_ood_arrays(model_path: Path) -> bytes | None:
    """The ``.npz`` bytes of the model's OOD statistics (archive entry or sidecar), or None."""
    return read_archive_entry(model_path, OOD_ARCHIVE_ENTRY)


def load_statistics(model: ModelFacts) -> dict[str, MahalanobisStats] | None:
    """The model's fitted statistics by name ("features", "layout"), or None when it has
    none or they do not fit the model (logged)."""
    path = Path(model.path)
    description = model.metadata.ood
    data = read_ood_arrays(path) if description else None
    if data is None:
        log.info("model %s has no OOD statistics: the feature-distance check is skipped "
                 "(run `braintumor fit-ood`)", path.name)
        return None
    try:
        fits = unpack(data)
        components = description["components"]
        if set(fits) != set(components):
            raise ValueError(f"arrays for {sorted(fits)}, metadata for {sorted(components)}")
    except (KeyError, TypeError, ValueError, OSError) as exc:
        log.warning("model %s: unreadable OOD statistics (%s); distance checks skipped",
                    path.name, exc)
        return None
    features = fits.get("features")
    # fewer dims than the model's vector: an outline model's statistics of its backbone's
    # leading part (training.ood_fit.backbone_feature_dims)
    if features is not None and (features.dims > model.feature_dims
                                 or len(features.means) != len(model.class_names)):
        log.warning("model %s: OOD statistics are for %d features and %d classes, the model "
                    "has %d and %d; distance checks skipped", path.name, features.dims,
                    len(features.means), model.feature_dims, len(model.class_names))
        return None
    return fits
